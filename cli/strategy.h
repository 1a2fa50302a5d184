/* strategy.h - the adaptation strategies of `t2 eval --strategy` (docs/DESIGN.md §1, two-pass
 * inference), measured as the deployment runs them (dispatcher/dispatcher.c):
 *
 *   none        base weights, or the --expert / --mix of adapt_opts.h, for every item;
 *   prompt      pass 1: the base model answers the classification prompt; its label picks an
 *               expert by the label map ("other" and empty names: base weights); pass 2 answers
 *               with that expert;
 *   classifier  the same, pass 1 run with the classifier expert;
 *   profile:F   the mixture stored in the task profile F (t2 adapt) for every item; no pass 1.
 *
 * Experts are DIR/NAME.gguf (DIR: --experts, else the factors' folder); each is loaded and its
 * adaptation (α = 1, --apply mode) built once.
 */
#ifndef T2_CLI_STRATEGY_H
#define T2_CLI_STRATEGY_H

#include "adapt_opts.h"
#include "svf/profile.h"
#include "svf/svf.h"
#include "tasks/tasks.h"

#define CLI_STRAT_MAX_EXPERTS (T2_PROFILE_MAX_EXPERTS + T2_LABEL_COUNT + 1)

typedef enum cli_strat_kind {
    CLI_STRAT_NONE = 0,
    CLI_STRAT_PROMPT,
    CLI_STRAT_CLASSIFIER,
    CLI_STRAT_PROFILE,
} cli_strat_kind;

typedef struct cli_strategy {
    cli_strat_kind kind;
    const char *profile_path;                /* profile:FILE */
    const char *classifier;                  /* the classifier expert's name ("classify") */
    int pass1_generate;                      /* 1: pass 1 generates \boxed{label} (--pass1
                                              * generate); 0: it scores the labels */
    char label_expert[T2_LABEL_COUNT][T2_NAME_MAX + 1]; /* per label; "" = base weights */
    /* set up by cli_strategy_setup */
    char dir[4096];                          /* where experts are found */
    int n;                                   /* experts loaded */
    char names[CLI_STRAT_MAX_EXPERTS][T2_NAME_MAX + 1];
    t2_expert *experts[CLI_STRAT_MAX_EXPERTS];
    t2_adapt *single[CLI_STRAT_MAX_EXPERTS]; /* expert i alone, α = 1 (NULL until needed) */
    const t2_adapt *label_adapt[T2_LABEL_COUNT]; /* borrowed from single[]; NULL = base */
    const t2_adapt *classifier_adapt;        /* classifier: borrowed from single[] */
    t2_profile *profile;
    t2_adapt *profile_adapt;
} cli_strategy;

/* Defaults: none, classifier "classify", labels code=code,math=math,reasoning=mc,other=. */
void cli_strategy_init(cli_strategy *s);
/* "none", "prompt", "classifier" or "profile:FILE"; T2_EINVAL with a message otherwise. */
int cli_strategy_parse(cli_strategy *s, const char *arg);
/* "LABEL=NAME,..." (NAME empty: base weights); the labels named replace their defaults, the
 * others keep them. T2_EINVAL with a message for an unknown label or a bad name. */
int cli_strategy_labels(cli_strategy *s, const char *arg);
/* Load what the strategy needs (after cli_adapt_setup loaded ad->factors): the experts of the
 * label map, the classifier, or the profile's experts and mixture (checked against the model by
 * the factors' base sha256). No-op for none. Returns 0 or a T2_E code with the message set. */
int cli_strategy_setup(cli_strategy *s, const cli_adapt *ad, t2_pool *pool);
void cli_strategy_free(cli_strategy *s);

const char *cli_strategy_name(const cli_strategy *s); /* "none", "prompt", ... "profile" */
int cli_strategy_two_pass(const cli_strategy *s);     /* prompt or classifier */
/* The expert name used for a label ("base" for base weights). */
const char *cli_strategy_label_expert(const cli_strategy *s, t2_task_label l);
/* One line describing the strategy, into buf. */
const char *cli_strategy_describe(const cli_strategy *s, char *buf, size_t cap);

#endif
