/* Shared state registry for incremental checkpoints (Flink's SharedStateRegistry).
 * Files uploaded once to `<job>/shared/` (e.g. RocksDB SST files) are referenced by every completed
 * checkpoint that still needs them; this table counts those references and deletes a file exactly
 * when the last retained checkpoint that references it is released.
 *
 * DESIGN
 *   name table    open-addressing hash table (linear probing, load <= 1/2, backward-shift deletion so
 *                 no tombstones) of name -> reference count. A name is present iff its count is > 0.
 *   checkpoints   array sorted by checkpoint id; each record lists the distinct names that checkpoint
 *                 registered, so release() works from the id alone. The listed strings are borrowed
 *                 from the name table, which keeps them alive while the checkpoint holds its reference.
 *
 *   count(name) == number of registered checkpoints whose list contains name   (sl_shared_registry_validate)
 *
 * Threads: not thread-safe. It belongs to the CheckpointCoordinator and is used only on its loop thread.
 */
#ifndef SL_CHECKPOINT_SHARED_REGISTRY_H
#define SL_CHECKPOINT_SHARED_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deletes the shared file `name` (borrowed for the call). Returns 0 or a negative SL_E* code; a file that is
 * already gone should count as deleted (return 0), so that a retried cleanup after a crash succeeds.
 * It must not call back into the registry. */
typedef int (*sl_shared_discard_cb)(void *arg, const char *name);

struct sl__shared_entry_s;
struct sl__shared_chk_s;

/* Caller-owned; fields starting with `_` are private. */
typedef struct sl_shared_registry_s {
    sl_shared_discard_cb _discard;
    void *_arg;
    struct sl__shared_entry_s *_slots; /* name table, _cap slots (power of two) or NULL */
    size_t _cap;
    size_t _len;    /* names with count > 0 */
    uint64_t _stamp; /* bumped per register() call; dedups names listed twice by one checkpoint */
    struct sl__shared_chk_s *_chks; /* sorted by id */
    size_t _nchks;
    size_t _chks_cap;
} sl_shared_registry_t;

/* Initializes an empty registry. `discard` may be NULL (nothing is ever deleted; useful in tests).
 * `arg` is passed back to `discard` unchanged. Does not allocate. Errors: SL_EINVAL if r is NULL.
 * After success, sl_shared_registry_destroy() is mandatory. */
int sl_shared_registry_init(sl_shared_registry_t *r, sl_shared_discard_cb discard, void *arg);

/* Frees the registry's memory. Deletes no files: the registry is rebuilt from the checkpoints on disk after
 * a restart, so forgetting the counts must not cost data. destroy(NULL) is a no-op. */
void sl_shared_registry_destroy(sl_shared_registry_t *r);

/* Called when checkpoint `checkpoint_id` COMPLETES: adds one reference to each of `names[0..n)`. A name listed
 * several times is counted once for this checkpoint. The names are copied (borrowed for the call).
 * All or nothing: on error no count changes.
 * Errors: SL_EINVAL (r NULL, names NULL with n > 0, a NULL or empty name, or checkpoint_id already registered),
 * SL_ENOMEM. */
int sl_shared_registry_register(sl_shared_registry_t *r, int64_t checkpoint_id, const char *const *names,
                                size_t n);

/* Called when checkpoint `checkpoint_id` is subsumed or discarded: removes one reference from each name it
 * registered. A name whose count reaches zero is passed to the discard callback exactly then, once, and removed
 * from the table.
 * If a discard fails, the name is removed anyway (nobody references it any more, so keeping it would only make a
 * later release delete it at a surprising time), the failure is logged, the remaining names are still
 * processed, and the first error is returned; the checkpoint is released in every case. The leaked file is an
 * orphan like those of aborted checkpoints: is_referenced() reports false for it.
 * Errors: SL_EINVAL (checkpoint_id not registered, e.g. released twice), or the first discard error. */
int sl_shared_registry_release(sl_shared_registry_t *r, int64_t checkpoint_id);

/* Number of registered checkpoints that reference `name` (0 if unknown or NULL). */
uint32_t sl_shared_registry_count(const sl_shared_registry_t *r, const char *name);

/* True iff some registered checkpoint references `name`. The coordinator uses it to delete files uploaded by
 * an aborted (never completed) checkpoint: a shared file nobody references is an orphan. */
bool sl_shared_registry_is_referenced(const sl_shared_registry_t *r, const char *name);

/* Number of distinct names with a count > 0. */
size_t sl_shared_registry_size(const sl_shared_registry_t *r);

/* Number of registered (not yet released) checkpoints. */
size_t sl_shared_registry_num_checkpoints(const sl_shared_registry_t *r);

/* True iff `checkpoint_id` is registered and not yet released. */
bool sl_shared_registry_has_checkpoint(const sl_shared_registry_t *r, int64_t checkpoint_id);

/* Checks every invariant above (hash table reachability, counts equal to the checkpoint lists, ids sorted).
 * For tests; O(names + references). Returns 0, SL_EINVAL if an invariant is broken, or SL_ENOMEM. */
int sl_shared_registry_validate(const sl_shared_registry_t *r);

#endif /* SL_CHECKPOINT_SHARED_REGISTRY_H */
