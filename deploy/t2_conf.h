/* t2_conf.h - the deployment file: one libconfig file (deploy/t2.cfg) read by t2-worker,
 * t2-dispatcher, t2 submit, t2-config and the launcher.
 *
 *   t2_conf c;
 *   if (t2_conf_load(&c, "t2.cfg", "g0") < 0) die(t2_err_msg());  // "t2.cfg:14: worker.capacity:
 * ..."
 *   ... c.router.endpoint, c.worker.capacity, c.group.ranks ...
 *   t2_conf_free(&c);
 *
 * Every setting has a default (t2_conf_defaults); the file changes what it names. Each value
 * read is checked (type, range, choice, name syntax) and a bad one is reported as
 * "FILE:LINE: section.setting: what is wrong"; a setting the parser does not know is an error
 * too (a typo must not silently fall back to a default). Relative paths in the file are taken
 * relative to the file's folder. A group (groups = ( { name = "g0"; ... } )) may override the
 * worker settings marked "group" below; t2_conf_load applies the named group's overrides
 * (group NULL: none; a name not in the file is an error).
 */
#ifndef T2_CONF_H
#define T2_CONF_H

#include "base/t2_limits.h"

#include <stddef.h>
#include <stdio.h>

#define T2_CONF_MAX_GROUPS 64
#define T2_CONF_MAX_SERVICES 8
#define T2_CONF_NAME_MAX T2_NAME_MAX /* service / expert / group names (base/t2_limits.h) */

enum { T2_CFG_APPLY_FACTORED = 0, T2_CFG_APPLY_MERGED = 1 }; /* = T2_APPLY_* of svf.h */
/* How merged W' is stored: GGML type ids, = t2_dtype of engine/t2_types.h */
enum { T2_CFG_MERGED_F32 = 0, T2_CFG_MERGED_F16 = 1, T2_CFG_MERGED_Q8_0 = 8,
       T2_CFG_MERGED_BF16 = 30 };
/* KV cache types (= t2_dtype of engine/t2_types.h) */
enum { T2_CFG_KV_F32 = 0, T2_CFG_KV_F16 = 1, T2_CFG_KV_Q8_0 = 8 };
const char *t2_conf_kv_name(int kv_type);
enum {
    T2_CFG_LABEL_CODE,
    T2_CFG_LABEL_MATH,
    T2_CFG_LABEL_REASONING,
    T2_CFG_LABEL_OTHER,
    T2_CFG_N_LABELS
}; /* = t2_task_label */

typedef struct t2_conf_group {
    char name[T2_CONF_NAME_MAX + 1];
    int ranks;      /* MPI ranks of this group (mpirun -np): 1 */
    int apply;      /* -1: the worker section's */
    int capacity;   /* 0: the worker section's */
    int threads;    /* 0: the worker section's */
    int cache;      /* -1: the worker section's */
    char host[256]; /* for multi-host launchers: "" = this machine */
} t2_conf_group;

