/* tasks_v2.c - task suite v2 (docs/TASKS.md §v2): families with 20 phrasing templates each, split
 * by template AND by content AND by vocabulary, so that a test prompt has a wording, a content
 * (operands, sets, lists) and names / objects that no training or validation prompt has.
 *
 * Key "T.F1.F2...": T the template (0..19: 0-13 train, 14-16 validation, 17-19 test), then the
 * family's content fields and vocabulary indices. A key is valid only when its template, its
 * content (a hash of the content's canonical form: 80 % train, 10 % validation, 10 % test) and
 * each vocabulary index (names, objects, verbs: disjoint slices, about 2/3, 1/6, 1/6) all fall
 * in the same split; that split is the key's. The names and objects are none of the v1 suite's.
 *
 *   v2-math        one step: NAME has A OBJECTS, then a verb phrase adds or takes B; #### N
 *   v2-code        sort 3-5 digits ascending, written in six list styles; [1,2,3]
 *   v2-mc          the biggest of four animals, five option styles; the answer is (X)
 *   v2-math2       transfer (math): two steps told as a container story, A + B - C
 *   v2-sort-words  transfer (code): sort 3-4 words alphabetically; [ant,fig,pear]
 *   v2-mc-num      transfer (mc): the largest of four numbers as multiple choice
 * The v2 families have no cued readings (n_cued = 0) and are in no pretraining mixture.
 */
#include "tasks/tasks_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V2_TEMPLATES 20
#define V2_FIELDS 8

static const char *const V2_NAMES[] = {
    "Max", "Lea", "Rui", "Noa", "Pia", "Sam", "Tom", "Uma", "Vic", "Wes", "Zoe", "Amy", "Ben",
    "Cal", "Dan", "Eva", "Flo", "Guy", "Hal", "Ida", "Jan", "Kai", "Lou", "Meg", "Ned", "Ola",
    "Pat", "Quin", "Rex", "Sue"};
static const char *const V2_OBJECTS[] = {"apples",  "pencils", "stamps",  "shells",  "marbles",
                                         "stickers", "candles", "buttons", "rocks",   "plates",
                                         "spoons",  "balls",   "ribbons", "tickets", "boxes"};
static const char *const V2_ADD[] = {"gets {B} more",  "buys {B} more",      "finds {B} more",
                                     "wins {B} more",  "picks up {B} more",  "makes {B} more",
                                     "adds {B} more",  "is given {B} more",  "receives {B} more",
                                     "collects {B} more"};
static const char *const V2_SUB[] = {"gives away {B}", "loses {B}",       "sells {B}",
                                     "drops {B}",      "breaks {B}",      "uses up {B}",
                                     "throws out {B}", "lends out {B}",   "gives {B} to a friend",
                                     "trades away {B}"};
/* The v1 mc ranking (tasks_synth.c), smallest first: v2-mc asks the same knowledge. */
static const char *const V2_ANIMALS[] = {"ant",  "bee",  "mouse", "frog",    "rabbit", "cat",
                                         "fox",  "dog",  "goat",  "deer",    "lion",   "horse",
                                         "giraffe", "rhino", "elephant", "whale"};
static const char *const V2_WORDS[] = {"apple", "bread", "chair", "drum",  "eagle", "fig",
                                       "grape", "house", "ink",   "jam",   "kite",  "lamp",
                                       "moon",  "nest",  "olive", "pear",  "queen", "road",
                                       "sand",  "tree",  "umbrella", "vase", "wind", "yarn"};
static const char *const ONES[] = {"zero",  "one",  "two",   "three", "four",
                                   "five",  "six",  "seven", "eight", "nine",
                                   "ten",   "eleven", "twelve", "thirteen", "fourteen",
                                   "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const TENS[] = {"", "", "twenty", "thirty", "forty",
                                   "fifty", "sixty", "seventy", "eighty", "ninety"};
#define COUNT(a) ((int)(sizeof a / sizeof a[0]))

/* ---------------------------------------------------------------- helpers */

static void v2_fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void v2_fmt(char *buf, size_t cap, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
}

