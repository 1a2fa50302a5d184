/* wk_classify.c - the classification prompt and its label (shared/tasks.h). Kept apart from
 * the rest of the worker because tasks.h's `t2_split` enum and pool.h's t2_split() clash. */
#include "tasks/tasks.h"

#include <stdio.h>
#include <string.h>

/* "Classify: QUESTION\n" into buf (cap bytes); the length, as snprintf. */
size_t wk_classify_prompt(const char *question, char *buf, size_t cap) {
    size_t n = t2_task_classify_prompt(question, buf, cap);
    if (n < cap) snprintf(buf + n, cap - n, "%s", T2_TASK_SEP);
    return n + strlen(T2_TASK_SEP);
}

/* The label named by a classification's \boxed{...}; "other" when there is none. */
const char *wk_classify_label(const char *generation) {
    t2_task_label lb = T2_LABEL_OTHER;
    if (t2_task_classify_parse(generation, &lb) < 0) lb = T2_LABEL_OTHER;
    return t2_task_label_name(lb);
}
