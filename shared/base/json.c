/* json.c - strict JSON parser, JSON Lines reader and string writer (see json.h). */
#include "base/json.h"

#include "base/t2_err.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *s; /* text */
    size_t n, pos; /* length, cursor */
    size_t max_depth, max_items;
} parser;

/* Report an error at byte offset `at` as "line L, column C: <msg>". */
static int perr(const parser *p, size_t at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int perr(const parser *p, size_t at, int code, const char *fmt, ...) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->n; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)p->s[i] & 0xC0) != 0x80) {
            col++; /* count characters, not UTF-8 continuation bytes */
        }
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return t2_err_set(code, "line %zu, column %zu: %s", line, col, msg);
}

/* A printable description of the byte at `at` for messages. */
static const char *what_at(const parser *p, size_t at, char buf[16]) {
    if (at >= p->n)
        return "end of input";
    unsigned char c = (unsigned char)p->s[at];
    if (c >= 0x20 && c < 0x7F)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02X", c);
    return buf;
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static void free_value(t2_json *v) {
    if (v->type == T2_JSON_STRING)
        free(v->str);
    if (v->type == T2_JSON_ARRAY || v->type == T2_JSON_OBJECT) {
        for (size_t i = 0; i < v->len; i++) {
            free(v->items[i].key);
            free_value(&v->items[i]);
        }
        free(v->items);
    }
    v->str = NULL;
    v->items = NULL;
    v->len = 0;
}

/* Length of a valid UTF-8 sequence at s[0..n), or 0 if it is not one (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t k;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    return k;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex4(const parser *p, size_t at, unsigned *out) {
    if (at + 4 > p->n)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < 4; i++) {
        char c = p->s[at + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Parse a string starting at the opening quote; on success *out is a malloc'd UTF-8 copy. */
static int parse_string(parser *p, char **out, size_t *out_len) {
    size_t start = p->pos; /* the quote */
    size_t i = start + 1;
    /* find the closing quote to size the buffer: the decoded text is never longer */
    for (;;) {
        if (i >= p->n)
            return perr(p, start, T2_EFORMAT, "unterminated string");
        char c = p->s[i];
        if (c == '"')
            break;
        if (c == '\\')
            i++;
        i++;
    }
    size_t end = i; /* closing quote */
    char *buf = malloc(end - start);
    if (!buf)
        return t2_err_set(T2_ENOMEM, "out of memory reading a %zu-byte string", end - start);
    size_t o = 0;
    i = start + 1;
    while (i < end) {
        unsigned char c = (unsigned char)p->s[i];
        if (c < 0x20) {
            free(buf);
            return perr(p, i, T2_EFORMAT, "control character 0x%02X in a string (must be escaped)",
                        c);
        }
        if (c != '\\') {
            size_t k = utf8_len((const unsigned char *)p->s + i, end - i);
            if (!k) {
                free(buf);
                return perr(p, i, T2_EFORMAT, "invalid UTF-8 byte 0x%02X in a string", c);
            }
            memcpy(buf + o, p->s + i, k);
            o += k;
            i += k;
            continue;
        }
        char e = p->s[i + 1]; /* i + 1 < end: a backslash never precedes the closing quote */
        switch (e) {
        case '"': buf[o++] = '"'; break;
        case '\\': buf[o++] = '\\'; break;
        case '/': buf[o++] = '/'; break;
        case 'b': buf[o++] = '\b'; break;
        case 'f': buf[o++] = '\f'; break;
        case 'n': buf[o++] = '\n'; break;
        case 'r': buf[o++] = '\r'; break;
        case 't': buf[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (i + 6 > end || hex4(p, i + 2, &cp) < 0) {
                free(buf);
                return perr(p, i, T2_EFORMAT, "bad \\u escape (want 4 hex digits)");
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(buf);
                return perr(p, i, T2_EFORMAT, "lone low surrogate \\u%04X", cp);
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 12 > end || p->s[i + 6] != '\\' || p->s[i + 7] != 'u' ||
                    hex4(p, i + 8, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    free(buf);
                    return perr(p, i, T2_EFORMAT,
                                "high surrogate \\u%04X not followed by a low surrogate", cp);
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            o += put_utf8(buf + o, cp);
            i += 6;
            continue;
        }
        default: {
            char w[16];
            free(buf);
            return perr(p, i, T2_EFORMAT, "bad escape '\\' followed by %s", what_at(p, i + 1, w));
        }
        }
        i += 2;
    }
    buf[o] = 0;
    *out = buf;
    *out_len = o;
    p->pos = end + 1;
    return 0;
}

static int parse_number(parser *p, double *out) {
    size_t start = p->pos, i = start;
    const char *s = p->s;
    if (i < p->n && s[i] == '-')
        i++;
    if (i >= p->n || s[i] < '0' || s[i] > '9')
        return perr(p, start, T2_EFORMAT, "bad number (want a digit after '-')");
    if (s[i] == '0') {
        i++;
        if (i < p->n && s[i] >= '0' && s[i] <= '9')
            return perr(p, start, T2_EFORMAT, "bad number (leading zero)");
    } else {
        while (i < p->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->n && s[i] == '.') {
        i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9')
            return perr(p, i, T2_EFORMAT, "bad number (want a digit after '.')");
        while (i < p->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->n || s[i] < '0' || s[i] > '9')
            return perr(p, i, T2_EFORMAT, "bad number (want a digit in the exponent)");
        while (i < p->n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    size_t k = i - start;
    char small[64], *tmp = k < sizeof small ? small : malloc(k + 1);
    if (!tmp)
        return t2_err_set(T2_ENOMEM, "out of memory");
    memcpy(tmp, s + start, k);
    tmp[k] = 0;
    errno = 0;
    double v = strtod(tmp, NULL);
    int bad = !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0);
    if (tmp != small)
        free(tmp);
    if (bad)
        return perr(p, start, T2_ERANGE, "number out of range");
    *out = v;
    p->pos = i;
    return 0;
}

static int parse_value(parser *p, t2_json *v, size_t depth);

static int push_item(parser *p, t2_json *v, size_t *cap, size_t at) {
    if (v->len >= p->max_items)
        return perr(p, at, T2_ERANGE, "more than %zu elements in one %s", p->max_items,
                    v->type == T2_JSON_ARRAY ? "array" : "object");
    if (v->len == *cap) {
        size_t nc = *cap ? 2 * *cap : 4;
        t2_json *ni = realloc(v->items, nc * sizeof *ni);
        if (!ni)
            return t2_err_set(T2_ENOMEM, "out of memory");
        v->items = ni;
        *cap = nc;
    }
    memset(&v->items[v->len], 0, sizeof v->items[0]);
    v->items[v->len].type = T2_JSON_NULL;
    v->len++;
    return 0;
}

static int parse_container(parser *p, t2_json *v, size_t depth) {
    int obj = p->s[p->pos] == '{';
    char close = obj ? '}' : ']';
    size_t open_at = p->pos, cap = 0;
    char w[16];
    v->type = obj ? T2_JSON_OBJECT : T2_JSON_ARRAY;
    if (depth >= p->max_depth)
        return perr(p, open_at, T2_ERANGE, "nesting deeper than %zu", p->max_depth);
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        int rc = push_item(p, v, &cap, p->pos);
        if (rc < 0)
            return rc;
        t2_json *it = &v->items[v->len - 1];
        if (obj) {
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return perr(p, p->pos, T2_EFORMAT, "expected a member name (string), got %s",
                            what_at(p, p->pos, w));
            if ((rc = parse_string(p, &it->key, &it->key_len)) < 0)
                return rc;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return perr(p, p->pos, T2_EFORMAT, "expected ':' after member name, got %s",
                            what_at(p, p->pos, w));
            p->pos++;
            skip_ws(p);
        }
        if ((rc = parse_value(p, it, depth + 1)) < 0)
            return rc;
        skip_ws(p);
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        if (p->pos >= p->n)
            return perr(p, open_at, T2_EFORMAT, "unterminated %s", obj ? "object" : "array");
        return perr(p, p->pos, T2_EFORMAT, "expected ',' or '%c', got %s", close,
                    what_at(p, p->pos, w));
    }
}

static int parse_value(parser *p, t2_json *v, size_t depth) {
    char w[16];
    if (p->pos >= p->n)
        return perr(p, p->pos, T2_EFORMAT, "expected a value, got end of input");
    char c = p->s[p->pos];
    switch (c) {
    case '{':
    case '[': return parse_container(p, v, depth);
    case '"': v->type = T2_JSON_STRING; return parse_string(p, &v->str, &v->len);
    case 't':
    case 'f':
    case 'n': {
        const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t k = strlen(word);
        if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k))
            return perr(p, p->pos, T2_EFORMAT, "unexpected %s (not true, false or null)",
                        what_at(p, p->pos, w));
        v->type = c == 't' ? T2_JSON_TRUE : c == 'f' ? T2_JSON_FALSE : T2_JSON_NULL;
        p->pos += k;
        return 0;
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            v->type = T2_JSON_NUMBER;
            return parse_number(p, &v->number);
        }
        return perr(p, p->pos, T2_EFORMAT, "expected a value, got %s", what_at(p, p->pos, w));
    }
}

int t2_json_parse(const char *text, size_t len, const t2_json_limits *lim, t2_json **out) {
    *out = NULL;
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : T2_JSON_MAX_BYTES;
    if (!text && len)
        return t2_err_set(T2_EINVAL, "t2_json_parse: NULL text");
    if (len > max_bytes)
        return t2_err_set(T2_ERANGE, "JSON text of %zu bytes exceeds the %zu-byte limit", len,
                          max_bytes);
    parser p = {.s = text ? text : "", .n = len, .pos = 0};
    p.max_depth = lim && lim->max_depth ? lim->max_depth : T2_JSON_MAX_DEPTH;
    p.max_items = lim && lim->max_items ? lim->max_items : T2_JSON_MAX_ITEMS;
    t2_json *v = calloc(1, sizeof *v);
    if (!v)
        return t2_err_set(T2_ENOMEM, "out of memory");
    skip_ws(&p);
    int rc = parse_value(&p, v, 0);
    if (rc == 0) {
        skip_ws(&p);
        if (p.pos < p.n) {
            char w[16];
            rc =
                perr(&p, p.pos, T2_EFORMAT, "unexpected %s after the value", what_at(&p, p.pos, w));
        }
    }
    if (rc < 0) {
        free_value(v);
        free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void t2_json_free(t2_json **v) {
    if (!v || !*v)
        return;
    free_value(*v);
    free(*v);
    *v = NULL;
}

const t2_json *t2_json_get(const t2_json *obj, const char *key) {
    if (!obj || obj->type != T2_JSON_OBJECT || !key)
        return NULL;
    size_t k = strlen(key);
    for (size_t i = 0; i < obj->len; i++)
        if (obj->items[i].key_len == k && !memcmp(obj->items[i].key, key, k))
            return &obj->items[i];
    return NULL;
}

const char *t2_json_get_str(const t2_json *obj, const char *key) {
    const t2_json *v = t2_json_get(obj, key);
    return v && v->type == T2_JSON_STRING ? v->str : NULL;
}

const t2_json *t2_json_at(const t2_json *arr, size_t i) {
    if (!arr || arr->type != T2_JSON_ARRAY || i >= arr->len)
        return NULL;
    return &arr->items[i];
}

const char *t2_json_type_name(t2_json_type t) {
    switch (t) {
    case T2_JSON_NULL: return "null";
    case T2_JSON_FALSE:
    case T2_JSON_TRUE: return "boolean";
    case T2_JSON_NUMBER: return "number";
    case T2_JSON_STRING: return "string";
    case T2_JSON_ARRAY: return "array";
    case T2_JSON_OBJECT: return "object";
    }
    return "?";
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
        t2_json *row;
        int rc = t2_json_parse(buf + s, b - s, NULL, &row);
        if (rc < 0)
            return t2_err_prefix(rc, "%s:%zu", name, line);
        rc = fn(ctx, row, line);
        t2_json_free(&row);
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

void t2_json_write_str(FILE *f, const char *s, size_t len) {
    fputc('"', f);
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t k = utf8_len((const unsigned char *)s + i, len - i);
            if (k) {
                fwrite(s + i, 1, k, f);
                i += k;
            } else {
                fputs("\\ufffd", f);
                i++;
            }
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7F)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}
