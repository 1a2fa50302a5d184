/* wk_split.c - which layers each rank of a worker group runs. */
#include "wk.h"

#include "base/t2_err.h"

#include <stdlib.h>

static size_t mat_bytes(const t2_mat *w) {
    return (size_t)w->rows * t2_dtype_row_bytes(w->type, w->cols);
}

size_t wk_layer_bytes(const t2_model *m, int l) {
    const t2_layer *ly = &m->layers[l];
    return mat_bytes(&ly->wq) + mat_bytes(&ly->wk) + mat_bytes(&ly->wv) + mat_bytes(&ly->wo) +
           mat_bytes(&ly->w_gate) + mat_bytes(&ly->w_up) + mat_bytes(&ly->w_down);
}

/* Minimise the largest rank cost over contiguous splits (dynamic programming over prefixes:
 * best[r][l] = the smallest possible maximum when ranks 0..r-1 hold layers 0..l-1). The
 * embedding costs one row per token and is left out; the tail pays for the classifier. */
int wk_split_layers(const t2_model *m, int P, int *first) {
    const int L = m->cfg.n_layers;
    if (P < 1 || P > L)
        return t2_err_set(T2_EINVAL,
                          "a group of %d ranks cannot split the model's %d layers "
                          "(at most one rank per layer)",
                          P, L);
    double *pre = calloc((size_t)L + 1, sizeof *pre);
    double *best = malloc((size_t)(P + 1) * (L + 1) * sizeof *best);
    int *cut = malloc((size_t)(P + 1) * (L + 1) * sizeof *cut);
    if (!pre || !best || !cut) {
        free(pre);
        free(best);
        free(cut);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    for (int l = 0; l < L; l++)
        pre[l + 1] = pre[l] + (double)wk_layer_bytes(m, l);
    const double head = (double)mat_bytes(&m->output);
#define B(r, l) best[(size_t)(r) * (L + 1) + (l)]
#define C(r, l) cut[(size_t)(r) * (L + 1) + (l)]
    for (int r = 0; r <= P; r++)
        for (int l = 0; l <= L; l++)
            B(r, l) = 1e300;
    B(0, 0) = 0;
    for (int r = 1; r <= P; r++)
        for (int l = r; l <= L - (P - r); l++)
            for (int k = r - 1; k < l; k++) { /* rank r-1 takes layers k..l-1 */
                double cost = pre[l] - pre[k] + (r == P ? head : 0);
                double v = B(r - 1, k) > cost ? B(r - 1, k) : cost;
                if (v < B(r, l)) {
                    B(r, l) = v;
                    C(r, l) = k;
                }
            }
    first[P] = L;
    for (int r = P, l = L; r >= 1; r--) {
        first[r - 1] = C(r, l);
        l = first[r - 1];
    }
#undef B
#undef C
    free(pre);
    free(best);
    free(cut);
    return 0;
}
