/* t2 train: full-weight training of a Llama model on a text file, data-parallel over MPI ranks.
 *
 *   mpirun -np 2 t2 train -f data.txt --dim 64 --hidden 176 --layers 4 --heads 4 -o m.gguf
 *
 * Every rank tokenises the whole file (the same stream everywhere), draws the same random
 * windows for the global batch and takes its contiguous share of them; gradients are summed
 * with MPI_Allreduce. The loss is normalised by the GLOBAL token count, so any number of ranks
 * gives the same loss curve (up to float summation order). Rank 0 writes the progress, the CSV
 * log, the SVG plot, the checkpoints and the output model. Without mpirun the process is a
 * singleton MPI job of one rank.
 */
#include "cli.h"

#include "engine/model.h"
#include "base/platform.h"
#include "base/rng.h"
#include "base/t2_err.h"
#include "engine/tokenizer.h"
#include "train/train.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char train_help[] =
    "usage: t2 train -f TEXT -o OUT.gguf (-m MODEL | --dim D --hidden F --layers L --heads H\n"
    "                [--kv-heads K] [--vocab V] [--ctx N] [--tied] [--init-seed N]) [options]\n"
    "       mpirun -np P t2 train ...      (data-parallel over P ranks)\n\n"
    "Train every weight of a Llama model with AdamW on the text of a file (next-token\n"
    "cross-entropy). Each step takes a global batch of random windows of T+1 tokens from the\n"
    "tokenised file; with P ranks each takes batch/P of them and the gradients are summed.\n\n"
    "data:\n"
    "  -f, --file TEXT        training text\n"
    "      --docs blank|lines|none  documents are blank-line-separated paragraphs (default),\n"
    "                         single lines, or the whole file; each is encoded with BOS first\n"
    "  -z, --tokenizer FILE   llama2.c tokenizer.bin (default: the model's embedded one, else a\n"
    "                         byte-level tokenizer: 3 specials + 256 bytes, embedded in OUT)\n"
    "model (either -m, or the shape of a new random model as in `t2 init`):\n"
    "  -m, --model FILE       start from this model (GGUF or llama2.c, any type)\n"
    "      --dim, --hidden, --layers, --heads, --kv-heads (default heads), --vocab (default:\n"
    "                         the tokenizer's; 259 for bytes), --ctx (context, default T),\n"
    "                         --tied (share classifier and embedding), --init-seed N\n"
    "training:\n"
    "  -n, --steps N          optimiser steps (default 100)\n"
    "  -b, --batch N          global batch in sequences (default 8; at least the rank count)\n"
    "      --micro-batch N    sequences per forward on a rank (default: its whole share)\n"
    "  -T, --seq-len N        tokens per sequence (default min(64, context))\n"
    "      --lr X             peak learning rate (default 1e-3)\n"
    "      --min-lr X         final learning rate of the cosine schedule (default lr/10)\n"
    "      --warmup N         linear warmup steps (default 0)\n"
    "      --wd X             AdamW weight decay on matrices (default 0.1)\n"
    "      --beta1 X, --beta2 X, --eps X   AdamW (default 0.9, 0.95, 1e-8)\n"
    "      --clip X           global gradient-norm clip, 0 = off (default 1.0)\n"
    "  -s, --seed N           data order seed (default 1)\n"
    "  -j, --threads N        threads per rank (default: CPUs / ranks)\n"
    "checkpoints:\n"
    "      --ckpt FILE        checkpoint file (written atomically)\n"
    "      --ckpt-every N     write it every N steps (default: only at the end)\n"
    "      --resume           continue from --ckpt if it exists (same data, seed and options)\n"
    "output:\n"
    "  -o, --output OUT.gguf  the trained model (with its tokenizer)\n"
    "      --type T           f32 (default), f16, bf16 or q8_0\n"
    "      --csv FILE         per-step log step,loss,lr,grad_norm,tokens_per_s,elapsed\n"
    "                         (default OUT.csv)\n"
    "      --svg FILE         loss curve plot (default OUT.svg)\n"
    "      --log-every N      progress lines when stderr is not a terminal (default steps/50)\n"
    "\nCtrl-C (SIGINT/SIGTERM) finishes the current step, writes the checkpoint and stops.\n";

/* ------------------------------------------------------------------------------------------ */
/* data                                                                                        */

