/* gw_gen.c - the two generation endpoints: a request body into a job for the bridge, then one
 * JSON answer or a Server-Sent Events stream of OpenAI chunks ending "data: [DONE]". */
#include "gw_internal.h"

#include "base/t2_err.h"
#include "base/t2_log.h"
#include "t2_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const ep_path[] = {"/v1/chat/completions", "/v1/completions"};

/* One streamed answer: the job, what was sent of its text, the bytes formatted but not yet
 * taken by MHD (bounded: at most one chunk of text plus the final events). */
typedef struct gw_stream {
    gw_server *s;
    gw_job *j;
    char id[40];
    struct MHD_Connection *c;
    size_t sent; /* bytes of j->text sent */
    int role_sent, finished, slept;
    char *out;
    size_t out_len, out_off;
} gw_stream;

static const char *finish_name(const gw_job *j) {
    return j->finish == GW_FINISH_LENGTH ? "length" : "stop";
}

static json_t *usage(const gw_job *j) {
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)j->prompt_tokens,
                     "completion_tokens", (json_int_t)j->completion_tokens, "total_tokens",
                     (json_int_t)j->prompt_tokens + (json_int_t)j->completion_tokens);
}

static json_t *t2_ext(const gw_job *j) {
    json_t *x = json_loads(j->t2json ? j->t2json : "{}", 0, NULL);
    return x ? x : json_object();
}

/* Record a finished generation in the metrics (once). */
static void account(gw_server *s, gw_job *j, int endpoint, int status) {
    uint64_t now = t2_wire_now_ms();
    gw_metrics_request(s->metrics, ep_path[endpoint], status);
    gw_metrics_in_flight(s->metrics, -1);
    pthread_mutex_lock(&j->mu); /* a cancelled job may still be written by the bridge */
    if (j->code) gw_metrics_error(s->metrics, gw_code_name(j->code));
    double ttft = j->t_first ? (double)(j->t_first - j->t_submit) / 1000 : -1;
    gw_metrics_generation(s->metrics, j->prompt_tokens, j->completion_tokens, ttft,
                          (double)(now - j->t_submit) / 1000, j->has_pass1 ? j->pass1_ms : -1,
                          j->has_pass2 ? j->pass2_ms : -1, j->label, j->mixture);
    pthread_mutex_unlock(&j->mu);
}

/* The whole answer, as one JSON object (under j->mu). */
static char *whole_answer(gw_server *s, gw_job *j, const char *id) {
    json_t *choice;
    json_t *text = gw_json_text(j->text ? j->text : "", j->len);
    if (j->req.endpoint == GW_EP_CHAT)
        choice = json_pack("{s:i,s:{s:s,s:o},s:n,s:s}", "index", 0, "message", "role", "assistant",
                           "content", text, "logprobs", "finish_reason", finish_name(j));
    else
        choice = json_pack("{s:i,s:o,s:n,s:s}", "index", 0, "text", text, "logprobs",
                           "finish_reason", finish_name(j));
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o,s:o}", "id", id, "object",
                          j->req.endpoint == GW_EP_CHAT ? "chat.completion" : "text_completion",
                          "created", (json_int_t)time(NULL), "model", j->req.model, "choices",
                          choice, "usage", usage(j), "t2", t2_ext(j));
    char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    (void)s;
    return out;
}

/* ---- streaming ------------------------------------------------------------------------------ */

static int out_add(gw_stream *st, const char *p, size_t n) {
    size_t need = st->out_len + n;
    char *o = realloc(st->out, need + 1);
    if (!o) return -1;
    memcpy(o + st->out_len, p, n);
    st->out = o;
    st->out_len = need;
    return 0;
}

/* Append "data: JSON\n\n" for one chunk object (takes o). */
static void out_event(gw_stream *st, json_t *o) {
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!t) return;
    out_add(st, "data: ", 6);
    out_add(st, t, strlen(t));
    out_add(st, "\n\n", 2);
    free(t);
}

