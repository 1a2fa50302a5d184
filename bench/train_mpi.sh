#!/bin/bash
# train_mpi.sh - training tokens/s of `t2 train` at 1 and 2 MPI ranks (1 thread each), and at
# 1 rank x 2 threads for comparison, on the same model shape, data and global batch.
#
#   bench/train_mpi.sh [BIN_DIR] [CSV]       (default build/bin, bench-train-mpi.csv)
#
# Shape: dim 288, hidden 768, 6 layers, 6 heads, byte vocabulary (259), batch 8 x 128 tokens,
# 12 steps; tokens/s is the median over steps 3..12 of the CSV log's tokens_per_s.
set -eu
BIN="${1:-build/bin}"
CSV="${2:-bench-train-mpi.csv}"
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../tests/train_data.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
W="$(mktemp -d /tmp/t2_bench_train.XXXXXX)"
trap 'rm -rf "$W"' EXIT
make_train_text "$W/data.txt"
ARGS="-f $W/data.txt --dim 288 --hidden 768 --layers 6 --heads 6 --ctx 128 -T 128 -b 8 -n 12
      --log-every 100"
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "ranks,threads_per_rank,tokens_per_s,final_loss" > "$CSV"
printf "%-6s %-8s %12s %12s\n" ranks threads tokens/s final_loss
for cfg in "1 1" "2 1" "1 2"; do
    read -r np th <<< "$cfg"
    mpirun --oversubscribe -np "$np" "$BIN/t2" train $ARGS -j "$th" -o "$W/m.gguf" >/dev/null 2>&1
    tps=$(tail -n +4 "$W/m.gguf.csv" | cut -d, -f5 | median)
    loss=$(tail -1 "$W/m.gguf.csv" | cut -d, -f2)
    printf "%-6s %-8s %12.0f %12.4f\n" "$np" "$th" "$tps" "$loss"
    echo "$np,$th,$tps,$loss" >> "$CSV"
done
echo "wrote $CSV"
