/* TLS on the control plane (src/rpc/tls.c, conn.c) over real sockets on 127.0.0.1, with a CA
 * and certificates made by the openssl command at test time (tls_certs.h): calls work over
 * mutual TLS and a plain TCP proxy in between never sees a known payload (while it does see it
 * without TLS); the shared secret is still checked inside TLS; a plain client and a TLS server,
 * a TLS client and a plain server, untrusted certificates either way and garbage all fail that
 * connection with a reason while the server keeps serving; context errors name the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/config.h"
#include "rpc/rpc.h"
#include "rpc/tls.h"
#include "unit/rpc/tls_certs.h"

#define SECRET "cluster-secret"
#define CANARY "sluice-canary-payload-7f3a9"

static tls_certs_t certs;

static int setup(void **state) {
    if (tls_certs_make(&certs) != 0) {
        fprintf(stderr, "cannot make test certificates with the openssl command\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    tls_certs_remove(&certs);
    return 0;
}

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

static sl_rpc_endpoint_t *make_ep(const char *id, const char *secret, sl_tls_ctx_t *tls, uint32_t handshake_ms) {
    sl_rpc_endpoint_config_t cfg = {.id = id, .role = "taskmanager", .secret = (const uint8_t *)secret,
                                    .secret_len = strlen(secret), .handshake_timeout_ms = handshake_ms,
                                    .handler = echo_handler, .tls = tls};
    sl_rpc_endpoint_t *ep;
    assert_int_equal(sl_rpc_endpoint_create(&cfg, &ep), 0);
    assert_int_equal(sl_rpc_endpoint_start(ep), 0);
    return ep;
}

static sl_rpc_endpoint_t *make_server(sl_tls_ctx_t *tls, int *port, uint32_t handshake_ms) {
    sl_rpc_endpoint_t *ep = make_ep("rm-1", SECRET, tls, handshake_ms);
    char err[256];
    assert_int_equal(sl_rpc_listen(ep, "127.0.0.1", 0, port, err, sizeof err), 0);
    return ep;
}

static void echo_ok(sl_rpc_conn_t *conn, const char *payload) {
    size_t len = strlen(payload);
    Sluice__Rpc__Echo e = SLUICE__RPC__ECHO__INIT;
    e.data.data = (uint8_t *)payload;
    e.data.len = len;
    sl_rpc_msg_t req = SLUICE__RPC__ENVELOPE__INIT;
    req.body_case = SLUICE__RPC__ENVELOPE__BODY_ECHO;
    req.echo = &e;
    sl_rpc_msg_t *resp = NULL;
    assert_int_equal(sl_rpc_call_sync(conn, &req, 5000, &resp), 0);
    assert_int_equal(resp->body_case, SLUICE__RPC__ENVELOPE__BODY_ECHO);
    assert_int_equal(resp->echo->data.len, len);
    assert_memory_equal(resp->echo->data.data, payload, len);
    sl_rpc_msg_free(resp);
}

/* Connects with its own endpoint and makes a call: the server still serves. */
static void good_client_works(sl_tls_ctx_t *tls, int port) {
    sl_rpc_endpoint_t *c = make_ep("tm-ok", SECRET, tls, 0);
    sl_rpc_conn_t *conn;
    char err[512];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), 0);
    echo_ok(conn, "ping");
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(c);
}

/* ---- a plain TCP proxy that records every byte it forwards ---- */

typedef struct {
    int lfd;
    int target_port;
    pthread_t th;
    pthread_mutex_t mu;
    char *cap;
    size_t caplen;
} proxy_t;

static void capture(proxy_t *p, const char *b, size_t n) {
    pthread_mutex_lock(&p->mu);
    size_t room = (1u << 20) - p->caplen;
    if (n > room)
        n = room;
    memcpy(p->cap + p->caplen, b, n);
    p->caplen += n;
    pthread_mutex_unlock(&p->mu);
}

