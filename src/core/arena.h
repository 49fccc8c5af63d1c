/* Bump allocator in chunks, reset as a whole. Rows produced while processing one batch live
 * here until the batch has gone downstream; reset keeps the first chunk, so steady state
 * allocates nothing. Not thread-safe. */
#ifndef SL_CORE_ARENA_H
#define SL_CORE_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_arena_chunk_s sl_arena_chunk_t;

typedef struct sl_arena_s {
    sl_arena_chunk_t *head; /* current chunk; older ones chained behind it */
    size_t chunk_size;
} sl_arena_t;

void sl_arena_init(sl_arena_t *a, size_t chunk_size);
void sl_arena_destroy(sl_arena_t *a);
/* 8-byte aligned memory valid until the next reset; NULL when out of memory. */
void *sl_arena_alloc(sl_arena_t *a, size_t size);
void sl_arena_reset(sl_arena_t *a);

#endif
