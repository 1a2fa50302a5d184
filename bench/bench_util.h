/* bench_util.h - helpers shared by the benchmarks. */
#ifndef T2_BENCH_UTIL_H
#define T2_BENCH_UTIL_H

#include "engine/t2_types.h"

/* Write the 134 M-parameter bench shape (dim 768, hidden 2048, 12 layers, 12 heads, vocab
 * 32000, separate output matrix, random weights, seed 42) as `type` to path unless it exists. */
int bench_ensure_134m(const char *path, t2_dtype type);

#endif
