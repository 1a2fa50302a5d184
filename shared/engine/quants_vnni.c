/* quants_vnni.c - quantized weights x 8-bit activations on AVX-512 VNNI (quants_vnni.h).
 *
 * The 32-element formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) run in quants_vnni_tile.c (16 rows per
 * tile, one row per lane); this file prepares x for every type and runs the K-quants.
 * Each K-quant is decoded, 64 weights at a time, into unsigned byte codes u in the elements'
 * natural order, so that one vpdpbusd gives 16 int32 lanes, lanes 0-7 covering the first 32
 * elements and 8-15 the second: the formats with a min (Q4_K, Q5_K) as their unsigned quants
 * (times x8, signed); Q6_K, with its fixed offset 2^K = 32, as its unsigned codes too, the
 * accumulation starting from 2^K times minus x8's lane sums (so the integer dots are exact,
 * offsets included: the same integers as signed codes times x8). Per lane the weight
 * scale (a permute of the block's or sub-block's scales) times the activation scale dx (x8's
 * dxe) is applied in f32. Mins multiply sums of x over a block or sub-block: they are applied
 * per 256 elements as one vector FMA on x8's s32.
 *
 * Compiled without global -m flags: every function carries a target attribute and runs only
 * after t2_kv_cpu_ok() (kernels.c checks it before choosing the level).
 */
#include "engine/quants_vnni.h"

#if defined(__x86_64__)
#include "engine/quants.h"
#include "engine/red4.h"

#include <cpuid.h>
#include <immintrin.h>
#include <string.h>

#define TGT                                                                                    \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline)) TGT

int t2_kv_cpu_ok(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int ok = (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512VL) &&
             (b & bit_AVX512DQ) && (c & bit_AVX512VNNI) && (b & bit_AVX2);
    if (!ok || !__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_FMA) && (c & bit_F16C) && (c & bit_OSXSAVE);
}

int t2_kv_has(t2_dtype t, int cols) {
    switch (t) {
    case T2_Q8_0:
    case T2_Q4_0:
    case T2_Q4_1:
    case T2_Q5_0:
    case T2_Q5_1: return cols > 0 && cols % 64 == 0;
    case T2_Q4_K:
    case T2_Q5_K:
    case T2_Q6_K: return cols > 0 && cols % 256 == 0;
    default: return 0;
    }
}

/* The five arrays of one prepared vector. */
typedef struct x8v {
    const int8_t *q;
    const uint8_t *qu;
    const float *dxe, *s32;
    const int32_t *nls;
} x8v;

static x8v x8_at(const void *p, int cols) {
    const uint8_t *b = p;
    size_t o1 = T2_X8_A64(cols), o2 = o1 + T2_X8_A64(cols), o3 = o2 + T2_X8_A64((size_t)cols / 8);
    x8v v = {(const int8_t *)b, b + o3, (const float *)(b + o1), (const float *)(b + o2),
             (const int32_t *)(b + o3 + T2_X8_A64(cols))};
    return v;
}

TGT void t2_kv_prep(void *buf, const float *x, int cols) {
    uint8_t *base = buf;
    int8_t *q = buf;
    size_t o1 = T2_X8_A64(cols), o2 = o1 + T2_X8_A64(cols);
    float *dxe = (float *)(base + o1), *s32 = (float *)(base + o2);
    uint8_t *qu = base + o2 + T2_X8_A64((size_t)cols / 8);
    int32_t *nls = (int32_t *)(qu + T2_X8_A64(cols));
    const __m512i lim = _mm512_set1_epi32(127), nlim = _mm512_set1_epi32(-127);
    for (int b = 0; b < cols / 32; b++) {
        __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1), big = _mm512_set1_ps(3.0e38f);
        __mmask16 bad = _mm512_cmp_ps_mask(a0, big, _CMP_NLE_UQ) |
                        _mm512_cmp_ps_mask(a1, big, _CMP_NLE_UQ); /* inf or nan */
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1)), dx;
        int S = 0;
        if (bad || amax == 0.0f) {
            dx = bad ? __builtin_nanf("") : 0.0f;
            memset(q + 32 * b, 0, 32);
        } else {
            __m512 inv = _mm512_set1_ps(127.0f / amax);
            dx = amax / 127.0f;
            __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv));
            __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
            i0 = _mm512_max_epi32(_mm512_min_epi32(i0, lim), nlim);
            i1 = _mm512_max_epi32(_mm512_min_epi32(i1, lim), nlim);
            _mm_storeu_si128((__m128i *)(q + 32 * b), _mm512_cvtepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(q + 32 * b + 16), _mm512_cvtepi32_epi8(i1));
            S = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        }
        _mm256_storeu_ps(dxe + 8 * b, _mm256_set1_ps(dx));
        __m256i q32 = _mm256_loadu_si256((const __m256i *)(q + 32 * b));
        _mm256_storeu_si256((__m256i *)(qu + 32 * b),
                            _mm256_xor_si256(q32, _mm256_set1_epi8((char)0x80)));
        __m256i ls = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q32);
        _mm256_storeu_si256((__m256i *)(nls + 8 * b), _mm256_sub_epi32(_mm256_setzero_si256(), ls));
        s32[b] = dx * (float)S;
    }
    if ((cols / 32) % 2) _mm256_storeu_ps(dxe + 8 * (cols / 32), _mm256_setzero_ps());
}

