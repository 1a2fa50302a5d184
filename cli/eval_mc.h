/* eval_mc.h - `t2 eval --score loglik`: multiple-choice families scored by the log-likelihood
 * of each choice (shared/tasks/task_mc.h), called by cmd_eval_tasks.c. */
#ifndef T2_CLI_EVAL_MC_H
#define T2_CLI_EVAL_MC_H

#include "engine/model.h"
#include "engine/tokenizer.h"
#include "base/pool.h"
#include "tasks/task_mc.h"
#include "tasks/tasks.h"

#include <stdint.h>
#include <stdio.h>

struct t2_adapt;

typedef struct cli_eval_mc {
    const t2_task_family *const *fams; /* n_fams families */
    int n_fams;
    t2_task_split split;
    int n_items;          /* -1: default (200 synthetic, all real) */
    uint64_t seed;
    const char *data_dir;
    t2_mc_norm norm;      /* the score of the csv's `correct` column and the summary line */
    FILE *csv;            /* per item, or NULL */
    FILE *choices_csv;    /* per choice (with the token ids), or NULL */
    const char *model_path, *desc, *tasks;
} cli_eval_mc;

/* Parse a --norm value: 0, or T2_EINVAL. */
int cli_mc_norm_parse(const char *s, t2_mc_norm *out);

/* Score every family, print the table and the summary line. Families that cannot be opened are
 * reported on stderr and counted in *failed_families. 0, or < 0 with the message set. */
int cli_eval_mc_run(const cli_eval_mc *o, const t2_model *m, const t2_tokenizer *tok,
                    t2_pool *pool, const struct t2_adapt *adapt, int *failed_families);

#endif
