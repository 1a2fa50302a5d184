/* wk_stage.c - what every rank of a worker group does: hold its layers' run states (one per
 * slot), resolve mixtures for its layers, run its layers on prompt chunks and decode steps,
 * and - on the tail - the classifier and the samplers. Non-head ranks serve the messages that
 * come down the pipeline (wk_stage_serve). */
#include "wk.h"

#include "engine/kernels.h"
#include "base/t2_err.h"
#include "base/t2_log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- OPEN bodies ---------------------------------------------------------------------------- */

static size_t align4(size_t n) { return (n + 3) & ~(size_t)3; }

size_t wk_open_size(const wk_open *o) {
    return align4(sizeof *o + (size_t)o->n_experts * (WK_NAME_MAX + 1)) +
           (size_t)o->n_alpha * sizeof(float);
}

void wk_open_pack(void *body, const wk_open *o, const wk_mix *mix) {
    char *b = body;
    memcpy(b, o, sizeof *o);
    for (int i = 0; i < o->n_experts; i++)
        memcpy(b + sizeof *o + (size_t)i * (WK_NAME_MAX + 1), mix->names[i], WK_NAME_MAX + 1);
    size_t off = align4(sizeof *o + (size_t)o->n_experts * (WK_NAME_MAX + 1));
    if (o->n_alpha) memcpy(b + off, mix->alpha, (size_t)o->n_alpha * sizeof(float));
}

/* The counts of an OPEN header, before anything is sized from them. */
static int open_check(const wk_open *o) {
    if (o->n_experts < 0 || o->n_experts > WK_MIX_MAX)
        return t2_err_set(T2_EPROTO, "OPEN: %d experts (0..%d)", o->n_experts, WK_MIX_MAX);
    if (o->per_matrix != 0 && o->per_matrix != 1)
        return t2_err_set(T2_EPROTO, "OPEN: per_matrix %d (0 or 1)", o->per_matrix);
    int ok = o->per_matrix ? o->n_experts > 0 && o->n_alpha > 0 && o->n_alpha % o->n_experts == 0
                           : o->n_alpha == o->n_experts;
    if (!ok)
        return t2_err_set(T2_EPROTO, "OPEN: %d alphas for %d experts%s", o->n_alpha,
                          o->n_experts, o->per_matrix ? " per matrix" : "");
    if (o->kind != WK_KIND_GENERATE && o->kind != WK_KIND_CLASSIFY)
        return t2_err_set(T2_EPROTO, "OPEN: kind %d", o->kind);
    if (!isfinite(o->temperature) || o->temperature < 0 || !isfinite(o->top_p))
        return t2_err_set(T2_EPROTO, "OPEN: temperature %g, top_p %g", (double)o->temperature,
                          (double)o->top_p);
    return 0;
}

int wk_open_unpack(const void *body, size_t len, wk_open *o, wk_mix *mix) {
    const char *b = body;
    memset(mix, 0, sizeof *mix);
    if (len < sizeof *o)
        return t2_err_set(T2_EPROTO, "OPEN: %zu bytes, shorter than its %zu-byte header", len,
                          sizeof *o);
    memcpy(o, b, sizeof *o);
    int rc = open_check(o);
    if (rc < 0) return rc;
    if (len != wk_open_size(o))
        return t2_err_set(T2_EPROTO, "OPEN: %zu bytes, %zu expected for %d experts and %d alphas",
                          len, wk_open_size(o), o->n_experts, o->n_alpha);
    mix->n = o->n_experts;
    mix->per_matrix = o->per_matrix;
    mix->n_alpha = o->n_alpha;
    for (int i = 0; i < o->n_experts; i++) {
        memcpy(mix->names[i], b + sizeof *o + (size_t)i * (WK_NAME_MAX + 1), WK_NAME_MAX + 1);
        mix->names[i][WK_NAME_MAX] = 0;
    }
    if (o->n_alpha) {
        if (!(mix->alpha = malloc((size_t)o->n_alpha * sizeof(float))))
            return t2_err_set(T2_ENOMEM, "out of memory");
        memcpy(mix->alpha, b + align4(sizeof *o + (size_t)o->n_experts * (WK_NAME_MAX + 1)),
               (size_t)o->n_alpha * sizeof(float));
    }
    return 0;
}

