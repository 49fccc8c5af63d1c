/* The async I/O operator through the operator harness, against a test client that answers
 * from its own thread: order in ordered mode, watermark boundaries in unordered mode, capacity,
 * timeouts and the timeout handler, retries (fixed, exponential, predicate), requests in flight
 * saved and re-issued by a snapshot, and option checks of the builder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/async.h>
#include <sluice/error.h>
#include <sluice/job.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mailbox.h"
#include "helpers/op_harness.h"

#define IN_SCHEMA "id:int64,delay:int64,mode:int64"
#define OUT_SCHEMA "id:int64,attempt:int32"
/* mode: 0 = answer after `delay` ms; n > 0 = fail the first n attempts; -1 = never answer;
 * -2 = hold until release_held(); -3 = answer with no row on the first attempt. */

/* ---- The test client: one thread completing requests when they are due ---- */
typedef struct {
    int64_t due; /* INT64_MAX = held */
    sl_async_result_t *r;
    int64_t id, mode;
} pending_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pending_t pending[8192];
static uint32_t npending;
static bool stopping;
static pthread_t client;
static atomic_int in_flight, max_in_flight;

static void answer(const pending_t *p) {
    uint32_t attempt = sl_async_result_attempt(p->r);
    atomic_fetch_sub(&in_flight, 1);
    if (p->mode > 0 && attempt <= (uint32_t)p->mode) {
        sl_async_complete_error(p->r, SL_EIO, "injected error %u", attempt);
        return;
    }
    if (p->mode == -3 && attempt == 1) {
        sl_async_complete(p->r);
        return;
    }
    sl_row_builder_t *b = sl_async_result_row(p->r);
    sl_row_set_i64(b, 0, p->id);
    sl_row_set_i32(b, 1, (int32_t)attempt);
    assert_int_equal(sl_async_result_add(p->r), 0);
    sl_async_complete(p->r);
}

static void *client_main(void *arg) {
    pthread_mutex_lock(&mu);
    while (!stopping) {
        int64_t now = sl_monotonic_ms(), next = INT64_MAX;
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 0; i < npending; i++)
            if (pending[i].due < next) {
                next = pending[i].due;
                best = i;
            }
        if (best != UINT32_MAX && next <= now) {
            pending_t p = pending[best];
            pending[best] = pending[--npending];
            pthread_mutex_unlock(&mu);
            answer(&p);
            pthread_mutex_lock(&mu);
            continue;
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&cv, &mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + (next - now) * 1000000;
            ts.tv_sec += ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&cv, &mu, &ts);
        }
    }
    pthread_mutex_unlock(&mu);
    return arg;
}

int t_async_open(sl_fn_ctx_t *ctx, void **user);
void t_async_close(sl_fn_ctx_t *ctx, void *user);
int t_async_call(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *r);
int t_async_timeout(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *r);
int t_async_retry_empty(sl_fn_ctx_t *ctx, const sl_async_result_t *r);

int t_async_open(sl_fn_ctx_t *ctx, void **user) {
    stopping = false;
    npending = 0;
    atomic_store(&in_flight, 0);
    atomic_store(&max_in_flight, 0);
    *user = &pending;
    return pthread_create(&client, NULL, client_main, NULL) == 0 ? 0 : SL_ENOMEM;
}

/* Stops the client: what it still holds is abandoned (never touched again). */
void t_async_close(sl_fn_ctx_t *ctx, void *user) {
    assert_ptr_equal(user, &pending);
    pthread_mutex_lock(&mu);
    stopping = true;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(client, NULL);
    npending = 0;
}

int t_async_call(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *r) {
    int64_t mode = sl_row_i64(in, 2);
    int n = atomic_fetch_add(&in_flight, 1) + 1;
    for (int m = atomic_load(&max_in_flight); n > m && !atomic_compare_exchange_weak(&max_in_flight, &m, n);)
        ;
    if (mode == -1)
        return 0; /* never answered */
    pthread_mutex_lock(&mu);
    pending[npending++] = (pending_t){mode == -2 ? INT64_MAX : sl_monotonic_ms() + sl_row_i64(in, 1), r,
                                      sl_row_i64(in, 0), mode};
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return 0;
}

