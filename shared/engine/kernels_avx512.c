/* kernels_avx512.c - AVX-512 (F+BW+VL) variants of the matrix-vector kernels.
 *
 * Compiled without global -m flags: every function carries a target attribute and is only
 * called after kernels.c checked the CPU (see t2_kern_level). Each output row is computed with a
 * fixed sequence of operations that depends only on cols, so results do not depend on how rows
 * are split between threads.
 */
#if defined(__x86_64__)

#include "engine/kernels_simd.h"

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi,bmi2")))
#define TGT_INLINE static inline __attribute__((always_inline)) TGT


/* ---- element loaders: 16 weights at p (+ masked tail) as f32 ---- */

/* F32 weights: two 256-bit loads. 512-bit loads that straddle cache lines (weights not 64-byte
 * aligned: GGUF aligns tensors to 32 bytes, llama2.c files to 4) halved the DRAM bandwidth of a
 * core; 256-bit halves run at full speed at any alignment. */
TGT_INLINE __m512 ld_f32(const void *p) {
    const float *f = (const float *)p;
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(f)), _mm256_loadu_ps(f + 8), 1);
}
TGT_INLINE __m512 ldm_f32(__mmask16 m, const void *p) { return _mm512_maskz_loadu_ps(m, p); }
TGT_INLINE __m512 ld_f16(const void *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
TGT_INLINE __m512 ldm_f16(__mmask16 m, const void *p) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
TGT_INLINE __m512 ld_bf16(const void *p) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
TGT_INLINE __m512 ldm_bf16(__mmask16 m, const void *p) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* One row at a time: the weights of a thread's rows are then one sequential stream, which the
 * hardware prefetchers follow best (groups of rows sharing x loads measured 30-60 % slower from
 * DRAM for 2-byte and Q8_0 weights; software prefetching did not help either); x stays in L1.
 * Per row four accumulators:
 *   64-column steps feed a0..a3, then a 32-column step a0, a1, a 16-column step a2,
 *   the masked tail a3; y = reduce((a0 + a1) + (a2 + a3)).
 * ES = bytes per element, LD / LDM = loaders of 16 elements (plain / masked). */
#define DEF_ROWS(NAME, ES, LD, LDM)                                                            \
    TGT_INLINE float NAME##_row(const uint8_t *w, int cols, const float *x) {                  \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                            \
        int i = 0;                                                                             \
        for (; i + 64 <= cols; i += 64) {                                                      \
            const uint8_t *p = w + (size_t)i * ES;                                             \
            a0 = _mm512_fmadd_ps(LD(p), _mm512_loadu_ps(x + i), a0);                           \
            a1 = _mm512_fmadd_ps(LD(p + 16 * ES), _mm512_loadu_ps(x + i + 16), a1);            \
            a2 = _mm512_fmadd_ps(LD(p + 32 * ES), _mm512_loadu_ps(x + i + 32), a2);            \
            a3 = _mm512_fmadd_ps(LD(p + 48 * ES), _mm512_loadu_ps(x + i + 48), a3);            \
        }                                                                                      \
        if (i + 32 <= cols) {                                                                  \
            a0 = _mm512_fmadd_ps(LD(w + (size_t)i * ES), _mm512_loadu_ps(x + i), a0);          \
            a1 = _mm512_fmadd_ps(LD(w + (size_t)(i + 16) * ES), _mm512_loadu_ps(x + i + 16), a1); \
            i += 32;                                                                           \
        }                                                                                      \
        if (i + 16 <= cols) {                                                                  \
            a2 = _mm512_fmadd_ps(LD(w + (size_t)i * ES), _mm512_loadu_ps(x + i), a2);          \
            i += 16;                                                                           \
        }                                                                                      \
        if (i < cols) {                                                                        \
            __mmask16 m = (__mmask16)((1u << (cols - i)) - 1);                                 \
            a3 = _mm512_fmadd_ps(LDM(m, w + (size_t)i * ES), _mm512_maskz_loadu_ps(m, x + i), a3); \
        }                                                                                      \
        return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))); \
    }                                                                                          \
    TGT void t2_k512_matvec_##NAME(float *y, const void *W, size_t rb, int cols, const float *x, \
                                   int r0, int r1) {                                           \
        const uint8_t *w = (const uint8_t *)W;                                                 \
        for (int r = r0; r < r1; r++) y[r] = NAME##_row(w + (size_t)r * rb, cols, x);         \
    }

DEF_ROWS(f32, 4, ld_f32, ldm_f32)
DEF_ROWS(f16, 2, ld_f16, ldm_f16)
DEF_ROWS(bf16, 2, ld_bf16, ldm_bf16)

