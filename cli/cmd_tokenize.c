/* cmd_tokenize.c - `t2 tokenize`: the token ids (or pieces) of a text, for checking a
 * tokenizer against a reference. Works for both tokenizer kinds. */
#include "cli.h"

#include "base/json.h"
#include "base/t2_err.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char tokenize_help[] =
    "usage: t2 tokenize (-m MODEL | --tokenizer tokenizer.json) [OPTIONS] (TEXT | -f FILE)\n"
    "\n"
    "Print the token ids of TEXT (or of FILE's bytes, exactly as they are, trailing newlines\n"
    "included) separated by spaces, and nothing else on stdout.\n"
    "\n"
    "  -m MODEL          a GGUF (its embedded tokenizer) or a llama2.c checkpoint (with -z)\n"
    "  -z TOKENIZER.bin  llama2.c tokenizer for a llama2.c checkpoint\n"
    "  --tokenizer FILE  a Hugging Face tokenizer.json (byte-level BPE: Llama 3, Qwen)\n"
    "  -f FILE           read the text from FILE\n"
    "  --bos             prepend BOS (none unless asked); --eos appends EOS\n"
    "  --special         parse special-token spellings (<|im_start|>) in the text as tokens\n"
    "  --pieces          print each token's id and piece (bytes that are not whole UTF-8\n"
    "                    characters, and control bytes, as \\xNN), one token per line\n"
    "  --lines           one id per line instead of spaces\n";

/* The tokenizer from -m (GGUF metadata, or a llama2.c model with -z) or --tokenizer. */
static int load_tokenizer(t2_tokenizer **tok, const char *model, const char *zpath,
                          const char *json) {
    if (json) return t2_tok_load_hf_json(tok, json);
    char magic[4] = {0};
    FILE *f = fopen(model, "rb");
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0 && !zpath) {
        t2_gguf *g = NULL;
        int rc = t2_gguf_open(&g, model);
        if (rc == 0) rc = t2_tok_load_gguf(tok, g);
        t2_gguf_close(&g);
        return rc;
    }
    t2_model *m = NULL;
    int rc = t2_model_load(&m, model);
    if (rc == 0) rc = t2_model_load_tokenizer(tok, m, zpath);
    t2_model_destroy(&m);
    return rc;
}

/* A piece with control bytes and bytes that are not part of a whole UTF-8 character (a
 * byte-level piece may hold part of one) as \xNN, backslash as \\. */
static void print_piece(const char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)p[i];
        int k = c >= 0x80 ? t2_uni_valid_len((const unsigned char *)p + i, n - i) : 1;
        if (c >= 0x80 && k > 0) fwrite(p + i, 1, (size_t)k, stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c < 0x20 || c >= 0x7f) printf("\\x%02x", c);
        else putchar(c);
        i += k > 0 ? (size_t)k : 1;
    }
}

static int print_tokens(const t2_tokenizer *tok, const int *ids, int n, int pieces, int lines) {
    for (int i = 0; i < n; i++) {
        if (pieces) {
            size_t len;
            const char *p = t2_tok_piece(tok, ids[i], &len);
            printf("%d\t", ids[i]);
            print_piece(p, len);
            putchar('\n');
        } else {
            printf(i ? (lines ? "\n%d" : " %d") : "%d", ids[i]);
        }
    }
    if (!pieces && n) putchar('\n');
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

int t2_cmd_tokenize(int argc, char **argv) {
    const char *cmd = "tokenize", *model = NULL, *zpath = NULL, *json = NULL, *file = NULL;
    int pieces = 0, lines = 0, c, rc = 1;
    unsigned flags = 0;
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 'T'}, {"bos", no_argument, 0, 'B'},
        {"eos", no_argument, 0, 'E'},             {"special", no_argument, 0, 'S'},
        {"pieces", no_argument, 0, 'P'},          {"lines", no_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:z:f:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'z': zpath = optarg; break;
        case 'T': json = optarg; break;
        case 'f': file = optarg; break;
        case 'B': flags |= T2_TOK_ADD_BOS; break;
        case 'E': flags |= T2_TOK_ADD_EOS; break;
        case 'S': flags |= T2_TOK_PARSE_SPECIAL; break;
        case 'P': pieces = 1; break;
        case 'L': lines = 1; break;
        case 'h': fputs(tokenize_help, stdout); return 0;
        default: return cli_usage_error(cmd, "bad option");
        }
    }
    if (!model == !json) return cli_usage_error(cmd, "give exactly one of -m MODEL, --tokenizer");
    if (file ? optind != argc : optind != argc - 1)
        return cli_usage_error(cmd, file ? "-f FILE and a text argument are exclusive"
                                         : "give one TEXT argument or -f FILE");

    t2_tokenizer *tok = NULL;
    char *text = NULL;
    int *ids = NULL, n = 0;
    size_t len;
    if (file) {
        if (t2_read_file(file, (size_t)1 << 30, &text, &len) < 0) goto fail;
    } else {
        len = strlen(argv[optind]);
    }
    if (load_tokenizer(&tok, model, zpath, json) < 0) goto fail;
    size_t cap = 3 * len + 4;
    if (!(ids = malloc(cap * sizeof *ids))) {
        t2_err_set(T2_ENOMEM, "out of memory for %zu tokens", cap);
        goto fail;
    }
    if (t2_tok_encode_ex(tok, file ? text : argv[optind], len, flags, ids, (int)cap, &n) < 0)
        goto fail;
    if (print_tokens(tok, ids, n, pieces, lines) < 0) {
        fprintf(stderr, "t2 %s: cannot write the output\n", cmd);
        goto out;
    }
    rc = 0;
    goto out;
fail:
    rc = cli_fail(cmd);
out:
    free(ids);
    free(text);
    t2_tok_destroy(&tok);
    return rc;
}
