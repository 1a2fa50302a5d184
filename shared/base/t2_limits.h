/* t2_limits.h - limits that several layers and processes check, one named constant each.
 *
 * They live in base, the one layer that the engine, deploy/ (which validates deployment files
 * and links only base), proto/, workers/ and the CLI all include, so that a limit is changed in
 * one place. (Threads per pool: T2_POOL_MAX_THREADS in base/pool.h.)
 */
#ifndef T2_LIMITS_H
#define T2_LIMITS_H

/* Sequences in one multi-sequence step (t2_forward_multi), hence sequences in flight: the batch
 * of t2_generate_batch and a worker's capacity + classify_capacity (slots of its stage). */
#define T2_MAX_SEQS 256

/* Service / expert / profile / label / group names: 1..T2_NAME_MAX bytes of
 * [A-Za-z0-9._:/-] (protocol, deployment file and workers). */
#define T2_NAME_MAX 64

#endif
