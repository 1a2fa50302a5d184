#include "adapt_opts.h"

#include "cli.h"
#include "base/t2_err.h"
#include "base/t2_limits.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_adapt_opt(cli_adapt *o, const char *cmd, int c, const char *arg) {
    switch (c) {
    case 0x100: o->factors_path = arg; return 1;
    case 0x101: o->expert_path = arg; return 1;
    case 0x102: o->mix = arg; return 1;
    case 0x103: o->experts_dir = arg; return 1;
    case 0x104:
        if (!strcmp(arg, "merged")) o->mode = T2_APPLY_MERGED;
        else if (!strcmp(arg, "factored")) o->mode = T2_APPLY_FACTORED;
        else if (!strcmp(arg, "lowrank")) o->mode = T2_APPLY_LOWRANK;
        else {
            fprintf(stderr, "t2 %s: --apply: '%s' is not merged, factored or lowrank\n", cmd,
                    arg);
            return -1;
        }
        return 1;
    case 0x106: {
        char *end;
        errno = 0;
        long r = strtol(arg, &end, 10);
        if (errno || *end || end == arg || r < 1 || r > 1 << 20) {
            fprintf(stderr, "t2 %s: --lowrank: '%s' is not a number of directions >= 1\n", cmd,
                    arg);
            return -1;
        }
        o->lowrank = (int)r;
        o->mode = T2_APPLY_LOWRANK;
        return 1;
    }
    case 0x105:
        if (t2_dtype_parse(arg, &o->merged_type) < 0 || !t2_adapt_merged_type_ok(o->merged_type)) {
            fprintf(stderr, "t2 %s: --merged-type: '%s' is not f32, f16, bf16 or q8_0\n", cmd, arg);
            return -1;
        }
        return 1;
    }
    return 0;
}

static int load_expert(cli_adapt *o, const char *path) {
    t2_expert *e;
    int rc = t2_expert_load(&e, path, o->factors);
    if (rc < 0) return rc;
    o->experts[o->n_experts++] = e;
    return 0;
}

