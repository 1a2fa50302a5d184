/* tasks_internal.h - shared between tasks.c (sets, dump), tasks_synth.c (generators),
 * tasks_real.c (data-set loaders) and tasks_score.c (scorers). Not a public header. */
#ifndef T2_TASKS_INTERNAL_H
#define T2_TASKS_INTERNAL_H

#include "base/hash.h"
#include "base/rng.h"
#include "tasks/tasks.h"

#include <stddef.h>
#include <stdint.h>


/* --- string arena: all strings of a set live in it --- */
typedef struct t2_arena_block t2_arena_block;
typedef struct t2_arena {
    t2_arena_block *head;
} t2_arena;
void *t2_arena_alloc(t2_arena *a, size_t n);                  /* NULL on ENOMEM */
char *t2_arena_strndup(t2_arena *a, const char *s, size_t n); /* NULL on ENOMEM */
void t2_arena_free(t2_arena *a);

/* --- sets --- */
struct t2_task_set {
    const t2_task_family *fam;
    t2_task_opts opts;
    char data_dir[1024];
    t2_arena arena;
    t2_task_item **items;
    size_t n, cap;
};
/* Copy an item (strings may be NULL) into the set. */
int t2_tset_add(t2_task_set *s, const t2_task_item *it);

/* --- synthetic generators (tasks_synth.c) --- */
#define SYN_TEXT 192
#define SYN_ANS 64
#define SYN_MAX_EXTRA 4

typedef struct syn_doc {
    char prompt[SYN_TEXT];
    char answer[SYN_ANS];
} syn_doc;

/* Everything a core (one question's content) renders to. */
typedef struct syn_item {
    t2_task_label label;
    char prompt[SYN_TEXT]; /* the family prompt: no cue */
    char answer[SYN_ANS];  /* the target reading's answer */
    char target[SYN_ANS];  /* what the scorer extracts from `answer` */
    char decoy[SYN_ANS];   /* the other reading's answer (== answer when there is none) */
    int n_cued;            /* 0, or 2: cued[0] asks for the target reading, cued[1] the decoy */
    syn_doc cued[2];
    int n_extra; /* further cued skills on the same core (code: max, min, dedupe) */
    syn_doc extra[SYN_MAX_EXTRA];
} syn_item;

typedef struct syn_family {
    const char *name;
    /* Draw a random key (of any split) into key[cap]. */
    void (*sample)(t2_rand *r, char *key, size_t cap);
    /* Render a key: 0, or -1 if it is not a valid canonical key of this family. */
    int (*render)(const char *key, syn_item *it);
} syn_family;

const syn_family *t2_syn_find(const char *name);
/* Split of a key: hash of "family:key" -> bucket 0..99: <80 train, <90 validation, else test.
 * Classification keys ("math:...") take the split of the question they wrap. */
t2_task_split t2_syn_split_of(const char *family, const char *key);
/* Draw a key of the given split (rejection sampling). 0, or T2_EINTERNAL if the split seems
 * empty. */
int t2_syn_sample_split(const syn_family *f, t2_rand *r, t2_task_split split, char *key,
                        size_t cap);

/* --- task suite v2 (tasks_v2.c) --- */
const syn_family *t2_syn_v2_find(const char *name); /* NULL if not a v2 family */
/* Split of a v2 key: its template's (a key whose content or vocabulary is of another split does
 * not render). */
t2_task_split t2_syn_v2_split_of(const char *key);

/* --- real data sets (tasks_real.c) --- */
int t2_real_load(t2_task_set *s);

/* --- scoring helpers (tasks_score.c) --- */
/* Canonical form of the number at s (commas and a leading '+' dropped, fraction without
 * trailing zeros): "1,450,000" -> "1450000", "18.50" -> "18.5", "-0" -> "0". */
int t2_num_canon(const char *s, size_t n, char *out, size_t cap);

#endif
