/* t2 tasks: list the task families, show items, dump training documents, score generations,
 * and self-check the scorers on the real data sets. */
#include "cli.h"

#include "base/json.h"
#include "tasks/sandbox.h"
#include "base/t2_err.h"
#include "tasks/tasks.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char tasks_help[] =
    "usage: t2 tasks list\n"
    "       t2 tasks show  --family F [--split S] [--n N] [--seed S] [--data DIR]\n"
    "       t2 tasks dump  --family F|all [--split S] --n N [--seed S] [--mix pretrain]\n"
    "                      [--format text|jsonl] [--data DIR]\n"
    "       t2 tasks score --family F --file GENERATIONS.jsonl [--split S] [--csv FILE]\n"
    "                      [--verbose] [--timeout SEC] [--data DIR]\n"
    "       t2 tasks check-real [--family F] [--limit N] [-j JOBS] [--csv FILE]\n"
    "                      [--timeout SEC] [--data DIR]\n\n"
    "The task suite (docs/TASKS.md): synthetic families with seeded generators and disjoint\n"
    "splits, and the real data sets (gsm8k, arc-easy, arc-challenge, mbpp, humaneval).\n\n"
    "  list         the families: kind, category, expert, description\n"
    "  show         print items (id, prompt, answer); default 5 test items, seed 1\n"
    "  dump         print training documents to stdout. Text: \"PROMPT\\nANSWER\\n\" then an\n"
    "               empty line, per document; jsonl: {id, family, prompt, answer} per line.\n"
    "               --mix pretrain writes the pretraining mixture (cued prompts and uncued\n"
    "               prompts answered by either reading); --family all mixes every synthetic\n"
    "               family. Default split train, seed 1.\n"
    "  score        score a JSON Lines file of {\"id\": ..., \"generation\": ...}; prints the\n"
    "               accuracy, --csv writes id,correct,extracted,detail per row\n"
    "  check-real   score every reference answer (must be correct) and a wrong answer (must be\n"
    "               wrong) on each real data set; prints a table (--csv also writes it)\n\n"
    "  --family F         a family name (t2 tasks list)\n"
    "  --split S          train, validation, test or all\n"
    "  --n N              number of items / documents\n"
    "  --seed S           generator seed\n"
    "  --data DIR         folder of the real data sets (default $T2_DATA, $T2_ASSETS/data,\n"
    "                     ../shared/assets/data)\n"
    "  --timeout SEC      code scoring: wall-clock limit per program (default 10)\n"
    "  --limit N          check-real: rows per data set (default all)\n"
    "  -j, --jobs N       check-real: programs run at once (default: online CPUs)\n";

enum {
    O_FAMILY = 1000,
    O_SPLIT,
    O_N,
    O_SEED,
    O_DATA,
    O_MIX,
    O_FORMAT,
    O_FILE,
    O_CSV,
    O_VERBOSE,
    O_TIMEOUT,
    O_LIMIT,
    O_JOBS
};

typedef struct topts {
    const char *family, *data, *file, *csv, *mix, *format;
    t2_task_split split;
    int split_set;
    int n, n_set, verbose, limit, jobs;
    uint64_t seed;
    float timeout;
} topts;

