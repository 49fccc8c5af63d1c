/* Builder calls for keyed operators: rolling aggregates and reduce, process functions,
 * windows and joins. Output schemas of aggregates are derived here, at build time, so a bad
 * aggregate or field is reported before the job runs. */
#include "api/job_internal.h"

#include <sluice/error.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "operators/agg.h"
#include "operators/key_selector.h"
#include "operators/window.h"

static bool keyed_or_fail(sl_stream_t *s, const char *what, const char *name) {
    if (s->keyed)
        return true;
    sl__job_fail(s->job, "%s '%s': the input is not keyed: call sl_stream_key_by() first", what, name);
    return false;
}

static const sl_aggregate_t *find_aggregate(void *arg, const char *symbol) {
    const sl_job_t *job = arg;
    return dlsym(job->user_lib ? job->user_lib : RTLD_DEFAULT, symbol);
}

/* Key fields of `s` (when keyed by fields), then window bounds if asked, then aggregates.
 * User aggregates are looked up now, for their result type and so a missing one is a build
 * error rather than a failure once the job runs. */
static sl_schema_t *agg_schema(sl_stream_t *s, const char *what, const char *name, const char *aggs, bool window) {
    sl_agg_list_t l;
    char err[512];
    if (sl_agg_compile(&l, aggs, s->schema, find_aggregate, s->job, err, sizeof err)) {
        sl__job_fail(s->job, "%s '%s': %s", what, name, err);
        return NULL;
    }
    sl_field_t f[SL_KEY_MAX_FIELDS + 2 + SL_AGG_LIMIT];
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->key.nfields; i++)
        f[n++] = *sl_schema_field(s->schema, s->key.fields[i]);
    if (window) {
        f[n++] = (sl_field_t){"window_start", SL_TYPE_TIMESTAMP, false};
        f[n++] = (sl_field_t){"window_end", SL_TYPE_TIMESTAMP, false};
    }
    for (uint32_t i = 0; i < l.n; i++) {
        bool counts = l.aggs[i].kind == SL_AGG_COUNT || l.aggs[i].kind == SL_AGG_COUNT_ALL;
        f[n++] = (sl_field_t){l.aggs[i].name, l.aggs[i].out_type, !counts};
    }
    sl_schema_t *schema;
    if (sl_schema_create(f, n, &schema)) {
        sl__job_fail(s->job, "%s '%s': output fields clash (a key field has an aggregate's or window's name)",
                     what, name);
        return NULL;
    }
    return schema;
}

static sl_stream_t *add_with_schema(sl_stream_t **in, uint32_t nin, const char *kind, const char *name,
                                    sl_schema_t *schema) {
    if (schema == NULL)
        return NULL;
    sl_stream_t *r = sl__job_add_schema(in[0]->job, kind, name, in, nin, schema);
    sl_schema_destroy(schema);
    return r;
}

sl_stream_t *sl_stream_aggregate(sl_stream_t *s, const char *name, const char *aggs) {
    if (s == NULL)
        return NULL;
    name = name ? name : "aggregate";
    if (!keyed_or_fail(s, "aggregate", name))
        return NULL;
    sl_stream_t *in[1] = {s};
    sl_stream_t *r = add_with_schema(in, 1, "aggregate", name, agg_schema(s, "aggregate", name, aggs, false));
    return sl_stream_param(r, "aggs", aggs);
}

sl_stream_t *sl_stream_reduce(sl_stream_t *s, const char *name, const char *fn) {
    if (s == NULL)
        return NULL;
    name = name ? name : "reduce";
    if (!keyed_or_fail(s, "reduce", name))
        return NULL;
    if (fn == NULL || fn[0] == '\0')
        return sl__job_fail(s->job, "reduce '%s': no function symbol given", name);
    sl_stream_t *in[1] = {s};
    return sl_stream_param(sl__job_add(s->job, "reduce", name, in, 1, NULL), "fn", fn);
}

static sl_stream_t *process_params(sl_stream_t *r, const char *fn, const char *timer) {
    r = sl_stream_param(r, "fn", fn);
    return timer ? sl_stream_param(r, "timer_fn", timer) : r;
}

