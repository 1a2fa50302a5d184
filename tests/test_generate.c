/* test_generate.c - shared/generate.c: batched generation (continuous batching over
 * t2_forward_step_multi) gives byte-identical texts to generating each prompt alone with
 * `t2 run` semantics, for batch sizes 1 / 3 / 8 and 1 / 2 threads, greedy and sampled, with
 * per-request SVF adaptations; and every stop condition (stop string, EOS, length, context,
 * prompt truncation or rejection); prefix reuse (requests sharing a long system prompt, under
 * three adaptations) gives the same bytes as no reuse and as each prompt alone, and reuses
 * exactly the shared whole blocks of requests with the same adaptation, never across them.
 *
 * The reference below is an independent copy of `t2 run`'s loop (cli/cmd_run.c): t2_forward for
 * the prompt, then one t2_forward per token, a fresh state per prompt. */
#include "t2_test.h"

#include "engine/generate.h"
#include "engine/model.h"
#include "base/pool.h"
#include "engine/sampler.h"
#include "svf/svf.h"
#include "base/t2_err.h"
#include "engine/tokenizer.h"
#include "engine/transformer.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* llama2.c-format byte tokenizer: <unk>, <s>, </s>, 256 byte pieces. */
static t2_tokenizer *byte_tok(int vocab) {
    size_t cap = 4 + (size_t)vocab * 32, o = 4;
    unsigned char *buf = malloc(cap);
    uint32_t maxlen = 16;
    memcpy(buf, &maxlen, 4);
    for (int i = 0; i < vocab; i++) {
        char piece[24];
        if (i == 0) snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1) snprintf(piece, sizeof piece, "\n<s>\n");
        else if (i == 2) snprintf(piece, sizeof piece, "\n</s>\n");
        else snprintf(piece, sizeof piece, "<0x%02X>", (i - 3) & 0xff);
        float score = 0;
        int32_t len = (int32_t)strlen(piece);
        memcpy(buf + o, &score, 4);
        memcpy(buf + o + 4, &len, 4);
        memcpy(buf + o + 8, piece, (size_t)len);
        o += 8 + (size_t)len;
    }
    t2_tokenizer *t = NULL;
    if (t2_tok_load_llama2c_mem(&t, buf, o, vocab, "test bytes") < 0)
        fprintf(stderr, "tokenizer: %s\n", t2_err_msg());
    free(buf);
    return t;
}

typedef struct {
    char text[4096];
    int n_gen, n_prompt, truncated, error;
    t2_gen_stop stop;
    int toks[4096];
} ref_out;

/* `t2 run` alone: -t temp -s seed, context ctx (-n), at most max_tokens sampled, stop strings.
 * Over-long prompts are cut as generate.h documents (BOS + the last tokens). */
