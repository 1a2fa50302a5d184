/* strategy.c - the adaptation strategies of t2 eval (strategy.h). */
#include "strategy.h"

#include "base/t2_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_strategy_init(cli_strategy *s) {
    memset(s, 0, sizeof *s);
    s->kind = CLI_STRAT_NONE;
    s->classifier = "classify";
    /* the dispatcher's default map (deploy/t2.cfg): the TRAIN family serving each category */
    snprintf(s->label_expert[T2_LABEL_CODE], 65, "code");
    snprintf(s->label_expert[T2_LABEL_MATH], 65, "math");
    snprintf(s->label_expert[T2_LABEL_REASONING], 65, "mc");
    s->label_expert[T2_LABEL_OTHER][0] = 0;
}

int cli_strategy_parse(cli_strategy *s, const char *arg) {
    if (!strcmp(arg, "none")) s->kind = CLI_STRAT_NONE;
    else if (!strcmp(arg, "prompt")) s->kind = CLI_STRAT_PROMPT;
    else if (!strcmp(arg, "classifier")) s->kind = CLI_STRAT_CLASSIFIER;
    else if (!strncmp(arg, "profile:", 8) && arg[8]) {
        s->kind = CLI_STRAT_PROFILE;
        s->profile_path = arg + 8;
    } else {
        return t2_err_set(T2_EINVAL, "--strategy: '%s' is not none, prompt, classifier or "
                          "profile:FILE", arg);
    }
    return 0;
}

static int name_ok(const char *s, size_t n) {
    if (n > T2_NAME_MAX) return 0;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
    return !memchr(s, '/', n);
}

int cli_strategy_labels(cli_strategy *s, const char *arg) {
    const char *p = arg;
    if (!*p) return t2_err_set(T2_EINVAL, "--labels: empty (give LABEL=EXPERT,...)");
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return t2_err_set(T2_EINVAL, "--labels: '%.*s' is not LABEL=EXPERT", (int)len, p);
        size_t ll = (size_t)(eq - p), nl = len - ll - 1;
        int label = -1;
        for (int l = 0; l < T2_LABEL_COUNT; l++)
            if (strlen(t2_task_label_name(l)) == ll && !strncmp(p, t2_task_label_name(l), ll))
                label = l;
        if (label < 0)
            return t2_err_set(T2_EINVAL, "--labels: '%.*s' is not a label (code, math, "
                              "reasoning, other)", (int)ll, p);
        if (!name_ok(eq + 1, nl))
            return t2_err_set(T2_EINVAL, "--labels: '%.*s' is not an expert name (at most 64 "
                              "characters, no '/')", (int)nl, eq + 1);
        memcpy(s->label_expert[label], eq + 1, nl);
        s->label_expert[label][nl] = 0;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

/* Index of the loaded expert NAME, loading DIR/NAME.gguf on first use. */
static int get_expert(cli_strategy *s, const cli_adapt *ad, const char *name, const char *what,
                      int *out) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) {
            *out = i;
            return 0;
        }
    if (s->n == CLI_STRAT_MAX_EXPERTS)
        return t2_err_set(T2_ERANGE, "more than %d experts", CLI_STRAT_MAX_EXPERTS);
    int rc = cli_expert_load_named(s->dir, name, ad->factors, what, &s->experts[s->n]);
    if (rc < 0) return rc;
    snprintf(s->names[s->n], sizeof s->names[s->n], "%s", name);
    *out = s->n++;
    return 0;
}

/* Expert i alone (α = 1), built once. */
static int single_adapt(cli_strategy *s, const cli_adapt *ad, int i, t2_pool *pool) {
    if (s->single[i]) return 0;
    const float one = 1.0f;
    t2_mixture mix = {1, (const t2_expert *const *)&s->experts[i], &one, 1, 0};
    return cli_adapt_new(ad, &mix, pool, &s->single[i]);
}

