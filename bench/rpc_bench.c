/* RPC benchmark: round-trip latency (p50/p99/p999) and sequential calls/s of authenticated
 * Echo calls over loopback, pipelined calls/s with a window of calls in flight, and, measured
 * in the same run as the reference, the round trip of a minimal libuv TCP echo (raw bytes, no
 * framing, no protobuf, no thread hand-off). Prints figures; never fails on time.
 * usage: [SL_BENCH_TLS=DIR] rpc_bench [SEQUENTIAL_CALLS] [PIPELINED_CALLS] [WINDOW] */
#include <sluice/error.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/log.h"
#include "rpc/rpc.h"
#include "rpc/tls.h"

#include "bench_tls.h"

#define PAYLOAD 64

static sl_tls_ctx_t *g_tls;


static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_latency(const char *name, uint64_t *lat, int n, uint64_t total_ns) {
    qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
    printf("%-28s p50 %7.1f us  p99 %7.1f us  p999 %7.1f us  %9.0f calls/s\n", name, lat[n / 2] / 1e3,
           lat[(size_t)n * 99 / 100] / 1e3, lat[(size_t)n * 999 / 1000] / 1e3, n / (total_ns / 1e9));
}

/* ---- RPC ---- */

static void echo_handler(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg, void *arg) {
    Sluice__Rpc__Echo e = SLUICE__RPC__ECHO__INIT;
    e.data = msg->echo->data;
    sl_rpc_msg_t resp = SLUICE__RPC__ENVELOPE__INIT;
    resp.body_case = SLUICE__RPC__ENVELOPE__BODY_ECHO;
    resp.echo = &e;
    sl_rpc_reply(req, &resp);
}

static uint8_t payload[PAYLOAD];

static void echo_env(sl_rpc_msg_t *env, Sluice__Rpc__Echo *e) {
    sluice__rpc__echo__init(e);
    e->data.data = payload;
    e->data.len = sizeof payload;
    sluice__rpc__envelope__init(env);
    env->body_case = SLUICE__RPC__ENVELOPE__BODY_ECHO;
    env->echo = e;
}

static int sequential(sl_rpc_conn_t *conn, int n, uint64_t *lat, uint64_t *total) {
    uint64_t start = now_ns();
    for (int i = 0; i < n; i++) {
        Sluice__Rpc__Echo e;
        sl_rpc_msg_t env, *resp;
        echo_env(&env, &e);
        uint64_t t0 = now_ns();
        int rc = sl_rpc_call_sync(conn, &env, 5000, &resp);
        if (lat)
            lat[i] = now_ns() - t0;
        sl_rpc_msg_free(resp);
        if (rc != 0)
            return rc;
    }
    *total = now_ns() - start;
    return 0;
}

static sem_t window;
static int pipelined_errors;

static void pipelined_cb(int status, sl_rpc_msg_t *resp, void *arg) {
    if (status != 0)
        pipelined_errors++; /* loop thread only */
    sl_rpc_msg_free(resp);
    sem_post(&window);
}

static double pipelined(sl_rpc_conn_t *conn, int n, int inflight) {
    sem_init(&window, 0, (unsigned)inflight);
    uint64_t start = now_ns();
    for (int i = 0; i < n; i++) {
        sem_wait(&window);
        Sluice__Rpc__Echo e;
        sl_rpc_msg_t env;
        echo_env(&env, &e);
        if (sl_rpc_call(conn, &env, 10000, pipelined_cb, NULL) != 0) {
            fprintf(stderr, "rpc_bench: call failed\n");
            exit(1);
        }
    }
    for (int i = 0; i < inflight; i++)
        sem_wait(&window);
    uint64_t total = now_ns() - start;
    sem_destroy(&window);
    return n / (total / 1e9);
}

static sl_rpc_endpoint_t *endpoint(const char *id, sl_rpc_handler_cb h) {
    const char *secret = "bench-secret";
    sl_rpc_endpoint_config_t cfg = {.id = id, .role = id, .secret = (const uint8_t *)secret,
                                    .secret_len = strlen(secret), .handler = h, .tls = g_tls};
    sl_rpc_endpoint_t *ep;
    if (sl_rpc_endpoint_create(&cfg, &ep) != 0 || sl_rpc_endpoint_start(ep) != 0) {
        fprintf(stderr, "rpc_bench: endpoint\n");
        exit(1);
    }
    return ep;
}

/* ---- raw libuv echo ---- */

typedef struct {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t stop;
    int port;
    sem_t ready;
} raw_server_t;

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
    static char buf[65536];
    b->base = buf;
    b->len = sizeof buf;
}

typedef struct {
    uv_write_t req;
    char data[];
} raw_write_t;

