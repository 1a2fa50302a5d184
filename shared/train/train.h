/* train.h - training a Llama-family model in C: full weights, or SVF experts.
 *
 * A t2_train holds an F32 copy of every parameter of a t2_model in one malloc'd block with a
 * pointer table (t2_train_params), the gradients in a block of the same layout, the saved
 * activations of the last forward, and AdamW's moments. It runs the same model as the inference
 * engine (RMSNorm, RoPE on adjacent pairs, grouped-query attention, SwiGLU, tied or separate
 * classifier) over a batch of B sequences of T tokens, and differentiates a weighted
 * cross-entropy:
 *
 *     loss = sum_t w_t * (-log p(y_t)) / norm            (targets < 0 are ignored)
 *
 * so that pretraining (w = 1, norm = number of tokens) and REINFORCE (w_t = reward of the
 * sequence, possibly negative) are the same call. With data parallelism every rank passes the
 * GLOBAL norm: the per-rank losses and gradients then simply add up (MPI_Allreduce of
 * t2_train_grads_buf).
 *
 * SVF mode (docs/DESIGN.md §3, §7): for chosen target matrices W = U diag(sigma) V^T (factors
 * given by the caller), the forward uses W' = U diag(s_eff) V^T with
 *     m = act(p),  s_eff = sigma * m * (sum sigma / sum (sigma * m))
 * computed in factored form y = U (s_eff * (V^T x)); only p is trained and its gradient is
 * accumulated as dL/ds_eff_i = sum_t (u_i . g_t)(v_i . x_t) - no (rows x cols) gradient exists.
 *
 *   t2_train *tr;
 *   t2_train_from_model(&tr, model, B, T);             // any dtype, converted to F32
 *   for (step = 0; step < n; step++) {
 *       t2_train_zero_grad(tr);
 *       t2_train_forward(tr, pool, inputs, targets, NULL, B, T, 0, &loss);
 *       t2_train_backward(tr, pool);
 *       norm = t2_train_clip_grad(tr, 1.0f);
 *       t2_train_update(tr, t2_lr_at(&sched, step), &adam);
 *   }
 *   t2_model_save_gguf(t2_train_model_view(tr), tok, T2_F32, "name", "out.gguf");
 *
 * Threading: calls taking a t2_pool run their big loops on it (NULL: the caller's thread);
 * results do not depend on the pool's size. A t2_train is used by one thread at a time.
 */
#ifndef T2_TRAIN_H
#define T2_TRAIN_H

#include "engine/model.h"
#include "base/pool.h"
#include "svf/svf.h"

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------ */
/* constants                                                                                   */

/* SVF targets: the matrix indices T2_TGT_* and masks T2_TARGETS_* of svf.h. */

/* SVF activations: T2_SVF_ACT_* of svf.h. */

#define T2_CKPT_MAGIC 0x4B433254u /* "T2CK" little-endian */
#define T2_CKPT_VERSION 1

/* GGUF name stem of a matrix kind: "attn_q", ..., "ffn_down". */

/* ------------------------------------------------------------------------------------------ */
/* structs                                                                                     */

/* Parameter tensors (and, with the same layout, their gradients). When the classifier is tied,
 * output == token_embd. Layer tensors are stacked: wq + l * (H*h * D) is layer l's. */
typedef struct t2_train_params {
    float *token_embd;  /* (V, D) */
    float *output;      /* (V, D); == token_embd when tied */
    float *output_norm; /* (D) */
    float *attn_norm;   /* (L, D) */
    float *wq;          /* (L, H*h, D) */
    float *wk;          /* (L, K*h, D) */
    float *wv;          /* (L, K*h, D) */
    float *wo;          /* (L, D, H*h) */
    float *ffn_norm;    /* (L, D) */
    float *w_gate;      /* (L, F, D) */
    float *w_up;        /* (L, F, D) */
    float *w_down;      /* (L, D, F) */
} t2_train_params;

/* One named parameter tensor (for dumps and checkpoints): GGUF name, shape, data, gradient. */
typedef struct t2_train_tensor {
    char name[64];     /* "blk.3.ffn_up.weight", "token_embd.weight", ... */
    int rows, cols;    /* rows 1 for a vector */
    int is_matrix;     /* weight decay applies */
    float *param, *grad;
} t2_train_tensor;

/* SVF factors of one target matrix W (rows x cols) = U diag(s) Vt, r = min(rows, cols).
 * Borrowed by t2_train_svf_enable: the arrays must outlive the t2_train. */
