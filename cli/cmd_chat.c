/* t2 chat: render a model's chat template (--render-only), or talk to a model turn by turn,
 * the whole conversation rendered by its template each turn. Also the hook `t2 run --chat`
 * uses (cli_chat_prompt). */
#include "cli.h"

#include "base/platform.h"
#include "base/t2_err.h"
#include "engine/chat.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"
#include "engine/transformer.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char chat_help[] =
    "usage: t2 chat --render-only --chat-template FILE|NAME [--messages FILE.json |\n"
    "               --system S --user U --assistant A ...] [--no-generation-prompt]\n"
    "               [--bos S] [--eos S] [--date YYYY-MM-DD]\n"
    "       t2 chat -m MODEL [--chat-template FILE|NAME] [--system S] [-z TOKENIZER]\n"
    "               [-n STEPS] [-t TEMP] [--top-p P] [-s SEED] [-j THREADS] [--kv-type T]\n\n"
    "Render a conversation with a model's chat template (as Hugging Face renders it), or chat\n"
    "with a model: each line read is a user message; the answer is generated until the\n"
    "end-of-turn token and kept in the history.\n\n"
    "      --render-only          print the rendered conversation (no trailing newline) and exit\n"
    "      --chat-template T      a template file (.jinja text), a tokenizer_config.json, or a\n"
    "                             name: chatml, llama3, gemma, phi3 (default with -m: the\n"
    "                             GGUF's tokenizer.chat_template)\n"
    "      --messages FILE        the conversation as JSON: {\"messages\": [{\"role\": ...,\n"
    "                             \"content\": ...}, ...]} (other keys become variables)\n"
    "      --system/--user/--assistant TEXT   messages, in the order given\n"
    "      --no-generation-prompt do not end with the assistant's turn header\n"
    "      --bos S, --eos S       bos_token / eos_token (default: tokenizer_config.json's, or\n"
    "                             the model's)\n"
    "      --date YYYY-MM-DD      the date strftime_now sees (default: today, UTC)\n"
    "  -m, --model MODEL          model file (GGUF or llama2.c)\n"
    "  -z, --tokenizer FILE       llama2.c tokenizer.bin (default: the GGUF's)\n"
    "  -n, --steps N              context length for the whole conversation (default 2048, at\n"
    "                             most the model's)\n"
    "  -t, --temperature T        0 = greedy (default 0.7)\n"
    "      --top-p P              nucleus sampling (default 0.9)\n"
    "  -s, --seed N               random seed (default: time)\n"
    "  -j, --threads N            threads (default: online CPUs)\n"
    "      --kv-type T            KV cache type: f16 (default), q8_0 or f32\n";

#define CHAT_MAX_MSGS 4096

typedef struct chat_args {
    const char *model, *tok, *tmpl, *messages, *bos, *eos;
    int render_only, no_gen, steps, threads, n_msgs, kv_type;
    int year, month, day;
    float temp, top_p;
    uint64_t seed;
    t2_chat_msg msgs[64];
} chat_args;

static int parse_date(const char *s, chat_args *a) {
    int y, m, d;
    char extra;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 || y < 1 || m < 1 || m > 12 ||
        d < 1 || d > 31)
        return cli_usage_error("chat", "--date: '%s' is not a date YYYY-MM-DD", s);
    a->year = y;
    a->month = m;
    a->day = d;
    return 0;
}

static int add_msg(chat_args *a, const char *role, const char *content) {
    if (a->n_msgs == (int)(sizeof a->msgs / sizeof a->msgs[0]))
        return cli_usage_error("chat", "more than %zu messages on the command line",
                               sizeof a->msgs / sizeof a->msgs[0]);
    a->msgs[a->n_msgs].role = role;
    a->msgs[a->n_msgs++].content = content;
    return 0;
}

