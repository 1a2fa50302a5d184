/* bgq.c - one background thread running tasks in order (see bgq.h).
 *
 * Two singly linked FIFO lists under one mutex: `wait` (submitted, not started) and `done`.
 * The thread pops the head of `wait`, runs it with the mutex released, appends it to `done`
 * and then writes the eventfd. The owner's t2_bgq_take reads (clears) the eventfd before it
 * looks at `done` when that is empty, so a wake-up is never lost: a task appended before the
 * read is seen by the look that follows it; one appended after it writes the eventfd again.
 */
#include "base/bgq.h"

#include "base/t2_err.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct bgq_node {
    struct bgq_node *next;
    void *task;
} bgq_node;

typedef struct bgq_list {
    bgq_node *head, *tail;
} bgq_list;

struct t2_bgq {
    t2_bgq_fn run, drop;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bgq_list wait, done;
    int stop;
    int efd;
};

static void list_push(bgq_list *l, bgq_node *n) {
    n->next = NULL;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static bgq_node *list_pop(bgq_list *l) {
    bgq_node *n = l->head;
    if (n && !(l->head = n->next)) l->tail = NULL;
    return n;
}

static void *bgq_main(void *arg) {
    t2_bgq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->stop && !q->wait.head) pthread_cond_wait(&q->cv, &q->mu);
        if (q->stop) break;
        bgq_node *n = list_pop(&q->wait);
        pthread_mutex_unlock(&q->mu);
        q->run(n->task);
        pthread_mutex_lock(&q->mu);
        list_push(&q->done, n);
        uint64_t one = 1;
        while (write(q->efd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int t2_bgq_new(t2_bgq **out, t2_bgq_fn run, t2_bgq_fn drop) {
    *out = NULL;
    t2_bgq *q = calloc(1, sizeof *q);
    if (!q) return t2_err_set(T2_ENOMEM, "out of memory for a task queue");
    q->run = run;
    q->drop = drop;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        int e = errno;
        free(q);
        return t2_err_set(T2_EINTERNAL, "task queue: eventfd: %s", strerror(e));
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    int e = pthread_create(&q->thread, NULL, bgq_main, q);
    if (e) {
        pthread_cond_destroy(&q->cv);
        pthread_mutex_destroy(&q->mu);
        close(q->efd);
        free(q);
        return t2_err_set(T2_EINTERNAL, "task queue: cannot start its thread: %s", strerror(e));
    }
    *out = q;
    return 0;
}

static void drop_list(t2_bgq *q, bgq_list *l) {
    bgq_node *n;
    while ((n = list_pop(l))) {
        if (q->drop) q->drop(n->task);
        free(n);
    }
}

void t2_bgq_destroy(t2_bgq **qp) {
    t2_bgq *q = qp ? *qp : NULL;
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    drop_list(q, &q->wait);
    drop_list(q, &q->done);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    close(q->efd);
    free(q);
    *qp = NULL;
}

int t2_bgq_submit(t2_bgq *q, void *task) {
    bgq_node *n = malloc(sizeof *n);
    if (!n) return t2_err_set(T2_ENOMEM, "out of memory for a queued task");
    n->task = task;
    pthread_mutex_lock(&q->mu);
    list_push(&q->wait, n);
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

int t2_bgq_withdraw(t2_bgq *q, void *task) {
    pthread_mutex_lock(&q->mu);
    bgq_node *prev = NULL, *n = q->wait.head;
    while (n && n->task != task) {
        prev = n;
        n = n->next;
    }
    if (n) {
        if (prev)
            prev->next = n->next;
        else
            q->wait.head = n->next;
        if (q->wait.tail == n) q->wait.tail = prev;
    }
    pthread_mutex_unlock(&q->mu);
    int found = n != NULL;
    free(n);
    return found;
}

int t2_bgq_take(t2_bgq *q, void **task) {
    *task = NULL;
    pthread_mutex_lock(&q->mu);
    bgq_node *n = list_pop(&q->done);
    pthread_mutex_unlock(&q->mu);
    if (!n) { /* clear the wake-up, then look once more (see the top of this file) */
        uint64_t v;
        while (read(q->efd, &v, sizeof v) < 0 && errno == EINTR) {
        }
        pthread_mutex_lock(&q->mu);
        n = list_pop(&q->done);
        pthread_mutex_unlock(&q->mu);
    }
    if (!n) return 0;
    *task = n->task;
    free(n);
    return 1;
}

int t2_bgq_fd(const t2_bgq *q) { return q->efd; }
