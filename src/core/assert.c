/* Assertion failure: log where, print a backtrace, abort. */
#include "core/assert.h"

#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void sl__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "sluice: assertion failed: %s at %s:%d\n", expr, file, line);
    void *frames[32];
    int n = backtrace(frames, 32);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    abort();
}
