/* t2_conf.c - reading deploy/t2.cfg (libconfig) into a t2_conf, every value checked and
 * every error located as FILE:LINE: section.setting. */
#include "t2_conf.h"

#include "base/platform.h"
#include "base/name.h"
#include "base/pool.h"
#include "base/t2_err.h"
#include "base/t2_limits.h"

#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>

static const char *const label_names[T2_CFG_N_LABELS] = {"code", "math", "reasoning", "other"};

const char *t2_conf_apply_name(int apply) {
    return apply == T2_CFG_APPLY_FACTORED ? "factored" : "merged";
}

const char *t2_conf_merged_type_name(int type) {
    switch (type) {
    case T2_CFG_MERGED_F16: return "f16";
    case T2_CFG_MERGED_BF16: return "bf16";
    case T2_CFG_MERGED_Q8_0: return "q8_0";
    default: return "f32";
    }
}

const char *t2_conf_experts_dir(const t2_conf *c, char *buf, size_t cap) {
    if (c->model.experts_dir) return c->model.experts_dir;
    const char *f = c->model.factors, *sl = f ? strrchr(f, '/') : NULL;
    if (!sl) return ".";
    snprintf(buf, cap, "%.*s", (int)(sl - f), f);
    return buf;
}

int t2_conf_name_ok(const char *s) {
    return s && t2_name_ok(s, strlen(s), T2_CONF_NAME_MAX);
}

static int set_str(char **dst, const char *v) {
    char *s = v ? strdup(v) : NULL;
    if (v && !s) return t2_err_set(T2_ENOMEM, "out of memory");
    free(*dst);
    *dst = s;
    return 0;
}

int t2_conf_defaults(t2_conf *c) {
    memset(c, 0, sizeof *c);
    int rc = 0;
    rc |= set_str(&c->router.bind, "tcp://127.0.0.1:5555");
    rc |= set_str(&c->router.endpoint, "tcp://127.0.0.1:5555");
    c->router.heartbeat_ms = 1000;
    c->router.liveness = 3;
    c->router.queue_max = 1024;
    c->router.max_msg = 4194304;
    c->router.stats_ms = 10000;
    c->router.cancel_grace_ms = 0;
    c->router.progress_ms = 300000;
    c->router.client_max = 256;
    c->worker.capacity = 8;
    c->worker.classify_capacity = 2;
    c->worker.threads = 1;
    c->worker.batch = 128;
    c->worker.apply = T2_CFG_APPLY_MERGED;
    c->worker.merged_type = T2_CFG_MERGED_F32;
    c->worker.cache = 8;
    c->worker.max_tokens = 256;
    c->worker.temperature = 1.0f;
    c->worker.top_p = 0.9f;
    c->worker.classify_max_tokens = 24;
    c->worker.watchdog_ms = 20000;
    c->worker.chunk_tokens = 16;
    c->worker.kv_type = T2_CFG_KV_F16;
    c->worker.prefix_cache = 1;
    c->worker.n_services = 2;
    snprintf(c->worker.services[0], sizeof c->worker.services[0], "generate");
    snprintf(c->worker.services[1], sizeof c->worker.services[1], "classify");
    rc |= set_str(&c->worker.log_level, "info");
    rc |= set_str(&c->dispatcher.service, "generate-adaptive");
    rc |= set_str(&c->dispatcher.generate_service, "generate");
    rc |= set_str(&c->dispatcher.classify_service, "classify");
    c->dispatcher.capacity = 64;
    c->dispatcher.classify_timeout_ms = 60000;
    rc |= set_str(&c->dispatcher.labels[T2_CFG_LABEL_CODE], "code");
    rc |= set_str(&c->dispatcher.labels[T2_CFG_LABEL_MATH], "math");
    rc |= set_str(&c->dispatcher.labels[T2_CFG_LABEL_REASONING], "reasoning");
    rc |= set_str(&c->dispatcher.log_level, "info");
    rc |= set_str(&c->client.service, "generate-adaptive");
    c->client.timeout_ms = 0;
    c->security.pin_model = 1;
    rc |= set_str(&c->gateway.bind, "127.0.0.1");
    c->gateway.port = 8080;
    c->gateway.rate_limit = 0;
    c->gateway.rate_burst = 10;
    c->gateway.max_body = 1048576;
    c->gateway.timeout_ms = 600000;
    c->gateway.connection_timeout_s = 30;
    c->gateway.max_connections = 256;
    rc |= set_str(&c->gateway.model, "t2-base");
    rc |= set_str(&c->gateway.adapt, "none");
    rc |= set_str(&c->gateway.log_level, "info");
    c->n_groups = 1;
    snprintf(c->groups[0].name, sizeof c->groups[0].name, "g0");
    c->groups[0].ranks = 1;
    c->groups[0].apply = -1;
    c->groups[0].cache = -1;
    c->group = c->groups[0];
    if (rc) {
        t2_conf_free(c);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    return 0;
}

void t2_conf_free(t2_conf *c) {
    if (!c) return;
    char **strs[] = {&c->path,
                     &c->router.bind,
                     &c->router.endpoint,
                     &c->model.path,
                     &c->model.tokenizer,
                     &c->model.factors,
                     &c->model.experts_dir,
                     &c->model.profiles_dir,
                     &c->model.classifier_expert,
                     &c->worker.name,
                     &c->worker.log_level,
                     &c->dispatcher.service,
                     &c->dispatcher.generate_service,
                     &c->dispatcher.classify_service,
                     &c->dispatcher.log_level,
                     &c->client.service,
                     &c->security.router_key,
                     &c->security.router_public,
                     &c->security.client_key,
                     &c->security.worker_key,
                     &c->security.dispatcher_key,
                     &c->security.clients,
                     &c->security.workers,
                     &c->security.dispatchers,
                     &c->gateway.bind,
                     &c->gateway.keys,
                     &c->gateway.model,
                     &c->gateway.adapt,
                     &c->gateway.chat_page,
                     &c->gateway.log_level};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    for (int i = 0; i < T2_CFG_N_LABELS; i++) {
        free(c->dispatcher.labels[i]);
        c->dispatcher.labels[i] = NULL;
    }
}

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct reader {
    const char *file; /* for messages */
    char dir[4096];   /* the file's folder, for relative paths */
} reader;

/* "FILE:LINE: PATH: " + message, as T2_EINVAL. */
static int bad(const reader *r, const config_setting_t *s, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(const reader *r, const config_setting_t *s, const char *path, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *f = s && config_setting_source_file(s) ? config_setting_source_file(s) : r->file;
    return t2_err_set(T2_EINVAL, "%s:%u: %s: %s", f, s ? config_setting_source_line(s) : 0, path,
                      msg);
}

static const char *type_name(int t) {
    switch (t) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    }
    return "nothing";
}

static int get_long(const reader *r, const config_setting_t *s, const char *path, long lo, long hi,
                    long *out) {
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return bad(r, s, path, "%s, expected an integer in [%ld, %ld]", type_name(t), lo, hi);
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi) return bad(r, s, path, "%lld is out of range [%ld, %ld]", v, lo, hi);
    *out = (long)v;
    return 0;
}

