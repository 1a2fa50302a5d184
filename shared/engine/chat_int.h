/* chat_int.h - internals of the chat-template interpreter (chat.c, chat_lex.c, chat_parse.c,
 * chat_eval.c, chat_builtin.c). Not a public header: engine/chat.h is the API.
 *
 * Memory: everything a template or a rendering allocates comes from an arena (cj_arena) that is
 * freed in one go, so errors unwind with longjmp (cj_fail) without leaking: a parse or a render
 * runs inside setjmp, and the caller frees the arena afterwards. Values are immutable except
 * namespaces (mutable dicts) and the loop object.
 */
#ifndef T2_CHAT_INT_H
#define T2_CHAT_INT_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena ---------------------------------------------------------------------------- */

typedef struct cj_chunk cj_chunk;
typedef struct cj_arena {
    cj_chunk *head;
    size_t used, limit; /* bytes handed out so far, and the cap (error past it) */
    char *out;          /* the rendering's output buffer (malloc'd, freed with the arena) */
} cj_arena;

/* ---- error context --------------------------------------------------------------------- */

typedef struct cj_ctx {
    cj_arena *arena;
    jmp_buf *jmp;
    int line; /* template line being parsed or evaluated (for messages) */
    int code; /* T2_E* of the failure */
} cj_ctx;

