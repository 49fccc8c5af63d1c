/* Asynchronous Redis client against a real redis-server (tests/helpers/redis_server.c): GET,
 * HGET, HGETALL round trips, nil and error replies, many commands from several threads each
 * answered exactly once, a server killed with commands in flight, reconnection after a
 * restart, fail-fast while disconnected, close with commands outstanding, and open errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "connectors/redis_client.h"
#include "helpers/redis_server.h"

#define WAIT_MS 5000

static sl_redis_server_t server;
static int have_server;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- One command, waited for ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int calls;
    int status;
    int type;
    long long integer;
    char str[256];
    char err[256];
    size_t elements;
    char elem[8][64];
} result_t;

static void result_init(result_t *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void result_destroy(result_t *r) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
}

/* Copies what the test checks: the reply is only borrowed for the callback. */
static void on_result(void *arg, int status, const redisReply *reply, const char *errmsg) {
    result_t *r = arg;
    pthread_mutex_lock(&r->mu);
    r->calls++;
    r->status = status;
    r->type = reply != NULL ? reply->type : -1;
    if (errmsg != NULL)
        snprintf(r->err, sizeof r->err, "%s", errmsg);
    if (reply != NULL) {
        r->integer = reply->integer;
        if (reply->str != NULL)
            snprintf(r->str, sizeof r->str, "%.*s", (int)reply->len, reply->str);
        r->elements = reply->elements;
        for (size_t i = 0; i < reply->elements && i < 8; i++)
            if (reply->element[i]->str != NULL)
                snprintf(r->elem[i], sizeof r->elem[i], "%s", reply->element[i]->str);
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void result_wait(result_t *r) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&r->mu);
    while (r->calls == 0 && pthread_cond_timedwait(&r->cond, &r->mu, &until) == 0)
        ;
    int calls = r->calls;
    pthread_mutex_unlock(&r->mu);
    assert_int_equal(calls, 1);
}

/* Runs argv (NUL-terminated strings, NULL-terminated list) and waits for its answer. */
static void run(sl_redis_client_t *c, result_t *r, const char **argv) {
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    result_destroy(r);
    result_init(r);
    assert_int_equal(sl_redis_client_command(c, argc, argv, NULL, on_result, r), 0);
    result_wait(r);
}

/* ---- Counting many commands ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    atomic_int *calls; /* per request */
    int total;
    int done;
    int ok;
    int failed;
    int status_seen; /* the status of the failures */
    char err[256];
} tally_t;

typedef struct {
    tally_t *t;
    int index;
} slot_t;

static void tally_init(tally_t *t, int total) {
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->calls = calloc((size_t)total, sizeof(atomic_int));
    t->total = total;
}

static void tally_destroy(tally_t *t) {
    free(t->calls);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
}

