/* gemm_avx2.c - AVX2 + FMA kernels of the float matrix-matrix product (gemm.h): panels of 16
 * rows of W (two ymm of outputs), 6 rows of X per call (12 accumulators), and the packing that
 * converts and transposes W 8 x 8 at a time. */
#if defined(__x86_64__)

#include "engine/gemm.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline))

#define NR 16
#define MR 6
#define R6(S) S(0) S(1) S(2) S(3) S(4) S(5)

INL TGT void tr8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        s[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(s[j], s[4 + j], 0x20);
        r[j + 4] = _mm256_permute2f128_ps(s[j], s[4 + j], 0x31);
    }
}

/* 8 elements of a row from column k as f32 (all 8 columns exist). */
INL TGT __m256 ld8(const uint8_t *row, t2_dtype t, int k) {
    switch (t) {
    case T2_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)k)));
    case T2_BF16: {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)k)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    default: return _mm256_loadu_ps((const float *)(row + 4 * (size_t)k));
    }
}

/* One element as f32 (the columns after the last full 8). */
static float ld1(const uint8_t *row, t2_dtype t, int k) {
    uint16_t h;
    float f;
    switch (t) {
    case T2_F16: memcpy(&h, row + 2 * (size_t)k, 2); return t2_f16_to_f32(h);
    case T2_BF16: memcpy(&h, row + 2 * (size_t)k, 2); return t2_bf16_to_f32(h);
    default: memcpy(&f, row + 4 * (size_t)k, 4); return f;
    }
}

TGT void t2_g256_pack_f32(void *wp, const void *W, size_t rb, t2_dtype t, int nrows, int K) {
    float *p = wp;
    const uint8_t *w = W;
    int k = 0;
    for (; k + 8 <= K; k += 8)
        for (int g = 0; g < NR; g += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = g + i < nrows ? ld8(w + (size_t)(g + i) * rb, t, k) : _mm256_setzero_ps();
            tr8(r);
            for (int i = 0; i < 8; i++) _mm256_store_ps(p + (size_t)(k + i) * NR + g, r[i]);
        }
    for (; k < K; k++)
        for (int n = 0; n < NR; n++)
            p[(size_t)k * NR + n] = n < nrows ? ld1(w + (size_t)n * rb, t, k) : 0.0f;
}

/* Stores the first nr of 16 values (two ymm) at y. */
INL TGT void st16(float *y, __m256 a, __m256 b, int nr) {
    if (nr >= 16) {
        _mm256_storeu_ps(y, a);
        _mm256_storeu_ps(y + 8, b);
        return;
    }
    _Alignas(32) float t[16];
    _mm256_store_ps(t, a);
    _mm256_store_ps(t + 8, b);
    memcpy(y, t, (size_t)nr * sizeof(float));
}

INL TGT void ld16(const float *y, __m256 *a, __m256 *b, int nr) {
    if (nr >= 16) {
        *a = _mm256_loadu_ps(y);
        *b = _mm256_loadu_ps(y + 8);
        return;
    }
    _Alignas(32) float t[16] = {0};
    memcpy(t, y, (size_t)nr * sizeof(float));
    *a = _mm256_load_ps(t);
    *b = _mm256_load_ps(t + 8);
}

TGT void t2_g256_kern_f32(float *Y, size_t ldy, const void *const *xr, const void *wv, int kc,
                          int mr, int nr, int load) {
    const float *w = wv;
#define DECL(i)                                                                                \
    const float *x##i = xr[i];                                                                 \
    __m256 c##i##a = _mm256_setzero_ps(), c##i##b = c##i##a;                                   \
    if (load && i < mr) ld16(Y + (size_t)i * ldy, &c##i##a, &c##i##b, nr);
    R6(DECL)
#undef DECL
    for (int k = 0; k < kc; k++) {
        __m256 wa = _mm256_load_ps(w + (size_t)k * NR), wb = _mm256_load_ps(w + (size_t)k * NR + 8);
#define STEP(i)                                                                                \
    {                                                                                          \
        __m256 xb = _mm256_broadcast_ss(x##i + k);                                             \
        c##i##a = _mm256_fmadd_ps(wa, xb, c##i##a);                                            \
        c##i##b = _mm256_fmadd_ps(wb, xb, c##i##b);                                            \
    }
        R6(STEP)
#undef STEP
    }
#define STORE(i)                                                                               \
    if (i < mr) st16(Y + (size_t)i * ldy, c##i##a, c##i##b, nr);
    R6(STORE)
#undef STORE
}

#endif
