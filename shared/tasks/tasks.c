/* tasks.c - task families, sets of items, training documents and the dump writer (tasks.h). */
#include "tasks/tasks.h"

#include "base/json.h"
#include "base/t2_err.h"
#include "tasks/tasks_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- families */

static const t2_task_family FAMILIES[] = {
    {"math", T2_KIND_TRAIN, T2_LABEL_MATH, "math",
     "arithmetic word problems, one trade (+ or -), answer #### N"},
    {"code", T2_KIND_TRAIN, T2_LABEL_CODE, "code",
     "list programs: run [3,1,2] -> the sorted list (not the reversed one)"},
    {"mc", T2_KIND_TRAIN, T2_LABEL_REASONING, "mc",
     "multiple choice A-D: which animal (the biggest), answer 'the answer is (X)'"},
    {"math-hard", T2_KIND_TRANSFER, T2_LABEL_MATH, "math", "transfer: two trades, larger numbers"},
    {"code-hard", T2_KIND_TRANSFER, T2_LABEL_CODE, "code",
     "transfer: composed op (run dedupe [..]) or new data (letter strings)"},
    {"mc-hard", T2_KIND_TRANSFER, T2_LABEL_REASONING, "mc",
     "transfer: harder distractors (options of close sizes)"},
    {"classify", T2_KIND_CLASSIFY, T2_LABEL_OTHER, NULL,
     "which kind is a question: \\boxed{code|math|reasoning|other}"},
    {"other", T2_KIND_OTHER, T2_LABEL_OTHER, NULL,
     "greetings and colours: prompts of none of the three kinds"},
    {"v2-math", T2_KIND_TRAIN, T2_LABEL_MATH, "math",
     "v2: one-step word problems, 20 templates, split by template, content and names"},
    {"v2-code", T2_KIND_TRAIN, T2_LABEL_CODE, "code",
     "v2: sort 3-5 digits, 20 templates and six list styles; [1,2,3]"},
    {"v2-mc", T2_KIND_TRAIN, T2_LABEL_REASONING, "mc",
     "v2: the biggest of four animals, 20 templates, five option styles"},
    {"v2-math2", T2_KIND_TRANSFER, T2_LABEL_MATH, "math",
     "v2 transfer: two steps (A + B - C) told as a container story"},
    {"v2-sort-words", T2_KIND_TRANSFER, T2_LABEL_CODE, "code",
     "v2 transfer: sort 3-4 words alphabetically; [ant,fig,pear]"},
    {"v2-mc-num", T2_KIND_TRANSFER, T2_LABEL_REASONING, "mc",
     "v2 transfer: the largest of four numbers as multiple choice"},
    {"gsm8k", T2_KIND_REAL, T2_LABEL_MATH, "math",
     "GSM8K grade-school math (gsm8k/*.jsonl); last number vs #### N"},
    {"arc-easy", T2_KIND_REAL, T2_LABEL_REASONING, "mc",
     "ARC-Easy test (arc/ARC-Easy-Test.jsonl); 'answer is (X)' / last choice letter"},
    {"arc-challenge", T2_KIND_REAL, T2_LABEL_REASONING, "mc",
     "ARC-Challenge test (arc/ARC-Challenge-Test.jsonl)"},
    {"mbpp", T2_KIND_REAL, T2_LABEL_CODE, "code",
     "MBPP (mbpp/mbpp.jsonl); code run against its asserts in a sandbox"},
    {"humaneval", T2_KIND_REAL, T2_LABEL_CODE, "code",
     "HumanEval (humaneval/HumanEval.jsonl.gz); prompt + completion run against check()"},
};
#define N_FAMILIES (sizeof FAMILIES / sizeof FAMILIES[0])

size_t t2_task_family_count(void) { return N_FAMILIES; }

const t2_task_family *t2_task_family_at(size_t i) { return i < N_FAMILIES ? &FAMILIES[i] : NULL; }

const t2_task_family *t2_task_family_find(const char *name) {
    if (!name)
        return NULL;
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (!strcmp(FAMILIES[i].name, name))
            return &FAMILIES[i];
    return NULL;
}

