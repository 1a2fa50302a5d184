/* test_task_eval.c - shared/task_eval.c and t2_profile_mixture_alpha (shared/profile.c), on the
 * bundled models/t2-base.gguf (path given as argv[1]; skipped, 77, when it is absent):
 *   * the reference answers' log-likelihood equals an independent token-by-token computation
 *     (one t2_forward per token, log-softmax of the next answer byte), with and without an
 *     adaptation, and averages exactly the answer's bytes (byte tokenizer);
 *   * one call with per-item adaptations mixed in one batch gives the same generations,
 *     verdicts and log-likelihoods as one call per adaptation over an index subset;
 *   * totals agree with the items, the scorer's verdict on each generation is the item's;
 *   * pass 1 (t2_task_classify_items) labels are what the classification parse of a plain
 *     t2_generate_batch on "Classify: PROMPT\n" gives;
 *   * an index outside the set is refused; the profile's per-matrix α lands on the adapted
 *     slots in model order. */
#include "t2_test.h"

#include "engine/generate.h"
#include "engine/model.h"
#include "base/pool.h"
#include "svf/profile.h"
#include "svf/svf.h"
#include "base/t2_err.h"
#include "tasks/task_eval.h"
#include "tasks/tasks.h"
#include "engine/tokenizer.h"
#include "engine/transformer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static t2_model *M;
static t2_tokenizer *TOK;
static t2_pool *POOL;
static t2_factors *F;
static t2_expert *EA, *EB;
static t2_adapt *AA, *AB;

/* The mean log p of the answer bytes, one t2_forward per token (the matrix-vector path). */
static double ref_loglik(const t2_task_item *it, const t2_adapt *a, int *n_answer) {
    char doc[512], pre[512];
    snprintf(pre, sizeof pre, "%s\n", it->prompt);
    snprintf(doc, sizeof doc, "%s\n%s", it->prompt, it->answer);
    int dt[600], pt[600], nd = 0, np = 0;
    if (t2_tok_encode(TOK, doc, 1, 0, dt, 600, &nd) < 0 ||
        t2_tok_encode(TOK, pre, 1, 0, pt, 600, &np) < 0)
        return NAN;
    t2_state *st = NULL;
    if (t2_state_new(&st, M, 1, 0) < 0) return NAN;
    t2_state_set_adapt(st, a);
    const int V = M->cfg.vocab_size;
    double sum = 0;
    for (int t = 0; t + 1 < nd; t++) {
        if (t2_forward(st, POOL, &dt[t], 1, t, NULL) < 0) {
            t2_state_destroy(&st);
            return NAN;
        }
        if (t + 1 < np) continue;
        const float *l = t2_state_logits(st);
        double mx = l[0], z = 0;
        for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        for (int v = 0; v < V; v++) z += exp(l[v] - mx);
        sum += l[dt[t + 1]] - mx - log(z);
    }
    t2_state_destroy(&st);
    *n_answer = nd - np;
    return sum / (nd - np);
}

static void test_loglik_reference(void) {
    t2_task_set *set = NULL;
    t2_task_opts o = {.split = T2_SPLIT_TEST, .n = 4, .seed = 3};
    T2_CHECK(t2_task_set_open(&set, "mc", &o) == 0);
    if (!set) return;
    const t2_adapt *ads[3] = {NULL, AA, AB};
    for (int a = 0; a < 3; a++) {
        double ll[4];
        int nt[4], failed = -1;
        T2_CHECK(t2_task_answer_loglik(M, TOK, POOL, set, NULL, 4, NULL, ads[a], ll, nt,
                                       &failed) == 0);
        T2_CHECK_EQ_INT(failed, 0);
        for (int k = 0; k < 4; k++) {
            const t2_task_item *it = t2_task_set_item(set, (size_t)k);
            int n_ref = 0;
            double ref = ref_loglik(it, ads[a], &n_ref);
            T2_CHECK_NEAR(ll[k], ref, 1e-4);
            T2_CHECK_EQ_INT(nt[k], n_ref);
            T2_CHECK_EQ_INT(nt[k], (int)strlen(it->answer)); /* one token per answer byte */
            T2_CHECK(ll[k] < 0);
        }
    }
    t2_task_set_destroy(&set);
}

