/* generate.c - batched generation with continuous batching (see generate.h). */
#include "engine/generate.h"

#include "base/buf.h"
#include "base/platform.h"
#include "engine/sampler.h"
#include "engine/adapt.h"
#include "base/t2_err.h"
#include "engine/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *t2_gen_stop_name(t2_gen_stop s) {
    switch (s) {
    case T2_GEN_STOP_STRING: return "stop";
    case T2_GEN_STOP_EOS: return "eos";
    case T2_GEN_STOP_LENGTH: return "length";
    case T2_GEN_STOP_CONTEXT: return "context";
    default: return "none";
    }
}

void t2_gen_params_default(t2_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_tokens = 64;
    p->temperature = 0.0f;
    p->top_p = 1.0f;
    p->batch = 8;
    p->prompt_batch = 128;
    p->truncate = 1;
    p->prefix_cache = 1;
    p->stop[0] = "\n";
}

void t2_gen_results_free(t2_gen_result *r, int n) {
    if (!r) return;
    for (int i = 0; i < n; i++) {
        free(r[i].text);
        free(r[i].tokens);
        memset(&r[i], 0, sizeof r[i]);
    }
}

/* One sequence in flight. */
typedef struct {
    t2_state *st;
    t2_sampler *smp;
    int req;     /* request index, -1 when free */
    int pos;     /* position at which `token` is run next */
    int token;   /* the last sampled token (run in the next step) */
    size_t cap;  /* of the result's text buffer */
    double t0;
} slot;

typedef struct {
    const t2_model *m;
    const t2_tokenizer *tok;
    t2_pool *pool;
    const t2_gen_request *reqs;
    const t2_gen_params *p;
    t2_gen_result *out;
    t2_gen_stats *stats;
    int n_stops;
    size_t stop_max; /* longest stop string */
    int ctx;         /* the context (positions) a sequence may use */
    t2_kvpool *kv;   /* the slots' KV blocks (prefix reuse shares them) */
} gen;

static void req_fail(t2_gen_result *r, int code, const char *msg) {
    r->error = code;
    r->stop = T2_GEN_STOP_NONE;
    snprintf(r->message, sizeof r->message, "%s", msg);
}

/* Append n bytes to the result's text (a t2_buf spread over the result and the slot's cap);
 * 0 or T2_ENOMEM. */
static int text_add(t2_gen_result *r, size_t *cap, const char *s, size_t n) {
    t2_buf b = {r->text, r->len, *cap};
    const int rc = t2_buf_add(&b, s, n);
    r->text = b.data;
    r->len = b.len;
    *cap = b.cap;
    return rc;
}

static void finish(gen *g, slot *s, t2_gen_stop why) {
    t2_gen_result *r = &g->out[s->req];
    r->stop = why;
    r->seconds = t2_now() - s->t0;
    if (g->stats) {
        g->stats->gen_tokens += r->n_gen;
        if (r->truncated) g->stats->truncated++;
    }
    int idx = s->req;
    s->req = -1;
    t2_sampler_destroy(&s->smp);
    t2_state_release(s->st); /* its prompt's blocks stay cached for later requests */
    if (g->p->on_done) g->p->on_done(g->p->on_done_ctx, idx, r);
}

/* Sample the next token of slot s from its state's logits and process it: 1 if the sequence
 * goes on (its token is to be run at s->pos), 0 if it finished, < 0 on failure. */
static int take_token(gen *g, slot *s) {
    t2_gen_result *r = &g->out[s->req];
    const int next = t2_sample(s->smp, t2_state_logits(s->st));
    const int prev = r->tokens[r->n_prompt + r->n_gen - 1];
    r->tokens[r->n_prompt + r->n_gen] = next;
    r->n_gen++;
    if (next == t2_tok_bos(g->tok) || next == t2_tok_eos(g->tok) || next == t2_tok_eot(g->tok)) {
        finish(g, s, T2_GEN_STOP_EOS);
        return 0;
    }
    size_t n;
    const char *piece = t2_tok_piece_text(g->tok, prev, next, &n); /* as t2 run prints it */
    if (n) {
        const size_t old = r->len;
        if (text_add(r, &s->cap, piece, n) < 0) return T2_ENOMEM;
        /* the earliest stop string that ends in the new bytes */
        size_t from = old + 1 > g->stop_max ? old + 1 - g->stop_max : 0, cut = (size_t)-1;
        for (int k = 0; k < g->n_stops; k++) {
            const char *hit = strstr(r->text + from, g->p->stop[k]);
            if (hit && (size_t)(hit - r->text) < cut) cut = (size_t)(hit - r->text);
        }
        if (cut != (size_t)-1) {
            r->len = cut;
            r->text[cut] = 0;
            finish(g, s, T2_GEN_STOP_STRING);
            return 0;
        }
    }
    if (r->n_gen >= g->p->max_tokens) {
        finish(g, s, T2_GEN_STOP_LENGTH);
        return 0;
    }
    s->pos = r->n_prompt + r->n_gen - 1;
    if (s->pos >= g->ctx) {
        finish(g, s, T2_GEN_STOP_CONTEXT);
        return 0;
    }
    s->token = next;
    return 1;
}