/* Tokenise documents (mode 'b' blank-line paragraphs, 'l' lines, 'n' whole file) into one
 * stream, each document BOS-first. */
static int tokenize_docs(const t2_tokenizer *tok, char *text, int mode, int **out, size_t *n_out,
                         int *n_docs) {
    size_t cap = 1024, n = 0;
    int *toks = malloc(cap * sizeof(int));
    int *tmp = NULL, rc = 0;
    *n_docs = 0;
    char *doc = text;
    while (toks && *doc) {
        char *end = NULL;
        size_t skip = 0;
        if (mode == 'b') end = strstr(doc, "\n\n"), skip = 2;
        if (mode == 'l') end = strchr(doc, '\n'), skip = 1;
        if (end) *end = 0;
        const char *s = doc;
        while (*s == '\n' || *s == '\r') s++;
        if (*s) {
            size_t len = strlen(s);
            int m = 0;
            free(tmp);
            tmp = malloc((len + 3) * sizeof(int));
            if (!tmp || (rc = t2_tok_encode(tok, s, 1, 0, tmp, (int)(len + 3), &m)) < 0) break;
            if (n + (size_t)m > cap) {
                while (n + (size_t)m > cap) cap *= 2;
                int *nt = realloc(toks, cap * sizeof(int));
                if (!nt) break;
                toks = nt;
            }
            memcpy(toks + n, tmp, (size_t)m * sizeof(int));
            n += (size_t)m;
            ++*n_docs;
        }
        if (!end) break;
        doc = end + skip;
        while (mode == 'b' && *doc == '\n') doc++;
    }
    int ok = toks && tmp && !rc;
    free(tmp);
    if (!ok && rc == 0) rc = t2_err_set(T2_ENOMEM, "out of memory tokenising the data");
    if (rc < 0) {
        free(toks);
        return rc;
    }
    *out = toks;
    *n_out = n;
    return 0;
}

/* A llama2.c-format byte-level vocabulary: <unk>, <s>, </s>, 256 byte pieces, then unused
 * pieces up to vocab (never produced from text). */
static int byte_tokenizer(t2_tokenizer **out, int vocab) {
    if (vocab < 259)
        return t2_err_set(T2_EINVAL, "the byte-level tokenizer needs a vocabulary of at least 259 "
                          "(got %d): give --vocab 259 or a tokenizer with -z", vocab);
    size_t cap = 4 + (size_t)vocab * 32, o = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return t2_err_set(T2_ENOMEM, "out of memory");
    uint32_t maxlen = 16;
    memcpy(buf, &maxlen, 4);
    o = 4;
    for (int i = 0; i < vocab; i++) {
        char piece[24];
        if (i == 0) snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1) snprintf(piece, sizeof piece, "\n<s>\n");
        else if (i == 2) snprintf(piece, sizeof piece, "\n</s>\n");
        else if (i < 259) snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else snprintf(piece, sizeof piece, "<unused%d>", i - 259);
        float score = 0.0f;
        int32_t len = (int32_t)strlen(piece);
        memcpy(buf + o, &score, 4);
        memcpy(buf + o + 4, &len, 4);
        memcpy(buf + o + 8, piece, (size_t)len);
        o += 8 + (size_t)len;
    }
    int rc = t2_tok_load_llama2c_mem(out, buf, o, vocab, "(byte tokenizer)");
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* logs                                                                                        */

typedef struct {
    int step;
    float loss, lr, grad_norm, tps;
    double elapsed;
} log_row;

/* Rows of an earlier run's CSV up to and including step `upto`. */
static int csv_read(const char *path, int upto, log_row **rows, int *n) {
    *rows = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        log_row r;
        if (sscanf(line, "%d,%f,%f,%f,%f,%lf", &r.step, &r.loss, &r.lr, &r.grad_norm, &r.tps,
                   &r.elapsed) != 6 || r.step > upto)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            log_row *nr = realloc(*rows, (size_t)cap * sizeof **rows);
            if (!nr) break;
            *rows = nr;
        }
        (*rows)[(*n)++] = r;
    }
    fclose(f);
    return 0;
}

static void csv_row(FILE *f, const log_row *r) {
    fprintf(f, "%d,%.9g,%.9g,%.9g,%.1f,%.3f\n", r->step, (double)r->loss, (double)r->lr,
            (double)r->grad_norm, (double)r->tps, r->elapsed);
}

