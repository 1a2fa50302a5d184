/* task_eval.c - generate for task items, score them, measure reference log-likelihoods and run
 * pass 1 of two-pass inference (task_eval.h). */
#include "tasks/task_eval.h"

#include "base/platform.h"
#include "svf/svf.h"
#include "base/t2_err.h"
#include "engine/transformer.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void t2_teval_params_default(t2_teval_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 0.0f;
    p->top_p = 1.0f;
    p->batch = 8;
    p->seed = 1;
    p->score_threads = 1;
}

void t2_teval_result_free(t2_teval_result *r) {
    if (!r) return;
    if (r->gen) t2_gen_results_free(r->gen, r->n);
    free(r->gen);
    free(r->items);
    memset(r, 0, sizeof *r);
}

static size_t item_at(const size_t *idx, int k) { return idx ? idx[k] : (size_t)k; }

static int check_indices(const t2_task_set *set, const size_t *idx, int n) {
    if (!set) return t2_err_set(T2_EINVAL, "task eval: no task set");
    if (n < 0) return t2_err_set(T2_EINVAL, "task eval: %d items", n);
    const size_t count = t2_task_set_count(set);
    for (int k = 0; k < n; k++)
        if (item_at(idx, k) >= count)
            return t2_err_set(T2_ERANGE, "task eval: item %zu of a set of %zu (%s)",
                              item_at(idx, k), count, t2_task_set_family(set)->name);
    return 0;
}

/* ---- scoring, in parallel for code families ---- */

typedef struct {
    const t2_task_set *set;
    const size_t *idx;
    const t2_gen_result *gens;
    t2_teval_item *items;
    int n;
    atomic_int next;
} score_job;

static void *score_worker(void *arg) {
    score_job *j = arg;
    for (;;) {
        int k = atomic_fetch_add(&j->next, 1);
        if (k >= j->n) break;
        t2_teval_item *it = &j->items[k];
        const t2_gen_result *g = &j->gens[k];
        it->index = item_at(j->idx, k);
        memset(&it->score, 0, sizeof it->score);
        it->score_rc = t2_task_score_item(j->set, t2_task_set_item(j->set, it->index),
                                          g->text ? g->text : "", &it->score);
        if (it->score_rc < 0)
            snprintf(it->score.detail, sizeof it->score.detail, "%s", t2_err_msg());
        it->correct = it->score_rc == 0 && !g->error && it->score.correct;
    }
    return NULL;
}

void t2_task_score_items(const t2_task_set *set, const size_t *idx, int n,
                         const t2_gen_result *gens, t2_teval_item *items, int threads) {
    score_job j = {.set = set, .idx = idx, .gens = gens, .items = items, .n = n};
    atomic_init(&j.next, 0);
    pthread_t th[64];
    int nt = threads < 64 ? threads : 64, started = 0;
    for (int i = 1; i < nt && i < n; i++)
        if (pthread_create(&th[started], NULL, score_worker, &j) == 0) started++;
    score_worker(&j);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
}

/* ---- reference log-likelihood ---- */

