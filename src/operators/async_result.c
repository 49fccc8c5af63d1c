/* Async I/O results: the tickets users complete from their own threads (see async_io.h).
 * Tickets are pooled per operator and keep their buffers, so a steady stream of requests
 * allocates nothing once the pool and buffers have grown to the working set. */
#include "operators/async_io.h"

#include <sluice/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

int sl_async_ticket_take(async_op_t *o, uint64_t seq, const sl_row_t *in, sl_async_result_t **out) {
    sl_async_result_t *t = o->free_tickets;
    if (t) {
        o->free_tickets = t->next;
    } else {
        if ((t = sl_calloc(1, sizeof *t)) == NULL)
            return SL_ENOMEM;
        sl_row_builder_init(&t->builder);
        t->op = o;
        t->all_next = o->all_tickets;
        o->all_tickets = t;
    }
    if (in->len > t->in_cap) {
        uint8_t *b = sl_realloc(t->in_buf, in->len);
        if (b == NULL) {
            sl_async_ticket_release(o, t);
            return SL_ENOMEM;
        }
        t->in_buf = b;
        t->in_cap = in->len;
    }
    memcpy(t->in_buf, in->data, in->len);
    t->input = (sl_row_t){t->in_buf, in->len};
    t->seq = seq;
    t->attempt = 1;
    t->orphaned = false;
    sl_async_ticket_reset(t);
    *out = t;
    return 0;
}

void sl_async_ticket_reset(sl_async_result_t *t) {
    t->next = NULL;
    t->status = 0;
    t->message[0] = '\0';
    t->rows_len = 0;
    t->nrows = 0;
    atomic_store_explicit(&t->done, false, memory_order_relaxed);
}

void sl_async_ticket_release(async_op_t *o, sl_async_result_t *t) {
    t->next = o->free_tickets;
    o->free_tickets = t;
}

void sl_async_tickets_free(async_op_t *o) {
    for (sl_async_result_t *t = o->all_tickets, *n; t; t = n) {
        n = t->all_next;
        sl_row_builder_destroy(&t->builder);
        sl_free(t->in_buf);
        sl_free(t->rows);
        sl_free(t->row_off);
        sl_free(t);
    }
    o->all_tickets = NULL;
    o->free_tickets = NULL;
}

/* ---- The public side: any thread ---- */

const sl_row_t *sl_async_result_input(const sl_async_result_t *r) { return &r->input; }

uint32_t sl_async_result_attempt(const sl_async_result_t *r) { return r->attempt; }

/* Written by open before any request, read after: the request's hand-off orders them. */
void *sl_async_result_user(const sl_async_result_t *r) { return r->op->user; }

uint32_t sl_async_result_nrows(const sl_async_result_t *r) { return r->nrows; }

sl_row_t sl_async_result_get(const sl_async_result_t *r, uint32_t i) {
    return i < r->nrows ? sl_async_ticket_row(r, i) : (sl_row_t){NULL, 0};
}

sl_row_builder_t *sl_async_result_row(sl_async_result_t *r) {
    const sl_schema_t *s = r->op->base.out_schema;
    sl_row_builder_start(&r->builder, s ? sl_schema_nfields(s) : 0);
    return &r->builder;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    uint32_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    void *n = sl_realloc(*p, (size_t)c * elem);
    if (n == NULL)
        return SL_ENOMEM;
    *p = n;
    *cap = c;
    return 0;
}

int sl_async_result_add(sl_async_result_t *r) {
    sl_row_t row;
    int rc = sl_row_builder_finish(&r->builder, &row);
    if (rc == 0)
        rc = grow((void **)&r->rows, &r->rows_cap, r->rows_len + row.len, 1);
    if (rc == 0)
        rc = grow((void **)&r->row_off, &r->row_off_cap, r->nrows + 2, sizeof *r->row_off);
    if (rc)
        return rc;
    memcpy(r->rows + r->rows_len, row.data, row.len);
    r->row_off[r->nrows] = r->rows_len;
    r->rows_len += row.len;
    r->row_off[++r->nrows] = r->rows_len;
    return 0;
}

void sl_async_complete(sl_async_result_t *r) {
    async_op_t *o = r->op;
    atomic_store_explicit(&r->done, true, memory_order_relaxed);
    /* Lock-free push; the release CAS publishes the rows to the task thread's acquire exchange. */
    sl_async_result_t *head = atomic_load_explicit(&o->completed, memory_order_relaxed);
    do {
        r->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&o->completed, &head, r, memory_order_release,
                                                    memory_order_relaxed));
    if (head == NULL) /* the first of a burst: later ones find the stack non-empty */
        sl_operator_request_service(&o->base);
}

void sl_async_complete_error(sl_async_result_t *r, int err, const char *fmt, ...) {
    r->status = err < 0 ? err : SL_EUSER;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    sl_async_complete(r);
}
