/* echo_worker.c - a test worker on the worker API: it "generates" by streaming the prompt's
 * bytes back in chunks of --chunk-bytes, one chunk per job every --delay-ms, holding up to
 * --capacity jobs at once, then sends a Result whose text is the whole prompt.
 *
 *   echo_worker --endpoint tcp://127.0.0.1:5555 [--service echo] [--capacity 1]
 *               [--chunk-bytes 4] [--delay-ms 0] [--heartbeat-ms 1000] [--liveness 3]
 *               [--name NAME] [--events FILE]
 *               [--die-after-chunks N]   exit at once (no goodbye) after N chunks: a crash
 *               [--hang-after-chunks N]  stop everything (no heartbeats) after N chunks
 *               [--stall-after-chunks N] stop answering after N chunks, but keep
 *                                        heartbeating (a stuck pipeline behind a live head)
 *               [--bad-utf8 1]           end every Result's text with an invalid byte 0xff
 *               [--router-public F --key F]  CURVE: the router's public key, our key pair
 *
 * --events FILE gets one line per event, for tests: "job JOB REQ ATTEMPT", "chunk JOB SEQ",
 * "cancel JOB", "done JOB", "orphan JOB", "hang", "stall". SIGTERM / SIGINT end it cleanly (exit 0).
 */
#include "base/t2_err.h"
#include "base/t2_log.h"
#include "t2_worker_api.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CAPACITY 64

typedef struct active {
    t2_job *job;
    char *text; /* what to echo */
    size_t len, pos;
    uint64_t start_ms;
} active;

