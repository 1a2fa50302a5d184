/* t2 run: generate text from a prompt, llama2.c style (prints the prompt and the continuation;
 * prompt and generation speed on stderr). */
#include "cli.h"

#include "adapt_opts.h"

#include "engine/kernels.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "base/platform.h"
#include "engine/sampler.h"
#include "base/t2_err.h"
#include "engine/tokenizer.h"
#include "engine/transformer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char run_help[] =
    "usage: t2 run -m MODEL [-z TOKENIZER] [-p PROMPT] [-n STEPS] [-t TEMP] [--top-p P]\n"
    "              [-s SEED] [-j THREADS] [--batch N] [-c CTX] [--kv-type f16|q8_0|f32]\n\n"
    "Generate text. MODEL is a GGUF file or a llama2.c checkpoint (.bin).\n\n"
    "  -m, --model MODEL      model file\n"
    "  -z, --tokenizer FILE   llama2.c tokenizer.bin (default: the one embedded in a GGUF)\n"
    "  -p, --prompt TEXT      prompt (default: none, generation starts from BOS)\n"
    "  -n, --steps N          sequence length including the prompt, as llama2.c (default 256,\n"
    "                         at most the context)\n"
    "  -c, --ctx N            context (default: the model's, at most 8192)\n"
    "      --kv-type T        KV cache type: f16 (default), q8_0 or f32\n"
    "  -t, --temperature T    0 = greedy (default 1.0)\n"
    "      --top-p P          nucleus sampling threshold in [0, 1]; 0 or 1 = off (default 0.9)\n"
    "  -s, --seed N           random seed (default: time)\n"
    "  -j, --threads N        threads (default: online CPUs)\n"
    "      --batch N          prompt tokens per forward batch (default 128)\n"
    "      --chat[=TEMPLATE]  the prompt as one user message in the chat template (a file, a\n"
    "                         tokenizer_config.json or a name; default: the GGUF's)\n"
    CLI_ADAPT_HELP
    "\nThe text goes to stdout; speed (prompt and generation tokens/s) to stderr.\n";

typedef struct {
    const char *model_path, *tok_path, *prompt;
    const char *chat; /* --chat[=TEMPLATE]: "" = the GGUF's template; NULL: no chat */
    char *chat_text;  /* the rendered prompt (owned) */
    int steps, threads, batch, ctx, kv_type;
    float temp, top_p;
    uint64_t seed;
    cli_adapt ad;
} run_opts;

typedef struct {
    t2_model *m;
    t2_tokenizer *tok;
    t2_pool *pool;
    t2_state *st;
    t2_sampler *smp;
    int *tokens; /* the prompt's */
    int n_prompt;
} run_state;

static const struct option run_long_opts[] = {
    {"model", required_argument, 0, 'm'},     {"tokenizer", required_argument, 0, 'z'},
    {"prompt", required_argument, 0, 'p'},    {"steps", required_argument, 0, 'n'},
    {"temperature", required_argument, 0, 't'}, {"top-p", required_argument, 0, 'P'},
    {"seed", required_argument, 0, 's'},      {"threads", required_argument, 0, 'j'},
    {"batch", required_argument, 0, 'B'},     {"help", no_argument, 0, 'h'},
    {"chat", optional_argument, 0, 'C'},      {"ctx", required_argument, 0, 'c'},
    {"kv-type", required_argument, 0, 'K'},   CLI_ADAPT_OPTIONS,
    {0, 0, 0, 0}};

/* The command line into o: -1 to go on, else the exit status (0 after --help, 2 after the
 * message). */
