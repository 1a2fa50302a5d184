#include "engine/safetensors.h"

#include "base/t2_err.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct t2_st {
    char *path;
    const unsigned char *buf; /* the whole file */
    size_t size;
    void *map;                /* owned mapping (t2_st_open), or NULL */
    json_t *header;           /* keeps the names and dtype strings alive */
    t2_st_tensor *tensors;    /* sorted by name */
    int64_t n;
};

static const struct {
    const char *name;
    size_t size;
    int t2; /* t2_dtype + 1, or 0 when T2 does not compute with it */
} st_dtypes[] = {
    {"F32", 4, T2_F32 + 1}, {"F16", 2, T2_F16 + 1}, {"BF16", 2, T2_BF16 + 1},
    {"F64", 8, 0},          {"I64", 8, 0},          {"I32", 4, 0},
    {"I16", 2, 0},          {"I8", 1, 0},           {"U64", 8, 0},
    {"U32", 4, 0},          {"U16", 2, 0},          {"U8", 1, 0},
    {"BOOL", 1, 0},         {"F8_E4M3", 1, 0},      {"F8_E5M2", 1, 0},
};

void t2_st_close(t2_st **stp) {
    if (!stp || !*stp) return;
    t2_st *st = *stp;
    if (st->map) munmap(st->map, st->size);
    json_decref(st->header);
    free(st->tensors);
    free(st->path);
    free(st);
    *stp = NULL;
}

const char *t2_st_path(const t2_st *st) { return st->path; }
int64_t t2_st_n_tensors(const t2_st *st) { return st->n; }

const t2_st_tensor *t2_st_tensor_at(const t2_st *st, int64_t i) {
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const t2_st_tensor *)a)->name, ((const t2_st_tensor *)b)->name);
}

const t2_st_tensor *t2_st_find(const t2_st *st, const char *name) {
    t2_st_tensor key = {.name = name};
    return bsearch(&key, st->tensors, (size_t)st->n, sizeof key, by_name);
}

/* A JSON integer in [0, max], or -1. */
static int64_t json_uint(const json_t *v, int64_t max) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x >= 0 && x <= max ? (int64_t)x : -1;
}

/* Fill *t from header entry `name` = `v`; data_size is the data section's size. */
static int parse_entry(const t2_st *st, const char *name, json_t *v, size_t data_size,
                       t2_st_tensor *t) {
    const char *p = st->path;
    if (!json_is_object(v))
        return t2_err_set(T2_EFORMAT, "%s: tensor '%s': header entry is not an object", p, name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off))
        return t2_err_set(T2_EFORMAT, "%s: tensor '%s': needs dtype (string), shape and "
                          "data_offsets (arrays)", p, name);
    size_t k = 0, nd = sizeof st_dtypes / sizeof st_dtypes[0];
    while (k < nd && strcmp(st_dtypes[k].name, json_string_value(dt)) != 0) k++;
    if (k == nd)
        return t2_err_set(T2_EFORMAT, "%s: tensor '%s': unknown dtype '%.16s'", p, name,
                          json_string_value(dt));
    t->name = name;
    t->dtype = st_dtypes[k].name;
    t->supported = st_dtypes[k].t2 != 0;
    t->type = t->supported ? (t2_dtype)(st_dtypes[k].t2 - 1) : T2_F32;
    if (json_array_size(sh) > T2_ST_MAX_DIMS)
        return t2_err_set(T2_EFORMAT, "%s: tensor '%s': %zu dimensions (at most %d)", p, name,
                          json_array_size(sh), T2_ST_MAX_DIMS);
    t->n_dims = (int)json_array_size(sh);
    uint64_t count = 1;
    for (int i = 0; i < t->n_dims; i++) {
        int64_t d = json_uint(json_array_get(sh, (size_t)i), INT64_MAX);
        if (d < 0)
            return t2_err_set(T2_EFORMAT, "%s: tensor '%s': shape[%d] is not a non-negative "
                              "integer", p, name, i);
        t->shape[i] = d;
        if (d && count > (UINT64_MAX / st_dtypes[k].size) / (uint64_t)d)
            return t2_err_set(T2_EFORMAT, "%s: tensor '%s': shape too large", p, name);
        count *= (uint64_t)d;
    }
    int64_t b = json_uint(json_array_get(off, 0), INT64_MAX);
    int64_t e = json_uint(json_array_get(off, 1), INT64_MAX);
    if (json_array_size(off) != 2 || b < 0 || e < b)
        return t2_err_set(T2_EFORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with "
                          "0 <= begin <= end", p, name);
    if ((uint64_t)e > data_size)
        return t2_err_set(T2_EFORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] past the end "
                          "of the data section (%zu bytes)", p, name, (long long)b,
                          (long long)e, data_size);
    if ((uint64_t)(e - b) != count * st_dtypes[k].size)
        return t2_err_set(T2_EFORMAT, "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld "
                          "bytes but %s of this shape needs %llu", p, name, (long long)b,
                          (long long)e, (long long)(e - b), t->dtype,
                          (unsigned long long)(count * st_dtypes[k].size));
    t->nbytes = (size_t)(e - b);
    t->data = st->buf + st->size - data_size + b;
    return 0;
}