static void *proxy_main(void *arg) {
    proxy_t *p = arg;
    int a = accept(p->lfd, NULL, NULL);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->target_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (a < 0 || connect(b, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    struct pollfd fds[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    char buf[65536];
    for (;;) {
        if (poll(fds, 2, 10000) <= 0)
            break;
        int from = (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) ? 0 : 1;
        ssize_t n = read(fds[from].fd, buf, sizeof buf);
        if (n <= 0)
            break;
        capture(p, buf, (size_t)n);
        if (write(fds[1 - from].fd, buf, (size_t)n) != n)
            break;
    }
out:
    if (a >= 0)
        close(a);
    close(b);
    return NULL;
}

static int proxy_start(proxy_t *p, int target_port) {
    memset(p, 0, sizeof *p);
    p->cap = malloc(1u << 20);
    pthread_mutex_init(&p->mu, NULL);
    p->target_port = target_port;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(p->lfd, 1), 0);
    socklen_t len = sizeof sa;
    getsockname(p->lfd, (struct sockaddr *)&sa, &len);
    assert_int_equal(pthread_create(&p->th, NULL, proxy_main, p), 0);
    return ntohs(sa.sin_port);
}

/* Waits for the proxied connection to end; the capture stays until free(p->cap). */
static void proxy_join(proxy_t *p) {
    pthread_join(p->th, NULL);
    close(p->lfd);
    pthread_mutex_destroy(&p->mu);
}

static void test_tls_calls_encrypted(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    assert_non_null(tls);
    for (int with_tls = 0; with_tls <= 1; with_tls++) {
        int port;
        sl_rpc_endpoint_t *s = make_server(with_tls ? tls : NULL, &port, 0);
        proxy_t p;
        int pport = proxy_start(&p, port);
        sl_rpc_endpoint_t *c = make_ep("tm-1", SECRET, with_tls ? tls : NULL, 0);
        sl_rpc_conn_t *conn = NULL;
        char err[512];
        assert_int_equal(sl_rpc_connect(c, "127.0.0.1", pport, 5000, &conn, err, sizeof err), 0);
        assert_string_equal(sl_rpc_conn_peer_id(conn), "rm-1");
        for (int i = 0; i < 50; i++)
            echo_ok(conn, CANARY);
        sl_rpc_conn_close(conn);
        sl_rpc_endpoint_destroy(c);
        sl_rpc_endpoint_destroy(s);
        proxy_join(&p);
        int seen = memmem(p.cap, p.caplen, CANARY, strlen(CANARY)) != NULL;
        /* Also the server's id from HELLO, which is plaintext without TLS. */
        int id_seen = memmem(p.cap, p.caplen, "rm-1", 4) != NULL;
        size_t caplen = p.caplen;
        free(p.cap);
        assert_true(caplen > 50 * strlen(CANARY));
        if (with_tls) {
            assert_false(seen);
            assert_false(id_seen);
        } else {
            assert_true(seen); /* the capture works: without TLS the payload is in clear */
            assert_true(id_seen);
        }
    }
    sl_tls_ctx_destroy(tls);
}

/* TLS does not replace the shared secret: a TLS peer with the wrong secret is still refused. */
static void test_tls_wrong_secret_refused(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    int port;
    sl_rpc_endpoint_t *s = make_server(tls, &port, 0);
    sl_rpc_endpoint_t *c = make_ep("tm-bad", "not-the-secret", tls, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), SL_EAUTH);
    assert_non_null(strstr(err, "wrong shared secret"));
    sl_rpc_endpoint_destroy(c);
    good_client_works(tls, port);
    sl_rpc_endpoint_destroy(s);
    sl_tls_ctx_destroy(tls);
}

static void test_plain_client_tls_server(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    int port;
    sl_rpc_endpoint_t *s = make_server(tls, &port, 300);
    sl_rpc_endpoint_t *c = make_ep("tm-plain", SECRET, NULL, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512], addr[64];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), SL_EPROTO);
    assert_null(conn);
    assert_non_null(strstr(err, "this endpoint requires TLS (security.ssl.internal.enabled)"));
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_non_null(strstr(err, addr));
    sl_rpc_endpoint_destroy(c);
    good_client_works(tls, port);
    sl_rpc_endpoint_destroy(s);
    sl_tls_ctx_destroy(tls);
}

