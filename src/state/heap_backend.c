/* Heap keyed-state backend: one hash table per (state, key group).
 *
 * DESIGN
 * A table maps (current key, namespace) to a value: for value state the bytes themselves,
 * for list state a sequence of [u32 length][bytes] appended in place, for map state a pointer
 * to a nested table of user key -> value. Partitioning by key group is what later lets a
 * snapshot write key group by key group and a restore hand whole key groups to another
 * subtask. */
#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"
#include "state/byte_table.h"
#include "state/keyed_state.h"

#define MAX_STATES 256

typedef struct {
    char *name;
    sl_state_kind_t kind;
    sl_byte_table_t *tables; /* one per owned key group */
} heap_state_t;

typedef struct {
    sl_keyed_backend_t base;
    heap_state_t states[MAX_STATES];
    uint32_t nstates;
    uint32_t ngroups;
} heap_backend_t;

static heap_backend_t *hb(sl_keyed_backend_t *b) { return (heap_backend_t *)b; }

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
    *val = sl_bt_value(e);
    *len = e->vlen;
    return 1;
}

static int value_get(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void **val,
                     uint32_t *len) {
    void *v;
    int rc = value_mut(b, id, ns, ns_len, &v, len);
    if (rc == 1)
        *val = v;
    return rc;
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
    }
    *val = sl_bt_value(e);
    return 0;
}


static void free_map(sl_bt_entry_t *e) {
    sl_byte_table_t *m;
    memcpy(&m, sl_bt_value(e), sizeof m);
    sl_bt_destroy(m);
    sl_free(m);
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
            free_map(e);
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

/* The nested table of a map entry, created on demand when `create`. */
static int map_of(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, bool create,
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
    }
    memcpy(out, sl_bt_value(e), sizeof *out);
    return 0;
}

static int map_get(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                   uint32_t uk_len, const void **val, uint32_t *len) {
    sl_byte_table_t *m;
    int rc = map_of(b, id, ns, ns_len, false, &m);
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
    int rc = map_of(b, id, ns, ns_len, true, &m);
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
    int rc = map_of(b, id, ns, ns_len, false, &m);
    if (rc || m == NULL)
        return rc;
    sl_bt_entry_t *e = sl_bt_find(m, sl_bt_hash(uk, uk_len, NULL, 0), uk, uk_len, NULL, 0);
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
        int rc = map_of(b, id, ns, ns_len, false, &m);
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
    for (uint32_t s = 0; s < h->nstates; s++) {
        for (uint32_t g = 0; g < h->ngroups; g++) {
            sl_byte_table_t *t = &h->states[s].tables[g];
            if (h->states[s].kind == SL_STATE_MAP)
                for (uint32_t i = 0; i < t->cap; i++)
                    if (t->slots[i].hash)
                        free_map(&t->slots[i]);
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
    *out = &h->base;
    return 0;
}
