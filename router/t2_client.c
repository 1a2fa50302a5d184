/* t2_client.c - see t2_client.h. */
#include "t2_client.h"

#include "base/t2_err.h"
#include "base/t2_log.h"
#include "t2_wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define PENDING_BUCKETS 256 /* power of two */

typedef struct pending {
    uint64_t id;
    uint8_t *bytes; /* the packed Request, for resubmission */
    size_t len;
    uint32_t next_seq;  /* chunks delivered */
    uint64_t deadline;  /* client-side deadline (ms); 0: none */
    uint32_t timeout_ms;
    int sent; /* sent to the router of the current epoch */
    struct pending *next;
} pending;

struct t2_client {
    void *ctx, *sock;
    int own_ctx;
    char *endpoint;
    int hb_ms, liveness;
    int has_curve;
    t2_curve_client curve;
    uint64_t next_id, last_heard, next_hb, epoch;
    pending *tab[PENDING_BUCKETS];
    size_t n_pending;
    t2_client_stats st;
    t2_msg_arena *arena; /* frames are decoded here: no allocation per chunk */
};

t2_client_opts t2_client_opts_default(void) {
    t2_client_opts o = {.heartbeat_ms = 1000, .liveness = 3};
    return o;
}

static pending **find_slot(t2_client *c, uint64_t id) {
    pending **pp = &c->tab[id & (PENDING_BUCKETS - 1)];
    while (*pp && (*pp)->id != id) pp = &(*pp)->next;
    return pp;
}

static pending *find(t2_client *c, uint64_t id) {
    return *find_slot(c, id);
}

static void drop(t2_client *c, uint64_t id) {
    pending **pp = find_slot(c, id);
    pending *p = *pp;
    if (!p) return;
    *pp = p->next;
    free(p->bytes);
    free(p);
    c->n_pending--;
}

static int send_msg(t2_client *c, T2__Msg *m) {
    return t2_wire_send(c->sock, NULL, 0, m);
}

static int send_raw(t2_client *c, const uint8_t *b, size_t n) {
    if (zmq_send(c->sock, b, n, ZMQ_DONTWAIT) < 0)
        return t2_err_set(T2_EZMQ, "send: %s", zmq_strerror(errno));
    return 0;
}

static void send_heartbeat(t2_client *c) {
    T2__Heartbeat h = T2__HEARTBEAT__INIT;
    h.has_role = 1;
    h.role = T2__ROLE__ROLE_CLIENT;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_HEARTBEAT;
    m.heartbeat = &h;
    send_msg(c, &m);
}

/* Send the requests not yet sent to this router (all: also those that were). */
static void flush(t2_client *c, int all) {
    for (size_t b = 0; b < PENDING_BUCKETS; b++)
        for (pending *p = c->tab[b]; p; p = p->next) {
            if (p->sent && !all) continue;
            if (p->sent) c->st.resubmits++;
            if (send_raw(c, p->bytes, p->len) == 0) p->sent = 1;
        }
}

static void mark_unsent(t2_client *c) {
    for (size_t b = 0; b < PENDING_BUCKETS; b++)
        for (pending *p = c->tab[b]; p; p = p->next)
            if (p->sent) {
                p->sent = 0;
                c->st.resubmits++;
            }
}

/* A new socket. Requests wait until the router's first heartbeat (its epoch) arrives: a
 * request is only ever sent to a router whose epoch we know, so that a restart (a new epoch)
 * always shows which requests to send again. */
static int open_socket(t2_client *c) {
    c->sock = t2_wire_dealer_curve(c->ctx, c->endpoint, 100, c->has_curve ? &c->curve : NULL);
    if (!c->sock) return T2_EZMQ;
    uint64_t now = t2_wire_now_ms();
    c->last_heard = now;
    c->epoch = 0;
    send_heartbeat(c); /* introduce ourselves: the router answers with its epoch */
    c->next_hb = now + (uint64_t)c->hb_ms;
    return 0;
}

/* The router went silent: start over on a new socket and resubmit what is in flight. */
static int reconnect(t2_client *c) {
    T2_WARN("router %s silent for %d ms: reconnecting, %zu request(s) to resubmit", c->endpoint,
            c->hb_ms * c->liveness, c->n_pending);
    zmq_close(c->sock);
    c->sock = NULL;
    c->st.reconnects++;
    mark_unsent(c);
    return open_socket(c); /* they go out when the router answers */
}