/* The loss curve as an SVG plot. */
static int write_svg(const char *path, const log_row *rows, int n, const char *title) {
    double *x = malloc((size_t)(n ? n : 1) * sizeof(double));
    double *y = malloc((size_t)(n ? n : 1) * sizeof(double));
    int rc;
    if (!x || !y) {
        rc = t2_err_set(T2_ENOMEM, "out of memory for the plot");
    } else {
        for (int i = 0; i < n; i++) x[i] = rows[i].step, y[i] = rows[i].loss;
        cli_series s = {"loss", "#1f77b4", x, y, n};
        rc = cli_plot_svg(path, title, "step", "loss", &s, 1);
    }
    free(x);
    free(y);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* 0 on every rank if rc is 0 on every rank, else 1 (so that ranks fail together). */
static int any_failed(int rc) {
    int bad = rc < 0, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any;
}

typedef struct {
    const char *data, *model, *tok, *out, *ckpt, *csv, *svg;
    int docs, steps, batch, micro, seq, warmup, ckpt_every, resume, log_every, threads;
    int stop_after, tied, type;
    t2_config cfg;
    uint64_t seed, init_seed;
    float lr, min_lr, wd, beta1, beta2, eps, clip;
} train_opts;

static const struct option train_long_opts[] = {
    {"file", required_argument, 0, 'f'},       {"docs", required_argument, 0, 'D'},
    {"tokenizer", required_argument, 0, 'z'},  {"model", required_argument, 0, 'm'},
    {"dim", required_argument, 0, 1},          {"hidden", required_argument, 0, 2},
    {"layers", required_argument, 0, 3},       {"heads", required_argument, 0, 4},
    {"kv-heads", required_argument, 0, 5},     {"vocab", required_argument, 0, 6},
    {"ctx", required_argument, 0, 7},          {"tied", no_argument, 0, 8},
    {"init-seed", required_argument, 0, 9},    {"steps", required_argument, 0, 'n'},
    {"batch", required_argument, 0, 'b'},      {"micro-batch", required_argument, 0, 10},
    {"seq-len", required_argument, 0, 'T'},    {"lr", required_argument, 0, 11},
    {"min-lr", required_argument, 0, 12},      {"warmup", required_argument, 0, 13},
    {"wd", required_argument, 0, 14},          {"beta1", required_argument, 0, 15},
    {"beta2", required_argument, 0, 16},       {"eps", required_argument, 0, 17},
    {"clip", required_argument, 0, 18},        {"seed", required_argument, 0, 's'},
    {"threads", required_argument, 0, 'j'},    {"ckpt", required_argument, 0, 19},
    {"ckpt-every", required_argument, 0, 20},  {"resume", no_argument, 0, 21},
    {"output", required_argument, 0, 'o'},     {"type", required_argument, 0, 22},
    {"csv", required_argument, 0, 23},         {"svg", required_argument, 0, 24},
    {"log-every", required_argument, 0, 25},   {"stop-after", required_argument, 0, 26},
    {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};

/* Option c (its value in optarg) into o: -1 to go on, else the exit status (0 after --help,
 * 2 for a bad value, the message printed). */
static int train_opt(train_opts *o, int c) {
    const char *cmd = "train";
    t2_dtype type = T2_F32;
    t2_config *g = &o->cfg;
    switch (c) {
    case 'f': o->data = optarg; break;
    case 'D':
        if (!strcmp(optarg, "blank")) o->docs = 'b';
        else if (!strcmp(optarg, "lines")) o->docs = 'l';
        else if (!strcmp(optarg, "none")) o->docs = 'n';
        else return cli_usage_error(cmd, "--docs: '%s' is not blank, lines or none", optarg);
        break;
    case 'z': o->tok = optarg; break;
    case 'm': o->model = optarg; break;
    case 1: if (cli_int(cmd, "--dim", optarg, 2, 1 << 16, &g->dim)) return 2; break;
    case 2: if (cli_int(cmd, "--hidden", optarg, 1, 1 << 18, &g->hidden_dim)) return 2; break;
    case 3: if (cli_int(cmd, "--layers", optarg, 1, 1024, &g->n_layers)) return 2; break;
    case 4: if (cli_int(cmd, "--heads", optarg, 1, 4096, &g->n_heads)) return 2; break;
    case 5: if (cli_int(cmd, "--kv-heads", optarg, 1, 4096, &g->n_kv_heads)) return 2; break;
    case 6: if (cli_int(cmd, "--vocab", optarg, 1, 1 << 20, &g->vocab_size)) return 2; break;
    case 7: if (cli_int(cmd, "--ctx", optarg, 1, 1 << 20, &g->seq_len)) return 2; break;
    case 8: o->tied = 1; break;
    case 9: if (cli_u64(cmd, "--init-seed", optarg, &o->init_seed)) return 2; break;
    case 'n': if (cli_int(cmd, "--steps", optarg, 1, 1 << 30, &o->steps)) return 2; break;
    case 'b': if (cli_int(cmd, "--batch", optarg, 1, 1 << 20, &o->batch)) return 2; break;
    case 10: if (cli_int(cmd, "--micro-batch", optarg, 1, 1 << 20, &o->micro)) return 2; break;
    case 'T': if (cli_int(cmd, "--seq-len", optarg, 1, 1 << 20, &o->seq)) return 2; break;
    case 11: if (cli_float(cmd, "--lr", optarg, 0, 10, &o->lr)) return 2; break;
    case 12: if (cli_float(cmd, "--min-lr", optarg, 0, 10, &o->min_lr)) return 2; break;
    case 13: if (cli_int(cmd, "--warmup", optarg, 0, 1 << 30, &o->warmup)) return 2; break;
    case 14: if (cli_float(cmd, "--wd", optarg, 0, 10, &o->wd)) return 2; break;
    case 15: if (cli_float(cmd, "--beta1", optarg, 0, 0.999999, &o->beta1)) return 2; break;
    case 16: if (cli_float(cmd, "--beta2", optarg, 0, 0.999999, &o->beta2)) return 2; break;
    case 17: if (cli_float(cmd, "--eps", optarg, 1e-30, 1, &o->eps)) return 2; break;
    case 18: if (cli_float(cmd, "--clip", optarg, 0, 1e9, &o->clip)) return 2; break;
    case 's': if (cli_u64(cmd, "--seed", optarg, &o->seed)) return 2; break;
    case 'j':
        if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &o->threads)) return 2;
        break;
    case 19: o->ckpt = optarg; break;
    case 20:
        if (cli_int(cmd, "--ckpt-every", optarg, 0, 1 << 30, &o->ckpt_every)) return 2;
        break;
    case 21: o->resume = 1; break;
    case 'o': o->out = optarg; break;
    case 22:
        if (t2_dtype_parse(optarg, &type) < 0) return cli_usage_error(cmd, "%s", t2_err_msg());
        o->type = type;
        break;
    case 23: o->csv = optarg; break;
    case 24: o->svg = optarg; break;
    case 25: if (cli_int(cmd, "--log-every", optarg, 1, 1 << 30, &o->log_every)) return 2; break;
    case 26:
        if (cli_int(cmd, "--stop-after", optarg, 1, 1 << 30, &o->stop_after)) return 2;
        break;
    case 'h': fputs(train_help, stdout); return 0;
    default: return cli_usage_error(cmd, "bad option");
    }
    return -1;
}

