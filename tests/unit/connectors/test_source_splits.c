/* Sources with several splits (rescaling, restore.h): a subtask reads every split it
 * inherited, merged in increasing sequence / event number, so its event time is as ordered as
 * one split's; its snapshot lists the splits; no split means no records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/op_harness.h"

int ss_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int ss_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    sl_row_set_i64(out, 0, (int64_t)seq);
    *ts = (int64_t)seq * 10;
    return 1;
}

/* Polls the source to its end. */
static void drain(sl_harness_t *h) {
    bool end = false;
    for (int i = 0; i < 100000 && !end; i++)
        assert_int_equal(h->op->vt->source_poll(h->op, 64, &end), 0);
    assert_true(end);
    assert_int_equal(sl_output_flush(h->op->out), 0);
}

static void set(sl_op_extras_t *x, const char *key, const char *value) {
    memset(x, 0, sizeof *x);
    assert_int_equal(sl_op_extras_set(x, key, value), 0);
}

static int64_t ts_of(const char *row) { return strtoll(strrchr(row, '@') + 1, NULL, 10); }

static void test_generator_merges_splits(void **state) {
    sl_harness_t h;
    assert_int_equal(sl_harness_open(&h, "source_generator", "x:int64", NULL, NULL, NULL, "seq:int64",
                                     "fn=ss_gen;count=40"), 0);
    /* Old subtasks 0 and 1 of 2, at 10 and 15. */
    sl_op_extras_t sets[2];
    set(&sets[0], "s0", "2,0,10");
    set(&sets[1], "s0", "2,1,15");
    assert_int_equal(h.op->vt->restore(h.op, 7, sets, 2), 0);
    drain(&h);
    const char *expect[] = {"10", "12", "14", "15", "16", "17", "18"};
    for (uint32_t i = 0; i < 7; i++) {
        char want[32];
        snprintf(want, sizeof want, "%s@%lld", expect[i], atoll(expect[i]) * 10);
        assert_string_equal(h.rows[i], want);
    }
    assert_int_equal(h.nrows, 3 + 25); /* 10, 12, 14, then 15..39 */
    sl_harness_close(&h);
}

static void test_generator_snapshot_and_no_split(void **state) {
    sl_harness_t h;
    assert_int_equal(sl_harness_open(&h, "source_generator", "x:int64", NULL, NULL, NULL, "seq:int64",
                                     "fn=ss_gen;count=1000"), 0);
    sl_op_extras_t sets[2], x;
    set(&sets[0], "s0", "3,0,0");
    set(&sets[1], "s0", "3,2,5");
    assert_int_equal(h.op->vt->restore(h.op, 1, sets, 2), 0);
    bool end = false;
    assert_int_equal(h.op->vt->source_poll(h.op, 4, &end), 0); /* 0 3 5 6 */
    memset(&x, 0, sizeof x);
    assert_int_equal(h.op->vt->snapshot(h.op, 2, &x), 0);
    assert_string_equal(sl_op_extras_get(&x, "s0"), "3,0,9");
    assert_string_equal(sl_op_extras_get(&x, "s1"), "3,2,8");
    /* A bad split is refused. */
    set(&sets[0], "s0", "3,1,5");
    assert_int_equal(h.op->vt->restore(h.op, 1, sets, 1), SL_EPARSE);
    /* No split: nothing to read. */
    assert_int_equal(sl_output_flush(h.op->out), 0);
    sl_harness_clear(&h);
    h.error[0] = '\0';
    assert_int_equal(h.op->vt->restore(h.op, 1, NULL, 0), 0);
    drain(&h);
    assert_int_equal(h.nrows, 0);
    sl_harness_close(&h);
}

#define EVENTS "events=3000;table=bid"

/* All events of the table, fresh, one split. */
static void nexmark_all(sl_harness_t *h) {
    int rc = sl_harness_open(h, "source_nexmark", "x:int64", NULL, NULL, NULL,
                                     "auction:int64,bidder:int64,price:int64,channel:string,url:string,"
                                     "dateTime:timestamp,extra:string", EVENTS);
    if (rc)
        fail_msg("open: %s", h->error);
}

