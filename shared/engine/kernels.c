/* kernels.c - run-time dispatch, portable kernels, threading of matvec / matmul, small kernels.
 *
 * The SIMD variants live in kernels_avx512.c and kernels_avx2.c (per-function target
 * attributes, no global -m flags); this file picks a table of function pointers once from the
 * CPU's flags (T2_KERN_LEVEL=avx512|avx2|generic in the environment can lower it) and splits
 * work over the pool.
 */
#include "engine/kernels.h"
#include "engine/kernels_simd.h"

#include "base/scratch.h"
#include "base/t2_err.h"
#include "engine/gemm.h"
#include "engine/quants.h"
#include "engine/quants_kern.h"
#include "engine/qgemm.h"
#include "engine/quants_vnni.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* OpenBLAS extensions (declared here so that any cblas.h will do). */
void openblas_set_num_threads(int);
char *openblas_get_corename(void);

typedef void (*t2_rows_fn)(float *y, const void *W, size_t rb, int cols, const float *x, int r0,
                           int r1);
/* Q8_0 kernels take x prepared by q8_prep_x (int16 + per-block scale, see below). */
typedef void (*t2_rowsq_fn)(float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                            int r1);
typedef void (*t2_cvt_fn)(float *dst, const void *src, int64_t n);
/* Batched (t2_matvec_batch): ys[b][r] = dot(row r, xs[b]) for b < nb, r in [r0, r1), each value
 * bit-identical to the single-vector kernel's (the same operations per vector; a row is loaded
 * once for a group of vectors). */
typedef void (*t2_rowsb_fn)(float *const *ys, const void *W, size_t rb, int cols,
                            const float *const *xs, int nb, int r0, int r1);
typedef void (*t2_rowsbq_fn)(float *const *ys, const void *W, size_t rb, int cols,
                             const void *const *xqs, int nb, int r0, int r1);

#define T2_NDEQ 16 /* type ids 0..15 cover every block type */

typedef struct t2_kern_ops {
    const char *name;
    t2_rows_fn mv_f32, mv_f16, mv_bf16;
    t2_rowsq_fn mv_q8_0;
    t2_rowsb_fn mvb_f32, mvb_f16, mvb_bf16;
    t2_rowsbq_fn mvb_q8_0;
    void (*q8_prep)(void *buf, const float *x, int cols); /* same bits at every level */
    t2_cvt_fn cvt_f16, cvt_bf16, cvt_q8_0;
    /* Dequantizers of the other block types, indexed by type id (NULL: the portable one); each
     * gives exactly t2_to_f32's values. They feed the dequantize-and-dot matvec and t2_matmul. */
    t2_cvt_fn deq[T2_NDEQ];
    /* Rows of those types on x prepared as for Q8_0 (integer dot products, quants_kern.h). */
    void (*mv_q)(t2_dtype t, float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                 int r1);
    /* avx512vnni level: x is also prepared in 8 bits (quants_vnni.h) after the 16-bit form, and
     * mvb_q runs t2_matvec_batch's rows of the types it has 8-bit kernels for (returns 0
     * otherwise). NULL / 0 at the other levels. */
    int x8;
    int (*mvb_q)(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                 const void *const *xqs, int nb, int r0, int r1);
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);
    double (*sum)(const float *a, size_t n);
} t2_kern_ops;

/* ------------------------------------------------------------------------------------------ */
/* Portable C kernels. Each row: 8 partial sums over columns i % 8, combined as a fixed tree.   */

static inline float ld_u16_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    uint32_t e = h & 0x7c00u;
    if (e == 0 || e == 0x7c00u) return t2_f16_to_f32(h); /* zero, subnormal, inf, nan */
    uint32_t u = ((uint32_t)(h & 0x8000u) << 16) | (((uint32_t)(h & 0x7fffu) + 0x1c000u) << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline float ld_u16_bf16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return t2_bf16_to_f32(h);
}
static inline float ld_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline float tree8(const float *s) {
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

#define DEF_GEN_ROWS(NAME, ES, LD)                                                             \
    static void gen_matvec_##NAME(float *y, const void *W, size_t rb, int cols, const float *x, \
                                  int r0, int r1) {                                            \
        for (int r = r0; r < r1; r++) {                                                        \
            const uint8_t *w = (const uint8_t *)W + (size_t)r * rb;                            \
            float s[8] = {0};                                                                  \
            int i = 0;                                                                         \
            for (; i + 8 <= cols; i += 8)                                                      \
                for (int j = 0; j < 8; j++) s[j] += LD(w + (size_t)(i + j) * ES) * x[i + j];   \
            for (int j = 0; i + j < cols; j++) s[j] += LD(w + (size_t)(i + j) * ES) * x[i + j]; \
            y[r] = tree8(s);                                                                   \
        }                                                                                      \
    }

DEF_GEN_ROWS(f32, 4, ld_f32)
DEF_GEN_ROWS(f16, 2, ld_u16_f16)
DEF_GEN_ROWS(bf16, 2, ld_u16_bf16)

/* Batched: each group of up to GEN_G vectors shares the row's loads and conversions; per vector
 * the partial sums, their order and the tree are gen_matvec_NAME's (bit-identical results).
 * Blocks of GEN_BLOCK rows, each group passing over a whole block (as the SIMD variants). */
#define GEN_G 4
#define GEN_BLOCK 32
#define DEF_GEN_BATCH_DRIVER(FNAME, ROWG, XT)                                                  \
    static void FNAME(float *const *ys, const void *W, size_t rb, int cols, XT xs, int nb,    \
                      int r0, int r1) {                                                        \
        for (int q0 = r0; q0 < r1; q0 += GEN_BLOCK) {                                          \
            int q1 = q0 + GEN_BLOCK < r1 ? q0 + GEN_BLOCK : r1;                                \
            for (int b = 0; b < nb; b += GEN_G) {                                              \
                int G = nb - b < GEN_G ? nb - b : GEN_G;                                       \
                for (int r = q0; r < q1; r++)                                                  \
                    ROWG(ys + b, r, (const uint8_t *)W + (size_t)r * rb, cols, xs + b, G);     \
            }                                                                                  \
        }                                                                                      \
    }

