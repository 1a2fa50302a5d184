#include "svf/svf.h"

#include "engine/kernels.h"
#include "base/hash.h"
#include "base/platform.h"
#include "base/rng.h"
#include "base/sha256.h"
#include "base/t2_err.h"
#include "base/t2_log.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int); /* T2 threads sgemm itself: one OpenBLAS thread each */

static const char *const target_names[T2_N_TARGETS] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

int t2_targets_parse(const char *s, unsigned *out) {
    if (!strcmp(s, "mlp")) *out = T2_TARGETS_MLP;
    else if (!strcmp(s, "attn")) *out = T2_TARGETS_ATTN;
    else if (!strcmp(s, "all")) *out = T2_TARGETS_ALL;
    else {
        unsigned t = 0;
        const char *p = s;
        while (*p) {
            size_t n = strcspn(p, ",");
            int found = 0;
            for (int k = 0; k < T2_N_TARGETS; k++)
                if (strlen(target_names[k]) == n && !strncmp(p, target_names[k], n)) {
                    t |= 1u << k;
                    found = 1;
                }
            if (!found)
                return t2_err_set(T2_EINVAL, "unknown target '%.*s' (mlp, attn, all, or a comma "
                                  "list of attn_q attn_k attn_v attn_output ffn_gate ffn_up "
                                  "ffn_down)", (int)n, p);
            p += n;
            if (*p == ',') p++;
        }
        if (!t) return t2_err_set(T2_EINVAL, "no targets in '%s'", s);
        *out = t;
    }
    return 0;
}

const char *t2_targets_str(unsigned t, char *buf, size_t cap) {
    if (t == T2_TARGETS_MLP) snprintf(buf, cap, "mlp");
    else if (t == T2_TARGETS_ATTN) snprintf(buf, cap, "attn");
    else if (t == T2_TARGETS_ALL) snprintf(buf, cap, "all");
    else {
        size_t n = 0;
        buf[0] = 0;
        for (int k = 0; k < T2_N_TARGETS && n < cap; k++)
            if (t & (1u << k)) n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", target_names[k]);
    }
    return buf;
}

static int is_hex64(const char *s, size_t n) {
    if (n != 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

/* Read a string key into buf (NUL-terminated, truncated to cap - 1). */
static int gguf_str_copy(const t2_gguf *g, const char *key, char *buf, size_t cap) {
    const char *s;
    size_t n;
    int rc = t2_gguf_get_str(g, key, &s, &n);
    if (rc < 0) return rc;
    if (n >= cap) n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return 0;
}

/* Common header checks of a factors / expert / profile file: kind, base sha256, targets. */
static int check_header(const t2_gguf *g, const char *kind, char sha[65], unsigned *targets) {
    const char *path = t2_gguf_path(g);
    char buf[256];
    int rc = gguf_str_copy(g, "t2.kind", buf, sizeof buf);
    if (rc < 0) return t2_err_prefix(rc, "%s: not a T2 %s file", path, kind);
    if (strcmp(buf, kind))
        return t2_err_set(T2_EFORMAT, "%s: is a T2 '%s' file, expected '%s'", path, buf, kind);
    const char *s;
    size_t n;
    if ((rc = t2_gguf_get_str(g, "t2.base_sha256", &s, &n)) < 0) return rc;
    if (!is_hex64(s, n))
        return t2_err_set(T2_EFORMAT, "%s: t2.base_sha256 is not 64 lowercase hex digits", path);
    memcpy(sha, s, 64);
    sha[64] = 0;
    if ((rc = gguf_str_copy(g, "t2.targets", buf, sizeof buf)) < 0) return rc;
    if ((rc = t2_targets_parse(buf, targets)) < 0) return t2_err_prefix(rc, "%s: t2.targets", path);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* factors                                                                                     */

void t2_factors_destroy(t2_factors **fp) {
    if (!fp || !*fp) return;
    t2_gguf_close(&(*fp)->gguf);
    free((*fp)->svd);
    free((*fp)->owned);
    free(*fp);
    *fp = NULL;
}

size_t t2_factors_bytes(const t2_factors *f) {
    size_t b = 0;
    for (int i = 0; i < f->n_layers * T2_N_TARGETS; i++) {
        const t2_svd *s = &f->svd[i];
        b += ((size_t)s->rows * s->rank + s->rank + (size_t)s->rank * s->cols) * sizeof(float);
    }
    return b;
}

static t2_factors *factors_alloc(int n_layers, unsigned targets) {
    t2_factors *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->n_layers = n_layers;
    f->targets = targets;
    f->svd = calloc((size_t)n_layers * T2_N_TARGETS, sizeof *f->svd);
    if (!f->svd) t2_factors_destroy(&f);
    return f;
}

typedef struct {
    t2_model *m;
    t2_factors *f;
    int *todo; /* indices l * T2_N_TARGETS + k */
    int n_todo;
    atomic_int next, done, failed;
    double *err; /* per todo */
    t2_progress_fn progress;
    void *progress_ctx;
    double t0;
} svd_job;

/* One matrix: float64 copy, dgesdd (singular vectors of nearby singular values are only as good
 * as the arithmetic: float64 keeps W' accurate to float32 rounding even for uneven scales), the
 * factors rounded to float32, and the reconstruction error of the stored factors.
 * Returns 0 or a T2_E code. */
static int svd_one(svd_job *j, int idx, double *err) {
    const int l = idx / T2_N_TARGETS, k = idx % T2_N_TARGETS;
    const t2_mat *W = t2_layer_mat(&j->m->layers[l], k);
    const int rows = W->rows, cols = W->cols, r = rows < cols ? rows : cols;
    t2_svd *s = &j->f->svd[idx];
    float *row = malloc((size_t)cols * sizeof(float));
    double *a = malloc((size_t)rows * cols * sizeof(double));
    double *u = malloc((size_t)rows * r * sizeof(double));
    double *vt = malloc((size_t)r * cols * sizeof(double));
    double *sv = malloc((size_t)r * sizeof(double));
    float *rec = malloc((size_t)rows * cols * sizeof(float));
    float *us = malloc((size_t)rows * r * sizeof(float));
    int rc = 0;
    if (!row || !a || !u || !vt || !sv || !rec || !us) {
        rc = T2_ENOMEM;
        goto out;
    }
    for (int i = 0; i < rows; i++) {
        t2_to_f32(row, t2_mat_row(W, i), W->type, cols);
        for (int q = 0; q < cols; q++) a[(size_t)i * cols + q] = row[q];
    }
    if (LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', rows, cols, a, cols, sv, u, r, vt, cols) != 0) {
        rc = T2_EINTERNAL;
        goto out;
    }
    float *U = (float *)s->U, *S = (float *)s->S, *Vt = (float *)s->Vt;
    double sum = 0;
    for (int q = 0; q < r; q++) {
        S[q] = (float)sv[q];
        sum += S[q];
    }
    for (size_t i = 0; i < (size_t)rows * r; i++) U[i] = (float)u[i];
    for (size_t i = 0; i < (size_t)r * cols; i++) Vt[i] = (float)vt[i];
    s->sum_s = (float)sum;
    /* reconstruction from the stored float32 factors: (U diag S) Vt vs W */
    for (int i = 0; i < rows; i++)
        for (int q = 0; q < r; q++) us[(size_t)i * r + q] = U[(size_t)i * r + q] * S[q];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, r, 1.0f, us, r, Vt, cols,
                0.0f, rec, cols);
    double num = 0, den = 0;
    for (int i = 0; i < rows; i++) {
        t2_to_f32(row, t2_mat_row(W, i), W->type, cols);
        for (int q = 0; q < cols; q++) {
            double d = (double)rec[(size_t)i * cols + q] - row[q];
            num += d * d;
            den += (double)row[q] * row[q];
        }
    }
    *err = den > 0 ? sqrt(num / den) : sqrt(num);
out:
    free(row);
    free(a);
    free(u);
    free(vt);
    free(sv);
    free(rec);
    free(us);
    return rc;
}

static void svd_task(void *arg, int ith, int nth) {
    svd_job *j = arg;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n_todo || atomic_load(&j->failed)) break;
        int rc = svd_one(j, j->todo[i], &j->err[i]);
        if (rc < 0) atomic_store(&j->failed, rc);
        int d = atomic_fetch_add(&j->done, 1) + 1;
        if (ith == 0 && j->progress) j->progress(j->progress_ctx, d, j->n_todo, t2_now() - j->t0);
    }
}

