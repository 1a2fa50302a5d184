/* task_mc.c - multiple-choice items scored by the log-likelihood of each choice (task_mc.h). */
#include "tasks/task_mc.h"
#include "tasks/task_eval.h"

#include "base/platform.h"
#include "base/t2_err.h"
#include "engine/transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const NORM_NAMES[T2_MC_NORMS] = {"sum", "token", "char", "uncond", "pmi"};

const char *t2_mc_norm_name(t2_mc_norm k) {
    return (unsigned)k < T2_MC_NORMS ? NORM_NAMES[k] : "?";
}

/* Append s to the view's buffer; the copy, or NULL when it does not fit. */
static const char *view_put(t2_mc_view *v, size_t *used, const char *a, const char *b, size_t bn) {
    size_t an = strlen(a);
    if (*used + an + bn + 1 > sizeof v->buf) return NULL;
    char *p = v->buf + *used;
    memcpy(p, a, an);
    memcpy(p + an, b, bn);
    p[an + bn] = 0;
    *used += an + bn + 1;
    return p;
}

/* ARC: "Question: STEM\nAnswer:" and " TEXT" per choice; the stem is the prompt's first part
 * (before "\nA) ", the choice list the loader wrote). */
static int view_arc(const t2_task_item *it, t2_mc_view *v) {
    size_t used = 0, n = strlen(it->choices);
    char head[8], ctx[2048];
    snprintf(head, sizeof head, "\n%c) ", it->choices[0]);
    const char *end = strstr(it->prompt, head);
    int stem = end ? (int)(end - it->prompt) : (int)strlen(it->prompt);
    if (n < 2 || n > T2_MC_MAX ||
        snprintf(ctx, sizeof ctx, "Question: %.*s\nAnswer:", stem, it->prompt) >= (int)sizeof ctx)
        return t2_err_set(T2_ERANGE, "%s: question too long or too many choices", it->id);
    v->n = (int)n;
    memcpy(v->labels, it->choices, n + 1);
    v->answer = (int)(strchr(it->choices, it->target[0]) - it->choices);
    v->context = view_put(v, &used, ctx, "", 0);
    v->uncond = view_put(v, &used, "Answer:", "", 0);
    if (!v->context || !v->uncond) return t2_err_set(T2_ERANGE, "%s: question too long", it->id);
    const char *t = it->choice_text;
    for (int i = 0; i < v->n; i++) {
        const char *nl = strchr(t, '\n');
        size_t tl = nl ? (size_t)(nl - t) : strlen(t);
        if (!tl || (!nl && i + 1 < v->n))
            return t2_err_set(T2_ERANGE, "%s: choice %d has no text", it->id, i);
        if (!(v->cont[i] = view_put(v, &used, " ", t, tl)))
            return t2_err_set(T2_ERANGE, "%s: choices too long", it->id);
        t = nl ? nl + 1 : t + tl;
    }
    return 0;
}

int t2_mc_view_of(const t2_task_item *it, t2_mc_view *v) {
    memset(v, 0, sizeof *v);
    if (it->choices && it->choice_text && it->target && strchr(it->choices, it->target[0]) &&
        it->target[0])
        return view_arc(it, v);
    static const char ans[] = "the answer is (";
    const size_t al = sizeof ans - 1;
    if (it->choices || !it->target || strlen(it->target) != 1 || it->target[0] < 'A' ||
        it->target[0] > 'D' || strncmp(it->answer, ans, al))
        return t2_err_set(T2_EINVAL, "%s: not a multiple-choice item", it->id);
    size_t used = 0;
    v->n = 4;
    memcpy(v->labels, "ABCD", 5);
    v->answer = it->target[0] - 'A';
    v->context = view_put(v, &used, it->prompt, T2_TASK_SEP, strlen(T2_TASK_SEP));
    v->uncond = view_put(v, &used, "", "", 0);
    for (int i = 0; i < 4 && v->context && v->uncond; i++) {
        char c[4] = {(char)('A' + i), ')', 0, 0};
        if (!(v->cont[i] = view_put(v, &used, ans, c, 2))) break;
    }
    if (!v->context || !v->uncond || !v->cont[3])
        return t2_err_set(T2_ERANGE, "%s: prompt too long", it->id);
    return 0;
}

