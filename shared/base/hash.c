#include "base/hash.h"

#include <string.h>

uint64_t t2_fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t t2_fnv1a64_str(const char *s) { return t2_fnv1a64(T2_FNV1A64_INIT, s, strlen(s)); }

uint32_t t2_fnv1a32(const void *data, size_t n) {
    const unsigned char *p = data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

uint64_t t2_hash64(const void *data, size_t n, uint64_t salt) {
    uint64_t h = t2_fnv1a64(T2_FNV1A64_INIT ^ salt, data, n);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}
