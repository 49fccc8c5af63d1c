/* Byte-string hash table (see byte_table.h). */
#include "state/byte_table.h"

#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"

/* Word-at-a-time multiply-xorshift (in the spirit of murmur/wyhash): every input bit reaches
 * the low bits that pick the slot, which linear probing needs; FNV-style mixing left keys that
 * differ only in high bytes (window bounds, ids) clustered. */
static uint64_t mix_word(uint64_t h, uint64_t w) {
    w *= 0x9e3779b97f4a7c15ull;
    w ^= w >> 32;
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

static uint64_t mix_bytes(uint64_t h, const uint8_t *p, uint32_t n) {
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix_word(h, w);
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = mix_word(h, w ^ ((uint64_t)n << 56));
    }
    return h;
}

uint64_t sl_bt_hash(const void *a, uint32_t alen, const void *b, uint32_t blen) {
    uint64_t h = mix_bytes(0xcbf29ce484222325ull ^ alen, a, alen);
    h = mix_bytes(h ^ ((uint64_t)blen << 32), b, blen);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

void sl_bt_init(sl_byte_table_t *t) { memset(t, 0, sizeof *t); }

void sl_bt_destroy(sl_byte_table_t *t) {
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slots[i].hash)
            sl_free(t->slots[i].block);
    sl_free(t->slots);
    memset(t, 0, sizeof *t);
}

/* A stored key is [u32 alen][a][b]: the length prefix keeps ("ab","c") apart from ("a","bc"). */
static bool key_equals(const sl_bt_entry_t *e, const void *a, uint32_t alen, const void *b, uint32_t blen) {
    uint32_t stored;
    if (e->klen != 4 + alen + blen)
        return false;
    memcpy(&stored, e->block, 4);
    return stored == alen && memcmp(e->block + 4, a, alen) == 0 &&
           (blen == 0 || memcmp(e->block + 4 + alen, b, blen) == 0);
}

sl_bt_entry_t *sl_bt_find(sl_byte_table_t *t, uint64_t hash, const void *a, uint32_t alen, const void *b,
                          uint32_t blen) {
    if (t->cap == 0)
        return NULL;
    uint32_t mask = t->cap - 1;
    for (uint32_t i = (uint32_t)hash & mask;; i = (i + 1) & mask) {
        sl_bt_entry_t *e = &t->slots[i];
        if (e->hash == 0)
            return NULL;
        if (e->hash == hash && key_equals(e, a, alen, b, blen))
            return e;
    }
}

static int grow(sl_byte_table_t *t) {
    uint32_t ncap = t->cap ? t->cap * 2 : 16;
    sl_bt_entry_t *ns = sl_calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < t->cap; i++) {
        sl_bt_entry_t *e = &t->slots[i];
        if (e->hash == 0)
            continue;
        uint32_t j = (uint32_t)e->hash & (ncap - 1);
        while (ns[j].hash)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
    }
    sl_free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

int sl_bt_upsert(sl_byte_table_t *t, uint64_t hash, const void *a, uint32_t alen, const void *b, uint32_t blen,
                 sl_bt_entry_t **out) {
    sl_bt_entry_t *e = sl_bt_find(t, hash, a, alen, b, blen);
    if (e) {
        *out = e;
        return 0;
    }
    /* At most half full: linear probing stays at ~2.5 probes for a miss (8.5 at 3/4). */
    if ((t->count + 1) * 2 > t->cap && grow(t) != 0)
        return SL_ENOMEM;
    uint32_t klen = 4 + alen + blen;
    /* Room for a small value up front: most values (timers, counters, accumulators) fit, and
     * the first set_value then needs no realloc. */
    uint8_t *block = sl_malloc(klen + SL_BT_INLINE_VALUE);
    if (block == NULL)
        return SL_ENOMEM;
    memcpy(block, &alen, 4);
    memcpy(block + 4, a, alen);
    if (blen)
        memcpy(block + 4 + alen, b, blen);
    uint32_t mask = t->cap - 1, i = (uint32_t)hash & mask;
    while (t->slots[i].hash)
        i = (i + 1) & mask;
    t->slots[i] = (sl_bt_entry_t){hash, block, klen, 0, SL_BT_INLINE_VALUE, t->cow ? t->cow->version : 0};
    t->count++;
    t->bytes += klen + SL_BT_INLINE_VALUE;
    *out = &t->slots[i];
    return 0;
}

