/* test_train.c - unit tests of the trainer (shared/train*.c): learning, exact resume, clipping,
 * LR schedule, AdamW, SVF mode, consistency with the inference engine, thread independence,
 * the REINFORCE loss's KL penalty and the LoRA adapters' chain rule (against finite differences). */
#include "train/lora.h"
#include "base/t2_err.h"
#include "t2_test.h"
#include "train/train.h"
#include "train/train_kernels.h"
#include "train_util.h"
#include "engine/transformer.h"

#include <stdint.h>
#include <unistd.h>

static t2_config tiny_cfg(void) {
    t2_config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                   .vocab_size = 11, .seq_len = 16};
    return c;
}

static t2_train *tiny_trainer(int tied, int B, int T, uint64_t seed) {
    t2_config c = tiny_cfg();
    t2_model *m = NULL;
    t2_train *tr = NULL;
    if (t2_model_init_random(&m, &c, tied, seed) < 0) return NULL;
    if (t2_train_from_model(&tr, m, B, T) < 0) fprintf(stderr, "%s\n", t2_err_msg());
    t2_model_destroy(&m);
    return tr;
}

/* A batch drawn from rng: random windows of a fixed repeated pattern. */
static void draw_batch(uint64_t *rng, int *in, int *tg, int B, int T, int V) {
    for (int b = 0; b < B; b++) {
        int off = (int)(tu_rng(rng) % 5);
        for (int t = 0; t < T; t++) {
            in[b * T + t] = (off + t) % 5 + 1;
            tg[b * T + t] = (off + t + 1) % 5 + 1;
        }
    }
    (void)V;
}

static void test_loss_decreases(void) {
    const int B = 2, T = 8;
    t2_train *tr = tiny_trainer(0, B, T, 3);
    T2_CHECK(tr != NULL);
    if (!tr) return;
    t2_adamw_opts o;
    t2_adamw_opts_default(&o);
    int in[16], tg[16];
    uint64_t rng = 42;
    float first = 0, loss = 0;
    for (int step = 0; step < 60; step++) {
        draw_batch(&rng, in, tg, B, T, 11);
        t2_train_zero_grad(tr);
        T2_CHECK(t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &loss) == 0);
        T2_CHECK(t2_train_backward(tr, NULL) == 0);
        t2_train_clip_grad(tr, 1.0f);
        T2_CHECK(t2_train_update(tr, 1e-2f, &o) == 0);
        if (step == 0) first = loss;
    }
    T2_CHECK_MSG(loss < 0.2f * first, "loss %g -> %g", (double)first, (double)loss);
    T2_CHECK_EQ_INT(t2_train_opt_steps(tr), 60);
    t2_train_destroy(&tr);
    T2_CHECK(tr == NULL);
}

/* The trainer's forward gives the inference engine's log-probabilities (arch: the tiny model's
 * architecture; for qwen2, with its Q/K/V biases and rotation of halves, the engine runs the
 * model itself rather than the trainer's view of it). */
static void forward_matches_inference(int arch) {
    const int T = 12;
    t2_config c = tiny_cfg();
    c.arch = arch;
    t2_model *m = NULL;
    T2_CHECK(t2_model_init_random(&m, &c, 0, 9) == 0);
    t2_train *tr = NULL;
    T2_CHECK(t2_train_from_model(&tr, m, 1, T) == 0);
    int in[12], tg[12];
    for (int t = 0; t < T; t++) in[t] = (t * 7 + 3) % 11, tg[t] = (t * 5 + 1) % 11;
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, NULL, 1, T, 0, NULL) == 0);
    const float *nll = t2_train_token_nll(tr);
    t2_state *st = NULL;
    float logits[12 * 11];
    T2_CHECK(t2_state_new(&st, arch == T2_ARCH_LLAMA ? t2_train_model_view(tr) : m, 16, 0) == 0);
    T2_CHECK(t2_forward(st, NULL, in, T, 0, logits) == 0);
    double worst = 0;
    for (int t = 0; t < T; t++) {
        const float *l = logits + t * 11;
        double mx = l[0], s = 0;
        for (int i = 1; i < 11; i++) mx = l[i] > mx ? l[i] : mx;
        for (int i = 0; i < 11; i++) s += exp(l[i] - mx);
        double ref = mx + log(s) - l[tg[t]];
        worst = fmax(worst, fabs(ref - nll[t]));
    }
    T2_CHECK_MSG(worst < 1e-4, "%s: max |nll difference| %g", t2_arch_name(arch), worst);
    t2_state_destroy(&st);
    t2_train_destroy(&tr);
    t2_model_destroy(&m);
}

