/* gw_bridge.c - the thread that owns the t2_client: a queue of jobs from the HTTP thread, one
 * zmq_poll over the router's socket and an eventfd, the jobs' texts filled as chunks come. */
#include "gw_bridge.h"

#include "base/t2_err.h"
#include "base/t2_log.h"
#include "t2_client.h"
#include "t2_wire.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

struct gw_bridge {
    gw_bridge_opts o;
    t2_client *c;
    int efd;
    int epfd; /* epoll: the sockets of the live jobs' clients, for their closing (EPOLLRDHUP) */
    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* guards queue, cancels, stop, view */
    gw_job *queue, *queue_tail;
    gw_job **cancels;
    size_t n_cancels, cap_cancels;
    int stop;
    int draining, drained; /* gw_bridge_drain: fail every job, new ones at once */
    gw_router_view view;
    uint64_t last_seen; /* ms of the router's last message (start time before) */
    /* the bridge thread's own */
    gw_job **live; /* jobs in flight */
    size_t n_live, cap_live;
    uint64_t last_stats_req;
    int pending;      /* some live stream has text its connection was not woken for */
    uint64_t t_flush; /* ms of the last flush_streams */
    gw_job **wakes; /* jobs whose sleeping waiter is to be resumed (a reference each) */
    size_t n_wakes, cap_wakes;
};

int gw_job_new(gw_job **out, int kind) {
    gw_job *j = calloc(1, sizeof *j);
    if (!j) return t2_err_set(T2_ENOMEM, "out of memory");
    pthread_mutex_init(&j->mu, NULL);
    j->kind = kind;
    j->refs = 1;
    j->fd = -1;
    j->req.endpoint = GW_EP_COMPLETIONS;
    *out = j;
    return 0;
}

void gw_job_release(gw_job **jp) {
    gw_job *j = jp ? *jp : NULL;
    if (!j) return;
    *jp = NULL;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    gw_req_free(&j->req);
    gw_task_buf_free(&j->tb);
    free(j->text);
    free(j->t2json);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* ---- the HTTP side -------------------------------------------------------------------------- */

static void wake(gw_bridge *b) {
    uint64_t one = 1;
    ssize_t n = write(b->efd, &one, sizeof one);
    (void)n; /* a full counter still wakes the thread */
}

int gw_bridge_submit(gw_bridge *b, gw_job *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    j->t_submit = t2_wire_now_ms();
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&b->mu);
    j->next = NULL;
    if (b->queue_tail)
        b->queue_tail->next = j;
    else
        b->queue = j;
    b->queue_tail = j;
    pthread_mutex_unlock(&b->mu);
    wake(b);
    return 0;
}

void gw_bridge_cancel(gw_bridge *b, gw_job *j) {
    pthread_mutex_lock(&j->mu);
    int done = j->state == GW_JOB_DONE;
    if (!done) j->refs++;
    pthread_mutex_unlock(&j->mu);
    if (done) return;
    pthread_mutex_lock(&b->mu);
    if (b->n_cancels == b->cap_cancels) {
        size_t cap = b->cap_cancels ? 2 * b->cap_cancels : 16;
        gw_job **v = realloc(b->cancels, cap * sizeof *v);
        if (!v) { /* the job ends by its deadline instead */
            pthread_mutex_unlock(&b->mu);
            gw_job_release(&j);
            return;
        }
        b->cancels = v;
        b->cap_cancels = cap;
    }
    b->cancels[b->n_cancels++] = j;
    pthread_mutex_unlock(&b->mu);
    wake(b);
}

void gw_bridge_router(gw_bridge *b, gw_router_view *v) {
    pthread_mutex_lock(&b->mu);
    *v = b->view;
    v->age_ms = (double)(t2_wire_now_ms() - b->last_seen);
    pthread_mutex_unlock(&b->mu);
}

/* ---- UTF-8 and stop strings ----------------------------------------------------------------- */

/* The length of s[0..n) without a trailing incomplete UTF-8 sequence. */
static size_t utf8_complete(const char *s, size_t n) {
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0) return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (need > 1 && back + 1 < need) return i - 1;
    return n;
}

