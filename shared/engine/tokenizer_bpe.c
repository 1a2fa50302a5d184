/* tokenizer_bpe.c - byte-level BPE (GPT-2 style: Llama 3, Qwen2/2.5/3), the second kind of
 * t2_tokenizer (see tokenizer.h for the contract, tokenizer_bpe.h for the hooks).
 *
 * Vocabulary: pieces are kept as the bytes they stand for. In tokenizer.json and GGUF, normal
 * pieces are spelled with GPT-2's byte-to-unicode map (every byte is one printable code
 * point: the printable Latin-1 bytes stand for themselves, the other 68 for U+0100..U+0143 in
 * byte order); special and user-defined pieces are spelled literally.
 *
 * Encoding:
 *   1. added tokens are cut out of the text first (leftmost, longest first): user-defined
 *      ones always (as Hugging Face and llama.cpp do), control ones only with
 *      T2_TOK_PARSE_SPECIAL;
 *   2. each stretch between them is NFC-normalized if the vocabulary says so (Qwen), then
 *      split by the pre-tokenizer regex of its `pre` preset (matched by hand below, with the
 *      leftmost-first semantics of the regex engines Hugging Face uses);
 *   3. each piece of the split is one word: with ignore_merges (Llama 3) a word that is a
 *      whole vocabulary piece is that piece; otherwise its bytes are merged pairwise, always
 *      the adjacent pair of lowest merge rank (leftmost on ties), until no pair merges.
 * Invalid UTF-8 is not an error: each undecodable byte is a character of its own that is not a
 * letter, digit or space (where Hugging Face, which only takes valid text, would see U+FFFD),
 * and encodes to its byte's piece, so decoding gives the bytes back.
 */
#include "engine/tokenizer_bpe.h"

#include "base/t2_err.h"
#include "engine/heap.h"
#include "engine/unicode.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BPE_MAX_VOCAB (1 << 24)
#define BPE_MAX_PIECE 65536
#define BPE_MAX_MERGES (1 << 24)

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

/* A pre-tokenizer preset, named as in GGUF's tokenizer.ggml.pre. */
typedef struct {
    const char *name;
    const char *regex;  /* the Split pattern of tokenizer.json */
    int max_digits;     /* \p{N}{1,max_digits} */
    int ignore_merges;  /* implied for GGUF files */
    int nfc;            /* implied for GGUF files */
} bpe_pre;

static const bpe_pre PRESETS[] = {
    {"llama-bpe",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     3, 1, 0},
    {"qwen2",
     "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     1, 0, 1},
};

struct t2_bpe {
    int n;                     /* vocabulary size */
    char *arena;               /* piece bytes, each NUL-terminated */
    size_t *off;               /* piece i at arena + off[i] */
    uint32_t *len;
    int32_t *type;             /* TT_* */
    int32_t *table;            /* normal pieces by bytes: open addressing, -1 empty */
    uint32_t mask;
    uint32_t max_len;
    int byte_id[256];          /* the piece of each single byte */
    uint64_t *mkey;            /* merges: (left id << 32 | right id) + 1, 0 empty */
    int32_t *mrank, *mres;     /* rank and resulting id */
    uint32_t mmask;
    int32_t *merge_l, *merge_r; /* in rank order, for writing GGUF */
    int n_merges;
    int32_t *special;          /* control and user-defined ids, longest piece first */
    int n_special;
    uint8_t special_first[32]; /* bitset of the first bytes of special pieces */
    const bpe_pre *pre;
    int nfc, ignore_merges;
    int bos, eos, eot, unk, pad, add_bos, add_eos;
};

/* ---------------------------------------------------------------------------------------- */
/* GPT-2 byte <-> unicode                                                                   */
/* ---------------------------------------------------------------------------------------- */

static uint32_t byte_to_cp(unsigned b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    if (b <= 32) return 256 + b;
    if (b <= 160) return 256 + 33 + (b - 127);
    return 256 + 67; /* 173 */
}

/* The byte a code point of the map stands for, or -1. */
static int cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_to_cp(cp) == cp ? (int)cp : -1;
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 67) return (int)(cp - 256 - 33 + 127);
    return cp == 256 + 67 ? 173 : -1;
}

/* Map-spelled s[0..n) to bytes in out (room for n); returns the length, or -1. */
static long unmap_piece(const char *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)t2_uni_decode((const unsigned char *)s + i, n - i, &cp);
        int b = cp_to_byte(cp);
        if (b < 0) return -1;
        out[k++] = (char)b;
    }
    return (long)k;
}

/* Bytes to their map spelling in out (room for 2 * n); returns the length. */
static size_t map_piece(const char *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += (size_t)t2_uni_encode(byte_to_cp((unsigned char)s[i]), (unsigned char *)out + k);
    return k;
}

/* ---------------------------------------------------------------------------------------- */
/* Construction                                                                             */
/* ---------------------------------------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static int lookup(const t2_bpe *b, const char *s, size_t n) {
    if (n == 0 || n > b->max_len) return -1;
    uint32_t i = hash_bytes(s, n) & b->mask;
    for (;;) {
        int32_t id = b->table[i];
        if (id < 0) return -1;
        if (b->len[id] == n && memcmp(b->arena + b->off[id], s, n) == 0) return id;
        i = (i + 1) & b->mask;
    }
}

static uint32_t merge_slot(const t2_bpe *b, uint64_t key) {
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & b->mmask;
}

/* Rank of merging l and r (and the result in *res), or -1. */
static int merge_rank(const t2_bpe *b, int l, int r, int *res) {
    uint64_t key = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1;
    for (uint32_t i = merge_slot(b, key);; i = (i + 1) & b->mmask) {
        if (b->mkey[i] == 0) return -1;
        if (b->mkey[i] == key) {
            *res = b->mres[i];
            return b->mrank[i];
        }
    }
}

static t2_bpe *bpe_alloc(int n, size_t text_bytes, int n_merges) {
    t2_bpe *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->n = n;
    b->bos = b->eos = b->eot = b->unk = b->pad = -1;
    b->arena = malloc(text_bytes + (size_t)n);
    b->off = malloc((size_t)n * sizeof *b->off);
    b->len = calloc((size_t)n, sizeof *b->len);
    b->type = calloc((size_t)n, sizeof *b->type);
    size_t cap = 16;
    while (cap < 2 * (size_t)(n_merges + 1)) cap *= 2;
    b->mmask = (uint32_t)(cap - 1);
    b->mkey = calloc(cap, sizeof *b->mkey);
    b->mrank = malloc(cap * sizeof *b->mrank);
    b->mres = malloc(cap * sizeof *b->mres);
    b->merge_l = malloc((size_t)(n_merges + 1) * sizeof *b->merge_l);
    b->merge_r = malloc((size_t)(n_merges + 1) * sizeof *b->merge_r);
    if (!b->arena || !b->off || !b->len || !b->type || !b->mkey || !b->mrank || !b->mres ||
        !b->merge_l || !b->merge_r) {
        t2_bpe_destroy(&b);
        return NULL;
    }
    return b;
}

