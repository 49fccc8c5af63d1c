/* The mailbox of one subtask thread: the single place that thread sleeps.
 *
 * Three things wake it: an input channel that became non-empty (pushed into the ready
 * queue), a mail (an action to run on the subtask thread, from any thread), and a change the
 * thread waits for elsewhere (credit returned, cancellation), signalled by sl_mailbox_wake().
 * Everything is guarded by `mu`; the condition variable is broadcast on every change (after
 * `mu` is released, so the woken owner does not at once block on it), and waiters re-check
 * their condition under `mu` before sleeping, so no wake-up is lost. The mailbox outlives
 * every thread that can wake it (the task owns it). */
#ifndef SL_CORE_MAILBOX_H
#define SL_CORE_MAILBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*sl_mail_fn)(void *arg);

typedef struct sl_mail_s {
    sl_mail_fn fn;
    void *arg;
} sl_mail_t;

typedef struct sl_mailbox_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **ready;        /* ring of ready channels (opaque to the mailbox) */
    uint32_t ready_cap;  /* power of two */
    uint32_t ready_head;
    uint32_t ready_len;
    sl_mail_t *mails;    /* ring of mails */
    uint32_t mail_cap;
    uint32_t mail_head;
    uint32_t mail_len;
    /* mail_len, readable without the lock: the owner polls for mail once per loop turn, and
     * taking `mu` there each time contends with every producer pushing ready channels. */
    atomic_uint mail_pending;
    bool signalled;      /* an operator asked for service (async completions) */
    /* An owner that is an event loop (a network thread) and never sleeps on `cv`: called,
     * outside the lock, after every change that would wake a sleeping owner. */
    void (*notify)(void *arg);
    void *notify_arg;
    atomic_bool cancelled;
} sl_mailbox_t;

int sl_mailbox_init(sl_mailbox_t *m);
/* For an owner that runs an event loop: `fn(arg)` (e.g. uv_async_send) is called on every
 * wake-up, from the waking thread. Set before the mailbox is shared. */
void sl_mailbox_set_notify(sl_mailbox_t *m, void (*fn)(void *arg), void *arg);
void sl_mailbox_destroy(sl_mailbox_t *m);

/* Any thread: marks `ch` ready and wakes the owner. Errors: SL_ENOMEM. */
int sl_mailbox_push_ready(sl_mailbox_t *m, void *ch);
/* Any thread: queues an action for the owner thread. Errors: SL_ENOMEM. */
int sl_mailbox_put_mail(sl_mailbox_t *m, sl_mail_fn fn, void *arg);
/* Any thread: wakes the owner without a message (credit returned, state changed). */
void sl_mailbox_wake(sl_mailbox_t *m);
/* Any thread: an operator of this task has work (async results arrived). Unlike a plain
 * wake-up it is remembered until the owner next waits, so none is lost. */
void sl_mailbox_signal(sl_mailbox_t *m);
/* Owner thread: waits until signalled (consuming the signal), `deadline_ms` passes
 * (CLOCK_MONOTONIC ms, INT64_MAX = none) or the task is cancelled (SL_ECANCELED). Mails wait. */
int sl_mailbox_wait_signal(sl_mailbox_t *m, int64_t deadline_ms);
/* Any thread: requests cancellation and wakes the owner. */
void sl_mailbox_cancel(sl_mailbox_t *m);
static inline bool sl_mailbox_is_cancelled(sl_mailbox_t *m) {
    return atomic_load_explicit(&m->cancelled, memory_order_acquire);
}

/* Owner thread: pops one mail if any (returns 1). */
int sl_mailbox_take_mail(sl_mailbox_t *m, sl_mail_t *out);
/* Owner thread: pops a ready channel, waiting until `deadline_ms` (CLOCK_MONOTONIC ms;
 * INT64_MAX = no limit) when none is ready. Returns 1 with *ch set, 0 on timeout, on a mail,
 * on a wake-up, on a signal (consumed) or on cancellation (the caller re-checks its conditions). */
int sl_mailbox_wait_ready(sl_mailbox_t *m, int64_t deadline_ms, void **ch);
/* Owner thread: waits until `cond(arg)` holds (evaluated under the mailbox lock) or the task
 * is cancelled; with `stop_on_mail`, also returns when a mail is queued. Returns 0 when cond
 * holds, 1 on a mail, SL_ECANCELED. */
int sl_mailbox_wait_until(sl_mailbox_t *m, bool (*cond)(void *arg), void *arg, bool stop_on_mail);

int64_t sl_monotonic_ms(void);
int64_t sl_wall_ms(void);

#endif
