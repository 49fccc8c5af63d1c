/* Rows and schemas: the record format of Sluice.
 *
 * A row is a compact binary layout read in place, never parsed field by field:
 *
 *   offset 0        header words: bits 0..15 of the first little-endian u64 hold the field
 *                   count n; bit 16+i is set when field i is NULL. Header size is
 *                   8 * ceil((16 + n) / 64) bytes.
 *   header          n slots of 8 bytes. Fixed-width fields hold their value (bool and int32
 *                   widened to 8 bytes, double as IEEE bits, timestamp as epoch ms).
 *                   string/bytes slots hold (u32 offset from row start, u32 length).
 *   header + 8n     variable-length area: the bytes of string and bytes fields.
 *
 * Rows may start at any byte address (they sit inside network buffers), so accessors use
 * memcpy, which compiles to a plain load on x86-64 and arm64. */
#ifndef SL_ROW_H
#define SL_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    SL_TYPE_BOOL = 0,
    SL_TYPE_INT32,
    SL_TYPE_INT64,
    SL_TYPE_DOUBLE,
    SL_TYPE_TIMESTAMP, /* epoch milliseconds, int64 */
    SL_TYPE_STRING,
    SL_TYPE_BYTES,
} sl_type_t;

#define SL_ROW_MAX_FIELDS 1024

typedef struct sl_field_s {
    const char *name;
    sl_type_t type;
    bool nullable;
} sl_field_t;

/* Immutable once created; safe to share between threads. */
typedef struct sl_schema_s sl_schema_t;

/* A borrowed view of one row's bytes. */
typedef struct sl_row_s {
    const uint8_t *data;
    uint32_t len;
} sl_row_t;

/* Creates a schema from `n` fields (names are copied). Errors: SL_EINVAL (no fields, too many,
 * empty or duplicate name), SL_ENOMEM. */
int sl_schema_create(const sl_field_t *fields, uint32_t n, sl_schema_t **out);

/* Parses "name:type[?],..." where type is bool|int32|int64|double|timestamp|string|bytes and
 * a trailing '?' marks the field nullable. On SL_EPARSE, `err` (if not NULL) receives a message
 * naming the offending field. */
int sl_schema_parse(const char *spec, sl_schema_t **out, char *err, size_t errlen);

void sl_schema_destroy(sl_schema_t *s);
sl_schema_t *sl_schema_ref(sl_schema_t *s); /* reference counted: destroy drops one */

uint32_t sl_schema_nfields(const sl_schema_t *s);
const sl_field_t *sl_schema_field(const sl_schema_t *s, uint32_t i);
/* Index of the field named `name`, or -1. */
int sl_schema_index(const sl_schema_t *s, const char *name);
const char *sl_type_name(sl_type_t t);
/* Formats the schema as a spec string parseable by sl_schema_parse. */
int sl_schema_format(const sl_schema_t *s, char *buf, size_t len);

/* ---- Reading (inline: these run per record) ---- */

static inline uint64_t sl__row_word(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint32_t sl_row_nfields(const sl_row_t *r) {
    return (uint32_t)(sl__row_word(r->data) & 0xffffu);
}
static inline uint32_t sl__row_header_size(uint32_t nfields) {
    return 8u * ((16u + nfields + 63u) / 64u);
}
static inline const uint8_t *sl__row_slot(const sl_row_t *r, uint32_t i) {
    return r->data + sl__row_header_size(sl_row_nfields(r)) + 8u * i;
}
static inline bool sl_row_is_null(const sl_row_t *r, uint32_t i) {
    uint32_t bit = 16u + i;
    return (r->data[bit >> 3] >> (bit & 7u)) & 1u;
}
static inline int64_t sl_row_i64(const sl_row_t *r, uint32_t i) {
    int64_t v;
    memcpy(&v, sl__row_slot(r, i), 8);
    return v;
}
static inline int32_t sl_row_i32(const sl_row_t *r, uint32_t i) { return (int32_t)sl_row_i64(r, i); }
static inline bool sl_row_bool(const sl_row_t *r, uint32_t i) { return sl_row_i64(r, i) != 0; }
static inline int64_t sl_row_ts(const sl_row_t *r, uint32_t i) { return sl_row_i64(r, i); }
static inline double sl_row_f64(const sl_row_t *r, uint32_t i) {
    double v;
    memcpy(&v, sl__row_slot(r, i), 8);
    return v;
}
/* String or bytes field: pointer into the row (not NUL-terminated) and its length. */
static inline const char *sl_row_str(const sl_row_t *r, uint32_t i, uint32_t *len) {
    uint64_t w = sl__row_word(sl__row_slot(r, i));
    *len = (uint32_t)(w >> 32);
    return (const char *)r->data + (uint32_t)w;
}

/* Checks that `r` is a well-formed row of schema `s` (field count, offsets inside the row).
 * Used on every row that crosses a process boundary or comes from a file. */
int sl_row_validate(const sl_row_t *r, const sl_schema_t *s);

/* ---- Building ----
 * A builder owns a growable scratch area and is reused from row to row, so building a row
 * allocates nothing once the scratch has grown to the largest row. Not thread-safe. */
typedef struct sl_row_builder_s {
    uint8_t *_buf;
    uint32_t _cap;
    uint32_t _len;
    uint32_t _nfields;
    uint32_t _hdr;
    int _err; /* first error, reported by sl_row_builder_finish */
} sl_row_builder_t;

void sl_row_builder_init(sl_row_builder_t *b);
void sl_row_builder_destroy(sl_row_builder_t *b);
/* Starts a row of `nfields` fields, all zero and not null. */
void sl_row_builder_start(sl_row_builder_t *b, uint32_t nfields);
void sl_row_set_null(sl_row_builder_t *b, uint32_t i);
void sl_row_set_i64(sl_row_builder_t *b, uint32_t i, int64_t v);
void sl_row_set_i32(sl_row_builder_t *b, uint32_t i, int32_t v);
void sl_row_set_bool(sl_row_builder_t *b, uint32_t i, bool v);
void sl_row_set_ts(sl_row_builder_t *b, uint32_t i, int64_t epoch_ms);
void sl_row_set_f64(sl_row_builder_t *b, uint32_t i, double v);
void sl_row_set_str(sl_row_builder_t *b, uint32_t i, const char *s, uint32_t len);
void sl_row_set_cstr(sl_row_builder_t *b, uint32_t i, const char *s);
/* Copies field `src_i` of `src`, of type `type`, null included, into field `i`. */
void sl_row_copy_field(sl_row_builder_t *b, uint32_t i, const sl_row_t *src, uint32_t src_i,
                       sl_type_t type);
/* Returns the finished row (valid until the next start) or the first error (SL_ENOMEM,
 * SL_ERANGE for a field index past nfields). */
int sl_row_builder_finish(sl_row_builder_t *b, sl_row_t *out);

/* Appends field `i` of `r` as text (CSV conventions: strings quoted when needed, NULL empty). */
int sl_row_format_field(const sl_row_t *r, const sl_schema_t *s, uint32_t i, char *buf, size_t len);

#endif /* SL_ROW_H */
