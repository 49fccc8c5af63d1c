/* The async I/O operator (kind "async"): calls a user async function per record with up to
 * `capacity` requests in flight, with timeouts, retries, ordered or unordered emission, and
 * the requests in flight saved in checkpoints (see async_io.h for the design). */
#include "operators/async_io.h"

#include <sluice/error.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/mailbox.h"

/* ---- Opening: parameters written by sl_stream_async (src/api/builder_async.c) ---- */

static int param_int(sl_operator_t *op, const char *key, int64_t def, int64_t min, int64_t *v) {
    int rc = sl_params_int(op->params, key, def, v);
    if (rc || *v < min)
        return sl_operator_fail(op, SL_EINVAL, "async '%s': parameter %s must be an integer >= %lld", op->name, key,
                                (long long)min);
    return 0;
}

static int open_params(async_op_t *o) {
    sl_operator_t *op = &o->base;
    const char *mode = sl_params_get(op->params, "mode");
    const char *retry = sl_params_get(op->params, "retry");
    int64_t cap, timeout, attempts, delay, max_delay, on_error;
    int rc = param_int(op, "capacity", 100, 1, &cap);
    if (rc == 0)
        rc = param_int(op, "timeout_ms", 10000, 1, &timeout);
    if (rc == 0)
        rc = param_int(op, "retry.max_attempts", 1, 1, &attempts);
    if (rc == 0)
        rc = param_int(op, "retry.delay_ms", 0, 0, &delay);
    if (rc == 0)
        rc = param_int(op, "retry.max_delay_ms", delay, 0, &max_delay);
    if (rc == 0)
        rc = param_int(op, "retry.on_error", 0, 0, &on_error);
    if (rc)
        return rc;
    const char *mult = sl_params_get(op->params, "retry.multiplier");
    o->retry_multiplier = mult ? strtod(mult, NULL) : 2.0;
    o->mode = mode && strcmp(mode, "unordered") == 0 ? SL_ASYNC_UNORDERED : SL_ASYNC_ORDERED;
    o->retry = retry == NULL || strcmp(retry, "none") == 0 ? SL_ASYNC_RETRY_NONE
               : strcmp(retry, "exponential") == 0        ? SL_ASYNC_RETRY_EXPONENTIAL
                                                          : SL_ASYNC_RETRY_FIXED;
    o->capacity = cap > UINT32_MAX / 4 ? UINT32_MAX / 4 : (uint32_t)cap;
    o->timeout_ms = timeout;
    o->max_attempts = o->retry == SL_ASYNC_RETRY_NONE ? 1 : (uint32_t)attempts;
    o->retry_delay_ms = delay;
    o->retry_max_delay_ms = max_delay;
    o->retry_on_error = on_error != 0;
    return 0;
}

static int async_open(sl_operator_t *op) {
    async_op_t *o = (async_op_t *)op;
    int rc = open_params(o);
    if (rc == 0)
        rc = sl_operator_symbol(op, "fn", true, (void **)&o->fn);
    if (rc == 0)
        rc = sl_operator_symbol(op, "open", false, (void **)&o->open_fn);
    if (rc == 0)
        rc = sl_operator_symbol(op, "close", false, (void **)&o->close_fn);
    if (rc == 0)
        rc = sl_operator_symbol(op, "on_timeout", false, (void **)&o->timeout_fn);
    if (rc == 0)
        rc = sl_operator_symbol(op, "retry_if", false, (void **)&o->retry_if);
    if (rc)
        return rc;
    if (o->open_fn) {
        if ((rc = o->open_fn(&op->fn_ctx, &o->user)) != 0)
            return sl_operator_user_failed(op, "open", rc);
    }
    o->user_open = true;
    return 0;
}

/* ---- Issuing requests ---- */

