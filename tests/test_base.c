/* test_base.c - the primitives of shared/base that other code used to copy: RNGs and hashes
 * (pinned to published vectors, since seeds, splits and checkpoints depend on their values),
 * the name rule, the reconnection backoff, the daemons' flag loop and the growable buffer. */
#include "base/args.h"
#include "base/backoff.h"
#include "base/bgq.h"
#include "base/buf.h"
#include "base/hash.h"
#include "base/name.h"
#include "base/rng.h"
#include "base/scratch.h"
#include "base/t2_err.h"
#include "t2_test.h"

#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>

static void test_hash_vectors(void) {
    /* FNV-1a test vectors (Fowler, Noll, Vo) */
    T2_CHECK(t2_fnv1a64(T2_FNV1A64_INIT, "", 0) == 0xcbf29ce484222325ull);
    T2_CHECK(t2_fnv1a64_str("a") == 0xaf63dc4c8601ec8cull);
    T2_CHECK(t2_fnv1a64_str("foobar") == 0x85944171f73967e8ull);
    T2_CHECK(t2_fnv1a64(t2_fnv1a64(T2_FNV1A64_INIT, "foo", 3), "bar", 3) == 0x85944171f73967e8ull);
    T2_CHECK(t2_fnv1a32("a", 1) == 0xe40c292cu);
    T2_CHECK(t2_fnv1a32("foobar", 6) == 0xbf9cf968u);
    /* FNV-1a from basis ^ salt, then MurmurHash3's fmix64 (the task generators' seeds) */
    T2_CHECK(t2_hash64("math", 4, 0x5eedull) == 0x672dc418f8b020eaull);
}

static void test_rng_sequences(void) {
    uint64_t s = 0; /* splitmix64 from state 0 (Vigna's reference) */
    T2_CHECK(t2_splitmix64(&s) == 0xe220a8397b1dcdafull);
    T2_CHECK(t2_splitmix64(&s) == 0x6e789e6aa1b965f4ull);
    T2_CHECK(t2_splitmix64(&s) == 0x06c45d188009454full);
    t2_rand r;
    t2_rand_seed(&r, 42);
    T2_CHECK(t2_rand_u64(&r) == 0xd86e1008eac15bc5ull);
    /* the two ways to draw below n differ, and both stay reachable */
    t2_rand a = {7}, b = {7};
    T2_CHECK_EQ_INT(t2_rand_below_scaled(&a, 1000), 389);
    T2_CHECK_EQ_INT(t2_rand_below(&b, 1000), 487);
    uint64_t x = 1; /* xorshift64* (12, 25, 27; 0x2545F4914F6CDD1D) */
    T2_CHECK(t2_xorshift64s(&x) == 0x47e4ce4b896cdd1dull);
    T2_CHECK(t2_xorshift64s(&x) == 0xabcfa6a8e079651dull);
    T2_CHECK(t2_xorshift64s(&x) == 0xb9d10d8feb731f57ull);
    double sum = 0, sq = 0;
    x = 99;
    for (int i = 0; i < 20000; i++) {
        double z = t2_xorshift64s_normal(&x);
        sum += z;
        sq += z * z;
    }
    T2_CHECK_NEAR(sum / 20000, 0.0, 0.03);
    T2_CHECK_NEAR(sq / 20000, 1.0, 0.05);
}

static void test_names(void) {
    T2_CHECK(t2_name_ok("rand1", 5, 64));
    T2_CHECK(t2_name_ok("a.b_c:d/e-F9", 12, 64));
    T2_CHECK(!t2_name_ok("", 0, 64));
    T2_CHECK(!t2_name_ok("a b", 3, 64));
    T2_CHECK(!t2_name_ok("abc", 3, 2));
    T2_CHECK(!t2_name_ok("\xc3\xbc", 2, 64));
    char host[] = "vm 1/\xc3\xbc:ok";
    t2_name_sanitize(host);
    T2_CHECK(strcmp(host, "vm-1/--:ok") == 0);
}

static void test_backoff(void) {
    int first, max;
    t2_backoff_schedule(100, &first, &max); /* the tests' heartbeat */
    T2_CHECK(first == 100 && max == 400);
    t2_backoff_schedule(1000, &first, &max); /* the default */
    T2_CHECK(first == 250 && max == 4000);
    t2_backoff_schedule(3000, &first, &max);
    T2_CHECK(first == 250 && max == 8000);
    t2_backoff_schedule(50, &first, &max);
    T2_CHECK(first == 50 && max == 200);
    T2_CHECK(t2_backoff_next(250, 4000) == 500);
    T2_CHECK(t2_backoff_next(3000, 4000) == 4000);
    T2_CHECK(t2_backoff_next(4000, 4000) == 4000);
}