/* 0..99 in words ("forty-two"). */
static void num_words(char *buf, size_t cap, int x) {
    if (x < 20) v2_fmt(buf, cap, "%s", ONES[x]);
    else if (x % 10 == 0) v2_fmt(buf, cap, "%s", TENS[x / 10]);
    else v2_fmt(buf, cap, "%s-%s", TENS[x / 10], ONES[x % 10]);
}

/* Replace {X} (X = 'A'..'Z') in tmpl by vals[X - 'A'] (NULL: left as is). */
static void subst(char *out, size_t cap, const char *tmpl, const char *const *vals) {
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < cap; p++) {
        if (p[0] == '{' && p[1] >= 'A' && p[1] <= 'Z' && p[2] == '}' && vals[p[1] - 'A']) {
            for (const char *v = vals[p[1] - 'A']; *v && o + 1 < cap; v++) out[o++] = *v;
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
}

static t2_task_split template_split(int t) {
    return t < 14 ? T2_SPLIT_TRAIN : t < 17 ? T2_SPLIT_VALIDATION : T2_SPLIT_TEST;
}

/* Vocabulary index i of a list of n: its split (first 2/3 train, then halves of the rest). */
static t2_task_split vocab_split(int i, int n) {
    int tr = n * 2 / 3, va = (n - tr) / 2;
    return i < tr ? T2_SPLIT_TRAIN : i < tr + va ? T2_SPLIT_VALIDATION : T2_SPLIT_TEST;
}

/* A random index of a list of n in split s. */
static int vocab_pick(t2_rand *r, int n, t2_task_split s) {
    int tr = n * 2 / 3, va = (n - tr) / 2;
    int lo = s == T2_SPLIT_TRAIN ? 0 : s == T2_SPLIT_VALIDATION ? tr : tr + va;
    int hi = s == T2_SPLIT_TRAIN ? tr : s == T2_SPLIT_VALIDATION ? tr + va : n;
    return lo + (int)t2_rand_below_scaled(r, (uint32_t)(hi - lo));
}

/* Split of a content, from its canonical text (salted by the content kind). */
static t2_task_split content_split(const char *kind, const char *canon) {
    uint64_t h = t2_hash64(kind, strlen(kind), 0x7632636f6eull); /* "v2con" */
    h = t2_hash64(canon, strlen(canon), h);
    unsigned b = (unsigned)(h % 10);
    return b < 8 ? T2_SPLIT_TRAIN : b < 9 ? T2_SPLIT_VALIDATION : T2_SPLIT_TEST;
}

/* Parse "T.F1..." into v (n ints, each < 1000, no leading zeros); -1 otherwise. */
static int v2_parse(const char *key, int *v, int n) {
    const char *p = key;
    for (int i = 0; i < n; i++) {
        if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
        int x = 0, d = 0;
        while (*p >= '0' && *p <= '9' && d < 4) x = x * 10 + (*p++ - '0'), d++;
        if (d > 3) return -1;
        v[i] = x;
        if (i + 1 < n && *p++ != '.') return -1;
    }
    return *p ? -1 : 0;
}

static void v2_key(char *key, size_t cap, const int *v, int n) {
    size_t o = 0;
    key[0] = 0;
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(key + o, cap - o, i ? ".%d" : "%d", v[i]);
}

/* A template index of split s. */
static int template_pick(t2_rand *r, t2_task_split s) {
    return s == T2_SPLIT_TRAIN        ? (int)t2_rand_below_scaled(r, 14)
           : s == T2_SPLIT_VALIDATION ? 14 + (int)t2_rand_below_scaled(r, 3)
                                      : 17 + (int)t2_rand_below_scaled(r, 3);
}

static t2_task_split split_pick(t2_rand *r) {
    uint32_t u = t2_rand_below_scaled(r, 3);
    return u == 0 ? T2_SPLIT_TRAIN : u == 1 ? T2_SPLIT_VALIDATION : T2_SPLIT_TEST;
}

/* ---------------------------------------------------------------- v2-math */

/* {N} name, {A} first amount, {O} objects, {V} the verb phrase (with its amount); the templates
 * 3, 8, 13, 16 and 19 write the numbers as words. */
static const char *const MATH_T[V2_TEMPLATES] = {
    "{N} has {A} {O}. {N} {V}. How many {O} does {N} have now?",
    "{N} has {A} {O} and {V}. How many {O} now?",
    "Start: {N} with {A} {O}. Then {N} {V}. Count of {O}?",
    "{N} owns {A} {O}; later {N} {V}. How many {O} does {N} own?",
    "How many {O} does {N} have after this: {N} has {A} {O} and {V}?",
    "{N} had {A} {O} this morning. Today {N} {V}. How many {O} are there now?",
    "Q: {N} has {A} {O}, then {V}. Total {O}?",
    "{N}  has {A} {O} .  {N} {V} .  How many ?",
    "There are {A} {O} with {N}. {N} {V}. What is the number of {O} now?",
    "{N} keeps {A} {O} in a box, then {V}. How many {O} are in the box?",
    "If {N} has {A} {O} and {V}, how many {O} does {N} end with?",
    "{N}: {A} {O}. Next, {N} {V}. {O} left with {N}?",
    "{N} has {A} {O}! {N} {V}! How many {O} now?!",
    "Word problem - {N} has {A} {O}. {N} {V}. Answer with the count.",
    "{N} holds {A} {O}. Afterwards {N} {V}. How many does {N} hold?",
    "Count the {O}: {N} has {A}, and {N} {V}.",
    "{N} begins with {A} {O} and {V}; how many {O} in the end?",
    "Tell me how many {O} {N} has if {N} had {A} and {V}.",
    "{N}'s {O}: {A} at first; {N} {V}. What is the total now?",
    "With {A} {O} in hand, {N} {V}. How many {O} does {N} have?"};
static int words_template(int t) { return t == 3 || t == 8 || t == 13 || t == 16 || t == 19; }

/* key "T.A.B.OP.N.O.V" */
static int math_split_ok(const int *v, t2_task_split *out) {
    char canon[32];
    v2_fmt(canon, sizeof canon, "%d.%d.%d", v[1], v[2], v[3]);
    t2_task_split s = template_split(v[0]);
    *out = s;
    return (!v[3] || v[2] < v[1]) && content_split("math", canon) == s &&
           vocab_split(v[4], COUNT(V2_NAMES)) == s &&
           vocab_split(v[5], COUNT(V2_OBJECTS)) == s && vocab_split(v[6], 10) == s;
}

static void math_sample(t2_rand *r, char *key, size_t cap) {
    t2_task_split s = split_pick(r), got;
    int v[7];
    do {
        v[0] = template_pick(r, s);
        v[1] = 3 + (int)t2_rand_below_scaled(r, 27); /* 3..29 */
        v[2] = 1 + (int)t2_rand_below_scaled(r, 9);  /* 1..9 */
        v[3] = (int)t2_rand_below_scaled(r, 2);
        v[4] = vocab_pick(r, COUNT(V2_NAMES), s);
        v[5] = vocab_pick(r, COUNT(V2_OBJECTS), s);
        v[6] = vocab_pick(r, 10, s);
    } while (!math_split_ok(v, &got));
    v2_key(key, cap, v, 7);
}

static int math_render(const char *key, syn_item *it) {
    int v[7];
    t2_task_split s;
    if (v2_parse(key, v, 7) < 0 || v[0] >= V2_TEMPLATES || v[1] < 3 || v[1] > 29 || v[2] < 1 ||
        v[2] > 9 || v[3] > 1 || v[4] >= COUNT(V2_NAMES) || v[5] >= COUNT(V2_OBJECTS) ||
        v[6] >= 10 || !math_split_ok(v, &s))
        return -1;
    char a[24], b[24], verb[64];
    if (words_template(v[0])) num_words(a, sizeof a, v[1]), num_words(b, sizeof b, v[2]);
    else v2_fmt(a, sizeof a, "%d", v[1]), v2_fmt(b, sizeof b, "%d", v[2]);
    const char *vals[26] = {0};
    vals['B' - 'A'] = b;
    subst(verb, sizeof verb, (v[3] ? V2_SUB : V2_ADD)[v[6]], vals);
    vals['N' - 'A'] = V2_NAMES[v[4]];
    vals['A' - 'A'] = a;
    vals['O' - 'A'] = V2_OBJECTS[v[5]];
    vals['V' - 'A'] = verb;
    it->label = T2_LABEL_MATH;
    subst(it->prompt, SYN_TEXT, MATH_T[v[0]], vals);
    int res = v[3] ? v[1] - v[2] : v[1] + v[2];
    v2_fmt(it->answer, SYN_ANS, "#### %d", res);
    v2_fmt(it->target, SYN_ANS, "%d", res);
    v2_fmt(it->decoy, SYN_ANS, "%s", it->answer);
    return 0;
}

/* ---------------------------------------------------------------- lists (v2-code, words) */

/* A list in style st of n items: 0 "[3, 1, 2]", 1 "3 1 2", 2 "3,1,2", 3 "(3; 1; 2)",
 * 4 words "three, one, two" (digits only), 5 "3 | 1 | 2". */
static void list_style(char *buf, size_t cap, const char *const *items, int n, int st) {
    static const char *const open[] = {"[", "", "", "(", "", ""};
    static const char *const sep[] = {", ", " ", ",", "; ", ", ", " | "};
    static const char *const close[] = {"]", "", "", ")", "", ""};
    size_t o = (size_t)snprintf(buf, cap, "%s", open[st]);
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? sep[st] : "", items[i]);
    if (o < cap) snprintf(buf + o, cap - o, "%s", close[st]);
}

