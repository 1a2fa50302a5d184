/* test_alloc.c - nothing is allocated per token: after a few warm-up steps (thread-local
 * scratch grows once), 200 decode steps allocate nothing, counted over every thread by the
 * counting allocator of t2_alloc_count.h (malloc and friends replaced in this program).
 *   step        one sequence: t2_forward one token at a time + top-p sampling
 *   step_multi  20 sequences in one t2_forward_step_multi (more than the kernels' 16 on the
 *               stack), base / factored / merged SVF adaptations mixed, Q8_0 weights
 *   stage       a worker rank (workers/wk_stage.c, one rank = head and tail): 20 open slots,
 *               wk_stage_decode + the tail's classifier and samplers
 * Weights are Q8_0 (the batched Q8_0 kernel path) on a vocabulary big enough that top-p's sort
 * has hundreds of candidates (glibc's qsort allocates above 1 KiB).
 * Skips (77) under AddressSanitizer, whose allocator cannot be replaced. */
#include "t2_alloc_count.h"

#include "base/t2_err.h"
#include "engine/sampler.h"
#include "engine/transformer.h"
#include "svf/svf.h"
#include "t2_test.h"
#include "wk.h"

#define STEPS 200
#define WARM 8
#define NSEQ 20

static t2_model *model;
static t2_factors *factors;
static t2_expert *expert;
static void *q8_data[64];
static int n_q8;

/* Replace a float matrix by its Q8_0 rounding (the data stays ours). */
static void to_q8(t2_mat *w) {
    size_t n = (size_t)w->rows * w->cols;
    void *d = malloc(t2_dtype_row_bytes(T2_Q8_0, w->cols) * (size_t)w->rows);
    t2_from_f32(d, w->data, T2_Q8_0, (int64_t)n);
    w->type = T2_Q8_0;
    w->data = d;
    q8_data[n_q8++] = d;
}

static int setup(void) {
    t2_config c = {.dim = 64, .hidden_dim = 96, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                   .vocab_size = 300, .seq_len = WARM + STEPS + 8};
    if (t2_model_init_random(&model, &c, 0, 5) < 0) return -1;
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    int rc = t2_factors_compute(&factors, model, T2_TARGETS_ALL, pool, NULL, NULL, NULL);
    t2_pool_destroy(&pool);
    if (rc < 0) return rc;
    if ((rc = t2_expert_init(&expert, factors, 0, "e", "t", 0.1f, 0.5f, 3, 1.0f)) < 0) return rc;
    for (int l = 0; l < c.n_layers; l++) {
        t2_layer *y = &model->layers[l];
        t2_mat *ws[7] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
        for (int i = 0; i < 7; i++) to_q8(ws[i]);
    }
    to_q8(&model->output);
    return 0;
}

static void teardown(void) {
    t2_expert_destroy(&expert);
    t2_factors_destroy(&factors);
    t2_model_destroy(&model);
    for (int i = 0; i < n_q8; i++) free(q8_data[i]);
}

static void report(const char *what, const t2_alloc_snap *before) {
    t2_alloc_snap d = t2_alloc_diff(before);
    printf("     %s: %ld allocations in %d steps\n", what, d.all, STEPS);
    T2_CHECK_MSG(d.all == 0, "%s: %ld allocations, the last from %p", what, d.all,
                 t2_alloc_last_caller());
}

static void test_step(void) {
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    t2_state *st = NULL;
    t2_sampler *smp = NULL;
    T2_CHECK(t2_sampler_new(&smp, model->cfg.vocab_size, 0.8f, 0.9f, 7) == 0);
    T2_CHECK(t2_state_new(&st, model, 1, 0) == 0 && smp);
    int tok = 1, rc = 0;
    t2_alloc_snap before = {0};
    for (int pos = 0; pos < WARM + STEPS && rc == 0; pos++) {
        if (pos == WARM) before = t2_alloc_now();
        rc = t2_forward(st, pool, &tok, 1, pos, NULL);
        tok = t2_sample(smp, t2_state_logits(st));
    }
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    report("t2_forward + t2_sample, 1 sequence", &before);
    t2_sampler_destroy(&smp);
    t2_state_destroy(&st);
    t2_pool_destroy(&pool);
}

