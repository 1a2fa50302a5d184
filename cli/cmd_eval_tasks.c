/* t2 eval: accuracy of a model (optionally adapted with SVF experts) on task families.
 *
 *   t2 eval -m models/t2-base.gguf --task math,code,mc --n 500
 *
 * Each item's prompt is given as PROMPT "\n" (T2_TASK_SEP); the answer is generated with
 * continuous batching (shared/generate.h: up to --batch sequences in flight, one
 * multi-sequence step per token) and scored with the family's scorer (shared/tasks.h). Code
 * families are scored in sandboxes, -j at a time, after generation. The table, the 95 % Wilson
 * interval and a summary line go to stdout; per-item rows to --csv.
 */
#include "cli.h"

#include "adapt_opts.h"
#include "generate.h"
#include "kernels.h"
#include "model.h"
#include "platform.h"
#include "pool.h"
#include "t2_err.h"
#include "tasks.h"
#include "tokenizer.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char eval_help[] =
    "usage: t2 eval -m MODEL --task FAMILY[,FAMILY...] [--split S] [--n N] [--seed S]\n"
    "               [--expert E | --mix ... --factors F] [--batch B] [-j T] [--csv FILE]\n"
    "               [--max-tokens N] [-z TOK] [options]\n\n"
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
    "      --csv FILE         per item: id,family,correct,extracted,gen_tokens,stop,generation\n"
    "      --data DIR         real data sets folder (default $T2_DATA, $T2_ASSETS/data,\n"
    "                         ../shared/assets/data)\n"
    "      --timeout S        code families: sandbox limit per program (default 10)\n"
    "  -v, --verbose          print every item (id, verdict, extracted answer, generation)\n"
    CLI_ADAPT_HELP
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

/* ---- scoring, in parallel for code families ---- */

typedef struct {
    const t2_task_set *set;
    const t2_gen_result *res;
    t2_task_score *scores;
    int *rcs;
    int n;
    atomic_int next;
} score_job;

static void *score_worker(void *arg) {
    score_job *j = arg;
    for (;;) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        const char *gen = j->res[i].text ? j->res[i].text : "";
        j->rcs[i] = t2_task_score_item(j->set, t2_task_set_item(j->set, (size_t)i), gen,
                                       &j->scores[i]);
        if (j->rcs[i] < 0)
            snprintf(j->scores[i].detail, sizeof j->scores[i].detail, "%s", t2_err_msg());
    }
    return NULL;
}

static void score_all(score_job *j, int threads) {
    atomic_init(&j->next, 0);
    pthread_t th[64];
    int nt = threads < 64 ? threads : 64, started = 0;
    for (int i = 1; i < nt && i < j->n; i++)
        if (pthread_create(&th[started], NULL, score_worker, j) == 0) started++;
    score_worker(j);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
}

/* ---- progress ---- */

typedef struct {
    const char *family;
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
        fprintf(stderr, "\r\033[Kt2 eval: %s: %d/%d generated (%.1f s)", p->family, p->done, p->n,
                now - p->t0);
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
    double gen_seconds, score_seconds;
} fam_row;

