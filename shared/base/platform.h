/* platform.h - process-level set-up shared by every T2 executable. */
#ifndef T2_PLATFORM_H
#define T2_PLATFORM_H

/* Choose OpenBLAS's kernels from the CPU's flags before OpenBLAS reads OPENBLAS_CORETYPE.
 *
 * Debian's OpenBLAS 0.3.21 does not recognise recent CPUs and falls back to its oldest x86-64
 * kernels. OpenBLAS reads OPENBLAS_CORETYPE when the library is loaded, i.e. before main(), so
 * when it is unset this sets it (Cooperlake with AVX-512 BF16, SkylakeX with AVX-512, Haswell
 * with AVX2) and re-executes the program once. A user's own OPENBLAS_CORETYPE always wins.
 * Call first thing in main(). Returns only if no re-exec was needed (or it failed). */
void t2_blas_autoselect(char **argv);

/* Monotonic time in seconds. */
double t2_now(void);
/* Online CPUs (at least 1). */
int t2_nproc(void);
/* 1 if a ZeroMQ endpoint stays on this machine: ipc://, inproc://, or tcp:// on a loopback
 * address (127.x.x.x, localhost, [::1]). */
int t2_endpoint_is_local(const char *endpoint);

#endif
