/* quants_simd.c - AVX-512 and AVX2 dequantizers of Q4_0, Q4_K, Q5_K and Q6_K, and the
 * matrix-vector rows of every quantized type but Q8_0 (integer dot products on x prepared as for
 * Q8_0; arithmetic in quants_dot.c's header).
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
#include "engine/quants.h"
#include "engine/quants_kern.h"

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

/* ------------------------------------------------------------------------------------------ */
/* Matrix-vector rows. A 32-element block: integer quants w (32 x int16), scale s_h and offset o_h
 * per 16-element half; acc[parity] += float(madd(w, x16)) * (s * dx) [+ float(madd(x16, 1)) *
 * (o * dx)]. Two accumulators (even / odd blocks) hide the FMA latency. */

static int q3_scale(const uint8_t *s, int i) {
    int lo = (s[i % 8] >> (4 * (i / 8))) & 15;
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | hi << 4) - 32;
}

/* ---- AVX-512 ---- */

INL512 void blk512(__m512 *acc, __m512i w, const int16_t *x, float dx, float s0, float s1,
                   int has_o, float o0, float o1) {
    __m512i xv = _mm512_loadu_si512((const void *)x);
    __m512 sv = _mm512_insertf32x8(_mm512_set1_ps(s0 * dx), _mm256_set1_ps(s1 * dx), 1);
    __m512 a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(w, xv)), sv, *acc);
    if (has_o) {
        __m512 ov = _mm512_insertf32x8(_mm512_set1_ps(o0 * dx), _mm256_set1_ps(o1 * dx), 1);
        __m512i xs = _mm512_madd_epi16(xv, _mm512_set1_epi16(1));
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(xs), ov, a);
    }
    *acc = a;
}

/* Legacy 32-element blocks: bytes of the 32 quants (element order) from nibbles and qh bits. */
INL512 __m256i nib32(const uint8_t *qs) {
    const __m128i m4 = _mm_set1_epi8(15);
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}
INL512 __m256i bit5_512(const uint8_t *p) {
    uint32_t qh;
    memcpy(&qh, p, 4);
    return _mm256_maskz_mov_epi8((__mmask32)qh, _mm256_set1_epi8(16));
}

INL512 void u512_legacy(__m512 *acc, t2_dtype t, const uint8_t *b, const int16_t *x, float dx) {
    float d = half_at(b), m = 0.0f;
    __m256i q;
    int off = 0;
    switch (t) {
    case T2_Q4_0: q = nib32(b + 2), off = 8; break;
    case T2_Q4_1: q = nib32(b + 4), m = half_at(b + 2); break;
    case T2_Q5_0: q = _mm256_or_si256(nib32(b + 6), bit5_512(b + 2)), off = 16; break;
    default: q = _mm256_or_si256(nib32(b + 8), bit5_512(b + 4)), m = half_at(b + 2); break;
    }
    __m512i w = _mm512_sub_epi16(_mm512_cvtepu8_epi16(q), _mm512_set1_epi16((short)off));
    blk512(acc, w, x, dx, d, d, t == T2_Q4_1 || t == T2_Q5_1, m, m);
}

/* K-quant blocks k of super-block b into *acc (one function per type, called for even blocks
 * with one accumulator and odd blocks with the other: two independent FMA chains). */
INL512 void k512_q2_k(__m512 *acc, const uint8_t *b, int k, const int16_t *x, const float *dx,
                      float d, float dmin) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * (k / 4)));
    q = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * (k % 4))), _mm256_set1_epi8(3));
    uint8_t s0 = b[2 * k], s1 = b[2 * k + 1];
    blk512(acc, _mm512_cvtepu8_epi16(q), x + 32 * k, dx[k], d * (float)(s0 & 15),
           d * (float)(s1 & 15), 1, -(dmin * (float)(s0 >> 4)), -(dmin * (float)(s1 >> 4)));
}

INL512 void k512_q3_k(__m512 *acc, const uint8_t *b, int k, const int16_t *x, const float *dx,
                      float d, __m256i hm) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * (k / 4)));
    q = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * (k % 4))), _mm256_set1_epi8(3));
    __m256i bit = _mm256_set1_epi8((char)(1 << k));
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
    q = _mm256_sub_epi8(q, _mm256_andnot_si256(set, _mm256_set1_epi8(4)));
    blk512(acc, _mm512_cvtepi8_epi16(q), x + 32 * k, dx[k], d * (float)q3_scale(b + 96, 2 * k),
           d * (float)q3_scale(b + 96, 2 * k + 1), 0, 0, 0);
}

