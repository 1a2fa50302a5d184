/* tokenizer.h - the tokenizer, of two kinds behind one object:
 *   - score-merge BPE with byte fallback (llama2.c / SentencePiece "llama" style: Llama 1/2,
 *     TinyStories), described first below (tokenizer.c);
 *   - byte-level BPE (GPT-2 style: Llama 3, Qwen2/2.5/3), loaded from GGUF (tokenizer.ggml.model
 *     "gpt2") or a Hugging Face tokenizer.json, described at the end (tokenizer_bpe.c).
 * Every function below works for both kinds unless it says otherwise.
 *
 * The SentencePiece-style kind:
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
 *
 * Threads: a loaded tokenizer is never written again (no caches; encoding allocates its own
 * scratch), so every function taking a const t2_tokenizer * may run on several threads at once
 * (a worker head encodes on its tokenizer thread while its loop decodes pieces).
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
/* From GGUF metadata: tokenizer.ggml.model "llama" (or "gpt2": the byte-level kind, see the
 * end of this header); tokenizer.ggml.tokens (strings),
 * tokenizer.ggml.scores (f32, optional: 0), tokenizer.ggml.token_type (i32, optional),
 * tokenizer.ggml.bos_token_id / eos_token_id (optional: 1 / 2). */
int t2_tok_load_gguf(t2_tokenizer **out, const t2_gguf *g);
void t2_tok_destroy(t2_tokenizer **t);

int t2_tok_vocab_size(const t2_tokenizer *t);
/* The longest piece's text in bytes (at least 1): no token stands for more bytes of a text, so a
 * text of n bytes needs at least n / this many tokens (O(vocabulary): call it once). */
size_t t2_tok_max_piece_bytes(const t2_tokenizer *t);
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
 * says how many; nothing is written and *n_tokens is 0). strlen(text) + 3 is always enough
 * (but see t2_tok_encode_ex for vocabularies that NFC-normalize).
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

/* Write tokenizer.ggml.* keys (for the byte-level kind: model "gpt2", pre, tokens, token_type,
 * merges, add_bos_token/add_eos_token and the ids present among bos/eos/eot/unknown/padding;
 * for the SentencePiece kind: model "llama", tokens with ' ' as U+2581, scores, token types:
 * 1 normal, 2 unknown, 3 control, 6 byte; bos/eos/unknown ids). */
int t2_tok_write_gguf(const t2_tokenizer *t, t2_gguf_writer *w);

/* ---------------------------------------------------------------------------------------- */
/* Both kinds: encoding with flags, end of turn                                             */
/* ---------------------------------------------------------------------------------------- */

#define T2_TOK_ADD_BOS 1u       /* prepend BOS (nothing if the vocabulary has no BOS) */
#define T2_TOK_ADD_EOS 2u       /* append EOS (likewise) */
#define T2_TOK_PARSE_SPECIAL 4u /* byte-level kind: control tokens written in the text
                                 * ("<|im_start|>") become their ids; without it they are
                                 * encoded as plain text. The SentencePiece kind ignores it. */

/* Encode len bytes of text (any bytes, NUL included). Same contract as t2_tok_encode; for the
 * byte-level kind len + 2 tokens are always enough, or 3 * len + 2 for a vocabulary that
 * NFC-normalizes (Qwen), since normalization may lengthen text. */
int t2_tok_encode_ex(const t2_tokenizer *t, const char *text, size_t len, unsigned flags,
                     int *tokens, int max_tokens, int *n_tokens);

/* 1 for the byte-level BPE kind, 0 for the SentencePiece-style one. */
int t2_tok_is_byte_level(const t2_tokenizer *t);

/* End-of-turn id (tokenizer.ggml.eot_token_id, or a known end-of-turn piece such as <|eot_id|>
 * or <|im_end|>), else EOS, else -1. For the SentencePiece kind: EOS. */
int t2_tok_eot(const t2_tokenizer *t);
/* Whether the model expects BOS at the start of a prompt (tokenizer.ggml.add_bos_token;
 * tokenizer_config.json's add_bos_token). Always 1 for the SentencePiece kind. */
