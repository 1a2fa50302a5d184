/* t2 perplexity and t2 logits: scoring text with a model. */
#include "cli.h"

#include "adapt_opts.h"

#include "engine/kernels.h"
#include "engine/model.h"
#include "base/platform.h"
#include "base/t2_err.h"
#include "engine/tokenizer.h"
#include "engine/transformer.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char ppl_help[] =
    "usage: t2 perplexity -m MODEL [-z TOKENIZER] -f TEXT [--docs blank|none] [--ctx N]\n"
    "                     [-j THREADS] [--batch N]\n\n"
    "Perplexity exp(mean negative log-likelihood) of the model on a text file.\n"
    "  --docs blank   documents are separated by blank lines (default): each is encoded with BOS\n"
    "                 first, as the model saw text in training\n"
    "  --docs none    the whole file is one document\n"
    "  --ctx N        context window (default: the model's); a longer document is scored in\n"
    "                 windows of N tokens that overlap by one token, so every token but the\n"
    "                 first BOS is predicted exactly once\n"
    CLI_ADAPT_HELP;

typedef struct {
    const char *model_path, *tok_path, *text_path;
    int threads, batch, ctx, split_blank;
    cli_adapt ad;
} ppl_opts;

typedef struct {
    t2_model *m;
    t2_tokenizer *tok;
    t2_pool *pool;
    t2_state *st;
    char *text;
    int *toks;
    float *logits; /* (batch, V) */
    size_t len;
    double nll;
    long long n_pred, n_docs, n_run;
} ppl_state;

static const struct option ppl_long_opts[] = {
    {"model", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 'z'},
    {"file", required_argument, 0, 'f'},  {"docs", required_argument, 0, 'D'},
    {"ctx", required_argument, 0, 'c'},   {"threads", required_argument, 0, 'j'},
    {"batch", required_argument, 0, 'B'}, {"help", no_argument, 0, 'h'},
    CLI_ADAPT_OPTIONS,                    {0, 0, 0, 0}};

/* The command line into o: -1 to go on, else the exit status (0 after --help, 2 after the
 * message). */
