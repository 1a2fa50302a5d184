/* test_svf.c - SVF in memory: factors, experts, mixtures, the adaptation cache, and the
 * multi-sequence step: sequences with different mixtures (factored and merged) in one batch give
 * bit-identical logits to each sequence run alone, whatever the thread count. */
#include "engine/kernels.h"
#include "engine/model.h"
#include "base/sha256.h"
#include "svf/svf.h"
#include "base/t2_err.h"
#include "t2_test.h"
#include "engine/transformer.h"

static t2_model *model;
static t2_factors *factors;
static t2_expert *ex[3];

static void setup(void) {
    t2_config c = {.dim = 48, .hidden_dim = 88, .n_layers = 2, .n_heads = 6, .n_kv_heads = 2,
                   .vocab_size = 97, .seq_len = 32};
    T2_CHECK(t2_model_init_random(&model, &c, 0, 9) == 0);
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    double err = 1;
    T2_CHECK(t2_factors_compute(&factors, model, T2_TARGETS_ALL, pool, NULL, NULL, &err) == 0);
    T2_CHECK_MSG(err < 1e-5, "reconstruction error %g", err);
    for (int i = 0; i < 3; i++)
        T2_CHECK(t2_expert_init(&ex[i], factors, 0, i == 0 ? "a" : i == 1 ? "b" : "c", "t",
                                0.1f * i, 0.7f, 100 + i, 1.0f) == 0);
    t2_pool_destroy(&pool);
}

