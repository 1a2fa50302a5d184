/* chat_builtin.c - the chat-template builtins: Jinja filters and tests, the Python str/dict
 * methods templates call (strip, split, startswith, items, get, ...), the globals Hugging Face
 * provides (raise_exception, strftime_now, namespace, range) and tojson as HF defines it
 * (json.dumps with ensure_ascii=False). Case mapping (upper, lower, title, capitalize) covers
 * ASCII letters only.
 */
#include "engine/chat_int.h"

#include "base/t2_err.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- names ------------------------------------------------------------------------------- */

enum {
    F_TRIM, F_LENGTH, F_COUNT, F_TOJSON, F_UPPER, F_LOWER, F_CAPITALIZE, F_TITLE, F_DEFAULT,
    F_D, F_JOIN, F_STRING, F_ITEMS, F_LIST, F_FIRST, F_LAST, F_REPLACE, F_SELECTATTR,
    F_REJECTATTR, F_SELECT, F_REJECT, F_MAP, F_REVERSE, F_ABS, F_INT, F_FLOAT, F_SAFE,
    F_ESCAPE, F_E, F_UNIQUE, F_DICTSORT, F_SORT, F_SUM, F_MIN, F_MAX, F_INDENT,
};
static const char *const filter_names[] = {
    "trim", "length", "count", "tojson", "upper", "lower", "capitalize", "title", "default",
    "d", "join", "string", "items", "list", "first", "last", "replace", "selectattr",
    "rejectattr", "select", "reject", "map", "reverse", "abs", "int", "float", "safe",
    "escape", "e", "unique", "dictsort", "sort", "sum", "min", "max", "indent", NULL};

enum {
    T_DEFINED, T_UNDEFINED, T_NONE, T_BOOLEAN, T_TRUE, T_FALSE, T_STRING, T_NUMBER, T_INTEGER,
    T_FLOAT, T_MAPPING, T_ITERABLE, T_SEQUENCE, T_CALLABLE, T_EQUALTO, T_EQ, T_EQ2, T_NE,
    T_NE2, T_LT, T_LT2, T_LE, T_LE2, T_GT, T_GT2, T_GE, T_GE2, T_IN, T_ODD, T_EVEN,
    T_DIVISIBLEBY, T_SAMEAS, T_LOWER, T_UPPER,
};
static const char *const test_names[] = {
    "defined", "undefined", "none", "boolean", "true", "false", "string", "number", "integer",
    "float", "mapping", "iterable", "sequence", "callable", "equalto", "eq", "==", "ne", "!=",
    "lt", "<", "le", "<=", "gt", ">", "ge", ">=", "in", "odd", "even", "divisibleby",
    "sameas", "lower", "upper", NULL};

enum {
    M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_STARTSWITH, M_ENDSWITH, M_UPPER, M_LOWER, M_TITLE,
    M_CAPITALIZE, M_REPLACE, M_FIND, M_COUNT, M_JOIN, M_ITEMS, M_KEYS, M_VALUES, M_GET,
    M_INDEX, M_CYCLE, M_STR_LAST = M_JOIN,
};
static const char *const method_names[] = {
    "strip", "lstrip", "rstrip", "split", "startswith", "endswith", "upper", "lower", "title",
    "capitalize", "replace", "find", "count", "join", "items", "keys", "values", "get",
    "index", "cycle", NULL};

enum { G_RANGE = 100, G_NAMESPACE, G_RAISE, G_STRFTIME, G_DICT };

static int find_name(const char *const *names, const char *name) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}
int cj_filter_id(const char *name) { return find_name(filter_names, name); }
int cj_test_id(const char *name) { return find_name(test_names, name); }

cj_val cj_method(cj_render *R, const cj_val *obj, const char *name) {
    int id = find_name(method_names, name);
    int ok = (obj->t == CV_STR && id >= 0 && id <= M_STR_LAST) ||
             (obj->t == CV_LOOP && id == M_CYCLE) ||
             (obj->t == CV_DICT && id >= M_ITEMS && id <= M_GET) ||
             (obj->t == CV_LIST && (id == M_COUNT || id == M_INDEX));
    if (!ok) return (cj_val){.t = CV_UNDEF};
    cj_val m = {.t = CV_METHOD, .u.fn = id};
    m.self = cj_alloc(R->c, sizeof *m.self);
    *m.self = *obj;
    return m;
}

cj_val cj_global(cj_render *R, const char *name) {
    static const char *const names[] = {"range", "namespace", "raise_exception", "strftime_now",
                                        "dict", NULL};
    (void)R;
    int id = find_name(names, name);
    return id < 0 ? (cj_val){.t = CV_UNDEF} : (cj_val){.t = CV_FUNC, .u.fn = G_RANGE + id};
}

/* ---- argument helpers ------------------------------------------------------------------ */

typedef struct args {
    cj_render *R;
    const char *what;
    cj_val *v;
    const char **kw;
    int n, n_pos;
} args;

static args mkargs(cj_render *R, const char *what, cj_val *v, const char **kw, int n) {
    args a = {R, what, v, kw, n, 0};
    while (a.n_pos < n && !(kw && kw[a.n_pos])) a.n_pos++;
    return a;
}

/* Argument `pos` (positional index) or keyword `name`; NULL if not given. */
static const cj_val *arg(const args *a, int pos, const char *name) {
    if (pos >= 0 && pos < a->n_pos) return &a->v[pos];
    for (int i = a->n_pos; i < a->n; i++)
        if (name && !strcmp(a->kw[i], name)) return &a->v[i];
    return NULL;
}

static void max_args(const args *a, int max_pos, const char *const *kws) {
    if (a->n_pos > max_pos)
        cj_fail(a->R->c, "%s takes at most %d positional argument(s), %d given", a->what,
                max_pos, a->n_pos);
    for (int i = a->n_pos; i < a->n; i++)
        if (!kws || find_name(kws, a->kw[i]) < 0)
            cj_fail(a->R->c, "%s got an unexpected keyword argument '%s'", a->what, a->kw[i]);
}

