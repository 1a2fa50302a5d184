/* test_kvpool.c - the paged KV pool (engine/kvcache.h) and run states that share one.
 *
 * - the pool alone: every block handed out once, T2_EBUSY when empty, bad and double frees
 *   refused, freed blocks reused;
 * - many sequences of random lengths sharing a pool smaller than their total: each steps one
 *   token at a time (randomly interleaved), ends at its length or when the pool is exhausted
 *   (a clean T2_EBUSY, its blocks returned), and a new one takes its place. Blocks held + free
 *   = the pool at every step, and every sequence's logits are bit-identical to the same tokens
 *   run alone in a state with its own pool (so scattered, reused blocks change nothing);
 * - a prompt in batches (tiled attention, head dim 32) against the same tokens one at a time;
 * - the cache types and the context checks of t2_state_new_kv / t2_state_reserve.
 */
#include "t2_test.h"

#include "base/pool.h"
#include "base/rng.h"
#include "base/t2_err.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/transformer.h"

static t2_model *model;

static void test_pool_alone(void) {
    t2_kvpool *p = NULL;
    enum { N = 37 };
    T2_CHECK(t2_kvpool_new(&p, T2_F16, 3, 64, N) == 0);
    if (!p) return;
    T2_CHECK_EQ_INT(t2_kvpool_block_bytes(p), 3 * 2 * T2_KV_BLOCK * 64 * 2);
    int seen[N] = {0};
    int32_t ids[N];
    for (int i = 0; i < N; i++) {
        T2_CHECK(t2_kvpool_alloc(p, &ids[i]) == 0);
        T2_CHECK(ids[i] >= 0 && ids[i] < N && !seen[ids[i]]);
        if (ids[i] >= 0 && ids[i] < N) seen[ids[i]] = 1;
        memset(t2_kvpool_block(p, ids[i]), i, t2_kvpool_block_bytes(p)); /* writable */
    }
    int32_t x;
    T2_CHECK(t2_kvpool_alloc(p, &x) == T2_EBUSY);
    T2_CHECK_EQ_INT(t2_kvpool_n_free(p), 0);
    T2_CHECK(t2_kvpool_free(p, ids[5]) == 0);
    T2_CHECK(t2_kvpool_free(p, ids[5]) == T2_EINVAL); /* twice */
    T2_CHECK(t2_kvpool_free(p, N) == T2_EINVAL);
    T2_CHECK(t2_kvpool_free(p, -1) == T2_EINVAL);
    T2_CHECK(t2_kvpool_alloc(p, &x) == 0 && x == ids[5]); /* the freed block comes back */
    for (int i = 0; i < N; i++) T2_CHECK(t2_kvpool_free(p, ids[i]) == 0);
    T2_CHECK_EQ_INT(t2_kvpool_n_free(p), N);
    T2_CHECK_EQ_INT(t2_kvpool_n_touched(p), N);
    t2_kvpool_destroy(&p);
    T2_CHECK(p == NULL);
    /* types and sizes a pool refuses */
    T2_CHECK(t2_kvpool_new(&p, T2_Q8_0, 2, 48, 4) == T2_EINVAL); /* not whole Q8_0 blocks */
    T2_CHECK(t2_kvpool_new(&p, T2_Q4_0, 2, 64, 4) == T2_EINVAL);
    T2_CHECK(t2_kvpool_new(&p, T2_F16, 2, 64, 0) == T2_EINVAL);
    T2_CHECK(t2_kvpool_new(&p, T2_F16, 0, 64, 4) == T2_EINVAL);
    T2_CHECK(p == NULL);
}

enum { NSEQ = 10, MAXLEN = 300 };

typedef struct {
    t2_state *st, *ref; /* shared pool / its own pool */
    int id, len, pos;   /* active when len > 0 */
} seq;

static int tok_of(int id, int pos) { return (id * 7 + pos * 13 + 1) % model->cfg.vocab_size; }

static void seq_start(seq *s, int id, t2_rand *rng) {
    s->id = id;
    s->len = 1 + (int)t2_rand_below(rng, MAXLEN);
    s->pos = 0;
}

