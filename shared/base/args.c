#include "base/args.h"

#include "base/t2_err.h"

#include <stdio.h>
#include <string.h>

int t2_args_next(int argc, char **argv, int *i, const char **flag, const char **value) {
    if (*i >= argc) return 0;
    const char *a = argv[*i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) return T2_ARGS_HELP;
    if (*i + 1 >= argc) return t2_err_set(T2_EINVAL, "%s: missing value", a);
    *flag = a;
    *value = argv[*i + 1];
    *i += 2;
    return 1;
}

int t2_args_parse(int argc, char **argv, int first, const t2_arg *args, size_t n) {
    const char *flag, *value;
    int rc, i = first;
    while ((rc = t2_args_next(argc, argv, &i, &flag, &value)) == 1) {
        size_t j = 0;
        while (j < n && strcmp(flag, args[j].name) &&
               !(args[j].alias && !strcmp(flag, args[j].alias)))
            j++;
        if (j == n) return t2_err_set(T2_EINVAL, "%s: unknown flag", flag);
        *args[j].value = value;
    }
    return rc;
}

int t2_args_main(const char *prog, const char *usage, int argc, char **argv, int first,
                 const t2_arg *args, size_t n) {
    const int rc = t2_args_parse(argc, argv, first, args, n);
    if (rc == T2_ARGS_HELP) {
        fputs(usage, stdout);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n%s", prog, t2_err_msg(), usage);
        return 2;
    }
    return -1;
}
