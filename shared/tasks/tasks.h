/* tasks.h - T2's task suite: synthetic task families (seeded generators, disjoint splits), the
 * real data sets (GSM8K, ARC, MBPP, HumanEval) as families too, and one scorer per family.
 * docs/TASKS.md describes each family, the cue / ambiguity design and the split rule.
 *
 * An evaluator opens a set (the items of one family and split), gives each item's prompt to
 * a model, and scores what came back:
 *
 *   t2_task_set *s;
 *   t2_task_opts o = {.split = T2_SPLIT_TEST, .n = 200, .seed = 1};
 *   if (t2_task_set_open(&s, "code", &o) < 0) die(t2_err_msg());
 *   for (size_t i = 0; i < t2_task_set_count(s); i++) {
 *       const t2_task_item *it = t2_task_set_item(s, i);
 *       char *gen = generate(model, it->prompt, "\n");  // input: prompt + T2_TASK_SEP
 *       t2_task_score sc;
 *       if (t2_task_score_item(s, it, gen, &sc) < 0) die(t2_err_msg());
 *       correct += sc.correct;
 *   }
 *   t2_task_set_destroy(&s);
 *
 * Text format. A training document is the prompt, "\n", the answer, "\n"; documents are
 * separated by one empty line (so a document is "PROMPT\nANSWER\n\n"). Synthetic prompts and
 * answers are single lines, so at inference the model is given PROMPT "\n" and its answer ends
 * at the next newline; synthetic scorers read the first line of a generation.
 *
 * Synthetic items are identified by their content ("code:312" is the list [3,1,2]): an id
 * alone rebuilds the item, and a hash of it decides the split (80 % train, 10 % validation,
 * 10 % test), so a question never appears in two splits, in any wording (cued or not).
 */
#ifndef T2_TASKS_H
#define T2_TASKS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define T2_TASK_SEP "\n" /* between a prompt and its answer */

/* ARC ships only test files: its test split is every row, and its train and validation splits
 * (for experts, e.g. bench/paper.sh's) are the rows after the first T2_ARC_EVAL_ROWS (10 % of
 * them, by id, validation). Evaluations that must not overlap an expert's training take at most
 * the first T2_ARC_EVAL_ROWS test rows (--n 500). */
#define T2_ARC_EVAL_ROWS 500

typedef enum t2_task_split {
    T2_SPLIT_TRAIN = 0,
    T2_SPLIT_VALIDATION,
    T2_SPLIT_TEST,
    T2_SPLIT_ALL, /* every item (real data sets: all rows; for scoring by id) */
} t2_task_split;

/* The classification categories (docs/DESIGN.md §1: code / math / reasoning / other). */
typedef enum t2_task_label {
    T2_LABEL_CODE = 0,
    T2_LABEL_MATH,
    T2_LABEL_REASONING,
    T2_LABEL_OTHER,
    T2_LABEL_COUNT,
} t2_task_label;

typedef enum t2_task_kind {
    T2_KIND_TRAIN,    /* synthetic; experts are trained on it */
    T2_KIND_TRANSFER, /* synthetic; experts never see it (harder variant of a TRAIN family) */
    T2_KIND_CLASSIFY, /* synthetic classification prompts, answer \boxed{label} */
    T2_KIND_OTHER,    /* synthetic prompts of none of the three kinds (for classification) */
    T2_KIND_REAL,     /* a real data set read from files */
} t2_task_kind;

typedef struct t2_task_family {
    const char *name; /* "math", "code-hard", "gsm8k", ... */
    t2_task_kind kind;
    t2_task_label label; /* the category its prompts belong to (CLASSIFY: OTHER, unused) */
    const char *expert;  /* the TRAIN family whose expert serves it ("math"), or NULL */
    const char *summary; /* one line */
} t2_task_family;

size_t t2_task_family_count(void);
const t2_task_family *t2_task_family_at(size_t i);           /* NULL past the end */
const t2_task_family *t2_task_family_find(const char *name); /* NULL if unknown */

const char *t2_task_split_name(t2_task_split s);            /* "train", "validation", "test", "all" */
int t2_task_split_parse(const char *s, t2_task_split *out); /* T2_EINVAL on an unknown name */
const char *t2_task_label_name(t2_task_label l);  /* "code", "math", "reasoning", "other" */
const char *t2_task_kind_name(t2_task_kind k);    /* "train", "transfer", ... */

/* One item. All strings are owned by the set and live until t2_task_set_destroy. */
typedef struct t2_task_item {
    const char *id;     /* stable id, "<family>:<content>" ("math:2.5.12.3", "gsm8k:test:17") */
    const char *prompt; /* what the model is given (then T2_TASK_SEP); no trailing newline */
    const char *answer; /* the reference answer as a training document writes it */
    const char *target; /* what the scorer compares the extracted answer with ("15", "B") */
    t2_task_split split;
    t2_task_label label; /* category of the prompt */
    /* real code families (NULL otherwise): the program run is
     * code_prefix + candidate code + "\n\n" + code_tests */
    const char *code_prefix;
    const char *code_tests;
    const char *choices; /* ARC: the choice labels in order, e.g. "ABCD"; NULL otherwise */
    const char *choice_text; /* ARC: the choices' texts in that order, one per line (a newline
                              * inside a text became a space); NULL otherwise */
} t2_task_item;