static const cj_val *str_arg(const args *a, int pos, const char *name, int required) {
    const cj_val *v = arg(a, pos, name);
    if (!v && required) cj_fail(a->R->c, "%s needs argument '%s'", a->what, name);
    if (v && v->t != CV_STR && !(v->t == CV_NONE && !required))
        cj_fail(a->R->c, "%s: argument '%s' must be a string, not %s", a->what, name,
                cj_type_name(v));
    return v && v->t == CV_STR ? v : NULL;
}

static cj_val str_of(cj_render *R, const cj_val *v) { return cj_as_str(R, v); }

/* ---- strings --------------------------------------------------------------------------- */

static cj_val strip(cj_render *R, const cj_val *s, const cj_val *chars, int l, int r) {
    size_t st, n;
    cj_strip(s->u.s.s, s->u.s.n, chars ? chars->u.s.s : NULL, chars ? chars->u.s.n : 0, l, r,
             &st, &n);
    (void)R;
    return cj_str(s->u.s.s + st, n);
}

/* mode 0 upper, 1 lower, 2 capitalize, 3 str.title, 4 Jinja's title filter (a word starts
 * after any of "-({[<" or whitespace); ASCII letters only */
static cj_val case_map(cj_render *R, const cj_val *s, int mode) {
    char *o = cj_strndup(R->c, s->u.s.s, s->u.s.n);
    int prev_letter = 0;
    for (size_t i = 0; i < s->u.s.n; i++) {
        char ch = o[i];
        int letter = (ch | 32) >= 'a' && (ch | 32) <= 'z';
        int up = mode == 0 || (mode == 2 && i == 0) || (mode == 3 && !prev_letter) ||
                 (mode == 4 && (i == 0 || (o[i - 1] && strchr("-({[< \t\n\r\f\v", o[i - 1]))));
        if (letter) o[i] = up ? (char)(ch & ~32) : (char)(ch | 32);
        prev_letter = letter || (unsigned char)ch >= 0x80; /* non-ASCII: assumed cased */
    }
    return cj_str(o, s->u.s.n);
}

static const char *find_sub(const char *s, size_t n, const char *sub, size_t m) {
    if (m == 0) return s;
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(s + i, sub, m)) return s + i;
    return NULL;
}

static cj_val replace(cj_render *R, const cj_val *s, const cj_val *old, const cj_val *new_,
                      long long count) {
    cj_buf b = {0};
    cj_buf_put(R, &b, "", 0);
    size_t i = 0;
    long long done = 0;
    if (old->u.s.n == 0) { /* Python inserts `new` between every character */
        for (size_t k = 0; k <= s->u.s.n; done++) {
            if (count < 0 || done < count) cj_buf_put(R, &b, new_->u.s.s, new_->u.s.n);
            if (k == s->u.s.n) break;
            uint32_t cp;
            size_t w = cj_utf8_next(s->u.s.s + k, s->u.s.n - k, &cp);
            cj_buf_put(R, &b, s->u.s.s + k, w);
            k += w;
        }
        return cj_buf_val(R, &b);
    }
    while (count < 0 || done < count) {
        const char *p = find_sub(s->u.s.s + i, s->u.s.n - i, old->u.s.s, old->u.s.n);
        if (!p) break;
        cj_buf_put(R, &b, s->u.s.s + i, (size_t)(p - s->u.s.s) - i);
        cj_buf_put(R, &b, new_->u.s.s, new_->u.s.n);
        i = (size_t)(p - s->u.s.s) + old->u.s.n;
        done++;
        cj_count_iter(R, 1);
    }
    cj_buf_put(R, &b, s->u.s.s + i, s->u.s.n - i);
    return cj_buf_val(R, &b);
}

/* str.split(sep=None, maxsplit=-1) */
static cj_val split(cj_render *R, const cj_val *s, const cj_val *sep, long long maxsplit) {
    cj_val parts[1];
    (void)parts;
    cj_val out = cj_list_of(R, s->u.s.n + 1);
    size_t n = 0, i = 0, len = s->u.s.n;
    const char *p = s->u.s.s;
    if (sep) {
        if (!sep->u.s.n) cj_fail(R->c, "split: empty separator");
        for (;;) {
            const char *q = (maxsplit < 0 || (long long)n < maxsplit)
                                ? find_sub(p + i, len - i, sep->u.s.s, sep->u.s.n) : NULL;
            if (!q) break;
            out.u.l->v[n++] = cj_str(p + i, (size_t)(q - p) - i);
            i = (size_t)(q - p) + sep->u.s.n;
        }
        out.u.l->v[n++] = cj_str(p + i, len - i);
    } else {
        for (;;) {
            size_t st, rest;
            cj_strip(p + i, len - i, NULL, 0, 1, 0, &st, &rest);
            i += st;
            if (i >= len) break;
            if (maxsplit >= 0 && (long long)n >= maxsplit) {
                size_t st2, r2;
                cj_strip(p + i, len - i, NULL, 0, 0, 1, &st2, &r2);
                out.u.l->v[n++] = cj_str(p + i, r2);
                break;
            }
            size_t j = i;
            while (j < len) {
                uint32_t cp;
                size_t w = cj_utf8_next(p + j, len - j, &cp);
                if (cj_is_space(cp)) break;
                j += w;
            }
            out.u.l->v[n++] = cj_str(p + i, j - i);
            i = j;
        }
    }
    cj_count_iter(R, (long long)n);
    out.u.l->n = n;
    return out;
}

static int affix(cj_render *R, const cj_val *s, const cj_val *x, int end) {
    if (x->t == CV_LIST && x->tuple) {
        for (size_t i = 0; i < x->u.l->n; i++)
            if (affix(R, s, &x->u.l->v[i], end)) return 1;
        return 0;
    }
    if (x->t != CV_STR)
        cj_fail(R->c, "%s first arg must be str or a tuple of str, not %s",
                end ? "endswith" : "startswith", cj_type_name(x));
    if (x->u.s.n > s->u.s.n) return 0;
    return !memcmp(s->u.s.s + (end ? s->u.s.n - x->u.s.n : 0), x->u.s.s, x->u.s.n);
}

static cj_val join(cj_render *R, const cj_val *seq, const cj_val *sep, const cj_val *attr);

static long long int_arg(const args *a, int pos, const char *name, long long dflt) {
    const cj_val *v = arg(a, pos, name);
    if (!v || v->t == CV_NONE) return dflt;
    if (v->t != CV_INT && v->t != CV_BOOL)
        cj_fail(a->R->c, "%s: argument '%s' must be an integer", a->what, name);
    return v->u.i;
}