/* The SVD of layer l's matrix k, shaped after the model's matrix (full rank). */
static t2_svd *svd_slot(t2_factors *f, const t2_model *m, int l, int k) {
    const t2_mat *W = t2_layer_mat(&m->layers[l], k);
    t2_svd *s = &f->svd[l * T2_N_TARGETS + k];
    s->rows = W->rows;
    s->cols = W->cols;
    s->rank = W->rows < W->cols ? W->rows : W->cols;
    return s;
}

int t2_factors_compute(t2_factors **out, t2_model *m, unsigned targets, t2_pool *pool,
                       t2_progress_fn progress, void *progress_ctx, double *worst_err) {
    *out = NULL;
    const t2_config *c = &m->cfg;
    const char *sha = t2_model_sha256(m);
    if (!sha) return T2_EIO;
    if (!targets || (targets & ~T2_TARGETS_ALL))
        return t2_err_set(T2_EINVAL, "decompose: no valid targets");
    t2_factors *f = factors_alloc(c->n_layers, targets);
    svd_job j = {.m = m, .f = f, .progress = progress, .progress_ctx = progress_ctx};
    int rc = 0;
    if (!f) return t2_err_set(T2_ENOMEM, "out of memory");
    memcpy(f->base_sha256, sha, 65);
    size_t total = 0;
    j.todo = malloc((size_t)c->n_layers * T2_N_TARGETS * sizeof *j.todo);
    j.err = calloc((size_t)c->n_layers * T2_N_TARGETS, sizeof *j.err);
    if (!j.todo || !j.err) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
        goto out;
    }
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            if (!(targets & (1u << k))) continue;
            t2_svd *s = svd_slot(f, m, l, k);
            total += (size_t)s->rows * s->rank + s->rank + (size_t)s->rank * s->cols;
            j.todo[j.n_todo++] = l * T2_N_TARGETS + k;
        }
    if (!(f->owned = malloc(total * sizeof(float)))) {
        rc = t2_err_set(T2_ENOMEM, "out of memory for %zu MiB of factors", total * 4 >> 20);
        goto out;
    }
    float *p = f->owned;
    for (int i = 0; i < j.n_todo; i++) {
        t2_svd *s = &f->svd[j.todo[i]];
        s->U = p;
        p += (size_t)s->rows * s->rank;
        s->S = p;
        p += s->rank;
        s->Vt = p;
        p += (size_t)s->rank * s->cols;
    }
    j.t0 = t2_now();
    openblas_set_num_threads(1);
    t2_pool_run(pool, svd_task, &j);
    if ((rc = atomic_load(&j.failed)) < 0) {
        rc = t2_err_set(rc, "decompose: SVD failed (%s)", t2_strerror(rc));
        goto out;
    }
    double worst = 0;
    for (int i = 0; i < j.n_todo; i++) worst = j.err[i] > worst ? j.err[i] : worst;
    if (worst_err) *worst_err = worst;