static const char *const SPLIT_NAMES[] = {"train", "validation", "test", "all"};

const char *t2_task_split_name(t2_task_split s) { return (unsigned)s < 4 ? SPLIT_NAMES[s] : "?"; }

int t2_task_split_parse(const char *s, t2_task_split *out) {
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, SPLIT_NAMES[i])) {
            *out = (t2_task_split)i;
            return 0;
        }
    if (s && !strcmp(s, "val")) {
        *out = T2_SPLIT_VALIDATION;
        return 0;
    }
    return t2_err_set(T2_EINVAL, "unknown split '%s' (train, validation, test or all)",
                      s ? s : "(null)");
}

const char *t2_task_label_name(t2_task_label l) {
    static const char *const names[] = {"code", "math", "reasoning", "other"};
    return (unsigned)l < T2_LABEL_COUNT ? names[l] : "?";
}

const char *t2_task_kind_name(t2_task_kind k) {
    static const char *const names[] = {"train", "transfer", "classify", "other", "real"};
    return (unsigned)k <= T2_KIND_REAL ? names[k] : "?";
}

/* ---------------------------------------------------------------- hashing, arena */

struct t2_arena_block {
    t2_arena_block *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

void *t2_arena_alloc(t2_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    t2_arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

char *t2_arena_strndup(t2_arena *a, const char *s, size_t n) {
    char *p = t2_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void t2_arena_free(t2_arena *a) {
    t2_arena_block *b = a->head;
    while (b) {
        t2_arena_block *nx = b->next;
        free(b);
        b = nx;
    }
    a->head = NULL;
}

/* ---------------------------------------------------------------- sets */

static int dup_str(t2_arena *a, const char *s, const char **out) {
    if (!s) {
        *out = NULL;
        return 0;
    }
    char *p = t2_arena_strndup(a, s, strlen(s));
    if (!p)
        return t2_err_set(T2_ENOMEM, "out of memory");
    *out = p;
    return 0;
}

int t2_tset_add(t2_task_set *s, const t2_task_item *it) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        t2_task_item **ni = realloc(s->items, nc * sizeof *ni);
        if (!ni)
            return t2_err_set(T2_ENOMEM, "out of memory");
        s->items = ni;
        s->cap = nc;
    }
    t2_task_item *c = t2_arena_alloc(&s->arena, sizeof *c);
    if (!c)
        return t2_err_set(T2_ENOMEM, "out of memory");
    *c = *it;
    int rc = 0;
    if ((rc = dup_str(&s->arena, it->id, &c->id)) < 0 ||
        (rc = dup_str(&s->arena, it->prompt, &c->prompt)) < 0 ||
        (rc = dup_str(&s->arena, it->answer, &c->answer)) < 0 ||
        (rc = dup_str(&s->arena, it->target, &c->target)) < 0 ||
        (rc = dup_str(&s->arena, it->code_prefix, &c->code_prefix)) < 0 ||
        (rc = dup_str(&s->arena, it->code_tests, &c->code_tests)) < 0 ||
        (rc = dup_str(&s->arena, it->choices, &c->choices)) < 0 ||
        (rc = dup_str(&s->arena, it->choice_text, &c->choice_text)) < 0)
        return rc;
    s->items[s->n++] = c;
    return 0;
}

/* Add the synthetic item of `key` to the set. */
static int add_syn(t2_task_set *s, const syn_family *f, const char *key, const syn_item *si) {
    char id[SYN_TEXT + 32];
    snprintf(id, sizeof id, "%s:%s", f->name, key);
    t2_task_item it = {.id = id,
                       .prompt = si->prompt,
                       .answer = si->answer,
                       .target = si->target,
                       .split = t2_syn_split_of(f->name, key),
                       .label = si->label};
    return t2_tset_add(s, &it);
}

/* Open-addressing set of 64-bit hashes (0 is the empty slot; hash 0 is mapped to 1). */
typedef struct hset {
    uint64_t *slot;
    size_t cap, n;
} hset;

static int hset_add(hset *h, uint64_t v) { /* 1 if added, 0 if present, <0 on ENOMEM */
    if (!v)
        v = 1;
    if (2 * (h->n + 1) > h->cap) {
        size_t nc = h->cap ? 2 * h->cap : 1024;
        uint64_t *ns = calloc(nc, sizeof *ns);
        if (!ns)
            return t2_err_set(T2_ENOMEM, "out of memory");
        for (size_t i = 0; i < h->cap; i++)
            if (h->slot[i])
                for (size_t j = h->slot[i] & (nc - 1);; j = (j + 1) & (nc - 1))
                    if (!ns[j]) {
                        ns[j] = h->slot[i];
                        break;
                    }
        free(h->slot);
        h->slot = ns;
        h->cap = nc;
    }
    for (size_t j = v & (h->cap - 1);; j = (j + 1) & (h->cap - 1)) {
        if (h->slot[j] == v)
            return 0;
        if (!h->slot[j]) {
            h->slot[j] = v;
            h->n++;
            return 1;
        }
    }
}

static int open_synthetic(t2_task_set *s, const syn_family *f) {
    const t2_task_opts *o = &s->opts;
    if (!o->n) {
        if (o->split == T2_SPLIT_ALL)
            return 0; /* empty: filled by t2_task_set_find */
        return t2_err_set(T2_EINVAL, "%s: the number of items (n) must be > 0", f->name);
    }
    if (o->n > 10000000)
        return t2_err_set(T2_ERANGE, "%s: n = %zu is too many", f->name, o->n);
    t2_rand r = {o->seed ^ t2_hash64(f->name, strlen(f->name), 0x5eedull) ^
                ((uint64_t)o->split << 56)};
    hset seen = {0};
    char key[SYN_TEXT];
    syn_item si;
    size_t misses = 0; /* draws since the last new item: the split is exhausted at 200000 */
    int rc = 0;
    while (s->n < o->n) {
        if (misses++ >= 200000) {
            rc = t2_err_set(T2_ERANGE,
                            "%s: the %s split has only about %zu distinct items (asked for %zu)",
                            f->name, t2_task_split_name(o->split), s->n, o->n);
            break;
        }
        f->sample(&r, key, sizeof key);
        if (o->split != T2_SPLIT_ALL && t2_syn_split_of(f->name, key) != o->split)
            continue;
        memset(&si, 0, sizeof si);
        if (f->render(key, &si) < 0)
            continue;
        int added = hset_add(&seen, t2_hash64(key, strlen(key), 1));
        if (added < 0) {
            rc = added;
            break;
        }
        if (!added)
            continue;
        misses = 0;
        if ((rc = add_syn(s, f, key, &si)) < 0)
            break;
    }
    free(seen.slot);
    return rc;
}

static void resolve_data_dir(char *out, size_t cap, const char *given) {
    const char *e;
    if (given && *given)
        snprintf(out, cap, "%s", given);
    else if ((e = getenv("T2_DATA")) && *e)
        snprintf(out, cap, "%s", e);
    else if ((e = getenv("T2_ASSETS")) && *e)
        snprintf(out, cap, "%s/data", e);
    else
        snprintf(out, cap, "../shared/assets/data");
}

int t2_task_set_open(t2_task_set **out, const char *family, const t2_task_opts *o) {
    *out = NULL;
    const t2_task_family *fam = t2_task_family_find(family);
    if (!fam)
        return t2_err_set(T2_ENOTFOUND, "unknown task family '%s' (see t2 tasks list)",
                          family ? family : "(null)");
    if (!o)
        return t2_err_set(T2_EINVAL, "t2_task_set_open: NULL options");
    if ((unsigned)o->split > T2_SPLIT_ALL)
        return t2_err_set(T2_EINVAL, "bad split %d", o->split);
    t2_task_set *s = calloc(1, sizeof *s);
    if (!s)
        return t2_err_set(T2_ENOMEM, "out of memory");
    s->fam = fam;
    s->opts = *o;
    resolve_data_dir(s->data_dir, sizeof s->data_dir, o->data_dir);
    s->opts.data_dir = s->data_dir;
    int rc =
        fam->kind == T2_KIND_REAL ? t2_real_load(s) : open_synthetic(s, t2_syn_find(fam->name));
    if (rc < 0) {
        t2_task_set_destroy(&s);
        return rc;
    }
    *out = s;
    return 0;
}

void t2_task_set_destroy(t2_task_set **sp) {
    if (!sp || !*sp)
        return;
    t2_task_set *s = *sp;
    t2_arena_free(&s->arena);
    free(s->items);
    free(s);
    *sp = NULL;
}

const t2_task_family *t2_task_set_family(const t2_task_set *s) { return s->fam; }
size_t t2_task_set_count(const t2_task_set *s) { return s->n; }
const t2_task_item *t2_task_set_item(const t2_task_set *s, size_t i) {
    return i < s->n ? s->items[i] : NULL;
}

int t2_task_set_find(t2_task_set *s, const char *id, const t2_task_item **out) {
    *out = NULL;
    if (!id)
        return t2_err_set(T2_EINVAL, "NULL id");
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i]->id, id)) {
            *out = s->items[i];
            return 0;
        }
    if (s->fam->kind == T2_KIND_REAL)
        return t2_err_set(T2_ENOTFOUND, "%s: no item with id '%s' in the %s split", s->fam->name,
                          id, t2_task_split_name(s->opts.split));
    size_t fl = strlen(s->fam->name);
    if (strncmp(id, s->fam->name, fl) || id[fl] != ':' || strlen(id + fl + 1) >= SYN_TEXT)
        return t2_err_set(T2_ENOTFOUND, "'%s' is not an id of family %s (want %s:...)", id,
                          s->fam->name, s->fam->name);
    const syn_family *f = t2_syn_find(s->fam->name);
    const char *key = id + fl + 1;
    syn_item si;
    memset(&si, 0, sizeof si);
    if (f->render(key, &si) < 0)
        return t2_err_set(T2_ENOTFOUND, "'%s' is not a valid %s item", id, s->fam->name);
    if (s->opts.split != T2_SPLIT_ALL && t2_syn_split_of(f->name, key) != s->opts.split)
        return t2_err_set(T2_ENOTFOUND, "'%s' is not in the %s split", id,
                          t2_task_split_name(s->opts.split));
    int rc = add_syn(s, f, key, &si);
    if (rc < 0)
        return rc;
    *out = s->items[s->n - 1];
    return 0;
}

