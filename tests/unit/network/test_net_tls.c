/* TLS on the data plane (src/network/net_conn.c over src/rpc/tls.c): connections between a
 * TLS and a plain TaskManager, with an untrusted certificate, or carrying garbage fail with a
 * reason naming the peer, and the service stays up. (Exact delivery over TLS is
 * test_net_channels.c's transfer test, run again with TLS.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "network/net.h"
#include "unit/rpc/tls_certs.h"

#define SECRET "s3cret-cluster"

static tls_certs_t certs;

static int setup(void **state) {
    return tls_certs_make(&certs);
}

static int teardown(void **state) {
    tls_certs_remove(&certs);
    return 0;
}

static sl_net_t *start_tm(const char *id, sl_tls_ctx_t *tls, uint32_t timeout_ms) {
    sl_net_config_t cfg = {.id = id, .secret = (const uint8_t *)SECRET, .secret_len = strlen(SECRET),
                           .connect_timeout_ms = timeout_ms, .tls = tls};
    sl_net_t *net = NULL;
    char err[256];
    assert_int_equal(sl_net_create(&cfg, &net, err, sizeof err), 0);
    return net;
}

typedef struct {
    sl_network_memory_t nm;
    sl_mailbox_t mb;
    sl_channel_t ch;
    sl_buffer_pool_t *pool;
    sl_net_channel_t *h;
} sink_t;

/* Imports channel 7 of `peer` into `net` and waits for the channel to fail; returns its code
 * with the message in msg. */
static int import_fails(sl_net_t *net, sl_net_t *peer, char *msg, size_t len) {
    static sink_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(sl_network_memory_init(&s.nm, 1u << 20, 4096), 0);
    assert_int_equal(sl_mailbox_init(&s.mb), 0);
    assert_int_equal(sl_buffer_pool_create(&s.nm, 2, &s.pool), 0);
    assert_int_equal(sl_channel_init(&s.ch, 2, sl_net_mailbox(net), &s.mb, 0, 0), 0);
    assert_int_equal(sl_net_import(net, "127.0.0.1", sl_net_port(peer), sl_net_id(peer), 7, &s.ch, s.pool, &s.h), 0);
    int64_t deadline = sl_monotonic_ms() + 10000;
    int rc;
    while ((rc = sl_net_channel_error(s.h, msg, len)) == 0 && sl_monotonic_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    sl_net_channel_close(s.h);
    sl_channel_destroy(&s.ch);
    sl_buffer_pool_destroy(s.pool);
    sl_mailbox_destroy(&s.mb);
    sl_network_memory_destroy(&s.nm);
    return rc;
}

static void expect(const char *msg, const char *what) {
    if (!strstr(msg, what))
        fail_msg("expected '%s' in: %s", what, msg);
}

static void wait_refused(sl_net_t *net, uint64_t n) {
    int64_t deadline = sl_monotonic_ms() + 5000;
    sl_net_stats_t st;
    do {
        sl_net_stats(net, &st);
    } while (st.refused < n && sl_monotonic_ms() < deadline);
    assert_true(st.refused >= n);
}

static void test_plain_dials_tls(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    sl_net_t *a = start_tm("tm-a", tls, 300), *b = start_tm("tm-b", NULL, 5000);
    char msg[512], addr[64];
    assert_int_equal(import_fails(b, a, msg, sizeof msg), SL_EPROTO);
    expect(msg, "this TaskManager requires TLS (security.ssl.internal.enabled)");
    snprintf(addr, sizeof addr, "TaskManager tm-a at 127.0.0.1:%d", sl_net_port(a));
    expect(msg, addr);
    wait_refused(a, 1);
    sl_net_destroy(a);
    sl_net_destroy(b);
    sl_tls_ctx_destroy(tls);
}

static void test_tls_dials_plain(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    sl_net_t *a = start_tm("tm-a", NULL, 5000), *b = start_tm("tm-b", tls, 5000);
    char msg[512];
    assert_int_equal(import_fails(b, a, msg, sizeof msg), SL_EPROTO);
    expect(msg, "the peer speaks plain text, not TLS");
    expect(msg, "tm-a at 127.0.0.1:");
    wait_refused(a, 1); /* "the peer started a TLS handshake, but TLS is not enabled ..." */
    sl_net_destroy(a);
    sl_net_destroy(b);
    sl_tls_ctx_destroy(tls);
}

static void test_untrusted_cert(void **state) {
    sl_tls_ctx_t *good = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    sl_tls_ctx_t *rogue = tls_ctx(&certs, TC_ROGUE, TC_ROGUE_KEY, TC_CA);
    sl_net_t *a = start_tm("tm-a", good, 5000), *b = start_tm("tm-b", rogue, 5000);
    char msg[512];
    assert_int_equal(import_fails(b, a, msg, sizeof msg), SL_EPROTO);
    expect(msg, "TLS handshake failed: the peer sent tlsv1 alert unknown ca");
    wait_refused(a, 1); /* the acceptor rejected b's certificate */
    /* And the other way round: b dials a server whose certificate it does not trust. */
    assert_int_equal(import_fails(a, b, msg, sizeof msg), SL_EPROTO);
    expect(msg, "the peer's certificate was rejected");
    sl_net_destroy(a);
    sl_net_destroy(b);
    sl_tls_ctx_destroy(rogue);
    sl_tls_ctx_destroy(good);
}

static void test_garbage(void **state) {
    sl_tls_ctx_t *tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    sl_net_t *a = start_tm("tm-a", tls, 5000);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)sl_net_port(a))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const uint8_t junk[64] = {0, 0, 0, 36, 2, 0xde, 0xad};
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    assert_int_equal(n, 0);
    close(fd);
    wait_refused(a, 1);
    sl_net_destroy(a);
    sl_tls_ctx_destroy(tls);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_dials_tls),
        cmocka_unit_test(test_tls_dials_plain),
        cmocka_unit_test(test_untrusted_cert),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
