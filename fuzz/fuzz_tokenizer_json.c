/* fuzz_tokenizer_json.c - libFuzzer target for the byte-level BPE tokenizer.
 *
 * The first input byte picks the mode (byte % 3):
 *   0: bytes[1..] are a tokenizer.json; if it loads, encode a few strings and the input with
 *      and without T2_TOK_PARSE_SPECIAL, decode every token.
 *   1: bytes[1..] are text for the real Llama 3 vocabulary (T2_ASSETS or [../]*../shared/assets;
 *      a small synthetic byte-level vocabulary if absent): decoding must give the text back
 *      exactly, with and without T2_TOK_PARSE_SPECIAL, or we abort().
 *   2: the same text for Qwen3 (NFC): encoding what decoding gives must give the same ids.
 * Round-trip failures abort(): they are real bugs, not just rejected input.
 */
#include "base/t2_err.h"
#include "engine/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Encode, check ids, decode into a malloc'd buffer (*out, *out_len). Returns the count. */
static int encode_decode(const t2_tokenizer *t, const char *s, size_t n, unsigned flags,
                         int **ids_out, char **out, size_t *out_len) {
    int cap = (int)(3 * n + 4), k = 0, vocab = t2_tok_vocab_size(t);
    int *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) abort();
    if (t2_tok_encode_ex(t, s, n, flags, ids, cap, &k) != 0) abort(); /* cap is enough */
    size_t total = 0;
    for (int i = 0; i < k; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) abort();
        if (!(flags & T2_TOK_PARSE_SPECIAL) && t2_tok_type(t, ids[i]) == 3) abort();
        size_t pl;
        t2_tok_decode(t, -1, ids[i], &pl);
        total += pl;
    }
    char *o = malloc(total + 1);
    if (!o) abort();
    size_t pos = 0;
    for (int i = 0; i < k; i++) {
        size_t pl;
        const char *p = t2_tok_decode(t, i ? ids[i - 1] : -1, ids[i], &pl);
        memcpy(o + pos, p, pl);
        pos += pl;
    }
    if (k > 1 && t2_tok_encode_ex(t, s, n, flags, ids, k - 1, &cap) != T2_ERANGE) abort();
    *ids_out = ids;
    *out = o;
    *out_len = pos;
    return k;
}

/* exact: decode(encode(x)) == x; else (NFC) encoding the decoded text gives the same ids;
 * -1: only that encoding and decoding work (a fuzzed vocabulary may have added tokens that NFC
 * can create, so re-encoding may legitimately differ). */
static void round_trip(const t2_tokenizer *t, const char *s, size_t n, int exact) {
    for (unsigned flags = 0; flags <= T2_TOK_PARSE_SPECIAL; flags += T2_TOK_PARSE_SPECIAL) {
        int *ids, *ids2;
        char *o, *o2;
        size_t on, on2;
        int k = encode_decode(t, s, n, flags, &ids, &o, &on);
        if (exact == 1 && (on != n || memcmp(o, s, n) != 0)) {
            fprintf(stderr, "round trip failed for %zu bytes (flags %u)\n", n, flags);
            abort();
        }
        if (exact == 0) { /* normalized text: encoding it again changes nothing */
            int k2 = encode_decode(t, o, on, flags, &ids2, &o2, &on2);
            if (k2 != k || memcmp(ids, ids2, (size_t)k * sizeof *ids) != 0) abort();
            free(ids2);
            free(o2);
        }
        free(ids);
        free(o);
    }
}

/* A byte-level vocabulary in tokenizer.json form: the 256 bytes and a few merges. */
static char *synthetic_json(size_t *n) {
    size_t cap = 1 << 16, pos = 0;
    char *j = malloc(cap);
    if (!j) abort();
    pos += (size_t)snprintf(j + pos, cap - pos,
        "{\"added_tokens\":[{\"id\":260,\"content\":\"<|im_start|>\",\"special\":true},"
        "{\"id\":261,\"content\":\"<think>\",\"special\":false}],\"normalizer\":null,"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
        "\"pattern\":{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?"
        "\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|"
        "\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
        "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = b;
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174))
            cp = b <= 32 ? 256 + b : b <= 160 ? 256 + 33 + (b - 127) : 256 + 67;
        pos += (size_t)snprintf(j + pos, cap - pos, "\"\\u%04x\":%u,", cp, b);
    }
    pos += (size_t)snprintf(j + pos, cap - pos,
                            "\"he\":256,\"ll\":257,\"\\u0120t\":258,\"hell\":259},"
                            "\"merges\":[\"h e\",\"l l\",\"\\u0120 t\",\"he ll\"]}}");
    *n = pos;
    return j;
}

static const t2_tokenizer *vocab(const char *name) {
    static t2_tokenizer *tok[2];
    static int tried[2];
    int k = name[0] == 'q';
    if (tried[k]) return tok[k];
    tried[k] = 1;
    const char *env = getenv("T2_ASSETS");
    const char *roots[] = {env, "../shared/assets", "../../shared/assets",
                           "../../../shared/assets"};
    for (size_t i = 0; i < sizeof roots / sizeof *roots && !tok[k]; i++) {
        char path[1024];
        if (!roots[i]) continue;
        snprintf(path, sizeof path, "%s/tokenizers/%s/tokenizer.json", roots[i], name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fclose(f);
        if (t2_tok_load_hf_json(&tok[k], path) != 0) abort();
        fprintf(stderr, "using %s\n", path);
    }
    if (!tok[k]) {
        size_t n;
        char *j = synthetic_json(&n);
        if (t2_tok_load_hf_json_mem(&tok[k], j, n, "synthetic") != 0) {
            fprintf(stderr, "synthetic vocabulary: %s\n", t2_err_msg());
            abort();
        }
        free(j);
        fprintf(stderr, "%s tokenizer.json not found: using a synthetic vocabulary\n", name);
    }
    return tok[k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 3 == 0) {
        static const char *texts[] = {"", "hello there", "<|im_start|>x<think>", "a   b\n\n",
                                      "\xff\xc3(1234)"};
        t2_tokenizer *t = NULL;
        if (t2_tok_load_hf_json_mem(&t, s, n, "fuzz.json") == 0) {
            for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
                round_trip(t, texts[i], strlen(texts[i]), -1);
            round_trip(t, s, n < 256 ? n : 256, -1);
            for (int id = -1; id <= t2_tok_vocab_size(t); id++) {
                size_t len;
                const char *p = t2_tok_decode(t, -1, id, &len);
                if (!p || p[len] != 0) abort();
            }
            t2_tok_destroy(&t);
        } else if (t != NULL || t2_err_msg()[0] == 0) {
            abort();
        }
    } else if (data[0] % 3 == 1) {
        round_trip(vocab("llama3"), s, n, 1);
    } else {
        round_trip(vocab("qwen3"), s, n, 0);
    }
    return 0;
}