typedef struct t2_conf {
    char *path; /* the file read (NULL: defaults only) */
    struct {
        char *bind;          /* t2-router --bind: "tcp://127.0.0.1:5555" */
        char *endpoint;      /* where peers connect: "tcp://127.0.0.1:5555" */
        int heartbeat_ms;    /* 1000 (router, workers, dispatchers and clients alike) */
        int liveness;        /* 3 */
        int queue_max;       /* 1024 */
        long max_msg;        /* 4194304 */
        int stats_ms;        /* 10000 */
        int cancel_grace_ms; /* 0 = liveness x heartbeat */
        int client_max;      /* requests one client (CURVE key, else connection) may have
                                queued or running (t2-router --client-max): 256 */
        int progress_ms;     /* a job with no chunk or result for this long is taken from its
                                worker (t2-router --progress-ms; 0 = off): 300000 */
    } router;
    struct {
        char *path;              /* required by workers */
        char *tokenizer;         /* NULL: embedded in the GGUF */
        char *factors;           /* NULL: no adaptation (mixtures are refused) */
        char *experts_dir;       /* NULL: the factors' folder */
        char *profiles_dir;      /* NULL: the experts folder */
        char *classifier_expert; /* NULL: ADAPT_CLASSIFIER is refused */
        int context;             /* tokens per sequence; 0 = the model's seq_len */
    } model;
    struct {
        char *name;              /* for logs and Ready; NULL: "HOST:PID" */
        int capacity;            /* group: generate jobs held at once: 8 */
        int classify_capacity;   /* classify jobs held at once: 2 */
        int threads;             /* group: compute threads per rank: 1 */
        int batch;               /* prompt tokens per forward (t2 run --batch): 128 */
        int apply;               /* group: T2_CFG_APPLY_MERGED (default) or FACTORED */
        int merged_type;         /* W' storage in merged mode, T2_CFG_MERGED_*: F32 */
        int cache;               /* group: resolved mixtures kept per rank (LRU): 8 */
        int max_tokens;          /* new tokens when a request gives none: 256 */
        float temperature;       /* when a request gives none: 1.0 (as t2 run) */
        float top_p;             /* when a request gives none: 0.9 (as t2 run) */
        int classify_max_tokens; /* new tokens of a classification: 24 */
        int chunk_tokens;        /* at most this many tokens per streamed Chunk: 16 */
        int pass1_generate;      /* 1: classify by generating \boxed{label} (pass1 =
                                  * "generate"); 0 (default, "score"): from the logits */
        int kv_type;             /* KV cache type, a t2_dtype: T2_CFG_KV_F16 (default) */
        long kv_pool_tokens;     /* KV pool per rank in tokens; 0 = slots x context */
        long memory_mib;         /* memory a rank may plan for; 0 = MemAvailable at start */
        int prefix_cache;        /* reuse the KV blocks of cached prompt prefixes: 1 (true) */
        int n_services;          /* services served: "generate", "classify" */
        char services[T2_CONF_MAX_SERVICES][T2_CONF_NAME_MAX + 1];
        char *log_level; /* "info" */
        int watchdog_ms; /* a pipeline step unanswered this long: the group declares itself
                            failed (goodbye, then exit; the launcher restarts it): 20000 */
    } worker;
    struct {
        char *service;                 /* served: "generate-adaptive" */
        char *generate_service;        /* pass 2 goes to: "generate" */
        char *classify_service;        /* pass 1 goes to: "classify" */
        int capacity;                  /* requests held at once: 64 */
        int classify_timeout_ms;       /* pass 1 deadline: 60000 */
        char *labels[T2_CFG_N_LABELS]; /* label -> expert; NULL = base weights.
                                          Default code->"code", math->"math",
                                          reasoning->"reasoning", other->base */
        char *log_level;               /* "info" */
    } dispatcher;
    struct {
        int curve;            /* CurveZMQ on every connection to the router: 0 */
        int insecure;         /* plain ZeroMQ on a non-loopback address, knowingly: 0 */
        char *router_key;     /* the router's key pair file (t2 keygen; read by the router) */
        char *router_public;  /* the router's public key file (every other process) */
        char *client_key;     /* key pair files by role: t2 submit and the gateway, */
        char *worker_key;     /* worker groups, */
        char *dispatcher_key; /* dispatchers */
        char *clients;        /* allowed public keys by role: a file of keys or a folder */
        char *workers;        /* of .pub files (NULL: none of that role may connect) */
        char *dispatchers;
        int pin_model;        /* router refuses workers of another model (sha256): 1 */
    } security;
    struct {
        char *service;  /* t2 submit's default service: "generate-adaptive" */
        int timeout_ms; /* per request; 0 = none: 0 */
    } client;
    struct {
        int enabled;              /* 1 when the file has a gateway section (t2-local.sh starts
                                     t2-gateway then) */
        char *bind;               /* listen address: "127.0.0.1" (IPv4 or IPv6 literal) */
        int port;                 /* 8080 */
        char *keys;               /* API keys file (gateway/README.md); NULL: no auth */
        float rate_limit;         /* requests per second per key; 0 = no limit: 0 */
        int rate_burst;           /* bucket size: 10 */
        long max_body;            /* request body bytes: 1048576 */
        int timeout_ms;           /* per request deadline at the router: 600000 */
        int connection_timeout_s; /* an idle HTTP connection is closed after: 30 */
        int max_connections;      /* 256 */
        char *model;              /* the base model id clients name: "t2-base" */
        char *adapt;              /* what `model` alone means: "none" (none | prompt |
                                     classifier | profile/NAME | mix/NAME=A,...) */
        char *chat_page;          /* NULL: the page built into t2-gateway */
        char *log_level;          /* "info" */
    } gateway;
    int n_groups;
    t2_conf_group groups[T2_CONF_MAX_GROUPS]; /* launcher: default one group "g0" of 1 */
    t2_conf_group group;                      /* the group chosen at load (or groups[0]) */
} t2_conf;

/* Fill every default (strings owned by c). */
int t2_conf_defaults(t2_conf *c);
/* Read path over the defaults and apply group's overrides (group NULL: none, c->group =
 * groups[0]). Returns 0, or T2_EINVAL / T2_EIO / T2_ENOMEM with "FILE:LINE: setting: why";
 * c is always safe to t2_conf_free. */
int t2_conf_load(t2_conf *c, const char *path, const char *group);
void t2_conf_free(t2_conf *c);

/* Print the effective configuration in libconfig syntax (t2-config show). */
void t2_conf_print(const t2_conf *c, FILE *f);

/* "merged" / "factored" */
const char *t2_conf_apply_name(int apply);
/* "f32", "f16", "bf16", "q8_0" (worker.merged_type) */
const char *t2_conf_merged_type_name(int type);
/* Where the experts are: model.experts_dir, else the folder of model.factors (written into
 * buf[cap]), else ".". */
const char *t2_conf_experts_dir(const t2_conf *c, char *buf, size_t cap);
/* 1 if s is a valid service / expert / group name (1..64 of [A-Za-z0-9._:/-]). */
int t2_conf_name_ok(const char *s);

/* Check that every file and folder the configuration names exists and is of the right kind:
 * model.path (a GGUF or a llama2.c checkpoint), model.tokenizer, model.factors (GGUF), the experts
 * and profiles folders and the classifier expert (EXPERTS/NAME.gguf, GGUF). Returns 0, or
 * T2_ENOTFOUND / T2_EINVAL / T2_EIO with "FILE: setting: PATH: why" for the first problem. A
 * label's missing expert only fails the requests given that label: it is written to `warn`
 * (if not NULL) as "warning: ...". */
int t2_conf_check_files(const t2_conf *c, FILE *warn);

#endif
