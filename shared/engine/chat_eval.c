/* chat_eval.c - the chat-template evaluator: values with Python's semantics (as Jinja inherits
 * them: str(), ==, <, +, truthiness, slicing by code point), Jinja's Undefined (prints as "",
 * false, iterates as empty, fails on attribute access and arithmetic), scopes (a for loop's
 * body gets a fresh frame per iteration; macros see the template's top-level frame) and the
 * statements. Every step is bounded: loop iterations, macro depth, output and arena size.
 */
#include "engine/chat_int.h"

#include "base/t2_err.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cj_frame {
    cj_frame *up;
    cj_dict vars;
};

/* ---- small constructors and the string builder ---------------------------------------- */

cj_val cj_str(const char *s, size_t n) {
    cj_val v = {.t = CV_STR};
    v.u.s.s = s;
    v.u.s.n = n;
    return v;
}
cj_val cj_int(long long i) {
    cj_val v = {.t = CV_INT};
    v.u.i = i;
    return v;
}
cj_val cj_bool(int b) {
    cj_val v = {.t = CV_BOOL};
    v.u.i = b != 0;
    return v;
}
cj_val cj_list_of(cj_render *R, size_t n) {
    cj_val v = {.t = CV_LIST};
    v.u.l = cj_alloc(R->c, sizeof *v.u.l);
    v.u.l->n = n;
    v.u.l->v = n ? cj_alloc(R->c, n * sizeof(cj_val)) : NULL;
    return v;
}

void cj_buf_put(cj_render *R, cj_buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *ns = cj_alloc(R->c, cap);
        if (b->n) memcpy(ns, b->s, b->n);
        b->s = ns;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
void cj_buf_puts(cj_render *R, cj_buf *b, const char *s) { cj_buf_put(R, b, s, strlen(s)); }
cj_val cj_buf_val(cj_render *R, cj_buf *b) {
    if (!b->s) return cj_str("", 0);
    (void)R;
    return cj_str(b->s, b->n);
}

size_t cj_utf8_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += cj_utf8_next(s + i, n - i, &cp);
        k++;
    }
    return k;
}

void cj_count_iter(cj_render *R, long long n) {
    R->iters += n;
    if (R->iters > R->max_iters)
        cj_fail_code(R->c, T2_ERANGE, "more than %lld loop iterations: the template runs away",
                     R->max_iters);
}

cj_val cj_undef(cj_render *R, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return (cj_val){.t = CV_UNDEF, .hint = cj_strndup(R->c, msg, strlen(msg))};
}

const char *cj_undef_msg(const cj_val *v) { return v->hint ? v->hint : "value is undefined"; }

const char *cj_obj_repr(const cj_val *v) {
    static const char *const names[] = {"Undefined object", "None", "bool object", "int object",
                                        "float object", "str object", "list object",
                                        "dict object", "jinja2.utils.Namespace object",
                                        "jinja2.runtime.LoopContext object", "function object",
                                        "builtin_function_or_method object", "Macro object"};
    if (v->t == CV_LIST && v->tuple) return "tuple object";
    return names[v->t];
}

void cj_value_enter(cj_render *R) {
    if (++R->vdepth > CJ_MAX_VALUE_DEPTH)
        cj_fail_code(R->c, T2_ERANGE, "a value nested more than %d levels deep",
                     CJ_MAX_VALUE_DEPTH);
}

/* ---- dicts and frames ------------------------------------------------------------------- */

const cj_val *cj_dict_get(const cj_dict *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == CV_STR && d->k[i].u.s.n == n && !memcmp(d->k[i].u.s.s, key, n))
            return &d->v[i];
    return NULL;
}

void cj_dict_set(cj_render *R, cj_dict *d, cj_val k, cj_val v) {
    cj_count_iter(R, (long long)(d->n / 16)); /* the linear search, for huge dicts */
    for (size_t i = 0; i < d->n; i++)
        if (cj_equal(R, &d->k[i], &k)) {
            d->v[i] = v;
            return;
        }
    cj_dict_append(R, d, k, v);
}

