/* tokenizer.c - score-merge BPE with byte fallback (llama2.c / SentencePiece "llama" style).
 *
 * The vocabulary lives in one arena (every piece NUL-terminated, so decode() results can be
 * printed with "%s"). Pieces that text may be encoded to (normal and user-defined ones) are
 * also in an open-addressing hash table keyed by their bytes.
 *
 * Encoding works on symbols that are always substrings of " " + text: each valid UTF-8 code
 * point found in the table is one mergeable symbol, anything else becomes one byte-piece
 * symbol per byte (never merged). Candidate merges of adjacent mergeable symbols sit in a
 * max-heap ordered by (score, leftmost position); stale entries are skipped when popped. This
 * gives exactly the merges of llama2.c's repeated "best pair, leftmost on ties" scan, in
 * O(n log n) instead of O(n^2).
 *
 * Where llama2.c's encode() is loose, this one is stricter (the results are identical for
 * valid UTF-8 and the shipped vocabularies; tests/test_tokenizer.c checks this against a
 * literal reimplementation, tests/sp_parity.py against SentencePiece):
 *   - UTF-8 is validated: llama2.c groups a lead byte with up to 3 following continuation
 *     bytes, so for "\xc3\xa9\xa9" it emits three byte tokens where we emit U+00E9, <0xA9>;
 *   - byte fallback looks up the "<0xXX>" piece (llama2.c assumes id = byte + 3) and uses the
 *     unknown token if it is missing; a missing " " piece for the dummy prefix falls back the
 *     same way (llama2.c would emit id -1);
 *   - merges never produce BOS/EOS/unknown, control, unused or byte pieces, and never merge a
 *     byte-fallback token or BOS (llama2.c looks the concatenated piece texts up in the whole
 *     vocabulary); like llama2.c, only pieces scoring above -1e10 are merged.
 */
#include "engine/tokenizer.h"

#include "base/hash.h"
#include "base/t2_err.h"
#include "engine/heap.h"
#include "engine/tokenizer_bpe.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOK_MAX_VOCAB (1 << 24)      /* more ids than any real vocabulary */
#define TOK_MAX_PIECE 65536          /* longest piece (bytes) a file may declare */
#define TOK_MAX_FILE (1u << 30)      /* a llama2.c tokenizer file larger than this is bogus */
#define TOK_MIN_MERGE_SCORE (-1e10f) /* llama2.c only merges pairs scoring above this */

/* token_type values of tokenizer.ggml.token_type (SentencePiece's piece types). */
enum {
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6,
};

struct t2_tokenizer {
    int n_vocab;
    int bos, eos, unk;
    int max_len;         /* longest piece in the lookup table */
    char *text;          /* arena: all pieces, each followed by a NUL */
    size_t *off;         /* piece i starts at text + off[i] */
    uint32_t *len;       /* piece i's length in bytes */
    float *score;
    int32_t *type;
    int16_t *byte_val;   /* 0..255 for a byte piece "<0xXX>", else -1 */
    int byte_id[256];    /* id of the byte piece for each byte, or -1 */
    int32_t *table;      /* hash table of ids, -1 = empty */
    uint32_t table_mask;
    char byte_str[512];  /* byte b decodes to byte_str + 2 * b (NUL-terminated) */
    t2_bpe *bpe;         /* the byte-level BPE kind (tokenizer_bpe.c); NULL for this one */
};

