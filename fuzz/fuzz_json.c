/* fuzz_json.c - libFuzzer target for the JSON parser (shared/json.c).
 *
 * Every input is parsed as one JSON value (with small limits) and as JSON Lines. A value that
 * parses is written back as JSON (strings through t2_json_write_str) and parsed again: the two
 * trees must be equal, or we abort(). Limits must hold (depth, elements per container).
 */
#include "base/json.h"
#include "base/t2_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32
#define MAX_ITEMS 4096

static void write_value(FILE *f, const t2_json *v) {
    switch (v->type) {
    case T2_JSON_NULL: fputs("null", f); break;
    case T2_JSON_TRUE: fputs("true", f); break;
    case T2_JSON_FALSE: fputs("false", f); break;
    case T2_JSON_NUMBER: fprintf(f, "%.17g", v->number); break;
    case T2_JSON_STRING: t2_json_write_str(f, v->str, v->len); break;
    case T2_JSON_ARRAY:
    case T2_JSON_OBJECT:
        fputc(v->type == T2_JSON_ARRAY ? '[' : '{', f);
        for (size_t i = 0; i < v->len; i++) {
            if (i)
                fputc(',', f);
            if (v->type == T2_JSON_OBJECT) {
                t2_json_write_str(f, v->items[i].key, v->items[i].key_len);
                fputc(':', f);
            }
            write_value(f, &v->items[i]);
        }
        fputc(v->type == T2_JSON_ARRAY ? ']' : '}', f);
        break;
    }
}

/* Equal trees; also checks the limits and that strings are NUL-terminated. */
static void check_equal(const t2_json *a, const t2_json *b, int depth) {
    if (a->type != b->type || depth > MAX_DEPTH)
        abort();
    switch (a->type) {
    case T2_JSON_NUMBER:
        if (a->number != b->number)
            abort();
        break;
    case T2_JSON_STRING:
        if (a->len != b->len || memcmp(a->str, b->str, a->len) || a->str[a->len])
            abort();
        break;
    case T2_JSON_ARRAY:
    case T2_JSON_OBJECT:
        if (a->len != b->len || a->len > MAX_ITEMS)
            abort();
        for (size_t i = 0; i < a->len; i++) {
            if (a->type == T2_JSON_OBJECT) {
                const t2_json *x = &a->items[i], *y = &b->items[i];
                if (!x->key || x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len))
                    abort();
            }
            check_equal(&a->items[i], &b->items[i], depth + 1);
        }
        break;
    default: break;
    }
}

static int count_row(void *ctx, const t2_json *row, size_t line) {
    (void)row;
    size_t *n = ctx;
    if (line == 0)
        abort();
    ++*n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    t2_json_limits lim = {.max_depth = MAX_DEPTH, .max_bytes = 1 << 20, .max_items = MAX_ITEMS};
    t2_json *v = NULL;
    int rc = t2_json_parse(text, size, &lim, &v);
    if (rc == 0) {
        if (!v)
            abort();
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
            abort();
        write_value(f, v);
        fclose(f);
        t2_json *w = NULL;
        t2_json_limits big = {
            .max_depth = MAX_DEPTH, .max_bytes = 64u << 20, .max_items = MAX_ITEMS};
        if (t2_json_parse(buf, len, &big, &w) != 0) {
            fprintf(stderr, "re-parse failed: %s\n%s\n", t2_err_msg(), buf);
            abort();
        }
        check_equal(v, w, 0);
        t2_json_free(&w);
        free(buf);
        t2_json_free(&v);
        if (v)
            abort();
    } else {
        if (v)
            abort();
        if (rc != T2_EFORMAT && rc != T2_ERANGE)
            abort();
        if (strncmp(t2_err_msg(), "line ", 5))
            abort(); /* every syntax error has a position */
    }
    size_t rows = 0;
    t2_jsonl_parse("fuzz", text, size, count_row, &rows);
    return 0;
}
