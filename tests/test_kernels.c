/* test_kernels.c - kernels (every dtype x every SIMD level this CPU has) and the thread pool. */
#include "engine/kernels.h"
#include "engine/gemm.h"
#include "base/pool.h"
#include "base/t2_err.h"
#include "t2_test.h"

#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

static const char *const LEVELS[] = {"generic", "avx2", "avx512", "avx512vnni"};
#define NLEVELS 4
static const t2_dtype TYPES[] = {T2_F32,  T2_F16,  T2_BF16, T2_Q8_0, T2_Q4_0, T2_Q4_1, T2_Q5_0,
                                 T2_Q5_1, T2_Q2_K, T2_Q3_K, T2_Q4_K, T2_Q5_K, T2_Q6_K};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])
/* cols for K-quant matrices (multiples of 256) */
static const int cols_k[] = {256, 768, 512, 2048};
#define NCOLS_K 4

/* ---- helpers ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float rng_f(void) { return (float)rng_u32() / 2147483648.0f - 1.0f; } /* [-1, 1) */

static void fill(float *a, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) a[i] = scale * rng_f();
}

/* Random blocks of a quantized type (other than Q8_0): random bytes, so every bit pattern of the
 * quants and sub-block scales occurs, with the fp16 scale fields set to values in [1e-3, 2e-2]. */
static void rand_blocks(uint8_t *p, t2_dtype t, size_t nblocks) {
    int off[2] = {0, -1};
    switch (t) {
    case T2_Q4_1:
    case T2_Q5_1:
    case T2_Q4_K:
    case T2_Q5_K: off[1] = 2; break;
    case T2_Q2_K: off[0] = 80, off[1] = 82; break;
    case T2_Q3_K: off[0] = 108; break;
    case T2_Q6_K: off[0] = 208; break;
    default: break;
    }
    size_t bb = t2_dtype_block_bytes(t);
    for (size_t b = 0; b < nblocks; b++, p += bb) {
        for (size_t i = 0; i < bb; i++) p[i] = (uint8_t)rng_u32();
        for (int k = 0; k < 2; k++) {
            if (off[k] < 0) continue;
            uint16_t h = t2_f32_to_f16(1e-3f + 1.9e-2f * fabsf(rng_f()));
            memcpy(p + off[k], &h, 2);
        }
    }
}

/* A matrix of type t made from random floats (random blocks for the quantized types but Q8_0);
 * *ref gets the exact f32 values it holds. */
static t2_mat make_mat(t2_dtype t, int rows, int cols, float **ref) {
    size_t n = (size_t)rows * cols;
    float *src = malloc(n * 4 + 4);
    fill(src, n, 1.0f);
    size_t bytes = t2_dtype_row_bytes(t, cols) * (size_t)rows;
    void *data = malloc(bytes + 64);
    if (t2_dtype_block(t) > 1 && t != T2_Q8_0)
        rand_blocks(data, t, bytes / t2_dtype_block_bytes(t));
    else
        t2_from_f32(data, src, t, (int64_t)n);
    *ref = malloc(n * 4 + 4);
    t2_to_f32(*ref, data, t, (int64_t)n);
    free(src);
    t2_mat m = {t, rows, cols, data};
    return m;
}

/* |y - sum w x| <= tol * sum |w x| (+ a tiny absolute floor), in double. With xbits = 16 or 8,
 * also allow for the quantized kernels' rounding of x to that many bits per 32-block
 * (|x - dx q| <= max |x_block| / 65534, resp. / 254: kernels.h). */
static int check_rows_q(const float *y, const float *ref, const float *x, int rows, int cols,
                        double tol, int xbits, const char *what) {
    double den = xbits == 8 ? 254.0 : 65534.0;
    int q8x = xbits != 0;
    int bad = 0;
    for (int r = 0; r < rows; r++) {
        double s = 0, a = 0, qerr = 0;
        for (int c = 0; c < cols; c++) {
            double p = (double)ref[(size_t)r * cols + c] * x[c];
            s += p;
            a += fabs(p);
            if (q8x) {
                double amax = 0;
                for (int k = c / 32 * 32; k < c / 32 * 32 + 32; k++) amax = fmax(amax, fabs(x[k]));
                qerr += fabs(ref[(size_t)r * cols + c]) * amax / den * 1.01;
            }
        }
        if (!(fabs(y[r] - s) <= tol * a + qerr + 1e-30)) {
            if (bad++ < 3)
                fprintf(stderr, "  %s: row %d: got %.9g want %.9g (sum|wx| %.3g)\n", what, r,
                        (double)y[r], s, a);
        }
    }
    return bad;
}
static int check_rows(const float *y, const float *ref, const float *x, int rows, int cols,
                      double tol, const char *what) {
    return check_rows_q(y, ref, x, rows, cols, tol, 0, what);
}

static int n_levels_tested;

/* ---- matvec vs double reference, all levels x types x shapes ---- */

