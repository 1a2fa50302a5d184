/* chat.c - chat templates: the arena, loading (template text, tokenizer_config.json, named
 * templates), and rendering a conversation (messages or JSON) with Hugging Face's variables. */
#include "engine/chat.h"

#include "engine/chat_int.h"

#include "base/t2_err.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- arena and errors ------------------------------------------------------------------ */

struct cj_chunk {
    cj_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void *cj_alloc(cj_ctx *c, size_t n) {
    cj_arena *a = c->arena;
    n = (n + 15) & ~(size_t)15;
    if (n > a->limit - a->used)
        cj_fail_code(c, T2_ERANGE, "the template needs more than %zu bytes of memory", a->limit);
    cj_chunk *h = a->head;
    if (!h || h->size - h->used < n) {
        size_t size = n > (64u << 10) ? n : (64u << 10);
        h = malloc(sizeof *h + size);
        if (!h) cj_fail_code(c, T2_ENOMEM, "out of memory");
        h->size = size;
        h->used = 0;
        h->next = a->head;
        a->head = h;
    }
    void *p = h->data + h->used;
    h->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

char *cj_strndup(cj_ctx *c, const char *s, size_t n) {
    char *p = cj_alloc(c, n + 1);
    if (n) memcpy(p, s, n);
    return p;
}

void cj_arena_free(cj_arena *a) {
    while (a->head) {
        cj_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    a->used = 0;
    free(a->out);
    a->out = NULL;
}

static _Noreturn void vfail(cj_ctx *c, int code, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    c->code = code;
    t2_err_set(code, "line %d: %s", c->line, msg);
    longjmp(*c->jmp, 1);
}

void cj_fail(cj_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(c, T2_EFORMAT, fmt, ap);
}

void cj_fail_code(cj_ctx *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(c, code, fmt, ap);
}

/* ---- templates ----------------------------------------------------------------------------- */

struct t2_chat_template {
    cj_arena arena;
    cj_node *body;
    char *name, *bos, *eos;
};

/* The parse, where errors longjmp back (c and t are the caller's, so they are reloaded). */
static int parse_guarded(cj_ctx *c, t2_chat_template *t, const char *src, size_t len) {
    jmp_buf jb;
    c->jmp = &jb;
    if (setjmp(jb)) return c->code;
    cj_tok *toks;
    size_t n_toks;
    cj_lex(c, src, len, &toks, &n_toks);
    t->body = cj_parse(c, toks, n_toks);
    return 0;
}

int t2_chat_template_new(t2_chat_template **out, const char *src, size_t len, const char *name) {
    *out = NULL;
    if (!name) return t2_chat_template_new(out, src, len, "chat template");
    if (len > T2_CHAT_MAX_SOURCE)
        return t2_err_set(T2_ERANGE, "%s: %zu bytes, more than the %u a template may have", name,
                          len, T2_CHAT_MAX_SOURCE);
    t2_chat_template *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name)) || !(t->bos = strdup("")) || !(t->eos = strdup(""))) {
        t2_chat_template_destroy(&t);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    t->arena.limit = 256u * len + (4u << 20); /* tokens and nodes: well under 256 a byte */
    cj_ctx c = {.arena = &t->arena, .line = 1};
    int rc = parse_guarded(&c, t, src, len);
    if (rc < 0) {
        t2_err_prefix(rc, "%s", name);
        t2_chat_template_destroy(&t);
        return rc;
    }
    *out = t;
    return 0;
}

void t2_chat_template_destroy(t2_chat_template **tp) {
    if (!tp || !*tp) return;
    t2_chat_template *t = *tp;
    cj_arena_free(&t->arena);
    free(t->name);
    free(t->bos);
    free(t->eos);
    free(t);
    *tp = NULL;
}

const char *t2_chat_template_bos(const t2_chat_template *t) { return t->bos; }
const char *t2_chat_template_eos(const t2_chat_template *t) { return t->eos; }

void t2_chat_template_set_tokens(t2_chat_template *t, const char *bos, const char *eos) {
    char *b = bos ? strdup(bos) : NULL, *e = eos ? strdup(eos) : NULL;
    if (b) { free(t->bos); t->bos = b; }
    if (e) { free(t->eos); t->eos = e; }
}

/* A special token in tokenizer_config.json: a string or {"content": "..."}; NULL if neither. */
static const char *config_token(const json_t *v) {
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int load_config(t2_chat_template **out, const char *path, const char *text, size_t len) {
    json_error_t jerr;
    json_t *cfg = json_loadb(text, len, JSON_DECODE_INT_AS_REAL, &jerr);
    if (!cfg) return t2_err_set(T2_EFORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
    const json_t *tmpl = json_object_get(cfg, "chat_template");
    if (json_is_array(tmpl)) { /* [{"name": ..., "template": ...}]: the default one */
        const json_t *pick = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(tmpl, i, e) {
            const char *nm = json_string_value(json_object_get(e, "name"));
            if (nm && !strcmp(nm, "default")) pick = json_object_get(e, "template");
        }
        tmpl = pick;
    }
    int rc;
    if (!json_is_string(tmpl)) {
        rc = t2_err_set(T2_EFORMAT, "%s: no \"chat_template\" string", path);
    } else {
        rc = t2_chat_template_new(out, json_string_value(tmpl), json_string_length(tmpl), path);
        if (rc == 0)
            t2_chat_template_set_tokens(*out, config_token(json_object_get(cfg, "bos_token")),
                                        config_token(json_object_get(cfg, "eos_token")));
    }
    json_decref(cfg);
    return rc;
}

int t2_chat_template_load(t2_chat_template **out, const char *path) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return t2_err_set(T2_EIO, "%s: cannot open", path);
    size_t cap = 4u * T2_CHAT_MAX_SOURCE + 1, n;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    n = fread(buf, 1, cap, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    size_t plen = strlen(path);
    if (bad) rc = t2_err_set(T2_EIO, "%s: read error", path);
    else if (n == cap) rc = t2_err_set(T2_ERANGE, "%s: larger than %zu bytes", path, cap - 1);
    else if (plen >= 5 && !strcmp(path + plen - 5, ".json")) rc = load_config(out, path, buf, n);
    else rc = t2_chat_template_new(out, buf, n, path);
    free(buf);
    return rc;
}

static const struct {
    const char *name, *bos, *eos, *src;
} named[] = {
    {"chatml", "", "<|im_end|>",
     "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + "
     "message['content'] + '<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}"
     "{{- '<|im_start|>assistant\\n' }}{%- endif %}"},
    {"llama3", "<|begin_of_text|>", "<|eot_id|>",
     "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + "
     "message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
     "{%- endfor %}{%- if add_generation_prompt %}"
     "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"},
    {"gemma", "<bos>", "<end_of_turn>",
     "{{- bos_token }}{%- for message in messages %}{%- set role = 'model' if message['role'] "
     "== 'assistant' else message['role'] %}{{- '<start_of_turn>' + role + '\\n' + "
     "message['content'] | trim + '<end_of_turn>\\n' }}{%- endfor %}{%- if "
     "add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}"},
    {"phi3", "", "<|end|>",
     "{%- for message in messages %}{{- '<|' + message['role'] + '|>\\n' + message['content'] "
     "+ '<|end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}"
     "{%- endif %}"},
};

int t2_chat_template_named(t2_chat_template **out, const char *name) {
    *out = NULL;
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (strcmp(name, named[i].name)) continue;
        int rc = t2_chat_template_new(out, named[i].src, strlen(named[i].src), name);
        if (rc == 0) t2_chat_template_set_tokens(*out, named[i].bos, named[i].eos);
        return rc;
    }
    return t2_err_set(T2_ENOTFOUND, "no chat template named '%s' (chatml, llama3, gemma, phi3)",
                      name);
}

/* ---- rendering ---------------------------------------------------------------------------- */

static cj_val from_json(cj_render *R, const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_NULL: return (cj_val){.t = CV_NONE};
    case JSON_TRUE: return cj_bool(1);
    case JSON_FALSE: return cj_bool(0);
    case JSON_INTEGER: return cj_int(json_integer_value(j));
    case JSON_REAL: return (cj_val){.t = CV_FLOAT, .u.f = json_real_value(j)};
    case JSON_STRING: {
        size_t n = json_string_length(j);
        return cj_str(cj_strndup(R->c, json_string_value(j), n), n);
    }
    case JSON_ARRAY: {
        cj_value_enter(R);
        cj_val l = cj_list_of(R, json_array_size(j));
        for (size_t i = 0; i < l.u.l->n; i++) l.u.l->v[i] = from_json(R, json_array_get(j, i));
        cj_value_leave(R);
        return l;
    }
    default: {
        cj_value_enter(R);
        cj_val d = {.t = CV_DICT};
        d.u.d = cj_alloc(R->c, sizeof *d.u.d);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            size_t kn = strlen(k);
            cj_dict_append(R, d.u.d, cj_str(cj_strndup(R->c, k, kn), kn), from_json(R, v));
        }
        cj_value_leave(R);
        return d;
    }
    }
}

