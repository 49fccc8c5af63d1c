/* Completed checkpoint store (Flink's CompletedCheckpointStore): keeps the last N completed checkpoints
 * (N = state.checkpoints.num-retained, default 1), subsumes older ones, and drives the shared state registry
 * so that shared files are deleted exactly when no retained checkpoint needs them any more.
 *
 * DESIGN
 *   The store holds checkpoint ids in ascending order, at most max_retained of them. add() registers the
 *   checkpoint's shared file names in the registry before appending; subsuming (or remove()) a checkpoint
 *   first discards the checkpoint itself (its chk-<id> directory, metadata included) and only then releases
 *   its shared references. That order matters across a crash: if we stop between the two steps, the
 *   checkpoint is gone from disk and its shared files are merely orphans; the reverse order could leave a
 *   chk-<id> on disk whose shared files were already deleted.
 *
 *   Restore: after a process restart, rebuild the store (with a fresh registry) by calling add() for every
 *   completed checkpoint found on disk, in ascending id order. That reproduces the reference counts exactly;
 *   if more than max_retained are found, the extra older ones are subsumed as they would have been. Deleting
 *   must never remove a file that a retained checkpoint needs: a shared file is deleted only when its count
 *   reaches zero, i.e. no retained checkpoint lists it (tests/unit/checkpoint/test_completed_store.c checks
 *   exactly this after a rebuild).
 *
 * Threads: not thread-safe; owned by the CheckpointCoordinator and used on its loop thread only.
 */
#ifndef SL_CHECKPOINT_COMPLETED_STORE_H
#define SL_CHECKPOINT_COMPLETED_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint/shared_registry.h"

/* Deletes checkpoint `checkpoint_id`'s own files (its chk-<id> directory). Returns 0 or a negative SL_E*
 * code; an already missing directory should count as deleted. Must not call back into the store. */
typedef int (*sl_completed_discard_cb)(void *arg, int64_t checkpoint_id);

/* Caller-owned; fields starting with `_` are private. */
typedef struct sl_completed_store_s {
    size_t _max_retained;
    sl_shared_registry_t *_registry; /* borrowed; must outlive the store */
    sl_completed_discard_cb _discard;
    void *_arg;
    int64_t *_ids; /* ascending, _len of them, _len <= _max_retained */
    size_t _len;
    int64_t _highest; /* highest id ever added; valid when _added */
    int _added;
    size_t _discard_failures;
} sl_completed_store_t;

/* Initializes an empty store keeping at most `max_retained` (>= 1) checkpoints. `registry` is borrowed and
 * must be initialized and outlive the store; the store is its only user of register/release. `discard` may be
 * NULL (checkpoint directories are then never deleted). Errors: SL_EINVAL (NULL s or registry,
 * max_retained == 0), SL_ENOMEM. After success, sl_completed_store_destroy() is mandatory. */
int sl_completed_store_init(sl_completed_store_t *s, size_t max_retained, sl_shared_registry_t *registry,
                            sl_completed_discard_cb discard, void *arg);

/* Frees the store's memory. Deletes no files and releases nothing in the registry: the checkpoints stay on
 * disk for the next attempt to restore from. destroy(NULL) is a no-op. */
void sl_completed_store_destroy(sl_completed_store_t *s);

/* Adds completed checkpoint `id`, which references the shared files `shared_names[0..n)` (borrowed; copied
 * by the registry; duplicates count once). If more than max_retained checkpoints are then retained, the
 * oldest is subsumed: discard callback, then registry release (deleting its shared files nobody else uses).
 * Returns 0 iff the checkpoint was added. A failure while cleaning up a subsumed checkpoint does not undo the
 * add (as in Flink, it only leaks storage): it is logged by whoever gave up on the file and counted in
 * sl_completed_store_discard_failures().
 * Errors (nothing changed): SL_EINVAL (NULL s, id not greater than every id added before, including
 * removed ones, or a bad name, see sl_shared_registry_register), SL_ENOMEM. */
int sl_completed_store_add(sl_completed_store_t *s, int64_t id, const char *const *shared_names, size_t n);

/* Removes retained checkpoint `id` even if it is not the oldest, e.g. because its restore failed
 * verification: discard callback, then registry release. The checkpoint is removed in every case except
 * SL_ENOENT; the return value is the first cleanup error, if any.
 * Errors: SL_EINVAL (NULL s), SL_ENOENT (not retained), or the discard error. */
int sl_completed_store_remove(sl_completed_store_t *s, int64_t id);

/* The newest retained checkpoint id in *id. Errors: SL_EINVAL (NULL args), SL_ENOENT (store empty). */
int sl_completed_store_latest(const sl_completed_store_t *s, int64_t *id);

/* Number of retained checkpoints. */
size_t sl_completed_store_count(const sl_completed_store_t *s);

/* Copies up to `max` retained ids, oldest first, into `out`; returns the number retained (which may exceed
 * max, like snprintf), so a caller can size its buffer. */
size_t sl_completed_store_ids(const sl_completed_store_t *s, int64_t *out, size_t max);

/* Number of cleanup steps (checkpoint discards and shared-file releases) that failed during add() since init. */
size_t sl_completed_store_discard_failures(const sl_completed_store_t *s);

#endif /* SL_CHECKPOINT_COMPLETED_STORE_H */
