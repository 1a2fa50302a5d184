/* gemm.c - the float matrix-matrix product: level tables, the portable kernels, the driver that
 * splits panels of W over the pool (gemm.h). The SIMD kernels live in gemm_avx512.c and
 * gemm_avx2.c (target attributes, called only at the level kernels.c chose for the CPU). */
#include "engine/gemm.h"

#include "base/scratch.h"
#include "base/t2_err.h"
#include "engine/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

typedef void (*gemm_pack_fn)(void *wp, const void *W, size_t rb, t2_dtype t, int nrows, int K);
typedef void (*gemm_kern_fn)(float *Y, size_t ldy, const void *const *xr, const void *wp, int kc,
                             int mr, int nr, int load);

typedef struct gemm_ops {
    int mr, nr, kc; /* rows of X and of W per kernel call, columns per call (kc even) */
    int es;         /* bytes per packed element: 4 (f32) or 2 (bf16 pairs) */
    gemm_pack_fn pack;
    gemm_kern_fn kern;
} gemm_ops;

#define GEMM_MR_MAX 8

/* ------------------------------------------------------------------------------------------ */
/* Portable C: NR 8, MR 4. Where the compiler has a fast fmaf (FP_FAST_FMAF, e.g. aarch64) the
 * chain is the SIMD levels' (one rounding per step, the same bits); elsewhere (x86-64 baseline
 * builds, where the generic level runs only on CPUs without AVX2 + FMA) fmaf would be a software
 * routine ~100x slower, so each step rounds the product and the sum separately (the same
 * bound, other bits).                                                                         */
#ifdef FP_FAST_FMAF
#define GEN_FMA(w, x, c) fmaf(w, x, c)
#else
#define GEN_FMA(w, x, c) ((c) + (w) * (x))
#endif

#define GEN_NR 8
#define GEN_MR 4

static float gen_ld(const uint8_t *row, t2_dtype t, int k) {
    uint16_t h;
    float f;
    switch (t) {
    case T2_F16: memcpy(&h, row + 2 * (size_t)k, 2); return t2_f16_to_f32(h);
    case T2_BF16: memcpy(&h, row + 2 * (size_t)k, 2); return t2_bf16_to_f32(h);
    default: memcpy(&f, row + 4 * (size_t)k, 4); return f;
    }
}

static void gen_pack(void *wp, const void *W, size_t rb, t2_dtype t, int nrows, int K) {
    float *p = wp;
    for (int n = 0; n < GEN_NR; n++) {
        const uint8_t *row = (const uint8_t *)W + (size_t)n * rb;
        for (int k = 0; k < K; k++) p[(size_t)k * GEN_NR + n] = n < nrows ? gen_ld(row, t, k) : 0.0f;
    }
}

static void gen_kern(float *Y, size_t ldy, const void *const *xr, const void *wp, int kc, int mr,
                     int nr, int load) {
    float c[GEN_MR][GEN_NR];
    for (int i = 0; i < GEN_MR; i++)
        for (int n = 0; n < GEN_NR; n++)
            c[i][n] = load && i < mr && n < nr ? Y[(size_t)i * ldy + n] : 0.0f;
    const float *w = wp;
    for (int k = 0; k < kc; k++)
        for (int i = 0; i < GEN_MR; i++) {
            float x = ((const float *)xr[i])[k];
            for (int n = 0; n < GEN_NR; n++) c[i][n] = GEN_FMA(w[(size_t)k * GEN_NR + n], x, c[i][n]);
        }
    for (int i = 0; i < mr; i++)
        for (int n = 0; n < nr; n++) Y[(size_t)i * ldy + n] = c[i][n];
}

static const gemm_ops gops_generic = {GEN_MR, GEN_NR, 256, 4, gen_pack, gen_kern};

#if defined(__x86_64__)
static const gemm_ops gops_avx512 = {8, 32, 256, 4, t2_g512_pack_f32, t2_g512_kern_f32};
static const gemm_ops gops_avx512_bf16 = {8, 32, 512, 2, t2_g512_pack_bf16dot,
                                          t2_g512_kern_bf16dot};
static const gemm_ops gops_avx2 = {6, 16, 256, 4, t2_g256_pack_f32, t2_g256_kern_f32};

/* AVX512_BF16 straight from CPUID (leaf 7, sub-leaf 1, EAX bit 5): clang 14's
 * __builtin_cpu_supports may not know it. Used only at level avx512 (OS support checked there). */
