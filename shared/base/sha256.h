/* sha256.h - SHA-256 (FIPS 180-4), used to tie factors, experts and profiles to the exact base
 * model file they were made for, and workers to the model a router serves. The hashing is
 * libsodium's (crypto_hash_sha256, the library libzmq's CURVE already uses); this is T2's
 * interface to it. */
#ifndef T2_SHA256_H
#define T2_SHA256_H

#include <sodium/crypto_hash_sha256.h>
#include <stddef.h>
#include <stdint.h>

typedef struct t2_sha256 {
    crypto_hash_sha256_state st;
} t2_sha256;

void t2_sha256_init(t2_sha256 *s);
void t2_sha256_update(t2_sha256 *s, const void *data, size_t n);
void t2_sha256_final(t2_sha256 *s, uint8_t out[32]);
/* Hash a buffer to 64 lowercase hex digits + NUL. */
void t2_sha256_hex(const void *data, size_t n, char out[65]);
/* Hash a file (streamed); returns 0 or T2_EIO with a message naming the file. */
int t2_sha256_file(const char *path, char out[65]);

#endif
