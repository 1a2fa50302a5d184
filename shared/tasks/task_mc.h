/* task_mc.h - multiple-choice items scored by log-likelihood, with no generation: each choice is
 * a continuation of the item's context, and the model picks the choice it finds most likely.
 *
 *   t2_mc_result r;
 *   if (t2_mc_eval(m, tok, pool, set, NULL, n, adapt, &r) < 0) die(t2_err_msg());
 *   ... r.correct[T2_MC_CHAR], r.items[k].pred[T2_MC_SUM], r.items[k].ch[c].sum ...
 *   t2_mc_result_free(&r);
 *
 * The multiple-choice view of an item (t2_mc_view):
 *   ARC (items with choice_text): context "Question: STEM\nAnswer:", choice c the continuation
 *     " TEXT_c"; the answer-only context is "Answer:".
 *   mc families (synthetic items whose answer is "the answer is (X)"): context PROMPT "\n",
 *     choice c the continuation "the answer is (L_c)" for L = A..D; the answer-only context is
 *     empty (BOS alone).
 * A continuation's tokens are those of encode(context + continuation) after its longest common
 * prefix with encode(context) (both BOS first); its log-likelihood is the sum of their log p
 * after the tokens before them, from one t2_forward over the whole text. A text longer than the
 * context is cut from the left (BOS and its last tokens kept, the item counted as truncated); a
 * continuation that alone does not fit fails the item.
 *
 * Scores (t2_mc_norm), the prediction being the choice with the highest (first on a tie):
 *   SUM     summed log p of the continuation
 *   TOKEN   SUM / its number of tokens
 *   CHAR    SUM / its number of bytes (the continuation text's length)
 *   UNCOND  the summed log p after the answer-only context: the control that sees no question
 *   PMI     SUM - UNCOND (the log-likelihood the question adds to the answer)
 */
#ifndef T2_TASK_MC_H
#define T2_TASK_MC_H

#include "engine/model.h"
#include "engine/tokenizer.h"
#include "base/pool.h"
#include "tasks/tasks.h"

#include <stddef.h>

struct t2_adapt;

#define T2_MC_MAX 8 /* choices per item */

typedef enum t2_mc_norm {
    T2_MC_SUM = 0,
    T2_MC_TOKEN,
    T2_MC_CHAR,
    T2_MC_UNCOND,
    T2_MC_PMI,
    T2_MC_NORMS,
} t2_mc_norm;

const char *t2_mc_norm_name(t2_mc_norm k); /* "sum", "token", "char", "uncond", "pmi" */

/* The multiple-choice view of an item (see above); the strings are written into buf. */
typedef struct t2_mc_view {
    int n;                        /* choices, 2..T2_MC_MAX */
    int answer;                   /* index of the right choice */
    char labels[T2_MC_MAX + 1];   /* "ABCD" */
    const char *context, *uncond; /* point into buf */
    const char *cont[T2_MC_MAX];  /* the continuations; point into buf */
    char buf[4096];
} t2_mc_view;

/* 0 with *out filled; T2_EINVAL if the item is not multiple-choice, T2_ERANGE if it does not fit
 * the buffer or a continuation is empty. */
int t2_mc_view_of(const t2_task_item *it, t2_mc_view *out);

typedef struct t2_mc_choice {
    double sum;         /* summed log p after the context */
    double uncond;      /* summed log p after the answer-only context */
    int n_tokens;       /* continuation tokens after the context */
    int n_uncond_tokens;
    int n_bytes;        /* the continuation's length in bytes */
    int *tokens;        /* the whole text (context + continuation) as encoded, n_text; owned */
    int n_text;
    int *uncond_tokens; /* the same for the answer-only text; owned */
    int n_uncond_text;
} t2_mc_choice;

typedef struct t2_mc_item {
    size_t index; /* the item's index in the set */
    int ok;       /* 0: the item could not be scored (too long, not multiple-choice): all wrong */
    int n, answer;
    int truncated; /* 1: some text was cut from the left to fit the context */
    int pred[T2_MC_NORMS];    /* predicted choice per score; -1 if !ok */
    int correct[T2_MC_NORMS]; /* pred == answer */
    t2_mc_choice ch[T2_MC_MAX];
} t2_mc_item;

typedef struct t2_mc_result {
    int n, failed;               /* items; items that could not be scored */
    int truncated;               /* items whose context was cut to fit */
    int correct[T2_MC_NORMS];    /* items[k].correct summed */
    int64_t tokens;              /* tokens run through the model */
    double seconds;
    t2_mc_item *items; /* n, owned */
} t2_mc_result;

/* Score n items of the set (item k is idx[k], or k with idx NULL) with one adaptation (NULL: base
 * weights). Items that are not multiple-choice or do not fit the context are counted in failed
 * and wrong, not fatal. Returns 0 with *out filled, or a negative T2_E code with the message set
 * (out of memory, an index outside the set, an adaptation for another model); then *out holds
 * nothing to free. */
int t2_mc_eval(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool, const t2_task_set *set,
               const size_t *idx, int n, const struct t2_adapt *adapt, t2_mc_result *out);
void t2_mc_result_free(t2_mc_result *r); /* takes a zeroed or freed result */

#endif