static int64_t retry_delay(const async_op_t *o, uint32_t failed_attempts) {
    if (o->retry != SL_ASYNC_RETRY_EXPONENTIAL)
        return o->retry_delay_ms;
    double d = (double)o->retry_delay_ms * pow(o->retry_multiplier, (double)(failed_attempts - 1));
    return d > (double)o->retry_max_delay_ms ? o->retry_max_delay_ms : (int64_t)d;
}

/* A failed call counts as an error completion of that attempt, handled by the next service. */
static void issue(async_op_t *o, sl_async_result_t *t) {
    int rc = o->fn(&o->base.fn_ctx, o->user, &t->input, t);
    if (rc < 0 && !atomic_load_explicit(&t->done, memory_order_relaxed)) {
        const char *msg = o->base.error[0] ? o->base.error : sl_strerror(rc);
        sl_async_complete_error(t, rc, "the async function failed to start the request: %.200s", msg);
        o->base.error[0] = '\0';
    }
}

static int admit(async_op_t *o, const sl_row_t *row, int64_t ts, uint32_t attempt, int64_t now) {
    async_entry_t *e;
    int rc = sl_async_queue_push(o, &e);
    if (rc)
        return rc;
    uint64_t seq = o->tail_seq - 1;
    if ((rc = sl_async_ticket_take(o, seq, row, &e->ticket)) != 0) {
        o->tail_seq--;
        return rc;
    }
    e->ticket->attempt = attempt;
    e->state = ENTRY_PENDING;
    e->ts = ts;
    e->deadline = now + o->timeout_ms;
    o->in_flight++;
    if (e->deadline < o->base.service_at)
        o->base.service_at = e->deadline;
    issue(o, e->ticket);
    return 0;
}

static int wait_for_room(async_op_t *o) {
    while (o->in_flight >= o->capacity) {
        int rc = sl_operator_wait_service(&o->base);
        if (rc)
            return rc;
    }
    return 0;
}

static int async_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    async_op_t *o = (async_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        int rc = wait_for_room(o);
        if (rc == 0)
            rc = admit(o, &in->rows[i], in->ts[i], 1, sl_monotonic_ms());
        if (rc)
            return rc;
    }
    op->records_in += in->n;
    return 0;
}

static int async_watermark(sl_operator_t *op, int64_t wm) {
    async_op_t *o = (async_op_t *)op;
    if (o->head_seq == o->tail_seq)
        return sl_output_watermark(op->out, wm);
    int rc = wait_for_room(o);
    async_entry_t *e;
    if (rc == 0 && (rc = sl_async_queue_push(o, &e)) == 0) {
        e->state = ENTRY_WATERMARK;
        e->ts = wm;
        o->in_flight++;
        rc = sl_async_queue_emit(o);
    }
    return rc;
}

/* ---- Service: completions, retries, timeouts, emission ---- */

static bool wants_retry(async_op_t *o, sl_async_result_t *t) {
    if (t->attempt >= o->max_attempts)
        return false;
    if (t->status)
        return o->retry_on_error;
    return o->retry_if && o->retry_if(&o->base.fn_ctx, t) > 0;
}

static int on_completed(async_op_t *o, sl_async_result_t *t, int64_t now) {
    if (t->orphaned) { /* the late answer of a timed-out attempt */
        sl_async_ticket_release(o, t);
        return 0;
    }
    async_entry_t *e = sl_async_entry(o, t->seq);
    if (wants_retry(o, t)) {
        o->retries++;
        e->state = ENTRY_RETRY_WAIT;
        e->retry_at = now + retry_delay(o, t->attempt);
        o->retry_waiting++;
        return 0;
    }
    if (t->status)
        return sl_operator_fail(&o->base, SL_EUSER, "async '%s': request failed after %u attempt%s: %s", o->base.name,
                                t->attempt, t->attempt == 1 ? "" : "s", t->message);
    e->state = ENTRY_DONE;
    return 0;
}

