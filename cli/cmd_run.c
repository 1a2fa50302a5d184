/* t2 run: generate text from a prompt, llama2.c style (prints the prompt and the continuation;
 * prompt and generation speed on stderr). */
#include "cli.h"

#include "adapt_opts.h"

#include "engine/kernels.h"
#include "engine/model.h"
#include "base/platform.h"
#include "engine/sampler.h"
#include "base/t2_err.h"
#include "engine/tokenizer.h"
#include "engine/transformer.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char run_help[] =
    "usage: t2 run -m MODEL [-z TOKENIZER] [-p PROMPT] [-n STEPS] [-t TEMP] [--top-p P]\n"
    "              [-s SEED] [-j THREADS] [--batch N]\n\n"
    "Generate text. MODEL is a GGUF file or a llama2.c checkpoint (.bin).\n\n"
    "  -m, --model MODEL      model file\n"
    "  -z, --tokenizer FILE   llama2.c tokenizer.bin (default: the one embedded in a GGUF)\n"
    "  -p, --prompt TEXT      prompt (default: none, generation starts from BOS)\n"
    "  -n, --steps N          sequence length including the prompt, as llama2.c (default 256,\n"
    "                         at most the model's context)\n"
    "  -t, --temperature T    0 = greedy (default 1.0)\n"
    "      --top-p P          nucleus sampling threshold in [0, 1]; 0 or 1 = off (default 0.9)\n"
    "  -s, --seed N           random seed (default: time)\n"
    "  -j, --threads N        threads (default: online CPUs)\n"
    "      --batch N          prompt tokens per forward batch (default 128)\n"
    "      --chat[=TEMPLATE]  the prompt as one user message in the chat template (a file, a\n"
    "                         tokenizer_config.json or a name; default: the GGUF's)\n"
    CLI_ADAPT_HELP
    "\nThe text goes to stdout; speed (prompt and generation tokens/s) to stderr.\n";

/* Print a decoded piece. A lone control byte other than whitespace is dropped, as llama2.c does;
 * unlike llama2.c, bytes >= 0x80 are kept, so byte-fallback pieces reassemble into UTF-8. */
static void print_piece(const char *s, size_t n) {
    if (n == 1) {
        unsigned char c = (unsigned char)s[0];
        if (c < 0x80 && !isprint(c) && !isspace(c)) return;
    }
    fwrite(s, 1, n, stdout);
}

