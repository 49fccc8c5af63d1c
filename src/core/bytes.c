/* Growable byte buffer and bounds-checked reader (see bytes.h). Little-endian on the wire,
 * whatever the host, so blobs move between machines. */
#include "core/bytes.h"

#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"

void sl_bytes_init(sl_bytes_t *b) { memset(b, 0, sizeof *b); }

void sl_bytes_destroy(sl_bytes_t *b) {
    sl_free(b->data);
    memset(b, 0, sizeof *b);
}

void sl_bytes_clear(sl_bytes_t *b) {
    b->len = 0;
    b->err = 0;
}

static int reserve(sl_bytes_t *b, size_t n) {
    if (b->err)
        return b->err;
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *d = sl_realloc(b->data, cap);
    if (d == NULL)
        return b->err = SL_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

void sl_bytes_put(sl_bytes_t *b, const void *p, size_t n) {
    if (n && reserve(b, n) == 0) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

static void put_le(sl_bytes_t *b, uint64_t v, unsigned n) {
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    sl_bytes_put(b, t, n);
}

void sl_bytes_put_u8(sl_bytes_t *b, uint8_t v) { sl_bytes_put(b, &v, 1); }
void sl_bytes_put_u32(sl_bytes_t *b, uint32_t v) { put_le(b, v, 4); }
void sl_bytes_put_u64(sl_bytes_t *b, uint64_t v) { put_le(b, v, 8); }

int sl_bytes_get_view(sl_bytes_reader_t *r, size_t n, const uint8_t **v) {
    if (r->err || r->left < n)
        return r->err = SL_EPARSE;
    *v = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

static int get_le(sl_bytes_reader_t *r, unsigned n, uint64_t *v) {
    const uint8_t *p;
    int rc = sl_bytes_get_view(r, n, &p);
    if (rc)
        return rc;
    uint64_t x = 0;
    for (unsigned i = 0; i < n; i++)
        x |= (uint64_t)p[i] << (8 * i);
    *v = x;
    return 0;
}

int sl_bytes_get_u8(sl_bytes_reader_t *r, uint8_t *v) {
    uint64_t x = 0;
    int rc = get_le(r, 1, &x);
    *v = (uint8_t)x;
    return rc;
}

int sl_bytes_get_u32(sl_bytes_reader_t *r, uint32_t *v) {
    uint64_t x = 0;
    int rc = get_le(r, 4, &x);
    *v = (uint32_t)x;
    return rc;
}

int sl_bytes_get_u64(sl_bytes_reader_t *r, uint64_t *v) { return get_le(r, 8, v); }