/* Cut j's text at the first stop string; 1 if cut. Sets j->safe. Under j->mu. */
static int apply_stops(gw_job *j, size_t from, int final) {
    size_t hold = 0;
    for (int k = 0; k < j->req.n_stop; k++) {
        size_t sl = strlen(j->req.stop[k]);
        if (sl - 1 > hold) hold = sl - 1;
    }
    size_t start = from > hold ? from - hold : 0, best = (size_t)-1;
    for (int k = 0; k < j->req.n_stop; k++) {
        size_t sl = strlen(j->req.stop[k]);
        for (size_t p = start; p + sl <= j->len && p < best; p++)
            if (!memcmp(j->text + p, j->req.stop[k], sl)) {
                best = p;
                break;
            }
    }
    if (best != (size_t)-1) {
        j->len = best;
        j->text[best] = 0;
        j->safe = best;
        return 1;
    }
    size_t s = final ? j->len : (j->len > hold ? j->len - hold : 0);
    j->safe = final ? s : utf8_complete(j->text, s);
    return 0;
}

static int append(gw_job *j, const void *p, size_t n) {
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 1024;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *t = realloc(j->text, cap);
        if (!t) return -1;
        j->text = t;
        j->cap = cap;
    }
    memcpy(j->text + j->len, p, n);
    j->len += n;
    j->text[j->len] = 0;
    return 0;
}

/* ---- the bridge thread ---------------------------------------------------------------------- */

static void build_t2json(gw_job *j, const T2__Result *r) {
    json_t *o = json_object();
    json_object_set_new(o, "adapt", json_string(j->req.adapt_name));
    json_object_set_new(o, "label", j->label[0] ? json_string(j->label) : json_null());
    json_t *mix = json_null();
    if (r && r->mixture) {
        mix = json_array();
        for (size_t i = 0; i < r->mixture->n_experts; i++) {
            const T2__ExpertAlpha *e = r->mixture->experts[i];
            json_t *x = json_object();
            json_object_set_new(x, "expert", json_string(e->expert ? e->expert : ""));
            if (e->n_matrix_alpha) {
                json_t *a = json_array();
                for (size_t k = 0; k < e->n_matrix_alpha; k++)
                    json_array_append_new(a, json_real(e->matrix_alpha[k]));
                json_object_set_new(x, "matrix_alpha", a);
            } else {
                json_object_set_new(x, "alpha", json_real(e->alpha));
            }
            json_array_append_new(mix, x);
        }
    }
    json_object_set_new(o, "mixture", mix);
    json_object_set_new(o, "pass1_ms", j->has_pass1 ? json_real(j->pass1_ms) : json_null());
    json_object_set_new(o, "pass2_ms", j->has_pass2 ? json_real(j->pass2_ms) : json_null());
    if (j->stopped) json_object_set_new(o, "stopped_at_stop_string", json_true());
    free(j->t2json);
    j->t2json = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!j->t2json) j->t2json = strdup("{}");
}

static void mixture_text(const T2__Mixture *m, char *buf, size_t cap) {
    if (!m || !m->n_experts) {
        snprintf(buf, cap, "base");
        return;
    }
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < m->n_experts && n < cap; i++) {
        const T2__ExpertAlpha *e = m->experts[i];
        if (e->n_matrix_alpha)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s=per-matrix", i ? "," : "", e->expert);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%s=%g", i ? "," : "", e->expert,
                                  (double)e->alpha);
    }
}

/* Wake j's waiter (bridge thread, under j->mu): a sleeping HTTP connection is resumed at the
 * end of this turn of the loop (wake_all: one wake-up of the HTTP thread for all streams that
 * have news). An awake one looks at the job under j->mu before it sleeps again. */
static void job_signal(gw_bridge *b, gw_job *j) {
    if (!j->waiter || !j->asleep) return;
    if (b->n_wakes == b->cap_wakes) {
        size_t cap = b->cap_wakes ? 2 * b->cap_wakes : 64;
        gw_job **v = realloc(b->wakes, cap * sizeof *v);
        if (!v) return; /* it is woken by the keep-alive timer instead */
        b->wakes = v;
        b->cap_wakes = cap;
    }
    j->asleep = 0;
    j->refs++;
    b->wakes[b->n_wakes++] = j;
}

/* Resume the waiters signalled this turn. */
static void wake_all(gw_bridge *b) {
    for (size_t i = 0; i < b->n_wakes; i++) {
        b->o.wake(b->wakes[i]->waiter);
        gw_job_release(&b->wakes[i]);
    }
    b->n_wakes = 0;
}