static void test_sha256_vectors(void) {
    char h[65];
    t2_sha256_hex("", 0, h);
    T2_CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    t2_sha256_hex("abc", 3, h);
    T2_CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *s = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    t2_sha256_hex(s, strlen(s), h);
    T2_CHECK(!strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* streaming in odd pieces equals one shot */
    char big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (char)(i * 7);
    t2_sha256 st;
    uint8_t d1[32];
    t2_sha256_init(&st);
    for (int i = 0; i < 1000; i += 37) t2_sha256_update(&st, big + i, i + 37 <= 1000 ? 37 : 1000 - i);
    t2_sha256_final(&st, d1);
    char h2[65];
    t2_sha256_hex(big, 1000, h2);
    char h1[65];
    for (int i = 0; i < 32; i++) snprintf(h1 + 2 * i, 3, "%02x", d1[i]);
    T2_CHECK(!strcmp(h1, h2));
}

static void test_mixture_checks(void) {
    const t2_expert *e[2] = {ex[0], ex[1]};
    float alpha[2] = {0.5f, 0.5f};
    t2_mixture mix = {2, e, alpha, 2, 0};
    T2_CHECK(t2_mixture_check(&mix, factors) == 0);
    mix.n_alpha = 1;
    T2_CHECK(t2_mixture_check(&mix, factors) == T2_EINVAL);
    T2_CHECK(strstr(t2_err_msg(), "expected 2") != NULL);
    mix.per_matrix = 1; /* now 2 x (layers * targets) are needed */
    mix.n_alpha = 2;
    T2_CHECK(t2_mixture_check(&mix, factors) == T2_EINVAL);
    mix.per_matrix = 0;
    alpha[1] = NAN;
    T2_CHECK(t2_mixture_check(&mix, factors) == T2_EINVAL);
    T2_CHECK(strstr(t2_err_msg(), "not finite") != NULL);
    alpha[1] = INFINITY;
    T2_CHECK(t2_mixture_check(&mix, factors) == T2_EINVAL);
    mix.n = 0;
    T2_CHECK(t2_mixture_check(&mix, factors) == T2_EINVAL);
}

/* Per-matrix alpha selecting expert k for matrix i equals the plain mixture of one expert. */
static void test_per_matrix_alpha(void) {
    const int n = factors->n_layers * T2_N_TARGETS;
    const t2_expert *e[2] = {ex[0], ex[1]};
    float *alpha = calloc(2 * (size_t)n, sizeof *alpha);
    for (int i = 0; i < n; i++) alpha[n + i] = 1.0f; /* all weight on expert 1 */
    t2_mixture pm = {2, e, alpha, 2 * n, 1};
    float one = 1.0f;
    const t2_expert *e1[1] = {ex[1]};
    t2_mixture m1 = {1, e1, &one, 1, 0};
    t2_adapt *a = NULL, *b = NULL;
    T2_CHECK(t2_adapt_new(&a, factors, &pm, T2_APPLY_FACTORED, NULL) == 0);
    T2_CHECK(t2_adapt_new(&b, factors, &m1, T2_APPLY_FACTORED, NULL) == 0);
    for (int i = 0; a && b && i < n; i++)
        if (a->sigma[i])
            T2_CHECK(!memcmp(a->sigma[i], b->sigma[i], (size_t)factors->svd[i].rank * 4));
    t2_adapt_release(&a);
    t2_adapt_release(&b);
    free(alpha);
}

static void test_cache_lru(void) {
    t2_adapt_cache *c = NULL;
    T2_CHECK(t2_adapt_cache_new(&c, 2) == 0);
    const t2_expert *e[1] = {ex[0]};
    float one = 1.0f;
    t2_mixture mix = {1, e, &one, 1, 0};
    t2_adapt *a[3] = {0};
    for (int i = 0; i < 3; i++) {
        T2_CHECK(t2_adapt_new(&a[i], factors, &mix, T2_APPLY_MERGED, NULL) == 0);
        t2_adapt_cache_put(c, 10 + i, a[i]);
        if (i == 1) { /* touch key 10 so that 11 is the least recently used */
            t2_adapt *t = t2_adapt_cache_get(c, 10);
            T2_CHECK(t == a[0]);
            t2_adapt_release(&t);
        }
    }
    T2_CHECK_EQ_INT(t2_adapt_cache_size(c), 2);
    t2_adapt *g = t2_adapt_cache_get(c, 11);
    T2_CHECK(g == NULL);
    g = t2_adapt_cache_get(c, 12);
    T2_CHECK(g == a[2]);
    /* an entry still referenced outlives its eviction */
    t2_adapt *held = t2_adapt_cache_get(c, 10);
    T2_CHECK(held == a[0]);
    t2_adapt_cache_destroy(&c);
    T2_CHECK(held && held->refs == 2); /* our `a[0]` and `held` */
    t2_adapt_release(&held);
    t2_adapt_release(&g);
    for (int i = 0; i < 3; i++) t2_adapt_release(&a[i]);
}

/* The cache key follows every byte it hashes: same mixture, same key; a change of any expert
 * name, base sha, order, alpha bit or per_matrix flag, another key. */
static void test_mixture_key(void) {
    t2_expert x = *ex[0], y = *ex[1]; /* shallow copies whose name / sha we may change */
    const t2_expert *e[2] = {&x, &y};
    float alpha[2] = {0.25f, 0.75f};
    t2_mixture mix = {2, e, alpha, 2, 0};
    const uint64_t k0 = t2_mixture_key(&mix);
    t2_mixture same = mix;
    float alpha2[2] = {0.25f, 0.75f};
    same.alpha = alpha2;
    T2_CHECK(t2_mixture_key(&same) == k0);
    alpha2[1] = 0.5f;
    T2_CHECK(t2_mixture_key(&same) != k0);
    alpha2[1] = -0.75f; /* the sign: only the top byte differs */
    T2_CHECK(t2_mixture_key(&same) != k0);
    alpha2[1] = 0.75f;
    alpha2[0] = nextafterf(0.25f, 1.0f); /* one ulp */
    T2_CHECK(t2_mixture_key(&same) != k0);
    alpha2[0] = 0.25f;
    const t2_expert *swapped[2] = {&y, &x};
    same.experts = swapped;
    T2_CHECK(t2_mixture_key(&same) != k0);
    same.experts = e;
    T2_CHECK(t2_mixture_key(&same) == k0);
    /* the same letters split differently between the two names */
    x.name = "ab";
    y.name = "c";
    const uint64_t k1 = t2_mixture_key(&mix);
    x.name = "a";
    y.name = "bc";
    T2_CHECK(t2_mixture_key(&mix) != k1);
    x.name = ex[0]->name;
    y.name = ex[1]->name;
    T2_CHECK(t2_mixture_key(&mix) == k0);
    x.base_sha256[63] ^= 1;
    T2_CHECK(t2_mixture_key(&mix) != k0);
    x.base_sha256[63] ^= 1;
    /* per-matrix alphas equal to the plain ones still make another key */
    const int nm = factors->n_layers * T2_N_TARGETS;
    float *pm = malloc(2 * (size_t)nm * sizeof *pm);
    for (int i = 0; i < nm; i++) {
        pm[i] = alpha[0];
        pm[nm + i] = alpha[1];
    }
    t2_mixture per = {2, e, pm, 2 * nm, 1};
    const uint64_t kp = t2_mixture_key(&per);
    T2_CHECK(kp != k0);
    pm[2 * nm - 1] = 0; /* the last alpha is hashed too */
    T2_CHECK(t2_mixture_key(&per) != kp);
    free(pm);
}

#define NSEQ 6
#define STEPS 10

static void test_multi_sequence_bit_identical(void) {
    const int V = model->cfg.vocab_size;
    float one = 1.0f, two[2] = {0.6f, 0.8f};
    const t2_expert *e0[1] = {ex[0]}, *e1[1] = {ex[1]}, *e12[2] = {ex[1], ex[2]};
    t2_mixture m0 = {1, e0, &one, 1, 0}, m1 = {1, e1, &one, 1, 0}, m12 = {2, e12, two, 2, 0};
    t2_adapt *ad[NSEQ] = {0};
    /* base, three factored mixtures, one merged, another merged */
    T2_CHECK(t2_adapt_new(&ad[1], factors, &m0, T2_APPLY_FACTORED, NULL) == 0);
    T2_CHECK(t2_adapt_new(&ad[2], factors, &m1, T2_APPLY_FACTORED, NULL) == 0);
    T2_CHECK(t2_adapt_new(&ad[3], factors, &m12, T2_APPLY_FACTORED, NULL) == 0);
    T2_CHECK(t2_adapt_new(&ad[4], factors, &m1, T2_APPLY_MERGED, NULL) == 0);
    T2_CHECK(t2_adapt_new(&ad[5], factors, &m12, T2_APPLY_MERGED, NULL) == 0);
    static float alone[NSEQ][STEPS][97];
    int toks[NSEQ][STEPS];
    for (int i = 0; i < NSEQ; i++)
        for (int t = 0; t < STEPS; t++) toks[i][t] = ((i == 4 ? 2 : i) * 31 + t * 17 + 1) % V;
    for (int threads = 1; threads <= 3; threads++) {
        t2_pool *pool = NULL;
        T2_CHECK(t2_pool_new(&pool, threads) == 0);
        t2_state *st[NSEQ];
        for (int i = 0; i < NSEQ; i++) {
            T2_CHECK(t2_state_new(&st[i], model, 4, 0) == 0);
            t2_state_set_adapt(st[i], ad[i]);
        }
        if (threads == 1) { /* reference: each sequence alone, single thread */
            for (int i = 0; i < NSEQ; i++)
                for (int t = 0; t < STEPS; t++) {
                    T2_CHECK(t2_forward(st[i], pool, &toks[i][t], 1, t, NULL) == 0);
                    memcpy(alone[i][t], t2_state_logits(st[i]), (size_t)V * 4);
                }
        }
        /* all together; sequence i starts i steps late so positions differ within a batch */
        int mismatches = 0;
        for (int step = 0; step < STEPS + NSEQ - 1; step++) {
            t2_state *batch[NSEQ];
            int bt[NSEQ], bp[NSEQ], idx[NSEQ], n = 0;
            for (int i = 0; i < NSEQ; i++) {
                int t = step - i;
                if (t < 0 || t >= STEPS) continue;
                batch[n] = st[i];
                bt[n] = toks[i][t];
                bp[n] = t;
                idx[n++] = i;
            }
            int rc = t2_forward_step_multi(batch, n, pool, bt, bp);
            T2_CHECK_MSG(rc == 0, "step %d: %s", step, t2_err_msg());
            for (int b = 0; b < n; b++)
                if (memcmp(t2_state_logits(batch[b]), alone[idx[b]][step - idx[b]], (size_t)V * 4))
                    mismatches++;
        }
        T2_CHECK_MSG(mismatches == 0, "%d sequence steps differ with %d threads", mismatches, threads);
        for (int i = 0; i < NSEQ; i++) t2_state_destroy(&st[i]);
        t2_pool_destroy(&pool);
    }
    /* and the adaptations really change the output (the test could not pass by ignoring them) */
    for (int i = 1; i < NSEQ; i++) {
        double d = 0;
        for (int v = 0; v < V; v++) d = fmax(d, fabs(alone[i][STEPS - 1][v] - alone[0][STEPS - 1][v]));
        T2_CHECK_MSG(d > 1e-3, "sequence %d's mixture changed logits by only %g", i, d);
    }
    /* merged and factored of the same mixture (same tokens) agree closely: other float paths */
    double worst = 0;
    for (int t = 0; t < STEPS; t++)
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs(alone[2][t][v] - alone[4][t][v]));
    T2_CHECK_MSG(worst < 1e-4, "merged vs factored differ by %g", worst);
    for (int i = 0; i < NSEQ; i++) t2_adapt_release(&ad[i]);
}

