#include "engine/model.h"
#include "engine/quants.h"

#include "base/rng.h"
#include "base/sha256.h"
#include "engine/adapt.h"

#include "base/t2_err.h"
#include "base/t2_log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define LLAMA2C_MAGIC 0x616b3432u /* "ak42" */
#define T2_MAX_DIM (1 << 20)
#define T2_MAX_LAYERS 4096
#define T2_MAX_VOCAB (1 << 24)
#define T2_MAX_SEQ (1 << 22)
#define T2_MAX_HEAD_DIM 4096

int t2_config_check(const t2_config *c, const char *what) {
    if (c->dim <= 0 || c->dim > T2_MAX_DIM)
        return t2_err_set(T2_EFORMAT, "%s: dim %d out of range (1..%d)", what, c->dim, T2_MAX_DIM);
    if (c->hidden_dim <= 0 || c->hidden_dim > T2_MAX_DIM)
        return t2_err_set(T2_EFORMAT, "%s: hidden_dim %d out of range (1..%d)", what,
                          c->hidden_dim, T2_MAX_DIM);
    if (c->n_layers <= 0 || c->n_layers > T2_MAX_LAYERS)
        return t2_err_set(T2_EFORMAT, "%s: n_layers %d out of range (1..%d)", what, c->n_layers,
                          T2_MAX_LAYERS);
    /* a head dimension other than dim / n_heads must come from the file (qwen3, ...) */
    int own_hd = c->n_heads > 0 && c->head_dim != c->dim / c->n_heads;
    if (c->n_heads <= 0 || c->n_heads > T2_MAX_DIM || (!own_hd && c->dim % c->n_heads))
        return t2_err_set(T2_EFORMAT, "%s: n_heads %d must be positive and divide dim %d", what,
                          c->n_heads, c->dim);
    if (c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return t2_err_set(T2_EFORMAT, "%s: n_kv_heads %d must be positive and divide n_heads %d",
                          what, c->n_kv_heads, c->n_heads);
    if (c->head_dim <= 0 || c->head_dim > T2_MAX_HEAD_DIM || c->head_dim % 2)
        return t2_err_set(T2_EFORMAT, "%s: head_dim %d must be even and in 2..%d", what,
                          c->head_dim, T2_MAX_HEAD_DIM);
    if ((int64_t)c->n_heads * c->head_dim > T2_MAX_DIM)
        return t2_err_set(T2_EFORMAT, "%s: n_heads %d x head_dim %d too large", what, c->n_heads,
                          c->head_dim);
    if (c->vocab_size <= 0 || c->vocab_size > T2_MAX_VOCAB)
        return t2_err_set(T2_EFORMAT, "%s: vocab_size %d out of range (1..%d)", what,
                          c->vocab_size, T2_MAX_VOCAB);
    if (c->seq_len <= 0 || c->seq_len > T2_MAX_SEQ)
        return t2_err_set(T2_EFORMAT, "%s: seq_len %d out of range (1..%d)", what, c->seq_len,
                          T2_MAX_SEQ);
    if (!(c->rms_eps > 0 && c->rms_eps < 1))
        return t2_err_set(T2_EFORMAT, "%s: rms epsilon %g out of range (0, 1)", what,
                          (double)c->rms_eps);
    if (!(c->rope_theta > 1 && isfinite(c->rope_theta)))
        return t2_err_set(T2_EFORMAT, "%s: rope theta %g must be finite and > 1", what,
                          (double)c->rope_theta);
    if ((unsigned)c->arch > T2_ARCH_QWEN3)
        return t2_err_set(T2_EINVAL, "%s: architecture %d unknown", what, (int)c->arch);
    if (c->rope_scaling == T2_ROPE_LLAMA3 &&
        !(c->rope_factor >= 1 && c->rope_factor < 1e6f && c->rope_low_freq > 0 &&
          c->rope_high_freq > c->rope_low_freq && c->rope_high_freq < 1e6f &&
          c->rope_orig_ctx > 0 && c->rope_orig_ctx <= T2_MAX_SEQ))
        return t2_err_set(T2_EFORMAT, "%s: Llama-3 rope scaling needs factor >= 1, 0 < low freq "
                          "factor < high freq factor and an original context in 1..%d (got %g, "
                          "%g, %g, %d)", what, T2_MAX_SEQ, (double)c->rope_factor,
                          (double)c->rope_low_freq, (double)c->rope_high_freq, c->rope_orig_ctx);
    return 0;
}

static const char *const arch_names[] = {"llama", "qwen2", "qwen3"};

const char *t2_arch_name(t2_arch a) {
    return (unsigned)a <= T2_ARCH_QWEN3 ? arch_names[a] : "?";
}

int t2_arch_parse(const char *name, size_t len, t2_arch *out) {
    for (int a = 0; a <= T2_ARCH_QWEN3; a++)
        if (strlen(arch_names[a]) == len && memcmp(arch_names[a], name, len) == 0) {
            *out = (t2_arch)a;
            return 0;
        }
    return t2_err_set(T2_EUNSUPPORTED, "architecture '%.*s' is not supported (T2 runs llama, "
                      "qwen2 and qwen3)", (int)(len > 64 ? 64 : len), name);
}

void t2_rope_llama3_factors(const t2_config *c, float *factors) {
    /* Llama 3.1: long wavelengths are slowed down by `factor`, short ones kept, and the band in
     * between interpolated on orig_ctx / wavelength. */
    const double lo_wl = c->rope_orig_ctx / (double)c->rope_low_freq;
    const double hi_wl = c->rope_orig_ctx / (double)c->rope_high_freq;
    for (int i = 0; i < c->head_dim / 2; i++) {
        double freq = pow(c->rope_theta, -2.0 * i / c->head_dim), wl = 2 * M_PI / freq;
        double f = 1.0;
        if (wl > lo_wl) {
            f = c->rope_factor;
        } else if (wl >= hi_wl) {
            double smooth = (c->rope_orig_ctx / wl - c->rope_low_freq) /
                            (c->rope_high_freq - c->rope_low_freq);
            f = 1.0 / ((1 - smooth) / c->rope_factor + smooth);
        }
        factors[i] = (float)f;
    }
}

int t2_model_finish_rope(t2_model *m) {
    const t2_config *c = &m->cfg;
    float *freqs = m->extra + m->n_extra - c->head_dim, *inv = freqs + c->head_dim / 2;
    if (c->rope_scaling == T2_ROPE_LLAMA3 && !m->rope_freqs) {
        t2_rope_llama3_factors(c, freqs);
        m->rope_freqs = freqs;
    }
    for (int i = 0; i < c->head_dim / 2; i++)
        if (m->rope_freqs && !(m->rope_freqs[i] > 0 && isfinite(m->rope_freqs[i])))
            return t2_err_set(T2_EFORMAT, "%s: rope_freqs[%d] = %g must be finite and > 0",
                              m->path, i, (double)m->rope_freqs[i]);
    if (c->arch == T2_ARCH_LLAMA && !m->rope_freqs) return 0; /* plain: t2_rope */
    for (int i = 0; i < c->head_dim / 2; i++) { /* t2_rope's arithmetic */
        inv[i] = 1.0f / powf(c->rope_theta, (2 * i) / (float)c->head_dim);
        if (m->rope_freqs) inv[i] /= m->rope_freqs[i];
    }
    m->rope_inv_freq = inv;
    return 0;
}

static void config_defaults(t2_config *c) {
    if (c->n_heads > 0 && !c->head_dim) c->head_dim = c->dim / c->n_heads;
    if (!c->rms_eps) c->rms_eps = 1e-5f;
    if (!c->rope_theta) c->rope_theta = 10000.0f;
}

void t2_model_destroy(t2_model **mp) {
    if (!mp || !*mp) return;
    t2_model *m = *mp;
    t2_gguf_close(&m->gguf);
    if (m->map) munmap(m->map, m->map_size);
    free(m->layers);
    free(m->norms);
    free(m->owned);
    free(m->extra);
    free(m->path);
    free(m);
    *mp = NULL;
}

static t2_model *model_alloc(const char *path, const t2_config *c) {
    t2_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = *c;
    m->path = strdup(path ? path : "(memory)");
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    /* attn_norm + ffn_norm per layer, output_norm */
    m->norms = malloc(((size_t)2 * c->n_layers + 1) * (size_t)c->dim * sizeof(float));
    if (!m->path || !m->layers || !m->norms) t2_model_destroy(&m);
    return m;
}

/* Owned f32 memory for biases (when `biases`), Q/K norms (qwen3) and the rope tables (h floats
 * at the end: rope_freqs, then rope_inv_freq), with the layers' pointers set. */
static int extra_alloc(t2_model *m, int biases) {
    const t2_config *c = &m->cfg;
    const size_t hd = c->head_dim, QD = (size_t)c->n_heads * hd;
    const size_t KVD = (size_t)c->n_kv_heads * hd;
    const int qk = c->arch == T2_ARCH_QWEN3;
    size_t per = (biases ? QD + 2 * KVD : 0) + (qk ? 2 * hd : 0);
    m->n_extra = per * c->n_layers + hd;
    if (!(m->extra = calloc(m->n_extra, sizeof(float))))
        return t2_err_set(T2_ENOMEM, "%s: out of memory", m->path);
    float *p = m->extra;
    for (int l = 0; l < c->n_layers; l++) {
        t2_layer *ly = &m->layers[l];
        if (biases) {
            ly->bq = p, p += QD;
            ly->bk = p, p += KVD;
            ly->bv = p, p += KVD;
        }
        if (qk) {
            ly->q_norm = p, p += hd;
            ly->k_norm = p, p += hd;
        }
    }
    return 0;
}

static float *norm_slot(t2_model *m, int i) { return m->norms + (size_t)i * m->cfg.dim; }

static t2_mat mat(t2_dtype t, int rows, int cols, const void *data) {
    return (t2_mat){.type = t, .rows = rows, .cols = cols, .data = data};
}

/* ------------------------------------------------------------------------------------------ */
/* llama2.c checkpoints                                                                        */

/* Point the model's weights into a llama2.c fp32 payload laid out as `version` (0 or 1). */
static void llama2c_assign(t2_model *m, const float *p, int version) {
    const t2_config *c = &m->cfg;
    const int D = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    const int KVD = c->n_kv_heads * c->head_dim, QD = c->n_heads * c->head_dim;
    const size_t sq = (size_t)QD * D, skv = (size_t)KVD * D, sf = (size_t)F * D;
    const float *rms_att, *rms_ffn, *rms_final, *emb, *wq, *wk, *wv, *wo, *w1, *w2, *w3, *wcls;
    if (version == 0) {
        emb = p; p += (size_t)V * D;
        rms_att = p; p += (size_t)L * D;
        wq = p; p += L * sq;
        wk = p; p += L * skv;
        wv = p; p += L * skv;
        wo = p; p += L * sq;
        rms_ffn = p; p += (size_t)L * D;
        w1 = p; p += L * sf;
        w2 = p; p += L * sf;
        w3 = p; p += L * sf;
        rms_final = p; p += D;
        p += (size_t)c->seq_len * c->head_dim; /* legacy freq_cis_real + freq_cis_imag */
        wcls = p;
    } else {
        rms_att = p; p += (size_t)L * D;
        rms_ffn = p; p += (size_t)L * D;
        rms_final = p; p += D;
        emb = p; p += (size_t)V * D;
        wq = p; p += L * sq;
        wk = p; p += L * skv;
        wv = p; p += L * skv;
        wo = p; p += L * sq;
        w1 = p; p += L * sf;
        w2 = p; p += L * sf;
        w3 = p; p += L * sf;
        wcls = p;
    }
    m->token_embd = mat(T2_F32, V, D, emb);
    m->output = mat(T2_F32, V, D, m->tied ? emb : wcls);
    for (int l = 0; l < L; l++) {
        t2_layer *ly = &m->layers[l];
        memcpy(norm_slot(m, 2 * l), rms_att + (size_t)l * D, (size_t)D * 4);
        memcpy(norm_slot(m, 2 * l + 1), rms_ffn + (size_t)l * D, (size_t)D * 4);
        ly->attn_norm = norm_slot(m, 2 * l);
        ly->ffn_norm = norm_slot(m, 2 * l + 1);
        ly->wq = mat(T2_F32, QD, D, wq + l * sq);
        ly->wk = mat(T2_F32, KVD, D, wk + l * skv);
        ly->wv = mat(T2_F32, KVD, D, wv + l * skv);
        ly->wo = mat(T2_F32, D, QD, wo + l * sq);
        ly->w_gate = mat(T2_F32, F, D, w1 + l * sf);
        ly->w_down = mat(T2_F32, D, F, w2 + l * sf);
        ly->w_up = mat(T2_F32, F, D, w3 + l * sf);
    }
    memcpy(norm_slot(m, 2 * L), rms_final, (size_t)D * 4);
    m->output_norm = norm_slot(m, 2 * L);
}

/* Number of floats in a llama2.c payload (without the classifier). */
static uint64_t llama2c_floats(const t2_config *c, int version) {
    const uint64_t D = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    const uint64_t KVD = (uint64_t)c->n_kv_heads * c->head_dim, QD = (uint64_t)c->n_heads * c->head_dim;
    uint64_t n = V * D + 2 * L * D + L * (2 * QD * D + 2 * KVD * D + 3 * F * D) + D;
    if (version == 0) n += (uint64_t)c->seq_len * c->head_dim;
    return n;
}

static int load_llama2c(t2_model **out, const char *path, void *map, size_t size) {
    t2_config c = {0};
    int32_t h[7];
    int version = 0, shared = 1;
    size_t header;
    uint32_t magic;
    if (size < 28) return t2_err_set(T2_EFORMAT, "%s: file too small for a model (%zu bytes)", path, size);
    memcpy(&magic, map, 4);
    if (magic == LLAMA2C_MAGIC) {
        int32_t v;
        if (size < 256) return t2_err_set(T2_EFORMAT, "%s: truncated llama2.c header", path);
        memcpy(&v, (char *)map + 4, 4);
        if (v != 1)
            return t2_err_set(T2_EUNSUPPORTED,
                              "%s: llama2.c checkpoint version %d is not supported (T2 reads the "
                              "legacy format and version 1, fp32)", path, v);
        version = 1;
        memcpy(h, (char *)map + 8, sizeof h);
        shared = ((unsigned char *)map)[36];
        if (shared > 1)
            return t2_err_set(T2_EFORMAT, "%s: shared_classifier flag is %d, expected 0 or 1", path, shared);
        header = 256;
    } else {
        memcpy(h, map, sizeof h);
        if (h[5] < 0) {
            shared = 0;
            h[5] = h[5] == INT32_MIN ? 0 : -h[5];
        }
        header = 28;
    }
    c.dim = h[0];
    c.hidden_dim = h[1];
    c.n_layers = h[2];
    c.n_heads = h[3];
    c.n_kv_heads = h[4];
    c.vocab_size = h[5];
    c.seq_len = h[6];
    config_defaults(&c);
    char what[1100];
    snprintf(what, sizeof what, "%s: llama2.c header", path);
    int rc = t2_config_check(&c, what);
    if (rc < 0) return rc;
    uint64_t n = llama2c_floats(&c, version) + (shared ? 0 : (uint64_t)c.vocab_size * c.dim);
    uint64_t want = header + n * 4;
    if (want != size)
        return t2_err_set(T2_EFORMAT,
                          "%s: file is %zu bytes but its llama2.c header (dim %d, hidden %d, "
                          "layers %d, heads %d, kv heads %d, vocab %d, seq %d, %s classifier) "
                          "implies %llu", path, size, c.dim, c.hidden_dim, c.n_layers, c.n_heads,
                          c.n_kv_heads, c.vocab_size, c.seq_len, shared ? "shared" : "separate",
                          (unsigned long long)want);
    t2_model *m = model_alloc(path, &c);
    if (!m) return t2_err_set(T2_ENOMEM, "%s: out of memory", path);
    m->tied = shared;
    m->format = T2_FORMAT_LLAMA2C;
    llama2c_assign(m, (const float *)((const char *)map + header), version);
    *out = m;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* GGUF                                                                                        */

static int gguf_int(const t2_gguf *g, const char *key, int *out, int required, int dflt) {
    int64_t v;
    int rc = t2_gguf_get_i64(g, key, &v);
    if (rc == T2_ENOTFOUND && !required) {
        t2_err_clear();
        *out = dflt;
        return 0;
    }
    if (rc < 0) return rc;
    if (v <= 0 || v > INT32_MAX)
        return t2_err_set(T2_EFORMAT, "%s: key '%s' = %lld out of range", t2_gguf_path(g), key,
                          (long long)v);
    *out = (int)v;
    return 0;
}

static int gguf_float(const t2_gguf *g, const char *key, float *out, float dflt) {
    int rc = t2_gguf_get_f32(g, key, out);
    if (rc == T2_ENOTFOUND) {
        t2_err_clear();
        *out = dflt;
        return 0;
    }
    return rc;
}

/* Find tensor `name` and check its shape (rows x cols; rows 0 for a 1-D tensor of cols). */
static int gguf_tensor(const t2_gguf *g, const char *name, int rows, int cols,
                       const t2_gguf_tensor **out) {
    const t2_gguf_tensor *t = t2_gguf_find_tensor(g, name);
    if (!t) return t2_err_set(T2_ENOTFOUND, "%s: tensor '%s' not found", t2_gguf_path(g), name);
    int ok = rows ? (t->n_dims == 2 && t->ne[0] == cols && t->ne[1] == rows)
                  : (t->n_dims == 1 && t->ne[0] == cols);
    if (!ok) {
        char got[96];
        int n = 0;
        for (uint32_t i = 0; i < t->n_dims && n < (int)sizeof got - 24; i++)
            n += snprintf(got + n, sizeof got - n, "%s%lld", i ? " x " : "", (long long)t->ne[i]);
        if (rows)
            return t2_err_set(T2_EFORMAT, "%s: tensor '%s' has shape [%s], expected [%d x %d]",
                              t2_gguf_path(g), name, got, cols, rows);
        return t2_err_set(T2_EFORMAT, "%s: tensor '%s' has shape [%s], expected [%d]",
                          t2_gguf_path(g), name, got, cols);
    }
    *out = t;
    return 0;
}

static int gguf_mat(const t2_gguf *g, const char *name, int rows, int cols, t2_mat *out) {
    const t2_gguf_tensor *t;
    int rc = gguf_tensor(g, name, rows, cols, &t);
    if (rc < 0) return rc;
    *out = mat(t->type, rows, cols, t->data);
    return 0;
}

static int gguf_norm(const t2_gguf *g, const char *name, int dim, float *dst) {
    const t2_gguf_tensor *t;
    int rc = gguf_tensor(g, name, 0, dim, &t);
    if (rc < 0) return rc;
    t2_to_f32(dst, t->data, t->type, dim);
    return 0;
}

/* "<arch>.<suffix>" into buf */
static const char *akey(char *buf, size_t n, const t2_config *c, const char *suffix) {
    snprintf(buf, n, "%s.%s", t2_arch_name(c->arch), suffix);
    return buf;
}

/* Rope scaling from "<arch>.rope.scaling.*": none, linear (factors filled) or llama3. */
static int gguf_rope_scaling(const t2_gguf *g, t2_config *c, float *linear) {
    char k[96];
    const char *s;
    size_t n;
    *linear = 0;
    int rc = t2_gguf_get_str(g, akey(k, sizeof k, c, "rope.scaling.type"), &s, &n);
    if (rc == T2_ENOTFOUND) return (t2_err_clear(), 0);
    if (rc < 0) return rc;
    if (n == 4 && memcmp(s, "none", 4) == 0) return 0;
    float factor;
    if ((rc = gguf_float(g, akey(k, sizeof k, c, "rope.scaling.factor"), &factor, 0)) < 0)
        return rc;
    if (n == 6 && memcmp(s, "linear", 6) == 0) {
        if (!(factor >= 1 && factor < 1e6f))
            return t2_err_set(T2_EFORMAT, "%s: %s = %g must be in 1..1e6", t2_gguf_path(g), k,
                              (double)factor);
        *linear = factor;
        return 0;
    }
    if (n == 6 && memcmp(s, "llama3", 6) == 0) {
        c->rope_scaling = T2_ROPE_LLAMA3;
        c->rope_factor = factor;
        if ((rc = gguf_float(g, akey(k, sizeof k, c, "rope.scaling.low_freq_factor"),
                             &c->rope_low_freq, 1.0f)) < 0 ||
            (rc = gguf_float(g, akey(k, sizeof k, c, "rope.scaling.high_freq_factor"),
                             &c->rope_high_freq, 4.0f)) < 0)
            return rc;
        return gguf_int(g, akey(k, sizeof k, c, "rope.scaling.original_context_length"),
                        &c->rope_orig_ctx, 1, 0);
    }
    return t2_err_set(T2_EUNSUPPORTED, "%s: rope scaling '%.*s' is not supported (T2 supports "
                      "none, linear and llama3)", t2_gguf_path(g), (int)(n > 32 ? 32 : n), s);
}

/* Hyperparameters from the metadata (and the vocabulary from token_embd). */
static int gguf_config(const t2_gguf *g, t2_config *c, float *linear) {
    const char *path = t2_gguf_path(g), *arch;
    size_t arch_len;
    char k[96];
    int rc;
    if ((rc = t2_gguf_get_str(g, "general.architecture", &arch, &arch_len)) < 0) return rc;
    if ((rc = t2_arch_parse(arch, arch_len, &c->arch)) < 0)
        return t2_err_prefix(rc, "%s", path);
#define AINT(suffix, dst, req, dflt) gguf_int(g, akey(k, sizeof k, c, suffix), dst, req, dflt)
    if ((rc = AINT("embedding_length", &c->dim, 1, 0)) < 0 ||
        (rc = AINT("feed_forward_length", &c->hidden_dim, 1, 0)) < 0 ||
        (rc = AINT("block_count", &c->n_layers, 1, 0)) < 0 ||
        (rc = AINT("attention.head_count", &c->n_heads, 1, 0)) < 0 ||
        (rc = AINT("attention.head_count_kv", &c->n_kv_heads, 0, c->n_heads)) < 0 ||
        (rc = AINT("context_length", &c->seq_len, 1, 0)) < 0 ||
        (rc = gguf_float(g, akey(k, sizeof k, c, "attention.layer_norm_rms_epsilon"),
                         &c->rms_eps, 1e-5f)) < 0 ||
        (rc = gguf_float(g, akey(k, sizeof k, c, "rope.freq_base"), &c->rope_theta,
                         c->arch == T2_ARCH_LLAMA ? 10000.0f : 1000000.0f)) < 0)
        return rc;
    int kl, vl;
    if ((rc = AINT("attention.key_length", &kl, 0, c->n_heads ? c->dim / c->n_heads : 0)) < 0 ||
        (rc = AINT("attention.value_length", &vl, 0, kl)) < 0)
        return rc;
    if (vl != kl)
        return t2_err_set(T2_EUNSUPPORTED, "%s: key length %d and value length %d differ (not "
                          "supported)", path, kl, vl);
    c->head_dim = kl;
    const t2_gguf_tensor *emb = t2_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[1] > INT32_MAX)
        return t2_err_set(T2_EFORMAT, "%s: tensor 'token_embd.weight' %s", path,
                          emb ? "is not a 2-D matrix" : "not found");
    c->vocab_size = (int)emb->ne[1];
    int vocab_kv, rope_dim;
    if ((rc = AINT("vocab_size", &vocab_kv, 0, c->vocab_size)) < 0) return rc;
    if (vocab_kv != c->vocab_size)
        return t2_err_set(T2_EFORMAT, "%s: %s %d but token_embd.weight has %d rows", path, k,
                          vocab_kv, c->vocab_size);
    config_defaults(c);
    if ((rc = AINT("rope.dimension_count", &rope_dim, 0, c->head_dim)) < 0) return rc;
#undef AINT
    if ((rc = gguf_rope_scaling(g, c, linear)) < 0 || (rc = t2_config_check(c, path)) < 0)
        return rc;
    if (rope_dim != c->head_dim)
        return t2_err_set(T2_EUNSUPPORTED, "%s: partial rotary embeddings (rope dimension %d, "
                          "head dim %d) are not supported", path, rope_dim, c->head_dim);
    return 0;
}

/* Layer l's matrices, norms, biases and Q/K norms. */
static int gguf_layer(t2_model *m, const t2_gguf *g, int l) {
    const t2_config *c = &m->cfg;
    const int D = c->dim, F = c->hidden_dim, QD = c->n_heads * c->head_dim;
    const int KVD = c->n_kv_heads * c->head_dim;
    t2_layer *ly = &m->layers[l];
    char key[128];
    int rc;
    struct { const char *suffix; int rows, cols; t2_mat *dst; } mats[] = {
        {"attn_q", QD, D, &ly->wq},       {"attn_k", KVD, D, &ly->wk},
        {"attn_v", KVD, D, &ly->wv},      {"attn_output", D, QD, &ly->wo},
        {"ffn_gate", F, D, &ly->w_gate},  {"ffn_down", D, F, &ly->w_down},
        {"ffn_up", F, D, &ly->w_up},
    };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        snprintf(key, sizeof key, "blk.%d.%s.weight", l, mats[i].suffix);
        if ((rc = gguf_mat(g, key, mats[i].rows, mats[i].cols, mats[i].dst)) < 0) return rc;
    }
    struct { const char *name; int n; const float *dst; } vecs[] = {
        {"attn_norm.weight", D, norm_slot(m, 2 * l)},
        {"ffn_norm.weight", D, norm_slot(m, 2 * l + 1)},
        {"attn_q.bias", QD, ly->bq},     {"attn_k.bias", KVD, ly->bk},
        {"attn_v.bias", KVD, ly->bv},    {"attn_q_norm.weight", c->head_dim, ly->q_norm},
        {"attn_k_norm.weight", c->head_dim, ly->k_norm},
    };
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        if (!vecs[i].dst) continue;
        snprintf(key, sizeof key, "blk.%d.%s", l, vecs[i].name);
        if ((rc = gguf_norm(g, key, vecs[i].n, t2_model_fill_ptr(vecs[i].dst))) < 0) return rc;
    }
    ly->attn_norm = norm_slot(m, 2 * l);
    ly->ffn_norm = norm_slot(m, 2 * l + 1);
    return 0;
}