/* ---- shared pieces ---- */

/* An f16 as f32 (F16C: exact, as t2_f16_to_f32, without a call per super-block). */
INL float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

INL float hsum8(__m256 c) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps(c, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Low nibbles of 32 bytes, then their high nibbles: 64 codes in a K-quant's element order. */
INL __m512i nib_k(__m256i y) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(y, m), hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* Rows end in groups of four (engine/red4.h): one transposed reduction for four rows, each
 * result bit-identical to the row's own reduction, so it does not depend on how rows are grouped.
 * Per vector v the row's final accumulators go to slot k of fa (and fc); a full group is reduced
 * and stored at ys[v] + r - 3; a range's last rows that do not fill one take the one-row
 * reductions (ROWS_TAIL). */
#define ROW_END(NV, ys, r, fa, fc, k, WITH_C)                                                  \
    do {                                                                                       \
        if (++(k) == 4) {                                                                      \
            FORV(NV, __m128 o_ = t2_red4_ps(fa[v]);                                            \
                 if (WITH_C) o_ = _mm_add_ps(o_, t2_red4_hsum8(fc[v]));                        \
                 _mm_storeu_ps(ys[v] + (r) - 3, o_));                                          \
            (k) = 0;                                                                           \
        }                                                                                      \
    } while (0)
#define ROWS_TAIL(NV, ys, r1, fa, fc, k, WITH_C)                                               \
    for (int i_ = 0; i_ < (k); i_++)                                                           \
    FORV(NV, ys[v][(r1) - (k) + i_] = WITH_C ? _mm512_reduce_add_ps(fa[v][i_]) + hsum8(fc[v][i_]) \
                                             : _mm512_reduce_add_ps(fa[v][i_]))

/* Lanes 0-7 = 2p, 8-15 = 2p + 1 (a scale per 32 elements); or 4p + lane / 4 (per 16). */
INL __m512i idx32(int p) {
    return _mm512_add_epi32(_mm512_set1_epi32(2 * p),
                            _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7,
                                                               6, 5, 4, 3, 2, 1, 0), 3));
}
INL __m512i idx16(int p) {
    return _mm512_add_epi32(_mm512_set1_epi32(4 * p),
                            _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7,
                                                               6, 5, 4, 3, 2, 1, 0), 2));
}

/* Repeat a statement for v = 0 .. NV - 1 with v a constant (so per-vector arrays stay in
 * registers). */
#define FORV(NV, ...)                                                                          \
    do {                                                                                       \
        {                                                                                      \
            const int v = 0;                                                                   \
            __VA_ARGS__;                                                                       \
        }                                                                                      \
        if ((NV) > 1) {                                                                        \
            const int v = 1;                                                                   \
            __VA_ARGS__;                                                                       \
        }                                                                                      \
        if ((NV) > 2) {                                                                        \
            const int v = 2;                                                                   \
            __VA_ARGS__;                                                                       \
        }                                                                                      \
        if ((NV) > 3) {                                                                        \
            const int v = 3;                                                                   \
            __VA_ARGS__;                                                                       \
        }                                                                                      \
    } while (0)

/* Codes with a fixed offset 2^K (c = U - 2^K, U unsigned): the lane dots of U and x8 started
 * from 2^K times x8's minus lane sums (nls) are exactly sum c * x8 (prepared once per x, not
 * -128 * (the lane sums of c) per pair). */
#define STEP_O(ACC, X, U, K, WSC, P)                                                          \
    do {                                                                                       \
        __m512i o_ = _mm512_slli_epi32(_mm512_loadu_si512((const void *)((X).nls + 16 * (P))), (K)); \
        __m512i t_ = _mm512_dpbusd_epi32(o_, (U),                                              \
                                         _mm512_loadu_si512((const void *)((X).q + 64 * (P)))); \
        __m512 s_ = _mm512_mul_ps((WSC), _mm512_loadu_ps((X).dxe + 16 * (P)));                 \
        (ACC) = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t_), s_, (ACC));                            \
    } while (0)

