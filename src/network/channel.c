/* In-process channel with credit-based flow control (see channel.h). */
#include "network/channel.h"

#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"

int sl_channel_init(sl_channel_t *c, uint32_t credit, sl_mailbox_t *producer, sl_mailbox_t *consumer,
                    uint32_t input, uint32_t index) {
    memset(c, 0, sizeof *c);
    c->cap = 16;
    while (c->cap < 2 * credit + 4)
        c->cap *= 2;
    c->q = sl_calloc(c->cap, sizeof *c->q);
    if (c->q == NULL)
        return SL_ENOMEM;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        sl_free(c->q);
        return SL_ENOMEM;
    }
    atomic_init(&c->credit, (int)credit);
    atomic_init(&c->buffers_sent, 0);
    atomic_init(&c->credit_news, false);
    c->producer = producer;
    c->consumer = consumer;
    c->input = input;
    c->index = index;
    c->watermark = INT64_MIN;
    return 0;
}

void sl_channel_destroy(sl_channel_t *c) {
    if (c->q == NULL)
        return;
    for (uint32_t i = 0; i < c->len; i++) {
        sl_channel_entry_t *e = &c->q[(c->head + i) & (c->cap - 1)];
        if (e->kind == SL_CH_BUFFER && e->buf)
            sl_buffer_recycle(e->buf);
    }
    pthread_mutex_destroy(&c->mu);
    sl_free(c->q);
    c->q = NULL;
    sl_free(c->failure);
    c->failure = NULL;
}

static int grow(sl_channel_t *c) {
    uint32_t ncap = c->cap * 2;
    sl_channel_entry_t *n = sl_malloc(ncap * sizeof *n);
    if (n == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < c->len; i++)
        n[i] = c->q[(c->head + i) & (c->cap - 1)];
    sl_free(c->q);
    c->q = n;
    c->cap = ncap;
    c->head = 0;
    return 0;
}

/* Appends under the lock; reports whether the consumer must be notified. */
static int enqueue(sl_channel_t *c, sl_channel_entry_t e) {
    bool notify = false;
    pthread_mutex_lock(&c->mu);
    if (e.kind == SL_CH_WATERMARK && c->len > 0) {
        /* A newer watermark supersedes a queued one that nothing follows. */
        sl_channel_entry_t *last = &c->q[(c->head + c->len - 1) & (c->cap - 1)];
        if (last->kind == SL_CH_WATERMARK) {
            if (e.value > last->value)
                last->value = e.value;
            pthread_mutex_unlock(&c->mu);
            return 0;
        }
    }
    if (c->len == c->cap && grow(c) != 0) {
        pthread_mutex_unlock(&c->mu);
        return SL_ENOMEM;
    }
    c->q[(c->head + c->len++) & (c->cap - 1)] = e;
    if (!c->in_ready_queue) {
        c->in_ready_queue = true;
        notify = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (notify)
        return sl_mailbox_push_ready(c->consumer, c);
    return 0;
}

int sl_channel_send(sl_channel_t *c, sl_buffer_t *buf) {
    atomic_fetch_sub_explicit(&c->credit, 1, memory_order_acq_rel);
    atomic_fetch_add_explicit(&c->buffers_sent, 1, memory_order_relaxed);
    return enqueue(c, (sl_channel_entry_t){SL_CH_BUFFER, buf, 0});
}

int sl_channel_event(sl_channel_t *c, sl_channel_entry_kind_t kind, int64_t value) {
    return enqueue(c, (sl_channel_entry_t){kind, NULL, value});
}

/* Under c->mu: the oldest entry into *e, if any (returns 1). */
static int pop_locked(sl_channel_t *c, sl_channel_entry_t *e) {
    if (c->len == 0)
        return 0;
    *e = c->q[c->head];
    c->head = (c->head + 1) & (c->cap - 1);
    c->len--;
    return 1;
}

int sl_channel_poll(sl_channel_t *c, sl_channel_entry_t *e) {
    bool requeue = false;
    pthread_mutex_lock(&c->mu);
    int got = pop_locked(c, e);
    if (c->len == 0)
        c->in_ready_queue = false;
    else
        requeue = true;
    pthread_mutex_unlock(&c->mu);
    /* Round robin between channels: a non-empty channel goes to the back of the queue. */
    if (requeue)
        sl_mailbox_push_ready(c->consumer, c);
    return got;
}

int sl_channel_take(sl_channel_t *c, sl_channel_entry_t *e) {
    pthread_mutex_lock(&c->mu);
    int got = pop_locked(c, e);
    /* Left non-empty, the channel stays marked: the producer's next sends need not wake a
     * consumer that is still draining it, or holding an entry until it may send it. */
    if (c->len == 0)
        c->in_ready_queue = false;
    pthread_mutex_unlock(&c->mu);
    return got;
}

void sl_channel_release(sl_channel_t *c, sl_buffer_t *buf) {
    sl_buffer_recycle(buf);
    /* seq_cst with the flag below and in sl_channel_credit_ack: a producer that acked before
     * this increment reads it, or finds the flag set and is woken. */
    int before = atomic_fetch_add(&c->credit, 1);
    bool wake = before <= 0; /* a producer waits only for exhausted credit (record_writer.c) */
    if (c->credit_watch && !atomic_exchange(&c->credit_news, true))
        wake = true;
    if (wake)
        sl_mailbox_wake(c->producer);
}

int sl_channel_credit_ack(sl_channel_t *c) {
    atomic_store(&c->credit_news, false);
    return atomic_load(&c->credit);
}

uint32_t sl_channel_backlog(sl_channel_t *c) {
    pthread_mutex_lock(&c->mu);
    uint32_t n = c->len;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int sl_channel_fail(sl_channel_t *c, const char *msg) {
    char *m = sl_strdup(msg ? msg : "remote producer failed");
    pthread_mutex_lock(&c->mu);
    if (c->failure == NULL)
        c->failure = m;
    else
        sl_free(m);
    pthread_mutex_unlock(&c->mu);
    return sl_channel_event(c, SL_CH_END, 0);
}

const char *sl_channel_failure(sl_channel_t *c) {
    pthread_mutex_lock(&c->mu);
    const char *f = c->failure;
    pthread_mutex_unlock(&c->mu);
    return f;
}
