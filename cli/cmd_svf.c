/* t2 decompose and t2 expert: SVD factors and SVF expert files. */
#include "cli.h"

#include "adapt_opts.h"
#include "engine/tokenizer.h"

#include "engine/model.h"
#include "base/platform.h"
#include "base/rng.h"
#include "svf/svf.h"
#include "base/t2_err.h"

#include <getopt.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Progress with an ETA: a refreshed line on a terminal, plain lines (every 10 %) in logs. */
typedef struct {
    const char *what;
    int tty, last_decile;
} progress_ctx;

static void progress(void *arg, int done, int total, double elapsed) {
    progress_ctx *p = arg;
    double eta = done ? elapsed / done * (total - done) : 0;
    if (p->tty) {
        fprintf(stderr, "\r%s: %d/%d (%.0f%%), %.1f s elapsed, ETA %.1f s   ", p->what, done, total,
                100.0 * done / total, elapsed, eta);
        if (done == total) fputc('\n', stderr);
    } else {
        int decile = 10 * done / total;
        if (decile != p->last_decile || done == total) {
            fprintf(stderr, "%s: %d/%d (%.0f%%), %.1f s elapsed, ETA %.1f s\n", p->what, done, total,
                    100.0 * done / total, elapsed, eta);
            p->last_decile = decile;
        }
    }
}

static const char decompose_help[] =
    "usage: t2 decompose -m MODEL -o FACTORS.gguf [--targets mlp|attn|all|LIST] [-j THREADS]\n\n"
    "SVD (LAPACK dgesdd, float64; factors stored float32) of every targeted weight matrix, W = U diag(s) V^T, written to a GGUF\n"
    "that records the model's sha256 and the targets. Prints the worst relative reconstruction\n"
    "error ||W - U diag(s) V^T||_F / ||W||_F over all matrices.\n"
    "  --targets T   mlp (ffn_gate, ffn_up, ffn_down; default), attn (q, k, v, output), all,\n"
    "                or a comma list of those matrix names\n";

int t2_cmd_decompose(int argc, char **argv) {
    const char *cmd = "decompose", *model_path = NULL, *out = NULL;
    unsigned targets = T2_TARGETS_MLP;
    int threads = t2_nproc();
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"output", required_argument, 0, 'o'},
                                         {"targets", required_argument, 0, 'T'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:j:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'o': out = optarg; break;
        case 'T':
            if (t2_targets_parse(optarg, &targets) < 0)
                return cli_usage_error(cmd, "--targets: %s", t2_err_msg());
            break;
        case 'j': if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &threads)) return 2; break;
        case 'h': fputs(decompose_help, stdout); return 0;
        default: return cli_usage_error(cmd, "bad option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_path || !out) return cli_usage_error(cmd, "give -m MODEL and -o FACTORS.gguf");
    t2_model *m = NULL;
    t2_factors *f = NULL;
    t2_pool *pool = NULL;
    int rc = 1;
    double worst = 0, t0 = t2_now();
    progress_ctx pc = {"decompose", isatty(2), -1};
    if (t2_model_load(&m, model_path) < 0) goto fail;
    if (t2_pool_new(&pool, threads) < 0) {
        t2_err_set(T2_ENOMEM, "cannot start %d threads", threads);
        goto fail;
    }
    if (t2_factors_compute(&f, m, targets, pool, progress, &pc, &worst) < 0) goto fail;
    if (t2_factors_save(f, out) < 0) goto fail;
    char tb[128];
    printf("wrote %s: %s targets of %d layers, %.1f MiB of factors, %.2f s; worst relative "
           "reconstruction error %.3g\n", out, t2_targets_str(targets, tb, sizeof tb),
           m->cfg.n_layers, t2_factors_bytes(f) / 1048576.0, t2_now() - t0, worst);
    rc = 0;
    goto out;
fail:
    rc = cli_fail(cmd);
out:
    t2_factors_destroy(&f);
    t2_pool_destroy(&pool);
    t2_model_destroy(&m);
    return rc;
}