/* The tokens of s (BOS first) into a malloc'd array. */
static int encode(const t2_tokenizer *tok, const char *s, int **out, int *n) {
    size_t len = strlen(s);
    if (len > (size_t)1 << 28) return t2_err_set(T2_ERANGE, "text longer than 256 MiB");
    *out = malloc((len + 3) * sizeof(int));
    if (!*out) return t2_err_set(T2_ENOMEM, "out of memory");
    int rc = t2_tok_encode(tok, s, 1, 0, *out, (int)(len + 3), n);
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

double t2_task_sum_logprob(const float *logits, int V, const int *text, int from, int n) {
    double sum = 0;
    for (int t = from; t < n; t++) {
        const float *row = logits + (size_t)(t - 1) * V;
        float mx = row[0];
        for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        double z = 0;
        for (int v = 0; v < V; v++) z += exp((double)row[v] - mx);
        sum += (double)row[text[t]] - mx - log(z);
    }
    return sum;
}

/* Mean log p of doc[from..n) given the logits rows (row t predicts token t + 1). */
static double mean_logprob(const float *logits, int V, const int *doc, int from, int n) {
    return t2_task_sum_logprob(logits, V, doc, from, n) / (n - from);
}

int t2_task_answer_loglik(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                          const t2_task_set *set, const size_t *idx, int n,
                          const struct t2_adapt *const *adapts, const struct t2_adapt *adapt,
                          double *loglik, int *n_tokens, int *n_failed) {
    int rc = check_indices(set, idx, n);
    if (rc < 0) return rc;
    if (n_failed) *n_failed = 0;
    if (n == 0) return 0;
    const int C = m->cfg.seq_len, V = m->cfg.vocab_size;
    t2_state *st = NULL;
    float *logits = malloc((size_t)C * V * sizeof *logits);
    if (!logits) return t2_err_set(T2_ENOMEM, "out of memory (logits of %d tokens)", C);
    if ((rc = t2_state_new(&st, m, C < 128 ? C : 128, C)) < 0) {
        free(logits);
        return rc;
    }
    for (int k = 0; k < n && rc == 0; k++) {
        const t2_task_item *it = t2_task_set_item(set, item_at(idx, k));
        loglik[k] = NAN;
        if (n_tokens) n_tokens[k] = 0;
        size_t pl = strlen(it->prompt), al = strlen(it->answer), sl = strlen(T2_TASK_SEP);
        char *doc = malloc(pl + sl + al + 1);
        int *dt = NULL, *pt = NULL, nd = 0, np = 0;
        if (!doc) {
            rc = t2_err_set(T2_ENOMEM, "out of memory");
            break;
        }
        memcpy(doc, it->prompt, pl);
        memcpy(doc + pl, T2_TASK_SEP, sl);
        doc[pl + sl] = 0;
        int erc = encode(tok, doc, &pt, &np);
        memcpy(doc + pl + sl, it->answer, al + 1);
        if (erc == 0) erc = encode(tok, doc, &dt, &nd);
        free(doc);
        if (erc == T2_ENOMEM) rc = erc;
        /* the answer's tokens: those after the longest common prefix with the prompt's (the
         * whole prompt for a byte or SentencePiece tokenizer, whose newline is a token of its
         * own) */
        int c = 0;
        if (erc == 0)
            while (c < np && c < nd && pt[c] == dt[c]) c++;
        if (erc == 0 && c >= 1 && c < nd && nd <= C) {
            t2_state_set_adapt(st, adapts ? adapts[k] : adapt);
            int frc = t2_forward(st, pool, dt, nd, 0, logits);
            if (frc == 0) {
                loglik[k] = mean_logprob(logits, V, dt, c, nd);
                if (n_tokens) n_tokens[k] = nd - c;
            } else if (frc == T2_ENOMEM || frc == T2_EMISMATCH) {
                rc = frc; /* not the item's problem: stop */
            }
        }
        if (!isfinite(loglik[k]) && n_failed) ++*n_failed;
        free(dt);
        free(pt);
    }
    t2_state_destroy(&st);
    free(logits);
    return rc;
}

/* ---- generation and scoring ---- */

int t2_task_eval(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool, const t2_task_set *set,
                 const size_t *idx, int n, const struct t2_adapt *const *adapts,
                 const t2_teval_params *p, t2_teval_result *out) {
    memset(out, 0, sizeof *out);
    out->loglik_mean = NAN;
    int rc = check_indices(set, idx, n);
    if (rc < 0) return rc;
    if (!m || !tok || !p) return t2_err_set(T2_EINVAL, "task eval: missing model or parameters");
    const double t0 = t2_now();
    const t2_task_family *fam = t2_task_set_family(set);
    const int real = fam->kind == T2_KIND_REAL;
    t2_gen_params gp;
    t2_gen_params_default(&gp);
    gp.max_tokens = p->max_tokens > 0 ? p->max_tokens : real ? 256 : 32;
    gp.temperature = p->temperature;
    gp.top_p = p->top_p;
    gp.batch = p->batch;
    gp.on_done = p->on_done;
    gp.on_done_ctx = p->on_done_ctx;
    t2_teval_stop stop = p->stop;
    if (stop == T2_TEVAL_STOP_DEFAULT) stop = real ? T2_TEVAL_STOP_BLANK : T2_TEVAL_STOP_NEWLINE;
    gp.stop[0] = stop == T2_TEVAL_STOP_NEWLINE ? "\n" : stop == T2_TEVAL_STOP_BLANK ? "\n\n" : NULL;

    t2_gen_request *reqs = calloc((size_t)n + 1, sizeof *reqs);
    char **prompts = calloc((size_t)n + 1, sizeof *prompts);
    double *ll = p->loglik ? malloc(((size_t)n + 1) * sizeof *ll) : NULL;
    int *llt = p->loglik ? malloc(((size_t)n + 1) * sizeof *llt) : NULL;
    out->items = calloc((size_t)n + 1, sizeof *out->items);
    out->gen = calloc((size_t)n + 1, sizeof *out->gen);
    if (!reqs || !prompts || !out->items || !out->gen || (p->loglik && (!ll || !llt))) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
        goto fail;
    }
    for (int k = 0; k < n; k++) {
        const size_t i = item_at(idx, k);
        const t2_task_item *it = t2_task_set_item(set, i);
        size_t len = strlen(it->prompt) + strlen(T2_TASK_SEP) + 1;
        if (!(prompts[k] = malloc(len))) {
            rc = t2_err_set(T2_ENOMEM, "out of memory");
            goto fail;
        }
        snprintf(prompts[k], len, "%s%s", it->prompt, T2_TASK_SEP);
        reqs[k].prompt = prompts[k];
        reqs[k].adapt = adapts ? adapts[k] : p->adapt;
        /* by the item's index in the set, so an item samples alike in any list */
        reqs[k].seed = p->seed * 0x9E3779B97F4A7C15ull + (uint64_t)i + 1;
    }
    t2_gen_stats st;
    if ((rc = t2_generate_batch(m, tok, pool, reqs, n, &gp, out->gen, &st)) < 0) goto fail;
    out->n = n;
    out->failed = st.failed;
    out->truncated = st.truncated;
    out->prompt_tokens = st.prompt_tokens;
    out->gen_tokens = st.gen_tokens;
    out->gen_seconds = st.wall_seconds;

    double ts = t2_now();
    const int threads =
        fam->label == T2_LABEL_CODE && real && p->score_threads > 1 ? p->score_threads : 1;
    t2_task_score_items(set, idx, n, out->gen, out->items, threads);
    out->score_seconds = t2_now() - ts;

    for (int k = 0; k < n; k++) {
        out->items[k].loglik = NAN;
        out->correct += out->items[k].correct;
        out->score_errors += out->items[k].score_rc < 0;
    }
    if (p->loglik) {
        double tl = t2_now();
        if ((rc = t2_task_answer_loglik(m, tok, pool, set, idx, n, adapts, p->adapt, ll, llt,
                                        &out->loglik_errors)) < 0)
            goto fail;
        double sum = 0;
        int cnt = 0;
        for (int k = 0; k < n; k++) {
            out->items[k].loglik = ll[k];
            out->items[k].loglik_tokens = llt[k];
            if (isfinite(ll[k])) sum += ll[k], cnt++;
        }
        out->loglik_mean = cnt ? sum / cnt : NAN;
        out->loglik_seconds = t2_now() - tl;
    }
    out->seconds = t2_now() - t0;
    rc = 0;
    goto done;
fail:
    t2_teval_result_free(out);
    out->loglik_mean = NAN;
done:
    if (prompts)
        for (int k = 0; k < n; k++) free(prompts[k]);
    free(prompts);
    free(reqs);
    free(ll);
    free(llt);
    return rc;
}