static void test_forward_matches_inference(void) { forward_matches_inference(T2_ARCH_LLAMA); }
static void test_forward_matches_inference_qwen2(void) {
    forward_matches_inference(T2_ARCH_QWEN2);
}
static void test_forward_matches_inference_qwen3(void) {
    forward_matches_inference(T2_ARCH_QWEN3);
}

/* n steps of training from the meta state (data from meta->rng); losses appended. */
static void run_steps(t2_train *tr, t2_pool *pool, t2_ckpt_meta *meta, int n, float *losses) {
    const int B = 2, T = 8;
    int in[16], tg[16];
    float w[16];
    t2_adamw_opts o;
    t2_adamw_opts_default(&o);
    o.weight_decay = 0.1f;
    t2_lr_sched s = {.lr = 5e-3f, .min_lr = 5e-4f, .warmup = 3, .total = 10};
    for (int i = 0; i < n; i++) {
        draw_batch(&meta->rng[0], in, tg, B, T, 11);
        for (int t = 0; t < 16; t++) w[t] = 0.5f + tu_uniform(&meta->rng[1]);
        t2_train_zero_grad(tr);
        t2_train_forward(tr, pool, in, tg, w, B, T, 0, &losses[meta->step]);
        t2_train_backward(tr, pool);
        t2_train_clip_grad(tr, 0.5f);
        t2_train_update(tr, t2_lr_at(&s, meta->step), &o);
        meta->step++;
        meta->data_pos += 16;
    }
}

