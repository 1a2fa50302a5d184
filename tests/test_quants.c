/* test_quants.c - llama.cpp's quantized formats against llama.cpp itself
 * (../shared/assets/models/kquants: files written by llama-quantize, and the same files turned
 * back into F32 by llama.cpp).
 *
 * - dequantization: every tensor of kq-{q4_0,q4_k_m,q5_k_m,q6_k,q8_0} dequantized by T2 is
 *   bit-identical to llama.cpp's kq-*-deq-f32.gguf;
 * - logits: each quantized file (all eight) run by T2 (prompt batch, then one step) stays within
 *   1e-3 of the logit range of the same model run from F32 weights (llama.cpp's dequantized file
 *   where there is one, else T2's own dequantization written as F32) with the kernels that round
 *   activations to 16 bits (kernels.h), and within LOGIT_TOL_X8 with those that round them to 8
 *   bits (the avx512vnni level, where the CPU has it: GGML's own precision);
 * - T2's quantizers (Q4_0, Q4_K, Q6_K) on kq-f32.gguf: RMS error against llama.cpp's;
 * - a quantized tensor whose row length is not a multiple of its block is rejected, by name.
 */
#include "base/pool.h"
#include "base/t2_err.h"
#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/model.h"
#include "engine/quants.h"
#include "engine/transformer.h"
#include "t2_test.h"

#include <stdint.h>
#include <unistd.h>

#define KQ "models/kquants/"

/* T2's RMS quantization error may be at most this many times llama.cpp's (measured: see the
 * test output). */
#define QRATIO_Q4_0 1.0
#define QRATIO_Q4_K 1.05
#define QRATIO_Q6_K 1.0
#define QRATIO_Q8_0 1.001

static const char *const DEQ_PAIRS[] = {"q4_0", "q4_k_m", "q5_k_m", "q6_k", "q8_0"};
static const char *const ALL_Q[] = {"q4_0", "q4_k_m", "q5_k_m", "q6_k",
                                    "q8_0", "q2_k",   "q3_k_m", "q4_k_s"};

static const char *kq_path(const char *name, const char *suffix) {
    char rel[256];
    snprintf(rel, sizeof rel, KQ "kq-%s%s.gguf", name, suffix);
    return t2_test_asset(rel);
}

/* ---- dequantization parity ---- */

static void check_deq_file(const char *name, unsigned *types_seen) {
    t2_gguf *q = NULL, *f = NULL;
    T2_CHECK(t2_gguf_open(&q, kq_path(name, "")) == 0);
    T2_CHECK(t2_gguf_open(&f, kq_path(name, "-deq-f32")) == 0);
    if (!q || !f) goto out;
    for (int64_t i = 0; i < t2_gguf_n_tensors(q); i++) {
        const t2_gguf_tensor *t = t2_gguf_tensor_at(q, i), *r = t2_gguf_find_tensor(f, t->name);
        T2_CHECK_MSG(r && r->type == T2_F32, "%s: tensor %s has no F32 twin", name, t->name);
        if (!r || r->type != T2_F32) continue;
        int64_t n = (int64_t)(r->nbytes / 4);
        T2_CHECK_EQ_INT(t->nbytes, t2_dtype_row_bytes(t->type, t->ne[0]) * (size_t)(n / t->ne[0]));
        *types_seen |= 1u << t->type;
        float *y = malloc((size_t)n * 4);
        t2_to_f32(y, t->data, t->type, n);
        int64_t bad = 0, first = -1;
        for (int64_t k = 0; k < n; k++)
            if (memcmp(&y[k], (const float *)r->data + k, 4) != 0 && bad++ == 0) first = k;
        T2_CHECK_MSG(
            bad == 0, "%s %s (%s): %lld of %lld values differ, first at %lld: %.9g vs %.9g", name,
            t->name, t2_dtype_name(t->type), (long long)bad, (long long)n, (long long)first,
            first >= 0 ? y[first] : 0.0, first >= 0 ? ((const float *)r->data)[first] : 0.0);
        free(y);
    }
out:
    t2_gguf_close(&q);
    t2_gguf_close(&f);
}

static void test_dequant_bit_identical(void) {
    unsigned seen = 0;
    for (size_t i = 0; i < sizeof DEQ_PAIRS / sizeof DEQ_PAIRS[0]; i++)
        check_deq_file(DEQ_PAIRS[i], &seen);
    /* the files must really contain these formats, or the test checks nothing */
    const t2_dtype want[] = {T2_Q4_0, T2_Q4_K, T2_Q5_K, T2_Q6_K, T2_Q8_0};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        T2_CHECK_MSG(seen & (1u << want[i]), "no %s tensor in the files", t2_dtype_name(want[i]));
}

