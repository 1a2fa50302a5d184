/* bpe_encode - the T2 side of tests/bpe_parity.py (a test tool for the byte-level BPE kind).
 *
 *   bpe_encode gguf TOKENIZER_JSON CONFIG_JSON OUT.gguf
 *       write a GGUF holding only the tokenizer metadata (t2_tok_hf_write_gguf);
 *   bpe_encode run (json|gguf) PATH CASES OUT [CASES2 OUT2 ...]
 *       CASES: one text per line as hex bytes. For each, OUT gets one line of four tab-separated
 *       fields: the ids of the text with T2_TOK_PARSE_SPECIAL; the hex of decoding them; the hex
 *       of decoding the ids without the flag; the number of control tokens among the latter.
 *   bpe_encode time (json|gguf) PATH FILE
 *       encode FILE's bytes 3 times and print the best time in milliseconds and the count.
 */
#include "base/t2_err.h"
#include "base/json.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int load(t2_tokenizer **t, const char *kind, const char *path) {
    if (!strcmp(kind, "json")) return t2_tok_load_hf_json(t, path);
    t2_gguf *g = NULL;
    int rc = t2_gguf_open(&g, path);
    if (rc == 0) rc = t2_tok_load_gguf(t, g);
    t2_gguf_close(&g);
    return rc;
}

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Encode with flags, decode, write "ids\thex" (ids only if write_ids). Returns the count of
 * control tokens, or -1. */
static int one(FILE *out, const t2_tokenizer *t, const char *s, size_t n, unsigned flags,
               int write_ids, int *ids, int cap) {
    int k, control = 0;
    if (t2_tok_encode_ex(t, s, n, flags, ids, cap, &k) < 0) return -1;
    for (int i = 0; write_ids && i < k; i++) fprintf(out, i ? " %d" : "%d", ids[i]);
    if (write_ids) fputc('\t', out);
    for (int i = 0; i < k; i++) {
        size_t len;
        const char *p = t2_tok_decode(t, i ? ids[i - 1] : -1, ids[i], &len);
        for (size_t j = 0; j < len; j++) fprintf(out, "%02x", (unsigned char)p[j]);
        control += t2_tok_type(t, ids[i]) == 3;
    }
    return control;
}

static int run(const t2_tokenizer *t, const char *cases, const char *outp) {
    char *buf = NULL;
    size_t size;
    if (t2_read_file(cases, (size_t)1 << 30, &buf, &size) < 0) return -1;
    FILE *out = fopen(outp, "w");
    unsigned char *bytes = malloc(size / 2 + 1);
    int cap = (int)(3 * (size / 2) + 8), rc = 0;
    int *ids = malloc((size_t)cap * sizeof *ids);
    if (!out || !bytes || !ids) {
        rc = t2_err_set(T2_EIO, "%s: cannot write or out of memory", outp);
        goto done;
    }
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line);
        size_t n = (size_t)(nl - line) / 2;
        for (size_t i = 0; i < n; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                rc = t2_err_set(T2_EFORMAT, "%s: not a hex line", cases);
                goto done;
            }
            bytes[i] = (unsigned char)(hi * 16 + lo);
        }
        int c;
        if (one(out, t, (char *)bytes, n, T2_TOK_PARSE_SPECIAL, 1, ids, cap) < 0) goto fail;
        fputc('\t', out);
        if ((c = one(out, t, (char *)bytes, n, 0, 0, ids, cap)) < 0) goto fail;
        fprintf(out, "\t%d\n", c);
        if (!*nl) break;
    }
    goto done;
fail:
    rc = -1;
done:
    if (out && fclose(out) != 0 && rc == 0) rc = t2_err_set(T2_EIO, "%s: write error", outp);
    free(ids);
    free(bytes);
    free(buf);
    return rc;
}

static int timing(const t2_tokenizer *t, const char *path) {
    char *buf = NULL;
    size_t size;
    if (t2_read_file(path, (size_t)1 << 30, &buf, &size) < 0) return -1;
    int cap = (int)(3 * size + 8), n = 0;
    int *ids = malloc((size_t)cap * sizeof *ids);
    double best = 1e30;
    for (int r = 0; ids && r < 3; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (t2_tok_encode_ex(t, buf, size, 0, ids, cap, &n) < 0) break;
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (ms < best) best = ms;
    }
    if (best < 1e30) printf("%.1f ms, %zu bytes, %d tokens\n", best, size, n);
    free(ids);
    free(buf);
    return best < 1e30 ? 0 : -1;
}

int main(int argc, char **argv) {
    t2_tokenizer *t = NULL;
    int rc = -1;
    if (argc == 5 && !strcmp(argv[1], "gguf")) {
        t2_gguf_writer *w = NULL;
        rc = t2_gguf_writer_new(&w);
        if (rc == 0) rc = t2_gguf_set_str(w, "general.architecture", "llama");
        if (rc == 0) rc = t2_tok_hf_write_gguf(w, argv[2], argv[3]);
        if (rc == 0) rc = t2_gguf_writer_write(w, argv[4]);
        t2_gguf_writer_destroy(&w);
    } else if (argc >= 6 && argc % 2 == 0 && !strcmp(argv[1], "run")) {
        rc = load(&t, argv[2], argv[3]);
        for (int i = 4; rc == 0 && i < argc; i += 2) rc = run(t, argv[i], argv[i + 1]);
    } else if (argc == 5 && !strcmp(argv[1], "time")) {
        if ((rc = load(&t, argv[2], argv[3])) == 0) rc = timing(t, argv[4]);
    } else {
        fprintf(stderr, "usage: bpe_encode gguf JSON CONFIG OUT | run (json|gguf) PATH CASES OUT..."
                        " | time (json|gguf) PATH FILE\n");
        return 2;
    }
    if (rc < 0) fprintf(stderr, "bpe_encode: %s\n", t2_err_msg());
    t2_tok_destroy(&t);
    return rc < 0 ? 1 : 0;
}
