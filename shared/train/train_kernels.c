/* train_kernels.c - batched forward / backward kernels of training (see train_kernels.h). */
#include "train/train_kernels.h"

#include "engine/kernels.h"
#include "train/train.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Run fn on the pool, or on the caller's thread when there is no pool. */
static void run(t2_pool *pool, t2_pool_fn fn, void *ctx) {
    if (pool && t2_pool_size(pool) > 1)
        t2_pool_run(pool, fn, ctx);
    else
        fn(ctx, 0, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* gemm                                                                                        */

#define GEMM_BLOCK 64 /* rows (or columns) of C per sgemm call */

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, split_m;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_task(void *ctx, int ith, int nth) {
    const gemm_job *j = ctx;
    int dim = j->split_m ? j->M : j->N;
    int nblk = (dim + GEMM_BLOCK - 1) / GEMM_BLOCK, b0, b1;
    t2_split(nblk, 1, ith, nth, &b0, &b1);
    const enum CBLAS_TRANSPOSE ta = j->ta ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = j->tb ? CblasTrans : CblasNoTrans;
    for (int blk = b0; blk < b1; blk++) {
        int o = blk * GEMM_BLOCK, n = dim - o < GEMM_BLOCK ? dim - o : GEMM_BLOCK;
        if (j->split_m) {
            const float *A = j->ta ? j->A + o : j->A + (size_t)o * j->lda;
            cblas_sgemm(CblasRowMajor, ta, tb, n, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb,
                        j->beta, j->C + (size_t)o * j->ldc, j->ldc);
        } else {
            const float *B = j->tb ? j->B + (size_t)o * j->ldb : j->B + o;
            cblas_sgemm(CblasRowMajor, ta, tb, j->M, n, j->K, j->alpha, j->A, j->lda, B, j->ldb,
                        j->beta, j->C + o, j->ldc);
        }
    }
}

void t2_tk_gemm(t2_pool *pool, int transA, int transB, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int n = 0; n < N; n++) C[(size_t)i * ldc + n] *= beta;
        return;
    }
    gemm_job j = {transA, transB, M, N, K, lda, ldb, ldc, M >= N, alpha, beta, A, B, C};
    run(pool, gemm_task, &j);
}

/* ------------------------------------------------------------------------------------------ */
/* dense and factored linear layers                                                            */

void t2_tk_matmul_forward(t2_pool *pool, float *out, const float *inp, const float *W, int N,
                          int C, int OC) {
    /* out (N, OC) = inp (N, C) W^T */
    t2_tk_gemm(pool, 0, 1, N, OC, C, 1.0f, inp, C, W, C, 0.0f, out, OC);
}

void t2_tk_matmul_backward(t2_pool *pool, float *dinp, float *dW, const float *dout,
                           const float *inp, const float *W, int N, int C, int OC) {
    /* dinp (N, C) += dout (N, OC) W (OC, C) */
    if (dinp) t2_tk_gemm(pool, 0, 0, N, C, OC, 1.0f, dout, OC, W, C, 1.0f, dinp, C);
    /* dW (OC, C) += dout^T (OC, N) inp (N, C) */
    if (dW) t2_tk_gemm(pool, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dW, C);
}

typedef struct {
    float *dst;
    const float *a, *b;
    int N, r;
} colsum_job;

/* zs = z * s (row-wise scale by s), rows split across threads */
static void scale_rows_task(void *ctx, int ith, int nth) {
    const colsum_job *j = ctx;
    int lo, hi;
    t2_split(j->N, 1, ith, nth, &lo, &hi);
    for (int t = lo; t < hi; t++) {
        float *d = j->dst + (size_t)t * j->r;
        const float *z = j->a + (size_t)t * j->r;
        for (int i = 0; i < j->r; i++) d[i] = z[i] * j->b[i];
    }
}

/* dst[i] += sum_t a[t, i] * b[t, i], columns split across threads (fixed order over t) */
static void colsum_task(void *ctx, int ith, int nth) {
    const colsum_job *j = ctx;
    int lo, hi;
    t2_split(j->r, 1, ith, nth, &lo, &hi);
    for (int i = lo; i < hi; i++) {
        float s = 0.0f;
        for (int t = 0; t < j->N; t++) s += j->a[(size_t)t * j->r + i] * j->b[(size_t)t * j->r + i];
        j->dst[i] += s;
    }
}

void t2_tk_svf_matmul_forward(t2_pool *pool, float *out, float *z, float *zs, const float *inp,
                              const float *U, const float *s, const float *Vt, int N, int C,
                              int OC, int r) {
    /* z (N, r) = inp (N, C) Vt^T */
    t2_tk_gemm(pool, 0, 1, N, r, C, 1.0f, inp, C, Vt, C, 0.0f, z, r);
    colsum_job j = {zs, z, s, N, r};
    run(pool, scale_rows_task, &j);
    /* out (N, OC) = zs (N, r) U^T */
    t2_tk_gemm(pool, 0, 1, N, OC, r, 1.0f, zs, r, U, r, 0.0f, out, OC);
}