/* Embedding, classifier, final norm and rope factors. */
static int gguf_globals(t2_model *m, const t2_gguf *g, float linear) {
    const t2_config *c = &m->cfg;
    const int D = c->dim, V = c->vocab_size, half = c->head_dim / 2;
    int rc;
    if ((rc = gguf_mat(g, "token_embd.weight", V, D, &m->token_embd)) < 0) return rc;
    if (t2_gguf_find_tensor(g, "output.weight")) {
        if ((rc = gguf_mat(g, "output.weight", V, D, &m->output)) < 0) return rc;
    } else {
        m->output = m->token_embd;
        m->tied = 1;
    }
    if ((rc = gguf_norm(g, "output_norm.weight", D, norm_slot(m, 2 * c->n_layers))) < 0)
        return rc;
    m->output_norm = norm_slot(m, 2 * c->n_layers);
    float *freqs = m->extra + m->n_extra - c->head_dim;
    if (t2_gguf_find_tensor(g, "rope_freqs.weight")) {
        if ((rc = gguf_norm(g, "rope_freqs.weight", half, freqs)) < 0) return rc;
        for (int i = 0; i < half && linear > 0; i++) freqs[i] *= linear; /* llama.cpp: both */
        m->rope_freqs = freqs;
    } else if (linear > 0) {
        for (int i = 0; i < half; i++) freqs[i] = linear;
        m->rope_freqs = freqs;
    }
    return t2_model_finish_rope(m);
}