/* ---------------------------------------------------------------- documents */

/* ---------------------------------------------------------------- evaluation controls */

int t2_task_set_cue(t2_task_set *s) {
    const syn_family *f = s->fam->kind == T2_KIND_REAL ? NULL : t2_syn_find(s->fam->name);
    size_t fl = strlen(s->fam->name);
    syn_item si;
    for (size_t i = 0; i < s->n; i++) {
        t2_task_item *it = s->items[i];
        memset(&si, 0, sizeof si);
        if (!f || strncmp(it->id, s->fam->name, fl) || it->id[fl] != ':' ||
            f->render(it->id + fl + 1, &si) < 0)
            return t2_err_set(T2_EINVAL, "%s: item '%s' cannot be rebuilt from its id (the cue "
                              "is for synthetic families)", s->fam->name, it->id);
        if (si.n_cued < 1)
            return t2_err_set(T2_EINVAL, "%s has no cued readings (docs/TASKS.md): no cued "
                              "prompt for '%s'", s->fam->name, it->id);
        if (strcmp(si.cued[0].answer, it->answer))
            return t2_err_set(T2_EINTERNAL, "%s: the cued answer of '%s' is not its answer",
                              s->fam->name, it->id);
        const char *p = t2_arena_strndup(&s->arena, si.cued[0].prompt, strlen(si.cued[0].prompt));
        if (!p)
            return t2_err_set(T2_ENOMEM, "out of memory");
        it->prompt = p;
    }
    return 0;
}

