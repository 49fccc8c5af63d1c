/* Operator parameters (see params.h). Small lists: linear search is the right structure. */
#include "core/params.h"

#include <sluice/error.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void sl_params_init(sl_params_t *p) { memset(p, 0, sizeof *p); }

void sl_params_destroy(sl_params_t *p) {
    for (uint32_t i = 0; i < p->n; i++) {
        sl_free(p->items[i].key);
        sl_free(p->items[i].value);
    }
    sl_free(p->items);
    memset(p, 0, sizeof *p);
}

int sl_params_copy(sl_params_t *dst, const sl_params_t *src) {
    sl_params_init(dst);
    for (uint32_t i = 0; i < src->n; i++) {
        int rc = sl_params_set(dst, src->items[i].key, src->items[i].value);
        if (rc) {
            sl_params_destroy(dst);
            return rc;
        }
    }
    return 0;
}

static sl_param_t *find(const sl_params_t *p, const char *key) {
    for (uint32_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].key, key) == 0)
            return &p->items[i];
    return NULL;
}

int sl_params_set(sl_params_t *p, const char *key, const char *value) {
    char *v = sl_strdup(value);
    if (v == NULL)
        return SL_ENOMEM;
    sl_param_t *it = find(p, key);
    if (it) {
        sl_free(it->value);
        it->value = v;
        return 0;
    }
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 8;
        sl_param_t *ni = sl_realloc(p->items, cap * sizeof *ni);
        if (ni == NULL) {
            sl_free(v);
            return SL_ENOMEM;
        }
        p->items = ni;
        p->cap = cap;
    }
    char *k = sl_strdup(key);
    if (k == NULL) {
        sl_free(v);
        return SL_ENOMEM;
    }
    p->items[p->n++] = (sl_param_t){k, v};
    return 0;
}

int sl_params_set_int(sl_params_t *p, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return sl_params_set(p, key, buf);
}

int sl_params_set_double(sl_params_t *p, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    return sl_params_set(p, key, buf);
}

const char *sl_params_get(const sl_params_t *p, const char *key) {
    sl_param_t *it = find(p, key);
    return it ? it->value : NULL;
}

int sl_params_int(const sl_params_t *p, const char *key, int64_t dflt, int64_t *out) {
    const char *v = sl_params_get(p, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return SL_EINVAL;
    *out = x;
    return 0;
}

int sl_params_double(const sl_params_t *p, const char *key, double dflt, double *out) {
    const char *v = sl_params_get(p, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end)
        return SL_EINVAL;
    *out = x;
    return 0;
}

int sl_params_bool(const sl_params_t *p, const char *key, bool dflt, bool *out) {
    const char *v = sl_params_get(p, key);
    if (v == NULL)
        *out = dflt;
    else if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return SL_EINVAL;
    return 0;
}

int sl_params_int_list(const sl_params_t *p, const char *key, uint32_t *out, uint32_t max) {
    const char *v = sl_params_get(p, key);
    if (v == NULL)
        return 0;
    int n = 0;
    while (*v) {
        char *end;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || x < 0 || x > UINT32_MAX || (uint32_t)n == max)
            return SL_EINVAL;
        out[n++] = (uint32_t)x;
        if (*end == ',')
            end++;
        else if (*end)
            return SL_EINVAL;
        v = end;
    }
    return n;
}
