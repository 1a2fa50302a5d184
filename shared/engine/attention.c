/* attention.c - segment partials of causal attention over a paged KV cache (attention.h).
 *
 * The portable kernels (scores s_j = scale * dot(q_g, k_j), then o_g += p_j v_j) and the dispatch
 * to the SIMD ones (attention_avx512.c / attention_avx2.c from attention_kern.h: prompt rows in
 * vector lanes, decoding positions in lanes). Each fixes its order of summation; which one runs
 * depends only on the CPU, the kernel level and the shapes, never on threads. */
#include "engine/attention.h"

#include "engine/attention_simd.h"
#include "engine/kernels.h"

#include <math.h>
#include <string.h>

typedef struct {
    uint16_t d;
    int8_t qs[32];
} q8blk;

/* ---- portable ---------------------------------------------------------------------------- */

static inline float q8_get(const uint8_t *row, int j) {
    const uint8_t *b = row + (size_t)(j / 32) * 34;
    uint16_t d;
    memcpy(&d, b, 2);
    return t2_f16_to_f32(d) * (float)(int8_t)b[2 + j % 32];
}

static inline float kv_get(t2_dtype t, const uint8_t *row, int j) {
    if (t == T2_F32) {
        float f;
        memcpy(&f, row + (size_t)j * 4, 4);
        return f;
    }
    if (t == T2_F16) {
        uint16_t h;
        memcpy(&h, row + (size_t)j * 2, 2);
        return t2_f16_to_f32(h);
    }
    return q8_get(row, j);
}

static float dot_gen(t2_dtype t, const float *q, const uint8_t *row, int off, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += q[i] * kv_get(t, row, off + i);
    return s;
}

static void axpy_gen(t2_dtype t, float *o, float w, const uint8_t *row, int off, int n) {
    for (int i = 0; i < n; i++) o[i] += w * kv_get(t, row, off + i);
}

/* ---- portable segments --------------------------------------------------------------------- */

static inline const uint8_t *block_of(const t2_kvv *kv, int t) {
    return kv->base + (size_t)kv->blocks[t / T2_KV_BLOCK] * kv->block_bytes;
}

void t2_att_partial(const t2_kvv *kv, int hoff, int hd, const float *q, int G, float scale,
                    int t0, int t1, float *sc, float *part) {
    const int n = t1 - t0;
    for (int t = t0; t < t1; t++) {
        const uint8_t *row = block_of(kv, t) + kv->k_off + (size_t)(t % T2_KV_BLOCK) * kv->row_bytes;
        for (int g = 0; g < G; g++)
            sc[(size_t)g * T2_ATT_SEG + (t - t0)] = dot_gen(kv->type, q + (size_t)g * hd, row,
                                                            hoff, hd) * scale;
    }
    for (int g = 0; g < G; g++) {
        float *s = sc + (size_t)g * T2_ATT_SEG, *p = part + (size_t)g * (hd + 2);
        float m = s[0], l = 0;
        for (int j = 1; j < n; j++) m = s[j] > m ? s[j] : m;
        for (int j = 0; j < n; j++) {
            s[j] = expf(s[j] - m);
            l += s[j];
        }
        p[0] = m;
        p[1] = l;
        memset(p + 2, 0, (size_t)hd * sizeof(float));
    }
    for (int t = t0; t < t1; t++) {
        const uint8_t *row = block_of(kv, t) + kv->v_off + (size_t)(t % T2_KV_BLOCK) * kv->row_bytes;
        for (int g = 0; g < G; g++)
            axpy_gen(kv->type, part + (size_t)g * (hd + 2) + 2, sc[(size_t)g * T2_ATT_SEG + t - t0],
                     row, hoff, hd);
    }
}

/* ---- dispatch ------------------------------------------------------------------------------ */

/* The SIMD width for this cache and head dim: 2 (AVX-512), 1 (AVX2) or 0 (portable) */
static int att_level(const t2_kvv *kv, int hd) {
    if (kv->type == T2_Q8_0 && hd % 32) return 0;
    if (kv->simd >= 2 && hd % 16 == 0) return 2;
    if (kv->simd >= 1 && hd % 8 == 0) return 1;
    return 0;
}

int t2_att_simd(void) {
#if defined(__x86_64__)
    const char *l = t2_kern_level();
    if (strncmp(l, "avx512", 6) == 0) return 2;
    if (strcmp(l, "avx2") == 0) return 1;
#endif
    return 0;
}

void t2_att_dec(const t2_kvv *kv, int kv0, int K, int G, int hd, const float *q, float scale,
                int t0, int t1, float *sc, float *part) {
    const int P = hd + 2;
#if defined(__x86_64__)
    const int lv = att_level(kv, hd);
    if (lv == 2) {
        t2_att_dec_512(kv, kv0, K, G, hd, q, scale, t0, t1, sc, part);
        return;
    }
    if (lv == 1) {
        t2_att_dec_256(kv, kv0, K, G, hd, q, scale, t0, t1, sc, part);
        return;
    }
#endif
    for (int k = 0; k < K; k++)
        t2_att_partial(kv, (kv0 + k) * hd, hd, q + (size_t)k * G * hd, G, scale, t0, t1, sc,
                       part + (size_t)k * G * P);
}

int t2_att_rows_ok(const t2_kvv *kv, int hd) { return att_level(kv, hd) > 0; }

size_t t2_att_rows_floats(int hd, int R) {
#if defined(__x86_64__)
    const size_t a = t2_att_rows_floats_512(hd, R), b = t2_att_rows_floats_256(hd, R);
    return a > b ? a : b;
#else
    (void)hd, (void)R;
    return 0;
#endif
}

void t2_att_rows(const t2_kvv *kv, int hoff, int hd, const float *const *q, const int *pos, int R,
                 float scale, float *scratch, float *const *out) {
#if defined(__x86_64__)
    if (att_level(kv, hd) == 2)
        t2_att_rows_512(kv, hoff, hd, q, pos, R, scale, scratch, out);
    else
        t2_att_rows_256(kv, hoff, hd, q, pos, R, scale, scratch, out);
#else
    (void)kv, (void)hoff, (void)hd, (void)q, (void)pos, (void)R, (void)scale, (void)scratch;
    (void)out;
#endif
}

void t2_att_fold(float *r, const float *p, int hd) {
    const float m = r[0] > p[0] ? r[0] : p[0];
    const float a = expf(r[0] - m), b = expf(p[0] - m);
    r[0] = m;
    r[1] = r[1] * a + p[1] * b;
    for (int i = 0; i < hd; i++) r[2 + i] = r[2 + i] * a + p[2 + i] * b;
}

void t2_att_finish(float *out, const float *r, int hd) {
    const float inv = 1.0f / r[1];
    for (int i = 0; i < hd; i++) out[i] = r[2 + i] * inv;
}

void t2_kv_store(const t2_kvv *kv, void *dst, const float *src, int n) {
    const t2_dtype t = kv->type;
#if defined(__x86_64__)
    if (t == T2_F16 && kv->simd == 2) {
        t2_att_store_f16_512(dst, src, n);
        return;
    }
    if (t == T2_F16 && kv->simd == 1) {
        t2_att_store_f16_256(dst, src, n);
        return;
    }
#endif
    if (t == T2_F32)
        memcpy(dst, src, (size_t)n * sizeof(float));
    else
        t2_from_f32(dst, src, t, n);
}
