/* kernels_simd.h - internal: the entry points of the SIMD kernel files (kernels_avx512.c,
 * kernels_avx2.c), declared once for them and for the dispatch table in kernels.c. Call them
 * only through kernels.h: each needs the CPU features kernels.c checks first. */
#ifndef T2_KERNELS_SIMD_H
#define T2_KERNELS_SIMD_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
void t2_k512_matvec_f32(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k512_matvec_f16(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k512_matvec_bf16(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k512_matvec_q8_0(float *y, const void *W, size_t rb, int cols, const void *xq, int r0, int r1);
void t2_k512_matvecb_f32(float *const *ys, const void *W, size_t rb, int cols, const float *const *xs, int nb, int r0, int r1);
void t2_k512_matvecb_f16(float *const *ys, const void *W, size_t rb, int cols, const float *const *xs, int nb, int r0, int r1);
void t2_k512_matvecb_bf16(float *const *ys, const void *W, size_t rb, int cols, const float *const *xs, int nb, int r0, int r1);
void t2_k512_matvecb_q8_0(float *const *ys, const void *W, size_t rb, int cols, const void *const *xqs, int nb, int r0, int r1);
void t2_k512_q8_prep_x(void *buf, const float *x, int cols);
void t2_k512_to_f32_f16(float *dst, const void *src, int64_t n);
void t2_k512_to_f32_bf16(float *dst, const void *src, int64_t n);
void t2_k512_to_f32_q8_0(float *dst, const void *src, int64_t n);
float t2_k512_dot(const float *a, const float *b, int n);
void t2_k512_axpy(float *y, float a, const float *x, int n);
double t2_k512_sum(const float *a, size_t n);
void t2_k256_matvec_f32(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k256_matvec_f16(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k256_matvec_bf16(float *y, const void *W, size_t rb, int cols, const float *x, int r0, int r1);
void t2_k256_matvec_q8_0(float *y, const void *W, size_t rb, int cols, const void *xq, int r0, int r1);
void t2_k256_matvecb_f32(float *const *ys, const void *W, size_t rb, int cols, const float *const *xs, int nb, int r0, int r1);
void t2_k256_matvecb_f16(float *const *ys, const void *W, size_t rb, int cols, const float *const *xs, int nb, int r0, int r1);
void t2_k256_matvecb_bf16(float *const *ys, const void *W, size_t rb, int cols, const float *const *xs, int nb, int r0, int r1);
void t2_k256_matvecb_q8_0(float *const *ys, const void *W, size_t rb, int cols, const void *const *xqs, int nb, int r0, int r1);
void t2_k256_to_f32_f16(float *dst, const void *src, int64_t n);
void t2_k256_to_f32_bf16(float *dst, const void *src, int64_t n);
void t2_k256_to_f32_q8_0(float *dst, const void *src, int64_t n);
float t2_k256_dot(const float *a, const float *b, int n);
void t2_k256_axpy(float *y, float a, const float *x, int n);
double t2_k256_sum(const float *a, size_t n);
/* quants_simd.c: dequantizers giving exactly t2_to_f32's values (n a multiple of the block). */
void t2_k512_deq_q4_0(float *dst, const void *src, int64_t n);
void t2_k512_deq_q4_k(float *dst, const void *src, int64_t n);
void t2_k512_deq_q5_k(float *dst, const void *src, int64_t n);
void t2_k512_deq_q6_k(float *dst, const void *src, int64_t n);
void t2_k256_deq_q4_0(float *dst, const void *src, int64_t n);
void t2_k256_deq_q4_k(float *dst, const void *src, int64_t n);
void t2_k256_deq_q5_k(float *dst, const void *src, int64_t n);
void t2_k256_deq_q6_k(float *dst, const void *src, int64_t n);
#endif

#endif