static void today(int *y, int *m, int *d) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    *y = tm.tm_year + 1900;
    *m = tm.tm_mon + 1;
    *d = tm.tm_mday;
}

/* The variables (from `conv`, a JSON object, or the messages) and the template's body. */
static void render_body(cj_render *R, const t2_chat_template *t, const json_t *conv,
                        const t2_chat_msg *msgs, int n_msgs, const t2_chat_opts *o) {
    cj_frame *globals = cj_frame_new(R, NULL);
    R->frame = globals;
    const char *k;
    json_t *v;
    if (conv) json_object_foreach((json_t *)conv, k, v) cj_define(R, globals, k, from_json(R, v));
    if (!conv) {
        cj_val list = cj_list_of(R, (size_t)n_msgs);
        for (int i = 0; i < n_msgs; i++) {
            cj_val d = {.t = CV_DICT};
            d.u.d = cj_alloc(R->c, sizeof *d.u.d);
            const char *role = msgs[i].role ? msgs[i].role : "";
            const char *content = msgs[i].content ? msgs[i].content : "";
            cj_dict_set(R, d.u.d, cj_str("role", 4), cj_str(role, strlen(role)));
            cj_dict_set(R, d.u.d, cj_str("content", 7), cj_str(content, strlen(content)));
            list.u.l->v[i] = d;
        }
        cj_define(R, globals, "messages", list);
    }
    const char *bos = o->bos_token ? o->bos_token : t->bos;
    const char *eos = o->eos_token ? o->eos_token : t->eos;
    cj_define(R, globals, "add_generation_prompt", cj_bool(o->add_generation_prompt));
    cj_define(R, globals, "bos_token", cj_str(bos, strlen(bos)));
    cj_define(R, globals, "eos_token", cj_str(eos, strlen(eos)));
    R->top = R->frame = cj_frame_new(R, globals);
    cj_exec(R, t->body);
}