static int ppl_parse(int argc, char **argv, ppl_opts *o) {
    const char *cmd = "perplexity";
    *o = (ppl_opts){.threads = t2_nproc(), .batch = 128, .split_blank = 1,
                    .ad = {.mode = T2_APPLY_MERGED}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:f:j:h", ppl_long_opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'z': o->tok_path = optarg; break;
        case 'f': o->text_path = optarg; break;
        case 'D':
            if (!strcmp(optarg, "blank")) o->split_blank = 1;
            else if (!strcmp(optarg, "none")) o->split_blank = 0;
            else return cli_usage_error(cmd, "--docs: '%s' is not blank or none", optarg);
            break;
        case 'c': if (cli_int(cmd, "--ctx", optarg, 2, 1 << 22, &o->ctx)) return 2; break;
        case 'j':
            if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &o->threads)) return 2;
            break;
        case 'B': if (cli_int(cmd, "--batch", optarg, 1, 4096, &o->batch)) return 2; break;
        case 'h': fputs(ppl_help, stdout); return 0;
        default: {
            int r = cli_adapt_opt(&o->ad, cmd, c, optarg);
            if (r < 0) return 2;
            if (r == 0) return cli_usage_error(cmd, "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->model_path || !o->text_path) return cli_usage_error(cmd, "give -m MODEL and -f TEXT");
    return -1;
}

/* The model, the text, the window (ctx, batch), threads, buffers, state and adaptation. */
static int ppl_setup(ppl_opts *o, ppl_state *s) {
    int rc;
    if ((rc = t2_model_load(&s->m, o->model_path)) < 0 ||
        (rc = t2_model_load_tokenizer(&s->tok, s->m, o->tok_path)) < 0 ||
        (rc = cli_read_text(o->text_path, &s->text, &s->len)) < 0)
        return rc;
    if (!o->ctx || o->ctx > s->m->cfg.seq_len) o->ctx = s->m->cfg.seq_len;
    if (o->batch > o->ctx) o->batch = o->ctx;
    int prc = t2_pool_new(&s->pool, o->threads);
    s->toks = malloc((s->len + 3) * sizeof *s->toks);
    s->logits = malloc((size_t)o->batch * s->m->cfg.vocab_size * sizeof *s->logits);
    if (prc < 0 || !s->toks || !s->logits) return t2_err_set(T2_ENOMEM, "out of memory");
    if ((rc = t2_state_new(&s->st, s->m, o->batch, o->ctx)) < 0 ||
        (rc = cli_adapt_setup(&o->ad, s->m, s->pool)) < 0)
        return rc;
    t2_state_set_adapt(s->st, o->ad.adapt);
    return 0;
}

/* The negative log-likelihood of one document's n tokens, in windows [w, w + ctx)
 * overlapping by one token, added to s. */
static int ppl_doc(const ppl_opts *o, ppl_state *s, int n) {
    const int V = s->m->cfg.vocab_size, ctx = o->ctx, batch = o->batch;
    for (int w = 0; w < n - 1; w += ctx - 1) {
        int wn = n - w < ctx ? n - w : ctx;
        for (int b = 0; b < wn; b += batch) {
            int bn = wn - b < batch ? wn - b : batch;
            int rc = t2_forward(s->st, s->pool, s->toks + w + b, bn, b, s->logits);
            if (rc < 0) return rc;
            s->n_run += bn;
            for (int i = 0; i < bn; i++) {
                int target_idx = w + b + i + 1;
                if (b + i + 1 >= wn) break; /* last token of the window: no target */
                float *row = s->logits + (size_t)i * V;
                float mx = row[0];
                for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
                double sum = 0;
                for (int v = 0; v < V; v++) sum += exp((double)row[v] - mx);
                s->nll += log(sum) + mx - row[s->toks[target_idx]];
                s->n_pred++;
            }
        }
    }
    return 0;
}

/* Every document of the text (blank-line separated, or the whole file), each with BOS first;
 * then the perplexity on stdout and the speed on stderr. */
static int ppl_score(const ppl_opts *o, ppl_state *s) {
    double t0 = t2_now();
    char *doc = s->text;
    int rc;
    while (doc && *doc) {
        char *end = o->split_blank ? strstr(doc, "\n\n") : NULL;
        if (end) *end = 0;
        while (*doc == '\n') doc++;
        if (*doc) {
            int n;
            if ((rc = t2_tok_encode(s->tok, doc, 1, 0, s->toks, (int)s->len + 3, &n)) < 0)
                return rc;
            s->n_docs++;
            if ((rc = ppl_doc(o, s, n)) < 0) return rc;
        }
        doc = end ? end + 2 : NULL;
    }
    double dt = t2_now() - t0;
    if (!s->n_pred) return t2_err_set(T2_EINVAL, "%s: no text to score", o->text_path);
    printf("perplexity %.4f (mean NLL %.4f nats/token) over %lld predicted tokens in %lld "
           "documents\n", exp(s->nll / s->n_pred), s->nll / s->n_pred, s->n_pred, s->n_docs);
    fprintf(stderr, "%.2f s, %.1f tokens/s (batch %d, %d threads)\n", dt, s->n_run / dt,
            o->batch, o->threads);
    return 0;
}

int t2_cmd_perplexity(int argc, char **argv) {
    ppl_opts o;
    ppl_state s = {0};
    int rc = ppl_parse(argc, argv, &o);
    if (rc < 0) rc = ppl_setup(&o, &s) < 0 || ppl_score(&o, &s) < 0 ? cli_fail("perplexity") : 0;
    free(s.text);
    free(s.toks);
    free(s.logits);
    t2_state_destroy(&s.st);
    cli_adapt_free(&o.ad);
    t2_pool_destroy(&s.pool);
    t2_tok_destroy(&s.tok);
    t2_model_destroy(&s.m);
    return rc;
}

static const char logits_help[] =
    "usage: t2 logits -m MODEL (--tokens ID,ID,... | -p PROMPT [-z TOKENIZER]) -o OUT.f32\n"
    "                 [--mode batch|step] [-j THREADS] [--kv-type f32|f16|q8_0]\n\n"
    "Write the logits after each token as raw little-endian float32, n_tokens x vocab.\n"
    "  --mode batch   the tokens as one prompt batch (matrix-matrix path; default)\n"
    "  --mode step    one token at a time (matrix-vector path)\n"
    "  --kv-type T    KV cache type (default f32, the parity reference)\n"
    "With -p the prompt is encoded with BOS first.\n"
    CLI_ADAPT_HELP;

typedef struct {
    const char *model_path, *tok_path, *prompt, *list, *out_path;
    int threads, step_mode, kv_type;
    cli_adapt ad;
} logits_opts;

typedef struct {
    t2_model *m;
    t2_tokenizer *tok;
    t2_pool *pool;
    t2_state *st;
    int *toks, n;
    float *logits; /* (n, V) */
} logits_state;

static const struct option logits_long_opts[] = {
    {"model", required_argument, 0, 'm'},  {"tokenizer", required_argument, 0, 'z'},
    {"prompt", required_argument, 0, 'p'}, {"tokens", required_argument, 0, 'T'},
    {"output", required_argument, 0, 'o'}, {"mode", required_argument, 0, 'M'},
    {"threads", required_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
    {"kv-type", required_argument, 0, 'K'}, CLI_ADAPT_OPTIONS,       {0, 0, 0, 0}};

/* The command line into o: -1 to go on, else the exit status (0 after --help, 2 after the
 * message). */
static int logits_parse(int argc, char **argv, logits_opts *o) {
    const char *cmd = "logits";
    *o = (logits_opts){.threads = t2_nproc(), .ad = {.mode = T2_APPLY_MERGED}, .kv_type = T2_F32};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:p:o:j:h", logits_long_opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'z': o->tok_path = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'T': o->list = optarg; break;
        case 'o': o->out_path = optarg; break;
        case 'M':
            if (!strcmp(optarg, "batch")) o->step_mode = 0;
            else if (!strcmp(optarg, "step")) o->step_mode = 1;
            else return cli_usage_error(cmd, "--mode: '%s' is not batch or step", optarg);
            break;
        case 'K': if (cli_kv_type(cmd, optarg, &o->kv_type)) return 2; break;
        case 'j':
            if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &o->threads)) return 2;
            break;
        case 'h': fputs(logits_help, stdout); return 0;
        default: {
            int r = cli_adapt_opt(&o->ad, cmd, c, optarg);
            if (r < 0) return 2;
            if (r == 0) return cli_usage_error(cmd, "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->model_path || !o->out_path || (!o->list == !o->prompt))
        return cli_usage_error(cmd, "give -m MODEL, -o OUT and one of --tokens or -p");
    return -1;
}

/* The tokens of --tokens (or of -p, encoded with BOS first): 0, < 0 with the message set, or
 * 2 after a usage message. */
static int logits_tokens(const logits_opts *o, logits_state *s) {
    const char *cmd = "logits";
    const int V = s->m->cfg.vocab_size;
    if (!o->list) {
        size_t cap = strlen(o->prompt) + 3;
        if (!(s->toks = malloc(cap * sizeof *s->toks)))
            return t2_err_set(T2_ENOMEM, "out of memory");
        int rc;
        if ((rc = t2_model_load_tokenizer(&s->tok, s->m, o->tok_path)) < 0 ||
            (rc = t2_tok_encode(s->tok, o->prompt, 1, 0, s->toks, (int)cap, &s->n)) < 0)
            return rc;
        return 0;
    }
    size_t cap = strlen(o->list) / 2 + 2;
    if (!(s->toks = malloc(cap * sizeof *s->toks))) return t2_err_set(T2_ENOMEM, "out of memory");
    for (const char *p = o->list; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= V)
            return cli_usage_error(cmd, "--tokens: bad token id at '%.20s' (ids are 0..%d)", p,
                                   V - 1);
        s->toks[s->n++] = (int)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return cli_usage_error(cmd, "--tokens: expected ',' at '%.20s'", p);
        if ((size_t)s->n >= cap) break;
    }
    return 0;
}

/* The logits after every token (one batch, or one token at a time), written to the output. */
static int logits_write(logits_opts *o, logits_state *s) {
    const int V = s->m->cfg.vocab_size, n = s->n;
    int prc = t2_pool_new(&s->pool, o->threads), rc;
    s->logits = malloc((size_t)n * V * sizeof *s->logits);
    if (prc < 0 || !s->logits) return t2_err_set(T2_ENOMEM, "out of memory");
    if ((rc = t2_state_new_kv(&s->st, s->m, o->step_mode ? 1 : n, n, 0, s->m->cfg.n_layers,
                              (t2_dtype)o->kv_type, NULL)) < 0 ||
        (rc = cli_adapt_setup(&o->ad, s->m, s->pool)) < 0)
        return rc;
    t2_state_set_adapt(s->st, o->ad.adapt);
    if (o->step_mode) {
        for (int i = 0; i < n; i++) {
            if ((rc = t2_forward(s->st, s->pool, s->toks + i, 1, i, NULL)) < 0) return rc;
            memcpy(s->logits + (size_t)i * V, t2_state_logits(s->st), (size_t)V * sizeof(float));
        }
    } else if ((rc = t2_forward(s->st, s->pool, s->toks, n, 0, s->logits)) < 0) {
        return rc;
    }
    FILE *f = fopen(o->out_path, "wb");
    if (!f || fwrite(s->logits, sizeof(float), (size_t)n * V, f) != (size_t)n * V || fclose(f))
        return t2_err_set(T2_EIO, "%s: cannot write: %s", o->out_path, strerror(errno));
    return 0;
}

/* Model, tokens, logits: 0, < 0 with the message set, or 2 after a usage message. */
static int logits_main(logits_opts *o, logits_state *s) {
    int rc;
    if ((rc = t2_model_load(&s->m, o->model_path)) < 0) return rc;
    if ((rc = logits_tokens(o, s)) != 0) return rc;
    if (s->n == 0 || s->n > s->m->cfg.seq_len)
        return cli_usage_error("logits", "%d tokens: need 1..%d (the model's context)", s->n,
                               s->m->cfg.seq_len);
    return logits_write(o, s);
}

int t2_cmd_logits(int argc, char **argv) {
    logits_opts o;
    logits_state s = {0};
    int rc = logits_parse(argc, argv, &o);
    if (rc < 0 && (rc = logits_main(&o, &s)) < 0) rc = cli_fail("logits");
    free(s.toks);
    free(s.logits);
    t2_state_destroy(&s.st);
    cli_adapt_free(&o.ad);
    t2_pool_destroy(&s.pool);
    t2_tok_destroy(&s.tok);
    t2_model_destroy(&s.m);
    return rc;
}
