/* qgemm.h - internal: prompt batches (t2_matmul with B > 1) on quantized weights at the
 * avx512vnni kernel level (kernels.c calls it for the types t2_kv_has accepts). */
#ifndef T2_QGEMM_H
#define T2_QGEMM_H

#include "base/pool.h"
#include "engine/t2_types.h"

/* Y[b, :] = W X[b, :] for b < B (Y is B x W.rows, X is B x W.cols): every row of Y is
 * bit-identical to t2_matvec(W, X[b]) at the same level, whatever B or the thread count.
 * Returns 0 or T2_ENOMEM (no memory for the B prepared rows of X). */
int t2_qmm(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int B);
/* Frees the calling thread's buffer for prepared rows (t2_kern_free_scratch calls it). */
void t2_qmm_free_thread(void);

#endif
