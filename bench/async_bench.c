/* Async I/O benchmark.
 *
 * 1. Against line_server (another process answering each request line after a fixed delay,
 *    at almost no cost per request): a synchronous lookup (a map doing one blocking round trip
 *    per record) and the async operator with a minimal libuv client at capacities 1, 10, 100,
 *    1000, for delays of 1 ms and 10 ms, each next to its ceiling min(capacity / latency,
 *    CPU-bound rate). Latency is what the synchronous lookup observes (1 / its rate: the delay
 *    plus the round trip); the CPU-bound rate is the async lookup against a server answering
 *    at once. CPU per request from getrusage (all threads of this process).
 * 2. Ordered vs unordered under skewed latency (90% 1 ms, 10% 10 ms), capacity 100.
 * 3. The built-in HTTP lookup (libcurl) against delay_server: its CPU-bound rate and 10 ms.
 * 4. Redis GET lookups/s per core against a local redis-server, next to redis-benchmark GET
 *    measured in the same run (50 clients, no pipelining, and pipelined by 16).
 *
 * usage: async_bench BUILD_DIR [SECONDS_PER_RUN (default 2)] */
#include <sluice/async.h>
#include <sluice/error.h>
#include <sluice/job.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <uv.h>
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


/* ---- A minimal async client of line_server: one loop thread, one connection. Requests are
 * queued under a lock and written in one batch per wake-up; answers name the request's slot.
 * The operator's cost, not a protocol library's, is what this client leaves to measure. ---- */
typedef struct {
    uv_loop_t loop;
    uv_async_t wake;
    uv_tcp_t tcp;
    pthread_t thread;
    pthread_mutex_t mu;
    sl_async_result_t **slots;
    uint32_t *free_ids;
    uint32_t nfree, nslots;
    char *out, *writing;       /* queued bytes; bytes being written */
    size_t out_len, out_cap;
    bool write_busy, stopping;
    uv_write_t wreq;
    char in[65536];
    size_t in_len;
} line_client_t;

int ab_line_open(sl_fn_ctx_t *ctx, void **user);
void ab_line_close(sl_fn_ctx_t *ctx, void *user);
int ab_line_call(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *r);
int ab_line_sync_map(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out);

static int line_port;

static void line_flush(line_client_t *c);

static void on_line_written(uv_write_t *w, int status) {
    line_client_t *c = w->data;
    c->write_busy = false;
    line_flush(c);
}

/* Loop thread: writes what was queued, one write at a time (swapping two buffers). */
static void line_flush(line_client_t *c) {
    if (c->write_busy)
        return;
    pthread_mutex_lock(&c->mu);
    size_t n = c->out_len;
    if (n) {
        char *t = c->writing;
        c->writing = c->out;
        c->out = t;
        c->out_len = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (n == 0)
        return;
    uv_buf_t b = uv_buf_init(c->writing, (unsigned)n);
    c->wreq.data = c;
    c->write_busy = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_line_written) == 0;
}

static void on_line_close(uv_handle_t *h) {}

static void on_line_wake(uv_async_t *a) {
    line_client_t *c = a->data;
    if (c->stopping) {
        uv_close((uv_handle_t *)&c->tcp, on_line_close);
        uv_close((uv_handle_t *)&c->wake, on_line_close);
        return;
    }
    line_flush(c);
}

static void on_line_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    line_client_t *c = h->data;
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof c->in - c->in_len));
}

static void answer_line(line_client_t *c, uint32_t id) {
    pthread_mutex_lock(&c->mu);
    sl_async_result_t *r = id < c->nslots ? c->slots[id] : NULL;
    if (r) {
        c->slots[id] = NULL;
        c->free_ids[c->nfree++] = id;
    }
    pthread_mutex_unlock(&c->mu);
    if (r == NULL)
        return;
    sl_row_builder_t *b = sl_async_result_row(r);
    sl_row_set_i64(b, 0, sl_row_i64(sl_async_result_input(r), 0));
    sl_row_set_i64(b, 1, id);
    if (sl_async_result_add(r) != 0)
        sl_async_complete_error(r, SL_ENOMEM, "row");
    else
        sl_async_complete(r);
}

static void on_line_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    line_client_t *c = s->data;
    if (n < 0)
        return;
    c->in_len += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < c->in_len; i++)
        if (c->in[i] == '\n') {
            answer_line(c, (uint32_t)strtoul(c->in + start, NULL, 10));
            start = i + 1;
        }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
}

