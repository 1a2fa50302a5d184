/* test_router_alloc.c - the router's loop, and its peers' chunk path, allocate nothing per
 * chunk.
 *
 * The router (router.c, t2_router_run) runs in a thread of this program; a worker (t2_worker)
 * and a client (t2_client) in the main thread stream one request of 1,100 chunks through it.
 * Allocations are counted by the replaced malloc of t2_alloc_count.h, per thread group: the
 * router's thread, and the main thread (the worker's t2_worker_send_chunk and the client's
 * t2_client_recv: what a dispatcher does per chunk, and a worker group's head). ZeroMQ's I/O
 * threads are not counted. After 100 warm-up chunks, the next 1,000 chunks must cost 0
 * allocations made by T2 or protobuf-c in either group. libzmq's own calls are counted apart:
 * in the router's thread (which forwards frames as they came) its pipes grow by blocks of 256
 * messages now and then, allowed up to 1 per 100 chunks; a sender's libzmq allocates the body
 * of each frame over 33 bytes (zmq_msg_init_size), which is reported, not checked. Every chunk
 * must arrive once, in order, with its text; then the result. Skips (77) under
 * AddressSanitizer. */
#include "t2_alloc_count.h"

#include "base/t2_err.h"
#include "t2_client.h"
#include "t2_router.h"
#include "t2_test.h"
#include "t2_wire.h"
#include "t2_worker_api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#define WARM 100
#define COUNTED 1000
#define BATCH 50
#define HANG_MS 15000 /* a limit on hangs, not a measure of speed */

enum { G_ROUTER = 1, G_PEERS = 2 }; /* t2_alloc_count.h thread groups */

static t2_router_config cfg;
static volatile sig_atomic_t stop;
static int router_rc;

static void *router_thread(void *arg) {
    (void)arg;
    t2_alloc_track_thread(G_ROUTER);
    router_rc = t2_router_run(&cfg, &stop);
    return NULL;
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0) close(s);
    return port;
}

typedef struct stream {
    t2_worker *w;
    t2_client *c;
    t2_job *job;
    uint64_t id;
    int sent, got, bad;
} stream;

/* Send `n` chunks ("c<k> "), then take client events until they all came (or HANG_MS). */
static int pass_chunks(stream *s, int n) {
    char text[32];
    for (int k = 0; k < n; k++) {
        int len = snprintf(text, sizeof text, "c%d ", s->sent);
        uint32_t tok = (uint32_t)s->sent;
        if (t2_worker_send_chunk(s->w, s->job, text, (size_t)len, &tok, 1) < 0) return -1;
        s->sent++;
    }
    t2_client_event ev = {0};
    uint64_t end = t2_wire_now_ms() + HANG_MS;
    while (s->got < s->sent && t2_wire_now_ms() < end) {
        t2_worker_pump(s->w);
        if (t2_client_recv(s->c, &ev, 5) != 1) continue;
        if (ev.type != T2_CLIENT_CHUNK || ev.request_id != s->id) {
            s->bad++;
            continue;
        }
        int len = snprintf(text, sizeof text, "c%d ", s->got);
        const T2__Chunk *ch = ev.chunk;
        if (!ch->has_text || ch->text.len != (size_t)len || memcmp(ch->text.data, text, len) ||
            ch->n_tokens != 1 || ch->tokens[0] != (uint32_t)s->got)
            s->bad++;
        s->got++;
    }
    t2_client_event_clear(&ev);
    return s->got == s->sent ? 0 : -1;
}

/* The router's loop and the peers' chunk path: nothing from T2 or protobuf-c; libzmq's pipe
 * growth in the router's thread bounded. */
