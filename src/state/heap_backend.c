/* Heap keyed-state backend: one hash table per (state, key group).
 *
 * DESIGN
 * A table maps (current key, namespace) to a value: for value state the bytes themselves,
 * for list state a sequence of [u32 length][bytes] appended in place, for map state a pointer
 * to a nested table of user key -> value. Partitioning by key group is what later lets a
 * snapshot write key group by key group and a restore hand whole key groups to another
 * subtask.
 *
 * Snapshots are copy-on-write (heap_backend.h): the tables of every state share one
 * sl_bt_cow_t, and a change to a block or a nested map that an open snapshot may read copies
 * it first.
 *
 * TTL cleanup (Flink's incremental cleanup): a state with TTL keeps a cursor (key group, slot,
 * slot of the nested map) that each ttl_cleanup call moves over a few entries, removing the
 * expired ones, so state that is never read again still goes away while the job touches that
 * state at all. The cursor is a position, not an iterator: inserts and removals in between
 * may make it skip or revisit an entry, which only delays that entry to the next round. Each
 * call looks at a bounded number of slots, so a large, mostly empty table costs the same per
 * call as a full one. Removing a whole entry retires a block a snapshot shares exactly as a
 * remove does; a change that would need a copy of shared bytes (dropping some elements of a
 * list, an entry of a map) waits for a round after the snapshot, so cleanup never allocates. */
#include "state/heap_backend.h"

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "state/byte_table.h"
#include "state/keyed_state.h"

#define MAX_STATES 256

/* Slots a ttl_cleanup call may look at, empty ones and key-group hops included: the bound
 * that keeps a call O(1) however sparse the tables are. */
#define TTL_CLEANUP_SLOTS 64

typedef struct {
    char *name;
    sl_state_kind_t kind;
    sl_byte_table_t *tables; /* one per owned key group */
    /* TTL (keyed_state.h): the clock, or NULL; and the cleanup cursor. */
    sl_state_clock_fn ttl;
    uint32_t cur_g, cur_i, cur_j;
} heap_state_t;

/* A retired item: a block, or a nested map table with the low bit set. */
#define RETIRED_MAP ((uintptr_t)1)

typedef struct {
    sl_keyed_backend_t base;
    heap_state_t states[MAX_STATES];
    uint32_t nstates;
    uint32_t ngroups;
    sl_bt_cow_t cow; /* the backend's thread's; shared by every state's tables */
    void *async_slot;
    /* Guarded by lock: the snapshot thread closes while the backend's thread retires. */
    pthread_mutex_t lock;
    /* Written under lock; atomic so that TTL cleanup can tell a closed snapshot from an open
     * one without taking the lock. */
    atomic_bool snap_open;
    uintptr_t *retired;
    size_t nretired, retired_cap;
} heap_backend_t;

/* A snapshot's view: the entries of state s, key group g are entries[start[s * ngroups + g]
 * .. start[s * ngroups + g + 1]). */
typedef struct {
    const uint8_t *block;
    uint32_t klen;
    uint32_t vlen;
} snap_entry_t;

struct sl_heap_snapshot_s {
    heap_backend_t *h;
    uint32_t nstates;
    snap_entry_t *entries;
    size_t *start;
    int64_t *ttl_now; /* per state: the time its TTL was read against at open, or INT64_MIN */
};

static heap_backend_t *hb(sl_keyed_backend_t *b) { return (heap_backend_t *)b; }

static void free_map_table(sl_byte_table_t *m) {
    sl_bt_destroy(m);
    sl_free(m);
}

static void free_retired(uintptr_t item) {
    if (item & RETIRED_MAP)
        free_map_table((sl_byte_table_t *)(item & ~RETIRED_MAP));
    else
        sl_free((void *)item);
}

/* Backend's thread: an item the live tables no longer reference. While the snapshot is open
 * it keeps the item; after it closed, the item is freed now and copying stops. */
static void retire_item(heap_backend_t *h, uintptr_t item) {
    pthread_mutex_lock(&h->lock);
    if (h->snap_open) {
        SL_ASSERT(h->nretired < h->retired_cap);
        h->retired[h->nretired++] = item;
        pthread_mutex_unlock(&h->lock);
        return;
    }
    pthread_mutex_unlock(&h->lock);
    h->cow.snap_version = 0;
    free_retired(item);
}