out:
    free(j.todo);
    free(j.err);
    if (rc < 0) t2_factors_destroy(&f);
    *out = f;
    return rc;
}

static int add_f32(t2_gguf_writer *w, const char *name, const float *data, int rows, int cols) {
    int64_t ne[2] = {cols, rows};
    return t2_gguf_add_tensor(w, name, T2_F32, rows ? 2 : 1, ne, data);
}

int t2_factors_save(const t2_factors *f, const char *path) {
    t2_gguf_writer *w;
    char key[128], tbuf[128];
    int rc = t2_gguf_writer_new(&w);
    if (rc < 0) return rc;
    if ((rc = t2_gguf_set_str(w, "t2.kind", "factors")) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.base_sha256", f->base_sha256)) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.targets", t2_targets_str(f->targets, tbuf, sizeof tbuf))) < 0 ||
        (rc = t2_gguf_set_u32(w, "t2.n_layers", (uint32_t)f->n_layers)) < 0)
        goto out;
    for (int l = 0; l < f->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            const t2_svd *s = t2_factors_get(f, l, k);
            if (!s->rank) continue;
            snprintf(key, sizeof key, "blk.%d.%s.svd_u", l, target_names[k]);
            if ((rc = add_f32(w, key, s->U, s->rows, s->rank)) < 0) goto out;
            snprintf(key, sizeof key, "blk.%d.%s.svd_s", l, target_names[k]);
            if ((rc = add_f32(w, key, s->S, 0, s->rank)) < 0) goto out;
            snprintf(key, sizeof key, "blk.%d.%s.svd_vt", l, target_names[k]);
            if ((rc = add_f32(w, key, s->Vt, s->rank, s->cols)) < 0) goto out;
        }
    rc = t2_gguf_writer_write(w, path);
out:
    t2_gguf_writer_destroy(&w);
    return rc;
}

/* F32 tensor of the given shape (rows 0: 1-D of cols), all values finite. */
static int get_f32_tensor(const t2_gguf *g, const char *name, int rows, int cols, const float **out) {
    const char *path = t2_gguf_path(g);
    const t2_gguf_tensor *t = t2_gguf_find_tensor(g, name);
    if (!t) return t2_err_set(T2_ENOTFOUND, "%s: tensor '%s' not found", path, name);
    int ok = t->type == T2_F32 && (rows ? (t->n_dims == 2 && t->ne[0] == cols && t->ne[1] == rows)
                                        : (t->n_dims == 1 && t->ne[0] == cols));
    if (!ok)
        return t2_err_set(T2_EMISMATCH, "%s: tensor '%s' is %s [%lld x %lld], expected F32 [%d x %d]: "
                          "made for another model?", path, name, t2_dtype_name(t->type),
                          (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1), cols,
                          rows ? rows : 1);
    const float *d = t->data;
    size_t n = (size_t)(rows ? rows : 1) * cols;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(d[i]))
            return t2_err_set(T2_EFORMAT, "%s: tensor '%s' has a non-finite value at index %zu",
                              path, name, i);
    *out = d;
    return 0;
}

int t2_factors_load(t2_factors **out, const char *path, t2_model *m) {
    *out = NULL;
    t2_gguf *g = NULL;
    t2_factors *f = NULL;
    char sha[65], key[128];
    unsigned targets;
    int rc = t2_gguf_open(&g, path);
    if (rc < 0) return rc;
    if ((rc = check_header(g, "factors", sha, &targets)) < 0) goto err;
    const char *msha = t2_model_sha256(m);
    if (!msha) {
        rc = T2_EIO;
        goto err;
    }
    if (strcmp(sha, msha)) {
        rc = t2_err_set(T2_EMISMATCH, "%s: factors were made for another model (base sha256 "
                        "%.12s..., %s is %.12s...)", path, sha, m->path, msha);
        goto err;
    }
    if (!(f = factors_alloc(m->cfg.n_layers, targets))) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
        goto err;
    }
    memcpy(f->base_sha256, sha, 65);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            if (!(targets & (1u << k))) continue;
            t2_svd *s = svd_slot(f, m, l, k);
            snprintf(key, sizeof key, "blk.%d.%s.svd_u", l, target_names[k]);
            if ((rc = get_f32_tensor(g, key, s->rows, s->rank, &s->U)) < 0) goto err;
            snprintf(key, sizeof key, "blk.%d.%s.svd_s", l, target_names[k]);
            if ((rc = get_f32_tensor(g, key, 0, s->rank, &s->S)) < 0) goto err;
            snprintf(key, sizeof key, "blk.%d.%s.svd_vt", l, target_names[k]);
            if ((rc = get_f32_tensor(g, key, s->rank, s->cols, &s->Vt)) < 0) goto err;
            double sum = 0;
            for (int q = 0; q < s->rank; q++) {
                if (s->S[q] < 0) {
                    rc = t2_err_set(T2_EFORMAT, "%s: blk.%d.%s.svd_s has a negative singular value",
                                    path, l, target_names[k]);
                    goto err;
                }
                sum += s->S[q];
            }
            s->sum_s = (float)sum;
        }
    f->gguf = g;
    *out = f;
    return 0;