void wk_mix_free(wk_mix *mix) {
    free(mix->alpha);
    mix->alpha = NULL;
    mix->n = mix->n_alpha = 0;
}

/* ---- the stage ------------------------------------------------------------------------------ */

/* worker.merged_type: W' of every targeted matrix of the rank's layers must fit the type
 * (Q8_0: whole blocks of 32 columns), refused at start rather than at the first mixture. */
static int check_merged_type(const wk_stage *s, const t2_factors *f, const t2_conf *c) {
    const t2_dtype t = (t2_dtype)c->worker.merged_type;
    if (c->worker.apply != T2_CFG_APPLY_MERGED) return 0;
    for (int l = s->l0; l < s->l1; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            const int cols = t2_layer_mat(&s->m->layers[l], k)->cols;
            if ((f->targets & (1u << k)) && !t2_dtype_row_bytes(t, cols))
                return t2_err_set(T2_EUNSUPPORTED, "worker.merged_type %s: blk.%d.%s has %d "
                                  "columns, not a multiple of %d", t2_conf_merged_type_name(t), l,
                                  t2_target_name(k), cols, t2_dtype_block(t));
        }
    return 0;
}

/* MemAvailable of /proc/meminfo in bytes (0 if unknown). */
static size_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    return (size_t)kb * 1024;
}

static size_t mat_bytes(const t2_mat *w) {
    return (size_t)w->rows * t2_dtype_row_bytes(w->type, w->cols);
}

/* Weight bytes this rank reads: its layers, the embedding (head), the classifier (tail). */
static size_t rank_weight_bytes(const wk_stage *s) {
    size_t b = 0;
    for (int l = s->l0; l < s->l1; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) b += mat_bytes(t2_layer_mat(&s->m->layers[l], k));
    if (s->is_head) b += mat_bytes(&s->m->token_embd);
    if (s->is_tail && !(s->is_head && s->m->tied)) b += mat_bytes(&s->m->output);
    return b;
}

/* The rank's KV pool (worker.kv_pool_tokens, or room for every slot's full context) and its
 * memory plan: weights + KV pool + scratch, printed, and refused when above worker.memory_mib
 * (or MemAvailable). */
static int memory_plan(wk_stage *s, const t2_conf *c) {
    const t2_config *mc = &s->m->cfg;
    const long ctx_blocks = (long)t2_kv_blocks_for(s->n_ctx);
    const long tokens = c->worker.kv_pool_tokens ? c->worker.kv_pool_tokens
                                                 : (long)s->n_slots * ctx_blocks * T2_KV_BLOCK;
    if (tokens < s->n_ctx)
        return t2_err_set(T2_ERANGE, "worker.kv_pool_tokens %ld is less than one context "
                          "(model.context %d tokens)", tokens, s->n_ctx);
    int rc = t2_kvpool_new(&s->kv, (t2_dtype)c->worker.kv_type, s->l1 - s->l0,
                           mc->n_kv_heads * mc->head_dim, t2_kv_blocks_for(tokens));
    if (rc < 0) return t2_err_prefix(rc, "worker.kv_type %s", t2_conf_kv_name(c->worker.kv_type));
    const double MiB = 1024.0 * 1024.0;
    const double w = (double)rank_weight_bytes(s) / MiB;
    const double kv = (double)t2_kvpool_n_blocks(s->kv) * t2_kvpool_block_bytes(s->kv) / MiB;
    const double sc = (double)s->n_slots *
                      t2_state_scratch_bytes(s->m, s->batch, s->n_ctx, c->worker.threads) / MiB;
    const double limit = c->worker.memory_mib ? (double)c->worker.memory_mib
                                              : (double)mem_available() / MiB;
    T2_INFO("memory plan, rank %d: weights %.0f MiB (its layers) + KV pool %.0f MiB (%s, %ld "
            "tokens in %lld blocks of %d, %.1f KiB per token) + scratch %.0f MiB (%d slots, "
            "context %d) = %.0f MiB of %.0f MiB %s", s->rank, w, kv,
            t2_conf_kv_name(c->worker.kv_type), tokens, (long long)t2_kvpool_n_blocks(s->kv),
            T2_KV_BLOCK, (double)t2_kvpool_block_bytes(s->kv) / T2_KV_BLOCK / 1024, sc,
            s->n_slots, s->n_ctx, w + kv + sc, limit,
            c->worker.memory_mib ? "(worker.memory_mib)" : "available");
    if (limit > 0 && w + kv + sc > limit)
        return t2_err_set(T2_ENOMEM, "memory plan of rank %d: weights %.0f MiB + KV pool %.0f "
                          "MiB + scratch %.0f MiB = %.0f MiB do not fit in %.0f MiB%s; lower "
                          "model.context, worker.kv_pool_tokens or capacity, or use kv_type "
                          "\"q8_0\"", s->rank, w, kv, sc, w + kv + sc, limit,
                          c->worker.memory_mib ? " (worker.memory_mib)" : " (MemAvailable)");
    return 0;
}