static void test_resume_exact(void) {
    char path[] = "/tmp/t2_test_train_XXXXXX";
    int fd = mkstemp(path);
    T2_CHECK(fd >= 0);
    close(fd);
    t2_pool *pool = NULL;
    T2_CHECK(t2_pool_new(&pool, 2) == 0);
    float la[10], lb[10];
    /* uninterrupted */
    t2_train *a = tiny_trainer(1, 2, 8, 5);
    t2_ckpt_meta ma = {.rng = {11, 12}};
    run_steps(a, pool, &ma, 10, la);
    /* 5 steps, checkpoint, a fresh process-like trainer resumes for 5 */
    t2_train *b = tiny_trainer(1, 2, 8, 5);
    t2_ckpt_meta mb = {.rng = {11, 12}};
    run_steps(b, pool, &mb, 5, lb);
    T2_CHECK(t2_train_save_checkpoint(b, &mb, path) == 0);
    t2_train_destroy(&b);
    t2_config c;
    int tied = -1, svf = -1;
    T2_CHECK(t2_train_peek_checkpoint(path, &c, &tied, &svf) == 0);
    T2_CHECK_EQ_INT(c.dim, 16);
    T2_CHECK_EQ_INT(tied, 1);
    T2_CHECK_EQ_INT(svf, 0);
    T2_CHECK(t2_train_new(&b, &c, tied, 2, 8) == 0);
    t2_ckpt_meta mr;
    T2_CHECK(t2_train_load_checkpoint(b, &mr, path) == 0);
    T2_CHECK_EQ_INT(mr.step, 5);
    T2_CHECK_EQ_INT(mr.data_pos, 80);
    T2_CHECK_EQ_INT(t2_train_opt_steps(b), 5);
    run_steps(b, pool, &mr, 5, lb);
    T2_CHECK(memcmp(la, lb, sizeof la) == 0);
    size_t na, nb;
    float *pa = t2_train_param_block(a, &na), *pb = t2_train_param_block(b, &nb);
    T2_CHECK(na == nb && memcmp(pa, pb, na * sizeof(float)) == 0);
    T2_CHECK(mr.rng[0] == ma.rng[0] && mr.rng[1] == ma.rng[1]);
    T2_CHECK(la[9] < la[0]);
    /* no temporary file left behind */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    T2_CHECK(access(tmp, F_OK) != 0);

    /* damaged and mismatched files are refused with a clear error */
    FILE *f = fopen(path, "r+b");
    fseek(f, 200, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    T2_CHECK_EQ_INT(t2_train_load_checkpoint(b, &mr, path), T2_EFORMAT);
    T2_CHECK(strstr(t2_err_msg(), "checksum") != NULL);
    t2_train *other = tiny_trainer(0, 2, 8, 5);
    T2_CHECK(t2_train_save_checkpoint(other, &mr, path) == 0);
    T2_CHECK_EQ_INT(t2_train_load_checkpoint(b, &mr, path), T2_EMISMATCH);
    f = fopen(path, "wb");
    fputs("not a checkpoint at all, just some text that is long enough to be read........"
          "...............................................................................",
          f);
    fclose(f);
    T2_CHECK_EQ_INT(t2_train_load_checkpoint(b, &mr, path), T2_EFORMAT);
    T2_CHECK(strstr(t2_err_msg(), "magic") != NULL);
    unlink(path);
    t2_train_destroy(&other);
    t2_train_destroy(&a);
    t2_train_destroy(&b);
    t2_pool_destroy(&pool);
}

static void test_clip_and_schedule(void) {
    t2_train *tr = tiny_trainer(0, 1, 4, 1);
    size_t n;
    float *g = t2_train_grads_buf(tr, &n);
    memset(g, 0, n * sizeof(float));
    g[0] = 3.0f;
    g[n - 1] = 4.0f;
    T2_CHECK_NEAR(t2_train_grad_norm(tr), 5.0, 1e-6);
    T2_CHECK_NEAR(t2_train_clip_grad(tr, 10.0f), 5.0, 1e-6); /* below the limit: unchanged */
    T2_CHECK(g[0] == 3.0f && g[n - 1] == 4.0f);
    T2_CHECK_NEAR(t2_train_clip_grad(tr, 1.0f), 5.0, 1e-6);
    T2_CHECK_NEAR(g[0], 0.6, 1e-6);
    T2_CHECK_NEAR(g[n - 1], 0.8, 1e-6);
    T2_CHECK_NEAR(t2_train_grad_norm(tr), 1.0, 1e-6);
    t2_train_destroy(&tr);

    t2_lr_sched s = {.lr = 1.0f, .min_lr = 0.1f, .warmup = 10, .total = 110};
    T2_CHECK_NEAR(t2_lr_at(&s, 0), 0.1, 1e-7);
    T2_CHECK_NEAR(t2_lr_at(&s, 4), 0.5, 1e-7);
    T2_CHECK_NEAR(t2_lr_at(&s, 9), 1.0, 1e-7);
    T2_CHECK_NEAR(t2_lr_at(&s, 10), 1.0, 1e-7);
    T2_CHECK_NEAR(t2_lr_at(&s, 60), 0.55, 1e-6);  /* half way: (lr + min) / 2 */
    T2_CHECK_NEAR(t2_lr_at(&s, 35), 0.1 + 0.9 * 0.5 * (1 + cos(M_PI * 0.25)), 1e-6);
    T2_CHECK_NEAR(t2_lr_at(&s, 110), 0.1, 1e-7);
    T2_CHECK_NEAR(t2_lr_at(&s, 1000), 0.1, 1e-7);
    t2_lr_sched c = {.lr = 0.3f, .min_lr = 0.0f, .warmup = 0, .total = 0}; /* constant */
    T2_CHECK_NEAR(t2_lr_at(&c, 0), 0.3, 1e-7);
    T2_CHECK_NEAR(t2_lr_at(&c, 500), 0.3, 1e-7);

    /* AdamW: first step moves by lr * sign(g) (bias-corrected), decay on top */
    float p[2] = {1.0f, -2.0f}, gg[2] = {0.5f, -3.0f}, m[2] = {0}, v[2] = {0};
    t2_tk_adamw(p, gg, m, v, 2, 0.1f, 0.9f, 0.95f, 1e-8f, 0.0f, 1);
    T2_CHECK_NEAR(p[0], 0.9, 1e-6);
    T2_CHECK_NEAR(p[1], -1.9, 1e-6);
    float q[1] = {2.0f}, z[1] = {0.0f}, mq[1] = {0}, vq[1] = {0};
    t2_tk_adamw(q, z, mq, vq, 1, 0.1f, 0.9f, 0.95f, 1e-8f, 0.5f, 1);
    T2_CHECK_NEAR(q[0], 2.0 - 0.1 * 0.5 * 2.0, 1e-6);
}

/* Results do not depend on the pool's size. */
static void test_thread_independence(void) {
    const int B = 3, T = 9;
    t2_train *a = tiny_trainer(0, B, T, 21), *b = tiny_trainer(0, B, T, 21);
    t2_pool *p3 = NULL;
    T2_CHECK(t2_pool_new(&p3, 3) == 0);
    int in[27], tg[27];
    uint64_t r = 5;
    draw_batch(&r, in, tg, B, T, 11);
    float la, lb;
    t2_train_zero_grad(a);
    t2_train_zero_grad(b);
    T2_CHECK(t2_train_forward(a, NULL, in, tg, NULL, B, T, 0, &la) == 0);
    T2_CHECK(t2_train_backward(a, NULL) == 0);
    T2_CHECK(t2_train_forward(b, p3, in, tg, NULL, B, T, 0, &lb) == 0);
    T2_CHECK(t2_train_backward(b, p3) == 0);
    size_t n;
    const float *ga = t2_train_grads_buf(a, &n), *gb = t2_train_grads_buf(b, NULL);
    T2_CHECK(la == lb);
    T2_CHECK(memcmp(ga, gb, n * sizeof(float)) == 0);
    /* a second backward without a forward is an error */
    T2_CHECK_EQ_INT(t2_train_backward(a, NULL), T2_EINVAL);
    /* bad inputs */
    in[3] = 11;
    T2_CHECK_EQ_INT(t2_train_forward(a, NULL, in, tg, NULL, B, T, 0, &la), T2_ERANGE);
    in[3] = 1;
    T2_CHECK_EQ_INT(t2_train_forward(a, NULL, in, tg, NULL, B + 1, T, 0, &la), T2_ERANGE);
    t2_pool_destroy(&p3);
    t2_train_destroy(&a);
    t2_train_destroy(&b);
}

/* Accumulating two half-batches with the global norm == one full batch. */
static void test_grad_accumulation(void) {
    const int B = 4, T = 6;
    t2_train *a = tiny_trainer(0, B, T, 8), *b = tiny_trainer(0, B, T, 8);
    int in[24], tg[24];
    uint64_t r = 77;
    draw_batch(&r, in, tg, B, T, 11);
    float l, l1, l2;
    t2_train_zero_grad(a);
    t2_train_forward(a, NULL, in, tg, NULL, B, T, 0, &l);
    t2_train_backward(a, NULL);
    t2_train_zero_grad(b);
    t2_train_forward(b, NULL, in, tg, NULL, 2, T, (float)(B * T), &l1);
    t2_train_backward(b, NULL);
    t2_train_forward(b, NULL, in + 2 * T, tg + 2 * T, NULL, 2, T, (float)(B * T), &l2);
    t2_train_backward(b, NULL);
    T2_CHECK_NEAR(l1 + l2, l, 1e-5);
    size_t n;
    const float *ga = t2_train_grads_buf(a, &n), *gb = t2_train_grads_buf(b, NULL);
    double worst = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(ga[i] - gb[i]));
        mx = fmax(mx, fabs(ga[i]));
    }
    T2_CHECK_MSG(worst <= 1e-5 * mx, "accumulated grads differ by %g (max %g)", worst, mx);
    t2_train_destroy(&a);
    t2_train_destroy(&b);
}

