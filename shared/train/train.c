/* train.c - the training model: parameters, activations, forward, backward, SVF mode, AdamW.
 *
 * Dimension legend: B sequences, T tokens each, N = B*T; D width, F MLP width, L layers,
 * H query heads, K kv heads, h head_dim, QD = H*h, KVD = K*h, V vocabulary, r SVF rank.
 *
 * The forward keeps every activation the backward needs (per layer: the input of each norm,
 * the normed inputs and 1/rms, q and k after RoPE, v, the attention probabilities, the
 * attention output, the MLP gate / up / product; qwen3: q and k before their per-head RMSNorm
 * and its 1/rms); the backward walks the layers in reverse,
 * each step the _backward twin of a forward kernel in train_kernels.c.
 */
#include "train/train.h"

#include "base/t2_err.h"
#include "base/t2_log.h"
#include "train/train_internal.h"
#include "train/train_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS extension (declared here so that any cblas.h will do). */
void openblas_set_num_threads(int);

/* ------------------------------------------------------------------------------------------ */
/* shapes and the parameter table                                                              */

/* Sizes (floats) of the parameter tensors in block order. */
static void param_sizes(const t2_config *c, int tied, size_t sz[T2_TP_N]) {
    const size_t D = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    const size_t QD = (size_t)c->n_heads * c->head_dim, KVD = (size_t)c->n_kv_heads * c->head_dim;
    sz[T2_TP_TOKEN_EMBD] = V * D;
    sz[T2_TP_OUTPUT] = tied ? 0 : V * D;
    sz[T2_TP_OUTPUT_NORM] = D;
    sz[T2_TP_ATTN_NORM] = L * D;
    sz[T2_TP_WQ] = L * QD * D;
    sz[T2_TP_WK] = L * KVD * D;
    sz[T2_TP_WV] = L * KVD * D;
    sz[T2_TP_WO] = L * D * QD;
    sz[T2_TP_FFN_NORM] = L * D;
    sz[T2_TP_W_GATE] = L * F * D;
    sz[T2_TP_W_UP] = L * F * D;
    sz[T2_TP_W_DOWN] = L * D * F;
}

/* Point a table into a block laid out by param_sizes. */
static void point_params(t2_train_params *p, float *block, const size_t sz[T2_TP_N], int tied) {
    float **ptrs[T2_TP_N] = {&p->token_embd, &p->output,   &p->output_norm, &p->attn_norm,
                             &p->wq,         &p->wk,       &p->wv,          &p->wo,
                             &p->ffn_norm,   &p->w_gate,   &p->w_up,        &p->w_down};
    for (int i = 0; i < T2_TP_N; i++) {
        *ptrs[i] = block;
        block += sz[i];
    }
    if (tied) p->output = p->token_embd;
}

void t2_train_mat_shape(const t2_config *c, int kind, int *rows, int *cols) {
    const int D = c->dim, F = c->hidden_dim;
    const int QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    static const int which[T2_N_TARGETS] = {0, 1, 1, 2, 3, 3, 4};
    const int r[5] = {QD, KVD, D, F, D}, cl[5] = {D, D, QD, D, F};
    *rows = r[which[kind]];
    *cols = cl[which[kind]];
}

/* Layer l's matrix of a kind inside a table (parameters or gradients). */
float *t2_train_mat_ptr(const t2_train_params *p, const t2_config *c, int l, int kind) {
    int rows, cols;
    t2_train_mat_shape(c, kind, &rows, &cols);
    float *base[T2_N_TARGETS] = {p->wq, p->wk, p->wv, p->wo, p->w_gate, p->w_up, p->w_down};
    return base[kind] + (size_t)l * rows * cols;
}

/* ------------------------------------------------------------------------------------------ */
/* life cycle                                                                                  */

static void config_fill(t2_config *c) {
    if (c->n_heads > 0 && !c->head_dim) c->head_dim = c->dim / c->n_heads;
    if (!c->rms_eps) c->rms_eps = 1e-5f;
    if (!c->rope_theta) c->rope_theta = 10000.0f;
}

/* Allocate a set of float arrays as one block, each 64-byte aligned. */
typedef struct {
    float **ptr;
    size_t n;
} falloc_req;

static float *falloc_block(falloc_req *req, int n_req, size_t *total_bytes) {
    size_t total = 0;
    for (int i = 0; i < n_req; i++) total += (req[i].n + 15) / 16 * 16;
    float *block = aligned_alloc(64, (total ? total : 16) * sizeof(float));
    if (!block) return NULL;
    memset(block, 0, total * sizeof(float));
    float *p = block;
    for (int i = 0; i < n_req; i++) {
        *req[i].ptr = p;
        p += (req[i].n + 15) / 16 * 16;
    }
    if (total_bytes) *total_bytes = total * sizeof(float);
    return block;
}

static int build_view(t2_train *tr) {
    const t2_config *c = &tr->cfg;
    t2_model *m = calloc(1, sizeof *m);
    if (!m) return T2_ENOMEM;
    m->cfg = *c;
    m->tied = tr->tied;
    m->format = T2_FORMAT_GGUF;
    m->path = strdup("(training)");
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->path || !m->layers) {
        t2_model_destroy(&m);
        return T2_ENOMEM;
    }
    const t2_train_params *p = &tr->params;
    m->token_embd = (t2_mat){T2_F32, c->vocab_size, c->dim, p->token_embd};
    m->output = (t2_mat){T2_F32, c->vocab_size, c->dim, p->output};
    m->output_norm = p->output_norm;
    for (int l = 0; l < c->n_layers; l++) {
        t2_layer *ly = &m->layers[l];
        t2_mat *mats[T2_N_TARGETS] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo,
                                  &ly->w_gate, &ly->w_up, &ly->w_down};
        for (int k = 0; k < T2_N_TARGETS; k++) {
            int rows, cols;
            t2_train_mat_shape(c, k, &rows, &cols);
            *mats[k] = (t2_mat){T2_F32, rows, cols, t2_train_mat_ptr(p, c, l, k)};
        }
        ly->attn_norm = p->attn_norm + (size_t)l * c->dim;
        ly->ffn_norm = p->ffn_norm + (size_t)l * c->dim;
    }
    tr->view = m;
    return 0;
}

