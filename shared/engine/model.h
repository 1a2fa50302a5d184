/* model.h - a Llama-family model: hyperparameters and weights, loaded from GGUF or from a
 * llama2.c checkpoint, and written to GGUF.
 *
 * Architectures (GGUF general.architecture): `llama` (Llama 2/3, Mistral: rotary on adjacent
 * pairs, optional Llama-3 rope scaling or a rope_freqs tensor), `qwen2` (biases on Q, K, V;
 * NEOX rotary on halves), `qwen3` (per-head RMSNorm of Q and K; NEOX rotary). Anything else is
 * refused with its name.
 *
 * Dimension legend used in shape comments:
 *   D  model width (dim)              F  MLP width (hidden_dim)      L  layers
 *   H  query heads   K  kv heads      h  head_dim (D / H unless given)   V  vocabulary
 *
 * Weights are mmap'd and pointed into with no copy (t2_mat views); only the small 1-D norm
 * weights are converted to f32 into memory the model owns. Everything read from a file is
 * validated first: unknown architecture, missing or mis-shaped tensors, inconsistent
 * hyperparameters and sizes that do not match the file are errors naming the file.
 */
#ifndef T2_MODEL_H
#define T2_MODEL_H

#include "engine/gguf.h"
#include "engine/t2_types.h"
#include "engine/tokenizer.h"

#include <stdint.h>

typedef enum t2_arch { T2_ARCH_LLAMA = 0, T2_ARCH_QWEN2, T2_ARCH_QWEN3 } t2_arch;

/* Rotary frequency scaling: none, or Llama 3's (per-frequency factors from factor, low/high
 * frequency factors and the original context). */
typedef enum t2_rope_scaling { T2_ROPE_NONE = 0, T2_ROPE_LLAMA3 } t2_rope_scaling;

typedef struct t2_config {
    int dim;        /* D */
    int hidden_dim; /* F */
    int n_layers;   /* L */
    int n_heads;    /* H */
    int n_kv_heads; /* K (divides H) */
    int vocab_size; /* V */
    int seq_len;    /* maximum context length */
    int head_dim;   /* h, even (D / H unless the file gives it) */
    float rms_eps;
    float rope_theta;
    t2_arch arch;   /* 0 = llama */
    t2_rope_scaling rope_scaling;
    float rope_factor, rope_low_freq, rope_high_freq; /* Llama 3 scaling */
    int rope_orig_ctx;                                /* Llama 3 original context */
} t2_config;

typedef struct t2_layer {
    const float *attn_norm; /* (D) */
    t2_mat wq;              /* (H*h, D)  attn_q */
    t2_mat wk;              /* (K*h, D)  attn_k */
    t2_mat wv;              /* (K*h, D)  attn_v */
    t2_mat wo;              /* (D, H*h)  attn_output */
    const float *ffn_norm;  /* (D) */
    t2_mat w_gate;          /* (F, D)    ffn_gate, llama2.c w1 */
    t2_mat w_down;          /* (D, F)    ffn_down, llama2.c w2 */
    t2_mat w_up;            /* (F, D)    ffn_up,   llama2.c w3 */
    const float *bq, *bk, *bv;      /* (H*h), (K*h), (K*h) biases, or NULL (qwen2) */
    const float *q_norm, *k_norm;   /* (h) per-head RMSNorm weights, or NULL (qwen3) */
} t2_layer;

typedef enum t2_model_format { T2_FORMAT_GGUF, T2_FORMAT_LLAMA2C } t2_model_format;

