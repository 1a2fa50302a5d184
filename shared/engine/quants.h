/* quants.h - llama.cpp's block-quantized weight formats: layouts, dequantization, quantizers.
 *
 * Every format stores a row as a run of independent blocks. "Legacy" formats have 32 elements a
 * block with one fp16 scale (and a min for the _1 variants); K-quants have 256-element
 * super-blocks whose 16- or 32-element sub-blocks carry small integer scales, themselves scaled
 * by fp16 super-block factors. Byte layouts (little-endian, packed, no padding):
 *
 *   Q4_0  18 B / 32:  d f16 | qs[16]            x[j] = d * ((qs[j] & 15) - 8), j < 16;
 *                                               x[j+16] = d * ((qs[j] >> 4) - 8)
 *   Q4_1  20 B / 32:  d f16 | m f16 | qs[16]    x = d * q + m (q the nibble as above)
 *   Q5_0  22 B / 32:  d f16 | qh u32 | qs[16]   q = nibble | bit j (j+16 for the high half) of
 *                                               qh as bit 4;  x = d * (q - 16)
 *   Q5_1  24 B / 32:  d | m | qh | qs[16]       x = d * q + m
 *   Q8_0  34 B / 32:  d f16 | qs[32] int8       x = d * q
 *   Q2_K  84 B / 256: scales[16] | qs[64] | d | dmin   16 sub-blocks of 16; scale nibble pair
 *                     (lo: scale, hi: min): x = d*sc * q - dmin*mn, q 2 bits
 *   Q3_K 110 B / 256: hmask[32] | qs[64] | scales[12] | d   16 sub-blocks of 16, 6-bit signed
 *                     scales (stored +32); x = d*(sc-32) * (q2 - (high bit set ? 0 : 4))
 *   Q4_K 144 B / 256: d | dmin | scales[12] | qs[128]   8 sub-blocks of 32, 6-bit scale and
 *                     6-bit min each; x = d*sc * q - dmin*mn, q 4 bits
 *   Q5_K 176 B / 256: d | dmin | scales[12] | qh[32] | qs[128]   as Q4_K with a 5th bit
 *   Q6_K 210 B / 256: ql[128] | qh[64] | scales[16] int8 | d    16 sub-blocks of 16;
 *                     x = d*sc * (q - 32), q 6 bits
 *
 * The bit positions inside qs/qh/scales are spelled out next to each decoder in quants.c.
 * Dequantization here computes exactly what llama.cpp's reference dequantizers compute (same
 * operations in the same order, no fused multiply-add), so values are bit-identical.
 */
#ifndef T2_QUANTS_H
#define T2_QUANTS_H

#include "engine/t2_types.h"

#include <stddef.h>
#include <stdint.h>

#define T2_QK 32    /* elements per legacy block */
#define T2_QK_K 256 /* elements per K-quant super-block */

/* 1 if t is one of the block-quantized formats above (Q8_0 included). */
int t2_quant_is(t2_dtype t);
/* Elements and bytes per block of a quantized type (0 if t is not one). */
int t2_quant_block(t2_dtype t);
size_t t2_quant_block_bytes(t2_dtype t);

/* Dequantize nb whole blocks of type t at src into dst (nb * t2_quant_block(t) floats). */
void t2_dequant(float *dst, const void *src, t2_dtype t, int64_t nb);

/* 1 if T2 has a quantizer for t (Q8_0, Q4_0, Q4_K, Q6_K). */
int t2_quant_can_write(t2_dtype t);
/* Quantize nb whole blocks of n floats into type t (t2_quant_can_write(t) must be 1).
 * Round-to-nearest with a per-block search of the scale that minimises the squared error. */
void t2_quantize(void *dst, const float *src, t2_dtype t, int64_t nb);

#endif