static void retire_block(sl_bt_cow_t *cow, void *block) {
    heap_backend_t *h = (heap_backend_t *)((char *)cow - offsetof(heap_backend_t, cow));
    retire_item(h, (uintptr_t)block);
}

static int register_state(sl_keyed_backend_t *b, const char *name, sl_state_kind_t kind, uint32_t *id) {
    heap_backend_t *h = hb(b);
    for (uint32_t i = 0; i < h->nstates; i++)
        if (strcmp(h->states[i].name, name) == 0) {
            if (h->states[i].kind != kind)
                return SL_EINVAL;
            *id = i;
            return 0;
        }
    if (h->nstates == MAX_STATES)
        return SL_ERANGE;
    heap_state_t *s = &h->states[h->nstates];
    s->name = sl_strdup(name);
    s->tables = sl_calloc(h->ngroups, sizeof *s->tables);
    if (s->name == NULL || s->tables == NULL) {
        sl_free(s->name);
        sl_free(s->tables);
        memset(s, 0, sizeof *s);
        return SL_ENOMEM;
    }
    for (uint32_t g = 0; g < h->ngroups; g++)
        s->tables[g].cow = &h->cow;
    s->kind = kind;
    *id = h->nstates++;
    return 0;
}

/* The table of state `id` for the current key's group, checking kind and ownership. */
static int table_for(sl_keyed_backend_t *b, uint32_t id, sl_state_kind_t kind, sl_byte_table_t **t) {
    heap_backend_t *h = hb(b);
    if (id >= h->nstates || h->states[id].kind != kind || b->cur_kg < b->kg_first || b->cur_kg > b->kg_last)
        return SL_EINVAL;
    *t = &h->states[id].tables[b->cur_kg - b->kg_first];
    return 0;
}

static sl_bt_entry_t *lookup(sl_keyed_backend_t *b, sl_byte_table_t *t, const void *ns, uint32_t ns_len) {
    uint64_t hash = sl_bt_hash(b->cur_key, b->cur_key_len, ns, ns_len);
    return sl_bt_find(t, hash, b->cur_key, b->cur_key_len, ns, ns_len);
}

static int upsert(sl_keyed_backend_t *b, sl_byte_table_t *t, const void *ns, uint32_t ns_len, sl_bt_entry_t **e) {
    uint64_t hash = sl_bt_hash(b->cur_key, b->cur_key_len, ns, ns_len);
    return sl_bt_upsert(t, hash, b->cur_key, b->cur_key_len, ns, ns_len, e);
}

static int value_mut(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, void **val,
                     uint32_t *len) {
    sl_byte_table_t *t;
    int rc = table_for(b, id, SL_STATE_VALUE, &t);
    if (rc)
        return rc;
    sl_bt_entry_t *e = lookup(b, t, ns, ns_len);
    if (e == NULL)
        return 0;
    if ((rc = sl_bt_own(t, e)) != 0) /* the caller writes in place */
        return rc;
    *val = sl_bt_value(e);
    *len = e->vlen;
    return 1;
}

static int value_get(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void **val,
                     uint32_t *len) {
    sl_byte_table_t *t;
    int rc = table_for(b, id, SL_STATE_VALUE, &t);
    if (rc)
        return rc;
    sl_bt_entry_t *e = lookup(b, t, ns, ns_len);
    if (e == NULL)
        return 0;
    *val = sl_bt_value(e);
    *len = e->vlen;
    return 1;
}

static int value_put(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *val,
                     uint32_t len) {
    sl_byte_table_t *t;
    sl_bt_entry_t *e;
    int rc = table_for(b, id, SL_STATE_VALUE, &t);
    if (rc == 0)
        rc = upsert(b, t, ns, ns_len, &e);
    if (rc == 0 && (rc = sl_bt_set_value(t, e, val, len)) != 0 && e->vlen == 0)
        sl_bt_remove(t, e); /* a fresh entry whose value could not be stored */
    return rc;
}

