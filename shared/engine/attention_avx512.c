/* attention_avx512.c - AVX-512 attention kernels (16 lanes): the template attention_kern.h.
 * Compiled without global -m flags; attention.c calls them only after checking the CPU. */
#if defined(__x86_64__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#endif

#include "engine/attention_simd.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

typedef __m512 vf;
#define VL 16
#define KB 8
#define SUF(name) name##_512
#define V0() _mm512_setzero_ps()
#define V1(x) _mm512_set1_ps(x)
#define VLD(p) _mm512_loadu_ps(p)
#define VSTH(p, v) _mm256_storeu_si256((__m256i *)(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#define VST(p, v) _mm512_storeu_ps(p, v)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VSEL_LE(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LE_OQ), y, x)
#define VLD16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define VLD8(p) _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p))))
/* cache rows: two 256-bit halves (a 512-bit load across a cache line halves DRAM bandwidth) */
#define VLDU(p)                                                                                \
    _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(p)), _mm256_loadu_ps((p) + 8), 1)

static inline vf iota_512(void) {
    return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
static inline float hsum(vf v) { return _mm512_reduce_add_ps(v); }
static inline float hmax(vf v) { return _mm512_reduce_max_ps(v); }

/* e^x for x <= 0 (Cephes' expf: range reduction by ln 2, degree-5 polynomial; ~1 ulp) */
static inline vf vexp(vf x) {
    x = _mm512_max_ps(x, V1(-87.0f));
    const vf n = _mm512_roundscale_ps(VMUL(x, V1(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = _mm512_fnmadd_ps(n, V1(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, V1(-2.12194440e-4f), r);
    vf p = V1(1.9875691500e-4f);
    p = VFMA(p, r, V1(1.3981999507e-3f));
    p = VFMA(p, r, V1(8.3334519073e-3f));
    p = VFMA(p, r, V1(4.1665795894e-2f));
    p = VFMA(p, r, V1(1.6666665459e-1f));
    p = VFMA(p, r, V1(5.0000001201e-1f));
    const vf y = VFMA(p, VMUL(r, r), VADD(r, V1(1.0f)));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n),
                                                         _mm512_set1_epi32(127)), 23);
    return VMUL(y, _mm512_castsi512_ps(e));
}

/* 16 vectors -> their 16 lane sums (pairs within 128-bit lanes, then across lanes) */
static inline vf vreduce(const vf *a) {
    vf s[8], u[4];
    for (int i = 0; i < 8; i++)
        s[i] = VADD(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                    _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++)
        u[i] = VADD(_mm512_shuffle_ps(s[2 * i], s[2 * i + 1], 0x44),
                    _mm512_shuffle_ps(s[2 * i], s[2 * i + 1], 0xee));
    const vf w01 = VADD(_mm512_shuffle_f32x4(u[0], u[1], 0x44), _mm512_shuffle_f32x4(u[0], u[1], 0xee));
    const vf w23 = VADD(_mm512_shuffle_f32x4(u[2], u[3], 0x44), _mm512_shuffle_f32x4(u[2], u[3], 0xee));
    return VADD(_mm512_shuffle_f32x4(w01, w23, 0x88), _mm512_shuffle_f32x4(w01, w23, 0xdd));
}

#include "engine/attention_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
