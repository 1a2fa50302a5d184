/* attention_simd.h - internal: the entry points of the SIMD attention files (attention_avx512.c,
 * attention_avx2.c, both from the template attention_kern.h), for attention.c's dispatch. Call
 * them only through attention.h: each needs the CPU features attention.c checks first. */
#ifndef T2_ATTENTION_SIMD_H
#define T2_ATTENTION_SIMD_H

#include "engine/attention.h"

#if defined(__x86_64__)
#define T2_ATT_DECL(L)                                                                         \
    void t2_att_dec_##L(const t2_kvv *kv, int kv0, int K, int G, int hd, const float *q,       \
                        float scale, int t0, int t1, float *sc, float *part);                  \
    size_t t2_att_rows_floats_##L(int hd, int R);                                              \
    void t2_att_store_f16_##L(uint16_t *dst, const float *src, int n);                                              \
    void t2_att_rows_##L(const t2_kvv *kv, int hoff, int hd, const float *const *q,            \
                         const int *pos, int R, float scale, float *w, float *const *out);
T2_ATT_DECL(512)
T2_ATT_DECL(256)
#endif

#endif
