#include "base/t2_log.h"

#include "base/t2_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

int t2_log_level = T2_LOG_WARN;
static char log_role[32] = "t2";
static int log_rank = -1;

void t2_log_set_role(const char *role, int rank) {
    snprintf(log_role, sizeof log_role, "%s", role ? role : "t2");
    log_rank = rank;
}

int t2_log_set_level_str(const char *s) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) {
            t2_log_level = i;
            return 0;
        }
    return t2_err_set(T2_EINVAL, "unknown log level '%s' (error, warn, info, debug)", s);
}

void t2_log_write(int level, const char *func, const char *fmt, ...) {
    static const char *tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};
    char line[2048], ts[32];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    int n;
    if (log_rank >= 0)
        n = snprintf(line, sizeof line, "%s.%03d %s %s[%d] %s: ", ts, (int)(tv.tv_usec / 1000),
                     tags[level & 3], log_role, log_rank, func);
    else
        n = snprintf(line, sizeof line, "%s.%03d %s %s %s: ", ts, (int)(tv.tv_usec / 1000),
                     tags[level & 3], log_role, func);
    if (n < 0 || n >= (int)sizeof line) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line); /* one write per line keeps lines whole across processes */
}
