#include "engine/transformer.h"

#include "engine/kernels.h"
#include "engine/adapt.h"
#include "engine/attention.h"
#include "base/t2_err.h"
#include "base/t2_limits.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct t2_state {
    const t2_model *m;
    const t2_adapt *adapt;
    int max_batch, n_ctx, l0, l1;
    /* activations for up to max_batch (B) tokens */
    float *x;      /* (B, D) residual stream */
    float *xb;     /* (B, D) normed input / projection output */
    float *xb2;    /* (B, H*h) attention output */
    float *q;      /* (B, H*h) */
    float *k;      /* (B, K*h) */
    float *v;      /* (B, K*h) */
    float *hb;     /* (B, F) gate, then swiglu */
    float *hb2;    /* (B, F) up */
    float *z;      /* (B, D) factored SVF: Vᵀ x (rank <= D) */
    float *logits; /* (V) */
    /* KV cache: blocks of T2_KV_BLOCK tokens from a pool (engine/kvcache.h) */
    t2_kvpool *kv;
    int own_kv;        /* kv is this state's own pool */
    int32_t *blocks;   /* (max_blocks) block ids of positions [0, n_held * T2_KV_BLOCK) */
    int n_held, max_blocks;
    size_t kv_row;     /* bytes of one cache row */
    int simd;          /* attention kernels: t2_att_simd() */
    float *part;       /* (n_seg, H, h + 2) decode attention partials per segment */
    int n_seg;
    float *att;        /* (n_att_threads, att_len) attention scratch, one row per pool thread */
    size_t att_len;
    int n_att_threads;
    t2_layer_hook hook; /* called between the layers of a prompt chunk (NULL: none) */
    void *hook_arg;
};

#define ROWS_MAX 128 /* (query, head) rows per prompt attention work item */
/* prompt queries per attention work item: ROWS_MAX rows of G heads each (at least 1 query) */
static inline int qtile(int G) { return G < ROWS_MAX ? ROWS_MAX / G : 1; }

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
    free(s->z);
    free(s->logits);
    t2_state_release(s);
    if (s->own_kv) t2_kvpool_destroy(&s->kv);
    free(s->blocks);
    free(s->part);
    free(s->att);
    free(s);
    *sp = NULL;
}

static float *falloc(size_t n) { return aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64); }

/* The state's KV pool (its own, lazily resident, when none is given) and its block table. */
static int state_kv(t2_state *s, t2_dtype type, t2_kvpool *pool) {
    const t2_config *c = &s->m->cfg;
    const int KVD = c->n_kv_heads * c->head_dim, nl = s->l1 - s->l0;
    int rc;
    s->max_blocks = (int)t2_kv_blocks_for(s->n_ctx);
    if (pool) {
        if (t2_kvpool_n_layers(pool) != nl || t2_kvpool_kv_dim(pool) != KVD)
            return t2_err_set(T2_EMISMATCH, "KV pool for %d layers of %d values, the state "
                              "needs %d of %d", t2_kvpool_n_layers(pool),
                              t2_kvpool_kv_dim(pool), nl, KVD);
        s->kv = pool;
    } else {
        if ((rc = t2_kvpool_new(&s->kv, type, nl, KVD, s->max_blocks)) < 0) return rc;
        s->own_kv = 1;
    }
    s->kv_row = t2_kv_row_bytes(t2_kvpool_type(s->kv), KVD);
    s->simd = t2_att_simd();
    if (!(s->blocks = malloc((size_t)s->max_blocks * sizeof *s->blocks)))
        return t2_err_set(T2_ENOMEM, "out of memory for the KV block table");
    return 0;
}

/* Activation buffers and attention partials. */
static int state_buffers(t2_state *s, int max_batch) {
    const t2_config *c = &s->m->cfg;
    const size_t B = (size_t)max_batch, D = c->dim, F = c->hidden_dim;
    const size_t QD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    s->n_seg = (s->n_ctx + T2_ATT_SEG - 1) / T2_ATT_SEG;
    s->x = falloc(B * D);
    s->xb = falloc(B * D);
    s->xb2 = falloc(B * QD);
    s->q = falloc(B * QD);
    s->k = falloc(B * KVD);
    s->v = falloc(B * KVD);
    s->hb = falloc(B * F);
    s->hb2 = falloc(B * F);
    s->z = falloc(B * D);
    s->logits = falloc((size_t)c->vocab_size);
    s->part = falloc((size_t)s->n_seg * c->n_heads * (c->head_dim + 2));
    if (!s->x || !s->xb || !s->xb2 || !s->q || !s->k || !s->v || !s->hb || !s->hb2 || !s->z ||
        !s->logits || !s->part)
        return t2_err_set(T2_ENOMEM, "out of memory for the run state");
    return 0;
}