static int get_int(const reader *r, const config_setting_t *s, const char *path, long lo, long hi,
                   int *out) {
    long v = 0;
    int rc = get_long(r, s, path, lo, hi, &v);
    if (rc == 0) *out = (int)v;
    return rc;
}

static int get_float(const reader *r, const config_setting_t *s, const char *path, double lo,
                     double hi, float *out) {
    int t = config_setting_type(s);
    double v;
    if (t == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        v = (double)config_setting_get_int64(s);
    else
        return bad(r, s, path, "%s, expected a number in [%g, %g]", type_name(t), lo, hi);
    if (!isfinite(v) || v < lo || v > hi)
        return bad(r, s, path, "%g is out of range [%g, %g]", v, lo, hi);
    *out = (float)v;
    return 0;
}

static int get_string(const reader *r, const config_setting_t *s, const char *path,
                      const char **out) {
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_STRING) return bad(r, s, path, "%s, expected a string", type_name(t));
    *out = config_setting_get_string(s);
    return 0;
}

/* A path: relative to the file's folder; "" means unset. */
static int get_path(const reader *r, const config_setting_t *s, const char *path, char **dst) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    if (!*v) return set_str(dst, NULL);
    if (v[0] == '/' || !r->dir[0]) return set_str(dst, v);
    char buf[8192];
    if ((size_t)snprintf(buf, sizeof buf, "%s/%s", r->dir, v) >= sizeof buf)
        return bad(r, s, path, "path too long");
    return set_str(dst, buf);
}

static int get_name(const reader *r, const config_setting_t *s, const char *path, int optional,
                    char **dst) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    if (!*v && optional) return set_str(dst, NULL);
    if (!t2_conf_name_ok(v))
        return bad(r, s, path, "'%s' is not a name (1..%d characters of A-Z a-z 0-9 . _ : / -)", v,
                   T2_CONF_NAME_MAX);
    return set_str(dst, v);
}

static int get_endpoint(const reader *r, const config_setting_t *s, const char *path, char **dst) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    if (strncmp(v, "tcp://", 6) && strncmp(v, "ipc://", 6) && strncmp(v, "inproc://", 9))
        return bad(r, s, path, "'%s' is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH)", v);
    if (strlen(v) > 250) return bad(r, s, path, "endpoint longer than 250 characters");
    return set_str(dst, v);
}

static int get_apply(const reader *r, const config_setting_t *s, const char *path, int *out) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    if (!strcmp(v, "merged"))
        *out = T2_CFG_APPLY_MERGED;
    else if (!strcmp(v, "factored"))
        *out = T2_CFG_APPLY_FACTORED;
    else
        return bad(r, s, path, "'%s' is not \"merged\" or \"factored\"", v);
    return 0;
}

static int get_merged_type(const reader *r, const config_setting_t *s, const char *path,
                           int *out) {
    static const int types[] = {T2_CFG_MERGED_F32, T2_CFG_MERGED_F16, T2_CFG_MERGED_BF16,
                                T2_CFG_MERGED_Q8_0};
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcmp(v, t2_conf_merged_type_name(types[i]))) {
            *out = types[i];
            return 0;
        }
    return bad(r, s, path, "'%s' is not \"f32\", \"f16\", \"bf16\" or \"q8_0\"", v);
}

static int get_pass1(const reader *r, const config_setting_t *s, const char *path, int *out) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    if (strcmp(v, "score") && strcmp(v, "generate"))
        return bad(r, s, path, "'%s' is not \"score\" or \"generate\"", v);
    *out = !strcmp(v, "generate");
    return 0;
}

const char *t2_conf_kv_name(int kv_type) {
    return kv_type == T2_CFG_KV_F32 ? "f32" : kv_type == T2_CFG_KV_Q8_0 ? "q8_0" : "f16";
}

