/* quants_simd.c - AVX-512 and AVX2 dequantizers of Q4_0, Q4_K, Q5_K and Q6_K.
 *
 * Each gives exactly quants.c's values (llama.cpp's): the integers are unpacked with byte
 * operations, converted to float exactly, and scaled with the same float products and
 * differences in the same order. Fused multiply-add would change the rounding of d*q - m, so
 * contraction is turned off for this file. Like kernels_avx512.c / kernels_avx2.c, functions carry
 * target attributes and run only after kernels.c checked the CPU.
 */
#if defined(__x86_64__)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "engine/kernels_simd.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define TGT256 __attribute__((target("avx2,fma,f16c")))
#define INL512 static inline __attribute__((always_inline)) TGT512
#define INL256 static inline __attribute__((always_inline)) TGT256

/* ---- scalar helpers shared by both levels ---- */

INL256 float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Q4_K / Q5_K sub-block j's 6-bit scale and min (layout in quants.c). */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* ---- AVX-512: 16 bytes -> 16 floats ---- */

/* dst[0..16) = float(u8 lanes of q) * d - m (m == 0: no subtraction, as the scalar code). */
INL512 void st16u_512(float *dst, __m128i q, float d, float m, int sub) {
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q)), _mm512_set1_ps(d));
    if (sub) v = _mm512_sub_ps(v, _mm512_set1_ps(m));
    _mm512_storeu_ps(dst, v);
}
/* dst[0..16) = d * float(i8 lanes of q) */
INL512 void st16s_512(float *dst, __m128i q, float d) {
    _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_set1_ps(d),
                                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
}

TGT512 void t2_k512_deq_q4_0(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    const __m128i m4 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / 32; i++, b += 18, dst += 32) {
        float d = half_at(b);
        __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
        __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
        /* (float)(q - 8) * d: products commute, the same value as d * float(q - 8) */
        st16s_512(dst, lo, d);
        st16s_512(dst + 16, hi, d);
    }
}

/* 32 nibbles (low or high of 32 bytes) of a Q4_K / Q5_K sub-block, plus a 5th bit. */
INL512 void st32_k_512(float *dst, __m256i q, float d1, float m1) {
    st16u_512(dst, _mm256_castsi256_si128(q), d1, m1, 1);
    st16u_512(dst + 16, _mm256_extracti128_si256(q, 1), d1, m1, 1);
}

TGT512 void t2_k512_deq_q4_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int64_t i = 0; i < n / 256; i++, b += 144, dst += 256) {
        float d = half_at(b), dmin = half_at(b + 2);
        for (int c = 0; c < 4; c++) {
            int sc, mn;
            k4_scale_min(b + 4, 2 * c, &sc, &mn);
            float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(b + 4, 2 * c + 1, &sc, &mn);
            float d2 = d * (float)sc, m2 = dmin * (float)mn;
            __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
            st32_k_512(dst + 64 * c, _mm256_and_si256(q, m4), d1, m1);
            st32_k_512(dst + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), d2, m2);
        }
    }
}

TGT512 void t2_k512_deq_q5_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    const __m256i m4 = _mm256_set1_epi8(15), b4 = _mm256_set1_epi8(16);
    for (int64_t i = 0; i < n / 256; i++, b += 176, dst += 256) {
        float d = half_at(b), dmin = half_at(b + 2);
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
        for (int c = 0; c < 4; c++) {
            int sc, mn;
            k4_scale_min(b + 4, 2 * c, &sc, &mn);
            float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(b + 4, 2 * c + 1, &sc, &mn);
            float d2 = d * (float)sc, m2 = dmin * (float)mn;
            __m256i q = _mm256_loadu_si256((const __m256i *)(b + 48 + 32 * c));
            __m256i bl = _mm256_set1_epi8((char)(1 << (2 * c))), bh = _mm256_set1_epi8((char)(2 << (2 * c)));
            __m256i hl = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bl), bl), b4);
            __m256i hh = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bh), bh), b4);
            __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), hl);
            __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hh);
            st32_k_512(dst + 64 * c, lo, d1, m1);
            st32_k_512(dst + 64 * c + 32, hi, d2, m2);
        }
    }
}

/* Q6_K element group (h, k): 32 signed 6-bit values q - 32 from ql / qh (layout in quants.c). */
INL256 __m256i q6_group(const uint8_t *b, int h, int k) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    __m256i ql = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32 * (k % 2)));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
    __m256i lo = k / 2 ? _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4) : _mm256_and_si256(ql, m4);
    __m256i hb;
    switch (k) {
    case 0: hb = _mm256_and_si256(qh, m2); break;
    case 1: hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2); break;
    case 2: hb = _mm256_and_si256(_mm256_srli_epi16(qh, 4), m2); break;
    default: hb = _mm256_and_si256(_mm256_srli_epi16(qh, 6), m2); break;
    }
    __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hb, 4)); /* hb < 4: no carry across bytes */
    return _mm256_sub_epi8(q, _mm256_set1_epi8(32));
}