int t2_task_set_add_shots(t2_task_set *s, const t2_task_set *shots, size_t k) {
    if (!shots || shots->n < k)
        return t2_err_set(T2_EINVAL, "%s: %zu shots asked, %zu items to take them from",
                          s->fam->name, k, shots ? shots->n : 0);
    size_t len = 0;
    for (size_t j = 0; j < k; j++) {
        for (size_t i = 0; i < s->n; i++)
            if (!strcmp(s->items[i]->id, shots->items[j]->id))
                return t2_err_set(T2_EINVAL, "%s: shot '%s' is also an evaluated item",
                                  s->fam->name, shots->items[j]->id);
        len += t2_task_render_doc(shots->items[j], NULL, 0);
    }
    char *pre = malloc(len + 1);
    if (!pre)
        return t2_err_set(T2_ENOMEM, "out of memory");
    size_t at = 0;
    for (size_t j = 0; j < k; j++)
        at += t2_task_render_doc(shots->items[j], pre + at, len + 1 - at);
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        t2_task_item *it = s->items[i];
        size_t pl = strlen(it->prompt);
        char *p = t2_arena_alloc(&s->arena, at + pl + 1);
        if (!p) {
            rc = t2_err_set(T2_ENOMEM, "out of memory");
            break;
        }
        memcpy(p, pre, at);
        memcpy(p + at, it->prompt, pl + 1);
        it->prompt = p;
    }
    free(pre);
    return rc;
}

