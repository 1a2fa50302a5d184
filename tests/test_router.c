/* test_router.c - the router, worker API and client library together, on loopback TCP.
 *
 * t2-router and echo_worker run as subprocesses (from $T2_BIN, or beside this program);
 * clients are t2_client objects and raw DEALER sockets in this process. Heartbeats are
 * 100 ms with liveness 3, so a dead peer is found within about 300 ms. Scenarios:
 *   concurrent   3 clients x 8 requests across 2 echo workers: one complete result each
 *   bad_input    garbage, truncated protobuf, wrong version, missing fields, two frames,
 *                oversized, unknown service: error replies with codes; counters move; the
 *                router goes on serving. A worker's oversized reply fails its request.
 *   worker_death a worker that crashes and one that hangs mid-job: their jobs are requeued
 *                and complete on another worker, one result per request
 *   stall        a worker that keeps heartbeating but stops answering mid-job: past the
 *                router's progress deadline (--progress-ms PROGRESS) it is dropped, its jobs
 *                requeued and answered once each by another worker; the log names the jobs
 *   bad_utf8     a worker's Result text that is not UTF-8 reaches the client repaired (U+FFFD)
 *   client_gone  a client that says goodbye, one that vanishes, one that cancels, one
 *                that runs out of time: the worker gets a Cancel for each
 *   busy         a second router with --queue-max 2 and no workers: EBUSY at once; a
 *                request timeout; clean SIGTERM with the counters logged
 *   dispatcher   one thread both a worker ("relay") and a client (of "echo") on one
 *                context and one zmq_poll, as a dispatcher is
 *   restart      the router restarts under a request in flight: workers and clients
 *                reconnect, the request completes, new requests work; each worker
 *                registers again once (not once per message it had in flight)
 * Time limits are limits on hangs, not measures of speed: every wait for something that must
 * happen gives up only after HANG_MS, so that a loaded machine slows the test down without
 * failing it. Only what must NOT happen early is timed (a timeout does not fire before its
 * time). A watchdog (alarm) kills everything if the whole run takes over WATCHDOG_S.
 */
#include "t2_client.h"
#include "base/t2_err.h"
#include "t2_test.h"
#include "t2_wire.h"
#include "t2_worker_api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define HB "100"
#define HANG_MS 15000   /* a wait for something that must happen: longer means it is stuck */
#define WATCHDOG_S 150  /* the whole run (ctest's TIMEOUT is above it) */
#define LIVENESS "3"
#define PROGRESS "1500" /* the router's progress deadline (ms) */
#define MAX_CHILDREN 32

static char bin_dir[1024], tmp_dir[256], endpoint[64];
static pid_t children[MAX_CHILDREN];
static int n_children;
static void *zctx;
static pid_t router_pid;
static int router_runs;

/* ---- processes ------------------------------------------------------------------------------ */

static void kill_all(void) {
    for (int i = 0; i < n_children; i++)
        if (children[i] > 0) kill(children[i], SIGKILL);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "test_router: watchdog: the run took too long, killing everything\n";
    if (write(2, m, sizeof m - 1) < 0) {
    }
    kill_all();
    _exit(1);
}

static void forget_child(pid_t pid) {
    for (int i = 0; i < n_children; i++)
        if (children[i] == pid) children[i] = 0;
}

/* Start bin_dir/prog with args (NULL-terminated), stdout+stderr to tmp_dir/log. */
static pid_t spawn(const char *prog, const char *log, const char *const *args) {
    char path[1200], logpath[512];
    snprintf(path, sizeof path, "%s/%s", bin_dir, prog);
    snprintf(logpath, sizeof logpath, "%s/%s", tmp_dir, log);
    const char *argv[40];
    int n = 0;
    argv[n++] = path;
    for (; args[n - 1] && n < 39; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(path, (char *const *)argv);
        _exit(127);
    }
    if (pid > 0 && n_children < MAX_CHILDREN) children[n_children++] = pid;
    return pid;
}

/* Wait for pid to exit (up to timeout_ms); returns its exit code, 128+signal, or -1 (then it
 * is killed). */
static int wait_child(pid_t pid, int timeout_ms) {
    for (int waited = 0;; waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            forget_child(pid);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (r < 0 || waited >= timeout_ms) break;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    forget_child(pid);
    return -1;
}

static int stop_child(pid_t pid, int sig) {
    kill(pid, sig);
    return wait_child(pid, HANG_MS);
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &len) < 0) {
        perror("free_port");
        exit(1);
    }
    close(s);
    return ntohs(a.sin_port);
}

static pid_t start_router(void) {
    char log[64];
    snprintf(log, sizeof log, "router%d.log", ++router_runs);
    const char *args[] = {"--bind", endpoint, "--heartbeat-ms", HB, "--liveness", LIVENESS,
                          "--queue-max", "64", "--max-msg", "65536", "--stats-ms", "1000",
                          "--service", "echo", "--service", "fragile", "--service", "slow",
                          "--progress-ms", PROGRESS, NULL};
    return router_pid = spawn("t2-router", log, args);
}

static pid_t start_worker(const char *service, const char *name, const char *capacity,
                          const char *delay_ms, const char *chunk, const char *extra_flag,
                          const char *extra_val) {
    char log[128], ev[512];
    snprintf(log, sizeof log, "%s.log", name);
    snprintf(ev, sizeof ev, "%s/%s.events", tmp_dir, name);
    const char *args[] = {"--endpoint", endpoint, "--service", service, "--name", name,
                          "--capacity", capacity, "--delay-ms", delay_ms, "--chunk-bytes", chunk,
                          "--heartbeat-ms", HB, "--liveness", LIVENESS, "--events", ev,
                          extra_flag, extra_val, NULL};
    return spawn("echo_worker", log, args);
}