static void ref_generate(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                         const char *prompt, const t2_adapt *ad, int ctx, int max_tokens,
                         float temp, uint64_t seed, const char *const *stops, int truncate,
                         ref_out *o) {
    memset(o, 0, sizeof *o);
    int np = 0;
    t2_tok_encode(tok, prompt, 1, 0, o->toks, 4096, &np);
    int reserve = max_tokens < ctx / 2 ? max_tokens : ctx / 2;
    if (reserve < 1) reserve = 1;
    if (np > ctx - reserve && truncate) {
        int keep = ctx - reserve;
        o->truncated = np - keep;
        memmove(o->toks + 1, o->toks + 1 + o->truncated, (size_t)(keep - 1) * sizeof(int));
        np = keep;
    } else if (np > ctx) {
        o->error = T2_ERANGE;
        return;
    }
    o->n_prompt = np;
    t2_state *st = NULL;
    t2_sampler *smp = NULL;
    T2_CHECK(t2_sampler_new(&smp, m->cfg.vocab_size, temp, 1.0f, seed) == 0);
    T2_CHECK(t2_state_new(&st, m, 128, ctx) == 0);
    t2_state_set_adapt(st, ad);
    T2_CHECK(t2_forward(st, pool, o->toks, np, 0, NULL) == 0);
    int token = o->toks[np - 1];
    size_t len = 0;
    o->stop = T2_GEN_STOP_CONTEXT;
    for (int pos = np; pos <= ctx; pos++) {
        int next = t2_sample(smp, t2_state_logits(st));
        o->toks[np + o->n_gen++] = next;
        if (next == t2_tok_bos(tok) || next == t2_tok_eos(tok)) {
            o->stop = T2_GEN_STOP_EOS;
            break;
        }
        size_t n;
        const char *s = t2_tok_decode(tok, token, next, &n);
        int keep = !(n == 1 && (unsigned char)s[0] < 0x80 &&
                     !(isprint((unsigned char)s[0]) || isspace((unsigned char)s[0])));
        if (keep && len + n < sizeof o->text) {
            memcpy(o->text + len, s, n);
            len += n;
            o->text[len] = 0;
        }
        size_t best = (size_t)-1;
        for (int k = 0; stops && stops[k]; k++) {
            char *h = strstr(o->text, stops[k]);
            if (h && (size_t)(h - o->text) < best) best = (size_t)(h - o->text);
        }
        if (best != (size_t)-1) {
            len = best;
            o->text[len] = 0;
            o->stop = T2_GEN_STOP_STRING;
            break;
        }
        if (o->n_gen >= max_tokens) {
            o->stop = T2_GEN_STOP_LENGTH;
            break;
        }
        token = next;
        if (pos < ctx) T2_CHECK(t2_forward(st, pool, &token, 1, pos, NULL) == 0);
    }
    t2_state_destroy(&st);
    t2_sampler_destroy(&smp);
}

static t2_model *g_model;
static t2_tokenizer *g_tok;

static const char *prompts[] = {
    "Jo had 6 eggs and traded 3. How many now?\n",
    "run [3,1,2]\n",
    "",
    "a",
    "Which one? A) ant B) lion C) frog D) rhino\n",
    "Classify: Thank Gus.\n",
    "sort [0,6,1,6,3]\n",
    "x\ty\x01z\n",
    "Color of snow?\n",
    "the cat sat on the mat and the dog ran to the big red ball in the sun\n",
    "min [1,4,4,7]\n",
};
#define NP (int)(sizeof prompts / sizeof prompts[0])

/* Compare a batched run with the references. */
static int compare(const t2_gen_result *r, const ref_out *ref, int i, const char *what) {
    int ok = 1;
    if (r->error != ref->error) ok = 0;
    if (!ref->error) {
        if (strcmp(r->text, ref->text) || r->n_gen != ref->n_gen || r->stop != ref->stop ||
            r->n_prompt != ref->n_prompt || r->truncated != ref->truncated ||
            r->len != strlen(ref->text) ||
            memcmp(r->tokens, ref->toks, (size_t)(r->n_prompt + r->n_gen) * sizeof(int)))
            ok = 0;
    }
    if (!ok)
        fprintf(stderr, "%s: request %d: got [%s] %d tokens stop %s err %d, want [%s] %d tokens "
                "stop %s err %d\n", what, i, r->text ? r->text : "(null)", r->n_gen,
                t2_gen_stop_name(r->stop), r->error, ref->text, ref->n_gen,
                t2_gen_stop_name(ref->stop), ref->error);
    return ok;
}

typedef struct {
    int order[64], n;
} done_log;
static void on_done(void *ctx, int index, const t2_gen_result *r) {
    done_log *d = ctx;
    (void)r;
    if (d->n < 64) d->order[d->n++] = index;
}

