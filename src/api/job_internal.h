/* The builder's internals, shared by the files of src/api/ (one per family of operators). */
#ifndef SL_API_JOB_INTERNAL_H
#define SL_API_JOB_INTERNAL_H

#include <sluice/job.h>

#include "graph/job_graph.h"

struct sl_stream_s {
    sl_job_t *job;
    uint32_t node;          /* the node producing this stream */
    sl_schema_t *schema;    /* borrowed from the node */
    sl_node_key_t key;      /* set by key_by: this stream is keyed */
    bool keyed;
    bool rebalance;         /* the next edge redistributes round robin */
};

struct sl_job_s {
    sl_job_graph_t graph;
    sl_stream_t **streams;  /* handles, owned */
    uint32_t nstreams;
    uint32_t cap;
    uint32_t parallelism;
    void *user_lib;         /* dlopen handle of the job library (symbols are checked at build time) */
    char error[512];
};

/* Records the first error; always returns NULL for tail calls. */
sl_stream_t *sl__job_fail(sl_job_t *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Adds a node of `kind` fed by `inputs` (NULL entries not allowed), with `out_schema` (a spec
 * string, or NULL to reuse the first input's schema, or "" for a sink) and returns its stream.
 * Keyed inputs pass their key to the node and get a hash edge. */
sl_stream_t *sl__job_add(sl_job_t *job, const char *kind, const char *name, sl_stream_t **inputs,
                         uint32_t ninputs, const char *out_schema);
/* As above with an already built schema (reference taken). */
sl_stream_t *sl__job_add_schema(sl_job_t *job, const char *kind, const char *name, sl_stream_t **inputs,
                                uint32_t ninputs, sl_schema_t *schema);
sl_stream_node_t *sl__stream_node(sl_stream_t *s);
/* Resolves "a,b" or "0,1" against a schema into indexes. */
int sl__resolve_fields(const sl_schema_t *schema, const char *spec, uint32_t *out, uint32_t max, char *err,
                       size_t errlen);

#endif