int wk_stage_init(wk_stage *s, t2_model *m, t2_factors *f, const t2_conf *c, int rank, int size,
                  const int *first, wk_pipe *pipe) {
    memset(s, 0, sizeof *s);
    s->rank = rank;
    s->size = size;
    s->l0 = first[rank];
    s->l1 = first[rank + 1];
    s->is_head = rank == 0;
    s->is_tail = rank == size - 1;
    s->m = m;
    s->f = f;
    s->pipe = pipe;
    s->D = m->cfg.dim;
    s->V = m->cfg.vocab_size;
    s->batch = c->worker.batch;
    s->n_slots = c->worker.capacity + c->worker.classify_capacity;
    int rc = t2_kv_context(c->model.context, m->cfg.seq_len, &s->n_ctx);
    if (rc < 0) return t2_err_prefix(rc, "model.context");
    if ((rc = memory_plan(s, c)) < 0) return rc;
    if ((rc = t2_pool_new(&s->pool, c->worker.threads)) < 0) return rc;
    s->slots = calloc((size_t)s->n_slots, sizeof *s->slots);
    s->sts = calloc((size_t)s->n_slots, sizeof *s->sts);
    s->pos = calloc((size_t)s->n_slots, sizeof *s->pos);
    s->toks = calloc((size_t)s->n_slots, sizeof *s->toks);
    s->xn = malloc((size_t)s->n_slots * s->D * sizeof(float));
    s->xs = calloc((size_t)s->n_slots, sizeof *s->xs);
    s->ys = calloc((size_t)s->n_slots, sizeof *s->ys);
    s->out = calloc((size_t)s->n_slots, sizeof *s->out);
    if (!s->slots || !s->sts || !s->pos || !s->toks || !s->xn || !s->xs || !s->ys || !s->out)
        return t2_err_set(T2_ENOMEM, "out of memory");
    for (int i = 0; i < s->n_slots; i++)
        if ((rc = t2_state_new_kv(&s->slots[i].st, m, s->batch, s->n_ctx, s->l0, s->l1,
                                  (t2_dtype)c->worker.kv_type, s->kv)) < 0)
            return rc;
    if (f) {
        char buf[8192];
        const char *dir = t2_conf_experts_dir(c, buf, sizeof buf);
        if ((rc = wk_adapter_new(&s->ad, f, dir, s->l0, s->l1, c->worker.cache)) < 0) return rc;
        wk_adapter_set_merged_type(s->ad, (t2_dtype)c->worker.merged_type);
        if ((rc = check_merged_type(s, f, c)) < 0) return rc;
    }
    return 0;
}

void wk_stage_free(wk_stage *s) {
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        wk_stage_close(s, i);
        t2_state_destroy(&s->slots[i].st);
        free(s->slots[i].ptok);
    }
    free(s->slots);
    free(s->sts);
    free(s->pos);
    free(s->toks);
    free(s->xn);
    free(s->xs);
    free(s->ys);
    free(s->out);
    free(s->score_rows);
    wk_adapter_destroy(&s->ad);
    t2_pool_destroy(&s->pool);
    t2_kvpool_destroy(&s->kv);
    memset(s, 0, sizeof *s);
}

