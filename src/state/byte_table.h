/* An open-addressing hash table from byte strings to byte strings (linear probing,
 * backward-shift deletion, power-of-two capacity, grows at 3/4 load). Each entry is one block
 * holding key then value, with room to grow the value in place (list appends). Not
 * thread-safe. Internal to the heap state backend.
 *
 * Copy-on-write (asynchronous snapshots): a table may point to an sl_bt_cow_t shared by the
 * tables of a backend. Every block is stamped with the version current when it was allocated;
 * while a snapshot is open, blocks stamped <= snap_version may be read by the snapshot's
 * thread, so the table never changes their bytes [0, klen + vlen at snapshot time), never
 * reallocates and never frees them: it copies the block first (the entry gets the copy) and
 * hands the old block to cow->retire, which frees it once the snapshot is done. Bytes past the
 * value's length are not read by a snapshot, so list appends within the block's room go on in
 * place. The slots array itself is not shared: a snapshot keeps its own copy of the entries. */
#ifndef SL_STATE_BYTE_TABLE_H
#define SL_STATE_BYTE_TABLE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define SL_BT_INLINE_VALUE 16 /* value bytes allocated with every new entry */

typedef struct sl_bt_entry_s {
    uint64_t hash; /* 0 marks an empty slot (real hashes are forced non-zero) */
    uint8_t *block; /* u32 length of key part a, a, b, then the value */
    uint32_t klen;
    uint32_t vlen;
    uint32_t vcap;
    uint32_t ver; /* the cow version the block was allocated in (0 without cow) */
} sl_bt_entry_t;

/* Copy-on-write context of a backend's tables (see above). Fields are the owning thread's. */
typedef struct sl_bt_cow_s {
    uint32_t version;      /* stamped on blocks allocated now (>= 1) */
    uint32_t snap_version; /* blocks stamped <= this may be shared with an open snapshot; 0: none */
    /* Takes a shared block that the table no longer references; never fails. */
    void (*retire)(struct sl_bt_cow_s *cow, void *block);
} sl_bt_cow_t;

typedef struct sl_byte_table_s {
    sl_bt_entry_t *slots;
    uint32_t cap;
    uint32_t count;
    size_t bytes; /* memory held by entry blocks */
    sl_bt_cow_t *cow; /* borrowed, or NULL: blocks are never shared */
} sl_byte_table_t;

/* True when the entry's block may be read by an open snapshot. */
static inline bool sl_bt_shared(const sl_byte_table_t *t, const sl_bt_entry_t *e) {
    return t->cow != NULL && e->ver <= t->cow->snap_version;
}

uint64_t sl_bt_hash(const void *a, uint32_t alen, const void *b, uint32_t blen);
void sl_bt_init(sl_byte_table_t *t);
void sl_bt_destroy(sl_byte_table_t *t);
/* Looks up a key given as two parts (a | b, e.g. key | namespace); NULL when absent. */
sl_bt_entry_t *sl_bt_find(sl_byte_table_t *t, uint64_t hash, const void *a, uint32_t alen, const void *b,
                          uint32_t blen);
/* Finds or inserts (value empty) the key a | b. Errors: SL_ENOMEM (table unchanged). */
int sl_bt_upsert(sl_byte_table_t *t, uint64_t hash, const void *a, uint32_t alen, const void *b, uint32_t blen,
                 sl_bt_entry_t **out);
/* Replaces an entry's value (growing its block when needed). Errors: SL_ENOMEM (unchanged). */
int sl_bt_set_value(sl_byte_table_t *t, sl_bt_entry_t *e, const void *v, uint32_t vlen);
/* Appends bytes to an entry's value, doubling its room. Errors: SL_ENOMEM (unchanged). */
int sl_bt_append(sl_byte_table_t *t, sl_bt_entry_t *e, const void *v, uint32_t vlen);
/* Removes an entry; a shared block goes to cow->retire instead of being freed. */
void sl_bt_remove(sl_byte_table_t *t, sl_bt_entry_t *e);
/* Makes an entry's block private before its value is changed in place (a copy when shared).
 * Errors: SL_ENOMEM (unchanged). */
int sl_bt_own(sl_byte_table_t *t, sl_bt_entry_t *e);
/* A deep copy of `src` (slots and blocks) into `dst`, without cow. Errors: SL_ENOMEM (dst empty). */
int sl_bt_copy(sl_byte_table_t *dst, const sl_byte_table_t *src);
static inline uint8_t *sl_bt_value(const sl_bt_entry_t *e) { return e->block + e->klen; }
/* The two key parts of an entry. */
static inline void sl_bt_key(const sl_bt_entry_t *e, const uint8_t **a, uint32_t *alen, const uint8_t **b,
                             uint32_t *blen) {
    uint32_t n;
    memcpy(&n, e->block, 4);
    *a = e->block + 4;
    *alen = n;
    *b = e->block + 4 + n;
    *blen = e->klen - 4 - n;
}

#endif
