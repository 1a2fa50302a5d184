/* sandbox.c - confined Python subprocess and command capture (see sandbox.h). */
#include "tasks/sandbox.h"

#include "base/t2_err.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#define T2_HAVE_SECCOMP 1
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *t2_sandbox_status_name(t2_sandbox_status s) {
    switch (s) {
    case T2_SANDBOX_PASSED: return "passed";
    case T2_SANDBOX_FAILED: return "failed";
    case T2_SANDBOX_TIMEOUT: return "timeout";
    case T2_SANDBOX_SIGNALED: return "signaled";
    }
    return "?";
}

const char *t2_sandbox_isolation_name(t2_sandbox_isolation i) {
    switch (i) {
    case T2_SANDBOX_NET_NONE: return "none";
    case T2_SANDBOX_NET_SECCOMP: return "seccomp";
    case T2_SANDBOX_NET_NAMESPACE: return "namespace";
    }
    return "?";
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void remove_tree(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Keep the last (cap - 1) bytes of a stream in buf (NUL-terminated). */
typedef struct tail_buf {
    char *buf;
    size_t cap, len;
} tail_buf;

static void tail_add(tail_buf *t, const char *p, size_t n) {
    size_t room = t->cap - 1;
    if (n >= room) {
        memcpy(t->buf, p + n - room, room);
        t->len = room;
    } else {
        if (t->len + n > room) {
            size_t drop = t->len + n - room;
            memmove(t->buf, t->buf + drop, t->len - drop);
            t->len -= drop;
        }
        memcpy(t->buf + t->len, p, n);
        t->len += n;
    }
    t->buf[t->len] = 0;
}

#ifdef T2_HAVE_SECCOMP
/* Make socket() fail with EACCES for every address family but AF_UNIX. */
static int block_sockets(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1), /* x32 ABI: refuse */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_UNIX, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = (unsigned short)(sizeof f / sizeof f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0 ? -1 : 0;
}
#endif

/* In the child after fork(): only async-signal-safe calls until execve. */
static void child_exec(const char *dir, const char *python, char *const argv[], char *const envp[],
                       int out_fd, int status_fd, const t2_sandbox_opts *o, pid_t parent,
                       int try_netns) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);

    unsigned char iso = T2_SANDBOX_NET_NONE;
    if (try_netns && unshare(CLONE_NEWNET) == 0)
        iso = T2_SANDBOX_NET_NAMESPACE;
    else if (try_netns && unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0)
        iso = T2_SANDBOX_NET_NAMESPACE;
#ifdef T2_HAVE_SECCOMP
    else if (block_sockets() == 0)
        iso = T2_SANDBOX_NET_SECCOMP;
#endif

    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = o->mem_bytes;
    setrlimit(RLIMIT_AS, &rl);
    rl.rlim_cur = (rlim_t)o->timeout_s + 1;
    rl.rlim_max = rl.rlim_cur + 1;
    setrlimit(RLIMIT_CPU, &rl);
    rl.rlim_cur = rl.rlim_max = 16u << 20;
    setrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = rl.rlim_max = 64;
    setrlimit(RLIMIT_NOFILE, &rl);
    setrlimit(RLIMIT_NPROC, &rl);
    rl.rlim_cur = rl.rlim_max = 0;
    setrlimit(RLIMIT_CORE, &rl);

    if (chdir(dir) < 0)
        _exit(126);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(126);
    if (write(status_fd, &iso, 1) != 1)
        _exit(126);
    execve(python, argv, envp);
    unsigned char fail[2] = {0xFF, (unsigned char)(errno & 0xFF)};
    if (write(status_fd, fail, 2) != 2)
        _exit(127);
    _exit(127);
}

/* The options with their defaults and bounds applied. */
static void sandbox_defaults(t2_sandbox_opts *o, const t2_sandbox_opts *opts) {
    *o = (t2_sandbox_opts){0};
    if (opts)
        *o = *opts;
    if (!(o->timeout_s > 0))
        o->timeout_s = 10;
    if (o->timeout_s > 3600)
        o->timeout_s = 3600;
    if (!o->mem_bytes)
        o->mem_bytes = (size_t)1 << 30;
    if (!o->python)
        o->python = T2_SANDBOX_PYTHON;
}