static void same_item(const t2_teval_result *a, int ka, const t2_teval_result *b, int kb) {
    T2_CHECK(!strcmp(a->gen[ka].text, b->gen[kb].text));
    T2_CHECK_EQ_INT(a->items[ka].correct, b->items[kb].correct);
    T2_CHECK_EQ_INT(a->items[ka].index, b->items[kb].index);
    T2_CHECK(!strcmp(a->items[ka].score.extracted, b->items[kb].score.extracted));
    T2_CHECK_NEAR(a->items[ka].loglik, b->items[kb].loglik, 0); /* the same computation */
}

static void test_mixed_adapts(void) {
    t2_task_set *set = NULL;
    t2_task_opts o = {.split = T2_SPLIT_TEST, .n = 9, .seed = 1};
    T2_CHECK(t2_task_set_open(&set, "math", &o) == 0);
    if (!set) return;
    const t2_adapt *per[9];
    const t2_adapt *ads[3] = {AA, NULL, AB};
    for (int k = 0; k < 9; k++) per[k] = ads[k % 3];
    t2_teval_params p;
    t2_teval_params_default(&p);
    p.loglik = 1;
    p.batch = 4;
    t2_teval_result all;
    T2_CHECK(t2_task_eval(M, TOK, POOL, set, NULL, 9, per, &p, &all) == 0);
    T2_CHECK_EQ_INT(all.n, 9);
    int correct = 0;
    for (int k = 0; k < 9; k++) {
        correct += all.items[k].correct;
        t2_task_score sc;
        T2_CHECK(t2_task_score_item(set, t2_task_set_item(set, (size_t)k), all.gen[k].text,
                                    &sc) == 0);
        T2_CHECK_EQ_INT(sc.correct, all.items[k].correct);
        T2_CHECK(isfinite(all.items[k].loglik));
    }
    T2_CHECK_EQ_INT(correct, all.correct);
    T2_CHECK(isfinite(all.loglik_mean));
    for (int a = 0; a < 3; a++) { /* items a, a+3, a+6 alone with their adaptation */
        size_t idx[3] = {(size_t)a, (size_t)a + 3, (size_t)a + 6};
        t2_teval_params q = p;
        q.adapt = ads[a];
        q.batch = 1;
        t2_teval_result one;
        T2_CHECK(t2_task_eval(M, TOK, POOL, set, idx, 3, NULL, &q, &one) == 0);
        for (int j = 0; j < 3 && one.n == 3; j++) same_item(&all, a + 3 * j, &one, j);
        t2_teval_result_free(&one);
    }
    t2_teval_result_free(&all);
    /* an index outside the set */
    size_t bad = 9;
    t2_teval_result r;
    T2_CHECK(t2_task_eval(M, TOK, POOL, set, &bad, 1, NULL, &p, &r) == T2_ERANGE);
    T2_CHECK(r.n == 0 && !r.items && !r.gen);
    t2_teval_result_free(&r);
    t2_task_set_destroy(&set);
}

static void test_classify(void) {
    t2_task_set *set = NULL;
    t2_task_opts o = {.split = T2_SPLIT_TEST, .n = 6, .seed = 2};
    T2_CHECK(t2_task_set_open(&set, "code", &o) == 0);
    if (!set) return;
    t2_task_label lb[6];
    t2_gen_result *gens = NULL;
    T2_CHECK(t2_task_classify_items(M, TOK, POOL, set, NULL, 6, AA, 3, lb, &gens, NULL) == 0);
    T2_CHECK(gens != NULL);
    t2_gen_request rq[6];
    char prompts[6][256];
    for (int k = 0; k < 6; k++) {
        size_t w = t2_task_classify_prompt(t2_task_set_item(set, (size_t)k)->prompt,
                                           prompts[k], sizeof prompts[k]);
        snprintf(prompts[k] + w, sizeof prompts[k] - w, "\n");
        rq[k] = (t2_gen_request){.prompt = prompts[k], .adapt = AA, .seed = 1};
    }
    t2_gen_params gp;
    t2_gen_params_default(&gp);
    gp.max_tokens = T2_CLASSIFY_MAX_TOKENS;
    t2_gen_result ref[6];
    T2_CHECK(t2_generate_batch(M, TOK, POOL, rq, 6, &gp, ref, NULL) == 0);
    for (int k = 0; k < 6 && gens; k++) {
        t2_task_label want = T2_LABEL_OTHER;
        if (t2_task_classify_parse(ref[k].text, &want) < 0) want = T2_LABEL_OTHER;
        T2_CHECK_EQ_INT(lb[k], want);
        T2_CHECK(!strcmp(gens[k].text, ref[k].text));
    }
    t2_gen_results_free(ref, 6);
    if (gens) t2_gen_results_free(gens, 6);
    free(gens);
    t2_task_set_destroy(&set);
}

