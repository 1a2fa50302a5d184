/* buf.h - a growable byte string (generated text, streamed answers). A zeroed t2_buf is empty;
 * after an append, data holds len bytes and a NUL after them. */
#ifndef T2_BUF_H
#define T2_BUF_H

#include <stddef.h>

typedef struct t2_buf {
    char *data; /* owned (malloc'd); NULL until the first append */
    size_t len; /* bytes, without the NUL */
    size_t cap; /* bytes allocated */
} t2_buf;

/* Append n bytes of s: 0, or T2_ENOMEM with a message (the buffer is unchanged). */
int t2_buf_add(t2_buf *b, const void *s, size_t n);

/* Free the bytes and empty the buffer. */
void t2_buf_free(t2_buf *b);

#endif
