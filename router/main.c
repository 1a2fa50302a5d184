/* main.c - t2-router: command-line flags into a t2_router_config, signals, run. */
#include "base/args.h"
#include "base/t2_err.h"
#include "base/t2_log.h"
#include "t2_router.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f) {
    t2_router_config d;
    t2_router_config_defaults(&d);
    fprintf(f,
            "usage: t2-router [options]\n"
            "  --bind ENDPOINT       ZeroMQ endpoint to bind (default %s)\n"
            "  --heartbeat-ms N      heartbeat interval, both ways (default %d)\n"
            "  --liveness N          missed heartbeats before a peer is dead (default %d)\n"
            "  --queue-max N         waiting requests per service before EBUSY (default %d)\n"
            "  --max-msg BYTES       largest message accepted (default %zu)\n"
            "  --stats-ms N          log the counters every N ms, 0: at shutdown only (default %d)\n"
            "  --cancel-grace-ms N   how long a cancelled job may hold its worker slot\n"
            "                        (default liveness x heartbeat)\n"
            "  --service NAME        a service known from the start (repeatable; others appear\n"
            "                        when a worker registers for them)\n"
            "  --client-max N        requests one client may have queued or running (default %d)\n"
            "  --progress-ms N       a job at a worker with no chunk or result for N ms is taken\n"
            "                        back: the worker is dropped, its jobs requeued (0: off;\n"
            "                        default %d)\n"
            "  --curve-key FILE      the router's CURVE key pair (t2 keygen): encrypt and\n"
            "                        authenticate every connection\n"
            "  --allow-clients F     public keys allowed as clients (a file, one key a line, or\n"
            "  --allow-workers F     a folder of .pub files); as workers; as dispatchers\n"
            "  --allow-dispatchers F\n"
            "  --insecure            allow plain ZeroMQ on a non-loopback address\n"
            "  --model-sha256 HEX    refuse workers that announce another model\n"
            "  --log-level LEVEL     error, warn, info, debug (default info)\n"
            "  --help\n",
            d.bind, d.heartbeat_ms, d.liveness, d.queue_max, d.max_msg, d.stats_ms, d.client_max, d.progress_ms);
}

static int parse_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return t2_err_set(T2_EINVAL, "%s: '%s' is not an integer in [%ld, %ld]", flag, s, lo, hi);
    *out = v;
    return 0;
}

/* Flags into cfg. Returns 0, 1 for --help, or T2_EINVAL with a message. */
static int parse_args(t2_router_config *cfg, int argc, char **argv) {
    /* --insecure is the one flag without a value: taken out before the pairs are read */
    char *pairs[argc + 1];
    int np = 0;
    for (int k = 0; k < argc; k++) {
        if (k > 0 && strcmp(argv[k], "--insecure") == 0)
            cfg->insecure = 1;
        else
            pairs[np++] = argv[k];
    }
    pairs[np] = NULL;
    argc = np;
    argv = pairs;
    const char *a, *v;
    int rc, i = 1;
    while ((rc = t2_args_next(argc, argv, &i, &a, &v)) == 1) {
        long n;
        if (strcmp(a, "--bind") == 0) {
            if (strlen(v) >= sizeof cfg->bind) return t2_err_set(T2_EINVAL, "--bind: endpoint too long");
            snprintf(cfg->bind, sizeof cfg->bind, "%s", v);
        } else if (strcmp(a, "--heartbeat-ms") == 0) {
            if (!(rc = parse_int(a, v, 10, 600000, &n))) cfg->heartbeat_ms = (int)n;
        } else if (strcmp(a, "--liveness") == 0) {
            if (!(rc = parse_int(a, v, 1, 1000, &n))) cfg->liveness = (int)n;
        } else if (strcmp(a, "--queue-max") == 0) {
            if (!(rc = parse_int(a, v, 0, 10000000, &n))) cfg->queue_max = (int)n;
        } else if (strcmp(a, "--max-msg") == 0) {
            if (!(rc = parse_int(a, v, 1024, T2_MSG_MAX_PEER, &n))) cfg->max_msg = (size_t)n;
        } else if (strcmp(a, "--stats-ms") == 0) {
            if (!(rc = parse_int(a, v, 0, INT_MAX, &n))) cfg->stats_ms = (int)n;
        } else if (strcmp(a, "--cancel-grace-ms") == 0) {
            if (!(rc = parse_int(a, v, 0, INT_MAX, &n))) cfg->cancel_grace_ms = (int)n;
        } else if (strcmp(a, "--service") == 0) {
            if (cfg->n_services >= T2_ROUTER_DECLARED_MAX)
                return t2_err_set(T2_EINVAL, "--service: more than %d", T2_ROUTER_DECLARED_MAX);
            if (strlen(v) > T2_MSG_NAME_MAX)
                return t2_err_set(T2_EINVAL, "--service '%s': longer than %u bytes", v, T2_MSG_NAME_MAX);
            snprintf(cfg->services[cfg->n_services++], sizeof cfg->services[0], "%s", v);
        } else if (strcmp(a, "--progress-ms") == 0) {
            if (!(rc = parse_int(a, v, 0, INT_MAX, &n))) cfg->progress_ms = (int)n;
        } else if (strcmp(a, "--client-max") == 0) {
            if (!(rc = parse_int(a, v, 1, 10000000, &n))) cfg->client_max = (int)n;
        } else if (strcmp(a, "--curve-key") == 0 || strcmp(a, "--allow-clients") == 0 ||
                   strcmp(a, "--allow-workers") == 0 || strcmp(a, "--allow-dispatchers") == 0) {
            char *dst = a[2] == 'c' ? cfg->curve_key
                        : a[8] == 'c' ? cfg->allow[T2_KEY_CLIENT]
                        : a[8] == 'w' ? cfg->allow[T2_KEY_WORKER]
                                      : cfg->allow[T2_KEY_DISPATCHER];
            if (strlen(v) >= T2_ROUTER_PATH_MAX) return t2_err_set(T2_EINVAL, "%s: path too long", a);
            snprintf(dst, T2_ROUTER_PATH_MAX, "%s", v);
        } else if (strcmp(a, "--model-sha256") == 0) {
            if (strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64)
                return t2_err_set(T2_EINVAL, "--model-sha256: '%s' is not 64 lowercase hex digits", v);
            snprintf(cfg->model_sha256, sizeof cfg->model_sha256, "%s", v);
        } else if (strcmp(a, "--log-level") == 0) {
            rc = t2_log_set_level_str(v);
        } else {
            return t2_err_set(T2_EINVAL, "%s: unknown flag (see --help)", a);
        }
        if (rc < 0) return rc;
    }
    if (rc == T2_ARGS_HELP) return 1;
    return rc < 0 ? rc : t2_router_config_check(cfg);
}

int main(int argc, char **argv) {
    t2_log_set_role("router", -1);
    t2_log_level = T2_LOG_INFO;
    t2_router_config cfg;
    t2_router_config_defaults(&cfg);
    int rc = parse_args(&cfg, argc, argv);
    if (rc == 1) {
        usage(stdout);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "t2-router: %s\n", t2_err_msg());
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the poll returns EINTR and the loop ends */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (t2_router_run(&cfg, &stop_flag) < 0) {
        fprintf(stderr, "t2-router: %s\n", t2_err_msg());
        return 1;
    }
    return 0;
}