static void on_counted(void *arg, int status, const redisReply *reply, const char *errmsg) {
    slot_t *s = arg;
    tally_t *t = s->t;
    atomic_fetch_add(&t->calls[s->index], 1);
    pthread_mutex_lock(&t->mu);
    t->done++;
    if (status == 0) {
        t->ok++;
    } else {
        t->failed++;
        t->status_seen = status;
        snprintf(t->err, sizeof t->err, "%s", errmsg != NULL ? errmsg : "(none)");
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

/* Waits until `n` callbacks ran; returns how many did. */
static int tally_wait(tally_t *t, int n, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->mu);
    while (t->done < n && pthread_cond_timedwait(&t->cond, &t->mu, &until) == 0)
        ;
    int done = t->done;
    pthread_mutex_unlock(&t->mu);
    return done;
}

static void assert_each_once(tally_t *t) {
    for (int i = 0; i < t->total; i++)
        if (atomic_load(&t->calls[i]) != 1)
            fail_msg("request %d answered %d times", i, atomic_load(&t->calls[i]));
}

/* ---- Fixture ---- */

static int setup(void **state) {
    have_server = 0;
    if (sl_redis_server_binary() == NULL)
        return 0;
    if (sl_redis_server_start(&server) < 0)
        return -1;
    have_server = 1;
    return 0;
}

static int teardown(void **state) {
    sl_redis_server_stop(&server);
    return 0;
}

static sl_redis_client_t *open_client(const sl_redis_options_t *o) {
    if (!have_server)
        skip();
    char err[256] = "";
    sl_redis_client_t *c = NULL;
    int rc = sl_redis_client_open(server.address, o, &c, err, sizeof err);
    if (rc != 0)
        fail_msg("open %s: %s (%s)", server.address, sl_err_name(rc), err);
    return c;
}

/* ---- Tests ---- */

static void test_get_hget_hgetall(void **state) {
    sl_redis_client_t *c = open_client(NULL);
    result_t r;
    result_init(&r);
    run(c, &r, (const char *[]){"SET", "k1", "v1", NULL});
    assert_int_equal(r.status, 0);
    assert_string_equal(r.str, "OK");
    run(c, &r, (const char *[]){"GET", "k1", NULL});
    assert_int_equal(r.status, 0);
    assert_int_equal(r.type, REDIS_REPLY_STRING);
    assert_string_equal(r.str, "v1");
    run(c, &r, (const char *[]){"HSET", "h1", "a", "1", "b", "2", NULL});
    assert_int_equal(r.status, 0);
    assert_int_equal(r.integer, 2);
    run(c, &r, (const char *[]){"HGET", "h1", "b", NULL});
    assert_int_equal(r.status, 0);
    assert_string_equal(r.str, "2");
    run(c, &r, (const char *[]){"HGETALL", "h1", NULL});
    assert_int_equal(r.status, 0);
    assert_int_equal(r.type, REDIS_REPLY_ARRAY);
    assert_int_equal(r.elements, 4);
    assert_string_equal(r.elem[0], "a");
    assert_string_equal(r.elem[1], "1");
    assert_string_equal(r.elem[2], "b");
    assert_string_equal(r.elem[3], "2");
    result_destroy(&r);
    sl_redis_client_close(c);
}

static void test_binary_and_large_arguments(void **state) {
    sl_redis_client_t *c = open_client(NULL);
    /* Larger than the inline space of a request, and with NUL bytes. */
    size_t n = 100000;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 251);
    const char *argv[] = {"SET", "bin", big};
    size_t lens[] = {3, 3, n};
    result_t r;
    result_init(&r);
    assert_int_equal(sl_redis_client_command(c, 3, argv, lens, on_result, &r), 0);
    result_wait(&r);
    assert_int_equal(r.status, 0);
    run(c, &r, (const char *[]){"STRLEN", "bin", NULL});
    assert_int_equal(r.integer, (long long)n);
    free(big);
    result_destroy(&r);
    sl_redis_client_close(c);
}

static void test_nil_reply(void **state) {
    sl_redis_client_t *c = open_client(NULL);
    result_t r;
    result_init(&r);
    run(c, &r, (const char *[]){"GET", "no-such-key", NULL});
    assert_int_equal(r.status, 0);
    assert_int_equal(r.type, REDIS_REPLY_NIL);
    run(c, &r, (const char *[]){"HGETALL", "no-such-hash", NULL});
    assert_int_equal(r.status, 0);
    assert_int_equal(r.type, REDIS_REPLY_ARRAY);
    assert_int_equal(r.elements, 0);
    result_destroy(&r);
    sl_redis_client_close(c);
}

static void test_wrongtype_is_an_error(void **state) {
    sl_redis_client_t *c = open_client(NULL);
    result_t r;
    result_init(&r);
    run(c, &r, (const char *[]){"HSET", "ahash", "f", "v", NULL});
    run(c, &r, (const char *[]){"GET", "ahash", NULL});
    assert_int_equal(r.status, SL_EPROTO);
    assert_int_equal(r.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r.err, "WRONGTYPE"));
    /* The connection is still fine afterwards. */
    run(c, &r, (const char *[]){"PING", NULL});
    assert_int_equal(r.status, 0);
    assert_string_equal(r.str, "PONG");
    result_destroy(&r);
    sl_redis_client_close(c);
}

#define THREADS 4
#define PER_THREAD 5000

typedef struct {
    sl_redis_client_t *c;
    slot_t *slots;
    int first;
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    const char *argv[] = {"INCR", "counter"};
    for (int i = 0; i < PER_THREAD; i++)
        if (sl_redis_client_command(w->c, 2, argv, NULL, on_counted, &w->slots[w->first + i]) != 0)
            return (void *)1;
    return NULL;
}

