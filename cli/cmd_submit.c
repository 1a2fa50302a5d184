/* t2 submit: send prompts to a running T2 deployment (router -> dispatcher -> worker groups)
 * and print the answers: streamed text, the adaptation chosen (pass-1 label, mixture) and the
 * timings; or one JSON object per answer with --json. */
#include "cli.h"

#include "base/buf.h"
#include "base/json.h"
#include "t2_client.h"
#include "t2_conf.h"
#include "base/t2_err.h"
#include "t2_wire.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char submit_help[] =
    "usage: t2 submit [-c t2.cfg] [--endpoint E] [--service S] [PROMPT... | -p PROMPT... |\n"
    "                 -f FILE] [-n MAX_TOKENS] [-t TEMP] [--top-p P] [-s SEED]\n"
    "                 [--adapt MODE] [--parallel N] [--timeout-ms N] [--json] [-q]\n\n"
    "Send prompts to a T2 deployment and print the answers as they stream in.\n\n"
    "  -c, --config FILE    the deployment file: router endpoint, heartbeat, default service\n"
    "      --endpoint E     the router (default: the file's router.endpoint, else\n"
    "                       tcp://127.0.0.1:5555)\n"
    "      --service S      default: the file's client.service, else generate-adaptive\n"
    "  -p, --prompt TEXT    a prompt (repeatable); arguments are prompts too\n"
    "  -f, --file FILE      prompts, one per line ('-': standard input); with no prompt\n"
    "                       given, they are read from standard input\n"
    "  -n, --max-tokens N   new tokens per answer (default: the worker's)\n"
    "  -t, --temperature T  0 = greedy (default: the worker's, 1.0)\n"
    "      --top-p P        nucleus sampling (default: the worker's, 0.9)\n"
    "  -s, --seed N         sampling seed (default: random)\n"
    "      --adapt MODE     none | prompt | classifier | profile:NAME | mix:NAME=A,NAME=A...\n"
    "                       (default: none; prompt/classifier/profile need the dispatcher)\n"
    "      --parallel N     requests in flight at once (default 1)\n"
    "      --timeout-ms N   per request (default: the file's client.timeout_ms, else none)\n"
    "      --chat           send each prompt as a conversation of one user message: the\n"
    "                       worker renders it with the model's chat template (as t2 run --chat)\n"
    "      --json           one JSON object per answer on stdout (in completion order)\n"
    "  -q, --quiet          print only the texts (no per-answer line on stderr)\n\n"
    "Text goes to stdout (streamed with --parallel 1, else each answer whole, preceded by\n"
    "\"[i] \"); per answer a line on stderr: label, mixture, finish reason, token counts,\n"
    "pass-1 / pass-2 times, time to first token and total. Exit 1 if any request failed.\n";

typedef struct sreq {
    const char *prompt;
    uint64_t id;
    int state; /* 0 waiting, 1 in flight, 2 done */
    t2_buf text; /* the streamed chunks put together */
    double t_submit, t_first, t_done;
} sreq;

typedef struct submit {
    t2_client *c;
    const char *service;
    T2__Task task; /* shared parts: sampling, adaptation */
    T2__Sampling sampling;
    T2__Adaptation adaptation;
    T2__Mixture mixture;
    T2__ExpertAlpha *ea;
    T2__ExpertAlpha **eap;
    char *mix_names; /* the names the mixture points into */
    uint32_t timeout_ms;
    int json, quiet, stream, chat;
    int failed;
    long long max_tokens;
    int has_max;
} submit;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static double now_ms(void) { return (double)t2_wire_now_ms(); }