static int get_kv_type(const reader *r, const config_setting_t *s, const char *path, int *out) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    if (!strcmp(v, "f16"))
        *out = T2_CFG_KV_F16;
    else if (!strcmp(v, "q8_0"))
        *out = T2_CFG_KV_Q8_0;
    else if (!strcmp(v, "f32"))
        *out = T2_CFG_KV_F32;
    else
        return bad(r, s, path, "'%s' is not \"f16\", \"q8_0\" or \"f32\"", v);
    return 0;
}

static int get_level(const reader *r, const config_setting_t *s, const char *path, char **dst) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    if (strcmp(v, "error") && strcmp(v, "warn") && strcmp(v, "info") && strcmp(v, "debug"))
        return bad(r, s, path, "'%s' is not error, warn, info or debug", v);
    return set_str(dst, v);
}

static int want_group(const reader *r, const config_setting_t *s, const char *path) {
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return bad(r, s, path, "%s, expected a group { ... }", type_name(config_setting_type(s)));
    return 0;
}

#define CONF_PATH_LEN 256 /* "section.setting" named in a message */
#define PATHOF(sec, s) (snprintf(path, sizeof path, "%s.%s", sec, config_setting_name(s)), path)

static int read_router(const reader *r, const config_setting_t *g, t2_conf *c) {
    char path[CONF_PATH_LEN];
    int rc = want_group(r, g, "router");
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(s), *p = PATHOF("router", s);
        if (!strcmp(n, "bind"))
            rc = get_endpoint(r, s, p, &c->router.bind);
        else if (!strcmp(n, "endpoint"))
            rc = get_endpoint(r, s, p, &c->router.endpoint);
        else if (!strcmp(n, "heartbeat_ms"))
            rc = get_int(r, s, p, 10, 600000, &c->router.heartbeat_ms);
        else if (!strcmp(n, "liveness"))
            rc = get_int(r, s, p, 1, 1000, &c->router.liveness);
        else if (!strcmp(n, "queue_max"))
            rc = get_int(r, s, p, 0, 10000000, &c->router.queue_max);
        else if (!strcmp(n, "max_msg"))
            rc = get_long(r, s, p, 1024, 256L << 20, &c->router.max_msg);
        else if (!strcmp(n, "stats_ms"))
            rc = get_int(r, s, p, 0, INT_MAX, &c->router.stats_ms);
        else if (!strcmp(n, "cancel_grace_ms"))
            rc = get_int(r, s, p, 0, INT_MAX, &c->router.cancel_grace_ms);
        else if (!strcmp(n, "client_max"))
            rc = get_int(r, s, p, 1, 10000000, &c->router.client_max);
        else if (!strcmp(n, "progress_ms"))
            rc = get_int(r, s, p, 0, INT_MAX, &c->router.progress_ms);
        else
            rc = bad(r, s, p, "unknown setting");
    }
    return rc;
}

static int read_model(const reader *r, const config_setting_t *g, t2_conf *c) {
    char path[CONF_PATH_LEN];
    int rc = want_group(r, g, "model");
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(s), *p = PATHOF("model", s);
        if (!strcmp(n, "path"))
            rc = get_path(r, s, p, &c->model.path);
        else if (!strcmp(n, "tokenizer"))
            rc = get_path(r, s, p, &c->model.tokenizer);
        else if (!strcmp(n, "factors"))
            rc = get_path(r, s, p, &c->model.factors);
        else if (!strcmp(n, "experts_dir"))
            rc = get_path(r, s, p, &c->model.experts_dir);
        else if (!strcmp(n, "profiles_dir"))
            rc = get_path(r, s, p, &c->model.profiles_dir);
        else if (!strcmp(n, "classifier_expert"))
            rc = get_name(r, s, p, 1, &c->model.classifier_expert);
        else if (!strcmp(n, "context"))
            rc = get_int(r, s, p, 0, 1 << 22, &c->model.context);
        else
            rc = bad(r, s, p, "unknown setting");
    }
    return rc;
}

static int read_services(const reader *r, const config_setting_t *s, const char *p, t2_conf *c) {
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return bad(r, s, p, "%s, expected an array of service names [\"generate\", ...]",
                   type_name(t));
    int n = config_setting_length(s);
    if (n < 1 || n > T2_CONF_MAX_SERVICES)
        return bad(r, s, p, "%d services, expected 1..%d", n, T2_CONF_MAX_SERVICES);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char *v = NULL;
        int rc = get_name(r, e, p, 0, &v);
        if (rc < 0) return rc;
        snprintf(c->worker.services[i], sizeof c->worker.services[i], "%s", v);
        free(v);
        for (int j = 0; j < i; j++)
            if (!strcmp(c->worker.services[j], c->worker.services[i]))
                return bad(r, e, p, "'%s' named twice", c->worker.services[i]);
    }
    c->worker.n_services = n;
    return 0;
}

static int get_bool(const reader *r, const config_setting_t *s, const char *path, int *out);

