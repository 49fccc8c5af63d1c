/* Request / response and one-way messages over real sockets (src/rpc/call.c): many concurrent
 * calls from several threads each get their own answer; pipelined async calls all complete;
 * a handler that never replies gives SL_ETIMEDOUT; a reply from another thread, later, arrives;
 * Error answers carry their code and message; a connection closed mid-call (by either side, or
 * by stopping an endpoint) fails the call with SL_ECANCELED; one-way messages reach the
 * handler; and the server can call the client back over the connection the client opened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "rpc/rpc.h"

#define SECRET "cluster-secret"

/* What the server handler does with requests, chosen by the Echo payload's first byte:
 * 'e' echo, 'n' never answer (kept in `parked`), 'x' answer an Error, 'c' call the client back. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sl_rpc_request_t *parked;
    sl_rpc_conn_t *parked_conn; /* a reference */
    int oneways;
} server_state_t;

static server_state_t S = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0};

static void reply_echo(sl_rpc_request_t *req, ProtobufCBinaryData data) {
    Sluice__Rpc__Echo e = SLUICE__RPC__ECHO__INIT;
    e.data = data;
    sl_rpc_msg_t resp = SLUICE__RPC__ENVELOPE__INIT;
    resp.body_case = SLUICE__RPC__ENVELOPE__BODY_ECHO;
    resp.echo = &e;
    sl_rpc_reply(req, &resp);
}

static void handler(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg, void *arg) {
    pthread_mutex_lock(&S.mu);
    if (!req) {
        S.oneways++;
        if (!S.parked_conn) {
            sl_rpc_conn_ref(conn);
            S.parked_conn = conn;
        }
        pthread_cond_broadcast(&S.cv);
        pthread_mutex_unlock(&S.mu);
        return;
    }
    char op = msg->body_case == SLUICE__RPC__ENVELOPE__BODY_ECHO && msg->echo->data.len ? (char)msg->echo->data.data[0] : 'e';
    if (op == 'n') {
        S.parked = req;
        if (!S.parked_conn) { /* the first connection that parked a request */
            sl_rpc_conn_ref(conn);
            S.parked_conn = conn;
        }
        pthread_cond_broadcast(&S.cv);
        pthread_mutex_unlock(&S.mu);
        return;
    }
    pthread_mutex_unlock(&S.mu);
    if (op == 'x')
        sl_rpc_reply_error(req, SL_ENOSLOT, "no slot for job-7");
    else
        reply_echo(req, msg->echo->data);
}

static sl_rpc_endpoint_t *make_ep(const char *id, const char *role) {
    sl_rpc_endpoint_config_t cfg = {.id = id, .role = role, .secret = (const uint8_t *)SECRET,
                                    .secret_len = strlen(SECRET), .handler = handler};
    sl_rpc_endpoint_t *ep;
    assert_int_equal(sl_rpc_endpoint_create(&cfg, &ep), 0);
    assert_int_equal(sl_rpc_endpoint_start(ep), 0);
    return ep;
}

typedef struct {
    sl_rpc_endpoint_t *server, *client;
    sl_rpc_conn_t *conn;
} pair_t;

static void pair_open(pair_t *p) {
    p->server = make_ep("jm-1", "jobmanager");
    int port;
    char err[512];
    assert_int_equal(sl_rpc_listen(p->server, "127.0.0.1", 0, &port, err, sizeof err), 0);
    p->client = make_ep("cli", "cli");
    assert_int_equal(sl_rpc_connect(p->client, "127.0.0.1", port, 5000, &p->conn, err, sizeof err), 0);
}

static void pair_close(pair_t *p) {
    if (p->conn)
        sl_rpc_conn_close(p->conn);
    sl_rpc_endpoint_destroy(p->client);
    sl_rpc_endpoint_destroy(p->server);
    pthread_mutex_lock(&S.mu);
    if (S.parked_conn)
        sl_rpc_conn_unref(S.parked_conn);
    S.parked_conn = NULL;
    S.parked = NULL;
    S.oneways = 0;
    pthread_mutex_unlock(&S.mu);
}

static void echo_msg(sl_rpc_msg_t *env, Sluice__Rpc__Echo *e, const void *data, size_t len) {
    sluice__rpc__echo__init(e);
    e->data.data = (uint8_t *)data;
    e->data.len = len;
    sluice__rpc__envelope__init(env);
    env->body_case = SLUICE__RPC__ENVELOPE__BODY_ECHO;
    env->echo = e;
}

/* ---- concurrency ---- */

typedef struct {
    sl_rpc_conn_t *conn;
    int thread;
    int errors;
} worker_t;