static cj_val str_method(cj_render *R, int id, const cj_val *s, const args *a) {
    switch (id) {
    case M_STRIP: case M_LSTRIP: case M_RSTRIP:
        max_args(a, 1, NULL);
        return strip(R, s, str_arg(a, 0, "chars", 0), id != M_RSTRIP, id != M_LSTRIP);
    case M_SPLIT: {
        static const char *const kws[] = {"sep", "maxsplit", NULL};
        max_args(a, 2, kws);
        return split(R, s, str_arg(a, 0, "sep", 0), int_arg(a, 1, "maxsplit", -1));
    }
    case M_STARTSWITH: case M_ENDSWITH: {
        max_args(a, 1, NULL);
        const cj_val *x = arg(a, 0, NULL);
        if (!x) cj_fail(R->c, "%s needs an argument", a->what);
        return cj_bool(affix(R, s, x, id == M_ENDSWITH));
    }
    case M_UPPER: case M_LOWER: case M_TITLE: case M_CAPITALIZE:
        max_args(a, 0, NULL);
        return case_map(R, s, id == M_UPPER ? 0 : id == M_LOWER ? 1 : id == M_CAPITALIZE ? 2 : 3);
    case M_REPLACE:
        max_args(a, 3, NULL);
        return replace(R, s, str_arg(a, 0, "old", 1), str_arg(a, 1, "new", 1),
                       int_arg(a, 2, "count", -1));
    case M_FIND: case M_COUNT: {
        max_args(a, 1, NULL);
        const cj_val *x = str_arg(a, 0, "sub", 1);
        if (id == M_FIND) {
            const char *p = find_sub(s->u.s.s, s->u.s.n, x->u.s.s, x->u.s.n);
            return cj_int(p ? (long long)cj_utf8_len(s->u.s.s, (size_t)(p - s->u.s.s)) : -1);
        }
        if (!x->u.s.n) return cj_int((long long)cj_utf8_len(s->u.s.s, s->u.s.n) + 1);
        long long k = 0;
        for (const char *p = s->u.s.s; (p = find_sub(p, s->u.s.n - (size_t)(p - s->u.s.s),
                                                     x->u.s.s, x->u.s.n)); p += x->u.s.n)
            k++;
        return cj_int(k);
    }
    case M_JOIN: {
        max_args(a, 1, NULL);
        const cj_val *seq = arg(a, 0, NULL);
        if (!seq) cj_fail(R->c, "join needs an argument");
        cj_list *items = cj_iterate(R, seq);
        for (size_t i = 0; i < items->n; i++)
            if (items->v[i].t != CV_STR)
                cj_fail(R->c, "sequence item %zu: expected str instance, %s found", i,
                        cj_type_name(&items->v[i]));
        return join(R, seq, s, NULL);
    }
    }
    cj_fail(R->c, "internal error: string method %d", id);
}

static cj_val dict_method(cj_render *R, int id, const cj_val *obj, const args *a) {
    const cj_dict *d = obj->u.d;
    if (id == M_GET) {
        max_args(a, 2, NULL);
        const cj_val *k = arg(a, 0, NULL), *dflt = arg(a, 1, NULL);
        if (!k) cj_fail(R->c, "get needs a key");
        for (size_t i = 0; i < d->n; i++)
            if (cj_equal(R, &d->k[i], k)) return d->v[i];
        return dflt ? *dflt : (cj_val){.t = CV_NONE};
    }
    max_args(a, 0, NULL);
    cj_val out = cj_list_of(R, d->n);
    for (size_t i = 0; i < d->n; i++) {
        if (id == M_KEYS) out.u.l->v[i] = d->k[i];
        else if (id == M_VALUES) out.u.l->v[i] = d->v[i];
        else {
            cj_val pair = cj_list_of(R, 2);
            pair.tuple = 1;
            pair.u.l->v[0] = d->k[i];
            pair.u.l->v[1] = d->v[i];
            out.u.l->v[i] = pair;
        }
    }
    return out;
}

static cj_val list_method(cj_render *R, int id, const cj_val *obj, const args *a) {
    max_args(a, 1, NULL);
    const cj_val *x = arg(a, 0, NULL);
    if (!x) cj_fail(R->c, "%s needs an argument", a->what);
    long long k = 0;
    for (size_t i = 0; i < obj->u.l->n; i++)
        if (cj_equal(R, &obj->u.l->v[i], x)) {
            if (id == M_INDEX) return cj_int((long long)i);
            k++;
        }
    if (id == M_INDEX) cj_fail(R->c, "index: value is not in the list");
    return cj_int(k);
}

static cj_val g_range(cj_render *R, const args *a) {
    max_args(a, 3, NULL);
    long long lo = 0, hi, step = 1;
    if (a->n_pos == 0) cj_fail(R->c, "range expected at least 1 argument");
    if (a->n_pos == 1) {
        hi = int_arg(a, 0, NULL, 0);
    } else {
        lo = int_arg(a, 0, NULL, 0);
        hi = int_arg(a, 1, NULL, 0);
        step = int_arg(a, 2, NULL, 1);
    }
    if (step == 0) cj_fail(R->c, "range() arg 3 must not be zero");
    long double cnt = step > 0 ? (hi > lo ? ((long double)hi - lo + step - 1) / step : 0)
                               : (lo > hi ? ((long double)lo - hi - step - 1) / -step : 0);
    if (cnt > (long double)(R->max_iters - R->iters))
        cj_fail_code(R->c, T2_ERANGE, "range() of %.0Lf items exceeds the loop budget", cnt);
    long long n = (long long)cnt;
    cj_count_iter(R, n);
    cj_val out = cj_list_of(R, (size_t)n);
    for (long long i = 0; i < n; i++) out.u.l->v[i] = cj_int(lo + i * step);
    return out;
}

