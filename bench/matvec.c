/* t2-bench-matvec: matrix-vector bandwidth per weight type and thread count, and sgemm speed.
 *
 *   t2-bench-matvec [-o out.csv] [-t 1,2] [-d f32,f16,bf16,q8_0] [-m cold_MiB] [-q]
 *
 * For every type and thread count: matvec on 2048x768, 768x2048 and 32000x768 (rows x cols),
 * "hot" (one matrix, repeated: cache-resident when it fits) and "cold" (cycling through copies
 * totalling >= cold_MiB, default 512, so the weights stream from DRAM), and the weight mix of a
 * 134M-parameter Llama (12 layers of q/k/v/o 768x768, w1/w3 2048x768, w2 768x2048, and a
 * 32000x768 classifier), driven like a forward pass (q/k/v and w1/w3 in one matvec_multi call).
 * Reported as GB/s of weight bytes read and as % of the memory read bandwidth measured in the
 * same time window: every timed matvec pass is preceded by a timed read pass
 * (t2_membw_read_pass) over a 512 MiB buffer on the same pool, and each is the best of its
 * passes, so that load from other processes hits both alike. Then t2_matvec_batch (continuous
 * batching: B sequences, one token each, against the same weights) on the 134M mix for
 * B = 1, 2, 4, 8: tokens/s, GB/s of weights read and GB/s-equivalent (B x weight bytes / time,
 * what B separate matvecs would have to stream), for the batched kernels ("new") and for the
 * loop t2_matvec_batch used before them ("old": per 32-row block, t2_matvec_rows per vector),
 * timed in alternation. Then t2_matmul for a 128-token batch (GFLOP/s).
 * -q: quick (smaller cold set, fewer passes). -b: the t2_matvec_batch section only. */
#include "engine/kernels.h"
#include "base/pool.h"
#include "base/t2_err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

/* n copies of a random rows x cols matrix of type t, each its own allocation. */
static void *make_weights(t2_dtype t, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    float *f = malloc(n * 4);
    void *d = malloc(t2_dtype_row_bytes(t, cols) * rows);
    if (!f || !d) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) f[i] = 0.05f * frand();
    t2_from_f32(d, f, t, (int64_t)n);
    free(f);
    return d;
}

static void *dup_bytes(const void *src, size_t bytes) {
    void *d = malloc(bytes);
    if (!d) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    memcpy(d, src, bytes);
    return d;
}

static FILE *g_csv;
static float g_x[32000], g_y[32000], g_y2[32000], g_y3[32000];
static float *g_ref; /* reference read buffer */
static size_t g_ref_n;

/* membw <= 0: no reference (hot runs). */
static void report(const char *dt, int threads, const char *what, const char *mode, double gbs,
                   double membw) {
    if (membw > 0)
        printf("%-5s %2d  %-22s %-5s %8.2f GB/s  %8.2f GB/s  %6.1f %%\n", dt, threads, what, mode,
               gbs, membw, 100.0 * gbs / membw);
    else
        printf("%-5s %2d  %-22s %-5s %8.2f GB/s  %13s  %8s\n", dt, threads, what, mode, gbs, "-", "-");
    if (g_csv) {
        if (membw > 0)
            fprintf(g_csv, "matvec,%s,%d,%s,%s,%.3f,%.3f,%.1f\n", dt, threads, what, mode, gbs,
                    membw, 100.0 * gbs / membw);
        else
            fprintf(g_csv, "matvec,%s,%d,%s,%s,%.3f,,\n", dt, threads, what, mode, gbs);
    }
    fflush(stdout);
}

/* A timed reference read pass (cold runs only); keeps the best in *best. */
static void ref_pass(t2_pool *pool, double *best) {
    if (!best) return;
    double g = t2_membw_read_pass(pool, g_ref, g_ref_n);
    if (g > *best) *best = g;
}

/* Best of `passes` passes; one pass = `per_pass` matvecs over copies[i % ncopies]. */
static double bench_shape(t2_pool *pool, t2_dtype t, int rows, int cols, int ncopies,
                          int per_pass, int passes, double *ref) {
    size_t bytes = t2_dtype_row_bytes(t, cols) * rows;
    void **c = malloc((size_t)ncopies * sizeof *c);
    c[0] = make_weights(t, rows, cols);
    for (int i = 1; i < ncopies; i++) c[i] = dup_bytes(c[0], bytes);
    double best = 1e30;
    for (int p = 0; p < passes + 1; p++) {
        ref_pass(pool, ref);
        double t0 = now_s();
        for (int k = 0; k < per_pass; k++) {
            t2_mat W = {t, rows, cols, c[k % ncopies]};
            t2_matvec(pool, g_y, &W, g_x);
        }
        double dt = now_s() - t0;
        if (p > 0 && dt < best) best = dt; /* pass 0 warms up */
    }
    for (int i = 0; i < ncopies; i++) free(c[i]);
    free(c);
    return (double)bytes * per_pass / best / 1e9;
}

