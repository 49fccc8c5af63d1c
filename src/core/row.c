/* Row building, validation and formatting. Reading is inline in <sluice/row.h>. */
#include <sluice/error.h>
#include <sluice/row.h>

#include <inttypes.h>
#include <stdio.h>

#include "core/alloc.h"

void sl_row_builder_init(sl_row_builder_t *b) { memset(b, 0, sizeof *b); }

void sl_row_builder_destroy(sl_row_builder_t *b) {
    sl_free(b->_buf);
    memset(b, 0, sizeof *b);
}

static int reserve(sl_row_builder_t *b, uint32_t need) {
    if (need <= b->_cap)
        return 0;
    uint32_t cap = b->_cap ? b->_cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *nb = sl_realloc(b->_buf, cap);
    if (nb == NULL)
        return SL_ENOMEM;
    b->_buf = nb;
    b->_cap = cap;
    return 0;
}

void sl_row_builder_start(sl_row_builder_t *b, uint32_t nfields) {
    b->_err = 0;
    b->_nfields = nfields;
    b->_hdr = sl__row_header_size(nfields);
    b->_len = b->_hdr + 8u * nfields;
    if (nfields > SL_ROW_MAX_FIELDS) {
        b->_err = SL_ERANGE;
        return;
    }
    if (reserve(b, b->_len) != 0) {
        b->_err = SL_ENOMEM;
        b->_len = 0;
        return;
    }
    memset(b->_buf, 0, b->_len);
    uint64_t w = nfields;
    memcpy(b->_buf, &w, 8 > b->_hdr ? b->_hdr : 8);
}

static inline uint8_t *slot(sl_row_builder_t *b, uint32_t i) {
    if (__builtin_expect(!!(i >= b->_nfields || b->_err), 0)) {
        if (!b->_err)
            b->_err = SL_ERANGE;
        return NULL;
    }
    return b->_buf + b->_hdr + 8u * i;
}

void sl_row_set_null(sl_row_builder_t *b, uint32_t i) {
    uint8_t *s = slot(b, i);
    if (s == NULL)
        return;
    uint32_t bit = 16u + i;
    b->_buf[bit >> 3] |= (uint8_t)(1u << (bit & 7u));
    memset(s, 0, 8);
}

static void clear_null(sl_row_builder_t *b, uint32_t i) {
    uint32_t bit = 16u + i;
    b->_buf[bit >> 3] &= (uint8_t) ~(1u << (bit & 7u));
}

void sl_row_set_i64(sl_row_builder_t *b, uint32_t i, int64_t v) {
    uint8_t *s = slot(b, i);
    if (s == NULL)
        return;
    clear_null(b, i);
    memcpy(s, &v, 8);
}

void sl_row_set_i32(sl_row_builder_t *b, uint32_t i, int32_t v) { sl_row_set_i64(b, i, v); }
void sl_row_set_bool(sl_row_builder_t *b, uint32_t i, bool v) { sl_row_set_i64(b, i, v ? 1 : 0); }
void sl_row_set_ts(sl_row_builder_t *b, uint32_t i, int64_t ms) { sl_row_set_i64(b, i, ms); }

void sl_row_set_f64(sl_row_builder_t *b, uint32_t i, double v) {
    uint8_t *s = slot(b, i);
    if (s == NULL)
        return;
    clear_null(b, i);
    memcpy(s, &v, 8);
}

void sl_row_set_str(sl_row_builder_t *b, uint32_t i, const char *str, uint32_t len) {
    if (slot(b, i) == NULL)
        return;
    if (reserve(b, b->_len + len) != 0) {
        b->_err = SL_ENOMEM;
        return;
    }
    /* Slot pointer is taken after reserve: the buffer may have moved. */
    uint8_t *s = b->_buf + b->_hdr + 8u * i;
    clear_null(b, i);
    memcpy(b->_buf + b->_len, str, len);
    uint64_t w = ((uint64_t)len << 32) | b->_len;
    memcpy(s, &w, 8);
    b->_len += len;
}