static void run_case(const char *what, int max_tokens, float temp, const char *const *stops,
                     const t2_adapt *const *adapts, int ctx, int truncate) {
    static ref_out refs[NP];
    t2_pool *p1 = NULL;
    T2_CHECK(t2_pool_new(&p1, 1) == 0);
    for (int i = 0; i < NP; i++)
        ref_generate(g_model, g_tok, p1, prompts[i], adapts ? adapts[i] : NULL,
                     ctx ? ctx : g_model->cfg.seq_len, max_tokens, temp, 1000 + (uint64_t)i,
                     stops, truncate, &refs[i]);
    t2_pool_destroy(&p1);
    static const int batches[] = {1, 3, 8};
    for (int th = 1; th <= 2; th++) {
        t2_pool *pool = NULL;
        T2_CHECK(t2_pool_new(&pool, th) == 0);
        for (int bi = 0; bi < 3; bi++) {
            t2_gen_request rq[NP];
            for (int i = 0; i < NP; i++)
                rq[i] = (t2_gen_request){prompts[i], adapts ? adapts[i] : NULL, 1000 + (uint64_t)i};
            t2_gen_params gp;
            t2_gen_params_default(&gp);
            gp.max_tokens = max_tokens;
            gp.temperature = temp;
            gp.batch = batches[bi];
            gp.n_ctx = ctx;
            gp.truncate = truncate;
            for (int k = 0; k < T2_GEN_MAX_STOPS; k++) gp.stop[k] = NULL;
            if (stops)
                for (int k = 0; stops[k]; k++) gp.stop[k] = stops[k];
            done_log dl = {.n = 0};
            gp.on_done = on_done;
            gp.on_done_ctx = &dl;
            t2_gen_result res[NP];
            t2_gen_stats st;
            int rc = t2_generate_batch(g_model, g_tok, pool, rq, NP, &gp, res, &st);
            T2_CHECK_MSG(rc == 0, "%s: %s", what, t2_err_msg());
            if (rc < 0) continue;
            int same = 0, seen[NP] = {0}, failed = 0;
            int64_t gen = 0;
            for (int i = 0; i < NP; i++) {
                char w[128];
                snprintf(w, sizeof w, "%s, batch %d, %d threads", what, batches[bi], th);
                same += compare(&res[i], &refs[i], i, w);
                failed += refs[i].error != 0;
                if (!refs[i].error) gen += refs[i].n_gen;
            }
            T2_CHECK_EQ_INT(same, NP);
            T2_CHECK_EQ_INT(dl.n, NP); /* every request reported once */
            for (int k = 0; k < dl.n; k++) seen[dl.order[k]]++;
            for (int i = 0; i < NP; i++) T2_CHECK_EQ_INT(seen[i], 1);
            T2_CHECK_EQ_INT(st.failed, failed);
            T2_CHECK_EQ_INT(st.gen_tokens, gen);
            T2_CHECK(st.mean_in_flight <= batches[bi] + 1e-9);
            /* decode time is part of the wall time; a step holds at least one sequence */
            T2_CHECK(st.wall_seconds >= st.decode_seconds && st.decode_seconds >= 0);
            T2_CHECK(st.steps > 0 ? st.mean_in_flight >= 1.0 : st.decode_seconds == 0);
            t2_gen_results_free(res, NP);
        }
        t2_pool_destroy(&pool);
    }
}

static void test_greedy_newline(void) {
    const char *stops[] = {"\n", NULL};
    run_case("greedy, stop at newline", 24, 0.0f, stops, NULL, 0, 1);
}

static void test_greedy_no_stop(void) { run_case("greedy, no stop", 40, 0.0f, NULL, NULL, 0, 1); }

static void test_sampled(void) {
    const char *stops[] = {"\n", "ab", NULL};
    run_case("sampled, temperature 1.2", 30, 1.2f, stops, NULL, 0, 1);
}

/* A stop string taken from the middle of the unstopped greedy text ends each generation
 * right before its first occurrence. */
