/* gw_server.c - the HTTP server: libmicrohttpd with one internal thread on epoll (a connection
 * that waits for its answer is suspended and resumed by the bridge), routing, the small
 * endpoints (/, /health, /metrics, /v1/models) and the answers' shapes. */
#include "gw_internal.h"

#include "base/json.h"
#include "base/t2_err.h"
#include "base/t2_log.h"
#include "engine/gguf.h"
#include "t2_wire.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const unsigned char gw_chat_html[];
extern const unsigned long gw_chat_html_len;

#define MAX_MODELS 256

/* ---- answers -------------------------------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *c, int status, const char *type, char *text,
                                 size_t len, int retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, text, text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result gw_send_json(struct MHD_Connection *c, int status, char *text) {
    return send_body(c, status, "application/json", text, text ? strlen(text) : 0, 0);
}

enum MHD_Result gw_send_error(gw_server *s, struct MHD_Connection *c, const char *endpoint,
                              const gw_error *e, int retry_after) {
    json_t *o = json_pack("{s:{s:s,s:s,s:o,s:o}}", "error", "message", e->message, "type",
                          e->type ? e->type : "invalid_request_error", "param",
                          e->param[0] ? json_string(e->param) : json_null(), "code",
                          e->code ? json_string(e->code) : json_null());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (endpoint) {
        gw_metrics_request(s->metrics, endpoint, e->status);
        gw_metrics_error(s->metrics, e->code ? e->code : e->type);
    }
    return send_body(c, e->status, "application/json", text, text ? strlen(text) : 0, retry_after);
}

const char *gw_code_name(int code) {
    switch (code) {
#define GW_NAME(name, value, desc)                                                                 \
    case value: return #name;
        T2_ERRNO_MAP(GW_NAME)
#undef GW_NAME
    }
    return "EUNKNOWN";
}

void gw_error_from_t2(int code, const char *msg, int endpoint, gw_error *e) {
    switch (code) {
    case T2_EINVAL:
    case T2_ERANGE:
    case T2_EPROTO:
    case T2_EFORMAT:
        gw_fail(e, 400, "invalid_request_error", NULL, "invalid_request", "%s", msg);
        return;
    case T2_EUNSUPPORTED:
        if (endpoint == GW_EP_CHAT && strstr(msg, "chat"))
            gw_fail(e, 400, "invalid_request_error", "messages", "chat_template_unsupported",
                    "this deployment's workers cannot render a chat template yet, so they cannot "
                    "answer a conversation (worker: %s); use POST /v1/completions with a prompt",
                    msg);
        else
            gw_fail(e, 400, "invalid_request_error", NULL, "unsupported", "%s", msg);
        return;
    case T2_ENOTFOUND:
        if (strstr(msg, "no service"))
            gw_fail(e, 503, "service_unavailable", NULL, "no_dispatcher",
                    "no dispatcher or worker serves this request: %s", msg);
        else
            gw_fail(e, 404, "invalid_request_error", "model", "not_found", "%s", msg);
        return;
    case T2_EBUSY:
        gw_fail(e, 503, "service_unavailable", NULL, "busy", "T2 is busy: %s", msg);
        return;
    case T2_ETIMEOUT:
        gw_fail(e, 504, "timeout", NULL, "timeout", "no answer in time: %s", msg);
        return;
    case T2_EZMQ: gw_fail(e, 503, "service_unavailable", NULL, "unavailable", "%s", msg); return;
    }
    gw_fail(e, 500, "server_error", NULL, gw_code_name(code), "%s (%s)", msg, t2_strerror(code));
}

json_t *gw_json_text(const char *s, size_t n) {
    json_t *v = t2_json_text(s, n);
    return v ? v : json_string("");
}

/* ---- small endpoints ------------------------------------------------------------------------ */

static enum MHD_Result models(gw_server *s, struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    int key = gw_auth_find(s->auth, h);
    if (key < 0) {
        gw_error e;
        gw_fail(&e, 401, "invalid_request_error", NULL, "invalid_api_key",
                h ? "Incorrect API key provided" : "You didn't provide an API key");
        return gw_send_error(s, c, "/v1/models", &e, 0);
    }
    json_t *data = json_array();
    for (int i = 0; i < s->n_models; i++)
        if (gw_auth_model_ok(s->auth, key, s->model_ids[i]))
            json_array_append_new(data, json_pack("{s:s,s:s,s:I,s:s}", "id", s->model_ids[i],
                                                  "object", "model", "created",
                                                  (json_int_t)s->created, "owned_by", "t2"));
    json_t *o = json_pack("{s:s,s:o}", "object", "list", "data", data);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    gw_metrics_request(s->metrics, "/v1/models", text ? 200 : 500);
    return gw_send_json(c, text ? 200 : 500, text);
}

