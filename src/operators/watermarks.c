/* Watermark generator: event time from a field, bounded out-of-orderness, idleness.
 *
 * Like Flink's assignTimestampsAndWatermarks with forBoundedOutOfOrderness: each record's
 * timestamp comes from `ts_field`; every auto-watermark interval (the task's tick) it emits
 * max_seen - delay when that advanced. Upstream watermarks are replaced by its own, except the
 * final one at end of input. With `idle_ms` > 0 a subtask that saw no record for that long
 * declares itself idle, so downstream operators stop waiting for it. */
#include <sluice/error.h>

#include "network/record_writer.h"
#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    uint32_t field;
    int64_t delay;
    int64_t idle_ms;
    int64_t max_ts;
    int64_t emitted;
    int64_t last_record_at; /* processing time of the last record */
    bool idle;
    bool seen_record;
} wm_op_t;

static int wm_open(sl_operator_t *op) {
    wm_op_t *o = (wm_op_t *)op;
    int64_t field, delay, idle;
    if (sl_params_int(op->params, "ts_field", -1, &field) || field < 0 ||
        (uint32_t)field >= sl_schema_nfields(op->in_schema[0]))
        return sl_operator_fail(op, SL_EJOB, "parameter 'ts_field' must be a field index");
    sl_type_t t = sl_schema_field(op->in_schema[0], (uint32_t)field)->type;
    if (t != SL_TYPE_TIMESTAMP && t != SL_TYPE_INT64)
        return sl_operator_fail(op, SL_EJOB, "event-time field must be a timestamp or int64, not %s",
                                sl_type_name(t));
    if (sl_params_int(op->params, "delay_ms", 0, &delay) || delay < 0)
        return sl_operator_fail(op, SL_EJOB, "parameter 'delay_ms' must be >= 0");
    if (sl_params_int(op->params, "idle_ms", 0, &idle) || idle < 0)
        return sl_operator_fail(op, SL_EJOB, "parameter 'idle_ms' must be >= 0");
    o->field = (uint32_t)field;
    o->delay = delay;
    o->idle_ms = idle;
    o->max_ts = INT64_MIN;
    o->emitted = INT64_MIN;
    o->last_record_at = op->now_ms();
    return 0;
}

static int wm_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    wm_op_t *o = (wm_op_t *)op;
    int64_t max = o->max_ts;
    for (uint32_t i = 0; i < in->n; i++) {
        const sl_row_t *r = &in->rows[i];
        int64_t ts = sl_row_is_null(r, o->field) ? SL_TS_NONE : sl_row_i64(r, o->field);
        if (ts > max)
            max = ts;
        int rc = sl_output_emit_view(op->out, r, ts);
        if (rc)
            return rc;
    }
    o->max_ts = max;
    if (in->n) {
        o->seen_record = true;
        o->last_record_at = -1; /* refreshed lazily by the next tick */
        o->idle = false;
    }
    return 0;
}

static int wm_tick(sl_operator_t *op, int64_t now) {
    wm_op_t *o = (wm_op_t *)op;
    if (o->last_record_at < 0)
        o->last_record_at = now;
    if (o->max_ts != INT64_MIN) {
        int64_t wm = o->max_ts - o->delay;
        if (wm > o->emitted) {
            o->emitted = wm;
            return sl_output_watermark(op->out, wm);
        }
    }
    if (o->idle_ms > 0 && !o->idle && now - o->last_record_at >= o->idle_ms) {
        o->idle = true;
        int rc = sl_output_flush(op->out);
        if (rc == 0 && op->out->writer)
            rc = sl_record_writer_event(op->out->writer, SL_CH_IDLE, 0);
        return rc;
    }
    return 0;
}

/* Upstream watermarks are ignored; the final one (end of input) passes. */
static int wm_watermark(sl_operator_t *op, int64_t wm) {
    if (wm == SL_WATERMARK_MAX)
        return sl_output_watermark(op->out, wm);
    return 0;
}

const sl_operator_vtable_t sl_op_watermarks = {.kind = "watermarks",
                                               .open = wm_open,
                                               .process = wm_process,
                                               .watermark = wm_watermark,
                                               .tick = wm_tick,
                                               .size = sizeof(wm_op_t),
                                               .ninputs = 1};
