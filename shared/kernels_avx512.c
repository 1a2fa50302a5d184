/* kernels_avx512.c - AVX-512 (F+BW+VL) variants of the matrix-vector kernels.
 *
 * Compiled without global -m flags: every function carries a target attribute and is only
 * called after kernels.c checked the CPU (see t2_kern_level). Each output row is computed with a
 * fixed sequence of operations that depends only on cols, whether the row is processed alone or
 * in a group of T2_NR rows sharing the loads of x, so results do not depend on how rows are
 * split between threads.
 */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi,bmi2")))
#define TGT_INLINE static inline __attribute__((always_inline)) TGT

#define T2_NR 4 /* rows per group */

/* The kernels' entry points (declared again in kernels.c). */
void t2_k512_matvec_f32(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k512_matvec_f16(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k512_matvec_bf16(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k512_matvec_q8_0(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k512_to_f32_f16(float *dst, const void *src, int64_t n);
void t2_k512_to_f32_bf16(float *dst, const void *src, int64_t n);
void t2_k512_to_f32_q8_0(float *dst, const void *src, int64_t n);
float t2_k512_dot(const float *a, const float *b, int n);
void t2_k512_axpy(float *y, float a, const float *x, int n);
double t2_k512_sum(const float *a, size_t n);

/* ---- element loaders: 16 weights at p (+ masked tail) as f32 ---- */

TGT_INLINE __m512 ld_f32(const void *p) { return _mm512_loadu_ps(p); }
TGT_INLINE __m512 ldm_f32(__mmask16 m, const void *p) { return _mm512_maskz_loadu_ps(m, p); }
TGT_INLINE __m512 ld_f16(const void *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
TGT_INLINE __m512 ldm_f16(__mmask16 m, const void *p) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
TGT_INLINE __m512 ld_bf16(const void *p) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
TGT_INLINE __m512 ldm_bf16(__mmask16 m, const void *p) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* Generic float-element row group: ES = bytes per element, LD / LDM = loaders.
 * Per row: two accumulators; 32-column steps feed both, a 16-column step feeds acc0, the masked
 * tail feeds acc1; then y = reduce(acc0 + acc1). */
#define DEF_ROWS(NAME, ES, LD, LDM)                                                            \
    TGT_INLINE void NAME##_rows(float *y, const uint8_t *w, size_t rb, int cols,               \
                                const float *x, const int nr) {                                \
        __m512 a0[T2_NR], a1[T2_NR];                                                           \
        _Pragma("GCC unroll 8") for (int r = 0; r < nr; r++) {                                 \
            a0[r] = _mm512_setzero_ps();                                                       \
            a1[r] = _mm512_setzero_ps();                                                       \
        }                                                                                      \
        int i = 0;                                                                             \
        for (; i + 32 <= cols; i += 32) {                                                      \
            __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);              \
            _Pragma("GCC unroll 8") for (int r = 0; r < nr; r++) {                             \
                const uint8_t *p = w + (size_t)r * rb + (size_t)i * ES;                        \
                a0[r] = _mm512_fmadd_ps(LD(p), x0, a0[r]);                                     \
                a1[r] = _mm512_fmadd_ps(LD(p + 16 * ES), x1, a1[r]);                           \
            }                                                                                  \
        }                                                                                      \
        if (i + 16 <= cols) {                                                                  \
            __m512 x0 = _mm512_loadu_ps(x + i);                                                \
            _Pragma("GCC unroll 8") for (int r = 0; r < nr; r++) a0[r] = _mm512_fmadd_ps(      \
                LD(w + (size_t)r * rb + (size_t)i * ES), x0, a0[r]);                           \
            i += 16;                                                                           \
        }                                                                                      \
        if (i < cols) {                                                                        \
            __mmask16 m = (__mmask16)((1u << (cols - i)) - 1);                                 \
            __m512 x0 = _mm512_maskz_loadu_ps(m, x + i);                                       \
            _Pragma("GCC unroll 8") for (int r = 0; r < nr; r++) a1[r] = _mm512_fmadd_ps(      \
                LDM(m, w + (size_t)r * rb + (size_t)i * ES), x0, a1[r]);                       \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int r = 0; r < nr; r++) y[r] =                            \
            _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));                                 \
    }                                                                                          \
    TGT void t2_k512_matvec_##NAME(float *y, const void *W, size_t rb, int cols, const float *x,   \
                               int r0, int r1) {                                               \
        const uint8_t *w = (const uint8_t *)W;                                                 \
        int r = r0;                                                                            \
        for (; r + T2_NR <= r1; r += T2_NR) NAME##_rows(y + r, w + (size_t)r * rb, rb, cols, x, T2_NR); \
        for (; r < r1; r++) NAME##_rows(y + r, w + (size_t)r * rb, rb, cols, x, 1);            \
    }

DEF_ROWS(f32, 4, ld_f32, ldm_f32)
DEF_ROWS(f16, 2, ld_f16, ldm_f16)
DEF_ROWS(bf16, 2, ld_bf16, ldm_bf16)

/* ---- Q8_0: blocks of an f16 scale and 32 int8; y = sum_b d_b * (q_b . x_b) ---- */

TGT_INLINE __m512 q8_lo(const uint8_t *blk) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
}
TGT_INLINE __m512 q8_hi(const uint8_t *blk) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
}
TGT_INLINE __m512 q8_scale(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
    return _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

TGT_INLINE void q8_0_rows(float *y, const uint8_t *w, size_t rb, int cols, const float *x,
                          const int nr) {
    __m512 acc[T2_NR];
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    int nb = cols / 32;
    for (int b = 0; b < nb; b++) {
        __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
#pragma GCC unroll 8
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * rb + (size_t)b * 34;
            __m512 s = _mm512_mul_ps(q8_lo(blk), x0);
            s = _mm512_fmadd_ps(q8_hi(blk), x1, s);
            acc[r] = _mm512_fmadd_ps(q8_scale(blk), s, acc[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < nr; r++) y[r] = _mm512_reduce_add_ps(acc[r]);
}

TGT void t2_k512_matvec_q8_0(float *y, const void *W, size_t rb, int cols, const float *x, int r0,
                             int r1) {
    const uint8_t *w = (const uint8_t *)W;
    int r = r0;
    for (; r + T2_NR <= r1; r += T2_NR) q8_0_rows(y + r, w + (size_t)r * rb, rb, cols, x, T2_NR);
    for (; r < r1; r++) q8_0_rows(y + r, w + (size_t)r * rb, rb, cols, x, 1);
}

/* ---- conversions to f32 (exact) ---- */

TGT void t2_k512_to_f32_f16(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld_f16(s + 2 * i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, ldm_f16(m, s + 2 * i));
    }
}

TGT void t2_k512_to_f32_bf16(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld_bf16(s + 2 * i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, ldm_bf16(m, s + 2 * i));
    }
}

TGT void t2_k512_to_f32_q8_0(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = s + b * 34;
        __m512 d = q8_scale(blk);
        _mm512_storeu_ps(dst + 32 * b, _mm512_mul_ps(d, q8_lo(blk)));
        _mm512_storeu_ps(dst + 32 * b + 16, _mm512_mul_ps(d, q8_hi(blk)));
    }
}

/* ---- vector helpers ---- */

TGT float t2_k512_dot(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

TGT void t2_k512_axpy(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

/* Sum of n floats, streaming 256 bytes per step (the memory-bandwidth probe). */
TGT double t2_k512_sum(const float *a, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + i + 48));
    }
    double s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i];
    return s;
}

#endif
