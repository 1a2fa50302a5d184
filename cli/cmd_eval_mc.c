/* t2 eval --score loglik: multiple-choice families scored by the log-likelihood of each choice
 * (eval_mc.h). The table has a row per family and score (sum, per token, per byte, the
 * answer-only control, PMI) with the accuracy, its 95 % Wilson interval and the chance level
 * (mean 1 / choices); --csv one row per item, --choices-csv one row per choice. */
#include "eval_mc.h"

#include "base/t2_err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_mc_norm_parse(const char *s, t2_mc_norm *out) {
    for (int k = 0; k < T2_MC_NORMS; k++)
        if (!strcmp(s, t2_mc_norm_name((t2_mc_norm)k))) {
            *out = (t2_mc_norm)k;
            return 0;
        }
    return t2_err_set(T2_EINVAL, "--norm: '%s' is not sum, token, char, uncond or pmi", s);
}

/* 95 % Wilson score interval for k successes in n trials. */
static void mc_wilson(int k, int n, double *lo, double *hi) {
    *lo = 0, *hi = 1;
    if (n <= 0) return;
    const double z = 1.959963984540054, p = (double)k / n, z2n = z * z / n;
    const double c = (p + z2n / 2) / (1 + z2n);
    const double h = z * sqrt(p * (1 - p) / n + z2n / (4.0 * n)) / (1 + z2n);
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
static void mc_csv_field(FILE *f, const char *s) {
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

static void mc_tokens(FILE *f, const int *t, int n) {
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? " " : "", t[i]);
}

/* The CSV rows of one family's items. */
static void mc_csv_rows(const cli_eval_mc *o, const char *family, const t2_task_set *set,
                        const t2_mc_result *r) {
    for (int k = 0; k < r->n; k++) {
        const t2_mc_item *x = &r->items[k];
        const t2_task_item *it = t2_task_set_item(set, x->index);
        if (o->csv) {
            mc_csv_field(o->csv, it->id);
            fprintf(o->csv, ",%s,%d,%d,%d,%d", family, x->ok && x->correct[o->norm],
                    x->pred[o->norm], x->answer, x->n);
            for (int s = 0; s < T2_MC_NORMS; s++) fprintf(o->csv, ",%d", x->ok && x->correct[s]);
            fputc('\n', o->csv);
        }
        for (int c = 0; o->choices_csv && x->ok && c < x->n; c++) {
            const t2_mc_choice *ch = &x->ch[c];
            FILE *f = o->choices_csv;
            mc_csv_field(f, it->id);
            fprintf(f, ",%s,%d,%d,%d,%d,%.17g,%d,%.17g,", family, c, c == x->answer, ch->n_bytes,
                    ch->n_tokens, ch->sum, ch->n_uncond_tokens, ch->uncond);
            mc_tokens(f, ch->tokens, ch->n_text);
            fputc(',', f);
            mc_tokens(f, ch->uncond_tokens, ch->n_uncond_text);
            fputc('\n', f);
        }
    }
}

/* The table rows of one family (a row per score). */
static void mc_table_rows(const char *family, const char *split, const t2_mc_result *r,
                          double chance) {
    for (int s = 0; s < T2_MC_NORMS; s++) {
        double lo, hi;
        mc_wilson(r->correct[s], r->n, &lo, &hi);
        printf("%-14s %-10s %-7s %6d %7d %8d %8.1f%% [%5.1f, %5.1f]%% %7.1f%%\n", family, split,
               t2_mc_norm_name((t2_mc_norm)s), r->n, r->failed, r->correct[s],
               r->n ? 100.0 * r->correct[s] / r->n : 0.0, 100 * lo, 100 * hi, 100 * chance);
    }
}

typedef struct mc_totals {
    int n, correct[T2_MC_NORMS];
    int64_t tokens;
    double seconds;
} mc_totals;

/* One family: open, score, rows of the table and the CSVs, into the totals. 0, 1 if it could
 * not be opened (reported), < 0 to stop. */
static int mc_family(const cli_eval_mc *o, const t2_task_family *fam, const t2_model *m,
                     const t2_tokenizer *tok, t2_pool *pool, const struct t2_adapt *adapt,
                     mc_totals *tot) {
    t2_task_opts to = {.split = o->split, .seed = o->seed, .data_dir = o->data_dir};
    to.n = o->n_items > 0 ? (size_t)o->n_items : fam->kind == T2_KIND_REAL ? 0 : 200;
    t2_task_set *set = NULL;
    if (t2_task_set_open(&set, fam->name, &to) < 0) {
        fprintf(stderr, "t2 eval: %s\n", t2_err_msg());
        return 1;
    }
    t2_mc_result r;
    int n = (int)t2_task_set_count(set);
    int rc = t2_mc_eval(m, tok, pool, set, NULL, n, adapt, &r);
    if (rc == 0 && r.n > 0 && r.failed == r.n) {
        fprintf(stderr, "t2 eval: %s: no item could be scored by log-likelihood (not a "
                "multiple-choice family: arc-easy, arc-challenge, mc, mc-hard, v2-mc, "
                "v2-mc-num)\n", fam->name);
        t2_mc_result_free(&r);
        t2_task_set_destroy(&set);
        return 1;
    }
    if (rc == 0) {
        double chance = 0;
        for (int k = 0; k < r.n; k++) chance += r.items[k].n ? 1.0 / r.items[k].n : 0;
        mc_table_rows(fam->name, t2_task_split_name(o->split), &r, r.n ? chance / r.n : 0);
        mc_csv_rows(o, fam->name, set, &r);
        if (r.truncated)
            fprintf(stderr, "t2 eval: %s: %d item%s had the context cut from the left (BOS and "
                    "the last tokens kept) to fit the context of %d\n", fam->name, r.truncated,
                    r.truncated > 1 ? "s" : "", m->cfg.seq_len);
        if (r.failed)
            fprintf(stderr, "t2 eval: %s: %d item%s could not be scored (not multiple-choice "
                    "or longer than the context; counted wrong)\n", fam->name, r.failed,
                    r.failed > 1 ? "s" : "");
        tot->n += r.n;
        for (int s = 0; s < T2_MC_NORMS; s++) tot->correct[s] += r.correct[s];
        tot->tokens += r.tokens;
        tot->seconds += r.seconds;
        t2_mc_result_free(&r);
    }
    t2_task_set_destroy(&set);
    return rc;
}

int cli_eval_mc_run(const cli_eval_mc *o, const t2_model *m, const t2_tokenizer *tok,
                    t2_pool *pool, const struct t2_adapt *adapt, int *failed_families) {
    if (o->csv)
        fprintf(o->csv, "id,family,correct,pred,answer,n_choices,correct_sum,correct_token,"
                        "correct_char,correct_uncond,correct_pmi\n");
    if (o->choices_csv)
        fprintf(o->choices_csv, "id,family,choice,is_answer,bytes,tokens,sum,uncond_tokens,"
                                "uncond,text_tokens,uncond_text_tokens\n");
    printf("%-14s %-10s %-7s %6s %7s %8s %9s %16s %8s\n", "family", "split", "score", "n",
           "failed", "correct", "accuracy", "95% interval", "chance");
    mc_totals tot = {0};
    for (int fi = 0; fi < o->n_fams; fi++) {
        int rc = mc_family(o, o->fams[fi], m, tok, pool, adapt, &tot);
        if (rc < 0) return rc;
        *failed_families += rc;
    }
    double lo, hi;
    int k = tot.correct[o->norm];
    mc_wilson(k, tot.n, &lo, &hi);
    printf("\nsummary: model=%s adapt=\"%s\" score=loglik norm=%s tasks=%s split=%s n=%d "
           "correct=%d accuracy=%.4f ci95=%.4f,%.4f", o->model_path, o->desc,
           t2_mc_norm_name(o->norm), o->tasks, t2_task_split_name(o->split), tot.n, k,
           tot.n ? (double)k / tot.n : 0.0, lo, hi);
    for (int s = 0; s < T2_MC_NORMS; s++)
        printf(" %s=%.4f", t2_mc_norm_name((t2_mc_norm)s),
               tot.n ? (double)tot.correct[s] / tot.n : 0.0);
    printf(" tokens=%lld seconds=%.2f\n", (long long)tot.tokens, tot.seconds);
    return 0;
}
