#!/bin/bash
# gateway_config.sh - the deployment file's gateway section (deploy/t2_conf.c through t2-config)
# and t2-gateway's start-up checks: every bad value refused with FILE:LINE: gateway.setting: why,
# a bad keys file with KEYS:LINE: why, a bad default adaptation named; no deployment needed.
set -u
BIN="${T2_BIN:-/work/main/build/bin}"
C="$BIN/t2-config"
G="$BIN/t2-gateway"
W="$(mktemp -d /tmp/t2_gateway_config.XXXXXX)"
trap 'rm -rf "$W"' EXIT
pass=0 fail=0
ok() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "check failed: $2" >&2; fi; }
bad() {
    printf 'version = 1;\n%s\n' "$1" > "$W/bad.cfg"
    out=$("$C" check "$W/bad.cfg" 2>&1); rc=$?
    [ $rc = 1 ] && [[ "$out" == *"$W/bad.cfg:"*"$2"* ]]
    ok $? "'$1': got '$out' (exit $rc), wanted '$2'"
}
bad 'gateway = { port = 0; };' '2: gateway.port: 0 is out of range [1, 65535]'
bad 'gateway = {
  port = "http";
};' '3: gateway.port: a string, expected an integer'
bad 'gateway = { bind = "localhost"; };' "gateway.bind: 'localhost' is not an IPv4 or IPv6 address"
bad 'gateway = { rate_limit = -1.0; };' 'gateway.rate_limit: -1 is out of range'
bad 'gateway = { max_body = 10; };' 'gateway.max_body: 10 is out of range'
bad 'gateway = { adapt = "magic"; };' "gateway.adapt: 'magic' is not none, prompt, classifier"
bad 'gateway = { model = "t2 base"; };' "gateway.model: 't2 base' is not a name"
bad 'gateway = { prot = 80; };' 'gateway.prot: unknown setting'
bad 'gateway = { keys = "nokeys.txt"; };' "gateway.keys: $W/nokeys.txt: no such file"
# a good section: t2-config shows it, get reads it
printf 'version = 1;\ngateway = { bind = "::1"; port = 8181; };\n' > "$W/good.cfg"
[ "$("$C" get "$W/good.cfg" gateway.enabled)/$("$C" get "$W/good.cfg" gateway.port)" = 1/8181 ]
ok $? "gateway.enabled and gateway.port"
"$C" show "$W/good.cfg" | grep -q 'bind = "::1";'; ok $? "t2-config show prints the section"
printf 'version = 1;\n' > "$W/none.cfg"
[ "$("$C" get "$W/none.cfg" gateway.enabled)" = 0 ]; ok $? "no gateway section: not enabled"
# t2-gateway refuses bad keys files and adaptations before it listens
port=$(( 20000 + RANDOM % 20000 ))
keys() {
    printf '%s\n' "$1" > "$W/keys.txt"
    printf 'version = 1;\ngateway = { port = %d; keys = "keys.txt"; };\n' $port > "$W/k.cfg"
    out=$(timeout 10 "$G" -c "$W/k.cfg" 2>&1); rc=$?
    [ $rc = 1 ] && [[ "$out" == *"$2"* ]]
    ok $? "keys '$1': got '$out' (exit $rc), wanted '$2'"
}
keys 'alice short' "$W/keys.txt:1: key alice: the token must be 16..256 printable"
keys '# comment
alice sk-0123456789abcdef
alice sk-0123456789abcdeg' "$W/keys.txt:3: key alice: name or token used twice"
keys 'a+b sk-0123456789abcdef' "$W/keys.txt:1: 'a+b' is not a key name"
keys '# only a comment' "$W/keys.txt: no key in the keys file"
printf 'version = 1;\ngateway = { port = %d; adapt = "mix/a=x"; };\n' $port > "$W/a.cfg"
out=$(timeout 10 "$G" -c "$W/a.cfg" 2>&1); rc=$?
[ $rc = 1 ] && [[ "$out" == *"gateway.adapt: mix/: weight 'x' of 'a'"* ]]
ok $? "a bad default mixture: '$out' (exit $rc)"
out=$("$G" --port 70000 -c "$W/a.cfg" 2>&1); [ $? = 2 ] && [[ "$out" == *"--port: '70000'"* ]]
ok $? "a bad --port: '$out'"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