/* The answer of /health; disp: a dispatcher answered the probe (-1: not asked). */
static enum MHD_Result health_reply(gw_server *s, struct MHD_Connection *c, int disp) {
    gw_router_view v;
    gw_bridge_router(s->bridge, &v);
    const char *why = NULL;
    if (!v.up)
        why = "the T2 router does not answer";
    else if (v.workers == 0)
        why = "no worker group and no dispatcher are registered at the router";
    else if (!disp)
        why = "no dispatcher is registered (it serves the dispatcher.service)";
    else if (v.workers < 2)
        why = "no worker group is registered at the router (only the dispatcher)";
    json_t *o = json_pack("{s:s,s:b,s:I,s:I,s:I}", "status", why ? "unavailable" : "ok",
                          "router_up", v.up, "workers", (json_int_t)v.workers, "queued",
                          (json_int_t)v.queued, "in_flight", (json_int_t)v.in_flight);
    if (why) json_object_set_new(o, "reason", json_string(why));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int status = why ? 503 : 200;
    gw_metrics_request(s->metrics, "/health", status);
    return gw_send_json(c, status, text);
}

/* Is a dispatcher there? A classification sent to its service is refused at once (EINVAL)
 * by a dispatcher; the answer is cached for two seconds. Without one, the probe is sent and
 * the connection sleeps (the HTTP thread serves every connection: it must not wait) until the
 * bridge resumes it: health_more. */
static enum MHD_Result health(gw_server *s, struct MHD_Connection *c, gw_conn *cn) {
    gw_router_view v;
    gw_bridge_router(s->bridge, &v);
    if (!v.up || v.workers == 0) return health_reply(s, c, -1);
    pthread_mutex_lock(&s->mu);
    uint64_t now = t2_wire_now_ms();
    int cached = s->probe_ms && now - s->probe_ms < 2000, ok = s->probe_ok;
    pthread_mutex_unlock(&s->mu);
    if (cached) return health_reply(s, c, ok);
    gw_job *j = NULL;
    if (gw_job_new(&j, GW_JOB_PROBE) < 0) return health_reply(s, c, 0);
    j->waiter = c;
    j->asleep = 1;
    j->t_asleep = now;
    cn->probe = j;
    MHD_suspend_connection(c);
    gw_bridge_submit(s->bridge, j);
    return MHD_YES;
}

static enum MHD_Result health_more(gw_server *s, struct MHD_Connection *c, gw_conn *cn) {
    gw_job *j = cn->probe;
    pthread_mutex_lock(&j->mu);
    uint64_t now = t2_wire_now_ms();
    if (j->state != GW_JOB_DONE && now - j->t_submit < 2000 && !s->stopping) {
        j->asleep = 1;
        j->t_asleep = now;
        MHD_suspend_connection(c);
        pthread_mutex_unlock(&j->mu);
        return MHD_YES;
    }
    int ok = j->state == GW_JOB_DONE && j->dispatcher_ok;
    pthread_mutex_unlock(&j->mu);
    cn->probe = NULL;
    gw_bridge_cancel(s->bridge, j);
    gw_job_release(&j);
    pthread_mutex_lock(&s->mu);
    s->probe_ms = t2_wire_now_ms();
    s->probe_ok = ok;
    pthread_mutex_unlock(&s->mu);
    return health_reply(s, c, ok);
}

static enum MHD_Result metrics(gw_server *s, struct MHD_Connection *c) {
    gw_router_view v;
    gw_bridge_router(s->bridge, &v);
    gw_metrics_request(s->metrics, "/metrics", 200); /* this request counts itself */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return MHD_NO;
    gw_metrics_render(s->metrics, &v, f);
    fclose(f);
    return send_body(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, 0);
}

/* ---- routing -------------------------------------------------------------------------------- */

