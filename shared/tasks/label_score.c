/* label_score.c - pass 1 by scoring (label_score.h). */
#include "tasks/label_score.h"

#include "base/t2_err.h"
#include "engine/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "Classify: Q" SEP "\boxed{LABEL" encoded (BOS first) into a fresh array of *n tokens. */
static int encode_doc(const t2_tokenizer *tok, const char *question, int l, int **out, int *n) {
    size_t qn = t2_task_classify_prompt(question, NULL, 0);
    const char *name = t2_task_label_name((t2_task_label)l);
    size_t len = qn + strlen(T2_TASK_SEP) + strlen("\\boxed{") + strlen(name) + 1;
    char *text = malloc(len);
    int max = (int)(3 * len + 8); /* enough for either tokenizer kind (tokenizer.h) */
    int *t = malloc((size_t)max * sizeof *t);
    if (!text || !t) {
        free(text);
        free(t);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    size_t w = t2_task_classify_prompt(question, text, len);
    snprintf(text + w, len - w, "%s\\boxed{%s", T2_TASK_SEP, name);
    int rc = t2_tok_encode(tok, text, 1, 0, t, max, n); /* as generate.c encodes prompts */
    free(text);
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* The prefix's tokens after those of the prompt alone ("Classify: Q" SEP, as the generating
 * pass encodes it): check[], at most T2_LSCORE_DEPTH of them (the last ones). */
static int forced_tokens(const t2_tokenizer *tok, const char *question, const int *prefix,
                         int n_prefix, t2_lscore *w) {
    size_t qn = t2_task_classify_prompt(question, NULL, 0), len = qn + strlen(T2_TASK_SEP) + 1;
    char *text = malloc(len);
    int max = (int)(3 * len + 8), n = 0, j = 0;
    int *t = malloc((size_t)max * sizeof *t);
    int rc = text && t ? 0 : t2_err_set(T2_ENOMEM, "out of memory");
    if (rc == 0) {
        size_t wr = t2_task_classify_prompt(question, text, len);
        snprintf(text + wr, len - wr, "%s", T2_TASK_SEP);
        rc = t2_tok_encode(tok, text, 1, 0, t, max, &n);
    }
    while (rc == 0 && j < n && j < n_prefix && t[j] == prefix[j])
        j++;
    if (j < 1) j = 1; /* the first row predicts the second token: BOS is never checked */
    int k = n_prefix - j;
    if (k > T2_LSCORE_DEPTH) k = T2_LSCORE_DEPTH;
    w->n_check = rc == 0 && k > 0 ? k : 0;
    for (int i = 0; i < w->n_check; i++)
        w->check[i] = prefix[n_prefix - w->n_check + i];
    free(text);
    free(t);
    return rc;
}

/* 1 if tail a is a prefix of tail b (or equal). */
static int tail_prefix(const t2_lscore *w, int a, int b) {
    if (w->len[a] > w->len[b]) return 0;
    return !memcmp(w->tok[a], w->tok[b], (size_t)w->len[a] * sizeof w->tok[a][0]);
}

int t2_lscore_setup(const t2_tokenizer *tok, const char *question, int *prefix, int cap,
                    int *n_prefix, t2_lscore *w) {
    int *doc[T2_LABEL_COUNT] = {0}, n[T2_LABEL_COUNT] = {0}, rc = 0;
    memset(w, 0, sizeof *w);
    *n_prefix = 0;
    for (int l = 0; l < T2_LABEL_COUNT && rc == 0; l++)
        rc = encode_doc(tok, question, l, &doc[l], &n[l]);
    if (rc < 0) goto out;
    int common = n[0];
    for (int l = 1; l < T2_LABEL_COUNT; l++) {
        int k = 0;
        while (k < common && k < n[l] && doc[l][k] == doc[0][k])
            k++;
        common = k;
    }
    if (common > cap) {
        rc = t2_err_set(T2_ERANGE, "the classification prompt needs %d tokens, the context "
                        "holds %d", common, cap);
        goto out;
    }
    memcpy(prefix, doc[0], (size_t)common * sizeof *prefix);
    *n_prefix = common;
    if ((rc = forced_tokens(tok, question, prefix, common, w)) < 0) goto out;
    w->n_labels = T2_LABEL_COUNT;
    w->cand = (1u << T2_LABEL_COUNT) - 1;
    for (int l = 0; l < T2_LABEL_COUNT; l++) {
        int len = n[l] - common;
        if (len > T2_LSCORE_DEPTH) len = T2_LSCORE_DEPTH;
        w->len[l] = len;
        memcpy(w->tok[l], doc[l] + common, (size_t)len * sizeof *prefix);
    }
    for (int a = 0; a < T2_LABEL_COUNT && rc == 0; a++)
        for (int b = 0; b < T2_LABEL_COUNT && rc == 0; b++)
            if (a != b && (w->len[a] == 0 || tail_prefix(w, a, b)))
                rc = t2_err_set(T2_EINVAL, "the tokenizer does not tell the labels %s and %s "
                                "apart", t2_task_label_name((t2_task_label)a),
                                t2_task_label_name((t2_task_label)b));
out:
    for (int l = 0; l < T2_LABEL_COUNT; l++)
        free(doc[l]);
    return rc;
}

int t2_lscore_check(const t2_lscore *w, int vocab) {
    if (w->n_labels != T2_LABEL_COUNT || w->depth < 0 || w->depth > T2_LSCORE_DEPTH ||
        w->cand == 0 || (w->cand >> T2_LABEL_COUNT) || w->n_check < 0 ||
        w->n_check > T2_LSCORE_DEPTH)
        return t2_err_set(T2_EPROTO, "label scorer: %d labels, depth %d, candidates %#x",
                          w->n_labels, w->depth, w->cand);
    for (int l = 0; l < T2_LABEL_COUNT; l++) {
        if (w->len[l] < 1 || w->len[l] > T2_LSCORE_DEPTH)
            return t2_err_set(T2_EPROTO, "label scorer: tail %d of %d tokens", l, w->len[l]);
        for (int i = 0; i < w->len[l]; i++)
            if (w->tok[l][i] < 0 || w->tok[l][i] >= vocab)
                return t2_err_set(T2_EPROTO, "label scorer: token %d outside the vocabulary",
                                  w->tok[l][i]);
    }
    for (int i = 0; i < w->n_check; i++)
        if (w->check[i] < 0 || w->check[i] >= vocab)
            return t2_err_set(T2_EPROTO, "label scorer: token %d outside the vocabulary",
                              w->check[i]);
    return 0;
}

void t2_lscore_verify(t2_lscore *w, const float *rows, int vocab) {
    for (int i = 0; i < w->n_check; i++) {
        const float *r = rows + (size_t)i * vocab;
        int best = 0;
        for (int v = 1; v < vocab; v++)
            if (r[v] > r[best]) best = v;
        if (best != w->check[i]) w->cand = 0;
    }
}

int t2_lscore_label(const t2_lscore *w) {
    if (!w->cand || (w->cand & (w->cand - 1))) return -1;
    for (int l = 0; l < T2_LABEL_COUNT; l++)
        if (w->cand == 1u << l) return l;
    return -1;
}

int t2_lscore_follow(t2_lscore *w, int token) {
    uint32_t keep = 0;
    for (int l = 0; l < T2_LABEL_COUNT; l++)
        if ((w->cand >> l & 1) && w->depth < w->len[l] && w->tok[l][w->depth] == token)
            keep |= 1u << l;
    w->cand = keep;
    w->depth++;
    return t2_lscore_label(w);
}

int t2_lscore_pick(t2_lscore *w, const float *logits) {
    if (t2_lscore_label(w) >= 0 || !w->cand) return -1;
    int best = -1;
    for (int l = 0; l < T2_LABEL_COUNT; l++) {
        if (!(w->cand >> l & 1) || w->depth >= w->len[l]) continue;
        int t = w->tok[l][w->depth];
        if (best < 0 || logits[t] > logits[best]) best = t;
    }
    if (best < 0) { /* no candidate has a token left (not after t2_lscore_setup) */
        w->cand = 0;
        return -1;
    }
    t2_lscore_follow(w, best);
    return best;
}

/* ---- t2 eval's pass 1 ---- */

#define PROMPT_CHUNK 128 /* prompt tokens per forward, as generate.c's default prompt_batch */

/* Item's label with state st (positions from 0); buf holds n_ctx tokens, rows
 * (T2_LSCORE_DEPTH + 1) x V logits. */
static int score_item(t2_state *st, t2_pool *pool, const t2_tokenizer *tok, const char *question,
                      int *buf, int n_ctx, float *rows, int V, int D, t2_task_label *label,
                      int64_t *ntok, int64_t *steps) {
    t2_lscore w;
    int np = 0;
    *label = T2_LABEL_OTHER;
    int rc = t2_lscore_setup(tok, question, buf, n_ctx, &np, &w);
    if (rc == T2_ENOMEM) return rc;
    if (rc < 0 || np < 1) return 0; /* cannot be scored: "other" */
    /* chunks of PROMPT_CHUNK as t2_forward cuts them, the last one holding at least the `tail`
     * rows whose logits are needed; the classifier runs on those rows only */
    const int tail = w.n_check + 1;
    int last = np % PROMPT_CHUNK ? np % PROMPT_CHUNK : PROMPT_CHUNK;
    if (last < tail) last = tail;
    for (int done = 0; done < np;) {
        int k = done < np - last ? (np - last - done < PROMPT_CHUNK ? np - last - done
                                                                    : PROMPT_CHUNK)
                                 : last;
        if ((rc = t2_embed(st, buf + done, k)) < 0 ||
            (rc = t2_forward_layers(st, pool, k, done)) < 0)
            return rc;
        done += k;
    }
    float *x = t2_state_x(st);
    memmove(x, x + (size_t)(last - tail) * D, (size_t)tail * D * sizeof *x);
    if ((rc = t2_forward_head(st, pool, tail, rows)) < 0) return rc;
    t2_lscore_verify(&w, rows, V);
    *ntok += np;
    const float *logits = rows + (size_t)w.n_check * V;
    for (int pos = np; t2_lscore_label(&w) < 0; pos++) {
        int t = t2_lscore_pick(&w, logits);
        if (t < 0) return 0;
        if (t2_lscore_label(&w) >= 0) break;
        if (pos >= n_ctx) return 0;
        if ((rc = t2_forward(st, pool, &t, 1, pos, NULL)) < 0) return rc;
        logits = t2_state_logits(st);
        (*steps)++;
    }
    *label = (t2_task_label)t2_lscore_label(&w);
    return 0;
}

int t2_task_classify_items_score(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                                 const t2_task_set *set, const size_t *idx, int n,
                                 const struct t2_adapt *adapt, t2_task_label *labels,
                                 int64_t *prefill_tokens, int64_t *steps) {
    int64_t nt = 0, ns = 0;
    if (!set || n < 0) return t2_err_set(T2_EINVAL, "pass 1: no task set or %d items", n);
    const size_t count = t2_task_set_count(set);
    for (int k = 0; k < n; k++)
        if ((idx ? idx[k] : (size_t)k) >= count)
            return t2_err_set(T2_ERANGE, "pass 1: item %zu of a set of %zu",
                              idx ? idx[k] : (size_t)k, count);
    const int n_ctx = m->cfg.seq_len;
    t2_state *st = NULL;
    const int V = m->cfg.vocab_size;
    int *buf = malloc((size_t)n_ctx * sizeof *buf);
    float *rows = malloc((size_t)(T2_LSCORE_DEPTH + 1) * V * sizeof *rows);
    int rc = buf && rows ? t2_state_new(&st, m, PROMPT_CHUNK, n_ctx)
                         : t2_err_set(T2_ENOMEM, "out of memory");
    if (rc == 0) t2_state_set_adapt(st, adapt);
    for (int k = 0; k < n && rc == 0; k++) {
        const t2_task_item *it = t2_task_set_item(set, idx ? idx[k] : (size_t)k);
        rc = score_item(st, pool, tok, it->prompt, buf, n_ctx, rows, V, m->cfg.dim, &labels[k],
                        &nt, &ns);
    }
    if (rc == 0) t2_err_clear(); /* an item that cannot be scored is "other", not an error */
    t2_state_destroy(&st);
    free(buf);
    free(rows);
    if (prefill_tokens) *prefill_tokens = nt;
    if (steps) *steps = ns;
    return rc;
}
