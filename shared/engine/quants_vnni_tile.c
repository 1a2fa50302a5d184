/* quants_vnni_tile.c - the legacy 32-element formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) times x8
 * (quants_vnni.h) on AVX-512 VNNI, 16 rows of W at a time, one row per 32-bit lane.
 *
 * A tile of 16 rows is packed per 32-element block: the rows' signed codes c (the value's
 * integer, offsets applied: Q4_0 nibble - 8, Q5_0 five bits - 16, Q8_0 as stored; Q4_1 / Q5_1
 * their unsigned codes) transposed so that 4-byte group j of every row is one 64-byte vector
 * (lane r = row r), -128 * the sum of each row's codes, and the rows' scales (and mins) as f32.
 * A vector's block b is then 8 vpdpbusd of x8 + 128 (x8's qu, 4 bytes broadcast) with the 8 code
 * vectors, starting from the -128 sums: lane r holds row r's exact integer dot of the block. Per
 * output the arithmetic is one chain over the blocks in order,
 *     acc = fma((float)idot_b, d_b * dx_b, acc)   (then, with a min, acc = fma(m_b, s32_b, acc))
 * so it does not depend on how many vectors are computed together, on the tile's first row or on
 * the thread: t2_matvec, t2_matvec_batch and t2_matmul's rows are bit-identical. The packing is
 * done once per tile and chunk of blocks and shared by every vector passed (t2_qmm passes a
 * whole prompt), which is what makes prompts fast; one vector pays it alone.
 */
#include "engine/quants_vnni.h"

#if defined(__x86_64__)
#include "engine/quants.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define TGT                                                                                    \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline)) TGT

#define KT_CHUNK 32 /* blocks packed at a time (32 x 704 bytes: in L1 with the vectors' x) */
#define KT_NV 8     /* vectors per pass over a packed chunk (accumulators in registers) */

/* One block of a 16-row tile. */
typedef struct kt_blk {
    int8_t c[8][64];  /* c[j][4 r + k]: row r, element 4 j + k of the block */
    int32_t negc[16]; /* -128 * sum of row r's 32 codes */
    float d[16], m[16];
} kt_blk;

/* x8's arrays (the layout of quants_vnni.h). */
typedef struct kt_x {
    const uint8_t *qu;
    const float *dxe, *s32;
} kt_x;

static kt_x kt_x_at(const void *p, int cols) {
    const uint8_t *b = p;
    size_t o1 = T2_X8_A64(cols), o2 = o1 + T2_X8_A64(cols);
    kt_x v = {b + o2 + T2_X8_A64((size_t)cols / 8), (const float *)(b + o1),
              (const float *)(b + o2)};
    return v;
}

/* Codes of one block of two rows: [row A's 32 | row B's 32], signed. */
INL __m512i kt_codes(t2_dtype T, const uint8_t *A, const uint8_t *B) {
    if (T == T2_Q8_0)
        return _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(A + 2))),
            _mm256_loadu_si256((const __m256i *)(B + 2)), 1);
    int qo = T == T2_Q4_0 ? 2 : T == T2_Q4_1 ? 4 : T == T2_Q5_0 ? 6 : 8;
    __m256i y = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(A + qo))),
        _mm_loadu_si128((const __m128i *)(B + qo)), 1);
    const __m256i m = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(y, m), hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); /* Alo Blo Ahi Bhi */
    __m512i u = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));   /* Alo Ahi Blo Bhi */
    if (T == T2_Q5_0 || T == T2_Q5_1) {
        uint32_t ha, hb;
        memcpy(&ha, A + qo - 4, 4);
        memcpy(&hb, B + qo - 4, 4);
        __mmask64 k = (__mmask64)ha | (__mmask64)hb << 32;
        u = _mm512_mask_add_epi8(u, k, u, _mm512_set1_epi8(16));
    }
    if (T == T2_Q4_0) u = _mm512_sub_epi8(u, _mm512_set1_epi8(8));
    if (T == T2_Q5_0) u = _mm512_sub_epi8(u, _mm512_set1_epi8(16));
    return u;
}

