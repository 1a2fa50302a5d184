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
 * - the cache types and the context checks of t2_state_new_kv / t2_state_reserve;
 * - prefix reuse in the pool alone: reference counts, chained keys verified against tokens and
 *   seed, idle blocks counted free and evicted least recently used first, the pool's lists
 *   consistent (t2_kvpool_check);
 * - prefix reuse under load: many sequences of random lengths, most starting with one of three
 *   shared "system prompts" under one of two seeds (two mixtures), prefilled chunk by chunk and
 *   decoded, randomly interleaved, on a pool far smaller than their total: each maps the cached
 *   blocks of its prefix, runs the rest, offers its prompt's blocks, and its logits at every
 *   step are bit-identical to the same tokens run from position 0 in a private cache.
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

static void test_prefix_max(void) {
    T2_CHECK_EQ_INT(t2_kv_prefix_max(64, 1, 128, 64), 0); /* the last token is never reused */
    T2_CHECK_EQ_INT(t2_kv_prefix_max(65, 1, 128, 65), 0); /* [64, 65) alone, [0, 65) from 0 */
    T2_CHECK_EQ_INT(t2_kv_prefix_max(66, 1, 128, 66), 64);
    T2_CHECK_EQ_INT(t2_kv_prefix_max(129, 1, 128, 129), 128); /* [128, 129) is 1 token from 0 too */
    T2_CHECK_EQ_INT(t2_kv_prefix_max(200, 8, 128, 200), 192);
    T2_CHECK_EQ_INT(t2_kv_prefix_max(200, 9, 128, 200), 128);
    T2_CHECK_EQ_INT(t2_kv_prefix_max(129, 1, 65, 129), 0);   /* [128, 129) and [64, 65) alone */
    T2_CHECK_EQ_INT(t2_kv_prefix_max(131, 1, 65, 131), 128); /* [128, 130) */
    T2_CHECK_EQ_INT(t2_kv_prefix_max(1000, 1, 1, 1000), 960);
    T2_CHECK_EQ_INT(t2_kv_prefix_max(1000, 1, 128, 900), 896);
    T2_CHECK_EQ_INT(t2_kv_prefix_max(1000, 1, 128, 63), 0);
    T2_CHECK_EQ_INT(t2_kv_prefix_max(131, 1, 65, 127), 0); /* 64: [64, 65) alone */
}

/* n blocks of tokens keyed under seed: held, written and offered to the cache. */
static void add_chain(t2_kvpool *p, uint64_t seed, const int *toks, int n, int32_t *ids) {
    uint64_t parent = seed;
    for (int i = 0; i < n; i++) {
        T2_CHECK(t2_kvpool_alloc(p, &ids[i]) == 0);
        T2_CHECK(t2_kvpool_prefix_add(p, ids[i], parent, toks + i * T2_KV_BLOCK, &parent) == 0);
    }
}