/* ---------------------------------------------------------------------------------------- */
/* Construction helpers                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* Id of the table piece with these bytes, or -1. */
static int lookup(const t2_tokenizer *t, const char *s, size_t n) {
    if (n == 0 || n > (size_t)t->max_len) return -1;
    uint32_t i = t2_fnv1a32(s, n) & t->table_mask;
    for (;;) {
        int32_t id = t->table[i];
        if (id < 0) return -1;
        if (t->len[id] == n && memcmp(t->text + t->off[id], s, n) == 0) return id;
        i = (i + 1) & t->table_mask;
    }
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte a "<0xXX>" piece stands for, or -1. */
static int parse_byte_piece(const char *p, size_t n) {
    if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>') return -1;
    int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
}

/* Whether text may be encoded to a piece of this type (SentencePiece never emits control,
 * unknown or unused pieces for text, and byte pieces only through byte fallback). */
static int type_is_text(int32_t type) {
    return type != TT_UNKNOWN && type != TT_CONTROL && type != TT_UNUSED && type != TT_BYTE;
}

/* Allocate a tokenizer for n pieces totalling at most text_bytes bytes (without NULs). */
static t2_tokenizer *tok_alloc(int n, size_t text_bytes) {
    t2_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_vocab = n;
    t->text = malloc(text_bytes + (size_t)n);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = malloc((size_t)n * sizeof *t->len);
    t->score = calloc((size_t)n, sizeof *t->score);
    t->type = calloc((size_t)n, sizeof *t->type);
    t->byte_val = malloc((size_t)n * sizeof *t->byte_val);
    if (!t->text || !t->off || !t->len || !t->score || !t->type || !t->byte_val) {
        t2_tok_destroy(&t);
        return NULL;
    }
    return t;
}

/* After pieces, scores and (if have_types) types are filled in and bos/eos/unk are set:
 * infer missing types, find byte pieces and build the lookup table. */
static int tok_finish(t2_tokenizer *t, int have_types) {
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = -1;
        t->byte_str[2 * b] = (char)b;
        t->byte_str[2 * b + 1] = 0;
    }
    for (int i = 0; i < t->n_vocab; i++) {
        int b = parse_byte_piece(t->text + t->off[i], t->len[i]);
        int special = i == t->bos || i == t->eos || i == t->unk;
        if (!have_types) {
            if (i == t->bos || i == t->eos) t->type[i] = TT_CONTROL;
            else if (i == t->unk) t->type[i] = TT_UNKNOWN;
            else if (b >= 0) t->type[i] = TT_BYTE;
            else t->type[i] = TT_NORMAL;
        }
        if (t->type[i] != TT_BYTE) b = -1;
        t->byte_val[i] = (int16_t)b;
        /* Text never encodes to BOS, EOS or unknown, whatever their types say. */
        if (b >= 0 && !special && t->byte_id[b] < 0) t->byte_id[b] = i;
    }

    size_t cap = 16;
    while (cap < 2 * (size_t)t->n_vocab) cap *= 2;
    t->table = malloc(cap * sizeof *t->table);
    if (!t->table) return t2_err_set(T2_ENOMEM, "tokenizer: out of memory (%zu slots)", cap);
    memset(t->table, 0xff, cap * sizeof *t->table);
    t->table_mask = (uint32_t)(cap - 1);
    t->max_len = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        if (!type_is_text(t->type[i]) || t->len[i] == 0) continue;
        if (i == t->bos || i == t->eos || i == t->unk) continue;
        const char *p = t->text + t->off[i];
        if ((uint32_t)t->max_len >= t->len[i] && lookup(t, p, t->len[i]) >= 0) continue;
        uint32_t h = t2_fnv1a32(p, t->len[i]) & t->table_mask;
        while (t->table[h] >= 0) h = (h + 1) & t->table_mask;
        t->table[h] = i; /* first (lowest) id wins for duplicate pieces */
        if ((int)t->len[i] > t->max_len) t->max_len = (int)t->len[i];
    }
    return 0;
}

void t2_tok_destroy(t2_tokenizer **tp) {
    if (!tp || !*tp) return;
    t2_tokenizer *t = *tp;
    t2_bpe_destroy(&t->bpe);
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->byte_val);
    free(t->table);
    free(t);
    *tp = NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* llama2.c tokenizer.bin                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Count well-formed records from pos to the end; returns -1 if the bytes are not exactly a
 * sequence of records. */
static long long count_records(const unsigned char *p, size_t size, size_t pos, uint32_t max) {
    long long n = 0;
    while (pos < size) {
        int32_t len;
        if (size - pos < 8) return -1;
        memcpy(&len, p + pos + 4, 4);
        if (len < 0 || (uint32_t)len > max || size - pos - 8 < (size_t)len) return -1;
        pos += 8 + (size_t)len;
        n++;
    }
    return n;
}