#define DEF_GEN_ROWS_BATCH(NAME, ES, LD)                                                       \
    static void gen_row_g_##NAME(float *const *ys, int r, const uint8_t *w, int cols,         \
                                 const float *const *xs, int G) {                             \
        float s[GEN_G][8] = {{0}};                                                             \
        int i = 0;                                                                             \
        for (; i + 8 <= cols; i += 8) {                                                        \
            float wf[8];                                                                       \
            for (int j = 0; j < 8; j++) wf[j] = LD(w + (size_t)(i + j) * ES);                  \
            for (int g = 0; g < G; g++)                                                        \
                for (int j = 0; j < 8; j++) s[g][j] += wf[j] * xs[g][i + j];                   \
        }                                                                                      \
        for (int j = 0; i + j < cols; j++) {                                                   \
            float wv = LD(w + (size_t)(i + j) * ES);                                           \
            for (int g = 0; g < G; g++) s[g][j] += wv * xs[g][i + j];                          \
        }                                                                                      \
        for (int g = 0; g < G; g++) ys[g][r] = tree8(s[g]);                                    \
    }                                                                                          \
    DEF_GEN_BATCH_DRIVER(gen_matvecb_##NAME, gen_row_g_##NAME, const float *const *)

DEF_GEN_ROWS_BATCH(f32, 4, ld_f32)
DEF_GEN_ROWS_BATCH(f16, 2, ld_u16_f16)
DEF_GEN_ROWS_BATCH(bf16, 2, ld_u16_bf16)

/* Q8_0 with f32 x: the fallback when no memory is left for the prepared x. */
static void gen_matvec_q8_0_f32x(float *y, const void *W, size_t rb, int cols, const float *x,
                                 int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W + (size_t)r * rb;
        float acc = 0.0f;
        for (int b = 0; b < cols / 32; b++) {
            const uint8_t *blk = w + (size_t)b * 34;
            const float *xb = x + 32 * b;
            float s[4] = {0};
            for (int j = 0; j < 32; j++) s[j & 3] += (float)(int8_t)blk[2 + j] * xb[j];
            acc += ld_u16_f16(blk) * ((s[0] + s[1]) + (s[2] + s[3]));
        }
        y[r] = acc;
    }
}

/* Prepared x for Q8_0 weights: cols int16 x16, then cols / 32 f32 scales dx, with
 * x[i] ~= dx[i / 32] * x16[i] (dx = max |x| of the block / 32767: 16-bit precision per block,
 * far below the weights' own 8-bit quantisation error). A block holding inf / nan gets dx = nan
 * so that it shows in the result. */
static size_t q8_prep16_bytes(int cols) {
    return (size_t)cols * 2 + (size_t)(cols / 32) * 4 + (size_t)(cols / 16) * 4;
}
/* Where the 8-bit form starts (levels with x8), and the bytes of both forms. */
#define X8_OFF(cols) T2_X8_A64(q8_prep16_bytes(cols))
static size_t q8_prep_bytes(int cols) { return X8_OFF(cols) + t2_x8_bytes(cols); }

static void q8_prep_x(void *buf, const float *x, int cols) {
    int16_t *x16 = buf;
    float *dx = (float *)(x16 + cols);
    for (int b = 0; b < cols / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        int bad = 0;
        for (int j = 0; j < 32; j++) {
            float a = fabsf(xb[j]);
            bad |= !(a <= 3.0e38f); /* inf or nan */
            if (a > amax) amax = a;
        }
        if (bad || amax == 0.0f) {
            dx[b] = bad ? NAN : 0.0f;
            memset(x16 + 32 * b, 0, 64);
            continue;
        }
        float inv = 32767.0f / amax;
        dx[b] = amax / 32767.0f;
        for (int j = 0; j < 32; j++) {
            long v = lrintf(xb[j] * inv);
            x16[32 * b + j] = (int16_t)(v > 32767 ? 32767 : v < -32767 ? -32767 : v);
        }
    }
}

/* After x16 and dx, the prepared x holds cols / 16 floats xs[h] = dx[h / 2] * (sum of x16 over
 * elements [16h, 16h + 16)): what the formats with a min (w = s q + o) multiply by o. The same
 * scalar code at every level, after the level's q8_prep. */
static int need16(const t2_kern_ops *o, t2_dtype t, int cols);
/* need_16: 0 when only 8-bit kernels will read buf (the 16-bit form is then left out). */
static void prep_x(const t2_kern_ops *o, void *buf, const float *x, int cols, int need_16) {
#if defined(__x86_64__)
    if (o->x8) t2_kv_prep((uint8_t *)buf + X8_OFF(cols), x, cols);
    if (!need_16) return;
#else
    (void)need_16;
#endif
    o->q8_prep(buf, x, cols);
    const int16_t *x16 = buf;
    const float *dx = (const float *)(x16 + cols);
    float *xs = (float *)(dx + cols / 32);
    for (int h = 0; h < cols / 16; h++) {
        int32_t sum = 0;
        for (int j = 0; j < 16; j++) sum += x16[16 * h + j];
        xs[h] = dx[h / 2] * (float)sum;
    }
}

/* y = sum_b (d_b * dx_b) * (q_b . x16_b), each block dot exact in int32. */
static void gen_matvec_q8_0(float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                            int r1) {
    const int16_t *x16 = xq;
    const float *dx = (const float *)(x16 + cols);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W + (size_t)r * rb;
        float acc = 0.0f;
        for (int b = 0; b < cols / 32; b++) {
            const uint8_t *blk = w + (size_t)b * 34;
            int32_t s = 0;
            for (int j = 0; j < 32; j++) s += (int8_t)blk[2 + j] * x16[32 * b + j];
            acc += (float)s * (ld_u16_f16(blk) * dx[b]);
        }
        y[r] = acc;
    }
}

/* Batched gen_matvec_q8_0: a block's int8 weights and scale are read once per group of vectors. */
static void gen_row_g_q8_0(float *const *ys, int r, const uint8_t *w, int cols,
                           const void *const *xqs, int G) {
    const int16_t *x16[GEN_G];
    const float *dx[GEN_G];
    float acc[GEN_G];
    for (int g = 0; g < G; g++) {
        x16[g] = xqs[g];
        dx[g] = (const float *)(x16[g] + cols);
        acc[g] = 0.0f;
    }
    for (int b = 0; b < cols / 32; b++) {
        const uint8_t *blk = w + (size_t)b * 34;
        int32_t q[32];
        for (int j = 0; j < 32; j++) q[j] = (int8_t)blk[2 + j];
        float d = ld_u16_f16(blk);
        for (int g = 0; g < G; g++) {
            const int16_t *xb = x16[g] + 32 * b;
            int32_t s = 0;
            for (int j = 0; j < 32; j++) s += q[j] * xb[j];
            acc[g] += (float)s * (d * dx[g][b]);
        }
    }
    for (int g = 0; g < G; g++) ys[g][r] = acc[g];
}
DEF_GEN_BATCH_DRIVER(gen_matvecb_q8_0, gen_row_g_q8_0, const void *const *)