/* "[a,b,c]" of the items sorted (strcmp for words, numerically for one-digit strings). */
static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}
static void sorted_answer(char *buf, size_t cap, const char *const *items, int n) {
    const char *s[8];
    memcpy(s, items, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_str);
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? "," : "", s[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

/* {L} the list; the list style of template t is CODE_STYLE[t]. */
static const char *const CODE_T[V2_TEMPLATES] = {
    "sort {L}",
    "Sort these numbers: {L}",
    "Put {L} in increasing order.",
    "{L} -> sorted ascending?",
    "Order from smallest to largest: {L}",
    "Arrange the digits {L} from low to high.",
    "sorted({L}) = ?",
    "Please sort: {L}",
    "Ascending order of {L}?",
    "List {L} sorted, smallest first.",
    "Rearrange {L} so that each number is at most the next.",
    "What is {L} after sorting?",
    "Sort the list {L} (low to high)",
    "Give {L} in ascending order",
    "Numbers {L}: write them smallest first.",
    "Return the sorted version of {L}",
    "Increasing order please: {L}",
    "Can you order {L} from least to greatest?",
    "Sort upward: {L}",
    "Smallest to biggest: {L}"};
static const int CODE_STYLE[V2_TEMPLATES] = {0, 1, 2, 0, 3, 1, 0, 4, 2, 3,
                                             1, 0, 5, 4, 5, 2, 4, 3, 1, 5};

/* key "T.D" where D is the list's digits in order ("312"), 3-5 digits; content = the sorted
 * multiset. */
static int code_split_ok(int t, const char *digits, t2_task_split *out) {
    char canon[8];
    size_t n = strlen(digits);
    memcpy(canon, digits, n + 1);
    for (size_t i = 1; i < n; i++) /* insertion sort */
        for (size_t j = i; j > 0 && canon[j - 1] > canon[j]; j--) {
            char c = canon[j];
            canon[j] = canon[j - 1];
            canon[j - 1] = c;
        }
    *out = template_split(t);
    return content_split("code", canon) == *out;
}

static void code_sample(t2_rand *r, char *key, size_t cap) {
    t2_task_split s = split_pick(r), got;
    int t;
    char d[8];
    do {
        t = template_pick(r, s);
        int n = 3 + (int)t2_rand_below_scaled(r, 3);
        for (int i = 0; i < n; i++) d[i] = (char)('0' + t2_rand_below_scaled(r, 10));
        d[n] = 0;
    } while (!code_split_ok(t, d, &got));
    v2_fmt(key, cap, "%d.%s", t, d);
}

static int code_render(const char *key, syn_item *it) {
    int t = 0;
    const char *p = key;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9' && t < 100) t = t * 10 + (*p++ - '0');
    char tk[8];
    v2_fmt(tk, sizeof tk, "%d", t);
    size_t n = strlen(p + 1);
    if (*p != '.' || t >= V2_TEMPLATES || strncmp(key, tk, strlen(tk)) || n < 3 || n > 5 ||
        strspn(p + 1, "0123456789") != n)
        return -1;
    t2_task_split s;
    if (!code_split_ok(t, p + 1, &s)) return -1;
    char cells[5][12];
    const char *items[5], *digits[5];
    for (size_t i = 0; i < n; i++) {
        int x = p[1 + i] - '0';
        if (CODE_STYLE[t] == 4) num_words(cells[i], sizeof cells[i], x);
        else v2_fmt(cells[i], sizeof cells[i], "%d", x);
        items[i] = cells[i];
    }
    char dg[5][2];
    for (size_t i = 0; i < n; i++) dg[i][0] = p[1 + i], dg[i][1] = 0, digits[i] = dg[i];
    char list[96];
    list_style(list, sizeof list, items, (int)n, CODE_STYLE[t]);
    const char *vals[26] = {0};
    vals['L' - 'A'] = list;
    it->label = T2_LABEL_CODE;
    subst(it->prompt, SYN_TEXT, CODE_T[t], vals);
    sorted_answer(it->answer, SYN_ANS, digits, (int)n);
    v2_fmt(it->target, SYN_ANS, "%s", it->answer);
    v2_fmt(it->decoy, SYN_ANS, "%s", it->answer);
    return 0;
}

/* ---------------------------------------------------------------- v2-mc, v2-mc-num */

/* Four options in style st: 0 "A) x B) y ...", 1 "(A) x (B) y ...", 2 "A. x, B. y, ...",
 * 3 "A: x / B: y / ...", 4 "A-x B-y ...". */
static void options_style(char *buf, size_t cap, const char *const *opt, int st) {
    static const char *const head[] = {"%c) %s", "(%c) %s", "%c. %s", "%c: %s", "%c-%s"};
    static const char *const sep[] = {" ", " ", ", ", " / ", " "};
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < 4 && o < cap; i++) {
        if (i) o += (size_t)snprintf(buf + o, cap - o, "%s", sep[st]);
        if (o < cap) o += (size_t)snprintf(buf + o, cap - o, head[st], 'A' + i, opt[i]);
    }
}

/* {P} the options, in style t % 5. */
static const char *const MC_T[V2_TEMPLATES] = {
    "Which animal is the biggest? {P}",
    "{P} Which one is largest?",
    "Pick the largest animal: {P}",
    "Biggest animal among {P}?",
    "Of these, which is the heaviest? {P}",
    "{P} -- choose the biggest.",
    "Question: which is the largest animal? Options: {P}",
    "Select the animal with the greatest size. {P}",
    "Largest? {P}",
    "{P} Which of these animals is the biggest one?",
    "Which weighs the most? {P}",
    "Choose the biggest: {P}",
    "Find the largest animal. {P}",
    "Among {P}, which is biggest?",
    "Which creature is the largest? {P}",
    "{P} Name the heaviest animal.",
    "The biggest of the following is which? {P}",
    "Which is the most massive animal here? {P}",
    "{P} Which one is the giant of the group?",
    "Identify the biggest animal: {P}"};
static const char *const MCNUM_T[V2_TEMPLATES] = {
    "Which number is the largest? {P}",
    "{P} Which value is greatest?",
    "Pick the biggest number: {P}",
    "Largest value among {P}?",
    "Of these numbers, which is the highest? {P}",
    "{P} -- choose the maximum.",
    "Question: which number is largest? Options: {P}",
    "Select the greatest number. {P}",
    "Max? {P}",
    "{P} Which of these numbers is the biggest one?",
    "Which is the top value? {P}",
    "Choose the highest: {P}",
    "Find the largest number. {P}",
    "Among {P}, which is greatest?",
    "Which figure is the largest? {P}",
    "{P} Name the highest number.",
    "The maximum of the following is which? {P}",
    "Which number here is more than all others? {P}",
    "{P} Which one tops the list?",
    "Identify the greatest value: {P}"};

static int spread_ok(const int *v, int min_gap) {
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            if (abs(v[i] - v[j]) < min_gap) return 0;
    return 1;
}

/* Content of four values: their sorted set as text. */
static t2_task_split set_split(const char *kind, const int *v) {
    int s[4];
    memcpy(s, v, sizeof s);
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            int t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    char canon[32];
    v2_fmt(canon, sizeof canon, "%d.%d.%d.%d", s[0], s[1], s[2], s[3]);
    return content_split(kind, canon);
}

/* key "T.a.b.c.d": options A-D (animal indices, or numbers 10..99); the biggest is the answer. */
static void choice_sample(t2_rand *r, char *key, size_t cap, int numbers) {
    t2_task_split s = split_pick(r);
    int v[5];
    do {
        v[0] = template_pick(r, s);
        for (int i = 1; i < 5; i++)
            v[i] = numbers ? 10 + (int)t2_rand_below_scaled(r, 90)
                           : (int)t2_rand_below_scaled(r, COUNT(V2_ANIMALS));
    } while (!spread_ok(v + 1, numbers ? 1 : 2) ||
             set_split(numbers ? "mcnum" : "mc", v + 1) != s);
    v2_key(key, cap, v, 5);
}
static void mc_sample2(t2_rand *r, char *key, size_t cap) { choice_sample(r, key, cap, 0); }
static void mcnum_sample(t2_rand *r, char *key, size_t cap) { choice_sample(r, key, cap, 1); }

static int choice_render(const char *key, syn_item *it, int numbers) {
    int v[5];
    if (v2_parse(key, v, 5) < 0 || v[0] >= V2_TEMPLATES) return -1;
    for (int i = 1; i < 5; i++)
        if (numbers ? v[i] < 10 || v[i] > 99 : v[i] >= COUNT(V2_ANIMALS)) return -1;
    if (!spread_ok(v + 1, numbers ? 1 : 2) ||
        set_split(numbers ? "mcnum" : "mc", v + 1) != template_split(v[0]))
        return -1;
    char cells[4][12];
    const char *opt[4];
    int big = 0;
    for (int i = 0; i < 4; i++) {
        if (numbers) v2_fmt(cells[i], sizeof cells[i], "%d", v[1 + i]);
        opt[i] = numbers ? cells[i] : V2_ANIMALS[v[1 + i]];
        if (v[1 + i] > v[1 + big]) big = i;
    }
    char opts[128];
    options_style(opts, sizeof opts, opt, v[0] % 5);
    const char *vals[26] = {0};
    vals['P' - 'A'] = opts;
    it->label = T2_LABEL_REASONING;
    subst(it->prompt, SYN_TEXT, (numbers ? MCNUM_T : MC_T)[v[0]], vals);
    v2_fmt(it->answer, SYN_ANS, "the answer is (%c)", 'A' + big);
    v2_fmt(it->target, SYN_ANS, "%c", 'A' + big);
    v2_fmt(it->decoy, SYN_ANS, "%s", it->answer);
    return 0;
}
static int mc_render2(const char *key, syn_item *it) { return choice_render(key, it, 0); }
static int mcnum_render(const char *key, syn_item *it) { return choice_render(key, it, 1); }

/* ---------------------------------------------------------------- v2-math2 */

/* Two steps told as a container story: {A} at first, {B} put in, {C} taken out; {N} a name,
 * {O} objects. Templates 2, 9, 15 and 18 write the numbers as words. */
static const char *const MATH2_T[V2_TEMPLATES] = {
    "A box holds {A} {O}. {N} puts in {B} and takes out {C}. How many are in the box?",
    "There were {A} {O} on the shelf. {N} added {B}, then removed {C}. How many remain?",
    "{N}'s bag: {A} {O}. In go {B}, out go {C}. What is left?",
    "Jar of {O}: {A}. {N} drops in {B} more and eats {C}. Count now?",
    "At first {A} {O} sat in a basket; {N} brought {B} and took {C} away. How many now?",
    "{A} {O} in a drawer. {N}: +{B}, then -{C}. Result?",
    "The crate had {A} {O}. After {N} loaded {B} and unloaded {C}, how many were in it?",
    "{N} counts {A} {O} in a tin, adds {B}, removes {C}. Final count?",
    "Shelf: {A} {O}. Delivery of {B}. {N} sells {C}. Stock?",
    "A pile has {A} {O}; {N} adds {B} to it and takes {C} from it. Pile size?",
    "How many {O} stay in the bin if it had {A}, {N} put in {B} and took out {C}?",
    "{N} fills a cup with {A} {O}, then {B} more, then pours out {C}. How many in the cup?",
    "Begin with {A} {O}. Gain {B}. Lose {C}. {N} wants the total.",
    "Tray with {A} {O} -> {N} adds {B} -> {N} removes {C} -> how many?",
    "In the sack: {A} {O}. {N} tosses in {B}, pulls out {C}. Left in the sack?",
    "A bowl of {A} {O} gets {B} more from {N}, who then eats {C}. How many in the bowl?",
    "{N} has a box of {A} {O}, puts {B} in, takes {C} out: how many inside?",
    "Storage: {A} {O}, then +{B} from {N}, then {C} shipped. Remaining?",
    "Once {A} {O} lay in a chest. {N} stored {B} more and lent {C}. What remains?",
    "Count: {A} {O} plus the {B} {N} brings minus the {C} {N} gives away."};
static int words2_template(int t) { return t == 2 || t == 9 || t == 15 || t == 18; }

/* key "T.A.B.C.N.O" */
static int math2_split_ok(const int *v) {
    char canon[32];
    v2_fmt(canon, sizeof canon, "%d.%d.%d", v[1], v[2], v[3]);
    t2_task_split s = template_split(v[0]);
    return content_split("math2", canon) == s && vocab_split(v[4], COUNT(V2_NAMES)) == s &&
           vocab_split(v[5], COUNT(V2_OBJECTS)) == s;
}

static void math2_sample(t2_rand *r, char *key, size_t cap) {
    t2_task_split s = split_pick(r);
    int v[6];
    do {
        v[0] = template_pick(r, s);
        v[1] = 5 + (int)t2_rand_below_scaled(r, 16); /* 5..20 */
        v[2] = 1 + (int)t2_rand_below_scaled(r, 9);
        v[3] = 1 + (int)t2_rand_below_scaled(r, 9);
        v[4] = vocab_pick(r, COUNT(V2_NAMES), s);
        v[5] = vocab_pick(r, COUNT(V2_OBJECTS), s);
    } while (!math2_split_ok(v));
    v2_key(key, cap, v, 6);
}

static int math2_render(const char *key, syn_item *it) {
    int v[6];
    if (v2_parse(key, v, 6) < 0 || v[0] >= V2_TEMPLATES || v[1] < 5 || v[1] > 20 || v[2] < 1 ||
        v[2] > 9 || v[3] < 1 || v[3] > 9 || v[4] >= COUNT(V2_NAMES) ||
        v[5] >= COUNT(V2_OBJECTS) || !math2_split_ok(v))
        return -1;
    char n[3][24];
    for (int i = 0; i < 3; i++) {
        if (words2_template(v[0])) num_words(n[i], sizeof n[i], v[1 + i]);
        else v2_fmt(n[i], sizeof n[i], "%d", v[1 + i]);
    }
    const char *vals[26] = {0};
    vals['A' - 'A'] = n[0];
    vals['B' - 'A'] = n[1];
    vals['C' - 'A'] = n[2];
    vals['N' - 'A'] = V2_NAMES[v[4]];
    vals['O' - 'A'] = V2_OBJECTS[v[5]];
    it->label = T2_LABEL_MATH;
    subst(it->prompt, SYN_TEXT, MATH2_T[v[0]], vals);
    int res = v[1] + v[2] - v[3];
    v2_fmt(it->answer, SYN_ANS, "#### %d", res);
    v2_fmt(it->target, SYN_ANS, "%d", res);
    v2_fmt(it->decoy, SYN_ANS, "%s", it->answer);
    return 0;
}

/* ---------------------------------------------------------------- v2-sort-words */

static const char *const WORDS_T[V2_TEMPLATES] = {
    "alphabetize {L}",
    "Sort these words: {L}",
    "Put {L} in dictionary order.",
    "{L} -> A to Z?",
    "Order alphabetically: {L}",
    "Arrange the words {L} from a to z.",
    "sorted({L}) = ?",
    "Please alphabetize: {L}",
    "Alphabetical order of {L}?",
    "List {L} alphabetically, first letter first.",
    "Rearrange {L} as a dictionary would.",
    "What is {L} in ABC order?",
    "Sort the words {L} (a-z)",
    "Give {L} in alphabetical order",
    "Words {L}: write them in a-z order.",
    "Return the alphabetized version of {L}",
    "Dictionary order please: {L}",
    "Can you order {L} from A to Z?",
    "Alphabet sort: {L}",
    "First to last in the alphabet: {L}"};
static const int WORDS_STYLE[V2_TEMPLATES] = {0, 1, 2, 0, 3, 1, 0, 2, 2, 3,
                                              1, 0, 5, 5, 5, 2, 1, 3, 1, 5};

/* key "T.w1.w2.w3[.w4]": word indices in order, distinct; content = the set. */
static int words_split_ok(const int *v, int n) {
    int s[4] = {0, 0, 0, 0};
    memcpy(s, v + 1, (size_t)n * sizeof *s);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            int t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    for (int i = 1; i < n; i++)
        if (s[i] == s[i - 1]) return 0;
    char canon[32];
    v2_fmt(canon, sizeof canon, "%d.%d.%d.%d", s[0], s[1], s[2], n == 4 ? s[3] : -1);
    return content_split("words", canon) == template_split(v[0]);
}

static void words_sample(t2_rand *r, char *key, size_t cap) {
    t2_task_split s = split_pick(r);
    int v[5], n;
    do {
        v[0] = template_pick(r, s);
        n = 3 + (int)t2_rand_below_scaled(r, 2);
        for (int i = 1; i <= n; i++) v[i] = (int)t2_rand_below_scaled(r, COUNT(V2_WORDS));
    } while (template_split(v[0]) != s || !words_split_ok(v, n));
    v2_key(key, cap, v, n + 1);
}

static int words_render(const char *key, syn_item *it) {
    int v[5], n = 4;
    if (v2_parse(key, v, 5) < 0) {
        n = 3;
        if (v2_parse(key, v, 4) < 0) return -1;
    }
    if (v[0] >= V2_TEMPLATES) return -1;
    for (int i = 1; i <= n; i++)
        if (v[i] >= COUNT(V2_WORDS)) return -1;
    if (!words_split_ok(v, n)) return -1;
    const char *items[4];
    for (int i = 0; i < n; i++) items[i] = V2_WORDS[v[1 + i]];
    char list[128];
    list_style(list, sizeof list, items, n, WORDS_STYLE[v[0]]);
    const char *vals[26] = {0};
    vals['L' - 'A'] = list;
    it->label = T2_LABEL_CODE;
    subst(it->prompt, SYN_TEXT, WORDS_T[v[0]], vals);
    sorted_answer(it->answer, SYN_ANS, items, n);
    v2_fmt(it->target, SYN_ANS, "%s", it->answer);
    v2_fmt(it->decoy, SYN_ANS, "%s", it->answer);
    return 0;
}

/* ---------------------------------------------------------------- table */

static const syn_family V2[] = {
    {"v2-math", math_sample, math_render},     {"v2-code", code_sample, code_render},
    {"v2-mc", mc_sample2, mc_render2},         {"v2-math2", math2_sample, math2_render},
    {"v2-sort-words", words_sample, words_render}, {"v2-mc-num", mcnum_sample, mcnum_render},
};

const syn_family *t2_syn_v2_find(const char *name) {
    for (int i = 0; name && i < COUNT(V2); i++)
        if (!strcmp(V2[i].name, name)) return &V2[i];
    return NULL;
}

t2_task_split t2_syn_v2_split_of(const char *key) {
    int t = 0;
    for (const char *p = key; *p >= '0' && *p <= '9' && t < 1000; p++) t = t * 10 + (*p - '0');
    return template_split(t < V2_TEMPLATES ? t : V2_TEMPLATES - 1);
}