static volatile sig_atomic_t stop;
static FILE *events;
static long chunks_sent;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void event(const char *fmt, ...) {
    if (!events) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(events, fmt, ap);
    va_end(ap);
    fputc('\n', events);
    fflush(events);
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The text to echo: the prompt's bytes, or the token ids written out. */
static char *echo_text(const T2__Task *t, size_t *len) {
    if (t->has_prompt) {
        char *s = malloc(t->prompt.len + 2); /* + room for --bad-utf8 */
        if (!s) return NULL;
        if (t->prompt.len) memcpy(s, t->prompt.data, t->prompt.len);
        s[t->prompt.len] = 0;
        *len = t->prompt.len;
        return s;
    }
    size_t cap = t->n_tokens * 11 + 2, n = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = 0;
    for (size_t i = 0; i < t->n_tokens; i++)
        n += (size_t)snprintf(s + n, cap - n, i ? " %u" : "%u", t->tokens[i]);
    *len = n;
    return s;
}

static int bad_utf8;

static void finish(t2_worker *w, active *a) {
    const T2__Job *jm = t2_job_msg(a->job);
    T2__Result r = T2__RESULT__INIT;
    r.has_text = 1;
    r.text.data = (uint8_t *)a->text;
    r.text.len = a->len;
    if (bad_utf8) a->text[a->len] = (char)0xff, r.text.len++; /* echo_text left room */
    r.has_finish_reason = 1;
    r.finish_reason = T2__FINISH_REASON__FINISH_STOP;
    r.has_prompt_tokens = r.has_completion_tokens = 1;
    r.prompt_tokens = (uint32_t)a->len;
    r.completion_tokens = (uint32_t)a->len;
    r.label = "echo";
    r.has_pass1_ms = r.has_pass2_ms = 1;
    r.pass1_ms = 0;
    r.pass2_ms = (double)(now_ms() - a->start_ms);
    int rc = t2_worker_send_result(w, a->job, &r);
    event(rc == 0 ? "done %" PRIu64 : "orphan %" PRIu64, jm->job_id);
}

int main(int argc, char **argv) {
    const char *endpoint = NULL, *service = "echo", *name = NULL, *events_path = NULL;
    const char *router_pub = NULL, *key = NULL;
    int capacity = 1, chunk = 4, delay = 0, hb = 1000, liveness = 3;
    long die_after = -1, hang_after = -1, stall_after = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "echo_worker: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--endpoint")) endpoint = v;
        else if (!strcmp(a, "--service")) service = v;
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--events")) events_path = v;
        else if (!strcmp(a, "--capacity")) capacity = atoi(v);
        else if (!strcmp(a, "--chunk-bytes")) chunk = atoi(v);
        else if (!strcmp(a, "--delay-ms")) delay = atoi(v);
        else if (!strcmp(a, "--heartbeat-ms")) hb = atoi(v);
        else if (!strcmp(a, "--liveness")) liveness = atoi(v);
        else if (!strcmp(a, "--die-after-chunks")) die_after = atol(v);
        else if (!strcmp(a, "--hang-after-chunks")) hang_after = atol(v);
        else if (!strcmp(a, "--stall-after-chunks")) stall_after = atol(v);
        else if (!strcmp(a, "--bad-utf8")) bad_utf8 = atoi(v);
        else if (!strcmp(a, "--router-public")) router_pub = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--log-level")) t2_log_set_level_str(v);
        else {
            fprintf(stderr, "echo_worker: unknown flag %s\n", a);
            return 2;
        }
    }
    if (!endpoint || capacity < 1 || capacity > MAX_CAPACITY || chunk < 1) {
        fprintf(stderr, "echo_worker: need --endpoint, --capacity in [1, %d], --chunk-bytes >= 1\n",
                MAX_CAPACITY);
        return 2;
    }
    t2_log_set_role("echo-worker", -1);
    if (events_path && !(events = fopen(events_path, "a"))) {
        perror(events_path);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    t2_worker_opts o = t2_worker_opts_default(service);
    o.capacity = (uint32_t)capacity;
    o.name = name;
    o.heartbeat_ms = hb;
    o.liveness = liveness;
    o.reconnect_ms = hb < 250 ? hb : 250;
    o.reconnect_max_ms = 4 * hb > o.reconnect_ms ? 4 * hb : o.reconnect_ms;
    static const char *const experts[] = {"math", "code", "reasoning"};
    o.experts = experts;
    o.n_experts = 3;
    t2_curve_client cc;
    if (router_pub && key) {
        if (t2_curve_load_client(router_pub, key, &cc) < 0) {
            fprintf(stderr, "echo_worker: %s\n", t2_err_msg());
            return 2;
        }
        o.curve = &cc;
    }
    t2_worker *w;
    if (t2_worker_new(&w, NULL, endpoint, &o) < 0) {
        fprintf(stderr, "echo_worker: %s\n", t2_err_msg());
        return 1;
    }
    active act[MAX_CAPACITY];
    int n = 0;
    while (!stop) {
        /* take new jobs while there is room; wait only when idle */
        while (n < capacity && !stop) {
            t2_job *job;
            int rc = t2_worker_recv(w, &job, n ? 0 : 50);
            if (rc < 0) {
                fprintf(stderr, "echo_worker: %s\n", t2_err_msg());
                stop = 1;
            }
            if (rc <= 0) break;
            const T2__Job *jm = t2_job_msg(job);
            active *a = &act[n];
            memset(a, 0, sizeof *a);
            a->job = job;
            a->start_ms = now_ms();
            a->text = echo_text(jm->task, &a->len);
            event("job %" PRIu64 " %" PRIu64 " %u", jm->job_id, jm->request_id, jm->attempt);
            if (!a->text) {
                t2_worker_send_error(w, job, T2_ENOMEM, "echo worker out of memory");
                t2_job_destroy(&job);
                continue;
            }
            n++;
        }
        if (!n) continue;
        /* one step for every job: a chunk, or the result */
        for (int i = 0; i < n; i++) {
            active *a = &act[i];
            uint64_t jid = t2_job_msg(a->job)->job_id;
            int done = 0;
            if (a->pos < a->len) {
                size_t k = a->len - a->pos < (size_t)chunk ? a->len - a->pos : (size_t)chunk;
                int rc = t2_worker_send_chunk(w, a->job, a->text + a->pos, k, NULL, 0);
                if (rc == T2_ECANCELLED) {
                    event(t2_job_was_cancelled(a->job) ? "cancel %" PRIu64 : "orphan %" PRIu64, jid);
                    done = 1;
                } else if (rc < 0) {
                    fprintf(stderr, "echo_worker: %s\n", t2_err_msg());
                    done = 1;
                } else {
                    a->pos += k;
                    chunks_sent++;
                    if (die_after >= 0 && chunks_sent >= die_after) _exit(3); /* a crash */
                    if (hang_after >= 0 && chunks_sent >= hang_after) {
                        event("hang");
                        for (;;) pause(); /* no heartbeats any more; the test kills us */
                    }
                    if (stall_after >= 0 && chunks_sent >= stall_after) {
                        event("stall");
                        while (!stop) { /* alive to the router, but no job moves */
                            t2_worker_pump(w);
                            sleep_ms(20);
                        }
                    }
                }
            } else {
                finish(w, a);
                done = 1;
            }
            if (done) {
                t2_job_destroy(&a->job);
                free(a->text);
                act[i--] = act[--n];
            }
        }
        if (delay > 0) sleep_ms(delay);
    }
    for (int i = 0; i < n; i++) { /* stopped mid-job: destroy sends the error reply */
        t2_job_destroy(&act[i].job);
        free(act[i].text);
    }
    t2_worker_destroy(&w);
    if (events) fclose(events);
    return 0;
}
