/* train_ckpt.c - training checkpoints: exact resume of a killed run.
 *
 * Layout (little-endian, as the host):
 *   u32 magic "T2CK", u32 version
 *   i32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, head_dim
 *   f32 rms_eps, rope_theta;  i32 tied, svf
 *   u32 svf_targets; i32 svf_act; f32 svf_max_mult; u32 reserved (0)
 *   u64 n (trainable values); i64 adam_steps; u64 base_hash (SVF: hash of the dense weights)
 *   i64 step; u64 rng[2]; u64 data_pos; f64 elapsed
 *   f32 values[n]; f32 adam_m[n]; f32 adam_v[n]
 *   u64 FNV-1a 64 of every byte before it
 * Written to PATH.tmp, flushed and fsync'd, then renamed over PATH.
 */
#include "base/t2_err.h"
#include "train/train.h"
#include "train/train_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int32_t cfg[8];
    float rms_eps, rope_theta;
    int32_t tied, svf;
    uint32_t svf_targets;
    int32_t svf_act;
    float svf_max_mult;
    uint32_t reserved;
    uint64_t n;
    int64_t adam_t;
    uint64_t base_hash;
    int64_t step;
    uint64_t rng[2];
    uint64_t data_pos;
    double elapsed;
} ckpt_header;

/* The header as a byte image, field by field (no struct padding in the file). */
static size_t header_pack(unsigned char *buf, uint32_t magic, uint32_t version,
                          const ckpt_header *h) {
    size_t o = 0;
#define PUT(v)                                                                             \
    do {                                                                                   \
        memcpy(buf + o, &(v), sizeof(v));                                                  \
        o += sizeof(v);                                                                    \
    } while (0)
    PUT(magic);
    PUT(version);
    for (int i = 0; i < 8; i++) PUT(h->cfg[i]);
    PUT(h->rms_eps);
    PUT(h->rope_theta);
    PUT(h->tied);
    PUT(h->svf);
    PUT(h->svf_targets);
    PUT(h->svf_act);
    PUT(h->svf_max_mult);
    PUT(h->reserved);
    PUT(h->n);
    PUT(h->adam_t);
    PUT(h->base_hash);
    PUT(h->step);
    PUT(h->rng[0]);
    PUT(h->rng[1]);
    PUT(h->data_pos);
    PUT(h->elapsed);
#undef PUT
    return o;
}

static size_t header_unpack(const unsigned char *buf, uint32_t *magic, uint32_t *version,
                            ckpt_header *h) {
    size_t o = 0;
#define GET(v)                                                                             \
    do {                                                                                   \
        memcpy(&(v), buf + o, sizeof(v));                                                  \
        o += sizeof(v);                                                                    \
    } while (0)
    GET(*magic);
    GET(*version);
    for (int i = 0; i < 8; i++) GET(h->cfg[i]);
    GET(h->rms_eps);
    GET(h->rope_theta);
    GET(h->tied);
    GET(h->svf);
    GET(h->svf_targets);
    GET(h->svf_act);
    GET(h->svf_max_mult);
    GET(h->reserved);
    GET(h->n);
    GET(h->adam_t);
    GET(h->base_hash);
    GET(h->step);
    GET(h->rng[0]);
    GET(h->rng[1]);
    GET(h->data_pos);
    GET(h->elapsed);
#undef GET
    return o;
}

#define HEADER_BYTES 136 /* header_pack's size */

static void header_of(const t2_train *tr, const t2_ckpt_meta *meta, ckpt_header *h) {
    const t2_config *c = &tr->cfg;
    memset(h, 0, sizeof *h);
    int32_t cfg[8] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads,
                      c->n_kv_heads, c->vocab_size, c->seq_len, c->head_dim};
    memcpy(h->cfg, cfg, sizeof cfg);
    h->rms_eps = c->rms_eps;
    h->rope_theta = c->rope_theta;
    h->tied = tr->tied;
    h->svf = tr->svf;
    if (tr->svf) {
        h->svf_targets = tr->svf_opts.targets;
        h->svf_act = tr->svf_opts.act;
        h->svf_max_mult = tr->svf_opts.max_mult;
        h->base_hash = tr->base_hash;
    }
    h->n = tr->svf ? tr->n_p : tr->n_params;
    h->adam_t = tr->adam_t;
    if (meta) {
        h->step = meta->step;
        h->rng[0] = meta->rng[0];
        h->rng[1] = meta->rng[1];
        h->data_pos = meta->data_pos;
        h->elapsed = meta->elapsed;
    }
}

