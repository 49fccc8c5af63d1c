/* Operator output: collects emitted rows into a batch and hands them downstream, either to the
 * next operator of the chain (a direct call per batch) or to a record writer (the network).
 *
 * Rows emitted with sl_output_emit_view() are referenced, not copied: the caller guarantees
 * the bytes live until the current operator callback returns (rows of the input batch do).
 * sl_output_emit_copy() and the builder path copy into the batch arena. */
#ifndef SL_OPERATORS_OUTPUT_H
#define SL_OPERATORS_OUTPUT_H

#include <sluice/row.h>

#include <stdint.h>

#include "operators/batch.h"

struct sl_operator_s;
#define SL_OUTPUT_MAX_EXTRA 7
struct sl_record_writer_s;

typedef struct sl_output_s {
    sl_batch_t batch;
    sl_row_builder_t builder;
    uint32_t nfields;                 /* of the output schema */
    struct sl_operator_s *next;       /* chained operator, or NULL */
    uint32_t next_input;              /* which input of `next` this feeds */
    struct sl_record_writer_s *writer; /* network writer, or NULL (then next or a sink) */
    /* Further consumers when a stream fans out to several operators (rare). */
    uint32_t nextra;
    struct sl_operator_s *extra_next[SL_OUTPUT_MAX_EXTRA];
    uint32_t extra_next_input[SL_OUTPUT_MAX_EXTRA];
    struct sl_record_writer_s *extra_writer[SL_OUTPUT_MAX_EXTRA];
    uint64_t records_out;             /* read by the progress display (relaxed) */
    int64_t last_watermark;
} sl_output_t;

int sl_output_init(sl_output_t *o, uint32_t nfields);
/* Adds a consumer: a chained operator (with its input index) or a record writer.
 * Errors: SL_ERANGE past 1 + SL_OUTPUT_MAX_EXTRA consumers of each kind. */
int sl_output_add_next(sl_output_t *o, struct sl_operator_s *next, uint32_t input);
int sl_output_add_writer(sl_output_t *o, struct sl_record_writer_s *w);
/* Runs `op` on a batch, then pushes what it emitted down the chain. */
int sl_operator_run_batch(struct sl_operator_s *op, uint32_t input, sl_batch_t *b);
void sl_output_destroy(sl_output_t *o);

/* Pushes buffered rows downstream. Called by the chain driver after each operator call. */
int sl_output_flush(sl_output_t *o);

static inline int sl_output_push_row(sl_output_t *o, const sl_row_t *row, int64_t ts) {
    o->batch.rows[o->batch.n] = *row;
    o->batch.ts[o->batch.n] = ts;
    o->records_out++;
    if (++o->batch.n == SL_BATCH_CAPACITY)
        return sl_output_flush(o);
    return 0;
}

static inline int sl_output_emit_view(sl_output_t *o, const sl_row_t *row, int64_t ts) {
    return sl_output_push_row(o, row, ts);
}

int sl_output_emit_copy(sl_output_t *o, const sl_row_t *row, int64_t ts);

/* Starts a row of the output schema in the output's builder. */
static inline sl_row_builder_t *sl_output_row(sl_output_t *o) {
    sl_row_builder_start(&o->builder, o->nfields);
    return &o->builder;
}
/* Emits the row built since sl_output_row() (copied into the batch). */
int sl_output_emit_built(sl_output_t *o, int64_t ts);

/* Forwards a watermark: flushes rows first so they precede it. */
int sl_output_watermark(sl_output_t *o, int64_t wm);

#endif