static void test_tls_client_plain_server(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    int port;
    sl_rpc_endpoint_t *s = make_server(NULL, &port, 0);
    sl_rpc_endpoint_t *c = make_ep("tm-tls", SECRET, tls, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512], addr[64];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), SL_EPROTO);
    assert_null(conn);
    assert_non_null(strstr(err, "the peer speaks plain text, not TLS"));
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_non_null(strstr(err, addr));
    sl_rpc_endpoint_destroy(c);
    good_client_works(NULL, port);
    sl_rpc_endpoint_destroy(s);
    sl_tls_ctx_destroy(tls);
}

/* A plain server that is sent a ClientHello says why it refuses (seen with a raw socket). */
static void test_plain_server_names_tls(void **state) {
    int port;
    sl_rpc_endpoint_t *s = make_server(NULL, &port, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const uint8_t hello[] = {22, 3, 1, 0, 5, 1, 0, 0, 1, 0};
    assert_int_equal(write(fd, hello, sizeof hello), (ssize_t)sizeof hello);
    char buf[4096];
    size_t have = 0;
    ssize_t n;
    while (have < sizeof buf - 1 && (n = read(fd, buf + have, sizeof buf - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    close(fd);
    /* HELLO, then an ERROR frame whose message says what happened. */
    assert_non_null(memmem(buf, have, "TLS is not enabled on this endpoint", 35));
    good_client_works(NULL, port);
    sl_rpc_endpoint_destroy(s);
}

static void test_untrusted_client_cert(void **state) {
    sl_tls_ctx_t *good = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    /* Presents a certificate of the rogue CA, trusts the real one. */
    sl_tls_ctx_t *rogue = tls_ctx(&certs, TC_ROGUE, TC_ROGUE_KEY, TC_CA);
    assert_non_null(good);
    assert_non_null(rogue);
    int port;
    sl_rpc_endpoint_t *s = make_server(good, &port, 0);
    sl_rpc_endpoint_t *c = make_ep("tm-rogue", SECRET, rogue, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512];
    int rc = sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err);
    assert_true(rc < 0);
    assert_null(conn);
    assert_non_null(strstr(err, "TLS"));
    assert_non_null(strstr(err, "alert"));
    sl_rpc_endpoint_destroy(c);
    good_client_works(good, port);
    sl_rpc_endpoint_destroy(s);
    sl_tls_ctx_destroy(rogue);
    sl_tls_ctx_destroy(good);
}

static void test_untrusted_server_cert(void **state) {
    sl_tls_ctx_t *good = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    sl_tls_ctx_t *rogue = tls_ctx(&certs, TC_ROGUE, TC_ROGUE_KEY, TC_CA);
    int port;
    sl_rpc_endpoint_t *s = make_server(rogue, &port, 0);
    sl_rpc_endpoint_t *c = make_ep("tm-1", SECRET, good, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 5000, &conn, err, sizeof err), SL_EPROTO);
    assert_non_null(strstr(err, "the peer's certificate was rejected"));
    sl_rpc_endpoint_destroy(c);
    sl_rpc_endpoint_destroy(s);
    sl_tls_ctx_destroy(rogue);
    sl_tls_ctx_destroy(good);
}

/* Garbage instead of a ClientHello: that connection is dropped, the server goes on. */
static void test_tls_garbage(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    int port;
    sl_rpc_endpoint_t *s = make_server(tls, &port, 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, junk, strlen(junk)), (ssize_t)strlen(junk));
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    assert_int_equal(n, 0); /* closed by the server (a timeout would be -1) */
    close(fd);
    good_client_works(tls, port);
    sl_rpc_endpoint_destroy(s);
    sl_tls_ctx_destroy(tls);
}

static void expect_ctx_error(const char *cert, const char *key, const char *ca, int code, const char *what,
                             const char *file) {
    sl_tls_config_t tc = {.keystore = cert, .key = key, .truststore = ca};
    sl_tls_ctx_t *ctx = NULL;
    char err[1024];
    assert_int_equal(sl_tls_ctx_create(&tc, &ctx, err, sizeof err), code);
    assert_null(ctx);
    if (!strstr(err, what) || !strstr(err, file))
        fail_msg("unexpected message: %s", err);
}

static void test_ctx_errors(void **state) {
    tls_certs_t *t = &certs;
    const char *node = tc_path(t, TC_NODE), *key = tc_path(t, TC_NODE_KEY), *ca = tc_path(t, TC_CA);
    const char *garbage = tc_path(t, TC_GARBAGE), *rogue_key = tc_path(t, TC_ROGUE_KEY);
    char missing[600];
    snprintf(missing, sizeof missing, "%.300s/nope.pem", t->dir);
    expect_ctx_error(missing, key, ca, SL_ENOENT, "security.ssl.internal.keystore", missing);
    expect_ctx_error(node, missing, ca, SL_ENOENT, "cannot read", missing);
    expect_ctx_error(node, key, missing, SL_ENOENT, "security.ssl.internal.truststore", missing);
    expect_ctx_error(garbage, key, ca, SL_ECONFIG, "not a PEM certificate", garbage);
    expect_ctx_error(node, garbage, ca, SL_ECONFIG, "not an unencrypted PEM private key", garbage);
    expect_ctx_error(node, node, ca, SL_ECONFIG, "private key", node);
    expect_ctx_error(node, rogue_key, ca, SL_ECONFIG, "does not match the certificate", rogue_key);
    expect_ctx_error(node, key, garbage, SL_ECONFIG, "no PEM CA certificate", garbage);
    expect_ctx_error(node, key, "", SL_ECONFIG, "security.ssl.internal.truststore is not set", "");

    /* From the configuration: disabled gives no context; enabled needs the three files. */
    sl_config_t *c;
    char err[1024];
    sl_tls_ctx_t *ctx = (sl_tls_ctx_t *)&ctx;
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_tls_ctx_from_config(c, &ctx, err, sizeof err), 0);
    assert_null(ctx);
    assert_int_equal(sl_config_set(c, "security.ssl.internal.enabled", "true", err, sizeof err), 0);
    assert_int_equal(sl_tls_ctx_from_config(c, &ctx, err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "security.ssl.internal.keystore is not set"));
    assert_int_equal(sl_config_set(c, "security.ssl.internal.keystore", node, err, sizeof err), 0);
    assert_int_equal(sl_config_set(c, "security.ssl.internal.key", key, err, sizeof err), 0);
    assert_int_equal(sl_config_set(c, "security.ssl.internal.truststore", ca, err, sizeof err), 0);
    assert_int_equal(sl_tls_ctx_from_config(c, &ctx, err, sizeof err), 0);
    assert_non_null(ctx);
    sl_tls_ctx_destroy(ctx);
    sl_config_destroy(c);
}