static int load_gguf(t2_model **out, const char *path) {
    t2_gguf *g = NULL;
    t2_model *m = NULL;
    t2_config c = {0};
    float linear = 0;
    int rc = t2_gguf_open(&g, path);
    if (rc < 0) return rc;
    if ((rc = gguf_config(g, &c, &linear)) < 0) goto err;
    if (!(m = model_alloc(path, &c))) {
        rc = t2_err_set(T2_ENOMEM, "%s: out of memory", path);
        goto err;
    }
    m->format = T2_FORMAT_GGUF;
    /* biases: required by qwen2, optional (all layers or none) for llama, none for qwen3 */
    int biases = c.arch == T2_ARCH_QWEN2 ||
                 (c.arch == T2_ARCH_LLAMA && t2_gguf_find_tensor(g, "blk.0.attn_q.bias"));
    if ((rc = extra_alloc(m, biases)) < 0 || (rc = gguf_globals(m, g, linear)) < 0) goto err;
    for (int l = 0; l < c.n_layers; l++)
        if ((rc = gguf_layer(m, g, l)) < 0) goto err;
    m->gguf = g;
    *out = m;
    return 0;
err:
    t2_model_destroy(&m);
    t2_gguf_close(&g);
    return rc;
}

int t2_model_load(t2_model **out, const char *path) {
    *out = NULL;
    unsigned char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return t2_err_set(T2_EIO, "%s: not a regular file", path);
    }
    ssize_t got = read(fd, magic, 4);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        close(fd);
        return load_gguf(out, path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 28) {
        close(fd);
        return t2_err_set(T2_EFORMAT, "%s: not a model file (%zu bytes: neither GGUF nor llama2.c)",
                          path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return t2_err_set(T2_EIO, "%s: mmap failed: %s", path, strerror(errno));
    int rc = load_llama2c(out, path, map, size);
    if (rc < 0) {
        munmap(map, size);
        return rc;
    }
    (*out)->map = map;
    (*out)->map_size = size;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

static size_t mat_bytes(const t2_mat *w) {
    return (size_t)w->rows * t2_dtype_row_bytes(w->type, w->cols);
}

size_t t2_model_weight_bytes_per_token(const t2_model *m) {
    size_t b = t2_dtype_row_bytes(m->token_embd.type, m->cfg.dim) + mat_bytes(&m->output);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const t2_layer *ly = &m->layers[l];
        b += mat_bytes(&ly->wq) + mat_bytes(&ly->wk) + mat_bytes(&ly->wv) + mat_bytes(&ly->wo) +
             mat_bytes(&ly->w_gate) + mat_bytes(&ly->w_down) + mat_bytes(&ly->w_up);
    }
    return b + ((size_t)2 * m->cfg.n_layers + 1) * m->cfg.dim * 4;
}

int64_t t2_model_n_params(const t2_model *m) {
    const t2_config *c = &m->cfg;
    int64_t D = c->dim, F = c->hidden_dim, QD = (int64_t)c->n_heads * c->head_dim;
    int64_t KVD = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t per_layer = 2 * QD * D + 2 * KVD * D + 3 * F * D + 2 * D;
    int64_t extra = m->extra ? (int64_t)m->n_extra - c->head_dim : 0; /* biases, Q/K norms */
    return (int64_t)c->vocab_size * D * (m->tied ? 1 : 2) + c->n_layers * per_layer + D + extra;
}

t2_dtype t2_model_dtype(const t2_model *m) { return m->layers[0].w_gate.type; }

int t2_model_load_tokenizer(t2_tokenizer **out, const t2_model *m, const char *tok_path) {
    int rc;
    *out = NULL;
    if (tok_path) {
        rc = t2_tok_load_llama2c(out, tok_path, m->cfg.vocab_size);
    } else if (m->gguf && t2_gguf_find_key(m->gguf, "tokenizer.ggml.tokens") >= 0) {
        rc = t2_tok_load_gguf(out, m->gguf);
    } else {
        return t2_err_set(T2_ENOTFOUND, "%s: the model has no tokenizer: give one with -z "
                          "TOKENIZER.bin", m->path);
    }
    if (rc < 0) return rc;
    if (t2_tok_vocab_size(*out) != m->cfg.vocab_size) {
        rc = t2_err_set(T2_EMISMATCH, "%s: tokenizer has %d tokens but model %s has a vocabulary of %d",
                        tok_path ? tok_path : m->path, t2_tok_vocab_size(*out), m->path,
                        m->cfg.vocab_size);
        t2_tok_destroy(out);
        return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* writing                                                                                     */

/* GGUF general.file_type codes (llama.cpp's LLAMA_FTYPE_*; a K-quant file is its _S mix). */
static uint32_t file_type_code(t2_dtype t) {
    switch (t) {
    case T2_F32: return 0;
    case T2_F16: return 1;
    case T2_Q4_0: return 2;
    case T2_Q4_1: return 3;
    case T2_Q8_0: return 7;
    case T2_Q5_0: return 8;
    case T2_Q5_1: return 9;
    case T2_Q2_K: return 10;
    case T2_Q3_K: return 11;
    case T2_Q4_K: return 14;
    case T2_Q5_K: return 16;
    case T2_Q6_K: return 18;
    case T2_BF16: return 32;
    }
    return 0;
}

/* The type a matrix is written in for a file of `type`: as llama.cpp does, the output matrix of a
 * 4-bit file is Q6_K, and a row length that is not a multiple of the type's block falls back to
 * Q8_0 (or F32 when not a multiple of 32 either). */
static t2_dtype mat_type(t2_dtype type, const char *name, int cols) {
    if ((type == T2_Q4_0 || type == T2_Q4_K) && strcmp(name, "output.weight") == 0)
        type = T2_Q6_K;
    if (cols % t2_dtype_block(type) == 0) return type;
    return cols % T2_Q8_0_BLOCK == 0 ? T2_Q8_0 : T2_F32;
}

/* Convert a matrix to `type` (or borrow it when already of that type). *buf is set to the
 * memory to free (NULL if borrowed). */
static int convert_mat(const t2_mat *w, t2_dtype type, const void **data, void **buf) {
    *buf = NULL;
    if (w->type == type) {
        *data = w->data;
        return 0;
    }
    if (!t2_dtype_writable(type))
        return t2_err_set(T2_EUNSUPPORTED, "T2 cannot write %s (it writes F32, F16, BF16, Q8_0, "
                          "Q4_0, Q4_K, Q6_K)", t2_dtype_name(type));
    if (w->cols % t2_dtype_block(type))
        return t2_err_set(T2_EINVAL, "cannot store a matrix with %d columns as %s (needs a "
                          "multiple of %d)", w->cols, t2_dtype_name(type), t2_dtype_block(type));
    size_t rb = t2_dtype_row_bytes(type, w->cols);
    char *out = malloc((size_t)w->rows * rb);
    float *row = malloc((size_t)w->cols * sizeof(float));
    if (!out || !row) {
        free(out);
        free(row);
        return t2_err_set(T2_ENOMEM, "out of memory converting a %dx%d matrix", w->rows, w->cols);
    }
    for (int r = 0; r < w->rows; r++) {
        t2_to_f32(row, t2_mat_row(w, r), w->type, w->cols);
        t2_from_f32(out + (size_t)r * rb, row, type, w->cols);
    }
    free(row);
    *data = out;
    *buf = out;
    return 0;
}

/* Architecture keys "<arch>.*" (Llama-2 files keep exactly their historical keys). */
static int write_config_keys(const t2_model *m, t2_gguf_writer *w) {
    const t2_config *c = &m->cfg;
    char k[96];
    int rc;
#define U32(suffix, v) t2_gguf_set_u32(w, akey(k, sizeof k, c, suffix), (uint32_t)(v))
#define F32(suffix, v) t2_gguf_set_f32(w, akey(k, sizeof k, c, suffix), (v))
    if ((rc = U32("context_length", c->seq_len)) < 0 ||
        (rc = U32("embedding_length", c->dim)) < 0 ||
        (rc = U32("block_count", c->n_layers)) < 0 ||
        (rc = U32("feed_forward_length", c->hidden_dim)) < 0 ||
        (rc = U32("attention.head_count", c->n_heads)) < 0 ||
        (rc = U32("attention.head_count_kv", c->n_kv_heads)) < 0 ||
        (rc = U32("rope.dimension_count", c->head_dim)) < 0 ||
        (rc = U32("vocab_size", c->vocab_size)) < 0 ||
        (rc = F32("attention.layer_norm_rms_epsilon", c->rms_eps)) < 0 ||
        (rc = F32("rope.freq_base", c->rope_theta)) < 0)
        return rc;
    if (c->head_dim * c->n_heads != c->dim &&
        ((rc = U32("attention.key_length", c->head_dim)) < 0 ||
         (rc = U32("attention.value_length", c->head_dim)) < 0))
        return rc;
    /* Rope scaling is written as the rope_freqs tensor only, as llama.cpp does: llama.cpp
     * refuses a scaling type it does not know and would apply rope.scaling.factor again. */
#undef U32
#undef F32
    return 0;
}

/* Layer l's biases and Q/K norms (F32), when the model has them. */
static int write_layer_vecs(const t2_model *m, t2_gguf_writer *w, int l) {
    const t2_config *c = &m->cfg;
    const t2_layer *ly = &m->layers[l];
    const int64_t QD = (int64_t)c->n_heads * c->head_dim;
    const int64_t KVD = (int64_t)c->n_kv_heads * c->head_dim;
    struct { const char *name; int64_t n; const float *p; } v[] = {
        {"attn_q.bias", QD, ly->bq}, {"attn_k.bias", KVD, ly->bk}, {"attn_v.bias", KVD, ly->bv},
        {"attn_q_norm.weight", c->head_dim, ly->q_norm},
        {"attn_k_norm.weight", c->head_dim, ly->k_norm},
    };
    char key[128];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        if (!v[i].p) continue;
        snprintf(key, sizeof key, "blk.%d.%s", l, v[i].name);
        int rc = t2_gguf_add_tensor(w, key, T2_F32, 1, &v[i].n, v[i].p);
        if (rc < 0) return rc;
    }
    return 0;
}

int t2_model_save_gguf(const t2_model *m, const t2_tokenizer *tok, t2_dtype type,
                       const char *name, const char *path) {
    t2_gguf_writer *w;
    int rc = t2_gguf_writer_new(&w);
    if (rc < 0) return t2_err_prefix(rc, "%s", path);
    if (tok) { /* the tokenizer's keys after the model's, as before */
        if ((rc = t2_gguf_set_str(w, "general.architecture", t2_arch_name(m->cfg.arch))) < 0 ||
            (rc = t2_gguf_set_str(w, "general.name", name ? name : "t2-model")) < 0 ||
            (rc = t2_gguf_set_u32(w, "general.file_type", file_type_code(type))) < 0 ||
            (rc = write_config_keys(m, w)) < 0 || (rc = t2_tok_write_gguf(tok, w)) < 0) {
            t2_gguf_writer_destroy(&w);
            return rc;
        }
    }
    rc = t2_model_write_gguf(m, w, type, name, path);
    t2_gguf_writer_destroy(&w);
    return rc;
}

int t2_model_write_gguf(const t2_model *m, t2_gguf_writer *w, t2_dtype type, const char *name,
                        const char *path) {
    const t2_config *c = &m->cfg;
    int n_mats = 7 * c->n_layers + 2, nbuf = 0, rc;
    void **bufs = calloc((size_t)n_mats, sizeof *bufs);
    char key[128];
    if (!bufs) {
        rc = t2_err_set(T2_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((rc = t2_gguf_set_str(w, "general.architecture", t2_arch_name(c->arch))) < 0 ||
        (rc = t2_gguf_set_str(w, "general.name", name ? name : "t2-model")) < 0 ||
        (rc = t2_gguf_set_u32(w, "general.file_type", file_type_code(type))) < 0 ||
        (t2_quant_is(type) &&
         (rc = t2_gguf_set_u32(w, "general.quantization_version", 2)) < 0) ||
        (rc = write_config_keys(m, w)) < 0)
        goto out;

    /* add a matrix, converted to `type` */
#define ADD_MAT(nm, wp)                                                                     \
    do {                                                                                    \
        const void *d_;                                                                     \
        t2_dtype t_ = mat_type(type, (nm), (wp)->cols);                                     \
        if ((rc = convert_mat((wp), t_, &d_, &bufs[nbuf])) < 0) {                           \
            t2_err_prefix(rc, "%s: tensor '%s'", path, (nm));                               \
            goto out;                                                                       \
        }                                                                                   \
        nbuf++;                                                                             \
        int64_t ne_[2] = {(wp)->cols, (wp)->rows};                                          \
        if ((rc = t2_gguf_add_tensor(w, (nm), t_, 2, ne_, d_)) < 0) goto out;               \
    } while (0)
#define ADD_NORM(nm, ptr)                                                                   \
    do {                                                                                    \
        int64_t ne_[1] = {c->dim};                                                          \
        if ((rc = t2_gguf_add_tensor(w, (nm), T2_F32, 1, ne_, (ptr))) < 0) goto out;        \
    } while (0)

    ADD_MAT("token_embd.weight", &m->token_embd);
    ADD_NORM("output_norm.weight", m->output_norm);
    if (!m->tied) ADD_MAT("output.weight", &m->output);
    for (int l = 0; l < c->n_layers; l++) {
        const t2_layer *ly = &m->layers[l];
        static const char *names[] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                      "ffn_gate", "ffn_down", "ffn_up"};
        const t2_mat *mats[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo,
                                &ly->w_gate, &ly->w_down, &ly->w_up};
        for (int i = 0; i < 7; i++) {
            snprintf(key, sizeof key, "blk.%d.%s.weight", l, names[i]);
            ADD_MAT(key, mats[i]);
        }
        snprintf(key, sizeof key, "blk.%d.attn_norm.weight", l);
        ADD_NORM(key, ly->attn_norm);
        snprintf(key, sizeof key, "blk.%d.ffn_norm.weight", l);
        ADD_NORM(key, ly->ffn_norm);
        if ((rc = write_layer_vecs(m, w, l)) < 0) goto out;
    }
    if (m->rope_freqs) {
        int64_t ne_[1] = {c->head_dim / 2};
        if ((rc = t2_gguf_add_tensor(w, "rope_freqs.weight", T2_F32, 1, ne_, m->rope_freqs)) < 0)
            goto out;
    }
#undef ADD_MAT
#undef ADD_NORM
    rc = t2_gguf_writer_write(w, path);
out:
    for (int i = 0; i < nbuf && bufs; i++) free(bufs[i]);
    free(bufs);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* random models                                                                               */

/* Fill rows x cols normals of std 1/sqrt(cols) at *p and advance *p past them. */
static float *fill_normal(float **p, size_t rows, size_t cols, uint64_t *s) {
    float *q = *p, sd = 1.0f / sqrtf((float)cols);
    for (size_t i = 0; i < rows * cols; i++) q[i] = sd * (float)t2_xorshift64s_normal(s);
    *p += rows * cols;
    return q;
}

int t2_model_init_random(t2_model **out, const t2_config *cfg, int tied, uint64_t seed) {
    t2_config c = *cfg;
    *out = NULL;
    config_defaults(&c);
    int rc = t2_config_check(&c, "model shape");
    if (rc < 0) return rc;
    const size_t D = c.dim, F = c.hidden_dim, V = c.vocab_size;
    const size_t QD = (size_t)c.n_heads * c.head_dim, KVD = (size_t)c.n_kv_heads * c.head_dim;
    const size_t per_layer = 2 * QD * D + 2 * KVD * D + 3 * F * D;
    const size_t total = V * D * (tied ? 1 : 2) + (size_t)c.n_layers * per_layer;
    t2_model *m = model_alloc("(random)", &c);
    if (!m || !(m->owned = malloc(total * sizeof(float)))) {
        t2_model_destroy(&m);
        return t2_err_set(T2_ENOMEM, "t2 init: out of memory for %zu parameters", total);
    }
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    if (!s) s = 1;
    float *p = m->owned;
    /* std 1/sqrt(fan_in) keeps activations O(1) through the layers */
#define FILL(rows, cols) fill_normal(&p, (rows), (cols), &s)
    m->tied = tied;
    m->token_embd = mat(T2_F32, (int)V, (int)D, FILL(V, D));
    m->output = tied ? m->token_embd : mat(T2_F32, (int)V, (int)D, FILL(V, D));
    for (int l = 0; l < c.n_layers; l++) {
        t2_layer *ly = &m->layers[l];
        ly->wq = mat(T2_F32, (int)QD, (int)D, FILL(QD, D));
        ly->wk = mat(T2_F32, (int)KVD, (int)D, FILL(KVD, D));
        ly->wv = mat(T2_F32, (int)KVD, (int)D, FILL(KVD, D));
        ly->wo = mat(T2_F32, (int)D, (int)QD, FILL(D, QD));
        ly->w_gate = mat(T2_F32, (int)F, (int)D, FILL(F, D));
        ly->w_down = mat(T2_F32, (int)D, (int)F, FILL(D, F));
        ly->w_up = mat(T2_F32, (int)F, (int)D, FILL(F, D));
    }
#undef FILL
    for (size_t i = 0; i < ((size_t)2 * c.n_layers + 1) * D; i++)
        m->norms[i] = 1.0f + 0.1f * (float)t2_xorshift64s_normal(&s);
    for (int l = 0; l < c.n_layers; l++) {
        m->layers[l].attn_norm = norm_slot(m, 2 * l);
        m->layers[l].ffn_norm = norm_slot(m, 2 * l + 1);
    }
    m->output_norm = norm_slot(m, 2 * c.n_layers);
    /* other architectures: biases and Q/K norms drawn after all of the above, so Llama models
     * keep their weights for a given seed */
    if ((rc = extra_alloc(m, c.arch == T2_ARCH_QWEN2)) < 0) {
        t2_model_destroy(&m);
        return rc;
    }
    for (size_t i = 0; i + c.head_dim < m->n_extra; i++)
        m->extra[i] = c.arch == T2_ARCH_QWEN2 ? 0.5f * (float)t2_xorshift64s_normal(&s) /* biases */
                                              : 1.0f + 0.1f * (float)t2_xorshift64s_normal(&s); /* Q/K norms */
    if ((rc = t2_model_finish_rope(m)) < 0) {
        t2_model_destroy(&m);
        return rc;
    }
    *out = m;
    return 0;
}

int t2_model_new_blank(t2_model **out, const t2_config *cfg, int biases, const char *path) {
    t2_config c = *cfg;
    *out = NULL;
    config_defaults(&c);
    int rc = t2_config_check(&c, path);
    if (rc < 0) return rc;
    t2_model *m = model_alloc(path, &c);
    if (!m) return t2_err_set(T2_ENOMEM, "%s: out of memory", path);
    if ((rc = extra_alloc(m, biases)) < 0) {
        t2_model_destroy(&m);
        return rc;
    }
    for (int l = 0; l < c.n_layers; l++) {
        m->layers[l].attn_norm = norm_slot(m, 2 * l);
        m->layers[l].ffn_norm = norm_slot(m, 2 * l + 1);
    }
    m->output_norm = norm_slot(m, 2 * c.n_layers);
    m->format = T2_FORMAT_GGUF;
    *out = m;
    return 0;
}

const char *t2_model_sha256(t2_model *m) {
    if (m->sha256[0]) return m->sha256;
    if (m->owned) {
        memset(m->sha256, '0', 64);
        m->sha256[64] = 0;
        return m->sha256;
    }
    if (t2_sha256_file(m->path, m->sha256) < 0) {
        m->sha256[0] = 0;
        return NULL;
    }
    return m->sha256;
}

static const char *const target_names[T2_N_TARGETS] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

const char *t2_target_name(int k) { return k >= 0 && k < T2_N_TARGETS ? target_names[k] : "?"; }

const t2_mat *t2_layer_mat(const t2_layer *ly, int k) {
    switch (k) {
    case T2_TGT_Q: return &ly->wq;
    case T2_TGT_K: return &ly->wk;
    case T2_TGT_V: return &ly->wv;
    case T2_TGT_O: return &ly->wo;
    case T2_TGT_GATE: return &ly->w_gate;
    case T2_TGT_UP: return &ly->w_up;
    case T2_TGT_DOWN: return &ly->w_down;
    }
    return NULL;
}