INL512 void k512_q45_k(__m512 *acc, int five, const uint8_t *b, int k, const int16_t *x,
                       const float *dx, float d, float dmin, __m256i qh) {
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i q = _mm256_loadu_si256((const __m256i *)(b + (five ? 48 : 16) + 32 * (k / 2)));
    q = _mm256_and_si256(k % 2 ? _mm256_srli_epi16(q, 4) : q, m4);
    if (five) {
        __m256i bit = _mm256_set1_epi8((char)(1 << k));
        __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
        q = _mm256_or_si256(q, _mm256_and_si256(hb, _mm256_set1_epi8(16)));
    }
    int sc, mn;
    k4_scale_min(b + 4, k, &sc, &mn);
    float sv = d * (float)sc, o = -(dmin * (float)mn);
    blk512(acc, _mm512_cvtepu8_epi16(q), x + 32 * k, dx[k], sv, sv, 1, o, o);
}

INL512 void k512_q6_k(__m512 *acc, const uint8_t *b, int k, const int16_t *x, const float *dx,
                      float d) {
    const int8_t *sc = (const int8_t *)(b + 192);
    blk512(acc, _mm512_cvtepi8_epi16(q6_group(b, k / 4, k % 4)), x + 32 * k, dx[k],
           d * (float)sc[2 * k], d * (float)sc[2 * k + 1], 0, 0, 0);
}

/* One super-block of type t into a0 (even blocks) and a1 (odd blocks). */
INL512 void u512_k(__m512 *a0, __m512 *a1, t2_dtype t, const uint8_t *b, const int16_t *x,
                   const float *dx) {
    switch (t) {
    case T2_Q2_K: {
        float d = half_at(b + 80), dmin = half_at(b + 82);
        for (int k = 0; k < 8; k += 2) {
            k512_q2_k(a0, b, k, x, dx, d, dmin);
            k512_q2_k(a1, b, k + 1, x, dx, d, dmin);
        }
        break;
    }
    case T2_Q3_K: {
        float d = half_at(b + 108);
        __m256i hm = _mm256_loadu_si256((const __m256i *)b);
        for (int k = 0; k < 8; k += 2) {
            k512_q3_k(a0, b, k, x, dx, d, hm);
            k512_q3_k(a1, b, k + 1, x, dx, d, hm);
        }
        break;
    }
    case T2_Q4_K:
    case T2_Q5_K: {
        int five = t == T2_Q5_K;
        float d = half_at(b), dmin = half_at(b + 2);
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
        for (int k = 0; k < 8; k += 2) {
            k512_q45_k(a0, five, b, k, x, dx, d, dmin, qh);
            k512_q45_k(a1, five, b, k + 1, x, dx, d, dmin, qh);
        }
        break;
    }
    default: {
        float d = half_at(b + 208);
        for (int k = 0; k < 8; k += 2) {
            k512_q6_k(a0, b, k, x, dx, d);
            k512_q6_k(a1, b, k + 1, x, dx, d);
        }
        break;
    }
    }
}

