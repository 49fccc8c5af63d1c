/* JobGraph codec (see job_graph_codec.h): a finalized graph packed into a sluice.graph.JobGraph
 * message (job_graph.proto), and such a message unpacked into a graph validated as a whole.
 *
 * DESIGN
 * Decoding takes two steps. The first (build_*) copies the message into the C structs and
 * checks only what those structs cannot hold: text with a NUL byte, more than two inputs or
 * eight key fields, an unknown partitioner, a schema spec that does not parse. It therefore
 * never writes out of bounds, and it counts every array as soon as it is allocated, so
 * sl_job_graph_destroy() frees a half-built graph. The second, sl_job_graph_validate(), checks
 * the graph's consistency; the encoder runs it too, so what one process sends, the other
 * accepts. Every check is linear (or n log n) in the input, so a malformed message costs no
 * more time than a real one of the same size. */
#include "graph/job_graph_codec.h"

#include <sluice/error.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "graph/job_graph.pb-c.h"

typedef Sluice__Graph__JobGraph pb_graph_t;
typedef Sluice__Graph__Node pb_node_t;
typedef Sluice__Graph__Edge pb_edge_t;
typedef Sluice__Graph__Vertex pb_vertex_t;
typedef Sluice__Graph__Param pb_param_t;
typedef Sluice__Graph__Key pb_key_t;

/* Field names longer than this cannot be written as a spec: sl_schema_parse's limit. */
#define SPEC_MAX_NAME 63u

/* ---- Error messages ---- */

/* An error names what is wrong and where: `where` ("node 3 ('q5-count')") is set before each
 * part is checked. */
typedef struct ctx_s {
    char *err;
    size_t errlen;
    char where[192];
} ctx_t;

static void ctx_init(ctx_t *c, char *err, size_t errlen) {
    c->err = errlen ? err : NULL;
    c->errlen = errlen;
    c->where[0] = '\0';
    if (c->err)
        c->err[0] = '\0';
}

__attribute__((format(printf, 2, 3))) static void set_where(ctx_t *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->where, sizeof c->where, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static int fail(ctx_t *c, int rc, const char *fmt, ...) {
    if (c->err == NULL)
        return rc;
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "job graph: %s%s%s", c->where, c->where[0] ? ": " : "", msg);
    return rc;
}

static const char *str_or(const char *s, const char *dflt) { return s ? s : dflt; }

/* ---- Validation (both directions) ---- */

/* Per node, what the edges into it look like. */
typedef struct in_count_s {
    uint32_t edges;
    uint32_t chained;
    uint8_t inputs; /* bit k: some edge feeds input k */
    bool id_seen;
} in_count_t;

static bool bad_parallelism(uint32_t p, uint32_t max) { return p == 0 || p > max; }

static bool keyed(const sl_node_key_t *k) { return k->nfields > 0 || k->fn != NULL; }

static bool same_schema(const sl_schema_t *a, const sl_schema_t *b) {
    if (sl_schema_nfields(a) != sl_schema_nfields(b))
        return false;
    for (uint32_t i = 0; i < sl_schema_nfields(a); i++) {
        const sl_field_t *x = sl_schema_field(a, i), *y = sl_schema_field(b, i);
        if (x->type != y->type || x->nullable != y->nullable || strcmp(x->name, y->name) != 0)
            return false;
    }
    return true;
}

/* A schema travels as its spec string, so every field name must survive sl_schema_parse. */
static int check_spec_safe(ctx_t *c, const sl_schema_t *s, const char *what) {
    for (uint32_t i = 0; i < sl_schema_nfields(s); i++) {
        const char *name = sl_schema_field(s, i)->name;
        size_t len = strlen(name);
        if (len == 0 || len > SPEC_MAX_NAME || strpbrk(name, ",:") != NULL)
            return fail(c, SL_EJOB,
                        "%s: field '%.64s' cannot be written as a schema spec (names are 1..%u bytes "
                        "without ',' or ':')",
                        what, name, SPEC_MAX_NAME);
    }
    return 0;
}

static int cmp_param_key(const void *a, const void *b) {
    return strcmp((*(const sl_param_t *const *)a)->key, (*(const sl_param_t *const *)b)->key);
}

/* Distinct keys, checked by sorting so that a node with many params stays cheap. */
static int check_params(ctx_t *c, const sl_params_t *p) {
    if (p->n > SL_JOB_GRAPH_MAX_PARAMS)
        return fail(c, SL_EJOB, "%u params, at most %u", p->n, SL_JOB_GRAPH_MAX_PARAMS);
    const sl_param_t *sorted[SL_JOB_GRAPH_MAX_PARAMS];
    for (uint32_t i = 0; i < p->n; i++) {
        if (p->items[i].key == NULL || p->items[i].value == NULL)
            return fail(c, SL_EJOB, "param %u has no key or no value", i);
        sorted[i] = &p->items[i];
    }
    if (p->n > 1)
        qsort(sorted, p->n, sizeof sorted[0], cmp_param_key);
    for (uint32_t i = 1; i < p->n; i++)
        if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0)
            return fail(c, SL_EJOB, "param '%.64s' is set twice", sorted[i]->key);
    return 0;
}

