#include "engine/kvcache.h"

#include "base/t2_err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

/* A block is free (on the free stack), in use (ref > 0: held by that many sequences) or idle
 * (ref 0 but cached: on the LRU list, taken back when the free stack is empty). A cached block
 * is in the hash table under key[b], with the parent key and its tokens to verify a match. */
struct t2_kvpool {
    t2_dtype type;
    int n_layers, kv_dim;
    int64_t n_blocks, n_free, n_touched, n_idle, n_cached;
    size_t block_bytes;
    uint8_t *mem;      /* n_blocks * block_bytes (anonymous mapping) */
    int32_t *free_ids; /* stack of free ids: [0, n_free) */
    int32_t *ref;      /* (n_blocks) sequences holding the block */
    /* prefix cache */
    uint8_t *cached;       /* (n_blocks) in the hash table */
    uint64_t *key, *parent; /* (n_blocks) chained hash of the block and of the one before */
    int32_t *btok;         /* (n_blocks, T2_KV_BLOCK) the block's tokens */
    int32_t *bucket;       /* (n_buckets) first block of each hash chain, -1: none */
    int32_t *hnext;        /* (n_blocks) next block in the bucket */
    int32_t *lru_prev, *lru_next; /* (n_blocks) idle blocks, oldest first */
    int32_t lru_head, lru_tail;
    uint64_t n_buckets;    /* a power of two */
    int64_t hits, misses;  /* blocks found / not found by t2_kvpool_prefix_map */
    pthread_mutex_t mu;
};

int t2_kv_type_ok(t2_dtype t) { return t == T2_F32 || t == T2_F16 || t == T2_Q8_0; }

int t2_kv_type_parse(const char *s, t2_dtype *out) {
    t2_dtype t;
    if (!s || t2_dtype_parse(s, &t) < 0 || !t2_kv_type_ok(t))
        return t2_err_set(T2_EINVAL, "KV cache type '%s': expected f16, q8_0 or f32",
                          s ? s : "(null)");
    *out = t;
    return 0;
}

size_t t2_kv_row_bytes(t2_dtype t, int kv_dim) {
    if (!t2_kv_type_ok(t) || kv_dim <= 0) return 0;
    return t2_dtype_row_bytes(t, kv_dim);
}

size_t t2_kv_block_bytes(t2_dtype t, int n_layers, int kv_dim) {
    return (size_t)n_layers * 2 * T2_KV_BLOCK * t2_kv_row_bytes(t, kv_dim);
}

int t2_kv_context(int n, int seq_len, int *out) {
    if (n > seq_len)
        return t2_err_set(T2_ERANGE, "context %d is longer than the model's %d", n, seq_len);
    if (n < 0) return t2_err_set(T2_ERANGE, "context %d < 0", n);
    *out = n > 0 ? n : seq_len < T2_DEFAULT_CONTEXT ? seq_len : T2_DEFAULT_CONTEXT;
    return 0;
}

int t2_kv_prefix_max(int n, int keep, int batch, int limit) {
    if (keep < 1) keep = 1;
    if (limit > n - keep) limit = n - keep;
    if (limit < T2_KV_BLOCK || batch < 1) return 0;
    int r = limit / T2_KV_BLOCK * T2_KV_BLOCK;
    for (; r > 0; r -= T2_KV_BLOCK) {
        const int grid = r / batch * batch, end = grid + batch < n ? grid + batch : n;
        if (r == grid || end - r > 1) break; /* the same chunk as from 0, or more than 1 token */
    }
    return r;
}

void t2_kvpool_destroy(t2_kvpool **pp) {
    if (!pp || !*pp) return;
    t2_kvpool *p = *pp;
    if (p->mem) munmap(p->mem, (size_t)p->n_blocks * p->block_bytes);
    free(p->free_ids);
    free(p->ref);
    free(p->cached);
    free(p->key);
    free(p->parent);
    free(p->btok);
    free(p->bucket);
    free(p->hnext);
    free(p->lru_prev);
    free(p->lru_next);
    pthread_mutex_destroy(&p->mu);
    free(p);
    *pp = NULL;
}

