/* RocksDB keyed-state backend: one RocksDB instance per subtask, one column family per state.
 *
 * Keys are [key group: 2 bytes big endian][u32 key length][key][u32 namespace length][namespace],
 * followed by the user key for map state, so a key group is one contiguous range (what a
 * snapshot or a rescale moves) and a map is one prefix. List state appends with a merge
 * operator (no read per add); values are [u32 length][bytes] elements. The write-ahead log is
 * off: durability comes from checkpoints, as in Flink. Memory is bounded by the TaskManager's
 * shared cache and write buffer manager (rocksdb_memory.h).
 *
 * TTL cleanup (Flink's cleanupInRocksdbCompactFilter): every column family gets a compaction
 * filter factory whose state says whether the state has a TTL (set_ttl may come after the
 * column family exists, e.g. after a restore registered it). For a state with TTL each
 * compaction gets a filter that reads the clock once and drops expired values and map
 * entries, and rewrites lists without their expired elements. A list's merge operands are not
 * filtered (the C API has no FilterMergeOperand): once a compaction has merged them into one
 * value, the next compaction of that value drops what expired. */
#include <sluice/error.h>

#include <errno.h>
#include <ftw.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/fs.h"
#include "core/log.h"
#include "state/keyed_state.h"
#include "state/rocksdb_backend.h"

#define MAX_STATES 64

/* A state's TTL as RocksDB's compaction threads see it: the state of its column family's
 * compaction filter factory, owned (and freed) by RocksDB with the column family's options. */
typedef struct {
    _Atomic(sl_state_clock_fn) clock; /* NULL: no TTL */
    sl_state_kind_t kind;
} rdb_ttl_t;

typedef struct {
    char *name;
    sl_state_kind_t kind;
    rocksdb_column_family_handle_t *cf;
    char *last; /* the value handed out by this state's last get: valid until its next call */
    rdb_ttl_t *ttl; /* borrowed from the column family; NULL in an import's read-only view */
} rdb_state_t;

typedef struct {
    sl_keyed_backend_t base;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *table;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    rdb_state_t states[MAX_STATES];
    uint32_t nstates;
    uint8_t *kbuf; /* scratch for encoded keys */
    uint32_t kcap;
    char *path;
} rdb_t;

static rdb_t *rb(sl_keyed_backend_t *b) { return (rdb_t *)b; }

static int rdb_error(const char *what, char *err) {
    SL_ERROR("rocksdb: %s: %s", what, err ? err : "unknown error");
    free(err); /* allocated by RocksDB */
    return SL_ESTATE_IO;
}

/* ---- the list merge operator: concatenation of [u32 len][bytes] elements ---- */

static char *concat(const char *first, size_t first_len, const char *const *ops, const size_t *lens, int n,
                    size_t *out_len) {
    size_t total = first_len;
    for (int i = 0; i < n; i++)
        total += lens[i];
    char *buf = malloc(total ? total : 1);
    if (buf == NULL)
        return NULL;
    if (first_len)
        memcpy(buf, first, first_len);
    size_t off = first_len;
    for (int i = 0; i < n; i++) {
        memcpy(buf + off, ops[i], lens[i]);
        off += lens[i];
    }
    *out_len = total;
    return buf;
}

static char *full_merge(void *st, const char *key, size_t klen, const char *existing, size_t elen,
                        const char *const *ops, const size_t *lens, int n, unsigned char *ok, size_t *out_len) {
    char *r = concat(existing, existing ? elen : 0, ops, lens, n, out_len);
    *ok = r != NULL;
    return r;
}

static char *partial_merge(void *st, const char *key, size_t klen, const char *const *ops, const size_t *lens, int n,
                           unsigned char *ok, size_t *out_len) {
    char *r = concat(NULL, 0, ops, lens, n, out_len);
    *ok = r != NULL;
    return r;
}

static void delete_merged(void *st, const char *v, size_t len) { free((char *)v); }
static void merge_destroy(void *st) {}
static const char *merge_name(void *st) { return "sl-list-append"; }

/* ---- the TTL compaction filter ---- */

/* One compaction's filter. A compaction runs on one thread, so the filter owns the buffer a
 * rewritten list is built in: the C API copies the new value but leaves its memory to us. */
typedef struct {
    sl_state_kind_t kind;
    int64_t now;
    char *buf;
    size_t cap;
} rdb_filter_t;

