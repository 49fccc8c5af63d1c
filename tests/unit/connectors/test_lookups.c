/* The built-in async lookups end to end, as jobs on the mini-cluster: Redis GET, HGET and
 * HGETALL against a real redis-server, and HTTP GET against bench/delay_server, each output
 * row checked exactly (input fields, then what the service answered). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/async.h>
#include <sluice/error.h>
#include <sluice/job.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "core/config.h"
#include "helpers/redis_server.h"
#include "minicluster/minicluster.h"

#define ROWS 200

/* ---- Job pieces: rows k = 0..ROWS-1, and a sink keeping what arrives ---- */
int lk_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int lk_sink(sl_fn_ctx_t *ctx, const sl_row_t *in, int64_t ts);

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *got[4 * ROWS];
static uint32_t ngot;
static const sl_schema_t *sink_schema;

int lk_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    sl_row_set_i64(out, 0, (int64_t)seq);
    return 1;
}

int lk_sink(sl_fn_ctx_t *ctx, const sl_row_t *in, int64_t ts) {
    char line[512];
    size_t off = 0;
    for (uint32_t f = 0; f < sl_row_nfields(in); f++) {
        if (f)
            line[off++] = ',';
        int w = sl_row_format_field(in, sink_schema, f, line + off, sizeof line - off - 1);
        if (w < 0)
            return w;
        off += (size_t)w;
    }
    line[off] = '\0';
    pthread_mutex_lock(&mu);
    if (ngot < 4 * ROWS)
        got[ngot++] = strdup(line);
    pthread_mutex_unlock(&mu);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void reset(void) {
    for (uint32_t i = 0; i < ngot; i++)
        free(got[i]);
    ngot = 0;
}

/* Runs generator -> build(lookup) -> sink and leaves the rows, sorted, in got[]. */
static void run(sl_stream_t *(*build)(sl_stream_t *s, const char *arg), const char *arg, int *status,
                char *error, size_t errlen) {
    sl_job_t *job;
    sl_config_t *cfg;
    char err[256];
    reset();
    assert_int_equal(sl_job_create("lookup", &job), 0);
    assert_int_equal(sl_config_create(&cfg), 0);
    sl_stream_t *s = build(sl_source_generator(job, "gen", "lk_gen", "k:int64", ROWS), arg);
    if (s == NULL)
        fail_msg("builder: %s", sl_job_error(job));
    sink_schema = sl_stream_schema(s);
    sl_sink_function(s, "sink", "lk_sink");
    assert_null(sl_job_error(job));
    assert_int_equal(sl_job_graph_finalize(&job->graph, 1, true, err, sizeof err), 0);
    sl_job_result_t r;
    assert_int_equal(sl_minicluster_run(cfg, &job->graph, NULL, NULL, NULL, 1000, &r), 0);
    *status = r.status;
    snprintf(error, errlen, "%s", r.error);
    qsort(got, ngot, sizeof got[0], cmp);
    sl_job_destroy(job);
    sl_config_destroy(cfg);
}

/* ---- Redis ---- */
static sl_redis_server_t redis;
static sl_redis_command_t redis_cmd;

static void redis_cli(const char *args) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "redis-cli -p %d %s >/dev/null", redis.port, args);
    assert_int_equal(system(cmd), 0);
}

static sl_stream_t *redis_lookup(sl_stream_t *s, const char *hash_field) {
    sl_async_options_t o = sl_async_options_default();
    o.mode = SL_ASYNC_UNORDERED;
    return sl_stream_redis_lookup(s, "redis", redis.address, redis_cmd, "k", "lk:", hash_field, &o);
}