/* End j with DONE (under j->mu), wake its waiter. */
static void finish_locked(gw_bridge *b, gw_job *j, int code, const char *msg) {
    j->code = code;
    if (msg) snprintf(j->errmsg, sizeof j->errmsg, "%s", msg);
    if (!code) apply_stops(j, 0, 1);
    if (!j->t2json) build_t2json(j, NULL);
    j->state = GW_JOB_DONE;
    job_signal(b, j);
}

static void live_remove(gw_bridge *b, size_t i) {
    gw_job *j = b->live[i];
    if (j->fd >= 0) epoll_ctl(b->epfd, EPOLL_CTL_DEL, j->fd, NULL);
    b->live[i] = b->live[--b->n_live];
    gw_job_release(&j);
}

static size_t live_find(gw_bridge *b, uint64_t id) {
    for (size_t i = 0; i < b->n_live; i++)
        if (b->live[i]->id == id) return i;
    return (size_t)-1;
}

static void on_chunk(gw_bridge *b, size_t i, const T2__Chunk *ch) {
    gw_job *j = b->live[i];
    pthread_mutex_lock(&j->mu);
    if (!j->t_first) j->t_first = t2_wire_now_ms();
    j->chunk_tokens += (uint32_t)ch->n_tokens;
    size_t from = j->len;
    int ended = 0;
    if (ch->has_text && append(j, ch->text.data, ch->text.len) < 0) {
        finish_locked(b, j, T2_ENOMEM, "out of memory");
        ended = 1;
    } else if (j->len > GW_MAX_TEXT) {
        j->finish = GW_FINISH_LENGTH;
        finish_locked(b, j, 0, NULL);
        ended = 1;
    } else if (apply_stops(j, from, 0)) {
        j->stopped = 1;
        j->finish = GW_FINISH_STOP;
        j->completion_tokens = j->chunk_tokens;
        finish_locked(b, j, 0, NULL);
        ended = 1;
    } else if (j->req.stream) { /* a whole answer's connection waits for the end only */
        if (!j->t_signal) { /* the first text at once (time to first token) */
            j->t_signal = t2_wire_now_ms();
            job_signal(b, j);
        } else { /* the rest with the next flush */
            j->pending = b->pending = 1;
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (ended) {
        t2_client_cancel(b->c, j->id);
        live_remove(b, i);
    }
}

static void on_result(gw_bridge *b, size_t i, const T2__Result *r) {
    gw_job *j = b->live[i];
    pthread_mutex_lock(&j->mu);
    if (j->kind == GW_JOB_PROBE) {
        j->dispatcher_ok = 1;
        finish_locked(b, j, 0, NULL);
        pthread_mutex_unlock(&j->mu);
        live_remove(b, i);
        return;
    }
    /* the result's text is whole; the chunks were a prefix of it */
    if (r->has_text && r->text.len >= j->len &&
        !memcmp(r->text.data, j->text ? j->text : "", j->len))
        append(j, r->text.data + j->len, r->text.len - j->len);
    j->finish =
        r->finish_reason == T2__FINISH_REASON__FINISH_LENGTH ? GW_FINISH_LENGTH : GW_FINISH_STOP;
    j->prompt_tokens = r->prompt_tokens;
    j->completion_tokens = r->completion_tokens;
    snprintf(j->label, sizeof j->label, "%s", r->label ? r->label : "");
    mixture_text(r->mixture, j->mixture, sizeof j->mixture);
    j->has_pass1 = r->has_pass1_ms;
    j->pass1_ms = r->pass1_ms;
    j->has_pass2 = r->has_pass2_ms;
    j->pass2_ms = r->pass2_ms;
    if (apply_stops(j, 0, 1)) {
        j->stopped = 1;
        j->finish = GW_FINISH_STOP;
    }
    build_t2json(j, r);
    finish_locked(b, j, 0, NULL);
    pthread_mutex_unlock(&j->mu);
    live_remove(b, i);
}

static void on_error(gw_bridge *b, size_t i, int code, const char *msg) {
    gw_job *j = b->live[i];
    pthread_mutex_lock(&j->mu);
    /* a probe: the dispatcher refusing a classification (EINVAL) proves it is there */
    if (j->kind == GW_JOB_PROBE) j->dispatcher_ok = code == T2_EINVAL;
    finish_locked(b, j, code, msg);
    pthread_mutex_unlock(&j->mu);
    live_remove(b, i);
}

static void on_event(gw_bridge *b, const t2_client_event *ev) {
    /* anything from the router shows it alive: a router busy routing chunks may answer the
     * counters late, and its streams must not fail for that */
    pthread_mutex_lock(&b->mu);
    b->last_seen = t2_wire_now_ms();
    pthread_mutex_unlock(&b->mu);
    if (ev->type == T2_CLIENT_STATS) {
        const T2__Stats *s = ev->stats;
        pthread_mutex_lock(&b->mu);
        gw_router_view *v = &b->view;
        v->up = v->seen = 1;
        v->requests = s->requests, v->replies = s->replies, v->chunks = s->chunks;
        v->decode_errors = s->decode_errors, v->requeues = s->requeues, v->busy = s->busy;
        v->not_found = s->not_found, v->cancels = s->cancels, v->timeouts = s->timeouts;
        v->workers = s->workers, v->clients = s->clients, v->queued = s->queued;
        v->in_flight = s->in_flight;
        b->last_seen = t2_wire_now_ms();
        pthread_mutex_unlock(&b->mu);
        return;
    }
    if (ev->type == T2_CLIENT_ERROR && ev->request_id == 0) {
        T2_WARN("router: %s (%s)", ev->message, t2_strerror(ev->code));
        return;
    }
    size_t i = live_find(b, ev->request_id);
    if (i == (size_t)-1) return; /* cancelled meanwhile */
    if (ev->type == T2_CLIENT_CHUNK)
        on_chunk(b, i, ev->chunk);
    else if (ev->type == T2_CLIENT_RESULT)
        on_result(b, i, ev->result);
    else if (ev->type == T2_CLIENT_ERROR)
        on_error(b, i, ev->code, ev->message);
}

static void probe_task(gw_job *j) {
    static char prompt[] = "health probe";
    T2__Task ti = T2__TASK__INIT;
    T2__Sampling si = T2__SAMPLING__INIT;
    j->tb.task = ti;
    j->tb.sampling = si;
    j->tb.task.has_kind = 1;
    j->tb.task.kind = T2__KIND__KIND_CLASSIFY;
    j->tb.task.has_prompt = 1;
    j->tb.task.prompt.data = (uint8_t *)prompt;
    j->tb.task.prompt.len = sizeof prompt - 1;
    j->tb.sampling.has_max_tokens = 1;
    j->tb.sampling.max_tokens = 1;
    j->tb.task.sampling = &j->tb.sampling;
}

static int router_down(gw_bridge *b, uint64_t now) {
    uint64_t limit = (uint64_t)(b->o.liveness + 1) * (uint64_t)b->o.heartbeat_ms;
    pthread_mutex_lock(&b->mu);
    int down = now - b->last_seen > limit;
    if (down) b->view.up = 0;
    pthread_mutex_unlock(&b->mu);
    return down;
}

/* Submit one job from the queue (the bridge holds a reference to it). */
static void start_job(gw_bridge *b, gw_job *j) {
    gw_router_view v;
    gw_bridge_router(b, &v);
    const char *why = NULL;
    pthread_mutex_lock(&b->mu);
    int draining = b->draining;
    pthread_mutex_unlock(&b->mu);
    if (draining)
        why = "the gateway is stopping";
    else if (router_down(b, t2_wire_now_ms()))
        why = "the T2 router is unreachable";
    else if (v.seen && v.workers == 0)
        why = "no worker is registered at the T2 router";
    int rc = 0;
    if (!why) {
        if (j->kind == GW_JOB_PROBE) probe_task(j);
        uint32_t timeout = j->kind == GW_JOB_PROBE ? 1000 : j->timeout_ms;
        rc = t2_client_submit(b->c, j->kind == GW_JOB_PROBE ? b->o.service : j->service,
                              &j->tb.task, timeout, &j->id);
    }
    if (why || rc < 0) {
        pthread_mutex_lock(&j->mu);
        finish_locked(b, j, draining ? T2_ECANCELLED : why ? T2_EZMQ : rc,
                      why ? why : t2_err_msg());
        pthread_mutex_unlock(&j->mu);
        gw_job_release(&j);
        return;
    }
    if (b->n_live == b->cap_live) {
        size_t cap = b->cap_live ? 2 * b->cap_live : 64;
        gw_job **nl = realloc(b->live, cap * sizeof *nl);
        if (!nl) {
            t2_client_cancel(b->c, j->id);
            pthread_mutex_lock(&j->mu);
            finish_locked(b, j, T2_ENOMEM, "out of memory");
            pthread_mutex_unlock(&j->mu);
            gw_job_release(&j);
            return;
        }
        b->live = nl;
        b->cap_live = cap;
    }
    pthread_mutex_lock(&j->mu);
    j->state = GW_JOB_RUNNING;
    pthread_mutex_unlock(&j->mu);
    b->live[b->n_live++] = j;
    /* its client closing its side (FIN) or the connection breaking cancels the job; more
     * bytes from it (a pipelined request) do not wake us */
    struct epoll_event e = {.events = EPOLLRDHUP, .data.u64 = j->id};
    if (j->fd >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, j->fd, &e) < 0)
        T2_DEBUG("epoll_ctl: cannot watch the client of request %" PRIu64, j->id);
}

static void take_work(gw_bridge *b) {
    pthread_mutex_lock(&b->mu);
    gw_job *q = b->queue;
    b->queue = b->queue_tail = NULL;
    gw_job **cancels = b->cancels;
    size_t n_cancels = b->n_cancels;
    b->cancels = NULL;
    b->n_cancels = b->cap_cancels = 0;
    pthread_mutex_unlock(&b->mu);
    /* cancels of live jobs first: a cancelled job's socket may be closed and its number
     * reused by a new job's client (live_remove stops watching the number); then the new
     * jobs, then the cancels of those among them */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n_cancels; k++) {
            gw_job *j = cancels[k];
            size_t i = j ? live_find(b, j->id) : (size_t)-1;
            if (i != (size_t)-1 && b->live[i] == j) {
                t2_client_cancel(b->c, j->id);
                pthread_mutex_lock(&j->mu);
                finish_locked(b, j, T2_ECANCELLED, "cancelled: the HTTP client went away");
                pthread_mutex_unlock(&j->mu);
                live_remove(b, i);
            }
            if (j && (i != (size_t)-1 || pass == 1)) gw_job_release(&cancels[k]);
        }
        while (pass == 0 && q) {
            gw_job *next = q->next;
            start_job(b, q);
            q = next;
        }
    }
    free(cancels);
}