/* --adapt MODE into the task's adaptation. */
static int parse_adapt(submit *s, const char *a) {
    T2__Adaptation *ad = &s->adaptation;
    if (!strcmp(a, "none")) {
        ad->has_mode = 1;
        ad->mode = T2__ADAPT_MODE__ADAPT_NONE;
    } else if (!strcmp(a, "prompt")) {
        ad->has_mode = 1;
        ad->mode = T2__ADAPT_MODE__ADAPT_PROMPT;
    } else if (!strcmp(a, "classifier")) {
        ad->has_mode = 1;
        ad->mode = T2__ADAPT_MODE__ADAPT_CLASSIFIER;
    } else if (!strncmp(a, "profile:", 8) && a[8]) {
        ad->has_mode = 1;
        ad->mode = T2__ADAPT_MODE__ADAPT_PROFILE;
        ad->profile = (char *)a + 8;
    } else if (!strncmp(a, "mix:", 4) && a[4]) {
        ad->has_mode = 1;
        ad->mode = T2__ADAPT_MODE__ADAPT_MIXTURE;
        size_t n = 1;
        for (const char *p = a + 4; *p; p++)
            n += *p == ',';
        s->ea = calloc(n, sizeof *s->ea);
        s->eap = calloc(n, sizeof *s->eap);
        char *copy = s->mix_names = strdup(a + 4);
        if (!s->ea || !s->eap || !copy) {
            fprintf(stderr, "t2 submit: out of memory\n");
            return -1;
        }
        size_t k = 0;
        for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
             item = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(item, '='), *end;
            if (!eq || eq == item) {
                fprintf(stderr, "t2 submit: --adapt mix: '%s' is not NAME=WEIGHT\n", item);
                return -1;
            }
            *eq = 0;
            errno = 0;
            double al = strtod(eq + 1, &end);
            if (errno || end == eq + 1 || *end || !isfinite(al)) {
                fprintf(stderr, "t2 submit: --adapt mix: weight '%s' of '%s' is not a number\n",
                        eq + 1, item);
                return -1;
            }
            T2__ExpertAlpha init = T2__EXPERT_ALPHA__INIT;
            s->ea[k] = init;
            s->ea[k].expert = item; /* points into copy, kept for the program's life */
            s->ea[k].has_alpha = 1;
            s->ea[k].alpha = (float)al;
            s->eap[k] = &s->ea[k];
            k++;
        }
        s->mixture.n_experts = k;
        s->mixture.experts = s->eap;
        ad->mixture = &s->mixture;
    } else {
        fprintf(stderr,
                "t2 submit: --adapt: '%s' is not none, prompt, classifier, "
                "profile:NAME or mix:NAME=A,...\n",
                a);
        return -1;
    }
    s->task.adaptation = ad;
    return 0;
}

static const char *finish_name(int f) {
    switch (f) {
    case T2__FINISH_REASON__FINISH_STOP: return "stop";
    case T2__FINISH_REASON__FINISH_LENGTH: return "length";
    case T2__FINISH_REASON__FINISH_CANCELLED: return "cancelled";
    }
    return "?";
}

static void mixture_text(const T2__Mixture *m, char *buf, size_t cap) {
    if (!m || !m->n_experts) {
        snprintf(buf, cap, "base");
        return;
    }
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < m->n_experts && n < cap; i++) {
        const T2__ExpertAlpha *e = m->experts[i];
        if (e->n_matrix_alpha)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s=[%zu per matrix]", i ? "," : "",
                                  e->expert, e->n_matrix_alpha);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%s=%g", i ? "," : "", e->expert,
                                  (double)e->alpha);
    }
}

/* A time in ms with three decimals, or null. */
static json_t *json_ms(double v, int has) {
    return has ? json_real(round(v * 1000) / 1000) : json_null();
}

static json_t *json_mixture(const T2__Mixture *m) {
    json_t *a = json_array();
    for (size_t i = 0; m && i < m->n_experts; i++) {
        const T2__ExpertAlpha *e = m->experts[i];
        json_t *x = json_pack("{s:o}", "expert", t2_json_text(e->expert, strlen(e->expert)));
        if (e->n_matrix_alpha) {
            json_t *ma = json_array();
            for (size_t j = 0; j < e->n_matrix_alpha; j++)
                json_array_append_new(ma, json_real(e->matrix_alpha[j]));
            json_object_set_new(x, "matrix_alpha", ma);
        } else {
            json_object_set_new(x, "alpha", json_real(e->alpha));
        }
        json_array_append_new(a, x);
    }
    return a;
}