/* The command line into o: -1 to go on, else the exit status. */
static int train_parse(int argc, char **argv, train_opts *o) {
    const char *cmd = "train";
    *o = (train_opts){.docs = 'b', .steps = 100, .batch = 8, .lr = 1e-3f, .min_lr = -1,
                      .wd = 0.1f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .clip = 1.0f,
                      .seed = 1, .init_seed = 1, .type = T2_F32, .log_every = 0};
    int c, r;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:z:m:n:b:T:s:j:o:h", train_long_opts, NULL)) != -1)
        if ((r = train_opt(o, c)) >= 0) return r;
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->data) return cli_usage_error(cmd, "no training text: give -f TEXT");
    if (!o->out) return cli_usage_error(cmd, "no output: give -o OUT.gguf");
    const t2_config *g = &o->cfg;
    int shape = g->dim || g->hidden_dim || g->n_layers || g->n_heads || g->n_kv_heads ||
                g->seq_len || o->tied;
    if (o->model && shape)
        return cli_usage_error(cmd, "-m MODEL and a new model's shape (--dim ...) exclude each "
                               "other");
    if (!o->model && (!g->dim || !g->hidden_dim || !g->n_layers || !g->n_heads))
        return cli_usage_error(cmd, "give -m MODEL, or --dim, --hidden, --layers and --heads");
    if (o->resume && !o->ckpt) return cli_usage_error(cmd, "--resume needs --ckpt FILE");
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    return -1;
}

