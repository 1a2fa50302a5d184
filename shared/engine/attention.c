/* attention.c - segment partials of causal attention over a paged KV cache (attention.h).
 *
 * Kernels per cache type: scores s_j = scale * dot(q_g, k_j) for the rows of one block, then
 * o_g += p_j v_j. The AVX2 versions (F32/F16 heads of a multiple of 8 values, Q8_0 heads that
 * are whole 32-value blocks) and the portable ones each fix their order of summation; which one
 * runs depends only on the CPU, the kernel level and the shapes, never on threads. */
#include "engine/attention.h"

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

/* ---- AVX2 ---------------------------------------------------------------------------------- */
#if defined(__x86_64__)
#include <immintrin.h>
#define TGT __attribute__((target("avx2,fma,f16c")))

TGT static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
TGT static inline __m256 ld16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
TGT static inline __m256 ld8i(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* n a multiple of 8 */
TGT static float dot_f32_avx2(const float *q, const float *k, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(k + i + 8), a1);
    }
    if (i < n) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
    return hsum8(_mm256_add_ps(a0, a1));
}
TGT static float dot_f16_avx2(const float *q, const uint16_t *k, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), ld16(k + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), ld16(k + i + 8), a1);
    }
    if (i < n) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), ld16(k + i), a0);
    return hsum8(_mm256_add_ps(a0, a1));
}
/* n a multiple of 32: whole Q8_0 blocks */
TGT static float dot_q8_avx2(const float *q, const q8blk *k, int n) {
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / 32; b++, q += 32) {
        __m256 t = _mm256_mul_ps(_mm256_loadu_ps(q), ld8i(k[b].qs));
        t = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8), ld8i(k[b].qs + 8), t);
        t = _mm256_fmadd_ps(_mm256_loadu_ps(q + 16), ld8i(k[b].qs + 16), t);
        t = _mm256_fmadd_ps(_mm256_loadu_ps(q + 24), ld8i(k[b].qs + 24), t);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(t2_f16_to_f32(k[b].d)), t, acc);
    }
    return hsum8(acc);
}
TGT static void axpy_f32_avx2(float *o, float w, const float *v, int n) {
    __m256 W = _mm256_set1_ps(w);
    for (int i = 0; i < n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(W, _mm256_loadu_ps(v + i), _mm256_loadu_ps(o + i)));
}
TGT static void axpy_f16_avx2(float *o, float w, const uint16_t *v, int n) {
    __m256 W = _mm256_set1_ps(w);
    for (int i = 0; i < n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(W, ld16(v + i), _mm256_loadu_ps(o + i)));
}
TGT static void axpy_q8_avx2(float *o, float w, const q8blk *v, int n) {
    for (int b = 0; b < n / 32; b++, o += 32) {
        __m256 W = _mm256_set1_ps(w * t2_f16_to_f32(v[b].d));
        for (int i = 0; i < 32; i += 8)
            _mm256_storeu_ps(o + i, _mm256_fmadd_ps(W, ld8i(v[b].qs + i), _mm256_loadu_ps(o + i)));
    }
}

/* e^x for x <= 0 (Cephes' expf: range reduction by ln 2, degree-5 polynomial; ~1 ulp) */
TGT static inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* s[j] = e^(s[j] - m) for j < n (8 at a time, the tail through a padded vector); their sum */
TGT static float exp_sum_avx2(float *s, int n, float m) {
    const __m256 M = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), M));
        _mm256_storeu_ps(s + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (j < n) {
        float t[8];
        for (int i = 0; i < 8; i++) t[i] = j + i < n ? s[j + i] : -1e30f;
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(t), M));
        _mm256_storeu_ps(t, e);
        for (int i = 0; i < 8; i++) {
            if (j + i < n) s[j + i] = t[i];
            else t[i] = 0;
        }
        acc = _mm256_add_ps(acc, _mm256_loadu_ps(t));
    }
    return hsum8(acc);
}

TGT static float max_avx2(const float *s, int n) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(s + j));
    float t[8], m;
    _mm256_storeu_ps(t, mx);
    m = t[0];
    for (int i = 1; i < 8; i++) m = t[i] > m ? t[i] : m;
    for (; j < n; j++) m = s[j] > m ? s[j] : m;
    return m;
}

