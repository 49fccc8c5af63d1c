/* JobGraph (src/graph/job_graph.h) built through the job builder (<sluice/job.h>) and directly:
 * finalize's chaining of forward edges, chain breakers, and SL_EJOB errors naming the node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/job.h>

#include <stdlib.h>
#include <string.h>

#include "api/job_internal.h"
#include "graph/job_graph.h"

#define SCHEMA "id:int64,name:string"

static sl_job_t *new_job(void) {
    sl_job_t *job = NULL;
    assert_int_equal(sl_job_create("test-job", &job), 0);
    assert_non_null(job);
    return job;
}

static sl_stream_t *gen(sl_job_t *job, const char *name) {
    sl_stream_t *s = sl_source_generator(job, name, "my_gen", SCHEMA, 10);
    assert_non_null(s);
    return s;
}

static sl_stream_node_t *node_named(sl_job_graph_t *g, const char *name) {
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return &g->nodes[i];
    fail_msg("no node '%s'", name);
    return NULL;
}

static sl_stream_edge_t *edge_between(sl_job_graph_t *g, const char *src, const char *dst) {
    uint32_t s = node_named(g, src)->id, d = node_named(g, dst)->id;
    for (uint32_t i = 0; i < g->nedges; i++)
        if (g->edges[i].src == s && g->edges[i].dst == d)
            return &g->edges[i];
    fail_msg("no edge %s -> %s", src, dst);
    return NULL;
}

static void finalize_ok(sl_job_t *job, uint32_t default_parallelism, bool chaining) {
    char err[512] = "";
    assert_null(sl_job_error(job));
    int rc = sl_job_graph_finalize(&job->graph, default_parallelism, chaining, err, sizeof err);
    if (rc)
        fail_msg("finalize: %s (%s)", sl_err_name(rc), err);
}

static void test_forward_chain(void **state) {
    sl_job_t *job = new_job();
    sl_stream_t *s = gen(job, "src");
    s = sl_stream_map(s, "m", "my_map", "id:int64");
    s = sl_stream_filter(s, "f", "my_filter");
    assert_non_null(sl_sink_discard(s, "out"));
    finalize_ok(job, 2, true);
    sl_job_graph_t *g = &job->graph;
    assert_int_equal(g->nnodes, 4);
    assert_int_equal(g->nedges, 3);
    assert_int_equal(g->nvertices, 1);
    sl_job_vertex_t *v = &g->vertices[0];
    assert_int_equal(v->parallelism, 2);
    assert_int_equal(v->nnodes, 4);
    assert_string_equal(v->name, "src -> m -> f -> out");
    const char *names[] = {"src", "m", "f", "out"};
    for (uint32_t i = 0; i < 4; i++) {
        sl_stream_node_t *n = node_named(g, names[i]);
        assert_int_equal(v->nodes[i], n->id);
        assert_int_equal(n->vertex, 0);
        assert_int_equal(n->chain_index, i);
        assert_int_equal(n->parallelism, 2); /* default resolved */
    }
    for (uint32_t i = 0; i < g->nedges; i++) {
        assert_int_equal(g->edges[i].partitioner, SL_PART_FORWARD);
        assert_true(g->edges[i].chained);
    }
    /* The map changed the schema; the filter kept it. */
    assert_int_equal(sl_schema_nfields(node_named(g, "m")->out_schema), 1);
    assert_int_equal(sl_schema_nfields(node_named(g, "f")->out_schema), 1);
    assert_int_equal(sl_schema_nfields(node_named(g, "src")->out_schema), 2);
    assert_null(node_named(g, "out")->out_schema);
    sl_job_destroy(job);
}

static void test_chaining_disabled(void **state) {
    sl_job_t *job = new_job();
    sl_stream_t *s = gen(job, "src");
    s = sl_stream_filter(s, "f", "my_filter");
    assert_non_null(sl_sink_discard(s, "out"));
    finalize_ok(job, 1, false);
    sl_job_graph_t *g = &job->graph;
    assert_int_equal(g->nvertices, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(g->vertices[i].nnodes, 1);
        assert_int_equal(g->nodes[i].vertex, i);
        assert_int_equal(g->nodes[i].chain_index, 0);
    }
    for (uint32_t i = 0; i < g->nedges; i++)
        assert_false(g->edges[i].chained);
    assert_string_equal(g->vertices[1].name, "f");
    sl_job_destroy(job);
}

