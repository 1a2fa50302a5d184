/* pool.c - fork-join thread pool (see pool.h).
 *
 * Protocol. The caller publishes a job (fn, ctx), sets `pending` to the number of workers and
 * bumps the generation counter `gen` with release order; workers see the new generation with an
 * acquire load, run fn(ctx, ith, nth) and decrement `pending` with release order; the caller
 * runs ith = 0 itself and then waits (acquire) for `pending` to reach 0, after which no worker
 * touches the job any more, so the next run may overwrite fn / ctx.
 *
 * Idle workers spin on `gen` (with a pause instruction) for T2_POOL_SPIN_NS before sleeping on
 * a condition variable. Lost wake-ups are avoided Dekker-style with sequentially consistent
 * operations: a worker announces itself in `n_sleeping` before re-checking `gen` under the
 * mutex; the caller bumps `gen` before reading `n_sleeping`, so either the worker sees the new
 * generation or the caller sees the sleeper and broadcasts under the mutex.
 */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define T2_POOL_SPIN_NS 150000 /* how long an idle worker spins before sleeping */

#if defined(__x86_64__) || defined(__i386__)
#define T2_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define T2_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define T2_CPU_RELAX() ((void)0)
#endif

typedef struct t2_pool_worker {
    struct t2_pool *pool;
    int ith;
} t2_pool_worker;

struct t2_pool {
    int n;                 /* threads including the caller */
    pthread_t *threads;    /* n - 1 workers */
    t2_pool_worker *args;  /* n - 1 */
    t2_pool_fn fn;         /* current job; written by the caller only while no worker runs */
    void *ctx;
    /* Each hot atomic on its own cache line: the caller writes gen, workers write pending. */
    _Alignas(64) atomic_uint gen;
    _Alignas(64) atomic_int pending;
    _Alignas(64) atomic_int n_sleeping;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait until gen != seen (or stop); returns the new generation. */
static unsigned wait_for_work(struct t2_pool *p, unsigned seen) {
    unsigned g;
    uint64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) return g;
        T2_CPU_RELAX();
        if ((i & 63) == 63) {
            uint64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > T2_POOL_SPIN_NS) break;
        }
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->n_sleeping, 1); /* seq_cst: pairs with the caller's gen bump */
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->n_sleeping, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg) {
    t2_pool_worker *w = arg;
    struct t2_pool *p = w->pool;
    unsigned seen = 0; /* gen starts at 0 */
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        p->fn(p->ctx, w->ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

t2_pool *t2_pool_new(int n_threads) {
    if (n_threads < 1) return NULL;
    struct t2_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->cv, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    if (n_threads == 1) return p;
    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    p->args = calloc((size_t)n_threads - 1, sizeof *p->args);
    int started = 0;
    if (p->threads && p->args) {
        for (; started < n_threads - 1; started++) {
            p->args[started].pool = p;
            p->args[started].ith = started + 1;
            if (pthread_create(&p->threads[started], NULL, worker_main, &p->args[started])) break;
        }
    }
    if (started != n_threads - 1) {
        p->n = started + 1; /* let destroy join the ones that did start */
        t2_pool_destroy(&p);
        return NULL;
    }
    return p;
}

void t2_pool_destroy(t2_pool **pp) {
    if (!pp || !*pp) return;
    struct t2_pool *p = *pp;
    *pp = NULL;
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stop, 1);
        atomic_fetch_add(&p->gen, 1);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n - 1; i++) pthread_join(p->threads[i], NULL);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->args);
    free(p);
}

int t2_pool_size(const t2_pool *p) { return p ? p->n : 1; }

void t2_pool_run(t2_pool *p, t2_pool_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    /* seq_cst bump (a release at least, publishing fn / ctx / pending), then the sleeper check */
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n);
    for (unsigned i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) != 0; i++) {
        if (i < 4096) T2_CPU_RELAX();
        else sched_yield(); /* a worker was descheduled (more threads than cores) */
    }
}

void t2_split(int n, int align, int ith, int nth, int *lo, int *hi) {
    if (align < 1) align = 1;
    if (nth < 1) nth = 1;
    if (n < 0) n = 0;
    int64_t units = ((int64_t)n + align - 1) / align;
    int64_t a = units * ith / nth * align, b = units * (ith + 1) / nth * align;
    *lo = (int)(a < n ? a : n);
    *hi = (int)(b < n ? b : n);
}