static void test_profile_alpha(void) {
    t2_profile *p = NULL;
    T2_CHECK(t2_profile_new(&p, "t", 2, 3) == 0);
    if (!p) return;
    for (int i = 0; i < 6; i++) p->alpha[i] = (float)(i + 1); /* rows: 1 2 3 | 4 5 6 */
    const int rank[7] = {0, 4, 0, 4, 0, 0, 4};
    float *a = NULL;
    int n = 0, pm = 0;
    T2_CHECK(t2_profile_mixture_alpha(p, rank, 7, &a, &n, &pm) == 0);
    T2_CHECK(pm == 1 && n == 14);
    const float want[14] = {0, 1, 0, 2, 0, 0, 3, 0, 4, 0, 5, 0, 0, 6};
    for (int i = 0; a && i < 14; i++) T2_CHECK_NEAR(a[i], want[i], 0);
    free(a);
    const int rank2[7] = {4, 4, 0, 4, 0, 0, 4}; /* 4 adapted matrices, 3 alphas */
    T2_CHECK(t2_profile_mixture_alpha(p, rank2, 7, &a, &n, &pm) == T2_EMISMATCH);
    T2_CHECK(a == NULL);
    t2_profile_destroy(&p);
    T2_CHECK(t2_profile_new(&p, "u", 2, 0) == 0);
    p->alpha[0] = 0.25f, p->alpha[1] = 0.75f;
    T2_CHECK(t2_profile_mixture_alpha(p, rank, 7, &a, &n, &pm) == 0);
    T2_CHECK(pm == 0 && n == 2 && a && a[0] == 0.25f && a[1] == 0.75f);
    free(a);
    t2_profile_destroy(&p);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "models/t2-base.gguf";
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        printf("skip: %s not found\n", path);
        return 77;
    }
    fclose(fp);
    if (t2_model_load(&M, path) < 0 || t2_model_load_tokenizer(&TOK, M, NULL) < 0 ||
        t2_pool_new(&POOL, 2) < 0 ||
        t2_factors_compute(&F, M, T2_TARGETS_MLP, POOL, NULL, NULL, NULL) < 0 ||
        t2_expert_init(&EA, F, T2_TARGETS_MLP, "a", "", 0.1f, 1.0f, 1, 1.0f) < 0 ||
        t2_expert_init(&EB, F, T2_TARGETS_MLP, "b", "", 0.1f, 1.0f, 2, 1.0f) < 0) {
        fprintf(stderr, "set-up: %s\n", t2_err_msg());
        return 1;
    }
    const float one = 1.0f;
    t2_mixture ma = {1, (const t2_expert *const *)&EA, &one, 1, 0};
    t2_mixture mb = {1, (const t2_expert *const *)&EB, &one, 1, 0};
    if (t2_adapt_new(&AA, F, &ma, T2_APPLY_MERGED, POOL) < 0 ||
        t2_adapt_new(&AB, F, &mb, T2_APPLY_FACTORED, POOL) < 0) {
        fprintf(stderr, "set-up: %s\n", t2_err_msg());
        return 1;
    }
    T2_RUN(test_loglik_reference);
    T2_RUN(test_mixed_adapts);
    T2_RUN(test_classify);
    T2_RUN(test_profile_alpha);
    t2_adapt_release(&AA);
    t2_adapt_release(&AB);
    t2_expert_destroy(&EA);
    t2_expert_destroy(&EB);
    t2_factors_destroy(&F);
    t2_pool_destroy(&POOL);
    t2_tok_destroy(&TOK);
    t2_model_destroy(&M);
    return T2_TEST_END();
}
