/* t2 svf: train an SVF expert (or, for comparison, a LoRA) on a task family by REINFORCE,
 * data-parallel over MPI ranks.
 *
 *   t2 decompose -m models/t2-base.gguf -o factors.gguf
 *   mpirun -np 2 t2 svf --task math -m models/t2-base.gguf --factors factors.gguf -o math.gguf
 *
 * A step (docs/DESIGN.md §7): draw a global batch of training prompts (the same draw on every rank;
 * rank r takes its contiguous share), sample an answer to each with the current expert
 * (t2_generate_batch, temperature 1), score it with the family's scorer (reward +1 if
 * correct, -1 otherwise), and minimise
 *
 *     L = -(1/G) sum_seq r_seq sum_{t in answer} log pi(y_t)
 *         + lambda (1/G) sum_t KL(pi_base || pi)
 *
 * over the G sequences of the global batch, by Adam on the expert's p vectors (only p has
 * gradients: the trainer's SVF mode), after an MPI_Allreduce of the gradient and a global-norm
 * clip. Every --eval-every steps (and at step 0 and at the end) the expert is evaluated
 * greedily on validation items (split over the ranks); the best one is kept and written.
 *
 * With --lora R the same loop trains rank-R LoRA adapters on the same matrices (shared/lora.h)
 * and writes the merged model instead (the baseline of Table 1).
 */
#include "cli.h"

#include "engine/generate.h"
#include "train/lora.h"
#include "engine/model.h"
#include "base/platform.h"
#include "base/pool.h"
#include "base/rng.h"
#include "svf/svf.h"
#include "base/t2_err.h"
#include "tasks/task_eval.h"
#include "tasks/tasks.h"
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

static const char svf_help[] =
    "usage: t2 svf --task FAMILY -m MODEL --factors F.gguf -o OUT.gguf [options]\n"
    "       mpirun -np P t2 svf ...        (data-parallel over P ranks)\n\n"
    "Train an SVF expert on a task family by REINFORCE: sample an answer to each training\n"
    "prompt with the current expert, reward +1 if the family's scorer accepts it and -1 if\n"
    "not, and follow the policy gradient (plus an optional KL penalty to the base model) with\n"
    "Adam on the expert's vectors only. The expert is evaluated on validation items every\n"
    "--eval-every steps and the best one is written (step 0 is the base model itself: if no\n"
    "step beats it, the expert written leaves the model unchanged, and the log says so).\n\n"
    "  -m, --model MODEL      model file (GGUF or llama2.c)\n"
    "  -z, --tokenizer FILE   llama2.c tokenizer.bin (default: the one embedded in a GGUF)\n"
    "      --factors F.gguf   SVD factors of the model (t2 decompose)\n"
    "      --task FAMILY      the family to train on (t2 tasks list), e.g. math, code, mc,\n"
    "                         classify, gsm8k\n"
    "  -o, --output OUT.gguf  the expert (with --lora: the merged model)\n"
    "      --name NAME        expert name (default: the family's name)\n"
    "      --targets T        matrices: mlp (default), attn, all or a list (attn_q,ffn_up,...);\n"
    "                         a subset of the factors' targets\n"
    "  -n, --steps N          optimiser steps (default 200)\n"
    "  -b, --batch N          prompts per step over all ranks (default 64)\n"
    "      --lr X             Adam learning rate (default 2e-3, the reference's; T2's bundled\n"
    "                         model wants about 2e-2, see docs/RESULTS.md)\n"
    "      --kl X             KL penalty coefficient lambda (default 0)\n"
    "      --clip X           global gradient-norm clip, 0 = off (default 1.0)\n"
    "      --beta1 X, --beta2 X   Adam (default 0.9, 0.999)\n"
    "      --p-init X         initial p of every singular value (default 0.1)\n"
    "      --max-mult X       s = max_mult * sigmoid(p) (default 1)\n"
    "  -t, --temperature X    sampling temperature of the rollouts (default 1)\n"
    "      --max-tokens N     tokens per answer (default 32; real data sets 256)\n"
    "      --eval-every N     validation every N steps (default 10; 0 = only at the end)\n"
    "      --val-n N          validation items (default 200; real data sets: their\n"
    "                         validation split, or the first N test rows if they have none)\n"
    "      --train-n N        distinct training items drawn (default 4000)\n"
    "      --all-questions    classify: also train on questions of the transfer families\n"
    "                         (by default the classifier sees only math, code, mc and other,\n"
    "                         as the paper's classifier sees only its training tasks)\n"
    "      --lora R           train rank-R LoRA adapters on the same matrices instead\n"
    "      --lora-alpha A     LoRA scale alpha / R (default alpha = R)\n"
    "  -s, --seed N           seed of the prompt draw and the sampling (default 1)\n"
    "  -j, --threads N        threads per rank (default: CPUs / ranks)\n"
    "      --data DIR         real data sets folder (see t2 eval --help)\n"
    "      --csv FILE         per-step log (default OUT.csv)\n"
    "      --svg FILE         plot of reward and validation accuracy (default OUT.svg)\n"
    "      --log-every N      progress lines when stderr is not a terminal (default steps/20)\n"
    "  -h, --help\n";

typedef struct {
    const char *model, *tok, *factors, *task, *out, *name, *targets_s, *csv, *svg, *data;
    int steps, batch, max_tokens, eval_every, val_n, train_n, threads, log_every, lora;
    int all_questions;
    float lr, kl, clip, beta1, beta2, p_init, max_mult, temp, lora_alpha;
    uint64_t seed;
} svf_opts;

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* A fatal error on one rank, printed: every rank must stop (the others may wait in a
 * collective), so with several ranks this aborts the job. A single process returns (its caller
 * finalises and exits 1: MPI_Abort would print a banner about the job). */
