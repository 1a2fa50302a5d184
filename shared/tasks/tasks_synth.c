/* tasks_synth.c - the synthetic task families: key sampling and rendering (docs/TASKS.md).
 *
 * A *key* is the canonical content of one question ("312" is the list [3,1,2]). Rendering a
 * key gives the family prompt (no cue), the answer of the reading the family asks for, the
 * other reading's answer, and the cued prompts that teach each reading. Renderers accept only
 * canonical keys (they re-print the key and compare), so one question has exactly one id.
 */
#include "tasks/tasks_internal.h"

#include "base/t2_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- tables */

static const char *const NAMES[] = {"Ann", "Bo",  "Cy",  "Dee", "Eli",
                                    "Fay", "Gus", "Ivy", "Jo",  "Kim"};
#define N_NAMES 10
static const char *const OBJECTS[] = {"pens", "cups",  "eggs",  "hats",  "keys",
                                      "toys", "cards", "books", "coins", "bags"};
#define N_OBJECTS 10
/* Animals from smallest to largest (by typical adult mass). */
static const char *const ANIMALS[] = {"ant",     "bee",   "mouse",    "frog", "rabbit", "cat",
                                      "fox",     "dog",   "goat",     "deer", "lion",   "horse",
                                      "giraffe", "rhino", "elephant", "whale"};
#define N_ANIMALS 16
static const char *const COLOR_OF[][2] = {
    {"grass", "green"}, {"the sky", "blue"},   {"snow", "white"},      {"coal", "black"},
    {"blood", "red"},   {"a lemon", "yellow"}, {"a carrot", "orange"}, {"a plum", "purple"}};
#define N_COLORS 8

/* ---------------------------------------------------------------- helpers */

static void fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t cap, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
}

/* Parse exactly `n` '.'-separated non-negative decimal integers (each < 1000); -1 otherwise. */
static int parse_ints(const char *key, int *v, int n) {
    const char *p = key;
    for (int i = 0; i < n; i++) {
        if (*p < '0' || *p > '9')
            return -1;
        int x = 0, digits = 0;
        while (*p >= '0' && *p <= '9') {
            x = x * 10 + (*p - '0');
            if (++digits > 3)
                return -1;
            p++;
        }
        v[i] = x;
        if (i + 1 < n) {
            if (*p != '.')
                return -1;
            p++;
        }
    }
    return *p ? -1 : 0;
}

static void ans_num(char *buf, int x) { fmt(buf, SYN_ANS, "#### %d", x); }

static void set_mc(char *ans, char *target, int letter) {
    fmt(ans, SYN_ANS, "the answer is (%c)", 'A' + letter);
    fmt(target, SYN_ANS, "%c", 'A' + letter);
}

/* "[3,1,2]" from digits d[0..n) */
static void fmt_list(char *buf, size_t cap, const int *d, int n) {
    size_t o = 0;
    buf[o++] = '[';
    for (int i = 0; i < n && o + 3 < cap; i++) {
        if (i)
            buf[o++] = ',';
        buf[o++] = (char)('0' + d[i]);
    }
    buf[o++] = ']';
    buf[o] = 0;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void sorted(int *out, const int *d, int n) {
    memcpy(out, d, (size_t)n * sizeof *d);
    qsort(out, (size_t)n, sizeof *out, cmp_int);
}
static void reversed(int *out, const int *d, int n) {
    for (int i = 0; i < n; i++)
        out[i] = d[n - 1 - i];
}
/* keep first occurrences; returns the new length */
static int dedupe(int *out, const int *d, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < k; j++)
            seen |= out[j] == d[i];
        if (!seen)
            out[k++] = d[i];
    }
    return k;
}
static int same(const int *a, const int *b, int n) { return !memcmp(a, b, (size_t)n * sizeof *a); }

