/* test_tasks.c - the task suite: generators (deterministic, disjoint splits), scorers
 * (references accepted, near-misses rejected), the JSON parser, the sandbox, the `t2 tasks` CLI.
 *
 *   test_tasks        everything that needs no assets
 *   test_tasks real   the loaders and scorers on ../shared/assets/data (exit 77 without it)
 */
#include "t2_test.h"

#include "base/json.h"
#include "tasks/sandbox.h"
#include "base/t2_err.h"
#include "tasks/tasks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const SYNTH[] = {"math",      "code",    "mc",       "math-hard",
                                    "code-hard", "mc-hard", "classify", "other"};
#define N_SYNTH 8

static t2_task_set *open_set(const char *fam, t2_task_split sp, size_t n, uint64_t seed) {
    t2_task_opts o = {.split = sp, .n = n, .seed = seed};
    t2_task_set *s = NULL;
    int rc = t2_task_set_open(&s, fam, &o);
    T2_CHECK_MSG(rc == 0, "%s %s n=%zu: %s", fam, t2_task_split_name(sp), n, t2_err_msg());
    return s;
}

static char *dump_to_mem(const t2_task_dump_opts *o, int *rc) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = t2_task_dump(f, o);
    fclose(f);
    return buf;
}

/* A small string set (open addressing over strdup'd keys). */
typedef struct strset {
    char **slot;
    size_t cap, n;
} strset;

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}
static int strset_add(strset *t, const char *s) { /* 1 if new */
    if (2 * (t->n + 1) > t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 1024;
        char **ns = calloc(nc, sizeof *ns);
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i])
                for (size_t j = fnv(t->slot[i]) & (nc - 1);; j = (j + 1) & (nc - 1))
                    if (!ns[j]) {
                        ns[j] = t->slot[i];
                        break;
                    }
        free(t->slot);
        t->slot = ns;
        t->cap = nc;
    }
    for (size_t j = fnv(s) & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        if (!t->slot[j]) {
            t->slot[j] = strdup(s);
            t->n++;
            return 1;
        }
        if (!strcmp(t->slot[j], s))
            return 0;
    }
}
static int strset_has(const strset *t, const char *s) {
    if (!t->cap)
        return 0;
    for (size_t j = fnv(s) & (t->cap - 1);; j = (j + 1) & (t->cap - 1)) {
        if (!t->slot[j])
            return 0;
        if (!strcmp(t->slot[j], s))
            return 1;
    }
}
static void strset_free(strset *t) {
    for (size_t i = 0; i < t->cap; i++)
        free(t->slot[i]);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

/* ================================================================ generators */

static void test_families_registry(void) {
    T2_CHECK(t2_task_family_count() == 19); /* 8 synthetic, 6 of suite v2, 5 real */
    for (int i = 0; i < N_SYNTH; i++)
        T2_CHECK(t2_task_family_find(SYNTH[i]) != NULL);
    const char *real[] = {"gsm8k", "arc-easy", "arc-challenge", "mbpp", "humaneval"};
    for (int i = 0; i < 5; i++) {
        const t2_task_family *f = t2_task_family_find(real[i]);
        T2_CHECK(f && f->kind == T2_KIND_REAL);
    }
    T2_CHECK(t2_task_family_find("nope") == NULL);
    T2_CHECK(t2_task_family_at(19) == NULL);
    t2_task_split sp;
    T2_CHECK(t2_task_split_parse("validation", &sp) == 0 && sp == T2_SPLIT_VALIDATION);
    T2_CHECK(t2_task_split_parse("tset", &sp) == T2_EINVAL);
    t2_task_set *s = NULL;
    t2_task_opts o = {.split = T2_SPLIT_TEST, .n = 5};
    T2_CHECK(t2_task_set_open(&s, "nope", &o) == T2_ENOTFOUND && s == NULL);
    T2_CHECK(strstr(t2_err_msg(), "nope") != NULL);
    o.n = 0;
    T2_CHECK(t2_task_set_open(&s, "math", &o) == T2_EINVAL);
    o.n = 100000; /* more distinct items than the split has */
    T2_CHECK(t2_task_set_open(&s, "other", &o) == T2_ERANGE && s == NULL);
    T2_CHECK(strstr(t2_err_msg(), "distinct") != NULL);
}

static void test_deterministic(void) {
    for (int f = 0; f < N_SYNTH; f++) {
        t2_task_set *a = open_set(SYNTH[f], T2_SPLIT_TEST, 40, 7);
        t2_task_set *b = open_set(SYNTH[f], T2_SPLIT_TEST, 40, 7);
        t2_task_set *c = open_set(SYNTH[f], T2_SPLIT_TEST, 40, 8);
        if (!a || !b || !c)
            continue;
        T2_CHECK(t2_task_set_count(a) == 40 && t2_task_set_count(b) == 40);
        int differ = 0;
        for (size_t i = 0; i < 40; i++) {
            const t2_task_item *x = t2_task_set_item(a, i), *y = t2_task_set_item(b, i),
                               *z = t2_task_set_item(c, i);
            T2_CHECK(!strcmp(x->id, y->id) && !strcmp(x->prompt, y->prompt) &&
                     !strcmp(x->answer, y->answer) && !strcmp(x->target, y->target));
            differ |= strcmp(x->id, z->id) != 0;
        }
        T2_CHECK_MSG(differ, "%s: seeds 7 and 8 give the same items", SYNTH[f]);
        t2_task_set_destroy(&a);
        t2_task_set_destroy(&b);
        t2_task_set_destroy(&c);
        T2_CHECK(a == NULL);
    }
    /* the dump streams too */
    t2_task_dump_opts d = {
        .family = "all", .split = T2_SPLIT_TRAIN, .n = 500, .seed = 3, .pretrain = 1};
    int rc1, rc2;
    char *x = dump_to_mem(&d, &rc1), *y = dump_to_mem(&d, &rc2);
    T2_CHECK(rc1 == 0 && rc2 == 0 && x && y && !strcmp(x, y));
    d.seed = 4;
    char *z = dump_to_mem(&d, &rc1);
    T2_CHECK(rc1 == 0 && strcmp(x, z));
    free(x);
    free(y);
    free(z);
}

/* Splits are disjoint by content: no prompt (or id) of one split appears in another, checked on
 * thousands of items per family, and items carry the split they were drawn from. */
static void test_splits_disjoint(void) {
    static const size_t n_train[N_SYNTH] = {5000, 5000, 5000, 5000, 5000, 3000, 5000, 300};
    static const size_t n_eval[N_SYNTH] = {1000, 1000, 1000, 1000, 1000, 400, 1000, 40};
    for (int f = 0; f < N_SYNTH; f++) {
        strset seen[3] = {{0}};
        t2_task_split sps[3] = {T2_SPLIT_TRAIN, T2_SPLIT_VALIDATION, T2_SPLIT_TEST};
        for (int k = 0; k < 3; k++) {
            t2_task_set *s = open_set(SYNTH[f], sps[k], k ? n_eval[f] : n_train[f], 11);
            if (!s)
                continue;
            for (size_t i = 0; i < t2_task_set_count(s); i++) {
                const t2_task_item *it = t2_task_set_item(s, i);
                T2_CHECK(it->split == sps[k]);
                T2_CHECK_MSG(strset_add(&seen[k], it->prompt), "%s: duplicate prompt '%s'",
                             SYNTH[f], it->prompt);
                for (int j = 0; j < k; j++)
                    T2_CHECK_MSG(!strset_has(&seen[j], it->prompt),
                                 "%s: '%s' is in the %s and %s splits", SYNTH[f], it->prompt,
                                 t2_task_split_name(sps[j]), t2_task_split_name(sps[k]));
            }
            t2_task_set_destroy(&s);
        }
        for (int k = 0; k < 3; k++)
            strset_free(&seen[k]);
    }
}

/* No pretraining document (cued or not) comes from a test-split question: every document's id
 * rebuilds in the train split, and no test prompt is among the documents. */
static void test_pretrain_mix_train_only(void) {
    t2_task_dump_opts d = {
        .family = "all", .split = T2_SPLIT_TRAIN, .n = 20000, .seed = 5, .pretrain = 1, .jsonl = 1};
    int rc;
    char *buf = dump_to_mem(&d, &rc);
    T2_CHECK(rc == 0 && buf);
    if (!buf)
        return;
    t2_task_set *fams[N_SYNTH];
    for (int f = 0; f < N_SYNTH; f++) {
        t2_task_opts o = {.split = T2_SPLIT_TRAIN, .n = 0};
        fams[f] = NULL;
        T2_CHECK(t2_task_set_open(&fams[f], SYNTH[f], &o) == T2_EINVAL); /* n required */
        o.split = T2_SPLIT_ALL;
        T2_CHECK(t2_task_set_open(&fams[f], SYNTH[f], &o) == 0);
    }
    strset prompts = {0};
    size_t docs = 0, line = 0;
    for (char *p = buf; *p;) {
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = 0;
        line++;
        json_t *row;
        if (t2_json_parse(p, strlen(p), &row) == 0) {
            const char *id = json_string_value(json_object_get(row, "id"));
            const char *fam = json_string_value(json_object_get(row, "family"));
            const char *prompt = json_string_value(json_object_get(row, "prompt"));
            T2_CHECK(id && fam && prompt);
            for (int f = 0; f < N_SYNTH && id && fam; f++) {
                if (strcmp(fam, SYNTH[f]))
                    continue;
                const t2_task_item *it;
                T2_CHECK_MSG(t2_task_set_find(fams[f], id, &it) == 0, "%s", t2_err_msg());
                T2_CHECK_MSG(it && it->split == T2_SPLIT_TRAIN, "%s is not a train item", id);
            }
            if (prompt)
                strset_add(&prompts, prompt);
            T2_CHECK(prompt && strlen(prompt) <= 70);
            const char *ans = json_string_value(json_object_get(row, "answer"));
            T2_CHECK(ans && strlen(ans) <= 24 && !strchr(ans, '\n'));
            docs++;
            json_decref(row);
        } else {
            T2_CHECK_MSG(0, "dump line %zu: %s", line, t2_err_msg());
        }
        p = nl + 1;
    }
    T2_CHECK(docs == 20000);
    for (int f = 0; f < N_SYNTH; f++) {
        t2_task_set *t = open_set(SYNTH[f], T2_SPLIT_TEST, SYNTH[f][0] == 'o' ? 40 : 300, 2);
        for (size_t i = 0; t && i < t2_task_set_count(t); i++)
            T2_CHECK_MSG(!strset_has(&prompts, t2_task_set_item(t, i)->prompt),
                         "test prompt '%s' is in the pretraining mixture",
                         t2_task_set_item(t, i)->prompt);
        t2_task_set_destroy(&t);
        t2_task_set_destroy(&fams[f]);
    }
    strset_free(&prompts);
    free(buf);
}

/* In the pretraining mixture the uncued code prompt is answered by either reading (about
 * half each); the cued ones always by theirs. */
static void test_pretrain_mix_readings(void) {
    t2_task_dump_opts d = {
        .family = "code", .split = T2_SPLIT_TRAIN, .n = 6000, .seed = 9, .pretrain = 1};
    int rc;
    char *buf = dump_to_mem(&d, &rc);
    T2_CHECK(rc == 0 && buf);
    if (!buf)
        return;
    size_t uncued = 0, sorted_ans = 0, cued = 0, cued_ok = 0, extra = 0;
    char *save = NULL;
    for (char *doc = strtok_r(buf, "\n", &save); doc; doc = strtok_r(NULL, "\n", &save)) {
        char *ans = strtok_r(NULL, "\n", &save);
        if (!ans)
            break;
        const char *lst = strchr(doc, '[');
        int dg[8], n = 0;
        for (const char *p = lst; p && *p && n < 8; p++)
            if (*p >= '0' && *p <= '9')
                dg[n++] = *p - '0';
        int s[8], r[8];
        memcpy(s, dg, sizeof s);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (s[j] < s[i]) {
                    int t = s[i];
                    s[i] = s[j];
                    s[j] = t;
                }
        for (int i = 0; i < n; i++)
            r[i] = dg[n - 1 - i];
        char sl[32], rl[32];
        size_t o1 = 0, o2 = 0;
        sl[o1++] = rl[o2++] = '[';
        for (int i = 0; i < n; i++) {
            if (i)
                sl[o1++] = rl[o2++] = ',';
            sl[o1++] = (char)('0' + s[i]);
            rl[o2++] = (char)('0' + r[i]);
        }
        sl[o1++] = rl[o2++] = ']';
        sl[o1] = rl[o2] = 0;
        if (!strncmp(doc, "run ", 4)) {
            uncued++;
            T2_CHECK(!strcmp(ans, sl) || !strcmp(ans, rl));
            sorted_ans += !strcmp(ans, sl);
        } else if (!strncmp(doc, "sort ", 5)) {
            cued++;
            cued_ok += !strcmp(ans, sl);
        } else if (!strncmp(doc, "reverse ", 8)) {
            cued++;
            cued_ok += !strcmp(ans, rl);
        } else {
            extra++;
            T2_CHECK(!strncmp(doc, "max ", 4) || !strncmp(doc, "min ", 4) ||
                     !strncmp(doc, "dedupe ", 7));
        }
    }
    T2_CHECK(uncued + cued + extra == 6000);
    T2_CHECK(cued == cued_ok);
    T2_CHECK_MSG(uncued > 1500 && uncued < 2100, "uncued %zu", uncued);
    T2_CHECK_MSG(sorted_ans > 0.4 * (double)uncued && sorted_ans < 0.6 * (double)uncued,
                 "uncued answered sorted %zu of %zu", sorted_ans, uncued);
    T2_CHECK(extra > 900 && extra < 1500);
    free(buf);
}

static void test_ids_roundtrip(void) {
    for (int f = 0; f < N_SYNTH; f++) {
        t2_task_set *s = open_set(SYNTH[f], T2_SPLIT_TEST, 30, 1);
        t2_task_set *all = NULL, *train = NULL;
        t2_task_opts o = {.split = T2_SPLIT_ALL};
        T2_CHECK(t2_task_set_open(&all, SYNTH[f], &o) == 0 && t2_task_set_count(all) == 0);
        o.split = T2_SPLIT_TRAIN;
        o.n = 1;
        T2_CHECK(t2_task_set_open(&train, SYNTH[f], &o) == 0);
        for (size_t i = 0; s && all && i < t2_task_set_count(s); i++) {
            const t2_task_item *it = t2_task_set_item(s, i), *back = NULL;
            T2_CHECK_MSG(t2_task_set_find(all, it->id, &back) == 0, "%s", t2_err_msg());
            T2_CHECK(back && !strcmp(back->prompt, it->prompt) &&
                     !strcmp(back->answer, it->answer) && back->split == T2_SPLIT_TEST);
            /* a test id is not found in a train set */
            T2_CHECK(t2_task_set_find(train, it->id, &back) == T2_ENOTFOUND);
        }
        t2_task_set_destroy(&s);
        t2_task_set_destroy(&all);
        t2_task_set_destroy(&train);
    }
    /* malformed or non-canonical ids are rejected */
    t2_task_set *m = NULL;
    t2_task_opts o = {.split = T2_SPLIT_ALL};
    T2_CHECK(t2_task_set_open(&m, "math", &o) == 0);
    const char *bad[] = {"math:1.2.3",    "math:01.2.12.3", "math:1.2.12.13", "math:1.2.12.3.",
                         "math:1.2.3.12", "math:10.2.12.3", "code:312",       "math:",
                         "math:a.b.c.d",  "math:1.2.12.3x", "math:1.2.1234.3"};
    const t2_task_item *it;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        T2_CHECK_MSG(t2_task_set_find(m, bad[i], &it) == T2_ENOTFOUND, "%s accepted", bad[i]);
    T2_CHECK(t2_task_set_find(m, "math:1.2.12.3", &it) == 0 && !strcmp(it->answer, "#### 15"));
    T2_CHECK(!strcmp(it->prompt, "Bo had 12 eggs and traded 3. How many now?"));
    t2_task_set_destroy(&m);
    /* code: a list whose readings agree (non-increasing) is not an item */
    T2_CHECK(t2_task_set_open(&m, "code", &o) == 0);
    T2_CHECK(t2_task_set_find(m, "code:321", &it) == T2_ENOTFOUND);
    T2_CHECK(t2_task_set_find(m, "code:312", &it) == 0 && !strcmp(it->answer, "[1,2,3]") &&
             !strcmp(it->prompt, "run [3,1,2]"));
    t2_task_set_destroy(&m);
}

/* The evaluation controls: t2_task_set_cue writes the target reading's cue into each prompt
 * (math: "got", the answer unchanged) and refuses families without cued readings;
 * t2_task_set_add_shots puts training documents before each prompt and refuses a shot that is
 * also an evaluated item. */
static void test_controls(void) {
    t2_task_set *s = open_set("math", T2_SPLIT_TEST, 20, 3), *ref = open_set("math", T2_SPLIT_TEST,
                                                                                20, 3);
    T2_CHECK(s && ref);
    T2_CHECK_MSG(s && t2_task_set_cue(s) == 0, "%s", t2_err_msg());
    for (size_t i = 0; s && ref && i < t2_task_set_count(s); i++) {
        const t2_task_item *c = t2_task_set_item(s, i), *r = t2_task_set_item(ref, i);
        T2_CHECK_MSG(strstr(c->prompt, " got ") && !strstr(r->prompt, " got "), "%s -> %s",
                     r->prompt, c->prompt);
        T2_CHECK(!strcmp(c->answer, r->answer) && !strcmp(c->target, r->target));
    }
    t2_task_set *m = NULL;
    t2_task_opts o = {.split = T2_SPLIT_ALL};
    T2_CHECK(t2_task_set_open(&m, "math", &o) == 0);
    const t2_task_item *it = NULL;
    T2_CHECK(t2_task_set_find(m, "math:1.2.12.3", &it) == 0 && t2_task_set_cue(m) == 0 &&
             !strcmp(it->prompt, "Bo had 12 eggs and got 3. How many now?"));
    t2_task_set_destroy(&m);
    t2_task_set *v2 = open_set("v2-math", T2_SPLIT_TEST, 5, 1);
    T2_CHECK(v2 && t2_task_set_cue(v2) == T2_EINVAL);
    t2_task_set_destroy(&v2);

    t2_task_set *shots = open_set("math", T2_SPLIT_TRAIN, 2, 1);
    T2_CHECK(shots && t2_task_set_add_shots(s, shots, 3) == T2_EINVAL);
    T2_CHECK_MSG(shots && t2_task_set_add_shots(ref, shots, 2) == 0, "%s", t2_err_msg());
    char want[512];
    for (size_t i = 0; shots && i < t2_task_set_count(ref); i++) {
        const t2_task_item *a = t2_task_set_item(shots, 0), *b = t2_task_set_item(shots, 1);
        const t2_task_item *q = t2_task_set_item(s, i); /* same item, cued prompt */
        snprintf(want, sizeof want, "%s\n%s\n\n%s\n%s\n\n", a->prompt, a->answer, b->prompt,
                 b->answer);
        const char *p = t2_task_set_item(ref, i)->prompt;
        T2_CHECK_MSG(!strncmp(p, want, strlen(want)) && strstr(q->prompt, " got ") &&
                     !strstr(p + strlen(want), "\n"), "%s", p);
    }
    t2_task_set_destroy(&shots);
    shots = open_set("math", T2_SPLIT_TEST, 1, 3); /* the first item of s */
    T2_CHECK(shots && t2_task_set_add_shots(s, shots, 1) == T2_EINVAL);
    t2_task_set_destroy(&shots);
    t2_task_set_destroy(&s);
    t2_task_set_destroy(&ref);
}

/* Every synthetic prompt and answer is short and single-line (docs/TASKS.md §4: a tiny model). */
static void test_lengths(void) {
    for (int f = 0; f < N_SYNTH; f++) {
        t2_task_set *s = open_set(SYNTH[f], T2_SPLIT_TRAIN, SYNTH[f][0] == 'o' ? 300 : 2000, 3);
        size_t maxp = strcmp(SYNTH[f], "classify") ? 64 : 80;
        for (size_t i = 0; s && i < t2_task_set_count(s); i++) {
            const t2_task_item *it = t2_task_set_item(s, i);
            T2_CHECK_MSG(strlen(it->prompt) <= maxp, "%s: prompt '%s' is long", SYNTH[f],
                         it->prompt);
            T2_CHECK_MSG(strlen(it->answer) <= 24, "%s: answer '%s' is long", SYNTH[f], it->answer);
            T2_CHECK(!strchr(it->prompt, '\n') && !strchr(it->answer, '\n'));
            char doc[256];
            size_t n = t2_task_render_doc(it, doc, sizeof doc);
            T2_CHECK(n == strlen(it->prompt) + strlen(it->answer) + 3 && n == strlen(doc));
            T2_CHECK(!strncmp(doc, it->prompt, strlen(it->prompt)) &&
                     doc[strlen(it->prompt)] == '\n' && !strcmp(doc + n - 2, "\n\n"));
        }
        t2_task_set_destroy(&s);
    }
}

/* ================================================================ scorers */

static int score(t2_task_set *s, const char *id, const char *gen, char *extracted) {
    const t2_task_item *it;
    if (t2_task_set_find(s, id, &it) < 0) {
        T2_CHECK_MSG(0, "%s: %s", id, t2_err_msg());
        return -1;
    }
    t2_task_score sc;
    int rc = t2_task_score_item(s, it, gen, &sc);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    if (extracted)
        strcpy(extracted, sc.extracted);
    return sc.correct;
}

static void test_synthetic_scorers(void) {
    /* every item's own answer is correct, also with a trailing newline and more lines */
    for (int f = 0; f < N_SYNTH; f++) {
        t2_task_set *s = open_set(SYNTH[f], T2_SPLIT_TEST, SYNTH[f][0] == 'o' ? 40 : 200, 4);
        for (size_t i = 0; s && i < t2_task_set_count(s); i++) {
            const t2_task_item *it = t2_task_set_item(s, i);
            t2_task_score sc;
            char gen[256];
            T2_CHECK(t2_task_score_item(s, it, it->answer, &sc) == 0 && sc.correct);
            snprintf(gen, sizeof gen, "%s\nrun [1,2]\n", it->answer);
            T2_CHECK(t2_task_score_item(s, it, gen, &sc) == 0 && sc.correct);
            snprintf(gen, sizeof gen, "%s and more", it->answer);
            T2_CHECK(t2_task_score_item(s, it, gen, &sc) == 0 && !sc.correct);
            T2_CHECK(t2_task_score_item(s, it, "", &sc) == 0 && !sc.correct);
            T2_CHECK(t2_task_score_item(s, it, NULL, &sc) == 0 && !sc.correct);
        }
        t2_task_set_destroy(&s);
    }
    t2_task_opts o = {.split = T2_SPLIT_ALL};
    t2_task_set *s = NULL;
    char ex[128];
    /* math: "Ann had 9 pens and traded 3" -> 12 */
    T2_CHECK(t2_task_set_open(&s, "math", &o) == 0);
    T2_CHECK(score(s, "math:0.0.9.3", "#### 12", ex) == 1 && !strcmp(ex, "12"));
    T2_CHECK(score(s, "math:0.0.9.3", "  #### 12  \nAnn had", ex) == 1);
    T2_CHECK(score(s, "math:0.0.9.3", "#### 121", ex) == 0 && !strcmp(ex, "121"));
    T2_CHECK(score(s, "math:0.0.9.3", "#### 1", ex) == 0);
    T2_CHECK(score(s, "math:0.0.9.3", "#### 6", ex) == 0); /* the other reading */
    T2_CHECK(score(s, "math:0.0.9.3", "#### 12 pens", ex) == 0);
    T2_CHECK(score(s, "math:0.0.9.3", "12", ex) == 0 && ex[0] == 0);
    T2_CHECK(score(s, "math:0.0.9.3", "#### 012", ex) == 0);
    t2_task_set_destroy(&s);
    /* math-hard: 34 + 5 + 9 = 48, decoy 20 */
    T2_CHECK(t2_task_set_open(&s, "math-hard", &o) == 0);
    T2_CHECK(score(s, "math-hard:0.0.34.5.9", "#### 48", ex) == 1);
    T2_CHECK(score(s, "math-hard:0.0.34.5.9", "#### 20", ex) == 0);
    T2_CHECK(score(s, "math-hard:0.0.34.5.9", "#### 480", ex) == 0);
    t2_task_set_destroy(&s);
    /* code */
    T2_CHECK(t2_task_set_open(&s, "code", &o) == 0);
    T2_CHECK(score(s, "code:3152", "[1,2,3,5]", ex) == 1);
    T2_CHECK(score(s, "code:3152", "[2,5,1,3]", ex) == 0); /* reversed */
    T2_CHECK(score(s, "code:3152", "[1,2,3,5]]", ex) == 0);
    T2_CHECK(score(s, "code:3152", "[1, 2, 3, 5]", ex) == 0);
    T2_CHECK(score(s, "code:3152", "[1,2,3]", ex) == 0);
    t2_task_set_destroy(&s);
    /* code-hard */
    T2_CHECK(t2_task_set_open(&s, "code-hard", &o) == 0);
    T2_CHECK(score(s, "code-hard:s.cabd", "abcd", ex) == 1);
    T2_CHECK(score(s, "code-hard:s.cabd", "dbac", ex) == 0);
    T2_CHECK(score(s, "code-hard:d.3132", "[1,2,3]", ex) == 1);
    T2_CHECK(score(s, "code-hard:d.3132", "[2,1,3]", ex) == 0);
    T2_CHECK(score(s, "code-hard:d.3132", "[1,1,2,3,3]", ex) == 0);
    t2_task_set_destroy(&s);
    /* mc: A) ant B) whale C) cat D) horse -> B; decoy A */
    T2_CHECK(t2_task_set_open(&s, "mc", &o) == 0);
    T2_CHECK(score(s, "mc:0.15.5.11", "the answer is (B)", ex) == 1 && !strcmp(ex, "B"));
    T2_CHECK(score(s, "mc:0.15.5.11", "the answer is (A)", ex) == 0 && !strcmp(ex, "A"));
    T2_CHECK(score(s, "mc:0.15.5.11", "the answer is (B) or (C)", ex) == 0);
    T2_CHECK(score(s, "mc:0.15.5.11", "B", ex) == 0);
    T2_CHECK(score(s, "mc:0.15.5.11", "the answer is (b)", ex) == 0);
    t2_task_set_destroy(&s);
    /* classify */
    T2_CHECK(t2_task_set_open(&s, "classify", &o) == 0);
    T2_CHECK(score(s, "classify:code:312", "\\boxed{code}", ex) == 1 && !strcmp(ex, "code"));
    T2_CHECK(score(s, "classify:code:312", "\\boxed{other}", ex) == 0 && !strcmp(ex, "other"));
    T2_CHECK(score(s, "classify:code:312", "\\boxed{code} maybe", ex) == 0);
    T2_CHECK(score(s, "classify:other:g.1", "\\boxed{other}", ex) == 1);
    T2_CHECK(score(s, "classify:math:0.0.9.3", "\\boxed{math}", ex) == 1);
    T2_CHECK(score(s, "classify:mc-hard:2.4.0.1", "\\boxed{reasoning}", ex) == 1);
    const t2_task_item *it;
    T2_CHECK(t2_task_set_find(s, "classify:code:312", &it) == 0 &&
             !strcmp(it->prompt, "Classify: run [3,1,2]") && it->label == T2_LABEL_CODE);
    T2_CHECK(t2_task_set_find(s, "classify:gsm8k:1", &it) == T2_ENOTFOUND);
    T2_CHECK(t2_task_set_find(s, "classify:code:321", &it) == T2_ENOTFOUND);
    t2_task_set_destroy(&s);
    /* classification helpers for the dispatcher */
    t2_task_label l;
    char buf[64];
    T2_CHECK(t2_task_classify_prompt("run [3,1,2]", buf, sizeof buf) == 21 &&
             !strcmp(buf, "Classify: run [3,1,2]"));
    T2_CHECK(t2_task_classify_parse("\\boxed{math}", &l) == 0 && l == T2_LABEL_MATH);
    T2_CHECK(t2_task_classify_parse("it is \\boxed{ reasoning } ok", &l) == 0 &&
             l == T2_LABEL_REASONING);
    T2_CHECK(t2_task_classify_parse("\\boxed{poetry}", &l) == T2_ENOTFOUND);
    T2_CHECK(t2_task_classify_parse("code", &l) == T2_ENOTFOUND);
    T2_CHECK(t2_task_classify_parse("\\boxed{code", &l) == T2_ENOTFOUND);
}

/* ================================================================ real-format files */

static char tmp_root[256];

static void write_file(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp_root, rel);
    FILE *f = fopen(p, "w");
    T2_CHECK_MSG(f != NULL, "%s", p);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static void make_tmp_data(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/t2-test-tasks-XXXXXX");
    T2_CHECK(mkdtemp(tmp_root) != NULL);
    char p[512];
    const char *dirs[] = {"gsm8k", "arc", "mbpp", "humaneval"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp_root, dirs[i]);
        mkdir(p, 0700);
    }
}

