/* test_gguf.c - GGUF reader/writer: round trips, getters, and a table of malformed files.
 *
 * Most files are built byte by byte here (build_small) so that every value type and array
 * type is covered and every field's position is known; corruption cases patch one field.
 *
 *   test_gguf                     run the tests
 *   test_gguf --write-seeds DIR   write the fuzzer's seed files (fuzz/corpus/fuzz_gguf) to DIR
 */
#include "engine/gguf.h"
#include "base/t2_err.h"
#include "t2_test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* Byte builder                                                                                */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void b_put(buf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void b_u8(buf *b, uint8_t v) { b_put(b, &v, 1); }
static void b_u16(buf *b, uint16_t v) {
    for (int i = 0; i < 2; i++) b_u8(b, (uint8_t)(v >> (8 * i)));
}
static void b_u32(buf *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b_u8(b, (uint8_t)(v >> (8 * i)));
}
static void b_u64(buf *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b_u8(b, (uint8_t)(v >> (8 * i)));
}
static void b_f32(buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    b_u32(b, u);
}
static void b_f64(buf *b, double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    b_u64(b, u);
}
static void b_strn(buf *b, const char *s, size_t n) {
    b_u64(b, n);
    b_put(b, s, n);
}
static void b_str(buf *b, const char *s) { b_strn(b, s, strlen(s)); }
/* Key header: name and value type; returns the offset of the type field. */
static size_t b_key(buf *b, const char *key, uint32_t type) {
    b_str(b, key);
    size_t at = b->n;
    b_u32(b, type);
    return at;
}
/* Array header after the key; returns the offset of the element type field. */
static size_t b_arr(buf *b, uint32_t elem, uint64_t n) {
    size_t at = b->n;
    b_u32(b, elem);
    b_u64(b, n);
    return at;
}

static void patch32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void patch64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Where build_small put the fields the corruption cases patch. */
typedef struct layout {
    size_t version, n_tensors, n_kv;
    size_t key0_len, key0_bytes; /* first key: u64 length, then its bytes */
    size_t name_len; /* general.name: string length field */
    size_t align_type, align_val; /* general.alignment: type field, value */
    size_t u8_type; /* t.u8: type field */
    size_t bool_val; /* t.bool: the byte */
    size_t ti8_key; /* bytes of the key "t.i8" */
    size_t au32_elem, au64_elem, abool_elem, astr_elem; /* array headers: element type (+4 n) */
    size_t abool_data; /* a.bool elements */
    size_t astr_len1; /* a.str element 1: length field */
    struct {
        size_t name, n_dims, ne, type, offset;
    } t[4];
    size_t data; /* data section start */
} layout;

#define N_SMALL_KV 28
#define N_SMALL_TENSORS 4
static const char *const small_tensor_names[N_SMALL_TENSORS] = {"a", "b", "q", "h"};
static const t2_dtype small_tensor_types[N_SMALL_TENSORS] = {T2_F32, T2_F16, T2_Q8_0, T2_BF16};
static const int64_t small_tensor_ne[N_SMALL_TENSORS][4] = {
    {3, 2, 1, 1}, {5, 1, 1, 1}, {32, 2, 1, 1}, {2, 1, 1, 2}};
static const uint32_t small_tensor_dims[N_SMALL_TENSORS] = {2, 1, 2, 4};
static const uint64_t small_tensor_off[N_SMALL_TENSORS] = {0, 32, 64, 160};
static const size_t small_tensor_bytes[N_SMALL_TENSORS] = {24, 10, 68, 8};
#define SMALL_DATA_BYTES 168 /* last tensor ends the file: every shorter prefix is invalid */

static const char astr_elem1[] = "he\0lo"; /* 5 bytes with a NUL inside */

/* A GGUF with one key of every scalar type, an array of every element type, and 4 tensors
 * (F32, F16, Q8_0, BF16). Data byte k of the data section is (k * 7 + 1) & 255. */
