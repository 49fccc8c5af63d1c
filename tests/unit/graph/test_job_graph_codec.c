/* JobGraph codec (src/graph/job_graph_codec.h): real graphs (every Nexmark query, a job with a
 * keyed window, a union and a co_process, a direct graph with a broadcast edge) survive
 * encode -> decode field by field and re-encode to the same bytes; truncated, bit-flipped and
 * hand-broken messages are refused with a message naming what and where, never a crash or
 * leak; failed allocations end in SL_ENOMEM.
 * With SL_JOB_GRAPH_SEED_DIR set, the encodings are also written there (fuzz corpus seeds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/job.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/job_internal.h"
#include "core/alloc.h"
#include "graph/job_graph.h"
#include "graph/job_graph.pb-c.h"
#include "graph/job_graph_codec.h"
#include "nexmark/nexmark_queries.h"

#define BID_SCHEMA "auction:int64,price:int64?,ts:timestamp,who:string?"

/* ---- Equality, field by field ---- */

static void assert_text_same(const char *a, const char *b, const char *what) {
    if (a == NULL || b == NULL) {
        if (a != b)
            fail_msg("%s: '%s' vs '%s'", what, a ? a : "(null)", b ? b : "(null)");
        return;
    }
    if (strcmp(a, b) != 0)
        fail_msg("%s: '%s' vs '%s'", what, a, b);
}

static void assert_schema_same(const sl_schema_t *a, const sl_schema_t *b) {
    assert_true((a == NULL) == (b == NULL));
    if (a == NULL)
        return;
    assert_int_equal(sl_schema_nfields(a), sl_schema_nfields(b));
    for (uint32_t i = 0; i < sl_schema_nfields(a); i++) {
        const sl_field_t *x = sl_schema_field(a, i), *y = sl_schema_field(b, i);
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->type, y->type);
        assert_int_equal(x->nullable, y->nullable);
    }
}

static void assert_node_same(const sl_stream_node_t *a, const sl_stream_node_t *b) {
    assert_int_equal(a->id, b->id);
    assert_text_same(a->name, b->name, "node name");
    assert_text_same(a->kind, b->kind, "node kind");
    assert_int_equal(a->params.n, b->params.n);
    for (uint32_t i = 0; i < a->params.n; i++) { /* in order */
        assert_string_equal(a->params.items[i].key, b->params.items[i].key);
        assert_string_equal(a->params.items[i].value, b->params.items[i].value);
    }
    assert_schema_same(a->out_schema, b->out_schema);
    assert_int_equal(a->ninputs, b->ninputs);
    for (uint32_t k = 0; k < SL_NODE_MAX_INPUTS; k++) {
        assert_schema_same(a->in_schema[k], b->in_schema[k]);
        assert_int_equal(a->key[k].nfields, b->key[k].nfields);
        for (uint32_t f = 0; f < a->key[k].nfields; f++)
            assert_int_equal(a->key[k].fields[f], b->key[k].fields[f]);
        assert_text_same(a->key[k].fn, b->key[k].fn, "key fn");
    }
    assert_int_equal(a->parallelism, b->parallelism);
    assert_int_equal(a->chain_start, b->chain_start);
    assert_int_equal(a->vertex, b->vertex);
    assert_int_equal(a->chain_index, b->chain_index);
}

