/* Builder calls for sources and sinks. */
#include "api/job_internal.h"

#include <sluice/error.h>

#include <stdio.h>
#include <string.h>

static const char *const nexmark_schemas[][2] = {
    {"person", "id:int64,name:string,emailAddress:string,creditCard:string,city:string,state:string,"
               "dateTime:timestamp,extra:string"},
    {"auction", "id:int64,itemName:string,description:string,initialBid:int64,reserve:int64,"
                "dateTime:timestamp,expires:timestamp,seller:int64,category:int64,extra:string"},
    {"bid", "auction:int64,bidder:int64,price:int64,channel:string,url:string,dateTime:timestamp,extra:string"},
};

static sl_stream_t *source(sl_job_t *job, const char *kind, const char *name, const char *schema) {
    if (job == NULL)
        return NULL;
    return sl__job_add(job, kind, name ? name : kind, NULL, 0, schema);
}

static sl_stream_t *param_u64(sl_stream_t *s, const char *key, uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return sl_stream_param(s, key, buf);
}

sl_stream_t *sl_source_nexmark(sl_job_t *job, const char *name, const char *table, uint64_t events,
                               uint64_t rate) {
    if (job == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof nexmark_schemas / sizeof nexmark_schemas[0]; i++) {
        if (table == NULL || strcmp(table, nexmark_schemas[i][0]) != 0)
            continue;
        sl_stream_t *s = source(job, "source_nexmark", name, nexmark_schemas[i][1]);
        s = sl_stream_param(s, "table", table);
        s = param_u64(s, "events", events);
        return param_u64(s, "rate", rate);
    }
    return sl__job_fail(job, "Nexmark source '%s': unknown table '%s' (person, auction, bid)", name ? name : "",
                        table ? table : "(null)");
}

sl_stream_t *sl_source_csv(sl_job_t *job, const char *name, const char *path, const char *schema, int header) {
    if (job && (path == NULL || schema == NULL))
        return sl__job_fail(job, "CSV source '%s': a path and a schema are required", name ? name : "csv");
    sl_stream_t *s = sl_stream_param(source(job, "source_csv", name, schema), "path", path);
    return sl_stream_param(s, "header", header ? "true" : "false");
}

sl_stream_t *sl_source_lines(sl_job_t *job, const char *name, const char *path) {
    if (job && path == NULL)
        return sl__job_fail(job, "lines source '%s': a path is required", name ? name : "lines");
    return sl_stream_param(source(job, "source_lines", name, "line:string"), "path", path);
}

sl_stream_t *sl_source_socket(sl_job_t *job, const char *name, const char *host, uint16_t port,
                              const char *schema) {
    if (job && (host == NULL || port == 0 || schema == NULL))
        return sl__job_fail(job, "socket source '%s': host, port and schema are required", name ? name : "socket");
    /* One connection, one reader: like Flink's socket source it is not parallel. */
    sl_stream_t *s = sl_stream_parallelism(source(job, "source_socket", name, schema), 1);
    s = sl_stream_param(s, "host", host);
    return param_u64(s, "port", port);
}

sl_stream_t *sl_source_generator(sl_job_t *job, const char *name, const char *fn, const char *schema,
                                 uint64_t count) {
    if (job && (fn == NULL || fn[0] == '\0' || schema == NULL))
        return sl__job_fail(job, "generator source '%s': a function symbol and a schema are required",
                            name ? name : "generator");
    sl_stream_t *s = sl_stream_param(source(job, "source_generator", name, schema), "fn", fn);
    return param_u64(s, "count", count);
}

static sl_stream_t *sink(sl_stream_t *s, const char *kind, const char *name) {
    if (s == NULL)
        return NULL;
    sl_stream_t *in[1] = {s};
    return sl__job_add(s->job, kind, name ? name : kind, in, 1, "");
}

sl_stream_t *sl_sink_print(sl_stream_t *s, const char *name) { return sink(s, "sink_print", name); }

sl_stream_t *sl_sink_csv(sl_stream_t *s, const char *name, const char *path) {
    if (s && path == NULL)
        return sl__job_fail(s->job, "CSV sink '%s': a path is required", name ? name : "csv");
    return sl_stream_param(sink(s, "sink_csv", name), "path", path);
}

sl_stream_t *sl_sink_discard(sl_stream_t *s, const char *name) { return sink(s, "sink_discard", name); }

sl_stream_t *sl_sink_function(sl_stream_t *s, const char *name, const char *fn) {
    if (s && (fn == NULL || fn[0] == '\0'))
        return sl__job_fail(s->job, "sink '%s': a function symbol is required", name ? name : "sink");
    return sl_stream_param(sink(s, "sink_fn", name), "fn", fn);
}