static int drain_completions(async_op_t *o, int64_t now) {
    sl_async_result_t *t = atomic_exchange_explicit(&o->completed, NULL, memory_order_acquire);
    /* The stack is newest first: reverse it so results are handled in completion order. */
    sl_async_result_t *rev = NULL;
    while (t) {
        sl_async_result_t *n = t->next;
        t->next = rev;
        rev = t;
        t = n;
    }
    int rc = 0;
    for (t = rev; t; t = rev) {
        rev = t->next;
        if (rc == 0)
            rc = on_completed(o, t, now);
    }
    return rc;
}

static int time_out(async_op_t *o, async_entry_t *e) {
    sl_async_result_t *old = e->ticket;
    o->timeouts++;
    if (o->timeout_fn == NULL)
        return sl_operator_fail(&o->base, SL_ETIMEDOUT, "async '%s': request timed out after %lld ms (attempt %u)",
                                o->base.name, (long long)o->timeout_ms, old->attempt);
    if (e->state == ENTRY_RETRY_WAIT) {
        o->retry_waiting--;
        sl_async_ticket_reset(old); /* not with the user: reuse it for the handler */
    } else {
        sl_async_result_t *fresh;
        int rc = sl_async_ticket_take(o, old->seq, &old->input, &fresh);
        if (rc)
            return rc;
        fresh->attempt = old->attempt;
        old->orphaned = true;
        e->ticket = fresh;
    }
    e->state = ENTRY_PENDING;
    e->deadline = INT64_MAX;
    sl_async_result_t *t = e->ticket;
    int rc = o->timeout_fn(&o->base.fn_ctx, o->user, &t->input, t);
    if (rc < 0)
        return sl_operator_user_failed(&o->base, "on_timeout", rc);
    if (!atomic_load_explicit(&t->done, memory_order_relaxed))
        return sl_operator_fail(&o->base, SL_EUSER, "async '%s': the timeout handler returned without completing "
                                "the result", o->base.name);
    return 0;
}

/* Timeouts and due retries; recomputes the next time something is due. */
static int run_timers(async_op_t *o, int64_t now) {
    int64_t next = INT64_MAX;
    int rc = 0;
    for (uint64_t s = o->head_seq; rc == 0 && s < o->tail_seq; s++) {
        async_entry_t *e = sl_async_entry(o, s);
        if (e->state != ENTRY_PENDING && e->state != ENTRY_RETRY_WAIT)
            continue;
        if (e->deadline <= now) {
            rc = time_out(o, e);
            continue;
        }
        if (e->state == ENTRY_RETRY_WAIT && e->retry_at <= now) {
            o->retry_waiting--;
            e->state = ENTRY_PENDING;
            uint32_t attempt = e->ticket->attempt + 1;
            sl_async_ticket_reset(e->ticket);
            e->ticket->attempt = attempt;
            issue(o, e->ticket);
        } else if (e->state == ENTRY_RETRY_WAIT && e->retry_at < next) {
            next = e->retry_at;
        }
        if (e->deadline < next)
            next = e->deadline;
    }
    o->base.service_at = next;
    return rc;
}

static int async_service(sl_operator_t *op, int64_t now) {
    async_op_t *o = (async_op_t *)op;
    int rc = drain_completions(o, now);
    if (rc == 0 && (now >= op->service_at || o->retry_waiting))
        rc = run_timers(o, now);
    if (rc == 0)
        rc = drain_completions(o, now); /* answers given synchronously by retries and handlers */
    return rc ? rc : sl_async_queue_emit(o);
}

static int async_finish(sl_operator_t *op) {
    async_op_t *o = (async_op_t *)op;
    int rc = async_service(op, sl_monotonic_ms());
    while (rc == 0 && o->head_seq < o->tail_seq)
        rc = sl_operator_wait_service(op);
    return rc;
}

static void async_close(sl_operator_t *op) {
    async_op_t *o = (async_op_t *)op;
    /* The user's client completes or abandons what it holds before its close returns. */
    if (o->user_open && o->close_fn)
        o->close_fn(&op->fn_ctx, o->user);
    sl_async_tickets_free(o);
    sl_free(o->ring);
    o->ring = NULL;
}