sl_stream_t *sl_stream_process(sl_stream_t *s, const char *name, const char *fn, const char *timer,
                               const char *out_schema) {
    if (s == NULL)
        return NULL;
    name = name ? name : "process";
    if (fn == NULL || fn[0] == '\0')
        return sl__job_fail(s->job, "process '%s': no function symbol given", name);
    if (!keyed_or_fail(s, "process", name))
        return NULL;
    sl_stream_t *in[1] = {s};
    return process_params(sl__job_add(s->job, "process", name, in, 1, out_schema), fn, timer);
}

/* A declaration is the operator parameter "state.<kind>.<state>" = symbol, read by the operator
 * when its function first uses the state (operators/fn_state.c). The symbol is checked now, so a
 * missing or malformed one is a build error rather than a failure once the job runs. */
static sl_stream_t *declare_state(sl_stream_t *s, const char *kind, const char *state, const char *symbol) {
    if (s == NULL)
        return NULL;
    sl_stream_node_t *n = sl__stream_node(s);
    if (strcmp(n->kind, "process") != 0 && strcmp(n->kind, "co_process") != 0)
        return sl__job_fail(s->job, "%s state '%s': '%s' is not a process function", kind, state ? state : "",
                            n->name);
    if (state == NULL || state[0] == '\0')
        return sl__job_fail(s->job, "%s state of '%s': no state name given", kind, n->name);
    if (symbol == NULL || symbol[0] == '\0')
        return sl__job_fail(s->job, "%s state '%s' of '%s': no function symbol given", kind, state, n->name);
    char key[256], other[256];
    int len = snprintf(key, sizeof key, "state.%s.%s", kind, state);
    snprintf(other, sizeof other, "state.%s.%s", strcmp(kind, "reducing") == 0 ? "aggregating" : "reducing", state);
    if (len < 0 || (size_t)len >= sizeof key)
        return sl__job_fail(s->job, "%s state '%s' of '%s': the name is too long", kind, state, n->name);
    if (sl_params_get(&n->params, key) || sl_params_get(&n->params, other))
        return sl__job_fail(s->job, "%s state '%s' of '%s': the state is already declared", kind, state, n->name);
    void *p = dlsym(s->job->user_lib ? s->job->user_lib : RTLD_DEFAULT, symbol);
    if (p == NULL)
        return sl__job_fail(s->job, "%s state '%s' of '%s': symbol '%s' not found", kind, state, n->name, symbol);
    const sl_aggregate_t *a = p;
    if (strcmp(kind, "aggregating") == 0 &&
        (a->acc_size == 0 || a->acc_size > SL_AGG_USER_MAX_ACC || !a->init || !a->add || !a->result))
        return sl__job_fail(s->job, "%s state '%s' of '%s': aggregate '%s' needs init, add and result, and "
                            "acc_size 1..%d", kind, state, n->name, symbol, SL_AGG_USER_MAX_ACC);
    return sl_stream_param(s, key, symbol);
}

sl_stream_t *sl_stream_reducing_state(sl_stream_t *s, const char *state, const char *fn_symbol) {
    return declare_state(s, "reducing", state, fn_symbol);
}

sl_stream_t *sl_stream_aggregating_state(sl_stream_t *s, const char *state, const char *agg_symbol) {
    return declare_state(s, "aggregating", state, agg_symbol);
}

sl_stream_t *sl_stream_co_process(sl_stream_t *a, sl_stream_t *b, const char *name, const char *fn,
                                  const char *timer, const char *out_schema) {
    if (a == NULL || b == NULL)
        return NULL;
    name = name ? name : "co_process";
    if (fn == NULL || fn[0] == '\0')
        return sl__job_fail(a->job, "co_process '%s': no function symbol given", name);
    if (a->keyed != b->keyed)
        return sl__job_fail(a->job, "co_process '%s': key both inputs or neither", name);
    if (out_schema == NULL)
        return sl__job_fail(a->job, "co_process '%s': an output schema is required", name);
    sl_stream_t *in[2] = {a, b};
    return process_params(sl__job_add(a->job, "co_process", name, in, 2, out_schema), fn, timer);
}

static sl_stream_t *window_params(sl_stream_t *r, const sl_window_spec_t *w) {
    if (r == NULL)
        return NULL;
    char err[256];
    if (sl_window_spec_to_params(w, &sl__stream_node(r)->params, err, sizeof err))
        return sl__job_fail(r->job, "%s: %s", sl__stream_node(r)->name, err);
    return r;
}

