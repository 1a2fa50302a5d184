/* fuzz_json.c - libFuzzer target for T2's JSON on jansson (shared/base/json.c).
 *
 * Every input is parsed as one JSON value and as JSON Lines. A value that parses is written
 * back by jansson and parsed again: the two must be equal, or we abort(); a failure must carry
 * T2's "line L, column C: " position. The input as raw bytes goes through t2_json_text
 * (invalid UTF-8 becomes U+FFFD) and must dump and parse back as a string of at least as many
 * bytes.
 */
#include "base/json.h"
#include "base/t2_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_row(void *ctx, const json_t *row, size_t line) {
    size_t *n = ctx;
    if (line == 0 || !row)
        abort();
    ++*n;
    return 0;
}

static void roundtrip_value(const json_t *v) {
    size_t need = json_dumpb(v, NULL, 0, JSON_ENCODE_ANY);
    if (need == 0)
        abort();
    char *buf = malloc(need);
    if (!buf)
        return;
    if (json_dumpb(v, buf, need, JSON_ENCODE_ANY) != need)
        abort();
    json_t *w = NULL;
    if (t2_json_parse(buf, need, &w) != 0) {
        fprintf(stderr, "re-parse failed: %s\n%.*s\n", t2_err_msg(), (int)need, buf);
        abort();
    }
    if (!json_equal((json_t *)v, w))
        abort();
    json_decref(w);
    free(buf);
}

static void roundtrip_string(const char *s, size_t n) {
    json_t *v = t2_json_text(s, n);
    char *buf = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    if (!buf)
        return; /* out of memory */
    json_t *w = NULL;
    if (t2_json_parse(buf, strlen(buf), &w) != 0 || !json_is_string(w) ||
        json_string_length(w) < n)
        abort();
    json_decref(w);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    json_t *v = NULL;
    int rc = t2_json_parse(text, size, &v);
    if (rc == 0) {
        if (!v)
            abort();
        roundtrip_value(v);
        json_decref(v);
    } else {
        if (v || (rc != T2_EFORMAT && rc != T2_ERANGE))
            abort();
        if (strncmp(t2_err_msg(), "line ", 5))
            abort(); /* every syntax error has a position */
    }
    size_t rows = 0;
    t2_jsonl_parse("fuzz", text, size, count_row, &rows);
    if (size <= 4096)
        roundtrip_string(text, size);
    return 0;
}
