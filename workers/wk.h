/* wk.h - t2-worker internals: one worker group = one MPI job, a pipeline of ranks.
 *
 * Rank r holds layers [l0, l1) of the model (wk_split_layers: contiguous, balanced by the
 * weights each rank reads per token). Rank 0 (the head) also embeds tokens and talks to the
 * router; rank P-1 (the tail) also runs the final norm and classifier and samples. With P = 1
 * one rank is both.
 *
 * Messages between ranks (wk_pipe, MPI_COMM_WORLD, bytes):
 *   forward, rank i -> i+1, tag WK_TAG_FWD, in order (MPI keeps the order of one sender's
 *   messages with one tag, so a CLOSE for a slot never overtakes that slot's last step):
 *     OPEN     a sequence starts in `slot`: kind, sampling, apply mode, mixture (expert names and
 *              α). Each rank resolves the mixture for its own layers; a failure is written into
 *              the message (first failure wins) and the tail acknowledges to the head (ACK).
 *     PREFILL  n prompt tokens of one slot at positions pos..pos+n-1, as activations (n x D);
 *              on the last chunk the tail samples the first token.
 *     DECODE   n slots, one token each (slot, pos) + n x D activations; the tail samples.
 *     PREFIX   (worker.prefix_cache) right after OPEN: the head's decision for `slot`: map the
 *              pos cached prompt tokens (whole blocks; every rank finds them: all ranks' pools
 *              see the same calls in the same order, so they hold the same blocks), hold
 *              blocks for `last` tokens, and offer the prompt's n tokens (whole blocks, the
 *              body after a uint64 seed naming the weights) to the cache after the last chunk.
 *     CLOSE    a slot ends (release its mixture and sampler).
 *     SHUTDOWN every rank forwards it and exits.
 *   back, tail -> head, tag WK_TAG_BACK: ACK (slot, code, message) and TOKENS (slot, token)...
 *
 * The head never has more than `depth` steps in flight; it sends without blocking (MPI_Isend)
 * and drains the back channel while it waits, so the ring head -> ... -> tail -> head cannot
 * deadlock.
 */
#ifndef T2_WK_H
#define T2_WK_H

#include "engine/chat.h"
#include "engine/model.h"
#include "base/pool.h"
#include "base/t2_limits.h"
#include "engine/sampler.h"
#include "svf/svf.h"
#include "tasks/label_score.h"
#include "t2_conf.h"
#include "engine/tokenizer.h"
#include "engine/transformer.h"

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define WK_NAME_MAX T2_NAME_MAX /* base/t2_limits.h */
#define WK_MIX_MAX 64 /* experts per mixture (= T2_MSG_MIX_EXPERTS_MAX) */

enum { WK_TAG_FWD = 11, WK_TAG_BACK = 12 };
enum {
    WK_MSG_OPEN = 1,
    WK_MSG_PREFILL = 2,
    WK_MSG_DECODE = 3,
    WK_MSG_CLOSE = 4,
    WK_MSG_SHUTDOWN = 5,
    WK_MSG_PREFIX = 6,
    WK_MSG_ACK = 16,
    WK_MSG_TOKENS = 17,
};
enum { WK_KIND_GENERATE = 0, WK_KIND_CLASSIFY = 1 };

/* Every message starts with this; the body follows at offset sizeof(wk_hdr). */
typedef struct wk_hdr {
    int32_t type;
    int32_t n;     /* PREFILL: tokens; DECODE, TOKENS: entries; OPEN: body bytes */
    int32_t slot;  /* OPEN, PREFILL, CLOSE, ACK */
    int32_t pos;   /* PREFILL: first position */
    int32_t last;  /* PREFILL: the prompt's last chunk */
    int32_t code;  /* OPEN (status so far), ACK: 0 or a T2_E* code */
    char msg[232]; /* OPEN, ACK: what failed */
} wk_hdr;

typedef struct wk_pair {
    int32_t slot, val; /* DECODE: position; TOKENS: token */
} wk_pair;

/* A mixture as the group passes it around: names and α, already expanded to
 * n x (n_layers * T2_N_TARGETS) when per_matrix. n == 0: base weights. */
typedef struct wk_mix {
    int n;
    int per_matrix;
    int n_alpha;
    char names[WK_MIX_MAX][WK_NAME_MAX + 1];
    float *alpha; /* n_alpha floats, owned */
} wk_mix;

/* What OPEN carries (then names and alpha). score: a classification scored, not generated:
 * the tail picks each token among the labels' (ls) instead of sampling. */
typedef struct wk_open {
    int32_t kind, apply, n_experts, per_matrix, n_alpha, pad;
    float temperature, top_p;
    uint64_t seed;
    int32_t score, pad2;
    t2_lscore ls;
} wk_open;

/* ---- layer split (wk_split.c) ---- */