/* digits of a key like "3132" (len in [lo, hi]); -1 if not. */
static int parse_digits(const char *key, int *d, int lo, int hi) {
    int n = (int)strlen(key);
    if (n < lo || n > hi)
        return -1;
    for (int i = 0; i < n; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        d[i] = key[i] - '0';
    }
    return n;
}

/* ---------------------------------------------------------------- math */
/* key "N.O.A.B": NAME had A OBJECTS and traded B. Readings: got (A+B, the target), lost (A-B). */

static void math_sample(t2_rand *r, char *key, size_t cap) {
    int a = 3 + (int)t2_rand_below_scaled(r, 17);
    int bmax = a - 1 < 9 ? a - 1 : 9;
    int b = 1 + (int)t2_rand_below_scaled(r, (uint32_t)bmax);
    fmt(key, cap, "%u.%u.%d.%d", t2_rand_below_scaled(r, N_NAMES),
        t2_rand_below_scaled(r, N_OBJECTS), a, b);
}

static int math_render(const char *key, syn_item *it) {
    int v[4];
    if (parse_ints(key, v, 4) < 0)
        return -1;
    int nm = v[0], ob = v[1], a = v[2], b = v[3];
    if (nm >= N_NAMES || ob >= N_OBJECTS || a < 3 || a > 19 || b < 1 || b > 9 || b >= a)
        return -1;
    char canon[32];
    fmt(canon, sizeof canon, "%d.%d.%d.%d", nm, ob, a, b);
    if (strcmp(canon, key))
        return -1;
    const char *n = NAMES[nm], *o = OBJECTS[ob];
    it->label = T2_LABEL_MATH;
    fmt(it->prompt, SYN_TEXT, "%s had %d %s and traded %d. How many now?", n, a, o, b);
    ans_num(it->answer, a + b);
    fmt(it->target, SYN_ANS, "%d", a + b);
    ans_num(it->decoy, a - b);
    it->n_cued = 2;
    fmt(it->cued[0].prompt, SYN_TEXT, "%s had %d %s and got %d. How many now?", n, a, o, b);
    ans_num(it->cued[0].answer, a + b);
    fmt(it->cued[1].prompt, SYN_TEXT, "%s had %d %s and lost %d. How many now?", n, a, o, b);
    ans_num(it->cued[1].answer, a - b);
    return 0;
}

/* ---------------------------------------------------------------- math-hard */
/* key "N.O.A.B.C": two trades, larger numbers. Target: both gains (A+B+C); decoy: both losses. */

static void mathh_sample(t2_rand *r, char *key, size_t cap) {
    int a, b, c;
    do {
        a = 10 + (int)t2_rand_below_scaled(r, 30);
        b = 2 + (int)t2_rand_below_scaled(r, 8);
        c = 2 + (int)t2_rand_below_scaled(r, 8);
    } while (a - b - c < 1);
    fmt(key, cap, "%u.%u.%d.%d.%d", t2_rand_below_scaled(r, N_NAMES),
        t2_rand_below_scaled(r, N_OBJECTS), a, b, c);
}