int t_async_timeout(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *r) {
    sl_row_builder_t *b = sl_async_result_row(r);
    sl_row_set_i64(b, 0, sl_row_i64(in, 0));
    sl_row_set_i32(b, 1, -1);
    int rc = sl_async_result_add(r);
    sl_async_complete(r);
    return rc;
}

/* Retries a result without rows. */
int t_async_retry_empty(sl_fn_ctx_t *ctx, const sl_async_result_t *r) { return sl_async_result_nrows(r) == 0; }

static void release_held(void) {
    pthread_mutex_lock(&mu);
    for (uint32_t i = 0; i < npending; i++)
        if (pending[i].due == INT64_MAX)
            pending[i].due = 0;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* ---- Helpers ---- */
static void open_async(sl_harness_t *h, const char *extra) {
    char params[1024];
    snprintf(params, sizeof params, "fn=t_async_call;open=t_async_open;close=t_async_close;%s", extra);
    int rc = sl_harness_open(h, "async", IN_SCHEMA, NULL, NULL, NULL, OUT_SCHEMA, params);
    if (rc)
        fail_msg("open: %s (%s)", h->error, sl_strerror(rc));
}

static void push(sl_harness_t *h, int64_t id, int64_t delay, int64_t mode, int64_t ts) {
    char row[128];
    snprintf(row, sizeof row, "%lld,%lld,%lld", (long long)id, (long long)delay, (long long)mode);
    int rc = sl_harness_push(h, 0, row, ts);
    if (rc)
        fail_msg("push %s: %s (%s)", row, h->error, sl_strerror(rc));
}

static void await_rows(sl_harness_t *h, uint32_t n) {
    int rc = sl_harness_await(h, n, 20000);
    if (rc)
        fail_msg("await %u rows (have %u): %s (%s)", n, h->nrows, h->error, sl_strerror(rc));
}

/* ---- Tests ---- */
static void ordered_keeps_input_order(void **state) {
    sl_harness_t h;
    open_async(&h, "mode=ordered;capacity=16");
    srand(7);
    for (int i = 0; i < 400; i++)
        push(&h, i, rand() % 4, 0, i);
    assert_int_equal(sl_harness_finish(&h), 0); /* finish waits for everything in flight */
    assert_int_equal(h.nrows, 400);
    for (uint32_t i = 0; i < h.nrows; i++) {
        char want[64];
        snprintf(want, sizeof want, "%u,1@%u", i, i);
        assert_string_equal(h.rows[i], want);
    }
    assert_in_range(atomic_load(&max_in_flight), 1, 16);
    sl_harness_close(&h);
}

/* Records 1..9 answer at once, record 0 is held: unordered emits 1..9 first, but none of the
 * next segment's records before the watermark between them. */
static void run_segments(const char *mode, char *out, size_t len) {
    sl_harness_t h;
    open_async(&h, mode);
    h.capture_watermarks = true;
    for (int i = 0; i < 10; i++)
        push(&h, i, 0, i == 0 ? -2 : 0, i);
    assert_int_equal(sl_harness_watermark(&h, 100), 0);
    for (int i = 10; i < 13; i++)
        push(&h, i, 0, 0, i);
    /* Give the answers time to arrive before the held one is released. */
    assert_int_equal(sl_harness_await(&h, 100, 200), SL_ETIMEDOUT);
    release_held();
    await_rows(&h, 14);
    out[0] = '\0';
    for (uint32_t i = 0; i < h.nrows; i++) {
        strncat(out, h.rows[i], len - strlen(out) - 1);
        strncat(out, " ", len - strlen(out) - 1);
    }
    sl_harness_close(&h);
}

static void unordered_respects_watermarks(void **state) {
    char got[2048];
    run_segments("mode=unordered;capacity=64", got, sizeof got);
    /* Held record 0 is last of its segment; 1..9 in any order before it; 10..12 after the
     * watermark. */
    char *wm = strstr(got, "WM@100 ");
    assert_non_null(wm);
    char *zero = strstr(got, "0,1@0 ");
    assert_non_null(zero);
    assert_true(zero < wm);
    for (int i = 1; i < 10; i++) {
        char want[32];
        snprintf(want, sizeof want, "%d,1@%d ", i, i);
        char *at = strstr(got, want);
        assert_non_null(at);
        assert_true(at < zero);
    }
    for (int i = 10; i < 13; i++) {
        char want[32];
        snprintf(want, sizeof want, "%d,1@%d ", i, i);
        char *at = strstr(got, want);
        assert_non_null(at);
        assert_true(at > wm);
    }
}

static void ordered_waits_for_the_head(void **state) {
    char got[2048];
    run_segments("mode=ordered;capacity=64", got, sizeof got);
    assert_string_equal(got, "0,1@0 1,1@1 2,1@2 3,1@3 4,1@4 5,1@5 6,1@6 7,1@7 8,1@8 9,1@9 WM@100 10,1@10 "
                             "11,1@11 12,1@12 ");
}

static void capacity_bounds_requests_in_flight(void **state) {
    sl_harness_t h;
    open_async(&h, "mode=unordered;capacity=4");
    for (int i = 0; i < 200; i++)
        push(&h, i, 1, 0, i);
    assert_int_equal(sl_harness_finish(&h), 0);
    assert_int_equal(h.nrows, 200);
    assert_in_range(atomic_load(&max_in_flight), 1, 4);
    char *s = sl_harness_sorted(&h);
    assert_non_null(strstr(s, "199,1@199"));
    free(s);
    sl_harness_close(&h);
}

static void timeout_fails_by_default(void **state) {
    sl_harness_t h;
    open_async(&h, "timeout_ms=50");
    push(&h, 1, 0, -1, 1);
    int rc = sl_harness_await(&h, 1, 20000);
    assert_int_equal(rc, SL_ETIMEDOUT);
    assert_non_null(strstr(h.error, "request timed out after 50 ms (attempt 1)"));
    sl_harness_close(&h);
}

static void timeout_handler_gives_fallback_and_late_answers_are_dropped(void **state) {
    sl_harness_t h;
    open_async(&h, "timeout_ms=30;on_timeout=t_async_timeout");
    push(&h, 1, 0, -1, 1);   /* never answered */
    push(&h, 2, 300, 0, 2);  /* answered late, after its timeout */
    push(&h, 3, 0, 0, 3);
    await_rows(&h, 3);
    assert_string_equal(h.rows[0], "1,-1@1");
    assert_string_equal(h.rows[1], "2,-1@2");
    assert_string_equal(h.rows[2], "3,1@3");
    /* The late answer of record 2 arrives and must not produce a row. */
    assert_int_equal(sl_harness_await(&h, 4, 600), SL_ETIMEDOUT);
    assert_int_equal(h.nrows, 3);
    sl_harness_close(&h);
}

static void retries_on_error_then_succeeds(void **state) {
    sl_harness_t h;
    open_async(&h, "retry=fixed;retry.max_attempts=3;retry.delay_ms=1;retry.on_error=1");
    push(&h, 5, 0, 2, 5); /* fails twice */
    push(&h, 6, 0, 0, 6);
    assert_int_equal(sl_harness_finish(&h), 0);
    assert_int_equal(h.nrows, 2);
    assert_string_equal(h.rows[0], "5,3@5");
    assert_string_equal(h.rows[1], "6,1@6");
    sl_harness_close(&h);
}

static void retry_budget_exhausted_fails_with_the_cause(void **state) {
    sl_harness_t h;
    open_async(&h, "retry=exponential;retry.max_attempts=3;retry.delay_ms=1;retry.max_delay_ms=4;"
                   "retry.multiplier=2;retry.on_error=1");
    push(&h, 5, 0, 9, 5);
    int rc = sl_harness_finish(&h);
    assert_int_equal(rc, SL_EUSER);
    assert_non_null(strstr(h.error, "request failed after 3 attempts: injected error 3"));
    sl_harness_close(&h);
}

static void errors_without_retry_fail_the_task(void **state) {
    sl_harness_t h;
    open_async(&h, "");
    push(&h, 5, 0, 1, 5);
    assert_int_equal(sl_harness_finish(&h), SL_EUSER);
    assert_non_null(strstr(h.error, "request failed after 1 attempt: injected error 1"));
    sl_harness_close(&h);
}

static void retry_predicate_retries_a_result(void **state) {
    sl_harness_t h;
    open_async(&h, "retry=fixed;retry.max_attempts=2;retry.delay_ms=0;retry_if=t_async_retry_empty");
    push(&h, 8, 0, -3, 8); /* no row on attempt 1 */
    assert_int_equal(sl_harness_finish(&h), 0);
    assert_int_equal(h.nrows, 1);
    assert_string_equal(h.rows[0], "8,2@8");
    sl_harness_close(&h);
}

static void snapshot_saves_requests_in_flight(void **state) {
    sl_harness_t h;
    open_async(&h, "mode=ordered;capacity=10");
    h.capture_watermarks = true;
    push(&h, 0, 0, 0, 0);
    await_rows(&h, 1);
    push(&h, 1, 0, -2, 1);
    push(&h, 2, 0, 0, 2);
    assert_int_equal(sl_harness_watermark(&h, 50), 0);
    push(&h, 3, 0, -2, 3);
    sl_bytes_t b;
    sl_bytes_init(&b);
    assert_int_equal(h.op->vt->snapshot_state(h.op, 1, &b), 0);
    assert_int_equal(h.nrows, 1); /* only record 0 left before the snapshot */
    sl_harness_close(&h);

    /* A new instance takes the saved requests over and issues them again. */
    open_async(&h, "mode=ordered;capacity=10");
    h.capture_watermarks = true;
    assert_int_equal(h.op->vt->restore_state(h.op, b.data, b.len), 0);
    release_held();
    await_rows(&h, 4);
    assert_string_equal(h.rows[0], "1,1@1");
    assert_string_equal(h.rows[1], "2,1@2");
    assert_string_equal(h.rows[2], "WM@50");
    assert_string_equal(h.rows[3], "3,1@3");
    sl_harness_close(&h);

    /* A damaged blob is refused with a message. */
    open_async(&h, "");
    b.data[b.len / 2] ^= 0xff;
    b.len -= 3;
    assert_int_equal(h.op->vt->restore_state(h.op, b.data, b.len), SL_EPARSE);
    assert_non_null(strstr(h.error, "malformed"));
    sl_harness_close(&h);
    sl_bytes_destroy(&b);
}

static void builder_rejects_bad_options(void **state) {
    struct {
        void (*set)(sl_async_options_t *o);
        const char *msg;
    } cases[] = {
        {NULL, "capacity must be at least 1"},
        {NULL, "timeout_ms must be positive"},
        {NULL, "a retry strategy needs retry_on_error or retry_if_symbol"},
    };
    for (int c = 0; c < 3; c++) {
        sl_job_t *job;
        assert_int_equal(sl_job_create("bad", &job), 0);
        sl_stream_t *s = sl_source_generator(job, "gen", "t_async_call", IN_SCHEMA, 10);
        sl_async_options_t o = sl_async_options_default();
        if (c == 0)
            o.capacity = 0;
        if (c == 1)
            o.timeout_ms = -5;
        if (c == 2)
            o.retry = SL_ASYNC_RETRY_FIXED, o.max_attempts = 3;
        assert_null(sl_stream_async(s, "enrich", "t_async_call", OUT_SCHEMA, &o));
        assert_non_null(sl_job_error(job));
        assert_non_null(strstr(sl_job_error(job), cases[c].msg));
        assert_non_null(strstr(sl_job_error(job), "async 'enrich'"));
        sl_job_destroy(job);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ordered_keeps_input_order),
        cmocka_unit_test(unordered_respects_watermarks),
        cmocka_unit_test(ordered_waits_for_the_head),
        cmocka_unit_test(capacity_bounds_requests_in_flight),
        cmocka_unit_test(timeout_fails_by_default),
        cmocka_unit_test(timeout_handler_gives_fallback_and_late_answers_are_dropped),
        cmocka_unit_test(retries_on_error_then_succeeds),
        cmocka_unit_test(retry_budget_exhausted_fails_with_the_cause),
        cmocka_unit_test(errors_without_retry_fail_the_task),
        cmocka_unit_test(retry_predicate_retries_a_result),
        cmocka_unit_test(snapshot_saves_requests_in_flight),
        cmocka_unit_test(builder_rejects_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