/* Pack blocks [b0, b0 + n) of rows [0, nr) (nr <= 16) of W (row stride rb) into out[0, n). */
INL void kt_pack(t2_dtype T, kt_blk *out, const uint8_t *W, size_t rb, int nr, int b0, int n) {
    const size_t bb = t2_quant_block_bytes(T);
    const __m512i rowoff = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32((int)rb));
    const __mmask16 live = (__mmask16)((1u << nr) - 1);
    const __m512i i0 = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i i1 = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    static const uint8_t zero[64];
    for (int b = 0; b < n; b++) {
        const uint8_t *base = W + bb * (size_t)(b0 + b);
        __m512i a[8], t[8], u[8];
        for (int i = 0; i < 8; i++) {
            const uint8_t *A = i < nr ? base + rb * (size_t)i : zero;
            _mm_prefetch((const char *)A + 16 * rb, _MM_HINT_T0);
            _mm_prefetch((const char *)A + 16 * rb + 8 * rb, _MM_HINT_T0);
            const uint8_t *B = i + 8 < nr ? base + rb * (size_t)(i + 8) : zero;
            a[i] = kt_codes(T, A, B);
            if (i >= nr) a[i] = _mm512_mask_mov_epi64(_mm512_setzero_si512(), 0xf0, a[i]);
            if (i + 8 >= nr) a[i] = _mm512_mask_mov_epi64(_mm512_setzero_si512(), 0x0f, a[i]);
        }
        /* 8 x 8 transposes of dwords in both 256-bit halves (rows i and i + 8) */
        for (int i = 0; i < 4; i++) {
            t[2 * i] = _mm512_unpacklo_epi32(a[2 * i], a[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(a[2 * i], a[2 * i + 1]);
        }
        for (int h = 0; h < 2; h++) {
            u[4 * h + 0] = _mm512_unpacklo_epi64(t[4 * h], t[4 * h + 2]);
            u[4 * h + 1] = _mm512_unpackhi_epi64(t[4 * h], t[4 * h + 2]);
            u[4 * h + 2] = _mm512_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
            u[4 * h + 3] = _mm512_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
        }
        kt_blk *o = out + b;
        __m512i sum = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            __m512i lo = _mm512_permutex2var_epi64(u[j], i0, u[4 + j]); /* element group j */
            __m512i hi = _mm512_permutex2var_epi64(u[j], i1, u[4 + j]); /* group j + 4 */
            _mm512_store_si512((void *)o->c[j], lo);
            _mm512_store_si512((void *)o->c[j + 4], hi);
            sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi8((char)0x80), lo);
            sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi8((char)0x80), hi);
        }
        _mm512_store_si512((void *)o->negc, _mm512_sub_epi32(_mm512_setzero_si512(), sum));
        __m512i g = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rowoff, base, 1);
        _mm512_store_ps(o->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g)));
        if (T == T2_Q4_1 || T == T2_Q5_1)
            _mm512_store_ps(o->m, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16))));
    }
}

/* acc[v] over the n packed blocks (blocks b0.. of the row) for NV vectors. */
INL void kt_run(const int has_m, const kt_blk *tb, int n, int b0, const kt_x *X, const int NV,
                __m512 *acc) {
    for (int b = 0; b < n; b++) {
        const kt_blk *o = tb + b;
        const int bi = b0 + b;
        __m512i c[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) c[j] = _mm512_load_si512((const void *)o->c[j]);
        __m512i nc = _mm512_load_si512((const void *)o->negc);
        __m512 d = _mm512_load_ps(o->d);
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            const uint8_t *q = X[v].qu + 32 * (size_t)bi;
            __m512i ia = nc;
            /* broadcasts straight from memory (folded into vpdpbusd's {1to16} operand); through
             * general registers they cost a vector uop each */
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                ia = _mm512_dpbusd_epi32(ia, _mm512_broadcastd_epi32(_mm_loadu_si32(q + 4 * j)),
                                         c[j]);
            __m512 s = _mm512_mul_ps(d, _mm512_set1_ps(X[v].dxe[8 * bi]));
            acc[v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), s, acc[v]);
            if (has_m)
                acc[v] = _mm512_fmadd_ps(_mm512_load_ps(o->m), _mm512_set1_ps(X[v].s32[bi]),
                                         acc[v]);
        }
    }
}

/* NV vectors over one packed chunk: accumulators from / to ys (exact f32 round trips). */
INL void kt_pass(const int has_m, const kt_blk *tb, int n, int b0, const kt_x *X,
                 float *const *ys, int r0, __mmask16 live, const int NV) {
    __m512 acc[KT_NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++)
        acc[v] = b0 ? _mm512_maskz_loadu_ps(live, ys[v] + r0) : _mm512_setzero_ps();
    kt_run(has_m, tb, n, b0, X, NV, acc);
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(ys[v] + r0, live, acc[v]);
}

