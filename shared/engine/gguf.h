/* gguf.h - GGUF v3 reader (mmap, fully validated) and writer.
 *
 * Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md. Little-endian only.
 *
 * Reading: t2_gguf_open() maps the file and validates *everything* before returning: magic,
 * version (2 or 3), counts against the file size, every string and array length, key value
 * types, duplicate keys and tensor names, tensor dims (1..4, each > 0, product without
 * overflow), tensor types (only those T2 computes with: F32, F16, BF16, Q8_0), data offsets
 * (aligned to general.alignment, default 32, a power of two) and that every tensor's bytes lie
 * inside the file. After a successful open, all accessors are safe and never fail on bounds.
 * Errors name the file and the problem: "m.gguf: tensor 'blk.0.attn_q.weight': data
 * [offset 4096, 8192 bytes] extends past end of file (10000 bytes)".
 *
 * Writing: a t2_gguf_writer collects key/values and tensors, then writes the file in one go
 * (to PATH.tmp, then rename), aligning tensor data to 32 bytes.
 */
#ifndef T2_GGUF_H
#define T2_GGUF_H

#include "engine/t2_types.h"

#include <stddef.h>
#include <stdint.h>

typedef enum t2_gguf_vtype {
    T2_GGUF_UINT8 = 0,
    T2_GGUF_INT8 = 1,
    T2_GGUF_UINT16 = 2,
    T2_GGUF_INT16 = 3,
    T2_GGUF_UINT32 = 4,
    T2_GGUF_INT32 = 5,
    T2_GGUF_FLOAT32 = 6,
    T2_GGUF_BOOL = 7,
    T2_GGUF_STRING = 8,
    T2_GGUF_ARRAY = 9,
    T2_GGUF_UINT64 = 10,
    T2_GGUF_INT64 = 11,
    T2_GGUF_FLOAT64 = 12,
} t2_gguf_vtype;

typedef struct t2_gguf_tensor {
    const char *name;   /* NUL-terminated copy owned by the t2_gguf */
    uint32_t n_dims;    /* 1..4 */
    int64_t ne[4];      /* GGML order: ne[0] is the contiguous (column) dimension; unused = 1 */
    t2_dtype type;
    uint64_t offset;    /* relative to the data section */
    size_t nbytes;
    const void *data;   /* into the mapping; valid until t2_gguf_close */
} t2_gguf_tensor;

typedef struct t2_gguf t2_gguf;

/* Open and validate. On error returns a T2_E* code with t2_err_msg() naming path and problem,
 * and *out is NULL. */
int t2_gguf_open(t2_gguf **out, const char *path);
/* Same over a caller-owned buffer (no copy; must outlive the t2_gguf). `name` is used in
 * messages. Used by the fuzzer and tests. */
int t2_gguf_open_mem(t2_gguf **out, const void *buf, size_t size, const char *name);
/* Takes NULL; sets *g to NULL. */
void t2_gguf_close(t2_gguf **g);

const char *t2_gguf_path(const t2_gguf *g);
uint32_t t2_gguf_version(const t2_gguf *g);
size_t t2_gguf_file_size(const t2_gguf *g);
const void *t2_gguf_file_data(const t2_gguf *g); /* the whole mapping (for hashing) */

/* --- key/values. Lookups return T2_ENOTFOUND if the key is absent (message names the key
 * and the file) and T2_EFORMAT if it has an incompatible type or value. --- */
int64_t t2_gguf_n_kv(const t2_gguf *g);
int64_t t2_gguf_find_key(const t2_gguf *g, const char *key); /* index or -1 */
const char *t2_gguf_key_at(const t2_gguf *g, int64_t i);
t2_gguf_vtype t2_gguf_kv_type(const t2_gguf *g, int64_t i);

/* Any integer type whose value fits; bool counts as 0/1 for get_u32 only if the stored type is
 * bool. */
