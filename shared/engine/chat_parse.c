/* chat_parse.c - the chat-template parser: tokens to a syntax tree, with Jinja's grammar and
 * operator precedence (parse_condexpr > or > and > not > compare > + - > ~ > * / // % > ** >
 * unary, then postfix . [] () and | filters / is tests). Constructs outside the subset are
 * refused with the line and the construct's name; filters and tests are checked here, so an
 * unknown one fails before anything renders (as Jinja does when compiling).
 */
#include "engine/chat_int.h"

#include "base/t2_err.h"

#include <string.h>

#define CJ_MAX_NEST 128 /* nested expressions or blocks */

typedef struct parser {
    cj_ctx *c;
    const cj_tok *t;
    size_t i, n;
    int depth;
} parser;

static const cj_tok *cur(parser *P) {
    P->c->line = P->t[P->i].line;
    return &P->t[P->i];
}
static int is_op(parser *P, const char *op) {
    const cj_tok *t = cur(P);
    return t->t == CT_OP && !strcmp(t->s, op);
}
static int is_name(parser *P, const char *name) {
    const cj_tok *t = cur(P);
    return t->t == CT_NAME && !strcmp(t->s, name);
}
static int skip_op(parser *P, const char *op) {
    if (!is_op(P, op)) return 0;
    P->i++;
    return 1;
}
static int skip_name(parser *P, const char *name) {
    if (!is_name(P, name)) return 0;
    P->i++;
    return 1;
}
static const char *describe(const cj_tok *t) {
    switch (t->t) {
    case CT_TEXT: return "text";
    case CT_VAR_BEGIN: return "'{{'";
    case CT_VAR_END: return "end of print statement '}}'";
    case CT_BLOCK_BEGIN: return "'{%'";
    case CT_BLOCK_END: return "end of statement block '%}'";
    case CT_STRING: return "a string";
    case CT_INT: case CT_FLOAT: return "a number";
    case CT_EOF: return "end of template";
    default: return t->s;
    }
}
static void expect_op(parser *P, const char *op) {
    if (!skip_op(P, op)) cj_fail(P->c, "expected '%s', got %s", op, describe(cur(P)));
}
static const char *expect_name(parser *P) {
    const cj_tok *t = cur(P);
    if (t->t != CT_NAME) cj_fail(P->c, "expected a name, got %s", describe(t));
    P->i++;
    return t->s;
}
static void expect_type(parser *P, cj_tok_type type, const char *what) {
    if (cur(P)->t != type) cj_fail(P->c, "expected %s, got %s", what, describe(cur(P)));
    P->i++;
}

static cj_node *node(parser *P, cj_kind k) {
    cj_node *nd = cj_alloc(P->c, sizeof *nd);
    nd->k = k;
    nd->line = cur(P)->line;
    return nd;
}

static void enter(parser *P) {
    if (++P->depth > CJ_MAX_NEST)
        cj_fail_code(P->c, T2_ERANGE, "nested more than %d levels deep", CJ_MAX_NEST);
}

/* A growable array of nodes (and keywords) in the arena. */
typedef struct nodevec {
    cj_node **v;
    const char **kw;
    int n, cap;
} nodevec;
static void vec_push(parser *P, nodevec *a, cj_node *nd, const char *kw) {
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 4;
        if (cap > 1 << 20) cj_fail_code(P->c, T2_ERANGE, "too many items");
        cj_node **v = cj_alloc(P->c, (size_t)cap * sizeof *v);
        const char **kw2 = cj_alloc(P->c, (size_t)cap * sizeof *kw2);
        if (a->n) {
            memcpy(v, a->v, (size_t)a->n * sizeof *v);
            memcpy(kw2, a->kw, (size_t)a->n * sizeof *kw2);
        }
        a->v = v;
        a->kw = kw2;
        a->cap = cap;
    }
    a->kw[a->n] = kw;
    a->v[a->n++] = nd;
}

static cj_node *parse_expr(parser *P);
static cj_node *parse_or(parser *P);
static cj_node *parse_unary(parser *P, int with_filter);
static cj_node *parse_primary(parser *P);
static cj_node *parse_postfix(parser *P, cj_node *nd);

