/* profile.c - task profiles (profile.h): a named mixture of experts in a small GGUF. */
#include "svf/profile.h"

#include "engine/gguf.h"
#include "base/name.h"
#include "base/t2_err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int name_ok(const char *s, size_t n) { return t2_name_ok(s, n, T2_NAME_MAX); }

void t2_profile_destroy(t2_profile **pp) {
    t2_profile *p = pp ? *pp : NULL;
    if (!p) return;
    free(p->experts);
    free(p->alpha);
    free(p->task);
    free(p->training);
    free(p);
    *pp = NULL;
}

int t2_profile_new(t2_profile **out, const char *name, int n_experts, int n_matrices) {
    *out = NULL;
    if (!name || !name_ok(name, strlen(name)))
        return t2_err_set(T2_EINVAL, "profile name '%s' is not 1..64 of [A-Za-z0-9._:/-]",
                          name ? name : "");
    if (n_experts < 1 || n_experts > T2_PROFILE_MAX_EXPERTS || n_matrices < 0 ||
        n_matrices > T2_PROFILE_MAX_MATRICES)
        return t2_err_set(T2_EINVAL,
                          "profile %s: %d experts x %d matrices (1..%d experts, "
                          "0..%d matrices)",
                          name, n_experts, n_matrices, T2_PROFILE_MAX_EXPERTS,
                          T2_PROFILE_MAX_MATRICES);
    t2_profile *p = calloc(1, sizeof *p);
    if (!p) return t2_err_set(T2_ENOMEM, "out of memory");
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_experts = n_experts;
    p->n_matrices = n_matrices;
    p->experts = calloc((size_t)n_experts, sizeof *p->experts);
    p->alpha = calloc((size_t)n_experts * (n_matrices ? n_matrices : 1), sizeof *p->alpha);
    p->task = strdup("");
    p->training = strdup("");
    if (!p->experts || !p->alpha || !p->task || !p->training) {
        t2_profile_destroy(&p);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    *out = p;
    return 0;
}

static int check(const t2_profile *p, const char *where) {
    for (int i = 0; i < p->n_experts; i++) {
        if (!name_ok(p->experts[i], strlen(p->experts[i])))
            return t2_err_set(T2_EFORMAT, "%s: expert %d '%s' is not a name", where, i,
                              p->experts[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(p->experts[i], p->experts[j]))
                return t2_err_set(T2_EFORMAT, "%s: expert '%s' named twice", where, p->experts[i]);
    }
    size_t n = (size_t)p->n_experts * (p->n_matrices ? p->n_matrices : 1);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p->alpha[i]) || fabsf(p->alpha[i]) > 1000.0f)
            return t2_err_set(T2_EFORMAT, "%s: alpha %zu (%g) is not finite or above 1000", where,
                              i, (double)p->alpha[i]);
    return 0;
}

int t2_profile_load(t2_profile **out, const char *path) {
    *out = NULL;
    t2_gguf *g = NULL;
    t2_profile *p = NULL;
    int rc = t2_gguf_open(&g, path);
    if (rc < 0) return rc;
    const char *s;
    size_t n;
    if ((rc = t2_gguf_get_str(g, "t2.kind", &s, &n)) < 0) {
        rc = t2_err_prefix(rc, "%s: not a T2 profile", path);
        goto out;
    }
    if (n != 7 || memcmp(s, "profile", 7)) {
        rc = t2_err_set(T2_EFORMAT, "%s: is a T2 '%.*s' file, expected 'profile'", path, (int)n, s);
        goto out;
    }
    char name[65] = "";
    if ((rc = t2_gguf_get_str(g, "t2.name", &s, &n)) < 0) goto out;
    if (!name_ok(s, n)) {
        rc = t2_err_set(T2_EFORMAT, "%s: t2.name is not 1..64 of [A-Za-z0-9._:/-]", path);
        goto out;
    }
    memcpy(name, s, n);
    name[n] = 0;
    t2_gguf_vtype et;
    uint64_t ne;
    if ((rc = t2_gguf_get_arr(g, "t2.experts", &et, &ne)) < 0) goto out;
    if (et != T2_GGUF_STRING || ne < 1 || ne > T2_PROFILE_MAX_EXPERTS) {
        rc = t2_err_set(T2_EFORMAT, "%s: t2.experts must be 1..%d strings", path,
                        T2_PROFILE_MAX_EXPERTS);
        goto out;
    }
    const t2_gguf_tensor *t = t2_gguf_find_tensor(g, "alpha");
    if (!t || t->type != T2_F32 || t->n_dims > 2 || (t->n_dims == 1 && t->ne[0] != (int64_t)ne) ||
        (t->n_dims == 2 && (t->ne[1] != (int64_t)ne || t->ne[0] > T2_PROFILE_MAX_MATRICES))) {
        rc = t2_err_set(T2_EFORMAT, "%s: tensor 'alpha' must be F32 [%llu] or [n_matrices, %llu]",
                        path, (unsigned long long)ne, (unsigned long long)ne);
        goto out;
    }
    if ((rc = t2_profile_new(&p, name, (int)ne, t->n_dims == 2 ? (int)t->ne[0] : 0)) < 0) goto out;
    for (uint64_t i = 0; i < ne; i++) {
        if ((rc = t2_gguf_arr_str(g, "t2.experts", i, &s, &n)) < 0) goto out;
        if (!name_ok(s, n)) {
            rc = t2_err_set(T2_EFORMAT, "%s: t2.experts[%llu] is not a name", path,
                            (unsigned long long)i);
            goto out;
        }
        memcpy(p->experts[i], s, n);
        p->experts[i][n] = 0;
    }
    memcpy(p->alpha, t->data, t->nbytes);
    free(p->task);
    free(p->training);
    p->task = t2_gguf_str_dup(g, "t2.task");
    p->training = t2_gguf_str_dup(g, "t2.training");
    if (!p->task || !p->training) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
        goto out;
    }
    if (t2_gguf_get_str(g, "t2.base_sha256", &s, &n) == 0 && n == 64) {
        memcpy(p->base_sha256, s, 64);
        p->base_sha256[64] = 0;
    }
    t2_err_clear();
    if ((rc = check(p, path)) < 0) goto out;
    *out = p;
    p = NULL;
