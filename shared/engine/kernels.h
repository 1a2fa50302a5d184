/* kernels.h - the math of the forward pass, outputs first and sizes last.
 *
 * Matrix-vector work (batch-1 generation) runs on T2's own SIMD kernels, chosen at run time
 * from the CPU's flags (AVX-512F+BW+VL+VNNI, else AVX-512F+BW+VL, else AVX2+FMA+F16C, else
 * portable C); matrix-matrix work (prompt batches) with F32, F16 and BF16 weights on T2's own
 * packed-panel GEMM at the same level (engine/gemm.h); quantized weights at the avx512vnni level
 * on T2's own integer kernels (engine/qgemm.c), at other levels on OpenBLAS sgemm, one
 * single-threaded call per pool thread on its own slice of output rows, so T2's threads and
 * OpenBLAS's never fight.
 *
 * Shapes: W is a t2_mat (rows = out features, cols = in features, row-major, any t2_dtype);
 * x has W.cols floats; y has W.rows floats. X / Y in batch calls are B rows of cols / rows floats.
 * Determinism: for a given W, x and kernel level, results do not depend on the number of threads
 * (each output element is computed by exactly one thread with a fixed order of summation).
 */
#ifndef T2_KERNELS_H
#define T2_KERNELS_H

#include "base/pool.h"
#include "engine/t2_types.h"

/* Which SIMD level the run-time dispatch chose: "avx512vnni" (AVX-512 F/BW/VL/DQ + VNNI),
 * "avx512", "avx2" or "generic". */
const char *t2_kern_level(void);
/* Force a level ("avx512vnni", "avx512", "avx2", "generic") for tests; returns 0 or
 * T2_EUNSUPPORTED if the CPU lacks it. Not thread-safe: call before starting work. */
int t2_kern_force_level(const char *level);
/* Bits to which the current level rounds x for quantized weights of type t with cols columns
 * (8 or 16, see below; 0 for the float types). */
int t2_kern_x_bits(t2_dtype t, int cols);

/* Quantized weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K; engine/quants.h): x is first
 * rounded per 32-element block (once per call, shared by the threads and by all matrices with the
 * same x) so that every block is an exact integer dot product with the integer quants; the result
 * is then scaled in f32. Two roundings, per level and type (t2_kern_x_bits):
 *  - 16 bits (generic, avx2, avx512; at avx512vnni the types below that it does not cover):
 *    x ~= dx * int16, dx = the block's max |x| / 32767. Error bound, per output:
 *    |y - sum_i w_i x_i| <= sum_i |w_i| * max |x_block(i)| / 65534.
 *  - 8 bits (avx512vnni: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 with cols a multiple of 64; Q4_K, Q5_K,
 *    Q6_K): x ~= dx * int8, dx = max |x| / 127, on AVX-512 VNNI dot products
 *    (engine/quants_vnni.h). Error bound: |y - sum_i w_i x_i| <= sum_i |w_i| * max|x_block(i)|
 *    / 254: the precision at which GGML's kernels take activations too (Q8_0 per 32, Q8_K per
 *    256 elements). Measured effect on whole models: logits within ~5e-3 of their range
 *    (tests/test_quants.c), against ~1e-5 with 16 bits.
 * Plus, in both cases, the usual f32 summation error (~1e-6 * sum |w_i x_i|); the weights w_i
 * are exactly t2_to_f32's values. Without memory for the rounded x, the kernels fall back to
 * dequantizing blocks to f32 and an f32 dot (no rounding of x).
 *
 * y[r] = dot(W[r, :], x) for r in [r0, r1), single thread. */
void t2_matvec_rows(float *y, const t2_mat *W, const float *x, int r0, int r1);
/* y = W x on the pool (pool may be NULL: single thread). */
void t2_matvec(t2_pool *pool, float *y, const t2_mat *W, const float *x);
/* n independent products ys[i] = Ws[i] xs[i] in one pool call (rows of all split together). */
void t2_matvec_multi(t2_pool *pool, int n, float *const *ys, const t2_mat *const *Ws,
                     const float *const *xs);

/* ys[b] = W xs[b] for b in [0, B): every ys[b] is bit-identical to t2_matvec(W, xs[b]) at the same
 * kernel level, whatever B, the other vectors or the number of threads, while W is read from
 * memory once for all B vectors: batched row kernels load each chunk of a row once (converted to
 * f32 once) and apply it to a group of 2-4 vectors, with the single-vector kernel's operations per
 * vector (quantized types: each x prepared as t2_matvec prepares it; the types other than Q8_0
 * run each vector over a block of 32 rows in turn, the block being reread from cache). Threads
 * take t2_split blocks of 32 rows.
 * This is the multi-sequence decoding product: a sequence's numbers never depend on what else
 * shares the batch. */
void t2_matvec_batch(t2_pool *pool, float *const *ys, const t2_mat *W, const float *const *xs,
                     int B);

/* Y[b, :] = W X[b, :] for b in [0, B): Y is B x W.rows, X is B x W.cols (row-major).
 * F32, F16, BF16: t2_gemm (engine/gemm.h: every output one fma chain over the columns in order,
 * the same bits at every level, thread count and B > 1; bound gamma_K * sum |w x|).
 * Quantized types with 8-bit kernels at the avx512vnni level (t2_kern_x_bits == 8): T2's own
 * register-blocked kernels (engine/qgemm.c), every row of Y bit-identical to t2_matvec(W, X[b]).
 * Other quantized types are converted to f32 a block of rows at a time
 * into per-thread scratch (allocated by the kernels module on first use, grown as needed; freed
 * by t2_kern_free_scratch). Each sgemm call covers a fixed block of rows of W, so the result does
 * not depend on the number of threads either. B == 1 runs t2_matvec (same result as it).
 * Returns 0 or T2_ENOMEM. */
int t2_matmul(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int B);
void t2_kern_free_scratch(void);
/* The OpenBLAS core t2_matmul runs on (openblas_get_corename(); follows OPENBLAS_CORETYPE). */
const char *t2_blas_corename(void);

/* Small kernels (single thread; dims are small). */
void t2_rmsnorm(float *out, const float *x, const float *weight, int n, float eps);
void t2_softmax(float *x, int n);
/* Rotate adjacent pairs (x[2i], x[2i+1]) of each head by pos * theta^(-2i/head_dim)
 * (Meta/llama2.c layout, GGML rope "normal" mode). x has n_heads * head_dim floats. */
void t2_rope(float *x, int n_heads, int head_dim, int pos, float theta);
/* out[i] = silu(gate[i]) * up[i] */
void t2_swiglu(float *out, const float *gate, const float *up, int n);
float t2_dot_f32(const float *a, const float *b, int n);
/* y += a * x */
void t2_axpy_f32(float *y, float a, const float *x, int n);

/* Memory read bandwidth in GB/s (1e9 bytes/s): n_threads threads stream-sum a freshly allocated,
 * initialised buffer of `bytes` bytes (use >= 256 MiB so that it comes from DRAM) with the
 * current kernel level's widest loads; best of several passes. Takes ~1 s for 1 GiB.
 * Returns a negative T2_E* code on failure (no memory, no threads). */
double t2_membw_read_gbs(int n_threads, size_t bytes);
/* One timed read pass over the n floats at a, split over the pool's threads; returns GB/s (for
 * benchmarks that interleave reference passes with their own, so both see the same load). */
double t2_membw_read_pass(t2_pool *pool, const float *a, size_t n);

#endif
