/* t2 adapt: few-shot adaptation (docs/DESIGN.md §7). The cross-entropy method searches
 * the mixing coefficients α of a set of SVF experts (one per expert, or one per expert per
 * adapted matrix) that maximise accuracy on a few labelled items of a task, and writes the best α
 * as a task profile (shared/profile.h) that `t2 eval --strategy profile:FILE` and the dispatcher
 * use for every later prompt of the task.
 *
 *   mpirun -np 2 t2 adapt --task math-hard --shots 10 -m models/t2-base.gguf --factors F.gguf \
 *          --experts experts/ --mix-experts math,code,mc -o profiles/math-hard.gguf
 *
 * The search (the reference's settings are the defaults): the mean starts at 1/n_experts in
 * every coordinate (the uniform mixture), the std at --std; each iteration draws --pop
 * candidates x = clamp(mean + std ⊙ N(0, I), 0, 1) from one seeded generator, scores them, and
 * sets mean and std to the mean and (population) standard deviation of the elite, the best
 * round(elite × pop) candidates. A candidate's fitness is its number of correct answers on the
 * shots (greedy decoding), ties broken by the mean log-likelihood of the shots' reference
 * answers, then by the lower candidate index; the best candidate of all iterations is kept.
 *
 * Parallelism: every rank draws every candidate (same generator), candidate i is scored on rank
 * i % P, and one MPI_Allreduce per iteration shares the fitness. A candidate's score never
 * depends on the rank, the batch it shares or the thread count (shared/generate.h), so the
 * search, and the profile written, are the same for any P. Rank 0 prints and writes.
 */
#include "cli.h"

#include "adapt_opts.h"
#include "engine/model.h"
#include "base/platform.h"
#include "base/pool.h"
#include "svf/profile.h"
#include "base/rng.h"
#include "svf/svf.h"
#include "base/t2_err.h"
#include "tasks/task_eval.h"
#include "tasks/tasks.h"
#include "engine/tokenizer.h"

#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char adapt_help[] =
    "usage: t2 adapt --task FAMILY -m MODEL --factors F.gguf [--experts DIR]\n"
    "                [--mix-experts NAME,NAME,...] [--per-matrix] [--shots N] [--pop N]\n"
    "                [--elite F] [--std S] [--iters N] [--seed S] -o PROFILE.gguf [options]\n"
    "       mpirun -np P t2 adapt ...      (candidates scored in parallel over P ranks)\n\n"
    "Few-shot adaptation (cross-entropy method, docs/DESIGN.md section 7): search the mixing\n"
    "coefficients alpha of the experts DIR/NAME.gguf (p' = sum_k alpha_k p_k) that answer the\n"
    "most of N labelled items (shots) of the task correctly, and write them as a task profile for\n"
    "`t2 eval --strategy profile:FILE` and the dispatcher. The mean starts at 1/n_experts, the\n"
    "std at S; each iteration draws the population from N(mean, std^2) clamped to [0, 1] and\n"
    "refits mean and std to the elite. Fitness: correct shots (greedy), ties broken by the mean\n"
    "log-likelihood of the reference answers. Prints the shots accuracy of the best alpha, of\n"
    "each expert alone and of the base weights. The result does not depend on the rank count.\n\n"
    "  -m, --model MODEL      model file (GGUF or llama2.c)\n"
    "  -z, --tokenizer FILE   llama2.c tokenizer.bin (default: the one embedded in a GGUF)\n"
    "      --task FAMILY      the task (t2 tasks list); its items give the shots\n"
    "      --shots N          labelled items (default 10)\n"
    "      --shots-split S    split they come from: train (default), validation, test, all\n"
    "      --factors F.gguf   SVD factors of the model (t2 decompose)\n"
    "      --experts DIR      where the experts are, as NAME.gguf (default: the factors' folder)\n"
    "      --mix-experts LIST expert names, comma-separated (default math,code,mc)\n"
    "      --per-matrix       one alpha per expert per adapted matrix (default: one per expert)\n"
    "      --pop N            candidates per iteration (default 32)\n"
    "      --elite F          fraction kept to refit mean and std, 0 < F <= 1 (default 0.2:\n"
    "                         round(F * pop) candidates, at least 1)\n"
    "      --std S            initial standard deviation, > 0 (default 0.5)\n"
    "      --iters N          iterations (default 50)\n"
    "      --seed S           seed of the shots draw and of the search (default 1)\n"
    "  -o, --output FILE      the task profile (GGUF)\n"
    "      --name NAME        the profile's name (default: the task's name)\n"
    "      --batch B          sequences in flight per rank (default 16; several candidates share\n"
    "                         a batch)\n"
    "      --max-tokens N     new tokens per answer (default 32 synthetic, 256 real)\n"
    "      --apply MODE       merged (default) or factored (for large models: no W' copies)\n"
    "      --merged-type T    merged W' stored as f32 (4 bytes per targeted weight; default),\n"
    "                         f16 or bf16 (2 bytes), q8_0 (1.0625 bytes)\n"
    "  -j, --threads T        threads per rank (default: CPUs / ranks)\n"
    "      --data DIR         real data sets folder (as t2 eval)\n"
    "      --timeout S        code families: sandbox limit per program (default 10)\n"
    "\nExit status 0 on success, 1 if something failed, 2 for a bad invocation.\n";

