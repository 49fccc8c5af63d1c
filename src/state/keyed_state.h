/* Keyed state backend: the interface every keyed operator keeps its state through.
 *
 * State is scoped by (current key, namespace) and partitioned by key group, so a snapshot
 * or a rescale moves whole key groups. Two implementations sit behind the vtable: the heap
 * backend (heap_backend.c: one hash table per key group and state) and, later, RocksDB
 * (key = key group | key | namespace, one column family per state).
 *
 * Thread: a backend belongs to one subtask and is used only by that subtask's thread.
 * Values and keys are opaque bytes; every pointer handed back is borrowed and valid until the
 * next call that modifies the same state.
 *
 * State TTL: a state marked with set_ttl holds values (list elements, map values) that start
 * with the processing time they expire at, an 8-byte host-order int64 (operators/fn_state.c).
 * A backend may then drop expired entries on its own: the heap backend a few at a time when
 * ttl_cleanup is called (Flink's incremental cleanup), RocksDB in its compactions (Flink's
 * compaction filter); snapshots leave them out. */
#ifndef SL_STATE_KEYED_STATE_H
#define SL_STATE_KEYED_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SL_STATE_VALUE = 0, /* one value per (key, namespace); reducing/aggregating build on it */
    SL_STATE_LIST,      /* an append-only list of values per (key, namespace) */
    SL_STATE_MAP,       /* a map user-key -> value per (key, namespace) */
} sl_state_kind_t;

typedef struct sl_keyed_backend_s sl_keyed_backend_t;

/* A processing-time clock in ms (an operator's now_ms). RocksDB calls it from its background
 * threads, so it must be callable from any thread. */
typedef int64_t (*sl_state_clock_fn)(void);

/* Entries the heap backend examines per ttl_cleanup call (Flink's cleanupIncrementally(5)). */
#define SL_STATE_TTL_CLEANUP_ENTRIES 5

/* Callback for iteration; returning non-zero stops the iteration and is returned by the
 * iterating call. For lists `ukey` is NULL. */
typedef int (*sl_state_visit_cb)(void *arg, const void *ukey, uint32_t ukey_len, const void *value,
                                 uint32_t value_len);

/* Callback for iterating every (key, namespace) of a state. */
typedef int (*sl_state_key_visit_cb)(void *arg, const void *key, uint32_t key_len, uint32_t key_group,
                                     const void *ns, uint32_t ns_len);

/* Callback for raw entries (snapshots): key group, key, namespace, user key (maps only). */
typedef int (*sl_state_entry_cb)(void *arg, uint32_t key_group, const void *key, uint32_t key_len, const void *ns,
                                 uint32_t ns_len, const void *uk, uint32_t uk_len, const void *val, uint32_t val_len);

typedef struct sl_keyed_backend_vtable_s {
    int (*register_state)(sl_keyed_backend_t *b, const char *name, sl_state_kind_t kind, uint32_t *id);
    int (*value_get)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                     const void **val, uint32_t *val_len);
    int (*value_put)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                     const void *val, uint32_t val_len);
    int (*remove)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len);
    /* Optional (NULL when values cannot be changed in place): a writable value of exactly
     * `len` bytes at (current key, ns), created zero-filled when absent or of another size
     * (then *created is true). Saves the second lookup of a get + put on the hot path. */
    int (*value_update)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, uint32_t len,
                        void **val, bool *created);
    /* Optional: the existing value at (current key, ns), writable in place (1), or 0 when
     * absent. The pointer is valid until the next call on the backend. */
    int (*value_mut)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, void **val,
                     uint32_t *len);
    int (*list_add)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                    const void *val, uint32_t val_len);
    int (*map_get)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                   const void *ukey, uint32_t ukey_len, const void **val, uint32_t *val_len);
    int (*map_put)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                   const void *ukey, uint32_t ukey_len, const void *val, uint32_t val_len);
    int (*map_remove)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                      const void *ukey, uint32_t ukey_len);
    int (*iterate)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                   sl_state_visit_cb cb, void *arg);
    int (*for_each_key)(sl_keyed_backend_t *b, uint32_t id, sl_state_key_visit_cb cb, void *arg);
    /* Snapshots and restores: every stored entry of state `id` as raw bytes (a list's value is
     * its [u32 len][bytes] elements; a map yields one entry per user key), in key-group order,
     * and the inverse. raw_put writes under the current key. */
    int (*for_each_entry)(sl_keyed_backend_t *b, uint32_t id, sl_state_entry_cb cb, void *arg);
    int (*raw_put)(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                   uint32_t uk_len, const void *val, uint32_t val_len);
    /* Marks state `id` as holding values behind an expiry prefix, read against `now_ms` (see
     * the top). Marking it again only replaces the clock. Errors: SL_EINVAL. */
    int (*set_ttl)(sl_keyed_backend_t *b, uint32_t id, sl_state_clock_fn now_ms);
    /* The clock set by set_ttl, NULL for a state without TTL. */
    sl_state_clock_fn (*ttl_clock)(const sl_keyed_backend_t *b, uint32_t id);
    /* Optional (NULL when the backend cleans up by itself): moves state `id`'s cleanup cursor
     * over at most SL_STATE_TTL_CLEANUP_ENTRIES entries, dropping those expired at `now`. O(1)
     * and allocation-free; a no-op for a state without TTL. Errors: SL_EINVAL. */
    int (*ttl_cleanup)(sl_keyed_backend_t *b, uint32_t id, int64_t now);
    size_t (*memory_bytes)(const sl_keyed_backend_t *b);
    /* Registered states: ids are 0..count-1. */
    uint32_t (*state_count)(const sl_keyed_backend_t *b);
    void (*state_info)(const sl_keyed_backend_t *b, uint32_t id, const char **name, sl_state_kind_t *kind);
    void (*destroy)(sl_keyed_backend_t *b);
} sl_keyed_backend_vtable_t;