static void rm_tmp_data(void) {
    char cmd[600];
    if (!tmp_root[0] || strncmp(tmp_root, "/tmp/t2-test-tasks-", 19))
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    T2_CHECK(system(cmd) == 0);
}

static void test_gsm8k_scorer(void) {
    write_file("gsm8k/test.jsonl",
               "{\"question\": \"Q1?\", \"answer\": \"5 * 2 = <<5*2=10>>10\\n#### 1,234\"}\n"
               "\n"
               "{\"question\": \"Q2?\", \"answer\": \"#### -7\"}\n"
               "{\"question\": \"Q3?\", \"answer\": \"#### 12\"}\n");
    write_file("gsm8k/train.jsonl", "{\"question\": \"T?\", \"answer\": \"#### 3\"}\n");
    t2_task_opts o = {.split = T2_SPLIT_TEST, .data_dir = tmp_root};
    t2_task_set *s = NULL;
    T2_CHECK_MSG(t2_task_set_open(&s, "gsm8k", &o) == 0, "%s", t2_err_msg());
    if (!s)
        return;
    T2_CHECK(t2_task_set_count(s) == 3);
    const t2_task_item *it = t2_task_set_item(s, 0);
    T2_CHECK(!strcmp(it->id, "gsm8k:test:1") && !strcmp(it->target, "1234"));
    T2_CHECK(!strcmp(t2_task_set_item(s, 1)->id, "gsm8k:test:3"));
    char ex[128];
    T2_CHECK(score(s, "gsm8k:test:1", it->answer, ex) == 1 && !strcmp(ex, "1234"));
    T2_CHECK(score(s, "gsm8k:test:1", "#### 1234", ex) == 1);
    T2_CHECK(score(s, "gsm8k:test:1", "So she makes $1,234.00 in all.", ex) == 1);
    T2_CHECK(score(s, "gsm8k:test:1", "1234 then 12", ex) == 0 && !strcmp(ex, "12"));
    T2_CHECK(score(s, "gsm8k:test:1", "#### 1234 (after 12 days)", ex) == 1);
    T2_CHECK(score(s, "gsm8k:test:1", "#### 12345", ex) == 0);
    T2_CHECK(score(s, "gsm8k:test:1", "#### 123", ex) == 0);
    T2_CHECK(score(s, "gsm8k:test:1", "no number here", ex) == 0 && ex[0] == 0);
    T2_CHECK(score(s, "gsm8k:test:3", "#### -7", ex) == 1 && !strcmp(ex, "-7"));
    T2_CHECK(score(s, "gsm8k:test:3", "#### 7", ex) == 0);
    T2_CHECK(score(s, "gsm8k:test:3", "from 3-7 we get -7", ex) == 1);
    T2_CHECK(score(s, "gsm8k:test:4", "#### 12", ex) == 1);
    T2_CHECK(score(s, "gsm8k:test:4", "#### 121", ex) == 0 && !strcmp(ex, "121"));
    T2_CHECK(score(s, "gsm8k:test:4", "#### 12.0", ex) == 1);
    T2_CHECK(score(s, "gsm8k:test:4", "#### 12.5", ex) == 0);
    T2_CHECK(score(s, "gsm8k:test:4", "#### 1.2", ex) == 0);
    t2_task_set_destroy(&s);
    o.split = T2_SPLIT_ALL;
    T2_CHECK(t2_task_set_open(&s, "gsm8k", &o) == 0 && t2_task_set_count(s) == 4);
    t2_task_set_destroy(&s);
}

