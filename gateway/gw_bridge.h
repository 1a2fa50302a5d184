/* gw_bridge.h - the one thread that owns the gateway's t2_client (t2_client is not
 * thread-safe). The HTTP thread hands it jobs through a locked queue and an eventfd; it submits
 * them, polls the router's socket and the eventfd in one zmq_poll, and fills each job's text /
 * result under the job's mutex. Its waiter, an HTTP connection, is suspended while it has
 * nothing to send; the bridge resumes it through opts.wake when there is news (the first text,
 * more text at most every GW_STREAM_GATHER_MS, the end; every GW_WAKE_MS without news), all
 * those of one turn of its loop together. The bridge also watches the client's socket (j->fd,
 * one epoll set for all): a client that closes it has its job cancelled at once.
 *
 *     lock j->mu; if (nothing to do) { j->asleep = 1; j->t_asleep = now; suspend; } unlock
 *
 *   gw_job *j;
 *   gw_job_new(&j, GW_JOB_GENERATE);          // refs 1: the HTTP side's
 *   j->req = parsed; gw_req_task(&j->req, &j->tb); j->waiter = conn; j->fd = socket;
 *   gw_bridge_submit(b, j);                    // the bridge takes its own ref
 *   ... woken: lock j->mu; look at j->state, j->text; unlock
 *   gw_bridge_cancel(b, j);                    // client gone: cancel (no-op when done)
 *   gw_job_release(&j);
 *
 * The bridge also asks the router for its counters every heartbeat (they feed /metrics and
 * /health) and takes the router for unreachable after liveness + 1 silent heartbeats: jobs in
 * flight then fail with T2_EZMQ ("router unreachable") and new ones at once.
 */
#ifndef GW_BRIDGE_H
#define GW_BRIDGE_H

#include "gw_req.h"
#include "t2_curve.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define GW_MAX_TEXT (4u << 20) /* bytes of generated text kept per request */
/* A stream's connection is woken for its first chunk at once, then with all the text that came
 * meanwhile at the next flush: one flush per this many ms wakes all streams that have news
 * together (40 updates a second at most). A wake-up per token and stream (two context
 * switches, the lock, an SSE event, a send) cost the gateway four times the C client's CPU. */
#define GW_STREAM_GATHER_MS 25
/* A sleeping waiter is woken at least this often (a stream's keep-alive comment, a request's
 * deadline and the gateway's stopping). */
#define GW_WAKE_MS 1000

enum { GW_JOB_GENERATE = 0, GW_JOB_PROBE = 1 };
enum { GW_JOB_NEW = 0, GW_JOB_RUNNING = 1, GW_JOB_DONE = 2 };
enum { GW_FINISH_STOP = 0, GW_FINISH_LENGTH = 1, GW_FINISH_CANCELLED = 2 };

typedef struct gw_job gw_job;
struct gw_job {
    int kind; /* GW_JOB_* */
    /* set before submit, read-only after */
    gw_req req;
    gw_task_buf tb;
    const char *service; /* where it goes (borrowed from the configuration) */
    uint32_t timeout_ms;
    uint64_t t_submit; /* ms, monotonic */
    void *waiter;      /* the HTTP connection that sleeps on the job (opts.wake), NULL: none */
    int fd;            /* its client's socket (-1: none): its closing cancels the job */
    /* shared: under mu */
    pthread_mutex_t mu;
    int asleep;        /* the waiter is suspended: the bridge resumes it on news */
    uint64_t t_asleep; /* ms it went to sleep */
    int refs;
    int state;   /* GW_JOB_* */
    uint64_t id; /* the t2_client request id (bridge) */
    char *text;  /* generated text so far, cut at the first stop string */
    size_t len, cap;
    size_t safe;      /* bytes of text that may be sent (no partial UTF-8, no stop prefix) */
    uint64_t t_first; /* ms of the first chunk (0: none yet) */
    uint64_t t_signal; /* ms the bridge last woke the stream's connection for text (0: never) */
    int pending;       /* text came since then (the next flush wakes it) */
    uint32_t chunk_tokens;
    /* when DONE */
    int code; /* 0, or a T2_E* code */
    char errmsg[512];
    int finish;  /* GW_FINISH_* */
    int stopped; /* cut at a stop string (the job was cancelled) */
    uint32_t prompt_tokens, completion_tokens;
    char label[GW_NAME_MAX + 1]; /* "" = none */
    char mixture[512];           /* "math=0.6,code=0.4", "base", "" = unknown */
    int has_pass1, has_pass2;
    double pass1_ms, pass2_ms;
    char *t2json;      /* the "t2" extension object, JSON text (never NULL when DONE) */
    int dispatcher_ok; /* PROBE: the dispatcher answered */
    gw_job *next;      /* the bridge's queue link */
};

typedef struct gw_bridge gw_bridge;

typedef struct gw_bridge_opts {
    const char *endpoint;
    int heartbeat_ms, liveness;
    const char *service; /* where generate jobs go (the dispatcher's service) */
    const t2_curve_client *curve; /* NULL: plain ZeroMQ; else CURVE with these keys */
    void (*wake)(void *waiter);   /* resume a sleeping waiter (called on the bridge thread) */
} gw_bridge_opts;

/* The router's counters as last seen. */
typedef struct gw_router_view {
    int up;        /* answered within liveness heartbeats */
    int seen;      /* ever answered */
    double age_ms; /* since the last answer */
    uint64_t requests, replies, chunks, decode_errors, requeues, busy, not_found, cancels, timeouts;
    uint32_t workers, clients, queued, in_flight;
} gw_router_view;

int gw_job_new(gw_job **out, int kind);
/* Drop one reference; frees at zero. NULL is fine; *j is set to NULL. */
void gw_job_release(gw_job **j);

/* Start the thread. Returns 0 or T2_ENOMEM / T2_EZMQ / T2_EINVAL (t2_err_msg). */
int gw_bridge_new(gw_bridge **out, const gw_bridge_opts *o);
/* Stop the thread (jobs in flight fail with T2_ECANCELLED), free. NULL is fine. */
void gw_bridge_destroy(gw_bridge **b);
/* Fail every job in flight and wake its waiter; from now on jobs fail at once (the gateway
 * stops: no HTTP connection may stay asleep). Returns when done. */
void gw_bridge_drain(gw_bridge *b);
/* Queue j (the bridge takes a reference). Returns 0 or T2_ENOMEM. */
int gw_bridge_submit(gw_bridge *b, gw_job *j);
/* Cancel j if it has not ended: it ends at once with T2_ECANCELLED. */
void gw_bridge_cancel(gw_bridge *b, gw_job *j);
void gw_bridge_router(gw_bridge *b, gw_router_view *v);

#endif
