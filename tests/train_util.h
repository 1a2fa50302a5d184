/* train_util.h - helpers shared by the training tests and bench/train.c: SVD factors of a
 * trainer's target matrices (LAPACKE_sgesdd, as the svf module does it) and a small RNG. */
#ifndef T2_TRAIN_UTIL_H
#define T2_TRAIN_UTIL_H

#include "train/train.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct tu_factors {
    int n;
    t2_svf_factors *f;
    float *mem;
} tu_factors;

static inline void tu_factors_free(tu_factors *t) {
    free(t->f);
    free(t->mem);
    memset(t, 0, sizeof *t);
}

/* SVD of every matrix of `targets` in the trainer's (F32) parameters. Returns 0 or -1. */
static inline int tu_factors_compute(tu_factors *out, t2_train *tr, unsigned targets) {
    const t2_config *c = t2_train_config(tr);
    int n_tensors = t2_train_n_tensors(tr), n = 0;
    size_t floats = 0;
    memset(out, 0, sizeof *out);
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++)
            if ((targets >> k) & 1) n++;
    out->f = calloc((size_t)n, sizeof *out->f);
    if (!out->f) return -1;
    /* find the tensors by name */
    int i = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < T2_N_TARGETS; k++) {
            if (!((targets >> k) & 1)) continue;
            t2_svf_factors *f = &out->f[i++];
            f->layer = l;
            f->kind = k;
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, t2_target_name(k));
            for (int j = 0; j < n_tensors; j++) {
                t2_train_tensor t;
                t2_train_tensor_at(tr, j, &t);
                if (strcmp(t.name, name)) continue;
                f->rows = t.rows;
                f->cols = t.cols;
                f->rank = t.rows < t.cols ? t.rows : t.cols;
            }
            floats += (size_t)f->rank * (f->rows + f->cols + 1);
        }
    out->n = n;
    out->mem = malloc(floats * sizeof(float));
    if (!out->mem) return -1;
    float *p = out->mem;
    for (i = 0; i < n; i++) {
        t2_svf_factors *f = &out->f[i];
        char name[64];
        snprintf(name, sizeof name, "blk.%d.%s.weight", f->layer, t2_target_name(f->kind));
        const float *W = NULL;
        for (int j = 0; j < n_tensors; j++) {
            t2_train_tensor t;
            t2_train_tensor_at(tr, j, &t);
            if (!strcmp(t.name, name)) W = t.param;
        }
        int r = f->rank;
        float *U = p, *S = U + (size_t)f->rows * r, *Vt = S + r;
        p = Vt + (size_t)r * f->cols;
        float *a = malloc((size_t)f->rows * f->cols * sizeof(float));
        if (!a || !W) {
            free(a);
            return -1;
        }
        memcpy(a, W, (size_t)f->rows * f->cols * sizeof(float));
        lapack_int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'S', f->rows, f->cols, a, f->cols, S,
                                         U, r, Vt, f->cols);
        free(a);
        if (info != 0) return -1;
        f->U = U;
        f->s = S;
        f->Vt = Vt;
    }
    return 0;
}

/* xorshift64* and a Box-Muller normal */
static inline uint64_t tu_rng(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}
static inline float tu_uniform(uint64_t *s) { return (float)((tu_rng(s) >> 40) / 16777216.0); }
static inline float tu_normal(uint64_t *s) {
    double u1 = ((tu_rng(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (tu_rng(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

#endif
