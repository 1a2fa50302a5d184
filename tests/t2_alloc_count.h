/* t2_alloc_count.h - a counting allocator for tests: include it in ONE test program (it defines
 * malloc, calloc, realloc, aligned_alloc, posix_memalign and memalign, which then replace the C
 * library's for the whole process, shared libraries included: protobuf-c, ZeroMQ, OpenBLAS).
 * Every call is counted and passed on to glibc's own allocator (__libc_*).
 *
 *   t2_alloc_snap a = t2_alloc_now();  ... the hot path ...  long n = t2_alloc_since(&a);
 *
 * t2_alloc_now().all counts every thread; .mine counts only the threads that called
 * t2_alloc_track_thread(1) (e.g. a router's loop thread, not ZeroMQ's I/O threads).
 * t2_alloc_last_caller() is the return address of the latest counted call, for
 * `addr2line -e PROGRAM ADDRESS` when a test finds an allocation it should not.
 *
 * Under AddressSanitizer the allocator is ASan's: nothing is replaced, T2_ALLOC_COUNTING is 0
 * and a test should exit 77 (SKIP) saying so. */
#ifndef T2_ALLOC_COUNT_H
#define T2_ALLOC_COUNT_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define T2_ALLOC_COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T2_ALLOC_COUNTING 0
#endif
#endif
#ifndef T2_ALLOC_COUNTING
#define T2_ALLOC_COUNTING 1
#endif

typedef struct t2_alloc_snap {
    long all, mine;
} t2_alloc_snap;

static atomic_long t2_alloc_all, t2_alloc_mine;
static _Thread_local int t2_alloc_tracked;
static void *_Atomic t2_alloc_caller;

static inline void t2_alloc_track_thread(int on) { t2_alloc_tracked = on; }

static inline t2_alloc_snap t2_alloc_now(void) {
    t2_alloc_snap s = {atomic_load(&t2_alloc_all), atomic_load(&t2_alloc_mine)};
    return s;
}

/* Calls counted since the snapshot: of every thread (.all) and of the tracked threads (.mine). */
static inline t2_alloc_snap t2_alloc_diff(const t2_alloc_snap *before) {
    t2_alloc_snap now = t2_alloc_now();
    t2_alloc_snap d = {now.all - before->all, now.mine - before->mine};
    return d;
}

static inline void *t2_alloc_last_caller(void) { return atomic_load(&t2_alloc_caller); }

#if T2_ALLOC_COUNTING
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

#define T2_ALLOC_COUNT()                                                                   \
    do {                                                                                   \
        atomic_fetch_add_explicit(&t2_alloc_all, 1, memory_order_relaxed);                 \
        if (t2_alloc_tracked)                                                              \
            atomic_fetch_add_explicit(&t2_alloc_mine, 1, memory_order_relaxed);            \
        atomic_store_explicit(&t2_alloc_caller, __builtin_return_address(0),               \
                              memory_order_relaxed);                                       \
    } while (0)

void *malloc(size_t n) {
    T2_ALLOC_COUNT();
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
    T2_ALLOC_COUNT();
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
    T2_ALLOC_COUNT();
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t align, size_t n) {
    T2_ALLOC_COUNT();
    return __libc_memalign(align, n);
}
void *memalign(size_t align, size_t n) {
    T2_ALLOC_COUNT();
    return __libc_memalign(align, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
    T2_ALLOC_COUNT();
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
#endif

#endif
