/* JobGraph construction, validation and operator chaining (see job_graph.h).
 *
 * Chaining follows Flink's rule: an edge is chained when it is forward, both ends have the
 * same parallelism, the downstream node has exactly one input edge and does not ask for a new
 * chain. Chains may fan out (one node feeding several chained nodes); nodes are numbered in
 * creation order, which the builder guarantees is topological. */
#include "graph/job_graph.h"

#include <sluice/error.h>

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

void sl_job_graph_init(sl_job_graph_t *g, const char *name) {
    memset(g, 0, sizeof *g);
    g->name = sl_strdup(name);
    g->max_parallelism = 128;
}

void sl_job_graph_destroy(sl_job_graph_t *g) {
    for (uint32_t i = 0; i < g->nnodes; i++) {
        sl_stream_node_t *n = &g->nodes[i];
        sl_free(n->name);
        sl_free(n->kind);
        sl_params_destroy(&n->params);
        sl_schema_destroy(n->out_schema);
        for (uint32_t k = 0; k < SL_NODE_MAX_INPUTS; k++) {
            sl_schema_destroy(n->in_schema[k]);
            sl_free(n->key[k].fn);
        }
    }
    for (uint32_t i = 0; i < g->nvertices; i++) {
        sl_free(g->vertices[i].name);
        sl_free(g->vertices[i].nodes);
    }
    sl_free(g->nodes);
    sl_free(g->edges);
    sl_free(g->vertices);
    sl_free(g->name);
    sl_free(g->library);
    memset(g, 0, sizeof *g);
}

int sl_job_graph_add_node(sl_job_graph_t *g, const char *kind, const char *name, sl_schema_t *out_schema) {
    sl_stream_node_t *nodes = sl_realloc(g->nodes, (g->nnodes + 1) * sizeof *nodes);
    if (nodes == NULL)
        return SL_ENOMEM;
    g->nodes = nodes;
    sl_stream_node_t *n = &nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->id = g->nnodes;
    n->kind = sl_strdup(kind);
    n->name = sl_strdup(name ? name : kind);
    if (n->kind == NULL || n->name == NULL) {
        sl_free(n->kind);
        sl_free(n->name);
        return SL_ENOMEM;
    }
    sl_params_init(&n->params);
    n->out_schema = sl_schema_ref(out_schema);
    return (int)g->nnodes++;
}

int sl_job_graph_add_edge(sl_job_graph_t *g, uint32_t src, uint32_t dst, uint32_t dst_input,
                          sl_partitioner_t p) {
    if (src >= g->nnodes || dst >= g->nnodes || src >= dst || dst_input >= SL_NODE_MAX_INPUTS)
        return SL_EINVAL;
    sl_stream_edge_t *e = sl_realloc(g->edges, (g->nedges + 1) * sizeof *e);
    if (e == NULL)
        return SL_ENOMEM;
    g->edges = e;
    g->edges[g->nedges++] = (sl_stream_edge_t){src, dst, dst_input, p, false};
    return 0;
}

uint32_t sl_job_graph_in_edges(const sl_job_graph_t *g, uint32_t n, const sl_stream_edge_t **out, uint32_t max) {
    uint32_t c = 0;
    for (uint32_t i = 0; i < g->nedges; i++)
        if (g->edges[i].dst == n) {
            if (c < max)
                out[c] = &g->edges[i];
            c++;
        }
    return c;
}

