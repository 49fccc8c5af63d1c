/* A batch of rows with their event timestamps: the unit operators process.
 * Operators are called once per batch rather than once per record, so the indirect call
 * through the operator vtable costs little per record. */
#ifndef SL_OPERATORS_BATCH_H
#define SL_OPERATORS_BATCH_H

#include <sluice/row.h>

#include <stdint.h>

#include "core/arena.h"

#define SL_BATCH_CAPACITY 256
#define SL_TS_NONE INT64_MIN /* a record without an event timestamp */

typedef struct sl_batch_s {
    uint32_t n;
    sl_row_t rows[SL_BATCH_CAPACITY];
    int64_t ts[SL_BATCH_CAPACITY];
    sl_arena_t arena; /* bytes of rows copied into this batch */
} sl_batch_t;

static inline void sl_batch_init(sl_batch_t *b) {
    b->n = 0;
    sl_arena_init(&b->arena, 64 * 1024);
}
static inline void sl_batch_destroy(sl_batch_t *b) { sl_arena_destroy(&b->arena); }
static inline void sl_batch_clear(sl_batch_t *b) {
    b->n = 0;
    sl_arena_reset(&b->arena);
}

#endif