static int check_key(ctx_t *c, const sl_stream_node_t *n, uint32_t k) {
    const sl_node_key_t *key = &n->key[k];
    if (k >= n->ninputs) {
        if (keyed(key))
            return fail(c, SL_EJOB, "key %u set, but the node has %u inputs", k, n->ninputs);
        return 0;
    }
    if (key->nfields > SL_JOB_GRAPH_MAX_KEY_FIELDS)
        return fail(c, SL_EJOB, "key %u: %u fields, at most %u", k, key->nfields, SL_JOB_GRAPH_MAX_KEY_FIELDS);
    uint32_t nf = sl_schema_nfields(n->in_schema[k]);
    for (uint32_t f = 0; f < key->nfields; f++)
        if (key->fields[f] >= nf)
            return fail(c, SL_EJOB, "key %u: field index %u is past the %u fields of input schema %u", k,
                        key->fields[f], nf, k);
    if (key->fn != NULL && key->fn[0] == '\0')
        return fail(c, SL_EJOB, "key %u: empty key function symbol", k);
    return 0;
}

static int check_node_schemas(ctx_t *c, const sl_stream_node_t *n) {
    int rc;
    if (n->ninputs > SL_NODE_MAX_INPUTS)
        return fail(c, SL_EJOB, "%u inputs, at most %u", n->ninputs, SL_NODE_MAX_INPUTS);
    for (uint32_t k = 0; k < SL_NODE_MAX_INPUTS; k++) {
        char what[32];
        snprintf(what, sizeof what, "input schema %u", k);
        if (k < n->ninputs && n->in_schema[k] == NULL)
            return fail(c, SL_EJOB, "input %u has no schema", k);
        if (k >= n->ninputs && n->in_schema[k] != NULL)
            return fail(c, SL_EJOB, "%s set, but the node has %u inputs", what, n->ninputs);
        if (n->in_schema[k] && (rc = check_spec_safe(c, n->in_schema[k], what)) != 0)
            return rc;
        if ((rc = check_key(c, n, k)) != 0)
            return rc;
    }
    return n->out_schema ? check_spec_safe(c, n->out_schema, "out schema") : 0;
}

/* The node's place in its chain must be where its vertex lists it. */
static int check_node_vertex(ctx_t *c, const sl_job_graph_t *g, uint32_t i) {
    const sl_stream_node_t *n = &g->nodes[i];
    if (n->vertex >= g->nvertices)
        return fail(c, SL_EJOB, "vertex %u is past the %u vertices", n->vertex, g->nvertices);
    const sl_job_vertex_t *v = &g->vertices[n->vertex];
    if (n->chain_index >= v->nnodes || v->nodes[n->chain_index] != i)
        return fail(c, SL_EJOB, "vertex %u ('%.64s') does not list it at chain index %u", n->vertex,
                    str_or(v->name, "?"), n->chain_index);
    if (n->parallelism != v->parallelism)
        return fail(c, SL_EJOB, "parallelism %u differs from its vertex's %u", n->parallelism, v->parallelism);
    return 0;
}

static int check_node(ctx_t *c, const sl_job_graph_t *g, uint32_t i) {
    const sl_stream_node_t *n = &g->nodes[i];
    int rc;
    set_where(c, "node %u ('%.64s')", i, str_or(n->name, "?"));
    if (n->name == NULL || n->kind == NULL || n->kind[0] == '\0')
        return fail(c, SL_EJOB, "no name or no kind");
    if (n->id != i)
        return fail(c, SL_EJOB, "id %u is not its position %u (nodes are stored in id order)", n->id, i);
    if (bad_parallelism(n->parallelism, g->max_parallelism))
        return fail(c, SL_EJOB, "parallelism %u (must be 1..%u, the max parallelism)", n->parallelism,
                    g->max_parallelism);
    if ((rc = check_node_schemas(c, n)) != 0 || (rc = check_params(c, &n->params)) != 0)
        return rc;
    return check_node_vertex(c, g, i);
}

/* Ids are positions; duplicates are reported as such because that is the likelier mistake. */
static int check_node_ids(ctx_t *c, const sl_job_graph_t *g, in_count_t *cnt) {
    for (uint32_t i = 0; i < g->nnodes; i++) {
        uint32_t id = g->nodes[i].id;
        set_where(c, "node %u ('%.64s')", i, str_or(g->nodes[i].name, "?"));
        if (id >= g->nnodes)
            return fail(c, SL_EJOB, "id %u is past the %u nodes", id, g->nnodes);
        if (cnt[id].id_seen)
            return fail(c, SL_EJOB, "duplicate node id %u", id);
        cnt[id].id_seen = true;
    }
    return 0;
}

