/* chat_lex.c - the chat-template lexer: Jinja's tokenization with trim_blocks and
 * lstrip_blocks (as Hugging Face configures it), plus the UTF-8 helpers the interpreter shares.
 *
 * As Jinja 3: "\r\n" and "\r" become "\n", one trailing newline of the source is dropped;
 * `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all whitespace
 * after it; a block or comment tag alone on its line (only whitespace before it) takes that
 * whitespace with it (lstrip_blocks, unless `{%+`), and the newline right after `%}` or `#}`
 * is dropped (trim_blocks, unless `+%}`).
 */
#include "engine/chat_int.h"

#include "base/t2_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t cj_utf8_next(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    size_t len = u[0] < 0x80 ? 1 : u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC0 ? 2 : 0;
    if (len == 0 || len > n) {
        *cp = u[0];
        return 1;
    }
    uint32_t v = len == 1 ? u[0] : len == 2 ? (u[0] & 0x1Fu) : len == 3 ? (u[0] & 0x0Fu)
                                                                         : (u[0] & 0x07u);
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = u[0];
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3Fu);
    }
    *cp = v;
    return len;
}

int cj_is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Is code point cp one to strip: whitespace, or one of `chars` when given. */
static int strip_match(uint32_t cp, const char *chars, size_t nchars) {
    if (!chars) return cj_is_space(cp);
    for (size_t i = 0; i < nchars;) {
        uint32_t c;
        i += cj_utf8_next(chars + i, nchars - i, &c);
        if (c == cp) return 1;
    }
    return 0;
}

void cj_strip(const char *s, size_t n, const char *chars, size_t nchars, int left, int right,
              size_t *start, size_t *len) {
    size_t a = 0, b = n;
    while (left && a < b) {
        uint32_t cp;
        size_t k = cj_utf8_next(s + a, b - a, &cp);
        if (!strip_match(cp, chars, nchars)) break;
        a += k;
    }
    while (right && b > a) {
        size_t p = b - 1;
        while (p > a && b - p < 4 && ((unsigned char)s[p] & 0xC0) == 0x80) p--;
        uint32_t cp;
        size_t k = cj_utf8_next(s + p, b - p, &cp);
        if (p + k != b) { /* not a whole code point: a stray byte */
            p = b - 1;
            cp = (unsigned char)s[p];
        }
        if (!strip_match(cp, chars, nchars)) break;
        b = p;
    }
    *start = a;
    *len = b - a;
}

static int isdigit_c(char ch) { return ch >= '0' && ch <= '9'; }

/* ---- lexer state ---------------------------------------------------------------------- */

typedef struct lexer {
    cj_ctx *c;
    const char *s;
    size_t n, pos;
    int line;
    cj_tok *toks;
    size_t n_toks, cap;
} lexer;

static cj_tok *push(lexer *L, cj_tok_type type, const char *s, size_t n) {
    if (L->n_toks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        cj_tok *nt = cj_alloc(L->c, cap * sizeof *nt);
        if (L->n_toks) memcpy(nt, L->toks, L->n_toks * sizeof *nt);
        L->toks = nt;
        L->cap = cap;
    }
    cj_tok *t = &L->toks[L->n_toks++];
    memset(t, 0, sizeof *t);
    t->t = type;
    t->line = L->line;
    t->s = s ? cj_strndup(L->c, s, n) : "";
    t->n = s ? n : 0;
    return t;
}

static void count_lines(lexer *L, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) L->line += L->s[i] == '\n';
}

/* Length of Python whitespace (\s) at p, 0 if none. */
static size_t space_at(const lexer *L, size_t p) {
    if (p >= L->n) return 0;
    uint32_t cp;
    size_t k = cj_utf8_next(L->s + p, L->n - p, &cp);
    return cj_is_space(cp) ? k : 0;
}

static size_t skip_space(lexer *L, size_t p) {
    size_t k;
    while ((k = space_at(L, p)) > 0) p += k;
    return p;
}

static int starts(const lexer *L, size_t p, const char *lit) {
    size_t k = strlen(lit);
    return p + k <= L->n && !memcmp(L->s + p, lit, k);
}

/* ---- literals ---------------------------------------------------------------------------- */

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* One escape after a backslash at s[*i] (Python's "unicode-escape" codec, as Jinja decodes
 * string literals). Appends to o, returns bytes written. */
