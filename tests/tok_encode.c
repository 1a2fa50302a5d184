/* tok_encode - encode or decode text with a T2 tokenizer (a test tool).
 *
 *   tok_encode [-b] [-e] [-p] [-0] [-f FILE] TOKENIZER [VOCAB_SIZE]
 *   tok_encode -d [-s] [-0] [-f FILE] TOKENIZER [VOCAB_SIZE]
 *
 * TOKENIZER is a llama2.c tokenizer.bin (VOCAB_SIZE required) or a .gguf file. Encoding reads
 * records (lines, or NUL-separated with -0) from stdin or FILE and prints each record's ids
 * space-separated, one line per record (-b/-e add BOS/EOS, -p prints pieces in [] instead).
 * Decoding (-d) reads lines of space-separated ids and prints the concatenated decoded bytes
 * of each line, followed by a newline (NUL with -0); -s decodes as if after BOS (dropping the
 * dummy-prefix space of the first token).
 */
#include "engine/gguf.h"
#include "base/t2_err.h"
#include "engine/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void) {
    fprintf(stderr, "usage: tok_encode [-b] [-e] [-p] [-0] [-f FILE] TOKENIZER [VOCAB_SIZE]\n"
                    "       tok_encode -d [-s] [-0] [-f FILE] TOKENIZER [VOCAB_SIZE]\n");
}

/* Whole stream into a NUL-terminated buffer. */
static char *read_all(FILE *f, size_t *size) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *size = n;
    return buf;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int encode_record(const t2_tokenizer *tok, const char *rec, int bos, int eos,
                         int pieces) {
    int cap = (int)strlen(rec) + 3, n = 0;
    int *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return T2_ENOMEM;
    int rc = t2_tok_encode(tok, rec, bos, eos, ids, cap, &n);
    if (rc == 0) {
        for (int i = 0; i < n; i++) {
            if (i) putchar(' ');
            if (pieces) {
                size_t len;
                const char *p = t2_tok_piece(tok, ids[i], &len);
                putchar('[');
                fwrite(p, 1, len, stdout);
                putchar(']');
            } else {
                printf("%d", ids[i]);
            }
        }
        putchar('\n');
    }
    free(ids);
    return rc;
}

static int decode_record(const t2_tokenizer *tok, char *rec, int after_bos, char sep) {
    int prev = after_bos ? t2_tok_bos(tok) : -1;
    char *p = rec, *end;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        errno = 0;
        long id = strtol(p, &end, 10);
        if (end == p || errno || id < 0 || id >= t2_tok_vocab_size(tok))
            return t2_err_set(T2_EINVAL, "bad token id near '%.20s'", p);
        size_t len;
        const char *s = t2_tok_decode(tok, prev, (int)id, &len);
        fwrite(s, 1, len, stdout);
        prev = (int)id;
        p = end;
    }
    putchar(sep);
    return 0;
}

int main(int argc, char **argv) {
    const char *in_path = NULL;
    int bos = 0, eos = 0, pieces = 0, nul = 0, decode = 0, after_bos = 0, opt, rc = 1;
    t2_gguf *g = NULL;
    t2_tokenizer *tok = NULL;
    FILE *in = stdin;
    char *data = NULL;
    size_t size = 0;

    while ((opt = getopt(argc, argv, "bepdsf:0h")) != -1) {
        switch (opt) {
        case 'b': bos = 1; break;
        case 'e': eos = 1; break;
        case 'p': pieces = 1; break;
        case 'd': decode = 1; break;
        case 's': after_bos = 1; break;
        case 'f': in_path = optarg; break;
        case '0': nul = 1; break;
        default: usage(); return opt == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc || argc - optind > 2) {
        usage();
        return 2;
    }
    const char *tok_path = argv[optind];
    if (ends_with(tok_path, ".gguf")) {
        if (t2_gguf_open(&g, tok_path) < 0 || t2_tok_load_gguf(&tok, g) < 0) goto fail;
    } else {
        if (argc - optind != 2) {
            fprintf(stderr, "tok_encode: a llama2.c tokenizer needs VOCAB_SIZE\n");
            rc = 2;
            goto cleanup;
        }
        char *end;
        long vs = strtol(argv[optind + 1], &end, 10);
        if (*end || end == argv[optind + 1] || vs <= 0 || vs > 1 << 30) {
            fprintf(stderr, "tok_encode: bad VOCAB_SIZE '%s'\n", argv[optind + 1]);
            rc = 2;
            goto cleanup;
        }
        if (t2_tok_load_llama2c(&tok, tok_path, (int)vs) < 0) goto fail;
    }

    if (in_path && !(in = fopen(in_path, "rb"))) {
        t2_err_set(T2_EIO, "%s: cannot open: %s", in_path, strerror(errno));
        goto fail;
    }
    if (!(data = read_all(in, &size))) {
        t2_err_set(T2_EIO, "%s: read error", in_path ? in_path : "stdin");
        goto fail;
    }
    char sep = nul ? '\0' : '\n';
    for (size_t pos = 0; pos < size;) {
        char *rec = data + pos, *e = memchr(rec, sep, size - pos);
        size_t len = e ? (size_t)(e - rec) : size - pos;
        rec[len] = 0; /* a NUL inside a line ends the text there, as in C strings */
        pos += len + 1;
        int r = decode ? decode_record(tok, rec, after_bos, sep)
                       : encode_record(tok, rec, bos, eos, pieces);
        if (r < 0) goto fail;
    }
    if (fflush(stdout) != 0) {
        t2_err_set(T2_EIO, "stdout: write error: %s", strerror(errno));
        goto fail;
    }
    rc = 0;
    goto cleanup;

fail:
    fprintf(stderr, "tok_encode: %s\n", t2_err_msg());
    rc = 1;
cleanup:
    free(data);
    if (in && in != stdin) fclose(in);
    t2_tok_destroy(&tok);
    t2_gguf_close(&g);
    return rc;
}
