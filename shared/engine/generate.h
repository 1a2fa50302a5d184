/* generate.h - batched text generation with continuous batching, for t2 eval, the REINFORCE
 * trainer and the workers.
 *
 *   t2_gen_request rq[n] = {{.prompt = "Jo had 6 eggs and traded 3. How many now?\n"}, ...};
 *   t2_gen_params gp;
 *   t2_gen_params_default(&gp);             // greedy, stop at "\n", 64 new tokens, 8 in flight
 *   t2_gen_result res[n];
 *   t2_gen_stats st;
 *   if (t2_generate_batch(model, tok, pool, rq, n, &gp, res, &st) < 0) die(t2_err_msg());
 *   ... res[i].text, res[i].n_gen, res[i].stop ...
 *   t2_gen_results_free(res, n);
 *
 * Semantics: each request is generated exactly as `t2 run -p PROMPT -t TEMP` would generate it
 * alone, whatever else shares the batch, the batch size or the thread count: the prompt is
 * encoded with BOS (t2_tok_encode(.., bos = 1, ..)) and run with t2_forward in chunks of
 * params.prompt_batch tokens, every further token is one step of t2_forward_step_multi (whose
 * numbers are bit-identical to t2_forward for one sequence), and each request has its own
 * sampler seeded with its own seed. A sampled BOS or EOS ends the generation (it is not part of
 * the text). The text is the concatenation of t2_tok_decode(prev, token) pieces, where a piece
 * of one byte that is an ASCII control character other than whitespace is dropped (as `t2 run`
 * prints; bytes >= 0x80 are kept so UTF-8 survives). When a stop string appears in the text,
 * the text is cut before it and the generation ends. At most params.max_tokens tokens are
 * sampled per request, and no more than the context allows: the last sampled token need not
 * be run, so a prompt of P tokens gets at most n_ctx - P + 1 (as `t2 run -n n_ctx`).
 *
 * Scheduling (continuous batching): up to params.batch sequences are in flight. A free slot
 * takes the next request (in order) and runs its prompt; then all sequences in flight advance
 * one token per multi-sequence step; a sequence that stops frees its slot for the next
 * request at once. Sequences whose adaptations come from different factor files are stepped
 * in separate groups (a multi-sequence step shares U and Vᵀ).
 *
 * Prefix reuse (params.prefix_cache): all slots share one KV pool (engine/kvcache.h); a prompt
 * whose first whole blocks of 64 tokens were run before with the same adaptation (the same
 * t2_adapt object) maps their keys and values instead of running them, and only the rest is
 * run, in chunks whose boundaries are those of a run from position 0: the results are the same
 * bits (prompt rows do not depend on their chunk when it has 2 tokens or more; on F32/F16/BF16
 * weights and quantized ones at the avx512vnni level - the OpenBLAS fallback of lower levels
 * promises no such thing). A finished request's prompt blocks stay cached until the pool needs
 * them (least recently used first). stats.reused_tokens counts the tokens not run.
 *
 * Prompts longer than the context: with params.truncate, the prompt is cut from the left
 * (BOS + its last tokens), leaving room for min(max_tokens, n_ctx / 2) new tokens, and
 * result.truncated counts the dropped tokens; without it the request fails (result.error) and
 * the others go on.
 */
#ifndef T2_GENERATE_H
#define T2_GENERATE_H

#include "engine/model.h"
#include "base/pool.h"
#include "base/t2_limits.h"
#include "engine/tokenizer.h"

#include <stdint.h>

struct t2_adapt;
struct t2_gen_result;

#define T2_GEN_MAX_STOPS 8

/* Why a generation ended. */
typedef enum t2_gen_stop {
    T2_GEN_STOP_NONE = 0, /* not run (request failed: see error) */
    T2_GEN_STOP_STRING,   /* a stop string appeared (it is not in the text) */
    T2_GEN_STOP_EOS,      /* EOS or BOS sampled */
    T2_GEN_STOP_LENGTH,   /* max_tokens sampled */
    T2_GEN_STOP_CONTEXT,  /* the context is full */
} t2_gen_stop;
const char *t2_gen_stop_name(t2_gen_stop s); /* "stop", "eos", "length", "context", "none" */

typedef struct t2_gen_request {
    const char *prompt;           /* the whole text given to the model, e.g. "PROMPT\n" */
    const struct t2_adapt *adapt; /* borrowed; NULL = base weights */
    uint64_t seed;                /* sampler seed (unused when greedy) */
} t2_gen_request;

/* Called as each request finishes (in completion order), from the calling thread. */
typedef void (*t2_gen_done_fn)(void *ctx, int index, const struct t2_gen_result *r);

typedef struct t2_gen_params {
    int max_tokens;        /* new tokens per request (>= 1); default 64 */
    float temperature;     /* 0 = greedy (default) */
    float top_p;           /* as t2_sampler_new; default 1 (off) */
    int batch;             /* sequences in flight, 1..T2_MAX_SEQS; default 8 */
    int prompt_batch;      /* prompt tokens per forward (t2 run --batch); default 128 */
    int n_ctx;             /* context per sequence; 0 = the model's seq_len */
    t2_dtype kv_type;      /* KV cache type (engine/kvcache.h); default T2_F32 */
    int truncate;          /* cut over-long prompts from the left (see above); default 1 */
    int prefix_cache;      /* reuse the KV blocks of prompt prefixes seen before (see above);
                            * default 1 */
    const char *stop[T2_GEN_MAX_STOPS]; /* stop strings (NULL-terminated list); default "\n" */
    t2_gen_done_fn on_done; /* optional */
    void *on_done_ctx;
} t2_gen_params;

typedef struct t2_gen_result {
    char *text;         /* the generation, NUL-terminated (malloc'd) */
    size_t len;         /* strlen(text) */
    int *tokens;        /* prompt tokens (n_prompt, after truncation) then the n_gen sampled ones
                         * (including a final EOS, or the token that completed a stop string) */
    int n_prompt, n_gen;
    int truncated;      /* prompt tokens dropped by truncation */
    t2_gen_stop stop;
    int error;          /* 0, or the T2_E code why this request failed */
    char message[160];  /* the error message */
    double seconds;     /* wall time from its prompt's start to its end */
} t2_gen_result;

typedef struct t2_gen_stats {
    int64_t prompt_tokens, gen_tokens;
    int steps;            /* multi-sequence decode steps */
    double mean_in_flight; /* sequences per decode step, averaged */
    double prompt_seconds, decode_seconds, wall_seconds;
    int failed, truncated; /* requests that failed / had their prompt cut */
    int64_t reused_tokens; /* prompt tokens taken from the prefix cache, not run */
} t2_gen_stats;

void t2_gen_params_default(t2_gen_params *p);

/* Generate for n requests (any n >= 0) into out[0..n). Returns 0 even if single requests
 * failed (out[i].error, stats->failed); a negative T2_E code with the message set for bad
 * parameters or when the engine fails (out of memory, a mixture for another model), in which
 * case out[] is freed and zeroed. stats may be NULL. */
int t2_generate_batch(const t2_model *m, const t2_tokenizer *tok, t2_pool *pool,
                      const t2_gen_request *reqs, int n, const t2_gen_params *p,
                      t2_gen_result *out, t2_gen_stats *stats);
void t2_gen_results_free(t2_gen_result *r, int n);

#endif
