/* t2_client.h - the client library of the T2 router.
 *
 * One object, one connection, many requests in flight:
 *
 *   t2_client *c;
 *   if (t2_client_new(&c, NULL, "tcp://127.0.0.1:5555", NULL) < 0) die(t2_err_msg());
 *   uint64_t id;
 *   t2_client_submit_prompt(c, "generate", "Once upon a time", 64, &id);
 *   t2_client_event ev = {0};                           // zeroed once before the first recv
 *   while (t2_client_recv(c, &ev, 1000) >= 0) {
 *       if (ev.type == T2_CLIENT_CHUNK) fwrite(ev.chunk->text.data, 1, ev.chunk->text.len, stdout);
 *       if (ev.type == T2_CLIENT_RESULT || ev.type == T2_CLIENT_ERROR) break;
 *   }
 *   t2_client_event_clear(&ev);
 *   t2_client_destroy(&c);
 *
 * Every request ends with exactly one RESULT or ERROR event (after any number of CHUNK
 * events, in order, each once), unless it was cancelled with t2_client_cancel, after which
 * nothing more comes for it.
 *
 * A new connection starts with a handshake: the client says hello (a heartbeat) and the
 * router answers with its epoch; requests submitted before that answer are sent when it
 * arrives (inside t2_client_recv), so a request only ever goes to a router whose epoch is
 * known. The library keeps the connection alive while recv is called: heartbeats every
 * heartbeat_ms (the router cancels the requests of a client silent for `liveness`
 * intervals, so call recv at least that often while requests are in flight). When the
 * router goes silent or restarts (a new epoch), it reconnects and resubmits every request in
 * flight; chunks already delivered are not delivered again (the seed is fixed at submit, so
 * the new run streams the same tokens). A request that had already finished at a router
 * which then restarted, with its reply lost, runs again: at-least-once around a restart,
 * exactly one RESULT or ERROR event always.
 * Not thread-safe: one thread uses one t2_client.
 */
#ifndef T2_CLIENT_H
#define T2_CLIENT_H

#include "t2_curve.h"
#include "t2_msg.h"

#include <stddef.h>
#include <stdint.h>

typedef struct t2_client t2_client;

typedef struct t2_client_opts {
    int heartbeat_ms; /* 1000; must match the router's */
    int liveness;     /* 3 */
    const t2_curve_client *curve; /* NULL: plain; else CURVE with these keys (copied) */
} t2_client_opts;

t2_client_opts t2_client_opts_default(void);

/* Connect. zctx: a ZeroMQ context to share (a dispatcher's t2_worker and t2_client), or NULL
 * for a private one. opts NULL: defaults. Returns 0 or T2_EINVAL / T2_ENOMEM / T2_EZMQ. */
int t2_client_new(t2_client **out, void *zctx, const char *endpoint, const t2_client_opts *opts);

/* Say goodbye (the router cancels our requests at once), close, free. NULL is fine; *c is
 * set to NULL. */
void t2_client_destroy(t2_client **c);

/* Submit a task to a service. task is read, not kept (it is packed here). timeout_ms: 0 for
 * none, else the request ends with an ERROR T2_ETIMEOUT when not answered in time. A task
 * without a sampling seed gets a random one. *request_id receives the new request's id.
 * Returns 0, or T2_EINVAL (the request would be refused: t2_err_msg says why), T2_ENOMEM,
 * T2_EZMQ. */
int t2_client_submit(t2_client *c, const char *service, const T2__Task *task, uint32_t timeout_ms,
                     uint64_t *request_id);

/* Shorthand: a generate task for a text prompt; max_tokens 0: the worker's default. */
int t2_client_submit_prompt(t2_client *c, const char *service, const char *prompt,
                            uint32_t max_tokens, uint64_t *request_id);

/* Stop a request: the router cancels it at its worker; no event comes for it any more.
 * Returns 0, or T2_ENOTFOUND if it is not in flight. */
int t2_client_cancel(t2_client *c, uint64_t request_id);

/* Ask the router for its counters; the answer comes as a T2_CLIENT_STATS event. */
int t2_client_request_stats(t2_client *c);

enum {
    T2_CLIENT_NONE = 0,
    T2_CLIENT_CHUNK = 1,  /* chunk: a piece of a request's stream */
    T2_CLIENT_RESULT = 2, /* result: the request's final answer */
    T2_CLIENT_ERROR = 3,  /* code, message: the request failed (request_id 0: not about one
                             request, e.g. the router could not decode something we sent) */
    T2_CLIENT_STATS = 4,  /* stats: the router's counters */
};

typedef struct t2_client_event {
    int type;
    uint64_t request_id;
    const T2__Chunk *chunk;   /* CHUNK */
    const T2__Result *result; /* RESULT */
    const T2__Stats *stats;   /* STATS */
    int code;                 /* ERROR: a T2_E* code */
    const char *message;      /* ERROR: what went wrong; never NULL */
    /* private: what the pointers above point into */
    T2__Msg *msg_;
    char text_[256];
} t2_client_event;

/* Wait up to timeout_ms (0: do not wait, -1: forever) for the next event. Returns 1 with
 * *ev filled (its pointers valid until the next recv or t2_client_event_clear on it, and a
 * CHUNK's also until t2_client_destroy: chunks are decoded into the client's arena, with no
 * allocation per chunk), 0 when
 * none came in time or a signal interrupted the wait, or T2_EZMQ when the context was
 * terminated. ev must be zeroed before its first use. */
int t2_client_recv(t2_client *c, t2_client_event *ev, int timeout_ms);

/* Free what an event holds (and zero it). */
void t2_client_event_clear(t2_client_event *ev);

/* Requests in flight (submitted, not yet ended or cancelled). */
size_t t2_client_pending(const t2_client *c);

/* The ZeroMQ socket, for a zmq_poll of several sockets (ZMQ_POLLIN, then t2_client_recv with
 * timeout 0). It changes on reconnection: fetch it again before every poll, and poll with a
 * timeout of at most heartbeat_ms. */
void *t2_client_socket(t2_client *c);

/* Counters for tests and logs. */
typedef struct t2_client_stats {
    uint64_t submitted, results, errors, chunks, duplicate_chunks, reconnects, resubmits,
        bad_messages;
} t2_client_stats;
void t2_client_get_stats(const t2_client *c, t2_client_stats *st);

#endif
