/* hf_tok_stub.c - placeholder for the Hugging Face tokenizer writer (see hf_tok.h); the lead
 * removes this file at merge. */
#include "hf_tok.h"

#include "base/t2_err.h"

int t2_tok_hf_write_gguf(t2_gguf_writer *w, const char *tokenizer_json,
                         const char *tokenizer_config_json) {
    (void)w;
    (void)tokenizer_config_json;
    return t2_err_set(T2_EUNSUPPORTED, "%s: Hugging Face tokenizers are not supported by this "
                      "build", tokenizer_json);
}
