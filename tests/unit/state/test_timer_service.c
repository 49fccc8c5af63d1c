/* Timer service (src/state/timer_service.h): timestamp order, ties in registration order,
 * duplicates ignored, delete, pop bounded by `upto`, next/count, independent domains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/timer_service.h"

static int setup(void **state) {
    sl_timer_service_t *s = NULL;
    if (sl_timer_service_create(&s) != 0)
        return -1;
    *state = s;
    return 0;
}

static int teardown(void **state) {
    sl_timer_service_destroy(*state);
    return 0;
}

static void reg(sl_timer_service_t *s, sl_timer_domain_t d, int64_t ts, const char *key, const char *ns) {
    assert_int_equal(sl_timer_register(s, d, ts, key, (uint32_t)strlen(key), 7, ns, (uint32_t)strlen(ns)), 0);
}

static void del(sl_timer_service_t *s, sl_timer_domain_t d, int64_t ts, const char *key, const char *ns) {
    assert_int_equal(sl_timer_delete(s, d, ts, key, (uint32_t)strlen(key), 7, ns, (uint32_t)strlen(ns)), 0);
}

/* Pops one timer and checks it is (ts, key, ns). */
static void expect_pop(sl_timer_service_t *s, sl_timer_domain_t d, int64_t upto, int64_t ts, const char *key,
                       const char *ns) {
    sl_timer_t t;
    assert_int_equal(sl_timer_pop(s, d, upto, &t), 1);
    assert_int_equal(t.ts, ts);
    assert_int_equal(t.key_len, strlen(key));
    assert_memory_equal(t.key, key, t.key_len);
    assert_int_equal(t.ns_len, strlen(ns));
    if (t.ns_len)
        assert_memory_equal(t.ns, ns, t.ns_len);
    assert_int_equal(t.key_group, 7);
}

static void expect_none(sl_timer_service_t *s, sl_timer_domain_t d, int64_t upto) {
    sl_timer_t t;
    assert_int_equal(sl_timer_pop(s, d, upto, &t), 0);
}

static void test_empty(void **state) {
    sl_timer_service_t *s = *state;
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 0);
    assert_int_equal(sl_timer_count(s, SL_TIMER_PROC), 0);
    assert_true(sl_timer_next(s, SL_TIMER_EVENT) == INT64_MAX);
    assert_true(sl_timer_next(s, SL_TIMER_PROC) == INT64_MAX);
    expect_none(s, SL_TIMER_EVENT, INT64_MAX);
    expect_none(s, SL_TIMER_PROC, INT64_MAX);
    assert_int_equal(sl_timer_delete(s, SL_TIMER_EVENT, 5, "k", 1, 0, "", 0), 0);
}

static void test_order(void **state) {
    sl_timer_service_t *s = *state;
    int64_t ts[] = {50, 10, 40, -5, 30, 20, 1000, 0};
    char key[8];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "k%d", i);
        reg(s, SL_TIMER_EVENT, ts[i], key, "");
    }
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 8);
    assert_int_equal(sl_timer_next(s, SL_TIMER_EVENT), -5);
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, -5, "k3", "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 0, "k7", "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 10, "k1", "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 20, "k5", "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 30, "k4", "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 40, "k2", "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 50, "k0", "");
    assert_int_equal(sl_timer_next(s, SL_TIMER_EVENT), 1000);
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 1);
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 1000, "k6", "");
    expect_none(s, SL_TIMER_EVENT, INT64_MAX);
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 0);
}

