/* Completed checkpoint store (see completed_store.h): the last N completed checkpoints in id order,
 * subsuming older ones through the discard callback and the shared state registry. */
#include "checkpoint/completed_store.h"

#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"

int sl_completed_store_init(sl_completed_store_t *s, size_t max_retained, sl_shared_registry_t *registry,
                            sl_completed_discard_cb discard, void *arg) {
    if (s == NULL || registry == NULL || max_retained == 0) return SL_EINVAL;
    if (max_retained > SIZE_MAX / sizeof(int64_t) - 1) return SL_EINVAL;
    memset(s, 0, sizeof *s);
    /* One spare slot: add() appends before subsuming, so N + 1 ids exist for a moment. Allocating it
     * here means add() never allocates in the store itself. */
    s->_ids = sl_malloc((max_retained + 1) * sizeof *s->_ids);
    if (s->_ids == NULL) return SL_ENOMEM;
    s->_max_retained = max_retained;
    s->_registry = registry;
    s->_discard = discard;
    s->_arg = arg;
    return 0;
}

void sl_completed_store_destroy(sl_completed_store_t *s) {
    if (s == NULL) return;
    sl_free(s->_ids);
    memset(s, 0, sizeof *s);
}

/* Deletes a checkpoint that has already been unlinked from _ids. The checkpoint's own directory goes first,
 * so a crash in between leaves orphaned shared files rather than a checkpoint missing its files. Both steps
 * run even if the first fails: the shared references must be dropped either way. Returns the first error. */
static int discard_checkpoint(sl_completed_store_t *s, int64_t id) {
    int first_err = 0;
    if (s->_discard != NULL) {
        int err = s->_discard(s->_arg, id);
        if (err != 0) {
            SL_WARN("could not discard checkpoint %lld: %s", (long long)id, sl_strerror(err));
            first_err = err;
        }
    }
    /* The registry logs the shared files it could not delete itself. */
    int err = sl_shared_registry_release(s->_registry, id);
    if (err != 0 && first_err == 0) first_err = err;
    return first_err;
}

int sl_completed_store_add(sl_completed_store_t *s, int64_t id, const char *const *shared_names, size_t n) {
    if (s == NULL) return SL_EINVAL;
    /* Checkpoint ids come from a monotonic counter; an id at or below one already seen means a stale
     * coordinator or an out-of-order rebuild, and accepting it would subsume the wrong checkpoint. */
    if (s->_added && id <= s->_highest) return SL_EINVAL;
    int err = sl_shared_registry_register(s->_registry, id, shared_names, n);
    if (err) return err;
    s->_ids[s->_len++] = id;
    s->_highest = id;
    s->_added = 1;

    while (s->_len > s->_max_retained) {
        int64_t oldest = s->_ids[0];
        memmove(&s->_ids[0], &s->_ids[1], (s->_len - 1) * sizeof *s->_ids);
        s->_len--;
        if (discard_checkpoint(s, oldest) != 0) s->_discard_failures++;
    }
    return 0;
}

int sl_completed_store_remove(sl_completed_store_t *s, int64_t id) {
    if (s == NULL) return SL_EINVAL;
    size_t i = 0;
    while (i < s->_len && s->_ids[i] != id) i++;
    if (i == s->_len) return SL_ENOENT;
    memmove(&s->_ids[i], &s->_ids[i + 1], (s->_len - i - 1) * sizeof *s->_ids);
    s->_len--;
    return discard_checkpoint(s, id);
}

int sl_completed_store_latest(const sl_completed_store_t *s, int64_t *id) {
    if (s == NULL || id == NULL) return SL_EINVAL;
    if (s->_len == 0) return SL_ENOENT;
    *id = s->_ids[s->_len - 1];
    return 0;
}

size_t sl_completed_store_count(const sl_completed_store_t *s) {
    return s ? s->_len : 0;
}

size_t sl_completed_store_ids(const sl_completed_store_t *s, int64_t *out, size_t max) {
    if (s == NULL) return 0;
    size_t k = s->_len < max ? s->_len : max;
    if (k > 0) memcpy(out, s->_ids, k * sizeof *out);
    return s->_len;
}

size_t sl_completed_store_discard_failures(const sl_completed_store_t *s) {
    return s ? s->_discard_failures : 0;
}