static const char expert_help[] =
    "usage: t2 expert init -m MODEL --factors F.gguf -o E.gguf --name NAME [--task TASK]\n"
    "                      [--targets T] [--init V] [--noise STD] [--seed N] [--max-mult M]\n"
    "       t2 expert init -m MODEL --factors F.gguf -o E.gguf --name NAME --shuffle FROM.gguf\n"
    "                      [--seed N]\n"
    "       t2 expert show -m MODEL --factors F.gguf E.gguf\n"
    "       t2 expert merge -m MODEL --factors F.gguf (--expert E.gguf | --mix NAME=A,...)\n"
    "                       [--experts DIR] -o OUT.gguf [--type T] [-z TOKENIZER]\n\n"
    "init writes an SVF expert: one vector p per targeted matrix, every entry V (default 0.1, the\n"
    "reference's initialisation; an expert of constant p leaves the model unchanged) plus seeded\n"
    "Gaussian noise of std STD (default 0). The applied scale is sigmoid(p) * max_mult (default 1).\n"
    "With --shuffle, each matrix's p is a seeded random permutation of FROM's p for that matrix\n"
    "(its targets and max_mult too): the same values, hence the same spread, in directions FROM\n"
    "was not trained for - the random-expert control of docs/RESULTS.md.\n"
    "show prints the expert's metadata and per-layer statistics of its applied scales.\n"
    "merge writes the model with the expert or mixture baked into its weights (W' = U diag(s') V^T),\n"
    "a plain Llama GGUF that any GGUF reader can run.\n";

/* p of every matrix of e := a seeded Fisher-Yates permutation of src's (same shapes). */
static void expert_shuffle(t2_expert *e, const t2_expert *src, uint64_t seed) {
    t2_rand r;
    t2_rand_seed(&r, seed);
    for (int i = 0; i < e->n_layers * T2_N_TARGETS; i++) {
        if (!e->rank[i]) continue;
        float *p = e->p[i];
        memcpy(p, src->p[i], (size_t)e->rank[i] * sizeof *p);
        for (int q = e->rank[i] - 1; q > 0; q--) {
            int j = (int)t2_rand_below(&r, (uint64_t)q + 1);
            float t = p[q];
            p[q] = p[j];
            p[j] = t;
        }
    }
}

/* --shuffle FROM: an expert with FROM's targets, max_mult and shuffled p vectors. */
static int expert_init_shuffled(t2_expert **out, const t2_factors *f, const char *from,
                                const char *name, const char *task, uint64_t seed) {
    t2_expert *src = NULL;
    int rc = t2_expert_load(&src, from, f);
    if (rc == 0)
        rc = t2_expert_init(out, f, src->targets, name, *task ? task : src->task, 0, 0, seed,
                            src->max_mult);
    if (rc == 0) {
        expert_shuffle(*out, src, seed);
        char rec[600];
        snprintf(rec, sizeof rec, "p of each matrix permuted (seed %llu) from expert '%s'",
                 (unsigned long long)seed, src->name);
        char *t = strdup(rec);
        if (!t) rc = t2_err_set(T2_ENOMEM, "out of memory");
        else {
            free((*out)->training);
            (*out)->training = t;
        }
    }
    t2_expert_destroy(&src);
    return rc;
}