typedef struct t2_svf_factors {
    int layer, kind;   /* which matrix (T2_TGT_*) */
    int rows, cols, rank;
    const float *U;    /* (rows, r) row-major */
    const float *s;    /* (r) */
    const float *Vt;   /* (r, cols) row-major */
} t2_svf_factors;

typedef struct t2_svf_opts {
    unsigned targets; /* bit mask of 1 << T2_TGT_*; default T2_TARGETS_MLP */
    int act;          /* T2_SVF_ACT_*; default sigmoid */
    float max_mult;   /* sigmoid's maximum; default 1 */
    float p_init;     /* initial p; default 0.1 (docs/DESIGN.md §1) */
} t2_svf_opts;

/* A target as the trainer holds it: its factors (borrowed), p and dp (owned, in the p block). */
typedef struct t2_svf_target {
    t2_svf_factors f;
    float *p;     /* (r) */
    float *dp;    /* (r) */
    float *s_eff; /* (r) the applied singular values of the last forward */
} t2_svf_target;

typedef struct t2_adamw_opts {
    float beta1, beta2, eps, weight_decay; /* 0.9, 0.95, 1e-8, 0.0 by default */
} t2_adamw_opts;

/* Learning rate: linear warmup over `warmup` steps to lr, then cosine to min_lr at `total`
 * steps (constant min_lr after). */
typedef struct t2_lr_sched {
    float lr, min_lr;
    int warmup, total;
} t2_lr_sched;

/* What a checkpoint records besides the tensors: the caller's loop state. */
typedef struct t2_ckpt_meta {
    int64_t step;      /* steps done */
    uint64_t rng[2];   /* the caller's RNG state */
    uint64_t data_pos; /* the caller's position in its data */
    double elapsed;    /* seconds of training so far */
} t2_ckpt_meta;

typedef struct t2_train t2_train;

/* ------------------------------------------------------------------------------------------ */
/* life cycle                                                                                  */

/* A trainer with zeroed parameters of shape cfg (head_dim, rms_eps, rope_theta filled in when
 * zero), for batches of up to max_B sequences of up to max_T tokens (max_T <= cfg->seq_len). */
int t2_train_new(t2_train **out, const t2_config *cfg, int tied, int max_B, int max_T);
/* The same with the parameters of `m` (any dtype, converted to F32). m is not kept. */
int t2_train_from_model(t2_train **out, const t2_model *m, int max_B, int max_T);
/* Copy parameters from a model of the same shape into an existing trainer. */
int t2_train_load_params(t2_train *tr, const t2_model *m);
void t2_train_destroy(t2_train **tr);

const t2_config *t2_train_config(const t2_train *tr);
int t2_train_tied(const t2_train *tr);
/* A t2_model whose weights point into the trainer's F32 parameters (always current): give it
 * to t2_model_save_gguf or to the inference engine. Owned by the trainer. In SVF mode these
 * are the frozen base weights (the expert is p, see t2_train_svf_target). */
const t2_model *t2_train_model_view(const t2_train *tr);

/* The parameter and gradient pointer tables and blocks (n_params floats each). */
t2_train_params *t2_train_params_of(t2_train *tr);
t2_train_params *t2_train_grads_of(t2_train *tr);
float *t2_train_param_block(t2_train *tr, size_t *n);
/* Named tensors: n = t2_train_n_tensors; fills *t for index i in [0, n). */
int t2_train_n_tensors(const t2_train *tr);
void t2_train_tensor_at(t2_train *tr, int i, t2_train_tensor *t);

/* ------------------------------------------------------------------------------------------ */
/* SVF mode                                                                                    */

void t2_svf_opts_default(t2_svf_opts *o);
/* Switch to SVF mode: one factors entry per target (layer, kind in o->targets), any order,
 * shapes checked against the model. p is set to o->p_init. From then on only p trains (the
 * dense weights are frozen and get no gradient). Errors: T2_EINVAL (missing or duplicate
 * target, bad shape), T2_ENOMEM. */
int t2_train_svf_enable(t2_train *tr, const t2_svf_opts *o, const t2_svf_factors *f, int n_f);
int t2_train_svf_active(const t2_train *tr);
int t2_train_svf_n_targets(const t2_train *tr);
/* Target i (layer-major, then kind order); NULL outside [0, n). */
t2_svf_target *t2_train_svf_target(t2_train *tr, int i);
const t2_svf_opts *t2_train_svf_opts(const t2_train *tr);

