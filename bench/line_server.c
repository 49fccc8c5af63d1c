/* line_server: a test service with a fixed latency and almost no cost per request, so an async
 * I/O benchmark measures the engine and not a protocol library. Each request is one line
 * "<id>\n"; the answer "<id>\n" is written DELAY_MS later, in whatever order timers fire, so
 * one connection carries any number of requests in flight (like Redis pipelining).
 *
 *   line_server PORT DELAY_MS [--skew]      (PORT 0 = any; prints "listening on PORT")
 *
 * --skew: 90% of answers after DELAY_MS, 10% after 10 x DELAY_MS (fixed seed).
 * Answers due in one loop iteration go out in one write per connection, so the service costs
 * little per request and the client side is what a benchmark measures. */
#include <uv.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct conn_s {
    uv_tcp_t tcp;
    char in[4096];
    size_t in_len;
    int refs; /* the handle plus pending answers and writes */
    int closing;
    char *out;          /* answers due, written once per loop iteration */
    size_t out_len, out_cap;
    int queued;         /* on the dirty list */
    struct conn_s *next_dirty;
} conn_t;

typedef struct answer_s {
    uv_timer_t timer;
    conn_t *conn;
    char line[24];
    size_t len;
    struct answer_s *next_free;
} answer_t;

typedef struct {
    uv_write_t req;
    conn_t *conn;
    char *data;
} write_t;

static conn_t *dirty;
static uv_prepare_t flusher;

static uint64_t delay_ms;
static int skew;
static uint64_t rng = 88172645463325252ull;
static answer_t *free_answers;
static uv_loop_t *loop;

static uint64_t pick_delay(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return skew && rng % 10 == 0 ? delay_ms * 10 : delay_ms;
}

static void conn_unref(conn_t *c) {
    if (--c->refs == 0) {
        free(c->out);
        free(c);
    }
}

static void on_conn_closed(uv_handle_t *h) { conn_unref(h->data); }

static void conn_close(conn_t *c) {
    if (!c->closing) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    }
}

static void answer_done(answer_t *a) {
    conn_unref(a->conn);
    a->next_free = free_answers;
    free_answers = a;
}

static void on_written(uv_write_t *w, int status) {
    write_t *wr = w->data;
    if (status < 0)
        conn_close(wr->conn);
    conn_unref(wr->conn);
    free(wr->data);
    free(wr);
}

/* Before the loop sleeps: one write per connection with everything that came due. */
static void flush_dirty(uv_prepare_t *h) {
    while (dirty) {
        conn_t *c = dirty;
        dirty = c->next_dirty;
        c->queued = 0;
        write_t *wr = malloc(sizeof *wr);
        if (wr == NULL || c->closing) {
            free(wr);
            c->out_len = 0;
            continue;
        }
        wr->conn = c;
        wr->data = c->out;
        wr->req.data = wr;
        uv_buf_t b = uv_buf_init(c->out, (unsigned)c->out_len);
        c->out = NULL;
        c->out_len = c->out_cap = 0;
        c->refs++;
        if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
            on_written(&wr->req, -1);
    }
}

static void on_due(uv_timer_t *t) {
    answer_t *a = t->data;
    conn_t *c = a->conn;
    if (!c->closing) {
        if (c->out_len + a->len > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
            char *o = realloc(c->out, cap);
            if (o == NULL) {
                conn_close(c);
                answer_done(a);
                return;
            }
            c->out = o;
            c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, a->line, a->len);
        c->out_len += a->len;
        if (!c->queued) {
            c->queued = 1;
            c->next_dirty = dirty;
            dirty = c;
        }
    }
    answer_done(a);
}

static answer_t *new_answer(void) {
    answer_t *a = free_answers;
    if (a) {
        free_answers = a->next_free;
        return a;
    }
    if ((a = calloc(1, sizeof *a)) == NULL)
        return NULL;
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    return a;
}

static int schedule(conn_t *c, const char *line, size_t len) {
    answer_t *a = len < sizeof a->line ? new_answer() : NULL;
    if (a == NULL)
        return -1;
    memcpy(a->line, line, len);
    a->len = len;
    a->conn = c;
    c->refs++;
    return uv_timer_start(&a->timer, on_due, pick_delay(), 0);
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
    size_t start = 0;
    for (size_t i = 0; i < c->in_len; i++) {
        if (c->in[i] != '\n')
            continue;
        if (schedule(c, c->in + start, i + 1 - start) != 0) {
            conn_close(c);
            return;
        }
        start = i + 1;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    if (c->in_len == sizeof c->in) /* a line longer than the buffer: not our protocol */
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status) {
    conn_t *c = status < 0 ? NULL : calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->refs = 1;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
    else
        uv_tcp_nodelay(&c->tcp, 1);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: line_server PORT DELAY_MS [--skew]\n");
        return 2;
    }
    delay_ms = strtoull(argv[2], NULL, 10);
    skew = argc > 3 && strcmp(argv[3], "--skew") == 0;
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    uv_prepare_init(loop, &flusher);
    uv_prepare_start(&flusher, flush_dirty);
    uv_tcp_t server;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    if (rc != 0) {
        fprintf(stderr, "line_server: cannot listen on port %s: %s\n", argv[1], uv_strerror(rc));
        return 1;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len);
    printf("listening on %d\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