/* One line of JSON per answer (jansson; members in this order). */
static void print_json(const sreq *r, int index, const T2__Result *res, int code,
                       const char *message) {
    json_t *o = json_pack("{s:i,s:I,s:o}", "index", index, "request_id", (json_int_t)r->id,
                          "prompt", t2_json_text(r->prompt, strlen(r->prompt)));
    if (res) {
        json_object_set_new(o, "text",
                            res->has_text
                                ? t2_json_text((const char *)res->text.data, res->text.len)
                                : t2_json_text(r->text.data ? r->text.data : "", r->text.len));
        json_object_set_new(o, "finish", json_string(finish_name(res->finish_reason)));
        json_object_set_new(o, "prompt_tokens", json_integer(res->prompt_tokens));
        json_object_set_new(o, "completion_tokens", json_integer(res->completion_tokens));
        json_object_set_new(o, "label", res->label ? t2_json_text(res->label, strlen(res->label))
                                                   : json_null());
        json_object_set_new(o, "mixture", json_mixture(res->mixture));
        /* the streamed chunks put together must be the final text */
        const t2_buf *t = &r->text;
        int stream_ok = res->has_text ? t->len == res->text.len &&
                                            (!t->len || !memcmp(t->data, res->text.data, t->len))
                                      : t->len == 0;
        json_object_set_new(o, "stream_ok", json_boolean(stream_ok));
        json_object_set_new(o, "pass1_ms", json_ms(res->pass1_ms, res->has_pass1_ms));
        json_object_set_new(o, "pass2_ms", json_ms(res->pass2_ms, res->has_pass2_ms));
        json_object_set_new(o, "error", json_null());
    } else {
        json_object_set_new(o, "text", json_null());
        json_object_set_new(o, "error",
                            json_pack("{s:i,s:s,s:o}", "code", code, "name", t2_strerror(code),
                                      "message", t2_json_text(message, strlen(message))));
    }
    json_object_set_new(o, "ttft_ms", json_ms(r->t_first - r->t_submit, r->t_first > 0));
    json_object_set_new(o, "total_ms", json_ms(r->t_done - r->t_submit, 1));
    if (!o || json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(10)) < 0)
        printf("{\"index\":%d,\"error\":{\"code\":%d,\"name\":\"ENOMEM\"}}", index, T2_ENOMEM);
    json_decref(o);
    printf("\n");
    fflush(stdout);
}

static void print_human(submit *s, sreq *r, int index, const T2__Result *res, int code,
                        const char *message) {
    if (res && !s->stream) {
        printf("[%d] ", index);
        if (res->has_text) fwrite(res->text.data, 1, res->text.len, stdout);
        printf("\n");
    } else if (res) {
        printf("\n");
    }
    fflush(stdout);
    if (!res) {
        fprintf(stderr, "t2 submit: [%d] error %d (%s): %s\n", index, code, t2_strerror(code),
                message);
        return;
    }
    if (s->quiet) return;
    char mix[512];
    mixture_text(res->mixture, mix, sizeof mix);
    fprintf(stderr, "[%d] label=%s mixture=%s finish=%s tokens=%u+%u", index,
            res->label ? res->label : "-", mix, finish_name(res->finish_reason), res->prompt_tokens,
            res->completion_tokens);
    if (res->has_pass1_ms) fprintf(stderr, " pass1=%.1fms", res->pass1_ms);
    if (res->has_pass2_ms) fprintf(stderr, " pass2=%.1fms", res->pass2_ms);
    if (r->t_first > 0) fprintf(stderr, " ttft=%.1fms", r->t_first - r->t_submit);
    fprintf(stderr, " total=%.1fms\n", r->t_done - r->t_submit);
}