/* ---- batched rows (t2_matvec_batch): one row against a group of G <= 4 vectors ----
 * Each 16-column chunk of the row is loaded (and converted) once and FMA'd into every vector's
 * accumulators (16 of them, all in registers). Per vector the accumulators a0..a3, the order of
 * the steps, the tail and the final reduction are exactly NAME##_row's, so every output is
 * bit-identical to the single-vector kernel's. When all the x fit in L1 (BATCH_X_L1), every
 * group takes a row in turn (one weight stream, the row rereads from L1); otherwise rows go in
 * blocks of BATCH_BLOCK, the first group streaming a block from memory and the next ones
 * rereading it from L2, so that a group's x stays in L1. (Measured on Zen 5, 134M shapes, 8
 * vectors: tiles of 2 rows x 3 vectors were ~20 % faster from cache but up to 2x slower from
 * DRAM, two row streams again; row by row with 8 x of 2048 columns, 2x slower than blocks;
 * blocks with 768 columns, ~10 % slower than row by row.) */
#define BATCH_G 4
#define BATCH_BLOCK 32
#define BATCH_X_L1 (32 * 1024) /* all x up to this many bytes: rows one at a time (blk = 1) */
/* S(g) for g = 0 .. G - 1, written out: G is a constant at every call site, so this is
 * straight-line code with constant indices and the accumulator arrays live in registers (clang
 * 14 does not unroll such loops before promoting arrays, even with an unroll pragma). */
#define FOR_G(S)                                                                               \
    do {                                                                                       \
        S(0);                                                                                  \
        if (G > 1) S(1);                                                                       \
        if (G > 2) S(2);                                                                       \
        if (G > 3) S(3);                                                                       \
    } while (0)

/* FNAME(ys, W, rb, cols, xs, nb, r0, r1): rows [r0, r1) against nb vectors by ROWG(ys, r, row,
 * cols, xs, G), G a constant per call site. */
#define DEF_BATCH_DRIVER(FNAME, ROWG, XT)                                                      \
    TGT void FNAME(float *const *ys, const void *W, size_t rb, int cols, XT xs, int nb, int r0, \
                   int r1) {                                                                   \
        const uint8_t *w = (const uint8_t *)W;                                                 \
        /* nb in the fewest groups of <= BATCH_G, sizes as even as possible */                 \
        int ng = (nb + BATCH_G - 1) / BATCH_G, gsz = ng ? nb / ng : 0, gbig = ng ? nb % ng : 0; \
        int blk = (size_t)nb * (size_t)cols * 4 <= BATCH_X_L1 ? 1 : BATCH_BLOCK;               \
        for (int q0 = r0; q0 < r1; q0 += blk) {                                                \
            int q1 = q0 + blk < r1 ? q0 + blk : r1;                                            \
            for (int k = 0, b = 0; k < ng; k++) {                                              \
                int g = gsz + (k < gbig);                                                      \
                for (int r = q0; r < q1; r++) {                                                \
                    const uint8_t *wr = w + (size_t)r * rb;                                    \
                    switch (g) {                                                               \
                    case 4: ROWG(ys + b, r, wr, cols, xs + b, 4); break;                       \
                    case 3: ROWG(ys + b, r, wr, cols, xs + b, 3); break;                       \
                    case 2: ROWG(ys + b, r, wr, cols, xs + b, 2); break;                       \
                    default: ROWG(ys + b, r, wr, cols, xs + b, 1); break;                      \
                    }                                                                          \
                }                                                                              \
                b += g;                                                                        \
            }                                                                                  \
        }                                                                                      \
    }

/* The per-vector statements of NAME##_row_g (locals a0..a3, w0..w3, xs, i, m). */
#define B_ZERO(g) (a0[g] = a1[g] = a2[g] = a3[g] = _mm512_setzero_ps())
#define B_FMA(A, W, g, c) (A[g] = _mm512_fmadd_ps(W, _mm512_loadu_ps(xs[g] + (c)), A[g]))
#define B_STEP64(g)                                                                            \
    (B_FMA(a0, w0, g, i), B_FMA(a1, w1, g, i + 16), B_FMA(a2, w2, g, i + 32), B_FMA(a3, w3, g, i + 48))
#define B_STEP32(g) (B_FMA(a0, w0, g, i), B_FMA(a1, w1, g, i + 16))
#define B_STEP16(g) B_FMA(a2, w0, g, i)
#define B_TAIL(g) (a3[g] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, xs[g] + i), a3[g]))
#define B_STORE(g)                                                                             \
    (ys[g][r] = _mm512_reduce_add_ps(                                                          \
         _mm512_add_ps(_mm512_add_ps(a0[g], a1[g]), _mm512_add_ps(a2[g], a3[g]))))

