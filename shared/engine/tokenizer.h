/* tokenizer.h - score-merge BPE with byte fallback (llama2.c / SentencePiece "llama" style).
 *
 * Pieces are stored with real spaces (SentencePiece's U+2581 "▁" is turned into ' ' when
 * loading from GGUF or a .model-derived vocabulary, and back when writing GGUF). Byte pieces
 * "<0x00>".."<0xFF>" are recognised by their text.
 *
 * Encoding (the same as llama2.c's encode(), which matches SentencePiece for Llama models):
 *   1. optional BOS; 2. if the text is non-empty, a dummy prefix " " (the "▁" SentencePiece
 *   adds); 3. each UTF-8 code point becomes its piece, or its bytes as byte pieces when the
 *   vocabulary lacks it; 4. repeatedly merge the adjacent pair whose concatenation is a piece
 *   with the highest score (leftmost on ties); 5. optional EOS.
 * Invalid UTF-8 is not an error: each stray byte falls back to its byte piece.
 *
 * Decoding a token after BOS drops the piece's leading space (as SentencePiece does);
 * byte pieces decode to their byte.
 */
#ifndef T2_TOKENIZER_H
#define T2_TOKENIZER_H

#include "engine/gguf.h"

#include <stddef.h>

typedef struct t2_tokenizer t2_tokenizer;

/* llama2.c tokenizer.bin: uint32 max_token_length, then vocab_size records of
 * {float score, int32 len, len bytes}. vocab_size is the model's (the file has no count):
 * a file with fewer records, a length < 0 or > max_token_length, or trailing bytes is an
 * error naming the file and record. BOS = 1, EOS = 2 as in llama2.c. */
int t2_tok_load_llama2c(t2_tokenizer **out, const char *path, int vocab_size);
/* Same from a buffer (used by the fuzzer). */
int t2_tok_load_llama2c_mem(t2_tokenizer **out, const void *buf, size_t size, int vocab_size,
                            const char *name);
/* From GGUF metadata: tokenizer.ggml.model must be "llama"; tokenizer.ggml.tokens (strings),
 * tokenizer.ggml.scores (f32, optional: 0), tokenizer.ggml.token_type (i32, optional),
 * tokenizer.ggml.bos_token_id / eos_token_id (optional: 1 / 2). */
int t2_tok_load_gguf(t2_tokenizer **out, const t2_gguf *g);
void t2_tok_destroy(t2_tokenizer **t);

int t2_tok_vocab_size(const t2_tokenizer *t);
int t2_tok_bos(const t2_tokenizer *t);
int t2_tok_eos(const t2_tokenizer *t);
/* Unknown-token id (0 for llama2.c files): used for bytes whose byte piece is missing. */
int t2_tok_unk(const t2_tokenizer *t);
/* Piece type as in tokenizer.ggml.token_type (1 normal, 2 unknown, 3 control, 4 user-defined,
 * 5 unused, 6 byte); for llama2.c files inferred from the ids and "<0xXX>" pieces. 0 if out of
 * range. Only normal and user-defined pieces are produced from text by merging. */
int t2_tok_type(const t2_tokenizer *t, int token);

/* Encode text (NUL-terminated). Writes at most max_tokens ids to tokens and the count to
 * *n_tokens. Returns 0, or T2_ERANGE if more than max_tokens would be needed (the message
 * says how many; nothing is written and *n_tokens is 0). strlen(text) + 3 is always enough.
 * Thread-safe (no shared mutable state). */
int t2_tok_encode(const t2_tokenizer *t, const char *text, int bos, int eos, int *tokens,
                  int max_tokens, int *n_tokens);

/* The bytes `token` stands for when it follows `prev` (leading space dropped after BOS, byte
 * pieces as their byte). Pointer valid until t2_tok_destroy. An out-of-range token gives "". */
const char *t2_tok_decode(const t2_tokenizer *t, int prev, int token, size_t *len);
/* What to print for `token` after `prev`: t2_tok_decode's bytes, except that a piece of a single
 * control byte other than whitespace (0x00-0x1F but \t \n \v \f \r, and 0x7F) gives *len = 0,
 * as llama2.c prints. Bytes >= 0x80 are kept, so byte-fallback pieces reassemble into UTF-8. The
 * rule does not depend on the C locale. `t2 run`, batched generation and worker groups all print
 * with it, so their texts are byte-identical. */
const char *t2_tok_piece_text(const t2_tokenizer *t, int prev, int token, size_t *len);
/* The raw piece text (with spaces, "<0x0A>" for byte pieces) and score. */
const char *t2_tok_piece(const t2_tokenizer *t, int token, size_t *len);
float t2_tok_score(const t2_tokenizer *t, int token);

/* Write tokenizer.ggml.* keys (model "llama", tokens with ' ' as U+2581, scores, token types:
 * 1 normal, 2 unknown, 3 control, 6 byte; bos/eos/unknown ids). */
int t2_tok_write_gguf(const t2_tokenizer *t, t2_gguf_writer *w);

#endif