static int by_offset(const void *a, const void *b) {
    const t2_st_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* No two tensors may share bytes. */
static int check_overlaps(t2_st *st) {
    t2_st_tensor *s = malloc((size_t)st->n * sizeof *s + 1);
    if (!s) return t2_err_set(T2_ENOMEM, "%s: out of memory", st->path);
    memcpy(s, st->tensors, (size_t)st->n * sizeof *s);
    qsort(s, (size_t)st->n, sizeof *s, by_offset);
    int rc = 0;
    for (int64_t i = 1; i < st->n && !rc; i++)
        if ((const char *)s[i - 1].data + s[i - 1].nbytes > (const char *)s[i].data)
            rc = t2_err_set(T2_EFORMAT, "%s: tensors '%s' and '%s' overlap", st->path,
                            s[i - 1].name, s[i].name);
    free(s);
    return rc;
}

/* Parse and check the header of st->buf. */
static int parse(t2_st *st) {
    const char *p = st->path;
    if (st->size < 8)
        return t2_err_set(T2_EFORMAT, "%s: %zu bytes is too small for a safetensors file", p,
                          st->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | st->buf[i];
    if (n < 2 || n > st->size - 8 || n > T2_ST_MAX_HEADER)
        return t2_err_set(T2_EFORMAT, "%s: header length %llu does not fit the file (%zu bytes, "
                          "header limit %u)", p, (unsigned long long)n, st->size,
                          T2_ST_MAX_HEADER);
    json_error_t err;
    st->header = json_loadb((const char *)st->buf + 8, (size_t)n,
                            JSON_REJECT_DUPLICATES, &err);
    if (!st->header)
        return t2_err_set(T2_EFORMAT, "%s: header is not valid JSON (line %d, column %d: %s)", p,
                          err.line, err.column, err.text);
    if (!json_is_object(st->header))
        return t2_err_set(T2_EFORMAT, "%s: header is not a JSON object", p);
    size_t data_size = st->size - 8 - (size_t)n;
    st->tensors = calloc(json_object_size(st->header) + 1, sizeof *st->tensors);
    if (!st->tensors) return t2_err_set(T2_ENOMEM, "%s: out of memory", p);
    const char *name;
    json_t *v;
    json_object_foreach(st->header, name, v) {
        if (strcmp(name, "__metadata__") == 0) {
            if (!json_is_object(v))
                return t2_err_set(T2_EFORMAT, "%s: __metadata__ is not an object", p);
            continue;
        }
        int rc = parse_entry(st, name, v, data_size, &st->tensors[st->n]);
        if (rc < 0) return rc;
        st->n++;
    }
    qsort(st->tensors, (size_t)st->n, sizeof *st->tensors, by_name);
    return check_overlaps(st);
}

int t2_st_open_mem(t2_st **out, const void *buf, size_t size, const char *name) {
    *out = NULL;
    t2_st *st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(name ? name : "(memory)"))) {
        free(st);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    st->buf = buf;
    st->size = size;
    int rc = parse(st);
    if (rc < 0) {
        t2_st_close(&st);
        return rc;
    }
    *out = st;
    return 0;
}

int t2_st_open(t2_st **out, const char *path) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return t2_err_set(T2_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return t2_err_set(T2_EFORMAT, "%s: %zu bytes is too small for a safetensors file", path,
                          size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return t2_err_set(T2_EIO, "%s: mmap failed: %s", path, strerror(errno));
    int rc = t2_st_open_mem(out, map, size, path);
    if (rc < 0) {
        munmap(map, size);
        return rc;
    }
    (*out)->map = map;
    return 0;
}
