/* adapt.h - what the forward pass needs to know about an adaptation, and nothing more.
 *
 * The engine runs a sequence either on its base weights or on an adaptation (t2_adapt) attached
 * with t2_state_set_adapt. An adaptation is made by the SVF layer (svf/svf.h: factors, experts,
 * mixtures); the engine only reads it. For each targeted matrix W = U diag(σ) Vᵀ of a layer it
 * holds the effective singular values σ' and, in merged mode, W' = U diag(σ') Vᵀ itself; in
 * factored mode the forward pass computes y = U (σ' ⊙ (Vᵀ x)); in low-rank mode y = W x plus
 * the r strongest directions of the difference, U_r ((σ' − σ)_r ⊙ (V_rᵀ x)). docs/DESIGN.md §3
 * has the formulas. Keeping this header in the engine is what lets svf/ sit above the engine.
 */
#ifndef T2_ENGINE_ADAPT_H
#define T2_ENGINE_ADAPT_H

#include "engine/model.h"

#include <stddef.h>

/* The seven weight matrices of a layer that SVF can target, in llama.cpp's names. */
enum {
    T2_TGT_Q,
    T2_TGT_K,
    T2_TGT_V,
    T2_TGT_O,
    T2_TGT_GATE,
    T2_TGT_UP,
    T2_TGT_DOWN,
    T2_N_TARGETS
};
#define T2_TARGETS_ATTN 0x0fu /* q k v o */
#define T2_TARGETS_MLP 0x70u  /* gate up down (the reference's default) */
#define T2_TARGETS_ALL 0x7fu

/* "attn_q", ..., "ffn_down" ("?" out of range) */
const char *t2_target_name(int k);
/* The matrix of target k in a layer (NULL out of range). */
const t2_mat *t2_layer_mat(const t2_layer *ly, int k);

/* One matrix's SVD: W = U diag(S) Vt. */
typedef struct t2_svd {
    int rows, cols, rank; /* rank 0: this matrix is not targeted */
    const float *U;       /* (rows, rank) row-major */
    const float *S;       /* (rank) descending, >= 0 */
    const float *Vt;      /* (rank, cols) row-major */
    float sum_s;          /* Σσ */
} t2_svd;

enum { T2_APPLY_FACTORED = 0, T2_APPLY_MERGED = 1, T2_APPLY_LOWRANK = 2 };

/* Low-rank mode: y = W x + U_r (d ⊙ (V_rᵀ x)) with W the model's own (quantized) weight and
 * d = σ' − σ on the r directions where |σ' − σ| is largest (svf/svf.h). */
typedef struct t2_lowrank {
    int r;           /* directions kept (0: the base weight alone) */
    const float *U;  /* (rows, r) row-major: the kept columns of U */
    const float *Vt; /* (r, cols) row-major: the kept rows of Vᵀ */
    const float *d;  /* (r) σ' − σ of the kept directions */
} t2_lowrank;

/* A resolved mixture, reference-counted (svf/svf.h makes and releases it). Two adaptations with
 * the same `svd` pointer come from the same factors and can share passes over U and Vᵀ. */
typedef struct t2_adapt {
    int refs;
    const struct t2_factors *f; /* the factors it was made from (svf/svf.h) */
    const t2_svd *svd;          /* [n_layers * T2_N_TARGETS], index l * T2_N_TARGETS + k */
    int n_layers;
    unsigned targets;
    int mode;
    const float **sigma; /* [n_layers * T2_N_TARGETS]: σ' (rank floats) or NULL */
    t2_mat *merged;      /* [n_layers * T2_N_TARGETS] (merged mode; rows 0 where untargeted) */
    t2_lowrank *lowrank; /* [n_layers * T2_N_TARGETS] (low-rank mode) */
    /* owned */
    float *sigma_buf;
    void *merged_buf;     /* W' storage, merged[i].type each */
    float *lowrank_buf;
    size_t bytes;
} t2_adapt;

static inline const t2_svd *t2_adapt_svd(const t2_adapt *a, int layer, int k) {
    return &a->svd[layer * T2_N_TARGETS + k];
}

#endif