static void test_matvec_reference(void) {
    static const int cols_f[] = {1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 172, 768, 2048};
    static const int cols_q[] = {32, 64, 96, 160, 768, 2048};
    static const int rows_l[] = {1, 3, 4, 5, 17, 67};
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) {
            printf("     (level %s not available)\n", LEVELS[l]);
            continue;
        }
        n_levels_tested++;
        for (size_t t = 0; t < NTYPES; t++) {
            /* quantized types: x rounded to 16 or 8 bits per 32-block */
            int blk = t2_dtype_block(TYPES[t]);
            const int *cl = blk == 256 ? cols_k : blk == 32 ? cols_q : cols_f;
            int ncl = blk == 256 ? NCOLS_K : blk == 32 ? 6 : 13;
            for (int ci = 0; ci < ncl; ci++)
                for (size_t ri = 0; ri < 6; ri++) {
                    int rows = rows_l[ri], cols = cl[ci];
                    float *ref, *x = malloc((size_t)cols * 4), *y = malloc((size_t)rows * 4 + 4);
                    t2_mat W = make_mat(TYPES[t], rows, cols, &ref);
                    fill(x, (size_t)cols, 2.0f);
                    t2_matvec(NULL, y, &W, x);
                    char what[96];
                    snprintf(what, sizeof what, "%s %s %dx%d", LEVELS[l],
                             t2_dtype_name(TYPES[t]), rows, cols);
                    int q = t2_kern_x_bits(TYPES[t], cols);
                    T2_CHECK_MSG(q == (blk > 1 ? q : 0), "%s: x bits %d", what, q);
                    T2_CHECK_MSG(check_rows_q(y, ref, x, rows, cols, 1e-5, q, what) == 0, "%s", what);
                    /* rows alone == rows in groups */
                    float *y1 = malloc((size_t)rows * 4 + 4);
                    for (int r = 0; r < rows; r++) t2_matvec_rows(y1, &W, x, r, r + 1);
                    T2_CHECK_MSG(memcmp(y, y1, (size_t)rows * 4) == 0, "%s: row-at-a-time", what);
                    free(y1);
                    free((void *)W.data);
                    free(ref);
                    free(x);
                    free(y);
                }
        }
    }
    T2_CHECK(n_levels_tested >= 1);
    t2_kern_force_level(LEVELS[0]);
}

/* ---- exact conversions: every f16 / bf16 bit pattern through matvec (cols 1 and 17) ---- */

static void test_conversions_exact(void) {
    int n = 65536;
    uint16_t *h = malloc((size_t)n * 2 * 17);
    float *y = malloc((size_t)n * 4), x1 = 1.0f;
    float *x17 = calloc(17, 4);
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) continue;
        for (int tb = 0; tb < 2; tb++) {
            t2_dtype t = tb ? T2_BF16 : T2_F16;
            /* cols = 1: y[r] = w[r] * 1 + 0 */
            for (int i = 0; i < n; i++) h[i] = (uint16_t)i;
            t2_mat W = {t, n, 1, h};
            t2_matvec_rows(y, &W, &x1, 0, n);
            int bad = 0;
            for (int i = 0; i < n; i++) {
                float want = t == T2_F16 ? t2_f16_to_f32((uint16_t)i) : t2_bf16_to_f32((uint16_t)i);
                if (isnan(want) ? !isnan(y[i]) : y[i] != want) {
                    if (bad++ < 3)
                        fprintf(stderr, "  %s %s 0x%04x: %.9g vs %.9g\n", LEVELS[l],
                                t2_dtype_name(t), i, (double)y[i], (double)want);
                }
            }
            T2_CHECK_MSG(bad == 0, "%s %s cols=1", LEVELS[l], t2_dtype_name(t));
            /* cols = 17, one-hot x at column 16 (the masked / padded tail): finite values only */
            for (int k = 0; k < 2; k++) {
                int col = k ? 16 : 5;
                memset(x17, 0, 17 * 4);
                x17[col] = 1.0f;
                memset(h, 0, (size_t)n * 2 * 17);
                int rows = 0;
                for (int i = 0; i < n; i++) {
                    float v = t == T2_F16 ? t2_f16_to_f32((uint16_t)i) : t2_bf16_to_f32((uint16_t)i);
                    if (!isfinite(v)) continue;
                    h[(size_t)rows * 17 + col] = (uint16_t)i;
                    rows++;
                }
                t2_mat W17 = {t, rows, 17, h};
                t2_matvec_rows(y, &W17, x17, 0, rows);
                bad = 0;
                for (int r = 0; r < rows; r++) {
                    uint16_t b = h[(size_t)r * 17 + col];
                    float want = t == T2_F16 ? t2_f16_to_f32(b) : t2_bf16_to_f32(b);
                    if (y[r] != want && bad++ < 3)
                        fprintf(stderr, "  %s %s 0x%04x col %d: %.9g vs %.9g\n", LEVELS[l],
                                t2_dtype_name(t), b, col, (double)y[r], (double)want);
                }
                T2_CHECK_MSG(bad == 0, "%s %s cols=17 col=%d", LEVELS[l], t2_dtype_name(t), col);
            }
        }
    }
    t2_kern_force_level(LEVELS[0]);
    free(h);
    free(y);
    free(x17);
}

/* matmul with X = identity: Y[b, r] = W[r, b] exactly, which checks the SIMD conversions used
 * for the sgemm blocks against t2_to_f32 (t2_types.c). */