/* How the error a run returns is reported (by t2_cmd_train, the one place that does). */
enum { TRAIN_ERR_EXIT, TRAIN_ERR_ABORT, TRAIN_ERR_ABORT_RANK };

/* Everything a training run holds, from set-up to the output. */
typedef struct {
    train_opts *o;
    int rank, nranks, is_tty, log_every, how;
    t2_tokenizer *tok;
    t2_model *m; /* until the trainer holds the weights */
    t2_train *tr;
    t2_pool *pool;
    char *text, *csv_path, *svg_path;
    int *stream, *in, *tg; /* (n_tok) the data, (micro, T) a micro-batch */
    size_t n_tok;
    int n_docs;
    uint64_t *offs; /* (G) window offsets of a global batch */
    /* global batch G, this rank's sequences [share_lo, share_lo + share), micro-batch, T */
    int G, share_lo, share, micro, T;
    FILE *csv;
    log_row *rows;
    int n_rows;
    t2_ckpt_meta meta;
    int start, step, stopped;
    double t_run, elapsed0;
} train_run;

/* The model (loaded, or a shape for a new one) and its tokenizer. */
static int train_tokenizer(train_run *s) {
    train_opts *o = s->o;
    int rc;
    if (o->model) {
        if ((rc = t2_model_load(&s->m, o->model)) < 0) return rc;
        if (o->tok || (s->m->gguf && t2_gguf_find_key(s->m->gguf, "tokenizer.ggml.tokens") >= 0))
            rc = t2_model_load_tokenizer(&s->tok, s->m, o->tok);
        else
            rc = byte_tokenizer(&s->tok, s->m->cfg.vocab_size);
        if (rc < 0) return rc;
        o->cfg = s->m->cfg;
        o->tied = s->m->tied;
        return 0;
    }
    if (o->tok) {
        if (!o->cfg.vocab_size)
            return t2_err_set(T2_EINVAL, "give --vocab with -z (llama2.c tokenizer files do "
                              "not record their size)");
        rc = t2_tok_load_llama2c(&s->tok, o->tok, o->cfg.vocab_size);
    } else {
        if (!o->cfg.vocab_size) o->cfg.vocab_size = 259;
        rc = byte_tokenizer(&s->tok, o->cfg.vocab_size);
    }
    if (rc < 0) return rc;
    if (!o->cfg.n_kv_heads) o->cfg.n_kv_heads = o->cfg.n_heads;
    if (!o->cfg.seq_len) o->cfg.seq_len = o->seq ? o->seq : 64;
    return 0;
}