int t2_client_new(t2_client **out, void *zctx, const char *endpoint, const t2_client_opts *opts) {
    *out = NULL;
    t2_client_opts o = opts ? *opts : t2_client_opts_default();
    if (!endpoint) return t2_err_set(T2_EINVAL, "client: no endpoint");
    if (o.heartbeat_ms < 10 || o.liveness < 1)
        return t2_err_set(T2_EINVAL, "client: heartbeat_ms must be >= 10 and liveness >= 1");
    t2_client *c = calloc(1, sizeof *c);
    if (!c) return t2_err_set(T2_ENOMEM, "client: out of memory");
    c->endpoint = strdup(endpoint);
    c->hb_ms = o.heartbeat_ms;
    c->liveness = o.liveness;
    if (o.curve) {
        c->has_curve = 1;
        c->curve = *o.curve;
    }
    c->next_id = 1;
    c->ctx = zctx;
    if (!zctx) {
        c->ctx = zmq_ctx_new();
        c->own_ctx = 1;
    }
    if (c->endpoint && c->ctx) t2_msg_arena_new(&c->arena, 8192);
    if (!c->endpoint || !c->ctx || !c->arena) {
        t2_client_destroy(&c);
        return t2_err_set(T2_ENOMEM, "client: out of memory");
    }
    if (open_socket(c) < 0) {
        int rc = t2_err_prefix(T2_EZMQ, "client");
        t2_client_destroy(&c);
        return rc;
    }
    *out = c;
    return 0;
}

void t2_client_destroy(t2_client **cp) {
    t2_client *c = cp ? *cp : NULL;
    if (!c) return;
    if (c->sock) {
        t2_wire_send_goodbye(c->sock, "client closing");
        zmq_close(c->sock);
    }
    if (c->own_ctx && c->ctx) zmq_ctx_term(c->ctx);
    for (size_t b = 0; b < PENDING_BUCKETS; b++)
        for (pending *p = c->tab[b], *next; p; p = next) {
            next = p->next;
            free(p->bytes);
            free(p);
        }
    free(c->endpoint);
    memset(&c->curve, 0, sizeof c->curve); /* no secret left in freed memory */
    t2_msg_arena_destroy(&c->arena);
    free(c);
    *cp = NULL;
}

int t2_client_submit(t2_client *c, const char *service, const T2__Task *task, uint32_t timeout_ms,
                     uint64_t *request_id) {
    if (!task) return t2_err_set(T2_EINVAL, "submit: no task");
    T2__Task t = *task;
    T2__Sampling samp = T2__SAMPLING__INIT;
    if (task->sampling) samp = *task->sampling;
    if (!samp.has_seed) {
        samp.has_seed = 1;
        samp.seed = t2_wire_random_u64();
    }
    t.sampling = &samp;
    T2__Request q = T2__REQUEST__INIT;
    q.has_request_id = 1;
    q.request_id = c->next_id;
    q.service = (char *)service;
    q.task = &t;
    if (timeout_ms) {
        q.has_timeout_ms = 1;
        q.timeout_ms = timeout_ms;
    }
    if (t2_msg_validate_request(&q) < 0) return t2_err_prefix(T2_EINVAL, "submit");
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_REQUEST;
    m.request = &q;
    pending *p = calloc(1, sizeof *p);
    if (!p) return t2_err_set(T2_ENOMEM, "submit: out of memory");
    if (t2_msg_pack_alloc(&m, &p->bytes, &p->len) < 0) {
        free(p);
        return T2_ENOMEM;
    }
    if (c->n_pending == 0) c->last_heard = t2_wire_now_ms(); /* the liveness clock starts now */
    if (c->epoch) { /* else it goes out when the router's first heartbeat arrives */
        int rc = send_raw(c, p->bytes, p->len);
        if (rc < 0) {
            free(p->bytes);
            free(p);
            return rc;
        }
        p->sent = 1;
    }
    p->id = c->next_id++;
    p->timeout_ms = timeout_ms;
    /* the router answers ETIMEOUT at timeout_ms; the client's own deadline is a backstop */
    if (timeout_ms)
        p->deadline = t2_wire_now_ms() + timeout_ms + 2u * (uint64_t)c->hb_ms * (uint64_t)c->liveness;
    pending **slot = &c->tab[p->id & (PENDING_BUCKETS - 1)];
    p->next = *slot;
    *slot = p;
    c->n_pending++;
    c->st.submitted++;
    if (request_id) *request_id = p->id;
    return 0;
}

