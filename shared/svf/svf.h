/* svf.h - singular-value fine-tuning: SVD factors, experts, mixtures and their application.
 *
 * The method (docs/DESIGN.md §3). Every targeted weight matrix W (rows x cols) is factored once:
 * W = U diag(σ) Vᵀ, rank r = min(rows, cols). An expert is one vector p (r numbers) per targeted
 * matrix; its applied scale is s = act(p) = sigmoid(p) · max_mult and the adapted matrix is
 *
 *     W' = U diag(σ ⊙ s) Vᵀ · (Σσ / Σ(σ ⊙ s))
 *
 * so a uniform s leaves W unchanged. A mixture of experts mixes the raw vectors,
 * p' = Σₖ αₖ pₖ (one α per expert, or one per expert per matrix), then applies the same
 * activation (the reference mixes without it; T2 is consistent and says so). All experts of a
 * mixture must share activation and max_mult.
 *
 * Files (GGUF):
 *   factors  "blk.N.<m>.svd_u" (rows x r), "blk.N.<m>.svd_s" (r), "blk.N.<m>.svd_vt" (r x cols),
 *            F32; keys t2.kind = "factors", t2.base_sha256, t2.targets.
 *   expert   "blk.N.<m>.svf_p" (r) F32; keys t2.kind = "expert", t2.name, t2.task,
 *            t2.base_sha256, t2.targets, t2.activation = "sigmoid", t2.max_mult, t2.training.
 * <m> is a llama.cpp matrix name: attn_q attn_k attn_v attn_output ffn_gate ffn_up ffn_down.
 *
 * Applying (t2_adapt): the effective singular values σ' = σ ⊙ s · (Σσ / Σ(σ⊙s)) are computed
 * once per mixture; then either
 *   merged    W' = (U diag σ') Vᵀ is formed per matrix (cost rows·cols·r each), stored as F32,
 *             F16, BF16 or Q8_0 (t2_adapt_new_typed), and the forward pass uses it like a base
 *             weight (dense speed; cache merged sets, t2_adapt_cache);
 *   factored  y = U (σ' ⊙ (Vᵀ x)) without forming W' (about twice the work per token), which
 *             lets one batch hold sequences with different mixtures: U and Vᵀ are shared.
 */
#ifndef T2_SVF_H
#define T2_SVF_H

#include "base/pool.h"
#include "engine/adapt.h"
#include "engine/model.h"

#include <stdint.h>

/* Parse "mlp", "attn", "all" or a comma list of matrix names; 0 or T2_EINVAL. */
int t2_targets_parse(const char *s, unsigned *out);
/* "mlp", "attn", "all" or a comma list, into buf. */
const char *t2_targets_str(unsigned targets, char *buf, size_t cap);

/* ---- factors ---- */

typedef struct t2_factors {
    int n_layers;
    unsigned targets;
    char base_sha256[65];
    t2_svd *svd; /* [n_layers * T2_N_TARGETS], index l * T2_N_TARGETS + k */
    /* owned */
    t2_gguf *gguf;
    float *owned;
} t2_factors;

static inline const t2_svd *t2_factors_get(const t2_factors *f, int layer, int k) {
    return &f->svd[layer * T2_N_TARGETS + k];
}

/* Progress callback for long work: done of total units, elapsed seconds. */
typedef void (*t2_progress_fn)(void *ctx, int done, int total, double elapsed);

/* SVD (LAPACKE dgesdd in float64, one matrix per pool thread; factors stored as float32) of
 * every targeted matrix.
 * *worst_err receives the worst relative reconstruction error ||W - UΣVᵀ||_F / ||W||_F. */
int t2_factors_compute(t2_factors **out, t2_model *m, unsigned targets, t2_pool *pool,
                       t2_progress_fn progress, void *progress_ctx, double *worst_err);
int t2_factors_save(const t2_factors *f, const char *path);
/* Load and check against the model: base sha256, layer count and every shape. */
int t2_factors_load(t2_factors **out, const char *path, t2_model *m);
void t2_factors_destroy(t2_factors **f);
size_t t2_factors_bytes(const t2_factors *f);

/* ---- experts ---- */

typedef struct t2_expert {
    char *name, *task, *training; /* training: free text record of how it was made */
    char base_sha256[65];
    unsigned targets;
    float max_mult;
    int n_layers;
    int *rank;   /* [n_layers * T2_N_TARGETS] length of each p (0: not targeted) */
    float **p;   /* [n_layers * T2_N_TARGETS] -> rank floats, or NULL */
    /* owned */
    float *owned;
} t2_expert;

/* The reference's initialisation: every p = init_value (default 0.1) plus, if noise_std > 0,
 * seeded Gaussian noise. Targets must be a subset of the factors'. */
int t2_expert_init(t2_expert **out, const t2_factors *f, unsigned targets, const char *name,
                   const char *task, float init_value, float noise_std, uint64_t seed,
                   float max_mult);
int t2_expert_save(const t2_expert *e, const char *path);
/* Load and check against the factors (sha256, targets, lengths, finite values). */
int t2_expert_load(t2_expert **out, const char *path, const t2_factors *f);
void t2_expert_destroy(t2_expert **e);
int64_t t2_expert_n_params(const t2_expert *e);

/* ---- mixtures and application ---- */