static cj_val g_strftime(cj_render *R, const args *a) {
    max_args(a, 1, NULL);
    const cj_val *fmt = str_arg(a, 0, "format", 1);
    if (fmt->u.s.n > 256) cj_fail(R->c, "strftime_now: format longer than 256 bytes");
    struct tm tm = {.tm_year = R->year - 1900, .tm_mon = R->month - 1, .tm_mday = R->day};
    tm.tm_isdst = -1;
    time_t t = timegm(&tm); /* fills in the weekday and the day of the year */
    gmtime_r(&t, &tm);
    char f[260], out[1024];
    memcpy(f, fmt->u.s.s, fmt->u.s.n);
    f[fmt->u.s.n] = 0;
    size_t n = strftime(out, sizeof out, f, &tm);
    if (n == 0 && fmt->u.s.n) cj_fail(R->c, "strftime_now: result too long or empty");
    return cj_str(cj_strndup(R->c, out, n), n);
}

cj_val cj_call_builtin(cj_render *R, const cj_val *fn, cj_val *argv, const char **kw, int n) {
    const char *what = fn->t == CV_METHOD ? method_names[fn->u.fn]
                       : fn->u.fn == G_RANGE ? "range" : fn->u.fn == G_NAMESPACE ? "namespace"
                       : fn->u.fn == G_RAISE ? "raise_exception"
                       : fn->u.fn == G_STRFTIME ? "strftime_now" : "dict";
    args a = mkargs(R, what, argv, kw, n);
    if (fn->t == CV_METHOD) {
        const cj_val *self = fn->self;
        if (self->t == CV_STR) return str_method(R, fn->u.fn, self, &a);
        if (self->t == CV_DICT) return dict_method(R, fn->u.fn, self, &a);
        if (self->t == CV_LOOP) { /* loop.cycle(a, b, ...) */
            if (a.n_pos == 0 || a.n != a.n_pos) cj_fail(R->c, "loop.cycle needs positional values");
            return argv[self->u.loop->index0 % a.n_pos];
        }
        return list_method(R, fn->u.fn, self, &a);
    }
    switch (fn->u.fn) {
    case G_RANGE: return g_range(R, &a);
    case G_STRFTIME: return g_strftime(R, &a);
    case G_RAISE: {
        const cj_val *msg = arg(&a, 0, NULL);
        cj_val s = msg ? cj_as_str(R, msg) : cj_str("", 0);
        cj_fail_code(R->c, T2_EINVAL, "raise_exception: %.*s", (int)s.u.s.n, s.u.s.s);
    }
    default: { /* namespace(...), dict(...): keyword arguments (and one mapping) */
        if (a.n_pos > 1) cj_fail(R->c, "%s takes at most 1 positional argument", what);
        cj_val d = {.t = fn->u.fn == G_NAMESPACE ? CV_NS : CV_DICT};
        d.u.d = cj_alloc(R->c, sizeof *d.u.d);
        if (a.n_pos == 1) {
            if (argv[0].t != CV_DICT && argv[0].t != CV_NS)
                cj_fail(R->c, "%s: the positional argument must be a mapping", what);
            for (size_t i = 0; i < argv[0].u.d->n; i++)
                cj_dict_set(R, d.u.d, argv[0].u.d->k[i], argv[0].u.d->v[i]);
        }
        for (int i = a.n_pos; i < n; i++)
            cj_dict_set(R, d.u.d, cj_str(kw[i], strlen(kw[i])), argv[i]);
        return d;
    }
    }
}

/* ---- tests ----------------------------------------------------------------------------- */

static int is_number(const cj_val *v) {
    return v->t == CV_BOOL || v->t == CV_INT || v->t == CV_FLOAT;
}
static int is_container(const cj_val *v) {
    return v->t == CV_UNDEF || v->t == CV_STR || v->t == CV_LIST || v->t == CV_DICT;
}

int cj_test(cj_render *R, int id, const cj_val *v, cj_val *argv, int n) {
    const cj_val *x = n > 0 ? &argv[0] : NULL;
    int needs = id >= T_EQUALTO && id <= T_IN ? 1 : id == T_DIVISIBLEBY || id == T_SAMEAS;
    if (n < needs) cj_fail(R->c, "test '%s' needs an argument", test_names[id]);
    if (n > needs) cj_fail(R->c, "test '%s' takes %d argument(s)", test_names[id], needs);
    switch (id) {
    case T_DEFINED: return v->t != CV_UNDEF;
    case T_UNDEFINED: return v->t == CV_UNDEF;
    case T_NONE: return v->t == CV_NONE;
    case T_BOOLEAN: return v->t == CV_BOOL;
    case T_TRUE: return v->t == CV_BOOL && v->u.i;
    case T_FALSE: return v->t == CV_BOOL && !v->u.i;
    case T_STRING: return v->t == CV_STR;
    case T_NUMBER: return is_number(v);
    case T_INTEGER: return v->t == CV_INT;
    case T_FLOAT: return v->t == CV_FLOAT;
    case T_MAPPING: return v->t == CV_DICT;
    case T_ITERABLE: case T_SEQUENCE: return is_container(v);
    case T_CALLABLE: return v->t == CV_FUNC || v->t == CV_METHOD || v->t == CV_MACRO;
    case T_EQUALTO: case T_EQ: case T_EQ2: return cj_equal(R, v, x);
    case T_NE: case T_NE2: return !cj_equal(R, v, x);
    case T_LT: case T_LT2: return cj_compare(R, v, x, "<") < 0;
    case T_LE: case T_LE2: return cj_compare(R, v, x, "<=") <= 0;
    case T_GT: case T_GT2: return cj_compare(R, v, x, ">") > 0;
    case T_GE: case T_GE2: return cj_compare(R, v, x, ">=") >= 0;
    case T_IN: {
        cj_list *items = cj_iterate(R, x);
        if (x->t == CV_STR) {
            if (v->t != CV_STR) cj_fail(R->c, "'in <string>' requires string as left operand");
            for (size_t i = 0; i + v->u.s.n <= x->u.s.n; i++)
                if (!memcmp(x->u.s.s + i, v->u.s.s, v->u.s.n)) return 1;
            return 0;
        }
        for (size_t i = 0; i < items->n; i++)
            if (cj_equal(R, v, &items->v[i])) return 1;
        return 0;
    }
    case T_ODD: case T_EVEN: case T_DIVISIBLEBY: {
        if (v->t != CV_INT && v->t != CV_BOOL)
            cj_fail(R->c, "test '%s' needs an integer", test_names[id]);
        if (id != T_DIVISIBLEBY) return (v->u.i % 2 != 0) == (id == T_ODD);
        if ((x->t != CV_INT && x->t != CV_BOOL) || x->u.i == 0)
            cj_fail(R->c, "divisibleby needs a non-zero integer");
        return v->u.i % x->u.i == 0;
    }
    case T_SAMEAS:
        if (v->t != x->t) return 0;
        if (v->t == CV_NONE || v->t == CV_UNDEF) return 1;
        if (v->t == CV_BOOL) return v->u.i == x->u.i;
        if (v->t == CV_LIST) return v->u.l == x->u.l;
        if (v->t == CV_DICT || v->t == CV_NS) return v->u.d == x->u.d;
        return cj_equal(R, v, x);
    case T_LOWER: case T_UPPER: {
        if (v->t != CV_STR) return 0;
        int cased = 0;
        for (size_t i = 0; i < v->u.s.n; i++) {
            char ch = v->u.s.s[i];
            if (ch >= 'a' && ch <= 'z') { if (id == T_UPPER) return 0; cased = 1; }
            if (ch >= 'A' && ch <= 'Z') { if (id == T_LOWER) return 0; cased = 1; }
        }
        return cased;
    }
    }
    cj_fail(R->c, "internal error: test %d", id);
}