/* Rows of one type: the type is a compile-time constant in each instance (see t2_k512_qrows). */
INL512 void rows512(t2_dtype t, float *y, const uint8_t *W, size_t rb, int cols,
                    const int16_t *x16, const float *dx, int r0, int r1) {
    int qk = t2_quant_block(t), nu = cols / qk;
    size_t bb = t2_quant_block_bytes(t);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        if (qk == 32) {
            int u = 0;
            for (; u + 2 <= nu; u += 2) {
                u512_legacy(&a0, t, w + (size_t)u * bb, x16 + 32 * u, dx[u]);
                u512_legacy(&a1, t, w + (size_t)(u + 1) * bb, x16 + 32 * (u + 1), dx[u + 1]);
            }
            if (u < nu) u512_legacy(&a0, t, w + (size_t)u * bb, x16 + 32 * u, dx[u]);
        } else {
            for (int u = 0; u < nu; u++)
                u512_k(&a0, &a1, t, w + (size_t)u * bb, x16 + 256 * u, dx + 8 * u);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

TGT512 void t2_k512_qrows(t2_dtype t, float *y, const void *W, size_t rb, int cols,
                          const void *xq, int r0, int r1) {
    const int16_t *x16 = (const int16_t *)xq;
    const float *dx = (const float *)(x16 + cols);
    const uint8_t *w = (const uint8_t *)W;
    switch (t) {
#define CASE512(T)                                                                             \
    case T: rows512(T, y, w, rb, cols, x16, dx, r0, r1); break;
        CASE512(T2_Q4_0) CASE512(T2_Q4_1) CASE512(T2_Q5_0) CASE512(T2_Q5_1) CASE512(T2_Q2_K)
        CASE512(T2_Q3_K) CASE512(T2_Q4_K) CASE512(T2_Q5_K) CASE512(T2_Q6_K)
#undef CASE512
    default: break;
    }
}

/* ---- AVX2: a block is two halves of 16 int16 ---- */

INL256 void blk256(__m256 *acc, __m256i q8, int sgn, const int16_t *x, float dx, float s0,
                   float s1, int has_o, float o0, float o1) {
    __m128i lo = _mm256_castsi256_si128(q8), hi = _mm256_extracti128_si256(q8, 1);
    __m256i w0 = sgn ? _mm256_cvtepi8_epi16(lo) : _mm256_cvtepu8_epi16(lo);
    __m256i w1 = sgn ? _mm256_cvtepi8_epi16(hi) : _mm256_cvtepu8_epi16(hi);
    __m256i x0 = _mm256_loadu_si256((const __m256i *)x);
    __m256i x1 = _mm256_loadu_si256((const __m256i *)(x + 16));
    __m256 a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(w0, x0)),
                               _mm256_set1_ps(s0 * dx), *acc);
    a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(w1, x1)), _mm256_set1_ps(s1 * dx), a);
    if (has_o) {
        const __m256i one = _mm256_set1_epi16(1);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(x0, one)),
                            _mm256_set1_ps(o0 * dx), a);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(x1, one)),
                            _mm256_set1_ps(o1 * dx), a);
    }
    *acc = a;
}

INL256 __m256i nib32_256(const uint8_t *qs) {
    const __m128i m4 = _mm_set1_epi8(15);
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m4), _mm_and_si128(q, m4));
}
/* byte i = 16 if bit i of the u32 at p is set, else 0 */
INL256 __m256i bit5_256(const uint8_t *p) {
    uint32_t qh;
    memcpy(&qh, p, 4);
    const __m256i sh = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                        2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), sh);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bits), bits);
    return _mm256_and_si256(v, _mm256_set1_epi8(16));
}

INL256 void u256_legacy(__m256 *acc, t2_dtype t, const uint8_t *b, const int16_t *x, float dx) {
    float d = half_at(b), m = 0.0f;
    __m256i q;
    int off = 0;
    switch (t) {
    case T2_Q4_0: q = nib32_256(b + 2), off = 8; break;
    case T2_Q4_1: q = nib32_256(b + 4), m = half_at(b + 2); break;
    case T2_Q5_0: q = _mm256_or_si256(nib32_256(b + 6), bit5_256(b + 2)), off = 16; break;
    default: q = _mm256_or_si256(nib32_256(b + 8), bit5_256(b + 4)), m = half_at(b + 2); break;
    }
    q = _mm256_sub_epi8(q, _mm256_set1_epi8((char)off)); /* q - off in [-16, 31]: signed bytes */
    blk256(acc, q, 1, x, dx, d, d, t == T2_Q4_1 || t == T2_Q5_1, m, m);
}

INL256 void k256_q2_k(__m256 *acc, const uint8_t *b, int k, const int16_t *x, const float *dx,
                      float d, float dmin) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * (k / 4)));
    q = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * (k % 4))), _mm256_set1_epi8(3));
    uint8_t s0 = b[2 * k], s1 = b[2 * k + 1];
    blk256(acc, q, 0, x + 32 * k, dx[k], d * (float)(s0 & 15), d * (float)(s1 & 15), 1,
           -(dmin * (float)(s0 >> 4)), -(dmin * (float)(s1 >> 4)));
}

INL256 void k256_q3_k(__m256 *acc, const uint8_t *b, int k, const int16_t *x, const float *dx,
                      float d, __m256i hm) {
    __m256i q = _mm256_loadu_si256((const __m256i *)(b + 32 + 32 * (k / 4)));
    q = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * (k % 4))), _mm256_set1_epi8(3));
    __m256i bit = _mm256_set1_epi8((char)(1 << k));
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
    q = _mm256_sub_epi8(q, _mm256_andnot_si256(set, _mm256_set1_epi8(4)));
    blk256(acc, q, 1, x + 32 * k, dx[k], d * (float)q3_scale(b + 96, 2 * k),
           d * (float)q3_scale(b + 96, 2 * k + 1), 0, 0, 0);
}

