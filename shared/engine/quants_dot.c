/* quants_dot.c - portable matrix-vector rows for the quantized types other than Q8_0, on x
 * prepared as for Q8_0 (int16 per element, one float scale dx per 32 elements: kernels.c).
 *
 * Every 32-element block of a row is unpacked to integers q (the format's quants, offset removed
 * where the format has a fixed one) with a scale per 16-element half and, for the formats with a
 * min, an offset per half: w = s * q + o. Then, per block, with exact integer sums
 * S_h = sum q * x16 and X_h = sum x16 over half h:
 *   acc += ((float)S_0 * (s_0 * dx) + (float)S_1 * (s_1 * dx))
 *          [+ ((float)X_0 * (o_0 * dx) + (float)X_1 * (o_1 * dx))]
 * in block order. The SIMD kernels (quants_simd.c) use the same integers with other float orders.
 */
#include "engine/quants.h"
#include "engine/quants_kern.h"

#include <string.h>

static float half_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return t2_f16_to_f32(h);
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

static int q3_scale(const uint8_t *s, int i) {
    int lo = (s[i % 8] >> (4 * (i / 8))) & 15;
    int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
    return (lo | hi << 4) - 32;
}

/* Block k (32 elements) of unit b (a legacy block, k = 0, or a K-quant super-block, k < 8):
 * q[32], scales s[2] and offsets o[2] per 16-element half; returns 1 if there are offsets. */
static int unpack32(t2_dtype t, const uint8_t *b, int k, int q[32], float s[2], float o[2]) {
    switch (t) {
    case T2_Q4_0:
    case T2_Q4_1: {
        const uint8_t *qs = b + (t == T2_Q4_0 ? 2 : 4);
        int off = t == T2_Q4_0 ? 8 : 0;
        for (int j = 0; j < 16; j++) {
            q[j] = (qs[j] & 15) - off;
            q[j + 16] = (qs[j] >> 4) - off;
        }
        s[0] = s[1] = half_at(b);
        if (t == T2_Q4_0) return 0;
        o[0] = o[1] = half_at(b + 2);
        return 1;
    }
    case T2_Q5_0:
    case T2_Q5_1: {
        const uint8_t *p = b + (t == T2_Q5_0 ? 2 : 4), *qs = p + 4;
        uint32_t qh =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        int off = t == T2_Q5_0 ? 16 : 0;
        for (int j = 0; j < 16; j++) {
            q[j] = ((qs[j] & 15) | (int)((qh >> j) & 1) << 4) - off;
            q[j + 16] = ((qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - off;
        }
        s[0] = s[1] = half_at(b);
        if (t == T2_Q5_0) return 0;
        o[0] = o[1] = half_at(b + 2);
        return 1;
    }
    case T2_Q2_K: {
        int h = k / 4, sh = 2 * (k % 4), is = 2 * k;
        const uint8_t *qs = b + 16 + 32 * h, *sc = b;
        for (int j = 0; j < 32; j++)
            q[j] = (qs[j] >> sh) & 3;
        float d = half_at(b + 80), dmin = half_at(b + 82);
        for (int i = 0; i < 2; i++) {
            s[i] = d * (float)(sc[is + i] & 15);
            o[i] = -(dmin * (float)(sc[is + i] >> 4));
        }
        return 1;
    }
    case T2_Q3_K: {
        int h = k / 4, sh = 2 * (k % 4), bit = 1 << k;
        const uint8_t *qs = b + 32 + 32 * h, *hm = b;
        for (int j = 0; j < 32; j++)
            q[j] = ((qs[j] >> sh) & 3) - ((hm[j] & bit) ? 0 : 4);
        float d = half_at(b + 108);
        s[0] = d * (float)q3_scale(b + 96, 2 * k);
        s[1] = d * (float)q3_scale(b + 96, 2 * k + 1);
        return 0;
    }
    case T2_Q4_K:
    case T2_Q5_K: {
        int c = k / 2, hi = k % 2, sc, mn;
        const uint8_t *qs = b + (t == T2_Q4_K ? 16 : 48) + 32 * c, *qh = b + 16;
        for (int j = 0; j < 32; j++) {
            q[j] = (qs[j] >> (4 * hi)) & 15;
            if (t == T2_Q5_K) q[j] |= ((qh[j] >> k) & 1) << 4;
        }
        k4_scale_min(b + 4, k, &sc, &mn);
        s[0] = s[1] = half_at(b) * (float)sc;
        o[0] = o[1] = -(half_at(b + 2) * (float)mn);
        return 1;
    }
    case T2_Q6_K: {
        int h = k / 4, kk = k % 4;
        const uint8_t *ql = b + 64 * h + 32 * (kk % 2), *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192) + 8 * h + 2 * kk;
        for (int j = 0; j < 32; j++)
            q[j] = (((ql[j] >> (4 * (kk / 2))) & 15) | ((qh[j] >> (2 * kk)) & 3) << 4) - 32;
        float d = half_at(b + 208);
        s[0] = d * (float)sc[0];
        s[1] = d * (float)sc[1];
        return 0;
    }
    default: return 0;
    }
}

void t2_qgen_rows(t2_dtype t, float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                  int r1) {
    const int16_t *x16 = xq;
    const float *dx = (const float *)(x16 + cols);
    int qk = t2_quant_block(t), kb = qk / 32;
    size_t bb = t2_quant_block_bytes(t);
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = (const uint8_t *)W + (size_t)r * rb;
        float acc = 0.0f;
        for (int u = 0; u < cols / qk; u++)
            for (int k = 0; k < kb; k++) {
                int q[32];
                float s[2] = {0.0f, 0.0f}, o[2] = {0.0f, 0.0f};
                int has_o = unpack32(t, w + (size_t)u * bb, k, q, s, o);
                const int16_t *xb = x16 + (size_t)u * qk + 32 * k;
                float d = dx[u * kb + k];
                int32_t S[2] = {0, 0}, X[2] = {0, 0};
                for (int j = 0; j < 32; j++) {
                    S[j / 16] += q[j] * xb[j];
                    X[j / 16] += xb[j];
                }
                float part = (float)S[0] * (s[0] * d) + (float)S[1] * (s[1] * d);
                if (has_o) part += (float)X[0] * (o[0] * d) + (float)X[1] * (o[1] * d);
                acc += part;
            }
        y[r] = acc;
    }
}
