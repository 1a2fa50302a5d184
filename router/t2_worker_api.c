/* t2_worker_api.c - see t2_worker_api.h. */
#include "t2_worker_api.h"

#include "base/backoff.h"
#include "base/t2_err.h"
#include "base/t2_log.h"
#include "t2_wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct t2_job {
    t2_worker *w;  /* NULL once the worker is gone */
    T2__Msg *msg;  /* owned; msg->job */
    uint64_t id;
    uint32_t gen;  /* connection generation it came on */
    uint32_t seq;  /* chunks sent */
    int cancelled, finished, handed_out;
    t2_job *prev, *next; /* the worker's list of jobs (backlog and handed out) */
};

struct t2_worker {
    void *ctx, *sock;
    int own_ctx;
    char *endpoint, *service, *name, *sha;
    char **experts;
    size_t n_experts;
    uint32_t capacity;
    int hb_ms, liveness, reconnect_ms, reconnect_max_ms, backoff_ms;
    int has_curve, relay;
    t2_curve_client curve;
    uint64_t last_heard, next_hb, reconnect_at, epoch;
    uint64_t ready_at; /* a Ready sent and nothing but Disconnects heard since: when */
    uint32_t gen;
    t2_job *jobs; /* every live job: in the backlog (not yet returned by recv) or handed out */
    t2_worker_stats st;
    t2_msg_arena *arena; /* frames are decoded here (a Job is copied out to be kept) */
};

t2_worker_opts t2_worker_opts_default(const char *service) {
    t2_worker_opts o;
    memset(&o, 0, sizeof o);
    o.service = service;
    o.capacity = 1;
    o.heartbeat_ms = 1000;
    o.liveness = 3;
    o.reconnect_ms = T2_BACKOFF_FIRST_MS;
    o.reconnect_max_ms = T2_BACKOFF_CAP_MS;
    return o;
}

static int send_msg(t2_worker *w, T2__Msg *m) {
    if (!w->sock) return t2_err_set(T2_EZMQ, "not connected to the router (reconnecting)");
    return t2_wire_send(w->sock, NULL, 0, m);
}

static int send_ready(t2_worker *w) {
    T2__Ready r = T2__READY__INIT;
    r.service = w->service;
    r.has_capacity = 1;
    r.capacity = w->capacity;
    r.model_sha256 = w->sha;
    r.experts = w->experts;
    r.n_experts = w->n_experts;
    r.name = w->name;
    r.has_relay = w->relay;
    r.relay = w->relay;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_READY;
    m.ready = &r;
    w->st.registrations++;
    w->ready_at = t2_wire_now_ms();
    return send_msg(w, &m);
}

static void send_heartbeat(t2_worker *w) {
    T2__Heartbeat h = T2__HEARTBEAT__INIT;
    h.has_role = 1;
    h.role = T2__ROLE__ROLE_WORKER;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_HEARTBEAT;
    m.heartbeat = &h;
    send_msg(w, &m);
}

static int send_final_error(t2_worker *w, t2_job *j, int code, const char *text) {
    j->finished = 1;
    if (!w->sock) return t2_err_set(T2_EZMQ, "not connected to the router (reconnecting)");
    return t2_wire_send_error(w->sock, NULL, 0, j->msg->job->request_id, j->id, code, "%s", text);
}