int t2_tok_load_llama2c_mem(t2_tokenizer **out, const void *buf, size_t size, int vocab_size,
                            const char *name) {
    const unsigned char *p = buf;
    t2_tokenizer *t = NULL;
    uint32_t max_len;
    int rc;

    if (!name) name = "<memory>";
    if (!out) return t2_err_set(T2_EINVAL, "%s: no output tokenizer", name);
    *out = NULL;
    if (vocab_size < 3 || vocab_size > TOK_MAX_VOCAB)
        return t2_err_set(T2_EINVAL, "%s: vocabulary size %d is not in [3, %d]", name,
                          vocab_size, TOK_MAX_VOCAB);
    if (!buf && size) return t2_err_set(T2_EINVAL, "%s: no data", name);
    if (size == 0) return t2_err_set(T2_EFORMAT, "%s: empty tokenizer file", name);
    if (size < 4)
        return t2_err_set(T2_EFORMAT, "%s: truncated header (%zu bytes, need 4)", name, size);
    memcpy(&max_len, p, 4);
    if (max_len < 1 || max_len > TOK_MAX_PIECE)
        return t2_err_set(T2_EFORMAT, "%s: max_token_length %u is not in [1, %d]", name,
                          max_len, TOK_MAX_PIECE);

    /* Pass 0 validates every record (so that a bogus vocab_size fails before allocating for
     * it); pass 1 copies them. */
    for (int pass = 0; pass < 2; pass++) {
        size_t pos = 4, arena = 0;
        for (int i = 0; i < vocab_size; i++) {
            float score;
            int32_t len;
            if (size - pos < 8) {
                if (pos == size)
                    rc = t2_err_set(T2_EMISMATCH,
                                    "%s: truncated at token %d of %d (the file holds %d tokens; "
                                    "the tokenizer does not match the model's vocabulary)",
                                    name, i, vocab_size, i);
                else
                    rc = t2_err_set(T2_EFORMAT, "%s: truncated at token %d of %d", name, i,
                                    vocab_size);
                goto cleanup;
            }
            memcpy(&score, p + pos, 4);
            memcpy(&len, p + pos + 4, 4);
            pos += 8;
            if (!isfinite(score)) {
                rc = t2_err_set(T2_EFORMAT, "%s: token %d of %d has a non-finite score (%g)",
                                name, i, vocab_size, (double)score);
                goto cleanup;
            }
            if (len < 0) {
                rc = t2_err_set(T2_EFORMAT, "%s: token %d of %d has a negative length (%d)",
                                name, i, vocab_size, (int)len);
                goto cleanup;
            }
            if ((uint32_t)len > max_len) {
                rc = t2_err_set(T2_EFORMAT,
                                "%s: token %d of %d has length %d, more than max_token_length %u",
                                name, i, vocab_size, (int)len, max_len);
                goto cleanup;
            }
            if (size - pos < (size_t)len) {
                rc = t2_err_set(T2_EFORMAT,
                                "%s: truncated at token %d of %d (its %d bytes extend past the "
                                "end of the file)",
                                name, i, vocab_size, (int)len);
                goto cleanup;
            }
            if (t) {
                t->off[i] = arena;
                t->len[i] = (uint32_t)len;
                t->score[i] = score;
                memcpy(t->text + arena, p + pos, (size_t)len);
                t->text[arena + (size_t)len] = 0;
            }
            arena += (size_t)len + 1;
            pos += (size_t)len;
        }
        if (t) break;
        if (pos != size) {
            long long more = count_records(p, size, pos, max_len);
            if (more > 0)
                rc = t2_err_set(T2_EMISMATCH,
                                "%s: the file has %lld tokens, more than the model's vocabulary "
                                "(%d): the tokenizer does not match the model",
                                name, (long long)vocab_size + more, vocab_size);
            else
                rc = t2_err_set(T2_EMISMATCH,
                                "%s: %zu unexpected bytes after token %d: the file has more "
                                "tokens than the model's vocabulary (%d) or is not a tokenizer",
                                name, size - pos, vocab_size - 1, vocab_size);
            goto cleanup;
        }
        t = tok_alloc(vocab_size, arena);
        if (!t) return t2_err_set(T2_ENOMEM, "%s: out of memory for %d tokens", name, vocab_size);
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
    }
    if ((rc = tok_finish(t, 0)) < 0) goto cleanup;
    *out = t;
    return 0;

cleanup:
    t2_tok_destroy(&t);
    return rc;
}