static void test_matmul_conversions(void) {
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) continue;
        for (size_t t = 0; t < NTYPES; t++) {
            int blk = t2_dtype_block(TYPES[t]);
            int rows = blk == 256 ? 300 : 1000, cols = blk == 256 ? 256 : blk == 32 ? 64 : 40;
            float *ref;
            t2_mat W = make_mat(TYPES[t], rows, cols, &ref);
            float *X = calloc((size_t)cols * cols, 4), *Y = malloc((size_t)cols * rows * 4);
            for (int b = 0; b < cols; b++) X[(size_t)b * cols + b] = 1.0f;
            T2_CHECK_EQ_INT(t2_matmul(pool, Y, &W, X, cols), 0);
            /* 8-bit kernels (avx512vnni): x = e_b is 127 * (1 / 127) in f32, with the mins of
             * Q4_1, Q5_1, Q4_K, Q5_K added apart: a few ulps of the row's largest weight */
            int x8 = t2_kern_x_bits(TYPES[t], cols) == 8;
            int bad = 0;
            for (int r = 0; r < rows; r++) {
                double wmax = 0;
                for (int b = 0; b < cols; b++) wmax = fmax(wmax, fabs(ref[(size_t)r * cols + b]));
                for (int b = 0; b < cols; b++) {
                    double w = ref[(size_t)r * cols + b], tol = x8 ? 1e-6 * wmax : 0.0;
                    bad += !(fabs(Y[(size_t)b * rows + r] - w) <= tol);
                }
            }
            T2_CHECK_MSG(bad == 0, "%s %s: %d mismatches", LEVELS[l], t2_dtype_name(TYPES[t]), bad);
            free((void *)W.data);
            free(ref);
            free(X);
            free(Y);
        }
    }
    t2_kern_force_level(LEVELS[0]);
    t2_pool_destroy(&pool);
}

/* ---- threading: bit-identical to single thread ---- */

static void test_matvec_threads(void) {
    static const int shapes[][2] = {{301, 768}, {1000, 172}, {64, 2048}, {2050, 64}, {33, 17}};
    t2_pool *pools[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) T2_CHECK(t2_pool_new(&pools[i], i + 1) == 0);
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) continue;
        for (size_t t = 0; t < NTYPES; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                int rows = shapes[s][0], cols = shapes[s][1], blk = t2_dtype_block(TYPES[t]);
                cols = (cols + blk - 1) / blk * blk;
                float *ref, *x = malloc((size_t)cols * 4);
                t2_mat W = make_mat(TYPES[t], rows, cols, &ref);
                fill(x, (size_t)cols, 1.0f);
                float *y0 = malloc((size_t)rows * 4), *y = malloc((size_t)rows * 4);
                t2_matvec_rows(y0, &W, x, 0, rows);
                for (int p = 0; p < 3; p++) {
                    memset(y, 0xff, (size_t)rows * 4);
                    t2_matvec(pools[p], y, &W, x);
                    T2_CHECK_MSG(memcmp(y, y0, (size_t)rows * 4) == 0, "%s %s %dx%d %d threads",
                                 LEVELS[l], t2_dtype_name(TYPES[t]), rows, cols, p + 1);
                }
                free((void *)W.data);
                free(ref);
                free(x);
                free(y0);
                free(y);
            }
    }
    t2_kern_force_level(LEVELS[0]);
    for (int p = 0; p < 3; p++) t2_pool_destroy(&pools[p]);
    T2_CHECK(pools[0] == NULL);
}

static void test_matvec_multi(void) {
    /* q/k/v-like (same cols), w1/w3-like, and a mix of types and widths */
    static const int shapes[][2] = {{768, 768}, {256, 768}, {256, 768}, {2048, 768}, {5, 64}, {700, 2048}};
    static const t2_dtype types[] = {T2_F32, T2_F16, T2_Q4_K, T2_Q8_0, T2_Q5_1, T2_Q6_K};
    enum { N = 6 };
    t2_mat Ws[N];
    float *refs[N], *xs[N], *ys[N], *y1[N];
    for (int i = 0; i < N; i++) {
        Ws[i] = make_mat(types[i], shapes[i][0], shapes[i][1], &refs[i]);
        xs[i] = malloc((size_t)shapes[i][1] * 4);
        fill(xs[i], (size_t)shapes[i][1], 1.0f);
        ys[i] = malloc((size_t)shapes[i][0] * 4);
        y1[i] = malloc((size_t)shapes[i][0] * 4);
    }
    const t2_mat *wp[N];
    const float *xp[N];
    for (int i = 0; i < N; i++) {
        wp[i] = &Ws[i];
        xp[i] = xs[i];
    }
    for (int nt = 1; nt <= 3; nt++) {
        t2_pool *pool = NULL;
        T2_CHECK(t2_pool_new(&pool, nt) == 0);
        for (size_t l = 0; l < NLEVELS; l++) {
            if (t2_kern_force_level(LEVELS[l]) != 0) continue;
            for (int first = 0; first < N; first++)
                for (int n = 1; first + n <= N; n++) {
                    for (int i = first; i < first + n; i++) {
                        t2_matvec(NULL, y1[i], &Ws[i], xs[i]);
                        memset(ys[i], 0xff, (size_t)shapes[i][0] * 4);
                    }
                    t2_matvec_multi(pool, n, ys + first, wp + first, xp + first);
                    for (int i = first; i < first + n; i++)
                        T2_CHECK_MSG(memcmp(ys[i], y1[i], (size_t)shapes[i][0] * 4) == 0,
                                     "%s %d threads, matrices [%d, %d), matrix %d", LEVELS[l], nt,
                                     first, first + n, i);
                }
        }
        t2_pool_destroy(&pool);
    }
    t2_kern_force_level(LEVELS[0]);
    for (int i = 0; i < N; i++) {
        free((void *)Ws[i].data);
        free(refs[i]);
        free(xs[i]);
        free(ys[i]);
        free(y1[i]);
    }
}

