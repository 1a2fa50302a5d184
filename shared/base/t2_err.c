#include "base/t2_err.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char err_buf[1024];
static _Thread_local int err_code;

const char *t2_strerror(int code) {
    switch (code) {
#define T2_ERR_CASE(name, value, desc) \
    case value:                        \
        return desc;
        T2_ERRNO_MAP(T2_ERR_CASE)
#undef T2_ERR_CASE
    }
    return "unknown error";
}

int t2_err_vset(int code, const char *fmt, va_list ap) {
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    err_code = code;
    return code;
}

int t2_err_set(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    t2_err_vset(code, fmt, ap);
    va_end(ap);
    return code;
}

int t2_err_prefix(int code, const char *fmt, ...) {
    char prefix[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", err_buf[0] ? err_buf : t2_strerror(code));
    /* prefix, ": ", old message; cut at the buffer's end */
    size_t n = strlen(prefix);
    memcpy(err_buf, prefix, n + 1);
    if (n + 2 < sizeof err_buf) {
        memcpy(err_buf + n, ": ", 3);
        size_t room = sizeof err_buf - n - 3, m = strlen(old);
        if (m > room) m = room;
        memcpy(err_buf + n + 2, old, m);
        err_buf[n + 2 + m] = 0;
    }
    err_code = code;
    return code;
}

const char *t2_err_msg(void) {
    if (err_buf[0]) return err_buf;
    return t2_strerror(err_code);
}

void t2_err_clear(void) {
    err_buf[0] = 0;
    err_code = 0;
}
