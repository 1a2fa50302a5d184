/* sandbox.h - run untrusted Python (generated code + its tests) in a confined subprocess, and
 * run a helper command capturing its output.
 *
 * t2_sandbox_run_python() writes the program to main.py in a fresh temporary directory and runs
 * `/usr/bin/python3 -I -S main.py` there, in a child that:
 *   - has stdin on /dev/null, stdout+stderr on a pipe (the tail is kept for messages);
 *   - has limits: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE (16 MiB), RLIMIT_NOFILE (64),
 *     RLIMIT_CORE 0, RLIMIT_NPROC (64, ignored for root);
 *   - is in its own network namespace when the kernel allows (unshare(CLONE_NEWNET); as a
 *     non-root user, CLONE_NEWUSER | CLONE_NEWNET): then it has no network interface at all
 *     but a down loopback. If neither is permitted, a seccomp filter (x86-64) makes socket()
 *     fail for every family but AF_UNIX; t2_sandbox_result.isolation says which held;
 *   - is in its own process group (the whole group is SIGKILLed at the wall-clock limit and
 *     after the run), and is SIGKILLed if the parent dies;
 *   - gets a minimal environment (PATH=/usr/bin:/bin, HOME=the temp dir, LANG=C.UTF-8).
 * The temporary directory is removed afterwards. This is confinement for mistakes and
 * runaway programs, not a security boundary against a hostile program: the child still sees
 * the file system with the caller's permissions.
 */
#ifndef T2_SANDBOX_H
#define T2_SANDBOX_H

#include <stddef.h>

#define T2_SANDBOX_PYTHON "/usr/bin/python3"

typedef struct t2_sandbox_opts {
    double timeout_s;   /* wall-clock limit; <= 0: 10 s */
    size_t mem_bytes;   /* RLIMIT_AS; 0: 1 GiB */
    const char *python; /* NULL: T2_SANDBOX_PYTHON */
} t2_sandbox_opts;

typedef enum t2_sandbox_status {
    T2_SANDBOX_PASSED = 0, /* exited with status 0 */
    T2_SANDBOX_FAILED,     /* exited with a non-zero status */
    T2_SANDBOX_TIMEOUT,    /* killed at the wall-clock limit */
    T2_SANDBOX_SIGNALED,   /* killed by a signal (e.g. SIGXCPU, SIGSEGV) */
} t2_sandbox_status;

typedef enum t2_sandbox_isolation {
    T2_SANDBOX_NET_NONE = 0,  /* the network could not be blocked */
    T2_SANDBOX_NET_SECCOMP,   /* socket() blocked by seccomp (AF_UNIX still allowed) */
    T2_SANDBOX_NET_NAMESPACE, /* private network namespace (no interfaces) */
} t2_sandbox_isolation;

typedef struct t2_sandbox_result {
    t2_sandbox_status status;
    int exit_code;  /* FAILED: the exit status */
    int signal;     /* SIGNALED / TIMEOUT: the signal */
    double seconds; /* wall-clock time */
    t2_sandbox_isolation isolation;
    char output[1024]; /* the last bytes of stdout+stderr, NUL-terminated */
} t2_sandbox_result;

/* Run `program` (Python source, len bytes) as described above. Returns 0 when the program was
 * run (whatever its outcome: see res->status), or a negative T2_E* code when the sandbox itself
 * failed (no temp dir, fork, python missing) with t2_err_msg() saying why. `opts` may be NULL. */
int t2_sandbox_run_python(const char *program, size_t len, const t2_sandbox_opts *opts,
                          t2_sandbox_result *res);

/* "passed", "failed", "timeout", "signaled" / "namespace", "seccomp", "none". */
const char *t2_sandbox_status_name(t2_sandbox_status s);
const char *t2_sandbox_isolation_name(t2_sandbox_isolation i);

/* Run argv[0] (a path; no shell) with stdin on /dev/null and capture its stdout (at most `max`
 * bytes, else T2_ERANGE) into a malloc'd NUL-terminated buffer. A non-zero exit is T2_EIO with
 * the command's stderr tail in the message. */
int t2_run_capture(char *const argv[], size_t max, char **out, size_t *len);

#endif