static int mathh_render(const char *key, syn_item *it) {
    int v[5];
    if (parse_ints(key, v, 5) < 0)
        return -1;
    int nm = v[0], ob = v[1], a = v[2], b = v[3], c = v[4];
    if (nm >= N_NAMES || ob >= N_OBJECTS || a < 10 || a > 39 || b < 2 || b > 9 || c < 2 || c > 9 ||
        a - b - c < 1)
        return -1;
    char canon[40];
    fmt(canon, sizeof canon, "%d.%d.%d.%d.%d", nm, ob, a, b, c);
    if (strcmp(canon, key))
        return -1;
    const char *n = NAMES[nm], *o = OBJECTS[ob];
    it->label = T2_LABEL_MATH;
    fmt(it->prompt, SYN_TEXT, "%s had %d %s, traded %d, then traded %d. How many now?", n, a, o, b,
        c);
    ans_num(it->answer, a + b + c);
    fmt(it->target, SYN_ANS, "%d", a + b + c);
    ans_num(it->decoy, a - b - c);
    it->n_cued = 2;
    static const char *const verb[2] = {"got", "lost"};
    for (int k = 0; k < 2; k++) {
        fmt(it->cued[k].prompt, SYN_TEXT, "%s had %d %s, %s %d, then %s %d. How many now?", n, a, o,
            verb[k], b, verb[k], c);
        ans_num(it->cued[k].answer, k ? a - b - c : a + b + c);
    }
    /* mixed cues teach the single steps */
    it->n_extra = 2;
    for (int k = 0; k < 2; k++) {
        fmt(it->extra[k].prompt, SYN_TEXT, "%s had %d %s, %s %d, then %s %d. How many now?", n, a,
            o, verb[k], b, verb[1 - k], c);
        ans_num(it->extra[k].answer, k ? a - b + c : a + b - c);
    }
    return 0;
}

/* ---------------------------------------------------------------- code */
/* key: the digits of a list of 3-5 single digits. Readings: sort (target), reverse. */

static void code_sample(t2_rand *r, char *key, size_t cap) {
    int n = 3 + (int)t2_rand_below_scaled(r, 3);
    for (int i = 0; i < n && (size_t)i + 1 < cap; i++)
        key[i] = (char)('0' + t2_rand_below_scaled(r, 10));
    key[n] = 0;
}

static int code_render(const char *key, syn_item *it) {
    int d[8] = {0}, s[8] = {0}, rv[8] = {0}, u[8] = {0};
    int n = parse_digits(key, d, 3, 5);
    if (n < 0)
        return -1;
    sorted(s, d, n);
    reversed(rv, d, n);
    if (same(s, rv, n))
        return -1; /* both readings agree: not an item */
    char l[32];
    fmt_list(l, sizeof l, d, n);
    it->label = T2_LABEL_CODE;
    fmt(it->prompt, SYN_TEXT, "run %s", l);
    fmt_list(it->answer, SYN_ANS, s, n);
    fmt(it->target, SYN_ANS, "%s", it->answer);
    fmt_list(it->decoy, SYN_ANS, rv, n);
    it->n_cued = 2;
    fmt(it->cued[0].prompt, SYN_TEXT, "sort %s", l);
    fmt(it->cued[0].answer, SYN_ANS, "%s", it->answer);
    fmt(it->cued[1].prompt, SYN_TEXT, "reverse %s", l);
    fmt(it->cued[1].answer, SYN_ANS, "%s", it->decoy);
    it->n_extra = 3;
    fmt(it->extra[0].prompt, SYN_TEXT, "max %s", l);
    fmt(it->extra[0].answer, SYN_ANS, "%d", s[n - 1]);
    fmt(it->extra[1].prompt, SYN_TEXT, "min %s", l);
    fmt(it->extra[1].answer, SYN_ANS, "%d", s[0]);
    fmt(it->extra[2].prompt, SYN_TEXT, "dedupe %s", l);
    fmt_list(it->extra[2].answer, SYN_ANS, u, dedupe(u, d, n));
    return 0;
}

/* ---------------------------------------------------------------- code-hard */
/* key "s.LETTERS": a string of 3-5 letters a-h, "run cabd" (new data: strings);
 * key "d.DIGITS": "run dedupe [..]" on a list of 4-5 digits with a repeat (composed op).
 * Target: the sort reading; decoy: the reverse reading. */