typedef struct t2_task_opts {
    t2_task_split split;       /* which split */
    size_t n;             /* synthetic: number of distinct items (required > 0 unless ALL);
                           * real: first n rows of the split, 0 = all */
    uint64_t seed;        /* synthetic generators */
    const char *data_dir; /* real data: folder with gsm8k/ arc/ mbpp/ humaneval/. NULL:
                           * $T2_DATA, else $T2_ASSETS/data, else ../shared/assets/data */
    double timeout_s;     /* code scoring: sandbox wall-clock limit per program (0: 10 s) */
    size_t mem_bytes;     /* code scoring: sandbox memory limit (0: 1 GiB) */
} t2_task_opts;

typedef struct t2_task_set t2_task_set;

/* Open the items of a family and split. Synthetic: n distinct items drawn with the seed
 * (T2_ERANGE if the split has fewer distinct items; with T2_SPLIT_ALL and n = 0 the set
 * starts empty and t2_task_set_find() rebuilds items from ids). Real: the rows of the split
 * (T2_ENOTFOUND if the data set has no such split, or its file is missing; T2_EFORMAT naming
 * FILE:LINE for a bad row). */
int t2_task_set_open(t2_task_set **out, const char *family, const t2_task_opts *o);
void t2_task_set_destroy(t2_task_set **s); /* takes NULL; sets *s to NULL */

const t2_task_family *t2_task_set_family(const t2_task_set *s);
size_t t2_task_set_count(const t2_task_set *s);
const t2_task_item *t2_task_set_item(const t2_task_set *s, size_t i);
/* The item with this id: synthetic ids are decoded (and added to the set), real ids looked
 * up. T2_ENOTFOUND if there is no such item. The pointer lives as long as the set. */
int t2_task_set_find(t2_task_set *s, const char *id, const t2_task_item **out);

/* Controls for evaluation (docs/RESULTS.md): the prompts of an open set, rewritten in place.
 * t2_task_set_cue: every item's prompt becomes its cued prompt for the target reading (the cue
 * the family prompt leaves out, docs/TASKS.md section 1: the upper bound of what an expert can
 * surface); T2_EINVAL naming the family when it has no cued readings (v2, real data).
 * t2_task_set_add_shots: every prompt is preceded by the training documents of the first k items
 * of `shots` ("PROMPT\nANSWER\n\n" each, the pretraining format): few-shot prompting, with no
 * adaptation. T2_EINVAL if `shots` has fewer than k items or shares an id with the set. */
int t2_task_set_cue(t2_task_set *s);
int t2_task_set_add_shots(t2_task_set *s, const t2_task_set *shots, size_t k);

typedef struct t2_task_score {
    int correct;         /* 1: the scorer accepts the generation */
    char extracted[128]; /* the answer read from the generation ("" if none); truncated */
    char detail[192];    /* code families: sandbox outcome and the last output line */
} t2_task_score;

/* Score a generation (the text the model produced after prompt + T2_TASK_SEP). Returns 0 with
 * *out filled, or a negative code if scoring itself failed (e.g. the sandbox could not run).
 * Thread-safe: several threads may score items of one set at once (code families then run
 * their sandboxes in parallel), as long as no thread calls t2_task_set_find meanwhile. */
int t2_task_score_item(const t2_task_set *s, const t2_task_item *it, const char *generation,
                       t2_task_score *out);

/* A training document: "PROMPT\nANSWER\n\n" into buf (NUL-terminated, truncated to cap).
 * Returns the full length, like snprintf. */
size_t t2_task_render_doc(const t2_task_item *it, char *buf, size_t cap);

/* Classification (pass 1 of two-pass inference). The prompt for a question is
 * "Classify: QUESTION" (written to buf like snprintf); the generation's first \boxed{...}
 * gives the label: T2_ENOTFOUND if there is none or it names no category. */
size_t t2_task_classify_prompt(const char *question, char *buf, size_t cap);
int t2_task_classify_parse(const char *generation, t2_task_label *out);

/* Write documents to f, as text (see above) or as JSON Lines
 * {"id","family","prompt","answer"}.
 *   family: a family name or "all" (every synthetic family, mixed by the weights in
 *   docs/TASKS.md); pretrain = 0: each document is a family item with its target answer
 *   (one family: n distinct items; "all": n items drawn with replacement);
 *   pretrain = 1: the pretraining mixture: cued and uncued prompts of train-split (or the
 *   given split's) cores, uncued ones answered by either reading at random (synthetic only). */
typedef struct t2_task_dump_opts {
    const char *family;
    t2_task_split split;
    size_t n;
    uint64_t seed;
    int pretrain;
    int jsonl;
    const char *data_dir;
} t2_task_dump_opts;
int t2_task_dump(FILE *f, const t2_task_dump_opts *o);

/* Reference self-check of a real data set: every row's reference answer must score correct
 * and a wrong answer must score wrong. limit > 0 checks only the first `limit` rows; `jobs`
 * rows are scored at once (code families: that many sandboxes in parallel). */
typedef struct t2_task_check {
    size_t rows;           /* rows checked */
    size_t ref_correct;    /* reference answers accepted */
    size_t wrong_rejected; /* wrong answers rejected */
    double seconds;
    char first_failure[256]; /* id and detail of the first reference answer rejected */
} t2_task_check;
int t2_task_check_real(const char *family, const t2_task_opts *o, size_t limit, int jobs,
                       t2_task_check *out);

#endif
