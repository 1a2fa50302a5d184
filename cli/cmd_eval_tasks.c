/* t2 eval: accuracy of a model (optionally adapted with SVF experts) on task families, with the
 * Transformer² adaptation strategies measured like the paper.
 *
 *   t2 eval -m models/t2-base.gguf --task math,code,mc --n 500
 *   t2 eval -m models/t2-base.gguf --task math,code,mc --strategy prompt --factors F.gguf \
 *           --experts experts/
 *
 * Each item's prompt is given as PROMPT "\n" (T2_TASK_SEP); the answer is generated with
 * continuous batching and scored by the family's scorer (shared/task_eval.h; code families of
 * real data run their sandboxes -j at a time, after generation). --strategy picks each item's
 * adaptation (cli/strategy.h): none, a pass 1 that classifies the prompt (prompt / classifier:
 * the label selects an expert), or a task profile. The table (accuracy, 95 % Wilson interval,
 * the wall time of pass 1 and pass 2 per family), pass 1's confusion matrix and a summary line go
 * to stdout; per-item rows to --csv.
 */
#include "cli.h"

#include "adapt_opts.h"
#include "engine/generate.h"
#include "engine/kernels.h"
#include "engine/model.h"
#include "base/platform.h"
#include "base/pool.h"
#include "strategy.h"
#include "base/t2_err.h"
#include "tasks/label_score.h"
#include "tasks/task_eval.h"
#include "tasks/tasks.h"
#include "engine/tokenizer.h"
#include "eval_mc.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char eval_help[] =
    "usage: t2 eval -m MODEL --task FAMILY[,FAMILY...] [--split S] [--n N] [--seed S]\n"
    "               [--expert E | --mix ... --factors F] [--batch B] [-j T] [--csv FILE]\n"
    "               [--max-tokens N] [-z TOK] [options]\n"
    "       t2 eval -m MODEL --task ... --strategy prompt|classifier|profile:FILE\n"
    "               --factors F [--experts DIR] [--classifier NAME] [--labels MAP] [options]\n\n"
    "Accuracy of a model on task families (t2 tasks list): each item's prompt is given as\n"
    "PROMPT + newline, the answer is generated (greedy by default) with up to B sequences in\n"
    "flight, and scored by the family's scorer. Prints a table with the accuracy and its 95 %\n"
    "Wilson interval, and a summary line.\n\n"
    "  -m, --model MODEL      model file (GGUF or llama2.c)\n"
    "  -z, --tokenizer FILE   llama2.c tokenizer.bin (default: the one embedded in a GGUF)\n"
    "      --task LIST        family names, comma-separated (math, code, mc, gsm8k, ...)\n"
    "      --split S          train, validation, test (default) or all\n"
    "      --n N              items per family: synthetic default 200; real default all rows\n"
    "      --seed S           seed of the synthetic item draw and of sampling (default 1)\n"
    "      --batch B          sequences in flight (default 8, at most 256)\n"
    "  -j, --threads T        threads for generation and sandboxes (default: online CPUs)\n"
    "      --max-tokens N     new tokens per answer (default 32 synthetic, 256 real)\n"
    "      --stop MODE        newline (end at the first newline; default for synthetic),\n"
    "                         blank (at an empty line; default for real data) or none\n"
    "  -t, --temperature T    0 = greedy (default 0)\n"
    "      --top-p P          nucleus threshold for T > 0 (default 1 = off)\n"
    "      --csv FILE         per item: id,family,correct,extracted,gen_tokens,stop,strategy,\n"
    "                         label,expert,generation\n"
    "      --data DIR         real data sets folder (default $T2_DATA, $T2_ASSETS/data,\n"
    "                         ../shared/assets/data)\n"
    "      --timeout S        code families: sandbox limit per program (default 10)\n"
    "  -v, --verbose          print every item (id, verdict, extracted answer, generation)\n"
    "      --score S          gen (default: generate and score the answer) or loglik\n"
    "                         (multiple-choice families: arc-easy, arc-challenge, mc, mc-hard;\n"
    "                         no generation: each choice's log-likelihood as a continuation,\n"
    "                         the table gives the accuracy by its sum, per token, per byte\n"
    "                         (char), the answer-only control (uncond) and PMI = sum - uncond;\n"
    "                         --csv: id,family,correct,pred,answer,n_choices,correct_<score>...)\n"
    "      --norm N           loglik: the score of the csv's correct column and the summary\n"
    "                         (sum, token, char (default), uncond, pmi)\n"
    "      --choices-csv FILE loglik: per choice: id,family,choice,is_answer,bytes,tokens,sum,\n"
    "                         uncond_tokens,uncond,text_tokens,uncond_text_tokens\n"
    "      --prompts P        controls (docs/RESULTS.md): plain (default: the family's prompt),\n"
    "                         cued (the prompt with the cue the family leaves out, for the\n"
    "                         target reading: the upper bound; synthetic families with cued\n"
    "                         readings only) or shots:K (K training-split documents, drawn\n"
    "                         with --seed, before every prompt: few-shot prompting)\n"
    CLI_ADAPT_HELP
    "\nstrategies (two-pass inference, docs/DESIGN.md section 1; experts are DIR/NAME.gguf):\n"
    "  --strategy S           none (default: base weights or --expert/--mix),\n"
    "                         prompt (pass 1: the base model labels \"Classify: PROMPT\"\n"
    "                         (--pass1); the label picks the expert, other = base weights;\n"
    "                         pass 2: the answer with that expert),\n"
    "                         classifier (the same, pass 1 run with the classifier expert),\n"
    "                         profile:FILE (the task profile's mixture, from t2 adapt, for every\n"
    "                         item; no pass 1)\n"
    "  --classifier NAME      the classifier expert (default classify)\n"
    "  --pass1 HOW            score (default: one prefill of the classification prompt and\n"
    "                         \\boxed{, which greedy decoding must have written, else other;\n"
    "                         the label chosen from the logits among the four labels' tokens)\n"
    "                         or generate (greedy, 24 tokens, stop at the newline; the\n"
    "                         \\boxed{label} of the text, no label = other)\n"
    "  --labels MAP           label -> expert, LABEL=NAME,... (an empty NAME: base weights);\n"
    "                         labels not named keep the default code=code,math=math,\n"
    "                         reasoning=mc,other=\n"
    "The table then has the wall time of pass 1 and pass 2 per family; prompt and classifier\n"
    "print pass 1's confusion matrix (rows: the items' true label, columns: the predicted one)\n"
    "and the classification accuracy of each family.\n"
    "\nA prompt that leaves too little room in the context for the answer (--max-tokens, at\n"
    "most half the context) is cut from the left, keeping BOS and its last tokens; the count\n"
    "is reported. Exit status 0 on success, 1 if something failed, 2 for a bad invocation.\n";

