/* test_workers.c - pieces of the worker group (workers/) that need no MPI processes:
 *   split   wk_split_layers against a brute force over every contiguous split (the largest
 *           per-rank bytes per token must be the smallest possible), on models made of
 *           matrices of mixed types and shapes; the classifier on the last rank; bad sizes.
 *   open    the pipeline's OPEN body: pack -> unpack gives back every field, name and alpha
 *           bit; every truncation, extra bytes and inconsistent counts are refused with a
 *           message (and nothing allocated).
 */
#include "wk.h"

#include "base/t2_err.h"
#include "t2_test.h"

#include <stdint.h>

/* ---- split ---------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) { /* xorshift64*, uniform enough for shapes */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 33) % n;
}

static t2_mat rand_mat(void) {
    static const t2_dtype types[] = {T2_F32, T2_F16, T2_BF16, T2_Q8_0};
    t2_mat w = {0};
    w.type = types[rnd(4)];
    w.rows = 1 + (int)rnd(200);
    w.cols = 32 * (1 + (int)rnd(8)); /* Q8_0 rows are whole blocks of 32 */
    return w;
}

/* A model with only the shapes the split reads (no weights). */
static void make_model(t2_model *m, int L) {
    memset(m, 0, sizeof *m);
    m->cfg.n_layers = L;
    m->layers = calloc((size_t)L, sizeof *m->layers);
    for (int l = 0; l < L; l++) {
        t2_layer *y = &m->layers[l];
        t2_mat *ws[7] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
        for (int i = 0; i < 7; i++) *ws[i] = rand_mat();
    }
    m->output = rand_mat();
}

/* Bytes read per token, computed here from the shapes: per element for float types, 34 bytes
 * per block of 32 for Q8_0 (a half scale and 32 int8). */
static double mat_cost(const t2_mat *w) {
    double per_row = w->type == T2_F32 ? 4.0 * w->cols
                     : w->type == T2_Q8_0 ? 34.0 * (w->cols / 32)
                                          : 2.0 * w->cols;
    return per_row * w->rows;
}

static double layer_cost(const t2_model *m, int l) {
    const t2_layer *y = &m->layers[l];
    return mat_cost(&y->wq) + mat_cost(&y->wk) + mat_cost(&y->wv) + mat_cost(&y->wo) +
           mat_cost(&y->w_gate) + mat_cost(&y->w_up) + mat_cost(&y->w_down);
}

/* The largest rank cost of a split (first has P + 1 entries). */
static double split_max(const t2_model *m, const int *first, int P) {
    double worst = 0;
    for (int r = 0; r < P; r++) {
        double c = r == P - 1 ? mat_cost(&m->output) : 0;
        for (int l = first[r]; l < first[r + 1]; l++) c += layer_cost(m, l);
        if (c > worst) worst = c;
    }
    return worst;
}

/* The best largest cost over every split of layers l..L-1 to ranks r..P-1 (first[0..r] set). */
static double brute(const t2_model *m, int *first, int r, int P) {
    const int L = m->cfg.n_layers;
    if (r == P) return first[P] == L ? split_max(m, first, P) : 1e300;
    double best = 1e300;
    for (int end = first[r] + 1; end <= L - (P - 1 - r); end++) {
        first[r + 1] = end;
        double v = brute(m, first, r + 1, P);
        if (v < best) best = v;
    }
    return best;
}

static void test_split_optimal(void) {
    int cases = 0;
    for (int L = 1; L <= 9; L++)
        for (int rep = 0; rep < 4; rep++) {
            t2_model m;
            make_model(&m, L);
            for (int l = 0; l < L; l++)
                T2_CHECK_NEAR((double)wk_layer_bytes(&m, l), layer_cost(&m, l), 0);
            for (int P = 1; P <= L; P++) {
                int first[16], tmp[16] = {0};
                memset(first, 0xff, sizeof first);
                int rc = wk_split_layers(&m, P, first);
                T2_CHECK_MSG(rc == 0, "L %d P %d: %s", L, P, t2_err_msg());
                if (rc < 0) continue;
                T2_CHECK_EQ_INT(first[0], 0);
                T2_CHECK_EQ_INT(first[P], L);
                for (int r = 0; r < P; r++)
                    T2_CHECK_MSG(first[r] < first[r + 1], "L %d P %d: rank %d has no layer", L,
                                 P, r);
                double want = brute(&m, tmp, 0, P);
                T2_CHECK_MSG(split_max(&m, first, P) == want, "L %d P %d: %.0f vs best %.0f", L,
                             P, split_max(&m, first, P), want);
                cases++;
            }
            free(m.layers);
        }
    T2_CHECK_EQ_INT(cases, 4 * 45);
}