/* Lines of tmp_dir/NAME.events starting with `prefix`. */
static int count_events(const char *name, const char *prefix) {
    char path[512], line[256];
    snprintf(path, sizeof path, "%s/%s.events", tmp_dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    size_t k = strlen(prefix);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, prefix, k) == 0) n++;
    fclose(f);
    return n;
}

static int wait_events(const char *name, const char *prefix, int at_least, int timeout_ms) {
    for (int t = 0; t < timeout_ms; t += 10) {
        if (count_events(name, prefix) >= at_least) return 1;
        usleep(10000);
    }
    return count_events(name, prefix) >= at_least;
}

static int file_has(const char *log, const char *needle) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, log);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* Lines of tmp_dir/LOG containing needle. */
static int count_lines(const char *log, const char *needle) {
    char path[512], line[1024];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, log);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static uint64_t now_ms(void) {
    return t2_wire_now_ms();
}

/* ---- clients -------------------------------------------------------------------------------- */

static t2_client *new_client(void) {
    t2_client_opts o = t2_client_opts_default();
    o.heartbeat_ms = atoi(HB);
    o.liveness = atoi(LIVENESS);
    t2_client *c = NULL;
    if (t2_client_new(&c, zctx, endpoint, &o) < 0) {
        fprintf(stderr, "client: %s\n", t2_err_msg());
        exit(1);
    }
    return c;
}

/* The router's counters (0 on success). Only while the client has nothing in flight. */
static int get_stats(t2_client *c, T2__Stats *out) {
    t2_client_request_stats(c);
    t2_client_event ev = {0};
    uint64_t end = now_ms() + HANG_MS;
    while (now_ms() < end) {
        if (t2_client_recv(c, &ev, 100) == 1 && ev.type == T2_CLIENT_STATS) {
            *out = *ev.stats;
            t2_client_event_clear(&ev);
            return 0;
        }
    }
    t2_client_event_clear(&ev);
    return -1;
}

static int wait_workers(t2_client *admin, uint32_t n, int timeout_ms) {
    T2__Stats st;
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (now_ms() < end) {
        if (get_stats(admin, &st) == 0 && st.workers == n) return 1;
        usleep(20000);
    }
    return 0;
}

/* Wait until no job is at a worker (acknowledgements travel on other sockets than ours). */
static uint32_t wait_idle(t2_client *c, int timeout_ms) {
    T2__Stats st = T2__STATS__INIT;
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (get_stats(c, &st) == 0 && st.in_flight && now_ms() < end) usleep(10000);
    return st.in_flight;
}

typedef struct req {
    int client;
    uint64_t id;
    char prompt[512];
    size_t plen;
    char got[512]; /* chunks, concatenated */
    size_t glen;
    int results, errors, chunks, code;
    char result_text[512];
} req;

/* Pump every client until each request has its final event (or timeout_ms; at least one
 * round). Returns the number of requests that have ended. */
static int run_requests(t2_client **cs, int nc, req *rs, int n, int timeout_ms) {
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    int ended = 0;
    for (int i = 0; i < n; i++) ended += rs[i].results + rs[i].errors;
    t2_client_event ev = {0};
    do {
        for (int ci = 0; ci < nc; ci++) {
            while (t2_client_recv(cs[ci], &ev, ci == 0 ? 5 : 0) == 1) {
                req *r = NULL;
                for (int i = 0; i < n; i++)
                    if (rs[i].client == ci && rs[i].id == ev.request_id) r = &rs[i];
                T2_CHECK_MSG(r != NULL, "event %d for unknown request %" PRIu64, ev.type, ev.request_id);
                if (!r) continue;
                if (ev.type == T2_CLIENT_CHUNK) {
                    const ProtobufCBinaryData *t = &ev.chunk->text;
                    if (r->glen + t->len < sizeof r->got) {
                        memcpy(r->got + r->glen, t->data, t->len);
                        r->glen += t->len;
                    }
                    r->chunks++;
                    T2_CHECK_MSG(r->results + r->errors == 0, "chunk after the end of %" PRIu64, r->id);
                } else if (ev.type == T2_CLIENT_RESULT) {
                    r->results++;
                    ended++;
                    size_t k = ev.result->text.len < sizeof r->result_text - 1 ? ev.result->text.len
                                                                               : sizeof r->result_text - 1;
                    memcpy(r->result_text, ev.result->text.data, k);
                    r->result_text[k] = 0;
                } else if (ev.type == T2_CLIENT_ERROR) {
                    r->errors++;
                    r->code = ev.code;
                    ended++;
                    fprintf(stderr, "request %" PRIu64 ": error %d: %s\n", r->id, ev.code, ev.message);
                }
            }
        }
    } while (ended < n && now_ms() < end);
    t2_client_event_clear(&ev);
    return ended;
}

static void check_echoed(const req *rs, int n) {
    for (int i = 0; i < n; i++) {
        const req *r = &rs[i];
        T2_CHECK_MSG(r->results == 1 && r->errors == 0, "request %d: %d results, %d errors (code %d)",
                     i, r->results, r->errors, r->code);
        T2_CHECK_MSG(r->glen == r->plen && memcmp(r->got, r->prompt, r->plen) == 0,
                     "request %d: chunks gave '%.*s', sent '%s'", i, (int)r->glen, r->got, r->prompt);
        T2_CHECK_MSG(strcmp(r->result_text, r->prompt) == 0, "request %d: result '%s'", i, r->result_text);
    }
}

