/* t2_test.h - minimal test macros. A test program is a list of `static void test_x(void)`
 * functions run by T2_RUN; failures print file:line and the expression, and main returns
 * non-zero; the last line is "N passed, N failed, N skipped". A test that cannot check anything
 * here says why with T2_SKIP (it returns); a program whose tests all skipped exits 77 (ctest
 * SKIP). A precondition of a whole program: print "SKIP: why" and exit(77) before any T2_RUN. */
#ifndef T2_TEST_H
#define T2_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t2_test_failed_checks;
static int t2_test_passed, t2_test_failed, t2_test_skipped;
static char t2_test_skip_why[256];

/* Leave the current test function, reporting it as skipped (not passed) with the reason. */
#define T2_SKIP(...)                                                                       \
    do {                                                                                   \
        snprintf(t2_test_skip_why, sizeof t2_test_skip_why, __VA_ARGS__);                  \
        return;                                                                            \
    } while (0)

#define T2_CHECK(cond)                                                                     \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);       \
            t2_test_failed_checks++;                                                       \
        }                                                                                  \
    } while (0)
#define T2_CHECK_MSG(cond, ...)                                                            \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            t2_test_failed_checks++;                                                       \
        }                                                                                  \
    } while (0)
#define T2_CHECK_EQ_INT(a, b)                                                              \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        if (a_ != b_) {                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%lld vs %lld)\n", __FILE__,    \
                    __LINE__, #a, #b, a_, b_);                                             \
            t2_test_failed_checks++;                                                       \
        }                                                                                  \
    } while (0)
#define T2_CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                   \
        double a_ = (double)(a), b_ = (double)(b);                                         \
        if (!(fabs(a_ - b_) <= (tol))) {                                                   \
            fprintf(stderr, "%s:%d: check failed: |%s - %s| <= %g (%.9g vs %.9g)\n",       \
                    __FILE__, __LINE__, #a, #b, (double)(tol), a_, b_);                    \
            t2_test_failed_checks++;                                                       \
        }                                                                                  \
    } while (0)

#define T2_RUN(fn)                                                                         \
    do {                                                                                   \
        int before_ = t2_test_failed_checks;                                               \
        t2_test_skip_why[0] = 0;                                                           \
        fn();                                                                              \
        if (t2_test_failed_checks == before_ && t2_test_skip_why[0]) {                     \
            t2_test_skipped++;                                                             \
            printf("SKIP %s: %s\n", #fn, t2_test_skip_why);                                \
        } else if (t2_test_failed_checks == before_) {                                     \
            t2_test_passed++;                                                              \
            printf("ok   %s\n", #fn);                                                      \
        } else {                                                                           \
            t2_test_failed++;                                                              \
            printf("FAIL %s\n", #fn);                                                      \
        }                                                                                  \
        fflush(stdout);                                                                    \
    } while (0)

#define T2_TEST_END()                                                                      \
    (printf("%d passed, %d failed, %d skipped\n", t2_test_passed, t2_test_failed,            \
            t2_test_skipped),                                                              \
     t2_test_failed ? 1 : (t2_test_passed == 0 && t2_test_skipped > 0) ? 77 : 0)

/* Path of a shared asset, or exit 77 (ctest SKIP) with a message when absent. */
static inline const char *t2_test_asset(const char *rel) {
    static char buf[8][1024];
    static int k;
    const char *root = getenv("T2_ASSETS");
    if (!root) root = "../shared/assets";
    char *p = buf[k++ & 7];
    snprintf(p, 1024, "%s/%s", root, rel);
    FILE *f = fopen(p, "rb");
    if (!f) {
        printf("SKIP: %s not found (set T2_ASSETS to the shared assets folder)\n", p);
        exit(77);
    }
    fclose(f);
    return p;
}

#endif