static void test_stop_string(void) {
    ref_out ref;
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    ref_generate(g_model, g_tok, pool, prompts[0], NULL, g_model->cfg.seq_len, 30, 0, 1, NULL, 1,
                 &ref);
    T2_CHECK(strlen(ref.text) >= 12);
    char stop[4] = {ref.text[8], ref.text[9], ref.text[10], 0};
    const char *stops[] = {"\xff\xfe", stop, NULL};
    t2_gen_params gp;
    t2_gen_params_default(&gp);
    gp.max_tokens = 30;
    gp.stop[0] = stops[0];
    gp.stop[1] = stops[1];
    t2_gen_request rq = {prompts[0], NULL, 0};
    t2_gen_result r;
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, &rq, 1, &gp, &r, NULL) == 0);
    size_t want = (size_t)(strstr(ref.text, stop) - ref.text);
    T2_CHECK_EQ_INT(r.len, want);
    T2_CHECK(r.stop == T2_GEN_STOP_STRING);
    T2_CHECK(!strncmp(r.text, ref.text, want) && r.text[want] == 0);
    t2_gen_results_free(&r, 1);
    run_case("greedy, stop string from the text", 30, 0.0f, stops, NULL, 0, 1);
    t2_pool_destroy(&pool);
}

/* Length, context, truncation and rejection of over-long prompts. */
static void test_limits(void) {
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    /* max_tokens 1: exactly one token (unless it is EOS: a random model rarely picks it) */
    t2_gen_params gp;
    t2_gen_params_default(&gp);
    gp.max_tokens = 1;
    gp.stop[0] = NULL;
    t2_gen_request rq[3] = {{prompts[1], NULL, 0}, {prompts[4], NULL, 0}, {"", NULL, 0}};
    t2_gen_result r[3];
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, rq, 3, &gp, r, NULL) == 0);
    for (int i = 0; i < 3; i++) {
        T2_CHECK_EQ_INT(r[i].n_gen, 1);
        T2_CHECK(r[i].stop == T2_GEN_STOP_LENGTH || r[i].stop == T2_GEN_STOP_EOS);
    }
    T2_CHECK_EQ_INT(r[2].n_prompt, 1); /* the empty prompt is BOS alone */
    t2_gen_results_free(r, 3);
    /* context: a 50-byte prompt (+ BOS, dummy space) in a 64-token context, no stop:
     * 64 - 52 + 1 = 13 tokens, ended by the context */
    char p50[64];
    memset(p50, 'q', 50);
    p50[50] = 0;
    gp.max_tokens = 100;
    gp.n_ctx = 64;
    gp.truncate = 0;
    t2_gen_request rc1 = {p50, NULL, 0};
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, &rc1, 1, &gp, r, NULL) == 0);
    T2_CHECK_EQ_INT(r[0].n_prompt, 52);
    if (r[0].stop != T2_GEN_STOP_EOS) {
        T2_CHECK(r[0].stop == T2_GEN_STOP_CONTEXT);
        T2_CHECK_EQ_INT(r[0].n_gen, 13);
    }
    t2_gen_results_free(r, 1);
    /* over-long prompts: rejected one by one without truncation, cut with it */
    char p100[128];
    memset(p100, 'w', 100);
    p100[100] = 0;
    t2_gen_request rq2[3] = {{prompts[0], NULL, 0}, {p100, NULL, 0}, {prompts[1], NULL, 0}};
    t2_gen_stats st;
    gp.max_tokens = 8;
    gp.batch = 2;
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, rq2, 3, &gp, r, &st) == 0);
    T2_CHECK(r[0].error == 0 && r[2].error == 0 && r[0].n_gen > 0 && r[2].n_gen > 0);
    T2_CHECK_EQ_INT(r[1].error, T2_ERANGE);
    T2_CHECK(strstr(r[1].message, "102 tokens") && strstr(r[1].message, "context of 64"));
    T2_CHECK_EQ_INT(st.failed, 1);
    t2_gen_results_free(r, 3);
    gp.truncate = 1;
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, rq2, 3, &gp, r, &st) == 0);
    T2_CHECK_EQ_INT(r[1].error, 0);
    T2_CHECK_EQ_INT(r[1].n_prompt, 64 - 8);
    T2_CHECK_EQ_INT(r[1].truncated, 102 - 56);
    T2_CHECK_EQ_INT(r[1].tokens[0], t2_tok_bos(g_tok));
    T2_CHECK_EQ_INT(st.truncated, 1);
    t2_gen_results_free(r, 3);
    /* the same through the batch comparison (ctx 64, the long prompts of the list cut) */
    const char *stops[] = {"\n", NULL};
    run_case("greedy, context 40, truncation", 30, 0.0f, stops, NULL, 40, 1);
    run_case("greedy, context 40, no truncation", 30, 0.0f, stops, NULL, 40, 0);
    /* bad parameters */
    gp.max_tokens = 0;
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, rq, 1, &gp, r, NULL) == T2_EINVAL);
    gp.max_tokens = 4;
    gp.batch = T2_MAX_SEQS + 1;
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, rq, 1, &gp, r, NULL) == T2_EINVAL);
    gp.batch = 4;
    gp.stop[0] = "";
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, rq, 1, &gp, r, NULL) == T2_EINVAL);
    gp.stop[0] = NULL;
    T2_CHECK(t2_generate_batch(g_model, g_tok, pool, rq, 0, &gp, r, NULL) == 0);
    t2_pool_destroy(&pool);
}