static void *worker_main(void *arg) {
    worker_t *w = arg;
    for (int i = 0; i < 300; i++) {
        char data[64];
        int n = snprintf(data, sizeof data, "e-thread%d-call%d", w->thread, i);
        Sluice__Rpc__Echo e;
        sl_rpc_msg_t env;
        echo_msg(&env, &e, data, (size_t)n);
        sl_rpc_msg_t *resp = NULL;
        int rc = sl_rpc_call_sync(w->conn, &env, 5000, &resp);
        if (rc != 0 || resp->echo->data.len != (size_t)n || memcmp(resp->echo->data.data, data, (size_t)n))
            w->errors++;
        sl_rpc_msg_free(resp);
    }
    return NULL;
}

static void test_concurrent_calls_from_threads(void **state) {
    pair_t p;
    pair_open(&p);
    worker_t w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){p.conn, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    pair_close(&p);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int bad;
    int status;
    int expected;
} counter_t;

static void count_cb(int status, sl_rpc_msg_t *resp, void *arg) {
    counter_t *c = arg;
    pthread_mutex_lock(&c->mu);
    if (status != c->expected)
        c->bad++;
    c->status = status;
    c->done++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    sl_rpc_msg_free(resp);
}

static void wait_count(counter_t *c, int n) {
    pthread_mutex_lock(&c->mu);
    while (c->done < n)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static void test_pipelined_async_calls(void **state) {
    pair_t p;
    pair_open(&p);
    counter_t c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};
    for (int i = 0; i < 1000; i++) {
        Sluice__Rpc__Echo e;
        sl_rpc_msg_t env;
        echo_msg(&env, &e, "e", 1);
        assert_int_equal(sl_rpc_call(p.conn, &env, 10000, count_cb, &c), 0);
    }
    wait_count(&c, 1000);
    assert_int_equal(c.bad, 0);
    pair_close(&p);
}

/* ---- timeouts, late replies, errors ---- */

static void test_handler_never_replies_times_out(void **state) {
    pair_t p;
    pair_open(&p);
    Sluice__Rpc__Echo e;
    sl_rpc_msg_t env;
    echo_msg(&env, &e, "n", 1);
    sl_rpc_msg_t *resp = (sl_rpc_msg_t *)&p; /* must be reset to NULL */
    assert_int_equal(sl_rpc_call_sync(p.conn, &env, 100, &resp), SL_ETIMEDOUT);
    assert_null(resp);
    /* A reply after the timeout is dropped quietly, and the connection still works. */
    pthread_mutex_lock(&S.mu);
    sl_rpc_request_t *req = S.parked;
    S.parked = NULL;
    pthread_mutex_unlock(&S.mu);
    assert_non_null(req);
    Sluice__Rpc__Echo late = SLUICE__RPC__ECHO__INIT;
    sl_rpc_msg_t lenv = SLUICE__RPC__ENVELOPE__INIT;
    lenv.body_case = SLUICE__RPC__ENVELOPE__BODY_ECHO;
    lenv.echo = &late;
    assert_int_equal(sl_rpc_reply(req, &lenv), 0);
    echo_msg(&env, &e, "e2", 2);
    assert_int_equal(sl_rpc_call_sync(p.conn, &env, 5000, &resp), 0);
    assert_memory_equal(resp->echo->data.data, "e2", 2);
    sl_rpc_msg_free(resp);
    pair_close(&p);
}

typedef struct {
    sl_rpc_conn_t *conn;
    int rc;
    sl_rpc_msg_t *resp;
} sync_call_t;

static void *call_parked(void *arg) {
    sync_call_t *s = arg;
    Sluice__Rpc__Echo e;
    sl_rpc_msg_t env;
    echo_msg(&env, &e, "n", 1);
    s->rc = sl_rpc_call_sync(s->conn, &env, 0, &s->resp);
    return NULL;
}

static sl_rpc_request_t *wait_parked(void) {
    pthread_mutex_lock(&S.mu);
    while (!S.parked)
        pthread_cond_wait(&S.cv, &S.mu);
    sl_rpc_request_t *r = S.parked;
    S.parked = NULL;
    pthread_mutex_unlock(&S.mu);
    return r;
}

static void test_reply_later_from_another_thread(void **state) {
    pair_t p;
    pair_open(&p);
    sync_call_t s = {p.conn, -1, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_parked, &s), 0);
    sl_rpc_request_t *req = wait_parked();
    assert_ptr_equal(sl_rpc_request_conn(req), S.parked_conn);
    reply_echo(req, (ProtobufCBinaryData){5, (uint8_t *)"later"});
    pthread_join(t, NULL);
    assert_int_equal(s.rc, 0);
    assert_memory_equal(s.resp->echo->data.data, "later", 5);
    sl_rpc_msg_free(s.resp);
    pair_close(&p);
}

static void test_error_reply(void **state) {
    pair_t p;
    pair_open(&p);
    Sluice__Rpc__Echo e;
    sl_rpc_msg_t env;
    echo_msg(&env, &e, "x", 1);
    sl_rpc_msg_t *resp = NULL;
    assert_int_equal(sl_rpc_call_sync(p.conn, &env, 5000, &resp), SL_ENOSLOT);
    assert_non_null(resp);
    assert_int_equal(resp->body_case, SLUICE__RPC__ENVELOPE__BODY_ERROR);
    assert_string_equal(resp->error->message, "no slot for job-7");
    sl_rpc_msg_free(resp);
    /* A request without a body is refused before it leaves. */
    sl_rpc_msg_t empty = SLUICE__RPC__ENVELOPE__INIT;
    assert_int_equal(sl_rpc_call_sync(p.conn, &empty, 5000, &resp), SL_EINVAL);
    pair_close(&p);
}

