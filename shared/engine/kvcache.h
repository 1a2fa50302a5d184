/* kvcache.h - the KV cache: its element types and a pool of fixed-size blocks (paged KV memory).
 *
 * A sequence's keys and values live in blocks of T2_KV_BLOCK tokens, taken from a t2_kvpool as
 * the sequence grows and given back when it ends, so memory follows the tokens in use, not
 * slots x context (the idea of vLLM's PagedAttention). One block holds, for each of the pool's
 * layers, the K rows then the V rows of its tokens:
 *   block (n_layers, 2, T2_KV_BLOCK, row_bytes),  row_bytes = t2_kv_row_bytes(type, K*h)
 * A row is K*h values of one token and one layer in the cache type: F32, F16 (the default of
 * the CLI and the deployment, as llama.cpp's) or Q8_0 (blocks of 32 values sharing an f16
 * scale; K*h must be a multiple of 32).
 *
 * A pool reserves its blocks as one anonymous mapping: pages become resident when first written,
 * so an unused pool costs address space only. Blocks are handed out last-freed first (warm).
 * Allocation and release are thread-safe. Block ids are int32 in [0, n_blocks).
 *
 * Prefix reuse. Blocks are reference-counted. A full block of a prompt, once written, may be
 * offered to the pool's cache (t2_kvpool_prefix_add) under a chained hash:
 *   key_0 = seed,  key_{i+1} = t2_kv_block_hash(key_i, tokens of block i)
 * where the seed names everything else the keys and values depend on: the weights in use (the
 * model, the mixture of experts and how it is applied) and the cache type (t2_kv_prefix_seed).
 * A match is verified against the stored parent key and tokens, not the hash alone. A new
 * sequence whose prompt starts with cached blocks maps them (t2_kvpool_prefix_map: reference
 * + 1) and runs only the rest. A cached block whose last holder lets go stays cached, idle, and
 * is taken back least recently used first when the free blocks run out: idle blocks count as
 * free (t2_kvpool_n_free). A holder never writes into a full block of its prompt again, so a
 * shared block is read-only. The same sequence of calls on two pools of the same size gives the
 * same block ids, hits and evictions on both (nothing depends on time or addresses): the ranks
 * of a worker group stay alike.
 */
#ifndef T2_KVCACHE_H
#define T2_KVCACHE_H

#include "engine/t2_types.h"

#include <stddef.h>
#include <stdint.h>

#define T2_KV_BLOCK 64            /* tokens per block */
#define T2_DEFAULT_CONTEXT 8192   /* context when none is given and the model's is longer */

typedef struct t2_kvpool t2_kvpool;

/* 1 if t is a KV cache type (F32, F16, Q8_0). */
int t2_kv_type_ok(t2_dtype t);
/* Parse "f32", "f16" or "q8_0" (any case); 0 or T2_EINVAL with the message set. */
int t2_kv_type_parse(const char *s, t2_dtype *out);
/* Bytes of one cache row of kv_dim values; 0 if the type cannot hold kv_dim values. */
size_t t2_kv_row_bytes(t2_dtype t, int kv_dim);
/* Bytes of one block for n_layers layers. */
size_t t2_kv_block_bytes(t2_dtype t, int n_layers, int kv_dim);
/* Blocks a sequence of n_tokens tokens needs. */
static inline int64_t t2_kv_blocks_for(int64_t n_tokens) {
    return (n_tokens + T2_KV_BLOCK - 1) / T2_KV_BLOCK;
}
/* The context to use: n if n > 0 (T2_ERANGE if longer than the model's seq_len), else the
 * model's seq_len capped at T2_DEFAULT_CONTEXT. */
int t2_kv_context(int n, int seq_len, int *out);

/* A pool of n_blocks blocks for n_layers layers of kv_dim values. Errors: T2_EINVAL (type,
 * sizes), T2_ENOMEM (no address space). */
