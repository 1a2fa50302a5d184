# strategy_setup.sh - sourced by strategy.sh and strategy_mpi.sh: $T2, a temp dir $W (removed on
# exit) with SVD factors of the bundled model ($W/F.gguf) and random experts math, code, mc and
# classify in $W/ex (t2 expert init --noise: each moves the model a little, differently).
# Exits 77 (skip) without models/t2-base.gguf.
T2="${T2_BIN:-/work/main/build/bin}/t2"
T2P="${T2_BIN:-/work/main/build/bin}/t2-profile"
HERE="${T2_TESTS:-$(cd "$(dirname "$0")" && pwd)}"
B="$HERE/../models/t2-base.gguf"
[ -x "$T2" ] || { echo "FAIL: $T2 not found (set T2_BIN)"; exit 1; }
[ -f "$B" ] || { echo "skip: $B not found"; exit 77; }
W="$(mktemp -d /tmp/t2_strategy.XXXXXX)"
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/ex"
"$T2" decompose -m "$B" -o "$W/F.gguf" -j 1 >/dev/null 2>"$W/setup.err" ||
    { cat "$W/setup.err"; echo "FAIL: t2 decompose"; exit 1; }
seed=11
for e in math code mc classify; do
    "$T2" expert init -m "$B" --factors "$W/F.gguf" -o "$W/ex/$e.gguf" --name "$e" --noise 0.5 \
        --seed $seed >/dev/null 2>"$W/setup.err" ||
        { cat "$W/setup.err"; echo "FAIL: t2 expert init $e"; exit 1; }
    seed=$((seed + 1))
done