void t2_tk_svf_matmul_backward(t2_pool *pool, float *dinp, float *ds, float *gu,
                               const float *dout, const float *z, const float *U, const float *s,
                               const float *Vt, int N, int C, int OC, int r) {
    /* gu (N, r) = dout (N, OC) U (OC, r): gu[t, i] = u_i . g_t */
    t2_tk_gemm(pool, 0, 0, N, r, OC, 1.0f, dout, OC, U, r, 0.0f, gu, r);
    /* ds[i] += sum_t (u_i . g_t) (v_i . x_t) */
    colsum_job j = {ds, gu, z, N, r};
    run(pool, colsum_task, &j);
    if (!dinp) return;
    /* dinp (N, C) += (gu * s) (N, r) Vt (r, C) */
    colsum_job js = {gu, gu, s, N, r};
    run(pool, scale_rows_task, &js);
    t2_tk_gemm(pool, 0, 0, N, C, r, 1.0f, gu, r, Vt, C, 1.0f, dinp, C);
}

void t2_tk_svf_scale_backward(float *dp, const float *ds_eff, const float *p, const float *sigma,
                              int r, int act, float max_mult) {
    /* a_i = sigma_i m_i, S = sum a, c = sum sigma / S, s_eff_i = c a_i:
     * dL/da_j = c (ds_j - sum_i ds_i a_i / S) */
    double sum_s = 0, sum_a = 0, dot = 0;
    for (int i = 0; i < r; i++) {
        double a = (double)sigma[i] * t2_svf_act(p[i], act, max_mult);
        sum_s += sigma[i];
        sum_a += a;
        dot += (double)ds_eff[i] * a;
    }
    /* sum 0: the forward used c = 1 (see t2_svf_scale), so s_eff = a */
    const double c = sum_a != 0 ? sum_s / sum_a : 1.0, mean = sum_a != 0 ? dot / sum_a : 0.0;
    for (int i = 0; i < r; i++) {
        double da = c * (ds_eff[i] - mean);
        dp[i] += (float)(da * sigma[i] * t2_svf_act_grad(p[i], act, max_mult));
    }
}

/* ------------------------------------------------------------------------------------------ */
/* embedding, rmsnorm, rope, swiglu, residual                                                  */

void t2_tk_embed_forward(float *out, const int *tokens, const float *emb, int N, int D) {
    for (int t = 0; t < N; t++)
        memcpy(out + (size_t)t * D, emb + (size_t)tokens[t] * D, (size_t)D * sizeof(float));
}

void t2_tk_embed_backward(float *demb, const float *dout, const int *tokens, int N, int D) {
    for (int t = 0; t < N; t++) {
        float *d = demb + (size_t)tokens[t] * D;
        const float *g = dout + (size_t)t * D;
        for (int i = 0; i < D; i++) d[i] += g[i];
    }
}

void t2_tk_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int D,
                           float eps) {
    for (int t = 0; t < N; t++) {
        const float *xt = x + (size_t)t * D;
        float *o = out + (size_t)t * D;
        float ss = 0.0f;
        for (int i = 0; i < D; i++) ss += xt[i] * xt[i];
        ss /= D;
        ss += eps;
        ss = 1.0f / sqrtf(ss);
        for (int i = 0; i < D; i++) o[i] = w[i] * (ss * xt[i]);
        rstd[t] = ss;
    }
}

void t2_tk_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x,
                            const float *w, const float *rstd, int N, int D) {
    /* y_i = w_i x_i r, r = (mean x^2 + eps)^-1/2:
     * dx_i = r w_i dy_i - r^3 / D * x_i * sum_j (w_j dy_j x_j) */
    for (int t = 0; t < N; t++) {
        const float *xt = x + (size_t)t * D, *dy = dout + (size_t)t * D;
        float *d = dx + (size_t)t * D, r = rstd[t];
        float dot = 0.0f;
        for (int i = 0; i < D; i++) dot += w[i] * dy[i] * xt[i];
        float k = r * r * r * dot / D;
        for (int i = 0; i < D; i++) d[i] += r * w[i] * dy[i] - k * xt[i];
        if (dw)
            for (int i = 0; i < D; i++) dw[i] += dy[i] * xt[i] * r;
    }
}

void t2_tk_rope_tables(float *cos_t, float *sin_t, int T, int hd, float theta) {
    for (int pos = 0; pos < T; pos++)
        for (int i = 0; i + 1 < hd; i += 2) {
            /* exactly t2_rope's arithmetic */
            float freq = 1.0f / powf(theta, i / (float)hd);
            float val = pos * freq;
            cos_t[(size_t)pos * (hd / 2) + i / 2] = cosf(val);
            sin_t[(size_t)pos * (hd / 2) + i / 2] = sinf(val);
        }
}

