/* attention_kern.h - internal: the attention kernels written once over a vector type, included by
 * attention_avx512.c (16 lanes) and attention_avx2.c (8 lanes), each of which defines first:
 *   vf, VL                    the float vector and its lanes
 *   V0() V1(x) VLD(p) VST(p,v) VFMA(a,b,c) VMUL VADD VSUB VMAX
 *   VSEL_LE(a, b, x, y)       lane-wise a <= b ? x : y
 *   VLD16(p)                  VL f16 values at p as floats
 *   VLD8(p)                   VL int8 values at p as floats
 *   vexp(x)                   e^x (x <= 0; -inf lanes may give anything: they are masked)
 *   vreduce(a)                VL vectors -> one vector of their VL lane sums (fixed tree)
 *   KB                        keys per score micro-tile (x 2 row vectors of accumulators)
 *   SUF(name)                 the level's name for a kernel
 *
 * Prompt tiles keep query rows in vector lanes: Qt (hd x ldq) is the tile's queries transposed,
 * S (n x ldq) their scores, key j in row j; the softmax runs lane-wise (no horizontal sums) and
 * P V as rows x head-dimension products. Decoding keeps positions in lanes: VL dot products are
 * summed along the head dimension, then reduced together. Every sum has one fixed order that
 * depends on the shapes only: a row's numbers do not depend on the other rows of its tile, on
 * the tile, or on the thread.
 */

/* dst[0..n) = src as f16 (round to nearest even, as t2_from_f32) */
void SUF(t2_att_store_f16)(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i + VL <= n; i += VL) VSTH(dst + i, VLD(src + i));
    for (; i < n; i++) dst[i] = t2_f32_to_f16(src[i]);
}

/* dst (n x hd) = rows [t0, t0 + n) of the head at element hoff, from the cache at byte off */
static void SUF(att_cvt)(const t2_kvv *kv, size_t off, int hoff, int hd, int t0, int n,
                         float *dst) {
    const size_t slice = t2_kv_row_bytes(kv->type, hd);
    for (int j = 0; j < n; j++) {
        const int t = t0 + j;
        const uint8_t *row = kv->base + (size_t)kv->blocks[t / T2_KV_BLOCK] * kv->block_bytes +
                             off + (size_t)(t % T2_KV_BLOCK) * kv->row_bytes;
        float *d = dst + (size_t)j * hd;
        if (j + 4 < n && (t + 4) % T2_KV_BLOCK >= 4) { /* the row 4 ahead, same block */
            const char *pf = (const char *)row + 4 * kv->row_bytes + t2_kv_row_bytes(kv->type, hoff);
            for (size_t b = 0; b < slice; b += 64) _mm_prefetch(pf + b, _MM_HINT_T0);
        }
        if (kv->type == T2_F32) {
            memcpy(d, (const float *)row + hoff, (size_t)hd * sizeof(float));
        } else if (kv->type == T2_F16) {
            const uint16_t *h = (const uint16_t *)row + hoff;
            for (int i = 0; i < hd; i += VL) VST(d + i, VLD16(h + i));
        } else {
            const uint8_t *b = row + (size_t)(hoff / 32) * 34;
            for (int i = 0; i < hd; i += 32, b += 34) {
                uint16_t dh;
                memcpy(&dh, b, 2);
                const vf sc = V1(t2_f16_to_f32(dh));
                for (int k = 0; k < 32; k += VL)
                    VST(d + i + k, VMUL(sc, VLD8((const int8_t *)b + 2 + k)));
            }
        }
    }
}

/* S[j][r0 .. r0 + 2 VL) = scale * sum_d Qt[d][r] Kf[j][d] for j in [j0, j0 + nk), nk <= KB */
#define DEF_QK(NAME, NK)                                                                       \
    static inline __attribute__((always_inline)) void NAME(                                    \
        float *S, int ldq, const float *Qt, int r0, const float *Kf, int hd, int j0, vf sc) {   \
        vf a[NK][2];                                                                           \
        _Pragma("GCC unroll 8") for (int i = 0; i < NK; i++) a[i][0] = a[i][1] = V0();         \
        for (int d = 0; d < hd; d++) {                                                         \
            const vf q0 = VLD(Qt + (size_t)d * ldq + r0), q1 = VLD(Qt + (size_t)d * ldq + r0 + VL); \
            _Pragma("GCC unroll 8") for (int i = 0; i < NK; i++) {                             \
                const vf k = V1(Kf[(size_t)(j0 + i) * hd + d]);                               \
                a[i][0] = VFMA(q0, k, a[i][0]);                                                \
                a[i][1] = VFMA(q1, k, a[i][1]);                                                \
            }                                                                                  \
        }                                                                                      \
        _Pragma("GCC unroll 8") for (int i = 0; i < NK; i++) {                                 \
            VST(S + (size_t)(j0 + i) * ldq + r0, VMUL(a[i][0], sc));                           \
            VST(S + (size_t)(j0 + i) * ldq + r0 + VL, VMUL(a[i][1], sc));                      \
        }                                                                                      \
    }
