/* Allocation wrappers with optional fault injection (see alloc.h). */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown;
static int fail_sticky;

static int should_fail(void) {
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n <= 0)
        return 0;
    n = atomic_fetch_sub(&fail_countdown, 1);
    if (n == 1) {
        if (fail_sticky)
            atomic_store(&fail_countdown, 1);
        return 1;
    }
    return 0;
}

void sl_alloc_fail_after(long n, int sticky) {
    fail_sticky = sticky;
    atomic_store(&fail_countdown, n);
}

void *sl_malloc(size_t size) {
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *sl_calloc(size_t count, size_t size) {
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *sl_realloc(void *ptr, size_t size) {
    if (should_fail())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void sl_free(void *ptr) { free(ptr); }

char *sl_strdup(const char *s) { return sl_strndup(s, strlen(s)); }

char *sl_strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = sl_malloc(len + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
