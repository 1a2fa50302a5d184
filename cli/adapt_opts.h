/* adapt_opts.h - the SVF options shared by t2 run / logits / perplexity:
 *   --factors F.gguf  --expert E.gguf | --mix NAME=A,NAME=A [--experts DIR]  --apply merged|factored
 *   --merged-type f32|f16|bf16|q8_0  --apply lowrank [--lowrank R]
 */
#ifndef T2_CLI_ADAPT_OPTS_H
#define T2_CLI_ADAPT_OPTS_H

#include "engine/model.h"
#include "base/pool.h"
#include "svf/svf.h"

typedef struct cli_adapt {
    const char *factors_path, *expert_path, *mix, *experts_dir;
    int mode;              /* T2_APPLY_* */
    t2_dtype merged_type;  /* W' storage in merged mode (--merged-type; 0 = F32) */
    int lowrank;           /* directions kept in low-rank mode (--lowrank; 0 = 32) */
    /* results */
    t2_factors *factors;
    t2_expert **experts;
    int n_experts;
    float *alpha;
    t2_adapt *adapt;
} cli_adapt;

/* getopt_long entries for the options (value = 0x100 + index); parse one; 1 if handled, 0 if not
 * ours, -1 on a bad value (message printed). */
#define CLI_ADAPT_OPTIONS                                                                     \
    {"factors", required_argument, 0, 0x100}, {"expert", required_argument, 0, 0x101},        \
        {"mix", required_argument, 0, 0x102}, {"experts", required_argument, 0, 0x103},      \
        {"apply", required_argument, 0, 0x104}, {"merged-type", required_argument, 0, 0x105}, \
        {"lowrank", required_argument, 0, 0x106}
#define CLI_ADAPT_HELP                                                                        \
    "  --factors F.gguf       SVD factors of the model (t2 decompose), for the options below\n" \
    "  --expert E.gguf        apply one SVF expert\n"                                           \
    "  --mix NAME=A,...       apply a mixture of experts by name, one weight A each\n"          \
    "  --experts DIR          where --mix finds NAME.gguf (default: the factors' folder)\n"     \
    "  --apply MODE           merged (W' formed once; default), factored (U(s'(V^T x))) or\n" \
    "                         lowrank (the base weights, quantized or not, plus the expert's\n"\
    "                         difference U diag(s'-s) V^T on its R strongest directions;\n"   \
    "                         R (rows + cols + 1) floats per matrix; the truncation error is\n"\
    "                         printed)\n"                                                       \
    "  --lowrank R            directions kept by --apply lowrank (default 32; implies it)\n"   \
    "  --merged-type T        how merged W' is stored: f32 (4 bytes per targeted weight;\n"  \
    "                         default), f16 or bf16 (2 bytes), q8_0 (1.0625 bytes)\n"
int cli_adapt_opt(cli_adapt *o, const char *cmd, int c, const char *arg);
/* Load factors and experts and resolve the mixture (no-op without --factors/--expert/--mix).
 * Returns 0 or a T2_E code with the message set. */
int cli_adapt_setup(cli_adapt *o, t2_model *m, t2_pool *pool);
/* The adaptation of mix in o's mode (merged type, low-rank rank); low-rank prints its truncation
 * error on stderr. */
int cli_adapt_new(const cli_adapt *o, const t2_mixture *mix, t2_pool *pool, t2_adapt **out);
void cli_adapt_free(cli_adapt *o);
/* "base" or a short description of the mixture, into buf. */
const char *cli_adapt_describe(const cli_adapt *o, char *buf, size_t cap);

/* The folder where experts are found by name: --experts DIR, else the factors' folder. Into buf;
 * T2_ENOTFOUND (message naming it) if it is not a folder. */
int cli_experts_dir(const cli_adapt *o, char *buf, size_t cap);
/* Load the expert DIR/NAME.gguf, checked against the factors. `what` says what it is for in the
 * messages ("expert 'mc' for label reasoning not found (no DIR/mc.gguf)"); NULL: "expert". A
 * name with '/' or "." / ".." is refused (T2_EINVAL). */
int cli_expert_load_named(const char *dir, const char *name, const t2_factors *f,
                          const char *what, t2_expert **out);

#endif
