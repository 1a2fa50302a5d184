#!/bin/bash
# dist_config.sh - the deployment file (deploy/t2_conf.c through t2-config): the shipped
# deploy/t2.cfg is valid; every kind of bad value is refused with FILE:LINE: setting: why.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
HERE="$(cd "$(dirname "$0")" && pwd)"
C="$BIN/t2-config"
W="$(mktemp -d /tmp/t2_dist_config.XXXXXX)"
trap 'rm -rf "$W"' EXIT
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
"$C" check "$HERE/../deploy/t2.cfg" > /dev/null; ok $? "deploy/t2.cfg is valid"
[ "$("$C" get "$HERE/../deploy/t2.cfg" worker.apply)" = merged ]; ok $? "default apply mode"
[ "$("$C" get "$HERE/../deploy/t2.cfg" group.ranks --group g0)" = 2 ]; ok $? "group lookup"
# bad FILE-CONTENT  EXPECTED-MESSAGE-PART
bad() {
    if [[ "$1" == version* ]]; then printf '%s\n' "$1" > "$W/bad.cfg"
    else printf 'version = 1;\n%s\n' "$1" > "$W/bad.cfg"; fi
    out=$("$C" check "$W/bad.cfg" 2>&1); rc=$?
    [ $rc = 1 ] && [[ "$out" == *"$W/bad.cfg:"*"$2"* ]]
    ok $? "'$1': got '$out' (exit $rc), wanted '$2'"
}
bad 'worker = { capacity = 0; };' '2: worker.capacity: 0 is out of range [1, 256]'
bad 'worker = {
  capacity = "eight";
};' '3: worker.capacity: a string, expected an integer'
bad 'worker = { apply = "folded"; };' 'worker.apply: '"'"'folded'"'"' is not "merged" or "factored"'
bad 'worker = { merged_type = "q4_k"; };' 'worker.merged_type: '"'"'q4_k'"'"' is not "f32", "f16", "bf16" or "q8_0"'
bad 'worker = { top_p = 1.5; };' 'worker.top_p: 1.5 is out of range'
bad 'worker = { services = ["generate", "generate"]; };' "worker.services: 'generate' named twice"
bad 'worker = { capacitty = 3; };' 'worker.capacitty: unknown setting'
bad 'router = { endpoint = "localhost:5555"; };' 'router.endpoint: '"'"'localhost:5555'"'"' is not a ZeroMQ endpoint'
bad 'router = { heartbeat_ms = 5; };' 'router.heartbeat_ms: 5 is out of range'
bad 'model = { classifier_expert = "a b"; };' 'model.classifier_expert: '"'"'a b'"'"' is not a name'
bad 'dispatcher = { labels = { poetry = "x"; }; };' 'dispatcher.labels.poetry: unknown label'
bad 'groups = ( { name = "a"; ranks = 0; } );' 'groups[0].ranks: 0 is out of range'
bad 'groups = ( { name = "a"; }, { name = "a"; } );' "group name 'a' used twice"
bad 'wroker = { };' 'wroker: unknown setting'
bad 'worker = { capacity = = 3; };' '2: syntax error'
bad 'version = 2;' '1: version: 2 is out of range'
# every file the configuration names exists and is of the right kind
: > "$W/empty"; mkdir -p "$W/ex"; printf 'GGUF\3\0\0\0' > "$W/f.gguf"; cp "$W/f.gguf" "$W/ex/cls.gguf"
files() {
    printf 'version = 1;\n%s\n' "$1" > "$W/files.cfg"
    out=$("$C" check "$W/files.cfg" 2>&1); rc=$?
    if [ -z "$2" ]; then [ $rc = 0 ]; else [ $rc = 1 ] && [[ "$out" == *"$W/files.cfg: "*"$2"* ]]; fi
    ok $? "'$1': got '$out' (exit $rc), wanted '${2:-ok}'"
}
files 'model = { path = "nope.gguf"; };' "model.path: $W/nope.gguf: no such file"
files 'model = { path = "ex"; };' "model.path: $W/ex: not a regular file"
files 'model = { path = "empty"; };' "model.path: $W/empty: not a GGUF file or a llama2.c checkpoint"
files 'model = { path = "f.gguf"; tokenizer = "tok.bin"; };' "model.tokenizer: $W/tok.bin: no such file"
files 'model = { path = "f.gguf"; factors = "empty"; };' "model.factors: $W/empty: not a GGUF file"
files 'model = { path = "f.gguf"; factors = "f.gguf"; experts_dir = "f.gguf"; };' "model.experts_dir: $W/f.gguf: not a folder"
files 'model = { path = "f.gguf"; factors = "f.gguf"; experts_dir = "ex"; profiles_dir = "none"; };' "model.profiles_dir: $W/none: no such folder"
files 'model = { path = "f.gguf"; factors = "f.gguf"; experts_dir = "ex"; classifier_expert = "clx"; };' "model.classifier_expert: $W/ex/clx.gguf: no such file"
files 'model = { path = "f.gguf"; factors = "f.gguf"; experts_dir = "ex"; classifier_expert = "cls"; };' ""
[[ "$out" == *"warning: $W/files.cfg: dispatcher.labels.code: $W/ex/code.gguf: no such file"* ]]
ok $? "a missing label expert is a warning: $out"
out=$("$C" check "$W/none.cfg" 2>&1); [ $? = 1 ] && [[ "$out" == *"cannot open"* ]]; ok $? "missing file: $out"
out=$("$C" get "$HERE/../deploy/t2.cfg" group.name --group nope 2>&1); [[ "$out" == *"no group named 'nope'"* ]]; ok $? "unknown group: $out"
# worker.merged_type: default f32; each value survives show -> check -> get (round trip)
[ "$("$C" get "$HERE/../deploy/t2.cfg" worker.merged_type)" = f32 ]; ok $? "default merged type"
for t in f32 f16 bf16 q8_0; do
    printf 'version = 1;\nworker = { merged_type = "%s"; };\n' "$t" > "$W/mt.cfg"
    "$C" show "$W/mt.cfg" > "$W/mt2.cfg" 2>&1
    [ "$("$C" get "$W/mt.cfg" worker.merged_type)" = "$t" ] && grep -q "merged_type = \"$t\";" "$W/mt2.cfg" &&
        [ "$("$C" get "$W/mt2.cfg" worker.merged_type 2>&1)" = "$t" ]
    ok $? "merged_type $t round trip: $(cat "$W/mt2.cfg" | grep merged_type)"
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