static void assert_graph_same(const sl_job_graph_t *a, const sl_job_graph_t *b) {
    assert_text_same(a->name, b->name, "graph name");
    assert_text_same(a->library, b->library, "library");
    assert_int_equal(a->max_parallelism, b->max_parallelism);
    assert_int_equal(a->nnodes, b->nnodes);
    for (uint32_t i = 0; i < a->nnodes; i++)
        assert_node_same(&a->nodes[i], &b->nodes[i]);
    assert_int_equal(a->nedges, b->nedges);
    for (uint32_t i = 0; i < a->nedges; i++) {
        const sl_stream_edge_t *x = &a->edges[i], *y = &b->edges[i];
        assert_int_equal(x->src, y->src);
        assert_int_equal(x->dst, y->dst);
        assert_int_equal(x->dst_input, y->dst_input);
        assert_int_equal(x->partitioner, y->partitioner);
        assert_int_equal(x->chained, y->chained);
    }
    assert_int_equal(a->nvertices, b->nvertices);
    for (uint32_t i = 0; i < a->nvertices; i++) {
        const sl_job_vertex_t *x = &a->vertices[i], *y = &b->vertices[i];
        assert_int_equal(x->id, y->id);
        assert_text_same(x->name, y->name, "vertex name");
        assert_int_equal(x->parallelism, y->parallelism);
        assert_int_equal(x->nnodes, y->nnodes);
        assert_memory_equal(x->nodes, y->nodes, x->nnodes * sizeof x->nodes[0]);
    }
}

/* ---- Helpers ---- */

static void encode_ok(const sl_job_graph_t *g, uint8_t **buf, size_t *len) {
    int rc = sl_job_graph_encode(g, buf, len);
    if (rc) {
        char err[512] = "";
        sl_job_graph_validate(g, err, sizeof err);
        fail_msg("encode '%s': %s (%s)", g->name, sl_err_name(rc), err);
    }
}

static void decode_ok(const uint8_t *buf, size_t len, sl_job_graph_t *g) {
    char err[512] = "";
    int rc = sl_job_graph_decode(buf, len, g, err, sizeof err);
    if (rc)
        fail_msg("decode: %s (%s)", sl_err_name(rc), err);
}

static uint32_t n_refused, n_accepted; /* by decode_any */

/* A refused input leaves a zeroed graph and a message; an accepted one is a graph that
 * encodes again (it passed validation). Either way nothing leaks (ASan). */
static void decode_any(const uint8_t *buf, size_t len) {
    sl_job_graph_t g;
    char err[512] = "";
    int rc = sl_job_graph_decode(buf, len, &g, err, sizeof err);
    rc ? n_refused++ : n_accepted++;
    if (rc) {
        assert_int_equal(rc, SL_EPARSE);
        assert_true(strncmp(err, "job graph: ", 11) == 0);
        assert_null(g.nodes);
        assert_int_equal(g.nnodes, 0);
        sl_job_graph_destroy(&g);
        return;
    }
    uint8_t *again;
    size_t alen;
    encode_ok(&g, &again, &alen);
    sl_free(again);
    sl_job_graph_destroy(&g);
}

/* Every truncation, and one flipped bit (chosen by a fixed PRNG) at every byte. */
static void corrupt_all(const uint8_t *buf, size_t len) {
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    for (size_t n = 0; n < len; n++) {
        memcpy(copy, buf, n);
        decode_any(copy, n);
    }
    uint32_t rng = 12345;
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, buf, len);
        rng = rng * 1103515245u + 12345u;
        copy[i] ^= (uint8_t)(1u << ((rng >> 16) & 7u));
        decode_any(copy, len);
    }
    free(copy);
}

static void save_seed(const char *label, const uint8_t *buf, size_t len) {
    const char *dir = getenv("SL_JOB_GRAPH_SEED_DIR");
    if (dir == NULL)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, label);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* The core property: decode(encode(g)) equals g in every field, and encodes to the same bytes. */