err:
    t2_factors_destroy(&f);
    t2_gguf_close(&g);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* experts                                                                                     */

void t2_expert_destroy(t2_expert **ep) {
    if (!ep || !*ep) return;
    t2_expert *e = *ep;
    free(e->name);
    free(e->task);
    free(e->training);
    free(e->rank);
    free(e->p);
    free(e->owned);
    free(e);
    *ep = NULL;
}

int64_t t2_expert_n_params(const t2_expert *e) {
    int64_t n = 0;
    for (int i = 0; i < e->n_layers * T2_N_TARGETS; i++) n += e->rank[i];
    return n;
}

/* Allocate an expert shaped like the factors restricted to `targets`. */
static t2_expert *expert_alloc(const t2_factors *f, unsigned targets) {
    t2_expert *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    const int n = f->n_layers * T2_N_TARGETS;
    e->n_layers = f->n_layers;
    e->targets = targets;
    e->max_mult = 1.0f;
    memcpy(e->base_sha256, f->base_sha256, 65);
    e->rank = calloc((size_t)n, sizeof *e->rank);
    e->p = calloc((size_t)n, sizeof *e->p);
    size_t total = 0;
    if (e->rank && e->p) {
        for (int i = 0; i < n; i++)
            if (targets & (1u << (i % T2_N_TARGETS))) {
                e->rank[i] = f->svd[i].rank;
                total += (size_t)f->svd[i].rank;
            }
        e->owned = calloc(total ? total : 1, sizeof(float));
    }
    if (!e->rank || !e->p || !e->owned) {
        t2_expert_destroy(&e);
        return NULL;
    }
    float *q = e->owned;
    for (int i = 0; i < n; i++)
        if (e->rank[i]) {
            e->p[i] = q;
            q += e->rank[i];
        }
    return e;
}

int t2_expert_init(t2_expert **out, const t2_factors *f, unsigned targets, const char *name,
                   const char *task, float init_value, float noise_std, uint64_t seed,
                   float max_mult) {
    *out = NULL;
    if (!targets) targets = f->targets;
    if (targets & ~f->targets)
        return t2_err_set(T2_EMISMATCH, "expert targets include matrices the factors do not have");
    if (!isfinite(init_value) || !isfinite(noise_std) || noise_std < 0 || !(max_mult > 0) ||
        !isfinite(max_mult))
        return t2_err_set(T2_EINVAL, "expert init: init value, noise and max_mult must be finite "
                          "(noise >= 0, max_mult > 0)");
    t2_expert *e = expert_alloc(f, targets);
    if (!e) return t2_err_set(T2_ENOMEM, "out of memory");
    e->name = strdup(name ? name : "expert");
    e->task = strdup(task ? task : "");
    e->training = strdup("initialised");
    e->max_mult = max_mult;
    if (!e->name || !e->task || !e->training) {
        t2_expert_destroy(&e);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    if (!s) s = 1;
    for (int i = 0; i < e->n_layers * T2_N_TARGETS; i++)
        for (int q = 0; q < e->rank[i]; q++) {
            float z = 0;
            if (noise_std > 0) z = (float)t2_xorshift64s_normal(&s);
            e->p[i][q] = init_value + noise_std * z;
        }
    *out = e;
    return 0;
}

int t2_expert_save(const t2_expert *e, const char *path) {
    t2_gguf_writer *w;
    char key[128], tbuf[128];
    int rc = t2_gguf_writer_new(&w);
    if (rc < 0) return rc;
    if ((rc = t2_gguf_set_str(w, "t2.kind", "expert")) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.name", e->name)) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.task", e->task)) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.base_sha256", e->base_sha256)) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.targets", t2_targets_str(e->targets, tbuf, sizeof tbuf))) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.activation", "sigmoid")) < 0 ||
        (rc = t2_gguf_set_f32(w, "t2.max_mult", e->max_mult)) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.training", e->training ? e->training : "")) < 0 ||
        (rc = t2_gguf_set_u32(w, "t2.n_layers", (uint32_t)e->n_layers)) < 0)
        goto out;
    for (int l = 0; l < e->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            int i = l * T2_N_TARGETS + k;
            if (!e->rank[i]) continue;
            snprintf(key, sizeof key, "blk.%d.%s.svf_p", l, target_names[k]);
            if ((rc = add_f32(w, key, e->p[i], 0, e->rank[i])) < 0) goto out;
        }
    rc = t2_gguf_writer_write(w, path);
out:
    t2_gguf_writer_destroy(&w);
    return rc;
}

