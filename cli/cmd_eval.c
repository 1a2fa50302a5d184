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

int t2_cmd_perplexity(int argc, char **argv) {
    const char *cmd = "perplexity", *model_path = NULL, *tok_path = NULL, *text_path = NULL;
    int threads = t2_nproc(), batch = 128, ctx = 0, split_blank = 1, rc = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 'z'},
        {"file", required_argument, 0, 'f'},  {"docs", required_argument, 0, 'D'},
        {"ctx", required_argument, 0, 'c'},   {"threads", required_argument, 0, 'j'},
        {"batch", required_argument, 0, 'B'}, {"help", no_argument, 0, 'h'},
        CLI_ADAPT_OPTIONS,                    {0, 0, 0, 0}};
    cli_adapt ad = {.mode = T2_APPLY_MERGED};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:f:j:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'z': tok_path = optarg; break;
        case 'f': text_path = optarg; break;
        case 'D':
            if (!strcmp(optarg, "blank")) split_blank = 1;
            else if (!strcmp(optarg, "none")) split_blank = 0;
            else return cli_usage_error(cmd, "--docs: '%s' is not blank or none", optarg);
            break;
        case 'c': if (cli_int(cmd, "--ctx", optarg, 2, 1 << 22, &ctx)) return 2; break;
        case 'j': if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &threads)) return 2; break;
        case 'B': if (cli_int(cmd, "--batch", optarg, 1, 4096, &batch)) return 2; break;
        case 'h': fputs(ppl_help, stdout); return 0;
        default: {
            int r = cli_adapt_opt(&ad, cmd, c, optarg);
            if (r < 0) return 2;
            if (r == 0) return cli_usage_error(cmd, "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_path || !text_path) return cli_usage_error(cmd, "give -m MODEL and -f TEXT");

    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_pool *pool = NULL;
    t2_state *st = NULL;
    char *text = NULL;
    int *toks = NULL;
    float *logits = NULL;
    size_t len = 0;
    if (t2_model_load(&m, model_path) < 0 || t2_model_load_tokenizer(&tok, m, tok_path) < 0 ||
        cli_read_text(text_path, &text, &len) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    const int V = m->cfg.vocab_size;
    if (!ctx || ctx > m->cfg.seq_len) ctx = m->cfg.seq_len;
    if (batch > ctx) batch = ctx;
    int prc = t2_pool_new(&pool, threads);
    toks = malloc((len + 3) * sizeof *toks);
    logits = malloc((size_t)batch * V * sizeof *logits);
    if (prc < 0 || !toks || !logits) {
        t2_err_set(T2_ENOMEM, "out of memory");
        rc = cli_fail(cmd);
        goto out;
    }
    if (t2_state_new(&st, m, batch, ctx) < 0 || cli_adapt_setup(&ad, m, pool) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    t2_state_set_adapt(st, ad.adapt);
    double nll = 0, t0 = t2_now();
    long long n_pred = 0, n_docs = 0, n_run = 0;
    char *doc = text;
    while (doc && *doc) {
        char *end = split_blank ? strstr(doc, "\n\n") : NULL;
        if (end) *end = 0;
        while (*doc == '\n') doc++;
        if (*doc) {
            int n;
            if (t2_tok_encode(tok, doc, 1, 0, toks, (int)len + 3, &n) < 0) {
                rc = cli_fail(cmd);
                goto out;
            }
            n_docs++;
            /* windows [s, s + ctx) overlapping by one token */
            for (int s = 0; s < n - 1; s += ctx - 1) {
                int wn = n - s < ctx ? n - s : ctx;
                for (int b = 0; b < wn; b += batch) {
                    int bn = wn - b < batch ? wn - b : batch;
                    if (t2_forward(st, pool, toks + s + b, bn, b, logits) < 0) {
                        rc = cli_fail(cmd);
                        goto out;
                    }
                    n_run += bn;
                    for (int i = 0; i < bn; i++) {
                        int target_idx = s + b + i + 1;
                        if (b + i + 1 >= wn) break; /* last token of the window: no target */
                        float *row = logits + (size_t)i * V;
                        float mx = row[0];
                        for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
                        double sum = 0;
                        for (int v = 0; v < V; v++) sum += exp((double)row[v] - mx);
                        nll += log(sum) + mx - row[toks[target_idx]];
                        n_pred++;
                    }
                }
            }
        }
        doc = end ? end + 2 : NULL;
    }
    double dt = t2_now() - t0;
    if (!n_pred) {
        t2_err_set(T2_EINVAL, "%s: no text to score", text_path);
        rc = cli_fail(cmd);
        goto out;
    }
    printf("perplexity %.4f (mean NLL %.4f nats/token) over %lld predicted tokens in %lld "
           "documents\n", exp(nll / n_pred), nll / n_pred, n_pred, n_docs);
    fprintf(stderr, "%.2f s, %.1f tokens/s (batch %d, %d threads)\n", dt, n_run / dt, batch,
            threads);
    rc = 0;
out:
    free(text);
    free(toks);
    free(logits);
    t2_state_destroy(&st);
    cli_adapt_free(&ad);
    t2_pool_destroy(&pool);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc;
}

static const char logits_help[] =
    "usage: t2 logits -m MODEL (--tokens ID,ID,... | -p PROMPT [-z TOKENIZER]) -o OUT.f32\n"
    "                 [--mode batch|step] [-j THREADS]\n\n"
    "Write the logits after each token as raw little-endian float32, n_tokens x vocab.\n"
    "  --mode batch   the tokens as one prompt batch (matrix-matrix path; default)\n"
    "  --mode step    one token at a time (matrix-vector path)\n"
    "With -p the prompt is encoded with BOS first.\n"
    CLI_ADAPT_HELP;

int t2_cmd_logits(int argc, char **argv) {
    const char *cmd = "logits", *model_path = NULL, *tok_path = NULL, *prompt = NULL;
    const char *list = NULL, *out_path = NULL;
    int threads = t2_nproc(), step_mode = 0, rc = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"tokenizer", required_argument, 0, 'z'},
        {"prompt", required_argument, 0, 'p'}, {"tokens", required_argument, 0, 'T'},
        {"output", required_argument, 0, 'o'}, {"mode", required_argument, 0, 'M'},
        {"threads", required_argument, 0, 'j'}, {"help", no_argument, 0, 'h'},
        CLI_ADAPT_OPTIONS,                     {0, 0, 0, 0}};
    cli_adapt ad = {.mode = T2_APPLY_MERGED};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:p:o:j:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'z': tok_path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'T': list = optarg; break;
        case 'o': out_path = optarg; break;
        case 'M':
            if (!strcmp(optarg, "batch")) step_mode = 0;
            else if (!strcmp(optarg, "step")) step_mode = 1;
            else return cli_usage_error(cmd, "--mode: '%s' is not batch or step", optarg);
            break;
        case 'j': if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &threads)) return 2; break;
        case 'h': fputs(logits_help, stdout); return 0;
        default: {
            int r = cli_adapt_opt(&ad, cmd, c, optarg);
            if (r < 0) return 2;
            if (r == 0) return cli_usage_error(cmd, "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_path || !out_path || (!list == !prompt))
        return cli_usage_error(cmd, "give -m MODEL, -o OUT and one of --tokens or -p");

    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_pool *pool = NULL;
    t2_state *st = NULL;
    int *toks = NULL, n = 0;
    float *logits = NULL;
    FILE *f = NULL;
    if (t2_model_load(&m, model_path) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    const int V = m->cfg.vocab_size;
    if (list) {
        size_t cap = strlen(list) / 2 + 2;
        toks = malloc(cap * sizeof *toks);
        if (!toks) goto oom;
        for (const char *p = list; *p;) {
            char *end;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < 0 || v >= V) {
                rc = cli_usage_error(cmd, "--tokens: bad token id at '%.20s' (ids are 0..%d)", p,
                                     V - 1);
                goto out;
            }
            toks[n++] = (int)v;
            p = end;
            if (*p == ',') p++;
            else if (*p) {
                rc = cli_usage_error(cmd, "--tokens: expected ',' at '%.20s'", p);
                goto out;
            }
            if ((size_t)n >= cap) break;
        }
    } else {
        size_t cap = strlen(prompt) + 3;
        toks = malloc(cap * sizeof *toks);
        if (!toks) goto oom;
        if (t2_model_load_tokenizer(&tok, m, tok_path) < 0 ||
            t2_tok_encode(tok, prompt, 1, 0, toks, (int)cap, &n) < 0) {
            rc = cli_fail(cmd);
            goto out;
        }
    }
    if (n == 0 || n > m->cfg.seq_len) {
        rc = cli_usage_error(cmd, "%d tokens: need 1..%d (the model's context)", n, m->cfg.seq_len);
        goto out;
    }
    int prc = t2_pool_new(&pool, threads);
    logits = malloc((size_t)n * V * sizeof *logits);
    if (prc < 0 || !logits) goto oom;
    if (t2_state_new(&st, m, step_mode ? 1 : n, n) < 0 || cli_adapt_setup(&ad, m, pool) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    t2_state_set_adapt(st, ad.adapt);
    if (step_mode) {
        for (int i = 0; i < n; i++) {
            if (t2_forward(st, pool, toks + i, 1, i, NULL) < 0) {
                rc = cli_fail(cmd);
                goto out;
            }
            memcpy(logits + (size_t)i * V, t2_state_logits(st), (size_t)V * sizeof(float));
        }
    } else if (t2_forward(st, pool, toks, n, 0, logits) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    f = fopen(out_path, "wb");
    if (!f || fwrite(logits, sizeof(float), (size_t)n * V, f) != (size_t)n * V || fclose(f)) {
        f = NULL;
        t2_err_set(T2_EIO, "%s: cannot write: %s", out_path, strerror(errno));
        rc = cli_fail(cmd);
        goto out;
    }
    f = NULL;
    rc = 0;
    goto out;
oom:
    t2_err_set(T2_ENOMEM, "out of memory");
    rc = cli_fail(cmd);
out:
    if (f) fclose(f);
    free(toks);
    free(logits);
    t2_state_destroy(&st);
    cli_adapt_free(&ad);
    t2_pool_destroy(&pool);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc;
}
