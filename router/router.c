/* router.c - the broker (see t2_router.h and README.md).
 *
 * One poll loop over one ROUTER socket. State:
 *   peer     a connection, known by its ZeroMQ routing id; a client or a worker
 *   service  a name, a FIFO of waiting jobs, the workers serving it
 *   job      one client Request: QUEUED in its service, ASSIGNED to a worker, or CANCELLING
 *            (cancel sent, waiting for the worker's final reply to free the slot)
 * A peer found dead (send failed, heartbeats missed, goodbye) is only marked during a step
 * and removed by reap() after it, so no list is ever changed under a loop walking it.
 */
#include "t2_router.h"

#include "base/platform.h"
#include "base/hash.h"
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

enum { PEER_CLIENT = 1, PEER_WORKER = 2 };
enum { JOB_QUEUED, JOB_ASSIGNED, JOB_CANCELLING };

typedef struct job job;
typedef struct peer peer;
typedef struct service service;

/* A CURVE key's share of the per-client limit: every connection with that key counts here,
 * so that one client cannot multiply its share by opening sockets. Kept for the router's
 * life (only allowed keys ever get one: ZAP refuses the others). */
typedef struct keyuse {
    char uid[64]; /* ZAP User-Id: "client:KEY" */
    uint32_t n;   /* requests queued or running */
    struct keyuse *next;
} keyuse;

struct job {
    uint64_t id, request_id, seed;
    uint64_t deadline;        /* ms (monotonic); 0: none */
    uint64_t cancel_deadline; /* CANCELLING: free the slot after this */
    uint64_t progress_at;     /* ASSIGNED: when it was sent or last sent a chunk */
    uint32_t attempt;         /* dispatches so far */
    uint32_t next_seq;        /* chunks the client has had */
    int state;
    T2__Msg *req; /* owned: the client's Request */
    service *svc;
    peer *client; /* NULL once detached (cancelled) */
    peer *worker; /* ASSIGNED / CANCELLING */
    job *cprev, *cnext; /* the client's jobs */
    job *qprev, *qnext; /* the service queue (QUEUED) or the worker's jobs (otherwise) */
    job *hnext;         /* id table chain */
};

struct peer {
    uint8_t id[256];
    size_t id_len;
    uint64_t hash;
    int role, dead;
    int relay; /* a worker that relays jobs to other services (a dispatcher) */
    int key_role; /* T2_KEY_*: the role of its CURVE key (T2_KEY_NONE: CURVE off) */
    const char *dead_reason;
    uint64_t last_seen;
    peer *hnext, *dnext;
    char tag[T2_MSG_NAME_MAX + 24]; /* for logs: worker name or hex id */
    /* client */
    job *cjobs;
    uint32_t n_cjobs;
    keyuse *ku; /* its key's count (CURVE on), else NULL: the limit is per connection */
    /* worker */
    service *svc;
    uint32_t capacity, in_flight;
    uint64_t last_assigned;
    job *wjobs;
    peer *sprev, *snext;
};

struct service {
    char name[T2_MSG_NAME_MAX + 1];
    job *qhead, *qtail;
    uint32_t qlen;
    peer *workers;
    uint32_t n_workers;
    int dirty;
};

typedef struct counters {
    uint64_t requests, replies, chunks, decode_errors, requeues, busy, not_found, cancels,
        timeouts, workers_expired, clients_vanished, stalls;
} counters;

typedef struct router {
    const t2_router_config *cfg;
    void *ctx, *sock;
    uint64_t epoch, next_job_id, assign_clock, now;
    peer **ptab; /* peers by routing id */
    size_t pbuckets, npeers;
    job **jtab; /* jobs by id */
    size_t jbuckets, njobs;
    service *svcs[T2_ROUTER_SERVICES_MAX];
    int nsvcs;
    peer *dead;
    uint32_t n_workers, n_clients, n_queued, n_inflight;
    counters c;
    uint64_t logged_decode_errors;
    /* security */
    int curve;                             /* CURVE on: every peer authenticated by ZAP */
    void *zap;                             /* the ZAP handler's socket */
    t2_curve_set allowed[T2_KEY_DISPATCHER + 1]; /* public keys by role */
    uint64_t zap_refused, refused; /* connections and messages refused (for the log) */
    int cur_key_role; /* the key role of the message being handled (a new peer takes it) */
    const char *cur_uid; /* and its ZAP User-Id (NULL: CURVE off) */
    keyuse *keys;        /* per-key request counts */
    t2_msg_arena *arena; /* every frame is decoded here: no allocation per chunk */
} router;

/* ---- settings ----------------------------------------------------------------------------- */

void t2_router_config_defaults(t2_router_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->bind, sizeof cfg->bind, "tcp://127.0.0.1:5555");
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 3;
    cfg->queue_max = 1024;
    cfg->max_msg = T2_MSG_MAX_DEFAULT;
    cfg->stats_ms = 10000;
    cfg->cancel_grace_ms = 0;
    cfg->client_max = 256;
    cfg->progress_ms = 300000;
}


int t2_router_config_check(const t2_router_config *cfg) {
    if (!cfg->bind[0]) return t2_err_set(T2_EINVAL, "bind: no endpoint");
    if (cfg->heartbeat_ms < 10 || cfg->heartbeat_ms > 600000)
        return t2_err_set(T2_EINVAL, "heartbeat-ms %d outside [10, 600000]", cfg->heartbeat_ms);
    if (cfg->liveness < 1 || cfg->liveness > 1000)
        return t2_err_set(T2_EINVAL, "liveness %d outside [1, 1000]", cfg->liveness);
    if (cfg->queue_max < 0 || cfg->queue_max > 10000000)
        return t2_err_set(T2_EINVAL, "queue-max %d outside [0, 10000000]", cfg->queue_max);
    if (cfg->max_msg < 1024 || cfg->max_msg > T2_MSG_MAX_PEER)
        return t2_err_set(T2_EINVAL, "max-msg %zu outside [1024, %u]", cfg->max_msg, T2_MSG_MAX_PEER);
    if (cfg->stats_ms < 0) return t2_err_set(T2_EINVAL, "stats-ms %d is negative", cfg->stats_ms);
    if (cfg->cancel_grace_ms < 0)
        return t2_err_set(T2_EINVAL, "cancel-grace-ms %d is negative", cfg->cancel_grace_ms);
    if (cfg->progress_ms < 0)
        return t2_err_set(T2_EINVAL, "progress-ms %d is negative", cfg->progress_ms);
    if (cfg->client_max < 1)
        return t2_err_set(T2_EINVAL, "client-max %d is below 1", cfg->client_max);
    if (!cfg->curve_key[0] && !cfg->insecure && !t2_endpoint_is_local(cfg->bind))
        return t2_err_set(T2_EINVAL, "bind %s: plain ZeroMQ on a non-loopback address lets "
                          "anyone who reaches it own the deployment: give --curve-key (t2 "
                          "keygen), or --insecure to accept that", cfg->bind);
    int any_allowed = 0;
    for (int k = T2_KEY_CLIENT; k <= T2_KEY_DISPATCHER; k++) any_allowed |= cfg->allow[k][0] != 0;
    if (cfg->curve_key[0] && !any_allowed)
        return t2_err_set(T2_EINVAL, "curve-key without any --allow-clients / --allow-workers / "
                          "--allow-dispatchers list: nobody could connect");
    if (!cfg->curve_key[0] && any_allowed)
        return t2_err_set(T2_EINVAL, "allowed-key lists without --curve-key: keys are only "
                          "checked with CURVE on");
    if (cfg->n_services < 0 || cfg->n_services > T2_ROUTER_DECLARED_MAX)
        return t2_err_set(T2_EINVAL, "more than %d services", T2_ROUTER_DECLARED_MAX);
    for (int i = 0; i < cfg->n_services; i++) {
        T2__Ready probe = T2__READY__INIT; /* reuse the wire's name rule */
        probe.service = (char *)cfg->services[i];
        probe.has_capacity = 1;
        probe.capacity = 1;
        if (t2_msg_validate_ready(&probe) < 0)
            return t2_err_set(T2_EINVAL, "service '%s': a name is 1..%u bytes of [A-Za-z0-9._:/-]",
                              cfg->services[i], T2_MSG_NAME_MAX);
    }
    return 0;
}