static int read_lines(const char *path, char ***lines, int *n, int *cap) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "t2 submit: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len) continue;
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            char **v = realloc(*lines, (size_t)*cap * sizeof *v);
            if (!v) break;
            *lines = v;
        }
        (*lines)[(*n)++] = strdup(line);
    }
    free(line);
    if (f != stdin) fclose(f);
    return 0;
}

static int submit_one(submit *s, sreq *r) {
    T2__Task t = s->task;
    T2__ChatMessage user = T2__CHAT_MESSAGE__INIT, *msgs[1] = {&user};
    if (s->chat) { /* packed by t2_client_submit: the locals live long enough */
        user.role = "user";
        user.content = (char *)r->prompt;
        t.n_messages = 1;
        t.messages = msgs;
    } else {
        t.has_prompt = 1;
        t.prompt.data = (uint8_t *)r->prompt;
        t.prompt.len = strlen(r->prompt);
    }
    r->t_submit = now_ms();
    int rc = t2_client_submit(s->c, s->service, &t, s->timeout_ms, &r->id);
    r->state = rc < 0 ? 2 : 1;
    return rc;
}

/* The command line besides what goes into the task. */
typedef struct {
    const char *cfg_path, *endpoint, *service, *adapt;
    char **prompts;
    int n_prompts, cap_prompts, parallel, timeout, files;
} submit_args;

static const struct option submit_long_opts[] = {{"config", required_argument, 0, 'c'},
                                                 {"endpoint", required_argument, 0, 'E'},
                                                 {"service", required_argument, 0, 'S'},
                                                 {"prompt", required_argument, 0, 'p'},
                                                 {"file", required_argument, 0, 'f'},
                                                 {"max-tokens", required_argument, 0, 'n'},
                                                 {"temperature", required_argument, 0, 't'},
                                                 {"top-p", required_argument, 0, 'P'},
                                                 {"seed", required_argument, 0, 's'},
                                                 {"adapt", required_argument, 0, 'A'},
                                                 {"parallel", required_argument, 0, 'j'},
                                                 {"timeout-ms", required_argument, 0, 'T'},
                                                 {"json", no_argument, 0, 'J'},
                                                 {"chat", no_argument, 0, 'C'},
                                                 {"quiet", no_argument, 0, 'q'},
                                                 {"help", no_argument, 0, 'h'},
                                                 {0, 0, 0, 0}};

/* A copy of prompt p at the end of the list: 0, or 2 after the message. */
static int add_prompt(submit_args *a, const char *p) {
    if (a->n_prompts == a->cap_prompts) {
        a->cap_prompts = a->cap_prompts ? 2 * a->cap_prompts : 16;
        char **v = realloc(a->prompts, (size_t)a->cap_prompts * sizeof *v);
        if (!v) return cli_usage_error("submit", "out of memory");
        a->prompts = v;
    }
    a->prompts[a->n_prompts++] = strdup(p);
    return 0;
}

/* Option c (its value in optarg) into s and a: -1 to go on, else the exit status (0 after
 * --help, 1 or 2 after the message). */
static int submit_opt(submit *s, submit_args *a, int c) {
    const char *cmd = "submit";
    switch (c) {
    case 'c': a->cfg_path = optarg; break;
    case 'E': a->endpoint = optarg; break;
    case 'S': a->service = optarg; break;
    case 'p': if (add_prompt(a, optarg)) return 2; break;
    case 'f':
        if (read_lines(optarg, &a->prompts, &a->n_prompts, &a->cap_prompts) < 0) return 1;
        a->files++;
        break;
    case 'n': {
        char *end;
        errno = 0;
        s->max_tokens = strtoll(optarg, &end, 10);
        if (errno || end == optarg || *end)
            return cli_usage_error(cmd, "-n: '%s' is not an integer", optarg);
        s->has_max = 1;
        break;
    }
    case 't':
        if (cli_float(cmd, "-t", optarg, 0, 100, &s->sampling.temperature)) return 2;
        s->sampling.has_temperature = 1;
        break;
    case 'P':
        if (cli_float(cmd, "--top-p", optarg, 0, 1, &s->sampling.top_p)) return 2;
        s->sampling.has_top_p = 1;
        break;
    case 's':
        if (cli_u64(cmd, "-s", optarg, &s->sampling.seed)) return 2;
        s->sampling.has_seed = 1;
        break;
    case 'A': a->adapt = optarg; break;
    case 'j': if (cli_int(cmd, "--parallel", optarg, 1, 4096, &a->parallel)) return 2; break;
    case 'T': if (cli_int(cmd, "--timeout-ms", optarg, 0, 1 << 30, &a->timeout)) return 2; break;
    case 'J': s->json = 1; break;
    case 'C': s->chat = 1; break;
    case 'q': s->quiet = 1; break;
    case 'h': fputs(submit_help, stdout); return 0;
    default: return cli_usage_error(cmd, "bad option");
    }
    return -1;
}