/* Endpoints created without a context use the process default. */
static void test_process_default(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    sl_tls_set_default(tls);
    sl_tls_ctx_destroy(tls); /* the default holds its own reference */
    int port;
    sl_rpc_endpoint_t *s = make_server(NULL, &port, 0);
    sl_tls_set_default(NULL);
    /* A plain client is now refused by the (TLS) server. */
    sl_rpc_endpoint_t *c = make_ep("tm-plain", SECRET, NULL, 0);
    sl_rpc_conn_t *conn = NULL;
    char err[512];
    assert_int_equal(sl_rpc_connect(c, "127.0.0.1", port, 3000, &conn, err, sizeof err), SL_ETIMEDOUT);
    assert_non_null(strstr(err, "does it require TLS?"));
    sl_rpc_endpoint_destroy(c);
    sl_rpc_endpoint_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_calls_encrypted),
        cmocka_unit_test(test_tls_wrong_secret_refused),
        cmocka_unit_test(test_plain_client_tls_server),
        cmocka_unit_test(test_tls_client_plain_server),
        cmocka_unit_test(test_plain_server_names_tls),
        cmocka_unit_test(test_untrusted_client_cert),
        cmocka_unit_test(test_untrusted_server_cert),
        cmocka_unit_test(test_tls_garbage),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_process_default),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