/* ---- expressions -------------------------------------------------------------------------- */

static cj_node *parse_tuple(parser *P, int parens, int condexpr) {
    nodevec items = {0};
    int comma = 0;
    for (;;) {
        if (items.n && !skip_op(P, ",")) break;
        if (items.n) comma = 1;
        const cj_tok *t = cur(P);
        if ((parens && is_op(P, ")")) || t->t == CT_BLOCK_END || t->t == CT_VAR_END ||
            (!parens && items.n && (is_name(P, "in") || is_name(P, "if"))))
            break;
        vec_push(P, &items, condexpr ? parse_expr(P) : parse_or(P), NULL);
    }
    if (items.n == 1 && !comma) return items.v[0];
    if (!items.n && !parens) cj_fail(P->c, "expected an expression, got %s", describe(cur(P)));
    cj_node *nd = node(P, CN_TUPLE);
    nd->args = items.v;
    nd->n_args = items.n;
    return nd;
}

static void parse_call_args(parser *P, cj_node *nd) {
    nodevec a = {0};
    while (!is_op(P, ")")) {
        if (a.n) expect_op(P, ",");
        if (is_op(P, ")")) break;
        if (is_op(P, "*") || is_op(P, "**"))
            cj_fail(P->c, "*args and **kwargs in calls are not supported");
        const char *kw = NULL;
        if (cur(P)->t == CT_NAME && P->t[P->i + 1].t == CT_OP && !strcmp(P->t[P->i + 1].s, "=")) {
            kw = cur(P)->s;
            P->i += 2;
        } else {
            for (int k = 0; k < a.n; k++)
                if (a.kw[k]) cj_fail(P->c, "positional argument after a keyword argument");
        }
        vec_push(P, &a, parse_expr(P), kw);
    }
    expect_op(P, ")");
    nd->args = a.v;
    nd->kw = a.kw;
    nd->n_args = a.n;
}

static cj_node *parse_subscript(parser *P, cj_node *obj) {
    cj_node *parts[3] = {0};
    int n = 0, colon = 0;
    for (;;) {
        if (is_op(P, ":")) {
            P->i++;
            if (++n > 2) cj_fail(P->c, "too many ':' in a slice");
            colon = 1;
            continue;
        }
        if (is_op(P, "]")) break;
        if (parts[n]) cj_fail(P->c, "expected ']' or ':', got %s", describe(cur(P)));
        parts[n] = parse_expr(P);
        if (is_op(P, ",")) cj_fail(P->c, "tuple subscripts are not supported");
    }
    expect_op(P, "]");
    cj_node *nd;
    if (colon) {
        nd = node(P, CN_SLICE);
        nd->a = parts[0];
        nd->b = parts[1];
        nd->c = parts[2];
        nd->d = obj;
    } else {
        if (!parts[0]) cj_fail(P->c, "expected an expression in '[]'");
        nd = node(P, CN_ITEM);
        nd->a = obj;
        nd->b = parts[0];
    }
    return nd;
}

static cj_node *parse_postfix(parser *P, cj_node *nd) {
    for (;;) {
        if (skip_op(P, ".")) {
            const cj_tok *t = cur(P);
            if (t->t == CT_INT) {
                P->i++;
                cj_node *it = node(P, CN_ITEM), *k = node(P, CN_CONST);
                k->v.t = CV_INT;
                k->v.u.i = t->i;
                it->a = nd;
                it->b = k;
                nd = it;
                continue;
            }
            cj_node *at = node(P, CN_ATTR);
            at->a = nd;
            at->name = expect_name(P);
            nd = at;
        } else if (skip_op(P, "[")) {
            nd = parse_subscript(P, nd);
        } else if (skip_op(P, "(")) {
            cj_node *call = node(P, CN_CALL);
            call->a = nd;
            parse_call_args(P, call);
            nd = call;
        } else {
            return nd;
        }
    }
}

static const char *dotted_name(parser *P) {
    const char *name = expect_name(P);
    if (is_op(P, ".")) cj_fail(P->c, "dotted filter or test names are not supported");
    return name;
}

