/* t2-bench-membw: memory read bandwidth (GB/s) with 1..N threads.
 *
 *   t2-bench-membw [-s MiB] [-t max_threads] [-o out.csv]
 *
 * Each thread stream-sums its slice of one buffer (default 1 GiB) with the widest loads of the
 * current kernel level; best of several passes (t2_membw_read_gbs in shared/membw.c). */
#include "engine/kernels.h"
#include "base/t2_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr, "usage: t2-bench-membw [-s MiB (1024)] [-t max_threads (2)] [-o out.csv]\n");
}

int main(int argc, char **argv) {
    size_t mib = 1024;
    int max_threads = 2;
    const char *csv = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc) mib = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) max_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-o") && i + 1 < argc) csv = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (mib < 1 || max_threads < 1) {
        usage();
        return 2;
    }
    FILE *f = NULL;
    if (csv && !(f = fopen(csv, "w"))) {
        perror(csv);
        return 1;
    }
    if (f) fprintf(f, "threads,bytes,read_gbs,level\n");
    printf("memory read bandwidth, %zu MiB buffer, kernel level %s\n", mib, t2_kern_level());
    printf("%8s %10s\n", "threads", "GB/s");
    for (int t = 1; t <= max_threads; t++) {
        double g = t2_membw_read_gbs(t, mib << 20);
        if (g < 0) {
            fprintf(stderr, "t2-bench-membw: %s\n", t2_err_msg());
            if (f) fclose(f);
            return 1;
        }
        printf("%8d %10.2f\n", t, g);
        if (f) fprintf(f, "%d,%zu,%.3f,%s\n", t, mib << 20, g, t2_kern_level());
    }
    if (f) fclose(f);
    return 0;
}