static void test_prefix_pool(void) {
    enum { N = 8, B = T2_KV_BLOCK };
    t2_kvpool *p = NULL;
    T2_CHECK(t2_kvpool_new(&p, T2_F16, 1, 32, N) == 0);
    if (!p) return;
    int toks[3 * B], other[3 * B];
    for (int i = 0; i < 3 * B; i++) toks[i] = other[i] = i * 7 % 101;
    other[B + 5]++; /* the second block differs */
    const uint64_t s1 = t2_kv_prefix_seed(0, "expert-a", 8), s2 = t2_kv_prefix_seed(0, "b", 1);
    T2_CHECK(s1 != s2);
    int32_t a[3], m[3], x[N];
    int idle = -1;
    add_chain(p, s1, toks, 3, a);
    T2_CHECK_EQ_INT(t2_kvpool_n_cached(p), 3);
    T2_CHECK_EQ_INT(t2_kvpool_prefix_map(p, s1, toks, 3, NULL, &idle), 3); /* a look */
    T2_CHECK_EQ_INT(idle, 0);
    T2_CHECK_EQ_INT(t2_kvpool_prefix_map(p, s2, toks, 3, NULL, NULL), 0); /* other weights */
    T2_CHECK_EQ_INT(t2_kvpool_prefix_map(p, s1, other, 3, NULL, NULL), 1);
    T2_CHECK_EQ_INT(t2_kvpool_prefix_map(p, s1, toks + B, 2, NULL, NULL), 0); /* not a prefix */
    /* a second holder, then the first lets go (last block first, as t2_state_release) */
    T2_CHECK_EQ_INT(t2_kvpool_prefix_map(p, s1, toks, 3, m, NULL), 3);
    for (int i = 0; i < 3; i++) T2_CHECK_EQ_INT(m[i], a[i]);
    for (int i = 2; i >= 0; i--) T2_CHECK(t2_kvpool_free(p, a[i]) == 0);
    T2_CHECK_EQ_INT(t2_kvpool_n_idle(p), 0);
    T2_CHECK_EQ_INT(t2_kvpool_n_free(p), N - 3);
    for (int i = 2; i >= 0; i--) T2_CHECK(t2_kvpool_free(p, m[i]) == 0);
    T2_CHECK(t2_kvpool_free(p, m[0]) == T2_EINVAL); /* idle: not held */
    T2_CHECK_EQ_INT(t2_kvpool_n_idle(p), 3);
    T2_CHECK_EQ_INT(t2_kvpool_n_free(p), N); /* idle blocks count as free */
    T2_CHECK(t2_kvpool_check(p) == 0);
    /* the free blocks go first; then the least recently used idle one: the chain's last */
    for (int i = 0; i < N - 3; i++) T2_CHECK(t2_kvpool_alloc(p, &x[i]) == 0);
    T2_CHECK_EQ_INT(t2_kvpool_n_cached(p), 3);
    T2_CHECK(t2_kvpool_alloc(p, &x[N - 3]) == 0 && x[N - 3] == a[2]);
    T2_CHECK_EQ_INT(t2_kvpool_n_cached(p), 2);
    T2_CHECK_EQ_INT(t2_kvpool_prefix_map(p, s1, toks, 3, m, &idle), 2);
    T2_CHECK_EQ_INT(idle, 2);
    T2_CHECK(t2_kvpool_alloc(p, &x[N - 2]) == T2_EBUSY); /* mapped blocks are not evicted */
    T2_CHECK(t2_kvpool_check(p) == 0);
    /* an equal block computed alongside stays private; its key is still returned */
    uint64_t k0 = 0, k1 = 0;
    T2_CHECK(t2_kvpool_free(p, x[0]) == 0 && t2_kvpool_alloc(p, &x[0]) == 0);
    T2_CHECK_EQ_INT(t2_kvpool_prefix_add(p, x[0], s1, toks, &k0), 1);
    T2_CHECK(k0 == t2_kv_block_hash(s1, toks));
    k1 = t2_kv_block_hash(k0, toks + B);
    T2_CHECK_EQ_INT(t2_kvpool_prefix_add(p, x[0], k1, toks + 2 * B, NULL), 0); /* block 2 */
    T2_CHECK_EQ_INT(t2_kvpool_prefix_add(p, x[0], k1, toks + 2 * B, NULL), 1); /* twice */
    T2_CHECK(t2_kvpool_prefix_add(p, N, s1, toks, NULL) == T2_EINVAL);
    T2_CHECK_EQ_INT(t2_kvpool_prefix_map(p, s1, toks, 3, NULL, NULL), 3); /* via x[0] */
    for (int i = 0; i < N - 2; i++) T2_CHECK(t2_kvpool_free(p, x[i]) == 0);
    for (int i = 0; i < 2; i++) T2_CHECK(t2_kvpool_free(p, m[i]) == 0);
    T2_CHECK_EQ_INT(t2_kvpool_n_free(p), N);
    T2_CHECK(t2_kvpool_check(p) == 0);
    t2_kvpool_destroy(&p);
}

enum { NPS = 8, PB = 24 }; /* sequences in flight; prompt batch (not a divisor of 64) */

typedef struct {
    t2_state *st, *ref;
    int toks[512];
    int np, len, pos, reused; /* prompt, total tokens, next position; active when len > 0 */
    uint64_t seed;
} pseq;

typedef struct {
    int sys[3][300], nsys[3]; /* the shared prefixes */
    uint64_t seeds[2];
    int64_t reused, prompt, hits_cmp, busy, done;
} pworld;

static void pseq_start(pworld *w, pseq *s, t2_rand *rng) {
    const int V = model->cfg.vocab_size, f = (int)t2_rand_below(rng, 4); /* 3: no shared prefix */
    int n = 0;
    if (f < 3)
        for (; n < w->nsys[f]; n++) s->toks[n] = w->sys[f][n];
    const int user = 1 + (int)t2_rand_below(rng, 90);
    for (int i = 0; i < user; i++) s->toks[n++] = (int)t2_rand_below(rng, V);
    s->np = n;
    s->len = n + (int)t2_rand_below(rng, 40);
    s->seed = w->seeds[t2_rand_below(rng, 2)];
    const int found = t2_kvpool_prefix_map(t2_state_kv_pool(s->st), s->seed, s->toks,
                                           n / T2_KV_BLOCK, NULL, NULL) * T2_KV_BLOCK;
    s->reused = t2_state_prefix_map(s->st, s->seed, s->toks, t2_kv_prefix_max(n, 1, PB, found));
    T2_CHECK_EQ_INT(s->reused, t2_kv_prefix_max(n, 1, PB, found));
    s->pos = s->reused;
    for (int i = n; i < s->len; i++) s->toks[i] = (int)t2_rand_below(rng, V);
    w->reused += s->reused;
    w->prompt += n;
}