int t2_expert_load(t2_expert **out, const char *path, const t2_factors *f) {
    *out = NULL;
    t2_gguf *g = NULL;
    t2_expert *e = NULL;
    char sha[65], key[128], act[64];
    unsigned targets;
    int rc = t2_gguf_open(&g, path);
    if (rc < 0) return rc;
    if ((rc = check_header(g, "expert", sha, &targets)) < 0) goto out;
    if (strcmp(sha, f->base_sha256)) {
        rc = t2_err_set(T2_EMISMATCH, "%s: expert was trained for another model (base sha256 "
                        "%.12s..., the loaded model is %.12s...)", path, sha, f->base_sha256);
        goto out;
    }
    if (targets & ~f->targets) {
        char a[128], b[128];
        rc = t2_err_set(T2_EMISMATCH, "%s: expert targets '%s' are not all in the factors ('%s')",
                        path, t2_targets_str(targets, a, sizeof a), t2_targets_str(f->targets, b, sizeof b));
        goto out;
    }
    if ((rc = gguf_str_copy(g, "t2.activation", act, sizeof act)) < 0) goto out;
    if (strcmp(act, "sigmoid")) {
        rc = t2_err_set(T2_EUNSUPPORTED, "%s: activation '%s' is not supported (sigmoid)", path, act);
        goto out;
    }
    if (!(e = expert_alloc(f, targets))) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = t2_gguf_get_f32(g, "t2.max_mult", &e->max_mult)) < 0) goto out;
    if (!(e->max_mult > 0) || !isfinite(e->max_mult)) {
        rc = t2_err_set(T2_EFORMAT, "%s: t2.max_mult %g must be finite and positive", path,
                        (double)e->max_mult);
        goto out;
    }
    e->name = t2_gguf_str_dup(g, "t2.name");
    e->task = t2_gguf_str_dup(g, "t2.task");
    e->training = t2_gguf_str_dup(g, "t2.training");
    if (!e->name || !e->task || !e->training) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
        goto out;
    }
    for (int l = 0; l < e->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            int i = l * T2_N_TARGETS + k;
            if (!e->rank[i]) continue;
            const float *p;
            snprintf(key, sizeof key, "blk.%d.%s.svf_p", l, target_names[k]);
            if ((rc = get_f32_tensor(g, key, 0, e->rank[i], &p)) < 0) goto out;
            memcpy(e->p[i], p, (size_t)e->rank[i] * sizeof(float));
        }
    *out = e;
    e = NULL;
out:
    t2_expert_destroy(&e);
    t2_gguf_close(&g);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* mixtures                                                                                    */

int t2_mixture_check(const t2_mixture *mix, const t2_factors *f) {
    if (mix->n <= 0) return t2_err_set(T2_EINVAL, "mixture: no experts");
    const t2_expert *e0 = mix->experts[0];
    for (int i = 0; i < mix->n; i++) {
        const t2_expert *e = mix->experts[i];
        if (strcmp(e->base_sha256, f->base_sha256))
            return t2_err_set(T2_EMISMATCH, "mixture: expert '%s' is for another model", e->name);
        if (e->targets != e0->targets || e->max_mult != e0->max_mult)
            return t2_err_set(T2_EMISMATCH, "mixture: expert '%s' has other targets or max_mult "
                              "than '%s'", e->name, e0->name);
    }
    const int n_alpha = mix->n * (mix->per_matrix ? f->n_layers * T2_N_TARGETS : 1);
    if (mix->n_alpha != n_alpha)
        return t2_err_set(T2_EINVAL, "mixture: %d mixing coefficients for %d experts%s: expected %d",
                          mix->n_alpha, mix->n, mix->per_matrix ? " per matrix" : "", n_alpha);
    for (int i = 0; i < n_alpha; i++)
        if (!isfinite(mix->alpha[i]))
            return t2_err_set(T2_EINVAL, "mixture: alpha %d is not finite", i);
    return 0;
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void t2_svf_sigma(float *out, const t2_svd *svd, const float *p, float max_mult) {
    t2_svf_scale(out, svd->S, p, svd->rank, T2_SVF_ACT_SIGMOID, max_mult);
}

float t2_svf_act(float p, int act, float max_mult) {
    return act == T2_SVF_ACT_SIGMOID ? sigmoidf(p) * max_mult : p;
}

float t2_svf_act_grad(float p, int act, float max_mult) {
    if (act != T2_SVF_ACT_SIGMOID) return 1.0f;
    const float sg = sigmoidf(p);
    return max_mult * sg * (1.0f - sg);
}

void t2_svf_scale(float *out, const float *sigma, const float *p, int r, int act, float max_mult) {
    double sum_sigma = 0, sum = 0;
    for (int q = 0; q < r; q++) {
        /* (σ · sigmoid) · max_mult, in this order: the values experts have always been run with */
        out[q] = act == T2_SVF_ACT_SIGMOID ? sigma[q] * sigmoidf(p[q]) * max_mult : sigma[q] * p[q];
        sum_sigma += sigma[q];
        sum += out[q];
    }
    /* Σσ rounded to float, as t2_svd.sum_s holds it */
    const float c = sum != 0 ? (float)((float)sum_sigma / sum) : 1.0f;
    for (int q = 0; q < r; q++) out[q] *= c;
}

void t2_adapt_release(t2_adapt **ap) {
    if (!ap || !*ap) return;
    t2_adapt *a = *ap;
    *ap = NULL;
    if (--a->refs > 0) return;
    free(a->sigma);
    free(a->merged);
    free(a->sigma_buf);
    free(a->merged_buf);
    free(a->lowrank);
    free(a->lowrank_buf);
    free(a);
}

t2_adapt *t2_adapt_ref(t2_adapt *a) {
    a->refs++;
    return a;
}

typedef struct {
    t2_adapt *a;
    const int *todo;
    int n_todo;
    atomic_int next;
    float *scratch; /* per thread: rows x rank (U diag σ'), then MERGE_ROWS x cols (W' rows) */
    size_t us_per, scratch_per;
} merge_job;

#define MERGE_ROWS 64 /* rows of W' formed in f32 at a time before conversion to the stored type */

/* W' = (U diag σ') Vᵀ of one matrix, MERGE_ROWS rows at a time, stored as merged[idx].type. */
static void merge_one(const merge_job *j, int idx, float *us, float *wf) {
    const t2_svd *s = &j->a->f->svd[idx];
    const float *sig = j->a->sigma[idx];
    const t2_mat *M = &j->a->merged[idx];
    for (int r = 0; r < s->rows; r++)
        for (int q = 0; q < s->rank; q++)
            us[(size_t)r * s->rank + q] = s->U[(size_t)r * s->rank + q] * sig[q];
    if (M->type == T2_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->rows, s->cols, s->rank, 1.0f,
                    us, s->rank, s->Vt, s->cols, 0.0f, (float *)M->data, s->cols);
        return;
    }
    const size_t rb = t2_dtype_row_bytes(M->type, s->cols);
    for (int r0 = 0; r0 < s->rows; r0 += MERGE_ROWS) {
        const int nr = s->rows - r0 < MERGE_ROWS ? s->rows - r0 : MERGE_ROWS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, s->cols, s->rank, 1.0f,
                    us + (size_t)r0 * s->rank, s->rank, s->Vt, s->cols, 0.0f, wf, s->cols);
        t2_from_f32((char *)M->data + (size_t)r0 * rb, wf, M->type, (int64_t)nr * s->cols);
    }
}

