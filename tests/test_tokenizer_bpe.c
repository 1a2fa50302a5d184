/* test_tokenizer_bpe.c - the byte-level BPE kind on small synthetic tokenizer.json files (no
 * assets needed): merges by rank, the llama-bpe pre-tokenizer's splits, added tokens and the
 * PARSE_SPECIAL flag, GGUF round trip, refused files; NFC and streaming UTF-8 helpers. The
 * real vocabularies are checked against an independent reference by tests/bpe_parity.py. */
#include "base/t2_err.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "t2_test.h"

#include <jansson.h>
#include <unistd.h>

static char tmp_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 256, "%s/%s", tmp_dir, name);
    return p;
}

static const char LLAMA_RE[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* GPT-2's byte-to-unicode spelling of one byte, as UTF-8. */
static void spell(unsigned b, char *out) {
    unsigned cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174))
        cp = b <= 32 ? 256 + b : b <= 160 ? 256 + 33 + (b - 127) : 256 + 67;
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* Ids: bytes 0..255 are their byte; then merges in rank order produce 256.., then added. */
static const char *MERGES[][2] = {{"h", "e"},  {"l", "l"}, {"he", "ll"}, {"hell", "o"},
                                  {"\xc4\xa0", "w"}, {"\xc4\xa0", "\xc4\xa0"}, {"1", "2"},
                                  {"3", "4"}};
enum { N_MERGES = 8, ID_HELLO = 259, ID_SP_W = 260, ID_2SP = 261, ID_12 = 262, ID_34 = 263,
       ID_IM_START = 264, ID_THINK = 265, ID_EOT = 266 };

typedef struct {
    const char *model_type, *regex, *normalizer;
    int lstrip, byte_fallback, drop_byte; /* drop_byte: leave byte 'z' out of the vocabulary */
    const char *bad_merge;
} spec;

static int write_json(const char *path, spec s) {
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    char a[8];
    for (unsigned b = 0; b < 256; b++) {
        spell(b, a);
        if (!(s.drop_byte && b == 'z')) json_object_set_new(vocab, a, json_integer(b));
    }
    for (int i = 0; i < N_MERGES; i++) {
        char m[32], joined[32];
        snprintf(m, sizeof m, "%s %s", MERGES[i][0], MERGES[i][1]);
        snprintf(joined, sizeof joined, "%s%s", MERGES[i][0], MERGES[i][1]);
        json_array_append_new(merges, json_string(m));
        json_object_set_new(vocab, joined, json_integer(256 + i));
    }
    if (s.bad_merge) json_array_append_new(merges, json_string(s.bad_merge));
    const char *names[] = {"<|im_start|>", "<think>", "<|im_end|>"};
    for (int i = 0; i < 3; i++)
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id",
                                               ID_IM_START + i, "content", names[i], "special",
                                               i != 1, "lstrip", s.lstrip && i == 0, "rstrip", 0,
                                               "single_word", 0, "normalized", 0));
    json_t *root = json_pack(
        "{s:o, s:o, s:o, s:o, s:{s:s, s:b, s:b, s:o, s:o}}", "added_tokens", added, "normalizer",
        s.normalizer ? json_pack("{s:s}", "type", s.normalizer) : json_null(), "pre_tokenizer",
        json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type",
                  "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
                  s.regex ? s.regex : LLAMA_RE, "behavior", "Isolated", "invert", 0, "type",
                  "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0),
        "decoder", json_pack("{s:s}", "type", "ByteLevel"), "model", "type",
        s.model_type ? s.model_type : "BPE", "byte_fallback", s.byte_fallback, "ignore_merges",
        1, "vocab", vocab, "merges", merges);
    int rc = root ? json_dump_file(root, path, 0) : -1;
    json_decref(root);
    return rc;
}

static t2_tokenizer *load(spec s) {
    t2_tokenizer *t = NULL;
    const char *p = tmp_path("tokenizer.json");
    T2_CHECK(write_json(p, s) == 0);
    int rc = t2_tok_load_hf_json(&t, p);
    T2_CHECK_MSG(rc == 0 && t, "%s", t2_err_msg());
    return t;
}

