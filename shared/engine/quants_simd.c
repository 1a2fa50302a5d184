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
    _mm512_storeu_ps(dst,
                     _mm512_mul_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
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
            __m256i bl = _mm256_set1_epi8((char)(1 << (2 * c))),
                    bh = _mm256_set1_epi8((char)(2 << (2 * c)));
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
                __m512 s0 = _mm512_set1_ps(d * (float)sc[is]),
                       s1 = _mm512_set1_ps(d * (float)sc[is + 1]);
                __m512 v0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
                __m512 v1 =
                    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
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
    _mm256_storeu_ps(
        dst + 8, _mm256_mul_ps(vd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)))));
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
            __m256i bl = _mm256_set1_epi8((char)(1 << (2 * c))),
                    bh = _mm256_set1_epi8((char)(2 << (2 * c)));
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
/* Matrix-vector rows. A legacy 32-element block: integer quants w (32 x int16), scale d, offset
 * m (Q4_1, Q5_1): acc += float(madd(w, x16)) * (d * dx) [+ float(madd(x16, 1)) * (m * dx)].
 * Two accumulators (even / odd blocks) hide the FMA latency. K-quants: see u512_k. */

/* ---- AVX-512 ---- */

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
    __m512i xv = _mm512_loadu_si512((const void *)x);
    __m512 a =
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_madd_epi16(w, xv)), _mm512_set1_ps(d * dx), *acc);
    if (t == T2_Q4_1 || t == T2_Q5_1) {
        __m512i xs = _mm512_madd_epi16(xv, _mm512_set1_epi16(1));
        a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(xs), _mm512_set1_ps(m * dx), a);
    }
    *acc = a;
}

/* K-quants: per super-block, the 16 half-block scales are decoded once into a vector
 * S[h] = (d * sc_h) * dx[h / 2], the offsets (Q2_K, Q4_K, Q5_K) go in one FMA against the
 * prepared half sums xs: ao -= (dmin * mn_h) * xs[h]; then each block k is
 * acc += float(madd(q_k, x16_k)) * (S[2k] in lanes 0-7, S[2k + 1] in lanes 8-15). */

/* Scales sc_h and mins mn_h of super-block b as 16 bytes each (signed for Q3_K, Q6_K), built
 * in registers (16 scalar stores read back as a vector would stall store forwarding); returns 1
 * if there are mins. */
INL256 int k_scales(t2_dtype t, const uint8_t *b, __m128i *sc, __m128i *mn, float *d, float *dmin) {
    const __m128i m4 = _mm_set1_epi8(15);
    switch (t) {
    case T2_Q2_K: {
        __m128i v = _mm_loadu_si128((const __m128i *)b);
        *sc = _mm_and_si128(v, m4);
        *mn = _mm_and_si128(_mm_srli_epi16(v, 4), m4);
        *d = half_at(b + 80);
        *dmin = half_at(b + 82);
        return 1;
    }
    case T2_Q3_K: {
        /* low 4 bits: nibble h / 8 of byte h % 8; high 2 bits: bits 2 (h / 4) of byte 8 + h % 4 */
        uint64_t lo8;
        uint32_t c;
        memcpy(&lo8, b + 96, 8);
        memcpy(&c, b + 104, 4);
        __m128i lo = _mm_set_epi64x((long long)((lo8 >> 4) & 0x0f0f0f0f0f0f0f0full),
                                    (long long)(lo8 & 0x0f0f0f0f0f0f0f0full));
        __m128i hi = _mm_set_epi32((int)((c >> 6) & 0x03030303u), (int)((c >> 4) & 0x03030303u),
                                   (int)((c >> 2) & 0x03030303u), (int)(c & 0x03030303u));
        *sc = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), _mm_set1_epi8(32));
        *d = half_at(b + 108);
        return 0;
    }
    case T2_Q4_K:
    case T2_Q5_K: {
        /* bytes s0..s11 as three u32 a, m, c: scales j < 4 are a & 63, j >= 4 the low nibbles of
         * c with the top 2 bits of a above them; mins likewise from m and the high nibbles */
        uint32_t a, m, c;
        memcpy(&a, b + 4, 4);
        memcpy(&m, b + 8, 4);
        memcpy(&c, b + 12, 4);
        uint32_t s_lo = a & 0x3f3f3f3fu, s_hi = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
        uint32_t m_lo = m & 0x3f3f3f3fu, m_hi = ((c >> 4) & 0x0f0f0f0fu) | ((m >> 2) & 0x30303030u);
        __m128i s8 = _mm_set_epi32(0, 0, (int)s_hi, (int)s_lo);
        __m128i n8 = _mm_set_epi32(0, 0, (int)m_hi, (int)m_lo);
        *sc = _mm_unpacklo_epi8(s8, s8); /* each sub-block's value for its two halves */
        *mn = _mm_unpacklo_epi8(n8, n8);
        *d = half_at(b);
        *dmin = half_at(b + 2);
        return 1;
    }
    default:
        *sc = _mm_loadu_si128((const __m128i *)(b + 192));
        *d = half_at(b + 208);
        return 0;
    }
}