/* The 134M-model weight mix, one "token" per pass. */
static double bench_mix(t2_pool *pool, t2_dtype t, int passes, double *ref) {
    enum { L = 12, D = 768, H = 2048, V = 32000 };
    t2_mat q[L], k[L], v[L], o[L], w1[L], w3[L], w2[L], cls;
    size_t total = 0;
    void *proto_dd = make_weights(t, D, D), *proto_hd = make_weights(t, H, D),
         *proto_dh = make_weights(t, D, H);
    size_t bdd = t2_dtype_row_bytes(t, D) * D, bhd = t2_dtype_row_bytes(t, D) * H,
           bdh = t2_dtype_row_bytes(t, H) * D;
    for (int l = 0; l < L; l++) {
        q[l] = (t2_mat){t, D, D, dup_bytes(proto_dd, bdd)};
        k[l] = (t2_mat){t, D, D, dup_bytes(proto_dd, bdd)};
        v[l] = (t2_mat){t, D, D, dup_bytes(proto_dd, bdd)};
        o[l] = (t2_mat){t, D, D, dup_bytes(proto_dd, bdd)};
        w1[l] = (t2_mat){t, H, D, dup_bytes(proto_hd, bhd)};
        w3[l] = (t2_mat){t, H, D, dup_bytes(proto_hd, bhd)};
        w2[l] = (t2_mat){t, D, H, dup_bytes(proto_dh, bdh)};
        total += 4 * bdd + 2 * bhd + bdh;
    }
    cls = (t2_mat){t, V, D, make_weights(t, V, D)};
    total += t2_dtype_row_bytes(t, D) * V;
    free(proto_dd);
    free(proto_hd);
    free(proto_dh);
    double best = 1e30;
    for (int p = 0; p < passes + 1; p++) {
        ref_pass(pool, ref);
        double t0 = now_s();
        for (int l = 0; l < L; l++) {
            float *ys[3] = {g_y, g_y2, g_y3};
            const t2_mat *ws[3] = {&q[l], &k[l], &v[l]};
            const float *xs[3] = {g_x, g_x, g_x};
            t2_matvec_multi(pool, 3, ys, ws, xs);
            t2_matvec(pool, g_y, &o[l], g_x);
            const t2_mat *ws2[2] = {&w1[l], &w3[l]};
            t2_matvec_multi(pool, 2, ys, ws2, xs);
            t2_matvec(pool, g_y, &w2[l], g_x);
        }
        t2_matvec(pool, g_y, &cls, g_x);
        double dt = now_s() - t0;
        if (p > 0 && dt < best) best = dt;
    }
    for (int l = 0; l < L; l++) {
        free((void *)q[l].data);
        free((void *)k[l].data);
        free((void *)v[l].data);
        free((void *)o[l].data);
        free((void *)w1[l].data);
        free((void *)w3[l].data);
        free((void *)w2[l].data);
    }
    free((void *)cls.data);
    return (double)total / best / 1e9;
}

/* ---- t2_matvec_batch on the 134M mix ---- */

/* Reference: t2_matvec_batch before the batched kernels, kept to measure against. Each thread
 * takes t2_split blocks of 32 rows and runs t2_matvec_rows per vector on each block (the block
 * is then read from cache by the other vectors; Q8_0 re-rounds x per block and vector). */
typedef struct {
    float *const *ys;
    const t2_mat *W;
    const float *const *xs;
    int B;
} old_batch_job;

static void old_batch_task(void *arg, int ith, int nth) {
    const old_batch_job *j = arg;
    int lo, hi;
    t2_split(j->W->rows, 32, ith, nth, &lo, &hi);
    for (int r = lo; r < hi; r += 32) {
        int r1 = r + 32 < hi ? r + 32 : hi;
        for (int b = 0; b < j->B; b++) t2_matvec_rows(j->ys[b], j->W, j->xs[b], r, r1);
    }
}

