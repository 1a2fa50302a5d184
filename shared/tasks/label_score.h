/* label_score.h - pass 1 by scoring: the label of a classification read from the logits of one
 * prefill instead of generating `\boxed{label}` token by token.
 *
 * For the question Q the four documents "Classify: Q" T2_TASK_SEP "\boxed{LABEL" (LABEL = code,
 * math, reasoning, other) are encoded as the model saw them in training (BOS first, one
 * encoding of the whole text, so a tokenizer's merges across the boundary are respected). Their
 * longest common token prefix is prefilled once; the rest of each document is that label's
 * tail. The label is then chosen as greedy decoding restricted to the four tails would choose
 * it: at depth d the candidate labels' tokens d are compared by their logit, the labels whose
 * token d is the best one stay, and as soon as one label is left it is the answer. Labels that
 * share leading tokens (a shared prefix longer than the common one) cost one more forward step
 * per shared token; with distinct first tokens (the bundled byte-level model: c, m, r, o) the
 * label is known after the prefill.
 *
 * The generating pass would have to produce the prefix's tokens after the prompt ("\boxed{")
 * itself. They are checked: the last n_check + 1 rows of the prefill give logits, row i must have
 * check[i] as its (first) largest logit, as greedy decoding picks it, else the answer is "other"
 * (what a generation that names no label gets). So scoring and generating agree whenever the
 * greedy generation starts with "\boxed{" and a label's distinguishing tokens.
 *
 *   t2_lscore w;
 *   int *pre = ..., n_pre;                 // room for the prompt's tokens + T2_LSCORE_DEPTH
 *   t2_lscore_setup(tok, question, pre, cap, &n_pre, &w);
 *   t2_forward(st, pool, pre, n_pre, 0, NULL);
 *   for (int pos = n_pre; t2_lscore_label(&w) < 0; pos++) {
 *       int t = t2_lscore_pick(&w, t2_state_logits(st));
 *       if (t2_lscore_label(&w) < 0) t2_forward(st, pool, &t, 1, pos, NULL);
 *   }
 */
#ifndef T2_LABEL_SCORE_H
#define T2_LABEL_SCORE_H

#include "base/pool.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "tasks/tasks.h"

#include <stddef.h>
#include <stdint.h>

struct t2_adapt;

#define T2_LSCORE_DEPTH 16 /* tokens of a label's tail kept (longer tails are cut: the labels
                            * are told apart long before) */

/* Plain data (copied between pipeline ranks as it is). */
typedef struct t2_lscore {
    int32_t n_labels;                       /* T2_LABEL_COUNT */
    int32_t len[T2_LABEL_COUNT];            /* tokens of each tail (1..T2_LSCORE_DEPTH) */
    int32_t tok[T2_LABEL_COUNT][T2_LSCORE_DEPTH];
    int32_t depth;                          /* tokens chosen so far */
    uint32_t cand;                          /* bit l: label l still possible */
    int32_t n_check;                        /* the prefix's last tokens, those a generating */
    int32_t check[T2_LSCORE_DEPTH];         /* pass would have produced itself */
} t2_lscore;

/* The common prefix of the four documents into prefix (at most cap tokens; *n_prefix) and the
 * tails into *w (depth 0, all labels possible). T2_ERANGE when the prefix needs more than cap
 * tokens, T2_EINVAL when a tail is empty (a tokenizer that cannot tell the labels apart). */
int t2_lscore_setup(const t2_tokenizer *tok, const char *question, int *prefix, int cap,
                    int *n_prefix, t2_lscore *w);
/* Check a t2_lscore that came from elsewhere (counts, lengths, token ids below vocab). */
int t2_lscore_check(const t2_lscore *w, int vocab);
/* The label decided (index), or -1 while more than one is possible. */
int t2_lscore_label(const t2_lscore *w);
/* The forced tokens: rows[i] (i < n_check, V floats each) are the logits of the prefix rows
 * that predict check[i]; a row whose largest logit is not check[i] leaves no label possible. */
void t2_lscore_verify(t2_lscore *w, const float *rows, int vocab);
/* Choose token `depth` among the candidates' by its logit (ties: the lower label index), keep
 * the candidates that have it, advance. Returns the token (to run next if no label is decided
 * yet), or -1 when nothing is left to choose (a label was already decided). */
int t2_lscore_pick(t2_lscore *w, const float *logits);
/* Advance with a token chosen elsewhere (the pipeline's head mirrors its tail): keep the
 * candidates whose token `depth` is `token`. Returns the label decided or -1. */
int t2_lscore_follow(t2_lscore *w, int token);

/* Pass 1 by scoring for n items of the set (item idx[k], idx NULL: item k) with one adaptation
 * (NULL: base weights): labels[k]; prefill_tokens (may be NULL) receives the tokens prefilled
 * and steps (may be NULL) the forward steps after the prefills. An item whose prompt does not
 * fit the context, or that the tokenizer cannot score, gets "other" (as a failed generating pass
 * 1 does). Returns 0 or a negative T2_E code (out of memory, an index outside the set). */
int t2_task_classify_items_score(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                                 const t2_task_set *set, const size_t *idx, int n,
                                 const struct t2_adapt *adapt, t2_task_label *labels,
                                 int64_t *prefill_tokens, int64_t *steps);

#endif
