/* t2 convert and t2 init: writing model files. */
#include "cli.h"
#include "convert_hf.h"

#include "engine/model.h"
#include "base/t2_err.h"
#include "engine/tokenizer.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char convert_help[] =
    "usage: t2 convert IN OUT.gguf [-z TOKENIZER] [--type T] [--name NAME]\n\n"
    "Write a model as GGUF (llama.cpp tensor names). IN is a llama2.c checkpoint (legacy or\n"
    "version-1 header, shared or separate classifier) or a GGUF. The tokenizer (-z, a llama2.c\n"
    "tokenizer.bin; or the one embedded in a GGUF input) is embedded in the output.\n"
    "IN may also be a Hugging Face folder (config.json of LlamaForCausalLM, MistralForCausalLM,\n"
    "Qwen2ForCausalLM or Qwen3ForCausalLM; model.safetensors or model.safetensors.index.json\n"
    "shards, F32/F16/BF16; tokenizer.json and generation_config.json when present); without\n"
    "--type its matrices keep the checkpoint's type (that of model.embed_tokens.weight).\n"
    "  --type T   type of the weight matrices: f32 (default), f16, bf16, q8_0, q4_0, q4_k, q6_k.\n"
    "             Norms stay f32; as llama.cpp does, a q4_0 / q4_k file keeps output.weight in\n"
    "             q6_k, and a matrix whose rows are not whole blocks falls back to q8_0 (or f32).\n"
    "             IN may itself be quantized (any type T2 reads).\n";

int t2_cmd_convert(int argc, char **argv) {
    const char *cmd = "convert", *tok_path = NULL, *name = NULL;
    t2_dtype type = T2_F32;
    int type_given = 0;
    static const struct option opts[] = {{"tokenizer", required_argument, 0, 'z'},
                                         {"type", required_argument, 0, 'T'},
                                         {"name", required_argument, 0, 'N'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "z:h", opts, NULL)) != -1) {
        switch (c) {
        case 'z': tok_path = optarg; break;
        case 'T':
            if (t2_dtype_parse(optarg, &type) < 0) return cli_usage_error(cmd, "%s", t2_err_msg());
            type_given = 1;
            if (!t2_dtype_writable(type))
                return cli_usage_error(cmd, "--type %s: T2 reads but does not write %s (it writes "
                                       "f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)", optarg,
                                       t2_dtype_name(type));
            break;
        case 'N': name = optarg; break;
        case 'h': fputs(convert_help, stdout); return 0;
        default: return cli_usage_error(cmd, "bad option");
        }
    }
    if (argc - optind != 2) return cli_usage_error(cmd, "give IN and OUT.gguf");
    const char *in = argv[optind], *out = argv[optind + 1];
    struct stat sb;
    if (stat(in, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (tok_path) return cli_usage_error(cmd, "-z is for llama2.c inputs, not '%s'", in);
        return cli_convert_hf(in, out, type_given ? &type : NULL, name) < 0 ? cli_fail(cmd) : 0;
    }
    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    int rc = 1;
    if (t2_model_load(&m, in) < 0) goto fail;
    if (tok_path || (m->gguf && t2_gguf_find_key(m->gguf, "tokenizer.ggml.tokens") >= 0)) {
        if (t2_model_load_tokenizer(&tok, m, tok_path) < 0) goto fail;
    }
    if (t2_model_save_gguf(m, tok, type, name, out) < 0) goto fail;
    fprintf(stderr, "t2 convert: wrote %s (%lld parameters, %s%s)\n", out,
            (long long)t2_model_n_params(m), t2_dtype_name(type),
            tok ? ", tokenizer embedded" : ", no tokenizer");
    rc = 0;
    goto out;
fail:
    rc = cli_fail(cmd);
out:
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc;
}

static const char init_help[] =
    "usage: t2 init -o OUT.gguf --dim D --hidden F --layers L --heads H [--kv-heads K]\n"
    "               --vocab V [--seq-len S] [--type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k] [--tied]\n"
    "               [--seed N] [-z TOKENIZER] [--arch llama|qwen2|qwen3] [--head-dim N]\n"
    "               [--rope-scaling llama3]\n\n"
    "Write a GGUF with random weights (normal, std 1/sqrt(fan-in)) for tests and\n"
    "benchmarks. --kv-heads defaults to --heads, --seq-len to 2048. --tied shares the\n"
    "classifier with the embedding (default: a separate output matrix). -z embeds a llama2.c\n"
    "tokenizer whose vocabulary size must equal V, or a Hugging Face tokenizer.json (with the\n"
    "tokenizer_config.json beside it, if any: its chat template and bos/eos) of at most V\n"
    "tokens, padded to V with unused tokens as real Qwen files are.\n"
    "  --arch A          llama (default), qwen2 (Q/K/V biases) or qwen3 (Q/K norms)\n"
    "  --head-dim N      head dimension (default dim / heads)\n"
    "  --rope-scaling llama3   Llama-3 rope scaling: factor 8, low/high frequency factors 1\n"
    "                    and 4, original context seq-len / 4 (written as the rope_freqs tensor)\n";

/* --rope-scaling: only llama3, with fixed test parameters */
static int init_rope_scaling(const char *cmd, const char *v, t2_config *cfg) {
    if (strcmp(v, "llama3") != 0)
        return cli_usage_error(cmd, "--rope-scaling '%s': only llama3 is supported", v);
    cfg->rope_scaling = T2_ROPE_LLAMA3;
    cfg->rope_factor = 8.0f;
    cfg->rope_low_freq = 1.0f;
    cfg->rope_high_freq = 4.0f;
    return 0;
}