/* Q8_0 (and other quantized types') x preparation is shared between matrices using the same x;
 * many matrices in one call;
 * non-finite x shows in the result. */
static void test_matvec_multi_q8(void) {
    enum { N = 20 };
    t2_mat Ws[N];
    float *refs[N], *ys[N], *y1[N];
    float *xa = malloc(768 * 4), *xb = malloc(768 * 4), *xc = malloc(1024 * 4);
    fill(xa, 768, 1.0f);
    fill(xb, 768, 3.0f);
    fill(xc, 1024, 0.5f);
    const t2_mat *wp[N];
    const float *xp[N];
    for (int i = 0; i < N; i++) {
        int cols = i % 5 == 4 ? 1024 : 768;
        t2_dtype t = i % 7 == 6 ? T2_F16 : i % 4 == 1 ? T2_Q4_K : i % 4 == 2 ? T2_Q5_0 : T2_Q8_0;
        Ws[i] = make_mat(t, 64 + 16 * (i % 3), cols, &refs[i]);
        ys[i] = malloc((size_t)Ws[i].rows * 4);
        y1[i] = malloc((size_t)Ws[i].rows * 4);
        wp[i] = &Ws[i];
        xp[i] = cols == 1024 ? xc : i % 2 ? xa : xb;
    }
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) continue;
        for (int n = 1; n <= N; n += 6) {
            for (int i = 0; i < n; i++) t2_matvec(NULL, y1[i], &Ws[i], xp[i]);
            t2_matvec_multi(pool, n, ys, wp, xp);
            for (int i = 0; i < n; i++)
                T2_CHECK_MSG(memcmp(ys[i], y1[i], (size_t)Ws[i].rows * 4) == 0, "%s n=%d i=%d",
                             LEVELS[l], n, i);
        }
        /* t2_matvec_rows in blocks reuses the rounded x only while x is unchanged */
        {
            float *xm = malloc(768 * 4), *x2 = malloc(768 * 4), ya[64], yb[64], y1a[64], y1b[64];
            memcpy(xm, xa, 768 * 4);
            memcpy(x2, xa, 768 * 4);
            x2[5] += 0.25f;
            t2_matvec(NULL, y1a, &Ws[0], xm);
            t2_matvec(NULL, y1b, &Ws[0], x2);
            for (int r = 0; r < 64; r += 16) t2_matvec_rows(ya, &Ws[0], xm, r, r + 16);
            xm[5] += 0.25f; /* same pointer, new values: must not reuse the rounded old x */
            for (int r = 0; r < 64; r += 16) t2_matvec_rows(yb, &Ws[0], xm, r, r + 16);
            T2_CHECK(memcmp(ya, y1a, sizeof ya) == 0);
            T2_CHECK(memcmp(yb, y1b, sizeof yb) == 0);
            T2_CHECK(memcmp(ya, yb, sizeof ya) != 0);
            free(xm);
            free(x2);
        }
        /* nan / inf in x */
        float *xn = malloc(768 * 4), y[64];
        memcpy(xn, xa, 768 * 4);
        xn[100] = NAN;
        t2_matvec(NULL, y, &Ws[0], xn);
        for (int r = 0; r < 64; r++) T2_CHECK(isnan(y[r]));
        xn[100] = INFINITY;
        t2_matvec(NULL, y, &Ws[0], xn);
        for (int r = 0; r < 64; r++) T2_CHECK(!isfinite(y[r]));
        free(xn);
    }
    t2_kern_force_level(LEVELS[0]);
    t2_pool_destroy(&pool);
    for (int i = 0; i < N; i++) {
        free((void *)Ws[i].data);
        free(refs[i]);
        free(ys[i]);
        free(y1[i]);
    }
    free(xa);
    free(xb);
    free(xc);
}

/* ---- t2_matvec_batch: every vector bit-identical to t2_matvec on its own ---- */

