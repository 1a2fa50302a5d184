/* red4.h - horizontal sums of four rows at once, bit-identical to one row at a time.
 *
 * A matrix-vector kernel that keeps a row's partial sums in one 512-bit accumulator ends the row
 * with _mm512_reduce_add_ps: a chain of dependent shuffles and adds, as long as a short row's
 * own work. t2_red4_ps reduces four rows' accumulators together with the same pairwise additions
 * in the same tree as GCC's and clang's _mm512_reduce_add_ps (256-bit halves, 128-bit halves,
 * lanes i and i + 2, lanes 0 and 1), and t2_red4_hsum8 four 256-bit ones as
 * hsum8-style (lo + hi 128, then lanes i and i + 2, then lanes 0 and 1) reductions do: each
 * row's result is the one its own reduction gives, whatever rows it is grouped with. Included by
 * quants_vnni.c; the functions' target is a subset of its.
 */
#ifndef T2_ENGINE_RED4_H
#define T2_ENGINE_RED4_H

#if defined(__x86_64__)
#include <immintrin.h>

#define T2_RED4_INL static inline __attribute__((always_inline, target("avx512f,avx512dq")))

/* e: row k's 4-lane partial in 128-bit chunk k; then lanes i + (i + 2), then 0 + 1 */
T2_RED4_INL __m512 t2_red4_tail(__m512 e) {
    e = _mm512_add_ps(e, _mm512_permute_ps(e, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_add_ps(e, _mm512_permute_ps(e, _MM_SHUFFLE(2, 3, 0, 1)));
}

T2_RED4_INL __m128 t2_red4_lanes(__m512 g) { /* lanes 0, 4, 8, 12 */
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(
        _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), g));
}

/* { reduce_add(a[0]), ..., reduce_add(a[3]) } */
T2_RED4_INL __m128 t2_red4_ps(const __m512 *a) {
    __m512 A = _mm512_add_ps(_mm512_shuffle_f32x4(a[0], a[1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(a[0], a[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 B = _mm512_add_ps(_mm512_shuffle_f32x4(a[2], a[3], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_f32x4(a[2], a[3], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 E = _mm512_add_ps(_mm512_shuffle_f32x4(A, B, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(A, B, _MM_SHUFFLE(3, 1, 3, 1)));
    return t2_red4_lanes(t2_red4_tail(E));
}

/* { hsum8(c[0]), ..., hsum8(c[3]) } */
T2_RED4_INL __m128 t2_red4_hsum8(const __m256 *c) {
    __m512 XY = _mm512_insertf32x8(_mm512_castps256_ps512(c[0]), c[1], 1);
    __m512 ZW = _mm512_insertf32x8(_mm512_castps256_ps512(c[2]), c[3], 1);
    __m512 E = _mm512_add_ps(_mm512_shuffle_f32x4(XY, ZW, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(XY, ZW, _MM_SHUFFLE(3, 1, 3, 1)));
    return t2_red4_lanes(t2_red4_tail(E));
}

#endif
#endif