/* Set-up on every rank: tokenizer, data, the trainer of this rank's share, threads, buffers. */
static int train_setup(train_run *s) {
    train_opts *o = s->o;
    int rc;
    if ((rc = train_tokenizer(s)) < 0) return rc;
    if (!o->seq) o->seq = o->cfg.seq_len < 64 ? o->cfg.seq_len : 64;
    if (o->seq > o->cfg.seq_len)
        return t2_err_set(T2_EINVAL, "--seq-len %d exceeds the model's context %d", o->seq,
                          o->cfg.seq_len);
    if ((rc = cli_read_text(o->data, &s->text, NULL)) < 0) return rc;
    if ((rc = tokenize_docs(s->tok, s->text, o->docs, &s->stream, &s->n_tok, &s->n_docs)) < 0)
        return rc;
    if (s->n_tok < (size_t)o->seq + 1)
        return t2_err_set(T2_EINVAL, "%s: %zu tokens, too few for sequences of %d (+1) tokens",
                          o->data, s->n_tok, o->seq);
    s->G = o->batch;
    s->share_lo = (int)((int64_t)s->G * s->rank / s->nranks);
    s->share = (int)((int64_t)s->G * (s->rank + 1) / s->nranks) - s->share_lo;
    s->micro = o->micro && o->micro < s->share ? o->micro : s->share;
    s->T = o->seq;
    if (!s->m) {
        if ((rc = t2_model_init_random(&s->m, &o->cfg, o->tied, o->init_seed)) < 0) return rc;
        o->cfg = s->m->cfg;
    }
    /* the trainer keeps qwen2's biases fixed: right for SVF experts, wrong for t2 train */
    if (s->m->cfg.arch != T2_ARCH_LLAMA)
        return t2_err_set(T2_EUNSUPPORTED, "t2 train trains the weights of llama models; this "
                          "is %s (its experts can be trained with t2 svf)",
                          t2_arch_name(s->m->cfg.arch));
    if ((rc = t2_train_from_model(&s->tr, s->m, s->micro, s->T)) < 0) return rc;
    t2_model_destroy(&s->m);
    int threads = o->threads ? o->threads : t2_nproc() / s->nranks;
    int prc = t2_pool_new(&s->pool, threads < 1 ? 1 : threads);
    s->offs = malloc((size_t)s->G * sizeof *s->offs);
    s->in = malloc((size_t)s->micro * s->T * sizeof(int));
    s->tg = malloc((size_t)s->micro * s->T * sizeof(int));
    if (prc < 0 || !s->offs || !s->in || !s->tg) return t2_err_set(T2_ENOMEM, "out of memory");
    return 0;
}

/* Rank 0: the log (its rows before a resumed step kept) and what the run does. A log that
 * cannot be written stops every rank. */
static int train_log_open(train_run *s) {
    const train_opts *o = s->o;
    size_t ol = strlen(o->out);
    s->csv_path = malloc(ol + 8);
    s->svg_path = malloc(ol + 8);
    if (!s->csv_path || !s->svg_path) return 1;
    snprintf(s->csv_path, ol + 8, "%s.csv", o->out);
    snprintf(s->svg_path, ol + 8, "%s.svg", o->out);
    const char *csv_path = o->csv ? o->csv : s->csv_path;
    if (s->start > 0) csv_read(csv_path, s->start, &s->rows, &s->n_rows);
    if (!(s->csv = fopen(csv_path, "w"))) {
        s->how = TRAIN_ERR_ABORT;
        return t2_err_set(T2_EIO, "%s: cannot write: %s", csv_path, strerror(errno));
    }
    fprintf(s->csv, "step,loss,lr,grad_norm,tokens_per_s,elapsed\n");
    for (int i = 0; i < s->n_rows; i++) csv_row(s->csv, &s->rows[i]);
    fflush(s->csv);
    const t2_config *c = t2_train_config(s->tr);
    size_t np;
    t2_train_trainable(s->tr, &np);
    const int th = t2_pool_size(s->pool);
    fprintf(stderr, "t2 train: %zu parameters (dim %d, hidden %d, layers %d, heads %d/%d, "
            "vocab %d, context %d%s); data %s: %d documents, %zu tokens; %d rank%s x %d "
            "thread%s, batch %d x %d tokens (micro-batch %d)\n", np, c->dim, c->hidden_dim,
            c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len,
            t2_train_tied(s->tr) ? ", tied" : "", o->data, s->n_docs, s->n_tok, s->nranks,
            s->nranks > 1 ? "s" : "", th, th > 1 ? "s" : "", s->G, s->T, s->micro);
    return 0;
}

/* This rank's share of a global batch, forward and backward by micro-batches: its loss. */
static int train_grads(train_run *s, float norm, double *loss) {
    const int share = s->share, micro = s->micro, T = s->T;
    int rc = 0;
    *loss = 0;
    for (int b0 = 0; b0 < share && rc == 0; b0 += micro) {
        int nb = share - b0 < micro ? share - b0 : micro;
        for (int b = 0; b < nb; b++) {
            const int *src = s->stream + s->offs[s->share_lo + b0 + b];
            memcpy(s->in + (size_t)b * T, src, (size_t)T * sizeof(int));
            memcpy(s->tg + (size_t)b * T, src + 1, (size_t)T * sizeof(int));
        }
        float l = 0;
        if ((rc = t2_train_forward(s->tr, s->pool, s->in, s->tg, NULL, nb, T, norm, &l)) < 0 ||
            (rc = t2_train_backward(s->tr, s->pool)) < 0)
            break;
        *loss += l;
    }
    return rc;
}