/* The 32 quants of block k of super-block b as bytes; *sgn: signed (else unsigned).
 * hq: Q3_K's hmask or Q5_K's qh (32 bytes). */
INL256 __m256i k_quants(t2_dtype t, const uint8_t *b, int k, __m256i hq, int *sgn) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    __m256i q;
    *sgn = t == T2_Q3_K || t == T2_Q6_K;
    switch (t) {
    case T2_Q2_K:
    case T2_Q3_K: {
        q = _mm256_loadu_si256((const __m256i *)(b + (t == T2_Q2_K ? 16 : 32) + 32 * (k / 4)));
        q = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * (k % 4))), m2);
        if (t == T2_Q3_K) {
            __m256i bit = _mm256_set1_epi8((char)(1 << k));
            __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hq, bit), bit);
            q = _mm256_sub_epi8(q, _mm256_andnot_si256(set, _mm256_set1_epi8(4)));
        }
        return q;
    }
    case T2_Q4_K:
    case T2_Q5_K:
        q = _mm256_loadu_si256((const __m256i *)(b + (t == T2_Q5_K ? 48 : 16) + 32 * (k / 2)));
        q = _mm256_and_si256(k % 2 ? _mm256_srli_epi16(q, 4) : q, m4);
        if (t == T2_Q5_K) {
            __m256i bit = _mm256_set1_epi8((char)(1 << k));
            __m256i hb = _mm256_cmpeq_epi8(_mm256_and_si256(hq, bit), bit);
            q = _mm256_or_si256(q, _mm256_and_si256(hb, _mm256_set1_epi8(16)));
        }
        return q;
    default: return q6_group(b, k / 4, k % 4);
    }
}

INL256 __m256i k_hq(t2_dtype t, const uint8_t *b) {
    if (t == T2_Q3_K) return _mm256_loadu_si256((const __m256i *)b);
    if (t == T2_Q5_K) return _mm256_loadu_si256((const __m256i *)(b + 16));
    return _mm256_setzero_si256();
}

INL512 void k512_blk(__m512 *acc, t2_dtype t, const uint8_t *b, int k, __m256i hq, const int16_t *x,
                     __m512 S) {
    int sgn;
    __m256i q = k_quants(t, b, k, hq, &sgn);
    __m512i w = sgn ? _mm512_cvtepi8_epi16(q) : _mm512_cvtepu8_epi16(q);
    __m512i p = _mm512_madd_epi16(w, _mm512_loadu_si512((const void *)(x + 32 * k)));
    __m512i idx =
        _mm512_add_epi32(_mm512_set1_epi32(2 * k),
                         _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(idx, S), *acc);
}