void t2_train_destroy(t2_train **trp) {
    if (!trp || !*trp) return;
    t2_train *tr = *trp;
    free(tr->params_mem);
    free(tr->grads_mem);
    free(tr->acts_mem);
    free(tr->adam_m);
    free(tr->adam_v);
    free(tr->att_scratch);
    free(tr->svf_mem);
    free(tr->svf_acts);
    free(tr->targets_svf);
    free(tr->svf_idx);
    free(tr->tokens);
    free(tr->tgt);
    free(tr->wts);
    free(tr->kl_ref);
    free(tr->cos_t);
    free(tr->sin_t);
    free(tr->bias);
    free(tr->qk_norm);
    t2_model_destroy(&tr->view);
    free(tr);
    *trp = NULL;
}

int t2_train_new(t2_train **out, const t2_config *cfg_in, int tied, int max_B, int max_T) {
    *out = NULL;
    t2_config c = *cfg_in;
    config_fill(&c);
    int rc = t2_config_check(&c, "training model shape");
    if (rc < 0) return rc;
    if (max_B <= 0 || max_T <= 0 || max_T > c.seq_len || (int64_t)max_B * max_T > (1 << 24))
        return t2_err_set(T2_ERANGE, "training batch %d x %d out of range (T at most the "
                          "model's context %d, B*T at most %d)", max_B, max_T, c.seq_len, 1 << 24);
    t2_train *tr = calloc(1, sizeof *tr);
    if (!tr) return t2_err_set(T2_ENOMEM, "out of memory for the trainer");
    tr->cfg = c;
    tr->tied = tied ? 1 : 0;
    tr->max_B = max_B;
    tr->max_T = max_T;
    param_sizes(&c, tr->tied, tr->sizes);
    tr->n_params = 0;
    for (int i = 0; i < T2_TP_N; i++) tr->n_params += tr->sizes[i];

    tr->params_mem = aligned_alloc(64, (tr->n_params + 15) / 16 * 16 * sizeof(float));
    tr->grads_mem = aligned_alloc(64, (tr->n_params + 15) / 16 * 16 * sizeof(float));
    if (!tr->params_mem || !tr->grads_mem) goto nomem;
    memset(tr->params_mem, 0, tr->n_params * sizeof(float));
    memset(tr->grads_mem, 0, tr->n_params * sizeof(float));
    point_params(&tr->params, tr->params_mem, tr->sizes, tr->tied);
    point_params(&tr->grads, tr->grads_mem, tr->sizes, tr->tied);

    const size_t N = (size_t)max_B * max_T, D = c.dim, F = c.hidden_dim, L = c.n_layers;
    const size_t QD = (size_t)c.n_heads * c.head_dim, KVD = (size_t)c.n_kv_heads * c.head_dim;
    const size_t V = c.vocab_size, H = c.n_heads;
    const size_t qkn = c.arch == T2_ARCH_QWEN3; /* per-head Q/K norms: their inputs are kept */
    t2_train_acts *a = &tr->acts;
    falloc_req req[] = {
        {&a->x, (L + 1) * N * D},  {&a->x_mid, L * N * D},     {&a->xn_att, L * N * D},
        {&a->rstd_att, L * N},     {&a->q, L * N * QD},        {&a->k, L * N * KVD},
        {&a->v, L * N * KVD},      {&a->att, L * max_B * H * max_T * max_T},
        {&a->o, L * N * QD},       {&a->xn_ffn, L * N * D},    {&a->rstd_ffn, L * N},
        {&a->gate, L * N * F},     {&a->up, L * N * F},        {&a->hmid, L * N * F},
        {&a->xn_final, N * D},     {&a->rstd_final, N},        {&a->probs, N * V},
        {&a->nll, N},              {&a->tmp, N * D},           {&a->dx, N * D},
        {&a->dxn, N * D},          {&a->dh, N * F},            {&a->dgate, N * F},
        {&a->dup, N * F},          {&a->dout, N * QD},         {&a->dq, N * QD},
        {&a->dk, N * KVD},         {&a->dv, N * KVD},
        {&a->q_pre, qkn * L * N * QD}, {&a->k_pre, qkn * L * N * KVD},
        {&a->rstd_q, qkn * L * N * H}, {&a->rstd_k, qkn * L * N * c.n_kv_heads},
        {&a->dq_pre, qkn * N * QD},    {&a->dk_pre, qkn * N * KVD},
    };
    tr->acts_mem = falloc_block(req, (int)(sizeof req / sizeof req[0]), &tr->acts_bytes);
    tr->tokens = malloc(N * sizeof(int));
    tr->tgt = malloc(N * sizeof(int));
    tr->wts = malloc(N * sizeof(float));
    tr->cos_t = malloc((size_t)max_T * (c.head_dim / 2) * sizeof(float));
    tr->sin_t = malloc((size_t)max_T * (c.head_dim / 2) * sizeof(float));
    if (!tr->acts_mem || !tr->tokens || !tr->tgt || !tr->wts || !tr->cos_t || !tr->sin_t) goto nomem;
    t2_tk_rope_tables(tr->cos_t, tr->sin_t, max_T, c.head_dim, c.rope_theta);
    if (build_view(tr) < 0) goto nomem;
    openblas_set_num_threads(1);
    T2_DEBUG("trainer: %zu parameters, %.1f MiB of activations for %d x %d tokens", tr->n_params,
             tr->acts_bytes / 1048576.0, max_B, max_T);
    *out = tr;
    return 0;
nomem:
    rc = t2_err_set(T2_ENOMEM, "out of memory for the trainer (%zu parameters, batch %d x %d)",
                    tr->n_params, max_B, max_T);
    t2_train_destroy(&tr);
    return rc;
}

/* qwen3: the per-head Q/K RMSNorm weights, kept fixed, and the trainer's view points at them. */
static int load_qk_norm(t2_train *tr, const t2_model *m) {
    const int L = m->cfg.n_layers, hd = m->cfg.head_dim;
    free(tr->qk_norm);
    tr->qk_norm = NULL;
    if (!m->layers[0].q_norm) return 0;
    if (!(tr->qk_norm = malloc((size_t)L * 2 * hd * sizeof(float))))
        return t2_err_set(T2_ENOMEM, "out of memory");
    for (int l = 0; l < L; l++) {
        float *d = tr->qk_norm + (size_t)l * 2 * hd;
        memcpy(d, m->layers[l].q_norm, (size_t)hd * sizeof(float));
        memcpy(d + hd, m->layers[l].k_norm, (size_t)hd * sizeof(float));
        tr->view->layers[l].q_norm = d;
        tr->view->layers[l].k_norm = d + hd;
    }
    return 0;
}

