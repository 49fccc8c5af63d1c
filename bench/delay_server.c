/* delay_server: an HTTP/1.1 keep-alive server on libuv standing in for a slow web service in
 * benchmarks and tests of asynchronous I/O. Every GET is answered after DELAY_MS (a uv timer
 * per request, never a sleep, so thousands of requests wait at once) with the request path as
 * the body.
 *
 *   delay_server PORT DELAY_MS [--skew]
 *
 * PORT 0 picks a free port; "listening on PORT" is printed (and flushed) once connections are
 * accepted. --skew draws delays from a skewed distribution: 90% DELAY_MS, 10% 10 x DELAY_MS
 * (fixed seed, so runs compare), for ordered-vs-unordered comparisons. A path of the form
 * /status/NNN[/...] is answered with status NNN (tests use it for 404s); GET /stats answers at
 * once with "connections C requests R" (connections accepted and requests answered so far,
 * e.g. to check that clients keep connections alive). Requests are handled
 * one at a time per connection (pipelined requests wait their turn); request bodies are not
 * supported; "Connection: close" or HTTP/1.0 closes the connection after the response. */
#include <uv.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#define MAX_HEADER 16384

typedef struct {
    uint64_t delay_ms;
    int skew;
    uint64_t rng;
} config_t;

static config_t cfg;
static uint64_t connections_accepted, requests_answered; /* reported by GET /stats */

typedef struct conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write;
    int open_handles; /* freed when both handles have closed */
    int busy;         /* a request is being delayed or written */
    int closing;
    int reading;      /* reads stop while the buffer is full of pipelined requests */
    int close_after;  /* the response ends the connection */
    char in[MAX_HEADER];
    size_t in_len;
    size_t req_len; /* bytes of the request being answered */
    int status;
    char path[4096];
    char *out;
    size_t out_cap;
} conn_t;

/* xorshift64: deterministic skew without libc's global rand state. */
static uint64_t next_rand(void) {
    cfg.rng ^= cfg.rng << 13;
    cfg.rng ^= cfg.rng >> 7;
    cfg.rng ^= cfg.rng << 17;
    return cfg.rng;
}

static uint64_t pick_delay(void) {
    if (cfg.skew && next_rand() % 10 == 0)
        return cfg.delay_ms * 10;
    return cfg.delay_ms;
}

static void on_closed(uv_handle_t *h) {
    conn_t *c = h->data;
    if (--c->open_handles == 0) {
        free(c->out);
        free(c);
    }
}

static void conn_close(conn_t *c) {
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->timer, on_closed);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void try_request(conn_t *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *w, int status) {
    conn_t *c = w->data;
    if (status < 0 || c->close_after) {
        conn_close(c);
        return;
    }
    /* Drop the answered request; a pipelined one may already be buffered. */
    memmove(c->in, c->in + c->req_len, c->in_len - c->req_len);
    c->in_len -= c->req_len;
    c->busy = 0;
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = 1;
    try_request(c);
}

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

static void respond(conn_t *c) {
    size_t blen = strlen(c->path);
    size_t need = blen + 256;
    if (need > c->out_cap) {
        char *o = realloc(c->out, need);
        if (o == NULL) {
            conn_close(c);
            return;
        }
        c->out = o;
        c->out_cap = need;
    }
    int n = snprintf(c->out, c->out_cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s", c->status,
                     reason(c->status), blen, c->close_after ? "Connection: close\r\n" : "", c->path);
    requests_answered++;
    uv_buf_t buf = uv_buf_init(c->out, (unsigned)n);
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0)
        conn_close(c);
}

static void on_delay(uv_timer_t *t) { respond(t->data); }

/* Status from "/status/NNN..." paths, else 200. */
static int status_of(const char *path) {
    if (strncmp(path, "/status/", 8) != 0 || !isdigit((unsigned char)path[8]))
        return 200;
    int s = atoi(path + 8);
    return s >= 100 && s <= 599 ? s : 200;
}

/* 1 when the header line [line, eol) is "Connection: ...close...". */
static int is_connection_close(const char *line, const char *eol) {
    if (strncasecmp(line, "connection:", 11) != 0)
        return 0;
    for (const char *p = line + 11; p + 5 <= eol; p++)
        if (strncasecmp(p, "close", 5) == 0)
            return 1;
    return 0;
}

/* Parses the request line and the headers that matter: "Connection: close" and HTTP/1.0.
 * `end` points at the blank line ending the header. */
static int parse(conn_t *c, const char *end) {
    char method[16], version[16];
    c->in[c->req_len - 1] = '\0'; /* the final '\n' of the blank line: sscanf stops there */
    if (sscanf(c->in, "%15s %4095s %15s", method, c->path, version) != 3)
        return -1;
    c->close_after = strcmp(version, "HTTP/1.0") == 0;
    for (const char *h = strstr(c->in, "\r\n"); h != NULL && h < end; h = strstr(h + 2, "\r\n")) {
        const char *eol = strstr(h + 2, "\r\n");
        if (eol != NULL && is_connection_close(h + 2, eol))
            c->close_after = 1;
    }
    c->status = status_of(c->path);
    return 0;
}

static void try_request(conn_t *c) {
    if (c->busy || c->closing)
        return;
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->in_len == sizeof c->in)
            conn_close(c); /* header larger than we accept */
        return;
    }
    c->req_len = (size_t)(end - c->in) + 4;
    c->busy = 1;
    if (parse(c, end) < 0) {
        snprintf(c->path, sizeof c->path, "bad request");
        c->status = 400;
        c->close_after = 1;
        respond(c);
        return;
    }
    if (strcmp(c->path, "/stats") == 0) {
        snprintf(c->path, sizeof c->path, "connections %llu requests %llu", (unsigned long long)connections_accepted,
                 (unsigned long long)requests_answered);
        respond(c);
        return;
    }
    uv_timer_start(&c->timer, on_delay, pick_delay(), 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    conn_t *c = h->data;
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof c->in - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    conn_t *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    if (c->in_len == sizeof c->in && memmem(c->in, c->in_len, "\r\n\r\n", 4) == NULL) {
        conn_close(c);
        return;
    }
    /* A full buffer of pipelined requests: stop reading until the current one is answered. */
    if (c->in_len == sizeof c->in) {
        uv_read_stop(s);
        c->reading = 0;
    }
    try_request(c);
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) {
        fprintf(stderr, "delay_server: accept: %s\n", uv_strerror(status));
        return;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    connections_accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

/* Thousands of connections need thousands of descriptors. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int usage(void) {
    fprintf(stderr, "usage: delay_server PORT DELAY_MS [--skew]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--skew") != 0))
        return usage();
    char *end;
    long port = strtol(argv[1], &end, 10);
    long delay = strtol(argv[2], &end, 10);
    if (port < 0 || port > 65535 || delay < 0 || *end != '\0')
        return usage();
    cfg = (config_t){.delay_ms = (uint64_t)delay, .skew = argc == 4, .rng = 0x9e3779b97f4a7c15ull};
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", (int)port, &addr);
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 4096, on_connection);
    if (rc < 0) {
        fprintf(stderr, "delay_server: cannot listen on port %ld: %s\n", port, uv_strerror(rc));
        return 1;
    }
    int len = sizeof addr;
    uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
    printf("listening on %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