/* EOS: make the classifier row of EOS a scaled copy of the row of a token greedy decoding
 * picks, so that EOS wins there; then batched == alone and some requests end by EOS. */
static void test_eos(void) {
    t2_model *m = g_model;
    ref_out ref;
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 1) == 0);
    ref_generate(m, g_tok, pool, prompts[1], NULL, m->cfg.seq_len, 12, 0, 1, NULL, 1, &ref);
    int victim = ref.toks[ref.n_prompt + 4];
    const size_t D = (size_t)m->cfg.dim;
    float *out = (float *)(uintptr_t)m->output.data;
    T2_CHECK(m->output.type == T2_F32 && !m->tied);
    float *saved = malloc(D * sizeof(float));
    memcpy(saved, out + (size_t)t2_tok_eos(g_tok) * D, D * sizeof(float));
    const size_t eos_row = (size_t)t2_tok_eos(g_tok) * D;
    for (size_t j = 0; j < D; j++) out[eos_row + j] = 1.5f * out[victim * D + j];
    int eos = 0;
    for (int i = 0; i < NP; i++) {
        ref_generate(m, g_tok, pool, prompts[i], NULL, m->cfg.seq_len, 40, 0, 1, NULL, 1, &ref);
        eos += ref.stop == T2_GEN_STOP_EOS;
    }
    T2_CHECK_MSG(eos >= 1, "no request ended by EOS");
    run_case("greedy, EOS", 40, 0.0f, NULL, NULL, 0, 1);
    memcpy(out + (size_t)t2_tok_eos(g_tok) * D, saved, D * sizeof(float));
    free(saved);
    t2_pool_destroy(&pool);
}