int wk_stage_open(wk_stage *s, int slot, const wk_open *o, const wk_mix *mix) {
    if (slot < 0 || slot >= s->n_slots) return t2_err_set(T2_EPROTO, "OPEN: slot %d", slot);
    wk_stage_close(s, slot);
    wk_rslot *r = &s->slots[slot];
    int rc;
    if (mix->n > 0) {
        if (!s->ad)
            return t2_err_set(T2_EUNSUPPORTED, "this worker group has no SVD factors "
                                               "(model.factors): it cannot apply a mixture");
        if ((rc = wk_adapter_resolve(s->ad, mix, o->apply, s->pool, &r->adapt)) < 0)
            return t2_err_prefix(rc, "rank %d (layers %d..%d)", s->rank, s->l0, s->l1 - 1);
    }
    t2_state_set_adapt(r->st, r->adapt);
    r->score = 0;
    if (o->score) {
        rc = o->kind != WK_KIND_CLASSIFY ? t2_err_set(T2_EPROTO, "OPEN: a scored generation")
                                         : t2_lscore_check(&o->ls, s->V);
        if (rc < 0) {
            t2_adapt_release(&r->adapt);
            return rc;
        }
        r->score = 1;
        r->ls = o->ls;
    }
    if (s->is_tail &&
        (rc = t2_sampler_new(&r->smp, s->V, o->temperature, o->top_p, o->seed)) < 0) {
        t2_adapt_release(&r->adapt);
        return rc;
    }
    r->open = 1;
    return 0;
}

void wk_stage_close(wk_stage *s, int slot) {
    if (slot < 0 || slot >= s->n_slots) return;
    wk_rslot *r = &s->slots[slot];
    t2_state_set_adapt(r->st, NULL);
    t2_state_release(r->st); /* the sequence ended: its KV blocks go back to the pool */
    r->n_ptok = 0;
    t2_adapt_release(&r->adapt);
    t2_sampler_destroy(&r->smp);
    r->open = 0;
}

/* The tail's next token of a slot: sampled, or (scored classification) the best label token,
 * -1 when the label was decided already. */
static int next_token(wk_rslot *r, float *logits) {
    return r->score ? t2_lscore_pick(&r->ls, logits) : t2_sample(r->smp, logits);
}

/* A scored classification's last prompt chunk (the head leaves at least n_check + 1 rows in
 * it): the classifier on those last rows only, the forced tokens checked, the first label
 * token picked. */
static int score_rows(wk_stage *s, wk_rslot *r, int n) {
    int tail = r->ls.n_check + 1;
    if (tail > n) { /* (not from our head) nothing to check */
        r->ls.n_check = 0;
        tail = 1;
    }
    if (!s->score_rows && !(s->score_rows = malloc((size_t)(T2_LSCORE_DEPTH + 1) * (size_t)s->V *
                                                   sizeof *s->score_rows)))
        return t2_err_set(T2_ENOMEM, "out of memory for the label scores");
    float *x = t2_state_x(r->st);
    memmove(x, x + (size_t)(n - tail) * s->D, (size_t)tail * s->D * sizeof *x);
    int rc = t2_forward_head(r->st, s->pool, tail, s->score_rows);
    if (rc < 0) return rc;
    t2_lscore_verify(&r->ls, s->score_rows, s->V);
    s->out[0].val = next_token(r, s->score_rows + (size_t)(tail - 1) * s->V);
    return 0;
}

int wk_stage_prefill(wk_stage *s, int slot, int pos, int n, int last, const int *tokens,
                     const float *x) {
    if (slot < 0 || slot >= s->n_slots || !s->slots[slot].open || n < 1 || n > s->batch)
        return t2_err_set(T2_EPROTO, "PREFILL: slot %d, %d tokens", slot, n);
    t2_state *st = s->slots[slot].st;
    int rc;
    s->n_out = 0;
    if (s->is_head) {
        if ((rc = t2_embed(st, tokens, n)) < 0) return rc;
    } else {
        memcpy(t2_state_x(st), x, (size_t)n * s->D * sizeof(float));
    }
    t2_state_set_layer_hook(st, s->hook, s->hook_arg);
    if ((rc = t2_forward_layers(st, s->pool, n, pos)) < 0) return rc;
    wk_rslot *rs = &s->slots[slot];
    if (last && rs->n_ptok) { /* the prompt's blocks are written: offer them to the cache */
        t2_state_prefix_publish(st, rs->pseed, rs->ptok, rs->n_ptok);
        rs->n_ptok = 0;
    }
    if (s->is_tail && last) {
        wk_rslot *r = &s->slots[slot];
        s->out[0].slot = slot;
        s->n_out = 1;
        if (r->score) return score_rows(s, r, n);
        if ((rc = t2_forward_head(st, s->pool, n, NULL)) < 0) return rc;
        s->out[0].val = next_token(r, t2_state_logits(st));
    }
    return 0;
}

