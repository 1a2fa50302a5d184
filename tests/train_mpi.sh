#!/bin/bash
# train_mpi.sh - data parallelism: `mpirun -np 2 t2 train` and `mpirun -np 1 t2 train` on the
# same data, seed and global batch give the same loss curve (1e-4 relative per step; only the
# float summation order of the gradient differs), and so do 3 ranks with an uneven split.
set -u
T2="${T2_BIN:-/work/main/build/bin}/t2"
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/train_data.sh"
command -v mpirun >/dev/null || { echo "SKIP: no mpirun"; exit 77; }
[ -x "$T2" ] || { echo "FAIL: $T2 not found (set T2_BIN)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
W="$(mktemp -d /tmp/t2_train_mpi.XXXXXX)"
trap 'rm -rf "$W"' EXIT
make_train_text "$W/data.txt"
ARGS="-f $W/data.txt --dim 32 --hidden 48 --layers 2 --heads 4 --kv-heads 2 --ctx 32 -T 24 -b 6
      -n 12 --lr 3e-3 -s 3 -j 1"
fail=0
for np in 1 2 3; do
    if ! timeout 120 mpirun --oversubscribe -np $np "$T2" train $ARGS -o "$W/np$np.gguf" \
            > "$W/np$np.out" 2>&1; then
        cat "$W/np$np.out"; echo "FAIL: mpirun -np $np"; exit 1
    fi
    grep -q "$np rank" "$W/np$np.out" || { echo "FAIL: -np $np did not run $np ranks"; fail=1; }
done
for np in 2 3; do
    res=$(paste -d, <(cut -d, -f1,2 "$W/np1.gguf.csv") <(cut -d, -f2 "$W/np$np.gguf.csv") |
          awk -F, 'NR > 1 { d = ($2 - $3) / $2; if (d < 0) d = -d; if (d > m) m = d; n++ }
                   END { printf "%d %.3g\n", n, m }')
    read -r rows maxrel <<< "$res"
    if [ "$rows" = 12 ] && awk -v m="$maxrel" 'BEGIN { exit !(m <= 1e-4) }'; then
        echo "ok   -np $np vs -np 1: $rows steps, max relative loss difference $maxrel"
    else
        echo "FAIL -np $np vs -np 1: $rows steps, max relative loss difference $maxrel"; fail=1
    fi
done
exit $fail
