/* gguf.c - GGUF v2/v3 reader (mmap or caller buffer, validated up front) and writer.
 *
 * File layout (little-endian; https://github.com/ggml-org/ggml/blob/master/docs/gguf.md):
 *
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv      x { string key | u32 value type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
 *   zero padding to `alignment` | tensor data (tensor i at data_start + offset_i)
 *
 * A string is a u64 length and that many bytes (no NUL); an array value is a u32 element type,
 * a u64 count and the elements. Versions 2 and 3 share this layout for little-endian files
 * (v1 had 32-bit counts; v3 only added big-endian files, which T2 does not read).
 *
 * Reader contract: open walks the whole header once and checks every count and length against
 * the bytes that remain *before* using it: a count of keys, tensors or string-array elements
 * is first bounded by the smallest encoding of one item, and the key and tensor tables grow as
 * items are actually parsed, so memory follows the file's real content, not a claimed count.
 * It builds index tables: one entry per key (with an offsets table for string arrays, so
 * element access is O(1)) and per tensor, plus hash tables for key and tensor-name lookups.
 * After a successful open, accessors only read validated tables and validated bytes (with
 * unaligned-safe loads). Tensor data regions are not checked for overlap.
 *
 * Codes: T2_EIO (cannot open, map, create, write or rename a file; a directory or non-regular
 * file), T2_EFORMAT (malformed file; a getter on a key of an incompatible type or value),
 * T2_EUNSUPPORTED (GGUF version or tensor type T2 does not read), T2_ENOTFOUND (absent key),
 * T2_ERANGE (array index out of bounds), T2_EMISMATCH (bulk copy count differs from the array's),
 * T2_EINVAL (bad argument), T2_ENOMEM.
 */
#include "engine/gguf.h"

#include "base/hash.h"
#include "base/t2_err.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_HEADER_BYTES 24 /* magic, version, n_tensors, n_kv */
#define GGUF_VERSION 3
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 63 /* llama.cpp's GGML_MAX_NAME (64) counts the NUL */
#define KV_MIN_BYTES 13 /* u64 key length + u32 type + smallest value (1 byte) */
#define TENSOR_MIN_BYTES 32 /* u64 name length + u32 n_dims + one u64 ne + u32 type + u64 offset */
#define MAX_ELEMENTS ((uint64_t)1 << 53) /* a tensor holds fewer elements than this */
#define NAME_SHOW 80 /* longest part of a name echoed in a message */
#define SHOW_BUF (NAME_SHOW * 4 + 8)

