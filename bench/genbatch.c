/* t2-bench-genbatch: in-process batched generation (t2_generate_batch, as t2 eval runs it) of
 * given prompts: the baseline of bench/serve.py's concurrent clients.
 *
 *   t2-bench-genbatch -m MODEL [-z TOK] [--factors F --experts DIR --mix A=0.6,B=0.4]
 *       [--apply merged|factored] [--new N] [--batch B] [-j T] [--reps R] PROMPT...
 *
 * Greedy, N new tokens per prompt (ending early at EOS/BOS as everywhere), B sequences in
 * flight. Prints one JSON line: requests, generated tokens, the best wall time of R runs,
 * tokens per second over it, and the best CPU seconds of the generation (cpu_s).
 */
#include "base/platform.h"
#include "base/t2_err.h"
#include "engine/adapt.h"
#include "engine/generate.h"
#include "svf/svf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EXPERTS 8

/* This process's CPU seconds (all threads). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    const char *model, *tok, *factors, *experts, *mix;
    int apply, n_new, batch, threads, reps, n_prompts;
    char **prompts;
} args;

static int parse(int argc, char **argv, args *a) {
    *a = (args){.apply = T2_APPLY_MERGED, .n_new = 64, .batch = 8, .threads = 1, .reps = 1};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "t2-bench-genbatch: %s needs a value\n", k), 2;
        if (!strcmp(k, "-m")) a->model = v;
        else if (!strcmp(k, "-z")) a->tok = v;
        else if (!strcmp(k, "--factors")) a->factors = v;
        else if (!strcmp(k, "--experts")) a->experts = v;
        else if (!strcmp(k, "--mix")) a->mix = v;
        else if (!strcmp(k, "--apply")) a->apply = strcmp(v, "factored") ? T2_APPLY_MERGED
                                                                         : T2_APPLY_FACTORED;
        else if (!strcmp(k, "--new")) a->n_new = atoi(v);
        else if (!strcmp(k, "--batch")) a->batch = atoi(v);
        else if (!strcmp(k, "-j")) a->threads = atoi(v);
        else if (!strcmp(k, "--reps")) a->reps = atoi(v);
        else return fprintf(stderr, "t2-bench-genbatch: unknown option %s\n", k), 2;
    }
    a->prompts = argv + i;
    a->n_prompts = argc - i;
    if (!a->model || a->n_prompts < 1 || a->n_new < 1 || a->batch < 1 || a->threads < 1 ||
        a->reps < 1 || (a->mix && (!a->factors || !a->experts)))
        return fprintf(stderr, "usage: t2-bench-genbatch -m MODEL [-z TOK] [--factors F "
                       "--experts DIR --mix A=X,...] [--apply M] [--new N] [--batch B] [-j T] "
                       "[--reps R] PROMPT...\n"), 2;
    return 0;
}

/* --mix NAME=ALPHA,... into experts loaded from DIR/NAME.gguf and one adaptation. */
static int load_mix(const args *a, const t2_factors *f, t2_pool *pool, t2_expert **ex, int *n_ex,
                    t2_adapt **out) {
    float alpha[MAX_EXPERTS];
    char list[1024];
    snprintf(list, sizeof list, "%s", a->mix);
    int n = 0, rc = 0;
    for (char *sv = NULL, *t = strtok_r(list, ",", &sv); t && rc == 0;
         t = strtok_r(NULL, ",", &sv)) {
        char *eq = strchr(t, '='), path[4096];
        if (!eq || n == MAX_EXPERTS) return t2_err_set(T2_EINVAL, "--mix: '%s'", t);
        *eq = 0;
        alpha[n] = (float)atof(eq + 1);
        snprintf(path, sizeof path, "%s/%s.gguf", a->experts, t);
        if ((rc = t2_expert_load(&ex[n], path, f)) == 0) n++;
    }
    *n_ex = n;
    if (rc < 0) return rc;
    t2_mixture mix = {n, (const t2_expert *const *)ex, alpha, n, 0};
    return t2_adapt_new(out, f, &mix, a->apply, pool);
}

int main(int argc, char **argv) {
    args a;
    int rc = parse(argc, argv, &a), n_ex = 0;
    if (rc) return rc;
    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_pool *pool = NULL;
    t2_factors *f = NULL;
    t2_expert *ex[MAX_EXPERTS] = {0};
    t2_adapt *ad = NULL;
    t2_gen_request *rq = calloc((size_t)a.n_prompts, sizeof *rq);
    t2_gen_result *res = calloc((size_t)a.n_prompts, sizeof *res);
    if (!rq || !res) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = t2_model_load(&m, a.model)) < 0 || (rc = t2_model_load_tokenizer(&tok, m, a.tok)) < 0 ||
        (rc = t2_pool_new(&pool, a.threads)) < 0)
        goto out;
    if (a.mix && ((rc = t2_factors_load(&f, a.factors, m)) < 0 ||
                  (rc = load_mix(&a, f, pool, ex, &n_ex, &ad)) < 0))
        goto out;
    t2_gen_params gp;
    t2_gen_params_default(&gp);
    gp.max_tokens = a.n_new;
    gp.batch = a.batch;
    for (int i = 0; i < a.n_prompts; i++)
        rq[i] = (t2_gen_request){a.prompts[i], ad, 1};
    double best = 1e30, best_cpu = 1e30;
    t2_gen_stats st = {0};
    for (int r = 0; r < a.reps && rc == 0; r++) {
        double t0 = t2_now(), c0 = cpu_now();
        if ((rc = t2_generate_batch(m, tok, pool, rq, a.n_prompts, &gp, res, &st)) < 0) break;
        double dt = t2_now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
        t2_gen_results_free(res, a.n_prompts);
    }
    if (rc == 0)
        printf("{\"requests\": %d, \"batch\": %d, \"tokens\": %lld, \"prompt_tokens\": %lld, "
               "\"seconds\": %.4f, \"tok_s\": %.1f, \"cpu_s\": %.4f}\n", a.n_prompts, a.batch,
               (long long)st.gen_tokens, (long long)st.prompt_tokens, best,
               (double)st.gen_tokens / best, best_cpu);
out:
    if (rc < 0) fprintf(stderr, "t2-bench-genbatch: %s\n", t2_err_msg());
    free(rq);
    free(res);
    t2_adapt_release(&ad);
    for (int i = 0; i < n_ex; i++)
        t2_expert_destroy(&ex[i]);
    t2_factors_destroy(&f);
    t2_pool_destroy(&pool);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc < 0;
}