static int value_update(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, uint32_t len,
                        void **val, bool *created) {
    sl_byte_table_t *t;
    sl_bt_entry_t *e;
    int rc = table_for(b, id, SL_STATE_VALUE, &t);
    if (rc == 0)
        rc = upsert(b, t, ns, ns_len, &e);
    if (rc)
        return rc;
    *created = e->vlen != len;
    if (*created) {
        uint8_t small[64] = {0};
        uint8_t *zero = len <= sizeof small ? small : sl_calloc(1, len);
        rc = zero ? sl_bt_set_value(t, e, zero, len) : SL_ENOMEM;
        if (zero != small)
            sl_free(zero);
        if (rc) {
            if (e->vlen == 0)
                sl_bt_remove(t, e); /* a fresh entry whose value could not be stored */
            return rc;
        }
    } else if ((rc = sl_bt_own(t, e)) != 0) { /* the caller writes in place */
        return rc;
    }
    *val = sl_bt_value(e);
    return 0;
}


/* Frees the nested table of a map entry about to be removed, or retires it when an open
 * snapshot may read it. */
static void drop_map(sl_byte_table_t *t, sl_bt_entry_t *e) {
    sl_byte_table_t *m;
    memcpy(&m, sl_bt_value(e), sizeof m);
    if (sl_bt_shared(t, e))
        retire_item((heap_backend_t *)((char *)t->cow - offsetof(heap_backend_t, cow)), (uintptr_t)m | RETIRED_MAP);
    else
        free_map_table(m);
}

static int state_remove(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len) {
    heap_backend_t *h = hb(b);
    if (id >= h->nstates)
        return SL_EINVAL;
    sl_byte_table_t *t;
    int rc = table_for(b, id, h->states[id].kind, &t);
    if (rc)
        return rc;
    sl_bt_entry_t *e = lookup(b, t, ns, ns_len);
    if (e) {
        if (h->states[id].kind == SL_STATE_MAP)
            drop_map(t, e);
        sl_bt_remove(t, e);
    }
    return 0;
}

static int list_add(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *val,
                    uint32_t len) {
    sl_byte_table_t *t;
    sl_bt_entry_t *e;
    int rc = table_for(b, id, SL_STATE_LIST, &t);
    if (rc == 0)
        rc = upsert(b, t, ns, ns_len, &e);
    if (rc)
        return rc;
    uint32_t old = e->vlen;
    if ((rc = sl_bt_append(t, e, &len, 4)) == 0 && (rc = sl_bt_append(t, e, val, len)) != 0)
        e->vlen = old;
    if (rc && e->vlen == 0)
        sl_bt_remove(t, e);
    return rc;
}

/* The nested table of a map entry, created on demand when `create`. With `write`, a table an
 * open snapshot may read is first replaced by a copy (the old one is retired). */
static int map_of(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, bool create, bool write,
                  sl_byte_table_t **out) {
    sl_byte_table_t *t;
    int rc = table_for(b, id, SL_STATE_MAP, &t);
    if (rc)
        return rc;
    *out = NULL;
    sl_bt_entry_t *e = lookup(b, t, ns, ns_len);
    if (e == NULL && !create)
        return 0;
    if (e == NULL) {
        sl_byte_table_t *m = sl_calloc(1, sizeof *m);
        if (m == NULL)
            return SL_ENOMEM;
        if ((rc = upsert(b, t, ns, ns_len, &e)) != 0 || (rc = sl_bt_set_value(t, e, &m, sizeof m)) != 0) {
            if (rc && e && e->vlen == 0)
                sl_bt_remove(t, e);
            sl_free(m);
            return rc;
        }
    } else if (write && sl_bt_shared(t, e)) {
        sl_byte_table_t *old, *m = sl_malloc(sizeof *m);
        memcpy(&old, sl_bt_value(e), sizeof old);
        if (m == NULL || (rc = sl_bt_copy(m, old)) != 0) {
            sl_free(m);
            return SL_ENOMEM;
        }
        if ((rc = sl_bt_set_value(t, e, &m, sizeof m)) != 0) { /* copies the entry's block */
            free_map_table(m);
            return rc;
        }
        retire_item(hb(b), (uintptr_t)old | RETIRED_MAP);
    }
    memcpy(out, sl_bt_value(e), sizeof *out);
    return 0;
}

