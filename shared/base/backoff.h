/* backoff.h - how long a process waits before it reconnects to the router, and how the wait
 * grows while the router stays away (the dispatcher and worker groups use the same schedule). */
#ifndef T2_BACKOFF_H
#define T2_BACKOFF_H

#define T2_BACKOFF_FIRST_MS 250 /* the first wait at most */
#define T2_BACKOFF_CAP_MS 8000  /* the longest wait at most */

/* The schedule for a router that heartbeats every heartbeat_ms (> 0): the first wait is one
 * heartbeat, at most T2_BACKOFF_FIRST_MS; the wait doubles up to four heartbeats (about when the
 * router gives up on a silent peer), at most T2_BACKOFF_CAP_MS and at least the first wait. */
void t2_backoff_schedule(int heartbeat_ms, int *first_ms, int *max_ms);

/* The wait after one of wait_ms that did not reach the router: doubled, at most max_ms. */
int t2_backoff_next(int wait_ms, int max_ms);

#endif
