/* test_tokenizer.c - tokenizer: loading (llama2.c and GGUF), encode/decode, bad files. */
#include "engine/gguf.h"
#include "base/t2_err.h"
#include "t2_test.h"
#include "engine/tokenizer.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmp_dir[64];

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (size) *size = (size_t)n;
    }
    return buf;
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 256, "%s/%s", tmp_dir, name);
    return p;
}

static t2_tokenizer *load_bin(const char *rel, int vocab) {
    t2_tokenizer *t = NULL;
    int rc = t2_tok_load_llama2c(&t, t2_test_asset(rel), vocab);
    T2_CHECK_MSG(rc == 0 && t, "%s: %s", rel, t2_err_msg());
    return t;
}

/* Encode into a malloc'ed array (caller frees); *n gets the count. NULL on error. */
static int *encode(const t2_tokenizer *t, const char *text, int bos, int eos, int *n) {
    int cap = (int)strlen(text) + 3;
    int *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return NULL;
    int rc = t2_tok_encode(t, text, bos, eos, ids, cap, n);
    T2_CHECK_MSG(rc == 0, "encode: %s", t2_err_msg());
    if (rc < 0) {
        free(ids);
        return NULL;
    }
    return ids;
}

/* Concatenated decode of ids, the first one decoded after `prev`. Caller frees. */
static char *decode(const t2_tokenizer *t, int prev, const int *ids, int n, size_t *out_len) {
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    for (int i = 0; s && i < n; i++) {
        size_t pl;
        const char *p = t2_tok_decode(t, prev, ids[i], &pl);
        if (len + pl + 1 > cap) {
            while (len + pl + 1 > cap) cap *= 2;
            char *ns = realloc(s, cap);
            if (!ns) {
                free(s);
                return NULL;
            }
            s = ns;
        }
        memcpy(s + len, p, pl);
        len += pl;
        prev = ids[i];
    }
    if (s) s[len] = 0;
    if (out_len) *out_len = len;
    return s;
}

/* Check that text encodes (no BOS) and decodes back: after BOS exactly the text, and with no
 * previous token " " + text (the dummy prefix). Returns 1 if all good. */
static int check_round_trip(const t2_tokenizer *t, const char *text) {
    int n, ok = 1;
    int *ids = encode(t, text, 0, 0, &n);
    if (!ids) return 0;
    size_t len, len2;
    char *a = decode(t, t2_tok_bos(t), ids, n, &len);
    char *b = decode(t, -1, ids, n, &len2);
    size_t tl = strlen(text);
    if (!a || len != tl || memcmp(a, text, tl) != 0) ok = 0;
    if (!b || (tl ? len2 != tl + 1 || b[0] != ' ' || memcmp(b + 1, text, tl) != 0 : len2 != 0))
        ok = 0;
    if (!ok) fprintf(stderr, "round trip failed for '%.60s' (%zu bytes)\n", text, tl);
    free(ids);
    free(a);
    free(b);
    return ok;
}