/* Portable dequantizers of the other block types (t2_to_f32). */
#define DEF_GEN_DEQ(NAME, TYPE)                                                                \
    static void gen_deq_##NAME(float *dst, const void *src, int64_t n) {                      \
        t2_to_f32(dst, src, TYPE, n);                                                          \
    }
DEF_GEN_DEQ(q4_0, T2_Q4_0)
DEF_GEN_DEQ(q4_1, T2_Q4_1)
DEF_GEN_DEQ(q5_0, T2_Q5_0)
DEF_GEN_DEQ(q5_1, T2_Q5_1)
DEF_GEN_DEQ(q2_k, T2_Q2_K)
DEF_GEN_DEQ(q3_k, T2_Q3_K)
DEF_GEN_DEQ(q4_k, T2_Q4_K)
DEF_GEN_DEQ(q5_k, T2_Q5_K)
DEF_GEN_DEQ(q6_k, T2_Q6_K)
/* The table of a level whose own dequantizers are Q4_0, Q4_K, Q5_K and Q6_K (PFX_deq_*). */
#define DEQ_TABLE(Q4_0, Q4_K, Q5_K, Q6_K)                                                      \
    {[T2_Q4_0] = Q4_0, [T2_Q4_1] = gen_deq_q4_1, [T2_Q5_0] = gen_deq_q5_0,                     \
     [T2_Q5_1] = gen_deq_q5_1, [T2_Q2_K] = gen_deq_q2_k, [T2_Q3_K] = gen_deq_q3_k,             \
     [T2_Q4_K] = Q4_K, [T2_Q5_K] = Q5_K, [T2_Q6_K] = Q6_K}

static void gen_cvt_f16(float *dst, const void *src, int64_t n) { t2_to_f32(dst, src, T2_F16, n); }
static void gen_cvt_bf16(float *dst, const void *src, int64_t n) { t2_to_f32(dst, src, T2_BF16, n); }
static void gen_cvt_q8_0(float *dst, const void *src, int64_t n) { t2_to_f32(dst, src, T2_Q8_0, n); }

static float gen_dot(const float *a, const float *b, int n) {
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    for (int j = 0; i + j < n; j++) s[j] += a[i + j] * b[i + j];
    return tree8(s);
}

static void gen_axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static double gen_sum(const float *a, size_t n) {
    float s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j];
    double t = tree8(s);
    for (; i < n; i++) t += a[i];
    return t;
}

static const t2_kern_ops ops_generic = {
    .name = "generic",
    .mv_f32 = gen_matvec_f32,
    .mv_f16 = gen_matvec_f16,
    .mv_bf16 = gen_matvec_bf16,
    .mv_q8_0 = gen_matvec_q8_0,
    .mvb_f32 = gen_matvecb_f32,
    .mvb_f16 = gen_matvecb_f16,
    .mvb_bf16 = gen_matvecb_bf16,
    .mvb_q8_0 = gen_matvecb_q8_0,
    .q8_prep = q8_prep_x,
    .cvt_f16 = gen_cvt_f16,
    .cvt_bf16 = gen_cvt_bf16,
    .cvt_q8_0 = gen_cvt_q8_0,
    .deq = DEQ_TABLE(gen_deq_q4_0, gen_deq_q4_k, gen_deq_q5_k, gen_deq_q6_k),
    .mv_q = t2_qgen_rows,
    .dot = gen_dot,
    .axpy = gen_axpy,
    .sum = gen_sum,
};

/* ------------------------------------------------------------------------------------------ */
/* SIMD tables (kernels_avx512.c, kernels_avx2.c).                                              */

#if defined(__x86_64__)
#define T2_X86 1

static const t2_kern_ops ops_avx512 = {
    .name = "avx512",
    .mv_f32 = t2_k512_matvec_f32,
    .mv_f16 = t2_k512_matvec_f16,
    .mv_bf16 = t2_k512_matvec_bf16,
    .mv_q8_0 = t2_k512_matvec_q8_0,
    .mvb_f32 = t2_k512_matvecb_f32,
    .mvb_f16 = t2_k512_matvecb_f16,
    .mvb_bf16 = t2_k512_matvecb_bf16,
    .mvb_q8_0 = t2_k512_matvecb_q8_0,
    .q8_prep = t2_k512_q8_prep_x,
    .cvt_f16 = t2_k512_to_f32_f16,
    .cvt_bf16 = t2_k512_to_f32_bf16,
    .cvt_q8_0 = t2_k512_to_f32_q8_0,
    .deq = DEQ_TABLE(t2_k512_deq_q4_0, t2_k512_deq_q4_k, t2_k512_deq_q5_k, t2_k512_deq_q6_k),
    .mv_q = t2_k512_qrows,
    .dot = t2_k512_dot,
    .axpy = t2_k512_axpy,
    .sum = t2_k512_sum,
};
static const t2_kern_ops ops_avx2 = {
    .name = "avx2",
    .mv_f32 = t2_k256_matvec_f32,
    .mv_f16 = t2_k256_matvec_f16,
    .mv_bf16 = t2_k256_matvec_bf16,
    .mv_q8_0 = t2_k256_matvec_q8_0,
    .mvb_f32 = t2_k256_matvecb_f32,
    .mvb_f16 = t2_k256_matvecb_f16,
    .mvb_bf16 = t2_k256_matvecb_bf16,
    .mvb_q8_0 = t2_k256_matvecb_q8_0,
    .q8_prep = q8_prep_x,
    .cvt_f16 = t2_k256_to_f32_f16,
    .cvt_bf16 = t2_k256_to_f32_bf16,
    .cvt_q8_0 = t2_k256_to_f32_q8_0,
    .deq = DEQ_TABLE(t2_k256_deq_q4_0, t2_k256_deq_q4_k, t2_k256_deq_q5_k, t2_k256_deq_q6_k),
    .mv_q = t2_k256_qrows,
    .dot = t2_k256_dot,
    .axpy = t2_k256_axpy,
    .sum = t2_k256_sum,
};

