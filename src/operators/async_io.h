/* Internals of the async I/O operator, shared by its files: the operator (async_io.c), its
 * queue of requests (async_queue.c) and the results users complete from any thread
 * (async_result.c).
 *
 * DESIGN
 * Every request is an entry of a FIFO ring, in input order, with the watermarks that arrived
 * between records. An entry points at a result ("ticket") that owns a copy of the input row and
 * the output rows of the attempt; users complete tickets from their own threads by pushing them
 * onto a lock-free stack and signalling the task's mailbox when the stack was empty (one
 * signal per burst, not per result). The task thread drains the stack, retries, times out,
 * and emits: ordered mode from the head only; unordered mode any completed record before the
 * first queued watermark, then the watermark once everything before it is out. A timed-out
 * attempt's ticket is orphaned: the entry moves on with a fresh ticket, and the old one is
 * recycled when its late completion arrives, so a late answer never reaches the wrong entry. */
#ifndef SL_OPERATORS_ASYNC_IO_H
#define SL_OPERATORS_ASYNC_IO_H

#include <sluice/async.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "operators/operator.h"

struct sl_async_result_s {
    struct sl_async_result_s *next;      /* completion stack, free list */
    struct sl_async_result_s *all_next;  /* every ticket of the operator, for freeing */
    struct async_op_s *op;
    uint64_t seq;                        /* the entry it belongs to */
    uint32_t attempt;
    bool orphaned;                       /* timed out: its completion is dropped */
    atomic_bool done;
    /* Input copy. */
    uint8_t *in_buf;
    uint32_t in_cap;
    sl_row_t input;
    /* Outcome, written by the completing thread. */
    int status;
    char message[256];
    sl_row_builder_t builder;
    uint8_t *rows;                       /* output rows back to back */
    uint32_t rows_len, rows_cap;
    uint32_t *row_off;                   /* nrows + 1 offsets into rows */
    uint32_t nrows, row_off_cap;
};

typedef enum { ENTRY_PENDING = 0, ENTRY_RETRY_WAIT, ENTRY_DONE, ENTRY_EMITTED, ENTRY_WATERMARK } entry_state_t;

typedef struct async_entry_s {
    uint8_t state;              /* entry_state_t */
    int64_t ts;                 /* record timestamp, or the watermark */
    int64_t deadline;           /* monotonic ms: the whole request times out */
    int64_t retry_at;
    sl_async_result_t *ticket;  /* records only */
} async_entry_t;

typedef struct async_op_s {
    sl_operator_t base;
    sl_async_fn fn;
    sl_async_open_fn open_fn;
    sl_async_close_fn close_fn;
    sl_async_timeout_fn timeout_fn;
    sl_async_retry_if_fn retry_if;
    void *user;
    bool user_open;
    sl_async_mode_t mode;
    uint32_t capacity;
    int64_t timeout_ms;
    sl_async_retry_t retry;
    uint32_t max_attempts;
    int64_t retry_delay_ms, retry_max_delay_ms;
    double retry_multiplier;
    bool retry_on_error;
    /* The queue: entries seq in [head_seq, tail_seq) live at ring[seq & mask]. */
    async_entry_t *ring;
    uint32_t ring_mask;
    uint64_t head_seq, tail_seq;
    uint32_t in_flight;         /* records not emitted + queued watermarks: what capacity bounds */
    uint32_t retry_waiting;
    /* Completions from other threads. */
    _Atomic(sl_async_result_t *) completed;
    sl_async_result_t *free_tickets;
    sl_async_result_t *all_tickets;
    /* Counters. */
    uint64_t retries, timeouts;
} async_op_t;

/* ---- Results (async_result.c) ---- */
/* A ticket for entry `seq` holding a copy of `in`. SL_ENOMEM. */
int sl_async_ticket_take(async_op_t *o, uint64_t seq, const sl_row_t *in, sl_async_result_t **out);
/* Clears the outcome for another attempt (same input). */
void sl_async_ticket_reset(sl_async_result_t *t);
void sl_async_ticket_release(async_op_t *o, sl_async_result_t *t);
void sl_async_tickets_free(async_op_t *o);
/* Row i of a completed ticket. */
static inline sl_row_t sl_async_ticket_row(const sl_async_result_t *t, uint32_t i) {
    sl_row_t r = {t->rows + t->row_off[i], t->row_off[i + 1] - t->row_off[i]};
    return r;
}

/* ---- Queue (async_queue.c) ---- */
static inline async_entry_t *sl_async_entry(async_op_t *o, uint64_t seq) { return &o->ring[seq & o->ring_mask]; }
/* Appends an entry (growing the ring). SL_ENOMEM. */
int sl_async_queue_push(async_op_t *o, async_entry_t **out);
/* Emits what may go downstream now (ordered or unordered rules) and drops emitted entries. */
int sl_async_queue_emit(async_op_t *o);

#endif
