/* t2_msg.h - the wire messages: decode, validate, pack.
 *
 * One ZeroMQ frame holds one packed t2.Msg (proto/t2.proto): a version and one body. Every
 * frame from outside goes through t2_msg_decode, which unpacks it with protobuf-c and then
 * checks everything protobuf does not: the version, required fields, enum ranges, string
 * lengths and characters, counts, finite floats. A message that passes can be used without
 * further checks; one that fails is answered with an Error (T2_EPROTO) and counted.
 *
 *   T2__Msg *m; uint64_t rid;
 *   if (t2_msg_decode(buf, len, &m, &rid) < 0) reply_error(rid, T2_EPROTO, t2_err_msg());
 *   else { ...use m->request / m->chunk ...; t2_msg_free(m); }
 *
 * The generated types (T2__Request, ...) come from t2.pb-c.h, generated at build time.
 */
#ifndef T2_MSG_H
#define T2_MSG_H

#include "t2.pb-c.h"

#include "base/t2_limits.h"

#include <stddef.h>
#include <stdint.h>

/* The protocol version this code speaks; a Msg with another version is refused. */
#define T2_PROTO_VERSION 1u

/* ---- limits checked by the validators --------------------------------------------------- */
#define T2_MSG_NAME_MAX ((unsigned)T2_NAME_MAX) /* service / expert / profile / label names */
#define T2_MSG_TEXT_MAX (64u << 20)      /* prompt, chunk and result texts (bytes) */
#define T2_MSG_TOKENS_MAX (1u << 20)     /* token ids in a Task or a Chunk */
#define T2_MSG_TOKEN_ID_MAX 0x7fffffffu  /* token ids fit an int */
#define T2_MSG_MAX_NEW_TOKENS (1u << 20) /* Sampling.max_tokens */
#define T2_MSG_CHUNK_TOKENS_MAX 256u    /* Task.chunk_tokens */
#define T2_MSG_TEMPERATURE_MAX 100.0f
#define T2_MSG_MIX_EXPERTS_MAX 64u       /* experts in one Mixture */
#define T2_MSG_MATRIX_ALPHA_MAX 16384u   /* per-matrix coefficients of one expert */
#define T2_MSG_CHAT_MAX 1024u            /* messages of one conversation */
#define T2_MSG_ALPHA_ABS_MAX 1000.0f     /* |alpha| */
#define T2_MSG_READY_EXPERTS_MAX 256u    /* experts a worker may list in Ready */
#define T2_MSG_CAPACITY_MAX 4096u        /* Ready.capacity */
#define T2_MSG_ERROR_TEXT_MAX 1024u      /* Error.message, Disconnect.reason */

/* Default bound on a whole frame from a client or worker (the router's --max-msg), and the
 * most a router may set; workers and clients accept frames up to T2_MSG_MAX_PEER from it. */
#define T2_MSG_MAX_DEFAULT (4u << 20)
#define T2_MSG_MAX_PEER (256u << 20)

/* What a frame said about itself, as far as it could be read (0 where not). */
typedef struct t2_msg_ids {
    int body_case; /* T2__MSG__BODY_* */
    uint64_t request_id, job_id;
} t2_msg_ids;

/* Unpack and validate one frame. On success returns 0 and *out owns the message (free it with
 * t2_msg_free). On failure returns T2_EPROTO with a message (t2_err_msg) naming what was wrong
 * and *out is NULL. Either way *ids (if not NULL) gets the body kind and ids the frame carried
 * when it could be unpacked, so that an error reply can name the request or job. */
int t2_msg_decode(const void *buf, size_t len, T2__Msg **out, t2_msg_ids *ids);

/* Free a message from t2_msg_decode; NULL is fine. */
void t2_msg_free(T2__Msg *m);

/* Decoding without an allocation per message (a router or dispatcher forwards every chunk):
 * t2_msg_decode_in unpacks into the arena's block instead of malloc. The message lives until
 * the next decode into (or reset of) the same arena; never t2_msg_free it. A message bigger
 * than the block still decodes (the overflow is malloc'd) and the block grows at the next
 * reset to fit it, so a steady stream of messages allocates nothing. One arena, one thread. */
typedef struct t2_msg_arena t2_msg_arena;
/* initial: bytes of the block (a few KiB hold a Chunk or a Heartbeat). 0 or T2_ENOMEM. */
int t2_msg_arena_new(t2_msg_arena **out, size_t initial);
void t2_msg_arena_destroy(t2_msg_arena **a); /* NULL is fine; *a is set to NULL */
/* Forget every message decoded into a (done by t2_msg_decode_in itself). */
void t2_msg_arena_reset(t2_msg_arena *a);
/* t2_msg_decode, into the arena (after resetting it). Same returns. */
int t2_msg_decode_in(t2_msg_arena *a, const void *buf, size_t len, T2__Msg **out,
                     t2_msg_ids *ids);
/* A copy of m of its own (e.g. of one in an arena, to keep): free it with t2_msg_free.
 * 0, T2_ENOMEM, or T2_EPROTO when m is not valid (t2_msg_validate). */
int t2_msg_dup(T2__Msg *m, T2__Msg **out);

/* Validate an envelope (version, exactly one body) and its body. 0 or T2_EPROTO + message. */
int t2_msg_validate(const T2__Msg *m);

/* Validate one body. Each returns 0 or T2_EPROTO with a message. */
int t2_msg_validate_request(const T2__Request *m);
int t2_msg_validate_cancel(const T2__Cancel *m);
int t2_msg_validate_job(const T2__Job *m);
int t2_msg_validate_chunk(const T2__Chunk *m);
int t2_msg_validate_result(const T2__Result *m);
int t2_msg_validate_error(const T2__Error *m);
int t2_msg_validate_heartbeat(const T2__Heartbeat *m);
int t2_msg_validate_ready(const T2__Ready *m);
int t2_msg_validate_disconnect(const T2__Disconnect *m);
int t2_msg_validate_stats(const T2__Stats *m);
int t2_msg_validate_task(const T2__Task *m);
/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF), else 0. */
int t2_msg_utf8_ok(const void *s, size_t n);
/* s[0..n) into out (room for 3 n bytes) with each byte that starts no well-formed sequence
 * replaced by U+FFFD; the length written. */
size_t t2_msg_utf8_repair(const void *in, size_t n, void *out);

/* allow_empty: a Result may report the empty mixture (base weights); a Request may not. */
int t2_msg_validate_mixture(const T2__Mixture *m, int allow_empty);

/* For every body case (T2__MSG__BODY_REQUEST ... T2__MSG__BODY_STATS): its descriptor, and
 * a validator taking the unpacked body. NULL / T2_EINVAL for an unknown case. */
const ProtobufCMessageDescriptor *t2_msg_body_descriptor(int body_case);
int t2_msg_validate_body(int body_case, const ProtobufCMessage *body);

/* "request", "chunk", ...; "none" for NOT_SET, "unknown" otherwise. */
const char *t2_msg_body_name(int body_case);

/* The request id / job id a message's body carries (Request, Cancel, Job, Chunk, Result,
 * Error), or 0. */
uint64_t t2_msg_request_id(const T2__Msg *m);
uint64_t t2_msg_job_id(const T2__Msg *m);

/* Set m->version to T2_PROTO_VERSION and return the packed size. */
size_t t2_msg_prepare(T2__Msg *m);

/* Pack m (after t2_msg_prepare) into a new malloc'd buffer. Returns 0 or T2_ENOMEM; the
 * caller frees *buf. */
int t2_msg_pack_alloc(T2__Msg *m, uint8_t **buf, size_t *len);

#endif