int t2_state_new_kv(t2_state **out, const t2_model *m, int max_batch, int n_ctx, int l0, int l1,
                    t2_dtype kv_type, t2_kvpool *pool) {
    const t2_config *c = &m->cfg;
    *out = NULL;
    if (n_ctx <= 0) n_ctx = c->seq_len;
    if (n_ctx > c->seq_len)
        return t2_err_set(T2_ERANGE, "context %d is longer than the model's %d", n_ctx, c->seq_len);
    if (max_batch <= 0 || max_batch > 65536)
        return t2_err_set(T2_ERANGE, "batch %d out of range (1..65536)", max_batch);
    if (l0 < 0 || l1 > c->n_layers || l0 >= l1)
        return t2_err_set(T2_ERANGE, "layer range [%d, %d) not within the model's %d layers", l0,
                          l1, c->n_layers);
    t2_state *s = calloc(1, sizeof *s);
    if (!s) return t2_err_set(T2_ENOMEM, "out of memory for the run state");
    s->m = m;
    s->max_batch = max_batch;
    s->n_ctx = n_ctx;
    s->l0 = l0;
    s->l1 = l1;
    int rc = state_kv(s, kv_type, pool);
    if (rc == 0) rc = state_buffers(s, max_batch);
    if (rc < 0) {
        t2_state_destroy(&s);
        return rc;
    }
    *out = s;
    return 0;
}

int t2_state_new_range(t2_state **out, const t2_model *m, int max_batch, int n_ctx, int l0, int l1) {
    return t2_state_new_kv(out, m, max_batch, n_ctx, l0, l1, T2_F32, NULL);
}

int t2_state_new(t2_state **out, const t2_model *m, int max_batch, int n_ctx) {
    return t2_state_new_range(out, m, max_batch, n_ctx, 0, m->cfg.n_layers);
}

/* Attention scratch floats of one pool thread: decoding scores of all heads, portable prompt
 * partials, or the SIMD prompt rows (the largest), in whole 64-byte lines. */
static size_t att_floats(const t2_config *c) {
    const size_t hd = (size_t)c->head_dim, G = (size_t)(c->n_heads / c->n_kv_heads), P = hd + 2;
    const size_t R = (size_t)qtile((int)G) * G;
    size_t f = (size_t)c->n_heads * (T2_ATT_SEG + 256), gen = G * T2_ATT_SEG + G * P + R * P;
    const size_t rows = t2_att_rows_floats((int)hd, (int)R);
    f = f > gen ? f : gen;
    f = f > rows ? f : rows;
    return (f + 15) / 16 * 16;
}

size_t t2_state_scratch_bytes(const t2_model *m, int max_batch, int n_ctx, int n_threads) {
    const t2_config *c = &m->cfg;
    const size_t B = (size_t)max_batch, hd = (size_t)c->head_dim, H = (size_t)c->n_heads;
    const size_t QD = H * hd, KVD = (size_t)c->n_kv_heads * hd;
    const size_t nseg = ((size_t)n_ctx + T2_ATT_SEG - 1) / T2_ATT_SEG;
    const size_t att = att_floats(c);
    size_t f = B * (3 * (size_t)c->dim + 2 * QD + 2 * KVD + 2 * (size_t)c->hidden_dim) +
               (size_t)c->vocab_size + nseg * H * (hd + 2) + (size_t)n_threads * att;
    return f * sizeof(float) + (size_t)t2_kv_blocks_for(n_ctx) * sizeof(int32_t);
}

int t2_state_reserve(t2_state *s, int n_tokens) {
    if (n_tokens > s->n_ctx)
        return t2_err_set(T2_ERANGE, "%d tokens exceed the context of %d", n_tokens, s->n_ctx);
    const int need = (int)t2_kv_blocks_for(n_tokens);
    while (s->n_held < need) {
        int rc = t2_kvpool_alloc(s->kv, &s->blocks[s->n_held]);
        if (rc < 0)
            return t2_err_set(T2_EBUSY, "KV pool exhausted: %d tokens need %d blocks of %d, this "
                              "sequence holds %d and none of the pool's %lld is free", n_tokens,
                              need, T2_KV_BLOCK, s->n_held, (long long)t2_kvpool_n_blocks(s->kv));
        s->n_held++;
    }
    return 0;
}

void t2_state_release(t2_state *s) {
    if (!s || !s->kv) return;
    while (s->n_held > 0) t2_kvpool_free(s->kv, s->blocks[--s->n_held]);
}

int t2_state_prefix_map(t2_state *s, uint64_t seed, const int *tokens, int max_tokens) {
    if (s->n_held || max_tokens < T2_KV_BLOCK) return 0;
    int nb = max_tokens / T2_KV_BLOCK;
    if (nb > s->max_blocks) nb = s->max_blocks;
    s->n_held = t2_kvpool_prefix_map(s->kv, seed, tokens, nb, s->blocks, NULL);
    return s->n_held * T2_KV_BLOCK;
}

int t2_state_prefix_publish(t2_state *s, uint64_t seed, const int *tokens, int n_tokens) {
    int nb = n_tokens / T2_KV_BLOCK, added = 0;
    if (nb > s->n_held) nb = s->n_held;
    uint64_t parent = seed;
    for (int i = 0; i < nb; i++)
        added += t2_kvpool_prefix_add(s->kv, s->blocks[i], parent,
                                      tokens + (size_t)i * T2_KV_BLOCK, &parent) == 0;
    return added;
}

int t2_state_kv_tokens(const t2_state *s) { return s->n_held * T2_KV_BLOCK; }
t2_dtype t2_state_kv_type(const t2_state *s) { return t2_kvpool_type(s->kv); }
t2_kvpool *t2_state_kv_pool(const t2_state *s) { return s->kv; }

int t2_state_n_ctx(const t2_state *s) { return s->n_ctx; }
float *t2_state_logits(t2_state *s) { return s->logits; }
float *t2_state_x(t2_state *s) { return s->x; }
void t2_state_set_adapt(t2_state *s, const t2_adapt *a) { s->adapt = a; }

