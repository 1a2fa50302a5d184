/* t2_err.h - error codes and the last-error message.
 *
 * Every T2 function that can fail returns an int: 0 (T2_OK) on success or a negative
 * T2_E* code. Where the code alone would not tell a user what went wrong, the function
 * also records a one-line message with t2_err_set(); t2_err_msg() returns it (per thread).
 * Tools print that message and exit non-zero.
 *
 *   if ((rc = t2_gguf_open(&g, path)) < 0) { fprintf(stderr, "t2: %s\n", t2_err_msg()); ... }
 */
#ifndef T2_ERR_H
#define T2_ERR_H

#include <stdarg.h>

/* X(name, value, description) */
#define T2_ERRNO_MAP(X)                                                     \
    X(OK, 0, "success")                                                     \
    X(ENOMEM, -1, "out of memory")                                          \
    X(EIO, -2, "input/output error")                                        \
    X(EFORMAT, -3, "malformed file or data")                                \
    X(EINVAL, -4, "invalid argument")                                       \
    X(ERANGE, -5, "value out of range")                                     \
    X(EUNSUPPORTED, -6, "unsupported")                                      \
    X(EMISMATCH, -7, "files or shapes do not match")                        \
    X(ENOTFOUND, -8, "not found")                                           \
    X(EPROTO, -9, "protocol error")                                         \
    X(ETIMEOUT, -10, "timed out")                                           \
    X(EBUSY, -11, "busy")                                                   \
    X(ECANCELLED, -12, "cancelled")                                         \
    X(EMPI, -13, "MPI error")                                               \
    X(EZMQ, -14, "ZeroMQ error")                                            \
    X(EINTERNAL, -15, "internal error")

enum {
#define T2_ERR_ENUM(name, value, desc) T2_##name = value,
    T2_ERRNO_MAP(T2_ERR_ENUM)
#undef T2_ERR_ENUM
};

/* Short description of a code ("malformed file or data"); never NULL. */
const char *t2_strerror(int code);

/* Record a formatted message for the current thread and return `code` unchanged,
 * so that callers can write `return t2_err_set(T2_EFORMAT, "%s: bad magic", path);`. */
int t2_err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int t2_err_vset(int code, const char *fmt, va_list ap);

/* Prefix the current message: "<prefix>: <old message>". Returns `code`. */
int t2_err_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread, or t2_strerror of the last code if none. */
const char *t2_err_msg(void);

/* Forget the last message. */
void t2_err_clear(void);

#endif