/* Rank 0: the step's row in the log and its progress line. */
static void train_log_step(train_run *s, double loss, float lr, float gnorm, float tps,
                           double now) {
    const train_opts *o = s->o;
    const int step = s->step;
    log_row r = {step, (float)loss, lr, gnorm, tps, s->meta.elapsed};
    csv_row(s->csv, &r);
    fflush(s->csv);
    log_row *nr = s->n_rows % 256 == 0
                      ? realloc(s->rows, (size_t)(s->n_rows + 256) * sizeof *s->rows)
                      : s->rows;
    if (nr) {
        s->rows = nr;
        s->rows[s->n_rows++] = r;
    }
    char eta[32];
    double per = (now - s->t_run) / (step - s->start);
    cli_fmt_time(eta, sizeof eta, per * (o->steps - step));
    if (s->is_tty) {
        fprintf(stderr, "\r\033[Kstep %d/%d  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  "
                "ETA %s", step, o->steps, loss, (double)lr, (double)gnorm,
                (double)r.tps, eta);
        if (step == o->steps) fputc('\n', stderr);
    } else if (step % s->log_every == 0 || step == o->steps || step == s->start + 1) {
        fprintf(stderr, "t2 train: step %d/%d loss %.4f lr %.2e grad_norm %.3f "
                "%.0f tok/s ETA %s\n", step, o->steps, loss, (double)lr,
                (double)gnorm, (double)r.tps, eta);
    }
}

/* One step: the same global batch on every rank (G window offsets), gradients summed over the
 * ranks, clip, update, log, and the checkpoint when due. */