void t2_bpe_destroy(t2_bpe **bp) {
    if (!bp || !*bp) return;
    t2_bpe *b = *bp;
    free(b->arena);
    free(b->off);
    free(b->len);
    free(b->type);
    free(b->table);
    free(b->mkey);
    free(b->mrank);
    free(b->mres);
    free(b->merge_l);
    free(b->merge_r);
    free(b->special);
    free(b);
    *bp = NULL;
}

/* Set piece `id` from its file spelling (map-spelled for normal pieces, literal otherwise),
 * appending its bytes to the arena at *pos. */
static int bpe_set_piece(t2_bpe *b, size_t *pos, int id, const char *s, size_t n, int type,
                         const char *src) {
    if (id < 0 || id >= b->n)
        return t2_err_set(T2_EFORMAT, "%s: token id %d is out of range (vocabulary of %d)", src,
                          id, b->n);
    if (b->type[id])
        return t2_err_set(T2_EFORMAT, "%s: token id %d is given twice", src, id);
    if (n == 0 || n > BPE_MAX_PIECE)
        return t2_err_set(T2_EFORMAT, "%s: token %d is %zu bytes long (must be 1..%d)", src, id,
                          n, BPE_MAX_PIECE);
    char *dst = b->arena + *pos;
    if (type == TT_NORMAL) {
        long k = unmap_piece(s, n, dst);
        if (k < 0)
            return t2_err_set(T2_EFORMAT,
                              "%s: token %d '%.*s' is not spelled with GPT-2's byte-level map",
                              src, id, (int)(n > 64 ? 64 : n), s);
        n = (size_t)k;
    } else {
        memcpy(dst, s, n);
    }
    dst[n] = 0;
    b->off[id] = *pos;
    b->len[id] = (uint32_t)n;
    b->type[id] = type;
    *pos += n + 1;
    return 0;
}

typedef struct {
    uint32_t len;
    int32_t id;
} len_id;

/* Longest first, then lowest id (so that the first match at a position is the longest). */
static int cmp_len_id(const void *pa, const void *pb) {
    const len_id *a = pa, *b = pb;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* After all pieces are set: check there are no holes, build the lookup table, the byte
 * pieces and the special list. */
static int bpe_finish(t2_bpe *b, const char *src) {
    size_t cap = 16;
    while (cap < 2 * (size_t)b->n) cap *= 2;
    b->table = malloc(cap * sizeof *b->table);
    b->special = malloc((size_t)b->n * sizeof *b->special);
    if (!b->table || !b->special) return t2_err_set(T2_ENOMEM, "%s: out of memory", src);
    memset(b->table, 0xff, cap * sizeof *b->table);
    b->mask = (uint32_t)(cap - 1);
    for (int i = 0; i < b->n; i++) {
        if (!b->type[i]) return t2_err_set(T2_EFORMAT, "%s: no token has id %d", src, i);
        const char *p = b->arena + b->off[i];
        if (b->type[i] == TT_CONTROL || b->type[i] == TT_USER_DEFINED) {
            b->special[b->n_special++] = i;
            b->special_first[(unsigned char)p[0] >> 3] |= (uint8_t)(1u << (p[0] & 7));
        }
        if (b->type[i] != TT_NORMAL || lookup(b, p, b->len[i]) >= 0) continue;
        uint32_t h = hash_bytes(p, b->len[i]) & b->mask;
        while (b->table[h] >= 0) h = (h + 1) & b->mask;
        b->table[h] = i; /* the lowest id wins for duplicate pieces */
        if (b->len[i] > b->max_len) b->max_len = b->len[i];
    }
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        if ((b->byte_id[c] = lookup(b, &ch, 1)) < 0)
            return t2_err_set(T2_EFORMAT,
                              "%s: no normal token for byte 0x%02X: not a byte-level BPE "
                              "vocabulary",
                              src, c);
    }
    len_id *order = malloc(((size_t)b->n_special + 1) * sizeof *order);
    if (!order) return t2_err_set(T2_ENOMEM, "%s: out of memory", src);
    for (int k = 0; k < b->n_special; k++)
        order[k] = (len_id){b->len[b->special[k]], b->special[k]};
    qsort(order, (size_t)b->n_special, sizeof *order, cmp_len_id);
    for (int k = 0; k < b->n_special; k++) b->special[k] = order[k].id;
    free(order);
    return 0;
}

/* Merge number b->n_merges (its rank): pieces a and c, map-spelled. scratch has room for
 * al + cl bytes. */
static int bpe_add_merge(t2_bpe *b, const char *a, size_t al, const char *c, size_t cl,
                         char *scratch, const char *src) {
    int rank = b->n_merges;
    long ka = unmap_piece(a, al, scratch);
    long kc = ka < 0 ? -1 : unmap_piece(c, cl, scratch + ka);
    int l = ka < 0 ? -1 : lookup(b, scratch, (size_t)ka);
    int r = kc < 0 ? -1 : lookup(b, scratch + ka, (size_t)kc);
    int res = l < 0 || r < 0 ? -1 : lookup(b, scratch, (size_t)(ka + kc));
    if (res < 0)
        return t2_err_set(T2_EFORMAT,
                          "%s: merge %d '%.*s %.*s': %s is not a token of the vocabulary", src,
                          rank, (int)(al > 64 ? 64 : al), a, (int)(cl > 64 ? 64 : cl), c,
                          l < 0 ? "its left side" : r < 0 ? "its right side" : "the merged piece");
    uint64_t key = ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1;
    uint32_t i = merge_slot(b, key);
    while (b->mkey[i] != 0 && b->mkey[i] != key) i = (i + 1) & b->mmask;
    if (b->mkey[i] == 0) { /* the first (lowest) rank of a repeated merge wins */
        b->mkey[i] = key;
        b->mrank[i] = rank;
        b->mres[i] = res;
    }
    b->merge_l[rank] = l;
    b->merge_r[rank] = r;
    b->n_merges++;
    return 0;
}

/* The special piece with this exact text (any type but normal), or -1. */
static int find_special(const t2_bpe *b, const char *s, size_t n) {
    for (int k = 0; k < b->n_special; k++) {
        int id = b->special[k];
        if (b->len[id] == n && memcmp(b->arena + b->off[id], s, n) == 0) return id;
    }
    return -1;
}

