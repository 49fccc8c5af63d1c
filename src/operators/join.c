/* Keyed joins of two streams: window join (rows of both sides in the same tumbling or sliding
 * window, joined when the window fires) and interval join (right.ts within
 * [left.ts + lower, left.ts + upper], joined as rows arrive).
 *
 * Rows are buffered in list state as [i64 ts | row bytes]. A join function (sl_join_fn) builds
 * the output row, or without one the output is all left fields followed by all right fields.
 * Like Flink, the interval join drops rows behind the watermark and frees buffered rows once
 * the watermark guarantees they can match nothing more. */
#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"
#include "operators/operator.h"
#include "operators/window.h"

typedef struct {
    sl_operator_t base;
    sl_window_spec_t w;
    int64_t lower, upper;
    sl_join_fn fn;
    uint32_t side[2];          /* list states of the two inputs */
    sl_window_t panes[SL_WINDOW_MAX_PANES];
    uint8_t *buf;              /* scratch for [ts | row] entries and list rebuilds */
    uint32_t cap;
    uint64_t dropped_late;
} join_op_t;

static int reserve(join_op_t *o, uint32_t need) {
    if (need <= o->cap)
        return 0;
    uint32_t cap = need * 2;
    uint8_t *p = sl_realloc(o->buf, cap);
    if (p == NULL)
        return SL_ENOMEM;
    o->buf = p;
    o->cap = cap;
    return 0;
}

static int open_common(sl_operator_t *op) {
    join_op_t *o = (join_op_t *)op;
    int rc = sl_operator_symbol(op, "fn", false, (void **)&o->fn);
    if (rc == 0)
        rc = sl_state_register(op->state, "left", SL_STATE_LIST, &o->side[0]);
    return rc ? rc : sl_state_register(op->state, "right", SL_STATE_LIST, &o->side[1]);
}

static int emit_pair(join_op_t *o, const sl_row_t *l, const sl_row_t *r, int64_t ts) {
    sl_operator_t *op = &o->base;
    sl_row_builder_t *b = sl_output_row(op->out);
    if (o->fn) {
        int rc = o->fn(&op->fn_ctx, l, r, b);
        if (rc)
            return sl_operator_user_failed(op, "fn", rc);
    } else {
        uint32_t nl = sl_schema_nfields(op->in_schema[0]), nr = sl_schema_nfields(op->in_schema[1]);
        for (uint32_t i = 0; i < nl; i++)
            sl_row_copy_field(b, i, l, i, sl_schema_field(op->in_schema[0], i)->type);
        for (uint32_t i = 0; i < nr; i++)
            sl_row_copy_field(b, nl + i, r, i, sl_schema_field(op->in_schema[1], i)->type);
    }
    return sl_output_emit_built(op->out, ts);
}

static int add_entry(join_op_t *o, uint32_t input, const void *ns, uint32_t ns_len, const sl_row_t *r, int64_t ts) {
    int rc = reserve(o, 8 + r->len);
    if (rc)
        return rc;
    memcpy(o->buf, &ts, 8);
    memcpy(o->buf + 8, r->data, r->len);
    return sl_state_list_add(o->base.state, o->side[input], ns, ns_len, o->buf, 8 + r->len);
}

/* ---- window join ---- */

static int wjoin_open(sl_operator_t *op) {
    join_op_t *o = (join_op_t *)op;
    char err[256];
    int rc = sl_window_spec_from_params(op->params, &o->w, err, sizeof err);
    if (rc)
        return sl_operator_fail(op, rc, "%s", err);
    if (o->w.kind == SL_WINDOW_SESSION)
        return sl_operator_fail(op, SL_EJOB, "window join supports tumbling and sliding windows");
    return open_common(op);
}

