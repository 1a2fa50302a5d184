/* sampler.h - choosing the next token from logits: greedy, temperature, top-p; seeded.
 *
 * temperature 0 is greedy (argmax, lowest index on ties). Otherwise logits are divided by the
 * temperature and soft-maxed; top_p in (0, 1) samples from the smallest set of most likely
 * tokens whose probability exceeds top_p, else from the whole distribution. The random stream is
 * xorshift64* seeded by `seed`, so a seed gives the same text every run.
 */
#ifndef T2_SAMPLER_H
#define T2_SAMPLER_H

#include <stdint.h>

typedef struct t2_sampler t2_sampler;

/* Returns NULL on allocation failure. temperature >= 0, top_p in [0, 1] (checked by callers). */
/* Returns 0 and sets *out, or T2_ENOMEM (message in t2_err_msg) and *out = NULL. */
int t2_sampler_new(t2_sampler **out, int vocab_size, float temperature, float top_p,
                   uint64_t seed);
void t2_sampler_destroy(t2_sampler **s);
/* Sample a token; may modify logits in place. */
int t2_sample(t2_sampler *s, float *logits);
int t2_argmax(const float *x, int n);

#endif