/* ---- tojson ----------------------------------------------------------------------------- */

static void json_str(cj_render *R, cj_buf *b, const char *s, size_t n) {
    cj_buf_put(R, b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n"
                        : ch == '\r' ? "\\r" : ch == '\t' ? "\\t" : ch == '\b' ? "\\b"
                        : ch == '\f' ? "\\f" : NULL;
        if (!esc && ch >= 0x20) continue;
        cj_buf_put(R, b, s + run, i - run);
        run = i + 1;
        char u[8];
        if (!esc) {
            snprintf(u, sizeof u, "\\u%04x", ch);
            esc = u;
        }
        cj_buf_puts(R, b, esc);
    }
    cj_buf_put(R, b, s + run, n - run);
    cj_buf_put(R, b, "\"", 1);
}

static void json_newline(cj_render *R, cj_buf *b, const char *indent, int level) {
    cj_buf_put(R, b, "\n", 1);
    for (int i = 0; i < level; i++) cj_buf_puts(R, b, indent);
}

static void json_key(cj_render *R, cj_buf *b, const cj_val *k) {
    char tmp[64];
    switch (k->t) {
    case CV_STR: json_str(R, b, k->u.s.s, k->u.s.n); return;
    case CV_NONE: cj_buf_puts(R, b, "\"null\""); return;
    case CV_BOOL: cj_buf_puts(R, b, k->u.i ? "\"true\"" : "\"false\""); return;
    case CV_INT: case CV_FLOAT: {
        cj_buf t = {0};
        cj_to_str(R, &t, k, 0);
        snprintf(tmp, sizeof tmp, "\"%s\"", t.s);
        cj_buf_puts(R, b, tmp);
        return;
    }
    default: cj_fail(R->c, "tojson: keys must be str, int, float, bool or None, not %s",
                     cj_type_name(k));
    }
}