/* eot when not given: the usual end-of-turn pieces; eos likewise. */
static void guess_ids(t2_bpe *b) {
    static const char *eot[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"};
    static const char *eos[] = {"<|end_of_text|>", "<|endoftext|>", "</s>"};
    for (size_t i = 0; b->eot < 0 && i < sizeof eot / sizeof *eot; i++)
        b->eot = find_special(b, eot[i], strlen(eot[i]));
    for (size_t i = 0; b->eos < 0 && i < sizeof eos / sizeof *eos; i++)
        b->eos = find_special(b, eos[i], strlen(eos[i]));
}

/* ---------------------------------------------------------------------------------------- */
/* Encode                                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    int rank, left, lid, right, rid;
} merge_t;

typedef struct {
    int *ids; /* output */
    size_t n_ids, cap_ids;
    size_t cap;   /* room of the arrays below (characters or bytes of one stretch) */
    uint32_t *cp; /* per character: code point, flags, byte offset */
    uint8_t *fl;
    size_t *pos;
    int *sid, *sprev, *snext; /* per byte of a word: symbols */
    merge_t *heap;
} enc_t;

enum { F_NL = 8 }; /* beside T2_UNI_*: \r or \n */

static int push_id(enc_t *e, int id) {
    if (e->n_ids == e->cap_ids) {
        size_t cap = e->cap_ids ? 2 * e->cap_ids : 256;
        int *p = realloc(e->ids, cap * sizeof *p);
        if (!p) return t2_err_set(T2_ENOMEM, "tokenizer: out of memory for %zu tokens", cap);
        e->ids = p;
        e->cap_ids = cap;
    }
    e->ids[e->n_ids++] = id;
    return 0;
}

static int enc_reserve(enc_t *e, size_t n) {
    if (n <= e->cap) return 0;
    free(e->cp), free(e->fl), free(e->pos), free(e->sid), free(e->sprev), free(e->snext);
    free(e->heap);
    e->cp = malloc(n * sizeof *e->cp);
    e->fl = malloc(n);
    e->pos = malloc((n + 1) * sizeof *e->pos);
    e->sid = malloc(n * sizeof *e->sid);
    e->sprev = malloc(n * sizeof *e->sprev);
    e->snext = malloc(n * sizeof *e->snext);
    e->heap = malloc(3 * n * sizeof *e->heap);
    e->cap = n;
    if (!e->cp || !e->fl || !e->pos || !e->sid || !e->sprev || !e->snext || !e->heap) {
        e->cap = 0;
        return t2_err_set(T2_ENOMEM, "tokenizer: out of memory encoding %zu bytes", n);
    }
    return 0;
}

static void enc_free(enc_t *e) {
    free(e->ids), free(e->cp), free(e->fl), free(e->pos), free(e->sid), free(e->sprev);
    free(e->snext), free(e->heap);
}