/* What the architecture adds to plain Llama: rotary frequencies of its own (Llama-3 scaling,
 * qwen2's), rotation of halves (qwen2, qwen3), Q/K/V biases (qwen2) and per-head Q/K norms
 * (qwen3), kept fixed; the trainer's view gets the biases and norms too. */
static int load_arch(t2_train *tr, const t2_model *m) {
    const t2_config *c = &m->cfg;
    const int L = c->n_layers, QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    tr->neox = c->arch != T2_ARCH_LLAMA;
    if (m->rope_inv_freq)
        t2_tk_rope_tables_freq(tr->cos_t, tr->sin_t, tr->max_T, c->head_dim, m->rope_inv_freq);
    int rc = load_qk_norm(tr, m);
    if (rc < 0) return rc;
    free(tr->bias);
    tr->bias = NULL;
    if (!m->layers[0].bq) return 0;
    const size_t per = (size_t)QD + 2 * (size_t)KVD;
    if (!(tr->bias = malloc((size_t)L * per * sizeof(float))))
        return t2_err_set(T2_ENOMEM, "out of memory");
    for (int l = 0; l < L; l++) {
        float *d = tr->bias + (size_t)l * per;
        memcpy(d, m->layers[l].bq, (size_t)QD * sizeof(float));
        memcpy(d + QD, m->layers[l].bk, (size_t)KVD * sizeof(float));
        memcpy(d + QD + KVD, m->layers[l].bv, (size_t)KVD * sizeof(float));
        tr->view->layers[l].bq = d;
        tr->view->layers[l].bk = d + QD;
        tr->view->layers[l].bv = d + QD + KVD;
    }
    return 0;
}

/* y (N, n) += b (n) on every row */
static void add_rows(float *y, const float *b, int N, int n) {
    for (int r = 0; r < N; r++)
        for (int i = 0; i < n; i++) y[(size_t)r * n + i] += b[i];
}

int t2_train_load_params(t2_train *tr, const t2_model *m) {
    const t2_config *a = &tr->cfg, *b = &m->cfg;
    if (a->dim != b->dim || a->hidden_dim != b->hidden_dim || a->n_layers != b->n_layers ||
        a->n_heads != b->n_heads || a->n_kv_heads != b->n_kv_heads ||
        a->vocab_size != b->vocab_size || a->head_dim != b->head_dim || a->arch != b->arch ||
        (m->tied != 0) != tr->tied)
        return t2_err_set(T2_EMISMATCH, "%s: model shape differs from the trainer's", m->path);
    if ((b->arch == T2_ARCH_LLAMA && m->layers[0].bq) ||
        (b->arch == T2_ARCH_QWEN3) != (m->layers[0].q_norm != NULL))
        return t2_err_set(T2_EUNSUPPORTED, "%s: training supports llama, qwen2 and qwen3 models "
                          "(this is %s%s)", m->path, t2_arch_name(b->arch),
                          b->arch == T2_ARCH_LLAMA ? " with biases" : " without its Q/K norms");
    int rc = load_arch(tr, m);
    if (rc < 0) return rc;
    const t2_config *c = a;
    t2_train_params *p = &tr->params;
#define CVT(dst, w) t2_to_f32((dst), (w).data, (w).type, (int64_t)(w).rows * (w).cols)
    CVT(p->token_embd, m->token_embd);
    if (!tr->tied) CVT(p->output, m->output);
    memcpy(p->output_norm, m->output_norm, (size_t)c->dim * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const t2_layer *ly = &m->layers[l];
        const t2_mat *mats[T2_N_TARGETS] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo,
                                        &ly->w_gate, &ly->w_up, &ly->w_down};
        for (int k = 0; k < T2_N_TARGETS; k++) CVT(t2_train_mat_ptr(p, c, l, k), *mats[k]);
        memcpy(p->attn_norm + (size_t)l * c->dim, ly->attn_norm, (size_t)c->dim * sizeof(float));
        memcpy(p->ffn_norm + (size_t)l * c->dim, ly->ffn_norm, (size_t)c->dim * sizeof(float));
    }
#undef CVT
    return 0;
}

int t2_train_from_model(t2_train **out, const t2_model *m, int max_B, int max_T) {
    int rc = t2_train_new(out, &m->cfg, m->tied, max_B, max_T);
    if (rc < 0) return rc;
    if ((rc = t2_train_load_params(*out, m)) < 0) t2_train_destroy(out);
    return rc;
}

const t2_config *t2_train_config(const t2_train *tr) { return &tr->cfg; }
int t2_train_tied(const t2_train *tr) { return tr->tied; }
const t2_model *t2_train_model_view(const t2_train *tr) { return tr->view; }
t2_train_params *t2_train_params_of(t2_train *tr) { return &tr->params; }
t2_train_params *t2_train_grads_of(t2_train *tr) { return &tr->grads; }

float *t2_train_param_block(t2_train *tr, size_t *n) {
    if (n) *n = tr->n_params;
    return tr->params_mem;
}

int t2_train_n_tensors(const t2_train *tr) { return 2 + !tr->tied + 9 * tr->cfg.n_layers; }