#define DEF_ROWS_BATCH(NAME, ES, LD, LDM)                                                      \
    TGT_INLINE void NAME##_row_g(float *const *ys, int r, const uint8_t *w, int cols,         \
                                 const float *const *xs, int G) {                             \
        __m512 a0[BATCH_G], a1[BATCH_G], a2[BATCH_G], a3[BATCH_G];                             \
        FOR_G(B_ZERO);                                                                         \
        int i = 0;                                                                             \
        for (; i + 64 <= cols; i += 64) {                                                      \
            const uint8_t *p = w + (size_t)i * ES;                                             \
            __m512 w0 = LD(p), w1 = LD(p + 16 * ES), w2 = LD(p + 32 * ES), w3 = LD(p + 48 * ES); \
            FOR_G(B_STEP64);                                                                   \
        }                                                                                      \
        if (i + 32 <= cols) {                                                                  \
            __m512 w0 = LD(w + (size_t)i * ES), w1 = LD(w + (size_t)(i + 16) * ES);           \
            FOR_G(B_STEP32);                                                                   \
            i += 32;                                                                           \
        }                                                                                      \
        if (i + 16 <= cols) {                                                                  \
            __m512 w0 = LD(w + (size_t)i * ES);                                                \
            FOR_G(B_STEP16);                                                                   \
            i += 16;                                                                           \
        }                                                                                      \
        if (i < cols) {                                                                        \
            __mmask16 m = (__mmask16)((1u << (cols - i)) - 1);                                 \
            __m512 w0 = LDM(m, w + (size_t)i * ES);                                            \
            FOR_G(B_TAIL);                                                                     \
        }                                                                                      \
        FOR_G(B_STORE);                                                                        \
    }                                                                                          \
    DEF_BATCH_DRIVER(t2_k512_matvecb_##NAME, NAME##_row_g, const float *const *)

DEF_ROWS_BATCH(f32, 4, ld_f32, ldm_f32)
DEF_ROWS_BATCH(f16, 2, ld_f16, ldm_f16)
DEF_ROWS_BATCH(bf16, 2, ld_bf16, ldm_bf16)

/* ---- Q8_0: blocks of an f16 scale d and 32 int8 q ----
 * x comes prepared by kernels.c (q8_prep_x): per 32-block an f32 scale dx and 32 int16 with
 * x ~= dx * x16, so each block is one exact integer dot product (vpmaddwd) and
 * y = sum_b (d_b * dx_b) * (q_b . x16_b). Converting int8 weights to f32 instead made the kernel
 * bound by vector-port throughput below the DRAM speed of two cores. */

TGT_INLINE __m512 q8_lo(const uint8_t *blk) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
}
TGT_INLINE __m512 q8_hi(const uint8_t *blk) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
}
TGT_INLINE __m512 q8_scale(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
    return _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* acc += (d * dx) * float(16 lanes of pairwise products q . x16) */
TGT_INLINE __m512 q8_block(const uint8_t *blk, const int16_t *xb, const float *dx, __m512 acc) {
    __m512i q = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(blk + 2)));
    __m512i p = _mm512_madd_epi16(q, _mm512_loadu_si512(xb));
    __m512 s = _mm512_mul_ps(q8_scale(blk), _mm512_set1_ps(*dx));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc);
}

/* Even blocks accumulate in a0, odd blocks in a1; y = reduce(a0 + a1). */
TGT_INLINE float q8_0_row(const uint8_t *w, int cols, const int16_t *x16, const float *dx) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int nb = cols / 32, b = 0;
    for (; b + 2 <= nb; b += 2) {
        a0 = q8_block(w + (size_t)b * 34, x16 + 32 * b, dx + b, a0);
        a1 = q8_block(w + (size_t)(b + 1) * 34, x16 + 32 * b + 32, dx + b + 1, a1);
    }
    if (b < nb) a0 = q8_block(w + (size_t)b * 34, x16 + 32 * b, dx + b, a0);
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

TGT void t2_k512_matvec_q8_0(float *y, const void *W, size_t rb, int cols, const void *xq, int r0,
                             int r1) {
    const uint8_t *w = (const uint8_t *)W;
    const int16_t *x16 = (const int16_t *)xq;
    const float *dx = (const float *)(x16 + cols);
    for (int r = r0; r < r1; r++) y[r] = q8_0_row(w + (size_t)r * rb, cols, x16, dx);
}

/* Batched: one row against G <= 4 prepared vectors (blocks and groups as for the float types);
 * per vector q8_0_row's operations (the int8 -> int16 widening and the weight scale are shared). */
#define Q_INIT(g)                                                                              \
    (a0[g] = a1[g] = _mm512_setzero_ps(), x16[g] = (const int16_t *)xqs[g],                    \
     dx[g] = (const float *)(x16[g] + cols))
/* acc[g] += (d * dx) * float(q . x16) for block k (q8_block's operations) */
#define Q_BLOCK(A, q, d, k, g)                                                                 \
    (A[g] = _mm512_fmadd_ps(                                                                   \
         _mm512_cvtepi32_ps(_mm512_madd_epi16(q, _mm512_loadu_si512(x16[g] + 32 * (k)))),     \
         _mm512_mul_ps(d, _mm512_set1_ps(dx[g][k])), A[g]))