static int map_get(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                   uint32_t uk_len, const void **val, uint32_t *len) {
    sl_byte_table_t *m;
    int rc = map_of(b, id, ns, ns_len, false, false, &m);
    if (rc || m == NULL)
        return rc;
    sl_bt_entry_t *e = sl_bt_find(m, sl_bt_hash(uk, uk_len, NULL, 0), uk, uk_len, NULL, 0);
    if (e == NULL)
        return 0;
    *val = sl_bt_value(e);
    *len = e->vlen;
    return 1;
}

static int map_put(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                   uint32_t uk_len, const void *val, uint32_t len) {
    sl_byte_table_t *m;
    int rc = map_of(b, id, ns, ns_len, true, true, &m);
    if (rc)
        return rc;
    sl_bt_entry_t *e;
    if ((rc = sl_bt_upsert(m, sl_bt_hash(uk, uk_len, NULL, 0), uk, uk_len, NULL, 0, &e)) != 0)
        return rc;
    if ((rc = sl_bt_set_value(m, e, val, len)) != 0 && e->vlen == 0)
        sl_bt_remove(m, e);
    return rc;
}

static int map_remove(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                      uint32_t uk_len) {
    sl_byte_table_t *m;
    uint64_t hash = sl_bt_hash(uk, uk_len, NULL, 0);
    int rc = map_of(b, id, ns, ns_len, false, false, &m);
    if (rc || m == NULL || sl_bt_find(m, hash, uk, uk_len, NULL, 0) == NULL)
        return rc; /* nothing to remove: no need to copy a map a snapshot reads */
    if ((rc = map_of(b, id, ns, ns_len, false, true, &m)) != 0)
        return rc;
    sl_bt_entry_t *e = sl_bt_find(m, hash, uk, uk_len, NULL, 0);
    if (e)
        sl_bt_remove(m, e);
    if (m->count == 0)
        return state_remove(b, id, ns, ns_len);
    return 0;
}

static int iterate(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, sl_state_visit_cb cb,
                   void *arg) {
    heap_backend_t *h = hb(b);
    if (id >= h->nstates)
        return SL_EINVAL;
    if (h->states[id].kind == SL_STATE_MAP) {
        sl_byte_table_t *m;
        int rc = map_of(b, id, ns, ns_len, false, false, &m);
        if (rc || m == NULL)
            return rc;
        for (uint32_t i = 0; i < m->cap; i++) {
            sl_bt_entry_t *e = &m->slots[i];
            if (e->hash == 0)
                continue;
            const uint8_t *uk, *unused;
            uint32_t uklen, ulen;
            sl_bt_key(e, &uk, &uklen, &unused, &ulen);
            if ((rc = cb(arg, uk, uklen, sl_bt_value(e), e->vlen)) != 0)
                return rc;
        }
        return 0;
    }
    sl_byte_table_t *t;
    int rc = table_for(b, id, SL_STATE_LIST, &t);
    if (rc)
        return rc;
    sl_bt_entry_t *e = lookup(b, t, ns, ns_len);
    if (e == NULL)
        return 0;
    const uint8_t *p = sl_bt_value(e), *end = p + e->vlen;
    while (p < end) {
        uint32_t len;
        memcpy(&len, p, 4);
        if ((rc = cb(arg, NULL, 0, p + 4, len)) != 0)
            return rc;
        p += 4 + len;
    }
    return 0;
}

/* ---- TTL (keyed_state.h) and its incremental cleanup ---- */

static int set_ttl(sl_keyed_backend_t *b, uint32_t id, sl_state_clock_fn now_ms) {
    heap_backend_t *h = hb(b);
    if (id >= h->nstates || now_ms == NULL)
        return SL_EINVAL;
    h->states[id].ttl = now_ms;
    return 0;
}

static sl_state_clock_fn ttl_clock(const sl_keyed_backend_t *b, uint32_t id) {
    const heap_backend_t *h = (const heap_backend_t *)b;
    return id < h->nstates ? h->states[id].ttl : NULL;
}

/* A value without room for its expiry is left alone: fn_state reports it when it is read. */
static bool expired(const uint8_t *v, uint32_t len, int64_t now) {
    int64_t at;
    if (len < 8)
        return false;
    memcpy(&at, v, 8);
    return at <= now;
}

/* True when an open snapshot may read the entry's bytes. Once the snapshot has closed, the
 * first look ends copying, as retire_item does, so cleanup that only ever meets blocks of the
 * old version is not held back forever. */
