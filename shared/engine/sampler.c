#include "engine/sampler.h"

#include "base/rng.h"
#include "engine/kernels.h"
#include "base/t2_err.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float p;
    int i;
} prob_index;

struct t2_sampler {
    int vocab;
    float temperature, top_p;
    uint64_t rng;
    prob_index *cand; /* (V) top-p candidates */
};

int t2_sampler_new(t2_sampler **out, int vocab_size, float temperature, float top_p,
                   uint64_t seed) {
    *out = NULL;
    t2_sampler *s = calloc(1, sizeof *s);
    if (!s) return t2_err_set(T2_ENOMEM, "out of memory");
    s->vocab = vocab_size;
    s->temperature = temperature;
    s->top_p = top_p;
    s->rng = seed ? seed : 0x853c49e6748fea9bull; /* xorshift needs a non-zero state */
    s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    if (!s->cand) {
        t2_sampler_destroy(&s);
        return t2_err_set(T2_ENOMEM, "out of memory (sampler of %d tokens)", vocab_size);
    }
    *out = s;
    return T2_OK;
}

void t2_sampler_destroy(t2_sampler **sp) {
    if (!sp || !*sp) return;
    free((*sp)->cand);
    free(*sp);
    *sp = NULL;
}

int t2_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* [0, 1) from the upper 24 bits of a xorshift64* draw */
static float rng_f32(uint64_t *s) { return (float)(t2_xorshift64s(s) >> 40) / 16777216.0f; }

/* a goes before b: higher probability first, then the lower token id - the order a stable sort
 * of the candidates (collected in id order) by probability gives. */
static int cand_before(prob_index a, prob_index b) {
    return a.p > b.p || (a.p == b.p && a.i < b.i);
}

static void sift_down(prob_index *c, int root, int n) {
    for (;;) {
        int child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && cand_before(c[child], c[child + 1])) child++;
        if (!cand_before(c[root], c[child])) return;
        prob_index t = c[root];
        c[root] = c[child];
        c[child] = t;
        root = child;
    }
}

/* Heap sort in place: no allocation per token (glibc's qsort mallocs above 1 KiB). The order
 * is total, so the result is the same as any correct sort's. */
static void sort_cands(prob_index *c, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(c, i, n);
    for (int end = n - 1; end > 0; end--) {
        prob_index t = c[0];
        c[0] = c[end];
        c[end] = t;
        sift_down(c, 0, end);
    }
}

int t2_sample(t2_sampler *s, float *logits) {
    const int n = s->vocab;
    if (s->temperature == 0.0f) return t2_argmax(logits, n);
    for (int i = 0; i < n; i++) logits[i] /= s->temperature;
    t2_softmax(logits, n);
    float coin = rng_f32(&s->rng);
    if (s->top_p <= 0.0f || s->top_p >= 1.0f) {
        float cdf = 0;
        for (int i = 0; i < n; i++) {
            cdf += logits[i];
            if (coin < cdf) return i;
        }
        return n - 1; /* rounding */
    }
    /* Tokens below (1 - top_p) / (n - 1) cannot be in the nucleus: skip them before sorting. */
    const float cutoff = (1.0f - s->top_p) / (float)(n - 1);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (logits[i] >= cutoff) s->cand[k++] = (prob_index){logits[i], i};
    if (k == 0) return t2_argmax(logits, n);
    sort_cands(s->cand, k);
    float cum = 0;
    int last = k - 1;
    for (int i = 0; i < k; i++) {
        cum += s->cand[i].p;
        if (cum > s->top_p) {
            last = i;
            break;
        }
    }
    float r = coin * cum, cdf = 0;
    for (int i = 0; i <= last; i++) {
        cdf += s->cand[i].p;
        if (r < cdf) return s->cand[i].i;
    }
    return s->cand[last].i;
}
