/* t2-bench-decode: prompt and generation speed at batch 1 against the machine's own memory
 * bandwidth.
 *
 * For stories260K (from the shared assets, when present) and a 134 M-parameter Llama shape
 * (dim 768, hidden 2048, 12 layers, 12 heads, vocab 32000, separate output matrix) in F32, F16,
 * BF16, Q8_0, Q4_0, Q4_K and Q6_K (written once with random weights into --models DIR; the 4-bit
 * files keep output.weight in Q6_K as llama.cpp does) and the Q4_K_M mix (the Q4_K model with
 * attn_v / ffn_down of the Q6_K file in llama.cpp's layers), at 1 and 2 threads:
 *   prompt tok/s      a 128-token prompt processed as one batch (best of --reps); pp512 the
 *                     same for a 512-token prompt (--no-512: skipped)
 *   generation tok/s  --gen tokens one at a time after the prompt (best of --reps)
 *   weight GB/s       bytes of weights read per generated token x generation tok/s
 *   % of membw        that, over the read bandwidth measured here with the same threads
 *   t/CPU-s           generated tokens per second of process CPU time (all threads): what time
 *                     slices lost to other processes on a shared machine do not lower
 *   vs llama          prompt (128) and generation tok/s over llama.cpp's on the same shape and
 *                     type (CPU build of February 2025, measured on this machine type: the
 *                     figures quoted in the issues, not measured by this run)
 * Prints a table; --csv FILE also writes it as CSV. --types f32,q4_k,... runs only those types
 * (q4_k includes the Q4_K_M mix; stories260K only without --types).
 * Then (without --types; only this with --float-prompt) the float types' prompts of 128 and 512
 * tokens at 1 and 2 threads, tok/s and tok per CPU-second, as ratios to the llama.cpp figures of
 * issue 12 (BF16 also on the opt-in bf16 dot products; r/CPU = tok per CPU-second x threads over
 * llama.cpp's tok/s, what a shared machine's lost time slices do not lower); --prompt-csv FILE
 * writes it as CSV.
 */
#include "bench_util.h"
#include "engine/gemm.h"
#include "engine/kernels.h"
#include "engine/model.h"
#include "base/platform.h"
#include "base/t2_err.h"
#include "engine/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    const char *name;
    char path[1024];
    char mix_path[1024]; /* Q4_K_M: the Q6_K file lending attn_v / ffn_down (else empty) */
} bench_model;

/* llama.cpp's Q4_K_M mix: Q4_K, with attn_v and ffn_down in Q6_K in the first eighth, the last
 * eighth and every third layer between (its use_more_bits rule), and output in Q6_K. */
static int q4_k_m_layer(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static void mix_q4_k_m(t2_model *m, const t2_model *q6) {
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (q4_k_m_layer(l, m->cfg.n_layers)) {
            m->layers[l].wv = q6->layers[l].wv;
            m->layers[l].w_down = q6->layers[l].w_down;
        }
}

static double best_prompt(t2_state *st, t2_pool *pool, const int *toks, int n, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = t2_now();
        if (t2_forward(st, pool, toks, n, 0, NULL) < 0) return -1;
        double dt = t2_now() - t0;
        if (dt < best) best = dt;
    }
    return n / best;
}

/* llama.cpp (CPU build of February 2025) on this machine type, 134 M shape, as quoted in the
 * issues ("real models" and "prompt processing"): tok/s at 1 and 2 threads; 0 = not quoted. */
static const struct {
    const char *model;
    double pp[3], gen[3];
} LLAMA_REF[] = {
    {"134M F32", {0, 625, 1050}, {0, 0, 0}},       {"134M F16", {0, 695, 1150}, {0, 0, 0}},
    {"134M BF16", {0, 1000, 1590}, {0, 0, 0}},     {"134M Q8_0", {0, 600, 1060}, {0, 211, 205}},
    {"134M Q4_K_M", {0, 410, 684}, {0, 249, 221}}, {"134M Q4_0", {0, 1013, 1585}, {0, 271, 294}},
};

/* Our figure over llama.cpp's (0 when the issue quotes none). */
static double llama_ratio(const char *model, int th, int gen, double ours) {
    for (size_t i = 0; i < sizeof LLAMA_REF / sizeof LLAMA_REF[0]; i++)
        if (!strcmp(LLAMA_REF[i].model, model)) {
            double ref = gen ? LLAMA_REF[i].gen[th] : LLAMA_REF[i].pp[th];
            return ref > 0 ? ours / ref : 0;
        }
    return 0;
}

