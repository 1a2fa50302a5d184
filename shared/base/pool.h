/* pool.h - a small fork-join thread pool for per-token work.
 *
 * t2_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) once for every ith in [0, nth) where nth
 * is the pool's thread count, the calling thread taking ith = 0, and returns when all calls have
 * returned. Idle workers spin briefly on an atomic counter before sleeping on a condition
 * variable, so the per-call overhead is a few hundred nanoseconds when calls come in quick
 * succession (per layer, per token), and idle pools cost no CPU. Not reentrant: fn must not call
 * t2_pool_run on the same pool. One pool is used by one thread at a time.
 * Calls with ith >= 1 may run on any of the pool's threads, the caller included (threads claim
 * them, so a descheduled or sleeping worker never holds the caller up): fn must depend on ith,
 * not on which thread runs it.
 */
#ifndef T2_POOL_H
#define T2_POOL_H

/* Most threads a pool may be asked for (flags -j / --threads, deployment worker.threads). */
#define T2_POOL_MAX_THREADS 256

typedef struct t2_pool t2_pool;
typedef void (*t2_pool_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 (1 means: everything on the caller, no threads started). Returns 0 and sets
 * *out, or T2_EINVAL / T2_ENOMEM / T2_EINTERNAL with a message (t2_err_msg) and *out = NULL. */
int t2_pool_new(t2_pool **out, int n_threads);
void t2_pool_destroy(t2_pool **p);
int t2_pool_size(const t2_pool *p);
void t2_pool_run(t2_pool *p, t2_pool_fn fn, void *ctx);

/* Split [0, n) in nth near-equal chunks aligned to `align`; chunk ith is [*lo, *hi). */
void t2_split(int n, int align, int ith, int nth, int *lo, int *hi);

#endif