static void test_concurrent_threads(void **state) {
    sl_redis_client_t *c = open_client(NULL);
    int total = THREADS * PER_THREAD;
    tally_t t;
    tally_init(&t, total);
    slot_t *slots = calloc((size_t)total, sizeof *slots);
    for (int i = 0; i < total; i++)
        slots[i] = (slot_t){&t, i};
    pthread_t th[THREADS];
    worker_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){c, slots, i * PER_THREAD};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        assert_null(rv);
    }
    assert_int_equal(tally_wait(&t, total, WAIT_MS), total);
    assert_int_equal(t.ok, total);
    assert_each_once(&t);
    result_t r;
    result_init(&r);
    run(c, &r, (const char *[]){"GET", "counter", NULL});
    assert_int_equal(atoi(r.str), total);
    result_destroy(&r);
    sl_redis_client_close(c);
    /* Nothing ran after close. */
    assert_int_equal(t.done, total);
    free(slots);
    tally_destroy(&t);
}

/* Puts `n` GETs in flight behind a BLPOP that blocks the connection server-side, and waits
 * until the server holds the BLPOP (so the GETs are surely sent and unanswered). */
static void block_connection(sl_redis_client_t *c, tally_t *t, slot_t *slots, int n) {
    const char *blpop[] = {"BLPOP", "never", "0"};
    assert_int_equal(sl_redis_client_command(c, 3, blpop, NULL, on_counted, &slots[0]), 0);
    const char *get[] = {"GET", "k"};
    for (int i = 1; i < n; i++)
        assert_int_equal(sl_redis_client_command(c, 2, get, NULL, on_counted, &slots[i]), 0);
    /* A second client watches for the blocked one. */
    sl_redis_client_t *watch = open_client(NULL);
    result_t r;
    result_init(&r);
    long long deadline = now_ms() + WAIT_MS;
    do {
        run(watch, &r, (const char *[]){"INFO", "clients", NULL});
        if (strstr(r.str, "blocked_clients:1") != NULL)
            break;
        sleep_ms(5);
    } while (now_ms() < deadline);
    assert_non_null(strstr(r.str, "blocked_clients:1"));
    result_destroy(&r);
    sl_redis_client_close(watch);
    assert_int_equal(t->done, 0);
}

static void test_server_killed_in_flight(void **state) {
    sl_redis_options_t o = sl_redis_options_default();
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    sl_redis_client_t *c = open_client(&o);
    int n = 200;
    tally_t t;
    tally_init(&t, n);
    slot_t *slots = calloc((size_t)n, sizeof *slots);
    for (int i = 0; i < n; i++)
        slots[i] = (slot_t){&t, i};
    block_connection(c, &t, slots, n);
    long long t0 = now_ms();
    sl_redis_server_kill(&server);
    assert_int_equal(tally_wait(&t, n, WAIT_MS), n);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(t.failed, n);
    assert_int_equal(t.status_seen, SL_EIO);
    char want[96];
    snprintf(want, sizeof want, "redis %s: connection lost", server.address);
    if (strstr(t.err, want) == NULL)
        fail_msg("message '%s' lacks '%s'", t.err, want);
    assert_each_once(&t);

    /* Back on the same port: new commands succeed once the client has reconnected. */
    assert_int_equal(sl_redis_server_restart(&server), 0);
    result_t r;
    result_init(&r);
    long long deadline = now_ms() + WAIT_MS;
    do {
        run(c, &r, (const char *[]){"PING", NULL});
    } while (r.status != 0 && now_ms() < deadline);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.str, "PONG");
    result_destroy(&r);
    sl_redis_client_close(c);
    free(slots);
    tally_destroy(&t);
}

/* While the server is down, requests wait up to reconnect_wait_ms and fail naming the address;
 * with reconnect_wait_ms = 0 they fail at once; a restarted server is used again. */