static size_t unescape_one(lexer *L, const char *s, size_t n, size_t *i, char *o) {
    char e = s[*i];
    static const char from[] = "\\'\"abfnrtv", to[] = "\\'\"\a\b\f\n\r\t\v";
    const char *f = e ? strchr(from, e) : NULL;
    if (f) { (*i)++; *o = to[f - from]; return 1; }
    if (e == '\n') { (*i)++; return 0; }
    if (e >= '0' && e <= '7') {
        uint32_t v = 0;
        for (int k = 0; k < 3 && *i < n && s[*i] >= '0' && s[*i] <= '7'; k++)
            v = v * 8 + (uint32_t)(s[(*i)++] - '0');
        return put_utf8(o, v);
    }
    int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (digits) {
        uint32_t v = 0;
        for (int k = 0; k < digits; k++) {
            int h = *i + 1 + (size_t)k < n ? hexval(s[*i + 1 + (size_t)k]) : -1;
            if (h < 0) cj_fail(L->c, "truncated \\%c escape in a string", e);
            v = v * 16 + (uint32_t)h;
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            cj_fail(L->c, "string escape \\%c%0*X is not a character", e, digits, v);
        *i += 1 + (size_t)digits;
        return put_utf8(o, v);
    }
    if (e == 'N') cj_fail(L->c, "\\N{...} escapes are not supported");
    uint32_t cp;
    size_t k = cj_utf8_next(s + *i, n - *i, &cp);
    *i += k;
    o[0] = '\\';
    if (cp < 0x80) { o[1] = (char)cp; return 2; } /* unknown escape: kept as written */
    /* a non-ASCII character after '\': Jinja sees its backslashreplace form */
    int w = cp < 0x100 ? 2 : cp < 0x10000 ? 4 : 8;
    static const char hx[] = "0123456789abcdef";
    o[1] = w == 2 ? 'x' : w == 4 ? 'u' : 'U';
    for (int d = 0; d < w; d++) o[2 + d] = hx[(cp >> (4 * (w - 1 - d))) & 15];
    return 2 + (size_t)w;
}

static void lex_string(lexer *L, size_t *p) {
    char q = L->s[*p];
    size_t a = *p + 1, b = a;
    while (b < L->n && L->s[b] != q) b += L->s[b] == '\\' && b + 1 < L->n ? 2 : 1;
    if (b >= L->n) cj_fail(L->c, "unterminated string");
    char *o = cj_alloc(L->c, (b - a) * 5 + 1);
    size_t on = 0;
    for (size_t i = a; i < b;) {
        if (L->s[i] != '\\') {
            o[on++] = L->s[i++];
            continue;
        }
        i++;
        on += unescape_one(L, L->s, b, &i, o + on);
    }
    cj_tok *t = push(L, CT_STRING, NULL, 0);
    t->s = o;
    t->n = on;
    count_lines(L, *p, b + 1);
    *p = b + 1;
}

/* Digits with '_' separators (Python style) into buf; returns the position after them. */
static size_t digits(const lexer *L, size_t p, char *buf, size_t *bn, size_t cap) {
    while (p < L->n && (isdigit_c(L->s[p]) ||
                        (L->s[p] == '_' && p + 1 < L->n && isdigit_c(L->s[p + 1])))) {
        if (L->s[p] != '_') {
            if (*bn + 4 >= cap) cj_fail(L->c, "number too long");
            buf[(*bn)++] = L->s[p];
        }
        p++;
    }
    buf[*bn] = 0;
    return p;
}

static void lex_number(lexer *L, size_t *p) {
    char buf[128];
    size_t bn = 0, q = digits(L, *p, buf, &bn, sizeof buf);
    int is_float = 0;
    if (q + 1 < L->n && L->s[q] == '.' && isdigit_c(L->s[q + 1])) {
        buf[bn++] = '.';
        q = digits(L, q + 1, buf, &bn, sizeof buf);
        is_float = 1;
    }
    if (q < L->n && (L->s[q] == 'e' || L->s[q] == 'E')) {
        size_t r = q + 1;
        if (r < L->n && (L->s[r] == '+' || L->s[r] == '-')) r++;
        if (r < L->n && isdigit_c(L->s[r])) {
            buf[bn++] = 'e';
            if (L->s[q + 1] == '-' || L->s[q + 1] == '+') buf[bn++] = L->s[q + 1];
            q = digits(L, r, buf, &bn, sizeof buf);
            is_float = 1;
        }
    }
    if (is_float) {
        cj_tok *t = push(L, CT_FLOAT, NULL, 0);
        t->f = strtod(buf, NULL);
    } else {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno) cj_fail(L->c, "integer %s is too large", buf);
        push(L, CT_INT, NULL, 0)->i = v;
    }
    *p = q;
}

static const char *const ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*",
                                  "%",  "~",  "[",  "]",  "(",  ")",  "{", "}", "=", "<",
                                  ">",  ".",  ":",  "|",  ",",  ";"};