/* o[0..hd) += sum_{j < n} p[j] row_j[hoff..hoff+hd) for F32 / F16 rows rb bytes apart, hd a
 * multiple of 32: the same fused multiply-adds in the same order as axpy_*_avx2 row by row,
 * with o held in registers. */
#define DEF_PV_ROWS(NAME, ET, LD)                                                              \
    TGT static void NAME(float *o, const float *p, const uint8_t *rows, size_t rb, int hoff,   \
                         int n, int hd) {                                                      \
        for (int c = 0; c < hd; c += 32) {                                                     \
            __m256 a0 = _mm256_loadu_ps(o + c), a1 = _mm256_loadu_ps(o + c + 8);               \
            __m256 a2 = _mm256_loadu_ps(o + c + 16), a3 = _mm256_loadu_ps(o + c + 24);         \
            for (int j = 0; j < n; j++) {                                                      \
                const ET *v = (const ET *)(rows + (size_t)j * rb) + hoff + c;                  \
                const __m256 w = _mm256_set1_ps(p[j]);                                         \
                a0 = _mm256_fmadd_ps(w, LD(v), a0);                                            \
                a1 = _mm256_fmadd_ps(w, LD(v + 8), a1);                                        \
                a2 = _mm256_fmadd_ps(w, LD(v + 16), a2);                                       \
                a3 = _mm256_fmadd_ps(w, LD(v + 24), a3);                                       \
            }                                                                                  \
            _mm256_storeu_ps(o + c, a0);                                                       \
            _mm256_storeu_ps(o + c + 8, a1);                                                   \
            _mm256_storeu_ps(o + c + 16, a2);                                                  \
            _mm256_storeu_ps(o + c + 24, a3);                                                  \
        }                                                                                      \
    }
DEF_PV_ROWS(pv_rows_f32, float, _mm256_loadu_ps)
DEF_PV_ROWS(pv_rows_f16, uint16_t, ld16)

static int pv_rows_ok(t2_dtype t, int hd) { return t != T2_Q8_0 && hd % 32 == 0; }
static void pv_rows(t2_dtype t, float *o, const float *p, const uint8_t *rows, size_t rb,
                    int hoff, int n, int hd) {
    if (t == T2_F32)
        pv_rows_f32(o, p, rows, rb, hoff, n, hd);
    else
        pv_rows_f16(o, p, rows, rb, hoff, n, hd);
}

static int simd_ok(t2_dtype t, int hoff, int hd) {
    return t == T2_Q8_0 ? hoff % 32 == 0 && hd % 32 == 0 : hd % 8 == 0;
}

static float dot_simd(t2_dtype t, const float *q, const uint8_t *row, int off, int n) {
    if (t == T2_F32) return dot_f32_avx2(q, (const float *)row + off, n);
    if (t == T2_F16) return dot_f16_avx2(q, (const uint16_t *)row + off, n);
    return dot_q8_avx2(q, (const q8blk *)row + off / 32, n);
}
static void axpy_simd(t2_dtype t, float *o, float w, const uint8_t *row, int off, int n) {
    if (t == T2_F32) axpy_f32_avx2(o, w, (const float *)row + off, n);
    else if (t == T2_F16) axpy_f16_avx2(o, w, (const uint16_t *)row + off, n);
    else axpy_q8_avx2(o, w, (const q8blk *)row + off / 32, n);
}

int t2_att_simd(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           strcmp(t2_kern_level(), "generic") != 0;
}
#else
static int simd_ok(t2_dtype t, int hoff, int hd) { (void)t, (void)hoff, (void)hd; return 0; }
static float dot_simd(t2_dtype t, const float *q, const uint8_t *row, int off, int n) {
    return dot_gen(t, q, row, off, n);
}
static void axpy_simd(t2_dtype t, float *o, float w, const uint8_t *row, int off, int n) {
    axpy_gen(t, o, w, row, off, n);
}
int t2_att_simd(void) { return 0; }
static float exp_sum_avx2(float *s, int n, float m) { (void)s, (void)n, (void)m; return 0; }
static float max_avx2(const float *s, int n) { (void)s, (void)n; return 0; }
static int pv_rows_ok(t2_dtype t, int hd) { (void)t, (void)hd; return 0; }
static void pv_rows(t2_dtype t, float *o, const float *p, const uint8_t *rows, size_t rb,
                    int hoff, int n, int hd) {
    (void)t, (void)o, (void)p, (void)rows, (void)rb, (void)hoff, (void)n, (void)hd;
}
#endif