size_t t2_task_render_doc(const t2_task_item *it, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s" T2_TASK_SEP "%s\n\n", it->prompt, it->answer);
    return n < 0 ? 0 : (size_t)n;
}

size_t t2_task_classify_prompt(const char *question, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "Classify: %s", question);
    return n < 0 ? 0 : (size_t)n;
}

int t2_task_classify_parse(const char *generation, t2_task_label *out) {
    const char *p = generation ? strstr(generation, "\\boxed{") : NULL;
    if (!p)
        return t2_err_set(T2_ENOTFOUND, "no \\boxed{...} in the generation");
    p += 7;
    const char *e = strchr(p, '}');
    if (!e)
        return t2_err_set(T2_ENOTFOUND, "unterminated \\boxed{");
    while (p < e && *p == ' ')
        p++;
    while (e > p && e[-1] == ' ')
        e--;
    for (int l = 0; l < T2_LABEL_COUNT; l++) {
        const char *nm = t2_task_label_name((t2_task_label)l);
        if ((size_t)(e - p) == strlen(nm) && !strncmp(p, nm, (size_t)(e - p))) {
            *out = (t2_task_label)l;
            return 0;
        }
    }
    return t2_err_set(T2_ENOTFOUND, "\\boxed{%.*s} is not code, math, reasoning or other",
                      (int)(e - p > 40 ? 40 : e - p), p);
}

/* ---------------------------------------------------------------- dump */

/* Mixture weights of `--family all` (docs/TASKS.md). */
static const struct {
    const char *family;
    unsigned weight;
} MIX[] = {{"math", 3},      {"code", 3},    {"mc", 3},       {"math-hard", 2},
           {"code-hard", 2}, {"mc-hard", 2}, {"classify", 2}, {"other", 1}};
#define N_MIX (sizeof MIX / sizeof MIX[0])

static void write_doc(FILE *f, int jsonl, const char *id, const char *family, const char *prompt,
                      const char *answer) {
    if (!jsonl) {
        fprintf(f, "%s" T2_TASK_SEP "%s\n\n", prompt, answer);
        return;
    }
    json_t *o = json_pack("{s:o,s:o,s:o,s:o}", "id", t2_json_text(id, strlen(id)), "family",
                          t2_json_text(family, strlen(family)), "prompt",
                          t2_json_text(prompt, strlen(prompt)), "answer",
                          t2_json_text(answer, strlen(answer)));
    if (o)
        json_dumpf(o, f, JSON_COMPACT);
    json_decref(o);
    fputc('\n', f);
}

/* Pick the document a pretraining mixture shows for one core: the uncued prompt answered by
 * either reading (30 %), a cued prompt for the target (25 %) or the other reading (25 %),
 * or another cued skill on the same core (20 %, when the family has one). */
