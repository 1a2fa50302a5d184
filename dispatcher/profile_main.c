/* t2-profile - write and show task profiles (shared/profile.h), the stored mixtures that
 * `--adapt profile:NAME` requests use.
 *
 *   t2-profile create -o DIR/NAME.gguf --name NAME --mix E1=A1,E2=A2 [--matrix-alpha FILE]
 *                     [--task TASK] [--training TEXT]
 *   t2-profile show FILE
 * --matrix-alpha FILE: n_experts rows of per-matrix α (whitespace-separated numbers; a row per
 * expert in --mix order, one number per adapted matrix in the model's order); the --mix weights
 * are then ignored.
 */
#include "svf/profile.h"
#include "base/args.h"
#include "base/t2_err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: t2-profile create -o OUT.gguf --name NAME --mix E1=A1,E2=A2,...\n"
    "                         [--matrix-alpha FILE] [--task TASK] [--training TEXT]\n"
    "       t2-profile show FILE\n";

static int show(const char *path) {
    t2_profile *p;
    if (t2_profile_load(&p, path) < 0) {
        fprintf(stderr, "t2-profile: %s\n", t2_err_msg());
        return 1;
    }
    printf("profile %s: %d experts, %s\n", p->name, p->n_experts,
           p->n_matrices ? "one alpha per matrix" : "one alpha per expert");
    if (p->task[0]) printf("task: %s\n", p->task);
    if (p->training[0]) printf("training: %s\n", p->training);
    if (p->base_sha256[0]) printf("base sha256: %s\n", p->base_sha256);
    for (int i = 0; i < p->n_experts; i++) {
        if (!p->n_matrices) {
            printf("  %s = %g\n", p->experts[i], (double)p->alpha[i]);
            continue;
        }
        double lo = 1e30, hi = -1e30, sum = 0;
        for (int j = 0; j < p->n_matrices; j++) {
            double a = p->alpha[(size_t)i * p->n_matrices + j];
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
            sum += a;
        }
        printf("  %s: %d matrices, alpha min %g mean %g max %g\n", p->experts[i], p->n_matrices, lo,
               sum / p->n_matrices, hi);
    }
    t2_profile_destroy(&p);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "show")) return show(argv[2]);
    if (argc < 2 || strcmp(argv[1], "create")) {
        fputs(usage, stderr);
        return 2;
    }
    const char *out = NULL, *name = NULL, *mix = NULL, *afile = NULL, *task = "", *training = "";
    const t2_arg flags[] = {{"-o", NULL, &out},           {"--name", NULL, &name},
                            {"--mix", NULL, &mix},         {"--matrix-alpha", NULL, &afile},
                            {"--task", NULL, &task},       {"--training", NULL, &training}};
    int ex = t2_args_main("t2-profile", usage, argc, argv, 2, flags, sizeof flags / sizeof *flags);
    if (ex >= 0) return ex;
    if (!out || !name || !mix) {
        fprintf(stderr, "t2-profile create: -o, --name and --mix are required\n%s", usage);
        return 2;
    }
    char names[T2_PROFILE_MAX_EXPERTS][T2_NAME_MAX + 1];
    float alpha[T2_PROFILE_MAX_EXPERTS];
    int n = 0;
    char *copy = strdup(mix), *save = NULL;
    for (char *it = strtok_r(copy, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(it, '='), *end;
        if (!eq || eq == it || n == T2_PROFILE_MAX_EXPERTS ||
            strlen(it) - strlen(eq) > T2_NAME_MAX) {
            fprintf(stderr, "t2-profile: --mix: '%s' is not NAME=WEIGHT (at most 64)\n", it);
            free(copy);
            return 2;
        }
        *eq = 0;
        errno = 0;
        double v = strtod(eq + 1, &end);
        if (errno || end == eq + 1 || *end || !isfinite(v)) {
            fprintf(stderr, "t2-profile: --mix: weight of '%s' is not a number\n", it);
            free(copy);
            return 2;
        }
        snprintf(names[n], sizeof names[n], "%s", it);
        alpha[n++] = (float)v;
    }
    free(copy);
    float *ma = NULL;
    size_t nma = 0, cap = 0;
    if (afile) {
        FILE *f = fopen(afile, "r");
        if (!f) {
            fprintf(stderr, "t2-profile: %s: %s\n", afile, strerror(errno));
            return 1;
        }
        double v;
        while (fscanf(f, "%lf", &v) == 1) {
            if (nma == cap) {
                cap = cap ? 2 * cap : 1024;
                float *t = realloc(ma, cap * sizeof *t);
                if (!t) break;
                ma = t;
            }
            ma[nma++] = (float)v;
        }
        int bad = !feof(f);
        fclose(f);
        if (bad || !nma || nma % (size_t)n) {
            fprintf(stderr,
                    "t2-profile: %s: expected %d rows of numbers (one per expert), read %zu "
                    "numbers%s\n",
                    afile, n, nma, bad ? " before a non-number" : "");
            free(ma);
            return 1;
        }
    }
    t2_profile *p;
    int rc = t2_profile_new(&p, name, n, afile ? (int)(nma / (size_t)n) : 0);
    if (rc == 0) {
        for (int i = 0; i < n; i++)
            snprintf(p->experts[i], sizeof p->experts[i], "%s", names[i]);
        if (afile)
            memcpy(p->alpha, ma, nma * sizeof *ma);
        else
            memcpy(p->alpha, alpha, (size_t)n * sizeof *alpha);
        free(p->task);
        free(p->training);
        p->task = strdup(task);
        p->training = strdup(training);
        rc = p->task && p->training ? t2_profile_save(p, out)
                                    : t2_err_set(T2_ENOMEM, "out of memory");
        t2_profile_destroy(&p);
    }
    free(ma);
    if (rc < 0) {
        fprintf(stderr, "t2-profile: %s\n", t2_err_msg());
        return 1;
    }
    printf("wrote %s: profile '%s', %d experts\n", out, name, n);
    return 0;
}
