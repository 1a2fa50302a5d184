/* lora.h - low-rank adapters (LoRA) on a trainer's weight matrices: the baseline SVF is
 * compared with (Transformer², Table 1). For each targeted matrix W0 (rows x cols):
 *
 *     W = W0 + scale * B A,    A (r x cols), B (rows x r), scale = alpha / r
 *
 * A starts random (uniform in +-1/sqrt(cols)), B at zero, so training starts from the base
 * model. The adapters live beside a full-weight t2_train: t2_lora_apply writes W into the
 * trainer's parameters, the trainer's forward and backward run as usual, and t2_lora_grads turns
 * the dense gradient dW of each target into the adapters' gradients by the chain rule,
 *     dA = scale * B^T dW,    dB = scale * dW A^T,
 * which is exact (W is linear in A and in B). The trainer's other parameters stay frozen: only
 * A and B are updated (t2_lora_update). Cost: the dense backward plus two small products per
 * target; fine for T2's bundled model, wasteful for big ones (a baseline, not a product).
 */
#ifndef T2_LORA_H
#define T2_LORA_H

#include "train/train.h"

#include <stddef.h>
#include <stdint.h>

typedef struct t2_lora t2_lora;

/* Adapters of rank `rank` (1..min(rows, cols)) on the targets (mask of 1 << T2_TGT_*) of every
 * layer of a full-weight trainer (not in SVF mode). The trainer's current weights become W0.
 * alpha <= 0 means alpha = rank (scale 1). Errors: T2_EINVAL, T2_ENOMEM. */
int t2_lora_new(t2_lora **out, t2_train *tr, unsigned targets, int rank, float alpha,
                uint64_t seed);
void t2_lora_destroy(t2_lora **lo);

/* W = W0 + scale * B A for every target, into the trainer's parameters. */
void t2_lora_apply(t2_lora *lo, t2_pool *pool);
/* The adapters' gradients from the trainer's dense gradients of the last backward (added to
 * the adapters' gradient block, which t2_lora_zero_grad clears). */
void t2_lora_grads(t2_lora *lo, t2_pool *pool);
void t2_lora_zero_grad(t2_lora *lo);

/* All A and B values, and their gradients, as flat blocks of n floats (what to allreduce). */
float *t2_lora_params(t2_lora *lo, size_t *n);
float *t2_lora_grads_buf(t2_lora *lo, size_t *n);
/* Global L2 norm of the gradients; scaled down to max_norm if above (> 0). Returns the norm
 * before clipping. */
float t2_lora_clip_grad(t2_lora *lo, float max_norm);
/* One Adam step (weight decay from o, on A and B). Then call t2_lora_apply. */
int t2_lora_update(t2_lora *lo, float lr, const t2_adamw_opts *o);

#endif