static int wjoin_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    join_op_t *o = (join_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        int64_t ts = o->w.time == SL_TIME_EVENT ? in->ts[i] : op->now_ms();
        if (ts == SL_TS_NONE)
            return sl_operator_fail(op, SL_EINVAL, "a row has no event time: use sl_stream_watermarks() upstream");
        int rc = sl_operator_set_key(op, input, &in->rows[i]);
        if (rc < 0)
            return rc;
        uint32_t n = sl_window_assign(&o->w, ts, o->panes);
        for (uint32_t k = 0; k < n; k++) {
            if (o->w.time == SL_TIME_EVENT && o->panes[k].end - 1 <= op->current_watermark) {
                o->dropped_late++;
                continue;
            }
            int64_t ns[2] = {o->panes[k].start, o->panes[k].end};
            const sl_keyed_backend_t *s = op->state;
            rc = sl_timer_register(op->timers, o->w.time == SL_TIME_EVENT ? SL_TIMER_EVENT : SL_TIMER_PROC,
                                   ns[1] - 1, s->cur_key, s->cur_key_len, s->cur_kg, ns, sizeof ns);
            if (rc == 0)
                rc = add_entry(o, input, ns, sizeof ns, &in->rows[i], ts);
            if (rc)
                return rc;
        }
    }
    return 0;
}

typedef struct {
    join_op_t *o;
    const void *ns;
    uint32_t ns_len;
    sl_row_t left;
    int64_t ts;
} pair_ctx_t;

static int visit_right(void *arg, const void *uk, uint32_t uklen, const void *v, uint32_t len) {
    pair_ctx_t *p = arg;
    sl_row_t right = {(const uint8_t *)v + 8, len - 8};
    return emit_pair(p->o, &p->left, &right, p->ts);
}

static int visit_left(void *arg, const void *uk, uint32_t uklen, const void *v, uint32_t len) {
    pair_ctx_t *p = arg;
    p->left = (sl_row_t){(const uint8_t *)v + 8, len - 8};
    return sl_state_iterate(p->o->base.state, p->o->side[1], p->ns, p->ns_len, visit_right, p);
}

static int wjoin_timer(sl_operator_t *op, sl_timer_domain_t d, const sl_timer_t *t) {
    join_op_t *o = (join_op_t *)op;
    pair_ctx_t p = {o, t->ns, t->ns_len, {NULL, 0}, t->ts};
    int rc = sl_state_iterate(op->state, o->side[0], t->ns, t->ns_len, visit_left, &p);
    if (rc == 0)
        rc = sl_state_remove(op->state, o->side[0], t->ns, t->ns_len);
    return rc ? rc : sl_state_remove(op->state, o->side[1], t->ns, t->ns_len);
}

static int wjoin_finish(sl_operator_t *op) {
    join_op_t *o = (join_op_t *)op;
    return o->w.time == SL_TIME_PROCESSING ? sl_operator_fire_proc_timers(op, INT64_MAX) : 0;
}

/* ---- interval join ---- */

static int ijoin_open(sl_operator_t *op) {
    join_op_t *o = (join_op_t *)op;
    if (sl_params_int(op->params, "lower_ms", 0, &o->lower) || sl_params_int(op->params, "upper_ms", 0, &o->upper) ||
        o->lower > o->upper)
        return sl_operator_fail(op, SL_EJOB, "interval join needs integer lower_ms <= upper_ms");
    return open_common(op);
}

typedef struct {
    join_op_t *o;
    uint32_t input;    /* side of the new row */
    const sl_row_t *row;
    int64_t ts;
} probe_ctx_t;

static int probe(void *arg, const void *uk, uint32_t uklen, const void *v, uint32_t len) {
    probe_ctx_t *p = arg;
    int64_t ots;
    memcpy(&ots, v, 8);
    sl_row_t other = {(const uint8_t *)v + 8, len - 8};
    int64_t lts = p->input == 0 ? p->ts : ots, rts = p->input == 0 ? ots : p->ts;
    if (rts < lts + p->o->lower || rts > lts + p->o->upper)
        return 0;
    int64_t ts = lts > rts ? lts : rts;
    return p->input == 0 ? emit_pair(p->o, p->row, &other, ts) : emit_pair(p->o, &other, p->row, ts);
}

