/* Keyed process functions: one input (process) or two (co_process), with keyed state and
 * timers through <sluice/function.h>. The operator sets the current key for each record and
 * each timer, so user code only ever sees state of the key at hand. */
#include <sluice/error.h>

#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    sl_process_fn fn;
    sl_on_timer_fn on_timer;
    sl_collector_t collector;
} process_op_t;

static int process_open(sl_operator_t *op) {
    process_op_t *o = (process_op_t *)op;
    int rc = sl_operator_symbol(op, "fn", true, (void **)&o->fn);
    if (rc == 0)
        rc = sl_operator_symbol(op, "timer_fn", false, (void **)&o->on_timer);
    o->collector.out = op->out;
    o->collector.nfields = op->out_schema ? sl_schema_nfields(op->out_schema) : 0;
    return rc;
}

static int process_batch(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    process_op_t *o = (process_op_t *)op;
    bool keyed = op->key[input].nfields || op->key[input].fn;
    for (uint32_t i = 0; i < in->n; i++) {
        if (keyed) {
            int kg = sl_operator_set_key(op, input, &in->rows[i]);
            if (kg < 0)
                return kg;
        }
        o->collector.ts = in->ts[i];
        int rc = o->fn(&op->fn_ctx, input, &in->rows[i], in->ts[i], &o->collector);
        if (rc)
            return sl_operator_user_failed(op, "fn", rc);
    }
    return 0;
}

static int process_timer(sl_operator_t *op, sl_timer_domain_t d, const sl_timer_t *t) {
    process_op_t *o = (process_op_t *)op;
    if (o->on_timer == NULL)
        return 0;
    o->collector.ts = t->ts;
    int rc = o->on_timer(&op->fn_ctx, t->ts, &o->collector);
    return rc ? sl_operator_user_failed(op, "timer_fn", rc) : 0;
}

const sl_operator_vtable_t sl_op_process = {.kind = "process",
                                            .open = process_open,
                                            .process = process_batch,
                                            .timer = process_timer,
                                            .size = sizeof(process_op_t),
                                            .ninputs = 1,
                                            .keyed = true};
const sl_operator_vtable_t sl_op_co_process = {.kind = "co_process",
                                               .open = process_open,
                                               .process = process_batch,
                                               .timer = process_timer,
                                               .size = sizeof(process_op_t),
                                               .ninputs = 2,
                                               .keyed = true};
