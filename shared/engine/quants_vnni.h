/* quants_vnni.h - internal: quantized weights times activations rounded to 8 bits, on AVX-512
 * VNNI integer dot products (vpdpbusd), for kernels.c's "avx512vnni" level and qgemm.c.
 *
 * Prepared activations ("x8", one per vector of cols floats, cols a multiple of 32), at 64-byte
 * aligned offsets from its start:
 *   q    int8[cols]        x[i] ~= dx[i / 32] * q[i], dx = max |x| of the block / 127,
 *                          q = round-to-nearest-even(x * (127 / max)), |q| <= 127
 *   dxe  float[cols / 4]   per 64 elements, 16 floats: dx of the first block 8 times, then of
 *                          the second (the layout of vpdpbusd's 16 lanes over 64 bytes)
 *   s32  float[cols / 32]  dx * sum of q over each 32-block (for the formats' mins)
 *   qu   uint8[cols]       q + 128
 *   nls  int32[cols / 4]   minus the sums of q over each 4 elements (vpdpbusd's lanes), for
 *                          the formats with a fixed offset: their codes go in unsigned and
 *                          the offset times these sums starts the lane dots
 * A block holding inf or nan gets dx = nan (and q = 0) so that it shows in every result.
 *
 * K-quants: each output is sum over 64-element pairs of (float)(int32 lane dots of unsigned
 * weight codes and q) * (weight scale * dx), in two interleaved f32 accumulators, plus the mins
 * applied to s32 per 256 elements (per 8 blocks). Legacy 32-element types (quants_vnni_tile.c):
 * one f32 chain over the blocks in order, acc = fma((float)(exact integer dot of the block),
 * d * dx, acc) (with a min, then acc = fma(m, s32, acc)). Either way the order of operations
 * depends only on the type and cols, never on the number of vectors computed together (nv), the
 * rows' range or the thread.
 */
#ifndef T2_QUANTS_VNNI_H
#define T2_QUANTS_VNNI_H

#include "engine/t2_types.h"

#include <stddef.h>
#include <stdint.h>

#define T2_X8_A64(n) (((size_t)(n) + 63) / 64 * 64)
/* Bytes of one prepared vector. */
static inline size_t t2_x8_bytes(int cols) {
    return 4 * T2_X8_A64(cols) + T2_X8_A64((size_t)cols / 8);
}

#if defined(__x86_64__)
/* 1 if the CPU has what these kernels need (AVX-512 F/BW/VL/DQ + VNNI, FMA, F16C). */
int t2_kv_cpu_ok(void);
/* 1 if type t with cols columns has an 8-bit kernel here (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 with cols
 * a multiple of 64; Q4_K, Q5_K, Q6_K); the other types keep the 16-bit kernels. */
int t2_kv_has(t2_dtype t, int cols);
/* Prepare x (cols floats) into buf (t2_x8_bytes(cols), 64-byte aligned). */
void t2_kv_prep(void *buf, const float *x, int cols);
/* ys[v][r] = row r of W . x_v for r in [r0, r1), v < nv (any nv >= 1; taken 4 at a time, a row's
 * weights decoded once per group). Requires t2_kv_has(t, cols). */
void t2_kv_rows(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                const void *const *x8, int nv, int r0, int r1);
/* The same for the legacy 32-element types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; t2_kv_rows calls it):
 * 16 rows at a time, packed once per call and shared by all nv vectors (quants_vnni_tile.c). */
void t2_kvt_rows(t2_dtype t, float *const *ys, const void *W, size_t rb, int cols,
                 const void *const *x8, int nv, int r0, int r1);
#endif

#endif