typedef struct {
    const char *model, *tok, *task, *factors, *experts_dir, *mix, *out, *name, *data;
    t2_task_split shots_split;
    int shots, pop, iters, per_matrix, batch, max_tokens, threads, mode;
    t2_dtype merged_type; /* W' storage in merged mode (0 = F32) */
    float elite, std0, timeout;
    uint64_t seed;
} adapt_opts;

/* ---- the search state shared by every rank ---- */

typedef struct {
    const adapt_opts *o;
    int rank, nranks;
    t2_model *m;
    t2_tokenizer *tok;
    t2_pool *pool;
    t2_factors *f;
    t2_task_set *set;
    int n_shots;
    int n_exp;
    char (*names)[T2_NAME_MAX + 1];
    t2_expert **experts;
    int slots;  /* n_layers * T2_N_TARGETS */
    int n_mats; /* adapted matrices per expert */
    int *mat_slot; /* [n_mats]: slot of adapted matrix j (model order) */
    int D;      /* search dimension: n_exp or n_exp * n_mats */
} search;

typedef struct {
    int correct;  /* shots answered correctly */
    double loglik; /* mean log-likelihood of the reference answers (-inf if none) */
} fitness;

/* a before b: more correct, then higher log-likelihood, then the lower index */
static int better(fitness a, int ia, fitness b, int ib) {
    if (a.correct != b.correct) return a.correct > b.correct;
    if (a.loglik != b.loglik) return a.loglik > b.loglik;
    return ia < ib;
}

/* The t2_mixture α of candidate x (D numbers; layout as the profile: row per expert). */
static void mixture_alpha(const search *s, const float *x, float *alpha) {
    if (!s->o->per_matrix) {
        memcpy(alpha, x, (size_t)s->n_exp * sizeof *alpha);
        return;
    }
    memset(alpha, 0, (size_t)s->n_exp * s->slots * sizeof *alpha);
    for (int k = 0; k < s->n_exp; k++)
        for (int j = 0; j < s->n_mats; j++)
            alpha[(size_t)k * s->slots + s->mat_slot[j]] = x[(size_t)k * s->n_mats + j];
}

/* Score candidates X[c] (D floats; NULL row pointer = base weights) for c of this rank, in
 * groups sharing a batch; then share every fitness with all ranks. Every rank returns the same
 * code: a failure on any rank fails all (the failing rank prints why). */