static int parse_opts(const char *cmd, int argc, char **argv, topts *o) {
    static const struct option lo[] = {{"family", required_argument, 0, O_FAMILY},
                                       {"split", required_argument, 0, O_SPLIT},
                                       {"n", required_argument, 0, O_N},
                                       {"seed", required_argument, 0, O_SEED},
                                       {"data", required_argument, 0, O_DATA},
                                       {"mix", required_argument, 0, O_MIX},
                                       {"format", required_argument, 0, O_FORMAT},
                                       {"file", required_argument, 0, O_FILE},
                                       {"csv", required_argument, 0, O_CSV},
                                       {"verbose", no_argument, 0, O_VERBOSE},
                                       {"timeout", required_argument, 0, O_TIMEOUT},
                                       {"limit", required_argument, 0, O_LIMIT},
                                       {"jobs", required_argument, 0, O_JOBS},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hvj:", lo, NULL)) != -1) {
        switch (c) {
        case O_FAMILY: o->family = optarg; break;
        case O_SPLIT:
            if (t2_task_split_parse(optarg, &o->split) < 0)
                return cli_usage_error(cmd, "--split: %s", t2_err_msg());
            o->split_set = 1;
            break;
        case O_N:
            if (cli_int(cmd, "--n", optarg, 1, 100000000, &o->n))
                return 2;
            o->n_set = 1;
            break;
        case O_SEED:
            if (cli_u64(cmd, "--seed", optarg, &o->seed))
                return 2;
            break;
        case O_DATA: o->data = optarg; break;
        case O_MIX: o->mix = optarg; break;
        case O_FORMAT: o->format = optarg; break;
        case O_FILE: o->file = optarg; break;
        case O_CSV: o->csv = optarg; break;
        case 'v':
        case O_VERBOSE: o->verbose = 1; break;
        case O_TIMEOUT:
            if (cli_float(cmd, "--timeout", optarg, 0.1, 3600, &o->timeout))
                return 2;
            break;
        case O_LIMIT:
            if (cli_int(cmd, "--limit", optarg, 0, 100000000, &o->limit))
                return 2;
            break;
        case 'j':
        case O_JOBS:
            if (cli_int(cmd, "--jobs", optarg, 1, 64, &o->jobs))
                return 2;
            break;
        case 'h': fputs(tasks_help, stdout); return 1;
        default: return cli_usage_error(cmd, "bad option");
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static int need_family(const char *cmd, const topts *o, int allow_all) {
    if (!o->family)
        return cli_usage_error(cmd, "give --family F (see t2 tasks list)");
    if (allow_all && !strcmp(o->family, "all"))
        return 0;
    if (!t2_task_family_find(o->family))
        return cli_usage_error(cmd, "--family: unknown family '%s' (see t2 tasks list)", o->family);
    return 0;
}

/* ---------------------------------------------------------------- list */

static int cmd_list(void) {
    printf("%-14s %-9s %-10s %-7s %s\n", "family", "kind", "category", "expert", "description");
    for (size_t i = 0; i < t2_task_family_count(); i++) {
        const t2_task_family *f = t2_task_family_at(i);
        printf("%-14s %-9s %-10s %-7s %s\n", f->name, t2_task_kind_name(f->kind),
               f->kind == T2_KIND_CLASSIFY ? "-" : t2_task_label_name(f->label),
               f->expert ? f->expert : "-", f->summary);
    }
    printf("\nsplits: train, validation, test (synthetic: by a hash of each question's content,\n"
           "80/10/10, so a question is in one split only). Real: gsm8k train/validation/test,\n"
           "mbpp by task id (test 11-510, validation 511-600, train 601-974), ARC and\n"
           "HumanEval test only.\n");
    return 0;
}

/* ---------------------------------------------------------------- show */

static void print_indented(const char *label, const char *s) {
    printf("  %-7s ", label);
    for (const char *p = s; *p; p++) {
        putchar(*p);
        if (*p == '\n' && p[1])
            printf("          ");
    }
    putchar('\n');
}

static int cmd_show(const char *cmd, const topts *o) {
    int rc = need_family(cmd, o, 0);
    if (rc)
        return rc;
    t2_task_opts so = {.split = o->split_set ? o->split : T2_SPLIT_TEST,
                       .n = o->n_set ? (size_t)o->n : 5,
                       .seed = o->seed,
                       .data_dir = o->data};
    t2_task_set *s;
    if (t2_task_set_open(&s, o->family, &so) < 0)
        return cli_fail(cmd);
    for (size_t i = 0; i < t2_task_set_count(s); i++) {
        const t2_task_item *it = t2_task_set_item(s, i);
        printf("%s  [%s, %s]\n", it->id, t2_task_split_name(it->split), t2_task_label_name(it->label));
        print_indented("prompt:", it->prompt);
        print_indented("answer:", it->answer);
        if (strcmp(it->target, it->answer))
            print_indented("target:", it->target);
    }
    t2_task_set_destroy(&s);
    return 0;
}

/* ---------------------------------------------------------------- dump */

static int cmd_dump(const char *cmd, const topts *o) {
    int rc = need_family(cmd, o, 1);
    if (rc)
        return rc;
    if (!o->n_set)
        return cli_usage_error(cmd, "give --n N (number of documents)");
    if (o->mix && strcmp(o->mix, "pretrain"))
        return cli_usage_error(cmd, "--mix: '%s' is not a mixture (only 'pretrain')", o->mix);
    if (o->format && strcmp(o->format, "text") && strcmp(o->format, "jsonl"))
        return cli_usage_error(cmd, "--format: '%s' is not text or jsonl", o->format);
    t2_task_dump_opts d = {.family = o->family,
                           .split = o->split_set ? o->split : T2_SPLIT_TRAIN,
                           .n = (size_t)o->n,
                           .seed = o->seed,
                           .pretrain = o->mix != NULL,
                           .jsonl = o->format && !strcmp(o->format, "jsonl"),
                           .data_dir = o->data};
    if (t2_task_dump(stdout, &d) < 0)
        return cli_fail(cmd);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "t2 %s: writing stdout: %s\n", cmd, strerror(errno));
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- score */

typedef struct score_ctx {
    t2_task_set *set;
    FILE *csv;
    int verbose;
    size_t rows, correct;
} score_ctx;

static void csv_field(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static int score_row(void *vctx, const json_t *row, size_t line) {
    (void)line;
    score_ctx *c = vctx;
    const json_t *id = json_object_get(row, "id"), *gen = json_object_get(row, "generation");
    if (!json_is_string(id))
        return t2_err_set(T2_EFORMAT,
                          "want {\"id\": string, \"generation\": string}: no \"id\" string");
    if (!json_is_string(gen))
        return t2_err_set(T2_EFORMAT, "want {\"id\": string, \"generation\": string}: no "
                                      "\"generation\" string");
    const t2_task_item *it;
    int rc = t2_task_set_find(c->set, json_string_value(id), &it);
    if (rc < 0)
        return rc;
    t2_task_score sc;
    if ((rc = t2_task_score_item(c->set, it, json_string_value(gen), &sc)) < 0)
        return rc;
    c->rows++;
    c->correct += sc.correct != 0;
    if (c->verbose)
        printf("%-5s %s  extracted '%s'%s%s\n", sc.correct ? "ok" : "wrong", it->id, sc.extracted,
               sc.detail[0] ? "  " : "", sc.detail);
    if (c->csv) {
        csv_field(c->csv, it->id);
        fprintf(c->csv, ",%d,", sc.correct);
        csv_field(c->csv, sc.extracted);
        fputc(',', c->csv);
        csv_field(c->csv, sc.detail);
        fputc('\n', c->csv);
    }
    return 0;
}

static int cmd_score(const char *cmd, const topts *o) {
    int rc = need_family(cmd, o, 0);
    if (rc)
        return rc;
    if (!o->file)
        return cli_usage_error(cmd, "give --file GENERATIONS.jsonl");
    t2_task_opts so = {.split = o->split_set ? o->split : T2_SPLIT_ALL,
                       .n = 0,
                       .data_dir = o->data,
                       .timeout_s = o->timeout};
    score_ctx c = {.verbose = o->verbose};
    if (t2_task_set_open(&c.set, o->family, &so) < 0)
        return cli_fail(cmd);
    if (o->csv) {
        c.csv = fopen(o->csv, "w");
        if (!c.csv) {
            fprintf(stderr, "t2 %s: %s: cannot create: %s\n", cmd, o->csv, strerror(errno));
            t2_task_set_destroy(&c.set);
            return 1;
        }
        fputs("id,correct,extracted,detail\n", c.csv);
    }
    rc = t2_jsonl_read(o->file, score_row, &c);
    int bad_csv = c.csv && (fclose(c.csv) != 0);
    t2_task_set_destroy(&c.set);
    if (rc < 0)
        return cli_fail(cmd);
    if (bad_csv) {
        fprintf(stderr, "t2 %s: %s: write error\n", cmd, o->csv);
        return 1;
    }
    printf("%-14s %8s %8s %9s\n", "family", "rows", "correct", "accuracy");
    printf("%-14s %8zu %8zu %8.2f%%\n", o->family, c.rows, c.correct,
           c.rows ? 100.0 * (double)c.correct / (double)c.rows : 0.0);
    return 0;
}

/* ---------------------------------------------------------------- check-real */

static int cmd_check_real(const char *cmd, const topts *o) {
    if (o->family) {
        const t2_task_family *f = t2_task_family_find(o->family);
        if (!f || f->kind != T2_KIND_REAL)
            return cli_usage_error(cmd, "--family: '%s' is not a real data set", o->family);
    }
    FILE *csv = NULL;
    if (o->csv && !(csv = fopen(o->csv, "w"))) {
        fprintf(stderr, "t2 %s: %s: cannot create: %s\n", cmd, o->csv, strerror(errno));
        return 1;
    }
    if (csv)
        fputs("family,rows,ref_correct,wrong_rejected,seconds,first_failure\n", csv);
    t2_sandbox_result probe;
    const char *iso = "?";
    if (t2_sandbox_run_python("pass\n", 5, NULL, &probe) == 0)
        iso = t2_sandbox_isolation_name(probe.isolation);
    printf("%-14s %6s %12s %15s %8s  %s\n", "data set", "rows", "ref correct", "wrong rejected",
           "seconds", "first reference failure");
    int status = 0;
    for (size_t i = 0; i < t2_task_family_count(); i++) {
        const t2_task_family *f = t2_task_family_at(i);
        if (f->kind != T2_KIND_REAL || (o->family && strcmp(o->family, f->name)))
            continue;
        t2_task_opts so = {.data_dir = o->data, .timeout_s = o->timeout};
        t2_task_check ck;
        if (t2_task_check_real(f->name, &so, (size_t)o->limit, o->jobs, &ck) < 0) {
            printf("%-14s %s\n", f->name, t2_err_msg());
            status = 1;
            continue;
        }
        char a[32], b[32];
        snprintf(a, sizeof a, "%zu/%zu", ck.ref_correct, ck.rows);
        snprintf(b, sizeof b, "%zu/%zu", ck.wrong_rejected, ck.rows);
        printf("%-14s %6zu %12s %15s %8.1f  %s\n", f->name, ck.rows, a, b, ck.seconds,
               ck.first_failure[0] ? ck.first_failure : "-");
        fflush(stdout);
        if (csv) {
            fprintf(csv, "%s,%zu,%zu,%zu,%.2f,", f->name, ck.rows, ck.ref_correct,
                    ck.wrong_rejected, ck.seconds);
            csv_field(csv, ck.first_failure);
            fputc('\n', csv);
        }
        if (ck.wrong_rejected != ck.rows)
            status = 1; /* a scorer accepted a wrong answer */
    }
    printf("sandbox: /usr/bin/python3 -I -S, network isolation: %s\n", iso);
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "t2 %s: %s: write error\n", cmd, o->csv);
        return 1;
    }
    return status;
}

int t2_cmd_tasks(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(tasks_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    char cmd[48];
    snprintf(cmd, sizeof cmd, "tasks %s", sub);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    topts o = {.seed = 1, .jobs = ncpu > 0 && ncpu < 64 ? (int)ncpu : 1};
    int known = !strcmp(sub, "list") || !strcmp(sub, "show") || !strcmp(sub, "dump") ||
                !strcmp(sub, "score") || !strcmp(sub, "check-real");
    if (!known)
        return cli_usage_error("tasks", "unknown sub-command '%s'", sub);
    int rc = parse_opts(cmd, argc - 1, argv + 1, &o);
    if (rc == 1)
        return 0; /* --help */
    if (rc)
        return rc;
    if (!strcmp(sub, "list"))
        return cmd_list();
    if (!strcmp(sub, "show"))
        return cmd_show(cmd, &o);
    if (!strcmp(sub, "dump"))
        return cmd_dump(cmd, &o);
    if (!strcmp(sub, "score"))
        return cmd_score(cmd, &o);
    return cmd_check_real(cmd, &o);
}
