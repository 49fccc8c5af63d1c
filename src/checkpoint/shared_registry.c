/* Shared state registry (see shared_registry.h): reference counts of shared checkpoint files, keyed by
 * name in an open-addressing table, plus the per-checkpoint lists that let release() work by id alone. */
#include "checkpoint/shared_registry.h"

#include <stdlib.h>
#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"
#include "core/murmur.h"

struct sl__shared_entry_s {
    char *name; /* owned; NULL marks an empty slot */
    uint32_t hash;
    uint32_t count;
    uint64_t stamp; /* the register() call that last counted this name */
};

struct sl__shared_chk_s {
    int64_t id;
    size_t n;
    const char **names; /* distinct; borrowed from the name table (alive while counted) */
};

typedef struct sl__shared_entry_s entry_t;
typedef struct sl__shared_chk_s chk_t;

#define MIN_CAP 16

static uint32_t hash_name(const char *name) {
    return sl_murmur3_32(name, strlen(name), 0x5bd1e995u);
}

/* Returns the slot holding `name`, or the empty slot where it would go. The table is never full
 * (load <= 1/2), so the probe terminates. */
static size_t probe(const sl_shared_registry_t *r, const char *name, uint32_t h) {
    size_t mask = r->_cap - 1;
    size_t i = h & mask;
    while (r->_slots[i].name != NULL) {
        if (r->_slots[i].hash == h && strcmp(r->_slots[i].name, name) == 0) return i;
        i = (i + 1) & mask;
    }
    return i;
}

static entry_t *find(const sl_shared_registry_t *r, const char *name) {
    if (r->_cap == 0 || name == NULL) return NULL;
    size_t i = probe(r, name, hash_name(name));
    return r->_slots[i].name != NULL ? &r->_slots[i] : NULL;
}

/* Grows the table so that `want` names fit at load <= 1/2. Entries move, their strings do not,
 * so the checkpoint lists stay valid. */
static int reserve_names(sl_shared_registry_t *r, size_t want) {
    if (want * 2 <= r->_cap) return 0;
    size_t cap = r->_cap ? r->_cap : MIN_CAP;
    while (want * 2 > cap) {
        if (cap > SIZE_MAX / 2 / sizeof(entry_t)) return SL_ENOMEM;
        cap *= 2;
    }
    entry_t *slots = sl_calloc(cap, sizeof *slots);
    if (slots == NULL) return SL_ENOMEM;
    for (size_t i = 0; i < r->_cap; i++) {
        entry_t *e = &r->_slots[i];
        if (e->name == NULL) continue;
        size_t j = e->hash & (cap - 1);
        while (slots[j].name != NULL) j = (j + 1) & (cap - 1);
        slots[j] = *e;
    }
    sl_free(r->_slots);
    r->_slots = slots;
    r->_cap = cap;
    return 0;
}

/* Backward-shift deletion: later members of the probe run move up, so lookups never need tombstones. */
static void remove_slot(sl_shared_registry_t *r, size_t i) {
    size_t mask = r->_cap - 1;
    sl_free(r->_slots[i].name);
    for (size_t j = (i + 1) & mask; r->_slots[j].name != NULL; j = (j + 1) & mask) {
        size_t home = r->_slots[j].hash & mask;
        /* The entry at j may fill hole i only if its home is not cyclically within (i, j]. */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        r->_slots[i] = r->_slots[j];
        i = j;
    }
    memset(&r->_slots[i], 0, sizeof r->_slots[i]);
    r->_len--;
}

/* Slot of a name some checkpoint counted; its presence is an invariant, not an input check. */
static size_t slot_of(const sl_shared_registry_t *r, const char *name) {
    size_t i = probe(r, name, hash_name(name));
    SL_ASSERT(r->_slots[i].name != NULL); /* a checkpoint's names are counted, so present */
    return i;
}

