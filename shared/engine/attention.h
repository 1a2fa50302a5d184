/* attention.h - internal to the engine: attention of one query over a range of a paged KV cache.
 *
 * The cache of one layer of one sequence is seen through a t2_kvv: the row of position t is
 *   base + blocks[t / T2_KV_BLOCK] * block_bytes + off + (t % T2_KV_BLOCK) * row_bytes
 * (off = k_off for keys, v_off for values; engine/kvcache.h gives the layout).
 *
 * Causal attention of a query at position p is computed in segments of T2_ATT_SEG positions
 * (fixed by position, not by thread): t2_att_partial gives, for each of G query heads that share
 * one KV head, the segment's partial softmax (m = max score, l = sum of exp(score - m),
 * o = sum of exp(score - m) v); the partials are folded in segment order (t2_att_fold, an online
 * softmax), and the output is o / l. Decoding computes a query's segments on several threads and
 * folds them in order (t2_att_dec); a prompt batch folds them as it goes (t2_att_rows). Each
 * path fixes its order of operations by shape only, so a result depends neither on the thread
 * count nor on how the work was split (prompt and decoding differ from each other by rounding),
 * and no full score matrix is ever held (scores of one segment only).
 */
#ifndef T2_ATTENTION_H
#define T2_ATTENTION_H

#include "engine/kvcache.h"

#include <stddef.h>
#include <stdint.h>

#define T2_ATT_SEG 256 /* positions per segment (a multiple of T2_KV_BLOCK) */

typedef struct t2_kvv {
    t2_dtype type;
    int simd;                /* t2_att_simd(): 2 AVX-512, 1 AVX2, 0 portable kernels */
    const uint8_t *base;     /* the pool's memory */
    size_t block_bytes, row_bytes;
    const int32_t *blocks;   /* the sequence's block table */
    size_t k_off, v_off;     /* this layer's K and V rows within a block */
} t2_kvv;

/* Floats of one head's partial: m, l, o[hd]. */
static inline int t2_att_part_len(int hd) { return hd + 2; }

/* Partials of G heads (q: G x hd consecutive, heads sharing the KV head whose values start at
 * element hoff of a row) over positions [t0, t1) (t1 - t0 <= T2_ATT_SEG) into part
 * (G x (hd + 2)), with the portable kernels. sc: scratch of G x T2_ATT_SEG floats. */
void t2_att_partial(const t2_kvv *kv, int hoff, int hd, const float *q, int G, float scale,
                    int t0, int t1, float *sc, float *part);
/* Decoding: the partials of the K * G heads of KV heads [kv0, kv0 + K) (q: K*G x hd, heads of
 * one KV head consecutive) over positions [t0, t1) (at most one segment) into part
 * (K*G x (hd + 2)). The SIMD kernels keep positions in vector lanes and read each position's
 * row once for all K heads. sc: scratch of K*G x (T2_ATT_SEG + 256) floats, 64-byte aligned. */
void t2_att_dec(const t2_kvv *kv, int kv0, int K, int G, int hd, const float *q, float scale,
                int t0, int t1, float *sc, float *part);
/* Prompt rows: out[r] (hd floats) = causal attention of q[r] (a head that uses the KV head at
 * element hoff) at position pos[r] (pos nondecreasing in r) over positions [0, pos[r]], for R
 * rows. Segment by segment: the keys and values converted to f32 once for all rows, scores with
 * the rows in vector lanes (sums in head-dimension order), a lane-wise softmax, values as
 * rows x head-dimension products (sums in position order), each segment's partial folded in
 * order; a row's numbers do not depend on the other rows. Needs t2_att_rows_ok(kv, hd);
 * scratch of t2_att_rows_floats(hd, R) floats. */
int t2_att_rows_ok(const t2_kvv *kv, int hd);
size_t t2_att_rows_floats(int hd, int R);
void t2_att_rows(const t2_kvv *kv, int hoff, int hd, const float *const *q, const int *pos, int R,
                 float scale, float *scratch, float *const *out);
/* Fold partial p into the running r (both hd + 2 floats). */
void t2_att_fold(float *r, const float *p, int hd);
/* out = r.o / r.l */
void t2_att_finish(float *out, const float *r, int hd);
/* Store n values of src as a cache row of kv's type at dst. */
void t2_kv_store(const t2_kvv *kv, void *dst, const float *src, int n);
/* The attention kernels of the kernel level (engine/kernels.h): 2 AVX-512, 1 AVX2, 0 portable. */
int t2_att_simd(void);

#endif
