# expect.sh - sourced by the shell tests: a temp dir, pass/fail counters and checks.
#   expect_fail NAME PATTERN CMD...   CMD exits non-zero (not by a signal), stderr matches PATTERN
#   run CMD...                        set-up step that must succeed (else the test stops)
#   expect_end                        prints "N passed, N failed"; exit status 0 if none failed
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
expect_fail() {
    local name=$1 pat=$2; shift 2
    "$@" > "$tmp/out" 2> "$tmp/err"; local rc=$?
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qE -- "$pat" "$tmp/err"; then
        echo "ok   $name: $(head -1 "$tmp/err" | cut -c1-240)"; pass=$((pass+1))
    else
        echo "FAIL $name (exit $rc, wanted /$pat/):"; head -5 "$tmp/err"; fail=$((fail+1))
    fi
}
run() { "$@" > /dev/null 2> "$tmp/err" || { echo "setup failed: $*: $(cat "$tmp/err")"; exit 1; }; }
expect_end() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