static void test_hash_breaks_chain(void **state) {
    sl_job_t *job = new_job();
    sl_stream_t *s = gen(job, "src");
    s = sl_stream_filter(s, "f", "my_filter");
    sl_stream_t *k = sl_stream_key_by(s, "name");
    assert_non_null(k);
    s = sl_stream_map(k, "per_key", "my_map", SCHEMA);
    assert_non_null(sl_sink_discard(s, "out"));
    finalize_ok(job, 3, true);
    sl_job_graph_t *g = &job->graph;
    assert_int_equal(g->nvertices, 2);
    assert_string_equal(g->vertices[0].name, "src -> f");
    assert_string_equal(g->vertices[1].name, "per_key -> out");
    sl_stream_edge_t *e = edge_between(g, "f", "per_key");
    assert_int_equal(e->partitioner, SL_PART_HASH);
    assert_false(e->chained);
    assert_true(edge_between(g, "src", "f")->chained);
    assert_true(edge_between(g, "per_key", "out")->chained);
    /* The consumer knows how its input is keyed: field 1 ("name"). */
    sl_stream_node_t *pk = node_named(g, "per_key");
    assert_int_equal(pk->key[0].nfields, 1);
    assert_int_equal(pk->key[0].fields[0], 1);
    assert_int_equal(node_named(g, "per_key")->vertex, 1);
    assert_int_equal(node_named(g, "out")->chain_index, 1);
    sl_job_destroy(job);
}

static void test_parallelism_mismatch_rebalances(void **state) {
    sl_job_t *job = new_job();
    sl_stream_t *s = sl_stream_parallelism(gen(job, "src"), 1);
    s = sl_stream_parallelism(sl_stream_filter(s, "f", "my_filter"), 3);
    s = sl_stream_filter(s, "g", "my_filter"); /* default parallelism 3 as well */
    assert_non_null(sl_sink_discard(s, "out"));
    finalize_ok(job, 3, true);
    sl_job_graph_t *g = &job->graph;
    sl_stream_edge_t *e = edge_between(g, "src", "f");
    assert_int_equal(e->partitioner, SL_PART_REBALANCE);
    assert_false(e->chained);
    assert_int_equal(g->nvertices, 2);
    assert_string_equal(g->vertices[0].name, "src");
    assert_int_equal(g->vertices[0].parallelism, 1);
    assert_string_equal(g->vertices[1].name, "f -> g -> out");
    assert_int_equal(g->vertices[1].parallelism, 3);
    assert_int_equal(edge_between(g, "f", "g")->partitioner, SL_PART_FORWARD);
    sl_job_destroy(job);
}

static void test_start_chain_and_rebalance(void **state) {
    sl_job_t *job = new_job();
    sl_stream_t *s = gen(job, "src");
    s = sl_stream_start_chain(sl_stream_filter(s, "a", "my_filter"));
    s = sl_stream_filter(s, "b", "my_filter");
    s = sl_stream_filter(sl_stream_rebalance(s), "c", "my_filter");
    assert_non_null(sl_sink_discard(s, "out"));
    finalize_ok(job, 2, true);
    sl_job_graph_t *g = &job->graph;
    assert_int_equal(g->nvertices, 3);
    assert_string_equal(g->vertices[0].name, "src");
    assert_string_equal(g->vertices[1].name, "a -> b");
    assert_string_equal(g->vertices[2].name, "c -> out");
    assert_int_equal(edge_between(g, "src", "a")->partitioner, SL_PART_FORWARD);
    assert_false(edge_between(g, "src", "a")->chained);
    assert_int_equal(edge_between(g, "b", "c")->partitioner, SL_PART_REBALANCE);
    assert_false(edge_between(g, "b", "c")->chained);
    sl_job_destroy(job);
}

static void test_fan_out_and_union(void **state) {
    sl_job_t *job = new_job();
    sl_stream_t *s = gen(job, "src");
    sl_stream_t *x = sl_stream_filter(s, "x", "my_filter");
    sl_stream_t *y = sl_stream_filter(s, "y", "my_filter");
    assert_non_null(sl_sink_discard(x, "xout"));
    sl_stream_t *u = sl_stream_union(y, gen(job, "src2"));
    assert_non_null(u);
    assert_non_null(sl_sink_discard(u, "uout"));
    finalize_ok(job, 1, true);
    sl_job_graph_t *g = &job->graph;
    /* src fans out to x and y, both chained; the union has two inputs and starts a vertex. */
    sl_stream_node_t *src = node_named(g, "src");
    assert_int_equal(node_named(g, "x")->vertex, src->vertex);
    assert_int_equal(node_named(g, "y")->vertex, src->vertex);
    assert_int_equal(node_named(g, "xout")->vertex, src->vertex);
    sl_stream_node_t *un = node_named(g, "union");
    assert_int_not_equal(un->vertex, src->vertex);
    assert_int_not_equal(un->vertex, node_named(g, "src2")->vertex);
    assert_int_equal(node_named(g, "uout")->vertex, un->vertex);
    assert_int_equal(g->nvertices, 3);
    const sl_stream_edge_t *in[4];
    assert_int_equal(sl_job_graph_in_edges(g, un->id, in, 4), 2);
    assert_false(in[0]->chained);
    assert_false(in[1]->chained);
    assert_int_equal(sl_job_graph_in_edges(g, src->id, in, 4), 0);
    sl_job_destroy(job);
}

