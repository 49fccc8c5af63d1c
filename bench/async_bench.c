/* Async I/O benchmark.
 *
 * 1. Against delay_server (another process answering HTTP GETs after a fixed delay): a
 *    synchronous lookup (a map doing one blocking GET per record) and the async HTTP lookup at
 *    capacities 1, 10, 100, 1000, for delays of 1 ms and 10 ms, each next to its ceiling
 *    min(capacity / latency, CPU-bound rate); the CPU-bound rate is the async lookup against a
 *    server answering at once. CPU per request from getrusage (all threads of this process).
 * 2. Ordered vs unordered under skewed latency (90% 1 ms, 10% 10 ms), capacity 100.
 * 3. Redis GET lookups/s per core against a local redis-server, next to redis-benchmark GET
 *    measured in the same run (50 clients, no pipelining, and pipelined by 16).
 *
 * usage: async_bench BUILD_DIR [SECONDS_PER_RUN (default 2)] */
#include <sluice/async.h>
#include <sluice/error.h>
#include <sluice/job.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "core/config.h"
#include "core/log.h"
#include "minicluster/minicluster.h"

static double seconds_per_run = 2.0;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- The job: generator -> lookup -> discard ---- */

int ab_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int ab_sync_open_map(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out);

int ab_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    sl_row_set_i64(out, 0, (int64_t)(seq % 10000));
    return 1;
}

/* The synchronous version: one blocking GET per record on a kept-alive connection. */
static CURL *sync_curl;
static char sync_prefix[256];
static size_t discard_body(char *p, size_t size, size_t n, void *arg) { return size * n; }

int ab_sync_open_map(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out) {
    char url[512];
    snprintf(url, sizeof url, "%s%lld", sync_prefix, (long long)sl_row_i64(in, 0));
    curl_easy_setopt(sync_curl, CURLOPT_URL, url);
    if (curl_easy_perform(sync_curl) != CURLE_OK)
        return sl_fn_fail(ctx, SL_EIO, "GET %s failed", url);
    long status = 0;
    curl_easy_getinfo(sync_curl, CURLINFO_RESPONSE_CODE, &status);
    sl_row_set_i64(out, 0, sl_row_i64(in, 0));
    sl_row_set_i32(out, 1, (int32_t)status);
    return 0;
}

typedef struct {
    double rate;       /* records/s */
    double cpu_us;     /* CPU microseconds per record */
} result_t;

static int run_job(sl_job_t *job, uint64_t n, result_t *r) {
    sl_config_t *cfg;
    char err[256];
    if (sl_config_create(&cfg) != 0)
        return SL_ENOMEM;
    sl_config_set(cfg, "execution.buffer-timeout", "10ms", err, sizeof err);
    job->graph.max_parallelism = 128;
    int rc = sl_job_graph_finalize(&job->graph, 1, true, err, sizeof err);
    sl_job_result_t res;
    double t0 = now_s(), c0 = cpu_s();
    if (rc == 0)
        rc = sl_minicluster_run(cfg, &job->graph, NULL, NULL, NULL, 1000, &res);
    double t1 = now_s(), c1 = cpu_s();
    sl_config_destroy(cfg);
    if (rc == 0 && res.status != 0) {
        fprintf(stderr, "async_bench: job failed: %s\n", res.error);
        rc = res.status;
    }
    r->rate = n / (t1 - t0);
    r->cpu_us = (c1 - c0) * 1e6 / n;
    return rc;
}

static sl_stream_t *source(sl_job_t *job, uint64_t n) {
    return sl_source_generator(job, "gen", "ab_gen", "k:int64", n);
}