/* ---- prompt tiles (AVX2, head dim a multiple of 32) ---------------------------------------- */

/* dst[j * hd + i] = value i of the head's row of position t0 + j (f32), for j < n */
static void rows_f32(const t2_kvv *kv, size_t off, int hoff, int hd, int t0, int n, float *dst) {
    for (int j = 0; j < n; j++) {
        const int t = t0 + j;
        const uint8_t *row = kv->base + (size_t)kv->blocks[t / T2_KV_BLOCK] * kv->block_bytes +
                             off + (size_t)(t % T2_KV_BLOCK) * kv->row_bytes;
        float *d = dst + (size_t)j * hd;
        if (kv->type == T2_F32)
            memcpy(d, (const float *)row + hoff, (size_t)hd * sizeof(float));
        else if (kv->type == T2_F16)
            t2_to_f32(d, (const uint16_t *)row + hoff, T2_F16, hd);
        else
            t2_to_f32(d, row + (size_t)(hoff / 32) * 34, T2_Q8_0, hd);
    }
}

#if defined(__x86_64__)
/* S[r][j] = scale * sum_d q_r[d] Kt[d][j] for 4 rows and 16 positions (sum in d order) */
TGT static void qk_4x16(float *S, int lds, const float *const *q, const float *Kt, int ldk, int hd,
                        float scale) {
    __m256 a[4][2];
    for (int r = 0; r < 4; r++) a[r][0] = a[r][1] = _mm256_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m256 k0 = _mm256_loadu_ps(Kt + (size_t)d * ldk), k1 = _mm256_loadu_ps(Kt + (size_t)d * ldk + 8);
        for (int r = 0; r < 4; r++) {
            __m256 b = _mm256_set1_ps(q[r][d]);
            a[r][0] = _mm256_fmadd_ps(b, k0, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(b, k1, a[r][1]);
        }
    }
    const __m256 sc = _mm256_set1_ps(scale);
    for (int r = 0; r < 4; r++) {
        _mm256_storeu_ps(S + (size_t)r * lds, _mm256_mul_ps(a[r][0], sc));
        _mm256_storeu_ps(S + (size_t)r * lds + 8, _mm256_mul_ps(a[r][1], sc));
    }
}

/* o_r[c..c+32) = sum_{j < n} P[r][j] V[j][c..c+32) for 2 rows (sum in j order) */
TGT static void pv_2x32(float *o0, float *o1, const float *P0, const float *P1, const float *V,
                        int hd, int n) {
    __m256 a[2][4];
    for (int i = 0; i < 4; i++) a[0][i] = a[1][i] = _mm256_setzero_ps();
    for (int j = 0; j < n; j++) {
        const float *v = V + (size_t)j * hd;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
        __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
        __m256 b0 = _mm256_set1_ps(P0[j]), b1 = _mm256_set1_ps(P1[j]);
        a[0][0] = _mm256_fmadd_ps(b0, v0, a[0][0]);
        a[0][1] = _mm256_fmadd_ps(b0, v1, a[0][1]);
        a[0][2] = _mm256_fmadd_ps(b0, v2, a[0][2]);
        a[0][3] = _mm256_fmadd_ps(b0, v3, a[0][3]);
        a[1][0] = _mm256_fmadd_ps(b1, v0, a[1][0]);
        a[1][1] = _mm256_fmadd_ps(b1, v1, a[1][1]);
        a[1][2] = _mm256_fmadd_ps(b1, v2, a[1][2]);
        a[1][3] = _mm256_fmadd_ps(b1, v3, a[1][3]);
    }
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(o0 + 8 * i, a[0][i]);
        _mm256_storeu_ps(o1 + 8 * i, a[1][i]);
    }
}
#endif