static void test_matvec_batch(void) {
    static const int Bs[] = {1, 2, 3, 4, 5, 8, 13, 20}; /* 20: Q8_0's prepared x off the stack */
    static const int cols_f[] = {1, 7, 16, 17, 63, 64, 65, 172, 768, 2048};
    static const int cols_q[] = {32, 64, 96, 160, 192, 768, 2048};
    enum { NB = 8, BMAX = 20 };
    t2_pool *pools[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) T2_CHECK(t2_pool_new(&pools[i], i + 1) == 0);
    int combos = 0;
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) continue;
        for (size_t t = 0; t < NTYPES; t++) {
            int blk = t2_dtype_block(TYPES[t]);
            const int *cl = blk == 256 ? cols_k : blk == 32 ? cols_q : cols_f;
            int ncl = blk == 256 ? NCOLS_K : blk == 32 ? 7 : 10;
            /* the other block types share one dequantize-and-dot driver: fewer shapes */
            if (blk > 1 && TYPES[t] != T2_Q8_0) ncl = blk == 256 ? 2 : 3;
            for (int ci = 0; ci < 2 * ncl; ci++) {
                int cols = cl[ci / 2];
                /* enough rows for the pool to split them (>= 64K weights x vectors at B >= 2),
                 * not a multiple of the 32-row blocks; or just a few */
                int rows = ci % 2 ? 5 : 70000 / (2 * cols) + 37;
                float *ref, *x = malloc((size_t)BMAX * cols * 4);
                t2_mat W = make_mat(TYPES[t], rows, cols, &ref);
                fill(x, (size_t)BMAX * cols, 2.0f);
                /* some vectors with a wider range, one all zero, one Q8_0 block with a nan */
                for (int c = 0; c < cols; c++) x[(size_t)3 * cols + c] *= 1000.0f;
                memset(x + (size_t)6 * cols, 0, (size_t)cols * 4);
                if (cols >= 64) x[(size_t)9 * cols + 40] = NAN;
                float *want = malloc((size_t)BMAX * rows * 4), *got = malloc((size_t)BMAX * rows * 4);
                for (int b = 0; b < BMAX; b++)
                    t2_matvec(NULL, want + (size_t)b * rows, &W, x + (size_t)b * cols);
                for (int bi = 0; bi < NB; bi++)
                    for (int p = 0; p < 3; p++) {
                        int B = Bs[bi];
                        float *ys[BMAX];
                        const float *xs[BMAX];
                        /* vectors taken in a scrambled order, so that a vector meets different
                         * neighbours in its group as B changes; vector 2 appears twice at B 13 */
                        int idx[BMAX];
                        for (int b = 0; b < B; b++) {
                            idx[b] = B == 13 && b == 12 ? 2 : (b * 7 + bi) % BMAX;
                            xs[b] = x + (size_t)idx[b] * cols;
                            ys[b] = got + (size_t)b * rows;
                        }
                        memset(got, 0xff, (size_t)BMAX * rows * 4);
                        t2_matvec_batch(pools[p], ys, &W, xs, B);
                        int bad = 0;
                        for (int b = 0; b < B; b++)
                            bad += memcmp(ys[b], want + (size_t)idx[b] * rows, (size_t)rows * 4) != 0;
                        T2_CHECK_MSG(bad == 0, "%s %s %dx%d B=%d %d threads: %d vectors differ",
                                     LEVELS[l], t2_dtype_name(TYPES[t]), rows, cols, B, p + 1, bad);
                        combos++;
                    }
                free((void *)W.data);
                free(ref);
                free(x);
                free(want);
                free(got);
            }
        }
    }
    printf("     %d combinations\n", combos);
    /* B <= 0 and empty matrices are no-ops */
    float y0 = 42.0f, x0 = 1.0f, *yp = &y0;
    const float *xp = &x0;
    t2_mat E = {T2_F32, 0, 1, &x0};
    t2_matvec_batch(pools[1], &yp, &E, &xp, 1);
    t2_mat O = {T2_F32, 1, 1, &x0};
    t2_matvec_batch(pools[1], &yp, &O, &xp, 0);
    T2_CHECK(y0 == 42.0f);
    t2_kern_force_level(LEVELS[0]);
    for (int p = 0; p < 3; p++) t2_pool_destroy(&pools[p]);
}

/* Q8_0 rounds x to int16 per block identically at every level: with one-hot rows (scale 1,
 * q = 1 at column r) y[r] is exactly the rounded x[r]. */
static void test_q8_prep_levels(void) {
    int n = 256;
    uint8_t *w = calloc((size_t)n * (n / 32) * 34, 1);
    for (int r = 0; r < n; r++) {
        uint8_t *row = w + (size_t)r * (n / 32) * 34;
        for (int b = 0; b < n / 32; b++) {
            row[b * 34] = 0x00; /* f16 1.0 = 0x3c00, little endian */
            row[b * 34 + 1] = 0x3c;
        }
        row[(r / 32) * 34 + 2 + r % 32] = 1;
    }
    t2_mat W = {T2_Q8_0, n, n, w};
    float *x = malloc((size_t)n * 4), y[NLEVELS][256];
    for (int i = 0; i < n; i++) x[i] = rng_f() * powf(10.0f, (float)(i % 7) - 3.0f);
    for (int i = 64; i < 96; i++) x[i] = 0.0f;      /* an all-zero block */
    x[130] = 65504.0f;                               /* big values */
    x[200] = -1e-30f;                                /* tiny */
    int have[NLEVELS] = {0};
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) continue;
        have[l] = 1;
        t2_matvec(NULL, y[l], &W, x);
        for (int i = 0; i < n; i++) {
            double amax = 0;
            for (int k = i / 32 * 32; k < i / 32 * 32 + 32; k++) amax = fmax(amax, fabs(x[k]));
            double den = t2_kern_x_bits(T2_Q8_0, n) == 8 ? 254.0 : 65534.0;
            T2_CHECK_MSG(fabs(y[l][i] - x[i]) <= amax / den * 1.0001 + 1e-38, "%s i=%d %g vs %g",
                         LEVELS[l], i, (double)y[l][i], (double)x[i]);
        }
    }
    for (size_t l = 1; l < 3; l++) /* the 16-bit levels */
        if (have[l]) T2_CHECK_MSG(memcmp(y[0], y[l], (size_t)n * 4) == 0, "%s vs generic", LEVELS[l]);
    t2_kern_force_level(LEVELS[0]);
    free(w);
    free(x);
}

/* ---- matmul vs reference; threads ---- */