/* ------------------------------------------------------------------------------------------ */
/* forward / backward                                                                          */

/* Forward over B sequences x T tokens. inputs (B, T) token ids; targets (B, T) ids or < 0 to
 * ignore (NULL: no loss, forward only); weights (B, T) or NULL (all 1). norm > 0 divides the
 * weighted sum; norm <= 0 means the local sum of weights of counted targets. *loss (may be NULL)
 * gets this batch's sum_t w_t nll_t / norm. Errors: T2_ERANGE (B, T beyond the maxima, token
 * outside the vocabulary), T2_EINVAL. */
int t2_train_forward(t2_train *tr, t2_pool *pool, const int *inputs, const int *targets,
                     const float *weights, int B, int T, float norm, float *loss);
/* Per-token -log p(target) of the last forward (B*T floats; 0 where ignored). */
const float *t2_train_token_nll(const t2_train *tr);
/* The next-token probabilities of the last forward with targets: B*T rows of V floats (row t
 * after input t). Valid until t2_train_backward (which overwrites them) or the next forward. */
const float *t2_train_probs(const t2_train *tr);
/* KL penalty to a reference model (REINFORCE's lambda KL(pi_ref || pi), docs/DESIGN.md §7): after a
 * forward with targets, make its loss
 *     sum_t w_t nll_t / norm  +  lambda * sum_t KL(ref_t || p_t) / norm
 * over the positions with a target (ref: B*T rows of V probabilities of the reference model,
 * e.g. t2_train_probs of a forward with the base weights, copied; read now, not kept). *kl
 * (may be NULL) gets sum_t KL(ref_t || p_t) / norm. The next backward adds the term's gradient,
 * lambda / norm * (p_t - ref_t) on the logits. Errors: T2_EINVAL (no forward with targets,
 * lambda negative or not finite, a ref row that is not a distribution). */
int t2_train_set_kl(t2_train *tr, const float *ref, float lambda, double *kl);
/* Add the gradient of the last forward's loss to the gradients (dense weights, or p in SVF
 * mode). The forward's probabilities are consumed: call once per forward. */
int t2_train_backward(t2_train *tr, t2_pool *pool);

/* The trainable values and their gradients as flat blocks (the full parameter block, or the
 * SVF p block): what to allreduce, clip and update. */
float *t2_train_trainable(t2_train *tr, size_t *n);
float *t2_train_grads_buf(t2_train *tr, size_t *n);
void t2_train_zero_grad(t2_train *tr);

/* ------------------------------------------------------------------------------------------ */
/* optimisation                                                                                */

void t2_adamw_opts_default(t2_adamw_opts *o);
float t2_lr_at(const t2_lr_sched *s, int64_t step);
/* Global L2 norm of the trainable gradients. */
float t2_train_grad_norm(const t2_train *tr);
/* If the norm exceeds max_norm (> 0), scale the gradients to max_norm. Returns the norm before
 * clipping. */
float t2_train_clip_grad(t2_train *tr, float max_norm);
/* One AdamW step on the trainable values (weight decay on matrices only; never on SVF p).
 * Allocates the moments on first use (T2_ENOMEM). */
int t2_train_update(t2_train *tr, float lr, const t2_adamw_opts *o);
/* AdamW steps taken so far. */
int64_t t2_train_opt_steps(const t2_train *tr);

/* ------------------------------------------------------------------------------------------ */
/* checkpoints                                                                                 */

/* Write trainable values, AdamW moments and step, and `meta` to path (through path.tmp and
 * rename: a crash leaves the old file). The file starts with T2_CKPT_MAGIC and
 * T2_CKPT_VERSION and ends with a checksum. In SVF mode the dense weights are not written
 * (a hash of them is, to check the base on resume). */
int t2_train_save_checkpoint(const t2_train *tr, const t2_ckpt_meta *meta, const char *path);
/* Read the shape and mode of a checkpoint (to build the trainer to resume into). svf gets 0/1.
 * Any pointer may be NULL. */
int t2_train_peek_checkpoint(const char *path, t2_config *cfg, int *tied, int *svf);
/* Restore a checkpoint into a trainer of the same shape and mode (in SVF mode: the same base
 * weights and targets, enabled before). Errors name the file and what differs. */
int t2_train_load_checkpoint(t2_train *tr, t2_ckpt_meta *meta, const char *path);

#endif
