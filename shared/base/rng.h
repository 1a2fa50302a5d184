/* rng.h - small seeded random numbers (not for cryptography), deterministic for a seed on every
 * platform. Two generators, kept apart because files, experts and seeds already depend on the
 * exact sequences each one gives:
 *
 *   splitmix64  (t2_rand): initialisation, sampling orders, search, task generators.
 *   xorshift64* (a bare uint64_t state): random models, expert noise, the token sampler and the
 *               trainer's batch offsets. The state must not be 0 (0 stays 0).
 *
 * Each has one implementation here; the variants below differ only in how the raw 64 bits are
 * turned into a number, and say how, so that a caller picks the one whose values it needs. */
#ifndef T2_RNG_H
#define T2_RNG_H

#include <stdint.h>

/* ---- splitmix64 ---- */

typedef struct t2_rand {
    uint64_t s; /* the state; t2_rand_seed mixes a seed into it, or set it directly */
} t2_rand;

/* One splitmix64 step of the state *s. */
uint64_t t2_splitmix64(uint64_t *s);

/* s = seed ^ a constant (so that seed 0 is not the all-zero state). */
void t2_rand_seed(t2_rand *r, uint64_t seed);

static inline uint64_t t2_rand_u64(t2_rand *r) { return t2_splitmix64(&r->s); }

/* Uniform in [0, 1) with 53 bits. */
double t2_rand_unif(t2_rand *r);

/* Uniform integer in [0, n), n > 0, as the 64-bit draw modulo n. */
uint64_t t2_rand_below(t2_rand *r, uint64_t n);

/* Integer in [0, n), n > 0, as the upper 32 bits of the draw scaled by n ((hi32 * n) >> 32):
 * not the same values as t2_rand_below for the same state (the task generators use this one). */
uint32_t t2_rand_below_scaled(t2_rand *r, uint32_t n);

/* Standard normal (Box-Muller; one value per call, two draws). */
double t2_rand_normal(t2_rand *r);

/* ---- xorshift64* ---- */

/* One xorshift64* step of the non-zero state *s: the full 64-bit output. */
uint64_t t2_xorshift64s(uint64_t *s);

/* Standard normal from two xorshift64* draws (Box-Muller, u1 in (0, 1], u2 in [0, 1)): the
 * values of random models and of expert initialisation noise. */
double t2_xorshift64s_normal(uint64_t *s);

#endif