/* ---- connection closed mid-call ---- */

static void test_server_closes_mid_call(void **state) {
    pair_t p;
    pair_open(&p);
    sync_call_t s = {p.conn, -1, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_parked, &s), 0);
    sl_rpc_request_t *req = wait_parked();
    pthread_mutex_lock(&S.mu);
    sl_rpc_conn_t *server_side = S.parked_conn;
    S.parked_conn = NULL;
    pthread_mutex_unlock(&S.mu);
    sl_rpc_conn_close(server_side);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, SL_ECANCELED);
    assert_null(s.resp);
    /* Replying on a closed connection is harmless. */
    sl_rpc_reply_error(req, SL_EIO, "too late");
    /* Calls on the closed connection fail through their callback. */
    Sluice__Rpc__Echo e;
    sl_rpc_msg_t env;
    echo_msg(&env, &e, "e", 1);
    sl_rpc_msg_t *resp;
    assert_int_equal(sl_rpc_call_sync(p.conn, &env, 5000, &resp), SL_ECANCELED);
    pair_close(&p);
}

static void test_client_closes_and_stop_cancel_calls(void **state) {
    pair_t p;
    pair_open(&p);
    counter_t c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, SL_ECANCELED};
    Sluice__Rpc__Echo e;
    sl_rpc_msg_t env;
    echo_msg(&env, &e, "n", 1);
    assert_int_equal(sl_rpc_call(p.conn, &env, 0, count_cb, &c), 0);
    sl_rpc_request_discard(wait_parked());
    sl_rpc_conn_close(p.conn);
    p.conn = NULL;
    wait_count(&c, 1);
    assert_int_equal(c.bad, 0);

    /* Stopping the endpoint cancels a pending call too, and later calls fail directly. */
    char err[512];
    int port;
    sl_rpc_endpoint_t *s2 = make_ep("jm-2", "jobmanager");
    assert_int_equal(sl_rpc_listen(s2, "127.0.0.1", 0, &port, err, sizeof err), 0);
    sl_rpc_conn_t *conn;
    assert_int_equal(sl_rpc_connect(p.client, "127.0.0.1", port, 5000, &conn, err, sizeof err), 0);
    echo_msg(&env, &e, "n", 1);
    assert_int_equal(sl_rpc_call(conn, &env, 0, count_cb, &c), 0);
    sl_rpc_request_discard(wait_parked());
    sl_rpc_endpoint_stop(p.client);
    wait_count(&c, 2);
    assert_int_equal(c.bad, 0);
    echo_msg(&env, &e, "e", 1);
    assert_int_equal(sl_rpc_call(conn, &env, 0, count_cb, &c), SL_ECANCELED);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(s2);
    pair_close(&p);
}

/* ---- one-way and calls from the accepting side ---- */

static void test_oneway_and_call_back(void **state) {
    pair_t p;
    pair_open(&p);
    Sluice__Rpc__Disconnect d = SLUICE__RPC__DISCONNECT__INIT;
    d.reason = "bye";
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_DISCONNECT;
    env.disconnect = &d;
    for (int i = 0; i < 3; i++)
        assert_int_equal(sl_rpc_send(p.conn, &env), 0);
    pthread_mutex_lock(&S.mu);
    while (S.oneways < 3)
        pthread_cond_wait(&S.cv, &S.mu);
    sl_rpc_conn_t *back = S.parked_conn;
    pthread_mutex_unlock(&S.mu);
    /* The server calls the client over the connection the client opened (RM -> TM). */
    assert_string_equal(sl_rpc_conn_peer_id(back), "cli");
    assert_string_equal(sl_rpc_conn_peer_role(back), "cli");
    Sluice__Rpc__Echo e;
    sl_rpc_msg_t req;
    echo_msg(&req, &e, "e-back", 6);
    sl_rpc_msg_t *resp;
    assert_int_equal(sl_rpc_call_sync(back, &req, 5000, &resp), 0);
    assert_memory_equal(resp->echo->data.data, "e-back", 6);
    sl_rpc_msg_free(resp);
    pair_close(&p);
}

int main(void) {
    sl_log_set_level(SL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_calls_from_threads),
        cmocka_unit_test(test_pipelined_async_calls),
        cmocka_unit_test(test_handler_never_replies_times_out),
        cmocka_unit_test(test_reply_later_from_another_thread),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_server_closes_mid_call),
        cmocka_unit_test(test_client_closes_and_stop_cancel_calls),
        cmocka_unit_test(test_oneway_and_call_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
