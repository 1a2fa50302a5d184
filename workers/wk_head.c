/* wk_head.c - rank 0 of a worker group: the router's jobs in, text out, and the scheduler of
 * the pipeline.
 *
 * The head holds up to n_slots sequences (worker.capacity generate jobs + classify_capacity
 * classify jobs). Each loop it
 *   - takes the tokens the tail sent back (or, with one rank, its own), streams each new piece
 *     of text as a Chunk and decides whether the sequence ends (EOS/BOS, max tokens, context
 *     full; a classification also ends at its first newline);
 *   - takes new jobs while slots are free: validates the task cheaply and hands its prompt to
 *     the tokenizer thread (wk_tok.c; a long prompt takes long to encode, and the loop must keep
 *     answering the router's heartbeats); the slot waits, HS_TOKENIZING, while the loop goes on;
 *   - admits jobs whose tokens are back (with BOS, as t2 run), oldest first: resolves the mixture
 *     for its own layers, takes room in the KV pool and sends OPEN down the pipeline;
 *   - issues work: one prompt chunk of `batch` tokens for a sequence being prefilled (chunks
 *     exactly as t2_forward cuts them, so a prompt runs as in t2 run) and one decode step for
 *     the sequences that have their next token, as long as fewer than `depth` (= ranks) steps
 *     are in the pipeline. A step takes at most ceil(decoding / ranks) sequences, so with P
 *     ranks about P micro-batches circulate and every rank has work.
 * A sequence's numbers never depend on its batch (t2_forward_layers_multi and
 * t2_matvec_batch are bit-identical per sequence), so the text is byte-identical to t2 run's.
 */
#include "wk.h"

#include "base/backoff.h"
#include "base/bgq.h"
#include "base/buf.h"
#include "base/name.h"
#include "base/platform.h"
#include "base/t2_err.h"
#include "engine/chat.h"
#include "base/t2_log.h"
#include "t2_worker_api.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* A slot's life: FREE -> TOKENIZING (its prompt on the tokenizer thread) -> ADMIT (tokens here;
 * waits, oldest first, for room in the KV pool) -> OPENING (P > 1: OPEN sent) -> PREFILL ->
 * READY <-> FLIGHT -> FREE. */
enum { HS_FREE = 0, HS_OPENING, HS_PREFILL, HS_READY, HS_FLIGHT, HS_TOKENIZING, HS_ADMIT };

typedef struct hslot {
    int state;
    int dead; /* cancelled: end it as soon as nothing of it is in the pipeline */
    int wi;   /* which t2_worker (service) the job came from */
    t2_job *job;
    int kind;
    int *tok;            /* prompt tokens (n_ctx) */
    int n_prompt, sent;  /* prompt tokens, and how many went into the pipeline */
    int reused;          /* prompt tokens mapped from the prefix cache (sent starts there) */
    int last, next, pos; /* previous token, token to run next and its position */
    int n_gen, max_gen;
    t2_buf text; /* the answer so far */
    double t0;
    T2__Mixture *mix_used; /* for the Result: borrowed from the job, or &classifier_mix */
    T2__Mixture base_mix;  /* the empty mixture: base weights */
    /* streaming (generate): tokens not yet sent, chunk k holds min(2^(k-1), chunk_max) */
    uint32_t pend[T2_MSG_CHUNK_TOKENS_MAX];
    int n_pend, chunk_k, chunk_max;
    size_t text_sent; /* bytes of text already in chunks */
    int score;             /* a classification scored (worker.pass1 "score"): ls mirrors the
                            * tail's choice of label tokens */
    t2_lscore ls;
    wk_tokreq *req; /* HS_TOKENIZING: its tokenization (the tokenizer thread's meanwhile) */
    uint64_t seq;   /* order of arrival: jobs are admitted oldest first */
} hslot;

typedef struct head {
    wk_stage *s;
    const t2_conf *c;
    t2_tokenizer *tok;
    int nw;
    t2_worker *w[T2_CONF_MAX_SERVICES];
    int classify_svc[T2_CONF_MAX_SERVICES];
    hslot *sl;
    int n;
    int inflight, depth, rr;
    /* the classifier expert as a mixture */
    T2__ExpertAlpha cls_ea;
    T2__ExpertAlpha *cls_eap[1];
    T2__Mixture cls_mix;
    uint64_t jobs, done, errors, tokens, steps, stepped;
    uint64_t prompt_tokens, reused_tokens; /* prompt tokens of accepted jobs / from the cache */
    int has_curve;
    t2_curve_client curve; /* this group's CURVE keys (security.worker_key) */
    t2_chat_template *chat; /* the model's chat template (NULL: it has none) */
    size_t max_piece;       /* the tokenizer's longest piece, bytes */
    double progress_at;     /* ms: the last answer from the tail, or when one became due */
    t2_bgq *tq;     /* the tokenizer thread and its queue of wk_tokreq */
    uint64_t seq;   /* jobs taken so far (hslot.seq) */
    int admit_due;  /* a slot reached HS_ADMIT or a sequence ended since admit() last ran */
} head;

static double now_ms(void) { return t2_now() * 1000.0; }

/* ---- sending into the pipeline ------------------------------------------------------------- */

static int pipe_send(head *h, const wk_hdr *hdr, const void *b1, size_t l1, const void *b2,
                     size_t l2) {
    char *buf = wk_pipe_buf(h->s->pipe, sizeof *hdr + l1 + l2);
    if (!buf) return t2_err_set(T2_ENOMEM, "out of memory for a pipeline message");
    memcpy(buf, hdr, sizeof *hdr);
    if (l1) memcpy(buf + sizeof *hdr, b1, l1);
    if (l2) memcpy(buf + sizeof *hdr + l1, b2, l2);
    return wk_pipe_send(h->s->pipe, buf, sizeof *hdr + l1 + l2, 1, WK_TAG_FWD);
}

