#include "transformer.h"

#include "kernels.h"
#include "t2_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct t2_state {
    const t2_model *m;
    int max_batch, n_ctx;
    /* activations for up to max_batch (B) tokens */
    float *x;      /* (B, D) residual stream */
    float *xb;     /* (B, D) normed input */
    float *xb2;    /* (B, H*h) attention output */
    float *q;      /* (B, H*h) */
    float *k;      /* (B, K*h) */
    float *v;      /* (B, K*h) */
    float *hb;     /* (B, F) gate, then swiglu */
    float *hb2;    /* (B, F) up */
    float *logits; /* (V) */
    float *key_cache;   /* (L, n_ctx, K*h) */
    float *value_cache; /* (L, n_ctx, K*h) */
    float *att;    /* (n_att_threads, n_ctx) attention scores, one row per pool thread */
    int n_att_threads;
};

void t2_state_destroy(t2_state **sp) {
    if (!sp || !*sp) return;
    t2_state *s = *sp;
    free(s->x);
    free(s->xb);
    free(s->xb2);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->hb);
    free(s->hb2);
    free(s->logits);
    free(s->key_cache);
    free(s->value_cache);
    free(s->att);
    free(s);
    *sp = NULL;
}

static float *falloc(size_t n) { return aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64); }

int t2_state_new(t2_state **out, const t2_model *m, int max_batch, int n_ctx) {
    const t2_config *c = &m->cfg;
    *out = NULL;
    if (n_ctx <= 0) n_ctx = c->seq_len;
    if (n_ctx > c->seq_len)
        return t2_err_set(T2_ERANGE, "context %d is longer than the model's %d", n_ctx, c->seq_len);
    if (max_batch <= 0 || max_batch > 65536)
        return t2_err_set(T2_ERANGE, "batch %d out of range (1..65536)", max_batch);
    t2_state *s = calloc(1, sizeof *s);
    if (!s) return t2_err_set(T2_ENOMEM, "out of memory for the run state");
    const size_t B = (size_t)max_batch, D = c->dim, F = c->hidden_dim;
    const size_t QD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    const size_t cache = (size_t)c->n_layers * n_ctx * KVD;
    s->m = m;
    s->max_batch = max_batch;
    s->n_ctx = n_ctx;
    s->x = falloc(B * D);
    s->xb = falloc(B * D);
    s->xb2 = falloc(B * QD);
    s->q = falloc(B * QD);
    s->k = falloc(B * KVD);
    s->v = falloc(B * KVD);
    s->hb = falloc(B * F);
    s->hb2 = falloc(B * F);
    s->logits = falloc((size_t)c->vocab_size);
    s->key_cache = falloc(cache);
    s->value_cache = falloc(cache);
    if (!s->x || !s->xb || !s->xb2 || !s->q || !s->k || !s->v || !s->hb || !s->hb2 || !s->logits ||
        !s->key_cache || !s->value_cache) {
        t2_state_destroy(&s);
        return t2_err_set(T2_ENOMEM, "out of memory for the run state (KV cache %zu MiB)",
                          2 * cache * sizeof(float) >> 20);
    }
    *out = s;
    return 0;
}

int t2_state_n_ctx(const t2_state *s) { return s->n_ctx; }
float *t2_state_logits(t2_state *s) { return s->logits; }

/* Y (B x W.rows) = X (B x W.cols) W^T */
static int linear(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int B) {
    if (B == 1) {
        t2_matvec(pool, Y, W, X);
        return 0;
    }
    return t2_matmul(pool, Y, W, X, B);
}

typedef struct {
    t2_state *s;
    int layer, B, pos;
} attn_ctx;

/* Causal grouped-query attention for tokens [0, B) of the chunk at positions pos + b, heads
 * split across threads by (token, head) pairs. */
static void attention_task(void *arg, int ith, int nth) {
    attn_ctx *a = arg;
    t2_state *s = a->s;
    const t2_config *c = &s->m->cfg;
    const int hd = c->head_dim, H = c->n_heads, group = c->n_heads / c->n_kv_heads;
    const int KVD = c->n_kv_heads * hd, QD = H * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t loff = (size_t)a->layer * s->n_ctx * KVD;
    float *att = s->att + (size_t)ith * s->n_ctx;
    int lo, hi;
    t2_split(a->B * H, 1, ith, nth, &lo, &hi);
    for (int item = lo; item < hi; item++) {
        const int b = item / H, h = item % H, p = a->pos + b;
        const float *q = s->q + (size_t)b * QD + (size_t)h * hd;
        const float *kc = s->key_cache + loff + (size_t)(h / group) * hd;
        const float *vc = s->value_cache + loff + (size_t)(h / group) * hd;
        for (int t = 0; t <= p; t++) att[t] = t2_dot_f32(q, kc + (size_t)t * KVD, hd) * scale;
        t2_softmax(att, p + 1);
        float *o = s->xb2 + (size_t)b * QD + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int t = 0; t <= p; t++) t2_axpy_f32(o, att[t], vc + (size_t)t * KVD, hd);
    }
}

static int ensure_att(t2_state *s, int nth) {
    if (s->n_att_threads >= nth) return 0;
    float *att = falloc((size_t)nth * s->n_ctx);
    if (!att) return t2_err_set(T2_ENOMEM, "out of memory for attention scores");
    free(s->att);
    s->att = att;
    s->n_att_threads = nth;
    return 0;
}