typedef struct t2_model {
    t2_config cfg;
    t2_mat token_embd;       /* (V, D) */
    t2_layer *layers;        /* [L] */
    const float *output_norm; /* (D) */
    t2_mat output;           /* (V, D); same data as token_embd when tied */
    int tied;                /* classifier shared with the embedding */
    t2_model_format format;
    char *path;
    /* owned resources */
    t2_gguf *gguf;  /* GGUF models: the open file (metadata stays available) */
    void *map;      /* llama2.c models: the mapping */
    size_t map_size;
    float *norms;   /* all norm weights as f32 */
    float *owned;   /* models made in memory (t2_model_init_random): all weights */
    float *extra;   /* biases, Q/K norms and rope factors as f32 (NULL when none) */
    size_t n_extra; /* floats at extra */
    const float *rope_freqs; /* (h/2) rope frequency divisors (rope_freqs), or NULL */
    const float *rope_inv_freq; /* (h/2) rotation frequencies used by the forward pass, or
                                 * NULL for plain Llama (t2_rope) */
    char sha256[65]; /* of the file, computed on demand by t2_model_sha256 */
} t2_model;

/* Load a model file, detecting the format by its first bytes (GGUF magic, llama2.c version-1
 * magic, else a legacy llama2.c header). On error *out is NULL and t2_err_msg() says why. */
int t2_model_load(t2_model **out, const char *path);
void t2_model_destroy(t2_model **m);

/* Bytes of weights read to generate one token (every matrix once, one embedding row). */
size_t t2_model_weight_bytes_per_token(const t2_model *m);
/* Total parameter count. */
int64_t t2_model_n_params(const t2_model *m);
/* The dominant matrix type (of the layer matrices). */
t2_dtype t2_model_dtype(const t2_model *m);

/* Load the tokenizer for a model: from `tok_path` (llama2.c tokenizer.bin) if given, else the
 * tokenizer embedded in a GGUF model. Checks the vocabulary size against the model's. */
int t2_model_load_tokenizer(t2_tokenizer **out, const t2_model *m, const char *tok_path);

/* Write `m` as a GGUF model of its architecture (llama.cpp tensor names and keys) with
 * matrices converted to `type` (norms, biases stay F32) and the tokenizer embedded when tok is
 * non-NULL. */
int t2_model_save_gguf(const t2_model *m, const t2_tokenizer *tok, t2_dtype type,
                       const char *name, const char *path);
/* The same into a writer the caller made (it may already hold keys, e.g. a tokenizer); writes
 * the file. The writer stays the caller's. */
int t2_model_write_gguf(const t2_model *m, t2_gguf_writer *w, t2_dtype type, const char *name,
                        const char *path);

/* A model of shape *cfg with no matrices yet (all t2_mat zero), for importers: norms, biases
 * (when `biases`), Q/K norms (qwen3) and rope factors (Llama-3 scaling) point into owned f32
 * memory the caller fills through t2_model_fill_ptr. */
int t2_model_new_blank(t2_model **out, const t2_config *cfg, int biases, const char *path);
/* Writable view of an owned f32 vector of a blank model (one of the layer's norm/bias/Q-K norm
 * pointers, output_norm or rope_freqs). */
static inline float *t2_model_fill_ptr(const float *p) { return (float *)(uintptr_t)p; }

/* The name of an architecture ("llama", "qwen2", "qwen3"), and the reverse (0 or
 * T2_EUNSUPPORTED naming it). */
const char *t2_arch_name(t2_arch a);
int t2_arch_parse(const char *name, size_t len, t2_arch *out);
/* Llama 3 rope frequency divisors (h/2 floats) from cfg's scaling parameters. */
void t2_rope_llama3_factors(const t2_config *c, float *factors);
/* Fill in rope_inv_freq from theta, head_dim, arch and rope_freqs (called by the loaders). */
int t2_model_finish_rope(t2_model *m);

/* Make a model with random weights (seeded) of the given shape in memory, all F32, owned.
 * cfg->head_dim, rms_eps and rope_theta are filled in when zero. */
int t2_model_init_random(t2_model **out, const t2_config *cfg, int tied, uint64_t seed);

/* Validate a configuration (positive sizes, H % K == 0, D % H == 0 unless head_dim is given,
 * even head_dim, sane limits, Llama-3 scaling parameters). `what` names the source. */
int t2_config_check(const t2_config *c, const char *what);

/* SHA-256 of the model's file, computed on first use and kept (hex, 64 digits); for a model made
 * in memory, 64 zeros. NULL on I/O error (message set). */
const char *t2_model_sha256(t2_model *m);

#endif