static void make_prompt(req *r, int ci, int i, size_t len) {
    int k = snprintf(r->prompt, sizeof r->prompt, "client %d request %d:", ci, i);
    while ((size_t)k < len && (size_t)k < sizeof r->prompt - 1) {
        r->prompt[k] = (char)('a' + (k * 7 + i) % 26);
        k++;
    }
    r->prompt[k] = 0;
    r->plen = (size_t)k;
}

static void submit(t2_client *c, req *r, const char *service) {
    int rc = t2_client_submit_prompt(c, service, r->prompt, 0, &r->id);
    T2_CHECK_MSG(rc == 0, "submit: %s", t2_err_msg());
}

/* ---- raw sockets ---------------------------------------------------------------------------- */

/* Send frames (nparts of them) on a raw DEALER and wait for one decoded reply. */
static T2__Msg *raw_exchange(void *s, const void *buf, size_t len, int nparts) {
    for (int i = 0; i < nparts; i++)
        zmq_send(s, buf, len, (i + 1 < nparts ? ZMQ_SNDMORE : 0));
    uint64_t end = now_ms() + HANG_MS;
    while (now_ms() < end) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 100);
        T2__Msg *m;
        int rc = t2_wire_recv(s, &m, 0, NULL);
        if (rc == 1) {
            if (m->body_case == T2__MSG__BODY_HEARTBEAT) {
                t2_msg_free(m);
                continue;
            }
            return m;
        }
    }
    return NULL;
}

static uint8_t *pack_request(uint64_t id, const char *service, const char *prompt, size_t plen,
                             uint32_t version, size_t *len) {
    T2__Task t = T2__TASK__INIT;
    t.has_prompt = 1;
    t.prompt.data = (uint8_t *)prompt;
    t.prompt.len = plen;
    T2__Request q = T2__REQUEST__INIT;
    q.has_request_id = 1;
    q.request_id = id;
    q.service = (char *)service;
    q.task = &t;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_REQUEST;
    m.request = &q;
    t2_msg_prepare(&m);
    m.version = version;
    *len = t2__msg__get_packed_size(&m);
    uint8_t *b = malloc(*len);
    t2__msg__pack(&m, b);
    return b;
}

static void expect_error(T2__Msg *m, int code, uint64_t rid, const char *what) {
    T2_CHECK_MSG(m != NULL, "%s: no reply", what);
    if (!m) return;
    T2_CHECK_MSG(m->body_case == T2__MSG__BODY_ERROR, "%s: reply is a %s", what,
                 t2_msg_body_name(m->body_case));
    if (m->body_case == T2__MSG__BODY_ERROR) {
        T2_CHECK_MSG(m->error->code == code, "%s: code %d, want %d (%s)", what, m->error->code, code,
                     m->error->message);
        T2_CHECK_MSG(m->error->request_id == rid, "%s: request id %" PRIu64 ", want %" PRIu64, what,
                     m->error->request_id, rid);
        T2_CHECK_MSG(m->error->message && m->error->message[0], "%s: no message", what);
    }
    t2_msg_free(m);
}

/* ---- scenarios ------------------------------------------------------------------------------ */

static t2_client *admin;

static void test_concurrent(void) {
    enum { NC = 3, PER = 8, N = NC * PER };
    t2_client *cs[NC];
    static req rs[N];
    memset(rs, 0, sizeof rs);
    for (int ci = 0; ci < NC; ci++) cs[ci] = new_client();
    for (int ci = 0; ci < NC; ci++)
        for (int i = 0; i < PER; i++) {
            req *r = &rs[ci * PER + i];
            r->client = ci;
            make_prompt(r, ci, i, 24 + (size_t)((ci * PER + i) * 13) % 180);
            submit(cs[ci], r, "echo");
        }
    uint64_t t0 = now_ms();
    int ended = run_requests(cs, NC, rs, N, HANG_MS);
    printf("     %d requests ended in %" PRIu64 " ms\n", ended, now_ms() - t0);
    T2_CHECK_EQ_INT(ended, N);
    check_echoed(rs, N);
    /* nothing more may come */
    t2_client_event ev = {0};
    for (int ci = 0; ci < NC; ci++) {
        T2_CHECK_EQ_INT(t2_client_recv(cs[ci], &ev, 50), 0);
        T2_CHECK_EQ_INT(t2_client_pending(cs[ci]), 0);
    }
    t2_client_event_clear(&ev);
    int a = count_events("echo1", "job "), b = count_events("echo2", "job ");
    printf("     echo1 served %d, echo2 served %d\n", a, b);
    T2_CHECK(a > 0 && b > 0 && a + b == N);
    for (int ci = 0; ci < NC; ci++) t2_client_destroy(&cs[ci]);
}