INL256 void k256_q45_k(__m256 *acc, int five, const uint8_t *b, int k, const int16_t *x,
                       const float *dx, float d, float dmin, __m256i qh) {
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i q = _mm256_loadu_si256((const __m256i *)(b + (five ? 48 : 16) + 32 * (k / 2)));
    q = _mm256_and_si256(k % 2 ? _mm256_srli_epi16(q, 4) : q, m4);
    if (five) {
        __m256i bit = _mm256_set1_epi8((char)(1 << k));
        __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
        q = _mm256_or_si256(q, _mm256_and_si256(hb, _mm256_set1_epi8(16)));
    }
    int sc, mn;
    k4_scale_min(b + 4, k, &sc, &mn);
    float sv = d * (float)sc, o = -(dmin * (float)mn);
    blk256(acc, q, 0, x + 32 * k, dx[k], sv, sv, 1, o, o);
}

INL256 void k256_q6_k(__m256 *acc, const uint8_t *b, int k, const int16_t *x, const float *dx,
                      float d) {
    const int8_t *sc = (const int8_t *)(b + 192);
    blk256(acc, q6_group(b, k / 4, k % 4), 1, x + 32 * k, dx[k], d * (float)sc[2 * k],
           d * (float)sc[2 * k + 1], 0, 0, 0);
}

INL256 void u256_k(__m256 *a0, __m256 *a1, t2_dtype t, const uint8_t *b, const int16_t *x,
                   const float *dx) {
    switch (t) {
    case T2_Q2_K: {
        float d = half_at(b + 80), dmin = half_at(b + 82);
        for (int k = 0; k < 8; k += 2) {
            k256_q2_k(a0, b, k, x, dx, d, dmin);
            k256_q2_k(a1, b, k + 1, x, dx, d, dmin);
        }
        break;
    }
    case T2_Q3_K: {
        float d = half_at(b + 108);
        __m256i hm = _mm256_loadu_si256((const __m256i *)b);
        for (int k = 0; k < 8; k += 2) {
            k256_q3_k(a0, b, k, x, dx, d, hm);
            k256_q3_k(a1, b, k + 1, x, dx, d, hm);
        }
        break;
    }
    case T2_Q4_K:
    case T2_Q5_K: {
        int five = t == T2_Q5_K;
        float d = half_at(b), dmin = half_at(b + 2);
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
        for (int k = 0; k < 8; k += 2) {
            k256_q45_k(a0, five, b, k, x, dx, d, dmin, qh);
            k256_q45_k(a1, five, b, k + 1, x, dx, d, dmin, qh);
        }
        break;
    }
    default: {
        float d = half_at(b + 208);
        for (int k = 0; k < 8; k += 2) {
            k256_q6_k(a0, b, k, x, dx, d);
            k256_q6_k(a1, b, k + 1, x, dx, d);
        }
        break;
    }
    }
}

INL256 float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INL256 void rows256(t2_dtype t, float *y, const uint8_t *W, size_t rb, int cols,
                    const int16_t *x16, const float *dx, int r0, int r1) {
    int qk = t2_quant_block(t), nu = cols / qk;
    size_t bb = t2_quant_block_bytes(t);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        if (qk == 32) {
            int u = 0;
            for (; u + 2 <= nu; u += 2) {
                u256_legacy(&a0, t, w + (size_t)u * bb, x16 + 32 * u, dx[u]);
                u256_legacy(&a1, t, w + (size_t)(u + 1) * bb, x16 + 32 * (u + 1), dx[u + 1]);
            }
            if (u < nu) u256_legacy(&a0, t, w + (size_t)u * bb, x16 + 32 * u, dx[u]);
        } else {
            for (int u = 0; u < nu; u++)
                u256_k(&a0, &a1, t, w + (size_t)u * bb, x16 + 256 * u, dx + 8 * u);
        }
        y[r] = hsum256(_mm256_add_ps(a0, a1));
    }
}

TGT256 void t2_k256_qrows(t2_dtype t, float *y, const void *W, size_t rb, int cols,
                          const void *xq, int r0, int r1) {
    const int16_t *x16 = (const int16_t *)xq;
    const float *dx = (const float *)(x16 + cols);
    const uint8_t *w = (const uint8_t *)W;
    switch (t) {
#define CASE256(T)                                                                             \
    case T: rows256(T, y, w, rb, cols, x16, dx, r0, r1); break;
        CASE256(T2_Q4_0) CASE256(T2_Q4_1) CASE256(T2_Q5_0) CASE256(T2_Q5_1) CASE256(T2_Q2_K)
        CASE256(T2_Q3_K) CASE256(T2_Q4_K) CASE256(T2_Q5_K) CASE256(T2_Q6_K)
#undef CASE256
    default: break;
    }
}

#endif
