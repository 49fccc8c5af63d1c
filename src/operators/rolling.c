/* Rolling aggregation and reduce on a keyed stream: per key one accumulator in value state,
 * updated and emitted for every input row (an updating result, like Flink's
 * keyBy().sum()/reduce()). */
#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"
#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    sl_agg_list_t aggs;
    uint32_t state;
    uint8_t *acc;
    sl_reduce_fn reduce;
    sl_row_builder_t scratch;
} rolling_op_t;

static int aggregate_open(sl_operator_t *op) {
    rolling_op_t *o = (rolling_op_t *)op;
    int rc = sl_operator_compile_aggs(op, &o->aggs);
    if (rc)
        return rc;
    if ((o->acc = sl_malloc(o->aggs.acc_size)) == NULL)
        return SL_ENOMEM;
    return sl_state_register(op->state, "acc", SL_STATE_VALUE, &o->state);
}

static int aggregate_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    rolling_op_t *o = (rolling_op_t *)op;
    uint32_t nkeys = op->key[0].nfields;
    for (uint32_t i = 0; i < in->n; i++) {
        const sl_row_t *r = &in->rows[i];
        int rc = sl_operator_set_key(op, 0, r);
        if (rc < 0)
            return rc;
        const void *v;
        uint32_t len;
        rc = sl_state_value_get(op->state, o->state, NULL, 0, &v, &len);
        if (rc < 0)
            return rc;
        if (rc == 1 && len == o->aggs.acc_size)
            memcpy(o->acc, v, len);
        else
            sl_agg_init(&o->aggs, o->acc);
        sl_agg_add(&o->aggs, o->acc, r);
        if ((rc = sl_state_value_put(op->state, o->state, NULL, 0, o->acc, o->aggs.acc_size)) != 0)
            return rc;
        sl_row_builder_t *b = sl_output_row(op->out);
        sl_operator_copy_key_fields(op, r, b);
        sl_agg_results(&o->aggs, o->acc, b, nkeys);
        if ((rc = sl_output_emit_built(op->out, in->ts[i])) != 0)
            return rc;
    }
    return 0;
}

static int reduce_open(sl_operator_t *op) {
    rolling_op_t *o = (rolling_op_t *)op;
    sl_row_builder_init(&o->scratch);
    int rc = sl_operator_symbol(op, "fn", true, (void **)&o->reduce);
    return rc ? rc : sl_state_register(op->state, "acc", SL_STATE_VALUE, &o->state);
}

static int reduce_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    rolling_op_t *o = (rolling_op_t *)op;
    uint32_t nf = sl_schema_nfields(op->in_schema[0]);
    for (uint32_t i = 0; i < in->n; i++) {
        const sl_row_t *r = &in->rows[i];
        int rc = sl_operator_set_key(op, 0, r);
        if (rc < 0)
            return rc;
        const void *v;
        uint32_t len;
        if ((rc = sl_state_value_get(op->state, o->state, NULL, 0, &v, &len)) < 0)
            return rc;
        sl_row_t result = *r;
        if (rc == 1) {
            sl_row_t acc = {v, len};
            sl_row_builder_start(&o->scratch, nf);
            if ((rc = o->reduce(&op->fn_ctx, &acc, r, &o->scratch)) != 0)
                return sl_operator_user_failed(op, "fn", rc);
            if ((rc = sl_row_builder_finish(&o->scratch, &result)) != 0)
                return sl_operator_fail(op, rc, "reduce function built an invalid row");
        }
        if ((rc = sl_state_value_put(op->state, o->state, NULL, 0, result.data, result.len)) != 0)
            return rc;
        if ((rc = sl_output_emit_copy(op->out, &result, in->ts[i])) != 0)
            return rc;
    }
    return 0;
}

static void rolling_close(sl_operator_t *op) {
    rolling_op_t *o = (rolling_op_t *)op;
    sl_free(o->acc);
    sl_row_builder_destroy(&o->scratch);
}

const sl_operator_vtable_t sl_op_aggregate = {.kind = "aggregate",
                                              .open = aggregate_open,
                                              .process = aggregate_process,
                                              .close = rolling_close,
                                              .size = sizeof(rolling_op_t),
                                              .ninputs = 1,
                                              .keyed = true};
const sl_operator_vtable_t sl_op_reduce = {.kind = "reduce",
                                           .open = reduce_open,
                                           .process = reduce_process,
                                           .close = rolling_close,
                                           .size = sizeof(rolling_op_t),
                                           .ninputs = 1,
                                           .keyed = true};