static void test_matmul(void) {
    /* B = 2..7 only where the 8-bit kernels run (groups of 4 activation rows and remainders) */
    static const int Bs[] = {1, 5, 33, 2, 3, 4, 6, 7};
    /* {40, 1088}: more 32-blocks than the legacy kernels pack at a time (quants_vnni_tile.c) */
    static const int shapes[][2] = {{100, 64}, {768, 768}, {37, 96}, {2048, 160}, {40, 1088}};
    t2_pool *p1 = NULL, *p2 = NULL, *p3 = NULL;
    T2_CHECK(t2_pool_new(&p1, 1) == 0 && t2_pool_new(&p2, 2) == 0 && t2_pool_new(&p3, 3) == 0);
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) continue;
        for (size_t t = 0; t < NTYPES; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                for (size_t bi = 0; bi < sizeof Bs / sizeof Bs[0]; bi++) {
                    int rows = shapes[s][0], cols = shapes[s][1], B = Bs[bi];
                    int blk = t2_dtype_block(TYPES[t]);
                    cols = (cols + blk - 1) / blk * blk;
                    int x8 = t2_kern_x_bits(TYPES[t], cols) == 8;
                    /* the other block types share the f32 conversion path (exactness: see
                     * test_matmul_conversions): the two small shapes suffice */
                    if (blk > 1 && TYPES[t] != T2_Q8_0 && !x8 && (s == 1 || s == 3)) continue;
                    if (bi >= 3 && !x8) continue;
                    if (s == 4 && !x8) continue;
                    float *ref;
                    t2_mat W = make_mat(TYPES[t], rows, cols, &ref);
                    float *X = malloc((size_t)B * cols * 4);
                    fill(X, (size_t)B * cols, 1.0f);
                    float *Y1 = malloc((size_t)B * rows * 4), *Y2 = malloc((size_t)B * rows * 4);
                    float *Y3 = malloc((size_t)B * rows * 4);
                    T2_CHECK_EQ_INT(t2_matmul(p1, Y1, &W, X, B), 0);
                    T2_CHECK_EQ_INT(t2_matmul(p2, Y2, &W, X, B), 0);
                    T2_CHECK_EQ_INT(t2_matmul(p3, Y3, &W, X, B), 0);
                    char what[96];
                    snprintf(what, sizeof what, "matmul %s %s %dx%d B=%d", LEVELS[l],
                             t2_dtype_name(TYPES[t]), rows, cols, B);
                    int bad = 0;
                    /* B == 1 runs matvec (x rounded); so do the 8-bit kernels for any B;
                     * BF16 on bf16 dot products rounds x to bf16 (engine/gemm.h) */
                    int xb = B == 1 || x8 ? t2_kern_x_bits(TYPES[t], cols) : 0;
                    double tol = TYPES[t] == T2_BF16 && B > 1 && t2_gemm_bf16_dot() ? 1.0 / 256 + 1e-5
                                                                                  : 1e-5;
                    for (int b = 0; b < B; b++)
                        bad += check_rows_q(Y1 + (size_t)b * rows, ref, X + (size_t)b * cols, rows,
                                            cols, tol, xb, what);
                    T2_CHECK_MSG(bad == 0, "%s", what);
                    if (x8) { /* every row of Y == t2_matvec of that row of X */
                        float *yv = malloc((size_t)rows * 4);
                        for (int b = 0; b < B; b++) {
                            t2_matvec(p2, yv, &W, X + (size_t)b * cols);
                            T2_CHECK_MSG(memcmp(Y1 + (size_t)b * rows, yv, (size_t)rows * 4) == 0,
                                         "%s: row %d == matvec", what, b);
                        }
                        free(yv);
                    }
                    if (B == 1) {
                        float *yv = malloc((size_t)rows * 4);
                        t2_matvec(NULL, yv, &W, X);
                        T2_CHECK_MSG(memcmp(Y1, yv, (size_t)rows * 4) == 0, "%s: == matvec", what);
                        free(yv);
                    }
                    T2_CHECK_MSG(memcmp(Y1, Y2, (size_t)B * rows * 4) == 0, "%s: 1 vs 2 threads", what);
                    T2_CHECK_MSG(memcmp(Y1, Y3, (size_t)B * rows * 4) == 0, "%s: 1 vs 3 threads", what);
                    free((void *)W.data);
                    free(ref);
                    free(X);
                    free(Y1);
                    free(Y2);
                    free(Y3);
                }
    }
    t2_kern_force_level(LEVELS[0]);
    t2_kern_free_scratch();
    t2_kern_free_scratch(); /* twice is fine */
    /* still works after freeing */
    float *ref;
    t2_mat W = make_mat(T2_F16, 40, 32, &ref);
    float X[32], Y[40];
    fill(X, 32, 1.0f);
    T2_CHECK_EQ_INT(t2_matmul(p2, Y, &W, X, 1), 0);
    T2_CHECK(check_rows(Y, ref, X, 40, 32, 1e-5, "after free") == 0);
    free((void *)W.data);
    free(ref);
    t2_kern_free_scratch();
    t2_pool_destroy(&p1);
    t2_pool_destroy(&p2);
    t2_pool_destroy(&p3);
}

/* ---- pool ---- */

static void test_split(void) {
    static const int ns[] = {0, 1, 15, 16, 17, 100, 1000, 32000};
    static const int aligns[] = {1, 4, 16, 0};
    for (size_t a = 0; a < 4; a++)
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
            for (int nth = 1; nth <= 7; nth++) {
                int n = ns[i], al = aligns[a] < 1 ? 1 : aligns[a], expect = 0, maxc = 0;
                for (int k = 0; k < nth; k++) {
                    int lo, hi;
                    t2_split(n, aligns[a], k, nth, &lo, &hi);
                    T2_CHECK(lo == expect);
                    T2_CHECK(hi >= lo && hi <= n);
                    T2_CHECK(lo % al == 0 || lo == n);
                    if (hi - lo > maxc) maxc = hi - lo;
                    expect = hi;
                }
                T2_CHECK_EQ_INT(expect, n);
                /* near-equal: no chunk exceeds its share by more than one alignment unit */
                int units = (n + al - 1) / al;
                T2_CHECK(maxc <= ((units + nth - 1) / nth) * al);
            }
}

