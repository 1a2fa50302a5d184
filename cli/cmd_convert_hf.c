/* cmd_convert_hf.c - `t2 convert HF_FOLDER OUT.gguf`: a Hugging Face checkpoint to GGUF.
 *
 * Steps: config.json -> t2_config; open the safetensors files (one, or the shards named by
 * model.safetensors.index.json); build a model whose matrices point into the mappings (Q and K
 * of `llama` models are copied with their rows permuted, see permute_rows); add the tokenizer
 * (tokenizer.json, when present) and the eos ids of generation_config.json; write the GGUF.
 */
#include "convert_hf.h"
#include "engine/tokenizer.h"

#include "base/t2_err.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/safetensors.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HF_MAX_FILES 4096

typedef struct hf_src {
    const char *dir;
    t2_st **files;
    unsigned char **used; /* per file, per tensor: consumed */
    int n_files;
    void **bufs;          /* permuted Q/K copies */
    int n_bufs;
} hf_src;

static void hf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void hf_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("t2 convert: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static const char *hf_path(char *buf, size_t n, const char *dir, const char *file) {
    snprintf(buf, n, "%s/%s", dir, file);
    return buf;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int hf_load_json(const char *path, json_t **out) {
    json_error_t err;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!*out)
        return t2_err_set(T2_EFORMAT, "%s: line %d, column %d: %s", path, err.line, err.column,
                          err.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return t2_err_set(T2_EFORMAT, "%s: not a JSON object", path);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* config.json                                                                                 */

/* Integer member in [lo, hi]; absent or null gives dflt (or an error when dflt < 0). */
static int cfg_int(const json_t *j, const char *path, const char *key, int dflt, int lo, int hi,
                   int *out) {
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) {
        if (dflt < 0) return t2_err_set(T2_EFORMAT, "%s: '%s' is missing", path, key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return t2_err_set(T2_EFORMAT, "%s: '%s' must be an integer in %d..%d", path, key, lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int cfg_num(const json_t *j, const char *path, const char *key, double dflt, float *out) {
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) {
        *out = (float)dflt;
        return 0;
    }
    if (!json_is_number(v))
        return t2_err_set(T2_EFORMAT, "%s: '%s' must be a number", path, key);
    *out = (float)json_number_value(v);
    return 0;
}

static int cfg_arch(const json_t *j, const char *path, t2_arch *arch) {
    static const struct { const char *hf; t2_arch arch; } known[] = {
        {"LlamaForCausalLM", T2_ARCH_LLAMA}, {"MistralForCausalLM", T2_ARCH_LLAMA},
        {"Qwen2ForCausalLM", T2_ARCH_QWEN2}, {"Qwen3ForCausalLM", T2_ARCH_QWEN3}};
    const json_t *a = json_object_get(j, "architectures");
    const char *name = json_string_value(json_array_get(a, 0));
    if (!name || json_array_size(a) != 1)
        return t2_err_set(T2_EFORMAT, "%s: 'architectures' must be a list of one name", path);
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].hf) == 0) {
            *arch = known[i].arch;
            return 0;
        }
    return t2_err_set(T2_EUNSUPPORTED, "%s: architecture '%.64s' is not supported (T2 imports "
                      "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)",
                      path, name);
}

static int cfg_rope_scaling(const json_t *j, const char *path, t2_config *c) {
    const json_t *rs = json_object_get(j, "rope_scaling");
    if (!rs || json_is_null(rs)) return 0;
    const char *type = json_string_value(json_object_get(rs, "rope_type"));
    if (!type) type = json_string_value(json_object_get(rs, "type"));
    if (type && strcmp(type, "default") == 0) return 0;
    if (!type || strcmp(type, "llama3") != 0)
        return t2_err_set(T2_EUNSUPPORTED, "%s: rope_scaling type '%.32s' is not supported (T2 "
                          "supports llama3)", path, type ? type : "?");
    c->rope_scaling = T2_ROPE_LLAMA3;
    int rc;
    if ((rc = cfg_num(rs, path, "factor", 0, &c->rope_factor)) < 0 ||
        (rc = cfg_num(rs, path, "low_freq_factor", 1, &c->rope_low_freq)) < 0 ||
        (rc = cfg_num(rs, path, "high_freq_factor", 4, &c->rope_high_freq)) < 0 ||
        (rc = cfg_int(rs, path, "original_max_position_embeddings", -1, 1, INT_MAX,
                      &c->rope_orig_ctx)) < 0)
        return t2_err_prefix(rc, "rope_scaling");
    return 0;
}

/* Features T2 does not compute are refused; harmless differences are warned about. */
static int cfg_features(const json_t *j, const char *path, const t2_config *c, int *biases) {
    const char *act = json_string_value(json_object_get(j, "hidden_act"));
    if (act && strcmp(act, "silu") != 0)
        return t2_err_set(T2_EUNSUPPORTED, "%s: hidden_act '%.32s' is not supported (silu)",
                          path, act);
    if (json_is_true(json_object_get(j, "mlp_bias")))
        return t2_err_set(T2_EUNSUPPORTED, "%s: mlp_bias is not supported", path);
    int attn_bias = json_is_true(json_object_get(j, "attention_bias"));
    if (attn_bias && c->arch == T2_ARCH_QWEN3)
        return t2_err_set(T2_EUNSUPPORTED, "%s: attention_bias with Qwen3 is not supported", path);
    *biases = c->arch == T2_ARCH_QWEN2 || attn_bias;
    const json_t *sw = json_object_get(j, "sliding_window");
    int use_sw = c->arch == T2_ARCH_LLAMA || json_is_true(json_object_get(j, "use_sliding_window"));
    if (use_sw && json_is_integer(sw) && json_integer_value(sw) < c->seq_len)
        hf_warn("%s: sliding window of %lld tokens ignored: T2 attends to the whole context",
                path, (long long)json_integer_value(sw));
    return 0;
}

static int hf_config(const char *dir, t2_config *c, int *tied, int *biases) {
    char path[4096];
    hf_path(path, sizeof path, dir, "config.json");
    json_t *j;
    int rc = hf_load_json(path, &j), heads = 0;
    if (rc < 0) return rc;
    memset(c, 0, sizeof *c);
    if ((rc = cfg_arch(j, path, &c->arch)) < 0 ||
        (rc = cfg_int(j, path, "hidden_size", -1, 1, 1 << 20, &c->dim)) < 0 ||
        (rc = cfg_int(j, path, "intermediate_size", -1, 1, 1 << 20, &c->hidden_dim)) < 0 ||
        (rc = cfg_int(j, path, "num_hidden_layers", -1, 1, 4096, &c->n_layers)) < 0 ||
        (rc = cfg_int(j, path, "num_attention_heads", -1, 1, 1 << 16, &heads)) < 0 ||
        (rc = cfg_int(j, path, "num_key_value_heads", heads, 1, 1 << 16, &c->n_kv_heads)) < 0 ||
        (rc = cfg_int(j, path, "head_dim", c->dim / heads, 1, 4096, &c->head_dim)) < 0 ||
        (rc = cfg_int(j, path, "vocab_size", -1, 1, 1 << 24, &c->vocab_size)) < 0 ||
        (rc = cfg_int(j, path, "max_position_embeddings", -1, 1, 1 << 22, &c->seq_len)) < 0 ||
        (rc = cfg_num(j, path, "rms_norm_eps", 1e-6, &c->rms_eps)) < 0 ||
        (rc = cfg_num(j, path, "rope_theta", 10000.0, &c->rope_theta)) < 0 ||
        (rc = cfg_rope_scaling(j, path, c)) < 0 || (rc = cfg_features(j, path, c, biases)) < 0)
        goto out;
    c->n_heads = heads;
    const json_t *t = json_object_get(j, "tie_word_embeddings");
    *tied = json_is_true(t);
    rc = t2_config_check(c, path);
out:
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* safetensors files                                                                           */

static int hf_add_file(hf_src *s, const char *file) {
    for (int i = 0; i < s->n_files; i++)
        if (strcmp(t2_st_path(s->files[i]) + strlen(s->dir) + 1, file) == 0) return 0;
    if (!*file || strchr(file, '/') || file[0] == '.' || s->n_files == HF_MAX_FILES)
        return t2_err_set(T2_EFORMAT, "%s/model.safetensors.index.json: bad or too many shard "
                          "file names ('%.64s')", s->dir, file);
    char path[4096];
    int rc = t2_st_open(&s->files[s->n_files], hf_path(path, sizeof path, s->dir, file));
    if (rc < 0) return rc;
    int64_t n = t2_st_n_tensors(s->files[s->n_files]);
    if (!(s->used[s->n_files] = calloc((size_t)n + 1, 1))) {
        t2_st_close(&s->files[s->n_files]);
        return t2_err_set(T2_ENOMEM, "%s: out of memory", path);
    }
    s->n_files++;
    return 0;
}

/* The shards of the index: every weight_map entry must be in the file it names. */
static int hf_open_index(hf_src *s, const char *index) {
    json_t *j;
    int rc = hf_load_json(index, &j);
    if (rc < 0) return rc;
    const json_t *map = json_object_get(j, "weight_map");
    const char *name;
    json_t *v;
    if (!json_is_object(map) || !json_object_size(map))
        rc = t2_err_set(T2_EFORMAT, "%s: 'weight_map' must be a non-empty object", index);
    if (!rc) json_object_foreach((json_t *)map, name, v) {
        const char *file = json_string_value(v);
        if (!file) {
            rc = t2_err_set(T2_EFORMAT, "%s: weight_map['%.64s'] is not a string", index, name);
            break;
        }
        if ((rc = hf_add_file(s, file)) < 0) break;
        int k = 0;
        while (strcmp(t2_st_path(s->files[k]) + strlen(s->dir) + 1, file) != 0) k++;
        if (!t2_st_find(s->files[k], name)) {
            rc = t2_err_set(T2_EFORMAT, "%s: tensor '%.64s' is not in %s", index, name, file);
            break;
        }
    }
    json_decref(j);
    return rc;
}

static int hf_open(hf_src *s, const char *dir) {
    char path[4096];
    s->dir = dir;
    s->files = calloc(HF_MAX_FILES, sizeof *s->files);
    s->used = calloc(HF_MAX_FILES, sizeof *s->used);
    if (!s->files || !s->used) return t2_err_set(T2_ENOMEM, "out of memory");
    if (file_exists(hf_path(path, sizeof path, dir, "model.safetensors.index.json")))
        return hf_open_index(s, path);
    if (file_exists(hf_path(path, sizeof path, dir, "model.safetensors")))
        return hf_add_file(s, "model.safetensors");
    return t2_err_set(T2_ENOTFOUND, "%s: no model.safetensors or model.safetensors.index.json",
                      dir);
}

static void hf_close(hf_src *s) {
    for (int i = 0; i < s->n_files; i++) {
        t2_st_close(&s->files[i]);
        free(s->used[i]);
    }
    for (int i = 0; i < s->n_bufs; i++) free(s->bufs[i]);
    free(s->files);
    free(s->used);
    free(s->bufs);
}

/* Tensor `name` of shape [rows, cols] (rows 0: a vector of cols), of a type T2 computes with. */
static int hf_find(hf_src *s, const char *name, int64_t rows, int64_t cols,
                   const t2_st_tensor **out) {
    for (int f = 0; f < s->n_files; f++) {
        const t2_st_tensor *t = t2_st_find(s->files[f], name);
        if (!t) continue;
        const char *p = t2_st_path(s->files[f]);
        int ok = rows ? t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols
                      : t->n_dims == 1 && t->shape[0] == cols;
        if (!ok) {
            char got[160] = "", want[64];
            for (int i = 0, k = 0; i < t->n_dims && k < 120; i++)
                k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", i ? ", " : "",
                              (long long)t->shape[i]);
            if (rows)
                snprintf(want, sizeof want, "%lld, %lld", (long long)rows, (long long)cols);
            else
                snprintf(want, sizeof want, "%lld", (long long)cols);
            return t2_err_set(T2_EFORMAT, "%s: tensor '%s' has shape [%s], expected [%s]", p,
                              name, got, want);
        }
        if (!t->supported)
            return t2_err_set(T2_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (T2 reads F32, F16 "
                              "and BF16)", p, name, t->dtype);
        s->used[f][t - t2_st_tensor_at(s->files[f], 0)] = 1;
        *out = t;
        return 0;
    }
    return t2_err_set(T2_ENOTFOUND, "%s: tensor '%s' not found in the safetensors files", s->dir,
                      name);
}

/* ------------------------------------------------------------------------------------------ */
/* the model                                                                                   */

/* HF's q_proj / k_proj rows are in rotate-half order (each head: the first hd/2 rows pair with
 * the last hd/2); llama.cpp's `llama` GGUF layout rotates adjacent rows. Within each head,
 * output row 2i + t is input row t * hd/2 + i. `rb` bytes per row. */
static void permute_rows(char *dst, const char *src, size_t rb, int n_heads, int hd) {
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int t = 0; t < 2; t++)
                memcpy(dst + ((size_t)h * hd + 2 * i + t) * rb,
                       src + ((size_t)h * hd + (size_t)t * (hd / 2) + i) * rb, rb);
}

/* Matrix `name` (rows x cols) as a view, or a row-permuted copy when perm_heads > 0. */
static int hf_mat(hf_src *s, const char *name, int rows, int cols, int perm_heads, int hd,
                  t2_mat *out) {
    const t2_st_tensor *t;
    int rc = hf_find(s, name, rows, cols, &t);
    if (rc < 0) return rc;
    *out = (t2_mat){t->type, rows, cols, t->data};
    if (perm_heads <= 0) return 0;
    void *buf = malloc(t->nbytes);
    void **bufs = realloc(s->bufs, (size_t)(s->n_bufs + 1) * sizeof *bufs);
    if (!buf || !bufs) {
        free(buf);
        if (bufs) s->bufs = bufs;
        return t2_err_set(T2_ENOMEM, "%s: out of memory for tensor '%s'", s->dir, name);
    }
    s->bufs = bufs;
    s->bufs[s->n_bufs++] = buf;
    permute_rows(buf, t->data, t2_dtype_row_bytes(t->type, cols), perm_heads, hd);
    out->data = buf;
    return 0;
}

/* Vector `name` of n values into dst (f32), rows permuted like hf_mat when perm_heads > 0. */
static int hf_vec(hf_src *s, const char *name, int n, int perm_heads, int hd, const float *dst) {
    const t2_st_tensor *t;
    int rc = hf_find(s, name, 0, n, &t);
    if (rc < 0) return rc;
    float *d = t2_model_fill_ptr(dst);
    t2_to_f32(d, t->data, t->type, n);
    if (perm_heads > 0) {
        float *tmp = malloc((size_t)n * sizeof *tmp);
        if (!tmp) return t2_err_set(T2_ENOMEM, "out of memory");
        memcpy(tmp, d, (size_t)n * sizeof *tmp);
        permute_rows((char *)d, (const char *)tmp, sizeof(float), perm_heads, hd);
        free(tmp);
    }
    return 0;
}

static int hf_layer(hf_src *s, t2_model *m, int l) {
    const t2_config *c = &m->cfg;
    const int D = c->dim, F = c->hidden_dim, hd = c->head_dim;
    const int QD = c->n_heads * hd, KVD = c->n_kv_heads * hd;
    const int perm = c->arch == T2_ARCH_LLAMA; /* NEOX architectures keep HF's order */
    const int ph = perm ? c->n_heads : 0, pk = perm ? c->n_kv_heads : 0;
    t2_layer *ly = &m->layers[l];
    char n[160];
    int rc;
#define P(suffix) (snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix), n)
    if ((rc = hf_mat(s, P("self_attn.q_proj.weight"), QD, D, ph, hd, &ly->wq)) < 0 ||
        (rc = hf_mat(s, P("self_attn.k_proj.weight"), KVD, D, pk, hd, &ly->wk)) < 0 ||
        (rc = hf_mat(s, P("self_attn.v_proj.weight"), KVD, D, 0, hd, &ly->wv)) < 0 ||
        (rc = hf_mat(s, P("self_attn.o_proj.weight"), D, QD, 0, hd, &ly->wo)) < 0 ||
        (rc = hf_mat(s, P("mlp.gate_proj.weight"), F, D, 0, hd, &ly->w_gate)) < 0 ||
        (rc = hf_mat(s, P("mlp.up_proj.weight"), F, D, 0, hd, &ly->w_up)) < 0 ||
        (rc = hf_mat(s, P("mlp.down_proj.weight"), D, F, 0, hd, &ly->w_down)) < 0 ||
        (rc = hf_vec(s, P("input_layernorm.weight"), D, 0, hd, ly->attn_norm)) < 0 ||
        (rc = hf_vec(s, P("post_attention_layernorm.weight"), D, 0, hd, ly->ffn_norm)) < 0)
        return rc;
    if (ly->bq && ((rc = hf_vec(s, P("self_attn.q_proj.bias"), QD, ph, hd, ly->bq)) < 0 ||
                   (rc = hf_vec(s, P("self_attn.k_proj.bias"), KVD, pk, hd, ly->bk)) < 0 ||
                   (rc = hf_vec(s, P("self_attn.v_proj.bias"), KVD, 0, hd, ly->bv)) < 0))
        return rc;
    if (ly->q_norm && ((rc = hf_vec(s, P("self_attn.q_norm.weight"), hd, 0, hd, ly->q_norm)) < 0 ||
                       (rc = hf_vec(s, P("self_attn.k_norm.weight"), hd, 0, hd, ly->k_norm)) < 0))
        return rc;
#undef P
    return 0;
}

/* Tensors no step consumed (other than buffers HF keeps, e.g. rotary inv_freq): warned. */
static void hf_warn_unused(const hf_src *s) {
    int64_t n = 0;
    const char *first = NULL;
    for (int f = 0; f < s->n_files; f++)
        for (int64_t i = 0; i < t2_st_n_tensors(s->files[f]); i++) {
            const char *name = t2_st_tensor_at(s->files[f], i)->name;
            if (s->used[f][i] || strstr(name, "rotary_emb.inv_freq")) continue;
            if (!n++) first = name;
        }
    if (n) hf_warn("%s: %lld tensor(s) not used, e.g. '%s'", s->dir, (long long)n, first);
}

static int hf_build(hf_src *s, t2_model *m, int tied) {
    const t2_config *c = &m->cfg;
    int rc;
    if ((rc = hf_mat(s, "model.embed_tokens.weight", c->vocab_size, c->dim, 0, 0,
                     &m->token_embd)) < 0 ||
        (rc = hf_vec(s, "model.norm.weight", c->dim, 0, 0, m->output_norm)) < 0)
        return rc;
    m->tied = tied;
    if (tied)
        m->output = m->token_embd;
    else if ((rc = hf_mat(s, "lm_head.weight", c->vocab_size, c->dim, 0, 0, &m->output)) < 0)
        return rc;
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = hf_layer(s, m, l)) < 0) return rc;
    if ((rc = t2_model_finish_rope(m)) < 0) return rc;
    hf_warn_unused(s);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* tokenizer and eos ids                                                                       */

