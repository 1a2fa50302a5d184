/* t2-bench-svf: the cost of SVF on the 134 M-parameter bench shape (F32), MLP targets.
 *
 *   decompose      time of t2_factors_compute (dgesdd per matrix, 1 and all threads), the worst
 *                  relative reconstruction error, the factors' memory
 *   merge          time to form W' for one mixture: per matrix and for the whole model
 *   batch 1        generation tok/s: base weights, merged, factored
 *   batch 8        aggregate tok/s of 8 sequences stepped together: one mixture merged, one
 *                  mixture factored, 8 different mixtures factored (ratio to one mixture), and
 *                  8 different mixtures merged (8 passes over the MLP weights)
 * Prints a table; --csv FILE writes the rows as CSV (metric,value,unit).
 */
#include "bench_util.h"
#include "engine/kernels.h"
#include "engine/model.h"
#include "base/platform.h"
#include "svf/svf.h"
#include "base/t2_err.h"
#include "engine/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NSEQ 8

static FILE *csv;

static void row(const char *metric, double value, const char *unit) {
    if (value != 0 && (value < 0.01 && value > -0.01))
        printf("%-52s %12.3g %s\n", metric, value, unit);
    else
        printf("%-52s %12.3f %s\n", metric, value, unit);
    fflush(stdout);
    if (csv) fprintf(csv, "\"%s\",%.6f,%s\n", metric, value, unit);
}

static int die(const char *what) {
    fprintf(stderr, "t2-bench-svf: %s: %s\n", what, t2_err_msg());
    return 1;
}

/* tok/s of n sequences stepping together for `steps` tokens (after a 4-token warm-up). */
static double step_rate(t2_model *m, t2_pool *pool, t2_adapt *const *ad, int n, int steps) {
    t2_state *st[NSEQ];
    int tok[NSEQ], pos[NSEQ];
    for (int i = 0; i < n; i++) {
        if (t2_state_new(&st[i], m, 1, steps + 8) < 0) return -1;
        t2_state_set_adapt(st[i], ad ? ad[i] : NULL);
        tok[i] = 1 + i;
    }
    double t0 = 0;
    for (int s = 0; s < steps + 4; s++) {
        if (s == 4) t0 = t2_now();
        for (int i = 0; i < n; i++) pos[i] = s;
        if (t2_forward_step_multi(st, n, pool, tok, pos) < 0) return -1;
        for (int i = 0; i < n; i++) tok[i] = (tok[i] * 13 + 7) % m->cfg.vocab_size;
    }
    double dt = t2_now() - t0;
    for (int i = 0; i < n; i++) t2_state_destroy(&st[i]);
    return (double)n * steps / dt;
}

int main(int argc, char **argv) {
    t2_blas_autoselect(argv);
    const char *dir = "bench-models", *csv_path = NULL;
    int steps = 32, threads = t2_nproc();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv_path = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: t2-bench-svf [--models DIR] [--csv FILE] [--steps N]\n");
            return 2;
        }
    }
    if (steps < 1) steps = 1;
    mkdir(dir, 0755);
    char path[1024];
    snprintf(path, sizeof path, "%s/rand134m-f32.gguf", dir);
    if (bench_ensure_134m(path, T2_F32) < 0) return die(path);
    if (csv_path && !(csv = fopen(csv_path, "w"))) {
        perror(csv_path);
        return 1;
    }
    if (csv) fprintf(csv, "metric,value,unit\n");
    t2_model *m = NULL;
    t2_factors *f = NULL;
    if (t2_model_load(&m, path) < 0) return die("load");
    printf("134M F32 model, MLP targets (%d matrices), kernels %s, %d threads\n\n",
           3 * m->cfg.n_layers, t2_kern_level(), threads);
    t2_pool *pool;
    if (t2_pool_new(&pool, threads) < 0) return die("threads");
    if (!t2_model_sha256(m)) return die("sha256");
    double worst = 0, t0 = t2_now();
    if (t2_factors_compute(&f, m, T2_TARGETS_MLP, pool, NULL, NULL, &worst) < 0)
        return die("decompose");
    row("decompose: time (all threads)", t2_now() - t0, "s");
    row("decompose: worst relative reconstruction error", worst, "");
    row("factors: memory", t2_factors_bytes(f) / 1048576.0, "MiB");
    row("model weights: memory", t2_model_weight_bytes_per_token(m) / 1048576.0, "MiB");

    t2_expert *ex[NSEQ];
    for (int i = 0; i < NSEQ; i++)
        if (t2_expert_init(&ex[i], f, 0, "e", "", 0.1f, 0.5f, 100 + i, 1.0f) < 0)
            return die("expert");
    float one = 1.0f;
    t2_adapt *merged[NSEQ], *fact[NSEQ];
    for (int i = 0; i < NSEQ; i++) {
        const t2_expert *e[1] = {ex[i]};
        t2_mixture mix = {1, e, &one, 1, 0};
        double tm = t2_now();
        if (t2_adapt_new(&merged[i], f, &mix, T2_APPLY_MERGED, pool) < 0) return die("merge");
        if (i == 0) {
            double dt = t2_now() - tm;
            row("merge: one mixture, whole model", dt, "s");
            row("merge: per matrix (768x2048)", 1e3 * dt / (3 * m->cfg.n_layers), "ms");
        }
        if (t2_adapt_new(&fact[i], f, &mix, T2_APPLY_FACTORED, pool) < 0) return die("factored");
    }
    double base1 = step_rate(m, pool, NULL, 1, steps);
    double mer1 = step_rate(m, pool, merged, 1, steps);
    double fac1 = step_rate(m, pool, fact, 1, steps);
    row("batch 1: base weights", base1, "tok/s");
    row("batch 1: merged", mer1, "tok/s");
    row("batch 1: factored", fac1, "tok/s");
    row("batch 1: factored / merged", fac1 / mer1, "ratio");
    t2_adapt *same_m[NSEQ], *same_f[NSEQ];
    for (int i = 0; i < NSEQ; i++) {
        same_m[i] = merged[0];
        same_f[i] = fact[0];
    }
    double b8m = step_rate(m, pool, same_m, NSEQ, steps);
    double b8f = step_rate(m, pool, same_f, NSEQ, steps);
    double b8f8 = step_rate(m, pool, fact, NSEQ, steps);
    double b8m8 = step_rate(m, pool, merged, NSEQ, steps);
    row("batch 8: one mixture, merged", b8m, "tok/s");
    row("batch 8: one mixture, factored", b8f, "tok/s");
    row("batch 8: 8 mixtures, factored", b8f8, "tok/s");
    row("batch 8: 8 mixtures / one mixture (factored)", b8f8 / b8f, "ratio");
    row("batch 8: 8 mixtures, merged (8 weight passes)", b8m8, "tok/s");
    for (int i = 0; i < NSEQ; i++) {
        t2_adapt_release(&merged[i]);
        t2_adapt_release(&fact[i]);
        t2_expert_destroy(&ex[i]);
    }
    t2_factors_destroy(&f);
    t2_pool_destroy(&pool);
    t2_model_destroy(&m);
    if (csv) fclose(csv);
    return 0;
}