static int ensure_att(t2_state *s, int nth) {
    if (s->n_att_threads >= nth) return 0;
    s->att_len = att_floats(&s->m->cfg);
    float *att = falloc((size_t)nth * s->att_len);
    if (!att) return t2_err_set(T2_ENOMEM, "out of memory for attention scores");
    free(s->att);
    s->att = att;
    s->n_att_threads = nth;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* linear layers, with or without an adaptation                                                */

/* Y (B x W.rows) = X (B x W.cols) Wᵀ */
static int linear(t2_pool *pool, float *Y, const t2_mat *W, const float *X, int B) {
    if (B == 1) {
        t2_matvec(pool, Y, W, X);
        return 0;
    }
    return t2_matmul(pool, Y, W, X, B);
}

static inline int adapt_idx(int l, int k) { return l * T2_N_TARGETS + k; }

/* Y (B x rows) += U_r (d ⊙ (V_rᵀ X)): an expert's low-rank difference on top of the base
 * weight's output (z: B x r scratch). */
static int lowrank_add(t2_pool *pool, float *z, const t2_lowrank *lr, int rows, int cols,
                       float *Y, const float *X, int B) {
    if (!lr->r) return 0;
    const t2_mat Vt = {T2_F32, lr->r, cols, lr->Vt};
    int rc = linear(pool, z, &Vt, X, B);
    if (rc < 0) return rc;
    for (int b = 0; b < B; b++) {
        float *zb = z + (size_t)b * lr->r, *yb = Y + (size_t)b * rows;
        for (int q = 0; q < lr->r; q++) zb[q] *= lr->d[q];
        for (int i = 0; i < rows; i++) yb[i] += t2_dot_f32(lr->U + (size_t)i * lr->r, zb, lr->r);
    }
    return 0;
}

/* Single sequence, B tokens: target k of layer l. */
static int lin(t2_state *s, t2_pool *pool, int l, int k, float *Y, const float *X, int B) {
    const t2_mat *W = t2_layer_mat(&s->m->layers[l], k);
    const t2_adapt *a = s->adapt;
    const int idx = adapt_idx(l, k);
    if (a && a->sigma[idx]) {
        if (a->mode == T2_APPLY_MERGED) return linear(pool, Y, &a->merged[idx], X, B);
        if (a->mode == T2_APPLY_LOWRANK) {
            int rc = linear(pool, Y, W, X, B);
            return rc < 0 ? rc : lowrank_add(pool, s->z, &a->lowrank[idx], W->rows, W->cols, Y,
                                             X, B);
        }
        const t2_svd *sv = t2_adapt_svd(a, l, k);
        const t2_mat Vt = {T2_F32, sv->rank, sv->cols, sv->Vt};
        const t2_mat U = {T2_F32, sv->rows, sv->rank, sv->U};
        int rc = linear(pool, s->z, &Vt, X, B);
        if (rc < 0) return rc;
        const float *sig = a->sigma[idx];
        for (int b = 0; b < B; b++)
            for (int q = 0; q < sv->rank; q++) s->z[(size_t)b * sv->rank + q] *= sig[q];
        return linear(pool, Y, &U, s->z, B);
    }
    return linear(pool, Y, W, X, B);
}

/* n sequences, one token each: ys[i] = W_i xs[i] for target k of layer l, where W_i is the base
 * matrix, sequence i's merged matrix, or its factored form. Sequences that use the same matrix
 * share one pass over it; all factored sequences share the passes over Vᵀ and U. */
static void lin_multi(t2_state *const *st, int n, t2_pool *pool, int l, int k, float *const *ys,
                      const float *const *xs) {
    const t2_mat *base = t2_layer_mat(&st[0]->m->layers[l], k);
    const int idx = adapt_idx(l, k);
    const t2_mat *w[T2_MAX_SEQS];
    int done[T2_MAX_SEQS], nf = 0;
    float *gy[T2_MAX_SEQS], *fz[T2_MAX_SEQS];
    const float *gx[2 * T2_MAX_SEQS]; /* factored inputs first, then one dense group's */
    const t2_adapt *fa = NULL;
    for (int i = 0; i < n; i++) {
        const t2_adapt *a = st[i]->adapt;
        done[i] = 0;
        w[i] = base;
        if (a && a->sigma[idx]) {
            if (a->mode == T2_APPLY_MERGED) {
                w[i] = &a->merged[idx];
            } else if (a->mode == T2_APPLY_LOWRANK) { /* base, then its own difference */
            } else { /* factored */
                w[i] = NULL;
                fa = a;
                gx[nf] = xs[i];
                fz[nf++] = st[i]->z;
            }
        }
    }
    /* dense groups: one pass per distinct matrix */
    for (int i = 0; i < n; i++) {
        if (done[i] || !w[i]) continue;
        int g = 0;
        for (int j = i; j < n; j++)
            if (!done[j] && w[j] && w[j]->data == w[i]->data) {
                gy[g] = ys[j];
                gx[nf + g] = xs[j];
                g++;
                done[j] = 1;
            }
        t2_matvec_batch(pool, gy, w[i], gx + nf, g);
    }
    for (int i = 0; i < n; i++) {
        const t2_adapt *a = st[i]->adapt;
        if (a && a->sigma[idx] && a->mode == T2_APPLY_LOWRANK)
            lowrank_add(pool, st[i]->z, &a->lowrank[idx], base->rows, base->cols, ys[i], xs[i], 1);
    }
    if (!nf) return;
    const t2_svd *sv = t2_adapt_svd(fa, l, k);
    const t2_mat Vt = {T2_F32, sv->rank, sv->cols, sv->Vt};
    const t2_mat U = {T2_F32, sv->rows, sv->rank, sv->U};
    t2_matvec_batch(pool, fz, &Vt, gx, nf);
    int f = 0;
    for (int i = 0; i < n; i++) {
        const t2_adapt *a = st[i]->adapt;
        if (w[i]) continue;
        const float *sig = a->sigma[idx];
        for (int q = 0; q < sv->rank; q++) fz[f][q] *= sig[q];
        gy[f++] = ys[i];
    }
    t2_matvec_batch(pool, gy, &U, (const float *const *)fz, nf);
}

/* One sequence, one token: ys[j] = W_j x for the nk consecutive targets k0.. of layer l that
 * read the same x (Q, K, V; gate, up), in one t2_matvec_multi call when every target is a plain
 * matrix (the base one or a merged W'): x is prepared once and the threads split the rows of all
 * of them in one fork/join. Every row is computed as by t2_matvec, so the values are those of
 * lin_multi. Returns 0 when done, 1 when a target is factored or low-rank (the caller falls back
 * to lin_multi per target). */
static int lin_fused(const t2_state *s, t2_pool *pool, int l, int k0, int nk, float *const *ys,
                     const float *x) {
    const t2_mat *w[3];
    const float *xs[3];
    const t2_adapt *a = s->adapt;
    for (int j = 0; j < nk; j++) {
        const int idx = adapt_idx(l, k0 + j);
        w[j] = t2_layer_mat(&s->m->layers[l], k0 + j);
        xs[j] = x;
        if (a && a->sigma[idx]) {
            if (a->mode != T2_APPLY_MERGED) return 1;
            w[j] = &a->merged[idx];
        }
    }
    t2_matvec_multi(pool, nk, ys, w, xs);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* attention                                                                                   */

typedef struct {
    t2_state *const *st; /* n_st states */
    int n_st, B, layer;  /* B tokens per state (B > 1: one state) */
    const int *pos;      /* first position of each state's tokens */
    int hg;              /* decode: groups of KV heads per segment */
    int first[T2_MAX_SEQS + 1]; /* decode: first work item of each state */
} attn_ctx;

static t2_kvv kv_view(const t2_state *s, int layer) {
    const size_t li = (size_t)(layer - s->l0), blk = (size_t)T2_KV_BLOCK * s->kv_row;
    return (t2_kvv){.type = t2_kvpool_type(s->kv), .simd = s->simd,
                    .base = t2_kvpool_block(s->kv, 0), .block_bytes = t2_kvpool_block_bytes(s->kv),
                    .row_bytes = s->kv_row, .blocks = s->blocks, .k_off = 2 * li * blk,
                    .v_off = (2 * li + 1) * blk};
}

/* Decode, pass 1: work items (state i, segment, group of KV heads), segment-major so that a
 * thread reads whole cache rows: the segment partials of the group's heads into the state's
 * part. The partial of a (segment, head) is the same whichever item or thread computes it. */
static void attn_decode_task(void *arg, int ith, int nth) {
    attn_ctx *a = arg;
    const t2_config *c = &a->st[0]->m->cfg;
    const int hd = c->head_dim, H = c->n_heads, K = c->n_kv_heads, G = H / K, P = hd + 2;
    const float scale = 1.0f / sqrtf((float)hd);
    int lo, hi;
    t2_split(a->first[a->n_st], 1, ith, nth, &lo, &hi);
    for (int item = lo, i = 0; item < hi; item++) {
        while (item >= a->first[i + 1]) i++;
        t2_state *s = a->st[i];
        const int p = a->pos[i], r = item - a->first[i], seg = r / a->hg, gi = r % a->hg;
        const int k0 = gi * K / a->hg, k1 = (gi + 1) * K / a->hg, t0 = seg * T2_ATT_SEG;
        const int t1 = t0 + T2_ATT_SEG < p + 1 ? t0 + T2_ATT_SEG : p + 1;
        const t2_kvv kv = kv_view(s, a->layer);
        t2_att_dec(&kv, k0, k1 - k0, G, hd, s->q + (size_t)k0 * G * hd, scale, t0, t1,
                   s->att + (size_t)ith * s->att_len,
                   s->part + ((size_t)seg * H + (size_t)k0 * G) * P);
    }
}

/* Decode, pass 2: items (state, head): fold the segments in order into the output (n_st x H x
 * segments x h operations: run on the calling thread). */
static void attn_fold_task(void *arg, int ith, int nth) {
    attn_ctx *a = arg;
    const t2_config *c = &a->st[0]->m->cfg;
    const int hd = c->head_dim, H = c->n_heads, P = hd + 2;
    int lo, hi;
    t2_split(a->n_st * H, 1, ith, nth, &lo, &hi);
    for (int item = lo; item < hi; item++) {
        t2_state *s = a->st[item / H];
        const int h = item % H, nseg = a->pos[item / H] / T2_ATT_SEG + 1;
        float *r = s->part + (size_t)h * P; /* segment 0's partial is the running one */
        for (int seg = 1; seg < nseg; seg++) t2_att_fold(r, s->part + ((size_t)seg * H + h) * P, hd);
        t2_att_finish(s->xb2 + (size_t)h * hd, r, hd);
    }
}

/* Prompt batch with the SIMD kernels: queries b0..b1-1 of the batch, KV head kvh, as
 * (query, head) rows in position order. */
static void attn_rows_item(attn_ctx *a, t2_state *s, int kvh, int b0, int b1, float *scratch) {
    const t2_config *c = &s->m->cfg;
    const int hd = c->head_dim, G = c->n_heads / c->n_kv_heads, QD = c->n_heads * hd;
    const t2_kvv kv = kv_view(s, a->layer);
    const float *q[ROWS_MAX];
    float *out[ROWS_MAX];
    int pos[ROWS_MAX], R = 0;
    for (int b = b0; b < b1; b++)
        for (int g = 0; g < G; g++, R++) {
            const size_t off = (size_t)b * QD + (size_t)(kvh * G + g) * hd;
            q[R] = s->q + off;
            out[R] = s->xb2 + off;
            pos[R] = a->pos[0] + b;
        }
    t2_att_rows(&kv, kvh * hd, hd, q, pos, R, 1.0f / sqrtf((float)hd), scratch, out);
}

/* Prompt batch of one state: items (tile of qtile(G) queries, KV head). Each query's segments
 * are computed and folded in order (as decoding does), a segment's keys and values read once
 * for the tile's queries. */
static void attn_batch_task(void *arg, int ith, int nth) {
    attn_ctx *a = arg;
    t2_state *s = a->st[0];
    const t2_config *c = &s->m->cfg;
    const int hd = c->head_dim, H = c->n_heads, K = c->n_kv_heads, G = H / K, P = hd + 2;
    const int QD = H * hd, QT = qtile(G), ntile = (a->B + QT - 1) / QT;
    const float scale = 1.0f / sqrtf((float)hd);
    float *sc = s->att + (size_t)ith * s->att_len, *pp = sc + (size_t)G * T2_ATT_SEG;
    float *run = pp + (size_t)G * P;
    const t2_kvv kv = kv_view(s, a->layer);
    int lo, hi;
    t2_split(ntile * K, 1, ith, nth, &lo, &hi);
    const int tiled = t2_att_rows_ok(&kv, hd) && G <= ROWS_MAX;
    for (int item = lo; item < hi; item++) {
        const int b0 = (item / K) * QT, kvh = item % K;
        const int b1 = b0 + QT < a->B ? b0 + QT : a->B, plast = a->pos[0] + b1 - 1;
        if (tiled) {
            attn_rows_item(a, s, kvh, b0, b1, sc);
            continue;
        }
        for (int seg = 0; seg * T2_ATT_SEG <= plast; seg++) {
            const int t0 = seg * T2_ATT_SEG;
            for (int b = b0; b < b1; b++) {
                const int p = a->pos[0] + b;
                if (p < t0) continue;
                const int t1 = t0 + T2_ATT_SEG < p + 1 ? t0 + T2_ATT_SEG : p + 1;
                float *r = run + (size_t)(b - b0) * G * P;
                t2_att_partial(&kv, kvh * hd, hd, s->q + (size_t)b * QD + (size_t)kvh * G * hd, G,
                               scale, t0, t1, sc, seg ? pp : r);
                for (int g = 0; seg && g < G; g++)
                    t2_att_fold(r + (size_t)g * P, pp + (size_t)g * P, hd);
            }
        }
        for (int b = b0; b < b1; b++)
            for (int g = 0; g < G; g++)
                t2_att_finish(s->xb2 + (size_t)b * QD + (size_t)(kvh * G + g) * hd,
                              run + ((size_t)(b - b0) * G + g) * P, hd);
    }
}

static void pool_run(t2_pool *pool, void (*fn)(void *, int, int), void *arg) {
    if (pool)
        t2_pool_run(pool, fn, arg);
    else
        fn(arg, 0, 1);
}

static void run_attention(t2_pool *pool, attn_ctx *a) {
    if (a->B > 1) {
        pool_run(pool, attn_batch_task, a);
        return;
    }
    const int K = a->st[0]->m->cfg.n_kv_heads, nth = pool ? t2_pool_size(pool) : 1;
    int segs = 0;
    for (int i = 0; i < a->n_st; i++) segs += a->pos[i] / T2_ATT_SEG + 1;
    /* few segments: split the heads too, so every thread has work (results do not change) */
    a->hg = segs >= 2 * nth ? 1 : (2 * nth + segs - 1) / segs;
    a->hg = a->hg < K ? a->hg : K;
    a->first[0] = 0;
    for (int i = 0; i < a->n_st; i++)
        a->first[i + 1] = a->first[i] + a->hg * (a->pos[i] / T2_ATT_SEG + 1);
    pool_run(pool, attn_decode_task, a);
    attn_fold_task(a, 0, 1); /* small: no second round of the pool's threads */
}

/* Store n tokens' k and v rows (after rope) at positions pos.. of layer `layer`'s cache. */
static void kv_write(t2_state *s, int layer, const float *k, const float *v, int n, int pos) {
    const t2_kvv kv = kv_view(s, layer);
    const int KVD = s->m->cfg.n_kv_heads * s->m->cfg.head_dim;
    for (int b = 0; b < n; b++) {
        const int t = pos + b;
        uint8_t *blk = (uint8_t *)kv.base + (size_t)s->blocks[t / T2_KV_BLOCK] * kv.block_bytes;
        const size_t r = (size_t)(t % T2_KV_BLOCK) * kv.row_bytes;
        t2_kv_store(&kv, blk + kv.k_off + r, k + (size_t)b * KVD, KVD);
        t2_kv_store(&kv, blk + kv.v_off + r, v + (size_t)b * KVD, KVD);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* rotary embedding, biases and Q/K norms                                                      */

/* Rotate n_heads heads of x at position pos: t2_rope for plain Llama; else by the model's
 * frequency table, on adjacent pairs (llama: x[2i], x[2i+1]) or on halves (NEOX, qwen2/qwen3:
 * x[i], x[i + h/2]). */
static void rope(const t2_model *m, float *x, int n_heads, int pos) {
    const t2_config *c = &m->cfg;
    if (!m->rope_inv_freq) {
        t2_rope(x, n_heads, c->head_dim, pos, c->rope_theta);
        return;
    }
    const int hd = c->head_dim, half = hd / 2, neox = c->arch != T2_ARCH_LLAMA;
    for (int i = 0; i < half; i++) {
        float val = pos * m->rope_inv_freq[i];
        float fcr = cosf(val), fci = sinf(val);
        const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)h * hd;
            float v0 = v[a], v1 = v[b];
            v[a] = v0 * fcr - v1 * fci;
            v[b] = v0 * fci + v1 * fcr;
        }
    }
}

/* One token's q (H*h), k and v (K*h) after their projections: + biases (qwen2), per-head
 * RMSNorm of q and k (qwen3), then the rotary embedding of q and k at position pos. */
static void qkv_post(const t2_model *m, const t2_layer *ly, float *q, float *k, float *v,
                     int pos) {
    const t2_config *c = &m->cfg;
    const int hd = c->head_dim, QD = c->n_heads * hd, KVD = c->n_kv_heads * hd;
    if (ly->bq) {
        for (int i = 0; i < QD; i++) q[i] += ly->bq[i];
        for (int i = 0; i < KVD; i++) k[i] += ly->bk[i];
        for (int i = 0; i < KVD; i++) v[i] += ly->bv[i];
    }
    if (ly->q_norm) {
        for (int h = 0; h < c->n_heads; h++)
            t2_rmsnorm(q + (size_t)h * hd, q + (size_t)h * hd, ly->q_norm, hd, c->rms_eps);
        for (int h = 0; h < c->n_kv_heads; h++)
            t2_rmsnorm(k + (size_t)h * hd, k + (size_t)h * hd, ly->k_norm, hd, c->rms_eps);
    }
    rope(m, q, c->n_heads, pos);
    rope(m, k, c->n_kv_heads, pos);
}

/* ------------------------------------------------------------------------------------------ */
/* stages                                                                                      */

int t2_embed(t2_state *s, const int *tokens, int n) {
    const t2_model *m = s->m;
    const int D = m->cfg.dim, V = m->cfg.vocab_size;
    if (n <= 0 || n > s->max_batch)
        return t2_err_set(T2_ERANGE, "embed: %d tokens (batch holds 1..%d)", n, s->max_batch);
    for (int b = 0; b < n; b++) {
        if (tokens[b] < 0 || tokens[b] >= V)
            return t2_err_set(T2_ERANGE, "token %d at index %d is outside the vocabulary (0..%d)",
                              tokens[b], b, V - 1);
        t2_to_f32(s->x + (size_t)b * D, t2_mat_row(&m->token_embd, tokens[b]), m->token_embd.type, D);
    }
    return 0;
}

static int check_pos(const t2_state *s, int n, int pos) {
    if (pos < 0 || pos > s->n_ctx - n)
        return t2_err_set(T2_ERANGE, "positions %d..%d exceed the context of %d tokens", pos,
                          pos + n - 1, s->n_ctx);
    return 0;
}

/* B > 1 tokens of one sequence (matrix-matrix path). */
static int layers_batch(t2_state *s, t2_pool *pool, int B, int pos) {
    const t2_model *m = s->m;
    const t2_config *c = &m->cfg;
    const int D = c->dim, F = c->hidden_dim, hd = c->head_dim;
    const int QD = c->n_heads * hd, KVD = c->n_kv_heads * hd;
    int rc;
    for (int l = s->l0; l < s->l1; l++) {
        const t2_layer *ly = &m->layers[l];
        /* attention: x += wo @ attn(rope(wq @ rmsnorm(x)), rope(wk @ ...), wv @ ...) */
        for (int b = 0; b < B; b++)
            t2_rmsnorm(s->xb + (size_t)b * D, s->x + (size_t)b * D, ly->attn_norm, D, c->rms_eps);
        if ((rc = lin(s, pool, l, T2_TGT_Q, s->q, s->xb, B)) < 0 ||
            (rc = lin(s, pool, l, T2_TGT_K, s->k, s->xb, B)) < 0 ||
            (rc = lin(s, pool, l, T2_TGT_V, s->v, s->xb, B)) < 0)
            return rc;
        for (int b = 0; b < B; b++)
            qkv_post(m, ly, s->q + (size_t)b * QD, s->k + (size_t)b * KVD, s->v + (size_t)b * KVD,
                     pos + b);
        kv_write(s, l, s->k, s->v, B, pos);
        attn_ctx actx = {.st = &s, .n_st = 1, .B = B, .layer = l, .pos = &pos};
        run_attention(pool, &actx);
        if ((rc = lin(s, pool, l, T2_TGT_O, s->xb, s->xb2, B)) < 0) return rc;
        for (size_t i = 0; i < (size_t)B * D; i++) s->x[i] += s->xb[i];
        /* MLP: x += w_down @ (silu(w_gate @ rmsnorm(x)) * (w_up @ rmsnorm(x))) */
        for (int b = 0; b < B; b++)
            t2_rmsnorm(s->xb + (size_t)b * D, s->x + (size_t)b * D, ly->ffn_norm, D, c->rms_eps);
        if ((rc = lin(s, pool, l, T2_TGT_GATE, s->hb, s->xb, B)) < 0 ||
            (rc = lin(s, pool, l, T2_TGT_UP, s->hb2, s->xb, B)) < 0)
            return rc;
        t2_swiglu(s->hb, s->hb, s->hb2, B * F);
        if ((rc = lin(s, pool, l, T2_TGT_DOWN, s->xb, s->hb, B)) < 0) return rc;
        for (size_t i = 0; i < (size_t)B * D; i++) s->x[i] += s->xb[i];
        if (s->hook) s->hook(s->hook_arg);
    }
    return 0;
}

void t2_state_set_layer_hook(t2_state *s, t2_layer_hook fn, void *arg) {
    s->hook = fn;
    s->hook_arg = arg;
}

/* One token for each of n sequences (matrix-vector path, shared passes over the weights). */
static int layers_multi(t2_state *const *st, int n, t2_pool *pool, const int *pos) {
    const t2_model *m = st[0]->m;
    const t2_config *c = &m->cfg;
    const int D = c->dim, F = c->hidden_dim;
    float *ys[T2_MAX_SEQS], *ys2[T2_MAX_SEQS];
    const float *xs[T2_MAX_SEQS];
    for (int l = st[0]->l0; l < st[0]->l1; l++) {
        const t2_layer *ly = &m->layers[l];
        for (int i = 0; i < n; i++) {
            t2_rmsnorm(st[i]->xb, st[i]->x, ly->attn_norm, D, c->rms_eps);
            xs[i] = st[i]->xb;
        }
        float *qkv[3] = {st[0]->q, st[0]->k, st[0]->v};
        if (n > 1 || lin_fused(st[0], pool, l, T2_TGT_Q, 3, qkv, xs[0])) {
            for (int i = 0; i < n; i++) ys[i] = st[i]->q;
            lin_multi(st, n, pool, l, T2_TGT_Q, ys, xs);
            for (int i = 0; i < n; i++) ys[i] = st[i]->k;
            lin_multi(st, n, pool, l, T2_TGT_K, ys, xs);
            for (int i = 0; i < n; i++) ys2[i] = st[i]->v;
            lin_multi(st, n, pool, l, T2_TGT_V, ys2, xs);
        }
        for (int i = 0; i < n; i++) {
            ys[i] = st[i]->k;
            ys2[i] = st[i]->v;
        }
        for (int i = 0; i < n; i++) {
            qkv_post(m, ly, st[i]->q, ys[i], ys2[i], pos[i]);
            kv_write(st[i], l, ys[i], ys2[i], 1, pos[i]);
        }
        attn_ctx actx = {.st = st, .n_st = n, .B = 1, .layer = l, .pos = pos};
        run_attention(pool, &actx);
        for (int i = 0; i < n; i++) {
            ys[i] = st[i]->xb;
            xs[i] = st[i]->xb2;
        }
        lin_multi(st, n, pool, l, T2_TGT_O, ys, xs);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < D; j++) st[i]->x[j] += st[i]->xb[j];
            t2_rmsnorm(st[i]->xb, st[i]->x, ly->ffn_norm, D, c->rms_eps);
            xs[i] = st[i]->xb;
            ys[i] = st[i]->hb;
            ys2[i] = st[i]->hb2;
        }
        float *gu[2] = {st[0]->hb, st[0]->hb2};
        if (n > 1 || lin_fused(st[0], pool, l, T2_TGT_GATE, 2, gu, xs[0])) {
            lin_multi(st, n, pool, l, T2_TGT_GATE, ys, xs);
            lin_multi(st, n, pool, l, T2_TGT_UP, ys2, xs);
        }
        for (int i = 0; i < n; i++) {
            t2_swiglu(st[i]->hb, st[i]->hb, st[i]->hb2, F);
            ys[i] = st[i]->xb;
            xs[i] = st[i]->hb;
        }
        lin_multi(st, n, pool, l, T2_TGT_DOWN, ys, xs);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < D; j++) st[i]->x[j] += st[i]->xb[j];
    }
    return 0;
}

