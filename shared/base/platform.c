#include "base/platform.h"

#include "base/t2_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void t2_blas_autoselect(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("T2_BLAS_REEXEC")) return;
#if defined(__x86_64__)
    const char *core = NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        core = __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        core = "Haswell";
    if (!core) return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("T2_BLAS_REEXEC", "1", 1); /* never loop */
    execv("/proc/self/exe", argv);
    /* exec failed: go on with OpenBLAS's own choice */
    T2_WARN("could not re-execute to select OpenBLAS kernels %s; continuing", core);
#else
    (void)argv;
#endif
}

double t2_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int t2_nproc(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

int t2_endpoint_is_local(const char *ep) {
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9)) return 1;
    if (strncmp(ep, "tcp://", 6)) return 0;
    const char *h = ep + 6;
    return !strncmp(h, "127.", 4) || !strncmp(h, "localhost:", 10) || !strncmp(h, "[::1]:", 6);
}