void t2_mc_result_free(t2_mc_result *r) {
    if (!r) return;
    for (int k = 0; k < r->n && r->items; k++)
        for (int c = 0; c < T2_MC_MAX; c++) {
            free(r->items[k].ch[c].tokens);
            free(r->items[k].ch[c].uncond_tokens);
        }
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* What one scoring needs: the state, the logits of a whole text, the context's tokens. */
typedef struct mc_ctx {
    const t2_model *m;
    const t2_tokenizer *tok;
    t2_pool *pool;
    t2_state *st;
    float *logits; /* (seq_len, V) */
    int64_t tokens;
    int truncated; /* set when a text was cut to fit the context */
} mc_ctx;

/* The tokens of a + b (BOS first) into a malloc'd array. */
static int mc_encode(const t2_tokenizer *tok, const char *a, const char *b, int **out, int *n) {
    size_t al = strlen(a), bl = strlen(b);
    char *s = malloc(al + bl + 1);
    *out = malloc((al + bl + 3) * sizeof(int));
    if (!s || !*out) {
        free(s);
        free(*out);
        *out = NULL;
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    memcpy(s, a, al);
    memcpy(s + al, b, bl + 1);
    int rc = t2_tok_encode(tok, s, 1, 0, *out, (int)(al + bl + 3), n);
    free(s);
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* The continuation cont after ctx (ctx_toks: its n_ctx tokens): *sum, *n_cont, and the whole
 * text's tokens into *text / *n_text. 1 if it cannot be scored (too long, empty), 0, or < 0. */
static int mc_continuation(mc_ctx *c, const char *ctx, const int *ctx_toks, int n_ctx,
                           const char *cont, double *sum, int *n_cont, int **text, int *n_text) {
    int rc = mc_encode(c->tok, ctx, cont, text, n_text);
    if (rc == T2_ENOMEM) return rc;
    if (rc < 0) return 1;
    int p = 0, nd = *n_text, C = c->m->cfg.seq_len;
    while (p < n_ctx && p < nd && ctx_toks[p] == (*text)[p]) p++;
    if (p < 1 || p >= nd || nd - p > C - 1) return 1;
    if (nd > C) { /* cut the context from the left, BOS kept */
        int drop = nd - C;
        memmove(*text + 1, *text + 1 + drop, (size_t)(nd - 1 - drop) * sizeof **text);
        nd = *n_text = C;
        p -= drop;
        c->truncated = 1;
    }
    if ((rc = t2_forward(c->st, c->pool, *text, nd, 0, c->logits)) < 0) return rc;
    c->tokens += nd;
    *sum = t2_task_sum_logprob(c->logits, c->m->cfg.vocab_size, *text, p, nd);
    *n_cont = nd - p;
    return 0;
}

/* The predictions of a scored item, per score. */
static void mc_predict(t2_mc_item *r) {
    for (int k = 0; k < T2_MC_NORMS; k++) {
        int best = 0;
        double bv = -INFINITY;
        for (int i = 0; i < r->n; i++) {
            const t2_mc_choice *ch = &r->ch[i];
            double v = k == T2_MC_SUM      ? ch->sum
                       : k == T2_MC_TOKEN  ? ch->sum / ch->n_tokens
                       : k == T2_MC_CHAR   ? ch->sum / ch->n_bytes
                       : k == T2_MC_UNCOND ? ch->uncond
                                           : ch->sum - ch->uncond;
            if (v > bv) bv = v, best = i;
        }
        r->pred[k] = best;
        r->correct[k] = best == r->answer;
    }
}

/* One item into r: 0 (r->ok says whether it was scored), or < 0 to stop. */
static int mc_item(mc_ctx *c, const t2_task_item *it, t2_mc_item *r) {
    t2_mc_view *v = malloc(sizeof *v);
    int *ct = NULL, *ut = NULL, nc = 0, nu = 0, rc;
    if (!v) return t2_err_set(T2_ENOMEM, "out of memory");
    for (int k = 0; k < T2_MC_NORMS; k++) r->pred[k] = -1;
    if ((rc = t2_mc_view_of(it, v)) < 0) {
        free(v);
        return rc == T2_ENOMEM ? rc : 0;
    }
    r->n = v->n;
    r->answer = v->answer;
    rc = mc_encode(c->tok, v->context, "", &ct, &nc);
    if (rc == 0) rc = mc_encode(c->tok, v->uncond, "", &ut, &nu);
    int bad = rc < 0;
    for (int i = 0; i < v->n && !bad; i++) {
        t2_mc_choice *ch = &r->ch[i];
        ch->n_bytes = (int)strlen(v->cont[i]);
        rc = mc_continuation(c, v->context, ct, nc, v->cont[i], &ch->sum, &ch->n_tokens,
                             &ch->tokens, &ch->n_text);
        if (rc == 0)
            rc = mc_continuation(c, v->uncond, ut, nu, v->cont[i], &ch->uncond,
                                 &ch->n_uncond_tokens, &ch->uncond_tokens, &ch->n_uncond_text);
        bad = rc != 0;
    }
    free(ct);
    free(ut);
    free(v);
    if (rc == T2_ENOMEM || rc == T2_EMISMATCH) return rc; /* not the item's problem */
    r->ok = !bad;
    if (r->ok) mc_predict(r);
    return 0;
}

int t2_mc_eval(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool, const t2_task_set *set,
               const size_t *idx, int n, const struct t2_adapt *adapt, t2_mc_result *out) {
    memset(out, 0, sizeof *out);
    size_t count = t2_task_set_count(set);
    for (int k = 0; k < n; k++)
        if (idx && idx[k] >= count)
            return t2_err_set(T2_ERANGE, "item index %zu outside the set of %zu", idx[k], count);
    if (n < 0 || (!idx && (size_t)n > count))
        return t2_err_set(T2_ERANGE, "%d items asked of a set of %zu", n, count);
    double t0 = t2_now();
    const int C = m->cfg.seq_len;
    mc_ctx c = {.m = m, .tok = tok, .pool = pool};
    c.logits = malloc((size_t)C * m->cfg.vocab_size * sizeof *c.logits);
    out->items = calloc((size_t)n + 1, sizeof *out->items);
    int rc = 0;
    if (!c.logits || !out->items) rc = t2_err_set(T2_ENOMEM, "out of memory (logits of %d)", C);
    if (rc == 0 && (rc = t2_state_new(&c.st, m, C < 128 ? C : 128, C)) == 0)
        t2_state_set_adapt(c.st, adapt);
    out->n = n;
    for (int k = 0; k < n && rc == 0; k++) {
        t2_mc_item *r = &out->items[k];
        r->index = idx ? idx[k] : (size_t)k;
        c.truncated = 0;
        rc = mc_item(&c, t2_task_set_item(set, r->index), r);
        r->truncated = c.truncated;
        out->failed += !r->ok;
        out->truncated += r->truncated;
        for (int s = 0; s < T2_MC_NORMS && r->ok; s++) out->correct[s] += r->correct[s];
    }
    t2_state_destroy(&c.st);
    free(c.logits);
    out->tokens = c.tokens;
    out->seconds = t2_now() - t0;
    if (rc < 0) t2_mc_result_free(out);
    return rc;
}
