/* task_eval.h - run a model on task items and score what it generates: the loop that t2 eval,
 * t2 adapt (the few-shot search's fitness) and the expert trainer's validation share.
 *
 *   t2_teval_params p;
 *   t2_teval_params_default(&p);    // greedy, the family's stop and length, batch 8
 *   p.loglik = 1;                   // also the reference answers' log-likelihood
 *   t2_teval_result r;
 *   if (t2_task_eval(m, tok, pool, set, idx, n, adapts, &p, &r) < 0) die(t2_err_msg());
 *   ... r.correct, r.items[k].correct, r.items[k].score.extracted, r.gen[k].text ...
 *   t2_teval_result_free(&r);
 *
 * Item k of the list is set item idx[k] (idx NULL: item k). Its prompt is PROMPT T2_TASK_SEP,
 * generated with continuous batching (generate.h: the result of an item never depends on what
 * shares its batch, the batch size or the thread count) with adapts[k] (adapts NULL: p.adapt for
 * every item; NULL entries: base weights), then scored by the family's scorer. Real code
 * families run their sandboxes p.score_threads at a time, after generation.
 *
 * Log-likelihood (p.loglik): the mean log-probability per token of the item's reference answer
 * after its prompt, i.e. of the tokens of "PROMPT\nANSWER" (BOS first) that follow those of
 * "PROMPT\n", computed with one t2_forward over the whole document (logits_all) and the item's
 * adaptation. It breaks ties between equally accurate candidates in the few-shot search.
 *
 * Pass 1 of two-pass inference (t2_task_classify_items): the classification prompt
 * t2_task_classify_prompt(item prompt) T2_TASK_SEP, greedy, stop at the newline, 24 tokens, with
 * one adaptation (NULL: base weights = the "prompt" strategy; the classifier expert = the
 * "classifier" strategy); t2_task_classify_parse of the generation is the label, "other" when it
 * names none (as the dispatcher does).
 */
#ifndef T2_TASK_EVAL_H
#define T2_TASK_EVAL_H

#include "engine/generate.h"
#include "engine/model.h"
#include "base/pool.h"
#include "tasks/tasks.h"
#include "engine/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

struct t2_adapt;

/* When a generation ends (besides EOS and length). */
typedef enum t2_teval_stop {
    T2_TEVAL_STOP_DEFAULT = 0, /* newline for synthetic families, blank line for real data */
    T2_TEVAL_STOP_NEWLINE,
    T2_TEVAL_STOP_BLANK,
    T2_TEVAL_STOP_NONE,
} t2_teval_stop;

#define T2_CLASSIFY_MAX_TOKENS 24 /* pass 1: enough for "\boxed{reasoning}" and some slack */

typedef struct t2_teval_params {
    int max_tokens;      /* new tokens per answer; 0: 32 for synthetic families, 256 for real */
    t2_teval_stop stop;
    float temperature;   /* 0 = greedy (default) */
    float top_p;         /* default 1 (off) */
    int batch;           /* sequences in flight, 1..T2_MAX_SEQS; default 8 */
    uint64_t seed;       /* sampling: item i of the set gets seed * 0x9E3779B97F4A7C15 + i + 1 */
    int score_threads;   /* real code families: sandboxes at once; default 1 */
    int loglik;          /* 1: fill items[k].loglik; default 0 */
    const struct t2_adapt *adapt; /* every item's adaptation when no per-item list is given */
    t2_gen_done_fn on_done;       /* optional: called as each generation ends (index k) */
    void *on_done_ctx;
} t2_teval_params;

typedef struct t2_teval_item {
    size_t index;        /* the item's index in the set */
    int correct;         /* 1: generated without error and the scorer accepted it */
    int score_rc;        /* 0, or the T2_E code why scoring failed (message in score.detail) */
    t2_task_score score; /* extracted answer, detail */
    double loglik;       /* mean log p per reference-answer token; NAN if not asked or failed */
    int loglik_tokens;   /* answer tokens it averages */
} t2_teval_item;

typedef struct t2_teval_result {
    int n;                                /* items */
    int correct;                          /* items[k].correct summed */
    int failed, truncated;                /* generation requests failed / prompts cut */
    int score_errors, loglik_errors;      /* items that could not be scored / measured */
    int64_t prompt_tokens, gen_tokens;
    double gen_seconds, score_seconds, loglik_seconds;
    double seconds;     /* wall time of the whole call */
    double loglik_mean; /* mean of items[k].loglik over the items that have one; NAN if none */
    t2_teval_item *items; /* n, owned */
    t2_gen_result *gen;   /* n generations (text, tokens, stop, error), owned */
} t2_teval_result;

void t2_teval_params_default(t2_teval_params *p);

/* Generate for and score n >= 0 items of the set (see above). adapts: NULL or n entries (each
 * borrowed, NULL = base). Returns 0 with *out filled (single requests that failed to generate or
 * score are counted, not fatal), or a negative T2_E code with the message set (bad parameters,
 * an index outside the set, out of memory, an adaptation made for another model), in which case
 * *out holds nothing to free. */
int t2_task_eval(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool, const t2_task_set *set,
                 const size_t *idx, int n, const struct t2_adapt *const *adapts,
                 const t2_teval_params *p, t2_teval_result *out);
void t2_teval_result_free(t2_teval_result *r); /* takes a zeroed or freed result */

/* Score generations (gens[k] for item idx[k]; NULL text = "") into items[k] (index, correct,
 * score_rc, score), `threads` at a time. Thread-safe per the tasks.h contract. */
void t2_task_score_items(const t2_task_set *set, const size_t *idx, int n,
                         const t2_gen_result *gens, t2_teval_item *items, int threads);

/* Summed log-probability of text[from..n) under logits (row t of V floats predicts token t + 1):
 * each row's log-softmax in double, rows in order. The one copy for answers and choices. */
double t2_task_sum_logprob(const float *logits, int V, const int *text, int from, int n);

/* Mean log-probability per token of each item's reference answer after its prompt (see above):
 * loglik[k] for item idx[k] with adapts[k] (NULL list: `adapt` for all); n_tokens may be NULL.
 * An item whose document does not fit in the context gets NAN (*n_failed counts them, may be
 * NULL). Returns 0 or a negative T2_E code (out of memory, an adaptation for another model). */
int t2_task_answer_loglik(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                          const t2_task_set *set, const size_t *idx, int n,
                          const struct t2_adapt *const *adapts, const struct t2_adapt *adapt,
                          double *loglik, int *n_tokens, int *n_failed);

/* Pass 1 (see above) for n items: labels[k] for item idx[k]; generations (may be NULL) receives
 * the n classification generations (free them with t2_gen_results_free and free()). batch as in
 * t2_teval_params; stats may be NULL. Returns 0 or a negative T2_E code. A request that failed
 * gets label "other". */
int t2_task_classify_items(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                           const t2_task_set *set, const size_t *idx, int n,
                           const struct t2_adapt *adapt, int batch, t2_task_label *labels,
                           t2_gen_result **generations, t2_gen_stats *stats);

#endif
