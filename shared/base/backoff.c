#include "base/backoff.h"

void t2_backoff_schedule(int heartbeat_ms, int *first_ms, int *max_ms) {
    const long hb = heartbeat_ms > 0 ? heartbeat_ms : 1;
    const long first = hb < T2_BACKOFF_FIRST_MS ? hb : T2_BACKOFF_FIRST_MS;
    long max = 4 * hb < T2_BACKOFF_CAP_MS ? 4 * hb : T2_BACKOFF_CAP_MS;
    if (max < first) max = first;
    *first_ms = (int)first;
    *max_ms = (int)max;
}

int t2_backoff_next(int wait_ms, int max_ms) {
    return wait_ms > max_ms / 2 ? max_ms : 2 * wait_ms;
}