static int expert_init(int argc, char **argv) {
    const char *cmd = "expert init", *model_path = NULL, *fpath = NULL, *out = NULL;
    const char *name = NULL, *task = "", *shuffle = NULL;
    unsigned targets = 0;
    float init = 0.1f, noise = 0, max_mult = 1;
    uint64_t seed = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"factors", required_argument, 0, 'F'},
        {"output", required_argument, 0, 'o'}, {"name", required_argument, 0, 'N'},
        {"task", required_argument, 0, 'T'},   {"targets", required_argument, 0, 'G'},
        {"init", required_argument, 0, 'I'},   {"noise", required_argument, 0, 'Z'},
        {"seed", required_argument, 0, 's'},   {"max-mult", required_argument, 0, 'X'},
        {"shuffle", required_argument, 0, 'U'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c, set_other = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:s:h", opts, NULL)) != -1) {
        set_other |= c == 'G' || c == 'I' || c == 'Z' || c == 'X';
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'F': fpath = optarg; break;
        case 'o': out = optarg; break;
        case 'N': name = optarg; break;
        case 'T': task = optarg; break;
        case 'G':
            if (t2_targets_parse(optarg, &targets) < 0)
                return cli_usage_error(cmd, "--targets: %s", t2_err_msg());
            break;
        case 'I': if (cli_float(cmd, "--init", optarg, -100, 100, &init)) return 2; break;
        case 'Z': if (cli_float(cmd, "--noise", optarg, 0, 100, &noise)) return 2; break;
        case 's': if (cli_u64(cmd, "--seed", optarg, &seed)) return 2; break;
        case 'X': if (cli_float(cmd, "--max-mult", optarg, 1e-6, 1e6, &max_mult)) return 2; break;
        case 'U': shuffle = optarg; break;
        case 'h': fputs(expert_help, stdout); return 0;
        default: return cli_usage_error(cmd, "bad option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_path || !fpath || !out || !name)
        return cli_usage_error(cmd, "give -m MODEL, --factors F, -o OUT and --name NAME");
    if (!*name || strchr(name, '/') || strchr(name, ',') || strchr(name, '='))
        return cli_usage_error(cmd, "--name: '%s' must be non-empty without '/', ',' or '='", name);
    if (shuffle && set_other)
        return cli_usage_error(cmd, "--shuffle takes the targets, values and max-mult of its "
                               "file: no --targets, --init, --noise or --max-mult with it");
    t2_model *m = NULL;
    t2_factors *f = NULL;
    t2_expert *e = NULL;
    int rc = 1;
    if (t2_model_load(&m, model_path) < 0 || t2_factors_load(&f, fpath, m) < 0 ||
        (shuffle ? expert_init_shuffled(&e, f, shuffle, name, task, seed)
                 : t2_expert_init(&e, f, targets, name, task, init, noise, seed, max_mult)) < 0 ||
        t2_expert_save(e, out) < 0) {
        rc = cli_fail(cmd);
    } else {
        printf("wrote %s: expert '%s', %lld parameters\n", out, name,
               (long long)t2_expert_n_params(e));
        rc = 0;
    }
    t2_expert_destroy(&e);
    t2_factors_destroy(&f);
    t2_model_destroy(&m);
    return rc;
}

static int expert_show(int argc, char **argv) {
    const char *cmd = "expert show", *model_path = NULL, *fpath = NULL;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"factors", required_argument, 0, 'F'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'F': fpath = optarg; break;
        case 'h': fputs(expert_help, stdout); return 0;
        default: return cli_usage_error(cmd, "bad option");
        }
    }
    if (argc - optind != 1 || !model_path || !fpath)
        return cli_usage_error(cmd, "give -m MODEL, --factors F and one expert file");
    t2_model *m = NULL;
    t2_factors *f = NULL;
    t2_expert *e = NULL;
    int rc = 1;
    if (t2_model_load(&m, model_path) < 0 || t2_factors_load(&f, fpath, m) < 0 ||
        t2_expert_load(&e, argv[optind], f) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    char tb[128];
    printf("expert '%s' (task '%s'), targets %s, activation sigmoid x %g, %lld parameters\n"
           "base sha256 %s\ntraining: %s\n\n", e->name, e->task,
           t2_targets_str(e->targets, tb, sizeof tb), (double)e->max_mult,
           (long long)t2_expert_n_params(e), e->base_sha256, e->training);
    printf("%-6s %-12s %6s %9s %9s %9s %9s   (scale = sigmoid(p)*max_mult; eff = sigma'/sigma)\n",
           "layer", "matrix", "rank", "scale min", "mean", "max", "eff max");
    for (int l = 0; l < e->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            int i = l * T2_N_TARGETS + k;
            if (!e->rank[i]) continue;
            const t2_svd *s = t2_factors_get(f, l, k);
            float sig[65536];
            double mn = INFINITY, mx = -INFINITY, sum = 0, eff = 0;
            for (int q = 0; q < e->rank[i]; q++) {
                double sc = e->max_mult / (1.0 + exp(-(double)e->p[i][q]));
                mn = sc < mn ? sc : mn;
                mx = sc > mx ? sc : mx;
                sum += sc;
            }
            if (e->rank[i] <= 65536) {
                t2_svf_sigma(sig, s, e->p[i], e->max_mult);
                for (int q = 0; q < e->rank[i]; q++)
                    if (s->S[q] > 0 && sig[q] / s->S[q] > eff) eff = sig[q] / s->S[q];
            }
            printf("%-6d %-12s %6d %9.4f %9.4f %9.4f %9.4f\n", l, t2_target_name(k), e->rank[i], mn,
                   sum / e->rank[i], mx, eff);
        }
    rc = 0;
out:
    t2_expert_destroy(&e);
    t2_factors_destroy(&f);
    t2_model_destroy(&m);
    return rc;
}

