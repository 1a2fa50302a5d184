/* wk_adapt.c - experts by name and mixtures resolved for one rank's layers.
 *
 * Each expert is loaded whole (a few numbers per matrix) on first use, and a view of it that
 * keeps only the rank's layers (rank 0 elsewhere) goes into t2_adapt_new, so a rank computes
 * σ' (and, merged, W') for its own layers only. Resolved mixtures are kept in an LRU
 * (t2_adapt_cache) keyed by the mixture and the apply mode.
 */
#include "wk.h"

#include "engine/gguf.h"
#include "base/t2_err.h"
#include "base/t2_log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct wk_ex {
    char name[WK_NAME_MAX + 1];
    t2_expert *full;
    t2_expert view; /* full restricted to [l0, l1): own rank / p arrays */
} wk_ex;

struct wk_adapter {
    const t2_factors *f;
    char *dir;
    int l0, l1;
    wk_ex **ex;
    int n, cap;
    t2_adapt_cache *cache; /* NULL: no caching */
    t2_dtype merged_type;  /* W' storage in merged mode */
};

int wk_adapter_new(wk_adapter **out, const t2_factors *f, const char *dir, int l0, int l1,
                   int cache) {
    *out = NULL;
    wk_adapter *a = calloc(1, sizeof *a);
    if (!a || !(a->dir = strdup(dir ? dir : "."))) {
        free(a);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    a->f = f;
    a->l0 = l0;
    a->l1 = l1;
    int rc;
    if (cache > 0 && (rc = t2_adapt_cache_new(&a->cache, cache)) < 0) {
        wk_adapter_destroy(&a);
        return rc;
    }
    *out = a;
    return 0;
}

void wk_adapter_set_merged_type(wk_adapter *a, t2_dtype t) { a->merged_type = t; }

static void ex_free(wk_ex *e) {
    if (!e) return;
    free(e->view.rank);
    free(e->view.p);
    t2_expert_destroy(&e->full);
    free(e);
}

void wk_adapter_destroy(wk_adapter **ap) {
    wk_adapter *a = ap ? *ap : NULL;
    if (!a) return;
    t2_adapt_cache_destroy(&a->cache);
    for (int i = 0; i < a->n; i++)
        ex_free(a->ex[i]);
    free(a->ex);
    free(a->dir);
    free(a);
    *ap = NULL;
}

static int file_name_ok(const char *name) {
    return t2_conf_name_ok(name) && !strchr(name, '/') && name[0] != '.';
}

static int load_expert(wk_adapter *a, const char *name, wk_ex **out) {
    char path[8192];
    snprintf(path, sizeof path, "%s/%s.gguf", a->dir, name);
    struct stat sb;
    /* clients see names, never this host's paths: the path goes to the log */
    if (stat(path, &sb) != 0) {
        T2_INFO("expert '%s': no %s", name, path);
        return t2_err_set(T2_ENOTFOUND, "expert '%s' not found", name);
    }
    wk_ex *e = calloc(1, sizeof *e);
    if (!e) return t2_err_set(T2_ENOMEM, "out of memory");
    snprintf(e->name, sizeof e->name, "%s", name);
    int rc = t2_expert_load(&e->full, path, a->f);
    if (rc < 0) {
        free(e);
        T2_WARN("expert '%s': %s", name, t2_err_msg());
        return t2_err_set(rc, "expert '%s' cannot be used (%s; the worker's log says more)", name,
                          t2_strerror(rc));
    }
    const int n = e->full->n_layers * T2_N_TARGETS;
    e->view = *e->full;
    e->view.name = e->name; /* the name the jobs use (the file's stem) */
    e->view.owned = NULL;
    e->view.rank = calloc((size_t)n, sizeof *e->view.rank);
    e->view.p = calloc((size_t)n, sizeof *e->view.p);
    if (!e->view.rank || !e->view.p) {
        ex_free(e);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        int l = i / T2_N_TARGETS;
        if (l >= a->l0 && l < a->l1) {
            e->view.rank[i] = e->full->rank[i];
            e->view.p[i] = e->full->p[i];
        }
    }
    *out = e;
    return 0;
}

static int find(wk_adapter *a, const char *name, wk_ex **out) {
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->ex[i]->name, name)) {
            *out = a->ex[i];
            return 0;
        }
    if (!a->f)
        return t2_err_set(T2_EUNSUPPORTED,
                          "this worker has no SVD factors (model.factors): "
                          "it cannot apply expert '%s'",
                          name);
    if (!file_name_ok(name))
        return t2_err_set(T2_EINVAL, "expert name '%s' is not a file name", name);
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 16;
        wk_ex **ex = realloc(a->ex, (size_t)cap * sizeof *ex);
        if (!ex) return t2_err_set(T2_ENOMEM, "out of memory");
        a->ex = ex;
        a->cap = cap;
    }
    wk_ex *e;
    int rc = load_expert(a, name, &e);
    if (rc < 0) return rc;
    a->ex[a->n++] = e;
    T2_DEBUG("loaded expert %s (layers %d..%d)", name, a->l0, a->l1 - 1);
    *out = e;
    return 0;
}

int wk_adapter_expert(wk_adapter *a, const char *name, const t2_expert **out) {
    wk_ex *e;
    int rc = find(a, name, &e);
    if (rc < 0) return rc;
    *out = e->full;
    return 0;
}

int wk_adapter_resolve(wk_adapter *a, const wk_mix *mix, int apply, t2_pool *pool, t2_adapt **out) {
    *out = NULL;
    if (mix->n <= 0 || mix->n > WK_MIX_MAX)
        return t2_err_set(T2_EINVAL, "mixture of %d experts", mix->n);
    const t2_expert *views[WK_MIX_MAX];
    for (int i = 0; i < mix->n; i++) {
        wk_ex *e;
        int rc = find(a, mix->names[i], &e);
        if (rc < 0) return rc;
        views[i] = &e->view;
    }
    t2_mixture m = {mix->n, views, mix->alpha, mix->n_alpha, mix->per_matrix};
    int rc = t2_mixture_check(&m, a->f);
    if (rc < 0) return rc;
    uint64_t key = t2_mixture_key(&m) ^ (apply == T2_APPLY_MERGED ? 0x6d657267ull : 0x66616374ull);
    if (a->cache && (*out = t2_adapt_cache_get(a->cache, key))) return 0;
    if ((rc = t2_adapt_new_typed(out, a->f, &m, apply, a->merged_type, pool)) < 0) return rc;
    if (a->cache) t2_adapt_cache_put(a->cache, key, *out);
    return 0;
}

static int cmp_str(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int wk_list_experts(const char *dir, char ***names, int max) {
    *names = NULL;
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) return 0;
    char **v = calloc((size_t)max + 1, sizeof *v);
    int n = 0;
    struct dirent *de;
    while (v && n < max && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".gguf")) continue;
        char name[WK_NAME_MAX + 1];
        if (len - 5 > WK_NAME_MAX) continue;
        memcpy(name, de->d_name, len - 5);
        name[len - 5] = 0;
        if (!file_name_ok(name)) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        t2_gguf *g = NULL;
        const char *kind;
        size_t kl;
        int is_expert = t2_gguf_open(&g, path) == 0 &&
                        t2_gguf_get_str(g, "t2.kind", &kind, &kl) == 0 && kl == 6 &&
                        !memcmp(kind, "expert", 6);
        t2_gguf_close(&g);
        if (is_expert && !(v[n++] = strdup(name))) n--;
    }
    closedir(d);
    t2_err_clear();
    if (!v) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *names = v;
    return n;
}

void wk_free_names(char **names, int n) {
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}
