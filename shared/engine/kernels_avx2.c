/* kernels_avx2.c - AVX2 + FMA + F16C variants of the matrix-vector kernels.
 *
 * Same structure and determinism rules as kernels_avx512.c with 8-wide vectors; column tails
 * (< 8) go through small zero-padded buffers.
 */
#if defined(__x86_64__)

#include "engine/kernels_simd.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define TGT_INLINE static inline __attribute__((always_inline)) TGT


TGT_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

TGT_INLINE __m256 ld_f32(const void *p) { return _mm256_loadu_ps(p); }
TGT_INLINE __m256 ld_f16(const void *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
TGT_INLINE __m256 ld_bf16(const void *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* One row at a time (one sequential weight stream per thread, see kernels_avx512.c). Per row
 * four accumulators: 32-column steps feed a0..a3, then a 16-column step a0, a1, an 8-column
 * step a2, the zero-padded tail a3; y = hsum((a0 + a1) + (a2 + a3)). */
#define DEF_ROWS(NAME, ES, LD)                                                                 \
    TGT_INLINE float NAME##_row(const uint8_t *w, int cols, const float *x) {                  \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                            \
        int i = 0;                                                                             \
        for (; i + 32 <= cols; i += 32) {                                                      \
            const uint8_t *p = w + (size_t)i * ES;                                             \
            a0 = _mm256_fmadd_ps(LD(p), _mm256_loadu_ps(x + i), a0);                           \
            a1 = _mm256_fmadd_ps(LD(p + 8 * ES), _mm256_loadu_ps(x + i + 8), a1);              \
            a2 = _mm256_fmadd_ps(LD(p + 16 * ES), _mm256_loadu_ps(x + i + 16), a2);            \
            a3 = _mm256_fmadd_ps(LD(p + 24 * ES), _mm256_loadu_ps(x + i + 24), a3);            \
        }                                                                                      \
        if (i + 16 <= cols) {                                                                  \
            a0 = _mm256_fmadd_ps(LD(w + (size_t)i * ES), _mm256_loadu_ps(x + i), a0);          \
            a1 = _mm256_fmadd_ps(LD(w + (size_t)(i + 8) * ES), _mm256_loadu_ps(x + i + 8), a1); \
            i += 16;                                                                           \
        }                                                                                      \
        if (i + 8 <= cols) {                                                                   \
            a2 = _mm256_fmadd_ps(LD(w + (size_t)i * ES), _mm256_loadu_ps(x + i), a2);          \
            i += 8;                                                                            \
        }                                                                                      \
        if (i < cols) {                                                                        \
            float xb[8] = {0};                                                                 \
            uint8_t wb[8 * ES] = {0};                                                          \
            memcpy(xb, x + i, (size_t)(cols - i) * 4);                                         \
            memcpy(wb, w + (size_t)i * ES, (size_t)(cols - i) * ES);                           \
            a3 = _mm256_fmadd_ps(LD(wb), _mm256_loadu_ps(xb), a3);                             \
        }                                                                                      \
        return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));              \
    }                                                                                          \
    TGT void t2_k256_matvec_##NAME(float *y, const void *W, size_t rb, int cols, const float *x, \
                                   int r0, int r1) {                                           \
        const uint8_t *w = (const uint8_t *)W;                                                 \
        for (int r = r0; r < r1; r++) y[r] = NAME##_row(w + (size_t)r * rb, cols, x);         \
    }

DEF_ROWS(f32, 4, ld_f32)
DEF_ROWS(f16, 2, ld_f16)
DEF_ROWS(bf16, 2, ld_bf16)

/* ---- batched rows (t2_matvec_batch): one row against a group of G <= 3 vectors ----
 * As in kernels_avx512.c: each 8-column chunk of the row is loaded (and converted) once and FMA'd
 * into every vector's accumulators (12 of the 16 registers), with NAME##_row's accumulators,
 * steps, zero-padded tail and reduction per vector (bit-identical results); row by row while all
 * the x fit in L1, else blocks of BATCH_BLOCK rows, each group of vectors passing over a block. */