int t2_tok_load_llama2c(t2_tokenizer **out, const char *path, int vocab_size) {
    FILE *f = NULL;
    void *buf = NULL;
    struct stat st;
    int rc;

    if (!out) return t2_err_set(T2_EINVAL, "%s: no output tokenizer", path ? path : "?");
    *out = NULL;
    if (!path) return t2_err_set(T2_EINVAL, "tokenizer: no path");
    f = fopen(path, "rb");
    if (!f) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0) {
        rc = t2_err_set(T2_EIO, "%s: cannot stat: %s", path, strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = t2_err_set(T2_EIO, "%s: not a regular file", path);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > TOK_MAX_FILE) {
        rc = t2_err_set(T2_EFORMAT, "%s: %lld bytes is too large for a tokenizer file", path,
                        (long long)st.st_size);
        goto cleanup;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        rc = t2_err_set(T2_ENOMEM, "%s: out of memory reading %zu bytes", path, size);
        goto cleanup;
    }
    if (size && fread(buf, 1, size, f) != size) {
        rc = t2_err_set(T2_EIO, "%s: read error: %s", path,
                        ferror(f) ? strerror(errno) : "file shrank while reading");
        goto cleanup;
    }
    rc = t2_tok_load_llama2c_mem(out, buf, size, vocab_size, path);

cleanup:
    free(buf);
    if (f) fclose(f);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* GGUF                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static const char SP_SPACE[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's visible space */

/* Optional u32 id key: default if absent, else must be < n. */
static int gguf_token_id(const t2_gguf *g, const char *key, int def, int n, int *out) {
    uint32_t v;
    if (t2_gguf_find_key(g, key) < 0) {
        *out = def;
        return 0;
    }
    int rc = t2_gguf_get_u32(g, key, &v);
    if (rc < 0) return rc;
    if (v >= (uint32_t)n)
        return t2_err_set(T2_EFORMAT, "%s: %s = %u is out of range (vocabulary of %d tokens)",
                          t2_gguf_path(g), key, v, n);
    *out = (int)v;
    return 0;
}

/* Optional numeric array of exactly n elements. *present = 0 if the key is absent. */
static int gguf_opt_array(const t2_gguf *g, const char *key, uint64_t n, int *present) {
    t2_gguf_vtype elem;
    uint64_t count;
    *present = 0;
    if (t2_gguf_find_key(g, key) < 0) return 0;
    int rc = t2_gguf_get_arr(g, key, &elem, &count);
    if (rc < 0) return rc;
    if (elem == T2_GGUF_STRING || elem == T2_GGUF_ARRAY)
        return t2_err_set(T2_EFORMAT, "%s: %s is an array of %s, expected numbers",
                          t2_gguf_path(g), key, elem == T2_GGUF_STRING ? "strings" : "arrays");
    if (count != n)
        return t2_err_set(T2_EFORMAT, "%s: %s has %llu entries but there are %llu tokens",
                          t2_gguf_path(g), key, (unsigned long long)count,
                          (unsigned long long)n);
    *present = 1;
    return 0;
}

int t2_tok_load_gguf(t2_tokenizer **out, const t2_gguf *g) {
    static const char K_MODEL[] = "tokenizer.ggml.model";
    static const char K_TOKENS[] = "tokenizer.ggml.tokens";
    static const char K_SCORES[] = "tokenizer.ggml.scores";
    static const char K_TYPES[] = "tokenizer.ggml.token_type";
    t2_tokenizer *t = NULL;
    const char *path, *s;
    size_t slen;
    t2_gguf_vtype elem;
    uint64_t n;
    int rc, have_scores, have_types;

    if (!out) return t2_err_set(T2_EINVAL, "tokenizer: no output tokenizer");
    *out = NULL;
    if (!g) return t2_err_set(T2_EINVAL, "tokenizer: no GGUF file");
    path = t2_gguf_path(g);
    if (!path) path = "<gguf>";

    if (t2_gguf_find_key(g, K_MODEL) < 0)
        return t2_err_set(T2_ENOTFOUND, "%s: no tokenizer (%s is missing)", path, K_MODEL);
    if ((rc = t2_gguf_get_str(g, K_MODEL, &s, &slen)) < 0) return rc;
    if (slen == 4 && memcmp(s, "gpt2", 4) == 0) {
        t2_bpe *b;
        if ((rc = t2_bpe_load_gguf(&b, g)) < 0) return rc;
        return t2_tok_from_bpe(out, b);
    }
    if (slen != 5 || memcmp(s, "llama", 5) != 0)
        return t2_err_set(T2_EUNSUPPORTED,
                          "%s: tokenizer model '%.*s' is not supported (only 'llama', 'gpt2')",
                          path, (int)(slen > 64 ? 64 : slen), s);

    if (t2_gguf_find_key(g, K_TOKENS) < 0)
        return t2_err_set(T2_ENOTFOUND, "%s: %s is missing", path, K_TOKENS);
    if ((rc = t2_gguf_get_arr(g, K_TOKENS, &elem, &n)) < 0) return rc;
    if (elem != T2_GGUF_STRING)
        return t2_err_set(T2_EFORMAT, "%s: %s is not an array of strings", path, K_TOKENS);
    if (n < 1 || n > TOK_MAX_VOCAB)
        return t2_err_set(T2_EFORMAT, "%s: %s has %llu tokens, not in [1, %d]", path, K_TOKENS,
                          (unsigned long long)n, TOK_MAX_VOCAB);
    if ((rc = gguf_opt_array(g, K_SCORES, n, &have_scores)) < 0) return rc;
    if ((rc = gguf_opt_array(g, K_TYPES, n, &have_types)) < 0) return rc;

    /* Pass 1: size the arena (replacing U+2581 only shrinks pieces). */
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = t2_gguf_arr_str(g, K_TOKENS, i, &s, &slen)) < 0) return rc;
        if (slen > TOK_MAX_PIECE)
            return t2_err_set(T2_EFORMAT, "%s: token %llu is %zu bytes long (at most %d)", path,
                              (unsigned long long)i, slen, TOK_MAX_PIECE);
        total += slen;
    }
    t = tok_alloc((int)n, total);
    if (!t) return t2_err_set(T2_ENOMEM, "%s: out of memory for %llu tokens", path,
                              (unsigned long long)n);

    /* Pass 2: copy pieces with U+2581 turned into ' '. */
    size_t arena = 0;
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = t2_gguf_arr_str(g, K_TOKENS, i, &s, &slen)) < 0) goto cleanup;
        size_t start = arena;
        for (size_t k = 0; k < slen;) {
            if (slen - k >= 3 && memcmp(s + k, SP_SPACE, 3) == 0) {
                t->text[arena++] = ' ';
                k += 3;
            } else {
                t->text[arena++] = s[k++];
            }
        }
        t->text[arena++] = 0;
        t->off[i] = start;
        t->len[i] = (uint32_t)(arena - 1 - start);
    }

    if (have_scores) {
        if ((rc = t2_gguf_arr_copy_f32(g, K_SCORES, t->score, n)) < 0) goto cleanup;
        for (uint64_t i = 0; i < n; i++) {
            if (!isfinite(t->score[i])) {
                rc = t2_err_set(T2_EFORMAT, "%s: %s[%llu] is not finite (%g)", path, K_SCORES,
                                (unsigned long long)i, (double)t->score[i]);
                goto cleanup;
            }
        }
    }
    if (have_types && (rc = t2_gguf_arr_copy_i32(g, K_TYPES, t->type, n)) < 0) goto cleanup;

    if ((rc = gguf_token_id(g, "tokenizer.ggml.bos_token_id", 1, (int)n, &t->bos)) < 0 ||
        (rc = gguf_token_id(g, "tokenizer.ggml.eos_token_id", 2, (int)n, &t->eos)) < 0 ||
        (rc = gguf_token_id(g, "tokenizer.ggml.unknown_token_id", 0, (int)n, &t->unk)) < 0)
        goto cleanup;
    if (t->bos >= (int)n || t->eos >= (int)n) {
        rc = t2_err_set(T2_EFORMAT,
                        "%s: vocabulary of %llu tokens has no room for the default BOS (1) "
                        "and EOS (2) ids",
                        path, (unsigned long long)n);
        goto cleanup;
    }
    if ((rc = tok_finish(t, have_types)) < 0) goto cleanup;
    *out = t;
    return 0;

