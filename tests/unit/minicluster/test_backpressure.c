/* Backpressure and bounded memory on the mini-cluster: a slow sink must hold the source back,
 * so rows in flight never exceed what the channel credits and buffer pools allow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/job.h>

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "api/job_internal.h"
#include "core/config.h"
#include "minicluster/minicluster.h"

#define ROWS 100000

static atomic_uint_fast64_t generated, consumed, max_gap;

int bp_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int bp_slow_sink(sl_fn_ctx_t *ctx, const sl_row_t *in, int64_t ts);

int bp_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    static const char payload[100] = "payload";
    atomic_fetch_add(&generated, 1);
    sl_row_set_i64(out, 0, (int64_t)seq);
    sl_row_set_str(out, 1, payload, sizeof payload);
    return 1;
}

int bp_slow_sink(sl_fn_ctx_t *ctx, const sl_row_t *in, int64_t ts) {
    uint64_t c = atomic_fetch_add(&consumed, 1) + 1;
    uint64_t gap = atomic_load(&generated) - c;
    if (gap > atomic_load(&max_gap))
        atomic_store(&max_gap, gap);
    if (c % 500 == 0) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    return 0;
}

static void run(const char *buffer_timeout) {
    atomic_store(&generated, 0);
    atomic_store(&consumed, 0);
    atomic_store(&max_gap, 0);
    sl_config_t *cfg;
    char err[512];
    assert_int_equal(sl_config_create(&cfg), 0);
    assert_int_equal(sl_config_set(cfg, "execution.buffer-timeout", buffer_timeout, err, sizeof err), 0);
    sl_job_t *job;
    assert_int_equal(sl_job_create("backpressure", &job), 0);
    sl_stream_t *s = sl_source_generator(job, "gen", "bp_gen", "seq:int64,payload:string", ROWS);
    s = sl_stream_rebalance(s);
    assert_non_null(sl_sink_function(s, "slow", "bp_slow_sink"));
    assert_null(sl_job_error(job));
    assert_int_equal(sl_job_graph_finalize(&job->graph, 1, true, err, sizeof err), 0);
    assert_int_equal(job->graph.nvertices, 2); /* a real channel between source and sink */
    sl_job_result_t r;
    assert_int_equal(sl_minicluster_run(cfg, &job->graph, NULL, NULL, NULL, 1000, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(atomic_load(&consumed), ROWS); /* nothing lost, nothing duplicated */
    assert_int_equal(atomic_load(&generated), ROWS);
    /* In flight at most: the writer's pool (credit 2 + 1 buffers of 32 KiB, about 250 rows
     * each), the output batch and one source poll (1024 rows). Without backpressure the
     * generator would run ~ROWS ahead of this sink. */
    uint64_t gap = atomic_load(&max_gap);
    print_message("max rows between source and sink: %llu\n", (unsigned long long)gap);
    assert_true(gap < 3000);
    sl_job_destroy(job);
    sl_config_destroy(cfg);
}

static void test_slow_sink_holds_back_source(void **state) { run("100ms"); }
static void test_flush_every_record(void **state) { run("0ms"); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_sink_holds_back_source),
        cmocka_unit_test(test_flush_every_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