static int cpu_has_avx512_bf16(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
}
#endif

/* BF16 on bf16 dot products: -1 not decided yet (T2_BF16_DOT=1 in the environment turns it on),
 * 0 off, 1 on. */
static atomic_int g_bf16_dot = -1;

static int bf16_dot_on(void) {
    int v = atomic_load_explicit(&g_bf16_dot, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("T2_BF16_DOT");
        v = e && !strcmp(e, "1");
        int expected = -1;
        atomic_compare_exchange_strong(&g_bf16_dot, &expected, v);
        v = atomic_load(&g_bf16_dot);
    }
    return v;
}

int t2_gemm_set_bf16_dot(int on) {
#if defined(__x86_64__)
    if (on && !cpu_has_avx512_bf16())
        return t2_err_set(T2_EUNSUPPORTED, "gemm: this CPU has no AVX-512 BF16 dot products");
#else
    if (on) return t2_err_set(T2_EUNSUPPORTED, "gemm: bf16 dot products need x86-64 AVX-512 BF16");
#endif
    atomic_store(&g_bf16_dot, on ? 1 : 0);
    return 0;
}

/* The kernels for weights of type t at the current kernel level. */
static const gemm_ops *gops_for(t2_dtype t) {
#if defined(__x86_64__)
    const char *lv = t2_kern_level();
    if (!strncmp(lv, "avx512", 6)) /* avx512 and avx512vnni (which adds integer dots only) */
        return t == T2_BF16 && bf16_dot_on() && cpu_has_avx512_bf16() ? &gops_avx512_bf16
                                                                      : &gops_avx512;
    if (!strcmp(lv, "avx2")) return &gops_avx2;
#endif
    (void)t;
    return &gops_generic;
}

int t2_gemm_supports(t2_dtype t) { return t == T2_F32 || t == T2_F16 || t == T2_BF16; }

int t2_gemm_bf16_dot(void) { return gops_for(T2_BF16)->es == 2; }

const char *t2_gemm_kernels(t2_dtype t) {
    const gemm_ops *g = gops_for(t);
#if defined(__x86_64__)
    if (g == &gops_avx512 || g == &gops_avx512_bf16) return "avx512";
    if (g == &gops_avx2) return "avx2";
#endif
    return g == &gops_generic ? "generic" : "?";
}

/* ------------------------------------------------------------------------------------------ */
/* Per-thread scratch (base/scratch.h): the packed panel and, on the calling thread, X in bf16. */

void t2_gemm_free_thread(void) {
    t2_scratch_release(T2_SCRATCH_GEMM_PANEL);
    t2_scratch_release(T2_SCRATCH_GEMM_X);
}

/* ------------------------------------------------------------------------------------------ */
/* Driver: threads claim panels of NR rows of W; per panel, pack it (all K), then for each KC
 * block of columns run the kernel over all MR-row blocks of X (the panel's block stays in L1).
 * Which thread takes a panel never changes a value (every output is one fixed chain). */

typedef struct gemm_job {
    const gemm_ops *o;
    float *Y;
    const t2_mat *W;
    const void *X; /* f32 rows (stride K) or bf16 rows (stride Kp) */
    size_t ldx;    /* elements */
    int M, Kp, npanels;
    atomic_int next;
    atomic_int failed;
} gemm_job;

/* Bytes of W in panel p (its rows are contiguous) and where they start. */
static const uint8_t *panel_rows(const gemm_job *j, int p, size_t *bytes) {
    const t2_mat *W = j->W;
    int n0 = p * j->o->nr, nr = W->rows - n0 < j->o->nr ? W->rows - n0 : j->o->nr;
    size_t rb = t2_dtype_row_bytes(W->type, W->cols);
    *bytes = (size_t)nr * rb;
    return (const uint8_t *)W->data + (size_t)n0 * rb;
}

/* Panel p; while its kernels run, the rows of panel `next` (-1: none) are prefetched into L2 a
 * slice per kernel call, so that packing them does not wait for memory: the packing reads 16-32
 * rows at once, more streams than the hardware prefetchers follow. */
