/* Remote channel failures over real sockets on 127.0.0.1: a wrong secret or protocol version
 * is refused and the service goes on serving a good peer; garbage and oversized frames drop
 * only their connection; a producer TaskManager killed mid-stream, or one that cannot be
 * reached, fails the consumer's channel with an error naming the peer, without hanging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "network/net.h"
#include "network/net_frame.h"
#include "network/record_writer.h"

#define SECRET "s3cret-cluster"
#define SEGMENT 4096u

static sl_net_t *start_tm(const char *id, const char *secret, uint32_t version) {
    sl_net_config_t cfg = {.id = id, .secret = (const uint8_t *)secret, .secret_len = strlen(secret),
                           .protocol_version = version, .connect_timeout_ms = 3000};
    sl_net_t *net = NULL;
    char err[256];
    assert_int_equal(sl_net_create(&cfg, &net, err, sizeof err), 0);
    return net;
}

/* A consumer of one remote channel, read by the test thread itself. */
typedef struct {
    sl_network_memory_t nm;
    sl_mailbox_t mb;
    sl_channel_t ch;
    sl_buffer_pool_t *pool;
    sl_net_channel_t *h;
    sl_record_reader_t rd;
    int64_t records;
} sink_t;

static int sink_init(sink_t *s, sl_net_t *net, const char *host, int port, const char *peer, uint64_t id) {
    memset(s, 0, sizeof *s);
    assert_int_equal(sl_network_memory_init(&s->nm, 1u << 20, SEGMENT), 0);
    assert_int_equal(sl_mailbox_init(&s->mb), 0);
    assert_int_equal(sl_buffer_pool_create(&s->nm, 2, &s->pool), 0);
    assert_int_equal(sl_channel_init(&s->ch, 2, sl_net_mailbox(net), &s->mb, 0, 0), 0);
    return sl_net_import(net, host, port, peer, id, &s->ch, s->pool, &s->h);
}

/* Reads until SL_CH_END; returns the channel's error (0 on a clean end). */
static int sink_run(sink_t *s, char *msg, size_t len) {
    int64_t deadline = sl_monotonic_ms() + 20000;
    for (;;) {
        assert_true(sl_monotonic_ms() < deadline);
        void *ready;
        if (sl_mailbox_wait_ready(&s->mb, sl_monotonic_ms() + 100, &ready) != 1)
            continue;
        sl_channel_entry_t e;
        while (sl_channel_poll(&s->ch, &e) == 1) {
            if (e.kind == SL_CH_END)
                return sl_net_channel_error(s->h, msg, len);
            if (e.kind != SL_CH_BUFFER)
                continue;
            uint32_t pos = 0;
            sl_row_t r;
            int64_t ts;
            while (sl_record_reader_next(&s->rd, e.buf, &pos, &r, &ts) == 1)
                assert_int_equal(sl_row_i64(&r, 0), s->records++);
            sl_channel_release(&s->ch, e.buf);
        }
    }
}

static void sink_destroy(sink_t *s) {
    sl_net_channel_close(s->h);
    sl_channel_destroy(&s->ch);
    sl_record_reader_destroy(&s->rd);
    sl_buffer_pool_destroy(s->pool);
    sl_mailbox_destroy(&s->mb);
    sl_network_memory_destroy(&s->nm);
}

/* A producer of one exported channel, written by the calling thread. */
typedef struct {
    sl_network_memory_t nm;
    sl_mailbox_t mb;
    sl_channel_t ch;
    sl_channel_t *chp;
    sl_net_channel_t *h;
    sl_record_writer_t w;
} source_t;

static void source_init(source_t *s, sl_net_t *net, uint64_t id) {
    memset(s, 0, sizeof *s);
    assert_int_equal(sl_network_memory_init(&s->nm, 1u << 20, SEGMENT), 0);
    assert_int_equal(sl_mailbox_init(&s->mb), 0);
    assert_int_equal(sl_channel_init(&s->ch, 2, &s->mb, sl_net_mailbox(net), 0, 0), 0);
    s->chp = &s->ch;
    assert_int_equal(sl_net_export(net, id, &s->ch, &s->h), 0);
    assert_int_equal(sl_record_writer_init(&s->w, SL_PART_FORWARD, &s->chp, 1, 2, &s->nm, &s->mb), 0);
}

/* Writes records 0..n-1 (n < 0: forever), then END when `end`. */
static int source_write_ex(source_t *s, int64_t n, int end) {
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    int rc = 0;
    for (int64_t i = 0; (n < 0 || i < n) && rc == 0; i++) {
        sl_row_builder_start(&b, 2);
        sl_row_set_i64(&b, 0, i);
        sl_row_set_str(&b, 1, "payload-payload-payload-payload", 31);
        sl_row_t r;
        rc = sl_row_builder_finish(&b, &r);
        if (rc == 0)
            rc = sl_record_writer_write(&s->w, &r, i);
    }
    if (rc == 0)
        rc = end ? sl_record_writer_event(&s->w, SL_CH_END, 0) : sl_record_writer_flush(&s->w);
    sl_row_builder_destroy(&b);
    return rc;
}

