/* attention_avx2.c - AVX2+FMA+F16C attention kernels (8 lanes): the template attention_kern.h.
 * Compiled without global -m flags; attention.c calls them only after checking the CPU. */
#if defined(__x86_64__)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,f16c")
#endif

#include "engine/attention_simd.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

typedef __m256 vf;
#define VL 8
#define KB 4
#define SUF(name) name##_256
#define V0() _mm256_setzero_ps()
#define V1(x) _mm256_set1_ps(x)
#define VLD(p) _mm256_loadu_ps(p)
#define VLDU(p) _mm256_loadu_ps(p)
#define VSTH(p, v) _mm_storeu_si128((__m128i *)(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#define VST(p, v) _mm256_storeu_ps(p, v)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VSEL_LE(a, b, x, y) _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LE_OQ))
#define VLD16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define VLD8(p) _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p))))

static inline vf iota_256(void) { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
static inline float hsum(vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
static inline float hmax(vf v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* e^x for x <= 0 (Cephes' expf: range reduction by ln 2, degree-5 polynomial; ~1 ulp) */
static inline vf vexp(vf x) {
    x = _mm256_max_ps(x, V1(-87.0f));
    const vf n = _mm256_round_ps(VMUL(x, V1(1.44269504088896341f)),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = _mm256_fnmadd_ps(n, V1(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, V1(-2.12194440e-4f), r);
    vf p = V1(1.9875691500e-4f);
    p = VFMA(p, r, V1(1.3981999507e-3f));
    p = VFMA(p, r, V1(8.3334519073e-3f));
    p = VFMA(p, r, V1(4.1665795894e-2f));
    p = VFMA(p, r, V1(1.6666665459e-1f));
    p = VFMA(p, r, V1(5.0000001201e-1f));
    const vf y = VFMA(p, VMUL(r, r), VADD(r, V1(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n),
                                                         _mm256_set1_epi32(127)), 23);
    return VMUL(y, _mm256_castsi256_ps(e));
}

/* 8 vectors -> their 8 lane sums (pairs within 128-bit lanes, then across the two lanes) */
static inline vf vreduce(const vf *a) {
    vf s[4], u[2];
    for (int i = 0; i < 4; i++)
        s[i] = VADD(_mm256_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                    _mm256_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        u[i] = VADD(_mm256_shuffle_ps(s[2 * i], s[2 * i + 1], 0x44),
                    _mm256_shuffle_ps(s[2 * i], s[2 * i + 1], 0xee));
    return VADD(_mm256_permute2f128_ps(u[0], u[1], 0x20), _mm256_permute2f128_ps(u[0], u[1], 0x31));
}

#include "engine/attention_kern.h"

#if defined(__clang__)
#pragma clang attribute pop
#endif

#endif