/* ---- peers -------------------------------------------------------------------------------- */

static void hex_tag(char *out, size_t cap, const uint8_t *id, size_t n) {
    size_t k = n < 6 ? n : 6, o = 0;
    o += (size_t)snprintf(out + o, cap - o, "#");
    for (size_t i = 0; i < k && o + 3 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%02x", id[i]);
}

static peer *peer_find(router *r, const uint8_t *id, size_t n) {
    uint64_t h = t2_fnv1a64(T2_FNV1A64_INIT, id, n);
    for (peer *p = r->ptab[h & (r->pbuckets - 1)]; p; p = p->hnext)
        if (p->hash == h && p->id_len == n && memcmp(p->id, id, n) == 0) return p;
    return NULL;
}

static int peer_table_grow(router *r) {
    size_t nb = r->pbuckets * 2;
    peer **t = calloc(nb, sizeof *t);
    if (!t) return T2_ENOMEM;
    for (size_t i = 0; i < r->pbuckets; i++)
        for (peer *p = r->ptab[i], *next; p; p = next) {
            next = p->hnext;
            p->hnext = t[p->hash & (nb - 1)];
            t[p->hash & (nb - 1)] = p;
        }
    free(r->ptab);
    r->ptab = t;
    r->pbuckets = nb;
    return 0;
}

/* The count of the key with this User-Id (created on first use); NULL without one. */
static keyuse *keyuse_get(router *r, const char *uid) {
    if (!uid || !uid[0]) return NULL;
    for (keyuse *k = r->keys; k; k = k->next)
        if (!strcmp(k->uid, uid)) return k;
    keyuse *k = calloc(1, sizeof *k);
    if (!k) return NULL; /* then this connection is limited on its own */
    snprintf(k->uid, sizeof k->uid, "%s", uid);
    k->next = r->keys;
    r->keys = k;
    return k;
}

static peer *peer_new(router *r, const uint8_t *id, size_t n, int role) {
    if (n > 255) return NULL;
    if (r->npeers >= r->pbuckets && peer_table_grow(r) < 0) return NULL;
    peer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    memcpy(p->id, id, n);
    p->id_len = n;
    p->hash = t2_fnv1a64(T2_FNV1A64_INIT, id, n);
    p->role = role;
    p->key_role = r->cur_key_role;
    p->ku = role == PEER_CLIENT ? keyuse_get(r, r->cur_uid) : NULL;
    p->last_seen = r->now;
    hex_tag(p->tag, sizeof p->tag, id, n);
    size_t b = p->hash & (r->pbuckets - 1);
    p->hnext = r->ptab[b];
    r->ptab[b] = p;
    r->npeers++;
    if (role == PEER_CLIENT) r->n_clients++;
    return p;
}

static void peer_unhash(router *r, peer *p) {
    peer **pp = &r->ptab[p->hash & (r->pbuckets - 1)];
    while (*pp && *pp != p) pp = &(*pp)->hnext;
    if (*pp) *pp = p->hnext;
    r->npeers--;
}

static void mark_dead(router *r, peer *p, const char *why) {
    if (p->dead) return;
    p->dead = 1;
    p->dead_reason = why;
    p->dnext = r->dead;
    r->dead = p;
}

/* ---- jobs --------------------------------------------------------------------------------- */

static size_t job_bucket(const router *r, uint64_t id) {
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (r->jbuckets - 1);
}

static job *job_find(router *r, uint64_t id) {
    for (job *j = r->jtab[job_bucket(r, id)]; j; j = j->hnext)
        if (j->id == id) return j;
    return NULL;
}

static int job_table_grow(router *r) {
    size_t old = r->jbuckets;
    job **ot = r->jtab;
    job **t = calloc(old * 2, sizeof *t);
    if (!t) return T2_ENOMEM;
    r->jtab = t;
    r->jbuckets = old * 2;
    for (size_t i = 0; i < old; i++)
        for (job *j = ot[i], *next; j; j = next) {
            next = j->hnext;
            size_t b = job_bucket(r, j->id);
            j->hnext = t[b];
            t[b] = j;
        }
    free(ot);
    return 0;
}

static void client_link(peer *c, job *j) {
    j->client = c;
    j->cprev = NULL;
    j->cnext = c->cjobs;
    if (c->cjobs) c->cjobs->cprev = j;
    c->cjobs = j;
    c->n_cjobs++;
    if (c->ku) c->ku->n++;
}

static void client_unlink(job *j) {
    peer *c = j->client;
    if (!c) return;
    if (j->cprev) j->cprev->cnext = j->cnext;
    else c->cjobs = j->cnext;
    if (j->cnext) j->cnext->cprev = j->cprev;
    j->cprev = j->cnext = NULL;
    j->client = NULL;
    c->n_cjobs--;
    if (c->ku) c->ku->n--;
}

static job *client_find(peer *c, uint64_t request_id) {
    for (job *j = c->cjobs; j; j = j->cnext)
        if (j->request_id == request_id) return j;
    return NULL;
}

static void queue_push(router *r, service *s, job *j, int front) {
    j->state = JOB_QUEUED;
    j->worker = NULL;
    if (front) {
        j->qprev = NULL;
        j->qnext = s->qhead;
        if (s->qhead) s->qhead->qprev = j;
        else s->qtail = j;
        s->qhead = j;
    } else {
        j->qnext = NULL;
        j->qprev = s->qtail;
        if (s->qtail) s->qtail->qnext = j;
        else s->qhead = j;
        s->qtail = j;
    }
    s->qlen++;
    s->dirty = 1;
    r->n_queued++;
}

static void queue_remove(router *r, service *s, job *j) {
    if (j->qprev) j->qprev->qnext = j->qnext;
    else s->qhead = j->qnext;
    if (j->qnext) j->qnext->qprev = j->qprev;
    else s->qtail = j->qprev;
    j->qprev = j->qnext = NULL;
    s->qlen--;
    r->n_queued--;
}

static void worker_link(router *r, peer *w, job *j) {
    j->worker = w;
    j->qprev = NULL;
    j->qnext = w->wjobs;
    if (w->wjobs) w->wjobs->qprev = j;
    w->wjobs = j;
    w->in_flight++;
    r->n_inflight++;
}

static void worker_unlink(router *r, job *j) {
    peer *w = j->worker;
    if (!w) return;
    if (j->qprev) j->qprev->qnext = j->qnext;
    else w->wjobs = j->qnext;
    if (j->qnext) j->qnext->qprev = j->qprev;
    j->qprev = j->qnext = NULL;
    j->worker = NULL;
    w->in_flight--;
    r->n_inflight--;
    if (w->svc) w->svc->dirty = 1;
}

/* Unlink a job from everything and free it. */
static void job_free(router *r, job *j) {
    if (j->state == JOB_QUEUED) queue_remove(r, j->svc, j);
    else worker_unlink(r, j);
    client_unlink(j);
    job **pp = &r->jtab[job_bucket(r, j->id)];
    while (*pp && *pp != j) pp = &(*pp)->hnext;
    if (*pp) *pp = j->hnext;
    r->njobs--;
    t2_msg_free(j->req);
    free(j);
}

/* ---- sending ------------------------------------------------------------------------------ */

/* Send to a peer; a failure (gone, or not reading: queue full) marks it dead. */
static int send_to(router *r, peer *p, T2__Msg *m) {
    if (p->dead) return T2_EZMQ;
    if (t2_wire_send(r->sock, p->id, p->id_len, m) < 0) {
        T2_DEBUG("send to %s failed: %s", p->tag, t2_err_msg());
        mark_dead(r, p, errno == EAGAIN ? "not reading (queue full)" : "connection gone");
        return T2_EZMQ;
    }
    return 0;
}

/* Forward a frame as it came (zero copy). */
static int forward(router *r, peer *p, zmq_msg_t *frame) {
    if (p->dead) return T2_EZMQ;
    if (zmq_send(r->sock, p->id, p->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_msg_send(frame, r->sock, ZMQ_DONTWAIT) < 0) {
        mark_dead(r, p, errno == EAGAIN ? "not reading (queue full)" : "connection gone");
        return T2_EZMQ;
    }
    return 0;
}

static void reply_error(router *r, const uint8_t *id, size_t n, uint64_t request_id,
                        uint64_t job_id, int code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void reply_error(router *r, const uint8_t *id, size_t n, uint64_t request_id,
                        uint64_t job_id, int code, const char *fmt, ...) {
    char text[T2_MSG_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    peer *p = peer_find(r, id, n);
    if (p && p->dead) return;
    if (t2_wire_send_error(r->sock, id, n, request_id, job_id, code, "%s", text) < 0 && p)
        mark_dead(r, p, "connection gone");
}

static void decode_error(router *r, const uint8_t *id, size_t n, uint64_t request_id,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void decode_error(router *r, const uint8_t *id, size_t n, uint64_t request_id,
                         const char *fmt, ...) {
    char text[T2_MSG_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    r->c.decode_errors++;
    /* a flood of garbage must not flood the log: the first 20, then one in 1000 */
    if (r->c.decode_errors <= 20 || r->c.decode_errors % 1000 == 0) {
        char tag[32];
        hex_tag(tag, sizeof tag, id, n);
        T2_WARN("bad message from %s (decode error %" PRIu64 "): %s", tag, r->c.decode_errors, text);
    }
    reply_error(r, id, n, request_id, 0, T2_EPROTO, "%s", text);
}

static void send_heartbeat(router *r, peer *p) {
    T2__Heartbeat hb = T2__HEARTBEAT__INIT;
    hb.has_role = hb.has_epoch = 1;
    hb.role = T2__ROLE__ROLE_ROUTER;
    hb.epoch = r->epoch;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    send_to(r, p, &m);
}

static void send_disconnect(router *r, const uint8_t *id, size_t n, const char *reason) {
    T2__Disconnect d = T2__DISCONNECT__INIT;
    d.reason = (char *)reason;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_DISCONNECT;
    m.disconnect = &d;
    t2_wire_send(r->sock, id, n, &m); /* best effort: it is a stranger */
}

/* ---- services ----------------------------------------------------------------------------- */

static service *svc_find(router *r, const char *name) {
    for (int i = 0; i < r->nsvcs; i++)
        if (strcmp(r->svcs[i]->name, name) == 0) return r->svcs[i];
    return NULL;
}

static service *svc_add(router *r, const char *name) {
    service *s = svc_find(r, name);
    if (s) return s;
    if (r->nsvcs >= T2_ROUTER_SERVICES_MAX) return NULL;
    s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->name, sizeof s->name, "%s", name);
    r->svcs[r->nsvcs++] = s;
    return s;
}

/* The live worker with the most free slots; ties go to the one idle longest. */
static peer *pick_worker(service *s) {
    peer *best = NULL;
    uint32_t best_free = 0;
    for (peer *w = s->workers; w; w = w->snext) {
        if (w->dead || w->in_flight >= w->capacity) continue;
        uint32_t f = w->capacity - w->in_flight;
        if (!best || f > best_free || (f == best_free && w->last_assigned < best->last_assigned)) {
            best = w;
            best_free = f;
        }
    }
    return best;
}

static void send_job(router *r, job *j, peer *w) {
    const T2__Request *q = j->req->request;
    T2__Task task = *q->task;
    T2__Sampling samp = T2__SAMPLING__INIT;
    if (q->task->sampling) samp = *q->task->sampling;
    samp.has_seed = 1; /* fixed once, so that a requeued job streams the same tokens */
    samp.seed = j->seed;
    task.sampling = &samp;
    T2__Job jm = T2__JOB__INIT;
    jm.has_job_id = jm.has_request_id = jm.has_attempt = 1;
    jm.job_id = j->id;
    jm.request_id = j->request_id;
    jm.service = j->svc->name;
    jm.task = &task;
    jm.attempt = j->attempt;
    if (j->deadline) {
        jm.has_timeout_ms = 1;
        jm.timeout_ms = j->deadline > r->now ? (uint32_t)(j->deadline - r->now) : 1;
    }
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_JOB;
    m.job = &jm;
    if (send_to(r, w, &m) == 0)
        T2_DEBUG("job %" PRIu64 " (request %" PRIu64 ", attempt %u) -> %s", j->id, j->request_id,
                 j->attempt, w->tag);
    /* on failure the worker is dead: reap() requeues the job */
}

static void dispatch(router *r, service *s) {
    s->dirty = 0;
    while (s->qhead) {
        peer *w = pick_worker(s);
        if (!w) break;
        job *j = s->qhead;
        queue_remove(r, s, j);
        j->state = JOB_ASSIGNED;
        j->attempt++;
        worker_link(r, w, j);
        j->progress_at = r->now;
        w->last_assigned = ++r->assign_clock;
        send_job(r, j, w);
    }
}

static void dispatch_dirty(router *r) {
    for (int i = 0; i < r->nsvcs; i++)
        if (r->svcs[i]->dirty) dispatch(r, r->svcs[i]);
}

/* Stop a job: drop it if queued, else tell its worker and wait for the acknowledgement.
 * The client (if any) is detached: it gets nothing more for this request. */
static void cancel_job(router *r, job *j) {
    if (j->state == JOB_QUEUED) {
        job_free(r, j);
        return;
    }
    client_unlink(j);
    if (j->state == JOB_CANCELLING) return;
    j->state = JOB_CANCELLING;
    int grace = r->cfg->cancel_grace_ms ? r->cfg->cancel_grace_ms
                                        : r->cfg->heartbeat_ms * r->cfg->liveness;
    j->cancel_deadline = r->now + (uint64_t)grace;
    T2__Cancel c = T2__CANCEL__INIT;
    c.has_job_id = c.has_request_id = 1;
    c.job_id = j->id;
    c.request_id = j->request_id;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_CANCEL;
    m.cancel = &c;
    if (send_to(r, j->worker, &m) == 0) r->c.cancels++;
}

/* Remove dead peers: a worker's jobs go back to the front of their queue (in order), a
 * client's jobs are cancelled. Removing one may kill another (a cancel that cannot be
 * sent), so loop until none is left. */
static void reap(router *r) {
    while (r->dead) {
        peer *p = r->dead;
        r->dead = p->dnext;
        if (p->role == PEER_WORKER) {
            service *s = p->svc;
            uint32_t requeued = 0;
            /* wjobs holds the newest first; pushing each to the queue's front leaves them
             * oldest first, ahead of the jobs that were waiting */
            while (p->wjobs) {
                job *j = p->wjobs;
                int st = j->state;
                worker_unlink(r, j);
                if (st == JOB_CANCELLING || !j->client) {
                    job_free(r, j);
                } else {
                    queue_push(r, s, j, 1);
                    r->c.requeues++;
                    requeued++;
                }
            }
            if (p->sprev) p->sprev->snext = p->snext;
            else s->workers = p->snext;
            if (p->snext) p->snext->sprev = p->sprev;
            s->n_workers--;
            r->n_workers--;
            s->dirty = 1;
            T2_INFO("worker %s of '%s' removed (%s), %u job(s) requeued", p->tag, s->name,
                    p->dead_reason, requeued);
        } else {
            uint32_t n = p->n_cjobs;
            while (p->cjobs) cancel_job(r, p->cjobs);
            r->n_clients--;
            if (n) T2_INFO("client %s gone (%s): %u request(s) cancelled", p->tag, p->dead_reason, n);
        }
        peer_unhash(r, p);
        free(p);
    }
}

/* ---- handlers ----------------------------------------------------------------------------- */

/* The peer as a client, created on first contact. NULL (and an error reply) if the
 * connection registered as a worker: one socket, one role. */
static peer *as_client(router *r, peer *p, const uint8_t *id, size_t n, uint64_t request_id) {
    if (p && p->role == PEER_CLIENT) return p;
    if (p) {
        decode_error(r, id, n, request_id,
                     "this connection is registered as a worker; send client messages from "
                     "another socket");
        return NULL;
    }
    p = peer_new(r, id, n, PEER_CLIENT);
    if (!p) {
        reply_error(r, id, n, request_id, 0, T2_ENOMEM, "router out of memory");
        return NULL;
    }
    send_heartbeat(r, p); /* the epoch first: it reaches the client before any reply */
    return p;
}

static void on_request(router *r, peer *p, const uint8_t *id, size_t n, T2__Msg **mp) {
    const T2__Request *q = (*mp)->request;
    uint64_t rid = q->request_id;
    if (!(p = as_client(r, p, id, n, rid))) return;
    service *s = svc_find(r, q->service);
    if (!s) {
        r->c.not_found++;
        reply_error(r, id, n, rid, 0, T2_ENOTFOUND, "no service '%s' at this router", q->service);
        return;
    }
    if (client_find(p, rid)) {
        T2_DEBUG("client %s resent request %" PRIu64 ": already in flight", p->tag, rid);
        return;
    }
    uint32_t held = p->ku ? p->ku->n : p->n_cjobs; /* per key with CURVE, else per socket */
    if (held >= (uint32_t)r->cfg->client_max && p->key_role != T2_KEY_DISPATCHER) {
        r->c.busy++;
        reply_error(r, id, n, rid, 0, T2_EBUSY, "this client%s has %u requests queued or running "
                    "(at most %d per client%s)", p->ku ? " key" : "", held, r->cfg->client_max,
                    p->ku ? " key" : "");
        return;
    }
    if (s->qlen >= (uint32_t)r->cfg->queue_max && !pick_worker(s)) {
        r->c.busy++;
        reply_error(r, id, n, rid, 0, T2_EBUSY, "service '%s' busy: %u requests waiting (queue-max %d)",
                    s->name, s->qlen, r->cfg->queue_max);
        return;
    }
    if (r->njobs >= r->jbuckets && job_table_grow(r) < 0) {
        reply_error(r, id, n, rid, 0, T2_ENOMEM, "router out of memory");
        return;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        reply_error(r, id, n, rid, 0, T2_ENOMEM, "router out of memory");
        return;
    }
    j->id = r->next_job_id++;
    j->request_id = rid;
    j->req = *mp;
    *mp = NULL;
    j->svc = s;
    const T2__Sampling *samp = q->task->sampling;
    j->seed = samp && samp->has_seed ? samp->seed : t2_wire_random_u64();
    if (q->has_timeout_ms && q->timeout_ms) j->deadline = r->now + q->timeout_ms;
    size_t b = job_bucket(r, j->id);
    j->hnext = r->jtab[b];
    r->jtab[b] = j;
    r->njobs++;
    client_link(p, j);
    queue_push(r, s, j, 0);
    r->c.requests++;
    T2_DEBUG("request %" PRIu64 " from %s for '%s' queued as job %" PRIu64, rid, p->tag, s->name, j->id);
}

static void on_cancel(router *r, peer *p, const uint8_t *id, size_t n, const T2__Cancel *c) {
    if (!p || p->role != PEER_CLIENT) {
        if (p) decode_error(r, id, n, 0, "a worker does not send cancel");
        return; /* a stranger cancelling: nothing of its is here */
    }
    job *j = c->has_request_id ? client_find(p, c->request_id) : NULL;
    if (j) {
        T2_DEBUG("client %s cancels request %" PRIu64, p->tag, c->request_id);
        cancel_job(r, j);
    }
}

static void on_heartbeat(router *r, peer *p, const uint8_t *id, size_t n, const T2__Heartbeat *h) {
    if (h->role == T2__ROLE__ROLE_CLIENT) {
        as_client(r, p, id, n, 0);
    } else if (h->role == T2__ROLE__ROLE_WORKER) {
        if (!p || p->role != PEER_WORKER) send_disconnect(r, id, n, "unknown worker: send ready");
    }
}

static void on_ready(router *r, peer *p, const uint8_t *id, size_t n, const T2__Ready *m) {
    if (p && p->role == PEER_CLIENT) {
        decode_error(r, id, n, 0, "this connection is a client; a worker needs its own socket");
        return;
    }
    if (r->cfg->model_sha256[0] &&
        (!m->model_sha256 || strcmp(m->model_sha256, r->cfg->model_sha256))) {
        if (++r->refused <= 20 || r->refused % 1000 == 0)
            T2_WARN("refused a worker for '%s' of model %.12s: this deployment serves %.12s",
                    m->service, m->model_sha256 ? m->model_sha256 : "(none)",
                    r->cfg->model_sha256);
        decode_error(r, id, n, 0, "this router serves model %s; the worker announces %s",
                     r->cfg->model_sha256, m->model_sha256 ? m->model_sha256 : "none");
        return;
    }
    service *s = svc_add(r, m->service);
    if (!s) {
        reply_error(r, id, n, 0, 0, T2_ENOMEM, "too many services (at most %d)", T2_ROUTER_SERVICES_MAX);
        return;
    }
    if (p && p->svc != s) {
        decode_error(r, id, n, 0, "this worker serves '%s'; one socket serves one service",
                     p->svc->name);
        return;
    }
    if (!p) {
        if (!(p = peer_new(r, id, n, PEER_WORKER))) {
            reply_error(r, id, n, 0, 0, T2_ENOMEM, "router out of memory");
            return;
        }
        p->svc = s;
        p->snext = s->workers;
        if (s->workers) s->workers->sprev = p;
        s->workers = p;
        s->n_workers++;
        r->n_workers++;
        if (m->name) snprintf(p->tag, sizeof p->tag, "%s", m->name);
    }
    p->capacity = m->capacity;
    /* a relay waits on other services' queues: no progress deadline (with CURVE, only a
     * dispatcher key may claim that) */
    p->relay = m->has_relay && m->relay && (!r->curve || p->key_role == T2_KEY_DISPATCHER);
    s->dirty = 1;
    T2_INFO("worker %s ready for '%s': capacity %u, %zu expert(s), model %.12s", p->tag, s->name,
            p->capacity, m->n_experts, m->model_sha256 ? m->model_sha256 : "-");
}

static void fail_job(router *r, peer *w, uint64_t job_id, const char *why);

/* A worker's final reply to the client. A Result's text reaches clients as valid UTF-8
 * (router/README.md): one that is not (a buggy or hostile worker, or a generation cut in
 * the middle of a character) is sent with U+FFFD for each bad byte; the rest as it came. */
static int send_final(router *r, peer *w, job *j, const T2__Msg *m, zmq_msg_t *frame) {
    const T2__Result *res = m->body_case == T2__MSG__BODY_RESULT ? m->result : NULL;
    if (!res || !res->has_text || t2_msg_utf8_ok(res->text.data, res->text.len))
        return forward(r, j->client, frame);
    uint8_t *fixed = malloc(res->text.len * 3 + 1);
    if (!fixed) return forward(r, j->client, frame); /* out of memory: as it came */
    T2__Result copy = *res;
    copy.text.data = fixed;
    copy.text.len = t2_msg_utf8_repair(res->text.data, res->text.len, fixed);
    T2__Msg out = *m;
    out.result = &copy;
    T2_WARN("worker %s: the text of job %" PRIu64 " (request %" PRIu64 ") is not valid UTF-8: "
            "bad bytes replaced by U+FFFD", w->tag, j->id, j->request_id);
    int rc = send_to(r, j->client, &out);
    free(fixed);
    return rc;
}

static void on_worker_reply(router *r, peer *p, const uint8_t *id, size_t n, const T2__Msg *m,
                            zmq_msg_t *frame) {
    uint64_t jid = 0, rid = t2_msg_request_id(m);
    if (m->body_case == T2__MSG__BODY_CHUNK) jid = m->chunk->job_id;
    else if (m->body_case == T2__MSG__BODY_RESULT) jid = m->result->job_id;
    else if (m->error->has_job_id) jid = m->error->job_id;
    if (!p || p->role != PEER_WORKER) {
        if (p && m->body_case == T2__MSG__BODY_ERROR) {
            T2_WARN("client %s reports error %d: %s", p->tag, m->error->code,
                    m->error->message ? m->error->message : "");
            return;
        }
        if (p) {
            decode_error(r, id, n, rid, "a client does not send %s", t2_msg_body_name(m->body_case));
            return;
        }
        send_disconnect(r, id, n, "unknown worker: send ready");
        return;
    }
    if (!jid) {
        T2_WARN("worker %s reports error %d: %s", p->tag, m->error->code,
                m->error->message ? m->error->message : "");
        return;
    }
    job *j = job_find(r, jid);
    if (!j || j->worker != p) {
        T2_DEBUG("stale %s for job %" PRIu64 " from %s dropped", t2_msg_body_name(m->body_case), jid, p->tag);
        return;
    }
    if (rid != j->request_id) {
        /* a worker that mixes up its jobs cannot be trusted with this one: the client gets a
         * final Error now, and the job is cancelled at the worker */
        char why[160];
        snprintf(why, sizeof why, "job %" PRIu64 " belongs to request %" PRIu64 ", not %" PRIu64,
                 jid, j->request_id, rid);
        decode_error(r, id, n, rid, "%s", why);
        fail_job(r, p, jid, why);
        return;
    }
    if (m->body_case == T2__MSG__BODY_CHUNK) {
        uint32_t seq = m->chunk->seq;
        if (j->state != JOB_ASSIGNED || !j->client || seq < j->next_seq) return;
        j->next_seq = seq + 1;
        j->progress_at = r->now;
        if (forward(r, j->client, frame) == 0) r->c.chunks++;
        return;
    }
    if (j->state == JOB_ASSIGNED && j->client && send_final(r, p, j, m, frame) == 0) r->c.replies++;
    job_free(r, j);
}

static void send_stats(router *r, const uint8_t *id, size_t n) {
    T2__Stats st = T2__STATS__INIT;
    st.has_requests = st.has_replies = st.has_chunks = st.has_decode_errors = 1;
    st.has_requeues = st.has_busy = st.has_not_found = st.has_cancels = st.has_timeouts = 1;
    st.has_workers = st.has_clients = st.has_queued = st.has_in_flight = st.has_epoch = 1;
    st.requests = r->c.requests;
    st.replies = r->c.replies;
    st.chunks = r->c.chunks;
    st.decode_errors = r->c.decode_errors;
    st.requeues = r->c.requeues;
    st.busy = r->c.busy;
    st.not_found = r->c.not_found;
    st.cancels = r->c.cancels;
    st.timeouts = r->c.timeouts;
    st.workers = r->n_workers;
    st.clients = r->n_clients;
    st.queued = r->n_queued;
    st.in_flight = r->n_inflight;
    st.epoch = r->epoch;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_STATS;
    m.stats = &st;
    t2_wire_send(r->sock, id, n, &m);
}

/* One message: [routing id][frame] (more frames are an error). */
/* A worker's reply was refused: its job cannot end well any more. Tell the client now (one
 * final Error) and cancel the job at the worker. */
static void fail_job(router *r, peer *w, uint64_t job_id, const char *why) {
    job *j = job_find(r, job_id);
    if (!j || j->worker != w || j->state != JOB_ASSIGNED) return;
    if (j->client && !j->client->dead) {
        reply_error(r, j->client->id, j->client->id_len, j->request_id, j->id, T2_EPROTO,
                    "the worker's reply was refused: %s", why);
        r->c.replies++;
    }
    cancel_job(r, j);
}

static const char *role_forbids(int role, int body);

static void handle(router *r, const uint8_t *id, size_t n, zmq_msg_t *frame, int frames) {
    size_t len = zmq_msg_size(frame);
    if (frames != 1) {
        decode_error(r, id, n, 0, "message of %d frames (the protocol uses one)", frames);
        return;
    }
    /* decoded even when too big (zmq's ZMQ_MAXMSGSIZE bounds it), so that the error can
     * name the request or job */
    T2__Msg *m;
    t2_msg_ids ids;
    char why[T2_MSG_ERROR_TEXT_MAX];
    int rc = t2_msg_decode_in(r->arena, zmq_msg_data(frame), len, &m, &ids);
    if (rc == 0 && len > r->cfg->max_msg) {
        m = NULL;
        rc = T2_EPROTO;
        snprintf(why, sizeof why, "message of %zu bytes is over the limit of %zu", len, r->cfg->max_msg);
    } else if (rc < 0) {
        snprintf(why, sizeof why, "%s", t2_err_msg());
    }
    if (rc < 0) {
        decode_error(r, id, n, ids.request_id, "%s", why);
        peer *w = peer_find(r, id, n);
        if (w && w->role == PEER_WORKER && ids.job_id &&
            (ids.body_case == T2__MSG__BODY_CHUNK || ids.body_case == T2__MSG__BODY_RESULT ||
             ids.body_case == T2__MSG__BODY_ERROR))
            fail_job(r, w, ids.job_id, why);
        return;
    }
    uint64_t rid = ids.request_id;
    const int key_role = r->curve ? t2_key_role_of(zmq_msg_gets(frame, "User-Id")) : T2_KEY_NONE;
    const char *forbidden = role_forbids(key_role, m->body_case);
    if (r->curve && !key_role) forbidden = "no authenticated key";
    if (forbidden) {
        if (++r->refused <= 20 || r->refused % 1000 == 0) /* a loop must not flood the log */
            T2_WARN("refused %s from %s key %s: %s (%" PRIu64 " refused)",
                    t2_msg_body_name(m->body_case), t2_key_role_name(key_role),
                    zmq_msg_gets(frame, "User-Id"), forbidden, r->refused);
        decode_error(r, id, n, rid, "%s", forbidden);
        return; /* m lives in the arena */
    }
    r->cur_key_role = key_role;
    r->cur_uid = r->curve ? zmq_msg_gets(frame, "User-Id") : NULL;
    peer *p = peer_find(r, id, n); /* never a dead one: reap() runs after every message */
    if (p && !p->key_role) p->key_role = key_role;
    if (p) p->last_seen = r->now;
    switch (m->body_case) {
    case T2__MSG__BODY_REQUEST: { /* kept as the job: decoded again, onto the heap */
        T2__Msg *own = NULL;
        if (t2_msg_decode(zmq_msg_data(frame), len, &own, NULL) < 0) {
            reply_error(r, id, n, rid, 0, T2_ENOMEM, "router out of memory");
            break;
        }
        on_request(r, p, id, n, &own);
        t2_msg_free(own); /* NULL when on_request kept it */
        break;
    }
    case T2__MSG__BODY_CANCEL: on_cancel(r, p, id, n, m->cancel); break;
    case T2__MSG__BODY_HEARTBEAT: on_heartbeat(r, p, id, n, m->heartbeat); break;
    case T2__MSG__BODY_READY: on_ready(r, p, id, n, m->ready); break;
    case T2__MSG__BODY_CHUNK:
    case T2__MSG__BODY_RESULT:
    case T2__MSG__BODY_ERROR: on_worker_reply(r, p, id, n, m, frame); break;
    case T2__MSG__BODY_DISCONNECT:
        if (p) mark_dead(r, p, "said goodbye");
        break;
    case T2__MSG__BODY_STATS_REQUEST: send_stats(r, id, n); break;
    default:
        decode_error(r, id, n, rid, "a router does not take %s messages", t2_msg_body_name(m->body_case));
        break;
    }
}

/* Read everything waiting (bounded, so that timers still run under load). */
static int drain(router *r) {
    for (int k = 0; k < 4096; k++) {
        zmq_msg_t idf, frame;
        zmq_msg_init(&idf);
        if (zmq_msg_recv(&idf, r->sock, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(&idf);
            if (e == EAGAIN || e == EINTR) return 0;
            return t2_err_set(T2_EZMQ, "recv: %s", zmq_strerror(e));
        }
        r->now = t2_wire_now_ms();
        int frames = 0;
        zmq_msg_init(&frame);
        if (zmq_msg_more(&idf)) {
            if (zmq_msg_recv(&frame, r->sock, 0) >= 0) frames = 1;
            int more = zmq_msg_more(&frame);
            while (more) {
                zmq_msg_t extra;
                zmq_msg_init(&extra);
                if (zmq_msg_recv(&extra, r->sock, 0) < 0) more = 0;
                else frames++, more = zmq_msg_more(&extra);
                zmq_msg_close(&extra);
            }
        }
        size_t idn = zmq_msg_size(&idf);
        if (idn > 0 && idn <= 255) handle(r, zmq_msg_data(&idf), idn, &frame, frames);
        zmq_msg_close(&frame);
        zmq_msg_close(&idf);
        reap(r);
        dispatch_dirty(r);
    }
    return 0;
}

/* ---- ZAP: who may connect (CURVE) ------------------------------------------------------- */

static void zap_send(void *s, const void *data, size_t n, int more) {
    zmq_send(s, data, n, more ? ZMQ_SNDMORE : 0);
}

/* One ZAP request (RFC 27): version, request id, domain, address, routing id, mechanism,
 * credentials. The answer's User-Id ("client:KEY", the whole Z85 public key) comes back on
 * every frame of the connection, so handle() knows the role (and key) of every sender. */
static void on_zap(router *r) {
    char f[7][64];
    size_t len[7] = {0};
    int nf = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, r->zap, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            if (!nf) return;
            break;
        }
        if (nf < 7) {
            len[nf] = zmq_msg_size(&m);
            memcpy(f[nf], zmq_msg_data(&m), len[nf] < 64 ? len[nf] : 64);
            nf++;
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    int role = T2_KEY_NONE;
    char key[T2_CURVE_KEY_LEN + 1] = "?", addr[48] = "?";
    if (nf == 7 && len[3] < sizeof addr) {
        memcpy(addr, f[3], len[3]);
        addr[len[3]] = 0;
    }
    if (nf == 7 && len[0] == 3 && !memcmp(f[0], "1.0", 3) && len[5] == 5 &&
        !memcmp(f[5], "CURVE", 5) && len[6] == 32) {
        zmq_z85_encode(key, (const uint8_t *)f[6], 32);
        for (int k = T2_KEY_DISPATCHER; k >= T2_KEY_CLIENT && !role; k--)
            if (t2_curve_set_has(&r->allowed[k], (const uint8_t *)f[6])) role = k;
    }
    char uid[64] = "";
    if (role) snprintf(uid, sizeof uid, "%s:%s", t2_key_role_name(role), key);
    else if (++r->zap_refused <= 20 || r->zap_refused % 1000 == 0)
        T2_WARN("refused a connection from %s: public key %.40s is not allowed (%" PRIu64
                " refused)", addr, key, r->zap_refused);
    zap_send(r->zap, "1.0", 3, 1);
    zap_send(r->zap, nf > 1 ? f[1] : "", nf > 1 && len[1] <= 64 ? len[1] : 0, 1);
    zap_send(r->zap, role ? "200" : "400", 3, 1);
    const char *text = role ? "OK" : "key not allowed";
    zap_send(r->zap, text, strlen(text), 1);
    zap_send(r->zap, uid, strlen(uid), 1);
    zap_send(r->zap, "", 0, 0);
}

/* What a connection with this key role may send (T2_KEY_NONE: CURVE off, anything). NULL if
 * allowed, else why not. */
static const char *role_forbids(int role, int body) {
    if (role == T2_KEY_NONE) return NULL;
    switch (body) {
    case T2__MSG__BODY_READY:
    case T2__MSG__BODY_CHUNK:
    case T2__MSG__BODY_RESULT:
        return role == T2_KEY_CLIENT ? "a client key may not act as a worker" : NULL;
    case T2__MSG__BODY_REQUEST:
    case T2__MSG__BODY_CANCEL:
        return role == T2_KEY_WORKER ? "a worker key may not submit requests" : NULL;
    default: return NULL;
    }
}

/* Load the keys and turn CURVE on for the router's socket; the ZAP handler's socket first. */
static int setup_curve(router *r) {
    const t2_router_config *cfg = r->cfg;
    t2_curve_pair pair;
    int rc = t2_curve_load_pair(cfg->curve_key, &pair);
    if (rc < 0) return rc;
    for (int k = T2_KEY_CLIENT; k <= T2_KEY_DISPATCHER; k++)
        if (cfg->allow[k][0] && (rc = t2_curve_set_load(&r->allowed[k], cfg->allow[k])) < 0)
            return rc;
    r->zap = zmq_socket(r->ctx, ZMQ_REP);
    if (!r->zap || zmq_bind(r->zap, "inproc://zeromq.zap.01") != 0)
        return t2_err_set(T2_EZMQ, "ZAP handler: %s", zmq_strerror(errno));
    int one = 1;
    if (zmq_setsockopt(r->sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(r->sock, ZMQ_CURVE_SECRETKEY, pair.secret_key, T2_CURVE_KEY_LEN) ||
        zmq_setsockopt(r->sock, ZMQ_ZAP_DOMAIN, "t2", 2))
        rc = t2_err_set(T2_EZMQ, "CURVE: %s", zmq_strerror(errno));
    memset(&pair, 0, sizeof pair);
    if (rc < 0) return rc;
    r->curve = 1;
    T2_INFO("CURVE on: %d client, %d worker, %d dispatcher key(s) allowed",
            r->allowed[T2_KEY_CLIENT].n, r->allowed[T2_KEY_WORKER].n,
            r->allowed[T2_KEY_DISPATCHER].n);
    return 0;
}

/* ---- timers ------------------------------------------------------------------------------- */

/* The progress deadline: a worker that holds a job without a Chunk or Result for progress_ms
 * (a pipeline stuck behind a stopped rank, a worker that heartbeats but never answers) is
 * dropped: reap() requeues its jobs for the other workers. Its late replies are then from a
 * stranger (or, once it registered again, for a job that is no longer its): dropped, so no
 * request is answered twice. */
static void check_progress(router *r) {
    const uint64_t limit = (uint64_t)r->cfg->progress_ms;
    if (!limit) return;
    for (size_t b = 0; b < r->jbuckets; b++)
        for (job *j = r->jtab[b]; j; j = j->hnext) {
            peer *w = j->worker;
            if (j->state != JOB_ASSIGNED || !w || w->dead || w->relay) continue;
            if (r->now - j->progress_at <= limit) continue;
            char ids[200];
            size_t o = 0;
            int k = 0;
            for (job *x = w->wjobs; x && o + 24 < sizeof ids; x = x->qnext, k++)
                o += (size_t)snprintf(ids + o, sizeof ids - o, "%s%" PRIu64 "/%" PRIu64,
                                      k ? " " : "", x->id, x->request_id);
            T2_WARN("worker %s of '%s' made no progress on job %" PRIu64 " (request %" PRIu64
                    ") for %" PRIu64 " ms: dropped, its jobs (job/request: %s%s) requeued",
                    w->tag, w->svc->name, j->id, j->request_id, r->now - j->progress_at, ids,
                    o + 24 >= sizeof ids ? " ..." : "");
            r->c.stalls++;
            mark_dead(r, w, "stalled: no progress within the deadline");
        }
}

static void tick(router *r) {
    uint64_t expiry = (uint64_t)r->cfg->heartbeat_ms * (uint64_t)r->cfg->liveness;
    for (size_t b = 0; b < r->pbuckets; b++)
        for (peer *p = r->ptab[b]; p; p = p->hnext) {
            if (p->dead || r->now - p->last_seen <= expiry) continue;
            if (p->role == PEER_WORKER) {
                r->c.workers_expired++;
                mark_dead(r, p, "missed heartbeats");
            } else {
                if (p->n_cjobs) r->c.clients_vanished++;
                mark_dead(r, p, p->n_cjobs ? "vanished: missed heartbeats" : "idle");
            }
        }
    check_progress(r);
    reap(r);
    for (size_t b = 0; b < r->pbuckets; b++)
        for (peer *p = r->ptab[b]; p; p = p->hnext) send_heartbeat(r, p);
    reap(r);
    /* deadlines: requests out of time, cancels never acknowledged */
    for (size_t b = 0; b < r->jbuckets; b++)
        for (job *j = r->jtab[b], *next; j; j = next) {
            next = j->hnext;
            if (j->state == JOB_CANCELLING) {
                if (r->now >= j->cancel_deadline) {
                    T2_WARN("worker %s did not acknowledge the cancel of job %" PRIu64 "; slot freed",
                            j->worker ? j->worker->tag : "?", j->id);
                    job_free(r, j);
                }
                continue;
            }
            if (!j->deadline || r->now < j->deadline) continue;
            r->c.timeouts++;
            if (j->client && !j->client->dead) {
                peer *c = j->client;
                reply_error(r, c->id, c->id_len, j->request_id, 0, T2_ETIMEOUT,
                            "request timed out after %u ms (%s)", j->req->request->timeout_ms,
                            j->state == JOB_QUEUED ? "still queued" : "at a worker");
            }
            cancel_job(r, j); /* frees a queued job; only ever the current one */
        }
    reap(r);
    dispatch_dirty(r);
}

static void log_stats(router *r, const char *when) {
    T2_INFO("%s: requests=%" PRIu64 " replies=%" PRIu64 " chunks=%" PRIu64 " decode_errors=%" PRIu64
            " requeues=%" PRIu64 " busy=%" PRIu64 " not_found=%" PRIu64 " cancels=%" PRIu64
            " timeouts=%" PRIu64 " workers_expired=%" PRIu64 " clients_vanished=%" PRIu64
            " stalls=%" PRIu64 " workers=%u clients=%u queued=%u in_flight=%u",
            when, r->c.requests, r->c.replies, r->c.chunks, r->c.decode_errors, r->c.requeues,
            r->c.busy, r->c.not_found, r->c.cancels, r->c.timeouts, r->c.workers_expired,
            r->c.clients_vanished, r->c.stalls, r->n_workers, r->n_clients, r->n_queued, r->n_inflight);
}

static void router_free(router *r) {
    for (size_t b = 0; r->jtab && b < r->jbuckets; b++)
        for (job *j = r->jtab[b], *next; j; j = next) {
            next = j->hnext;
            t2_msg_free(j->req);
            free(j);
        }
    for (size_t b = 0; r->ptab && b < r->pbuckets; b++)
        for (peer *p = r->ptab[b], *next; p; p = next) {
            next = p->hnext;
            free(p);
        }
    for (int i = 0; i < r->nsvcs; i++) free(r->svcs[i]);
    for (keyuse *k = r->keys, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    free(r->jtab);
    free(r->ptab);
    t2_msg_arena_destroy(&r->arena);
    if (r->sock) zmq_close(r->sock);
    if (r->zap) zmq_close(r->zap);
    for (int k = 0; k <= T2_KEY_DISPATCHER; k++) t2_curve_set_free(&r->allowed[k]);
    if (r->ctx) zmq_ctx_term(r->ctx);
}

int t2_router_run(const t2_router_config *cfg, volatile sig_atomic_t *stop) {
    int rc = t2_router_config_check(cfg);
    if (rc < 0) return rc;
    router r = {0};
    r.cfg = cfg;
    r.now = t2_wire_now_ms();
    r.epoch = t2_wire_random_u64();
    r.next_job_id = 1;
    r.pbuckets = 64;
    r.jbuckets = 256;
    r.ptab = calloc(r.pbuckets, sizeof *r.ptab);
    r.jtab = calloc(r.jbuckets, sizeof *r.jtab);
    r.ctx = zmq_ctx_new();
    t2_msg_arena_new(&r.arena, 16384);
    if (!r.ptab || !r.jtab || !r.ctx || !r.arena) {
        rc = t2_err_set(T2_ENOMEM, "router: out of memory");
        goto out;
    }
    for (int i = 0; i < cfg->n_services; i++)
        if (!svc_add(&r, cfg->services[i])) {
            rc = t2_err_set(T2_ENOMEM, "router: out of memory");
            goto out;
        }
    r.sock = zmq_socket(r.ctx, ZMQ_ROUTER);
    if (!r.sock) {
        rc = t2_err_set(T2_EZMQ, "zmq_socket: %s", zmq_strerror(errno));
        goto out;
    }
    int one = 1, zero = 0, hwm = 100000;
    int64_t hard = (int64_t)cfg->max_msg * 4; /* beyond this zmq drops the connection */
    zmq_setsockopt(r.sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(r.sock, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    zmq_setsockopt(r.sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(r.sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r.sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(r.sock, ZMQ_MAXMSGSIZE, &hard, sizeof hard);
    if (cfg->curve_key[0] && (rc = setup_curve(&r)) < 0) goto out;
    if (zmq_bind(r.sock, cfg->bind) != 0) {
        rc = t2_err_set(T2_EZMQ, "bind %s: %s", cfg->bind, zmq_strerror(errno));
        goto out;
    }
    T2_INFO("listening on %s: heartbeat %d ms, liveness %d, queue-max %d, max-msg %zu, "
            "%d service(s) declared, epoch %016" PRIx64,
            cfg->bind, cfg->heartbeat_ms, cfg->liveness, cfg->queue_max, cfg->max_msg,
            cfg->n_services, r.epoch);
    uint64_t next_tick = r.now + (uint64_t)cfg->heartbeat_ms;
    uint64_t next_stats = cfg->stats_ms ? r.now + (uint64_t)cfg->stats_ms : UINT64_MAX;
    while (!*stop) {
        r.now = t2_wire_now_ms();
        uint64_t due = next_tick < next_stats ? next_tick : next_stats;
        long wait = due > r.now ? (long)(due - r.now) : 0;
        zmq_pollitem_t items[2] = {{r.sock, 0, ZMQ_POLLIN, 0}, {r.zap, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, r.zap ? 2 : 1, wait);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = t2_err_set(T2_EZMQ, "poll: %s", zmq_strerror(errno));
            break;
        }
        if (n > 0 && r.zap && (items[1].revents & ZMQ_POLLIN)) on_zap(&r);
        if (n > 0 && (items[0].revents & ZMQ_POLLIN) && (rc = drain(&r)) < 0) break;
        r.now = t2_wire_now_ms();
        if (r.now >= next_tick) {
            tick(&r);
            next_tick = r.now + (uint64_t)cfg->heartbeat_ms;
        }
        if (r.now >= next_stats) {
            log_stats(&r, "stats");
            next_stats = r.now + (uint64_t)cfg->stats_ms;
        }
    }
    if (rc == 0) log_stats(&r, "shutdown");
out:
    router_free(&r);
    if (rc == 0) T2_INFO("stopped");
    return rc;
}