static void fail_all(gw_bridge *b, int code, const char *why) {
    while (b->n_live) {
        gw_job *j = b->live[b->n_live - 1];
        t2_client_cancel(b->c, j->id);
        pthread_mutex_lock(&j->mu);
        finish_locked(b, j, code, why);
        pthread_mutex_unlock(&j->mu);
        live_remove(b, b->n_live - 1);
    }
}

/* Wake every stream that has new text, at most once per GW_STREAM_GATHER_MS for all of them
 * together (one wake-up of the HTTP thread sends them all). Returns the ms until the flush is
 * due, or -1 when it was done. */
static int flush_streams(gw_bridge *b) {
    uint64_t now = t2_wire_now_ms();
    uint64_t due = b->t_flush + GW_STREAM_GATHER_MS;
    if (now < due) return (int)(due - now);
    b->t_flush = now;
    b->pending = 0;
    for (size_t i = 0; i < b->n_live; i++) {
        gw_job *j = b->live[i];
        pthread_mutex_lock(&j->mu);
        if (j->pending) {
            j->t_signal = now;
            j->pending = 0;
            job_signal(b, j);
        }
        pthread_mutex_unlock(&j->mu);
    }
    return -1;
}

/* Wake the HTTP connections that have slept GW_WAKE_MS on a live job with no news: a stream
 * sends a keep-alive comment, a waiting request looks at its deadline and at stopping. */