/* Encode and compare with the expected ids; also check the round trip. */
static void expect(const t2_tokenizer *t, const char *text, unsigned flags, const int *want,
                   int n_want) {
    int ids[64], n = -1;
    size_t len = strlen(text);
    T2_CHECK_MSG(t2_tok_encode_ex(t, text, len, flags, ids, 64, &n) == 0, "%s", t2_err_msg());
    int same = n == n_want;
    for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
    T2_CHECK_MSG(same, "'%s': got %d ids, first %d", text, n, n > 0 ? ids[0] : -1);
    char out[256];
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t pl;
        const char *p = t2_tok_decode(t, i ? ids[i - 1] : -1, ids[i], &pl);
        if (pos + pl < sizeof out) memcpy(out + pos, p, pl);
        pos += pl;
    }
    T2_CHECK_MSG(pos == len && memcmp(out, text, len) == 0, "'%s' does not round-trip", text);
}

static void test_merges_and_splits(void) {
    t2_tokenizer *t = load((spec){0});
    if (!t) return;
    T2_CHECK_EQ_INT(t2_tok_vocab_size(t), ID_EOT + 1);
    int hello[] = {ID_HELLO, ID_SP_W, 'o', 'r', 'l', 'd'};
    expect(t, "hello world", 0, hello, 6);
    /* "a   wo": \s+(?!\S) leaves the last space to " wo": "a", "  ", " wo". */
    int spaces[] = {'a', ID_2SP, ID_SP_W, 'o'};
    expect(t, "a   wo", 0, spaces, 4);
    /* \s is the White_Space property (as in Oniguruma, which Hugging Face uses): U+0085 is a
     * space, so "  \u0085" is one run; U+FEFF is not, so it starts " \ufeff". */
    int nel[] = {ID_2SP, 0xC2, 0x85, 'w', 'o'};
    expect(t, "  \xc2\x85wo", 0, nel, 5);
    int bom[] = {' ', ' ', 0xEF, 0xBB, 0xBF, 'w', 'o'};
    expect(t, "  \xef\xbb\xbfwo", 0, bom, 7);
    int trailing[] = {'a', ID_2SP, ' '};
    expect(t, "a   ", 0, trailing, 3);
    /* \p{N}{1,3}: "1234" is "123" + "4", so 3 and 4 never merge. */
    int digits[] = {ID_12, '3', '4'};
    expect(t, "1234", 0, digits, 3);
    int contraction[] = {'I', '\'', 'L', 'L'}; /* "I" then "'LL" (case-insensitive) */
    expect(t, "I'LL", 0, contraction, 4);
    int invalid[] = {0xff, 'h', 0xc3};
    expect(t, "\xffh\xc3", 0, invalid, 3);
    t2_tok_destroy(&t);
}

static void test_added_tokens(void) {
    t2_tokenizer *t = load((spec){0});
    if (!t) return;
    int special[] = {ID_IM_START, ID_HELLO};
    expect(t, "<|im_start|>hello", T2_TOK_PARSE_SPECIAL, special, 2);
    int plain[] = {'<', '|', 'i', 'm', '_', 's', 't', 'a', 'r', 't', '|', '>', ID_HELLO};
    expect(t, "<|im_start|>hello", 0, plain, 13);
    int think[] = {ID_THINK, 'h', 'i'}; /* user-defined: always */
    expect(t, "<think>hi", 0, think, 3);
    T2_CHECK_EQ_INT(t2_tok_type(t, ID_IM_START), 3);
    T2_CHECK_EQ_INT(t2_tok_type(t, ID_THINK), 4);
    T2_CHECK_EQ_INT(t2_tok_bos(t), -1); /* no BOS piece, no config */
    T2_CHECK_EQ_INT(t2_tok_eot(t), ID_EOT);
    int bos_none[] = {ID_HELLO};
    expect(t, "hello", T2_TOK_ADD_BOS, bos_none, 1);
    int ids[4], n = -1;
    T2_CHECK(t2_tok_encode_ex(t, "hello world", 11, 0, ids, 2, &n) == T2_ERANGE && n == 0);
    T2_CHECK(t2_tok_encode_ex(t, "a\0b", 3, 0, ids, 4, &n) == 0 && n == 3 && ids[1] == 0);
    t2_tok_destroy(&t);
}