cleanup:
    t2_tok_destroy(&t);
    return rc;
}

int t2_tok_write_gguf(const t2_tokenizer *t, t2_gguf_writer *w) {
    const char **strs = NULL;
    size_t *lens = NULL;
    char *buf = NULL;
    int rc;

    if (!t || !w) return t2_err_set(T2_EINVAL, "tokenizer: nothing to write");
    if (t->bpe) return t2_bpe_write_gguf(t->bpe, w);
    size_t n = (size_t)t->n_vocab, total = 0;
    for (size_t i = 0; i < n; i++) total += 3 * (size_t)t->len[i]; /* ' ' -> 3 bytes */
    strs = malloc(n * sizeof *strs);
    lens = malloc(n * sizeof *lens);
    buf = malloc(total + 1);
    if (!strs || !lens || !buf) {
        rc = t2_err_set(T2_ENOMEM, "tokenizer: out of memory writing %zu tokens", n);
        goto cleanup;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = t->text + t->off[i];
        strs[i] = buf + pos;
        for (uint32_t k = 0; k < t->len[i]; k++) {
            if (p[k] == ' ') {
                memcpy(buf + pos, SP_SPACE, 3);
                pos += 3;
            } else {
                buf[pos++] = p[k];
            }
        }
        lens[i] = (size_t)(buf + pos - strs[i]);
    }
    if ((rc = t2_gguf_set_str(w, "tokenizer.ggml.model", "llama")) < 0 ||
        (rc = t2_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, n)) < 0 ||
        (rc = t2_gguf_set_arr_f32(w, "tokenizer.ggml.scores", t->score, n)) < 0 ||
        (rc = t2_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", t->type, n)) < 0 ||
        (rc = t2_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos)) < 0 ||
        (rc = t2_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos)) < 0 ||
        (rc = t2_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk)) < 0)
        goto cleanup;
    rc = 0;