static void test_requests_while_disconnected(void **state) {
    sl_redis_options_t o = sl_redis_options_default();
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 100;
    o.reconnect_wait_ms = 300;
    sl_redis_client_t *waits = open_client(&o);
    o.reconnect_wait_ms = 0;
    sl_redis_client_t *fast = open_client(&o);
    sl_redis_server_kill(&server);
    result_t r;
    result_init(&r);
    /* The first command may still find the old connection and see it lost. */
    run(fast, &r, (const char *[]){"PING", NULL});
    sleep_ms(50);
    long long t0 = now_ms();
    run(fast, &r, (const char *[]){"PING", NULL});
    assert_int_equal(r.status, SL_ECONNREFUSED);
    assert_true(now_ms() - t0 < 200);
    assert_non_null(strstr(r.err, "not connected"));
    assert_non_null(strstr(r.err, server.address));

    run(waits, &r, (const char *[]){"PING", NULL});
    sleep_ms(50);
    t0 = now_ms();
    run(waits, &r, (const char *[]){"PING", NULL});
    long long waited = now_ms() - t0;
    assert_int_equal(r.status, SL_ETIMEDOUT);
    assert_true(waited >= 250 && waited < 2000);
    assert_non_null(strstr(r.err, "not connected"));

    assert_int_equal(sl_redis_server_restart(&server), 0);
    /* A waiting request rides the reconnection: no retry loop needed beyond one wait. */
    long long deadline = now_ms() + WAIT_MS;
    do {
        run(waits, &r, (const char *[]){"PING", NULL});
    } while (r.status != 0 && now_ms() < deadline);
    assert_int_equal(r.status, 0);
    result_destroy(&r);
    sl_redis_client_close(waits);
    sl_redis_client_close(fast);
}

static void test_close_with_outstanding(void **state) {
    sl_redis_client_t *c = open_client(NULL);
    int n = 500;
    tally_t t;
    tally_init(&t, n);
    slot_t *slots = calloc((size_t)n, sizeof *slots);
    for (int i = 0; i < n; i++)
        slots[i] = (slot_t){&t, i};
    block_connection(c, &t, slots, n / 2);
    /* The other half is still queued, or just handed to hiredis, when close starts. */
    const char *get[] = {"GET", "k"};
    for (int i = n / 2; i < n; i++)
        assert_int_equal(sl_redis_client_command(c, 2, get, NULL, on_counted, &slots[i]), 0);
    sl_redis_client_close(c);
    /* Every callback ran before close returned. */
    assert_int_equal(t.done, n);
    assert_int_equal(t.failed, n);
    assert_int_equal(t.status_seen, SL_ECANCELED);
    assert_non_null(strstr(t.err, "client closed"));
    assert_each_once(&t);
    free(slots);
    tally_destroy(&t);
}

static void test_open_errors(void **state) {
    char err[256] = "";
    sl_redis_client_t *c = (sl_redis_client_t *)1;
    assert_int_equal(sl_redis_client_open("no-port", NULL, &c, err, sizeof err), SL_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "no-port"));
    assert_int_equal(sl_redis_client_open("127.0.0.1:99999", NULL, &c, err, sizeof err), SL_EINVAL);

    /* Nothing listens on port 1 of loopback (a privileged port no test uses). */
    long long t0 = now_ms();
    int rc = sl_redis_client_open("127.0.0.1:1", NULL, &c, err, sizeof err);
    assert_int_equal(rc, SL_ECONNREFUSED);
    assert_true(now_ms() - t0 < 1000);
    assert_null(c);
    assert_non_null(strstr(err, "redis 127.0.0.1:1: cannot connect"));

    rc = sl_redis_client_open("no-such-host.invalid:6379", NULL, &c, err, sizeof err);
    assert_int_equal(rc, SL_ECONNREFUSED);
    assert_non_null(strstr(err, "no-such-host.invalid:6379"));

    assert_null(c);
}

/* A listener whose accept queue is full: the kernel drops further SYNs, so a connect neither
 * succeeds nor fails, which exercises the connect timeout deterministically. */
static int full_listener(int *port, int fillers[2]) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 0), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    for (int i = 0; i < 2; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    sleep_ms(50);
    return fd;
}

static void test_open_timeout(void **state) {
    int port, fillers[2];
    int fd = full_listener(&port, fillers);
    char address[64], err[256] = "";
    snprintf(address, sizeof address, "127.0.0.1:%d", port);
    sl_redis_options_t o = sl_redis_options_default();
    o.connect_timeout_ms = 200;
    sl_redis_client_t *c = NULL;
    long long t0 = now_ms();
    int rc = sl_redis_client_open(address, &o, &c, err, sizeof err);
    long long took = now_ms() - t0;
    close(fillers[0]);
    close(fillers[1]);
    close(fd);
    if (rc != SL_ETIMEDOUT)
        fail_msg("open %s: %s (%s)", address, sl_err_name(rc), err);
    assert_null(c);
    assert_true(took >= 150 && took < 1500);
    assert_non_null(strstr(err, address));
    assert_non_null(strstr(err, "timed out"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_hget_hgetall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_large_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nil_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrongtype_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_killed_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_while_disconnected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_outstanding, setup, teardown),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_open_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