typedef struct t2_mixture {
    int n;                      /* experts */
    const t2_expert *const *experts;
    const float *alpha;         /* n (per_matrix 0) or n x (n_layers * T2_N_TARGETS) */
    int n_alpha;                /* length of alpha: checked against the above */
    int per_matrix;
} t2_mixture;

/* t2_adapt (engine/adapt.h) is reference-counted: t2_adapt_new returns one reference,
 * t2_adapt_ref adds one and t2_adapt_release drops one (freeing at zero and setting the caller's
 * pointer to NULL). A sequence holds a reference for as long as it runs with the adaptation. Not
 * thread-safe: one thread manages references. */

/* Check a mixture: experts non-empty, same targets / activation / max_mult, α finite and of the
 * right length (n_alpha). Messages name the expert or index. */
int t2_mixture_check(const t2_mixture *mix, const t2_factors *f);
/* Resolve a mixture into σ' (and, in merged mode, W' for every targeted matrix of `m`). */
int t2_adapt_new(t2_adapt **out, const t2_factors *f, const t2_mixture *mix, int mode,
                 t2_pool *pool);
/* The same with W' stored as merged_type (merged mode; ignored in factored mode): F32 (4 bytes
 * per weight of every targeted matrix), F16 or BF16 (2 bytes) or Q8_0 (34 bytes per 32 weights,
 * 1.0625 bytes; the matrices' columns must be a multiple of 32). W' is formed in f32 and rounded
 * to the type a few rows at a time (no f32 copy of a whole matrix). t2_adapt_new is F32. */
int t2_adapt_new_typed(t2_adapt **out, const t2_factors *f, const t2_mixture *mix, int mode,
                       t2_dtype merged_type, t2_pool *pool);
/* 1 if W' can be stored as t (F32, F16, BF16, Q8_0). */
int t2_adapt_merged_type_ok(t2_dtype t);

/* Low-rank application (T2_APPLY_LOWRANK): the model's own weight W (quantized or not) plus the
 * expert's difference Δ = U diag(σ' − σ) Vᵀ truncated to the `rank` directions where |σ' − σ| is
 * largest: y = W x + U_r ((σ' − σ)_r ⊙ (V_rᵀ x)). rank >= the matrix's rank keeps all (equal to
 * merged up to the factors' reconstruction error ||W − UΣVᵀ||); 0 keeps none (the base).
 * Memory: rank · (rows + cols + 1) floats per targeted matrix. The truncation error is reported
 * as ||Δ − Δ_r||_F / ||Δ||_F (U and V orthonormal: from the dropped and all σ' − σ). */
typedef struct t2_lowrank_report {
    double rel_err;       /* over all targeted matrices together */
    double worst_rel_err; /* of the worst matrix, */
    int worst_layer, worst_kind; /* which is this one */
    size_t bytes;         /* of the kept factors */
} t2_lowrank_report;
int t2_adapt_new_lowrank(t2_adapt **out, const t2_factors *f, const t2_mixture *mix, int rank,
                         t2_lowrank_report *rep);
t2_adapt *t2_adapt_ref(t2_adapt *a);
void t2_adapt_release(t2_adapt **a);
/* σ' for one p vector (r floats) of an expert: t2_svf_scale with the sigmoid activation. */
void t2_svf_sigma(float *out, const t2_svd *svd, const float *p, float max_mult);

/* SVF activations m = act(p). Experts use the sigmoid; training can also use the identity. */
enum {
    T2_SVF_ACT_SIGMOID = 0, /* m = max_mult * sigmoid(p) */
    T2_SVF_ACT_LINEAR = 1,  /* m = p */
};
float t2_svf_act(float p, int act, float max_mult);
float t2_svf_act_grad(float p, int act, float max_mult); /* dm/dp */

/* The effective singular values, for inference and training alike (r values):
 *     out = σ ⊙ m · c,  m = act(p),  c = Σσ / Σ(σ⊙m)
 * so that Σ out = Σσ. The one exception is Σ(σ⊙m) == 0 (every m zero, or sigmoids underflowed
 * to 0), where c = 1 and out = σ⊙m: no division by zero. A negative Σ(σ⊙m) (only possible with
 * the identity activation) is divided by like any other sum, which keeps Σ out = Σσ and is what
 * the training's backward pass differentiates. */
void t2_svf_scale(float *out, const float *sigma, const float *p, int r, int act, float max_mult);

/* A bounded LRU of merged adaptations keyed by a caller-given 64-bit mixture key. */
typedef struct t2_adapt_cache t2_adapt_cache;
/* capacity < 1 counts as 1. Returns 0 and sets *out, or T2_ENOMEM (message in t2_err_msg). */
int t2_adapt_cache_new(t2_adapt_cache **out, int capacity);
void t2_adapt_cache_destroy(t2_adapt_cache **c);
/* A new reference to the cached entry (release it when done), or NULL. */
t2_adapt *t2_adapt_cache_get(t2_adapt_cache *c, uint64_t key);
/* The cache takes its own reference to a; the least recently used entry is dropped when full
 * (sequences still holding it keep it alive). */
void t2_adapt_cache_put(t2_adapt_cache *c, uint64_t key, t2_adapt *a);
int t2_adapt_cache_size(const t2_adapt_cache *c);
/* A key for a mixture: hash of expert names/sha and α bits. */
uint64_t t2_mixture_key(const t2_mixture *mix);

#endif