/* The prompt of request req in slot s: the cached blocks of its prefix mapped (prefix_cache),
 * the rest run in chunks whose boundaries are those of a run from 0 (so the numbers are the
 * same bits), its full blocks offered to the cache. */
static int run_prompt(gen *g, slot *s, int req) {
    t2_gen_result *r = &g->out[req];
    const int np = r->n_prompt, pb = g->p->prompt_batch;
    const t2_adapt *a = g->reqs[req].adapt;
    /* the weights in use (the adaptation, alive for the whole call) and the cache type */
    uint64_t seed = t2_kv_prefix_seed(0, &a, sizeof a);
    seed = t2_kv_prefix_seed(seed, &g->p->kv_type, sizeof g->p->kv_type);
    int from = 0;
    if (g->p->prefix_cache) { /* look, then map exactly what the chunk grid allows */
        const int found = t2_kvpool_prefix_map(g->kv, seed, r->tokens, np / T2_KV_BLOCK, NULL,
                                               NULL);
        from = t2_state_prefix_map(s->st, seed, r->tokens,
                                   t2_kv_prefix_max(np, 1, pb, found * T2_KV_BLOCK));
    }
    const int n1 = np - from < pb - from % pb ? np - from : pb - from % pb;
    int rc = t2_forward(s->st, g->pool, r->tokens + from, n1, from, NULL);
    if (rc == 0 && from + n1 < np)
        rc = t2_forward(s->st, g->pool, r->tokens + from + n1, np - from - n1, from + n1, NULL);
    if (rc == 0 && g->p->prefix_cache) t2_state_prefix_publish(s->st, seed, r->tokens, np - 1);
    if (g->stats) g->stats->reused_tokens += from;
    return rc;
}

/* Start request `req` in slot s: run its prompt and take the first token. 1 if the sequence
 * is in flight, 0 if it finished or failed on its own, < 0 on an engine failure. */
static int start(gen *g, slot *s, int req) {
    t2_gen_result *r = &g->out[req];
    const t2_gen_params *p = g->p;
    s->req = req;
    s->t0 = t2_now();
    s->cap = 0;
    int rc = t2_sampler_new(&s->smp, g->m->cfg.vocab_size, p->temperature, p->top_p,
                            g->reqs[req].seed);
    if (rc < 0) return rc;
    r->text = malloc(1);
    if (!r->text) return t2_err_set(T2_ENOMEM, "out of memory");
    r->text[0] = 0;
    s->cap = 1;
    t2_state_set_adapt(s->st, g->reqs[req].adapt);
    double t0 = t2_now();
    rc = run_prompt(g, s, req);
    if (g->stats) {
        g->stats->prompt_seconds += t2_now() - t0;
        g->stats->prompt_tokens += r->n_prompt;
    }
    if (rc == T2_ENOMEM) return rc;
    if (rc < 0) { /* this request's own problem (e.g. a mixture made for another model) */
        int idx = s->req;
        req_fail(r, rc, t2_err_msg());
        if (g->stats) g->stats->failed++;
        s->req = -1;
        t2_sampler_destroy(&s->smp);
        t2_state_release(s->st);
        if (p->on_done) p->on_done(p->on_done_ctx, idx, r);
        return 0;
    }
    return take_token(g, s);
}

