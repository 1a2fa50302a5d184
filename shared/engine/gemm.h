/* gemm.h - internal: T2's matrix-matrix product for float weights (F32, F16, BF16), the prompt
 * path of t2_matmul (kernels.h states the contract; call it through t2_matmul).
 *
 * Y[m, n] = sum_k X[m, k] W[n, k] for m < M, n < W.rows, k < W.cols. W is packed a panel of NR
 * rows at a time into per-thread scratch, transposed to k-major order and converted to the
 * compute type while packing; register-blocked micro-kernels (MR rows of X x NR rows of W per
 * call, over KC columns at a time) run per instruction set: AVX-512 (NR 32, MR 8), AVX2 + FMA
 * (NR 16, MR 6), portable C (NR 8, MR 4, fmaf). Threads of the pool claim panels of W.
 *
 * Numerics. F32, F16 and BF16 weights: every output is ONE chain of fused multiply-adds over
 * k = 0, 1, ..., K - 1 in order, starting from 0 (the accumulator is stored and reloaded exactly
 * between KC blocks), so the result is the same bits at levels avx512 and avx2 (and generic
 * where the compiler has a fast fmaf; otherwise generic rounds product and sum separately), for
 * every thread count, tile position, M and panel split:
 *     |y - sum_k w_k x_k| <= gamma_K * sum_k |w_k x_k|,  gamma_K = K u / (1 - K u), u = 2^-24.
 * BF16 on bf16 dot products (opt-in: t2_gemm_set_bf16_dot(1) or T2_BF16_DOT=1, at level avx512
 * on a CPU with AVX-512 BF16): x is rounded to bf16 (round to nearest even) and each pair of
 * columns is one vdpbf16ps step (products exact, denormal inputs and outputs flushed to zero),
 * so the bound adds the rounding of x:
 *     |y - sum_k w_k x_k| <= (2^-8 + gamma_K) * sum_k |w_k x_k| (+ flushed subnormals),
 * as llama.cpp does for BF16 weights. About twice the f32 FMA rate, but the logits of a prompt
 * then differ from the float64 reference by ~5e-3 relative (the parity tests allow 1e-4) and a
 * greedy token can change, so it is off by default. Still one fixed chain per output:
 * independent of the thread count, M and tiling.
 */
#ifndef T2_GEMM_H
#define T2_GEMM_H

#include "base/pool.h"
#include "engine/t2_types.h"

/* 1 if t2_gemm handles weights of type t (F32, F16, BF16). */
int t2_gemm_supports(t2_dtype t);
/* Y (M x W.rows) = X (M x W.cols) W^T on the pool (NULL: caller only), at the kernel level
 * t2_kern_level() names. Returns 0, T2_EINVAL (type not supported) or T2_ENOMEM. */
int t2_gemm(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int M);
/* 1 if BF16 weights currently run on bf16 dot products (x rounded to bf16), else 0. */
int t2_gemm_bf16_dot(void);
/* Which micro-kernels t2_gemm runs for weights of type t at the current kernel level: "avx512",
 * "avx2" or "generic" (for tests: a SIMD level must never fall back to the portable code). */
const char *t2_gemm_kernels(t2_dtype t);
/* Turns the bf16 dot products for BF16 weights on (1) or off (0, the default unless T2_BF16_DOT=1
 * is in the environment). Returns 0, or T2_EUNSUPPORTED when the CPU lacks AVX-512 BF16. They
 * are used only at kernel level avx512. Not thread-safe: call before starting work. */
int t2_gemm_set_bf16_dot(int on);
/* Frees the calling thread's packing scratch (pool threads free theirs when they exit). */
void t2_gemm_free_thread(void);

#endif

/* ---- internal to gemm*.c: the per-level entry points (gemm_avx512.c, gemm_avx2.c) ----
 * pack(wp, W, rb, t, nrows, K): rows [0, nrows) of W (row stride rb bytes, type t) into the
 *   panel wp, k-major: wp[k * NR + n] as f32 (Kp = K), or for bf16 dot products pairs
 *   wp[(k / 2) * 2 NR + 2 n + k % 2] as bf16 (Kp = K rounded up to even); rows >= nrows and
 *   columns >= K are zero. wp is 64-byte aligned.
 * kern(Y, ldy, xr, wp, kc, mr, nr, load): for i < mr, n < nr: Y[i * ldy + n] = (load ? Y[..] :
 *   0) + sum over k < kc of xr[i][k] * wp[k][n] as one fma chain in k order (bf16 dot: kc even
 *   or the panel's end, pairs in order). xr has MR row pointers (rows >= mr repeat a valid row;
 *   their results are dropped). */
#if defined(__x86_64__)
void t2_g512_pack_f32(void *wp, const void *W, size_t rb, t2_dtype t, int nrows, int K);
void t2_g512_pack_bf16dot(void *wp, const void *W, size_t rb, t2_dtype t, int nrows, int K);
void t2_g512_kern_f32(float *Y, size_t ldy, const void *const *xr, const void *wp, int kc, int mr,
                      int nr, int load);
void t2_g512_kern_bf16dot(float *Y, size_t ldy, const void *const *xr, const void *wp, int kc,
                          int mr, int nr, int load);
void t2_g512_x_to_bf16(uint16_t *dst, const float *src, int n);
void t2_g256_pack_f32(void *wp, const void *W, size_t rb, t2_dtype t, int nrows, int K);
void t2_g256_kern_f32(float *Y, size_t ldy, const void *const *xr, const void *wp, int kc, int mr,
                      int nr, int load);
#endif