static int validate(sl_job_graph_t *g, uint32_t default_parallelism, char *err, size_t errlen) {
    if (g->nnodes == 0) {
        snprintf(err, errlen, "job '%s' has no operators", g->name);
        return SL_EJOB;
    }
    for (uint32_t i = 0; i < g->nnodes; i++) {
        sl_stream_node_t *n = &g->nodes[i];
        if (n->parallelism == 0)
            n->parallelism = default_parallelism;
        if (n->parallelism == 0 || n->parallelism > g->max_parallelism) {
            snprintf(err, errlen, "operator '%s': invalid parallelism %u (must be 1..%u, the max parallelism)",
                     n->name, n->parallelism, g->max_parallelism);
            return SL_EJOB;
        }
        const sl_stream_edge_t *in[8];
        uint32_t nin = sl_job_graph_in_edges(g, i, in, 8);
        for (uint32_t k = 0; k < n->ninputs; k++) {
            bool found = false;
            for (uint32_t e = 0; e < nin && e < 8; e++)
                found |= in[e]->dst_input == k;
            if (!found) {
                snprintf(err, errlen, "operator '%s': input %u is not connected", n->name, k);
                return SL_EJOB;
            }
        }
        bool has_output = false;
        for (uint32_t e = 0; e < g->nedges; e++)
            has_output |= g->edges[e].src == i;
        if (n->out_schema != NULL && !has_output && strncmp(n->kind, "sink", 4) != 0) {
            snprintf(err, errlen, "operator '%s' has no consumer: add a sink (e.g. sl_sink_discard)", n->name);
            return SL_EJOB;
        }
    }
    for (uint32_t e = 0; e < g->nedges; e++) {
        const sl_stream_edge_t *ed = &g->edges[e];
        const sl_stream_node_t *src = &g->nodes[ed->src], *dst = &g->nodes[ed->dst];
        if (src->out_schema == NULL) {
            snprintf(err, errlen, "operator '%s' has no output (a sink) but feeds '%s'", src->name, dst->name);
            return SL_EJOB;
        }
        const sl_node_key_t *k = &dst->key[ed->dst_input];
        if (ed->partitioner == SL_PART_HASH && k->nfields == 0 && k->fn == NULL) {
            snprintf(err, errlen, "edge '%s' -> '%s' is partitioned by key, but input %u of '%s' has no key",
                     src->name, dst->name, ed->dst_input, dst->name);
            return SL_EJOB;
        }
    }
    /* A forward edge between different parallelisms cannot be one to one. */
    for (uint32_t e = 0; e < g->nedges; e++) {
        sl_stream_edge_t *ed = &g->edges[e];
        if (ed->partitioner == SL_PART_FORWARD && g->nodes[ed->src].parallelism != g->nodes[ed->dst].parallelism)
            ed->partitioner = SL_PART_REBALANCE;
    }
    return 0;
}

static bool chainable(const sl_job_graph_t *g, const sl_stream_edge_t *e) {
    const sl_stream_node_t *s = &g->nodes[e->src], *d = &g->nodes[e->dst];
    uint32_t nin = 0;
    for (uint32_t i = 0; i < g->nedges; i++)
        nin += g->edges[i].dst == e->dst;
    return e->partitioner == SL_PART_FORWARD && s->parallelism == d->parallelism && nin == 1 &&
           !d->chain_start && d->ninputs == 1;
}

static int append_node(sl_job_vertex_t *v, uint32_t node) {
    uint32_t *n = sl_realloc(v->nodes, (v->nnodes + 1) * sizeof *n);
    if (n == NULL)
        return SL_ENOMEM;
    v->nodes = n;
    v->nodes[v->nnodes++] = node;
    return 0;
}

static int name_vertex(const sl_job_graph_t *g, sl_job_vertex_t *v) {
    size_t len = 1;
    for (uint32_t i = 0; i < v->nnodes; i++)
        len += strlen(g->nodes[v->nodes[i]].name) + 4;
    v->name = sl_malloc(len);
    if (v->name == NULL)
        return SL_ENOMEM;
    v->name[0] = '\0';
    for (uint32_t i = 0; i < v->nnodes; i++) {
        if (i)
            strcat(v->name, " -> ");
        strcat(v->name, g->nodes[v->nodes[i]].name);
    }
    return 0;
}

int sl_job_graph_finalize(sl_job_graph_t *g, uint32_t default_parallelism, bool chaining, char *err,
                          size_t errlen) {
    int rc = validate(g, default_parallelism, err, errlen);
    if (rc)
        return rc;
    /* Nodes are in topological order: a node joins its single chained predecessor's vertex,
     * or starts a new one. */
    g->vertices = sl_calloc(g->nnodes, sizeof *g->vertices);
    if (g->vertices == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        sl_stream_node_t *n = &g->nodes[i];
        const sl_stream_edge_t *in[2];
        uint32_t nin = sl_job_graph_in_edges(g, i, in, 2);
        sl_job_vertex_t *v;
        if (chaining && nin == 1 && chainable(g, in[0])) {
            ((sl_stream_edge_t *)in[0])->chained = true;
            v = &g->vertices[g->nodes[in[0]->src].vertex];
        } else {
            v = &g->vertices[g->nvertices];
            v->id = g->nvertices++;
            v->parallelism = n->parallelism;
        }
        n->vertex = v->id;
        n->chain_index = v->nnodes;
        if ((rc = append_node(v, i)) != 0)
            return rc;
    }
    for (uint32_t i = 0; i < g->nvertices; i++)
        if ((rc = name_vertex(g, &g->vertices[i])) != 0)
            return rc;
    return 0;
}