static int merge_before(const merge_t *a, const merge_t *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

T2_HEAP_DEFINE(heap, merge_t, merge_before)

static void queue_pair(const t2_bpe *b, enc_t *e, int *nh, int l, int r) {
    int res;
    if (l < 0 || r < 0) return;
    int rank = merge_rank(b, e->sid[l], e->sid[r], &res);
    if (rank >= 0) heap_push(e->heap, nh, (merge_t){rank, l, e->sid[l], r, e->sid[r]});
}

/* One word (a piece of the pre-tokenizer's split) to tokens. */
static int encode_word(const t2_bpe *b, enc_t *e, const unsigned char *w, int n) {
    if (n == 1) return push_id(e, b->byte_id[w[0]]);
    if (b->ignore_merges) {
        int id = lookup(b, (const char *)w, (size_t)n);
        if (id >= 0) return push_id(e, id);
    }
    int nh = 0, rc;
    for (int i = 0; i < n; i++) {
        e->sid[i] = b->byte_id[w[i]];
        e->sprev[i] = i - 1;
        e->snext[i] = i + 1 < n ? i + 1 : -1;
    }
    for (int i = 0; i + 1 < n; i++) queue_pair(b, e, &nh, i, i + 1);
    while (nh > 0) {
        merge_t m = heap_pop(e->heap, &nh);
        int res, l = m.left, r = m.right;
        if (e->sid[l] != m.lid || e->snext[l] != r || e->sid[r] != m.rid) continue; /* stale */
        merge_rank(b, m.lid, m.rid, &res);
        e->sid[l] = res;
        e->sid[r] = -1;
        e->snext[l] = e->snext[r];
        if (e->snext[r] >= 0) e->sprev[e->snext[r]] = l;
        queue_pair(b, e, &nh, e->sprev[l], l);
        queue_pair(b, e, &nh, l, e->snext[l]);
    }
    for (int i = 0; i >= 0; i = e->snext[i])
        if ((rc = push_id(e, e->sid[i])) < 0) return rc;
    return 0;
}

static uint32_t fold(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    return c == 0x17F ? 's' : c; /* U+017F LATIN SMALL LETTER LONG S case-folds to s */
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: end, or 0. */
static size_t match_contraction(const uint32_t *cp, size_t i, size_t m) {
    if (cp[i] != '\'' || i + 1 >= m) return 0;
    uint32_t a = fold(cp[i + 1]), c = i + 2 < m ? fold(cp[i + 2]) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
    if (((a == 'r' || a == 'v') && c == 'e') || (a == 'l' && c == 'l')) return i + 3;
    return 0;
}

/* The end of the pre-tokenizer regex's match at character i (of m); see PRESETS. */
static size_t pre_match(const bpe_pre *pre, const uint32_t *cp, const uint8_t *fl, size_t i,
                        size_t m) {
    enum { L = T2_UNI_LETTER, N = T2_UNI_NUMBER, S = T2_UNI_SPACE };
    size_t j, k;
    if ((j = match_contraction(cp, i, m))) return j;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if ((fl[i] & L) || (!(fl[i] & (N | F_NL)) && i + 1 < m && (fl[i + 1] & L))) {
        for (j = (fl[i] & L) ? i + 1 : i + 2; j < m && (fl[j] & L); j++) {}
        return j;
    }
    /* \p{N}{1,max} */
    if (fl[i] & N) {
        for (j = i + 1; j < m && j - i < (size_t)pre->max_digits && (fl[j] & N); j++) {}
        return j;
    }
    /* ' '?[^\s\p{L}\p{N}]+[\r\n]* */
    k = i;
    if (cp[k] == ' ' && k + 1 < m && !(fl[k + 1] & (L | N | S))) k++;
    if (!(fl[k] & (L | N | S))) {
        for (j = k + 1; j < m && !(fl[j] & (L | N | S)); j++) {}
        while (j < m && (fl[j] & F_NL)) j++;
        return j;
    }
    /* Whitespace from here: \s*[\r\n]+ ends after the run's last newline; \s+(?!\S) leaves the
     * run's last space for the next word unless the run ends the text; \s+ takes it all. */
    size_t end = i;
    while (end < m && (fl[end] & S)) end++;
    for (j = end; j > i; j--)
        if (fl[j - 1] & F_NL) return j;
    return end == m || end - i == 1 ? end : end - 1;
}

/* A stretch of text with no added token in it. */
static int encode_stretch(const t2_bpe *b, enc_t *e, const char *s, size_t n) {
    char *norm = NULL;
    int rc = 0;
    if (n == 0) return 0;
    if (b->nfc) {
        if ((rc = t2_uni_nfc(s, n, &norm, &n)) < 0) return rc;
        s = norm;
    }
    if ((rc = enc_reserve(e, n)) < 0) goto out;
    size_t m = 0;
    for (size_t i = 0; i < n; m++) {
        e->pos[m] = i;
        i += (size_t)t2_uni_decode((const unsigned char *)s + i, n - i, &e->cp[m]);
        e->fl[m] = (uint8_t)(t2_uni_flags(e->cp[m]) |
                             (e->cp[m] == '\r' || e->cp[m] == '\n' ? F_NL : 0));
    }
    e->pos[m] = n;
    for (size_t i = 0; i < m;) {
        size_t j = pre_match(b->pre, e->cp, e->fl, i, m);
        const unsigned char *w = (const unsigned char *)s + e->pos[i];
        if ((rc = encode_word(b, e, w, (int)(e->pos[j] - e->pos[i]))) < 0) goto out;
        i = j;
    }
out:
    free(norm);
    return rc;
}

/* The added token at the start of s, longest first, or -1. */
static int match_added(const t2_bpe *b, const char *s, size_t n, unsigned flags) {
    unsigned char c = (unsigned char)s[0];
    if (!(b->special_first[c >> 3] & (1u << (c & 7)))) return -1;
    for (int k = 0; k < b->n_special; k++) {
        int id = b->special[k];
        if (b->type[id] == TT_CONTROL && !(flags & T2_TOK_PARSE_SPECIAL)) continue;
        if (b->len[id] <= n && memcmp(b->arena + b->off[id], s, b->len[id]) == 0) return id;
    }
    return -1;
}

int t2_bpe_encode(const t2_bpe *b, const char *text, size_t len, unsigned flags, int *tokens,
                  int max_tokens, int *n_tokens) {
    enc_t e = {0};
    int rc = 0;
    if (len > (size_t)INT_MAX / 8)
        return t2_err_set(T2_ERANGE, "tokenizer: text of %zu bytes is too long to encode", len);
    if ((flags & T2_TOK_ADD_BOS) && b->bos >= 0 && (rc = push_id(&e, b->bos)) < 0) goto out;
    size_t seg = 0;
    for (size_t i = 0; i < len;) {
        int id = b->n_special ? match_added(b, text + i, len - i, flags) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        if ((rc = encode_stretch(b, &e, text + seg, i - seg)) < 0 || (rc = push_id(&e, id)) < 0)
            goto out;
        i += b->len[id];
        seg = i;
    }
    if ((rc = encode_stretch(b, &e, text + seg, len - seg)) < 0) goto out;
    if ((flags & T2_TOK_ADD_EOS) && b->eos >= 0 && (rc = push_id(&e, b->eos)) < 0) goto out;
    if (e.n_ids > (size_t)(max_tokens < 0 ? 0 : max_tokens)) {
        rc = t2_err_set(T2_ERANGE, "tokenizer: text needs %zu tokens, room for only %d", e.n_ids,
                        max_tokens < 0 ? 0 : max_tokens);
        goto out;
    }
    if (e.n_ids) memcpy(tokens, e.ids, e.n_ids * sizeof *tokens);
    *n_tokens = (int)e.n_ids;
out:
    enc_free(&e);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Accessors                                                                                */
/* ---------------------------------------------------------------------------------------- */

void t2_bpe_ids(const t2_bpe *b, int *n_vocab, int *bos, int *eos, int *unk) {
    *n_vocab = b->n;
    *bos = b->bos;
    *eos = b->eos;
    *unk = b->unk;
}

int t2_bpe_eot(const t2_bpe *b) { return b->eot >= 0 ? b->eot : b->eos; }
int t2_bpe_add_bos(const t2_bpe *b) { return b->add_bos && b->bos >= 0; }
int t2_bpe_type(const t2_bpe *b, int token) { return b->type[token]; }

const char *t2_bpe_piece(const t2_bpe *b, int token, size_t *len) {
    if (len) *len = b->len[token];
    return b->arena + b->off[token];
}

/* ---------------------------------------------------------------------------------------- */
/* GGUF                                                                                     */
/* ---------------------------------------------------------------------------------------- */

static const bpe_pre *find_preset(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof PRESETS / sizeof *PRESETS; i++)
        if (strlen(PRESETS[i].name) == n && memcmp(PRESETS[i].name, name, n) == 0)
            return &PRESETS[i];
    return NULL;
}

/* Optional id key: left alone if absent, else must be < n. */
static int gguf_opt_id(const t2_gguf *g, const char *key, int n, int *out) {
    uint32_t v;
    if (t2_gguf_find_key(g, key) < 0) return 0;
    int rc = t2_gguf_get_u32(g, key, &v);
    if (rc < 0) return rc;
    if (v >= (uint32_t)n)
        return t2_err_set(T2_EFORMAT, "%s: %s = %u is out of range (vocabulary of %d tokens)",
                          t2_gguf_path(g), key, v, n);
    *out = (int)v;
    return 0;
}

static int gguf_opt_bool(const t2_gguf *g, const char *key, int *out) {
    if (t2_gguf_find_key(g, key) < 0) return 0;
    return t2_gguf_get_bool(g, key, out);
}

/* A string-array key with count in [lo, hi]. */
static int gguf_str_array(const t2_gguf *g, const char *key, uint64_t lo, uint64_t hi,
                          uint64_t *n) {
    t2_gguf_vtype elem;
    const char *path = t2_gguf_path(g);
    if (t2_gguf_find_key(g, key) < 0)
        return t2_err_set(T2_ENOTFOUND, "%s: %s is missing", path, key);
    int rc = t2_gguf_get_arr(g, key, &elem, n);
    if (rc < 0) return rc;
    if (elem != T2_GGUF_STRING)
        return t2_err_set(T2_EFORMAT, "%s: %s is not an array of strings", path, key);
    if (*n < lo || *n > hi)
        return t2_err_set(T2_EFORMAT, "%s: %s has %llu entries, not in [%llu, %llu]", path, key,
                          (unsigned long long)*n, (unsigned long long)lo,
                          (unsigned long long)hi);
    return 0;
}

static int gguf_pieces(t2_bpe *b, const t2_gguf *g, const int32_t *types, const char *path) {
    size_t pos = 0;
    for (int i = 0; i < b->n; i++) {
        const char *s;
        size_t n;
        int rc = t2_gguf_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)i, &s, &n);
        if (rc < 0) return rc;
        int type = types ? types[i] : TT_NORMAL;
        if (type < TT_NORMAL || type > TT_UNUSED)
            return t2_err_set(T2_EFORMAT,
                              "%s: tokenizer.ggml.token_type[%d] = %d is not one T2 reads for "
                              "a gpt2 vocabulary (1..5)",
                              path, i, type);
        if ((rc = bpe_set_piece(b, &pos, i, s, n, type, path)) < 0) return rc;
    }
    return bpe_finish(b, path);
}

