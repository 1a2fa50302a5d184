/* rng.h - small seeded random numbers (splitmix64) for initialisation, sampling orders and
 * search (not for cryptography). Deterministic for a seed on every platform. */
#ifndef T2_RNG_H
#define T2_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct t2_rand {
    uint64_t s;
} t2_rand;

static inline void t2_rand_seed(t2_rand *r, uint64_t seed) { r->s = seed ^ 0x6A09E667F3BCC909ull; }

static inline uint64_t t2_rand_u64(t2_rand *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 bits. */
static inline double t2_rand_unif(t2_rand *r) { return (double)(t2_rand_u64(r) >> 11) * 0x1p-53; }

/* Uniform integer in [0, n), n > 0. */
static inline uint64_t t2_rand_below(t2_rand *r, uint64_t n) { return t2_rand_u64(r) % n; }

/* Standard normal (Box-Muller; one value per call). */
static inline double t2_rand_normal(t2_rand *r) {
    double u = t2_rand_unif(r) + 0x1p-54, v = t2_rand_unif(r); /* u in (0, 1) */
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

#endif