static int expert_merge(int argc, char **argv) {
    const char *cmd = "expert merge", *model_path = NULL, *out = NULL, *tok_path = NULL;
    t2_dtype type = T2_F32;
    cli_adapt ad = {.mode = T2_APPLY_MERGED};
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"output", required_argument, 0, 'o'},
                                         {"type", required_argument, 0, 'T'},
                                         {"tokenizer", required_argument, 0, 'z'},
                                         {"help", no_argument, 0, 'h'},
                                         CLI_ADAPT_OPTIONS,
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:z:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'o': out = optarg; break;
        case 'z': tok_path = optarg; break;
        case 'T':
            if (t2_dtype_parse(optarg, &type) < 0) return cli_usage_error(cmd, "%s", t2_err_msg());
            break;
        case 'h': fputs(expert_help, stdout); return 0;
        default: {
            int r = cli_adapt_opt(&ad, cmd, c, optarg);
            if (r < 0) return 2;
            if (r == 0) return cli_usage_error(cmd, "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_path || !out || (!ad.expert_path && !ad.mix))
        return cli_usage_error(cmd, "give -m MODEL, --factors F, --expert or --mix, and -o OUT");
    ad.mode = T2_APPLY_MERGED;
    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_pool *pool;
    t2_layer *layers = NULL;
    int rc = 1;
    if (t2_pool_new(&pool, t2_nproc()) < 0) {
        t2_err_set(T2_ENOMEM, "cannot start threads");
        goto fail;
    }
    if (t2_model_load(&m, model_path) < 0 || cli_adapt_setup(&ad, m, pool) < 0) goto fail;
    if ((tok_path || (m->gguf && t2_gguf_find_key(m->gguf, "tokenizer.ggml.tokens") >= 0)) &&
        t2_model_load_tokenizer(&tok, m, tok_path) < 0)
        goto fail;
    /* a shallow copy of the model whose targeted matrices point at the merged ones */
    t2_model copy = *m;
    if (!(layers = malloc((size_t)m->cfg.n_layers * sizeof *layers))) {
        t2_err_set(T2_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(layers, m->layers, (size_t)m->cfg.n_layers * sizeof *layers);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++)
            if (ad.adapt->sigma[l * T2_N_TARGETS + k])
                *(t2_mat *)t2_layer_mat(&layers[l], k) = ad.adapt->merged[l * T2_N_TARGETS + k];
    copy.layers = layers;
    char desc[512];
    if (t2_model_save_gguf(&copy, tok, type, cli_adapt_describe(&ad, desc, sizeof desc), out) < 0)
        goto fail;
    printf("wrote %s: %s with %s\n", out, model_path, desc);
    rc = 0;
    goto out;
fail:
    rc = cli_fail(cmd);
out:
    free(layers);
    cli_adapt_free(&ad);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    t2_pool_destroy(&pool);
    return rc;
}

int t2_cmd_expert(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "merge")) return expert_merge(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "init")) return expert_init(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "show")) return expert_show(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(expert_help, stdout);
        return 0;
    }
    return cli_usage_error("expert", "give a sub-command: init, show or merge");
}