static void test_svf_mode(void) {
    const int B = 2, T = 8;
    t2_train *tr = tiny_trainer(0, B, T, 13);
    int in[16], tg[16];
    uint64_t r = 3;
    draw_batch(&r, in, tg, B, T, 11);
    float dense, svf;
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &dense) == 0);
    tu_factors fac;
    T2_CHECK(tu_factors_compute(&fac, tr, T2_TARGETS_MLP) == 0);
    t2_svf_opts o;
    t2_svf_opts_default(&o);
    /* wrong factor counts / shapes are refused */
    T2_CHECK_EQ_INT(t2_train_svf_enable(tr, &o, fac.f, fac.n - 1), T2_EINVAL);
    fac.f[0].rows++;
    T2_CHECK_EQ_INT(t2_train_svf_enable(tr, &o, fac.f, fac.n), T2_EINVAL);
    fac.f[0].rows--;
    T2_CHECK(t2_train_svf_enable(tr, &o, fac.f, fac.n) == 0);
    T2_CHECK_EQ_INT(t2_train_svf_n_targets(tr), 6);
    /* uniform p: the adapted model is the base model */
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &svf) == 0);
    T2_CHECK_NEAR(svf, dense, 1e-4);
    size_t np, n;
    t2_train_trainable(tr, &np);
    T2_CHECK_EQ_INT(np, 6 * 16);
    float *params = t2_train_param_block(tr, &n);
    float *copy = malloc(n * sizeof(float));
    memcpy(copy, params, n * sizeof(float));
    t2_adamw_opts ao;
    t2_adamw_opts_default(&ao);
    float first = 0, loss = 0;
    for (int step = 0; step < 30; step++) {
        t2_train_zero_grad(tr);
        t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &loss);
        t2_train_backward(tr, NULL);
        t2_train_update(tr, 0.1f, &ao);
        if (!step) first = loss;
    }
    T2_CHECK_MSG(loss < first, "SVF loss %g -> %g", (double)first, (double)loss);
    T2_CHECK(memcmp(copy, params, n * sizeof(float)) == 0); /* base weights frozen */
    /* SVF checkpoints round-trip the p values */
    char path[] = "/tmp/t2_test_svf_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    t2_ckpt_meta meta = {.step = 30};
    T2_CHECK(t2_train_save_checkpoint(tr, &meta, path) == 0);
    float *p = t2_train_trainable(tr, NULL), saved = p[3];
    p[3] = 123.0f;
    T2_CHECK(t2_train_load_checkpoint(tr, &meta, path) == 0);
    T2_CHECK(p[3] == saved);
    /* another base is refused */
    t2_train *other = tiny_trainer(0, B, T, 14);
    tu_factors f2;
    T2_CHECK(tu_factors_compute(&f2, other, T2_TARGETS_MLP) == 0);
    T2_CHECK(t2_train_svf_enable(other, &o, f2.f, f2.n) == 0);
    T2_CHECK_EQ_INT(t2_train_load_checkpoint(other, &meta, path), T2_EMISMATCH);
    unlink(path);
    t2_train_destroy(&other);
    tu_factors_free(&f2);
    free(copy);
    t2_train_destroy(&tr);
    tu_factors_free(&fac);
}

