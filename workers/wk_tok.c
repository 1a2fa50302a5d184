/* wk_tok.c - a prompt's tokenization as a task for the head's tokenizer thread (base/bgq.h).
 *
 * Tokenizing a long prompt takes long (~0.2 s for 4 MB with a Llama-3 vocabulary): on the head's
 * loop it would hold up the router's heartbeats and the pipeline. The head copies what a task
 * needs into a wk_tokreq and the tokenizer thread fills in its tokens; the request owns all it
 * uses, so the job may be cancelled (and its slot reused) while the thread works. The tokenizer
 * and the chat template are only read (tokenizer.h, chat.h: no mutable state), so the loop keeps
 * decoding pieces with the same tokenizer meanwhile.
 */
#include "wk.h"

#include "base/t2_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static wk_tokreq *req_alloc(const t2_tokenizer *tok, int n_ctx, int kind, int slot) {
    wk_tokreq *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (!(r->tokens = malloc((size_t)n_ctx * sizeof *r->tokens))) {
        free(r);
        return NULL;
    }
    r->tok = tok;
    r->n_ctx = n_ctx;
    r->kind = kind;
    r->slot = slot;
    return r;
}

int wk_tokreq_new_prompt(wk_tokreq **out, const t2_tokenizer *tok, int n_ctx, int kind, int slot,
                         const void *text, size_t len, int score_ok) {
    wk_tokreq *r = *out = req_alloc(tok, n_ctx, kind, slot);
    if (!r || !(r->text = malloc(len + 1))) {
        wk_tokreq_free(r);
        *out = NULL;
        return t2_err_set(T2_ENOMEM, "out of memory for a prompt of %zu bytes", len);
    }
    if (len) memcpy(r->text, text, len);
    r->text[len] = 0;
    r->len = len;
    r->score_ok = score_ok;
    return 0;
}

int wk_tokreq_new_chat(wk_tokreq **out, const t2_tokenizer *tok, const t2_chat_template *chat,
                       int n_ctx, int slot, const t2_chat_msg *msgs, int n_msgs, int add_gen) {
    size_t bytes = 0;
    for (int i = 0; i < n_msgs; i++)
        bytes += strlen(msgs[i].role) + strlen(msgs[i].content) + 2;
    wk_tokreq *r = *out = req_alloc(tok, n_ctx, WK_KIND_GENERATE, slot);
    if (!r || !(r->msgs = malloc((size_t)(n_msgs ? n_msgs : 1) * sizeof *r->msgs)) ||
        !(r->text = malloc(bytes + 1))) {
        wk_tokreq_free(r);
        *out = NULL;
        return t2_err_set(T2_ENOMEM, "out of memory for a conversation of %zu bytes", bytes);
    }
    char *p = r->text; /* every role and content, NUL-terminated, one after another */
    for (int i = 0; i < n_msgs; i++) {
        size_t a = strlen(msgs[i].role) + 1, b = strlen(msgs[i].content) + 1;
        r->msgs[i] = (t2_chat_msg){memcpy(p, msgs[i].role, a), memcpy(p + a, msgs[i].content, b)};
        p += a + b;
    }
    r->n_msgs = n_msgs;
    r->chat = chat;
    r->add_generation_prompt = add_gen;
    return 0;
}

void wk_tokreq_free(void *req) {
    wk_tokreq *r = req;
    if (!r) return;
    free(r->tokens);
    free(r->text);
    free(r->msgs);
    free(r);
}

/* A conversation: rendered by the model's chat template, encoded as t2 run --chat does. */
static int encode_chat(wk_tokreq *r) {
    t2_chat_opts o = {.add_generation_prompt = r->add_generation_prompt};
    char *text;
    size_t n;
    int rc = t2_chat_render(r->chat, r->msgs, r->n_msgs, &o, &text, &n);
    if (rc < 0) return rc;
    rc = t2_chat_encode(r->tok, r->chat, text, n, r->tokens, r->n_ctx, &r->n_tokens);
    free(text);
    if (rc == T2_ERANGE)
        return t2_err_set(T2_ERANGE, "the conversation does not fit in the context of %d tokens",
                          r->n_ctx);
    return rc;
}

/* A classification to score (worker.pass1 "score"): the labels' common prefix into tokens.
 * 0 when set up, 1 to generate it instead (a tokenizer that cannot tell the labels apart), or
 * an error. */
static int score_setup(wk_tokreq *r) {
    int rc = t2_lscore_setup(r->tok, r->text, r->tokens, r->n_ctx, &r->n_tokens, &r->ls);
    if (rc == T2_ERANGE)
        return t2_err_set(T2_ERANGE, "the prompt does not fit in the context of %d tokens",
                          r->n_ctx);
    if (rc == T2_EINVAL) { /* the labels cannot be scored with this vocabulary: generate */
        t2_err_clear();
        return 1;
    }
    if (rc < 0) return rc;
    r->score = 1;
    return 0;
}

/* A text prompt (with BOS, as t2 run); a classification's question in its prompt. */
static int encode_text(wk_tokreq *r) {
    char *own = NULL;
    const char *prompt = r->text;
    if (r->kind == WK_KIND_CLASSIFY) {
        if (r->score_ok) {
            int rc = score_setup(r);
            if (rc != 1) return rc;
        }
        size_t cap = r->len + 64 + 1;
        if (!(own = malloc(cap))) return t2_err_set(T2_ENOMEM, "out of memory");
        wk_classify_prompt(r->text, own, cap);
        prompt = own;
    }
    /* A prompt of more than n_ctx tokens is refused: t2_tok_encode says how many. */
    int rc = t2_tok_encode(r->tok, prompt, 1, 0, r->tokens, r->n_ctx, &r->n_tokens);
    free(own);
    if (rc == T2_ERANGE)
        return t2_err_set(T2_ERANGE, "the prompt does not fit in the context of %d tokens",
                          r->n_ctx);
    return rc;
}

/* On the tokenizer thread: the tokens, or rc < 0 and msg (t2_err is per thread). */
void wk_tokreq_run(void *req) {
    wk_tokreq *r = req;
    r->n_tokens = 0;
    r->rc = r->msgs ? encode_chat(r) : encode_text(r);
    if (r->rc < 0) snprintf(r->msg, sizeof r->msg, "%s", t2_err_msg());
    t2_err_clear();
}