/* One token inside a tag at *p; tracks bracket balance. */
static void lex_token(lexer *L, size_t *p, char *stack, int *depth) {
    char ch = L->s[*p];
    if (isdigit_c(ch)) return lex_number(L, p);
    if (ch == '_' || ((ch | 32) >= 'a' && (ch | 32) <= 'z')) {
        size_t q = *p;
        while (q < L->n && (L->s[q] == '_' || isdigit_c(L->s[q]) ||
                            ((L->s[q] | 32) >= 'a' && (L->s[q] | 32) <= 'z')))
            q++;
        push(L, CT_NAME, L->s + *p, q - *p);
        *p = q;
        return;
    }
    if (ch == '\'' || ch == '"') return lex_string(L, p);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!starts(L, *p, ops[i])) continue;
        char o = ops[i][0];
        if (!ops[i][1] && (o == '(' || o == '[' || o == '{')) {
            if (*depth >= 64) cj_fail(L->c, "brackets nested too deeply");
            stack[(*depth)++] = o == '(' ? ')' : o == '[' ? ']' : '}';
        } else if (!ops[i][1] && (o == ')' || o == ']' || o == '}')) {
            if (*depth == 0) cj_fail(L->c, "unexpected '%c'", o);
            if (stack[*depth - 1] != o)
                cj_fail(L->c, "unexpected '%c', expected '%c'", o, stack[*depth - 1]);
            (*depth)--;
        }
        push(L, CT_OP, ops[i], strlen(ops[i]));
        *p += strlen(ops[i]);
        return;
    }
    cj_fail(L->c, "unexpected character '%c' in a tag", ch);
}

/* The inside of a {{ }} or {% %} tag from *p to its end (which is consumed). */
static void lex_tag(lexer *L, size_t *p, int block) {
    char stack[64];
    int depth = 0;
    for (;;) {
        size_t q = skip_space(L, *p);
        count_lines(L, *p, q);
        *p = q;
        if (q >= L->n) cj_fail(L->c, "unexpected end of template: %s tag not closed",
                               block ? "{%" : "{{");
        const char *end = block ? "%}" : "}}";
        if (depth == 0 && (L->s[q] == '-' || L->s[q] == '+') && starts(L, q + 1, end) &&
            (block || L->s[q] == '-')) {
            push(L, block ? CT_BLOCK_END : CT_VAR_END, NULL, 0);
            q += 3;
            if (L->s[*p] == '-') {
                size_t r = skip_space(L, q);
                count_lines(L, q, r);
                q = r;
            }
            *p = q;
            return;
        }
        if (depth == 0 && starts(L, q, end)) {
            push(L, block ? CT_BLOCK_END : CT_VAR_END, NULL, 0);
            q += 2;
            if (block && q < L->n && L->s[q] == '\n') { /* trim_blocks */
                L->line++;
                q++;
            }
            *p = q;
            return;
        }
        lex_token(L, p, stack, &depth);
    }
}

/* A comment from *p (after "{#" and its sign) to its end, as Jinja's non-greedy rule. */
static void lex_comment(lexer *L, size_t *p) {
    for (size_t q = *p; q < L->n; q++) {
        size_t e = 0;
        if (starts(L, q, "+#}")) e = q + 3;
        else if (starts(L, q, "-#}")) e = skip_space(L, q + 3);
        else if (starts(L, q, "#}")) e = q + 2 + (q + 2 < L->n && L->s[q + 2] == '\n');
        if (!e) continue;
        count_lines(L, *p, e);
        *p = e;
        return;
    }
    cj_fail(L->c, "missing end of comment tag");
}

/* Text before a tag, with the tag's whitespace control applied. */
static void lex_text(lexer *L, size_t a, size_t b, char kind, char sign, int line_starting) {
    size_t len = b - a;
    if (sign == '-') {
        size_t st;
        cj_strip(L->s + a, b - a, NULL, 0, 0, 1, &st, &len);
    } else if (sign != '+' && kind != '{') { /* lstrip_blocks */
        size_t l = b;
        while (l > a && L->s[l - 1] != '\n') l--;
        if ((l > a || line_starting) && l < b) {
            size_t st, rest;
            cj_strip(L->s + l, b - l, NULL, 0, 1, 0, &st, &rest);
            if (rest == 0) len = l - a;
        }
    }
    if (len) push(L, CT_TEXT, L->s + a, len);
    count_lines(L, a, b);
}

void cj_lex(cj_ctx *c, const char *src, size_t len, cj_tok **toks, size_t *n_toks) {
    lexer L = {.c = c, .line = 1};
    char *s = cj_alloc(c, len + 1); /* newlines normalized, one trailing newline dropped */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    L.s = s;
    L.n = n;
    size_t pos = 0;
    int line_starting = 1;
    while (pos < n) {
        const char *t = NULL;
        for (size_t i = pos; i + 1 < n && !t; i++)
            if (s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#')) t = s + i;
        if (!t) {
            lex_text(&L, pos, n, 0, '+', 0);
            break;
        }
        size_t tp = (size_t)(t - s), p = tp + 2;
        char kind = s[tp + 1], sign = p < n && (s[p] == '-' || s[p] == '+') ? s[p] : 0;
        lex_text(&L, pos, tp, kind, sign, line_starting);
        c->line = L.line;
        p += sign != 0;
        if (kind == '#') {
            lex_comment(&L, &p);
        } else {
            push(&L, kind == '%' ? CT_BLOCK_BEGIN : CT_VAR_BEGIN, NULL, 0);
            lex_tag(&L, &p, kind == '%');
        }
        line_starting = s[p - 1] == '\n';
        pos = p;
        c->line = L.line;
    }
    push(&L, CT_EOF, NULL, 0);
    *toks = L.toks;
    *n_toks = L.n_toks;
}