static int check_vertex(ctx_t *c, const sl_job_graph_t *g, uint32_t v) {
    const sl_job_vertex_t *vx = &g->vertices[v];
    set_where(c, "vertex %u ('%.64s')", v, str_or(vx->name, "?"));
    if (vx->name == NULL)
        return fail(c, SL_EJOB, "no name");
    if (vx->id != v)
        return fail(c, SL_EJOB, "id %u is not its position %u", vx->id, v);
    if (vx->nnodes == 0 || vx->nnodes > g->nnodes)
        return fail(c, SL_EJOB, "%u nodes (must be 1..%u)", vx->nnodes, g->nnodes);
    if (bad_parallelism(vx->parallelism, g->max_parallelism))
        return fail(c, SL_EJOB, "parallelism %u (must be 1..%u)", vx->parallelism, g->max_parallelism);
    for (uint32_t k = 0; k < vx->nnodes; k++) {
        uint32_t id = vx->nodes[k];
        if (id >= g->nnodes)
            return fail(c, SL_EJOB, "chain index %u lists node %u, past the %u nodes", k, id, g->nnodes);
        const sl_stream_node_t *n = &g->nodes[id];
        if (n->vertex != v || n->chain_index != k)
            return fail(c, SL_EJOB,
                        "chain index %u lists node %u ('%.64s'), which says it is at vertex %u index %u", k,
                        id, str_or(n->name, "?"), n->vertex, n->chain_index);
    }
    return 0;
}

static bool known_partitioner(sl_partitioner_t p) { return (unsigned)p <= (unsigned)SL_PART_BROADCAST; }

/* Runs after every node passed check_node: ninputs, schemas and vertices are sound. */
static int check_edge(ctx_t *c, const sl_job_graph_t *g, uint32_t i, in_count_t *cnt) {
    const sl_stream_edge_t *e = &g->edges[i];
    set_where(c, "edge %u (%u -> %u)", i, e->src, e->dst);
    if (e->src >= g->nnodes || e->dst >= g->nnodes)
        return fail(c, SL_EJOB, "%s %u is past the %u nodes", e->src >= g->nnodes ? "src" : "dst",
                    e->src >= g->nnodes ? e->src : e->dst, g->nnodes);
    const sl_stream_node_t *s = &g->nodes[e->src], *d = &g->nodes[e->dst];
    set_where(c, "edge %u ('%.64s' -> '%.64s')", i, s->name, d->name);
    if (e->src >= e->dst)
        return fail(c, SL_EJOB, "src %u does not precede dst %u (nodes are in topological order)", e->src, e->dst);
    if (e->dst_input >= d->ninputs)
        return fail(c, SL_EJOB, "dst_input %u, but the destination has %u inputs", e->dst_input, d->ninputs);
    if (!known_partitioner(e->partitioner))
        return fail(c, SL_EJOB, "unknown partitioner %d", (int)e->partitioner);
    if (s->out_schema == NULL)
        return fail(c, SL_EJOB, "the source has no output (a sink)");
    if (!same_schema(s->out_schema, d->in_schema[e->dst_input]))
        return fail(c, SL_EJOB, "the source's output schema is not input schema %u of the destination",
                    e->dst_input);
    if (e->partitioner == SL_PART_HASH && !keyed(&d->key[e->dst_input]))
        return fail(c, SL_EJOB, "partitioned by key into input %u, which has no key", e->dst_input);
    if (e->chained && (e->partitioner != SL_PART_FORWARD || s->vertex != d->vertex ||
                       s->chain_index >= d->chain_index))
        return fail(c, SL_EJOB, "chained, but not a forward edge down one chain");
    cnt[e->dst].edges++;
    cnt[e->dst].chained += e->chained;
    cnt[e->dst].inputs |= (uint8_t)(1u << e->dst_input);
    return 0;
}

/* Every input is fed, and a chain member past the head is fed by exactly one chained edge, as
 * a task runs it (a head reads from the network, the others are called by their predecessor). */
static int check_in_edges(ctx_t *c, const sl_job_graph_t *g, const in_count_t *cnt) {
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const sl_stream_node_t *n = &g->nodes[i];
        set_where(c, "node %u ('%.64s')", i, n->name);
        for (uint32_t k = 0; k < n->ninputs; k++)
            if (!(cnt[i].inputs & (1u << k)))
                return fail(c, SL_EJOB, "input %u is not connected", k);
        if (n->chain_index == 0 && cnt[i].chained > 0)
            return fail(c, SL_EJOB, "head of vertex %u, but fed by a chained edge", n->vertex);
        if (n->chain_index > 0 && (cnt[i].edges != 1 || cnt[i].chained != 1))
            return fail(c, SL_EJOB,
                        "chain index %u of vertex %u needs exactly one input edge, chained (has %u, %u chained)",
                        n->chain_index, n->vertex, cnt[i].edges, cnt[i].chained);
    }
    return 0;
}