/* One chunk of B <= max_batch tokens. */
static int forward_chunk(t2_state *s, t2_pool *pool, const int *tokens, int B, int pos,
                         float *logits_all) {
    const t2_model *m = s->m;
    const t2_config *c = &m->cfg;
    const int D = c->dim, F = c->hidden_dim, hd = c->head_dim;
    const int QD = c->n_heads * hd, KVD = c->n_kv_heads * hd;
    int rc;

    for (int b = 0; b < B; b++)
        t2_to_f32(s->x + (size_t)b * D, t2_mat_row(&m->token_embd, tokens[b]), m->token_embd.type, D);

    for (int l = 0; l < c->n_layers; l++) {
        const t2_layer *ly = &m->layers[l];
        float *kc = s->key_cache + ((size_t)l * s->n_ctx + pos) * KVD;
        float *vc = s->value_cache + ((size_t)l * s->n_ctx + pos) * KVD;
        /* attention: x += wo @ attn(rope(wq @ rmsnorm(x)), rope(wk @ ...), wv @ ...) */
        for (int b = 0; b < B; b++)
            t2_rmsnorm(s->xb + (size_t)b * D, s->x + (size_t)b * D, ly->attn_norm, D, c->rms_eps);
        if (B == 1) {
            float *ys[3] = {s->q, kc, vc};
            const t2_mat *ws[3] = {&ly->wq, &ly->wk, &ly->wv};
            const float *xs[3] = {s->xb, s->xb, s->xb};
            t2_matvec_multi(pool, 3, ys, ws, xs);
        } else {
            if ((rc = t2_matmul(pool, s->q, &ly->wq, s->xb, B)) < 0 ||
                (rc = t2_matmul(pool, kc, &ly->wk, s->xb, B)) < 0 ||
                (rc = t2_matmul(pool, vc, &ly->wv, s->xb, B)) < 0)
                return rc;
        }
        for (int b = 0; b < B; b++) {
            t2_rope(s->q + (size_t)b * QD, c->n_heads, hd, pos + b, c->rope_theta);
            t2_rope(kc + (size_t)b * KVD, c->n_kv_heads, hd, pos + b, c->rope_theta);
        }
        attn_ctx actx = {s, l, B, pos};
        if (pool)
            t2_pool_run(pool, attention_task, &actx);
        else
            attention_task(&actx, 0, 1);
        if ((rc = linear(pool, s->xb, &ly->wo, s->xb2, B)) < 0) return rc;
        for (size_t i = 0; i < (size_t)B * D; i++) s->x[i] += s->xb[i];

        /* MLP: x += w_down @ (silu(w_gate @ rmsnorm(x)) * (w_up @ rmsnorm(x))) */
        for (int b = 0; b < B; b++)
            t2_rmsnorm(s->xb + (size_t)b * D, s->x + (size_t)b * D, ly->ffn_norm, D, c->rms_eps);
        if (B == 1) {
            float *ys[2] = {s->hb, s->hb2};
            const t2_mat *ws[2] = {&ly->w_gate, &ly->w_up};
            const float *xs[2] = {s->xb, s->xb};
            t2_matvec_multi(pool, 2, ys, ws, xs);
        } else {
            if ((rc = t2_matmul(pool, s->hb, &ly->w_gate, s->xb, B)) < 0 ||
                (rc = t2_matmul(pool, s->hb2, &ly->w_up, s->xb, B)) < 0)
                return rc;
        }
        t2_swiglu(s->hb, s->hb, s->hb2, B * F);
        if ((rc = linear(pool, s->xb, &ly->w_down, s->hb, B)) < 0) return rc;
        for (size_t i = 0; i < (size_t)B * D; i++) s->x[i] += s->xb[i];
    }

    /* classifier: all rows when asked for, else only the last token */
    if (logits_all) {
        for (int b = 0; b < B; b++)
            t2_rmsnorm(s->xb + (size_t)b * D, s->x + (size_t)b * D, m->output_norm, D, c->rms_eps);
        if ((rc = linear(pool, logits_all, &m->output, s->xb, B)) < 0) return rc;
        memcpy(s->logits, logits_all + (size_t)(B - 1) * c->vocab_size,
               (size_t)c->vocab_size * sizeof(float));
    } else {
        t2_rmsnorm(s->xb, s->x + (size_t)(B - 1) * D, m->output_norm, D, c->rms_eps);
        t2_matvec(pool, s->logits, &m->output, s->xb);
    }
    return 0;
}

int t2_forward(t2_state *s, t2_pool *pool, const int *tokens, int n, int pos, float *logits_all) {
    const int V = s->m->cfg.vocab_size;
    if (n <= 0) return t2_err_set(T2_EINVAL, "forward: no tokens");
    if (pos < 0 || pos > s->n_ctx - n)
        return t2_err_set(T2_ERANGE, "forward: positions %d..%d exceed the context of %d tokens",
                          pos, pos + n - 1, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return t2_err_set(T2_ERANGE, "forward: token %d at index %d is outside the vocabulary "
                              "(0..%d)", tokens[i], i, V - 1);
    int rc = ensure_att(s, pool ? t2_pool_size(pool) : 1);
    if (rc < 0) return rc;
    for (int done = 0; done < n; done += s->max_batch) {
        int B = n - done < s->max_batch ? n - done : s->max_batch;
        rc = forward_chunk(s, pool, tokens + done, B, pos + done,
                           logits_all ? logits_all + (size_t)done * V : NULL);
        if (rc < 0) return rc;
    }
    return 0;
}