static bool still_shared(heap_backend_t *h, const sl_byte_table_t *t, const sl_bt_entry_t *e) {
    if (!sl_bt_shared(t, e))
        return false;
    if (atomic_load_explicit(&h->snap_open, memory_order_acquire))
        return true;
    h->cow.snap_version = 0;
    return false;
}

/* Drops the expired elements of a list entry. True when the whole entry went away (its slot
 * now holds another entry, or none). */
static bool clean_list(heap_backend_t *h, sl_byte_table_t *t, sl_bt_entry_t *e, int64_t now) {
    uint8_t *v = sl_bt_value(e);
    uint32_t off = 0, keep = 0, n;
    bool any = false;
    while (off < e->vlen) {
        memcpy(&n, v + off, 4);
        if (e->vlen - off < 4 || n > e->vlen - off - 4)
            return false; /* a corrupt list: the reader reports it */
        if (expired(v + off + 4, n, now))
            any = true;
        else
            keep += 4 + n;
        off += 4 + n;
    }
    if (!any)
        return false;
    if (keep == 0) {
        sl_bt_remove(t, e); /* retires the block when a snapshot shares it */
        return true;
    }
    if (still_shared(h, t, e))
        return false; /* rewriting would copy the block: a later round does it */
    uint32_t w = 0;
    for (off = 0; off < e->vlen; off += 4 + n) {
        memcpy(&n, v + off, 4);
        if (!expired(v + off + 4, n, now)) {
            memmove(v + w, v + off, 4 + n);
            w += 4 + n;
        }
    }
    e->vlen = w;
    return false;
}

static int ttl_cleanup(sl_keyed_backend_t *b, uint32_t id, int64_t now) {
    heap_backend_t *h = hb(b);
    if (id >= h->nstates)
        return SL_EINVAL;
    heap_state_t *s = &h->states[id];
    if (s->ttl == NULL)
        return 0;
    uint32_t entries = SL_STATE_TTL_CLEANUP_ENTRIES;
    for (uint32_t slots = TTL_CLEANUP_SLOTS; slots > 0 && entries > 0; slots--) {
        sl_byte_table_t *t = &s->tables[s->cur_g];
        if (s->cur_i >= t->cap) {
            s->cur_g = s->cur_g + 1 == h->ngroups ? 0 : s->cur_g + 1;
            s->cur_i = s->cur_j = 0;
            continue;
        }
        sl_bt_entry_t *e = &t->slots[s->cur_i];
        if (e->hash == 0) {
            s->cur_i++;
            s->cur_j = 0;
            continue;
        }
        /* After a removal the slot is looked at again: backward-shift deletion may have moved
         * the next entry of the cluster into it. */
        if (s->kind == SL_STATE_VALUE) {
            entries--;
            if (expired(sl_bt_value(e), e->vlen, now))
                sl_bt_remove(t, e);
            else
                s->cur_i++;
            continue;
        }
        if (s->kind == SL_STATE_LIST) {
            entries--;
            if (!clean_list(h, t, e, now))
                s->cur_i++;
            continue;
        }
        /* A map: one slot of its nested table per step. A nested table a snapshot reads would
         * have to be copied whole to change: skip it this round. */
        sl_byte_table_t *m;
        memcpy(&m, sl_bt_value(e), sizeof m);
        if (s->cur_j >= m->cap || still_shared(h, t, e)) {
            s->cur_i++;
            s->cur_j = 0;
            continue;
        }
        sl_bt_entry_t *me = &m->slots[s->cur_j];
        if (me->hash == 0) {
            s->cur_j++;
            continue;
        }
        entries--;
        if (!expired(sl_bt_value(me), me->vlen, now)) {
            s->cur_j++;
            continue;
        }
        sl_bt_remove(m, me);
        if (m->count == 0) {
            free_map_table(m);
            sl_bt_remove(t, e);
            s->cur_j = 0;
        }
    }
    return 0;
}