static void print_ratio(double r) {
    if (r > 0) printf(" %8.2fx", r);
    else printf(" %9s", "-");
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Generation tok/s (best of reps, wall clock); *per_cpu: tokens per second of process CPU time
 * (best of reps), which time slices lost to other processes do not lower. */
static double best_gen(t2_state *st, t2_pool *pool, int start, int n, int reps, int vocab,
                       double *per_cpu) {
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        int tok = 1;
        double t0 = t2_now(), c0 = cpu_now();
        for (int i = 0; i < n; i++) {
            if (t2_forward(st, pool, &tok, 1, start + i, NULL) < 0) return -1;
            tok = (tok * 7 + 3) % vocab; /* any token: the work does not depend on which */
        }
        double dt = t2_now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
    }
    *per_cpu = n / best_cpu;
    return n / best;
}

typedef struct {
    int n_prompt, n_gen, n_long, reps;
} run_cfg;

/* One table row: model m at th threads. Returns 0 or -1 (message printed). */
static int bench_row(const char *name, const t2_model *m, int th, double mb, double membw,
                     const run_cfg *rc, const int *toks, FILE *csv) {
    t2_pool *pool = NULL;
    t2_state *st = NULL;
    int n_ctx = rc->n_prompt + rc->n_gen > rc->n_long ? rc->n_prompt + rc->n_gen : rc->n_long;
    if (t2_pool_new(&pool, th) < 0 || t2_state_new(&st, m, n_ctx, n_ctx) < 0) {
        fprintf(stderr, "t2-bench-decode: %s\n", t2_err_msg());
        t2_pool_destroy(&pool);
        return -1;
    }
    best_prompt(st, pool, toks, rc->n_prompt, 1); /* warm-up: page in the weights */
    double pp = best_prompt(st, pool, toks, rc->n_prompt, rc->reps);
    double tc = 0;
    double tg = best_gen(st, pool, rc->n_prompt, rc->n_gen, rc->reps, m->cfg.vocab_size, &tc);
    double pl = rc->n_long ? best_prompt(st, pool, toks, rc->n_long, rc->reps) : 0;
    double gbs = mb * tg / 1e3;
    double rp = llama_ratio(name, th, 0, pp), rg = llama_ratio(name, th, 1, tg);
    printf("%-16s %3d %9.2f %10.1f %9.1f %9.1f %8.2f %7.1f%% %9.1f", name, th, mb, pp, pl, tg,
           gbs, 100 * gbs / membw, tc);
    print_ratio(rp);
    print_ratio(rg);
    printf("\n");
    fflush(stdout);
    if (csv)
        fprintf(csv, "%s,%d,%.3f,%.2f,%.2f,%.3f,%.2f,%.2f,%.2f,%s,%s,%.2f,%.3f,%.3f\n", name, th, mb,
                pp, tg, gbs, membw, 100 * gbs / membw, tc, t2_kern_level(), t2_blas_corename(), pl,
                rp, rg);
    t2_state_destroy(&st);
    t2_pool_destroy(&pool);
    return 0;
}

/* ---- float prompts against llama.cpp ----
 * Prompt tok/s of llama.cpp's CPU build of February 2025 (llama-bench, the same 134M weights, this
 * machine type: AMD EPYC Zen 5, 2 cores), 1 / 2 threads, 128 tokens: from issue 12, not measured
 * here. Issue 12 asks for at least 1.2 times these. */
static const struct {
    t2_dtype t;
    int bf16_dot; /* BF16 on bf16 dot products (engine/gemm.h, opt-in) */
    const char *name, *file;
    double lcpp[2];
} g_float_prompt[] = {
    {T2_F32, 0, "134M F32", "rand134m-f32.gguf", {625, 1050}},
    {T2_F16, 0, "134M F16", "rand134m-f16.gguf", {695, 1150}},
    {T2_BF16, 0, "134M BF16", "rand134m-bf16.gguf", {1000, 1590}},
    {T2_BF16, 1, "134M BF16 dot", "rand134m-bf16.gguf", {1000, 1590}},
};

/* Prompt tok/s (best of reps, wall clock) and tokens per CPU-second (best of reps). */
static double prompt_rates(t2_state *st, t2_pool *pool, const int *toks, int n, int reps,
                           double *per_cpu) {
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = t2_now(), c0 = cpu_now();
        if (t2_forward(st, pool, toks, n, 0, NULL) < 0) return -1;
        double dt = t2_now() - t0, dc = cpu_now() - c0;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
    }
    *per_cpu = n / best_cpu;
    return n / best;
}