static int run_parse(int argc, char **argv, run_opts *o) {
    const char *cmd = "run";
    *o = (run_opts){.prompt = "", .steps = 256, .threads = t2_nproc(), .batch = 128,
                    .temp = 1.0f, .top_p = 0.9f, .seed = (uint64_t)time(NULL),
                    .ad = {.mode = T2_APPLY_MERGED}, .kv_type = T2_F16};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:p:n:t:s:j:c:h", run_long_opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'z': o->tok_path = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'n': if (cli_int(cmd, "-n", optarg, 1, 1 << 22, &o->steps)) return 2; break;
        case 't': if (cli_float(cmd, "-t", optarg, 0, 100, &o->temp)) return 2; break;
        case 'P': if (cli_float(cmd, "--top-p", optarg, 0, 1, &o->top_p)) return 2; break;
        case 's': if (cli_u64(cmd, "-s", optarg, &o->seed)) return 2; break;
        case 'j':
            if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &o->threads)) return 2;
            break;
        case 'B': if (cli_int(cmd, "--batch", optarg, 1, 4096, &o->batch)) return 2; break;
        case 'C': o->chat = optarg ? optarg : ""; break;
        case 'c': if (cli_int(cmd, "-c", optarg, 1, 1 << 22, &o->ctx)) return 2; break;
        case 'K': if (cli_kv_type(cmd, optarg, &o->kv_type)) return 2; break;
        case 'h': fputs(run_help, stdout); return 0;
        default: {
            int r = cli_adapt_opt(&o->ad, cmd, c, optarg);
            if (r < 0) return 2;
            if (r == 0) return cli_usage_error(cmd, "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->model_path) return cli_usage_error(cmd, "no model: give -m MODEL");
    return -1;
}

/* The model, the prompt's tokens (at most -n steps), threads, sampler, state, adaptation. */
static int run_setup(run_opts *o, run_state *r) {
    int rc;
    if ((rc = t2_model_load(&r->m, o->model_path)) < 0 ||
        (rc = t2_model_load_tokenizer(&r->tok, r->m, o->tok_path)) < 0)
        return rc;
    /* --chat: the rendered conversation, whose special tokens (<|im_start|>, ...) are parsed */
    int chat_bos = 0;
    /* bos/eos texts for templates without their own: from the GGUF's tokenizer only */
    if (o->chat && (rc = cli_chat_prompt(r->m, o->tok_path ? NULL : r->tok,
                                         *o->chat ? o->chat : NULL, o->prompt, &o->chat_text,
                                         &chat_bos)) < 0)
        return rc;
    if (o->chat_text) o->prompt = o->chat_text;
    if ((rc = t2_kv_context(o->ctx, r->m->cfg.seq_len, &o->ctx)) < 0)
        return t2_err_prefix(rc, "-c %d", o->ctx);
    if (o->steps > o->ctx) o->steps = o->ctx;
    size_t plen = strlen(o->prompt);
    int max_tokens = (int)(plen + 3 < (size_t)o->steps ? plen + 3 : (size_t)o->steps) + 3;
    if (!(r->tokens = malloc((size_t)max_tokens * sizeof *r->tokens)))
        return t2_err_set(T2_ENOMEM, "out of memory");
    /* a chat prompt gets BOS only where the template writes it, as t2_chat_encode does */
    const unsigned flags = !o->chat ? T2_TOK_ADD_BOS
                                    : T2_TOK_PARSE_SPECIAL | (chat_bos ? T2_TOK_ADD_BOS : 0);
    if (t2_tok_encode_ex(r->tok, o->prompt, plen, flags, r->tokens, max_tokens,
                         &r->n_prompt) < 0)
        return t2_err_prefix(T2_ERANGE, "prompt does not fit in %d steps", o->steps);
    if (r->n_prompt > o->steps)
        return t2_err_set(T2_ERANGE, "the prompt is %d tokens, more than the %d steps (-n)",
                          r->n_prompt, o->steps);
    if (t2_pool_new(&r->pool, o->threads) < 0 ||
        t2_sampler_new(&r->smp, r->m->cfg.vocab_size, o->temp, o->top_p, o->seed) < 0)
        return t2_err_set(T2_ENOMEM, "out of memory");
    double ta = t2_now();
    if ((rc = t2_state_new_kv(&r->st, r->m, o->batch, o->steps, 0, r->m->cfg.n_layers,
                              (t2_dtype)o->kv_type, NULL)) < 0 ||
        (rc = cli_adapt_setup(&o->ad, r->m, r->pool)) < 0)
        return rc;
    t2_state_set_adapt(r->st, o->ad.adapt);
    char desc[512];
    fprintf(stderr, "t2 run: %s, %s weights, %s KV cache, %d threads, kernels %s, OpenBLAS %s, "
            "%s (%.3f s)\n", o->model_path, t2_dtype_name(t2_model_dtype(r->m)),
            t2_dtype_name((t2_dtype)o->kv_type), o->threads, t2_kern_level(),
            t2_blas_corename(), cli_adapt_describe(&o->ad, desc, sizeof desc), t2_now() - ta);
    return 0;
}

/* The prompt (printed as llama2.c does: each piece decoded after its predecessor) and its
 * continuation, then the speeds on stderr. */
static int run_generate(const run_opts *o, run_state *r) {
    for (int i = 1; i < r->n_prompt; i++) {
        size_t n;
        const char *s = t2_tok_piece_text(r->tok, r->tokens[i - 1], r->tokens[i], &n);
        fwrite(s, 1, n, stdout);
    }
    fflush(stdout);
    double t0 = t2_now();
    int rc = t2_forward(r->st, r->pool, r->tokens, r->n_prompt, 0, NULL);
    if (rc < 0) return rc;
    double t1 = t2_now();
    int token = r->tokens[r->n_prompt - 1], n_gen = 0;
    /* as llama2.c: steps - n_prompt + 1 sampled tokens; the last one is printed, not run */
    for (int pos = r->n_prompt; pos <= o->steps; pos++) {
        int next = t2_sample(r->smp, t2_state_logits(r->st));
        if (next == t2_tok_bos(r->tok) || next == t2_tok_eos(r->tok) ||
            next == t2_tok_eot(r->tok))
            break;
        size_t n;
        const char *s = t2_tok_piece_text(r->tok, token, next, &n);
        fwrite(s, 1, n, stdout);
        fflush(stdout);
        token = next;
        n_gen++;
        if (pos < o->steps && (rc = t2_forward(r->st, r->pool, &token, 1, pos, NULL)) < 0)
            return rc;
    }
    double t2 = t2_now();
    printf("\n");
    fflush(stdout); /* the text before the statistics, also when both go to one pipe */
    fprintf(stderr, "prompt: %d tokens in %.3f s, %.1f tok/s; generation: %d tokens in %.3f s, "
            "%.1f tok/s\n", r->n_prompt, t1 - t0, r->n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9),
            n_gen, t2 - t1, n_gen / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
    return 0;
}

int t2_cmd_run(int argc, char **argv) {
    run_opts o;
    run_state r = {0};
    int rc = run_parse(argc, argv, &o);
    if (rc < 0) rc = run_setup(&o, &r) < 0 || run_generate(&o, &r) < 0 ? cli_fail("run") : 0;
    free(r.tokens);
    free(o.chat_text);
    t2_state_destroy(&r.st);
    cli_adapt_free(&o.ad);
    t2_sampler_destroy(&r.smp);
    t2_pool_destroy(&r.pool);
    t2_tok_destroy(&r.tok);
    t2_model_destroy(&r.m);
    return rc;
}