/* Equal layers: an even split; a heavy classifier pushes layers off the last rank. */
static void test_split_shapes(void) {
    t2_model m;
    make_model(&m, 8);
    for (int l = 0; l < 8; l++) {
        t2_layer *y = &m.layers[l];
        t2_mat *ws[7] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
        for (int i = 0; i < 7; i++) *ws[i] = (t2_mat){.type = T2_F32, .rows = 10, .cols = 32};
    }
    const double layer = 7 * 10 * 32 * 4.0;
    m.output = (t2_mat){.type = T2_F32, .rows = 1, .cols = 32}; /* next to nothing */
    int first[9];
    T2_CHECK(wk_split_layers(&m, 4, first) == 0);
    for (int r = 0; r <= 4; r++) T2_CHECK_EQ_INT(first[r], 2 * r);
    /* a classifier worth 2.5 layers: the tail keeps 1 layer, the others share 7 */
    m.output = (t2_mat){.type = T2_F32, .rows = (int)(2.5 * layer / 128), .cols = 32};
    T2_CHECK(wk_split_layers(&m, 3, first) == 0);
    T2_CHECK_EQ_INT(first[3] - first[2], 1);
    T2_CHECK_NEAR(split_max(&m, first, 3), 4 * layer, 0);
    T2_CHECK(wk_split_layers(&m, 1, first) == 0 && first[0] == 0 && first[1] == 8);
    /* one rank per layer at most; at least one rank */
    T2_CHECK_EQ_INT(wk_split_layers(&m, 9, first), T2_EINVAL);
    T2_CHECK_MSG(strstr(t2_err_msg(), "9 ranks") && strstr(t2_err_msg(), "8 layers"), "'%s'",
                 t2_err_msg());
    T2_CHECK_EQ_INT(wk_split_layers(&m, 0, first), T2_EINVAL);
    T2_CHECK_EQ_INT(wk_split_layers(&m, -3, first), T2_EINVAL);
    free(m.layers);
}

/* ---- OPEN ----------------------------------------------------------------------------------- */

static void fill_mix(wk_mix *mix, wk_open *o, int n, int per) {
    memset(mix, 0, sizeof *mix);
    memset(o, 0, sizeof *o);
    mix->n = n;
    mix->per_matrix = !!per;
    mix->n_alpha = per ? n * per : n;
    mix->alpha = n ? malloc((size_t)mix->n_alpha * sizeof(float)) : NULL;
    for (int i = 0; i < mix->n_alpha; i++) mix->alpha[i] = (float)(i * 0.37 - 3.1);
    if (mix->n_alpha) mix->alpha[0] = -0.0f; /* a bit pattern, not only a value */
    for (int i = 0; i < n; i++) {
        if (i == n - 1) { /* the longest name there is */
            memset(mix->names[i], 'z', WK_NAME_MAX);
            mix->names[i][WK_NAME_MAX] = 0;
        } else {
            snprintf(mix->names[i], sizeof mix->names[i], "expert-%d", i);
        }
    }
    o->kind = WK_KIND_CLASSIFY;
    o->apply = 1;
    o->n_experts = n;
    o->per_matrix = mix->per_matrix;
    o->n_alpha = mix->n_alpha;
    o->temperature = 0.7f;
    o->top_p = 0.9f;
    o->seed = 0x0123456789abcdefull;
}

static void check_roundtrip(int n, int per) {
    wk_open o, o2;
    wk_mix mix, back;
    fill_mix(&mix, &o, n, per);
    size_t len = wk_open_size(&o);
    char *body = malloc(len);
    memset(body, 0xa5, len);
    wk_open_pack(body, &o, &mix);
    int rc = wk_open_unpack(body, len, &o2, &back);
    T2_CHECK_MSG(rc == 0, "%d experts, per %d: %s", n, per, t2_err_msg());
    if (rc == 0) {
        T2_CHECK(!memcmp(&o, &o2, sizeof o));
        T2_CHECK_EQ_INT(back.n, n);
        T2_CHECK_EQ_INT(back.per_matrix, mix.per_matrix);
        T2_CHECK_EQ_INT(back.n_alpha, mix.n_alpha);
        for (int i = 0; i < n; i++)
            T2_CHECK_MSG(!strcmp(back.names[i], mix.names[i]), "name %d: '%s'", i,
                         back.names[i]);
        T2_CHECK(n ? back.alpha && !memcmp(back.alpha, mix.alpha, (size_t)mix.n_alpha * 4)
                   : back.alpha == NULL);
    }
    wk_mix_free(&back);
    wk_mix_free(&mix);
    free(body);
}