void cj_dict_append(cj_render *R, cj_dict *d, cj_val k, cj_val v) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        cj_val *nk = cj_alloc(R->c, cap * sizeof *nk), *nv = cj_alloc(R->c, cap * sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

cj_frame *cj_frame_new(cj_render *R, cj_frame *up) {
    cj_frame *f = cj_alloc(R->c, sizeof *f);
    f->up = up;
    return f;
}

void cj_define(cj_render *R, cj_frame *f, const char *name, cj_val v) {
    cj_dict_set(R, &f->vars, cj_str(name, strlen(name)), v);
}

cj_val cj_lookup(cj_render *R, const char *name) {
    size_t n = strlen(name);
    for (cj_frame *f = R->frame; f; f = f->up) {
        const cj_val *v = cj_dict_get(&f->vars, name, n);
        if (v) return *v;
    }
    cj_val g = cj_global(R, name);
    return g.t == CV_UNDEF ? cj_undef(R, "'%s' is undefined", name) : g;
}

/* ---- Python semantics -------------------------------------------------------------------- */

const char *cj_type_name(const cj_val *v) {
    static const char *const names[] = {"Undefined", "NoneType", "bool",      "int",
                                        "float",     "str",      "list",      "dict",
                                        "Namespace", "LoopContext", "function", "method",
                                        "Macro"};
    if (v->t == CV_LIST && v->tuple) return "tuple";
    return names[v->t];
}

int cj_truthy(const cj_val *v) {
    switch (v->t) {
    case CV_UNDEF: case CV_NONE: return 0;
    case CV_BOOL: case CV_INT: return v->u.i != 0;
    case CV_FLOAT: return v->u.f != 0;
    case CV_STR: return v->u.s.n > 0;
    case CV_LIST: return v->u.l->n > 0;
    case CV_DICT: return v->u.d->n > 0;
    default: return 1;
    }
}

static int is_num(const cj_val *v) { return v->t == CV_BOOL || v->t == CV_INT || v->t == CV_FLOAT; }
static double num(const cj_val *v) { return v->t == CV_FLOAT ? v->u.f : (double)v->u.i; }

static int equal(cj_render *R, const cj_val *a, const cj_val *b);

int cj_equal(cj_render *R, const cj_val *a, const cj_val *b) {
    if (a->t != CV_LIST && a->t != CV_DICT) return equal(R, a, b);
    cj_value_enter(R);
    int r = equal(R, a, b);
    cj_value_leave(R);
    return r;
}

static int equal(cj_render *R, const cj_val *a, const cj_val *b) {
    if (is_num(a) && is_num(b)) {
        if (a->t != CV_FLOAT && b->t != CV_FLOAT) return a->u.i == b->u.i;
        return num(a) == num(b);
    }
    if (a->t != b->t) return 0;
    switch (a->t) {
    case CV_UNDEF: case CV_NONE: return 1;
    case CV_STR: return a->u.s.n == b->u.s.n && !memcmp(a->u.s.s, b->u.s.s, a->u.s.n);
    case CV_LIST:
        if (a->tuple != b->tuple || a->u.l->n != b->u.l->n) return 0;
        for (size_t i = 0; i < a->u.l->n; i++)
            if (!cj_equal(R, &a->u.l->v[i], &b->u.l->v[i])) return 0;
        return 1;
    case CV_DICT:
        if (a->u.d->n != b->u.d->n) return 0;
        for (size_t i = 0; i < a->u.d->n; i++) {
            size_t j = 0;
            while (j < b->u.d->n && !cj_equal(R, &a->u.d->k[i], &b->u.d->k[j])) j++;
            if (j == b->u.d->n || !cj_equal(R, &a->u.d->v[i], &b->u.d->v[j])) return 0;
        }
        return 1;
    case CV_NS: return a->u.d == b->u.d;
    case CV_LOOP: return a->u.loop == b->u.loop;
    case CV_FUNC: return a->u.fn == b->u.fn;
    case CV_MACRO: return a->u.macro == b->u.macro;
    default: return 0;
    }
}

int cj_compare(cj_render *R, const cj_val *a, const cj_val *b, const char *op) {
    if (a->t == CV_UNDEF || b->t == CV_UNDEF)
        cj_fail(R->c, "%s", cj_undef_msg(a->t == CV_UNDEF ? a : b));
    if (is_num(a) && is_num(b)) {
        if (a->t != CV_FLOAT && b->t != CV_FLOAT) return (a->u.i > b->u.i) - (a->u.i < b->u.i);
        return (num(a) > num(b)) - (num(a) < num(b));
    }
    if (a->t == CV_STR && b->t == CV_STR) {
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int r = memcmp(a->u.s.s, b->u.s.s, n);
        if (r) return r;
        return (a->u.s.n > b->u.s.n) - (a->u.s.n < b->u.s.n);
    }
    if (a->t == CV_LIST && b->t == CV_LIST && a->tuple == b->tuple) {
        cj_value_enter(R);
        for (size_t i = 0; i < a->u.l->n && i < b->u.l->n; i++)
            if (!cj_equal(R, &a->u.l->v[i], &b->u.l->v[i])) {
                int r = cj_compare(R, &a->u.l->v[i], &b->u.l->v[i], op);
                cj_value_leave(R);
                return r;
            }
        cj_value_leave(R);
        return (a->u.l->n > b->u.l->n) - (a->u.l->n < b->u.l->n);
    }
    cj_fail(R->c, "'%s' not supported between instances of '%s' and '%s'", op, cj_type_name(a),
            cj_type_name(b));
}

/* Python's repr() of a float: the shortest digits that read back the same. */
static void fmt_float(char *out, size_t cap, double f) {
    if (isnan(f)) { snprintf(out, cap, "nan"); return; }
    if (isinf(f)) { snprintf(out, cap, f < 0 ? "-inf" : "inf"); return; }
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    char *ep = strchr(e, 'e');
    int exp = atoi(ep + 1);
    char digits[24];
    size_t nd = 0;
    for (const char *p = e; p < ep; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    digits[nd] = 0;
    const char *sign = f < 0 ? "-" : "";
    if (exp < -4 || exp >= 16) {
        snprintf(out, cap, "%s%c%s%s%se%c%02d", sign, digits[0], nd > 1 ? "." : "", digits + 1,
                 "", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        snprintf(out, cap, "%s0.%0*d%s", sign, -exp - 1, 0, digits);
        if (-exp - 1 == 0) snprintf(out, cap, "%s0.%s", sign, digits);
    } else if ((int)nd <= exp + 1) {
        snprintf(out, cap, "%s%s%0*d.0", sign, digits, exp + 1 - (int)nd, 0);
        if (exp + 1 - (int)nd == 0) snprintf(out, cap, "%s%s.0", sign, digits);
    } else {
        snprintf(out, cap, "%s%.*s.%s", sign, exp + 1, digits, digits + exp + 1);
    }
}

static void repr_str(cj_render *R, cj_buf *b, const char *s, size_t n) {
    char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';
    cj_buf_put(R, b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '\\' || ch == (unsigned char)q) {
            esc[0] = '\\';
            esc[1] = (char)ch;
            cj_buf_put(R, b, esc, 2);
        } else if (ch == '\n') cj_buf_puts(R, b, "\\n");
        else if (ch == '\r') cj_buf_puts(R, b, "\\r");
        else if (ch == '\t') cj_buf_puts(R, b, "\\t");
        else if (ch < 0x20 || ch == 0x7F) {
            snprintf(esc, sizeof esc, "\\x%02x", ch);
            cj_buf_puts(R, b, esc);
        } else cj_buf_put(R, b, s + i, 1);
    }
    cj_buf_put(R, b, &q, 1);
}

void cj_to_str(cj_render *R, cj_buf *b, const cj_val *v, int repr) {
    char tmp[64];
    switch (v->t) {
    case CV_UNDEF: if (repr) cj_buf_puts(R, b, "Undefined"); return;
    case CV_NONE: cj_buf_puts(R, b, "None"); return;
    case CV_BOOL: cj_buf_puts(R, b, v->u.i ? "True" : "False"); return;
    case CV_INT: snprintf(tmp, sizeof tmp, "%lld", v->u.i); cj_buf_puts(R, b, tmp); return;
    case CV_FLOAT: fmt_float(tmp, sizeof tmp, v->u.f); cj_buf_puts(R, b, tmp); return;
    case CV_STR:
        if (repr) repr_str(R, b, v->u.s.s, v->u.s.n);
        else cj_buf_put(R, b, v->u.s.s, v->u.s.n);
        return;
    case CV_LIST:
        cj_value_enter(R);
        cj_buf_puts(R, b, v->tuple ? "(" : "[");
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) cj_buf_puts(R, b, ", ");
            cj_to_str(R, b, &v->u.l->v[i], 1);
        }
        cj_buf_puts(R, b, v->tuple ? (v->u.l->n == 1 ? ",)" : ")") : "]");
        cj_value_leave(R);
        return;
    case CV_DICT: case CV_NS:
        cj_value_enter(R);
        cj_buf_puts(R, b, v->t == CV_NS ? "<Namespace {" : "{");
        for (size_t i = 0; i < v->u.d->n; i++) {
            if (i) cj_buf_puts(R, b, ", ");
            cj_to_str(R, b, &v->u.d->k[i], 1);
            cj_buf_puts(R, b, ": ");
            cj_to_str(R, b, &v->u.d->v[i], 1);
        }
        cj_buf_puts(R, b, v->t == CV_NS ? "}>" : "}");
        cj_value_leave(R);
        return;
    default: cj_buf_puts(R, b, "<"); cj_buf_puts(R, b, cj_type_name(v)); cj_buf_puts(R, b, ">");
    }
}

