/* t2_wire.c - see t2_wire.h. */
#include "t2_wire.h"

#include "base/t2_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <zmq.h>

uint64_t t2_wire_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t t2_wire_random_u64(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static uint64_t counter;
        v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (++counter * 0x9e3779b97f4a7c15ull);
    }
    return v ? v : 1;
}

int t2_wire_send(void *sock, const void *ident, size_t ident_len, T2__Msg *m) {
    size_t n = t2_msg_prepare(m);
    zmq_msg_t frame;
    if (zmq_msg_init_size(&frame, n) != 0)
        return t2_err_set(T2_ENOMEM, "cannot allocate a %zu-byte frame", n);
    t2__msg__pack(m, zmq_msg_data(&frame));
    if (ident && zmq_send(sock, ident, ident_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&frame);
        errno = e;
        return t2_err_set(T2_EZMQ, "send: %s", zmq_strerror(e));
    }
    if (zmq_msg_send(&frame, sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&frame);
        errno = e;
        return t2_err_set(T2_EZMQ, "send: %s", zmq_strerror(e));
    }
    return 0;
}

int t2_wire_send_error(void *sock, const void *ident, size_t ident_len, uint64_t request_id,
                       uint64_t job_id, int code, const char *fmt, ...) {
    char text[T2_MSG_ERROR_TEXT_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* keep the reply valid UTF-8 whatever was quoted: replace non-ASCII bytes */
    for (char *p = text; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20) *p = '?';
    T2__Error err = T2__ERROR__INIT;
    err.has_request_id = request_id != 0;
    err.request_id = request_id;
    err.has_job_id = job_id != 0;
    err.job_id = job_id;
    err.has_code = 1;
    err.code = code;
    err.message = text;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_ERROR;
    m.error = &err;
    return t2_wire_send(sock, ident, ident_len, &m);
}

static int recv_with(void *sock, t2_msg_arena *arena, T2__Msg **out, size_t max_len,
                     t2_msg_ids *ids);

int t2_wire_recv(void *sock, T2__Msg **out, size_t max_len, t2_msg_ids *ids) {
    return recv_with(sock, NULL, out, max_len, ids);
}

int t2_wire_recv_in(void *sock, t2_msg_arena *arena, T2__Msg **out, size_t max_len,
                    t2_msg_ids *ids) {
    return recv_with(sock, arena, out, max_len, ids);
}

static int recv_with(void *sock, t2_msg_arena *arena, T2__Msg **out, size_t max_len,
                     t2_msg_ids *ids) {
    *out = NULL;
    if (ids) memset(ids, 0, sizeof *ids);
    if (!max_len) max_len = T2_MSG_MAX_PEER;
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&frame);
        if (e == EAGAIN || e == EINTR) return 0;
        errno = e;
        return t2_err_set(T2_EZMQ, "recv: %s", zmq_strerror(e));
    }
    int frames = 1;
    while (zmq_msg_more(&frame)) { /* swallow the rest of a multi-frame message */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        if (zmq_msg_recv(&extra, sock, 0) >= 0) frames++;
        int more = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        if (!more) break;
    }
    int rc;
    size_t n = zmq_msg_size(&frame);
    if (frames != 1)
        rc = t2_err_set(T2_EPROTO, "message of %d frames (the protocol uses one)", frames);
    else if (n > max_len)
        rc = t2_err_set(T2_EPROTO, "message of %zu bytes (at most %zu)", n, max_len);
    else
        rc = (arena ? t2_msg_decode_in(arena, zmq_msg_data(&frame), n, out, ids)
                    : t2_msg_decode(zmq_msg_data(&frame), n, out, ids)) < 0
                 ? T2_EPROTO
                 : 1;
    zmq_msg_close(&frame);
    return rc;
}

int t2_wire_send_goodbye(void *sock, const char *reason) {
    T2__Disconnect d = T2__DISCONNECT__INIT;
    d.reason = (char *)reason;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_DISCONNECT;
    m.disconnect = &d;
    return t2_wire_send(sock, NULL, 0, &m);
}

void *t2_wire_dealer(void *zctx, const char *endpoint, int linger_ms) {
    return t2_wire_dealer_curve(zctx, endpoint, linger_ms, NULL);
}

void *t2_wire_dealer_curve(void *zctx, const char *endpoint, int linger_ms,
                           const t2_curve_client *curve) {
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    if (!s) {
        t2_err_set(T2_EZMQ, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    uint64_t id[2] = {t2_wire_random_u64(), t2_wire_random_u64()};
    int hwm = 100000;
    zmq_setsockopt(s, ZMQ_ROUTING_ID, id, sizeof id);
    zmq_setsockopt(s, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (curve && (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, curve->server_key, T2_CURVE_KEY_LEN) ||
                  zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, curve->pair.public_key,
                                 T2_CURVE_KEY_LEN) ||
                  zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, curve->pair.secret_key,
                                 T2_CURVE_KEY_LEN))) {
        t2_err_set(T2_EZMQ, "CURVE keys: %s", zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (zmq_connect(s, endpoint) != 0) {
        t2_err_set(T2_EZMQ, "connect %s: %s", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}