static void roundtrip(const sl_job_graph_t *g, const char *label, bool corrupt) {
    uint8_t *buf, *buf2;
    size_t len, len2;
    encode_ok(g, &buf, &len);
    sl_job_graph_t d;
    decode_ok(buf, len, &d);
    assert_graph_same(g, &d);
    encode_ok(&d, &buf2, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    sl_job_graph_destroy(&d);
    sl_free(buf2);
    if (corrupt)
        corrupt_all(buf, len);
    save_seed(label, buf, len);
    sl_free(buf);
}

static void finalize_ok(sl_job_t *job, uint32_t parallelism, bool chaining) {
    char err[512] = "";
    if (sl_job_error(job))
        fail_msg("build: %s", sl_job_error(job));
    int rc = sl_job_graph_finalize(&job->graph, parallelism, chaining, err, sizeof err);
    if (rc)
        fail_msg("finalize: %s (%s)", sl_err_name(rc), err);
}

static sl_job_t *nexmark_job(const char *query, uint32_t parallelism, const char *output) {
    sl_job_t *job = NULL;
    assert_int_equal(sl_job_create(query, &job), 0);
    sl_nexmark_opts_t o = {.query = query, .events = 1000, .parallelism = parallelism, .output = output,
                           .redis_address = "127.0.0.1:6379", .async = sl_async_options_default()};
    char err[512] = "";
    int rc = sl_nexmark_build(job, &o, err, sizeof err);
    if (rc)
        fail_msg("nexmark %s: %s", query, err);
    finalize_ok(job, parallelism, true);
    return job;
}

/* A keyed window, a union, a co_process keyed by a user function, params, a chain breaker,
 * a rebalance, nullable fields and a job library path. */
static sl_job_t *custom_job(uint32_t parallelism, bool chaining) {
    sl_job_t *job = NULL;
    assert_int_equal(sl_job_create("custom-job", &job), 0);
    sl_stream_t *a = sl_stream_watermarks(sl_source_generator(job, "bids", "gen_bids", BID_SCHEMA, 0), "ts", 100, 0);
    sl_stream_t *b = sl_source_generator(job, "more-bids", "gen_more", BID_SCHEMA, 1000);
    sl_stream_t *u = sl_stream_union(a, sl_stream_rebalance(b));
    u = sl_stream_param(sl_stream_param(u, "note", "keeps order, a=b"), "empty", "");
    sl_window_spec_t w = {.kind = SL_WINDOW_SLIDING, .time = SL_TIME_EVENT, .size_ms = 10000, .slide_ms = 2000};
    sl_stream_t *win = sl_stream_window_aggregate(sl_stream_key_by(u, "auction,who"), "per-auction", &w,
                                                  "count(), max(price)");
    sl_sink_print(win, "print");
    sl_stream_t *left = sl_stream_key_by_fn(sl_stream_filter(u, "cheap", "is_cheap"), "auction_key");
    sl_stream_t *right = sl_stream_key_by_fn(b, "auction_key");
    sl_stream_t *co = sl_stream_co_process(left, right, "co", "co_fn", "co_timer", "auction:int64,n:int64?");
    co = sl_stream_parallelism(co, 1);
    sl_stream_t *proj = sl_stream_start_chain(sl_stream_project(co, "proj", "0"));
    assert_non_null(sl_sink_discard(proj, "out"));
    job->graph.library = sl_strdup("/opt/jobs/custom job.so");
    finalize_ok(job, parallelism, chaining);
    return job;
}

/* ---- Round trips ---- */

static void test_nexmark_roundtrip(void **state) {
    char names[128];
    snprintf(names, sizeof names, "%s", sl_nexmark_query_names());
    uint32_t count = 0;
    for (char *save = NULL, *q = strtok_r(names, " ", &save); q; q = strtok_r(NULL, " ", &save)) {
        for (uint32_t p = 2; p <= 3; p++) {
            sl_job_t *job = nexmark_job(q, p, p == 3 ? "/tmp/nexmark-out.csv" : NULL);
            char label[64];
            snprintf(label, sizeof label, "nexmark_%s_p%u", q, p);
            /* Corruption of every query at one parallelism is plenty and keeps ASan runs short. */
            roundtrip(&job->graph, label, p == 2);
            sl_job_destroy(job);
            count++;
        }
    }
    assert_int_equal(count, 18);
    /* Most corruptions are refused; a flipped bit inside a name or param value is not, and
     * must still give a valid graph. */
    print_message("corrupted encodings: %u refused, %u accepted\n", n_refused, n_accepted);
    assert_true(n_refused > n_accepted);
    assert_true(n_accepted > 0);
}

static void test_custom_roundtrip(void **state) {
    for (uint32_t p = 1; p <= 3; p++) {
        for (int chaining = 0; chaining <= 1; chaining++) {
            sl_job_t *job = custom_job(p, chaining);
            char label[64];
            snprintf(label, sizeof label, "custom_p%u%s", p, chaining ? "" : "_unchained");
            roundtrip(&job->graph, label, p == 2);
            sl_job_destroy(job);
        }
    }
}

/* What the builder cannot make: a broadcast edge and max_parallelism other than 128. */
static void test_direct_broadcast_roundtrip(void **state) {
    sl_job_graph_t g;
    sl_job_graph_init(&g, "");
    g.max_parallelism = 32768;
    sl_schema_t *sc;
    char err[256];
    assert_int_equal(sl_schema_parse("x:bool,y:double?,z:bytes,w:int32", &sc, err, sizeof err), 0);
    int a = sl_job_graph_add_node(&g, "source_generator", "a", sc);
    int s = sl_job_graph_add_node(&g, "sink_discard", "s", NULL);
    assert_true(a >= 0 && s >= 0);
    g.nodes[s].ninputs = 1;
    g.nodes[s].in_schema[0] = sl_schema_ref(sc);
    g.nodes[s].parallelism = 7;
    assert_int_equal(sl_params_set(&g.nodes[a].params, "symbol", "gen"), 0);
    assert_int_equal(sl_job_graph_add_edge(&g, (uint32_t)a, (uint32_t)s, 0, SL_PART_BROADCAST), 0);
    assert_int_equal(sl_job_graph_finalize(&g, 5, true, err, sizeof err), 0);
    assert_int_equal(g.nvertices, 2);
    roundtrip(&g, "direct_broadcast", true);
    sl_schema_destroy(sc);
    sl_job_graph_destroy(&g);
}

/* ---- Hand-broken messages ---- */

typedef struct {
    sl_job_t *job;
    Sluice__Graph__JobGraph *m; /* the custom job's encoding, unpacked, to break one field */
} fixture_t;

static int fx_setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->job = custom_job(2, true);
    uint8_t *buf;
    size_t len;
    if (sl_job_graph_encode(&f->job->graph, &buf, &len) != 0)
        return -1;
    f->m = sluice__graph__job_graph__unpack(NULL, len, buf);
    sl_free(buf);
    *state = f;
    return f->m ? 0 : -1;
}