/* Returns 0, 1 (--help printed) or an exit code >= 2. */
static int parse_args(int argc, char **argv, chat_args *a) {
    static const struct option opts[] = {
        {"render-only", no_argument, 0, 'R'},   {"chat-template", required_argument, 0, 'T'},
        {"messages", required_argument, 0, 'M'}, {"system", required_argument, 0, 'S'},
        {"user", required_argument, 0, 'U'},     {"assistant", required_argument, 0, 'A'},
        {"no-generation-prompt", no_argument, 0, 'G'}, {"bos", required_argument, 0, 'b'},
        {"eos", required_argument, 0, 'e'},     {"date", required_argument, 0, 'D'},
        {"model", required_argument, 0, 'm'},   {"tokenizer", required_argument, 0, 'z'},
        {"steps", required_argument, 0, 'n'},   {"temperature", required_argument, 0, 't'},
        {"top-p", required_argument, 0, 'P'},   {"seed", required_argument, 0, 's'},
        {"threads", required_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
        {"kv-type", required_argument, 0, 'K'}, {0, 0, 0, 0}};
    const char *cmd = "chat";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:n:t:s:j:h", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'R': a->render_only = 1; break;
        case 'T': a->tmpl = optarg; break;
        case 'M': a->messages = optarg; break;
        case 'S': rc = add_msg(a, "system", optarg); break;
        case 'U': rc = add_msg(a, "user", optarg); break;
        case 'A': rc = add_msg(a, "assistant", optarg); break;
        case 'G': a->no_gen = 1; break;
        case 'b': a->bos = optarg; break;
        case 'e': a->eos = optarg; break;
        case 'D': rc = parse_date(optarg, a); break;
        case 'm': a->model = optarg; break;
        case 'z': a->tok = optarg; break;
        case 'n': rc = cli_int(cmd, "-n", optarg, 1, 1 << 22, &a->steps) ? 2 : 0; break;
        case 't': rc = cli_float(cmd, "-t", optarg, 0, 100, &a->temp) ? 2 : 0; break;
        case 'P': rc = cli_float(cmd, "--top-p", optarg, 0, 1, &a->top_p) ? 2 : 0; break;
        case 's': rc = cli_u64(cmd, "-s", optarg, &a->seed) ? 2 : 0; break;
        case 'j': rc = cli_int(cmd, "-j", optarg, 1, 256, &a->threads) ? 2 : 0; break;
        case 'K': rc = cli_kv_type(cmd, optarg, &a->kv_type) ? 2 : 0; break;
        case 'h': fputs(chat_help, stdout); return 1;
        default: return cli_usage_error(cmd, "bad option");
        }
        if (rc) return rc;
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (a->messages && a->n_msgs)
        return cli_usage_error(cmd, "give --messages or --system/--user/--assistant, not both");
    if (a->render_only && !a->tmpl && !a->model)
        return cli_usage_error(cmd, "--render-only needs --chat-template or -m MODEL");
    if (!a->render_only && !a->model) return cli_usage_error(cmd, "no model: give -m MODEL");
    return 0;
}

/* bos_token / eos_token from the tokenizer's pieces (unless the template has its own). */
/* The template: --chat-template (a file if one exists at that path, else a name), else the
 * GGUF's tokenizer.chat_template. Templates from a GGUF or a template file take bos_token /
 * eos_token from `tok` when given (tokenizer_config.json and named templates have their own). */
static int load_template(const char *arg, const t2_model *m, const t2_tokenizer *tok,
                         t2_chat_template **out) {
    struct stat st;
    int rc;
    if (arg && stat(arg, &st) == 0) {
        size_t n = strlen(arg);
        if ((rc = t2_chat_template_load(out, arg)) == 0 && tok &&
            !(n >= 5 && !strcmp(arg + n - 5, ".json")))
            t2_chat_template_use_tokenizer(*out, tok);
        return rc;
    }
    if (arg) return t2_chat_template_named(out, arg);
    if (!m) return t2_err_set(T2_EINVAL, "no template: give --chat-template or -m MODEL");
    return t2_chat_template_from_model(out, m, tok);
}