static int score_candidates(search *s, const float *const *X, int n, fitness *fit) {
    const adapt_opts *o = s->o;
    const int S = s->n_shots, G = o->batch / S > 1 ? o->batch / S : 1;
    const int n_alpha = o->per_matrix ? s->n_exp * s->slots : s->n_exp;
    double *buf = calloc(2 * (size_t)n + 1, sizeof *buf);
    float *alpha = malloc((size_t)n_alpha * sizeof *alpha);
    t2_adapt **ad = calloc((size_t)G, sizeof *ad);
    const t2_adapt **per_item = calloc((size_t)G * S, sizeof *per_item);
    size_t *idx = malloc((size_t)G * S * sizeof *idx);
    int *cand = malloc((size_t)G * sizeof *cand);
    int rc = 0;
    if (!buf || !alpha || !ad || !per_item || !idx || !cand)
        rc = t2_err_set(T2_ENOMEM, "out of memory");
    t2_teval_params tp;
    t2_teval_params_default(&tp);
    tp.max_tokens = o->max_tokens;
    tp.batch = o->batch;
    tp.seed = o->seed;
    tp.score_threads = o->threads;
    tp.loglik = 1;
    for (int c0 = s->rank; rc == 0 && c0 < n;) {
        int g = 0;
        for (; g < G && c0 < n; c0 += s->nranks, g++) { /* this rank's next G candidates */
            cand[g] = c0;
            if (X[c0]) {
                mixture_alpha(s, X[c0], alpha);
                t2_mixture mix = {s->n_exp, (const t2_expert *const *)s->experts, alpha, n_alpha,
                                  o->per_matrix};
                if ((rc = t2_adapt_new_typed(&ad[g], s->f, &mix, o->mode, o->merged_type,
                                              s->pool)) < 0)
                    break;
            }
            for (int i = 0; i < S; i++) {
                idx[(size_t)g * S + i] = (size_t)i;
                per_item[(size_t)g * S + i] = ad[g];
            }
        }
        t2_teval_result r;
        if (rc == 0 && (rc = t2_task_eval(s->m, s->tok, s->pool, s->set, idx, g * S,
                                          per_item, &tp, &r)) == 0) {
            for (int j = 0; j < g; j++) {
                int correct = 0, cnt = 0;
                double ll = 0;
                for (int i = 0; i < S; i++) {
                    const t2_teval_item *it = &r.items[(size_t)j * S + i];
                    correct += it->correct;
                    if (isfinite(it->loglik)) ll += it->loglik, cnt++;
                }
                buf[2 * cand[j]] = correct;
                /* an item without a log-likelihood (too long for the context) counts as none */
                buf[2 * cand[j] + 1] = cnt ? ll / cnt : -1e300;
            }
            t2_teval_result_free(&r);
        }
        for (int j = 0; j < G; j++) t2_adapt_release(&ad[j]);
    }
    if (rc < 0) {
        if (s->nranks > 1) fprintf(stderr, "t2 adapt: rank %d: %s\n", s->rank, t2_err_msg());
        else fprintf(stderr, "t2 adapt: %s\n", t2_err_msg());
        if (!buf) MPI_Abort(MPI_COMM_WORLD, 1); /* cannot even take part in the reduction */
        buf[2 * (size_t)n] = 1;
    }
    /* one rank wrote each entry, the others 0: the sums are exact */
    MPI_Allreduce(MPI_IN_PLACE, buf, 2 * n + 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (buf[2 * (size_t)n] > 0 && rc == 0) rc = T2_EMPI; /* another rank failed and said why */
    for (int c = 0; c < n && rc == 0; c++) {
        fit[c].correct = (int)buf[2 * c];
        fit[c].loglik = buf[2 * c + 1] <= -1e300 ? -INFINITY : buf[2 * c + 1];
    }
    free(buf);
    free(alpha);
    free(ad);
    free(per_item);
    free(idx);
    free(cand);
    return rc;
}

/* ---- progress ---- */

static void progress_line(const search *s, int it, int iters, fitness best, fitness it_best,
                          double elite_mean, double std_mean, double elapsed, int tty) {
    double eta = elapsed / (it + 1) * (iters - it - 1);
    const int S = s->n_shots;
    if (tty)
        fprintf(stderr, "\r\033[K");
    else
        fprintf(stderr, "t2 adapt: ");
    fprintf(stderr, "iter %d/%d: best %d/%d (loglik %.4f), this iteration %d/%d, elite mean "
                    "%.2f/%d, std %.3f, %.1f s, ETA %.0f s",
            it + 1, iters, best.correct, S, best.loglik, it_best.correct, S, elite_mean, S,
            std_mean, elapsed, eta);
    if (!tty || it + 1 == iters) fputc('\n', stderr);
}

/* ---- the command ---- */

enum { O_TASK = 0x200, O_SHOTS, O_SPLIT, O_FACTORS, O_EXPERTS, O_MIX, O_PERM, O_POP,
       O_ELITE, O_STD, O_ITERS, O_NAME, O_BATCH, O_MAXTOK, O_APPLY, O_DATA, O_TIMEOUT,
       O_MTYPE };

static const struct option adapt_long_opts[] = {
    {"model", required_argument, 0, 'm'},        {"tokenizer", required_argument, 0, 'z'},
    {"task", required_argument, 0, O_TASK},      {"shots", required_argument, 0, O_SHOTS},
    {"shots-split", required_argument, 0, O_SPLIT},
    {"factors", required_argument, 0, O_FACTORS}, {"experts", required_argument, 0, O_EXPERTS},
    {"mix-experts", required_argument, 0, O_MIX}, {"per-matrix", no_argument, 0, O_PERM},
    {"pop", required_argument, 0, O_POP},        {"elite", required_argument, 0, O_ELITE},
    {"std", required_argument, 0, O_STD},        {"iters", required_argument, 0, O_ITERS},
    {"seed", required_argument, 0, 's'},         {"output", required_argument, 0, 'o'},
    {"name", required_argument, 0, O_NAME},      {"batch", required_argument, 0, O_BATCH},
    {"max-tokens", required_argument, 0, O_MAXTOK}, {"apply", required_argument, 0, O_APPLY},
    {"threads", required_argument, 0, 'j'},      {"data", required_argument, 0, O_DATA},
    {"timeout", required_argument, 0, O_TIMEOUT}, {"help", no_argument, 0, 'h'},
    {"merged-type", required_argument, 0, O_MTYPE},
    {0, 0, 0, 0}};

/* Option c (its value in optarg) into o: -1 to go on, else the exit status (0 after --help,
 * 2 for a bad value, the message printed). */
static int adapt_opt(adapt_opts *o, int c) {
    const char *cmd = "adapt";
    switch (c) {
    case 'm': o->model = optarg; break;
    case 'z': o->tok = optarg; break;
    case O_TASK:
        if (!t2_task_family_find(optarg))
            return cli_usage_error(cmd, "--task: unknown family '%s' (t2 tasks list shows "
                                   "them)", optarg);
        o->task = optarg;
        break;
    case O_SHOTS: if (cli_int(cmd, "--shots", optarg, 1, 4096, &o->shots)) return 2; break;
    case O_SPLIT:
        if (t2_task_split_parse(optarg, &o->shots_split) < 0)
            return cli_usage_error(cmd, "--shots-split: '%s' is not train, validation, test "
                                   "or all", optarg);
        break;
    case O_FACTORS: o->factors = optarg; break;
    case O_EXPERTS: o->experts_dir = optarg; break;
    case O_MIX: o->mix = optarg; break;
    case O_PERM: o->per_matrix = 1; break;
    case O_POP: if (cli_int(cmd, "--pop", optarg, 2, 4096, &o->pop)) return 2; break;
    case O_ELITE:
        if (cli_float(cmd, "--elite", optarg, 0, 1, &o->elite)) return 2;
        if (!(o->elite > 0))
            return cli_usage_error(cmd, "--elite: %s keeps no candidate: give a fraction in "
                                   "(0, 1]", optarg);
        break;
    case O_STD:
        if (cli_float(cmd, "--std", optarg, 0, 100, &o->std0)) return 2;
        if (!(o->std0 > 0))
            return cli_usage_error(cmd, "--std: %s: the initial std must be above 0", optarg);
        break;
    case O_ITERS: if (cli_int(cmd, "--iters", optarg, 1, 100000, &o->iters)) return 2; break;
    case 's': if (cli_u64(cmd, "--seed", optarg, &o->seed)) return 2; break;
    case 'o': o->out = optarg; break;
    case O_NAME: o->name = optarg; break;
    case O_BATCH:
        if (cli_int(cmd, "--batch", optarg, 1, T2_MAX_SEQS, &o->batch)) return 2;
        break;
    case O_MAXTOK:
        if (cli_int(cmd, "--max-tokens", optarg, 1, 1 << 20, &o->max_tokens)) return 2;
        break;
    case O_APPLY:
        if (!strcmp(optarg, "merged")) o->mode = T2_APPLY_MERGED;
        else if (!strcmp(optarg, "factored")) o->mode = T2_APPLY_FACTORED;
        else return cli_usage_error(cmd, "--apply: '%s' is not merged or factored", optarg);
        break;
    case O_MTYPE:
        if (t2_dtype_parse(optarg, &o->merged_type) < 0 ||
            !t2_adapt_merged_type_ok(o->merged_type))
            return cli_usage_error(cmd, "--merged-type: '%s' is not f32, f16, bf16 or q8_0",
                                   optarg);
        break;
    case 'j':
        if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &o->threads)) return 2;
        break;
    case O_DATA: o->data = optarg; break;
    case O_TIMEOUT:
        if (cli_float(cmd, "--timeout", optarg, 0.1, 3600, &o->timeout)) return 2;
        break;
    case 'h': fputs(adapt_help, stdout); return 0;
    default: return cli_usage_error(cmd, "bad option");
    }
    return -1;
}