/* A chunk object with one choice (delta: text or NULL; finish NULL: not the last). */
static json_t *chunk(gw_stream *st, json_t *text, const char *finish) {
    const gw_job *j = st->j;
    json_t *choice;
    if (j->req.endpoint == GW_EP_CHAT) {
        json_t *delta = json_object();
        if (!st->role_sent) json_object_set_new(delta, "role", json_string("assistant"));
        st->role_sent = 1;
        if (text) json_object_set_new(delta, "content", text);
        choice = json_pack("{s:i,s:o,s:n}", "index", 0, "delta", delta, "logprobs");
    } else {
        choice = json_pack("{s:i,s:o,s:n}", "index", 0, "text", text ? text : json_string(""),
                           "logprobs");
    }
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *o =
        json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", st->id, "object",
                  j->req.endpoint == GW_EP_CHAT ? "chat.completion.chunk" : "text_completion",
                  "created", (json_int_t)time(NULL), "model", j->req.model, "choices", choice);
    if (o && j->req.include_usage) json_object_set_new(o, "usage", json_null());
    return o;
}

/* The end of a stream (under j->mu): the finish chunk with the t2 extension, the usage chunk
 * when asked, or an error event; then [DONE]. */
static void stream_end(gw_stream *st) {
    gw_job *j = st->j;
    if (j->code) {
        gw_error e;
        gw_error_from_t2(j->code, j->errmsg, j->req.endpoint, &e);
        json_t *o = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", e.message, "type",
                              e.type, "param", "code", e.code ? e.code : "error");
        out_event(st, o);
    } else {
        json_t *o = chunk(st, NULL, finish_name(j));
        if (o) json_object_set_new(o, "t2", t2_ext(j));
        out_event(st, o);
        if (j->req.include_usage) {
            json_t *u = json_pack("{s:s,s:s,s:I,s:s,s:[],s:o,s:o}", "id", st->id, "object",
                                  j->req.endpoint == GW_EP_CHAT ? "chat.completion.chunk"
                                                                : "text_completion",
                                  "created", (json_int_t)time(NULL), "model", j->req.model,
                                  "choices", "usage", usage(j), "t2", t2_ext(j));
            out_event(st, u);
        }
    }
    out_add(st, "data: [DONE]\n\n", 14);
    st->finished = 1;
}

/* Fill st->out with what there is to send, without waiting: new text, the end, a keep-alive
 * comment (woken with no news: GW_WAKE_MS passed; keeps proxies from timing out and finds a
 * client that went away) - or nothing, and the connection is suspended until the bridge has
 * news (it resumes it). The suspension happens under j->mu, so the bridge, which looks at
 * j->asleep under j->mu, resumes only a connection already suspended. */
