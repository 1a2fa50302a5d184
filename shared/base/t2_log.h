/* t2_log.h - one level-filtered log macro.
 *
 * Each line: "2026-11-26T08:33:25.123 INFO  worker[1] t2_load_model: message".
 * Below the current level a T2_LOG costs one integer compare: the arguments are not evaluated.
 * Log lines go to stderr (plain lines, no colour), so stdout stays for program output.
 */
#ifndef T2_LOG_H
#define T2_LOG_H

enum { T2_LOG_ERROR = 0, T2_LOG_WARN = 1, T2_LOG_INFO = 2, T2_LOG_DEBUG = 3 };

extern int t2_log_level;

/* Process role ("t2", "router", "worker", ...) and MPI rank (-1: none) shown on each line. */
void t2_log_set_role(const char *role, int rank);
/* Parse "error|warn|info|debug"; returns 0 or T2_EINVAL. */
int t2_log_set_level_str(const char *s);
void t2_log_write(int level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define T2_LOG(level, ...)                                                                 \
    do {                                                                                   \
        if ((level) <= t2_log_level) t2_log_write((level), __func__, __VA_ARGS__);         \
    } while (0)
#define T2_ERROR(...) T2_LOG(T2_LOG_ERROR, __VA_ARGS__)
#define T2_WARN(...) T2_LOG(T2_LOG_WARN, __VA_ARGS__)
#define T2_INFO(...) T2_LOG(T2_LOG_INFO, __VA_ARGS__)
#define T2_DEBUG(...) T2_LOG(T2_LOG_DEBUG, __VA_ARGS__)

#endif
