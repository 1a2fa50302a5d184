/* gemm_avx512.c - AVX-512 kernels of the float matrix-matrix product (gemm.h): panels of 32 rows
 * of W (two zmm of outputs), 8 rows of X per call (16 accumulators), and the packing that
 * converts and transposes W 16 x 16 at a time. The bf16 variants need AVX-512 BF16 (vdpbf16ps);
 * gemm.c calls them only when the CPU has it. */
#if defined(__x86_64__)

#include "engine/gemm.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define TGT_BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline))

#define NR 32
#define MR 8
#define R8(S) S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7)

/* In-register transpose of 16 x 16 floats: r[i] lane c becomes r[c] lane i. */
INL TGT void tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        __m512 u0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        __m512 u1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
        __m512 u2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        __m512 u3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
        t[j] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        t[j + 4] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        t[j + 8] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
        t[j + 12] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* 16 elements of a row from column k (m: the columns < K) as f32. */
INL TGT __m512 ld16(const uint8_t *row, t2_dtype t, int k, __mmask16 m) {
    switch (t) {
    case T2_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * (size_t)k));
    case T2_BF16: {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * (size_t)k));
        return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
    default: { /* two 256-bit halves: 512-bit loads across cache lines read DRAM at half speed */
        const float *f = (const float *)(row + 4 * (size_t)k);
        if (m != 0xffff) return _mm512_maskz_loadu_ps(m, f);
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(f)), _mm256_loadu_ps(f + 8), 1);
    }
    }
}

TGT void t2_g512_pack_f32(void *wp, const void *W, size_t rb, t2_dtype t, int nrows, int K) {
    float *p = wp;
    const uint8_t *w = W;
    for (int k = 0; k < K; k += 16) {
        int nk = K - k < 16 ? K - k : 16;
        __mmask16 m = (__mmask16)(nk == 16 ? 0xffffu : (1u << nk) - 1);
        for (int g = 0; g < NR; g += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = g + i < nrows ? ld16(w + (size_t)(g + i) * rb, t, k, m) : _mm512_setzero_ps();
            tr16(r);
            for (int i = 0; i < nk; i++) _mm512_store_ps(p + (size_t)(k + i) * NR + g, r[i]);
        }
    }
}

/* Y rows += or = the 8 x 32 tile; rows >= mr are computed on repeated x and dropped. */
TGT void t2_g512_kern_f32(float *Y, size_t ldy, const void *const *xr, const void *wv, int kc,
                          int mr, int nr, int load) {
    const float *w = wv;
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffffu : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffffu : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
#define DECL(i)                                                                                \
    const float *x##i = xr[i];                                                                 \
    __m512 c##i##a = _mm512_setzero_ps(), c##i##b = c##i##a;                                   \
    if (load && i < mr) {                                                                      \
        c##i##a = _mm512_maskz_loadu_ps(m0, Y + (size_t)i * ldy);                              \
        c##i##b = _mm512_maskz_loadu_ps(m1, Y + (size_t)i * ldy + 16);                         \
    }
    R8(DECL)
#undef DECL
    for (int k = 0; k < kc; k++) {
        __m512 wa = _mm512_load_ps(w + (size_t)k * NR), wb = _mm512_load_ps(w + (size_t)k * NR + 16);
#define STEP(i)                                                                                \
    {                                                                                          \
        __m512 xb = _mm512_set1_ps(x##i[k]);                                                   \
        c##i##a = _mm512_fmadd_ps(wa, xb, c##i##a);                                            \
        c##i##b = _mm512_fmadd_ps(wb, xb, c##i##b);                                            \
    }
        R8(STEP)
#undef STEP
    }
#define STORE(i)                                                                               \
    if (i < mr) {                                                                              \
        _mm512_mask_storeu_ps(Y + (size_t)i * ldy, m0, c##i##a);                               \
        _mm512_mask_storeu_ps(Y + (size_t)i * ldy + 16, m1, c##i##b);                          \
    }
    R8(STORE)
#undef STORE
}

/* ---- BF16 weights on vdpbf16ps: pairs of columns ----
 * Panel: for each pair of columns, 32 rows x (w[n][2q], w[n][2q + 1]) as 32-bit units; packing
 * is the 16 x 16 transpose of those units. */
TGT_BF void t2_g512_pack_bf16dot(void *wp, const void *W, size_t rb, t2_dtype t, int nrows, int K) {
    (void)t; /* BF16 only */
    uint32_t *p = wp;
    const uint8_t *w = W;
    int npair = (K + 1) / 2;
    for (int q = 0; q < npair; q += 16) {
        int ne = K - 2 * q < 32 ? K - 2 * q : 32, nq = npair - q < 16 ? npair - q : 16;
        __mmask32 m = ne == 32 ? 0xffffffffu : (1u << ne) - 1;
        for (int g = 0; g < NR; g += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = g + i < nrows ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(
                                           m, w + (size_t)(g + i) * rb + 4 * (size_t)q))
                                     : _mm512_setzero_ps();
            tr16(r);
            for (int i = 0; i < nq; i++) _mm512_store_ps((float *)(p + (size_t)(q + i) * NR + g), r[i]);
        }
    }
}

TGT_BF void t2_g512_kern_bf16dot(float *Y, size_t ldy, const void *const *xr, const void *wv,
                                 int kc, int mr, int nr, int load) {
    const uint32_t *w = wv;
    int npair = (kc + 1) / 2;
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffffu : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffffu : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
#define DECL(i)                                                                                \
    const uint8_t *x##i = xr[i];                                                               \
    __m512 c##i##a = _mm512_setzero_ps(), c##i##b = c##i##a;                                   \
    if (load && i < mr) {                                                                      \
        c##i##a = _mm512_maskz_loadu_ps(m0, Y + (size_t)i * ldy);                              \
        c##i##b = _mm512_maskz_loadu_ps(m1, Y + (size_t)i * ldy + 16);                         \
    }
    R8(DECL)
#undef DECL
    for (int q = 0; q < npair; q++) {
        __m512bh wa = (__m512bh)_mm512_load_si512(w + (size_t)q * NR);
        __m512bh wb = (__m512bh)_mm512_load_si512(w + (size_t)q * NR + 16);
#define STEP(i)                                                                                \
    {                                                                                          \
        uint32_t u;                                                                            \
        memcpy(&u, x##i + 4 * (size_t)q, 4);                                                   \
        __m512bh xb = (__m512bh)_mm512_set1_epi32((int)u);                                     \
        c##i##a = _mm512_dpbf16_ps(c##i##a, wa, xb);                                           \
        c##i##b = _mm512_dpbf16_ps(c##i##b, wb, xb);                                           \
    }
        R8(STEP)
#undef STEP
    }
#define STORE(i)                                                                               \
    if (i < mr) {                                                                              \
        _mm512_mask_storeu_ps(Y + (size_t)i * ldy, m0, c##i##a);                               \
        _mm512_mask_storeu_ps(Y + (size_t)i * ldy + 16, m1, c##i##b);                          \
    }
    R8(STORE)
#undef STORE
}

/* x to bf16, round to nearest even (vcvtneps2bf16). */
TGT_BF void t2_g512_x_to_bf16(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i < n; i += 16) {
        int ne = n - i < 16 ? n - i : 16;
        __mmask16 m = (__mmask16)(ne == 16 ? 0xffffu : (1u << ne) - 1);
        __m256bh b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm256_mask_storeu_epi16(dst + i, m, (__m256i)b);
    }
}

#endif