static void old_matvec_batch(t2_pool *pool, float *const *ys, const t2_mat *W,
                             const float *const *xs, int B) {
    if (B <= 0 || W->rows <= 0) return;
    if (B == 1) {
        t2_matvec(pool, ys[0], W, xs[0]);
        return;
    }
    old_batch_job j = {ys, W, xs, B};
    if (!pool || (size_t)W->rows * W->cols * B < 65536) old_batch_task(&j, 0, 1);
    else t2_pool_run(pool, old_batch_task, &j);
}

typedef void (*batch_fn)(t2_pool *, float *const *, const t2_mat *, const float *const *, int);

enum { BL = 12, BD = 768, BH = 2048, BV = 32000, BMAX = 8 };
typedef struct {
    t2_mat m[BL * 7 + 1]; /* per layer q, k, v, o, w1, w3, w2; then the classifier */
    size_t bytes;
    float *x[BMAX], *y[BMAX];
} batch_mix;

static void batch_mix_new(batch_mix *mx, t2_dtype t) {
    void *dd = make_weights(t, BD, BD), *hd = make_weights(t, BH, BD), *dh = make_weights(t, BD, BH);
    size_t bdd = t2_dtype_row_bytes(t, BD) * BD, bhd = t2_dtype_row_bytes(t, BD) * BH,
           bdh = t2_dtype_row_bytes(t, BH) * BD;
    mx->bytes = 0;
    for (int l = 0; l < BL; l++)
        for (int k = 0; k < 7; k++) {
            int rows = k < 4 ? BD : k < 6 ? BH : BD, cols = k < 6 ? BD : BH;
            size_t b = k < 4 ? bdd : k < 6 ? bhd : bdh;
            mx->m[7 * l + k] = (t2_mat){t, rows, cols, dup_bytes(k < 4 ? dd : k < 6 ? hd : dh, b)};
            mx->bytes += b;
        }
    mx->m[7 * BL] = (t2_mat){t, BV, BD, make_weights(t, BV, BD)};
    mx->bytes += t2_dtype_row_bytes(t, BD) * BV;
    free(dd);
    free(hd);
    free(dh);
    for (int b = 0; b < BMAX; b++) { /* 64-byte aligned, as t2_state's vectors */
        mx->x[b] = aligned_alloc(64, BH * sizeof(float));
        mx->y[b] = aligned_alloc(64, BV * sizeof(float));
        if (!mx->x[b] || !mx->y[b]) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        for (int i = 0; i < BH; i++) mx->x[b][i] = frand();
    }
}

static void batch_mix_free(batch_mix *mx) {
    for (int i = 0; i < BL * 7 + 1; i++) free((void *)mx->m[i].data);
    for (int b = 0; b < BMAX; b++) {
        free(mx->x[b]);
        free(mx->y[b]);
    }
}

/* One pass: every matrix of the mix against B vectors (as lin_multi drives it for B sequences
 * on the base weights); returns seconds. */
static double batch_pass(t2_pool *pool, batch_fn fn, batch_mix *mx, int B) {
    const float *xs[BMAX];
    for (int b = 0; b < B; b++) xs[b] = mx->x[b];
    double t0 = now_s();
    for (int i = 0; i < BL * 7 + 1; i++) fn(pool, mx->y, &mx->m[i], xs, B);
    return now_s() - t0;
}

static void bench_batch(t2_pool *pool, t2_dtype t, int threads, int passes) {
    static const int Bs[] = {1, 2, 4, 8};
    batch_mix mx;
    batch_mix_new(&mx, t);
    const char *dn = t2_dtype_name(t);
    double tok[2][4];
    for (int bi = 0; bi < 4; bi++) {
        int B = Bs[bi];
        double best[2] = {1e30, 1e30};
        for (int p = 0; p < passes + 1; p++)
            for (int v = 0; v < 2; v++) { /* old and new in alternation: same load on both */
                double dt = batch_pass(pool, v ? t2_matvec_batch : old_matvec_batch, &mx, B);
                if (p > 0 && dt < best[v]) best[v] = dt;
            }
        for (int v = 0; v < 2; v++) {
            tok[v][bi] = B / best[v];
            double gbs = (double)mx.bytes / best[v] / 1e9;
            printf("%-5s %2d  B=%d %-3s  %8.1f tok/s  %8.2f GB/s weights  %8.2f GB/s-equivalent\n",
                   dn, threads, B, v ? "new" : "old", tok[v][bi], gbs, gbs * B);
            if (g_csv)
                fprintf(g_csv, "batch,%s,%d,134M mix B=%d,%s,%.3f,,\n", dn, threads, B,
                        v ? "new" : "old", tok[v][bi]);
        }
    }
    printf("%-5s %2d  B=8 / B=1 tok/s: old %.2fx, new %.2fx; B=8 new / old %.2fx\n\n", dn, threads,
           tok[0][3] / tok[0][0], tok[1][3] / tok[1][0], tok[1][3] / tok[0][3]);
    fflush(stdout);
    batch_mix_free(&mx);
}