cleanup:
    free(strs);
    free(lens);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Accessors and decode                                                                     */
/* ---------------------------------------------------------------------------------------- */

int t2_tok_vocab_size(const t2_tokenizer *t) { return t ? t->n_vocab : 0; }

size_t t2_tok_max_piece_bytes(const t2_tokenizer *t) {
    size_t most = 1;
    for (int i = 0; t && i < t->n_vocab; i++) {
        size_t n = 0;
        t2_tok_piece(t, i, &n);
        if (n > most) most = n;
    }
    return most;
}
int t2_tok_bos(const t2_tokenizer *t) { return t ? t->bos : -1; }
int t2_tok_eos(const t2_tokenizer *t) { return t ? t->eos : -1; }
int t2_tok_unk(const t2_tokenizer *t) { return t ? t->unk : -1; }

int t2_tok_type(const t2_tokenizer *t, int token) {
    if (!t || token < 0 || token >= t->n_vocab) return 0;
    if (t->bpe) return t2_bpe_type(t->bpe, token);
    return t->type[token];
}

const char *t2_tok_piece(const t2_tokenizer *t, int token, size_t *len) {
    if (!t || token < 0 || token >= t->n_vocab) {
        if (len) *len = 0;
        return "";
    }
    if (t->bpe) return t2_bpe_piece(t->bpe, token, len);
    if (len) *len = t->len[token];
    return t->text + t->off[token];
}

float t2_tok_score(const t2_tokenizer *t, int token) {
    if (!t || token < 0 || token >= t->n_vocab || t->bpe) return 0.0f;
    return t->score[token];
}