/* ---- logits ---- */

/* Logit tolerance (of the range) with activations rounded to 8 bits per 32 (measured: 2-5e-3). */
#define LOGIT_TOL_X8 1e-2

static const int PROMPT[] = {1, 37, 105, 12, 260, 7, 481};
#define NP ((int)(sizeof PROMPT / sizeof PROMPT[0]))
#define STEP_TOKEN 99

/* Logits of the prompt (all rows) then one step: (NP + 1) x V floats. */
static float *run_logits(const t2_model *m, t2_pool *pool) {
    int V = m->cfg.vocab_size;
    float *out = malloc((size_t)(NP + 1) * V * 4);
    t2_state *s = NULL;
    int tok = STEP_TOKEN;
    if (t2_state_new(&s, m, NP, 64) < 0 || t2_forward(s, pool, PROMPT, NP, 0, out) < 0 ||
        t2_forward(s, pool, &tok, 1, NP, NULL) < 0) {
        fprintf(stderr, "forward: %s\n", t2_err_msg());
        free(out);
        t2_state_destroy(&s);
        return NULL;
    }
    memcpy(out + (size_t)NP * V, t2_state_logits(s), (size_t)V * 4);
    t2_state_destroy(&s);
    return out;
}

/* max |a - b| over the rows, relative to the range of b (per row). */
static double max_rel_diff(const float *a, const float *b, int rows, int V) {
    double worst = 0;
    for (int r = 0; r < rows; r++) {
        const float *x = a + (size_t)r * V, *y = b + (size_t)r * V;
        float lo = y[0], hi = y[0];
        double d = 0;
        for (int v = 0; v < V; v++) {
            lo = fminf(lo, y[v]);
            hi = fmaxf(hi, y[v]);
            d = fmax(d, fabs((double)x[v] - y[v]));
            if (x[v] != x[v]) d = INFINITY;
        }
        worst = fmax(worst, d / (hi - lo));
    }
    return worst;
}

static void check_logits(const char *name, t2_pool *pool, double tol) {
    t2_model *mq = NULL, *mf = NULL;
    char tmp[64] = "";
    T2_CHECK(t2_model_load(&mq, kq_path(name, "")) == 0);
    if (!mq) return;
    int has_deq = 0;
    for (size_t i = 0; i < sizeof DEQ_PAIRS / sizeof DEQ_PAIRS[0]; i++)
        has_deq |= strcmp(name, DEQ_PAIRS[i]) == 0;
    if (has_deq) {
        T2_CHECK(t2_model_load(&mf, kq_path(name, "-deq-f32")) == 0);
    } else { /* T2's own dequantization, as an F32 file */
        snprintf(tmp, sizeof tmp, "/tmp/t2_test_quants_%d.gguf", (int)getpid());
        T2_CHECK(t2_model_save_gguf(mq, NULL, T2_F32, "deq", tmp) == 0);
        T2_CHECK(t2_model_load(&mf, tmp) == 0);
    }
    float *lq = mf ? run_logits(mq, pool) : NULL, *lf = mf ? run_logits(mf, pool) : NULL;
    T2_CHECK(lq && lf);
    if (lq && lf) {
        double d = max_rel_diff(lq, lf, NP + 1, mq->cfg.vocab_size);
        printf("  %-8s %-5s max |logit - f32 logit| / range = %.2e (%s, %s)\n", name,
               t2_dtype_name(t2_model_dtype(mq)), d, has_deq ? "llama.cpp deq" : "T2 deq",
               t2_kern_level());
        T2_CHECK_MSG(d <= tol, "%s (%s): %.3g", name, t2_kern_level(), d);
    }
    free(lq);
    free(lf);
    t2_model_destroy(&mq);
    t2_model_destroy(&mf);
    if (tmp[0]) unlink(tmp);
}

static void test_logits(void) {
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    /* the best level that rounds x to 16 bits, then the 8-bit level if the CPU has it */
    if (t2_kern_force_level("avx512") != 0 && t2_kern_force_level("avx2") != 0)
        T2_CHECK(t2_kern_force_level("generic") == 0);
    for (size_t i = 0; i < sizeof ALL_Q / sizeof ALL_Q[0]; i++)
        check_logits(ALL_Q[i], pool, 1e-3);
    if (t2_kern_force_level("avx512vnni") == 0)
        for (size_t i = 0; i < sizeof ALL_Q / sizeof ALL_Q[0]; i++)
            check_logits(ALL_Q[i], pool, LOGIT_TOL_X8);
    t2_pool_destroy(&pool);
    t2_kern_free_scratch();
}