typedef void (*kt_pass_fn)(const kt_blk *tb, int n, int b0, const kt_x *X, float *const *ys,
                           int r0, __mmask16 live);
#define KT_DEF(NV)                                                                             \
    static TGT void kt_pass##NV(const kt_blk *tb, int n, int b0, const kt_x *X,                \
                                float *const *ys, int r0, __mmask16 live) {                     \
        kt_pass(0, tb, n, b0, X, ys, r0, live, NV);                                            \
    }                                                                                          \
    static TGT void kt_passm##NV(const kt_blk *tb, int n, int b0, const kt_x *X,               \
                                 float *const *ys, int r0, __mmask16 live) {                    \
        kt_pass(1, tb, n, b0, X, ys, r0, live, NV);                                            \
    }
KT_DEF(1)
KT_DEF(2)
KT_DEF(3)
KT_DEF(4)
KT_DEF(5)
KT_DEF(6)
KT_DEF(7)
KT_DEF(8)
static const kt_pass_fn kt_tab[2][KT_NV] = {
    {kt_pass1, kt_pass2, kt_pass3, kt_pass4, kt_pass5, kt_pass6, kt_pass7, kt_pass8},
    {kt_passm1, kt_passm2, kt_passm3, kt_passm4, kt_passm5, kt_passm6, kt_passm7, kt_passm8}};