/* avx512vnni: the avx512 table with the quantized types that quants_vnni.c covers on x rounded
 * to 8 bits (t2_kv_has); the others keep avx512's 16-bit kernels on the same prepared x. */
static void kv_mv_q(t2_dtype t, float *y, const void *W, size_t rb, int cols, const void *xq,
                    int r0, int r1) {
    if (!t2_kv_has(t, cols)) {
        t2_k512_qrows(t, y, W, rb, cols, xq, r0, r1);
        return;
    }
    const void *x8 = (const uint8_t *)xq + X8_OFF(cols);
    t2_kv_rows(t, &y, W, rb, cols, &x8, 1, r0, r1);
}
static void kv_mv_q8_0(float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                       int r1) {
    if (t2_kv_has(T2_Q8_0, cols)) kv_mv_q(T2_Q8_0, y, W, rb, cols, xq, r0, r1);
    else t2_k512_matvec_q8_0(y, W, rb, cols, xq, r0, r1);
}
/* Blocks of GEN_BLOCK rows, each passed over by groups of up to 16 vectors. */
static int kv_mvb_q(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                    const void *const *xqs, int nb, int r0, int r1) {
    if (!t2_kv_has(t, cols)) return 0;
    const void *x8[16];
    for (int b0 = 0; b0 < nb; b0 += 16) {
        int n = nb - b0 < 16 ? nb - b0 : 16;
        for (int b = 0; b < n; b++) x8[b] = (const uint8_t *)xqs[b0 + b] + X8_OFF(cols);
        for (int q0 = r0; q0 < r1; q0 += GEN_BLOCK) {
            int q1 = q0 + GEN_BLOCK < r1 ? q0 + GEN_BLOCK : r1;
            t2_kv_rows(t, ys + b0, W, rb, cols, x8, n, q0, q1);
        }
    }
    return 1;
}
static void kv_mvb_q8_0(float *const *ys, const void *W, size_t rb, int cols,
                        const void *const *xqs, int nb, int r0, int r1) {
    if (!kv_mvb_q(T2_Q8_0, ys, W, rb, cols, xqs, nb, r0, r1))
        t2_k512_matvecb_q8_0(ys, W, rb, cols, xqs, nb, r0, r1);
}
static const t2_kern_ops ops_avx512vnni = {
    .name = "avx512vnni",
    .mv_f32 = t2_k512_matvec_f32,
    .mv_f16 = t2_k512_matvec_f16,
    .mv_bf16 = t2_k512_matvec_bf16,
    .mv_q8_0 = kv_mv_q8_0,
    .mvb_f32 = t2_k512_matvecb_f32,
    .mvb_f16 = t2_k512_matvecb_f16,
    .mvb_bf16 = t2_k512_matvecb_bf16,
    .mvb_q8_0 = kv_mvb_q8_0,
    .q8_prep = t2_k512_q8_prep_x,
    .cvt_f16 = t2_k512_to_f32_f16,
    .cvt_bf16 = t2_k512_to_f32_bf16,
    .cvt_q8_0 = t2_k512_to_f32_q8_0,
    .deq = DEQ_TABLE(t2_k512_deq_q4_0, t2_k512_deq_q4_k, t2_k512_deq_q5_k, t2_k512_deq_q6_k),
    .mv_q = kv_mv_q,
    .x8 = 1,
    .mvb_q = kv_mvb_q,
    .dot = t2_k512_dot,
    .axpy = t2_k512_axpy,
    .sum = t2_k512_sum,
};

/* F16C and BMI2 straight from CPUID: clang 14's __builtin_cpu_supports does not know them. */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}
static int cpu_has_bmi2(void) {
    unsigned a, b, c, d;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_BMI2);
}
static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma") && cpu_has_f16c() && __builtin_cpu_supports("avx2") &&
           cpu_has_bmi2();
}
static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}
#else
#define T2_X86 0
#endif

static _Atomic(const t2_kern_ops *) g_ops;
static pthread_once_t g_ops_once = PTHREAD_ONCE_INIT;

static const t2_kern_ops *ops_for(const char *level) {
    if (!level) return NULL;
    if (strcmp(level, "generic") == 0) return &ops_generic;
#if T2_X86
    if (strcmp(level, "avx2") == 0) return cpu_has_avx2() ? &ops_avx2 : NULL;
    if (strcmp(level, "avx512") == 0) return cpu_has_avx512() ? &ops_avx512 : NULL;
    if (strcmp(level, "avx512vnni") == 0)
        return cpu_has_avx512() && t2_kv_cpu_ok() ? &ops_avx512vnni : NULL;
#endif
    return NULL;
}

static void ops_detect(void) {
    const t2_kern_ops *o = &ops_generic;
#if T2_X86
    if (cpu_has_avx512() && t2_kv_cpu_ok()) o = &ops_avx512vnni;
    else if (cpu_has_avx512()) o = &ops_avx512;
    else if (cpu_has_avx2()) o = &ops_avx2;
#endif
    /* T2_KERN_LEVEL may only pick a level the CPU has (e.g. to compare levels in benchmarks). */
    const t2_kern_ops *env = ops_for(getenv("T2_KERN_LEVEL"));
    if (env) o = env;
    const t2_kern_ops *expected = NULL;
    atomic_compare_exchange_strong(&g_ops, &expected, o); /* a forced level wins */
}

static inline const t2_kern_ops *ops(void) {
    const t2_kern_ops *o = atomic_load_explicit(&g_ops, memory_order_acquire);
    if (__builtin_expect(o != NULL, 1)) return o;
    pthread_once(&g_ops_once, ops_detect);
    return atomic_load_explicit(&g_ops, memory_order_acquire);
}

const char *t2_kern_level(void) { return ops()->name; }

/* 1 if weights of type t read x's 16-bit form at level o. */
static int need16(const t2_kern_ops *o, t2_dtype t, int cols) {
#if defined(__x86_64__)
    return !(o->x8 && t2_kv_has(t, cols));
#else
    (void)o, (void)t, (void)cols;
    return 1;
#endif
}