void cj_tojson(cj_render *R, cj_buf *b, const cj_val *v, const char *indent, const char *item_sep,
               const char *key_sep, int sort_keys, int level) {
    if (level > CJ_MAX_VALUE_DEPTH)
        cj_fail_code(R->c, T2_ERANGE, "tojson: a value nested more than %d levels deep",
                     CJ_MAX_VALUE_DEPTH);
    switch (v->t) {
    case CV_NONE: cj_buf_puts(R, b, "null"); return;
    case CV_BOOL: cj_buf_puts(R, b, v->u.i ? "true" : "false"); return;
    case CV_INT: cj_to_str(R, b, v, 0); return;
    case CV_FLOAT:
        if (isnan(v->u.f)) cj_buf_puts(R, b, "NaN");
        else if (isinf(v->u.f)) cj_buf_puts(R, b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else cj_to_str(R, b, v, 0);
        return;
    case CV_STR: json_str(R, b, v->u.s.s, v->u.s.n); return;
    case CV_LIST: case CV_DICT: {
        int dict = v->t == CV_DICT;
        size_t n = dict ? v->u.d->n : v->u.l->n;
        cj_buf_puts(R, b, dict ? "{" : "[");
        size_t *order = cj_alloc(R->c, (n + 1) * sizeof *order);
        for (size_t i = 0; i < n; i++) order[i] = i;
        for (size_t i = 1; dict && sort_keys && i < n; i++) /* insertion sort, stable */
            for (size_t j = i; j > 0 && cj_compare(R, &v->u.d->k[order[j - 1]],
                                                   &v->u.d->k[order[j]], "<") > 0; j--) {
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        for (size_t i = 0; i < n; i++) {
            if (i) cj_buf_puts(R, b, item_sep);
            if (indent) json_newline(R, b, indent, level + 1);
            if (dict) {
                json_key(R, b, &v->u.d->k[order[i]]);
                cj_buf_puts(R, b, key_sep);
            }
            cj_tojson(R, b, dict ? &v->u.d->v[order[i]] : &v->u.l->v[i], indent, item_sep,
                      key_sep, sort_keys, level + 1);
        }
        if (indent && n) json_newline(R, b, indent, level);
        cj_buf_puts(R, b, dict ? "}" : "]");
        return;
    }
    default: cj_fail(R->c, "tojson: Object of type %s is not JSON serializable", cj_type_name(v));
    }
}

static cj_val f_tojson(cj_render *R, const cj_val *in, const args *a) {
    static const char *const kws[] = {"indent", "separators", "sort_keys", NULL};
    max_args(a, 3, kws);
    const cj_val *ind = arg(a, 0, "indent"), *seps = arg(a, 1, "separators");
    const cj_val *sk = arg(a, 2, "sort_keys");
    const char *indent = NULL, *item_sep = ", ", *key_sep = ": ";
    if (ind && ind->t != CV_NONE) {
        if (ind->t == CV_STR) {
            indent = cj_strndup(R->c, ind->u.s.s, ind->u.s.n);
        } else if (ind->t == CV_INT || ind->t == CV_BOOL) {
            long long k = ind->u.i < 0 ? 0 : ind->u.i > 64 ? -1 : ind->u.i;
            if (k < 0) cj_fail(R->c, "tojson: indent larger than 64");
            char *s = cj_alloc(R->c, (size_t)k + 1);
            memset(s, ' ', (size_t)k);
            indent = s;
        } else {
            cj_fail(R->c, "tojson: indent must be an integer or a string");
        }
        item_sep = ",";
    }
    if (seps && seps->t != CV_NONE) {
        if (seps->t != CV_LIST || seps->u.l->n != 2 || seps->u.l->v[0].t != CV_STR ||
            seps->u.l->v[1].t != CV_STR)
            cj_fail(R->c, "tojson: separators must be a pair of strings");
        item_sep = cj_strndup(R->c, seps->u.l->v[0].u.s.s, seps->u.l->v[0].u.s.n);
        key_sep = cj_strndup(R->c, seps->u.l->v[1].u.s.s, seps->u.l->v[1].u.s.n);
    }
    cj_buf b = {0};
    cj_buf_put(R, &b, "", 0);
    cj_tojson(R, &b, in, indent, item_sep, key_sep, sk && cj_truthy(sk), 0);
    return cj_buf_val(R, &b);
}

/* ---- filters ------------------------------------------------------------------------- */

/* Jinja's attribute getter: "a.b.0" looks up item by item (an all-digit part is an index). */
static cj_val attr_get(cj_render *R, const cj_val *item, const cj_val *attr) {
    if (attr->t != CV_STR) return cj_getitem(R, item, attr);
    cj_val v = *item;
    const char *s = attr->u.s.s, *end = s + attr->u.s.n;
    while (s <= end) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        if (!dot) dot = end;
        size_t n = (size_t)(dot - s);
        int digits = n > 0;
        for (size_t i = 0; i < n; i++) digits &= s[i] >= '0' && s[i] <= '9';
        cj_val key = digits && n < 18 ? cj_int(strtoll(s, NULL, 10))
                                      : cj_str(cj_strndup(R->c, s, n), n);
        v = cj_getitem(R, &v, &key);
        s = dot + 1;
    }
    return v;
}

static cj_val join(cj_render *R, const cj_val *seq, const cj_val *sep, const cj_val *attr) {
    cj_list *items = cj_iterate(R, seq);
    cj_buf b = {0};
    cj_buf_put(R, &b, "", 0);
    for (size_t i = 0; i < items->n; i++) {
        if (i && sep) cj_buf_put(R, &b, sep->u.s.s, sep->u.s.n);
        cj_val v = attr ? attr_get(R, &items->v[i], attr) : items->v[i];
        cj_to_str(R, &b, &v, 0);
    }
    return cj_buf_val(R, &b);
}

/* select / reject / selectattr / rejectattr */
static cj_val select_items(cj_render *R, const cj_val *in, const args *a, int use_attr, int keep) {
    cj_list *items = cj_iterate(R, in);
    int k = 0;
    const cj_val *attr = NULL;
    if (use_attr) {
        attr = arg(a, k++, NULL);
        if (!attr) cj_fail(R->c, "%s needs an attribute", a->what);
    }
    const cj_val *test = arg(a, k++, NULL);
    int tid = -1;
    if (test) {
        if (test->t != CV_STR) cj_fail(R->c, "%s: the test name must be a string", a->what);
        tid = cj_test_id(test->u.s.s);
        if (tid < 0) cj_fail(R->c, "no test named '%s'", test->u.s.s);
    }
    cj_val out = cj_list_of(R, items->n);
    size_t n = 0;
    for (size_t i = 0; i < items->n; i++) {
        cj_count_iter(R, 1);
        cj_val v = attr ? attr_get(R, &items->v[i], attr) : items->v[i];
        int ok = tid < 0 ? cj_truthy(&v) : cj_test(R, tid, &v, a->v + k, a->n_pos - k);
        if (ok == keep) out.u.l->v[n++] = items->v[i];
    }
    out.u.l->n = n;
    return out;
}

static cj_val f_map(cj_render *R, const cj_val *in, const args *a) {
    cj_list *items = cj_iterate(R, in);
    const cj_val *attr = arg(a, -1, "attribute"), *dflt = arg(a, -1, "default");
    const cj_val *fname = arg(a, 0, NULL);
    int fid = -1;
    if (!attr) {
        if (!fname || fname->t != CV_STR) cj_fail(R->c, "map needs attribute= or a filter name");
        fid = cj_filter_id(fname->u.s.s);
        if (fid < 0) cj_fail(R->c, "no filter named '%s'", fname->u.s.s);
    }
    cj_val out = cj_list_of(R, items->n);
    for (size_t i = 0; i < items->n; i++) {
        cj_count_iter(R, 1);
        if (attr) {
            cj_val v = attr_get(R, &items->v[i], attr);
            out.u.l->v[i] = v.t == CV_UNDEF && dflt ? *dflt : v;
        } else {
            out.u.l->v[i] = cj_filter(R, fid, &items->v[i], a->v + 1, a->kw ? a->kw + 1 : NULL,
                                      a->n - 1);
        }
    }
    return out;
}

static cj_val f_items(cj_render *R, const cj_val *in) {
    if (in->t == CV_UNDEF) return cj_list_of(R, 0);
    if (in->t != CV_DICT) cj_fail(R->c, "can only get item pairs from a mapping");
    args none = mkargs(R, "items", NULL, NULL, 0);
    return dict_method(R, M_ITEMS, in, &none);
}

static cj_val f_length(cj_render *R, const cj_val *in) {
    switch (in->t) {
    case CV_UNDEF: return cj_int(0);
    case CV_STR: return cj_int((long long)cj_utf8_len(in->u.s.s, in->u.s.n));
    case CV_LIST: return cj_int((long long)in->u.l->n);
    case CV_DICT: return cj_int((long long)in->u.d->n);
    default: cj_fail(R->c, "object of type '%s' has no len()", cj_type_name(in));
    }
}

static cj_val f_first_last(cj_render *R, const cj_val *in, int last) {
    cj_list *items = cj_iterate(R, in);
    if (!items->n)
        return cj_undef(R, "No %s item, sequence was empty.", last ? "last" : "first");
    return items->v[last ? items->n - 1 : 0];
}

static cj_val f_reverse(cj_render *R, const cj_val *in) {
    cj_list *items = cj_iterate(R, in);
    cj_val out = cj_list_of(R, items->n);
    for (size_t i = 0; i < items->n; i++) out.u.l->v[i] = items->v[items->n - 1 - i];
    return in->t == CV_STR ? join(R, &out, NULL, NULL) : out;
}

static cj_val f_escape(cj_render *R, const cj_val *in) {
    cj_val s = str_of(R, in);
    cj_buf b = {0};
    cj_buf_put(R, &b, "", 0);
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.s[i];
        const char *e = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;"
                      : ch == '"' ? "&#34;" : ch == '\'' ? "&#39;" : NULL;
        if (e) cj_buf_puts(R, &b, e);
        else cj_buf_put(R, &b, &ch, 1);
    }
    return cj_buf_val(R, &b);
}