#define KT_PACK(T)                                                                             \
    static TGT void kt_pack_##T(kt_blk *out, const uint8_t *W, size_t rb, int nr, int b0,      \
                                int n) {                                                       \
        kt_pack(T2_##T, out, W, rb, nr, b0, n);                                                \
    }
KT_PACK(Q8_0)
KT_PACK(Q4_0)
KT_PACK(Q4_1)
KT_PACK(Q5_0)
KT_PACK(Q5_1)


static void t2_kvt_pack_rows(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                             const void *const *x8, int nv, int r0, int r1);

/* ---- few vectors: no packing; per row the lane dots of a pair of blocks, reduced to a vector
 * of the 16 rows' block dots (one row per lane, as the packed tile gives them) ---- */

/* Unsigned codes u = c + off (off: the type's kt_off) of one pair of blocks of one row. */
INL __m512i kt_ucodes(t2_dtype T, const uint8_t *A, const uint8_t *B) {
    if (T == T2_Q8_0)
        return _mm512_xor_si512(kt_codes(T, A, B), _mm512_set1_epi8((char)0x80));
    __m512i u = kt_codes(T, A, B);
    if (T == T2_Q4_0) u = _mm512_add_epi8(u, _mm512_set1_epi8(8));
    if (T == T2_Q5_0) u = _mm512_add_epi8(u, _mm512_set1_epi8(16));
    return u;
}

static int kt_off(t2_dtype T) {
    return T == T2_Q8_0 ? 128 : T == T2_Q4_0 ? 8 : T == T2_Q5_0 ? 16 : 0;
}

/* 16 vectors of 16 int32 lanes (row r: lanes 0-7 block A, 8-15 block B) -> *ia, *ib: row r's
 * sums of lanes 0-7 and 8-15 in lane r. */
INL void kt_reduce(__m512i *D, __m512i *ia, __m512i *ib) {
    __m512i E[8], F[4];
    for (int i = 0; i < 8; i++)
        E[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(D[2 * i], D[2 * i + 1]),
                                _mm512_unpackhi_epi32(D[2 * i], D[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        F[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(E[2 * i], E[2 * i + 1]),
                                _mm512_unpackhi_epi64(E[2 * i], E[2 * i + 1]));
    /* F[k] 128-bit lane L: rows 4k..4k+3, sums of lanes 4L..4L+3 */
    __m512i w01 = _mm512_add_epi32(_mm512_shuffle_i32x4(F[0], F[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_i32x4(F[0], F[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512i w23 = _mm512_add_epi32(_mm512_shuffle_i32x4(F[2], F[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_i32x4(F[2], F[3], _MM_SHUFFLE(3, 1, 3, 1)));
    *ia = _mm512_shuffle_i32x4(w01, w23, _MM_SHUFFLE(2, 0, 2, 0));
    *ib = _mm512_shuffle_i32x4(w01, w23, _MM_SHUFFLE(3, 1, 3, 1));
}

/* Rows [r, r + nr) (nr <= 16) for NV vectors; S[v][b]: sum of vector v's q over block b. */
INL void kt_mv16(t2_dtype T, float *const *ys, const uint8_t *w, size_t rb, int cols,
                 const void *const *x8, const int32_t *const *S, const int NV, int r, int nr) {
    const size_t bb = t2_quant_block_bytes(T);
    const int nb = cols / 32, off = kt_off(T), has_m = T == T2_Q4_1 || T == T2_Q5_1;
    const __mmask16 live = (__mmask16)((1u << nr) - 1);
    const __m512i rowoff = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32((int)rb));
    static const uint8_t zero[64];
    const uint8_t *rows[16];
    for (int i = 0; i < 16; i++) rows[i] = i < nr ? w + rb * (size_t)i : zero;
    const int8_t *q[4];
    const float *dxe[4], *s32[4];
    for (int v = 0; v < NV; v++) {
        const uint8_t *p = x8[v];
        q[v] = (const int8_t *)p;
        dxe[v] = (const float *)(p + T2_X8_A64(cols));
        s32[v] = (const float *)(p + 2 * T2_X8_A64(cols));
    }
    __m512 acc[4];
    for (int v = 0; v < NV; v++) acc[v] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b += 2) {
        __m512i D[4][16];
        for (int i = 0; i < 16; i++) {
            const uint8_t *A = rows[i] + (rows[i] == zero ? 0 : bb * (size_t)b);
            /* the next 16 rows, a group's time ahead: 16 rows stepped together defeat the
             * hardware prefetchers (measured: most of the time went to these loads) */
            _mm_prefetch((const char *)A + 16 * rb, _MM_HINT_T0);
            _mm_prefetch((const char *)A + 16 * rb + 64, _MM_HINT_T0);
            __m512i u = kt_ucodes(T, A, rows[i] == zero ? zero : A + bb);
            for (int v = 0; v < NV; v++)
                D[v][i] = _mm512_dpbusd_epi32(
                    _mm512_setzero_si512(), u,
                    _mm512_loadu_si512((const void *)(q[v] + 32 * (size_t)b)));
        }
        const uint8_t *base = w + bb * (size_t)b;
        const __m512i z = _mm512_setzero_si512();
        __m512i ga = _mm512_mask_i32gather_epi32(z, live, rowoff, base, 1);
        __m512i gb = _mm512_mask_i32gather_epi32(z, live, rowoff, base + bb, 1);
        __m512 da = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(ga));
        __m512 db = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(gb));
        __m512 ma = _mm512_setzero_ps(), mb = _mm512_setzero_ps();
        if (has_m) {
            ma = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(ga, 16)));
            mb = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(gb, 16)));
        }
        for (int v = 0; v < NV; v++) {
            __m512i ia, ib;
            kt_reduce(D[v], &ia, &ib);
            ia = _mm512_sub_epi32(ia, _mm512_set1_epi32(off * S[v][b]));
            ib = _mm512_sub_epi32(ib, _mm512_set1_epi32(off * S[v][b + 1]));
            __m512 sa = _mm512_mul_ps(da, _mm512_set1_ps(dxe[v][8 * b]));
            acc[v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), sa, acc[v]);
            if (has_m) acc[v] = _mm512_fmadd_ps(ma, _mm512_set1_ps(s32[v][b]), acc[v]);
            __m512 sb = _mm512_mul_ps(db, _mm512_set1_ps(dxe[v][8 * b + 8]));
            acc[v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ib), sb, acc[v]);
            if (has_m) acc[v] = _mm512_fmadd_ps(mb, _mm512_set1_ps(s32[v][b + 1]), acc[v]);
        }
    }
    for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(ys[v] + r, live, acc[v]);
}

/* Sums of q per 32-block of a prepared vector. */
INL void kt_qsums(const void *x8, int cols, int32_t *S) {
    const int8_t *q = x8;
    for (int b = 0; b < cols / 32; b++) {
        __m256i y = _mm256_loadu_si256((const __m256i *)(q + 32 * b));
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), y);
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
        S[b] = _mm_cvtsi128_si32(h);
    }
}