static int fx_teardown(void **state) {
    fixture_t *f = *state;
    sluice__graph__job_graph__free_unpacked(f->m, NULL);
    sl_job_destroy(f->job);
    free(f);
    return 0;
}

/* Replaces bytes of the unpacked message with a malloc'd copy, as free_unpacked expects. */
static void set_bytes(ProtobufCBinaryData *b, const void *data, size_t len) {
    free(b->data);
    b->data = len ? malloc(len) : NULL;
    if (len) {
        assert_non_null(b->data);
        memcpy(b->data, data, len);
    }
    b->len = len;
}

static uint32_t node_id(fixture_t *f, const char *name) {
    for (uint32_t i = 0; i < f->job->graph.nnodes; i++)
        if (strcmp(f->job->graph.nodes[i].name, name) == 0)
            return i;
    fail_msg("no node '%s'", name);
    return 0;
}

/* Packs the (broken) message and expects decode to refuse it with a message containing each
 * of the NULL-terminated fragments. */
static void expect_refused(fixture_t *f, ...) {
    size_t len = sluice__graph__job_graph__get_packed_size(f->m);
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    sluice__graph__job_graph__pack(f->m, buf);
    sl_job_graph_t g;
    char err[512] = "";
    int rc = sl_job_graph_decode(buf, len, &g, err, sizeof err);
    free(buf);
    if (rc == 0)
        sl_job_graph_destroy(&g);
    assert_int_equal(rc, SL_EPARSE);
    va_list ap;
    va_start(ap, f);
    for (const char *frag; (frag = va_arg(ap, const char *)) != NULL;)
        if (strstr(err, frag) == NULL)
            fail_msg("error '%s' lacks '%s'", err, frag);
    va_end(ap);
}