static void seq_end(seq *s) {
    t2_state_release(s->st);
    t2_state_release(s->ref);
    s->len = 0;
}

/* One token of s in both states; 1 if it ran, 0 if the shared pool is full (EBUSY). */
static int seq_step(seq *s, t2_pool *pool) {
    const int V = model->cfg.vocab_size, t = tok_of(s->id, s->pos);
    int rc = t2_forward(s->st, pool, &t, 1, s->pos, NULL);
    if (rc == T2_EBUSY) return 0;
    T2_CHECK_EQ_INT(rc, 0);
    T2_CHECK(t2_forward(s->ref, pool, &t, 1, s->pos, NULL) == 0);
    T2_CHECK_MSG(!memcmp(t2_state_logits(s->st), t2_state_logits(s->ref), V * sizeof(float)),
                 "sequence %d, position %d: logits differ from the private cache's", s->id,
                 s->pos);
    s->pos++;
    return 1;
}

static void test_shared_pool(void) {
    const t2_config *c = &model->cfg;
    const int64_t nblocks = 24; /* far less than NSEQ x MAXLEN tokens */
    t2_kvpool *kv = NULL;
    t2_pool *pool = NULL;
    T2_CHECK(t2_kvpool_new(&kv, T2_F16, c->n_layers, c->n_kv_heads * c->head_dim, nblocks) == 0);
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    if (!kv || !pool) return;
    seq sq[NSEQ] = {0};
    t2_rand rng;
    t2_rand_seed(&rng, 1234);
    int next_id = 0, ended = 0, busy = 0;
    for (int i = 0; i < NSEQ; i++) {
        T2_CHECK(t2_state_new_kv(&sq[i].st, model, 1, 512, 0, c->n_layers, T2_F32, kv) == 0);
        T2_CHECK(t2_state_new_kv(&sq[i].ref, model, 1, 512, 0, c->n_layers, T2_F16, NULL) == 0);
        T2_CHECK(t2_state_kv_type(sq[i].st) == T2_F16); /* the pool's type wins */
        seq_start(&sq[i], next_id++, &rng);
    }
    for (int step = 0; step < 6000 && t2_test_failed_checks == 0; step++) {
        seq *s = &sq[t2_rand_below(&rng, NSEQ)];
        if (!s->len) seq_start(s, next_id++, &rng);
        if (!seq_step(s, pool)) {
            busy++;
            seq_end(s); /* a request that cannot get room ends cleanly */
        } else if (s->pos == s->len) {
            ended++;
            seq_end(s);
        }
        int64_t held = 0;
        for (int i = 0; i < NSEQ; i++) held += t2_state_kv_tokens(sq[i].st) / T2_KV_BLOCK;
        T2_CHECK_EQ_INT(held + t2_kvpool_n_free(kv), nblocks);
    }
    printf("  %d sequences ended at their length, %d on a full pool, %lld blocks touched\n",
           ended, busy, (long long)t2_kvpool_n_touched(kv));
    T2_CHECK(ended > 20 && busy > 0);
    for (int i = 0; i < NSEQ; i++) {
        t2_state_destroy(&sq[i].st);
        t2_state_destroy(&sq[i].ref);
    }
    T2_CHECK_EQ_INT(t2_kvpool_n_free(kv), nblocks); /* destroyed states gave their blocks back */
    t2_kvpool_destroy(&kv);
    t2_pool_destroy(&pool);
}

/* A prompt of 300 tokens in batches (tiled attention over 2 segments) against the same tokens
 * one at a time: close (different kernels), and bit-identical with 1 or 2 threads. */