int wk_stage_decode(wk_stage *s, int n, const int *slots, const int *pos, const int *tokens,
                    const float *x) {
    int rc;
    s->n_out = 0;
    if (n < 1 || n > s->n_slots) return t2_err_set(T2_EPROTO, "DECODE: %d slots", n);
    for (int i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= s->n_slots || !s->slots[slots[i]].open)
            return t2_err_set(T2_EPROTO, "DECODE: slot %d is not open", slots[i]);
        s->sts[i] = s->slots[slots[i]].st;
        if (s->is_head) {
            if ((rc = t2_embed(s->sts[i], &tokens[i], 1)) < 0) return rc;
        } else {
            memcpy(t2_state_x(s->sts[i]), x + (size_t)i * s->D, (size_t)s->D * sizeof(float));
        }
    }
    if ((rc = t2_forward_layers_multi(s->sts, n, s->pool, pos)) < 0) return rc;
    if (!s->is_tail) return 0;
    /* the classifier as t2_forward_step_multi runs it: one pass over the matrix for all */
    const t2_model *m = s->m;
    for (int i = 0; i < n; i++) {
        float *xn = s->xn + (size_t)i * s->D;
        t2_rmsnorm(xn, t2_state_x(s->sts[i]), m->output_norm, s->D, m->cfg.rms_eps);
        s->xs[i] = xn;
        s->ys[i] = t2_state_logits(s->sts[i]);
    }
    t2_matvec_batch(s->pool, s->ys, &m->output, s->xs, n);
    for (int i = 0; i < n; i++) {
        s->out[i].slot = slots[i];
        s->out[i].val = next_token(&s->slots[slots[i]], s->ys[i]);
    }
    s->n_out = n;
    return 0;
}

/* ---- prefix reuse ---------------------------------------------------------------------------- */

uint64_t wk_prefix_seed(const wk_open *o, const wk_mix *mix, int merged_type, int kv_type) {
    int32_t head[4] = {kv_type, mix->n, 0, 0};
    if (mix->n > 0) { /* base weights are the same whatever the apply mode */
        head[2] = o->apply;
        head[3] = mix->per_matrix | merged_type << 1;
    }
    uint64_t h = t2_kv_prefix_seed(0, head, sizeof head);
    for (int i = 0; i < mix->n; i++) h = t2_kv_prefix_seed(h, mix->names[i], strlen(mix->names[i]));
    if (mix->n_alpha) h = t2_kv_prefix_seed(h, mix->alpha, (size_t)mix->n_alpha * sizeof(float));
    return h;
}

int wk_stage_prefix_look(wk_stage *s, uint64_t seed, const int *tokens, int max_reuse,
                         int *n_found) {
    *n_found = t2_kvpool_prefix_map(s->kv, seed, tokens, max_reuse / T2_KV_BLOCK, NULL, NULL) *
               T2_KV_BLOCK;
    return 0;
}

int wk_stage_prefix_fits(wk_stage *s, uint64_t seed, const int *tokens, int n_reuse,
                         int n_tokens) {
    int idle = 0;
    const int nb = n_reuse / T2_KV_BLOCK;
    if (t2_kvpool_prefix_map(s->kv, seed, tokens, nb, NULL, &idle) != nb)
        return t2_err_set(T2_EPROTO, "prefix: %d cached blocks expected", nb);
    const long need = (long)t2_kv_blocks_for(n_tokens) - nb;
    const long avail = (long)t2_kvpool_n_free(s->kv) - idle;
    if (need > avail)
        return t2_err_set(T2_EBUSY, "KV pool full: the request needs %d tokens (%ld new blocks of "
                          "%d, %d cached), %ld of the pool's %lld blocks are free "
                          "(worker.kv_pool_tokens)", n_tokens, need, T2_KV_BLOCK, nb, avail,
                          (long long)t2_kvpool_n_blocks(s->kv));
    return 0;
}