static void merge_task(void *arg, int ith, int nth) {
    (void)nth;
    merge_job *j = arg;
    float *us = j->scratch + (size_t)ith * j->scratch_per;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n_todo) break;
        merge_one(j, j->todo[i], us, us + j->us_per);
    }
}

int t2_adapt_merged_type_ok(t2_dtype t) {
    return t == T2_F32 || t == T2_F16 || t == T2_BF16 || t == T2_Q8_0;
}

/* The merged matrices' views and storage (type t), then W' for each on the pool. */
static int adapt_merge(t2_adapt *a, t2_dtype t, t2_pool *pool) {
    const int n = a->n_layers * T2_N_TARGETS;
    size_t bytes = 0, max_us = 0, max_cols = 0;
    for (int i = 0; i < n; i++) {
        if (!a->sigma[i]) continue;
        const t2_svd *s = &a->f->svd[i];
        const size_t rb = t2_dtype_row_bytes(t, s->cols);
        if (!rb)
            return t2_err_set(T2_EUNSUPPORTED, "merged W' as %s: blk.%d.%s has %d columns, not a "
                              "multiple of %d", t2_dtype_name(t), i / T2_N_TARGETS,
                              t2_target_name(i % T2_N_TARGETS), s->cols, t2_dtype_block(t));
        bytes += rb * (size_t)s->rows;
        max_us = (size_t)s->rows * s->rank > max_us ? (size_t)s->rows * s->rank : max_us;
        max_cols = (size_t)s->cols > max_cols ? (size_t)s->cols : max_cols;
    }
    int *todo = malloc((size_t)n * sizeof *todo);
    a->merged = calloc((size_t)n, sizeof *a->merged);
    a->merged_buf = malloc(bytes ? bytes : 1);
    const int nth = t2_pool_size(pool);
    merge_job j = {.a = a, .todo = todo, .us_per = max_us,
                   .scratch_per = max_us + (t == T2_F32 ? 0 : MERGE_ROWS * max_cols)};
    j.scratch = malloc((size_t)nth * j.scratch_per * sizeof(float) + 1);
    if (!todo || !a->merged || !a->merged_buf || !j.scratch) {
        free(todo);
        free(j.scratch);
        return t2_err_set(T2_ENOMEM, "out of memory for %zu MiB of merged weights", bytes >> 20);
    }
    char *w = a->merged_buf;
    for (int i = 0; i < n; i++) {
        if (!a->sigma[i]) continue;
        const t2_svd *s = &a->f->svd[i];
        a->merged[i] = (t2_mat){t, s->rows, s->cols, w};
        w += t2_dtype_row_bytes(t, s->cols) * (size_t)s->rows;
        todo[j.n_todo++] = i;
    }
    openblas_set_num_threads(1);
    t2_pool_run(pool, merge_task, &j);
    free(j.scratch);
    free(todo);
    a->bytes += bytes;
    return 0;
}

typedef struct {
    float mag; /* |σ' − σ| */
    int q;
} lr_dir;

static int lr_dir_cmp(const void *x, const void *y) {
    const lr_dir *a = x, *b = y;
    if (a->mag != b->mag) return a->mag > b->mag ? -1 : 1;
    return a->q - b->q; /* ties: the stronger singular direction first */
}