static int check_header(ctx_t *c, const sl_job_graph_t *g) {
    if (g->name == NULL)
        return fail(c, SL_EJOB, "no name");
    if (g->library != NULL && g->library[0] == '\0')
        return fail(c, SL_EJOB, "empty library path (NULL means a built-in job)");
    if (bad_parallelism(g->max_parallelism, SL_JOB_GRAPH_MAX_PARALLELISM))
        return fail(c, SL_EJOB, "max_parallelism %u (must be 1..%u)", g->max_parallelism,
                    SL_JOB_GRAPH_MAX_PARALLELISM);
    if (g->nnodes == 0 || g->nnodes > SL_JOB_GRAPH_MAX_NODES)
        return fail(c, SL_EJOB, "%u nodes (must be 1..%u)", g->nnodes, SL_JOB_GRAPH_MAX_NODES);
    if (g->nedges > SL_JOB_GRAPH_MAX_EDGES)
        return fail(c, SL_EJOB, "%u edges, at most %u", g->nedges, SL_JOB_GRAPH_MAX_EDGES);
    if (g->nvertices == 0)
        return fail(c, SL_EJOB, "no job vertices: the graph is not finalized");
    if (g->nvertices > g->nnodes)
        return fail(c, SL_EJOB, "%u vertices for %u nodes", g->nvertices, g->nnodes);
    return 0;
}

static int validate(ctx_t *c, const sl_job_graph_t *g) {
    int rc = check_header(c, g);
    if (rc)
        return rc;
    in_count_t *cnt = sl_calloc(g->nnodes, sizeof *cnt);
    if (cnt == NULL)
        return fail(c, SL_ENOMEM, "out of memory");
    rc = check_node_ids(c, g, cnt);
    for (uint32_t v = 0; rc == 0 && v < g->nvertices; v++)
        rc = check_vertex(c, g, v);
    for (uint32_t i = 0; rc == 0 && i < g->nnodes; i++)
        rc = check_node(c, g, i);
    for (uint32_t e = 0; rc == 0 && e < g->nedges; e++)
        rc = check_edge(c, g, e, cnt);
    if (rc == 0)
        rc = check_in_edges(c, g, cnt);
    sl_free(cnt);
    return rc;
}

int sl_job_graph_validate(const sl_job_graph_t *g, char *err, size_t errlen) {
    ctx_t c;
    ctx_init(&c, err, errlen);
    return validate(&c, g);
}

/* ---- Encoding ---- */

/* The message points into the graph for text and arrays it can share; what must be built
 * (structs, pointer arrays, schema specs) is recorded here and freed once packed. */
typedef struct enc_s {
    void **allocs;
    size_t n, cap;
} enc_t;

/* Zeroed memory for `count` (> 0) items, or NULL when out of memory. */
static void *enc_calloc(enc_t *e, size_t count, size_t size) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        void **a = sl_realloc(e->allocs, cap * sizeof *a);
        if (a == NULL)
            return NULL;
        e->allocs = a;
        e->cap = cap;
    }
    void *p = sl_calloc(count, size);
    if (p != NULL)
        e->allocs[e->n++] = p;
    return p;
}

static void enc_free(enc_t *e) {
    for (size_t i = 0; i < e->n; i++)
        sl_free(e->allocs[i]);
    sl_free(e->allocs);
}

/* NULL travels as empty text; validation makes sure NULL and "" are never both meaningful. */
static ProtobufCBinaryData text(const char *s) {
    return s ? (ProtobufCBinaryData){strlen(s), (uint8_t *)s} : (ProtobufCBinaryData){0, NULL};
}

static int encode_schema(enc_t *e, const sl_schema_t *s, ProtobufCBinaryData *out) {
    *out = text(NULL);
    if (s == NULL)
        return 0;
    size_t cap = 1;
    for (uint32_t i = 0; i < sl_schema_nfields(s); i++)
        cap += strlen(sl_schema_field(s, i)->name) + 12; /* ",", ":", "timestamp" (the longest), "?" */
    char *spec = enc_calloc(e, cap, 1);
    if (spec == NULL)
        return SL_ENOMEM;
    int rc = sl_schema_format(s, spec, cap);
    if (rc)
        return rc;
    *out = text(spec);
    return 0;
}

static int encode_params(enc_t *e, const sl_params_t *p, pb_node_t *m) {
    if (p->n == 0)
        return 0;
    pb_param_t *items = enc_calloc(e, p->n, sizeof *items);
    pb_param_t **ptrs = enc_calloc(e, p->n, sizeof *ptrs);
    if (items == NULL || ptrs == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < p->n; i++) {
        sluice__graph__param__init(&items[i]);
        items[i].key = text(p->items[i].key);
        items[i].value = text(p->items[i].value);
        ptrs[i] = &items[i];
    }
    m->params = ptrs;
    m->n_params = p->n;
    return 0;
}

