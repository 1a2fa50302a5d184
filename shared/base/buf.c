#include "base/buf.h"

#include "base/t2_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int t2_buf_add(t2_buf *b, const void *s, size_t n) {
    if (n > SIZE_MAX / 2 - b->len) return t2_err_set(T2_ENOMEM, "text of %zu bytes: too long", n);
    const size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return t2_err_set(T2_ENOMEM, "out of memory for %zu bytes of text", cap);
        b->data = p;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

void t2_buf_free(t2_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