static double bench_sgemm(t2_pool *pool, t2_dtype t, int rows, int cols, int B, int passes) {
    t2_mat W = {t, rows, cols, make_weights(t, rows, cols)};
    float *X = malloc((size_t)B * cols * 4), *Y = malloc((size_t)B * rows * 4);
    for (size_t i = 0; i < (size_t)B * cols; i++) X[i] = frand();
    double best = 1e30;
    for (int p = 0; p < passes + 1; p++) {
        double t0 = now_s();
        if (t2_matmul(pool, Y, &W, X, B) != 0) {
            fprintf(stderr, "matmul: %s\n", t2_err_msg());
            exit(1);
        }
        double dt = now_s() - t0;
        if (p > 0 && dt < best) best = dt;
    }
    free((void *)W.data);
    free(X);
    free(Y);
    return 2.0 * rows * cols * B / best / 1e9;
}

static void usage(void) {
    fprintf(stderr, "usage: t2-bench-matvec [-o out.csv] [-t 1,2] [-d f32,f16,bf16,q8_0] "
                    "[-m cold_MiB (512)] [-q] [-b]\n");
}

typedef struct {
    const char *csv;
    size_t cold_mib;
    int quick, batch_only, passes;
    int threads[8], nthreads;
    t2_dtype types[4];
    int ntypes;
} mv_opts;

/* The command line: -1 to go on, else the exit status (after the usage line or message). */
static int parse_args(int argc, char **argv, mv_opts *o) {
    const char *tlist = "1,2", *dlist = "f32,f16,bf16,q8_0";
    o->cold_mib = 512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) o->csv = argv[++i];
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) tlist = argv[++i];
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) dlist = argv[++i];
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) o->cold_mib = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "-q")) o->quick = 1;
        else if (!strcmp(argv[i], "-b")) o->batch_only = 1;
        else {
            usage();
            return 2;
        }
    }
    if (o->quick && o->cold_mib == 512) o->cold_mib = 256;
    o->passes = o->quick ? 5 : 15;
    for (const char *p = tlist; *p && o->nthreads < 8;) {
        o->threads[o->nthreads] = atoi(p);
        if (o->threads[o->nthreads] < 1) {
            usage();
            return 2;
        }
        o->nthreads++;
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    char dbuf[128];
    snprintf(dbuf, sizeof dbuf, "%s", dlist);
    for (char *tok = strtok(dbuf, ","); tok && o->ntypes < 4; tok = strtok(NULL, ",")) {
        if (t2_dtype_parse(tok, &o->types[o->ntypes]) != 0) {
            fprintf(stderr, "t2-bench-matvec: %s\n", t2_err_msg());
            return 2;
        }
        o->ntypes++;
    }
    return -1;
}

/* t2_matvec_batch on the 134M mix, every type and thread count. */
static int run_batch(const mv_opts *o) {
    printf("\nt2_matvec_batch, 134M mix (old: the per-vector loop before the batched kernels):\n");
    for (int di = 0; di < o->ntypes; di++)
        for (int ti = 0; ti < o->nthreads; ti++) {
            t2_pool *pool;
            if (t2_pool_new(&pool, o->threads[ti]) < 0) return 1;
            bench_batch(pool, o->types[di], o->threads[ti], o->passes);
            t2_pool_destroy(&pool);
        }
    return 0;
}

/* The read bandwidth at each thread count (membw), and the reference buffer g_ref. */
static int run_membw(const mv_opts *o, double *membw) {
    for (int ti = 0; ti < o->nthreads; ti++) {
        membw[ti] = t2_membw_read_gbs(o->threads[ti], (size_t)1 << 30);
        if (membw[ti] <= 0) {
            fprintf(stderr, "t2-bench-matvec: %s\n", t2_err_msg());
            return 1;
        }
        printf("membw %d thread(s): %.2f GB/s\n", o->threads[ti], membw[ti]);
        if (g_csv)
            fprintf(g_csv, "membw,,%d,read 1 GiB,cold,%.3f,%.3f,100.0\n", o->threads[ti],
                    membw[ti], membw[ti]);
    }
    g_ref_n = ((size_t)512 << 20) / sizeof(float);
    g_ref = aligned_alloc(64, g_ref_n * sizeof(float));
    if (!g_ref) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < g_ref_n; i++) g_ref[i] = (float)(i & 1023);
    return 0;
}

