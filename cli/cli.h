/* cli.h - the `t2` command line: one function per sub-command and the helpers they share. */
#ifndef T2_CLI_H
#define T2_CLI_H

#include <stddef.h>
#include <stdint.h>

/* Sub-commands: argv[0] is the sub-command's name. Return the process exit code. */
int t2_cmd_run(int argc, char **argv);
int t2_cmd_logits(int argc, char **argv);
int t2_cmd_perplexity(int argc, char **argv);
int t2_cmd_convert(int argc, char **argv);
int t2_cmd_init(int argc, char **argv);
int t2_cmd_train(int argc, char **argv);
int t2_cmd_eval(int argc, char **argv);
int t2_cmd_adapt(int argc, char **argv);
int t2_cmd_tasks(int argc, char **argv);
int t2_cmd_decompose(int argc, char **argv);
int t2_cmd_expert(int argc, char **argv);
int t2_cmd_submit(int argc, char **argv);
int t2_cmd_keygen(int argc, char **argv);
int t2_cmd_tokenize(int argc, char **argv);
int t2_cmd_svf(int argc, char **argv);
int t2_cmd_chat(int argc, char **argv);

/* `t2 run --chat`: the prompt as one user message rendered by the chat template (tmpl_arg:
 * a file, a tokenizer_config.json or a name; NULL: the GGUF's tokenizer.chat_template), with
 * the generation prompt and without a leading bos_token text (*bos: it had one). tok (may be
 * NULL) gives bos_token / eos_token texts to templates without their own. *out is malloc'd. */
struct t2_model;
struct t2_tokenizer;
int cli_chat_prompt(const struct t2_model *m, const struct t2_tokenizer *tok,
                    const char *tmpl_arg, const char *prompt, char **out, int *bos);

/* Option values, validated: on a bad value they print "t2 CMD: OPT: 'VAL' is not ..." and
 * return -1. */
int cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
/* --kv-type f16|q8_0|f32 into *out (a t2_dtype); 0, or 2 after the usage message. */
int cli_kv_type(const char *cmd, const char *s, int *out);
int cli_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int cli_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out);
/* Read a text file (at most 1 GiB, no NUL bytes) into a NUL-terminated buffer the caller frees;
 * len may be NULL. Returns 0 or a T2_E code with a message naming the file. */
int cli_read_text(const char *path, char **out, size_t *len);
/* An SVG line plot of one or more series (x, y arrays of n points; non-finite points skipped;
 * a legend when there are several). Returns 0 or T2_EIO with the message set. */
typedef struct cli_series {
    const char *name, *color;
    const double *x, *y;
    int n;
} cli_series;
int cli_plot_svg(const char *path, const char *title, const char *xlabel, const char *ylabel,
                 const cli_series *s, int n_series);
/* A duration for an ETA: "42s", "3m07s", "2h05m" or "?". */
void cli_fmt_time(char *buf, size_t n, double s);
/* Print "t2 CMD: <t2_err_msg()>" and return 1. */
int cli_fail(const char *cmd);
/* Print "t2 CMD: <fmt...>" plus "(see t2 CMD --help)" and return 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
