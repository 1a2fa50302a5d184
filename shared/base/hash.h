/* hash.h - FNV-1a (http://www.isthe.com/chongo/tech/comp/fnv/) for hash tables, checkpoint
 * checksums, cache keys and seeds derived from names. Not for cryptography (see sha256.h).
 * Files depend on these values (training checkpoints, task splits and seeds): never change them. */
#ifndef T2_HASH_H
#define T2_HASH_H

#include <stddef.h>
#include <stdint.h>

#define T2_FNV1A64_INIT 0xcbf29ce484222325ull /* the 64-bit offset basis */

/* 64-bit FNV-1a of n bytes, continuing from h (T2_FNV1A64_INIT to start). */
uint64_t t2_fnv1a64(uint64_t h, const void *data, size_t n);

/* 64-bit FNV-1a of a NUL-terminated string (without the NUL), from the offset basis. */
uint64_t t2_fnv1a64_str(const char *s);

/* 32-bit FNV-1a of n bytes, from its offset basis. */
uint32_t t2_fnv1a32(const void *data, size_t n);

/* 64-bit FNV-1a from (offset basis ^ salt), then MurmurHash3's 64-bit finaliser, so that every
 * output bit depends on every input bit (for seeds and splits derived from names). */
uint64_t t2_hash64(const void *data, size_t n, uint64_t salt);

#endif