/* The model view saves as GGUF and loads back into the same F32 parameters. */
static void test_view_roundtrip(void) {
    t2_train *tr = tiny_trainer(0, 1, 4, 17);
    char path[] = "/tmp/t2_test_view_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    T2_CHECK(t2_model_save_gguf(t2_train_model_view(tr), NULL, T2_F32, "t", path) == 0);
    t2_model *m = NULL;
    T2_CHECK(t2_model_load(&m, path) == 0);
    t2_train *back = NULL;
    T2_CHECK(m && t2_train_from_model(&back, m, 1, 4) == 0);
    size_t n1, n2;
    if (back) {
        float *a = t2_train_param_block(tr, &n1), *b = t2_train_param_block(back, &n2);
        T2_CHECK(n1 == n2 && memcmp(a, b, n1 * 4) == 0);
    }
    /* and from an F16 file: converted to F32 */
    T2_CHECK(t2_model_save_gguf(t2_train_model_view(tr), NULL, T2_F16, "t", path) == 0);
    t2_model_destroy(&m);
    t2_train_destroy(&back);
    T2_CHECK(t2_model_load(&m, path) == 0);
    T2_CHECK(m && t2_train_from_model(&back, m, 1, 4) == 0);
    if (back) {
        float *a = t2_train_param_block(tr, &n1), *b = t2_train_param_block(back, &n2);
        double worst = 0;
        for (size_t i = 0; i < n1; i++) worst = fmax(worst, fabs(a[i] - b[i]));
        T2_CHECK(worst > 0 && worst < 2e-3);
    }
    unlink(path);
    t2_model_destroy(&m);
    t2_train_destroy(&back);
    t2_train_destroy(&tr);
}