static void test_args(void) {
    const char *c = NULL, *level = "info";
    const t2_arg flags[] = {{"--config", "-c", &c}, {"--log-level", NULL, &level}};
    char *ok[] = {"prog", "-c", "x.cfg", "--log-level", "debug", "--config", "y.cfg"};
    T2_CHECK(t2_args_parse(7, ok, 1, flags, 2) == 0);
    T2_CHECK(c && !strcmp(c, "y.cfg") && !strcmp(level, "debug"));
    char *help[] = {"prog", "-c", "x", "-h"};
    T2_CHECK(t2_args_parse(4, help, 1, flags, 2) == T2_ARGS_HELP);
    char *missing[] = {"prog", "--config"};
    T2_CHECK(t2_args_parse(2, missing, 1, flags, 2) == T2_EINVAL);
    T2_CHECK(strstr(t2_err_msg(), "--config: missing value") != NULL);
    char *unknown[] = {"prog", "--bogus", "1"};
    T2_CHECK(t2_args_parse(3, unknown, 1, flags, 2) == T2_EINVAL);
    T2_CHECK(strstr(t2_err_msg(), "--bogus: unknown flag") != NULL);
}

static void test_buf(void) {
    t2_buf b = {0};
    T2_CHECK(t2_buf_add(&b, "", 0) == 0 && b.data && b.data[0] == 0 && b.len == 0);
    for (int i = 0; i < 1000; i++) T2_CHECK(t2_buf_add(&b, "ab\0", 3) == 0);
    T2_CHECK(b.len == 3000 && b.cap > b.len && b.data[b.len] == 0);
    T2_CHECK(b.data[2997] == 'a' && b.data[2999] == 0);
    const size_t len = b.len;
    T2_CHECK(t2_buf_add(&b, "x", SIZE_MAX - 2) == T2_ENOMEM && b.len == len);
    t2_buf_free(&b);
    T2_CHECK(!b.data && b.len == 0 && b.cap == 0);
}

/* ---- the background task queue (bgq.h) ---- */

typedef struct bg_task {
    int id, out;
    atomic_int *gate; /* NULL, or wait until it is non-zero */
    atomic_int started;
} bg_task;

static atomic_int bg_dropped;

static void bg_run(void *p) {
    bg_task *t = p;
    atomic_store(&t->started, 1);
    while (t->gate && !atomic_load(t->gate)) sched_yield();
    t->out = 2 * t->id;
}

static void bg_drop(void *p) {
    (void)p;
    atomic_fetch_add(&bg_dropped, 1);
}

static int fd_ready(int fd, int ms) {
    struct pollfd pf = {fd, POLLIN, 0};
    return poll(&pf, 1, ms) == 1;
}

static void test_bgq(void) {
    t2_bgq *q;
    T2_CHECK(t2_bgq_new(&q, bg_run, bg_drop) == 0);
    atomic_int gate = 0;
    bg_task a = {.id = 1, .gate = &gate}, b = {.id = 2}, c = {.id = 3};
    T2_CHECK(t2_bgq_submit(q, &a) == 0 && t2_bgq_submit(q, &b) == 0 && t2_bgq_submit(q, &c) == 0);
    while (!atomic_load(&a.started)) sched_yield();
    void *got;
    T2_CHECK(t2_bgq_take(q, &got) == 0 && !got); /* nothing done while a runs */
    T2_CHECK(!fd_ready(t2_bgq_fd(q), 0));
    T2_CHECK(t2_bgq_withdraw(q, &a) == 0); /* running: not taken back */
    T2_CHECK(t2_bgq_withdraw(q, &b) == 1); /* waiting: taken back, never run */
    T2_CHECK(t2_bgq_withdraw(q, &b) == 0);
    atomic_store(&gate, 1);
    int n = 0;
    bg_task *order[3];
    while (n < 2 && fd_ready(t2_bgq_fd(q), 5000))
        while (n < 2 && t2_bgq_take(q, &got) == 1) order[n++] = got;
    T2_CHECK(n == 2 && order[0] == &a && order[1] == &c);
    T2_CHECK(a.out == 2 && c.out == 6 && b.out == 0 && !atomic_load(&b.started));
    T2_CHECK(t2_bgq_take(q, &got) == 0 && !fd_ready(t2_bgq_fd(q), 0)); /* cleared */
    /* destroy: the running task finishes, the waiting and the done ones are dropped */
    atomic_int gate2 = 0;
    bg_task d = {.id = 4, .gate = &gate2}, e = {.id = 5}, f = {.id = 6};
    T2_CHECK(t2_bgq_submit(q, &d) == 0);
    while (!atomic_load(&d.started)) sched_yield();
    T2_CHECK(t2_bgq_submit(q, &e) == 0 && t2_bgq_submit(q, &f) == 0);
    atomic_store(&gate2, 1);
    t2_bgq_destroy(&q);
    T2_CHECK(!q && d.out == 8);
    T2_CHECK_EQ_INT(atomic_load(&bg_dropped), 3);
    t2_bgq_destroy(&q); /* NULL is fine */
}