/* Encode every prompt (with truncation) into out[i].tokens; per-request failures recorded. */
static int encode_all(gen *g, int n, int *max_needed) {
    const t2_gen_params *p = g->p;
    const int C = g->ctx;
    int reserve = p->max_tokens < C / 2 ? p->max_tokens : C / 2;
    if (reserve < 1) reserve = 1;
    *max_needed = 1;
    for (int i = 0; i < n; i++) {
        t2_gen_result *r = &g->out[i];
        const char *prompt = g->reqs[i].prompt ? g->reqs[i].prompt : "";
        size_t len = strlen(prompt);
        int cap = (int)(len + 3), np = 0;
        if (len > (size_t)1 << 28) {
            req_fail(r, T2_ERANGE, "prompt longer than 256 MiB");
            if (g->stats) g->stats->failed++;
            continue;
        }
        int *toks = malloc((size_t)(cap + p->max_tokens) * sizeof(int));
        if (!toks) return t2_err_set(T2_ENOMEM, "out of memory encoding prompts");
        int rc = t2_tok_encode(g->tok, prompt, 1, 0, toks, cap, &np);
        if (rc < 0) {
            free(toks);
            if (rc == T2_ENOMEM) return rc;
            req_fail(r, rc, t2_err_msg());
            if (g->stats) g->stats->failed++;
            continue;
        }
        if (np > C - reserve) {
            if (!p->truncate && np > C) {
                char msg[128];
                snprintf(msg, sizeof msg, "the prompt is %d tokens, more than the context of %d",
                         np, C);
                free(toks);
                req_fail(r, T2_ERANGE, msg);
                if (g->stats) g->stats->failed++;
                continue;
            }
            if (p->truncate) { /* BOS + the last C - reserve - 1 tokens */
                int keep = C - reserve;
                if (keep < 1) keep = 1;
                r->truncated = np - keep;
                memmove(toks + 1, toks + 1 + r->truncated, (size_t)(keep - 1) * sizeof(int));
                np = keep;
            }
        }
        r->tokens = toks;
        r->n_prompt = np;
        int need = np + p->max_tokens - 1;
        if (need > *max_needed) *max_needed = need;
    }
    if (*max_needed > C) *max_needed = C;
    return 0;
}

/* The arguments of t2_generate_batch, checked. */
static int check_args(const t2_model *m, const t2_tokenizer *tok, const t2_gen_request *reqs,
                      int n, const t2_gen_params *p, const t2_gen_result *out) {
    if (!m || !tok || (n > 0 && (!reqs || !out)) || !p || n < 0)
        return t2_err_set(T2_EINVAL, "generate: missing model, tokenizer, requests or results");
    if (p->max_tokens < 1)
        return t2_err_set(T2_EINVAL, "generate: max_tokens %d (at least 1)", p->max_tokens);
    if (p->batch < 1 || p->batch > T2_MAX_SEQS)
        return t2_err_set(T2_EINVAL, "generate: batch %d out of range (1..%d)", p->batch,
                          T2_MAX_SEQS);
    if (p->prompt_batch < 1 || p->prompt_batch > 65536)
        return t2_err_set(T2_EINVAL, "generate: prompt batch %d out of range (1..65536)",
                          p->prompt_batch);
    if (!(p->temperature >= 0) || !(p->top_p >= 0 && p->top_p <= 1))
        return t2_err_set(T2_EINVAL, "generate: temperature %g / top-p %g out of range",
                          (double)p->temperature, (double)p->top_p);
    if (p->n_ctx < 0) return t2_err_set(T2_EINVAL, "generate: n_ctx %d < 0", p->n_ctx);
    if (!t2_kv_type_ok(p->kv_type))
        return t2_err_set(T2_EINVAL, "generate: KV cache type %s (F16, Q8_0 or F32)",
                          t2_dtype_name(p->kv_type));
    if (t2_tok_vocab_size(tok) > m->cfg.vocab_size)
        return t2_err_set(T2_EMISMATCH, "generate: the tokenizer has %d pieces, the model %d",
                          t2_tok_vocab_size(tok), m->cfg.vocab_size);
    return 0;
}

/* The slots and the buffers of one decode step. */
typedef struct {
    slot *slots;
    int nslots, next; /* next: the first request not yet started */
    t2_state **sts;
    int *toks, *pos, *idx, *grouped;
    double in_flight_sum;
} gen_run;

/* Fill free slots (a request may finish or fail right away: keep filling). */
static int fill_slots(gen *g, gen_run *w, int n) {
    const t2_gen_params *p = g->p;
    for (int i = 0; i < w->nslots && w->next < n; i++) {
        while (w->slots[i].req < 0 && w->next < n) {
            int q = w->next++;
            if (g->out[q].error) { /* failed while encoding */
                if (p->on_done) p->on_done(p->on_done_ctx, q, &g->out[q]);
                continue;
            }
            int rc = start(g, &w->slots[i], q);
            if (rc < 0) return rc;
        }
    }
    return 0;
}

/* One decode step of the `active` slots w->idx[], in groups of sequences whose adaptations
 * share factors. */
