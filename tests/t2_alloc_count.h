/* t2_alloc_count.h - a counting allocator for tests: include it in ONE test program (it defines
 * malloc, calloc, realloc, aligned_alloc, posix_memalign and memalign, which then replace the C
 * library's for the whole process, shared libraries included: protobuf-c, ZeroMQ, OpenBLAS).
 * Every call is counted and passed on to glibc's own allocator (__libc_*).
 *
 *   t2_alloc_snap a = t2_alloc_now();  ... the hot path ...  long n = t2_alloc_since(&a);
 *
 * t2_alloc_now().all counts every thread; .mine[g] counts only the threads that called
 * t2_alloc_track_thread(g) (e.g. a router's loop thread, not ZeroMQ's I/O threads), minus the
 * calls made by a library set aside with t2_alloc_set_aside (counted in .aside[g]).
 * t2_alloc_last_caller() is the return address of the latest counted call, for
 * `addr2line -e PROGRAM ADDRESS` when a test finds an allocation it should not.
 *
 * Under AddressSanitizer the allocator is ASan's: nothing is replaced, T2_ALLOC_COUNTING is 0
 * and a test should exit 77 (SKIP) saying so. */
#ifndef T2_ALLOC_COUNT_H
#define T2_ALLOC_COUNT_H

#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#define T2_ALLOC_GROUPS 4

typedef struct t2_alloc_snap {
    long all;                    /* every thread */
    long mine[T2_ALLOC_GROUPS];  /* threads tracked in group g (t2_alloc_track_thread(g)) */
    long aside[T2_ALLOC_GROUPS]; /* of those, calls made by the library set aside */
} t2_alloc_snap;

static atomic_long t2_alloc_all, t2_alloc_mine[T2_ALLOC_GROUPS], t2_alloc_aside[T2_ALLOC_GROUPS];
static _Thread_local int t2_alloc_tracked;
static void *_Atomic t2_alloc_caller;
/* [lo, hi): the code of a library whose own calls tracked threads count apart (.aside) */
static uintptr_t t2_alloc_aside_lo, t2_alloc_aside_hi;

/* Count this thread's calls in group g (1 .. T2_ALLOC_GROUPS - 1); 0: not tracked. */
static inline void t2_alloc_track_thread(int g) {
    t2_alloc_tracked = g > 0 && g < T2_ALLOC_GROUPS ? g : 0;
}

static inline t2_alloc_snap t2_alloc_now(void) {
    t2_alloc_snap s = {atomic_load(&t2_alloc_all), {0}, {0}};
    for (int g = 0; g < T2_ALLOC_GROUPS; g++) {
        s.mine[g] = atomic_load(&t2_alloc_mine[g]);
        s.aside[g] = atomic_load(&t2_alloc_aside[g]);
    }
    return s;
}

/* Calls counted since the snapshot. */
static inline t2_alloc_snap t2_alloc_diff(const t2_alloc_snap *before) {
    t2_alloc_snap d = t2_alloc_now();
    d.all -= before->all;
    for (int g = 0; g < T2_ALLOC_GROUPS; g++) {
        d.mine[g] -= before->mine[g];
        d.aside[g] -= before->aside[g];
    }
    return d;
}

static int t2_alloc_find_lib(struct dl_phdr_info *info, size_t size, void *name) {
    (void)size;
    if (!info->dlpi_name || !strstr(info->dlpi_name, (const char *)name)) return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < lo) lo = a;
        if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
    }
    t2_alloc_aside_lo = lo;
    t2_alloc_aside_hi = hi;
    return hi > lo;
}

/* Count the calls made directly by the loaded library whose file name contains `name` apart
 * (e.g. "libzmq": its pipes grow by blocks of messages, and it allocates the body of every
 * frame over 33 bytes it sends). 0, or -1 if no such library is loaded. */
static inline int t2_alloc_set_aside(const char *name) {
    return dl_iterate_phdr(t2_alloc_find_lib, (void *)name) ? 0 : -1;
}

static inline void *t2_alloc_last_caller(void) { return atomic_load(&t2_alloc_caller); }

/* T2_ALLOC_TRACE=1 in the environment: t2_alloc_trace(1) makes every counted call of a tracked
 * thread print its stack to stderr (backtrace_symbols_fd allocates nothing), to find it. */
static _Atomic int t2_alloc_tracing;
static inline void t2_alloc_trace(int on) {
    const char *e = getenv("T2_ALLOC_TRACE");
    if (on && e && *e == '1') {
        void *warm[2];
        backtrace(warm, 2); /* its first call loads libgcc (and allocates): before the window */
    }
    atomic_store(&t2_alloc_tracing, on && e && *e == '1');
}

#if T2_ALLOC_COUNTING
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

#define T2_ALLOC_COUNT()                                                                   \
    do {                                                                                   \
        uintptr_t from_ = (uintptr_t)__builtin_return_address(0);                          \
        int g_ = t2_alloc_tracked;                                                         \
        atomic_fetch_add_explicit(&t2_alloc_all, 1, memory_order_relaxed);                 \
        if (g_ && from_ >= t2_alloc_aside_lo && from_ < t2_alloc_aside_hi)                 \
            atomic_fetch_add_explicit(&t2_alloc_aside[g_], 1, memory_order_relaxed);       \
        else if (g_)                                                                       \
            atomic_fetch_add_explicit(&t2_alloc_mine[g_], 1, memory_order_relaxed);        \
        atomic_store_explicit(&t2_alloc_caller, __builtin_return_address(0),               \
                              memory_order_relaxed);                                       \
        if (t2_alloc_tracked && atomic_load(&t2_alloc_tracing)) {                          \
            void *bt_[24];                                                                 \
            backtrace_symbols_fd(bt_, backtrace(bt_, 24), 2);                              \
            write(2, "--\n", 3);                                                           \
        }                                                                                  \
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