/* The names of --name and --mix-experts, checked before any work: -1 to go on, else 2. */
static int adapt_check_names(const adapt_opts *o) {
    const char *cmd = "adapt";
    /* the profile's name rules (profile.h) */
    t2_profile *prof;
    if (t2_profile_new(&prof, o->name, 1, 0) < 0)
        return cli_usage_error(cmd, "--name: %s", t2_err_msg());
    t2_profile_destroy(&prof);
    /* expert names: 1..64 distinct, each a file name */
    int n = 0;
    const char *p = o->mix;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (!len || len > T2_NAME_MAX || memchr(p, '/', len) || (len == 1 && *p == '.') ||
            (len == 2 && !strncmp(p, "..", 2)))
            return cli_usage_error(cmd, "--mix-experts: '%.*s' is not an expert name", (int)len,
                                   p);
        for (const char *q = o->mix; q < p;) {
            size_t ql = strcspn(q, ",");
            if (ql == len && !strncmp(q, p, len))
                return cli_usage_error(cmd, "--mix-experts: '%.*s' named twice", (int)len, p);
            q += ql + 1;
        }
        n++;
        p += len;
        if (*p == ',') p++;
    }
    if (!n || n > T2_PROFILE_MAX_EXPERTS)
        return cli_usage_error(cmd, "--mix-experts: give 1..%d expert names",
                               T2_PROFILE_MAX_EXPERTS);
    return -1;
}

