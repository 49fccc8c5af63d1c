/* Connection setup over real sockets on 127.0.0.1 (src/rpc/handshake.c, conn.c, connect.c,
 * endpoint.c): a good handshake; a wrong shared secret refused in both directions, a wrong
 * protocol version, garbage, an oversized length, a wrong first frame and a silent peer all
 * refused with the reason, while the server keeps serving correct clients; listen and connect
 * errors name the address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "rpc/frame.h"
#include "rpc/rpc.h"

#define SECRET "cluster-secret"

/* Answers Echo requests with the same bytes. */
static void echo_handler(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg, void *arg) {
    if (!req)
        return;
    Sluice__Rpc__Echo e = SLUICE__RPC__ECHO__INIT;
    if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY_ECHO)
        e.data = msg->echo->data;
    sl_rpc_msg_t resp = SLUICE__RPC__ENVELOPE__INIT;
    resp.body_case = SLUICE__RPC__ENVELOPE__BODY_ECHO;
    resp.echo = &e;
    sl_rpc_reply(req, &resp);
}

static sl_rpc_endpoint_t *make_ep(const char *id, const char *role, const char *secret, uint32_t version,
                                  uint32_t handshake_ms) {
    sl_rpc_endpoint_config_t cfg = {.id = id, .role = role, .secret = (const uint8_t *)secret,
                                    .secret_len = strlen(secret), .protocol_version = version,
                                    .handshake_timeout_ms = handshake_ms, .handler = echo_handler};
    sl_rpc_endpoint_t *ep;
    assert_int_equal(sl_rpc_endpoint_create(&cfg, &ep), 0);
    assert_int_equal(sl_rpc_endpoint_start(ep), 0);
    return ep;
}

static sl_rpc_endpoint_t *make_server(int *port, uint32_t handshake_ms) {
    sl_rpc_endpoint_t *ep = make_ep("rm-1", "resourcemanager", SECRET, 0, handshake_ms);
    char err[256];
    assert_int_equal(sl_rpc_listen(ep, "127.0.0.1", 0, port, err, sizeof err), 0);
    assert_true(*port > 0);
    return ep;
}

static void echo_ok(sl_rpc_conn_t *conn) {
    Sluice__Rpc__Echo e = SLUICE__RPC__ECHO__INIT;
    e.data.data = (uint8_t *)"ping";
    e.data.len = 4;
    sl_rpc_msg_t req = SLUICE__RPC__ENVELOPE__INIT;
    req.body_case = SLUICE__RPC__ENVELOPE__BODY_ECHO;
    req.echo = &e;
    sl_rpc_msg_t *resp = NULL;
    assert_int_equal(sl_rpc_call_sync(conn, &req, 5000, &resp), 0);
    assert_int_equal(resp->body_case, SLUICE__RPC__ENVELOPE__BODY_ECHO);
    assert_memory_equal(resp->echo->data.data, "ping", 4);
    sl_rpc_msg_free(resp);
}

/* A correct client still gets in: the server survived whatever came before. */
static void good_client_works(int port) {
    sl_rpc_endpoint_t *c = make_ep("tm-ok", "taskmanager", SECRET, 0, 0);
    sl_rpc_conn_t *conn;
    char err[512];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), 0);
    echo_ok(conn);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(c);
}

static void test_handshake_ok(void **state) {
    int port;
    sl_rpc_endpoint_t *s = make_server(&port, 0);
    sl_rpc_endpoint_t *c = make_ep("tm-1", "taskmanager", SECRET, 0, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512];
    assert_int_equal(sl_rpc_connect(c, "localhost", port, 5000, &conn, err, sizeof err), 0);
    assert_string_equal(sl_rpc_conn_peer_id(conn), "rm-1");
    assert_string_equal(sl_rpc_conn_peer_role(conn), "server");
    echo_ok(conn);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(c);
    sl_rpc_endpoint_destroy(s);
}

static void test_wrong_secret_refused(void **state) {
    int port;
    sl_rpc_endpoint_t *s = make_server(&port, 0);
    sl_rpc_endpoint_t *c = make_ep("tm-bad", "taskmanager", "not-the-secret", 0, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512], addr[64];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), SL_EAUTH);
    assert_null(conn);
    assert_non_null(strstr(err, "authentication failed: wrong shared secret"));
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_non_null(strstr(err, addr));
    sl_rpc_endpoint_destroy(c);
    good_client_works(port);
    sl_rpc_endpoint_destroy(s);
}

static void test_wrong_version_refused(void **state) {
    int port;
    sl_rpc_endpoint_t *s = make_server(&port, 0);
    sl_rpc_endpoint_t *c = make_ep("tm-v2", "taskmanager", SECRET, 2, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), SL_EPROTO);
    assert_non_null(strstr(err, "protocol version 2 not supported (server speaks 1)"));
    sl_rpc_endpoint_destroy(c);
    good_client_works(port);
    sl_rpc_endpoint_destroy(s);
}

