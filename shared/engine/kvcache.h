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
/* Take a free block: 0 and *id, or T2_EBUSY (message set: blocks in use / total). */
int t2_kvpool_alloc(t2_kvpool *p, int32_t *id);
/* Give block id back. A bad id or a block that is not in use is ignored (returns T2_EINVAL). */
int t2_kvpool_free(t2_kvpool *p, int32_t id);
/* The block's memory (block_bytes bytes). */
uint8_t *t2_kvpool_block(const t2_kvpool *p, int32_t id);

t2_dtype t2_kvpool_type(const t2_kvpool *p);
int t2_kvpool_n_layers(const t2_kvpool *p);
int t2_kvpool_kv_dim(const t2_kvpool *p);
int64_t t2_kvpool_n_blocks(const t2_kvpool *p);
int64_t t2_kvpool_n_free(const t2_kvpool *p);
/* Blocks ever handed out (the high-water mark of resident memory). */
int64_t t2_kvpool_n_touched(const t2_kvpool *p);
size_t t2_kvpool_block_bytes(const t2_kvpool *p);

#endif
