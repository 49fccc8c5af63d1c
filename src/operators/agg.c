/* Aggregates (see agg.h). Accumulators are small structs copied in and out of the block with
 * memcpy, since a block read from state has no alignment guarantee. */
#include "operators/agg.h"

#include <sluice/error.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

typedef struct {
    int64_t n;
    union {
        int64_t i;
        double d;
    } v;
} acc_t;

static bool is_int(sl_type_t t) { return t == SL_TYPE_INT32 || t == SL_TYPE_INT64 || t == SL_TYPE_TIMESTAMP; }

static int resolve_field(const sl_schema_t *in, const char *arg, uint32_t *out) {
    char *end;
    long v = strtol(arg, &end, 10);
    if (*arg && *end == '\0') {
        if (v < 0 || (uint32_t)v >= sl_schema_nfields(in))
            return -1;
        *out = (uint32_t)v;
        return 0;
    }
    int i = sl_schema_index(in, arg);
    if (i < 0)
        return -1;
    *out = (uint32_t)i;
    return 0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int compile_one(sl_agg_list_t *l, char *item, const sl_schema_t *in, sl_agg_resolver_t resolve, void *arg,
                       char *err, size_t errlen) {
    static const struct {
        const char *name;
        sl_agg_kind_t kind;
    } fns[] = {{"count", SL_AGG_COUNT}, {"sum", SL_AGG_SUM}, {"min", SL_AGG_MIN},
               {"max", SL_AGG_MAX},     {"avg", SL_AGG_AVG}, {"agg", SL_AGG_USER}};
    char *open = strchr(item, '('), *close = strrchr(item, ')');
    if (open == NULL || close == NULL || close < open || trim(close + 1)[0] != '\0') {
        snprintf(err, errlen, "aggregate '%s': expected name(argument)", item);
        return SL_EJOB;
    }
    *open = '\0';
    *close = '\0';
    char *fname = trim(item), *farg = trim(open + 1);
    sl_agg_t *a = &l->aggs[l->n];
    memset(a, 0, sizeof *a);
    size_t k = 0;
    while (k < sizeof fns / sizeof fns[0] && strcmp(fns[k].name, fname) != 0)
        k++;
    if (k == sizeof fns / sizeof fns[0]) {
        snprintf(err, errlen, "unknown aggregate '%s' (count, sum, min, max, avg, agg)", fname);
        return SL_EJOB;
    }
    a->kind = fns[k].kind;
    a->size = sizeof(acc_t);
    if (a->kind == SL_AGG_USER) {
        if (farg[0] == '\0') {
            snprintf(err, errlen, "agg(): the symbol of an sl_aggregate_t is required");
            return SL_EJOB;
        }
        a->user = resolve ? resolve(arg, farg) : NULL;
        if (resolve && a->user == NULL) {
            snprintf(err, errlen, "aggregate symbol '%s' not found", farg);
            return SL_EJOB;
        }
        if (a->user && (a->user->acc_size > SL_AGG_USER_MAX_ACC || !a->user->init || !a->user->add ||
                        !a->user->result)) {
            snprintf(err, errlen, "aggregate '%s': needs init, add and result, and acc_size <= %d bytes", farg,
                     SL_AGG_USER_MAX_ACC);
            return SL_EJOB;
        }
        a->out_type = a->user ? a->user->result_type : SL_TYPE_DOUBLE;
        a->size = a->user ? (a->user->acc_size + 7u) & ~7u : 8;
        snprintf(a->name, sizeof a->name, "%s", farg);
        return 0;
    }
    if (a->kind == SL_AGG_COUNT && farg[0] == '\0') {
        a->kind = SL_AGG_COUNT_ALL;
        a->out_type = SL_TYPE_INT64;
        snprintf(a->name, sizeof a->name, "count");
        return 0;
    }
    if (resolve_field(in, farg, &a->field)) {
        snprintf(err, errlen, "%s(%s): no such field (or index out of range)", fname, farg);
        return SL_EJOB;
    }
    const sl_field_t *f = sl_schema_field(in, a->field);
    a->in_type = f->type;
    snprintf(a->name, sizeof a->name, "%s_%s", fname, f->name);
    switch (a->kind) {
    case SL_AGG_COUNT:
        a->out_type = SL_TYPE_INT64;
        return 0;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        if (!is_int(f->type) && f->type != SL_TYPE_DOUBLE)
            break;
        a->out_type = a->kind == SL_AGG_AVG || f->type == SL_TYPE_DOUBLE ? SL_TYPE_DOUBLE : SL_TYPE_INT64;
        return 0;
    default: /* min, max */
        if (!is_int(f->type) && f->type != SL_TYPE_DOUBLE)
            break;
        a->out_type = f->type;
        return 0;
    }
    snprintf(err, errlen, "%s(%s): field is %s, not a number", fname, farg, sl_type_name(f->type));
    return SL_EJOB;
}

int sl_agg_compile(sl_agg_list_t *l, const char *spec, const sl_schema_t *in, sl_agg_resolver_t resolve, void *arg,
                   char *err, size_t errlen) {
    memset(l, 0, sizeof *l);
    if (spec == NULL || spec[0] == '\0') {
        snprintf(err, errlen, "no aggregates given");
        return SL_EJOB;
    }
    char *copy = sl_strdup(spec), *save = NULL;
    if (copy == NULL)
        return SL_ENOMEM;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save)) {
        if (l->n == SL_AGG_LIMIT) {
            snprintf(err, errlen, "more than %d aggregates", SL_AGG_LIMIT);
            rc = SL_EJOB;
            break;
        }
        if ((rc = compile_one(l, item, in, resolve, arg, err, errlen)) == 0) {
            l->aggs[l->n].offset = l->acc_size;
            l->acc_size += l->aggs[l->n].size;
            l->n++;
        }
    }
    sl_free(copy);
    return rc;
}