size_t t2_att_tile_floats(int hd, int R) {
    const size_t R4 = (size_t)(R + 3) / 4 * 4 + 1;
    return 2 * (size_t)hd * T2_ATT_SEG + R4 * T2_ATT_SEG + 2 * (size_t)hd + 8;
}

int t2_att_tile_ok(const t2_kvv *kv, int hd) {
#if defined(__x86_64__)
    return kv->simd && hd % 32 == 0;
#else
    (void)kv, (void)hd;
    return 0;
#endif
}

#if defined(__x86_64__)
/* Scores, then softmax statistics and the value products of rows [0, R) (R padded to 4 with
 * copies of the last row, whose results are dropped). */
static void tile_rows(const t2_kvv *kv, int hd, const float *const *q, const int *pos, int R,
                      float scale, int t0, int n, const float *Kt, const float *Vf, float *S,
                      float *part) {
    const int n16 = (n + 15) / 16 * 16;
    for (int r0 = 0; r0 < R; r0 += 4) {
        const float *qq[4];
        for (int r = 0; r < 4; r++) qq[r] = q[r0 + r < R ? r0 + r : R - 1];
        for (int j = 0; j < n16; j += 16)
            qk_4x16(S + (size_t)r0 * T2_ATT_SEG + j, T2_ATT_SEG, qq, Kt + j, T2_ATT_SEG, hd, scale);
    }
    for (int r = 0; r < R; r++) {
        float *sr = S + (size_t)r * T2_ATT_SEG, *p = part + (size_t)r * (hd + 2);
        const int nr = pos[r] - t0 + 1 < n ? pos[r] - t0 + 1 : n;
        p[0] = max_avx2(sr, nr);
        p[1] = exp_sum_avx2(sr, nr, p[0]);
        for (int j = nr; j < n; j++) sr[j] = 0; /* beyond the query's position */
    }
    float *z = S + (size_t)((R + 3) / 4 * 4) * T2_ATT_SEG; /* a zero row for odd R */
    memset(z, 0, T2_ATT_SEG * sizeof(float));
    for (int r = 0; r < R; r += 2) {
        const float *P0 = S + (size_t)r * T2_ATT_SEG, *P1 = r + 1 < R ? P0 + T2_ATT_SEG : z;
        float *o0 = part + (size_t)r * (hd + 2) + 2;
        float *o1 = r + 1 < R ? o0 + hd + 2 : z + T2_ATT_SEG; /* scratch past the zero row */
        for (int c = 0; c < hd; c += 32)
            pv_2x32(o0 + c, o1 + c, P0, P1, Vf + c, hd, n);
    }
    (void)kv;
}
#endif

void t2_att_tile(const t2_kvv *kv, int hoff, int hd, const float *const *q, const int *pos, int R,
                 float scale, int t0, int t1, float *scratch, float *part) {
#if defined(__x86_64__)
    const int n = t1 - t0;
    float *Kt = scratch, *Vf = Kt + (size_t)hd * T2_ATT_SEG, *S = Vf + (size_t)hd * T2_ATT_SEG;
    float *tmp = Vf; /* K rows land where V rows go next, and go to Kt transposed */
    rows_f32(kv, kv->k_off, hoff, hd, t0, n, tmp);
    for (int j = 0; j < n; j++)
        for (int d = 0; d < hd; d++) Kt[(size_t)d * T2_ATT_SEG + j] = tmp[(size_t)j * hd + d];
    for (int d = 0; d < hd; d++)
        for (int j = n; j < (n + 15) / 16 * 16; j++) Kt[(size_t)d * T2_ATT_SEG + j] = 0;
    rows_f32(kv, kv->v_off, hoff, hd, t0, n, Vf);
    tile_rows(kv, hd, q, pos, R, scale, t0, n, Kt, Vf, S, part);
#else
    (void)kv, (void)hoff, (void)hd, (void)q, (void)pos, (void)R, (void)scale, (void)t0, (void)t1;
    (void)scratch, (void)part;
#endif
}

