/* Schemas: typed field lists, reference counted and immutable after creation, so operators on
 * different threads can share one without locking. */
#include <sluice/error.h>
#include <sluice/row.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

struct sl_schema_s {
    atomic_int refs;
    uint32_t n;
    sl_field_t *fields;
};

static const char *type_names[] = {"bool", "int32", "int64", "double", "timestamp", "string", "bytes"};

const char *sl_type_name(sl_type_t t) {
    if ((unsigned)t < sizeof type_names / sizeof type_names[0])
        return type_names[t];
    return "?";
}

static void free_fields(sl_field_t *f, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        sl_free((char *)f[i].name);
    sl_free(f);
}

int sl_schema_create(const sl_field_t *fields, uint32_t n, sl_schema_t **out) {
    if (n == 0 || n > SL_ROW_MAX_FIELDS)
        return SL_EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        if (fields[i].name == NULL || fields[i].name[0] == '\0' || (unsigned)fields[i].type > SL_TYPE_BYTES)
            return SL_EINVAL;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(fields[i].name, fields[j].name) == 0)
                return SL_EINVAL;
    }
    sl_schema_t *s = sl_calloc(1, sizeof *s);
    sl_field_t *f = sl_calloc(n, sizeof *f);
    if (s == NULL || f == NULL) {
        sl_free(s);
        sl_free(f);
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        f[i] = fields[i];
        f[i].name = sl_strdup(fields[i].name);
        if (f[i].name == NULL) {
            free_fields(f, i);
            sl_free(s);
            return SL_ENOMEM;
        }
    }
    atomic_init(&s->refs, 1);
    s->n = n;
    s->fields = f;
    *out = s;
    return 0;
}

static int parse_type(const char *t, size_t len, sl_type_t *out) {
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++) {
        if (strlen(type_names[i]) == len && memcmp(type_names[i], t, len) == 0) {
            *out = (sl_type_t)i;
            return 0;
        }
    }
    return SL_EPARSE;
}

int sl_schema_parse(const char *spec, sl_schema_t **out, char *err, size_t errlen) {
    sl_field_t fields[SL_ROW_MAX_FIELDS];
    char names[SL_ROW_MAX_FIELDS][64];
    uint32_t n = 0;
    const char *p = spec;
    if (err && errlen)
        err[0] = '\0';
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (n == SL_ROW_MAX_FIELDS) {
            if (err)
                snprintf(err, errlen, "schema: more than %d fields", SL_ROW_MAX_FIELDS);
            return SL_EPARSE;
        }
        if (colon == NULL || colon == p || (size_t)(colon - p) >= sizeof names[0]) {
            if (err)
                snprintf(err, errlen, "schema field %u '%.*s': expected name:type", n + 1, (int)len, p);
            return SL_EPARSE;
        }
        size_t nlen = (size_t)(colon - p);
        memcpy(names[n], p, nlen);
        names[n][nlen] = '\0';
        const char *t = colon + 1;
        size_t tlen = len - nlen - 1;
        bool nullable = tlen > 0 && t[tlen - 1] == '?';
        if (nullable)
            tlen--;
        sl_type_t type;
        if (parse_type(t, tlen, &type) != 0) {
            if (err)
                snprintf(err, errlen, "schema field '%s': unknown type '%.*s'", names[n], (int)tlen, t);
            return SL_EPARSE;
        }
        fields[n] = (sl_field_t){.name = names[n], .type = type, .nullable = nullable};
        n++;
        p += len;
        if (*p == ',')
            p++;
    }
    int rc = sl_schema_create(fields, n, out);
    if (rc == SL_EINVAL) {
        if (err)
            snprintf(err, errlen, "schema '%s': empty or duplicate field names", spec);
        return SL_EPARSE;
    }
    return rc;
}

sl_schema_t *sl_schema_ref(sl_schema_t *s) {
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void sl_schema_destroy(sl_schema_t *s) {
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    free_fields(s->fields, s->n);
    sl_free(s);
}

uint32_t sl_schema_nfields(const sl_schema_t *s) { return s->n; }

const sl_field_t *sl_schema_field(const sl_schema_t *s, uint32_t i) {
    return i < s->n ? &s->fields[i] : NULL;
}

int sl_schema_index(const sl_schema_t *s, const char *name) {
    for (uint32_t i = 0; i < s->n; i++)
        if (strcmp(s->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

int sl_schema_format(const sl_schema_t *s, char *buf, size_t len) {
    size_t off = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        int w = snprintf(buf + off, len - off, "%s%s:%s%s", i ? "," : "", s->fields[i].name,
                         sl_type_name(s->fields[i].type), s->fields[i].nullable ? "?" : "");
        if (w < 0 || (size_t)w >= len - off)
            return SL_ERANGE;
        off += (size_t)w;
    }
    return 0;
}