int t2_kvpool_new(t2_kvpool **out, t2_dtype type, int n_layers, int kv_dim, int64_t n_blocks) {
    *out = NULL;
    size_t bb = t2_kv_block_bytes(type, n_layers, kv_dim);
    if (!t2_kv_type_ok(type))
        return t2_err_set(T2_EINVAL, "KV pool: type %s is not a KV cache type",
                          t2_dtype_name(type));
    if (n_layers <= 0 || kv_dim <= 0 || !bb)
        return t2_err_set(T2_EINVAL, "KV pool: %s cannot hold rows of %d values (%d layers)%s",
                          t2_dtype_name(type), kv_dim, n_layers,
                          type == T2_Q8_0 ? ": Q8_0 needs a multiple of 32" : "");
    if (n_blocks <= 0 || n_blocks > INT32_MAX || (uint64_t)n_blocks > SIZE_MAX / 2 / bb)
        return t2_err_set(T2_EINVAL, "KV pool: %lld blocks out of range", (long long)n_blocks);
    t2_kvpool *p = calloc(1, sizeof *p);
    if (!p) return t2_err_set(T2_ENOMEM, "out of memory for the KV pool");
    pthread_mutex_init(&p->mu, NULL);
    p->type = type;
    p->n_layers = n_layers;
    p->kv_dim = kv_dim;
    p->n_blocks = p->n_free = n_blocks;
    p->block_bytes = bb;
    void *mem = mmap(NULL, (size_t)n_blocks * bb, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    p->mem = mem == MAP_FAILED ? NULL : mem;
    const size_t nb = (size_t)n_blocks;
    for (p->n_buckets = 16; p->n_buckets < (uint64_t)nb; p->n_buckets *= 2) {}
    p->free_ids = malloc(nb * sizeof *p->free_ids);
    p->ref = calloc(nb, sizeof *p->ref);
    p->cached = calloc(nb, 1);
    p->key = malloc(nb * sizeof *p->key);
    p->parent = malloc(nb * sizeof *p->parent);
    p->btok = malloc(nb * T2_KV_BLOCK * sizeof *p->btok);
    p->bucket = malloc(p->n_buckets * sizeof *p->bucket);
    p->hnext = malloc(nb * sizeof *p->hnext);
    p->lru_prev = malloc(nb * sizeof *p->lru_prev);
    p->lru_next = malloc(nb * sizeof *p->lru_next);
    if (!p->mem || !p->free_ids || !p->ref || !p->cached || !p->key || !p->parent || !p->btok ||
        !p->bucket || !p->hnext || !p->lru_prev || !p->lru_next) {
        t2_kvpool_destroy(&p);
        return t2_err_set(T2_ENOMEM, "out of memory for a KV pool of %lld blocks (%zu MiB)",
                          (long long)n_blocks, (size_t)n_blocks * bb >> 20);
    }
    /* the stack pops low ids first, so a fresh pool fills from its start */
    for (int64_t i = 0; i < n_blocks; i++) p->free_ids[i] = (int32_t)(n_blocks - 1 - i);
    for (uint64_t i = 0; i < p->n_buckets; i++) p->bucket[i] = -1;
    p->lru_head = p->lru_tail = -1;
    *out = p;
    return 0;
}

/* ---- the LRU list of idle cached blocks and the hash table (callers hold mu) ---- */

static void lru_remove(t2_kvpool *p, int32_t b) {
    const int32_t pv = p->lru_prev[b], nx = p->lru_next[b];
    if (pv >= 0) p->lru_next[pv] = nx; else p->lru_head = nx;
    if (nx >= 0) p->lru_prev[nx] = pv; else p->lru_tail = pv;
    p->n_idle--;
}

static void lru_append(t2_kvpool *p, int32_t b) {
    p->lru_prev[b] = p->lru_tail;
    p->lru_next[b] = -1;
    if (p->lru_tail >= 0) p->lru_next[p->lru_tail] = b; else p->lru_head = b;
    p->lru_tail = b;
    p->n_idle++;
}

static uint64_t bucket_of(const t2_kvpool *p, uint64_t key) { return key & (p->n_buckets - 1); }

static void hash_remove(t2_kvpool *p, int32_t b) {
    int32_t *at = &p->bucket[bucket_of(p, p->key[b])];
    while (*at != b) at = &p->hnext[*at];
    *at = p->hnext[b];
    p->cached[b] = 0;
    p->n_cached--;
}

/* The cached block of (key, parent, tokens), or -1. */
static int32_t hash_find(const t2_kvpool *p, uint64_t key, uint64_t parent, const int *tokens) {
    for (int32_t b = p->bucket[bucket_of(p, key)]; b >= 0; b = p->hnext[b]) {
        if (p->key[b] != key || p->parent[b] != parent) continue;
        const int32_t *bt = p->btok + (size_t)b * T2_KV_BLOCK;
        int same = 1;
        for (int i = 0; i < T2_KV_BLOCK && same; i++) same = bt[i] == tokens[i];
        if (same) return b;
    }
    return -1;
}

int t2_kvpool_alloc(t2_kvpool *p, int32_t *id) {
    pthread_mutex_lock(&p->mu);
    int32_t b;
    if (p->n_free > 0) {
        b = p->free_ids[--p->n_free];
    } else if (p->lru_head >= 0) { /* evict the least recently used idle cached block */
        b = p->lru_head;
        lru_remove(p, b);
        hash_remove(p, b);
    } else {
        int64_t n = p->n_blocks;
        pthread_mutex_unlock(&p->mu);
        return t2_err_set(T2_EBUSY, "KV pool exhausted: all %lld blocks of %d tokens in use",
                          (long long)n, T2_KV_BLOCK);
    }
    p->ref[b] = 1;
    if (b >= p->n_touched) p->n_touched = b + 1;
    pthread_mutex_unlock(&p->mu);
    *id = b;
    return 0;
}

int t2_kvpool_free(t2_kvpool *p, int32_t id) {
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (id < 0 || id >= p->n_blocks || p->ref[id] <= 0)
        rc = T2_EINVAL;
    else if (--p->ref[id] == 0) {
        if (p->cached[id])
            lru_append(p, id); /* stays cached until the pool needs it */
        else
            p->free_ids[p->n_free++] = id;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- prefix reuse ---- */

static uint64_t mix64(uint64_t x) { /* a bijective 64-bit finaliser (splitmix64's) */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t t2_kv_prefix_seed(uint64_t h, const void *data, size_t n) {
    const uint8_t *b = data;
    h = mix64(h ^ (0x9e3779b97f4a7c15ULL + n));
    for (size_t i = 0; i < n; i++) h = mix64(h ^ ((uint64_t)b[i] << 8 | 0x5a));
    return h;
}

uint64_t t2_kv_block_hash(uint64_t parent, const int *tokens) {
    uint64_t h = mix64(parent ^ 0x243f6a8885a308d3ULL);
    for (int i = 0; i < T2_KV_BLOCK; i++)
        h = mix64(h + 0x9e3779b97f4a7c15ULL * (1 + (uint64_t)(uint32_t)tokens[i]));
    return h;
}

int t2_kvpool_prefix_map(t2_kvpool *p, uint64_t seed, const int *tokens, int max_blocks,
                         int32_t *ids, int *n_idle) {
    int k = 0, idle = 0;
    uint64_t parent = seed;
    pthread_mutex_lock(&p->mu);
    for (; k < max_blocks; k++) {
        const int *t = tokens + (size_t)k * T2_KV_BLOCK;
        const uint64_t key = t2_kv_block_hash(parent, t);
        const int32_t b = hash_find(p, key, parent, t);
        if (b < 0) break;
        idle += p->ref[b] == 0;
        if (ids) {
            if (p->ref[b] == 0) lru_remove(p, b);
            p->ref[b]++;
            ids[k] = b;
        }
        parent = key;
    }
    if (ids) {
        p->hits += k;
        p->misses += max_blocks - k;
    }
    pthread_mutex_unlock(&p->mu);
    if (n_idle) *n_idle = idle;
    return k;
}

int t2_kvpool_prefix_add(t2_kvpool *p, int32_t id, uint64_t parent, const int *tokens,
                         uint64_t *key) {
    const uint64_t k = t2_kv_block_hash(parent, tokens);
    int rc = 0;
    if (key) *key = k;
    pthread_mutex_lock(&p->mu);
    if (id < 0 || id >= p->n_blocks || p->ref[id] <= 0)
        rc = T2_EINVAL;
    else if (p->cached[id] || hash_find(p, k, parent, tokens) >= 0)
        rc = 1; /* cached already (this block, or an equal one computed alongside) */
    else {
        p->cached[id] = 1;
        p->key[id] = k;
        p->parent[id] = parent;
        memcpy(p->btok + (size_t)id * T2_KV_BLOCK, tokens, T2_KV_BLOCK * sizeof *tokens);
        int32_t *head = &p->bucket[bucket_of(p, k)];
        p->hnext[id] = *head;
        *head = id;
        p->n_cached++;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

uint8_t *t2_kvpool_block(const t2_kvpool *p, int32_t id) {
    return p->mem + (size_t)id * p->block_bytes;
}

t2_dtype t2_kvpool_type(const t2_kvpool *p) { return p->type; }
int t2_kvpool_n_layers(const t2_kvpool *p) { return p->n_layers; }
int t2_kvpool_kv_dim(const t2_kvpool *p) { return p->kv_dim; }
int64_t t2_kvpool_n_blocks(const t2_kvpool *p) { return p->n_blocks; }
size_t t2_kvpool_block_bytes(const t2_kvpool *p) { return p->block_bytes; }

int t2_kvpool_check(const t2_kvpool *p) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&p->mu;
    const char *bad = NULL;
    int64_t in_use = 0, on_free = 0, on_lru = 0, in_hash = 0, zero = 0;
    pthread_mutex_lock(mu);
    for (int64_t b = 0; b < p->n_blocks; b++) {
        if (p->ref[b] < 0) bad = "a negative reference count";
        in_use += p->ref[b] > 0;
        zero += p->ref[b] == 0;
    }
    for (int64_t i = 0; i < p->n_free && !bad; i++, on_free++)
        if (p->ref[p->free_ids[i]] || p->cached[p->free_ids[i]]) bad = "a held block is free";
    for (int32_t b = p->lru_head; b >= 0 && !bad && on_lru <= p->n_blocks; b = p->lru_next[b]) {
        if (p->ref[b] || !p->cached[b]) bad = "a held or uncached block is idle";
        on_lru++;
    }
    for (uint64_t k = 0; k < p->n_buckets && !bad; k++)
        for (int32_t b = p->bucket[k]; b >= 0 && in_hash <= p->n_blocks; b = p->hnext[b]) {
            if (!p->cached[b] || bucket_of(p, p->key[b]) != k) bad = "a stray hash entry";
            in_hash++;
        }
    if (!bad && (on_lru != p->n_idle || in_hash != p->n_cached || on_free + on_lru != zero ||
                 in_use + zero != p->n_blocks))
        bad = "counts disagree";
    pthread_mutex_unlock(mu);
    if (bad)
        return t2_err_set(T2_EINVAL, "KV pool: %s (in use %lld, free %lld, idle %lld/%lld, "
                          "cached %lld/%lld)", bad, (long long)in_use, (long long)on_free,
                          (long long)on_lru, (long long)p->n_idle, (long long)in_hash,
                          (long long)p->n_cached);
    return 0;
}

/* One counter read under the lock. */
static int64_t read_locked(const t2_kvpool *p, const int64_t *v) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&p->mu;
    pthread_mutex_lock(mu);
    int64_t n = *v;
    pthread_mutex_unlock(mu);
    return n;
}

int64_t t2_kvpool_n_free(const t2_kvpool *p) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&p->mu;
    pthread_mutex_lock(mu);
    int64_t n = p->n_free + p->n_idle;
    pthread_mutex_unlock(mu);
    return n;
}

int64_t t2_kvpool_n_idle(const t2_kvpool *p) { return read_locked(p, &p->n_idle); }
int64_t t2_kvpool_n_cached(const t2_kvpool *p) { return read_locked(p, &p->n_cached); }
int64_t t2_kvpool_prefix_hits(const t2_kvpool *p) { return read_locked(p, &p->hits); }

int64_t t2_kvpool_n_touched(const t2_kvpool *p) { return read_locked(p, &p->n_touched); }
