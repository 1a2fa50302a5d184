/* lora.c - rank-r adapters over a full-weight trainer (see lora.h for the method). */
#include "train/lora.h"

#include "base/rng.h"
#include "base/t2_err.h"
#include "train/train_internal.h"
#include "train/train_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct lora_target {
    int layer, kind, rows, cols;
    float *W;        /* the trainer's matrix (W0 + scale B A) */
    float *dW;       /* its dense gradient */
    float *W0;       /* base copy */
    float *A, *B;    /* (r, cols), (rows, r) in the parameter block */
    float *dA, *dB;  /* in the gradient block */
} lora_target;

struct t2_lora {
    t2_train *tr;
    int rank, n;
    float scale;
    lora_target *t;
    float *params, *grads, *m, *v, *base;
    size_t n_params;
    int64_t steps;
};

int t2_lora_new(t2_lora **out, t2_train *tr, unsigned targets, int rank, float alpha,
                uint64_t seed) {
    *out = NULL;
    if (t2_train_svf_active(tr))
        return t2_err_set(T2_EINVAL, "LoRA: the trainer is in SVF mode");
    if (!targets || (targets & ~T2_TARGETS_ALL))
        return t2_err_set(T2_EINVAL, "LoRA: no valid target matrices (mask 0x%x)", targets);
    const t2_config *c = t2_train_config(tr);
    const int L = c->n_layers;
    int n = 0;
    size_t np = 0, nb = 0;
    for (int k = 0; k < T2_N_TARGETS; k++) {
        if (!(targets & (1u << k))) continue;
        int rows, cols;
        t2_train_mat_shape(c, k, &rows, &cols);
        if (rank < 1 || rank > (rows < cols ? rows : cols))
            return t2_err_set(T2_EINVAL, "LoRA: rank %d is outside 1..%d for %s (%d x %d)", rank,
                              rows < cols ? rows : cols, t2_target_name(k), rows, cols);
        n += L;
        np += (size_t)L * rank * (rows + cols);
        nb += (size_t)L * rows * cols;
    }
    t2_lora *lo = calloc(1, sizeof *lo);
    if (!lo) return t2_err_set(T2_ENOMEM, "out of memory");
    lo->tr = tr;
    lo->rank = rank;
    lo->n = n;
    lo->scale = (alpha > 0 ? alpha : (float)rank) / (float)rank;
    lo->n_params = np;
    lo->t = calloc((size_t)n, sizeof *lo->t);
    lo->params = calloc(np, sizeof(float));
    lo->grads = calloc(np, sizeof(float));
    lo->m = calloc(np, sizeof(float));
    lo->v = calloc(np, sizeof(float));
    lo->base = malloc(nb * sizeof(float));
    if (!lo->t || !lo->params || !lo->grads || !lo->m || !lo->v || !lo->base) {
        t2_lora_destroy(&lo);
        return t2_err_set(T2_ENOMEM, "out of memory for LoRA adapters (%zu numbers)", np);
    }
    t2_rand rng;
    t2_rand_seed(&rng, seed);
    size_t po = 0, bo = 0;
    int i = 0;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            if (!(targets & (1u << k))) continue;
            lora_target *t = &lo->t[i++];
            t->layer = l;
            t->kind = k;
            t2_train_mat_shape(c, k, &t->rows, &t->cols);
            t->W = t2_train_mat_ptr(t2_train_params_of(tr), c, l, k);
            t->dW = t2_train_mat_ptr(t2_train_grads_of(tr), c, l, k);
            t->W0 = lo->base + bo;
            bo += (size_t)t->rows * t->cols;
            memcpy(t->W0, t->W, (size_t)t->rows * t->cols * sizeof(float));
            t->A = lo->params + po;
            t->dA = lo->grads + po;
            po += (size_t)rank * t->cols;
            t->B = lo->params + po;
            t->dB = lo->grads + po;
            po += (size_t)t->rows * rank;
            const double bound = 1.0 / sqrt((double)t->cols);
            for (size_t q = 0; q < (size_t)rank * t->cols; q++)
                t->A[q] = (float)((2.0 * t2_rand_unif(&rng) - 1.0) * bound);
        }
    *out = lo;
    return 0;
}

void t2_lora_destroy(t2_lora **lop) {
    t2_lora *lo = lop ? *lop : NULL;
    if (!lo) return;
    free(lo->t);
    free(lo->params);
    free(lo->grads);
    free(lo->m);
    free(lo->v);
    free(lo->base);
    free(lo);
    *lop = NULL;
}

void t2_lora_apply(t2_lora *lo, t2_pool *pool) {
    for (int i = 0; i < lo->n; i++) {
        lora_target *t = &lo->t[i];
        memcpy(t->W, t->W0, (size_t)t->rows * t->cols * sizeof(float));
        /* W (rows, cols) += scale * B (rows, r) A (r, cols) */
        t2_tk_gemm(pool, 0, 0, t->rows, t->cols, lo->rank, lo->scale, t->B, lo->rank, t->A,
                   t->cols, 1.0f, t->W, t->cols);
    }
}

void t2_lora_grads(t2_lora *lo, t2_pool *pool) {
    for (int i = 0; i < lo->n; i++) {
        lora_target *t = &lo->t[i];
        /* dA (r, cols) += scale * B^T (r, rows) dW (rows, cols) */
        t2_tk_gemm(pool, 1, 0, lo->rank, t->cols, t->rows, lo->scale, t->B, lo->rank, t->dW,
                   t->cols, 1.0f, t->dA, t->cols);
        /* dB (rows, r) += scale * dW (rows, cols) A^T (cols, r) */
        t2_tk_gemm(pool, 0, 1, t->rows, lo->rank, t->cols, lo->scale, t->dW, t->cols, t->A,
                   t->cols, 1.0f, t->dB, lo->rank);
    }
}

void t2_lora_zero_grad(t2_lora *lo) { memset(lo->grads, 0, lo->n_params * sizeof(float)); }

float *t2_lora_params(t2_lora *lo, size_t *n) {
    if (n) *n = lo->n_params;
    return lo->params;
}

float *t2_lora_grads_buf(t2_lora *lo, size_t *n) {
    if (n) *n = lo->n_params;
    return lo->grads;
}

float t2_lora_clip_grad(t2_lora *lo, float max_norm) {
    float norm = (float)sqrt(t2_tk_sumsq(lo->grads, lo->n_params));
    if (max_norm > 0 && norm > max_norm)
        t2_tk_scale(lo->grads, max_norm / (norm + 1e-6f), lo->n_params);
    return norm;
}

int t2_lora_update(t2_lora *lo, float lr, const t2_adamw_opts *o) {
    if (!isfinite(lr) || lr < 0)
        return t2_err_set(T2_EINVAL, "LoRA: bad learning rate %g", (double)lr);
    lo->steps++;
    t2_tk_adamw(lo->params, lo->grads, lo->m, lo->v, lo->n_params, lr, o->beta1, o->beta2, o->eps,
                o->weight_decay, (long)lo->steps);
    return 0;
}