static int source_write(source_t *s, int64_t n) {
    return source_write_ex(s, n, 1);
}

static void source_destroy(source_t *s) {
    sl_net_channel_close(s->h);
    sl_channel_destroy(&s->ch);
    sl_record_writer_destroy(&s->w);
    sl_mailbox_destroy(&s->mb);
    sl_network_memory_destroy(&s->nm);
}

/* A good peer still gets its channel from `a` (after whatever the test did to it). */
static void assert_serves_good_peer(sl_net_t *a, uint64_t id) {
    sl_net_t *good = start_tm("tm-good", SECRET, 0);
    source_t src;
    sink_t sink;
    source_init(&src, a, id);
    assert_int_equal(sink_init(&sink, good, "127.0.0.1", sl_net_port(a), "tm-a", id), 0);
    assert_int_equal(source_write(&src, 50), 0); /* fits in the credit: written before reading */
    char msg[512];
    assert_int_equal(sink_run(&sink, msg, sizeof msg), 0);
    assert_int_equal(sink.records, 50);
    sink_destroy(&sink);
    source_destroy(&src);
    sl_net_destroy(good);
}

static void test_wrong_secret_refused(void **state) {
    sl_net_t *a = start_tm("tm-a", SECRET, 0);
    sl_net_t *bad = start_tm("tm-bad", "not-the-secret", 0);
    sink_t sink;
    assert_int_equal(sink_init(&sink, bad, "127.0.0.1", sl_net_port(a), "tm-a", 7), 0);
    char msg[512];
    assert_int_equal(sink_run(&sink, msg, sizeof msg), SL_EAUTH);
    assert_non_null(strstr(msg, "wrong shared secret"));
    assert_non_null(strstr(msg, "tm-a"));
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", sl_net_port(a));
    assert_non_null(strstr(msg, addr));
    sink_destroy(&sink);
    sl_net_destroy(bad);
    sl_net_stats_t st;
    sl_net_stats(a, &st);
    assert_int_equal(st.refused, 1);
    assert_serves_good_peer(a, 8);
    sl_net_destroy(a);
}

static void test_wrong_version_refused(void **state) {
    sl_net_t *a = start_tm("tm-a", SECRET, 0);
    sl_net_t *old = start_tm("tm-old", SECRET, 2);
    sink_t sink;
    assert_int_equal(sink_init(&sink, old, "127.0.0.1", sl_net_port(a), "tm-a", 7), 0);
    char msg[512];
    assert_int_equal(sink_run(&sink, msg, sizeof msg), SL_EPROTO);
    assert_non_null(strstr(msg, "protocol version 2 not supported"));
    sink_destroy(&sink);
    sl_net_destroy(old);
    assert_serves_good_peer(a, 9);
    sl_net_destroy(a);
}

static void test_wrong_peer_id(void **state) {
    sl_net_t *a = start_tm("tm-a", SECRET, 0);
    sl_net_t *b = start_tm("tm-b", SECRET, 0);
    sink_t sink;
    assert_int_equal(sink_init(&sink, b, "127.0.0.1", sl_net_port(a), "tm-z", 7), 0);
    char msg[512];
    assert_int_equal(sink_run(&sink, msg, sizeof msg), SL_EPROTO);
    assert_non_null(strstr(msg, "expected TaskManager tm-z, found TaskManager tm-a"));
    sink_destroy(&sink);
    sl_net_destroy(b);
    sl_net_destroy(a);
}

/* Connects a raw socket, sends `data`, and waits for the service to close the connection. */
static void raw_send_expect_drop(int port, const void *data, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    /* HELLO, maybe an ERROR frame, then EOF (or a reset): never a timeout. */
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        ;
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
    close(fd);
}

static void test_garbage_and_oversized_frames(void **state) {
    sl_net_t *a = start_tm("tm-a", SECRET, 0);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_send_expect_drop(sl_net_port(a), http, strlen(http));
    uint8_t hdr[SL_NET_FRAME_HEADER];
    sl_net_frame_header(hdr, SL_NET_FRAME_BUFFER, 1, 0xfffffff0u);
    raw_send_expect_drop(sl_net_port(a), hdr, sizeof hdr);
    sl_net_frame_header(hdr, SL_NET_FRAME_AUTH, 0, 5000);
    raw_send_expect_drop(sl_net_port(a), hdr, sizeof hdr);
    sl_net_frame_header(hdr, SL_NET_FRAME_PARTITION_REQUEST, 1, 4);
    uint8_t early[SL_NET_FRAME_HEADER + 4] = {0};
    memcpy(early, hdr, sizeof hdr);
    raw_send_expect_drop(sl_net_port(a), early, sizeof early);
    sl_net_stats_t st;
    sl_net_stats(a, &st);
    assert_int_equal(st.refused, 4);
    assert_int_equal(st.open_connections, 0);
    assert_serves_good_peer(a, 10);
    sl_net_destroy(a);
}

