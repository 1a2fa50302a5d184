/* train_kernels.h - the batched kernels of training: every forward beside its _backward.
 *
 * llm.c's style: free functions, outputs first and sizes last; a backward ACCUMULATES (+=) into
 * its gradient outputs (the caller zeroes them), so that several uses of one tensor (the tied
 * classifier, the residual stream, q/k/v reading the same normed input) just add up.
 *
 * Dimension legend:
 *   B  sequences in a batch    T  tokens per sequence    N  = B*T rows (tokens)
 *   C  input features          OC output features        r  rank of an SVD factorisation
 *   D  model width   F  MLP width   H  query heads   K  kv heads   hd head_dim   V vocabulary
 * Matrices are row-major; a weight W is (OC, C) like a t2_mat (rows = out features).
 *
 * Threading: functions taking a t2_pool split their work over it (NULL: the caller's thread).
 * Work is cut into blocks that depend only on the shapes, never on the thread count, and each
 * output element is computed by one thread in a fixed order: results are bitwise identical for
 * any number of threads.
 */
#ifndef T2_TRAIN_KERNELS_H
#define T2_TRAIN_KERNELS_H

#include "base/pool.h"

#include <stddef.h>

/* C (M, N) = alpha * op(A) (M, K) op(B) (K, N) + beta * C, row-major, on the pool: one
 * single-threaded cblas_sgemm per fixed block of rows (or columns, when N > M) of C. */
void t2_tk_gemm(t2_pool *pool, int transA, int transB, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* out (N, OC) = inp (N, C) W^T, W (OC, C). */
void t2_tk_matmul_forward(t2_pool *pool, float *out, const float *inp, const float *W, int N,
                          int C, int OC);
/* dinp (N, C) += dout W;  dW (OC, C) += dout^T inp (skipped when dW is NULL). */
void t2_tk_matmul_backward(t2_pool *pool, float *dinp, float *dW, const float *dout,
                           const float *inp, const float *W, int N, int C, int OC);

/* Factored SVF product: out = inp W'^T with W' = U diag(s) Vt, computed as
 * z = inp Vt^T (saved for the backward), out = (z * s) U^T. U (OC, r), s (r), Vt (r, C),
 * z (N, r), zs (N, r) scratch. */
void t2_tk_svf_matmul_forward(t2_pool *pool, float *out, float *z, float *zs, const float *inp,
                              const float *U, const float *s, const float *Vt, int N, int C,
                              int OC, int r);
/* gu = dout U (N, r scratch); ds (r) += sum_t gu[t] * z[t]  (= sum_t (u_i . g_t)(v_i . x_t));
 * dinp (N, C) += (gu * s) Vt (skipped when dinp is NULL). gu is overwritten. */
void t2_tk_svf_matmul_backward(t2_pool *pool, float *dinp, float *ds, float *gu,
                               const float *dout, const float *z, const float *U, const float *s,
                               const float *Vt, int N, int C, int OC, int r);

/* The backward of t2_svf_scale (svf.h, the forward: s_eff = sigma * m * (sum sigma / sum
 * (sigma * m)), m = act(p)): dp (r) += d loss / d p given ds_eff = d loss / d s_eff. */
void t2_tk_svf_scale_backward(float *dp, const float *ds_eff, const float *p, const float *sigma,
                              int r, int act, float max_mult);

/* out (N, D) = emb[tokens[t]] */
void t2_tk_embed_forward(float *out, const int *tokens, const float *emb, int N, int D);
/* demb[tokens[t]] += dout[t] (tokens in order: deterministic) */
void t2_tk_embed_backward(float *demb, const float *dout, const int *tokens, int N, int D);

/* out = w * x * rstd, rstd (N) = 1 / sqrt(mean(x^2) + eps): t2_rmsnorm's formula per row. */
void t2_tk_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int D,
                           float eps);
/* dx (N, D) += ...; dw (D) += sum_t dout * x * rstd (skipped when dw is NULL). */
void t2_tk_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x,
                            const float *w, const float *rstd, int N, int D);

/* Rotation tables for positions [0, T): cos/sin (T, hd/2), the angles of t2_rope. */
void t2_tk_rope_tables(float *cos_t, float *sin_t, int T, int hd, float theta);
/* The same tables from given inverse frequencies (hd/2 of them; Llama-3 rope scaling, qwen2),
 * with the forward pass's arithmetic: angle = pos * inv_freq[i]. */
void t2_tk_rope_tables_freq(float *cos_t, float *sin_t, int T, int hd, const float *inv_freq);
/* In place on x (B*T, n_heads*hd): rotate each head's pairs (x[2i], x[2i+1]) of the token at
 * position t (t = row % T) by angle (t, i). */
void t2_tk_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T,
                        int n_heads, int hd);
/* In place on dx: the transposed rotation. */
void t2_tk_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T,
                         int n_heads, int hd);
/* The same with neox != 0: rotate the halves (x[i], x[i + hd/2]) of each head (qwen2, qwen3). */
void t2_tk_rope_forward_ex(float *x, const float *cos_t, const float *sin_t, int B, int T,
                           int n_heads, int hd, int neox);
void t2_tk_rope_backward_ex(float *dx, const float *cos_t, const float *sin_t, int B, int T,
                            int n_heads, int hd, int neox);

/* Causal grouped-query attention. q (N, H*hd), k, v (N, K*hd); query head h reads kv head
 * h / (H/K); att (B, H, T, T) saves the probabilities (zero above the diagonal);
 * out (N, H*hd). Scores are scaled by 1/sqrt(hd). */
void t2_tk_attention_forward(t2_pool *pool, float *out, float *att, const float *q,
                             const float *k, const float *v, int B, int T, int H, int K, int hd);
/* dq, dk, dv += ...; scratch holds T floats per pool thread. */
void t2_tk_attention_backward(t2_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                              const float *dout, const float *q, const float *k, const float *v,
                              const float *att, int B, int T, int H, int K, int hd);

/* out = silu(gate) * up */
void t2_tk_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
/* dgate, dup += ... */
void t2_tk_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                           const float *up, size_t n);

/* out = a + b */
void t2_tk_residual_forward(float *out, const float *a, const float *b, size_t n);

/* logits (N, V) become probabilities in place; nll[t] = -log p(targets[t]) (0 when
 * targets[t] < 0). */
void t2_tk_crossentropy_forward(t2_pool *pool, float *nll, float *probs, const int *targets,
                                int N, int V);
/* In place: probs (N, V) become dlogits = w_t * scale * (p - onehot(target)); rows with
 * target < 0 or weight 0 become 0. weights NULL means 1. */
void t2_tk_crossentropy_backward(t2_pool *pool, float *probs, const int *targets,
                                 const float *weights, float scale, int N, int V);

/* AdamW on n values, step t >= 1 (bias correction):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   p -= lr * (m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps) + wd * p). */
void t2_tk_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                 float b2, float eps, float wd, long t);

/* Sum of squares of x in double (fixed order). */
double t2_tk_sumsq(const float *x, size_t n);
void t2_tk_scale(float *x, float a, size_t n);

#endif