static void fatal(const char *what) {
    T2_ERROR("%s: %s: the group stops", what, t2_err_msg());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* ---- ending a sequence ---------------------------------------------------------------------- */

static void slot_reset(head *h, hslot *q) {
    int slot = (int)(q - h->sl);
    if (h->s->size > 1) {
        wk_hdr c = {.type = WK_MSG_CLOSE, .slot = slot};
        if (pipe_send(h, &c, NULL, 0, NULL, 0) < 0) fatal("CLOSE");
    }
    wk_stage_close(h->s, slot);
    h->admit_due = 1; /* its KV blocks are free: a waiting job may fit now */
    t2_job_destroy(&q->job);
    q->state = HS_FREE;
    q->dead = 0;
    q->text.len = 0;
    q->text_sent = 0;
    q->n_pend = q->chunk_k = 0;
    q->mix_used = NULL;
}

static void fill_result(head *h, hslot *q, T2__Result *r, int reason) {
    r->has_text = 1;
    r->text.data = (uint8_t *)q->text.data;
    r->text.len = q->text.len;
    r->has_finish_reason = 1;
    r->finish_reason = reason;
    r->has_prompt_tokens = r->has_completion_tokens = 1;
    r->prompt_tokens = (uint32_t)q->n_prompt;
    r->completion_tokens = (uint32_t)q->n_gen;
    r->mixture = q->mix_used ? q->mix_used : &q->base_mix;
    double ms = now_ms() - q->t0;
    if (q->kind == WK_KIND_CLASSIFY) {
        r->has_pass1_ms = 1;
        r->pass1_ms = ms;
    } else {
        r->has_pass2_ms = 1;
        r->pass2_ms = ms;
    }
}

/* Tokens a chunk k carries: 1, 1, 2, 4, ... up to the slot's chunk_max. */
static int chunk_size(const hslot *q) {
    int k = q->chunk_k < 1 ? 0 : q->chunk_k - 1;
    return k >= 8 || (1 << k) >= q->chunk_max ? q->chunk_max : 1 << k;
}

/* Send the pending tokens (and their text) as one Chunk. T2_ECANCELLED when the job is gone. */
static int flush_chunk(head *h, hslot *q) {
    if (!q->n_pend) return 0;
    int rc = t2_worker_send_chunk(h->w[q->wi], q->job, q->text.data + q->text_sent,
                                  q->text.len - q->text_sent, q->pend, (size_t)q->n_pend);
    q->text_sent = q->text.len;
    q->n_pend = 0;
    q->chunk_k++;
    return rc == T2_ECANCELLED ? rc : 0;
}

static void finish(head *h, hslot *q, int reason) {
    T2__Result r = T2__RESULT__INIT;
    if (reason != T2__FINISH_REASON__FINISH_CANCELLED && flush_chunk(h, q) == T2_ECANCELLED) {
        slot_reset(h, q); /* cancelled meanwhile (acknowledged for us) */
        return;
    }
    fill_result(h, q, &r, reason);
    if (q->kind == WK_KIND_CLASSIFY && q->score) {
        int lb = t2_lscore_label(&q->ls);
        r.label = (char *)t2_task_label_name(lb >= 0 ? (t2_task_label)lb : T2_LABEL_OTHER);
    } else if (q->kind == WK_KIND_CLASSIFY) {
        r.label = (char *)wk_classify_label(q->text.len ? q->text.data : "");
    }
    const T2__Job *jm = t2_job_msg(q->job);
    T2_DEBUG("job %" PRIu64 " (request %" PRIu64 "): %d prompt + %d new tokens, %s, %.1f ms",
             jm->job_id, jm->request_id, q->n_prompt, q->n_gen,
             reason == T2__FINISH_REASON__FINISH_STOP     ? "stop"
             : reason == T2__FINISH_REASON__FINISH_LENGTH ? "length"
                                                          : "cancelled",
             now_ms() - q->t0);
    if (t2_worker_send_result(h->w[q->wi], q->job, &r) < 0)
        T2_DEBUG("job %" PRIu64 ": result not sent: %s", jm->job_id, t2_err_msg());
    h->done++;
    slot_reset(h, q);
}

/* A cancelled sequence: acknowledge with what it had (FINISH_CANCELLED). */
static void finish_cancelled(head *h, hslot *q) {
    finish(h, q, T2__FINISH_REASON__FINISH_CANCELLED);
}

/* ---- tokens back from the tail --------------------------------------------------------------- */

/* A scored classification: the tail chose `token` among the labels'; the label is decided once
 * one is left (its text: \boxed{LABEL}), else the token runs as the next step. */
static void on_label_token(head *h, hslot *q, int token) {
    int lb = t2_lscore_follow(&q->ls, token);
    q->n_gen++;
    if (lb < 0 && q->ls.cand && q->n_gen < q->max_gen) {
        q->last = q->next = token;
        q->pos = q->n_prompt + q->n_gen - 1;
        q->state = HS_READY;
        return;
    }
    const char *name = t2_task_label_name(lb >= 0 ? (t2_task_label)lb : T2_LABEL_OTHER);
    q->text.len = 0;
    if (t2_buf_add(&q->text, "\\boxed{", 7) < 0 || t2_buf_add(&q->text, name, strlen(name)) < 0 ||
        t2_buf_add(&q->text, "}", 1) < 0) {
        t2_worker_send_error(h->w[q->wi], q->job, T2_ENOMEM, "out of memory for the text");
        h->errors++;
        slot_reset(h, q);
        return;
    }
    finish(h, q, T2__FINISH_REASON__FINISH_STOP);
}

static void on_token(head *h, hslot *q, int token) {
    if (q->state != HS_FLIGHT) {
        T2_WARN("token for slot %d in state %d: ignored", (int)(q - h->sl), q->state);
        return;
    }
    h->tokens++;
    if (q->dead) {
        finish_cancelled(h, q);
        return;
    }
    if (q->score) {
        on_label_token(h, q, token);
        return;
    }
    if (token == t2_tok_bos(h->tok) || token == t2_tok_eos(h->tok) || token == t2_tok_eot(h->tok)) {
        finish(h, q, T2__FINISH_REASON__FINISH_STOP);
        return;
    }
    size_t n;
    const char *piece = t2_tok_piece_text(h->tok, q->last, token, &n); /* as t2 run prints it */
    size_t before = q->text.len;
    if (t2_buf_add(&q->text, piece, n) < 0) {
        t2_worker_send_error(h->w[q->wi], q->job, T2_ENOMEM, "out of memory for the text");
        h->errors++;
        slot_reset(h, q);
        return;
    }
    q->n_gen++;
    q->last = token;
    if (q->kind == WK_KIND_GENERATE) {
        q->pend[q->n_pend++] = (uint32_t)token;
        if (q->n_pend >= chunk_size(q) && flush_chunk(h, q) == T2_ECANCELLED) {
            slot_reset(h, q); /* cancelled (acknowledged for us) or orphaned */
            return;
        }
    } else {
        char *nl = memchr(q->text.data + before, '\n', q->text.len - before);
        if (nl) { /* a classification is one line */
            q->text.len = (size_t)(nl - q->text.data);
            q->text.data[q->text.len] = 0;
            finish(h, q, T2__FINISH_REASON__FINISH_STOP);
            return;
        }
    }
    if (q->n_gen >= q->max_gen) {
        finish(h, q, T2__FINISH_REASON__FINISH_LENGTH);
        return;
    }
    q->next = token;
    q->pos = q->n_prompt + q->n_gen - 1;
    q->state = HS_READY;
}

static void on_ack(head *h, const wk_hdr *a) {
    if (a->slot < 0 || a->slot >= h->n) return;
    hslot *q = &h->sl[a->slot];
    if (q->state != HS_OPENING) return;
    if (a->code < 0) {
        char msg[240];
        snprintf(msg, sizeof msg, "%.*s", (int)sizeof a->msg, a->msg);
        t2_worker_send_error(h->w[q->wi], q->job, a->code, "%s", msg);
        h->errors++;
        slot_reset(h, q);
        return;
    }
    if (q->dead) {
        finish_cancelled(h, q);
        return;
    }
    q->state = HS_PREFILL;
}

/* Messages from the tail (P > 1). Returns how many were handled. */
static int drain_back(head *h) {
    if (h->s->size == 1) return 0;
    int handled = 0;
    for (;;) {
        void *msg;
        size_t len;
        int rc = wk_pipe_poll(h->s->pipe, h->s->size - 1, WK_TAG_BACK, &msg, &len);
        if (rc < 0) fatal("receive");
        if (rc == 0) return handled;
        handled++;
        const wk_hdr *hd = msg;
        if (len < sizeof *hd) continue;
        if (hd->type == WK_MSG_ACK) {
            on_ack(h, hd);
        } else if (hd->type == WK_MSG_TOKENS) {
            const wk_pair *p = (const wk_pair *)((const char *)msg + sizeof *hd);
            if (len != sizeof *hd + (size_t)hd->n * sizeof *p) continue;
            h->inflight--;
            /* copy: on_token may send (and poll nothing), but keep the pairs safe anyway */
            int n = hd->n;
            wk_pair pairs[T2_MAX_SEQS];
            if (n > T2_MAX_SEQS) n = T2_MAX_SEQS;
            memcpy(pairs, p, (size_t)n * sizeof *p);
            for (int i = 0; i < n; i++)
                if (pairs[i].slot >= 0 && pairs[i].slot < h->n)
                    on_token(h, &h->sl[pairs[i].slot], pairs[i].val);
        }
    }
}

/* With one rank the head is the tail: its stage left the sampled tokens in s->out. */
static void local_tokens(head *h) {
    int n = h->s->n_out;
    h->s->n_out = 0;
    h->inflight--;
    for (int i = 0; i < n; i++)
        on_token(h, &h->sl[h->s->out[i].slot], h->s->out[i].val);
}

/* ---- new jobs -------------------------------------------------------------------------------- */

static int reject(head *h, t2_worker *w, t2_job **job, int code) {
    const T2__Job *jm = t2_job_msg(*job);
    T2_INFO("job %" PRIu64 " (request %" PRIu64 ") refused: %s", jm->job_id, jm->request_id,
            t2_err_msg());
    t2_worker_send_error(w, *job, code, "%s", t2_err_msg());
    t2_job_destroy(job);
    h->errors++;
    return 0;
}

/* A conversation: the cheap checks here, its rendering and encoding (as t2 run --chat) on the
 * tokenizer thread. */
static int submit_chat(head *h, hslot *q, const T2__Task *t) {
    if (q->kind == WK_KIND_CLASSIFY)
        return t2_err_set(T2_EINVAL, "a classification needs a text prompt, not a conversation");
    if (!h->chat)
        return t2_err_set(T2_EUNSUPPORTED, "the model has no chat template "
                          "(tokenizer.chat_template): send a prompt");
    t2_chat_msg msgs[T2_MSG_CHAT_MAX];
    size_t bytes = 0;
    for (size_t i = 0; i < t->n_messages; i++) {
        msgs[i] = (t2_chat_msg){t->messages[i]->role, t->messages[i]->content};
        bytes += strlen(t->messages[i]->content);
    }
    if (bytes > (size_t)h->s->n_ctx * h->max_piece + 64) /* cheap before expensive */
        return t2_err_set(T2_ERANGE, "the conversation's %zu bytes cannot fit in the context of "
                          "%d tokens (at most %zu bytes a token): refused before rendering",
                          bytes, h->s->n_ctx, h->max_piece);
    int add_gen = t->has_add_generation_prompt ? t->add_generation_prompt : 1;
    return wk_tokreq_new_chat(&q->req, h->tok, h->chat, h->s->n_ctx, (int)(q - h->sl), msgs,
                              (int)t->n_messages, add_gen);
}

/* The task's prompt: token ids into q->tok now (0), or a text or conversation handed to the
 * tokenizer thread (1: the slot waits for it), or an error. */
static int start_encode(head *h, hslot *q, const T2__Task *t) {
    const int n_ctx = h->s->n_ctx;
    int rc;
    if (t->n_messages) {
        rc = submit_chat(h, q, t);
    } else if (t->has_prompt) {
        /* cheap before expensive: a prompt that no tokenization could fit is refused unread */
        if (t->prompt.len > (size_t)n_ctx * h->max_piece + 64)
            return t2_err_set(T2_ERANGE, "the prompt of %zu bytes cannot fit in the context of %d "
                              "tokens (at most %zu bytes a token): refused before tokenizing",
                              t->prompt.len, n_ctx, h->max_piece);
        if (memchr(t->prompt.data, 0, t->prompt.len))
            return t2_err_set(T2_EINVAL, "the prompt contains a NUL byte");
        rc = wk_tokreq_new_prompt(&q->req, h->tok, n_ctx, q->kind, (int)(q - h->sl),
                                  t->prompt.data, t->prompt.len, !h->c->worker.pass1_generate);
    } else {
        if (q->kind == WK_KIND_CLASSIFY)
            return t2_err_set(T2_EINVAL, "a classification needs a text prompt, not token ids");
        if (t->n_tokens > (size_t)n_ctx)
            return t2_err_set(T2_ERANGE, "the prompt is %zu tokens, the context holds %d",
                              t->n_tokens, n_ctx);
        for (size_t i = 0; i < t->n_tokens; i++) {
            if (t->tokens[i] >= (uint32_t)h->s->V)
                return t2_err_set(T2_ERANGE, "token %u at index %zu is outside the vocabulary "
                                  "(0..%d)", t->tokens[i], i, h->s->V - 1);
            q->tok[i] = (int)t->tokens[i];
        }
        q->n_prompt = (int)t->n_tokens;
        return 0;
    }
    if (rc < 0) return rc;
    if ((rc = t2_bgq_submit(h->tq, q->req)) < 0) {
        wk_tokreq_free(q->req);
        q->req = NULL;
        return rc;
    }
    return 1;
}

/* The mixture of the task (or the classifier expert) as a wk_mix; mix->n = 0: base weights. */
static int task_mixture(head *h, hslot *q, const T2__Task *t, wk_mix *mix) {
    memset(mix, 0, sizeof *mix);
    int mode = t->adaptation && t->adaptation->has_mode ? (int)t->adaptation->mode
                                                        : T2__ADAPT_MODE__ADAPT_NONE;
    const T2__Mixture *pm = NULL;
    static const char *const mode_names[] = {"none", "prompt", "classifier", "profile", "mixture"};
    if (q->kind == WK_KIND_CLASSIFY) {
        if (mode == T2__ADAPT_MODE__ADAPT_CLASSIFIER) {
            if (!h->c->model.classifier_expert)
                return t2_err_set(T2_EUNSUPPORTED, "no classifier expert configured "
                                                   "(model.classifier_expert)");
            pm = &h->cls_mix;
        } else if (mode == T2__ADAPT_MODE__ADAPT_MIXTURE) {
            pm = t->adaptation->mixture;
        } else if (mode == T2__ADAPT_MODE__ADAPT_PROFILE) {
            return t2_err_set(T2_EINVAL, "a classification takes no profile");
        }
    } else if (mode == T2__ADAPT_MODE__ADAPT_MIXTURE) {
        pm = t->adaptation->mixture;
    } else if (mode != T2__ADAPT_MODE__ADAPT_NONE) {
        return t2_err_set(T2_EINVAL,
                          "adaptation '%s' needs pass 1: send the request to the "
                          "dispatcher's service (%s), not to a worker",
                          mode >= 0 && mode <= 4 ? mode_names[mode] : "?",
                          h->c->dispatcher.service);
    }
    if (!pm || pm->n_experts == 0) return 0;
    if (pm->n_experts > WK_MIX_MAX)
        return t2_err_set(T2_EINVAL, "mixture of %zu experts (at most %d)", pm->n_experts,
                          WK_MIX_MAX);
    const t2_expert *ex[WK_MIX_MAX];
    int per_matrix = 0;
    for (size_t i = 0; i < pm->n_experts; i++) {
        const T2__ExpertAlpha *e = pm->experts[i];
        if (!h->s->ad)
            return t2_err_set(T2_EUNSUPPORTED,
                              "this worker group has no SVD factors "
                              "(model.factors): it cannot apply expert '%s'",
                              e->expert);
        int rc = wk_adapter_expert(h->s->ad, e->expert, &ex[i]);
        if (rc < 0) return rc;
        snprintf(mix->names[i], sizeof mix->names[i], "%s", e->expert);
        if (e->n_matrix_alpha) per_matrix = 1;
    }
    const int n = (int)pm->n_experts, L = h->s->m->cfg.n_layers, NM = L * T2_N_TARGETS;
    mix->n = n;
    mix->per_matrix = per_matrix;
    mix->n_alpha = per_matrix ? n * NM : n;
    if (!(mix->alpha = calloc((size_t)mix->n_alpha, sizeof *mix->alpha)))
        return t2_err_set(T2_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) {
        const T2__ExpertAlpha *e = pm->experts[k];
        if (!per_matrix) {
            mix->alpha[k] = e->alpha;
            continue;
        }
        /* matrix_alpha: one per adapted matrix in model order (layer, then q k v o gate up
         * down); none: alpha for every matrix */
        size_t n_mats = 0;
        for (int i = 0; i < NM; i++)
            n_mats += ex[k]->rank[i] > 0;
        if (e->n_matrix_alpha && e->n_matrix_alpha != n_mats) {
            int rc = t2_err_set(T2_EINVAL,
                                "expert '%s': %zu matrix alphas, the expert adapts %zu "
                                "matrices",
                                e->expert, e->n_matrix_alpha, n_mats);
            wk_mix_free(mix);
            return rc;
        }
        size_t j = 0;
        for (int i = 0; i < NM; i++)
            if (ex[k]->rank[i] > 0)
                mix->alpha[(size_t)k * NM + i] =
                    e->n_matrix_alpha ? e->matrix_alpha[j++] : e->alpha;
    }
    q->mix_used = (T2__Mixture *)pm;
    return 0;
}

/* Room in the KV pool for all the tokens the sequence may run, taken now: every rank holds the
 * same blocks for the same positions (their pools have the same number of blocks and see the
 * same OPEN/CLOSE order), so a sequence admitted here never runs out of blocks on any rank.
 * T2_EBUSY when the pool cannot hold it now: the job waits until sequences end (it always fits
 * then: the pool holds at least one full context, wk_stage.c). */
static int reserve_kv(wk_stage *s, int slot, int n_tokens) {
    const t2_kvpool *kv = s->kv;
    const long need = (long)t2_kv_blocks_for(n_tokens), nfree = (long)t2_kvpool_n_free(kv);
    if (t2_state_reserve(s->slots[slot].st, n_tokens) == 0) return 0;
    t2_state_release(s->slots[slot].st);
    return t2_err_set(T2_EBUSY, "KV pool full: the request needs %d tokens (%ld blocks of %d), "
                      "%ld of the pool's %lld blocks are free (worker.kv_pool_tokens)", n_tokens,
                      need, T2_KV_BLOCK, nfree, (long long)t2_kvpool_n_blocks(kv));
}

/* Tokens of prompt chunk that starts at `sent` (the first after reused tokens ends where the run
 * from 0 ends its chunk, so every later chunk is the same and the numbers are the same bits). */
static int prefill_len(const head *h, const hslot *q, int sent) {
    const int b = h->s->batch;
    int n = q->n_prompt - sent < b ? q->n_prompt - sent : b;
    if (sent == q->reused && n > b - sent % b) n = b - sent % b;
    int rest = q->n_prompt - sent - n, tail = q->ls.n_check + 1;
    if (q->score && rest > 0 && rest < tail) n -= tail - rest; /* scored: the last chunk
                                                                * holds the checked rows */
    return n;
}

/* worker.prefix_cache: map the cached blocks of the prompt's prefix (under the seed of the
 * sequence's weights) and hold blocks for all its tokens, as every other rank will on PREFIX;
 * q->reused tokens need not run. Without it: reserve_kv. T2_EBUSY (nothing changed) when the
 * pool cannot hold it now. */
static int hold_kv(head *h, hslot *q, int slot, uint64_t seed) {
    wk_stage *s = h->s;
    const int n = q->n_prompt, total = q->n_prompt + q->max_gen - 1;
    q->reused = 0;
    if (!h->c->worker.prefix_cache) return reserve_kv(s, slot, total);
    const int keep = q->score ? q->ls.n_check + 1 : 1, full = (n - 1) / T2_KV_BLOCK * T2_KV_BLOCK;
    int found, r;
    wk_stage_prefix_look(s, seed, q->tok, full, &found);
    for (r = t2_kv_prefix_max(n, keep, s->batch, found); r > 0;
         r = t2_kv_prefix_max(n, keep, s->batch, r - T2_KV_BLOCK)) {
        q->reused = r;
        if (r % s->batch == 0 || prefill_len(h, q, r) > 1) break;
    }
    q->reused = r;
    int rc = wk_stage_prefix_fits(s, seed, q->tok, r, total);
    if (rc == 0) rc = wk_stage_prefix(s, slot, seed, r, total, q->tok, full);
    return rc;
}

/* PREFIX down the pipeline, right after OPEN: the head's decision and the prompt's tokens. */
static void send_prefix(head *h, int slot, uint64_t seed) {
    const hslot *q = &h->sl[slot];
    const int full = (q->n_prompt - 1) / T2_KV_BLOCK * T2_KV_BLOCK;
    wk_hdr hd = {.type = WK_MSG_PREFIX, .n = full, .slot = slot, .pos = q->reused,
                 .last = q->n_prompt + q->max_gen - 1};
    if (pipe_send(h, &hd, &seed, sizeof seed, q->tok, (size_t)full * sizeof(int32_t)) < 0)
        fatal("PREFIX");
}

/* Take a job into a free slot: cheap checks now, its prompt to the tokenizer thread (or its
 * token ids straight to admission). */
static int accept_job(head *h, int wi, t2_job *job) {
    const T2__Task *t = t2_job_msg(job)->task;
    t2_worker *w = h->w[wi];
    h->jobs++;
    int slot = -1;
    for (int i = 0; i < h->n && slot < 0; i++)
        if (h->sl[i].state == HS_FREE) slot = i;
    if (slot < 0) {
        t2_err_set(T2_EBUSY, "all %d slots of this worker group are busy", h->n);
        return reject(h, w, &job, T2_EBUSY);
    }
    hslot *q = &h->sl[slot];
    q->kind = (h->classify_svc[wi] || (t->has_kind && t->kind == T2__KIND__KIND_CLASSIFY))
                  ? WK_KIND_CLASSIFY
                  : WK_KIND_GENERATE;
    q->mix_used = NULL;
    q->score = 0;
    q->n_prompt = 0;
    int rc = start_encode(h, q, t);
    if (rc < 0) return reject(h, w, &job, rc);
    q->job = job;
    q->wi = wi;
    q->seq = ++h->seq;
    q->state = rc == 1 ? HS_TOKENIZING : HS_ADMIT;
    h->admit_due |= q->state == HS_ADMIT;
    return 1;
}

/* Refuse the job of a slot that holds nothing in the pipeline yet (not OPENed). */
static void refuse_slot(head *h, hslot *q, int code) {
    reject(h, h->w[q->wi], &q->job, code);
    q->state = HS_FREE;
}

/* The sampling settings and the length of the answer, from the task and the deployment. */
static void task_open(head *h, hslot *q, const T2__Task *t, wk_open *o) {
    const T2__Sampling *sp = t->sampling;
    const t2_conf *c = h->c;
    *o = (wk_open){.kind = q->kind, .apply = c->worker.apply};
    o->temperature = sp && sp->has_temperature ? sp->temperature : c->worker.temperature;
    o->top_p = sp && sp->has_top_p ? sp->top_p : c->worker.top_p;
    o->seed = sp && sp->has_seed ? sp->seed : 0;
    int max = sp && sp->has_max_tokens ? (int)sp->max_tokens : c->worker.max_tokens;
    if (q->kind == WK_KIND_CLASSIFY) {
        o->temperature = 0; /* pass 1 is greedy */
        if (!(sp && sp->has_max_tokens)) max = c->worker.classify_max_tokens;
    }
    /* max_tokens beyond the context is clamped (as t2 run clamps -n): the last sampled token
     * need not be run, so a prompt of P tokens leaves room for n_ctx - P + 1 */
    if (q->score) {
        if (q->ls.n_check + 1 > h->s->batch) q->ls.n_check = 0; /* (worker.batch < 17) */
        o->score = 1;
        o->ls = q->ls;
        max = T2_LSCORE_DEPTH;
    }
    int room = h->s->n_ctx - q->n_prompt + 1;
    q->max_gen = max < room ? max : room;
}

/* A slot whose tokens are here (HS_ADMIT): mixture, KV room, OPEN. 1 when started, 2 when it
 * must wait for room in the KV pool (T2_EBUSY: until sequences end), 0 when refused. */
static int open_job(head *h, hslot *q) {
    const T2__Job *jm = t2_job_msg(q->job);
    const T2__Task *t = jm->task;
    const int slot = (int)(q - h->sl);
    if (q->n_prompt < 1) {
        t2_err_set(T2_EINVAL, "empty prompt");
        refuse_slot(h, q, T2_EINVAL);
        return 0;
    }
    wk_open o;
    task_open(h, q, t, &o);
    wk_mix mix;
    int rc;
    if ((rc = task_mixture(h, q, t, &mix)) < 0) {
        refuse_slot(h, q, rc);
        return 0;
    }
    o.n_experts = mix.n;
    o.per_matrix = mix.per_matrix;
    o.n_alpha = mix.n_alpha;
    const uint64_t seed =
        wk_prefix_seed(&o, &mix, h->c->worker.merged_type, h->c->worker.kv_type);
    if ((rc = wk_stage_open(h->s, slot, &o, &mix)) < 0 || (rc = hold_kv(h, q, slot, seed)) < 0) {
        wk_stage_close(h->s, slot);
        wk_mix_free(&mix);
        if (rc == T2_EBUSY) { /* the pool is full now: wait for sequences to end */
            T2_DEBUG("job %" PRIu64 " waits: %s", jm->job_id, t2_err_msg());
            return 2;
        }
        refuse_slot(h, q, rc);
        return 0;
    }
    q->dead = 0;
    q->sent = q->reused;
    q->n_gen = 0;
    q->text.len = 0;
    q->text_sent = 0;
    q->n_pend = q->chunk_k = 0;
    q->chunk_max = t->has_chunk_tokens ? (int)t->chunk_tokens : h->c->worker.chunk_tokens;
    if (q->chunk_max < 1 || q->chunk_max > (int)T2_MSG_CHUNK_TOKENS_MAX)
        q->chunk_max = q->chunk_max < 1 ? 1 : (int)T2_MSG_CHUNK_TOKENS_MAX;
    q->last = q->tok[q->n_prompt - 1];
    q->t0 = now_ms();
    if (h->s->size > 1) {
        size_t blen = wk_open_size(&o);
        char *buf = wk_pipe_buf(h->s->pipe, sizeof(wk_hdr) + blen);
        if (!buf) fatal("OPEN");
        wk_hdr hd = {.type = WK_MSG_OPEN, .n = (int32_t)blen, .slot = slot};
        memcpy(buf, &hd, sizeof hd);
        wk_open_pack(buf + sizeof hd, &o, &mix);
        if (wk_pipe_send(h->s->pipe, buf, sizeof hd + blen, 1, WK_TAG_FWD) < 0) fatal("OPEN");
        if (h->c->worker.prefix_cache) send_prefix(h, slot, seed);
        q->state = HS_OPENING;
    } else {
        q->state = HS_PREFILL;
    }
    wk_mix_free(&mix);
    h->prompt_tokens += (uint64_t)q->n_prompt;
    h->reused_tokens += (uint64_t)q->reused;
    T2_DEBUG("job %" PRIu64 " (request %" PRIu64 ", attempt %u) in slot %d: %d prompt tokens "
             "(%d from the prefix cache), up to %d new",
             jm->job_id, jm->request_id, jm->attempt, slot, q->n_prompt, q->reused, q->max_gen);
    return 1;
}

static int free_slots(const head *h) {
    int n = 0;
    for (int i = 0; i < h->n; i++)
        n += h->sl[i].state == HS_FREE;
    return n;
}

/* Tokenizations back from the tokenizer thread: their slots go to admission (or are refused).
 * A request whose slot was given up meanwhile (orphan) is freed. How many were delivered. */
static int collect_tokens(head *h) {
    int got = 0;
    void *p;
    while (t2_bgq_take(h->tq, &p) == 1) {
        wk_tokreq *r = p;
        if (r->orphan) {
            wk_tokreq_free(r);
            continue;
        }
        hslot *q = &h->sl[r->slot];
        if (q->state != HS_TOKENIZING || q->req != r) { /* cannot happen: orphan is set */
            T2_WARN("tokens for slot %d in state %d: dropped", r->slot, q->state);
            wk_tokreq_free(r);
            continue;
        }
        q->req = NULL;
        got++;
        if (r->rc < 0) {
            t2_err_set(r->rc, "%s", r->msg);
            refuse_slot(h, q, r->rc);
        } else {
            memcpy(q->tok, r->tokens, (size_t)r->n_tokens * sizeof *q->tok);
            q->n_prompt = r->n_tokens;
            q->score = r->score;
            if (r->score) q->ls = r->ls;
            q->state = HS_ADMIT;
            h->admit_due = 1;
        }
        wk_tokreq_free(r);
    }
    return got;
}

static void cancel_unopened(head *h, hslot *q);

/* Slots with their tokens, oldest first, until one must wait for KV room (it stays first in
 * line: no younger job overtakes it). Only when something changed since the last time. A job
 * cancelled or orphaned (the router was lost and has given it to another group) meanwhile is
 * dropped before its prefill. */
static int admit(head *h) {
    if (!h->admit_due) return 0;
    h->admit_due = 0;
    int did = 0;
    for (;;) {
        hslot *first = NULL;
        for (int i = 0; i < h->n; i++)
            if (h->sl[i].state == HS_ADMIT && (!first || h->sl[i].seq < first->seq))
                first = &h->sl[i];
        if (!first) return did;
        if (t2_worker_cancelled(h->w[first->wi], first->job)) {
            cancel_unopened(h, first);
            continue;
        }
        if (open_job(h, first) == 2) return did;
        did++;
    }
}

/* Between the layers of a prompt chunk on this rank (wk_stage's hook): heartbeats and incoming
 * messages, so that a chunk of worker.batch tokens taking longer than the router's liveness
 * (seconds on a large model) does not cost the group its registration. */
static void head_pump(void *arg) {
    head *h = arg;
    for (int i = 0; i < h->nw; i++) t2_worker_pump(h->w[i]);
}

/* Take jobs while slots are free; otherwise just keep the connections alive. */
static int intake(head *h) {
    int got = 0;
    for (int i = 0; i < h->nw; i++) {
        if (!free_slots(h)) {
            t2_worker_pump(h->w[i]);
            continue;
        }
        t2_job *job;
        while (free_slots(h) && t2_worker_recv(h->w[i], &job, 0) == 1) {
            accept_job(h, i, job);
            got++;
        }
    }
    return got;
}

/* A cancelled job that holds nothing in the pipeline yet: answered at once. Its tokenization is
 * taken back, or left to finish and be freed when it comes back (orphan). */
static void cancel_unopened(head *h, hslot *q) {
    if (q->req && t2_bgq_withdraw(h->tq, q->req))
        wk_tokreq_free(q->req);
    else if (q->req)
        q->req->orphan = 1;
    q->req = NULL;
    t2_worker_send_error(h->w[q->wi], q->job, T2_ECANCELLED, "%s",
                         q->state == HS_ADMIT ? "cancelled while waiting for room in the KV cache"
                                              : "cancelled while its prompt was tokenized");
    t2_job_destroy(&q->job);
    q->state = HS_FREE;
}

/* Cancelled sequences that are not in the pipeline end now; the others when they come back. */
static void check_cancels(head *h) {
    for (int i = 0; i < h->n; i++) {
        hslot *q = &h->sl[i];
        if (q->state == HS_FREE || q->dead || !t2_job_was_cancelled(q->job)) continue;
        if (q->state == HS_TOKENIZING || q->state == HS_ADMIT) {
            cancel_unopened(h, q);
            continue;
        }
        q->dead = 1;
        if (q->state == HS_PREFILL || q->state == HS_READY) finish_cancelled(h, q);
    }
}

/* ---- issuing work ---------------------------------------------------------------------------- */

static int issue_prefill(head *h) {
    wk_stage *s = h->s;
    for (int k = 0; k < h->n; k++) {
        int i = (h->rr + k) % h->n;
        hslot *q = &h->sl[i];
        if (q->state != HS_PREFILL || q->dead) continue;
        int n = prefill_len(h, q, q->sent);
        int last = q->sent + n == q->n_prompt;
        if (wk_stage_prefill(s, i, q->sent, n, last, q->tok + q->sent, NULL) < 0) fatal("prefill");
        if (s->size > 1) {
            wk_hdr hd = {.type = WK_MSG_PREFILL, .n = n, .slot = i, .pos = q->sent, .last = last};
            if (pipe_send(h, &hd, t2_state_x(s->slots[i].st), (size_t)n * s->D * sizeof(float),
                          NULL, 0) < 0)
                fatal("PREFILL");
        }
        q->sent += n;
        if (last) {
            q->state = HS_FLIGHT;
            h->inflight++;
            if (s->size == 1) local_tokens(h);
        }
        h->rr = i + 1;
        return 1;
    }
    return 0;
}

static int issue_decode(head *h) {
    wk_stage *s = h->s;
    int decoding = 0;
    for (int i = 0; i < h->n; i++)
        decoding += h->sl[i].state == HS_READY ||
                    (h->sl[i].state == HS_FLIGHT && h->sl[i].sent == h->sl[i].n_prompt);
    int cap = (decoding + s->size - 1) / s->size;
    if (cap < 1) cap = 1;
    int slots[T2_MAX_SEQS], pos[T2_MAX_SEQS], toks[T2_MAX_SEQS], n = 0;
    for (int k = 0; k < h->n && n < cap; k++) {
        int i = (h->rr + k) % h->n;
        hslot *q = &h->sl[i];
        if (q->state != HS_READY || q->dead) continue;
        slots[n] = i;
        pos[n] = q->pos;
        toks[n] = q->next;
        n++;
    }
    if (!n) return 0;
    if (wk_stage_decode(s, n, slots, pos, toks, NULL) < 0) fatal("decode");
    if (s->size > 1) {
        wk_pair pairs[T2_MAX_SEQS];
        for (int i = 0; i < n; i++) {
            pairs[i].slot = slots[i];
            pairs[i].val = pos[i];
        }
        size_t plen = (size_t)n * sizeof(wk_pair), xlen = (size_t)n * s->D * sizeof(float);
        char *buf = wk_pipe_buf(s->pipe, sizeof(wk_hdr) + plen + xlen);
        if (!buf) fatal("DECODE");
        wk_hdr hd = {.type = WK_MSG_DECODE, .n = n};
        memcpy(buf, &hd, sizeof hd);
        memcpy(buf + sizeof hd, pairs, plen);
        float *x = (float *)(buf + sizeof hd + plen);
        for (int i = 0; i < n; i++)
            memcpy(x + (size_t)i * s->D, t2_state_x(s->slots[slots[i]].st),
                   (size_t)s->D * sizeof(float));
        if (wk_pipe_send(s->pipe, buf, sizeof hd + plen + xlen, 1, WK_TAG_FWD) < 0) fatal("DECODE");
    }
    for (int i = 0; i < n; i++)
        h->sl[slots[i]].state = HS_FLIGHT;
    h->inflight++;
    h->steps++;
    h->stepped += (uint64_t)n;
    h->rr = slots[n - 1] + 1;
    if (s->size == 1) local_tokens(h);
    return 1;
}

/* ---- waiting --------------------------------------------------------------------------------- */

/* Nothing to do now: wait for the router (new jobs, cancels), the tokenizer thread (a prompt's
 * tokens) or the tail. */
static void wait_events(head *h) {
    zmq_pollitem_t items[T2_CONF_MAX_SERVICES + 1];
    int ni = 0;
    for (int i = 0; i < h->nw; i++) {
        void *sock = t2_worker_socket(h->w[i]);
        if (sock) items[ni++] = (zmq_pollitem_t){sock, 0, ZMQ_POLLIN, 0};
    }
    items[ni++] = (zmq_pollitem_t){NULL, t2_bgq_fd(h->tq), ZMQ_POLLIN, 0};
    int expecting = h->inflight > 0;
    for (int i = 0; i < h->n && !expecting; i++)
        expecting = h->sl[i].state == HS_OPENING;
    if (expecting) {
        /* the tail will answer soon (tokens, or the ACK of an OPEN): look at both for ~1 ms */
        for (int spin = 0; spin < 20; spin++) {
            int flag = 0;
            MPI_Iprobe(h->s->size - 1, WK_TAG_BACK, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
            if (flag) return;
            if (zmq_poll(items, ni, 0) > 0) return;
            if (spin < 10) {
                sched_yield();
            } else {
                struct timespec ts = {0, 100000};
                nanosleep(&ts, NULL);
            }
        }
        return;
    }
    zmq_poll(items, ni, 20);
}

/* ---- the watchdog ---------------------------------------------------------------------------- */

/* A rank that stops (SIGSTOP, a hung kernel call, a dead link) stops the whole pipeline while
 * the head keeps heartbeating. When a step or an OPEN has been unanswered for watchdog_ms the
 * group declares itself failed: goodbye to the router (it requeues every job of ours at once,
 * for the other groups), then MPI_Abort (exit 3): mpirun takes every rank down and the
 * launcher (t2-local.sh, systemd) starts the group again. */
static void watchdog(head *h, int answered) {
    const double now = now_ms();
    int expecting = h->inflight > 0;
    for (int i = 0; i < h->n && !expecting; i++)
        expecting = h->sl[i].state == HS_OPENING;
    if (answered || !expecting || h->s->size == 1) {
        h->progress_at = now;
        return;
    }
    const int limit = h->c->worker.watchdog_ms;
    if (limit <= 0 || now - h->progress_at < limit) return;
    char ids[600];
    size_t o = 0;
    for (int i = 0; i < h->n && o + 48 < sizeof ids; i++) {
        if (h->sl[i].state == HS_FREE || !h->sl[i].job) continue;
        const T2__Job *jm = t2_job_msg(h->sl[i].job);
        o += (size_t)snprintf(ids + o, sizeof ids - o, "%s%" PRIu64 "/%" PRIu64, o ? " " : "",
                              jm->job_id, jm->request_id);
    }
    T2_ERROR("pipeline stalled: no answer from ranks 1..%d for %.0f ms (worker.watchdog_ms %d) "
             "with %d step(s) in flight; jobs (job/request) %s go back to the router; the group "
             "stops (exit 3) for its launcher to restart it",
             h->s->size - 1, now - h->progress_at, limit, h->inflight, o ? ids : "none");
    for (int i = 0; i < h->nw; i++) /* goodbye: the router requeues our jobs now */
        t2_worker_destroy(&h->w[i]);
    MPI_Abort(MPI_COMM_WORLD, 3);
}

/* ---- the loop -------------------------------------------------------------------------------- */

static int connect_workers(head *h, const t2_model *m) {
    const t2_conf *c = h->c;
    char **experts = NULL;
    int n_experts = 0;
    if (h->s->ad) {
        char buf[8192];
        const char *dir = t2_conf_experts_dir(c, buf, sizeof buf);
        n_experts = wk_list_experts(dir, &experts, (int)T2_MSG_READY_EXPERTS_MAX);
    }
    char name[256], host[128] = "host";
    gethostname(host, sizeof host - 1);
    const char *sha = t2_model_sha256((t2_model *)m);
    if (c->security.curve) {
        int rc = t2_curve_load_client(c->security.router_public, c->security.worker_key, &h->curve);
        if (rc < 0) {
            wk_free_names(experts, n_experts);
            return rc;
        }
        h->has_curve = 1;
    }
    int rc = 0;
    for (int i = 0; i < c->worker.n_services && rc == 0; i++) {
        const char *svc = c->worker.services[i];
        t2_worker_opts o = t2_worker_opts_default(svc);
        h->classify_svc[i] =
            !strcmp(svc, c->dispatcher.classify_service) || !strcmp(svc, "classify");
        o.capacity =
            (uint32_t)(h->classify_svc[i] ? c->worker.classify_capacity : c->worker.capacity);
        if (c->worker.name)
            snprintf(name, sizeof name, "%s/%s", c->worker.name, svc);
        else
            snprintf(name, sizeof name, "%.40s:%d/%s/%s", host, (int)getpid(), c->group.name, svc);
        t2_name_sanitize(name); /* a name the router accepts */
        o.name = name;
        o.model_sha256 = sha;
        o.curve = h->has_curve ? &h->curve : NULL;
        o.experts = (const char *const *)experts;
        o.n_experts = (size_t)n_experts;
        o.heartbeat_ms = c->router.heartbeat_ms;
        o.liveness = c->router.liveness;
        t2_backoff_schedule(c->router.heartbeat_ms, &o.reconnect_ms, &o.reconnect_max_ms);
        if ((rc = t2_worker_new(&h->w[i], NULL, c->router.endpoint, &o)) == 0) h->nw++;
    }
    wk_free_names(experts, n_experts);
    return rc;
}

/* The prefix cache's line of the head's statistics. */
static void log_prefix(const head *h) {
    if (!h->c->worker.prefix_cache) return;
    T2_INFO("prefix cache: %" PRIu64 " of %" PRIu64 " prompt tokens reused (%.1f %%), %lld "
            "blocks of %d cached", h->reused_tokens, h->prompt_tokens,
            h->prompt_tokens ? 100.0 * (double)h->reused_tokens / (double)h->prompt_tokens : 0.0,
            (long long)t2_kvpool_n_cached(h->s->kv), T2_KV_BLOCK);
}

int wk_head_run(wk_stage *s, const t2_conf *c, t2_tokenizer *tok, volatile int *stop) {
    head hh, *h = &hh;
    memset(h, 0, sizeof *h);
    h->s = s;
    h->c = c;
    h->tok = tok;
    h->n = s->n_slots;
    h->depth = s->size;
    int rc = 0;
    if (c->model.classifier_expert) {
        T2__ExpertAlpha ea = T2__EXPERT_ALPHA__INIT;
        h->cls_ea = ea;
        h->cls_ea.expert = c->model.classifier_expert;
        h->cls_ea.has_alpha = 1;
        h->cls_ea.alpha = 1.0f;
        h->cls_eap[0] = &h->cls_ea;
        T2__Mixture mm = T2__MIXTURE__INIT;
        h->cls_mix = mm;
        h->cls_mix.n_experts = 1;
        h->cls_mix.experts = h->cls_eap;
    }
    if (!(h->sl = calloc((size_t)h->n, sizeof *h->sl)))
        return t2_err_set(T2_ENOMEM, "out of memory");
    for (int i = 0; i < h->n; i++) {
        T2__Mixture mm = T2__MIXTURE__INIT;
        h->sl[i].base_mix = mm;
        if (!(h->sl[i].tok = malloc((size_t)s->n_ctx * sizeof(int)))) {
            rc = t2_err_set(T2_ENOMEM, "out of memory");
            goto out;
        }
    }
    h->max_piece = t2_tok_max_piece_bytes(tok);
    if (t2_chat_template_from_model(&h->chat, s->m, tok) < 0) {
        T2_INFO("no chat template: conversations are refused (%s)", t2_err_msg());
        t2_err_clear();
    }
    if ((rc = t2_bgq_new(&h->tq, wk_tokreq_run, wk_tokreq_free)) < 0) goto out;
    if ((rc = connect_workers(h, s->m)) < 0) goto out;
    s->hook = head_pump;
    s->hook_arg = h;
    T2_INFO("serving %s at %s: %d ranks, %d slots, apply %s (W' %s), context %d",
            c->worker.services[0], c->router.endpoint, s->size, h->n,
            t2_conf_apply_name(c->worker.apply), t2_conf_merged_type_name(c->worker.merged_type),
            s->n_ctx);
    double last_stats = t2_now();
    h->progress_at = now_ms();
    while (!*stop) {
        int did = 0, back;
        wk_pipe_progress(s->pipe);
        did += back = drain_back(h);
        watchdog(h, back);
        did += collect_tokens(h);
        did += intake(h);
        check_cancels(h);
        did += admit(h);
        if (h->inflight < h->depth) did += issue_prefill(h);
        if (h->inflight < h->depth) did += issue_decode(h);
        if (!did) wait_events(h);
        if (t2_now() - last_stats > 60) {
            last_stats = t2_now();
            T2_INFO("jobs %" PRIu64 ", done %" PRIu64 ", refused %" PRIu64 ", tokens %" PRIu64
                    ", decode steps %" PRIu64 " (%.2f sequences each)",
                    h->jobs, h->done, h->errors, h->tokens, h->steps,
                    h->steps ? (double)h->stepped / h->steps : 0.0);
            log_prefix(h);
        }
    }
    T2_INFO("stopping: jobs %" PRIu64 ", done %" PRIu64 ", refused %" PRIu64 ", tokens %" PRIu64
            ", decode steps %" PRIu64 " (%.2f sequences each)",
            h->jobs, h->done, h->errors, h->tokens, h->steps,
            h->steps ? (double)h->stepped / h->steps : 0.0);
    log_prefix(h);
out:
    s->hook = NULL;
    /* goodbye first: the router requeues our unfinished jobs at once; then free the jobs */
    for (int i = 0; i < h->nw; i++)
        t2_worker_destroy(&h->w[i]);
    t2_bgq_destroy(&h->tq); /* after the current tokenization; the requests still held freed */
    for (int i = 0; h->sl && i < h->n; i++) {
        t2_job_destroy(&h->sl[i].job);
        free(h->sl[i].tok);
        t2_buf_free(&h->sl[i].text);
    }
    free(h->sl);
    t2_chat_template_destroy(&h->chat);
    if (s->size > 1) { /* stop the other ranks; wait for the tail's goodbye */
        wk_hdr sd = {.type = WK_MSG_SHUTDOWN};
        if (pipe_send(h, &sd, NULL, 0, NULL, 0) < 0) fatal("SHUTDOWN");
        for (;;) {
            void *msg;
            size_t len;
            if (wk_pipe_wait(s->pipe, s->size - 1, WK_TAG_BACK, &msg, &len) < 0) fatal("receive");
            if (len >= sizeof(wk_hdr) && ((wk_hdr *)msg)->type == WK_MSG_SHUTDOWN) break;
        }
    }
    return rc;
}
