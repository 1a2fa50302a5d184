/* profile.h - task profiles: a stored mixture of SVF experts for one task (the result of the
 * few-shot CEM search, docs/DESIGN.md §7), used for every later prompt of that task.
 *
 * File (GGUF, one per profile, named NAME.gguf in the deployment's profiles folder):
 *   t2.kind = "profile", t2.name = NAME, t2.experts = [expert names] (string array, 1..64,
 *   names as the workers know them: the stem of their NAME.gguf), optional t2.task,
 *   t2.training (free text: how it was found), t2.base_sha256 (the model it was made for);
 *   tensor "alpha", F32: [n_experts] (one α per expert) or [n_matrices, n_experts] (GGML order:
 *   one row of n_matrices per expert: one α per adapted matrix, in the model's order
 *   blk.0.<first target>, ..., as t2.proto's ExpertAlpha.matrix_alpha).
 * Every value is checked on load: names are 1..64 of [A-Za-z0-9._:/-], distinct; α finite and
 * at most 1000 in magnitude (the wire's limit).
 */
#ifndef T2_PROFILE_H
#define T2_PROFILE_H

#include "base/t2_limits.h"

#include <stddef.h>

#define T2_PROFILE_MAX_EXPERTS 64
#define T2_PROFILE_MAX_MATRICES 16384

typedef struct t2_profile {
    char name[T2_NAME_MAX + 1];
    int n_experts;
    char (*experts)[T2_NAME_MAX + 1]; /* n_experts names */
    int n_matrices;      /* 0: one α per expert; else α per expert per matrix */
    float *alpha;        /* n_experts, or n_experts x n_matrices (row per expert) */
    char *task, *training;
    char base_sha256[65]; /* "" when unknown */
} t2_profile;

/* A new profile with room for n_experts (n_matrices 0: per expert); names and α zeroed. */
int t2_profile_new(t2_profile **out, const char *name, int n_experts, int n_matrices);
int t2_profile_load(t2_profile **out, const char *path);
int t2_profile_save(const t2_profile *p, const char *path);
void t2_profile_destroy(t2_profile **p);

/* The profile's α in the layout of svf.h's t2_mixture, for experts loaded in the profile's order:
 * one α per expert: n_experts values (*per_matrix = 0); per matrix: n_experts rows of n_slots
 * (n_slots = n_layers * T2_N_TARGETS, slot l * T2_N_TARGETS + k), each row spreading the
 * profile's n_matrices values over the slots with rank[slot] > 0 in ascending order (the model's
 * order), 0 elsewhere (*per_matrix = 1). rank: the experts' p lengths (t2_expert.rank; experts of
 * one mixture share targets). *alpha is malloc'd (the caller frees it); *n_alpha its length.
 * T2_EMISMATCH when n_matrices is not the number of adapted matrices. */
int t2_profile_mixture_alpha(const t2_profile *p, const int *rank, int n_slots, float **alpha,
                             int *n_alpha, int *per_matrix);

#endif
