/* gw_auth.c - the keys file, model permissions and token buckets. */
#include "gw_auth.h"

#include "base/json.h"
#include "base/t2_err.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_KEYS 4096
#define MAX_MODELS 32

typedef struct key {
    char name[65];
    char token[257];
    int n_models;
    char *models[MAX_MODELS];
    double tokens; /* bucket */
    uint64_t t_ms; /* last refill */
} key;

struct gw_auth {
    int enabled;
    int n;
    key *keys;
    double rate;
    int burst;
    pthread_mutex_t mu;
};

static int name_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-", s[i]))
            return 0;
    return 1;
}

static int token_ok(const char *s) {
    size_t n = strlen(s);
    if (n < 16 || n > 256) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
    return 1;
}

static int parse_line(gw_auth *a, const char *path, int line, char *s) {
    char *save = NULL, *name = strtok_r(s, " \t\r", &save);
    if (!name || name[0] == '#') return 0;
    char *tok = strtok_r(NULL, " \t\r", &save);
    if (!name_ok(name))
        return t2_err_set(T2_EINVAL,
                          "%s:%d: '%s' is not a key name (1..64 of A-Z a-z 0-9 . _ : / -)", path,
                          line, name);
    if (!tok || !token_ok(tok))
        return t2_err_set(T2_EINVAL,
                          "%s:%d: key %s: the token must be 16..256 printable "
                          "characters without spaces",
                          path, line, name);
    if (a->n == MAX_KEYS)
        return t2_err_set(T2_EINVAL, "%s:%d: more than %d keys", path, line, MAX_KEYS);
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->keys[i].name, name) || !strcmp(a->keys[i].token, tok))
            return t2_err_set(T2_EINVAL, "%s:%d: key %s: name or token used twice", path, line,
                              name);
    key *k = &a->keys[a->n++];
    snprintf(k->name, sizeof k->name, "%s", name);
    snprintf(k->token, sizeof k->token, "%s", tok);
    for (char *m = strtok_r(NULL, " \t\r", &save); m; m = strtok_r(NULL, " \t\r", &save)) {
        if (m[0] == '#') break;
        if (k->n_models == MAX_MODELS)
            return t2_err_set(T2_EINVAL, "%s:%d: key %s: more than %d models", path, line, name,
                              MAX_MODELS);
        if (strlen(m) > 512)
            return t2_err_set(T2_EINVAL, "%s:%d: key %s: model too long", path, line, name);
        if (!(k->models[k->n_models++] = strdup(m))) return t2_err_set(T2_ENOMEM, "out of memory");
    }
    return 0;
}

static int load(gw_auth *a, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    int rc = t2_read_file(path, 1u << 20, &buf, &len);
    if (rc < 0) return t2_err_prefix(rc, "gateway.keys");
    if (!(a->keys = calloc(MAX_KEYS, sizeof *a->keys))) {
        free(buf);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    int line = 1;
    for (char *p = buf, *nl; rc == 0 && p < buf + len; p = nl + 1, line++) {
        nl = memchr(p, '\n', (size_t)(buf + len - p));
        if (!nl) nl = buf + len;
        *nl = 0;
        if (strlen(p) != (size_t)(nl - p))
            rc = t2_err_set(T2_EINVAL, "%s:%d: a NUL byte", path, line);
        else
            rc = parse_line(a, path, line, p);
    }
    free(buf);
    if (rc == 0 && a->n == 0) rc = t2_err_set(T2_EINVAL, "%s: no key in the keys file", path);
    return rc;
}

int gw_auth_new(gw_auth **out, const char *path, double rate, int burst) {
    *out = NULL;
    gw_auth *a = calloc(1, sizeof *a);
    if (!a) return t2_err_set(T2_ENOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    a->rate = rate;
    a->burst = burst < 1 ? 1 : burst;
    int rc = 0;
    if (path) {
        a->enabled = 1;
        rc = load(a, path);
    } else if (!(a->keys = calloc(1, sizeof *a->keys))) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
    } else {
        a->n = 1;
        snprintf(a->keys[0].name, sizeof a->keys[0].name, "anonymous");
    }
    for (int i = 0; i < a->n; i++)
        a->keys[i].tokens = a->burst;
    if (rc < 0) {
        gw_auth_destroy(&a);
        return rc;
    }
    *out = a;
    return 0;
}

void gw_auth_destroy(gw_auth **ap) {
    gw_auth *a = ap ? *ap : NULL;
    if (!a) return;
    for (int i = 0; a->keys && i < a->n; i++)
        for (int k = 0; k < a->keys[i].n_models; k++)
            free(a->keys[i].models[k]);
    free(a->keys);
    pthread_mutex_destroy(&a->mu);
    free(a);
    *ap = NULL;
}

int gw_auth_enabled(const gw_auth *a) { return a->enabled; }

/* Compare in time independent of where the strings differ. */
static int same(const char *x, const char *y) {
    size_t nx = strlen(x), ny = strlen(y);
    unsigned char d = nx != ny;
    for (size_t i = 0; i < nx; i++)
        d |= (unsigned char)(x[i] ^ y[i < ny ? i : 0]);
    return d == 0;
}

int gw_auth_find(const gw_auth *a, const char *h) {
    if (!a->enabled) return 0;
    if (!h || strncasecmp(h, "Bearer ", 7)) return -1;
    h += 7;
    while (*h == ' ')
        h++;
    int found = -1;
    for (int i = 0; i < a->n; i++)
        if (same(h, a->keys[i].token) && found < 0) found = i;
    return found;
}

const char *gw_auth_name(const gw_auth *a, int k) { return a->keys[k].name; }

int gw_auth_model_ok(const gw_auth *a, int k, const char *model) {
    const key *K = &a->keys[k];
    if (!K->n_models) return 1;
    for (int i = 0; i < K->n_models; i++) {
        const char *m = K->models[i];
        size_t n = strlen(m);
        if (n && m[n - 1] == '*' ? !strncmp(model, m, n - 1) : !strcmp(model, m)) return 1;
    }
    return 0;
}

int gw_auth_take(gw_auth *a, int k, uint64_t now) {
    if (a->rate <= 0) return 0;
    pthread_mutex_lock(&a->mu);
    key *K = &a->keys[k];
    if (K->t_ms) K->tokens += (double)(now - K->t_ms) / 1000.0 * a->rate;
    if (K->tokens > a->burst) K->tokens = a->burst;
    K->t_ms = now;
    int wait = 0;
    if (K->tokens >= 1)
        K->tokens -= 1;
    else
        wait = (int)ceil((1 - K->tokens) / a->rate);
    pthread_mutex_unlock(&a->mu);
    return wait < 0 ? 1 : wait;
}