static void test_multi_errors(void) {
    t2_state *a = NULL;
    T2_CHECK(t2_state_new(&a, model, 1, 8) == 0);
    t2_state *two[2] = {a, a};
    int tok[2] = {1, 2}, pos[2] = {0, 0};
    T2_CHECK(t2_forward_step_multi(two, 2, NULL, tok, pos) == T2_EINVAL); /* same state twice */
    int badpos = 8;
    T2_CHECK(t2_forward_step_multi(&a, 1, NULL, tok, &badpos) == T2_ERANGE);
    int badtok = 97, p0 = 0;
    T2_CHECK(t2_forward_step_multi(&a, 1, NULL, &badtok, &p0) == T2_ERANGE);
    t2_state_destroy(&a);
    T2_CHECK(t2_state_new_range(&a, model, 1, 8, 1, 1) == T2_ERANGE);
}

/* t2_svf_scale, the one σ' formula of inference and training: Σ out = Σσ, also when Σ(σ⊙m) is
 * negative (identity activation); c = 1, not a division by zero, when Σ(σ⊙m) is 0. */
static void test_sigma_scale_guard(void) {
    const float sigma[3] = {3.0f, 2.0f, 1.0f};
    float out[3];
    const float neg[3] = {-1.0f, -0.5f, 0.25f}; /* Σσm = -3.75 */
    t2_svf_scale(out, sigma, neg, 3, T2_SVF_ACT_LINEAR, 1.0f);
    T2_CHECK_NEAR(out[0] + out[1] + out[2], 6.0, 1e-5);
    T2_CHECK_NEAR(out[0], 3.0 * -1.0 * (6.0 / -3.75), 1e-5);
    const float zero_sum[3] = {0.0f, 0.5f, -1.0f}; /* Σσm = 0: c = 1 */
    t2_svf_scale(out, sigma, zero_sum, 3, T2_SVF_ACT_LINEAR, 1.0f);
    T2_CHECK(out[0] == 0.0f && out[1] == 1.0f && out[2] == -1.0f);
    const float under[3] = {-200.0f, -200.0f, -200.0f}; /* sigmoids underflow to 0 */
    t2_svf_scale(out, sigma, under, 3, T2_SVF_ACT_SIGMOID, 2.0f);
    T2_CHECK(out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.0f);
    const float p[3] = {0.3f, -1.2f, 2.0f};
    t2_svf_scale(out, sigma, p, 3, T2_SVF_ACT_SIGMOID, 2.0f);
    T2_CHECK_NEAR(out[0] + out[1] + out[2], 6.0, 1e-5);
    const double m0 = 2.0 / (1.0 + exp(-0.3)), m1 = 2.0 / (1.0 + exp(1.2));
    const double m2 = 2.0 / (1.0 + exp(-2.0));
    T2_CHECK_NEAR(out[0], 3.0 * m0 * 6.0 / (3.0 * m0 + 2.0 * m1 + m2), 1e-5);
}