static cj_node *parse_filter(parser *P, cj_node *nd) {
    cj_node *f = node(P, CN_FILTER);
    f->name = dotted_name(P);
    f->fn = cj_filter_id(f->name);
    if (f->fn < 0) cj_fail(P->c, "no filter named '%s'", f->name);
    f->a = nd;
    if (skip_op(P, "(")) parse_call_args(P, f);
    return f;
}

static cj_node *parse_test(parser *P, cj_node *nd) {
    cj_node *t = node(P, CN_TEST);
    t->op = skip_name(P, "not");
    t->name = dotted_name(P);
    t->fn = cj_test_id(t->name);
    if (t->fn < 0) cj_fail(P->c, "no test named '%s'", t->name);
    t->a = nd;
    const cj_tok *k = cur(P);
    if (skip_op(P, "(")) {
        parse_call_args(P, t);
    } else if ((k->t == CT_NAME || k->t == CT_STRING || k->t == CT_INT || k->t == CT_FLOAT ||
                is_op(P, "(") || is_op(P, "[") || is_op(P, "{")) &&
               !(k->t == CT_NAME && (!strcmp(k->s, "else") || !strcmp(k->s, "or") ||
                                     !strcmp(k->s, "and")))) {
        if (k->t == CT_NAME && !strcmp(k->s, "is")) cj_fail(P->c, "unexpected 'is'");
        t->args = cj_alloc(P->c, sizeof *t->args);
        t->kw = cj_alloc(P->c, sizeof *t->kw);
        t->args[0] = parse_postfix(P, parse_primary(P));
        t->n_args = 1;
    }
    return t;
}

static cj_node *parse_filter_expr(parser *P, cj_node *nd) {
    for (;;) {
        if (skip_op(P, "|")) {
            nd = parse_filter(P, nd);
        } else if (skip_name(P, "is")) {
            nd = parse_test(P, nd);
        } else if (skip_op(P, "(")) {
            cj_node *call = node(P, CN_CALL);
            call->a = nd;
            parse_call_args(P, call);
            nd = call;
        } else {
            return nd;
        }
    }
}

static cj_node *const_node(parser *P, cj_type t, long long i) {
    cj_node *nd = node(P, CN_CONST);
    nd->v.t = t;
    nd->v.u.i = i;
    return nd;
}

static cj_node *parse_list_or_dict(parser *P, int dict) {
    nodevec a = {0};
    const char *close = dict ? "}" : "]";
    while (!is_op(P, close)) {
        if (a.n) expect_op(P, ",");
        if (is_op(P, close)) break;
        vec_push(P, &a, parse_expr(P), NULL);
        if (dict) {
            expect_op(P, ":");
            vec_push(P, &a, parse_expr(P), NULL);
        }
    }
    expect_op(P, close);
    cj_node *nd = node(P, dict ? CN_DICT : CN_LIST);
    nd->args = a.v;
    nd->n_args = a.n;
    return nd;
}

static cj_node *parse_primary(parser *P) {
    const cj_tok *t = cur(P);
    enter(P);
    cj_node *nd;
    if (t->t == CT_NAME) {
        P->i++;
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) nd = const_node(P, CV_BOOL, 1);
        else if (!strcmp(t->s, "false") || !strcmp(t->s, "False"))
            nd = const_node(P, CV_BOOL, 0);
        else if (!strcmp(t->s, "none") || !strcmp(t->s, "None"))
            nd = const_node(P, CV_NONE, 0);
        else {
            nd = node(P, CN_NAME);
            nd->name = t->s;
        }
    } else if (t->t == CT_STRING) {
        size_t len = 0, j = P->i;
        while (P->t[j].t == CT_STRING) len += P->t[j++].n;
        char *s = cj_alloc(P->c, len + 1);
        len = 0;
        for (; P->i < j; P->i++) {
            memcpy(s + len, P->t[P->i].s, P->t[P->i].n);
            len += P->t[P->i].n;
        }
        nd = node(P, CN_CONST);
        nd->v.t = CV_STR;
        nd->v.u.s.s = s;
        nd->v.u.s.n = len;
    } else if (t->t == CT_INT) {
        P->i++;
        nd = const_node(P, CV_INT, t->i);
    } else if (t->t == CT_FLOAT) {
        P->i++;
        nd = node(P, CN_CONST);
        nd->v.t = CV_FLOAT;
        nd->v.u.f = t->f;
    } else if (skip_op(P, "(")) {
        nd = parse_tuple(P, 1, 1);
        expect_op(P, ")");
    } else if (skip_op(P, "[")) {
        nd = parse_list_or_dict(P, 0);
    } else if (skip_op(P, "{")) {
        nd = parse_list_or_dict(P, 1);
    } else {
        cj_fail(P->c, "unexpected %s", describe(t));
    }
    P->depth--;
    return nd;
}

