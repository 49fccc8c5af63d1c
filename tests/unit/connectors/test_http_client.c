/* Non-blocking HTTP GET client against bench/delay_server (a child process on a free port):
 * 200 with body, 404 as a result, connection refused and bad URLs as errors, an oversized
 * body, many concurrent GETs from two threads each answered exactly once over kept-alive
 * connections, and close with requests outstanding. The server binary is $SL_DELAY_SERVER or
 * $SL_BUILD_DIR/bench/delay_server (built by the default build). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connectors/http_client.h"

#define WAIT_MS 10000

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- delay_server child ---- */

typedef struct {
    pid_t pid;
    int port;
} server_t;

static const char *server_binary(void) {
    static char path[1024];
    const char *env = getenv("SL_DELAY_SERVER");
    if (env != NULL && env[0] != '\0')
        return env;
    const char *build = getenv("SL_BUILD_DIR");
    snprintf(path, sizeof path, "%s/bench/delay_server", build != NULL ? build : ".");
    return path;
}

/* Starts delay_server on port 0 and reads the port from its "listening on PORT" line. */
static void server_start(server_t *s, int delay_ms) {
    const char *bin = server_binary();
    if (access(bin, X_OK) != 0)
        fail_msg("%s not found: build the delay_server target or set SL_DELAY_SERVER", bin);
    char delay[16];
    snprintf(delay, sizeof delay, "%d", delay_ms);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t parent = getpid();
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(bin, bin, "0", delay, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[64] = "";
    size_t len = 0;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    while (len < sizeof line - 1 && strchr(line, '\n') == NULL && poll(&p, 1, 5000) == 1) {
        ssize_t n = read(fds[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
    }
    close(fds[0]);
    s->port = 0;
    if (sscanf(line, "listening on %d", &s->port) != 1 || s->port <= 0)
        fail_msg("delay_server did not start: '%s'", line);
}

static void server_stop(server_t *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

static server_t fast; /* 20 ms per request, for the whole group */

static int group_setup(void **state) {
    server_start(&fast, 20);
    return 0;
}

static int group_teardown(void **state) {
    server_stop(&fast);
    return 0;
}

/* ---- Results ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    atomic_int *calls;
    int total;
    int done;
    int ok;
    int bad_body;
    int last_status;
    long last_http;
    char body[256];
    char err[512];
} tally_t;

typedef struct {
    tally_t *t;
    int index;
    char url[128];
    const char *want_body; /* checked when not NULL */
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

static void on_done(void *arg, int status, long http, const char *body, size_t len, const char *errmsg) {
    slot_t *s = arg;
    tally_t *t = s->t;
    atomic_fetch_add(&t->calls[s->index], 1);
    pthread_mutex_lock(&t->mu);
    t->done++;
    t->last_status = status;
    t->last_http = http;
    if (status == 0) {
        t->ok++;
        snprintf(t->body, sizeof t->body, "%.*s", (int)len, body);
        if (s->want_body != NULL && (strlen(s->want_body) != len || memcmp(body, s->want_body, len) != 0))
            t->bad_body++;
    } else {
        snprintf(t->err, sizeof t->err, "%s", errmsg != NULL ? errmsg : "(none)");
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

static int tally_wait(tally_t *t, int n) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000;
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

static sl_http_client_t *open_client(const sl_http_options_t *o) {
    char err[256] = "";
    sl_http_client_t *c = NULL;
    int rc = sl_http_client_open(o, &c, err, sizeof err);
    if (rc != 0)
        fail_msg("open: %s (%s)", sl_err_name(rc), err);
    return c;
}

/* One GET, waited for; the result is in *t. */
static void get_one(sl_http_client_t *c, tally_t *t, const char *url) {
    tally_init(t, 1);
    slot_t s = {.t = t, .index = 0};
    assert_int_equal(sl_http_client_get(c, url, on_done, &s), 0);
    assert_int_equal(tally_wait(t, 1), 1);
}

static void url_of(char *buf, size_t len, const server_t *s, const char *path) {
    snprintf(buf, len, "http://127.0.0.1:%d%s", s->port, path);
}

/* ---- Tests ---- */

static void test_200_with_body(void **state) {
    sl_http_client_t *c = open_client(NULL);
    char url[128];
    url_of(url, sizeof url, &fast, "/hello/world");
    tally_t t;
    get_one(c, &t, url);
    assert_int_equal(t.last_status, 0);
    assert_int_equal(t.last_http, 200);
    assert_string_equal(t.body, "/hello/world");
    tally_destroy(&t);
    sl_http_client_close(c);
}

static void test_404_is_a_result(void **state) {
    sl_http_client_t *c = open_client(NULL);
    char url[128];
    url_of(url, sizeof url, &fast, "/status/404/missing");
    tally_t t;
    get_one(c, &t, url);
    assert_int_equal(t.last_status, 0);
    assert_int_equal(t.last_http, 404);
    assert_string_equal(t.body, "/status/404/missing");
    tally_destroy(&t);
    sl_http_client_close(c);
}

static void test_connection_refused(void **state) {
    sl_http_client_t *c = open_client(NULL);
    tally_t t;
    long long t0 = now_ms();
    get_one(c, &t, "http://127.0.0.1:1/x");
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(t.last_status, SL_ECONNREFUSED);
    assert_int_equal(t.last_http, 0);
    assert_non_null(strstr(t.err, "http GET http://127.0.0.1:1/x: "));
    tally_destroy(&t);

    get_one(c, &t, "gopher://127.0.0.1/x");
    assert_int_equal(t.last_status, SL_EINVAL);
    tally_destroy(&t);
    sl_http_client_close(c);
}

static void test_body_too_large(void **state) {
    sl_http_options_t o = sl_http_options_default();
    o.max_body_bytes = 8;
    sl_http_client_t *c = open_client(&o);
    char url[128];
    url_of(url, sizeof url, &fast, "/a/path/longer/than/eight/bytes");
    tally_t t;
    get_one(c, &t, url);
    assert_int_equal(t.last_status, SL_ERANGE);
    assert_non_null(strstr(t.err, "larger than 8 bytes"));
    tally_destroy(&t);
    url_of(url, sizeof url, &fast, "/short");
    get_one(c, &t, url);
    assert_int_equal(t.last_status, 0);
    assert_string_equal(t.body, "/short");
    tally_destroy(&t);
    sl_http_client_close(c);
}

#define THREADS 2
#define PER_THREAD 1000
#define MAX_CONN 50

typedef struct {
    sl_http_client_t *c;
    slot_t *slots;
    int first;
} worker_t;

static void *worker(void *arg) {
    worker_t *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        slot_t *s = &w->slots[w->first + i];
        if (sl_http_client_get(w->c, s->url, on_done, s) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_many_concurrent(void **state) {
    sl_http_options_t o = sl_http_options_default();
    o.max_connections = MAX_CONN;
    sl_http_client_t *c = open_client(&o);
    int total = THREADS * PER_THREAD;
    tally_t t;
    tally_init(&t, total);
    slot_t *slots = calloc((size_t)total, sizeof *slots);
    char (*paths)[32] = calloc((size_t)total, sizeof *paths);
    for (int i = 0; i < total; i++) {
        snprintf(paths[i], sizeof paths[i], "/r/%d", i);
        slots[i] = (slot_t){.t = &t, .index = i, .want_body = paths[i]};
        url_of(slots[i].url, sizeof slots[i].url, &fast, paths[i]);
    }
    long long t0 = now_ms();
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
    assert_int_equal(tally_wait(&t, total), total);
    long long took = now_ms() - t0;
    if (t.ok != total)
        fail_msg("%d of %d failed, last: %s", total - t.ok, total, t.err);
    assert_int_equal(t.bad_body, 0);
    assert_each_once(&t);
    /* 2000 requests of 20 ms over 50 connections take about 0.8 s; one at a time, 40 s. */
    assert_true(took < 8000);

    /* Kept alive: no more connections than the limit (before: other tests' few). */
    char url[128];
    url_of(url, sizeof url, &fast, "/stats");
    tally_t st;
    get_one(c, &st, url);
    unsigned long long conns = 0, reqs = 0;
    assert_int_equal(sscanf(st.body, "connections %llu requests %llu", &conns, &reqs), 2);
    if (conns > MAX_CONN + 10)
        fail_msg("%llu connections for %d requests: not kept alive", conns, total);
    tally_destroy(&st);
    sl_http_client_close(c);
    free(paths);
    free(slots);
    tally_destroy(&t);
}

static void test_close_with_outstanding(void **state) {
    server_t slow;
    server_start(&slow, 5000);
    sl_http_options_t o = sl_http_options_default();
    o.max_connections = 8; /* most requests wait inside curl for a connection */
    sl_http_client_t *c = open_client(&o);
    int n = 100;
    tally_t t;
    tally_init(&t, n);
    slot_t *slots = calloc((size_t)n, sizeof *slots);
    for (int i = 0; i < n; i++) {
        slots[i] = (slot_t){.t = &t, .index = i};
        url_of(slots[i].url, sizeof slots[i].url, &slow, "/slow");
        assert_int_equal(sl_http_client_get(c, slots[i].url, on_done, &slots[i]), 0);
    }
    struct timespec pause = {0, 100 * 1000000L};
    nanosleep(&pause, NULL);
    long long t0 = now_ms();
    sl_http_client_close(c);
    assert_true(now_ms() - t0 < 1000);
    server_stop(&slow);
    assert_int_equal(t.done, n);
    assert_int_equal(t.ok, 0);
    assert_int_equal(t.last_status, SL_ECANCELED);
    assert_non_null(strstr(t.err, "client closed"));
    assert_each_once(&t);
    free(slots);
    tally_destroy(&t);
}

static void test_open_bad_options(void **state) {
    sl_http_options_t o = sl_http_options_default();
    o.max_connections = 0;
    char err[128] = "";
    sl_http_client_t *c = (sl_http_client_t *)1;
    assert_int_equal(sl_http_client_open(&o, &c, err, sizeof err), SL_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "invalid options"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_200_with_body),       cmocka_unit_test(test_404_is_a_result),
        cmocka_unit_test(test_connection_refused),  cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_many_concurrent),     cmocka_unit_test(test_close_with_outstanding),
        cmocka_unit_test(test_open_bad_options),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
