/* The subtask mailbox (src/core/mailbox.h): mails and ready channels posted from other threads
 * are seen by the owner in FIFO order, deadlines time out without mail, cancel/wake wake waiters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "core/mailbox.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct {
    sl_mailbox_t *m;
    int delay_ms;
    int n;
    void *ch;
    atomic_bool *flag;
} poster_t;

static pthread_t owner_thread;
/* Helper threads must not call cmocka asserts (they longjmp); they count failures here. */
static atomic_int thread_errors;

static void record_mail(void *arg) {
    int *ran = arg;
    assert_true(pthread_equal(pthread_self(), owner_thread));
    (*ran)++;
}

static void *post_mail(void *arg) {
    poster_t *p = arg;
    sleep_ms(p->delay_ms);
    if (sl_mailbox_put_mail(p->m, record_mail, p->ch) != 0)
        atomic_fetch_add(&thread_errors, 1);
    return NULL;
}

static void test_mail_from_other_thread(void **state) {
    sl_mailbox_t m;
    assert_int_equal(sl_mailbox_init(&m), 0);
    owner_thread = pthread_self();
    int ran = 0;
    poster_t p = {&m, 30, 1, &ran, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_mail, &p), 0);
    int64_t start = sl_monotonic_ms();
    sl_mail_t mail;
    int loops = 0;
    while (!sl_mailbox_take_mail(&m, &mail)) {
        void *ch = NULL;
        /* No ready channel ever arrives: a wake-up for the mail returns 0. */
        assert_int_equal(sl_mailbox_wait_ready(&m, start + 5000, &ch), 0);
        assert_null(ch);
        assert_true(++loops < 1000);
    }
    assert_true(sl_monotonic_ms() - start < 4000); /* woken by the mail, not the deadline */
    assert_ptr_equal(mail.fn, record_mail);
    assert_ptr_equal(mail.arg, &ran);
    mail.fn(mail.arg);
    assert_int_equal(ran, 1);
    assert_int_equal(sl_mailbox_take_mail(&m, &mail), 0);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&thread_errors), 0);
    sl_mailbox_destroy(&m);
}

static void *push_ready(void *arg) {
    poster_t *p = arg;
    sleep_ms(p->delay_ms);
    for (int i = 0; i < p->n; i++)
        if (sl_mailbox_push_ready(p->m, (char *)p->ch + i) != 0)
            atomic_fetch_add(&thread_errors, 1);
    return NULL;
}

static void test_ready_from_other_thread(void **state) {
    sl_mailbox_t m;
    static char chans[100];
    assert_int_equal(sl_mailbox_init(&m), 0);
    poster_t p = {&m, 20, 100, chans, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, push_ready, &p), 0);
    int64_t start = sl_monotonic_ms();
    int got = 0;
    while (got < 100) {
        void *ch = NULL;
        if (sl_mailbox_wait_ready(&m, INT64_MAX, &ch) == 1) {
            assert_ptr_equal(ch, chans + got); /* FIFO */
            got++;
        }
        assert_true(sl_monotonic_ms() - start < 10000);
    }
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&thread_errors), 0);
    /* Nothing left: a deadline in the past returns at once. */
    void *ch = NULL;
    assert_int_equal(sl_mailbox_wait_ready(&m, sl_monotonic_ms() - 10, &ch), 0);
    sl_mailbox_destroy(&m);
}

static void test_deadline_timeout(void **state) {
    sl_mailbox_t m;
    assert_int_equal(sl_mailbox_init(&m), 0);
    void *ch = NULL;
    int64_t start = sl_monotonic_ms();
    int64_t deadline = start + 80;
    int rc;
    /* Spurious wake-ups may return early; loop until the deadline as a caller would. */
    do {
        rc = sl_mailbox_wait_ready(&m, deadline, &ch);
        assert_int_equal(rc, 0);
    } while (sl_monotonic_ms() < deadline);
    int64_t elapsed = sl_monotonic_ms() - start;
    assert_true(elapsed >= 80);
    assert_true(elapsed < 2000);
    assert_null(ch);
    sl_mail_t mail;
    assert_int_equal(sl_mailbox_take_mail(&m, &mail), 0);
    sl_mailbox_destroy(&m);
}

static void nop(void *arg) { (void)arg; }

static void test_fifo_and_growth(void **state) {
    sl_mailbox_t m;
    assert_int_equal(sl_mailbox_init(&m), 0);
    static char args[1000];
    int next_in = 0, next_out = 0;
    sl_mail_t mail;
    /* Interleave puts and takes so the ring wraps before it grows. */
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 13 + round * 7; i++, next_in++)
            assert_int_equal(sl_mailbox_put_mail(&m, nop, args + next_in), 0);
        for (int i = 0; i < 9 + round * 3; i++, next_out++) {
            assert_int_equal(sl_mailbox_take_mail(&m, &mail), 1);
            assert_ptr_equal(mail.arg, args + next_out);
            assert_ptr_equal(mail.fn, nop);
        }
    }
    while (next_out < next_in) {
        assert_int_equal(sl_mailbox_take_mail(&m, &mail), 1);
        assert_ptr_equal(mail.arg, args + next_out);
        next_out++;
    }
    assert_int_equal(sl_mailbox_take_mail(&m, &mail), 0);

    /* Same for ready channels. */
    void *ch;
    next_in = next_out = 0;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 11 + round * 5; i++, next_in++)
            assert_int_equal(sl_mailbox_push_ready(&m, args + next_in), 0);
        for (int i = 0; i < 7 + round * 2; i++, next_out++) {
            assert_int_equal(sl_mailbox_wait_ready(&m, INT64_MAX, &ch), 1);
            assert_ptr_equal(ch, args + next_out);
        }
    }
    while (next_out < next_in) {
        assert_int_equal(sl_mailbox_wait_ready(&m, 0, &ch), 1);
        assert_ptr_equal(ch, args + next_out);
        next_out++;
    }
    assert_int_equal(sl_mailbox_wait_ready(&m, 0, &ch), 0);
    sl_mailbox_destroy(&m);
}