static int write_all(FILE *f, const void *p, size_t n, uint64_t *h) {
    *h = t2_fnv1a64(*h, p, n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

/* Write n floats (or n zeros when p is NULL) in chunks. */
static int write_floats(FILE *f, const float *p, size_t n, uint64_t *h) {
    static const float zeros[1024];
    while (n) {
        size_t k = n < 1024 ? n : 1024;
        if (write_all(f, p ? p : zeros, k * sizeof(float), h) < 0) return -1;
        if (p) p += k;
        n -= k;
    }
    return 0;
}

int t2_train_save_checkpoint(const t2_train *tr, const t2_ckpt_meta *meta, const char *path) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return t2_err_set(T2_ENOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int rc = t2_err_set(T2_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    ckpt_header h;
    header_of(tr, meta, &h);
    unsigned char hb[HEADER_BYTES];
    size_t hn = header_pack(hb, T2_CKPT_MAGIC, T2_CKPT_VERSION, &h);
    uint64_t hash = T2_FNV1A64_INIT;
    const float *vals = tr->svf ? tr->svf_p : tr->params_mem;
    int bad = hn != HEADER_BYTES || write_all(f, hb, hn, &hash) < 0 ||
              write_floats(f, vals, h.n, &hash) < 0 || write_floats(f, tr->adam_m, h.n, &hash) < 0 ||
              write_floats(f, tr->adam_v, h.n, &hash) < 0;
    if (!bad) bad = fwrite(&hash, sizeof hash, 1, f) != 1;
    if (!bad) bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int err = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    if (bad) {
        unlink(tmp);
        int rc = t2_err_set(T2_EIO, "%s: write failed: %s", tmp, strerror(err));
        free(tmp);
        return rc;
    }
    if (rename(tmp, path) != 0) {
        int rc = t2_err_set(T2_EIO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    return 0;
}

static int read_header(FILE *f, const char *path, ckpt_header *h, uint64_t *hash) {
    unsigned char hb[HEADER_BYTES];
    uint32_t magic, version;
    if (fread(hb, 1, HEADER_BYTES, f) != HEADER_BYTES)
        return t2_err_set(T2_EFORMAT, "%s: too short for a T2 checkpoint", path);
    header_unpack(hb, &magic, &version, h);
    if (magic != T2_CKPT_MAGIC)
        return t2_err_set(T2_EFORMAT, "%s: not a T2 training checkpoint (bad magic)", path);
    if (version != T2_CKPT_VERSION)
        return t2_err_set(T2_EUNSUPPORTED, "%s: checkpoint version %u (this T2 reads %d)", path,
                          version, T2_CKPT_VERSION);
    if (hash) *hash = t2_fnv1a64(T2_FNV1A64_INIT, hb, HEADER_BYTES);
    return 0;
}

int t2_train_peek_checkpoint(const char *path, t2_config *cfg, int *tied, int *svf) {
    FILE *f = fopen(path, "rb");
    if (!f) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    ckpt_header h;
    int rc = read_header(f, path, &h, NULL);
    fclose(f);
    if (rc < 0) return rc;
    if (cfg) {
        memset(cfg, 0, sizeof *cfg);
        cfg->dim = h.cfg[0], cfg->hidden_dim = h.cfg[1], cfg->n_layers = h.cfg[2];
        cfg->n_heads = h.cfg[3], cfg->n_kv_heads = h.cfg[4], cfg->vocab_size = h.cfg[5];
        cfg->seq_len = h.cfg[6], cfg->head_dim = h.cfg[7];
        cfg->rms_eps = h.rms_eps, cfg->rope_theta = h.rope_theta;
        if ((rc = t2_config_check(cfg, path)) < 0) return rc;
    }
    if (tied) *tied = h.tied;
    if (svf) *svf = h.svf;
    return 0;
}

static int read_floats(FILE *f, float *p, size_t n, uint64_t *h) {
    if (fread(p, sizeof(float), n, f) != n) return -1;
    *h = t2_fnv1a64(*h, p, n * sizeof(float));
    return 0;
}

int t2_train_load_checkpoint(t2_train *tr, t2_ckpt_meta *meta, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    ckpt_header h, want;
    uint64_t hash;
    float *vals = NULL, *m = NULL, *v = NULL;
    int rc = read_header(f, path, &h, &hash);
    if (rc < 0) goto out;
    header_of(tr, NULL, &want);
    if (memcmp(h.cfg, want.cfg, sizeof h.cfg) || h.rms_eps != want.rms_eps ||
        h.rope_theta != want.rope_theta || h.tied != want.tied) {
        rc = t2_err_set(T2_EMISMATCH, "%s: checkpoint of a model of another shape (dim %d, "
                        "hidden %d, layers %d, heads %d/%d, vocab %d, seq %d%s)", path, h.cfg[0],
                        h.cfg[1], h.cfg[2], h.cfg[3], h.cfg[4], h.cfg[5], h.cfg[6],
                        h.tied ? ", tied" : "");
        goto out;
    }
    if (h.svf != want.svf) {
        rc = t2_err_set(T2_EMISMATCH, "%s: checkpoint of %s training, this run is %s", path,
                        h.svf ? "SVF" : "full-weight", want.svf ? "SVF" : "full-weight");
        goto out;
    }
    if (h.svf && (h.svf_targets != want.svf_targets || h.svf_act != want.svf_act ||
                  h.svf_max_mult != want.svf_max_mult)) {
        rc = t2_err_set(T2_EMISMATCH, "%s: SVF targets or activation differ from this run's", path);
        goto out;
    }
    if (h.svf && h.base_hash != want.base_hash) {
        rc = t2_err_set(T2_EMISMATCH, "%s: checkpoint was trained on other base weights", path);
        goto out;
    }
    if (h.n != want.n || h.adam_t < 0 || h.step < 0) {
        rc = t2_err_set(T2_EFORMAT, "%s: %llu values, expected %llu", path,
                        (unsigned long long)h.n, (unsigned long long)want.n);
        goto out;
    }
    size_t n = (size_t)h.n;
    vals = malloc((n ? n : 1) * sizeof(float));
    m = malloc((n ? n : 1) * sizeof(float));
    v = malloc((n ? n : 1) * sizeof(float));
    if (!vals || !m || !v) {
        rc = t2_err_set(T2_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    uint64_t stored;
    if (read_floats(f, vals, n, &hash) < 0 || read_floats(f, m, n, &hash) < 0 ||
        read_floats(f, v, n, &hash) < 0 || fread(&stored, sizeof stored, 1, f) != 1) {
        rc = t2_err_set(T2_EFORMAT, "%s: truncated checkpoint", path);
        goto out;
    }
    if (fgetc(f) != EOF) {
        rc = t2_err_set(T2_EFORMAT, "%s: trailing bytes after the checkpoint", path);
        goto out;
    }
    if (stored != hash) {
        rc = t2_err_set(T2_EFORMAT, "%s: checksum mismatch (corrupt checkpoint)", path);
        goto out;
    }
    memcpy(tr->svf ? tr->svf_p : tr->params_mem, vals, n * sizeof(float));
    free(tr->adam_m);
    free(tr->adam_v);
    tr->adam_m = m;
    tr->adam_v = v;
    m = v = NULL;
    tr->adam_t = h.adam_t;
    if (meta) {
        meta->step = h.step;
        meta->rng[0] = h.rng[0];
        meta->rng[1] = h.rng[1];
        meta->data_pos = h.data_pos;
        meta->elapsed = h.elapsed;
    }
    rc = 0;
out:
    free(vals);
    free(m);
    free(v);
    fclose(f);
    return rc;
}