void t2_train_tensor_at(t2_train *tr, int i, t2_train_tensor *t) {
    const t2_config *c = &tr->cfg;
    memset(t, 0, sizeof *t);
    t->rows = 1;
    if (i == 0) {
        snprintf(t->name, sizeof t->name, "token_embd.weight");
        t->rows = c->vocab_size, t->cols = c->dim, t->is_matrix = 1;
        t->param = tr->params.token_embd, t->grad = tr->grads.token_embd;
        return;
    }
    if (i == 1) {
        snprintf(t->name, sizeof t->name, "output_norm.weight");
        t->cols = c->dim;
        t->param = tr->params.output_norm, t->grad = tr->grads.output_norm;
        return;
    }
    if (i == 2 && !tr->tied) {
        snprintf(t->name, sizeof t->name, "output.weight");
        t->rows = c->vocab_size, t->cols = c->dim, t->is_matrix = 1;
        t->param = tr->params.output, t->grad = tr->grads.output;
        return;
    }
    i -= 2 + !tr->tied;
    int l = i / 9, j = i % 9;
    if (j < T2_N_TARGETS) {
        snprintf(t->name, sizeof t->name, "blk.%d.%s.weight", l, t2_target_name(j));
        t2_train_mat_shape(c, j, &t->rows, &t->cols);
        t->is_matrix = 1;
        t->param = t2_train_mat_ptr(&tr->params, c, l, j);
        t->grad = t2_train_mat_ptr(&tr->grads, c, l, j);
    } else {
        snprintf(t->name, sizeof t->name, "blk.%d.%s.weight", l,
                 j == 7 ? "attn_norm" : "ffn_norm");
        t->cols = c->dim;
        float *pp = j == 7 ? tr->params.attn_norm : tr->params.ffn_norm;
        float *gp = j == 7 ? tr->grads.attn_norm : tr->grads.ffn_norm;
        t->param = pp + (size_t)l * c->dim;
        t->grad = gp + (size_t)l * c->dim;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* SVF mode                                                                                    */

void t2_svf_opts_default(t2_svf_opts *o) {
    o->targets = T2_TARGETS_MLP;
    o->act = T2_SVF_ACT_SIGMOID;
    o->max_mult = 1.0f;
    o->p_init = 0.1f;
}

int t2_train_svf_enable(t2_train *tr, const t2_svf_opts *o, const t2_svf_factors *f, int n_f) {
    const t2_config *c = &tr->cfg;
    const int L = c->n_layers;
    if (tr->svf) return t2_err_set(T2_EINVAL, "SVF mode is already enabled");
    if (!o->targets || o->targets >= (1u << T2_N_TARGETS))
        return t2_err_set(T2_EINVAL, "SVF: bad target mask 0x%x", o->targets);
    if (o->act != T2_SVF_ACT_SIGMOID && o->act != T2_SVF_ACT_LINEAR)
        return t2_err_set(T2_EINVAL, "SVF: unknown activation %d", o->act);
    int per_layer = 0;
    for (int k = 0; k < T2_N_TARGETS; k++) per_layer += (o->targets >> k) & 1;
    const int n_t = per_layer * L;
    if (n_f != n_t)
        return t2_err_set(T2_EINVAL, "SVF: %d factor sets given for %d target matrices", n_f, n_t);
    int *idx = malloc((size_t)L * T2_N_TARGETS * sizeof(int));
    t2_svf_target *tg = calloc((size_t)n_t, sizeof *tg);
    if (!idx || !tg) {
        free(idx);
        free(tg);
        return t2_err_set(T2_ENOMEM, "SVF: out of memory");
    }
    /* targets in layer-major, kind order */
    int n = 0, rmax = 0;
    size_t n_p = 0;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            idx[l * T2_N_TARGETS + k] = -1;
            if (!((o->targets >> k) & 1)) continue;
            int rows, cols;
            t2_train_mat_shape(c, k, &rows, &cols);
            int r = rows < cols ? rows : cols;
            tg[n].f.layer = l, tg[n].f.kind = k, tg[n].f.rows = rows, tg[n].f.cols = cols;
            tg[n].f.rank = r;
            if (r > rmax) rmax = r;
            n_p += (size_t)r;
            idx[l * T2_N_TARGETS + k] = n++;
        }
    for (int i = 0; i < n_f; i++) {
        const t2_svf_factors *fi = &f[i];
        int bad = fi->layer < 0 || fi->layer >= L || fi->kind < 0 || fi->kind >= T2_N_TARGETS;
        int j = bad ? -1 : idx[fi->layer * T2_N_TARGETS + fi->kind];
        int rc = 0;
        if (j < 0)
            rc = t2_err_set(T2_EINVAL, "SVF: factors %d name layer %d matrix %d, not a target", i,
                            fi->layer, fi->kind);
        else if (tg[j].f.U)
            rc = t2_err_set(T2_EINVAL, "SVF: two factor sets for blk.%d.%s", fi->layer,
                            t2_target_name(fi->kind));
        else if (fi->rows != tg[j].f.rows || fi->cols != tg[j].f.cols || fi->rank != tg[j].f.rank ||
                 !fi->U || !fi->s || !fi->Vt)
            rc = t2_err_set(T2_EINVAL, "SVF: blk.%d.%s factors are %dx%d rank %d, expected %dx%d "
                            "rank %d", fi->layer, t2_target_name(fi->kind), fi->rows, fi->cols,
                            fi->rank, tg[j].f.rows, tg[j].f.cols, tg[j].f.rank);
        if (rc < 0) {
            free(idx);
            free(tg);
            return rc;
        }
        tg[j].f = *fi;
    }
    /* p, dp, s_eff, ds_eff blocks; z per target (N, r); zs / gu scratch (N, rmax) */
    const size_t N = (size_t)tr->max_B * tr->max_T;
    float *mem = calloc(4 * n_p, sizeof(float));
    float *acts = calloc(n_p * N + 2 * N * (size_t)rmax, sizeof(float));
    if (!mem || !acts) {
        free(idx);
        free(tg);
        free(mem);
        free(acts);
        return t2_err_set(T2_ENOMEM, "SVF: out of memory for %zu values", n_p);
    }
    tr->svf_mem = mem;
    tr->svf_acts = acts;
    tr->svf_p = mem;
    tr->svf_dp = mem + n_p;
    tr->svf_s_eff = mem + 2 * n_p;
    tr->svf_ds_eff = mem + 3 * n_p;
    tr->svf_zs = acts + n_p * N;
    tr->svf_gu = tr->svf_zs + N * rmax;
    size_t off = 0;
    for (int i = 0; i < n_t; i++) {
        tg[i].p = tr->svf_p + off;
        tg[i].dp = tr->svf_dp + off;
        tg[i].s_eff = tr->svf_s_eff + off;
        for (int k = 0; k < tg[i].f.rank; k++) tg[i].p[k] = o->p_init;
        t2_svf_scale(tg[i].s_eff, tg[i].f.s, tg[i].p, tg[i].f.rank, o->act, o->max_mult);
        off += (size_t)tg[i].f.rank;
    }
    tr->svf = 1;
    tr->svf_opts = *o;
    tr->targets_svf = tg;
    tr->n_svf = n_t;
    tr->svf_idx = idx;
    tr->n_p = n_p;
    tr->svf_rmax = rmax;
    tr->base_hash = t2_fnv1a64(T2_FNV1A64_INIT, tr->params_mem, tr->n_params * 4);
    /* moments of the dense block are no longer used */
    free(tr->adam_m);
    free(tr->adam_v);
    tr->adam_m = tr->adam_v = NULL;
    tr->adam_t = 0;
    return 0;
}

int t2_train_svf_active(const t2_train *tr) { return tr->svf; }
int t2_train_svf_n_targets(const t2_train *tr) { return tr->n_svf; }
const t2_svf_opts *t2_train_svf_opts(const t2_train *tr) { return &tr->svf_opts; }

t2_svf_target *t2_train_svf_target(t2_train *tr, int i) {
    return i >= 0 && i < tr->n_svf ? &tr->targets_svf[i] : NULL;
}

/* z of target i for the current N: targets' z arrays are packed with stride N * r. */
static float *svf_z(t2_train *tr, int i, int N) {
    const t2_svf_target *t = &tr->targets_svf[i];
    return tr->svf_acts + (size_t)(t->p - tr->svf_p) * N;
}

/* ------------------------------------------------------------------------------------------ */
/* linear layers: dense weight, or factored SVF target                                         */

static void lin_forward(t2_train *tr, t2_pool *pool, int l, int kind, float *out,
                        const float *inp, int N) {
    int rows, cols;
    t2_train_mat_shape(&tr->cfg, kind, &rows, &cols);
    int i = tr->svf ? tr->svf_idx[l * T2_N_TARGETS + kind] : -1;
    if (i >= 0) {
        const t2_svf_target *t = &tr->targets_svf[i];
        t2_tk_svf_matmul_forward(pool, out, svf_z(tr, i, N), tr->svf_zs, inp, t->f.U, t->s_eff,
                                 t->f.Vt, N, cols, rows, t->f.rank);
    } else {
        const float *W = t2_train_mat_ptr(&tr->params, &tr->cfg, l, kind);
        t2_tk_matmul_forward(pool, out, inp, W, N, cols, rows);
    }
}

static void lin_backward(t2_train *tr, t2_pool *pool, int l, int kind, float *dinp,
                         const float *dout, const float *inp, int N) {
    int rows, cols;
    t2_train_mat_shape(&tr->cfg, kind, &rows, &cols);
    int i = tr->svf ? tr->svf_idx[l * T2_N_TARGETS + kind] : -1;
    if (i >= 0) {
        const t2_svf_target *t = &tr->targets_svf[i];
        t2_tk_svf_matmul_backward(pool, dinp, tr->svf_ds_eff + (t->p - tr->svf_p), tr->svf_gu,
                                  dout, svf_z(tr, i, N), t->f.U, t->s_eff, t->f.Vt, N, cols,
                                  rows, t->f.rank);
    } else {
        float *dW = tr->svf ? NULL : t2_train_mat_ptr(&tr->grads, &tr->cfg, l, kind);
        const float *W = t2_train_mat_ptr(&tr->params, &tr->cfg, l, kind);
        t2_tk_matmul_backward(pool, dinp, dW, dout, inp, W, N, cols, rows);
    }
}

/* qwen3: q, k = rmsnorm(q) * q_norm, rmsnorm(k) * k_norm over each head's h values (in place),
 * keeping the inputs and 1/rms of layer l for the backward. */
static void qk_norm_forward(t2_train *tr, int l, float *q, float *k, int N) {
    const t2_config *c = &tr->cfg;
    const int H = c->n_heads, K = c->n_kv_heads, hd = c->head_dim;
    const size_t nq = (size_t)N * H * hd, nk = (size_t)N * K * hd;
    t2_train_acts *a = &tr->acts;
    float *qp = a->q_pre + l * nq, *kp = a->k_pre + l * nk;
    const float *w = tr->qk_norm + (size_t)l * 2 * hd;
    memcpy(qp, q, nq * sizeof(float));
    memcpy(kp, k, nk * sizeof(float));
    t2_tk_rmsnorm_forward(q, a->rstd_q + (size_t)l * N * H, qp, w, N * H, hd, c->rms_eps);
    t2_tk_rmsnorm_forward(k, a->rstd_k + (size_t)l * N * K, kp, w + hd, N * K, hd, c->rms_eps);
}

/* Its backward: a->dq, a->dk (gradients after the norms) into a->dq_pre, a->dk_pre. The norm
 * weights are fixed (no gradient). */
static void qk_norm_backward(t2_train *tr, int l, int N) {
    const t2_config *c = &tr->cfg;
    const int H = c->n_heads, K = c->n_kv_heads, hd = c->head_dim;
    const size_t nq = (size_t)N * H * hd, nk = (size_t)N * K * hd;
    t2_train_acts *a = &tr->acts;
    const float *w = tr->qk_norm + (size_t)l * 2 * hd;
    memset(a->dq_pre, 0, nq * sizeof(float));
    memset(a->dk_pre, 0, nk * sizeof(float));
    t2_tk_rmsnorm_backward(a->dq_pre, NULL, a->dq, a->q_pre + l * nq, w,
                           a->rstd_q + (size_t)l * N * H, N * H, hd);
    t2_tk_rmsnorm_backward(a->dk_pre, NULL, a->dk, a->k_pre + l * nk, w + hd,
                           a->rstd_k + (size_t)l * N * K, N * K, hd);
}

/* ------------------------------------------------------------------------------------------ */
/* forward / backward                                                                          */

int t2_train_forward(t2_train *tr, t2_pool *pool, const int *inputs, const int *targets,
                     const float *weights, int B, int T, float norm, float *loss) {
    const t2_config *c = &tr->cfg;
    const int D = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    const int H = c->n_heads, K = c->n_kv_heads, hd = c->head_dim;
    const int QD = H * hd, KVD = K * hd;
    tr->have_fwd = 0;
    tr->kl_on = 0;
    if (B <= 0 || T <= 0 || B > tr->max_B || T > tr->max_T)
        return t2_err_set(T2_ERANGE, "train forward: batch %d x %d exceeds the trainer's %d x %d",
                          B, T, tr->max_B, tr->max_T);
    const int N = B * T;
    double wsum = 0;
    for (int t = 0; t < N; t++) {
        if (inputs[t] < 0 || inputs[t] >= V)
            return t2_err_set(T2_ERANGE, "train forward: input token %d at %d is outside the "
                              "vocabulary (0..%d)", inputs[t], t, V - 1);
        if (targets && targets[t] >= V)
            return t2_err_set(T2_ERANGE, "train forward: target %d at %d is outside the "
                              "vocabulary (0..%d)", targets[t], t, V - 1);
        if (targets && targets[t] >= 0) wsum += weights ? weights[t] : 1.0;
    }
    if (weights)
        for (int t = 0; t < N; t++)
            if (!isfinite(weights[t]))
                return t2_err_set(T2_EINVAL, "train forward: weight %d is not finite", t);
    size_t nthr = pool ? (size_t)t2_pool_size(pool) : 1;
    if (tr->att_scratch_n < nthr * (size_t)tr->max_T) {
        float *s = malloc(nthr * (size_t)tr->max_T * sizeof(float));
        if (!s) return t2_err_set(T2_ENOMEM, "out of memory for attention scratch");
        free(tr->att_scratch);
        tr->att_scratch = s;
        tr->att_scratch_n = nthr * (size_t)tr->max_T;
    }
    memcpy(tr->tokens, inputs, (size_t)N * sizeof(int));
    if (targets)
        memcpy(tr->tgt, targets, (size_t)N * sizeof(int));
    if (weights) memcpy(tr->wts, weights, (size_t)N * sizeof(float));
    tr->has_wts = weights != NULL;
    tr->has_tgt = targets != NULL;
    tr->B = B;
    tr->T = T;
    if (tr->svf)
        for (int i = 0; i < tr->n_svf; i++) {
            t2_svf_target *t = &tr->targets_svf[i];
            t2_svf_scale(t->s_eff, t->f.s, t->p, t->f.rank, tr->svf_opts.act,
                         tr->svf_opts.max_mult);
        }

    t2_train_acts *a = &tr->acts;
    const t2_train_params *p = &tr->params;
    const size_t ND = (size_t)N * D, NF = (size_t)N * F;
    t2_tk_embed_forward(a->x, inputs, p->token_embd, N, D);
    for (int l = 0; l < L; l++) {
        float *x = a->x + l * ND, *x_mid = a->x_mid + l * ND, *xn = a->xn_att + l * ND;
        float *q = a->q + (size_t)l * N * QD, *k = a->k + (size_t)l * N * KVD;
        float *v = a->v + (size_t)l * N * KVD, *o = a->o + (size_t)l * N * QD;
        float *att = a->att + (size_t)l * B * H * T * T;
        /* x_mid = x + wo @ attention(rope(wq @ rmsnorm(x)), rope(wk @ ..), wv @ ..) */
        t2_tk_rmsnorm_forward(xn, a->rstd_att + (size_t)l * N, x, p->attn_norm + (size_t)l * D, N,
                              D, c->rms_eps);
        lin_forward(tr, pool, l, T2_TGT_Q, q, xn, N);
        lin_forward(tr, pool, l, T2_TGT_K, k, xn, N);
        lin_forward(tr, pool, l, T2_TGT_V, v, xn, N);
        if (tr->bias) { /* fixed: the backward pass goes through them unchanged */
            const float *bl = tr->bias + (size_t)l * (QD + 2 * KVD);
            add_rows(q, bl, N, QD);
            add_rows(k, bl + QD, N, KVD);
            add_rows(v, bl + QD + KVD, N, KVD);
        }
        if (tr->qk_norm) qk_norm_forward(tr, l, q, k, N);
        t2_tk_rope_forward_ex(q, tr->cos_t, tr->sin_t, B, T, H, hd, tr->neox);
        t2_tk_rope_forward_ex(k, tr->cos_t, tr->sin_t, B, T, K, hd, tr->neox);
        t2_tk_attention_forward(pool, o, att, q, k, v, B, T, H, K, hd);
        lin_forward(tr, pool, l, T2_TGT_O, a->tmp, o, N);
        t2_tk_residual_forward(x_mid, x, a->tmp, ND);
        /* x_next = x_mid + w_down @ (silu(w_gate @ rmsnorm(x_mid)) * (w_up @ rmsnorm(x_mid))) */
        float *xf = a->xn_ffn + l * ND, *gate = a->gate + l * NF, *up = a->up + l * NF;
        float *hmid = a->hmid + l * NF;
        t2_tk_rmsnorm_forward(xf, a->rstd_ffn + (size_t)l * N, x_mid, p->ffn_norm + (size_t)l * D,
                              N, D, c->rms_eps);
        lin_forward(tr, pool, l, T2_TGT_GATE, gate, xf, N);
        lin_forward(tr, pool, l, T2_TGT_UP, up, xf, N);
        t2_tk_swiglu_forward(hmid, gate, up, NF);
        lin_forward(tr, pool, l, T2_TGT_DOWN, a->tmp, hmid, N);
        t2_tk_residual_forward(a->x + (l + 1) * ND, x_mid, a->tmp, ND);
    }
    t2_tk_rmsnorm_forward(a->xn_final, a->rstd_final, a->x + L * ND, p->output_norm, N, D,
                          c->rms_eps);
    t2_tk_matmul_forward(pool, a->probs, a->xn_final, p->output, N, D, V);
    if (!targets) {
        if (loss) *loss = 0.0f;
        memset(a->nll, 0, (size_t)N * sizeof(float));
        return 0;
    }
    t2_tk_crossentropy_forward(pool, a->nll, a->probs, targets, N, V);
    tr->norm = norm > 0 ? norm : (float)wsum;
    double sum = 0;
    for (int t = 0; t < N; t++)
        if (targets[t] >= 0) sum += (double)(weights ? weights[t] : 1.0f) * a->nll[t];
    tr->loss = tr->norm != 0 ? sum / tr->norm : 0.0;
    if (loss) *loss = (float)tr->loss;
    tr->have_fwd = 1;
    return 0;
}

const float *t2_train_token_nll(const t2_train *tr) { return tr->acts.nll; }

const float *t2_train_probs(const t2_train *tr) { return tr->have_fwd ? tr->acts.probs : NULL; }

int t2_train_set_kl(t2_train *tr, const float *ref, float lambda, double *kl) {
    if (!tr->have_fwd)
        return t2_err_set(T2_EINVAL, "train KL: no forward with targets to add the penalty to");
    if (!(lambda >= 0) || !isfinite(lambda))
        return t2_err_set(T2_EINVAL, "train KL: lambda %g is not a finite number >= 0",
                          (double)lambda);
    const int V = tr->cfg.vocab_size, N = tr->B * tr->T;
    const size_t cap = (size_t)tr->max_B * tr->max_T * V;
    if (!tr->kl_ref && !(tr->kl_ref = malloc(cap * sizeof(float))))
        return t2_err_set(T2_ENOMEM, "out of memory for the KL reference (%zu floats)", cap);
    double sum = 0;
    for (int t = 0; t < N; t++) {
        const float *q = ref + (size_t)t * V, *p = tr->acts.probs + (size_t)t * V;
        float *dst = tr->kl_ref + (size_t)t * V;
        if (tr->tgt[t] < 0) continue;
        double qs = 0, row = 0;
        for (int i = 0; i < V; i++) {
            if (!(q[i] >= 0) || !isfinite(q[i]))
                return t2_err_set(T2_EINVAL, "train KL: reference row %d has %g at %d", t,
                                  (double)q[i], i);
            qs += q[i];
            if (q[i] > 0) row += q[i] * (log(q[i]) - log(fmax(p[i], 1e-30)));
        }
        if (fabs(qs - 1.0) > 1e-3)
            return t2_err_set(T2_EINVAL, "train KL: reference row %d sums to %g, not 1", t, qs);
        memcpy(dst, q, (size_t)V * sizeof(float));
        sum += row;
    }
    tr->kl_lambda = lambda;
    tr->kl_on = lambda > 0;
    if (kl) *kl = tr->norm != 0 ? sum / tr->norm : 0.0;
    return 0;
}

/* dlogits of the loss with the KL term: w_t / norm * (p - onehot) + lambda / norm * (p - ref) */
static void kl_crossentropy_backward(t2_train *tr, float scale) {
    const int V = tr->cfg.vocab_size, N = tr->B * tr->T;
    const float ks = tr->kl_lambda * scale;
    for (int t = 0; t < N; t++) {
        float *p = tr->acts.probs + (size_t)t * V;
        const float *q = tr->kl_ref + (size_t)t * V;
        const int y = tr->tgt[t];
        if (y < 0) {
            memset(p, 0, (size_t)V * sizeof(float));
            continue;
        }
        const float w = (tr->has_wts ? tr->wts[t] : 1.0f) * scale;
        for (int i = 0; i < V; i++) p[i] = p[i] * (w + ks) - ks * q[i];
        p[y] -= w;
    }
}

int t2_train_backward(t2_train *tr, t2_pool *pool) {
    if (!tr->have_fwd)
        return t2_err_set(T2_EINVAL, "train backward: no forward with targets to differentiate");
    tr->have_fwd = 0;
    const t2_config *c = &tr->cfg;
    const int D = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    const int H = c->n_heads, K = c->n_kv_heads, hd = c->head_dim;
    const int QD = H * hd, KVD = K * hd, B = tr->B, T = tr->T, N = B * T;
    const size_t ND = (size_t)N * D, NF = (size_t)N * F;
    const int svf = tr->svf;
    t2_train_acts *a = &tr->acts;
    const t2_train_params *p = &tr->params;
    t2_train_params *g = &tr->grads;
    if (svf) memset(tr->svf_ds_eff, 0, tr->n_p * sizeof(float));
    /* SVF mode: below the lowest target (targets are layer-major) nothing is trainable */
    const int low = svf ? tr->targets_svf[0].f.layer : -1;
    const int attn_targets = svf && (tr->svf_opts.targets & T2_TARGETS_ATTN);

    /* loss = sum_t w_t nll_t / norm: dlogits = w_t / norm * (p - onehot) */
    float scale = tr->norm != 0 ? 1.0f / tr->norm : 0.0f;
    if (tr->kl_on)
        kl_crossentropy_backward(tr, scale);
    else
        t2_tk_crossentropy_backward(pool, a->probs, tr->tgt, tr->has_wts ? tr->wts : NULL, scale,
                                    N, V);
    tr->kl_on = 0;
    memset(a->dxn, 0, ND * sizeof(float));
    t2_tk_matmul_backward(pool, a->dxn, svf ? NULL : g->output, a->probs, a->xn_final, p->output,
                          N, D, V);
    memset(a->dx, 0, ND * sizeof(float));
    t2_tk_rmsnorm_backward(a->dx, svf ? NULL : g->output_norm, a->dxn, a->x + L * ND,
                           p->output_norm, a->rstd_final, N, D);
    for (int l = L - 1; l >= 0; l--) {
        const float *x = a->x + l * ND, *x_mid = a->x_mid + l * ND;
        const float *xn = a->xn_att + l * ND, *xf = a->xn_ffn + l * ND;
        const float *q = a->q + (size_t)l * N * QD, *k = a->k + (size_t)l * N * KVD;
        const float *v = a->v + (size_t)l * N * KVD, *o = a->o + (size_t)l * N * QD;
        const float *att = a->att + (size_t)l * B * H * T * T;
        const float *gate = a->gate + l * NF, *up = a->up + l * NF, *hmid = a->hmid + l * NF;
        /* MLP: dx is d x_next */
        memset(a->dh, 0, NF * sizeof(float));
        lin_backward(tr, pool, l, T2_TGT_DOWN, a->dh, a->dx, hmid, N);
        memset(a->dgate, 0, NF * sizeof(float));
        memset(a->dup, 0, NF * sizeof(float));
        t2_tk_swiglu_backward(a->dgate, a->dup, a->dh, gate, up, NF);
        memset(a->dxn, 0, ND * sizeof(float));
        lin_backward(tr, pool, l, T2_TGT_GATE, a->dxn, a->dgate, xf, N);
        lin_backward(tr, pool, l, T2_TGT_UP, a->dxn, a->dup, xf, N);
        if (l == low && !attn_targets) break; /* MLP-only SVF: the lowest target is done */
        t2_tk_rmsnorm_backward(a->dx, svf ? NULL : g->ffn_norm + (size_t)l * D, a->dxn, x_mid,
                               p->ffn_norm + (size_t)l * D, a->rstd_ffn + (size_t)l * N, N, D);
        /* attention: dx is d x_mid */
        memset(a->dout, 0, (size_t)N * QD * sizeof(float));
        lin_backward(tr, pool, l, T2_TGT_O, a->dout, a->dx, o, N);
        memset(a->dq, 0, (size_t)N * QD * sizeof(float));
        memset(a->dk, 0, (size_t)N * KVD * sizeof(float));
        memset(a->dv, 0, (size_t)N * KVD * sizeof(float));
        t2_tk_attention_backward(pool, a->dq, a->dk, a->dv, tr->att_scratch, a->dout, q, k, v, att,
                                 B, T, H, K, hd);
        t2_tk_rope_backward_ex(a->dq, tr->cos_t, tr->sin_t, B, T, H, hd, tr->neox);
        t2_tk_rope_backward_ex(a->dk, tr->cos_t, tr->sin_t, B, T, K, hd, tr->neox);
        const float *dq = a->dq, *dk = a->dk;
        if (tr->qk_norm) { /* through the per-head norms: gradients of q and k before them */
            qk_norm_backward(tr, l, N);
            dq = a->dq_pre;
            dk = a->dk_pre;
        }
        memset(a->dxn, 0, ND * sizeof(float));
        lin_backward(tr, pool, l, T2_TGT_Q, a->dxn, dq, xn, N);
        lin_backward(tr, pool, l, T2_TGT_K, a->dxn, dk, xn, N);
        lin_backward(tr, pool, l, T2_TGT_V, a->dxn, a->dv, xn, N);
        if (l == low) break; /* nothing trainable below */
        t2_tk_rmsnorm_backward(a->dx, svf ? NULL : g->attn_norm + (size_t)l * D, a->dxn, x,
                               p->attn_norm + (size_t)l * D, a->rstd_att + (size_t)l * N, N, D);
    }
    if (!svf) {
        t2_tk_embed_backward(g->token_embd, a->dx, tr->tokens, N, D);
    } else {
        for (int i = 0; i < tr->n_svf; i++) {
            t2_svf_target *t = &tr->targets_svf[i];
            t2_tk_svf_scale_backward(t->dp, tr->svf_ds_eff + (t->p - tr->svf_p), t->p, t->f.s,
                                     t->f.rank, tr->svf_opts.act, tr->svf_opts.max_mult);
        }
    }
    return 0;
}

float *t2_train_trainable(t2_train *tr, size_t *n) {
    if (n) *n = tr->svf ? tr->n_p : tr->n_params;
    return tr->svf ? tr->svf_p : tr->params_mem;
}

float *t2_train_grads_buf(t2_train *tr, size_t *n) {
    if (n) *n = tr->svf ? tr->n_p : tr->n_params;
    return tr->svf ? tr->svf_dp : tr->grads_mem;
}

void t2_train_zero_grad(t2_train *tr) {
    size_t n;
    float *g = t2_train_grads_buf(tr, &n);
    memset(g, 0, n * sizeof(float));
}

/* ------------------------------------------------------------------------------------------ */
/* optimisation                                                                                */

void t2_adamw_opts_default(t2_adamw_opts *o) {
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.0f;
}

float t2_lr_at(const t2_lr_sched *s, int64_t step) {
    if (s->warmup > 0 && step < s->warmup) return s->lr * (float)(step + 1) / (float)s->warmup;
    if (s->total <= s->warmup) return s->lr;
    if (step >= s->total) return s->min_lr;
    double frac = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    double coef = 0.5 * (1.0 + cos(M_PI * frac));
    return (float)(s->min_lr + coef * (s->lr - s->min_lr));
}

float t2_train_grad_norm(const t2_train *tr) {
    size_t n;
    const float *g = t2_train_grads_buf((t2_train *)tr, &n);
    return (float)sqrt(t2_tk_sumsq(g, n));
}

float t2_train_clip_grad(t2_train *tr, float max_norm) {
    float norm = t2_train_grad_norm(tr);
    if (max_norm > 0 && norm > max_norm) {
        size_t n;
        float *g = t2_train_grads_buf(tr, &n);
        t2_tk_scale(g, max_norm / (norm + 1e-6f), n);
    }
    return norm;
}

int t2_train_update(t2_train *tr, float lr, const t2_adamw_opts *o) {
    size_t n;
    float *p = t2_train_trainable(tr, &n);
    const float *g = t2_train_grads_buf(tr, NULL);
    if (!tr->adam_m) {
        tr->adam_m = calloc(n ? n : 1, sizeof(float));
        tr->adam_v = calloc(n ? n : 1, sizeof(float));
        if (!tr->adam_m || !tr->adam_v) {
            free(tr->adam_m);
            free(tr->adam_v);
            tr->adam_m = tr->adam_v = NULL;
            return t2_err_set(T2_ENOMEM, "out of memory for AdamW moments (%zu values)", n);
        }
    }
    long t = (long)++tr->adam_t;
    if (tr->svf) {
        t2_tk_adamw(p, g, tr->adam_m, tr->adam_v, n, lr, o->beta1, o->beta2, o->eps, 0.0f, t);
        return 0;
    }
    /* the block in table order: matrices get weight decay, norms do not */
    static const int is_matrix[T2_TP_N] = {1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1};
    size_t off = 0;
    for (int i = 0; i < T2_TP_N; i++) {
        size_t sz = tr->sizes[i];
        float wd = is_matrix[i] ? o->weight_decay : 0.0f;
        t2_tk_adamw(p + off, g + off, tr->adam_m + off, tr->adam_v + off, sz, lr, o->beta1,
                    o->beta2, o->eps, wd, t);
        off += sz;
    }
    return 0;
}

int64_t t2_train_opt_steps(const t2_train *tr) { return tr->adam_t; }