static int render_guarded(cj_render *R, const t2_chat_template *t, const json_t *conv,
                          const t2_chat_msg *msgs, int n_msgs, const t2_chat_opts *o) {
    jmp_buf jb;
    R->c->jmp = &jb;
    if (setjmp(jb)) return R->c->code;
    render_body(R, t, conv, msgs, n_msgs, o);
    return 0;
}

static int render(const t2_chat_template *t, const json_t *conv, const t2_chat_msg *msgs,
                  int n_msgs, const t2_chat_opts *o, char **out, size_t *out_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    cj_arena arena = {.limit = o->max_memory ? o->max_memory : T2_CHAT_MAX_MEMORY};
    cj_ctx c = {.arena = &arena, .line = 1};
    cj_render R = {.c = &c,
                   .max_out = o->max_output ? o->max_output : T2_CHAT_MAX_OUTPUT,
                   .max_iters = o->max_iterations ? o->max_iterations : T2_CHAT_MAX_ITERATIONS,
                   .max_depth = T2_CHAT_MAX_DEPTH,
                   .year = o->year, .month = o->month, .day = o->day};
    if (!R.year) today(&R.year, &R.month, &R.day);
    int rc = render_guarded(&R, t, conv, msgs, n_msgs, o);
    if (rc < 0) {
        t2_err_prefix(rc, "%s", t->name);
        cj_arena_free(&arena);
        return rc;
    }
    if (!arena.out && !(arena.out = calloc(1, 1))) {
        cj_arena_free(&arena);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    *out = arena.out; /* the output buffer changes hands */
    arena.out = NULL;
    if (out_len) *out_len = R.out_n;
    cj_arena_free(&arena);
    return 0;
}

static const t2_chat_opts default_opts;

int t2_chat_render(const t2_chat_template *t, const t2_chat_msg *msgs, int n_msgs,
                   const t2_chat_opts *o, char **out, size_t *out_len) {
    if (n_msgs < 0 || (n_msgs && !msgs)) return t2_err_set(T2_EINVAL, "bad message list");
    return render(t, NULL, msgs, n_msgs, o ? o : &default_opts, out, out_len);
}

int t2_chat_render_json(const t2_chat_template *t, const char *json, size_t len,
                        const t2_chat_opts *o, char **out, size_t *out_len) {
    *out = NULL;
    json_error_t jerr;
    json_t *conv = json_loadb(json, len, 0, &jerr);
    if (!conv) return t2_err_set(T2_EFORMAT, "conversation: line %d: %s", jerr.line, jerr.text);
    if (!json_is_object(conv)) {
        json_decref(conv);
        return t2_err_set(T2_EFORMAT, "conversation: not a JSON object {\"messages\": [...]}");
    }
    const json_t *m = json_object_get(conv, "messages");
    if (m && !json_is_array(m)) {
        json_decref(conv);
        return t2_err_set(T2_EFORMAT, "conversation: \"messages\" is not an array");
    }
    int rc = render(t, conv, NULL, 0, o ? o : &default_opts, out, out_len);
    json_decref(conv);
    return rc;
}