static void test_open_roundtrip(void) {
    check_roundtrip(0, 0); /* base weights */
    check_roundtrip(1, 0);
    check_roundtrip(3, 0);
    check_roundtrip(2, 4 * T2_N_TARGETS); /* per matrix: 4 layers */
    check_roundtrip(WK_MIX_MAX, 0);
}

/* Unpack must fail with T2_EPROTO, a message containing `want`, and mix->alpha NULL. */
static void expect_bad(const void *body, size_t len, const char *want, const char *what) {
    wk_open o;
    wk_mix mix;
    memset(&mix, 0x5a, sizeof mix);
    t2_err_clear();
    int rc = wk_open_unpack(body, len, &o, &mix);
    T2_CHECK_MSG(rc == T2_EPROTO, "%s: rc %d", what, rc);
    T2_CHECK_MSG(strstr(t2_err_msg(), "OPEN") && strstr(t2_err_msg(), want), "%s: '%s'", what,
                 t2_err_msg());
    T2_CHECK_MSG(mix.alpha == NULL, "%s: alpha left allocated", what);
    if (rc == 0) wk_mix_free(&mix);
}

static void test_open_bad(void) {
    wk_open o;
    wk_mix mix;
    fill_mix(&mix, &o, 3, 0);
    size_t len = wk_open_size(&o);
    char *body = calloc(1, len + 64);
    wk_open_pack(body, &o, &mix);
    /* every truncation */
    for (size_t k = 0; k < len; k++) {
        char what[64];
        snprintf(what, sizeof what, "%zu of %zu bytes", k, len);
        expect_bad(body, k, "bytes", what);
    }
    /* trailing bytes */
    expect_bad(body, len + 1, "expected", "one byte more");
    expect_bad(body, len + 64, "expected", "64 bytes more");
    /* counts that do not fit the body or each other; the header is patched in place */
    struct {
        int n_experts, n_alpha, per_matrix, kind;
        float temperature;
        const char *want;
    } bad[] = {
        {WK_MIX_MAX + 1, WK_MIX_MAX + 1, 0, 0, 0.7f, "experts"},
        {-1, -1, 0, 0, 0.7f, "experts"},
        {3, -3, 0, 0, 0.7f, "alphas"},
        {3, 2, 0, 0, 0.7f, "alphas"},
        {3, INT32_MAX, 0, 0, 0.7f, "alphas"},
        {3, 2147483646, 1, 0, 0.7f, "bytes"}, /* 3 x 715827882: consistent, too big */
        {3, 3 * 1000000, 1, 0, 0.7f, "bytes"},
        {0, 0, 1, 0, 0.7f, "alphas"},
        {3, 3, 2, 0, 0.7f, "per_matrix"},
        {3, 3, 0, 7, 0.7f, "kind"},
        {3, 3, 0, 0, NAN, "temperature"},
        {3, 3, 0, 0, -1.0f, "temperature"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wk_open h = o;
        h.n_experts = bad[i].n_experts;
        h.n_alpha = bad[i].n_alpha;
        h.per_matrix = bad[i].per_matrix;
        h.kind = bad[i].kind;
        h.temperature = bad[i].temperature;
        memcpy(body, &h, sizeof h);
        char what[64];
        snprintf(what, sizeof what, "case %zu", i);
        expect_bad(body, len, bad[i].want, what);
    }
    /* a name without its NUL comes back cut at WK_NAME_MAX */
    memcpy(body, &o, sizeof o);
    memset(body + sizeof o, 'q', WK_NAME_MAX + 1);
    wk_open o2;
    wk_mix back;
    T2_CHECK(wk_open_unpack(body, len, &o2, &back) == 0);
    T2_CHECK_EQ_INT(strlen(back.names[0]), WK_NAME_MAX);
    wk_mix_free(&back);
    wk_mix_free(&mix);
    free(body);
}

int main(void) {
    T2_RUN(test_split_optimal);
    T2_RUN(test_split_shapes);
    T2_RUN(test_open_roundtrip);
    T2_RUN(test_open_bad);
    return T2_TEST_END();
}