/* The command line into o: -1 to go on, else the exit status. */
static int adapt_parse(int argc, char **argv, adapt_opts *o) {
    const char *cmd = "adapt";
    *o = (adapt_opts){.shots_split = T2_SPLIT_TRAIN, .shots = 10, .pop = 32, .iters = 50,
                      .elite = 0.2f, .std0 = 0.5f, .seed = 1, .batch = 16,
                      .mix = "math,code,mc", .mode = T2_APPLY_MERGED};
    int c, r;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:s:o:j:h", adapt_long_opts, NULL)) != -1)
        if ((r = adapt_opt(o, c)) >= 0) return r;
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->model) return cli_usage_error(cmd, "no model: give -m MODEL");
    if (!o->task) return cli_usage_error(cmd, "no task: give --task FAMILY (t2 tasks list)");
    if (!o->factors)
        return cli_usage_error(cmd, "no factors: give --factors F.gguf (t2 decompose)");
    if (!o->out) return cli_usage_error(cmd, "no output: give -o PROFILE.gguf");
    if (!o->name) o->name = o->task;
    return adapt_check_names(o);
}

static int run_adapt(const adapt_opts *o, int rank, int nranks);

int t2_cmd_adapt(int argc, char **argv) {
    adapt_opts o;
    int rc = adapt_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    int rank = 0, nranks = 1, inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "t2 adapt: MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    rc = run_adapt(&o, rank, nranks);
    if (!inited) MPI_Finalize();
    return rc;
}

/* Every rank's set-up succeeded? If not, the lowest failing rank prints its message. */
static int all_ok(int rc, int rank) {
    int mine = rc < 0 ? rank : 1 << 30, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == (1 << 30)) return 1;
    if (first == rank) fprintf(stderr, "t2 adapt: %s\n", t2_err_msg());
    return 0;
}

static void print_alpha(const search *s, const float *x) {
    for (int k = 0; k < s->n_exp; k++) {
        if (!s->o->per_matrix) {
            printf("  %-20s alpha %.4f\n", s->names[k], (double)x[k]);
            continue;
        }
        double lo = 1e30, hi = -1e30, sum = 0;
        for (int j = 0; j < s->n_mats; j++) {
            double a = x[(size_t)k * s->n_mats + j];
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
            sum += a;
        }
        printf("  %-20s alpha over %d matrices: min %.4f mean %.4f max %.4f\n", s->names[k],
               s->n_mats, lo, sum / s->n_mats, hi);
    }
}

/* The cross-entropy method's state (the same on every rank). */
typedef struct {
    float *X;       /* (pop, D) candidates */
    float *mean, *sd, *best; /* (D) */
    float *onehot;  /* (n_exp + 2, D): the best, each expert alone, (base) */
    const float **rows;
    fitness *fit;
    int *order;
    int n_elite, best_iter;
    double mean0, t0;
    fitness best_fit;
    t2_rand rng;
    char dir[4096]; /* the experts' folder */
} cem;

/* The experts of --mix-experts, loaded from dir and checked to mix. */
static int adapt_experts(search *s, const char *dir) {
    const adapt_opts *o = s->o;
    int n = 1, rc;
    for (const char *p = o->mix; *p; p++) n += *p == ',';
    s->names = calloc((size_t)n, sizeof *s->names);
    s->experts = calloc((size_t)n, sizeof *s->experts);
    if (!s->names || !s->experts) return t2_err_set(T2_ENOMEM, "out of memory");
    for (const char *p = o->mix; *p;) {
        size_t len = strcspn(p, ",");
        snprintf(s->names[s->n_exp], sizeof s->names[0], "%.*s", (int)len, p);
        if ((rc = cli_expert_load_named(dir, s->names[s->n_exp], s->f, "expert",
                                        &s->experts[s->n_exp])) < 0)
            return rc;
        s->n_exp++;
        p += len;
        if (*p == ',') p++;
    }
    float *ones = calloc((size_t)s->n_exp, sizeof *ones);
    if (!ones) return t2_err_set(T2_ENOMEM, "out of memory");
    const t2_mixture chk = {s->n_exp, (const t2_expert *const *)s->experts, ones, s->n_exp, 0};
    rc = t2_mixture_check(&chk, s->f); /* same targets and max_mult, made for this model */
    free(ones);
    return rc;
}