/* One model of the float table at 1 and 2 threads, 128- and 512-token prompts. */
static int float_prompt_model(int k, const char *dir, int reps, FILE *csv) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, g_float_prompt[k].file);
    t2_model *m = NULL;
    if (bench_ensure_134m(path, g_float_prompt[k].t) < 0 || t2_model_load(&m, path) < 0) return -1;
    static int toks[512];
    for (int i = 0; i < 512; i++) toks[i] = i == 0 ? 1 : (i * 37 + 11) % 500;
    for (int th = 1; th <= 2; th++)
        for (int n = 128; n <= 512; n *= 4) {
            t2_pool *pool = NULL;
            t2_state *st = NULL;
            if (t2_pool_new(&pool, th) < 0 || t2_state_new(&st, m, n, n) < 0) {
                t2_pool_destroy(&pool);
                t2_model_destroy(&m);
                return -1;
            }
            double pc = 0;
            prompt_rates(st, pool, toks, n, 1, &pc); /* warm-up */
            double pp = prompt_rates(st, pool, toks, n, reps, &pc);
            double ref = n == 128 ? g_float_prompt[k].lcpp[th - 1] : 0;
            printf("%-16s %3d %6d %10.1f %10.1f", g_float_prompt[k].name, th, n, pp, pc);
            if (ref > 0) printf(" %10.0f %8.2f %8.2f\n", ref, pp / ref, pc * th / ref);
            else printf(" %10s %8s %8s\n", "-", "-", "-");
            fflush(stdout);
            if (csv)
                fprintf(csv, "%s,%d,%d,%.2f,%.2f,%.0f,%.3f,%.3f,%s\n", g_float_prompt[k].name, th,
                        n, pp, pc, ref, ref > 0 ? pp / ref : 0, ref > 0 ? pc * th / ref : 0,
                        t2_kern_level());
            t2_state_destroy(&st);
            t2_pool_destroy(&pool);
        }
    t2_model_destroy(&m);
    return 0;
}

/* The float types' prompt speed against llama.cpp (the table of issue 12's must-show 1). */
static int float_prompt_table(const char *dir, int reps, const char *csv_path) {
    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv_path && !csv) {
        perror(csv_path);
        return -1;
    }
    if (csv) fprintf(csv, "model,threads,prompt_tokens,prompt_tok_s,prompt_tok_per_cpu_s,"
                          "llamacpp_feb2025_tok_s,ratio,ratio_cpu_x_threads,kernels\n");
    printf("\nprompt, float weights (kernels %s; llama.cpp Feb 2025, from the issue; ratio = "
           "T2 t/s / llama.cpp; r/CPU = t/CPU-s x threads / llama.cpp, the ratio if every thread "
           "had a core to itself):\n", t2_kern_level());
    printf("%-16s %3s %6s %10s %10s %10s %8s %8s\n", "model", "thr", "tokens", "t/s", "t/CPU-s",
           "llama.cpp", "ratio", "r/CPU");
    int rc = 0;
    for (int k = 0; k < (int)(sizeof g_float_prompt / sizeof g_float_prompt[0]) && rc == 0; k++) {
        if (g_float_prompt[k].bf16_dot && t2_gemm_set_bf16_dot(1) != 0) continue;
        rc = float_prompt_model(k, dir, reps, csv);
        t2_gemm_set_bf16_dot(0);
    }
    if (csv) fclose(csv);
    if (rc < 0) fprintf(stderr, "t2-bench-decode: %s\n", t2_err_msg());
    return rc;
}

/* 1 if t's name is in the comma-separated list (case-insensitive). */
static int type_listed(const char *list, t2_dtype t) {
    const char *name = t2_dtype_name(t);
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncasecmp(p, name, n) == 0) return 1;
        p += len + (e != NULL);
    }
    return 0;
}