/* The sort key of an item: its attribute (or dictsort's key / value), lower-cased when the
 * comparison ignores case (Jinja's default). */
static cj_val sort_key(cj_render *R, const cj_val *item, const cj_val *attr, int by_value,
                       int dictsort, int case_sensitive) {
    cj_val k = dictsort ? item->u.l->v[by_value] : attr ? attr_get(R, item, attr) : *item;
    return k.t == CV_STR && !case_sensitive ? case_map(R, &k, 1) : k;
}

/* sort(reverse, case_sensitive, attribute), unique(case_sensitive, attribute),
 * dictsort(case_sensitive, by, reverse), min / max(case_sensitive, attribute) */
static cj_val f_collect(cj_render *R, int id, const cj_val *in, const args *a) {
    int sort = id == F_SORT, ds = id == F_DICTSORT;
    const cj_val *rev = arg(a, sort ? 0 : ds ? 2 : -1, "reverse");
    const cj_val *cs = arg(a, sort ? 1 : 0, "case_sensitive");
    const cj_val *attr = ds ? NULL : arg(a, sort ? 2 : 1, "attribute");
    const cj_val *by = ds ? arg(a, 1, "by") : NULL;
    int by_value = by && by->t == CV_STR && by->u.s.n == 5 && !memcmp(by->u.s.s, "value", 5);
    int reverse = rev && cj_truthy(rev), case_sensitive = cs && cj_truthy(cs);
    cj_val src = ds ? f_items(R, in) : *in;
    cj_list *items = cj_iterate(R, &src);
    cj_val out = cj_list_of(R, items->n), keys = cj_list_of(R, items->n);
    size_t n = 0;
    for (size_t i = 0; i < items->n; i++) {
        cj_count_iter(R, (long long)n + 1);
        cj_val key = sort_key(R, &items->v[i], attr, by_value, ds, case_sensitive);
        size_t j = n;
        if (id == F_UNIQUE) {
            j = 0;
            while (j < n && !cj_equal(R, &keys.u.l->v[j], &key)) j++;
            if (j < n) continue;
        } else { /* stable insertion, as Python's sorted(reverse=...) */
            for (; j > 0; j--) {
                int c = cj_compare(R, &keys.u.l->v[j - 1], &key, "<");
                if (reverse ? c >= 0 : c <= 0) break;
                keys.u.l->v[j] = keys.u.l->v[j - 1];
                out.u.l->v[j] = out.u.l->v[j - 1];
            }
        }
        keys.u.l->v[j] = key;
        out.u.l->v[j] = items->v[i];
        n++;
    }
    out.u.l->n = n;
    if (id == F_MIN || id == F_MAX)
        return n ? out.u.l->v[id == F_MIN ? 0 : n - 1]
                 : cj_undef(R, "No aggregated item, sequence was empty.");
    return out;
}

static cj_val f_sum(cj_render *R, const cj_val *in, const args *a) {
    const cj_val *attr = arg(a, -1, "attribute"), *start = arg(a, -1, "start");
    cj_list *items = cj_iterate(R, in);
    cj_val acc = start ? *start : cj_int(0);
    for (size_t i = 0; i < items->n; i++) {
        cj_val v = attr ? attr_get(R, &items->v[i], attr) : items->v[i];
        if (!((acc.t == CV_INT || acc.t == CV_BOOL || acc.t == CV_FLOAT) &&
              (v.t == CV_INT || v.t == CV_BOOL || v.t == CV_FLOAT)))
            cj_fail(R->c, "sum: items must be numbers");
        if (acc.t == CV_FLOAT || v.t == CV_FLOAT)
            acc = (cj_val){.t = CV_FLOAT, .u.f = (acc.t == CV_FLOAT ? acc.u.f : (double)acc.u.i) +
                                                 (v.t == CV_FLOAT ? v.u.f : (double)v.u.i)};
        else if (__builtin_add_overflow(acc.u.i, v.u.i, &acc.u.i))
            cj_fail_code(R->c, T2_ERANGE, "integer overflow");
        else acc.t = CV_INT;
    }
    return acc;
}

/* Length of a line break (Python's str.splitlines) at s[i], 0 if none. */
static size_t line_break(const char *s, size_t n, size_t i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r') return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
    if (c == '\n' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E)) return 1;
    uint32_t cp;
    size_t k = cj_utf8_next(s + i, n - i, &cp);
    return cp == 0x85 || cp == 0x2028 || cp == 0x2029 ? k : 0;
}

/* indent(width=4, first=False, blank=False), as Jinja 3.1 */
static cj_val f_indent(cj_render *R, const cj_val *in, const args *a) {
    static const char *const kws[] = {"width", "first", "blank", NULL};
    max_args(a, 3, kws);
    const cj_val *w = arg(a, 0, "width"), *first = arg(a, 1, "first"), *blank = arg(a, 2, "blank");
    cj_val ind = w && w->t == CV_STR ? *w : cj_str("    ", 4);
    if (w && w->t != CV_STR) {
        long long k = int_arg(a, 0, "width", 4);
        k = k < 0 ? 0 : k > 256 ? -1 : k;
        if (k < 0) cj_fail(R->c, "indent: width larger than 256");
        char *sp = cj_alloc(R->c, (size_t)k + 1);
        memset(sp, ' ', (size_t)k);
        ind = cj_str(sp, (size_t)k);
    }
    cj_val s = str_of(R, in);
    cj_buf b = {0};
    cj_buf_put(R, &b, "", 0);
    if (first && cj_truthy(first)) cj_buf_put(R, &b, ind.u.s.s, ind.u.s.n);
    size_t start = 0;
    int line = 0;
    for (size_t i = 0; i <= s.u.s.n;) { /* the text plus a final "\n", split into lines */
        size_t k = i < s.u.s.n ? line_break(s.u.s.s, s.u.s.n, i) : 1;
        if (!k) {
            i++;
            continue;
        }
        if (line) {
            cj_buf_put(R, &b, "\n", 1);
            if (i > start || (blank && cj_truthy(blank))) cj_buf_put(R, &b, ind.u.s.s, ind.u.s.n);
        }
        cj_buf_put(R, &b, s.u.s.s + start, i - start);
        line++;
        i += k;
        start = i;
        cj_count_iter(R, 1);
    }
    return cj_buf_val(R, &b);
}