static void pseq_end(pseq *s) {
    t2_state_release(s->st);
    t2_state_release(s->ref);
    s->len = 0;
}

/* One prompt chunk (chunk boundaries as from position 0) or one decode step; 0 when the pool is
 * full, 1 when it ran. At the prompt's end the reference runs the prompt from 0, and from then on
 * each step's logits must be the reference's bits. */
static int pseq_step(pworld *w, pseq *s, t2_pool *pool) {
    const int V = model->cfg.vocab_size;
    int n = s->pos < s->np ? s->np - s->pos : 1;
    if (s->pos < s->np && n > PB - s->pos % PB) n = PB - s->pos % PB;
    int rc = t2_forward(s->st, pool, s->toks + s->pos, n, s->pos, NULL);
    if (rc == T2_EBUSY) return 0;
    T2_CHECK_EQ_INT(rc, 0);
    if (s->pos + n == s->np) {
        t2_state_prefix_publish(s->st, s->seed, s->toks, s->np - 1);
        T2_CHECK(t2_forward(s->ref, pool, s->toks, s->np, 0, NULL) == 0);
    } else if (s->pos >= s->np) {
        T2_CHECK(t2_forward(s->ref, pool, s->toks + s->pos, 1, s->pos, NULL) == 0);
    }
    if (s->pos + n >= s->np) {
        T2_CHECK_MSG(!memcmp(t2_state_logits(s->st), t2_state_logits(s->ref), V * sizeof(float)),
                     "position %d (prompt %d, %d reused): logits differ from the private "
                     "cache's", s->pos + n - 1, s->np, s->reused);
        w->hits_cmp += s->reused > 0;
    }
    s->pos += n;
    return 1;
}

static void test_prefix_load(void) {
    const t2_config *c = &model->cfg;
    const int64_t nblocks = 26; /* 8 sequences of up to 7 blocks each, some shared */
    t2_kvpool *kv = NULL;
    t2_pool *pool = NULL;
    T2_CHECK(t2_kvpool_new(&kv, T2_F16, c->n_layers, c->n_kv_heads * c->head_dim, nblocks) == 0);
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    if (!kv || !pool) goto out;
    pworld w = {.nsys = {70, 200, 300}};
    t2_rand rng;
    t2_rand_seed(&rng, 99);
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < w.nsys[f]; i++) w.sys[f][i] = (int)t2_rand_below(&rng, c->vocab_size);
    w.sys[1][0] = w.sys[0][0]; /* families may share a first token, not a first block */
    w.seeds[0] = t2_kv_prefix_seed(0, "mixture 1", 9);
    w.seeds[1] = t2_kv_prefix_seed(0, "mixture 2", 9);
    pseq sq[NPS] = {0};
    for (int i = 0; i < NPS; i++) {
        T2_CHECK(t2_state_new_kv(&sq[i].st, model, PB, 512, 0, c->n_layers, T2_F16, kv) == 0);
        T2_CHECK(t2_state_new_kv(&sq[i].ref, model, PB, 512, 0, c->n_layers, T2_F16, NULL) == 0);
        if (!sq[i].st || !sq[i].ref) goto out_states;
    }
    for (int step = 0; step < 4000 && t2_test_failed_checks == 0; step++) {
        pseq *s = &sq[t2_rand_below(&rng, NPS)];
        if (!s->len) pseq_start(&w, s, &rng);
        if (!pseq_step(&w, s, pool)) {
            w.busy++;
            pseq_end(s);
        } else if (s->pos == s->len) {
            w.done++;
            pseq_end(s);
        }
        T2_CHECK(t2_kvpool_check(kv) == 0);
    }
    printf("  %lld sequences done, %lld on a full pool; %lld of %lld prompt tokens reused, "
           "%lld blocks found, %lld compared steps after a reuse\n", (long long)w.done,
           (long long)w.busy, (long long)w.reused, (long long)w.prompt,
           (long long)t2_kvpool_prefix_hits(kv), (long long)w.hits_cmp);
    T2_CHECK(w.done > 50 && w.busy > 0 && w.reused > w.prompt / 4 && w.hits_cmp > 100);
out_states:
    for (int i = 0; i < NPS; i++) {
        t2_state_destroy(&sq[i].st);
        t2_state_destroy(&sq[i].ref);
    }
    if (kv) {
        T2_CHECK_EQ_INT(t2_kvpool_n_free(kv), nblocks);
        T2_CHECK(t2_kvpool_n_idle(kv) > 0);
        T2_CHECK(t2_kvpool_check(kv) == 0);
    }
out:
    t2_kvpool_destroy(&kv);
    t2_pool_destroy(&pool);
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
    T2_RUN(test_prefix_max);
    T2_RUN(test_prefix_pool);
    T2_RUN(test_prefix_load);
    t2_model_destroy(&model);
    return T2_TEST_END();
}
