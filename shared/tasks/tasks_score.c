/* tasks_score.c - answer extraction and scoring for every family, and the reference self-check
 * of the real data sets (docs/TASKS.md, "Scorers"). */
#include "tasks/sandbox.h"
#include "base/t2_err.h"
#include "tasks/tasks_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int is_alnum(char c) { return isalnum((unsigned char)c) != 0; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }

static void copy_trunc(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

/* ---------------------------------------------------------------- numbers */

int t2_num_canon(const char *s, size_t n, char *out, size_t cap) {
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    char ip[64], fp[64];
    size_t il = 0, fl = 0;
    int any = 0;
    while (i < n && (is_digit(s[i]) || (s[i] == ',' && i + 1 < n && is_digit(s[i + 1]) && any))) {
        if (s[i] != ',') {
            if (il + 1 >= sizeof ip)
                return -1;
            if (!(il == 0 && s[i] == '0'))
                ip[il++] = s[i]; /* drop leading zeros */
            any = 1;
        }
        i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return -1;
        while (i < n && is_digit(s[i])) {
            if (fl + 1 >= sizeof fp)
                return -1;
            fp[fl++] = s[i++];
        }
        any = 1;
    }
    if (!any || i != n)
        return -1;
    while (fl && fp[fl - 1] == '0')
        fl--;
    if (il == 0)
        ip[il++] = '0';
    int zero = il == 1 && ip[0] == '0' && fl == 0;
    int w = snprintf(out, cap, "%s%.*s%s%.*s", neg && !zero ? "-" : "", (int)il, ip, fl ? "." : "",
                     (int)fl, fp);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* The number token starting at s[i] (must start a token): its length, or 0. Commas are
 * accepted between digits, and one '.' followed by a digit. */
static size_t num_token(const char *s, size_t i) {
    size_t j = i;
    if (s[j] == '-')
        j++;
    if (!is_digit(s[j]) && !(s[j] == '.' && is_digit(s[j + 1])))
        return 0;
    while (is_digit(s[j]) || (s[j] == ',' && is_digit(s[j + 1]) && j > i && is_digit(s[j - 1])))
        j++;
    if (s[j] == '.' && is_digit(s[j + 1])) {
        j++;
        while (is_digit(s[j]))
            j++;
    }
    return j - i;
}

static int token_start(const char *s, size_t i) {
    if (i > 0 && (is_digit(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == ','))
        return 0;
    if (s[i] == '-')
        return i == 0 || !is_alnum(s[i - 1]);
    return is_digit(s[i]) || s[i] == '.';
}

/* The first (last = 0) or last (last = 1) number in s, canonical, into out; 0 or -1. */
static int find_number(const char *s, int last, char *out, size_t cap) {
    int found = -1;
    for (size_t i = 0; s[i]; i++) {
        if (!token_start(s, i))
            continue;
        size_t k = num_token(s, i);
        if (!k)
            continue;
        char tmp[96];
        if (t2_num_canon(s + i, k, tmp, sizeof tmp) == 0) {
            copy_trunc(out, cap, tmp, strlen(tmp));
            found = 0;
            if (!last)
                return 0;
        }
        i += k - 1;
    }
    return found;
}

/* GSM8K: the number after the last "####" if there is one, else the last number. */
static void extract_gsm8k(const char *gen, char *out, size_t cap) {
    out[0] = 0;
    const char *p = NULL;
    for (const char *q = strstr(gen, "####"); q; q = strstr(q + 4, "####"))
        p = q;
    if (p && find_number(p + 4, 0, out, cap) == 0)
        return;
    find_number(gen, 1, out, cap);
}

/* ---------------------------------------------------------------- choices */

/* The letter after the last "answer is" (case-insensitive; "(X)", "X", ": X"), else the last
 * standalone choice label in the text. `labels` lists the valid ones. */
static char extract_choice(const char *gen, const char *labels) {
    const char *last = NULL;
    for (const char *p = gen; *p; p++)
        if (!strncasecmp(p, "answer is", 9))
            last = p + 9;
    if (last) {
        const char *p = last;
        while (*p == ' ' || *p == ':' || *p == '(' || *p == '*')
            p++;
        char c = (char)toupper((unsigned char)*p);
        if (c && strchr(labels, c) && !is_alnum(p[1]))
            return c;
    }
    char found = 0;
    for (size_t i = 0; gen[i]; i++) {
        char c = gen[i];
        if (!strchr(labels, c) || !(isupper((unsigned char)c) || is_digit(c)))
            continue;
        if ((i > 0 && is_alnum(gen[i - 1])) || is_alnum(gen[i + 1]))
            continue;
        found = c;
    }
    return found;
}

/* ---------------------------------------------------------------- code */

/* The code in a generation: a ``` fenced block, else the text between [BEGIN] and [DONE],
 * else everything. Returns a malloc'd string. */
static char *extract_code(const char *gen) {
    const char *a = gen, *e = NULL;
    const char *f = strstr(gen, "```");
    if (f) {
        a = strchr(f, '\n');
        a = a ? a + 1 : f + strlen(f);
        e = strstr(a, "```");
    } else if ((f = strstr(gen, "[BEGIN]"))) {
        a = f + 7;
        e = strstr(a, "[DONE]");
    } else {
        e = strstr(gen, "[DONE]");
    }
    size_t n = e ? (size_t)(e - a) : strlen(a);
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, a, n);
        out[n] = 0;
    }
    return out;
}

static int score_code(const t2_task_set *s, const t2_task_item *it, const char *gen,
                      t2_task_score *out) {
    char *code = extract_code(gen);
    if (!code)
        return t2_err_set(T2_ENOMEM, "out of memory");
    const char *pre = it->code_prefix ? it->code_prefix : "";
    const char *tests = it->code_tests ? it->code_tests : "";
    size_t lp = strlen(pre), lc = strlen(code), lt = strlen(tests);
    char *prog = malloc(lp + lc + lt + 4);
    if (!prog) {
        free(code);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    memcpy(prog, pre, lp);
    memcpy(prog + lp, code, lc);
    memcpy(prog + lp + lc, "\n\n", 2);
    memcpy(prog + lp + lc + 2, tests, lt + 1);
    t2_sandbox_opts so = {.timeout_s = s->opts.timeout_s, .mem_bytes = s->opts.mem_bytes};
    t2_sandbox_result r;
    int rc = t2_sandbox_run_python(prog, lp + lc + lt + 2, &so, &r);
    free(prog);
    free(code);
    if (rc < 0)
        return t2_err_prefix(rc, "%s", it->id);
    out->correct = r.status == T2_SANDBOX_PASSED;
    snprintf(out->extracted, sizeof out->extracted, "%s", t2_sandbox_status_name(r.status));
    /* last non-empty output line (e.g. "AssertionError") */
    size_t n = strlen(r.output);
    while (n && (r.output[n - 1] == '\n' || r.output[n - 1] == '\r' || r.output[n - 1] == ' '))
        n--;
    size_t b = n;
    while (b && r.output[b - 1] != '\n')
        b--;
    if (r.status == T2_SANDBOX_FAILED)
        snprintf(out->detail, sizeof out->detail, "exit %d: %.*s", r.exit_code, (int)(n - b),
                 r.output + b);
    else if (r.status == T2_SANDBOX_PASSED)
        snprintf(out->detail, sizeof out->detail, "passed in %.2f s", r.seconds);
    else
        snprintf(out->detail, sizeof out->detail, "%s after %.2f s (signal %d)",
                 t2_sandbox_status_name(r.status), r.seconds, r.signal);
    return 0;
}

/* ---------------------------------------------------------------- synthetic */

/* The first line of a generation, leading blank lines and surrounding spaces removed. */
static void first_line(const char *gen, const char **a, size_t *n) {
    while (*gen == ' ' || *gen == '\t' || *gen == '\n' || *gen == '\r')
        gen++;
    size_t k = strcspn(gen, "\n");
    while (k && (gen[k - 1] == ' ' || gen[k - 1] == '\t' || gen[k - 1] == '\r'))
        k--;
    *a = gen;
    *n = k;
}

static void score_synthetic(const t2_task_set *s, const t2_task_item *it, const char *gen,
                            t2_task_score *out) {
    const char *l;
    size_t n;
    first_line(gen, &l, &n);
    out->correct = n == strlen(it->answer) && !memcmp(l, it->answer, n);
    char line[256];
    copy_trunc(line, sizeof line, l, n);
    const char *fam = s->fam->name;
    if (!strncmp(fam, "math", 4)) {
        const char *h = strstr(line, "####");
        if (h) {
            h += 4;
            while (*h == ' ')
                h++;
            copy_trunc(out->extracted, sizeof out->extracted, h, strlen(h));
        }
    } else if (!strncmp(fam, "mc", 2)) {
        char c = extract_choice(line, "ABCD");
        if (c)
            snprintf(out->extracted, sizeof out->extracted, "%c", c);
    } else if (!strcmp(fam, "classify")) {
        const char *b = strstr(line, "\\boxed{");
        if (b) {
            b += 7;
            copy_trunc(out->extracted, sizeof out->extracted, b, strcspn(b, "}"));
        }
    } else {
        copy_trunc(out->extracted, sizeof out->extracted, line, strlen(line));
    }
}

int t2_task_score_item(const t2_task_set *s, const t2_task_item *it, const char *gen,
                       t2_task_score *out) {
    memset(out, 0, sizeof *out);
    if (!s || !it)
        return t2_err_set(T2_EINVAL, "t2_task_score_item: NULL set or item");
    if (!gen)
        gen = "";
    const char *fam = s->fam->name;
    if (s->fam->kind != T2_KIND_REAL) {
        score_synthetic(s, it, gen, out);
        return 0;
    }
    if (!strcmp(fam, "gsm8k")) {
        extract_gsm8k(gen, out->extracted, sizeof out->extracted);
        out->correct = out->extracted[0] && !strcmp(out->extracted, it->target);
        return 0;
    }
    if (!strncmp(fam, "arc-", 4)) {
        char c = extract_choice(gen, it->choices ? it->choices : "ABCD");
        if (c)
            snprintf(out->extracted, sizeof out->extracted, "%c", c);
        out->correct = c && it->target[0] == c && !it->target[1];
        return 0;
    }
    return score_code(s, it, gen, out);
}

/* ---------------------------------------------------------------- self-check */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A wrong answer for an item: a near-miss for the text scorers. */
static void wrong_answer(const t2_task_set *s, const t2_task_item *it, char *buf, size_t cap) {
    const char *fam = s->fam->name;
    if (!strcmp(fam, "gsm8k")) {
        /* the reference text, then a last "####" line with a near-miss: "18" -> "181" */
        snprintf(buf, cap, "%s\n#### %s1", it->answer, it->target);
    } else if (!strncmp(fam, "arc-", 4)) {
        const char *labels = it->choices ? it->choices : "ABCD";
        char w = labels[0] == it->target[0] ? labels[1] : labels[0];
        snprintf(buf, cap, "the answer is (%c)", w);
    } else if (!strcmp(fam, "humaneval")) {
        snprintf(buf, cap, "    return None\n");
    } else {
        snprintf(buf, cap, "def t2_not_the_solution():\n    return None\n");
    }
}

typedef struct check_job {
    t2_task_set *s;
    size_t next, n;
    pthread_mutex_t mu;
    unsigned char *ref_ok, *wrong_ok; /* per row: 1 correct */
    char (*detail)[160];              /* per row: why the reference failed */
    int rc;
    char err[256];
} check_job;

static void *check_worker(void *arg) {
    check_job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next++;
        int stop = j->rc < 0;
        pthread_mutex_unlock(&j->mu);
        if (stop || i >= j->n)
            return NULL;
        const t2_task_item *it = j->s->items[i];
        t2_task_score sc;
        int rc = t2_task_score_item(j->s, it, it->answer, &sc);
        if (rc == 0) {
            j->ref_ok[i] = sc.correct != 0;
            snprintf(j->detail[i], sizeof j->detail[i], "extracted '%.40s' %.100s", sc.extracted,
                     sc.detail);
            size_t wl = strlen(it->answer) + 64;
            char *w = malloc(wl);
            if (!w) {
                rc = t2_err_set(T2_ENOMEM, "out of memory");
            } else {
                wrong_answer(j->s, it, w, wl);
                rc = t2_task_score_item(j->s, it, w, &sc);
                free(w);
                j->wrong_ok[i] = sc.correct != 0;
            }
        }
        if (rc < 0) {
            pthread_mutex_lock(&j->mu);
            if (j->rc == 0) {
                j->rc = rc;
                snprintf(j->err, sizeof j->err, "%s", t2_err_msg());
            }
            pthread_mutex_unlock(&j->mu);
            return NULL;
        }
    }
}

int t2_task_check_real(const char *family, const t2_task_opts *o, size_t limit, int jobs,
                       t2_task_check *out) {
    memset(out, 0, sizeof *out);
    t2_task_opts so = *o;
    so.split = T2_SPLIT_ALL;
    so.n = limit;
    t2_task_set *s;
    double t0 = now_s();
    int rc = t2_task_set_open(&s, family, &so);
    if (rc < 0)
        return rc;
    if (s->fam->kind != T2_KIND_REAL) {
        t2_task_set_destroy(&s);
        return t2_err_set(T2_EINVAL, "%s is not a real data set", family);
    }
    if (jobs < 1)
        jobs = 1;
    if (jobs > 64)
        jobs = 64;
    check_job j = {.s = s, .n = s->n};
    pthread_mutex_init(&j.mu, NULL);
    j.ref_ok = calloc(s->n + 1, 1);
    j.wrong_ok = calloc(s->n + 1, 1);
    j.detail = calloc(s->n + 1, sizeof *j.detail);
    pthread_t th[64];
    int started = 0;
    if (!j.ref_ok || !j.wrong_ok || !j.detail) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
    } else {
        for (; started < jobs - 1; started++)
            if (pthread_create(&th[started], NULL, check_worker, &j) != 0)
                break;
        check_worker(&j);
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        rc = j.rc;
        if (rc < 0)
            t2_err_set(rc, "%s", j.err);
    }
    if (rc == 0) {
        for (size_t i = 0; i < s->n; i++) {
            out->rows++;
            out->ref_correct += j.ref_ok[i];
            out->wrong_rejected += !j.wrong_ok[i];
            if (!j.ref_ok[i] && !out->first_failure[0])
                snprintf(out->first_failure, sizeof out->first_failure, "%.60s: %s",
                         s->items[i]->id, j.detail[i]);
        }
    }
    pthread_mutex_destroy(&j.mu);
    free(j.ref_ok);
    free(j.wrong_ok);
    free(j.detail);
    out->seconds = now_s() - t0;
    t2_task_set_destroy(&s);
    return rc;
}