static int hf_tokenizer(const char *dir, t2_gguf_writer **w, int vocab) {
    char tj[4096], tc[4096];
    hf_path(tj, sizeof tj, dir, "tokenizer.json");
    hf_path(tc, sizeof tc, dir, "tokenizer_config.json");
    if (!file_exists(tj)) {
        hf_warn("%s: no tokenizer.json: the GGUF has no tokenizer", dir);
        return 0;
    }
    if (t2_tok_hf_write_gguf_vocab(*w, tj, file_exists(tc) ? tc : NULL, vocab) == 0) return 1;
    hf_warn("%s; the GGUF has no tokenizer", t2_err_msg());
    t2_gguf_writer_destroy(w); /* start over: no half-written tokenizer keys */
    int rc = t2_gguf_writer_new(w);
    return rc < 0 ? rc : 0;
}

/* eos_token_id of generation_config.json (a number or a list): the first as
 * tokenizer.ggml.eos_token_id, all as tokenizer.ggml.eos_token_ids. */
static int hf_eos(const char *dir, t2_gguf_writer *w, int vocab) {
    char path[4096];
    if (!file_exists(hf_path(path, sizeof path, dir, "generation_config.json"))) return 0;
    json_t *j;
    int rc = hf_load_json(path, &j);
    if (rc < 0) return rc;
    const json_t *e = json_object_get(j, "eos_token_id");
    int32_t ids[64];
    size_t n = 0;
    if (json_is_integer(e)) {
        ids[n++] = (int32_t)json_integer_value(e);
    } else if (json_is_array(e)) {
        for (; n < json_array_size(e) && n < 64; n++) {
            const json_t *x = json_array_get(e, n);
            ids[n] = json_is_integer(x) ? (int32_t)json_integer_value(x) : -1;
        }
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (ids[i] < 0 || ids[i] >= vocab || (json_is_integer(e) &&
                                              json_integer_value(e) != ids[0]))
            rc = t2_err_set(T2_EFORMAT, "%s: eos_token_id must be token ids below %d", path,
                            vocab);
    if (!rc && n) {
        if ((rc = t2_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)ids[0])) == 0)
            rc = t2_gguf_set_arr_i32(w, "tokenizer.ggml.eos_token_ids", ids, n);
    }
    json_decref(j);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