/* loss + lambda * KL(ref || p) at the trainer's current parameters (forward only). */
static double kl_objective(t2_train *tr, const int *in, const int *tg, const float *w, int B,
                           int T, const float *ref, float lambda) {
    float loss = 0;
    double kl = 0;
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, w, B, T, (float)B, &loss) == 0);
    T2_CHECK(t2_train_set_kl(tr, ref, lambda, &kl) == 0);
    return loss + lambda * kl;
}

/* The REINFORCE loss with its KL penalty: gradient w.r.t. p against central differences, KL 0
 * at the reference itself, and bad references refused. */
static void test_kl_penalty(void) {
    const int B = 2, T = 8, V = 11;
    const float lambda = 0.7f;
    t2_train *tr = tiny_trainer(0, B, T, 21);
    int in[16], tg[16];
    float w[16];
    uint64_t r = 5;
    draw_batch(&r, in, tg, B, T, V);
    for (int t = 0; t < B * T; t++) {
        w[t] = t < T ? 1.0f : -1.0f; /* one rewarded, one penalised sequence */
        if (t % T < 3) tg[t] = -1;   /* the "prompt" has no targets */
    }
    tu_factors fac;
    T2_CHECK(tu_factors_compute(&fac, tr, T2_TARGETS_MLP) == 0);
    t2_svf_opts o;
    t2_svf_opts_default(&o);
    T2_CHECK(t2_train_svf_enable(tr, &o, fac.f, fac.n) == 0);
    size_t np;
    float *p = t2_train_trainable(tr, &np);
    /* the reference: the base model (uniform p) */
    float *ref = malloc((size_t)B * T * V * sizeof(float));
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, w, B, T, (float)B, NULL) == 0);
    memcpy(ref, t2_train_probs(tr), (size_t)B * T * V * sizeof(float));
    double kl0 = -1;
    T2_CHECK(t2_train_set_kl(tr, ref, lambda, &kl0) == 0);
    T2_CHECK_NEAR(kl0, 0.0, 1e-6);
    /* move away from the reference */
    for (size_t i = 0; i < np; i++) p[i] = 0.1f + 0.8f * (float)((tu_rng(&r) % 1000) / 1000.0 - 0.5);
    t2_train_zero_grad(tr);
    double f0 = kl_objective(tr, in, tg, w, B, T, ref, lambda);
    T2_CHECK(t2_train_backward(tr, NULL) == 0);
    float *dp = t2_train_grads_buf(tr, NULL);
    float *g = malloc(np * sizeof(float));
    memcpy(g, dp, np * sizeof(float));
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < np; i += 7) {
        const float h = 1e-2f, keep = p[i];
        p[i] = keep + h;
        double fp = kl_objective(tr, in, tg, w, B, T, ref, lambda);
        p[i] = keep - h;
        double fm = kl_objective(tr, in, tg, w, B, T, ref, lambda);
        p[i] = keep;
        double num = (fp - fm) / (2 * h);
        worst = fmax(worst, fabs(num - g[i]));
        gmax = fmax(gmax, fabs(g[i]));
    }
    T2_CHECK_MSG(gmax > 1e-4, "the gradient is not trivially zero (max %g)", gmax);
    T2_CHECK_MSG(worst < 2e-3 + 2e-2 * gmax, "KL-penalised gradient vs finite differences: worst "
                 "difference %g (max |g| %g, objective %g)", worst, gmax, f0);
    /* the KL term has a gradient of its own: with zero rewards only it moves p */
    float w0[16] = {0};
    t2_train_zero_grad(tr);
    kl_objective(tr, in, tg, w0, B, T, ref, lambda);
    T2_CHECK(t2_train_backward(tr, NULL) == 0);
    T2_CHECK(sqrt(t2_tk_sumsq(dp, np)) > 1e-5);
    /* refused: no forward, negative lambda, a row that is not a distribution */
    T2_CHECK_EQ_INT(t2_train_set_kl(tr, ref, lambda, NULL), T2_EINVAL);
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, w, B, T, (float)B, NULL) == 0);
    T2_CHECK_EQ_INT(t2_train_set_kl(tr, ref, -1.0f, NULL), T2_EINVAL);
    ref[3 * V] += 0.5f;
    T2_CHECK_EQ_INT(t2_train_set_kl(tr, ref, lambda, NULL), T2_EINVAL);
    free(g);
    free(ref);
    t2_train_destroy(&tr);
    tu_factors_free(&fac);
}