static void raw_written(uv_write_t *req, int status) {
    free(req);
}

static int heap_handle; /* marks the accepted (malloc'd) handles in h->data */

static void raw_closed(uv_handle_t *h) {
    if (h->data == &heap_handle)
        free(h);
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    if (n < 0) {
        uv_close((uv_handle_t *)s, raw_closed);
        return;
    }
    if (n == 0)
        return;
    raw_write_t *w = malloc(sizeof *w + (size_t)n);
    memcpy(w->data, b->base, (size_t)n);
    uv_buf_t out = uv_buf_init(w->data, (unsigned)n);
    uv_write(&w->req, s, &out, 1, raw_written);
}

static void raw_accept(uv_stream_t *server, int status) {
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(server->loop, c);
    c->data = &heap_handle;
    uv_accept(server, (uv_stream_t *)c);
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, raw_alloc, raw_read);
}

static void raw_walk_close(uv_handle_t *h, void *arg) {
    if (!uv_is_closing(h))
        uv_close(h, raw_closed);
}

static void raw_stop(uv_async_t *a) {
    uv_walk(a->loop, raw_walk_close, a->data);
}

static void *raw_main(void *arg) {
    raw_server_t *r = arg;
    uv_loop_init(&r->loop);
    uv_tcp_init(&r->loop, &r->server);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&r->server, (struct sockaddr *)&a, 0);
    uv_listen((uv_stream_t *)&r->server, 16, raw_accept);
    int len = sizeof a;
    uv_tcp_getsockname(&r->server, (struct sockaddr *)&a, &len);
    r->port = ntohs(a.sin_port);
    uv_async_init(&r->loop, &r->stop, raw_stop);
    sem_post(&r->ready);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    return NULL;
}

static void raw_pingpong(int n, uint64_t *lat) {
    raw_server_t r;
    sem_init(&r.ready, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, raw_main, &r);
    sem_wait(&r.ready);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("rpc_bench: raw connect");
        exit(1);
    }
    char buf[PAYLOAD];
    memset(buf, 'x', sizeof buf);
    for (int i = -1000; i < n; i++) { /* 1000 warm-up round trips */
        uint64_t t0 = now_ns();
        if (send(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
            exit(1);
        size_t got = 0;
        while (got < sizeof buf) {
            ssize_t k = recv(fd, buf + got, sizeof buf - got, 0);
            if (k <= 0)
                exit(1);
            got += (size_t)k;
        }
        if (i >= 0)
            lat[i] = now_ns() - t0;
    }
    close(fd);
    uv_async_send(&r.stop);
    pthread_join(t, NULL);
    sem_destroy(&r.ready);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    int np = argc > 2 ? atoi(argv[2]) : 200000;
    int win = argc > 3 ? atoi(argv[3]) : 64;
    sl_log_set_level(SL_LOG_WARN);
    g_tls = bench_tls();
    uint64_t *lat = malloc(sizeof *lat * (size_t)n);
    uint64_t total = 0;

    sl_rpc_endpoint_t *server = endpoint("bench-server", echo_handler);
    int port;
    char err[512];
    if (sl_rpc_listen(server, "127.0.0.1", 0, &port, err, sizeof err) != 0) {
        fprintf(stderr, "rpc_bench: %s\n", err);
        return 1;
    }
    sl_rpc_endpoint_t *client = endpoint("bench-client", NULL);
    sl_rpc_conn_t *conn;
    if (sl_rpc_connect(client, "127.0.0.1", port, 5000, &conn, err, sizeof err) != 0) {
        fprintf(stderr, "rpc_bench: %s\n", err);
        return 1;
    }
    printf("rpc_bench: %d-byte Echo over 127.0.0.1, authenticated%s, %d sequential / %d pipelined calls\n",
           PAYLOAD, g_tls ? ", TLS" : "", n, np);
    sequential(conn, 2000, NULL, &total); /* warm-up */
    if (sequential(conn, n, lat, &total) != 0)
        return 1;
    print_latency("rpc call_sync round trip", lat, n, total);
    uint64_t rpc_p50 = lat[n / 2];
    double rate = pipelined(conn, np, win);
    printf("%-28s %9.0f calls/s (window %d, errors %d)\n", "rpc pipelined", rate, win, pipelined_errors);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(client);
    sl_rpc_endpoint_destroy(server);
    sl_tls_ctx_destroy(g_tls);

    uint64_t start = now_ns();
    raw_pingpong(n, lat);
    total = now_ns() - start;
    print_latency("raw libuv tcp echo", lat, n, total);
    printf("rpc / raw p50 round trip: %.2fx\n", (double)rpc_p50 / (double)lat[n / 2]);
    free(lat);
    return 0;
}