/* Low-rank mode: for each targeted matrix the r directions of largest |σ' − σ| (U's columns and
 * Vᵀ's rows gathered), and the truncation error ||Δ − Δ_r||_F / ||Δ||_F, Δ = U diag(σ' − σ) Vᵀ
 * (U, V orthonormal: the norms are those of the dropped and of all σ' − σ). */
static int adapt_lowrank(t2_adapt *a, int rank, t2_lowrank_report *rep) {
    const int n = a->n_layers * T2_N_TARGETS;
    size_t total = 0;
    int max_rank = 1;
    for (int i = 0; i < n; i++) {
        if (!a->sigma[i]) continue;
        const t2_svd *s = &a->f->svd[i];
        const int r = rank < s->rank ? rank : s->rank;
        total += (size_t)r * (s->rows + s->cols + 1);
        max_rank = s->rank > max_rank ? s->rank : max_rank;
    }
    if (n <= 0) return 0;
    a->lowrank = calloc((size_t)n, sizeof *a->lowrank);
    a->lowrank_buf = malloc((total ? total : 1) * sizeof(float));
    lr_dir *dir = malloc((size_t)max_rank * sizeof *dir);
    if (!a->lowrank || !a->lowrank_buf || !dir) {
        free(dir);
        return t2_err_set(T2_ENOMEM, "out of memory for the low-rank differences");
    }
    double all = 0, dropped = 0;
    memset(rep, 0, sizeof *rep);
    float *w = a->lowrank_buf;
    for (int i = 0; i < n; i++) {
        if (!a->sigma[i]) continue;
        const t2_svd *s = &a->f->svd[i];
        const int r = rank < s->rank ? rank : s->rank;
        double m_all = 0, m_dropped = 0;
        for (int q = 0; q < s->rank; q++) {
            dir[q] = (lr_dir){fabsf(a->sigma[i][q] - s->S[q]), q};
            m_all += (double)dir[q].mag * dir[q].mag;
        }
        qsort(dir, (size_t)s->rank, sizeof *dir, lr_dir_cmp);
        for (int q = r; q < s->rank; q++) m_dropped += (double)dir[q].mag * dir[q].mag;
        t2_lowrank *lr = &a->lowrank[i];
        float *U = w, *Vt = U + (size_t)s->rows * r, *d = Vt + (size_t)r * s->cols;
        w = d + r;
        for (int j = 0; j < r; j++) {
            const int q = dir[j].q;
            d[j] = a->sigma[i][q] - s->S[q];
            for (int row = 0; row < s->rows; row++)
                U[(size_t)row * r + j] = s->U[(size_t)row * s->rank + q];
            memcpy(Vt + (size_t)j * s->cols, s->Vt + (size_t)q * s->cols,
                   (size_t)s->cols * sizeof(float));
        }
        *lr = (t2_lowrank){r, U, Vt, d};
        const double e = m_all > 0 ? sqrt(m_dropped / m_all) : 0;
        if (e >= rep->worst_rel_err) {
            rep->worst_rel_err = e;
            rep->worst_layer = i / T2_N_TARGETS;
            rep->worst_kind = i % T2_N_TARGETS;
        }
        all += m_all;
        dropped += m_dropped;
    }
    free(dir);
    rep->rel_err = all > 0 ? sqrt(dropped / all) : 0;
    rep->bytes = total * sizeof(float);
    a->bytes += total * sizeof(float);
    return 0;
}

int t2_adapt_new(t2_adapt **out, const t2_factors *f, const t2_mixture *mix, int mode,
                 t2_pool *pool) {
    return t2_adapt_new_typed(out, f, mix, mode, T2_F32, pool);
}

static int adapt_new(t2_adapt **out, const t2_factors *f, const t2_mixture *mix, int mode,
                     t2_dtype merged_type, int rank, t2_lowrank_report *rep, t2_pool *pool);

int t2_adapt_new_typed(t2_adapt **out, const t2_factors *f, const t2_mixture *mix, int mode,
                       t2_dtype merged_type, t2_pool *pool) {
    *out = NULL;
    if (mode == T2_APPLY_LOWRANK)
        return t2_err_set(T2_EINVAL, "low-rank application needs a rank (t2_adapt_new_lowrank)");
    return adapt_new(out, f, mix, mode, merged_type, 0, NULL, pool);
}

int t2_adapt_new_lowrank(t2_adapt **out, const t2_factors *f, const t2_mixture *mix, int rank,
                         t2_lowrank_report *rep) {
    *out = NULL;
    if (rank < 0) return t2_err_set(T2_EINVAL, "low-rank application: rank %d < 0", rank);
    t2_lowrank_report dummy;
    return adapt_new(out, f, mix, T2_APPLY_LOWRANK, T2_F32, rank, rep ? rep : &dummy, NULL);
}