int t2_kern_x_bits(t2_dtype t, int cols) {
    if (!t2_quant_is(t)) return 0;
#if defined(__x86_64__)
    if (ops()->x8 && t2_kv_has(t, cols)) return 8;
#else
    (void)cols;
#endif
    return 16;
}

int t2_kern_force_level(const char *level) {
    const t2_kern_ops *o = ops_for(level);
    if (!o) return t2_err_set(T2_EUNSUPPORTED, "kernel level '%s' is not available on this CPU",
                              level ? level : "(null)");
    pthread_once(&g_ops_once, ops_detect);
    atomic_store_explicit(&g_ops, o, memory_order_release);
    return 0;
}

/* ---- other block types without prepared x (no memory for it): dequantize and dot ----
 * A row is taken T2_DQ_CHUNK elements at a time (the last chunk may be shorter, for 32-element
 * types): the chunk is dequantized by the level's dequantizer into a buffer on the stack (exactly
 * t2_to_f32's values) and dotted with x by the level's t2_dot_f32; y[r] is the sum of the chunk
 * dots in order. No rounding of x. */
#define T2_DQ_CHUNK 256

static void deq_rows(const t2_kern_ops *o, float *y, const t2_mat *W, const float *x, int r0,
                     int r1) {
    _Alignas(64) float buf[T2_DQ_CHUNK];
    t2_cvt_fn cvt = o->deq[W->type];
    size_t rb = t2_dtype_row_bytes(W->type, W->cols), bb = t2_dtype_block_bytes(W->type);
    int qk = t2_dtype_block(W->type);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * rb;
        float acc = 0.0f;
        for (int c0 = 0; c0 < W->cols; c0 += T2_DQ_CHUNK) {
            int n = W->cols - c0 < T2_DQ_CHUNK ? W->cols - c0 : T2_DQ_CHUNK;
            cvt(buf, w + (size_t)(c0 / qk) * bb, n);
            acc += o->dot(buf, x + c0, n);
        }
        y[r] = acc;
    }
}

/* Batched deq_rows: a chunk is dequantized once and dotted with each vector, each vector's
 * operations being deq_rows' (bit-identical); blocks of GEN_BLOCK rows as the other kernels. */
static void deq_rows_batch(const t2_kern_ops *o, float *const *ys, const t2_mat *W,
                           const float *const *xs, int nb, int r0, int r1) {
    _Alignas(64) float buf[T2_DQ_CHUNK];
    t2_cvt_fn cvt = o->deq[W->type];
    size_t rb = t2_dtype_row_bytes(W->type, W->cols), bb = t2_dtype_block_bytes(W->type);
    int qk = t2_dtype_block(W->type);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * rb;
        for (int b = 0; b < nb; b++) ys[b][r] = 0.0f;
        for (int c0 = 0; c0 < W->cols; c0 += T2_DQ_CHUNK) {
            int n = W->cols - c0 < T2_DQ_CHUNK ? W->cols - c0 : T2_DQ_CHUNK;
            cvt(buf, w + (size_t)(c0 / qk) * bb, n);
            for (int b = 0; b < nb; b++) ys[b][r] += o->dot(buf, xs[b] + c0, n);
        }
    }
}

/* Rows [r0, r1) of y = W x; xq: x prepared for the quantized types (NULL: the f32-x fallbacks). */
static void run_rows(const t2_kern_ops *o, float *y, const t2_mat *W, const float *x,
                     const void *xq, int r0, int r1) {
    size_t rb = t2_dtype_row_bytes(W->type, W->cols);
    switch (W->type) {
    case T2_F32: o->mv_f32(y, W->data, rb, W->cols, x, r0, r1); break;
    case T2_F16: o->mv_f16(y, W->data, rb, W->cols, x, r0, r1); break;
    case T2_BF16: o->mv_bf16(y, W->data, rb, W->cols, x, r0, r1); break;
    case T2_Q8_0:
        if (xq) o->mv_q8_0(y, W->data, rb, W->cols, xq, r0, r1);
        else gen_matvec_q8_0_f32x(y, W->data, rb, W->cols, x, r0, r1);
        break;
    default:
        if (xq) o->mv_q(W->type, y, W->data, rb, W->cols, xq, r0, r1);
        else deq_rows(o, y, W, x, r0, r1);
        break;
    }
}

/* Per-thread buffers (base/scratch.h) for prepared x and for tables of pointers to it, and
 * t2_matvec_rows' cache: the x buffer holds the prepared form of these cols floats (a copy
 * follows the prepared data), so calls on blocks of rows with the same x skip the rounding. The
 * cache is trusted only while the buffer's epoch is the one seen when it was filled. */
static _Thread_local struct {
    const t2_kern_ops *o;
    const float *src;
    int cols, has16;
    unsigned epoch;
} t_xq;

static void *xq_get(size_t bytes) {
    t_xq.src = NULL; /* contents change */
    return t2_scratch_get(T2_SCRATCH_KERN_X, bytes);
}

/* A table of n pointers for one call on this thread (its contents are the caller's). */
static const void **xq_ptrs(int n) {
    return t2_scratch_get(T2_SCRATCH_KERN_PTRS, (size_t)n * sizeof(const void *));
}

static void xq_release_thread(void) {
    t_xq.src = NULL;
    t2_scratch_release(T2_SCRATCH_KERN_X);
    t2_scratch_release(T2_SCRATCH_KERN_PTRS);
}

/* ------------------------------------------------------------------------------------------ */
/* Matrix-vector.                                                                               */

void t2_matvec_rows(float *y, const t2_mat *W, const float *x, int r0, int r1) {
    if (r1 <= r0) return;
    const t2_kern_ops *o = ops();
    const void *xq = NULL;
    if (t2_quant_is(W->type)) {
        size_t pb = q8_prep_bytes(W->cols), cb = (size_t)W->cols * sizeof(float);
        int n16 = need16(o, W->type, W->cols);
        const uint8_t *held = t_xq.src == x && t_xq.cols == W->cols && t_xq.o == o &&
                                      (t_xq.has16 || !n16) &&
                                      t_xq.epoch == t2_scratch_epoch(T2_SCRATCH_KERN_X)
                                  ? t2_scratch_get(T2_SCRATCH_KERN_X, pb + cb)
                                  : NULL;
        if (held && memcmp(held + pb, x, cb) == 0) {
            xq = held; /* same x as the last call on this thread (blocks of rows) */
        } else {
            uint8_t *buf = xq_get(pb + cb);
            if (buf) {
                prep_x(o, buf, x, W->cols, n16);
                memcpy(buf + pb, x, cb);
                t_xq.has16 = n16;
                t_xq.src = x;
                t_xq.cols = W->cols;
                t_xq.o = o;
                t_xq.epoch = t2_scratch_epoch(T2_SCRATCH_KERN_X);
                xq = buf;
            }
        }
    }
    run_rows(o, y, W, x, xq, r0, r1);
}