/* ------------------------------------------------------------------------------------------ */
/* Little-endian loads and stores (byte-wise: any alignment, any host order)                   */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }
static float ldf32(const uint8_t *p) {
    uint32_t u = ld32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double ldf64(const uint8_t *p) {
    uint64_t u = ld64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static void st32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void st64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------------------------------------ */
/* Value types                                                                                 */

/* Bytes of one scalar of type t; 0 for STRING, ARRAY and invalid types. */
static size_t vtype_size(uint32_t t) {
    switch (t) {
    case T2_GGUF_UINT8:
    case T2_GGUF_INT8:
    case T2_GGUF_BOOL: return 1;
    case T2_GGUF_UINT16:
    case T2_GGUF_INT16: return 2;
    case T2_GGUF_UINT32:
    case T2_GGUF_INT32:
    case T2_GGUF_FLOAT32: return 4;
    case T2_GGUF_UINT64:
    case T2_GGUF_INT64:
    case T2_GGUF_FLOAT64: return 8;
    }
    return 0;
}

static int vtype_is_int(uint32_t t) {
    return t <= T2_GGUF_INT32 || t == T2_GGUF_UINT64 || t == T2_GGUF_INT64;
}

static const char *vtype_name(uint32_t t) {
    static const char *const names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32",
                                        "float32", "bool", "string", "array", "uint64", "int64",
                                        "float64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "invalid";
}

/* "a uint8", "an int32", ... for "key 'x' is <this>, expected <that>". */
static const char *vtype_desc(uint32_t t) {
    switch (t) {
    case T2_GGUF_INT8: return "an int8";
    case T2_GGUF_INT16: return "an int16";
    case T2_GGUF_INT32: return "an int32";
    case T2_GGUF_INT64: return "an int64";
    case T2_GGUF_ARRAY: return "an array";
    case T2_GGUF_UINT8: return "a uint8";
    case T2_GGUF_UINT16: return "a uint16";
    case T2_GGUF_UINT32: return "a uint32";
    case T2_GGUF_UINT64: return "a uint64";
    case T2_GGUF_FLOAT32: return "a float32";
    case T2_GGUF_FLOAT64: return "a float64";
    case T2_GGUF_BOOL: return "a bool";
    case T2_GGUF_STRING: return "a string";
    }
    return "an invalid type";
}

/* A scalar decoded from the file. */
typedef struct num {
    enum { NUM_INT, NUM_U64, NUM_FLOAT, NUM_BOOL } kind;
    int64_t i; /* NUM_INT (every integer type but uint64) and NUM_BOOL (0/1) */
    uint64_t u; /* NUM_U64 */
    double f; /* NUM_FLOAT */
} num;

/* Decode a numeric or bool scalar of type t (not STRING/ARRAY: callers check). */
static num load_num(const uint8_t *p, uint32_t t) {
    num v = {NUM_INT, 0, 0, 0};
    switch (t) {
    case T2_GGUF_UINT8: v.i = p[0]; break;
    case T2_GGUF_INT8: v.i = (int8_t)p[0]; break;
    case T2_GGUF_UINT16: v.i = ld16(p); break;
    case T2_GGUF_INT16: v.i = (int16_t)ld16(p); break;
    case T2_GGUF_UINT32: v.i = ld32(p); break;
    case T2_GGUF_INT32: v.i = (int32_t)ld32(p); break;
    case T2_GGUF_INT64: v.i = (int64_t)ld64(p); break;
    case T2_GGUF_UINT64:
        v.kind = NUM_U64;
        v.u = ld64(p);
        break;
    case T2_GGUF_FLOAT32:
        v.kind = NUM_FLOAT;
        v.f = ldf32(p);
        break;
    case T2_GGUF_FLOAT64:
        v.kind = NUM_FLOAT;
        v.f = ldf64(p);
        break;
    case T2_GGUF_BOOL:
        v.kind = NUM_BOOL;
        v.i = p[0];
        break;
    }
    return v;
}

/* The value as an int64: 0, or -1 if it is not an integer or does not fit. */
static int num_to_i64(const num *v, int64_t *out) {
    switch (v->kind) {
    case NUM_INT:
    case NUM_BOOL: *out = v->i; return 0;
    case NUM_U64:
        if (v->u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)v->u;
        return 0;
    case NUM_FLOAT:
        if (!(v->f >= -9223372036854775808.0 && v->f < 9223372036854775808.0) ||
            v->f != trunc(v->f))
            return -1;
        *out = (int64_t)v->f;
        return 0;
    }
    return -1;
}

static double num_to_f64(const num *v) {
    switch (v->kind) {
    case NUM_INT:
    case NUM_BOOL: return (double)v->i;
    case NUM_U64: return (double)v->u;
    case NUM_FLOAT: return v->f;
    }
    return 0;
}

static const char *num_str(char *buf, size_t n, const num *v) {
    if (v->kind == NUM_U64) snprintf(buf, n, "%llu", (unsigned long long)v->u);
    else if (v->kind == NUM_FLOAT) snprintf(buf, n, "%.9g", v->f);
    else snprintf(buf, n, "%lld", (long long)v->i);
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Names: an arena of NUL-terminated copies and an open-addressing hash index                  */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
} arena_chunk;

/* NUL-terminated copy of n bytes, owned by the arena; NULL on allocation failure. */
static char *arena_strndup(arena_chunk **a, const void *s, size_t n) {
    arena_chunk *c = *a;
    if (!c || c->cap - c->used < n + 1) {
        size_t cap = n + 1 > 16384 ? n + 1 : 16384;
        if (!(c = malloc(sizeof *c + cap))) return NULL;
        c->next = *a;
        c->used = 0;
        c->cap = cap;
        *a = c;
    }
    char *p = c->data + c->used;
    memcpy(p, s, n);
    p[n] = 0;
    c->used += n + 1;
    return p;
}

static void arena_free(arena_chunk **a) {
    while (*a) {
        arena_chunk *next = (*a)->next;
        free(*a);
        *a = next;
    }
}

/* Maps a name to its index. slot[] holds index + 1 (0 = empty); its capacity is a power of two
 * kept at least twice the number of names, so probing always reaches an empty slot. Names are
 * added with consecutive indexes 0, 1, 2, ... and the table grows as they come, so its size
 * follows what the file really contains, not a count it claims. */
typedef struct name_index {
    size_t *slot;
    const char **names; /* names[index], borrowed */
    size_t mask; /* slot capacity - 1 (0 when empty) */
    size_t count, names_cap;
} name_index;

static void index_free(name_index *ix) {
    free(ix->slot);
    free(ix->names);
    memset(ix, 0, sizeof *ix);
}

/* Index of `s`, or -1. */
static int64_t index_find(const name_index *ix, const char *s) {
    if (!ix->count || !s) return -1;
    for (size_t h = (size_t)t2_fnv1a64_str(s) & ix->mask;; h = (h + 1) & ix->mask) {
        size_t v = ix->slot[h];
        if (!v) return -1;
        if (strcmp(ix->names[v - 1], s) == 0) return (int64_t)(v - 1);
    }
}

/* Room for one more name: grow names[] and rehash slot[] by doubling. 0 or -1 (no memory). */
static int index_reserve(name_index *ix) {
    if (ix->count == ix->names_cap) {
        size_t cap = ix->names_cap ? 2 * ix->names_cap : 16;
        const char **names = realloc(ix->names, cap * sizeof *names);
        if (!names) return -1;
        ix->names = names;
        ix->names_cap = cap;
    }
    if (ix->slot && 2 * (ix->count + 1) <= ix->mask + 1) return 0;
    size_t cap = ix->slot ? 2 * (ix->mask + 1) : 32;
    size_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < ix->count; i++) {
        size_t h = (size_t)t2_fnv1a64_str(ix->names[i]) & (cap - 1);
        while (slot[h]) h = (h + 1) & (cap - 1);
        slot[h] = i + 1;
    }
    free(ix->slot);
    ix->slot = slot;
    ix->mask = cap - 1;
    return 0;
}

/* Add `s` (borrowed) with the next index. Sets *dup to -1, or to the index of an equal name
 * already present (then nothing is added). Returns 0, or -1 if out of memory. */
static int index_add(name_index *ix, const char *s, int64_t *dup) {
    if (index_reserve(ix) < 0) return -1;
    size_t h = (size_t)t2_fnv1a64_str(s) & ix->mask;
    for (; ix->slot[h]; h = (h + 1) & ix->mask)
        if (strcmp(ix->names[ix->slot[h] - 1], s) == 0) {
            *dup = (int64_t)(ix->slot[h] - 1);
            return 0;
        }
    ix->names[ix->count++] = s;
    ix->slot[h] = ix->count;
    *dup = -1;
    return 0;
}

/* Make room for entry n of an array of esz-byte items at arr with *cap entries; new entries
 * are zeroed. Returns the (possibly moved) array, or NULL if out of memory (arr unchanged). */
static void *grow(void *arr, size_t *cap, size_t n, size_t esz) {
    if (n < *cap) return arr;
    size_t c = *cap ? 2 * *cap : 16;
    char *p = realloc(arr, c * esz);
    if (!p) return NULL;
    memset(p + *cap * esz, 0, (c - *cap) * esz);
    *cap = c;
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Reader                                                                                      */

typedef struct gguf_kv {
    const char *key; /* NUL-terminated copy (arena); contains no NUL byte in the file */
    uint32_t type; /* t2_gguf_vtype */
    uint32_t elem; /* ARRAY: element type (never ARRAY) */
    uint64_t n; /* ARRAY: element count; STRING: byte length */
    const uint8_t *val; /* scalar value / string bytes / first array element, in the file */
    uint64_t *str_off; /* ARRAY of STRING: file offset of each element's bytes (length at -8) */
} gguf_kv;

struct t2_gguf {
    char *path; /* or the name given to t2_gguf_open_mem; used in messages */
    const uint8_t *base;
    size_t size;
    void *map; /* t2_gguf_open's mapping (base), NULL for t2_gguf_open_mem */
    uint32_t version, alignment;
    size_t data_off; /* start of the data section (header end rounded up to alignment) */
    int64_t n_kv, n_tensors; /* entries of kv[] / tensors[] (filled ones, while parsing) */
    gguf_kv *kv;
    t2_gguf_tensor *tensors;
    name_index kv_ix, tensor_ix;
    arena_chunk *arena;
};

/* Record "<path>: <message>" and return code. */
static int fail(const t2_gguf *g, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(const t2_gguf *g, int code, const char *fmt, ...) {
    char msg[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return t2_err_set(code, "%s: %s", g->path, msg);
}

/* "<path>: truncated: <what> extends past end of file (<size> bytes)"; returns T2_EFORMAT. */
static int truncated(const t2_gguf *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int truncated(const t2_gguf *g, const char *fmt, ...) {
    char what[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return t2_err_set(T2_EFORMAT, "%s: truncated: %s extends past end of file (%zu bytes)",
                      g->path, what, g->size);
}

/* Printable form of n bytes at s for messages: bytes outside ' '..'~' (and '\') as \xNN, at
 * most NAME_SHOW bytes, then "...". Returns buf. */
static const char *show(char buf[SHOW_BUF], const void *s, size_t n) {
    const unsigned char *p = s;
    size_t o = 0;
    for (size_t i = 0; i < n && i < NAME_SHOW; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') buf[o++] = (char)p[i];
        else o += (size_t)snprintf(buf + o, 5, "\\x%02x", p[i]);
    }
    if (n > NAME_SHOW) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
    return buf;
}

static const char *show_str(char buf[SHOW_BUF], const char *s) { return show(buf, s, strlen(s)); }

/* Parse position; g->base[pos..size) is unread. */
typedef struct reader {
    t2_gguf *g;
    size_t pos;
} reader;

static size_t left(const reader *r) { return r->g->size - r->pos; }

/* Read a name (key or tensor name) at r->pos into an arena copy. `what` is "key" or "tensor"
 * and i its index, for messages. */
static int read_name(reader *r, const char *what, int64_t i, const char **out) {
    t2_gguf *g = r->g;
    char b[SHOW_BUF];
    if (left(r) < 8) return truncated(g, "%s %lld name length", what, (long long)i);
    uint64_t len = ld64(g->base + r->pos);
    if (len > left(r) - 8)
        return truncated(g, "%s %lld name of %llu bytes", what, (long long)i,
                         (unsigned long long)len);
    const uint8_t *s = g->base + r->pos + 8;
    r->pos += 8 + (size_t)len;
    if (memchr(s, 0, (size_t)len))
        return fail(g, T2_EFORMAT, "%s %lld: name '%s' contains a NUL byte", what, (long long)i,
                    show(b, s, (size_t)len));
    if (!(*out = arena_strndup(&g->arena, s, (size_t)len)))
        return fail(g, T2_ENOMEM, "out of memory reading %s %lld", what, (long long)i);
    return 0;
}

/* Check n elements of type t (not STRING/ARRAY) at r->pos and step over them. */
static int read_scalars(reader *r, int64_t i, const char *key, uint32_t t, uint64_t n,
                        int is_array) {
    t2_gguf *g = r->g;
    char b[SHOW_BUF];
    size_t esz = vtype_size(t);
    if (n > left(r) / esz) {
        if (is_array)
            return truncated(g, "key %lld ('%s') array of %llu %s values", (long long)i,
                             show_str(b, key), (unsigned long long)n, vtype_name(t));
        return truncated(g, "key %lld ('%s') %s value", (long long)i, show_str(b, key),
                         vtype_name(t));
    }
    const uint8_t *p = g->base + r->pos;
    if (t == T2_GGUF_BOOL)
        for (uint64_t j = 0; j < n; j++)
            if (p[j] > 1) {
                if (is_array)
                    return fail(g, T2_EFORMAT, "key %lld ('%s'): bool array element %llu is %u "
                                "(must be 0 or 1)", (long long)i, show_str(b, key),
                                (unsigned long long)j, p[j]);
                return fail(g, T2_EFORMAT, "key %lld ('%s'): bool value is %u (must be 0 or 1)",
                            (long long)i, show_str(b, key), p[j]);
            }
    r->pos += (size_t)(n * esz);
    return 0;
}

/* Parse key/value i at r->pos into g->kv[i]. */
static int read_kv(reader *r, int64_t i) {
    t2_gguf *g = r->g;
    gguf_kv *kv = &g->kv[i];
    char b[SHOW_BUF];
    int rc;
    if ((rc = read_name(r, "key", i, &kv->key)) < 0) return rc;
    const char *key = kv->key;
    int64_t dup;
    if (index_add(&g->kv_ix, key, &dup) < 0) return fail(g, T2_ENOMEM, "out of memory");
    if (dup >= 0)
        return fail(g, T2_EFORMAT, "duplicate key '%s' (keys %lld and %lld)", show_str(b, key),
                    (long long)dup, (long long)i);
    if (left(r) < 4) return truncated(g, "key %lld ('%s') type", (long long)i, show_str(b, key));
    kv->type = ld32(g->base + r->pos);
    r->pos += 4;
    if (kv->type > T2_GGUF_FLOAT64)
        return fail(g, T2_EFORMAT, "key %lld ('%s'): invalid value type %u", (long long)i,
                    show_str(b, key), kv->type);

    if (kv->type == T2_GGUF_STRING) {
        if (left(r) < 8)
            return truncated(g, "key %lld ('%s') string length", (long long)i, show_str(b, key));
        kv->n = ld64(g->base + r->pos);
        if (kv->n > left(r) - 8)
            return truncated(g, "key %lld ('%s') string of %llu bytes", (long long)i,
                             show_str(b, key), (unsigned long long)kv->n);
        kv->val = g->base + r->pos + 8;
        r->pos += 8 + (size_t)kv->n;
        return 0;
    }
    if (kv->type != T2_GGUF_ARRAY) {
        kv->val = g->base + r->pos;
        return read_scalars(r, i, key, kv->type, 1, 0);
    }

    if (left(r) < 12)
        return truncated(g, "key %lld ('%s') array header", (long long)i, show_str(b, key));
    kv->elem = ld32(g->base + r->pos);
    kv->n = ld64(g->base + r->pos + 4);
    r->pos += 12;
    kv->val = g->base + r->pos;
    if (kv->elem == T2_GGUF_ARRAY)
        return fail(g, T2_EFORMAT, "key %lld ('%s'): nested arrays are not supported",
                    (long long)i, show_str(b, key));
    if (kv->elem > T2_GGUF_FLOAT64)
        return fail(g, T2_EFORMAT, "key %lld ('%s'): invalid array element type %u", (long long)i,
                    show_str(b, key), kv->elem);
    if (kv->elem != T2_GGUF_STRING) return read_scalars(r, i, key, kv->elem, kv->n, 1);

    /* String array: each element takes at least its 8-byte length, which bounds the table. */
    if (kv->n > left(r) / 8)
        return truncated(g, "key %lld ('%s') array of %llu strings", (long long)i,
                         show_str(b, key), (unsigned long long)kv->n);
    if (kv->n && !(kv->str_off = malloc((size_t)kv->n * sizeof *kv->str_off)))
        return fail(g, T2_ENOMEM, "key '%s': out of memory for %llu strings", show_str(b, key),
                    (unsigned long long)kv->n);
    for (uint64_t j = 0; j < kv->n; j++) {
        if (left(r) < 8)
            return truncated(g, "key %lld ('%s') element %llu string length", (long long)i,
                             show_str(b, key), (unsigned long long)j);
        uint64_t len = ld64(g->base + r->pos);
        if (len > left(r) - 8)
            return truncated(g, "key %lld ('%s') element %llu string of %llu bytes", (long long)i,
                             show_str(b, key), (unsigned long long)j, (unsigned long long)len);
        kv->str_off[j] = r->pos + 8;
        r->pos += 8 + (size_t)len;
    }
    return 0;
}

/* Known GGML type names, for a helpful message about a type T2 does not compute with. */
static const char *ggml_type_name(uint32_t t) {
    static const char *const names[] = {
        "F32", "F16", "Q4_0", "Q4_1", NULL, NULL, "Q5_0", "Q5_1", "Q8_0", "Q8_1",
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
        "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
        "BF16", NULL, NULL, NULL, "TQ1_0", "TQ2_0", NULL, NULL, NULL, "MXFP4"};
    return t < sizeof names / sizeof names[0] ? names[t] : NULL;
}

/* Parse tensor info i at r->pos into g->tensors[i] (everything but the data pointer). */
static int read_tensor_info(reader *r, int64_t i) {
    t2_gguf *g = r->g;
    t2_gguf_tensor *t = &g->tensors[i];
    char b[SHOW_BUF];
    int rc;
    if ((rc = read_name(r, "tensor", i, &t->name)) < 0) return rc;
    const char *nm = show_str(b, t->name);
    int64_t dup;
    if (index_add(&g->tensor_ix, t->name, &dup) < 0) return fail(g, T2_ENOMEM, "out of memory");
    if (dup >= 0)
        return fail(g, T2_EFORMAT, "duplicate tensor '%s' (tensors %lld and %lld)", nm,
                    (long long)dup, (long long)i);
    if (left(r) < 4) return truncated(g, "tensor '%s' n_dims", nm);
    t->n_dims = ld32(g->base + r->pos);
    r->pos += 4;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return fail(g, T2_EFORMAT, "tensor '%s': n_dims %u (must be 1..%d)", nm, t->n_dims,
                    GGUF_MAX_DIMS);
    if (left(r) < 8 * (size_t)t->n_dims) return truncated(g, "tensor '%s' dimensions", nm);
    uint64_t ne[GGUF_MAX_DIMS] = {1, 1, 1, 1}, count = 1;
    int overflow = 0;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        ne[d] = ld64(g->base + r->pos + 8 * d);
        if (ne[d] == 0)
            return fail(g, T2_EFORMAT, "tensor '%s': dimension %u is 0 (must be positive)", nm,
                        d);
        if (ne[d] > (MAX_ELEMENTS - 1) / count) overflow = 1;
        else count *= ne[d];
    }
    r->pos += 8 * (size_t)t->n_dims;
    if (overflow) {
        char shape[128];
        int o = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%llu", d ? ", " : "",
                          (unsigned long long)ne[d]);
        return fail(g, T2_EFORMAT, "tensor '%s': shape [%s] has too many elements (limit 2^53)",
                    nm, shape);
    }
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = (int64_t)ne[d];
    if (left(r) < 12) return truncated(g, "tensor '%s' type and offset", nm);
    uint32_t type = ld32(g->base + r->pos);
    t->offset = ld64(g->base + r->pos + 4);
    r->pos += 12;
    if (!t2_dtype_supported(type)) {
        const char *known = ggml_type_name(type);
        return fail(g, T2_EUNSUPPORTED,
                    "tensor '%s': unknown or unsupported type %u (%s%sT2 computes with F32, F16, "
                    "BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K)",
                    nm, type, known ? known : "", known ? "; " : "");
    }
    t->type = (t2_dtype)type;
    int blk = t2_dtype_block(t->type);
    if (t->ne[0] % blk)
        return fail(g, T2_EFORMAT, "tensor '%s': %s row length %lld is not a multiple of %d", nm,
                    t2_dtype_name(t->type), (long long)t->ne[0], blk);
    /* count < 2^53 and at most 4 bytes per element: no overflow. */
    t->nbytes = t2_dtype_row_bytes(t->type, t->ne[0]) * (size_t)(count / ne[0]);
    return 0;
}

/* Validate the whole file at g->base[0..size) and build the tables. */
static int parse(t2_gguf *g) {
    reader r = {g, 0};
    char b[SHOW_BUF];
    int rc;

    if (g->size == 0) return fail(g, T2_EFORMAT, "empty file");
    if (g->size < 4 || memcmp(g->base, GGUF_MAGIC, 4) != 0)
        return fail(g, T2_EFORMAT, "not a GGUF file (magic '%s')",
                    show(b, g->base, g->size < 4 ? g->size : 4));
    if (g->size < GGUF_HEADER_BYTES)
        return truncated(g, "header (%d bytes)", GGUF_HEADER_BYTES);
    g->version = ld32(g->base + 4);
    if (g->version != 2 && g->version != 3) {
        uint32_t swapped = __builtin_bswap32(g->version);
        return fail(g, T2_EUNSUPPORTED, "unsupported GGUF version %u (T2 reads 2 and 3)%s",
                    g->version, swapped == 2 || swapped == 3 ? "; a big-endian file?" : "");
    }
    uint64_t n_tensors = ld64(g->base + 8), n_kv = ld64(g->base + 16);
    r.pos = GGUF_HEADER_BYTES;
    /* Bound the counts by the smallest encodings before allocating anything per item. */
    size_t rest = left(&r);
    if (n_kv > rest / KV_MIN_BYTES)
        return truncated(g, "%llu keys (at least %d bytes each)", (unsigned long long)n_kv,
                         KV_MIN_BYTES);
    if (n_tensors > (rest - (size_t)n_kv * KV_MIN_BYTES) / TENSOR_MIN_BYTES)
        return truncated(g, "%llu tensor infos (at least %d bytes each) after %llu keys",
                         (unsigned long long)n_tensors, TENSOR_MIN_BYTES,
                         (unsigned long long)n_kv);

    /* Tables grow as items are parsed; n_kv / n_tensors count the entries in use, so that
     * close frees exactly those. */
    size_t kv_cap = 0, tensor_cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = grow(g->kv, &kv_cap, (size_t)i, sizeof *g->kv);
        if (!kv) return fail(g, T2_ENOMEM, "out of memory for %llu keys", (unsigned long long)n_kv);
        g->kv = kv;
        g->n_kv = (int64_t)i + 1;
        if ((rc = read_kv(&r, (int64_t)i)) < 0) return rc;
    }

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = index_find(&g->kv_ix, "general.alignment");
    if (ai >= 0) {
        const gguf_kv *kv = &g->kv[ai];
        if (kv->type != T2_GGUF_UINT32)
            return fail(g, T2_EFORMAT, "general.alignment is %s, expected a uint32",
                        vtype_desc(kv->type));
        uint32_t a = ld32(kv->val);
        if (a == 0 || (a & (a - 1)))
            return fail(g, T2_EFORMAT, "general.alignment %u is not a power of two", a);
        g->alignment = a;
    }

    for (uint64_t i = 0; i < n_tensors; i++) {
        t2_gguf_tensor *t = grow(g->tensors, &tensor_cap, (size_t)i, sizeof *g->tensors);
        if (!t)
            return fail(g, T2_ENOMEM, "out of memory for %llu tensors",
                        (unsigned long long)n_tensors);
        g->tensors = t;
        g->n_tensors = (int64_t)i + 1;
        if ((rc = read_tensor_info(&r, (int64_t)i)) < 0) return rc;
    }

    /* Data section: header end rounded up to the alignment (may lie past the end of a file
     * without tensors; then it is never used). 64-bit arithmetic: pos < 2^63, a <= 2^31. */
    uint64_t data_off = ((uint64_t)r.pos + g->alignment - 1) & ~((uint64_t)g->alignment - 1);
    g->data_off = data_off > g->size ? g->size : (size_t)data_off;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        t2_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment)
            return fail(g, T2_EFORMAT, "tensor '%s': data offset %llu is not a multiple of the "
                        "alignment (%u)", show_str(b, t->name), (unsigned long long)t->offset,
                        g->alignment);
        /* Overflow-safe form of data_off + offset + nbytes <= size. */
        if (data_off <= g->size && t->offset <= g->size - data_off &&
            t->nbytes <= g->size - data_off - t->offset) {
            t->data = g->base + data_off + t->offset;
            continue;
        }
        if (t->offset > UINT64_MAX - data_off) /* the file offset itself overflows */
            return fail(g, T2_EFORMAT, "tensor '%s': data offset %llu extends past end of file "
                        "(%zu bytes)", show_str(b, t->name), (unsigned long long)t->offset,
                        g->size);
        return fail(g, T2_EFORMAT, "tensor '%s': data [offset %llu, %zu bytes] extends past end "
                    "of file (%zu bytes)", show_str(b, t->name),
                    (unsigned long long)(data_off + t->offset), t->nbytes, g->size);
    }
    return 0;
}

void t2_gguf_close(t2_gguf **gp) {
    if (!gp || !*gp) return;
    t2_gguf *g = *gp;
    if (g->kv)
        for (int64_t i = 0; i < g->n_kv; i++) free(g->kv[i].str_off);
    free(g->kv);
    free(g->tensors);
    index_free(&g->kv_ix);
    index_free(&g->tensor_ix);
    arena_free(&g->arena);
    if (g->map) munmap(g->map, g->size);
    free(g->path);
    free(g);
    *gp = NULL;
}

/* A t2_gguf over base[0..size) named `name`, parsed; on failure closes it. */
static int open_common(t2_gguf **out, const char *name, const void *base, size_t size, void *map) {
    t2_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(name))) {
        free(g);
        if (map) munmap(map, size);
        return t2_err_set(T2_ENOMEM, "%s: out of memory", name);
    }
    g->base = base;
    g->size = size;
    g->map = map;
    int rc = parse(g);
    if (rc < 0) {
        t2_gguf_close(&g);
        return rc;
    }
    *out = g;
    return 0;
}

