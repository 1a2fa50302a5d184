/* t2-bench-pass1: pass 1 of two-pass inference by scoring against generating, and against the
 * price of one prefill.
 *
 * For each family of --task (its first --n test items), with base weights or the classifier
 * expert (--factors F --expert E.gguf, merged):
 *   generate  t2_task_classify_items: greedy `\boxed{label}`, batch --batch (t2 eval's pass 1
 *             with --pass1 generate)
 *   score     t2_task_classify_items_score: one prefill of the classification prompt and
 *             `\boxed{`, the label from the logits (t2 eval's default pass 1)
 *   prefill   the classification prompt alone ("Classify: Q\n", BOS first) through t2_forward,
 *             one item after the other with one state, as score runs them
 *   pf same   the very tokens score prefills ("Classify: Q\n\\boxed{"), through t2_forward
 *             without the logits of the checked rows: what scoring costs beyond a prefill
 * and prints the time of each (best of --reps; --cpu 1: process CPU time, use it with -j 1), score / prefill, and the agreement of the labels
 * of score and generate (same items). --csv FILE writes the rows.
 *
 *   build/bin/t2-bench-pass1 -m models/t2-base.gguf --factors f.gguf \
 *       --expert models/experts/classify.gguf --task math-hard,code-hard,mc-hard --n 200 -j 2
 */
#include "base/platform.h"
#include "base/t2_err.h"
#include "engine/adapt.h"
#include "engine/transformer.h"
#include "svf/svf.h"
#include "tasks/label_score.h"
#include "tasks/task_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *model, *tok, *factors, *expert, *tasks, *csv;
    int n, threads, batch, reps, cpu;
} args;

static int use_cpu; /* --cpu: process CPU time instead of wall time */

/* Seconds: wall, or (--cpu) this process's CPU time, which a loaded machine disturbs less. */
static double clock_s(void) {
    if (!use_cpu) return t2_now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The classification prompts of the set through t2_forward, item by item: seconds, tokens. */
static int prefill_only(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                        const t2_task_set *set, int n, const t2_adapt *ad, int same, double *sec,
                        long *ntok) {
    const int n_ctx = m->cfg.seq_len;
    t2_state *st = NULL;
    int *buf = malloc((size_t)(n_ctx + 512) * sizeof *buf), rc;
    char *text = malloc(8192);
    if (!buf || !text || (rc = t2_state_new(&st, m, 128, n_ctx)) < 0) {
        free(buf);
        free(text);
        return T2_ENOMEM;
    }
    t2_state_set_adapt(st, ad);
    *ntok = 0;
    double t0 = clock_s();
    for (int k = 0; k < n && rc == 0; k++) {
        const t2_task_item *it = t2_task_set_item(set, (size_t)k);
        size_t w = t2_task_classify_prompt(it->prompt, text, 8192);
        snprintf(text + w, 8192 - (w < 8192 ? w : 8192), "%s", T2_TASK_SEP);
        int np = 0;
        t2_lscore ls;
        if (same) rc = t2_lscore_setup(tok, it->prompt, buf, n_ctx, &np, &ls);
        else rc = t2_tok_encode(tok, text, 1, 0, buf, n_ctx, &np);
        if (rc < 0) break;
        for (int d = 0; d < np && rc == 0; d += 128)
            rc = t2_forward(st, pool, buf + d, np - d < 128 ? np - d : 128, d, NULL);
        *ntok += np;
    }
    *sec = clock_s() - t0;
    t2_state_destroy(&st);
    free(buf);
    free(text);
    return rc;
}

static int parse(int argc, char **argv, args *a) {
    *a = (args){.tasks = "math-hard,code-hard,mc-hard", .n = 200, .threads = 2, .batch = 16,
                .reps = 2};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "t2-bench-pass1: %s needs a value\n", k), 2;
        i++;
        if (!strcmp(k, "-m")) a->model = v;
        else if (!strcmp(k, "-z")) a->tok = v;
        else if (!strcmp(k, "--factors")) a->factors = v;
        else if (!strcmp(k, "--expert")) a->expert = v;
        else if (!strcmp(k, "--task")) a->tasks = v;
        else if (!strcmp(k, "--csv")) a->csv = v;
        else if (!strcmp(k, "--n")) a->n = atoi(v);
        else if (!strcmp(k, "-j")) a->threads = atoi(v);
        else if (!strcmp(k, "--batch")) a->batch = atoi(v);
        else if (!strcmp(k, "--reps")) a->reps = atoi(v);
        else if (!strcmp(k, "--cpu")) a->cpu = atoi(v);
        else return fprintf(stderr, "t2-bench-pass1: unknown option %s\n", k), 2;
    }
    if (!a->model || a->n < 1 || a->threads < 1 || a->batch < 1 || a->reps < 1 ||
        (!a->factors != !a->expert))
        return fprintf(stderr, "usage: t2-bench-pass1 -m MODEL [-z TOK] [--factors F --expert "
                       "E.gguf] [--task A,B] [--n N] [-j T] [--batch B] [--reps R] [--cpu 1] [--csv F]\n"),
               2;
    return 0;
}

typedef struct {
    const t2_model *m;
    const t2_tokenizer *tok;
    t2_pool *pool;
    const t2_adapt *ad;
    FILE *csv;
} ctx;