struct sl_keyed_backend_s {
    const sl_keyed_backend_vtable_t *vt;
    uint32_t max_parallelism;
    uint32_t kg_first; /* first key group owned, inclusive */
    uint32_t kg_last;  /* last key group owned, inclusive */
    /* The current key, set by the task before it calls operator code for a record or timer.
     * Borrowed: the caller keeps the bytes alive while it calls state functions. */
    const uint8_t *cur_key;
    uint32_t cur_key_len;
    uint32_t cur_kg;
};

/* Creates a heap backend owning key groups [kg_first, kg_last] of `max_parallelism`.
 * Errors: SL_EINVAL, SL_ENOMEM. */
int sl_heap_backend_create(uint32_t max_parallelism, uint32_t kg_first, uint32_t kg_last,
                           sl_keyed_backend_t **out);

static inline void sl_keyed_backend_set_key(sl_keyed_backend_t *b, const void *key, uint32_t len,
                                            uint32_t kg) {
    b->cur_key = (const uint8_t *)key;
    b->cur_key_len = len;
    b->cur_kg = kg;
}

/* Registers a state by name (registering the same name and kind again returns the same id;
 * the same name with another kind is SL_EINVAL). */
static inline int sl_state_register(sl_keyed_backend_t *b, const char *name, sl_state_kind_t kind,
                                    uint32_t *id) {
    return b->vt->register_state(b, name, kind, id);
}
/* Value state. Returns 1 and sets *val when present, 0 when absent, <0 on error. */
static inline int sl_state_value_get(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                                     const void **val, uint32_t *val_len) {
    return b->vt->value_get(b, id, ns, ns_len, val, val_len);
}
static inline int sl_state_value_put(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                                     const void *val, uint32_t val_len) {
    return b->vt->value_put(b, id, ns, ns_len, val, val_len);
}
/* Removes the value, list or whole map at (current key, ns). Absent is not an error. */
static inline int sl_state_remove(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len) {
    return b->vt->remove(b, id, ns, ns_len);
}
static inline int sl_state_list_add(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                                    const void *val, uint32_t val_len) {
    return b->vt->list_add(b, id, ns, ns_len, val, val_len);
}
/* Map state get: 1 found, 0 absent, <0 error. */
static inline int sl_state_map_get(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                                   const void *uk, uint32_t uk_len, const void **val, uint32_t *val_len) {
    return b->vt->map_get(b, id, ns, ns_len, uk, uk_len, val, val_len);
}
static inline int sl_state_map_put(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                                   const void *uk, uint32_t uk_len, const void *val, uint32_t val_len) {
    return b->vt->map_put(b, id, ns, ns_len, uk, uk_len, val, val_len);
}
static inline int sl_state_map_remove(sl_keyed_backend_t *b, uint32_t id, const void *ns,
                                      uint32_t ns_len, const void *uk, uint32_t uk_len) {
    return b->vt->map_remove(b, id, ns, ns_len, uk, uk_len);
}
/* Visits the elements of a list (in insertion order) or the entries of a map at
 * (current key, ns). The callback must not modify the same state. */
static inline int sl_state_iterate(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len,
                                   sl_state_visit_cb cb, void *arg) {
    return b->vt->iterate(b, id, ns, ns_len, cb, arg);
}
/* Visits every (key, namespace) that has an entry in state `id`, in no particular order.
 * The callback must not modify the same state. */
static inline int sl_state_for_each_key(sl_keyed_backend_t *b, uint32_t id, sl_state_key_visit_cb cb,
                                        void *arg) {
    return b->vt->for_each_key(b, id, cb, arg);
}
static inline int sl_state_set_ttl(sl_keyed_backend_t *b, uint32_t id, sl_state_clock_fn now_ms) {
    return b->vt->set_ttl(b, id, now_ms);
}
static inline sl_state_clock_fn sl_state_ttl_clock(const sl_keyed_backend_t *b, uint32_t id) {
    return b->vt->ttl_clock(b, id);
}
/* One incremental cleanup step of a state with TTL (see the vtable); 0 on backends that clean
 * up by themselves. Call it before the access, so that what the access hands back stays valid. */
static inline int sl_state_ttl_cleanup(sl_keyed_backend_t *b, uint32_t id, int64_t now) {
    return b->vt->ttl_cleanup ? b->vt->ttl_cleanup(b, id, now) : 0;
}
static inline uint32_t sl_state_count(const sl_keyed_backend_t *b) { return b->vt->state_count(b); }
static inline void sl_state_info(const sl_keyed_backend_t *b, uint32_t id, const char **name, sl_state_kind_t *kind) {
    b->vt->state_info(b, id, name, kind);
}
static inline void sl_keyed_backend_destroy(sl_keyed_backend_t *b) {
    if (b != NULL)
        b->vt->destroy(b);
}

#endif /* SL_STATE_KEYED_STATE_H */