static void stream_fill(gw_stream *st) {
    gw_job *j = st->j;
    st->out_len = st->out_off = 0;
    pthread_mutex_lock(&j->mu);
    if (j->safe > st->sent) {
        /* the text is copied under the lock, the event is built outside it: the bridge thread
         * must not wait on a stream's JSON to deliver the next chunks */
        json_t *text = gw_json_text(j->text + st->sent, j->safe - st->sent);
        st->sent = j->safe;
        pthread_mutex_unlock(&j->mu);
        out_event(st, chunk(st, text, NULL));
        pthread_mutex_lock(&j->mu);
    }
    if (j->state == GW_JOB_DONE && st->sent >= j->safe) {
        stream_end(st);
    } else if (st->s->stopping) {
        st->finished = 1; /* the server stops: end the stream (the free callback cancels) */
    } else if (st->out_len) {
        st->slept = 0;
    } else if (st->slept) {
        st->slept = 0;
        out_add(st, ": keep-alive\n\n", 14);
    } else {
        st->slept = 1;
        j->asleep = 1;
        j->t_asleep = t2_wire_now_ms();
        MHD_suspend_connection(st->c);
    }
    pthread_mutex_unlock(&j->mu);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    gw_stream *st = cls;
    (void)pos;
    if (st->out_off == st->out_len) {
        if (st->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        stream_fill(st);
        if (st->out_off == st->out_len) /* suspended (0: nothing yet), or the end */
            return st->finished ? MHD_CONTENT_READER_END_OF_STREAM : 0;
    }
    size_t n = st->out_len - st->out_off;
    if (n > max) n = max;
    memcpy(buf, st->out + st->out_off, n);
    st->out_off += n;
    return (ssize_t)n;
}

/* The stream is over (sent, or the client went away): cancel a job still running. */
static void stream_free(void *cls) {
    gw_stream *st = cls;
    pthread_mutex_lock(&st->j->mu);
    int running = st->j->state != GW_JOB_DONE;
    pthread_mutex_unlock(&st->j->mu);
    if (running) T2_DEBUG("stream %s: the client went away: cancelling its job", st->id);
    gw_bridge_cancel(st->s->bridge, st->j);
    account(st->s, st->j, st->j->req.endpoint, 200);
    gw_job_release(&st->j);
    free(st->out);
    free(st);
}

static enum MHD_Result start_stream(gw_server *s, struct MHD_Connection *c, gw_job *j,
                                    const char *id) {
    gw_stream *st = calloc(1, sizeof *st);
    if (!st) {
        gw_bridge_cancel(s->bridge, j);
        account(s, j, j->req.endpoint, 500);
        gw_job_release(&j);
        return MHD_NO;
    }
    st->s = s;
    st->j = j;
    st->c = c;
    snprintf(st->id, sizeof st->id, "%s", id);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ok = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ok;
}

/* The client's socket, or -1. */
static int conn_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* ---- the request ---------------------------------------------------------------------------- */

/* Checks before any work: key, size, body, model permission, rate. 0 or -1 with e filled. */
static int admit(gw_server *s, struct MHD_Connection *c, int endpoint, gw_conn *cn, gw_req *q,
                 gw_error *e, int *retry_after) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    int key = gw_auth_find(s->auth, h);
    if (key < 0)
        return gw_fail(e, 401, "invalid_request_error", NULL, "invalid_api_key",
                       h ? "Incorrect API key provided"
                         : "You didn't provide an API key: send Authorization: Bearer KEY");
    if (cn->too_big)
        return gw_fail(e, 413, "invalid_request_error", NULL, "request_too_large",
                       "the request body is larger than gateway.max_body (%ld bytes)",
                       s->cf->gateway.max_body);
    if (gw_req_parse(cn->body ? cn->body : "", cn->len, endpoint, &s->models, q, e) < 0) return -1;
    /* with "t2": {"adapt"} the adaptation is not the model's: the key must allow BASE:ADAPT */
    char eff[2 * GW_MODEL_MAX + 2];
    snprintf(eff, sizeof eff, "%s:%s", s->models.base, q->adapt_name);
    const char *m = q->adapt_override ? eff : q->model;
    if (!gw_auth_model_ok(s->auth, key, m)) {
        gw_fail(e, 403, "invalid_request_error", q->adapt_override ? "t2.adapt" : "model",
                "model_not_allowed", "the key '%s' may not use the model '%s'",
                gw_auth_name(s->auth, key), m);
        gw_req_free(q);
        return -1;
    }
    int wait = gw_auth_take(s->auth, key, t2_wire_now_ms());
    if (wait > 0) {
        gw_req_free(q);
        *retry_after = wait;
        return gw_fail(e, 429, "rate_limit_error", NULL, "rate_limit_exceeded",
                       "rate limit of key '%s' reached (%g requests/s, burst %d): retry after "
                       "%d s",
                       gw_auth_name(s->auth, key), (double)s->cf->gateway.rate_limit,
                       s->cf->gateway.rate_burst, wait);
    }
    return 0;
}