/* Gives a shared entry a private block of klen + cap bytes holding its key and its first
 * `keep` value bytes; the old block goes to the snapshot's retire list. */
static int unshare(sl_byte_table_t *t, sl_bt_entry_t *e, uint32_t cap, uint32_t keep) {
    uint8_t *nb = sl_malloc((size_t)e->klen + cap);
    if (nb == NULL)
        return SL_ENOMEM;
    memcpy(nb, e->block, (size_t)e->klen + keep);
    t->cow->retire(t->cow, e->block);
    t->bytes += (size_t)cap - e->vcap;
    e->block = nb;
    e->vcap = cap;
    e->ver = t->cow->version;
    return 0;
}

int sl_bt_own(sl_byte_table_t *t, sl_bt_entry_t *e) {
    return sl_bt_shared(t, e) ? unshare(t, e, e->vcap, e->vlen) : 0;
}

static int reserve_value(sl_byte_table_t *t, sl_bt_entry_t *e, uint32_t need) {
    /* Within the room, even a shared block grows in place: a snapshot reads only up to the
     * length it saw. */
    if (need <= e->vcap)
        return 0;
    uint32_t cap = e->vcap ? e->vcap : 16;
    while (cap < need)
        cap *= 2;
    if (sl_bt_shared(t, e))
        return unshare(t, e, cap, e->vlen);
    uint8_t *nb = sl_realloc(e->block, e->klen + cap);
    if (nb == NULL)
        return SL_ENOMEM;
    t->bytes += cap - e->vcap;
    e->block = nb;
    e->vcap = cap;
    return 0;
}

int sl_bt_set_value(sl_byte_table_t *t, sl_bt_entry_t *e, const void *v, uint32_t vlen) {
    if (sl_bt_shared(t, e)) {
        /* `v` may point into the old block, which stays alive (retired) until the snapshot ends. */
        int rc = unshare(t, e, vlen > e->vcap ? vlen : e->vcap, 0);
        if (rc)
            return rc;
    } else if (vlen > e->vcap) {
        /* Exact size for plain values: most are rewritten with the same length. */
        uint8_t *nb = sl_realloc(e->block, e->klen + vlen);
        if (nb == NULL)
            return SL_ENOMEM;
        t->bytes += vlen - e->vcap;
        e->block = nb;
        e->vcap = vlen;
    }
    memmove(e->block + e->klen, v, vlen);
    e->vlen = vlen;
    return 0;
}

int sl_bt_append(sl_byte_table_t *t, sl_bt_entry_t *e, const void *v, uint32_t vlen) {
    int rc = reserve_value(t, e, e->vlen + vlen);
    if (rc)
        return rc;
    memcpy(e->block + e->klen + e->vlen, v, vlen);
    e->vlen += vlen;
    return 0;
}

void sl_bt_remove(sl_byte_table_t *t, sl_bt_entry_t *e) {
    uint32_t mask = t->cap - 1, i = (uint32_t)(e - t->slots);
    t->bytes -= e->klen + e->vcap;
    if (sl_bt_shared(t, e))
        t->cow->retire(t->cow, e->block);
    else
        sl_free(e->block);
    t->count--;
    /* Backward-shift deletion: pull later entries of the cluster into the hole when their
     * home slot is not between the hole and themselves. */
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (t->slots[j].hash == 0)
            break;
        uint32_t home = (uint32_t)t->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    memset(&t->slots[i], 0, sizeof t->slots[i]);
}

int sl_bt_copy(sl_byte_table_t *dst, const sl_byte_table_t *src) {
    sl_bt_init(dst);
    if (src->cap == 0)
        return 0;
    if ((dst->slots = sl_calloc(src->cap, sizeof *dst->slots)) == NULL)
        return SL_ENOMEM;
    dst->cap = src->cap;
    for (uint32_t i = 0; i < src->cap; i++) {
        const sl_bt_entry_t *e = &src->slots[i];
        if (e->hash == 0)
            continue;
        uint8_t *nb = sl_malloc((size_t)e->klen + e->vcap);
        if (nb == NULL) {
            sl_bt_destroy(dst);
            return SL_ENOMEM;
        }
        memcpy(nb, e->block, (size_t)e->klen + e->vlen);
        dst->slots[i] = *e;
        dst->slots[i].block = nb;
        dst->slots[i].ver = 0;
        dst->count++;
    }
    dst->bytes = src->bytes;
    return 0;
}