static void test_ties_in_registration_order(void **state) {
    sl_timer_service_t *s = *state;
    /* Keys chosen so that any hash or key order would differ from registration order. */
    const char *keys[] = {"zeta", "alpha", "mid", "b", "omega", "a", "yy", "c", "kk", "d"};
    for (int i = 0; i < 10; i++)
        reg(s, SL_TIMER_EVENT, 100, keys[i], "");
    reg(s, SL_TIMER_EVENT, 99, "early", "");
    reg(s, SL_TIMER_EVENT, 101, "late", "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 99, "early", "");
    for (int i = 0; i < 10; i++)
        expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 100, keys[i], "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 101, "late", "");
}

static void test_ties_many(void **state) {
    sl_timer_service_t *s = *state;
    /* 1000 timers over 10 timestamps, registered interleaved: each timestamp's timers pop in
     * the order they were registered (heap growth and sifting must keep that). */
    for (int i = 0; i < 1000; i++) {
        int key = i;
        int64_t ts = (int64_t)((i * 7) % 10);
        assert_int_equal(sl_timer_register(s, SL_TIMER_PROC, ts, &key, sizeof key, 7, NULL, 0), 0);
    }
    assert_int_equal(sl_timer_count(s, SL_TIMER_PROC), 1000);
    int64_t last_ts = INT64_MIN;
    int last_key = -1;
    for (int n = 0; n < 1000; n++) {
        sl_timer_t t;
        assert_int_equal(sl_timer_pop(s, SL_TIMER_PROC, INT64_MAX, &t), 1);
        int key;
        assert_int_equal(t.key_len, sizeof key);
        memcpy(&key, t.key, sizeof key);
        assert_true(t.ts >= last_ts);
        assert_int_equal(t.ts, (key * 7) % 10);
        if (t.ts == last_ts)
            assert_true(key > last_key);
        last_ts = t.ts;
        last_key = key;
    }
    expect_none(s, SL_TIMER_PROC, INT64_MAX);
}

static void test_duplicates(void **state) {
    sl_timer_service_t *s = *state;
    reg(s, SL_TIMER_EVENT, 10, "k", "w1");
    reg(s, SL_TIMER_EVENT, 10, "k", "w1"); /* duplicate */
    reg(s, SL_TIMER_EVENT, 10, "k", "w2"); /* other namespace */
    reg(s, SL_TIMER_EVENT, 10, "j", "w1"); /* other key */
    reg(s, SL_TIMER_EVENT, 11, "k", "w1"); /* other timestamp */
    /* other key group */
    assert_int_equal(sl_timer_register(s, SL_TIMER_EVENT, 10, "k", 1, 8, "w1", 2), 0);
    /* key/namespace boundary: ("kw", "1") is not ("k", "w1") */
    reg(s, SL_TIMER_EVENT, 10, "kw", "1");
    reg(s, SL_TIMER_EVENT, 10, "k", "w1"); /* duplicate again */
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 6);
    expect_pop(s, SL_TIMER_EVENT, 10, 10, "k", "w1");
    expect_pop(s, SL_TIMER_EVENT, 10, 10, "k", "w2");
    expect_pop(s, SL_TIMER_EVENT, 10, 10, "j", "w1");
    sl_timer_t t;
    assert_int_equal(sl_timer_pop(s, SL_TIMER_EVENT, 10, &t), 1);
    assert_int_equal(t.key_group, 8);
    expect_pop(s, SL_TIMER_EVENT, 10, 10, "kw", "1");
    expect_none(s, SL_TIMER_EVENT, 10);
    expect_pop(s, SL_TIMER_EVENT, 11, 11, "k", "w1");
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 0);
    /* Once fired, the same timer can be registered again. */
    reg(s, SL_TIMER_EVENT, 10, "k", "w1");
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 1);
    expect_pop(s, SL_TIMER_EVENT, 10, 10, "k", "w1");
}

static void test_delete(void **state) {
    sl_timer_service_t *s = *state;
    reg(s, SL_TIMER_EVENT, 10, "a", "");
    reg(s, SL_TIMER_EVENT, 20, "b", "");
    reg(s, SL_TIMER_EVENT, 30, "c", "");
    reg(s, SL_TIMER_EVENT, 40, "d", "");
    del(s, SL_TIMER_EVENT, 10, "a", ""); /* the earliest */
    del(s, SL_TIMER_EVENT, 30, "c", "");
    del(s, SL_TIMER_EVENT, 30, "c", "");  /* again: absent */
    del(s, SL_TIMER_EVENT, 20, "b", "x"); /* other namespace: absent */
    del(s, SL_TIMER_EVENT, 21, "b", "");  /* other timestamp: absent */
    del(s, SL_TIMER_PROC, 20, "b", "");   /* other domain: absent */
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 2);
    assert_int_equal(sl_timer_next(s, SL_TIMER_EVENT), 20);
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 20, "b", "");
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 40, "d", "");
    expect_none(s, SL_TIMER_EVENT, INT64_MAX);
    assert_true(sl_timer_next(s, SL_TIMER_EVENT) == INT64_MAX);

    /* Delete then register again: it is pending once, at the new registration's place. */
    reg(s, SL_TIMER_EVENT, 5, "x", "");
    reg(s, SL_TIMER_EVENT, 5, "y", "");
    del(s, SL_TIMER_EVENT, 5, "x", "");
    reg(s, SL_TIMER_EVENT, 5, "x", "");
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 2);
    assert_int_equal(sl_timer_next(s, SL_TIMER_EVENT), 5);
    expect_pop(s, SL_TIMER_EVENT, 5, 5, "y", "");
    expect_pop(s, SL_TIMER_EVENT, 5, 5, "x", "");
    expect_none(s, SL_TIMER_EVENT, INT64_MAX);
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 0);

    /* Deleting everything leaves nothing to pop. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(sl_timer_register(s, SL_TIMER_EVENT, i, &i, sizeof i, 7, NULL, 0), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(sl_timer_delete(s, SL_TIMER_EVENT, i, &i, sizeof i, 7, NULL, 0), 0);
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 0);
    assert_true(sl_timer_next(s, SL_TIMER_EVENT) == INT64_MAX);
    expect_none(s, SL_TIMER_EVENT, INT64_MAX);
}

static void test_next_skips_deleted(void **state) {
    sl_timer_service_t *s = *state;
    reg(s, SL_TIMER_EVENT, 10, "a", "");
    reg(s, SL_TIMER_EVENT, 30, "c", "");
    reg(s, SL_TIMER_EVENT, 20, "b", "");
    del(s, SL_TIMER_EVENT, 10, "a", "");
    assert_int_equal(sl_timer_next(s, SL_TIMER_EVENT), 20);
    del(s, SL_TIMER_EVENT, 20, "b", "");
    assert_int_equal(sl_timer_next(s, SL_TIMER_EVENT), 30);
    /* upto below the earliest live timer pops nothing, even though dead ones are earlier. */
    expect_none(s, SL_TIMER_EVENT, 29);
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 1);
    expect_pop(s, SL_TIMER_EVENT, 30, 30, "c", "");
}

