/* t2_router.h - the T2 broker: a ZeroMQ ROUTER socket between clients and worker groups.
 *
 * Clients send Requests for a service by name; the router queues them per service (bounded:
 * a full queue answers EBUSY at once) and hands each to the worker of that service with the
 * most free capacity. Chunks and the final Result / Error come back through the router to
 * the client, found by job id. Heartbeats flow both ways; a worker that misses `liveness`
 * of them (or whose connection is gone) is dropped and its jobs are requeued; a client that
 * does has its jobs cancelled at the workers. router/README.md describes the protocol.
 *
 *   t2_router_config cfg;
 *   t2_router_config_defaults(&cfg);           // then flags / a config file change fields
 *   if (t2_router_config_check(&cfg) < 0 || t2_router_run(&cfg, &stop_flag) < 0) ...
 */
#ifndef T2_ROUTER_H
#define T2_ROUTER_H

#include "t2_curve.h"
#include "t2_msg.h"

#include <signal.h>
#include <stddef.h>

#define T2_ROUTER_SERVICES_MAX 256 /* services declared + registered by workers */
#define T2_ROUTER_DECLARED_MAX 32  /* --service flags */
#define T2_ROUTER_PATH_MAX 4096    /* key file paths */

/* Every setting of the router, with its default. A libconfig file (later) and the command
 * line fill the same struct. */
typedef struct t2_router_config {
    char bind[256];       /* endpoint to bind: "tcp://127.0.0.1:5555" */
    int heartbeat_ms;     /* heartbeat interval, both ways: 1000 */
    int liveness;         /* missed heartbeats before a peer is dead: 3 */
    int queue_max;        /* waiting requests per service; more are refused EBUSY: 1024 */
    size_t max_msg;       /* largest frame accepted: T2_MSG_MAX_DEFAULT (4 MiB) */
    int stats_ms;         /* log the counters every stats_ms (0: only at shutdown): 10000 */
    int cancel_grace_ms;  /* a cancelled job holds its worker slot until the worker acknowledges
                             or this long: 0 = liveness * heartbeat_ms */
    int n_services;       /* services known from the start (others appear when a worker */
    char services[T2_ROUTER_DECLARED_MAX][T2_MSG_NAME_MAX + 1]; /* registers for them) */
    int progress_ms;      /* a job at a worker with no Chunk or Result for this long is taken
                             back: the worker is dropped and its jobs requeued (the pipeline
                             watchdog's backstop); 0 = off: 300000 (above the longest prefill).
                             Relays (dispatchers) are exempt. */
    int client_max;       /* requests one client (its CURVE key, else its connection) may have
                             queued or running: 256
                             (dispatcher keys are exempt: they carry many users' requests) */
    /* Security (t2_curve.h). curve_key "" = plain ZeroMQ, allowed only on ipc:// and loopback
     * TCP unless `insecure`. With a key, every peer must speak CURVE with a public key listed
     * in allow[role] (role T2_KEY_CLIENT / WORKER / DISPATCHER; "" = none of that role). */
    char curve_key[T2_ROUTER_PATH_MAX];                       /* the router's key pair file */
    char allow[T2_KEY_DISPATCHER + 1][T2_ROUTER_PATH_MAX];    /* allowed public keys by role */
    int insecure;         /* plain TCP on a non-loopback address, knowingly */
    char model_sha256[65]; /* "" = any; else the model every worker must announce */
} t2_router_config;

void t2_router_config_defaults(t2_router_config *cfg);

/* 0, or T2_EINVAL with a message naming the bad setting. */
int t2_router_config_check(const t2_router_config *cfg);

/* Bind and serve until *stop becomes non-zero (a signal handler sets it), then log the
 * counters, close the socket, terminate the ZeroMQ context and return 0. Returns T2_EZMQ
 * (bind failed, ...) or T2_ENOMEM with a message on failure. */
int t2_router_run(const t2_router_config *cfg, volatile sig_atomic_t *stop);

#endif