static void build_small(buf *b, layout *L, uint32_t version) {
    memset(L, 0, sizeof *L);
    b->n = 0;
    b_put(b, "GGUF", 4);
    L->version = b->n;
    b_u32(b, version);
    L->n_tensors = b->n;
    b_u64(b, N_SMALL_TENSORS);
    L->n_kv = b->n;
    b_u64(b, N_SMALL_KV);

    L->key0_len = b->n;
    L->key0_bytes = b->n + 8;
    b_key(b, "general.architecture", T2_GGUF_STRING);
    b_str(b, "llama");
    b_key(b, "general.name", T2_GGUF_STRING);
    L->name_len = b->n;
    b_str(b, "tiny test");
    L->align_type = b_key(b, "general.alignment", T2_GGUF_UINT32);
    L->align_val = b->n;
    b_u32(b, 32);
    L->u8_type = b_key(b, "t.u8", T2_GGUF_UINT8);
    b_u8(b, 200);
    L->ti8_key = b->n + 8;
    b_key(b, "t.i8", T2_GGUF_INT8);
    b_u8(b, (uint8_t)-100);
    b_key(b, "t.u16", T2_GGUF_UINT16);
    b_u16(b, 60000);
    b_key(b, "t.i16", T2_GGUF_INT16);
    b_u16(b, (uint16_t)-30000);
    b_key(b, "t.u32", T2_GGUF_UINT32);
    b_u32(b, 4000000000u);
    b_key(b, "t.i32", T2_GGUF_INT32);
    b_u32(b, (uint32_t)-2000000000);
    b_key(b, "t.f32", T2_GGUF_FLOAT32);
    b_f32(b, 1.5f);
    b_key(b, "t.bool", T2_GGUF_BOOL);
    L->bool_val = b->n;
    b_u8(b, 1);
    b_key(b, "t.u64", T2_GGUF_UINT64);
    b_u64(b, ((uint64_t)1 << 63) + 5);
    b_key(b, "t.i64", T2_GGUF_INT64);
    b_u64(b, (uint64_t)-((int64_t)1 << 40));
    b_key(b, "t.f64", T2_GGUF_FLOAT64);
    b_f64(b, 2.25);
    b_key(b, "t.u64s", T2_GGUF_UINT64);
    b_u64(b, 12345);

    b_key(b, "a.u8", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_UINT8, 3);
    b_u8(b, 1), b_u8(b, 2), b_u8(b, 250);
    b_key(b, "a.i8", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_INT8, 3);
    b_u8(b, 0xff), b_u8(b, 0), b_u8(b, 127);
    b_key(b, "a.u16", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_UINT16, 2);
    b_u16(b, 1), b_u16(b, 65535);
    b_key(b, "a.i16", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_INT16, 2);
    b_u16(b, 0x8000), b_u16(b, 7);
    b_key(b, "a.u32", T2_GGUF_ARRAY);
    L->au32_elem = b_arr(b, T2_GGUF_UINT32, 4);
    b_u32(b, 1), b_u32(b, 2), b_u32(b, 3), b_u32(b, 4000000000u);
    b_key(b, "a.i32", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_INT32, 3);
    b_u32(b, (uint32_t)-5), b_u32(b, 7), b_u32(b, 2147483647);
    b_key(b, "a.f32", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_FLOAT32, 3);
    b_f32(b, 0.5f), b_f32(b, -1.5f), b_f32(b, 3.0f);
    b_key(b, "a.bool", T2_GGUF_ARRAY);
    L->abool_elem = b_arr(b, T2_GGUF_BOOL, 3);
    L->abool_data = b->n;
    b_u8(b, 1), b_u8(b, 0), b_u8(b, 1);
    b_key(b, "a.u64", T2_GGUF_ARRAY);
    L->au64_elem = b_arr(b, T2_GGUF_UINT64, 2);
    b_u64(b, 9), b_u64(b, ((uint64_t)1 << 63) + 1);
    b_key(b, "a.i64", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_INT64, 2);
    b_u64(b, (uint64_t)-9), b_u64(b, (uint64_t)1 << 40);
    b_key(b, "a.f64", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_FLOAT64, 2);
    b_f64(b, 0.25), b_f64(b, 1e300);
    b_key(b, "a.str", T2_GGUF_ARRAY);
    L->astr_elem = b_arr(b, T2_GGUF_STRING, 3);
    b_str(b, "a");
    L->astr_len1 = b->n;
    b_strn(b, "", 0);
    b_strn(b, astr_elem1, 5);
    b_key(b, "a.empty", T2_GGUF_ARRAY);
    b_arr(b, T2_GGUF_UINT32, 0);

    for (int i = 0; i < N_SMALL_TENSORS; i++) {
        L->t[i].name = b->n + 8;
        b_str(b, small_tensor_names[i]);
        L->t[i].n_dims = b->n;
        b_u32(b, small_tensor_dims[i]);
        L->t[i].ne = b->n;
        for (uint32_t d = 0; d < small_tensor_dims[i]; d++)
            b_u64(b, (uint64_t)small_tensor_ne[i][d]);
        L->t[i].type = b->n;
        b_u32(b, (uint32_t)small_tensor_types[i]);
        L->t[i].offset = b->n;
        b_u64(b, small_tensor_off[i]);
    }
    while (b->n % 32) b_u8(b, 0);
    L->data = b->n;
    for (int k = 0; k < SMALL_DATA_BYTES; k++) b_u8(b, (uint8_t)((k * 7 + 1) & 255));
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                     */

static char tmpdir[64];

static const char *tmp_path(const char *name) {
    static char p[4][256];
    static int k;
    char *s = p[k++ & 3];
    snprintf(s, 256, "%s/%s", tmpdir, name);
    return s;
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

#define CHECK_ERR(expr, code, sub)                                                         \
    do {                                                                                   \
        t2_err_clear();                                                                    \
        int rc_ = (expr);                                                                  \
        T2_CHECK_MSG(rc_ == (code), "%s: rc %d, expected %d (%s)", #expr, rc_, (code),     \
                     t2_err_msg());                                                        \
        T2_CHECK_MSG(contains(t2_err_msg(), (sub)), "%s: message '%s' lacks '%s'", #expr,  \
                     t2_err_msg(), (sub));                                                 \
    } while (0)

/* Touch everything a successful open exposes (also used on random mutations). */
static void walk_all(const t2_gguf *g) {
    for (int64_t i = 0; i < t2_gguf_n_kv(g); i++) {
        const char *k = t2_gguf_key_at(g, i);
        T2_CHECK(k && t2_gguf_find_key(g, k) == i);
        t2_gguf_vtype elem;
        uint64_t n;
        if (t2_gguf_get_arr(g, k, &elem, &n) == 0) {
            for (uint64_t j = 0; j < n && j < 64; j++) {
                const char *s;
                size_t len;
                double d;
                int64_t x;
                if (elem == T2_GGUF_STRING) T2_CHECK(t2_gguf_arr_str(g, k, j, &s, &len) == 0);
                else T2_CHECK(t2_gguf_arr_f64(g, k, j, &d) == 0);
                (void)t2_gguf_arr_i64(g, k, j, &x);
            }
        }
    }
    for (int64_t i = 0; i < t2_gguf_n_tensors(g); i++) {
        const t2_gguf_tensor *t = t2_gguf_tensor_at(g, i);
        T2_CHECK(t2_gguf_find_tensor(g, t->name) == t);
        const uint8_t *d = t->data;
        const uint8_t *base = t2_gguf_file_data(g);
        T2_CHECK(d >= base && d + t->nbytes <= base + t2_gguf_file_size(g));
    }
}

/* Copy into an exact-size allocation (so ASan sees any read past the end) and open. */
static int open_copy(const uint8_t *p, size_t n, t2_gguf **g) {
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    int rc = t2_gguf_open_mem(g, c, n, "x.gguf");
    if (rc == 0) {
        walk_all(*g);
        t2_gguf_close(g);
    }
    free(c);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading a hand-built file                                                                   */

static void test_read_all_types(void) {
    buf b = {0};
    layout L;
    build_small(&b, &L, 3);
    t2_gguf *g = NULL;
    int rc = t2_gguf_open_mem(&g, b.p, b.n, "small.gguf");
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    if (rc) goto done;
    T2_CHECK_EQ_INT(t2_gguf_version(g), 3);
    T2_CHECK_EQ_INT(t2_gguf_file_size(g), b.n);
    T2_CHECK(t2_gguf_file_data(g) == b.p);
    T2_CHECK(strcmp(t2_gguf_path(g), "small.gguf") == 0);
    T2_CHECK_EQ_INT(t2_gguf_n_kv(g), N_SMALL_KV);
    T2_CHECK(strcmp(t2_gguf_key_at(g, 0), "general.architecture") == 0);
    T2_CHECK(strcmp(t2_gguf_key_at(g, N_SMALL_KV - 1), "a.empty") == 0);
    T2_CHECK(t2_gguf_key_at(g, N_SMALL_KV) == NULL && t2_gguf_key_at(g, -1) == NULL);
    T2_CHECK_EQ_INT(t2_gguf_find_key(g, "t.u8"), 3);
    T2_CHECK_EQ_INT(t2_gguf_find_key(g, "nope"), -1);
    T2_CHECK_EQ_INT(t2_gguf_kv_type(g, 3), T2_GGUF_UINT8);
    T2_CHECK_EQ_INT(t2_gguf_kv_type(g, t2_gguf_find_key(g, "a.str")), T2_GGUF_ARRAY);

    uint32_t u;
    int64_t x;
    float f;
    int bo;
    const char *s;
    size_t len;
    T2_CHECK(t2_gguf_get_u32(g, "t.u8", &u) == 0 && u == 200);
    T2_CHECK(t2_gguf_get_u32(g, "t.u16", &u) == 0 && u == 60000);
    T2_CHECK(t2_gguf_get_u32(g, "t.u32", &u) == 0 && u == 4000000000u);
    T2_CHECK(t2_gguf_get_u32(g, "t.u64s", &u) == 0 && u == 12345);
    T2_CHECK(t2_gguf_get_u32(g, "t.bool", &u) == 0 && u == 1);
    T2_CHECK(t2_gguf_get_u32(g, "general.alignment", &u) == 0 && u == 32);
    CHECK_ERR(t2_gguf_get_u32(g, "t.i8", &u), T2_EFORMAT, "value -100 does not fit");
    CHECK_ERR(t2_gguf_get_u32(g, "t.i32", &u), T2_EFORMAT, "t.i32");
    CHECK_ERR(t2_gguf_get_u32(g, "t.u64", &u), T2_EFORMAT, "9223372036854775813");
    CHECK_ERR(t2_gguf_get_u32(g, "t.f32", &u), T2_EFORMAT, "is a float32, expected an integer");
    CHECK_ERR(t2_gguf_get_u32(g, "general.architecture", &u), T2_EFORMAT,
              "small.gguf: key 'general.architecture' is a string, expected an integer");
    CHECK_ERR(t2_gguf_get_u32(g, "llama.block_count", &u), T2_ENOTFOUND,
              "small.gguf: key 'llama.block_count' not found");

    T2_CHECK(t2_gguf_get_i64(g, "t.i8", &x) == 0 && x == -100);
    T2_CHECK(t2_gguf_get_i64(g, "t.i16", &x) == 0 && x == -30000);
    T2_CHECK(t2_gguf_get_i64(g, "t.i32", &x) == 0 && x == -2000000000);
    T2_CHECK(t2_gguf_get_i64(g, "t.u32", &x) == 0 && x == 4000000000ll);
    T2_CHECK(t2_gguf_get_i64(g, "t.i64", &x) == 0 && x == -((int64_t)1 << 40));
    T2_CHECK(t2_gguf_get_i64(g, "t.u64s", &x) == 0 && x == 12345);
    CHECK_ERR(t2_gguf_get_i64(g, "t.u64", &x), T2_EFORMAT, "does not fit in an int64");
    CHECK_ERR(t2_gguf_get_i64(g, "t.bool", &x), T2_EFORMAT, "is a bool, expected an integer");
    CHECK_ERR(t2_gguf_get_i64(g, "a.i64", &x), T2_EFORMAT, "is an array of int64");
    CHECK_ERR(t2_gguf_get_i64(g, "missing", &x), T2_ENOTFOUND, "key 'missing' not found");

    T2_CHECK(t2_gguf_get_f32(g, "t.f32", &f) == 0 && f == 1.5f);
    T2_CHECK(t2_gguf_get_f32(g, "t.f64", &f) == 0 && f == 2.25f);
    CHECK_ERR(t2_gguf_get_f32(g, "t.u32", &f), T2_EFORMAT, "is a uint32, expected a float");
    T2_CHECK(t2_gguf_get_bool(g, "t.bool", &bo) == 0 && bo == 1);
    CHECK_ERR(t2_gguf_get_bool(g, "t.u8", &bo), T2_EFORMAT, "is a uint8, expected a bool");
    T2_CHECK(t2_gguf_get_str(g, "general.name", &s, &len) == 0 && len == 9 &&
             memcmp(s, "tiny test", 9) == 0);
    CHECK_ERR(t2_gguf_get_str(g, "a.str", &s, &len), T2_EFORMAT,
              "is an array of string, expected a string");

    /* Arrays. */
    static const struct {
        const char *key;
        t2_gguf_vtype elem;
        uint64_t n;
        double v[4];
    } arrs[] = {
        {"a.u8", T2_GGUF_UINT8, 3, {1, 2, 250}},
        {"a.i8", T2_GGUF_INT8, 3, {-1, 0, 127}},
        {"a.u16", T2_GGUF_UINT16, 2, {1, 65535}},
        {"a.i16", T2_GGUF_INT16, 2, {-32768, 7}},
        {"a.u32", T2_GGUF_UINT32, 4, {1, 2, 3, 4000000000.0}},
        {"a.i32", T2_GGUF_INT32, 3, {-5, 7, 2147483647}},
        {"a.f32", T2_GGUF_FLOAT32, 3, {0.5, -1.5, 3}},
        {"a.bool", T2_GGUF_BOOL, 3, {1, 0, 1}},
        {"a.u64", T2_GGUF_UINT64, 2, {9, 9223372036854775809.0}},
        {"a.i64", T2_GGUF_INT64, 2, {-9, 1099511627776.0}},
        {"a.f64", T2_GGUF_FLOAT64, 2, {0.25, 1e300}},
        {"a.empty", T2_GGUF_UINT32, 0, {0}},
    };
    for (size_t k = 0; k < sizeof arrs / sizeof arrs[0]; k++) {
        t2_gguf_vtype elem;
        uint64_t n;
        T2_CHECK_MSG(t2_gguf_get_arr(g, arrs[k].key, &elem, &n) == 0, "%s", arrs[k].key);
        T2_CHECK_MSG(elem == arrs[k].elem && n == arrs[k].n, "%s", arrs[k].key);
        for (uint64_t i = 0; i < arrs[k].n; i++) {
            double d = -1;
            T2_CHECK_MSG(t2_gguf_arr_f64(g, arrs[k].key, i, &d) == 0 && d == arrs[k].v[i],
                         "%s[%llu] = %g", arrs[k].key, (unsigned long long)i, d);
        }
        CHECK_ERR(t2_gguf_arr_f64(g, arrs[k].key, arrs[k].n, &(double){0}), T2_ERANGE,
                  "out of range");
    }
    T2_CHECK(t2_gguf_arr_i64(g, "a.i8", 0, &x) == 0 && x == -1);
    T2_CHECK(t2_gguf_arr_i64(g, "a.u64", 0, &x) == 0 && x == 9);
    T2_CHECK(t2_gguf_arr_i64(g, "a.i64", 1, &x) == 0 && x == (int64_t)1 << 40);
    T2_CHECK(t2_gguf_arr_i64(g, "a.f32", 2, &x) == 0 && x == 3);
    T2_CHECK(t2_gguf_arr_i64(g, "a.bool", 2, &x) == 0 && x == 1);
    CHECK_ERR(t2_gguf_arr_i64(g, "a.u64", 1, &x), T2_EFORMAT, "element 1");
    CHECK_ERR(t2_gguf_arr_i64(g, "a.f32", 0, &x), T2_EFORMAT, "0.5");
    CHECK_ERR(t2_gguf_arr_i64(g, "a.f64", 1, &x), T2_EFORMAT, "does not fit");
    CHECK_ERR(t2_gguf_arr_i64(g, "a.u8", 3, &x), T2_ERANGE, "index 3 out of range");
    CHECK_ERR(t2_gguf_arr_f64(g, "t.u8", 0, &(double){0}), T2_EFORMAT,
              "is a uint8, expected a numeric array");
    CHECK_ERR(t2_gguf_arr_f64(g, "a.str", 0, &(double){0}), T2_EFORMAT,
              "is an array of string, expected a numeric array");

    float fv[4];
    int32_t iv[4];
    T2_CHECK(t2_gguf_arr_copy_f32(g, "a.f32", fv, 3) == 0 && fv[0] == 0.5f && fv[1] == -1.5f &&
             fv[2] == 3.0f);
    T2_CHECK(t2_gguf_arr_copy_f32(g, "a.i16", fv, 2) == 0 && fv[0] == -32768.0f && fv[1] == 7.0f);
    T2_CHECK(t2_gguf_arr_copy_f32(g, "a.empty", fv, 0) == 0);
    CHECK_ERR(t2_gguf_arr_copy_f32(g, "a.f32", fv, 4), T2_EMISMATCH, "has 3 elements, expected 4");
    T2_CHECK(t2_gguf_arr_copy_i32(g, "a.i32", iv, 3) == 0 && iv[0] == -5 && iv[1] == 7 &&
             iv[2] == 2147483647);
    T2_CHECK(t2_gguf_arr_copy_i32(g, "a.u8", iv, 3) == 0 && iv[2] == 250);
    CHECK_ERR(t2_gguf_arr_copy_i32(g, "a.u32", iv, 4), T2_EFORMAT,
              "element 3 value 4000000000 does not fit in an int32");
    CHECK_ERR(t2_gguf_arr_copy_i32(g, "a.str", iv, 3), T2_EFORMAT, "expected a numeric array");
    CHECK_ERR(t2_gguf_arr_copy_i32(g, "nope", iv, 3), T2_ENOTFOUND, "'nope' not found");

    T2_CHECK(t2_gguf_arr_str(g, "a.str", 0, &s, &len) == 0 && len == 1 && s[0] == 'a');
    T2_CHECK(t2_gguf_arr_str(g, "a.str", 1, &s, &len) == 0 && len == 0);
    T2_CHECK(t2_gguf_arr_str(g, "a.str", 2, &s, &len) == 0 && len == 5 &&
             memcmp(s, astr_elem1, 5) == 0);
    CHECK_ERR(t2_gguf_arr_str(g, "a.str", 3, &s, &len), T2_ERANGE, "index 3 out of range");
    CHECK_ERR(t2_gguf_arr_str(g, "a.f32", 0, &s, &len), T2_EFORMAT,
              "is an array of float32, expected a string array");
    CHECK_ERR(t2_gguf_arr_str(g, "general.name", 0, &s, &len), T2_EFORMAT,
              "is a string, expected a string array");

    /* Tensors. */
    T2_CHECK_EQ_INT(t2_gguf_n_tensors(g), N_SMALL_TENSORS);
    for (int i = 0; i < N_SMALL_TENSORS; i++) {
        const t2_gguf_tensor *t = t2_gguf_find_tensor(g, small_tensor_names[i]);
        T2_CHECK(t && t == t2_gguf_tensor_at(g, i));
        if (!t) continue;
        T2_CHECK(strcmp(t->name, small_tensor_names[i]) == 0);
        T2_CHECK_EQ_INT(t->type, small_tensor_types[i]);
        T2_CHECK_EQ_INT(t->n_dims, small_tensor_dims[i]);
        for (int d = 0; d < 4; d++) T2_CHECK_EQ_INT(t->ne[d], small_tensor_ne[i][d]);
        T2_CHECK_EQ_INT(t->offset, small_tensor_off[i]);
        T2_CHECK_EQ_INT(t->nbytes, small_tensor_bytes[i]);
        T2_CHECK((const uint8_t *)t->data == b.p + L.data + small_tensor_off[i]);
        T2_CHECK_EQ_INT(((const uint8_t *)t->data)[0], (small_tensor_off[i] * 7 + 1) & 255);
    }
    T2_CHECK(t2_gguf_find_tensor(g, "zz") == NULL);
    T2_CHECK(t2_gguf_find_tensor(g, "") == NULL);
    T2_CHECK(t2_gguf_tensor_at(g, -1) == NULL && t2_gguf_tensor_at(g, N_SMALL_TENSORS) == NULL);
    t2_gguf_close(&g);
    T2_CHECK(g == NULL);
    t2_gguf_close(&g); /* NULL is fine */
    t2_gguf_close(NULL);

    /* Version 2 has the same layout. */
    build_small(&b, &L, 2);
    rc = t2_gguf_open_mem(&g, b.p, b.n, "v2.gguf");
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    if (rc == 0) T2_CHECK_EQ_INT(t2_gguf_version(g), 2);
    t2_gguf_close(&g);
done:
    free(b.p);
}

/* ------------------------------------------------------------------------------------------ */
/* Malformed files                                                                             */

/* Every prefix of a valid file is invalid (the last tensor ends the file) and fails cleanly. */
static void test_truncated_prefixes(void) {
    buf b = {0};
    layout L;
    build_small(&b, &L, 3);
    t2_gguf *g = NULL;
    T2_CHECK(open_copy(b.p, b.n, &g) == 0);
    for (size_t n = 0; n < b.n; n++) {
        t2_err_clear();
        int rc = open_copy(b.p, n, &g);
        const char *m = t2_err_msg();
        T2_CHECK_MSG(rc == T2_EFORMAT, "prefix %zu: rc %d (%s)", n, rc, m);
        T2_CHECK_MSG(g == NULL, "prefix %zu", n);
        T2_CHECK_MSG(strncmp(m, "x.gguf: ", 8) == 0, "prefix %zu: %s", n, m);
        T2_CHECK_MSG(contains(m, "past end of file") || (n == 0 && contains(m, "empty file")) ||
                     (n < 4 && contains(m, "not a GGUF file")), "prefix %zu: %s", n, m);
        T2_CHECK_MSG(!contains(m, "\n"), "prefix %zu: %s", n, m);
    }
    free(b.p);
}

/* Patch a copy of the small file with `stmt` (which sees `c` and `L`), open it, and check the
 * code and two message substrings. */
#define BAD(stmt, code, sub1, sub2)                                                        \
    do {                                                                                   \
        uint8_t *c = malloc(b.n);                                                          \
        memcpy(c, b.p, b.n);                                                               \
        stmt;                                                                              \
        t2_gguf *g_ = NULL;                                                                \
        t2_err_clear();                                                                    \
        int rc_ = open_copy(c, b.n, &g_);                                                  \
        const char *m_ = t2_err_msg();                                                     \
        T2_CHECK_MSG(rc_ == (code), "%s: rc %d, expected %d (%s)", #stmt, rc_, (code), m_); \
        T2_CHECK_MSG(contains(m_, "x.gguf: ") && contains(m_, sub1) && contains(m_, sub2), \
                     "%s: message '%s' lacks '%s' / '%s'", #stmt, m_, sub1, sub2);          \
        T2_CHECK(g_ == NULL);                                                              \
        free(c);                                                                           \
    } while (0)

static void test_bad_files(void) {
    buf b = {0};
    layout L;
    build_small(&b, &L, 3);
    const uint64_t huge = (uint64_t)1 << 62, all = UINT64_MAX;

    BAD(memcpy(c, "PK\x03\x04", 4), T2_EFORMAT, "not a GGUF file", "magic 'PK\\x03\\x04'");
    BAD(memcpy(c, "GGUG", 4), T2_EFORMAT, "not a GGUF file", "GGUG");
    BAD(patch32(c + L.version, 1), T2_EUNSUPPORTED, "unsupported GGUF version 1", "reads 2 and 3");
    BAD(patch32(c + L.version, 99), T2_EUNSUPPORTED, "version 99", "");
    BAD(patch32(c + L.version, 0x03000000), T2_EUNSUPPORTED, "version 50331648", "big-endian");
    BAD(patch64(c + L.n_kv, huge), T2_EFORMAT, "4611686018427387904 keys", "past end of file");
    BAD(patch64(c + L.n_kv, all), T2_EFORMAT, "keys", "past end");
    BAD(patch64(c + L.n_tensors, huge), T2_EFORMAT, "4611686018427387904 tensor", "past end");
    BAD(patch64(c + L.n_tensors, all), T2_EFORMAT, "tensor", "past end");
    BAD(patch64(c + L.n_kv, N_SMALL_KV + 1), T2_EFORMAT, "", "");
    BAD(patch64(c + L.n_tensors, N_SMALL_TENSORS + 1), T2_EFORMAT, "tensor", "");
    BAD(patch64(c + L.key0_len, (uint64_t)1 << 63), T2_EFORMAT, "key 0 name of", "past end");
    BAD(patch64(c + L.key0_len, all), T2_EFORMAT, "key 0 name", "past end");
    BAD(c[L.key0_bytes + 3] = 0, T2_EFORMAT, "NUL", "key 0");
    BAD(patch64(c + L.name_len, 1000000), T2_EFORMAT,
        "truncated: key 1 ('general.name') string of 1000000 bytes extends past end of file", "");
    BAD(patch64(c + L.name_len, all), T2_EFORMAT, "general.name", "past end");
    BAD(patch32(c + L.u8_type, 13), T2_EFORMAT, "'t.u8'", "invalid value type 13");
    BAD(patch32(c + L.u8_type, 0x80000000u), T2_EFORMAT, "'t.u8'", "invalid value type");
    BAD(c[L.bool_val] = 2, T2_EFORMAT, "'t.bool'", "bool value is 2");
    BAD(c[L.abool_data + 1] = 5, T2_EFORMAT, "'a.bool'", "element 1 is 5");
    BAD(c[L.ti8_key + 2] = 'u', T2_EFORMAT, "duplicate key 't.u8'", "");
    /* Array counts whose byte size overflows 64 bits, and plain huge ones. */
    BAD(patch64(c + L.au32_elem + 4, huge), T2_EFORMAT, "'a.u32'", "past end");
    BAD(patch64(c + L.au32_elem + 4, all), T2_EFORMAT, "'a.u32'", "past end");
    BAD(patch64(c + L.au64_elem + 4, (uint64_t)1 << 61), T2_EFORMAT, "'a.u64'", "past end");
    BAD(patch64(c + L.astr_elem + 4, huge), T2_EFORMAT, "'a.str'", "past end");
    BAD(patch64(c + L.astr_elem + 4, 1000), T2_EFORMAT, "'a.str'", "past end");
    BAD(patch64(c + L.astr_len1, all), T2_EFORMAT, "('a.str') element 1", "past end");
    BAD(patch32(c + L.au32_elem, T2_GGUF_ARRAY), T2_EFORMAT, "'a.u32'", "nested arrays");
    BAD(patch32(c + L.au32_elem, 13), T2_EFORMAT, "'a.u32'", "element type 13");
    BAD(patch32(c + L.abool_elem, 99), T2_EFORMAT, "'a.bool'", "element type 99");
    /* general.alignment. */
    BAD(patch32(c + L.align_val, 0), T2_EFORMAT, "general.alignment 0", "power of two");
    BAD(patch32(c + L.align_val, 3), T2_EFORMAT, "general.alignment 3", "power of two");
    BAD(patch32(c + L.align_type, T2_GGUF_INT32), T2_EFORMAT, "general.alignment is an int32",
        "uint32");
    BAD(patch32(c + L.align_val, 64), T2_EFORMAT, "tensor 'b'", "not a multiple of the alignment");
    BAD(patch32(c + L.align_val, 1u << 31), T2_EFORMAT, "tensor 'a'", "past end");
    /* Tensor infos. */
    BAD(c[L.t[1].name] = 'a', T2_EFORMAT, "duplicate tensor 'a'", "");
    BAD(c[L.t[1].name] = 0, T2_EFORMAT, "tensor 1", "NUL");
    BAD(patch32(c + L.t[0].n_dims, 0), T2_EFORMAT, "tensor 'a'", "n_dims 0");
    BAD(patch32(c + L.t[0].n_dims, 5), T2_EFORMAT, "tensor 'a'", "n_dims 5");
    BAD(patch32(c + L.t[0].n_dims, 0xffffffffu), T2_EFORMAT, "tensor 'a'", "n_dims");
    BAD((patch64(c + L.t[0].ne, (uint64_t)1 << 40), patch64(c + L.t[0].ne + 8, (uint64_t)1 << 40)),
        T2_EFORMAT, "tensor 'a'", "shape [1099511627776, 1099511627776] has too many elements");
    BAD(patch64(c + L.t[1].ne, (uint64_t)1 << 53), T2_EFORMAT, "tensor 'b'", "too many elements");
    BAD(patch64(c + L.t[1].ne, all), T2_EFORMAT, "tensor 'b'", "too many elements");
    BAD(patch64(c + L.t[0].ne + 8, 0), T2_EFORMAT, "tensor 'a'", "dimension 1 is 0");
    BAD(patch32(c + L.t[0].type, 16), T2_EUNSUPPORTED, "tensor 'a'",
        "unknown or unsupported type 16");
    BAD(patch32(c + L.t[0].type, 99), T2_EUNSUPPORTED, "tensor 'a'", "type 99");
    BAD(patch32(c + L.t[3].type, 16), T2_EUNSUPPORTED, "tensor 'h'", "IQ2_XXS");
    BAD(patch32(c + L.t[3].type, 2), T2_EFORMAT, "tensor 'h'",
        "Q4_0 row length 2 is not a multiple of 32");
    BAD(patch64(c + L.t[2].ne, 33), T2_EFORMAT, "tensor 'q'", "multiple of 32");
    BAD(patch64(c + L.t[1].offset, 33), T2_EFORMAT, "tensor 'b'", "not a multiple");
    BAD(patch64(c + L.t[3].offset, 4096), T2_EFORMAT,
        "tensor 'h': data [offset", "8 bytes] extends past end of file");
    BAD(patch64(c + L.t[0].offset, all - 31), T2_EFORMAT, "tensor 'a'", "past end");
    BAD(patch64(c + L.t[0].offset, (uint64_t)0 - L.data), T2_EFORMAT, "tensor 'a'", "past end");
    BAD(patch64(c + L.t[3].ne + 24, 3), T2_EFORMAT, "tensor 'h'", "past end");
    free(b.p);
}

/* Random byte mutations of the small file never crash, and whatever opens can be walked. */
static void test_random_mutations(void) {
    buf b = {0};
    layout L;
    build_small(&b, &L, 3);
    uint64_t s = 88172645463325252ull;
    uint8_t *c = malloc(b.n);
    int opened = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(c, b.p, b.n);
        int k = 1 + it % 4;
        for (int j = 0; j < k; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            size_t at = (size_t)(s % (L.data + 8)); /* mostly the header */
            c[at] = (uint8_t)(s >> 32);
        }
        t2_gguf *g = NULL;
        if (open_copy(c, b.n, &g) == 0) opened++;
    }
    free(c);
    free(b.p);
    T2_CHECK(opened > 0); /* some mutations only change values */
}

/* ------------------------------------------------------------------------------------------ */
/* Writer                                                                                      */

static void fill_f32(float *v, int n, float scale) {
    for (int i = 0; i < n; i++) v[i] = scale * (float)((i * 37) % 23 - 11) / 7.0f;
}

static void test_writer_round_trip(void) {
    const char *path = tmp_path("rt.gguf");
    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    if (!w) return;
    const float fa[3] = {1.0f, -2.5f, 1e-3f};
    const int32_t ia[4] = {-1, 0, 7, INT32_MAX};
    const char *strs[4] = {"<unk>", "", "a\0b", "\xe2\x96\x81the"};
    const size_t lens[4] = {5, 0, 3, 6};
    const char *strs2[2] = {"x", "yz"};
    T2_CHECK(t2_gguf_set_str(w, "general.architecture", "llama") == 0);
    T2_CHECK(t2_gguf_set_u32(w, "k.u32", 7) == 0);
    T2_CHECK(t2_gguf_set_i32(w, "k.i32", -7) == 0);
    T2_CHECK(t2_gguf_set_u64(w, "k.u64", (uint64_t)1 << 40) == 0);
    T2_CHECK(t2_gguf_set_f32(w, "k.f32", 1e-5f) == 0);
    T2_CHECK(t2_gguf_set_bool(w, "k.bool", 5) == 0);
    T2_CHECK(t2_gguf_set_bool(w, "k.false", 0) == 0);
    T2_CHECK(t2_gguf_set_arr_f32(w, "k.af32", fa, 3) == 0);
    T2_CHECK(t2_gguf_set_arr_i32(w, "k.ai32", ia, 4) == 0);
    T2_CHECK(t2_gguf_set_arr_str(w, "k.astr", strs, lens, 4) == 0);
    T2_CHECK(t2_gguf_set_arr_str(w, "k.astr0", strs2, NULL, 2) == 0);
    T2_CHECK(t2_gguf_set_arr_f32(w, "k.empty", NULL, 0) == 0);
    T2_CHECK(t2_gguf_set_u32(w, "k.u32", 8) == 0);          /* replace: same place */
    T2_CHECK(t2_gguf_set_str(w, "k.i32", "now a string") == 0); /* replace with a new type */
    CHECK_ERR(t2_gguf_set_u32(w, "", 1), T2_EINVAL, "empty key");
    CHECK_ERR(t2_gguf_set_str(w, "k.s", NULL), T2_EINVAL, "NULL");

    float a[12], bq[128], scratch[64];
    uint16_t bf[6], hf[7];
    uint8_t q[4 * 34];
    fill_f32(a, 12, 1.0f);
    fill_f32(scratch, 7, 0.5f);
    t2_from_f32(hf, scratch, T2_F16, 7);
    fill_f32(scratch, 6, 3.0f);
    t2_from_f32(bf, scratch, T2_BF16, 6);
    fill_f32(bq, 128, 2.0f);
    t2_from_f32(q, bq, T2_Q8_0, 128);
    const int64_t ne_a[2] = {4, 3}, ne_h[1] = {7}, ne_b[2] = {3, 2}, ne_q[2] = {64, 2};
    T2_CHECK(t2_gguf_add_tensor(w, "t.f32", T2_F32, 2, ne_a, a) == 0);
    T2_CHECK(t2_gguf_add_tensor(w, "t.f16", T2_F16, 1, ne_h, hf) == 0);
    T2_CHECK(t2_gguf_add_tensor(w, "t.bf16", T2_BF16, 2, ne_b, bf) == 0);
    T2_CHECK(t2_gguf_add_tensor(w, "t.q8_0", T2_Q8_0, 2, ne_q, q) == 0);
    CHECK_ERR(t2_gguf_add_tensor(w, "t.f32", T2_F32, 2, ne_a, a), T2_EINVAL, "duplicate tensor");
    CHECK_ERR(t2_gguf_add_tensor(w, "x", T2_F32, 0, ne_a, a), T2_EINVAL, "n_dims 0");
    CHECK_ERR(t2_gguf_add_tensor(w, "x", T2_F32, 5, ne_a, a), T2_EINVAL, "n_dims 5");
    CHECK_ERR(t2_gguf_add_tensor(w, "x", (t2_dtype)16, 1, ne_a, a), T2_EINVAL, "type 16");
    CHECK_ERR(t2_gguf_add_tensor(w, "x", T2_Q8_0, 1, ne_h, q), T2_EINVAL, "multiple of 32");
    const int64_t ne_bad[2] = {4, 0};
    CHECK_ERR(t2_gguf_add_tensor(w, "x", T2_F32, 2, ne_bad, a), T2_EINVAL, "dimension 1");

    int rc = t2_gguf_writer_write(w, path);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    t2_gguf_writer_destroy(&w);
    T2_CHECK(w == NULL);
    T2_CHECK(access(tmp_path("rt.gguf.tmp"), F_OK) != 0);

    t2_gguf *g = NULL;
    rc = t2_gguf_open(&g, path);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    if (rc == 0) {
        static const char *const order[] = {"general.architecture", "k.u32", "k.i32", "k.u64",
                                            "k.f32", "k.bool", "k.false", "k.af32", "k.ai32",
                                            "k.astr", "k.astr0", "k.empty"};
        T2_CHECK_EQ_INT(t2_gguf_n_kv(g), 12);
        for (int i = 0; i < 12 && i < t2_gguf_n_kv(g); i++)
            T2_CHECK_MSG(strcmp(t2_gguf_key_at(g, i), order[i]) == 0, "key %d", i);
        T2_CHECK_EQ_INT(t2_gguf_version(g), 3);
        uint32_t u;
        int64_t x;
        float f;
        int bo;
        const char *s;
        size_t len;
        T2_CHECK(t2_gguf_get_u32(g, "k.u32", &u) == 0 && u == 8);
        T2_CHECK_EQ_INT(t2_gguf_kv_type(g, 1), T2_GGUF_UINT32);
        T2_CHECK_EQ_INT(t2_gguf_kv_type(g, 2), T2_GGUF_STRING);
        T2_CHECK(t2_gguf_get_str(g, "k.i32", &s, &len) == 0 && len == 12 &&
                 memcmp(s, "now a string", 12) == 0);
        T2_CHECK(t2_gguf_get_i64(g, "k.u64", &x) == 0 && x == (int64_t)1 << 40);
        T2_CHECK_EQ_INT(t2_gguf_kv_type(g, 3), T2_GGUF_UINT64);
        T2_CHECK(t2_gguf_get_f32(g, "k.f32", &f) == 0 && f == 1e-5f);
        T2_CHECK(t2_gguf_get_bool(g, "k.bool", &bo) == 0 && bo == 1);
        T2_CHECK(t2_gguf_get_bool(g, "k.false", &bo) == 0 && bo == 0);
        T2_CHECK(t2_gguf_get_str(g, "general.architecture", &s, &len) == 0 && len == 5 &&
                 memcmp(s, "llama", 5) == 0);
        float fo[3];
        int32_t io[4];
        t2_gguf_vtype elem;
        uint64_t n;
        T2_CHECK(t2_gguf_get_arr(g, "k.af32", &elem, &n) == 0 && elem == T2_GGUF_FLOAT32 &&
                 n == 3);
        T2_CHECK(t2_gguf_arr_copy_f32(g, "k.af32", fo, 3) == 0 && memcmp(fo, fa, sizeof fa) == 0);
        T2_CHECK(t2_gguf_get_arr(g, "k.ai32", &elem, &n) == 0 && elem == T2_GGUF_INT32 && n == 4);
        T2_CHECK(t2_gguf_arr_copy_i32(g, "k.ai32", io, 4) == 0 && memcmp(io, ia, sizeof ia) == 0);
        T2_CHECK(t2_gguf_get_arr(g, "k.astr", &elem, &n) == 0 && elem == T2_GGUF_STRING && n == 4);
        for (uint64_t i = 0; i < 4; i++)
            T2_CHECK(t2_gguf_arr_str(g, "k.astr", i, &s, &len) == 0 && len == lens[i] &&
                     memcmp(s, strs[i], len) == 0);
        T2_CHECK(t2_gguf_arr_str(g, "k.astr0", 1, &s, &len) == 0 && len == 2 &&
                 memcmp(s, "yz", 2) == 0);
        T2_CHECK(t2_gguf_get_arr(g, "k.empty", &elem, &n) == 0 && n == 0);

        static const char *const names[4] = {"t.f32", "t.f16", "t.bf16", "t.q8_0"};
        const void *datas[4] = {a, hf, bf, q};
        const size_t sizes[4] = {48, 14, 12, 4 * 34};
        const t2_dtype types[4] = {T2_F32, T2_F16, T2_BF16, T2_Q8_0};
        T2_CHECK_EQ_INT(t2_gguf_n_tensors(g), 4);
        for (int i = 0; i < 4; i++) {
            const t2_gguf_tensor *t = t2_gguf_find_tensor(g, names[i]);
            T2_CHECK(t && t == t2_gguf_tensor_at(g, i));
            if (!t) continue;
            T2_CHECK_EQ_INT(t->type, types[i]);
            T2_CHECK_EQ_INT(t->nbytes, sizes[i]);
            T2_CHECK(t->offset % 32 == 0);
            T2_CHECK(((const uint8_t *)t->data - (const uint8_t *)t2_gguf_file_data(g)) % 32 == 0);
            T2_CHECK_MSG(memcmp(t->data, datas[i], sizes[i]) == 0, "tensor %s data", names[i]);
        }
        const t2_gguf_tensor *t = t2_gguf_find_tensor(g, "t.q8_0");
        if (t) {
            T2_CHECK(t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 2 && t->ne[2] == 1 &&
                     t->ne[3] == 1);
            float back[128];
            t2_to_f32(back, t->data, t->type, 128);
            for (int i = 0; i < 128; i++) T2_CHECK_NEAR(back[i], bq[i], 0.05);
        }
        /* The file ends with the last tensor's padded data (llama.cpp's layout). */
        const t2_gguf_tensor *last = t2_gguf_tensor_at(g, 3);
        T2_CHECK_EQ_INT(t2_gguf_file_size(g),
                        (size_t)((const uint8_t *)last->data -
                                 (const uint8_t *)t2_gguf_file_data(g)) + 4 * 34 + 24);
    }
    t2_gguf_close(&g);
    unlink(path);
}

static void test_writer_edge_cases(void) {
    /* Empty file: header only. */
    const char *path = tmp_path("empty.gguf");
    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    T2_CHECK(t2_gguf_writer_write(w, path) == 0);
    t2_gguf *g = NULL;
    T2_CHECK(t2_gguf_open(&g, path) == 0);
    if (g) T2_CHECK(t2_gguf_n_kv(g) == 0 && t2_gguf_n_tensors(g) == 0);
    t2_gguf_close(&g);
    unlink(path);

    /* general.alignment set by the caller is honoured. */
    const float v[3] = {1, 2, 3};
    const int64_t ne[1] = {3};
    T2_CHECK(t2_gguf_set_u32(w, "general.alignment", 64) == 0);
    T2_CHECK(t2_gguf_add_tensor(w, "x", T2_F32, 1, ne, v) == 0);
    T2_CHECK(t2_gguf_add_tensor(w, "y", T2_F32, 1, ne, v) == 0);
    path = tmp_path("align64.gguf");
    T2_CHECK(t2_gguf_writer_write(w, path) == 0);
    T2_CHECK(t2_gguf_open(&g, path) == 0);
    if (g) {
        const t2_gguf_tensor *t = t2_gguf_find_tensor(g, "y");
        T2_CHECK(t && t->offset == 64 && memcmp(t->data, v, 12) == 0);
        T2_CHECK(((const uint8_t *)t->data - (const uint8_t *)t2_gguf_file_data(g)) % 64 == 0);
    }
    t2_gguf_close(&g);
    unlink(path);
    T2_CHECK(t2_gguf_set_u32(w, "general.alignment", 3) == 0);
    CHECK_ERR(t2_gguf_writer_write(w, path), T2_EINVAL, "general.alignment");
    T2_CHECK(access(path, F_OK) != 0);
    T2_CHECK(t2_gguf_set_u32(w, "general.alignment", 32) == 0);

    /* Unwritable destination: EIO naming the path, and no tmp file left behind. */
    CHECK_ERR(t2_gguf_writer_write(w, "/nonexistent-t2-dir/m.gguf"), T2_EIO,
              "/nonexistent-t2-dir/m.gguf.tmp: cannot create: No such file or directory");
    /* Rename onto a directory fails after writing the tmp file: tmp is removed. */
    char dirpath[300];
    snprintf(dirpath, sizeof dirpath, "%s", tmp_path("adir"));
    T2_CHECK(mkdir(dirpath, 0700) == 0);
    CHECK_ERR(t2_gguf_writer_write(w, dirpath), T2_EIO, "cannot rename");
    T2_CHECK(access(tmp_path("adir.tmp"), F_OK) != 0);
    rmdir(dirpath);
    t2_gguf_writer_destroy(&w);
    t2_gguf_writer_destroy(&w);
    t2_gguf_writer_destroy(NULL);
}

/* Hundreds of keys and tensors: the hash tables grow, lookups and duplicate checks still work. */
static void test_many(void) {
    const char *path = tmp_path("many.gguf");
    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    static float v[8];
    const int64_t ne[1] = {8};
    char name[64];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "k.%d", i);
        T2_CHECK(t2_gguf_set_u32(w, name, (uint32_t)i) == 0);
        snprintf(name, sizeof name, "blk.%d.w", i);
        T2_CHECK(t2_gguf_add_tensor(w, name, T2_F32, 1, ne, v) == 0);
    }
    T2_CHECK(t2_gguf_writer_write(w, path) == 0);
    t2_gguf_writer_destroy(&w);
    t2_gguf *g = NULL;
    T2_CHECK(t2_gguf_open(&g, path) == 0);
    if (g) {
        T2_CHECK(t2_gguf_n_kv(g) == 300 && t2_gguf_n_tensors(g) == 300);
        for (int i = 0; i < 300; i++) {
            uint32_t u = 0;
            snprintf(name, sizeof name, "k.%d", i);
            T2_CHECK(t2_gguf_find_key(g, name) == i && t2_gguf_get_u32(g, name, &u) == 0 &&
                     u == (uint32_t)i);
            snprintf(name, sizeof name, "blk.%d.w", i);
            T2_CHECK(t2_gguf_find_tensor(g, name) == t2_gguf_tensor_at(g, i));
        }
        T2_CHECK(t2_gguf_find_tensor(g, "blk.300.w") == NULL);
        t2_gguf_close(&g);
    }
    /* A duplicate far down the list (after the tables grew) is still found. */
    FILE *f = fopen(path, "rb");
    static uint8_t data[65536];
    size_t n = f ? fread(data, 1, sizeof data, f) : 0;
    if (f) fclose(f);
    uint8_t *c = malloc(n);
    memcpy(c, data, n);
    uint8_t *at = memmem(c, n, "blk.299.w", 9);
    T2_CHECK(at != NULL);
    if (at) {
        memcpy(at, "blk.123.w", 9);
        CHECK_ERR(open_copy(c, n, &g), T2_EFORMAT,
                  "duplicate tensor 'blk.123.w' (tensors 123 and 299)");
    }
    memcpy(c, data, n);
    at = memmem(c, n, "k.299", 5); /* the key comes before the tensor names */
    T2_CHECK(at != NULL);
    if (at) {
        memcpy(at, "k.123", 5);
        CHECK_ERR(open_copy(c, n, &g), T2_EFORMAT, "duplicate key 'k.123' (keys 123 and 299)");
    }
    free(c);
    unlink(path);
}

/* ------------------------------------------------------------------------------------------ */
/* Opening files                                                                               */

static void test_open_failures(void) {
    t2_gguf *g = (t2_gguf *)&g; /* must be reset to NULL */
    CHECK_ERR(t2_gguf_open(&g, tmp_path("missing.gguf")), T2_EIO,
              "missing.gguf: cannot open: No such file or directory");
    T2_CHECK(g == NULL);
    CHECK_ERR(t2_gguf_open(&g, tmpdir), T2_EIO, "is a directory");
    const char *path = tmp_path("empty-file.gguf");
    FILE *f = fopen(path, "wb");
    T2_CHECK(f != NULL);
    if (f) fclose(f);
    CHECK_ERR(t2_gguf_open(&g, path), T2_EFORMAT, "empty-file.gguf: empty file");
    unlink(path);

    /* A hand-built file through the mmap path; a bad one names the path. */
    buf b = {0};
    layout L;
    build_small(&b, &L, 3);
    path = tmp_path("small.gguf");
    f = fopen(path, "wb");
    T2_CHECK(f && fwrite(b.p, 1, b.n, f) == b.n);
    if (f) fclose(f);
    T2_CHECK(t2_gguf_open(&g, path) == 0);
    if (g) walk_all(g);
    t2_gguf_close(&g);
    patch32(b.p + L.version, 7);
    f = fopen(path, "wb");
    T2_CHECK(f && fwrite(b.p, 1, b.n, f) == b.n);
    if (f) fclose(f);
    char expect[300];
    snprintf(expect, sizeof expect, "%s: unsupported GGUF version 7 (T2 reads 2 and 3)", path);
    CHECK_ERR(t2_gguf_open(&g, path), T2_EUNSUPPORTED, expect);
    T2_CHECK(g == NULL);
    unlink(path);
    free(b.p);

    CHECK_ERR(t2_gguf_open_mem(&g, NULL, 0, "nothing"), T2_EFORMAT, "nothing: empty file");
    CHECK_ERR(t2_gguf_open_mem(&g, "GG", 2, "short"), T2_EFORMAT, "short: not a GGUF file");
}

/* The shared tiny Llama model (F16 weights, 32000-token vocabulary). */
static void test_asset_model(void) {
    const char *path = t2_test_asset("models/llama-2-tiny-random.gguf");
    t2_gguf *g = NULL;
    int rc = t2_gguf_open(&g, path);
    T2_CHECK_MSG(rc == 0, "%s", t2_err_msg());
    if (rc) return;
    const t2_gguf_tensor *t = t2_gguf_find_tensor(g, "token_embd.weight");
    T2_CHECK(t != NULL);
    if (t) {
        T2_CHECK_EQ_INT(t->type, T2_F16);
        T2_CHECK(t->n_dims == 2 && t->ne[0] == 8 && t->ne[1] == 32000);
        T2_CHECK_EQ_INT(t->nbytes, 8 * 32000 * 2);
    }
    t = t2_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    T2_CHECK(t && t->type == T2_F16 && t->ne[0] == 32 && t->ne[1] == 8);
    t = t2_gguf_find_tensor(g, "output_norm.weight");
    T2_CHECK(t && t->type == T2_F32 && t->n_dims == 1 && t->ne[0] == 8);
    T2_CHECK_EQ_INT(t2_gguf_n_tensors(g), 12);

    uint32_t u;
    T2_CHECK(t2_gguf_get_u32(g, "llama.embedding_length", &u) == 0 && u == 8);
    T2_CHECK(t2_gguf_get_u32(g, "llama.block_count", &u) == 0 && u == 1);
    float eps;
    T2_CHECK(t2_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps) == 0 &&
             eps > 0 && eps < 1e-4f);
    t2_gguf_vtype elem;
    uint64_t n;
    T2_CHECK(t2_gguf_get_arr(g, "tokenizer.ggml.tokens", &elem, &n) == 0 &&
             elem == T2_GGUF_STRING && n == 32000);
    const char *s;
    size_t len;
    T2_CHECK(t2_gguf_arr_str(g, "tokenizer.ggml.tokens", 1, &s, &len) == 0 && len == 3 &&
             memcmp(s, "<s>", 3) == 0);
    T2_CHECK(t2_gguf_arr_str(g, "tokenizer.ggml.tokens", 31999, &s, &len) == 0 && len > 0);
    static float scores[32000];
    static int32_t types[32000];
    T2_CHECK(t2_gguf_arr_copy_f32(g, "tokenizer.ggml.scores", scores, 32000) == 0);
    T2_CHECK(t2_gguf_arr_copy_i32(g, "tokenizer.ggml.token_type", types, 32000) == 0 &&
             types[0] == 2 && types[1] == 3);
    walk_all(g);
    t2_gguf_close(&g);
}

/* ------------------------------------------------------------------------------------------ */
/* Fuzzer seeds                                                                                */

static int write_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "%s: cannot write\n", path);
        return 1;
    }
    printf("wrote %s (%zu bytes)\n", path, n);
    return 0;
}

