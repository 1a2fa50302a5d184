/* json.h - a small, strict JSON (RFC 8259) parser for the data-set rows T2 reads, a JSON Lines
 * reader, and a string writer.
 *
 * Parsing builds a tree of t2_json values. Strings are decoded to UTF-8 (escapes, including
 * \uXXXX surrogate pairs; raw bytes must be valid UTF-8), numbers are doubles (out-of-range
 * numbers are errors, not infinities), and every limit is checked: nesting depth, input size,
 * elements per container. Errors are T2_EFORMAT (bad syntax), T2_ERANGE (a limit) or
 * T2_ENOMEM, with t2_err_msg() giving "line L, column C: what" (1-based).
 *
 *   t2_json *v;
 *   if (t2_json_parse(text, len, NULL, &v) < 0) { fprintf(stderr, "%s\n", t2_err_msg()); ... }
 *   const char *q = t2_json_get_str(v, "question");   // NULL if absent or not a string
 *   t2_json_free(&v);
 *
 * JSON Lines: t2_jsonl_read() calls a function for each non-blank line, and reports a bad row
 * as "PATH:LINE: line 1, column C: what" (or the callback's own message, prefixed the same way).
 */
#ifndef T2_JSON_H
#define T2_JSON_H

#include <stddef.h>
#include <stdio.h>

#define T2_JSON_MAX_DEPTH 64          /* default nesting limit */
#define T2_JSON_MAX_BYTES (64u << 20) /* default input limit: 64 MiB */
#define T2_JSON_MAX_ITEMS (1u << 20)  /* default elements per array / object */

typedef enum t2_json_type {
    T2_JSON_NULL,
    T2_JSON_FALSE,
    T2_JSON_TRUE,
    T2_JSON_NUMBER,
    T2_JSON_STRING,
    T2_JSON_ARRAY,
    T2_JSON_OBJECT,
} t2_json_type;

typedef struct t2_json t2_json;
struct t2_json {
    t2_json_type type;
    double number;  /* NUMBER */
    char *str;      /* STRING: UTF-8, NUL-terminated; may hold NUL bytes from \u0000 (see len) */
    size_t len;     /* STRING: bytes (without the final NUL); ARRAY/OBJECT: element count */
    t2_json *items; /* ARRAY/OBJECT: len elements, in document order */
    char *key;      /* set on the members of an OBJECT: the member's name (UTF-8, NUL-terminated) */
    size_t key_len;
};

typedef struct t2_json_limits {
    size_t max_depth; /* 0: T2_JSON_MAX_DEPTH */
    size_t max_bytes; /* 0: T2_JSON_MAX_BYTES */
    size_t max_items; /* 0: T2_JSON_MAX_ITEMS */
} t2_json_limits;

/* Parse exactly one JSON value (surrounding whitespace allowed) from text[0..len). `lim` may
 * be NULL (defaults). On success *out owns the tree (free with t2_json_free); on error *out is
 * NULL and a T2_E* code is returned with the position in t2_err_msg(). */
int t2_json_parse(const char *text, size_t len, const t2_json_limits *lim, t2_json **out);
/* Takes NULL; sets *v to NULL. */
void t2_json_free(t2_json **v);

/* Lookups; each takes NULL and returns NULL (or 0) on a missing member or a wrong type. With
 * duplicate keys the first member wins. */
const t2_json *t2_json_get(const t2_json *obj, const char *key);
const char *t2_json_get_str(const t2_json *obj, const char *key); /* STRING member */
const t2_json *t2_json_at(const t2_json *arr, size_t i);          /* ARRAY element */
const char *t2_json_type_name(t2_json_type t);                    /* "string", ... */

/* JSON Lines: call fn(ctx, row, line) for each line that is not blank; stop at the first
 * non-zero return. A line that does not parse fails with "NAME:LINE: ..." (T2_EFORMAT); a
 * negative return from fn is passed on, with its t2_err_msg() prefixed by "NAME:LINE: ". */
typedef int (*t2_jsonl_fn)(void *ctx, const t2_json *row, size_t line);
int t2_jsonl_parse(const char *name, const char *buf, size_t len, t2_jsonl_fn fn, void *ctx);
/* Read the file at `path` (up to 1 GiB) and parse it as above; names it in messages. */
int t2_jsonl_read(const char *path, t2_jsonl_fn fn, void *ctx);

/* Read a whole file into a NUL-terminated buffer (caller frees); at most `max` bytes. */
int t2_read_file(const char *path, size_t max, char **out, size_t *len);

/* Write s[0..len) as a JSON string literal (quotes, escapes; invalid UTF-8 bytes become
 * U+FFFD). */
void t2_json_write_str(FILE *f, const char *s, size_t len);

#endif