static int encode_inputs(enc_t *e, const sl_stream_node_t *n, pb_node_t *m) {
    m->ninputs = n->ninputs;
    if (n->ninputs == 0)
        return 0;
    ProtobufCBinaryData *specs = enc_calloc(e, n->ninputs, sizeof *specs);
    pb_key_t *keys = enc_calloc(e, n->ninputs, sizeof *keys);
    pb_key_t **ptrs = enc_calloc(e, n->ninputs, sizeof *ptrs);
    if (specs == NULL || keys == NULL || ptrs == NULL)
        return SL_ENOMEM;
    for (uint32_t k = 0; k < n->ninputs; k++) {
        int rc = encode_schema(e, n->in_schema[k], &specs[k]);
        if (rc)
            return rc;
        sluice__graph__key__init(&keys[k]);
        keys[k].n_fields = n->key[k].nfields;
        keys[k].fields = (uint32_t *)n->key[k].fields;
        keys[k].fn = text(n->key[k].fn);
        ptrs[k] = &keys[k];
    }
    m->in_schemas = specs;
    m->n_in_schemas = n->ninputs;
    m->keys = ptrs;
    m->n_keys = n->ninputs;
    return 0;
}

static int encode_node(enc_t *e, const sl_stream_node_t *n, pb_node_t *m) {
    sluice__graph__node__init(m);
    m->id = n->id;
    m->name = text(n->name);
    m->kind = text(n->kind);
    m->parallelism = n->parallelism;
    m->chain_start = n->chain_start;
    m->vertex = n->vertex;
    m->chain_index = n->chain_index;
    int rc = encode_params(e, &n->params, m);
    if (rc == 0)
        rc = encode_schema(e, n->out_schema, &m->out_schema);
    if (rc == 0)
        rc = encode_inputs(e, n, m);
    return rc;
}

static Sluice__Graph__Partitioner partitioner_to_pb(sl_partitioner_t p) {
    switch (p) {
    case SL_PART_HASH:
        return SLUICE__GRAPH__PARTITIONER__PARTITIONER_HASH;
    case SL_PART_REBALANCE:
        return SLUICE__GRAPH__PARTITIONER__PARTITIONER_REBALANCE;
    case SL_PART_BROADCAST:
        return SLUICE__GRAPH__PARTITIONER__PARTITIONER_BROADCAST;
    case SL_PART_FORWARD:
    default: /* validation has refused anything else */
        return SLUICE__GRAPH__PARTITIONER__PARTITIONER_FORWARD;
    }
}

static int encode_nodes(enc_t *e, const sl_job_graph_t *g, pb_graph_t *m) {
    pb_node_t *nodes = enc_calloc(e, g->nnodes, sizeof *nodes);
    pb_node_t **ptrs = enc_calloc(e, g->nnodes, sizeof *ptrs);
    if (nodes == NULL || ptrs == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        int rc = encode_node(e, &g->nodes[i], &nodes[i]);
        if (rc)
            return rc;
        ptrs[i] = &nodes[i];
    }
    m->nodes = ptrs;
    m->n_nodes = g->nnodes;
    return 0;
}

static int encode_edges(enc_t *e, const sl_job_graph_t *g, pb_graph_t *m) {
    if (g->nedges == 0)
        return 0;
    pb_edge_t *edges = enc_calloc(e, g->nedges, sizeof *edges);
    pb_edge_t **ptrs = enc_calloc(e, g->nedges, sizeof *ptrs);
    if (edges == NULL || ptrs == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < g->nedges; i++) {
        const sl_stream_edge_t *ed = &g->edges[i];
        sluice__graph__edge__init(&edges[i]);
        edges[i].src = ed->src;
        edges[i].dst = ed->dst;
        edges[i].dst_input = ed->dst_input;
        edges[i].partitioner = partitioner_to_pb(ed->partitioner);
        edges[i].chained = ed->chained;
        ptrs[i] = &edges[i];
    }
    m->edges = ptrs;
    m->n_edges = g->nedges;
    return 0;
}

static int encode_vertices(enc_t *e, const sl_job_graph_t *g, pb_graph_t *m) {
    pb_vertex_t *vs = enc_calloc(e, g->nvertices, sizeof *vs);
    pb_vertex_t **ptrs = enc_calloc(e, g->nvertices, sizeof *ptrs);
    if (vs == NULL || ptrs == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < g->nvertices; i++) {
        const sl_job_vertex_t *v = &g->vertices[i];
        sluice__graph__vertex__init(&vs[i]);
        vs[i].id = v->id;
        vs[i].name = text(v->name);
        vs[i].parallelism = v->parallelism;
        vs[i].nodes = v->nodes;
        vs[i].n_nodes = v->nnodes;
        ptrs[i] = &vs[i];
    }
    m->vertices = ptrs;
    m->n_vertices = g->nvertices;
    return 0;
}