static void *line_loop(void *arg) {
    line_client_t *c = arg;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int blocking_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int ab_line_open(sl_fn_ctx_t *ctx, void **user) {
    line_client_t *c = calloc(1, sizeof *c);
    const char *cap = sl_fn_param(ctx, "capacity");
    c->nslots = (uint32_t)(cap ? atoi(cap) : 100) * 2 + 16;
    c->slots = calloc(c->nslots, sizeof *c->slots);
    c->free_ids = calloc(c->nslots, sizeof *c->free_ids);
    for (uint32_t i = 0; i < c->nslots; i++)
        c->free_ids[c->nfree++] = c->nslots - 1 - i;
    c->out_cap = 1 << 20;
    c->out = malloc(c->out_cap);
    c->writing = malloc(c->out_cap);
    pthread_mutex_init(&c->mu, NULL);
    int fd = blocking_connect(line_port);
    if (fd < 0 || uv_loop_init(&c->loop) != 0)
        return sl_fn_fail(ctx, SL_ECONNREFUSED, "line_server on port %d: cannot connect", line_port);
    uv_async_init(&c->loop, &c->wake, on_line_wake);
    c->wake.data = c;
    uv_tcp_init(&c->loop, &c->tcp);
    uv_tcp_open(&c->tcp, fd);
    c->tcp.data = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_line_alloc, on_line_read);
    pthread_create(&c->thread, NULL, line_loop, c);
    *user = c;
    return 0;
}

void ab_line_close(sl_fn_ctx_t *ctx, void *user) {
    line_client_t *c = user;
    if (c == NULL)
        return;
    c->stopping = true;
    uv_async_send(&c->wake);
    pthread_join(c->thread, NULL);
    uv_loop_close(&c->loop);
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c->free_ids);
    free(c->out);
    free(c->writing);
    free(c);
}

int ab_line_call(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *r) {
    line_client_t *c = user;
    pthread_mutex_lock(&c->mu);
    if (c->nfree == 0 || c->out_len + 16 > c->out_cap) {
        pthread_mutex_unlock(&c->mu);
        return sl_fn_fail(ctx, SL_EAGAIN, "line client: no free request slot");
    }
    uint32_t id = c->free_ids[--c->nfree];
    c->slots[id] = r;
    bool first = c->out_len == 0;
    c->out_len += (size_t)sprintf(c->out + c->out_len, "%u\n", id);
    pthread_mutex_unlock(&c->mu);
    if (first) /* later ones ride on the same wake-up */
        uv_async_send(&c->wake);
    return 0;
}

/* The synchronous version: one blocking round trip per record. */
static int sync_fd = -1;