static void test_step_multi(void) {
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    t2_state *sts[NSEQ] = {0};
    t2_sampler *smp[NSEQ] = {0};
    t2_adapt *fac = NULL, *mer = NULL;
    const t2_expert *e1[1] = {expert};
    float one = 1.0f;
    t2_mixture mix = {1, e1, &one, 1, 0};
    T2_CHECK(t2_adapt_new(&fac, factors, &mix, T2_APPLY_FACTORED, pool) == 0);
    T2_CHECK(t2_adapt_new(&mer, factors, &mix, T2_APPLY_MERGED, pool) == 0);
    int toks[NSEQ], pos[NSEQ], rc = 0;
    for (int i = 0; i < NSEQ; i++) {
        T2_CHECK(t2_state_new(&sts[i], model, 1, 0) == 0);
        T2_CHECK(t2_sampler_new(&smp[i], model->cfg.vocab_size, i % 2 ? 0.8f : 0.0f, 0.9f,
                                10 + i) == 0);
        if (sts[i]) t2_state_set_adapt(sts[i], i % 3 == 1 ? fac : i % 3 == 2 ? mer : NULL);
        toks[i] = 1 + i;
    }
    t2_alloc_snap before = {0};
    for (int step = 0; step < WARM + STEPS && rc == 0; step++) {
        if (step == WARM) before = t2_alloc_now();
        for (int i = 0; i < NSEQ; i++) pos[i] = step;
        rc = t2_forward_step_multi(sts, NSEQ, pool, toks, pos);
        for (int i = 0; i < NSEQ; i++) toks[i] = t2_sample(smp[i], t2_state_logits(sts[i]));
    }
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    report("t2_forward_step_multi, 20 sequences, SVF mixed", &before);
    for (int i = 0; i < NSEQ; i++) {
        t2_sampler_destroy(&smp[i]);
        t2_state_destroy(&sts[i]);
    }
    t2_adapt_release(&fac);
    t2_adapt_release(&mer);
    t2_pool_destroy(&pool);
}

static void test_stage(void) {
    t2_conf c;
    T2_CHECK(t2_conf_defaults(&c) == 0);
    c.worker.capacity = NSEQ;
    c.worker.classify_capacity = 0;
    c.worker.threads = 2;
    c.worker.batch = 4;
    c.model.context = 0;
    int first[2] = {0, model->cfg.n_layers};
    wk_stage s;
    int rc = wk_stage_init(&s, model, NULL, &c, 0, 1, first, NULL);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    if (rc < 0) {
        wk_stage_free(&s);
        return;
    }
    wk_mix base = {0};
    int slots[NSEQ], pos[NSEQ], toks[NSEQ];
    for (int i = 0; i < NSEQ && rc == 0; i++) {
        wk_open o = {.kind = WK_KIND_GENERATE, .temperature = 0.8f, .top_p = 0.9f, .seed = 1 + i};
        int prompt[2] = {1, 2 + i};
        if ((rc = wk_stage_open(&s, i, &o, &base)) == 0)
            rc = wk_stage_prefill(&s, i, 0, 2, 1, prompt, NULL);
        slots[i] = i;
        pos[i] = 2;
        toks[i] = s.n_out == 1 ? s.out[0].val : 0;
    }
    t2_alloc_snap before = {0};
    for (int step = 0; step < WARM + STEPS && rc == 0; step++) {
        if (step == WARM) before = t2_alloc_now();
        rc = wk_stage_decode(&s, NSEQ, slots, pos, toks, NULL);
        for (int i = 0; i < s.n_out && i < NSEQ; i++) {
            toks[i] = s.out[i].val;
            pos[i]++;
        }
    }
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    report("wk_stage_decode, 20 slots (head and tail)", &before);
    wk_stage_free(&s);
}

int main(void) {
    if (!T2_ALLOC_COUNTING) {
        printf("SKIP: allocations are not counted under AddressSanitizer (its own malloc)\n");
        return 77;
    }
    if (setup() < 0) {
        fprintf(stderr, "test_alloc: setup: %s\n", t2_err_msg());
        return 1;
    }
    T2_RUN(test_step);
    T2_RUN(test_step_multi);
    T2_RUN(test_stage);
    teardown();
    return T2_TEST_END();
}