static void test_no_consumer(void **state) {
    sl_job_t *job = new_job();
    sl_stream_t *s = gen(job, "src");
    s = sl_stream_filter(s, "lonely_filter", "my_filter");
    assert_non_null(s);
    char err[512] = "";
    assert_int_equal(sl_job_graph_finalize(&job->graph, 1, true, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "lonely_filter"));
    sl_job_destroy(job);
}

static void test_builder_errors(void **state) {
    sl_job_t *job = new_job();
    sl_stream_t *s = gen(job, "src");
    assert_null(sl_stream_map(s, "schemaless_map", "my_map", NULL));
    assert_non_null(sl_job_error(job));
    assert_non_null(strstr(sl_job_error(job), "schemaless_map"));
    /* Later calls keep the first error and return NULL. */
    assert_null(sl_stream_filter(NULL, "f", "fn"));
    assert_null(sl_sink_discard(NULL, "out"));
    assert_non_null(strstr(sl_job_error(job), "schemaless_map"));
    sl_job_destroy(job);

    job = new_job();
    s = gen(job, "src");
    assert_null(sl_stream_parallelism(s, 0));
    assert_non_null(sl_job_error(job));
    assert_non_null(strstr(sl_job_error(job), "src"));
    sl_job_destroy(job);

    job = new_job();
    s = gen(job, "src");
    assert_null(sl_stream_key_by(s, "nosuchfield"));
    assert_non_null(strstr(sl_job_error(job), "nosuchfield"));
    sl_job_destroy(job);
}

/* ---- Graphs built directly ---- */

static sl_schema_t *schema(void) {
    sl_schema_t *sc;
    char err[256];
    assert_int_equal(sl_schema_parse(SCHEMA, &sc, err, sizeof err), 0);
    return sc;
}

/* Adds a node with `ninputs` inputs of schema `in` (borrowed) and output `out` (borrowed, may be NULL). */
static uint32_t add(sl_job_graph_t *g, const char *kind, const char *name, sl_schema_t *out, uint32_t ninputs,
                    sl_schema_t *in) {
    int id = sl_job_graph_add_node(g, kind, name, out);
    assert_true(id >= 0);
    sl_stream_node_t *n = &g->nodes[id];
    n->ninputs = ninputs;
    for (uint32_t i = 0; i < ninputs; i++)
        n->in_schema[i] = sl_schema_ref(in);
    return (uint32_t)id;
}

static void test_direct_chain(void **state) {
    sl_job_graph_t g;
    sl_job_graph_init(&g, "direct");
    assert_int_equal(g.max_parallelism, 128);
    sl_schema_t *sc = schema();
    uint32_t a = add(&g, "source_generator", "a", sc, 0, NULL);
    uint32_t b = add(&g, "filter", "b", sc, 1, sc);
    uint32_t c = add(&g, "sink_discard", "c", NULL, 1, sc);
    assert_int_equal(sl_job_graph_add_edge(&g, a, b, 0, SL_PART_FORWARD), 0);
    assert_int_equal(sl_job_graph_add_edge(&g, b, c, 0, SL_PART_FORWARD), 0);
    /* Edges must go forward in creation order and to an existing input. */
    assert_int_equal(sl_job_graph_add_edge(&g, c, a, 0, SL_PART_FORWARD), SL_EINVAL);
    assert_int_equal(sl_job_graph_add_edge(&g, a, a, 0, SL_PART_FORWARD), SL_EINVAL);
    assert_int_equal(sl_job_graph_add_edge(&g, a, 7, 0, SL_PART_FORWARD), SL_EINVAL);
    assert_int_equal(sl_job_graph_add_edge(&g, a, b, SL_NODE_MAX_INPUTS, SL_PART_FORWARD), SL_EINVAL);
    assert_int_equal(g.nedges, 2);
    char err[256] = "";
    assert_int_equal(sl_job_graph_finalize(&g, 4, true, err, sizeof err), 0);
    assert_int_equal(g.nvertices, 1);
    assert_int_equal(g.vertices[0].parallelism, 4);
    assert_string_equal(g.vertices[0].name, "a -> b -> c");
    sl_schema_destroy(sc);
    sl_job_graph_destroy(&g);
}