static int pack(const pb_graph_t *m, uint8_t **out, size_t *len) {
    size_t n = sluice__graph__job_graph__get_packed_size(m);
    if (n > SL_JOB_GRAPH_MAX_BYTES)
        return SL_ERANGE;
    uint8_t *buf = sl_malloc(n ? n : 1);
    if (buf == NULL)
        return SL_ENOMEM;
    if (sluice__graph__job_graph__pack(m, buf) != n) { /* protobuf-c promises equality */
        sl_free(buf);
        return SL_EPROTO;
    }
    *out = buf;
    *len = n;
    return 0;
}

int sl_job_graph_encode(const sl_job_graph_t *g, uint8_t **out, size_t *len) {
    int rc = sl_job_graph_validate(g, NULL, 0);
    if (rc)
        return rc;
    enc_t e = {0};
    pb_graph_t m;
    sluice__graph__job_graph__init(&m);
    m.format_version = SL_JOB_GRAPH_FORMAT_VERSION;
    m.name = text(g->name);
    m.library = text(g->library);
    m.max_parallelism = g->max_parallelism;
    if ((rc = encode_nodes(&e, g, &m)) == 0 && (rc = encode_edges(&e, g, &m)) == 0 &&
        (rc = encode_vertices(&e, g, &m)) == 0)
        rc = pack(&m, out, len);
    enc_free(&e);
    return rc;
}

/* ---- Decoding, step 1: message to structs ---- */

typedef enum { TEXT_ANY, TEXT_NONEMPTY, TEXT_OPTIONAL } text_mode_t;

/* Copies wire text into a C string. A NUL byte inside is refused: the C side would silently
 * cut the text there, so two different names could decode alike. */
static int take_text(ctx_t *c, const ProtobufCBinaryData *b, text_mode_t mode, const char *what, char **out) {
    *out = NULL;
    if (b->len == 0 && mode == TEXT_OPTIONAL)
        return 0;
    if (b->len == 0 && mode == TEXT_NONEMPTY)
        return fail(c, SL_EPARSE, "%s is empty", what);
    if (b->len > 0 && memchr(b->data, '\0', b->len) != NULL)
        return fail(c, SL_EPARSE, "%s contains a NUL byte", what);
    *out = b->len ? sl_strndup((const char *)b->data, b->len) : sl_strdup("");
    return *out ? 0 : fail(c, SL_ENOMEM, "out of memory");
}

static int take_schema(ctx_t *c, const ProtobufCBinaryData *b, bool optional, const char *what, sl_schema_t **out) {
    *out = NULL;
    if (b->len == 0 && optional)
        return 0;
    char *spec, perr[256];
    int rc = take_text(c, b, TEXT_NONEMPTY, what, &spec);
    if (rc)
        return rc;
    rc = sl_schema_parse(spec, out, perr, sizeof perr);
    sl_free(spec);
    if (rc == SL_ENOMEM)
        return fail(c, rc, "out of memory");
    return rc ? fail(c, SL_EPARSE, "%s: %s", what, perr) : 0;
}

/* Params are written straight into the array (sl_params_set would search it for every key:
 * quadratic); duplicate keys are refused by validation. */
static int build_params(ctx_t *c, const pb_node_t *m, sl_params_t *p) {
    if (m->n_params > SL_JOB_GRAPH_MAX_PARAMS)
        return fail(c, SL_EPARSE, "%zu params, at most %u", m->n_params, SL_JOB_GRAPH_MAX_PARAMS);
    if (m->n_params == 0)
        return 0;
    p->items = sl_calloc(m->n_params, sizeof *p->items);
    if (p->items == NULL)
        return fail(c, SL_ENOMEM, "out of memory");
    p->cap = (uint32_t)m->n_params;
    for (size_t i = 0; i < m->n_params; i++) {
        char what[80], *key, *value;
        snprintf(what, sizeof what, "param %zu key", i);
        int rc = take_text(c, &m->params[i]->key, TEXT_ANY, what, &key);
        if (rc)
            return rc;
        snprintf(what, sizeof what, "param %zu ('%.16s') value", i, key);
        if ((rc = take_text(c, &m->params[i]->value, TEXT_ANY, what, &value)) != 0) {
            sl_free(key);
            return rc;
        }
        p->items[p->n++] = (sl_param_t){key, value};
    }
    return 0;
}

static int build_key(ctx_t *c, const pb_key_t *m, uint32_t k, sl_node_key_t *key) {
    if (m->n_fields > SL_JOB_GRAPH_MAX_KEY_FIELDS)
        return fail(c, SL_EPARSE, "key %u: %zu fields, at most %u", k, m->n_fields, SL_JOB_GRAPH_MAX_KEY_FIELDS);
    key->nfields = (uint32_t)m->n_fields;
    if (m->n_fields)
        memcpy(key->fields, m->fields, m->n_fields * sizeof key->fields[0]);
    char what[32];
    snprintf(what, sizeof what, "key %u function", k);
    return take_text(c, &m->fn, TEXT_OPTIONAL, what, &key->fn);
}

