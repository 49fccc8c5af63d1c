/* The job builder: <sluice/job.h> calls turned into stream nodes and edges of a JobGraph.
 * This file has the job object and the basic transformations; windows, keyed operators and
 * connectors have their own builder files. */
#include "api/job_internal.h"

#include <sluice/error.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

int sl_job_create(const char *name, sl_job_t **out) {
    sl_job_t *j = sl_calloc(1, sizeof *j);
    if (j == NULL)
        return SL_ENOMEM;
    sl_job_graph_init(&j->graph, name ? name : "job");
    if (j->graph.name == NULL) {
        sl_free(j);
        return SL_ENOMEM;
    }
    *out = j;
    return 0;
}

void sl_job_destroy(sl_job_t *job) {
    if (job == NULL)
        return;
    for (uint32_t i = 0; i < job->nstreams; i++)
        sl_free(job->streams[i]);
    sl_free(job->streams);
    sl_job_graph_destroy(&job->graph);
    sl_free(job);
}

const char *sl_job_error(const sl_job_t *job) { return job->error[0] ? job->error : NULL; }

void sl_job_set_parallelism(sl_job_t *job, uint32_t p) { job->parallelism = p; }

sl_stream_t *sl__job_fail(sl_job_t *job, const char *fmt, ...) {
    if (job->error[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->error, sizeof job->error, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

sl_stream_node_t *sl__stream_node(sl_stream_t *s) { return &s->job->graph.nodes[s->node]; }

static sl_stream_t *new_stream(sl_job_t *job, uint32_t node) {
    if (job->nstreams == job->cap) {
        uint32_t cap = job->cap ? job->cap * 2 : 16;
        sl_stream_t **n = sl_realloc(job->streams, cap * sizeof *n);
        if (n == NULL)
            return sl__job_fail(job, "out of memory");
        job->streams = n;
        job->cap = cap;
    }
    sl_stream_t *s = sl_calloc(1, sizeof *s);
    if (s == NULL)
        return sl__job_fail(job, "out of memory");
    s->job = job;
    s->node = node;
    s->schema = job->graph.nodes[node].out_schema;
    job->streams[job->nstreams++] = s;
    return s;
}

/* A derived handle for the same node (key_by, rebalance): settings differ, node is shared. */
static sl_stream_t *derive(sl_stream_t *s) {
    sl_stream_t *d = new_stream(s->job, s->node);
    if (d) {
        d->schema = s->schema;
        d->key = s->key;
        d->keyed = s->keyed;
        d->rebalance = s->rebalance;
    }
    return d;
}

sl_stream_t *sl__job_add_schema(sl_job_t *job, const char *kind, const char *name, sl_stream_t **inputs,
                                uint32_t ninputs, sl_schema_t *schema) {
    if (job->error[0])
        return NULL;
    int id = sl_job_graph_add_node(&job->graph, kind, name, schema);
    if (id < 0)
        return sl__job_fail(job, "%s: cannot add operator: %s", name, sl_strerror(id));
    sl_stream_node_t *n = &job->graph.nodes[id];
    n->ninputs = ninputs;
    for (uint32_t i = 0; i < ninputs; i++) {
        sl_stream_t *in = inputs[i];
        n->in_schema[i] = sl_schema_ref(in->schema);
        sl_partitioner_t p = SL_PART_FORWARD;
        if (in->keyed) {
            n->key[i] = in->key;
            if (in->key.fn) {
                n->key[i].fn = sl_strdup(in->key.fn);
                if (n->key[i].fn == NULL)
                    return sl__job_fail(job, "out of memory");
            }
            p = SL_PART_HASH;
        } else if (in->rebalance) {
            p = SL_PART_REBALANCE;
        }
        int rc = sl_job_graph_add_edge(&job->graph, in->node, (uint32_t)id, i, p);
        if (rc)
            return sl__job_fail(job, "%s: cannot connect input %u: %s", name, i, sl_strerror(rc));
    }
    return new_stream(job, (uint32_t)id);
}

sl_stream_t *sl__job_add(sl_job_t *job, const char *kind, const char *name, sl_stream_t **inputs,
                         uint32_t ninputs, const char *out_schema) {
    if (job->error[0])
        return NULL;
    for (uint32_t i = 0; i < ninputs; i++)
        if (inputs[i] == NULL)
            return NULL;
    sl_schema_t *schema = NULL;
    if (out_schema == NULL) {
        if (ninputs == 0)
            return sl__job_fail(job, "%s: a source needs a schema", name);
        schema = sl_schema_ref(inputs[0]->schema);
    } else if (out_schema[0] != '\0') {
        char err[256];
        int rc = sl_schema_parse(out_schema, &schema, err, sizeof err);
        if (rc)
            return sl__job_fail(job, "%s: bad output schema: %s", name, err);
    }
    sl_stream_t *s = sl__job_add_schema(job, kind, name, inputs, ninputs, schema);
    sl_schema_destroy(schema);
    return s;
}

int sl__resolve_fields(const sl_schema_t *schema, const char *spec, uint32_t *out, uint32_t max, char *err,
                       size_t errlen) {
    uint32_t n = 0;
    const char *p = spec;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *end = e;
        while (end > p && end[-1] == ' ')
            end--;
        char name[128];
        size_t len = (size_t)(end - p);
        if (len == 0 || len >= sizeof name) {
            snprintf(err, errlen, "empty or too long field name in '%s'", spec);
            return SL_EINVAL;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (n == max) {
            snprintf(err, errlen, "too many fields in '%s' (at most %u)", spec, max);
            return SL_EINVAL;
        }
        int idx = sl_schema_index(schema, name);
        if (idx < 0) {
            char *endp;
            long v = strtol(name, &endp, 10);
            if (*endp == '\0' && v >= 0 && (uint32_t)v < sl_schema_nfields(schema)) {
                idx = (int)v;
            } else {
                char fmt[1024];
                sl_schema_format(schema, fmt, sizeof fmt);
                if (*endp == '\0')
                    snprintf(err, errlen, "field index %s out of range (the stream has %u fields: %s)", name,
                             sl_schema_nfields(schema), fmt);
                else
                    snprintf(err, errlen, "no field '%s' in %s", name, fmt);
                return SL_EINVAL;
            }
        }
        out[n++] = (uint32_t)idx;
        p = *e ? e + 1 : e;
    }
    if (n == 0) {
        snprintf(err, errlen, "no fields given");
        return SL_EINVAL;
    }
    return (int)n;
}

/* ---- Settings ---- */

sl_stream_t *sl_stream_parallelism(sl_stream_t *s, uint32_t parallelism) {
    if (s == NULL)
        return NULL;
    if (parallelism == 0 || parallelism > s->job->graph.max_parallelism)
        return sl__job_fail(s->job, "%s: invalid parallelism %u (must be 1..%u)", sl__stream_node(s)->name,
                            parallelism, s->job->graph.max_parallelism);
    sl__stream_node(s)->parallelism = parallelism;
    return s;
}

sl_stream_t *sl_stream_param(sl_stream_t *s, const char *key, const char *value) {
    if (s == NULL)
        return NULL;
    if (sl_params_set(&sl__stream_node(s)->params, key, value))
        return sl__job_fail(s->job, "out of memory");
    return s;
}

sl_stream_t *sl_stream_start_chain(sl_stream_t *s) {
    if (s)
        sl__stream_node(s)->chain_start = true;
    return s;
}

sl_stream_t *sl_stream_rebalance(sl_stream_t *s) {
    if (s == NULL)
        return NULL;
    sl_stream_t *d = derive(s);
    if (d) {
        d->rebalance = true;
        d->keyed = false;
    }
    return d;
}

const sl_schema_t *sl_stream_schema(const sl_stream_t *s) { return s ? s->schema : NULL; }

sl_stream_t *sl_stream_key_by(sl_stream_t *s, const char *fields) {
    if (s == NULL)
        return NULL;
    char err[512];
    uint32_t idx[8];
    int n = sl__resolve_fields(s->schema, fields, idx, 8, err, sizeof err);
    if (n < 0)
        return sl__job_fail(s->job, "key_by after '%s': %s", sl__stream_node(s)->name, err);
    sl_stream_t *d = derive(s);
    if (d == NULL)
        return NULL;
    d->keyed = true;
    d->rebalance = false;
    memset(&d->key, 0, sizeof d->key);
    d->key.nfields = (uint32_t)n;
    memcpy(d->key.fields, idx, (size_t)n * sizeof idx[0]);
    return d;
}

sl_stream_t *sl_stream_key_by_fn(sl_stream_t *s, const char *fn_symbol) {
    if (s == NULL)
        return NULL;
    if (fn_symbol == NULL || fn_symbol[0] == '\0')
        return sl__job_fail(s->job, "key_by_fn after '%s': no function symbol", sl__stream_node(s)->name);
    sl_stream_t *d = derive(s);
    if (d == NULL)
        return NULL;
    d->keyed = true;
    d->rebalance = false;
    memset(&d->key, 0, sizeof d->key);
    /* Owned by the job's handle list lifetime: interned as a node param at use. */
    d->key.fn = (char *)fn_symbol;
    return d;
}

sl_stream_t *sl_stream_state_ttl(sl_stream_t *s, int64_t ttl_ms) {
    if (s == NULL)
        return NULL;
    if (ttl_ms <= 0)
        return sl__job_fail(s->job, "%s: the state TTL must be > 0 ms", sl__stream_node(s)->name);
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)ttl_ms);
    return sl_stream_param(s, "state.ttl_ms", v);
}