/* A fresh folder under $TMPDIR (dir, cap bytes) holding the program as main.py. */
static int sandbox_dir(char *dir, size_t cap, const char *program, size_t len) {
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char file[600];
    if ((size_t)snprintf(dir, cap, "%s/t2-sandbox-XXXXXX", tmp) >= cap)
        return t2_err_set(T2_EINVAL, "TMPDIR too long");
    if (!mkdtemp(dir))
        return t2_err_set(T2_EIO, "%s: cannot create: %s", dir, strerror(errno));
    snprintf(file, sizeof file, "%s/main.py", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, program, len) < 0) {
        int rc = t2_err_set(T2_EIO, "%s: cannot write: %s", file, strerror(errno));
        if (fd >= 0)
            close(fd);
        remove_tree(dir);
        return rc;
    }
    close(fd);
    return 0;
}

/* The child's status (one isolation byte before exec; 0xFF + errno if exec failed): the errno
 * of a failed exec, else 0. */
static int read_status(int fd, t2_sandbox_result *res) {
    unsigned char st[4];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, st + got, sizeof st - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof st)
            break;
    }
    if (got >= 1)
        res->isolation = (t2_sandbox_isolation)st[0];
    int exec_failed = got >= 3 && st[1] == 0xFF;
    return exec_failed ? (st[2] ? st[2] : -1) : 0;
}

/* The tail of the child's output until it exits or the deadline passes (then its group is
 * killed): 1 if it timed out. The child is left to reap. */
static int collect_output(pid_t pid, int fd, double deadline, t2_sandbox_result *res) {
    tail_buf tail = {res->output, sizeof res->output, 0};
    int out_open = 1, timed_out = 0;
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) {
            kill(-pid, SIGKILL);
            timed_out = 1;
            break;
        }
        int ms = left > 0.05 ? 50 : (int)(left * 1000) + 1;
        struct pollfd pfd = {.fd = out_open ? fd : -1, .events = POLLIN};
        int pr = poll(&pfd, 1, ms);
        if (pr > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            char b[4096];
            ssize_t r = read(fd, b, sizeof b);
            if (r > 0)
                tail_add(&tail, b, (size_t)r);
            else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                out_open = 0;
        }
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
            break; /* exited, not yet reaped */
    }
    /* drain what is already in the pipe */
    if (!timed_out) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        char b[4096];
        ssize_t r;
        while (out_open && (r = read(fd, b, sizeof b)) > 0)
            tail_add(&tail, b, (size_t)r);
    }
    return timed_out;
}

/* The verdict from the wait status. */
static void sandbox_verdict(t2_sandbox_result *res, int timed_out, int status) {
    if (timed_out) {
        res->status = T2_SANDBOX_TIMEOUT;
        res->signal = SIGKILL;
    } else if (WIFEXITED(status)) {
        res->exit_code = WEXITSTATUS(status);
        res->status = res->exit_code == 0 ? T2_SANDBOX_PASSED : T2_SANDBOX_FAILED;
    } else {
        res->status = T2_SANDBOX_SIGNALED;
        res->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
}

/* Run main.py of dir in a confined child; its output and verdict into res. */
static int sandbox_run(const char *dir, const t2_sandbox_opts *o, int try_netns,
                       t2_sandbox_result *res) {
    int rc = 0, out_pipe[2] = {-1, -1}, st_pipe[2] = {-1, -1};
    if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(st_pipe, O_CLOEXEC) < 0) {
        rc = t2_err_set(T2_EIO, "pipe: %s", strerror(errno));
        goto out;
    }
    char home[600];
    snprintf(home, sizeof home, "HOME=%s", dir);
    char *argv[] = {(char *)o->python, "-I", "-S", "main.py", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin",
                    home,
                    "LANG=C.UTF-8",
                    "PYTHONDONTWRITEBYTECODE=1",
                    "PYTHONHASHSEED=0",
                    "no_proxy=*",
                    "http_proxy=http://127.0.0.1:9",
                    "https_proxy=http://127.0.0.1:9",
                    NULL};
    pid_t parent = getpid();
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        rc = t2_err_set(T2_EIO, "fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(dir, o->python, argv, envp, out_pipe[1], st_pipe[1], o, parent, try_netns);
    setpgid(pid, pid); /* also in the parent, so kill(-pid) works at once */
    close(out_pipe[1]);
    out_pipe[1] = -1;
    close(st_pipe[1]);
    st_pipe[1] = -1;
    int exec_errno = read_status(st_pipe[0], res);
    int timed_out = collect_output(pid, out_pipe[0], t0 + o->timeout_s, res), status = 0;
    kill(-pid, SIGKILL); /* any leftover of the group */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    res->seconds = now_s() - t0;
    if (exec_errno)
        rc = t2_err_set(T2_ENOTFOUND, "%s: cannot execute: %s", o->python,
                        strerror(exec_errno > 0 ? exec_errno : 0));
    else
        sandbox_verdict(res, timed_out, status);
out:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (st_pipe[i] >= 0)
            close(st_pipe[i]);
    }
    return rc;
}

