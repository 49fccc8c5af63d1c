/* CSV line parser (see csv_parse.h). Fields are cut in place; only quoted fields with doubled
 * quotes are unescaped into a scratch buffer. */
#include "connectors/csv_parse.h"

#include <sluice/error.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t errlen, const sl_field_t *f, uint32_t col, const char *p, size_t n,
               const char *what) {
    snprintf(err, errlen, "column %u (%s): '%.*s' is not %s", col + 1, f->name, (int)(n > 64 ? 64 : n), p, what);
    return SL_EPARSE;
}

static int parse_int(const char *p, size_t n, int64_t lo, int64_t hi, int64_t *out) {
    char buf[32];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *p, size_t n, double *out) {
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno == ERANGE || *end != '\0' || isnan(v))
        return -1;
    *out = v;
    return 0;
}

static int set_field(sl_row_builder_t *b, uint32_t i, const sl_field_t *f, const char *p, size_t n, bool quoted,
                     char *err, size_t errlen) {
    if (n == 0 && !quoted && f->type != SL_TYPE_STRING && f->type != SL_TYPE_BYTES) {
        if (!f->nullable)
            return bad(err, errlen, f, i, p, n, "a value (empty, and the field is not nullable)");
        sl_row_set_null(b, i);
        return 0;
    }
    int64_t v;
    double d;
    switch (f->type) {
    case SL_TYPE_BOOL:
        if (n == 4 && strncmp(p, "true", 4) == 0)
            sl_row_set_bool(b, i, true);
        else if (n == 5 && strncmp(p, "false", 5) == 0)
            sl_row_set_bool(b, i, false);
        else
            return bad(err, errlen, f, i, p, n, "a bool (true or false)");
        return 0;
    case SL_TYPE_INT32:
        if (parse_int(p, n, INT32_MIN, INT32_MAX, &v))
            return bad(err, errlen, f, i, p, n, "an int32");
        sl_row_set_i32(b, i, (int32_t)v);
        return 0;
    case SL_TYPE_INT64:
    case SL_TYPE_TIMESTAMP:
        if (parse_int(p, n, INT64_MIN, INT64_MAX, &v))
            return bad(err, errlen, f, i, p, n, f->type == SL_TYPE_INT64 ? "an int64" : "a timestamp (epoch ms)");
        sl_row_set_i64(b, i, v);
        return 0;
    case SL_TYPE_DOUBLE:
        if (parse_double(p, n, &d))
            return bad(err, errlen, f, i, p, n, "a number");
        sl_row_set_f64(b, i, d);
        return 0;
    default:
        sl_row_set_str(b, i, p, (uint32_t)n);
        return 0;
    }
}

int sl_csv_parse_row(const char *line, size_t len, const sl_schema_t *s, sl_row_builder_t *b, char *err,
                     size_t errlen) {
    uint32_t nf = sl_schema_nfields(s);
    char scratch[4096];
    size_t pos = 0;
    if (len && line[len - 1] == '\r')
        len--;
    sl_row_builder_start(b, nf);
    for (uint32_t i = 0; i < nf; i++) {
        const sl_field_t *f = sl_schema_field(s, i);
        if (pos > len) {
            snprintf(err, errlen, "%u fields, expected %u", i, nf);
            return SL_EPARSE;
        }
        const char *p = line + pos;
        size_t n;
        bool quoted = pos < len && line[pos] == '"';
        if (quoted) {
            size_t o = 0, q = pos + 1;
            for (;;) {
                if (q >= len) {
                    snprintf(err, errlen, "column %u (%s): unterminated quote", i + 1, f->name);
                    return SL_EPARSE;
                }
                if (line[q] == '"') {
                    if (q + 1 < len && line[q + 1] == '"') {
                        q += 2;
                        if (o < sizeof scratch)
                            scratch[o++] = '"';
                        continue;
                    }
                    break;
                }
                if (o < sizeof scratch)
                    scratch[o++] = line[q];
                q++;
            }
            if (o == sizeof scratch) {
                snprintf(err, errlen, "column %u (%s): quoted field longer than %zu bytes", i + 1, f->name,
                         sizeof scratch - 1);
                return SL_EPARSE;
            }
            p = scratch;
            n = o;
            pos = q + 1;
            if (pos < len && line[pos] != ',') {
                snprintf(err, errlen, "column %u (%s): text after the closing quote", i + 1, f->name);
                return SL_EPARSE;
            }
        } else {
            const char *c = memchr(line + pos, ',', len - pos);
            n = c ? (size_t)(c - (line + pos)) : len - pos;
            pos += n;
        }
        pos++; /* the comma */
        int rc = set_field(b, i, f, p, n, quoted, err, errlen);
        if (rc)
            return rc;
    }
    if (pos <= len) {
        snprintf(err, errlen, "more than %u fields", nf);
        return SL_EPARSE;
    }
    return 0;
}