/* 95 % Wilson score interval for k successes in n trials. */
static void wilson(int k, int n, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    const double z = 1.959963984540054, p = (double)k / n, z2n = z * z / n;
    const double c = (p + z2n / 2) / (1 + z2n);
    const double h = z * sqrt(p * (1 - p) / n + z2n / (4.0 * n)) / (1 + z2n);
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

static const char *interval(int k, int n, char *buf, size_t cap) {
    double lo, hi;
    wilson(k, n, &lo, &hi);
    snprintf(buf, cap, "[%.1f, %.1f]%%", 100 * lo, 100 * hi);
    return buf;
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* One line of text for the terminal: newlines and tabs shown as \n \t, cut at `max` bytes. */
static void show(FILE *f, const char *s, size_t max) {
    size_t n = 0;
    for (; *s && n < max; s++, n++) {
        if (*s == '\n') fputs("\\n", f);
        else if (*s == '\t') fputs("\\t", f);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\x%02x", (unsigned char)*s);
        else fputc(*s, f);
    }
    if (*s) fputs("...", f);
}

/* ---- progress ---- */

typedef struct {
    const char *family, *what;
    int n, done, tty;
    double t0, last;
} progress;

static void on_done(void *ctx, int index, const t2_gen_result *r) {
    progress *p = ctx;
    (void)index;
    (void)r;
    p->done++;
    double now = t2_now();
    if (p->tty && (now - p->last > 0.2 || p->done == p->n)) {
        fprintf(stderr, "\r\033[Kt2 eval: %s: %d/%d %s (%.1f s)", p->family, p->done, p->n,
                p->what, now - p->t0);
        if (p->done == p->n) fputc('\n', stderr);
        p->last = now;
    }
}

/* ---- the command ---- */

typedef struct {
    const char *name;
    const char *split;
    int n, correct, failed, truncated, score_errors;
    int64_t prompt_tokens, gen_tokens;
    double gen_seconds, pass1_seconds, pass2_seconds;
    int conf[T2_LABEL_COUNT][T2_LABEL_COUNT]; /* pass 1: [true label][predicted] */
    int class_correct;
} fam_row;

enum {
    OPT_STRATEGY = 0x200,
    OPT_CLASSIFIER,
    OPT_LABELS,
    OPT_PASS1,
    OPT_SCORE,
    OPT_NORM,
    OPT_CHOICES,
    OPT_PROMPTS
};

/* What the expert column of the CSV says for strategy none. */
static const char *none_expert(const cli_adapt *ad) {
    if (!ad->adapt) return "base";
    if (ad->expert_path && ad->n_experts == 1) return ad->experts[0]->name;
    return ad->mix ? ad->mix : "mix";
}

static void print_confusion(const fam_row *rows, int n_fams, const cli_strategy *strat) {
    int conf[T2_LABEL_COUNT][T2_LABEL_COUNT] = {{0}};
    int tot_n = 0, tot_ok = 0;
    for (int fi = 0; fi < n_fams; fi++) {
        if (rows[fi].n < 0) continue;
        for (int t = 0; t < T2_LABEL_COUNT; t++)
            for (int p = 0; p < T2_LABEL_COUNT; p++) conf[t][p] += rows[fi].conf[t][p];
        tot_n += rows[fi].n;
        tot_ok += rows[fi].class_correct;
    }
    printf("\npass 1 (%s): confusion matrix, rows = true label (the items'), columns = "
           "predicted\n", strat->kind == CLI_STRAT_PROMPT ? "prompt, base weights"
                                                         : "classifier expert");
    printf("%-14s", "true label");
    for (int p = 0; p < T2_LABEL_COUNT; p++) printf(" %9s", t2_task_label_name(p));
    printf(" %7s %9s\n", "n", "accuracy");
    int col[T2_LABEL_COUNT] = {0};
    for (int t = 0; t < T2_LABEL_COUNT; t++) {
        int n = 0;
        printf("%-14s", t2_task_label_name(t));
        for (int p = 0; p < T2_LABEL_COUNT; p++) {
            printf(" %9d", conf[t][p]);
            n += conf[t][p];
            col[p] += conf[t][p];
        }
        if (n) printf(" %7d %8.1f%%\n", n, 100.0 * conf[t][t] / n);
        else printf(" %7d %9s\n", n, "-");
    }
    printf("%-14s", "all");
    for (int p = 0; p < T2_LABEL_COUNT; p++) printf(" %9d", col[p]);
    printf(" %7d %8.1f%%\n", tot_n, tot_n ? 100.0 * tot_ok / tot_n : 0.0);

    printf("\nclassification accuracy per family (pass 1), label -> expert: ");
    for (int l = 0; l < T2_LABEL_COUNT; l++)
        printf("%s%s=%s", l ? " " : "", t2_task_label_name(l), cli_strategy_label_expert(strat, l));
    printf("\n%-14s %-10s %6s %8s %9s %17s\n", "family", "label", "n", "correct", "accuracy",
           "95% interval");
    for (int fi = 0; fi < n_fams; fi++) {
        const fam_row *r = &rows[fi];
        if (r->n < 0) continue;
        const t2_task_family *f = t2_task_family_find(r->name);
        char iv[40];
        printf("%-14s %-10s %6d %8d %8.1f%% %17s\n", r->name,
               f ? t2_task_label_name(f->label) : "?", r->n, r->class_correct,
               r->n ? 100.0 * r->class_correct / r->n : 0.0,
               interval(r->class_correct, r->n, iv, sizeof iv));
    }
}

/* The command line, checked. */
typedef struct {
    const char *model_path, *tok_path, *tasks, *csv_path, *data_dir, *stop_mode;
    const char *choices_csv_path;
    int loglik;
    t2_mc_norm norm;
    t2_task_split split;
    int n_items, batch, threads, max_tokens, verbose, two_pass;
    int cue, shots; /* --prompts cued / shots:K */
    float temp, top_p, timeout;
    uint64_t seed;
    cli_adapt ad;
    cli_strategy strat;
    const t2_task_family *fams[64];
    int n_fams;
} eval_opts;

/* What the run holds from set-up to the report. */
typedef struct {
    t2_model *m;
    t2_tokenizer *tok;
    t2_pool *pool;
    FILE *csv;
    fam_row *rows;
    char desc[512], profile_col[80];
    int tty, failed_families, score_failures;
} eval_run;

/* One family's items, labels and answers. */
typedef struct {
    t2_task_set *set;
    t2_teval_result res;
    t2_task_label *pred;
    const t2_adapt **adapts;
    t2_gen_result *cgen;
    int n, n_cgen;
} eval_fam;

/* Totals over the families, for the last table row and the summary. */
typedef struct {
    int n, ok, cls;
    int64_t gen, prompt;
    double gen_s, p1, p2;
} eval_totals;

static const struct option eval_long_opts[] = {
    {"model", required_argument, 0, 'm'},     {"tokenizer", required_argument, 0, 'z'},
    {"task", required_argument, 0, 'T'},      {"split", required_argument, 0, 'S'},
    {"n", required_argument, 0, 'n'},         {"seed", required_argument, 0, 's'},
    {"batch", required_argument, 0, 'B'},     {"threads", required_argument, 0, 'j'},
    {"max-tokens", required_argument, 0, 'M'}, {"stop", required_argument, 0, 'X'},
    {"temperature", required_argument, 0, 't'}, {"top-p", required_argument, 0, 'P'},
    {"csv", required_argument, 0, 'C'},       {"data", required_argument, 0, 'D'},
    {"timeout", required_argument, 0, 'O'},   {"verbose", no_argument, 0, 'v'},
    {"strategy", required_argument, 0, OPT_STRATEGY},
    {"classifier", required_argument, 0, OPT_CLASSIFIER},
    {"labels", required_argument, 0, OPT_LABELS},
    {"pass1", required_argument, 0, OPT_PASS1},
    {"score", required_argument, 0, OPT_SCORE}, {"norm", required_argument, 0, OPT_NORM},
    {"choices-csv", required_argument, 0, OPT_CHOICES},
    {"prompts", required_argument, 0, OPT_PROMPTS},
    {"help", no_argument, 0, 'h'},            CLI_ADAPT_OPTIONS,
    {0, 0, 0, 0}};

/* --prompts P: -1 to go on, else 2 with the message printed. */
static int eval_prompts_opt(eval_opts *o, const char *v) {
    o->cue = 0, o->shots = 0;
    if (!strcmp(v, "plain")) return -1;
    if (!strcmp(v, "cued")) {
        o->cue = 1;
        return -1;
    }
    if (!strncmp(v, "shots:", 6)) return cli_int("eval", "--prompts shots:K", v + 6, 1, 64,
                                                  &o->shots) ? 2 : -1;
    return cli_usage_error("eval", "--prompts: '%s' is not plain, cued or shots:K", v);
}

/* Option c (its value in optarg) into o: -1 to go on, else the exit status (0 after --help,
 * 2 for a bad value, the message printed). */
static int eval_opt(eval_opts *o, int c) {
    const char *cmd = "eval";
    switch (c) {
    case 'm': o->model_path = optarg; break;
    case 'z': o->tok_path = optarg; break;
    case 'T': o->tasks = optarg; break;
    case 'S':
        if (t2_task_split_parse(optarg, &o->split) < 0)
            return cli_usage_error(cmd, "--split: '%s' is not train, validation, test or "
                                   "all", optarg);
        break;
    case 'n': if (cli_int(cmd, "--n", optarg, 1, 1 << 24, &o->n_items)) return 2; break;
    case 's': if (cli_u64(cmd, "--seed", optarg, &o->seed)) return 2; break;
    case 'B':
        if (cli_int(cmd, "--batch", optarg, 1, T2_MAX_SEQS, &o->batch)) return 2;
        break;
    case 'j':
        if (cli_int(cmd, "-j", optarg, 1, T2_POOL_MAX_THREADS, &o->threads)) return 2;
        break;
    case 'M':
        if (cli_int(cmd, "--max-tokens", optarg, 1, 1 << 20, &o->max_tokens)) return 2;
        break;
    case 'X':
        if (strcmp(optarg, "newline") && strcmp(optarg, "blank") && strcmp(optarg, "none"))
            return cli_usage_error(cmd, "--stop: '%s' is not newline, blank or none", optarg);
        o->stop_mode = optarg;
        break;
    case 't': if (cli_float(cmd, "-t", optarg, 0, 100, &o->temp)) return 2; break;
    case 'P': if (cli_float(cmd, "--top-p", optarg, 0, 1, &o->top_p)) return 2; break;
    case 'C': o->csv_path = optarg; break;
    case 'D': o->data_dir = optarg; break;
    case 'O': if (cli_float(cmd, "--timeout", optarg, 0.1, 3600, &o->timeout)) return 2; break;
    case 'v': o->verbose = 1; break;
    case OPT_STRATEGY:
        if (cli_strategy_parse(&o->strat, optarg) < 0)
            return cli_usage_error(cmd, "%s", t2_err_msg());
        break;
    case OPT_CLASSIFIER:
        if (!*optarg || strlen(optarg) > T2_NAME_MAX || strchr(optarg, '/'))
            return cli_usage_error(cmd, "--classifier: '%s' is not an expert name", optarg);
        o->strat.classifier = optarg;
        break;
    case OPT_LABELS:
        if (cli_strategy_labels(&o->strat, optarg) < 0)
            return cli_usage_error(cmd, "%s", t2_err_msg());
        break;
    case OPT_PASS1:
        if (strcmp(optarg, "score") && strcmp(optarg, "generate"))
            return cli_usage_error(cmd, "--pass1: '%s' is not score or generate", optarg);
        o->strat.pass1_generate = !strcmp(optarg, "generate");
        break;
    case OPT_SCORE:
        if (strcmp(optarg, "gen") && strcmp(optarg, "loglik"))
            return cli_usage_error(cmd, "--score: '%s' is not gen or loglik", optarg);
        o->loglik = !strcmp(optarg, "loglik");
        break;
    case OPT_NORM:
        if (cli_mc_norm_parse(optarg, &o->norm) < 0)
            return cli_usage_error(cmd, "%s", t2_err_msg());
        break;
    case OPT_CHOICES: o->choices_csv_path = optarg; break;
    case OPT_PROMPTS: return eval_prompts_opt(o, optarg);
    case 'h': fputs(eval_help, stdout); return 0;
    default: {
        int r = cli_adapt_opt(&o->ad, cmd, c, optarg);
        if (r < 0) return 2;
        if (r == 0) return cli_usage_error(cmd, "bad option");
    }
    }
    return -1;
}

/* The families of --task, checked before anything is loaded: -1 to go on, else the exit
 * status. */
static int eval_families(eval_opts *o) {
    const char *cmd = "eval";
    char *list = strdup(o->tasks);
    if (!list) {
        t2_err_set(T2_ENOMEM, "out of memory");
        return cli_fail(cmd);
    }
    for (char *save = NULL, *tk = strtok_r(list, ",", &save); tk; tk = strtok_r(NULL, ",", &save)) {
        const t2_task_family *f = t2_task_family_find(tk);
        if (!f) {
            int r = cli_usage_error(cmd, "--task: unknown family '%s' (t2 tasks list shows them)",
                                    tk);
            free(list);
            return r;
        }
        if (o->n_fams == 64) {
            free(list);
            return cli_usage_error(cmd, "--task: more than 64 families");
        }
        o->fams[o->n_fams++] = f;
    }
    free(list);
    if (!o->n_fams) return cli_usage_error(cmd, "--task: no family named in '%s'", o->tasks);
    return -1;
}

/* The command line into o: -1 to go on, else the exit status. */
static int eval_parse(int argc, char **argv, eval_opts *o) {
    const char *cmd = "eval";
    *o = (eval_opts){.split = T2_SPLIT_TEST, .n_items = -1, .batch = 8, .threads = t2_nproc(),
                     .top_p = 1.0f, .seed = 1, .ad = {.mode = T2_APPLY_MERGED},
                     .norm = T2_MC_CHAR};
    cli_strategy_init(&o->strat);
    int c, r;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:j:t:s:vh", eval_long_opts, NULL)) != -1)
        if ((r = eval_opt(o, c)) >= 0) return r;
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!o->model_path) return cli_usage_error(cmd, "no model: give -m MODEL");
    if (!o->tasks || !*o->tasks)
        return cli_usage_error(cmd, "no task: give --task FAMILY (t2 tasks list)");
    if (o->strat.kind != CLI_STRAT_NONE && (o->ad.expert_path || o->ad.mix))
        return cli_usage_error(cmd, "--strategy %s and --expert/--mix exclude each other",
                               cli_strategy_name(&o->strat));
    if (o->strat.kind != CLI_STRAT_NONE && !o->ad.factors_path)
        return cli_usage_error(cmd, "--strategy %s needs --factors F.gguf (made by t2 decompose)",
                               cli_strategy_name(&o->strat));
    if (o->loglik && o->strat.kind != CLI_STRAT_NONE)
        return cli_usage_error(cmd, "--score loglik takes --expert/--mix, not --strategy");
    if (!o->loglik && o->choices_csv_path)
        return cli_usage_error(cmd, "--choices-csv needs --score loglik");
    if (o->loglik && (o->cue || o->shots))
        return cli_usage_error(cmd, "--prompts cued|shots:K are for --score gen");
    o->two_pass = cli_strategy_two_pass(&o->strat);
    return eval_families(o);
}

/* The CSV file, the model, the threads and the adaptations; prints the header lines. */
static int eval_setup(eval_opts *o, eval_run *run) {
    int rc;
    if (!(run->rows = calloc((size_t)o->n_fams, sizeof *run->rows)))
        return t2_err_set(T2_ENOMEM, "out of memory");
    if (o->csv_path) {
        if (!(run->csv = fopen(o->csv_path, "w")))
            return t2_err_set(T2_EIO, "%s: cannot write: %s", o->csv_path, strerror(errno));
        if (!o->loglik)
            fprintf(run->csv, "id,family,correct,extracted,gen_tokens,stop,strategy,label,"
                              "expert,generation\n");
    }
    double t_load = t2_now();
    if ((rc = t2_model_load(&run->m, o->model_path)) < 0 ||
        (rc = t2_model_load_tokenizer(&run->tok, run->m, o->tok_path)) < 0)
        return rc;
    if (t2_pool_new(&run->pool, o->threads) < 0) return t2_err_set(T2_ENOMEM, "out of memory");
    if ((rc = cli_adapt_setup(&o->ad, run->m, run->pool)) < 0 ||
        (rc = cli_strategy_setup(&o->strat, &o->ad, run->pool)) < 0)
        return rc;
    if (o->strat.kind == CLI_STRAT_NONE) cli_adapt_describe(&o->ad, run->desc, sizeof run->desc);
    else cli_strategy_describe(&o->strat, run->desc, sizeof run->desc);
    const t2_model *m = run->m;
    printf("t2 eval: %s (%.2f M parameters, %s, context %d), %s\n", o->model_path,
           (double)t2_model_n_params(m) / 1e6, t2_dtype_name(t2_model_dtype(m)), m->cfg.seq_len,
           run->desc);
    if (o->loglik)
        printf("log-likelihood of each choice, no generation");
    else if (o->temp > 0)
        printf("sampling: temperature %g, top-p %g, seed %llu", (double)o->temp,
               (double)o->top_p, (unsigned long long)o->seed);
    else
        printf("greedy decoding");
    if (o->cue) printf("; prompts cued (the target reading's cue written in)");
    if (o->shots) printf("; prompts with %d training-split shots before each", o->shots);
    printf("; batch %d, %d thread%s, kernels %s (loaded in %.2f s)\n\n", o->batch, o->threads,
           o->threads > 1 ? "s" : "", t2_kern_level(), t2_now() - t_load);
    fflush(stdout);
    run->tty = isatty(2);
    if (o->strat.profile)
        snprintf(run->profile_col, sizeof run->profile_col, "profile:%s", o->strat.profile->name);
    return 0;
}

/* Pass 1: the label of every item picks its expert. */
static int eval_pass1(const eval_opts *o, eval_run *run, fam_row *row, eval_fam *ef) {
    const int n = ef->n;
    ef->pred = calloc((size_t)n + 1, sizeof *ef->pred);
    ef->adapts = calloc((size_t)n + 1, sizeof *ef->adapts);
    if (!ef->pred || !ef->adapts) return t2_err_set(T2_ENOMEM, "out of memory");
    double t1 = t2_now();
    const t2_adapt *cls = o->strat.kind == CLI_STRAT_CLASSIFIER ? o->strat.classifier_adapt : NULL;
    int rc = o->strat.pass1_generate
                 ? t2_task_classify_items(run->m, run->tok, run->pool, ef->set, NULL, n, cls,
                                          o->batch, ef->pred, o->verbose ? &ef->cgen : NULL, NULL)
                 : t2_task_classify_items_score(run->m, run->tok, run->pool, ef->set, NULL, n,
                                                cls, ef->pred, NULL, NULL);
    if (rc < 0) return rc;
    ef->n_cgen = o->verbose && ef->cgen ? n : 0;
    row->pass1_seconds = t2_now() - t1;
    for (int k = 0; k < n; k++) {
        const t2_task_item *it = t2_task_set_item(ef->set, (size_t)k);
        ef->adapts[k] = o->strat.label_adapt[ef->pred[k]];
        row->conf[it->label][ef->pred[k]]++;
        row->class_correct += ef->pred[k] == it->label;
    }
    return 0;
}

/* Pass 2: the answers, generated and scored. */
static int eval_pass2(const eval_opts *o, eval_run *run, fam_row *row, eval_fam *ef) {
    t2_teval_params tp;
    t2_teval_params_default(&tp);
    tp.max_tokens = o->max_tokens;
    tp.stop = !o->stop_mode ? T2_TEVAL_STOP_DEFAULT
              : !strcmp(o->stop_mode, "newline") ? T2_TEVAL_STOP_NEWLINE
              : !strcmp(o->stop_mode, "blank") ? T2_TEVAL_STOP_BLANK : T2_TEVAL_STOP_NONE;
    tp.temperature = o->temp;
    tp.top_p = o->top_p;
    tp.batch = o->batch;
    tp.seed = o->seed;
    tp.score_threads = o->threads;
    tp.adapt = o->strat.kind == CLI_STRAT_PROFILE ? o->strat.profile_adapt : o->ad.adapt;
    progress pr = {.family = row->name, .what = "generated", .n = ef->n, .tty = run->tty,
                   .t0 = t2_now()};
    tp.on_done = on_done;
    tp.on_done_ctx = &pr;
    int rc = t2_task_eval(run->m, run->tok, run->pool, ef->set, NULL, ef->n,
                          o->two_pass ? ef->adapts : NULL, &tp, &ef->res);
    if (rc < 0) return rc;
    const t2_teval_result *res = &ef->res;
    row->pass2_seconds = res->seconds;
    row->n = ef->n;
    row->correct = res->correct;
    row->failed = res->failed;
    row->truncated = res->truncated;
    row->score_errors = res->score_errors;
    row->prompt_tokens = res->prompt_tokens;
    row->gen_tokens = res->gen_tokens;
    row->gen_seconds = res->gen_seconds;
    return 0;
}

/* Item k on stdout (--verbose). */
static void eval_item_show(const eval_opts *o, const eval_fam *ef, int k, const char *label,
                           const char *expert) {
    const t2_task_item *it = t2_task_set_item(ef->set, (size_t)k);
    const t2_gen_result *r = &ef->res.gen[k];
    const t2_teval_item *ti = &ef->res.items[k];
    printf("%-5s %-28s ", ti->correct ? "ok" : "wrong", it->id);
    printf("[");
    show(stdout, ti->score_rc == 0 ? ti->score.extracted : "", 24);
    printf("] ");
    show(stdout, r->text ? r->text : "", 70);
    if (o->two_pass) {
        printf("  <- %s -> %s (pass 1: ", label, expert);
        show(stdout, ef->cgen && ef->cgen[k].text ? ef->cgen[k].text : "", 40);
        printf(")");
    }
    printf("\n");
}

/* Item k as a CSV row. */
static void eval_item_csv(const eval_opts *o, FILE *csv, const char *family, const eval_fam *ef,
                          int k, const char *label, const char *expert) {
    const t2_task_item *it = t2_task_set_item(ef->set, (size_t)k);
    const t2_gen_result *r = &ef->res.gen[k];
    const t2_teval_item *ti = &ef->res.items[k];
    csv_field(csv, it->id);
    fputc(',', csv);
    csv_field(csv, family);
    fprintf(csv, ",%d,", ti->correct);
    csv_field(csv, ti->score_rc == 0 ? ti->score.extracted : "");
    fprintf(csv, ",%d,%s,%s,%s,", r->n_gen, r->error ? "error" : t2_gen_stop_name(r->stop),
            cli_strategy_name(&o->strat), label);
    csv_field(csv, expert);
    fputc(',', csv);
    csv_field(csv, r->text ? r->text : "");
    fputc('\n', csv);
}

/* Every item: the first failures on stderr, then --verbose lines and CSV rows. */
static void eval_items(const eval_opts *o, eval_run *run, const char *family, const eval_fam *ef) {
    int first_err = 0, first_score_err = 0;
    for (int k = 0; k < ef->n; k++) {
        const t2_task_item *it = t2_task_set_item(ef->set, (size_t)k);
        const t2_gen_result *r = &ef->res.gen[k];
        const t2_teval_item *ti = &ef->res.items[k];
        const char *label = o->two_pass ? t2_task_label_name(ef->pred[k]) : "";
        const char *expert = o->two_pass ? cli_strategy_label_expert(&o->strat, ef->pred[k])
                             : o->strat.kind == CLI_STRAT_PROFILE ? run->profile_col
                                                                  : none_expert(&o->ad);
        if (ti->score_rc < 0 && !first_score_err++)
            fprintf(stderr, "t2 eval: %s: scoring failed: %s\n", it->id, ti->score.detail);
        if (r->error && !first_err++)
            fprintf(stderr, "t2 eval: %s: %s\n", it->id, r->message);
        if (o->verbose) eval_item_show(o, ef, k, label, expert);
        if (run->csv) eval_item_csv(o, run->csv, family, ef, k, label, expert);
    }
    if (o->verbose) printf("\n");
}

/* What went wrong in a family, on stderr (and its time when stderr is not a terminal). */
static void eval_family_notes(eval_run *run, const fam_row *row) {
    if (!run->tty)
        fprintf(stderr, "t2 eval: %s: %d items, %d correct, %.1f s\n", row->name, row->n,
                row->correct, row->pass1_seconds + row->pass2_seconds);
    if (row->truncated)
        fprintf(stderr, "t2 eval: %s: %d prompt%s cut from the left (BOS and the last "
                "tokens kept) to leave room for the answer in the context of %d\n",
                row->name, row->truncated, row->truncated > 1 ? "s were" : " was",
                run->m->cfg.seq_len);
    if (row->failed)
        fprintf(stderr, "t2 eval: %s: %d request%s failed (counted wrong)\n", row->name,
                row->failed, row->failed > 1 ? "s" : "");
    if (row->score_errors) {
        fprintf(stderr, "t2 eval: %s: %d item%s could not be scored (counted wrong)\n",
                row->name, row->score_errors, row->score_errors > 1 ? "s" : "");
        run->score_failures++;
    }
}

/* --prompts: the set's prompts cued, or preceded by training-split shots. */
static int eval_controls(const eval_opts *o, const t2_task_opts *to, eval_fam *ef) {
    if (o->cue) return t2_task_set_cue(ef->set);
    if (!o->shots) return 0;
    t2_task_opts so = *to;
    so.split = T2_SPLIT_TRAIN;
    so.n = (size_t)o->shots;
    t2_task_set *shots = NULL;
    int rc = t2_task_set_open(&shots, t2_task_set_family(ef->set)->name, &so);
    if (rc == 0) rc = t2_task_set_add_shots(ef->set, shots, (size_t)o->shots);
    t2_task_set_destroy(&shots);
    return rc;
}

/* Family fi: open its items, run pass 1 (two-pass strategies) and pass 2, report the items.
 * A family that cannot be opened is reported and counted, not fatal. */
static int eval_family(const eval_opts *o, eval_run *run, int fi) {
    const t2_task_family *fam = o->fams[fi];
    fam_row *row = &run->rows[fi];
    row->name = fam->name;
    row->split = t2_task_split_name(o->split);
    t2_task_opts to = {.split = o->split, .seed = o->seed, .data_dir = o->data_dir,
                       .timeout_s = o->timeout};
    to.n = o->n_items > 0 ? (size_t)o->n_items : fam->kind == T2_KIND_REAL ? 0 : 200;
    eval_fam ef = {0};
    if (t2_task_set_open(&ef.set, fam->name, &to) < 0) {
        fprintf(stderr, "t2 eval: %s\n", t2_err_msg()); /* the message names the family */
        run->failed_families++;
        row->n = -1;
        return 0;
    }
    ef.n = (int)t2_task_set_count(ef.set);
    int rc = eval_controls(o, &to, &ef);
    if (rc == 0 && o->two_pass) rc = eval_pass1(o, run, row, &ef);
    if (rc == 0) rc = eval_pass2(o, run, row, &ef);
    if (rc == 0) {
        eval_items(o, run, fam->name, &ef);
        eval_family_notes(run, row);
    }
    t2_teval_result_free(&ef.res);
    t2_gen_results_free(ef.cgen, ef.n_cgen);
    free(ef.cgen);
    free(ef.pred);
    free(ef.adapts);
    t2_task_set_destroy(&ef.set);
    return rc;
}

/* The table: a row per family and, for several, their totals (into *tot). */
static void eval_table(const eval_opts *o, const eval_run *run, eval_totals *tot) {
    printf("%-14s %-10s %6s %8s %9s %17s %9s %9s %8s %8s %8s %8s\n", "family", "split", "n",
           "correct", "accuracy", "95% interval", "prompt", "generated", "tok/s", "pass1 s",
           "pass2 s", "seconds");
    char p1[16], iv[40];
    for (int fi = 0; fi < o->n_fams; fi++) {
        const fam_row *r = &run->rows[fi];
        if (r->n < 0) {
            printf("%-14s %-10s %6s %8s %9s %17s %9s %9s %8s %8s %8s %8s\n", r->name, r->split,
                   "-", "-", "failed", "-", "-", "-", "-", "-", "-", "-");
            continue;
        }
        if (o->two_pass) snprintf(p1, sizeof p1, "%.2f", r->pass1_seconds);
        else snprintf(p1, sizeof p1, "-");
        printf("%-14s %-10s %6d %8d %8.1f%% %17s %9lld %9lld %8.0f %8s %8.2f %8.2f\n", r->name,
               r->split, r->n, r->correct, r->n ? 100.0 * r->correct / r->n : 0.0,
               interval(r->correct, r->n, iv, sizeof iv), (long long)r->prompt_tokens,
               (long long)r->gen_tokens, r->gen_seconds > 0 ? r->gen_tokens / r->gen_seconds : 0.0,
               p1, r->pass2_seconds, r->pass1_seconds + r->pass2_seconds);
        tot->n += r->n;
        tot->ok += r->correct;
        tot->cls += r->class_correct;
        tot->gen += r->gen_tokens;
        tot->prompt += r->prompt_tokens;
        tot->gen_s += r->gen_seconds;
        tot->p1 += r->pass1_seconds;
        tot->p2 += r->pass2_seconds;
    }
    if (o->two_pass) snprintf(p1, sizeof p1, "%.2f", tot->p1);
    else snprintf(p1, sizeof p1, "-");
    if (o->n_fams > 1)
        printf("%-14s %-10s %6d %8d %8.1f%% %17s %9lld %9lld %8.0f %8s %8.2f %8.2f\n", "all",
               t2_task_split_name(o->split), tot->n, tot->ok,
               tot->n ? 100.0 * tot->ok / tot->n : 0.0, interval(tot->ok, tot->n, iv, sizeof iv),
               (long long)tot->prompt, (long long)tot->gen,
               tot->gen_s > 0 ? tot->gen / tot->gen_s : 0.0, p1, tot->p2, tot->p1 + tot->p2);
}

/* The summary line. */
static void eval_summary(const eval_opts *o, const eval_run *run, const eval_totals *t) {
    double lo, hi;
    wilson(t->ok, t->n, &lo, &hi);
    printf("\nsummary: model=%s adapt=\"%s\" strategy=%s tasks=%s split=%s n=%d correct=%d "
           "accuracy=%.4f ci95=%.4f,%.4f gen_tokens=%lld tok_s=%.1f seconds=%.2f "
           "pass1_s=%.2f pass2_s=%.2f",
           o->model_path, run->desc, cli_strategy_name(&o->strat), o->tasks,
           t2_task_split_name(o->split), t->n, t->ok, t->n ? (double)t->ok / t->n : 0.0, lo, hi,
           (long long)t->gen, t->gen_s > 0 ? t->gen / t->gen_s : 0.0, t->p1 + t->p2, t->p1,
           t->p2);
    if (o->two_pass) printf(" class_accuracy=%.4f", t->n ? (double)t->cls / t->n : 0.0);
    printf("\n");
}

/* --score loglik: every family by the log-likelihood of its choices (eval_mc.h). */
static int eval_loglik(const eval_opts *o, eval_run *run) {
    cli_eval_mc mo = {.fams = o->fams, .n_fams = o->n_fams, .split = o->split,
                      .n_items = o->n_items, .seed = o->seed, .data_dir = o->data_dir,
                      .norm = o->norm, .csv = run->csv, .model_path = o->model_path,
                      .desc = run->desc, .tasks = o->tasks};
    if (o->choices_csv_path && !(mo.choices_csv = fopen(o->choices_csv_path, "w")))
        return t2_err_set(T2_EIO, "%s: cannot write: %s", o->choices_csv_path, strerror(errno));
    int rc = cli_eval_mc_run(&mo, run->m, run->tok, run->pool, o->ad.adapt,
                             &run->failed_families);
    if (mo.choices_csv) {
        int bad = ferror(mo.choices_csv);
        bad |= fclose(mo.choices_csv) != 0;
        if (bad && rc == 0) rc = t2_err_set(T2_EIO, "%s: write failed", o->choices_csv_path);
    }
    return rc;
}

/* Set up, evaluate every family, report; 0, or < 0 with the message set. */
static int eval_main(eval_opts *o, eval_run *run) {
    int rc = eval_setup(o, run);
    if (rc == 0 && o->loglik) {
        if ((rc = eval_loglik(o, run)) < 0) return rc;
        fflush(stdout);
        if (run->csv) {
            int bad = ferror(run->csv);
            bad |= fclose(run->csv) != 0;
            run->csv = NULL;
            if (bad) return t2_err_set(T2_EIO, "%s: write failed", o->csv_path);
        }
        return 0;
    }
    for (int fi = 0; rc == 0 && fi < o->n_fams; fi++) rc = eval_family(o, run, fi);
    if (rc < 0) return rc;
    eval_totals tot = {0};
    eval_table(o, run, &tot);
    if (o->two_pass) print_confusion(run->rows, o->n_fams, &o->strat);
    eval_summary(o, run, &tot);
    fflush(stdout);
    if (run->csv) {
        int bad = ferror(run->csv);
        bad |= fclose(run->csv) != 0;
        run->csv = NULL;
        if (bad) return t2_err_set(T2_EIO, "%s: write failed", o->csv_path);
    }
    return 0;
}

int t2_cmd_eval(int argc, char **argv) {
    eval_opts o;
    eval_run run = {0};
    int rc = eval_parse(argc, argv, &o);
    if (rc < 0) {
        if (eval_main(&o, &run) < 0) rc = cli_fail("eval");
        else rc = run.failed_families || run.score_failures ? 1 : 0;
    }
    if (run.csv) fclose(run.csv);
    free(run.rows);
    cli_strategy_free(&o.strat);
    cli_adapt_free(&o.ad);
    t2_pool_destroy(&run.pool);
    t2_tok_destroy(&run.tok);
    t2_model_destroy(&run.m);
    return rc;
}
