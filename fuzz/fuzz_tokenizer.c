/* fuzz_tokenizer.c - libFuzzer target for the tokenizer.
 *
 * The first input byte picks the mode (byte % 3):
 *   0: bytes[2..] are a llama2.c tokenizer file for a vocabulary of bytes[1] + 1 tokens; if it
 *      loads, encode a few strings and the input, decode every token.
 *   1: bytes[1..] are text encoded with the real tok512 vocabulary (T2_ASSETS or
 *      [../]*../shared/assets; a small synthetic vocabulary if absent): decoding must give the text
 *      back exactly, or we abort().
 *   2: bytes[1..] are a GGUF file; if it opens and has a tokenizer, exercise it as in mode 0.
 * Round-trip failures abort(): they are real bugs, not just rejected input.
 */
#include "engine/gguf.h"
#include "base/t2_err.h"
#include "engine/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Check decode(encode(text)) == text for text given as a NUL-terminated string. Texts whose
 * encoding needed the unknown token (a byte with no byte piece) cannot round-trip and are only
 * checked for not crashing. */
static void encode_decode(const t2_tokenizer *t, const char *text, int bos, int eos) {
    size_t tl = strlen(text);
    int cap = (int)tl + 3, n = 0;
    /* A decoded token is at most its piece plus one byte (a vocabulary read from the input may
     * have long pieces, the unknown token's included). */
    size_t maxp = 0;
    for (int id = 0; id < t2_tok_vocab_size(t); id++) {
        size_t pl;
        t2_tok_piece(t, id, &pl);
        if (pl > maxp) maxp = pl;
    }
    const size_t bound = tl + 1 + (maxp + 1) * (size_t)cap;
    int *ids = malloc((size_t)cap * sizeof *ids);
    char *out = malloc(bound + 1);
    if (!ids || !out) abort();

    if (t2_tok_encode(t, text, bos, eos, ids, cap, &n) != 0) abort(); /* cap is enough */
    int first = bos ? 1 : 0, last = eos ? n - 1 : n;
    if (last < first || (tl == 0 && last != first) || (tl && last == first)) abort();
    if ((bos && ids[0] != t2_tok_bos(t)) || (eos && ids[n - 1] != t2_tok_eos(t))) abort();
    int n2 = -1;
    if (t2_tok_encode(t, text, bos, eos, ids + n, cap - n, &n2) != (n <= cap - n ? 0 : T2_ERANGE))
        abort();
    if (n > 1 && t2_tok_encode(t, text, bos, eos, ids, n - 1, &n2) != T2_ERANGE) abort();
    if (t2_tok_encode(t, text, bos, eos, ids, cap, &n2) != 0 || n2 != n) abort();

    /* Text tokens are never BOS/EOS; the unknown token only stands for a missing byte piece. */
    int has_unk = 0, vocab = t2_tok_vocab_size(t);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) abort();
    for (int i = first; i < last; i++) {
        if (ids[i] == t2_tok_unk(t)) has_unk = 1;
        else if (ids[i] == t2_tok_bos(t) || ids[i] == t2_tok_eos(t)) abort();
    }

    /* Decode without a previous token: " " + text. After BOS: text. */
    for (int pass = 0; pass < 2; pass++) {
        size_t len = 0;
        int prev = pass ? t2_tok_bos(t) : -1;
        for (int i = first; i < last; i++) {
            size_t pl;
            const char *p = t2_tok_decode(t, prev, ids[i], &pl);
            if (len + pl > bound) abort();
            memcpy(out + len, p, pl);
            len += pl;
            prev = ids[i];
        }
        if (has_unk) continue;
        if (pass == 0) {
            if (tl && (len != tl + 1 || out[0] != ' ' || memcmp(out + 1, text, tl) != 0)) {
                fprintf(stderr, "round trip (no BOS) failed for %zu bytes\n", tl);
                abort();
            }
        } else {
            /* After BOS the first token's leading space goes: equal unless the dummy prefix
             * became a byte piece (a vocabulary without " "). */
            size_t ps;
            const char *p0 = n > first ? t2_tok_piece(t, ids[first], &ps) : "";
            if (tl && ps > 0 && p0[0] == ' ' && (len != tl || memcmp(out, text, tl) != 0)) {
                fprintf(stderr, "round trip (after BOS) failed for %zu bytes\n", tl);
                abort();
            }
        }
    }
    free(ids);
    free(out);
}

static void exercise(const t2_tokenizer *t, const uint8_t *data, size_t size) {
    static const char *texts[] = {"", "a", "Once upon a time", "  x\t\n", "\xc3\xa9\xff",
                                  "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"};
    int vocab = t2_tok_vocab_size(t);
    if (vocab <= 0) abort();
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        encode_decode(t, texts[i], (int)(i & 1), (int)(i & 2));
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    encode_decode(t, s, 1, 0);
    free(s);
    for (int id = -1; id <= vocab; id++) {
        size_t len;
        const char *p = t2_tok_decode(t, t2_tok_bos(t), id, &len);
        if (!p || p[len] != 0) abort();
        p = t2_tok_decode(t, -1, id, &len);
        if (!p || p[len] != 0) abort();
        p = t2_tok_piece(t, id, &len);
        if (!p || p[len] != 0) abort();
        (void)t2_tok_score(t, id);
    }
}

