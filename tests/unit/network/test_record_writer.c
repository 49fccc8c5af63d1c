/* Record writer/reader and channels: framing, spanning records, partitioning, credit-based
 * backpressure between two threads, watermark coalescing and the memory bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <string.h>

#include "core/alloc.h"
#include "network/record_writer.h"

typedef struct {
    sl_network_memory_t nm;
    sl_mailbox_t producer;
    sl_mailbox_t consumer;
    sl_channel_t ch[4];
    sl_channel_t *chp[4];
    sl_record_writer_t w;
} fixture_t;

static void setup_fixture(fixture_t *f, uint32_t nch, uint32_t credit, uint32_t segment) {
    memset(f, 0, sizeof *f);
    assert_int_equal(sl_network_memory_init(&f->nm, 1 << 20, segment), 0);
    assert_int_equal(sl_mailbox_init(&f->producer), 0);
    assert_int_equal(sl_mailbox_init(&f->consumer), 0);
    for (uint32_t i = 0; i < nch; i++) {
        assert_int_equal(sl_channel_init(&f->ch[i], credit, &f->producer, &f->consumer, 0, i), 0);
        f->chp[i] = &f->ch[i];
    }
    assert_int_equal(sl_record_writer_init(&f->w, SL_PART_REBALANCE, f->chp, nch, credit, &f->nm, &f->producer), 0);
}

static void teardown_fixture(fixture_t *f, uint32_t nch) {
    for (uint32_t i = 0; i < nch; i++)
        sl_channel_destroy(&f->ch[i]);
    sl_record_writer_destroy(&f->w);
    assert_int_equal(f->nm.reserved_segments, 0);
    sl_mailbox_destroy(&f->producer);
    sl_mailbox_destroy(&f->consumer);
    sl_network_memory_destroy(&f->nm);
}

static sl_row_t make_row(sl_row_builder_t *b, int64_t v, uint32_t pad) {
    static char big[100000];
    memset(big, 'x', sizeof big);
    sl_row_builder_start(b, 2);
    sl_row_set_i64(b, 0, v);
    sl_row_set_str(b, 1, big, pad);
    sl_row_t r;
    assert_int_equal(sl_row_builder_finish(b, &r), 0);
    return r;
}

/* Drains one channel, checking records come back in order with their timestamps. */
static int64_t drain(sl_channel_t *c, sl_record_reader_t *rd, int64_t expect, uint32_t pad) {
    sl_channel_entry_t e;
    while (sl_channel_poll(c, &e) == 1) {
        if (e.kind != SL_CH_BUFFER)
            continue;
        uint32_t pos = 0;
        sl_row_t r;
        int64_t ts;
        int got;
        while ((got = sl_record_reader_next(rd, e.buf, &pos, &r, &ts)) == 1) {
            assert_int_equal(sl_row_i64(&r, 0), expect);
            assert_int_equal(ts, expect * 10);
            uint32_t len;
            sl_row_str(&r, 1, &len);
            assert_int_equal(len, pad);
            expect++;
        }
        assert_int_equal(got, 0);
        sl_channel_release(c, e.buf);
    }
    return expect;
}

static void test_roundtrip_small_and_spanning(void **state) {
    uint32_t pads[] = {0, 100, 4000, 20000}; /* 20000 > segment: spans buffers */
    for (size_t p = 0; p < sizeof pads / sizeof pads[0]; p++) {
        fixture_t f;
        setup_fixture(&f, 1, 64, 4096);
        sl_row_builder_t b;
        sl_row_builder_init(&b);
        sl_record_reader_t rd = {0};
        int64_t next = 0;
        for (int64_t i = 0; i < 50; i++) {
            sl_row_t r = make_row(&b, i, pads[p]);
            assert_int_equal(sl_record_writer_write(&f.w, &r, i * 10), 0);
            next = drain(&f.ch[0], &rd, next, pads[p]);
        }
        assert_int_equal(sl_record_writer_flush(&f.w), 0);
        next = drain(&f.ch[0], &rd, next, pads[p]);
        assert_int_equal(next, 50);
        sl_record_reader_destroy(&rd);
        sl_row_builder_destroy(&b);
        teardown_fixture(&f, 1);
    }
}