void t2_tk_rope_tables_freq(float *cos_t, float *sin_t, int T, int hd, const float *inv_freq) {
    for (int pos = 0; pos < T; pos++)
        for (int i = 0; i < hd / 2; i++) {
            float val = pos * inv_freq[i];
            cos_t[(size_t)pos * (hd / 2) + i] = cosf(val);
            sin_t[(size_t)pos * (hd / 2) + i] = sinf(val);
        }
}

static void rope_apply(float *x, const float *cos_t, const float *sin_t, int B, int T,
                       int n_heads, int hd, float sign, int neox) {
    const int half = hd / 2;
    for (int row = 0; row < B * T; row++) {
        const float *c = cos_t + (size_t)(row % T) * half, *s = sin_t + (size_t)(row % T) * half;
        float *xr = x + (size_t)row * n_heads * hd;
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < half; i++) {
                float *v = xr + (size_t)h * hd;
                const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                float v0 = v[a], v1 = v[b], si = sign * s[i];
                v[a] = v0 * c[i] - v1 * si;
                v[b] = v0 * si + v1 * c[i];
            }
    }
}

void t2_tk_rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T,
                        int n_heads, int hd) {
    rope_apply(x, cos_t, sin_t, B, T, n_heads, hd, 1.0f, 0);
}

void t2_tk_rope_forward_ex(float *x, const float *cos_t, const float *sin_t, int B, int T,
                           int n_heads, int hd, int neox) {
    rope_apply(x, cos_t, sin_t, B, T, n_heads, hd, 1.0f, neox);
}

void t2_tk_rope_backward_ex(float *dx, const float *cos_t, const float *sin_t, int B, int T,
                            int n_heads, int hd, int neox) {
    rope_apply(dx, cos_t, sin_t, B, T, n_heads, hd, -1.0f, neox);
}

void t2_tk_rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T,
                         int n_heads, int hd) {
    rope_apply(dx, cos_t, sin_t, B, T, n_heads, hd, -1.0f, 0);
}

void t2_tk_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g * (1.0f / (1.0f + expf(-g))) * up[i];
    }
}

void t2_tk_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                           const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], sg = 1.0f / (1.0f + expf(-g)), silu = g * sg;
        dgate[i] += dout[i] * up[i] * sg * (1.0f + g * (1.0f - sg));
        dup[i] += dout[i] * silu;
    }
}

void t2_tk_residual_forward(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ------------------------------------------------------------------------------------------ */
/* attention                                                                                   */

typedef struct {
    float *out, *att, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *att_c;
    int B, T, H, K, hd;
} attn_job;

static void attn_fwd_task(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    const int T = j->T, H = j->H, hd = j->hd, QD = H * hd, KVD = j->K * hd;
    const int group = H / j->K;
    const float scale = 1.0f / sqrtf((float)hd);
    int lo, hi;
    t2_split(j->B * H, 1, ith, nth, &lo, &hi);
    for (int item = lo; item < hi; item++) {
        const int b = item / H, h = item % H, kvh = h / group;
        for (int t = 0; t < T; t++) {
            const float *q = j->q + ((size_t)b * T + t) * QD + (size_t)h * hd;
            float *a = j->att + (((size_t)b * H + h) * T + t) * T;
            float mx = -INFINITY;
            for (int s = 0; s <= t; s++) {
                const float *k = j->k + ((size_t)b * T + s) * KVD + (size_t)kvh * hd;
                a[s] = t2_dot_f32(q, k, hd) * scale;
                if (a[s] > mx) mx = a[s];
            }
            float sum = 0.0f;
            for (int s = 0; s <= t; s++) {
                a[s] = expf(a[s] - mx);
                sum += a[s];
            }
            float inv = 1.0f / sum;
            for (int s = 0; s <= t; s++) a[s] *= inv;
            for (int s = t + 1; s < T; s++) a[s] = 0.0f;
            float *o = j->out + ((size_t)b * T + t) * QD + (size_t)h * hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int s = 0; s <= t; s++)
                t2_axpy_f32(o, a[s], j->v + ((size_t)b * T + s) * KVD + (size_t)kvh * hd, hd);
        }
    }
}

void t2_tk_attention_forward(t2_pool *pool, float *out, float *att, const float *q,
                             const float *k, const float *v, int B, int T, int H, int K, int hd) {
    attn_job j = {.out = out, .att = att, .q = q, .k = k, .v = v,
                  .B = B, .T = T, .H = H, .K = K, .hd = hd};
    run(pool, attn_fwd_task, &j);
}

/* One item = (sequence, kv head): the query heads of its group, so that dk / dv of a kv head
 * are written by one thread only. */
