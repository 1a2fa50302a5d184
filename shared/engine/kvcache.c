#include "engine/kvcache.h"

#include "base/t2_err.h"

#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>

struct t2_kvpool {
    t2_dtype type;
    int n_layers, kv_dim;
    int64_t n_blocks, n_free, n_touched;
    size_t block_bytes;
    uint8_t *mem;      /* n_blocks * block_bytes (anonymous mapping) */
    int32_t *free_ids; /* stack of free ids: [0, n_free) */
    uint8_t *used;     /* n_blocks flags */
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

void t2_kvpool_destroy(t2_kvpool **pp) {
    if (!pp || !*pp) return;
    t2_kvpool *p = *pp;
    if (p->mem) munmap(p->mem, (size_t)p->n_blocks * p->block_bytes);
    free(p->free_ids);
    free(p->used);
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
    p->free_ids = malloc((size_t)n_blocks * sizeof *p->free_ids);
    p->used = calloc((size_t)n_blocks, 1);
    if (!p->mem || !p->free_ids || !p->used) {
        t2_kvpool_destroy(&p);
        return t2_err_set(T2_ENOMEM, "out of memory for a KV pool of %lld blocks (%zu MiB)",
                          (long long)n_blocks, (size_t)n_blocks * bb >> 20);
    }
    /* the stack pops low ids first, so a fresh pool fills from its start */
    for (int64_t i = 0; i < n_blocks; i++) p->free_ids[i] = (int32_t)(n_blocks - 1 - i);
    *out = p;
    return 0;
}

int t2_kvpool_alloc(t2_kvpool *p, int32_t *id) {
    pthread_mutex_lock(&p->mu);
    if (p->n_free == 0) {
        int64_t n = p->n_blocks;
        pthread_mutex_unlock(&p->mu);
        return t2_err_set(T2_EBUSY, "KV pool exhausted: all %lld blocks of %d tokens in use",
                          (long long)n, T2_KV_BLOCK);
    }
    int32_t b = p->free_ids[--p->n_free];
    p->used[b] = 1;
    if (b >= p->n_touched) p->n_touched = b + 1;
    pthread_mutex_unlock(&p->mu);
    *id = b;
    return 0;
}

int t2_kvpool_free(t2_kvpool *p, int32_t id) {
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (id < 0 || id >= p->n_blocks || !p->used[id])
        rc = T2_EINVAL;
    else {
        p->used[id] = 0;
        p->free_ids[p->n_free++] = id;
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

int64_t t2_kvpool_n_free(const t2_kvpool *p) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&p->mu;
    pthread_mutex_lock(mu);
    int64_t n = p->n_free;
    pthread_mutex_unlock(mu);
    return n;
}

int64_t t2_kvpool_n_touched(const t2_kvpool *p) {
    pthread_mutex_t *mu = (pthread_mutex_t *)&p->mu;
    pthread_mutex_lock(mu);
    int64_t n = p->n_touched;
    pthread_mutex_unlock(mu);
    return n;
}