/* The producer TaskManager is a child process, killed while it streams. */
static void test_peer_killed_mid_stream(void **state) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        sl_net_t *a = start_tm("tm-a", SECRET, 0);
        source_t src;
        source_init(&src, a, 42);
        int port = sl_net_port(a);
        if (write(fds[1], &port, sizeof port) != sizeof port)
            _exit(2);
        source_write(&src, -1); /* until killed */
        _exit(3);
    }
    close(fds[1]);
    int port = 0;
    assert_int_equal(read(fds[0], &port, sizeof port), (ssize_t)sizeof port);
    close(fds[0]);
    sl_net_t *b = start_tm("tm-b", SECRET, 0);
    sink_t sink;
    assert_int_equal(sink_init(&sink, b, "127.0.0.1", port, "tm-a", 42), 0);
    /* Read a while, then kill the producer: the channel must end with an error. */
    int64_t deadline = sl_monotonic_ms() + 10000;
    while (sink.records < 5000 && sl_monotonic_ms() < deadline) {
        void *ready;
        if (sl_mailbox_wait_ready(&sink.mb, sl_monotonic_ms() + 100, &ready) != 1)
            continue;
        sl_channel_entry_t e;
        while (sl_channel_poll(&sink.ch, &e) == 1 && e.kind == SL_CH_BUFFER) {
            uint32_t pos = 0;
            sl_row_t r;
            int64_t ts;
            while (sl_record_reader_next(&sink.rd, e.buf, &pos, &r, &ts) == 1)
                assert_int_equal(sl_row_i64(&r, 0), sink.records++);
            sl_channel_release(&sink.ch, e.buf);
        }
    }
    assert_true(sink.records >= 5000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    char msg[512];
    int rc = sink_run(&sink, msg, sizeof msg);
    assert_true(rc < 0);
    char addr[64];
    snprintf(addr, sizeof addr, "TaskManager tm-a at 127.0.0.1:%d", port);
    if (!strstr(msg, addr))
        fail_msg("error does not name the peer: %s", msg);
    sink_destroy(&sink);
    sl_net_destroy(b);
}

static void test_peer_unreachable(void **state) {
    /* A port that was just free: bind, note, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    int port = ntohs(sa.sin_port);
    close(fd);
    sl_net_t *b = start_tm("tm-b", SECRET, 0);
    sink_t sink;
    assert_int_equal(sink_init(&sink, b, "127.0.0.1", port, "tm-a", 1), 0);
    char msg[512];
    assert_int_equal(sink_run(&sink, msg, sizeof msg), SL_ECONNREFUSED);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_non_null(strstr(msg, addr));
    assert_non_null(strstr(msg, "connection refused"));
    sink_destroy(&sink);
    sl_net_destroy(b);
}

/* A consumer that gives its channel up: the producer is told, keeps draining, never blocks. */
static void test_consumer_cancel(void **state) {
    sl_net_t *a = start_tm("tm-a", SECRET, 0);
    sl_net_t *b = start_tm("tm-b", SECRET, 0);
    source_t src;
    sink_t sink;
    source_init(&src, a, 5);
    assert_int_equal(sink_init(&sink, b, "127.0.0.1", sl_net_port(a), "tm-a", 5), 0);
    /* Once data flows (the channel was requested), the consumer gives up. */
    assert_int_equal(source_write_ex(&src, 10, 0), 0);
    void *ready;
    assert_int_equal(sl_mailbox_wait_ready(&sink.mb, sl_monotonic_ms() + 5000, &ready), 1);
    sl_net_channel_close(sink.h);
    sink.h = NULL;
    char msg[512];
    int64_t deadline = sl_monotonic_ms() + 5000;
    while (sl_net_channel_error(src.h, msg, sizeof msg) == 0 && sl_monotonic_ms() < deadline)
        usleep(1000);
    assert_int_equal(sl_net_channel_error(src.h, msg, sizeof msg), SL_ECANCELED);
    assert_non_null(strstr(msg, "tm-b"));
    /* Far more than the credit: the cancelled channel is drained, the producer never waits. */
    assert_int_equal(source_write(&src, 20000), 0);
    sink_destroy(&sink);
    source_destroy(&src);
    sl_net_destroy(b);
    sl_net_destroy(a);
}

int main(void) {
    sl_log_set_level(SL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_secret_refused),
        cmocka_unit_test(test_wrong_version_refused),
        cmocka_unit_test(test_wrong_peer_id),
        cmocka_unit_test(test_garbage_and_oversized_frames),
        cmocka_unit_test(test_peer_killed_mid_stream),
        cmocka_unit_test(test_peer_unreachable),
        cmocka_unit_test(test_consumer_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