static void check_counts(const t2_alloc_snap *d, int chunks) {
    printf("     %d chunks: router thread %ld allocations by T2 + protobuf-c, %ld by libzmq; "
           "worker + client %ld by T2 + protobuf-c, %ld by libzmq; all threads %ld\n",
           chunks, d->mine[G_ROUTER], d->aside[G_ROUTER], d->mine[G_PEERS], d->aside[G_PEERS],
           d->all);
    T2_CHECK_MSG(d->mine[G_ROUTER] == 0, "%ld allocations in the router's loop (last from %p)",
                 d->mine[G_ROUTER], t2_alloc_last_caller());
    T2_CHECK_MSG(d->aside[G_ROUTER] <= chunks / 100,
                 "libzmq allocated %ld times in the router's thread for %d chunks",
                 d->aside[G_ROUTER], chunks);
    T2_CHECK_MSG(d->mine[G_PEERS] == 0,
                 "%ld allocations sending (t2_worker) and receiving (t2_client) chunks",
                 d->mine[G_PEERS]);
}

static void test_chunks_without_allocation(void) {
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", free_port());
    t2_router_config_defaults(&cfg);
    snprintf(cfg.bind, sizeof cfg.bind, "%s", ep);
    cfg.stats_ms = 0;
    cfg.n_services = 1; /* declared: the request waits for the worker's Ready */
    snprintf(cfg.services[0], sizeof cfg.services[0], "echo");
    pthread_t th;
    T2_CHECK(pthread_create(&th, NULL, router_thread, NULL) == 0);
    stream s = {0};
    t2_worker_opts wo = t2_worker_opts_default("echo");
    t2_client_opts co = t2_client_opts_default();
    T2_CHECK(t2_worker_new(&s.w, NULL, ep, &wo) == 0);
    T2_CHECK(t2_client_new(&s.c, NULL, ep, &co) == 0);
    T2_CHECK(s.c && t2_client_submit_prompt(s.c, "echo", "hello", 0, &s.id) == 0);
    /* the client's handshake and the worker's job */
    uint64_t end = t2_wire_now_ms() + HANG_MS;
    t2_client_event ev = {0};
    while (s.w && s.c && !s.job && t2_wire_now_ms() < end) {
        if (t2_client_recv(s.c, &ev, 5) == 1)
            T2_CHECK_MSG(ev.type != T2_CLIENT_ERROR, "%s", ev.message);
        t2_worker_recv(s.w, &s.job, 5);
    }
    t2_client_event_clear(&ev);
    T2_CHECK_MSG(s.job != NULL, "no job reached the worker in %d ms", HANG_MS);
    if (s.job) {
        T2_CHECK(pass_chunks(&s, WARM) == 0);
        t2_alloc_trace(1);
        t2_alloc_snap before = t2_alloc_now();
        for (int k = 0; k < COUNTED / BATCH; k++) T2_CHECK(pass_chunks(&s, BATCH) == 0);
        t2_alloc_snap d = t2_alloc_diff(&before);
        t2_alloc_trace(0);
        if (T2_ALLOC_COUNTING) check_counts(&d, COUNTED);
        else printf("     (not counted under AddressSanitizer)\n");
        T2_CHECK_EQ_INT(s.got, WARM + COUNTED);
        T2_CHECK_EQ_INT(s.bad, 0);
        /* the end of the request still comes */
        T2__Result res = T2__RESULT__INIT;
        T2_CHECK(t2_worker_send_result(s.w, s.job, &res) == 0);
        int done = 0;
        end = t2_wire_now_ms() + HANG_MS;
        while (!done && t2_wire_now_ms() < end)
            if (t2_client_recv(s.c, &ev, 10) == 1) done = ev.type;
        T2_CHECK_EQ_INT(done, T2_CLIENT_RESULT);
        t2_client_event_clear(&ev);
        t2_job_destroy(&s.job);
    }
    t2_client_destroy(&s.c);
    t2_worker_destroy(&s.w);
    stop = 1;
    pthread_join(th, NULL);
    T2_CHECK_MSG(router_rc == 0, "router: %s", t2_err_msg());
}

