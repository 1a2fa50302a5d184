/* scratch.c - per-thread scratch buffers (see scratch.h).
 *
 * The thread's buffers live in one heap block found through a pthread key, whose destructor
 * frees them at thread exit; a thread-local pointer to the same block makes the common call a
 * load and a compare. */
#include "base/scratch.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct scratch {
    void *p[T2_SCRATCH_SLOTS];
    size_t cap[T2_SCRATCH_SLOTS];
    unsigned epoch[T2_SCRATCH_SLOTS];
} scratch;

static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_key_ok;
static _Thread_local scratch *t_mine;
/* Epochs survive t2_scratch_free_thread, so a cache filled before a free never matches after. */
static _Thread_local unsigned t_freed;

static void scratch_free(void *v) {
    scratch *s = v;
    if (!s) return;
    for (int i = 0; i < T2_SCRATCH_SLOTS; i++) free(s->p[i]);
    free(s);
}

/* At thread exit (the key's destructor runs on the exiting thread): forget the block too, in
 * case another destructor asks for a buffer afterwards. */
static void scratch_exit(void *v) {
    if (t_mine == v) t_mine = NULL;
    scratch_free(v);
}

static void key_init(void) { g_key_ok = pthread_key_create(&g_key, scratch_exit) == 0; }

static scratch *this_thread(int create) {
    if (t_mine) return t_mine;
    if (!create) return NULL;
    pthread_once(&g_once, key_init);
    if (!g_key_ok) return NULL;
    scratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (pthread_setspecific(g_key, s)) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < T2_SCRATCH_SLOTS; i++) s->epoch[i] = t_freed;
    t_mine = s;
    return s;
}

void *t2_scratch_get(int slot, size_t bytes) {
    if (slot < 0 || slot >= T2_SCRATCH_SLOTS) return NULL;
    scratch *s = this_thread(1);
    if (!s) return NULL;
    if (s->cap[slot] < bytes || !s->p[slot]) {
        if (bytes > (size_t)-1 - 4096) return NULL;
        size_t cap = (bytes + 4095) / 4096 * 4096;
        void *p = aligned_alloc(64, cap ? cap : 4096);
        if (!p) return NULL;
        free(s->p[slot]);
        s->p[slot] = p;
        s->cap[slot] = cap ? cap : 4096;
        s->epoch[slot]++;
    }
    return s->p[slot];
}

size_t t2_scratch_cap(int slot) {
    scratch *s = this_thread(0);
    return s && slot >= 0 && slot < T2_SCRATCH_SLOTS ? s->cap[slot] : 0;
}

unsigned t2_scratch_epoch(int slot) {
    scratch *s = this_thread(0);
    return s && slot >= 0 && slot < T2_SCRATCH_SLOTS ? s->epoch[slot] : t_freed;
}

void t2_scratch_release(int slot) {
    scratch *s = this_thread(0);
    if (!s || slot < 0 || slot >= T2_SCRATCH_SLOTS) return;
    free(s->p[slot]);
    s->p[slot] = NULL;
    s->cap[slot] = 0;
    s->epoch[slot]++;
}

void t2_scratch_free_thread(void) {
    scratch *s = this_thread(0);
    if (!s) return;
    unsigned hi = t_freed;
    for (int i = 0; i < T2_SCRATCH_SLOTS; i++)
        if (s->epoch[i] > hi) hi = s->epoch[i];
    t_freed = hi + 1;
    pthread_setspecific(g_key, NULL);
    t_mine = NULL;
    scratch_free(s);
}
