/* Projection: keeps a list of input fields, in a given order, without user code. */
#include <sluice/error.h>

#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    uint32_t fields[SL_ROW_MAX_FIELDS];
    sl_type_t types[SL_ROW_MAX_FIELDS];
    uint32_t n;
} project_op_t;

static int project_open(sl_operator_t *op) {
    project_op_t *o = (project_op_t *)op;
    int n = sl_params_int_list(op->params, "fields", o->fields, SL_ROW_MAX_FIELDS);
    if (n <= 0)
        return sl_operator_fail(op, SL_EJOB, "parameter 'fields' must list field indexes");
    for (int i = 0; i < n; i++) {
        const sl_field_t *f = sl_schema_field(op->in_schema[0], o->fields[i]);
        if (f == NULL)
            return sl_operator_fail(op, SL_EJOB, "field index %u out of range", o->fields[i]);
        o->types[i] = f->type;
    }
    o->n = (uint32_t)n;
    return 0;
}

static int project_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    project_op_t *o = (project_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        sl_row_builder_t *b = sl_output_row(op->out);
        for (uint32_t f = 0; f < o->n; f++)
            sl_row_copy_field(b, f, &in->rows[i], o->fields[f], o->types[f]);
        int rc = sl_output_emit_built(op->out, in->ts[i]);
        if (rc)
            return rc;
    }
    return 0;
}

const sl_operator_vtable_t sl_op_project = {
    .kind = "project", .open = project_open, .process = project_process, .size = sizeof(project_op_t),
    .ninputs = 1};
