/* Key selectors: turn a row into key bytes and a key group.
 * Built-in keys are field indexes (no user code per record); a user key function is named by
 * symbol. Key bytes: int-like fields as 8 little-endian bytes, double as its bits, strings
 * and bytes as u32 length + bytes; a nullable field is preceded by a byte 1 (present) or 0 (NULL,
 * and nothing follows), so keys decode back into fields unambiguously. */
#ifndef SL_OPERATORS_KEY_SELECTOR_H
#define SL_OPERATORS_KEY_SELECTOR_H

#include <sluice/function.h>
#include <sluice/row.h>

#include <stdbool.h>
#include <stdint.h>

#define SL_KEY_MAX_FIELDS 8

typedef struct sl_key_selector_s {
    uint32_t nfields; /* 0 with fn == NULL: no key (non-keyed input) */
    uint32_t fields[SL_KEY_MAX_FIELDS];
    sl_type_t types[SL_KEY_MAX_FIELDS];
    bool nullable[SL_KEY_MAX_FIELDS];
    sl_key_fn fn; /* user key function, or NULL */
    void *fn_ctx;
} sl_key_selector_t;

/* Scratch for one extracted key; grows once to the largest key and is reused. */
typedef struct sl_key_buf_s {
    uint8_t *data;
    uint32_t len;
    uint32_t cap;
} sl_key_buf_t;

void sl_key_buf_destroy(sl_key_buf_t *k);

/* Builds a selector from "fields" = "i,j" against `schema` (SL_EINVAL with a message when an
 * index is out of range) or from a resolved user key function. */
int sl_key_selector_init_fields(sl_key_selector_t *ks, const sl_schema_t *schema, const uint32_t *fields,
                                uint32_t n, char *err, size_t errlen);

/* Writes the key of `row` into `out`. Errors: SL_ENOMEM, SL_EUSER from a user function. */
int sl_key_extract(const sl_key_selector_t *ks, const sl_row_t *row, sl_key_buf_t *out);

/* Writes the fields of key bytes made by sl_key_extract into fields first.. of `b`.
 * Errors: SL_EPARSE when the bytes do not match the selector. */
int sl_key_decode(const sl_key_selector_t *ks, const uint8_t *key, uint32_t len, sl_row_builder_t *b,
                  uint32_t first);

/* Hash of key bytes used for partitioning and key groups (murmur3). */
uint32_t sl_key_hash(const void *key, uint32_t len);

#endif
