/* Leveled logging (see log.h). The level comes from SLUICE_LOG (debug|info|warn|error|off). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int current_level = -1;

static sl_log_level_t level_from_env(void) {
    const char *e = getenv("SLUICE_LOG");
    if (e == NULL)
        return SL_LOG_WARN;
    if (strcmp(e, "debug") == 0)
        return SL_LOG_DEBUG;
    if (strcmp(e, "info") == 0)
        return SL_LOG_INFO;
    if (strcmp(e, "error") == 0)
        return SL_LOG_ERROR;
    if (strcmp(e, "off") == 0)
        return SL_LOG_OFF;
    return SL_LOG_WARN;
}

void sl_log_set_level(sl_log_level_t level) { current_level = (int)level; }

sl_log_level_t sl_log_get_level(void) {
    if (current_level < 0)
        current_level = (int)level_from_env();
    return (sl_log_level_t)current_level;
}

void sl_log(sl_log_level_t level, const char *fmt, ...) {
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < sl_log_get_level() || level >= SL_LOG_OFF)
        return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %-5s ", tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