int t2_gguf_open_mem(t2_gguf **out, const void *buf, size_t size, const char *name) {
    if (!out) return t2_err_set(T2_EINVAL, "t2_gguf_open_mem: out is NULL");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!buf && size) return t2_err_set(T2_EINVAL, "%s: NULL buffer of %zu bytes", name, size);
    return open_common(out, name, buf, size, NULL);
}

/* The file is mapped read-only (MAP_PRIVATE); like any mmap reader, a file truncated by another
 * process while open faults on access (SIGBUS): model files are not modified in place (the
 * writer renames a new file over the old one, which leaves existing mappings intact). */
int t2_gguf_open(t2_gguf **out, const char *path) {
    if (!out) return t2_err_set(T2_EINVAL, "t2_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return t2_err_set(T2_EINVAL, "t2_gguf_open: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return t2_err_set(T2_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return t2_err_set(T2_EIO, "%s: is a directory, not a GGUF file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return t2_err_set(T2_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return t2_err_set(T2_EFORMAT, "%s: empty file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return t2_err_set(T2_EIO, "%s: too large to map (%lld bytes)", path,
                          (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED) return t2_err_set(T2_EIO, "%s: cannot map: %s", path, strerror(e));
    return open_common(out, path, map, size, map);
}

const char *t2_gguf_path(const t2_gguf *g) { return g->path; }
uint32_t t2_gguf_version(const t2_gguf *g) { return g->version; }
size_t t2_gguf_file_size(const t2_gguf *g) { return g->size; }
const void *t2_gguf_file_data(const t2_gguf *g) { return g->base; }

/* ---- key/values ---- */

int64_t t2_gguf_n_kv(const t2_gguf *g) { return g->n_kv; }

int64_t t2_gguf_find_key(const t2_gguf *g, const char *key) {
    return index_find(&g->kv_ix, key);
}

/* NULL if i is out of range. */
const char *t2_gguf_key_at(const t2_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

/* (t2_gguf_vtype)-1 (no valid type) if i is out of range. */
t2_gguf_vtype t2_gguf_kv_type(const t2_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_kv ? (t2_gguf_vtype)g->kv[i].type : (t2_gguf_vtype)-1;
}

/* The kv for key, or T2_ENOTFOUND naming it. */
static int lookup(const t2_gguf *g, const char *key, const gguf_kv **kv) {
    int64_t i = index_find(&g->kv_ix, key);
    if (i < 0)
        return t2_err_set(T2_ENOTFOUND, "%s: key '%s' not found", g->path, key ? key : "(null)");
    *kv = &g->kv[i];
    return 0;
}

/* T2_EFORMAT: "key 'k' is a string, expected an integer". */
static int wrong_type(const t2_gguf *g, const char *key, const gguf_kv *kv, const char *expected) {
    if (kv->type == T2_GGUF_ARRAY)
        return t2_err_set(T2_EFORMAT, "%s: key '%s' is an array of %s, expected %s", g->path, key,
                          vtype_name(kv->elem), expected);
    return t2_err_set(T2_EFORMAT, "%s: key '%s' is %s, expected %s", g->path, key,
                      vtype_desc(kv->type), expected);
}

int t2_gguf_get_u32(const t2_gguf *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = NULL;
    int rc = lookup(g, key, &kv);
    if (rc < 0) return rc;
    if (kv->type != T2_GGUF_BOOL && !vtype_is_int(kv->type))
        return wrong_type(g, key, kv, "an integer");
    num v = load_num(kv->val, kv->type);
    int64_t x;
    if (num_to_i64(&v, &x) < 0 || x < 0 || x > (int64_t)UINT32_MAX) {
        char b[40];
        return t2_err_set(T2_EFORMAT, "%s: key '%s' value %s does not fit in a uint32", g->path,
                          key, num_str(b, sizeof b, &v));
    }
    *out = (uint32_t)x;
    return 0;
}

int t2_gguf_get_i64(const t2_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv = NULL;
    int rc = lookup(g, key, &kv);
    if (rc < 0) return rc;
    if (!vtype_is_int(kv->type)) return wrong_type(g, key, kv, "an integer");
    num v = load_num(kv->val, kv->type);
    if (num_to_i64(&v, out) < 0) {
        char b[40];
        return t2_err_set(T2_EFORMAT, "%s: key '%s' value %s does not fit in an int64", g->path,
                          key, num_str(b, sizeof b, &v));
    }
    return 0;
}

int t2_gguf_get_f32(const t2_gguf *g, const char *key, float *out) {
    const gguf_kv *kv = NULL;
    int rc = lookup(g, key, &kv);
    if (rc < 0) return rc;
    if (kv->type == T2_GGUF_FLOAT32) *out = ldf32(kv->val);
    else if (kv->type == T2_GGUF_FLOAT64) *out = (float)ldf64(kv->val);
    else return wrong_type(g, key, kv, "a float");
    return 0;
}

int t2_gguf_get_bool(const t2_gguf *g, const char *key, int *out) {
    const gguf_kv *kv = NULL;
    int rc = lookup(g, key, &kv);
    if (rc < 0) return rc;
    if (kv->type != T2_GGUF_BOOL) return wrong_type(g, key, kv, "a bool");
    *out = kv->val[0];
    return 0;
}

int t2_gguf_get_str(const t2_gguf *g, const char *key, const char **s, size_t *len) {
    const gguf_kv *kv = NULL;
    int rc = lookup(g, key, &kv);
    if (rc < 0) return rc;
    if (kv->type != T2_GGUF_STRING) return wrong_type(g, key, kv, "a string");
    *s = (const char *)kv->val;
    *len = (size_t)kv->n;
    return 0;
}

char *t2_gguf_str_dup(const t2_gguf *g, const char *key) {
    const char *s;
    size_t n;
    if (t2_gguf_get_str(g, key, &s, &n) < 0) {
        t2_err_clear();
        return strdup("");
    }
    return strndup(s, n);
}

int t2_gguf_get_arr(const t2_gguf *g, const char *key, t2_gguf_vtype *elem, uint64_t *n) {
    const gguf_kv *kv = NULL;
    int rc = lookup(g, key, &kv);
    if (rc < 0) return rc;
    if (kv->type != T2_GGUF_ARRAY) return wrong_type(g, key, kv, "an array");
    *elem = (t2_gguf_vtype)kv->elem;
    *n = kv->n;
    return 0;
}

/* The kv for key if it is an array of numbers (or bools). */
static int lookup_num_arr(const t2_gguf *g, const char *key, const gguf_kv **kv) {
    int rc = lookup(g, key, kv);
    if (rc < 0) return rc;
    if ((*kv)->type != T2_GGUF_ARRAY || (*kv)->elem == T2_GGUF_STRING)
        return wrong_type(g, key, *kv, "a numeric array");
    return 0;
}

static int bad_index(const t2_gguf *g, const char *key, uint64_t i, uint64_t n) {
    return t2_err_set(T2_ERANGE, "%s: key '%s': index %llu out of range (array of %llu)", g->path,
                      key, (unsigned long long)i, (unsigned long long)n);
}

/* Element i of a numeric array, as an int64 (integral and in range) or an error. */
static int elem_i64(const t2_gguf *g, const char *key, const gguf_kv *kv, uint64_t i,
                    int64_t lo, int64_t hi, const char *target, int64_t *out) {
    num v = load_num(kv->val + i * vtype_size(kv->elem), kv->elem);
    if (num_to_i64(&v, out) < 0 || *out < lo || *out > hi) {
        char b[40];
        return t2_err_set(T2_EFORMAT, "%s: key '%s' element %llu value %s does not fit in %s",
                          g->path, key, (unsigned long long)i, num_str(b, sizeof b, &v), target);
    }
    return 0;
}

int t2_gguf_arr_f64(const t2_gguf *g, const char *key, uint64_t i, double *out) {
    const gguf_kv *kv = NULL;
    int rc = lookup_num_arr(g, key, &kv);
    if (rc < 0) return rc;
    if (i >= kv->n) return bad_index(g, key, i, kv->n);
    num v = load_num(kv->val + i * vtype_size(kv->elem), kv->elem);
    *out = num_to_f64(&v);
    return 0;
}

int t2_gguf_arr_i64(const t2_gguf *g, const char *key, uint64_t i, int64_t *out) {
    const gguf_kv *kv = NULL;
    int rc = lookup_num_arr(g, key, &kv);
    if (rc < 0) return rc;
    if (i >= kv->n) return bad_index(g, key, i, kv->n);
    return elem_i64(g, key, kv, i, INT64_MIN, INT64_MAX, "an int64", out);
}

/* Bulk copies: the count must match so that a loader's expectation (n_vocab scores) is checked. */
static int copy_count(const t2_gguf *g, const char *key, const gguf_kv *kv, uint64_t n) {
    if (n == kv->n) return 0;
    return t2_err_set(T2_EMISMATCH, "%s: key '%s' has %llu elements, expected %llu", g->path, key,
                      (unsigned long long)kv->n, (unsigned long long)n);
}

int t2_gguf_arr_copy_f32(const t2_gguf *g, const char *key, float *out, uint64_t n) {
    const gguf_kv *kv = NULL;
    int rc = lookup_num_arr(g, key, &kv);
    if (rc < 0 || (rc = copy_count(g, key, kv, n)) < 0) return rc;
    size_t esz = vtype_size(kv->elem);
    if (kv->elem == T2_GGUF_FLOAT32) {
        for (uint64_t i = 0; i < n; i++) out[i] = ldf32(kv->val + 4 * i);
        return 0;
    }
    for (uint64_t i = 0; i < n; i++) {
        num v = load_num(kv->val + i * esz, kv->elem);
        out[i] = (float)num_to_f64(&v);
    }
    return 0;
}

int t2_gguf_arr_copy_i32(const t2_gguf *g, const char *key, int32_t *out, uint64_t n) {
    const gguf_kv *kv = NULL;
    int rc = lookup_num_arr(g, key, &kv);
    if (rc < 0 || (rc = copy_count(g, key, kv, n)) < 0) return rc;
    for (uint64_t i = 0; i < n; i++) {
        int64_t x;
        if ((rc = elem_i64(g, key, kv, i, INT32_MIN, INT32_MAX, "an int32", &x)) < 0) return rc;
        out[i] = (int32_t)x;
    }
    return 0;
}

int t2_gguf_arr_str(const t2_gguf *g, const char *key, uint64_t i, const char **s, size_t *len) {
    const gguf_kv *kv = NULL;
    int rc = lookup(g, key, &kv);
    if (rc < 0) return rc;
    if (kv->type != T2_GGUF_ARRAY || kv->elem != T2_GGUF_STRING)
        return wrong_type(g, key, kv, "a string array");
    if (i >= kv->n) return bad_index(g, key, i, kv->n);
    uint64_t off = kv->str_off[i];
    *len = (size_t)ld64(g->base + off - 8);
    *s = (const char *)g->base + off;
    return 0;
}

/* ---- tensors ---- */

int64_t t2_gguf_n_tensors(const t2_gguf *g) { return g->n_tensors; }

/* NULL if i is out of range. */
const t2_gguf_tensor *t2_gguf_tensor_at(const t2_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const t2_gguf_tensor *t2_gguf_find_tensor(const t2_gguf *g, const char *name) {
    int64_t i = index_find(&g->tensor_ix, name);
    return i >= 0 ? &g->tensors[i] : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Writer                                                                                      */

/* A growable byte buffer; `oom` is sticky so that callers check once at the end. */
typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
    int oom;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put32(bytes *b, uint32_t v) {
    uint8_t x[4];
    st32(x, v);
    put(b, x, 4);
}
static void put64(bytes *b, uint64_t v) {
    uint8_t x[8];
    st64(x, v);
    put(b, x, 8);
}
static void put_str(bytes *b, const void *s, size_t n) {
    put64(b, n);
    put(b, s, n);
}

typedef struct wkv {
    char *key;
    uint32_t type;
    bytes val; /* the value exactly as written after the type */
} wkv;

typedef struct wtensor {
    char *name;
    t2_dtype type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data; /* borrowed until t2_gguf_writer_write returns */
    size_t nbytes;
} wtensor;

struct t2_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

int t2_gguf_writer_new(t2_gguf_writer **out) {
    *out = calloc(1, sizeof(t2_gguf_writer));
    return *out ? T2_OK : t2_err_set(T2_ENOMEM, "out of memory");
}

void t2_gguf_writer_destroy(t2_gguf_writer **wp) {
    if (!wp || !*wp) return;
    t2_gguf_writer *w = *wp;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
    *wp = NULL;
}

/* Set key to a value of `type` encoded in *val. Takes ownership of val->p in every case. */
static int set_value(t2_gguf_writer *w, const char *key, uint32_t type, bytes *val) {
    int rc = 0;
    if (!w || !key || !*key) {
        rc = t2_err_set(T2_EINVAL, "gguf writer: %s", !w ? "writer is NULL" : "empty key");
        goto fail;
    }
    if (val->oom) {
        rc = t2_err_set(T2_ENOMEM, "gguf writer: out of memory for key '%s'", key);
        goto fail;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) { /* replace in place: keeps insertion order */
            free(w->kv[i].val.p);
            w->kv[i].type = type;
            w->kv[i].val = *val;
            return 0;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) goto oom;
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) goto oom;
    w->kv[w->n_kv++] = (wkv){k, type, *val};
    return 0;
oom:
    rc = t2_err_set(T2_ENOMEM, "gguf writer: out of memory for key '%s'", key);
fail:
    free(val->p);
    return rc;
}

int t2_gguf_set_u32(t2_gguf_writer *w, const char *key, uint32_t v) {
    bytes b = {0};
    put32(&b, v);
    return set_value(w, key, T2_GGUF_UINT32, &b);
}

int t2_gguf_set_i32(t2_gguf_writer *w, const char *key, int32_t v) {
    bytes b = {0};
    put32(&b, (uint32_t)v);
    return set_value(w, key, T2_GGUF_INT32, &b);
}

int t2_gguf_set_u64(t2_gguf_writer *w, const char *key, uint64_t v) {
    bytes b = {0};
    put64(&b, v);
    return set_value(w, key, T2_GGUF_UINT64, &b);
}

int t2_gguf_set_f32(t2_gguf_writer *w, const char *key, float v) {
    bytes b = {0};
    uint32_t u;
    memcpy(&u, &v, 4);
    put32(&b, u);
    return set_value(w, key, T2_GGUF_FLOAT32, &b);
}

int t2_gguf_set_bool(t2_gguf_writer *w, const char *key, int v) {
    bytes b = {0};
    uint8_t x = v != 0;
    put(&b, &x, 1);
    return set_value(w, key, T2_GGUF_BOOL, &b);
}

int t2_gguf_set_str(t2_gguf_writer *w, const char *key, const char *s) {
    bytes b = {0};
    if (!s) return t2_err_set(T2_EINVAL, "gguf writer: key '%s': NULL string", key ? key : "");
    put_str(&b, s, strlen(s));
    return set_value(w, key, T2_GGUF_STRING, &b);
}

/* n 4-byte elements (f32 or i32 bit patterns) at v. */
static int set_arr32(t2_gguf_writer *w, const char *key, uint32_t elem, const void *v,
                     uint64_t n) {
    bytes b = {0};
    if (n && !v) return t2_err_set(T2_EINVAL, "gguf writer: key '%s': NULL array", key ? key : "");
    if (n > (SIZE_MAX - 12) / 4)
        return t2_err_set(T2_EINVAL, "gguf writer: key '%s': array too large", key ? key : "");
    put32(&b, elem);
    put64(&b, n);
    const uint8_t *p = v;
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + 4 * i, 4);
        put32(&b, u);
    }
    return set_value(w, key, T2_GGUF_ARRAY, &b);
}

int t2_gguf_set_arr_f32(t2_gguf_writer *w, const char *key, const float *v, uint64_t n) {
    return set_arr32(w, key, T2_GGUF_FLOAT32, v, n);
}

int t2_gguf_set_arr_i32(t2_gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    return set_arr32(w, key, T2_GGUF_INT32, v, n);
}

int t2_gguf_set_arr_str(t2_gguf_writer *w, const char *key, const char *const *strs,
                        const size_t *lens, uint64_t n) {
    bytes b = {0};
    if (n && !strs)
        return t2_err_set(T2_EINVAL, "gguf writer: key '%s': NULL array", key ? key : "");
    put32(&b, T2_GGUF_STRING);
    put64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            free(b.p);
            return t2_err_set(T2_EINVAL, "gguf writer: key '%s': string %llu is NULL",
                              key ? key : "", (unsigned long long)i);
        }
        put_str(&b, strs[i], lens ? lens[i] : strlen(strs[i]));
    }
    return set_value(w, key, T2_GGUF_ARRAY, &b);
}

int t2_gguf_add_tensor(t2_gguf_writer *w, const char *name, t2_dtype type, uint32_t n_dims,
                       const int64_t *ne, const void *data) {
    if (!w || !name || !ne || !data)
        return t2_err_set(T2_EINVAL, "gguf writer: add_tensor: NULL argument");
    if (!*name || strlen(name) > GGUF_MAX_NAME)
        return t2_err_set(T2_EINVAL, "gguf writer: tensor name '%s' must have 1..%d bytes", name,
                          GGUF_MAX_NAME);
    if (!t2_dtype_supported((uint32_t)type))
        return t2_err_set(T2_EINVAL, "gguf writer: tensor '%s': unsupported type %d", name,
                          (int)type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return t2_err_set(T2_EINVAL, "gguf writer: tensor '%s': n_dims %u (must be 1..%d)", name,
                          n_dims, GGUF_MAX_DIMS);
    uint64_t count = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || (uint64_t)ne[d] > (MAX_ELEMENTS - 1) / count)
            return t2_err_set(T2_EINVAL, "gguf writer: tensor '%s': bad dimension %u (%lld)",
                              name, d, (long long)ne[d]);
        count *= (uint64_t)ne[d];
    }
    if (ne[0] % t2_dtype_block(type))
        return t2_err_set(T2_EINVAL, "gguf writer: tensor '%s': %s row length %lld is not a "
                          "multiple of %d", name, t2_dtype_name(type), (long long)ne[0],
                          t2_dtype_block(type));
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return t2_err_set(T2_EINVAL, "gguf writer: duplicate tensor '%s'", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return t2_err_set(T2_ENOMEM, "gguf writer: out of memory");
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return t2_err_set(T2_ENOMEM, "gguf writer: out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = t2_dtype_row_bytes(type, ne[0]) * (size_t)(count / (uint64_t)ne[0]);
    w->n_t++;
    return 0;
}

/* Write n zero bytes. */
static int put_zeros(FILE *f, size_t n) {
    static const uint8_t zeros[4096];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k) return -1;
        n -= k;
    }
    return 0;
}

static size_t pad_to(size_t n, size_t align) { return (align - n % align) % align; }

int t2_gguf_writer_write(t2_gguf_writer *w, const char *path) {
    if (!w || !path) return t2_err_set(T2_EINVAL, "gguf writer: NULL writer or path");
    bytes hdr = {0};
    char *tmp = NULL;
    FILE *f = NULL;
    int rc = 0;

    /* Alignment: general.alignment if the caller set it (must be a valid uint32), else 32. */
    size_t align = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, "general.alignment") == 0) {
            uint32_t a = w->kv[i].type == T2_GGUF_UINT32 ? ld32(w->kv[i].val.p) : 0;
            if (a == 0 || (a & (a - 1))) {
                rc = t2_err_set(T2_EINVAL, "%s: general.alignment must be a uint32 power of two",
                                path);
                goto done;
            }
            align = a;
        }

    put(&hdr, GGUF_MAGIC, 4);
    put32(&hdr, GGUF_VERSION);
    put64(&hdr, w->n_t);
    put64(&hdr, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(&hdr, w->kv[i].key, strlen(w->kv[i].key));
        put32(&hdr, w->kv[i].type);
        put(&hdr, w->kv[i].val.p, w->kv[i].val.n);
    }
    /* Tensor data back to back in insertion order, each padded to the alignment (the layout
     * llama.cpp expects: offset_i = sum of padded sizes before it). */
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(&hdr, t->name, strlen(t->name));
        put32(&hdr, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put64(&hdr, (uint64_t)t->ne[d]);
        put32(&hdr, (uint32_t)t->type);
        put64(&hdr, off);
        off += t->nbytes + pad_to(t->nbytes, align); /* each < 2^56: no overflow in practice */
    }
    for (size_t k = pad_to(hdr.n, align); k; k--) put(&hdr, "", 1);
    if (hdr.oom) {
        rc = t2_err_set(T2_ENOMEM, "%s: out of memory building the header", path);
        goto done;
    }

    size_t plen = strlen(path);
    if (!(tmp = malloc(plen + 5))) {
        rc = t2_err_set(T2_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    if (!(f = fopen(tmp, "wb"))) {
        rc = t2_err_set(T2_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    if (fwrite(hdr.p, 1, hdr.n, f) != hdr.n) goto write_error;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if (fwrite(t->data, 1, t->nbytes, f) != t->nbytes) goto write_error;
        if (put_zeros(f, pad_to(t->nbytes, align)) < 0) goto write_error;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) goto write_error;
    int e = fclose(f) != 0 ? errno : 0;
    f = NULL;
    if (e) {
        rc = t2_err_set(T2_EIO, "%s: write failed: %s", tmp, strerror(e));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = t2_err_set(T2_EIO, "%s: cannot rename %s to it: %s", path, tmp, strerror(errno));
        goto done;
    }
    goto done;

write_error:
    rc = t2_err_set(T2_EIO, "%s: write failed: %s", tmp, strerror(errno));
done:
    if (f) fclose(f);
    if (rc < 0 && tmp) unlink(tmp);
    free(tmp);
    free(hdr.p);
    return rc;
}