/* One super-block of type t: even blocks into a0, odd into a1, offsets into ao. */
INL512 void u512_k(__m512 *a0, __m512 *a1, __m512 *ao, t2_dtype t, const uint8_t *b,
                   const int16_t *x, const float *dx, const float *xs) {
    __m128i sc, mn = _mm_setzero_si128();
    float d, dmin = 0.0f;
    int has_o = k_scales(t, b, &sc, &mn, &d, &dmin);
    int sgn = t == T2_Q3_K || t == T2_Q6_K;
    __m512 scf = _mm512_cvtepi32_ps(sgn ? _mm512_cvtepi8_epi32(sc) : _mm512_cvtepu8_epi32(sc));
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    __m512 dxv = _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(dx)));
    __m512 S = _mm512_mul_ps(_mm512_mul_ps(scf, _mm512_set1_ps(d)), dxv);
    if (has_o) {
        __m512 mnf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mn));
        *ao = _mm512_fnmadd_ps(_mm512_mul_ps(mnf, _mm512_set1_ps(dmin)), _mm512_loadu_ps(xs), *ao);
    }
    __m256i hq = k_hq(t, b);
#pragma GCC unroll 4
    for (int k = 0; k < 8; k += 2) {
        k512_blk(a0, t, b, k, hq, x, S);
        k512_blk(a1, t, b, k + 1, hq, x, S);
    }
}

/* Rows of one type: the type is a compile-time constant in each instance (see t2_k512_qrows). */
INL512 void rows512(t2_dtype t, float *y, const uint8_t *W, size_t rb, int cols, const int16_t *x16,
                    const float *dx, int r0, int r1) {
    const float *xs = dx + cols / 32;
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
            __m512 ao = _mm512_setzero_ps();
            for (int u = 0; u < nu; u++)
                u512_k(&a0, &a1, &ao, t, w + (size_t)u * bb, x16 + 256 * u, dx + 8 * u,
                       xs + 16 * u);
            a0 = _mm512_add_ps(a0, ao);
        }
        y[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    }
}

TGT512 void t2_k512_qrows(t2_dtype t, float *y, const void *W, size_t rb, int cols, const void *xq,
                          int r0, int r1) {
    const int16_t *x16 = (const int16_t *)xq;
    const float *dx = (const float *)(x16 + cols);
    const uint8_t *w = (const uint8_t *)W;
    switch (t) {
#define CASE512(T)                                                                                 \
    case T: rows512(T, y, w, rb, cols, x16, dx, r0, r1); break;
        CASE512(T2_Q4_0)
        CASE512(T2_Q4_1) CASE512(T2_Q5_0) CASE512(T2_Q5_1) CASE512(T2_Q2_K) CASE512(T2_Q3_K)
            CASE512(T2_Q4_K) CASE512(T2_Q5_K) CASE512(T2_Q6_K)
#undef CASE512
                default : break;
    }
}

/* ---- AVX2: a block is two halves of 16 int16 ---- */

INL256 void blk256(__m256 *acc, __m256i q8, int sgn, const int16_t *x, float dx, float s0, float s1,
                   int has_o, float o0, float o1) {
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
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(x0, one)), _mm256_set1_ps(o0 * dx),
                            a);
        a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(x1, one)), _mm256_set1_ps(o1 * dx),
                            a);
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

INL256 void k256_blk(__m256 *acc, t2_dtype t, const uint8_t *b, int k, __m256i hq, const int16_t *x,
                     __m256 Slo, __m256 Shi) {
    int sgn;
    __m256i q = k_quants(t, b, k, hq, &sgn);
    __m128i q0 = _mm256_castsi256_si128(q), q1 = _mm256_extracti128_si256(q, 1);
    __m256i w0 = sgn ? _mm256_cvtepi8_epi16(q0) : _mm256_cvtepu8_epi16(q0);
    __m256i w1 = sgn ? _mm256_cvtepi8_epi16(q1) : _mm256_cvtepu8_epi16(q1);
    __m256i p0 = _mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)(x + 32 * k)));
    __m256i p1 = _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(x + 32 * k + 16)));
    __m256 S = k < 4 ? Slo : Shi;
    __m256 s0 = _mm256_permutevar8x32_ps(S, _mm256_set1_epi32((2 * k) % 8));
    __m256 s1 = _mm256_permutevar8x32_ps(S, _mm256_set1_epi32((2 * k + 1) % 8));
    __m256 a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), s0, *acc);
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), s1, a);
}