int t2_client_submit_prompt(t2_client *c, const char *service, const char *prompt,
                            uint32_t max_tokens, uint64_t *request_id) {
    if (!prompt) return t2_err_set(T2_EINVAL, "submit: no prompt");
    T2__Task t = T2__TASK__INIT;
    t.has_prompt = 1;
    t.prompt.data = (uint8_t *)prompt;
    t.prompt.len = strlen(prompt);
    T2__Sampling s = T2__SAMPLING__INIT;
    if (max_tokens) {
        s.has_max_tokens = 1;
        s.max_tokens = max_tokens;
    }
    t.sampling = &s;
    return t2_client_submit(c, service, &t, 0, request_id);
}

int t2_client_cancel(t2_client *c, uint64_t request_id) {
    if (!find(c, request_id))
        return t2_err_set(T2_ENOTFOUND, "cancel: request %" PRIu64 " is not in flight", request_id);
    drop(c, request_id);
    T2__Cancel k = T2__CANCEL__INIT;
    k.has_request_id = 1;
    k.request_id = request_id;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_CANCEL;
    m.cancel = &k;
    return send_msg(c, &m);
}

int t2_client_request_stats(t2_client *c) {
    T2__StatsRequest s = T2__STATS_REQUEST__INIT;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_STATS_REQUEST;
    m.stats_request = &s;
    return send_msg(c, &m);
}

void t2_client_event_clear(t2_client_event *ev) {
    t2_msg_free(ev->msg_);
    memset(ev, 0, sizeof *ev);
}

static int local_error(t2_client_event *ev, uint64_t id, int code, const char *text) {
    ev->type = T2_CLIENT_ERROR;
    ev->request_id = id;
    ev->code = code;
    snprintf(ev->text_, sizeof ev->text_, "%s", text);
    ev->message = ev->text_;
    return 1;
}

/* A message from the router (in the arena): 1 if it makes an event (ev filled: a chunk points
 * into the arena; results, errors and stats, rare, into a copy that ev owns), else 0. */
static int on_message(t2_client *c, T2__Msg *m, t2_client_event *ev) {
    c->last_heard = t2_wire_now_ms();
    uint64_t rid = t2_msg_request_id(m);
    pending *p = rid ? find(c, rid) : NULL;
    switch (m->body_case) {
    case T2__MSG__BODY_CHUNK:
        if (!p) break; /* cancelled or timed out meanwhile */
        if (m->chunk->seq < p->next_seq) { /* seen before a resubmission */
            c->st.duplicate_chunks++;
            break;
        }
        p->next_seq = m->chunk->seq + 1;
        c->st.chunks++;
        ev->type = T2_CLIENT_CHUNK;
        ev->request_id = rid;
        ev->chunk = m->chunk; /* in the arena until the next recv */
        return 1;
    case T2__MSG__BODY_RESULT:
        if (!p) break;
        drop(c, rid);
        if (t2_msg_dup(m, &m) < 0) return local_error(ev, rid, T2_ENOMEM, "out of memory");
        c->st.results++;
        ev->type = T2_CLIENT_RESULT;
        ev->request_id = rid;
        ev->result = m->result;
        ev->msg_ = m;
        return 1;
    case T2__MSG__BODY_ERROR:
        if (rid && !p) break;
        if (p) drop(c, rid);
        c->st.errors++;
        if (t2_msg_dup(m, &m) < 0) return local_error(ev, rid, T2_ENOMEM, "out of memory");
        ev->type = T2_CLIENT_ERROR;
        ev->request_id = rid;
        ev->code = m->error->code;
        ev->message = m->error->message ? m->error->message : t2_strerror(m->error->code);
        ev->msg_ = m;
        return 1;
    case T2__MSG__BODY_STATS:
        if (t2_msg_dup(m, &m) < 0) return local_error(ev, 0, T2_ENOMEM, "out of memory");
        ev->type = T2_CLIENT_STATS;
        ev->stats = m->stats;
        ev->msg_ = m;
        return 1;
    case T2__MSG__BODY_HEARTBEAT:
        /* The first epoch: send what waited for it. A new epoch: the router restarted and
         * knows none of our requests: send them all again (a router ignores a request id
         * it has in flight, so a request that did reach the new router runs once). */
        if (m->heartbeat->has_epoch && m->heartbeat->epoch != c->epoch) {
            int restarted = c->epoch != 0;
            if (restarted && c->n_pending)
                T2_WARN("router %s restarted: %zu request(s) resubmitted", c->endpoint, c->n_pending);
            c->epoch = m->heartbeat->epoch;
            flush(c, restarted);
        }
        break;
    default:
        c->st.bad_messages++;
        T2_WARN("router %s sent an unexpected %s message", c->endpoint, t2_msg_body_name(m->body_case));
        break;
    }
    return 0;
}

