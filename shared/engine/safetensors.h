/* safetensors.h - reader of Hugging Face .safetensors files (mmap, fully validated).
 *
 * Format: u64 little-endian header length N, N bytes of JSON (an object: tensor name ->
 * {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]}, plus an optional
 * "__metadata__" object of strings), then the data section; offsets are relative to it.
 *
 * t2_st_open() maps the file and checks everything before returning: the header length against
 * the file size and a limit, the JSON (jansson, duplicate keys refused), every entry's fields and
 * types, the dtype (known names; T2 computes with F32, F16 and BF16), dimensions (0..8, each
 * >= 0, product without overflow), that end - begin equals the element count times the element
 * size, that every tensor lies inside the data section and that no two tensors overlap. After a
 * successful open, accessors never fail on bounds. Errors name the file and the problem, e.g.
 * "m.safetensors: tensor 'lm_head.weight': data_offsets [0, 4096] past the end of the data
 * section (1024 bytes)".
 */
#ifndef T2_SAFETENSORS_H
#define T2_SAFETENSORS_H

#include "engine/t2_types.h"

#include <stddef.h>
#include <stdint.h>

#define T2_ST_MAX_HEADER (100u << 20) /* header bytes */
#define T2_ST_MAX_DIMS 8

typedef struct t2_st_tensor {
    const char *name;               /* owned by the t2_st */
    const char *dtype;              /* as in the file: "F32", "BF16", "I64", ... */
    int supported;                  /* 1 if F32, F16 or BF16: `type` is valid */
    t2_dtype type;
    int n_dims;                     /* 0..T2_ST_MAX_DIMS */
    int64_t shape[T2_ST_MAX_DIMS];  /* row-major: shape[n_dims - 1] is contiguous */
    size_t nbytes;
    const void *data;               /* into the mapping; valid until t2_st_close */
} t2_st_tensor;

typedef struct t2_st t2_st;

/* Open and validate a file. On error *out is NULL and t2_err_msg() names path and problem. */
int t2_st_open(t2_st **out, const char *path);
/* Same over a caller-owned buffer (not copied; must outlive the t2_st); `name` for messages. */
int t2_st_open_mem(t2_st **out, const void *buf, size_t size, const char *name);
/* Takes NULL; sets *st to NULL. */
void t2_st_close(t2_st **st);

const char *t2_st_path(const t2_st *st);
int64_t t2_st_n_tensors(const t2_st *st);
const t2_st_tensor *t2_st_tensor_at(const t2_st *st, int64_t i); /* sorted by name */
const t2_st_tensor *t2_st_find(const t2_st *st, const char *name); /* or NULL */

#endif
