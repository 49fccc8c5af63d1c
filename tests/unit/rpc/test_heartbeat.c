/* Heartbeats (src/rpc/heartbeat.c) over real sockets: a monitored peer's answers carry the
 * payload it supplies and keep it alive; a peer whose loop stops answering (connection still
 * open) and a peer whose endpoint stopped (connection closed) are each reported lost exactly
 * once, with their id and address; unmonitor and destroy stop reporting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "rpc/heartbeat.h"
#include "rpc/rpc.h"

#define SECRET "cluster-secret"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int payloads;
    char last_payload[64];
    int lost;
    char lost_id[64];
    char lost_addr[64];
    int blocked; /* the TaskManager's handler holds its loop while set */
} events_t;

static events_t E;

static void reset(void) {
    pthread_mutex_lock(&E.mu);
    E.payloads = E.lost = E.blocked = 0;
    E.last_payload[0] = E.lost_id[0] = E.lost_addr[0] = '\0';
    pthread_mutex_unlock(&E.mu);
}

/* TaskManager side: a slot report as heartbeat payload. */
static void tm_payload(void *arg, uint8_t **data, size_t *len) {
    *data = (uint8_t *)sl_strdup("slots=4 free=3");
    *len = strlen("slots=4 free=3");
}

/* A one-way message blocks the TaskManager's loop until the test releases it: it stops
 * answering heartbeats while its connection stays open. */
static void tm_handler(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg, void *arg) {
    pthread_mutex_lock(&E.mu);
    E.blocked = 1;
    pthread_cond_broadcast(&E.cv);
    while (E.blocked)
        pthread_cond_wait(&E.cv, &E.mu);
    pthread_mutex_unlock(&E.mu);
    sl_rpc_request_discard(req);
}

static void on_payload(void *arg, const char *peer_id, const uint8_t *p, size_t len) {
    pthread_mutex_lock(&E.mu);
    E.payloads++;
    snprintf(E.last_payload, sizeof E.last_payload, "%s:%.*s", peer_id, (int)len, (const char *)p);
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
}

static void on_lost(void *arg, const char *peer_id, const char *peer_addr) {
    pthread_mutex_lock(&E.mu);
    E.lost++;
    snprintf(E.lost_id, sizeof E.lost_id, "%s", peer_id);
    snprintf(E.lost_addr, sizeof E.lost_addr, "%s", peer_addr);
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
}

static int wait_for(int *field, int n) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10; /* safety net only */
    pthread_mutex_lock(&E.mu);
    int rc = 0;
    while (*field < n && rc == 0)
        rc = pthread_cond_timedwait(&E.cv, &E.mu, &dl);
    int v = *field;
    pthread_mutex_unlock(&E.mu);
    return v;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct {
    sl_rpc_endpoint_t *tm, *rm;
    sl_rpc_conn_t *conn; /* rm -> tm */
    sl_heartbeat_t *hb;
    int port;
} cluster_t;

static void cluster_open(cluster_t *c) {
    reset();
    sl_rpc_endpoint_config_t tm = {.id = "tm-1", .role = "taskmanager", .secret = (const uint8_t *)SECRET,
                                   .secret_len = strlen(SECRET), .handler = tm_handler,
                                   .heartbeat_payload = tm_payload};
    assert_int_equal(sl_rpc_endpoint_create(&tm, &c->tm), 0);
    assert_int_equal(sl_rpc_endpoint_start(c->tm), 0);
    char err[512];
    assert_int_equal(sl_rpc_listen(c->tm, "127.0.0.1", 0, &c->port, err, sizeof err), 0);
    sl_rpc_endpoint_config_t rm = tm;
    rm.id = "rm";
    rm.role = "resourcemanager";
    rm.handler = NULL;
    rm.heartbeat_payload = NULL;
    assert_int_equal(sl_rpc_endpoint_create(&rm, &c->rm), 0);
    assert_int_equal(sl_rpc_endpoint_start(c->rm), 0);
    assert_int_equal(sl_rpc_connect(c->rm, "127.0.0.1", c->port, 5000, &c->conn, err, sizeof err), 0);
    sl_heartbeat_config_t hc = {.interval_ms = 30, .timeout_ms = 200, .on_lost = on_lost,
                                .on_payload = on_payload};
    assert_int_equal(sl_heartbeat_create(c->rm, &hc, &c->hb), 0);
    assert_int_equal(sl_heartbeat_monitor(c->hb, "tm-1", c->conn), 0);
    assert_int_equal(sl_heartbeat_monitor(c->hb, "tm-1", c->conn), SL_EEXIST);
}

