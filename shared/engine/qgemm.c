/* qgemm.c - quantized weights times a batch of activation rows (t2_qmm, qgemm.h).
 *
 * The B rows of X are rounded to 8 bits once (quants_vnni.h's x8 form; in parallel, a fixed row
 * per call) and the output is cut in tiles of QMM_RT rows of W, claimed by the pool's threads.
 * A tile is passed with all B rows to t2_kv_rows: the legacy types pack it once (transposed, one
 * row per lane: quants_vnni_tile.c) for all B; the K-quants decode each row once per group of 4
 * rows of X (quants_vnni.c's register-blocked kernels). Each output is computed by the same
 * operations as t2_matvec's (the kernels'
 * arithmetic does not depend on how many vectors share a row), so the result depends neither on
 * B nor on the number of threads.
 */
#include "engine/qgemm.h"

#include "base/scratch.h"
#include "base/t2_err.h"
#include "engine/quants_vnni.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__x86_64__)

#define QMM_RT 16 /* rows of W per tile (in L1 with the 4 activation rows of a group) */

typedef struct qmm_job {
    float **ys;           /* B output row pointers */
    const void **xp;      /* B prepared rows */
    const t2_mat *W;
    const float *X;
    int B, ntiles;
    size_t xbytes;        /* bytes per prepared row */
    atomic_int next_tile; /* tiles claimed dynamically (the values do not depend on who) */
} qmm_job;

/* The prepared rows live in the thread's scratch buffer T2_SCRATCH_QMM (base/scratch.h). */
static void *buf_get(size_t bytes) { return t2_scratch_get(T2_SCRATCH_QMM, bytes); }

void t2_qmm_free_thread(void) { t2_scratch_release(T2_SCRATCH_QMM); }

static void prep_task(void *ctx, int ith, int nth) {
    const qmm_job *j = ctx;
    int lo, hi, cols = j->W->cols;
    t2_split(j->B, 1, ith, nth, &lo, &hi);
    for (int b = lo; b < hi; b++)
        t2_kv_prep((void *)j->xp[b], j->X + (size_t)b * cols, cols);
}

static void tile_task(void *ctx, int ith, int nth) {
    qmm_job *j = ctx;
    const t2_mat *W = j->W;
    size_t rb = t2_dtype_row_bytes(W->type, W->cols);
    (void)ith;
    (void)nth;
    for (;;) {
        int t = atomic_fetch_add_explicit(&j->next_tile, 1, memory_order_relaxed);
        if (t >= j->ntiles) return;
        int r0 = t * QMM_RT, r1 = r0 + QMM_RT < W->rows ? r0 + QMM_RT : W->rows;
        t2_kv_rows(W->type, j->ys, W->data, rb, W->cols, j->xp, j->B, r0, r1);
    }
}

int t2_qmm(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int B) {
    size_t xbytes = t2_x8_bytes(W->cols);
    size_t ptrs = T2_X8_A64((size_t)B * (sizeof(float *) + sizeof(void *)));
    uint8_t *buf = buf_get(ptrs + xbytes * (size_t)B);
    if (!buf)
        return t2_err_set(T2_ENOMEM, "matmul: no memory for %d prepared rows of %d", B, W->cols);
    qmm_job j = {(float **)buf, (const void **)(buf + (size_t)B * sizeof(float *)), W, X, B,
                 (W->rows + QMM_RT - 1) / QMM_RT, xbytes, 0};
    for (int b = 0; b < B; b++) {
        j.ys[b] = Y + (size_t)b * W->rows;
        j.xp[b] = buf + ptrs + xbytes * (size_t)b;
    }
    t2_pool_run(pool, prep_task, &j);
    atomic_init(&j.next_tile, 0);
    t2_pool_run(pool, tile_task, &j);
    return 0;
}

#else

int t2_qmm(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int B) {
    (void)pool, (void)Y, (void)W, (void)X, (void)B;
    return t2_err_set(T2_EUNSUPPORTED, "matmul: no 8-bit kernels on this architecture");
}
void t2_qmm_free_thread(void) {}

#endif