TGT512 void t2_k512_deq_q6_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 210, dst += 256) {
        float d = half_at(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++) {
                __m256i q = q6_group(b, h, k);
                int is = 8 * h + 2 * k;
                float *o = dst + 128 * h + 32 * k;
                /* d * sc * q evaluates as (d * sc) * q */
                __m512 s0 = _mm512_set1_ps(d * (float)sc[is]), s1 = _mm512_set1_ps(d * (float)sc[is + 1]);
                __m512 v0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
                __m512 v1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
                _mm512_storeu_ps(o, _mm512_mul_ps(s0, v0));
                _mm512_storeu_ps(o + 16, _mm512_mul_ps(s1, v1));
            }
    }
}

/* ---- AVX2: 16 bytes -> 16 floats as two halves of 8 ---- */

INL256 void st16u_256(float *dst, __m128i q, float d, float m) {
    __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
    __m256 a = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)), vd);
    __m256 c = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(q, 8))), vd);
    _mm256_storeu_ps(dst, _mm256_sub_ps(a, vm));
    _mm256_storeu_ps(dst + 8, _mm256_sub_ps(c, vm));
}
INL256 void st16s_256(float *dst, __m128i q, float d) {
    __m256 vd = _mm256_set1_ps(d);
    _mm256_storeu_ps(dst, _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
    _mm256_storeu_ps(dst + 8, _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
                                                    _mm_srli_si128(q, 8)))));
}
INL256 void st32_k_256(float *dst, __m256i q, float d1, float m1) {
    st16u_256(dst, _mm256_castsi256_si128(q), d1, m1);
    st16u_256(dst + 16, _mm256_extracti128_si256(q, 1), d1, m1);
}

TGT256 void t2_k256_deq_q4_0(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    const __m128i m4 = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / 32; i++, b += 18, dst += 32) {
        float d = half_at(b);
        __m128i q = _mm_loadu_si128((const __m128i *)(b + 2));
        st16s_256(dst, _mm_sub_epi8(_mm_and_si128(q, m4), eight), d);
        st16s_256(dst + 16, _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight), d);
    }
}

TGT256 void t2_k256_deq_q4_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int64_t i = 0; i < n / 256; i++, b += 144, dst += 256) {
        float d = half_at(b), dmin = half_at(b + 2);
        for (int c = 0; c < 4; c++) {
            int sc, mn;
            k4_scale_min(b + 4, 2 * c, &sc, &mn);
            float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(b + 4, 2 * c + 1, &sc, &mn);
            float d2 = d * (float)sc, m2 = dmin * (float)mn;
            __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * c));
            st32_k_256(dst + 64 * c, _mm256_and_si256(q, m4), d1, m1);
            st32_k_256(dst + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), d2, m2);
        }
    }
}

TGT256 void t2_k256_deq_q5_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    const __m256i m4 = _mm256_set1_epi8(15), b4 = _mm256_set1_epi8(16);
    for (int64_t i = 0; i < n / 256; i++, b += 176, dst += 256) {
        float d = half_at(b), dmin = half_at(b + 2);
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 16));
        for (int c = 0; c < 4; c++) {
            int sc, mn;
            k4_scale_min(b + 4, 2 * c, &sc, &mn);
            float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(b + 4, 2 * c + 1, &sc, &mn);
            float d2 = d * (float)sc, m2 = dmin * (float)mn;
            __m256i q = _mm256_loadu_si256((const __m256i *)(b + 48 + 32 * c));
            __m256i bl = _mm256_set1_epi8((char)(1 << (2 * c))), bh = _mm256_set1_epi8((char)(2 << (2 * c)));
            __m256i hl = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bl), bl), b4);
            __m256i hh = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bh), bh), b4);
            st32_k_256(dst + 64 * c, _mm256_or_si256(_mm256_and_si256(q, m4), hl), d1, m1);
            st32_k_256(dst + 64 * c + 32,
                       _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hh), d2, m2);
        }
    }
}

TGT256 void t2_k256_deq_q6_k(float *dst, const void *src, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 210, dst += 256) {
        float d = half_at(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int h = 0; h < 2; h++)
            for (int k = 0; k < 4; k++) {
                __m256i q = q6_group(b, h, k);
                int is = 8 * h + 2 * k;
                float *o = dst + 128 * h + 32 * k;
                st16s_256(o, _mm256_castsi256_si128(q), d * (float)sc[is]);
                st16s_256(o + 16, _mm256_extracti128_si256(q, 1), d * (float)sc[is + 1]);
            }
    }
}

#endif