/* The command line into s and a (the prompts: arguments, -p, -f, else stdin when it is not a
 * terminal): -1 to go on, else the exit status. */
static int submit_parse(int argc, char **argv, submit *s, submit_args *a) {
    const char *cmd = "submit";
    T2__Task ti = T2__TASK__INIT;
    T2__Sampling si = T2__SAMPLING__INIT;
    T2__Adaptation ai = T2__ADAPTATION__INIT;
    T2__Mixture mi = T2__MIXTURE__INIT;
    s->task = ti;
    s->sampling = si;
    s->adaptation = ai;
    s->mixture = mi;
    s->task.sampling = &s->sampling;
    int c, r;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:p:f:n:t:s:qh", submit_long_opts, NULL)) != -1)
        if ((r = submit_opt(s, a, c)) >= 0) return r;
    for (int i = optind; i < argc; i++)
        if (add_prompt(a, argv[i])) return 2;
    if (!a->n_prompts && !a->files && !isatty(0) &&
        read_lines("-", &a->prompts, &a->n_prompts, &a->cap_prompts) < 0)
        return 1;
    if (!a->n_prompts) return cli_usage_error(cmd, "no prompt: give PROMPT, -p, -f FILE or stdin");
    if (a->adapt && parse_adapt(s, a->adapt) < 0) return 2;
    return -1;
}

/* The deployment file's defaults, and a client connected to the router. */
static int submit_connect(submit *s, const submit_args *a, t2_conf *cf) {
    int rc;
    if ((rc = t2_conf_load(cf, a->cfg_path, NULL)) < 0) return rc;
    s->service = a->service ? a->service : cf->client.service;
    s->timeout_ms = (uint32_t)(a->timeout >= 0 ? a->timeout : cf->client.timeout_ms);
    t2_client_opts co = t2_client_opts_default();
    co.heartbeat_ms = cf->router.heartbeat_ms;
    co.liveness = cf->router.liveness;
    t2_curve_client cc;
    if (cf->security.curve) {
        rc = t2_curve_load_client(cf->security.router_public, cf->security.client_key, &cc);
        if (rc < 0) return rc;
        co.curve = &cc;
    }
    return t2_client_new(&s->c, NULL, a->endpoint ? a->endpoint : cf->router.endpoint, &co);
}

/* The progress of the requests. */
typedef struct {
    sreq *rq;
    int n, next, in_flight, done, bad_max;
} submit_queue;

static void report(submit *s, sreq *r, int index, const T2__Result *res, int code,
                   const char *message) {
    if (s->json)
        print_json(r, index, res, code, message);
    else
        print_human(s, r, index, res, code, message);
}

/* Send requests until --parallel are in flight; those refused are answered at once. */
static void submit_more(submit *s, const submit_args *a, submit_queue *q) {
    while (q->in_flight < a->parallel && q->next < q->n) {
        sreq *r = &q->rq[q->next];
        r->prompt = a->prompts[q->next];
        int e;
        if (q->bad_max) {
            r->t_submit = r->t_done = now_ms();
            t2_err_set(T2_ERANGE, "max tokens %lld is out of range (1..%u)", s->max_tokens,
                       1u << 20);
            e = T2_ERANGE;
        } else {
            e = submit_one(s, r);
            r->t_done = now_ms();
        }
        if (e < 0) {
            report(s, r, q->next, NULL, e, t2_err_msg());
            s->failed++;
            q->done++;
            r->state = 2;
        } else {
            q->in_flight++;
        }
        q->next++;
    }
}