/* acc += (float)(u . x8 lanes) * (wsc * dxe) for the pair P of vector X (u unsigned). */
#define STEP(ACC, X, U, WSC, P)                                                                \
    do {                                                                                       \
        __m512i t_ = _mm512_dpbusd_epi32(_mm512_setzero_si512(), (U),                          \
                                         _mm512_loadu_si512((const void *)((X).q + 64 * (P)))); \
        __m512 s_ = _mm512_mul_ps((WSC), _mm512_loadu_ps((X).dxe + 16 * (P)));                 \
        (ACC) = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t_), s_, (ACC));                            \
    } while (0)

/* ---- K-quants, one 256-element super-block (4 pairs) at a time ---- */

/* The 8 six-bit scales and mins of a Q4_K / Q5_K super-block as bytes of two 64-bit words
 * (sc[j] = s[j] & 63, mn[j] = s[j + 4] & 63 for j < 4; sc[j + 4] = s[j + 8] & 15 | (s[j] >> 6)
 * << 4, mn[j + 4] = s[j + 8] >> 4 | (s[j + 4] >> 6) << 4), built in general registers: a vector
 * load of bytes just stored one by one would stall on store forwarding. */
static inline void k4_scales(const uint8_t *s, uint64_t *sc, uint64_t *mn) {
    uint32_t a, b, c;
    memcpy(&a, s, 4);
    memcpy(&b, s + 4, 4);
    memcpy(&c, s + 8, 4);
    uint32_t sh = (c & 0x0f0f0f0fu) | ((a >> 6) & 0x03030303u) << 4;
    uint32_t mh = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 6) & 0x03030303u) << 4;
    *sc = (uint64_t)(a & 0x3f3f3f3fu) | (uint64_t)sh << 32;
    *mn = (uint64_t)(b & 0x3f3f3f3fu) | (uint64_t)mh << 32;
}

INL __m256 u8x8_ps(uint64_t v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)v)));
}

/* Q4_K (Q5 = 0) and Q5_K (Q5 = 1). */
INL void k45_rows(const int Q5, float *const *ys, const uint8_t *W, size_t rb, int cols,
                  const void *const *xp, const int NV, int r0, int r1) {
    const size_t bb = Q5 ? 176 : 144;
    const int ns = cols / 256;
    x8v X[4];
    FORV(NV, X[v] = x8_at(xp[v], cols));
    __m512 fa[4][4];
    __m256 fc[4][4];
    int nk = 0; /* rows waiting in fa / fc */
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        __m512 acc[4][2];
        __m256 corr[4];
        FORV(NV, acc[v][0] = acc[v][1] = _mm512_setzero_ps(); corr[v] = _mm256_setzero_ps());
        for (int s = 0; s < ns; s++) {
            const uint8_t *b = w + bb * (size_t)s, *qs = b + (Q5 ? 48 : 16);
            uint64_t sc, mn;
            k4_scales(b + 4, &sc, &mn);
            __m256 dd = _mm256_cvtph_ps(_mm_cvtsi32_si128((int)(b[0] | b[1] << 8 | b[2] << 16 |
                                                                (uint32_t)b[3] << 24)));
            __m256 scf = _mm256_mul_ps(_mm256_permutevar8x32_ps(dd, _mm256_setzero_si256()),
                                       u8x8_ps(sc));
            __m256 mnf = _mm256_mul_ps(
                _mm256_permutevar8x32_ps(_mm256_sub_ps(_mm256_setzero_ps(), dd),
                                         _mm256_set1_epi32(1)),
                u8x8_ps(mn));
            FORV(NV, corr[v] = _mm256_fmadd_ps(mnf, _mm256_loadu_ps(X[v].s32 + 8 * s), corr[v]));
            __m512 sz = _mm512_castps256_ps512(scf);
            __m256i qh = Q5 ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                __m512i u = nib_k(_mm256_loadu_si256((const __m256i *)(qs + 32 * p)));
                if (Q5) {
                    __mmask32 ka = _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << 2 * p)));
                    __mmask32 kb =
                        _mm256_test_epi8_mask(qh, _mm256_set1_epi8((char)(1 << (2 * p + 1))));
                    __mmask64 k = (__mmask64)ka | (__mmask64)kb << 32;
                    u = _mm512_mask_add_epi8(u, k, u, _mm512_set1_epi8(16));
                }
                __m512 wsc = _mm512_permutexvar_ps(idx32(p), sz);
                int P = 4 * s + p;
                FORV(NV, STEP(acc[v][p & 1], X[v], u, wsc, P));
            }
        }
        FORV(NV, fa[v][nk] = _mm512_add_ps(acc[v][0], acc[v][1]); fc[v][nk] = corr[v]);
        ROW_END(NV, ys, r, fa, fc, nk, 1);
    }
    ROWS_TAIL(NV, ys, r1, fa, fc, nk, 1);
}

