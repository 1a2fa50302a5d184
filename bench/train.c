/* t2-bench-train: time of one training step, full weights vs. SVF only, at 1 and 2 threads.
 *
 *   t2-bench-train [--dim D --hidden F --layers L --heads H --kv-heads K --vocab V]
 *                  [--B n] [--T n] [--steps n] [--csv FILE]
 *
 * A random model (default: the stories15M shape, dim 288, hidden 768, 6 layers, 6 heads,
 * vocab 512) and one fixed batch of B x T tokens (default 8 x 128). For each thread count a
 * step is zero_grad + forward + backward + clip + AdamW update; the time is the median of
 * --steps steps after one warm-up step:
 *   full   every weight trained (dense backward: dX and dW of every matrix)
 *   svf    SVF expert on the MLP matrices (gate, up, down) of every layer: factored forward,
 *          dX through every layer above the lowest target, gradient of p only
 * Prints a table (ms/step, tokens/s, SVF/full ratio, trainable parameters) and, with --csv,
 * writes it as CSV. Data-parallel scaling over MPI ranks is bench/train_mpi.sh.
 */
#include "base/platform.h"
#include "base/t2_err.h"
#include "train/train.h"
#include "train_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds per step over n steps (after one warm-up). */
static double time_steps(t2_train *tr, t2_pool *pool, const int *in, const int *tg, int B, int T,
                         int n) {
    t2_adamw_opts o;
    t2_adamw_opts_default(&o);
    double *dt = malloc((size_t)(n + 1) * sizeof(double));
    for (int i = 0; i <= n; i++) {
        double t0 = t2_now();
        t2_train_zero_grad(tr);
        if (t2_train_forward(tr, pool, in, tg, NULL, B, T, 0, NULL) < 0 ||
            t2_train_backward(tr, pool) < 0) {
            fprintf(stderr, "t2-bench-train: %s\n", t2_err_msg());
            exit(1);
        }
        t2_train_clip_grad(tr, 1.0f);
        t2_train_update(tr, 1e-5f, &o);
        dt[i] = t2_now() - t0;
    }
    qsort(dt + 1, (size_t)n, sizeof(double), cmp_double);
    double med = dt[1 + n / 2];
    free(dt);
    return med;
}

int main(int argc, char **argv) {
    t2_blas_autoselect(argv);
    t2_config c = {.dim = 288, .hidden_dim = 768, .n_layers = 6, .n_heads = 6, .n_kv_heads = 6,
                   .vocab_size = 512, .seq_len = 256};
    int B = 8, T = 128, steps = 5;
    const char *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *dst = !strcmp(a, "--dim")        ? &c.dim
                   : !strcmp(a, "--hidden")   ? &c.hidden_dim
                   : !strcmp(a, "--layers")   ? &c.n_layers
                   : !strcmp(a, "--heads")    ? &c.n_heads
                   : !strcmp(a, "--kv-heads") ? &c.n_kv_heads
                   : !strcmp(a, "--vocab")    ? &c.vocab_size
                   : !strcmp(a, "--B")        ? &B
                   : !strcmp(a, "--T")        ? &T
                   : !strcmp(a, "--steps")    ? &steps
                                              : NULL;
        if (dst && v) {
            *dst = atoi(v);
            i++;
        } else if (!strcmp(a, "--csv") && v) {
            csv_path = v;
            i++;
        } else {
            fprintf(stderr, "usage: t2-bench-train [--dim D --hidden F --layers L --heads H "
                            "--kv-heads K --vocab V] [--B n] [--T n] [--steps n] [--csv F]\n");
            return 2;
        }
    }
    if (!strcmp(argv[argc > 1 ? 1 : 0], "--help")) return 0;
    if (c.seq_len < T) c.seq_len = T;
    t2_model *m = NULL;
    t2_train *full = NULL, *svf = NULL;
    if (t2_model_init_random(&m, &c, 0, 1) < 0 || t2_train_from_model(&full, m, B, T) < 0 ||
        t2_train_from_model(&svf, m, B, T) < 0) {
        fprintf(stderr, "t2-bench-train: %s\n", t2_err_msg());
        return 1;
    }
    tu_factors fac;
    t2_svf_opts so;
    t2_svf_opts_default(&so);
    double t0 = t2_now();
    if (tu_factors_compute(&fac, svf, so.targets) < 0 ||
        t2_train_svf_enable(svf, &so, fac.f, fac.n) < 0) {
        fprintf(stderr, "t2-bench-train: SVF setup failed: %s\n", t2_err_msg());
        return 1;
    }
    double t_svd = t2_now() - t0;
    int *in = malloc((size_t)B * T * sizeof(int)), *tg = malloc((size_t)B * T * sizeof(int));
    uint64_t s = 1;
    for (int i = 0; i < B * T; i++) {
        in[i] = (int)(tu_rng(&s) % (uint64_t)c.vocab_size);
        tg[i] = (int)(tu_rng(&s) % (uint64_t)c.vocab_size);
    }
    size_t n_full, n_svf;
    t2_train_trainable(full, &n_full);
    t2_train_trainable(svf, &n_svf);
    printf("t2-bench-train: dim %d hidden %d layers %d heads %d/%d vocab %d, batch %d x %d = %d "
           "tokens, median of %d steps (SVD of the %d MLP matrices: %.2f s, not timed)\n",
           c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, B, T, B * T,
           steps, fac.n, t_svd);
    printf("%-7s %-5s %12s %12s %10s %12s\n", "threads", "mode", "ms/step", "tokens/s",
           "vs full", "trainable");
    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv)
        fprintf(csv, "threads,mode,ms_per_step,tokens_per_s,ratio_to_full,trainable,dim,hidden,"
                     "layers,B,T\n");
    for (int th = 1; th <= 2; th++) {
        t2_pool *pool;
        if (t2_pool_new(&pool, th) < 0) {
            fprintf(stderr, "t2-bench-train: %s\n", t2_err_msg());
            return 1;
        }
        double tf = time_steps(full, pool, in, tg, B, T, steps);
        double ts = time_steps(svf, pool, in, tg, B, T, steps);
        struct { const char *mode; double t; size_t n; } rows[2] = {{"full", tf, n_full},
                                                                    {"svf", ts, n_svf}};
        for (int r = 0; r < 2; r++) {
            printf("%-7d %-5s %12.1f %12.0f %10.2f %12zu\n", th, rows[r].mode, rows[r].t * 1e3,
                   B * T / rows[r].t, rows[r].t / tf, rows[r].n);
            if (csv)
                fprintf(csv, "%d,%s,%.3f,%.1f,%.4f,%zu,%d,%d,%d,%d,%d\n", th, rows[r].mode,
                        rows[r].t * 1e3, B * T / rows[r].t, rows[r].t / tf, rows[r].n, c.dim,
                        c.hidden_dim, c.n_layers, B, T);
        }
        t2_pool_destroy(&pool);
    }
    if (csv) fclose(csv);
    tu_factors_free(&fac);
    free(in);
    free(tg);
    t2_train_destroy(&full);
    t2_train_destroy(&svf);
    t2_model_destroy(&m);
    return 0;
}
