/* pool.c - fork-join thread pool (see pool.h).
 *
 * Protocol. A run has nth slots (ith = 0 .. nth-1). The caller publishes the job (fn, ctx),
 * resets the slot counter `next` to 1 with release order and bumps the generation `gen`; then it
 * runs slot 0 itself. Every thread - woken workers and, once done with slot 0, the caller -
 * claims slots with an acquire-release fetch_add on `next` until the counter passes nth, runs
 * fn(ctx, ith, nth) for each claimed slot and counts it in `done` (release). The caller returns
 * once `done` reaches nth - 1 (acquire): then every call has returned and no thread will read
 * fn / ctx again before the next run's reset of `next`, so the next run may overwrite them.
 *
 * Because slots are claimed rather than owned, a worker that is asleep or descheduled (more
 * runnable threads than cores, or a sleeping worker's ~200 us wake-up on a VM) never stalls the
 * caller: the caller runs the unclaimed slots itself and the late worker finds none left. The
 * caller only ever waits for slots that another thread has already started.
 *
 * Idle workers spin on `gen` (with a pause instruction) for T2_POOL_SPIN_NS before sleeping on
 * a condition variable. Lost wake-ups are avoided Dekker-style with sequentially consistent
 * operations: a worker announces itself in `n_sleeping` before re-checking `gen` under the
 * mutex; the caller bumps `gen` before reading `n_sleeping`, so either the worker sees the new
 * generation or the caller sees the sleeper and broadcasts under the mutex.
 */
#include "base/pool.h"

#include "base/t2_err.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* How long an idle worker spins before sleeping: longer than the gaps between pool calls within
 * and between tokens (serial work on the caller: norms, attention, sampling). */
#define T2_POOL_SPIN_NS 300000

#if defined(__x86_64__) || defined(__i386__)
#define T2_CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define T2_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define T2_CPU_RELAX() ((void)0)
#endif

struct t2_pool {
    int n;              /* threads including the caller */
    pthread_t *threads; /* n - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* The line workers poll and claim from: a new job costs a worker one line transfer. fn / ctx
     * are plain fields, written by the caller only while no thread holds a slot. */
    _Alignas(64) atomic_uint gen;
    atomic_int next; /* next slot to claim */
    atomic_int stop;
    t2_pool_fn fn;
    void *ctx;
    _Alignas(64) atomic_int done; /* slots >= 1 finished in this run */
    _Alignas(64) atomic_int n_sleeping;
};

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Claim and run slots of the current run until none is left; returns how many were run. */
static int run_slots(struct t2_pool *p) {
    int ran = 0;
    for (;;) {
        int k = atomic_fetch_add_explicit(&p->next, 1, memory_order_acq_rel);
        if (k >= p->n) return ran;
        p->fn(p->ctx, k, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        ran++;
    }
}

/* Wait until gen != seen or stop; returns the generation seen. */
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
    struct t2_pool *p = arg;
    unsigned seen = 0; /* gen starts at 0 */
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_slots(p);
    }
    return NULL;
}

int t2_pool_new(t2_pool **out, int n_threads) {
    *out = NULL;
    if (n_threads < 1)
        return t2_err_set(T2_EINVAL, "thread pool: %d threads (at least 1)", n_threads);
    struct t2_pool *p = calloc(1, sizeof *p);
    if (!p) return t2_err_set(T2_ENOMEM, "out of memory");
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->next, n_threads); /* nothing to claim */
    atomic_init(&p->stop, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->n_sleeping, 0);
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return t2_err_set(T2_EINTERNAL, "thread pool: cannot create a mutex");
    }
    if (pthread_cond_init(&p->cv, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return t2_err_set(T2_EINTERNAL, "thread pool: cannot create a condition variable");
    }
    if (n_threads == 1) {
        *out = p;
        return T2_OK;
    }
    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    int started = 0;
    if (p->threads) {
        for (; started < n_threads - 1; started++)
            if (pthread_create(&p->threads[started], NULL, worker_main, p)) break;
    }
    if (started != n_threads - 1) {
        int oom = !p->threads;
        p->n = started + 1; /* stop and join the ones that did start */
        t2_pool_destroy(&p);
        if (oom) return t2_err_set(T2_ENOMEM, "out of memory");
        return t2_err_set(T2_EINTERNAL, "thread pool: cannot start thread %d of %d", started + 2,
                          n_threads);
    }
    *out = p;
    return T2_OK;
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
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    /* release: a thread whose claim reads this value (or a later one) sees fn, ctx, done = 0 */
    atomic_store_explicit(&p->next, 1, memory_order_release);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: then the sleeper check */
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n);
    run_slots(p);
    for (unsigned i = 0; atomic_load_explicit(&p->done, memory_order_acquire) != p->n - 1; i++) {
        if (i < 4096) T2_CPU_RELAX();
        else sched_yield(); /* the thread running a slot was descheduled */
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