static void codeh_sample(t2_rand *r, char *key, size_t cap) {
    if (t2_rand_below_scaled(r, 2)) {
        int n = 3 + (int)t2_rand_below_scaled(r, 3);
        key[0] = 's';
        key[1] = '.';
        for (int i = 0; i < n && (size_t)i + 3 < cap; i++)
            key[2 + i] = (char)('a' + t2_rand_below_scaled(r, 8));
        key[2 + n] = 0;
    } else {
        int n = 4 + (int)t2_rand_below_scaled(r, 2);
        key[0] = 'd';
        key[1] = '.';
        for (int i = 0; i < n && (size_t)i + 3 < cap; i++)
            key[2 + i] = (char)('0' + t2_rand_below_scaled(r, 10));
        /* force a repeat: copy one position onto another */
        int i = (int)t2_rand_below_scaled(r, (uint32_t)n);
        int j = (int)t2_rand_below_scaled(r, (uint32_t)n);
        key[2 + j] = key[2 + i];
        key[2 + n] = 0;
    }
}

static int codeh_render(const char *key, syn_item *it) {
    int d[8] = {0}, s[8] = {0}, rv[8] = {0}, u[8] = {0};
    if (!strncmp(key, "s.", 2)) {
        int n = (int)strlen(key + 2);
        if (n < 3 || n > 5)
            return -1;
        for (int i = 0; i < n; i++) {
            if (key[2 + i] < 'a' || key[2 + i] > 'h')
                return -1;
            d[i] = key[2 + i];
        }
        sorted(s, d, n);
        reversed(rv, d, n);
        if (same(s, rv, n))
            return -1;
        char sa[8], ra[8];
        for (int i = 0; i < n; i++) {
            sa[i] = (char)s[i];
            ra[i] = (char)rv[i];
        }
        sa[n] = ra[n] = 0;
        const char *w = key + 2;
        it->label = T2_LABEL_CODE;
        fmt(it->prompt, SYN_TEXT, "run %s", w);
        fmt(it->answer, SYN_ANS, "%s", sa);
        fmt(it->target, SYN_ANS, "%s", sa);
        fmt(it->decoy, SYN_ANS, "%s", ra);
        it->n_cued = 2;
        fmt(it->cued[0].prompt, SYN_TEXT, "sort %s", w);
        fmt(it->cued[0].answer, SYN_ANS, "%s", sa);
        fmt(it->cued[1].prompt, SYN_TEXT, "reverse %s", w);
        fmt(it->cued[1].answer, SYN_ANS, "%s", ra);
        return 0;
    }
    if (strncmp(key, "d.", 2))
        return -1;
    int n = parse_digits(key + 2, d, 4, 5);
    if (n < 0)
        return -1;
    int k = dedupe(u, d, n);
    if (k == n)
        return -1; /* no repeat */
    sorted(s, u, k);
    reversed(rv, u, k);
    if (same(s, rv, k))
        return -1;
    char l[32];
    fmt_list(l, sizeof l, d, n);
    it->label = T2_LABEL_CODE;
    fmt(it->prompt, SYN_TEXT, "run dedupe %s", l);
    fmt_list(it->answer, SYN_ANS, s, k);
    fmt(it->target, SYN_ANS, "%s", it->answer);
    fmt_list(it->decoy, SYN_ANS, rv, k);
    it->n_cued = 2;
    fmt(it->cued[0].prompt, SYN_TEXT, "sort dedupe %s", l);
    fmt(it->cued[0].answer, SYN_ANS, "%s", it->answer);
    fmt(it->cued[1].prompt, SYN_TEXT, "reverse dedupe %s", l);
    fmt(it->cued[1].answer, SYN_ANS, "%s", it->decoy);
    it->n_extra = 1;
    fmt(it->extra[0].prompt, SYN_TEXT, "dedupe %s", l);
    fmt_list(it->extra[0].answer, SYN_ANS, u, k);
    return 0;
}

/* ---------------------------------------------------------------- mc, mc-hard */
/* key "a.b.c.d": four animals (indices into ANIMALS, smallest first) as options A-D.
 * Readings: biggest (target), smallest. mc: every two options are >= 2 ranks apart;
 * mc-hard (harder distractors): all four within 7 consecutive ranks (max - min <= 6) and two
 * of them neighbours in the ranking - never an mc key. */