/* Parse "NAME=A,NAME=A" and load DIR/NAME.gguf for each. */
static int load_mix(cli_adapt *o) {
    char dirbuf[4096];
    const char *dir = o->experts_dir;
    if (!dir) {
        snprintf(dirbuf, sizeof dirbuf, "%s", o->factors_path);
        dir = dirname(dirbuf);
    }
    size_t n = 1;
    for (const char *p = o->mix; *p; p++) n += *p == ',';
    o->experts = calloc(n, sizeof *o->experts);
    o->alpha = calloc(n, sizeof *o->alpha);
    if (!o->experts || !o->alpha) return t2_err_set(T2_ENOMEM, "out of memory");
    const char *p = o->mix;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p)
            return t2_err_set(T2_EINVAL, "--mix: '%.*s' is not NAME=WEIGHT", (int)len, p);
        char name[256], num[64], path[4400];
        size_t nl = (size_t)(eq - p), vl = len - nl - 1;
        if (nl >= sizeof name || vl >= sizeof num || vl == 0)
            return t2_err_set(T2_EINVAL, "--mix: '%.*s' is not NAME=WEIGHT", (int)len, p);
        memcpy(name, p, nl);
        name[nl] = 0;
        memcpy(num, eq + 1, vl);
        num[vl] = 0;
        if (strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
            return t2_err_set(T2_EINVAL, "--mix: expert name '%s' may not contain '/'", name);
        char *end;
        errno = 0;
        double a = strtod(num, &end);
        if (errno || *end || !isfinite(a))
            return t2_err_set(T2_EINVAL, "--mix: weight '%s' of expert '%s' is not a finite number",
                              num, name);
        for (int i = 0; i < o->n_experts; i++)
            if (!strcmp(o->experts[i]->name, name))
                return t2_err_set(T2_EINVAL, "--mix: expert '%s' named twice", name);
        snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
        FILE *f = fopen(path, "rb");
        if (!f)
            return t2_err_set(T2_ENOTFOUND, "--mix: expert '%s' not found (no %s)", name, path);
        fclose(f);
        o->alpha[o->n_experts] = (float)a;
        int rc = load_expert(o, path);
        if (rc < 0) return rc;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

int cli_adapt_setup(cli_adapt *o, t2_model *m, t2_pool *pool) {
    if (!o->expert_path && !o->mix) {
        if (o->factors_path) return t2_factors_load(&o->factors, o->factors_path, m);
        return 0;
    }
    if (o->expert_path && o->mix) return t2_err_set(T2_EINVAL, "give --expert or --mix, not both");
    if (!o->factors_path)
        return t2_err_set(T2_EINVAL, "--expert and --mix need --factors (made by t2 decompose)");
    int rc = t2_factors_load(&o->factors, o->factors_path, m);
    if (rc < 0) return rc;
    if (o->expert_path) {
        o->experts = calloc(1, sizeof *o->experts);
        o->alpha = malloc(sizeof *o->alpha);
        if (!o->experts || !o->alpha) return t2_err_set(T2_ENOMEM, "out of memory");
        o->alpha[0] = 1.0f;
        if ((rc = load_expert(o, o->expert_path)) < 0) return rc;
    } else if ((rc = load_mix(o)) < 0) {
        return rc;
    }
    t2_mixture mix = {o->n_experts, (const t2_expert *const *)o->experts, o->alpha, o->n_experts, 0};
    return cli_adapt_new(o, &mix, pool, &o->adapt);
}

int cli_adapt_new(const cli_adapt *o, const t2_mixture *mix, t2_pool *pool, t2_adapt **out) {
    if (o->mode != T2_APPLY_LOWRANK)
        return t2_adapt_new_typed(out, o->factors, mix, o->mode, o->merged_type, pool);
    t2_lowrank_report r;
    const int rank = o->lowrank ? o->lowrank : 32;
    int rc = t2_adapt_new_lowrank(out, o->factors, mix, rank, &r);
    if (rc < 0) return rc;
    fprintf(stderr, "t2: low-rank expert difference, %d directions per matrix (%.1f MiB): "
            "||dW - dW_r||_F / ||dW||_F = %.4g over all matrices, %.4g at worst (blk.%d.%s)\n",
            rank, r.bytes / 1048576.0, r.rel_err, r.worst_rel_err, r.worst_layer,
            t2_target_name(r.worst_kind));
    return 0;
}

void cli_adapt_free(cli_adapt *o) {
    t2_adapt_release(&o->adapt);
    for (int i = 0; i < o->n_experts; i++) t2_expert_destroy(&o->experts[i]);
    free(o->experts);
    free(o->alpha);
    t2_factors_destroy(&o->factors);
    o->experts = NULL;
    o->alpha = NULL;
    o->n_experts = 0;
}

const char *cli_adapt_describe(const cli_adapt *o, char *buf, size_t cap) {
    if (!o->adapt) {
        snprintf(buf, cap, "base weights");
        return buf;
    }
    size_t n = o->mode == T2_APPLY_MERGED && o->merged_type != T2_F32
                   ? (size_t)snprintf(buf, cap, "merged %s ", t2_dtype_name(o->merged_type))
               : o->mode == T2_APPLY_MERGED
                   ? (size_t)snprintf(buf, cap, "merged ")
               : o->mode == T2_APPLY_LOWRANK
                   ? (size_t)snprintf(buf, cap, "lowrank %d ", o->lowrank ? o->lowrank : 32)
                   : (size_t)snprintf(buf, cap, "factored ");
    for (int i = 0; i < o->n_experts && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s=%g", i ? "," : "", o->experts[i]->name,
                              (double)o->alpha[i]);
    return buf;
}

int cli_experts_dir(const cli_adapt *o, char *buf, size_t cap) {
    if (o->experts_dir) {
        snprintf(buf, cap, "%s", o->experts_dir);
    } else {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", o->factors_path ? o->factors_path : ".");
        snprintf(buf, cap, "%s", dirname(tmp));
    }
    struct stat sb;
    if (stat(buf, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return t2_err_set(T2_ENOTFOUND, "experts folder %s: %s", buf,
                          stat(buf, &sb) < 0 ? strerror(errno) : "not a folder");
    return 0;
}

int cli_expert_load_named(const char *dir, const char *name, const t2_factors *f,
                          const char *what, t2_expert **out) {
    *out = NULL;
    if (!what) what = "expert";
    if (!*name || strlen(name) > T2_NAME_MAX || strchr(name, '/') || !strcmp(name, ".") ||
        !strcmp(name, ".."))
        return t2_err_set(T2_EINVAL, "%s '%s' is not an expert name (1..64 characters, no '/')",
                          what, name);
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) return t2_err_set(T2_ENOTFOUND, "%s '%s' not found (no %s)", what, name, path);
    fclose(fp);
    return t2_expert_load(out, path, f);
}