static int render_only(const chat_args *a, const t2_chat_template *t, const t2_chat_opts *o) {
    char *text = NULL, *json = NULL;
    size_t n = 0, jn = 0;
    int rc;
    if (a->messages) {
        rc = cli_read_text(a->messages, &json, &jn);
        if (rc == 0) rc = t2_chat_render_json(t, json, jn, o, &text, &n);
        if (rc < 0 && json && !strncmp(t2_err_msg(), "conversation", 12))
            t2_err_prefix(rc, "%s", a->messages);
    } else {
        rc = t2_chat_render(t, a->msgs, a->n_msgs, o, &text, &n);
    }
    free(json);
    if (rc < 0) return cli_fail("chat");
    fwrite(text, 1, n, stdout);
    free(text);
    return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- talking to a model ------------------------------------------------------------------ */

typedef struct chat_session {
    t2_model *m;
    t2_tokenizer *tok;
    t2_chat_template *tmpl;
    t2_pool *pool;
    t2_state *st;
    t2_sampler *smp;
    int *tokens, *cached; /* this turn's prompt; the tokens whose K/V the state holds */
    int n_cached, steps;
    char *history[CHAT_MAX_MSGS]; /* contents, owned */
    t2_chat_msg msgs[CHAT_MAX_MSGS];
    int n_msgs;
    t2_chat_opts o;
} chat_session;

static void session_free(chat_session *s) {
    for (int i = 0; i < s->n_msgs; i++) free(s->history[i]);
    free(s->tokens);
    free(s->cached);
    t2_sampler_destroy(&s->smp);
    t2_state_destroy(&s->st);
    t2_pool_destroy(&s->pool);
    t2_chat_template_destroy(&s->tmpl);
    t2_tok_destroy(&s->tok);
    t2_model_destroy(&s->m);
}

static int session_push(chat_session *s, const char *role, const char *text, size_t n) {
    if (s->n_msgs == CHAT_MAX_MSGS)
        return t2_err_set(T2_ERANGE, "more than %d messages", CHAT_MAX_MSGS);
    char *c = malloc(n + 1);
    if (!c) return t2_err_set(T2_ENOMEM, "out of memory");
    memcpy(c, text, n);
    c[n] = 0;
    s->history[s->n_msgs] = c;
    s->msgs[s->n_msgs].role = role;
    s->msgs[s->n_msgs++].content = c;
    return 0;
}

/* Render the conversation, run the tokens the state lacks, and generate the answer (printed
 * and returned in *answer, malloc'd). */
static int session_turn(chat_session *s, char **answer) {
    char *text;
    size_t tn;
    *answer = NULL;
    int rc = t2_chat_render(s->tmpl, s->msgs, s->n_msgs, &s->o, &text, &tn);
    if (rc < 0) return rc;
    int n = 0;
    rc = t2_chat_encode(s->tok, s->tmpl, text, tn, s->tokens, s->steps, &n);
    free(text);
    if (rc < 0 || n >= s->steps)
        return t2_err_set(T2_ERANGE, "the conversation no longer fits in %d tokens (-n)",
                          s->steps);
    int keep = 0; /* K/V already computed for the common prefix (at least one token re-run) */
    while (keep < s->n_cached && keep < n - 1 && s->cached[keep] == s->tokens[keep]) keep++;
    if ((rc = t2_forward(s->st, s->pool, s->tokens + keep, n - keep, keep, NULL)) < 0) return rc;
    memcpy(s->cached, s->tokens, (size_t)n * sizeof *s->tokens);
    s->n_cached = n;
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (!out) return t2_err_set(T2_ENOMEM, "out of memory");
    int prev = s->tokens[n - 1];
    for (int pos = n; pos < s->steps; pos++) {
        int next = t2_sample(s->smp, t2_state_logits(s->st));
        if (next == t2_tok_eos(s->tok) || next == t2_tok_bos(s->tok) || next == t2_tok_eot(s->tok))
            break;
        size_t pn;
        const char *p = t2_tok_piece_text(s->tok, prev, next, &pn);
        fwrite(p, 1, pn, stdout);
        fflush(stdout);
        if (len + pn + 1 > cap) {
            char *o2 = realloc(out, cap = 2 * (len + pn + 1));
            if (!o2) { free(out); return t2_err_set(T2_ENOMEM, "out of memory"); }
            out = o2;
        }
        memcpy(out + len, p, pn);
        len += pn;
        s->cached[s->n_cached++] = next;
        prev = next;
        if ((rc = t2_forward(s->st, s->pool, &next, 1, pos, NULL)) < 0) { free(out); return rc; }
    }
    out[len] = 0;
    printf("\n");
    if (s->n_cached >= s->steps)
        fprintf(stderr, "t2 chat: the context (-n %d tokens) is full\n", s->steps);
    *answer = out;
    return 0;
}

static int chat_setup(chat_session *s, const chat_args *a) {
    int rc;
    if ((rc = t2_model_load(&s->m, a->model)) < 0) return rc;
    if ((rc = t2_model_load_tokenizer(&s->tok, s->m, a->tok)) < 0) return rc;
    if ((rc = load_template(a->tmpl, s->m, s->tok, &s->tmpl)) < 0) return rc;
    s->steps = a->steps < s->m->cfg.seq_len ? a->steps : s->m->cfg.seq_len;
    s->tokens = malloc((size_t)(s->steps + 4) * sizeof *s->tokens);
    s->cached = malloc((size_t)(s->steps + 4) * sizeof *s->cached);
    if (!s->tokens || !s->cached) return t2_err_set(T2_ENOMEM, "out of memory");
    if ((rc = t2_pool_new(&s->pool, a->threads)) < 0 ||
        (rc = t2_sampler_new(&s->smp, s->m->cfg.vocab_size, a->temp, a->top_p, a->seed)) < 0)
        return rc;
    return t2_state_new_kv(&s->st, s->m, 128, s->steps, 0, s->m->cfg.n_layers,
                           (t2_dtype)a->kv_type, NULL);
}

static int chat_loop(const chat_args *a, const t2_chat_opts *o) {
    chat_session s = {.o = *o};
    s.o.add_generation_prompt = 1;
    int rc = chat_setup(&s, a);
    for (int i = 0; rc == 0 && i < a->n_msgs; i++)
        rc = session_push(&s, a->msgs[i].role, a->msgs[i].content, strlen(a->msgs[i].content));
    char line[1 << 16];
    while (rc == 0) {
        printf("> ");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) break;
        size_t n = strcspn(line, "\r\n");
        if (n == 0) continue;
        char *answer;
        if ((rc = session_push(&s, "user", line, n)) < 0 || (rc = session_turn(&s, &answer)) < 0)
            break;
        rc = session_push(&s, "assistant", answer, strlen(answer));
        free(answer);
    }
    if (rc < 0) fprintf(stderr, "t2 chat: %s\n", t2_err_msg());
    session_free(&s);
    return rc < 0 ? 1 : 0;
}

