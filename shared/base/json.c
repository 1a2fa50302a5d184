/* json.c - T2's JSON on jansson: one value with T2's messages, JSON Lines, strings (json.h). */
#include "base/json.h"

#include "base/t2_err.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int t2_json_parse(const char *text, size_t len, json_t **out) {
    *out = NULL;
    if (!text && len)
        return t2_err_set(T2_EINVAL, "t2_json_parse: NULL text");
    if (len > T2_JSON_MAX_BYTES)
        return t2_err_set(T2_ERANGE, "JSON text of %zu bytes exceeds the %u-byte limit", len,
                          T2_JSON_MAX_BYTES);
    json_error_t e;
    json_t *v = json_loadb(text ? text : "", len,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &e);
    if (v) {
        *out = v;
        return 0;
    }
    /* the position as T2 reports it: line and column (in characters) of the byte at which
     * jansson stopped, 1-based */
    size_t at = e.position > 0 ? (size_t)e.position : 0, line = 1, col = 1;
    if (at > 0 && at <= len && e.line > 0)
        at--; /* jansson counts the byte it stopped on as read */
    for (size_t i = 0; i < at && i < len; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    enum json_error_code c = json_error_code(&e);
    int code = c == json_error_out_of_memory    ? T2_ENOMEM
               : c == json_error_stack_overflow ? T2_ERANGE
                                                : T2_EFORMAT;
    return t2_err_set(code, "line %zu, column %zu: %s", line, col, e.text);
}

const char *t2_json_type_name(const json_t *v) {
    if (!v)
        return "missing";
    switch (json_typeof(v)) {
    case JSON_NULL: return "null";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "?";
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one (overlong forms,
 * surrogates and code points above U+10FFFF are not). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    size_t k = s[0] < 0x80             ? 1
               : (s[0] & 0xE0) == 0xC0 ? 2
               : (s[0] & 0xF0) == 0xE0 ? 3
               : (s[0] & 0xF8) == 0xF0 ? 4
                                       : 0;
    if (!k || k > n)
        return 0;
    uint32_t cp = k == 1 ? s[0] : k == 2 ? (s[0] & 0x1Fu) : k == 3 ? (s[0] & 0x0Fu) : (s[0] & 7u);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

json_t *t2_json_text(const char *s, size_t len) {
    json_t *v = json_stringn(s ? s : "", s ? len : 0);
    if (v || !s)
        return v;
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *t = malloc(3 * len + 1); /* each bad byte becomes EF BF BD */
    if (!t)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq((const unsigned char *)s + i, len - i);
        if (k) {
            memcpy(t + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(t + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    v = json_stringn(t, o);
    free(t);
    return v;
}

int t2_jsonl_parse(const char *name, const char *buf, size_t len, t2_jsonl_fn fn, void *ctx) {
    size_t line = 0, i = 0;
    while (i < len) {
        line++;
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - buf) : len;
        size_t a = i;
        if (line == 1 && e - a >= 3 && !memcmp(buf + a, "\xEF\xBB\xBF", 3))
            a += 3; /* BOM */
        size_t b = e;
        while (b > a && (buf[b - 1] == '\r' || buf[b - 1] == ' ' || buf[b - 1] == '\t'))
            b--;
        size_t s = a;
        while (s < b && (buf[s] == ' ' || buf[s] == '\t'))
            s++;
        i = e + 1;
        if (s == b)
            continue; /* blank line */
        json_t *row;
        int rc = t2_json_parse(buf + s, b - s, &row);
        if (rc < 0)
            return t2_err_prefix(rc, "%s:%zu", name, line);
        rc = fn(ctx, row, line);
        json_decref(row);
        if (rc < 0)
            return t2_err_prefix(rc, "%s:%zu", name, line);
        if (rc > 0)
            return rc;
    }
    return 0;
}

int t2_read_file(const char *path, size_t max, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            size_t ncap = cap ? 2 * cap : 65536;
            if (cap >= max + 1) {
                free(buf);
                fclose(f);
                return t2_err_set(T2_ERANGE, "%s: larger than %zu bytes", path, max);
            }
            if (ncap > max + 1)
                ncap = max + 1;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return t2_err_set(T2_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > max) {
            free(buf);
            fclose(f);
            return t2_err_set(T2_ERANGE, "%s: larger than %zu bytes", path, max);
        }
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return t2_err_set(T2_EIO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int t2_jsonl_read(const char *path, t2_jsonl_fn fn, void *ctx) {
    char *buf;
    size_t len;
    int rc = t2_read_file(path, (size_t)1 << 30, &buf, &len);
    if (rc < 0)
        return rc;
    rc = t2_jsonl_parse(path, buf, len, fn, ctx);
    free(buf);
    return rc;
}