static void wake_sleepers(gw_bridge *b, uint64_t now) {
    for (size_t i = 0; i < b->n_live; i++) {
        gw_job *j = b->live[i];
        pthread_mutex_lock(&j->mu);
        if (j->asleep && now - j->t_asleep >= GW_WAKE_MS) job_signal(b, j);
        pthread_mutex_unlock(&j->mu);
    }
}

static void periodic(gw_bridge *b) {
    uint64_t now = t2_wire_now_ms();
    wake_sleepers(b, now);
    if (now - b->last_stats_req >= (uint64_t)b->o.heartbeat_ms) {
        t2_client_request_stats(b->c);
        b->last_stats_req = now;
    }
    if (b->n_live && router_down(b, now)) {
        T2_WARN("the router has not answered for %d heartbeats: failing %zu request(s)",
                b->o.liveness + 1, b->n_live);
        fail_all(b, T2_EZMQ, "the T2 router is unreachable");
    }
}

/* Clients that closed their side or whose connection broke: cancel their jobs. */
static void clients_gone(gw_bridge *b) {
    struct epoll_event ev[64];
    int n = epoll_wait(b->epfd, ev, 64, 0);
    for (int k = 0; k < n; k++) {
        size_t i = live_find(b, ev[k].data.u64);
        if (i == (size_t)-1) continue;
        gw_job *j = b->live[i];
        t2_client_cancel(b->c, j->id);
        pthread_mutex_lock(&j->mu);
        finish_locked(b, j, T2_ECANCELLED, "the client went away");
        pthread_mutex_unlock(&j->mu);
        live_remove(b, i);
    }
}