cj_val cj_as_str(cj_render *R, const cj_val *v) {
    if (v->t == CV_STR) return *v;
    cj_buf b = {0};
    cj_to_str(R, &b, v, 0);
    return cj_buf_val(R, &b);
}

/* ---- attribute and item access, iteration ------------------------------------------------ */

static cj_val no_attr(cj_render *R, const cj_val *obj, const char *name) {
    return cj_undef(R, "'%s' has no attribute '%s'", cj_obj_repr(obj), name);
}

static cj_val loop_attr(cj_render *R, const cj_loop *L, const char *name) {
    long long i = L->index0, n = L->length;
    if (!strcmp(name, "index0")) return cj_int(i);
    if (!strcmp(name, "index")) return cj_int(i + 1);
    if (!strcmp(name, "revindex0")) return cj_int(n - i - 1);
    if (!strcmp(name, "revindex")) return cj_int(n - i);
    if (!strcmp(name, "first")) return cj_bool(i == 0);
    if (!strcmp(name, "last")) return cj_bool(i == n - 1);
    if (!strcmp(name, "length")) return cj_int(n);
    if (!strcmp(name, "depth")) return cj_int(1);
    if (!strcmp(name, "depth0")) return cj_int(0);
    if (!strcmp(name, "previtem"))
        return i > 0 ? L->items->v[i - 1] : cj_undef(R, "there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? L->items->v[i + 1] : cj_undef(R, "there is no next item");
    cj_val obj = {.t = CV_LOOP, .u.loop = (cj_loop *)L};
    if (!strcmp(name, "cycle")) return cj_method(R, &obj, name);
    return no_attr(R, &obj, name);
}

cj_val cj_getattr(cj_render *R, const cj_val *obj, const char *name) {
    switch (obj->t) {
    case CV_UNDEF: cj_fail(R->c, "%s", cj_undef_msg(obj));
    case CV_LOOP: return loop_attr(R, obj->u.loop, name);
    case CV_NS: {
        const cj_val *v = cj_dict_get(obj->u.d, name, strlen(name));
        return v ? *v : no_attr(R, obj, name);
    }
    case CV_DICT: {
        cj_val m = cj_method(R, obj, name);
        if (m.t != CV_UNDEF) return m;
        const cj_val *v = cj_dict_get(obj->u.d, name, strlen(name));
        return v ? *v : no_attr(R, obj, name);
    }
    default: {
        cj_val m = cj_method(R, obj, name);
        return m.t != CV_UNDEF ? m : no_attr(R, obj, name);
    }
    }
}

/* Python index semantics: negative from the end; -1 if out of range. */
static long long norm_index(long long i, long long n) {
    if (i < 0) i += n;
    return i < 0 || i >= n ? -1 : i;
}

/* Byte offset of code point k in s (k <= code points). */
static size_t cp_offset(const char *s, size_t n, size_t k) {
    size_t i = 0;
    while (k-- && i < n) {
        uint32_t cp;
        i += cj_utf8_next(s + i, n - i, &cp);
    }
    return i;
}

cj_val cj_getitem(cj_render *R, const cj_val *obj, const cj_val *key) {
    if (obj->t == CV_UNDEF) cj_fail(R->c, "%s", cj_undef_msg(obj));
    if ((obj->t == CV_DICT || obj->t == CV_NS)) {
        for (size_t i = 0; i < obj->u.d->n; i++)
            if (cj_equal(R, &obj->u.d->k[i], key)) return obj->u.d->v[i];
    } else if ((obj->t == CV_LIST || obj->t == CV_STR) && (key->t == CV_INT || key->t == CV_BOOL)) {
        if (obj->t == CV_LIST) {
            long long i = norm_index(key->u.i, (long long)obj->u.l->n);
            return i < 0 ? cj_undef(R, "%s has no element %lld", cj_obj_repr(obj), key->u.i)
                         : obj->u.l->v[i];
        }
        size_t n = cj_utf8_len(obj->u.s.s, obj->u.s.n);
        long long i = norm_index(key->u.i, (long long)n);
        if (i < 0) return cj_undef(R, "str object has no element %lld", key->u.i);
        size_t a = cp_offset(obj->u.s.s, obj->u.s.n, (size_t)i);
        uint32_t cp;
        size_t k = cj_utf8_next(obj->u.s.s + a, obj->u.s.n - a, &cp);
        return cj_str(obj->u.s.s + a, k);
    }
    if (key->t == CV_STR && obj->t != CV_DICT) return cj_getattr(R, obj, key->u.s.s);
    if (key->t == CV_STR) return no_attr(R, obj, key->u.s.s);
    cj_buf b = {0};
    cj_to_str(R, &b, key, 1);
    return cj_undef(R, "%s has no element %s", cj_obj_repr(obj), b.s ? b.s : "");
}

/* obj[start:stop:step] on a list or a string (by code point), Python's rules. */
static cj_val slice(cj_render *R, const cj_val *obj, const cj_val *sv[3]) {
    long long idx[3] = {0, 0, 1};
    int given[3];
    for (int k = 0; k < 3; k++) {
        given[k] = sv[k] && sv[k]->t != CV_NONE;
        if (!given[k]) continue;
        if (sv[k]->t != CV_INT && sv[k]->t != CV_BOOL)
            cj_fail(R->c, "slice indices must be integers or none, not %s", cj_type_name(sv[k]));
        idx[k] = sv[k]->u.i;
    }
    long long step = idx[2];
    if (step == 0) cj_fail(R->c, "slice step cannot be zero");
    if (obj->t != CV_LIST && obj->t != CV_STR)
        cj_fail(R->c, "'%s' object is not subscriptable", cj_type_name(obj));
    long long n = obj->t == CV_LIST ? (long long)obj->u.l->n
                                    : (long long)cj_utf8_len(obj->u.s.s, obj->u.s.n);
    long long b[2] = {step > 0 ? 0 : n - 1, step > 0 ? n : -1};
    for (int k = 0; k < 2; k++) {
        if (!given[k]) continue;
        long long v = idx[k];
        if (v < 0) {
            v += n;
            if (v < 0) v = step < 0 ? -1 : 0;
        } else if (v >= n) {
            v = step < 0 ? n - 1 : n;
        }
        b[k] = v;
    }
    long long count = step < 0 ? (b[1] < b[0] ? (b[0] - b[1] - 1) / -step + 1 : 0)
                               : (b[0] < b[1] ? (b[1] - b[0] - 1) / step + 1 : 0);
    cj_count_iter(R, count);
    if (obj->t == CV_LIST) {
        cj_val out = cj_list_of(R, (size_t)count);
        out.tuple = obj->tuple;
        for (long long i = 0; i < count; i++) out.u.l->v[i] = obj->u.l->v[b[0] + i * step];
        return out;
    }
    size_t *offs = cj_alloc(R->c, ((size_t)n + 1) * sizeof *offs);
    for (long long i = 0, o = 0; i <= n; i++) {
        offs[i] = (size_t)o;
        if (i < n) o += (long long)cp_offset(obj->u.s.s + o, obj->u.s.n - (size_t)o, 1);
    }
    cj_buf buf = {0};
    cj_buf_put(R, &buf, "", 0);
    for (long long i = 0; i < count; i++) {
        long long j = b[0] + i * step;
        cj_buf_put(R, &buf, obj->u.s.s + offs[j], offs[j + 1] - offs[j]);
    }
    return cj_buf_val(R, &buf);
}

cj_list *cj_iterate(cj_render *R, const cj_val *v) {
    static cj_list empty;
    switch (v->t) {
    case CV_UNDEF: return &empty;
    case CV_LIST: return v->u.l;
    case CV_DICT: case CV_NS: {
        cj_val l = cj_list_of(R, v->u.d->n);
        for (size_t i = 0; i < v->u.d->n; i++) l.u.l->v[i] = v->u.d->k[i];
        return l.u.l;
    }
    case CV_STR: {
        size_t n = cj_utf8_len(v->u.s.s, v->u.s.n), o = 0;
        cj_val l = cj_list_of(R, n);
        for (size_t i = 0; i < n; i++) {
            uint32_t cp;
            size_t k = cj_utf8_next(v->u.s.s + o, v->u.s.n - o, &cp);
            l.u.l->v[i] = cj_str(v->u.s.s + o, k);
            o += k;
        }
        return l.u.l;
    }
    default: cj_fail(R->c, "'%s' object is not iterable", cj_type_name(v));
    }
}

/* ---- expressions ----------------------------------------------------------------------- */

static cj_val eval(cj_render *R, const cj_node *nd);

static long long checked(cj_render *R, int overflow, long long v) {
    if (overflow) cj_fail_code(R->c, T2_ERANGE, "integer overflow");
    return v;
}

/* a OP b on integers, failing on overflow */
static cj_val int_op(cj_render *R, int op, long long a, long long b) {
    long long r = 0;
    int ov = op == OP_ADD ? __builtin_add_overflow(a, b, &r)
           : op == OP_SUB ? __builtin_sub_overflow(a, b, &r) : __builtin_mul_overflow(a, b, &r);
    return cj_int(checked(R, ov, r));
}

/* str * int, list * int: repetition, bounded by the loop budget */
static cj_val repeat(cj_render *R, const cj_val *seq, long long times) {
    if (times < 0) times = 0;
    size_t unit = seq->t == CV_STR ? seq->u.s.n : seq->u.l->n;
    cj_count_iter(R, times);
    if (unit && (unsigned long long)times > R->c->arena->limit / unit)
        cj_fail_code(R->c, T2_ERANGE, "repetition too large");
    if (seq->t == CV_STR) {
        cj_buf b = {0};
        cj_buf_put(R, &b, "", 0);
        for (long long i = 0; i < times; i++) cj_buf_put(R, &b, seq->u.s.s, unit);
        return cj_buf_val(R, &b);
    }
    cj_val out = cj_list_of(R, unit * (size_t)times);
    out.tuple = seq->tuple;
    for (long long i = 0; i < times; i++)
        if (unit) memcpy(out.u.l->v + i * (long long)unit, seq->u.l->v, unit * sizeof(cj_val));
    return out;
}

static cj_val concat(cj_render *R, const cj_val *a, const cj_val *b) {
    if (a->t == CV_STR) {
        cj_buf buf = {0};
        cj_buf_put(R, &buf, a->u.s.s, a->u.s.n);
        cj_buf_put(R, &buf, b->u.s.s, b->u.s.n);
        return cj_buf_val(R, &buf);
    }
    cj_val out = cj_list_of(R, a->u.l->n + b->u.l->n);
    out.tuple = a->tuple;
    if (a->u.l->n) memcpy(out.u.l->v, a->u.l->v, a->u.l->n * sizeof(cj_val));
    if (b->u.l->n) memcpy(out.u.l->v + a->u.l->n, b->u.l->v, b->u.l->n * sizeof(cj_val));
    return out;
}

static int contains(cj_render *R, const cj_val *item, const cj_val *seq) {
    switch (seq->t) {
    case CV_UNDEF: return 0;
    case CV_STR:
        if (item->t != CV_STR)
            cj_fail(R->c, "'in <string>' requires string as left operand, not %s",
                    cj_type_name(item));
        if (!item->u.s.n) return 1;
        for (size_t i = 0; i + item->u.s.n <= seq->u.s.n; i++)
            if (!memcmp(seq->u.s.s + i, item->u.s.s, item->u.s.n)) return 1;
        return 0;
    case CV_LIST:
        for (size_t i = 0; i < seq->u.l->n; i++)
            if (cj_equal(R, item, &seq->u.l->v[i])) return 1;
        return 0;
    case CV_DICT: case CV_NS:
        for (size_t i = 0; i < seq->u.d->n; i++)
            if (cj_equal(R, item, &seq->u.d->k[i])) return 1;
        return 0;
    default: cj_fail(R->c, "argument of type '%s' is not iterable", cj_type_name(seq));
    }
}

static const char *const op_names[] = {"+", "-", "*", "/", "//", "%", "**", "~",
                                       "==", "!=", "<", "<=", ">", ">=", "in", "not in"};

static cj_val arith(cj_render *R, int op, const cj_val *a, const cj_val *b) {
    if (a->t == CV_UNDEF || b->t == CV_UNDEF)
        cj_fail(R->c, "%s", cj_undef_msg(a->t == CV_UNDEF ? a : b));
    int ints = (a->t == CV_INT || a->t == CV_BOOL) && (b->t == CV_INT || b->t == CV_BOOL);
    if (is_num(a) && is_num(b)) {
        double x = num(a), y = num(b);
        switch (op) {
        case OP_ADD: case OP_SUB: case OP_MUL:
            if (ints) return int_op(R, op, a->u.i, b->u.i);
            return (cj_val){.t = CV_FLOAT,
                            .u.f = op == OP_ADD ? x + y : op == OP_SUB ? x - y : x * y};
        case OP_DIV:
            if (y == 0) cj_fail(R->c, "division by zero");
            return (cj_val){.t = CV_FLOAT, .u.f = x / y};
        case OP_FDIV: case OP_MOD:
            if (y == 0) cj_fail(R->c, "integer division or modulo by zero");
            if (ints) {
                if (a->u.i == LLONG_MIN && b->u.i == -1) checked(R, 1, 0);
                long long q = a->u.i / b->u.i, m = a->u.i % b->u.i;
                if (m && ((m < 0) != (b->u.i < 0))) { q--; m += b->u.i; }
                return cj_int(op == OP_FDIV ? q : m);
            } else {
                double m = fmod(x, y);
                if (m != 0 && ((m < 0) != (y < 0))) m += y;
                return (cj_val){.t = CV_FLOAT, .u.f = op == OP_FDIV ? floor(x / y) : m};
            }
        case OP_POW:
            if (ints && b->u.i >= 0) {
                long long acc = 1;
                for (long long e = 0; e < b->u.i; e++) {
                    checked(R, __builtin_mul_overflow(acc, a->u.i, &acc), 0);
                    if (acc == 0 || acc == 1) break;
                }
                return cj_int(acc);
            }
            return (cj_val){.t = CV_FLOAT, .u.f = pow(x, y)};
        }
    }
    if (op == OP_ADD && a->t == b->t &&
        (a->t == CV_STR || (a->t == CV_LIST && a->tuple == b->tuple)))
        return concat(R, a, b);
    if (op == OP_MUL && (a->t == CV_STR || a->t == CV_LIST) && (b->t == CV_INT || b->t == CV_BOOL))
        return repeat(R, a, b->u.i);
    if (op == OP_MUL && (b->t == CV_STR || b->t == CV_LIST) && (a->t == CV_INT || a->t == CV_BOOL))
        return repeat(R, b, a->u.i);
    if (op == OP_MOD && a->t == CV_STR) cj_fail(R->c, "'%%' string formatting is not supported");
    cj_fail(R->c, "unsupported operand types for %s: '%s' and '%s'", op_names[op],
            cj_type_name(a), cj_type_name(b));
}

static cj_val binary(cj_render *R, const cj_node *nd) {
    cj_val a = eval(R, nd->a), b = eval(R, nd->b);
    switch (nd->op) {
    case OP_CAT: {
        cj_buf buf = {0};
        cj_buf_put(R, &buf, "", 0);
        cj_to_str(R, &buf, &a, 0);
        cj_to_str(R, &buf, &b, 0);
        return cj_buf_val(R, &buf);
    }
    case OP_EQ: return cj_bool(cj_equal(R, &a, &b));
    case OP_NE: return cj_bool(!cj_equal(R, &a, &b));
    case OP_LT: return cj_bool(cj_compare(R, &a, &b, "<") < 0);
    case OP_LE: return cj_bool(cj_compare(R, &a, &b, "<=") <= 0);
    case OP_GT: return cj_bool(cj_compare(R, &a, &b, ">") > 0);
    case OP_GE: return cj_bool(cj_compare(R, &a, &b, ">=") >= 0);
    case OP_IN: return cj_bool(contains(R, &a, &b));
    case OP_NOTIN: return cj_bool(!contains(R, &a, &b));
    default: return arith(R, nd->op, &a, &b);
    }
}

/* Evaluate a call's arguments (positional first, as the parser checked). */
static cj_val *eval_args(cj_render *R, const cj_node *nd) {
    cj_val *args = cj_alloc(R->c, ((size_t)nd->n_args + 1) * sizeof *args);
    for (int i = 0; i < nd->n_args; i++) args[i] = eval(R, nd->args[i]);
    return args;
}

static cj_val call(cj_render *R, const cj_node *nd) {
    cj_val fn = eval(R, nd->a);
    cj_val *args = eval_args(R, nd);
    R->c->line = nd->line;
    switch (fn.t) {
    case CV_FUNC: case CV_METHOD: return cj_call_builtin(R, &fn, args, nd->kw, nd->n_args);
    case CV_MACRO: return cj_call_macro(R, fn.u.macro, args, nd->kw, nd->n_args);
    case CV_UNDEF: cj_fail(R->c, "%s", cj_undef_msg(&fn));
    default: cj_fail(R->c, "'%s' object is not callable", cj_type_name(&fn));
    }
}

static cj_val collection(cj_render *R, const cj_node *nd) {
    if (nd->k == CN_DICT) {
        cj_val d = {.t = CV_DICT};
        d.u.d = cj_alloc(R->c, sizeof *d.u.d);
        for (int i = 0; i + 1 < nd->n_args; i += 2)
            cj_dict_set(R, d.u.d, eval(R, nd->args[i]), eval(R, nd->args[i + 1]));
        return d;
    }
    cj_val l = cj_list_of(R, (size_t)nd->n_args);
    l.tuple = nd->k == CN_TUPLE;
    for (int i = 0; i < nd->n_args; i++) l.u.l->v[i] = eval(R, nd->args[i]);
    return l;
}

static cj_val eval(cj_render *R, const cj_node *nd) {
    if (++R->depth > R->max_depth)
        cj_fail_code(R->c, T2_ERANGE, "expression or macro calls nested deeper than %d",
                     R->max_depth);
    R->c->line = nd->line;
    cj_val v, x;
    switch (nd->k) {
    case CN_CONST: v = nd->v; break;
    case CN_NAME: v = cj_lookup(R, nd->name); break;
    case CN_ATTR: x = eval(R, nd->a); R->c->line = nd->line; v = cj_getattr(R, &x, nd->name); break;
    case CN_ITEM: {
        x = eval(R, nd->a);
        cj_val k = eval(R, nd->b);
        R->c->line = nd->line;
        v = cj_getitem(R, &x, &k);
        break;
    }
    case CN_SLICE: {
        x = eval(R, nd->d);
        cj_val parts[3];
        const cj_val *pp[3] = {0};
        const cj_node *pn[3] = {nd->a, nd->b, nd->c};
        for (int k = 0; k < 3; k++)
            if (pn[k]) { parts[k] = eval(R, pn[k]); pp[k] = &parts[k]; }
        R->c->line = nd->line;
        v = slice(R, &x, pp);
        break;
    }
    case CN_CALL: v = call(R, nd); break;
    case CN_FILTER: {
        x = eval(R, nd->a);
        cj_val *args = eval_args(R, nd);
        R->c->line = nd->line;
        v = cj_filter(R, nd->fn, &x, args, nd->kw, nd->n_args);
        break;
    }
    case CN_TEST: {
        x = eval(R, nd->a);
        cj_val *args = eval_args(R, nd);
        R->c->line = nd->line;
        v = cj_bool(cj_test(R, nd->fn, &x, args, nd->n_args) != nd->op);
        break;
    }
    case CN_NOT: x = eval(R, nd->a); v = cj_bool(!cj_truthy(&x)); break;
    case CN_NEG: case CN_POS:
        x = eval(R, nd->a);
        if (!is_num(&x)) cj_fail(R->c, "bad operand type for unary %s: '%s'",
                                 nd->k == CN_NEG ? "-" : "+", cj_type_name(&x));
        v = x.t == CV_FLOAT ? x : cj_int(x.u.i);
        if (nd->k == CN_NEG) {
            if (v.t == CV_FLOAT) v.u.f = -v.u.f;
            else v.u.i = checked(R, v.u.i == LLONG_MIN, -v.u.i);
        }
        break;
    case CN_BIN: v = binary(R, nd); break;
    case CN_AND: v = eval(R, nd->a); if (cj_truthy(&v)) v = eval(R, nd->b); break;
    case CN_OR: v = eval(R, nd->a); if (!cj_truthy(&v)) v = eval(R, nd->b); break;
    case CN_COND:
        x = eval(R, nd->a);
        v = cj_truthy(&x) ? eval(R, nd->b) : nd->c ? eval(R, nd->c)
          : cj_undef(R, "the inline if-expression on line %d evaluated to false and no else "
                     "section was defined.", nd->line);
        break;
    case CN_LIST: case CN_TUPLE: case CN_DICT: v = collection(R, nd); break;
    default: cj_fail(R->c, "internal error: statement in an expression");
    }
    R->depth--;
    return v;
}

/* ---- statements ------------------------------------------------------------------------ */

static void emit(cj_render *R, const char *s, size_t n) {
    if (n > R->max_out - R->out_n)
        cj_fail_code(R->c, T2_ERANGE, "the output exceeds %zu bytes", R->max_out);
    if (R->out_n + n + 1 > R->out_cap) {
        size_t cap = R->out_cap ? R->out_cap : 4096;
        while (cap < R->out_n + n + 1) cap *= 2;
        char *o = realloc(R->c->arena->out, cap);
        if (!o) cj_fail_code(R->c, T2_ENOMEM, "out of memory");
        R->c->arena->out = R->out = o;
        R->out_cap = cap;
    }
    memcpy(R->out + R->out_n, s, n);
    R->out_n += n;
    R->out[R->out_n] = 0;
}

static void emit_val(cj_render *R, const cj_val *v) {
    if (v->t == CV_STR) return emit(R, v->u.s.s, v->u.s.n);
    cj_buf b = {0};
    cj_to_str(R, &b, v, 0);
    emit(R, b.s ? b.s : "", b.n);
}

/* Bind `names` to v (unpacking when there are several). */
static void assign(cj_render *R, cj_frame *f, const char **names, int n, const cj_val *v) {
    if (n == 1) return cj_define(R, f, names[0], *v);
    cj_list *items = cj_iterate(R, v);
    if (items->n != (size_t)n)
        cj_fail(R->c, "cannot unpack %zu values into %d names", items->n, n);
    for (int i = 0; i < n; i++) cj_define(R, f, names[i], items->v[i]);
}

static void exec_set(cj_render *R, const cj_node *nd) {
    if (nd->attr) {
        cj_val ns = eval(R, nd->a);
        cj_val target = cj_lookup(R, nd->name);
        R->c->line = nd->line;
        if (target.t != CV_NS)
            cj_fail(R->c, "cannot assign attribute on non-namespace object '%s'", nd->name);
        cj_dict_set(R, target.u.d, cj_str(nd->attr, strlen(nd->attr)), ns);
        return;
    }
    cj_val v;
    if (nd->k == CN_SET_BLOCK) {
        size_t start = R->out_n;
        cj_exec(R, nd->b);
        v = cj_str(cj_strndup(R->c, R->out + start, R->out_n - start), R->out_n - start);
        R->out_n = start;
    } else {
        v = eval(R, nd->a);
    }
    R->c->line = nd->line;
    assign(R, R->frame, nd->names, nd->n_names, &v);
}

/* The items a for loop visits: its iterable, filtered by `if` when present. */
static cj_list *loop_items(cj_render *R, const cj_node *nd) {
    cj_val it = eval(R, nd->a);
    R->c->line = nd->line;
    cj_list *items = cj_iterate(R, &it);
    if (!nd->d) return items;
    cj_val kept = cj_list_of(R, items->n);
    size_t n = 0;
    cj_frame *saved = R->frame;
    R->frame = cj_frame_new(R, saved);
    for (size_t i = 0; i < items->n; i++) {
        cj_count_iter(R, 1);
        R->frame->vars.n = 0;
        assign(R, R->frame, nd->names, nd->n_names, &items->v[i]);
        cj_val keep = eval(R, nd->d);
        if (cj_truthy(&keep)) kept.u.l->v[n++] = items->v[i];
    }
    R->frame = saved;
    kept.u.l->n = n;
    return kept.u.l;
}

static void exec_for(cj_render *R, const cj_node *nd) {
    cj_list *items = loop_items(R, nd);
    cj_frame *saved = R->frame;
    if (items->n == 0) {
        if (nd->c) {
            R->frame = cj_frame_new(R, saved);
            cj_exec(R, nd->c);
            R->frame = saved;
        }
        return;
    }
    cj_loop *L = cj_alloc(R->c, sizeof *L);
    L->items = items;
    L->length = (long long)items->n;
    /* one frame for the loop, emptied at each iteration: values are copied out of frames, so
     * nothing refers to its arrays, and a long loop allocates nothing per iteration */
    R->frame = cj_frame_new(R, saved);
    for (size_t i = 0; i < items->n; i++) {
        cj_count_iter(R, 1);
        R->frame->vars.n = 0;
        L->index0 = (long long)i;
        R->c->line = nd->line;
        assign(R, R->frame, nd->names, nd->n_names, &items->v[i]);
        cj_define(R, R->frame, "loop", (cj_val){.t = CV_LOOP, .u.loop = L});
        cj_exec(R, nd->b);
    }
    R->frame = saved;
}

cj_val cj_call_macro(cj_render *R, const cj_node *m, cj_val *args, const char **kw, int n) {
    cj_frame *saved = R->frame;
    cj_frame *f = cj_frame_new(R, R->top);
    int n_pos = 0;
    while (n_pos < n && !kw[n_pos]) n_pos++;
    if (n_pos > m->n_names) cj_fail(R->c, "macro '%s' takes not more than %d argument(s)",
                                    m->name, m->n_names);
    R->frame = f;
    for (int p = 0; p < m->n_names; p++) {
        cj_val v = cj_undef(R, "parameter '%s' was not provided", m->names[p]);
        int found = p < n_pos;
        if (found) v = args[p];
        for (int k = n_pos; k < n && !found; k++)
            if (!strcmp(kw[k], m->names[p])) { v = args[k]; found = 1; }
        if (!found && m->args[p]) v = eval(R, m->args[p]);
        cj_define(R, f, m->names[p], v);
    }
    for (int k = n_pos; k < n; k++) {
        int p = 0;
        while (p < m->n_names && strcmp(kw[k], m->names[p])) p++;
        if (p == m->n_names) cj_fail(R->c, "macro '%s' has no argument '%s'", m->name, kw[k]);
    }
    if (++R->depth > R->max_depth)
        cj_fail_code(R->c, T2_ERANGE, "macro calls nested deeper than %d", R->max_depth);
    size_t start = R->out_n;
    cj_exec(R, m->d);
    R->depth--;
    cj_val v = cj_str(cj_strndup(R->c, R->out + start, R->out_n - start), R->out_n - start);
    R->out_n = start;
    R->frame = saved;
    return v;
}

static void exec_if(cj_render *R, const cj_node *nd) {
    for (;;) {
        R->c->line = nd->line;
        cj_val c = eval(R, nd->a);
        if (cj_truthy(&c)) return cj_exec(R, nd->b);
        if (!nd->c || nd->c->k != CN_IF || !nd->c->op) return cj_exec(R, nd->c);
        nd = nd->c; /* elif */
    }
}

void cj_exec(cj_render *R, const cj_node *body) {
    for (const cj_node *nd = body; nd; nd = nd->next) {
        R->c->line = nd->line;
        switch (nd->k) {
        case CN_TEXT: emit(R, nd->v.u.s.s, nd->v.u.s.n); break;
        case CN_OUTPUT: {
            cj_val v = eval(R, nd->a);
            emit_val(R, &v);
            break;
        }
        case CN_IF: exec_if(R, nd); break;
        case CN_FOR: exec_for(R, nd); break;
        case CN_SET: case CN_SET_BLOCK: exec_set(R, nd); break;
        case CN_MACRO:
            cj_define(R, R->frame, nd->name, (cj_val){.t = CV_MACRO, .u.macro = nd});
            break;
        default: cj_fail(R->c, "internal error: expression as a statement");
        }
    }
}
