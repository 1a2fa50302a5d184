#!/bin/bash
# strategy_mpi.sh - `t2 adapt` scores candidate i on rank i % P and shares the fitness with
# MPI_Allreduce; a candidate's score does not depend on the rank or the thread count, so the
# search and the profile written are the same for any P: -np 2 (1 thread each) writes the same
# bytes as -np 1 (2 threads), per expert and per matrix.
set -u
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # Open MPI
command -v mpirun >/dev/null || { echo "skip: no mpirun"; exit 77; }
. "$(cd "$(dirname "$0")" && pwd)/strategy_setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail=0
for mode in expert matrix; do
    extra=(); [ $mode = matrix ] && extra=(--per-matrix)
    AD=(adapt --task code --shots 4 --pop 8 --iters 3 --seed 3 -m "$B" --factors "$W/F.gguf"
        --experts "$W/ex" "${extra[@]}")
    for np in 1 2; do
        j=$((2 / np))
        if ! timeout 120 mpirun --oversubscribe -np $np "$T2" "${AD[@]}" -j $j \
                -o "$W/$mode$np.gguf" >"$W/$mode$np.out" 2>&1; then
            cat "$W/$mode$np.out"; echo "FAIL $mode: mpirun -np $np"; fail=1; continue 2
        fi
        grep -q "; $np rank" "$W/$mode$np.out" || { echo "FAIL $mode: -np $np did not run $np ranks"; fail=1; }
    done
    if cmp -s "$W/${mode}1.gguf" "$W/${mode}2.gguf"; then
        echo "ok   $mode: -np 2 writes the same profile as -np 1"
    else
        echo "FAIL $mode: the profiles of -np 1 and -np 2 differ"; "$T2P" show "$W/${mode}1.gguf"
        "$T2P" show "$W/${mode}2.gguf"; fail=1
    fi
    # and the same report, but for the rank line and the timings
    norm() { sed -e '/rank.* thread/d' -e '/^wrote /d' -e 's/ profile=.*//' -e 's/[0-9.]* s\b.*//' "$1"; }
    if diff <(norm "$W/${mode}1.out" | grep -v '^t2 adapt: iter') \
            <(norm "$W/${mode}2.out" | grep -v '^t2 adapt: iter') >/dev/null; then
        echo "ok   $mode: same shots accuracies reported"
    else
        echo "FAIL $mode: reports differ"; diff <(norm "$W/${mode}1.out") <(norm "$W/${mode}2.out"); fail=1
    fi
done
exit $fail
