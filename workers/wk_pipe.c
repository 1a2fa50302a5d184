/* wk_pipe.c - messages between the ranks of a worker group: non-blocking sends from a pool of
 * reusable buffers, probed receives into one growing buffer, and a wait that sleeps instead of
 * spinning (an idle group must not burn its cores: Open MPI's blocking receive polls). */
#include "wk.h"

#include "base/t2_err.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct wk_sbuf {
    void *data;
    size_t cap;
    MPI_Request req;
    int busy;
} wk_sbuf;

struct wk_pipe {
    wk_sbuf *s;
    int n, cap;
    void *r;
    size_t rcap;
};

int wk_pipe_new(wk_pipe **out) {
    *out = calloc(1, sizeof **out);
    return *out ? 0 : t2_err_set(T2_ENOMEM, "out of memory");
}

void wk_pipe_destroy(wk_pipe **pp) {
    wk_pipe *p = pp ? *pp : NULL;
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        if (p->s[i].busy) MPI_Wait(&p->s[i].req, MPI_STATUS_IGNORE);
        free(p->s[i].data);
    }
    free(p->s);
    free(p->r);
    free(p);
    *pp = NULL;
}

void wk_pipe_progress(wk_pipe *p) {
    for (int i = 0; i < p->n; i++)
        if (p->s[i].busy) {
            int done = 0;
            MPI_Test(&p->s[i].req, &done, MPI_STATUS_IGNORE);
            if (done) p->s[i].busy = 0;
        }
}

void *wk_pipe_buf(wk_pipe *p, size_t len) {
    wk_pipe_progress(p);
    int pick = -1;
    for (int i = 0; i < p->n && (pick < 0 || p->s[pick].cap < len); i++)
        if (!p->s[i].busy) pick = i; /* a free one, preferably big enough */
    if (pick < 0) {
        if (p->n == p->cap) {
            int cap = p->cap ? 2 * p->cap : 8;
            wk_sbuf *s = realloc(p->s, (size_t)cap * sizeof *s);
            if (!s) return NULL;
            p->s = s;
            p->cap = cap;
        }
        pick = p->n++;
        memset(&p->s[pick], 0, sizeof p->s[pick]);
    }
    if (p->s[pick].cap < len) {
        size_t cap = len < 4096 ? 4096 : len;
        void *d = realloc(p->s[pick].data, cap);
        if (!d) return NULL;
        p->s[pick].data = d;
        p->s[pick].cap = cap;
    }
    return p->s[pick].data;
}

int wk_pipe_send(wk_pipe *p, void *buf, size_t len, int dest, int tag) {
    for (int i = 0; i < p->n; i++)
        if (p->s[i].data == buf && !p->s[i].busy) {
            int rc = MPI_Isend(buf, (int)len, MPI_BYTE, dest, tag, MPI_COMM_WORLD, &p->s[i].req);
            if (rc != MPI_SUCCESS) return t2_err_set(T2_EMPI, "MPI_Isend to rank %d failed", dest);
            p->s[i].busy = 1;
            return 0;
        }
    return t2_err_set(T2_EINTERNAL, "wk_pipe_send: not a free pipe buffer");
}

int wk_pipe_poll(wk_pipe *p, int src, int tag, void **msg, size_t *len) {
    int flag = 0, count = 0;
    MPI_Status st;
    if (MPI_Iprobe(src, tag, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS)
        return t2_err_set(T2_EMPI, "MPI_Iprobe failed");
    if (!flag) return 0;
    MPI_Get_count(&st, MPI_BYTE, &count);
    if ((size_t)count > p->rcap || !p->r) {
        size_t cap = (size_t)count < 4096 ? 4096 : (size_t)count;
        void *r = realloc(p->r, cap);
        if (!r) return t2_err_set(T2_ENOMEM, "out of memory for a %d-byte message", count);
        p->r = r;
        p->rcap = cap;
    }
    if (MPI_Recv(p->r, count, MPI_BYTE, st.MPI_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE) !=
        MPI_SUCCESS)
        return t2_err_set(T2_EMPI, "MPI_Recv from rank %d failed", st.MPI_SOURCE);
    *msg = p->r;
    *len = (size_t)count;
    return 1;
}

int wk_pipe_wait(wk_pipe *p, int src, int tag, void **msg, size_t *len) {
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long sleep_ns = 20000;
    for (;;) {
        int rc = wk_pipe_poll(p, src, tag, msg, len);
        if (rc != 0) return rc;
        wk_pipe_progress(p);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited = (now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec);
        if (waited < 1000000) { /* the next message is usually close behind: yield first */
            sched_yield();
            continue;
        }
        struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
        if (sleep_ns < 2000000) sleep_ns += sleep_ns / 2; /* up to 2 ms when idle */
    }
}
