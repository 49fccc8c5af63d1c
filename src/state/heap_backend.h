/* Copy-on-write snapshots of the heap keyed-state backend (Flink's CopyOnWriteStateMap idea).
 *
 * DESIGN
 * Opening a snapshot, on the task thread between records, copies the entry descriptors of
 * every table (block pointer and lengths, dense: one memory pass over the slot arrays, no
 * serialisation) and starts a new version. From then on the task never changes, reallocates
 * or frees a block of an older version while the snapshot is open: it copies the block first
 * (sl_bt_own and friends in byte_table.c) and retires the old one; a map's nested table is
 * copied whole on its first change, as Flink copies a heap map state's value. The snapshot's
 * thread therefore reads a frozen view while records keep flowing. Closing the snapshot (from
 * that thread) frees the descriptor copies and every retired block and table. At most one
 * snapshot is open per backend; the retire list is sized when the snapshot opens (one slot per
 * shared block, two per map entry), so retiring never allocates and never fails.
 *
 * Threads: open on the backend's thread; for_each_entry, state_info and close on any one
 * thread at a time while the backend's thread goes on using the backend. The backend must not
 * be destroyed while a snapshot is open. */
#ifndef SL_STATE_HEAP_BACKEND_H
#define SL_STATE_HEAP_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "state/keyed_state.h"

typedef struct sl_heap_snapshot_s sl_heap_snapshot_t;

/* True when `b` is a heap backend. */
bool sl_heap_backend_is(const sl_keyed_backend_t *b);

/* Backend's thread: opens a snapshot of the states registered now. Errors: SL_EAGAIN (one is
 * still open), SL_ENOMEM. */
int sl_heap_snapshot_open(sl_keyed_backend_t *b, sl_heap_snapshot_t **out);
uint32_t sl_heap_snapshot_state_count(const sl_heap_snapshot_t *s);
/* Name (borrowed until the backend is destroyed) and kind of state `id`. */
void sl_heap_snapshot_state_info(const sl_heap_snapshot_t *s, uint32_t id, const char **name,
                                 sl_state_kind_t *kind);
/* For a state with TTL: true and the time its expiry is read against (the clock when the
 * snapshot opened); false without TTL. */
bool sl_heap_snapshot_ttl_now(const sl_heap_snapshot_t *s, uint32_t id, int64_t *now);
/* Every entry of state `id` as it was when the snapshot opened, in the order the backend's
 * for_each_entry would have given them then (key group by key group). */
int sl_heap_snapshot_for_each_entry(sl_heap_snapshot_t *s, uint32_t id, sl_state_entry_cb cb, void *arg);
/* Ends the snapshot and frees what it kept alive. NULL is a no-op. */
void sl_heap_snapshot_close(sl_heap_snapshot_t *s);

/* A pointer's worth of storage beside the backend for its owner's record of the asynchronous
 * snapshot write in flight (the task executor keeps its writer thread there); the backend never
 * reads it. Backend's thread. */
void **sl_heap_backend_async_slot(sl_keyed_backend_t *b);

/* For tests: blocks and tables retired and still held by the open snapshot. */
uint32_t sl_heap_backend_retired(sl_keyed_backend_t *b);

#endif