static void test_direct_two_input_node(void **state) {
    sl_job_graph_t g;
    sl_job_graph_init(&g, "direct");
    sl_schema_t *sc = schema();
    uint32_t l = add(&g, "source_generator", "left", sc, 0, NULL);
    uint32_t r = add(&g, "source_generator", "right", sc, 0, NULL);
    uint32_t j = add(&g, "co_process", "join", sc, 2, sc);
    uint32_t s = add(&g, "sink_discard", "s", NULL, 1, sc);
    assert_int_equal(sl_job_graph_add_edge(&g, l, j, 0, SL_PART_FORWARD), 0);
    assert_int_equal(sl_job_graph_add_edge(&g, r, j, 1, SL_PART_FORWARD), 0);
    assert_int_equal(sl_job_graph_add_edge(&g, j, s, 0, SL_PART_FORWARD), 0);
    const sl_stream_edge_t *in[1];
    /* in_edges reports the full count even when `max` is smaller. */
    assert_int_equal(sl_job_graph_in_edges(&g, j, in, 1), 2);
    assert_int_equal(in[0]->src, l);
    char err[256] = "";
    assert_int_equal(sl_job_graph_finalize(&g, 2, true, err, sizeof err), 0);
    /* Equal parallelism and forward edges, but a two-input node always starts a vertex. */
    assert_int_equal(g.nvertices, 3);
    assert_int_not_equal(g.nodes[j].vertex, g.nodes[l].vertex);
    assert_int_not_equal(g.nodes[j].vertex, g.nodes[r].vertex);
    assert_int_equal(g.nodes[s].vertex, g.nodes[j].vertex);
    assert_string_equal(g.vertices[g.nodes[j].vertex].name, "join -> s");
    for (uint32_t i = 0; i < g.nedges; i++)
        assert_int_equal(g.edges[i].chained, g.edges[i].dst == s);
    sl_schema_destroy(sc);
    sl_job_graph_destroy(&g);
}

static void test_direct_unconnected_input(void **state) {
    sl_job_graph_t g;
    sl_job_graph_init(&g, "direct");
    sl_schema_t *sc = schema();
    uint32_t a = add(&g, "source_generator", "a", sc, 0, NULL);
    uint32_t j = add(&g, "co_process", "the_join", sc, 2, sc);
    uint32_t s = add(&g, "sink_discard", "s", NULL, 1, sc);
    assert_int_equal(sl_job_graph_add_edge(&g, a, j, 0, SL_PART_FORWARD), 0);
    assert_int_equal(sl_job_graph_add_edge(&g, j, s, 0, SL_PART_FORWARD), 0);
    char err[256] = "";
    assert_int_equal(sl_job_graph_finalize(&g, 1, true, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "the_join"));
    assert_non_null(strstr(err, "1")); /* input 1 */
    sl_schema_destroy(sc);
    sl_job_graph_destroy(&g);

    /* A sink with nothing feeding it. */
    sl_job_graph_init(&g, "direct");
    sc = schema();
    add(&g, "sink_discard", "starved_sink", NULL, 1, sc);
    err[0] = '\0';
    assert_int_equal(sl_job_graph_finalize(&g, 1, true, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "starved_sink"));
    sl_schema_destroy(sc);
    sl_job_graph_destroy(&g);
}

static void test_direct_bad_parallelism_and_empty(void **state) {
    sl_job_graph_t g;
    sl_job_graph_init(&g, "empty_job");
    char err[256] = "";
    assert_int_equal(sl_job_graph_finalize(&g, 1, true, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "empty_job"));
    sl_job_graph_destroy(&g);

    sl_job_graph_init(&g, "direct");
    sl_schema_t *sc = schema();
    uint32_t a = add(&g, "source_generator", "too_wide", sc, 0, NULL);
    uint32_t s = add(&g, "sink_discard", "s", NULL, 1, sc);
    assert_int_equal(sl_job_graph_add_edge(&g, a, s, 0, SL_PART_FORWARD), 0);
    g.nodes[a].parallelism = 129; /* above max parallelism 128 */
    err[0] = '\0';
    assert_int_equal(sl_job_graph_finalize(&g, 1, true, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "too_wide"));
    sl_schema_destroy(sc);
    sl_job_graph_destroy(&g);

    /* A default parallelism of 0 leaves nodes without a parallelism: an error. */
    sl_job_graph_init(&g, "direct");
    sc = schema();
    a = add(&g, "source_generator", "zero_par", sc, 0, NULL);
    s = add(&g, "sink_discard", "s", NULL, 1, sc);
    assert_int_equal(sl_job_graph_add_edge(&g, a, s, 0, SL_PART_FORWARD), 0);
    err[0] = '\0';
    assert_int_equal(sl_job_graph_finalize(&g, 0, true, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "zero_par"));
    sl_schema_destroy(sc);
    sl_job_graph_destroy(&g);
}