/* Per-request adaptations: base, an expert merged, another expert factored, in one batch. */
static void test_adapt(void) {
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    t2_factors *f = NULL;
    double err = 0;
    T2_CHECK(t2_factors_compute(&f, g_model, T2_TARGETS_MLP, pool, NULL, NULL, &err) == 0);
    if (!f) {
        fprintf(stderr, "factors: %s\n", t2_err_msg());
        t2_pool_destroy(&pool);
        return;
    }
    t2_expert *e1 = NULL, *e2 = NULL;
    T2_CHECK(t2_expert_init(&e1, f, T2_TARGETS_MLP, "e1", "math", 0.1f, 2.0f, 7, 2.0f) == 0);
    T2_CHECK(t2_expert_init(&e2, f, T2_TARGETS_MLP, "e2", "code", 0.1f, 2.0f, 8, 2.0f) == 0);
    const t2_expert *x1[] = {e1}, *x2[] = {e2};
    const float one = 1.0f;
    t2_mixture m1 = {1, x1, &one, 1, 0}, m2 = {1, x2, &one, 1, 0};
    t2_adapt *a1 = NULL, *a2 = NULL;
    T2_CHECK(t2_adapt_new(&a1, f, &m1, T2_APPLY_MERGED, pool) == 0);
    T2_CHECK(t2_adapt_new(&a2, f, &m2, T2_APPLY_FACTORED, pool) == 0);
    const t2_adapt *ads[NP];
    for (int i = 0; i < NP; i++) ads[i] = i % 3 == 0 ? NULL : i % 3 == 1 ? a1 : a2;
    const char *stops[] = {"\n", NULL};
    run_case("greedy, mixed adaptations", 24, 0.0f, stops, ads, 0, 1);
    /* an adaptation does change the text of at least one prompt */
    int differ = 0;
    for (int i = 0; i < NP; i++) {
        ref_out r0, r1;
        ref_generate(g_model, g_tok, pool, prompts[i], NULL, g_model->cfg.seq_len, 24, 0, 1, NULL,
                     1, &r0);
        ref_generate(g_model, g_tok, pool, prompts[i], a1, g_model->cfg.seq_len, 24, 0, 1, NULL,
                     1, &r1);
        differ += strcmp(r0.text, r1.text) != 0;
    }
    T2_CHECK(differ > 0);
    t2_adapt_release(&a1);
    t2_adapt_release(&a2);
    t2_expert_destroy(&e1);
    t2_expert_destroy(&e2);
    t2_factors_destroy(&f);
    t2_pool_destroy(&pool);
}

/* Twelve requests: a 200-byte system prompt (BOS + 200 byte tokens: 3 whole blocks of 64) and
 * four questions, each under base weights and two experts, on a model with a 512 context. */