DEF_QK(SUF(qk_full), KB)
DEF_QK(SUF(qk_one), 1)

/* Scores of rows [r0, R2) (R2 - r0 a multiple of 2 VL) against keys [0, nk[r-block]) */
static void SUF(att_qk)(float *S, int ldq, const float *Qt, int r0, int R2, const float *lim,
                        const float *Kf, int hd, int n, float scale) {
    const vf sc = V1(scale);
    for (int r = r0; r < R2; r += 2 * VL) {
        int nk = (int)lim[r + 2 * VL - 1] + 1; /* keys the block's last row reaches */
        nk = nk < n ? nk : n;
        int j = 0;
        for (; j + KB <= nk; j += KB) SUF(qk_full)(S, ldq, Qt, r, Kf, hd, j, sc);
        for (; j < nk; j++) SUF(qk_one)(S, ldq, Qt, r, Kf, hd, j, sc);
    }
}

/* Lane-wise softmax statistics of rows [r0, R2) over keys j <= lim[r] (and < n): m = max,
 * S[j][r] = e^(S - m) (0 beyond lim), l = sum in j order. Rows reaching no key: m = l = 0. */
static void SUF(att_smax)(float *S, int ldq, int r0, int R2, const float *lim, int n, float *m,
                          float *l) {
    for (int r = r0; r < R2; r += VL) {
        const vf L = VLD(lim + r);
        int nk = (int)lim[r + VL - 1] + 1;
        nk = nk < n ? nk : n;
        vf mx = V1(-INFINITY), sum = V0();
        for (int j = 0; j < nk; j++)
            mx = VSEL_LE(V1((float)j), L, VMAX(mx, VLD(S + (size_t)j * ldq + r)), mx);
        mx = VSEL_LE(V1(0.0f), L, mx, V0());
        for (int j = 0; j < nk; j++) {
            float *s = S + (size_t)j * ldq + r;
            const vf e = VSEL_LE(V1((float)j), L, vexp(VSUB(VLD(s), mx)), V0());
            VST(s, e);
            sum = VADD(sum, e);
        }
        VST(m + r, mx);
        VST(l + r, sum);
    }
}

/* O[r][0..hd) = sum_j P[j][r] V[j][..] for rows [r0, r0 + PR), 4 vectors of columns at a time */
static void SUF(pv_rows4)(float *O, int hd, const float *P, int ldq, int r0, const float *Vf,
                          int nk, int c) {
    vf a[4][4];
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) a[i][0] = a[i][1] = a[i][2] = a[i][3] = V0();
    for (int j = 0; j < nk; j++) {
        const float *v = Vf + (size_t)j * hd + c, *p = P + (size_t)j * ldq + r0;
        const vf v0 = VLD(v), v1 = VLD(v + VL), v2 = VLD(v + 2 * VL), v3 = VLD(v + 3 * VL);
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
            const vf w = V1(p[i]);
            a[i][0] = VFMA(w, v0, a[i][0]);
            a[i][1] = VFMA(w, v1, a[i][1]);
            a[i][2] = VFMA(w, v2, a[i][2]);
            a[i][3] = VFMA(w, v3, a[i][3]);
        }
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
        float *o = O + (size_t)(r0 + i) * hd + c;
        VST(o, a[i][0]);
        VST(o + VL, a[i][1]);
        VST(o + 2 * VL, a[i][2]);
        VST(o + 3 * VL, a[i][3]);
    }
}