static int for_each_key(sl_keyed_backend_t *b, uint32_t id, sl_state_key_visit_cb cb, void *arg) {
    heap_backend_t *h = hb(b);
    if (id >= h->nstates)
        return SL_EINVAL;
    for (uint32_t g = 0; g < h->ngroups; g++) {
        sl_byte_table_t *t = &h->states[id].tables[g];
        for (uint32_t i = 0; i < t->cap; i++) {
            sl_bt_entry_t *e = &t->slots[i];
            if (e->hash == 0)
                continue;
            const uint8_t *k, *ns;
            uint32_t klen, nslen;
            sl_bt_key(e, &k, &klen, &ns, &nslen);
            int rc = cb(arg, k, klen, b->kg_first + g, ns, nslen);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int for_each_entry(sl_keyed_backend_t *b, uint32_t id, sl_state_entry_cb cb, void *arg) {
    heap_backend_t *h = hb(b);
    if (id >= h->nstates)
        return SL_EINVAL;
    bool is_map = h->states[id].kind == SL_STATE_MAP;
    for (uint32_t g = 0; g < h->ngroups; g++) {
        sl_byte_table_t *t = &h->states[id].tables[g];
        for (uint32_t i = 0; i < t->cap; i++) {
            sl_bt_entry_t *e = &t->slots[i];
            if (e->hash == 0)
                continue;
            const uint8_t *k, *ns;
            uint32_t klen, nslen;
            sl_bt_key(e, &k, &klen, &ns, &nslen);
            int rc = 0;
            if (!is_map) {
                rc = cb(arg, b->kg_first + g, k, klen, ns, nslen, NULL, 0, sl_bt_value(e), e->vlen);
            } else {
                sl_byte_table_t *m;
                memcpy(&m, sl_bt_value(e), sizeof m);
                for (uint32_t j = 0; rc == 0 && j < m->cap; j++) {
                    sl_bt_entry_t *me = &m->slots[j];
                    if (me->hash == 0)
                        continue;
                    const uint8_t *uk, *unused;
                    uint32_t uklen, ulen;
                    sl_bt_key(me, &uk, &uklen, &unused, &ulen);
                    rc = cb(arg, b->kg_first + g, k, klen, ns, nslen, uk, uklen, sl_bt_value(me), me->vlen);
                }
            }
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int raw_put(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                   uint32_t uk_len, const void *val, uint32_t val_len) {
    heap_backend_t *h = hb(b);
    if (id >= h->nstates)
        return SL_EINVAL;
    switch (h->states[id].kind) {
    case SL_STATE_MAP:
        return map_put(b, id, ns, ns_len, uk, uk_len, val, val_len);
    case SL_STATE_LIST: {
        sl_byte_table_t *t;
        sl_bt_entry_t *e;
        int rc = table_for(b, id, SL_STATE_LIST, &t);
        if (rc == 0)
            rc = upsert(b, t, ns, ns_len, &e);
        if (rc == 0 && (rc = sl_bt_set_value(t, e, val, val_len)) != 0 && e->vlen == 0)
            sl_bt_remove(t, e);
        return rc;
    }
    default:
        return value_put(b, id, ns, ns_len, val, val_len);
    }
}

static size_t memory_bytes(const sl_keyed_backend_t *b) {
    const heap_backend_t *h = (const heap_backend_t *)b;
    size_t n = sizeof *h;
    for (uint32_t s = 0; s < h->nstates; s++)
        for (uint32_t g = 0; g < h->ngroups; g++) {
            const sl_byte_table_t *t = &h->states[s].tables[g];
            n += t->bytes + (size_t)t->cap * sizeof(sl_bt_entry_t);
        }
    return n;
}

static void destroy(sl_keyed_backend_t *b) {
    heap_backend_t *h = hb(b);
    /* The owner waits for the snapshot's thread before it destroys the backend; what a
     * snapshot left open still holds is freed here. */
    for (size_t i = 0; i < h->nretired; i++)
        free_retired(h->retired[i]);
    sl_free(h->retired);
    pthread_mutex_destroy(&h->lock);
    for (uint32_t s = 0; s < h->nstates; s++) {
        for (uint32_t g = 0; g < h->ngroups; g++) {
            sl_byte_table_t *t = &h->states[s].tables[g];
            if (h->states[s].kind == SL_STATE_MAP)
                for (uint32_t i = 0; i < t->cap; i++)
                    if (t->slots[i].hash) {
                        sl_byte_table_t *m;
                        memcpy(&m, sl_bt_value(&t->slots[i]), sizeof m);
                        free_map_table(m);
                    }
            sl_bt_destroy(t);
        }
        sl_free(h->states[s].tables);
        sl_free(h->states[s].name);
    }
    sl_free(h);
}

static uint32_t state_count(const sl_keyed_backend_t *b) { return ((const heap_backend_t *)b)->nstates; }

static void state_info(const sl_keyed_backend_t *b, uint32_t id, const char **name, sl_state_kind_t *kind) {
    const heap_backend_t *x = (const heap_backend_t *)b;
    *name = x->states[id].name;
    *kind = x->states[id].kind;
}

static const sl_keyed_backend_vtable_t heap_vt = {
    .register_state = register_state,
    .value_get = value_get,
    .value_put = value_put,
    .remove = state_remove,
    .value_update = value_update,
    .value_mut = value_mut,
    .list_add = list_add,
    .map_get = map_get,
    .map_put = map_put,
    .map_remove = map_remove,
    .iterate = iterate,
    .for_each_key = for_each_key,
    .for_each_entry = for_each_entry,
    .raw_put = raw_put,
    .set_ttl = set_ttl,
    .ttl_clock = ttl_clock,
    .ttl_cleanup = ttl_cleanup,
    .memory_bytes = memory_bytes,
    .state_count = state_count,
    .state_info = state_info,
    .destroy = destroy,
};

int sl_heap_backend_create(uint32_t max_parallelism, uint32_t kg_first, uint32_t kg_last, sl_keyed_backend_t **out) {
    if (max_parallelism == 0 || kg_first > kg_last || kg_last >= max_parallelism)
        return SL_EINVAL;
    heap_backend_t *h = sl_calloc(1, sizeof *h);
    if (h == NULL)
        return SL_ENOMEM;
    h->base.vt = &heap_vt;
    h->base.max_parallelism = max_parallelism;
    h->base.kg_first = kg_first;
    h->base.kg_last = kg_last;
    h->ngroups = kg_last - kg_first + 1;
    h->cow.version = 1;
    h->cow.retire = retire_block;
    pthread_mutex_init(&h->lock, NULL);
    *out = &h->base;
    return 0;
}

/* ---- copy-on-write snapshots (heap_backend.h) ---- */

bool sl_heap_backend_is(const sl_keyed_backend_t *b) { return b != NULL && b->vt == &heap_vt; }

void **sl_heap_backend_async_slot(sl_keyed_backend_t *b) { return &hb(b)->async_slot; }

uint32_t sl_heap_backend_retired(sl_keyed_backend_t *b) {
    heap_backend_t *h = hb(b);
    pthread_mutex_lock(&h->lock);
    uint32_t n = (uint32_t)h->nretired;
    pthread_mutex_unlock(&h->lock);
    return n;
}

int sl_heap_snapshot_open(sl_keyed_backend_t *b, sl_heap_snapshot_t **out) {
    heap_backend_t *h = hb(b);
    pthread_mutex_lock(&h->lock);
    bool busy = h->snap_open;
    pthread_mutex_unlock(&h->lock);
    if (busy)
        return SL_EAGAIN;
    size_t total = 0, shared = 0, ntables = (size_t)h->nstates * h->ngroups;
    for (uint32_t s = 0; s < h->nstates; s++)
        for (uint32_t g = 0; g < h->ngroups; g++) {
            total += h->states[s].tables[g].count;
            shared += h->states[s].tables[g].count * (h->states[s].kind == SL_STATE_MAP ? 2u : 1u);
        }
    sl_heap_snapshot_t *snap = sl_calloc(1, sizeof *snap);
    uintptr_t *retired = shared ? sl_malloc(shared * sizeof *retired) : NULL;
    if (snap == NULL || (shared && retired == NULL) ||
        (snap->start = sl_malloc((ntables + 1) * sizeof *snap->start)) == NULL ||
        (total && (snap->entries = sl_malloc(total * sizeof *snap->entries)) == NULL) ||
        (h->nstates && (snap->ttl_now = sl_malloc(h->nstates * sizeof *snap->ttl_now)) == NULL)) {
        if (snap) {
            sl_free(snap->start);
            sl_free(snap->entries);
        }
        sl_free(snap);
        sl_free(retired);
        return SL_ENOMEM;
    }
    snap->h = h;
    snap->nstates = h->nstates;
    /* What expired when the snapshot was taken stays out of it (Flink's cleanupFullSnapshot). */
    for (uint32_t s = 0; s < h->nstates; s++)
        snap->ttl_now[s] = h->states[s].ttl ? h->states[s].ttl() : INT64_MIN;
    /* The synchronous part: one pass over the slot arrays, copying entry descriptors. */
    size_t n = 0;
    for (uint32_t s = 0; s < h->nstates; s++)
        for (uint32_t g = 0; g < h->ngroups; g++) {
            const sl_byte_table_t *t = &h->states[s].tables[g];
            snap->start[(size_t)s * h->ngroups + g] = n;
            for (uint32_t i = 0; i < t->cap && n < total; i++) {
                const sl_bt_entry_t *e = &t->slots[i];
                if (e->hash)
                    snap->entries[n++] = (snap_entry_t){e->block, e->klen, e->vlen};
            }
        }
    snap->start[ntables] = n;
    h->cow.snap_version = h->cow.version++;
    pthread_mutex_lock(&h->lock);
    h->retired = retired;
    h->retired_cap = shared;
    h->nretired = 0;
    h->snap_open = true;
    pthread_mutex_unlock(&h->lock);
    *out = snap;
    return 0;
}

uint32_t sl_heap_snapshot_state_count(const sl_heap_snapshot_t *s) { return s->nstates; }

bool sl_heap_snapshot_ttl_now(const sl_heap_snapshot_t *s, uint32_t id, int64_t *now) {
    if (id >= s->nstates || s->ttl_now[id] == INT64_MIN)
        return false;
    *now = s->ttl_now[id];
    return true;
}

void sl_heap_snapshot_state_info(const sl_heap_snapshot_t *s, uint32_t id, const char **name,
                                 sl_state_kind_t *kind) {
    /* A state's name and kind never change once registered. */
    *name = s->h->states[id].name;
    *kind = s->h->states[id].kind;
}

int sl_heap_snapshot_for_each_entry(sl_heap_snapshot_t *s, uint32_t id, sl_state_entry_cb cb, void *arg) {
    if (id >= s->nstates)
        return SL_EINVAL;
    const heap_backend_t *h = s->h;
    bool is_map = h->states[id].kind == SL_STATE_MAP;
    for (uint32_t g = 0; g < h->ngroups; g++) {
        size_t k = (size_t)id * h->ngroups + g;
        for (size_t i = s->start[k]; i < s->start[k + 1]; i++) {
            const snap_entry_t *e = &s->entries[i];
            uint32_t alen;
            memcpy(&alen, e->block, 4);
            const uint8_t *key = e->block + 4, *ns = key + alen, *val = e->block + e->klen;
            uint32_t nslen = e->klen - 4 - alen;
            int rc = 0;
            if (!is_map) {
                rc = cb(arg, h->base.kg_first + g, key, alen, ns, nslen, NULL, 0, val, e->vlen);
            } else {
                const sl_byte_table_t *m;
                memcpy(&m, val, sizeof m);
                for (uint32_t j = 0; rc == 0 && j < m->cap; j++) {
                    const sl_bt_entry_t *me = &m->slots[j];
                    if (me->hash == 0)
                        continue;
                    const uint8_t *uk, *unused;
                    uint32_t uklen, ulen;
                    sl_bt_key(me, &uk, &uklen, &unused, &ulen);
                    rc = cb(arg, h->base.kg_first + g, key, alen, ns, nslen, uk, uklen, sl_bt_value(me), me->vlen);
                }
            }
            if (rc)
                return rc;
        }
    }
    return 0;
}

void sl_heap_snapshot_close(sl_heap_snapshot_t *s) {
    if (s == NULL)
        return;
    heap_backend_t *h = s->h;
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < h->nretired; i++)
        free_retired(h->retired[i]);
    sl_free(h->retired);
    h->retired = NULL;
    h->nretired = h->retired_cap = 0;
    h->snap_open = false;
    pthread_mutex_unlock(&h->lock);
    sl_free(s->entries);
    sl_free(s->start);
    sl_free(s->ttl_now);
    sl_free(s);
}
