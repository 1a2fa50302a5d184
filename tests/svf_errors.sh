#!/usr/bin/env bash
# SVF inputs that must be refused with one clear line and a non-zero exit: factors or experts made
# for another model, a mixture naming a missing expert, bad weights, corrupt expert values.
set -u
BIN=${T2_BIN:-build/bin}
T2="$BIN/t2"
. "$(dirname "$0")/expect.sh"

shape="--dim 32 --hidden 40 --layers 2 --heads 4 --kv-heads 2 --vocab 40 --seq-len 32"
run "$T2" init -o "$tmp/a.gguf" $shape --seed 1
run "$T2" init -o "$tmp/b.gguf" $shape --seed 2          # same shapes, other weights
run "$T2" init -o "$tmp/c.gguf" --dim 48 --hidden 40 --layers 2 --heads 4 --vocab 40 --seq-len 32
run "$T2" decompose -m "$tmp/a.gguf" -o "$tmp/fa.gguf"
run "$T2" decompose -m "$tmp/b.gguf" -o "$tmp/fb.gguf" --targets all
run "$T2" expert init -m "$tmp/a.gguf" --factors "$tmp/fa.gguf" -o "$tmp/good.gguf" --name good --noise 0.3
run "$T2" expert init -m "$tmp/b.gguf" --factors "$tmp/fb.gguf" -o "$tmp/other.gguf" --name other
L=(logits -m "$tmp/a.gguf" --tokens 1,2,3 -o "$tmp/l.f32")

expect_fail "factors of another model (same shapes)" "fb.gguf: factors were made for another model" "$T2" "${L[@]}" --factors "$tmp/fb.gguf" --expert "$tmp/good.gguf"
expect_fail "expert of another model" "other.gguf: expert was trained for another model" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --expert "$tmp/other.gguf"
expect_fail "factors file of another shape" "fa.gguf: factors were made for another model" "$T2" logits -m "$tmp/c.gguf" --tokens 1,2 -o "$tmp/l.f32" --factors "$tmp/fa.gguf" --expert "$tmp/good.gguf"
expect_fail "mixture naming a missing expert" "expert 'nosuch' not found" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --mix good=0.5,nosuch=0.5 --experts "$tmp"
expect_fail "mixture weight NaN" "weight 'nan' of expert 'good' is not a finite number" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --mix good=nan --experts "$tmp"
expect_fail "mixture weight infinite" "weight 'inf' .* not a finite number" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --mix good=inf --experts "$tmp"
expect_fail "mixture entry without weight" "'good' is not NAME=WEIGHT" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --mix good --experts "$tmp"
expect_fail "mixture naming an expert twice" "named twice" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --mix good=1,good=2 --experts "$tmp"
expect_fail "expert without factors" "need --factors" "$T2" "${L[@]}" --expert "$tmp/good.gguf"
expect_fail "expert file given as factors" "is a T2 'expert' file, expected 'factors'" "$T2" "${L[@]}" --factors "$tmp/good.gguf" --expert "$tmp/good.gguf"
expect_fail "model given as expert" "not a T2 expert file" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --expert "$tmp/a.gguf"
expect_fail "bad --apply" "--apply: 'fast' is not merged, factored or lowrank" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --expert "$tmp/good.gguf" --apply fast
expect_fail "bad --merged-type" "--merged-type: 'q4_k' is not f32, f16, bf16 or q8_0" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --expert "$tmp/good.gguf" --merged-type q4_k
expect_fail "merged Q8_0 of 40 columns" "merged W' as Q8_0: blk.0.ffn_down has 40 columns, not a multiple of 32" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --expert "$tmp/good.gguf" --merged-type q8_0
expect_fail "bad --lowrank" "--lowrank: '0' is not a number of directions >= 1" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --expert "$tmp/good.gguf" --lowrank 0
expect_fail "bad --targets" "unknown target 'ffn_foo'" "$T2" decompose -m "$tmp/a.gguf" -o "$tmp/x.gguf" --targets ffn_gate,ffn_foo
expect_fail "expert targets beyond the factors" "include matrices the factors do not have" "$T2" expert init -m "$tmp/a.gguf" --factors "$tmp/fa.gguf" -o "$tmp/x.gguf" --name x --targets attn
# a NaN inside an expert's vector: find the first svf_p tensor's data and overwrite 4 bytes
/usr/bin/python3 - "$tmp/good.gguf" "$tmp/nan.gguf" <<'PY' || { echo "FAIL could not make a NaN expert"; fail=$((fail+1)); }
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
# the last 4 bytes of the file belong to the last tensor (data is padded to 32: search backwards)
i = len(b) - 4
while i > 0 and b[i:i+4] == b'\0\0\0\0':
    i -= 4
b[i:i+4] = struct.pack('<f', float('nan'))
open(sys.argv[2], 'wb').write(bytes(b))
PY
expect_fail "expert with a NaN value" "nan.gguf: tensor 'blk.*svf_p' has a non-finite value" "$T2" "${L[@]}" --factors "$tmp/fa.gguf" --expert "$tmp/nan.gguf"
head -c 3000 "$tmp/fa.gguf" > "$tmp/trunc.gguf"
expect_fail "truncated factors" "trunc.gguf: .*(past end|truncated)" "$T2" "${L[@]}" --factors "$tmp/trunc.gguf" --expert "$tmp/good.gguf"
expect_end
