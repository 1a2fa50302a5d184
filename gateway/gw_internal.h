/* gw_internal.h - what the gateway's HTTP files share: the server object and the helpers that
 * answer. Not a public interface. */
#ifndef GW_INTERNAL_H
#define GW_INTERNAL_H

#include "gw_auth.h"
#include "gw_bridge.h"
#include "gw_metrics.h"
#include "gw_req.h"
#include "gw_server.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

struct gw_server {
    const t2_conf *cf;
    struct MHD_Daemon *d;
    int port;
    gw_bridge *bridge;
    gw_metrics *metrics;
    gw_auth *auth;
    gw_adapt fallback;
    gw_models models;
    char *page; /* the chat page */
    size_t page_len;
    char **model_ids; /* /v1/models */
    int n_models;
    long created; /* unix time of start, for "created" fields */
    volatile int stopping;
    pthread_mutex_t mu; /* the health probe's cache */
    uint64_t probe_ms;
    int probe_ok;
};

/* Per connection (MHD's con_cls). */
typedef struct gw_conn {
    char *body;
    size_t len, cap;
    int too_big;
    int answered;
    /* a generation waiting for its first text (stream) or its end: the connection sleeps */
    struct gw_job *job;
    int endpoint;
    char id[40];
    int why; /* GW_WHY_*: the gateway gave up on the job (it was cancelled) */
    struct gw_job *probe; /* /health: the dispatcher probe it sleeps on */
} gw_conn;

enum { GW_WHY_NONE = 0, GW_WHY_TIMEOUT = 1, GW_WHY_STOPPING = 2 };

/* Queue a JSON body (takes text, a malloc'd string). */
enum MHD_Result gw_send_json(struct MHD_Connection *c, int status, char *text);
/* Queue an OpenAI-shaped error and count it (endpoint for the request counter). */
enum MHD_Result gw_send_error(gw_server *s, struct MHD_Connection *c, const char *endpoint,
                              const gw_error *e, int retry_after);
/* A T2_E* code (from a worker, the dispatcher, the router or the bridge) as an HTTP error. */
void gw_error_from_t2(int code, const char *msg, int endpoint, gw_error *e);
/* "EUNSUPPORTED" for T2_EUNSUPPORTED, ... */
const char *gw_code_name(int code);
/* A JSON string of s[0..n), invalid UTF-8 bytes replaced by U+FFFD (t2_json_text; "" when out
 * of memory). */
json_t *gw_json_text(const char *s, size_t n);

/* POST /v1/chat/completions and /v1/completions, after the body is read: submits the job and
 * suspends the connection; the bridge resumes it and MHD calls gw_generate_more. */
enum MHD_Result gw_generate(gw_server *s, struct MHD_Connection *c, int endpoint, gw_conn *cn);
/* The connection of cn->job woke up: sleep again, or answer (an error, the stream, the whole
 * answer). */
enum MHD_Result gw_generate_more(gw_server *s, struct MHD_Connection *c, gw_conn *cn);
/* The connection closed while cn->job was still its own: cancel and count it. */
void gw_generate_abort(gw_server *s, gw_conn *cn);

#endif