static void test_arc_scorer(void) {
    write_file("arc/ARC-Easy-Test.jsonl",
               "{\"id\": \"q1\", \"question\": {\"stem\": \"Which?\", \"choices\": [{\"text\": "
               "\"x\", \"label\": \"A\"}, {\"text\": \"y\", \"label\": \"B\"}, {\"text\": \"z\", "
               "\"label\": \"C\"}, {\"text\": \"w\", \"label\": \"D\"}]}, \"answerKey\": \"B\"}\n"
               "{\"id\": \"q2\", \"question\": {\"stem\": \"Num?\", \"choices\": [{\"text\": "
               "\"one\", \"label\": \"1\"}, {\"text\": \"two\", \"label\": \"2\"}, {\"text\": "
               "\"three\", \"label\": \"3\"}]}, \"answerKey\": \"3\"}\n");
    t2_task_opts o = {.split = T2_SPLIT_TEST, .data_dir = tmp_root};
    t2_task_set *s = NULL;
    T2_CHECK_MSG(t2_task_set_open(&s, "arc-easy", &o) == 0, "%s", t2_err_msg());
    if (!s)
        return;
    const t2_task_item *it = t2_task_set_item(s, 0);
    T2_CHECK(!strcmp(it->prompt, "Which?\nA) x\nB) y\nC) z\nD) w"));
    T2_CHECK(!strcmp(it->answer, "the answer is (B)") && !strcmp(it->choices, "ABCD"));
    char ex[128];
    T2_CHECK(score(s, "arc-easy:q1", "the answer is (B)", ex) == 1 && !strcmp(ex, "B"));
    T2_CHECK(score(s, "arc-easy:q1", "So the answer is B.", ex) == 1);
    T2_CHECK(score(s, "arc-easy:q1", "The Answer is: (b)", ex) == 1);
    T2_CHECK(score(s, "arc-easy:q1", "A or C? I pick B", ex) == 1);
    T2_CHECK(score(s, "arc-easy:q1", "the answer is (C)", ex) == 0 && !strcmp(ex, "C"));
    T2_CHECK(score(s, "arc-easy:q1", "the answer is (A), not B", ex) == 0);
    T2_CHECK(score(s, "arc-easy:q1", "the answer is (E)", ex) == 0);
    T2_CHECK(score(s, "arc-easy:q1", "Because (B) is wrong, the answer is (D)", ex) == 0);
    T2_CHECK(score(s, "arc-easy:q1", "Bees", ex) == 0 && ex[0] == 0);
    T2_CHECK(score(s, "arc-easy:q2", "the answer is (3)", ex) == 1);
    T2_CHECK(score(s, "arc-easy:q2", "the answer is (2)", ex) == 0);
    T2_CHECK(t2_task_set_find(s, "arc-easy:q9", &it) == T2_ENOTFOUND);
    t2_task_set_destroy(&s);
    /* ARC's train split is the rows after the first T2_ARC_EVAL_ROWS: none in this file */
    o.split = T2_SPLIT_TRAIN;
    T2_CHECK(t2_task_set_open(&s, "arc-easy", &o) == T2_ENOTFOUND);
    T2_CHECK(strstr(t2_err_msg(), "after the first 500") != NULL);
}