static void test_bad_input(void) {
    T2__Stats before, after;
    T2_CHECK(get_stats(admin, &before) == 0);
    void *s = t2_wire_dealer(zctx, endpoint, 0);
    T2_CHECK(s != NULL);
    if (!s) return;

    static const char garbage[] = "\xff\xfe\x01 this is not a protobuf \x80\x80\x80";
    expect_error(raw_exchange(s, garbage, sizeof garbage, 1), T2_EPROTO, 0, "garbage");

    size_t len;
    static char prompt[100000];
    memset(prompt, 'x', sizeof prompt);
    uint8_t *b = pack_request(7, "echo", prompt, 100, T2_PROTO_VERSION, &len);
    expect_error(raw_exchange(s, b, len - 10, 1), T2_EPROTO, 0, "truncated");
    expect_error(raw_exchange(s, b, len, 2), T2_EPROTO, 0, "two frames");
    free(b);

    b = pack_request(8, "echo", "hi", 2, 99, &len);
    expect_error(raw_exchange(s, b, len, 1), T2_EPROTO, 8, "wrong version");
    free(b);

    b = pack_request(9, "echo", prompt, sizeof prompt, T2_PROTO_VERSION, &len);
    expect_error(raw_exchange(s, b, len, 1), T2_EPROTO, 9, "oversized");
    free(b);

    { /* a request without its task */
        T2__Request q = T2__REQUEST__INIT;
        q.has_request_id = 1;
        q.request_id = 10;
        q.service = "echo";
        T2__Msg m = T2__MSG__INIT;
        m.body_case = T2__MSG__BODY_REQUEST;
        m.request = &q;
        uint8_t *p;
        t2_msg_pack_alloc(&m, &p, &len);
        expect_error(raw_exchange(s, p, len, 1), T2_EPROTO, 10, "missing task");
        free(p);
    }
    { /* a bad value: temperature NaN */
        T2__Task t = T2__TASK__INIT;
        t.has_prompt = 1;
        t.prompt.data = (uint8_t *)"x";
        t.prompt.len = 1;
        T2__Sampling sp = T2__SAMPLING__INIT;
        sp.has_temperature = 1;
        sp.temperature = NAN;
        t.sampling = &sp;
        T2__Request q = T2__REQUEST__INIT;
        q.has_request_id = 1;
        q.request_id = 11;
        q.service = "echo";
        q.task = &t;
        T2__Msg m = T2__MSG__INIT;
        m.body_case = T2__MSG__BODY_REQUEST;
        m.request = &q;
        uint8_t *p;
        t2_msg_pack_alloc(&m, &p, &len);
        expect_error(raw_exchange(s, p, len, 1), T2_EPROTO, 11, "NaN temperature");
        free(p);
    }
    b = pack_request(12, "no-such-service", "hi", 2, T2_PROTO_VERSION, &len);
    expect_error(raw_exchange(s, b, len, 1), T2_ENOTFOUND, 12, "unknown service");
    free(b);

    { /* a worker's reply over the limit (the echo of a prompt just under it): the client
       * gets one final EPROTO, the job is cancelled at the worker and its slot freed */
        pid_t big = start_worker("big", "big", "1", "0", "8192", NULL, NULL);
        T2_CHECK(wait_workers(admin, before.workers + 1, HANG_MS));
        static char p2[65536 - 40];
        memset(p2, 'b', sizeof p2 - 1);
        p2[sizeof p2 - 1] = 0;
        t2_client *c = new_client();
        req r = {0};
        T2_CHECK(t2_client_submit_prompt(c, "big", p2, 0, &r.id) == 0);
        t2_client *cs[1] = {c};
        T2_CHECK_EQ_INT(run_requests(cs, 1, &r, 1, HANG_MS), 1);
        T2_CHECK_MSG(r.errors == 1 && r.code == T2_EPROTO && r.results == 0 && r.chunks == 8,
                     "oversized result: %d errors (code %d), %d results, %d chunks", r.errors,
                     r.code, r.results, r.chunks);
        t2_client_destroy(&c);
        T2_CHECK_EQ_INT(wait_idle(admin, HANG_MS), 0);
        T2_CHECK_EQ_INT(stop_child(big, SIGTERM), 0);
    }

    T2_CHECK(get_stats(admin, &after) == 0);
    printf("     decode_errors %" PRIu64 " -> %" PRIu64 ", not_found %" PRIu64 " -> %" PRIu64 "\n",
           before.decode_errors, after.decode_errors, before.not_found, after.not_found);
    T2_CHECK_EQ_INT(after.decode_errors - before.decode_errors, 8);
    T2_CHECK_EQ_INT(after.not_found - before.not_found, 1);

    /* still serving, also on the same socket */
    b = pack_request(13, "echo", "still alive", 11, T2_PROTO_VERSION, &len);
    zmq_send(s, b, len, 0);
    free(b);
    char got[64] = {0};
    size_t glen = 0;
    int done = 0;
    uint64_t end = now_ms() + HANG_MS;
    while (!done && now_ms() < end) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 50);
        T2__Msg *m;
        while (t2_wire_recv(s, &m, 0, NULL) == 1) {
            if (m->body_case == T2__MSG__BODY_CHUNK && glen + m->chunk->text.len < sizeof got) {
                memcpy(got + glen, m->chunk->text.data, m->chunk->text.len);
                glen += m->chunk->text.len;
            }
            if (m->body_case == T2__MSG__BODY_RESULT) done = 1;
            if (m->body_case == T2__MSG__BODY_ERROR) done = -1;
            t2_msg_free(m);
        }
    }
    T2_CHECK_EQ_INT(done, 1);
    T2_CHECK_MSG(strcmp(got, "still alive") == 0, "got '%s'", got);
    zmq_close(s);
}