/* A value too short for an expiry is kept: the reader reports it. */
static bool expired(const char *v, size_t len, int64_t now) {
    int64_t at;
    if (len < 8)
        return false;
    memcpy(&at, v, 8);
    return at <= now;
}

/* Returns 1 to drop the entry; a list with some elements expired comes back rewritten. */
static unsigned char ttl_filter(void *st, int level, const char *key, size_t klen, const char *v, size_t vlen,
                                char **new_v, size_t *new_len, unsigned char *changed) {
    rdb_filter_t *f = st;
    if (f->kind != SL_STATE_LIST)
        return expired(v, vlen, f->now);
    size_t off = 0, keep = 0;
    uint32_t n;
    bool any = false;
    while (off < vlen) {
        if (vlen - off < 4)
            return 0; /* a corrupt list: left for the reader to report */
        memcpy(&n, v + off, 4);
        if (n > vlen - off - 4)
            return 0;
        if (expired(v + off + 4, n, f->now))
            any = true;
        else
            keep += 4 + (size_t)n;
        off += 4 + (size_t)n;
    }
    if (!any)
        return 0;
    if (keep == 0)
        return 1;
    if (keep > f->cap) {
        char *p = sl_realloc(f->buf, keep);
        if (p == NULL)
            return 0; /* keeping the list is always correct: a later compaction retries */
        f->buf = p;
        f->cap = keep;
    }
    size_t w = 0;
    for (off = 0; off < vlen; off += 4 + (size_t)n) {
        memcpy(&n, v + off, 4);
        if (!expired(v + off + 4, n, f->now)) {
            memcpy(f->buf + w, v + off, 4 + (size_t)n);
            w += 4 + (size_t)n;
        }
    }
    *new_v = f->buf;
    *new_len = w;
    *changed = 1;
    return 0;
}

static void filter_destroy(void *st) {
    rdb_filter_t *f = st;
    sl_free(f->buf);
    sl_free(f);
}

static const char *filter_name(void *st) { return "sl-ttl"; }

/* RocksDB's thread, once per compaction of the column family. No filter (NULL) for a state
 * without TTL, and none either when memory is short: expired entries then wait for the next
 * compaction. */
static rocksdb_compactionfilter_t *create_filter(void *st, rocksdb_compactionfiltercontext_t *ctx) {
    rdb_ttl_t *ttl = st;
    sl_state_clock_fn clock = atomic_load(&ttl->clock);
    if (clock == NULL)
        return NULL;
    rdb_filter_t *f = sl_calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->kind = ttl->kind;
    f->now = clock();
    rocksdb_compactionfilter_t *cf = rocksdb_compactionfilter_create(f, filter_destroy, ttl_filter, filter_name);
    /* Dropping an entry a snapshot could still read is fine: no RocksDB snapshots are taken. */
    rocksdb_compactionfilter_set_ignore_snapshots(cf, 1);
    return cf;
}

static void ttl_destroy(void *st) { sl_free(st); }
static const char *factory_name(void *st) { return "sl-ttl-factory"; }

/* ---- keys ---- */

static int reserve(rdb_t *r, uint32_t need) {
    if (need <= r->kcap)
        return 0;
    uint32_t cap = r->kcap ? r->kcap : 128;
    while (cap < need)
        cap *= 2;
    uint8_t *p = sl_realloc(r->kbuf, cap);
    if (p == NULL)
        return SL_ENOMEM;
    r->kbuf = p;
    r->kcap = cap;
    return 0;
}

/* Encodes (current key group, key, ns[, ukey]) into r->kbuf; returns the length or <0. */
static int encode(rdb_t *r, const void *ns, uint32_t ns_len, const void *uk, uint32_t uk_len) {
    const sl_keyed_backend_t *b = &r->base;
    uint32_t n = 2 + 4 + b->cur_key_len + 4 + ns_len + uk_len;
    if (reserve(r, n))
        return SL_ENOMEM;
    uint8_t *p = r->kbuf;
    p[0] = (uint8_t)(b->cur_kg >> 8);
    p[1] = (uint8_t)b->cur_kg;
    memcpy(p + 2, &b->cur_key_len, 4);
    memcpy(p + 6, b->cur_key, b->cur_key_len);
    memcpy(p + 6 + b->cur_key_len, &ns_len, 4);
    if (ns_len)
        memcpy(p + 10 + b->cur_key_len, ns, ns_len);
    if (uk_len)
        memcpy(p + 10 + b->cur_key_len + ns_len, uk, uk_len);
    return (int)n;
}

