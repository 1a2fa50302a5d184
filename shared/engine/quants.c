/* quants.c - block layouts, dequantizers and quantizers of llama.cpp's quantized formats.
 *
 * Dequantizers follow llama.cpp's reference formulas operation for operation (float products
 * and differences in the same order, no fused multiply-add) so that values are bit-identical.
 * The quantizers are T2's own: round-to-nearest with a small search over the block scale.
 */
#include "engine/quants.h"

#include <math.h>
#include <string.h>

int t2_quant_is(t2_dtype t) { return t2_quant_block(t) > 0; }

int t2_quant_block(t2_dtype t) {
    switch (t) {
    case T2_Q4_0:
    case T2_Q4_1:
    case T2_Q5_0:
    case T2_Q5_1:
    case T2_Q8_0: return T2_QK;
    case T2_Q2_K:
    case T2_Q3_K:
    case T2_Q4_K:
    case T2_Q5_K:
    case T2_Q6_K: return T2_QK_K;
    default: return 0;
    }
}

size_t t2_quant_block_bytes(t2_dtype t) {
    switch (t) {
    case T2_Q4_0: return 18;
    case T2_Q4_1: return 20;
    case T2_Q5_0: return 22;
    case T2_Q5_1: return 24;
    case T2_Q8_0: return 34;
    case T2_Q2_K: return 84;
    case T2_Q3_K: return 110;
    case T2_Q4_K: return 144;
    case T2_Q5_K: return 176;
    case T2_Q6_K: return 210;
    default: return 0;
    }
}

static float ld_half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return t2_f16_to_f32(h);
}
static void st_half(uint8_t *p, float f) {
    uint16_t h = t2_f32_to_f16(f);
    memcpy(p, &h, 2);
}

/* ---- legacy 32-element blocks: element j < 16 is the low nibble of qs[j], j >= 16 the high
 * nibble of qs[j - 16]; for Q5_*, bit j of the little-endian u32 qh is element j's 5th bit. */

static void deq_q4_0(float *y, const uint8_t *b) {
    float d = ld_half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 15) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

static void deq_q4_1(float *y, const uint8_t *b) {
    float d = ld_half(b), m = ld_half(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b[4 + j] & 15) * d + m;
        y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
    }
}

static void deq_q5(float *y, const uint8_t *b, int with_min) {
    float d = ld_half(b), m = with_min ? ld_half(b + 2) : 0.0f;
    const uint8_t *p = b + (with_min ? 4 : 2);
    uint32_t qh =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    const uint8_t *qs = p + 4;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 15) | (int)((qh >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        if (with_min) {
            y[j] = (float)lo * d + m;
            y[j + 16] = (float)hi * d + m;
        } else {
            y[j] = (float)(lo - 16) * d;
            y[j + 16] = (float)(hi - 16) * d;
        }
    }
}

static void deq_q8_0(float *y, const uint8_t *b) {
    float d = ld_half(b);
    for (int j = 0; j < 32; j++)
        y[j] = (float)(int8_t)b[2 + j] * d;
}

/* ---- K-quants ---- */

/* Q2_K: scales[16] | qs[64] | d | dmin. Element 128h + 32k + 16s + l (h < 2, k < 4, s < 2,
 * l < 16) is bits 2k..2k+1 of qs[32h + 16s + l], in sub-block 8h + 2k + s. */
static void deq_q2_k(float *y, const uint8_t *b) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = ld_half(b + 80), dmin = ld_half(b + 82);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int s = 0; s < 2; s++) {
                int is = 8 * h + 2 * k + s;
                float dl = d * (float)(sc[is] & 15), ml = dmin * (float)(sc[is] >> 4);
                const uint8_t *q = qs + 32 * h + 16 * s;
                float *o = y + 128 * h + 32 * k + 16 * s;
                for (int l = 0; l < 16; l++)
                    o[l] = dl * (float)((q[l] >> (2 * k)) & 3) - ml;
            }
}

/* Q3_K / Q4_K / Q5_K 12-byte scale fields. Q3_K: 16 six-bit values, the low 4 bits of value i
 * are nibble i / 8 of byte i % 8, the high 2 bits are bits 2 (i / 4) of byte 8 + i % 4.
 * Q4_K / Q5_K: 8 (scale, min) pairs; j < 4: low 6 bits of bytes j and j + 4; j >= 4: low
 * nibble / high nibble of byte j + 4 with the top 2 bits of bytes j - 4 / j. */