/* ---- segments ------------------------------------------------------------------------------ */

static inline const uint8_t *block_of(const t2_kvv *kv, int t) {
    return kv->base + (size_t)kv->blocks[t / T2_KV_BLOCK] * kv->block_bytes;
}

/* sc[g * T2_ATT_SEG + (t - t0)] = scale * q_g . k_t for t in [t0, t1) */
static void scores(const t2_kvv *kv, int simd, int hoff, int hd, const float *q, int G,
                   float scale, int t0, int t1, float *sc) {
    for (int t = t0; t < t1;) {
        const int r0 = t % T2_KV_BLOCK, n = T2_KV_BLOCK - r0 < t1 - t ? T2_KV_BLOCK - r0 : t1 - t;
        const uint8_t *rows = block_of(kv, t) + kv->k_off + (size_t)r0 * kv->row_bytes;
        for (int j = 0; j < n; j++) {
            const uint8_t *row = rows + (size_t)j * kv->row_bytes;
            for (int g = 0; g < G; g++) {
                const float *qg = q + (size_t)g * hd;
                float d = simd ? dot_simd(kv->type, qg, row, hoff, hd)
                               : dot_gen(kv->type, qg, row, hoff, hd);
                sc[(size_t)g * T2_ATT_SEG + (t - t0) + j] = d * scale;
            }
        }
        t += n;
    }
}

/* o_g += sum_t p_g[t] v_t */
static void values(const t2_kvv *kv, int simd, int hoff, int hd, int G, int t0, int t1,
                   const float *sc, float *part) {
    for (int t = t0; t < t1;) {
        const int r0 = t % T2_KV_BLOCK, n = T2_KV_BLOCK - r0 < t1 - t ? T2_KV_BLOCK - r0 : t1 - t;
        const uint8_t *rows = block_of(kv, t) + kv->v_off + (size_t)r0 * kv->row_bytes;
        if (simd && pv_rows_ok(kv->type, hd)) { /* same sums, o in registers */
            for (int g = 0; g < G; g++)
                pv_rows(kv->type, part + (size_t)g * (hd + 2) + 2,
                        sc + (size_t)g * T2_ATT_SEG + (t - t0), rows, kv->row_bytes, hoff, n, hd);
            t += n;
            continue;
        }
        for (int j = 0; j < n; j++) {
            const uint8_t *row = rows + (size_t)j * kv->row_bytes;
            for (int g = 0; g < G; g++) {
                float *o = part + (size_t)g * (hd + 2) + 2;
                float w = sc[(size_t)g * T2_ATT_SEG + (t - t0) + j];
                if (simd)
                    axpy_simd(kv->type, o, w, row, hoff, hd);
                else
                    axpy_gen(kv->type, o, w, row, hoff, hd);
            }
        }
        t += n;
    }
}

void t2_att_partial(const t2_kvv *kv, int hoff, int hd, const float *q, int G, float scale,
                    int t0, int t1, float *sc, float *part) {
    const int simd = kv->simd && simd_ok(kv->type, hoff, hd), n = t1 - t0;
    scores(kv, simd, hoff, hd, q, G, scale, t0, t1, sc);
    for (int g = 0; g < G; g++) {
        float *s = sc + (size_t)g * T2_ATT_SEG, *p = part + (size_t)g * (hd + 2);
        float m = s[0], l = 0;
        if (kv->simd) {
            m = max_avx2(s, n);
            l = exp_sum_avx2(s, n, m);
        } else {
            for (int j = 1; j < n; j++) m = s[j] > m ? s[j] : m;
            for (int j = 0; j < n; j++) {
                s[j] = expf(s[j] - m);
                l += s[j];
            }
        }
        p[0] = m;
        p[1] = l;
        memset(p + 2, 0, (size_t)hd * sizeof(float));
    }
    values(kv, simd, hoff, hd, G, t0, t1, sc, part);
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

void t2_kv_store(void *dst, const float *src, t2_dtype t, int n) {
    if (t == T2_F32)
        memcpy(dst, src, (size_t)n * sizeof(float));
    else
        t2_from_f32(dst, src, t, n);
}
