/* t2-bench-kv: long prompts and generation at depth with each KV cache type.
 *
 * The 134 M shape (dim 768, hidden 2048, 12 layers, 12 heads, vocab 32000, context 8192, F16
 * weights, random; written once to --models DIR) at --threads threads, for each --kv type:
 *   prompt tok/s   a --prompt-token prompt (default 4096) in batches of --batch (512)
 *   gen tok/s      --gen tokens one at a time right after it (depth = the prompt's length),
 *                  and at depth 0 (a fresh state) for comparison
 *   GB/s read      (weight bytes per token + K and V bytes at that depth) x gen tok/s
 *   % of membw     that over the read bandwidth measured by passes interleaved with the
 *                  generation (same threads, same load)
 *   KV GB/s        K and V bytes at that depth / the time a token takes more than at depth 0:
 *                  the rate at which attention reads the cache
 * Each type prints two lines: by wall clock, and by CPU time ("cpu": seconds of the process's
 * CPU / threads in place of wall seconds, what the run would take on otherwise idle cores; the
 * pool's spinning counts as CPU, so it errs low). The machine may be shared: every ratio is
 * taken within one run.
 */
#include "base/platform.h"
#include "base/t2_err.h"
#include "engine/kernels.h"
#include "engine/kvcache.h"
#include "engine/model.h"
#include "engine/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

typedef struct {
    const char *dir, *kv;
    int threads, prompt, gen, batch;
} opts;

static int ensure_model(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) return 0;
    fprintf(stderr, "writing %s ...\n", path);
    t2_config cfg = {.dim = 768, .hidden_dim = 2048, .n_layers = 12, .n_heads = 12,
                     .n_kv_heads = 12, .vocab_size = 32000, .seq_len = 8192};
    t2_model *m = NULL;
    int rc = t2_model_init_random(&m, &cfg, 0, 42);
    if (rc == 0) rc = t2_model_save_gguf(m, NULL, T2_F16, "t2-bench-134m-8k", path);
    t2_model_destroy(&m);
    return rc;
}

/* CPU seconds of this process (all threads) */
static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

typedef struct {
    double tps, bw;         /* tok/s and the best membw pass around the generation, wall clock */
    double tps_cpu, bw_cpu; /* the same by CPU time / threads */
} rate;

/* one membw pass: GB/s by wall clock, and by CPU time in *cpu_gbs */
static double bw_pass(t2_pool *pool, int threads, const float *buf, size_t n, double *cpu_gbs) {
    const double c0 = cpu_now(), g = t2_membw_read_pass(pool, buf, n);
    *cpu_gbs = (double)n * sizeof(float) / ((cpu_now() - c0) / threads) / 1e9;
    return g;
}

/* gen tokens one at a time from position pos */
static int gen_rate(t2_state *st, t2_pool *pool, int threads, int pos, int gen, const float *buf,
                    size_t n, rate *r) {
    int tok = 7;
    double c1, c2, b = bw_pass(pool, threads, buf, n, &c1);
    const double t0 = t2_now(), cp0 = cpu_now();
    for (int i = 0; i < gen; i++)
        if (t2_forward(st, pool, &tok, 1, pos + i, NULL) < 0) return -1;
    const double dt = t2_now() - t0, dc = cpu_now() - cp0, b2 = bw_pass(pool, threads, buf, n, &c2);
    r->tps = gen / dt;
    r->tps_cpu = gen / (dc / threads);
    r->bw = b > b2 ? b : b2;
    r->bw_cpu = c1 > c2 ? c1 : c2;
    return 0;
}

static void print_rates(const char *what, const opts *o, t2_dtype kv, double prompt, rate g0,
                        rate gd, double wb, double kvb) {
    const double att_gbs = gd.tps < g0.tps ? kvb / (1 / gd.tps - 1 / g0.tps) / 1e9 : 0;
    printf("%-5s %-5s %6d  %9.1f  %9.1f  %12.1f  %9.1f  %6.1f %%  %8.1f  %5.1f %%  %8.1f\n",
           t2_dtype_name(kv), what, o->prompt, prompt, g0.tps, gd.tps, (wb + kvb) * gd.tps / 1e9,
           100 * (wb + kvb) * gd.tps / 1e9 / gd.bw, gd.bw, 100 * wb * g0.tps / 1e9 / g0.bw, att_gbs);
}