/* ---- pass 1: classification ---- */

int t2_task_classify_items(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                           const t2_task_set *set, const size_t *idx, int n,
                           const struct t2_adapt *adapt, int batch, t2_task_label *labels,
                           t2_gen_result **generations, t2_gen_stats *stats) {
    if (generations) *generations = NULL;
    int rc = check_indices(set, idx, n);
    if (rc < 0) return rc;
    t2_gen_params gp;
    t2_gen_params_default(&gp);
    gp.max_tokens = T2_CLASSIFY_MAX_TOKENS;
    gp.batch = batch;
    gp.stop[0] = "\n";
    t2_gen_request *reqs = calloc((size_t)n + 1, sizeof *reqs);
    char **prompts = calloc((size_t)n + 1, sizeof *prompts);
    t2_gen_result *res = calloc((size_t)n + 1, sizeof *res);
    if (!reqs || !prompts || !res) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k < n; k++) {
        const t2_task_item *it = t2_task_set_item(set, item_at(idx, k));
        size_t len = t2_task_classify_prompt(it->prompt, NULL, 0) + strlen(T2_TASK_SEP) + 1;
        if (!(prompts[k] = malloc(len))) {
            rc = t2_err_set(T2_ENOMEM, "out of memory");
            goto out;
        }
        size_t w = t2_task_classify_prompt(it->prompt, prompts[k], len);
        snprintf(prompts[k] + w, len - w, "%s", T2_TASK_SEP);
        reqs[k].prompt = prompts[k];
        reqs[k].adapt = adapt;
        reqs[k].seed = 1; /* greedy */
    }
    if ((rc = t2_generate_batch(m, tok, pool, reqs, n, &gp, res, stats)) < 0) goto out;
    for (int k = 0; k < n; k++) {
        t2_task_label lb = T2_LABEL_OTHER;
        if (res[k].error || t2_task_classify_parse(res[k].text, &lb) < 0) lb = T2_LABEL_OTHER;
        labels[k] = lb;
    }
    t2_err_clear(); /* an unparseable label is an answer ("other"), not an error */
    if (generations) {
        *generations = res;
        res = NULL;
    } else {
        t2_gen_results_free(res, n);
    }
out:
    if (prompts)
        for (int k = 0; k < n; k++) free(prompts[k]);
    free(prompts);
    free(reqs);
    free(res); /* freed texts above, or never filled (t2_generate_batch frees on failure) */
    return rc;
}