/* A malformed row fails the load with FILE:LINE and the problem. */
static void test_malformed_rows(void) {
    char path[512];
    struct {
        const char *file, *text, *want;
        const char *family;
    } cases[] = {
        {"gsm8k/test.jsonl",
         "{\"question\": \"a\", \"answer\": \"#### 1\"}\n{\"question\": \"b\", "
         "\"answer\": \"#### 2\"\n",
         "test.jsonl:2: line 1, column ", "gsm8k"},
        {"gsm8k/test.jsonl",
         "{\"question\": \"a\", \"answer\": \"#### 1\"}\n\n{\"question\": "
         "\"b\"}\n",
         "test.jsonl:3: missing field \"answer\"", "gsm8k"},
        {"gsm8k/test.jsonl", "{\"question\": \"a\", \"answer\": \"no number\"}\n",
         "test.jsonl:1: answer has no '#### N'", "gsm8k"},
        {"gsm8k/test.jsonl", "{\"question\": 5, \"answer\": \"#### 1\"}\n",
         "test.jsonl:1: field \"question\" is a number, not a string", "gsm8k"},
        {"arc/ARC-Challenge-Test.jsonl",
         "{\"id\": \"x\", \"question\": {\"stem\": \"s\", \"choices\": [{\"text\": \"a\", "
         "\"label\": \"A\"}, {\"text\": \"b\", \"label\": \"B\"}]}, \"answerKey\": \"C\"}\n",
         "ARC-Challenge-Test.jsonl:1: answerKey \"C\" is not one of the labels AB",
         "arc-challenge"},
        {"arc/ARC-Challenge-Test.jsonl", "[1, 2]\n", "ARC-Challenge-Test.jsonl:1: missing field",
         "arc-challenge"},
        {"mbpp/mbpp.jsonl",
         "{\"text\": \"t\", \"code\": \"c\", \"task_id\": 12, \"test_list\": \"assert 1\"}\n",
         "mbpp.jsonl:1: field \"test_list\" is missing, empty or not an array", "mbpp"},
        {"mbpp/mbpp.jsonl",
         "{\"text\": \"t\", \"code\": \"c\", \"task_id\": 1.5, \"test_list\": "
         "[\"assert 1\"]}\n",
         "mbpp.jsonl:1: field \"task_id\"", "mbpp"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(cases[i].file, cases[i].text);
        t2_task_opts o = {.split = T2_SPLIT_ALL, .data_dir = tmp_root};
        t2_task_set *s = NULL;
        int rc = t2_task_set_open(&s, cases[i].family, &o);
        T2_CHECK_MSG(rc == T2_EFORMAT && s == NULL, "case %zu: rc %d", i, rc);
        T2_CHECK_MSG(strstr(t2_err_msg(), cases[i].want) != NULL, "case %zu: '%s' lacks '%s'", i,
                     t2_err_msg(), cases[i].want);
        snprintf(path, sizeof path, "%s/%s", tmp_root, cases[i].file);
        T2_CHECK_MSG(strstr(t2_err_msg(), path) != NULL, "case %zu: no path in '%s'", i,
                     t2_err_msg());
    }
    /* a missing file names itself and how to point at the data */
    t2_task_opts o = {.split = T2_SPLIT_TEST, .data_dir = "/nonexistent/t2"};
    t2_task_set *s = NULL;
    T2_CHECK(t2_task_set_open(&s, "humaneval", &o) == T2_ENOTFOUND);
    T2_CHECK(strstr(t2_err_msg(), "/nonexistent/t2/humaneval/HumanEval.jsonl.gz") != NULL);
    /* a gzip file that is not gzip */
    write_file("humaneval/HumanEval.jsonl.gz", "not gzip\n");
    o.data_dir = tmp_root;
    T2_CHECK(t2_task_set_open(&s, "humaneval", &o) == T2_EIO);
    T2_CHECK_MSG(strstr(t2_err_msg(), "cannot decompress") != NULL, "%s", t2_err_msg());
}

/* ================================================================ JSON */

/* base/json.c wraps jansson: what it adds is checked here (T2's messages and positions, the
 * options it parses with, strings from any bytes, JSON Lines), not jansson's grammar. */
static json_t *parse_ok(const char *text, size_t len) {
    json_t *v = NULL;
    int rc = t2_json_parse(text, len, &v);
    T2_CHECK_MSG(rc == 0 && v, "'%s': %s", text, t2_err_msg());
    return v;
}

static void parse_bad(const char *text, size_t len, int code, const char *want) {
    json_t *v = (json_t *)1;
    int rc = t2_json_parse(text, len, &v);
    T2_CHECK_MSG(rc == code && v == NULL, "'%.*s': rc %d, want %d", (int)len, text, rc, code);
    if (want)
        T2_CHECK_MSG(strstr(t2_err_msg(), want) != NULL, "'%.*s': '%s' lacks '%s'", (int)len, text,
                     t2_err_msg(), want);
}

static void test_json_values(void) {
    const char *t = " {\"a\": [1, -2.5e2, true, false, null, \"x\"], \"b\": {}, \"c\": []} ";
    json_t *v = parse_ok(t, strlen(t));
    if (v) {
        const json_t *a = json_object_get(v, "a");
        T2_CHECK(json_array_size(a) == 6 && json_number_value(json_array_get(a, 0)) == 1 &&
                 json_number_value(json_array_get(a, 1)) == -250);
        T2_CHECK(!strcmp(t2_json_type_name(json_array_get(a, 2)), "boolean") &&
                 !strcmp(t2_json_type_name(json_array_get(a, 4)), "null") &&
                 !strcmp(t2_json_type_name(json_array_get(a, 5)), "string") &&
                 !strcmp(t2_json_type_name(a), "array") &&
                 !strcmp(t2_json_type_name(json_object_get(v, "b")), "object") &&
                 !strcmp(t2_json_type_name(NULL), "missing"));
    }
    json_decref(v);
    /* any value at the top; strings may hold U+0000 */
    const char esc[] = "\"a\\u00e9\\ud83d\\ude00\\u0000z\"";
    v = parse_ok(esc, sizeof esc - 1);
    const char want[] = "a\xC3\xA9\xF0\x9F\x98\x80\0z";
    T2_CHECK(v && json_string_length(v) == sizeof want - 1 &&
             !memcmp(json_string_value(v), want, sizeof want));
    json_decref(v);
    v = parse_ok("7", 1);
    T2_CHECK(json_integer_value(v) == 7);
    json_decref(v);
    /* duplicate keys are refused, not resolved silently */
    parse_bad("{\"a\": 1, \"a\": 2}", 16, T2_EFORMAT, "line 1, column ");
    /* the size limit, and jansson's depth limit as a range error */
    char *deep = malloc(6001);
    if (deep) {
        memset(deep, '[', 3000);
        memset(deep + 3000, ']', 3000);
        parse_bad(deep, 6000, T2_ERANGE, "line 1, column ");
        free(deep);
    }
    parse_bad("1", (size_t)T2_JSON_MAX_BYTES + 1, T2_ERANGE, "exceeds the");
}

static void test_json_malformed(void) {
    parse_bad("", 0, T2_EFORMAT, "line 1, column 1: ");
    parse_bad("[1,]", 4, T2_EFORMAT, "line 1, column 4: ");
    parse_bad("{\"a\" 1}", 7, T2_EFORMAT, "line 1, column ");
    parse_bad("[1", 2, T2_EFORMAT, NULL);
    parse_bad("01", 2, T2_EFORMAT, NULL);
    parse_bad("NaN", 3, T2_EFORMAT, NULL);
    parse_bad("1 2", 3, T2_EFORMAT, "line 1, column 3: ");
    parse_bad("\"\\ud800\"", 8, T2_EFORMAT, NULL);                  /* lone surrogate */
    parse_bad("\"a\nb\"", 5, T2_EFORMAT, "line 1, column ");         /* raw control character */
    parse_bad("\"\xC3\x28\"", 4, T2_EFORMAT, NULL);                  /* invalid UTF-8 */
    parse_bad("\"\xED\xA0\x80\"", 5, T2_EFORMAT, NULL);              /* encoded surrogate */
    parse_bad("\x00", 1, T2_EFORMAT, NULL);
    /* positions count lines and characters (not bytes) */
    parse_bad("{\n  \"a\": 1,\n  \"b\": tru\n}", 24, T2_EFORMAT, "line 3, column ");
    parse_bad("[\"\xC3\xA9\xC3\xA9\", x]", 11, T2_EFORMAT, "line 1, column 8: ");
}

static void test_json_writer_roundtrip(void) {
    const char s[] = "q\"uo\\te\n\r\t\x01\x7F caf\xC3\xA9 \xF0\x9F\x98\x80 bad\xFF "
                     "\xED\xA0\x80 end";
    json_t *w = t2_json_text(s, sizeof s - 1);
    char *buf = w ? json_dumps(w, JSON_ENCODE_ANY) : NULL;
    json_decref(w);
    T2_CHECK(buf != NULL);
    json_t *v = buf ? parse_ok(buf, strlen(buf)) : NULL;
    const char want[] = "q\"uo\\te\n\r\t\x01\x7F caf\xC3\xA9 \xF0\x9F\x98\x80 bad\xEF\xBF\xBD "
                        "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD end";
    T2_CHECK_MSG(v && json_string_length(v) == sizeof want - 1 &&
                 !memcmp(json_string_value(v), want, sizeof want), "%s", buf);
    json_decref(v);
    free(buf);
    v = t2_json_text("ok", 2); /* valid UTF-8 is kept as it is */
    T2_CHECK(v && !strcmp(json_string_value(v), "ok"));
    json_decref(v);
}

typedef struct rows_ctx {
    size_t rows, last_line;
} rows_ctx;
static int count_rows(void *c, const json_t *row, size_t line) {
    rows_ctx *r = c;
    (void)row;
    r->rows++;
    r->last_line = line;
    return 0;
}
static int fail_on_2(void *c, const json_t *row, size_t line) {
    (void)c;
    (void)row;
    return line == 2 ? t2_err_set(T2_EFORMAT, "row rejected") : 0;
}

static void test_jsonl(void) {
    const char text[] = "\xEF\xBB\xBF{\"a\":1}\r\n\n  \n[2]\n\"x\"";
    rows_ctx c = {0};
    T2_CHECK(t2_jsonl_parse("mem", text, sizeof text - 1, count_rows, &c) == 0);
    T2_CHECK(c.rows == 3 && c.last_line == 5);
    T2_CHECK(t2_jsonl_parse("mem", "{}\n{}\n", 6, fail_on_2, NULL) == T2_EFORMAT);
    T2_CHECK(!strcmp(t2_err_msg(), "mem:2: row rejected"));
    /* a broken row in a file: FILE:LINE */
    write_file("broken.jsonl", "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3,, }\n{\"id\": 4}\n");
    char path[512];
    snprintf(path, sizeof path, "%s/broken.jsonl", tmp_root);
    memset(&c, 0, sizeof c);
    T2_CHECK(t2_jsonl_read(path, count_rows, &c) == T2_EFORMAT && c.rows == 2);
    char want[600];
    snprintf(want, sizeof want, "%s:3: line 1, column 10: string or '}' expected near ','", path);
    T2_CHECK_MSG(!strncmp(t2_err_msg(), want, strlen(want)), "'%s' vs '%s'", t2_err_msg(), want);
    T2_CHECK(t2_jsonl_read("/nonexistent.jsonl", count_rows, &c) == T2_EIO);
    T2_CHECK(strstr(t2_err_msg(), "/nonexistent.jsonl: cannot open") != NULL);
}

/* ================================================================ sandbox */

/* The sandbox groups run only with the interpreter: without it, exit 77 (SKIP) saying so. */
static void require_python(void) {
    if (access(T2_SANDBOX_PYTHON, X_OK) != 0) {
        printf("SKIP: %s not found (the sandbox runs Python programs)\n", T2_SANDBOX_PYTHON);
        exit(77);
    }
}

static int run_py(const char *prog, double timeout, t2_sandbox_result *r) {
    t2_sandbox_opts o = {.timeout_s = timeout};
    int rc = t2_sandbox_run_python(prog, strlen(prog), &o, r);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    return rc;
}

static void test_sandbox_basics(void) {
    t2_sandbox_result r;
    if (run_py("print('hello from the sandbox')\n", 10, &r) == 0) {
        T2_CHECK(r.status == T2_SANDBOX_PASSED && strstr(r.output, "hello from the sandbox"));
        printf("     sandbox network isolation: %s\n", t2_sandbox_isolation_name(r.isolation));
    }
    if (run_py("import sys\nsys.exit(3)\n", 10, &r) == 0)
        T2_CHECK(r.status == T2_SANDBOX_FAILED && r.exit_code == 3);
    if (run_py("assert 1 + 1 == 3\n", 10, &r) == 0)
        T2_CHECK(r.status == T2_SANDBOX_FAILED && strstr(r.output, "AssertionError"));
    if (run_py("def f(:\n", 10, &r) == 0)
        T2_CHECK(r.status == T2_SANDBOX_FAILED && strstr(r.output, "SyntaxError"));
    /* stdin is closed (reads give EOF at once) */
    if (run_py("import sys\nassert sys.stdin.read() == ''\n", 10, &r) == 0)
        T2_CHECK(r.status == T2_SANDBOX_PASSED);
    /* runs in a temporary directory that is removed afterwards */
    if (run_py("import os\nprint('CWD=' + os.getcwd())\nopen('f.txt', 'w').write('x')\n", 10, &r) ==
        0) {
        T2_CHECK(r.status == T2_SANDBOX_PASSED);
        char *c = strstr(r.output, "CWD=");
        if (c) {
            c += 4;
            c[strcspn(c, "\n")] = 0;
            T2_CHECK(strstr(c, "t2-sandbox-") != NULL);
            T2_CHECK_MSG(access(c, F_OK) != 0, "%s still exists", c);
        }
    }
    /* a large output keeps its tail */
    if (run_py("print('x' * 100000)\nprint('THE END')\n", 10, &r) == 0)
        T2_CHECK(r.status == T2_SANDBOX_PASSED && strstr(r.output, "THE END") &&
                 strlen(r.output) < sizeof r.output);
    /* files are capped (RLIMIT_FSIZE 16 MiB) */
    if (run_py("open('big', 'wb').write(b'x' * (32 << 20))\n", 10, &r) == 0)
        T2_CHECK(r.status != T2_SANDBOX_PASSED);
    /* a missing interpreter is an error of the sandbox, not a failed program */
    t2_sandbox_opts o = {.python = "/nonexistent/python3"};
    T2_CHECK(t2_sandbox_run_python("pass\n", 5, &o, &r) == T2_ENOTFOUND);
}

static void test_sandbox_limits(void) {
    t2_sandbox_result r;
    /* an endless loop is killed at the wall-clock limit */
    if (run_py("while True:\n    pass\n", 1.0, &r) == 0) {
        T2_CHECK(r.status == T2_SANDBOX_TIMEOUT);
        T2_CHECK_MSG(r.seconds >= 0.9 && r.seconds < 2.5, "took %.2f s", r.seconds);
    }
    /* so is one that sleeps (no CPU use) and one that forks a sleeping child */
    if (run_py("import time\ntime.sleep(60)\n", 0.5, &r) == 0)
        T2_CHECK(r.status == T2_SANDBOX_TIMEOUT && r.seconds < 2);
    if (run_py("import os, time\nif os.fork() == 0:\n    time.sleep(60)\nelse:\n    print('parent "
               "done')\n",
               5, &r) == 0)
        T2_CHECK_MSG(r.status == T2_SANDBOX_PASSED && r.seconds < 3, "%s %.2f s",
                     t2_sandbox_status_name(r.status), r.seconds);
    /* 4 GB does not fit in the 1 GiB address-space limit */
    if (run_py("x = bytearray(4 * 1024 ** 3)\nprint('allocated')\n", 10, &r) == 0) {
        T2_CHECK(r.status == T2_SANDBOX_FAILED && strstr(r.output, "MemoryError"));
        T2_CHECK(!strstr(r.output, "allocated"));
    }
}

/* The sandboxed program cannot reach a TCP server the test itself runs on 127.0.0.1. */
static int check_no_network(const char *what) {
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof a) < 0 || listen(srv, 4) < 0 ||
        getsockname(srv, (struct sockaddr *)&a, &al) < 0) {
        if (srv >= 0)
            close(srv);
        return -1;
    }
    char prog[512];
    snprintf(prog, sizeof prog,
             "import socket\n"
             "try:\n"
             "    s = socket.create_connection(('127.0.0.1', %d), timeout=2)\n"
             "    print('CONNECTED')\n"
             "except OSError as e:\n"
             "    print('blocked:', e)\n",
             ntohs(a.sin_port));
    t2_sandbox_result r;
    if (run_py(prog, 10, &r) == 0) {
        T2_CHECK_MSG(r.status == T2_SANDBOX_PASSED && strstr(r.output, "blocked"), "%s: %s", what,
                     r.output);
        T2_CHECK(!strstr(r.output, "CONNECTED"));
        T2_CHECK(r.isolation != T2_SANDBOX_NET_NONE);
        printf("     %s: isolation %s, %s", what, t2_sandbox_isolation_name(r.isolation), r.output);
    }
    close(srv);
    return 0;
}

