/* tasks_real.c - loaders for the real data sets (GSM8K, ARC, MBPP, HumanEval) as task sets.
 *
 * Files (under the data folder): gsm8k/{train,test}.jsonl, arc/ARC-{Easy,Challenge}-Test.jsonl,
 * mbpp/mbpp.jsonl, humaneval/HumanEval.jsonl.gz. A gzip file is decompressed by running
 * `gzip -dc` (zlib is not one of T2's dependencies; gzip is on every Debian system).
 * Every row is validated; a bad one fails the load with "FILE:LINE: what is wrong".
 */
#include "base/json.h"
#include "tasks/sandbox.h"
#include "base/t2_err.h"
#include "base/buf.h"
#include "tasks/tasks_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct load_ctx {
    t2_task_set *s;
    const char *tag;     /* "test" / "train" for gsm8k ids */
    t2_task_split file_split; /* the split this file's rows belong to (gsm8k train: by hash) */
    size_t added;
} load_ctx;

static int want(const t2_task_set *s, t2_task_split sp) {
    return s->opts.split == T2_SPLIT_ALL || s->opts.split == sp;
}
static int full(const t2_task_set *s) { return s->opts.n && s->n >= s->opts.n; }

static int need_str(const json_t *row, const char *key, const char **out) {
    const json_t *v = json_object_get(row, key);
    if (!v)
        return t2_err_set(T2_EFORMAT, "missing field \"%s\"", key);
    if (!json_is_string(v))
        return t2_err_set(T2_EFORMAT, "field \"%s\" is a %s, not a string", key,
                          t2_json_type_name(v));
    if (strlen(json_string_value(v)) != json_string_length(v))
        return t2_err_set(T2_EFORMAT, "field \"%s\" contains a NUL character", key);
    *out = json_string_value(v);
    return 0;
}

/* A growable string whose appends do not fail one by one: an out-of-memory sticks in oom. */
typedef struct sbuf {
    t2_buf t;
    int oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n) {
    if (!b->oom && t2_buf_add(&b->t, s, n) < 0) b->oom = 1;
}
static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }
/* append with "\r\n" -> "\n" */
static void sb_add_lf(sbuf *b, const char *s) {
    for (const char *p = s; *p;) {
        const char *q = strstr(p, "\r\n");
        if (!q) {
            sb_add(b, p);
            break;
        }
        sb_addn(b, p, (size_t)(q - p));
        sb_add(b, "\n");
        p = q + 2;
    }
}

/* ---------------------------------------------------------------- GSM8K */

/* The number after the last "####" of a reference answer, canonical. */
static int gsm8k_target(const char *answer, char *out, size_t cap) {
    const char *p = NULL;
    for (const char *q = strstr(answer, "####"); q; q = strstr(q + 4, "####"))
        p = q;
    if (!p)
        return t2_err_set(T2_EFORMAT, "answer has no '#### N' line");
    p += 4;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = 0;
    while (p[n] && p[n] != '\n' && p[n] != '\r')
        n++;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (t2_num_canon(p, n, out, cap) < 0)
        return t2_err_set(T2_EFORMAT, "answer ends with '#### %.*s', not a number",
                          (int)(n > 40 ? 40 : n), p);
    return 0;
}

static int gsm8k_row(void *vctx, const json_t *row, size_t line) {
    load_ctx *c = vctx;
    if (full(c->s))
        return 1;
    const char *q, *a;
    int rc;
    if ((rc = need_str(row, "question", &q)) < 0 || (rc = need_str(row, "answer", &a)) < 0)
        return rc;
    char target[64];
    if ((rc = gsm8k_target(a, target, sizeof target)) < 0)
        return rc;
    t2_task_split sp = c->file_split;
    if (sp == T2_SPLIT_TRAIN) /* train.jsonl: 10 % of its rows (by question hash) validate */
        sp = t2_hash64(q, strlen(q), 0x67736dull) % 10 == 0 ? T2_SPLIT_VALIDATION : T2_SPLIT_TRAIN;
    if (!want(c->s, sp))
        return 0;
    char id[64];
    snprintf(id, sizeof id, "gsm8k:%s:%zu", c->tag, line);
    t2_task_item it = {
        .id = id, .prompt = q, .answer = a, .target = target, .split = sp, .label = T2_LABEL_MATH};
    return t2_tset_add(c->s, &it);
}