static int q3_scale(const uint8_t *s, int i) {
    int lo = (s[i % 8] >> (4 * (i / 8))) & 15;
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | hi << 4) - 32;
}

static void k4_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q3_K: hmask[32] | qs[64] | scales[12] | d. Element 128h + 32k + 16s + l: low bits as Q2_K,
 * high bit is bit 4h + k of hmask[16s + l]; clear high bit means q - 4. */
static void deq_q3_k(float *y, const uint8_t *b) {
    const uint8_t *hm = b, *qs = b + 32, *scales = b + 96;
    float d = ld_half(b + 108);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int s = 0; s < 2; s++) {
                float dl = d * (float)q3_scale(scales, 8 * h + 2 * k + s);
                const uint8_t *q = qs + 32 * h + 16 * s, *hb = hm + 16 * s;
                int bit = 1 << (4 * h + k);
                float *o = y + 128 * h + 32 * k + 16 * s;
                for (int l = 0; l < 16; l++) {
                    int v = ((q[l] >> (2 * k)) & 3) - ((hb[l] & bit) ? 0 : 4);
                    o[l] = dl * (float)v;
                }
            }
}

/* Q4_K: d | dmin | scales[12] | qs[128]. Element 64c + l (l < 32) is the low nibble of
 * qs[32c + l] (sub-block 2c), element 64c + 32 + l its high nibble (sub-block 2c + 1). */
static void deq_q4_k(float *y, const uint8_t *b) {
    float d = ld_half(b), dmin = ld_half(b + 2);
    const uint8_t *qs = b + 16;
    for (int c = 0; c < 4; c++) {
        int sc, mn;
        k4_scale_min(b + 4, 2 * c, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        k4_scale_min(b + 4, 2 * c + 1, &sc, &mn);
        float d2 = d * (float)sc, m2 = dmin * (float)mn;
        for (int l = 0; l < 32; l++)
            y[64 * c + l] = d1 * (float)(qs[32 * c + l] & 15) - m1;
        for (int l = 0; l < 32; l++)
            y[64 * c + 32 + l] = d2 * (float)(qs[32 * c + l] >> 4) - m2;
    }
}

/* Q5_K: d | dmin | scales[12] | qh[32] | qs[128]. As Q4_K; the 5th bit of element 64c + l is
 * bit 2c of qh[l], of element 64c + 32 + l bit 2c + 1. */
static void deq_q5_k(float *y, const uint8_t *b) {
    float d = ld_half(b), dmin = ld_half(b + 2);
    const uint8_t *qh = b + 16, *qs = b + 48;
    for (int c = 0; c < 4; c++) {
        int sc, mn;
        k4_scale_min(b + 4, 2 * c, &sc, &mn);
        float d1 = d * (float)sc, m1 = dmin * (float)mn;
        k4_scale_min(b + 4, 2 * c + 1, &sc, &mn);
        float d2 = d * (float)sc, m2 = dmin * (float)mn;
        for (int l = 0; l < 32; l++) {
            int lo = (qs[32 * c + l] & 15) + (((qh[l] >> (2 * c)) & 1) << 4);
            int hi = (qs[32 * c + l] >> 4) + (((qh[l] >> (2 * c + 1)) & 1) << 4);
            y[64 * c + l] = d1 * (float)lo - m1;
            y[64 * c + 32 + l] = d2 * (float)hi - m2;
        }
    }
}

/* Q6_K: ql[128] | qh[64] | scales[16] | d. In half h, element 128h + 32k + l (k < 4, l < 32)
 * takes nibble k / 2 of ql[64h + 32 (k % 2) + l] and bits 2k..2k+1 of qh[32h + l]; its scale
 * is scales[8h + 2k + l / 16]. */
static void deq_q6_k(float *y, const uint8_t *b) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = ld_half(b + 208);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15;
                int q = (lo | ((qh[32 * h + l] >> (2 * k)) & 3) << 4) - 32;
                y[128 * h + 32 * k + l] = d * (float)sc[8 * h + 2 * k + l / 16] * (float)q;
            }
}

