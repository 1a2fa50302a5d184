/* t2_matvec_batch: several vectors against one matrix, bit-identical to t2_matvec per vector. */
#include "kernels.h"

#include <stddef.h>

#define BATCH_BLOCK_ROWS 32 /* rows kept in cache while every vector passes over them */

typedef struct {
    float *const *ys;
    const t2_mat *W;
    const float *const *xs;
    int B;
} batch_job;

static void batch_task(void *arg, int ith, int nth) {
    const batch_job *j = arg;
    int lo, hi;
    t2_split(j->W->rows, BATCH_BLOCK_ROWS, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r += BATCH_BLOCK_ROWS) {
        int r1 = r + BATCH_BLOCK_ROWS < hi ? r + BATCH_BLOCK_ROWS : hi;
        for (int b = 0; b < j->B; b++) t2_matvec_rows(j->ys[b], j->W, j->xs[b], r, r1);
    }
}

void t2_matvec_batch(t2_pool *pool, float *const *ys, const t2_mat *W, const float *const *xs,
                     int B) {
    if (B <= 0 || W->rows <= 0) return;
    if (B == 1) {
        t2_matvec(pool, ys[0], W, xs[0]);
        return;
    }
    batch_job j = {ys, W, xs, B};
    /* small products are not worth waking the pool (as t2_matvec decides) */
    if (!pool || (size_t)W->rows * W->cols * B < 65536)
        batch_task(&j, 0, 1);
    else
        t2_pool_run(pool, batch_task, &j);
}