enum MHD_Result gw_generate(gw_server *s, struct MHD_Connection *c, int endpoint, gw_conn *cn) {
    gw_error e = {0};
    gw_req q;
    int retry = 0;
    memset(&q, 0, sizeof q);
    if (admit(s, c, endpoint, cn, &q, &e, &retry) < 0)
        return gw_send_error(s, c, ep_path[endpoint], &e, retry);
    gw_job *j = NULL;
    if (gw_job_new(&j, GW_JOB_GENERATE) < 0) {
        gw_req_free(&q);
        gw_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
        return gw_send_error(s, c, ep_path[endpoint], &e, 0);
    }
    j->req = q; /* the job owns it now */
    j->service = s->cf->dispatcher.service;
    j->timeout_ms = (uint32_t)s->cf->gateway.timeout_ms;
    if (gw_req_task(&j->req, &j->tb) < 0) {
        gw_job_release(&j);
        gw_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
        return gw_send_error(s, c, ep_path[endpoint], &e, 0);
    }
    snprintf(cn->id, sizeof cn->id, "%s-%016" PRIx64,
             endpoint == GW_EP_CHAT ? "chatcmpl" : "cmpl", t2_wire_random_u64());
    gw_metrics_in_flight(s->metrics, 1);
    /* sleep until the first text (stream) or the end: an error before any text is an HTTP
     * error. Suspended before the bridge sees the job, so that it resumes a sleeper. */
    j->waiter = c;
    j->fd = conn_fd(c);
    j->asleep = 1;
    j->t_asleep = t2_wire_now_ms();
    cn->job = j;
    cn->endpoint = endpoint;
    MHD_suspend_connection(c);
    gw_bridge_submit(s->bridge, j);
    return MHD_YES;
}

/* Still nothing to answer with: give up on a deadline or when stopping (the job is cancelled;
 * its end wakes the connection again), then sleep. 1 if asleep, 0 if the job is done. Under
 * j->mu. */
static int sleep_more(gw_server *s, struct MHD_Connection *c, gw_conn *cn, gw_job *j) {
    uint64_t now = t2_wire_now_ms(), limit = (uint64_t)s->cf->gateway.timeout_ms + 10000;
    if (!cn->why && (s->stopping || (s->cf->gateway.timeout_ms && now - j->t_submit >= limit))) {
        cn->why = s->stopping ? GW_WHY_STOPPING : GW_WHY_TIMEOUT;
        pthread_mutex_unlock(&j->mu);
        gw_bridge_cancel(s->bridge, j);
        pthread_mutex_lock(&j->mu);
        if (j->state == GW_JOB_DONE) return 0;
    }
    j->asleep = 1;
    j->t_asleep = now;
    MHD_suspend_connection(c);
    return 1;
}

enum MHD_Result gw_generate_more(gw_server *s, struct MHD_Connection *c, gw_conn *cn) {
    gw_job *j = cn->job;
    int endpoint = cn->endpoint;
    gw_error e = {0};
    pthread_mutex_lock(&j->mu);
    if (j->state != GW_JOB_DONE && !(j->req.stream && j->t_first) && sleep_more(s, c, cn, j)) {
        pthread_mutex_unlock(&j->mu);
        return MHD_YES;
    }
    if (cn->why && j->state == GW_JOB_DONE && j->code == T2_ECANCELLED) { /* we cancelled it */
        j->code = cn->why == GW_WHY_STOPPING ? T2_ECANCELLED : T2_ETIMEOUT;
        snprintf(j->errmsg, sizeof j->errmsg, "%s",
                 cn->why == GW_WHY_STOPPING ? "the gateway is stopping" : "no answer in time");
    }
    int done = j->state == GW_JOB_DONE, code = j->code;
    if (code == T2_ECANCELLED && !cn->why)
        T2_DEBUG("%s: the client went away before the answer: cancelled", cn->id);
    pthread_mutex_unlock(&j->mu);
    cn->job = NULL; /* the reference goes to the answer */
    if (done && code) {
        gw_error_from_t2(code, j->errmsg, endpoint, &e);
        account(s, j, endpoint, e.status);
        gw_job_release(&j);
        return gw_send_error(s, c, NULL, &e, code == T2_EBUSY ? 1 : 0);
    }
    if (j->req.stream) return start_stream(s, c, j, cn->id);
    pthread_mutex_lock(&j->mu);
    char *body = whole_answer(s, j, cn->id);
    pthread_mutex_unlock(&j->mu);
    account(s, j, endpoint, body ? 200 : 500);
    gw_job_release(&j);
    if (!body) {
        gw_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
        return gw_send_error(s, c, NULL, &e, 0);
    }
    return gw_send_json(c, 200, body);
}

void gw_generate_abort(gw_server *s, gw_conn *cn) {
    gw_job *j = cn->job;
    cn->job = NULL;
    gw_bridge_cancel(s->bridge, j);
    account(s, j, cn->endpoint, 503);
    gw_job_release(&j);
}