void t2_dequant(float *dst, const void *src, t2_dtype t, int64_t nb) {
    const uint8_t *s = src;
    size_t bb = t2_quant_block_bytes(t);
    int qk = t2_quant_block(t);
    for (int64_t i = 0; i < nb; i++, s += bb, dst += qk) {
        switch (t) {
        case T2_Q4_0: deq_q4_0(dst, s); break;
        case T2_Q4_1: deq_q4_1(dst, s); break;
        case T2_Q5_0: deq_q5(dst, s, 0); break;
        case T2_Q5_1: deq_q5(dst, s, 1); break;
        case T2_Q8_0: deq_q8_0(dst, s); break;
        case T2_Q2_K: deq_q2_k(dst, s); break;
        case T2_Q3_K: deq_q3_k(dst, s); break;
        case T2_Q4_K: deq_q4_k(dst, s); break;
        case T2_Q5_K: deq_q5_k(dst, s); break;
        case T2_Q6_K: deq_q6_k(dst, s); break;
        default: return;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Quantizers.                                                                                  */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* lrintf (round half to even) without a libm call: exact for |v| < 2^22; larger values (only
 * ever clamped afterwards) are limited to +-4e6 first, nan gives 0. */
static inline int round_i(float v) {
    if (!(v == v)) return 0;
    v = v > 4e6f ? 4e6f : v < -4e6f ? -4e6f : v;
    float t = v + 12582912.0f; /* 1.5 * 2^23: the sum's rounding is the rounding (no fast-math) */
    return (int)(t - 12582912.0f);
}

/* Symmetric: x ~= s * q, q in [qmin, qmax]. Tries s = v / k for the value v of largest |x| and
 * k stepped from qmin (v's sign on the long side) towards smaller magnitudes and from qmax, and
 * returns the s of least squared error. */
static float best_sym_scale(const float *x, int n, int qmin, int qmax) {
    float v = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(v)) v = x[i];
    if (v == 0.0f) return 0.0f;
    float best_s = v / (float)qmin, best_e = INFINITY;
    for (int side = 0; side < 2; side++)
        for (int t = 0; t < 12; t++) {
            float k = side == 0 ? (float)qmin + 0.125f * (float)t : (float)qmax - 0.125f * (float)t;
            float s = v / k, inv = 1.0f / s, e = 0.0f;
            for (int i = 0; i < n; i++) {
                int q = clampi(round_i(x[i] * inv), qmin, qmax);
                float r = x[i] - s * (float)q;
                e += r * r;
            }
            if (e < best_e) {
                best_e = e;
                best_s = s;
            }
        }
    return best_s;
}

static void quant_q4_0(uint8_t *b, const float *x) {
    float s = best_sym_scale(x, 32, -8, 7);
    st_half(b, s);
    float d = ld_half(b), inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 16; j++) {
        int lo = clampi(round_i(x[j] * inv), -8, 7) + 8;
        int hi = clampi(round_i(x[j + 16] * inv), -8, 7) + 8;
        b[2 + j] = (uint8_t)(lo | hi << 4);
    }
}

static void quant_q8_0(uint8_t *b, const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float scale = amax / 127.0f, inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    st_half(b, scale);
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)lrintf(x[j] * inv);
}

/* Asymmetric with a non-positive offset: x ~= a * q - m, q in [0, nmax], a >= 0, m >= 0.
 * Tries a few ranges, refits (a, m) by least squares for each rounding, keeps the best. */
static void best_affine(const float *x, int n, int nmax, float *a_out, float *m_out) {
    float lo = 0.0f, hi = x[0];
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    *a_out = 0.0f;
    *m_out = -lo;
    if (hi <= lo) return;
    float best_e = INFINITY;
    for (int t = -4; t <= 10; t++) {
        float is = ((float)nmax + 0.1f * (float)t) / (hi - lo);
        double sq = 0, sq2 = 0, sx = 0, sqx = 0;
        for (int i = 0; i < n; i++) {
            int q = clampi(round_i(is * (x[i] - lo)), 0, nmax);
            sq += q;
            sq2 += (double)q * q;
            sx += x[i];
            sqx += (double)q * x[i];
        }
        double det = n * sq2 - sq * sq;
        if (det <= 0) continue;
        double a = (n * sqx - sq * sx) / det, b = (sx - a * sq) / n; /* x ~= a q + b */
        if (b > 0) {                                                 /* offset must be <= 0 */
            b = 0;
            a = sq2 > 0 ? sqx / sq2 : 0;
        }
        if (a < 0) continue;
        float e = 0.0f;
        for (int i = 0; i < n; i++) {
            int q = clampi(round_i(((float)(x[i] - b)) / (float)a), 0, nmax);
            float r = x[i] - ((float)a * (float)q + (float)b);
            e += r * r;
        }
        if (e < best_e) {
            best_e = e;
            *a_out = (float)a;
            *m_out = (float)-b;
        }
    }
}