/* ---- raw sockets ---- */

static int raw_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0}; /* a safety net only: every test expects an answer much sooner */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static int read_full(int fd, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            return r == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

/* Reads one frame; returns its kind (payload in *payload, caller frees), 0 on EOF, -1 on timeout. */
static int read_frame(int fd, uint8_t **payload, uint32_t *len) {
    uint8_t h[5];
    int rc = read_full(fd, h, 5);
    if (rc <= 0)
        return rc;
    *len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    *payload = sl_malloc(*len + 1);
    rc = read_full(fd, *payload, *len);
    assert_int_equal(rc, 1);
    return h[4];
}

/* Reads until the server closes; returns the message of an ERROR frame seen on the way. */
static char *expect_closed(int fd) {
    char *msg = NULL;
    for (;;) {
        uint8_t *p = NULL;
        uint32_t len = 0;
        int kind = read_frame(fd, &p, &len);
        assert_true(kind >= 0); /* -1 would be the 5 s safety net: the server never closed */
        if (kind == 0)
            break;
        if (kind == SL_RPC_FRAME_ERROR) {
            Sluice__Rpc__Error *e = sluice__rpc__error__unpack(NULL, len, p);
            assert_non_null(e);
            msg = strdup(e->message);
            sluice__rpc__error__free_unpacked(e, NULL);
        }
        sl_free(p);
    }
    close(fd);
    return msg;
}

static void read_hello(int fd, Sluice__Rpc__Hello **hello) {
    uint8_t *p;
    uint32_t len;
    assert_int_equal(read_frame(fd, &p, &len), SL_RPC_FRAME_HELLO);
    *hello = sluice__rpc__hello__unpack(NULL, len, p);
    assert_non_null(*hello);
    assert_int_equal((*hello)->protocol_version, SL_RPC_PROTOCOL_VERSION);
    assert_int_equal((*hello)->nonce.len, 32);
    assert_string_equal((*hello)->server_id, "rm-1");
    sl_free(p);
}

static void test_garbage_and_oversize_dropped(void **state) {
    int port;
    sl_rpc_endpoint_t *s = make_server(&port, 0);
    Sluice__Rpc__Hello *h;

    int fd = raw_connect(port);
    read_hello(fd, &h);
    sluice__rpc__hello__free_unpacked(h, NULL);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_true(send(fd, http, strlen(http), 0) > 0);
    char *msg = expect_closed(fd);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "unknown frame kind"));
    free(msg);

    fd = raw_connect(port);
    read_hello(fd, &h);
    sluice__rpc__hello__free_unpacked(h, NULL);
    uint8_t big[5];
    sl_rpc_frame_header(big, SL_RPC_FRAME_AUTH, 0x7fffffffu);
    assert_int_equal(send(fd, big, 5, 0), 5);
    msg = expect_closed(fd);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "maximum frame size"));
    free(msg);

    good_client_works(port);
    sl_rpc_endpoint_destroy(s);
}

static void test_wrong_first_frame_refused(void **state) {
    int port;
    sl_rpc_endpoint_t *s = make_server(&port, 0);
    int fd = raw_connect(port);
    Sluice__Rpc__Hello *h;
    read_hello(fd, &h);
    sluice__rpc__hello__free_unpacked(h, NULL);
    /* A well-formed request, but before authenticating. */
    Sluice__Rpc__ListJobs lj = SLUICE__RPC__LIST_JOBS__INIT;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.correlation_id = 1;
    env.kind = SLUICE__RPC__KIND__KIND_REQUEST;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_LIST_JOBS;
    env.list_jobs = &lj;
    uint8_t *frame;
    size_t len;
    assert_int_equal(sl_rpc_frame_pack(SL_RPC_FRAME_MSG, &env.base, 0, &frame, &len), 0);
    assert_int_equal(send(fd, frame, len, 0), (ssize_t)len);
    sl_free(frame);
    char *msg = expect_closed(fd);
    assert_non_null(msg);
    assert_string_equal(msg, "handshake: expected AUTH, got a MSG frame");
    free(msg);
    good_client_works(port);
    sl_rpc_endpoint_destroy(s);
}

static void test_silent_peer_times_out(void **state) {
    int port;
    sl_rpc_endpoint_t *s = make_server(&port, 150);
    int fd = raw_connect(port);
    char *msg = expect_closed(fd); /* HELLO, then nothing from us: the server gives up */
    assert_non_null(msg);
    assert_non_null(strstr(msg, "no authentication within 150 ms"));
    free(msg);
    good_client_works(port);
    sl_rpc_endpoint_destroy(s);
}

/* ---- a fake server that does not know the secret ---- */

typedef struct {
    int lfd;
    int port;
} fake_server_t;