#define T2_MV_ALIGN 16            /* rows per chunk boundary */
#define T2_MV_MIN_PAR (64 * 1024) /* fewer weights than this: one thread */
#define T2_MV_CHUNK (128 * 1024)  /* target bytes of weights per claimed chunk */

typedef struct mv_job {
    int n;
    float *const *ys;
    const t2_mat *const *Ws;
    const float *const *xs;
    const void **xq; /* per matrix: prepared x for quantized types, else NULL */
    const t2_kern_ops *o;
    size_t total; /* weight bytes of all matrices */
    int nchunks;  /* the work is cut in nchunks byte-balanced chunks, claimed dynamically */
    atomic_int next_chunk;
} mv_job;

/* Position of split point k of nth: the first 16-aligned row start at or after byte
 * total * k / nth of the concatenated matrices, as (matrix, row). */
static void mv_point(const mv_job *j, int k, int nth, int *mi, int *row) {
    size_t target = (size_t)((unsigned __int128)j->total * (unsigned)k / (unsigned)nth);
    size_t cum = 0;
    for (int i = 0; i < j->n; i++) {
        const t2_mat *W = j->Ws[i];
        size_t rb = t2_dtype_row_bytes(W->type, W->cols), bytes = rb * (size_t)W->rows;
        if (cum + bytes > target) {
            size_t r = rb ? (target - cum + rb - 1) / rb : 0;
            r = (r + T2_MV_ALIGN - 1) / T2_MV_ALIGN * T2_MV_ALIGN;
            if (r < (size_t)W->rows) {
                *mi = i;
                *row = (int)r;
                return;
            }
            target = cum + bytes; /* next matrix, row 0 */
        }
        cum += bytes;
    }
    *mi = j->n;
    *row = 0;
}

static void mv_chunk(const mv_job *j, int c) {
    int m0, q0, m1, q1;
    mv_point(j, c, j->nchunks, &m0, &q0);
    mv_point(j, c + 1, j->nchunks, &m1, &q1);
    for (int i = m0; i <= m1 && i < j->n; i++) {
        const t2_mat *W = j->Ws[i];
        int r0 = i == m0 ? q0 : 0, r1 = i == m1 ? q1 : W->rows;
        if (r1 > r0) run_rows(j->o, j->ys[i], W, j->xs[i], j->xq[i], r0, r1);
    }
}

/* Threads claim chunks until none is left: a thread that is descheduled for a while (other
 * processes on the cores) delays one chunk, not a fixed half of the work. Which thread computes
 * a row never changes its value. */
static void mv_task(void *ctx, int ith, int nth) {
    mv_job *j = ctx;
    (void)ith;
    (void)nth;
    for (;;) {
        int c = atomic_fetch_add_explicit(&j->next_chunk, 1, memory_order_relaxed);
        if (c >= j->nchunks) return;
        mv_chunk(j, c);
    }
}

void t2_matvec_multi(t2_pool *pool, int n, float *const *ys, const t2_mat *const *Ws,
                     const float *const *xs) {
    if (n <= 0) return;
    const void *xq_stack[16];
    const void **xq = n <= 16 ? xq_stack : xq_ptrs(n);
    mv_job j = {n, ys, Ws, xs, xq, ops(), 0, 0, 0};
    if (!xq) { /* no memory even for n pointers: single thread, Q8_0 on f32 x */
        for (int i = 0; i < n; i++) run_rows(j.o, ys[i], Ws[i], xs[i], NULL, 0, Ws[i]->rows);
        return;
    }
    /* Prepare x once per distinct (x, cols) used with quantized weights, before the split. */
    size_t qbytes = 0, elems = 0;
    for (int i = 0; i < n; i++) {
        xq[i] = NULL;
        j.total += t2_dtype_row_bytes(Ws[i]->type, Ws[i]->cols) * (size_t)Ws[i]->rows;
        elems += (size_t)Ws[i]->rows * (size_t)Ws[i]->cols;
        if (t2_quant_is(Ws[i]->type)) qbytes += (q8_prep_bytes(Ws[i]->cols) + 63) / 64 * 64;
    }
    uint8_t *qbuf = qbytes ? xq_get(qbytes) : NULL;
    if (qbuf) {
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            if (!t2_quant_is(Ws[i]->type)) continue;
            int k = 0;
            while (k < i &&
                   !(t2_quant_is(Ws[k]->type) && xs[k] == xs[i] && Ws[k]->cols == Ws[i]->cols))
                k++;
            if (k < i) {
                xq[i] = xq[k];
                continue;
            }
            int n16 = 0; /* the 16-bit form if any matrix sharing this x reads it */
            for (int k2 = i; k2 < n; k2++)
                if (t2_quant_is(Ws[k2]->type) && xs[k2] == xs[i] && Ws[k2]->cols == Ws[i]->cols)
                    n16 |= need16(j.o, Ws[k2]->type, Ws[k2]->cols);
            prep_x(j.o, qbuf + off, xs[i], Ws[i]->cols, n16);
            xq[i] = qbuf + off;
            off += (q8_prep_bytes(Ws[i]->cols) + 63) / 64 * 64;
        }
    }
    if (!pool || t2_pool_size(pool) == 1 || elems < T2_MV_MIN_PAR || j.total == 0) {
        for (int i = 0; i < n; i++) run_rows(j.o, ys[i], Ws[i], xs[i], xq[i], 0, Ws[i]->rows);
    } else {
        /* about T2_MV_CHUNK bytes per chunk, between 4 and 16 chunks per thread */
        int nth = t2_pool_size(pool);
        size_t nc = j.total / T2_MV_CHUNK;
        j.nchunks = nc < (size_t)nth * 4 ? nth * 4 : nc > (size_t)nth * 16 ? nth * 16 : (int)nc;
        atomic_init(&j.next_chunk, 0);
        t2_pool_run(pool, mv_task, &j);
    }
}

