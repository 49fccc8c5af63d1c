/* Chunked bump allocator (see arena.h). */
#include "core/arena.h"

#include "core/alloc.h"

struct sl_arena_chunk_s {
    sl_arena_chunk_t *next;
    size_t size;
    size_t used;
    _Alignas(8) unsigned char data[];
};

void sl_arena_init(sl_arena_t *a, size_t chunk_size) {
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 65536;
}

void sl_arena_destroy(sl_arena_t *a) {
    sl_arena_chunk_t *c = a->head;
    while (c) {
        sl_arena_chunk_t *n = c->next;
        sl_free(c);
        c = n;
    }
    a->head = NULL;
}

void *sl_arena_alloc(sl_arena_t *a, size_t size) {
    size = (size + 7u) & ~(size_t)7u;
    sl_arena_chunk_t *c = a->head;
    if (c == NULL || c->size - c->used < size) {
        size_t cs = size > a->chunk_size ? size : a->chunk_size;
        sl_arena_chunk_t *n = sl_malloc(sizeof *n + cs);
        if (n == NULL)
            return NULL;
        n->size = cs;
        n->used = 0;
        n->next = c;
        a->head = n;
        c = n;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

void sl_arena_reset(sl_arena_t *a) {
    sl_arena_chunk_t *c = a->head;
    if (c == NULL)
        return;
    /* Keep the oldest chunk (the tail): it is the regular size; oversized ones go. */
    sl_arena_chunk_t *keep = c;
    while (keep->next)
        keep = keep->next;
    while (c != keep) {
        sl_arena_chunk_t *n = c->next;
        sl_free(c);
        c = n;
    }
    keep->used = 0;
    a->head = keep;
}