static void fail_all_ranks(int rank, int nranks, const char *what) {
    if (rank)
        fprintf(stderr, "t2 svf: rank %d: %s\n", rank, what);
    else
        fprintf(stderr, "t2 svf: %s\n", what);
    fflush(stderr);
    if (nranks == 1) return;
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* ---- items ---- */

/* classify items wrapping a question of a transfer family ("classify:math-hard:...") */
static int transfer_question(const char *id) {
    static const char *const pre[] = {"classify:math-hard:", "classify:code-hard:",
                                      "classify:mc-hard:"};
    for (int i = 0; i < 3; i++)
        if (!strncmp(id, pre[i], strlen(pre[i]))) return 1;
    return 0;
}

typedef struct {
    t2_task_set *set;
    size_t *idx; /* items used */
    int n;
} item_list;

static void items_free(item_list *l) {
    t2_task_set_destroy(&l->set);
    free(l->idx);
    l->idx = NULL;
    l->n = 0;
}

/* Open n items of a split (all rows of a real split when n is 0), dropping transfer questions
 * of classify unless asked. Real data sets without the split fall back to `fallback`. */
static int items_open(item_list *l, const svf_opts *o, t2_task_split split,
                      t2_task_split fallback, int n) {
    const t2_task_family *fam = t2_task_family_find(o->task);
    const int real = fam->kind == T2_KIND_REAL;
    const int filter = fam->kind == T2_KIND_CLASSIFY && !o->all_questions;
    t2_task_opts to = {.split = split, .seed = o->seed, .data_dir = o->data};
    to.n = real ? (size_t)n : (size_t)(filter ? 2 * n : n);
    int rc = t2_task_set_open(&l->set, o->task, &to);
    if (rc == T2_ENOTFOUND && real && fallback != split) {
        to.split = fallback;
        rc = t2_task_set_open(&l->set, o->task, &to);
    }
    if (rc < 0) return rc;
    size_t cnt = t2_task_set_count(l->set);
    l->idx = malloc((cnt ? cnt : 1) * sizeof *l->idx);
    if (!l->idx) return t2_err_set(T2_ENOMEM, "out of memory");
    l->n = 0;
    for (size_t i = 0; i < cnt && (!filter || l->n < n); i++)
        if (!filter || !transfer_question(t2_task_set_item(l->set, i)->id)) l->idx[l->n++] = i;
    if (l->n == 0)
        return t2_err_set(T2_ERANGE, "%s: no %s items to use", o->task,
                          t2_task_split_name(split));
    return 0;
}

/* ---- the learner: an SVF trainer or LoRA adapters over a full-weight trainer ---- */

typedef struct {
    t2_train *tr;
    t2_lora *lora;         /* LoRA mode */
    t2_factors *f;         /* SVF mode */
    t2_expert *e;          /* SVF mode: the expert as the inference engine sees it */
    t2_svf_factors *sf;
    float *base_p;         /* SVF: p giving the base weights (uniform), for the KL reference */
    float *saved;          /* a copy of the trainable values (KL reference, best) */
    float *best;
    size_t n;              /* trainable values */
} learner;

static float *trainable(learner *lr, size_t *n) {
    return lr->lora ? t2_lora_params(lr->lora, n) : t2_train_trainable(lr->tr, n);
}

static float *grads(learner *lr, size_t *n) {
    return lr->lora ? t2_lora_grads_buf(lr->lora, n) : t2_train_grads_buf(lr->tr, n);
}

/* The expert's p vectors from the trainer's. */
static void sync_expert(learner *lr) {
    int nt = t2_train_svf_n_targets(lr->tr);
    for (int i = 0; i < nt; i++) {
        t2_svf_target *t = t2_train_svf_target(lr->tr, i);
        memcpy(lr->e->p[t->f.layer * T2_N_TARGETS + t->f.kind], t->p,
               (size_t)t->f.rank * sizeof(float));
    }
}

/* The model and adaptation to generate with right now. */
static int current_policy(learner *lr, const t2_model *m, t2_pool *pool, const t2_model **gm,
                          t2_adapt **ad) {
    *ad = NULL;
    if (lr->lora) {
        *gm = t2_train_model_view(lr->tr);
        return 0;
    }
    sync_expert(lr);
    const t2_expert *ex[1] = {lr->e};
    const float one = 1.0f;
    t2_mixture mix = {1, ex, &one, 1, 0};
    *gm = m;
    return t2_adapt_new(ad, lr->f, &mix, T2_APPLY_MERGED, pool);
}

/* ---- rollouts and evaluation ---- */

/* Generate (shared/task_eval.h: sampling seed by the item's index in the set and `seed`, so
 * any rank count gives the same samples) and score items idx[0..n) of a set; correct[k] gets
 * 0/1 and res (n entries, owned by the caller afterwards) the generations. */
static int gen_score(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                     const t2_adapt *ad, const t2_task_set *set, const size_t *idx, int n,
                     const t2_teval_params *tp, uint64_t seed, t2_gen_result *res, int *correct) {
    t2_teval_params p = *tp;
    p.adapt = ad;
    p.seed = seed;
    t2_teval_result r;
    int rc = t2_task_eval(m, tok, pool, set, idx, n, NULL, &p, &r);
    if (rc < 0) return rc;
    for (int k = 0; k < n; k++) {
        if (r.items[k].score_rc < 0) {
            rc = t2_err_set(r.items[k].score_rc, "%s: scoring failed: %s",
                            t2_task_set_item(set, idx[k])->id, r.items[k].score.detail);
            break;
        }
        correct[k] = r.items[k].correct;
    }
    if (rc == 0) { /* hand the generations over */
        memcpy(res, r.gen, (size_t)n * sizeof *res);
        memset(r.gen, 0, (size_t)n * sizeof *r.gen);
    }
    t2_teval_result_free(&r);
    return rc;
}

/* Greedy validation accuracy (into *acc), items split over the ranks. */
static int validate(learner *lr, const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                    const item_list *val, const t2_teval_params *tp0, int rank, int nranks,
                    double *acc) {
    const int lo = (int)((int64_t)val->n * rank / nranks);
    const int hi = (int)((int64_t)val->n * (rank + 1) / nranks);
    int n = hi - lo, ok = 0;
    t2_teval_params tp = *tp0;
    tp.temperature = 0;
    const t2_model *gm;
    t2_adapt *ad = NULL;
    t2_gen_result *res = calloc((size_t)(n ? n : 1), sizeof *res);
    int *cor = calloc((size_t)(n ? n : 1), sizeof *cor);
    int rc = !res || !cor ? t2_err_set(T2_ENOMEM, "out of memory") : 0;
    if (rc == 0 && (rc = current_policy(lr, m, pool, &gm, &ad)) == 0)
        rc = gen_score(gm, tok, pool, ad, val->set, val->idx + lo, n, &tp, 0, res, cor);
    if (rc < 0) {
        if (res && cor) rc = t2_err_prefix(rc, "validation");
        t2_adapt_release(&ad);
        free(res);
        free(cor);
        return rc;
    }
    for (int i = 0; i < n; i++) ok += cor[i];
    t2_gen_results_free(res, n);
    t2_adapt_release(&ad);
    free(res);
    free(cor);
    int tot = 0;
    MPI_Allreduce(&ok, &tot, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    *acc = val->n ? (double)tot / val->n : 0.0;
    return 0;
}

/* ---- the log ---- */

typedef struct {
    int step;
    double reward, acc, loss, kl, gnorm, val, tps, elapsed;
} svf_row;

/* A number, or nothing when there is none (step 0 has no rollout, most steps no validation). */
static void csv_num(FILE *f, const char *fmt, double v) {
    if (isfinite(v)) fprintf(f, fmt, v);
    fputc(',', f);
}

static void csv_row(FILE *f, const svf_row *r) {
    fprintf(f, "%d,", r->step);
    csv_num(f, "%.6f", r->reward);
    csv_num(f, "%.6f", r->acc);
    csv_num(f, "%.6g", r->loss);
    csv_num(f, "%.6g", r->kl);
    csv_num(f, "%.6g", r->gnorm);
    csv_num(f, "%.6f", r->val);
    fprintf(f, "%.1f,%.3f\n", r->tps, r->elapsed);
}

static int write_plot(const char *path, const svf_row *rows, int n, const char *title) {
    double *x = malloc(sizeof(double) * (size_t)(n + 1) * 2);
    double *y = malloc(sizeof(double) * (size_t)(n + 1) * 2);
    if (!x || !y) {
        free(x), free(y);
        return t2_err_set(T2_ENOMEM, "out of memory for the plot");
    }
    int nv = 0;
    for (int i = 0; i < n; i++) x[i] = rows[i].step, y[i] = rows[i].acc;
    for (int i = 0; i < n; i++)
        if (isfinite(rows[i].val)) x[n + nv] = rows[i].step, y[n + nv] = rows[i].val, nv++;
    cli_series s[2] = {{"train reward > 0 (sampled)", "#1f77b4", x, y, n},
                       {"validation accuracy (greedy)", "#d62728", x + n, y + n, nv}};
    int rc = cli_plot_svg(path, title, "step", "accuracy", s, 2);
    free(x);
    free(y);
    return rc;
}

/* ---- the command ---- */

static const struct option svf_long_opts[] = {
    {"model", required_argument, 0, 'm'},      {"tokenizer", required_argument, 0, 'z'},
    {"factors", required_argument, 0, 1},      {"task", required_argument, 0, 2},
    {"output", required_argument, 0, 'o'},     {"name", required_argument, 0, 3},
    {"targets", required_argument, 0, 4},      {"steps", required_argument, 0, 'n'},
    {"batch", required_argument, 0, 'b'},      {"lr", required_argument, 0, 5},
    {"kl", required_argument, 0, 6},           {"clip", required_argument, 0, 7},
    {"beta1", required_argument, 0, 8},        {"beta2", required_argument, 0, 9},
    {"p-init", required_argument, 0, 10},      {"max-mult", required_argument, 0, 11},
    {"temperature", required_argument, 0, 't'}, {"max-tokens", required_argument, 0, 12},
    {"eval-every", required_argument, 0, 13},  {"val-n", required_argument, 0, 14},
    {"train-n", required_argument, 0, 15},     {"all-questions", no_argument, 0, 16},
    {"lora", required_argument, 0, 17},        {"lora-alpha", required_argument, 0, 18},
    {"seed", required_argument, 0, 's'},       {"threads", required_argument, 0, 'j'},
    {"data", required_argument, 0, 19},        {"csv", required_argument, 0, 20},
    {"svg", required_argument, 0, 21},         {"log-every", required_argument, 0, 22},
    {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};

/* Option c (its value in optarg) into o: -1 to go on, else the exit status (0 after --help,
 * 2 for a bad value, the message printed). */
static int svf_opt(svf_opts *o, int c) {
    const char *cmd = "svf";
    switch (c) {
    case 'm': o->model = optarg; break;
    case 'z': o->tok = optarg; break;
    case 1: o->factors = optarg; break;
    case 2: o->task = optarg; break;
    case 'o': o->out = optarg; break;
    case 3: o->name = optarg; break;
    case 4: o->targets_s = optarg; break;
    case 'n': if (cli_int(cmd, "--steps", optarg, 1, 1 << 24, &o->steps)) return 2; break;
    case 'b': if (cli_int(cmd, "--batch", optarg, 1, 1 << 16, &o->batch)) return 2; break;
    case 5: if (cli_float(cmd, "--lr", optarg, 0, 10, &o->lr)) return 2; break;
    case 6: if (cli_float(cmd, "--kl", optarg, 0, 1000, &o->kl)) return 2; break;
    case 7: if (cli_float(cmd, "--clip", optarg, 0, 1e9, &o->clip)) return 2; break;
    case 8: if (cli_float(cmd, "--beta1", optarg, 0, 0.999999, &o->beta1)) return 2; break;
    case 9: if (cli_float(cmd, "--beta2", optarg, 0, 0.999999, &o->beta2)) return 2; break;
    case 10: if (cli_float(cmd, "--p-init", optarg, -100, 100, &o->p_init)) return 2; break;
    case 11:
        if (cli_float(cmd, "--max-mult", optarg, 1e-3, 1000, &o->max_mult)) return 2;
        break;
    case 't': if (cli_float(cmd, "--temperature", optarg, 1e-3, 100, &o->temp)) return 2; break;
    case 12:
        if (cli_int(cmd, "--max-tokens", optarg, 1, 1 << 16, &o->max_tokens)) return 2;
        break;
    case 13:
        if (cli_int(cmd, "--eval-every", optarg, 0, 1 << 24, &o->eval_every)) return 2;
        break;
    case 14: if (cli_int(cmd, "--val-n", optarg, 1, 1 << 20, &o->val_n)) return 2; break;
    case 15: if (cli_int(cmd, "--train-n", optarg, 1, 1 << 22, &o->train_n)) return 2; break;
    case 16: o->all_questions = 1; break;
    case 17: if (cli_int(cmd, "--lora", optarg, 1, 4096, &o->lora)) return 2; break;
    case 18:
        if (cli_float(cmd, "--lora-alpha", optarg, 1e-6, 1e6, &o->lora_alpha)) return 2;
        break;
    case 's': if (cli_u64(cmd, "--seed", optarg, &o->seed)) return 2; break;
    case 'j':
        if (cli_int(cmd, "--threads", optarg, 1, T2_POOL_MAX_THREADS, &o->threads)) return 2;
        break;
    case 19: o->data = optarg; break;
    case 20: o->csv = optarg; break;
    case 21: o->svg = optarg; break;
    case 22: if (cli_int(cmd, "--log-every", optarg, 1, 1 << 24, &o->log_every)) return 2; break;
    case 'h': fputs(svf_help, stdout); return 0;
    default: return cli_usage_error(cmd, "bad option");
    }
    return -1;
}

/* The command line into o: -1 to go on, else the exit status. */
static int svf_parse(int argc, char **argv, svf_opts *o) {
    const char *cmd = "svf";
    *o = (svf_opts){.steps = 200, .batch = 64, .eval_every = 10, .val_n = 200, .train_n = 4000,
                    .lr = 2e-3f, .clip = 1.0f, .beta1 = 0.9f, .beta2 = 0.999f, .p_init = 0.1f,
                    .max_mult = 1.0f, .temp = 1.0f, .seed = 1, .targets_s = "mlp"};
    int c, r;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:o:n:b:t:s:j:h", svf_long_opts, NULL)) != -1)
        if ((r = svf_opt(o, c)) >= 0) return r;
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->model) return cli_usage_error(cmd, "no model: give -m MODEL");
    if (!o->task) return cli_usage_error(cmd, "no task: give --task FAMILY (t2 tasks list)");
    const t2_task_family *fam = t2_task_family_find(o->task);
    if (!fam) return cli_usage_error(cmd, "--task: unknown family '%s' (t2 tasks list)", o->task);
    if (!o->out) return cli_usage_error(cmd, "no output: give -o OUT.gguf");
    if (!o->factors && !o->lora)
        return cli_usage_error(cmd, "no factors: give --factors F.gguf (t2 decompose)");
    unsigned tg;
    if (t2_targets_parse(o->targets_s, &tg) < 0)
        return cli_usage_error(cmd, "--targets: %s", t2_err_msg());
    if (!o->max_tokens) o->max_tokens = fam->kind == T2_KIND_REAL ? 256 : 32;
    return -1;
}

/* Everything a training run holds, from set-up to the output. */
typedef struct {
    const svf_opts *o;
    int rank, nranks, threads, is_tty, log_every;
    unsigned targets;
    int share_lo, share, max_T; /* the rank's share of the global batch: [share_lo, +share) */
    t2_model *m;
    t2_tokenizer *tok;
    t2_pool *pool;
    learner L;
    float *params, *g; /* the trainable values and their gradients (ng) */
    size_t ng;
    item_list train, val;
    int *in, *tgt, *cor; /* (share, max_T) tokens of a batch, (share) rewards */
    float *wts, *ref;    /* (share, max_T) weights, KL reference probabilities */
    size_t *pick;        /* (batch) items of the global draw */
    t2_gen_result *res;  /* (share) rollouts */
    t2_teval_params gp, gv; /* rollouts, validation */
    t2_adamw_opts ao;
    t2_rand rng;
    FILE *csv; /* rank 0: the log */
    char *csv_path, *svg_path;
    svf_row *rows;
    int n_rows;
    double t_run, best_val, val_acc;
    int best_step, step, stopped;
    int64_t gen_total;
} svf_run;

/* The threads, the model and a trainer for the rank's share of the batch. */
static int svf_load(svf_run *s) {
    const svf_opts *o = s->o;
    int rc;
    s->threads = o->threads ? o->threads : t2_nproc() / s->nranks;
    if (s->threads < 1) s->threads = 1;
    if (t2_pool_new(&s->pool, s->threads) < 0) return t2_err_set(T2_ENOMEM, "out of memory");
    if ((rc = t2_model_load(&s->m, o->model)) < 0 ||
        (rc = t2_model_load_tokenizer(&s->tok, s->m, o->tok)) < 0)
        return rc;
    s->share_lo = (int)((int64_t)o->batch * s->rank / s->nranks);
    s->share = (int)((int64_t)o->batch * (s->rank + 1) / s->nranks) - s->share_lo;
    s->max_T = s->m->cfg.seq_len;
    return t2_train_from_model(&s->L.tr, s->m, s->share, s->max_T);
}

/* SVF mode: the factors of the targets, the trainer's SVF mode and the expert it trains. */
static int svf_enable(svf_run *s) {
    const svf_opts *o = s->o;
    const t2_config *cfg = &s->m->cfg;
    learner *L = &s->L;
    int rc;
    if ((rc = t2_factors_load(&L->f, o->factors, s->m)) < 0) return rc;
    if (s->targets & ~L->f->targets) {
        char a[128], b[128];
        return t2_err_set(T2_EINVAL, "--targets %s: the factors %s hold only %s",
                          t2_targets_str(s->targets, a, sizeof a), o->factors,
                          t2_targets_str(L->f->targets, b, sizeof b));
    }
    int nt = 0;
    for (int l = 0; l < cfg->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) nt += !!(s->targets & (1u << k));
    if (!(L->sf = calloc((size_t)nt, sizeof *L->sf))) return t2_err_set(T2_ENOMEM, "out of memory");
    int i = 0;
    for (int l = 0; l < cfg->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            if (!(s->targets & (1u << k))) continue;
            const t2_svd *d = t2_factors_get(L->f, l, k);
            L->sf[i++] = (t2_svf_factors){l, k, d->rows, d->cols, d->rank, d->U, d->S, d->Vt};
        }
    t2_svf_opts so;
    t2_svf_opts_default(&so);
    so.targets = s->targets;
    so.max_mult = o->max_mult;
    so.p_init = o->p_init;
    if ((rc = t2_train_svf_enable(L->tr, &so, L->sf, nt)) < 0) return rc;
    const char *name = o->name ? o->name : o->task;
    return t2_expert_init(&L->e, L->f, s->targets, name, o->task, o->p_init, 0, 0, o->max_mult);
}

/* The learner (LoRA or SVF), its reference copies, the items and the batch buffers. */
static int svf_setup(svf_run *s) {
    const svf_opts *o = s->o;
    learner *L = &s->L;
    int rc;
    if (o->lora && s->m->cfg.arch != T2_ARCH_LLAMA) /* its rollouts use the trainer's view */
        return t2_err_set(T2_EUNSUPPORTED, "--lora: LoRA baselines are for llama models; this "
                          "is %s (SVF experts work)", t2_arch_name(s->m->cfg.arch));
    if (o->lora) rc = t2_lora_new(&L->lora, L->tr, s->targets, o->lora, o->lora_alpha, o->seed);
    else rc = svf_enable(s);
    if (rc < 0) return rc;
    s->params = trainable(L, &L->n);
    s->g = grads(L, &s->ng);
    if (!(L->saved = malloc(L->n * sizeof(float))) || !(L->best = malloc(L->n * sizeof(float))) ||
        !(L->base_p = malloc(L->n * sizeof(float))))
        return t2_err_set(T2_ENOMEM, "out of memory");
    memcpy(L->base_p, s->params, L->n * sizeof(float)); /* uniform p / LoRA B = 0: the base */
    memcpy(L->best, s->params, L->n * sizeof(float));
    const int real = t2_task_family_find(o->task)->kind == T2_KIND_REAL;
    if ((rc = items_open(&s->train, o, T2_SPLIT_TRAIN, T2_SPLIT_TRAIN, real ? 0 : o->train_n)) < 0)
        return t2_err_prefix(rc, "training items");
    if ((rc = items_open(&s->val, o, T2_SPLIT_VALIDATION, T2_SPLIT_TEST, o->val_n)) < 0)
        return t2_err_prefix(rc, "validation items");
    if (s->val.n > o->val_n) s->val.n = o->val_n;
    size_t cap_tok = (size_t)s->share * s->max_T;
    s->in = malloc(cap_tok * sizeof(int));
    s->tgt = malloc(cap_tok * sizeof(int));
    s->wts = malloc(cap_tok * sizeof(float));
    s->cor = malloc((size_t)s->share * sizeof(int));
    s->pick = malloc((size_t)o->batch * sizeof *s->pick);
    s->res = calloc((size_t)s->share, sizeof *s->res);
    if (o->kl > 0) s->ref = malloc(cap_tok * (size_t)s->m->cfg.vocab_size * sizeof(float));
    if (!s->in || !s->tgt || !s->wts || !s->cor || !s->pick || !s->res || (o->kl > 0 && !s->ref))
        return t2_err_set(T2_ENOMEM, "out of memory");
    t2_teval_params_default(&s->gp);
    s->gp.max_tokens = o->max_tokens;
    s->gp.temperature = o->temp;
    s->gp.batch = s->share < T2_MAX_SEQS ? s->share : T2_MAX_SEQS;
    s->gp.score_threads = s->threads;
    s->gv = s->gp;
    s->gv.batch = 32;
    return 0;
}

/* Rank 0: the log's and plot's paths, the log's header and the run's description. */
static int svf_log_open(svf_run *s) {
    const svf_opts *o = s->o;
    size_t ol = strlen(o->out);
    s->csv_path = malloc(ol + 8);
    s->svg_path = malloc(ol + 8);
    if (!s->csv_path || !s->svg_path) return t2_err_set(T2_ENOMEM, "out of memory");
    snprintf(s->csv_path, ol + 8, "%s.csv", o->out);
    snprintf(s->svg_path, ol + 8, "%s.svg", o->out);
    if (o->csv) {
        free(s->csv_path);
        s->csv_path = strdup(o->csv);
    }
    if (o->svg) {
        free(s->svg_path);
        s->svg_path = strdup(o->svg);
    }
    if (!s->csv_path || !s->svg_path) return t2_err_set(T2_ENOMEM, "out of memory");
    if (!(s->csv = fopen(s->csv_path, "w")))
        return t2_err_set(T2_EIO, "%s: cannot write: %s", s->csv_path, strerror(errno));
    fprintf(s->csv, "step,reward,train_acc,loss,kl,grad_norm,val_acc,tokens_per_s,elapsed\n");
    char ts[128];
    char what[160];
    if (o->lora)
        snprintf(what, sizeof what, "rank-%d LoRA adapters on the %s matrices", o->lora,
                 t2_targets_str(s->targets, ts, sizeof ts));
    else
        snprintf(what, sizeof what, "SVF expert: singular-value scales of the %s matrices",
                 t2_targets_str(s->targets, ts, sizeof ts));
    fprintf(stderr, "t2 svf: %s: %s, %zu trainable numbers; %d train / %d validation items; "
            "%d rank%s x %d thread%s, batch %d, lr %g, kl %g, clip %g, temperature %g, "
            "seed %llu\n", o->task, what, s->L.n, s->train.n, s->val.n, s->nranks,
            s->nranks > 1 ? "s" : "", s->threads, s->threads > 1 ? "s" : "", o->batch,
            (double)o->lr, (double)o->kl, (double)o->clip, (double)o->temp,
            (unsigned long long)o->seed);
    return 0;
}

/* Step 0: the base model's validation accuracy, the first row of the log. */
static int svf_step0(svf_run *s) {
    int rc = validate(&s->L, s->m, s->tok, s->pool, &s->val, &s->gv, s->rank, s->nranks,
                      &s->best_val);
    if (rc < 0 || s->rank) return rc;
    svf_row r = {0, NAN, NAN, NAN, NAN, NAN, s->best_val, 0, t2_now() - s->t_run};
    fprintf(stderr, "t2 svf: step 0 (base): validation accuracy %.4f\n", s->best_val);
    csv_row(s->csv, &r);
    s->rows = malloc(sizeof *s->rows * (size_t)(s->o->steps + 2));
    if (!s->rows) return t2_err_set(T2_ENOMEM, "out of memory");
    s->rows[s->n_rows++] = r;
    return 0;
}

/* The rollouts of a step: the same global draw on every rank, the rank's share sampled and
 * scored, then the batch (inputs tokens[0..len-1), targets the answer tokens, weight = the
 * reward) of T tokens a sequence. */
static int svf_rollout(svf_run *s, int *T_out, int64_t *gen_tok, int *correct) {
    const svf_opts *o = s->o;
    const item_list *train = &s->train;
    for (int i = 0; i < o->batch; i++) { /* distinct items (each samples by its own seed) */
        int dup;
        do {
            s->pick[i] = train->idx[t2_rand_below(&s->rng, (uint64_t)train->n)];
            dup = 0;
            for (int j = 0; j < i && train->n >= o->batch; j++) dup |= s->pick[j] == s->pick[i];
        } while (dup);
    }
    const uint64_t gseed = o->seed * 0x100000001B3ull + (uint64_t)s->step * 0xD1B54A32D192ED03ull;
    const t2_model *gm;
    t2_adapt *ad = NULL;
    int rc = current_policy(&s->L, s->m, s->pool, &gm, &ad);
    if (rc == 0)
        rc = gen_score(gm, s->tok, s->pool, ad, train->set, s->pick + s->share_lo, s->share,
                       &s->gp, gseed, s->res, s->cor);
    t2_adapt_release(&ad);
    if (rc < 0) return rc;
    int T = 1;
    *gen_tok = 0;
    for (int b = 0; b < s->share; b++) {
        int len = s->res[b].n_prompt + s->res[b].n_gen - 1;
        if (len > T) T = len;
        *gen_tok += s->res[b].n_gen;
    }
    if (T > s->max_T) T = s->max_T;
    *correct = 0;
    for (int b = 0; b < s->share; b++) {
        const t2_gen_result *r = &s->res[b];
        const float reward = s->cor[b] ? 1.0f : -1.0f;
        *correct += s->cor[b];
        for (int t = 0; t < T; t++) {
            size_t at = (size_t)b * T + t;
            int have = !r->error && t + 1 < r->n_prompt + r->n_gen;
            s->in[at] = have ? r->tokens[t] : 0;
            s->tgt[at] = have && t + 1 >= r->n_prompt ? r->tokens[t + 1] : -1;
            s->wts[at] = reward;
        }
    }
    t2_gen_results_free(s->res, s->share);
    *T_out = T;
    return 0;
}

/* The gradient of the batch's loss (and, with --kl, the KL to the base weights' output). */
static int svf_backprop(svf_run *s, int T, float *loss, double *kl) {
    const svf_opts *o = s->o;
    learner *L = &s->L;
    int rc;
    if (L->lora) {
        t2_lora_zero_grad(L->lora);
        t2_train_zero_grad(L->tr);
    } else {
        t2_train_zero_grad(L->tr);
    }
    if (o->kl > 0) { /* the reference: the same batch through the base weights */
        memcpy(L->saved, s->params, L->n * sizeof(float));
        memcpy(s->params, L->base_p, L->n * sizeof(float));
        if (L->lora) t2_lora_apply(L->lora, s->pool);
        if ((rc = t2_train_forward(L->tr, s->pool, s->in, s->tgt, s->wts, s->share, T,
                                   (float)o->batch, NULL)) < 0)
            return rc;
        memcpy(s->ref, t2_train_probs(L->tr),
               (size_t)s->share * T * s->m->cfg.vocab_size * sizeof(float));
        memcpy(s->params, L->saved, L->n * sizeof(float));
        if (L->lora) t2_lora_apply(L->lora, s->pool);
    }
    if ((rc = t2_train_forward(L->tr, s->pool, s->in, s->tgt, s->wts, s->share, T,
                               (float)o->batch, loss)) < 0 ||
        (o->kl > 0 && (rc = t2_train_set_kl(L->tr, s->ref, o->kl, kl)) < 0) ||
        (rc = t2_train_backward(L->tr, s->pool)) < 0)
        return rc;
    if (L->lora) t2_lora_grads(L->lora, s->pool);
    return 0;
}

/* Rank 0: the step's row in the log and its progress line. */
static void svf_log_step(svf_run *s, const double sum[5], float gnorm, double t0) {
    const svf_opts *o = s->o;
    const int step = s->step;
    double now = t2_now(), dt = now - t0;
    svf_row r = {step, (2.0 * sum[2] - o->batch) / o->batch, sum[2] / o->batch, sum[0],
                 sum[1], gnorm, s->val_acc, sum[3] / (dt > 0 ? dt : 1e-9), now - s->t_run};
    csv_row(s->csv, &r);
    fflush(s->csv);
    s->rows[s->n_rows++] = r;
    char eta[32], vs[32] = "";
    cli_fmt_time(eta, sizeof eta, (now - s->t_run) / step * (o->steps - step));
    if (isfinite(s->val_acc)) snprintf(vs, sizeof vs, "  val %.3f", s->val_acc);
    if (s->is_tty) {
        fprintf(stderr, "\r\033[Kstep %d/%d  reward %+.3f  train acc %.3f%s  best %.3f@%d  "
                "|g| %.3f  ETA %s", step, o->steps, r.reward, r.acc, vs, s->best_val,
                s->best_step, gnorm, eta);
        if (isfinite(s->val_acc) || step == o->steps) fputc('\n', stderr);
    } else if (step % s->log_every == 0 || step == o->steps || step == 1 ||
               isfinite(s->val_acc)) {
        fprintf(stderr, "t2 svf: step %d/%d reward %+.3f train_acc %.3f%s best %.3f@%d "
                "loss %.4f kl %.4g grad_norm %.3f ETA %s\n", step, o->steps, r.reward,
                r.acc, vs, s->best_val, s->best_step, r.loss, r.kl, gnorm, eta);
    }
}

/* One optimiser step: rollouts, gradient summed over the ranks, clip, update, and validation
 * when due (keeping the best parameters). */
static int svf_step(svf_run *s) {
    const svf_opts *o = s->o;
    learner *L = &s->L;
    double t0 = t2_now(), kl = 0;
    int T, correct, rc;
    int64_t gen_tok;
    float loss = 0;
    if ((rc = svf_rollout(s, &T, &gen_tok, &correct)) < 0 ||
        (rc = svf_backprop(s, T, &loss, &kl)) < 0)
        return t2_err_prefix(rc, "step %d", s->step + 1);
    double red[5] = {loss + o->kl * kl, kl, correct, (double)gen_tok, g_stop ? 1 : 0}, sum[5];
    MPI_Allreduce(red, sum, 5, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (s->nranks > 1)
        MPI_Allreduce(MPI_IN_PLACE, s->g, (int)s->ng, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    float gnorm;
    if (L->lora) {
        gnorm = t2_lora_clip_grad(L->lora, o->clip);
        t2_lora_update(L->lora, o->lr, &s->ao);
        t2_lora_apply(L->lora, s->pool);
    } else {
        gnorm = t2_train_clip_grad(L->tr, o->clip);
        if ((rc = t2_train_update(L->tr, o->lr, &s->ao)) < 0) return rc;
    }
    s->step++;
    s->gen_total += (int64_t)sum[3];
    s->stopped = sum[4] > 0;
    s->val_acc = NAN;
    if ((o->eval_every && s->step % o->eval_every == 0) || s->step == o->steps || s->stopped) {
        if ((rc = validate(L, s->m, s->tok, s->pool, &s->val, &s->gv, s->rank, s->nranks,
                           &s->val_acc)) < 0)
            return rc;
        if (s->val_acc > s->best_val) {
            s->best_val = s->val_acc;
            s->best_step = s->step;
            memcpy(L->best, s->params, L->n * sizeof(float));
        }
    }
    if (s->rank == 0) svf_log_step(s, sum, gnorm, t0);
    return 0;
}

/* Rank 0: the best parameters written (the merged model with LoRA, else the expert with the
 * training record), the plot and the closing line. */
static int svf_write(svf_run *s) {
    const svf_opts *o = s->o;
    learner *L = &s->L;
    char rec[512], ts[128];
    snprintf(rec, sizeof rec, "t2 svf --task %s: REINFORCE, %d of %d steps, batch %d, lr %g, "
             "kl %g, clip %g, temperature %g, Adam(%g, %g), p_init %g, seed %llu, %d rank%s; "
             "best validation accuracy %.4f at step %d (base %.4f, %d items)", o->task, s->step,
             o->steps, o->batch, (double)o->lr, (double)o->kl, (double)o->clip,
             (double)o->temp, (double)o->beta1, (double)o->beta2, (double)o->p_init,
             (unsigned long long)o->seed, s->nranks, s->nranks > 1 ? "s" : "", s->best_val,
             s->best_step, s->rows[0].val, s->val.n);
    int rc;
    if (L->lora) {
        t2_lora_apply(L->lora, s->pool);
        char name[128];
        snprintf(name, sizeof name, "lora-%d-%s", o->lora, o->task);
        if ((rc = t2_model_save_gguf(t2_train_model_view(L->tr), s->tok, T2_F32, name,
                                     o->out)) < 0)
            return rc;
    } else {
        sync_expert(L);
        free(L->e->training);
        L->e->training = strdup(rec);
        if (!L->e->training) return t2_err_set(T2_ENOMEM, "out of memory");
        if ((rc = t2_expert_save(L->e, o->out)) < 0) return rc;
    }
    fclose(s->csv);
    s->csv = NULL;
    char title[256];
    snprintf(title, sizeof title, "t2 svf --task %s (%s, %s)", o->task,
             o->lora ? "LoRA" : "SVF", t2_targets_str(s->targets, ts, sizeof ts));
    if (write_plot(s->svg_path, s->rows, s->n_rows, title) < 0)
        fprintf(stderr, "t2 svf: plot: %s\n", t2_err_msg());
    fprintf(stderr, "t2 svf: wrote %s (best validation accuracy %.4f at step %d; base %.4f)%s; "
            "log %s, plot %s; %lld tokens sampled in %.1f s\n", o->out, s->best_val,
            s->best_step, s->rows[0].val, s->best_step == 0 ? " - no step beat the base model, "
            "so the output leaves it unchanged" : "", s->csv_path, s->svg_path,
            (long long)s->gen_total, t2_now() - s->t_run);
    return 0;
}

static void svf_run_free(svf_run *s) {
    if (s->csv) fclose(s->csv);
    free(s->rows);
    free(s->csv_path);
    free(s->svg_path);
    free(s->in);
    free(s->tgt);
    free(s->wts);
    free(s->cor);
    free(s->pick);
    free(s->res);
    free(s->ref);
    items_free(&s->train);
    items_free(&s->val);
    free(s->L.saved);
    free(s->L.best);
    free(s->L.base_p);
    free(s->L.sf);
    t2_expert_destroy(&s->L.e);
    t2_lora_destroy(&s->L.lora);
    t2_train_destroy(&s->L.tr);
    t2_factors_destroy(&s->L.f);
    t2_pool_destroy(&s->pool);
    t2_tok_destroy(&s->tok);
    t2_model_destroy(&s->m);
}

/* Set up, train (until --steps or a signal), write the best: 0, 130 when interrupted, or < 0
 * with the message set (t2_cmd_svf stops every rank). */
static int svf_train(svf_run *s) {
    const svf_opts *o = s->o;
    int rc;
    if ((rc = svf_load(s)) < 0 || (rc = svf_setup(s)) < 0) return rc;
    if (s->rank == 0 && (rc = svf_log_open(s)) < 0) return rc;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    s->ao = (t2_adamw_opts){o->beta1, o->beta2, 1e-8f, 0.0f};
    t2_rand_seed(&s->rng, o->seed);
    s->log_every = o->log_every ? o->log_every : (o->steps >= 20 ? o->steps / 20 : 1);
    s->t_run = t2_now();
    s->best_val = -1.0;
    s->val_acc = NAN;
    if ((rc = svf_step0(s)) < 0) return rc;
    while (s->step < o->steps && !s->stopped)
        if ((rc = svf_step(s)) < 0) return rc;
    if (s->stopped && s->rank == 0) fprintf(stderr, "t2 svf: interrupted at step %d\n", s->step);
    memcpy(s->params, s->L.best, s->L.n * sizeof(float));
    if (s->rank == 0 && (rc = svf_write(s)) < 0) return rc;
    return s->stopped ? 130 : 0;
}

int t2_cmd_svf(int argc, char **argv) {
    svf_opts o;
    int rc = svf_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    int rank = 0, nranks = 1, inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "t2 svf: MPI_Init failed\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (o.batch < nranks) {
        if (rank == 0)
            fprintf(stderr, "t2 svf: --batch %d is smaller than the %d ranks\n", o.batch, nranks);
        MPI_Finalize();
        return 2;
    }
    svf_run s = {.o = &o, .rank = rank, .nranks = nranks, .is_tty = isatty(2)};
    t2_targets_parse(o.targets_s, &s.targets);
    rc = svf_train(&s);
    if (rc < 0) {
        fail_all_ranks(rank, nranks, t2_err_msg()); /* returns only to a single process */
        rc = 1;
    }
    svf_run_free(&s);
    MPI_Finalize();
    return rc;
}