int cli_convert_hf(const char *dir, const char *out, const t2_dtype *type_opt, const char *name) {
    t2_config c;
    int tied = 0, biases = 0, rc, has_tok = 0;
    hf_src src = {0};
    t2_model *m = NULL;
    t2_gguf_writer *w = NULL;
    const char *base = strrchr(dir, '/');
    if ((rc = hf_config(dir, &c, &tied, &biases)) < 0 ||
        (rc = t2_model_new_blank(&m, &c, biases, dir)) < 0 || (rc = hf_open(&src, dir)) < 0 ||
        (rc = hf_build(&src, m, tied)) < 0)
        goto out;
    if ((rc = t2_gguf_writer_new(&w)) < 0) goto out;
    if ((rc = has_tok = hf_tokenizer(dir, &w, c.vocab_size)) < 0 || (rc = hf_eos(dir, w, c.vocab_size)) < 0)
        goto out;
    if (!name) name = base && base[1] ? base + 1 : dir;
    t2_dtype type = type_opt ? *type_opt : m->token_embd.type;
    if ((rc = t2_model_write_gguf(m, w, type, name, out)) < 0) goto out;
    fprintf(stderr, "t2 convert: wrote %s (%s, %lld parameters, %s%s)\n", out,
            t2_arch_name(c.arch), (long long)t2_model_n_params(m), t2_dtype_name(type),
            has_tok ? ", tokenizer embedded" : ", no tokenizer");
out:
    t2_gguf_writer_destroy(&w);
    t2_model_destroy(&m);
    hf_close(&src);
    return rc;
}