static int mc_spread_ok(const int *v) {
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (abs(v[i] - v[j]) < 2)
                return 0;
    return 1;
}

static int mc_span(const int *v) {
    int lo = v[0], hi = v[0];
    for (int i = 1; i < 4; i++) {
        if (v[i] < lo)
            lo = v[i];
        if (v[i] > hi)
            hi = v[i];
    }
    return hi - lo;
}

static void shuffle4(t2_rand *r, int *v) {
    for (int i = 3; i > 0; i--) {
        int j = (int)t2_rand_below_scaled(r, (uint32_t)i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static void mc_sample(t2_rand *r, char *key, size_t cap) {
    int v[4];
    do {
        for (int i = 0; i < 4; i++)
            v[i] = (int)t2_rand_below_scaled(r, N_ANIMALS);
    } while (!mc_spread_ok(v));
    fmt(key, cap, "%d.%d.%d.%d", v[0], v[1], v[2], v[3]);
}

static void mch_sample(t2_rand *r, char *key, size_t cap) {
    int v[4];
    do { /* four distinct ranks from a window of 7, two of them neighbours */
        int w = (int)t2_rand_below_scaled(r, N_ANIMALS - 6);
        int pool[7] = {w, w + 1, w + 2, w + 3, w + 4, w + 5, w + 6};
        for (int i = 0; i < 4; i++) {
            int j = i + (int)t2_rand_below_scaled(r, (uint32_t)(7 - i)), t = pool[i];
            pool[i] = pool[j];
            pool[j] = t;
            v[i] = pool[i];
        }
    } while (mc_spread_ok(v));
    shuffle4(r, v);
    fmt(key, cap, "%d.%d.%d.%d", v[0], v[1], v[2], v[3]);
}

static int mc_common(const char *key, syn_item *it, int hard) {
    int v[4];
    if (parse_ints(key, v, 4) < 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (v[i] >= N_ANIMALS)
            return -1;
        for (int j = 0; j < i; j++)
            if (v[i] == v[j])
                return -1;
    }
    if (hard ? mc_span(v) > 6 || mc_spread_ok(v) : !mc_spread_ok(v))
        return -1;
    char canon[32];
    fmt(canon, sizeof canon, "%d.%d.%d.%d", v[0], v[1], v[2], v[3]);
    if (strcmp(canon, key))
        return -1;
    int big = 0, small = 0;
    for (int i = 1; i < 4; i++) {
        if (v[i] > v[big])
            big = i;
        if (v[i] < v[small])
            small = i;
    }
    char opts[SYN_TEXT];
    fmt(opts, sizeof opts, "A) %s B) %s C) %s D) %s", ANIMALS[v[0]], ANIMALS[v[1]], ANIMALS[v[2]],
        ANIMALS[v[3]]);
    it->label = T2_LABEL_REASONING;
    fmt(it->prompt, SYN_TEXT, "Which one? %s", opts);
    set_mc(it->answer, it->target, big);
    char t2[SYN_ANS];
    set_mc(it->decoy, t2, small);
    it->n_cued = 2;
    fmt(it->cued[0].prompt, SYN_TEXT, "Biggest? %s", opts);
    set_mc(it->cued[0].answer, t2, big);
    fmt(it->cued[1].prompt, SYN_TEXT, "Smallest? %s", opts);
    set_mc(it->cued[1].answer, t2, small);
    return 0;
}
static int mc_render(const char *key, syn_item *it) { return mc_common(key, it, 0); }
static int mch_render(const char *key, syn_item *it) { return mc_common(key, it, 1); }

/* ---------------------------------------------------------------- other */
/* keys: "K.i" / "K.i.j" with K = g(reet), t(hank), b(ye), h(i), w(ave) and one or two names;
 * "c.i" the colour of a thing. One reading. */

static const char OTHER_KINDS[] = "gtbhw"; /* greet, thank, bye, hi, wave */

static void other_sample(t2_rand *r, char *key, size_t cap) {
    uint32_t kind = t2_rand_below_scaled(r, 11);
    if (kind == 10) {
        fmt(key, cap, "c.%u", t2_rand_below_scaled(r, N_COLORS));
        return;
    }
    char k[2] = {OTHER_KINDS[kind % 5], 0};
    uint32_t i = t2_rand_below_scaled(r, N_NAMES);
    if (kind < 5) {
        fmt(key, cap, "%s.%u", k, i);
    } else {
        uint32_t j = t2_rand_below_scaled(r, N_NAMES - 1);
        if (j >= i)
            j++;
        fmt(key, cap, "%s.%u.%u", k, i, j);
    }
}

static int other_render(const char *key, syn_item *it) {
    int v[2], two = 0;
    char k = key[0];
    if (!k || key[1] != '.')
        return -1;
    if (parse_ints(key + 2, v, 1) == 0)
        two = 0;
    else if (parse_ints(key + 2, v, 2) == 0)
        two = 1;
    else
        return -1;
    char canon[24], who[32];
    if (two)
        fmt(canon, sizeof canon, "%c.%d.%d", k, v[0], v[1]);
    else
        fmt(canon, sizeof canon, "%c.%d", k, v[0]);
    if (strcmp(canon, key))
        return -1;
    it->label = T2_LABEL_OTHER;
    if (k == 'c') {
        if (two || v[0] >= N_COLORS)
            return -1;
        fmt(it->prompt, SYN_TEXT, "Color of %s?", COLOR_OF[v[0]][0]);
        fmt(it->answer, SYN_ANS, "%s", COLOR_OF[v[0]][1]);
    } else {
        if (v[0] >= N_NAMES || (two && (v[1] >= N_NAMES || v[1] == v[0])))
            return -1;
        if (two)
            fmt(who, sizeof who, "%s and %s", NAMES[v[0]], NAMES[v[1]]);
        else
            fmt(who, sizeof who, "%s", NAMES[v[0]]);
        if (k == 'g') {
            fmt(it->prompt, SYN_TEXT, "Greet %s.", who);
            fmt(it->answer, SYN_ANS, "Hello, %s!", who);
        } else if (k == 't') {
            fmt(it->prompt, SYN_TEXT, "Thank %s.", who);
            fmt(it->answer, SYN_ANS, "Thanks, %s!", who);
        } else if (k == 'b') {
            fmt(it->prompt, SYN_TEXT, "Say bye to %s.", who);
            fmt(it->answer, SYN_ANS, "Bye, %s!", who);
        } else if (k == 'h') {
            fmt(it->prompt, SYN_TEXT, "Say hi to %s.", who);
            fmt(it->answer, SYN_ANS, "Hi, %s!", who);
        } else if (k == 'w') {
            fmt(it->prompt, SYN_TEXT, "Wave at %s.", who);
            fmt(it->answer, SYN_ANS, "*waves at %s*", who);
        } else {
            return -1;
        }
    }
    fmt(it->target, SYN_ANS, "%s", it->answer);
    fmt(it->decoy, SYN_ANS, "%s", it->answer);
    return 0;
}

/* ---------------------------------------------------------------- classify */
/* key "FAMILY:KEY" of a question from the families below. Prompt "Classify: QUESTION",
 * answer \boxed{label}. Readings: the true label (target) or "other" (decoy). */

static const char *const CLASSIFY_FROM[] = {"math",      "code",    "mc",   "math-hard",
                                            "code-hard", "mc-hard", "other"};
#define N_CLASSIFY_FROM 7

static const syn_family *syn_find_nc(const char *name);

static void cls_sample(t2_rand *r, char *key, size_t cap) {
    const char *fam = CLASSIFY_FROM[t2_rand_below_scaled(r, N_CLASSIFY_FROM)];
    const syn_family *f = syn_find_nc(fam);
    char inner[SYN_TEXT];
    syn_item tmp;
    do { /* keys the renderer rejects (e.g. sort == reverse) are redrawn */
        f->sample(r, inner, sizeof inner);
        memset(&tmp, 0, sizeof tmp);
    } while (f->render(inner, &tmp) < 0);
    fmt(key, cap, "%s:%s", fam, inner);
}

static int cls_render(const char *key, syn_item *it) {
    const char *colon = strchr(key, ':');
    if (!colon || colon - key >= 16)
        return -1;
    char fam[16];
    memcpy(fam, key, (size_t)(colon - key));
    fam[colon - key] = 0;
    int ok = 0;
    for (int i = 0; i < N_CLASSIFY_FROM; i++)
        ok |= !strcmp(fam, CLASSIFY_FROM[i]);
    if (!ok)
        return -1;
    syn_item in;
    memset(&in, 0, sizeof in);
    if (syn_find_nc(fam)->render(colon + 1, &in) < 0)
        return -1;
    it->label = in.label;
    t2_task_classify_prompt(in.prompt, it->prompt, SYN_TEXT);
    fmt(it->answer, SYN_ANS, "\\boxed{%s}", t2_task_label_name(in.label));
    fmt(it->target, SYN_ANS, "%s", t2_task_label_name(in.label));
    fmt(it->decoy, SYN_ANS, "\\boxed{other}");
    return 0;
}

/* ---------------------------------------------------------------- registry */

static const syn_family SYN[] = {
    {"math", math_sample, math_render},
    {"code", code_sample, code_render},
    {"mc", mc_sample, mc_render},
    {"math-hard", mathh_sample, mathh_render},
    {"code-hard", codeh_sample, codeh_render},
    {"mc-hard", mch_sample, mch_render},
    {"classify", cls_sample, cls_render},
    {"other", other_sample, other_render},
};

static const syn_family *syn_find_nc(const char *name) {
    for (size_t i = 0; i < sizeof SYN / sizeof SYN[0]; i++)
        if (!strcmp(SYN[i].name, name))
            return &SYN[i];
    return NULL;
}

const syn_family *t2_syn_find(const char *name) {
    if (name && !strncmp(name, "v2-", 3)) return t2_syn_v2_find(name);
    return name ? syn_find_nc(name) : NULL;
}

t2_task_split t2_syn_split_of(const char *family, const char *key) {
    if (!strncmp(family, "v2-", 3)) return t2_syn_v2_split_of(key);
    if (!strcmp(family, "classify")) {
        const char *colon = strchr(key, ':');
        if (colon && colon - key < 16) {
            char fam[16];
            memcpy(fam, key, (size_t)(colon - key));
            fam[colon - key] = 0;
            return t2_syn_split_of(fam, colon + 1);
        }
    }
    uint64_t h = t2_hash64(family, strlen(family), 0x7432737031ull); /* "t2sp1" */
    h = t2_hash64(":", 1, h);
    h = t2_hash64(key, strlen(key), h);
    unsigned b = (unsigned)(h % 100);
    return b < 80 ? T2_SPLIT_TRAIN : b < 90 ? T2_SPLIT_VALIDATION : T2_SPLIT_TEST;
}

int t2_syn_sample_split(const syn_family *f, t2_rand *r, t2_task_split split, char *key,
                        size_t cap) {
    syn_item tmp;
    for (int tries = 0; tries < 100000; tries++) {
        f->sample(r, key, cap);
        if (split != T2_SPLIT_ALL && t2_syn_split_of(f->name, key) != split)
            continue;
        memset(&tmp, 0, sizeof tmp);
        if (f->render(key, &tmp) == 0)
            return 0;
    }
    return t2_err_set(T2_EINTERNAL, "%s: no %s item found in 100000 draws", f->name,
                      t2_task_split_name(split));
}