INL256 void u256_k(__m256 *a0, __m256 *a1, __m256 *ao, t2_dtype t, const uint8_t *b,
                   const int16_t *x, const float *dx, const float *xs) {
    __m128i sc, mn = _mm_setzero_si128();
    float d, dmin = 0.0f;
    int has_o = k_scales(t, b, &sc, &mn, &d, &dmin);
    int sgn = t == T2_Q3_K || t == T2_Q6_K;
    __m128i sc_hi = _mm_srli_si128(sc, 8);
    __m256 s_lo = _mm256_cvtepi32_ps(sgn ? _mm256_cvtepi8_epi32(sc) : _mm256_cvtepu8_epi32(sc));
    __m256 s_hi =
        _mm256_cvtepi32_ps(sgn ? _mm256_cvtepi8_epi32(sc_hi) : _mm256_cvtepu8_epi32(sc_hi));
    __m256 dxv = _mm256_loadu_ps(dx);
    __m256 dlo = _mm256_permutevar8x32_ps(dxv, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
    __m256 dhi = _mm256_permutevar8x32_ps(dxv, _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7));
    __m256 vd = _mm256_set1_ps(d);
    __m256 Slo = _mm256_mul_ps(_mm256_mul_ps(s_lo, vd), dlo);
    __m256 Shi = _mm256_mul_ps(_mm256_mul_ps(s_hi, vd), dhi);
    if (has_o) {
        __m256 vm = _mm256_set1_ps(dmin);
        __m256 m_lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mn));
        __m256 m_hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(mn, 8)));
        __m256 o = _mm256_fnmadd_ps(_mm256_mul_ps(m_lo, vm), _mm256_loadu_ps(xs), *ao);
        *ao = _mm256_fnmadd_ps(_mm256_mul_ps(m_hi, vm), _mm256_loadu_ps(xs + 8), o);
    }
    __m256i hq = k_hq(t, b);
#pragma GCC unroll 4
    for (int k = 0; k < 8; k += 2) {
        k256_blk(a0, t, b, k, hq, x, Slo, Shi);
        k256_blk(a1, t, b, k + 1, hq, x, Slo, Shi);
    }
}

INL256 float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INL256 void rows256(t2_dtype t, float *y, const uint8_t *W, size_t rb, int cols, const int16_t *x16,
                    const float *dx, int r0, int r1) {
    const float *xs = dx + cols / 32;
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
            __m256 ao = _mm256_setzero_ps();
            for (int u = 0; u < nu; u++)
                u256_k(&a0, &a1, &ao, t, w + (size_t)u * bb, x16 + 256 * u, dx + 8 * u,
                       xs + 16 * u);
            a0 = _mm256_add_ps(a0, ao);
        }
        y[r] = hsum256(_mm256_add_ps(a0, a1));
    }
}

TGT256 void t2_k256_qrows(t2_dtype t, float *y, const void *W, size_t rb, int cols, const void *xq,
                          int r0, int r1) {
    const int16_t *x16 = (const int16_t *)xq;
    const float *dx = (const float *)(x16 + cols);
    const uint8_t *w = (const uint8_t *)W;
    switch (t) {
#define CASE256(T)                                                                                 \
    case T: rows256(T, y, w, rb, cols, x16, dx, r0, r1); break;
        CASE256(T2_Q4_0)
        CASE256(T2_Q4_1) CASE256(T2_Q5_0) CASE256(T2_Q5_1) CASE256(T2_Q2_K) CASE256(T2_Q3_K)
            CASE256(T2_Q4_K) CASE256(T2_Q5_K) CASE256(T2_Q6_K)
#undef CASE256
                default : break;
    }
}

#endif