static int gguf_merges(t2_bpe *b, const t2_gguf *g, uint64_t n_merges, const char *path) {
    char *scratch = malloc(2 * (size_t)BPE_MAX_PIECE + 2);
    int rc = 0;
    if (!scratch) return t2_err_set(T2_ENOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < n_merges && rc == 0; i++) {
        const char *s, *sp;
        size_t n;
        if ((rc = t2_gguf_arr_str(g, "tokenizer.ggml.merges", i, &s, &n)) < 0) break;
        sp = n > 2 && n <= 2 * (size_t)BPE_MAX_PIECE ? memchr(s + 1, ' ', n - 2) : NULL;
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)))
            rc = t2_err_set(T2_EFORMAT, "%s: tokenizer.ggml.merges[%llu] '%.*s' is not 'A B'",
                            path, (unsigned long long)i, (int)(n > 64 ? 64 : n), s);
        else
            rc = bpe_add_merge(b, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp + 1 - s),
                               scratch, path);
    }
    free(scratch);
    return rc;
}

static int gguf_ids(t2_bpe *b, const t2_gguf *g) {
    int rc;
    if ((rc = gguf_opt_id(g, "tokenizer.ggml.bos_token_id", b->n, &b->bos)) < 0 ||
        (rc = gguf_opt_id(g, "tokenizer.ggml.eos_token_id", b->n, &b->eos)) < 0 ||
        (rc = gguf_opt_id(g, "tokenizer.ggml.eot_token_id", b->n, &b->eot)) < 0 ||
        (rc = gguf_opt_id(g, "tokenizer.ggml.unknown_token_id", b->n, &b->unk)) < 0 ||
        (rc = gguf_opt_id(g, "tokenizer.ggml.padding_token_id", b->n, &b->pad)) < 0)
        return rc;
    b->add_bos = b->bos >= 0;
    if ((rc = gguf_opt_bool(g, "tokenizer.ggml.add_bos_token", &b->add_bos)) < 0 ||
        (rc = gguf_opt_bool(g, "tokenizer.ggml.add_eos_token", &b->add_eos)) < 0)
        return rc;
    return 0;
}

int t2_bpe_load_gguf(t2_bpe **out, const t2_gguf *g) {
    const char *path = t2_gguf_path(g), *s;
    size_t slen;
    uint64_t n, n_merges;
    int32_t *types = NULL;
    t2_bpe *b = NULL;
    int rc;

    *out = NULL;
    if (!path) path = "<gguf>";
    if (t2_gguf_find_key(g, "tokenizer.ggml.pre") < 0) /* llama.cpp: GPT-2's own regex */
        return t2_err_set(T2_EUNSUPPORTED,
                          "%s: tokenizer model 'gpt2' is not supported without "
                          "tokenizer.ggml.pre naming a pre-tokenizer T2 implements (llama-bpe, "
                          "qwen2)",
                          path);
    if ((rc = t2_gguf_get_str(g, "tokenizer.ggml.pre", &s, &slen)) < 0) return rc;
    const bpe_pre *pre = find_preset(s, slen);
    if (!pre)
        return t2_err_set(T2_EUNSUPPORTED,
                          "%s: pre-tokenizer '%.*s' is not supported (T2 knows llama-bpe, qwen2)",
                          path, (int)(slen > 64 ? 64 : slen), s);
    if ((rc = gguf_str_array(g, "tokenizer.ggml.tokens", 256, BPE_MAX_VOCAB, &n)) < 0 ||
        (rc = gguf_str_array(g, "tokenizer.ggml.merges", 0, BPE_MAX_MERGES, &n_merges)) < 0)
        return rc;
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = t2_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &s, &slen)) < 0) return rc;
        total += slen;
    }
    if (t2_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        t2_gguf_vtype elem;
        uint64_t nt;
        if ((rc = t2_gguf_get_arr(g, "tokenizer.ggml.token_type", &elem, &nt)) < 0) return rc;
        if (nt != n || elem == T2_GGUF_STRING || elem == T2_GGUF_ARRAY)
            return t2_err_set(T2_EFORMAT, "%s: tokenizer.ggml.token_type is not %llu numbers",
                              path, (unsigned long long)n);
        if (!(types = malloc(n * sizeof *types)))
            return t2_err_set(T2_ENOMEM, "%s: out of memory", path);
        if ((rc = t2_gguf_arr_copy_i32(g, "tokenizer.ggml.token_type", types, n)) < 0) goto out;
    }
    if (!(b = bpe_alloc((int)n, total, (int)n_merges))) {
        rc = t2_err_set(T2_ENOMEM, "%s: out of memory for %llu tokens", path,
                        (unsigned long long)n);
        goto out;
    }
    b->pre = pre;
    b->nfc = pre->nfc;
    b->ignore_merges = pre->ignore_merges;
    if ((rc = gguf_pieces(b, g, types, path)) < 0 || (rc = gguf_merges(b, g, n_merges, path)) < 0 ||
        (rc = gguf_ids(b, g)) < 0)
        goto out;
    guess_ids(b);
    *out = b;
    b = NULL;
out:
    free(types);
    t2_bpe_destroy(&b);
    return rc;
}

int t2_bpe_write_gguf(const t2_bpe *b, t2_gguf_writer *w) { return t2_bpe_write_gguf_pad(b, w, 0); }