static void test_worker_death(void) {
    T2__Stats before, after;
    T2_CHECK(get_stats(admin, &before) == 0);
    uint32_t w0 = before.workers;
    pid_t die = start_worker("fragile", "dying", "2", "40", "4", "--die-after-chunks", "5");
    pid_t hang = start_worker("fragile", "hanging", "2", "40", "4", "--hang-after-chunks", "5");
    T2_CHECK(wait_workers(admin, w0 + 2, HANG_MS));
    t2_client *c = new_client();
    enum { N = 4 };
    req rs[N];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < N; i++) {
        make_prompt(&rs[i], 9, i, 40);
        submit(c, &rs[i], "fragile");
    }
    /* all four are at the two doomed workers before the good one arrives */
    t2_client *cs[1] = {c};
    uint64_t end = now_ms() + HANG_MS;
    while (now_ms() < end && count_events("dying", "job ") + count_events("hanging", "job ") < N)
        run_requests(cs, 1, rs, N, 10); /* keep the client heartbeating meanwhile */
    T2_CHECK_EQ_INT(count_events("dying", "job ") + count_events("hanging", "job "), N);
    pid_t ok = start_worker("fragile", "rescuer", "4", "5", "4", NULL, NULL);
    int ended = run_requests(cs, 1, rs, N, HANG_MS);
    T2_CHECK_EQ_INT(ended, N);
    check_echoed(rs, N);
    T2_CHECK_EQ_INT(wait_child(die, HANG_MS), 3); /* it crashed as told */
    T2_CHECK(count_events("hanging", "hang") == 1);
    T2_CHECK(get_stats(admin, &after) == 0);
    printf("     requeues %" PRIu64 " -> %" PRIu64 ", rescuer ran %d job(s)\n", before.requeues,
           after.requeues, count_events("rescuer", "job "));
    T2_CHECK(after.requeues - before.requeues >= N);
    T2_CHECK(wait_events("rescuer", "done ", N, HANG_MS)); /* written just after the result */
    T2_CHECK_EQ_INT(count_events("rescuer", "done "), N);
    T2_CHECK_EQ_INT(stop_child(hang, SIGKILL), 128 + SIGKILL);
    T2_CHECK_EQ_INT(stop_child(ok, SIGTERM), 0);
    t2_client_destroy(&c);
}

/* A worker that heartbeats but stops answering loses its jobs at the progress deadline. */
static void test_stall(void) {
    T2__Stats before, after;
    T2_CHECK(get_stats(admin, &before) == 0);
    pid_t stall = start_worker("fragile", "staller", "2", "40", "4", "--stall-after-chunks", "3");
    T2_CHECK(wait_workers(admin, before.workers + 1, HANG_MS));
    t2_client *c = new_client();
    enum { N = 4 };
    req rs[N];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < N; i++) {
        make_prompt(&rs[i], 8, i, 40);
        submit(c, &rs[i], "fragile");
    }
    t2_client *cs[1] = {c};
    uint64_t end = now_ms() + HANG_MS;
    while (now_ms() < end && !count_events("staller", "stall"))
        run_requests(cs, 1, rs, N, 10);
    T2_CHECK_EQ_INT(count_events("staller", "stall"), 1);
    uint64_t t_stall = now_ms();
    pid_t ok = start_worker("fragile", "rescuer2", "4", "5", "4", NULL, NULL);
    /* the two jobs stuck at the staller are requeued only after the deadline */
    end = now_ms() + HANG_MS;
    int got = 0;
    while (now_ms() < end && (got = rs[0].results + rs[1].results + rs[2].results + rs[3].results) < N)
        run_requests(cs, 1, rs, N, 10);
    uint64_t took = now_ms() - t_stall;
    printf("     stalled worker's jobs answered %" PRIu64 " ms after the stall (deadline %s ms)\n",
           took, PROGRESS);
    T2_CHECK_EQ_INT(got, N);
    T2_CHECK_MSG(took + 100 >= (uint64_t)atoi(PROGRESS), "requeued before the deadline: %" PRIu64
                 " ms", took);
    check_echoed(rs, N);
    T2_CHECK_EQ_INT(count_events("staller", "done "), 0);
    T2_CHECK(wait_events("rescuer2", "done ", N, HANG_MS));
    T2_CHECK_EQ_INT(count_events("rescuer2", "done "), N);
    char log[32];
    snprintf(log, sizeof log, "router%d.log", router_runs);
    T2_CHECK_MSG(file_has(log, "made no progress on job"), "no stall logged in %s", log);
    T2_CHECK(get_stats(admin, &after) == 0);
    T2_CHECK(after.requeues - before.requeues >= 2);
    T2_CHECK_EQ_INT(stop_child(stall, SIGKILL), 128 + SIGKILL);
    T2_CHECK_EQ_INT(stop_child(ok, SIGTERM), 0);
    T2_CHECK(wait_workers(admin, before.workers, HANG_MS)); /* the killed one expired */
    t2_client_destroy(&c);
}

/* A Result whose text is not UTF-8 is repaired by the router: U+FFFD for the bad byte. */
static void test_bad_utf8(void) {
    T2__Stats before;
    T2_CHECK(get_stats(admin, &before) == 0);
    pid_t w = start_worker("mangled", "mangler", "1", "0", "64", "--bad-utf8", "1");
    T2_CHECK(wait_workers(admin, before.workers + 1, HANG_MS));
    t2_client *c = new_client();
    req r = {0};
    snprintf(r.prompt, sizeof r.prompt, "caf\xc3\xa9 au lait");
    r.plen = strlen(r.prompt);
    submit(c, &r, "mangled");
    t2_client *cs[1] = {c};
    T2_CHECK_EQ_INT(run_requests(cs, 1, &r, 1, HANG_MS), 1);
    T2_CHECK_EQ_INT(r.results, 1);
    T2_CHECK_MSG(strcmp(r.result_text, "caf\xc3\xa9 au lait\xef\xbf\xbd") == 0,
                 "result text '%s' is not the prompt + U+FFFD", r.result_text);
    T2_CHECK_EQ_INT(stop_child(w, SIGTERM), 0);
    t2_client_destroy(&c);
}

