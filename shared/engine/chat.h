/* chat.h - a model's chat template, rendered as Hugging Face renders it.
 *
 * A chat template is a Jinja program (tokenizer_config.json's "chat_template", GGUF's
 * tokenizer.chat_template) that turns a conversation into the model's prompt text. T2 runs
 * its own interpreter of the Jinja subset real templates use, configured as Hugging Face's
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the globals
 * raise_exception(msg) and strftime_now(fmt) and tojson = json.dumps(ensure_ascii=False):
 *
 *   t2_chat_template *t;
 *   if (t2_chat_template_load(&t, "tokenizer_config.json") < 0) ... t2_err_msg() ...
 *   t2_chat_msg msgs[] = {{"system", "Be brief."}, {"user", "Hi"}};
 *   t2_chat_opts o = {.add_generation_prompt = 1};
 *   char *text; size_t n;
 *   if (t2_chat_render(t, msgs, 2, &o, &text, &n) < 0) ... ; free(text);
 *   t2_chat_template_destroy(&t);
 *
 * Supported: {{ }}, {% if/elif/else %}, {% for x in y if c %} with loop.index/index0/first/
 * last/length/revindex/previtem/nextitem/cycle() and {% else %}, {% set %} (names, unpacking,
 * ns.attr, set blocks), {% macro %}, comments, whitespace control (- and +), literals (strings,
 * numbers, lists, dicts, tuples), . [] slicing, calls, filters (trim length count tojson upper
 * lower capitalize title default join string items list first last replace selectattr
 * rejectattr select reject map reverse abs int float safe escape unique dictsort sort sum
 * min max indent), tests (defined undefined none boolean true false string number integer float
 * mapping iterable sequence callable equalto eq ne lt le gt ge in odd even divisibleby sameas
 * lower upper), str methods (strip lstrip rstrip split startswith endswith upper lower title
 * capitalize replace find count join), dict methods (items keys values get), globals
 * (namespace range dict raise_exception strftime_now).
 * Refused with "line N: ...": other tags (include, extends, block, call, filter, raw, break,
 * ...), unknown filters and tests (when parsing), unknown functions (when rendering).
 * Case mapping (upper, lower, title, capitalize, and case-insensitive sort) covers ASCII
 * letters only.
 *
 * Templates are untrusted: the source size, nesting, loop iterations, output size, memory and
 * call depth are bounded; exceeding a bound is T2_ERANGE with a message naming it.
 */
#ifndef T2_CHAT_H
#define T2_CHAT_H

#include <stddef.h>

#define T2_CHAT_MAX_SOURCE (1u << 20)      /* template source bytes */
#define T2_CHAT_MAX_OUTPUT (16u << 20)     /* default rendered bytes */
#define T2_CHAT_MAX_MEMORY (256u << 20)    /* default bytes a rendering may allocate */
#define T2_CHAT_MAX_ITERATIONS 1000000     /* default loop iterations (all loops together) */
#define T2_CHAT_MAX_DEPTH 200              /* default nesting of evaluation and macro calls */

typedef struct t2_chat_template t2_chat_template;

typedef struct t2_chat_msg {
    const char *role;    /* "system", "user", "assistant", ... */
    const char *content; /* UTF-8 */
} t2_chat_msg;

typedef struct t2_chat_opts {
    int add_generation_prompt; /* end with the assistant's turn header */
    const char *bos_token;     /* NULL: the template's (from tokenizer_config.json) or "" */
    const char *eos_token;     /* NULL: likewise */
    int year, month, day;      /* strftime_now's date (0: today, UTC) */
    size_t max_output;         /* 0: T2_CHAT_MAX_OUTPUT */
    size_t max_memory;         /* 0: T2_CHAT_MAX_MEMORY */
    long long max_iterations;  /* 0: T2_CHAT_MAX_ITERATIONS */
} t2_chat_opts;

/* Parse a template from text; `name` names it in messages. T2_EFORMAT (syntax, unsupported
 * construct: "NAME: line N: what"), T2_ERANGE (a bound), T2_ENOMEM. */
int t2_chat_template_new(t2_chat_template **out, const char *src, size_t len, const char *name);
/* From a file: a tokenizer_config.json (its "chat_template", a string or the "default" of a
 * list of {name, template}; its bos_token / eos_token become the defaults) or template text. */
int t2_chat_template_load(t2_chat_template **out, const char *path);
/* A template T2 ships, by name ("chatml", "llama3", "gemma", "phi3"); T2_ENOTFOUND lists them. */
int t2_chat_template_named(t2_chat_template **out, const char *name);
void t2_chat_template_destroy(t2_chat_template **t);
/* The template's default tokens (from tokenizer_config.json; "" if unknown); borrowed. */
const char *t2_chat_template_bos(const t2_chat_template *t);
const char *t2_chat_template_eos(const t2_chat_template *t);
void t2_chat_template_set_tokens(t2_chat_template *t, const char *bos, const char *eos);

/* Render messages. *out is malloc'd and NUL-terminated (the caller frees); *out_len its
 * length. A template that calls raise_exception fails with T2_EINVAL and its message.
 * Renders only read the template (each has its own arena): several threads may render with one
 * template at once, but not while t2_chat_template_set_tokens changes it. */
int t2_chat_render(const t2_chat_template *t, const t2_chat_msg *msgs, int n_msgs,
                   const t2_chat_opts *o, char **out, size_t *out_len);
/* Render a conversation given as JSON: {"messages": [{"role": ..., "content": ...}, ...],
 * other keys become template variables (e.g. "tools", "date_string"). */
int t2_chat_render_json(const t2_chat_template *t, const char *json, size_t len,
                        const t2_chat_opts *o, char **out, size_t *out_len);

/* ---- with a model (chat_model.c) ---- */
struct t2_model;
struct t2_tokenizer;
/* bos_token / eos_token texts from the tokenizer's pieces, unless the template has its own. */
void t2_chat_template_use_tokenizer(t2_chat_template *t, const struct t2_tokenizer *tok);
/* The model's own template (GGUF tokenizer.chat_template), with tok's bos/eos texts (tok may be
 * NULL). T2_ENOTFOUND with a message naming the file when it has none. */
int t2_chat_template_from_model(t2_chat_template **out, const struct t2_model *m,
                                const struct t2_tokenizer *tok);
/* Encode rendered text: special tokens written by the template (<|im_start|>, <|eot_id|>, ...)
 * are parsed as such, and a leading bos_token text becomes the BOS id; nothing else is added
 * (as Hugging Face's apply_chat_template(tokenize=True)). Same contract as t2_tok_encode_ex. */
int t2_chat_encode(const struct t2_tokenizer *tok, const t2_chat_template *t, const char *text,
                   size_t len, int *tokens, int max_tokens, int *n_tokens);

#endif