static cj_node *parse_unary(parser *P, int with_filter) {
    cj_node *nd;
    enter(P);
    if (skip_op(P, "-")) {
        nd = node(P, CN_NEG);
        nd->a = parse_unary(P, 0);
    } else if (skip_op(P, "+")) {
        nd = node(P, CN_POS);
        nd->a = parse_unary(P, 0);
    } else {
        nd = parse_postfix(P, parse_primary(P));
    }
    if (with_filter) nd = parse_filter_expr(P, nd);
    P->depth--;
    return nd;
}

static cj_node *binop(parser *P, int op, cj_node *a, cj_node *b) {
    cj_node *nd = node(P, CN_BIN);
    nd->op = op;
    nd->a = a;
    nd->b = b;
    return nd;
}

static cj_node *parse_pow(parser *P) {
    cj_node *nd = parse_unary(P, 1);
    while (skip_op(P, "**")) nd = binop(P, OP_POW, nd, parse_unary(P, 1));
    return nd;
}

static cj_node *parse_math2(parser *P) {
    cj_node *nd = parse_pow(P);
    for (;;) {
        int op = is_op(P, "*") ? OP_MUL : is_op(P, "/") ? OP_DIV : is_op(P, "//") ? OP_FDIV
               : is_op(P, "%") ? OP_MOD : -1;
        if (op < 0) return nd;
        P->i++;
        nd = binop(P, op, nd, parse_pow(P));
    }
}

static cj_node *parse_concat(parser *P) {
    cj_node *nd = parse_math2(P);
    while (skip_op(P, "~")) nd = binop(P, OP_CAT, nd, parse_math2(P));
    return nd;
}

static cj_node *parse_math1(parser *P) {
    cj_node *nd = parse_concat(P);
    for (;;) {
        int op = is_op(P, "+") ? OP_ADD : is_op(P, "-") ? OP_SUB : -1;
        if (op < 0) return nd;
        P->i++;
        nd = binop(P, op, nd, parse_concat(P));
    }
}

/* Chained comparisons (a < b < c) become (a < b) and (b < c). */
static cj_node *parse_compare(parser *P) {
    cj_node *left = parse_math1(P), *result = NULL;
    for (;;) {
        int op = is_op(P, "==") ? OP_EQ : is_op(P, "!=") ? OP_NE : is_op(P, "<") ? OP_LT
               : is_op(P, "<=") ? OP_LE : is_op(P, ">") ? OP_GT : is_op(P, ">=") ? OP_GE
               : is_name(P, "in") ? OP_IN : -1;
        if (op < 0 && is_name(P, "not") && P->t[P->i + 1].t == CT_NAME &&
            !strcmp(P->t[P->i + 1].s, "in")) {
            op = OP_NOTIN;
            P->i++;
        }
        if (op < 0) return result ? result : left;
        P->i++;
        cj_node *right = parse_math1(P), *cmp = binop(P, op, left, right);
        if (result) {
            cj_node *and = node(P, CN_AND);
            and->a = result;
            and->b = cmp;
            result = and;
        } else {
            result = cmp;
        }
        left = right;
    }
}

static cj_node *parse_not(parser *P) {
    if (!skip_name(P, "not")) return parse_compare(P);
    enter(P);
    cj_node *nd = node(P, CN_NOT);
    nd->a = parse_not(P);
    P->depth--;
    return nd;
}

static cj_node *parse_and(parser *P) {
    cj_node *nd = parse_not(P);
    while (skip_name(P, "and")) {
        cj_node *a = node(P, CN_AND);
        a->a = nd;
        a->b = parse_not(P);
        nd = a;
    }
    return nd;
}