static int is_json(const char *p) {
    size_t n = strlen(p);
    return n >= 5 && !strcmp(p + n - 5, ".json");
}

/* The model with a Hugging Face tokenizer (tokenizer.json, and tokenizer_config.json beside it
 * when there is one) embedded, padded to the model's vocabulary. */
static int save_with_hf_tokenizer(const t2_model *m, const char *tj, t2_dtype type,
                                  const char *out) {
    char cfg[4096];
    const char *slash = strrchr(tj, '/');
    int dn = slash ? (int)(slash - tj) + 1 : 0;
    if (snprintf(cfg, sizeof cfg, "%.*stokenizer_config.json", dn, tj) >= (int)sizeof cfg)
        return t2_err_set(T2_EINVAL, "%s: path too long", tj);
    FILE *f = fopen(cfg, "rb");
    if (f) fclose(f);
    t2_gguf_writer *w = NULL;
    int rc = t2_gguf_writer_new(&w);
    if (rc == 0)
        rc = t2_tok_hf_write_gguf_vocab(w, tj, f ? cfg : NULL, m->cfg.vocab_size);
    if (rc == 0) rc = t2_model_write_gguf(m, w, type, "t2-random", out);
    t2_gguf_writer_destroy(&w);
    return rc;
}

int t2_cmd_init(int argc, char **argv) {
    const char *cmd = "init", *out = NULL, *tok_path = NULL;
    t2_config cfg = {.seq_len = 2048};
    t2_dtype type = T2_F32;
    int tied = 0;
    uint64_t seed = 1;
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"dim", required_argument, 0, 'd'},
        {"hidden", required_argument, 0, 'F'}, {"layers", required_argument, 0, 'L'},
        {"heads", required_argument, 0, 'H'},  {"kv-heads", required_argument, 0, 'K'},
        {"vocab", required_argument, 0, 'V'},  {"seq-len", required_argument, 0, 'S'},
        {"type", required_argument, 0, 'T'},   {"tied", no_argument, 0, 't'},
        {"seed", required_argument, 0, 's'},   {"tokenizer", required_argument, 0, 'z'},
        {"arch", required_argument, 0, 'A'},   {"head-dim", required_argument, 0, 'D'},
        {"rope-scaling", required_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:z:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'd': if (cli_int(cmd, "--dim", optarg, 2, 1 << 16, &cfg.dim)) return 2; break;
        case 'F': if (cli_int(cmd, "--hidden", optarg, 1, 1 << 18, &cfg.hidden_dim)) return 2; break;
        case 'L': if (cli_int(cmd, "--layers", optarg, 1, 1024, &cfg.n_layers)) return 2; break;
        case 'H': if (cli_int(cmd, "--heads", optarg, 1, 4096, &cfg.n_heads)) return 2; break;
        case 'K': if (cli_int(cmd, "--kv-heads", optarg, 1, 4096, &cfg.n_kv_heads)) return 2; break;
        case 'V': if (cli_int(cmd, "--vocab", optarg, 1, 1 << 20, &cfg.vocab_size)) return 2; break;
        case 'S': if (cli_int(cmd, "--seq-len", optarg, 1, 1 << 20, &cfg.seq_len)) return 2; break;
        case 'T':
            if (t2_dtype_parse(optarg, &type) < 0) return cli_usage_error(cmd, "%s", t2_err_msg());
            break;
        case 't': tied = 1; break;
        case 's': if (cli_u64(cmd, "--seed", optarg, &seed)) return 2; break;
        case 'z': tok_path = optarg; break;
        case 'A':
            if (t2_arch_parse(optarg, strlen(optarg), &cfg.arch) < 0)
                return cli_usage_error(cmd, "--arch: %s", t2_err_msg());
            break;
        case 'D': if (cli_int(cmd, "--head-dim", optarg, 2, 4096, &cfg.head_dim)) return 2; break;
        case 'R': if (init_rope_scaling(cmd, optarg, &cfg)) return 2; break;
        case 'h': fputs(init_help, stdout); return 0;
        default: return cli_usage_error(cmd, "bad option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!out || !cfg.dim || !cfg.hidden_dim || !cfg.n_layers || !cfg.n_heads || !cfg.vocab_size)
        return cli_usage_error(cmd, "give -o, --dim, --hidden, --layers, --heads and --vocab");
    if (!cfg.n_kv_heads) cfg.n_kv_heads = cfg.n_heads;
    if (cfg.rope_scaling == T2_ROPE_LLAMA3)
        cfg.rope_orig_ctx = cfg.seq_len >= 4 ? cfg.seq_len / 4 : 1;
    t2_model *m = NULL;
    t2_tokenizer *tok = NULL;
    int rc = 1;
    if (t2_model_init_random(&m, &cfg, tied, seed) < 0) goto fail;
    if (tok_path && is_json(tok_path)) {
        if (save_with_hf_tokenizer(m, tok_path, type, out) < 0) goto fail;
    } else {
        if (tok_path && t2_model_load_tokenizer(&tok, m, tok_path) < 0) goto fail;
        if (t2_model_save_gguf(m, tok, type, "t2-random", out) < 0) goto fail;
    }
    fprintf(stderr, "t2 init: wrote %s (%s, %lld parameters, %s)\n", out,
            t2_arch_name(m->cfg.arch), (long long)t2_model_n_params(m), t2_dtype_name(type));
    rc = 0;
    goto out;
fail:
    rc = cli_fail(cmd);
out:
    t2_tok_destroy(&tok);
    t2_model_destroy(&m);
    return rc;
}