static int read_worker(const reader *r, const config_setting_t *g, t2_conf *c) {
    char path[CONF_PATH_LEN];
    int rc = want_group(r, g, "worker");
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(s), *p = PATHOF("worker", s);
        if (!strcmp(n, "name"))
            rc = get_name(r, s, p, 1, &c->worker.name);
        else if (!strcmp(n, "capacity"))
            rc = get_int(r, s, p, 1, T2_MAX_SEQS, &c->worker.capacity);
        else if (!strcmp(n, "classify_capacity"))
            rc = get_int(r, s, p, 1, T2_MAX_SEQS, &c->worker.classify_capacity);
        else if (!strcmp(n, "threads"))
            rc = get_int(r, s, p, 1, T2_POOL_MAX_THREADS, &c->worker.threads);
        else if (!strcmp(n, "batch"))
            rc = get_int(r, s, p, 1, 4096, &c->worker.batch);
        else if (!strcmp(n, "apply"))
            rc = get_apply(r, s, p, &c->worker.apply);
        else if (!strcmp(n, "merged_type"))
            rc = get_merged_type(r, s, p, &c->worker.merged_type);
        else if (!strcmp(n, "cache"))
            rc = get_int(r, s, p, 0, 4096, &c->worker.cache);
        else if (!strcmp(n, "max_tokens"))
            rc = get_int(r, s, p, 1, 1 << 20, &c->worker.max_tokens);
        else if (!strcmp(n, "temperature"))
            rc = get_float(r, s, p, 0, 100, &c->worker.temperature);
        else if (!strcmp(n, "top_p"))
            rc = get_float(r, s, p, 0, 1, &c->worker.top_p);
        else if (!strcmp(n, "classify_max_tokens"))
            rc = get_int(r, s, p, 1, 4096, &c->worker.classify_max_tokens);
        else if (!strcmp(n, "watchdog_ms"))
            rc = get_int(r, s, p, 0, INT_MAX, &c->worker.watchdog_ms);
        else if (!strcmp(n, "chunk_tokens"))
            rc = get_int(r, s, p, 1, 256, &c->worker.chunk_tokens);
        else if (!strcmp(n, "pass1"))
            rc = get_pass1(r, s, p, &c->worker.pass1_generate);
        else if (!strcmp(n, "kv_type"))
            rc = get_kv_type(r, s, p, &c->worker.kv_type);
        else if (!strcmp(n, "kv_pool_tokens"))
            rc = get_long(r, s, p, 0, 1L << 31, &c->worker.kv_pool_tokens);
        else if (!strcmp(n, "memory_mib"))
            rc = get_long(r, s, p, 0, 1L << 40, &c->worker.memory_mib);
        else if (!strcmp(n, "prefix_cache"))
            rc = get_bool(r, s, p, &c->worker.prefix_cache);
        else if (!strcmp(n, "services"))
            rc = read_services(r, s, p, c);
        else if (!strcmp(n, "log_level"))
            rc = get_level(r, s, p, &c->worker.log_level);
        else
            rc = bad(r, s, p, "unknown setting");
    }
    if (rc == 0 && c->worker.capacity + c->worker.classify_capacity > T2_MAX_SEQS)
        rc = bad(r, g, "worker", "capacity + classify_capacity must be at most %d", T2_MAX_SEQS);
    return rc;
}

static int read_labels(const reader *r, const config_setting_t *g, t2_conf *c) {
    char path[CONF_PATH_LEN];
    int rc = want_group(r, g, "dispatcher.labels");
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(s), *p = PATHOF("dispatcher.labels", s);
        int l = 0;
        while (l < T2_CFG_N_LABELS && strcmp(n, label_names[l]))
            l++;
        if (l == T2_CFG_N_LABELS)
            rc = bad(r, s, p, "unknown label (code, math, reasoning, other)");
        else
            rc = get_name(r, s, p, 1, &c->dispatcher.labels[l]);
    }
    return rc;
}

static int read_dispatcher(const reader *r, const config_setting_t *g, t2_conf *c) {
    char path[CONF_PATH_LEN];
    int rc = want_group(r, g, "dispatcher");
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(s), *p = PATHOF("dispatcher", s);
        if (!strcmp(n, "service"))
            rc = get_name(r, s, p, 0, &c->dispatcher.service);
        else if (!strcmp(n, "generate_service"))
            rc = get_name(r, s, p, 0, &c->dispatcher.generate_service);
        else if (!strcmp(n, "classify_service"))
            rc = get_name(r, s, p, 0, &c->dispatcher.classify_service);
        else if (!strcmp(n, "capacity"))
            rc = get_int(r, s, p, 1, 4096, &c->dispatcher.capacity);
        else if (!strcmp(n, "classify_timeout_ms"))
            rc = get_int(r, s, p, 0, INT_MAX, &c->dispatcher.classify_timeout_ms);
        else if (!strcmp(n, "labels"))
            rc = read_labels(r, s, c);
        else if (!strcmp(n, "log_level"))
            rc = get_level(r, s, p, &c->dispatcher.log_level);
        else
            rc = bad(r, s, p, "unknown setting");
    }
    return rc;
}

static int read_client(const reader *r, const config_setting_t *g, t2_conf *c) {
    char path[CONF_PATH_LEN];
    int rc = want_group(r, g, "client");
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(s), *p = PATHOF("client", s);
        if (!strcmp(n, "service"))
            rc = get_name(r, s, p, 0, &c->client.service);
        else if (!strcmp(n, "timeout_ms"))
            rc = get_int(r, s, p, 0, INT_MAX, &c->client.timeout_ms);
        else
            rc = bad(r, s, p, "unknown setting");
    }
    return rc;
}

static int get_bool(const reader *r, const config_setting_t *s, const char *path, int *out) {
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return bad(r, s, path, "%s, expected true or false", type_name(config_setting_type(s)));
    *out = config_setting_get_bool(s);
    return 0;
}

