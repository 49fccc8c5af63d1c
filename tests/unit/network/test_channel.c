/* Channel wake-up rules (channel.h): the consumer's mailbox hears of a channel only when it
 * goes from empty (or drained by sl_channel_take) to non-empty, and the producer's hears of
 * returned credit only when credit was exhausted, or, with credit_watch, once per ack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <string.h>

#include "network/channel.h"

typedef struct {
    sl_network_memory_t nm;
    sl_buffer_pool_t *pool;
    sl_mailbox_t producer, consumer;
    int producer_wakes, consumer_wakes; /* notify hook calls */
    sl_channel_t ch;
} fixture_t;

static void count(void *arg) {
    (*(int *)arg)++;
}

static void setup(fixture_t *f, uint32_t credit) {
    memset(f, 0, sizeof *f);
    assert_int_equal(sl_network_memory_init(&f->nm, 16 * 4096, 4096), 0);
    assert_int_equal(sl_buffer_pool_create(&f->nm, 8, &f->pool), 0);
    assert_int_equal(sl_mailbox_init(&f->producer), 0);
    assert_int_equal(sl_mailbox_init(&f->consumer), 0);
    sl_mailbox_set_notify(&f->producer, count, &f->producer_wakes);
    sl_mailbox_set_notify(&f->consumer, count, &f->consumer_wakes);
    assert_int_equal(sl_channel_init(&f->ch, credit, &f->producer, &f->consumer, 0, 0), 0);
}

static void teardown(fixture_t *f) {
    sl_channel_destroy(&f->ch);
    sl_buffer_pool_destroy(f->pool);
    sl_mailbox_destroy(&f->producer);
    sl_mailbox_destroy(&f->consumer);
    sl_network_memory_destroy(&f->nm);
}

static void send_one(fixture_t *f) {
    sl_buffer_t *b = sl_buffer_pool_request(f->pool);
    assert_non_null(b);
    b->len = 1;
    assert_int_equal(sl_channel_send(&f->ch, b), 0);
}

/* take never re-queues: a channel being drained wakes its consumer once, not per send. */
static void test_take_wakes_on_empty_to_non_empty(void **state) {
    fixture_t f;
    setup(&f, 8);
    send_one(&f);
    send_one(&f);
    assert_int_equal(f.consumer_wakes, 1);
    sl_channel_entry_t e;
    assert_int_equal(sl_channel_take(&f.ch, &e), 1);
    sl_channel_release(&f.ch, e.buf);
    send_one(&f); /* still non-empty, still marked: no wake-up */
    assert_int_equal(f.consumer_wakes, 1);
    assert_int_equal(sl_channel_take(&f.ch, &e), 1);
    sl_channel_release(&f.ch, e.buf);
    assert_int_equal(sl_channel_take(&f.ch, &e), 1);
    sl_channel_release(&f.ch, e.buf);
    assert_int_equal(sl_channel_take(&f.ch, &e), 0);
    assert_int_equal(f.consumer_wakes, 1);
    send_one(&f); /* drained, so this one wakes */
    assert_int_equal(f.consumer_wakes, 2);
    /* poll re-queues a channel it leaves non-empty (round robin in a task's ready queue). */
    send_one(&f);
    assert_int_equal(sl_channel_poll(&f.ch, &e), 1);
    sl_channel_release(&f.ch, e.buf);
    assert_int_equal(f.consumer_wakes, 3);
    assert_int_equal(sl_channel_backlog(&f.ch), 1);
    teardown(&f);
}

/* A producer waits only for exhausted credit: only the release that ends the exhaustion
 * wakes it; every credit still comes back. */
static void test_release_wakes_producer_when_credit_was_exhausted(void **state) {
    fixture_t f;
    setup(&f, 2);
    send_one(&f);
    send_one(&f);
    assert_false(sl_channel_has_credit(&f.ch));
    sl_channel_entry_t e1, e2;
    assert_int_equal(sl_channel_poll(&f.ch, &e1), 1);
    assert_int_equal(sl_channel_poll(&f.ch, &e2), 1);
    sl_channel_release(&f.ch, e1.buf);
    assert_int_equal(f.producer_wakes, 1);
    sl_channel_release(&f.ch, e2.buf);
    assert_int_equal(f.producer_wakes, 1);
    assert_int_equal(atomic_load(&f.ch.credit), 2);
    assert_int_equal(f.pool->nfree, 8);
    teardown(&f);
}

/* credit_watch (a network thread forwarding credit): the first release after each ack wakes
 * the producer, the ack returns all credit so far, and none is lost between the two. */
static void test_credit_watch_wakes_once_per_ack(void **state) {
    fixture_t f;
    setup(&f, 4);
    f.ch.credit_watch = true;
    assert_int_equal(sl_channel_credit_ack(&f.ch), 4);
    for (int i = 0; i < 4; i++)
        send_one(&f);
    sl_channel_entry_t e[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(sl_channel_poll(&f.ch, &e[i]), 1);
    sl_channel_release(&f.ch, e[0].buf); /* credit 0 -> 1 */
    sl_channel_release(&f.ch, e[1].buf);
    assert_int_equal(f.producer_wakes, 1);
    assert_int_equal(sl_channel_credit_ack(&f.ch), 2);
    sl_channel_release(&f.ch, e[2].buf); /* credit 2 -> 3: wakes only because of the ack */
    assert_int_equal(f.producer_wakes, 2);
    sl_channel_release(&f.ch, e[3].buf);
    assert_int_equal(f.producer_wakes, 2);
    assert_int_equal(sl_channel_credit_ack(&f.ch), 4);
    assert_false(atomic_load(&f.ch.credit_news));
    teardown(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_wakes_on_empty_to_non_empty),
        cmocka_unit_test(test_release_wakes_producer_when_credit_was_exhausted),
        cmocka_unit_test(test_credit_watch_wakes_once_per_ack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