void sl_row_set_cstr(sl_row_builder_t *b, uint32_t i, const char *s) {
    sl_row_set_str(b, i, s, (uint32_t)strlen(s));
}

void sl_row_copy_field(sl_row_builder_t *b, uint32_t i, const sl_row_t *src, uint32_t src_i,
                       sl_type_t type) {
    if (sl_row_is_null(src, src_i)) {
        sl_row_set_null(b, i);
        return;
    }
    if (type == SL_TYPE_STRING || type == SL_TYPE_BYTES) {
        uint32_t len;
        const char *p = sl_row_str(src, src_i, &len);
        sl_row_set_str(b, i, p, len);
        return;
    }
    uint8_t *s = slot(b, i);
    if (s == NULL)
        return;
    clear_null(b, i);
    memcpy(s, sl__row_slot(src, src_i), 8);
}

int sl_row_builder_finish(sl_row_builder_t *b, sl_row_t *out) {
    if (b->_err)
        return b->_err;
    out->data = b->_buf;
    out->len = b->_len;
    return 0;
}

int sl_row_validate(const sl_row_t *r, const sl_schema_t *s) {
    uint32_t n = sl_schema_nfields(s);
    if (r->len < 8 || sl_row_nfields(r) != n)
        return SL_ESCHEMA;
    uint32_t fixed_end = sl__row_header_size(n) + 8u * n;
    if (r->len < fixed_end)
        return SL_ESCHEMA;
    for (uint32_t i = 0; i < n; i++) {
        const sl_field_t *f = sl_schema_field(s, i);
        bool null = sl_row_is_null(r, i);
        if (null && !f->nullable)
            return SL_ESCHEMA;
        if (!null && (f->type == SL_TYPE_STRING || f->type == SL_TYPE_BYTES)) {
            uint64_t w = sl__row_word(sl__row_slot(r, i));
            uint32_t off = (uint32_t)w, len = (uint32_t)(w >> 32);
            if (off < fixed_end || (uint64_t)off + len > r->len)
                return SL_ESCHEMA;
        }
    }
    return 0;
}

static int fmt_quoted(const char *s, uint32_t len, char *buf, size_t cap) {
    bool quote = false;
    for (uint32_t i = 0; i < len; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            quote = true;
    size_t o = 0;
    if (quote) {
        if (o + 1 >= cap)
            return SL_ERANGE;
        buf[o++] = '"';
    }
    for (uint32_t i = 0; i < len; i++) {
        if (o + 3 >= cap)
            return SL_ERANGE;
        if (quote && s[i] == '"')
            buf[o++] = '"';
        buf[o++] = s[i];
    }
    if (quote) {
        if (o + 1 >= cap)
            return SL_ERANGE;
        buf[o++] = '"';
    }
    buf[o] = '\0';
    return (int)o;
}

int sl_row_format_field(const sl_row_t *r, const sl_schema_t *s, uint32_t i, char *buf, size_t len) {
    const sl_field_t *f = sl_schema_field(s, i);
    if (f == NULL || len == 0)
        return SL_ERANGE;
    if (sl_row_is_null(r, i)) {
        buf[0] = '\0';
        return 0;
    }
    int w;
    switch (f->type) {
    case SL_TYPE_BOOL:
        w = snprintf(buf, len, "%s", sl_row_bool(r, i) ? "true" : "false");
        break;
    case SL_TYPE_INT32:
    case SL_TYPE_INT64:
    case SL_TYPE_TIMESTAMP:
        w = snprintf(buf, len, "%" PRId64, sl_row_i64(r, i));
        break;
    case SL_TYPE_DOUBLE:
        w = snprintf(buf, len, "%.3f", sl_row_f64(r, i));
        break;
    default: {
        uint32_t sl;
        const char *sp = sl_row_str(r, i, &sl);
        return fmt_quoted(sp, sl, buf, len);
    }
    }
    return (w < 0 || (size_t)w >= len) ? SL_ERANGE : w;
}