static cj_node *parse_or(parser *P) {
    cj_node *nd = parse_and(P);
    while (skip_name(P, "or")) {
        cj_node *o = node(P, CN_OR);
        o->a = nd;
        o->b = parse_and(P);
        nd = o;
    }
    return nd;
}

/* a if cond else b (no else: undefined when cond is false). */
static cj_node *parse_expr(parser *P) {
    enter(P);
    cj_node *nd = parse_or(P);
    while (skip_name(P, "if")) {
        cj_node *ce = node(P, CN_COND);
        ce->a = parse_or(P);
        ce->b = nd;
        ce->c = skip_name(P, "else") ? parse_expr(P) : NULL;
        nd = ce;
    }
    P->depth--;
    return nd;
}

/* ---- statements ------------------------------------------------------------------------- */

static cj_node *parse_body(parser *P, const char *const *ends, const char **found, int open);

/* Names for `for a, b in ...` / `set a, b = ...` / macro parameters. */
static void parse_targets(parser *P, cj_node *nd) {
    nodevec names = {0};
    int parens = skip_op(P, "(");
    do {
        if (names.n && (is_name(P, "in") || is_op(P, "=") || is_op(P, ")"))) break;
        vec_push(P, &names, NULL, expect_name(P));
    } while (skip_op(P, ","));
    if (parens) expect_op(P, ")");
    nd->names = names.kw;
    nd->n_names = names.n;
}

static void end_tag(parser *P) { expect_type(P, CT_BLOCK_END, "end of statement block '%}'"); }

/* if / elif / else: an elif is an IF node (op = 1) in the previous one's else branch, built
 * in a loop so that a long chain costs no recursion. */
static cj_node *parse_if(parser *P) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    static const char *const end_if[] = {"endif", NULL};
    cj_node *head = node(P, CN_IF), *nd = head;
    const char *tag;
    for (;;) {
        nd->a = parse_tuple(P, 0, 1);
        end_tag(P);
        nd->b = parse_body(P, ends, &tag, head->line);
        if (strcmp(tag, "elif")) break;
        nd->c = node(P, CN_IF);
        nd = nd->c;
        nd->op = 1;
    }
    if (!strcmp(tag, "else")) {
        end_tag(P);
        nd->c = parse_body(P, end_if, &tag, head->line);
    }
    end_tag(P);
    return head;
}

static cj_node *parse_for(parser *P) {
    cj_node *nd = node(P, CN_FOR);
    parse_targets(P, nd);
    if (!skip_name(P, "in")) cj_fail(P->c, "expected 'in' in a for loop");
    nd->a = parse_tuple(P, 0, 0);
    if (skip_name(P, "if")) nd->d = parse_expr(P);
    if (is_name(P, "recursive")) cj_fail(P->c, "recursive for loops are not supported");
    end_tag(P);
    static const char *const ends[] = {"else", "endfor", NULL};
    const char *tag;
    nd->b = parse_body(P, ends, &tag, nd->line);
    if (!strcmp(tag, "else")) {
        end_tag(P);
        static const char *const end_for[] = {"endfor", NULL};
        nd->c = parse_body(P, end_for, &tag, nd->line);
    }
    end_tag(P);
    return nd;
}

static cj_node *parse_set(parser *P) {
    cj_node *nd = node(P, CN_SET);
    const char *first = expect_name(P);
    if (skip_op(P, ".")) {
        nd->name = first;
        nd->attr = expect_name(P);
    } else {
        P->i--;
        parse_targets(P, nd);
    }
    if (skip_op(P, "=")) {
        nd->a = parse_tuple(P, 0, 1);
        end_tag(P);
        return nd;
    }
    if (nd->attr || nd->n_names != 1) cj_fail(P->c, "expected '=' in a set statement");
    if (is_op(P, "|")) cj_fail(P->c, "filtered set blocks are not supported");
    end_tag(P);
    nd->k = CN_SET_BLOCK;
    static const char *const ends[] = {"endset", NULL};
    const char *tag;
    nd->b = parse_body(P, ends, &tag, nd->line);
    end_tag(P);
    return nd;
}