static int build_inputs(ctx_t *c, const pb_node_t *m, sl_stream_node_t *n) {
    if (m->ninputs > SL_NODE_MAX_INPUTS)
        return fail(c, SL_EPARSE, "%u inputs, at most %u", m->ninputs, SL_NODE_MAX_INPUTS);
    if (m->n_in_schemas != m->ninputs || m->n_keys != m->ninputs)
        return fail(c, SL_EPARSE, "%u inputs, but %zu input schemas and %zu keys", m->ninputs, m->n_in_schemas,
                    m->n_keys);
    n->ninputs = m->ninputs;
    for (uint32_t k = 0; k < n->ninputs; k++) {
        char what[32];
        snprintf(what, sizeof what, "input schema %u", k);
        int rc = take_schema(c, &m->in_schemas[k], false, what, &n->in_schema[k]);
        if (rc || (rc = build_key(c, m->keys[k], k, &n->key[k])) != 0)
            return rc;
    }
    return 0;
}

static int build_node(ctx_t *c, const pb_node_t *m, uint32_t i, sl_stream_node_t *n) {
    set_where(c, "node %u", i);
    n->id = m->id;
    n->parallelism = m->parallelism;
    n->chain_start = m->chain_start;
    n->vertex = m->vertex;
    n->chain_index = m->chain_index;
    int rc = take_text(c, &m->name, TEXT_ANY, "name", &n->name);
    if (rc)
        return rc;
    set_where(c, "node %u ('%.64s')", i, n->name);
    if ((rc = take_text(c, &m->kind, TEXT_NONEMPTY, "kind", &n->kind)) != 0 ||
        (rc = build_params(c, m, &n->params)) != 0 ||
        (rc = take_schema(c, &m->out_schema, true, "out schema", &n->out_schema)) != 0)
        return rc;
    return build_inputs(c, m, n);
}

static int partitioner_from_pb(int p, sl_partitioner_t *out) {
    switch (p) {
    case SLUICE__GRAPH__PARTITIONER__PARTITIONER_FORWARD:
        *out = SL_PART_FORWARD;
        return 0;
    case SLUICE__GRAPH__PARTITIONER__PARTITIONER_HASH:
        *out = SL_PART_HASH;
        return 0;
    case SLUICE__GRAPH__PARTITIONER__PARTITIONER_REBALANCE:
        *out = SL_PART_REBALANCE;
        return 0;
    case SLUICE__GRAPH__PARTITIONER__PARTITIONER_BROADCAST:
        *out = SL_PART_BROADCAST;
        return 0;
    default: /* proto3 enums are open: any number arrives as it was sent */
        return SL_EPARSE;
    }
}

static int build_edges(ctx_t *c, const pb_graph_t *m, sl_job_graph_t *g) {
    if (m->n_edges == 0)
        return 0;
    g->edges = sl_calloc(m->n_edges, sizeof *g->edges);
    if (g->edges == NULL)
        return fail(c, SL_ENOMEM, "out of memory");
    g->nedges = (uint32_t)m->n_edges;
    for (uint32_t i = 0; i < g->nedges; i++) {
        const pb_edge_t *pe = m->edges[i];
        sl_stream_edge_t *e = &g->edges[i];
        *e = (sl_stream_edge_t){pe->src, pe->dst, pe->dst_input, SL_PART_FORWARD, pe->chained};
        if (partitioner_from_pb((int)pe->partitioner, &e->partitioner) != 0) {
            set_where(c, "edge %u (%u -> %u)", i, pe->src, pe->dst);
            return fail(c, SL_EPARSE, "unknown partitioner %d", (int)pe->partitioner);
        }
    }
    return 0;
}

static int build_vertex(ctx_t *c, const pb_vertex_t *m, uint32_t i, sl_job_vertex_t *v) {
    set_where(c, "vertex %u", i);
    v->id = m->id;
    v->parallelism = m->parallelism;
    int rc = take_text(c, &m->name, TEXT_ANY, "name", &v->name);
    if (rc)
        return rc;
    if (m->n_nodes == 0 || m->n_nodes > SL_JOB_GRAPH_MAX_NODES)
        return fail(c, SL_EPARSE, "%zu nodes (must be 1..%u)", m->n_nodes, SL_JOB_GRAPH_MAX_NODES);
    v->nodes = sl_malloc(m->n_nodes * sizeof *v->nodes);
    if (v->nodes == NULL)
        return fail(c, SL_ENOMEM, "out of memory");
    memcpy(v->nodes, m->nodes, m->n_nodes * sizeof *v->nodes);
    v->nnodes = (uint32_t)m->n_nodes;
    return 0;
}