int ab_line_sync_map(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out) {
    char line[32];
    int n = sprintf(line, "%lld\n", (long long)sl_row_i64(in, 0));
    if (write(sync_fd, line, (size_t)n) != n)
        return sl_fn_fail(ctx, SL_EIO, "line_server: write failed");
    for (int got = 0; got == 0 || line[got - 1] != '\n';) {
        ssize_t k = read(sync_fd, line + got, sizeof line - (size_t)got);
        if (k <= 0)
            return sl_fn_fail(ctx, SL_EIO, "line_server: read failed");
        got += (int)k;
    }
    sl_row_set_i64(out, 0, sl_row_i64(in, 0));
    sl_row_set_i64(out, 1, strtoll(line, NULL, 10));
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

static int line_async(int port, uint32_t capacity, sl_async_mode_t mode, uint64_t n, result_t *r) {
    sl_job_t *job;
    if (sl_job_create("async-line", &job) != 0)
        return SL_ENOMEM;
    line_port = port;
    sl_async_options_t o = sl_async_options_default();
    o.capacity = capacity;
    o.mode = mode;
    o.timeout_ms = 60000;
    o.open_symbol = "ab_line_open";
    o.close_symbol = "ab_line_close";
    sl_sink_discard(sl_stream_async(source(job, n), "lookup", "ab_line_call", "k:int64,v:int64", &o), "discard");
    int rc = sl_job_error(job) ? SL_EJOB : run_job(job, n, r);
    sl_job_destroy(job);
    return rc;
}

static int line_sync(int port, uint64_t n, result_t *r) {
    sl_job_t *job;
    if (sl_job_create("sync-line", &job) != 0)
        return SL_ENOMEM;
    if ((sync_fd = blocking_connect(port)) < 0)
        return SL_ECONNREFUSED;
    sl_sink_discard(sl_stream_map(source(job, n), "lookup", "ab_line_sync_map", "k:int64,v:int64"), "discard");
    int rc = run_job(job, n, r);
    close(sync_fd);
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

static pid_t spawn_server(const char *build, const char *name, int delay_ms, int skew, int *port) {
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        char bin[1024], d[16];
        snprintf(bin, sizeof bin, "%s/bench/%s", build, name);
        snprintf(d, sizeof d, "%d", delay_ms);
        execl(bin, bin, "0", d, skew ? "--skew" : NULL, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[128] = "";
    if (f == NULL || fgets(line, sizeof line, f) == NULL || sscanf(line, "listening on %d", port) != 1) {
        fprintf(stderr, "async_bench: %s did not start (%s)\n", name, line);
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
    pid_t srv = spawn_server(build, "line_server", 0, 0, &port);
    result_t r = {0}, best = {0};
    for (uint32_t cap = 100; srv > 0 && cap <= 1000; cap *= 10)
        if (line_async(port, cap, SL_ASYNC_UNORDERED, records_for(200000), &r) == 0 && r.rate > best.rate)
            best = r;
    printf("CPU-bound: async lookup, server answering at once (best of capacity 100, 1000): %.0f req/s, "
           "%.1f us CPU/req\n", best.rate, best.cpu_us);
    stop(srv);
    return best.rate;
}

static void latency_table(const char *build, int delay_ms, double cpu_rate) {
    int port;
    pid_t srv = spawn_server(build, "line_server", delay_ms, 0, &port);
    if (srv < 0)
        return;
    result_t r;
    if (line_sync(port, records_for(1000.0 / delay_ms), &r) != 0) {
        stop(srv);
        return;
    }
    double per_s = r.rate; /* 1 / observed latency */
    printf("delay %2d ms  sync           %9.0f req/s  (observed latency %.2f ms)  %6.1f us CPU/req\n", delay_ms,
           r.rate, 1000.0 / per_s, r.cpu_us);
    static const uint32_t caps[] = {1, 10, 100, 1000};
    for (int i = 0; i < 4; i++) {
        double ceiling = caps[i] * per_s < cpu_rate ? caps[i] * per_s : cpu_rate;
        if (line_async(port, caps[i], SL_ASYNC_ORDERED, records_for(ceiling), &r) == 0)
            printf("delay %2d ms  async cap %4u %9.0f req/s  ceiling %9.0f  %5.1f%%  %6.1f us CPU/req\n", delay_ms,
                   caps[i], r.rate, ceiling, 100 * r.rate / ceiling, r.cpu_us);
    }
    stop(srv);
}

static void skewed(const char *build) {
    int port;
    pid_t srv = spawn_server(build, "line_server", 1, 1, &port);
    if (srv < 0)
        return;
    result_t o, u;
    uint64_t n = records_for(40000);
    if (line_async(port, 100, SL_ASYNC_ORDERED, n, &o) == 0 && line_async(port, 100, SL_ASYNC_UNORDERED, n, &u) == 0)
        printf("skewed latency (90%% 1 ms, 10%% 10 ms), capacity 100: ordered %.0f req/s, unordered %.0f req/s "
               "(unordered/ordered %.2fx)\n", o.rate, u.rate, u.rate / o.rate);
    stop(srv);
}

/* The built-in HTTP lookup (libcurl multi) against delay_server. */
static void http(const char *build) {
    int port;
    result_t r0 = {0}, s = {0}, a = {0};
    pid_t srv = spawn_server(build, "delay_server", 0, 0, &port);
    if (srv > 0)
        http_async(port, 100, SL_ASYNC_UNORDERED, records_for(10000), &r0);
    stop(srv);
    srv = spawn_server(build, "delay_server", 10, 0, &port);
    if (srv > 0 && http_sync(port, records_for(100), &s) == 0 && http_async(port, 100, SL_ASYNC_ORDERED,
                                                                             records_for(8000), &a) == 0)
        printf("HTTP lookup (libcurl): CPU-bound %.0f req/s, %.1f us CPU/req; 10 ms service: sync %.0f req/s, "
               "async capacity 100 %.0f req/s (ceiling %.0f)\n", r0.rate, r0.cpu_us, s.rate, a.rate,
               100 * s.rate < r0.rate ? 100 * s.rate : r0.rate);
    stop(srv);
}

static void redis(void) {
    int port = 20000 + getpid() % 12000; /* below the ephemeral range */
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
    http(argv[1]);
    redis();
    curl_global_cleanup();
    return 0;
}