static int write_seeds(const char *dir) {
    buf b = {0};
    layout L;
    int bad = 0;
    build_small(&b, &L, 3);
    bad |= write_file(dir, "small_v3.gguf", b.p, b.n);
    build_small(&b, &L, 2);
    bad |= write_file(dir, "small_v2.gguf", b.p, b.n);
    free(b.p);

    t2_gguf_writer *w = NULL;
    T2_CHECK(t2_gguf_writer_new(&w) == 0);
    const char *toks[5] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81\x61", "<0x0A>"};
    const float scores[5] = {0, 0, 0, -1.5f, -2};
    const int32_t ttype[5] = {2, 3, 3, 1, 6};
    const float wv[64] = {0.5f, -1, 2};
    uint8_t q[34] = {0};
    const int64_t ne_w[2] = {4, 2}, ne_q[1] = {32}, ne_n[1] = {4};
    t2_gguf_set_str(w, "general.architecture", "llama");
    t2_gguf_set_u32(w, "llama.block_count", 1);
    t2_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    t2_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    t2_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 5);
    t2_gguf_set_arr_f32(w, "tokenizer.ggml.scores", scores, 5);
    t2_gguf_set_arr_i32(w, "tokenizer.ggml.token_type", ttype, 5);
    t2_gguf_set_bool(w, "t.flag", 1);
    t2_gguf_add_tensor(w, "w", T2_F16, 2, ne_w, wv);
    t2_gguf_add_tensor(w, "q", T2_Q8_0, 1, ne_q, q);
    t2_gguf_add_tensor(w, "n", T2_F32, 1, ne_n, wv);
    char path[1024];
    snprintf(path, sizeof path, "%s/writer.gguf", dir);
    if (t2_gguf_writer_write(w, path) < 0) {
        fprintf(stderr, "%s\n", t2_err_msg());
        bad = 1;
    } else {
        printf("wrote %s\n", path);
    }
    t2_gguf_writer_destroy(&w);
    return bad;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/t2_test_gguf_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    T2_RUN(test_read_all_types);
    T2_RUN(test_truncated_prefixes);
    T2_RUN(test_bad_files);
    T2_RUN(test_random_mutations);
    T2_RUN(test_writer_round_trip);
    T2_RUN(test_writer_edge_cases);
    T2_RUN(test_many);
    T2_RUN(test_open_failures);
    rmdir(tmpdir);
    /* Exits 77 (skip) if the asset is missing: run last, and only if nothing failed so that a
     * skip cannot hide a failure. */
    if (!t2_test_failed) T2_RUN(test_asset_model);
    return T2_TEST_END();
}