/* Q4_K: sub-block (scale, min) pairs by best_affine, quantized to 6 bits against the
 * super-block maxima, then every element rounded with its final scale and min. */
static void quant_q4_k(uint8_t *b, const float *x) {
    float a[8], m[8], amax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < 8; j++) {
        best_affine(x + 32 * j, 32, 15, &a[j], &m[j]);
        amax = fmaxf(amax, a[j]);
        mmax = fmaxf(mmax, m[j]);
    }
    st_half(b, amax / 63.0f);
    st_half(b + 2, mmax / 63.0f);
    float d = ld_half(b), dmin = ld_half(b + 2);
    int sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = d > 0.0f ? clampi(round_i(a[j] / d), 0, 63) : 0;
        mn[j] = dmin > 0.0f ? clampi(round_i(m[j] / dmin), 0, 63) : 0;
    }
    uint8_t *s = b + 4;
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
    uint8_t *qs = b + 16;
    memset(qs, 0, 128);
    for (int j = 0; j < 8; j++) {
        float dl = d * (float)sc[j], ml = dmin * (float)mn[j];
        for (int l = 0; l < 32; l++) {
            int q = dl > 0.0f ? clampi(round_i((x[32 * j + l] + ml) / dl), 0, 15) : 0;
            qs[32 * (j / 2) + l] |= (uint8_t)(q << (4 * (j % 2)));
        }
    }
}

/* Q6_K: a symmetric scale per 16 elements, quantized to int8 against the largest. */
static void quant_q6_k(uint8_t *b, const float *x) {
    float s[16], smax = 0.0f;
    for (int j = 0; j < 16; j++) {
        s[j] = best_sym_scale(x + 16 * j, 16, -32, 31);
        if (fabsf(s[j]) > fabsf(smax)) smax = s[j];
    }
    st_half(b + 208, fabsf(smax) / 127.0f);
    float d = ld_half(b + 208);
    int8_t *sc = (int8_t *)(b + 192);
    uint8_t *ql = b, *qh = b + 128;
    memset(ql, 0, 192);
    for (int j = 0; j < 16; j++) {
        sc[j] = (int8_t)(d > 0.0f ? clampi(round_i(s[j] / d), -127, 127) : 0);
        float dl = d * (float)sc[j];
        for (int l = 0; l < 16; l++) {
            int e = 16 * j + l, h = e / 128, k = (e % 128) / 32, i = e % 32;
            int q = dl != 0.0f ? clampi(round_i(x[e] / dl), -32, 31) + 32 : 32;
            ql[64 * h + 32 * (k % 2) + i] |= (uint8_t)((q & 15) << (4 * (k / 2)));
            qh[32 * h + i] |= (uint8_t)((q >> 4) << (2 * k));
        }
    }
}

int t2_quant_can_write(t2_dtype t) {
    return t == T2_Q8_0 || t == T2_Q4_0 || t == T2_Q4_K || t == T2_Q6_K;
}

void t2_quantize(void *dst, const float *src, t2_dtype t, int64_t nb) {
    uint8_t *d = dst;
    size_t bb = t2_quant_block_bytes(t);
    int qk = t2_quant_block(t);
    for (int64_t i = 0; i < nb; i++, d += bb, src += qk) {
        switch (t) {
        case T2_Q4_0: quant_q4_0(d, src); break;
        case T2_Q8_0: quant_q8_0(d, src); break;
        case T2_Q4_K: quant_q4_k(d, src); break;
        case T2_Q6_K: quant_q6_k(d, src); break;
        default: return;
        }
    }
}