int t2_gguf_get_u32(const t2_gguf *g, const char *key, uint32_t *out);
int t2_gguf_get_i64(const t2_gguf *g, const char *key, int64_t *out);
/* FLOAT32 or FLOAT64. */
int t2_gguf_get_f32(const t2_gguf *g, const char *key, float *out);
int t2_gguf_get_bool(const t2_gguf *g, const char *key, int *out);
/* Not NUL-terminated in the file: returns a pointer into the mapping and its length. */
int t2_gguf_get_str(const t2_gguf *g, const char *key, const char **s, size_t *len);
/* A malloc'd NUL-terminated copy of the string at key, "" when the key is absent or not a string
 * (an optional text field); NULL only when out of memory. */
char *t2_gguf_str_dup(const t2_gguf *g, const char *key);
/* Arrays: element type and count. */
int t2_gguf_get_arr(const t2_gguf *g, const char *key, t2_gguf_vtype *elem, uint64_t *n);
/* Numeric array element i as double / int64 (any numeric element type). i < n is checked. */
int t2_gguf_arr_f64(const t2_gguf *g, const char *key, uint64_t i, double *out);
int t2_gguf_arr_i64(const t2_gguf *g, const char *key, uint64_t i, int64_t *out);
/* Bulk copy of a numeric array into float / int32 (converting); n must equal the count. */
int t2_gguf_arr_copy_f32(const t2_gguf *g, const char *key, float *out, uint64_t n);
int t2_gguf_arr_copy_i32(const t2_gguf *g, const char *key, int32_t *out, uint64_t n);
/* String array element i (pointer into the mapping, length). */
int t2_gguf_arr_str(const t2_gguf *g, const char *key, uint64_t i, const char **s, size_t *len);

/* --- tensors --- */
int64_t t2_gguf_n_tensors(const t2_gguf *g);
const t2_gguf_tensor *t2_gguf_tensor_at(const t2_gguf *g, int64_t i);
const t2_gguf_tensor *t2_gguf_find_tensor(const t2_gguf *g, const char *name); /* or NULL */

/* --- writer --- */
typedef struct t2_gguf_writer t2_gguf_writer;

/* Returns 0 and sets *out, or T2_ENOMEM (message in t2_err_msg) and *out = NULL. */
int t2_gguf_writer_new(t2_gguf_writer **out);
void t2_gguf_writer_destroy(t2_gguf_writer **w);

/* Keys and strings are copied. Setting a key twice replaces the value. Return 0 or T2_E*. */
int t2_gguf_set_u32(t2_gguf_writer *w, const char *key, uint32_t v);
int t2_gguf_set_i32(t2_gguf_writer *w, const char *key, int32_t v);
int t2_gguf_set_u64(t2_gguf_writer *w, const char *key, uint64_t v);
int t2_gguf_set_f32(t2_gguf_writer *w, const char *key, float v);
int t2_gguf_set_bool(t2_gguf_writer *w, const char *key, int v);
int t2_gguf_set_str(t2_gguf_writer *w, const char *key, const char *s);
int t2_gguf_set_arr_f32(t2_gguf_writer *w, const char *key, const float *v, uint64_t n);
int t2_gguf_set_arr_i32(t2_gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
/* strs[i] has length lens[i] (may contain any bytes); lens NULL means NUL-terminated. */
int t2_gguf_set_arr_str(t2_gguf_writer *w, const char *key, const char *const *strs,
                        const size_t *lens, uint64_t n);

/* ne in GGML order (ne[0] contiguous). `data` is BORROWED until t2_gguf_writer_write returns
 * (nbytes computed from type and ne). Duplicate names are an error. */
int t2_gguf_add_tensor(t2_gguf_writer *w, const char *name, t2_dtype type, uint32_t n_dims,
                       const int64_t *ne, const void *data);
/* Write the file: PATH.tmp then rename. */
int t2_gguf_writer_write(t2_gguf_writer *w, const char *path);

#endif