static cj_val f_number(cj_render *R, const cj_val *in, const args *a, int to_int) {
    const cj_val *dflt = arg(a, 0, "default");
    cj_val d = dflt ? *dflt : to_int ? cj_int(0) : (cj_val){.t = CV_FLOAT, .u.f = 0};
    double f;
    if (in->t == CV_INT || in->t == CV_BOOL) f = (double)in->u.i;
    else if (in->t == CV_FLOAT) f = in->u.f;
    else if (in->t == CV_STR) {
        char *s = cj_strndup(R->c, in->u.s.s, in->u.s.n), *end;
        f = strtod(s, &end);
        if (end == s || *end) return d;
    } else return d;
    if (!to_int) return (cj_val){.t = CV_FLOAT, .u.f = f};
    if (in->t == CV_INT || in->t == CV_BOOL) return cj_int(in->u.i);
    if (!(f > -9.2e18 && f < 9.2e18)) return d;
    return cj_int((long long)f);
}

cj_val cj_filter(cj_render *R, int id, const cj_val *in, cj_val *argv, const char **kw, int n) {
    args a = mkargs(R, filter_names[id], argv, kw, n);
    switch (id) {
    case F_TRIM: {
        cj_val s = str_of(R, in);
        max_args(&a, 1, NULL);
        return strip(R, &s, str_arg(&a, 0, "chars", 0), 1, 1);
    }
    case F_LENGTH: case F_COUNT: max_args(&a, 0, NULL); return f_length(R, in);
    case F_TOJSON: return f_tojson(R, in, &a);
    case F_UPPER: case F_LOWER: case F_CAPITALIZE: case F_TITLE: {
        max_args(&a, 0, NULL);
        cj_val s = str_of(R, in);
        return case_map(R, &s, id == F_UPPER ? 0 : id == F_LOWER ? 1 : id == F_CAPITALIZE ? 2 : 4);
    }
    case F_DEFAULT: case F_D: {
        static const char *const kws[] = {"default_value", "boolean", NULL};
        max_args(&a, 2, kws);
        const cj_val *d = arg(&a, 0, "default_value"), *boolean = arg(&a, 1, "boolean");
        int use = in->t == CV_UNDEF || (boolean && cj_truthy(boolean) && !cj_truthy(in));
        return use ? (d ? *d : cj_str("", 0)) : *in;
    }
    case F_JOIN: {
        static const char *const kws[] = {"d", "attribute", NULL};
        max_args(&a, 2, kws);
        const cj_val *sep = arg(&a, 0, "d");
        cj_val s = sep ? str_of(R, sep) : cj_str("", 0);
        return join(R, in, &s, arg(&a, 1, "attribute"));
    }
    case F_STRING: case F_SAFE: max_args(&a, 0, NULL); return str_of(R, in);
    case F_ITEMS: max_args(&a, 0, NULL); return f_items(R, in);
    case F_LIST: {
        max_args(&a, 0, NULL);
        cj_val l = {.t = CV_LIST};
        l.u.l = cj_iterate(R, in);
        return l;
    }
    case F_FIRST: case F_LAST: max_args(&a, 0, NULL); return f_first_last(R, in, id == F_LAST);
    case F_REPLACE: {
        max_args(&a, 3, NULL);
        cj_val s = str_of(R, in), o = str_of(R, str_arg(&a, 0, "old", 1) ? &argv[0] : in);
        cj_val nw = str_of(R, str_arg(&a, 1, "new", 1) ? &argv[1] : in);
        return replace(R, &s, &o, &nw, int_arg(&a, 2, "count", -1));
    }
    case F_SELECTATTR: case F_REJECTATTR: case F_SELECT: case F_REJECT:
        max_args(&a, 64, NULL);
        return select_items(R, in, &a, id == F_SELECTATTR || id == F_REJECTATTR,
                            id == F_SELECTATTR || id == F_SELECT);
    case F_MAP: return f_map(R, in, &a);
    case F_REVERSE: max_args(&a, 0, NULL); return f_reverse(R, in);
    case F_ABS:
        max_args(&a, 0, NULL);
        if (in->t == CV_FLOAT) return (cj_val){.t = CV_FLOAT, .u.f = fabs(in->u.f)};
        if (in->t != CV_INT && in->t != CV_BOOL) cj_fail(R->c, "abs needs a number");
        if (in->u.i == LLONG_MIN) cj_fail_code(R->c, T2_ERANGE, "integer overflow");
        return cj_int(in->u.i < 0 ? -in->u.i : in->u.i);
    case F_INT: case F_FLOAT: {
        static const char *const kws[] = {"default", "base", NULL};
        max_args(&a, 1, kws);
        return f_number(R, in, &a, id == F_INT);
    }
    case F_ESCAPE: case F_E: max_args(&a, 0, NULL); return f_escape(R, in);
    case F_INDENT: return f_indent(R, in, &a);
    case F_SUM: {
        static const char *const kws[] = {"attribute", "start", NULL};
        max_args(&a, 0, kws);
        return f_sum(R, in, &a);
    }
    default: { /* unique, dictsort, sort, min, max */
        static const char *const kws[] = {"attribute", "reverse", "case_sensitive", "by", NULL};
        max_args(&a, id == F_SORT || id == F_DICTSORT ? 3 : 2, kws);
        return f_collect(R, id, in, &a);
    }
    }
}