static void redis_lookups(void **state) {
    if (sl_redis_server_binary() == NULL)
        skip();
    assert_int_equal(sl_redis_server_start(&redis), 0);
    /* Even keys hold strings, multiples of 3 hashes; the rest are missing. */
    char cmd[256];
    for (int k = 0; k < ROWS; k += 2) {
        snprintf(cmd, sizeof cmd, "set lk:%d v%d", k, k);
        redis_cli(cmd);
    }
    for (int k = 3; k < ROWS; k += 6) {
        snprintf(cmd, sizeof cmd, "hset lk:%d a a%d b b%d", k, k, k);
        redis_cli(cmd);
    }
    int status;
    char error[1024], want[64];

    redis_cmd = SL_REDIS_GET;
    redis_cli("del lk:0"); /* lk:0 missing too: NULL */
    for (int k = 3; k < ROWS; k += 6) { /* GET on a hash would be WRONGTYPE: keep GET to strings */
        snprintf(cmd, sizeof cmd, "rename lk:%d h:%d", k, k);
        redis_cli(cmd);
    }
    run(redis_lookup, NULL, &status, error, sizeof error);
    assert_int_equal(status, 0);
    assert_int_equal(ngot, ROWS);
    uint32_t nulls = 0;
    for (uint32_t i = 0; i < ngot; i++) {
        int k = atoi(got[i]);
        if (k % 2 == 0 && k != 0) {
            snprintf(want, sizeof want, "%d,v%d", k, k);
            assert_string_equal(got[i], want);
        } else {
            snprintf(want, sizeof want, "%d,", k);
            assert_string_equal(got[i], want);
            nulls++;
        }
    }
    assert_int_equal(nulls, ROWS / 2 + 1);
    for (int k = 3; k < ROWS; k += 6) {
        snprintf(cmd, sizeof cmd, "rename h:%d lk:%d", k, k);
        redis_cli(cmd);
    }

    /* HGET of field b: only the hashes answer; strings are of the wrong type for HGET. */
    for (int k = 0; k < ROWS; k += 2) {
        snprintf(cmd, sizeof cmd, "del lk:%d", k);
        redis_cli(cmd);
    }
    redis_cmd = SL_REDIS_HGET;
    run(redis_lookup, "b", &status, error, sizeof error);
    assert_int_equal(status, 0);
    assert_int_equal(ngot, ROWS);
    for (uint32_t i = 0; i < ngot; i++) {
        int k = atoi(got[i]);
        snprintf(want, sizeof want, k % 6 == 3 ? "%d,b%d" : "%d,", k, k);
        assert_string_equal(got[i], want);
    }

    /* HGETALL: two rows per hash, none for a missing key. */
    redis_cmd = SL_REDIS_HGETALL;
    run(redis_lookup, NULL, &status, error, sizeof error);
    assert_int_equal(status, 0);
    uint32_t hashes = 0;
    for (int k = 3; k < ROWS; k += 6)
        hashes++;
    assert_int_equal(ngot, 2 * hashes);
    assert_string_equal(got[0], "105,a,a105");
    assert_string_equal(got[1], "105,b,b105");

    /* A reply of the wrong type fails the job with the key named. */
    redis_cli("set lk:9 notahash");
    run(redis_lookup, NULL, &status, error, sizeof error);
    assert_int_not_equal(status, 0);
    assert_non_null(strstr(error, "lk:9"));
    reset();
    sl_redis_server_stop(&redis);
}

/* ---- HTTP against delay_server ---- */
static sl_stream_t *http_lookup(sl_stream_t *s, const char *prefix) {
    sl_async_options_t o = sl_async_options_default();
    o.capacity = 20;
    return sl_stream_http_lookup(s, "http", prefix, "k", &o);
}

static void http_lookups(void **state) {
    char bin[1024], line[64] = "";
    const char *build = getenv("SL_BUILD_DIR");
    snprintf(bin, sizeof bin, "%s/bench/delay_server", build ? build : ".");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        execl(bin, bin, "0", "1", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    int port = 0;
    if (fgets(line, sizeof line, f) == NULL || sscanf(line, "listening on %d", &port) != 1)
        fail_msg("delay_server (%s) did not start", bin);
    fclose(f);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "http://127.0.0.1:%d/item/", port);
    int status;
    char error[1024], want[128];
    run(http_lookup, prefix, &status, error, sizeof error);
    assert_int_equal(status, 0);
    assert_int_equal(ngot, ROWS);
    for (uint32_t i = 0; i < ngot; i++) {
        int k = atoi(got[i]);
        snprintf(want, sizeof want, "%d,200,/item/%d", k, k);
        assert_string_equal(got[i], want);
    }
    /* Statuses other than 2xx are results, not errors. */
    snprintf(prefix, sizeof prefix, "http://127.0.0.1:%d/status/404/", port);
    run(http_lookup, prefix, &status, error, sizeof error);
    assert_int_equal(status, 0);
    assert_int_equal(ngot, ROWS);
    assert_string_equal(got[0], "0,404,/status/404/0");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* Nobody listening: a transport error fails the job naming the URL. */
    run(http_lookup, prefix, &status, error, sizeof error);
    assert_int_not_equal(status, 0);
    assert_non_null(strstr(error, "127.0.0.1"));
    reset();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redis_lookups),
        cmocka_unit_test(http_lookups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