/* One row, one vector of columns (head dims that are not a multiple of 4 VL) */
static void SUF(pv_one)(float *O, int hd, const float *P, int ldq, int r, const float *Vf, int nk,
                        int c) {
    vf a = V0();
    for (int j = 0; j < nk; j++) a = VFMA(V1(P[(size_t)j * ldq + r]), VLD(Vf + (size_t)j * hd + c), a);
    VST(O + (size_t)r * hd + c, a);
}

/* O (rows x hd) = P V for rows [r0, R4) (R4 - r0 a multiple of 4) */
static void SUF(att_pv)(float *O, int hd, const float *P, int ldq, int r0, int R4,
                        const float *lim, const float *Vf, int n) {
    for (int r = r0; r < R4; r += 4) {
        int nk = (int)lim[r + 3] + 1;
        nk = nk < n ? nk : n;
        int c = 0;
        for (; c + 4 * VL <= hd; c += 4 * VL) SUF(pv_rows4)(O, hd, P, ldq, r, Vf, nk, c);
        for (; c < hd; c += VL)
            for (int i = 0; i < 4; i++) SUF(pv_one)(O, hd, P, ldq, r + i, Vf, nk, c);
    }
}

/* ---- decoding: positions in lanes ---------------------------------------------------------- */

/* q . k for the key row at row (values from element hoff): one chain along the head dim */
static inline vf SUF(dot1)(t2_dtype type, const uint8_t *row, int hoff, int hd, const float *q) {
    vf acc = V0();
    if (type == T2_F16) {
        const uint16_t *k = (const uint16_t *)row + hoff;
        _Pragma("GCC unroll 4") for (int c = 0; c < hd; c += VL)
            acc = VFMA(VLD(q + c), VLD16(k + c), acc);
    } else if (type == T2_F32) {
        const float *k = (const float *)row + hoff;
        _Pragma("GCC unroll 4") for (int c = 0; c < hd; c += VL)
            acc = VFMA(VLD(q + c), VLDU(k + c), acc);
    } else {
        const uint8_t *b = row + (size_t)(hoff / 32) * 34;
        for (int c = 0; c < hd; c += 32, b += 34) {
            uint16_t dh;
            memcpy(&dh, b, 2);
            vf t = V0();
            for (int k = 0; k < 32; k += VL)
                t = VFMA(VLD(q + c + k), VLD8((const int8_t *)b + 2 + k), t);
            acc = VFMA(V1(t2_f16_to_f32(dh)), t, acc);
        }
    }
    return acc;
}

/* The scores of heads [0, H) (KV heads from kv0) for the `cnt` key rows at rows (rb bytes
 * apart; cnt <= VL): row by row, each read once for all heads (a stream through memory); then
 * per head the VL chains reduced together. acc: scratch of H x VL vectors. */
static inline void SUF(dec_dots)(const t2_kvv *kv, const uint8_t *rows, int kv0, int H, int G,
                                 int hd, const float *q, int cnt, float *acc, float *s, vf scale) {
    for (int i = 0; i < VL; i++) {
        const uint8_t *row = rows + (size_t)i * kv->row_bytes;
        for (int h = 0; h < H; h++)
            VST(acc + ((size_t)h * VL + i) * VL,
                i < cnt ? SUF(dot1)(kv->type, row, (kv0 + h / G) * hd, hd, q + (size_t)h * hd) : V0());
    }
    for (int h = 0; h < H; h++)
        VST(s + (size_t)h * T2_ATT_SEG, VMUL(vreduce((const vf *)(acc + (size_t)h * VL * VL)), scale));
}

/* o[0..hd) += sum_{i < cnt} p[i] v_i for value rows at rows (rb bytes apart) */
static inline void SUF(dec_axpy)(const t2_kvv *kv, const uint8_t *rows, int hoff, int hd,
                                 const float *p, int cnt, float *o) {
    const size_t rb = kv->row_bytes;
    for (int c = 0; c < hd; c += VL) {
        vf a = VLD(o + c);
        if (kv->type == T2_F16) {
            for (int i = 0; i < cnt; i++)
                a = VFMA(V1(p[i]), VLD16((const uint16_t *)(rows + (size_t)i * rb) + hoff + c), a);
        } else if (kv->type == T2_F32) {
            for (int i = 0; i < cnt; i++)
                a = VFMA(V1(p[i]), VLDU((const float *)(rows + (size_t)i * rb) + hoff + c), a);
        } else {
            const int blk = (hoff + c) / 32, k = (hoff + c) % 32;
            for (int i = 0; i < cnt; i++) {
                const uint8_t *b = rows + (size_t)i * rb + (size_t)blk * 34;
                uint16_t dh;
                memcpy(&dh, b, 2);
                a = VFMA(V1(p[i] * t2_f16_to_f32(dh)), VLD8((const int8_t *)b + 2 + k), a);
            }
        }
        VST(o + c, a);
    }
}