static void test_prompt_tiles(void) {
    const t2_config *c = &model->cfg;
    enum { NP = 300 };
    const int V = c->vocab_size;
    int toks[NP];
    for (int i = 0; i < NP; i++) toks[i] = tok_of(3, i);
    float *lb = malloc(sizeof(float) * NP * V), *lb1 = malloc(sizeof(float) * NP * V);
    t2_state *sb = NULL, *ss = NULL;
    t2_pool *p1 = NULL, *p2 = NULL;
    T2_CHECK(lb && lb1 && t2_pool_new(&p1, 1) == 0 && t2_pool_new(&p2, 2) == 0);
    T2_CHECK(t2_state_new_kv(&sb, model, 128, 512, 0, c->n_layers, T2_F16, NULL) == 0);
    T2_CHECK(t2_state_new_kv(&ss, model, 1, 512, 0, c->n_layers, T2_F16, NULL) == 0);
    if (!lb || !lb1 || !sb || !ss || !p1 || !p2) goto out;
    T2_CHECK(t2_forward(sb, p2, toks, NP, 0, lb) == 0);
    T2_CHECK(t2_forward(sb, p1, toks, NP, 0, lb1) == 0);
    T2_CHECK(!memcmp(lb, lb1, sizeof(float) * NP * V));
    double worst = 0;
    for (int i = 0; i < NP; i++) {
        T2_CHECK(t2_forward(ss, p2, &toks[i], 1, i, NULL) == 0);
        const float *x = t2_state_logits(ss);
        for (int v = 0; v < V; v++) {
            double d = fabs((double)x[v] - lb[(size_t)i * V + v]);
            worst = d > worst ? d : worst;
        }
    }
    T2_CHECK_MSG(worst < 1e-4, "batch vs step: %g", worst);
out:
    free(lb);
    free(lb1);
    t2_state_destroy(&sb);
    t2_state_destroy(&ss);
    t2_pool_destroy(&p1);
    t2_pool_destroy(&p2);
}

static void test_state_checks(void) {
    const t2_config *c = &model->cfg;
    t2_state *s = NULL;
    t2_kvpool *kv = NULL;
    T2_CHECK(t2_state_new_kv(&s, model, 1, c->seq_len + 1, 0, c->n_layers, T2_F16, NULL) ==
             T2_ERANGE);
    T2_CHECK(t2_state_new_kv(&s, model, 1, 64, 0, c->n_layers, T2_Q4_0, NULL) == T2_EINVAL);
    T2_CHECK(t2_kvpool_new(&kv, T2_F16, 1, c->n_kv_heads * c->head_dim, 2) == 0);
    T2_CHECK(t2_state_new_kv(&s, model, 1, 64, 0, c->n_layers, T2_F16, kv) == T2_EMISMATCH);
    T2_CHECK(t2_state_new_kv(&s, model, 1, 256, 0, 1, T2_F16, kv) == 0);
    if (s) {
        T2_CHECK(t2_state_reserve(s, 257) == T2_ERANGE); /* beyond the context */
        T2_CHECK(t2_state_reserve(s, 128) == 0);
        T2_CHECK(t2_state_reserve(s, 129) == T2_EBUSY); /* the pool's 2 blocks are held */
        T2_CHECK_EQ_INT(t2_state_kv_tokens(s), 128);
        t2_state_release(s);
        T2_CHECK_EQ_INT(t2_kvpool_n_free(kv), 2);
    }
    t2_state_destroy(&s);
    t2_kvpool_destroy(&kv);
    int ctx = 0;
    T2_CHECK(t2_kv_context(0, 131072, &ctx) == 0 && ctx == T2_DEFAULT_CONTEXT);
    T2_CHECK(t2_kv_context(0, 512, &ctx) == 0 && ctx == 512);
    T2_CHECK(t2_kv_context(100000, 131072, &ctx) == 0 && ctx == 100000);
    T2_CHECK(t2_kv_context(600, 512, &ctx) == T2_ERANGE);
}

int main(void) {
    t2_config c = {.dim = 64, .hidden_dim = 96, .n_layers = 2, .n_heads = 2, .n_kv_heads = 1,
                   .vocab_size = 61, .seq_len = 512};
    if (t2_model_init_random(&model, &c, 0, 5) < 0) {
        fprintf(stderr, "model: %s\n", t2_err_msg());
        return 1;
    }
    T2_RUN(test_pool_alone);
    T2_RUN(test_shared_pool);
    T2_RUN(test_prompt_tiles);
    T2_RUN(test_state_checks);
    t2_model_destroy(&model);
    return T2_TEST_END();
}