static void test_sandbox_network(void) {
    if (check_no_network("default") < 0)
        T2_SKIP("cannot listen on 127.0.0.1: %s", strerror(errno));
    setenv("T2_SANDBOX_NO_NETNS", "1", 1); /* the fallback when namespaces are not allowed */
    check_no_network("without namespaces");
    unsetenv("T2_SANDBOX_NO_NETNS");
}

/* Code scoring through a data set in the temp folder: reference passes, wrong code fails. */
static void test_code_scorer_tmp(void) {
    write_file("mbpp/mbpp.jsonl",
               "{\"text\": \"Add.\", \"code\": \"def add(a, b):\\r\\n    return a + b\", "
               "\"task_id\": 11, \"test_setup_code\": \"\", \"test_list\": [\"assert add(1, 2) "
               "== 3\", \"assert add(2, 2) == 4\"], \"challenge_test_list\": []}\n");
    t2_task_opts o = {.split = T2_SPLIT_TEST, .data_dir = tmp_root, .timeout_s = 5};
    t2_task_set *s = NULL;
    T2_CHECK_MSG(t2_task_set_open(&s, "mbpp", &o) == 0, "%s", t2_err_msg());
    if (!s)
        return;
    const t2_task_item *it = t2_task_set_item(s, 0);
    T2_CHECK(!strcmp(it->prompt, "Add.\nYour code should pass these tests:\nassert add(1, 2) == "
                                 "3\nassert add(2, 2) == 4"));
    char ex[128];
    T2_CHECK(score(s, "mbpp:11", it->answer, ex) == 1 && !strcmp(ex, "passed"));
    T2_CHECK(score(s, "mbpp:11", "def add(a, b):\n    return a - b\n", ex) == 0 &&
             !strcmp(ex, "failed"));
    T2_CHECK(score(s, "mbpp:11", "Here:\n```python\ndef add(a, b):\n    return b + a\n```\nDone.",
                   ex) == 1);
    T2_CHECK(
        score(s, "mbpp:11", "[BEGIN]\ndef add(a, b):\n    return a + b\n[DONE] trailing", ex) == 1);
    T2_CHECK(score(s, "mbpp:11", "def add(a, b):\n    while True: pass\n", ex) == 0 &&
             !strcmp(ex, "timeout"));
    T2_CHECK(score(s, "mbpp:11", "", ex) == 0);
    t2_task_set_destroy(&s);
    o.split = T2_SPLIT_TRAIN; /* task 11 is in the test split */
    T2_CHECK(t2_task_set_open(&s, "mbpp", &o) == 0 && t2_task_set_count(s) == 0);
    t2_task_set_destroy(&s);
}