/* Wait for the first chunk of request id on client c. */
static int first_chunk(t2_client *c, uint64_t id) {
    t2_client_event ev = {0};
    uint64_t end = now_ms() + HANG_MS;
    int got = 0;
    while (!got && now_ms() < end)
        if (t2_client_recv(c, &ev, 50) == 1 && ev.request_id == id && ev.type == T2_CLIENT_CHUNK) got = 1;
    t2_client_event_clear(&ev);
    return got;
}

static void test_client_gone(void) {
    T2__Stats before, after;
    T2_CHECK(get_stats(admin, &before) == 0);
    char long_prompt[201];
    memset(long_prompt, 'z', 200);
    long_prompt[200] = 0;

    /* 1. a client that says goodbye mid-stream */
    t2_client *c = new_client();
    uint64_t id;
    T2_CHECK(t2_client_submit_prompt(c, "slow", long_prompt, 0, &id) == 0);
    T2_CHECK(first_chunk(c, id));
    t2_client_destroy(&c);
    T2_CHECK_MSG(wait_events("slow", "cancel ", 1, HANG_MS), "no cancel after a goodbye");

    /* 2. a client that vanishes: a raw socket closed without a word */
    void *s = t2_wire_dealer(zctx, endpoint, 0);
    size_t len;
    uint8_t *b = pack_request(5, "slow", long_prompt, 200, T2_PROTO_VERSION, &len);
    zmq_send(s, b, len, 0);
    free(b);
    int chunk = 0;
    uint64_t end = now_ms() + HANG_MS;
    while (!chunk && now_ms() < end) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 50);
        T2__Msg *m;
        while (t2_wire_recv(s, &m, 0, NULL) == 1) {
            if (m->body_case == T2__MSG__BODY_CHUNK) chunk = 1;
            t2_msg_free(m);
        }
    }
    T2_CHECK(chunk);
    zmq_close(s);
    uint64_t t0 = now_ms();
    T2_CHECK_MSG(wait_events("slow", "cancel ", 2, HANG_MS), "no cancel after a client vanished");
    printf("     vanished client's job cancelled after %" PRIu64 " ms\n", now_ms() - t0);

    /* 3. an explicit cancel */
    c = new_client();
    T2_CHECK(t2_client_submit_prompt(c, "slow", long_prompt, 0, &id) == 0);
    T2_CHECK(first_chunk(c, id));
    T2_CHECK_EQ_INT(t2_client_cancel(c, id), 0);
    T2_CHECK_EQ_INT(t2_client_cancel(c, id), T2_ENOTFOUND);
    T2_CHECK_MSG(wait_events("slow", "cancel ", 3, HANG_MS), "no cancel after t2_client_cancel");
    t2_client_event ev = {0};
    T2_CHECK_EQ_INT(t2_client_recv(c, &ev, 200), 0); /* nothing more for it */
    t2_client_event_clear(&ev);
    t2_client_destroy(&c);

    /* 4. a request out of time while at a worker: ETIMEOUT to the client, Cancel to the worker */
    c = new_client();
    T2__Task t = T2__TASK__INIT;
    t.has_prompt = 1;
    t.prompt.data = (uint8_t *)long_prompt;
    t.prompt.len = 200;
    t0 = now_ms();
    T2_CHECK(t2_client_submit(c, "slow", &t, 300, &id) == 0);
    int chunks = 0, code = 0;
    end = now_ms() + HANG_MS;
    while (!code && now_ms() < end)
        if (t2_client_recv(c, &ev, 50) == 1) {
            if (ev.type == T2_CLIENT_CHUNK) chunks++;
            if (ev.type == T2_CLIENT_ERROR) code = ev.code;
            T2_CHECK(ev.type != T2_CLIENT_RESULT);
        }
    uint64_t dt = now_ms() - t0;
    t2_client_event_clear(&ev);
    T2_CHECK_EQ_INT(code, T2_ETIMEOUT);
    /* not before its 300 ms (how much later depends on the machine's load) */
    T2_CHECK_MSG(chunks > 0 && dt >= 290, "%d chunks, timed out after %" PRIu64 " ms", chunks, dt);
    T2_CHECK_MSG(wait_events("slow", "cancel ", 4, HANG_MS), "no cancel after a timeout");
    t2_client_destroy(&c);

    T2_CHECK_EQ_INT(wait_idle(admin, HANG_MS), 0);
    T2_CHECK(get_stats(admin, &after) == 0);
    T2_CHECK_EQ_INT(after.cancels - before.cancels, 4);
    T2_CHECK_EQ_INT(after.timeouts - before.timeouts, 1);
}