int main(int argc, char **argv) {
    t2_blas_autoselect(argv);
    const char *dir = "bench-models", *csv_path = NULL, *only = NULL, *fp_csv = NULL;
    int n_gen = 64, reps = 3, n_prompt = 128, n_long = 512, float_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv_path = argv[++i];
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc) n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--no-512")) n_long = 0;
        else if (!strcmp(argv[i], "--float-prompt")) float_only = 1;
        else if (!strcmp(argv[i], "--prompt-csv") && i + 1 < argc) fp_csv = argv[++i];
        else {
            fprintf(stderr, "usage: t2-bench-decode [--models DIR] [--csv FILE] [--gen N] "
                            "[--reps R] [--types f32,q4_k,...] [--no-512] [--float-prompt] "
                            "[--prompt-csv FILE]\n");
            return 2;
        }
    }
    if (n_gen < 1 || reps < 1) {
        fprintf(stderr, "t2-bench-decode: --gen and --reps must be positive\n");
        return 2;
    }
    mkdir(dir, 0755);
    if (float_only) return float_prompt_table(dir, reps, fp_csv) < 0;
    bench_model models[9];
    memset(models, 0, sizeof models);
    int nm = 0;
    const char *assets = getenv("T2_ASSETS");
    char sp[1024];
    snprintf(sp, sizeof sp, "%s/models/stories260K.bin", assets ? assets : "../shared/assets");
    struct stat st0;
    if (!only && stat(sp, &st0) == 0) {
        models[nm].name = "stories260K F32";
        snprintf(models[nm++].path, sizeof models[0].path, "%s", sp);
    } else if (!only) {
        fprintf(stderr, "note: %s not found, stories260K skipped\n", sp);
    }
    static const struct { t2_dtype t; const char *name, *file; } types[] = {
        {T2_F32, "134M F32", "rand134m-f32.gguf"},
        {T2_F16, "134M F16", "rand134m-f16.gguf"},
        {T2_BF16, "134M BF16", "rand134m-bf16.gguf"},
        {T2_Q8_0, "134M Q8_0", "rand134m-q8_0.gguf"},
        {T2_Q4_0, "134M Q4_0", "rand134m-q4_0.gguf"},
        {T2_Q4_K, "134M Q4_K", "rand134m-q4_k.gguf"},
        {T2_Q6_K, "134M Q6_K", "rand134m-q6_k.gguf"}};
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++) {
        if (only && !type_listed(only, types[i].t)) continue;
        models[nm].name = types[i].name;
        snprintf(models[nm].path, sizeof models[0].path, "%s/%s", dir, types[i].file);
        if (bench_ensure_134m(models[nm].path, types[i].t) < 0) {
            fprintf(stderr, "t2-bench-decode: %s\n", t2_err_msg());
            return 1;
        }
        nm++;
    }
    if (!only || type_listed(only, T2_Q4_K)) { /* the Q4_K_M mix, from the Q4_K and Q6_K files */
        models[nm].name = "134M Q4_K_M";
        snprintf(models[nm].path, sizeof models[0].path, "%s/rand134m-q4_k.gguf", dir);
        snprintf(models[nm].mix_path, sizeof models[0].mix_path, "%s/rand134m-q6_k.gguf", dir);
        if (bench_ensure_134m(models[nm].path, T2_Q4_K) < 0 ||
            bench_ensure_134m(models[nm].mix_path, T2_Q6_K) < 0) {
            fprintf(stderr, "t2-bench-decode: %s\n", t2_err_msg());
            return 1;
        }
        nm++;
    }

    double membw[3] = {0};
    for (int th = 1; th <= 2; th++) membw[th] = t2_membw_read_gbs(th, (size_t)1 << 30);
    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv_path && !csv) {
        perror(csv_path);
        return 1;
    }
    if (csv)
        fprintf(csv, "model,threads,weight_mb_per_token,prompt_tok_s,gen_tok_s,weight_gb_s,"
                     "membw_gb_s,pct_membw,gen_tok_per_cpu_s,kernels,blas,prompt512_tok_s,"
                     "prompt_vs_llama,gen_vs_llama\n");
    printf("kernels %s, OpenBLAS %s; memory read bandwidth: %.1f GB/s (1 thread), %.1f GB/s "
           "(2 threads)\n\n", t2_kern_level(), t2_blas_corename(), membw[1], membw[2]);
    printf("vs llama: over llama.cpp Feb 2025, from the issue (its figures on this machine type, "
           "not measured in this run)\n");
    printf("%-16s %3s %9s %10s %9s %9s %8s %8s %9s %9s %9s\n", "model", "thr", "MB/token",
           "prompt t/s", "pp512 t/s", "gen t/s", "GB/s", "% membw", "t/CPU-s", "pp vs ll",
           "gen vs ll");
    run_cfg rc = {n_prompt, n_gen, n_long, reps};
    int toks[512];
    for (int i = 0; i < 512; i++) toks[i] = i == 0 ? 1 : (i * 37 + 11) % 500;
    for (int k = 0; k < nm; k++) {
        t2_model *m = NULL, *q6 = NULL;
        if (t2_model_load(&m, models[k].path) < 0 ||
            (models[k].mix_path[0] && t2_model_load(&q6, models[k].mix_path) < 0)) {
            fprintf(stderr, "t2-bench-decode: %s\n", t2_err_msg());
            return 1;
        }
        if (q6) mix_q4_k_m(m, q6);
        double mb = t2_model_weight_bytes_per_token(m) / 1e6;
        for (int th = 1; th <= 2; th++) {
            if (bench_row(models[k].name, m, th, mb, membw[th], &rc, toks, csv) < 0) return 1;
        }
        t2_model_destroy(&m);
        t2_model_destroy(&q6);
    }
    if (csv) fclose(csv);
    if (!only && float_prompt_table(dir, reps, fp_csv) < 0) return 1;
    return 0;
}
