/* train_internal.h - the trainer's state, shared by train.c and train_ckpt.c only. */
#ifndef T2_TRAIN_INTERNAL_H
#define T2_TRAIN_INTERNAL_H

#include "base/hash.h"
#include "train/train.h"

#include <stddef.h>
#include <stdint.h>

/* Parameter tensors in block order (t2_train_params field order). */
enum {
    T2_TP_TOKEN_EMBD, T2_TP_OUTPUT, T2_TP_OUTPUT_NORM, T2_TP_ATTN_NORM, T2_TP_WQ, T2_TP_WK,
    T2_TP_WV, T2_TP_WO, T2_TP_FFN_NORM, T2_TP_W_GATE, T2_TP_W_UP, T2_TP_W_DOWN, T2_TP_N
};

/* Saved activations (N = B*T of the last forward; per-layer arrays stacked by layer with that
 * N) and backward scratch, all in one block sized for max_B x max_T. */
typedef struct t2_train_acts {
    float *x;          /* (L+1, N, D) residual stream entering each layer; [L] the last */
    float *x_mid;      /* (L, N, D) residual after attention */
    float *xn_att;     /* (L, N, D) rmsnorm(x) */
    float *rstd_att;   /* (L, N) */
    float *q;          /* (L, N, QD) after RoPE */
    float *k;          /* (L, N, KVD) after RoPE */
    float *q_pre;      /* qwen3: (L, N, QD) q before its per-head RMSNorm (else empty) */
    float *k_pre;      /* qwen3: (L, N, KVD) */
    float *rstd_q;     /* qwen3: (L, N, H) 1/rms of each query head */
    float *rstd_k;     /* qwen3: (L, N, K) */
    float *v;          /* (L, N, KVD) */
    float *att;        /* (L, B, H, T, T) attention probabilities */
    float *o;          /* (L, N, QD) attention output (input of wo) */
    float *xn_ffn;     /* (L, N, D) rmsnorm(x_mid) */
    float *rstd_ffn;   /* (L, N) */
    float *gate, *up;  /* (L, N, F) */
    float *hmid;       /* (L, N, F) silu(gate) * up */
    float *xn_final;   /* (N, D) */
    float *rstd_final; /* (N) */
    float *probs;      /* (N, V) logits, then probabilities, then dlogits */
    float *nll;        /* (N) */
    /* scratch */
    float *tmp;                /* (N, D) */
    float *dx, *dxn;           /* (N, D) */
    float *dh, *dgate, *dup;   /* (N, F) */
    float *dout, *dq;          /* (N, QD) */
    float *dk, *dv;            /* (N, KVD) */
    float *dq_pre, *dk_pre;    /* qwen3: (N, QD), (N, KVD) gradients before the Q/K norms */
} t2_train_acts;

struct t2_train {
    t2_config cfg;
    int tied, max_B, max_T;
    size_t sizes[T2_TP_N], n_params;
    float *params_mem, *grads_mem;
    t2_train_params params, grads;
    t2_model *view;
    /* AdamW */
    float *adam_m, *adam_v; /* over the trainable block */
    int64_t adam_t;
    /* activations */
    t2_train_acts acts;
    float *acts_mem;
    size_t acts_bytes;
    float *att_scratch;
    size_t att_scratch_n;
    float *cos_t, *sin_t; /* (max_T, h/2) */
    int neox;             /* rotate halves (qwen2) rather than adjacent pairs */
    float *bias;          /* qwen2: per layer bq (QD), bk, bv (KVD), fixed (not trained); or NULL */
    float *qk_norm;       /* qwen3: per layer q_norm (h), k_norm (h), fixed (not trained); or NULL */
    /* last forward */
    int B, T, has_wts, has_tgt, have_fwd;
    int *tokens, *tgt;
    float *wts, norm;
    double loss;
    /* KL penalty of the last forward (t2_train_set_kl): lambda / norm * (p - kl_ref) */
    float *kl_ref; /* (max_B * max_T, V), allocated on first use */
    float kl_lambda;
    int kl_on;
    /* SVF */
    int svf, n_svf, svf_rmax;
    t2_svf_opts svf_opts;
    t2_svf_target *targets_svf;
    int *svf_idx;            /* (L, T2_N_TARGETS) target index or -1 */
    size_t n_p;
    float *svf_mem;          /* p, dp, s_eff, ds_eff (n_p each) */
    float *svf_p, *svf_dp, *svf_s_eff, *svf_ds_eff;
    float *svf_acts;         /* z of every target (N * r each), then zs, gu (N * rmax) */
    float *svf_zs, *svf_gu;
    uint64_t base_hash;      /* of the dense parameters when SVF was enabled */
};

/* Rows and columns of a matrix kind. */
void t2_train_mat_shape(const t2_config *c, int kind, int *rows, int *cols);
/* Layer l's matrix of a kind inside a table (parameters or gradients). */
float *t2_train_mat_ptr(const t2_train_params *p, const t2_config *c, int l, int kind);

#endif
