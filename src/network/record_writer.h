/* Record writer: serializes rows into the buffers of a result partition's subpartitions.
 *
 * Wire format of a record inside a buffer (little endian):
 *     u32 row length | i64 event timestamp | row bytes (<sluice/row.h> layout)
 * A record that does not fit in the rest of a buffer starts a new one; only a record larger
 * than a whole buffer spans buffers (the reader reassembles it). A buffer goes to its channel
 * when full, on a flush (buffer timeout, 0 = after every record), and before every event, so
 * records never overtake a watermark.
 *
 * Thread: the producer subtask's thread only. */
#ifndef SL_NETWORK_RECORD_WRITER_H
#define SL_NETWORK_RECORD_WRITER_H

#include <sluice/row.h>

#include <stdint.h>

#include "network/buffer_pool.h"
#include "network/channel.h"

#define SL_RECORD_HEADER 12u

typedef enum {
    SL_PART_FORWARD = 0, /* one channel: the consumer with the same index */
    SL_PART_HASH,        /* by key group of the record's key */
    SL_PART_REBALANCE,   /* round robin */
    SL_PART_BROADCAST,   /* every channel */
} sl_partitioner_t;

/* Chooses the channel of a record for SL_PART_HASH. Returns the channel index or <0. */
typedef int (*sl_channel_selector_fn)(void *arg, const sl_row_t *row, uint32_t nchannels);

typedef struct sl_record_writer_s {
    sl_partitioner_t partitioner;
    uint32_t nchannels;
    sl_channel_t **channels; /* the array is owned (copied at init); channels are borrowed */
    sl_buffer_t **current;   /* the buffer being filled, per channel */
    sl_buffer_pool_t *pool;  /* owned */
    sl_mailbox_t *mailbox;   /* the producer's, to wait for credit */
    sl_channel_selector_fn select;
    void *select_arg;
    uint32_t next_rr;
    bool flush_every_record;
    uint64_t bytes_out;
    uint64_t records_out;
    uint64_t backpressured_ms; /* time spent waiting for credit */
} sl_record_writer_t;

/* Creates the writer and its buffer pool: nchannels * (credit + 1) buffers reserved from
 * `nm`, which is exactly what can be in flight, so waiting is only ever for credit.
 * Errors: SL_ENOBUFS, SL_ENOMEM. */
int sl_record_writer_init(sl_record_writer_t *w, sl_partitioner_t p, sl_channel_t **channels, uint32_t n,
                          uint32_t credit, sl_network_memory_t *nm, sl_mailbox_t *mailbox);
void sl_record_writer_destroy(sl_record_writer_t *w);

int sl_record_writer_write(sl_record_writer_t *w, const sl_row_t *row, int64_t ts);
/* Hands every partially filled buffer to its channel. */
int sl_record_writer_flush(sl_record_writer_t *w);
/* Flushes, then sends an event on every channel. */
int sl_record_writer_event(sl_record_writer_t *w, sl_channel_entry_kind_t kind, int64_t value);

/* ---- Reading ---- */
/* Per-channel reassembly of records that span buffers. */
typedef struct sl_record_reader_s {
    uint8_t *span;     /* partial record across buffers */
    uint32_t span_len; /* bytes gathered */
    uint32_t span_need; /* total bytes of the record (header included), 0 = none pending */
    uint32_t span_cap;
} sl_record_reader_t;

void sl_record_reader_destroy(sl_record_reader_t *r);
/* Reads the next record of `buf` from *pos. Returns 1 with row/ts set (the row points into
 * the buffer, or into the reader's span storage for a record completed across buffers, valid
 * until the next call), 0 at the end of the buffer, SL_EPROTO on a malformed buffer. */
int sl_record_reader_next(sl_record_reader_t *r, const sl_buffer_t *buf, uint32_t *pos, sl_row_t *row,
                          int64_t *ts);

#endif
