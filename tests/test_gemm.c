/* test_gemm.c - the float matrix-matrix kernels (engine/gemm.h) per weight type and kernel level:
 * odd shapes (M, N, K not multiples of the tiles, K across the column blocks), against a double
 * reference within gemm.h's bounds, against the exact fma chain where gemm.h promises it, and
 * bit-identical for 1, 2 and 3 threads and whatever M. */
#include "engine/gemm.h"
#include "engine/kernels.h"
#include "base/pool.h"
#include "base/t2_err.h"
#include "t2_test.h"

#include <stdint.h>
#include <string.h>

static const char *const LEVELS[] = {"generic", "avx2", "avx512"};
static const t2_dtype TYPES[] = {T2_F32, T2_F16, T2_BF16};

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static float rng_f(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(uint32_t)(rng_state >> 33) / 2147483648.0f - 1.0f; /* [-1, 1) */
}

/* W of type t from random values; *ref gets the f32 values it holds. */
static t2_mat make_w(t2_dtype t, int rows, int cols, float **ref) {
    size_t n = (size_t)rows * cols;
    float *src = malloc(n * 4 + 4);
    for (size_t i = 0; i < n; i++) src[i] = rng_f() * (i % 5 == 0 ? 8.0f : 1.0f);
    void *data = malloc(t2_dtype_row_bytes(t, cols) * (size_t)rows + 4);
    t2_from_f32(data, src, t, (int64_t)n);
    *ref = malloc(n * 4 + 4);
    t2_to_f32(*ref, data, t, (int64_t)n);
    free(src);
    t2_mat m = {t, rows, cols, data};
    return m;
}

/* Checks Y against the double reference (bound of gemm.h) and, where gemm.h promises one fma
 * chain, against that chain bit for bit. Returns the number of bad outputs. */
static int check(const float *Y, const float *ref, const float *X, int M, int N, int K, int dot,
                 const char *what) {
    double u = 1.0 / 16777216.0, gk = K * u / (1 - K * u);
    int bad = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            const float *w = ref + (size_t)n * K, *x = X + (size_t)m * K;
            double s = 0, a = 0;
            float chain = 0.0f;
            for (int k = 0; k < K; k++) {
                s += (double)w[k] * x[k];
                a += fabs((double)w[k] * x[k]);
#ifndef FP_FAST_FMAF
                if (!strcmp(t2_kern_level(), "generic")) { /* gemm.c: no fast fmaf here */
                    volatile float p = w[k] * x[k];
                    chain = chain + p;
                    continue;
                }
#endif
                chain = fmaf(w[k], x[k], chain);
            }
            float y = Y[(size_t)m * N + n];
            double bound = (dot ? 1.0 / 256 + 1.01 * gk : gk) * a + 1e-30;
            int ok = fabs(y - s) <= bound && (dot || memcmp(&y, &chain, 4) == 0);
            if (!ok && bad++ < 3)
                fprintf(stderr, "  %s: Y[%d, %d] = %.9g, want %.9g (chain %.9g, bound %.3g)\n",
                        what, m, n, (double)y, s, (double)chain, bound);
        }
    return bad;
}

/* One level, one type, one shape: threads 1..3 bit-identical, reference, rows independent of M. */
static void run_shape(t2_pool *const *pools, const char *lv, t2_dtype t, int M, int N, int K) {
    float *ref;
    t2_mat W = make_w(t, N, K, &ref);
    float *X = malloc((size_t)M * K * 4 + 4), *Y[3];
    for (int i = 0; i < M * K; i++) X[i] = rng_f();
    for (int p = 0; p < 3; p++) {
        Y[p] = malloc((size_t)M * N * 4 + 4);
        T2_CHECK_EQ_INT(t2_gemm(pools[p], Y[p], &W, X, M), 0);
    }
    char what[96];
    snprintf(what, sizeof what, "%s %s M=%d N=%d K=%d", lv, t2_dtype_name(t), M, N, K);
    int dot = t == T2_BF16 && t2_gemm_bf16_dot();
    T2_CHECK_MSG(check(Y[0], ref, X, M, N, K, dot, what) == 0, "%s", what);
    T2_CHECK_MSG(memcmp(Y[0], Y[1], (size_t)M * N * 4) == 0, "%s: 1 vs 2 threads", what);
    T2_CHECK_MSG(memcmp(Y[0], Y[2], (size_t)M * N * 4) == 0, "%s: 1 vs 3 threads", what);
    /* rows 1..M-1 on their own: the same bits as inside the M-row product */
    T2_CHECK_EQ_INT(t2_gemm(pools[1], Y[1], &W, X + K, M - 1), 0);
    T2_CHECK_MSG(memcmp(Y[0] + N, Y[1], (size_t)(M - 1) * N * 4) == 0, "%s: M - 1 rows", what);
    for (int p = 0; p < 3; p++) free(Y[p]);
    free(X);
    free(ref);
    free((void *)W.data);
}