static int read_security(const reader *r, const config_setting_t *g, t2_conf *c) {
    char path[256];
    int rc = want_group(r, g, "security");
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *n = config_setting_name(s), *p = PATHOF("security", s);
        char **dst = !strcmp(n, "router_key")       ? &c->security.router_key
                     : !strcmp(n, "router_public")  ? &c->security.router_public
                     : !strcmp(n, "client_key")     ? &c->security.client_key
                     : !strcmp(n, "worker_key")     ? &c->security.worker_key
                     : !strcmp(n, "dispatcher_key") ? &c->security.dispatcher_key
                     : !strcmp(n, "clients")        ? &c->security.clients
                     : !strcmp(n, "workers")        ? &c->security.workers
                     : !strcmp(n, "dispatchers")    ? &c->security.dispatchers
                                                    : NULL;
        if (dst)
            rc = get_path(r, s, p, dst);
        else if (!strcmp(n, "curve"))
            rc = get_bool(r, s, p, &c->security.curve);
        else if (!strcmp(n, "insecure"))
            rc = get_bool(r, s, p, &c->security.insecure);
        else if (!strcmp(n, "pin_model"))
            rc = get_bool(r, s, p, &c->security.pin_model);
        else
            rc = bad(r, s, p, "unknown setting");
    }
    return rc;
}

static int get_address(const reader *r, const config_setting_t *s, const char *path, char **dst) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    unsigned char buf[16];
    if (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1)
        return bad(r, s, path, "'%s' is not an IPv4 or IPv6 address (0.0.0.0: every interface)",
                   v);
    return set_str(dst, v);
}

/* The forms gateway.adapt may take (the gateway parses the mixture itself). */
static int get_adapt(const reader *r, const config_setting_t *s, const char *path, char **dst) {
    const char *v = "";
    int rc = get_string(r, s, path, &v);
    if (rc < 0) return rc;
    if (strcmp(v, "none") && strcmp(v, "prompt") && strcmp(v, "classifier") &&
        !(!strncmp(v, "profile/", 8) && t2_conf_name_ok(v + 8)) &&
        !(!strncmp(v, "mix/", 4) && strchr(v, '=') && strlen(v) < 4096))
        return bad(r, s, path,
                   "'%s' is not none, prompt, classifier, profile/NAME or mix/NAME=A,...", v);
    return set_str(dst, v);
}

static int read_gateway_one(const reader *r, const config_setting_t *s, const char *n,
                            const char *p, t2_conf *c) {
    if (!strcmp(n, "bind")) return get_address(r, s, p, &c->gateway.bind);
    if (!strcmp(n, "port")) return get_int(r, s, p, 1, 65535, &c->gateway.port);
    if (!strcmp(n, "keys")) return get_path(r, s, p, &c->gateway.keys);
    if (!strcmp(n, "rate_limit")) return get_float(r, s, p, 0, 1e6, &c->gateway.rate_limit);
    if (!strcmp(n, "rate_burst")) return get_int(r, s, p, 1, 1000000, &c->gateway.rate_burst);
    if (!strcmp(n, "max_body")) return get_long(r, s, p, 1024, 256L << 20, &c->gateway.max_body);
    if (!strcmp(n, "timeout_ms")) return get_int(r, s, p, 0, INT_MAX, &c->gateway.timeout_ms);
    if (!strcmp(n, "connection_timeout_s"))
        return get_int(r, s, p, 1, 86400, &c->gateway.connection_timeout_s);
    if (!strcmp(n, "max_connections"))
        return get_int(r, s, p, 1, 65536, &c->gateway.max_connections);
    if (!strcmp(n, "model")) return get_name(r, s, p, 0, &c->gateway.model);
    if (!strcmp(n, "adapt")) return get_adapt(r, s, p, &c->gateway.adapt);
    if (!strcmp(n, "chat_page")) return get_path(r, s, p, &c->gateway.chat_page);
    if (!strcmp(n, "log_level")) return get_level(r, s, p, &c->gateway.log_level);
    return bad(r, s, p, "unknown setting");
}

static int read_gateway(const reader *r, const config_setting_t *g, t2_conf *c) {
    char path[256];
    int rc = want_group(r, g, "gateway");
    c->gateway.enabled = 1;
    for (int i = 0; rc == 0 && i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        rc = read_gateway_one(r, s, config_setting_name(s), PATHOF("gateway", s), c);
    }
    return rc;
}

/* What the security settings must say together (after reading the whole file). */
static int check_security(const t2_conf *c, const char *file) {
    const char *f = file ? file : "defaults";
    if (!c->security.curve) {
        if (c->security.insecure) return 0;
        if (!t2_endpoint_is_local(c->router.bind) || !t2_endpoint_is_local(c->router.endpoint))
            return t2_err_set(T2_EINVAL, "%s: router.bind / router.endpoint: plain ZeroMQ on a "
                              "non-loopback address lets anyone who reaches it own the "
                              "deployment: set security.curve = true (keys from t2 keygen), or "
                              "security.insecure = true to accept that", f);
        return 0;
    }
    if (!c->security.router_key || !c->security.router_public)
        return t2_err_set(T2_EINVAL, "%s: security.curve needs security.router_key and "
                          "security.router_public", f);
    if (!c->security.clients && !c->security.workers && !c->security.dispatchers)
        return t2_err_set(T2_EINVAL, "%s: security.curve without security.clients, workers or "
                          "dispatchers: nobody could connect", f);
    return 0;
}

