/* fuzz_gguf.c - libFuzzer target for the GGUF reader.
 *
 * Opens the input with t2_gguf_open_mem; if it is accepted, every accessor must be safe: walk
 * every key with every typed getter (errors are fine, crashes and sanitizer reports are not),
 * read array elements up to a cap, and touch the first and last byte of every tensor.
 * Seeds: fuzz/corpus/fuzz_gguf (written by `test_gguf --write-seeds DIR`).
 */
#include "engine/gguf.h"
#include "base/t2_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ELEM_CAP 4096 /* array elements read per key */

static volatile uint64_t sink;

static void walk_kv(const t2_gguf *g, int64_t i) {
    const char *key = t2_gguf_key_at(g, i);
    if (!key || t2_gguf_find_key(g, key) != i) abort(); /* keys are unique and indexed */
    uint32_t u;
    int64_t x;
    float f;
    int b;
    const char *s;
    size_t len;
    t2_gguf_vtype elem;
    uint64_t n;
    if (t2_gguf_get_u32(g, key, &u) == 0) sink += u;
    if (t2_gguf_get_i64(g, key, &x) == 0) sink += (uint64_t)x;
    if (t2_gguf_get_f32(g, key, &f) == 0) sink += (uint64_t)(f == f);
    if (t2_gguf_get_bool(g, key, &b) == 0) sink += (uint64_t)b;
    if (t2_gguf_get_str(g, key, &s, &len) == 0 && len) sink += (uint8_t)(s[0] + s[len - 1]);
    if (t2_gguf_get_arr(g, key, &elem, &n) != 0) {
        if (t2_gguf_kv_type(g, i) == T2_GGUF_ARRAY) abort();
        return;
    }
    for (uint64_t j = 0; j < n && j < ELEM_CAP; j++) {
        double d;
        if (elem == T2_GGUF_STRING) {
            if (t2_gguf_arr_str(g, key, j, &s, &len) != 0) abort();
            if (len) sink += (uint8_t)(s[0] + s[len - 1]);
        } else {
            if (t2_gguf_arr_f64(g, key, j, &d) != 0) abort();
            sink += (uint64_t)(d == d);
            if (t2_gguf_arr_i64(g, key, j, &x) == 0) sink += (uint64_t)x;
        }
    }
    if (t2_gguf_arr_f64(g, key, n, &(double){0}) == 0) abort(); /* one past the end */
    if (elem != T2_GGUF_STRING && n <= ELEM_CAP) {
        float fo[ELEM_CAP + 1];
        int32_t io[ELEM_CAP + 1];
        if (t2_gguf_arr_copy_f32(g, key, fo, n) != 0) abort();
        if (t2_gguf_arr_copy_i32(g, key, io, n) == 0 && n) sink += (uint64_t)io[n - 1];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    t2_gguf *g = NULL;
    if (t2_gguf_open_mem(&g, data, size, "fuzz.gguf") != 0) {
        if (g || !t2_err_msg()[0]) abort(); /* failure leaves no handle and says why */
        return 0;
    }
    for (int64_t i = 0; i < t2_gguf_n_kv(g); i++) walk_kv(g, i);
    for (int64_t i = 0; i < t2_gguf_n_tensors(g); i++) {
        const t2_gguf_tensor *t = t2_gguf_tensor_at(g, i);
        if (!t || t2_gguf_find_tensor(g, t->name) != t) abort();
        if (t->n_dims < 1 || t->n_dims > 4 || t->nbytes == 0) abort();
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) abort();
        sink += p[0] + p[t->nbytes - 1];
    }
    t2_gguf_close(&g);
    return 0;
}