static int ijoin_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    join_op_t *o = (join_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        int64_t ts = in->ts[i];
        if (ts == SL_TS_NONE)
            return sl_operator_fail(op, SL_EINVAL, "a row has no event time: use sl_stream_watermarks() upstream");
        if (op->current_watermark != SL_WATERMARK_MIN && ts < op->current_watermark) {
            o->dropped_late++;
            continue;
        }
        int rc = sl_operator_set_key(op, input, &in->rows[i]);
        if (rc < 0)
            return rc;
        probe_ctx_t p = {o, input, &in->rows[i], ts};
        if ((rc = sl_state_iterate(op->state, o->side[1 - input], NULL, 0, probe, &p)) != 0)
            return rc;
        if ((rc = add_entry(o, input, NULL, 0, &in->rows[i], ts)) != 0)
            return rc;
        /* After this time no row of the other side can match this one. */
        int64_t expiry = input == 0 ? ts + o->upper : ts - o->lower;
        const sl_keyed_backend_t *s = op->state;
        if ((rc = sl_timer_register(op->timers, SL_TIMER_EVENT, expiry, s->cur_key, s->cur_key_len, s->cur_kg,
                                    NULL, 0)) != 0)
            return rc;
    }
    return 0;
}

typedef struct {
    join_op_t *o;
    uint32_t input;
    int64_t upto;
    uint32_t used;
    uint32_t kept;
    int err;
} sweep_ctx_t;

static int keep_live(void *arg, const void *uk, uint32_t uklen, const void *v, uint32_t len) {
    sweep_ctx_t *s = arg;
    int64_t ts;
    memcpy(&ts, v, 8);
    int64_t expiry = s->input == 0 ? ts + s->o->upper : ts - s->o->lower;
    if (expiry <= s->upto)
        return 0;
    if (reserve(s->o, s->used + 4 + len))
        return SL_ENOMEM;
    memcpy(s->o->buf + s->used, &len, 4);
    memcpy(s->o->buf + s->used + 4, v, len);
    s->used += 4 + len;
    s->kept++;
    return 0;
}

/* Rewrites each side's list without the rows that expired by `t->ts`. */
static int ijoin_timer(sl_operator_t *op, sl_timer_domain_t d, const sl_timer_t *t) {
    join_op_t *o = (join_op_t *)op;
    for (uint32_t side = 0; side < 2; side++) {
        sweep_ctx_t s = {o, side, t->ts, 0, 0, 0};
        int rc = sl_state_iterate(op->state, o->side[side], NULL, 0, keep_live, &s);
        if (rc == 0)
            rc = sl_state_remove(op->state, o->side[side], NULL, 0);
        for (uint32_t off = 0; rc == 0 && off < s.used;) {
            uint32_t len;
            memcpy(&len, o->buf + off, 4);
            rc = sl_state_list_add(op->state, o->side[side], NULL, 0, o->buf + off + 4, len);
            off += 4 + len;
        }
        if (rc)
            return rc;
    }
    return 0;
}

static void join_close(sl_operator_t *op) { sl_free(((join_op_t *)op)->buf); }

const sl_operator_vtable_t sl_op_window_join = {.kind = "window_join",
                                                .open = wjoin_open,
                                                .process = wjoin_process,
                                                .timer = wjoin_timer,
                                                .finish = wjoin_finish,
                                                .close = join_close,
                                                .size = sizeof(join_op_t),
                                                .ninputs = 2,
                                                .keyed = true};
const sl_operator_vtable_t sl_op_interval_join = {.kind = "interval_join",
                                                  .open = ijoin_open,
                                                  .process = ijoin_process,
                                                  .timer = ijoin_timer,
                                                  .close = join_close,
                                                  .size = sizeof(join_op_t),
                                                  .ninputs = 2,
                                                  .keyed = true};