/* t2_matvec on three shapes (hot when small, cold) and the 134M mix, for type t. */
static int run_matvec(const mv_opts *o, t2_dtype t) {
    static const int shapes[][2] = {{2048, 768}, {768, 2048}, {32000, 768}};
    const char *dn = t2_dtype_name(t);
    for (int ti = 0; ti < o->nthreads; ti++) {
        t2_pool *pool;
        if (t2_pool_new(&pool, o->threads[ti]) < 0) {
            fprintf(stderr, "cannot start %d threads\n", o->threads[ti]);
            return 1;
        }
        for (int s = 0; s < 3; s++) {
            int rows = shapes[s][0], cols = shapes[s][1];
            size_t bytes = t2_dtype_row_bytes(t, cols) * rows;
            char what[32];
            snprintf(what, sizeof what, "%dx%d", rows, cols);
            if (bytes < ((size_t)16 << 20)) {
                int reps = (int)(((size_t)256 << 20) / bytes);
                if (o->quick) reps /= 4;
                double g = bench_shape(pool, t, rows, cols, 1, reps, o->passes, NULL);
                report(dn, o->threads[ti], what, "hot", g, 0);
            }
            int ncopies = (int)(((o->cold_mib << 20) + bytes - 1) / bytes);
            if (ncopies < 2) ncopies = 2;
            double ref = 0;
            double g = bench_shape(pool, t, rows, cols, ncopies, ncopies, o->passes, &ref);
            report(dn, o->threads[ti], what, "cold", g, ref);
        }
        double ref = 0;
        double g = bench_mix(pool, t, o->passes, &ref);
        report(dn, o->threads[ti], "134M mix (12 layers)", "cold", g, ref);
        t2_pool_destroy(&pool);
    }
    return 0;
}

/* t2_matmul with a 128-token batch. */
static int run_sgemm(const mv_opts *o) {
    printf("\nt2_matmul, 128-token batch (sgemm on %s):\n", t2_blas_corename());
    static const int mm[][2] = {{2048, 768}, {768, 2048}, {768, 768}};
    for (int di = 0; di < o->ntypes; di++)
        for (int ti = 0; ti < o->nthreads; ti++) {
            t2_pool *pool;
            if (t2_pool_new(&pool, o->threads[ti]) < 0) return 1;
            for (int s = 0; s < 3; s++) {
                double g = bench_sgemm(pool, o->types[di], mm[s][0], mm[s][1], 128, o->passes);
                printf("%-5s %2d  %4dx%-4d x 128  %8.1f GFLOP/s\n", t2_dtype_name(o->types[di]),
                       o->threads[ti], mm[s][0], mm[s][1], g);
                if (g_csv)
                    fprintf(g_csv, "sgemm,%s,%d,%dx%dx128,,%.2f,,\n", t2_dtype_name(o->types[di]),
                            o->threads[ti], mm[s][0], mm[s][1], g);
            }
            t2_pool_destroy(&pool);
        }
    return 0;
}

int main(int argc, char **argv) {
    mv_opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    if (o.csv && !(g_csv = fopen(o.csv, "w"))) {
        perror(o.csv);
        return 1;
    }
    if (g_csv) fprintf(g_csv, "kind,dtype,threads,what,mode,value,membw_gbs,pct_membw\n");
    for (int i = 0; i < 32000; i++) g_x[i] = frand();

    printf("kernel level %s, OpenBLAS core %s\n", t2_kern_level(), t2_blas_corename());
    if (o.batch_only) {
        if ((rc = run_batch(&o))) return rc;
        if (g_csv) fclose(g_csv);
        return 0;
    }
    double membw[8];
    if ((rc = run_membw(&o, membw))) return rc;
    printf("\n%-5s %2s  %-22s %-5s %13s  %13s  %8s\n", "type", "th", "matrix (rows x cols)", "mode",
           "weights read", "membw (same)", "% membw");
    for (int di = 0; di < o.ntypes; di++)
        if ((rc = run_matvec(&o, o.types[di]))) return rc;
    if ((rc = run_batch(&o)) || (rc = run_sgemm(&o))) return rc;
    t2_kern_free_scratch();
    free(g_ref);
    if (g_csv) fclose(g_csv);
    return 0;
}