static int read_groups(const reader *r, const config_setting_t *l, t2_conf *c) {
    int t = config_setting_type(l);
    if (t != CONFIG_TYPE_LIST)
        return bad(r, l, "groups", "%s, expected a list ( { name = \"g0\"; ranks = 2; }, ... )",
                   type_name(t));
    int n = config_setting_length(l);
    if (n < 1 || n > T2_CONF_MAX_GROUPS)
        return bad(r, l, "groups", "%d groups, expected 1..%d", n, T2_CONF_MAX_GROUPS);
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
        char gp[64], path[CONF_PATH_LEN];
        snprintf(gp, sizeof gp, "groups[%d]", i);
        int rc = want_group(r, g, gp);
        if (rc < 0) return rc;
        t2_conf_group *G = &c->groups[i];
        memset(G, 0, sizeof *G);
        snprintf(G->name, sizeof G->name, "g%d", i);
        G->ranks = 1;
        G->apply = -1;
        G->cache = -1;
        for (int k = 0; rc == 0 && k < config_setting_length(g); k++) {
            const config_setting_t *s = config_setting_get_elem(g, (unsigned)k);
            const char *nm = config_setting_name(s), *p = PATHOF(gp, s);
            char *v = NULL;
            if (!strcmp(nm, "name")) {
                if ((rc = get_name(r, s, p, 0, &v)) == 0)
                    snprintf(G->name, sizeof G->name, "%s", v);
            } else if (!strcmp(nm, "host")) {
                const char *h = "";
                if ((rc = get_string(r, s, p, &h)) == 0) {
                    if (strlen(h) >= sizeof G->host)
                        rc = bad(r, s, p, "host name too long");
                    else
                        snprintf(G->host, sizeof G->host, "%s", h);
                }
            } else if (!strcmp(nm, "ranks"))
                rc = get_int(r, s, p, 1, 4096, &G->ranks);
            else if (!strcmp(nm, "apply"))
                rc = get_apply(r, s, p, &G->apply);
            else if (!strcmp(nm, "capacity"))
                rc = get_int(r, s, p, 1, T2_MAX_SEQS, &G->capacity);
            else if (!strcmp(nm, "threads"))
                rc = get_int(r, s, p, 1, T2_POOL_MAX_THREADS, &G->threads);
            else if (!strcmp(nm, "cache"))
                rc = get_int(r, s, p, 0, 4096, &G->cache);
            else
                rc = bad(r, s, p, "unknown setting");
            free(v);
        }
        if (rc < 0) return rc;
        for (int j = 0; j < i; j++)
            if (!strcmp(c->groups[j].name, G->name))
                return bad(r, g, gp, "group name '%s' used twice", G->name);
    }
    c->n_groups = n;
    return 0;
}

int t2_conf_load(t2_conf *c, const char *path, const char *group) {
    int rc = t2_conf_defaults(c);
    if (rc < 0) return rc;
    if (!path) goto pick;
    if ((rc = set_str(&c->path, path)) < 0) return rc;
    reader r = {.file = path};
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof r.dir) return t2_err_set(T2_EINVAL, "%s: path too long", path);
        memcpy(r.dir, path, n);
        r.dir[n] = 0;
        if (n == 0) snprintf(r.dir, sizeof r.dir, "/");
    }
    FILE *f = fopen(path, "r");
    if (!f) return t2_err_set(T2_EIO, "%s: cannot open the configuration file", path);
    fclose(f);
    config_t cf;
    config_init(&cf);
    if (!config_read_file(&cf, path)) {
        rc = t2_err_set(T2_EINVAL, "%s:%d: %s",
                        config_error_file(&cf) ? config_error_file(&cf) : path,
                        config_error_line(&cf), config_error_text(&cf));
        config_destroy(&cf);
        return rc;
    }
    const config_setting_t *root = config_root_setting(&cf);
    for (int i = 0; rc == 0 && i < config_setting_length(root); i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *n = config_setting_name(s);
        if (!strcmp(n, "version")) {
            int v;
            if ((rc = get_int(&r, s, "version", 1, 1, &v)) < 0) break;
        } else if (!strcmp(n, "router"))
            rc = read_router(&r, s, c);
        else if (!strcmp(n, "model"))
            rc = read_model(&r, s, c);
        else if (!strcmp(n, "worker"))
            rc = read_worker(&r, s, c);
        else if (!strcmp(n, "dispatcher"))
            rc = read_dispatcher(&r, s, c);
        else if (!strcmp(n, "client"))
            rc = read_client(&r, s, c);
        else if (!strcmp(n, "groups"))
            rc = read_groups(&r, s, c);
        else if (!strcmp(n, "security"))
            rc = read_security(&r, s, c);
        else if (!strcmp(n, "gateway"))
            rc = read_gateway(&r, s, c);
        else
            rc = bad(&r, s, n, "unknown setting (router, model, worker, dispatcher, client, "
                     "security, gateway, groups)");
    }
    config_destroy(&cf);
    if (rc == 0) rc = check_security(c, path);
    if (rc < 0) return rc;
pick:
    c->group = c->groups[0];
    if (group) {
        int k = 0;
        while (k < c->n_groups && strcmp(c->groups[k].name, group))
            k++;
        if (k == c->n_groups)
            return t2_err_set(T2_EINVAL, "%s: no group named '%s' in groups",
                              path ? path : "defaults", group);
        c->group = c->groups[k];
    }
    if (c->group.apply >= 0) c->worker.apply = c->group.apply;
    if (c->group.capacity > 0) c->worker.capacity = c->group.capacity;
    if (c->group.threads > 0) c->worker.threads = c->group.threads;
    if (c->group.cache >= 0) c->worker.cache = c->group.cache;
    if (c->worker.capacity + c->worker.classify_capacity > T2_MAX_SEQS)
        return t2_err_set(T2_EINVAL,
                          "%s: group %s: capacity + worker.classify_capacity must be at "
                          "most %d",
                          path ? path : "defaults", c->group.name, T2_MAX_SEQS);
    return 0;
}

/* ---- printing ------------------------------------------------------------------------------- */

static void pstr(FILE *f, const char *key, const char *v) {
    fprintf(f, "  %s = \"%s\";\n", key, v ? v : "");
}

