/* Subtask mailbox (see mailbox.h). */
#include "core/mailbox.h"

#include <sluice/error.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"

int64_t sl_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sl_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sl_mailbox_init(sl_mailbox_t *m) {
    memset(m, 0, sizeof *m);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&m->mu, NULL) != 0)
        return SL_ENOMEM;
    if (pthread_cond_init(&m->cv, &attr) != 0) {
        pthread_mutex_destroy(&m->mu);
        return SL_ENOMEM;
    }
    pthread_condattr_destroy(&attr);
    atomic_init(&m->cancelled, false);
    atomic_init(&m->mail_pending, 0);
    return 0;
}

void sl_mailbox_set_notify(sl_mailbox_t *m, void (*fn)(void *arg), void *arg) {
    m->notify = fn;
    m->notify_arg = arg;
}

static void notify(sl_mailbox_t *m) {
    if (m->notify)
        m->notify(m->notify_arg);
}

void sl_mailbox_destroy(sl_mailbox_t *m) {
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    sl_free(m->ready);
    sl_free(m->mails);
}

/* Grows a ring to twice its size, unrolling it so head becomes 0. */
static int grow_ring(void **ring, uint32_t *cap, uint32_t *head, uint32_t len, size_t elem) {
    uint32_t ncap = *cap ? *cap * 2 : 16;
    char *n = sl_malloc((size_t)ncap * elem);
    if (n == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < len; i++)
        memcpy(n + (size_t)i * elem, (char *)*ring + (size_t)((*head + i) & (*cap - 1)) * elem, elem);
    sl_free(*ring);
    *ring = n;
    *cap = ncap;
    *head = 0;
    return 0;
}

int sl_mailbox_push_ready(sl_mailbox_t *m, void *ch) {
    pthread_mutex_lock(&m->mu);
    if (m->ready_len == m->ready_cap &&
        grow_ring((void **)&m->ready, &m->ready_cap, &m->ready_head, m->ready_len, sizeof(void *))) {
        pthread_mutex_unlock(&m->mu);
        return SL_ENOMEM;
    }
    m->ready[(m->ready_head + m->ready_len++) & (m->ready_cap - 1)] = ch;
    pthread_mutex_unlock(&m->mu);
    pthread_cond_broadcast(&m->cv); /* after unlocking: the woken owner does not block on mu */
    notify(m);
    return 0;
}

int sl_mailbox_put_mail(sl_mailbox_t *m, sl_mail_fn fn, void *arg) {
    pthread_mutex_lock(&m->mu);
    if (m->mail_len == m->mail_cap &&
        grow_ring((void **)&m->mails, &m->mail_cap, &m->mail_head, m->mail_len, sizeof(sl_mail_t))) {
        pthread_mutex_unlock(&m->mu);
        return SL_ENOMEM;
    }
    m->mails[(m->mail_head + m->mail_len++) & (m->mail_cap - 1)] = (sl_mail_t){fn, arg};
    atomic_store_explicit(&m->mail_pending, m->mail_len, memory_order_release);
    pthread_mutex_unlock(&m->mu);
    pthread_cond_broadcast(&m->cv); /* after unlocking: the woken owner does not block on mu */
    notify(m);
    return 0;
}

void sl_mailbox_wake(sl_mailbox_t *m) {
    pthread_mutex_lock(&m->mu);
    pthread_mutex_unlock(&m->mu);
    pthread_cond_broadcast(&m->cv); /* after unlocking: the woken owner does not block on mu */
    notify(m);
}

void sl_mailbox_signal(sl_mailbox_t *m) {
    pthread_mutex_lock(&m->mu);
    m->signalled = true;
    pthread_mutex_unlock(&m->mu);
    pthread_cond_broadcast(&m->cv); /* after unlocking: the woken owner does not block on mu */
    notify(m);
}

void sl_mailbox_cancel(sl_mailbox_t *m) {
    atomic_store_explicit(&m->cancelled, true, memory_order_release);
    sl_mailbox_wake(m);
}

int sl_mailbox_take_mail(sl_mailbox_t *m, sl_mail_t *out) {
    /* A mail queued right after this read is not lost: every wait checks mail_len under the
     * lock before sleeping, and the owner polls again after it. */
    if (atomic_load_explicit(&m->mail_pending, memory_order_acquire) == 0)
        return 0;
    pthread_mutex_lock(&m->mu);
    int got = 0;
    if (m->mail_len) {
        *out = m->mails[m->mail_head];
        m->mail_head = (m->mail_head + 1) & (m->mail_cap - 1);
        m->mail_len--;
        atomic_store_explicit(&m->mail_pending, m->mail_len, memory_order_release);
        got = 1;
    }
    pthread_mutex_unlock(&m->mu);
    return got;
}

static void deadline_to_ts(int64_t ms, struct timespec *ts) {
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (ms % 1000) * 1000000;
}

int sl_mailbox_wait_ready(sl_mailbox_t *m, int64_t deadline_ms, void **ch) {
    pthread_mutex_lock(&m->mu);
    int got = 0;
    if (m->ready_len == 0 && m->mail_len == 0 && !m->signalled && !sl_mailbox_is_cancelled(m)) {
        if (deadline_ms == INT64_MAX) {
            pthread_cond_wait(&m->cv, &m->mu);
        } else {
            struct timespec ts;
            deadline_to_ts(deadline_ms, &ts);
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        }
    }
    m->signalled = false; /* the caller services its operators after any return */
    if (m->ready_len) {
        *ch = m->ready[m->ready_head];
        m->ready_head = (m->ready_head + 1) & (m->ready_cap - 1);
        m->ready_len--;
        got = 1;
    }
    pthread_mutex_unlock(&m->mu);
    return got;
}

int sl_mailbox_wait_signal(sl_mailbox_t *m, int64_t deadline_ms) {
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    while (!m->signalled) {
        if (sl_mailbox_is_cancelled(m)) {
            rc = SL_ECANCELED;
            break;
        }
        if (deadline_ms == INT64_MAX) {
            pthread_cond_wait(&m->cv, &m->mu);
        } else {
            struct timespec ts;
            deadline_to_ts(deadline_ms, &ts);
            if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) == ETIMEDOUT)
                break;
        }
    }
    m->signalled = false;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int sl_mailbox_wait_until(sl_mailbox_t *m, bool (*cond)(void *arg), void *arg, bool stop_on_mail) {
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (cond(arg)) {
            rc = 0;
            break;
        }
        if (sl_mailbox_is_cancelled(m)) {
            rc = SL_ECANCELED;
            break;
        }
        if (stop_on_mail && m->mail_len) {
            rc = 1;
            break;
        }
        pthread_cond_wait(&m->cv, &m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