int t2_cmd_eval(int argc, char **argv) {
    const char *cmd = "eval", *model_path = NULL, *tok_path = NULL, *tasks = NULL;
    const char *csv_path = NULL, *data_dir = NULL, *stop_mode = NULL;
    t2_task_split split = T2_SPLIT_TEST;
    int n_items = -1, batch = 8, threads = t2_nproc(), max_tokens = 0, verbose = 0, rc = 1;
    float temp = 0.0f, top_p = 1.0f, timeout = 0.0f;
    uint64_t seed = 1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},     {"tokenizer", required_argument, 0, 'z'},
        {"task", required_argument, 0, 'T'},      {"split", required_argument, 0, 'S'},
        {"n", required_argument, 0, 'n'},         {"seed", required_argument, 0, 's'},
        {"batch", required_argument, 0, 'B'},     {"threads", required_argument, 0, 'j'},
        {"max-tokens", required_argument, 0, 'M'}, {"stop", required_argument, 0, 'X'},
        {"temperature", required_argument, 0, 't'}, {"top-p", required_argument, 0, 'P'},
        {"csv", required_argument, 0, 'C'},       {"data", required_argument, 0, 'D'},
        {"timeout", required_argument, 0, 'O'},   {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},            CLI_ADAPT_OPTIONS,
        {0, 0, 0, 0}};
    cli_adapt ad = {.mode = T2_APPLY_MERGED};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:j:t:s:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'z': tok_path = optarg; break;
        case 'T': tasks = optarg; break;
        case 'S':
            if (t2_task_split_parse(optarg, &split) < 0)
                return cli_usage_error(cmd, "--split: '%s' is not train, validation, test or "
                                       "all", optarg);
            break;
        case 'n': if (cli_int(cmd, "--n", optarg, 1, 1 << 24, &n_items)) return 2; break;
        case 's': if (cli_u64(cmd, "--seed", optarg, &seed)) return 2; break;
        case 'B':
            if (cli_int(cmd, "--batch", optarg, 1, T2_GEN_MAX_BATCH, &batch)) return 2;
            break;
        case 'j': if (cli_int(cmd, "-j", optarg, 1, 256, &threads)) return 2; break;
        case 'M':
            if (cli_int(cmd, "--max-tokens", optarg, 1, 1 << 20, &max_tokens)) return 2;
            break;
        case 'X':
            if (strcmp(optarg, "newline") && strcmp(optarg, "blank") && strcmp(optarg, "none"))
                return cli_usage_error(cmd, "--stop: '%s' is not newline, blank or none", optarg);
            stop_mode = optarg;
            break;
        case 't': if (cli_float(cmd, "-t", optarg, 0, 100, &temp)) return 2; break;
        case 'P': if (cli_float(cmd, "--top-p", optarg, 0, 1, &top_p)) return 2; break;
        case 'C': csv_path = optarg; break;
        case 'D': data_dir = optarg; break;
        case 'O': if (cli_float(cmd, "--timeout", optarg, 0.1, 3600, &timeout)) return 2; break;
        case 'v': verbose = 1; break;
        case 'h': fputs(eval_help, stdout); return 0;
        default: {
            int r = cli_adapt_opt(&ad, cmd, c, optarg);
            if (r < 0) return 2;
            if (r == 0) return cli_usage_error(cmd, "bad option");
        }
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!model_path) return cli_usage_error(cmd, "no model: give -m MODEL");
    if (!tasks || !*tasks)
        return cli_usage_error(cmd, "no task: give --task FAMILY (t2 tasks list)");

    /* the families, checked before anything is loaded */
    char *list = strdup(tasks);
    const t2_task_family *fams[64];
    int n_fams = 0;
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
        if (n_fams == 64) {
            free(list);
            return cli_usage_error(cmd, "--task: more than 64 families");
        }
        fams[n_fams++] = f;
    }
    free(list);
    if (!n_fams) return cli_usage_error(cmd, "--task: no family named in '%s'", tasks);

    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    t2_pool *pool = NULL;
    FILE *csv = NULL;
    fam_row *rows = calloc((size_t)n_fams, sizeof *rows);
    t2_task_set *set = NULL;
    t2_gen_request *reqs = NULL;
    t2_gen_result *res = NULL;
    t2_task_score *scores = NULL;
    int *rcs = NULL, n_res = 0;
    char **prompts = NULL;
    if (!rows) {
        t2_err_set(T2_ENOMEM, "out of memory");
        rc = cli_fail(cmd);
        goto out;
    }
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (!csv) {
            t2_err_set(T2_EIO, "%s: cannot write: %s", csv_path, strerror(errno));
            rc = cli_fail(cmd);
            goto out;
        }
        fprintf(csv, "id,family,correct,extracted,gen_tokens,stop,generation\n");
    }
    double t_load = t2_now();
    if (t2_model_load(&m, model_path) < 0 || t2_model_load_tokenizer(&tok, m, tok_path) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    pool = t2_pool_new(threads);
    if (!pool) {
        t2_err_set(T2_ENOMEM, "out of memory");
        rc = cli_fail(cmd);
        goto out;
    }
    if (cli_adapt_setup(&ad, m, pool) < 0) {
        rc = cli_fail(cmd);
        goto out;
    }
    char desc[512];
    cli_adapt_describe(&ad, desc, sizeof desc);
    printf("t2 eval: %s (%.2f M parameters, %s, context %d), %s\n", model_path,
           (double)t2_model_n_params(m) / 1e6, t2_dtype_name(t2_model_dtype(m)), m->cfg.seq_len,
           desc);
    if (temp > 0)
        printf("sampling: temperature %g, top-p %g, seed %llu", (double)temp, (double)top_p,
               (unsigned long long)seed);
    else
        printf("greedy decoding");
    printf("; batch %d, %d thread%s, kernels %s (loaded in %.2f s)\n\n", batch, threads,
           threads > 1 ? "s" : "", t2_kern_level(), t2_now() - t_load);
    fflush(stdout);

    const int tty = isatty(2);
    int failed_families = 0, score_failures = 0;
    for (int fi = 0; fi < n_fams; fi++) {
        const t2_task_family *fam = fams[fi];
        const int real = fam->kind == T2_KIND_REAL;
        fam_row *row = &rows[fi];
        row->name = fam->name;
        row->split = t2_task_split_name(split);
        t2_task_opts to = {.split = split, .seed = seed, .data_dir = data_dir,
                           .timeout_s = timeout};
        to.n = n_items > 0 ? (size_t)n_items : real ? 0 : 200;
        if (t2_task_set_open(&set, fam->name, &to) < 0) {
            fprintf(stderr, "t2 eval: %s\n", t2_err_msg()); /* the message names the family */
            failed_families++;
            row->n = -1;
            continue;
        }
        int n = (int)t2_task_set_count(set);
        reqs = calloc((size_t)n + 1, sizeof *reqs);
        res = calloc((size_t)n + 1, sizeof *res);
        scores = calloc((size_t)n + 1, sizeof *scores);
        rcs = calloc((size_t)n + 1, sizeof *rcs);
        prompts = calloc((size_t)n + 1, sizeof *prompts);
        if (!reqs || !res || !scores || !rcs || !prompts) {
            t2_err_set(T2_ENOMEM, "out of memory");
            rc = cli_fail(cmd);
            goto out;
        }
        for (int i = 0; i < n; i++) {
            const t2_task_item *it = t2_task_set_item(set, (size_t)i);
            size_t len = strlen(it->prompt) + strlen(T2_TASK_SEP) + 1;
            if (!(prompts[i] = malloc(len))) {
                t2_err_set(T2_ENOMEM, "out of memory");
                rc = cli_fail(cmd);
                goto out;
            }
            snprintf(prompts[i], len, "%s%s", it->prompt, T2_TASK_SEP);
            reqs[i].prompt = prompts[i];
            reqs[i].adapt = ad.adapt;
            reqs[i].seed = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i + 1;
        }
        t2_gen_params gp;
        t2_gen_params_default(&gp);
        gp.max_tokens = max_tokens ? max_tokens : real ? 256 : 32;
        gp.temperature = temp;
        gp.top_p = top_p;
        gp.batch = batch;
        const char *mode = stop_mode ? stop_mode : real ? "blank" : "newline";
        gp.stop[0] = !strcmp(mode, "newline") ? "\n" : !strcmp(mode, "blank") ? "\n\n" : NULL;
        progress pr = {.family = fam->name, .n = n, .tty = tty, .t0 = t2_now()};
        gp.on_done = on_done;
        gp.on_done_ctx = &pr;
        t2_gen_stats st;
        if (t2_generate_batch(m, tok, pool, reqs, n, &gp, res, &st) < 0) {
            rc = cli_fail(cmd);
            goto out;
        }
        n_res = n;
        double ts = t2_now();
        score_job job = {.set = set, .res = res, .scores = scores, .rcs = rcs, .n = n};
        score_all(&job, fam->label == T2_LABEL_CODE && real ? threads : 1);
        row->score_seconds = t2_now() - ts;
        row->n = n;
        row->failed = st.failed;
        row->truncated = st.truncated;
        row->prompt_tokens = st.prompt_tokens;
        row->gen_tokens = st.gen_tokens;
        row->gen_seconds = st.wall_seconds;
        int first_err = 0;
        for (int i = 0; i < n; i++) {
            const t2_task_item *it = t2_task_set_item(set, (size_t)i);
            const t2_gen_result *r = &res[i];
            const int ok = rcs[i] == 0 && scores[i].correct;
            row->correct += ok;
            if (rcs[i] < 0) {
                row->score_errors++;
                if (row->score_errors == 1)
                    fprintf(stderr, "t2 eval: %s: scoring failed: %s\n", it->id, scores[i].detail);
            }
            if (r->error && !first_err++)
                fprintf(stderr, "t2 eval: %s: %s\n", it->id, r->message);
            if (verbose) {
                printf("%-5s %-28s ", ok ? "ok" : "wrong", it->id);
                printf("[");
                show(stdout, rcs[i] == 0 ? scores[i].extracted : "", 24);
                printf("] ");
                show(stdout, r->text ? r->text : "", 70);
                printf("\n");
            }
            if (csv) {
                csv_field(csv, it->id);
                fputc(',', csv);
                csv_field(csv, fam->name);
                fprintf(csv, ",%d,", ok);
                csv_field(csv, rcs[i] == 0 ? scores[i].extracted : "");
                fprintf(csv, ",%d,%s,", r->n_gen,
                        r->error ? "error" : t2_gen_stop_name(r->stop));
                csv_field(csv, r->text ? r->text : "");
                fputc('\n', csv);
            }
        }
        if (verbose) printf("\n");
        if (!tty)
            fprintf(stderr, "t2 eval: %s: %d items, %d correct, %.1f s\n", fam->name, n,
                    row->correct, row->gen_seconds + row->score_seconds);
        if (row->truncated)
            fprintf(stderr, "t2 eval: %s: %d prompt%s cut from the left (BOS and the last "
                    "tokens kept) to leave room for the answer in the context of %d\n",
                    fam->name, row->truncated, row->truncated > 1 ? "s were" : " was",
                    m->cfg.seq_len);
        if (row->failed)
            fprintf(stderr, "t2 eval: %s: %d request%s failed (counted wrong)\n", fam->name,
                    row->failed, row->failed > 1 ? "s" : "");
        if (row->score_errors) {
            fprintf(stderr, "t2 eval: %s: %d item%s could not be scored (counted wrong)\n",
                    fam->name, row->score_errors, row->score_errors > 1 ? "s" : "");
            score_failures++;
        }
        t2_gen_results_free(res, n_res);
        n_res = 0;
        for (int i = 0; i < n; i++) free(prompts[i]);
        free(prompts), prompts = NULL;
        free(reqs), reqs = NULL;
        free(res), res = NULL;
        free(scores), scores = NULL;
        free(rcs), rcs = NULL;
        t2_task_set_destroy(&set);
    }

    /* the table */
    printf("%-14s %-10s %6s %8s %9s %17s %9s %9s %8s %8s\n", "family", "split", "n", "correct",
           "accuracy", "95% interval", "prompt", "generated", "tok/s", "seconds");
    int tot_n = 0, tot_ok = 0;
    int64_t tot_gen = 0, tot_prompt = 0;
    double tot_s = 0, tot_gen_s = 0;
    for (int fi = 0; fi < n_fams; fi++) {
        const fam_row *r = &rows[fi];
        if (r->n < 0) {
            printf("%-14s %-10s %6s %8s %9s %17s %9s %9s %8s %8s\n", r->name, r->split, "-", "-",
                   "failed", "-", "-", "-", "-", "-");
            continue;
        }
        double lo, hi, s = r->gen_seconds + r->score_seconds;
        wilson(r->correct, r->n, &lo, &hi);
        char iv[40];
        snprintf(iv, sizeof iv, "[%.1f, %.1f]%%", 100 * lo, 100 * hi);
        printf("%-14s %-10s %6d %8d %8.1f%% %17s %9lld %9lld %8.0f %8.2f\n", r->name, r->split,
               r->n, r->correct, r->n ? 100.0 * r->correct / r->n : 0.0, iv,
               (long long)r->prompt_tokens, (long long)r->gen_tokens,
               r->gen_seconds > 0 ? r->gen_tokens / r->gen_seconds : 0.0, s);
        tot_n += r->n;
        tot_ok += r->correct;
        tot_gen += r->gen_tokens;
        tot_prompt += r->prompt_tokens;
        tot_s += s;
        tot_gen_s += r->gen_seconds;
    }
    if (n_fams > 1) {
        double lo, hi;
        wilson(tot_ok, tot_n, &lo, &hi);
        char iv[40];
        snprintf(iv, sizeof iv, "[%.1f, %.1f]%%", 100 * lo, 100 * hi);
        printf("%-14s %-10s %6d %8d %8.1f%% %17s %9lld %9lld %8.0f %8.2f\n", "all",
               t2_task_split_name(split), tot_n, tot_ok, tot_n ? 100.0 * tot_ok / tot_n : 0.0, iv,
               (long long)tot_prompt, (long long)tot_gen, tot_gen_s > 0 ? tot_gen / tot_gen_s : 0.0,
               tot_s);
    }
    {
        double lo, hi;
        wilson(tot_ok, tot_n, &lo, &hi);
        printf("\nsummary: model=%s adapt=\"%s\" tasks=%s split=%s n=%d correct=%d "
               "accuracy=%.4f ci95=%.4f,%.4f gen_tokens=%lld tok_s=%.1f seconds=%.2f\n",
               model_path, desc, tasks, t2_task_split_name(split), tot_n, tot_ok,
               tot_n ? (double)tot_ok / tot_n : 0.0, lo, hi, (long long)tot_gen,
               tot_gen_s > 0 ? tot_gen / tot_gen_s : 0.0, tot_s);
    }
    fflush(stdout);
    if (csv) {
        int bad = ferror(csv);
        bad |= fclose(csv) != 0;
        csv = NULL;
        if (bad) {
            t2_err_set(T2_EIO, "%s: write failed", csv_path);
            rc = cli_fail(cmd);
            goto out;
        }
    }
    rc = failed_families || score_failures ? 1 : 0;
out:
    if (csv) fclose(csv);
    t2_gen_results_free(res, n_res);
    free(reqs);
    free(res);
    free(scores);
    free(rcs);
    if (prompts) {
        for (size_t i = 0; prompts[i]; i++) free(prompts[i]);
        free(prompts);
    }
    t2_task_set_destroy(&set);
    free(rows);
    cli_adapt_free(&ad);
    t2_pool_destroy(&pool);
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc;
}
