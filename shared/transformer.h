/* transformer.h - the Llama forward pass with a KV cache.
 *
 * A t2_state holds everything one sequence needs at run time: the KV cache (L, n_ctx, K*h) and
 * activation buffers for up to max_batch tokens at once, all allocated in t2_state_new (nothing
 * is allocated per token). t2_forward runs n tokens at positions [pos, pos + n): one token takes
 * the matrix-vector path (T2's SIMD kernels), several take the matrix-matrix path (sgemm), in
 * chunks of max_batch. It leaves the logits of the last token in t2_state_logits().
 *
 *   t2_state *s; t2_state_new(&s, model, 64, 0);
 *   t2_forward(s, pool, prompt, n_prompt, 0, NULL);       // prompt as a batch
 *   next = argmax(t2_state_logits(s)); t2_forward(s, pool, &next, 1, n_prompt, NULL); ...
 */
#ifndef T2_TRANSFORMER_H
#define T2_TRANSFORMER_H

#include "model.h"
#include "pool.h"

typedef struct t2_state t2_state;

/* n_ctx 0 means the model's seq_len. The model is borrowed and must outlive the state. */
int t2_state_new(t2_state **out, const t2_model *m, int max_batch, int n_ctx);
void t2_state_destroy(t2_state **s);
int t2_state_n_ctx(const t2_state *s);

/* Run tokens[0..n) at positions pos..pos+n-1 (positions before pos must have been run).
 * If logits_all is non-NULL, it receives n x V logits (row i after tokens[i]).
 * Errors: T2_ERANGE (pos + n > n_ctx, a token outside the vocabulary), T2_ENOMEM. */
int t2_forward(t2_state *s, t2_pool *pool, const int *tokens, int n, int pos, float *logits_all);

/* Logits (V floats) after the last token of the last t2_forward. */
float *t2_state_logits(t2_state *s);

#endif