typedef struct stress_ctx {
    const int64_t *a;
    int n;
    int64_t part[8 * 8];
    atomic_int calls[8];
    int run;
    int seen_run[8]; /* per ith: the last run id seen (checks publication of ctx fields) */
    int bad;
} stress_ctx;

static void stress_fn(void *vctx, int ith, int nth) {
    stress_ctx *c = vctx;
    int lo, hi;
    t2_split(c->n, 1, ith, nth, &lo, &hi);
    int64_t s = 0;
    for (int i = lo; i < hi; i++) s += c->a[i];
    c->part[8 * ith] = s;
    if (c->seen_run[ith] != c->run - 1) c->bad = 1; /* only this thread writes bad=1 on error */
    c->seen_run[ith] = c->run;
    atomic_fetch_add_explicit(&c->calls[ith], 1, memory_order_relaxed);
}

static void test_pool_stress(void) {
    int n = 1000;
    int64_t *a = malloc((size_t)n * sizeof *a), total = 0;
    for (int i = 0; i < n; i++) total += a[i] = (int64_t)rng_u32();
    for (int nt = 1; nt <= 4; nt++) {
        t2_pool *pool = NULL;
        T2_CHECK(t2_pool_new(&pool, nt) == 0);
        if (!pool) continue;
        T2_CHECK_EQ_INT(t2_pool_size(pool), nt);
        stress_ctx *c = calloc(1, sizeof *c);
        c->a = a;
        c->n = n;
        for (int i = 0; i < 8; i++) {
            atomic_init(&c->calls[i], 0);
            c->seen_run[i] = 0;
        }
        int wrong = 0, runs = 10000;
        for (int r = 1; r <= runs; r++) {
            c->run = r;
            c->n = n - (r % 7); /* vary the job */
            t2_pool_run(pool, stress_fn, c);
            int64_t s = 0;
            for (int k = 0; k < nt; k++) s += c->part[8 * k];
            int64_t want = total;
            for (int i = c->n; i < n; i++) want -= a[i];
            wrong += s != want;
            if (r % 2500 == 0) usleep(2000); /* let the workers fall asleep */
        }
        T2_CHECK_EQ_INT(wrong, 0);
        T2_CHECK_EQ_INT(c->bad, 0);
        for (int k = 0; k < nt; k++) T2_CHECK_EQ_INT(atomic_load(&c->calls[k]), runs);
        free(c);
        t2_pool_destroy(&pool);
    }
    /* create / destroy churn, with and without work */
    for (int i = 0; i < 50; i++) {
        t2_pool *p = NULL;
        T2_CHECK(t2_pool_new(&p, 1 + i % 4) == 0);
        if (i % 2) {
            stress_ctx *c = calloc(1, sizeof *c);
            c->a = a;
            c->n = n;
            c->run = 1;
            t2_pool_run(p, stress_fn, c);
            int64_t s = 0;
            for (int k = 0; k < t2_pool_size(p); k++) s += c->part[8 * k];
            T2_CHECK(s == total);
            free(c);
        }
        t2_pool_destroy(&p);
    }
    t2_pool *none = (t2_pool *)&none; /* must be reset to NULL */
    T2_CHECK(t2_pool_new(&none, 0) == T2_EINVAL);
    T2_CHECK(none == NULL);
    t2_pool_destroy(NULL);
    T2_CHECK_EQ_INT(t2_pool_size(NULL), 1);
    free(a);
}

/* ---- small kernels vs double references ---- */

static void test_rmsnorm(void) {
    int n = 768;
    float *x = malloc((size_t)n * 4), *w = malloc((size_t)n * 4), *o = malloc((size_t)n * 4);
    fill(x, (size_t)n, 3.0f);
    fill(w, (size_t)n, 1.0f);
    t2_rmsnorm(o, x, w, n, 1e-5f);
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; i++) T2_CHECK_NEAR(o[i], w[i] * x[i] * inv, 1e-5 * fabs(w[i] * x[i] * inv) + 1e-7);
    /* in place */
    memcpy(o, x, (size_t)n * 4);
    float *o2 = malloc((size_t)n * 4);
    t2_rmsnorm(o2, x, w, n, 1e-5f);
    t2_rmsnorm(o, o, w, n, 1e-5f);
    T2_CHECK(memcmp(o, o2, (size_t)n * 4) == 0);
    free(x);
    free(w);
    free(o);
    free(o2);
}

static void test_softmax(void) {
    static const int ns[] = {1, 2, 7, 100, 1000};
    for (size_t k = 0; k < 5; k++) {
        int n = ns[k];
        float *x = malloc((size_t)n * 4);
        fill(x, (size_t)n, 20.0f);
        x[n / 2] = 80.0f; /* large values must not overflow */
        double *d = malloc((size_t)n * sizeof *d), mx = -1e300, s = 0;
        for (int i = 0; i < n; i++) mx = fmax(mx, x[i]);
        for (int i = 0; i < n; i++) s += d[i] = exp((double)x[i] - mx);
        t2_softmax(x, n);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            T2_CHECK_NEAR(x[i], d[i] / s, 1e-6 * d[i] / s + 1e-12);
            sum += x[i];
        }
        T2_CHECK_NEAR(sum, 1.0, 1e-5);
        free(x);
        free(d);
    }
}