/* Accumulators sit at any byte offset inside state values, but user code may cast them to its
 * struct: user aggregates get a copy in an aligned buffer. */
typedef struct {
    _Alignas(16) uint8_t b[SL_AGG_USER_MAX_ACC];
} aligned_acc_t;

void sl_agg_init(const sl_agg_list_t *l, void *acc) {
    memset(acc, 0, l->acc_size);
    for (uint32_t i = 0; i < l->n; i++)
        if (l->aggs[i].user) {
            aligned_acc_t a;
            l->aggs[i].user->init(a.b);
            memcpy((uint8_t *)acc + l->aggs[i].offset, a.b, l->aggs[i].user->acc_size);
        }
}

static void add_one(const sl_agg_t *a, acc_t *s, const sl_row_t *row) {
    if (a->kind == SL_AGG_COUNT_ALL) {
        s->n++;
        return;
    }
    if (sl_row_is_null(row, a->field))
        return;
    bool dbl = a->in_type == SL_TYPE_DOUBLE;
    int64_t iv = dbl ? 0 : sl_row_i64(row, a->field);
    double dv = dbl ? sl_row_f64(row, a->field) : 0;
    switch (a->kind) {
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        if (dbl || a->kind == SL_AGG_AVG)
            s->v.d += dbl ? dv : (double)iv;
        else /* wraps like Java's long instead of overflowing (undefined in C) */
            s->v.i = (int64_t)((uint64_t)s->v.i + (uint64_t)iv);
        break;
    case SL_AGG_MIN:
        if (s->n == 0 || (dbl ? dv < s->v.d : iv < s->v.i))
            dbl ? (void)(s->v.d = dv) : (void)(s->v.i = iv);
        break;
    case SL_AGG_MAX:
        if (s->n == 0 || (dbl ? dv > s->v.d : iv > s->v.i))
            dbl ? (void)(s->v.d = dv) : (void)(s->v.i = iv);
        break;
    default:
        break;
    }
    s->n++;
}

void sl_agg_add(const sl_agg_list_t *l, void *acc, const sl_row_t *row) {
    for (uint32_t i = 0; i < l->n; i++) {
        const sl_agg_t *a = &l->aggs[i];
        uint8_t *p = (uint8_t *)acc + a->offset;
        if (a->user) {
            aligned_acc_t x;
            memcpy(x.b, p, a->user->acc_size);
            a->user->add(x.b, row);
            memcpy(p, x.b, a->user->acc_size);
            continue;
        }
        acc_t s;
        memcpy(&s, p, sizeof s);
        add_one(a, &s, row);
        memcpy(p, &s, sizeof s);
    }
}

void sl_agg_merge(const sl_agg_list_t *l, void *acc, const void *other) {
    for (uint32_t i = 0; i < l->n; i++) {
        const sl_agg_t *a = &l->aggs[i];
        uint8_t *p = (uint8_t *)acc + a->offset;
        const uint8_t *q = (const uint8_t *)other + a->offset;
        if (a->user) {
            if (a->user->merge) {
                aligned_acc_t x, y;
                memcpy(x.b, p, a->user->acc_size);
                memcpy(y.b, q, a->user->acc_size);
                a->user->merge(x.b, y.b);
                memcpy(p, x.b, a->user->acc_size);
            }
            continue;
        }
        acc_t x, y;
        memcpy(&x, p, sizeof x);
        memcpy(&y, q, sizeof y);
        bool dbl = a->in_type == SL_TYPE_DOUBLE || a->kind == SL_AGG_AVG;
        if (y.n) {
            switch (a->kind) {
            case SL_AGG_SUM:
            case SL_AGG_AVG:
                dbl ? (void)(x.v.d += y.v.d) : (void)(x.v.i = (int64_t)((uint64_t)x.v.i + (uint64_t)y.v.i));
                break;
            case SL_AGG_MIN:
                if (x.n == 0 || (dbl ? y.v.d < x.v.d : y.v.i < x.v.i))
                    x.v = y.v;
                break;
            case SL_AGG_MAX:
                if (x.n == 0 || (dbl ? y.v.d > x.v.d : y.v.i > x.v.i))
                    x.v = y.v;
                break;
            default:
                break;
            }
        }
        x.n += y.n;
        memcpy(p, &x, sizeof x);
    }
}

void sl_agg_results(const sl_agg_list_t *l, const void *acc, sl_row_builder_t *out, uint32_t first) {
    for (uint32_t i = 0; i < l->n; i++) {
        const sl_agg_t *a = &l->aggs[i];
        const uint8_t *p = (const uint8_t *)acc + a->offset;
        uint32_t f = first + i;
        if (a->user) {
            aligned_acc_t x;
            memcpy(x.b, p, a->user->acc_size);
            a->user->result(x.b, out, f);
            continue;
        }
        acc_t s;
        memcpy(&s, p, sizeof s);
        if (a->kind == SL_AGG_COUNT_ALL || a->kind == SL_AGG_COUNT)
            sl_row_set_i64(out, f, s.n);
        else if (s.n == 0)
            sl_row_set_null(out, f);
        else if (a->kind == SL_AGG_AVG)
            sl_row_set_f64(out, f, s.v.d / (double)s.n);
        else if (a->out_type == SL_TYPE_DOUBLE)
            sl_row_set_f64(out, f, s.v.d);
        else
            sl_row_set_i64(out, f, s.v.i);
    }
}

int sl_agg_mergeable(const sl_agg_list_t *l) {
    for (uint32_t i = 0; i < l->n; i++)
        if (l->aggs[i].user && l->aggs[i].user->merge == NULL)
            return 0;
    return 1;
}