static int decode_step(gen *g, gen_run *w, int active) {
    t2_gen_stats *stats = g->stats;
    int rc;
    for (int a = 0; a < active; a++) w->grouped[a] = 0;
    for (int a0 = 0; a0 < active; a0++) {
        if (w->grouped[a0]) continue;
        const t2_svd *f = NULL;
        int k = 0;
        for (int a = a0; a < active; a++) {
            if (w->grouped[a]) continue;
            const t2_gen_request *rq = &g->reqs[w->slots[w->idx[a]].req];
            const t2_svd *fa = rq->adapt ? rq->adapt->svd : NULL;
            if (fa && f && fa != f) continue;
            if (fa) f = fa;
            w->grouped[a] = 1;
            slot *s = &w->slots[w->idx[a]];
            w->sts[k] = s->st;
            w->toks[k] = s->token;
            w->pos[k] = s->pos;
            k++;
        }
        double t0 = t2_now();
        rc = t2_forward_step_multi(w->sts, k, g->pool, w->toks, w->pos);
        if (stats) {
            stats->decode_seconds += t2_now() - t0;
            stats->steps++;
        }
        w->in_flight_sum += k;
        if (rc < 0) return rc;
        for (int a = a0, j = 0; a < active && j < k; a++) {
            slot *s = &w->slots[w->idx[a]];
            if (w->sts[j] != s->st) continue;
            j++;
            if ((rc = take_token(g, s)) < 0) return rc;
        }
    }
    return 0;
}

/* Encode the prompts, then start requests and step them until all are done. */
static int generate_all(gen *g, gen_run *w, int n) {
    int rc, ctx_needed = 1;
    if ((rc = encode_all(g, n, &ctx_needed)) < 0) return rc;
    /* one pool for all slots, room for each slot's whole context: never T2_EBUSY */
    const t2_config *c = &g->m->cfg;
    if ((rc = t2_kvpool_new(&g->kv, g->p->kv_type, c->n_layers, c->n_kv_heads * c->head_dim,
                            w->nslots * t2_kv_blocks_for(ctx_needed))) < 0)
        return rc;
    for (int i = 0; i < w->nslots; i++) {
        w->slots[i].req = -1;
        if ((rc = t2_state_new_kv(&w->slots[i].st, g->m, g->p->prompt_batch, ctx_needed, 0,
                                  c->n_layers, g->p->kv_type, g->kv)) < 0)
            return rc;
    }
    for (;;) {
        if ((rc = fill_slots(g, w, n)) < 0) return rc;
        int active = 0;
        for (int i = 0; i < w->nslots; i++)
            if (w->slots[i].req >= 0) w->idx[active++] = i;
        if (!active) return 0;
        if ((rc = decode_step(g, w, active)) < 0) return rc;
    }
}

int t2_generate_batch(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                      const t2_gen_request *reqs, int n, const t2_gen_params *p,
                      t2_gen_result *out, t2_gen_stats *stats) {
    int rc = check_args(m, tok, reqs, n, p, out);
    if (rc < 0) return rc;
    gen g = {.m = m, .tok = tok, .pool = pool, .reqs = reqs, .p = p, .out = out, .stats = stats};
    for (g.n_stops = 0; g.n_stops < T2_GEN_MAX_STOPS && p->stop[g.n_stops]; g.n_stops++) {
        size_t l = strlen(p->stop[g.n_stops]);
        if (!l) return t2_err_set(T2_EINVAL, "generate: empty stop string");
        if (l > g.stop_max) g.stop_max = l;
    }
    g.ctx = p->n_ctx && p->n_ctx < m->cfg.seq_len ? p->n_ctx : m->cfg.seq_len;
    if (stats) memset(stats, 0, sizeof *stats);
    for (int i = 0; i < n; i++) memset(&out[i], 0, sizeof out[i]);
    if (n == 0) return 0;

    const double t_start = t2_now();
    gen_run w = {.nslots = p->batch < n ? p->batch : n};
    const size_t ns = (size_t)w.nslots;
    w.slots = calloc(ns, sizeof *w.slots);
    w.sts = malloc(ns * sizeof *w.sts);
    w.toks = malloc(ns * sizeof(int)), w.pos = malloc(ns * sizeof(int));
    w.idx = malloc(ns * sizeof(int));
    w.grouped = malloc(ns * sizeof(int));
    if (!w.slots || !w.sts || !w.toks || !w.pos || !w.idx || !w.grouped)
        rc = t2_err_set(T2_ENOMEM, "out of memory");
    else
        rc = generate_all(&g, &w, n);
    if (rc == 0 && stats) {
        stats->wall_seconds = t2_now() - t_start;
        stats->mean_in_flight = stats->steps ? w.in_flight_sum / stats->steps : 0;
    }
    if (w.slots)
        for (int i = 0; i < w.nslots; i++) {
            t2_state_destroy(&w.slots[i].st);
            t2_sampler_destroy(&w.slots[i].smp);
        }
    free(w.slots);
    free(w.sts);
    free(w.toks);
    free(w.pos);
    free(w.idx);
    free(w.grouped);
    t2_kvpool_destroy(&g.kv);
    if (rc < 0) t2_gen_results_free(out, n);
    return rc < 0 ? rc : 0;
}