static void attn_bwd_task(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    const int T = j->T, H = j->H, K = j->K, hd = j->hd, QD = H * hd, KVD = K * hd;
    const int group = H / K;
    const float scale = 1.0f / sqrtf((float)hd);
    float *da = j->scratch + (size_t)ith * T;
    int lo, hi;
    t2_split(j->B * K, 1, ith, nth, &lo, &hi);
    for (int item = lo; item < hi; item++) {
        const int b = item / K, kvh = item % K;
        for (int h = kvh * group; h < (kvh + 1) * group; h++)
            for (int t = 0; t < T; t++) {
                const size_t qo = ((size_t)b * T + t) * QD + (size_t)h * hd;
                const float *a = j->att_c + (((size_t)b * H + h) * T + t) * T;
                const float *go = j->dout + qo, *q = j->q + qo;
                float *dq = j->dq + qo;
                float dot = 0.0f;
                for (int s = 0; s <= t; s++) {
                    const size_t ko = ((size_t)b * T + s) * KVD + (size_t)kvh * hd;
                    da[s] = t2_dot_f32(go, j->v + ko, hd);
                    dot += a[s] * da[s];
                    t2_axpy_f32(j->dv + ko, a[s], go, hd);
                }
                for (int s = 0; s <= t; s++) {
                    const size_t ko = ((size_t)b * T + s) * KVD + (size_t)kvh * hd;
                    float ds = a[s] * (da[s] - dot) * scale;
                    t2_axpy_f32(dq, ds, j->k + ko, hd);
                    t2_axpy_f32(j->dk + ko, ds, q, hd);
                }
            }
    }
}

void t2_tk_attention_backward(t2_pool *pool, float *dq, float *dk, float *dv, float *scratch,
                              const float *dout, const float *q, const float *k, const float *v,
                              const float *att, int B, int T, int H, int K, int hd) {
    attn_job j = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .q = q, .k = k, .v = v,
                  .dout = dout, .att_c = att, .B = B, .T = T, .H = H, .K = K, .hd = hd};
    run(pool, attn_bwd_task, &j);
}

/* ------------------------------------------------------------------------------------------ */
/* cross-entropy                                                                               */

typedef struct {
    float *nll, *probs;
    const int *targets;
    const float *weights;
    float scale;
    int N, V;
} ce_job;

static void ce_fwd_task(void *ctx, int ith, int nth) {
    const ce_job *j = ctx;
    int lo, hi;
    t2_split(j->N, 1, ith, nth, &lo, &hi);
    for (int t = lo; t < hi; t++) {
        float *p = j->probs + (size_t)t * j->V;
        float mx = p[0];
        for (int i = 1; i < j->V; i++)
            if (p[i] > mx) mx = p[i];
        double sum = 0;
        for (int i = 0; i < j->V; i++) sum += expf(p[i] - mx);
        float lse = mx + (float)log(sum);
        int y = j->targets ? j->targets[t] : -1;
        j->nll[t] = y >= 0 ? lse - p[y] : 0.0f;
        for (int i = 0; i < j->V; i++) p[i] = expf(p[i] - lse);
    }
}

void t2_tk_crossentropy_forward(t2_pool *pool, float *nll, float *probs, const int *targets,
                                int N, int V) {
    ce_job j = {nll, probs, targets, NULL, 0, N, V};
    run(pool, ce_fwd_task, &j);
}

static void ce_bwd_task(void *ctx, int ith, int nth) {
    const ce_job *j = ctx;
    int lo, hi;
    t2_split(j->N, 1, ith, nth, &lo, &hi);
    for (int t = lo; t < hi; t++) {
        float *p = j->probs + (size_t)t * j->V;
        int y = j->targets[t];
        float w = y < 0 ? 0.0f : (j->weights ? j->weights[t] : 1.0f) * j->scale;
        if (w == 0.0f) {
            memset(p, 0, (size_t)j->V * sizeof(float));
            continue;
        }
        for (int i = 0; i < j->V; i++) p[i] *= w;
        p[y] -= w;
    }
}

void t2_tk_crossentropy_backward(t2_pool *pool, float *probs, const int *targets,
                                 const float *weights, float scale, int N, int V) {
    ce_job j = {NULL, probs, targets, weights, scale, N, V};
    run(pool, ce_bwd_task, &j);
}

/* ------------------------------------------------------------------------------------------ */
/* optimiser helpers                                                                           */

void t2_tk_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                 float b2, float eps, float wd, long t) {
    const float c1 = 1.0f - powf(b1, (float)t), c2 = 1.0f - powf(b2, (float)t);
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mh = mi / c1, vh = vi / c2;
        p[i] -= lr * (mh / (sqrtf(vh) + eps) + wd * p[i]);
    }
}

double t2_tk_sumsq(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void t2_tk_scale(float *x, float a, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] *= a;
}