static void gemm_panel(const gemm_job *j, void *wp, int p, int next) {
    const gemm_ops *o = j->o;
    const t2_mat *W = j->W;
    int N = W->rows, K = W->cols, n0 = p * o->nr;
    int nr = N - n0 < o->nr ? N - n0 : o->nr;
    size_t rb = t2_dtype_row_bytes(W->type, K), pf_bytes = 0, pf_step = 0, pf_at = 0;
    const uint8_t *pf = next >= 0 ? panel_rows(j, next, &pf_bytes) : NULL;
    if (pf) {
        size_t calls = (size_t)((K + o->kc - 1) / o->kc) * (size_t)((j->M + o->mr - 1) / o->mr);
        pf_step = (pf_bytes / calls + 63) / 64 * 64;
    }
    o->pack(wp, (const uint8_t *)W->data + (size_t)n0 * rb, rb, W->type, nr, K);
    const void *xr[GEMM_MR_MAX];
    for (int k0 = 0; k0 < K; k0 += o->kc) {
        int kc = K - k0 < o->kc ? K - k0 : o->kc;
        const uint8_t *wk = (const uint8_t *)wp + (size_t)k0 * o->nr * o->es;
        for (int m0 = 0; m0 < j->M; m0 += o->mr) {
            for (size_t e = pf_at + pf_step; pf && pf_at < e && pf_at < pf_bytes; pf_at += 64)
                __builtin_prefetch(pf + pf_at, 0, 2);
            int mr = j->M - m0 < o->mr ? j->M - m0 : o->mr;
            for (int i = 0; i < o->mr; i++) {
                int m = m0 + (i < mr ? i : mr - 1);
                xr[i] = (const uint8_t *)j->X + ((size_t)m * j->ldx + (size_t)k0) * o->es;
            }
            o->kern(j->Y + (size_t)m0 * N + n0, (size_t)N, xr, wk, kc, mr, nr, k0 > 0);
        }
    }
}

static void gemm_task(void *ctx, int ith, int nth) {
    gemm_job *j = ctx;
    (void)ith;
    (void)nth;
    void *wp = t2_scratch_get(T2_SCRATCH_GEMM_PANEL, (size_t)j->o->nr * (size_t)j->Kp * (size_t)j->o->es);
    if (!wp) {
        atomic_store(&j->failed, 1);
        return;
    }
    /* claim one panel ahead: the next one's rows are prefetched while this one is computed */
    int p = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
    while (p < j->npanels) {
        int q = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        gemm_panel(j, wp, p, q < j->npanels ? q : -1);
        p = q;
    }
}

/* X in bf16 (round to nearest even), rows of Kp (even) elements, the pad column zero. */
static const void *x_bf16(const float *X, int M, int K, int Kp) {
    uint16_t *xb = t2_scratch_get(T2_SCRATCH_GEMM_X, (size_t)M * (size_t)Kp * 2);
    if (!xb) return NULL;
    for (int m = 0; m < M; m++) {
#if defined(__x86_64__)
        t2_g512_x_to_bf16(xb + (size_t)m * Kp, X + (size_t)m * K, K);
#endif
        if (Kp > K) xb[(size_t)m * Kp + K] = 0;
    }
    return xb;
}

int t2_gemm(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int M) {
    if (!t2_gemm_supports(W->type))
        return t2_err_set(T2_EINVAL, "gemm: weights of type %s are not float",
                          t2_dtype_name(W->type));
    if (M <= 0 || W->rows <= 0) return 0;
    int K = W->cols;
    if (K <= 0) {
        memset(Y, 0, (size_t)M * (size_t)W->rows * sizeof(float));
        return 0;
    }
    gemm_job j = {.o = gops_for(W->type), .Y = Y, .W = W, .X = X, .ldx = (size_t)K, .M = M,
                  .Kp = K};
    j.npanels = (W->rows + j.o->nr - 1) / j.o->nr;
    if (j.o->es == 2) {
        j.Kp = (K + 1) / 2 * 2;
        j.ldx = (size_t)j.Kp;
        j.X = x_bf16(X, M, K, j.Kp);
        if (!j.X) return t2_err_set(T2_ENOMEM, "gemm: no memory for %d x %d bf16 rows", M, K);
    }
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    if (!pool || t2_pool_size(pool) == 1) gemm_task(&j, 0, 1);
    else t2_pool_run(pool, gemm_task, &j);
    /* a thread without scratch left panels to the others; if none remain unclaimed all is done */
    if (atomic_load(&j.failed) && atomic_load(&j.next) < j.npanels) gemm_task(&j, 0, 1);
    if (atomic_load(&j.next) < j.npanels)
        return t2_err_set(T2_ENOMEM, "gemm: no memory for a %d x %d packed panel", j.o->nr, K);
    return 0;
}