static void *fake_server_main(void *arg) {
    fake_server_t *f = arg;
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    uint8_t nonce[32] = {1};
    Sluice__Rpc__Hello h = SLUICE__RPC__HELLO__INIT;
    h.protocol_version = SL_RPC_PROTOCOL_VERSION;
    h.nonce.data = nonce;
    h.nonce.len = 32;
    h.server_id = "impostor";
    uint8_t *frame;
    size_t len;
    if (sl_rpc_frame_pack(SL_RPC_FRAME_HELLO, &h.base, 0, &frame, &len) == 0) {
        send(fd, frame, len, 0);
        sl_free(frame);
    }
    uint8_t hdr[5], buf[512];
    if (read_full(fd, hdr, 5) == 1 && hdr[4] == SL_RPC_FRAME_AUTH) {
        uint32_t n = (uint32_t)hdr[2] << 8 | hdr[3];
        if (n <= sizeof buf && read_full(fd, buf, n) == 1) {
            uint8_t fake[32] = {0};
            Sluice__Rpc__AuthOk ok = SLUICE__RPC__AUTH_OK__INIT;
            ok.proof.data = fake;
            ok.proof.len = 32;
            if (sl_rpc_frame_pack(SL_RPC_FRAME_AUTH_OK, &ok.base, 0, &frame, &len) == 0) {
                send(fd, frame, len, 0);
                sl_free(frame);
            }
        }
    }
    while (recv(fd, buf, sizeof buf, 0) > 0) { /* until the client hangs up */
    }
    close(fd);
    return NULL;
}

static void test_server_without_secret_refused(void **state) {
    fake_server_t f;
    f.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(f.lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    getsockname(f.lfd, (struct sockaddr *)&a, &alen);
    f.port = ntohs(a.sin_port);
    assert_int_equal(listen(f.lfd, 4), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fake_server_main, &f), 0);

    sl_rpc_endpoint_t *c = make_ep("tm-1", "taskmanager", SECRET, 0, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", f.port, 5000, &conn, err, sizeof err), SL_EAUTH);
    assert_null(conn);
    assert_non_null(strstr(err, "the server did not prove the shared secret"));
    sl_rpc_endpoint_destroy(c);
    pthread_join(t, NULL);
    close(f.lfd);
}

/* ---- listen and connect errors ---- */

static void test_listen_errors(void **state) {
    int port;
    sl_rpc_endpoint_t *s = make_server(&port, 0);
    sl_rpc_endpoint_t *s2 = make_ep("rm-2", "resourcemanager", SECRET, 0, 0);
    char err[512], want[128];
    int p2 = -1;
    assert_int_equal(sl_rpc_listen(s2, "127.0.0.1", port, &p2, err, sizeof err), SL_EADDRINUSE);
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%d: address already in use", port);
    assert_string_equal(err, want);
    assert_int_equal(sl_rpc_listen(s2, "no-such-host.invalid", 6123, &p2, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "invalid listen address no-such-host.invalid:6123"));
    assert_int_equal(sl_rpc_listen(s2, "127.0.0.1", 70000, &p2, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "127.0.0.1:70000"));
    /* A second listener on the same endpoint is refused too. */
    assert_int_equal(sl_rpc_listen(s, "127.0.0.1", 0, &p2, err, sizeof err), SL_EINVAL);
    sl_rpc_endpoint_destroy(s2);
    sl_rpc_endpoint_destroy(s);
}

static void test_connect_errors(void **state) {
    /* A port nobody listens on: bind one, close it, connect to it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &alen);
    int port = ntohs(a.sin_port);
    close(fd);

    sl_rpc_endpoint_t *c = make_ep("tm-1", "taskmanager", SECRET, 0, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512], want[128];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), SL_ECONNREFUSED);
    snprintf(want, sizeof want, "connect to 127.0.0.1:%d failed: connection refused", port);
    assert_string_equal(err, want);
    assert_int_equal(sl_rpc_connect(c, "no-such-host.invalid", 6123, 5000, &conn, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "no-such-host.invalid:6123"));
    /* A black-holed address: whatever the network says (timeout or unreachable), it ends with
     * an error naming the address instead of hanging. */
    int rc = sl_rpc_connect(c, "10.255.255.1", 9, 200, &conn, err, sizeof err);
    assert_true(rc < 0);
    assert_non_null(strstr(err, "10.255.255.1:9"));
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", 0, 200, &conn, err, sizeof err), SL_EINVAL);
    sl_rpc_endpoint_destroy(c);
}

int main(void) {
    sl_log_set_level(SL_LOG_ERROR); /* refusals are logged as warnings by design */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_ok),
        cmocka_unit_test(test_wrong_secret_refused),
        cmocka_unit_test(test_wrong_version_refused),
        cmocka_unit_test(test_garbage_and_oversize_dropped),
        cmocka_unit_test(test_wrong_first_frame_refused),
        cmocka_unit_test(test_silent_peer_times_out),
        cmocka_unit_test(test_server_without_secret_refused),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_connect_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