/* LoRA: B = 0 leaves the model unchanged; dA and dB from the dense gradient match central
 * differences of the loss; updates move only the adapters. */
static void test_lora(void) {
    const int B = 2, T = 8, V = 11;
    t2_train *tr = tiny_trainer(0, B, T, 31);
    int in[16], tg[16];
    uint64_t r = 9;
    draw_batch(&r, in, tg, B, T, V);
    float base = 0, l1 = 0;
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &base) == 0);
    t2_lora *lo = NULL;
    T2_CHECK_EQ_INT(t2_lora_new(&lo, tr, T2_TARGETS_MLP, 99, 0, 1), T2_EINVAL); /* rank too big */
    T2_CHECK(t2_lora_new(&lo, tr, T2_TARGETS_MLP, 2, 0, 1) == 0);
    size_t n;
    float *ab = t2_lora_params(lo, &n);
    T2_CHECK_EQ_INT(n, 2 * 3 * 2 * (16 + 24)); /* layers x matrices x rank x (rows + cols) */
    t2_lora_apply(lo, NULL);
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &l1) == 0);
    T2_CHECK(l1 == base);
    for (size_t i = 0; i < n; i++) ab[i] = 0.3f * (float)((tu_rng(&r) % 1000) / 1000.0 - 0.5);
    t2_lora_apply(lo, NULL);
    t2_train_zero_grad(tr);
    t2_lora_zero_grad(lo);
    T2_CHECK(t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &l1) == 0);
    T2_CHECK(t2_train_backward(tr, NULL) == 0);
    t2_lora_grads(lo, NULL);
    const float *g = t2_lora_grads_buf(lo, NULL);
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < n; i += 5) {
        const float h = 1e-2f, keep = ab[i];
        float fp, fm;
        ab[i] = keep + h;
        t2_lora_apply(lo, NULL);
        t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &fp);
        ab[i] = keep - h;
        t2_lora_apply(lo, NULL);
        t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &fm);
        ab[i] = keep;
        double num = ((double)fp - fm) / (2 * h);
        worst = fmax(worst, fabs(num - g[i]));
        gmax = fmax(gmax, fabs(g[i]));
    }
    T2_CHECK_MSG(gmax > 1e-4, "the gradient is not trivially zero (max %g)", gmax);
    T2_CHECK_MSG(worst < 2e-3 + 2e-2 * gmax, "LoRA gradient vs finite differences: worst "
                 "difference %g (max |g| %g)", worst, gmax);
    /* a few Adam steps lower the loss; the embedding is untouched */
    t2_train_params *pp = t2_train_params_of(tr);
    float emb0 = pp->token_embd[5];
    t2_adamw_opts ao;
    t2_adamw_opts_default(&ao);
    float first = 0, last = 0;
    for (int s = 0; s < 20; s++) {
        t2_lora_apply(lo, NULL);
        t2_train_zero_grad(tr);
        t2_lora_zero_grad(lo);
        t2_train_forward(tr, NULL, in, tg, NULL, B, T, 0, &last);
        t2_train_backward(tr, NULL);
        t2_lora_grads(lo, NULL);
        t2_lora_clip_grad(lo, 1.0f);
        T2_CHECK(t2_lora_update(lo, 0.02f, &ao) == 0);
        if (!s) first = last;
    }
    T2_CHECK_MSG(last < first, "LoRA loss %g -> %g", (double)first, (double)last);
    T2_CHECK(pp->token_embd[5] == emb0);
    t2_lora_destroy(&lo);
    t2_train_destroy(&tr);
}

int main(void) {
    T2_RUN(test_loss_decreases);
    T2_RUN(test_forward_matches_inference);
    T2_RUN(test_forward_matches_inference_qwen2);
    T2_RUN(test_forward_matches_inference_qwen3);
    T2_RUN(test_resume_exact);
    T2_RUN(test_clip_and_schedule);
    T2_RUN(test_thread_independence);
    T2_RUN(test_grad_accumulation);
    T2_RUN(test_svf_mode);
    T2_RUN(test_view_roundtrip);
    T2_RUN(test_kl_penalty);
    T2_RUN(test_lora);
    return T2_TEST_END();
}