/* Binary search in the sorted checkpoint array: index of `id`, or where it would be inserted. */
static size_t chk_lower_bound(const sl_shared_registry_t *r, int64_t id) {
    size_t lo = 0, hi = r->_nchks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->_chks[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int sl_shared_registry_init(sl_shared_registry_t *r, sl_shared_discard_cb discard, void *arg) {
    if (r == NULL) return SL_EINVAL;
    memset(r, 0, sizeof *r);
    r->_discard = discard;
    r->_arg = arg;
    return 0;
}

void sl_shared_registry_destroy(sl_shared_registry_t *r) {
    if (r == NULL) return;
    for (size_t i = 0; i < r->_cap; i++) sl_free(r->_slots[i].name);
    for (size_t i = 0; i < r->_nchks; i++) sl_free(r->_chks[i].names);
    sl_free(r->_slots);
    sl_free(r->_chks);
    memset(r, 0, sizeof *r);
}

/* Undoes the first `k` references counted by a failed register(); the names were counted only by it,
 * or by older checkpoints too, so nothing reaches zero that was referenced before: no file is deleted. */
static void unregister_names(sl_shared_registry_t *r, const char **names, size_t k) {
    for (size_t i = 0; i < k; i++) {
        size_t s = slot_of(r, names[i]);
        if (--r->_slots[s].count == 0) remove_slot(r, s);
    }
}

int sl_shared_registry_register(sl_shared_registry_t *r, int64_t checkpoint_id, const char *const *names,
                                size_t n) {
    if (r == NULL || (names == NULL && n > 0)) return SL_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (names[i] == NULL || names[i][0] == '\0') return SL_EINVAL;
    size_t pos = chk_lower_bound(r, checkpoint_id);
    if (pos < r->_nchks && r->_chks[pos].id == checkpoint_id) return SL_EINVAL;

    /* Allocate everything that can be allocated up front, so the counting loop below can fail only in
     * sl_strdup() and the rollback stays small. */
    if (n > SIZE_MAX / 2 - r->_len) return SL_ENOMEM;
    int err = reserve_names(r, r->_len + n);
    if (err) return err;
    if (r->_nchks == r->_chks_cap) {
        size_t cap = r->_chks_cap ? r->_chks_cap * 2 : 8;
        chk_t *chks = sl_realloc(r->_chks, cap * sizeof *chks);
        if (chks == NULL) return SL_ENOMEM;
        r->_chks = chks;
        r->_chks_cap = cap;
    }
    const char **list = NULL;
    if (n > 0) {
        list = sl_malloc(n * sizeof *list);
        if (list == NULL) return SL_ENOMEM;
    }

    uint64_t stamp = ++r->_stamp;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t h = hash_name(names[i]);
        size_t s = probe(r, names[i], h);
        entry_t *e = &r->_slots[s];
        if (e->name == NULL) {
            char *copy = sl_strdup(names[i]);
            if (copy == NULL) {
                unregister_names(r, list, k);
                sl_free(list);
                return SL_ENOMEM;
            }
            e->name = copy;
            e->hash = h;
            e->count = 0;
            e->stamp = 0;
            r->_len++;
        } else if (e->stamp == stamp) {
            continue; /* listed twice by this checkpoint: one reference */
        }
        SL_ASSERT(e->count < UINT32_MAX);
        e->count++;
        e->stamp = stamp;
        list[k++] = e->name;
    }

    memmove(&r->_chks[pos + 1], &r->_chks[pos], (r->_nchks - pos) * sizeof *r->_chks);
    r->_chks[pos] = (chk_t){.id = checkpoint_id, .n = k, .names = list};
    r->_nchks++;
    return 0;
}

int sl_shared_registry_release(sl_shared_registry_t *r, int64_t checkpoint_id) {
    if (r == NULL) return SL_EINVAL;
    size_t pos = chk_lower_bound(r, checkpoint_id);
    if (pos >= r->_nchks || r->_chks[pos].id != checkpoint_id) return SL_EINVAL;
    chk_t chk = r->_chks[pos];
    /* Unlink the record first, so the registry is consistent whatever the discard callback observes. */
    memmove(&r->_chks[pos], &r->_chks[pos + 1], (r->_nchks - pos - 1) * sizeof *r->_chks);
    r->_nchks--;

    int first_err = 0;
    for (size_t i = 0; i < chk.n; i++) {
        size_t s = slot_of(r, chk.names[i]);
        if (--r->_slots[s].count > 0) continue;
        /* Last reference gone: delete the file now, while the name string is still ours. */
        if (r->_discard != NULL) {
            int err = r->_discard(r->_arg, r->_slots[s].name);
            if (err != 0) {
                /* We give up on this file here (nothing references it, so it stays an orphan), hence the log. */
                SL_WARN("checkpoint %lld: could not discard shared file %s: %s", (long long)checkpoint_id,
                        r->_slots[s].name, sl_strerror(err));
                if (first_err == 0) first_err = err;
            }
        }
        remove_slot(r, s);
    }
    sl_free(chk.names);
    return first_err;
}

uint32_t sl_shared_registry_count(const sl_shared_registry_t *r, const char *name) {
    if (r == NULL) return 0;
    const entry_t *e = find(r, name);
    return e ? e->count : 0;
}

bool sl_shared_registry_is_referenced(const sl_shared_registry_t *r, const char *name) {
    return sl_shared_registry_count(r, name) > 0;
}

size_t sl_shared_registry_size(const sl_shared_registry_t *r) {
    return r ? r->_len : 0;
}

size_t sl_shared_registry_num_checkpoints(const sl_shared_registry_t *r) {
    return r ? r->_nchks : 0;
}

bool sl_shared_registry_has_checkpoint(const sl_shared_registry_t *r, int64_t checkpoint_id) {
    if (r == NULL) return false;
    size_t pos = chk_lower_bound(r, checkpoint_id);
    return pos < r->_nchks && r->_chks[pos].id == checkpoint_id;
}

int sl_shared_registry_validate(const sl_shared_registry_t *r) {
    if (r == NULL) return SL_EINVAL;
    if (r->_cap != 0 && (r->_cap & (r->_cap - 1)) != 0) return SL_EINVAL;
    if (r->_len * 2 > r->_cap) return SL_EINVAL;
    size_t live = 0;
    for (size_t i = 0; i < r->_cap; i++) {
        const entry_t *e = &r->_slots[i];
        if (e->name == NULL) continue;
        live++;
        if (e->count == 0 || e->hash != hash_name(e->name)) return SL_EINVAL;
        /* Reachable: no empty slot between its home and its position. */
        if (probe(r, e->name, e->hash) != i) return SL_EINVAL;
    }
    if (live != r->_len) return SL_EINVAL;

    uint32_t *seen = NULL;
    if (r->_cap > 0) {
        seen = sl_calloc(r->_cap, sizeof *seen);
        if (seen == NULL) return SL_ENOMEM;
    }
    int err = 0;
    for (size_t c = 0; c < r->_nchks && err == 0; c++) {
        if (c > 0 && r->_chks[c - 1].id >= r->_chks[c].id) err = SL_EINVAL;
        for (size_t i = 0; i < r->_chks[c].n && err == 0; i++) {
            const entry_t *e = find(r, r->_chks[c].names[i]);
            if (e == NULL || e->name != r->_chks[c].names[i]) err = SL_EINVAL;
            else seen[e - r->_slots]++;
        }
    }
    for (size_t i = 0; i < r->_cap && err == 0; i++)
        if (r->_slots[i].name != NULL && seen[i] != r->_slots[i].count) err = SL_EINVAL;
    sl_free(seen);
    return err;
}