void t2_matvec(t2_pool *pool, float *y, const t2_mat *W, const float *x) {
    t2_matvec_multi(pool, 1, &y, &W, &x);
}

/* ---- several vectors against one matrix ----
 * Threads take t2_split blocks of T2_MVB_ALIGN rows and run the level's batched kernel on them:
 * a row chunk is loaded (and converted) once for a group of 2-4 vectors, and each block of 32
 * rows is streamed from memory by the first group and reread from L2 by the others. Every output
 * is computed by the same sequence of operations as in t2_matvec (Q8_0: from the same prepared
 * x), so the values depend neither on B, nor on the other vectors, nor on the number of
 * threads. */
#define T2_MVB_ALIGN 32

typedef struct mvb_job {
    const t2_kern_ops *o;
    float *const *ys;
    const t2_mat *W;
    const float *const *xs;
    const void *const *xq; /* quantized: per vector prepared x (NULL: f32-x fallback) */
    int B;
} mvb_job;

static void mvb_rows(const mvb_job *j, int r0, int r1) {
    const t2_mat *W = j->W;
    size_t rb = t2_dtype_row_bytes(W->type, W->cols);
    switch (W->type) {
    case T2_F32: j->o->mvb_f32(j->ys, W->data, rb, W->cols, j->xs, j->B, r0, r1); break;
    case T2_F16: j->o->mvb_f16(j->ys, W->data, rb, W->cols, j->xs, j->B, r0, r1); break;
    case T2_BF16: j->o->mvb_bf16(j->ys, W->data, rb, W->cols, j->xs, j->B, r0, r1); break;
    case T2_Q8_0:
        if (j->xq) j->o->mvb_q8_0(j->ys, W->data, rb, W->cols, j->xq, j->B, r0, r1);
        else
            for (int b = 0; b < j->B; b++)
                gen_matvec_q8_0_f32x(j->ys[b], W->data, rb, W->cols, j->xs[b], r0, r1);
        break;
    default:
        if (!j->xq) {
            deq_rows_batch(j->o, j->ys, W, j->xs, j->B, r0, r1);
            break;
        }
        if (j->o->mvb_q &&
            j->o->mvb_q(W->type, j->ys, W->data, rb, W->cols, j->xq, j->B, r0, r1))
            break;
        /* per vector t2_matvec's rows, a block of rows at a time (reread from cache) */
        for (int q0 = r0; q0 < r1; q0 += GEN_BLOCK) {
            int q1 = q0 + GEN_BLOCK < r1 ? q0 + GEN_BLOCK : r1;
            for (int b = 0; b < j->B; b++)
                j->o->mv_q(W->type, j->ys[b], W->data, rb, W->cols, j->xq[b], q0, q1);
        }
        break;
    }
}

static void mvb_task(void *ctx, int ith, int nth) {
    const mvb_job *j = ctx;
    int lo, hi;
    t2_split(j->W->rows, T2_MVB_ALIGN, ith, nth, &lo, &hi);
    if (hi > lo) mvb_rows(j, lo, hi);
}

void t2_matvec_batch(t2_pool *pool, float *const *ys, const t2_mat *W, const float *const *xs,
                     int B) {
    if (B <= 0 || W->rows <= 0) return;
    if (B == 1) {
        t2_matvec(pool, ys[0], W, xs[0]);
        return;
    }
    mvb_job j = {ops(), ys, W, xs, NULL, B};
    const void *xq_stack[16];
    const void **xq = NULL;
    size_t pb = (q8_prep_bytes(W->cols) + 63) / 64 * 64;
    if (t2_quant_is(W->type) && pb) {
        /* each x prepared once, as t2_matvec prepares it (same function, same bits) */
        xq = B <= 16 ? xq_stack : xq_ptrs(B);
        uint8_t *qbuf = xq ? xq_get(pb * (size_t)B) : NULL;
        if (!qbuf) { /* no memory: t2_matvec per vector, which has its own fallback */
            for (int b = 0; b < B; b++) t2_matvec(pool, ys[b], W, xs[b]);
            return;
        }
        for (int b = 0; b < B; b++) {
            int k = 0;
            while (k < b && xs[k] != xs[b]) k++;
            if (k < b) {
                xq[b] = xq[k];
                continue;
            }
            prep_x(j.o, qbuf + pb * (size_t)b, xs[b], W->cols, need16(j.o, W->type, W->cols));
            xq[b] = qbuf + pb * (size_t)b;
        }
        j.xq = xq;
    }
    /* small products are not worth waking the pool (t2_matvec's threshold, on B times the work) */
    if (!pool || t2_pool_size(pool) == 1 || (size_t)W->rows * W->cols * B < T2_MV_MIN_PAR)
        mvb_task(&j, 0, 1);
    else
        t2_pool_run(pool, mvb_task, &j);
}

/* ------------------------------------------------------------------------------------------ */
/* Matrix-matrix on OpenBLAS: one single-threaded sgemm per pool thread on its rows of W.       */

static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void blas_init(void) { openblas_set_num_threads(1); }

const char *t2_blas_corename(void) {
    const char *s = openblas_get_corename();
    return s ? s : "?";
}

/* Scratch: sets of per-thread buffers; a call takes a free set, so concurrent calls on
 * different pools never share buffers. */
typedef struct scratch_set {
    struct scratch_set *next;
    int in_use, nbuf;
    float **buf;
    size_t *cap; /* floats */
} scratch_set;

static pthread_mutex_t g_scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static scratch_set *g_scratch;

static void scratch_free_set(scratch_set *s) {
    for (int i = 0; i < s->nbuf; i++) free(s->buf[i]);
    free(s->buf);
    free(s->cap);
    free(s);
}

static scratch_set *scratch_acquire(int nth, size_t floats) {
    pthread_mutex_lock(&g_scratch_mu);
    scratch_set *s = g_scratch;
    while (s && s->in_use) s = s->next;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (s) {
            s->next = g_scratch;
            g_scratch = s;
        }
    }
    if (s) s->in_use = 1;
    pthread_mutex_unlock(&g_scratch_mu);
    if (!s) return NULL;
    if (s->nbuf < nth) {
        float **b = realloc(s->buf, (size_t)nth * sizeof *b);
        if (!b) goto fail;
        s->buf = b;
        size_t *c = realloc(s->cap, (size_t)nth * sizeof *c);
        if (!c) goto fail;
        s->cap = c;
        for (int i = s->nbuf; i < nth; i++) {
            s->buf[i] = NULL;
            s->cap[i] = 0;
        }
        s->nbuf = nth;
    }
    for (int i = 0; i < nth; i++) {
        if (s->cap[i] >= floats) continue;
        free(s->buf[i]);
        s->cap[i] = 0;
        size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
        s->buf[i] = aligned_alloc(64, bytes);
        if (!s->buf[i]) goto fail;
        s->cap[i] = floats;
    }
    return s;