int t2_cmd_run(int argc, char **argv) {
    const char *cmd = "run", *model_path = NULL, *tok_path = NULL, *prompt = "", *chat = NULL;
    char *chat_text = NULL;
    int steps = 256, threads = t2_nproc(), batch = 128, rc = 1;
    float temp = 1.0f, top_p = 0.9f;
    uint64_t seed = (uint64_t)time(NULL);
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"tokenizer", required_argument, 0, 'z'},
        {"prompt", required_argument, 0, 'p'},    {"steps", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, 't'}, {"top-p", required_argument, 0, 'P'},
        {"seed", required_argument, 0, 's'},      {"threads", required_argument, 0, 'j'},
        {"batch", required_argument, 0, 'B'},     {"help", no_argument, 0, 'h'},
        {"chat", optional_argument, 0, 'C'},
        CLI_ADAPT_OPTIONS,                        {0, 0, 0, 0}};
    cli_adapt ad = {.mode = T2_APPLY_MERGED};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:p:n:t:s:j:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'z': tok_path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': if (cli_int(cmd, "-n", optarg, 1, 1 << 22, &steps)) return 2; break;
        case 't': if (cli_float(cmd, "-t", optarg, 0, 100, &temp)) return 2; break;
        case 'P': if (cli_float(cmd, "--top-p", optarg, 0, 1, &top_p)) return 2; break;
        case 's': if (cli_u64(cmd, "-s", optarg, &seed)) return 2; break;
        case 'j': if (cli_int(cmd, "-j", optarg, 1, 256, &threads)) return 2; break;
        case 'B': if (cli_int(cmd, "--batch", optarg, 1, 4096, &batch)) return 2; break;
        case 'C': chat = optarg ? optarg : ""; break;
        case 'h': fputs(run_help, stdout); return 0;
        default: {
            int r = cli_adapt_opt(&ad, cmd, c, optarg);
            if (r < 0) return 2;
            if (r == 0) return cli_usage_error(cmd, "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_path) return cli_usage_error(cmd, "no model: give -m MODEL");

    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_pool *pool = NULL;
    t2_state *st = NULL;
    t2_sampler *smp = NULL;
    int *tokens = NULL;
    if (t2_model_load(&m, model_path) < 0 || t2_model_load_tokenizer(&tok, m, tok_path) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    if (chat && cli_chat_prompt(m, *chat ? chat : NULL, prompt, &chat_text) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    if (chat_text) prompt = chat_text;
    if (steps > m->cfg.seq_len) steps = m->cfg.seq_len;
    size_t plen = strlen(prompt);
    int max_tokens = (int)(plen + 3 < (size_t)steps ? plen + 3 : (size_t)steps) + 3;
    int n_prompt = 0;
    tokens = malloc((size_t)max_tokens * sizeof *tokens);
    if (!tokens) {
        t2_err_set(T2_ENOMEM, "out of memory");
        rc = cli_fail(cmd);
        goto out;
    }
    if (t2_tok_encode(tok, prompt, 1, 0, tokens, max_tokens, &n_prompt) < 0) {
        t2_err_prefix(T2_ERANGE, "prompt does not fit in %d steps", steps);
        rc = cli_fail(cmd);
        goto out;
    }
    if (n_prompt > steps) {
        t2_err_set(T2_ERANGE, "the prompt is %d tokens, more than the %d steps (-n)", n_prompt,
                   steps);
        rc = cli_fail(cmd);
        goto out;
    }
    pool = t2_pool_new(threads);
    smp = t2_sampler_new(m->cfg.vocab_size, temp, top_p, seed);
    if (!pool || !smp) {
        t2_err_set(T2_ENOMEM, "out of memory");
        rc = cli_fail(cmd);
        goto out;
    }
    double ta = t2_now();
    if (t2_state_new(&st, m, batch, steps) < 0 || cli_adapt_setup(&ad, m, pool) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    t2_state_set_adapt(st, ad.adapt);
    char desc[512];
    fprintf(stderr, "t2 run: %s, %s weights, %d threads, kernels %s, OpenBLAS %s, %s (%.3f s)\n",
            model_path, t2_dtype_name(t2_model_dtype(m)), threads, t2_kern_level(),
            t2_blas_corename(), cli_adapt_describe(&ad, desc, sizeof desc), t2_now() - ta);

    /* the prompt, printed as llama2.c does (each piece decoded after its predecessor) */
    for (int i = 1; i < n_prompt; i++) {
        size_t n;
        const char *s = t2_tok_decode(tok, tokens[i - 1], tokens[i], &n);
        print_piece(s, n);
    }
    fflush(stdout);
    double t0 = t2_now();
    if (t2_forward(st, pool, tokens, n_prompt, 0, NULL) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    double t1 = t2_now();
    int token = tokens[n_prompt - 1], n_gen = 0;
    /* as llama2.c: steps - n_prompt + 1 sampled tokens; the last one is printed, not run */
    for (int pos = n_prompt; pos <= steps; pos++) {
        int next = t2_sample(smp, t2_state_logits(st));
        if (next == t2_tok_bos(tok) || next == t2_tok_eos(tok)) break;
        size_t n;
        const char *s = t2_tok_decode(tok, token, next, &n);
        print_piece(s, n);
        fflush(stdout);
        token = next;
        n_gen++;
        if (pos < steps && t2_forward(st, pool, &token, 1, pos, NULL) < 0) {
            rc = cli_fail(cmd);
            goto out;
        }
    }
    double t2 = t2_now();
    printf("\n");
    fflush(stdout); /* the text before the statistics, also when both go to one pipe */
    fprintf(stderr, "prompt: %d tokens in %.3f s, %.1f tok/s; generation: %d tokens in %.3f s, "
            "%.1f tok/s\n", n_prompt, t1 - t0, n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen,
            t2 - t1, n_gen / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
    rc = 0;
out:
    free(chat_text);
    free(tokens);
    t2_state_destroy(&st);
    cli_adapt_free(&ad);
    t2_sampler_destroy(&smp);
    t2_pool_destroy(&pool);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc;
}