static void test_busy(void) {
    char ep2[64];
    snprintf(ep2, sizeof ep2, "tcp://127.0.0.1:%d", free_port());
    const char *args[] = {"--bind", ep2, "--heartbeat-ms", HB, "--liveness", LIVENESS,
                          "--queue-max", "2", "--service", "idle", NULL};
    pid_t r2 = spawn("t2-router", "router_busy.log", args);
    t2_client_opts o = t2_client_opts_default();
    o.heartbeat_ms = atoi(HB);
    o.liveness = atoi(LIVENESS);
    t2_client *c;
    T2_CHECK(t2_client_new(&c, zctx, ep2, &o) == 0);
    uint64_t a, b, busy;
    T2_CHECK(t2_client_submit_prompt(c, "idle", "one", 0, &a) == 0);
    T2_CHECK(t2_client_submit_prompt(c, "idle", "two", 0, &b) == 0);
    t2_client_event ev = {0};
    T2_CHECK_EQ_INT(t2_client_recv(c, &ev, 300), 0); /* both wait: no worker */
    uint64_t t0 = now_ms();
    T2_CHECK(t2_client_submit_prompt(c, "idle", "three", 0, &busy) == 0);
    int rc = t2_client_recv(c, &ev, HANG_MS); /* without EBUSY nothing would ever come */
    uint64_t dt = now_ms() - t0;
    T2_CHECK_EQ_INT(rc, 1);
    T2_CHECK_EQ_INT(ev.type, T2_CLIENT_ERROR);
    T2_CHECK_EQ_INT(ev.request_id, busy);
    T2_CHECK_EQ_INT(ev.code, T2_EBUSY);
    printf("     busy answer after %" PRIu64 " ms: %s\n", dt, ev.message ? ev.message : "");

    /* a request timeout while queued */
    T2_CHECK_EQ_INT(t2_client_cancel(c, a), 0);
    T2__Task t = T2__TASK__INIT;
    t.has_prompt = 1;
    t.prompt.data = (uint8_t *)"late";
    t.prompt.len = 4;
    uint64_t late;
    t0 = now_ms();
    T2_CHECK(t2_client_submit(c, "idle", &t, 300, &late) == 0);
    rc = t2_client_recv(c, &ev, HANG_MS);
    dt = now_ms() - t0;
    T2_CHECK_EQ_INT(rc, 1);
    T2_CHECK_EQ_INT(ev.request_id, late);
    T2_CHECK_EQ_INT(ev.code, T2_ETIMEOUT);
    T2_CHECK_MSG(dt >= 290, "timeout after %" PRIu64 " ms (its limit is 300)", dt);
    t2_client_event_clear(&ev);
    t2_client_destroy(&c);

    T2_CHECK_EQ_INT(stop_child(r2, SIGTERM), 0);
    T2_CHECK(file_has("router_busy.log", "shutdown: requests=3"));
    T2_CHECK(file_has("router_busy.log", "busy=1"));
    T2_CHECK(file_has("router_busy.log", "timeouts=1"));
}

static void test_restart(void) {
    t2_client *c = new_client();
    req r = {0};
    make_prompt(&r, 7, 7, 40); /* 20 chunks of 2 bytes at 50 ms: 1 s */
    submit(c, &r, "slow");
    T2_CHECK(first_chunk(c, r.id));
    /* first_chunk consumed the first chunk: count it */
    memcpy(r.got, r.prompt, 2);
    r.glen = 2;
    r.chunks = 1;

    T2_CHECK_EQ_INT(stop_child(router_pid, SIGTERM), 0);
    T2_CHECK(file_has("router1.log", "shutdown: requests="));
    start_router();
    t2_client *cs[1] = {c};
    int ended = run_requests(cs, 1, &r, 1, HANG_MS);
    T2_CHECK_EQ_INT(ended, 1);
    check_echoed(&r, 1);
    t2_client_stats st;
    t2_client_get_stats(c, &st);
    printf("     in-flight request survived the restart: %" PRIu64 " resubmit(s), %" PRIu64
           " duplicate chunk(s) dropped\n", st.resubmits, st.duplicate_chunks);
    T2_CHECK(st.resubmits >= 1);

    /* every worker is back; new requests work */
    t2_client_destroy(&admin);
    admin = new_client();
    T2_CHECK(wait_workers(admin, 3, HANG_MS));
    enum { N = 6 };
    req rs[N];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < N; i++) {
        rs[i].client = 0;
        make_prompt(&rs[i], 0, 100 + i, 30);
        submit(c, &rs[i], "echo");
    }
    T2_CHECK_EQ_INT(run_requests(cs, 1, rs, N, HANG_MS), N);
    check_echoed(rs, N);
    t2_client_destroy(&c);
    /* one registration per worker, not one per message the new router did not know */
    static const char *const logs[] = {"echo1.log", "echo2.log", "slow.log"};
    for (int i = 0; i < 3; i++) {
        int n = count_lines(logs[i], "does not know this worker");
        printf("     %s: %d 'does not know this worker' warning(s)\n", logs[i], n);
        T2_CHECK_MSG(n <= 1, "%s: %d warnings", logs[i], n);
    }
}

/* A dispatcher in miniature: one thread is a worker for "relay" and a client of "echo" on one
 * shared context, polling both sockets in one zmq_poll. Each relay job becomes an echo
 * request; its chunks and result are passed back through the relay job. */
static atomic_int relay_stop;

typedef struct relay_slot {
    t2_job *job;
    uint64_t echo_id;
} relay_slot;