/* One family: the three timings (best of reps) and the agreement. */
static int family(const ctx *c, const args *a, const char *name) {
    t2_task_set *set = NULL;
    t2_task_opts to = {.split = T2_SPLIT_TEST, .n = (size_t)a->n, .seed = 1};
    int rc = t2_task_set_open(&set, name, &to);
    if (rc < 0) return rc;
    int n = (int)t2_task_set_count(set);
    t2_task_label *lg = calloc((size_t)n + 1, sizeof *lg), *ls = calloc((size_t)n + 1, sizeof *ls);
    double tg = 1e30, ts = 1e30, tp = 1e30, tq = 1e30;
    long ptok = 0;
    int64_t stok = 0, steps = 0;
    if (!lg || !ls) rc = T2_ENOMEM;
    for (int r = 0; r < a->reps && rc == 0; r++) {
        double t0 = clock_s(), dt;
        rc = t2_task_classify_items(c->m, c->tok, c->pool, set, NULL, n, c->ad, a->batch, lg,
                                    NULL, NULL);
        if ((dt = clock_s() - t0) < tg) tg = dt;
        t0 = clock_s();
        if (rc == 0) rc = t2_task_classify_items_score(c->m, c->tok, c->pool, set, NULL, n,
                                                       c->ad, ls, &stok, &steps);
        if ((dt = clock_s() - t0) < ts) ts = dt;
        if (rc == 0) rc = prefill_only(c->m, c->tok, c->pool, set, n, c->ad, 0, &dt, &ptok);
        if (dt < tp) tp = dt;
        long qtok = 0;
        if (rc == 0) rc = prefill_only(c->m, c->tok, c->pool, set, n, c->ad, 1, &dt, &qtok);
        if (dt < tq) tq = dt;
    }
    int agree = 0;
    for (int k = 0; k < n; k++)
        agree += lg[k] == ls[k];
    if (rc == 0) {
        printf("%-10s %5d %10.3f %10.3f %10.3f %10.3f %8.2fx %8.2fx %8.2fx %7.1f%% %8ld %8lld "
               "%6lld\n", name, n, tg, ts, tp, tq, ts / tp, ts / tq, tg / ts,
               100.0 * agree / (n ? n : 1), ptok, (long long)stok, (long long)steps);
        if (c->csv)
            fprintf(c->csv, "%s,%s,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%d,%ld,%lld,%lld\n",
                    a->model, name, n, tg, ts, tp, tq, ts / tp, ts / tq, agree, ptok,
                    (long long)stok, (long long)steps);
    }
    free(lg);
    free(ls);
    t2_task_set_destroy(&set);
    return rc;
}

int main(int argc, char **argv) {
    args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc;
    use_cpu = a.cpu;
    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_pool *pool = NULL;
    t2_factors *f = NULL;
    t2_expert *ex = NULL;
    t2_adapt *ad = NULL;
    ctx c = {0};
    if ((rc = t2_model_load(&m, a.model)) < 0 || (rc = t2_model_load_tokenizer(&tok, m, a.tok)) < 0)
        goto out;
    if ((rc = t2_pool_new(&pool, a.threads)) < 0) goto out;
    if (a.factors) {
        const float one = 1.0f;
        if ((rc = t2_factors_load(&f, a.factors, m)) < 0 ||
            (rc = t2_expert_load(&ex, a.expert, f)) < 0)
            goto out;
        t2_mixture mix = {1, (const t2_expert *const *)&ex, &one, 1, 0};
        if ((rc = t2_adapt_new(&ad, f, &mix, T2_APPLY_MERGED, pool)) < 0) goto out;
    }
    c = (ctx){m, tok, pool, ad, a.csv ? fopen(a.csv, "w") : NULL};
    if (a.csv && !c.csv) {
        rc = t2_err_set(T2_EIO, "%s: cannot write", a.csv);
        goto out;
    }
    if (c.csv)
        fprintf(c.csv, "model,family,items,generate_s,score_s,prefill_s,prefill_same_s,"
                       "score_over_prefill,score_over_prefill_same,agree,prefill_tokens,"
                       "score_tokens,score_steps\n");
    printf("model %s (%.1f M parameters), pass 1 with %s, %d threads, generate batch %d, best "
           "of %d, %s time\n", a.model, (double)t2_model_n_params(m) / 1e6,
           a.expert ? a.expert : "base weights", a.threads, a.batch, a.reps,
           a.cpu ? "process CPU" : "wall");
    printf("%-10s %5s %10s %10s %10s %10s %9s %9s %9s %8s %8s %8s %6s\n", "family", "items",
           "generate s", "score s", "prefill s", "pf same s", "score/pf", "sc/pfsame",
           "gen/score", "agree", "pf tok", "sc tok", "steps");
    char list[1024];
    snprintf(list, sizeof list, "%s", a.tasks);
    for (char *sv = NULL, *t = strtok_r(list, ",", &sv); t && rc == 0; t = strtok_r(NULL, ",", &sv))
        rc = family(&c, &a, t);
out:
    if (rc < 0) fprintf(stderr, "t2-bench-pass1: %s\n", t2_err_msg());
    if (c.csv) fclose(c.csv);
    t2_adapt_release(&ad);
    t2_expert_destroy(&ex);
    t2_factors_destroy(&f);
    t2_pool_destroy(&pool);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc < 0;
}
