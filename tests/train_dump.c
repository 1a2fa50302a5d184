/* train_dump.c - run one forward + backward of the trainer on a fixed random batch and dump
 * everything grad_check.py needs to redo it in PyTorch.
 *
 *   train_dump MODEL OUTDIR [--B n] [--T n] [--seed n] [--svf mlp|all] [--act sigmoid|linear]
 *              [--max-mult x] [--threads n]
 *
 * OUTDIR gets:
 *   batch.txt          "B T norm loss" then per row "input target weight"
 *   manifest.txt       full mode: "grad NAME rows cols FILE" per tensor
 *                      SVF mode: "svf LAYER KIND rows cols rank PREFIX" per target
 *   *.f32              raw little-endian float32 arrays (row-major)
 * Weights (per token) include zeros, negatives and ignored targets (-1), as REINFORCE uses them.
 */
#include "base/t2_err.h"
#include "train/train.h"
#include "train_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_f32(const char *dir, const char *name, const float *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "train_dump: cannot write %s\n", path);
        return -1;
    }
    size_t w = fwrite(p, sizeof(float), n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: train_dump MODEL OUTDIR [--B n] [--T n] [--seed n] "
                        "[--svf mlp|all] [--act sigmoid|linear] [--max-mult x] [--threads n]\n");
        return 2;
    }
    const char *model_path = argv[1], *dir = argv[2];
    int B = 3, T = 7, threads = 2;
    uint64_t seed = 7;
    unsigned svf_targets = 0;
    t2_svf_opts so;
    t2_svf_opts_default(&so);
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--B")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--T")) T = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-mult")) so.max_mult = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--act"))
            so.act = !strcmp(argv[i + 1], "linear") ? T2_SVF_ACT_LINEAR : T2_SVF_ACT_SIGMOID;
        else if (!strcmp(argv[i], "--svf"))
            svf_targets = !strcmp(argv[i + 1], "all") ? (T2_TARGETS_MLP | T2_TARGETS_ATTN)
                                                      : T2_TARGETS_MLP;
        else {
            fprintf(stderr, "train_dump: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    t2_model *m = NULL;
    t2_train *tr = NULL;
    t2_pool *pool = NULL;
    if (threads > 1 && t2_pool_new(&pool, threads) < 0) {
        fprintf(stderr, "train_dump: %s\n", t2_err_msg());
        return 1;
    }
    tu_factors fac = {0};
    int rc = 1;
    if (t2_model_load(&m, model_path) < 0 || t2_train_from_model(&tr, m, B, T) < 0) {
        fprintf(stderr, "train_dump: %s\n", t2_err_msg());
        goto out;
    }
    const t2_config *c = t2_train_config(tr);
    const int N = B * T, V = c->vocab_size;
    int *in = malloc(N * sizeof(int)), *tg = malloc(N * sizeof(int));
    float *w = malloc(N * sizeof(float));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int t = 0; t < N; t++) {
        in[t] = (int)(tu_rng(&s) % (uint64_t)V);
        tg[t] = (int)(tu_rng(&s) % (uint64_t)V);
        if (t % 5 == 3) tg[t] = -1;                /* ignored */
        w[t] = -1.0f + 3.0f * tu_uniform(&s);      /* rewards in [-1, 2) */
        if (t % 7 == 2) w[t] = 0.0f;               /* masked */
    }
    if (svf_targets) {
        so.targets = svf_targets;
        if (tu_factors_compute(&fac, tr, svf_targets) < 0 ||
            t2_train_svf_enable(tr, &so, fac.f, fac.n) < 0) {
            fprintf(stderr, "train_dump: SVF setup: %s\n", t2_err_msg());
            goto out2;
        }
        /* p away from uniform so that every term of the chain rule matters */
        for (int i = 0; i < t2_train_svf_n_targets(tr); i++) {
            t2_svf_target *t = t2_train_svf_target(tr, i);
            for (int k = 0; k < t->f.rank; k++)
                t->p[k] = (so.act == T2_SVF_ACT_LINEAR ? 1.0f : 0.1f) + 0.5f * tu_normal(&s);
        }
    }
    float norm = (float)N, loss;
    t2_train_zero_grad(tr);
    if (t2_train_forward(tr, pool, in, tg, w, B, T, norm, &loss) < 0 ||
        t2_train_backward(tr, pool) < 0) {
        fprintf(stderr, "train_dump: %s\n", t2_err_msg());
        goto out2;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/batch.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) goto out2;
    fprintf(f, "%d %d %.9g %.9g\n", B, T, (double)norm, (double)loss);
    for (int t = 0; t < N; t++) fprintf(f, "%d %d %.9g\n", in[t], tg[t], (double)w[t]);
    fclose(f);
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    f = fopen(path, "w");
    if (!f) goto out2;
    int bad = 0;
    if (!svf_targets) {
        for (int i = 0; i < t2_train_n_tensors(tr); i++) {
            t2_train_tensor t;
            t2_train_tensor_at(tr, i, &t);
            char file[96];
            snprintf(file, sizeof file, "grad.%s.f32", t.name);
            fprintf(f, "grad %s %d %d %s\n", t.name, t.rows, t.cols, file);
            bad |= write_f32(dir, file, t.grad, (size_t)t.rows * t.cols);
        }
    } else {
        fprintf(f, "act %s %.9g\n", so.act == T2_SVF_ACT_LINEAR ? "linear" : "sigmoid",
                (double)so.max_mult);
        for (int i = 0; i < t2_train_svf_n_targets(tr); i++) {
            t2_svf_target *t = t2_train_svf_target(tr, i);
            char pre[64], file[96];
            snprintf(pre, sizeof pre, "svf.%d.%s", t->f.layer, t2_target_name(t->f.kind));
            fprintf(f, "svf %d %s %d %d %d %s\n", t->f.layer, t2_target_name(t->f.kind),
                    t->f.rows, t->f.cols, t->f.rank, pre);
            const int r = t->f.rank;
            snprintf(file, sizeof file, "%s.U.f32", pre);
            bad |= write_f32(dir, file, t->f.U, (size_t)t->f.rows * r);
            snprintf(file, sizeof file, "%s.s.f32", pre);
            bad |= write_f32(dir, file, t->f.s, (size_t)r);
            snprintf(file, sizeof file, "%s.Vt.f32", pre);
            bad |= write_f32(dir, file, t->f.Vt, (size_t)r * t->f.cols);
            snprintf(file, sizeof file, "%s.p.f32", pre);
            bad |= write_f32(dir, file, t->p, (size_t)r);
            snprintf(file, sizeof file, "%s.dp.f32", pre);
            bad |= write_f32(dir, file, t->dp, (size_t)r);
        }
    }
    fclose(f);
    if (!bad) rc = 0;
out2:
    free(in);
    free(tg);
    free(w);
out:
    tu_factors_free(&fac);
    t2_train_destroy(&tr);
    t2_model_destroy(&m);
    t2_pool_destroy(&pool);
    return rc;
}