/* ================================================================ CLI */

static int run_cmd(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char b[4096];
    size_t k;
    while ((k = fread(b, 1, sizeof b, p)) > 0)
        fwrite(b, 1, k, m);
    fclose(m);
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char t2_bin[600]; /* the `t2` program (main checks that it is there) */

static void test_cli(void) {
    const char *t2 = t2_bin;
    char cmd[1600], *out = NULL;
    /* dump = the API's dump */
    snprintf(cmd, sizeof cmd, "%s tasks dump --family all --n 50 --seed 3 --mix pretrain", t2);
    T2_CHECK(run_cmd(cmd, &out) == 0);
    t2_task_dump_opts d = {
        .family = "all", .split = T2_SPLIT_TRAIN, .n = 50, .seed = 3, .pretrain = 1};
    int rc;
    char *api = dump_to_mem(&d, &rc);
    T2_CHECK(out && api && !strcmp(out, api));
    free(out);
    free(api);
    /* list */
    snprintf(cmd, sizeof cmd, "%s tasks list", t2);
    T2_CHECK(run_cmd(cmd, &out) == 0 && strstr(out, "code-hard") && strstr(out, "humaneval"));
    free(out);
    /* errors: exit 2 with the problem on stderr */
    struct {
        const char *args, *want;
    } bad[] = {{"tasks show --family nope", "unknown family 'nope'"},
               {"tasks dump --family code", "give --n"},
               {"tasks dump --family code --n 5 --mix sft", "--mix: 'sft'"},
               {"tasks show --family code --split dev", "unknown split 'dev'"},
               {"tasks show --family code --n x", "'x' is not an integer"},
               {"tasks frobnicate", "unknown sub-command 'frobnicate'"},
               {"tasks score --family code", "give --file"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s %s 2>&1 >/dev/null", t2, bad[i].args);
        rc = run_cmd(cmd, &out);
        T2_CHECK_MSG(rc == 2 && out && strstr(out, bad[i].want), "'%s': exit %d, '%s'", bad[i].args,
                     rc, out ? out : "");
        free(out);
    }
    /* score: a generations file with 3 of 4 correct, then one with a bad row */
    char gen[600];
    snprintf(gen, sizeof gen, "%s/gen.jsonl", tmp_root);
    write_file("gen.jsonl", "{\"id\": \"code:312\", \"generation\": \"[1,2,3]\\n\"}\n"
                            "{\"id\": \"code:3152\", \"generation\": \"[2,5,1,3]\"}\n"
                            "{\"id\": \"code:40\\u0031\", \"generation\": \"[0,1,4]\"}\n"
                            "{\"id\": \"code:935\", \"generation\": \"[3,5,9]\"}\n");
    snprintf(cmd, sizeof cmd, "%s tasks score --family code --file %s --csv %s/s.csv", t2, gen,
             tmp_root);
    T2_CHECK(run_cmd(cmd, &out) == 0 && strstr(out, "75.00%"));
    free(out);
    write_file("gen.jsonl", "{\"id\": \"code:312\", \"generation\": \"[1,2,3]\"}\n"
                            "{\"id\": \"code:312\"}\n");
    snprintf(cmd, sizeof cmd, "%s tasks score --family code --file %s 2>&1", t2, gen);
    T2_CHECK(run_cmd(cmd, &out) == 1 && strstr(out, "gen.jsonl:2: ") &&
             strstr(out, "\"generation\""));
    free(out);
    write_file("gen.jsonl", "{\"id\": \"code:321\", \"generation\": \"[1,2,3]\"}\n");
    T2_CHECK(run_cmd(cmd, &out) == 1 && strstr(out, "gen.jsonl:1: 'code:321' is not a valid"));
    free(out);
}

/* ================================================================ real data */

static size_t count_split(const char *fam, t2_task_split sp) {
    t2_task_opts o = {.split = sp};
    t2_task_set *s = NULL;
    int rc = t2_task_set_open(&s, fam, &o);
    T2_CHECK_MSG(rc == 0, "%s %s: %s", fam, t2_task_split_name(sp), t2_err_msg());
    size_t n = s ? t2_task_set_count(s) : 0;
    t2_task_set_destroy(&s);
    return n;
}

static void test_real_rows(void) {
    /* every row of every file loads */
    T2_CHECK_EQ_INT(count_split("gsm8k", T2_SPLIT_TEST), 1319);
    size_t tr = count_split("gsm8k", T2_SPLIT_TRAIN),
           va = count_split("gsm8k", T2_SPLIT_VALIDATION);
    T2_CHECK_EQ_INT(tr + va, 7473);
    T2_CHECK(va > 600 && va < 900);
    T2_CHECK_EQ_INT(count_split("gsm8k", T2_SPLIT_ALL), 7473 + 1319);
    T2_CHECK_EQ_INT(count_split("arc-easy", T2_SPLIT_TEST), 2376);
    T2_CHECK_EQ_INT(count_split("arc-challenge", T2_SPLIT_TEST), 1172);
    T2_CHECK_EQ_INT(count_split("mbpp", T2_SPLIT_ALL), 974);
    T2_CHECK_EQ_INT(count_split("mbpp", T2_SPLIT_TEST), 500);
    T2_CHECK_EQ_INT(count_split("mbpp", T2_SPLIT_VALIDATION), 90);
    T2_CHECK_EQ_INT(count_split("mbpp", T2_SPLIT_TRAIN), 374);
    T2_CHECK_EQ_INT(count_split("humaneval", T2_SPLIT_TEST), 164);
}

static void test_real_text_scorers(void) {
    /* all rows: the reference scores correct, a near-miss scores wrong */
    const char *fams[] = {"gsm8k", "arc-easy", "arc-challenge"};
    for (int f = 0; f < 3; f++) {
        t2_task_check ck;
        t2_task_opts o = {0};
        int rc = t2_task_check_real(fams[f], &o, 0, 1, &ck);
        T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
        T2_CHECK_MSG(ck.ref_correct == ck.rows && ck.wrong_rejected == ck.rows,
                     "%s: %zu/%zu %zu/%zu %s", fams[f], ck.ref_correct, ck.rows, ck.wrong_rejected,
                     ck.rows, ck.first_failure);
        printf("     %-14s %5zu rows: references %zu correct, wrong answers %zu rejected\n",
               fams[f], ck.rows, ck.ref_correct, ck.wrong_rejected);
    }
    /* the answer text alone (with its "#### N") for GSM8K, the key for ARC */
    t2_task_opts o = {.split = T2_SPLIT_TEST, .n = 3};
    t2_task_set *s = NULL;
    T2_CHECK(t2_task_set_open(&s, "gsm8k", &o) == 0 && t2_task_set_count(s) == 3);
    const t2_task_item *it = s ? t2_task_set_item(s, 0) : NULL;
    if (it) {
        T2_CHECK(!strcmp(it->id, "gsm8k:test:1") && !strcmp(it->target, "18"));
        t2_task_score sc;
        T2_CHECK(t2_task_score_item(s, it, "She makes 9 * 2 = $18.", &sc) == 0 && sc.correct);
        T2_CHECK(t2_task_score_item(s, it, "#### 181", &sc) == 0 && !sc.correct);
    }
    t2_task_set_destroy(&s);
}

static void test_real_code_scorers(void) {
    /* the first 50 MBPP test rows and 30 HumanEval rows: reference passes, wrong code fails */
    struct {
        const char *fam;
        size_t n;
    } c[] = {{"mbpp", 50}, {"humaneval", 30}};
    for (int k = 0; k < 2; k++) {
        t2_task_check ck;
        t2_task_opts o = {.timeout_s = 20};
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int rc = t2_task_check_real(c[k].fam, &o, c[k].n, ncpu > 1 ? (int)ncpu : 1, &ck);
        T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
        T2_CHECK_MSG(ck.rows == c[k].n && ck.ref_correct == ck.rows && ck.wrong_rejected == ck.rows,
                     "%s: %zu/%zu %zu/%zu %s", c[k].fam, ck.ref_correct, ck.rows, ck.wrong_rejected,
                     ck.rows, ck.first_failure);
        printf("     %-14s %5zu rows: references %zu pass, wrong code %zu fail (%.1f s)\n",
               c[k].fam, ck.rows, ck.ref_correct, ck.wrong_rejected, ck.seconds);
    }
    /* HumanEval: a completion that is a whole function (as chat models write) also works */
    t2_task_opts o = {.split = T2_SPLIT_TEST, .n = 1};
    t2_task_set *s = NULL;
    T2_CHECK(t2_task_set_open(&s, "humaneval", &o) == 0);
    const t2_task_item *it = s ? t2_task_set_item(s, 0) : NULL;
    if (it) {
        char gen[2048];
        snprintf(gen, sizeof gen, "```python\ndef has_close_elements(numbers, threshold):\n%s```\n",
                 it->answer);
        t2_task_score sc;
        T2_CHECK_MSG(t2_task_score_item(s, it, gen, &sc) == 0 && sc.correct, "%s", sc.detail);
        T2_CHECK(t2_task_score_item(s, it, "    return True\n", &sc) == 0 && !sc.correct);
    }
    t2_task_set_destroy(&s);
}

/* Groups, one ctest entry each, so that a group whose precondition is missing is reported as
 * skipped (exit 77) instead of passing with nothing checked:
 *   (none)     generators, scorers, JSON: no outside program needed
 *   sandbox    the Python sandbox and code scoring (needs T2_SANDBOX_PYTHON)
 *   cli        `t2 tasks` (needs $T2_BIN/t2)
 *   real       the real data sets (needs the assets)
 *   real-code  MBPP / HumanEval references through the sandbox (assets and Python) */
int main(int argc, char **argv) {
    const char *group = argc > 1 ? argv[1] : "";
    if (!strcmp(group, "real") || !strcmp(group, "real-code")) {
        t2_test_asset("data/gsm8k/test.jsonl"); /* exit 77 without the assets */
        if (!strcmp(group, "real")) {
            T2_RUN(test_real_rows);
            T2_RUN(test_real_text_scorers);
        } else {
            require_python();
            T2_RUN(test_real_code_scorers);
        }
        return T2_TEST_END();
    }
    if (!strcmp(group, "sandbox")) {
        require_python();
        make_tmp_data();
        T2_RUN(test_sandbox_basics);
        T2_RUN(test_sandbox_limits);
        T2_RUN(test_sandbox_network);
        T2_RUN(test_code_scorer_tmp);
        rm_tmp_data();
        return T2_TEST_END();
    }
    if (!strcmp(group, "cli")) {
        const char *bin = getenv("T2_BIN");
        snprintf(t2_bin, sizeof t2_bin, "%s/t2", bin ? bin : "bin");
        if (access(t2_bin, X_OK) != 0) {
            printf("SKIP: %s not found (set T2_BIN to the folder of the t2 program)\n", t2_bin);
            return 77;
        }
        make_tmp_data();
        T2_RUN(test_cli);
        rm_tmp_data();
        return T2_TEST_END();
    }
    if (group[0]) {
        fprintf(stderr, "test_tasks: unknown group '%s' (sandbox, cli, real, real-code)\n", group);
        return 2;
    }
    make_tmp_data();
    T2_RUN(test_families_registry);
    T2_RUN(test_deterministic);
    T2_RUN(test_splits_disjoint);
    T2_RUN(test_pretrain_mix_train_only);
    T2_RUN(test_pretrain_mix_readings);
    T2_RUN(test_ids_roundtrip);
    T2_RUN(test_lengths);
    T2_RUN(test_controls);
    T2_RUN(test_synthetic_scorers);
    T2_RUN(test_gsm8k_scorer);
    T2_RUN(test_arc_scorer);
    T2_RUN(test_malformed_rows);
    T2_RUN(test_json_values);
    T2_RUN(test_json_malformed);
    T2_RUN(test_json_writer_roundtrip);
    T2_RUN(test_jsonl);
    rm_tmp_data();
    return T2_TEST_END();
}
