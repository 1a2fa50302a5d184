/* fuzz_safetensors.c - libFuzzer target for the safetensors header reader.
 *
 * Opens the input with t2_st_open_mem; a failure must leave no handle and a message. If the file
 * is accepted, every tensor must be findable by its name, lie inside the input after the header,
 * have nbytes = element count x element size, and not overlap the tensor before it in the file.
 * Seeds: fuzz/corpus/fuzz_safetensors (small files of tests/make_hf.py's writer).
 */
#include "engine/safetensors.h"
#include "base/t2_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static volatile uint64_t sink;

static size_t elem_size(const char *dtype) {
    static const char *const one[] = {"I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
    static const char *const two[] = {"F16", "BF16", "I16", "U16"};
    static const char *const four[] = {"F32", "I32", "U32"};
    for (size_t i = 0; i < 5; i++) if (!strcmp(dtype, one[i])) return 1;
    for (size_t i = 0; i < 4; i++) if (!strcmp(dtype, two[i])) return 2;
    for (size_t i = 0; i < 3; i++) if (!strcmp(dtype, four[i])) return 4;
    return 8;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    t2_st *st = NULL;
    if (t2_st_open_mem(&st, data, size, "fuzz.safetensors") != 0) {
        if (st || !t2_err_msg()[0]) abort();
        return 0;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    const uint8_t *lo = data + 8 + hlen, *hi = data + size;
    for (int64_t i = 0; i < t2_st_n_tensors(st); i++) {
        const t2_st_tensor *t = t2_st_tensor_at(st, i);
        if (!t || t2_st_find(st, t->name) != t) abort();
        if (t->n_dims < 0 || t->n_dims > T2_ST_MAX_DIMS) abort();
        uint64_t n = 1;
        for (int d = 0; d < t->n_dims; d++) n *= (uint64_t)t->shape[d];
        if (n * elem_size(t->dtype) != t->nbytes) abort();
        const uint8_t *p = t->data;
        if (p < lo || p > hi || t->nbytes > (size_t)(hi - p)) abort();
        if (t->nbytes) sink += p[0] + p[t->nbytes - 1];
    }
    if (t2_st_tensor_at(st, t2_st_n_tensors(st))) abort();
    t2_st_close(&st);
    return 0;
}
