/* The async I/O queue: requests and watermarks in arrival order, and the rules for what may
 * leave it (see async_io.h). Ordered mode emits from the head only. Unordered mode emits any
 * completed record of the first segment (records before the first queued watermark) and the
 * watermark once its segment is empty, so no record crosses a watermark either way. */
#include "operators/async_io.h"

#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"

static int grow_ring(async_op_t *o) {
    uint32_t cap = o->ring ? (o->ring_mask + 1) * 2 : 64;
    async_entry_t *r = sl_calloc(cap, sizeof *r);
    if (r == NULL)
        return SL_ENOMEM;
    for (uint64_t s = o->head_seq; s < o->tail_seq; s++)
        r[s & (cap - 1)] = *sl_async_entry(o, s);
    sl_free(o->ring);
    o->ring = r;
    o->ring_mask = cap - 1;
    return 0;
}

int sl_async_queue_push(async_op_t *o, async_entry_t **out) {
    if ((o->ring == NULL || o->tail_seq - o->head_seq > o->ring_mask) && grow_ring(o) != 0)
        return SL_ENOMEM;
    async_entry_t *e = sl_async_entry(o, o->tail_seq++);
    memset(e, 0, sizeof *e);
    *out = e;
    return 0;
}

static int emit_record(async_op_t *o, async_entry_t *e) {
    sl_async_result_t *t = e->ticket;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < t->nrows; i++) {
        sl_row_t row = sl_async_ticket_row(t, i);
        rc = sl_output_emit_copy(o->base.out, &row, e->ts);
    }
    sl_async_ticket_release(o, t);
    e->ticket = NULL;
    e->state = ENTRY_EMITTED;
    o->in_flight--;
    return rc;
}

static int emit_watermark(async_op_t *o, async_entry_t *e) {
    e->state = ENTRY_EMITTED;
    o->in_flight--;
    return sl_output_watermark(o->base.out, e->ts);
}

/* Drops emitted entries from the head. */
static void pop_emitted(async_op_t *o) {
    while (o->head_seq < o->tail_seq && sl_async_entry(o, o->head_seq)->state == ENTRY_EMITTED)
        o->head_seq++;
}

static int emit_ordered(async_op_t *o) {
    int rc = 0;
    while (rc == 0 && o->head_seq < o->tail_seq) {
        async_entry_t *e = sl_async_entry(o, o->head_seq);
        if (e->state == ENTRY_DONE)
            rc = emit_record(o, e);
        else if (e->state == ENTRY_WATERMARK)
            rc = emit_watermark(o, e);
        else
            break;
        o->head_seq++;
    }
    return rc;
}

static int emit_unordered(async_op_t *o) {
    int rc = 0;
    for (;;) {
        /* The first segment: emit what completed, stop at its watermark. */
        uint64_t s = o->head_seq;
        bool open = false;
        for (; rc == 0 && s < o->tail_seq; s++) {
            async_entry_t *e = sl_async_entry(o, s);
            if (e->state == ENTRY_WATERMARK)
                break;
            if (e->state == ENTRY_DONE)
                rc = emit_record(o, e);
            else if (e->state != ENTRY_EMITTED)
                open = true;
        }
        pop_emitted(o);
        if (rc || open || o->head_seq == o->tail_seq)
            return rc;
        /* The segment is empty: its watermark goes, and the next segment becomes first. */
        rc = emit_watermark(o, sl_async_entry(o, o->head_seq));
        pop_emitted(o);
    }
}

int sl_async_queue_emit(async_op_t *o) { return o->mode == SL_ASYNC_ORDERED ? emit_ordered(o) : emit_unordered(o); }
