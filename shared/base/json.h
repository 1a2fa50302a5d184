/* json.h - T2's JSON on jansson (Debian's libjansson, the one JSON library of T2): parsing one
 * value with T2's error messages, a JSON Lines reader, and strings from any bytes. Values are
 * jansson's json_t (see jansson's documentation for the accessors); T2 writes JSON by building
 * values and dumping them with jansson.
 *
 * Parsing accepts any JSON value (RFC 8259), strings with \u0000 (json_string_length gives
 * their bytes), and refuses duplicate object keys; numbers are json_integer or json_real
 * (json_number_value reads both). Errors are T2_EFORMAT (bad syntax), T2_ERANGE (input larger
 * than T2_JSON_MAX_BYTES, or nested deeper than jansson's limit) or T2_ENOMEM, with
 * t2_err_msg() giving "line L, column C: what" (1-based).
 *
 *   json_t *v;
 *   if (t2_json_parse(text, len, &v) < 0) { fprintf(stderr, "%s\n", t2_err_msg()); ... }
 *   const char *q = json_string_value(json_object_get(v, "question")); // NULL: absent/not str
 *   json_decref(v);
 *
 * JSON Lines: t2_jsonl_read() calls a function for each non-blank line, and reports a bad row
 * as "PATH:LINE: line 1, column C: what" (or the callback's own message, prefixed the same way).
 */
#ifndef T2_JSON_H
#define T2_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define T2_JSON_MAX_BYTES (64u << 20) /* input limit of t2_json_parse: 64 MiB */

/* Parse exactly one JSON value (surrounding whitespace allowed) from text[0..len). On success
 * *out holds a new reference (json_decref it); on error *out is NULL and a T2_E* code is
 * returned with the position in t2_err_msg(). */
int t2_json_parse(const char *text, size_t len, json_t **out);
/* "null", "boolean", "number", "string", "array", "object" (NULL: "missing"). */
const char *t2_json_type_name(const json_t *v);

/* A new JSON string of s[0..len): invalid UTF-8 bytes become U+FFFD (jansson refuses them).
 * NULL only when out of memory. */
json_t *t2_json_text(const char *s, size_t len);

/* JSON Lines: call fn(ctx, row, line) for each line that is not blank (a UTF-8 BOM and
 * surrounding blanks are ignored); stop at the first non-zero return. A line that does not
 * parse fails with "NAME:LINE: ..." (T2_EFORMAT); a negative return from fn is passed on, with
 * its t2_err_msg() prefixed by "NAME:LINE: ". `row` is borrowed for the call. */
typedef int (*t2_jsonl_fn)(void *ctx, const json_t *row, size_t line);
int t2_jsonl_parse(const char *name, const char *buf, size_t len, t2_jsonl_fn fn, void *ctx);
/* Read the file at `path` (up to 1 GiB) and parse it as above; names it in messages. */
int t2_jsonl_read(const char *path, t2_jsonl_fn fn, void *ctx);

/* Read a whole file into a NUL-terminated buffer (caller frees); at most `max` bytes. */
int t2_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