#define BATCH_G 3
#define BATCH_BLOCK 32
#define BATCH_X_L1 (32 * 1024) /* all x up to this many bytes: rows one at a time (blk = 1) */
/* S(g) for g = 0 .. G - 1 written out (constant indices: the accumulators stay in registers). */
#define FOR_G(S)                                                                               \
    do {                                                                                       \
        S(0);                                                                                  \
        if (G > 1) S(1);                                                                       \
        if (G > 2) S(2);                                                                       \
    } while (0)

/* FNAME(ys, W, rb, cols, xs, nb, r0, r1): rows [r0, r1) against nb vectors by ROWG(ys, r, row,
 * cols, xs, G), G a constant per call site. */
#define DEF_BATCH_DRIVER(FNAME, ROWG, XT)                                                      \
    TGT void FNAME(float *const *ys, const void *W, size_t rb, int cols, XT xs, int nb, int r0, \
                   int r1) {                                                                   \
        const uint8_t *w = (const uint8_t *)W;                                                 \
        /* nb in the fewest groups of <= BATCH_G, sizes as even as possible */                 \
        int ng = (nb + BATCH_G - 1) / BATCH_G, gsz = ng ? nb / ng : 0, gbig = ng ? nb % ng : 0; \
        int blk = (size_t)nb * (size_t)cols * 4 <= BATCH_X_L1 ? 1 : BATCH_BLOCK;               \
        for (int q0 = r0; q0 < r1; q0 += blk) {                                                \
            int q1 = q0 + blk < r1 ? q0 + blk : r1;                                            \
            for (int k = 0, b = 0; k < ng; k++) {                                              \
                int g = gsz + (k < gbig);                                                      \
                for (int r = q0; r < q1; r++) {                                                \
                    const uint8_t *wr = w + (size_t)r * rb;                                    \
                    switch (g) {                                                               \
                    case 3: ROWG(ys + b, r, wr, cols, xs + b, 3); break;                       \
                    case 2: ROWG(ys + b, r, wr, cols, xs + b, 2); break;                       \
                    default: ROWG(ys + b, r, wr, cols, xs + b, 1); break;                      \
                    }                                                                          \
                }                                                                              \
                b += g;                                                                        \
            }                                                                                  \
        }                                                                                      \
    }

/* The per-vector statements of NAME##_row_g (locals a0..a3, w0..w3, xs, i, tail). */
#define B_ZERO(g) (a0[g] = a1[g] = a2[g] = a3[g] = _mm256_setzero_ps())
#define B_FMA(A, W, g, c) (A[g] = _mm256_fmadd_ps(W, _mm256_loadu_ps(xs[g] + (c)), A[g]))
#define B_STEP32(g)                                                                            \
    (B_FMA(a0, w0, g, i), B_FMA(a1, w1, g, i + 8), B_FMA(a2, w2, g, i + 16), B_FMA(a3, w3, g, i + 24))
#define B_STEP16(g) (B_FMA(a0, w0, g, i), B_FMA(a1, w1, g, i + 8))
#define B_STEP8(g) B_FMA(a2, w0, g, i)
#define B_TAIL(g)                                                                              \
    do {                                                                                       \
        float xb[8] = {0};                                                                     \
        memcpy(xb, xs[g] + i, (size_t)(cols - i) * 4);                                         \
        a3[g] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xb), a3[g]);                               \
    } while (0)
#define B_STORE(g)                                                                             \
    (ys[g][r] = hsum(_mm256_add_ps(_mm256_add_ps(a0[g], a1[g]), _mm256_add_ps(a2[g], a3[g]))))