/* The adapted matrices, the shots and the search's buffers. */
static int adapt_space(search *s, cem *c) {
    const adapt_opts *o = s->o;
    int rc;
    s->slots = s->f->n_layers * T2_N_TARGETS;
    s->mat_slot = malloc((size_t)s->slots * sizeof *s->mat_slot);
    if (!s->mat_slot) return t2_err_set(T2_ENOMEM, "out of memory");
    for (int i = 0; i < s->slots; i++)
        if (s->experts[0]->rank[i] > 0) s->mat_slot[s->n_mats++] = i;
    s->D = o->per_matrix ? s->n_exp * s->n_mats : s->n_exp;
    if (o->per_matrix && s->n_mats > T2_PROFILE_MAX_MATRICES)
        return t2_err_set(T2_ERANGE, "the experts adapt %d matrices; a profile holds at most %d",
                          s->n_mats, T2_PROFILE_MAX_MATRICES);
    t2_task_opts to = {.split = o->shots_split, .n = (size_t)o->shots, .seed = o->seed,
                       .data_dir = o->data, .timeout_s = o->timeout};
    if ((rc = t2_task_set_open(&s->set, o->task, &to)) < 0) return rc;
    s->n_shots = (int)t2_task_set_count(s->set);
    if (s->n_shots > o->shots) s->n_shots = o->shots; /* a real split gives all rows for 0 */
    if (s->n_shots < 1)
        return t2_err_set(T2_ENOTFOUND, "%s: no items in the %s split", o->task,
                          t2_task_split_name(o->shots_split));
    const size_t D = (size_t)s->D, P = (size_t)o->pop, R = (size_t)s->n_exp + 2;
    c->X = malloc(P * D * sizeof *c->X);
    c->mean = malloc(D * sizeof *c->mean);
    c->sd = malloc(D * sizeof *c->sd);
    c->best = malloc(D * sizeof *c->best);
    c->onehot = calloc(R * D, sizeof *c->onehot);
    c->rows = calloc(P > R ? P : R, sizeof *c->rows);
    c->fit = calloc(P > R ? P : R, sizeof *c->fit);
    c->order = malloc(P * sizeof *c->order);
    if (!c->X || !c->mean || !c->sd || !c->best || !c->onehot || !c->rows || !c->fit ||
        !c->order)
        return t2_err_set(T2_ENOMEM, "out of memory");
    return 0;
}

/* Set-up, identical on every rank: model, threads, factors, experts, shots, buffers. */
static int adapt_setup(search *s, cem *c) {
    const adapt_opts *o = s->o;
    int rc;
    if ((rc = t2_model_load(&s->m, o->model)) < 0 ||
        (rc = t2_model_load_tokenizer(&s->tok, s->m, o->tok)) < 0)
        return rc;
    if (t2_pool_new(&s->pool, o->threads) < 0)
        return t2_err_set(T2_ENOMEM, "cannot start %d threads", o->threads);
    if ((rc = t2_factors_load(&s->f, o->factors, s->m)) < 0) return rc;
    cli_adapt ca = {.factors_path = o->factors, .experts_dir = o->experts_dir};
    if ((rc = cli_experts_dir(&ca, c->dir, sizeof c->dir)) < 0) return rc;
    if ((rc = adapt_experts(s, c->dir)) < 0) return rc;
    return adapt_space(s, c);
}

/* Rank 0: what the search does. */
static void adapt_banner(const search *s, const cem *c) {
    const adapt_opts *o = s->o;
    printf("t2 adapt: task %s, %d shots (%s split, seed %llu), experts %s from %s, %s "
           "(%d numbers)\n", o->task, s->n_shots, t2_task_split_name(o->shots_split),
           (unsigned long long)o->seed, o->mix, c->dir,
           o->per_matrix ? "alpha per expert per matrix" : "alpha per expert", s->D);
    printf("cross-entropy method: population %d, elite %d (%g), initial mean %.4f (1/%d), "
           "std %g, %d iterations, alpha in [0, 1]; %d rank%s x %d thread%s, %s\n\n", o->pop,
           c->n_elite, (double)o->elite, c->mean0, s->n_exp, (double)o->std0, o->iters,
           s->nranks, s->nranks > 1 ? "s" : "", o->threads, o->threads > 1 ? "s" : "",
           o->mode == T2_APPLY_MERGED ? "merged" : "factored");
    fflush(stdout);
}

/* One iteration: draw the population, score it, keep the best, refit mean and std to the
 * elite. */
