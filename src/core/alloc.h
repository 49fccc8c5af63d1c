/* All allocation goes through these wrappers so tests can fail the N-th allocation
 * (SQLite-style fault injection) and so one place counts live bytes if we ever need it. */
#ifndef SL_CORE_ALLOC_H
#define SL_CORE_ALLOC_H

#include <stddef.h>

void *sl_malloc(size_t size);
void *sl_calloc(size_t count, size_t size);
void *sl_realloc(void *ptr, size_t size);
void sl_free(void *ptr);
char *sl_strdup(const char *s);
char *sl_strndup(const char *s, size_t n);

/* Fault injection for tests: the n-th allocation from now (1 = the next one) fails,
 * and every one after it too when `sticky` is set. n = 0 disables. Not thread-safe:
 * call it before starting threads. */
void sl_alloc_fail_after(long n, int sticky);

#endif