static int http_async(int port, uint32_t capacity, sl_async_mode_t mode, uint64_t n, result_t *r) {
    sl_job_t *job;
    if (sl_job_create("async-http", &job) != 0)
        return SL_ENOMEM;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "http://127.0.0.1:%d/", port);
    sl_async_options_t o = sl_async_options_default();
    o.capacity = capacity;
    o.mode = mode;
    o.timeout_ms = 60000;
    sl_sink_discard(sl_stream_http_lookup(source(job, n), "lookup", prefix, "k", &o), "discard");
    int rc = sl_job_error(job) ? SL_EJOB : run_job(job, n, r);
    if (sl_job_error(job))
        fprintf(stderr, "async_bench: %s\n", sl_job_error(job));
    sl_job_destroy(job);
    return rc;
}

static int http_sync(int port, uint64_t n, result_t *r) {
    sl_job_t *job;
    if (sl_job_create("sync-http", &job) != 0)
        return SL_ENOMEM;
    snprintf(sync_prefix, sizeof sync_prefix, "http://127.0.0.1:%d/", port);
    sync_curl = curl_easy_init();
    curl_easy_setopt(sync_curl, CURLOPT_WRITEFUNCTION, discard_body);
    sl_sink_discard(sl_stream_map(source(job, n), "lookup", "ab_sync_open_map", "k:int64,status:int32"), "discard");
    int rc = run_job(job, n, r);
    curl_easy_cleanup(sync_curl);
    sl_job_destroy(job);
    return rc;
}

static int redis_lookups(int port, uint64_t n, result_t *r) {
    sl_job_t *job;
    if (sl_job_create("async-redis", &job) != 0)
        return SL_ENOMEM;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    sl_async_options_t o = sl_async_options_default();
    o.capacity = 1000;
    o.mode = SL_ASYNC_UNORDERED;
    sl_sink_discard(sl_stream_redis_lookup(source(job, n), "lookup", addr, SL_REDIS_GET, "k", "bench:", NULL, &o),
                    "discard");
    int rc = sl_job_error(job) ? SL_EJOB : run_job(job, n, r);
    sl_job_destroy(job);
    return rc;
}

/* ---- Servers ---- */