static int cem_iter(search *s, cem *c, int it, int tty) {
    const adapt_opts *o = s->o;
    const int D = s->D, n_elite = c->n_elite;
    for (int k = 0; k < o->pop; k++) {
        float *x = c->X + (size_t)k * D;
        for (int d = 0; d < D; d++) {
            double v = c->mean[d] + c->sd[d] * t2_rand_normal(&c->rng);
            x[d] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
        }
        c->rows[k] = x;
    }
    if (score_candidates(s, c->rows, o->pop, c->fit) < 0) return T2_EINTERNAL;
    const fitness *fit = c->fit;
    int *order = c->order;
    for (int k = 0; k < o->pop; k++) order[k] = k;
    for (int a = 1; a < o->pop; a++) /* insertion sort: best first, deterministic */
        for (int b = a; b > 0 && better(fit[order[b]], order[b], fit[order[b - 1]],
                                        order[b - 1]); b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    const int top = order[0];
    if (fit[top].correct > c->best_fit.correct ||
        (fit[top].correct == c->best_fit.correct && fit[top].loglik > c->best_fit.loglik)) {
        c->best_fit = fit[top];
        c->best_iter = it + 1;
        memcpy(c->best, c->X + (size_t)top * D, (size_t)D * sizeof *c->best);
    }
    double elite_correct = 0, std_sum = 0;
    for (int d = 0; d < D; d++) {
        double m1 = 0, m2 = 0;
        for (int e = 0; e < n_elite; e++) m1 += c->X[(size_t)order[e] * D + d];
        m1 /= n_elite;
        for (int e = 0; e < n_elite; e++) {
            double dv = c->X[(size_t)order[e] * D + d] - m1;
            m2 += dv * dv;
        }
        c->mean[d] = (float)m1;
        c->sd[d] = (float)sqrt(m2 / n_elite);
        std_sum += c->sd[d];
    }
    for (int e = 0; e < n_elite; e++) elite_correct += fit[order[e]].correct;
    if (s->rank == 0)
        progress_line(s, it, o->iters, c->best_fit, fit[top], elite_correct / n_elite,
                      std_sum / D, t2_now() - c->t0, tty);
    return 0;
}

/* The best α against each expert alone and the base weights, on the same shots (fitness in
 * c->fit[0 .. n_exp + 2)); rank 0 prints them. */
static int adapt_compare(search *s, cem *c) {
    const adapt_opts *o = s->o;
    const int R = s->n_exp + 2;
    memcpy(c->onehot, c->best, (size_t)s->D * sizeof *c->best);
    c->rows[0] = c->onehot;
    for (int k = 0; k < s->n_exp; k++) {
        float *x = c->onehot + (size_t)(k + 1) * s->D;
        for (int d = 0; d < s->D; d++)
            x[d] = (o->per_matrix ? d / s->n_mats : d) == k ? 1.0f : 0.0f;
        c->rows[k + 1] = x;
    }
    c->rows[R - 1] = NULL;
    if (score_candidates(s, c->rows, R, c->fit) < 0) return T2_EINTERNAL;
    if (s->rank) return 0;
    printf("\nshots accuracy (%d shots of %s, %s split):\n", s->n_shots, o->task,
           t2_task_split_name(o->shots_split));
    for (int r = 0; r < R; r++) {
        char label[96];
        if (r == 0) snprintf(label, sizeof label, "best alpha (iter %d)", c->best_iter);
        else if (r < R - 1) snprintf(label, sizeof label, "%s alone", s->names[r - 1]);
        else snprintf(label, sizeof label, "base weights");
        printf("  %-24s %4d/%-4d %6.1f%%   answer loglik %.4f\n", label, c->fit[r].correct,
               s->n_shots, 100.0 * c->fit[r].correct / s->n_shots, c->fit[r].loglik);
    }
    printf("\nbest alpha:\n");
    print_alpha(s, c->best);
    return 0;
}

/* Rank 0: the profile of the best α, with how it was found; its bytes depend on nothing that
 * varies with the rank count. */
static int adapt_save(const search *s, const cem *c) {
    const adapt_opts *o = s->o;
    char training[1024];
    snprintf(training, sizeof training,
             "t2 adapt: cross-entropy method on %d shots of %s (%s split, seed %llu); "
             "experts %s; %s; population %d, elite %d (%g), initial mean %.6g, std %g, "
             "%d iterations, alpha clamped to [0, 1]; fitness: correct shots, ties by mean "
             "answer log-likelihood; greedy, %s adaptation; best at iteration %d: %d/%d "
             "shots correct (accuracy %.4f), answer loglik %.6f",
             s->n_shots, o->task, t2_task_split_name(o->shots_split),
             (unsigned long long)o->seed, o->mix,
             o->per_matrix ? "alpha per expert per matrix" : "alpha per expert", o->pop,
             c->n_elite, (double)o->elite, c->mean0, (double)o->std0, o->iters,
             o->mode == T2_APPLY_MERGED ? "merged" : "factored", c->best_iter,
             c->best_fit.correct, s->n_shots, (double)c->best_fit.correct / s->n_shots,
             c->best_fit.loglik);
    t2_profile *prof = NULL;
    int rc = t2_profile_new(&prof, o->name, s->n_exp, o->per_matrix ? s->n_mats : 0);
    if (rc == 0) {
        for (int k = 0; k < s->n_exp; k++)
            snprintf(prof->experts[k], sizeof prof->experts[k], "%s", s->names[k]);
        memcpy(prof->alpha, c->best, (size_t)s->D * sizeof *c->best);
        free(prof->task);
        free(prof->training);
        prof->task = strdup(o->task);
        prof->training = strdup(training);
        snprintf(prof->base_sha256, sizeof prof->base_sha256, "%s", s->f->base_sha256);
        if (!prof->task || !prof->training) rc = t2_err_set(T2_ENOMEM, "out of memory");
        else rc = t2_profile_save(prof, o->out);
    }
    t2_profile_destroy(&prof);
    return rc;
}

/* Rank 0: what was written, and one line for scripts (c->fit holds the best, each expert
 * alone, the base). */
static void adapt_report(const search *s, const cem *c) {
    const adapt_opts *o = s->o;
    const fitness *fit = c->fit;
    const int R = s->n_exp + 2;
    const double secs = t2_now() - c->t0;
    printf("\nwrote %s: profile '%s', %d experts, %s, shots accuracy %.4f (%.1f s)\n", o->out,
           o->name, s->n_exp, o->per_matrix ? "alpha per expert per matrix" : "alpha per expert",
           (double)c->best_fit.correct / s->n_shots, secs);
    int top = 1;
    for (int k = 2; k <= s->n_exp; k++)
        if (better(fit[k], k, fit[top], top)) top = k;
    printf("\nsummary: task=%s split=%s shots=%d experts=%s per_matrix=%d pop=%d "
           "elite=%d std=%g iters=%d seed=%llu best_correct=%d best_accuracy=%.4f "
           "best_loglik=%.6f best_single=%s single_accuracy=%.4f base_accuracy=%.4f "
           "profile=%s seconds=%.2f\n",
           o->task, t2_task_split_name(o->shots_split), s->n_shots, o->mix, o->per_matrix,
           o->pop, c->n_elite, (double)o->std0, o->iters, (unsigned long long)o->seed,
           c->best_fit.correct, (double)c->best_fit.correct / s->n_shots, c->best_fit.loglik,
           s->names[top - 1], (double)fit[top].correct / s->n_shots,
           (double)fit[R - 1].correct / s->n_shots, o->out, secs);
}

/* Set up, search, compare, write: 0, or < 0 after the failing rank printed why (set-up
 * failures through all_ok, scoring through score_candidates, the profile here). */
static int adapt_run(search *s, cem *c) {
    const adapt_opts *o = s->o;
    int rc = adapt_setup(s, c);
    if (!all_ok(rc, s->rank)) return T2_EINTERNAL;
    const int tty = isatty(2);
    const int ne = (int)lround(o->elite * o->pop);
    c->n_elite = ne > 1 ? ne : 1;
    c->mean0 = 1.0 / s->n_exp;
    if (s->rank == 0) adapt_banner(s, c);
    for (int d = 0; d < s->D; d++) c->mean[d] = (float)c->mean0, c->sd[d] = o->std0;
    t2_rand_seed(&c->rng, o->seed ^ 0x5DEECE66Dull); /* the same draws on every rank */
    c->best_fit = (fitness){-1, -INFINITY};
    c->t0 = t2_now();
    for (int it = 0; it < o->iters; it++)
        if ((rc = cem_iter(s, c, it, tty)) < 0) return rc;
    if ((rc = adapt_compare(s, c)) < 0) return rc;
    rc = 0;
    if (s->rank == 0) {
        if ((rc = adapt_save(s, c)) < 0) fprintf(stderr, "t2 adapt: %s\n", t2_err_msg());
        else adapt_report(s, c);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return rc;
}

static int run_adapt(const adapt_opts *o, int rank, int nranks) {
    adapt_opts oo = *o;
    if (!oo.threads) oo.threads = t2_nproc() / nranks > 1 ? t2_nproc() / nranks : 1;
    search s = {.o = &oo, .rank = rank, .nranks = nranks};
    cem c = {0};
    int rc = adapt_run(&s, &c);
    fflush(stdout);
    free(c.X);
    free(c.mean);
    free(c.sd);
    free(c.best);
    free(c.onehot);
    free(c.rows);
    free(c.fit);
    free(c.order);
    free(s.mat_slot);
    for (int k = 0; k < s.n_exp; k++) t2_expert_destroy(&s.experts[k]);
    free(s.experts);
    free(s.names);
    t2_task_set_destroy(&s.set);
    t2_factors_destroy(&s.f);
    t2_pool_destroy(&s.pool);
    t2_tok_destroy(&s.tok);
    t2_model_destroy(&s.m);
    return rc < 0 ? 1 : 0;
}