/* Split the layers over P ranks: contiguous ranges, each non-empty, minimising the largest
 * per-rank cost, where a layer costs its matrices' bytes and the last rank also pays for the
 * classifier. first[r] .. first[r+1]-1 are rank r's layers (first has P + 1 entries).
 * T2_EINVAL if P > n_layers. */
int wk_split_layers(const t2_model *m, int P, int *first);
/* Bytes of weights read per token by layer l. */
size_t wk_layer_bytes(const t2_model *m, int l);

/* ---- experts and mixtures, per rank (wk_adapt.c) ---- */

typedef struct wk_adapter wk_adapter;

/* dir: where NAME.gguf live; l0..l1: the rank's layers (only those are resolved);
 * cache: resolved mixtures kept (LRU), 0 = none. */
int wk_adapter_new(wk_adapter **out, const t2_factors *f, const char *dir, int l0, int l1,
                   int cache);
void wk_adapter_destroy(wk_adapter **a);
/* How merged W' is stored (worker.merged_type; F32 until set). */
void wk_adapter_set_merged_type(wk_adapter *a, t2_dtype t);
/* The expert NAME (loaded on first use). T2_ENOTFOUND when there is no DIR/NAME.gguf,
 * T2_EINVAL for a name that is not a plain file name, or the load error. */
int wk_adapter_expert(wk_adapter *a, const char *name, const t2_expert **out);
/* A reference to the adaptation of mix for this rank's layers (release it with
 * t2_adapt_release). mix->n must be > 0. */
int wk_adapter_resolve(wk_adapter *a, const wk_mix *mix, int apply, t2_pool *pool, t2_adapt **out);
/* Names of the *.gguf expert files in dir (at most max, sorted); the count. */
int wk_list_experts(const char *dir, char ***names, int max);
void wk_free_names(char **names, int n);

/* ---- MPI transport (wk_pipe.c) ---- */

typedef struct wk_pipe wk_pipe;

int wk_pipe_new(wk_pipe **out);
void wk_pipe_destroy(wk_pipe **p); /* waits for sends in flight */
/* A send buffer of at least len bytes (reused once its previous send completed). */
void *wk_pipe_buf(wk_pipe *p, size_t len);
/* Send the buffer from wk_pipe_buf (len bytes) without blocking. */
int wk_pipe_send(wk_pipe *p, void *buf, size_t len, int dest, int tag);
/* Complete finished sends (call often). */
void wk_pipe_progress(wk_pipe *p);
/* Receive a message from src with tag if one is waiting: 1 with *msg (valid until the next
 * poll on this pipe), 0 if none. */
int wk_pipe_poll(wk_pipe *p, int src, int tag, void **msg, size_t *len);
/* Blocking receive, sleeping politely (not spinning a core) while nothing comes. */
int wk_pipe_wait(wk_pipe *p, int src, int tag, void **msg, size_t *len);

/* ---- one rank's stage (wk_stage.c) ---- */

typedef struct wk_rslot {
    t2_state *st;
    t2_adapt *adapt;
    t2_sampler *smp; /* tail */
    int open;
    int score;    /* tail: pick among the labels' tokens (ls) instead of sampling */
    t2_lscore ls;
    /* prefix reuse: the prompt's whole-block tokens, offered to the cache after the last chunk */
    int *ptok;    /* (n_ctx), allocated on first use */
    int n_ptok;   /* 0: nothing to offer */
    uint64_t pseed;
} wk_rslot;

typedef struct wk_stage {
    int rank, size, l0, l1;
    int is_head, is_tail;
    t2_model *m;
    t2_pool *pool;
    t2_factors *f; /* NULL: no adaptation */
    wk_adapter *ad;
    int n_slots;
    wk_rslot *slots;
    int D, V, batch, n_ctx;
    t2_kvpool *kv; /* the rank's KV blocks, shared by its slots */
    /* per-step scratch */
    t2_state **sts;
    int *pos, *toks;
    float *xn; /* (n_slots, D) normed activations for the classifier */
    const float **xs;
    float **ys;
    wk_pipe *pipe;
    /* tail output for P = 1: tokens of the last step (pairs), read by the head */
    wk_pair *out;
    int n_out;
    float *score_rows; /* tail: (T2_LSCORE_DEPTH + 1) x V logits of a scored classification */
    t2_layer_hook hook; /* head: between the layers of a prompt chunk (heartbeats) */
    void *hook_arg;
} wk_stage;

int wk_stage_init(wk_stage *s, t2_model *m, t2_factors *f, const t2_conf *c, int rank, int size,
                  const int *first, wk_pipe *pipe);
void wk_stage_free(wk_stage *s);

/* OPEN for this rank: resolve the mixture, make the tail's sampler. 0 or a T2_E* code (the
 * message in t2_err_msg). On failure nothing is held for the slot. */
int wk_stage_open(wk_stage *s, int slot, const wk_open *o, const wk_mix *mix);
void wk_stage_close(wk_stage *s, int slot);
/* Run this rank's layers on n prompt tokens of slot (head: from tokens; others: activations x).
 * Tail: on the last chunk, sample into s->out. Others: the activations are left in the slot's
 * state (t2_state_x) for the caller to forward. */
