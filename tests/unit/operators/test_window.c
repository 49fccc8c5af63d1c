/* Window assignment (sl_window_assign: tumbling, sliding, epoch-aligned, negative timestamps)
 * and window specs as operator parameters (to/from round trip, invalid specs -> SL_EJOB). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "operators/window.h"

static sl_window_spec_t tumbling(int64_t size) {
    sl_window_spec_t w = {.kind = SL_WINDOW_TUMBLING, .time = SL_TIME_EVENT, .size_ms = size};
    return w;
}

static sl_window_spec_t sliding(int64_t size, int64_t slide) {
    sl_window_spec_t w = {.kind = SL_WINDOW_SLIDING, .time = SL_TIME_EVENT, .size_ms = size, .slide_ms = slide};
    return w;
}

static void expect_tumbling(const sl_window_spec_t *w, int64_t ts, int64_t start) {
    sl_window_t out[2] = {{-1, -1}, {-1, -1}};
    assert_int_equal(sl_window_assign(w, ts, out), 1);
    assert_int_equal(out[0].start, start);
    assert_int_equal(out[0].end, start + w->size_ms);
    assert_true(out[0].start <= ts && ts < out[0].end);
    assert_int_equal(out[1].start, -1); /* nothing written past the count */
}

static void test_tumbling(void **state) {
    sl_window_spec_t w = tumbling(10000);
    expect_tumbling(&w, 0, 0);
    expect_tumbling(&w, 1, 0);
    expect_tumbling(&w, 9999, 0);
    expect_tumbling(&w, 10000, 10000); /* the start belongs to its own window */
    expect_tumbling(&w, 10001, 10000);
    expect_tumbling(&w, 1700000001234LL, 1700000000000LL);
    /* negative timestamps round down, not toward zero */
    expect_tumbling(&w, -1, -10000);
    expect_tumbling(&w, -9999, -10000);
    expect_tumbling(&w, -10000, -10000);
    expect_tumbling(&w, -10001, -20000);

    w = tumbling(1);
    expect_tumbling(&w, 0, 0);
    expect_tumbling(&w, -7, -7);
    expect_tumbling(&w, 42, 42);

    w = tumbling(3);
    expect_tumbling(&w, 5, 3);
    expect_tumbling(&w, -1, -3);
    expect_tumbling(&w, -3, -3);
    expect_tumbling(&w, -4, -6);
}

static void expect_sliding(const sl_window_spec_t *w, int64_t ts, uint32_t n, int64_t first_start) {
    sl_window_t out[64];
    memset(out, 0xab, sizeof out);
    assert_int_equal(sl_window_assign(w, ts, out), n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(out[i].start, first_start + (int64_t)i * w->slide_ms);
        assert_int_equal(out[i].end, out[i].start + w->size_ms);
        assert_true(out[i].start <= ts);
        assert_true(ts < out[i].end);
        assert_int_equal(out[i].start % w->slide_ms, 0); /* aligned to the epoch */
    }
    /* no further aligned window contains ts */
    int64_t before = first_start - w->slide_ms, after = first_start + (int64_t)n * w->slide_ms;
    assert_false(before <= ts && ts < before + w->size_ms);
    assert_false(after <= ts && ts < after + w->size_ms);
}

static void test_sliding(void **state) {
    sl_window_spec_t w = sliding(10000, 2000);
    expect_sliding(&w, 12345, 5, 4000);
    expect_sliding(&w, 12000, 5, 4000); /* ts on a slide boundary: [12000, 22000) is the newest */
    expect_sliding(&w, 11999, 5, 2000);
    expect_sliding(&w, 0, 5, -8000);
    expect_sliding(&w, 1, 5, -8000);
    expect_sliding(&w, -1, 5, -10000);
    expect_sliding(&w, -2000, 5, -10000);
    expect_sliding(&w, -2001, 5, -12000);
    for (int64_t ts = -25000; ts <= 25000; ts += 333)
        expect_sliding(&w, ts, 5, ((ts >= 0 ? ts / 2000 : (ts - 1999) / 2000) * 2000) - 8000);

    /* size equal to slide behaves as tumbling */
    w = sliding(5000, 5000);
    expect_sliding(&w, 4999, 1, 0);
    expect_sliding(&w, 5000, 1, 5000);
    expect_sliding(&w, -1, 1, -5000);

    /* size not a multiple of slide: 2 or 3 windows depending on ts */
    w = sliding(10, 4);
    expect_sliding(&w, 0, 3, -8);  /* [-8,2) [-4,6) [0,10) */
    expect_sliding(&w, 1, 3, -8);
    expect_sliding(&w, 2, 2, -4);  /* [-4,6) [0,10) */
    expect_sliding(&w, 3, 2, -4);
    expect_sliding(&w, 4, 3, -4);
    expect_sliding(&w, -1, 2, -8); /* [-8,2) [-4,6) */
}

