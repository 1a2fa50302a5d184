/* chat_model.c - chat templates meet a model: the template its GGUF carries, bos_token and
 * eos_token texts from its tokenizer, and the encoding of rendered text (chat.h). The CLI
 * (t2 chat, t2 run --chat) and the worker go through these, so they encode a conversation the
 * same way. */
#include "engine/chat.h"

#include "base/t2_err.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

#include <string.h>

void t2_chat_template_use_tokenizer(t2_chat_template *t, const t2_tokenizer *tok) {
    size_t n;
    char b[256] = "", e[256] = "";
    const char *bos = t2_tok_piece(tok, t2_tok_bos(tok), &n);
    if (bos && n < sizeof b) memcpy(b, bos, n), b[n] = 0;
    const char *eos = t2_tok_piece(tok, t2_tok_eos(tok), &n);
    if (eos && n < sizeof e) memcpy(e, eos, n), e[n] = 0;
    t2_chat_template_set_tokens(t, *t2_chat_template_bos(t) ? NULL : b,
                                *t2_chat_template_eos(t) ? NULL : e);
}

int t2_chat_template_from_model(t2_chat_template **out, const t2_model *m,
                                const t2_tokenizer *tok) {
    const char *s;
    size_t n;
    *out = NULL;
    if (!m->gguf || t2_gguf_get_str(m->gguf, "tokenizer.chat_template", &s, &n) < 0)
        return t2_err_set(T2_ENOTFOUND, "%s: no tokenizer.chat_template in the model: name a "
                          "template (a file, a tokenizer_config.json, or chatml, llama3, gemma, "
                          "phi3)", m->path ? m->path : "the model");
    int rc = t2_chat_template_new(out, s, n, "tokenizer.chat_template");
    if (rc == 0 && tok) t2_chat_template_use_tokenizer(*out, tok);
    return rc;
}

int t2_chat_encode(const t2_tokenizer *tok, const t2_chat_template *t, const char *text,
                   size_t len, int *tokens, int max_tokens, int *n_tokens) {
    const char *bos = t2_chat_template_bos(t);
    size_t bn = strlen(bos);
    const int lead = bn && len >= bn && !strncmp(text, bos, bn);
    return t2_tok_encode_ex(tok, text + (lead ? bn : 0), len - (lead ? bn : 0),
                            T2_TOK_PARSE_SPECIAL | (lead ? T2_TOK_ADD_BOS : 0), tokens,
                            max_tokens, n_tokens);
}