static void *relay_main(void *arg) {
    (void)arg;
    t2_worker_opts o = t2_worker_opts_default("relay");
    o.capacity = 4;
    o.name = "relay";
    o.heartbeat_ms = atoi(HB);
    o.liveness = atoi(LIVENESS);
    t2_worker *w;
    if (t2_worker_new(&w, zctx, endpoint, &o) < 0) {
        fprintf(stderr, "relay: %s\n", t2_err_msg());
        return NULL;
    }
    t2_client *c = new_client();
    relay_slot slots[4] = {{0}};
    t2_client_event ev = {0};
    while (!atomic_load(&relay_stop)) {
        zmq_pollitem_t items[2] = {{t2_worker_socket(w), 0, ZMQ_POLLIN, 0},
                                   {t2_client_socket(c), 0, ZMQ_POLLIN, 0}};
        int ni = items[0].socket ? 2 : 1;
        if (!items[0].socket) items[0] = items[1];
        zmq_poll(items, ni, 50); /* <= heartbeat interval */
        t2_job *job;
        while (t2_worker_recv(w, &job, 0) == 1) {
            int k = 0;
            while (k < 4 && slots[k].job) k++;
            if (k == 4 || t2_client_submit(c, "echo", t2_job_msg(job)->task, 0, &slots[k].echo_id) < 0) {
                t2_worker_send_error(w, job, T2_EBUSY, "relay full");
                t2_job_destroy(&job);
                continue;
            }
            slots[k].job = job;
        }
        while (t2_client_recv(c, &ev, 0) == 1) {
            relay_slot *sl = NULL;
            for (int k = 0; k < 4; k++)
                if (slots[k].job && slots[k].echo_id == ev.request_id) sl = &slots[k];
            if (!sl) continue;
            if (ev.type == T2_CLIENT_CHUNK) {
                if (t2_worker_send_chunk(w, sl->job, ev.chunk->text.data, ev.chunk->text.len, NULL, 0) < 0) {
                    t2_client_cancel(c, sl->echo_id);
                    t2_job_destroy(&sl->job);
                }
                continue;
            }
            if (ev.type == T2_CLIENT_RESULT) {
                T2__Result r = *ev.result;
                r.label = "relayed";
                r.has_pass1_ms = 1;
                r.pass1_ms = 0.5;
                t2_worker_send_result(w, sl->job, &r);
            } else if (ev.type == T2_CLIENT_ERROR) {
                t2_worker_send_error(w, sl->job, ev.code, "echo: %s", ev.message);
            }
            t2_job_destroy(&sl->job);
        }
    }
    t2_client_event_clear(&ev);
    for (int k = 0; k < 4; k++) t2_job_destroy(&slots[k].job);
    t2_client_destroy(&c);
    t2_worker_destroy(&w);
    return NULL;
}

static void test_dispatcher_pattern(void) {
    T2__Stats st;
    T2_CHECK(get_stats(admin, &st) == 0);
    pthread_t th;
    atomic_store(&relay_stop, 0);
    T2_CHECK(pthread_create(&th, NULL, relay_main, NULL) == 0);
    T2_CHECK(wait_workers(admin, st.workers + 1, HANG_MS));
    t2_client *c = new_client();
    enum { N = 6 };
    req rs[N];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < N; i++) {
        make_prompt(&rs[i], 5, i, 20 + 11 * (size_t)i);
        submit(c, &rs[i], "relay");
    }
    t2_client *cs[1] = {c};
    T2_CHECK_EQ_INT(run_requests(cs, 1, rs, N, HANG_MS), N);
    check_echoed(rs, N);
    t2_client_destroy(&c);
    atomic_store(&relay_stop, 1);
    pthread_join(th, NULL);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

int main(int argc, char **argv) {
    signal(SIGALRM, on_alarm);
    alarm(WATCHDOG_S);
    signal(SIGPIPE, SIG_IGN);
    const char *b = getenv("T2_BIN");
    if (b) snprintf(bin_dir, sizeof bin_dir, "%s", b);
    else {
        char self[1024];
        snprintf(self, sizeof self, "%s", argv[0]);
        snprintf(bin_dir, sizeof bin_dir, "%s", dirname(self));
    }
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/t2-router", bin_dir);
    if (access(probe, X_OK) != 0) {
        fprintf(stderr, "test_router: %s not found (set T2_BIN)\n", probe);
        return 1;
    }
    (void)argc;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/t2-router-test-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", free_port());
    printf("     endpoint %s, logs in %s\n", endpoint, tmp_dir);
    zctx = zmq_ctx_new();
    uint64_t t0 = now_ms();

    start_router();
    pid_t e1 = start_worker("echo", "echo1", "2", "1", "4", NULL, NULL);
    pid_t e2 = start_worker("echo", "echo2", "2", "1", "4", NULL, NULL);
    pid_t slow = start_worker("slow", "slow", "2", "50", "2", NULL, NULL);
    admin = new_client();
    T2_CHECK_MSG(wait_workers(admin, 3, HANG_MS), "the 3 workers did not register");

    T2_RUN(test_concurrent);
    T2_RUN(test_bad_input);
    T2_RUN(test_worker_death);
    T2_RUN(test_stall);
    T2_RUN(test_bad_utf8);
    T2_RUN(test_client_gone);
    T2_RUN(test_busy);
    T2_RUN(test_dispatcher_pattern);
    T2_RUN(test_restart);

    t2_client_destroy(&admin);
    int rc_router = stop_child(router_pid, SIGTERM);
    T2_CHECK_EQ_INT(rc_router, 0);
    T2_CHECK(file_has("router2.log", "shutdown: requests="));
    T2_CHECK_EQ_INT(stop_child(e1, SIGTERM), 0);
    T2_CHECK_EQ_INT(stop_child(e2, SIGTERM), 0);
    T2_CHECK_EQ_INT(stop_child(slow, SIGTERM), 0);
    kill_all();
    zmq_ctx_term(zctx);
    printf("     total %" PRIu64 " ms\n", now_ms() - t0);
    if (t2_test_failed || t2_test_failed_checks || getenv("T2_TEST_KEEP")) {
        printf("     logs kept in %s\n", tmp_dir);
    } else {
        nftw(tmp_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    if (t2_test_failed_checks && !t2_test_failed) t2_test_failed = 1; /* checks outside T2_RUN */
    return T2_TEST_END();
}