int t2_cmd_chat(int argc, char **argv) {
    chat_args a = {.steps = 2048, .threads = t2_nproc(), .temp = 0.7f, .top_p = 0.9f,
                   .seed = (uint64_t)time(NULL), .kv_type = T2_F16};
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc;
    t2_chat_opts o = {.add_generation_prompt = !a.no_gen, .bos_token = a.bos, .eos_token = a.eos,
                      .year = a.year, .month = a.month, .day = a.day};
    if (!a.render_only) return chat_loop(&a, &o);
    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_chat_template *t = NULL;
    if (a.model && (t2_model_load(&m, a.model) < 0 ||
                    t2_model_load_tokenizer(&tok, m, a.tok) < 0)) {
        rc = cli_fail("chat");
    } else if (load_template(a.tmpl, m, tok, &t) < 0) {
        rc = cli_fail("chat");
    } else {
        rc = render_only(&a, t, &o);
    }
    t2_chat_template_destroy(&t);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc;
}

int cli_chat_prompt(const t2_model *m, const t2_tokenizer *tok, const char *tmpl_arg,
                    const char *prompt, char **out, int *bos) {
    t2_chat_template *t = NULL;
    *out = NULL;
    *bos = 0;
    int rc = load_template(tmpl_arg, m, tok, &t);
    if (rc < 0) return rc;
    t2_chat_msg msg = {"user", prompt};
    t2_chat_opts o = {.add_generation_prompt = 1};
    size_t n;
    char *text;
    if ((rc = t2_chat_render(t, &msg, 1, &o, &text, &n)) == 0) {
        /* a leading bos_token text becomes the BOS id (as t2_chat_encode does) */
        const char *bt = t2_chat_template_bos(t);
        size_t bn = strlen(bt);
        if (bn && !strncmp(text, bt, bn)) {
            memmove(text, text + bn, n - bn + 1);
            *bos = 1;
        }
        *out = text;
    }
    t2_chat_template_destroy(&t);
    return rc;
}
