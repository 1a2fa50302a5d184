/* t2_wire.h - small helpers shared by the router, the worker API and the client library:
 * a monotonic clock, random ids, and sending / receiving one t2.Msg per ZeroMQ frame.
 * Every send is non-blocking (ZMQ_DONTWAIT): a peer that does not read never stalls us. */
#ifndef T2_WIRE_H
#define T2_WIRE_H

#include "t2_curve.h"
#include "t2_msg.h"

#include <stddef.h>
#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t t2_wire_now_ms(void);

/* A random non-zero 64-bit number (getrandom, falling back to the clock). */
uint64_t t2_wire_random_u64(void);

/* Pack m (its version is set here) and send it: as one frame on a DEALER socket (ident NULL),
 * or as [ident, frame] on a ROUTER socket. Returns 0, T2_ENOMEM, or T2_EZMQ with zmq's errno
 * left in errno (EAGAIN: peer's queue full; EHOSTUNREACH: no such peer on a ROUTER). */
int t2_wire_send(void *sock, const void *ident, size_t ident_len, T2__Msg *m);
/* A Disconnect (goodbye) with this reason, from a DEALER socket to the router. */
int t2_wire_send_goodbye(void *sock, const char *reason);

/* Send an Error{request_id, job_id, code, message}. Same returns as t2_wire_send. */
int t2_wire_send_error(void *sock, const void *ident, size_t ident_len, uint64_t request_id,
                       uint64_t job_id, int code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Receive one message from a DEALER socket without waiting. Returns 1 with *out (owned by
 * the caller: t2_msg_free), 0 when nothing is waiting, T2_EPROTO for a message that was
 * consumed but is bad (too big, several frames, undecodable: t2_err_msg says which; *ids, if
 * not NULL, says what it could read of it), or T2_EZMQ on a socket error (errno from zmq).
 * max_len 0: T2_MSG_MAX_PEER. */
int t2_wire_recv(void *sock, T2__Msg **out, size_t max_len, t2_msg_ids *ids);

/* t2_wire_recv decoding into an arena (no allocation per message): *out lives until the next
 * decode into the arena; never t2_msg_free it. */
int t2_wire_recv_in(void *sock, t2_msg_arena *arena, T2__Msg **out, size_t max_len,
                    t2_msg_ids *ids);

/* A new DEALER socket with a random routing id, the given linger, connected to endpoint.
 * NULL on failure (t2_err_msg says why). */
void *t2_wire_dealer(void *zctx, const char *endpoint, int linger_ms);
/* The same, speaking CURVE to the router when curve is not NULL (t2_curve.h). */
void *t2_wire_dealer_curve(void *zctx, const char *endpoint, int linger_ms,
                           const t2_curve_client *curve);

#endif