static void *bridge_main(void *arg) {
    gw_bridge *b = arg;
    t2_client_event ev = {0};
    int timeout = b->o.heartbeat_ms / 2 > 10 ? b->o.heartbeat_ms / 2 : 10, due = -1;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        int stop = b->stop, draining = b->draining && !b->drained;
        pthread_mutex_unlock(&b->mu);
        if (stop) break;
        zmq_pollitem_t it[3] = {{t2_client_socket(b->c), 0, ZMQ_POLLIN, 0},
                                {NULL, b->efd, ZMQ_POLLIN, 0},
                                {NULL, b->epfd, ZMQ_POLLIN, 0}};
        zmq_poll(it, 3, due >= 0 && due < timeout ? due : timeout);
        if (it[2].revents) clients_gone(b);
        if (it[1].revents & ZMQ_POLLIN) {
            uint64_t v;
            ssize_t r = read(b->efd, &v, sizeof v);
            (void)r;
        }
        take_work(b);
        int got;
        while ((got = t2_client_recv(b->c, &ev, 0)) == 1)
            on_event(b, &ev);
        t2_client_event_clear(&ev);
        due = b->pending ? flush_streams(b) : -1;
        periodic(b);
        if (draining) fail_all(b, T2_ECANCELLED, "the gateway is stopping");
        wake_all(b);
        if (draining) {
            pthread_mutex_lock(&b->mu);
            b->drained = 1;
            pthread_mutex_unlock(&b->mu);
        }
    }
    take_work(b);
    fail_all(b, T2_ECANCELLED, "the gateway is shutting down");
    wake_all(b);
    return NULL;
}

void gw_bridge_drain(gw_bridge *b) {
    pthread_mutex_lock(&b->mu);
    b->draining = 1;
    pthread_mutex_unlock(&b->mu);
    wake(b);
    for (int done = 0; !done;) {
        pthread_mutex_lock(&b->mu);
        done = b->drained || !b->started;
        pthread_mutex_unlock(&b->mu);
        if (!done) usleep(1000);
    }
}

int gw_bridge_new(gw_bridge **out, const gw_bridge_opts *o) {
    *out = NULL;
    gw_bridge *b = calloc(1, sizeof *b);
    if (!b) return t2_err_set(T2_ENOMEM, "out of memory");
    b->o = *o;
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    pthread_mutex_init(&b->mu, NULL);
    b->last_seen = t2_wire_now_ms();
    t2_client_opts co = t2_client_opts_default();
    co.heartbeat_ms = o->heartbeat_ms;
    co.liveness = o->liveness;
    co.curve = o->curve; /* copied by t2_client_new */
    int rc = b->efd < 0 || b->epfd < 0 ? t2_err_set(T2_EIO, "eventfd / epoll_create failed") : 0;
    if (rc == 0) rc = t2_client_new(&b->c, NULL, o->endpoint, &co);
    if (rc == 0 && pthread_create(&b->thread, NULL, bridge_main, b) != 0)
        rc = t2_err_set(T2_ENOMEM, "cannot start the bridge thread");
    if (rc < 0) {
        gw_bridge_destroy(&b);
        return rc;
    }
    b->started = 1;
    *out = b;
    return 0;
}

void gw_bridge_destroy(gw_bridge **bp) {
    gw_bridge *b = bp ? *bp : NULL;
    if (!b) return;
    *bp = NULL;
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->stop = 1;
        pthread_mutex_unlock(&b->mu);
        wake(b);
        pthread_join(b->thread, NULL);
    }
    t2_client_destroy(&b->c);
    if (b->efd >= 0) close(b->efd);
    if (b->epfd >= 0) close(b->epfd);
    free(b->live);
    free(b->cancels);
    free(b->wakes);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