/* A byte-level vocabulary from a GGUF: encoding works and decoding gives the bytes back (no
 * dummy prefix, no BOS rules: the checks of encode_decode() are the SentencePiece kind's). */
static void exercise_bpe(const t2_tokenizer *t, const uint8_t *data, size_t size) {
    int cap = (int)(3 * size + 4), n = 0;
    int *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) abort();
    if (t2_tok_encode_ex(t, (const char *)data, size, T2_TOK_PARSE_SPECIAL, ids, cap, &n) != 0)
        abort();
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = t2_tok_decode(t, -1, ids[i], &len);
        if (ids[i] < 0 || ids[i] >= t2_tok_vocab_size(t) || !p || p[len] != 0) abort();
    }
    free(ids);
}

/* A small llama2.c-format vocabulary for when tok512.bin is not available. */
static size_t synthetic_vocab(unsigned char *buf, int *vocab) {
    static const char *extra[] = {" ", "a", "b", "c", "d", "e", "h", "i", "l", "n", "o", "t",
                                  "u", "w", "y", ",", ".", " t", "he", " the", " a", "in",
                                  " w", "on", "ce", " O", " On", " Once", "  ", "\xc3\xa9",
                                  "\xe6\x97\xa5", " \xc3\xa9"};
    size_t pos = 4;
    uint32_t max_len = 8;
    int n = 0;
    memcpy(buf, &max_len, 4);
    for (int i = 0; i < 3 + 256 + (int)(sizeof extra / sizeof *extra); i++, n++) {
        char piece[16];
        if (i == 0) strcpy(piece, "<unk>");
        else if (i == 1) strcpy(piece, "\n<s>\n");
        else if (i == 2) strcpy(piece, "\n</s>\n");
        else if (i < 259) snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        else snprintf(piece, sizeof piece, "%s", extra[i - 259]);
        float score = i < 259 ? 0.0f : (float)-(i - 259);
        int32_t len = (int32_t)strlen(piece);
        memcpy(buf + pos, &score, 4);
        memcpy(buf + pos + 4, &len, 4);
        memcpy(buf + pos + 8, piece, (size_t)len);
        pos += 8 + (size_t)len;
    }
    *vocab = n;
    return pos;
}

static const t2_tokenizer *real_vocab(void) {
    static t2_tokenizer *tok;
    static int tried;
    if (tried) return tok;
    tried = 1;
    const char *env = getenv("T2_ASSETS");
    /* ctest runs fuzzers in <build>/fuzz, three levels below the assets' parent. */
    const char *roots[] = {env, "../shared/assets", "../../shared/assets",
                           "../../../shared/assets"};
    for (size_t i = 0; i < sizeof roots / sizeof *roots && !tok; i++) {
        char path[1024];
        if (!roots[i]) continue;
        snprintf(path, sizeof path, "%s/models/tok512.bin", roots[i]);
        if (t2_tok_load_llama2c(&tok, path, 512) == 0) fprintf(stderr, "using %s\n", path);
    }
    if (!tok) {
        static unsigned char buf[8192];
        int vocab;
        size_t size = synthetic_vocab(buf, &vocab);
        if (t2_tok_load_llama2c_mem(&tok, buf, size, vocab, "synthetic") != 0) abort();
        fprintf(stderr, "tok512.bin not found: using a synthetic vocabulary\n");
    }
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    if (mode == 0) {
        if (size < 2) return 0;
        t2_tokenizer *t = NULL;
        int vocab = data[1] + 1;
        if (t2_tok_load_llama2c_mem(&t, data + 2, size - 2, vocab, "fuzz.bin") == 0) {
            exercise(t, data, size < 64 ? size : 64);
            t2_tok_destroy(&t);
        } else if (t != NULL || t2_err_msg()[0] == 0) {
            abort();
        }
    } else if (mode == 1) {
        char *s = malloc(size);
        if (!s) abort();
        memcpy(s, data + 1, size - 1);
        s[size - 1] = 0;
        encode_decode(real_vocab(), s, 0, 0);
        encode_decode(real_vocab(), s, 1, 1);
        free(s);
    } else {
        t2_gguf *g = NULL;
        t2_tokenizer *t = NULL;
        if (t2_gguf_open_mem(&g, data + 1, size - 1, "fuzz.gguf") == 0) {
            if (t2_tok_load_gguf(&t, g) == 0) {
                if (t2_tok_is_byte_level(t)) /* fuzz_tokenizer_json covers that kind */
                    exercise_bpe(t, data, size < 64 ? size : 64);
                else
                    exercise(t, data, size < 64 ? size : 64);
                t2_tok_destroy(&t);
            } else if (t != NULL) {
                abort();
            }
            t2_gguf_close(&g);
        }
    }
    return 0;
}
