/* args.h - the flag loop of the daemons (t2-router, t2-dispatcher, t2-worker, t2-profile), whose
 * flags all take one value: "--flag VALUE ...", with --help or -h anywhere. */
#ifndef T2_ARGS_H
#define T2_ARGS_H

#include <stddef.h>

#define T2_ARGS_HELP 2 /* --help or -h was given */

/* The next "FLAG VALUE" pair of argv from *i (start at the first flag's index): 1 with *flag and
 * *value set and *i moved past them; 0 at the end; T2_ARGS_HELP; or T2_EINVAL with the message
 * "FLAG: missing value" when FLAG is last. */
int t2_args_next(int argc, char **argv, int *i, const char **flag, const char **value);

/* A flag of a table for t2_args_parse: its value (the last one given) goes to *value. */
typedef struct t2_arg {
    const char *name;  /* "--config" */
    const char *alias; /* "-c", or NULL */
    const char **value;
} t2_arg;

/* Every pair of argv[first..argc) into the table args[0..n): 0, T2_ARGS_HELP, or T2_EINVAL with
 * the message "FLAG: unknown flag" or "FLAG: missing value". */
int t2_args_parse(int argc, char **argv, int first, const t2_arg *args, size_t n);

/* t2_args_parse for a main: -1 when the flags are good (go on), else the exit code after
 * printing: 0 for --help (usage on stdout), 2 for a bad flag ("PROG: FLAG: problem" and the usage
 * on stderr). */
int t2_args_main(const char *prog, const char *usage, int argc, char **argv, int first,
                 const t2_arg *args, size_t n);

#endif
