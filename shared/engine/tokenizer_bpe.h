/* tokenizer_bpe.h - private to the engine: the byte-level BPE kind of t2_tokenizer
 * (tokenizer_bpe.c). tokenizer.c wraps a t2_bpe in a t2_tokenizer and forwards to it; callers
 * use engine/tokenizer.h only. */
#ifndef T2_TOKENIZER_BPE_H
#define T2_TOKENIZER_BPE_H

#include "engine/gguf.h"
#include "engine/tokenizer.h"

#include <stddef.h>

typedef struct t2_bpe t2_bpe;

/* From GGUF metadata whose tokenizer.ggml.model is "gpt2". */
int t2_bpe_load_gguf(t2_bpe **out, const t2_gguf *g);
/* From a Hugging Face tokenizer.json and (may be NULL) its tokenizer_config.json. */
int t2_bpe_load_hf(t2_bpe **out, const char *json_path, const char *config_path);
void t2_bpe_destroy(t2_bpe **b);

/* Vocabulary size and special ids (-1 when absent). */
void t2_bpe_ids(const t2_bpe *b, int *n_vocab, int *bos, int *eos, int *unk);
int t2_bpe_eot(const t2_bpe *b);
int t2_bpe_add_bos(const t2_bpe *b);
int t2_bpe_type(const t2_bpe *b, int token);
/* The bytes a token stands for (special tokens: their text). Caller checks the range. */
const char *t2_bpe_piece(const t2_bpe *b, int token, size_t *len);
int t2_bpe_encode(const t2_bpe *b, const char *text, size_t len, unsigned flags, int *tokens,
                  int max_tokens, int *n_tokens);
int t2_bpe_write_gguf(const t2_bpe *b, t2_gguf_writer *w);
/* The same, padded with unused "[PADi]" tokens up to pad_to (0: none). */
int t2_bpe_write_gguf_pad(const t2_bpe *b, t2_gguf_writer *w, int pad_to);

/* tokenizer.c: a t2_tokenizer of the BPE kind around b (takes b, also on error). */
int t2_tok_from_bpe(t2_tokenizer **out, t2_bpe *b);

#endif