/* Merged W' stored as F16, BF16 or Q8_0 (t2_adapt_new_typed): every stored weight is within the
 * type's rounding of the F32 W' (Q8_0: half a step of its block's scale max|w| / 127), the
 * memory is the type's, and the logits stay near the F32-merged ones. Bounds, as a fraction of
 * the F32 run's logit range over a 6-token prompt and 4 steps: F16 2e-3, BF16 2e-2, Q8_0 5e-2
 * (measured 4e-4, 5e-3, 1.5e-2: the test prints them). A matrix whose columns are not a multiple of 32
 * cannot be Q8_0 (refused, naming it). */
static void test_merged_types(void) {
    t2_config c = {.dim = 64, .hidden_dim = 128, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                   .vocab_size = 97, .seq_len = 32};
    t2_model *m = NULL;
    t2_factors *f = NULL;
    t2_expert *e = NULL;
    T2_CHECK(t2_model_init_random(&m, &c, 0, 21) == 0);
    T2_CHECK(t2_factors_compute(&f, m, T2_TARGETS_ALL, NULL, NULL, NULL, NULL) == 0);
    T2_CHECK(t2_expert_init(&e, f, 0, "q", "t", 0.2f, 1.0f, 5, 2.0f) == 0);
    const t2_expert *ev[1] = {e};
    float one = 1.0f;
    t2_mixture mix = {1, ev, &one, 1, 0};
    const t2_dtype types[4] = {T2_F32, T2_F16, T2_BF16, T2_Q8_0};
    const double bound[4] = {0, 2e-3, 2e-2, 5e-2};
    enum { NT = 10, V = 97 };
    static float logits[4][NT][V];
    int toks[NT];
    for (int t = 0; t < NT; t++) toks[t] = (t * 37 + 3) % V;
    t2_adapt *ad[4] = {0};
    for (int i = 0; i < 4; i++) {
        T2_CHECK(t2_adapt_new_typed(&ad[i], f, &mix, T2_APPLY_MERGED, types[i], NULL) == 0);
        t2_state *st = NULL;
        T2_CHECK(t2_state_new(&st, m, 8, 0) == 0);
        t2_state_set_adapt(st, ad[i]);
        T2_CHECK(t2_forward(st, NULL, toks, 6, 0, logits[i][0]) == 0);
        for (int t = 6; t < NT; t++) {
            T2_CHECK(t2_forward(st, NULL, &toks[t], 1, t, NULL) == 0);
            memcpy(logits[i][t], t2_state_logits(st), sizeof logits[i][t]);
        }
        t2_state_destroy(&st);
    }
    /* stored weights within the type's rounding of F32 W', and the type's memory */
    for (int i = 1; i < 4; i++) {
        double worst = 0;
        size_t weights = 0;
        for (int k = 0; k < f->n_layers * T2_N_TARGETS; k++) {
            const t2_mat *A = &ad[0]->merged[k], *B = &ad[i]->merged[k];
            T2_CHECK(B->type == types[i] && B->rows == A->rows && B->cols == A->cols);
            weights += (size_t)A->rows * A->cols;
            float *row = malloc((size_t)A->cols * sizeof *row);
            for (int r = 0; r < A->rows; r++) {
                const float *a = t2_mat_row(A, r);
                t2_to_f32(row, t2_mat_row(B, r), B->type, A->cols);
                for (int q0 = 0; q0 < A->cols; q0 += 32) {
                    float amax = 0;
                    for (int q = q0; q < q0 + 32; q++) amax = fmaxf(amax, fabsf(a[q]));
                    for (int q = q0; q < q0 + 32; q++) {
                        /* error in units of the type's step at this value */
                        double step = types[i] == T2_Q8_0 ? amax / 127.0
                                    : ldexp(1.0, ilogb(a[q] ? a[q] : 1)) *
                                          (types[i] == T2_F16 ? 0x1p-10 : 0x1p-7);
                        if (types[i] == T2_F16) step = fmax(step, 0x1p-24); /* subnormals */
                        /* less the f32 sgemm's own rounding (W' is formed in row blocks) */
                        const double err = fabs(row[q] - a[q]) - 1e-6 * amax;
                        if (step > 0) worst = fmax(worst, err / step);
                    }
                }
            }
            free(row);
        }
        /* Q8_0: its f16 scale d is itself rounded (2^-11), so up to 127 d 2^-11 more */
        const double lim = types[i] == T2_Q8_0 ? 0.5 + 127 * 0x1p-11 : 0.5;
        T2_CHECK_MSG(worst <= lim * (1 + 1e-6), "%s W' off by %g steps of its rounding",
                     t2_dtype_name(types[i]), worst);
        const size_t wbytes = ad[i]->bytes - (ad[0]->bytes - weights * 4);
        T2_CHECK_MSG(wbytes == t2_dtype_row_bytes(types[i], 32) * (weights / 32),
                     "%s: %zu bytes of W' for %zu weights", t2_dtype_name(types[i]), wbytes,
                     weights);
    }
    float lo = INFINITY, hi = -INFINITY;
    for (int t = 0; t < NT; t++)
        for (int v = 0; v < V; v++) {
            lo = fminf(lo, logits[0][t][v]);
            hi = fmaxf(hi, logits[0][t][v]);
        }
    for (int i = 1; i < 4; i++) {
        double d = 0;
        for (int t = 0; t < NT; t++)
            for (int v = 0; v < V; v++) d = fmax(d, fabs(logits[i][t][v] - logits[0][t][v]));
        printf("  merged %s vs F32: max |logit diff| %.3g = %.3g of the logit range %.3g\n",
               t2_dtype_name(types[i]), d, d / (hi - lo), (double)(hi - lo));
        T2_CHECK_MSG(d / (hi - lo) <= bound[i], "merged %s logits off by %g of the range",
                     t2_dtype_name(types[i]), d / (hi - lo));
        T2_CHECK_MSG(d > 0, "merged %s gave the F32 logits exactly: not its own weights?",
                     t2_dtype_name(types[i]));
    }
    for (int i = 0; i < 4; i++) t2_adapt_release(&ad[i]);
    /* the 48 x 88 model: 48 columns are not a whole number of Q8_0 blocks */
    const t2_expert *e0[1] = {ex[0]};
    t2_mixture m0 = {1, e0, &one, 1, 0};
    t2_adapt *bad = NULL;
    T2_CHECK(t2_adapt_new_typed(&bad, factors, &m0, T2_APPLY_MERGED, T2_Q8_0, NULL) ==
             T2_EUNSUPPORTED);
    T2_CHECK_MSG(bad == NULL && strstr(t2_err_msg(), "blk.0.attn_q has 48 columns, not a multiple of 32") != NULL, "%s",
                 t2_err_msg());
    T2_CHECK(t2_adapt_new_typed(&bad, factors, &m0, T2_APPLY_MERGED, T2_Q4_K, NULL) == T2_EINVAL);
    T2_CHECK(t2_adapt_new_typed(&bad, factors, &m0, T2_APPLY_FACTORED, T2_Q8_0, NULL) == 0);
    t2_adapt_release(&bad);
    t2_expert_destroy(&e);
    t2_factors_destroy(&f);
    t2_model_destroy(&m);
}