static int check_multi(t2_state *const *st, int n, t2_pool *pool, const int *pos) {
    if (n <= 0 || n > T2_MAX_SEQS)
        return t2_err_set(T2_ERANGE, "multi-sequence step: %d sequences (1..%d)", n, T2_MAX_SEQS);
    for (int i = 0; i < n; i++) {
        if (st[i]->m != st[0]->m || st[i]->l0 != st[0]->l0 || st[i]->l1 != st[0]->l1)
            return t2_err_set(T2_EINVAL, "multi-sequence step: state %d is for another model or "
                              "layer range", i);
        if (st[i]->adapt && st[i]->adapt->n_layers != st[i]->m->cfg.n_layers)
            return t2_err_set(T2_EMISMATCH, "state %d: adaptation made for another model", i);
        if (st[i]->adapt && st[0]->adapt && st[i]->adapt->svd != st[0]->adapt->svd)
            return t2_err_set(T2_EINVAL, "multi-sequence step: adaptations from different factors");
        for (int j = 0; j < i; j++)
            if (st[j] == st[i]) return t2_err_set(T2_EINVAL, "multi-sequence step: state %d twice", i);
        int rc = check_pos(st[i], 1, pos[i]);
        if (rc < 0 || (rc = t2_state_reserve(st[i], pos[i] + 1)) < 0) return rc;
        if ((rc = ensure_att(st[i], t2_pool_size(pool))) < 0) return rc;
    }
    return 0;
}