static void nexmark_restored(sl_harness_t *h, const char *const *splits, uint32_t n) {
    nexmark_all(h);
    sl_op_extras_t sets[8];
    for (uint32_t k = 0; k < n; k++)
        set(&sets[k], "s0", splits[k]);
    assert_int_equal(h->op->vt->restore(h->op, 3, sets, n), 0);
    drain(h);
}

static void test_nexmark_merged_order(void **state) {
    sl_harness_t all, two, a, b;
    nexmark_all(&all);
    drain(&all);
    assert_true(all.nrows > 2000);
    /* Both splits of 2 from the start, in one subtask: exactly the single split's order. */
    const char *both[] = {"2,0,0", "2,1,50"};
    nexmark_restored(&two, both, 2);
    assert_int_equal(two.nrows, all.nrows);
    for (uint32_t i = 0; i < all.nrows; i++)
        assert_string_equal(two.rows[i], all.rows[i]);
    /* 3 -> 2 mid-way: subtask 0 takes splits 0 and 2, subtask 1 split 1; each in event-time
     * order, and together every event after the positions. */
    const char *s0[] = {"3,0,300", "3,2,100"}, *s1[] = {"3,1,50"};
    nexmark_restored(&a, s0, 2);
    nexmark_restored(&b, s1, 1);
    for (uint32_t i = 1; i < a.nrows; i++)
        assert_true(ts_of(a.rows[i - 1]) <= ts_of(a.rows[i]));
    uint32_t expect = 0;
    for (uint32_t n = 0; n < 3000; n++) {
        uint32_t split = (n / 50) % 3, pos = split == 0 ? 300 : split == 1 ? 50 : 100;
        expect += n % 50 >= 4 && n >= pos; /* of every 50 events, 46 bids (offsets 4..49) */
    }
    assert_int_equal(a.nrows + b.nrows, expect);
    sl_harness_close(&all);
    sl_harness_close(&two);
    sl_harness_close(&a);
    sl_harness_close(&b);
}

static void test_nexmark_snapshot_replays(void **state) {
    sl_harness_t all, h, r;
    nexmark_all(&all);
    drain(&all);
    const char *both[] = {"2,0,0", "2,1,50"};
    nexmark_restored(&h, both, 0); /* no split: ends at once */
    assert_int_equal(h.nrows, 0);
    sl_harness_close(&h);
    nexmark_all(&h);
    sl_op_extras_t sets[2];
    set(&sets[0], "s0", both[0]);
    set(&sets[1], "s0", both[1]);
    assert_int_equal(h.op->vt->restore(h.op, 1, sets, 2), 0);
    bool end = false;
    assert_int_equal(h.op->vt->source_poll(h.op, 77, &end), 0);
    assert_int_equal(sl_output_flush(h.op->out), 0);
    sl_op_extras_t x;
    memset(&x, 0, sizeof x);
    assert_int_equal(h.op->vt->snapshot(h.op, 2, &x), 0);
    assert_int_equal(x.n, 2);
    nexmark_all(&r);
    assert_int_equal(r.op->vt->restore(r.op, 2, &x, 1), 0);
    drain(&r);
    assert_int_equal(h.nrows + r.nrows, all.nrows);
    for (uint32_t i = 0; i < all.nrows; i++)
        assert_string_equal(i < h.nrows ? h.rows[i] : r.rows[i - h.nrows], all.rows[i]);
    /* A position saved before splits existed, at its own parallelism. */
    sl_harness_close(&r);
    nexmark_all(&r);
    set(&sets[0], "position", "1000");
    assert_int_equal(r.op->vt->restore(r.op, 2, sets, 1), 0);
    drain(&r);
    assert_int_equal(r.nrows, 2000 / 50 * 46);
    sl_harness_close(&r);
    sl_harness_close(&h);
    sl_harness_close(&all);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generator_merges_splits),
        cmocka_unit_test(test_generator_snapshot_and_no_split),
        cmocka_unit_test(test_nexmark_merged_order),
        cmocka_unit_test(test_nexmark_snapshot_replays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