/* Low-rank application: W x + U_r ((σ' − σ)_r ⊙ (V_rᵀ x)).
 *  - the kept directions are those of largest |σ' − σ|, and the reported truncation error equals
 *    ||Δ − Δ_r||_F / ||Δ||_F computed here from the matrices themselves (float64);
 *  - all directions: the merged logits (to the factors' reconstruction error, 1e-4 of the range);
 *  - in a multi-sequence step: bit-identical to the sequence alone. */
static void test_lowrank(void) {
    const t2_expert *e1[1] = {ex[1]};
    float one = 1.0f;
    t2_mixture mix = {1, e1, &one, 1, 0};
    t2_adapt *lr = NULL, *full = NULL, *merged = NULL;
    t2_lowrank_report rep, rep_full;
    T2_CHECK(t2_adapt_new_lowrank(&lr, factors, &mix, 5, &rep) == 0);
    T2_CHECK(t2_adapt_new_lowrank(&full, factors, &mix, 1000, &rep_full) == 0);
    T2_CHECK(t2_adapt_new(&merged, factors, &mix, T2_APPLY_MERGED, NULL) == 0);
    T2_CHECK(rep_full.rel_err == 0 && rep_full.worst_rel_err == 0);
    T2_CHECK(rep.rel_err > 0.05 && rep.rel_err < 1 && rep.worst_rel_err >= rep.rel_err);
    double all = 0, dropped = 0, worst = 0;
    for (int i = 0; i < factors->n_layers * T2_N_TARGETS; i++) {
        const t2_svd *sv = &factors->svd[i];
        const t2_lowrank *L = &lr->lowrank[i];
        T2_CHECK(L->r == 5);
        /* every kept |d| >= every dropped |σ' − σ| */
        float kept_min = INFINITY, drop_max = 0;
        for (int j = 0; j < L->r; j++) kept_min = fminf(kept_min, fabsf(L->d[j]));
        int n_big = 0;
        for (int q = 0; q < sv->rank; q++) n_big += fabsf(lr->sigma[i][q] - sv->S[q]) >= kept_min;
        for (int q = 0; q < sv->rank; q++) {
            const float dq = fabsf(lr->sigma[i][q] - sv->S[q]);
            if (dq < kept_min) drop_max = fmaxf(drop_max, dq);
        }
        T2_CHECK_MSG(n_big >= L->r && drop_max <= kept_min, "matrix %d: kept %g, dropped %g", i,
                     (double)kept_min, (double)drop_max);
        /* ||Δ − Δ_r||_F and ||Δ||_F from the matrices */
        double num = 0, den = 0;
        for (int r = 0; r < sv->rows; r++)
            for (int c = 0; c < sv->cols; c++) {
                double d = 0, dr = 0;
                for (int q = 0; q < sv->rank; q++)
                    d += (double)sv->U[(size_t)r * sv->rank + q] *
                         (lr->sigma[i][q] - sv->S[q]) * sv->Vt[(size_t)q * sv->cols + c];
                for (int j = 0; j < L->r; j++)
                    dr += (double)L->U[(size_t)r * L->r + j] * L->d[j] *
                          L->Vt[(size_t)j * sv->cols + c];
                num += (d - dr) * (d - dr);
                den += d * d;
            }
        all += den;
        dropped += num;
        worst = fmax(worst, sqrt(num / den));
    }
    T2_CHECK_MSG(fabs(sqrt(dropped / all) - rep.rel_err) < 1e-4 &&
                 fabs(worst - rep.worst_rel_err) < 1e-4, "reported %g / %g, computed %g / %g",
                 rep.rel_err, rep.worst_rel_err, sqrt(dropped / all), worst);
    /* logits: all directions = merged; 5 directions in a multi step = alone */
    const int V = model->cfg.vocab_size;
    int toks[6] = {3, 50, 7, 91, 12, 40};
    float lm[6 * 97], lf[6 * 97], alone[97];
    t2_state *st[2];
    T2_CHECK(t2_state_new(&st[0], model, 8, 0) == 0 && t2_state_new(&st[1], model, 8, 0) == 0);
    t2_state_set_adapt(st[0], merged);
    t2_state_set_adapt(st[1], full);
    T2_CHECK(t2_forward(st[0], NULL, toks, 6, 0, lm) == 0);
    T2_CHECK(t2_forward(st[1], NULL, toks, 6, 0, lf) == 0);
    float lo = INFINITY, hi = -INFINITY;
    double d = 0;
    for (int i = 0; i < 6 * V; i++) {
        lo = fminf(lo, lm[i]);
        hi = fmaxf(hi, lm[i]);
        d = fmax(d, fabs(lm[i] - lf[i]));
    }
    T2_CHECK_MSG(d <= 1e-4 * (hi - lo), "all directions vs merged: %g of the range", d / (hi - lo));
    t2_state_set_adapt(st[0], NULL);
    t2_state_set_adapt(st[1], lr);
    T2_CHECK(t2_forward(st[0], NULL, toks, 5, 0, NULL) == 0);
    T2_CHECK(t2_forward(st[1], NULL, toks, 5, 0, NULL) == 0);
    int tk[2] = {toks[5], toks[5]}, pos[2] = {5, 5};
    T2_CHECK(t2_forward_step_multi(st, 2, NULL, tk, pos) == 0);
    memcpy(alone, t2_state_logits(st[1]), sizeof alone);
    T2_CHECK(t2_forward(st[1], NULL, &toks[5], 1, 5, NULL) == 0); /* the same step, alone */
    T2_CHECK(!memcmp(alone, t2_state_logits(st[1]), sizeof alone));
    T2_CHECK(memcmp(alone, t2_state_logits(st[0]), sizeof alone)); /* and not the base's */
    for (int i = 0; i < 2; i++) t2_state_destroy(&st[i]);
    t2_adapt *bad = NULL;
    T2_CHECK(t2_adapt_new_lowrank(&bad, factors, &mix, -1, NULL) == T2_EINVAL && !bad);
    T2_CHECK(t2_adapt_new_typed(&bad, factors, &mix, T2_APPLY_LOWRANK, T2_F32, NULL) ==
             T2_EINVAL);
    t2_adapt_release(&lr);
    t2_adapt_release(&full);
    t2_adapt_release(&merged);
}

int main(void) {
    setup();
    T2_RUN(test_sha256_vectors);
    T2_RUN(test_mixture_checks);
    T2_RUN(test_per_matrix_alpha);
    T2_RUN(test_cache_lru);
    T2_RUN(test_mixture_key);
    T2_RUN(test_multi_sequence_bit_identical);
    T2_RUN(test_multi_errors);
    T2_RUN(test_sigma_scale_guard);
    T2_RUN(test_merged_types);
    T2_RUN(test_lowrank);
    for (int i = 0; i < 3; i++) t2_expert_destroy(&ex[i]);
    t2_factors_destroy(&factors);
    t2_model_destroy(&model);
    t2_kern_free_scratch();
    return T2_TEST_END();
}