int cli_strategy_setup(cli_strategy *s, const cli_adapt *ad, t2_pool *pool) {
    if (s->kind == CLI_STRAT_NONE) return 0;
    if (!ad->factors)
        return t2_err_set(T2_EINVAL, "--strategy %s needs --factors (made by t2 decompose)",
                          cli_strategy_name(s));
    int rc = cli_experts_dir(ad, s->dir, sizeof s->dir);
    if (rc < 0) return rc;
    if (s->kind == CLI_STRAT_PROMPT || s->kind == CLI_STRAT_CLASSIFIER) {
        for (int l = 0; l < T2_LABEL_COUNT; l++) {
            if (!s->label_expert[l][0]) continue;
            char what[96];
            snprintf(what, sizeof what, "expert for label %s", t2_task_label_name(l));
            int i = 0;
            if ((rc = get_expert(s, ad, s->label_expert[l], what, &i)) < 0 ||
                (rc = single_adapt(s, ad, i, pool)) < 0)
                return rc;
            s->label_adapt[l] = s->single[i];
        }
        if (s->kind == CLI_STRAT_CLASSIFIER) {
            int i = 0;
            if ((rc = get_expert(s, ad, s->classifier, "classifier expert", &i)) < 0 ||
                (rc = single_adapt(s, ad, i, pool)) < 0)
                return rc;
            s->classifier_adapt = s->single[i];
        }
        return 0;
    }
    /* profile */
    if ((rc = t2_profile_load(&s->profile, s->profile_path)) < 0) return rc;
    const t2_profile *p = s->profile;
    if (p->base_sha256[0] && strcmp(p->base_sha256, ad->factors->base_sha256))
        return t2_err_set(T2_EMISMATCH, "%s: profile '%s' was made for another model (base "
                          "sha256 %.12s..., this model %.12s...)", s->profile_path, p->name,
                          p->base_sha256, ad->factors->base_sha256);
    const t2_expert *ex[T2_PROFILE_MAX_EXPERTS];
    for (int k = 0; k < p->n_experts; k++) {
        char what[128];
        snprintf(what, sizeof what, "profile '%s': expert", p->name);
        int i = 0;
        if ((rc = get_expert(s, ad, p->experts[k], what, &i)) < 0) return rc;
        ex[k] = s->experts[i];
    }
    float *alpha = NULL;
    int n_alpha = 0, per_matrix = 0;
    const int slots = ad->factors->n_layers * T2_N_TARGETS;
    if ((rc = t2_profile_mixture_alpha(p, ex[0]->rank, slots, &alpha, &n_alpha, &per_matrix)) < 0)
        return t2_err_prefix(rc, "%s", s->profile_path);
    t2_mixture mix = {p->n_experts, ex, alpha, n_alpha, per_matrix};
    rc = cli_adapt_new(ad, &mix, pool, &s->profile_adapt);
    free(alpha);
    if (rc < 0) return t2_err_prefix(rc, "%s", s->profile_path);
    return 0;
}

void cli_strategy_free(cli_strategy *s) {
    t2_adapt_release(&s->profile_adapt);
    t2_profile_destroy(&s->profile);
    for (int i = 0; i < s->n; i++) {
        t2_adapt_release(&s->single[i]);
        t2_expert_destroy(&s->experts[i]);
    }
    s->n = 0;
    memset((void *)s->label_adapt, 0, sizeof s->label_adapt);
    s->classifier_adapt = NULL;
}

const char *cli_strategy_name(const cli_strategy *s) {
    static const char *const names[] = {"none", "prompt", "classifier", "profile"};
    return names[s->kind];
}

int cli_strategy_two_pass(const cli_strategy *s) {
    return s->kind == CLI_STRAT_PROMPT || s->kind == CLI_STRAT_CLASSIFIER;
}

const char *cli_strategy_label_expert(const cli_strategy *s, t2_task_label l) {
    return s->label_expert[l][0] ? s->label_expert[l] : "base";
}

const char *cli_strategy_describe(const cli_strategy *s, char *buf, size_t cap) {
    size_t n = 0;
    switch (s->kind) {
    case CLI_STRAT_NONE: snprintf(buf, cap, "strategy none"); return buf;
    case CLI_STRAT_PROFILE:
        snprintf(buf, cap, "strategy profile %s (%d experts, %s)",
                 s->profile ? s->profile->name : s->profile_path,
                 s->profile ? s->profile->n_experts : 0,
                 s->profile && s->profile->n_matrices ? "alpha per matrix" : "alpha per expert");
        return buf;
    case CLI_STRAT_PROMPT:
        n = (size_t)snprintf(buf, cap, "strategy prompt (pass 1: base weights, %s)",
                             s->pass1_generate ? "generated" : "scored");
        break;
    case CLI_STRAT_CLASSIFIER:
        n = (size_t)snprintf(buf, cap, "strategy classifier (pass 1: expert %s, %s)",
                             s->classifier, s->pass1_generate ? "generated" : "scored");
        break;
    }
    for (int l = 0; l < T2_LABEL_COUNT && n < cap; l++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", l ? "," : "; labels ",
                              t2_task_label_name(l), cli_strategy_label_expert(s, l));
    return buf;
}