static int build_counts(ctx_t *c, const pb_graph_t *m) {
    if (m->format_version != SL_JOB_GRAPH_FORMAT_VERSION)
        return fail(c, SL_EPARSE, "format version %u not supported (this build reads %u)", m->format_version,
                    SL_JOB_GRAPH_FORMAT_VERSION);
    if (m->n_nodes == 0 || m->n_nodes > SL_JOB_GRAPH_MAX_NODES)
        return fail(c, SL_EPARSE, "%zu nodes (must be 1..%u)", m->n_nodes, SL_JOB_GRAPH_MAX_NODES);
    if (m->n_edges > SL_JOB_GRAPH_MAX_EDGES)
        return fail(c, SL_EPARSE, "%zu edges, at most %u", m->n_edges, SL_JOB_GRAPH_MAX_EDGES);
    if (m->n_vertices == 0)
        return fail(c, SL_EPARSE, "no job vertices: the graph was not finalized");
    if (m->n_vertices > m->n_nodes)
        return fail(c, SL_EPARSE, "%zu vertices for %zu nodes", m->n_vertices, m->n_nodes);
    return 0;
}

static int build_graph(ctx_t *c, const pb_graph_t *m, sl_job_graph_t *g) {
    int rc = build_counts(c, m);
    if (rc || (rc = take_text(c, &m->name, TEXT_ANY, "name", &g->name)) != 0 ||
        (rc = take_text(c, &m->library, TEXT_OPTIONAL, "library", &g->library)) != 0)
        return rc;
    g->max_parallelism = m->max_parallelism;
    g->nodes = sl_calloc(m->n_nodes, sizeof *g->nodes);
    g->vertices = sl_calloc(m->n_vertices, sizeof *g->vertices);
    if (g->nodes == NULL || g->vertices == NULL)
        return fail(c, SL_ENOMEM, "out of memory");
    /* Counted now: zeroed entries are what sl_job_graph_destroy expects of unused ones. */
    g->nnodes = (uint32_t)m->n_nodes;
    g->nvertices = (uint32_t)m->n_vertices;
    for (uint32_t i = 0; rc == 0 && i < g->nnodes; i++)
        rc = build_node(c, m->nodes[i], i, &g->nodes[i]);
    if (rc == 0)
        rc = build_edges(c, m, g);
    for (uint32_t i = 0; rc == 0 && i < g->nvertices; i++)
        rc = build_vertex(c, m->vertices[i], i, &g->vertices[i]);
    if (rc == 0)
        c->where[0] = '\0';
    return rc;
}

/* ---- Decoding: unpacking under a memory budget ---- */

/* protobuf-c allocates a struct for every submessage, so a message of empty entries would
 * unpack into far more memory than its size: the budget refuses that before it happens.
 * A real graph needs 3 to 5 times its size (measured on the Nexmark queries and tests). */
typedef struct budget_s {
    size_t left;
    bool over;
    bool oom;
} budget_t;

static size_t budget_for(size_t len) { return 16 * len + (1u << 20); }

static void *pb_alloc(void *data, size_t size) {
    budget_t *b = data;
    if (size > b->left) {
        b->over = true;
        return NULL;
    }
    void *p = sl_malloc(size);
    if (p == NULL) {
        b->oom = true;
        return NULL;
    }
    b->left -= size;
    return p;
}

static void pb_free(void *data, void *ptr) { sl_free(ptr); }

int sl_job_graph_decode(const uint8_t *data, size_t len, sl_job_graph_t *g, char *err, size_t errlen) {
    ctx_t c;
    ctx_init(&c, err, errlen);
    memset(g, 0, sizeof *g);
    if (len > SL_JOB_GRAPH_MAX_BYTES)
        return fail(&c, SL_EPARSE, "%zu bytes, more than the %u a job graph may have", len, SL_JOB_GRAPH_MAX_BYTES);
    budget_t b = {.left = budget_for(len)};
    ProtobufCAllocator a = {pb_alloc, pb_free, &b};
    pb_graph_t *m = sluice__graph__job_graph__unpack(&a, len, data);
    if (m == NULL && b.oom)
        return fail(&c, SL_ENOMEM, "out of memory");
    if (m == NULL && b.over)
        return fail(&c, SL_EPARSE, "unpacking would take more than %zu bytes of memory for %zu bytes",
                    budget_for(len), len);
    if (m == NULL)
        return fail(&c, SL_EPARSE, "not a protobuf JobGraph message (%zu bytes)", len);
    int rc = build_graph(&c, m, g);
    sluice__graph__job_graph__free_unpacked(m, &a);
    if (rc == 0 && (rc = validate(&c, g)) == SL_EJOB)
        rc = SL_EPARSE; /* from the wire, an inconsistent graph is malformed input */
    if (rc)
        sl_job_graph_destroy(g);
    return rc;
}
