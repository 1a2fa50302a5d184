/* t2_worker_api.h - the worker side of the T2 router protocol.
 *
 * A worker (a worker group's head rank, a dispatcher, a test echo worker) connects to the
 * router, says which service it serves and how many jobs it can hold at once, and then loops:
 *
 *   t2_worker_opts o = t2_worker_opts_default("generate");
 *   o.capacity = 4;
 *   t2_worker *w;
 *   if (t2_worker_new(&w, NULL, "tcp://127.0.0.1:5555", &o) < 0) die(t2_err_msg());
 *   while (!stop) {
 *       t2_job *job;
 *       if (t2_worker_recv(w, &job, 100) <= 0) continue;       // 0: nothing yet
 *       const T2__Task *task = t2_job_msg(job)->task;          // prompt, sampling, mixture
 *       for (each piece of output)
 *           if (t2_worker_send_chunk(w, job, text, len, NULL, 0) < 0) break;  // cancelled
 *       T2__Result res = T2__RESULT__INIT; ...fill text, counts...;
 *       t2_worker_send_result(w, job, &res);
 *       t2_job_destroy(&job);
 *   }
 *   t2_worker_destroy(&w);
 *
 * Behind those calls the object sends Ready on every (re)connection, heartbeats every
 * heartbeat_ms, treats a router silent for `liveness` intervals as dead (closes the socket,
 * reconnects with a backoff of reconnect_ms doubling up to reconnect_max_ms), registers again
 * when the router restarted (a new epoch in its heartbeats) or said it does not know us, and
 * answers Cancels. Every call (recv, the sends, t2_worker_cancelled) does that housekeeping,
 * so call one of them at least every heartbeat_ms, also while computing a long job.
 *
 * Jobs from before a reconnection are orphaned: the router has given them to someone else,
 * and sends for them return T2_ECANCELLED without sending anything.
 *
 * Several jobs may be held at once (up to capacity); a dispatcher that is also a client
 * shares one ZeroMQ context (zctx) between its t2_worker and its t2_client and polls both
 * sockets (t2_worker_socket, t2_client_socket) in one zmq_poll.
 * Not thread-safe: one thread uses one t2_worker.
 */
#ifndef T2_WORKER_API_H
#define T2_WORKER_API_H

#include "t2_curve.h"
#include "t2_msg.h"

#include <stddef.h>
#include <stdint.h>

typedef struct t2_worker t2_worker;
typedef struct t2_job t2_job;

typedef struct t2_worker_opts {
    const char *service;      /* required: the service served ("generate", "classify") */
    uint32_t capacity;        /* jobs held at once: 1 */
    const char *name;         /* for the router's logs: NULL */
    const char *model_sha256; /* NULL or 64 lowercase hex digits */
    const char *const *experts; /* expert names held (n_experts of them) */
    size_t n_experts;
    int heartbeat_ms;         /* 1000; must match the router's */
    int liveness;             /* 3 */
    int reconnect_ms;         /* first reconnection delay: 250 */
    int reconnect_max_ms;     /* backoff cap: 8000 */
    const t2_curve_client *curve; /* NULL: plain; else CURVE with these keys (copied) */
    int relay;                /* 1: a dispatcher (its jobs wait on other services; the
                                 router's progress deadline does not apply): 0 */
} t2_worker_opts;

/* The defaults above for `service`. */
t2_worker_opts t2_worker_opts_default(const char *service);

/* Create a worker and connect it. zctx: a ZeroMQ context to share, or NULL for a private
 * one. The options are copied. Returns 0, or T2_EINVAL / T2_ENOMEM / T2_EZMQ with a message;
 * *out is NULL on failure. */
int t2_worker_new(t2_worker **out, void *zctx, const char *endpoint, const t2_worker_opts *opts);

/* Say goodbye (the router requeues our unfinished jobs at once), close, free; NULL is fine;
 * *w is set to NULL. Destroy the jobs first: a job outliving its worker can only be freed. */
void t2_worker_destroy(t2_worker **w);

/* Wait up to timeout_ms (0: do not wait, -1: forever) for a job. Returns 1 with *job (owned
 * by the caller: t2_job_destroy), 0 when none came in time or a signal interrupted the wait,
 * or T2_EZMQ when the context was terminated. */
int t2_worker_recv(t2_worker *w, t2_job **job, int timeout_ms);

/* Stream a piece of output (text bytes and/or token ids) for a job. Returns 0, T2_ECANCELLED
 * when the job was cancelled (the acknowledgement is sent for you; stop working on it and
 * destroy it), or T2_EZMQ / T2_EINVAL. */
int t2_worker_send_chunk(t2_worker *w, t2_job *job, const void *text, size_t len,
                         const uint32_t *tokens, size_t n_tokens);

/* The final answer. res is read, not kept; its request_id / job_id / chunks fields are
 * filled in here. Returns 0 (also when the job had been cancelled: a result acknowledges
 * the cancel), T2_ECANCELLED for an orphaned job, T2_EINVAL if the job already had its final
 * reply, or T2_EZMQ. */
int t2_worker_send_result(t2_worker *w, t2_job *job, const T2__Result *res);

/* The final answer is a failure: code is a T2_E* value. Same returns as send_result. */
int t2_worker_send_error(t2_worker *w, t2_job *job, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Housekeeping without waiting, then: 1 if the job was cancelled (or orphaned), else 0.
 * For long computations between chunks. */
int t2_worker_cancelled(t2_worker *w, const t2_job *job);

/* Heartbeats and incoming messages without waiting (for long computations). */
void t2_worker_pump(t2_worker *w);

/* The job's message (job id, request id, service, task, attempt, time left). Borrowed:
 * valid until t2_job_destroy. */
const T2__Job *t2_job_msg(const t2_job *job);

/* 1 if the router cancelled the job (its client cancelled, vanished or ran out of time),
 * 0 otherwise (also for a job orphaned by a reconnection). Does no housekeeping. */
int t2_job_was_cancelled(const t2_job *job);

/* Free a job; NULL is fine; *job is set to NULL. A job destroyed without a final reply gets
 * one sent for it (Error T2_EINTERNAL), so that its client is never left waiting. */
void t2_job_destroy(t2_job **job);

/* The ZeroMQ socket, for a zmq_poll of several sockets (ZMQ_POLLIN, then t2_worker_recv
 * with timeout 0). It changes on reconnection: fetch it again before every poll, and poll
 * with a timeout of at most heartbeat_ms. NULL while waiting to reconnect. */
void *t2_worker_socket(t2_worker *w);

/* Counters for tests and logs. */
typedef struct t2_worker_stats {
    uint64_t jobs, cancels, reconnects, registrations, bad_messages;
} t2_worker_stats;
void t2_worker_get_stats(const t2_worker *w, t2_worker_stats *st);

#endif