static cj_node *parse_macro(parser *P) {
    cj_node *nd = node(P, CN_MACRO);
    nd->name = expect_name(P);
    expect_op(P, "(");
    nodevec params = {0};
    while (!is_op(P, ")")) {
        if (params.n) expect_op(P, ",");
        if (is_op(P, ")")) break;
        const char *name = expect_name(P);
        vec_push(P, &params, skip_op(P, "=") ? parse_expr(P) : NULL, name);
    }
    expect_op(P, ")");
    end_tag(P);
    nd->names = params.kw;
    nd->args = params.v;
    nd->n_names = nd->n_args = params.n;
    static const char *const ends[] = {"endmacro", NULL};
    const char *tag;
    nd->d = parse_body(P, ends, &tag, nd->line);
    if (cur(P)->t == CT_NAME && !strcmp(cur(P)->s, nd->name)) P->i++;
    end_tag(P);
    return nd;
}

static cj_node *parse_statement(parser *P) {
    int line = cur(P)->line;
    const char *tag = expect_name(P);
    enter(P);
    cj_node *nd;
    if (!strcmp(tag, "if")) nd = parse_if(P);
    else if (!strcmp(tag, "for")) nd = parse_for(P);
    else if (!strcmp(tag, "set")) nd = parse_set(P);
    else if (!strcmp(tag, "macro")) nd = parse_macro(P);
    else {
        static const char *const known[] = {
            "block", "extends", "include", "import", "from", "call", "filter", "with",
            "autoescape", "raw", "break", "continue", "do", "generation", "trans", NULL};
        P->c->line = line;
        for (int i = 0; known[i]; i++)
            if (!strcmp(tag, known[i])) cj_fail(P->c, "tag '%s' is not supported", tag);
        cj_fail(P->c, "unknown tag '%s'", tag);
    }
    P->depth--;
    return nd;
}

/* Statements until a block tag named in `ends` (then *found names it and the parser stands
 * after the name) or the end of the template (ends == NULL). `open` is the opening line. */
static cj_node *parse_body(parser *P, const char *const *ends, const char **found, int open) {
    cj_node *head = NULL, **tail = &head;
    for (;;) {
        const cj_tok *t = cur(P);
        cj_node *nd;
        if (t->t == CT_EOF) {
            if (!ends) return head;
            cj_fail(P->c, "unexpected end of template: the block opened on line %d needs "
                    "{%% %s %%}", open, ends[0][0] == 'e' && ends[1] == NULL ? ends[0]
                    : ends[2] ? ends[2] : ends[1]);
        } else if (t->t == CT_TEXT) {
            P->i++;
            nd = node(P, CN_TEXT);
            nd->v.t = CV_STR;
            nd->v.u.s.s = t->s;
            nd->v.u.s.n = t->n;
        } else if (t->t == CT_VAR_BEGIN) {
            P->i++;
            nd = node(P, CN_OUTPUT);
            nd->a = parse_tuple(P, 0, 1);
            expect_type(P, CT_VAR_END, "end of print statement '}}'");
        } else if (t->t == CT_BLOCK_BEGIN) {
            P->i++;
            const cj_tok *name = cur(P);
            for (int i = 0; ends && name->t == CT_NAME && ends[i]; i++)
                if (!strcmp(name->s, ends[i])) {
                    P->i++;
                    *found = ends[i];
                    return head;
                }
            if (name->t == CT_NAME && (!strncmp(name->s, "end", 3) || !strcmp(name->s, "elif") ||
                                       !strcmp(name->s, "else")))
                cj_fail(P->c, "unexpected '%s'%s", name->s,
                        ends ? "" : " (no block is open)");
            nd = parse_statement(P);
        } else {
            cj_fail(P->c, "unexpected %s", describe(t));
        }
        *tail = nd;
        tail = &nd->next;
    }
}

cj_node *cj_parse(cj_ctx *c, const cj_tok *toks, size_t n_toks) {
    parser P = {.c = c, .t = toks, .n = n_toks};
    const char *found = NULL;
    return parse_body(&P, NULL, &found, 0);
}