#ifndef PF_BLOCKS
#define PF_BLOCKS 1 /* blocks of VL rows ahead (2 measured no different) */
#endif
/* Prefetch bytes [b0, b1) of the VL rows PF_BLOCKS blocks ahead of position t (= t0 + j, n in all) */
static inline void SUF(prefetch)(const t2_kvv *kv, int t, int j, int n, size_t off, size_t b0,
                                 size_t b1) {
    if (j + (PF_BLOCKS + 1) * VL > n) return;
    const int u = t + PF_BLOCKS * VL;
    const uint8_t *rows = kv->base + (size_t)kv->blocks[u / T2_KV_BLOCK] * kv->block_bytes + off +
                          (size_t)(u % T2_KV_BLOCK) * kv->row_bytes;
    for (int i = 0; i < VL; i++)
        for (size_t b = b0 & ~(size_t)63; b < b1; b += 64)
            _mm_prefetch((const char *)rows + (size_t)i * kv->row_bytes + b, _MM_HINT_T0);
}

/* Decoding partials of the H = K * G heads of KV heads [kv0, kv0 + K) over positions [t0, t1)
 * (one segment): each block of VL positions is read once for all these heads. q: H x hd,
 * sc: H x (T2_ATT_SEG + VL * VL) scratch (64-byte aligned), part: H x (hd + 2). */
void SUF(t2_att_dec)(const t2_kvv *kv, int kv0, int K, int G, int hd, const float *q, float scale,
                     int t0, int t1, float *sc, float *part) {
    const int H = K * G, n = t1 - t0, P = hd + 2;
    const vf vs = V1(scale);
    const size_t b0 = t2_kv_row_bytes(kv->type, kv0 * hd), b1 = t2_kv_row_bytes(kv->type, (kv0 + K) * hd);
    for (int j = 0; j < n; j += VL) {
        const int t = t0 + j, cnt = n - j < VL ? n - j : VL;
        const uint8_t *rows = kv->base + (size_t)kv->blocks[t / T2_KV_BLOCK] * kv->block_bytes +
                              kv->k_off + (size_t)(t % T2_KV_BLOCK) * kv->row_bytes;
        SUF(prefetch)(kv, t, j, n, kv->k_off, b0, b1);
        SUF(dec_dots)(kv, rows, kv0, H, G, hd, q, cnt, sc + (size_t)H * T2_ATT_SEG, sc + j, vs);
    }
    for (int h = 0; h < H; h++) {
        float *s = sc + (size_t)h * T2_ATT_SEG, *p = part + (size_t)h * P;
        const vf L = V1((float)(n - 1));
        vf mx = V1(-INFINITY), sum = V0();
        for (int j = 0; j < n; j += VL) {
            const vf jj = VADD(V1((float)j), SUF(iota)());
            mx = VSEL_LE(jj, L, VMAX(mx, VLD(s + j)), mx);
        }
        const float m = hmax(mx);
        for (int j = 0; j < n; j += VL) {
            const vf jj = VADD(V1((float)j), SUF(iota)());
            const vf e = VSEL_LE(jj, L, vexp(VSUB(VLD(s + j), V1(m))), V0());
            VST(s + j, e);
            sum = VADD(sum, e);
        }
        p[0] = m;
        p[1] = hsum(sum);
        memset(p + 2, 0, (size_t)hd * sizeof(float));
    }
    for (int j = 0; j < n; j += VL) {
        const int t = t0 + j, cnt = n - j < VL ? n - j : VL;
        const uint8_t *rows = kv->base + (size_t)kv->blocks[t / T2_KV_BLOCK] * kv->block_bytes +
                              kv->v_off + (size_t)(t % T2_KV_BLOCK) * kv->row_bytes;
        SUF(prefetch)(kv, t, j, n, kv->v_off, b0, b1);
        for (int h = 0; h < H; h++)
            SUF(dec_axpy)(kv, rows, (kv0 + h / G) * hd, hd, sc + (size_t)h * T2_ATT_SEG + j, cnt,
                          part + (size_t)h * P + 2);
    }
}