/* ---------------------------------------------------------------- ARC */

static int arc_row(void *vctx, const json_t *row, size_t line) {
    load_ctx *c = vctx;
    if (full(c->s))
        return 1;
    const char *rid, *key, *stem;
    int rc;
    if ((rc = need_str(row, "id", &rid)) < 0 || (rc = need_str(row, "answerKey", &key)) < 0)
        return rc;
    /* train / validation: the rows after the first T2_ARC_EVAL_ROWS, 10 % (by id) validation */
    t2_task_split sp = T2_SPLIT_TEST;
    if (c->s->opts.split == T2_SPLIT_TRAIN || c->s->opts.split == T2_SPLIT_VALIDATION) {
        if (line <= T2_ARC_EVAL_ROWS)
            return 0;
        sp = t2_hash64(rid, strlen(rid), 0x617263ull) % 10 == 0 ? T2_SPLIT_VALIDATION
                                                                : T2_SPLIT_TRAIN;
        if (sp != c->s->opts.split)
            return 0;
    }
    const json_t *q = json_object_get(row, "question");
    if (!json_is_object(q))
        return t2_err_set(T2_EFORMAT, "field \"question\" is missing or not an object");
    if ((rc = need_str(q, "stem", &stem)) < 0)
        return t2_err_prefix(rc, "question");
    const json_t *ch = json_object_get(q, "choices");
    if (!json_is_array(ch))
        return t2_err_set(T2_EFORMAT, "field \"question.choices\" is missing or not an array");
    size_t n_ch = json_array_size(ch);
    if (n_ch < 2 || n_ch > 8)
        return t2_err_set(T2_EFORMAT, "question.choices has %zu entries (want 2..8)", n_ch);
    sbuf b = {0}, ct = {0};
    char labels[9];
    sb_add(&b, stem);
    for (size_t i = 0; i < n_ch; i++) {
        const json_t *e = json_array_get(ch, i);
        const char *text, *label;
        if (!json_is_object(e)) {
            free(b.t.data);
            free(ct.t.data);
            return t2_err_set(T2_EFORMAT, "question.choices[%zu] is not an object", i);
        }
        if ((rc = need_str(e, "text", &text)) < 0 || (rc = need_str(e, "label", &label)) < 0) {
            free(b.t.data);
            free(ct.t.data);
            return t2_err_prefix(rc, "question.choices[%zu]", i);
        }
        char l = label[0];
        if (!l || label[1] || !((l >= 'A' && l <= 'Z') || (l >= '1' && l <= '9'))) {
            free(b.t.data);
            free(ct.t.data);
            return t2_err_set(T2_EFORMAT,
                              "question.choices[%zu].label \"%.20s\" is not one "
                              "letter or digit",
                              i, label);
        }
        if (memchr(labels, l, i)) {
            free(b.t.data);
            free(ct.t.data);
            return t2_err_set(T2_EFORMAT, "question.choices: label '%c' appears twice", l);
        }
        labels[i] = l;
        char head[8];
        snprintf(head, sizeof head, "\n%c) ", l);
        sb_add(&b, head);
        sb_add(&b, text);
        if (i) sb_add(&ct, "\n");
        for (const char *p = text; *p; p++) sb_addn(&ct, *p == '\n' || *p == '\r' ? " " : p, 1);
    }
    labels[n_ch] = 0;
    if (b.oom || ct.oom || !ct.t.data) {
        free(b.t.data);
        free(ct.t.data);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    if (!key[0] || key[1] || !strchr(labels, key[0])) {
        free(b.t.data);
        free(ct.t.data);
        return t2_err_set(T2_EFORMAT, "answerKey \"%.20s\" is not one of the labels %s", key,
                          labels);
    }
    char id[160], ans[32];
    snprintf(id, sizeof id, "%s:%.120s", c->s->fam->name, rid);
    snprintf(ans, sizeof ans, "the answer is (%c)", key[0]);
    t2_task_item it = {.id = id,
                       .prompt = b.t.data,
                       .answer = ans,
                       .target = key,
                       .split = sp,
                       .label = T2_LABEL_REASONING,
                       .choices = labels,
                       .choice_text = ct.t.data};
    rc = t2_tset_add(c->s, &it);
    free(b.t.data);
    free(ct.t.data);
    return rc;
}

/* ---------------------------------------------------------------- MBPP */

static int mbpp_row(void *vctx, const json_t *row, size_t line) {
    (void)line;
    load_ctx *c = vctx;
    if (full(c->s))
        return 1;
    const char *text, *code, *setup = "";
    int rc;
    if ((rc = need_str(row, "text", &text)) < 0 || (rc = need_str(row, "code", &code)) < 0)
        return rc;
    if (json_object_get(row, "test_setup_code") &&
        (rc = need_str(row, "test_setup_code", &setup)) < 0)
        return rc;
    const json_t *tid = json_object_get(row, "task_id"), *tl = json_object_get(row, "test_list");
    double tnum = json_number_value(tid);
    if (!json_is_number(tid) || tnum < 0 || tnum > 1e9 || tnum != (double)(long)tnum)
        return t2_err_set(T2_EFORMAT, "field \"task_id\" is missing or not a whole number");
    if (!json_is_array(tl) || json_array_size(tl) == 0)
        return t2_err_set(T2_EFORMAT, "field \"test_list\" is missing, empty or not an array");
    long id_num = (long)tnum;
    /* the MBPP paper's splits: 11-510 test, 511-600 validation, 601-974 train, 1-10 prompts */
    t2_task_split sp = id_num >= 11 && id_num <= 510    ? T2_SPLIT_TEST
                  : id_num >= 511 && id_num <= 600 ? T2_SPLIT_VALIDATION
                  : id_num >= 601                  ? T2_SPLIT_TRAIN
                                                   : T2_SPLIT_ALL; /* few-shot prompts */
    if (!(c->s->opts.split == T2_SPLIT_ALL || sp == c->s->opts.split))
        return 0;
    sbuf prompt = {0}, tests = {0}, ans = {0};
    sb_add(&prompt, text);
    sb_add(&prompt, "\nYour code should pass these tests:");
    sb_add_lf(&tests, setup);
    sb_add(&tests, "\n");
    for (size_t i = 0; i < json_array_size(tl); i++) {
        const json_t *t = json_array_get(tl, i);
        const char *ts = json_string_value(t);
        if (!ts || strlen(ts) != json_string_length(t)) {
            free(prompt.t.data);
            free(tests.t.data);
            return t2_err_set(T2_EFORMAT, "test_list[%zu] is not a string", i);
        }
        sb_add(&prompt, "\n");
        sb_add_lf(&prompt, ts);
        sb_add_lf(&tests, ts);
        sb_add(&tests, "\n");
    }
    sb_add_lf(&ans, code);
    rc = 0;
    if (prompt.oom || tests.oom || ans.oom) {
        rc = t2_err_set(T2_ENOMEM, "out of memory");
    } else {
        char id[32];
        snprintf(id, sizeof id, "mbpp:%ld", id_num);
        t2_task_item it = {.id = id,
                           .prompt = prompt.t.data,
                           .answer = ans.t.data,
                           .target = "pass",
                           .split = sp,
                           .label = T2_LABEL_CODE,
                           .code_prefix = "",
                           .code_tests = tests.t.data};
        rc = t2_tset_add(c->s, &it);
    }
    free(prompt.t.data);
    free(tests.t.data);
    free(ans.t.data);
    return rc;
}

/* ---------------------------------------------------------------- HumanEval */

static int humaneval_row(void *vctx, const json_t *row, size_t line) {
    (void)line;
    load_ctx *c = vctx;
    if (full(c->s))
        return 1;
    const char *tid, *prompt, *sol, *test, *entry;
    int rc;
    if ((rc = need_str(row, "task_id", &tid)) < 0 || (rc = need_str(row, "prompt", &prompt)) < 0 ||
        (rc = need_str(row, "canonical_solution", &sol)) < 0 ||
        (rc = need_str(row, "test", &test)) < 0 || (rc = need_str(row, "entry_point", &entry)) < 0)
        return rc;
    for (const char *p = entry; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return t2_err_set(T2_EFORMAT, "entry_point \"%.40s\" is not a Python name", entry);
    if (!*entry)
        return t2_err_set(T2_EFORMAT, "entry_point is empty");
    sbuf tests = {0};
    sb_add(&tests, test);
    sb_add(&tests, "\n\ncheck(");
    sb_add(&tests, entry);
    sb_add(&tests, ")\n");
    if (tests.oom)
        return t2_err_set(T2_ENOMEM, "out of memory");
    char id[160];
    snprintf(id, sizeof id, "humaneval:%.140s", tid);
    t2_task_item it = {.id = id,
                       .prompt = prompt,
                       .answer = sol,
                       .target = "pass",
                       .split = T2_SPLIT_TEST,
                       .label = T2_LABEL_CODE,
                       .code_prefix = prompt,
                       .code_tests = tests.t.data};
    rc = t2_tset_add(c->s, &it);
    free(tests.t.data);
    return rc;
}

/* ---------------------------------------------------------------- files */

static int read_rows(t2_task_set *s, const char *rel, t2_jsonl_fn fn, load_ctx *c) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", s->data_dir, rel);
    if (access(path, R_OK) < 0)
        return t2_err_set(T2_ENOTFOUND,
                          "%s: %s (the %s data set; set T2_ASSETS or T2_DATA, or pass --data)",
                          path, strerror(errno), s->fam->name);
    size_t pl = strlen(path);
    if (pl > 3 && !strcmp(path + pl - 3, ".gz")) {
        static const char *const gz[] = {"/usr/bin/gzip", "/bin/gzip"};
        const char *g = access(gz[0], X_OK) == 0 ? gz[0] : gz[1];
        char *argv[] = {(char *)g, "-dc", "--", path, NULL};
        char *buf;
        size_t len;
        int rc = t2_run_capture(argv, (size_t)1 << 30, &buf, &len);
        if (rc < 0)
            return t2_err_prefix(rc, "%s: cannot decompress", path);
        rc = t2_jsonl_parse(path, buf, len, fn, c);
        free(buf);
        return rc < 0 ? rc : 0;
    }
    int rc = t2_jsonl_read(path, fn, c);
    return rc < 0 ? rc : 0;
}

int t2_real_load(t2_task_set *s) {
    const char *nm = s->fam->name;
    t2_task_split sp = s->opts.split;
    load_ctx c = {.s = s};
    int rc = 0;
    if (!strcmp(nm, "gsm8k")) {
        if (sp == T2_SPLIT_TRAIN || sp == T2_SPLIT_VALIDATION || sp == T2_SPLIT_ALL) {
            c.tag = "train";
            c.file_split = T2_SPLIT_TRAIN;
            if ((rc = read_rows(s, "gsm8k/train.jsonl", gsm8k_row, &c)) < 0)
                return rc;
        }
        if (sp == T2_SPLIT_TEST || sp == T2_SPLIT_ALL) {
            c.tag = "test";
            c.file_split = T2_SPLIT_TEST;
            rc = read_rows(s, "gsm8k/test.jsonl", gsm8k_row, &c);
        }
        return rc;
    }
    if (!strcmp(nm, "mbpp"))
        return read_rows(s, "mbpp/mbpp.jsonl", mbpp_row, &c);
    if (!strncmp(nm, "arc-", 4)) {
        rc = read_rows(s, !strcmp(nm, "arc-easy") ? "arc/ARC-Easy-Test.jsonl"
                                                  : "arc/ARC-Challenge-Test.jsonl",
                       arc_row, &c);
        if (rc == 0 && s->n == 0 && (sp == T2_SPLIT_TRAIN || sp == T2_SPLIT_VALIDATION))
            return t2_err_set(T2_ENOTFOUND, "%s has no %s rows: its train and validation splits "
                              "are the test file's rows after the first %d", nm,
                              t2_task_split_name(sp), T2_ARC_EVAL_ROWS);
        return rc;
    }
    /* test-only data sets */
    if (sp != T2_SPLIT_TEST && sp != T2_SPLIT_ALL)
        return t2_err_set(T2_ENOTFOUND, "%s has only a test split (asked for %s)", nm,
                          t2_task_split_name(sp));
    if (!strcmp(nm, "humaneval"))
        return read_rows(s, "humaneval/HumanEval.jsonl.gz", humaneval_row, &c);
    return t2_err_set(T2_EINTERNAL, "%s: no loader", nm);
}