out:
    t2_profile_destroy(&p);
    t2_gguf_close(&g);
    return rc;
}

int t2_profile_save(const t2_profile *p, const char *path) {
    int rc = check(p, p->name);
    if (rc < 0) return rc;
    t2_gguf_writer *w;
    if ((rc = t2_gguf_writer_new(&w)) < 0) return rc;
    const char *names[T2_PROFILE_MAX_EXPERTS];
    for (int i = 0; i < p->n_experts; i++)
        names[i] = p->experts[i];
    int64_t ne[2] = {p->n_matrices ? p->n_matrices : p->n_experts, p->n_experts};
    if ((rc = t2_gguf_set_str(w, "t2.kind", "profile")) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.name", p->name)) < 0 ||
        (rc = t2_gguf_set_arr_str(w, "t2.experts", names, NULL, (uint64_t)p->n_experts)) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.task", p->task ? p->task : "")) < 0 ||
        (rc = t2_gguf_set_str(w, "t2.training", p->training ? p->training : "")) < 0 ||
        (p->base_sha256[0] && (rc = t2_gguf_set_str(w, "t2.base_sha256", p->base_sha256)) < 0) ||
        (rc = t2_gguf_add_tensor(w, "alpha", T2_F32, p->n_matrices ? 2 : 1, ne, p->alpha)) < 0)
        goto out;
    rc = t2_gguf_writer_write(w, path);
out:
    t2_gguf_writer_destroy(&w);
    return rc;
}

int t2_profile_mixture_alpha(const t2_profile *p, const int *rank, int n_slots, float **alpha,
                             int *n_alpha, int *per_matrix) {
    *alpha = NULL;
    *n_alpha = 0;
    *per_matrix = p->n_matrices > 0;
    if (!p->n_matrices) {
        if (!(*alpha = malloc((size_t)p->n_experts * sizeof **alpha)))
            return t2_err_set(T2_ENOMEM, "out of memory");
        memcpy(*alpha, p->alpha, (size_t)p->n_experts * sizeof **alpha);
        *n_alpha = p->n_experts;
        return 0;
    }
    int adapted = 0;
    for (int i = 0; i < n_slots; i++) adapted += rank[i] > 0;
    if (adapted != p->n_matrices)
        return t2_err_set(T2_EMISMATCH,
                          "profile %s: %d alphas per expert, the experts adapt %d matrices",
                          p->name, p->n_matrices, adapted);
    float *a = calloc((size_t)p->n_experts * n_slots, sizeof *a);
    if (!a) return t2_err_set(T2_ENOMEM, "out of memory");
    for (int e = 0; e < p->n_experts; e++)
        for (int i = 0, j = 0; i < n_slots; i++)
            if (rank[i] > 0) a[(size_t)e * n_slots + i] = p->alpha[(size_t)e * p->n_matrices + j++];
    *alpha = a;
    *n_alpha = p->n_experts * n_slots;
    return 0;
}