sl_stream_t *sl_stream_window_aggregate(sl_stream_t *s, const char *name, const sl_window_spec_t *w,
                                        const char *aggs) {
    if (s == NULL)
        return NULL;
    name = name ? name : "window";
    if (!keyed_or_fail(s, "window", name))
        return NULL;
    if (w == NULL)
        return sl__job_fail(s->job, "window '%s': no window given", name);
    if (s->key.fn)
        return sl__job_fail(s->job, "window '%s': windows need a stream keyed by fields (the key is in the output)",
                            name);
    sl_stream_t *in[1] = {s};
    sl_stream_t *r =
        add_with_schema(in, 1, "window_aggregate", name, agg_schema(s, "window", name, aggs, true));
    return window_params(sl_stream_param(r, "aggs", aggs), w);
}

/* Left fields then right fields; a right field whose name is taken gets "right_". */
static sl_schema_t *concat_schema(sl_stream_t *l, sl_stream_t *r, const char *name) {
    uint32_t nl = sl_schema_nfields(l->schema), nr = sl_schema_nfields(r->schema);
    if (nl + nr > SL_ROW_MAX_FIELDS) {
        sl__job_fail(l->job, "join '%s': too many fields", name);
        return NULL;
    }
    sl_field_t f[SL_ROW_MAX_FIELDS];
    char names[SL_ROW_MAX_FIELDS][80];
    for (uint32_t i = 0; i < nl; i++)
        f[i] = *sl_schema_field(l->schema, i);
    for (uint32_t i = 0; i < nr; i++) {
        f[nl + i] = *sl_schema_field(r->schema, i);
        if (sl_schema_index(l->schema, f[nl + i].name) >= 0) {
            snprintf(names[i], sizeof names[i], "right_%s", f[nl + i].name);
            f[nl + i].name = names[i];
        }
    }
    sl_schema_t *s;
    if (sl_schema_create(f, nl + nr, &s)) {
        sl__job_fail(l->job, "join '%s': cannot name the output fields; give a join function and a schema", name);
        return NULL;
    }
    return s;
}

static sl_stream_t *join(sl_stream_t *l, sl_stream_t *r, const char *kind, const char *name, const char *fn,
                         const char *out_schema) {
    if (l == NULL || r == NULL)
        return NULL;
    if (!keyed_or_fail(l, kind, name) || !keyed_or_fail(r, kind, name))
        return NULL;
    sl_stream_t *in[2] = {l, r};
    sl_stream_t *j;
    if (fn) {
        if (out_schema == NULL)
            return sl__job_fail(l->job, "%s '%s': a join function needs an output schema", kind, name);
        j = sl__job_add(l->job, kind, name, in, 2, out_schema);
        return sl_stream_param(j, "fn", fn);
    }
    return add_with_schema(in, 2, kind, name, concat_schema(l, r, name));
}

sl_stream_t *sl_stream_window_join(sl_stream_t *l, sl_stream_t *r, const char *name, const sl_window_spec_t *w,
                                   const char *fn, const char *out_schema) {
    name = name ? name : "window_join";
    if (l && w == NULL)
        return sl__job_fail(l->job, "window join '%s': no window given", name);
    if (l && w->kind == SL_WINDOW_SESSION)
        return sl__job_fail(l->job, "window join '%s': only tumbling and sliding windows", name);
    return window_params(join(l, r, "window_join", name, fn, out_schema), w);
}

sl_stream_t *sl_stream_interval_join(sl_stream_t *l, sl_stream_t *r, const char *name, int64_t lower, int64_t upper,
                                     const char *fn, const char *out_schema) {
    name = name ? name : "interval_join";
    if (l && lower > upper)
        return sl__job_fail(l->job, "interval join '%s': lower bound %lld > upper bound %lld", name,
                            (long long)lower, (long long)upper);
    sl_stream_t *j = join(l, r, "interval_join", name, fn, out_schema);
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)lower);
    j = sl_stream_param(j, "lower_ms", v);
    snprintf(v, sizeof v, "%lld", (long long)upper);
    return sl_stream_param(j, "upper_ms", v);
}