static void test_edge_past_nodes(void **state) {
    fixture_t *f = *state;
    f->m->edges[0]->dst = 99;
    expect_refused(f, "job graph: edge 0 (", "dst 99 is past the", "nodes", NULL);
}

static void test_key_field_beyond_schema(void **state) {
    fixture_t *f = *state;
    uint32_t id = node_id(f, "per-auction");
    f->m->nodes[id]->keys[0]->fields[1] = 9; /* keyed by "auction,who": fields 0 and 3 of 4 */
    char where[64];
    snprintf(where, sizeof where, "job graph: node %u ('per-auction')", id);
    expect_refused(f, where, "key 0: field index 9 is past the 4 fields of input schema 0", NULL);
}

static void test_vertex_lists_missing_node(void **state) {
    fixture_t *f = *state;
    Sluice__Graph__Vertex *v = f->m->vertices[f->m->n_vertices - 1];
    v->nodes[v->n_nodes - 1] = 1234;
    expect_refused(f, "vertex", "lists node 1234, past the", NULL);
}

static void test_vertex_inconsistent(void **state) {
    fixture_t *f = *state;
    /* Node 1 claims the chain index of node 0. */
    f->m->nodes[1]->vertex = f->m->nodes[0]->vertex;
    f->m->nodes[1]->chain_index = f->m->nodes[0]->chain_index;
    expect_refused(f, "which says it is at vertex", NULL);
}

/* Chained flags must describe the chains: a task calls chain members directly. */
static void test_chain_edges(void **state) {
    fixture_t *f = *state;
    Sluice__Graph__Edge *in_chain = NULL, *across = NULL, *into_co1 = NULL;
    uint32_t co = node_id(f, "co");
    for (size_t i = 0; i < f->m->n_edges; i++) {
        Sluice__Graph__Edge *e = f->m->edges[i];
        if (e->chained && in_chain == NULL)
            in_chain = e;
        if (!e->chained && e->partitioner == SLUICE__GRAPH__PARTITIONER__PARTITIONER_FORWARD && across == NULL)
            across = e;
        if (e->dst == co && e->dst_input == 1)
            into_co1 = e;
    }
    assert_non_null(in_chain);
    assert_non_null(across);
    assert_non_null(into_co1);
    in_chain->chained = false;
    expect_refused(f, "needs exactly one input edge, chained (has 1, 0 chained)", NULL);
    in_chain->chained = true;
    across->chained = true;
    expect_refused(f, "chained, but not a forward edge down one chain", NULL);
    across->chained = false;
    into_co1->dst_input = 0;
    expect_refused(f, "('co'): input 1 is not connected", NULL);
}

static void test_unknown_partitioner(void **state) {
    fixture_t *f = *state;
    f->m->edges[2]->partitioner = 7;
    expect_refused(f, "job graph: edge 2 (", "unknown partitioner 7", NULL);
}

static void test_missing_input_schema(void **state) {
    fixture_t *f = *state;
    uint32_t id = node_id(f, "co");
    set_bytes(&f->m->nodes[id]->in_schemas[1], NULL, 0);
    expect_refused(f, "('co'): input schema 1 is empty", NULL);
    set_bytes(&f->m->nodes[id]->in_schemas[1], "a:integer", 9);
    expect_refused(f, "('co'): input schema 1: schema field 'a': unknown type 'integer'", NULL);
    f->m->nodes[id]->n_in_schemas = 1;
    expect_refused(f, "('co'): 2 inputs, but 1 input schemas and 2 keys", NULL);
    f->m->nodes[id]->n_in_schemas = 2; /* so that free_unpacked frees it */
}

