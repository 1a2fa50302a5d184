/* membw.c - memory read bandwidth probe (see kernels.h). */
#include "engine/kernels.h"

#include "base/t2_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

double t2_kern_sum_f32(const float *a, size_t n); /* kernels.c */

#define T2_MEMBW_PASSES 11 /* the first is a warm-up; best of the others (shared machines are noisy) */

typedef struct membw_job {
    const float *a;
    size_t n;
    double *part; /* one per thread, spaced by a cache line */
} membw_job;

static void membw_task(void *ctx, int ith, int nth) {
    const membw_job *j = ctx;
    size_t per = (j->n / (size_t)nth + 1023) / 1024 * 1024; /* 4 KiB-aligned slices */
    size_t lo = per * (size_t)ith, hi = lo + per;
    if (lo > j->n) lo = j->n;
    if (hi > j->n) hi = j->n;
    j->part[8 * ith] = t2_kern_sum_f32(j->a + lo, hi - lo);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double t2_membw_read_pass(t2_pool *pool, const float *a, size_t n) {
    int nth = t2_pool_size(pool);
    double part_buf[8 * 16], *part = nth <= 16 ? part_buf : calloc((size_t)nth * 8, sizeof *part);
    if (!part) return T2_ENOMEM;
    membw_job j = {a, n, part};
    double t0 = now_s();
    t2_pool_run(pool, membw_task, &j);
    double t = now_s() - t0;
    /* the sums are the loads' only use: publish them so the reads cannot be optimised away */
    double keep = 0;
    for (int i = 0; i < nth; i++) keep += part[8 * i];
    __asm__ volatile("" : : "g"(keep) : "memory");
    if (part != part_buf) free(part);
    return (double)n * sizeof(float) / t / 1e9;
}

double t2_membw_read_gbs(int n_threads, size_t bytes) {
    if (n_threads < 1 || bytes < 4096) return T2_EINVAL;
    size_t n = bytes / sizeof(float);
    bytes = n * sizeof(float);
    float *a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) return t2_err_set(T2_ENOMEM, "membw: cannot map %zu bytes", bytes);
    for (size_t i = 0; i < n; i += 1024) a[i] = (float)(i & 255); /* fault every page in */
    double *part = calloc((size_t)n_threads * 8, sizeof *part);
    t2_pool *pool;
    if (t2_pool_new(&pool, n_threads) < 0 || !part) {
        free(part);
        t2_pool_destroy(&pool);
        munmap(a, bytes);
        return t2_err_set(T2_ENOMEM, "membw: cannot start %d threads", n_threads);
    }
    membw_job j = {a, n, part};
    double best = 1e30, sink = 0;
    for (int pass = 0; pass < T2_MEMBW_PASSES; pass++) {
        double t0 = now_s();
        t2_pool_run(pool, membw_task, &j);
        double t = now_s() - t0;
        for (int i = 0; i < n_threads; i++) sink += part[8 * i];
        if (pass > 0 && t < best) best = t;
    }
    /* keep the sums alive */
    volatile double keep = sink;
    (void)keep;
    t2_pool_destroy(&pool);
    free(part);
    munmap(a, bytes);
    return (double)bytes / best / 1e9;
}