static int state_of(rdb_t *r, uint32_t id, sl_state_kind_t kind, rocksdb_column_family_handle_t **cf) {
    if (id >= r->nstates || r->states[id].kind != kind || r->base.cur_kg < r->base.kg_first ||
        r->base.cur_kg > r->base.kg_last)
        return SL_EINVAL;
    *cf = r->states[id].cf;
    return 0;
}

/* ---- the vtable ---- */

static int register_state(sl_keyed_backend_t *b, const char *name, sl_state_kind_t kind, uint32_t *id) {
    rdb_t *r = rb(b);
    for (uint32_t i = 0; i < r->nstates; i++)
        if (strcmp(r->states[i].name, name) == 0) {
            if (r->states[i].kind != kind)
                return SL_EINVAL;
            *id = i;
            return 0;
        }
    if (r->nstates == MAX_STATES)
        return SL_ERANGE;
    rdb_state_t *s = &r->states[r->nstates];
    rdb_ttl_t *ttl = sl_calloc(1, sizeof *ttl);
    if (ttl == NULL)
        return SL_ENOMEM;
    atomic_init(&ttl->clock, NULL);
    ttl->kind = kind;
    /* The column family's own options: the shared ones plus its filter factory, which from
     * here on owns `ttl` (the copy and then the column family hold it). */
    rocksdb_options_t *o = rocksdb_options_create_copy(r->opts);
    rocksdb_options_set_compaction_filter_factory(
        o, rocksdb_compactionfilterfactory_create(ttl, ttl_destroy, create_filter, factory_name));
    char *err = NULL;
    s->cf = rocksdb_create_column_family(r->db, o, name, &err);
    rocksdb_options_destroy(o);
    if (err)
        return rdb_error("create column family", err);
    if ((s->name = sl_strdup(name)) == NULL) {
        rocksdb_column_family_handle_destroy(s->cf);
        return SL_ENOMEM;
    }
    s->ttl = ttl;
    s->kind = kind;
    *id = r->nstates++;
    return 0;
}

/* Values handed out stay valid until the next call on the same state, as the heap backend's
 * do until the next change: user code may hold one state's value while reading another. */
static int get(rdb_t *r, uint32_t id, int klen, const void **val, uint32_t *len) {
    rdb_state_t *s = &r->states[id];
    char *err = NULL;
    size_t vlen = 0;
    free(s->last);
    s->last = rocksdb_get_cf(r->db, r->ro, s->cf, (const char *)r->kbuf, (size_t)klen, &vlen, &err);
    if (err)
        return rdb_error("get", err);
    if (s->last == NULL)
        return 0;
    *val = s->last;
    *len = (uint32_t)vlen;
    return 1;
}

static int value_get(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void **val,
                     uint32_t *len) {
    rdb_t *r = rb(b);
    rocksdb_column_family_handle_t *cf;
    int rc = state_of(r, id, SL_STATE_VALUE, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, NULL, 0);
    return klen < 0 ? klen : get(r, id, klen, val, len);
}

static int put(rdb_t *r, rocksdb_column_family_handle_t *cf, int klen, const void *val, uint32_t len) {
    char *err = NULL;
    rocksdb_put_cf(r->db, r->wo, cf, (const char *)r->kbuf, (size_t)klen, val, len, &err);
    return err ? rdb_error("put", err) : 0;
}

static int value_put(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *val,
                     uint32_t len) {
    rdb_t *r = rb(b);
    rocksdb_column_family_handle_t *cf;
    int rc = state_of(r, id, SL_STATE_VALUE, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, NULL, 0);
    return klen < 0 ? klen : put(r, cf, klen, val, len);
}

/* Deletes every entry whose key starts with r->kbuf[0..plen). */
static int delete_prefix(rdb_t *r, rocksdb_column_family_handle_t *cf, int plen) {
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->db, r->ro, cf);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (rocksdb_iter_seek(it, (const char *)r->kbuf, (size_t)plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < (size_t)plen || memcmp(k, r->kbuf, (size_t)plen) != 0)
            break;
        rocksdb_writebatch_delete_cf(wb, cf, k, kl);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err == NULL)
        rocksdb_write(r->db, r->wo, wb, &err);
    rocksdb_writebatch_destroy(wb);
    rocksdb_iter_destroy(it);
    return err ? rdb_error("delete", err) : 0;
}

