/* sha256.c - SHA-256 through libsodium (see sha256.h). */
#include "base/sha256.h"

#include "base/t2_err.h"

#include <errno.h>
#include <sodium/core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void t2_sha256_init(t2_sha256 *s) {
    /* idempotent and thread-safe; its result does not matter here: the hash needs neither
     * its random source nor its CPU detection (a failure there leaves hashing working) */
    int ready = sodium_init();
    (void)ready;
    crypto_hash_sha256_init(&s->st);
}

void t2_sha256_update(t2_sha256 *s, const void *data, size_t n) {
    crypto_hash_sha256_update(&s->st, data, n);
}

void t2_sha256_final(t2_sha256 *s, uint8_t out[32]) {
    crypto_hash_sha256_final(&s->st, out);
}

static void to_hex(const uint8_t d[32], char out[65]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = 0;
}

void t2_sha256_hex(const void *data, size_t n, char out[65]) {
    t2_sha256 s;
    uint8_t d[32];
    t2_sha256_init(&s);
    t2_sha256_update(&s, data, n);
    t2_sha256_final(&s, d);
    to_hex(d, out);
}

int t2_sha256_file(const char *path, char out[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return t2_err_set(T2_EIO, "%s: cannot open: %s", path, strerror(errno));
    t2_sha256 s;
    uint8_t d[32];
    size_t cap = 1 << 20, n;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return t2_err_set(T2_ENOMEM, "out of memory");
    }
    t2_sha256_init(&s);
    while ((n = fread(buf, 1, cap, f)) > 0) t2_sha256_update(&s, buf, n);
    int err = ferror(f);
    fclose(f);
    free(buf);
    if (err) return t2_err_set(T2_EIO, "%s: read error", path);
    t2_sha256_final(&s, d);
    to_hex(d, out);
    return 0;
}