/* The two tests below check validations job_graph.h promises for finalize. They keep their
 * graph in a fixture so that a failing assertion does not leak it. */
typedef struct {
    sl_job_graph_t g;
    sl_schema_t *sc;
    sl_job_t *job;
} fixture_t;

static int fx_setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    sl_job_graph_init(&f->g, "direct");
    char err[256];
    if (sl_schema_parse(SCHEMA, &f->sc, err, sizeof err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state) {
    fixture_t *f = *state;
    sl_schema_destroy(f->sc);
    sl_job_graph_destroy(&f->g);
    sl_job_destroy(f->job);
    free(f);
    return 0;
}

/* job_graph.h: finalize validates that "keyed inputs have keys": a hash edge into an input
 * with neither key fields nor a key function must be rejected, naming the node. */
static void test_direct_hash_edge_without_key(void **state) {
    fixture_t *f = *state;
    sl_job_graph_t *g = &f->g;
    uint32_t a = add(g, "source_generator", "a", f->sc, 0, NULL);
    uint32_t k = add(g, "map", "keyless_consumer", f->sc, 1, f->sc);
    uint32_t s = add(g, "sink_discard", "s", NULL, 1, f->sc);
    assert_int_equal(sl_job_graph_add_edge(g, a, k, 0, SL_PART_HASH), 0);
    assert_int_equal(sl_job_graph_add_edge(g, k, s, 0, SL_PART_FORWARD), 0);
    char err[256] = "";
    assert_int_equal(sl_job_graph_finalize(g, 2, true, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "keyless_consumer"));
}

/* The same through the builder: the union of an unkeyed stream with a keyed one gets a hash
 * edge from the keyed side, but the union node has no key for it. Either the builder or
 * finalize must refuse it, or the node must carry the key. */
static void test_union_with_keyed_second_input(void **state) {
    fixture_t *f = *state;
    assert_int_equal(sl_job_create("union-job", &f->job), 0);
    sl_job_t *job = f->job;
    sl_stream_t *a = gen(job, "a");
    sl_stream_t *b = sl_stream_key_by(gen(job, "b"), "id");
    /* Partitioning of a keyed input would be lost by the union: the builder refuses it. */
    assert_null(sl_stream_union(a, b));
    assert_non_null(sl_job_error(job));
    assert_non_null(strstr(sl_job_error(job), "keyed"));
}

/* job_graph.h: finalize validates that "schemas present": a node fed by a node that has no
 * output schema (a sink) must be rejected. */
static void test_direct_input_without_schema(void **state) {
    fixture_t *f = *state;
    sl_job_graph_t *g = &f->g;
    uint32_t a = add(g, "source_generator", "a", f->sc, 0, NULL);
    uint32_t s1 = add(g, "sink_discard", "sink1", NULL, 1, f->sc);
    uint32_t x = add(g, "filter", "fed_by_sink", f->sc, 1, NULL);
    uint32_t s2 = add(g, "sink_discard", "sink2", NULL, 1, f->sc);
    assert_int_equal(sl_job_graph_add_edge(g, a, s1, 0, SL_PART_FORWARD), 0);
    assert_int_equal(sl_job_graph_add_edge(g, s1, x, 0, SL_PART_FORWARD), 0);
    assert_int_equal(sl_job_graph_add_edge(g, x, s2, 0, SL_PART_FORWARD), 0);
    char err[256] = "";
    assert_int_equal(sl_job_graph_finalize(g, 1, true, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "fed_by_sink"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_chain),
        cmocka_unit_test(test_chaining_disabled),
        cmocka_unit_test(test_hash_breaks_chain),
        cmocka_unit_test(test_parallelism_mismatch_rebalances),
        cmocka_unit_test(test_start_chain_and_rebalance),
        cmocka_unit_test(test_fan_out_and_union),
        cmocka_unit_test(test_no_consumer),
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_direct_chain),
        cmocka_unit_test(test_direct_two_input_node),
        cmocka_unit_test(test_direct_unconnected_input),
        cmocka_unit_test(test_direct_bad_parallelism_and_empty),
        cmocka_unit_test_setup_teardown(test_direct_hash_edge_without_key, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_union_with_keyed_second_input, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_direct_input_without_schema, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