/* The earliest client-side deadline that has passed, or NULL; *next gets the next one. */
static pending *expired(t2_client *c, uint64_t now, uint64_t *next) {
    *next = UINT64_MAX;
    for (size_t b = 0; b < PENDING_BUCKETS; b++)
        for (pending *p = c->tab[b]; p; p = p->next) {
            if (!p->deadline) continue;
            if (p->deadline <= now) return p;
            if (p->deadline < *next) *next = p->deadline;
        }
    return NULL;
}

int t2_client_recv(t2_client *c, t2_client_event *ev, int timeout_ms) {
    t2_client_event_clear(ev);
    if (!c->sock && open_socket(c) < 0) return T2_EZMQ; /* a reconnection had failed */
    uint64_t start = t2_wire_now_ms();
    for (;;) {
        uint64_t now = t2_wire_now_ms();
        if (now >= c->next_hb) {
            send_heartbeat(c);
            c->next_hb = now + (uint64_t)c->hb_ms;
        }
        if (c->n_pending && now - c->last_heard > (uint64_t)c->hb_ms * (uint64_t)c->liveness) {
            if (reconnect(c) < 0) return T2_EZMQ;
        }
        uint64_t next_deadline = UINT64_MAX;
        if (c->n_pending) {
            pending *p = expired(c, now, &next_deadline);
            if (p) {
                char text[128];
                snprintf(text, sizeof text, "no answer from the router within %u ms", p->timeout_ms);
                uint64_t id = p->id;
                t2_client_cancel(c, id);
                c->st.errors++;
                return local_error(ev, id, T2_ETIMEOUT, text);
            }
        }
        for (int k = 0; k < 64; k++) {
            T2__Msg *m;
            int rc = t2_wire_recv_in(c->sock, c->arena, &m, 0, NULL);
            if (rc == 0) break;
            if (rc < 0) {
                if (errno == ETERM) return t2_err_set(T2_EZMQ, "ZeroMQ context terminated");
                c->st.bad_messages++;
                T2_WARN("bad message from router %s: %s", c->endpoint, t2_err_msg());
                continue;
            }
            if (on_message(c, m, ev)) return 1;
        }
        now = t2_wire_now_ms();
        long waited = (long)(now - start);
        if (timeout_ms >= 0 && waited >= timeout_ms) return 0;
        uint64_t wake = c->next_hb;
        if (next_deadline < wake) wake = next_deadline;
        long wait = wake > now ? (long)(wake - now) : 0;
        if (timeout_ms >= 0 && wait > timeout_ms - waited) wait = timeout_ms - waited;
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, wait) < 0) {
            if (errno == ETERM) return t2_err_set(T2_EZMQ, "ZeroMQ context terminated");
            if (errno == EINTR) return 0;
        }
    }
}

size_t t2_client_pending(const t2_client *c) {
    return c->n_pending;
}

void *t2_client_socket(t2_client *c) {
    return c->sock;
}

void t2_client_get_stats(const t2_client *c, t2_client_stats *st) {
    *st = c->st;
}
