#!/usr/bin/env bash
# The layers of shared/ (shared/CMakeLists.txt): a file of layer L includes only headers of L and
# of the layers before it; proto/, router/ and deploy/ include only base/; and the router, whose
# library needs no linear algebra, links no OpenBLAS, LAPACK or MPI library.
# Usage: layering.sh SOURCE_DIR [BIN_DIR]
set -uo pipefail
src=${1:?source dir}
bin=${2:-}
layers=(base engine svf train tasks)
fail=0
rank() { local i; for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }

checked=0
for dir in "$src"/shared/*/; do
    L=$(basename "$dir")
    rL=$(rank "$L")
    if [ "$rL" -lt 0 ]; then echo "FAIL: shared/$L is not a layer (${layers[*]})"; fail=1; continue; fi
    for f in "$dir"*.[ch]; do
        while IFS= read -r line; do
            inc=$(sed -E 's/^#include "([^"]*)".*/\1/' <<<"$line")
            case "$inc" in
            */*) ;;
            *) if [ -e "$src/shared/$L/$inc" ] || ls "$src"/shared/*/"$inc" >/dev/null 2>&1; then
                   echo "FAIL: ${f#$src/}: #include \"$inc\" does not name its layer"; fail=1
               fi; continue ;;
            esac
            I=${inc%%/*}
            rI=$(rank "$I")
            [ "$rI" -lt 0 ] && continue # not a shared/ header (e.g. generated)
            checked=$((checked + 1))
            if [ "$rI" -gt "$rL" ]; then
                echo "FAIL: ${f#$src/} (layer $L) includes $inc (layer $I, above it)"; fail=1
            fi
        done < <(grep -E '^#include "' "$f")
    done
done
for d in proto router deploy; do
    while IFS= read -r hit; do
        echo "FAIL: $d/ may use only shared/base/: $hit"; fail=1
    done < <(grep -HnE '^#include "(engine|svf|train|tasks)/' "$src/$d"/*.[ch] 2>/dev/null)
done
for f in "$src"/shared/*.[ch]; do
    [ -e "$f" ] && { echo "FAIL: loose file in shared/: ${f#$src/}"; fail=1; }
done
if [ -n "$bin" ]; then
    if [ ! -x "$bin/t2-router" ]; then echo "FAIL: $bin/t2-router not built"; fail=1
    elif libs=$(ldd "$bin/t2-router" | grep -Ei 'openblas|lapack|blas|libmpi'); then
        echo "FAIL: t2-router links: $libs"; fail=1
    fi
fi
echo "layering: $checked layered includes checked"
[ "$checked" -gt 50 ] || { echo "FAIL: too few includes seen ($checked): is $src the source tree?"; fail=1; }
exit $fail