static void test_gguf_round_trip(void) {
    const char *json = tmp_path("tokenizer.json"), *cfg = tmp_path("tokenizer_config.json");
    const char *gguf = tmp_path("tok.gguf");
    T2_CHECK(write_json(json, (spec){0}) == 0);
    FILE *f = fopen(cfg, "w");
    T2_CHECK(f != NULL);
    if (!f) return;
    fputs("{\"eos_token\": \"<|im_end|>\", \"add_bos_token\": false, "
          "\"model_max_length\": 1000000000000000019884624838656, "
          "\"chat_template\": \"{{ messages }}\"}", f);
    fclose(f);
    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    T2_CHECK_MSG(t2_tok_hf_write_gguf(w, json, cfg) == 0, "%s", t2_err_msg());
    T2_CHECK(t2_gguf_writer_write(w, gguf) == 0);
    t2_gguf_writer_destroy(&w);
    t2_gguf *g = NULL;
    t2_tokenizer *t = NULL;
    T2_CHECK_MSG(t2_gguf_open(&g, gguf) == 0, "%s", t2_err_msg());
    if (!g) return;
    const char *s;
    size_t n;
    T2_CHECK(t2_gguf_get_str(g, "tokenizer.ggml.pre", &s, &n) == 0 && n == 9 &&
             !memcmp(s, "llama-bpe", 9));
    T2_CHECK(t2_gguf_get_str(g, "tokenizer.chat_template", &s, &n) == 0 && n == 14);
    T2_CHECK_MSG(t2_tok_load_gguf(&t, g) == 0, "%s", t2_err_msg());
    if (t) {
        T2_CHECK_EQ_INT(t2_tok_eos(t), ID_IM_START + 2);
        T2_CHECK_EQ_INT(t2_tok_add_bos(t), 0);
        int hello[] = {ID_HELLO, ID_SP_W, 'o', 'r', 'l', 'd'};
        expect(t, "hello world", 0, hello, 6);
        int special[] = {ID_IM_START, ID_HELLO};
        expect(t, "<|im_start|>hello", T2_TOK_PARSE_SPECIAL, special, 2);
    }
    t2_tok_destroy(&t);
    t2_gguf_close(&g);
    unlink(cfg);
    unlink(gguf);
}

/* A GGUF naming a pre-tokenizer T2 does not implement is refused by name. */
static void test_gguf_unknown_pre(void) {
    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    const char *toks[256];
    char sp[256][4];
    for (int b = 0; b < 256; b++) {
        spell((unsigned)b, sp[b]);
        toks[b] = sp[b];
    }
    t2_gguf_set_str(w, "tokenizer.ggml.model", "gpt2");
    t2_gguf_set_str(w, "tokenizer.ggml.pre", "gpt-4o");
    t2_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 256);
    t2_gguf_set_arr_str(w, "tokenizer.ggml.merges", toks, NULL, 0);
    const char *path = tmp_path("pre.gguf");
    T2_CHECK(t2_gguf_writer_write(w, path) == 0);
    t2_gguf_writer_destroy(&w);
    t2_gguf *g = NULL;
    t2_tokenizer *t = NULL;
    T2_CHECK(t2_gguf_open(&g, path) == 0);
    T2_CHECK(t2_tok_load_gguf(&t, g) == T2_EUNSUPPORTED && !t);
    T2_CHECK_MSG(strstr(t2_err_msg(), "pre-tokenizer 'gpt-4o' is not supported"), "%s",
                 t2_err_msg());
    t2_gguf_close(&g);
    unlink(path);
}

static void refused(spec s, const char *want) {
    const char *p = tmp_path("tokenizer.json");
    t2_tokenizer *t = NULL;
    T2_CHECK(write_json(p, s) == 0);
    T2_CHECK(t2_tok_load_hf_json(&t, p) < 0 && !t);
    T2_CHECK_MSG(strstr(t2_err_msg(), want) && strstr(t2_err_msg(), p), "want '%s', got '%s'",
                 want, t2_err_msg());
    t2_tok_destroy(&t);
}