INL void k6_rows(float *const *ys, const uint8_t *W, size_t rb, int cols, const void *const *xp,
                 const int NV, int r0, int r1) {
    const int ns = cols / 256;
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    const __m512i cnt_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i cnt_b = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    x8v X[4];
    FORV(NV, X[v] = x8_at(xp[v], cols));
    __m512 fa[4][4];
    __m256 fc[4][4];
    int nk = 0; /* rows waiting in fa / fc */
    for (int r = r0; r < r1; r++) {
        const uint8_t *w = W + (size_t)r * rb;
        __m512 acc[4][2];
        FORV(NV, acc[v][0] = acc[v][1] = _mm512_setzero_ps());
        for (int s = 0; s < ns; s++) {
            const uint8_t *b = w + 210 * (size_t)s;
            __m512 scf = _mm512_mul_ps(
                _mm512_set1_ps(f16_at(b + 208)),
                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(b + 192)))));
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m512i L = _mm512_loadu_si512((const void *)(b + 64 * h));
                __m256i qv = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
                __m512i Q = _mm512_inserti64x4(_mm512_castsi256_si512(qv), qv, 1);
                __m512i u0 = _mm512_or_si512(_mm512_and_si512(L, m4),
                                             _mm512_and_si512(_mm512_sllv_epi16(Q, cnt_a), m30));
                __m512i u1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4),
                                             _mm512_and_si512(_mm512_srlv_epi16(Q, cnt_b), m30));
                __m512 w0 = _mm512_permutexvar_ps(idx16(2 * h), scf);
                __m512 w1 = _mm512_permutexvar_ps(idx16(2 * h + 1), scf);
                int P = 4 * s + 2 * h;
                FORV(NV, STEP_O(acc[v][0], X[v], u0, 5, w0, P)); /* codes q + 32 */
                FORV(NV, STEP_O(acc[v][1], X[v], u1, 5, w1, P + 1));
            }
        }
        FORV(NV, fa[v][nk] = _mm512_add_ps(acc[v][0], acc[v][1]));
        ROW_END(NV, ys, r, fa, fc, nk, 0);
    }
    ROWS_TAIL(NV, ys, r1, fa, fc, nk, 0);
}

/* ---- instantiation per type and group size ---- */

typedef void (*kv_fn)(float *const *ys, const uint8_t *W, size_t rb, int cols,
                      const void *const *xp, int r0, int r1);

#define DEF_NV(NAME, CALL)                                                                     \
    static TGT void NAME##_1(float *const *ys, const uint8_t *W, size_t rb, int cols,          \
                             const void *const *xp, int r0, int r1) {                          \
        CALL(1);                                                                               \
    }                                                                                          \
    static TGT void NAME##_2(float *const *ys, const uint8_t *W, size_t rb, int cols,          \
                             const void *const *xp, int r0, int r1) {                          \
        CALL(2);                                                                               \
    }                                                                                          \
    static TGT void NAME##_3(float *const *ys, const uint8_t *W, size_t rb, int cols,          \
                             const void *const *xp, int r0, int r1) {                          \
        CALL(3);                                                                               \
    }                                                                                          \
    static TGT void NAME##_4(float *const *ys, const uint8_t *W, size_t rb, int cols,          \
                             const void *const *xp, int r0, int r1) {                          \
        CALL(4);                                                                               \
    }                                                                                          \
    static const kv_fn NAME##_tab[4] = {NAME##_1, NAME##_2, NAME##_3, NAME##_4};

#define CALL_Q4_K(N) k45_rows(0, ys, W, rb, cols, xp, N, r0, r1)
#define CALL_Q5_K(N) k45_rows(1, ys, W, rb, cols, xp, N, r0, r1)
#define CALL_Q6_K(N) k6_rows(ys, W, rb, cols, xp, N, r0, r1)
DEF_NV(kq4_k, CALL_Q4_K)
DEF_NV(kq5_k, CALL_Q5_K)
DEF_NV(kq6_k, CALL_Q6_K)

static const kv_fn *kv_table(t2_dtype t) {
    switch (t) {
    case T2_Q4_K: return kq4_k_tab;
    case T2_Q5_K: return kq5_k_tab;
    case T2_Q6_K: return kq6_k_tab;
    default: return NULL;
    }
}

void t2_kv_rows(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                const void *const *x8, int nv, int r0, int r1) {
    if (r1 <= r0) return;
    if (t == T2_Q8_0 || t == T2_Q4_0 || t == T2_Q4_1 || t == T2_Q5_0 || t == T2_Q5_1) {
        t2_kvt_rows(t, ys, W, rb, cols, x8, nv, r0, r1); /* quants_vnni_tile.c */
        return;
    }
    const kv_fn *tab = kv_table(t);
    if (!tab) return;
    for (int v0 = 0; v0 < nv; v0 += 4) {
        int n = nv - v0 < 4 ? nv - v0 : 4;
        tab[n - 1](ys + v0, W, rb, cols, x8 + v0, r0, r1);
    }
}

#endif