static void test_pending_mail_does_not_block(void **state) {
    sl_mailbox_t m;
    assert_int_equal(sl_mailbox_init(&m), 0);
    assert_int_equal(sl_mailbox_put_mail(&m, nop, NULL), 0);
    void *ch = NULL;
    int64_t start = sl_monotonic_ms();
    /* A queued mail makes wait_ready return at once even without a deadline. */
    assert_int_equal(sl_mailbox_wait_ready(&m, INT64_MAX, &ch), 0);
    assert_true(sl_monotonic_ms() - start < 1000);
    /* ...and the mail is still there. */
    sl_mail_t mail;
    assert_int_equal(sl_mailbox_take_mail(&m, &mail), 1);
    assert_ptr_equal(mail.fn, nop);
    sl_mailbox_destroy(&m);
}

static void *cancel_later(void *arg) {
    poster_t *p = arg;
    sleep_ms(p->delay_ms);
    sl_mailbox_cancel(p->m);
    return NULL;
}

static bool never(void *arg) { return false; }

static void test_cancel_wakes(void **state) {
    sl_mailbox_t m;
    assert_int_equal(sl_mailbox_init(&m), 0);
    assert_false(sl_mailbox_is_cancelled(&m));
    poster_t p = {&m, 30, 0, NULL, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &p), 0);
    int64_t start = sl_monotonic_ms();
    assert_int_equal(sl_mailbox_wait_until(&m, never, NULL, true), SL_ECANCELED);
    assert_true(sl_monotonic_ms() - start < 5000);
    assert_true(sl_mailbox_is_cancelled(&m));
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&thread_errors), 0);
    /* Once cancelled, wait_ready does not block. */
    void *ch = NULL;
    assert_int_equal(sl_mailbox_wait_ready(&m, INT64_MAX, &ch), 0);
    sl_mailbox_destroy(&m);
}

static void test_cancel_wakes_wait_ready(void **state) {
    sl_mailbox_t m;
    assert_int_equal(sl_mailbox_init(&m), 0);
    poster_t p = {&m, 30, 0, NULL, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &p), 0);
    int64_t start = sl_monotonic_ms();
    void *ch = NULL;
    /* Without a deadline, only the cancel can end this loop. */
    while (!sl_mailbox_is_cancelled(&m)) {
        assert_int_equal(sl_mailbox_wait_ready(&m, INT64_MAX, &ch), 0);
        assert_true(sl_monotonic_ms() - start < 5000);
    }
    assert_null(ch);
    pthread_join(t, NULL);
    sl_mailbox_destroy(&m);
}

static bool flag_set(void *arg) { return atomic_load((atomic_bool *)arg); }

static void *set_flag_and_wake(void *arg) {
    poster_t *p = arg;
    sleep_ms(p->delay_ms);
    atomic_store(p->flag, true);
    sl_mailbox_wake(p->m);
    return NULL;
}

static void test_wait_until_cond_and_mail(void **state) {
    sl_mailbox_t m;
    assert_int_equal(sl_mailbox_init(&m), 0);
    atomic_bool flag;
    atomic_init(&flag, false);
    poster_t p = {&m, 30, 0, NULL, &flag};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, set_flag_and_wake, &p), 0);
    assert_int_equal(sl_mailbox_wait_until(&m, flag_set, &flag, false), 0);
    assert_true(atomic_load(&flag));
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&thread_errors), 0);

    /* stop_on_mail: a mail posted by another thread ends the wait with 1. */
    int ran = 0;
    owner_thread = pthread_self();
    poster_t q = {&m, 30, 1, &ran, NULL};
    assert_int_equal(pthread_create(&t, NULL, post_mail, &q), 0);
    assert_int_equal(sl_mailbox_wait_until(&m, never, NULL, true), 1);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&thread_errors), 0);
    sl_mail_t mail;
    assert_int_equal(sl_mailbox_take_mail(&m, &mail), 1);
    mail.fn(mail.arg);
    assert_int_equal(ran, 1);
    /* A condition that already holds returns 0 even with a mail queued. */
    assert_int_equal(sl_mailbox_put_mail(&m, nop, NULL), 0);
    assert_int_equal(sl_mailbox_wait_until(&m, flag_set, &flag, true), 0);
    sl_mailbox_destroy(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mail_from_other_thread),
        cmocka_unit_test(test_ready_from_other_thread),
        cmocka_unit_test(test_deadline_timeout),
        cmocka_unit_test(test_fifo_and_growth),
        cmocka_unit_test(test_pending_mail_does_not_block),
        cmocka_unit_test(test_cancel_wakes),
        cmocka_unit_test(test_cancel_wakes_wait_ready),
        cmocka_unit_test(test_wait_until_cond_and_mail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
