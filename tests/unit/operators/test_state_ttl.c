/* State TTL of user state in a keyed process function: values and list elements read as absent
 * once their time to live (processing time since the last write) has passed; writes refresh it;
 * state of keys never read again is cleaned up by accesses to other keys (heap backend). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/function.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/op_harness.h"
#include "state/keyed_state.h"

int ttl_fn(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);

static int count_elems(void *arg, const void *val, uint32_t len) {
    (*(int64_t *)arg)++;
    return 0;
}

/* Emits (key, whether "last" was present, list size), then writes "last" and appends. A row
 * with v < 0 only reads. */
int ttl_fn(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    const void *p;
    uint32_t len;
    int present = sl_fn_value_get(ctx, "last", &p, &len);
    if (present < 0)
        return present;
    if (present == 1 && len != 8) /* the expiry prefix must not leak into what the user reads */
        return sl_fn_fail(ctx, SL_EINVAL, "value of length %u", len);
    int64_t n = 0;
    int rc = sl_fn_list_visit(ctx, "seen", count_elems, &n);
    if (rc)
        return rc;
    sl_row_builder_t *b = sl_collector_row(out);
    uint32_t klen;
    const char *k = sl_row_str(in, 0, &klen);
    sl_row_set_str(b, 0, k, klen);
    sl_row_set_bool(b, 1, present == 1);
    sl_row_set_i64(b, 2, n);
    if ((rc = sl_collector_emit(out)) != 0)
        return rc;
    int64_t v = sl_row_i64(in, 1);
    if (v < 0)
        return 0;
    rc = sl_fn_value_put(ctx, "last", &v, 8);
    return rc ? rc : sl_fn_list_add(ctx, "seen", &v, 8);
}

static void expect(sl_harness_t *h, const char *want) {
    char *got = sl_harness_sorted(h);
    assert_string_equal(got, want);
    free(got);
    sl_harness_clear(h);
}

static void test_values_and_lists_expire(void **state) {
    sl_harness_t h;
    int rc = sl_harness_open(&h, "process", "k:string,v:int64", "0", NULL, NULL, "k:string,present:bool,n:int64",
                             "fn=ttl_fn;state.ttl_ms=1000");
    if (rc)
        fail_msg("open: %s (%s)", sl_strerror(rc), h.error);
    assert_int_equal(sl_harness_proc_time(&h, 10000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,1", 0), 0); /* writes at 10000: expires at 11000 */
    expect(&h, "a,false,0@0");
    assert_int_equal(sl_harness_proc_time(&h, 10999), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,2", 0), 0); /* still there; refreshed to 11999 */
    expect(&h, "a,true,1@0");
    assert_int_equal(sl_harness_proc_time(&h, 11500), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,-1", 0), 0); /* value alive; first element expired */
    expect(&h, "a,true,1@0");
    assert_int_equal(sl_harness_push(&h, 0, "b,-1", 0), 0); /* other key: nothing */
    expect(&h, "b,false,0@0");
    assert_int_equal(sl_harness_proc_time(&h, 11999), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,-1", 0), 0); /* everything expired */
    expect(&h, "a,false,0@0");
    sl_harness_close(&h);
}

static void test_without_ttl_nothing_expires(void **state) {
    sl_harness_t h;
    assert_int_equal(sl_harness_open(&h, "process", "k:string,v:int64", "0", NULL, NULL,
                                     "k:string,present:bool,n:int64", "fn=ttl_fn"),
                     0);
    assert_int_equal(sl_harness_push(&h, 0, "a,1", 0), 0);
    assert_int_equal(sl_harness_proc_time(&h, INT64_MAX / 2), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,-1", 0), 0);
    expect(&h, "a,false,0@0|a,true,1@0");
    sl_harness_close(&h);
}

static int count_entry(void *arg, uint32_t kg, const void *key, uint32_t klen, const void *ns, uint32_t nslen,
                       const void *uk, uint32_t uklen, const void *val, uint32_t vlen) {
    (*(uint32_t *)arg)++;
    return 0;
}

/* Entries stored for the state named `name` of the harness's backend. */
static uint32_t entries(sl_harness_t *h, const char *name) {
    for (uint32_t id = 0; id < sl_state_count(h->state); id++) {
        const char *n;
        sl_state_kind_t kind;
        sl_state_info(h->state, id, &n, &kind);
        if (strcmp(n, name) == 0) {
            uint32_t count = 0;
            assert_int_equal(h->state->vt->for_each_entry(h->state, id, count_entry, &count), 0);
            return count;
        }
    }
    fail_msg("no state '%s'", name);
    return 0;
}

#define WRITTEN 300

/* Writes WRITTEN keys once, lets them expire, then only reads other keys. */
static void write_then_read_others(sl_harness_t *h, uint32_t *after_one, uint32_t *after_all) {
    char row[32];
    assert_int_equal(sl_harness_proc_time(h, 10000), 0);
    for (int i = 0; i < WRITTEN; i++) {
        snprintf(row, sizeof row, "k%d,1", i);
        assert_int_equal(sl_harness_push(h, 0, row, 0), 0);
    }
    sl_harness_clear(h);
    assert_int_equal(entries(h, "last"), WRITTEN);
    assert_int_equal(entries(h, "seen"), WRITTEN);
    assert_int_equal(sl_harness_proc_time(h, 20000), 0);
    assert_int_equal(sl_harness_push(h, 0, "other,-1", 0), 0);
    *after_one = entries(h, "last");
    /* A round over 128 key groups of 16 slots at 64 slots or 5 entries a step is under 100
     * steps; each row reads both states once. */
    for (int i = 0; i < 300; i++) {
        snprintf(row, sizeof row, "other%d,-1", i % 7);
        assert_int_equal(sl_harness_push(h, 0, row, 0), 0);
        sl_harness_clear(h);
    }
    *after_all = entries(h, "last") + entries(h, "seen");
}

static void test_unread_keys_are_cleaned_up(void **state) {
    sl_harness_t h;
    assert_int_equal(sl_harness_open(&h, "process", "k:string,v:int64", "0", NULL, NULL,
                                     "k:string,present:bool,n:int64", "fn=ttl_fn;state.ttl_ms=1000"),
                     0);
    uint32_t after_one, after_all;
    write_then_read_others(&h, &after_one, &after_all);
    /* One access, one step: at most 5 entries go. */
    assert_true(after_one >= WRITTEN - SL_STATE_TTL_CLEANUP_ENTRIES);
    assert_int_equal(after_all, 0);
    sl_harness_close(&h);
}

static void test_without_ttl_nothing_is_cleaned_up(void **state) {
    sl_harness_t h;
    assert_int_equal(sl_harness_open(&h, "process", "k:string,v:int64", "0", NULL, NULL,
                                     "k:string,present:bool,n:int64", "fn=ttl_fn"),
                     0);
    uint32_t after_one, after_all;
    write_then_read_others(&h, &after_one, &after_all);
    assert_int_equal(after_one, WRITTEN);
    assert_int_equal(after_all, 2 * WRITTEN);
    sl_harness_close(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_lists_expire),
        cmocka_unit_test(test_without_ttl_nothing_expires),
        cmocka_unit_test(test_unread_keys_are_cleaned_up),
        cmocka_unit_test(test_without_ttl_nothing_is_cleaned_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