static void test_gemm_shapes(void) {
    static const int Ns[] = {1, 31, 33, 70};
    static const int Ks[] = {1, 7, 17, 64, 300, 1030};
    t2_pool *pools[3] = {NULL, NULL, NULL};
    for (int p = 0; p < 3; p++) T2_CHECK(t2_pool_new(&pools[p], p + 1) == 0);
    int levels = 0;
    for (size_t l = 0; l < 4; l++) { /* 3: avx512 with BF16 on bf16 dot products */
        if (t2_kern_force_level(LEVELS[l < 3 ? l : 2]) != 0) continue;
        if (l == 3 && t2_gemm_set_bf16_dot(1) != 0) continue;
        levels++;
        for (size_t t = 0; t < 3; t++)
            for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
                for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++) {
                    int M = 2 + (int)((ni * 7 + ki * 3 + t) % 16); /* 2 .. 17 */
                    run_shape(pools, l < 3 ? LEVELS[l] : "avx512-bf16dot", TYPES[t], M, Ns[ni],
                              Ks[ki]);
                }
    }
    t2_gemm_set_bf16_dot(0);
    t2_kern_force_level(LEVELS[0]);
    for (int p = 0; p < 3; p++) t2_pool_destroy(&pools[p]);
    T2_CHECK(levels >= 1);
}

/* Every SIMD level the CPU has runs SIMD micro-kernels (avx512vnni is avx512 plus integer dots:
 * its float products are avx512's, bit for bit). */
static void test_gemm_levels(void) {
    static const char *const simd[] = {"avx2", "avx512", "avx512vnni"};
    for (size_t l = 0; l < 3; l++) {
        if (t2_kern_force_level(simd[l]) != 0) continue;
        const char *want = l == 0 ? "avx2" : "avx512";
        for (size_t t = 0; t < 3; t++)
            T2_CHECK_MSG(!strcmp(t2_gemm_kernels(TYPES[t]), want), "level %s, %s: kernels %s",
                         simd[l], t2_dtype_name(TYPES[t]), t2_gemm_kernels(TYPES[t]));
    }
    t2_kern_force_level(LEVELS[0]);
}

/* Every M from 2 to 17 on one shape that spans several panels and column blocks. */
static void test_gemm_every_m(void) {
    t2_pool *pools[3] = {NULL, NULL, NULL};
    for (int p = 0; p < 3; p++) T2_CHECK(t2_pool_new(&pools[p], p + 1) == 0);
    for (size_t l = 0; l < 4; l++) {
        if (t2_kern_force_level(LEVELS[l < 3 ? l : 2]) != 0) continue;
        if (l == 3 && t2_gemm_set_bf16_dot(1) != 0) continue;
        for (size_t t = 0; t < 3; t++)
            for (int M = 2; M <= 17; M++)
                run_shape(pools, l < 3 ? LEVELS[l] : "avx512-bf16dot", TYPES[t], M, 45, 520);
    }
    t2_gemm_set_bf16_dot(0);
    t2_kern_force_level(LEVELS[0]);
    for (int p = 0; p < 3; p++) t2_pool_destroy(&pools[p]);
}

/* Non-finite values reach the outputs they touch (and only those). */
static void test_gemm_nonfinite(void) {
    float *ref;
    t2_mat W = make_w(T2_F32, 40, 50, &ref);
    float X[3 * 50], Y[3 * 40];
    for (int i = 0; i < 150; i++) X[i] = rng_f();
    X[50 + 7] = NAN;
    T2_CHECK_EQ_INT(t2_gemm(NULL, Y, &W, X, 3), 0);
    for (int n = 0; n < 40; n++) {
        T2_CHECK(isfinite(Y[n]) && isfinite(Y[80 + n]));
        T2_CHECK(isnan(Y[40 + n]));
    }
    t2_mat Q = {T2_Q8_0, 1, 32, ref};
    T2_CHECK(t2_gemm(NULL, Y, &Q, X, 2) == T2_EINVAL);
    free(ref);
    free((void *)W.data);
}

int main(void) {
    T2_RUN(test_gemm_levels);
    T2_RUN(test_gemm_shapes);
    T2_RUN(test_gemm_every_m);
    T2_RUN(test_gemm_nonfinite);
    t2_kern_free_scratch();
    return T2_TEST_END();
}