/* ---- T2's quantizers against llama.cpp's ---- */

/* Sum of squared errors of T2's quantization (into t) and of llama.cpp's (the deq file) over the
 * matrices of kq-f32 that llama.cpp stored as t in kq-<name>; returns the element count. */
static int64_t quant_errors(t2_dtype t, const char *name, double *e_t2, double *e_ll) {
    t2_gguf *f = NULL, *q = NULL, *d = NULL;
    int64_t count = 0;
    *e_t2 = *e_ll = 0;
    T2_CHECK(t2_gguf_open(&f, t2_test_asset(KQ "kq-f32.gguf")) == 0);
    T2_CHECK(t2_gguf_open(&q, kq_path(name, "")) == 0);
    T2_CHECK(t2_gguf_open(&d, kq_path(name, "-deq-f32")) == 0);
    for (int64_t i = 0; f && q && d && i < t2_gguf_n_tensors(f); i++) {
        const t2_gguf_tensor *x = t2_gguf_tensor_at(f, i);
        const t2_gguf_tensor *tq = t2_gguf_find_tensor(q, x->name);
        const t2_gguf_tensor *td = t2_gguf_find_tensor(d, x->name);
        if (x->n_dims != 2 || !tq || tq->type != t || !td || x->type != T2_F32) continue;
        int64_t n = x->ne[0] * x->ne[1];
        void *buf = malloc(t2_dtype_row_bytes(t, n));
        float *y = malloc((size_t)n * 4);
        const float *src = x->data, *ll = td->data;
        t2_from_f32(buf, src, t, n);
        t2_to_f32(y, buf, t, n);
        for (int64_t k = 0; k < n; k++) {
            *e_t2 += ((double)y[k] - src[k]) * ((double)y[k] - src[k]);
            *e_ll += ((double)ll[k] - src[k]) * ((double)ll[k] - src[k]);
        }
        count += n;
        free(buf);
        free(y);
    }
    t2_gguf_close(&f);
    t2_gguf_close(&q);
    t2_gguf_close(&d);
    return count;
}

static void test_quantizers_vs_llama(void) {
    static const struct {
        t2_dtype t;
        const char *file;
        double max_ratio;
    } cases[] = {{T2_Q4_0, "q4_0", QRATIO_Q4_0},
                 {T2_Q4_K, "q4_k_m", QRATIO_Q4_K},
                 {T2_Q6_K, "q6_k", QRATIO_Q6_K},
                 {T2_Q8_0, "q8_0", QRATIO_Q8_0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double e_t2, e_ll;
        int64_t n = quant_errors(cases[i].t, cases[i].file, &e_t2, &e_ll);
        T2_CHECK_MSG(n > 0, "no %s matrix in kq-%s", t2_dtype_name(cases[i].t), cases[i].file);
        if (n <= 0) continue;
        double r2 = sqrt(e_t2 / n), rl = sqrt(e_ll / n);
        printf("  %-5s RMS error over %lld weights: T2 %.4e, llama.cpp %.4e (ratio %.3f)\n",
               t2_dtype_name(cases[i].t), (long long)n, r2, rl, r2 / rl);
        T2_CHECK_MSG(r2 <= cases[i].max_ratio * rl, "%s: T2's RMS %.4e vs llama.cpp's %.4e",
                     t2_dtype_name(cases[i].t), r2, rl);
    }
}

/* ---- writing (t2 convert): types per tensor, metadata, and the file loads and runs ---- */

static void test_write_quantized(void) {
    static const t2_dtype types[] = {T2_Q8_0, T2_Q4_0, T2_Q4_K, T2_Q6_K};
    t2_model *m = NULL;
    T2_CHECK(t2_model_load(&m, t2_test_asset(KQ "kq-f32.gguf")) == 0);
    if (!m) return;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "/tmp/t2_test_quants_w%d.gguf", (int)getpid());
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        t2_dtype t = types[i];
        T2_CHECK(t2_model_save_gguf(m, NULL, t, "q", tmp) == 0);
        t2_gguf *g = NULL;
        T2_CHECK(t2_gguf_open(&g, tmp) == 0);
        if (!g) continue;
        uint32_t qv = 0;
        T2_CHECK(t2_gguf_get_u32(g, "general.quantization_version", &qv) == 0 && qv == 2);
        int n_mat = 0;
        for (int64_t k = 0; k < t2_gguf_n_tensors(g); k++) {
            const t2_gguf_tensor *x = t2_gguf_tensor_at(g, k);
            int is_out = strcmp(x->name, "output.weight") == 0;
            t2_dtype want = x->n_dims == 1                             ? T2_F32
                            : is_out && (t == T2_Q4_0 || t == T2_Q4_K) ? T2_Q6_K
                                                                       : t;
            T2_CHECK_MSG(x->type == want, "%s: %s is %s", t2_dtype_name(t), x->name,
                         t2_dtype_name(x->type));
            n_mat += x->n_dims == 2;
        }
        T2_CHECK(n_mat == 2 + 7 * m->cfg.n_layers);
        t2_gguf_close(&g);
        t2_model *mq = NULL;
        T2_CHECK(t2_model_load(&mq, tmp) == 0);
        float *l = mq ? run_logits(mq, NULL) : NULL;
        T2_CHECK(l != NULL);
        for (int k = 0; l && k < (NP + 1) * mq->cfg.vocab_size; k++)
            if (!isfinite(l[k])) {
                T2_CHECK_MSG(0, "%s: logit %d is %g", t2_dtype_name(t), k, l[k]);
                break;
            }
        free(l);
        t2_model_destroy(&mq);
    }
    unlink(tmp);
    t2_model_destroy(&m);
}

