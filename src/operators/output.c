/* Operator output and chaining (see output.h). */
#include "operators/output.h"

#include <sluice/error.h>

#include "network/record_writer.h"
#include "operators/operator.h"

static int run_chained(sl_operator_t *op, uint32_t input, sl_batch_t *b);

int sl_output_init(sl_output_t *o, uint32_t nfields) {
    memset(o, 0, sizeof *o);
    sl_batch_init(&o->batch);
    sl_row_builder_init(&o->builder);
    o->nfields = nfields;
    o->last_watermark = SL_WATERMARK_MIN;
    return 0;
}

void sl_output_destroy(sl_output_t *o) {
    sl_batch_destroy(&o->batch);
    sl_row_builder_destroy(&o->builder);
}

int sl_output_add_next(sl_output_t *o, sl_operator_t *next, uint32_t input) {
    if (o->next == NULL) {
        o->next = next;
        o->next_input = input;
        return 0;
    }
    for (uint32_t i = 0; i < SL_OUTPUT_MAX_EXTRA; i++)
        if (o->extra_next[i] == NULL) {
            o->extra_next[i] = next;
            o->extra_next_input[i] = input;
            if (i >= o->nextra)
                o->nextra = i + 1;
            return 0;
        }
    return SL_ERANGE;
}

int sl_output_add_writer(sl_output_t *o, sl_record_writer_t *w) {
    if (o->writer == NULL) {
        o->writer = w;
        return 0;
    }
    for (uint32_t i = 0; i < SL_OUTPUT_MAX_EXTRA; i++)
        if (o->extra_writer[i] == NULL) {
            o->extra_writer[i] = w;
            if (i >= o->nextra)
                o->nextra = i + 1;
            return 0;
        }
    return SL_ERANGE;
}

int sl_operator_run_batch(sl_operator_t *op, uint32_t input, sl_batch_t *b) {
    return run_chained(op, input, b);
}

static int write_batch(sl_record_writer_t *w, const sl_batch_t *b) {
    int rc = 0;
    for (uint32_t i = 0; i < b->n && rc == 0; i++)
        rc = sl_record_writer_write(w, &b->rows[i], b->ts[i]);
    return rc;
}

static int forward_watermark(sl_operator_t *n, int64_t wm) {
    n->current_watermark = wm;
    int rc = n->vt->watermark ? n->vt->watermark(n, wm) : sl_operator_default_watermark(n, wm);
    if (rc == 0 && n->out)
        rc = sl_output_flush(n->out);
    return rc;
}

/* Runs `op` on a batch and pushes what it emitted further down the chain. */
static int run_chained(sl_operator_t *op, uint32_t input, sl_batch_t *b) {
    op->records_in += b->n;
    int rc = op->vt->process(op, input, b);
    if (rc == 0 && op->out)
        rc = sl_output_flush(op->out);
    return rc;
}

int sl_output_flush(sl_output_t *o) {
    sl_batch_t *b = &o->batch;
    if (b->n == 0)
        return 0;
    int rc = 0;
    if (o->next)
        rc = run_chained(o->next, o->next_input, b);
    if (rc == 0 && o->writer)
        rc = write_batch(o->writer, b);
    for (uint32_t i = 0; rc == 0 && i < o->nextra; i++) {
        if (o->extra_next[i])
            rc = run_chained(o->extra_next[i], o->extra_next_input[i], b);
        if (rc == 0 && o->extra_writer[i])
            rc = write_batch(o->extra_writer[i], b);
    }
    sl_batch_clear(b);
    return rc;
}

int sl_output_emit_copy(sl_output_t *o, const sl_row_t *row, int64_t ts) {
    uint8_t *p = sl_arena_alloc(&o->batch.arena, row->len);
    if (p == NULL)
        return SL_ENOMEM;
    memcpy(p, row->data, row->len);
    sl_row_t r = {p, row->len};
    return sl_output_push_row(o, &r, ts);
}

int sl_output_emit_built(sl_output_t *o, int64_t ts) {
    sl_row_t r;
    int rc = sl_row_builder_finish(&o->builder, &r);
    if (rc)
        return rc;
    return sl_output_emit_copy(o, &r, ts);
}

int sl_output_watermark(sl_output_t *o, int64_t wm) {
    int rc = sl_output_flush(o);
    if (rc)
        return rc;
    if (wm <= o->last_watermark)
        return 0;
    o->last_watermark = wm;
    if (o->next)
        rc = forward_watermark(o->next, wm);
    if (rc == 0 && o->writer)
        rc = sl_record_writer_event(o->writer, SL_CH_WATERMARK, wm);
    for (uint32_t i = 0; rc == 0 && i < o->nextra; i++) {
        if (o->extra_next[i])
            rc = forward_watermark(o->extra_next[i], wm);
        if (rc == 0 && o->extra_writer[i])
            rc = sl_record_writer_event(o->extra_writer[i], SL_CH_WATERMARK, wm);
    }
    return rc;
}