static void test_upto(void **state) {
    sl_timer_service_t *s = *state;
    reg(s, SL_TIMER_EVENT, 10, "a", "");
    reg(s, SL_TIMER_EVENT, 20, "b", "");
    reg(s, SL_TIMER_EVENT, 30, "c", "");
    expect_none(s, SL_TIMER_EVENT, 9);
    expect_none(s, SL_TIMER_EVENT, INT64_MIN);
    expect_pop(s, SL_TIMER_EVENT, 10, 10, "a", ""); /* inclusive */
    expect_none(s, SL_TIMER_EVENT, 19);
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 2);
    assert_int_equal(sl_timer_next(s, SL_TIMER_EVENT), 20);
    expect_pop(s, SL_TIMER_EVENT, 25, 20, "b", "");
    expect_none(s, SL_TIMER_EVENT, 25);
    /* A timer registered while draining, below `upto`, fires in the same drain. */
    reg(s, SL_TIMER_EVENT, 22, "late", "");
    expect_pop(s, SL_TIMER_EVENT, 25, 22, "late", "");
    expect_pop(s, SL_TIMER_EVENT, 30, 30, "c", "");
}

static void test_domains_independent(void **state) {
    sl_timer_service_t *s = *state;
    reg(s, SL_TIMER_EVENT, 10, "k", "");
    reg(s, SL_TIMER_PROC, 10, "k", ""); /* same timer, other domain: not a duplicate */
    reg(s, SL_TIMER_PROC, 5, "p", "");
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 1);
    assert_int_equal(sl_timer_count(s, SL_TIMER_PROC), 2);
    assert_int_equal(sl_timer_next(s, SL_TIMER_EVENT), 10);
    assert_int_equal(sl_timer_next(s, SL_TIMER_PROC), 5);
    expect_pop(s, SL_TIMER_EVENT, INT64_MAX, 10, "k", "");
    expect_none(s, SL_TIMER_EVENT, INT64_MAX);
    assert_int_equal(sl_timer_count(s, SL_TIMER_PROC), 2);
    del(s, SL_TIMER_EVENT, 5, "p", ""); /* not in this domain */
    assert_int_equal(sl_timer_count(s, SL_TIMER_PROC), 2);
    expect_pop(s, SL_TIMER_PROC, INT64_MAX, 5, "p", "");
    expect_pop(s, SL_TIMER_PROC, INT64_MAX, 10, "k", "");
    expect_none(s, SL_TIMER_PROC, INT64_MAX);
}

static void test_long_keys_and_borrowed_result(void **state) {
    sl_timer_service_t *s = *state;
    /* Keys longer than the internal stack buffer. */
    char *big1 = malloc(2000), *big2 = malloc(2000);
    assert_non_null(big1);
    assert_non_null(big2);
    memset(big1, 'x', 2000);
    memset(big2, 'x', 2000);
    big2[1999] = 'y';
    assert_int_equal(sl_timer_register(s, SL_TIMER_EVENT, 1, big1, 2000, 3, "ns", 2), 0);
    assert_int_equal(sl_timer_register(s, SL_TIMER_EVENT, 1, big2, 2000, 3, "ns", 2), 0);
    assert_int_equal(sl_timer_register(s, SL_TIMER_EVENT, 1, big1, 2000, 3, "ns", 2), 0); /* dup */
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 2);
    assert_int_equal(sl_timer_delete(s, SL_TIMER_EVENT, 1, big2, 2000, 3, "ns", 2), 0);
    assert_int_equal(sl_timer_count(s, SL_TIMER_EVENT), 1);
    /* The popped key is the service's copy, not the caller's buffer. */
    memset(big1, 'z', 2000);
    sl_timer_t t;
    assert_int_equal(sl_timer_pop(s, SL_TIMER_EVENT, 1, &t), 1);
    assert_int_equal(t.key_len, 2000);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(t.key[i], 'x');
    assert_int_equal(t.key_group, 3);
    assert_memory_equal(t.ns, "ns", 2);
    free(big1);
    free(big2);
    /* The last popped timer stays valid until the next call, then is freed (LSan checks). */
    reg(s, SL_TIMER_EVENT, 1, "q", "");
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_empty),
        T(test_order),
        T(test_ties_in_registration_order),
        T(test_ties_many),
        T(test_duplicates),
        T(test_delete),
        T(test_next_skips_deleted),
        T(test_upto),
        T(test_domains_independent),
        T(test_long_keys_and_borrowed_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
