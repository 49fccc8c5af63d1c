/* Builder calls for stateless transformations and event time. */
#include "api/job_internal.h"

#include <sluice/error.h>

#include <stdio.h>

static sl_stream_t *with_fn(sl_stream_t *s, const char *kind, const char *name, const char *fn,
                            const char *schema) {
    if (s == NULL)
        return NULL;
    if (fn == NULL || fn[0] == '\0')
        return sl__job_fail(s->job, "%s '%s': no function symbol given", kind, name ? name : kind);
    sl_stream_t *in[1] = {s};
    sl_stream_t *r = sl__job_add(s->job, kind, name ? name : kind, in, 1, schema);
    return sl_stream_param(r, "fn", fn);
}

sl_stream_t *sl_stream_map(sl_stream_t *s, const char *name, const char *fn, const char *out_schema) {
    if (s && (out_schema == NULL || out_schema[0] == '\0'))
        return sl__job_fail(s->job, "map '%s': an output schema is required", name ? name : "map");
    return with_fn(s, "map", name, fn, out_schema);
}

sl_stream_t *sl_stream_filter(sl_stream_t *s, const char *name, const char *fn) {
    return with_fn(s, "filter", name, fn, NULL);
}

sl_stream_t *sl_stream_flat_map(sl_stream_t *s, const char *name, const char *fn, const char *out_schema) {
    if (s && (out_schema == NULL || out_schema[0] == '\0'))
        return sl__job_fail(s->job, "flat_map '%s': an output schema is required", name ? name : "flat_map");
    return with_fn(s, "flat_map", name, fn, out_schema);
}

sl_stream_t *sl_stream_project(sl_stream_t *s, const char *name, const char *fields) {
    if (s == NULL)
        return NULL;
    name = name ? name : "project";
    uint32_t idx[SL_ROW_MAX_FIELDS];
    char err[512];
    int n = sl__resolve_fields(s->schema, fields, idx, SL_ROW_MAX_FIELDS, err, sizeof err);
    if (n < 0)
        return sl__job_fail(s->job, "project '%s': %s", name, err);
    sl_field_t f[SL_ROW_MAX_FIELDS];
    char list[4096];
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        f[i] = *sl_schema_field(s->schema, idx[i]);
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%u", i ? "," : "", idx[i]);
        if (off >= sizeof list)
            return sl__job_fail(s->job, "project '%s': too many fields", name);
    }
    sl_schema_t *schema;
    if (sl_schema_create(f, (uint32_t)n, &schema))
        return sl__job_fail(s->job, "project '%s': duplicate field in '%s'", name, fields);
    sl_stream_t *in[1] = {s};
    sl_stream_t *r = sl__job_add_schema(s->job, "project", name, in, 1, schema);
    sl_schema_destroy(schema);
    return sl_stream_param(r, "fields", list);
}

sl_stream_t *sl_stream_union(sl_stream_t *a, sl_stream_t *b) {
    if (a == NULL || b == NULL)
        return NULL;
    char fa[2048], fb[2048];
    sl_schema_format(a->schema, fa, sizeof fa);
    sl_schema_format(b->schema, fb, sizeof fb);
    if (strcmp(fa, fb) != 0)
        return sl__job_fail(a->job, "union of different schemas: %s and %s", fa, fb);
    if (a->keyed || b->keyed)
        return sl__job_fail(a->job, "union of a keyed stream: union first, then key_by the result");
    /* A union is a pass-through node with two edges into its single input. */
    sl_stream_t *in[1] = {a};
    sl_stream_t *u = sl__job_add(a->job, "project", "union", in, 1, NULL);
    if (u == NULL)
        return NULL;
    sl_stream_node_t *n = sl__stream_node(u);
    sl_partitioner_t p = b->rebalance ? SL_PART_REBALANCE : SL_PART_FORWARD;
    if (sl_job_graph_add_edge(&a->job->graph, b->node, n->id, 0, p))
        return sl__job_fail(a->job, "union: out of memory");
    char all[4096];
    size_t off = 0;
    for (uint32_t i = 0; i < sl_schema_nfields(a->schema); i++)
        off += (size_t)snprintf(all + off, sizeof all - off, "%s%u", i ? "," : "", i);
    return sl_stream_param(u, "fields", all);
}

sl_stream_t *sl_stream_watermarks(sl_stream_t *s, const char *ts_field, int64_t delay, int64_t idle) {
    if (s == NULL)
        return NULL;
    uint32_t idx;
    char err[512];
    if (sl__resolve_fields(s->schema, ts_field, &idx, 1, err, sizeof err) < 0)
        return sl__job_fail(s->job, "watermarks: %s", err);
    sl_type_t t = sl_schema_field(s->schema, idx)->type;
    if (t != SL_TYPE_TIMESTAMP && t != SL_TYPE_INT64)
        return sl__job_fail(s->job, "watermarks: field '%s' is %s, not a timestamp", ts_field, sl_type_name(t));
    if (delay < 0 || idle < 0)
        return sl__job_fail(s->job, "watermarks: out-of-orderness and idle timeout must be >= 0");
    sl_stream_t *in[1] = {s};
    sl_stream_t *r = sl__job_add(s->job, "watermarks", "watermarks", in, 1, NULL);
    char v[32];
    snprintf(v, sizeof v, "%u", idx);
    r = sl_stream_param(r, "ts_field", v);
    snprintf(v, sizeof v, "%lld", (long long)delay);
    r = sl_stream_param(r, "delay_ms", v);
    snprintf(v, sizeof v, "%lld", (long long)idle);
    return sl_stream_param(r, "idle_ms", v);
}