static void t2_conf_print_gateway(const t2_conf *c, FILE *f) {
    fprintf(f, "gateway = {\n");
    pstr(f, "bind", c->gateway.bind);
    fprintf(f, "  port = %d;\n", c->gateway.port);
    pstr(f, "keys", c->gateway.keys);
    fprintf(f,
            "  rate_limit = %g;\n  rate_burst = %d;\n  max_body = %ld;\n  timeout_ms = %d;\n"
            "  connection_timeout_s = %d;\n  max_connections = %d;\n",
            (double)c->gateway.rate_limit, c->gateway.rate_burst, c->gateway.max_body,
            c->gateway.timeout_ms, c->gateway.connection_timeout_s, c->gateway.max_connections);
    pstr(f, "model", c->gateway.model);
    pstr(f, "adapt", c->gateway.adapt);
    pstr(f, "chat_page", c->gateway.chat_page);
    pstr(f, "log_level", c->gateway.log_level);
    fprintf(f, "};\n");
}

void t2_conf_print(const t2_conf *c, FILE *f) {
    fprintf(f, "# effective configuration%s%s\nversion = 1;\nrouter = {\n", c->path ? " of " : "",
            c->path ? c->path : "");
    pstr(f, "bind", c->router.bind);
    pstr(f, "endpoint", c->router.endpoint);
    fprintf(f,
            "  heartbeat_ms = %d;\n  liveness = %d;\n  queue_max = %d;\n  max_msg = %ld;\n"
            "  stats_ms = %d;\n  cancel_grace_ms = %d;\n  progress_ms = %d;\n  client_max = %d;\n};\nmodel = {\n",
            c->router.heartbeat_ms, c->router.liveness, c->router.queue_max, c->router.max_msg,
            c->router.stats_ms, c->router.cancel_grace_ms, c->router.progress_ms,
            c->router.client_max);
    pstr(f, "path", c->model.path);
    pstr(f, "tokenizer", c->model.tokenizer);
    pstr(f, "factors", c->model.factors);
    pstr(f, "experts_dir", c->model.experts_dir);
    pstr(f, "profiles_dir", c->model.profiles_dir);
    pstr(f, "classifier_expert", c->model.classifier_expert);
    fprintf(f, "  context = %d;\n};\nworker = {\n", c->model.context);
    pstr(f, "name", c->worker.name);
    fprintf(f,
            "  capacity = %d;\n  classify_capacity = %d;\n  threads = %d;\n  batch = %d;\n"
            "  apply = \"%s\";\n  merged_type = \"%s\";\n  cache = %d;\n  max_tokens = %d;\n"
            "  temperature = %g;\n  top_p = %g;\n  classify_max_tokens = %d;\n  pass1 = \"%s\";\n"
            "  chunk_tokens = %d;\n  kv_type = \"%s\";\n  kv_pool_tokens = %ld;\n"
            "  memory_mib = %ld;\n  services = [",
            c->worker.capacity, c->worker.classify_capacity, c->worker.threads, c->worker.batch,
            t2_conf_apply_name(c->worker.apply),
            t2_conf_merged_type_name(c->worker.merged_type), c->worker.cache, c->worker.max_tokens,
            (double)c->worker.temperature, (double)c->worker.top_p, c->worker.classify_max_tokens,
            c->worker.pass1_generate ? "generate" : "score", c->worker.chunk_tokens,
            t2_conf_kv_name(c->worker.kv_type), c->worker.kv_pool_tokens, c->worker.memory_mib);
    for (int i = 0; i < c->worker.n_services; i++)
        fprintf(f, "%s\"%s\"", i ? ", " : "", c->worker.services[i]);
    fprintf(f, "];\n  prefix_cache = %s;\n", c->worker.prefix_cache ? "true" : "false");
    pstr(f, "log_level", c->worker.log_level);
    fprintf(f, "  watchdog_ms = %d;\n};\ndispatcher = {\n", c->worker.watchdog_ms);
    pstr(f, "service", c->dispatcher.service);
    pstr(f, "generate_service", c->dispatcher.generate_service);
    pstr(f, "classify_service", c->dispatcher.classify_service);
    fprintf(f, "  capacity = %d;\n  classify_timeout_ms = %d;\n  labels = {",
            c->dispatcher.capacity, c->dispatcher.classify_timeout_ms);
    for (int l = 0; l < T2_CFG_N_LABELS; l++)
        fprintf(f, " %s = \"%s\";", label_names[l],
                c->dispatcher.labels[l] ? c->dispatcher.labels[l] : "");
    fprintf(f, " };\n");
    pstr(f, "log_level", c->dispatcher.log_level);
    fprintf(f, "};\nclient = {\n");
    pstr(f, "service", c->client.service);
    fprintf(f, "  timeout_ms = %d;\n};\n", c->client.timeout_ms);
    if (c->gateway.enabled) t2_conf_print_gateway(c, f);
    fprintf(f, "groups = (\n");
    for (int i = 0; i < c->n_groups; i++) {
        const t2_conf_group *g = &c->groups[i];
        fprintf(f, "  { name = \"%s\"; ranks = %d;", g->name, g->ranks);
        if (g->apply >= 0) fprintf(f, " apply = \"%s\";", t2_conf_apply_name(g->apply));
        if (g->capacity > 0) fprintf(f, " capacity = %d;", g->capacity);
        if (g->threads > 0) fprintf(f, " threads = %d;", g->threads);
        if (g->cache >= 0) fprintf(f, " cache = %d;", g->cache);
        if (g->host[0]) fprintf(f, " host = \"%s\";", g->host);
        fprintf(f, " }%s\n", i + 1 < c->n_groups ? "," : "");
    }
    fprintf(f, ");\n");
}

