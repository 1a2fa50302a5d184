/* t2_types.h - element types and the matrix view the kernels work on.
 *
 * Type ids are GGML's, so a GGUF tensor's type field maps to t2_dtype without a table.
 * A t2_mat is a borrowed, row-major view: `rows` rows of `cols` elements, row r starting at
 * (const char *)data + r * t2_dtype_row_bytes(type, cols). For block types (Q4_0 ... Q6_K, see
 * engine/quants.h) cols must be a multiple of the block size (32, or 256 for the K-quants).
 */
#ifndef T2_TYPES_H
#define T2_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef enum t2_dtype {
    T2_F32 = 0,
    T2_F16 = 1,
    T2_Q4_0 = 2,
    T2_Q4_1 = 3,
    T2_Q5_0 = 6,
    T2_Q5_1 = 7,
    T2_Q8_0 = 8,
    T2_Q2_K = 10,
    T2_Q3_K = 11,
    T2_Q4_K = 12,
    T2_Q5_K = 13,
    T2_Q6_K = 14,
    T2_BF16 = 30,
} t2_dtype;

#define T2_Q8_0_BLOCK 32 /* elements per Q8_0 block: fp16 scale + 32 int8 = 34 bytes */

typedef struct t2_mat {
    t2_dtype type;
    int rows;         /* output features */
    int cols;         /* input features */
    const void *data; /* borrowed; rows * row_bytes bytes */
} t2_mat;

/* 1 if T2 can compute with this GGML type id, else 0. */
int t2_dtype_supported(uint32_t ggml_type);
/* "F32", "F16", "BF16", "Q8_0", "Q4_K", ... (GGML's names), or "?" */
const char *t2_dtype_name(t2_dtype t);
/* Parse a type name (case-insensitive, as t2_dtype_name writes it); returns 0 or T2_EINVAL. */
int t2_dtype_parse(const char *s, t2_dtype *out);
/* Elements per block (1; 32 for Q4_0..Q8_0; 256 for the K-quants) and bytes per block. */
int t2_dtype_block(t2_dtype t);
size_t t2_dtype_block_bytes(t2_dtype t);
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size. */
size_t t2_dtype_row_bytes(t2_dtype t, int64_t n);

static inline const void *t2_mat_row(const t2_mat *m, int r) {
    return (const char *)m->data + (size_t)r * t2_dtype_row_bytes(m->type, m->cols);
}

/* Scalar conversions (IEEE half, bfloat16 with round-to-nearest-even). */
float t2_f16_to_f32(uint16_t h);
uint16_t t2_f32_to_f16(float f);
static inline float t2_bf16_to_f32(uint16_t b) {
    union { uint32_t u; float f; } v = {.u = (uint32_t)b << 16};
    return v.f;
}
uint16_t t2_f32_to_bf16(float f);

/* Convert n elements (a whole number of blocks) of type t at src to f32 at dst. */
void t2_to_f32(float *dst, const void *src, t2_dtype t, int64_t n);
/* Convert n f32 values to type t at dst (block types: n a multiple of the block). Writable
 * types: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K (t2_dtype_writable); others are left as is. */
int t2_dtype_writable(t2_dtype t);
void t2_from_f32(void *dst, const float *src, t2_dtype t, int64_t n);

#endif