/* A chunk (streamed when one answer prints at a time) or the end of a request. */
static void submit_event(submit *s, submit_queue *q, const t2_client_event *ev) {
    int idx = -1;
    for (int i = 0; i < q->n; i++)
        if (q->rq[i].state == 1 && q->rq[i].id == ev->request_id) idx = i;
    if (idx < 0) return;
    sreq *r = &q->rq[idx];
    if (ev->type == T2_CLIENT_CHUNK) {
        if (r->t_first == 0) r->t_first = now_ms();
        if (ev->chunk->has_text) {
            if (s->stream) {
                fwrite(ev->chunk->text.data, 1, ev->chunk->text.len, stdout);
                fflush(stdout);
            }
            t2_buf_add(&r->text, ev->chunk->text.data, ev->chunk->text.len);
        }
    } else if (ev->type == T2_CLIENT_RESULT || ev->type == T2_CLIENT_ERROR) {
        r->t_done = now_ms();
        r->state = 2;
        q->in_flight--;
        q->done++;
        const T2__Result *res = ev->type == T2_CLIENT_RESULT ? ev->result : NULL;
        if (!res) s->failed++;
        report(s, r, idx, res, ev->code, ev->message);
    }
}

/* Every prompt sent and answered (or refused), until done or interrupted: the exit status. */
static int submit_all(submit *s, const submit_args *a, submit_queue *q) {
    s->stream = !s->json && (a->parallel == 1 || q->n == 1);
    /* max tokens outside what a request can carry: refused here, per request */
    q->bad_max = s->has_max && (s->max_tokens < 0 || s->max_tokens > UINT32_MAX);
    if (s->has_max && !q->bad_max) {
        s->sampling.has_max_tokens = 1;
        s->sampling.max_tokens = (uint32_t)s->max_tokens;
    }
    t2_client_event ev = {0};
    while (q->done < q->n && !interrupted) {
        submit_more(s, a, q);
        if (!q->in_flight) continue;
        int got = t2_client_recv(s->c, &ev, 200);
        if (got < 0) {
            t2_err_set(T2_EZMQ, "client connection failed");
            break;
        }
        if (got > 0) submit_event(s, q, &ev);
    }
    t2_client_event_clear(&ev);
    if (interrupted)
        fprintf(stderr, "t2 submit: interrupted, %d of %d answered\n", q->done, q->n);
    return s->failed || q->done < q->n ? 1 : 0;
}

int t2_cmd_submit(int argc, char **argv) {
    submit s;
    memset(&s, 0, sizeof s);
    submit_args a = {.parallel = 1, .timeout = -1};
    t2_conf cf;
    submit_queue q = {0};
    int rc = submit_parse(argc, argv, &s, &a), loaded = 0;
    if (rc < 0) {
        loaded = 1;
        if (submit_connect(&s, &a, &cf) < 0) {
            rc = cli_fail("submit");
        } else {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_sigint;
            sigaction(SIGINT, &sa, NULL);
            sigaction(SIGTERM, &sa, NULL);
            q.n = a.n_prompts;
            q.rq = calloc((size_t)a.n_prompts, sizeof *q.rq);
            rc = q.rq ? submit_all(&s, &a, &q) : 1;
        }
    }
    for (int i = 0; q.rq && i < q.n; i++)
        t2_buf_free(&q.rq[i].text);
    free(q.rq);
    for (int i = 0; i < a.n_prompts; i++)
        free(a.prompts[i]);
    free(a.prompts);
    free(s.ea);
    free(s.eap);
    free(s.mix_names);
    t2_client_destroy(&s.c);
    if (loaded) t2_conf_free(&cf);
    return rc;
}
