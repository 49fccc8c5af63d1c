/* A channel: one producer subpartition feeding one consumer input channel, with credit-based
 * flow control.
 *
 * The consumer grants credit, one per buffer it is ready to hold (initially
 * `taskmanager.network.memory.buffers-per-channel`); the producer hands over a data buffer
 * only against credit, and gets the credit back when the consumer has processed and recycled
 * it. A slow consumer therefore stops exactly the producers writing to it (backpressure),
 * and the buffers in flight per channel are bounded. Events (watermarks, idleness, end of
 * partition) need no credit; consecutive watermarks coalesce so events stay bounded too.
 *
 * Thread: the producer thread calls send/event, the consumer thread calls poll/release;
 * `mu` guards the queue. The in-process channel hands buffers over without copying; the TCP
 * channel (net.h) keeps the same credit protocol on the wire.
 *
 * Wake-ups are edge-triggered, because on a 2-core machine a futex or eventfd wake-up costs as
 * much as moving a buffer: the consumer's mailbox hears of a channel when it goes from empty
 * (or drained by sl_channel_take) to non-empty, and the producer's mailbox hears of returned
 * credit only when the credit was exhausted (the only time a producer waits for it), unless
 * the producer is a network thread that announces every returned credit to a remote peer
 * (`credit_watch`): then once per sl_channel_credit_ack. */
#ifndef SL_NETWORK_CHANNEL_H
#define SL_NETWORK_CHANNEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mailbox.h"
#include "network/buffer_pool.h"

typedef enum {
    SL_CH_BUFFER = 0,  /* a data buffer of serialized records */
    SL_CH_WATERMARK,   /* value = watermark */
    SL_CH_IDLE,        /* the producer is idle: exclude from watermark min until data/watermark */
    SL_CH_END,         /* end of partition: nothing follows */
    SL_CH_BARRIER,     /* checkpoint barrier, value = checkpoint id */
} sl_channel_entry_kind_t;

typedef struct sl_channel_entry_s {
    sl_channel_entry_kind_t kind;
    sl_buffer_t *buf;
    int64_t value;
} sl_channel_entry_t;

typedef struct sl_channel_s {
    pthread_mutex_t mu;
    sl_channel_entry_t *q; /* ring, power-of-two capacity */
    uint32_t cap;
    uint32_t head;
    uint32_t len;
    bool in_ready_queue; /* already pushed to the consumer's mailbox (or being drained by take) */
    atomic_int credit;
    sl_mailbox_t *consumer; /* woken when the channel becomes non-empty */
    sl_mailbox_t *producer; /* woken when credit comes back */
    uint32_t input;         /* consumer input index (0/1) */
    uint32_t index;         /* position among all input channels of the consumer task */
    /* Set before the channel is shared: every returned credit wakes the producer once, until
     * it calls sl_channel_credit_ack (a network thread forwarding credit to a remote peer). */
    bool credit_watch;
    atomic_bool credit_news; /* credit returned since the producer's last ack */
    /* Consumer-side view, touched only by the consumer thread. */
    int64_t watermark;
    bool idle;
    bool ended;
    /* Statistics, relaxed. */
    atomic_uint_fast64_t buffers_sent;
    /* Why the producer side failed (a remote producer lost), or NULL; set with the END that
     * follows it, so a consumer seeing END checks it and fails instead of finishing. */
    char *failure;
} sl_channel_t;

int sl_channel_init(sl_channel_t *c, uint32_t credit, sl_mailbox_t *producer, sl_mailbox_t *consumer,
                    uint32_t input, uint32_t index);
/* Recycles any buffers still queued. */
void sl_channel_destroy(sl_channel_t *c);

static inline bool sl_channel_has_credit(sl_channel_t *c) {
    return atomic_load_explicit(&c->credit, memory_order_acquire) > 0;
}
/* Producer: hands over a buffer; the caller has checked credit. Errors: SL_ENOMEM. */
int sl_channel_send(sl_channel_t *c, sl_buffer_t *buf);
/* Producer: enqueues an event (watermark, idle, end). */
int sl_channel_event(sl_channel_t *c, sl_channel_entry_kind_t kind, int64_t value);
/* Producer side (the network thread of a remote channel): ends the channel as failed. */
int sl_channel_fail(sl_channel_t *c, const char *msg);
/* Consumer: the failure message after an END, or NULL for a normal end. */
const char *sl_channel_failure(sl_channel_t *c);
/* Consumer: pops the next entry; returns 1, or 0 when empty. When the channel is left
 * non-empty it stays in the consumer's ready queue. */
int sl_channel_poll(sl_channel_t *c, sl_channel_entry_t *e);
/* Consumer, for an owner that tracks its channels itself instead of through the mailbox's
 * ready queue (the network thread): pops like sl_channel_poll but never re-queues the channel.
 * The consumer is notified again only after a take (or poll) found or left it empty, so the
 * caller must keep taking until it gets 0, or remember the channel is non-empty. */
int sl_channel_take(sl_channel_t *c, sl_channel_entry_t *e);
/* Consumer: a data buffer was fully processed: recycle it and return one credit. Wakes the
 * producer only when it may be waiting: credit was exhausted, or credit_watch is set and no
 * credit was returned since its last sl_channel_credit_ack. */
void sl_channel_release(sl_channel_t *c, sl_buffer_t *buf);
/* Producer with credit_watch: acknowledges the credit returned so far and returns the current
 * credit; the next release wakes the producer again. */
int sl_channel_credit_ack(sl_channel_t *c);
/* Number of queued entries (backlog), for metrics. */
uint32_t sl_channel_backlog(sl_channel_t *c);

#endif