static void test_duplicate_node_id(void **state) {
    fixture_t *f = *state;
    f->m->nodes[2]->id = 1;
    expect_refused(f, "job graph: node 2 (", "duplicate node id 1", NULL);
    f->m->nodes[2]->id = 4000;
    expect_refused(f, "id 4000 is past the", NULL);
}

static void test_bad_parallelism(void **state) {
    fixture_t *f = *state;
    f->m->max_parallelism = 0;
    expect_refused(f, "job graph: max_parallelism 0 (must be 1..32768)", NULL);
    f->m->max_parallelism = 2;
    f->m->nodes[0]->parallelism = 3;
    expect_refused(f, "job graph: node 0 ('bids'): parallelism 3 (must be 1..2", NULL);
    f->m->max_parallelism = 128;
    f->m->nodes[0]->parallelism = 0;
    expect_refused(f, "parallelism 0", NULL);
}

static void test_nul_in_text(void **state) {
    fixture_t *f = *state;
    static const uint8_t name[] = {'b', 'i', 0, 'd', 's'};
    set_bytes(&f->m->nodes[0]->name, name, sizeof name);
    expect_refused(f, "job graph: node 0: name contains a NUL byte", NULL);
    set_bytes(&f->m->nodes[0]->name, "bids", 4);
    assert_true(f->m->nodes[0]->n_params > 0);
    set_bytes(&f->m->nodes[0]->params[0]->value, name, sizeof name);
    expect_refused(f, "node 0 ('bids'): param 0 ('", "value contains a NUL byte", NULL);
}

static void test_key_too_many_fields(void **state) {
    fixture_t *f = *state;
    uint32_t id = node_id(f, "per-auction");
    Sluice__Graph__Key *k = f->m->nodes[id]->keys[0];
    free(k->fields);
    k->fields = calloc(9, sizeof *k->fields);
    k->n_fields = 9;
    expect_refused(f, "key 0: 9 fields, at most 8", NULL);
}

static void test_other_breakage(void **state) {
    fixture_t *f = *state;
    uint32_t co = node_id(f, "co");
    f->m->format_version = 2;
    expect_refused(f, "job graph: format version 2 not supported (this build reads 1)", NULL);
    f->m->format_version = 1;
    /* A hash edge into an input without a key. */
    set_bytes(&f->m->nodes[co]->keys[0]->fn, NULL, 0);
    expect_refused(f, "-> 'co'): partitioned by key into input 0, which has no key", NULL);
    set_bytes(&f->m->nodes[co]->keys[0]->fn, "auction_key", 11);
    /* The same param twice. */
    Sluice__Graph__Node *n = f->m->nodes[co];
    ProtobufCBinaryData saved = n->params[1]->key;
    n->params[1]->key = n->params[0]->key;
    expect_refused(f, "('co'): param '", "' is set twice", NULL);
    n->params[1]->key = saved;
    /* dst_input past the destination's inputs, and an edge going backwards. */
    Sluice__Graph__Edge *e = f->m->edges[f->m->n_edges - 1];
    uint32_t dst = e->dst;
    e->dst_input = 1;
    expect_refused(f, "dst_input 1, but the destination has 1 inputs", NULL);
    e->dst_input = 0;
    e->dst = 0;
    expect_refused(f, "does not precede dst 0", NULL);
    e->dst = dst;
    /* Not a protobuf message at all, and too large. */
    sl_job_graph_t g;
    char err[256];
    const uint8_t junk[] = {0xff, 0xff, 0xff};
    assert_int_equal(sl_job_graph_decode(junk, sizeof junk, &g, err, sizeof err), SL_EPARSE);
    assert_string_equal(err, "job graph: not a protobuf JobGraph message (3 bytes)");
    assert_int_equal(sl_job_graph_decode(junk, SL_JOB_GRAPH_MAX_BYTES + 1u, &g, err, sizeof err), SL_EPARSE);
    assert_non_null(strstr(err, "more than the"));
    assert_int_equal(sl_job_graph_decode(NULL, 0, &g, NULL, 0), SL_EPARSE);
    /* An unchanged message still decodes: the fixture's edits were all undone. */
    size_t len = sluice__graph__job_graph__get_packed_size(f->m);
    uint8_t *buf = malloc(len);
    sluice__graph__job_graph__pack(f->m, buf);
    decode_ok(buf, len, &g);
    assert_graph_same(&f->job->graph, &g);
    sl_job_graph_destroy(&g);
    free(buf);
}

