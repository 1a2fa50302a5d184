/* kernels_avx2.c - AVX2 + FMA + F16C variants of the matrix-vector kernels.
 *
 * Same structure and determinism rules as kernels_avx512.c with 8-wide vectors; column tails
 * (< 8) go through small zero-padded buffers.
 */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define TGT_INLINE static inline __attribute__((always_inline)) TGT

void t2_k256_matvec_f32(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k256_matvec_f16(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k256_matvec_bf16(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k256_matvec_q8_0(float *y, const void *W, size_t rb, int cols, const void *xq, int r0, int r1);
void t2_k256_to_f32_f16(float *dst, const void *src, int64_t n);
void t2_k256_to_f32_bf16(float *dst, const void *src, int64_t n);
void t2_k256_to_f32_q8_0(float *dst, const void *src, int64_t n);
float t2_k256_dot(const float *a, const float *b, int n);
void t2_k256_axpy(float *y, float a, const float *x, int n);
double t2_k256_sum(const float *a, size_t n);

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