#define Q_PAIR(g) (Q_BLOCK(a0, q0, d0, b, g), Q_BLOCK(a1, q1, d1, b + 1, g))
#define Q_LAST(g) Q_BLOCK(a0, q0, d0, b, g)
#define Q_STORE(g) (ys[g][r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[g], a1[g])))

TGT_INLINE void q8_0_row_g(float *const *ys, int r, const uint8_t *w, int cols,
                           const void *const *xqs, int G) {
    __m512 a0[BATCH_G], a1[BATCH_G];
    const int16_t *x16[BATCH_G];
    const float *dx[BATCH_G];
    FOR_G(Q_INIT);
    int nb = cols / 32, b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *k0 = w + (size_t)b * 34, *k1 = k0 + 34;
        __m512i q0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(k0 + 2)));
        __m512i q1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(k1 + 2)));
        __m512 d0 = q8_scale(k0), d1 = q8_scale(k1);
        FOR_G(Q_PAIR);
    }
    if (b < nb) {
        const uint8_t *k0 = w + (size_t)b * 34;
        __m512i q0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(k0 + 2)));
        __m512 d0 = q8_scale(k0);
        FOR_G(Q_LAST);
    }
    FOR_G(Q_STORE);
}

DEF_BATCH_DRIVER(t2_k512_matvecb_q8_0, q8_0_row_g, const void *const *)

/* The prepared x of kernels.c's q8_prep_x, bit for bit (same formulas: amax, 32767 / amax,
 * round to nearest even; a block with inf / nan gets dx = nan and zeros). */
TGT void t2_k512_q8_prep_x(void *buf, const float *x, int cols) {
    int16_t *x16 = (int16_t *)buf;
    float *dx = (float *)(x16 + cols);
    for (int b = 0; b < cols / 32; b++) {
        __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
        __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1), big = _mm512_set1_ps(3.0e38f);
        /* inf or nan anywhere (tested per input: max_ps would drop a nan) */
        __mmask16 bad = _mm512_cmp_ps_mask(a0, big, _CMP_NLE_UQ) | _mm512_cmp_ps_mask(a1, big, _CMP_NLE_UQ);
        __m512 a = _mm512_max_ps(a0, a1);
        float amax = _mm512_reduce_max_ps(a);
        if (bad || amax == 0.0f) {
            dx[b] = bad ? __builtin_nanf("") : 0.0f;
            memset(x16 + 32 * b, 0, 64);
            continue;
        }
        __m512 inv = _mm512_set1_ps(32767.0f / amax);
        dx[b] = amax / 32767.0f;
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, inv));
        __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, inv));
        __m512i lim = _mm512_set1_epi32(32767);
        i0 = _mm512_max_epi32(_mm512_min_epi32(i0, lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
        i1 = _mm512_max_epi32(_mm512_min_epi32(i1, lim), _mm512_sub_epi32(_mm512_setzero_si512(), lim));
        _mm256_storeu_si256((__m256i *)(x16 + 32 * b), _mm512_cvtepi32_epi16(i0));
        _mm256_storeu_si256((__m256i *)(x16 + 32 * b + 16), _mm512_cvtepi32_epi16(i1));
    }
}

/* ---- conversions to f32 (exact) ---- */

TGT void t2_k512_to_f32_f16(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld_f16(s + 2 * i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, ldm_f16(m, s + 2 * i));
    }
}

TGT void t2_k512_to_f32_bf16(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, ld_bf16(s + 2 * i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, ldm_bf16(m, s + 2 * i));
    }
}

TGT void t2_k512_to_f32_q8_0(float *dst, const void *src, int64_t n) {
    const uint8_t *s = (const uint8_t *)src;
    for (int64_t b = 0; b < n / 32; b++) {
        const uint8_t *blk = s + b * 34;
        __m512 d = q8_scale(blk);
        _mm512_storeu_ps(dst + 32 * b, _mm512_mul_ps(d, q8_lo(blk)));
        _mm512_storeu_ps(dst + 32 * b + 16, _mm512_mul_ps(d, q8_hi(blk)));
    }
}

/* ---- vector helpers ---- */

TGT float t2_k512_dot(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

TGT void t2_k512_axpy(float *y, float a, const float *x, int n) {
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

/* Sum of n floats, streaming 256 bytes per step (the memory-bandwidth probe). */
TGT double t2_k512_sum(const float *a, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    double h = 0; /* scalar head up to a 64-byte boundary: no line-splitting loads */
    for (; i < n && ((uintptr_t)(a + i) & 63); i++) h += a[i];
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(a + i + 48));
    }
    double s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i];
    return s + h;
}

#endif