static void test_sliding_pane_bound(void **state) {
    /* An accepted spec must never assign more than SL_WINDOW_MAX_PANES windows: the window
     * operators (window_aggregate.c, join.c) assign into sl_window_t panes[SL_WINDOW_MAX_PANES]. */
    sl_params_t p;
    sl_params_init(&p);
    char err[256];
    sl_window_spec_t ok = sliding(2048, 2);
    sl_window_t *out = calloc(4096, sizeof *out);
    assert_non_null(out);
    int rc_ok = sl_window_spec_to_params(&ok, &p, err, sizeof err);
    uint32_t n_ok = sl_window_assign(&ok, 0, out);

    sl_window_spec_t w = sliding(2049, 2); /* size / slide == 1024 in integer division */
    int rc = sl_window_spec_to_params(&w, &p, err, sizeof err);
    uint32_t n = rc == 0 ? sl_window_assign(&w, 0, out) : 0;
    free(out);
    sl_params_destroy(&p);
    assert_int_equal(rc_ok, 0);
    assert_int_equal(n_ok, SL_WINDOW_MAX_PANES); /* size / slide == 1024 exactly: 1024 windows */
    /* ceil(2049 / 2) = 1025 windows per row: rejected. */
    assert_int_equal(rc, SL_EJOB);
    assert_int_equal(n, 0);
}

static void round_trip(const sl_window_spec_t *w, const sl_window_spec_t *want) {
    sl_params_t p;
    sl_params_init(&p);
    char err[256] = "";
    assert_int_equal(sl_window_spec_to_params(w, &p, err, sizeof err), 0);
    sl_window_spec_t back;
    memset(&back, 0x5a, sizeof back);
    assert_int_equal(sl_window_spec_from_params(&p, &back, err, sizeof err), 0);
    assert_int_equal(back.kind, want->kind);
    assert_int_equal(back.time, want->time);
    assert_int_equal(back.size_ms, want->size_ms);
    assert_int_equal(back.slide_ms, want->slide_ms);
    assert_int_equal(back.gap_ms, want->gap_ms);
    assert_int_equal(back.allowed_lateness_ms, want->allowed_lateness_ms);
    sl_params_destroy(&p);
}

static void test_params_round_trip(void **state) {
    sl_window_spec_t s = {.kind = SL_WINDOW_SLIDING, .time = SL_TIME_PROCESSING, .size_ms = 10000,
                          .slide_ms = 2000, .allowed_lateness_ms = 500};
    round_trip(&s, &s);

    sl_window_spec_t sess = {.kind = SL_WINDOW_SESSION, .time = SL_TIME_EVENT, .gap_ms = 3000,
                             .allowed_lateness_ms = 0};
    round_trip(&sess, &sess);

    /* tumbling: slide_ms is written as the size */
    sl_window_spec_t t = {.kind = SL_WINDOW_TUMBLING, .time = SL_TIME_EVENT, .size_ms = 60000,
                          .allowed_lateness_ms = 1000};
    sl_window_spec_t t_back = t;
    t_back.slide_ms = 60000;
    round_trip(&t, &t_back);

    /* the parameter text itself */
    sl_params_t p;
    sl_params_init(&p);
    char err[256];
    assert_int_equal(sl_window_spec_to_params(&s, &p, err, sizeof err), 0);
    assert_string_equal(sl_params_get(&p, "window"), "sliding");
    assert_string_equal(sl_params_get(&p, "time"), "processing");
    assert_string_equal(sl_params_get(&p, "size_ms"), "10000");
    assert_string_equal(sl_params_get(&p, "slide_ms"), "2000");
    assert_string_equal(sl_params_get(&p, "gap_ms"), "0");
    assert_string_equal(sl_params_get(&p, "lateness_ms"), "500");
    sl_params_destroy(&p);

    sl_params_init(&p);
    assert_int_equal(sl_window_spec_to_params(&sess, &p, err, sizeof err), 0);
    assert_string_equal(sl_params_get(&p, "window"), "session");
    assert_string_equal(sl_params_get(&p, "time"), "event");
    assert_string_equal(sl_params_get(&p, "gap_ms"), "3000");
    sl_params_destroy(&p);

    /* parameters written by hand; missing numbers default to 0 */
    sl_params_init(&p);
    assert_int_equal(sl_params_set(&p, "window", "tumbling"), 0);
    assert_int_equal(sl_params_set(&p, "time", "event"), 0);
    assert_int_equal(sl_params_set(&p, "size_ms", "250"), 0);
    sl_window_spec_t w;
    assert_int_equal(sl_window_spec_from_params(&p, &w, err, sizeof err), 0);
    assert_int_equal(w.kind, SL_WINDOW_TUMBLING);
    assert_int_equal(w.time, SL_TIME_EVENT);
    assert_int_equal(w.size_ms, 250);
    assert_int_equal(w.slide_ms, 0);
    assert_int_equal(w.gap_ms, 0);
    assert_int_equal(w.allowed_lateness_ms, 0);
    sl_params_destroy(&p);
}

