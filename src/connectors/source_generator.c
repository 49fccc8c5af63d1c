/* Generator source: rows from a user function of a sequence number (sl_generator_fn).
 * Subtask k of P produces the numbers k, k+P, k+2P, ... so the sequence is split without
 * overlap, and a number always gives the same row, which makes the source replayable. */
#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>

#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    sl_generator_fn fn;
    uint64_t count; /* 0 = unbounded */
    uint64_t next;
} gen_op_t;

static int gen_open(sl_operator_t *op) {
    gen_op_t *o = (gen_op_t *)op;
    int64_t count;
    if (sl_params_int(op->params, "count", 0, &count) || count < 0)
        return sl_operator_fail(op, SL_EJOB, "parameter 'count' must be an integer >= 0");
    o->count = (uint64_t)count;
    o->next = op->subtask_index;
    return sl_operator_symbol(op, "fn", true, (void **)&o->fn);
}

static int gen_poll(sl_operator_t *op, uint32_t budget, bool *end) {
    gen_op_t *o = (gen_op_t *)op;
    for (uint32_t i = 0; i < budget; i++, o->next += op->parallelism) {
        if (o->count && o->next >= o->count) {
            *end = true;
            return 0;
        }
        int64_t ts = SL_TS_NONE;
        int rc = o->fn(&op->fn_ctx, o->next, sl_output_row(op->out), &ts);
        if (rc == 0) {
            *end = true;
            return 0;
        }
        if (rc < 0) {
            if (op->error && op->error[0] == '\0')
                sl_operator_fail(op, rc, "generator '%s' failed at %llu: %s", sl_params_get(op->params, "fn"),
                                 (unsigned long long)o->next, sl_strerror(rc));
            return rc;
        }
        if ((rc = sl_output_emit_built(op->out, ts)) != 0)
            return rc;
    }
    return 0;
}

static int gen_snapshot(sl_operator_t *op, uint64_t id, sl_op_extras_t *x) {
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)((gen_op_t *)op)->next);
    return sl_op_extras_set(x, "next", v);
}

static int gen_restore(sl_operator_t *op, uint64_t id, const sl_op_extras_t *x) {
    gen_op_t *o = (gen_op_t *)op;
    const char *v = sl_op_extras_get(x, "next");
    char *end;
    unsigned long long next = v ? strtoull(v, &end, 10) : 0;
    if (v == NULL || *end != '\0' || next % op->parallelism != op->subtask_index)
        return sl_operator_fail(op, SL_EPARSE, "checkpoint %llu: bad saved sequence number '%s'",
                                (unsigned long long)id, v ? v : "(none)");
    o->next = next;
    return 0;
}

const sl_operator_vtable_t sl_op_source_generator = {.kind = "source_generator",
                                                     .open = gen_open,
                                                     .source_poll = gen_poll,
                                                     .snapshot = gen_snapshot,
                                                     .restore = gen_restore,
                                                     .size = sizeof(gen_op_t),
                                                     .ninputs = 0};