/* ---- prompt rows: segments of scores, softmax and values, folded in order ----------------- */

/* run (m, l, o[hd]) folded with the partial (pm, pl, po): as t2_att_fold */
static void SUF(fold)(float *run, float pm, float pl, const float *po, int hd) {
    const float m = run[0] > pm ? run[0] : pm, a = expf(run[0] - m), b = expf(pm - m);
    run[0] = m;
    run[1] = run[1] * a + pl * b;
    for (int i = 0; i < hd; i++) run[2 + i] = run[2 + i] * a + po[i] * b;
}

size_t SUF(t2_att_rows_floats)(int hd, int R) {
    const size_t ldq = (size_t)(R + 2 * VL - 1) / (2 * VL) * (2 * VL), h = (size_t)hd;
    return h * ldq + 2 * T2_ATT_SEG * h + T2_ATT_SEG * ldq + ldq * h + 3 * ldq +
           (size_t)R * (h + 2) + 16;
}

/* Segment [t0, t0 + n) for rows [rfirst, R) (rows before rfirst do not reach it) */
static void SUF(rows_seg)(const t2_kvv *kv, int hoff, int hd, const int *pos, int R, int ldq,
                          int rfirst, float scale, int t0, int n, float *w, int first) {
    float *Qt = w, *Kf = Qt + (size_t)hd * ldq, *Vf = Kf + (size_t)T2_ATT_SEG * hd;
    float *S = Vf + (size_t)T2_ATT_SEG * hd, *O = S + (size_t)T2_ATT_SEG * ldq;
    float *m = O + (size_t)ldq * hd, *l = m + ldq, *lim = l + ldq, *run = lim + ldq;
    for (int r = 0; r < ldq; r++) lim[r] = (float)(pos[r < R ? r : R - 1] - t0);
    SUF(att_cvt)(kv, kv->k_off, hoff, hd, t0, n, Kf);
    SUF(att_cvt)(kv, kv->v_off, hoff, hd, t0, n, Vf);
    const int rv = rfirst / (2 * VL) * (2 * VL), r4 = rfirst / 4 * 4;
    SUF(att_qk)(S, ldq, Qt, rv, ldq, lim, Kf, hd, n, scale);
    SUF(att_smax)(S, ldq, rv, ldq, lim, n, m, l);
    SUF(att_pv)(O, hd, S, ldq, r4, ldq, lim, Vf, n);
    for (int r = rfirst; r < R; r++) {
        float *rr = run + (size_t)r * (hd + 2);
        if (first) {
            rr[0] = m[r];
            rr[1] = l[r];
            memcpy(rr + 2, O + (size_t)r * hd, (size_t)hd * sizeof(float));
        } else {
            SUF(fold)(rr, m[r], l[r], O + (size_t)r * hd, hd);
        }
    }
}

/* out[r] = causal attention of q[r] (a head using the KV head at element hoff) at position
 * pos[r] (nondecreasing in r) over positions [0, pos[r]] */
void SUF(t2_att_rows)(const t2_kvv *kv, int hoff, int hd, const float *const *q, const int *pos,
                      int R, float scale, float *w, float *const *out) {
    const int ldq = (R + 2 * VL - 1) / (2 * VL) * (2 * VL), plast = pos[R - 1];
    float *Qt = w, *run = w + SUF(t2_att_rows_floats)(hd, R) - 16 - (size_t)R * (hd + 2);
    for (int d = 0; d < hd; d++)
        for (int r = 0; r < ldq; r++) Qt[(size_t)d * ldq + r] = r < R ? q[r][d] : 0.0f;
    int rfirst = 0;
    for (int t0 = 0; t0 <= plast; t0 += T2_ATT_SEG) {
        const int n = plast + 1 - t0 < T2_ATT_SEG ? plast + 1 - t0 : T2_ATT_SEG;
        while (pos[rfirst] < t0) rfirst++;
        SUF(rows_seg)(kv, hoff, hd, pos, R, ldq, rfirst, scale, t0, n, w, t0 == 0);
    }
    for (int r = 0; r < R; r++) {
        const float *rr = run + (size_t)r * (hd + 2), inv = 1.0f / rr[1];
        for (int i = 0; i < hd; i++) out[r][i] = rr[2 + i] * inv;
    }
}