static int state_remove(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len) {
    rdb_t *r = rb(b);
    if (id >= r->nstates)
        return SL_EINVAL;
    rocksdb_column_family_handle_t *cf;
    sl_state_kind_t kind = r->states[id].kind;
    int rc = state_of(r, id, kind, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, NULL, 0);
    if (klen < 0)
        return klen;
    if (kind == SL_STATE_MAP)
        return delete_prefix(r, cf, klen);
    char *err = NULL;
    rocksdb_delete_cf(r->db, r->wo, cf, (const char *)r->kbuf, (size_t)klen, &err);
    return err ? rdb_error("delete", err) : 0;
}

static int list_add(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *val,
                    uint32_t len) {
    rdb_t *r = rb(b);
    rocksdb_column_family_handle_t *cf;
    int rc = state_of(r, id, SL_STATE_LIST, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, NULL, 0);
    if (klen < 0)
        return klen;
    char small[256];
    char *op = 4 + len <= sizeof small ? small : sl_malloc(4 + len);
    if (op == NULL)
        return SL_ENOMEM;
    memcpy(op, &len, 4);
    memcpy(op + 4, val, len);
    char *err = NULL;
    rocksdb_merge_cf(r->db, r->wo, cf, (const char *)r->kbuf, (size_t)klen, op, 4 + len, &err);
    if (op != small)
        sl_free(op);
    return err ? rdb_error("merge", err) : 0;
}

static int map_get(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                   uint32_t uk_len, const void **val, uint32_t *len) {
    rdb_t *r = rb(b);
    rocksdb_column_family_handle_t *cf;
    int rc = state_of(r, id, SL_STATE_MAP, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, uk, uk_len);
    return klen < 0 ? klen : get(r, id, klen, val, len);
}

static int map_put(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                   uint32_t uk_len, const void *val, uint32_t len) {
    rdb_t *r = rb(b);
    rocksdb_column_family_handle_t *cf;
    int rc = state_of(r, id, SL_STATE_MAP, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, uk, uk_len);
    return klen < 0 ? klen : put(r, cf, klen, val, len);
}

static int map_remove(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                      uint32_t uk_len) {
    rdb_t *r = rb(b);
    rocksdb_column_family_handle_t *cf;
    int rc = state_of(r, id, SL_STATE_MAP, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, uk, uk_len);
    if (klen < 0)
        return klen;
    char *err = NULL;
    rocksdb_delete_cf(r->db, r->wo, cf, (const char *)r->kbuf, (size_t)klen, &err);
    return err ? rdb_error("delete", err) : 0;
}

static int visit_list(const char *v, size_t len, sl_state_visit_cb cb, void *arg) {
    size_t off = 0;
    while (off + 4 <= len) {
        uint32_t n;
        memcpy(&n, v + off, 4);
        if (n > len - off - 4)
            return SL_ESTATE_IO; /* a corrupt list value */
        int rc = cb(arg, NULL, 0, v + off + 4, n);
        if (rc)
            return rc;
        off += 4 + n;
    }
    return 0;
}

