/* Key extraction by field index or user function (see key_selector.h). */
#include "operators/key_selector.h"

#include <sluice/error.h>

#include <stdio.h>

#include "core/alloc.h"
#include "core/murmur.h"

void sl_key_buf_destroy(sl_key_buf_t *k) {
    sl_free(k->data);
    memset(k, 0, sizeof *k);
}

int sl_key_selector_init_fields(sl_key_selector_t *ks, const sl_schema_t *schema, const uint32_t *fields,
                                uint32_t n, char *err, size_t errlen) {
    memset(ks, 0, sizeof *ks);
    if (n == 0 || n > SL_KEY_MAX_FIELDS) {
        snprintf(err, errlen, "a key needs 1 to %d fields, got %u", SL_KEY_MAX_FIELDS, n);
        return SL_EINVAL;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (fields[i] >= sl_schema_nfields(schema)) {
            snprintf(err, errlen, "key field index %u out of range (the input has %u fields)", fields[i],
                     sl_schema_nfields(schema));
            return SL_EINVAL;
        }
        ks->fields[i] = fields[i];
        ks->types[i] = sl_schema_field(schema, fields[i])->type;
        ks->nullable[i] = sl_schema_field(schema, fields[i])->nullable;
    }
    ks->nfields = n;
    return 0;
}

static int ensure(sl_key_buf_t *k, uint32_t need) {
    if (need <= k->cap)
        return 0;
    uint32_t cap = k->cap ? k->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *d = sl_realloc(k->data, cap);
    if (d == NULL)
        return SL_ENOMEM;
    k->data = d;
    k->cap = cap;
    return 0;
}

int sl_key_extract(const sl_key_selector_t *ks, const sl_row_t *row, sl_key_buf_t *out) {
    if (ks->fn) {
        int rc = ensure(out, 64);
        if (rc)
            return rc;
        uint32_t len = 0;
        rc = ks->fn(ks->fn_ctx, row, out->data, out->cap, &len);
        if (rc == SL_ERANGE) {
            if ((rc = ensure(out, len)) != 0)
                return rc;
            rc = ks->fn(ks->fn_ctx, row, out->data, out->cap, &len);
        }
        if (rc)
            return SL_EUSER;
        out->len = len;
        return 0;
    }
    uint32_t off = 0;
    for (uint32_t i = 0; i < ks->nfields; i++) {
        uint32_t f = ks->fields[i];
        if (ks->nullable[i]) {
            if (ensure(out, off + 1))
                return SL_ENOMEM;
            out->data[off++] = sl_row_is_null(row, f) ? 0 : 1;
            if (out->data[off - 1] == 0)
                continue;
        }
        if (ks->types[i] == SL_TYPE_STRING || ks->types[i] == SL_TYPE_BYTES) {
            uint32_t len;
            const char *s = sl_row_str(row, f, &len);
            if (ensure(out, off + 4 + len))
                return SL_ENOMEM;
            memcpy(out->data + off, &len, 4);
            memcpy(out->data + off + 4, s, len);
            off += 4 + len;
        } else {
            if (ensure(out, off + 8))
                return SL_ENOMEM;
            memcpy(out->data + off, sl__row_slot(row, f), 8);
            off += 8;
        }
    }
    out->len = off;
    return 0;
}

int sl_key_decode(const sl_key_selector_t *ks, const uint8_t *key, uint32_t len, sl_row_builder_t *b,
                  uint32_t first) {
    uint32_t off = 0;
    for (uint32_t i = 0; i < ks->nfields; i++) {
        if (ks->nullable[i]) {
            if (off >= len)
                return SL_EPARSE;
            if (key[off++] == 0) {
                sl_row_set_null(b, first + i);
                continue;
            }
        }
        if (ks->types[i] == SL_TYPE_STRING || ks->types[i] == SL_TYPE_BYTES) {
            uint32_t n;
            if (off + 4 > len)
                return SL_EPARSE;
            memcpy(&n, key + off, 4);
            if (n > len - off - 4)
                return SL_EPARSE;
            sl_row_set_str(b, first + i, (const char *)key + off + 4, n);
            off += 4 + n;
            continue;
        }
        if (off + 8 > len)
            return SL_EPARSE;
        int64_t v;
        memcpy(&v, key + off, 8);
        if (ks->types[i] == SL_TYPE_DOUBLE) {
            double d;
            memcpy(&d, &v, 8);
            sl_row_set_f64(b, first + i, d);
        } else {
            sl_row_set_i64(b, first + i, v);
        }
        off += 8;
    }
    return off == len ? 0 : SL_EPARSE;
}

uint32_t sl_key_hash(const void *key, uint32_t len) { return sl_murmur3_32(key, len, 0); }