static void test_prefix(void) {
    t2_config cfg = {.dim = 48, .hidden_dim = 96, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                     .vocab_size = 259, .seq_len = 512};
    t2_model *m = NULL;
    t2_pool *pool = NULL;
    t2_factors *f = NULL;
    t2_expert *e1 = NULL, *e2 = NULL;
    t2_adapt *a1 = NULL, *a2 = NULL;
    T2_CHECK(t2_model_init_random(&m, &cfg, 0, 77) == 0 && t2_pool_new(&pool, 2) == 0);
    if (!m || !pool) goto out;
    T2_CHECK(t2_factors_compute(&f, m, T2_TARGETS_MLP, pool, NULL, NULL, NULL) == 0);
    if (!f) goto out;
    T2_CHECK(t2_expert_init(&e1, f, T2_TARGETS_MLP, "e1", "math", 0.1f, 2.0f, 7, 2.0f) == 0);
    T2_CHECK(t2_expert_init(&e2, f, T2_TARGETS_MLP, "e2", "code", 0.1f, 2.0f, 8, 2.0f) == 0);
    const t2_expert *x1[] = {e1}, *x2[] = {e2};
    const float one = 1.0f;
    t2_mixture m1 = {1, x1, &one, 1, 0}, m2 = {1, x2, &one, 1, 0};
    T2_CHECK(t2_adapt_new(&a1, f, &m1, T2_APPLY_MERGED, pool) == 0);
    T2_CHECK(t2_adapt_new(&a2, f, &m2, T2_APPLY_FACTORED, pool) == 0);
    if (!a1 || !a2) goto out;
    static const char *qs[] = {"Q: how many eggs?\n", "Q: sort [3,1,2] please, then say why.\n",
                               "Q: colour of snow?\n", "Q: x\n"};
    enum { NQ = 4, NR = 3 * NQ };
    char prompts_[NR][512];
    t2_gen_request rq[NR];
    const t2_adapt *ads[3] = {NULL, a1, a2};
    for (int i = 0; i < NR; i++) {
        int k = snprintf(prompts_[i], sizeof prompts_[i], "System: ");
        for (int j = k; j < 200; j++) prompts_[i][j] = (char)('a' + (j * 7 + j / 13) % 26);
        snprintf(prompts_[i] + 200, sizeof prompts_[i] - 200, "%s", qs[i / 3]);
        rq[i] = (t2_gen_request){.prompt = prompts_[i], .adapt = ads[i % 3]};
    }
    t2_gen_params gp;
    t2_gen_params_default(&gp);
    gp.max_tokens = 16;
    t2_gen_result on[NR], off[NR];
    t2_gen_stats st_on, st_off;
    T2_CHECK(t2_generate_batch(m, g_tok, pool, rq, NR, &gp, on, &st_on) == 0);
    gp.prefix_cache = 0;
    T2_CHECK(t2_generate_batch(m, g_tok, pool, rq, NR, &gp, off, &st_off) == 0);
    int same = 1, differ = 0;
    for (int i = 0; i < NR; i++) {
        ref_out ref;
        ref_generate(m, g_tok, pool, rq[i].prompt, rq[i].adapt, m->cfg.seq_len, 16, 0, 0,
                     gp.stop, 1, &ref);
        same &= compare(&on[i], &ref, i, "prefix reuse") && compare(&off[i], &ref, i, "none");
        differ += i % 3 && strcmp(on[i].text, on[i - i % 3].text) != 0;
    }
    T2_CHECK(same);
    T2_CHECK_MSG(differ > 0, "the experts change no answer: the test shows nothing");
    /* 192 shared tokens for every request but the first of each adaptation */
    T2_CHECK_EQ_INT(st_on.reused_tokens, 192 * (NR - 3));
    T2_CHECK_EQ_INT(st_off.reused_tokens, 0);
    printf("  %lld of %lld prompt tokens reused\n", (long long)st_on.reused_tokens,
           (long long)st_on.prompt_tokens);
    t2_gen_results_free(on, NR);
    t2_gen_results_free(off, NR);
out:
    t2_adapt_release(&a1);
    t2_adapt_release(&a2);
    t2_expert_destroy(&e1);
    t2_expert_destroy(&e2);
    t2_factors_destroy(&f);
    t2_model_destroy(&m);
    t2_pool_destroy(&pool);
}

static void test_stop_names(void) {
    T2_CHECK(!strcmp(t2_gen_stop_name(T2_GEN_STOP_STRING), "stop"));
    T2_CHECK(!strcmp(t2_gen_stop_name(T2_GEN_STOP_EOS), "eos"));
    T2_CHECK(!strcmp(t2_gen_stop_name(T2_GEN_STOP_LENGTH), "length"));
    T2_CHECK(!strcmp(t2_gen_stop_name(T2_GEN_STOP_CONTEXT), "context"));
    T2_CHECK(!strcmp(t2_gen_stop_name(T2_GEN_STOP_NONE), "none"));
}

int main(void) {
    t2_config cfg = {.dim = 48, .hidden_dim = 96, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                     .vocab_size = 259, .seq_len = 96};
    if (t2_model_init_random(&g_model, &cfg, 0, 42) < 0 || !(g_tok = byte_tok(259))) {
        fprintf(stderr, "setup: %s\n", t2_err_msg());
        return 1;
    }
    T2_RUN(test_stop_names);
    T2_RUN(test_greedy_newline);
    T2_RUN(test_greedy_no_stop);
    T2_RUN(test_sampled);
    T2_RUN(test_stop_string);
    T2_RUN(test_limits);
    T2_RUN(test_eos);
    T2_RUN(test_adapt);
    T2_RUN(test_prefix);
    t2_tok_destroy(&g_tok);
    t2_model_destroy(&g_model);
    return T2_TEST_END();
}
