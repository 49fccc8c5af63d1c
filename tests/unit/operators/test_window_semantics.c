/* Window, rolling-aggregate and join operators driven row by row through the operator harness:
 * exact outputs at exact watermarks, late rows, allowed lateness, sessions, processing time. */
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

#define IN "k:string,v:int64"
#define WIN_OUT "k:string,window_start:timestamp,window_end:timestamp,count:int64,sum_v:int64?"

static void expect(sl_harness_t *h, const char *want) {
    char *got = sl_harness_sorted(h);
    assert_string_equal(got, want);
    free(got);
}

static void open_window(sl_harness_t *h, const char *window) {
    char params[256];
    snprintf(params, sizeof params, "aggs=count(), sum(v);%s", window);
    int rc = sl_harness_open(h, "window_aggregate", IN, "0", NULL, NULL, WIN_OUT, params);
    if (rc)
        fail_msg("open: %s (%s)", sl_strerror(rc), h->error);
}

static void test_tumbling_fires_at_window_end(void **state) {
    sl_harness_t h;
    open_window(&h, "window=tumbling;time=event;size_ms=10000;slide_ms=10000;gap_ms=0;lateness_ms=0");
    assert_int_equal(sl_harness_push(&h, 0, "a,1", 1000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,2", 9999), 0);
    assert_int_equal(sl_harness_push(&h, 0, "b,5", 5000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,4", 10000), 0);
    assert_int_equal(sl_harness_watermark(&h, 9998), 0);
    assert_int_equal(h.nrows, 0);
    assert_int_equal(sl_harness_watermark(&h, 9999), 0);
    expect(&h, "a,0,10000,2,3@9999|b,0,10000,1,5@9999");
    sl_harness_clear(&h);
    /* Behind the watermark and no allowed lateness: dropped. */
    assert_int_equal(sl_harness_push(&h, 0, "a,100", 3000), 0);
    assert_int_equal(sl_harness_finish(&h), 0);
    expect(&h, "a,10000,20000,1,4@19999");
    sl_harness_close(&h);
}

static void test_allowed_lateness_refires(void **state) {
    sl_harness_t h;
    open_window(&h, "window=tumbling;time=event;size_ms=10000;slide_ms=10000;gap_ms=0;lateness_ms=5000");
    assert_int_equal(sl_harness_push(&h, 0, "a,1", 1000), 0);
    assert_int_equal(sl_harness_watermark(&h, 10000), 0);
    expect(&h, "a,0,10000,1,1@9999");
    sl_harness_clear(&h);
    /* Late but within the lateness: the window is updated and emitted again at once. */
    assert_int_equal(sl_harness_push(&h, 0, "a,10", 2000), 0);
    expect(&h, "a,0,10000,2,11@9999");
    sl_harness_clear(&h);
    /* Past end - 1 + lateness the state is gone and late rows are dropped. */
    assert_int_equal(sl_harness_watermark(&h, 14999), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,100", 3000), 0);
    assert_int_equal(sl_harness_finish(&h), 0);
    assert_int_equal(h.nrows, 0);
    sl_harness_close(&h);
}

static void test_sliding_sliced(void **state) {
    sl_harness_t h;
    open_window(&h, "window=sliding;time=event;size_ms=10000;slide_ms=5000;gap_ms=0;lateness_ms=0");
    assert_int_equal(sl_harness_push(&h, 0, "a,1", 1000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,2", 7000), 0);
    assert_int_equal(sl_harness_watermark(&h, 4999), 0);
    expect(&h, "a,-5000,5000,1,1@4999");
    sl_harness_clear(&h);
    assert_int_equal(sl_harness_finish(&h), 0);
    expect(&h, "a,0,10000,2,3@9999|a,5000,15000,1,2@14999");
    sl_harness_close(&h);
}

static void test_sliding_sliced_with_lateness(void **state) {
    sl_harness_t h;
    open_window(&h, "window=sliding;time=event;size_ms=10000;slide_ms=5000;gap_ms=0;lateness_ms=6000");
    assert_int_equal(sl_harness_push(&h, 0, "a,1", 1000), 0);
    assert_int_equal(sl_harness_watermark(&h, 9999), 0);
    expect(&h, "a,-5000,5000,1,1@4999|a,0,10000,1,1@9999");
    sl_harness_clear(&h);
    /* A late row in slice [0, 5000) re-emits the two fired windows holding it; the window
     * [5000, 15000) has not fired and is unaffected. */
    assert_int_equal(sl_harness_push(&h, 0, "a,2", 4000), 0);
    expect(&h, "a,-5000,5000,2,3@4999|a,0,10000,2,3@9999");
    sl_harness_clear(&h);
    assert_int_equal(sl_harness_finish(&h), 0);
    assert_int_equal(h.nrows, 0);
    sl_harness_close(&h);
}

static void test_sliding_unaligned_panes(void **state) {
    sl_harness_t h;
    open_window(&h, "window=sliding;time=event;size_ms=10000;slide_ms=3000;gap_ms=0;lateness_ms=0");
    assert_int_equal(sl_harness_push(&h, 0, "a,1", 1000), 0);
    assert_int_equal(sl_harness_finish(&h), 0);
    expect(&h, "a,-3000,7000,1,1@6999|a,-6000,4000,1,1@3999|a,0,10000,1,1@9999");
    sl_harness_close(&h);
}

static void test_sessions_merge(void **state) {
    sl_harness_t h;
    open_window(&h, "window=session;time=event;size_ms=0;slide_ms=0;gap_ms=3000;lateness_ms=0");
    assert_int_equal(sl_harness_push(&h, 0, "a,1", 1000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,2", 2000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,3", 6000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "b,7", 6000), 0);
    /* Bridges [1000, 5000) and [6000, 9000) into one session. */
    assert_int_equal(sl_harness_push(&h, 0, "a,4", 4000), 0);
    assert_int_equal(sl_harness_watermark(&h, 8998), 0);
    assert_int_equal(h.nrows, 0);
    assert_int_equal(sl_harness_finish(&h), 0);
    expect(&h, "a,1000,9000,4,10@8999|b,6000,9000,1,7@8999");
    sl_harness_close(&h);
}

static void test_processing_time(void **state) {
    sl_harness_t h;
    open_window(&h, "window=tumbling;time=processing;size_ms=10000;slide_ms=10000;gap_ms=0;lateness_ms=0");
    assert_int_equal(sl_harness_proc_time(&h, 1000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,1", SL_TS_NONE), 0);
    assert_int_equal(sl_harness_proc_time(&h, 9000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,2", SL_TS_NONE), 0);
    assert_int_equal(h.nrows, 0);
    assert_int_equal(sl_harness_proc_time(&h, 9999), 0);
    expect(&h, "a,0,10000,2,3@9999");
    sl_harness_close(&h);
}

static void test_event_time_needs_timestamps(void **state) {
    sl_harness_t h;
    open_window(&h, "window=tumbling;time=event;size_ms=10000;slide_ms=10000;gap_ms=0;lateness_ms=0");
    assert_int_equal(sl_harness_push(&h, 0, "a,1", SL_TS_NONE), SL_EINVAL);
    assert_non_null(strstr(h.error, "sl_stream_watermarks"));
    sl_harness_close(&h);
}

static void test_rolling_aggregate(void **state) {
    sl_harness_t h;
    assert_int_equal(sl_harness_open(&h, "aggregate", IN, "0", NULL, NULL,
                                     "k:string,count:int64,max_v:int64?,avg_v:double?", "aggs=count(),max(v),avg(v)"),
                     0);
    assert_int_equal(sl_harness_push(&h, 0, "a,4", 1), 0);
    assert_int_equal(sl_harness_push(&h, 0, "b,1", 2), 0);
    assert_int_equal(sl_harness_push(&h, 0, "a,2", 3), 0);
    expect(&h, "a,1,4,4.000@1|a,2,4,3.000@3|b,1,1,1.000@2");
    sl_harness_close(&h);
}

static void test_interval_join(void **state) {
    sl_harness_t h;
    assert_int_equal(sl_harness_open(&h, "interval_join", "id:int64,l:string", "0", "id:int64,r:string", "0",
                                     "id:int64,l:string,right_id:int64,r:string", "lower_ms=0;upper_ms=1000"),
                     0);
    assert_int_equal(sl_harness_push(&h, 0, "1,L1", 1000), 0);
    assert_int_equal(sl_harness_push(&h, 1, "1,R1", 1500), 0); /* in [1000, 2000] */
    assert_int_equal(sl_harness_push(&h, 1, "1,R2", 2500), 0); /* too late for L1 */
    assert_int_equal(sl_harness_push(&h, 1, "2,R3", 1500), 0); /* other key */
    assert_int_equal(sl_harness_push(&h, 0, "1,L2", 2000), 0); /* matches R1? no: 1500 < 2000; R2 yes */
    expect(&h, "1,L1,1,R1@1500|1,L2,1,R2@2500");
    sl_harness_clear(&h);
    /* Behind the watermark: dropped, as in Flink. */
    assert_int_equal(sl_harness_watermark(&h, 3000), 0);
    assert_int_equal(sl_harness_push(&h, 1, "1,R4", 2100), 0);
    assert_int_equal(sl_harness_finish(&h), 0);
    assert_int_equal(h.nrows, 0);
    sl_harness_close(&h);
}

static void test_window_join(void **state) {
    sl_harness_t h;
    assert_int_equal(sl_harness_open(&h, "window_join", "id:int64,l:string", "0", "id:int64,r:string", "0",
                                     "id:int64,l:string,right_id:int64,r:string",
                                     "window=tumbling;time=event;size_ms=10000;slide_ms=10000;gap_ms=0;lateness_ms=0"),
                     0);
    assert_int_equal(sl_harness_push(&h, 0, "1,A", 1000), 0);
    assert_int_equal(sl_harness_push(&h, 0, "1,B", 2000), 0);
    assert_int_equal(sl_harness_push(&h, 1, "1,X", 9000), 0);
    assert_int_equal(sl_harness_push(&h, 1, "1,Y", 11000), 0); /* next window */
    assert_int_equal(sl_harness_push(&h, 1, "2,Z", 3000), 0);  /* no left side */
    assert_int_equal(sl_harness_watermark(&h, 9999), 0);
    expect(&h, "1,A,1,X@9999|1,B,1,X@9999");
    sl_harness_clear(&h);
    assert_int_equal(sl_harness_finish(&h), 0);
    assert_int_equal(h.nrows, 0);
    sl_harness_close(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tumbling_fires_at_window_end),
        cmocka_unit_test(test_allowed_lateness_refires),
        cmocka_unit_test(test_sliding_sliced),
        cmocka_unit_test(test_sliding_sliced_with_lateness),
        cmocka_unit_test(test_sliding_unaligned_panes),
        cmocka_unit_test(test_sessions_merge),
        cmocka_unit_test(test_processing_time),
        cmocka_unit_test(test_event_time_needs_timestamps),
        cmocka_unit_test(test_rolling_aggregate),
        cmocka_unit_test(test_interval_join),
        cmocka_unit_test(test_window_join),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