static int iterate(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, sl_state_visit_cb cb,
                   void *arg) {
    rdb_t *r = rb(b);
    if (id >= r->nstates)
        return SL_EINVAL;
    sl_state_kind_t kind = r->states[id].kind;
    rocksdb_column_family_handle_t *cf;
    int rc = state_of(r, id, kind, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, NULL, 0);
    if (klen < 0)
        return klen;
    if (kind == SL_STATE_LIST) {
        char *err = NULL;
        size_t vlen = 0;
        char *v = rocksdb_get_cf(r->db, r->ro, cf, (const char *)r->kbuf, (size_t)klen, &vlen, &err);
        if (err)
            return rdb_error("get", err);
        rc = v ? visit_list(v, vlen, cb, arg) : 0;
        free(v);
        return rc;
    }
    /* Map: the prefix is copied, the callback may use the backend's scratch (not modify). */
    uint8_t prefix[512];
    uint8_t *pfx = (size_t)klen <= sizeof prefix ? prefix : sl_malloc((size_t)klen);
    if (pfx == NULL)
        return SL_ENOMEM;
    memcpy(pfx, r->kbuf, (size_t)klen);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->db, r->ro, cf);
    rc = 0;
    for (rocksdb_iter_seek(it, (const char *)pfx, (size_t)klen); rc == 0 && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < (size_t)klen || memcmp(k, pfx, (size_t)klen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        rc = cb(arg, k + klen, (uint32_t)(kl - (size_t)klen), v, (uint32_t)vl);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (pfx != prefix)
        sl_free(pfx);
    return err ? rdb_error("iterate", err) : rc;
}

/* Decodes [kg][klen][key][nslen][ns]; returns the prefix length or 0 when malformed. */
static size_t decode(const char *k, size_t kl, uint32_t *kg, const char **key, uint32_t *key_len, const char **ns,
                     uint32_t *ns_len) {
    if (kl < 10)
        return 0;
    *kg = ((uint32_t)(uint8_t)k[0] << 8) | (uint8_t)k[1];
    memcpy(key_len, k + 2, 4);
    if (*key_len > kl - 10)
        return 0;
    *key = k + 6;
    memcpy(ns_len, k + 6 + *key_len, 4);
    if (*ns_len > kl - 10 - *key_len)
        return 0;
    *ns = k + 10 + *key_len;
    return 10 + (size_t)*key_len + *ns_len;
}

static int for_each_key(sl_keyed_backend_t *b, uint32_t id, sl_state_key_visit_cb cb, void *arg) {
    rdb_t *r = rb(b);
    if (id >= r->nstates)
        return SL_EINVAL;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->db, r->ro, r->states[id].cf);
    int rc = 0;
    size_t last_len = 0;
    char *last = NULL;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        uint32_t kg, key_len, ns_len;
        const char *key, *ns;
        size_t plen = decode(k, kl, &kg, &key, &key_len, &ns, &ns_len);
        if (plen == 0) {
            rc = SL_ESTATE_IO;
            break;
        }
        /* Map entries share their (key, namespace) prefix: visit it once. */
        if (last && plen == last_len && memcmp(last, k, plen) == 0)
            continue;
        free(last);
        if ((last = malloc(plen)) == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        memcpy(last, k, plen);
        last_len = plen;
        rc = cb(arg, key, key_len, kg, ns, ns_len);
    }
    free(last);
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? rdb_error("iterate", err) : rc;
}

static int for_each_entry(sl_keyed_backend_t *b, uint32_t id, sl_state_entry_cb cb, void *arg) {
    rdb_t *r = rb(b);
    if (id >= r->nstates)
        return SL_EINVAL;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->db, r->ro, r->states[id].cf);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rc == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
        uint32_t kg, key_len, ns_len;
        const char *key, *ns;
        size_t plen = decode(k, kl, &kg, &key, &key_len, &ns, &ns_len);
        if (plen == 0) {
            rc = SL_ESTATE_IO;
            break;
        }
        rc = cb(arg, kg, key, key_len, ns, ns_len, k + plen, (uint32_t)(kl - plen), v, (uint32_t)vl);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? rdb_error("iterate", err) : rc;
}

static int raw_put(sl_keyed_backend_t *b, uint32_t id, const void *ns, uint32_t ns_len, const void *uk,
                   uint32_t uk_len, const void *val, uint32_t val_len) {
    rdb_t *r = rb(b);
    if (id >= r->nstates)
        return SL_EINVAL;
    rocksdb_column_family_handle_t *cf;
    int rc = state_of(r, id, r->states[id].kind, &cf);
    int klen = rc ? rc : encode(r, ns, ns_len, uk, uk_len);
    return klen < 0 ? klen : put(r, cf, klen, val, val_len);
}

static int set_ttl(sl_keyed_backend_t *b, uint32_t id, sl_state_clock_fn now_ms) {
    rdb_t *r = rb(b);
    if (id >= r->nstates || r->states[id].ttl == NULL || now_ms == NULL)
        return SL_EINVAL;
    atomic_store(&r->states[id].ttl->clock, now_ms);
    return 0;
}

static sl_state_clock_fn ttl_clock(const sl_keyed_backend_t *b, uint32_t id) {
    const rdb_t *r = (const rdb_t *)b;
    return id < r->nstates && r->states[id].ttl ? atomic_load(&r->states[id].ttl->clock) : NULL;
}