static void expect_invalid(const sl_window_spec_t *w, const char *needle) {
    sl_params_t p;
    sl_params_init(&p);
    char err[256] = "";
    assert_int_equal(sl_window_spec_to_params(w, &p, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, needle));
    sl_params_destroy(&p);
}

static void test_invalid_specs(void **state) {
    sl_window_spec_t w = tumbling(0);
    expect_invalid(&w, "size must be > 0");
    w = tumbling(-5);
    expect_invalid(&w, "size must be > 0");
    w = sliding(0, 0);
    expect_invalid(&w, "size must be > 0");
    w = sliding(1000, 2000);
    expect_invalid(&w, "slide must be in (0, size]");
    w = sliding(1000, 0);
    expect_invalid(&w, "slide must be in (0, size]");
    w = sliding(1000, -1);
    expect_invalid(&w, "slide must be in (0, size]");
    w = sliding(1025, 1); /* more than SL_WINDOW_MAX_PANES panes */
    expect_invalid(&w, "ceil(size/slide) <= 1024");
    sl_window_spec_t s = {.kind = SL_WINDOW_SESSION, .gap_ms = 0};
    expect_invalid(&s, "gap must be > 0");
    s.gap_ms = -1;
    expect_invalid(&s, "gap must be > 0");
    w = tumbling(1000);
    w.allowed_lateness_ms = -1;
    expect_invalid(&w, "lateness must be >= 0");
    w = tumbling(1000);
    w.kind = (sl_window_kind_t)7;
    expect_invalid(&w, "unknown window kind");
    w = tumbling(1000);
    w.time = (sl_time_kind_t)5;
    expect_invalid(&w, "unknown window kind or time");

    /* and the same checks when reading parameters */
    static const char *const bad[][2] = {
        {"size_ms", "0"}, {"size_ms", "-10"}, {"lateness_ms", "-1"}, {"size_ms", "ten"}, {"window", "hopping"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_params_t p;
        sl_params_init(&p);
        assert_int_equal(sl_params_set(&p, "window", "tumbling"), 0);
        assert_int_equal(sl_params_set(&p, "time", "event"), 0);
        assert_int_equal(sl_params_set(&p, "size_ms", "1000"), 0);
        assert_int_equal(sl_params_set(&p, bad[i][0], bad[i][1]), 0);
        char err[256];
        sl_window_spec_t out;
        assert_int_equal(sl_window_spec_from_params(&p, &out, err, sizeof err), SL_EJOB);
        sl_params_destroy(&p);
    }
    sl_params_t p;
    sl_params_init(&p);
    char err[256] = "";
    sl_window_spec_t out;
    assert_int_equal(sl_window_spec_from_params(&p, &out, err, sizeof err), SL_EJOB);
    assert_string_equal(err, "missing parameter 'window' or 'time'");
    assert_int_equal(sl_params_set(&p, "window", "session"), 0);
    assert_int_equal(sl_params_set(&p, "time", "event"), 0);
    assert_int_equal(sl_window_spec_from_params(&p, &out, err, sizeof err), SL_EJOB); /* gap 0 */
    assert_int_equal(sl_params_set(&p, "window", "sliding"), 0);
    assert_int_equal(sl_params_set(&p, "size_ms", "100"), 0);
    assert_int_equal(sl_params_set(&p, "slide_ms", "200"), 0);
    assert_int_equal(sl_window_spec_from_params(&p, &out, err, sizeof err), SL_EJOB);
    sl_params_destroy(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tumbling),          cmocka_unit_test(test_sliding),
        cmocka_unit_test(test_params_round_trip), cmocka_unit_test(test_invalid_specs),
        cmocka_unit_test(test_sliding_pane_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