/* ---- The encoder refuses what a decoder would ---- */

static void test_encode_refuses_invalid(void **state) {
    sl_job_t *job = NULL;
    assert_int_equal(sl_job_create("unfinalized", &job), 0);
    sl_sink_discard(sl_source_generator(job, "g", "gen", BID_SCHEMA, 1), "out");
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(sl_job_graph_encode(&job->graph, &buf, &len), SL_EJOB);
    assert_null(buf);
    char err[256];
    assert_int_equal(sl_job_graph_validate(&job->graph, err, sizeof err), SL_EJOB);
    assert_string_equal(err, "job graph: no job vertices: the graph is not finalized");
    finalize_ok(job, 2, true);
    job->graph.nodes[1].key[0].nfields = 1;
    job->graph.nodes[1].key[0].fields[0] = 4; /* the schema has 4 fields */
    assert_int_equal(sl_job_graph_encode(&job->graph, &buf, &len), SL_EJOB);
    assert_int_equal(sl_job_graph_validate(&job->graph, err, sizeof err), SL_EJOB);
    assert_string_equal(err, "job graph: node 1 ('out'): key 0: field index 4 is past the 4 fields of input schema 0");
    job->graph.nodes[1].key[0].nfields = 0;
    job->graph.library = sl_strdup("");
    assert_int_equal(sl_job_graph_validate(&job->graph, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "empty library path"));
    sl_job_destroy(job);
}

/* ---- Failed allocations ---- */

static void test_alloc_failures(void **state) {
    sl_job_t *job = custom_job(2, true);
    uint8_t *buf;
    size_t len;
    encode_ok(&job->graph, &buf, &len);
    long n;
    for (n = 1;; n++) { /* the n-th allocation fails, until decode needs fewer than n */
        sl_job_graph_t g;
        char err[256];
        sl_alloc_fail_after(n, 0);
        int rc = sl_job_graph_decode(buf, len, &g, err, sizeof err);
        sl_alloc_fail_after(0, 0);
        if (rc == 0) {
            assert_graph_same(&job->graph, &g);
            sl_job_graph_destroy(&g);
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
        assert_null(g.nodes);
    }
    assert_true(n > 20);
    for (n = 1;; n++) {
        uint8_t *b2 = NULL;
        size_t l2;
        sl_alloc_fail_after(n, 0);
        int rc = sl_job_graph_encode(&job->graph, &b2, &l2);
        sl_alloc_fail_after(0, 0);
        if (rc == 0) {
            assert_int_equal(l2, len);
            assert_memory_equal(b2, buf, len);
            sl_free(b2);
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
        assert_null(b2);
    }
    sl_free(buf);
    sl_job_destroy(job);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nexmark_roundtrip),
        cmocka_unit_test(test_custom_roundtrip),
        cmocka_unit_test(test_direct_broadcast_roundtrip),
        cmocka_unit_test_setup_teardown(test_edge_past_nodes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_key_field_beyond_schema, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_vertex_lists_missing_node, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_vertex_inconsistent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chain_edges, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_partitioner, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_missing_input_schema, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_node_id, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_parallelism, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_nul_in_text, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_key_too_many_fields, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_other_breakage, fx_setup, fx_teardown),
        cmocka_unit_test(test_encode_refuses_invalid),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
