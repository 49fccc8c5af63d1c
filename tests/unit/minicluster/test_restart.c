/* Failure and restart inside one process: a job with checkpoints whose source fails once in
 * the middle restarts from its latest completed checkpoint, and its transactional CSV output
 * equals that of a run without the failure (nothing lost, nothing duplicated). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/job.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "core/config.h"
#include "minicluster/minicluster.h"

#define ROWS 200000

static atomic_int fail_once;

int rs_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);

int rs_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    if (seq == ROWS * 3 / 4 && atomic_exchange(&fail_once, 0))
        return sl_fn_fail(ctx, SL_EUSER, "injected failure at %llu", (unsigned long long)seq);
    if ((seq / 2) % 500 == 0) { /* both subtasks slow enough for checkpoints before the failure */
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    sl_row_set_i64(out, 0, (int64_t)(seq % 97));
    *ts = (int64_t)seq; /* 1 ms of event time per row */
    sl_row_set_ts(out, 1, *ts);
    return 1;
}

static int cmp_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The file's lines sorted: subtasks of the window interleave differently from run to run. */
static char *sorted_lines(char *s) {
    char *lines[8192];
    size_t n = 0, len = strlen(s);
    for (char *save = NULL, *l = strtok_r(s, "\n", &save); l && n < 8192; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    qsort(lines, n, sizeof lines[0], cmp_lines);
    char *out = calloc(1, len + n + 2);
    for (size_t i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    free(s);
    return out;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

static void run(const char *dir, const char *out, bool checkpoints, sl_job_result_t *r) {
    sl_config_t *cfg;
    char err[512], ck[256];
    assert_int_equal(sl_config_create(&cfg), 0);
    if (checkpoints) {
        snprintf(ck, sizeof ck, "%s/ck", dir);
        assert_int_equal(sl_config_set(cfg, "execution.checkpointing.interval", "20ms", err, sizeof err), 0);
        assert_int_equal(sl_config_set(cfg, "state.checkpoints.dir", ck, err, sizeof err), 0);
        assert_int_equal(sl_config_set(cfg, "restart-strategy.fixed-delay.delay", "0", err, sizeof err), 0);
    }
    sl_job_t *job;
    assert_int_equal(sl_job_create("restart", &job), 0);
    sl_stream_t *s = sl_source_generator(job, "gen", "rs_gen", "k:int64,t:timestamp", ROWS);
    s = sl_stream_watermarks(s, "t", 0, 0);
    sl_window_spec_t w = {.kind = SL_WINDOW_TUMBLING, .time = SL_TIME_EVENT, .size_ms = 10000};
    s = sl_stream_window_aggregate(sl_stream_key_by(s, "k"), "count", &w, "count()");
    assert_non_null(sl_stream_parallelism(sl_sink_csv(s, "out", out), 1));
    assert_null(sl_job_error(job));
    assert_int_equal(sl_job_graph_finalize(&job->graph, 2, true, err, sizeof err), 0);
    assert_int_equal(sl_minicluster_run(cfg, &job->graph, NULL, NULL, NULL, 1000, r), 0);
    sl_job_destroy(job);
    sl_config_destroy(cfg);
}

static void test_restart_from_checkpoint(void **state) {
    char dir[] = "/tmp/sl-restart-XXXXXX", a[128], b[128], cmd[256];
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    sl_job_result_t r;
    atomic_store(&fail_once, 0);
    run(dir, a, false, &r);
    if (r.status)
        fail_msg("reference run: %s", r.error);
    atomic_store(&fail_once, 1);
    run(dir, b, true, &r);
    if (r.status)
        fail_msg("run with a failure: %s", r.error);
    assert_int_equal(atomic_load(&fail_once), 0); /* the failure happened */
    assert_true(r.checkpoints_completed > 0);
    char *x = sorted_lines(read_all(a)), *y = sorted_lines(read_all(b));
    assert_true(strlen(x) > 1000);
    assert_string_equal(x, y);
    free(x);
    free(y);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_from_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