static void test_rope(void) {
    int n_heads = 3, hd = 64;
    float theta = 10000.0f;
    float *x = malloc((size_t)n_heads * hd * 4), *x0 = malloc((size_t)n_heads * hd * 4);
    static const int poss[] = {0, 1, 17, 1000};
    for (size_t k = 0; k < 4; k++) {
        int pos = poss[k];
        fill(x0, (size_t)n_heads * hd, 1.0f);
        memcpy(x, x0, (size_t)n_heads * hd * 4);
        t2_rope(x, n_heads, hd, pos, theta);
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < hd; i += 2) {
                double ang = pos * pow((double)theta, -(double)i / hd);
                double a = x0[h * hd + i], b = x0[h * hd + i + 1];
                double tol = 2e-6 * (1 + pos * 1e-2); /* float angle rounding grows with pos */
                T2_CHECK_NEAR(x[h * hd + i], a * cos(ang) - b * sin(ang), tol);
                T2_CHECK_NEAR(x[h * hd + i + 1], a * sin(ang) + b * cos(ang), tol);
            }
        if (pos == 0) T2_CHECK(memcmp(x, x0, (size_t)n_heads * hd * 4) == 0);
    }
    free(x);
    free(x0);
}

static void test_swiglu_dot_axpy(void) {
    int n = 2048;
    float *g = malloc((size_t)n * 4), *u = malloc((size_t)n * 4), *o = malloc((size_t)n * 4);
    fill(g, (size_t)n, 8.0f);
    fill(u, (size_t)n, 2.0f);
    t2_swiglu(o, g, u, n);
    for (int i = 0; i < n; i++) {
        double want = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
        T2_CHECK_NEAR(o[i], want, 1e-6 * fabs(want) + 1e-7);
    }
    static const int lens[] = {0, 1, 7, 15, 16, 17, 33, 64, 128, 1000};
    for (size_t l = 0; l < NLEVELS; l++) {
        if (t2_kern_force_level(LEVELS[l]) != 0) continue;
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            int m = lens[k];
            double s = 0, a = 0;
            for (int i = 0; i < m; i++) {
                s += (double)g[i] * u[i];
                a += fabs((double)g[i] * u[i]);
            }
            T2_CHECK_NEAR(t2_dot_f32(g, u, m), s, 1e-6 * a + 1e-30);
            float *y = malloc((size_t)m * 4 + 4);
            memcpy(y, u, (size_t)m * 4);
            y[m] = 12345.0f; /* not touched */
            t2_axpy_f32(y, 0.375f, g, m);
            for (int i = 0; i < m; i++)
                T2_CHECK_NEAR(y[i], (double)u[i] + 0.375 * g[i], 1e-6 * (fabs(u[i]) + fabs(g[i])));
            T2_CHECK(y[m] == 12345.0f);
            free(y);
        }
    }
    t2_kern_force_level(LEVELS[0]);
    free(g);
    free(u);
    free(o);
}

static void test_levels(void) {
    T2_CHECK_EQ_INT(t2_kern_force_level("sse9"), T2_EUNSUPPORTED);
    T2_CHECK_EQ_INT(t2_kern_force_level(NULL), T2_EUNSUPPORTED);
    T2_CHECK_EQ_INT(t2_kern_force_level("generic"), 0);
    T2_CHECK(strcmp(t2_kern_level(), "generic") == 0);
    const char *best = NULL;
    for (size_t l = 0; l < NLEVELS; l++)
        if (t2_kern_force_level(LEVELS[l]) == 0) best = LEVELS[l];
    T2_CHECK(best && strcmp(t2_kern_level(), best) == 0);
    /* OpenBLAS names the core it dispatched to; "?" is what we print when it names none */
    const char *core = t2_blas_corename();
    printf("     best level: %s, OpenBLAS core: %s\n", best, core);
    T2_CHECK_MSG(core[0] && strcmp(core, "?") != 0, "OpenBLAS reports no core: '%s'", core);
    for (const char *c = core; *c; c++)
        T2_CHECK_MSG(*c > ' ' && *c < 127, "core name '%s' is not a printable word", core);
}

static void test_membw_small(void) {
    double g1 = t2_membw_read_gbs(1, 8u << 20), g2 = t2_membw_read_gbs(2, 8u << 20);
    T2_CHECK(g1 > 0.1 && g2 > 0.1);
    T2_CHECK(t2_membw_read_gbs(0, 8u << 20) < 0);
}

int main(void) {
    T2_RUN(test_levels);
    T2_RUN(test_split);
    T2_RUN(test_pool_stress);
    T2_RUN(test_matvec_reference);
    T2_RUN(test_conversions_exact);
    T2_RUN(test_matvec_threads);
    T2_RUN(test_matvec_multi);
    T2_RUN(test_matvec_multi_q8);
    T2_RUN(test_matvec_batch);
    T2_RUN(test_q8_prep_levels);
    T2_RUN(test_matmul);
    T2_RUN(test_matmul_conversions);
    T2_RUN(test_rmsnorm);
    T2_RUN(test_softmax);
    T2_RUN(test_rope);
    T2_RUN(test_swiglu_dot_axpy);
    T2_RUN(test_membw_small);
    return T2_TEST_END();
}