#define KT_MV(T, NV)                                                                           \
    static TGT void kt_mv_##T##_##NV(float *const *ys, const uint8_t *w, size_t rb, int cols,  \
                                     const void *const *x8, const int32_t *const *S, int r,    \
                                     int nr) {                                                 \
        kt_mv16(T2_##T, ys, w, rb, cols, x8, S, NV, r, nr);                                    \
    }
#define KT_MV_T(T)                                                                             \
    KT_MV(T, 1)                                                                                \
    KT_MV(T, 2)                                                                                \
    KT_MV(T, 3)
KT_MV_T(Q8_0)
KT_MV_T(Q4_0)
KT_MV_T(Q4_1)
KT_MV_T(Q5_0)
KT_MV_T(Q5_1)
typedef void (*kt_mv_fn)(float *const *ys, const uint8_t *w, size_t rb, int cols,
                         const void *const *x8, const int32_t *const *S, int r, int nr);
#define KT_MV_ROW(T) {kt_mv_##T##_1, kt_mv_##T##_2, kt_mv_##T##_3}

/* nv < KT_MV_MAX vectors without packing (one call, 2048 x 768, hot: 1 vector 0.06 ms against
 * 0.08 before this file; 2: 0.09 vs 0.11 packed; 3: 0.13 vs 0.11 packed). */
#define KT_MV_MAX 3
static TGT void kt_mv_rows(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                           const void *const *x8, int nv, int r0, int r1) {
    static const kt_mv_fn tab[5][3] = {KT_MV_ROW(Q8_0), KT_MV_ROW(Q4_0), KT_MV_ROW(Q4_1),
                                       KT_MV_ROW(Q5_0), KT_MV_ROW(Q5_1)};
    int ti = t == T2_Q8_0 ? 0 : t == T2_Q4_0 ? 1 : t == T2_Q4_1 ? 2 : t == T2_Q5_0 ? 3 : 4;
    int32_t sbuf[3][512], *heap = NULL;
    const int32_t *S[3];
    int nb = cols / 32;
    int32_t *sp = nb <= 512 ? &sbuf[0][0] : (heap = malloc(sizeof(int32_t) * 3 * (size_t)nb));
    if (!sp) { /* no memory for the sums: the packed path needs none */
        t2_kvt_pack_rows(t, ys, W, rb, cols, x8, nv, r0, r1);
        return;
    }
    int stride = nb <= 512 ? 512 : nb;
    for (int v = 0; v < nv; v++) {
        kt_qsums(x8[v], cols, sp + (size_t)stride * v);
        S[v] = sp + (size_t)stride * v;
    }
    for (int r = r0; r < r1; r += 16) {
        int nr = r1 - r < 16 ? r1 - r : 16;
        tab[ti][nv - 1](ys, (const uint8_t *)W + rb * (size_t)r, rb, cols, x8, S, r, nr);
    }
    free(heap);
}

static TGT void t2_kvt_pack_rows(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                     const void *const *x8, int nv, int r0, int r1) {
    void (*pack)(kt_blk *, const uint8_t *, size_t, int, int, int) =
        t == T2_Q8_0   ? kt_pack_Q8_0
        : t == T2_Q4_0 ? kt_pack_Q4_0
        : t == T2_Q4_1 ? kt_pack_Q4_1
        : t == T2_Q5_0 ? kt_pack_Q5_0
                       : kt_pack_Q5_1;
    const int has_m = t == T2_Q4_1 || t == T2_Q5_1, nb = cols / 32;
    _Alignas(64) kt_blk tile[KT_CHUNK];
    kt_x X[KT_NV];
    for (int r = r0; r < r1; r += 16) {
        int nr = r1 - r < 16 ? r1 - r : 16;
        __mmask16 live = (__mmask16)((1u << nr) - 1);
        const uint8_t *w = (const uint8_t *)W + rb * (size_t)r;
        for (int b0 = 0; b0 < nb; b0 += KT_CHUNK) {
            int n = nb - b0 < KT_CHUNK ? nb - b0 : KT_CHUNK;
            pack(tile, w, rb, nr, b0, n);
            for (int v0 = 0; v0 < nv; v0 += KT_NV) {
                int m = nv - v0 < KT_NV ? nv - v0 : KT_NV;
                for (int v = 0; v < m; v++) X[v] = kt_x_at(x8[v0 + v], cols);
                kt_tab[has_m][m - 1](tile, n, b0, X, ys + v0, r, live);
            }
        }
    }
}

void t2_kvt_rows(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                 const void *const *x8, int nv, int r0, int r1) {
    if (nv < KT_MV_MAX) kt_mv_rows(t, ys, W, rb, cols, x8, nv, r0, r1);
    else t2_kvt_pack_rows(t, ys, W, rb, cols, x8, nv, r0, r1);
}

#endif