static void unlink_job(t2_worker *w, t2_job *j) {
    if (j->prev) j->prev->next = j->next;
    else if (w && w->jobs == j) w->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

static void free_job(t2_job *j) {
    t2_msg_free(j->msg);
    free(j);
}

/* A new connection: the router (new or restarted) knows nothing of our jobs any more. Jobs
 * not handed out are dropped, handed-out ones become orphans (their sends return
 * T2_ECANCELLED). */
static void new_generation(t2_worker *w) {
    w->gen++;
    for (t2_job *j = w->jobs, *next; j; j = next) {
        next = j->next;
        if (!j->handed_out) {
            unlink_job(w, j);
            free_job(j);
        }
    }
}

static int connect_now(t2_worker *w) {
    uint64_t now = t2_wire_now_ms();
    w->sock = t2_wire_dealer_curve(w->ctx, w->endpoint, 200, w->has_curve ? &w->curve : NULL);
    if (!w->sock) return T2_EZMQ;
    w->last_heard = now;
    w->next_hb = now + (uint64_t)w->hb_ms;
    w->epoch = 0;
    return send_ready(w);
}

static void disconnect(t2_worker *w, const char *why) {
    T2_WARN("router %s: %s; reconnecting in %d ms", w->endpoint, why, w->backoff_ms);
    if (w->sock) zmq_close(w->sock);
    w->sock = NULL;
    new_generation(w);
    w->st.reconnects++;
    w->reconnect_at = t2_wire_now_ms() + (uint64_t)w->backoff_ms;
    w->backoff_ms = t2_backoff_next(w->backoff_ms, w->reconnect_max_ms);
}

static t2_job *find_job(t2_worker *w, uint64_t id) {
    for (t2_job *j = w->jobs; j; j = j->next)
        if (j->id == id && j->gen == w->gen) return j;
    return NULL;
}

/* A message from the router, in the arena (valid until the next receive). */
static void on_message(t2_worker *w, T2__Msg *m) {
    w->last_heard = t2_wire_now_ms();
    if (m->body_case != T2__MSG__BODY_DISCONNECT) w->ready_at = 0; /* the router knows us */
    w->backoff_ms = w->reconnect_ms; /* the router answers: reset the backoff */
    switch (m->body_case) {
    case T2__MSG__BODY_JOB: {
        t2_job *j = calloc(1, sizeof *j);
        T2__Msg *own = NULL;
        if (!j || t2_msg_dup(m, &own) < 0) {
            t2_wire_send_error(w->sock, NULL, 0, m->job->request_id, m->job->job_id, T2_ENOMEM,
                               "worker out of memory");
            free(j);
            return;
        }
        m = own;
        j->w = w;
        j->msg = m;
        j->id = m->job->job_id;
        j->gen = w->gen;
        /* append: recv hands jobs out in arrival order */
        t2_job **pp = &w->jobs, *prev = NULL;
        while (*pp) prev = *pp, pp = &(*pp)->next;
        j->prev = prev;
        *pp = j;
        w->st.jobs++;
        return;
    }
    case T2__MSG__BODY_CANCEL: {
        t2_job *j = m->cancel->has_job_id ? find_job(w, m->cancel->job_id) : NULL;
        if (!j || j->finished) { /* already answered (maybe refused): acknowledge anyway */
            if (m->cancel->has_job_id && m->cancel->job_id)
                t2_wire_send_error(w->sock, NULL, 0, m->cancel->request_id, m->cancel->job_id,
                                   T2_ECANCELLED, "no such job here (already finished)");
        } else {
            w->st.cancels++;
            j->cancelled = 1;
            if (!j->handed_out) { /* never started: acknowledge and forget it */
                send_final_error(w, j, T2_ECANCELLED, "cancelled before it started");
                unlink_job(w, j);
                free_job(j);
            }
        }
        break;
    }
    case T2__MSG__BODY_HEARTBEAT:
        if (m->heartbeat->has_epoch) {
            if (w->epoch && m->heartbeat->epoch != w->epoch) {
                T2_WARN("router %s restarted: registering again", w->endpoint);
                new_generation(w);
                send_ready(w);
            }
            w->epoch = m->heartbeat->epoch;
        }
        break;
    case T2__MSG__BODY_DISCONNECT:
        /* A new router answers each message it got from us before our Ready with "unknown
         * worker" (the heartbeats and chunks queued while it was down): one Ready answers them
         * all. Another is sent only if the router still does not know us once it had time to
         * read the first. */
        if (w->ready_at && w->last_heard - w->ready_at < (uint64_t)w->hb_ms * (uint64_t)w->liveness) {
            T2_DEBUG("router %s: %s (registration already sent)", w->endpoint,
                     m->disconnect->reason ? m->disconnect->reason : "");
            break;
        }
        T2_WARN("router %s does not know this worker (%s): registering again", w->endpoint,
                m->disconnect->reason ? m->disconnect->reason : "");
        new_generation(w);
        w->epoch = 0;
        send_ready(w);
        break;
    case T2__MSG__BODY_ERROR:
        w->st.bad_messages++;
        T2_WARN("router %s: error %d: %s", w->endpoint, m->error->code,
                m->error->message ? m->error->message : "");
        break;
    default:
        w->st.bad_messages++;
        T2_WARN("router %s sent an unexpected %s message", w->endpoint, t2_msg_body_name(m->body_case));
        break;
    }
}

/* Everything due now, then wait up to `wait_ms` for input (0: none). Returns 0, 1 when a
 * signal ended the wait early, or T2_EZMQ when the context is terminated. */
static int pump(t2_worker *w, long wait_ms) {
    uint64_t now = t2_wire_now_ms();
    if (!w->sock) {
        if (now < w->reconnect_at) {
            long left = (long)(w->reconnect_at - now);
            if (wait_ms > 0) {
                long nap = left < wait_ms ? left : wait_ms;
                if (zmq_poll(NULL, 0, nap) < 0 && errno == EINTR) return 1;
            }
            return 0;
        }
        if (connect_now(w) < 0) {
            w->reconnect_at = now + (uint64_t)w->backoff_ms;
            return 0;
        }
    }
    if (now >= w->next_hb) {
        send_heartbeat(w);
        w->next_hb = now + (uint64_t)w->hb_ms;
    }
    if (now - w->last_heard > (uint64_t)w->hb_ms * (uint64_t)w->liveness) {
        disconnect(w, "no heartbeat");
        return 0;
    }
    long until_hb = (long)(w->next_hb - now);
    if (wait_ms > until_hb) wait_ms = until_hb;
    zmq_pollitem_t it = {w->sock, 0, ZMQ_POLLIN, 0};
    int n = zmq_poll(&it, 1, wait_ms < 0 ? 0 : wait_ms);
    if (n < 0) {
        if (errno == ETERM) return t2_err_set(T2_EZMQ, "ZeroMQ context terminated");
        return errno == EINTR ? 1 : 0;
    }
    for (int k = 0; k < 1000 && w->sock; k++) {
        T2__Msg *m;
        t2_msg_ids ids;
        int rc = t2_wire_recv_in(w->sock, w->arena, &m, 0, &ids);
        if (rc == 0) break;
        if (rc < 0) {
            if (errno == ETERM) return t2_err_set(T2_EZMQ, "ZeroMQ context terminated");
            w->st.bad_messages++;
            T2_WARN("bad message from router %s: %s", w->endpoint, t2_err_msg());
            /* a job we cannot take still gets its final reply, or it would wait forever */
            if (ids.body_case == T2__MSG__BODY_JOB && ids.job_id)
                t2_wire_send_error(w->sock, NULL, 0, ids.request_id, ids.job_id, T2_EPROTO,
                                   "worker cannot read the job: %s", t2_err_msg());
            continue;
        }
        on_message(w, m);
    }
    return 0;
}

static t2_job *next_backlog(t2_worker *w) {
    for (t2_job *j = w->jobs; j; j = j->next)
        if (!j->handed_out && j->gen == w->gen) return j;
    return NULL;
}

int t2_worker_recv(t2_worker *w, t2_job **job, int timeout_ms) {
    *job = NULL;
    uint64_t start = t2_wire_now_ms();
    for (;;) {
        t2_job *j = next_backlog(w);
        if (j) {
            /* jobs waiting here are handed out without a poll; the heartbeat still goes out on
             * time, however long the caller took over the previous job */
            uint64_t now = t2_wire_now_ms();
            if (w->sock && now >= w->next_hb) {
                send_heartbeat(w);
                w->next_hb = now + (uint64_t)w->hb_ms;
            }
            j->handed_out = 1;
            *job = j;
            return 1;
        }
        long left = timeout_ms < 0 ? 1000000 : (long)timeout_ms - (long)(t2_wire_now_ms() - start);
        if (left < 0) left = 0;
        int rc = pump(w, left);
        if (rc < 0) return rc;
        if (next_backlog(w)) continue;
        if (rc == 1) return 0; /* interrupted by a signal */
        if (timeout_ms >= 0 && (long)(t2_wire_now_ms() - start) >= timeout_ms) return 0;
    }
}

void t2_worker_pump(t2_worker *w) {
    pump(w, 0);
}

/* Checks before a send: 0 to go on, or the return value. */
static int job_check(t2_worker *w, t2_job *j) {
    if (!j || j->w != w) return t2_err_set(T2_EINVAL, "job does not belong to this worker");
    if (j->finished) return t2_err_set(T2_EINVAL, "job %" PRIu64 " already had its final reply", j->id);
    if (j->gen != w->gen) {
        j->finished = 1;
        return t2_err_set(T2_ECANCELLED, "job %" PRIu64 " orphaned: the router connection was reset", j->id);
    }
    return 0;
}

int t2_worker_send_chunk(t2_worker *w, t2_job *job, const void *text, size_t len,
                         const uint32_t *tokens, size_t n_tokens) {
    pump(w, 0);
    int rc = job_check(w, job);
    if (rc < 0) return rc;
    if (job->cancelled) {
        send_final_error(w, job, T2_ECANCELLED, "cancelled");
        return t2_err_set(T2_ECANCELLED, "job %" PRIu64 " cancelled", job->id);
    }
    T2__Chunk c = T2__CHUNK__INIT;
    c.has_request_id = c.has_job_id = c.has_seq = 1;
    c.request_id = job->msg->job->request_id;
    c.job_id = job->id;
    c.seq = job->seq;
    if (text) {
        c.has_text = 1;
        c.text.data = (uint8_t *)text;
        c.text.len = len;
    }
    c.tokens = (uint32_t *)tokens;
    c.n_tokens = tokens ? n_tokens : 0;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_CHUNK;
    m.chunk = &c;
    if ((rc = send_msg(w, &m)) < 0) return rc;
    job->seq++;
    return 0;
}

int t2_worker_send_result(t2_worker *w, t2_job *job, const T2__Result *res) {
    pump(w, 0);
    int rc = job_check(w, job);
    if (rc < 0) return rc;
    T2__Result r = *res;
    r.has_request_id = r.has_job_id = r.has_chunks = 1;
    r.request_id = job->msg->job->request_id;
    r.job_id = job->id;
    r.chunks = job->seq;
    if (job->cancelled && !r.has_finish_reason) {
        r.has_finish_reason = 1;
        r.finish_reason = T2__FINISH_REASON__FINISH_CANCELLED;
    }
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_RESULT;
    m.result = &r;
    job->finished = 1;
    return send_msg(w, &m);
}

int t2_worker_send_error(t2_worker *w, t2_job *job, int code, const char *fmt, ...) {
    pump(w, 0);
    int rc = job_check(w, job);
    if (rc < 0) return rc;
    char text[T2_MSG_ERROR_TEXT_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (code >= 0) code = T2_EINTERNAL;
    return send_final_error(w, job, code, text);
}

int t2_worker_cancelled(t2_worker *w, const t2_job *job) {
    pump(w, 0);
    return job->cancelled || job->gen != w->gen || job->w != w;
}

const T2__Job *t2_job_msg(const t2_job *job) {
    return job->msg->job;
}

int t2_job_was_cancelled(const t2_job *job) {
    return job->cancelled;
}

void t2_job_destroy(t2_job **jp) {
    t2_job *j = jp ? *jp : NULL;
    if (!j) return;
    t2_worker *w = j->w;
    if (w) {
        if (!j->finished && j->gen == w->gen)
            send_final_error(w, j, T2_EINTERNAL, "the worker dropped the job without a reply");
        unlink_job(w, j);
    }
    free_job(j);
    *jp = NULL;
}

void *t2_worker_socket(t2_worker *w) {
    return w->sock;
}

void t2_worker_get_stats(const t2_worker *w, t2_worker_stats *st) {
    *st = w->st;
}

static char *dup_or_null(const char *s, int *fail) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *fail = 1;
    return d;
}

int t2_worker_new(t2_worker **out, void *zctx, const char *endpoint, const t2_worker_opts *o) {
    *out = NULL;
    if (!endpoint || !o || !o->service) return t2_err_set(T2_EINVAL, "worker: endpoint and service needed");
    if (o->heartbeat_ms < 10 || o->liveness < 1 || o->reconnect_ms < 1 ||
        o->reconnect_max_ms < o->reconnect_ms)
        return t2_err_set(T2_EINVAL, "worker: bad heartbeat / liveness / reconnect settings");
    /* the same rules the router applies to Ready: refuse here with a clear message */
    T2__Ready probe = T2__READY__INIT;
    probe.service = (char *)o->service;
    probe.has_capacity = 1;
    probe.capacity = o->capacity;
    probe.model_sha256 = (char *)o->model_sha256;
    probe.experts = (char **)o->experts;
    probe.n_experts = o->n_experts;
    probe.name = (char *)o->name;
    if (t2_msg_validate_ready(&probe) < 0) return t2_err_prefix(T2_EINVAL, "worker options");
    t2_worker *w = calloc(1, sizeof *w);
    if (!w) return t2_err_set(T2_ENOMEM, "worker: out of memory");
    int fail = 0;
    w->endpoint = dup_or_null(endpoint, &fail);
    w->service = dup_or_null(o->service, &fail);
    w->name = dup_or_null(o->name, &fail);
    w->sha = dup_or_null(o->model_sha256, &fail);
    if (o->n_experts) {
        w->experts = calloc(o->n_experts, sizeof *w->experts);
        if (!w->experts) fail = 1;
        for (size_t i = 0; w->experts && i < o->n_experts; i++) w->experts[i] = dup_or_null(o->experts[i], &fail);
        w->n_experts = o->n_experts;
    }
    w->capacity = o->capacity;
    w->relay = o->relay != 0;
    w->hb_ms = o->heartbeat_ms;
    w->liveness = o->liveness;
    w->reconnect_ms = w->backoff_ms = o->reconnect_ms;
    w->reconnect_max_ms = o->reconnect_max_ms;
    if (o->curve) {
        w->has_curve = 1;
        w->curve = *o->curve;
    }
    w->ctx = zctx;
    if (!fail && !zctx) {
        w->ctx = zmq_ctx_new();
        w->own_ctx = 1;
        if (!w->ctx) fail = 1;
    }
    if (!fail && t2_msg_arena_new(&w->arena, 8192) < 0) fail = 1;
    if (fail) {
        t2_worker_destroy(&w);
        return t2_err_set(T2_ENOMEM, "worker: out of memory");
    }
    if (connect_now(w) < 0) {
        int rc = t2_err_prefix(T2_EZMQ, "worker");
        t2_worker_destroy(&w);
        return rc;
    }
    *out = w;
    return 0;
}

void t2_worker_destroy(t2_worker **wp) {
    t2_worker *w = wp ? *wp : NULL;
    if (!w) return;
    if (w->sock) {
        t2_wire_send_goodbye(w->sock, "worker shutting down");
        zmq_close(w->sock);
    }
    for (t2_job *j = w->jobs, *next; j; j = next) {
        next = j->next;
        j->prev = j->next = NULL;
        if (j->handed_out) j->w = NULL; /* the caller still holds it */
        else free_job(j);
    }
    if (w->own_ctx && w->ctx) zmq_ctx_term(w->ctx);
    for (size_t i = 0; w->experts && i < w->n_experts; i++) free(w->experts[i]);
    free(w->experts);
    free(w->endpoint);
    free(w->service);
    free(w->name);
    free(w->sha);
    memset(&w->curve, 0, sizeof w->curve); /* no secret left in freed memory */
    t2_msg_arena_destroy(&w->arena);
    free(w);
    *wp = NULL;
}
