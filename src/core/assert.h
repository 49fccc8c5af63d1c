/* Assertions that stay on in release builds; for programmer errors only, never bad input. */
#ifndef SL_CORE_ASSERT_H
#define SL_CORE_ASSERT_H

void sl__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#define SL_ASSERT(e) ((e) ? (void)0 : sl__assert_fail(#e, __FILE__, __LINE__))
#define SL_LIKELY(x) __builtin_expect(!!(x), 1)
#define SL_UNLIKELY(x) __builtin_expect(!!(x), 0)

#endif
