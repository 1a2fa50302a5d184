/* quants_kern.h - internal: matrix-vector rows for the quantized types other than Q8_0, for the
 * dispatch table in kernels.c. x is prepared as for Q8_0 (kernels.c's prep_x: cols int16 x16,
 * cols / 32 float scales dx, then cols / 16 floats xs = dx * the sum of x16 over each 16
 * elements). Each output row is a fixed sequence of operations that depends
 * only on the type, cols and the level (see quants_dot.c for the arithmetic). */
#ifndef T2_QUANTS_KERN_H
#define T2_QUANTS_KERN_H

#include "engine/t2_types.h"

#include <stddef.h>

/* y[r] = row r of W (type t) . x for r in [r0, r1). */
void t2_qgen_rows(t2_dtype t, float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                  int r1);
#if defined(__x86_64__)
void t2_k512_qrows(t2_dtype t, float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                   int r1);
void t2_k256_qrows(t2_dtype t, float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                   int r1);
#endif

#endif
