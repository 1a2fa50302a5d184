/* transformer.h - the Llama forward pass with a KV cache.
 *
 * A t2_state holds what one sequence needs at run time: the KV cache (layers, n_ctx, K*h) and
 * activation buffers for up to max_batch tokens at once, all allocated in t2_state_new (nothing
 * is allocated per token). A state may cover only layers [l0, l1) of the model (a pipeline
 * stage): it then has KV cache for those layers only.
 *
 * Single sequence:
 *   t2_forward(s, pool, tokens, n, pos, NULL) runs n tokens at positions [pos, pos + n): one token
 *   takes the matrix-vector path (T2's SIMD kernels), several the matrix-matrix path (sgemm), in
 *   chunks of max_batch; it leaves the last token's logits in t2_state_logits().
 * Several sequences, one token each (continuous batching):
 *   t2_forward_step_multi(states, n, pool, tokens) reads each weight matrix once for all n
 *   sequences, and every sequence's numbers are bit-identical to what t2_forward computes for it
 *   alone: a result never depends on what else shares the batch.
 * Adaptation (SVF, svf.h): t2_state_set_adapt attaches a resolved mixture to a sequence; its
 *   targeted matrices then use W' (merged) or U (σ' ⊙ (Vᵀ x)) (factored). In a multi-sequence
 *   step, sequences with different mixtures share the factored products with U and Vᵀ.
 * Pipeline stages: t2_embed, t2_forward_layers and t2_forward_head are the three parts of
 *   t2_forward, for workers that hold a slice of the layers.
 */
#ifndef T2_TRANSFORMER_H
#define T2_TRANSFORMER_H

#include "engine/model.h"
#include "engine/kvcache.h"
#include "base/pool.h"

typedef struct t2_state t2_state;
struct t2_adapt;

/* n_ctx 0 means the model's seq_len. The model is borrowed and must outlive the state.
 * The KV cache is F32 in the state's own pool (t2_state_new_kv for others). */
int t2_state_new(t2_state **out, const t2_model *m, int max_batch, int n_ctx);
/* A state for layers [l0, l1) only (0 <= l0 < l1 <= n_layers). */
int t2_state_new_range(t2_state **out, const t2_model *m, int max_batch, int n_ctx, int l0, int l1);
/* The general constructor: a KV cache of kv_type (F32, F16, Q8_0) whose blocks come from pool
 * (borrowed, shared with other states; its type wins and it must be made for l1 - l0 layers of
 * K*h values), or, when pool is NULL, from the state's own pool of n_ctx tokens (resident as
 * written). Blocks are taken as the sequence grows (t2_forward takes those it needs, or fails
 * with T2_EBUSY when the pool has none left) and given back by t2_state_release. */
int t2_state_new_kv(t2_state **out, const t2_model *m, int max_batch, int n_ctx, int l0, int l1,
                    t2_dtype kv_type, t2_kvpool *pool);
void t2_state_destroy(t2_state **s);
int t2_state_n_ctx(const t2_state *s);
/* Hold blocks for positions [0, n_tokens): 0, T2_ERANGE (n_tokens > n_ctx) or T2_EBUSY (the
 * pool has too few free blocks; those taken stay with the state until released). */
int t2_state_reserve(t2_state *s, int n_tokens);
/* Give all the state's KV blocks back to its pool: the sequence ended. */
void t2_state_release(t2_state *s);
/* Prefix reuse (engine/kvcache.h): map the pool's cached blocks that hold the first tokens of
 * tokens under seed, at most max_tokens tokens (whole blocks), into a state that holds no
 * blocks (a new sequence). Returns the tokens mapped (a multiple of T2_KV_BLOCK, maybe 0): run
 * the rest from that position. */
int t2_state_prefix_map(t2_state *s, uint64_t seed, const int *tokens, int max_tokens);
/* Offer the state's full blocks of positions [0, n_tokens) (all written by now, tokens[] the
 * tokens at those positions, never written again by this sequence: its prompt) to the cache
 * under seed. Returns the blocks newly cached. */
int t2_state_prefix_publish(t2_state *s, uint64_t seed, const int *tokens, int n_tokens);
/* Bytes a state allocates besides its KV blocks (activations, attention scratch). */
size_t t2_state_scratch_bytes(const t2_model *m, int max_batch, int n_ctx, int n_threads);
/* Tokens the held blocks cover; the cache type. */
int t2_state_kv_tokens(const t2_state *s);
t2_dtype t2_state_kv_type(const t2_state *s);
/* The pool the state's blocks come from (its own or the one given). */
t2_kvpool *t2_state_kv_pool(const t2_state *s);
/* Called after each layer of a prompt chunk (t2_forward_layers with n > 1), on the calling
 * thread while the pool is idle: a server loop keeps its connections alive through a long
 * prefill (the worker head answers heartbeats). fn must not use the state. NULL: none. */
typedef void (*t2_layer_hook)(void *arg);
void t2_state_set_layer_hook(t2_state *s, t2_layer_hook fn, void *arg);
/* Attach an adaptation (borrowed; NULL = base weights). It must be made from factors of this
 * model and outlive its use by the state. */
void t2_state_set_adapt(t2_state *s, const struct t2_adapt *a);

/* Run tokens[0..n) at positions pos..pos+n-1 (positions before pos must have been run).
 * If logits_all is non-NULL, it receives n x V logits (row i after tokens[i]).
 * The state must cover all layers. Errors: T2_ERANGE (pos + n > n_ctx, a token outside the
 * vocabulary), T2_ENOMEM. */
int t2_forward(t2_state *s, t2_pool *pool, const int *tokens, int n, int pos, float *logits_all);

/* One token for each of n sequences: states[i] takes tokens[i] at position pos[i]. The states
 * must cover all layers and be distinct. Each state's logits are left in t2_state_logits. */
int t2_forward_step_multi(t2_state *const *states, int n, t2_pool *pool, const int *tokens,
                          const int *pos);

/* Logits (V floats) after the last token of the last forward. */
float *t2_state_logits(t2_state *s);

/* ---- pipeline stages ---- */
/* The activation buffer (max_batch x D) that stages read and write. */
float *t2_state_x(t2_state *s);
/* x[b] = embedding of tokens[b], for b < n (into t2_state_x). */
int t2_embed(t2_state *s, const int *tokens, int n);
/* Run the state's layers on its n activations at positions pos..pos+n-1 (n <= max_batch). */
int t2_forward_layers(t2_state *s, t2_pool *pool, int n, int pos);
/* Layers for n sequences, one activation each (at t2_state_x(states[i])), positions pos[i]. */
int t2_forward_layers_multi(t2_state *const *states, int n, t2_pool *pool, const int *pos);
/* Final norm and classifier on the state's n activations: logits of the last into
 * t2_state_logits, or all n rows into logits_all when non-NULL. */
int t2_forward_head(t2_state *s, t2_pool *pool, int n, float *logits_all);

#endif