static void test_refused(void) {
    refused((spec){.model_type = "Unigram"}, "model type 'Unigram' is not supported");
    refused((spec){.regex = "\\s+"}, "regex is not one T2 implements");
    refused((spec){.normalizer = "NFKC"}, "normalizer 'NFKC' is not supported");
    refused((spec){.lstrip = 1}, "lstrip/rstrip/single_word");
    refused((spec){.byte_fallback = 1}, "byte_fallback");
    refused((spec){.drop_byte = 1}, "no token has id 122");
    refused((spec){.bad_merge = "h q\xc4\xa0"}, "is not a token of the vocabulary");
    refused((spec){.bad_merge = "hello"}, "is not \"A B\"");
    const char *p = tmp_path("broken.json");
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("{\"model\": ", f);
        fclose(f);
    }
    t2_tokenizer *t = NULL;
    T2_CHECK(t2_tok_load_hf_json(&t, p) == T2_EFORMAT && strstr(t2_err_msg(), "not valid JSON"));
    T2_CHECK(t2_tok_load_hf_json(&t, tmp_path("missing.json")) == T2_EIO);
    unlink(p);
}

static void test_nfc(void) {
    struct { const char *in, *out; } cases[] = {
        {"e\xcc\x81", "\xc3\xa9"},                         /* e + acute -> U+00E9 */
        {"\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81"}, /* L V T jamo -> U+AC01 */
        {"a\xcc\x81\xcc\xa8", "\xc4\x85\xcc\x81"},          /* reordered: ogonek first */
        {"\xe0\xa5\x98", "\xe0\xa4\x95\xe0\xa4\xbc"},       /* U+0958: composition exclusion */
        {"\xff" "e\xcc\x81", "\xff\xc3\xa9"},               /* invalid byte kept */
        {"plain ascii", "plain ascii"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out = NULL;
        size_t n = 0;
        T2_CHECK(t2_uni_nfc(cases[i].in, strlen(cases[i].in), &out, &n) == 0);
        T2_CHECK_MSG(out && n == strlen(cases[i].out) && !memcmp(out, cases[i].out, n),
                     "case %zu", i);
        free(out);
    }
}

static void test_utf8_complete(void) {
    struct { const char *s; size_t want; } cases[] = {
        {"", 0}, {"a", 1}, {"\xc3", 0}, {"a\xc3", 1}, {"\xc3\xa9", 2}, {"\xe6\x97", 0},
        {"\xe6\x97\xa5", 3}, {"\xf0\x9f\x98", 0}, {"\xff", 1}, {"\xe0\x80", 2},
        {"\xed\xa0", 2}, {"\x80", 1}, {"x\xf4\x90", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        T2_CHECK_MSG(t2_tok_utf8_complete(cases[i].s, strlen(cases[i].s)) == cases[i].want,
                     "case %zu", i);
    /* Streaming "日本😀" a byte at a time: every chunk shown is whole characters. */
    const char *text = "\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x98\x80";
    char pending[8], shown[32];
    size_t np = 0, ns = 0;
    for (size_t i = 0; text[i]; i++) {
        pending[np++] = text[i];
        size_t k = t2_tok_utf8_complete(pending, np);
        T2_CHECK(k == 0 || t2_uni_valid_len((const unsigned char *)pending, k) > 0);
        memcpy(shown + ns, pending, k);
        ns += k;
        memmove(pending, pending + k, np - k);
        np -= k;
    }
    T2_CHECK(np == 0 && ns == strlen(text) && !memcmp(shown, text, ns));
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/t2_test_bpe_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    T2_RUN(test_merges_and_splits);
    T2_RUN(test_added_tokens);
    T2_RUN(test_gguf_round_trip);
    T2_RUN(test_gguf_unknown_pre);
    T2_RUN(test_refused);
    T2_RUN(test_nfc);
    T2_RUN(test_utf8_complete);
    unlink(tmp_path("tokenizer.json"));
    rmdir(tmp_dir);
    return T2_TEST_END();
}