static int run_type(const opts *o, t2_model *m, t2_pool *pool, t2_dtype kv, const float *buf,
                    size_t n) {
    const t2_config *c = &m->cfg;
    int *toks = malloc((size_t)o->prompt * sizeof *toks), rc;
    t2_state *st = NULL, *st0 = NULL;
    rate g0, gd;
    if (!toks) return t2_err_set(T2_ENOMEM, "out of memory");
    for (int i = 0; i < o->prompt; i++) toks[i] = 1 + (i * 7919) % (c->vocab_size - 1);
    if ((rc = t2_state_new_kv(&st, m, o->batch, o->prompt + o->gen, 0, c->n_layers, kv, NULL)) < 0 ||
        (rc = t2_state_new_kv(&st0, m, 1, o->gen + 1, 0, c->n_layers, kv, NULL)) < 0)
        goto out;
    double t0 = t2_now(), c0 = cpu_now();
    if ((rc = t2_forward(st, pool, toks, o->prompt, 0, NULL)) < 0) goto out; /* batches of --batch */
    const double prompt_rate = o->prompt / (t2_now() - t0);
    const double prompt_cpu = o->prompt / ((cpu_now() - c0) / o->threads);
    if ((rc = gen_rate(st0, pool, o->threads, 0, o->gen, buf, n, &g0)) < 0 ||
        (rc = gen_rate(st, pool, o->threads, o->prompt, o->gen, buf, n, &gd)) < 0)
        goto out;
    const double wb = (double)t2_model_weight_bytes_per_token(m);
    const double kvb = (double)o->prompt * c->n_layers * 2 *
                       t2_kv_row_bytes(kv, c->n_kv_heads * c->head_dim);
    print_rates("wall", o, kv, prompt_rate, g0, gd, wb, kvb);
    g0.tps = g0.tps_cpu, g0.bw = g0.bw_cpu, gd.tps = gd.tps_cpu, gd.bw = gd.bw_cpu;
    print_rates("cpu", o, kv, prompt_cpu, g0, gd, wb, kvb);
    fflush(stdout);
out:
    free(toks);
    t2_state_destroy(&st);
    t2_state_destroy(&st0);
    return rc;
}

static int parse(int argc, char **argv, opts *o) {
    *o = (opts){.dir = "/tmp/t2-bench-models", .kv = "f16,q8_0,f32", .threads = 2,
                .prompt = 4096, .gen = 32, .batch = 512};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return t2_err_set(T2_EINVAL, "%s: missing value", a);
        if (!strcmp(a, "--models")) o->dir = v;
        else if (!strcmp(a, "--kv")) o->kv = v;
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--prompt")) o->prompt = atoi(v);
        else if (!strcmp(a, "--gen")) o->gen = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else return t2_err_set(T2_EINVAL, "unknown option %s", a);
        i++;
    }
    if (o->threads < 1 || o->prompt < 1 || o->prompt > 8000 || o->gen < 1 || o->batch < 1)
        return t2_err_set(T2_EINVAL, "--threads, --prompt (1..8000), --gen, --batch out of range");
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    char path[1200];
    t2_model *m = NULL;
    t2_pool *pool = NULL;
    if (parse(argc, argv, &o) < 0) {
        fprintf(stderr, "t2-bench-kv: %s\nusage: t2-bench-kv [--models DIR] [--kv f16,q8_0,f32] "
                "[--threads N] [--prompt N] [--gen N] [--batch N]\n", t2_err_msg());
        return 2;
    }
    mkdir(o.dir, 0755);
    snprintf(path, sizeof path, "%s/bench134m_8k_f16.gguf", o.dir);
    const size_t n = (size_t)1 << 27; /* 512 MiB of floats for the bandwidth passes */
    float *buf = malloc(n * sizeof(float));
    if (!buf || ensure_model(path) < 0 || t2_model_load(&m, path) < 0 ||
        t2_pool_new(&pool, o.threads) < 0) {
        fprintf(stderr, "t2-bench-kv: %s\n", t2_err_msg());
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 1023);
    printf("134M shape, F16 weights, %d threads, kernels %s; machine possibly shared: ratios are "
           "within this run\n", o.threads, t2_kern_level());
    printf("kv    clock prompt  prompt t/s  gen t/s@0  gen t/s@depth  GB/s read  %% membw"
           "  membw GB/s  %%@0  KV GB/s\n");
    char list[256];
    snprintf(list, sizeof list, "%s", o.kv);
    int rc = 0;
    for (char *sv, *t = strtok_r(list, ",", &sv); t && rc == 0; t = strtok_r(NULL, ",", &sv)) {
        t2_dtype kv;
        if ((rc = t2_kv_type_parse(t, &kv)) == 0) rc = run_type(&o, m, pool, kv, buf, n);
    }
    if (rc < 0) fprintf(stderr, "t2-bench-kv: %s\n", t2_err_msg());
    free(buf);
    t2_pool_destroy(&pool);
    t2_model_destroy(&m);
    return rc < 0;
}