static int ids_equal(const int *a, int na, const int *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static void check_ids(const t2_tokenizer *t, const char *text, int bos, int eos,
                      const int *want, int n_want) {
    int n = 0;
    int *ids = encode(t, text, bos, eos, &n);
    T2_CHECK_MSG(ids && ids_equal(ids, n, want, n_want), "encoding of '%s' (%d tokens)", text,
                 n);
    if (ids && !ids_equal(ids, n, want, n_want)) {
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fputc('\n', stderr);
    }
    free(ids);
}

/* Blank-line-separated chunks of a text file (modifies buf). Returns the count. */
static int split_chunks(char *buf, char **chunks, int max) {
    int n = 0;
    char *p = buf;
    while (*p && n < max) {
        while (*p == '\n') p++;
        if (!*p) break;
        char *e = strstr(p, "\n\n");
        chunks[n++] = p;
        if (!e) break;
        *e = 0;
        p = e + 2;
    }
    return n;
}

/* A literal llama2.c-style reference encoder: group a lead byte with following continuation
 * bytes (at most 4 in all), look the group up among all pieces, else bytes as id byte + 3;
 * then repeatedly merge the leftmost best-scoring pair (score > -1e10) by scanning. O(n^2). */
typedef struct {
    const t2_tokenizer *t;
    int *sorted;
    int n;
} ref_vocab;

static const ref_vocab *ref_cmp_vocab;

static int ref_cmp(const void *a, const void *b) {
    size_t la, lb;
    const char *pa = t2_tok_piece(ref_cmp_vocab->t, *(const int *)a, &la);
    const char *pb = t2_tok_piece(ref_cmp_vocab->t, *(const int *)b, &lb);
    int c = memcmp(pa, pb, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

static void ref_init(ref_vocab *rv, const t2_tokenizer *t) {
    rv->t = t;
    rv->n = t2_tok_vocab_size(t);
    rv->sorted = malloc((size_t)rv->n * sizeof *rv->sorted);
    for (int i = 0; i < rv->n; i++) rv->sorted[i] = i;
    ref_cmp_vocab = rv;
    qsort(rv->sorted, (size_t)rv->n, sizeof *rv->sorted, ref_cmp);
}

static int ref_lookup(const ref_vocab *rv, const char *s, size_t n) {
    int lo = 0, hi = rv->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        size_t pl;
        const char *p = t2_tok_piece(rv->t, rv->sorted[mid], &pl);
        int c = memcmp(p, s, pl < n ? pl : n);
        if (!c) c = (pl > n) - (pl < n);
        if (!c) return rv->sorted[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static int ref_encode(const ref_vocab *rv, const char *text, int *ids) {
    int n = 0;
    char *cat = malloc(2 * 65536 + 1);
    if (text[0]) ids[n++] = ref_lookup(rv, " ", 1);
    for (const char *c = text; *c;) {
        size_t k = 1;
        while (k < 4 && ((unsigned char)c[k] & 0xC0) == 0x80) k++;
        int id = ref_lookup(rv, c, k);
        if (id >= 0) ids[n++] = id;
        else
            for (size_t i = 0; i < k; i++) ids[n++] = (unsigned char)c[i] + 3;
        c += k;
    }
    for (;;) {
        float best = -1e10f;
        int best_i = -1, best_id = -1;
        for (int i = 0; i + 1 < n; i++) {
            size_t la, lb;
            const char *a = t2_tok_piece(rv->t, ids[i], &la);
            const char *b = t2_tok_piece(rv->t, ids[i + 1], &lb);
            memcpy(cat, a, la);
            memcpy(cat + la, b, lb);
            int id = ref_lookup(rv, cat, la + lb);
            if (id >= 0 && t2_tok_score(rv->t, id) > best) {
                best = t2_tok_score(rv->t, id);
                best_i = i;
                best_id = id;
            }
        }
        if (best_i < 0) break;
        ids[best_i] = best_id;
        memmove(ids + best_i + 1, ids + best_i + 2, (size_t)(n - best_i - 2) * sizeof *ids);
        n--;
    }
    free(cat);
    return n;
}

static const char *UNICODE_STRINGS[] = {
    "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9",             /* accents */
    "\xc3\x85ngstr\xc3\xb6m and Dvo\xc5\x99\xc3\xa1k",
    ("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3"
     "\x83\x88"),                                                   /* Japanese */
    "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c", /* Chinese */
    "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",                         /* Korean */
    "I \xe2\x9d\xa4 you \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", /* emoji */
    "\xf0\x9d\x94\x98\xf0\x9d\x94\xab\xf0\x9d\x94\xa6",            /* math fraktur */
    "\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\x94 it\xe2\x80\x99s",
    "\xc3\xa2\xe2\x82\xac\xc5\x93mojibake\xc3\xa2\xe2\x82\xac\xc2\x9d",
    "\xf4\x8f\xbf\xbd max code point",
    "tabs\tand\nnewlines\r\n  and   spaces  ",
    "   ",
    " ",
    "x",
};

static const char *INVALID_UTF8[] = {
    "a\377b",
    "\xc3\xa9\xa9",
    "\xe6\x97",
    "x\xed\xa0\x80y",   /* surrogate */
    "\xc0\x80",         /* overlong NUL */
    "\xf8\x88\x80\x80\x80",
    "\x80\x80\x80\x80\x80\x80",
    "end \xf0\x9f\x98",
    "\xfe\xff\xfe\xff",
};

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void test_load_llama2c(void) {
    t2_tokenizer *t = load_bin("models/tok512.bin", 512);
    if (!t) return;
    size_t len;
    T2_CHECK_EQ_INT(t2_tok_vocab_size(t), 512);
    T2_CHECK_EQ_INT(t2_tok_bos(t), 1);
    T2_CHECK_EQ_INT(t2_tok_eos(t), 2);
    T2_CHECK_EQ_INT(t2_tok_unk(t), 0);
    T2_CHECK(strcmp(t2_tok_piece(t, 0, &len), "<unk>") == 0 && len == 5);
    T2_CHECK(strcmp(t2_tok_piece(t, 1, &len), "\n<s>\n") == 0 && len == 5);
    T2_CHECK(strcmp(t2_tok_piece(t, 13, &len), "<0x0A>") == 0 && len == 6);
    T2_CHECK(strcmp(t2_tok_piece(t, 259, &len), " t") == 0 && len == 2);
    T2_CHECK(strcmp(t2_tok_piece(t, 403, &len), " Once") == 0);
    T2_CHECK_NEAR(t2_tok_score(t, 260), -1.0, 0);
    T2_CHECK_NEAR(t2_tok_score(t, 403), -144.0, 0);
    T2_CHECK_EQ_INT(t2_tok_type(t, 0), 2);
    T2_CHECK_EQ_INT(t2_tok_type(t, 1), 3);
    T2_CHECK_EQ_INT(t2_tok_type(t, 2), 3);
    T2_CHECK_EQ_INT(t2_tok_type(t, 3), 6);
    T2_CHECK_EQ_INT(t2_tok_type(t, 258), 6);
    T2_CHECK_EQ_INT(t2_tok_type(t, 259), 1);
    T2_CHECK_EQ_INT(t2_tok_type(t, 512), 0);
    /* out of range */
    T2_CHECK(strcmp(t2_tok_piece(t, 512, &len), "") == 0 && len == 0);
    T2_CHECK(strcmp(t2_tok_decode(t, 1, -1, &len), "") == 0 && len == 0);
    T2_CHECK(strcmp(t2_tok_decode(t, 1, 1 << 30, &len), "") == 0 && len == 0);
    T2_CHECK(t2_tok_score(t, -5) == 0.0f);
    t2_tok_destroy(&t);
    T2_CHECK(t == NULL);
    t2_tok_destroy(&t); /* NULL is fine */
    t2_tok_destroy(NULL);
}

static void test_decode(void) {
    t2_tokenizer *t = load_bin("models/tok512.bin", 512);
    if (!t) return;
    size_t len;
    const char *p = t2_tok_decode(t, 1, 403, &len); /* " Once" after BOS */
    T2_CHECK(len == 4 && memcmp(p, "Once", 4) == 0);
    p = t2_tok_decode(t, 403, 407, &len); /* " upon" after a word */
    T2_CHECK(len == 5 && memcmp(p, " upon", 5) == 0);
    p = t2_tok_decode(t, -1, 403, &len); /* no previous token: the space stays */
    T2_CHECK(len == 5 && memcmp(p, " Once", 5) == 0);
    p = t2_tok_decode(t, 403, 13, &len); /* <0x0A> */
    T2_CHECK(len == 1 && p[0] == '\n' && p[1] == 0);
    p = t2_tok_decode(t, 1, 3, &len); /* <0x00> is one NUL byte */
    T2_CHECK(len == 1 && p[0] == 0);
    p = t2_tok_decode(t, 1, 258, &len);
    T2_CHECK(len == 1 && (unsigned char)p[0] == 0xFF);
    p = t2_tok_decode(t, 5, 1, &len); /* BOS decodes to its piece, like llama2.c */
    T2_CHECK(len == 5 && strcmp(p, "\n<s>\n") == 0);
    p = t2_tok_decode(t, 1, 410, NULL); /* " " after BOS is empty */
    T2_CHECK(strcmp(p, "") == 0);
    t2_tok_destroy(&t);
}

/* t2_tok_piece_text: what t2 run and worker groups print. Byte pieces (<0xXX> is id XX + 3 in
 * tok512): bytes >= 0x80 and whitespace kept whatever the locale, other control bytes dropped. */
static void test_piece_text(void) {
    t2_tokenizer *t = load_bin("models/tok512.bin", 512);
    if (!t) return;
    size_t len;
    for (int b = 0; b < 256; b++) {
        const char *p = t2_tok_piece_text(t, 403, b + 3, &len);
        const int keep = b >= 0x80 || (b >= 0x20 && b < 0x7F) || (b >= 0x09 && b <= 0x0D);
        T2_CHECK_MSG(len == (size_t)keep && (!keep || (unsigned char)p[0] == b), "byte 0x%02X", b);
    }
    const char *p = t2_tok_piece_text(t, 403, 407, &len); /* " upon": pieces as decoded */
    T2_CHECK(len == 5 && memcmp(p, " upon", 5) == 0);
    p = t2_tok_piece_text(t, 1, 465, &len); /* a multi-byte piece */
    T2_CHECK(len == 3 && memcmp(p, "\xe2\x80\x9c", 3) == 0);
    t2_tok_destroy(&t);
}

static void test_known_encodings(void) {
    t2_tokenizer *t = load_bin("models/tok512.bin", 512);
    if (t) {
        /* " Once" = (" O" + "n") + "ce"; " time" = " t" + ("im" + "e"): see the vocab. */
        check_ids(t, "Once upon a time", 0, 0, (const int[]){403, 407, 261, 378}, 4);
        check_ids(t, "Once upon a time", 1, 1, (const int[]){1, 403, 407, 261, 378, 2}, 6);
        check_ids(t, "Lily", 0, 0, (const int[]){317}, 1);
        check_ids(t, "Hello world", 0, 0, (const int[]){346, 306, 414, 263, 304, 341}, 6);
        check_ids(t, "", 0, 0, NULL, 0);
        check_ids(t, "", 1, 0, (const int[]){1}, 1);
        check_ids(t, "", 1, 1, (const int[]){1, 2}, 2);
        /* newline and a character missing from the vocabulary: byte pieces */
        check_ids(t, "\n", 0, 0, (const int[]){410, 13}, 2);
        check_ids(t, "\xe6\x97\xa5", 0, 0, (const int[]){410, 0xE6 + 3, 0x97 + 3, 0xA5 + 3}, 4);
        t2_tok_destroy(&t);
    }
    t = load_bin("models/tokenizer.bin", 32000);
    if (t) {
        /* the same ids as SentencePiece's tokenizer.model (see sp_parity.py) */
        check_ids(t, "Once upon a time", 1, 0, (const int[]){1, 9038, 2501, 263, 931}, 5);
        check_ids(t, "Hello world", 0, 0, (const int[]){15043, 3186}, 2);
        check_ids(t, "Hello  world", 0, 0, (const int[]){15043, 29871, 3186}, 3);
        check_ids(t, "   x", 0, 0, (const int[]){1678, 921}, 2);
        check_ids(t, "\t\n", 0, 0, (const int[]){29871, 12, 13}, 3);
        check_ids(t, "\xc3\xa9", 0, 0, (const int[]){904}, 1);
        check_ids(t, "\xf0\x9f\x98\x80", 0, 0, (const int[]){29871, 243, 162, 155, 131}, 5);
        /* invalid UTF-8: a stray byte falls back to its byte piece, the rest is unaffected */
        check_ids(t, "a\xff" "b", 0, 0, (const int[]){263, 0xFF + 3, 29890}, 3);
        check_ids(t, "\xc3\xa9\xa9", 0, 0, (const int[]){904, 0xA9 + 3}, 2);
        t2_tok_destroy(&t);
    }
}

static void test_round_trip(void) {
    static const struct {
        const char *file;
        int vocab;
    } vocabs[] = {{"models/tok512.bin", 512}, {"models/tokenizer.bin", 32000}};
    const char *stories = t2_test_asset("data/tinystories/tinystories_val_slice.txt");
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++) {
        t2_tokenizer *t = load_bin(vocabs[v].file, vocabs[v].vocab);
        if (!t) continue;
        char *buf = read_file(stories, NULL);
        T2_CHECK(buf != NULL);
        if (!buf) {
            t2_tok_destroy(&t);
            continue;
        }
        static char *chunks[20000];
        int n = split_chunks(buf, chunks, 20000), bad = 0;
        T2_CHECK(n > 1000);
        for (int i = 0; i < n; i++) bad += !check_round_trip(t, chunks[i]);
        T2_CHECK_MSG(bad == 0, "%s: %d of %d chunks do not round-trip", vocabs[v].file, bad, n);
        printf("  %s: %d chunks round-trip\n", vocabs[v].file, n - bad);
        for (size_t i = 0; i < sizeof UNICODE_STRINGS / sizeof *UNICODE_STRINGS; i++)
            T2_CHECK(check_round_trip(t, UNICODE_STRINGS[i]));
        for (size_t i = 0; i < sizeof INVALID_UTF8 / sizeof *INVALID_UTF8; i++)
            T2_CHECK(check_round_trip(t, INVALID_UTF8[i]));
        T2_CHECK(check_round_trip(t, ""));
        /* every single byte value and every byte pair start */
        char s[3] = {0};
        for (int a = 1; a < 256; a++) {
            s[0] = (char)a;
            T2_CHECK(check_round_trip(t, s));
            for (int b = 1; b < 256; b += 7) {
                s[1] = (char)b;
                T2_CHECK(check_round_trip(t, s));
            }
            s[1] = 0;
        }
        free(buf);
        t2_tok_destroy(&t);
    }
}

/* The fast encoder gives exactly the ids of a literal O(n^2) llama2.c-style encoder. */
static void test_matches_reference(void) {
    static const struct {
        const char *file;
        int vocab;
    } vocabs[] = {{"models/tok512.bin", 512}, {"models/tokenizer.bin", 32000}};
    const char *stories = t2_test_asset("data/tinystories/tinystories_val_slice.txt");
    for (size_t v = 0; v < 2; v++) {
        t2_tokenizer *t = load_bin(vocabs[v].file, vocabs[v].vocab);
        char *buf = read_file(stories, NULL);
        if (!t || !buf) {
            free(buf);
            t2_tok_destroy(&t);
            continue;
        }
        ref_vocab rv;
        ref_init(&rv, t);
        static char *chunks[20000];
        int n = split_chunks(buf, chunks, 20000), checked = 0, bad = 0;
        const char *extra[sizeof UNICODE_STRINGS / sizeof *UNICODE_STRINGS + 40];
        int n_extra = 0;
        for (size_t i = 0; i < sizeof UNICODE_STRINGS / sizeof *UNICODE_STRINGS; i++)
            extra[n_extra++] = UNICODE_STRINGS[i];
        for (int i = 0; i < n && n_extra < (int)(sizeof extra / sizeof *extra); i += 97)
            extra[n_extra++] = chunks[i];
        for (int i = 0; i < n_extra; i++) {
            const char *text = extra[i];
            int cap = (int)strlen(text) + 3, nf = 0;
            int *want = malloc((size_t)cap * sizeof *want);
            int nw = ref_encode(&rv, text, want);
            int *got = encode(t, text, 0, 0, &nf);
            checked++;
            if (!got || !ids_equal(got, nf, want, nw)) {
                bad++;
                fprintf(stderr, "%s: differs from the reference on '%.60s'\n", vocabs[v].file,
                        text);
            }
            free(want);
            free(got);
        }
        T2_CHECK_EQ_INT(bad, 0);
        printf("  %s: %d strings match the reference encoder\n", vocabs[v].file, checked);
        free(rv.sorted);
        free(buf);
        t2_tok_destroy(&t);
    }
}

static void test_long_text(void) {
    t2_tokenizer *t = load_bin("models/tokenizer.bin", 32000);
    size_t size = 0;
    char *buf = read_file(t2_test_asset("data/tinystories/tinystories_val_slice.txt"), &size);
    if (!t || !buf) goto cleanup;
    /* The whole ~800 KB file as one string. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    T2_CHECK(check_round_trip(t, buf));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  encode+decode of %zu bytes: %.3f s\n", size,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    /* 10 KB of one repeated letter (deep merge chains) and of spaces */
    char *s = malloc(10001);
    memset(s, 'a', 10000);
    s[10000] = 0;
    T2_CHECK(check_round_trip(t, s));
    memset(s, ' ', 10000);
    T2_CHECK(check_round_trip(t, s));
    free(s);
cleanup:
    free(buf);
    t2_tok_destroy(&t);
}

static void test_erange(void) {
    t2_tokenizer *t = load_bin("models/tok512.bin", 512);
    if (!t) return;
    int ids[8], n = -1;
    t2_err_clear();
    int rc = t2_tok_encode(t, "Once upon a time", 1, 1, ids, 5, &n);
    T2_CHECK_EQ_INT(rc, T2_ERANGE);
    T2_CHECK_EQ_INT(n, 0);
    T2_CHECK_MSG(strstr(t2_err_msg(), "needs 6 tokens") != NULL, "%s", t2_err_msg());
    rc = t2_tok_encode(t, "Once upon a time", 1, 1, ids, 6, &n);
    T2_CHECK(rc == 0 && n == 6);
    rc = t2_tok_encode(t, "", 0, 0, NULL, 0, &n);
    T2_CHECK(rc == 0 && n == 0);
    rc = t2_tok_encode(t, "x", 0, 0, NULL, 0, &n);
    T2_CHECK_EQ_INT(rc, T2_ERANGE);
    rc = t2_tok_encode(t, NULL, 0, 0, ids, 8, &n);
    T2_CHECK_EQ_INT(rc, T2_EINVAL);
    t2_tok_destroy(&t);
}

typedef struct {
    const t2_tokenizer *t;
    const char *text;
    const int *want;
    int n_want;
    int ok;
} thread_arg;

static void *encode_thread(void *p) {
    thread_arg *a = p;
    a->ok = 1;
    for (int k = 0; k < 3; k++) {
        int n = 0, cap = (int)strlen(a->text) + 3;
        int *ids = malloc((size_t)cap * sizeof *ids);
        if (!ids || t2_tok_encode(a->t, a->text, 1, 0, ids, cap, &n) != 0 ||
            !ids_equal(ids, n, a->want, a->n_want))
            a->ok = 0;
        free(ids);
    }
    return NULL;
}

static void test_threads(void) {
    t2_tokenizer *t = load_bin("models/tokenizer.bin", 32000);
    char *buf = read_file(t2_test_asset("data/tinystories/tinystories_val_slice.txt"), NULL);
    if (!t || !buf) goto cleanup;
    buf[100000] = 0;
    int n = 0;
    int *want = encode(t, buf, 1, 0, &n);
    pthread_t th[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){t, buf, want, n, 0};
        T2_CHECK(pthread_create(&th[i], NULL, encode_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        T2_CHECK(args[i].ok);
    }
    free(want);
cleanup:
    free(buf);
    t2_tok_destroy(&t);
}

/* --- bad llama2.c files ------------------------------------------------------------------ */

/* A small valid llama2.c tokenizer image of n records (<unk>, BOS, EOS, then "a", "b", ...). */
static size_t build_tok(unsigned char *buf, int n, uint32_t max_len) {
    size_t pos = 0;
    memcpy(buf, &max_len, 4);
    pos = 4;
    for (int i = 0; i < n; i++) {
        char piece[8];
        if (i == 0) strcpy(piece, "<unk>");
        else if (i == 1) strcpy(piece, "<s>");
        else if (i == 2) strcpy(piece, "</s>");
        else snprintf(piece, sizeof piece, "%c", 'a' + (i - 3) % 26);
        float score = (float)-i;
        int32_t len = (int32_t)strlen(piece);
        memcpy(buf + pos, &score, 4);
        memcpy(buf + pos + 4, &len, 4);
        memcpy(buf + pos + 8, piece, (size_t)len);
        pos += 8 + (size_t)len;
    }
    return pos;
}

/* Offset of record i's header in a build_tok image. */
static size_t rec_off(const unsigned char *buf, int i) {
    size_t pos = 4;
    for (int k = 0; k < i; k++) {
        int32_t len;
        memcpy(&len, buf + pos + 4, 4);
        pos += 8 + (size_t)len;
    }
    return pos;
}

static void expect_bad_mem(const void *buf, size_t size, int vocab, const char *what,
                           const char *want_msg) {
    t2_tokenizer *t = (t2_tokenizer *)(uintptr_t)1;
    t2_err_clear();
    int rc = t2_tok_load_llama2c_mem(&t, buf, size, vocab, "bad.bin");
    T2_CHECK_MSG(rc < 0, "%s: loaded", what);
    T2_CHECK_MSG(t == NULL, "%s: *out not NULL", what);
    T2_CHECK_MSG(strstr(t2_err_msg(), "bad.bin") != NULL, "%s: message '%s' lacks the name",
                 what, t2_err_msg());
    T2_CHECK_MSG(strstr(t2_err_msg(), want_msg) != NULL, "%s: message '%s' lacks '%s'", what,
                 t2_err_msg(), want_msg);
    t2_tok_destroy(&t);
}

static void test_bad_llama2c(void) {
    unsigned char buf[4096], bad[4096];
    size_t size = build_tok(buf, 10, 5);
    t2_tokenizer *t = NULL;
    T2_CHECK_MSG(t2_tok_load_llama2c_mem(&t, buf, size, 10, "ok.bin") == 0, "%s",
                 t2_err_msg());
    t2_tok_destroy(&t);

    expect_bad_mem(buf, 0, 10, "empty", "empty");
    expect_bad_mem(buf, 3, 10, "short header", "truncated header");
    expect_bad_mem(buf, 4, 10, "header only", "truncated at token 0 of 10");
    expect_bad_mem(buf, rec_off(buf, 7), 10, "fewer records", "truncated at token 7 of 10");
    expect_bad_mem(buf, rec_off(buf, 7), 10, "fewer records", "does not match");
    expect_bad_mem(buf, rec_off(buf, 7) + 5, 10, "cut in a header", "truncated at token 7");
    expect_bad_mem(buf, size - 1, 10, "cut in a piece", "truncated at token 9 of 10");
    expect_bad_mem(buf, size, 8, "more records", "more than the model's vocabulary (8)");
    expect_bad_mem(buf, size, 8, "more records", "has 10 tokens");
    memcpy(bad, buf, size);
    memcpy(bad + size, "junk", 4);
    expect_bad_mem(bad, size + 4, 10, "trailing junk", "4 unexpected bytes after token 9");
    expect_bad_mem(buf, size, 2, "vocab too small", "vocabulary size 2");
    expect_bad_mem(buf, size, -1, "negative vocab", "vocabulary size -1");

    int32_t v;
    float f;
    memcpy(bad, buf, size);
    v = -3;
    memcpy(bad + rec_off(buf, 4) + 4, &v, 4);
    expect_bad_mem(bad, size, 10, "negative length", "token 4 of 10 has a negative length (-3)");
    memcpy(bad, buf, size);
    v = 6;
    memcpy(bad + rec_off(buf, 5) + 4, &v, 4);
    expect_bad_mem(bad, size, 10, "length > max", "token 5 of 10 has length 6, more than");
    memcpy(bad, buf, size);
    v = INT32_MAX;
    memcpy(bad + rec_off(buf, 5) + 4, &v, 4);
    expect_bad_mem(bad, size, 10, "huge length", "token 5 of 10 has length");
    memcpy(bad, buf, size);
    f = NAN;
    memcpy(bad + rec_off(buf, 6), &f, 4);
    expect_bad_mem(bad, size, 10, "NaN score", "token 6 of 10 has a non-finite score");
    memcpy(bad, buf, size);
    f = -INFINITY;
    memcpy(bad + rec_off(buf, 3), &f, 4);
    expect_bad_mem(bad, size, 10, "inf score", "token 3 of 10 has a non-finite score");
    memcpy(bad, buf, size);
    v = 0;
    memcpy(bad, &v, 4);
    expect_bad_mem(bad, size, 10, "max_token_length 0", "max_token_length 0");
    v = -1;
    memcpy(bad, &v, 4);
    expect_bad_mem(bad, size, 10, "max_token_length huge", "max_token_length 4294967295");

    /* Files: missing, empty, truncated copy of tok512.bin, wrong vocabulary size. */
    t2_err_clear();
    int rc = t2_tok_load_llama2c(&t, tmp_path("missing.bin"), 512);
    T2_CHECK(rc < 0 && t == NULL);
    T2_CHECK_MSG(strstr(t2_err_msg(), "missing.bin") && strstr(t2_err_msg(), "No such file"),
                 "%s", t2_err_msg());
    T2_CHECK(write_file(tmp_path("empty.bin"), "", 0) == 0);
    rc = t2_tok_load_llama2c(&t, tmp_path("empty.bin"), 512);
    T2_CHECK(rc < 0 && t == NULL);
    T2_CHECK_MSG(strstr(t2_err_msg(), "empty.bin: empty"), "%s", t2_err_msg());
    rc = t2_tok_load_llama2c(&t, tmp_dir, 512);
    T2_CHECK(rc < 0 && t == NULL);
    T2_CHECK_MSG(strstr(t2_err_msg(), "not a regular file"), "%s", t2_err_msg());

    size_t n512;
    char *tok512 = read_file(t2_test_asset("models/tok512.bin"), &n512);
    if (tok512) {
        T2_CHECK(write_file(tmp_path("tok.bin"), tok512, n512 / 2) == 0);
        rc = t2_tok_load_llama2c(&t, tmp_path("tok.bin"), 512);
        T2_CHECK(rc < 0 && t == NULL);
        T2_CHECK_MSG(strstr(t2_err_msg(), "tok.bin: truncated at token "), "%s", t2_err_msg());
        T2_CHECK_MSG(strstr(t2_err_msg(), " of 512"), "%s", t2_err_msg());
        rc = t2_tok_load_llama2c(&t, t2_test_asset("models/tok512.bin"), 500);
        T2_CHECK_EQ_INT(rc, T2_EMISMATCH);
        T2_CHECK_MSG(strstr(t2_err_msg(), "the file has 512 tokens, more than the model's "
                                          "vocabulary (500)"),
                     "%s", t2_err_msg());
        rc = t2_tok_load_llama2c(&t, t2_test_asset("models/tok512.bin"), 32000);
        T2_CHECK_EQ_INT(rc, T2_EMISMATCH);
        T2_CHECK_MSG(strstr(t2_err_msg(), "truncated at token 512 of 32000"), "%s",
                     t2_err_msg());
        T2_CHECK(t == NULL);
        free(tok512);
    }
}

/* --- GGUF --------------------------------------------------------------------------------- */

static void test_gguf_vs_llama2c(void) {
    t2_gguf *g = NULL;
    t2_tokenizer *tg = NULL, *tb = load_bin("models/tokenizer.bin", 32000);
    int rc = t2_gguf_open(&g, t2_test_asset("models/llama-2-tiny-random.gguf"));
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    if (rc == 0) {
        rc = t2_tok_load_gguf(&tg, g);
        T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    }
    if (!tg || !tb) goto cleanup;
    T2_CHECK_EQ_INT(t2_tok_vocab_size(tg), 32000);
    T2_CHECK_EQ_INT(t2_tok_bos(tg), 1);
    T2_CHECK_EQ_INT(t2_tok_eos(tg), 2);
    T2_CHECK_EQ_INT(t2_tok_unk(tg), 0);
    /* The same Llama 2 vocabulary: equal pieces (after U+2581 -> ' '), scores and types,
     * except that llama2.c's export writes BOS/EOS as "\n<s>\n" and "\n</s>\n". */
    int piece_diff = 0, score_diff = 0, type_diff = 0;
    for (int i = 0; i < 32000; i++) {
        size_t la, lb;
        const char *a = t2_tok_piece(tg, i, &la), *b = t2_tok_piece(tb, i, &lb);
        if (i == 1) {
            T2_CHECK(strcmp(a, "<s>") == 0 && strcmp(b, "\n<s>\n") == 0);
        } else if (i == 2) {
            T2_CHECK(strcmp(a, "</s>") == 0 && strcmp(b, "\n</s>\n") == 0);
        } else if (la != lb || memcmp(a, b, la) != 0) {
            piece_diff++;
        }
        if (t2_tok_score(tg, i) != t2_tok_score(tb, i)) score_diff++;
        if (t2_tok_type(tg, i) != t2_tok_type(tb, i)) type_diff++;
        if (memchr(a, 0xE2, la) && strstr(a, "\xe2\x96\x81")) piece_diff++;
    }
    T2_CHECK_EQ_INT(piece_diff, 0);
    T2_CHECK_EQ_INT(score_diff, 0);
    T2_CHECK_EQ_INT(type_diff, 0);
    T2_CHECK(strcmp(t2_tok_piece(tg, 29871, NULL), " ") == 0);
    /* The same encodings. */
    const char *texts[] = {"Once upon a time, there was a little girl named Lily.",
                           "Hello  world\n\tx", UNICODE_STRINGS[2], UNICODE_STRINGS[5],
                           INVALID_UTF8[0]};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int na = 0, nb = 0;
        int *a = encode(tg, texts[i], 1, 1, &na), *b = encode(tb, texts[i], 1, 1, &nb);
        T2_CHECK_MSG(a && b && ids_equal(a, na, b, nb), "'%s'", texts[i]);
        free(a);
        free(b);
        T2_CHECK(check_round_trip(tg, texts[i]));
    }
cleanup:
    t2_tok_destroy(&tg);
    t2_tok_destroy(&tb);
    t2_gguf_close(&g);
}

/* Write t to a GGUF with t2_tok_write_gguf, read it back and compare everything. */
static void check_gguf_round_trip(const t2_tokenizer *t, const char *name) {
    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    t2_gguf *g = NULL;
    t2_tokenizer *r = NULL;
    const char *path = tmp_path(name);
    T2_CHECK(w != NULL);
    if (!w) return;
    int rc = t2_tok_write_gguf(t, w);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    rc = t2_gguf_writer_write(w, path);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    rc = t2_gguf_open(&g, path);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    if (rc == 0) {
        rc = t2_tok_load_gguf(&r, g);
        T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    }
    if (!r) goto cleanup;
    T2_CHECK_EQ_INT(t2_tok_vocab_size(r), t2_tok_vocab_size(t));
    T2_CHECK_EQ_INT(t2_tok_bos(r), t2_tok_bos(t));
    T2_CHECK_EQ_INT(t2_tok_eos(r), t2_tok_eos(t));
    T2_CHECK_EQ_INT(t2_tok_unk(r), t2_tok_unk(t));
    int diff = 0;
    for (int i = 0; i < t2_tok_vocab_size(t); i++) {
        size_t la, lb;
        const char *a = t2_tok_piece(t, i, &la), *b = t2_tok_piece(r, i, &lb);
        if (la != lb || memcmp(a, b, la) != 0 || t2_tok_score(t, i) != t2_tok_score(r, i) ||
            t2_tok_type(t, i) != t2_tok_type(r, i))
            diff++;
    }
    T2_CHECK_EQ_INT(diff, 0);
    for (size_t i = 0; i < sizeof UNICODE_STRINGS / sizeof *UNICODE_STRINGS; i++) {
        int na = 0, nb = 0;
        int *a = encode(t, UNICODE_STRINGS[i], 1, 1, &na);
        int *b = encode(r, UNICODE_STRINGS[i], 1, 1, &nb);
        T2_CHECK(a && b && ids_equal(a, na, b, nb));
        free(a);
        free(b);
    }
    /* The file stores SentencePiece's U+2581 for spaces. */
    const char *s;
    size_t len;
    int64_t sp_id = -1;
    for (int i = 0; i < t2_tok_vocab_size(t) && sp_id < 0; i++)
        if (strcmp(t2_tok_piece(t, i, NULL), " t") == 0) sp_id = i;
    if (sp_id >= 0) {
        rc = t2_gguf_arr_str(g, "tokenizer.ggml.tokens", (uint64_t)sp_id, &s, &len);
        T2_CHECK(rc == 0 && len == 4 && memcmp(s, "\xe2\x96\x81t", 4) == 0);
    }
cleanup:
    t2_tok_destroy(&r);
    t2_gguf_close(&g);
    t2_gguf_writer_destroy(&w);
    unlink(path);
}

static void test_gguf_round_trip(void) {
    t2_tokenizer *t = load_bin("models/tok512.bin", 512);
    if (t) check_gguf_round_trip(t, "tok512.gguf");
    t2_tok_destroy(&t);
    t = load_bin("models/tokenizer.bin", 32000);
    if (t) check_gguf_round_trip(t, "tok32k.gguf");
    t2_tok_destroy(&t);
}

/* A GGUF built from keys; returns the load rc (and checks the message contains want). */
typedef void (*gguf_mutator)(t2_gguf_writer *w);

static int load_built_gguf(gguf_mutator mut, const char *want, const char *what) {
    const char *pieces[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b",
                            "\342\226\201a"};
    float scores[] = {0, 0, 0, -3, -4, -5, -1};
    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    t2_gguf *g = NULL;
    t2_tokenizer *t = NULL;
    int rc = -1;
    if (!w) return -1;
    t2_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    t2_gguf_set_arr_str(w, "tokenizer.ggml.tokens", pieces, NULL, 7);
    t2_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, 7);
    if (mut) mut(w);
    const char *path = tmp_path("built.gguf");
    if (t2_gguf_writer_write(w, path) == 0 && t2_gguf_open(&g, path) == 0) {
        t2_err_clear();
        rc = t2_tok_load_gguf(&t, g);
        if (want) {
            T2_CHECK_MSG(rc < 0 && t == NULL, "%s: loaded", what);
            T2_CHECK_MSG(strstr(t2_err_msg(), want) != NULL, "%s: message '%s' lacks '%s'",
                         what, t2_err_msg(), want);
            T2_CHECK_MSG(strstr(t2_err_msg(), "built.gguf") != NULL, "%s: '%s' lacks the file",
                         what, t2_err_msg());
        } else {
            T2_CHECK_MSG(rc == 0, "%s: %s", what, t2_err_msg());
            if (t) {
                /* no token_type: inferred; " " + "a" merge to " a"; no byte pieces, so an
                 * unknown character becomes the unknown token */
                int n = 0;
                int *ids = encode(t, "ab", 1, 0, &n);
                T2_CHECK(ids && ids_equal(ids, n, (const int[]){1, 6, 5}, 3));
                free(ids);
                ids = encode(t, "bc", 0, 0, &n);
                T2_CHECK(ids && ids_equal(ids, n, (const int[]){3, 5, 0}, 3));
                free(ids);
                T2_CHECK_EQ_INT(t2_tok_type(t, 0), 2);
                T2_CHECK_EQ_INT(t2_tok_type(t, 1), 3);
                T2_CHECK_EQ_INT(t2_tok_type(t, 6), 1);
                T2_CHECK(strcmp(t2_tok_piece(t, 6, NULL), " a") == 0);
            }
        }
    } else {
        T2_CHECK_MSG(0, "%s: could not write/open the GGUF: %s", what, t2_err_msg());
    }
    t2_tok_destroy(&t);
    t2_gguf_close(&g);
    t2_gguf_writer_destroy(&w);
    unlink(path);
    return rc;
}

static void mut_none(t2_gguf_writer *w) { (void)w; }
static void mut_gpt2(t2_gguf_writer *w) { t2_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"); }
static void mut_tokens_int(t2_gguf_writer *w) {
    int32_t v[7] = {0};
    t2_gguf_set_arr_i32(w, "tokenizer.ggml.tokens", v, 7);
}
static void mut_scores_short(t2_gguf_writer *w) {
    float s[3] = {0};
    t2_gguf_set_arr_f32(w, "tokenizer.ggml.scores", s, 3);
}
static void mut_scores_nan(t2_gguf_writer *w) {
    float s[7] = {0, 0, 0, NAN, 0, 0, 0};
    t2_gguf_set_arr_f32(w, "tokenizer.ggml.scores", s, 7);
}
static void mut_bos_range(t2_gguf_writer *w) {
    t2_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 7);
}
static void mut_eos_range(t2_gguf_writer *w) {
    t2_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 1000);
}
static void mut_types_short(t2_gguf_writer *w) {
    int32_t ty[4] = {2, 3, 3, 1};
    t2_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", ty, 4);
}

static void test_gguf_bad(void) {
    load_built_gguf(mut_none, NULL, "minimal");
    T2_CHECK_EQ_INT(load_built_gguf(mut_gpt2, "'gpt2' is not supported", "gpt2"),
                    T2_EUNSUPPORTED);
    T2_CHECK(load_built_gguf(mut_tokens_int, "not an array of strings", "int tokens") < 0);
    T2_CHECK(load_built_gguf(mut_scores_short, "has 3 entries but there are 7 tokens",
                             "short scores") < 0);
    T2_CHECK(load_built_gguf(mut_scores_nan, "tokenizer.ggml.scores[3] is not finite",
                             "NaN score") < 0);
    T2_CHECK(load_built_gguf(mut_bos_range, "bos_token_id = 7 is out of range", "bos") < 0);
    T2_CHECK(load_built_gguf(mut_eos_range, "eos_token_id = 1000 is out of range", "eos") < 0);
    T2_CHECK(load_built_gguf(mut_types_short, "token_type has 4 entries", "types") < 0);

    /* No tokenizer at all. */
    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    t2_gguf *g = NULL;
    t2_tokenizer *t = NULL;
    const char *path = tmp_path("notok.gguf");
    if (!w) return;
    t2_gguf_set_str(w, "general.architecture", "llama");
    if (t2_gguf_writer_write(w, path) == 0 && t2_gguf_open(&g, path) == 0) {
        int rc = t2_tok_load_gguf(&t, g);
        T2_CHECK(rc < 0 && t == NULL);
        T2_CHECK_MSG(strstr(t2_err_msg(), "notok.gguf: no tokenizer"), "%s", t2_err_msg());
    } else {
        T2_CHECK_MSG(0, "could not write/open %s: %s", path, t2_err_msg());
    }
    t2_gguf_close(&g);
    t2_gguf_writer_destroy(&w);
    unlink(path);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/t2_test_tok_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    T2_RUN(test_load_llama2c);
    T2_RUN(test_decode);
    T2_RUN(test_piece_text);
    T2_RUN(test_known_encodings);
    T2_RUN(test_round_trip);
    T2_RUN(test_matches_reference);
    T2_RUN(test_long_text);
    T2_RUN(test_erange);
    T2_RUN(test_threads);
    T2_RUN(test_bad_llama2c);
    T2_RUN(test_gguf_vs_llama2c);
    T2_RUN(test_gguf_round_trip);
    T2_RUN(test_gguf_bad);
    unlink(tmp_path("empty.bin"));
    unlink(tmp_path("tok.bin"));
    rmdir(tmp_dir);
    return T2_TEST_END();
}