static void test_round_robin_and_events(void **state) {
    fixture_t f;
    setup_fixture(&f, 3, 2, 4096);
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    for (int64_t i = 0; i < 6; i++) {
        sl_row_t r = make_row(&b, i, 1);
        assert_int_equal(sl_record_writer_write(&f.w, &r, i), 0);
    }
    assert_int_equal(sl_record_writer_event(&f.w, SL_CH_WATERMARK, 5), 0);
    assert_int_equal(sl_record_writer_event(&f.w, SL_CH_WATERMARK, 9), 0);
    assert_int_equal(sl_record_writer_event(&f.w, SL_CH_END, 0), 0);
    for (int c = 0; c < 3; c++) {
        sl_channel_entry_t e;
        assert_int_equal(sl_channel_poll(&f.ch[c], &e), 1);
        assert_int_equal(e.kind, SL_CH_BUFFER);
        uint32_t pos = 0, n = 0;
        sl_row_t r;
        int64_t ts;
        while (sl_record_reader_next(&(sl_record_reader_t){0}, e.buf, &pos, &r, &ts) == 1) {
            assert_int_equal(sl_row_i64(&r, 0) % 3, c);
            n++;
        }
        assert_int_equal(n, 2);
        sl_channel_release(&f.ch[c], e.buf);
        /* The two watermarks coalesced into the newer one; records came before it. */
        assert_int_equal(sl_channel_poll(&f.ch[c], &e), 1);
        assert_int_equal(e.kind, SL_CH_WATERMARK);
        assert_int_equal(e.value, 9);
        assert_int_equal(sl_channel_poll(&f.ch[c], &e), 1);
        assert_int_equal(e.kind, SL_CH_END);
        assert_int_equal(sl_channel_poll(&f.ch[c], &e), 0);
    }
    sl_row_builder_destroy(&b);
    teardown_fixture(&f, 3);
}

static void test_malformed_buffer(void **state) {
    sl_buffer_t buf = {0};
    uint8_t data[64] = {0};
    uint32_t bad = 3; /* shorter than any row header */
    memcpy(data, &bad, 4);
    buf.data = data;
    buf.len = 40;
    buf.cap = 64;
    sl_record_reader_t rd = {0};
    uint32_t pos = 0;
    sl_row_t r;
    int64_t ts;
    assert_int_equal(sl_record_reader_next(&rd, &buf, &pos, &r, &ts), SL_EPROTO);
    sl_record_reader_destroy(&rd);
}

typedef struct {
    fixture_t *f;
    int64_t n;
    int64_t received;
    uint32_t max_in_flight;
    atomic_bool stop;
} slow_consumer_t;

static void *consume(void *arg) {
    slow_consumer_t *c = arg;
    sl_record_reader_t rd = {0};
    while (c->received < c->n) {
        void *ch;
        if (sl_mailbox_wait_ready(&c->f->consumer, sl_monotonic_ms() + 50, &ch) != 1)
            continue;
        uint32_t backlog = sl_channel_backlog(ch);
        if (backlog > c->max_in_flight)
            c->max_in_flight = backlog;
        struct timespec ts = {0, 200000}; /* a slow sink: 0.2 ms per buffer */
        nanosleep(&ts, NULL);
        c->received = drain(ch, &rd, c->received, 200);
    }
    sl_record_reader_destroy(&rd);
    return NULL;
}

static void test_credit_backpressure_bounds_memory(void **state) {
    fixture_t f;
    uint32_t credit = 3;
    setup_fixture(&f, 1, credit, 4096);
    slow_consumer_t c = {.f = &f, .n = 20000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, consume, &c), 0);
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    for (int64_t i = 0; i < c.n; i++) {
        sl_row_t r = make_row(&b, i, 200);
        assert_int_equal(sl_record_writer_write(&f.w, &r, i * 10), 0);
        /* Never more buffers in flight than credit allows. */
        assert_true(atomic_load(&f.ch[0].credit) >= 0);
    }
    assert_int_equal(sl_record_writer_flush(&f.w), 0);
    pthread_join(th, NULL);
    assert_int_equal(c.received, c.n);
    assert_true(c.max_in_flight <= credit);
    /* The writer had to wait: the consumer was slower. */
    assert_true(f.w.backpressured_ms > 0);
    assert_int_equal(f.w.pool->nbuffers, 1 * (credit + 1));
    sl_row_builder_destroy(&b);
    teardown_fixture(&f, 1);
}

static void test_budget_exhausted(void **state) {
    sl_network_memory_t nm;
    assert_int_equal(sl_network_memory_init(&nm, 8 * 4096, 4096), 0);
    sl_buffer_pool_t *a, *b;
    assert_int_equal(sl_buffer_pool_create(&nm, 6, &a), 0);
    assert_int_equal(sl_buffer_pool_create(&nm, 3, &b), SL_ENOBUFS);
    assert_int_equal(sl_buffer_pool_create(&nm, 2, &b), 0);
    sl_buffer_pool_destroy(a);
    sl_buffer_pool_destroy(b);
    assert_int_equal(nm.reserved_segments, 0);
    sl_network_memory_destroy(&nm);
}

static void test_cancel_unblocks_waiting_writer(void **state) {
    fixture_t f;
    setup_fixture(&f, 1, 1, 4096);
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    sl_mailbox_cancel(&f.producer);
    int rc = 0;
    for (int64_t i = 0; i < 1000 && rc == 0; i++) {
        sl_row_t r = make_row(&b, i, 500);
        rc = sl_record_writer_write(&f.w, &r, i);
    }
    assert_int_equal(rc, SL_ECANCELED);
    sl_row_builder_destroy(&b);
    teardown_fixture(&f, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_small_and_spanning),
        cmocka_unit_test(test_round_robin_and_events),
        cmocka_unit_test(test_malformed_buffer),
        cmocka_unit_test(test_credit_backpressure_bounds_memory),
        cmocka_unit_test(test_budget_exhausted),
        cmocka_unit_test(test_cancel_unblocks_waiting_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