static enum MHD_Result route(gw_server *s, struct MHD_Connection *c, const char *url,
                             const char *method, gw_conn *cn) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    gw_error e;
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/completions")) {
        if (post)
            return gw_generate(s, c,
                               url[4] == 'c' && url[5] == 'h' ? GW_EP_CHAT : GW_EP_COMPLETIONS, cn);
        gw_fail(&e, 405, "invalid_request_error", NULL, "method_not_allowed", "use POST %s", url);
        return gw_send_error(s, c, url, &e, 0);
    }
    if (get && !strcmp(url, "/v1/models")) return models(s, c);
    if (get && !strcmp(url, "/health")) return health(s, c, cn);
    if (get && !strcmp(url, "/metrics")) return metrics(s, c);
    if (get && (!strcmp(url, "/") || !strcmp(url, "/index.html"))) {
        gw_metrics_request(s->metrics, "/", 200);
        struct MHD_Response *r =
            MHD_create_response_from_buffer(s->page_len, s->page, MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        enum MHD_Result ok = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ok;
    }
    gw_fail(&e, 404, "invalid_request_error", NULL, "unknown_url",
            "Unknown request URL: %s %s (POST /v1/chat/completions, POST /v1/completions, "
            "GET /v1/models, /health, /metrics, /)",
            method, url);
    return gw_send_error(s, c, "other", &e, 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    gw_server *s = cls;
    gw_conn *cn = *con_cls;
    (void)version;
    if (!cn) { /* headers read: the body (if any) comes next */
        if (!(cn = calloc(1, sizeof *cn))) return MHD_NO;
        *con_cls = cn;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)s->cf->gateway.max_body) {
            /* answer at once: the body is not read, the connection closes after */
            gw_error e;
            gw_fail(&e, 413, "invalid_request_error", NULL, "request_too_large",
                    "the request body (%s bytes) is larger than gateway.max_body (%ld bytes)", cl,
                    s->cf->gateway.max_body);
            cn->answered = 1;
            return gw_send_error(s, c, strncmp(url, "/v1/", 4) ? "other" : url, &e, 0);
        }
        return MHD_YES;
    }
    if (cn->job) return gw_generate_more(s, c, cn); /* resumed by the bridge */
    if (cn->probe) return health_more(s, c, cn);
    if (cn->answered) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cn->too_big || cn->len + n > (size_t)s->cf->gateway.max_body) {
            cn->too_big = 1;
            return MHD_YES;
        }
        if (cn->len + n + 1 > cn->cap) {
            size_t cap = cn->cap ? cn->cap : 4096;
            while (cap < cn->len + n + 1)
                cap *= 2;
            char *b = realloc(cn->body, cap);
            if (!b) return MHD_NO;
            cn->body = b;
            cn->cap = cap;
        }
        memcpy(cn->body + cn->len, upload, n);
        cn->len += n;
        return MHD_YES;
    }
    cn->answered = 1;
    if (s->stopping) {
        gw_error e;
        gw_fail(&e, 503, "service_unavailable", NULL, "stopping", "the gateway is stopping");
        return gw_send_error(s, c, "other", &e, 1);
    }
    return route(s, c, url, method, cn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)c, (void)toe;
    gw_conn *cn = *con_cls;
    if (!cn) return;
    if (cn->job) gw_generate_abort(cls, cn);
    if (cn->probe) {
        gw_bridge_cancel(((gw_server *)cls)->bridge, cn->probe);
        gw_job_release(&cn->probe);
    }
    free(cn->body);
    free(cn);
    *con_cls = NULL;
}

/* ---- start and stop ------------------------------------------------------------------------- */

static int add_model(gw_server *s, const char *fmt, const char *a) {
    if (s->n_models == MAX_MODELS) return 0;
    char buf[600];
    snprintf(buf, sizeof buf, fmt, s->cf->gateway.model, a);
    if (!(s->model_ids[s->n_models] = strdup(buf))) return t2_err_set(T2_ENOMEM, "out of memory");
    s->n_models++;
    return 0;
}

/* Experts (mix/NAME=1) and profiles (profile/NAME) from the folders the workers read. */
static int scan_dir(gw_server *s, const char *dir, int profiles_only) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || n > 69 || strcmp(de->d_name + n - 5, ".gguf")) continue;
        char name[70], path[4200];
        snprintf(name, sizeof name, "%.*s", (int)(n - 5), de->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        t2_gguf *g = NULL;
        const char *kind = NULL;
        size_t kl = 0;
        if (t2_gguf_open(&g, path) == 0 && t2_gguf_get_str(g, "t2.kind", &kind, &kl) == 0) {
            if (kl == 7 && !memcmp(kind, "profile", 7))
                rc = add_model(s, "%s:profile/%s", name);
            else if (kl == 6 && !memcmp(kind, "expert", 6) && !profiles_only &&
                     !(s->cf->model.classifier_expert &&
                       !strcmp(name, s->cf->model.classifier_expert)))
                rc = add_model(s, "%s:mix/%s=1", name);
        }
        t2_gguf_close(&g);
    }
    closedir(d);
    t2_err_clear();
    return rc;
}

