/* JobGraph: the job as plain data.
 *
 * The builder API records stream nodes (one operator each) and stream edges. Chaining
 * (job_graph.c) then groups nodes joined by forward edges at equal parallelism into job
 * vertices, each run as one task per subtask. Everything here is names, numbers, parameter
 * strings and schemas, so the graph can be serialized and sent to another process; user
 * functions are symbols resolved where the operator runs. */
#ifndef SL_GRAPH_JOB_GRAPH_H
#define SL_GRAPH_JOB_GRAPH_H

#include <sluice/row.h>

#include <stdbool.h>
#include <stdint.h>

#include "core/params.h"
#include "network/record_writer.h"

#define SL_NODE_MAX_INPUTS 2

typedef struct sl_node_key_s {
    uint32_t nfields; /* 0 and fn == NULL: not keyed */
    uint32_t fields[8];
    char *fn; /* user key function symbol, or NULL */
} sl_node_key_t;

typedef struct sl_stream_node_s {
    uint32_t id;
    char *name;
    char *kind;             /* operator kind, see operator_registry.c */
    sl_params_t params;
    sl_schema_t *out_schema; /* owned; NULL for sinks */
    sl_schema_t *in_schema[SL_NODE_MAX_INPUTS]; /* owned refs */
    uint32_t ninputs;
    uint32_t parallelism;   /* 0 = parallelism.default */
    sl_node_key_t key[SL_NODE_MAX_INPUTS]; /* how each input is keyed, for keyed operators */
    bool chain_start;       /* disable chaining to the predecessor */
    /* Filled by chaining. */
    uint32_t vertex;
    uint32_t chain_index;
} sl_stream_node_t;

typedef struct sl_stream_edge_s {
    uint32_t src;
    uint32_t dst;
    uint32_t dst_input;
    sl_partitioner_t partitioner; /* SL_PART_HASH uses dst's key[dst_input] */
    bool chained;                 /* filled by chaining */
} sl_stream_edge_t;

typedef struct sl_job_vertex_s {
    uint32_t id;
    char *name;         /* "a -> b -> c" */
    uint32_t parallelism;
    uint32_t *nodes;    /* chain members in topological order; nodes[0] is the head */
    uint32_t nnodes;
} sl_job_vertex_t;

typedef struct sl_job_graph_s {
    char *name;
    char *library;      /* path of the job library, NULL for built-in jobs */
    uint32_t max_parallelism;
    sl_stream_node_t *nodes;
    uint32_t nnodes;
    sl_stream_edge_t *edges;
    uint32_t nedges;
    sl_job_vertex_t *vertices;
    uint32_t nvertices;
} sl_job_graph_t;

void sl_job_graph_init(sl_job_graph_t *g, const char *name);
void sl_job_graph_destroy(sl_job_graph_t *g);

/* Adds a node; returns its id or a negative error. Takes a reference to out_schema. */
int sl_job_graph_add_node(sl_job_graph_t *g, const char *kind, const char *name, sl_schema_t *out_schema);
int sl_job_graph_add_edge(sl_job_graph_t *g, uint32_t src, uint32_t dst, uint32_t dst_input,
                          sl_partitioner_t p);

/* Resolves default parallelism, validates (inputs connected, schemas present, keyed inputs
 * have keys, forward edges between equal parallelism else rebalance) and builds the chains.
 * Errors: SL_EJOB with a message naming the node. */
int sl_job_graph_finalize(sl_job_graph_t *g, uint32_t default_parallelism, bool chaining, char *err,
                          size_t errlen);

/* Edges into node `n`: fills up to `max` pointers, returns the count. */
uint32_t sl_job_graph_in_edges(const sl_job_graph_t *g, uint32_t n, const sl_stream_edge_t **out, uint32_t max);

#endif
