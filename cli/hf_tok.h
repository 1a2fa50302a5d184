/* hf_tok.h - the Hugging Face tokenizer hook of `t2 convert HF_FOLDER`.
 *
 * Temporary: the byte-level BPE tokenizer (another branch) provides this function in
 * engine/tokenizer.h; until the merge, cli/hf_tok_stub.c returns T2_EUNSUPPORTED. The lead
 * removes this header and the stub at merge and includes engine/tokenizer.h in
 * cmd_convert_hf.c instead.
 */
#ifndef T2_CLI_HF_TOK_H
#define T2_CLI_HF_TOK_H

#include "engine/gguf.h"

/* Add the tokenizer.ggml.* keys of a Hugging Face tokenizer (paths of tokenizer.json and, when
 * not NULL, tokenizer_config.json) to w. Returns 0 or a T2_E code with the message set. */
int t2_tok_hf_write_gguf(t2_gguf_writer *w, const char *tokenizer_json,
                         const char *tokenizer_config_json);

#endif
