/* t2 - the T2 command line. `t2 --help` lists the sub-commands; `t2 CMD --help` explains one. */
#include "cli.h"

#include "base/json.h"
#include "base/platform.h"
#include "base/t2_err.h"
#include "base/t2_log.h"
#include "engine/kvcache.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"run", t2_cmd_run, "generate text from a prompt"},
    {"chat", t2_cmd_chat, "chat with a model, or render its chat template (--render-only)"},
    {"perplexity", t2_cmd_perplexity, "perplexity of a model on a text file"},
    {"convert", t2_cmd_convert, "convert a llama2.c checkpoint (or a GGUF) to GGUF"},
    {"init", t2_cmd_init, "write a Llama GGUF with random weights of a given shape"},
    {"decompose", t2_cmd_decompose, "SVD factors of a model's weight matrices (for SVF)"},
    {"expert", t2_cmd_expert, "create or inspect SVF expert files"},
    {"tasks", t2_cmd_tasks, "task families: list, show, dump training text, score, check-real"},
    {"eval", t2_cmd_eval, "accuracy on task families (batched generation, scorers, CSV)"},
    {"adapt", t2_cmd_adapt, "few-shot task profile: CEM search of expert mixing weights (MPI)"},
    {"svf", t2_cmd_svf, "train an SVF expert (or a LoRA) on a task family by REINFORCE"},
    {"train", t2_cmd_train, "train a model's weights on a text file (data-parallel with mpirun)"},
    {"tokenize", t2_cmd_tokenize, "print the token ids of a text (either tokenizer kind)"},
    {"logits", t2_cmd_logits, "write the logits of a token sequence (for parity tests)"},
    {"submit", t2_cmd_submit, "send prompts to a running deployment (router, workers)"},
    {"keygen", t2_cmd_keygen, "CurveZMQ key pairs for a secured deployment"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: t2 COMMAND [OPTIONS]\n\n"
               "T2: Transformer-squared (self-adaptive LLMs) as a distributed system in C.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`t2 COMMAND --help` describes a command's options.\n"
               "Environment: T2_LOG_LEVEL=error|warn|info|debug (default warn).\n");
}

int main(int argc, char **argv) {
    t2_blas_autoselect(argv);
    t2_log_set_role("t2", -1);
    const char *lvl = getenv("T2_LOG_LEVEL");
    if (lvl && t2_log_set_level_str(lvl) < 0) fprintf(stderr, "t2: %s\n", t2_err_msg());
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        puts("t2 0.1.0");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "t2: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) {
        fprintf(stderr, "t2 %s: %s: '%s' is not an integer\n", cmd, opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "t2 %s: %s: %ld is out of range (%ld..%ld)\n", cmd, opt, v, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_kv_type(const char *cmd, const char *s, int *out) {
    t2_dtype t;
    if (t2_kv_type_parse(s, &t) < 0) {
        fprintf(stderr, "t2 %s: --kv-type: '%s' is not f16, q8_0 or f32\n", cmd, s);
        return -1;
    }
    *out = (int)t;
    return 0;
}

int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "t2 %s: %s: '%s' is not a non-negative integer\n", cmd, opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        fprintf(stderr, "t2 %s: %s: '%s' is not a number\n", cmd, opt, s);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "t2 %s: %s: %g is out of range [%g, %g]\n", cmd, opt, v, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

int cli_read_text(const char *path, char **out, size_t *len) {
    size_t n;
    int rc = t2_read_file(path, (size_t)1 << 30, out, &n);
    if (rc < 0) return rc;
    if (strlen(*out) != n) {
        free(*out);
        *out = NULL;
        return t2_err_set(T2_EFORMAT, "%s: contains a NUL byte: not a text file", path);
    }
    if (len) *len = n;
    return 0;
}

int cli_fail(const char *cmd) {
    fprintf(stderr, "t2 %s: %s\n", cmd, t2_err_msg());
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "t2 %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see t2 %s --help)\n", cmd);
    return 2;
}