int t2_tok_add_bos(const t2_tokenizer *t);

/* How many of the first n bytes of decoded text can be shown now: all of them but a trailing
 * incomplete UTF-8 sequence that later bytes may still complete. A streaming decoder keeps the
 * rest and prepends it to the next token's bytes, so no character is ever split. */
size_t t2_tok_utf8_complete(const char *s, size_t n);

/* ---------------------------------------------------------------------------------------- */
/* The byte-level BPE kind (Llama 3, Qwen2/2.5/3)                                           */
/* ---------------------------------------------------------------------------------------- */
/*
 * Pieces are the bytes they stand for (t2_tok_piece and t2_tok_decode give raw bytes, which
 * may be part of a UTF-8 character: see t2_tok_utf8_complete); control and user-defined pieces
 * (added tokens) are their text. t2_tok_decode ignores `prev`. t2_tok_score is 0; t2_tok_unk is
 * -1 (every byte has a piece); t2_tok_bos is -1 for a vocabulary without BOS (Qwen).
 *
 * Encoding: added tokens are cut out of the text first (user-defined ones always, control ones
 * with T2_TOK_PARSE_SPECIAL); the rest is NFC-normalized when the vocabulary says so (Qwen),
 * split by the pre-tokenizer regex named by `pre` ("llama-bpe": Llama 3; "qwen2": Qwen2/2.5/3;
 * any other name is refused), and each split piece's bytes are merged by merge rank. Invalid
 * UTF-8 encodes byte by byte, so decode(encode(x)) == x for any bytes x (NFC(x) for Qwen).
 *
 * GGUF metadata read: tokenizer.ggml.model = "gpt2", tokens, token_type (optional: all normal),
 * merges ("A B" in GPT-2's byte-to-unicode spelling), pre, bos/eos/eot/unknown/padding ids and
 * add_bos_token/add_eos_token (all optional; add_bos_token defaults to "has a BOS"). Ignoring
 * merges for whole-piece words and NFC follow from pre (llama-bpe: the first; qwen2: the
 * second), as in llama.cpp.
 */

/* From a Hugging Face tokenizer.json: model type BPE (byte-level: no byte_fallback, no subword
 * prefix), normalizer none or NFC, pre_tokenizer Split(a regex T2 implements) + ByteLevel,
 * decoder ByteLevel, added_tokens without lstrip/rstrip/single_word; anything else is refused
 * with one line naming the file and what T2 does not read. If a tokenizer_config.json lies in
 * the same folder, BOS/EOS/padding and add_bos_token/add_eos_token come from it; otherwise BOS
 * is <|begin_of_text|> or <s> if present. EOS/EOT missing from both: known piece names
 * (<|end_of_text|>, <|endoftext|>, </s>; <|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>). */
int t2_tok_load_hf_json(t2_tokenizer **out, const char *tokenizer_json_path);
/* Same from a buffer, without a tokenizer_config.json (used by the fuzzer). */
int t2_tok_load_hf_json_mem(t2_tokenizer **out, const void *buf, size_t size,
                            const char *name);

/* Write every tokenizer.ggml.* key for a GGUF from Hugging Face files (as t2_tok_write_gguf
 * does for the loaded vocabulary), with bos/eos/padding ids and add_bos_token/add_eos_token from
 * tokenizer_config_json (may be NULL: then none is read, not even one beside the tokenizer.json)
 * and its chat_template (a string, or the "default" entry of a list) as
 * tokenizer.chat_template. */
int t2_tok_hf_write_gguf(t2_gguf_writer *w, const char *tokenizer_json,
                         const char *tokenizer_config_json);
/* The same for a model of vocab_size rows: a vocabulary with fewer tokens is padded with unused
 * "[PADi]" tokens (as llama.cpp's converter does for Qwen); one with more is refused. 0: as
 * t2_tok_hf_write_gguf. */
int t2_tok_hf_write_gguf_vocab(t2_gguf_writer *w, const char *tokenizer_json,
                               const char *tokenizer_config_json, int vocab_size);

#endif