int wk_stage_prefix(wk_stage *s, int slot, uint64_t seed, int n_reuse, int n_tokens,
                    const int *tokens, int n_tok) {
    if (slot < 0 || slot >= s->n_slots || n_reuse < 0 || n_reuse % T2_KV_BLOCK ||
        n_reuse > n_tok || n_tok > n_tokens || n_tokens > s->n_ctx)
        return t2_err_set(T2_EPROTO, "PREFIX: slot %d, %d reused of %d tokens, %d to hold "
                          "(context %d)", slot, n_reuse, n_tok, n_tokens, s->n_ctx);
    wk_rslot *r = &s->slots[slot];
    if (!r->ptok && !(r->ptok = malloc((size_t)s->n_ctx * sizeof *r->ptok)))
        return t2_err_set(T2_ENOMEM, "out of memory");
    t2_state_release(r->st);
    int got = t2_state_prefix_map(r->st, seed, tokens, n_reuse), rc = 0;
    if (got != n_reuse)
        rc = t2_err_set(T2_EPROTO, "PREFIX: rank %d holds %d of the %d cached prompt tokens the "
                        "head found", s->rank, got, n_reuse);
    else
        rc = t2_state_reserve(r->st, n_tokens);
    if (rc < 0) {
        t2_state_release(r->st);
        return rc;
    }
    memcpy(r->ptok, tokens, (size_t)n_tok * sizeof *tokens);
    r->n_ptok = n_tok;
    r->pseed = seed;
    return 0;
}

/* PREFIX from the previous rank: the body is the seed, then n int32 tokens. */
static int serve_prefix(wk_stage *s, const wk_hdr *h, const char *body, size_t blen) {
    uint64_t seed;
    if (h->n < 0 || h->n > s->n_ctx || blen != sizeof seed + (size_t)h->n * sizeof(int32_t))
        return t2_err_set(T2_EPROTO, "PREFIX: %zu bytes for %d tokens", blen, h->n);
    memcpy(&seed, body, sizeof seed);
    int *tok = malloc(((size_t)h->n + 1) * sizeof *tok);
    if (!tok) return t2_err_set(T2_ENOMEM, "out of memory");
    memcpy(tok, body + sizeof seed, (size_t)h->n * sizeof *tok);
    int rc = wk_stage_prefix(s, h->slot, seed, h->pos, h->last, tok, h->n);
    free(tok);
    return rc;
}

/* ---- non-head ranks ------------------------------------------------------------------------- */

/* Send hdr (+ body) to rank `dest`. */
static int send_msg(wk_stage *s, const wk_hdr *h, const void *body, size_t blen, int dest,
                    int tag) {
    char *buf = wk_pipe_buf(s->pipe, sizeof *h + blen);
    if (!buf) return t2_err_set(T2_ENOMEM, "out of memory for a message");
    memcpy(buf, h, sizeof *h);
    if (blen) memcpy(buf + sizeof *h, body, blen);
    return wk_pipe_send(s->pipe, buf, sizeof *h + blen, dest, tag);
}

/* The tail's tokens back to the head. */
static int send_tokens(wk_stage *s) {
    if (!s->n_out) return 0;
    wk_hdr h = {.type = WK_MSG_TOKENS, .n = s->n_out};
    return send_msg(s, &h, s->out, (size_t)s->n_out * sizeof *s->out, 0, WK_TAG_BACK);
}

/* Activations of the step to the next rank: hdr, then (DECODE) the pairs, then n x D floats. */
static int forward_step(wk_stage *s, const wk_hdr *h, const wk_pair *pairs, int n_rows, int slot) {
    const size_t D = (size_t)s->D;
    size_t plen = h->type == WK_MSG_DECODE ? (size_t)h->n * sizeof *pairs : 0;
    size_t len = sizeof *h + plen + (size_t)n_rows * D * sizeof(float);
    char *buf = wk_pipe_buf(s->pipe, len);
    if (!buf) return t2_err_set(T2_ENOMEM, "out of memory for a message");
    memcpy(buf, h, sizeof *h);
    if (plen) memcpy(buf + sizeof *h, pairs, plen);
    float *x = (float *)(buf + sizeof *h + plen);
    if (h->type == WK_MSG_PREFILL)
        memcpy(x, t2_state_x(s->slots[slot].st), (size_t)n_rows * D * sizeof(float));
    else
        for (int i = 0; i < n_rows; i++)
            memcpy(x + (size_t)i * D, t2_state_x(s->slots[pairs[i].slot].st), D * sizeof(float));
    return wk_pipe_send(s->pipe, buf, len, s->rank + 1, WK_TAG_FWD);
}