#define DEF_ROWS_BATCH(NAME, ES, LD)                                                           \
    TGT_INLINE void NAME##_row_g(float *const *ys, int r, const uint8_t *w, int cols,         \
                                 const float *const *xs, int G) {                             \
        __m256 a0[BATCH_G], a1[BATCH_G], a2[BATCH_G], a3[BATCH_G];                             \
        FOR_G(B_ZERO);                                                                         \
        int i = 0;                                                                             \
        for (; i + 32 <= cols; i += 32) {                                                      \
            const uint8_t *p = w + (size_t)i * ES;                                             \
            __m256 w0 = LD(p), w1 = LD(p + 8 * ES), w2 = LD(p + 16 * ES), w3 = LD(p + 24 * ES); \
            FOR_G(B_STEP32);                                                                   \
        }                                                                                      \
        if (i + 16 <= cols) {                                                                  \
            __m256 w0 = LD(w + (size_t)i * ES), w1 = LD(w + (size_t)(i + 8) * ES);            \
            FOR_G(B_STEP16);                                                                   \
            i += 16;                                                                           \
        }                                                                                      \
        if (i + 8 <= cols) {                                                                   \
            __m256 w0 = LD(w + (size_t)i * ES);                                                \
            FOR_G(B_STEP8);                                                                    \
            i += 8;                                                                            \
        }                                                                                      \
        if (i < cols) {                                                                        \
            uint8_t wb[8 * ES] = {0};                                                          \
            memcpy(wb, w + (size_t)i * ES, (size_t)(cols - i) * ES);                           \
            __m256 w0 = LD(wb);                                                                \
            FOR_G(B_TAIL);                                                                     \
        }                                                                                      \
        FOR_G(B_STORE);                                                                        \
    }                                                                                          \
    DEF_BATCH_DRIVER(t2_k256_matvecb_##NAME, NAME##_row_g, const float *const *)

DEF_ROWS_BATCH(f32, 4, ld_f32)
DEF_ROWS_BATCH(f16, 2, ld_f16)
DEF_ROWS_BATCH(bf16, 2, ld_bf16)

TGT_INLINE __m256 q8_part(const uint8_t *blk, int k) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * k))));
}
TGT_INLINE __m256 q8_scale(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
    return _mm256_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
/* x prepared as in kernels_avx512.c: acc += (d * dx) * float(q . x16 in 8 lanes) */
TGT_INLINE __m256 q8_block(const uint8_t *blk, const int16_t *xb, const float *dx, __m256 acc) {
    __m256i q0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 2)));
    __m256i q1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + 18)));
    __m256i p = _mm256_add_epi32(_mm256_madd_epi16(q0, _mm256_loadu_si256((const __m256i *)xb)),
                                 _mm256_madd_epi16(q1, _mm256_loadu_si256((const __m256i *)(xb + 16))));
    __m256 s = _mm256_mul_ps(q8_scale(blk), _mm256_set1_ps(*dx));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc);
}

/* Even blocks accumulate in a0, odd blocks in a1; y = hsum(a0 + a1). */
TGT_INLINE float q8_0_row(const uint8_t *w, int cols, const int16_t *x16, const float *dx) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int nb = cols / 32, b = 0;
    for (; b + 2 <= nb; b += 2) {
        a0 = q8_block(w + (size_t)b * 34, x16 + 32 * b, dx + b, a0);
        a1 = q8_block(w + (size_t)(b + 1) * 34, x16 + 32 * b + 32, dx + b + 1, a1);
    }
    if (b < nb) a0 = q8_block(w + (size_t)b * 34, x16 + 32 * b, dx + b, a0);
    return hsum(_mm256_add_ps(a0, a1));
}

TGT void t2_k256_matvec_q8_0(float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                             int r1) {
    const uint8_t *w = (const uint8_t *)W;
    const int16_t *x16 = (const int16_t *)xq;
    const float *dx = (const float *)(x16 + cols);
    for (int r = r0; r < r1; r++) y[r] = q8_0_row(w + (size_t)r * rb, cols, x16, dx);
}

/* Batched: one row against G prepared vectors, q8_0_row's operations per vector (the int8 ->
 * int16 widening and the weight scale are shared). */
#define Q_INIT(g)                                                                              \
    (a0[g] = a1[g] = _mm256_setzero_ps(), x16[g] = (const int16_t *)xqs[g],                    \
     dx[g] = (const float *)(x16[g] + cols))