static void *scratch_other_thread(void *arg) {
    void **mine = arg;
    *mine = t2_scratch_get(T2_SCRATCH_QMM, 100); /* freed by the key's destructor at exit */
    return NULL;
}

static void test_scratch(void) {
    T2_CHECK(t2_scratch_get(-1, 8) == NULL && t2_scratch_get(T2_SCRATCH_SLOTS, 8) == NULL);
    unsigned e0 = t2_scratch_epoch(T2_SCRATCH_QMM);
    unsigned char *a = t2_scratch_get(T2_SCRATCH_QMM, 1000);
    T2_CHECK(a && (uintptr_t)a % 64 == 0 && t2_scratch_cap(T2_SCRATCH_QMM) >= 1000);
    if (!a) return;
    unsigned e1 = t2_scratch_epoch(T2_SCRATCH_QMM);
    T2_CHECK(e1 != e0);
    for (int i = 0; i < 1000; i++) a[i] = (unsigned char)(i * 7);
    /* no growth: same buffer, contents kept, epoch unchanged */
    unsigned char *b = t2_scratch_get(T2_SCRATCH_QMM, 10);
    T2_CHECK(b == a && t2_scratch_epoch(T2_SCRATCH_QMM) == e1);
    int kept = 1;
    for (int i = 0; i < 1000; i++) kept &= b[i] == (unsigned char)(i * 7);
    T2_CHECK(kept);
    /* other slots are other buffers */
    unsigned char *c = t2_scratch_get(T2_SCRATCH_GEMM_X, 1000);
    T2_CHECK(c && c != a);
    /* growth changes the epoch and gives room for the new size */
    unsigned char *d = t2_scratch_get(T2_SCRATCH_QMM, 1 << 20);
    T2_CHECK(d && (uintptr_t)d % 64 == 0 && t2_scratch_cap(T2_SCRATCH_QMM) >= (1u << 20));
    T2_CHECK(t2_scratch_epoch(T2_SCRATCH_QMM) != e1);
    if (d) memset(d, 1, 1 << 20);
    /* another thread has its own buffer */
    void *theirs = NULL;
    pthread_t th;
    T2_CHECK(pthread_create(&th, NULL, scratch_other_thread, &theirs) == 0);
    pthread_join(th, NULL);
    T2_CHECK(theirs && theirs != d);
    /* release one slot, then all: epochs never return to a value seen before */
    unsigned e2 = t2_scratch_epoch(T2_SCRATCH_QMM);
    t2_scratch_release(T2_SCRATCH_QMM);
    T2_CHECK(t2_scratch_cap(T2_SCRATCH_QMM) == 0 && t2_scratch_epoch(T2_SCRATCH_QMM) != e2);
    T2_CHECK(t2_scratch_get(T2_SCRATCH_QMM, 64) != NULL);
    unsigned e3 = t2_scratch_epoch(T2_SCRATCH_QMM), g3 = t2_scratch_epoch(T2_SCRATCH_GEMM_X);
    t2_scratch_free_thread();
    t2_scratch_free_thread(); /* twice is fine */
    T2_CHECK(t2_scratch_cap(T2_SCRATCH_GEMM_X) == 0);
    T2_CHECK(t2_scratch_get(T2_SCRATCH_GEMM_X, 64) != NULL);
    unsigned e4 = t2_scratch_epoch(T2_SCRATCH_QMM), g4 = t2_scratch_epoch(T2_SCRATCH_GEMM_X);
    T2_CHECK(e4 != e3 && e4 != e2 && e4 != e1 && g4 != g3);
    t2_scratch_free_thread();
}

int main(void) {
    T2_RUN(test_hash_vectors);
    T2_RUN(test_rng_sequences);
    T2_RUN(test_names);
    T2_RUN(test_backoff);
    T2_RUN(test_args);
    T2_RUN(test_buf);
    T2_RUN(test_bgq);
    T2_RUN(test_scratch);
    return T2_TEST_END();
}