int t2_bpe_write_gguf_pad(const t2_bpe *b, t2_gguf_writer *w, int pad_to) {
    const char **strs = NULL;
    size_t *lens = NULL;
    char *buf = NULL;
    int32_t *types = NULL;
    int rc;

    if (b->ignore_merges != b->pre->ignore_merges || b->nfc != b->pre->nfc)
        return t2_err_set(T2_EUNSUPPORTED,
                          "tokenizer: ignore_merges = %d and NFC = %d differ from what GGUF's "
                          "pre-tokenizer '%s' implies: this vocabulary cannot be written to GGUF",
                          b->ignore_merges, b->nfc, b->pre->name);
    /* a model whose embedding has more rows than the vocabulary (Qwen: 151936 rows for 151669
     * tokens) gets unused "[PADi]" tokens, as llama.cpp's converter writes them */
    if (pad_to && pad_to < b->n)
        return t2_err_set(T2_EMISMATCH, "tokenizer: %d tokens, more than the model's vocabulary "
                          "of %d", b->n, pad_to);
    size_t nt = (size_t)b->n, n = pad_to > b->n ? (size_t)pad_to : nt,
           nm = (size_t)b->n_merges, total = 0;
    for (size_t i = 0; i < nt; i++) total += 2 * (size_t)b->len[i];
    total += (n - nt) * 24;
    for (size_t i = 0; i < nm; i++)
        total += 2 * ((size_t)b->len[b->merge_l[i]] + b->len[b->merge_r[i]]) + 1;
    strs = malloc((n + nm + 1) * sizeof *strs);
    lens = malloc((n + nm + 1) * sizeof *lens);
    types = malloc((n + 1) * sizeof *types);
    buf = malloc(total + 1);
    if (!strs || !lens || !buf || !types) {
        rc = t2_err_set(T2_ENOMEM, "tokenizer: out of memory writing %zu tokens", n);
        goto out;
    }
    size_t pos = 0;
    for (size_t i = 0; i < n + nm; i++) {
        strs[i] = buf + pos;
        if (i < nt) types[i] = b->type[i];
        if (i < nt && b->type[i] == TT_NORMAL) {
            pos += map_piece(b->arena + b->off[i], b->len[i], buf + pos);
        } else if (i < nt) {
            memcpy(buf + pos, b->arena + b->off[i], b->len[i]);
            pos += b->len[i];
        } else if (i < n) {
            pos += (size_t)snprintf(buf + pos, 24, "[PAD%zu]", i);
            types[i] = TT_UNUSED;
        } else {
            int l = b->merge_l[i - n], r = b->merge_r[i - n];
            pos += map_piece(b->arena + b->off[l], b->len[l], buf + pos);
            buf[pos++] = ' ';
            pos += map_piece(b->arena + b->off[r], b->len[r], buf + pos);
        }
        lens[i] = (size_t)(buf + pos - strs[i]);
    }
    if ((rc = t2_gguf_set_str(w, "tokenizer.ggml.model", "gpt2")) < 0 ||
        (rc = t2_gguf_set_str(w, "tokenizer.ggml.pre", b->pre->name)) < 0 ||
        (rc = t2_gguf_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, n)) < 0 ||
        (rc = t2_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", types, n)) < 0 ||
        (rc = t2_gguf_set_arr_str(w, "tokenizer.ggml.merges", strs + n, lens + n, nm)) < 0 ||
        (rc = t2_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", b->add_bos)) < 0 ||
        (rc = t2_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", b->add_eos)) < 0)
        goto out;
    static const char *keys[] = {"bos", "eos", "eot", "unknown", "padding"};
    const int ids[] = {b->bos, b->eos, b->eot, b->unk, b->pad};
    for (int k = 0; k < 5; k++) {
        char key[64];
        snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", keys[k]);
        if (ids[k] >= 0 && (rc = t2_gguf_set_u32(w, key, (uint32_t)ids[k])) < 0) goto out;
    }
    rc = 0;
out:
    free(strs);
    free(lens);
    free(buf);
    free(types);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Hugging Face tokenizer.json / tokenizer_config.json                                       */
/* ---------------------------------------------------------------------------------------- */

/* Parse a JSON file (jansson flags); *out must be json_decref'd. */
static int load_json(const char *path, size_t flags, json_t **out) {
    json_error_t err;
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (!f) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    *out = json_loadf(f, flags, &err);
    fclose(f);
    if (!*out)
        return t2_err_set(T2_EFORMAT, "%s: not valid JSON: %s (line %d)", path, err.text,
                          err.line);
    return 0;
}

static const char *jstr(const json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

static int is_type(const json_t *obj, const char *type) {
    const char *t = jstr(obj, "type");
    return t && strcmp(t, type) == 0;
}

/* normalizer (none or NFC), pre_tokenizer (Split(regex of a preset) + ByteLevel without its
 * own regex), decoder (ByteLevel). */
static int hf_pipeline(const json_t *root, const char *path, const bpe_pre **pre, int *nfc) {
    const json_t *norm = json_object_get(root, "normalizer");
    const json_t *pt = json_object_get(root, "pre_tokenizer");
    const json_t *dec = json_object_get(root, "decoder");
    *nfc = 0;
    if (norm && !json_is_null(norm)) {
        if (!is_type(norm, "NFC"))
            return t2_err_set(T2_EUNSUPPORTED, "%s: normalizer '%s' is not supported (none or NFC)",
                              path, jstr(norm, "type") ? jstr(norm, "type") : "?");
        *nfc = 1;
    }
    const json_t *seq = json_object_get(pt, "pretokenizers");
    const json_t *split = json_array_get(seq, 0), *bl = json_array_get(seq, 1);
    if (!is_type(pt, "Sequence") || json_array_size(seq) != 2 || !is_type(split, "Split") ||
        !is_type(bl, "ByteLevel") || json_is_true(json_object_get(bl, "use_regex")) ||
        json_is_true(json_object_get(bl, "add_prefix_space")) ||
        json_is_true(json_object_get(split, "invert")) || !jstr(split, "behavior") ||
        strcmp(jstr(split, "behavior"), "Isolated") != 0)
        return t2_err_set(T2_EUNSUPPORTED,
                          "%s: pre_tokenizer is not Split(regex, Isolated) then ByteLevel: T2 "
                          "reads byte-level BPE tokenizers of the Llama 3 / Qwen2 kind",
                          path);
    const char *re = jstr(json_object_get(split, "pattern"), "Regex");
    *pre = NULL;
    for (size_t i = 0; re && i < sizeof PRESETS / sizeof *PRESETS; i++)
        if (strcmp(re, PRESETS[i].regex) == 0) *pre = &PRESETS[i];
    if (!*pre)
        return t2_err_set(T2_EUNSUPPORTED,
                          "%s: the pre-tokenizer regex is not one T2 implements (llama-bpe, "
                          "qwen2): '%.80s'",
                          path, re ? re : "(none)");
    if (!is_type(dec, "ByteLevel"))
        return t2_err_set(T2_EUNSUPPORTED, "%s: decoder '%s' is not ByteLevel", path,
                          dec && jstr(dec, "type") ? jstr(dec, "type") : "(none)");
    return 0;
}

/* The BPE model's options T2 implements. */
static int hf_model(const json_t *model, const char *path, int *ignore_merges) {
    const char *type = jstr(model, "type");
    if (!type || strcmp(type, "BPE") != 0)
        return t2_err_set(T2_EUNSUPPORTED,
                          "%s: model type '%s' is not supported (T2 reads byte-level BPE)", path,
                          type ? type : "(none)");
    const char *cs = jstr(model, "continuing_subword_prefix");
    const char *ew = jstr(model, "end_of_word_suffix");
    const json_t *drop = json_object_get(model, "dropout");
    if (json_is_true(json_object_get(model, "byte_fallback")) || (cs && *cs) || (ew && *ew) ||
        (drop && !json_is_null(drop) && json_number_value(drop) != 0.0))
        return t2_err_set(T2_EUNSUPPORTED,
                          "%s: BPE with byte_fallback, a subword prefix/suffix or dropout is not "
                          "supported",
                          path);
    if (!json_is_object(json_object_get(model, "vocab")) ||
        !json_is_array(json_object_get(model, "merges")))
        return t2_err_set(T2_EFORMAT, "%s: model.vocab (object) or model.merges (array) missing",
                          path);
    *ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    return 0;
}

/* An id: an integral JSON number in [0, BPE_MAX_VOCAB), else -1. */
static long long json_id(const json_t *v) {
    double d = json_number_value(v);
    if (!json_is_number(v) || !(d >= 0 && d < BPE_MAX_VOCAB) || d != (double)(long long)d)
        return -1;
    return (long long)d;
}

/* Vocabulary size (highest id + 1) and total piece bytes; checks the shapes of the entries. */
static int hf_sizes(const json_t *vocab, const json_t *added, const char *path, int *n,
                    size_t *total) {
    const char *key;
    const json_t *v;
    size_t i;
    long long max_id = -1;
    *total = 0;
    json_object_foreach((json_t *)vocab, key, v) {
        long long id = json_id(v);
        if (id < 0 || id >= BPE_MAX_VOCAB)
            return t2_err_set(T2_EFORMAT, "%s: vocab entry '%.64s' has no valid id", path, key);
        if (id > max_id) max_id = id;
        *total += strlen(key);
    }
    json_array_foreach((json_t *)added, i, v) {
        long long id = json_id(json_object_get(v, "id"));
        const char *content = jstr(v, "content");
        if (id < 0 || !content)
            return t2_err_set(T2_EFORMAT, "%s: added_tokens[%zu] has no valid id or content",
                              path, i);
        if (json_is_true(json_object_get(v, "lstrip")) ||
            json_is_true(json_object_get(v, "rstrip")) ||
            json_is_true(json_object_get(v, "single_word")))
            return t2_err_set(T2_EUNSUPPORTED,
                              "%s: added token '%.64s' uses lstrip/rstrip/single_word, which T2 "
                              "does not implement",
                              path, content);
        if (id > max_id) max_id = id;
        *total += strlen(content);
    }
    if (max_id < 255)
        return t2_err_set(T2_EFORMAT, "%s: vocabulary has fewer than 256 pieces", path);
    *n = (int)max_id + 1;
    return 0;
}

static int hf_pieces(t2_bpe *b, const json_t *vocab, const json_t *added, const char *path) {
    const char *key;
    const json_t *v;
    size_t i, pos = 0;
    int rc;
    json_object_foreach((json_t *)vocab, key, v) {
        if ((rc = bpe_set_piece(b, &pos, (int)json_id(v), key, strlen(key), TT_NORMAL,
                                path)) < 0)
            return rc;
    }
    json_array_foreach((json_t *)added, i, v) {
        int id = (int)json_id(json_object_get(v, "id"));
        const char *content = jstr(v, "content");
        int type = json_is_true(json_object_get(v, "special")) ? TT_CONTROL : TT_USER_DEFINED;
        size_t n = strlen(content);
        if (b->type[id]) { /* also a vocabulary piece: only with the same text */
            if (b->len[id] != n || memcmp(b->arena + b->off[id], content, n) != 0)
                return t2_err_set(T2_EFORMAT,
                                  "%s: added token '%.64s' has id %d, which the vocabulary gives "
                                  "to another piece",
                                  path, content, id);
            b->type[id] = type;
            continue;
        }
        if ((rc = bpe_set_piece(b, &pos, id, content, n, type, path)) < 0) return rc;
    }
    return bpe_finish(b, path);
}

static int hf_merges(t2_bpe *b, const json_t *merges, const char *path) {
    char *scratch = malloc(2 * (size_t)BPE_MAX_PIECE + 2);
    const json_t *m;
    size_t i;
    int rc = 0;
    if (!scratch) return t2_err_set(T2_ENOMEM, "%s: out of memory", path);
    json_array_foreach((json_t *)merges, i, m) {
        const char *a = json_string_value(m), *c = NULL, *sp = a ? strchr(a, ' ') : NULL;
        size_t al = 0, cl = 0;
        if (sp && sp > a && sp[1] && !strchr(sp + 1, ' ')) { /* "A B" */
            al = (size_t)(sp - a);
            c = sp + 1;
            cl = strlen(c);
        } else if (json_array_size(m) == 2) { /* ["A", "B"] */
            a = json_string_value(json_array_get(m, 0));
            c = json_string_value(json_array_get(m, 1));
            al = a ? strlen(a) : 0;
            cl = c ? strlen(c) : 0;
        }
        if (!a || !c || !al || !cl || al > BPE_MAX_PIECE || cl > BPE_MAX_PIECE) {
            rc = t2_err_set(T2_EFORMAT, "%s: model.merges[%zu] is not \"A B\" or [\"A\", \"B\"]",
                            path, i);
            break;
        }
        if ((rc = bpe_add_merge(b, a, al, c, cl, scratch, path)) < 0) break;
    }
    free(scratch);
    return rc;
}

/* A token named in tokenizer_config.json: a string, {"content": string} or null. */
static int config_token(const t2_bpe *b, const json_t *cfg, const char *key, const char *path,
                        int *out) {
    const json_t *v = json_object_get(cfg, key);
    const char *s = json_is_object(v) ? jstr(v, "content") : json_string_value(v);
    if (!v || json_is_null(v)) return 0;
    if (!s) return t2_err_set(T2_EFORMAT, "%s: %s is not a string", path, key);
    int id = find_special(b, s, strlen(s));
    if (id < 0) id = lookup(b, s, strlen(s));
    if (id < 0)
        return t2_err_set(T2_EFORMAT, "%s: %s '%.64s' is not a token of the vocabulary", path,
                          key, s);
    *out = id;
    return 0;
}

static int hf_config(t2_bpe *b, const char *path) {
    json_t *cfg;
    int rc = load_json(path, JSON_DECODE_INT_AS_REAL, &cfg);
    if (rc < 0) return rc;
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return t2_err_set(T2_EFORMAT, "%s: not a JSON object", path);
    }
    if ((rc = config_token(b, cfg, "bos_token", path, &b->bos)) < 0 ||
        (rc = config_token(b, cfg, "eos_token", path, &b->eos)) < 0 ||
        (rc = config_token(b, cfg, "pad_token", path, &b->pad)) < 0)
        goto out;
    const json_t *ab = json_object_get(cfg, "add_bos_token");
    const json_t *ae = json_object_get(cfg, "add_eos_token");
    b->add_bos = json_is_boolean(ab) ? json_is_true(ab) : b->bos >= 0;
    b->add_eos = json_is_true(ae);
out:
    json_decref(cfg);
    return rc;
}

/* From a parsed tokenizer.json (root is borrowed; json_path names it in messages). */
static int bpe_from_root(t2_bpe **out, const json_t *root, const char *json_path,
                         const char *config_path) {
    t2_bpe *b = NULL;
    const bpe_pre *pre = NULL;
    int rc, nfc = 0, ignore_merges = 0, n = 0;
    size_t total = 0;

    *out = NULL;
    const json_t *model = json_object_get(root, "model");
    const json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(root) || !json_is_object(model) || (added && !json_is_array(added))) {
        rc = t2_err_set(T2_EFORMAT, "%s: not a tokenizer.json (no model object)", json_path);
        goto out;
    }
    if ((rc = hf_model(model, json_path, &ignore_merges)) < 0 ||
        (rc = hf_pipeline(root, json_path, &pre, &nfc)) < 0)
        goto out;
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *merges = json_object_get(model, "merges");
    if ((rc = hf_sizes(vocab, added, json_path, &n, &total)) < 0) goto out;
    if (json_array_size(merges) > BPE_MAX_MERGES) {
        rc = t2_err_set(T2_EFORMAT, "%s: too many merges (%zu)", json_path,
                        json_array_size(merges));
        goto out;
    }
    if (!(b = bpe_alloc(n, total, (int)json_array_size(merges)))) {
        rc = t2_err_set(T2_ENOMEM, "%s: out of memory for %d tokens", json_path, n);
        goto out;
    }
    b->pre = pre;
    b->nfc = nfc;
    b->ignore_merges = ignore_merges;
    if ((rc = hf_pieces(b, vocab, added, json_path)) < 0 ||
        (rc = hf_merges(b, merges, json_path)) < 0)
        goto out;
    if (config_path) {
        if ((rc = hf_config(b, config_path)) < 0) goto out;
    } else { /* no config: the usual names */
        static const char *bos[] = {"<|begin_of_text|>", "<s>"};
        for (size_t i = 0; b->bos < 0 && i < sizeof bos / sizeof *bos; i++)
            b->bos = find_special(b, bos[i], strlen(bos[i]));
        b->add_bos = b->bos >= 0;
    }
    guess_ids(b);
    *out = b;
    b = NULL;
out:
    t2_bpe_destroy(&b);
    return rc;
}

int t2_bpe_load_hf(t2_bpe **out, const char *json_path, const char *config_path) {
    json_t *root;
    *out = NULL;
    int rc = load_json(json_path, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &root);
    if (rc < 0) return rc;
    rc = bpe_from_root(out, root, json_path, config_path);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Public entry points of this kind (declared in tokenizer.h)                               */
/* ---------------------------------------------------------------------------------------- */

size_t t2_tok_utf8_complete(const char *s, size_t n) { return s ? t2_uni_complete(s, n) : 0; }

int t2_tok_load_hf_json(t2_tokenizer **out, const char *path) {
    t2_bpe *b;
    char cfg[4096];
    int rc;
    if (!out) return t2_err_set(T2_EINVAL, "tokenizer: no output tokenizer");
    *out = NULL;
    if (!path) return t2_err_set(T2_EINVAL, "tokenizer: no tokenizer.json path");
    const char *slash = strrchr(path, '/');
    int dir = slash ? (int)(slash - path + 1) : 0;
    if (snprintf(cfg, sizeof cfg, "%.*stokenizer_config.json", dir, path) >= (int)sizeof cfg)
        return t2_err_set(T2_EINVAL, "%s: path too long", path);
    FILE *f = fopen(cfg, "rb");
    if (f) fclose(f);
    if ((rc = t2_bpe_load_hf(&b, path, f ? cfg : NULL)) < 0) return rc;
    return t2_tok_from_bpe(out, b);
}

int t2_tok_load_hf_json_mem(t2_tokenizer **out, const void *buf, size_t size,
                            const char *name) {
    json_error_t err;
    t2_bpe *b;
    if (!out) return t2_err_set(T2_EINVAL, "tokenizer: no output tokenizer");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!buf && size) return t2_err_set(T2_EINVAL, "%s: no data", name);
    size_t jflags = JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL;
    json_t *root = json_loadb(buf ? buf : "", size, jflags, &err);
    if (!root)
        return t2_err_set(T2_EFORMAT, "%s: not valid JSON: %s (line %d)", name, err.text,
                          err.line);
    int rc = bpe_from_root(&b, root, name, NULL);
    json_decref(root);
    if (rc < 0) return rc;
    return t2_tok_from_bpe(out, b);
}

/* tokenizer_config.json's chat_template: a string, or the "default" of a list of
 * {"name", "template"}; NULL if it has none. *root must be json_decref'd. */
static int config_template(const char *path, json_t **root, const char **tmpl) {
    *tmpl = NULL;
    int rc = load_json(path, JSON_DECODE_INT_AS_REAL, root);
    if (rc < 0) return rc;
    const json_t *ct = json_object_get(*root, "chat_template"), *e;
    size_t i;
    if (json_is_string(ct)) *tmpl = json_string_value(ct);
    json_array_foreach((json_t *)ct, i, e) {
        const char *name = jstr(e, "name");
        if (name && strcmp(name, "default") == 0) *tmpl = jstr(e, "template");
    }
    if (ct && !json_is_null(ct) && !*tmpl)
        return t2_err_set(T2_EFORMAT, "%s: chat_template is neither a string nor a list with a "
                          "\"default\" template", path);
    return 0;
}

int t2_tok_hf_write_gguf(t2_gguf_writer *w, const char *tokenizer_json,
                         const char *tokenizer_config_json) {
    return t2_tok_hf_write_gguf_vocab(w, tokenizer_json, tokenizer_config_json, 0);
}

int t2_tok_hf_write_gguf_vocab(t2_gguf_writer *w, const char *tokenizer_json,
                               const char *tokenizer_config_json, int vocab_size) {
    t2_bpe *b = NULL;
    json_t *cfg = NULL;
    const char *tmpl = NULL;
    int rc;
    if (!w || !tokenizer_json) return t2_err_set(T2_EINVAL, "tokenizer: nothing to write");
    if ((rc = t2_bpe_load_hf(&b, tokenizer_json, tokenizer_config_json)) < 0) return rc;
    if (tokenizer_config_json &&
        (rc = config_template(tokenizer_config_json, &cfg, &tmpl)) < 0)
        goto out;
    if ((rc = t2_bpe_write_gguf_pad(b, w, vocab_size)) < 0) goto out;
    if (tmpl && (rc = t2_gguf_set_str(w, "tokenizer.chat_template", tmpl)) < 0) goto out;
out:
    json_decref(cfg);
    t2_bpe_destroy(&b);
    return rc;
}
