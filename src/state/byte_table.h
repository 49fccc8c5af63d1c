/* An open-addressing hash table from byte strings to byte strings (linear probing,
 * backward-shift deletion, power-of-two capacity, grows at 3/4 load). Each entry is one block
 * holding key then value, with room to grow the value in place (list appends). Not
 * thread-safe. Internal to the heap state backend. */
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
} sl_bt_entry_t;

typedef struct sl_byte_table_s {
    sl_bt_entry_t *slots;
    uint32_t cap;
    uint32_t count;
    size_t bytes; /* memory held by entry blocks */
} sl_byte_table_t;

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
void sl_bt_remove(sl_byte_table_t *t, sl_bt_entry_t *e);
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