int t2_kvpool_new(t2_kvpool **out, t2_dtype type, int n_layers, int kv_dim, int64_t n_blocks);
void t2_kvpool_destroy(t2_kvpool **p);
/* Take a free block (else the least recently used idle cached one, which leaves the cache):
 * 0 and *id (reference count 1), or T2_EBUSY (message set: blocks in use / total). */
int t2_kvpool_alloc(t2_kvpool *p, int32_t *id);
/* Drop one reference to block id; at 0 it is free, or idle if cached. A bad id or a block that
 * is not in use is ignored (returns T2_EINVAL). */
int t2_kvpool_free(t2_kvpool *p, int32_t id);

/* ---- prefix reuse ---- */
/* Mix n bytes of data into a seed h (start from 0): the weights' and the cache type's names. */
uint64_t t2_kv_prefix_seed(uint64_t h, const void *data, size_t n);
/* The key of a block of T2_KV_BLOCK tokens after the block (or seed) whose key is parent. */
uint64_t t2_kv_block_hash(uint64_t parent, const int *tokens);
/* How many of the first max_blocks full blocks of tokens (max_blocks x T2_KV_BLOCK tokens) are
 * cached under seed, in order from the first. With ids, those blocks are mapped (reference + 1,
 * out of the LRU list) into ids[0..k); with ids NULL nothing changes (a look). *n_idle (may be
 * NULL): how many of them were idle (they stop counting as free once mapped). */
int t2_kvpool_prefix_map(t2_kvpool *p, uint64_t seed, const int *tokens, int max_blocks,
                         int32_t *ids, int *n_idle);
/* Offer block id (held by the caller, its T2_KV_BLOCK rows written for tokens) to the cache as
 * the block after the one keyed parent; its key into *key (may be NULL). 0 if cached now, 1 if
 * it or an equal block is cached already (this one then stays private), T2_EINVAL if id is
 * not held. */
int t2_kvpool_prefix_add(t2_kvpool *p, int32_t id, uint64_t parent, const int *tokens,
                         uint64_t *key);
/* The most tokens (at most limit) of an n-token prompt that may come from the cache when the
 * rest runs in chunks of `batch` whose boundaries are those of a run from position 0 (multiples
 * of batch): whole blocks, leaving at least `keep` (>= 1) tokens to run (the last prompt
 * token's logits are needed), and never a first chunk of one token where the run from 0 has a
 * longer chunk (one token takes the matrix-vector kernels, whose bits differ from the
 * matrix-matrix ones). */
int t2_kv_prefix_max(int n, int keep, int batch, int limit);
/* The block's memory (block_bytes bytes). */
uint8_t *t2_kvpool_block(const t2_kvpool *p, int32_t id);

t2_dtype t2_kvpool_type(const t2_kvpool *p);
int t2_kvpool_n_layers(const t2_kvpool *p);
int t2_kvpool_kv_dim(const t2_kvpool *p);
int64_t t2_kvpool_n_blocks(const t2_kvpool *p);
/* Blocks a t2_kvpool_alloc can take: free plus idle cached ones. */
int64_t t2_kvpool_n_free(const t2_kvpool *p);
/* Idle cached blocks (reference 0); all cached blocks; blocks found by mapping calls so far. */
int64_t t2_kvpool_n_idle(const t2_kvpool *p);
int64_t t2_kvpool_n_cached(const t2_kvpool *p);
int64_t t2_kvpool_prefix_hits(const t2_kvpool *p);
/* Tests: the pool's lists and counts agree (every block free, idle or held exactly once, the
 * hash table holds the cached blocks). 0 or T2_EINVAL with the message set. */
int t2_kvpool_check(const t2_kvpool *p);
/* Blocks ever handed out (the high-water mark of resident memory). */
int64_t t2_kvpool_n_touched(const t2_kvpool *p);
size_t t2_kvpool_block_bytes(const t2_kvpool *p);

#endif