const char *t2_tok_decode(const t2_tokenizer *t, int prev, int token, size_t *len) {
    if (!t || token < 0 || token >= t->n_vocab) {
        if (len) *len = 0;
        return "";
    }
    if (t->bpe) return t2_bpe_piece(t->bpe, token, len);
    const char *p = t->text + t->off[token];
    size_t n = t->len[token];
    if (prev == t->bos && n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    if (t->byte_val[token] >= 0) {
        p = t->byte_str + 2 * t->byte_val[token];
        n = 1;
    }
    if (len) *len = n;
    return p;
}

const char *t2_tok_piece_text(const t2_tokenizer *t, int prev, int token, size_t *len) {
    size_t n;
    const char *p = t2_tok_decode(t, prev, token, &n);
    if (n == 1) {
        const unsigned char c = (unsigned char)p[0];
        const int space = c == ' ' || (c >= '\t' && c <= '\r');
        if ((c < 0x20 || c == 0x7F) && !space) n = 0;
    }
    if (len) *len = n;
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Encode                                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    int start, len; /* bytes of the working string */
    int id;
    int prev, next; /* neighbouring live symbols, -1 at the ends */
    int mergeable;  /* 0 for byte-fallback symbols and dead (merged-away) symbols */
} sym_t;

typedef struct {
    float score;
    int left, right; /* symbol indices; left < right */
    int len;         /* their combined length when queued (staleness check) */
    int id;
} pair_t;

/* Max-heap order: higher score first, then the leftmost pair. */
static int pair_before(const pair_t *a, const pair_t *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

T2_HEAP_DEFINE(heap, pair_t, pair_before)

/* Queue the merge of symbols l and r if their concatenation is a mergeable piece. */
static void try_pair(const t2_tokenizer *t, const char *buf, const sym_t *s, int l, int r,
                     pair_t *h, int *nh) {
    if (l < 0 || r < 0 || !s[l].mergeable || !s[r].mergeable) return;
    int len = s[l].len + s[r].len;
    int id = lookup(t, buf + s[l].start, (size_t)len);
    if (id < 0 || !(t->score[id] > TOK_MIN_MERGE_SCORE)) return;
    pair_t p = {t->score[id], l, r, len, id};
    heap_push(h, nh, p);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if the byte at s does not
 * start one (stray continuation, overlong form, surrogate, > U+10FFFF, truncated). */
static int utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return n >= 3 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return n >= 4 && s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 &&
                       (s[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

static int sp_encode(const t2_tokenizer *t, const char *text, size_t tlen, int bos, int eos,
                     int *tokens, int max_tokens, int *n_tokens) {
    char *buf = NULL;
    sym_t *s = NULL;
    pair_t *heap = NULL;
    int rc = 0, n_sym = 0, n_heap = 0;

    if (tlen > (size_t)INT_MAX / 4)
        return t2_err_set(T2_ERANGE, "tokenizer: text of %zu bytes is too long to encode", tlen);

    /* The working string: the dummy prefix " " then the text (nothing for empty text). */
    size_t n = tlen ? tlen + 1 : 0;
    if (n) {
        buf = malloc(n);
        s = malloc(n * sizeof *s);
        heap = malloc(3 * n * sizeof *heap); /* n - 1 initial pairs + 2 per merge */
        if (!buf || !s || !heap) {
            rc = t2_err_set(T2_ENOMEM, "tokenizer: out of memory encoding %zu bytes", tlen);
            goto cleanup;
        }
        buf[0] = ' ';
        memcpy(buf + 1, text, tlen);
    }

    /* Code points to symbols; byte fallback for those not in the vocabulary. */
    for (size_t i = 0; i < n;) {
        int k = utf8_len((const unsigned char *)buf + i, n - i);
        int id = k ? lookup(t, buf + i, (size_t)k) : -1;
        if (id >= 0) {
            s[n_sym] = (sym_t){(int)i, k, id, n_sym - 1, n_sym + 1, 1};
            n_sym++;
            i += (size_t)k;
            continue;
        }
        if (k == 0) k = 1;
        for (int b = 0; b < k; b++, i++) {
            int bid = t->byte_id[(unsigned char)buf[i]];
            s[n_sym] = (sym_t){(int)i, 1, bid >= 0 ? bid : t->unk, n_sym - 1, n_sym + 1, 0};
            n_sym++;
        }
    }
    if (n_sym) s[n_sym - 1].next = -1;

    for (int i = 0; i + 1 < n_sym; i++) try_pair(t, buf, s, i, i + 1, heap, &n_heap);
    while (n_heap > 0) {
        pair_t p = heap_pop(heap, &n_heap);
        sym_t *l = &s[p.left], *r = &s[p.right];
        if (!l->mergeable || !r->mergeable || l->next != p.right || l->len + r->len != p.len)
            continue; /* stale: one side has changed since it was queued */
        l->len = p.len;
        l->id = p.id;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = p.left;
        r->mergeable = 0;
        r->len = 0;
        try_pair(t, buf, s, l->prev, p.left, heap, &n_heap);
        try_pair(t, buf, s, p.left, l->next, heap, &n_heap);
    }

    int count = (bos ? 1 : 0) + (eos ? 1 : 0);
    for (int i = n_sym ? 0 : -1; i >= 0; i = s[i].next) count++;
    if (count > max_tokens) {
        rc = t2_err_set(T2_ERANGE, "tokenizer: text needs %d tokens, room for only %d", count,
                        max_tokens < 0 ? 0 : max_tokens);
        goto cleanup;
    }
    int k = 0;
    if (bos) tokens[k++] = t->bos;
    for (int i = n_sym ? 0 : -1; i >= 0; i = s[i].next) tokens[k++] = s[i].id;
    if (eos) tokens[k++] = t->eos;
    *n_tokens = k;

cleanup:
    free(buf);
    free(s);
    free(heap);
    return rc;
}

int t2_tok_encode_ex(const t2_tokenizer *t, const char *text, size_t len, unsigned flags,
                     int *tokens, int max_tokens, int *n_tokens) {
    if (n_tokens) *n_tokens = 0;
    if (!t || (!text && len) || !n_tokens || (max_tokens > 0 && !tokens))
        return t2_err_set(T2_EINVAL, "tokenizer: encode: invalid argument");
    if (!text) text = "";
    if (t->bpe) return t2_bpe_encode(t->bpe, text, len, flags, tokens, max_tokens, n_tokens);
    return sp_encode(t, text, len, (flags & T2_TOK_ADD_BOS) != 0, (flags & T2_TOK_ADD_EOS) != 0,
                     tokens, max_tokens, n_tokens);
}

int t2_tok_encode(const t2_tokenizer *t, const char *text, int bos, int eos, int *tokens,
                  int max_tokens, int *n_tokens) {
    if (n_tokens) *n_tokens = 0;
    if (!text) return t2_err_set(T2_EINVAL, "tokenizer: encode: invalid argument");
    unsigned flags = (bos ? T2_TOK_ADD_BOS : 0u) | (eos ? T2_TOK_ADD_EOS : 0u);
    return t2_tok_encode_ex(t, text, strlen(text), flags, tokens, max_tokens, n_tokens);
}

/* ---------------------------------------------------------------------------------------- */
/* The byte-level BPE kind                                                                  */
/* ---------------------------------------------------------------------------------------- */

int t2_tok_from_bpe(t2_tokenizer **out, t2_bpe *b) {
    t2_tokenizer *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t) {
        t2_bpe_destroy(&b);
        return t2_err_set(T2_ENOMEM, "tokenizer: out of memory");
    }
    t->bpe = b;
    t2_bpe_ids(b, &t->n_vocab, &t->bos, &t->eos, &t->unk);
    *out = t;
    return 0;
}

int t2_tok_is_byte_level(const t2_tokenizer *t) { return t && t->bpe; }

int t2_tok_eot(const t2_tokenizer *t) {
    if (!t) return -1;
    return t->bpe ? t2_bpe_eot(t->bpe) : t->eos;
}

int t2_tok_add_bos(const t2_tokenizer *t) { return t && (!t->bpe || t2_bpe_add_bos(t->bpe)); }