int wk_stage_serve(wk_stage *s) {
    const size_t D = (size_t)s->D;
    for (;;) {
        void *msg;
        size_t len;
        int rc = wk_pipe_wait(s->pipe, s->rank - 1, WK_TAG_FWD, &msg, &len);
        if (rc < 0) return rc;
        if (len < sizeof(wk_hdr)) return t2_err_set(T2_EPROTO, "short pipeline message");
        wk_hdr *h = msg;
        char *body = (char *)msg + sizeof *h;
        size_t blen = len - sizeof *h;
        switch (h->type) {
        case WK_MSG_OPEN: {
            wk_open o;
            wk_mix mix;
            if ((rc = wk_open_unpack(body, blen, &o, &mix)) < 0) return rc;
            if (h->code == 0 && (rc = wk_stage_open(s, h->slot, &o, &mix)) < 0) {
                h->code = rc;
                snprintf(h->msg, sizeof h->msg, "%s", t2_err_msg());
            }
            wk_mix_free(&mix);
            if (s->is_tail) {
                wk_hdr a = {.type = WK_MSG_ACK, .slot = h->slot, .code = h->code};
                memcpy(a.msg, h->msg, sizeof a.msg);
                rc = send_msg(s, &a, NULL, 0, 0, WK_TAG_BACK);
            } else {
                rc = send_msg(s, h, body, blen, s->rank + 1, WK_TAG_FWD);
            }
            break;
        }
        case WK_MSG_PREFILL:
            if (blen != (size_t)h->n * D * sizeof(float))
                return t2_err_set(T2_EPROTO, "PREFILL: %zu bytes for %d tokens", blen, h->n);
            if ((rc = wk_stage_prefill(s, h->slot, h->pos, h->n, h->last, NULL, (float *)body)) < 0)
                return rc;
            rc = s->is_tail ? send_tokens(s) : forward_step(s, h, NULL, h->n, h->slot);
            break;
        case WK_MSG_DECODE: {
            size_t plen = (size_t)h->n * sizeof(wk_pair);
            if (h->n < 1 || h->n > s->n_slots || blen != plen + (size_t)h->n * D * sizeof(float))
                return t2_err_set(T2_EPROTO, "DECODE: %zu bytes for %d slots", blen, h->n);
            const wk_pair *pairs = (const wk_pair *)body;
            for (int i = 0; i < h->n; i++) {
                s->toks[i] = pairs[i].slot;
                s->pos[i] = pairs[i].val;
            }
            if ((rc = wk_stage_decode(s, h->n, s->toks, s->pos, NULL, (float *)(body + plen))) < 0)
                return rc;
            rc = s->is_tail ? send_tokens(s) : forward_step(s, h, pairs, h->n, -1);
            break;
        }
        case WK_MSG_PREFIX:
            if ((rc = serve_prefix(s, h, body, blen)) < 0) return rc;
            rc = s->is_tail ? 0 : send_msg(s, h, body, blen, s->rank + 1, WK_TAG_FWD);
            break;
        case WK_MSG_CLOSE:
            wk_stage_close(s, h->slot);
            rc = s->is_tail ? 0 : send_msg(s, h, NULL, 0, s->rank + 1, WK_TAG_FWD);
            break;
        case WK_MSG_SHUTDOWN: /* pass it on; the tail says goodbye to the head */
            rc = s->is_tail ? send_msg(s, h, NULL, 0, 0, WK_TAG_BACK)
                            : send_msg(s, h, NULL, 0, s->rank + 1, WK_TAG_FWD);
            T2_INFO("shutting down");
            return rc;
        default: return t2_err_set(T2_EPROTO, "pipeline message of type %d", h->type);
        }
        if (rc < 0) return rc;
    }
}
