/* bgq.h - one background thread that runs tasks in order, for a poll loop that must not block.
 *
 * The loop submits tasks (t2_bgq_submit); the thread calls run(task) for each, one at a time in
 * submission order, and moves it to a done list. The loop learns of finished tasks through a
 * file descriptor that becomes readable (t2_bgq_fd: put it in its poll / zmq_poll items) and
 * takes them with t2_bgq_take, without ever waiting for the thread.
 *
 *   t2_bgq *q;
 *   t2_bgq_new(&q, encode_fn, free_fn);
 *   t2_bgq_submit(q, req);                  // the thread owns req until it comes back
 *   ... zmq_poll(items incl. {NULL, t2_bgq_fd(q), ZMQ_POLLIN}) ...
 *   while (t2_bgq_take(q, &done) == 1) use(done);
 *
 * Ownership: a submitted task belongs to the queue until t2_bgq_take returns it or
 * t2_bgq_withdraw takes it back; the owner must not touch it meanwhile (run() may be writing it
 * on the other thread). t2_bgq_destroy lets the running task finish, then passes every task
 * still held (waiting or done) to drop(). One owner thread calls every function here.
 */
#ifndef T2_BGQ_H
#define T2_BGQ_H

typedef struct t2_bgq t2_bgq;
typedef void (*t2_bgq_fn)(void *task);

/* run: the work, on the queue's thread; drop: frees a task the owner never took back (at
 * destroy). 0, or T2_ENOMEM / T2_EINTERNAL (no thread or eventfd) with a message. */
int t2_bgq_new(t2_bgq **out, t2_bgq_fn run, t2_bgq_fn drop);
/* Stop the thread after its current task (waits for it), drop() what is left. NULL is fine. */
void t2_bgq_destroy(t2_bgq **q);
/* Queue a task (not NULL). 0, or T2_ENOMEM (the task stays the caller's). */
int t2_bgq_submit(t2_bgq *q, void *task);
/* Take a task back that the thread has not started: 1 (it is the caller's again), else 0 (it is
 * running or done: it will come out of t2_bgq_take). */
int t2_bgq_withdraw(t2_bgq *q, void *task);
/* A finished task, oldest first: 1 with *task (the caller's again), 0 when none is ready. */
int t2_bgq_take(t2_bgq *q, void **task);
/* Readable while finished tasks may be waiting (t2_bgq_take clears it once none is left). */
int t2_bgq_fd(const t2_bgq *q);

#endif