static void cluster_close(cluster_t *c) {
    sl_heartbeat_destroy(c->hb);
    sl_rpc_conn_close(c->conn);
    sl_rpc_endpoint_destroy(c->rm);
    sl_rpc_endpoint_destroy(c->tm);
}

static void expect_lost_once(cluster_t *c) {
    assert_int_equal(wait_for(&E.lost, 1), 1);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", c->port);
    pthread_mutex_lock(&E.mu);
    assert_string_equal(E.lost_id, "tm-1");
    assert_string_equal(E.lost_addr, addr);
    pthread_mutex_unlock(&E.mu);
    sleep_ms(400); /* two more timeouts: still reported only once */
    pthread_mutex_lock(&E.mu);
    assert_int_equal(E.lost, 1);
    pthread_mutex_unlock(&E.mu);
}

static void test_payload_then_loss_on_stop(void **state) {
    cluster_t c;
    cluster_open(&c);
    assert_true(wait_for(&E.payloads, 3) >= 3);
    pthread_mutex_lock(&E.mu);
    assert_string_equal(E.last_payload, "tm-1:slots=4 free=3");
    assert_int_equal(E.lost, 0); /* answered heartbeats: never lost */
    pthread_mutex_unlock(&E.mu);
    sl_rpc_endpoint_stop(c.tm);
    expect_lost_once(&c);
    cluster_close(&c);
}

static void test_loss_when_peer_stops_answering(void **state) {
    cluster_t c;
    cluster_open(&c);
    assert_true(wait_for(&E.payloads, 1) >= 1);
    Sluice__Rpc__Ack ack = SLUICE__RPC__ACK__INIT;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    assert_int_equal(sl_rpc_send(c.conn, &env), 0); /* blocks the TaskManager's loop */
    assert_int_equal(wait_for(&E.blocked, 1), 1);
    expect_lost_once(&c);
    /* Released, it answers again: healthy, payloads flow. */
    pthread_mutex_lock(&E.mu);
    E.blocked = 0;
    int before = E.payloads;
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
    assert_true(wait_for(&E.payloads, before + 2) >= before + 2);
    cluster_close(&c);
}

static void test_unmonitor_stops_reports(void **state) {
    cluster_t c;
    cluster_open(&c);
    assert_int_equal(sl_heartbeat_unmonitor(c.hb, "tm-1"), 0);
    assert_int_equal(sl_heartbeat_unmonitor(c.hb, "tm-1"), SL_ENOENT);
    sl_rpc_endpoint_stop(c.tm);
    sleep_ms(400); /* twice the timeout: nothing reported for an unmonitored peer */
    pthread_mutex_lock(&E.mu);
    assert_int_equal(E.lost, 0);
    pthread_mutex_unlock(&E.mu);
    sl_heartbeat_config_t bad = {.interval_ms = 100, .timeout_ms = 50, .on_lost = on_lost};
    sl_heartbeat_t *hb;
    assert_int_equal(sl_heartbeat_create(c.rm, &bad, &hb), SL_EINVAL);
    cluster_close(&c);
}

int main(void) {
    pthread_mutex_init(&E.mu, NULL);
    pthread_cond_init(&E.cv, NULL);
    sl_log_set_level(SL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payload_then_loss_on_stop),
        cmocka_unit_test(test_loss_when_peer_stops_answering),
        cmocka_unit_test(test_unmonitor_stops_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