fail:
    pthread_mutex_lock(&g_scratch_mu);
    s->in_use = 0;
    pthread_mutex_unlock(&g_scratch_mu);
    return NULL;
}

static void scratch_release(scratch_set *s) {
    pthread_mutex_lock(&g_scratch_mu);
    s->in_use = 0;
    pthread_mutex_unlock(&g_scratch_mu);
}

void t2_kern_free_scratch(void) {
    xq_release_thread();
    t2_qmm_free_thread();
    t2_gemm_free_thread();
    pthread_mutex_lock(&g_scratch_mu);
    scratch_set **pp = &g_scratch;
    while (*pp) {
        scratch_set *s = *pp;
        if (s->in_use) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        scratch_free_set(s);
    }
    pthread_mutex_unlock(&g_scratch_mu);
}

typedef struct mm_job {
    float *Y;
    const t2_mat *W;
    const float *X;
    int B, block_rows;
    scratch_set *scratch;
    t2_cvt_fn cvt;
} mm_job;

/* Each sgemm call covers one fixed block of block_rows rows of W (the blocks depend only on W's
 * shape, never on the thread count) and threads take contiguous runs of blocks: OpenBLAS's
 * kernels round differently near the edges of a call's M range, so fixed calls are what makes
 * the result independent of the number of threads. */
static void mm_task(void *ctx, int ith, int nth) {
    const mm_job *j = ctx;
    const t2_mat *W = j->W;
    int nblk = (W->rows + j->block_rows - 1) / j->block_rows, b0, b1;
    t2_split(nblk, 1, ith, nth, &b0, &b1);
    int K = W->cols;
    size_t rb = t2_dtype_row_bytes(W->type, K);
    float *buf = j->scratch ? j->scratch->buf[ith] : NULL;
    for (int blk = b0; blk < b1; blk++) {
        int r = blk * j->block_rows;
        int nr = W->rows - r < j->block_rows ? W->rows - r : j->block_rows;
        const float *w;
        if (W->type == T2_F32) {
            w = (const float *)W->data + (size_t)r * K;
        } else {
            j->cvt(buf, (const uint8_t *)W->data + (size_t)r * rb, (int64_t)nr * K);
            w = buf;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->B, nr, K, 1.0f, j->X, K, w, K,
                    0.0f, j->Y + r, W->rows);
    }
}

/* Rows per sgemm call: ~512 KiB of f32 weights, a multiple of 16, between 16 and 256. */
static int mm_block_rows(int cols) {
    int br = (int)(131072 / cols) / 16 * 16;
    return br < 16 ? 16 : br > 256 ? 256 : br;
}

int t2_matmul(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int B) {
    if (B <= 0 || W->rows <= 0) return 0;
    if (W->cols <= 0) {
        for (int b = 0; b < B; b++) memset(Y + (size_t)b * W->rows, 0, (size_t)W->rows * 4);
        return 0;
    }
    if (B == 1) { /* one token: the matvec kernels read W once at full memory speed */
        t2_matvec(pool, Y, W, X);
        return 0;
    }
    if (t2_gemm_supports(W->type)) return t2_gemm(pool, Y, W, X, B); /* F32, F16, BF16 */
    const t2_kern_ops *o = ops();
#if defined(__x86_64__)
    /* Quantized weights at the avx512vnni level: T2's own kernels (engine/qgemm.c). */
    if (o->x8 && t2_kv_has(W->type, W->cols)) return t2_qmm(pool, Y, W, X, B);
#endif
    pthread_once(&g_blas_once, blas_init);
    mm_job j = {Y, W, X, B, mm_block_rows(W->cols), NULL, NULL};
    if (W->type != T2_F32) {
        j.cvt = W->type == T2_F16    ? o->cvt_f16
                : W->type == T2_BF16 ? o->cvt_bf16
                : W->type == T2_Q8_0 ? o->cvt_q8_0
                                     : o->deq[W->type];
        j.scratch = scratch_acquire(t2_pool_size(pool), (size_t)j.block_rows * (size_t)W->cols);
        if (!j.scratch)
            return t2_err_set(T2_ENOMEM, "matmul: no memory for %d x %d scratch", j.block_rows,
                              W->cols);
    }
    t2_pool_run(pool, mm_task, &j);
    if (j.scratch) scratch_release(j.scratch);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Small kernels (llama2.c's formulas and summation order).                                     */

void t2_rmsnorm(float *out, const float *x, const float *weight, int n, float eps) {
    float ss = 0.0f;
    for (int j = 0; j < n; j++) ss += x[j] * x[j];
    ss /= n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < n; j++) out[j] = weight[j] * (ss * x[j]);
}

void t2_softmax(float *x, int n) {
    if (n <= 0) return;
    float max_val = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max_val) max_val = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max_val);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
}

void t2_rope(float *x, int n_heads, int head_dim, int pos, float theta) {
    for (int i = 0; i + 1 < head_dim; i += 2) {
        float freq = 1.0f / powf(theta, i / (float)head_dim);
        float val = pos * freq;
        float fcr = cosf(val), fci = sinf(val);
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)h * head_dim + i;
            float v0 = v[0], v1 = v[1];
            v[0] = v0 * fcr - v1 * fci;
            v[1] = v0 * fci + v1 * fcr;
        }
    }
}

void t2_swiglu(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float val = gate[i];
        val *= 1.0f / (1.0f + expf(-val)); /* silu, as llama2.c writes it */
        out[i] = val * up[i];
    }
}

float t2_dot_f32(const float *a, const float *b, int n) { return ops()->dot(a, b, n); }

void t2_axpy_f32(float *y, float a, const float *x, int n) { ops()->axpy(y, a, x, n); }

/* Used by membw.c: the level's streaming sum. */
double t2_kern_sum_f32(const float *a, size_t n);
double t2_kern_sum_f32(const float *a, size_t n) { return ops()->sum(a, n); }