/* Bytes of state: memtables plus the live data estimate of the SST files, over all states. */
static size_t memory_bytes(const sl_keyed_backend_t *b) {
    const rdb_t *r = (const rdb_t *)b;
    size_t total = 0;
    for (uint32_t i = 0; i < r->nstates; i++) {
        uint64_t v = 0;
        if (rocksdb_property_int_cf(r->db, r->states[i].cf, "rocksdb.cur-size-all-mem-tables", &v) == 0)
            total += (size_t)v;
        if (rocksdb_property_int_cf(r->db, r->states[i].cf, "rocksdb.estimate-live-data-size", &v) == 0)
            total += (size_t)v;
    }
    return total;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

static void destroy(sl_keyed_backend_t *b) {
    rdb_t *r = rb(b);
    for (uint32_t i = 0; i < r->nstates; i++) {
        rocksdb_column_family_handle_destroy(r->states[i].cf);
        sl_free(r->states[i].name);
        free(r->states[i].last);
    }
    if (r->db)
        rocksdb_close(r->db);
    if (r->opts)
        rocksdb_options_destroy(r->opts);
    if (r->table)
        rocksdb_block_based_options_destroy(r->table);
    if (r->wo)
        rocksdb_writeoptions_destroy(r->wo);
    if (r->ro)
        rocksdb_readoptions_destroy(r->ro);
    /* The instance is this subtask's working copy; checkpoints hold what must survive. */
    if (r->path)
        nftw(r->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    sl_free(r->kbuf);
    sl_free(r->path);
    sl_free(r);
}

static uint32_t state_count(const sl_keyed_backend_t *b) { return ((const rdb_t *)b)->nstates; }

static void state_info(const sl_keyed_backend_t *b, uint32_t id, const char **name, sl_state_kind_t *kind) {
    const rdb_t *x = (const rdb_t *)b;
    *name = x->states[id].name;
    *kind = x->states[id].kind;
}

static const sl_keyed_backend_vtable_t rdb_vt = {
    .register_state = register_state,
    .value_get = value_get,
    .value_put = value_put,
    .remove = state_remove,
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
    .memory_bytes = memory_bytes,
    .state_count = state_count,
    .state_info = state_info,
    .destroy = destroy,
};


void sl_rocksdb_options_from_config(const sl_config_t *config, sl_rocksdb_options_t *out) {
    const char *style = sl_config_str(config, "state.backend.rocksdb.compaction.style");
    out->compaction = style && strcmp(style, "universal") == 0 ? SL_ROCKSDB_COMPACTION_UNIVERSAL
                                                                : SL_ROCKSDB_COMPACTION_LEVEL;
    out->bloom_filter = sl_config_bool(config, "state.backend.rocksdb.use-bloom-filter");
}

/* Checkpoint-friendly level compaction: level 0 collects more flushes before it is merged into
 * a level 1 large enough to hold most of the state, so a checkpoint after a small change
 * uploads the new flush and less often a rewritten level (each rewrite is uploaded again). */
static void set_level_compaction(rocksdb_options_t *o) {
    rocksdb_options_set_level0_file_num_compaction_trigger(o, 16);
    rocksdb_options_set_level0_slowdown_writes_trigger(o, 40);
    rocksdb_options_set_level0_stop_writes_trigger(o, 64);
    rocksdb_options_set_max_bytes_for_level_base(o, 1ull << 30);
    rocksdb_options_set_target_file_size_base(o, 64ull << 20);
}

/* Universal compaction for small uploads: flushes (one per checkpoint) pile up as sorted runs
 * until 32 exist, then the newest runs of similar size are merged; the whole state is
 * rewritten only when the newer runs hold twice its size (RocksDB's default size
 * amplification bound), so that rewrite is paid once per twice the state's size changed. */
static void set_universal_compaction(rocksdb_options_t *o) {
    rocksdb_universal_compaction_options_t *u = rocksdb_universal_compaction_options_create();
    rocksdb_universal_compaction_options_set_size_ratio(u, 1);
    rocksdb_universal_compaction_options_set_max_size_amplification_percent(u, 200);
    rocksdb_options_set_universal_compaction_options(o, u); /* copied */
    rocksdb_universal_compaction_options_destroy(u);
    rocksdb_options_set_compaction_style(o, rocksdb_universal_compaction);
    rocksdb_options_set_level0_file_num_compaction_trigger(o, 32);
    rocksdb_options_set_level0_slowdown_writes_trigger(o, 56);
    rocksdb_options_set_level0_stop_writes_trigger(o, 80);
    rocksdb_options_set_target_file_size_base(o, 64ull << 20);
}

int sl_rocksdb_backend_create(const char *path, const sl_rocksdb_memory_t *mem, const sl_rocksdb_options_t *opts,
                              uint32_t max_parallelism, uint32_t kg_first, uint32_t kg_last,
                              sl_keyed_backend_t **out, char *errbuf, size_t errlen) {
    static const sl_rocksdb_options_t defaults = {SL_ROCKSDB_COMPACTION_LEVEL, true};
    if (opts == NULL)
        opts = &defaults;
    if (max_parallelism == 0 || max_parallelism > 65536 || kg_first > kg_last || kg_last >= max_parallelism)
        return SL_EINVAL;
    if (sl_make_dirs(path) != 0) {
        snprintf(errbuf, errlen, "cannot create the RocksDB directory '%s': %s", path, strerror(errno));
        return SL_ESTATE_IO;
    }
    rdb_t *r = sl_calloc(1, sizeof *r);
    if (r == NULL || (r->path = sl_strdup(path)) == NULL) {
        sl_free(r);
        return SL_ENOMEM;
    }
    r->base.vt = &rdb_vt;
    r->base.max_parallelism = max_parallelism;
    r->base.kg_first = kg_first;
    r->base.kg_last = kg_last;
    r->opts = rocksdb_options_create();
    r->table = rocksdb_block_based_options_create();
    r->wo = rocksdb_writeoptions_create();
    r->ro = rocksdb_readoptions_create();
    rocksdb_writeoptions_disable_WAL(r->wo, 1);
    rocksdb_options_set_create_if_missing(r->opts, 1);
    if (opts->compaction == SL_ROCKSDB_COMPACTION_UNIVERSAL)
        set_universal_compaction(r->opts);
    else
        set_level_compaction(r->opts);
    if (opts->bloom_filter) /* owned by the table options from here on */
        rocksdb_block_based_options_set_filter_policy(r->table, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_options_set_merge_operator(
        r->opts, rocksdb_mergeoperator_create(NULL, merge_destroy, full_merge, partial_merge, delete_merged, merge_name));
    if (mem)
        sl_rocksdb_memory_apply(mem, r->opts, r->table);
    rocksdb_options_set_block_based_table_factory(r->opts, r->table);
    char *err = NULL;
    r->db = rocksdb_open(r->opts, path, &err);
    if (err) {
        snprintf(errbuf, errlen, "cannot open RocksDB in '%s': %s", path, err);
        free(err);
        destroy(&r->base);
        return SL_ESTATE_IO;
    }
    *out = &r->base;
    return 0;
}

/* ---- native checkpoints (incremental snapshots) ---- */

int sl_rocksdb_backend_checkpoint(sl_keyed_backend_t *b, const char *dir, char *errbuf, size_t errlen) {
    rdb_t *r = rb(b);
    char *err = NULL;
    /* Memtables hold the latest writes (the WAL is off): flush them into SST files first. */
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    for (uint32_t i = 0; i < r->nstates && err == NULL; i++)
        rocksdb_flush_cf(r->db, fo, r->states[i].cf, &err);
    rocksdb_flushoptions_destroy(fo);
    rocksdb_checkpoint_t *cp = err ? NULL : rocksdb_checkpoint_object_create(r->db, &err);
    if (cp) {
        rocksdb_checkpoint_create(cp, dir, 0, &err);
        rocksdb_checkpoint_object_destroy(cp);
    }
    if (err) {
        snprintf(errbuf, errlen, "RocksDB checkpoint into '%s': %s", dir, err);
        free(err);
        return SL_ESTATE_IO;
    }
    return 0;
}

typedef struct {
    sl_keyed_backend_t *into;
    uint32_t state;
    uint32_t kg_first, kg_last;
} import_ctx_t;

static int import_entry(void *arg, uint32_t kg, const void *key, uint32_t klen, const void *ns, uint32_t nslen,
                        const void *uk, uint32_t uklen, const void *val, uint32_t vlen) {
    import_ctx_t *c = arg;
    if (kg < c->kg_first || kg > c->kg_last)
        return 0; /* another subtask's key group (rescaling) */
    sl_keyed_backend_set_key(c->into, key, klen, kg);
    return c->into->vt->raw_put(c->into, c->state, ns, nslen, uk, uklen, val, vlen);
}

int sl_rocksdb_backend_import(sl_keyed_backend_t *into, const char *dir, char *errbuf, size_t errlen) {
    char *err = NULL;
    rocksdb_options_t *opts = rocksdb_options_create();
    size_t ncf = 0;
    char **names = rocksdb_list_column_families(opts, dir, &ncf, &err);
    if (err) {
        snprintf(errbuf, errlen, "restoring RocksDB state from '%s': %s", dir, err);
        free(err);
        rocksdb_options_destroy(opts);
        return SL_ESTATE_IO;
    }
    rdb_t *src = sl_calloc(1, sizeof *src);
    rocksdb_column_family_handle_t **cfs = sl_calloc(ncf ? ncf : 1, sizeof *cfs);
    const rocksdb_options_t **cfo = sl_calloc(ncf ? ncf : 1, sizeof *cfo);
    int rc = src && cfs && cfo ? 0 : SL_ENOMEM;
    for (size_t i = 0; i < ncf && cfo; i++)
        cfo[i] = opts;
    rocksdb_options_set_merge_operator(
        opts, rocksdb_mergeoperator_create(NULL, merge_destroy, full_merge, partial_merge, delete_merged, merge_name));
    if (rc == 0) {
        src->db = rocksdb_open_for_read_only_column_families(opts, dir, (int)ncf, (const char *const *)names, cfo, cfs,
                                                             0, &err);
        if (err) {
            snprintf(errbuf, errlen, "opening the RocksDB state copy '%s': %s", dir, err);
            free(err);
            rc = SL_ESTATE_IO;
        }
    }
    if (rc == 0) {
        src->base.vt = &rdb_vt;
        src->ro = rocksdb_readoptions_create();
        for (size_t i = 0; i < ncf && rc == 0; i++) {
            if (strcmp(names[i], "default") == 0)
                continue;
            uint32_t id;
            /* The state was registered (with its kind) from the snapshot's state list. */
            sl_state_kind_t kind = SL_STATE_VALUE;
            for (uint32_t k = 0; k < sl_state_count(into); k++) {
                const char *n;
                sl_state_kind_t kd;
                sl_state_info(into, k, &n, &kd);
                if (strcmp(n, names[i]) == 0)
                    kind = kd;
            }
            if ((rc = sl_state_register(into, names[i], kind, &id)) != 0)
                break;
            if (src->nstates == MAX_STATES) {
                rc = SL_ERANGE;
                break;
            }
            /* A one-state view of the copy: the entries of column family i. */
            src->states[0] = (rdb_state_t){names[i], kind, cfs[i], NULL, NULL};
            src->nstates = 1;
            import_ctx_t c = {into, id, into->kg_first, into->kg_last};
            rc = for_each_entry(&src->base, 0, import_entry, &c);
            src->states[0].name = NULL; /* owned by `names` */
        }
        rocksdb_readoptions_destroy(src->ro);
    }
    for (size_t i = 0; cfs && i < ncf; i++)
        if (cfs[i])
            rocksdb_column_family_handle_destroy(cfs[i]);
    if (src && src->db)
        rocksdb_close(src->db);
    rocksdb_list_column_families_destroy(names, ncf);
    rocksdb_options_destroy(opts);
    sl_free(cfs);
    sl_free(cfo);
    sl_free(src);
    return rc;
}

int sl_rocksdb_backend_compact(sl_keyed_backend_t *b, uint32_t id) {
    rdb_t *r = rb(b);
    if (id >= r->nstates)
        return SL_EINVAL;
    char *err = NULL;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush_cf(r->db, fo, r->states[id].cf, &err);
    rocksdb_flushoptions_destroy(fo);
    if (err)
        return rdb_error("flush", err);
    rocksdb_compact_range_cf(r->db, r->states[id].cf, NULL, 0, NULL, 0);
    return 0;
}

bool sl_rocksdb_backend_is(const sl_keyed_backend_t *b) { return b && b->vt == &rdb_vt; }

const char *sl_rocksdb_backend_path(const sl_keyed_backend_t *b) { return ((const rdb_t *)b)->path; }

int sl_rocksdb_local_root(const sl_config_t *config, char *buf, size_t len) {
    const char *dir = sl_config_str(config, "state.backend.rocksdb.localdir");
    if (dir == NULL || dir[0] == '\0')
        dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int n = snprintf(buf, len, "%s/sluice-rocksdb-%ld", dir, (long)getpid());
    return n < 0 || (size_t)n >= len ? SL_ERANGE : 0;
}