/* ---- the files a configuration names ---- */

enum { KIND_FILE, KIND_DIR, KIND_GGUF, KIND_MODEL, KIND_SECRET, KIND_ANY };

static int check_path(const t2_conf *c, const char *setting, const char *path, int kind) {
    const char *cfg = c->path ? c->path : "(defaults)";
    struct stat st;
    if (stat(path, &st) < 0)
        return t2_err_set(T2_ENOTFOUND, "%s: %s: %s: no such %s", cfg, setting, path,
                          kind == KIND_DIR ? "folder" : "file");
    if (kind == KIND_ANY && S_ISDIR(st.st_mode)) return 0; /* a file or a folder */
    if (kind == KIND_SECRET && (st.st_mode & 077))
        return t2_err_set(T2_EINVAL, "%s: %s: %s: a secret key file must not be accessible to "
                          "other users (chmod 600 it)", cfg, setting, path);
    if (kind == KIND_DIR) {
        if (!S_ISDIR(st.st_mode))
            return t2_err_set(T2_EINVAL, "%s: %s: %s: not a folder", cfg, setting, path);
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return t2_err_set(T2_EINVAL, "%s: %s: %s: not a regular file", cfg, setting, path);
    FILE *f = fopen(path, "rb");
    if (!f) return t2_err_set(T2_EIO, "%s: %s: %s: cannot read it", cfg, setting, path);
    char magic[4] = {0};
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    const int gguf = n == 4 && !memcmp(magic, "GGUF", 4);
    if (kind == KIND_GGUF && !gguf)
        return t2_err_set(T2_EINVAL, "%s: %s: %s: not a GGUF file", cfg, setting, path);
    /* a llama2.c checkpoint starts with a 28-byte header; anything shorter is no model */
    if (kind == KIND_MODEL && !gguf && st.st_size < 28)
        return t2_err_set(T2_EINVAL, "%s: %s: %s: not a GGUF file or a llama2.c checkpoint",
                          cfg, setting, path);
    return 0;
}

static int check_expert(const t2_conf *c, const char *setting, const char *dir, const char *name) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.gguf", dir, name) >= (int)sizeof path)
        return t2_err_set(T2_EINVAL, "%s: %s: path too long", c->path, setting);
    return check_path(c, setting, path, KIND_GGUF);
}

/* The folder of a file path, into buf ("." when it has none). */
static const char *dir_of(const char *path, char *buf, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) return ".";
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/x" */
    if (n >= cap) n = cap - 1;
    memcpy(buf, path, n);
    buf[n] = 0;
    return buf;
}

static int check_security_files(const t2_conf *c) {
    if (!c->security.curve) return 0;
    const struct { const char *setting, *path; int kind; } f[] = {
        {"security.router_key", c->security.router_key, KIND_SECRET},
        {"security.router_public", c->security.router_public, KIND_FILE},
        {"security.client_key", c->security.client_key, KIND_SECRET},
        {"security.worker_key", c->security.worker_key, KIND_SECRET},
        {"security.dispatcher_key", c->security.dispatcher_key, KIND_SECRET},
        {"security.clients", c->security.clients, KIND_ANY},
        {"security.workers", c->security.workers, KIND_ANY},
        {"security.dispatchers", c->security.dispatchers, KIND_ANY}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int rc = f[i].path ? check_path(c, f[i].setting, f[i].path, f[i].kind) : 0;
        if (rc < 0) return rc;
    }
    return 0;
}

int t2_conf_check_files(const t2_conf *c, FILE *warn) {
    int rc = 0;
    if (c->model.path && (rc = check_path(c, "model.path", c->model.path, KIND_MODEL)) < 0)
        return rc;
    if (c->model.tokenizer &&
        (rc = check_path(c, "model.tokenizer", c->model.tokenizer, KIND_FILE)) < 0)
        return rc;
    if ((rc = check_security_files(c)) < 0) return rc;
    if (c->gateway.keys && (rc = check_path(c, "gateway.keys", c->gateway.keys, KIND_FILE)) < 0)
        return rc;
    if (c->gateway.chat_page &&
        (rc = check_path(c, "gateway.chat_page", c->gateway.chat_page, KIND_FILE)) < 0)
        return rc;
    if (!c->model.factors) return 0; /* no adaptation: no experts are read */
    if ((rc = check_path(c, "model.factors", c->model.factors, KIND_GGUF)) < 0) return rc;
    char buf[4096];
    const char *experts = c->model.experts_dir ? c->model.experts_dir
                                               : dir_of(c->model.factors, buf, sizeof buf);
    if ((rc = check_path(c, "model.experts_dir", experts, KIND_DIR)) < 0) return rc;
    if (c->model.profiles_dir &&
        (rc = check_path(c, "model.profiles_dir", c->model.profiles_dir, KIND_DIR)) < 0)
        return rc;
    if (c->model.classifier_expert &&
        (rc = check_expert(c, "model.classifier_expert", experts, c->model.classifier_expert)) < 0)
        return rc;
    for (int l = 0; l < T2_CFG_N_LABELS; l++) {
        if (!c->dispatcher.labels[l]) continue;
        char setting[64];
        snprintf(setting, sizeof setting, "dispatcher.labels.%s", label_names[l]);
        /* a missing label expert fails only the requests given that label: a warning */
        if (check_expert(c, setting, experts, c->dispatcher.labels[l]) < 0 && warn)
            fprintf(warn, "warning: %s (requests labelled %s will fail)\n", t2_err_msg(),
                    label_names[l]);
    }
    return 0;
}