void *cj_alloc(cj_ctx *c, size_t n);                  /* zeroed; fails with T2_ERANGE */
char *cj_strndup(cj_ctx *c, const char *s, size_t n); /* NUL-terminated copy */
void cj_arena_free(cj_arena *a);
/* Record "template line N: msg" (code T2_EFORMAT unless set) and longjmp. */
_Noreturn void cj_fail(cj_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same with an explicit code (T2_ERANGE for limits, T2_EINVAL for raise_exception). */
_Noreturn void cj_fail_code(cj_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- values ----------------------------------------------------------------------------- */

typedef enum cj_type {
    CV_UNDEF, CV_NONE, CV_BOOL, CV_INT, CV_FLOAT, CV_STR, CV_LIST, CV_DICT,
    CV_NS,     /* namespace(): a dict whose attributes can be set */
    CV_LOOP,   /* the `loop` variable of a for loop */
    CV_FUNC,   /* a global function (range, namespace, raise_exception, strftime_now, ...) */
    CV_METHOD, /* a bound method of a str, dict or list: fn names it, self is the object */
    CV_MACRO,  /* a {% macro %} */
} cj_type;

typedef struct cj_list cj_list;
typedef struct cj_dict cj_dict;
typedef struct cj_loop cj_loop;
typedef struct cj_node cj_node;

typedef struct cj_val {
    cj_type t;
    int tuple;        /* CV_LIST: printed as (a, b) */
    const char *hint; /* CV_UNDEF: why it is undefined (NULL: unknown) */
    union {
        long long i;  /* BOOL, INT */
        double f;     /* FLOAT */
        struct {
            const char *s;
            size_t n;
        } s;          /* STR (UTF-8) */
        cj_list *l;   /* LIST */
        cj_dict *d;   /* DICT, NS */
        cj_loop *loop;
        int fn;       /* FUNC, METHOD: builtin id */
        const cj_node *macro;
    } u;
    struct cj_val *self; /* METHOD: the object */
} cj_val;

struct cj_list {
    size_t n;
    cj_val *v;
};
struct cj_dict {
    size_t n, cap;
    cj_val *k, *v;
};
struct cj_loop {
    long long index0, length;
    const cj_list *items;
};

/* ---- UTF-8 helpers (chat_lex.c) --------------------------------------------------------- */

/* Length of the code point at s (1..4; 1 for an invalid byte) and its value in *cp. */
size_t cj_utf8_next(const char *s, size_t n, uint32_t *cp);
/* Python's str.isspace() for one code point. */
int cj_is_space(uint32_t cp);
/* Bytes of s left after stripping Python whitespace (or the code points in `chars` if not NULL)
 * from the left (*start) and/or right. */
void cj_strip(const char *s, size_t n, const char *chars, size_t nchars, int left, int right,
              size_t *start, size_t *len);

/* ---- lexer ------------------------------------------------------------------------------ */

typedef enum cj_tok_type {
    CT_TEXT, CT_VAR_BEGIN, CT_VAR_END, CT_BLOCK_BEGIN, CT_BLOCK_END,
    CT_NAME, CT_STRING, CT_INT, CT_FLOAT, CT_OP, CT_EOF,
} cj_tok_type;

typedef struct cj_tok {
    cj_tok_type t;
    int line;
    const char *s; /* TEXT, NAME, STRING (unescaped), OP: text; NUL-terminated */
    size_t n;
    long long i;
    double f;
} cj_tok;

/* Tokenize src (Jinja rules with trim_blocks and lstrip_blocks, one trailing newline
 * dropped, newlines normalized). Tokens end with CT_EOF. */
void cj_lex(cj_ctx *c, const char *src, size_t len, cj_tok **toks, size_t *n_toks);

/* ---- syntax tree -------------------------------------------------------------------------- */

typedef enum cj_kind {
    /* statements */
    CN_TEXT, CN_OUTPUT, CN_IF, CN_FOR, CN_SET, CN_SET_BLOCK, CN_MACRO,
    /* expressions */
    CN_CONST, CN_NAME, CN_ATTR, CN_ITEM, CN_SLICE, CN_CALL, CN_FILTER, CN_TEST,
    CN_NOT, CN_NEG, CN_POS, CN_BIN, CN_AND, CN_OR, CN_COND, CN_LIST, CN_TUPLE, CN_DICT,
} cj_kind;

typedef enum cj_binop {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FDIV, OP_MOD, OP_POW, OP_CAT,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN,
} cj_binop;

struct cj_node {
    cj_kind k;
    int line;
    cj_node *next;          /* statements: the next in the body */
    cj_node *a, *b, *c;     /* operands; IF: cond, then, else; FOR: iter, body, else;
                               SLICE: start, stop, step (NULL if absent) of obj `d` */
    cj_node *d;             /* FOR: filter (if ...); SLICE: the object; MACRO: body */
    const char *name;       /* NAME, ATTR, FILTER, TEST, SET target, MACRO name */
    const char *attr;       /* SET: the attribute in `set ns.attr = ...` */
    const char **names;     /* FOR / SET: unpacking targets; MACRO: parameters */
    int n_names;
    cj_node **args;         /* CALL, FILTER, TEST: positional then keyword arguments;
                               LIST, TUPLE: items; DICT: key, value, key, value...
                               MACRO: parameter defaults (NULL if none) */
    const char **kw;        /* per argument: the keyword or NULL */
    int n_args;
    int op;                 /* BIN: cj_binop; TEST: negated; IF: 1 for an elif */
    int fn;                 /* FILTER / TEST: builtin id */
    cj_val v;               /* CONST */
};

/* Parse the tokens into a statement list (the template body). */
cj_node *cj_parse(cj_ctx *c, const cj_tok *toks, size_t n_toks);

/* ---- evaluation (chat_eval.c) -------------------------------------------------------------- */

typedef struct cj_frame cj_frame;

typedef struct cj_render {
    cj_ctx *c;
    char *out;          /* the output so far (c->arena->out), out_n bytes */
    size_t out_n, out_cap, max_out;
    cj_frame *top;      /* the template's own frame (top-level set statements) */
    cj_frame *frame;    /* the innermost frame */
    long long iters, max_iters;
    int depth, max_depth;
    int vdepth;         /* nesting of the value being compared, printed or converted */
    int year, month, day; /* strftime_now's date */
} cj_render;

/* A string builder in the arena (for str(), join, tojson, ...). */
typedef struct cj_buf {
    char *s;
    size_t n, cap;
} cj_buf;
void cj_buf_put(cj_render *R, cj_buf *b, const char *s, size_t n);
void cj_buf_puts(cj_render *R, cj_buf *b, const char *s);
cj_val cj_buf_val(cj_render *R, cj_buf *b);

cj_val cj_str(const char *s, size_t n); /* borrows s (arena or static) */
cj_val cj_int(long long i);
cj_val cj_bool(int b);
cj_val cj_list_of(cj_render *R, size_t n); /* n zeroed (undefined) items to fill */
const char *cj_type_name(const cj_val *v);
/* An undefined value that remembers why (Jinja's hint: "'x' is undefined", "'dict object' has
 * no attribute 'y'", ...); cj_undef_msg gives it back for the error when it is used. */
cj_val cj_undef(cj_render *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *cj_undef_msg(const cj_val *v);
const char *cj_obj_repr(const cj_val *v); /* "dict object", "None", ... (Jinja's wording) */
int cj_truthy(const cj_val *v);
int cj_equal(cj_render *R, const cj_val *a, const cj_val *b);
int cj_compare(cj_render *R, const cj_val *a, const cj_val *b, const char *op); /* <0, 0, >0 */
void cj_to_str(cj_render *R, cj_buf *b, const cj_val *v, int repr); /* str() or repr() */
cj_val cj_as_str(cj_render *R, const cj_val *v);                     /* str() as a value */
cj_val cj_getattr(cj_render *R, const cj_val *obj, const char *name);
cj_val cj_getitem(cj_render *R, const cj_val *obj, const cj_val *key);
cj_list *cj_iterate(cj_render *R, const cj_val *v); /* items of a for loop / list() */
size_t cj_utf8_len(const char *s, size_t n);          /* code points */
void cj_count_iter(cj_render *R, long long n);      /* charge n steps to the loop budget */
/* Enter / leave one level of a nested value (lists in lists...): fails past CJ_MAX_VALUE_DEPTH. */
#define CJ_MAX_VALUE_DEPTH 500
void cj_value_enter(cj_render *R);
#define cj_value_leave(R) ((R)->vdepth--)
void cj_dict_set(cj_render *R, cj_dict *d, cj_val k, cj_val v);
void cj_dict_append(cj_render *R, cj_dict *d, cj_val k, cj_val v); /* k known to be new */
const cj_val *cj_dict_get(const cj_dict *d, const char *key, size_t n);
/* Render a template body; appends to R->out. */
void cj_exec(cj_render *R, const cj_node *body);
/* Call a macro value with evaluated arguments (kw[i] NULL for positional). */
cj_val cj_call_macro(cj_render *R, const cj_node *m, cj_val *args, const char **kw, int n);
cj_val cj_lookup(cj_render *R, const char *name);
void cj_define(cj_render *R, cj_frame *f, const char *name, cj_val v);
cj_frame *cj_frame_new(cj_render *R, cj_frame *up);

/* ---- builtins (chat_builtin.c) ------------------------------------------------------------ */

int cj_filter_id(const char *name); /* -1 if unknown */
int cj_test_id(const char *name);   /* -1 if unknown */
/* A method of a str / dict / list value (CV_METHOD with self set), or undefined. */
cj_val cj_method(cj_render *R, const cj_val *obj, const char *name);
cj_val cj_global(cj_render *R, const char *name); /* range, namespace, ...: or undefined */
cj_val cj_call_builtin(cj_render *R, const cj_val *fn, cj_val *args, const char **kw, int n);
cj_val cj_filter(cj_render *R, int id, const cj_val *in, cj_val *args, const char **kw, int n);
int cj_test(cj_render *R, int id, const cj_val *v, cj_val *args, int n);
/* json.dumps(v, ensure_ascii=False, indent, separators, sort_keys) */
void cj_tojson(cj_render *R, cj_buf *b, const cj_val *v, const char *indent, const char *item_sep,
               const char *key_sep, int sort_keys, int level);

#endif