int t2_forward_layers(t2_state *s, t2_pool *pool, int n, int pos) {
    if (n <= 0 || n > s->max_batch)
        return t2_err_set(T2_ERANGE, "forward: %d tokens (batch holds 1..%d)", n, s->max_batch);
    if (n == 1) return t2_forward_layers_multi(&s, 1, pool, &pos);
    int rc = check_pos(s, n, pos);
    if (rc < 0 || (rc = t2_state_reserve(s, pos + n)) < 0 ||
        (rc = ensure_att(s, t2_pool_size(pool))) < 0)
        return rc;
    return layers_batch(s, pool, n, pos);
}

int t2_forward_layers_multi(t2_state *const *states, int n, t2_pool *pool, const int *pos) {
    int rc = check_multi(states, n, pool, pos);
    if (rc < 0) return rc;
    return layers_multi(states, n, pool, pos);
}

int t2_forward_head(t2_state *s, t2_pool *pool, int n, float *logits_all) {
    const t2_model *m = s->m;
    const int D = m->cfg.dim, V = m->cfg.vocab_size;
    if (n <= 0 || n > s->max_batch)
        return t2_err_set(T2_ERANGE, "head: %d tokens (batch holds 1..%d)", n, s->max_batch);
    if (!logits_all) {
        t2_rmsnorm(s->xb, s->x + (size_t)(n - 1) * D, m->output_norm, D, m->cfg.rms_eps);
        t2_matvec(pool, s->logits, &m->output, s->xb);
        return 0;
    }
    for (int b = 0; b < n; b++)
        t2_rmsnorm(s->xb + (size_t)b * D, s->x + (size_t)b * D, m->output_norm, D, m->cfg.rms_eps);
    int rc = linear(pool, logits_all, &m->output, s->xb, n);
    if (rc < 0) return rc;
    memcpy(s->logits, logits_all + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    return 0;
}

static int require_all_layers(const t2_state *s) {
    if (s->l0 != 0 || s->l1 != s->m->cfg.n_layers)
        return t2_err_set(T2_EINVAL, "forward: this state covers layers [%d, %d) only", s->l0, s->l1);
    return 0;
}

int t2_forward(t2_state *s, t2_pool *pool, const int *tokens, int n, int pos, float *logits_all) {
    const int V = s->m->cfg.vocab_size;
    int rc;
    if ((rc = require_all_layers(s)) < 0) return rc;
    if (n <= 0) return t2_err_set(T2_EINVAL, "forward: no tokens");
    if ((rc = check_pos(s, n, pos)) < 0) return rc;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return t2_err_set(T2_ERANGE, "token %d at index %d is outside the vocabulary (0..%d)",
                              tokens[i], i, V - 1);
    for (int done = 0; done < n; done += s->max_batch) {
        int B = n - done < s->max_batch ? n - done : s->max_batch;
        if ((rc = t2_embed(s, tokens + done, B)) < 0 ||
            (rc = t2_forward_layers(s, pool, B, pos + done)) < 0 ||
            (rc = t2_forward_head(s, pool, B, logits_all ? logits_all + (size_t)done * V : NULL)) < 0)
            return rc;
    }
    return 0;
}

int t2_forward_step_multi(t2_state *const *states, int n, t2_pool *pool, const int *tokens,
                          const int *pos) {
    int rc;
    if (n <= 0 || n > T2_MAX_SEQS)
        return t2_err_set(T2_ERANGE, "multi-sequence step: %d sequences (1..%d)", n, T2_MAX_SEQS);
    for (int i = 0; i < n; i++)
        if ((rc = require_all_layers(states[i])) < 0 || (rc = t2_embed(states[i], tokens + i, 1)) < 0)
            return rc;
    if ((rc = t2_forward_layers_multi(states, n, pool, pos)) < 0) return rc;
    const t2_model *m = states[0]->m;
    const int D = m->cfg.dim;
    float *ys[T2_MAX_SEQS];
    const float *xs[T2_MAX_SEQS];
    for (int i = 0; i < n; i++) {
        t2_rmsnorm(states[i]->xb, states[i]->x, m->output_norm, D, m->cfg.rms_eps);
        ys[i] = states[i]->logits;
        xs[i] = states[i]->xb;
    }
    t2_matvec_batch(pool, ys, &m->output, xs, n);
    return 0;
}