/* Rows that are not whole blocks fall back as llama.cpp's do: Q8_0 when a multiple of 32, else
 * F32 (needs no assets). */
static void test_write_fallback_types(void) {
    t2_config cfg = {.dim = 48,
                     .hidden_dim = 64,
                     .n_layers = 1,
                     .n_heads = 2,
                     .n_kv_heads = 2,
                     .vocab_size = 40,
                     .seq_len = 16};
    t2_model *m = NULL;
    T2_CHECK(t2_model_init_random(&m, &cfg, 0, 7) == 0);
    if (!m) return;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "/tmp/t2_test_quants_f%d.gguf", (int)getpid());
    T2_CHECK(t2_model_save_gguf(m, NULL, T2_Q4_K, "f", tmp) == 0);
    t2_gguf *g = NULL;
    T2_CHECK(t2_gguf_open(&g, tmp) == 0);
    for (int64_t k = 0; g && k < t2_gguf_n_tensors(g); k++) {
        const t2_gguf_tensor *x = t2_gguf_tensor_at(g, k);
        t2_dtype want = x->n_dims == 1 || x->ne[0] % 32 ? T2_F32 : T2_Q8_0; /* 48 or 64 cols */
        T2_CHECK_MSG(x->type == want, "%s [%lld] is %s", x->name, (long long)x->ne[0],
                     t2_dtype_name(x->type));
    }
    t2_gguf_close(&g);
    t2_model *mq = NULL;
    T2_CHECK(t2_model_load(&mq, tmp) == 0);
    t2_model_destroy(&mq);
    unlink(tmp);
    t2_model_destroy(&m);
}

/* ---- rejection of a row length that is not a whole number of blocks ---- */

static size_t put(uint8_t *p, const void *v, size_t n) {
    memcpy(p, v, n);
    return n;
}

static void test_bad_row_length(void) {
    uint8_t buf[512] = {0};
    size_t o = 0;
    uint32_t version = 3, n_dims = 2, type = T2_Q4_K;
    uint64_t n_tensors = 1, n_kv = 0, name_len = 20, ne0 = 128, ne1 = 2, offset = 0;
    o += put(buf + o, "GGUF", 4);
    o += put(buf + o, &version, 4);
    o += put(buf + o, &n_tensors, 8);
    o += put(buf + o, &n_kv, 8);
    o += put(buf + o, &name_len, 8);
    o += put(buf + o, "blk.0.ffn_down.weight", 20);
    o += put(buf + o, &n_dims, 4);
    o += put(buf + o, &ne0, 8);
    o += put(buf + o, &ne1, 8);
    o += put(buf + o, &type, 4);
    o += put(buf + o, &offset, 8);
    o = (o + 31) / 32 * 32 + 2 * 144; /* aligned data: room for whole blocks */
    t2_gguf *g = NULL;
    int rc = t2_gguf_open_mem(&g, buf, o, "bad.gguf");
    T2_CHECK(rc < 0 && g == NULL);
    const char *msg = t2_err_msg();
    T2_CHECK_MSG(strstr(msg, "blk.0.ffn_down.weig") && strstr(msg, "Q4_K") &&
                     strstr(msg, "not a multiple of 256"),
                 "message: %s", msg);
    t2_gguf_close(&g);
}

int main(void) {
    T2_RUN(test_bad_row_length);
    T2_RUN(test_write_fallback_types);
    T2_RUN(test_dequant_bit_identical);
    T2_RUN(test_logits);
    T2_RUN(test_quantizers_vs_llama);
    T2_RUN(test_write_quantized);
    return T2_TEST_END();
}