/* ---- Checkpoints: the queue's records (input rows, order, attempt) and watermarks ---- */

#define ASYNC_STATE_VERSION 1u

static int async_snapshot_state(sl_operator_t *op, uint64_t id, sl_bytes_t *out) {
    async_op_t *o = (async_op_t *)op;
    uint32_t n = 0;
    for (uint64_t s = o->head_seq; s < o->tail_seq; s++)
        n += sl_async_entry(o, s)->state != ENTRY_EMITTED;
    sl_bytes_put_u32(out, ASYNC_STATE_VERSION);
    sl_bytes_put_u32(out, n);
    for (uint64_t s = o->head_seq; s < o->tail_seq; s++) {
        const async_entry_t *e = sl_async_entry(o, s);
        if (e->state == ENTRY_EMITTED)
            continue;
        bool wm = e->state == ENTRY_WATERMARK;
        sl_bytes_put_u8(out, wm ? 1 : 0);
        sl_bytes_put_u64(out, (uint64_t)e->ts);
        if (!wm) {
            sl_bytes_put_u32(out, e->ticket->attempt);
            sl_bytes_put_u32(out, e->ticket->input.len);
            sl_bytes_put(out, e->ticket->input.data, e->ticket->input.len);
        }
    }
    return out->err;
}

static int restore_entry(async_op_t *o, sl_bytes_reader_t *r, int64_t now) {
    uint8_t kind = 0;
    uint64_t ts = 0;
    sl_bytes_get_u8(r, &kind);
    sl_bytes_get_u64(r, &ts);
    if (kind == 1) {
        async_entry_t *e;
        int rc = r->err ? r->err : sl_async_queue_push(o, &e);
        if (rc == 0) {
            e->state = ENTRY_WATERMARK;
            e->ts = (int64_t)ts;
            o->in_flight++;
        }
        return rc;
    }
    uint32_t attempt = 0, len = 0;
    const uint8_t *data = NULL;
    sl_bytes_get_u32(r, &attempt);
    sl_bytes_get_u32(r, &len);
    sl_bytes_get_view(r, len, &data);
    sl_row_t row = {data, len};
    if (r->err || kind != 0 || attempt == 0 || sl_row_validate(&row, o->base.in_schema[0]) != 0)
        return SL_EPARSE;
    /* The attempt that was in flight is made again: it never reported. */
    return admit(o, &row, (int64_t)ts, attempt, now);
}

static int async_restore_state(sl_operator_t *op, const uint8_t *data, size_t len) {
    async_op_t *o = (async_op_t *)op;
    sl_bytes_reader_t r;
    sl_bytes_reader_init(&r, data, len);
    uint32_t version = 0, n = 0;
    sl_bytes_get_u32(&r, &version);
    sl_bytes_get_u32(&r, &n);
    int rc = r.err || version != ASYNC_STATE_VERSION ? SL_EPARSE : 0;
    int64_t now = sl_monotonic_ms();
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = restore_entry(o, &r, now);
    if (rc == SL_EPARSE)
        return sl_operator_fail(op, rc, "async '%s': the saved requests in flight are malformed", op->name);
    return rc;
}

const sl_operator_vtable_t sl_op_async = {
    .kind = "async",
    .open = async_open,
    .process = async_process,
    .watermark = async_watermark,
    .finish = async_finish,
    .close = async_close,
    .service = async_service,
    .snapshot_state = async_snapshot_state,
    .restore_state = async_restore_state,
    .size = sizeof(async_op_t),
    .ninputs = 1,
};

sl_async_options_t sl_async_options_default(void) {
    return (sl_async_options_t){.mode = SL_ASYNC_ORDERED, .capacity = 100, .timeout_ms = 10000, .max_attempts = 1,
                                .retry_multiplier = 2.0};
}
