#include "engine/t2_types.h"

#include "base/t2_err.h"
#include "engine/quants.h"

#include <math.h>
#include <string.h>
#include <strings.h>

int t2_dtype_supported(uint32_t ggml_type) {
    return ggml_type == T2_F32 || ggml_type == T2_F16 || ggml_type == T2_BF16 ||
           t2_quant_is((t2_dtype)ggml_type);
}

const char *t2_dtype_name(t2_dtype t) {
    switch (t) {
    case T2_F32: return "F32";
    case T2_F16: return "F16";
    case T2_BF16: return "BF16";
    case T2_Q4_0: return "Q4_0";
    case T2_Q4_1: return "Q4_1";
    case T2_Q5_0: return "Q5_0";
    case T2_Q5_1: return "Q5_1";
    case T2_Q8_0: return "Q8_0";
    case T2_Q2_K: return "Q2_K";
    case T2_Q3_K: return "Q3_K";
    case T2_Q4_K: return "Q4_K";
    case T2_Q5_K: return "Q5_K";
    case T2_Q6_K: return "Q6_K";
    }
    return "?";
}

int t2_dtype_parse(const char *s, t2_dtype *out) {
    static const t2_dtype all[] = {T2_F32,  T2_F16,  T2_BF16, T2_Q4_0, T2_Q4_1, T2_Q5_0, T2_Q5_1,
                                   T2_Q8_0, T2_Q2_K, T2_Q3_K, T2_Q4_K, T2_Q5_K, T2_Q6_K};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(s, t2_dtype_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return t2_err_set(T2_EINVAL, "unknown type '%s' (f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, "
                      "q8_0, q2_k, q3_k, q4_k, q5_k, q6_k)", s);
}

int t2_dtype_block(t2_dtype t) { return t2_quant_is(t) ? t2_quant_block(t) : 1; }

size_t t2_dtype_block_bytes(t2_dtype t) {
    switch (t) {
    case T2_F32: return 4;
    case T2_F16:
    case T2_BF16: return 2;
    default: return t2_quant_block_bytes(t);
    }
}

int t2_dtype_writable(t2_dtype t) {
    return t == T2_F32 || t == T2_F16 || t == T2_BF16 || t2_quant_can_write(t);
}

size_t t2_dtype_row_bytes(t2_dtype t, int64_t n) {
    int b = t2_dtype_block(t);
    if (n < 0 || n % b) return 0;
    return (size_t)(n / b) * t2_dtype_block_bytes(t);
}

float t2_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t t2_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff);
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0)); /* inf / nan */
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00); /* overflow to inf */
    if (e <= 0) {                                    /* subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exponent: ok */
    return (uint16_t)half;
}

uint16_t t2_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void t2_to_f32(float *dst, const void *src, t2_dtype t, int64_t n) {
    const uint8_t *s = src;
    switch (t) {
    case T2_F32: memcpy(dst, src, (size_t)n * 4); break;
    case T2_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = t2_f16_to_f32(h);
        }
        break;
    case T2_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = t2_bf16_to_f32(h);
        }
        break;
    case T2_Q8_0:
        for (int64_t b = 0; b < n / T2_Q8_0_BLOCK; b++) {
            const uint8_t *blk = s + b * (2 + T2_Q8_0_BLOCK);
            uint16_t h;
            memcpy(&h, blk, 2);
            float d = t2_f16_to_f32(h);
            for (int j = 0; j < T2_Q8_0_BLOCK; j++)
                dst[b * T2_Q8_0_BLOCK + j] = d * (float)(int8_t)blk[2 + j];
        }
        break;
    default: t2_dequant(dst, src, t, n / t2_quant_block(t)); break;
    }
}

void t2_from_f32(void *dst, const float *src, t2_dtype t, int64_t n) {
    uint8_t *d = dst;
    switch (t) {
    case T2_F32: memcpy(dst, src, (size_t)n * 4); break;
    case T2_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = t2_f32_to_f16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        break;
    case T2_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = t2_f32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        break;
    case T2_Q8_0:
        for (int64_t b = 0; b < n / T2_Q8_0_BLOCK; b++) {
            const float *x = src + b * T2_Q8_0_BLOCK;
            uint8_t *blk = d + b * (2 + T2_Q8_0_BLOCK);
            float amax = 0;
            for (int j = 0; j < T2_Q8_0_BLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
            float scale = amax / 127.0f, inv = scale ? 1.0f / scale : 0.0f;
            uint16_t h = t2_f32_to_f16(scale);
            memcpy(blk, &h, 2);
            for (int j = 0; j < T2_Q8_0_BLOCK; j++) blk[2 + j] = (uint8_t)(int8_t)lrintf(x[j] * inv);
        }
        break;
    default:
        if (t2_quant_can_write(t)) t2_quantize(dst, src, t, n / t2_quant_block(t));
        break;
    }
}