/* A Chunk of `text_len` bytes of text and `n_tok` tokens, packed. */
static uint8_t *packed_chunk(size_t text_len, size_t n_tok, size_t *len) {
    char *text = malloc(text_len);
    uint32_t *toks = malloc(n_tok * sizeof *toks + 1);
    for (size_t i = 0; i < text_len; i++) text[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < n_tok; i++) toks[i] = (uint32_t)(i * 7919 % 100000);
    T2__Chunk c = T2__CHUNK__INIT;
    c.has_request_id = c.has_job_id = c.has_seq = c.has_text = 1;
    c.request_id = 0xfedcba9876543210ull;
    c.job_id = 3;
    c.text.data = (uint8_t *)text;
    c.text.len = text_len;
    c.tokens = toks;
    c.n_tokens = n_tok;
    T2__Msg m = T2__MSG__INIT;
    m.body_case = T2__MSG__BODY_CHUNK;
    m.chunk = &c;
    uint8_t *buf = NULL;
    T2_CHECK(t2_msg_pack_alloc(&m, &buf, len) == 0);
    free(text);
    free(toks);
    return buf;
}

/* The arena decodes what t2_msg_decode decodes, whatever its size: a message bigger than the
 * block spills, the block grows to fit it at the next reset (up to 1 MiB), and from then on
 * decoding it allocates nothing; bigger ones keep spilling; a cut message is refused and the
 * arena still works. */
static void test_arena_decode(void) {
    t2_msg_arena *a = NULL;
    T2_CHECK(t2_msg_arena_new(&a, 64) == 0);
    const size_t sizes[][2] = {{5, 1}, {100000, 5000}, {3u << 20, 300000}, {7, 2}};
    for (size_t k = 0; a && k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t len;
        uint8_t *buf = packed_chunk(sizes[k][0], sizes[k][1], &len);
        T2__Msg *heap = NULL, *in = NULL;
        T2_CHECK(t2_msg_decode(buf, len, &heap, NULL) == 0);
        for (int rep = 0; rep < 3; rep++) { /* spill, grow (at the reset), fit */
            t2_alloc_snap before = t2_alloc_now();
            T2_CHECK_MSG(t2_msg_decode_in(a, buf, len, &in, NULL) == 0, "%s", t2_err_msg());
            long n = t2_alloc_diff(&before).mine[G_PEERS];
            if (T2_ALLOC_COUNTING && rep == 2 && sizes[k][0] < (1u << 19))
                T2_CHECK_MSG(n == 0, "%zu-byte message: %ld allocations decoding it a third time",
                             len, n);
        }
        const T2__Chunk *x = in ? in->chunk : NULL, *y = heap ? heap->chunk : NULL;
        T2_CHECK(x && y && x->request_id == y->request_id && x->text.len == y->text.len &&
                 x->n_tokens == y->n_tokens && !memcmp(x->text.data, y->text.data, y->text.len) &&
                 !memcmp(x->tokens, y->tokens, y->n_tokens * sizeof *y->tokens));
        t2_msg_free(heap);
        /* cut short: refused, nothing kept */
        T2_CHECK(t2_msg_decode_in(a, buf, len - 1, &in, NULL) == T2_EPROTO && in == NULL);
        free(buf);
    }
    t2_msg_arena_destroy(&a);
    T2_CHECK(a == NULL);
}

int main(void) {
    if (!T2_ALLOC_COUNTING) /* the streams still run: ASan checks the arena and the loop */
        printf("     allocations are not counted under AddressSanitizer (its own malloc)\n");
    if (t2_alloc_set_aside("libzmq") < 0) {
        fprintf(stderr, "test_router_alloc: libzmq is not loaded as a shared library\n");
        return 1;
    }
    t2_alloc_track_thread(G_PEERS);
    T2_RUN(test_arena_decode);
    T2_RUN(test_chunks_without_allocation);
    return T2_TEST_END();
}