static int adapt_new(t2_adapt **out, const t2_factors *f, const t2_mixture *mix, int mode,
                     t2_dtype merged_type, int rank, t2_lowrank_report *rep, t2_pool *pool) {
    *out = NULL;
    int rc = t2_mixture_check(mix, f);
    if (rc < 0) return rc;
    if (mode == T2_APPLY_MERGED && !t2_adapt_merged_type_ok(merged_type))
        return t2_err_set(T2_EINVAL, "merged W' cannot be stored as %s (F32, F16, BF16 or Q8_0)",
                          t2_dtype_name(merged_type));
    const int n = f->n_layers * T2_N_TARGETS;
    const t2_expert *e0 = mix->experts[0];
    t2_adapt *a = calloc(1, sizeof *a);
    float *pmix = NULL;
    if (!a) return t2_err_set(T2_ENOMEM, "out of memory");
    a->refs = 1;
    a->f = f;
    a->svd = f->svd;
    a->n_layers = f->n_layers;
    a->targets = e0->targets;
    a->mode = mode;
    size_t total = 0;
    int max_rank = 1;
    for (int i = 0; i < n; i++)
        if (e0->rank[i]) {
            total += (size_t)e0->rank[i];
            max_rank = e0->rank[i] > max_rank ? e0->rank[i] : max_rank;
        }
    a->sigma = calloc((size_t)n, sizeof *a->sigma);
    a->sigma_buf = malloc((total ? total : 1) * sizeof(float));
    pmix = malloc((size_t)max_rank * sizeof(float));
    if (!a->sigma || !a->sigma_buf || !pmix) {
        rc = t2_err_set(T2_ENOMEM, "out of memory applying a mixture");
        goto out;
    }
    float *q = a->sigma_buf;
    for (int i = 0; i < n; i++) {
        if (!e0->rank[i]) continue;
        const int r = e0->rank[i];
        for (int t = 0; t < r; t++) pmix[t] = 0;
        for (int k = 0; k < mix->n; k++) {
            float al = mix->alpha[mix->per_matrix ? (size_t)k * n + i : (size_t)k];
            const float *p = mix->experts[k]->p[i];
            for (int t = 0; t < r; t++) pmix[t] += al * p[t];
        }
        t2_svf_sigma(q, &f->svd[i], pmix, e0->max_mult);
        a->sigma[i] = q;
        q += r;
    }
    a->bytes = total * sizeof(float);
    if (mode == T2_APPLY_MERGED) rc = adapt_merge(a, merged_type, pool);
    if (mode == T2_APPLY_LOWRANK) rc = adapt_lowrank(a, rank, rep);
out:
    free(pmix);
    if (rc < 0) t2_adapt_release(&a);
    *out = a;
    return rc;
}

uint64_t t2_mixture_key(const t2_mixture *mix) {
    uint64_t h = T2_FNV1A64_INIT; /* over names (with their NUL), sha and alpha bits */
    for (int i = 0; i < mix->n; i++) {
        const char *name = mix->experts[i]->name;
        h = t2_fnv1a64(h, name, strlen(name) + 1);
        h = t2_fnv1a64(h, mix->experts[i]->base_sha256, 64);
    }
    const uint8_t per_matrix = (uint8_t)mix->per_matrix;
    h = t2_fnv1a64(h, &per_matrix, 1);
    const int n_alpha = mix->n * (mix->per_matrix ? mix->experts[0]->n_layers * T2_N_TARGETS : 1);
    for (int i = 0; i < n_alpha; i++) {
        uint32_t u;
        memcpy(&u, &mix->alpha[i], 4);
        const uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        h = t2_fnv1a64(h, le, 4);
    }
    return h;
}

/* ------------------------------------------------------------------------------------------ */
/* LRU cache                                                                                   */

struct t2_adapt_cache {
    int cap, n;
    uint64_t tick;
    struct {
        uint64_t key, used;
        t2_adapt *a;
    } *e;
};

int t2_adapt_cache_new(t2_adapt_cache **out, int capacity) {
    *out = NULL;
    if (capacity < 1) capacity = 1;
    t2_adapt_cache *c = calloc(1, sizeof *c);
    if (!c) return t2_err_set(T2_ENOMEM, "out of memory");
    c->cap = capacity;
    c->e = calloc((size_t)capacity, sizeof *c->e);
    if (!c->e) {
        free(c);
        return t2_err_set(T2_ENOMEM, "out of memory (adaptation cache of %d)", capacity);
    }
    *out = c;
    return T2_OK;
}

void t2_adapt_cache_destroy(t2_adapt_cache **cp) {
    if (!cp || !*cp) return;
    for (int i = 0; i < (*cp)->n; i++) t2_adapt_release(&(*cp)->e[i].a);
    free((*cp)->e);
    free(*cp);
    *cp = NULL;
}

int t2_adapt_cache_size(const t2_adapt_cache *c) { return c->n; }

t2_adapt *t2_adapt_cache_get(t2_adapt_cache *c, uint64_t key) {
    for (int i = 0; i < c->n; i++)
        if (c->e[i].key == key) {
            c->e[i].used = ++c->tick;
            return t2_adapt_ref(c->e[i].a);
        }
    return NULL;
}

void t2_adapt_cache_put(t2_adapt_cache *c, uint64_t key, t2_adapt *a) {
    for (int i = 0; i < c->n; i++)
        if (c->e[i].key == key) { /* replace */
            t2_adapt_release(&c->e[i].a);
            c->e[i].a = t2_adapt_ref(a);
            c->e[i].used = ++c->tick;
            return;
        }
    int slot = c->n;
    if (c->n == c->cap) { /* evict the least recently used */
        slot = 0;
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[slot].used) slot = i;
        t2_adapt_release(&c->e[slot].a);
    } else {
        c->n++;
    }
    c->e[slot].key = key;
    c->e[slot].a = t2_adapt_ref(a);
    c->e[slot].used = ++c->tick;
}