static int list_models(gw_server *s) {
    const t2_conf *c = s->cf;
    if (!(s->model_ids = calloc(MAX_MODELS, sizeof *s->model_ids)))
        return t2_err_set(T2_ENOMEM, "out of memory");
    int rc = add_model(s, "%s%s", "");
    rc |= add_model(s, "%s:%s", "none");
    if (c->model.factors) {
        rc |= add_model(s, "%s:%s", "prompt");
        if (c->model.classifier_expert) rc |= add_model(s, "%s:%s", "classifier");
        char buf[4096];
        const char *experts = c->model.experts_dir;
        if (!experts) {
            snprintf(buf, sizeof buf, "%s", c->model.factors);
            char *slash = strrchr(buf, '/');
            if (slash)
                *slash = 0;
            else
                snprintf(buf, sizeof buf, ".");
            experts = buf;
        }
        rc |= scan_dir(s, experts, 0);
        if (c->model.profiles_dir && strcmp(c->model.profiles_dir, experts))
            rc |= scan_dir(s, c->model.profiles_dir, 1);
    }
    return rc ? T2_ENOMEM : 0;
}

static int load_page(gw_server *s) {
    if (!s->cf->gateway.chat_page) {
        s->page = (char *)gw_chat_html;
        s->page_len = gw_chat_html_len;
        return 0;
    }
    char *buf = NULL;
    size_t len = 0;
    int rc = t2_read_file(s->cf->gateway.chat_page, 16u << 20, &buf, &len);
    if (rc < 0) return t2_err_prefix(rc, "gateway.chat_page");
    s->page = buf;
    s->page_len = len;
    return 0;
}

/* libmicrohttpd's own messages (a client that closed early, ...): debug lines, not noise. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    if (t2_log_level < T2_LOG_DEBUG) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = 0;
    T2_DEBUG("libmicrohttpd: %s", msg);
}

static int start_daemon(gw_server *s, int port, const char *bind) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    /* one thread for every connection: a stream costs a wake-up of this thread per gathering
     * of text shared with the other streams that have news, not a thread of its own */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        return t2_err_set(T2_EINVAL, "gateway.bind: '%s' is not an IP address", bind);
    }
    s->d =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                         &ss, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)s->cf->gateway.connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)s->cf->gateway.max_connections, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_END);
    if (!s->d)
        return t2_err_set(T2_EIO,
                          "cannot listen on %s port %d (in use? gateway.bind / "
                          "gateway.port)",
                          bind, port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    return 0;
}

/* The bridge's wake-up of a connection asleep on a job. */
static void resume(void *conn) { MHD_resume_connection(conn); }

int gw_server_new(gw_server **out, const t2_conf *c, int port, const char *bind) {
    *out = NULL;
    gw_server *s = calloc(1, sizeof *s);
    if (!s) return t2_err_set(T2_ENOMEM, "out of memory");
    s->cf = c;
    s->created = (long)time(NULL);
    pthread_mutex_init(&s->mu, NULL);
    gw_error e;
    int rc = 0;
    if (gw_adapt_parse(c->gateway.adapt, &s->fallback, &e, "gateway.adapt") < 0)
        rc = t2_err_set(T2_EINVAL, "%s: gateway.adapt: %s", c->path ? c->path : "defaults",
                        e.message);
    s->models.base = c->gateway.model;
    s->models.fallback = &s->fallback;
    if (rc == 0)
        rc = gw_auth_new(&s->auth, c->gateway.keys, c->gateway.rate_limit, c->gateway.rate_burst);
    if (rc == 0) rc = gw_metrics_new(&s->metrics);
    if (rc == 0) rc = load_page(s);
    if (rc == 0) rc = list_models(s);
    gw_bridge_opts bo = {c->router.endpoint, c->router.heartbeat_ms, c->router.liveness,
                         c->dispatcher.service, NULL, resume};
    t2_curve_client cc; /* with CURVE the gateway is a client of the router: the client key */
    if (rc == 0 && c->security.curve &&
        (rc = t2_curve_load_client(c->security.router_public, c->security.client_key, &cc)) == 0)
        bo.curve = &cc;
    if (rc == 0) rc = gw_bridge_new(&s->bridge, &bo);
    memset(&cc, 0, sizeof cc);
    if (rc == 0)
        rc = start_daemon(s, port > 0 ? port : c->gateway.port, bind ? bind : c->gateway.bind);
    if (rc < 0) {
        gw_server_destroy(&s);
        return rc;
    }
    *out = s;
    return 0;
}

int gw_server_port(const gw_server *s) { return s->port; }

void gw_server_destroy(gw_server **sp) {
    gw_server *s = sp ? *sp : NULL;
    if (!s) return;
    *sp = NULL;
    s->stopping = 1;
    /* no connection may stay suspended when MHD stops: every job ends and wakes its own */
    if (s->bridge && s->d) gw_bridge_drain(s->bridge);
    if (s->d) MHD_stop_daemon(s->d);
    gw_bridge_destroy(&s->bridge);
    gw_metrics_destroy(&s->metrics);
    gw_auth_destroy(&s->auth);
    if (s->page != (char *)gw_chat_html) free(s->page);
    for (int i = 0; i < s->n_models; i++)
        free(s->model_ids[i]);
    free(s->model_ids);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