int t2_sandbox_run_python(const char *program, size_t len, const t2_sandbox_opts *opts,
                          t2_sandbox_result *res) {
    memset(res, 0, sizeof *res);
    t2_sandbox_opts o;
    sandbox_defaults(&o, opts);
    if (access(o.python, X_OK) < 0)
        return t2_err_set(T2_ENOTFOUND, "%s: cannot execute: %s (the code scorer needs it)",
                          o.python, strerror(errno));
    const char *env_netns = getenv("T2_SANDBOX_NO_NETNS"); /* tests: exercise the fallback */
    int try_netns = !(env_netns && *env_netns && strcmp(env_netns, "0"));
    char dir[512];
    int rc = sandbox_dir(dir, sizeof dir, program, len);
    if (rc < 0)
        return rc;
    rc = sandbox_run(dir, &o, try_netns, res);
    remove_tree(dir);
    return rc;
}

int t2_run_capture(char *const argv[], size_t max, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    int op[2] = {-1, -1}, ep[2] = {-1, -1};
    if (pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (op[i] >= 0)
                close(op[i]);
            if (ep[i] >= 0)
                close(ep[i]);
        }
        return t2_err_set(T2_EIO, "pipe: %s", strerror(e));
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close(op[i]);
            close(ep[i]);
        }
        return t2_err_set(T2_EIO, "fork: %s", strerror(e));
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(op[1], 1) < 0 || dup2(ep[1], 2) < 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    close(op[1]);
    close(ep[1]);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    char errtail[512];
    tail_buf et = {errtail, sizeof errtail, 0};
    errtail[0] = 0;
    int rc = 0, open_o = 1, open_e = 1;
    while (open_o || open_e) {
        struct pollfd p[2] = {{.fd = open_o ? op[0] : -1, .events = POLLIN},
                              {.fd = open_e ? ep[0] : -1, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = t2_err_set(T2_EIO, "poll: %s", strerror(errno));
            break;
        }
        if (p[0].revents) {
            if (cap - n < 65536) {
                size_t nc = cap ? 2 * cap : 1 << 20;
                char *nb = realloc(buf, nc + 1);
                if (!nb) {
                    rc = t2_err_set(T2_ENOMEM, "out of memory reading %s", argv[0]);
                    break;
                }
                buf = nb;
                cap = nc;
            }
            ssize_t r = read(op[0], buf + n, cap - n);
            if (r > 0) {
                n += (size_t)r;
                if (n > max) {
                    rc = t2_err_set(T2_ERANGE, "%s: output larger than %zu bytes", argv[0], max);
                    break;
                }
            } else if (r == 0 || errno != EINTR) {
                open_o = 0;
            }
        }
        if (p[1].revents) {
            char b[1024];
            ssize_t r = read(ep[0], b, sizeof b);
            if (r > 0)
                tail_add(&et, b, (size_t)r);
            else if (r == 0 || errno != EINTR)
                open_e = 0;
        }
    }
    if (rc < 0)
        kill(pid, SIGKILL);
    close(op[0]);
    close(ep[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        size_t k = strlen(errtail);
        while (k && (errtail[k - 1] == '\n' || errtail[k - 1] == '\r'))
            errtail[--k] = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !k)
            rc = t2_err_set(T2_ENOTFOUND, "%s: cannot execute", argv[0]);
        else
            rc = t2_err_set(
                T2_EIO, "%s failed (%s %d)%s%s", argv[0], WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), k ? ": " : "", errtail);
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf)
            return t2_err_set(T2_ENOMEM, "out of memory");
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}