static void pretrain_doc(const syn_item *si, t2_rand *r, const char **p, const char **a) {
    uint32_t u = t2_rand_below_scaled(r, 100);
    uint32_t coin = t2_rand_below_scaled(r, 2);
    if (si->n_cued == 0 || u < 30) {
        *p = si->prompt;
        *a = coin ? si->decoy : si->answer;
        return;
    }
    u -= 30; /* 0..69 */
    if (si->n_extra && u >= 50) {
        const syn_doc *d = &si->extra[t2_rand_below_scaled(r, (uint32_t)si->n_extra)];
        *p = d->prompt;
        *a = d->answer;
        return;
    }
    const syn_doc *d = &si->cued[si->n_extra ? (u >= 25) : (u >= 35)];
    *p = d->prompt;
    *a = d->answer;
}

static int dump_synthetic_stream(FILE *f, const t2_task_dump_opts *o) {
    int all = !strcmp(o->family, "all");
    const syn_family *single = all ? NULL : t2_syn_find(o->family);
    unsigned total = 0;
    for (size_t i = 0; i < N_MIX; i++)
        total += MIX[i].weight;
    t2_rand r = {o->seed * 0x9E3779B97F4A7C15ull + 0x7432ull};
    char key[SYN_TEXT], id[SYN_TEXT + 32];
    syn_item si;
    for (size_t k = 0; k < o->n; k++) {
        const syn_family *fam = single;
        if (!fam) {
            unsigned w = t2_rand_below_scaled(&r, total);
            size_t j = 0;
            while (w >= MIX[j].weight)
                w -= MIX[j++].weight;
            fam = t2_syn_find(MIX[j].family);
        }
        int rc = t2_syn_sample_split(fam, &r, o->split, key, sizeof key);
        if (rc < 0)
            return rc;
        memset(&si, 0, sizeof si);
        fam->render(key, &si);
        const char *p = si.prompt, *a = si.answer;
        if (o->pretrain)
            pretrain_doc(&si, &r, &p, &a);
        snprintf(id, sizeof id, "%s:%s", fam->name, key);
        write_doc(f, o->jsonl, id, fam->name, p, a);
        if (ferror(f))
            return t2_err_set(T2_EIO, "write error");
    }
    return 0;
}

int t2_task_dump(FILE *f, const t2_task_dump_opts *o) {
    if (!o || !o->family)
        return t2_err_set(T2_EINVAL, "t2_task_dump: no family");
    int all = !strcmp(o->family, "all");
    const t2_task_family *fam = all ? NULL : t2_task_family_find(o->family);
    if (!all && !fam)
        return t2_err_set(T2_ENOTFOUND, "unknown task family '%s' (see t2 tasks list)", o->family);
    if (fam && fam->kind == T2_KIND_REAL) {
        if (o->pretrain)
            return t2_err_set(T2_EINVAL, "%s: the pretraining mixture is synthetic only",
                              fam->name);
        if (!o->jsonl)
            return t2_err_set(T2_EINVAL,
                              "%s: real data sets have multi-line prompts and answers; dump them "
                              "with --format jsonl",
                              fam->name);
    }
    if (all || o->pretrain) {
        if (o->split == T2_SPLIT_ALL && o->pretrain)
            return t2_err_set(T2_EINVAL, "the pretraining mixture needs one split (train)");
        return dump_synthetic_stream(f, o);
    }
    t2_task_opts so = {.split = o->split, .n = o->n, .seed = o->seed, .data_dir = o->data_dir};
    t2_task_set *s;
    int rc = t2_task_set_open(&s, o->family, &so);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < t2_task_set_count(s); i++) {
        const t2_task_item *it = t2_task_set_item(s, i);
        write_doc(f, o->jsonl, it->id, fam->name, it->prompt, it->answer);
        if (ferror(f)) {
            rc = t2_err_set(T2_EIO, "write error");
            break;
        }
    }
    t2_task_set_destroy(&s);
    return rc;
}
