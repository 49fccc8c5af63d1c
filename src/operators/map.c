/* Stateless transformations calling user functions: map, filter and flatMap.
 * One indirect call per record into user code is inherent; the operator itself adds none:
 * rows are read in place and built into the output batch. */
#include <sluice/error.h>

#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    union {
        sl_map_fn map;
        sl_filter_fn filter;
        sl_flatmap_fn flat_map;
        void *any;
    } fn;
    sl_collector_t collector;
} fn_op_t;

static int fn_open(sl_operator_t *op) {
    fn_op_t *o = (fn_op_t *)op;
    int rc = sl_operator_symbol(op, "fn", true, &o->fn.any);
    if (rc)
        return rc;
    o->collector.out = op->out;
    o->collector.nfields = op->out_schema ? sl_schema_nfields(op->out_schema) : 0;
    return 0;
}

static int map_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    fn_op_t *o = (fn_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        sl_row_builder_t *b = sl_output_row(op->out);
        int rc = o->fn.map(&op->fn_ctx, &in->rows[i], b);
        if (rc == 0)
            rc = sl_output_emit_built(op->out, in->ts[i]);
        if (rc)
            return sl_operator_user_failed(op, "fn", rc);
    }
    return 0;
}

static int filter_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    fn_op_t *o = (fn_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        int keep = o->fn.filter(&op->fn_ctx, &in->rows[i]);
        if (keep < 0)
            return sl_operator_user_failed(op, "fn", keep);
        if (keep) {
            int rc = sl_output_emit_view(op->out, &in->rows[i], in->ts[i]);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int flat_map_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    fn_op_t *o = (fn_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        o->collector.ts = in->ts[i];
        int rc = o->fn.flat_map(&op->fn_ctx, &in->rows[i], &o->collector);
        if (rc)
            return sl_operator_user_failed(op, "fn", rc);
    }
    return 0;
}

const sl_operator_vtable_t sl_op_map = {
    .kind = "map", .open = fn_open, .process = map_process, .size = sizeof(fn_op_t), .ninputs = 1};
const sl_operator_vtable_t sl_op_filter = {
    .kind = "filter", .open = fn_open, .process = filter_process, .size = sizeof(fn_op_t), .ninputs = 1};
const sl_operator_vtable_t sl_op_flat_map = {
    .kind = "flat_map", .open = fn_open, .process = flat_map_process, .size = sizeof(fn_op_t), .ninputs = 1};