static pid_t spawn_delay_server(const char *build, int delay_ms, int skew, int *port) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        char bin[1024], d[16];
        snprintf(bin, sizeof bin, "%s/bench/delay_server", build);
        snprintf(d, sizeof d, "%d", delay_ms);
        execl(bin, bin, "0", d, skew ? "--skew" : NULL, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[128] = "";
    if (f == NULL || fgets(line, sizeof line, f) == NULL || sscanf(line, "listening on %d", port) != 1) {
        fprintf(stderr, "async_bench: delay_server did not start (%s)\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    if (f)
        fclose(f);
    return pid;
}

static void stop(pid_t pid) {
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

static double sh_number(const char *cmd) {
    FILE *p = popen(cmd, "r");
    double v = 0;
    if (p == NULL || fscanf(p, "%lf", &v) != 1)
        v = 0;
    if (p)
        pclose(p);
    return v;
}

/* ---- The benchmark ---- */

static uint64_t records_for(double rate) {
    uint64_t n = (uint64_t)(rate * seconds_per_run);
    return n < 100 ? 100 : n;
}

static double cpu_bound_rate(const char *build) {
    int port;
    pid_t s = spawn_delay_server(build, 0, 0, &port);
    result_t r = {0};
    if (s > 0 && http_async(port, 1000, SL_ASYNC_UNORDERED, records_for(40000), &r) == 0)
        printf("CPU-bound: async HTTP lookup, server answering at once, capacity 1000: %.0f req/s, %.1f us CPU/req\n",
               r.rate, r.cpu_us);
    stop(s);
    return r.rate;
}

static void latency_table(const char *build, int delay_ms, double cpu_rate) {
    int port;
    pid_t s = spawn_delay_server(build, delay_ms, 0, &port);
    if (s < 0)
        return;
    result_t r;
    double ideal = 1000.0 / delay_ms;
    if (http_sync(port, records_for(ideal), &r) == 0)
        printf("delay %2d ms  sync           %9.0f req/s  ceiling %9.0f  %5.1f%%  %6.1f us CPU/req\n", delay_ms,
               r.rate, ideal, 100 * r.rate / ideal, r.cpu_us);
    static const uint32_t caps[] = {1, 10, 100, 1000};
    for (int i = 0; i < 4; i++) {
        double ceiling = caps[i] * ideal < cpu_rate ? caps[i] * ideal : cpu_rate;
        if (http_async(port, caps[i], SL_ASYNC_ORDERED, records_for(ceiling), &r) == 0)
            printf("delay %2d ms  async cap %4u %9.0f req/s  ceiling %9.0f  %5.1f%%  %6.1f us CPU/req\n", delay_ms,
                   caps[i], r.rate, ceiling, 100 * r.rate / ceiling, r.cpu_us);
    }
    stop(s);
}

static void skewed(const char *build) {
    int port;
    pid_t s = spawn_delay_server(build, 1, 1, &port);
    if (s < 0)
        return;
    result_t o, u;
    uint64_t n = records_for(30000);
    if (http_async(port, 100, SL_ASYNC_ORDERED, n, &o) == 0 && http_async(port, 100, SL_ASYNC_UNORDERED, n, &u) == 0)
        printf("skewed latency (90%% 1 ms, 10%% 10 ms), capacity 100: ordered %.0f req/s, unordered %.0f req/s "
               "(unordered/ordered %.2fx)\n", o.rate, u.rate, u.rate / o.rate);
    stop(s);
}

static void redis(void) {
    int port = 20000 + getpid() % 20000;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
             "--pidfile /tmp/async_bench_redis_%d.pid --logfile /dev/null", port, port);
    if (system(cmd) != 0) {
        printf("redis: redis-server could not start\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "for i in $(seq 50); do redis-cli -p %d ping >/dev/null 2>&1 && break; sleep 0.1; done; "
             "seq 0 9999 | awk '{printf \"SET bench:%%d value-%%d\\n\", $1, $1}' | redis-cli -p %d >/dev/null", port,
             port);
    if (system(cmd) != 0)
        printf("redis: seeding failed\n");
    result_t r;
    if (redis_lookups(port, records_for(150000), &r) == 0)
        printf("redis GET lookups (capacity 1000, unordered): %.0f lookups/s, %.1f us CPU/lookup = %.0f lookups/s "
               "per core\n", r.rate, r.cpu_us, 1e6 / r.cpu_us);
    snprintf(cmd, sizeof cmd, "redis-benchmark -p %d -t get -n 300000 -c 50 -q | tr -s ' ' | grep -o '[0-9.]* "
             "requests' | head -1", port);
    double rb = sh_number(cmd);
    snprintf(cmd, sizeof cmd, "redis-benchmark -p %d -t get -n 1000000 -c 50 -P 16 -q | tr -s ' ' | grep -o "
             "'[0-9.]* requests' | head -1", port);
    double rbp = sh_number(cmd);
    printf("redis-benchmark GET: %.0f req/s (50 clients), %.0f req/s (pipelined 16); Sluice/redis-benchmark %.2fx\n",
           rb, rbp, rb > 0 ? r.rate / rb : 0);
    snprintf(cmd, sizeof cmd, "redis-cli -p %d shutdown nosave >/dev/null 2>&1", port);
    if (system(cmd) != 0)
        printf("redis: shutdown failed\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: async_bench BUILD_DIR [SECONDS_PER_RUN]\n");
        return 2;
    }
    if (argc > 2)
        seconds_per_run = atof(argv[2]);
    sl_log_set_level(SL_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    double cpu_rate = cpu_bound_rate(argv[1]);
    if (cpu_rate <= 0)
        return 1;
    latency_table(argv[1], 1, cpu_rate);
    latency_table(argv[1], 10, cpu_rate);
    skewed(argv[1]);
    redis();
    curl_global_cleanup();
    return 0;
}