int wk_stage_prefill(wk_stage *s, int slot, int pos, int n, int last, const int *tokens,
                     const float *x);
/* One token for each of n slots at pos[i] (head: tokens[i]; others: x has n x D). Tail:
 * samples into s->out (n pairs). */
int wk_stage_decode(wk_stage *s, int n, const int *slots, const int *pos, const int *tokens,
                    const float *x);

/* Prefix reuse (engine/kvcache.h). The seed naming the weights a sequence runs with: the
 * mixture (experts, α) and how it is applied, W' storage and the KV cache type. */
uint64_t wk_prefix_seed(const wk_open *o, const wk_mix *mix, int merged_type, int kv_type);
/* Head: how many of the first max_reuse tokens (whole blocks) are cached under seed (*n_found),
 * and whether, mapping n_reuse <= *n_found of them, blocks for n_tokens fit in the pool now:
 * 0, or T2_EBUSY with the numbers. Changes nothing. */
int wk_stage_prefix_look(wk_stage *s, uint64_t seed, const int *tokens, int max_reuse,
                         int *n_found);
int wk_stage_prefix_fits(wk_stage *s, uint64_t seed, const int *tokens, int n_reuse,
                         int n_tokens);
/* Every rank (PREFIX): map exactly n_reuse cached tokens of tokens into the slot (T2_EPROTO if
 * this rank does not hold them all), hold blocks for n_tokens, and keep tokens[0..n_tok) to
 * offer to the cache after the slot's last prompt chunk. Nothing held on failure. */
int wk_stage_prefix(wk_stage *s, int slot, uint64_t seed, int n_reuse, int n_tokens,
                    const int *tokens, int n_tok);

/* Non-head ranks: serve forward messages until SHUTDOWN. Returns 0 or a fatal code. */
int wk_stage_serve(wk_stage *s);
/* Encode / decode an OPEN body. */
size_t wk_open_size(const wk_open *o);
void wk_open_pack(void *body, const wk_open *o, const wk_mix *mix);
int wk_open_unpack(const void *body, size_t len, wk_open *o, wk_mix *mix);
void wk_mix_free(wk_mix *mix);

/* ---- classification (wk_classify.c) ---- */

/* "Classify: QUESTION\n" into buf (cap bytes); the length it needs, as snprintf. */
size_t wk_classify_prompt(const char *question, char *buf, size_t cap);
/* The label of a classification's \boxed{...} ("code", "math", "reasoning"), else "other". */
const char *wk_classify_label(const char *generation);

/* ---- a prompt's tokenization, run on the head's tokenizer thread (wk_tok.c) ---- */

/* Everything the tokenization of one job needs, copied (the job may be cancelled while the
 * thread works), and its outcome. Made and freed by the head; between t2_bgq_submit and
 * t2_bgq_take only the tokenizer thread touches it (wk_tokreq_run). */
typedef struct wk_tokreq {
    int slot;   /* the head's slot waiting for it */
    int orphan; /* head only: the slot was given up meanwhile: free the request when it is back */
    int kind;   /* WK_KIND_* */
    int score_ok; /* a classification may be scored (worker.pass1 "score") */
    int n_ctx;
    const t2_tokenizer *tok;      /* borrowed, read-only (shared with the head's loop) */
    const t2_chat_template *chat; /* borrowed, read-only */
    char *text;                   /* prompt (NUL-terminated), or the messages' strings */
    size_t len;
    t2_chat_msg *msgs; /* a conversation (NULL: a prompt) */
    int n_msgs, add_generation_prompt;
    /* out */
    int rc;        /* 0 or a T2_E* code */
    char msg[512]; /* the error's message */
    int *tokens;   /* n_ctx ids */
    int n_tokens;
    int score; /* a scored classification: ls set */
    t2_lscore ls;
} wk_tokreq;

/* A prompt's tokenization (text: len bytes, no NUL). T2_ENOMEM. */
int wk_tokreq_new_prompt(wk_tokreq **out, const t2_tokenizer *tok, int n_ctx, int kind, int slot,
                         const void *text, size_t len, int score_ok);
/* A conversation's rendering and tokenization (a generation). T2_ENOMEM. */
int wk_tokreq_new_chat(wk_tokreq **out, const t2_tokenizer *tok, const t2_chat_template *chat,
                       int n_ctx, int slot, const t2_chat_msg *msgs, int n_msgs, int add_gen);
/* The work (t2_bgq_fn): tokens and n_tokens, or rc < 0 and msg. */
void wk_tokreq_run(void *req);
void wk_tokreq_free(void *req); /* NULL is fine */

/* ---- the head (wk_head.c) ---- */

/* Serve the router until *stop (SIGTERM), then shut the group down. 0 or a fatal code. */
int wk_head_run(wk_stage *s, const t2_conf *c, t2_tokenizer *tok, volatile int *stop);

#endif