/* A[g] += (d * dx) * float(q . x16) for block k (q8_block's operations) */
#define Q_BLOCK(A, q0, q1, d, k, g)                                                            \
    (A[g] = _mm256_fmadd_ps(                                                                   \
         _mm256_cvtepi32_ps(_mm256_add_epi32(                                                  \
             _mm256_madd_epi16(q0, _mm256_loadu_si256((const __m256i *)(x16[g] + 32 * (k)))), \
             _mm256_madd_epi16(q1, _mm256_loadu_si256((const __m256i *)(x16[g] + 32 * (k) + 16))))), \
         _mm256_mul_ps(d, _mm256_set1_ps(dx[g][k])), A[g]))
#define Q_PAIR(g) (Q_BLOCK(a0, q00, q01, d0, b, g), Q_BLOCK(a1, q10, q11, d1, b + 1, g))
#define Q_LAST(g) Q_BLOCK(a0, q00, q01, d0, b, g)
#define Q_STORE(g) (ys[g][r] = hsum(_mm256_add_ps(a0[g], a1[g])))
#define Q_WIDEN(blk, h) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)((blk) + 2 + 16 * (h))))

TGT_INLINE void q8_0_row_g(float *const *ys, int r, const uint8_t *w, int cols,
                           const void *const *xqs, int G) {
    __m256 a0[BATCH_G], a1[BATCH_G];
    const int16_t *x16[BATCH_G];
    const float *dx[BATCH_G];
    FOR_G(Q_INIT);
    int nb = cols / 32, b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *k0 = w + (size_t)b * 34, *k1 = k0 + 34;
        __m256i q00 = Q_WIDEN(k0, 0), q01 = Q_WIDEN(k0, 1), q10 = Q_WIDEN(k1, 0), q11 = Q_WIDEN(k1, 1);
        __m256 d0 = q8_scale(k0), d1 = q8_scale(k1);
        FOR_G(Q_PAIR);
    }
    if (b < nb) {
        const uint8_t *k0 = w + (size_t)b * 34;
        __m256i q00 = Q_WIDEN(k0, 0), q01 = Q_WIDEN(k0, 1);
        __m256 d0 = q8_scale(k0);
        FOR_G(Q_LAST);
    }
    FOR_G(Q_STORE);
}

DEF_BATCH_DRIVER(t2_k256_matvecb_q8_0, q8_0_row_g, const void *const *)

TGT void t2_k256_to_f32_f16(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld_f16(s + 2 * i));
    if (i < n) {
        uint8_t b[16] = {0};
        float f[8];
        memcpy(b, s + 2 * i, (size_t)(n - i) * 2);
        _mm256_storeu_ps(f, ld_f16(b));
        memcpy(dst + i, f, (size_t)(n - i) * 4);
    }
}

TGT void t2_k256_to_f32_bf16(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, ld_bf16(s + 2 * i));
    if (i < n) {
        uint8_t b[16] = {0};
        float f[8];
        memcpy(b, s + 2 * i, (size_t)(n - i) * 2);
        _mm256_storeu_ps(f, ld_bf16(b));
        memcpy(dst + i, f, (size_t)(n - i) * 4);
    }
}

TGT void t2_k256_to_f32_q8_0(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = s + b * 34;
        __m256 d = q8_scale(blk);
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(dst + 32 * b + 8 * k, _mm256_mul_ps(d, q8_part(blk, k)));
    }
}

TGT float t2_k256_dot(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    if (i < n) {
        float ab[8] = {0}, bb[8] = {0};
        memcpy(ab, a + i, (size_t)(n - i) * 4);
        memcpy(bb, b + i, (size_t)(n - i) * 4);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(ab), _mm256_loadu_ps(bb), s1);
    }
    return hsum(_mm256_add_ps(s0, s1));
}

TGT void t2_k256_axpy(float *y, float a, const float *x, int n) {
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = __builtin_fmaf(a, x[i], y[i]); /* same rounding as the vector body */
}

TGT double t2_k256_sum(const float *a, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    double h = 0; /* scalar head up to a 64-byte boundary: no line-splitting loads */
    for (; i < n && ((uintptr_t)(a + i) & 63); i++) h += a[i];
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
    }
    double s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i];
    return s + h;
}

#endif
