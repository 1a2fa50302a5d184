#include "base/rng.h"

#include <math.h>

uint64_t t2_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void t2_rand_seed(t2_rand *r, uint64_t seed) { r->s = seed ^ 0x6A09E667F3BCC909ull; }

double t2_rand_unif(t2_rand *r) { return (double)(t2_rand_u64(r) >> 11) * 0x1p-53; }

uint64_t t2_rand_below(t2_rand *r, uint64_t n) { return t2_rand_u64(r) % n; }

uint32_t t2_rand_below_scaled(t2_rand *r, uint32_t n) {
    return (uint32_t)(((t2_rand_u64(r) >> 32) * (uint64_t)n) >> 32);
}

double t2_rand_normal(t2_rand *r) {
    double u = t2_rand_unif(r) + 0x1p-54, v = t2_rand_unif(r); /* u in (0, 1) */
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint64_t t2_xorshift64s(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

double t2_xorshift64s_normal(uint64_t *s) {
    double u1 = ((t2_xorshift64s(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (t2_xorshift64s(s) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