static int train_step(train_run *s, const t2_adamw_opts *ao, const t2_lr_sched *sched) {
    const train_opts *o = s->o;
    double t0 = t2_now(), loss;
    const float norm = (float)s->G * s->T;
    int rc;
    for (int i = 0; i < s->G; i++)
        s->offs[i] = t2_xorshift64s(&s->meta.rng[0]) % (s->n_tok - (size_t)s->T);
    t2_train_zero_grad(s->tr);
    if ((rc = train_grads(s, norm, &loss)) < 0) {
        s->how = TRAIN_ERR_ABORT_RANK;
        return rc;
    }
    double red[2] = {loss, g_stop ? 1.0 : 0.0}, sum[2];
    MPI_Allreduce(red, sum, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    size_t ng;
    float *grads = t2_train_grads_buf(s->tr, &ng);
    for (size_t off = 0; s->nranks > 1 && off < ng; off += (size_t)1 << 28) {
        size_t cnt = ng - off < ((size_t)1 << 28) ? ng - off : (size_t)1 << 28;
        MPI_Allreduce(MPI_IN_PLACE, grads + off, (int)cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    float gnorm = t2_train_clip_grad(s->tr, o->clip);
    float lr = t2_lr_at(sched, s->step);
    if ((rc = t2_train_update(s->tr, lr, ao)) < 0) {
        s->how = TRAIN_ERR_ABORT;
        return rc;
    }
    s->step++;
    s->meta.step = s->step;
    s->meta.data_pos += (uint64_t)s->G;
    double now = t2_now(), dt = now - t0;
    s->meta.elapsed = s->elapsed0 + (now - s->t_run);
    if (s->rank == 0)
        train_log_step(s, sum[0], lr, gnorm, (float)(norm / (dt > 0 ? dt : 1e-9)), now);
    s->stopped = sum[1] > 0 || (o->stop_after && s->step - s->start >= o->stop_after);
    int want_ckpt = o->ckpt && ((o->ckpt_every && s->step % o->ckpt_every == 0) ||
                                s->step == o->steps || s->stopped);
    if (want_ckpt && s->rank == 0 && t2_train_save_checkpoint(s->tr, &s->meta, o->ckpt) < 0)
        fprintf(stderr, "\nt2 train: checkpoint: %s\n", t2_err_msg());
    return 0;
}

/* After the last step: the plot, and the model (rank 0) unless stopped. */
static int train_finish(train_run *s) {
    const train_opts *o = s->o;
    if (s->rank == 0) {
        if (s->is_tty && s->stopped) fputc('\n', stderr);
        char title[256];
        snprintf(title, sizeof title, "t2 train: %s, batch %d x %d, lr %g", o->data, s->G, s->T,
                 (double)o->lr);
        if (write_svg(o->svg ? o->svg : s->svg_path, s->rows, s->n_rows, title) < 0)
            fprintf(stderr, "t2 train: %s\n", t2_err_msg());
    }
    if (s->stopped) {
        if (s->rank == 0)
            fprintf(stderr, "t2 train: stopped at step %d%s%s\n", s->step,
                    o->ckpt ? ", checkpoint " : "", o->ckpt ? o->ckpt : "");
        return g_stop ? 130 : 0;
    }
    if (s->rank) return 0;
    int rc = t2_model_save_gguf(t2_train_model_view(s->tr), s->tok, (t2_dtype)o->type,
                                "t2-trained", o->out);
    if (rc < 0) return rc;
    fprintf(stderr, "t2 train: wrote %s (%d steps, final loss %.4f, %.1f s); log %s, plot "
            "%s\n", o->out, s->step, s->n_rows ? (double)s->rows[s->n_rows - 1].loss : 0.0,
            s->meta.elapsed, o->csv ? o->csv : s->csv_path, o->svg ? o->svg : s->svg_path);
    return 0;
}

/* Set up (all ranks fail together), resume, train, finish: the exit status, or < 0 with the
 * message set and s->how saying how to report it. */
static int train_main(train_run *s) {
    train_opts *o = s->o;
    int rc = train_setup(s);
    if (any_failed(rc)) return rc < 0 ? rc : 1; /* a failing rank reports its own error */
    s->meta = (t2_ckpt_meta){.step = 0, .rng = {o->seed * 0x9E3779B97F4A7C15ull + 0x2545F491ull,
                                                0}};
    if (!s->meta.rng[0]) s->meta.rng[0] = 1;
    if (o->resume && access(o->ckpt, F_OK) == 0) {
        rc = t2_train_load_checkpoint(s->tr, &s->meta, o->ckpt);
        if (any_failed(rc)) return rc < 0 ? rc : 1;
        if (s->rank == 0)
            fprintf(stderr, "t2 train: resumed from %s at step %lld\n", o->ckpt,
                    (long long)s->meta.step);
    }
    s->start = s->step = (int)s->meta.step;
    if (s->rank == 0 && (rc = train_log_open(s)) != 0) return rc;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    t2_adamw_opts ao = {o->beta1, o->beta2, o->eps, o->wd};
    t2_lr_sched sched = {o->lr, o->min_lr, o->warmup, o->steps};
    s->log_every = o->log_every ? o->log_every : (o->steps >= 50 ? o->steps / 50 : 1);
    s->t_run = t2_now();
    s->elapsed0 = s->meta.elapsed;
    while (s->step < o->steps && !s->stopped)
        if ((rc = train_step(s, &ao, &sched)) < 0) return rc;
    return train_finish(s);
}

int t2_cmd_train(int argc, char **argv) {
    train_opts o;
    int rc = train_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    int rank = 0, nranks = 1, inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "t2 train: MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    train_run s = {.o = &o, .rank = rank, .nranks = nranks, .is_tty = isatty(2)};
    if (o.batch < nranks) {
        if (rank == 0)
            fprintf(stderr, "t2 train: --batch %d is smaller than the %d ranks\n", o.batch,
                    nranks);
        rc = 2;
    } else if ((rc = train_main(&s)) < 0) { /* the one place errors are reported */
        if (s.how == TRAIN_ERR_ABORT_RANK)
            fprintf(stderr, "t2 train: rank %d: %s\n", rank, t2_err_msg());
        else
            fprintf(stderr, "t2 train: %s\n", t2_err_msg());
        if (s.how != TRAIN_ERR_EXIT) MPI_Abort(MPI_COMM_WORLD, 1);
        rc = 1;
    }
    if (s.csv) fclose(s.csv);
    free(s.rows);
    free(s.csv_path);
    free(s.svg_path);
    free(s.offs);
    free(s.in);
    free(s.tg);
    free(s.stream);
    free(s.text);
    t2_pool_destroy(&s.pool);
    t2_train_destroy(&s.tr);
    t2_tok_destroy(&s.tok);
    t2_model_destroy(&s.m);
    MPI_Finalize();
    return rc;
}
