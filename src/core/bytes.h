/* A growable byte buffer with little-endian encoders and a bounds-checked reader: the small
 * serialization kit for operator state and other blobs that are not rows. */
#ifndef SL_CORE_BYTES_H
#define SL_CORE_BYTES_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_bytes_s {
    uint8_t *data;
    size_t len;
    size_t cap;
    int err; /* first error (SL_ENOMEM), reported by the caller once at the end */
} sl_bytes_t;

void sl_bytes_init(sl_bytes_t *b);
void sl_bytes_destroy(sl_bytes_t *b);
void sl_bytes_clear(sl_bytes_t *b);
void sl_bytes_put(sl_bytes_t *b, const void *p, size_t n);
void sl_bytes_put_u8(sl_bytes_t *b, uint8_t v);
void sl_bytes_put_u32(sl_bytes_t *b, uint32_t v);
void sl_bytes_put_u64(sl_bytes_t *b, uint64_t v);

/* Reading: every getter fails (returns SL_EPARSE and stays failed) past the end. */
typedef struct sl_bytes_reader_s {
    const uint8_t *p;
    size_t left;
    int err;
} sl_bytes_reader_t;

static inline void sl_bytes_reader_init(sl_bytes_reader_t *r, const uint8_t *p, size_t n) {
    r->p = p;
    r->left = n;
    r->err = 0;
}
int sl_bytes_get_u8(sl_bytes_reader_t *r, uint8_t *v);
int sl_bytes_get_u32(sl_bytes_reader_t *r, uint32_t *v);
int sl_bytes_get_u64(sl_bytes_reader_t *r, uint64_t *v);
/* A view of the next `n` bytes (not copied). */
int sl_bytes_get_view(sl_bytes_reader_t *r, size_t n, const uint8_t **v);

#endif
