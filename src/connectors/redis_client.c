/* Asynchronous Redis client: one hiredis async context on a private libuv loop thread, fed by
 * a cross-thread request queue (states and guarantees in redis_client.h).
 *
 * The file also holds a small libuv adapter for hiredis instead of hiredis 0.14's
 * <hiredis/adapters/libuv.h>: that one ignores a poll error (libuv reports POLLERR as status
 * UV_EBADF and stops the handle), so a refused connect or a reset connection would hang every
 * request on it. Ours hands the error to hiredis as a read/write event, where it surfaces. */
#include "connectors/redis_client.h"

#include <sluice/error.h>

#include <hiredis/async.h>
#include <uv.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"

/* Requests up to this size (GET key, HGET key field with short keys) copy their arguments
 * into the request itself; recycled requests make a command allocation-free on our side. */
#define REQ_INLINE_ARGS 6
#define REQ_INLINE_BYTES 192
#define FREE_REQS_MAX 1024

typedef struct req_s {
    struct req_s *next;
    sl_redis_cb cb;
    void *arg;
    uint64_t deadline; /* loop time (ms) until which a request may wait for a connection */
    int argc;
    const char **argv; /* the inline arrays, or inside `big` */
    size_t *argvlen;
    void *big; /* arrays and bytes of a command too large for the inline space */
    const char *inline_argv[REQ_INLINE_ARGS];
    size_t inline_len[REQ_INLINE_ARGS];
    char inline_bytes[REQ_INLINE_BYTES];
} req_t;

typedef struct {
    req_t *head, *tail;
} req_list_t;

typedef enum { ST_CONNECTING, ST_CONNECTED, ST_BACKOFF } conn_state_t;

struct sl_redis_client_s {
    /* Immutable after open. */
    char address[256];
    char host[256];
    int port;
    sl_redis_options_t opts;
    uv_thread_t thread;
    /* Guarded by `mu`: the hand-off between calling threads and the loop thread. */
    uv_mutex_t mu;
    uv_cond_t cond; /* open waits on it for the first connection's outcome */
    req_list_t incoming;
    req_t *free_reqs;
    uint32_t nfree;
    bool closing;
    bool opened;
    int open_status;
    char open_err[256];
    /* Loop thread only. */
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t conn_timer; /* connect timeout while CONNECTING, backoff delay while BACKOFF */
    uv_timer_t wait_timer; /* the earliest deadline in `waiting` */
    redisAsyncContext *ac;
    conn_state_t state;
    bool first; /* the first connection attempt: its outcome is open's */
    bool shutting_down;
    int64_t backoff_ms; /* delay before the next attempt after a failed one */
    char last_err[256]; /* why the client is not connected */
    req_list_t waiting;
    char errbuf[512]; /* message handed to a callback */
};

/* ---- Request lists and recycling ---- */

static void list_push(req_list_t *l, req_t *r) {
    r->next = NULL;
    if (l->tail != NULL)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
}

static req_t *list_pop(req_list_t *l) {
    req_t *r = l->head;
    if (r != NULL) {
        l->head = r->next;
        if (l->head == NULL)
            l->tail = NULL;
    }
    return r;
}

static req_t *req_get(sl_redis_client_t *c) {
    uv_mutex_lock(&c->mu);
    req_t *r = c->free_reqs;
    if (r != NULL) {
        c->free_reqs = r->next;
        c->nfree--;
    }
    uv_mutex_unlock(&c->mu);
    return r != NULL ? r : sl_malloc(sizeof(req_t));
}

static void req_put(sl_redis_client_t *c, req_t *r) {
    sl_free(r->big);
    r->big = NULL;
    uv_mutex_lock(&c->mu);
    if (c->nfree < FREE_REQS_MAX) {
        r->next = c->free_reqs;
        c->free_reqs = r;
        c->nfree++;
        r = NULL;
    }
    uv_mutex_unlock(&c->mu);
    sl_free(r);
}

static size_t arg_len(const char *const *argv, const size_t *argvlen, int i) {
    return argvlen != NULL ? argvlen[i] : strlen(argv[i]);
}

/* Copies the command into `r`: inline when it fits, else into one heap block. */
static int req_fill(req_t *r, int argc, const char *const *argv, const size_t *argvlen) {
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += arg_len(argv, argvlen, i);
    r->big = NULL;
    r->argv = r->inline_argv;
    r->argvlen = r->inline_len;
    char *p = r->inline_bytes;
    if (argc > REQ_INLINE_ARGS || bytes > REQ_INLINE_BYTES) {
        size_t arrays = (size_t)argc * (sizeof(char *) + sizeof(size_t));
        r->big = sl_malloc(arrays + bytes + 1);
        if (r->big == NULL)
            return SL_ENOMEM;
        r->argv = (const char **)r->big;
        r->argvlen = (size_t *)((char *)r->big + (size_t)argc * sizeof(char *));
        p = (char *)r->big + arrays;
    }
    for (int i = 0; i < argc; i++) {
        size_t len = arg_len(argv, argvlen, i);
        memcpy(p, argv[i], len);
        r->argv[i] = p;
        r->argvlen[i] = len;
        p += len;
    }
    r->argc = argc;
    return 0;
}

/* Runs the request's callback once and recycles it. `fmt` NULL means no message. */
static void complete(sl_redis_client_t *c, req_t *r, int status, const redisReply *reply, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void complete(sl_redis_client_t *c, req_t *r, int status, const redisReply *reply, const char *fmt, ...) {
    const char *msg = NULL;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->errbuf, sizeof c->errbuf, fmt, ap);
        va_end(ap);
        msg = c->errbuf;
    }
    r->cb(r->arg, status, reply, msg);
    req_put(c, r);
}

static void cancel_list(sl_redis_client_t *c, req_list_t *l) {
    req_t *r;
    while ((r = list_pop(l)) != NULL)
        complete(c, r, SL_ECANCELED, NULL, "redis %s: client closed", c->address);
}

/* ---- libuv adapter for hiredis ---- */

typedef struct {
    uv_poll_t handle;
    redisAsyncContext *ac; /* NULL once hiredis let go of the context */
    int events;
} poller_t;

static void poller_cb(uv_poll_t *h, int status, int events) {
    poller_t *p = h->data;
    /* A socket error: let hiredis read/write, which fails and disconnects with the cause. */
    if (status < 0)
        events = p->events != 0 ? p->events : UV_READABLE;
    if (p->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void poller_update(poller_t *p, int add, int del) {
    p->events = (p->events | add) & ~del;
    int rc = p->events != 0 ? uv_poll_start(&p->handle, p->events, poller_cb) : uv_poll_stop(&p->handle);
    if (rc < 0)
        SL_WARN("redis: uv_poll on fd %d failed: %s", p->ac != NULL ? p->ac->c.fd : -1, uv_strerror(rc));
}

static void poller_add_read(void *d) { poller_update(d, UV_READABLE, 0); }
static void poller_del_read(void *d) { poller_update(d, 0, UV_READABLE); }
static void poller_add_write(void *d) { poller_update(d, UV_WRITABLE, 0); }
static void poller_del_write(void *d) { poller_update(d, 0, UV_WRITABLE); }

static void poller_closed(uv_handle_t *h) { sl_free(h->data); }

static void poller_cleanup(void *d) {
    poller_t *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, poller_closed);
}

static int poller_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    poller_t *p = sl_calloc(1, sizeof *p);
    if (p == NULL)
        return SL_ENOMEM;
    int rc = uv_poll_init(loop, &p->handle, ac->c.fd);
    if (rc < 0) {
        sl_free(p);
        return rc;
    }
    p->handle.data = p;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = poller_add_read;
    ac->ev.delRead = poller_del_read;
    ac->ev.addWrite = poller_add_write;
    ac->ev.delWrite = poller_del_write;
    ac->ev.cleanup = poller_cleanup;
    return 0;
}

/* ---- Connection state machine (loop thread) ---- */

static void start_connect(sl_redis_client_t *c);
static void send_req(sl_redis_client_t *c, req_t *r);

static void signal_open(sl_redis_client_t *c, int status) {
    uv_mutex_lock(&c->mu);
    c->opened = true;
    c->open_status = status;
    snprintf(c->open_err, sizeof c->open_err, "%s", c->last_err);
    uv_cond_signal(&c->cond);
    uv_mutex_unlock(&c->mu);
}

static void on_backoff(uv_timer_t *t) { start_connect(t->data); }

/* Waits before the next attempt; the delay doubles up to reconnect_max_ms. */
static void schedule_reconnect(sl_redis_client_t *c) {
    c->state = ST_BACKOFF;
    uv_timer_start(&c->conn_timer, on_backoff, (uint64_t)c->backoff_ms, 0);
    c->backoff_ms *= 2;
    if (c->backoff_ms > c->opts.reconnect_max_ms)
        c->backoff_ms = c->opts.reconnect_max_ms;
}

static void attempt_failed(sl_redis_client_t *c, int status, const char *why) {
    snprintf(c->last_err, sizeof c->last_err, "%s", why);
    if (c->first) {
        /* Open reports it and shuts the client down; no retry. */
        c->first = false;
        c->state = ST_BACKOFF;
        signal_open(c, status);
        return;
    }
    SL_DEBUG("redis %s: reconnect failed: %s", c->address, why);
    schedule_reconnect(c);
}

static void flush_waiting(sl_redis_client_t *c) {
    uv_timer_stop(&c->wait_timer);
    req_t *r;
    while ((r = list_pop(&c->waiting)) != NULL)
        send_req(c, r);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    sl_redis_client_t *c = ac->data;
    uv_timer_stop(&c->conn_timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        c->ac = NULL;
        attempt_failed(c, SL_ECONNREFUSED, ac->errstr[0] != '\0' ? ac->errstr : "connect failed");
        return;
    }
    c->state = ST_CONNECTED;
    c->backoff_ms = c->opts.reconnect_min_ms;
    if (c->first) {
        c->first = false;
        signal_open(c, 0);
    } else {
        SL_INFO("redis %s: reconnected", c->address);
    }
    flush_waiting(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    sl_redis_client_t *c = ac->data;
    c->ac = NULL;
    if (c->shutting_down)
        return;
    snprintf(c->last_err, sizeof c->last_err, "connection lost (%s)",
             ac->errstr[0] != '\0' ? ac->errstr : "closed by the server");
    SL_WARN("redis %s: %s; reconnecting", c->address, c->last_err);
    c->backoff_ms = c->opts.reconnect_min_ms;
    schedule_reconnect(c);
}

static void on_connect_timeout(uv_timer_t *t) {
    sl_redis_client_t *c = t->data;
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    /* Not connected yet, so hiredis runs neither the connect nor the disconnect callback. */
    redisAsyncFree(ac);
    char why[64];
    snprintf(why, sizeof why, "connect timed out after %lld ms", (long long)c->opts.connect_timeout_ms);
    attempt_failed(c, SL_ETIMEDOUT, why);
}

static void start_connect(sl_redis_client_t *c) {
    c->state = ST_CONNECTING;
    /* Resolution of a host name blocks this thread (hiredis 0.14 has no async resolver). */
    redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);
    if (ac == NULL) {
        attempt_failed(c, SL_ENOMEM, "out of memory");
        return;
    }
    if (ac->err != 0) {
        /* Refused (loopback answers at once) or resolution failed. */
        char why[128];
        snprintf(why, sizeof why, "%s", ac->errstr);
        redisAsyncFree(ac);
        attempt_failed(c, SL_ECONNREFUSED, why);
        return;
    }
    int rc = poller_attach(ac, &c->loop);
    if (rc < 0) {
        redisAsyncFree(ac);
        attempt_failed(c, rc, uv_strerror(rc));
        return;
    }
    ac->data = c;
    c->ac = ac;
    /* The connect callback arms the first write event, so it comes after the adapter. */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_timer_start(&c->conn_timer, on_connect_timeout, (uint64_t)c->opts.connect_timeout_ms, 0);
}

/* ---- Requests (loop thread) ---- */

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    sl_redis_client_t *c = ac->data;
    req_t *r = privdata;
    const redisReply *rep = reply;
    if (rep == NULL && c->shutting_down)
        complete(c, r, SL_ECANCELED, NULL, "redis %s: client closed", c->address);
    else if (rep == NULL)
        complete(c, r, SL_EIO, NULL, "redis %s: connection lost (%s)", c->address,
                 ac->errstr[0] != '\0' ? ac->errstr : "closed by the server");
    else if (rep->type == REDIS_REPLY_ERROR)
        complete(c, r, SL_EPROTO, rep, "%s", rep->str);
    else
        complete(c, r, 0, rep, NULL);
}

static void send_req(sl_redis_client_t *c, req_t *r) {
    /* hiredis appends to its output buffer and arms one write event for the whole batch. */
    if (redisAsyncCommandArgv(c->ac, on_reply, r, r->argc, r->argv, r->argvlen) != REDIS_OK)
        complete(c, r, SL_ENOMEM, NULL, "redis %s: cannot queue command (%s)", c->address,
                 c->ac->errstr[0] != '\0' ? c->ac->errstr : "out of memory");
}

static void fail_not_connected(sl_redis_client_t *c, req_t *r, int status) {
    complete(c, r, status, NULL, "redis %s: not connected (%s)", c->address, c->last_err);
}

static void on_wait_timer(uv_timer_t *t) {
    sl_redis_client_t *c = t->data;
    uint64_t now = uv_now(&c->loop);
    while (c->waiting.head != NULL && c->waiting.head->deadline <= now)
        fail_not_connected(c, list_pop(&c->waiting), SL_ETIMEDOUT);
    /* Waiting requests share one wait, so the list is in deadline order. */
    if (c->waiting.head != NULL)
        uv_timer_start(&c->wait_timer, on_wait_timer, c->waiting.head->deadline - now, 0);
}

static void dispatch(sl_redis_client_t *c, req_t *r) {
    if (c->state == ST_CONNECTED) {
        send_req(c, r);
        return;
    }
    if (c->opts.reconnect_wait_ms <= 0) {
        fail_not_connected(c, r, SL_ECONNREFUSED);
        return;
    }
    r->deadline = uv_now(&c->loop) + (uint64_t)c->opts.reconnect_wait_ms;
    list_push(&c->waiting, r);
    if (!uv_is_active((uv_handle_t *)&c->wait_timer))
        uv_timer_start(&c->wait_timer, on_wait_timer, (uint64_t)c->opts.reconnect_wait_ms, 0);
}

/* Completes everything with SL_ECANCELED and closes the handles, which ends uv_run. */
static void shutdown_loop(sl_redis_client_t *c, req_list_t *batch) {
    c->shutting_down = true;
    uv_timer_stop(&c->conn_timer);
    uv_timer_stop(&c->wait_timer);
    cancel_list(c, batch);
    cancel_list(c, &c->waiting);
    if (c->ac != NULL) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        /* Runs on_reply (NULL reply: cancelled) for every command in flight. */
        redisAsyncFree(ac);
    }
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->conn_timer, NULL);
    uv_close((uv_handle_t *)&c->wait_timer, NULL);
}

static void on_wake(uv_async_t *h) {
    sl_redis_client_t *c = h->data;
    uv_mutex_lock(&c->mu);
    req_list_t batch = c->incoming;
    c->incoming.head = c->incoming.tail = NULL;
    bool closing = c->closing;
    uv_mutex_unlock(&c->mu);
    if (closing) {
        shutdown_loop(c, &batch);
        return;
    }
    req_t *r;
    while ((r = list_pop(&batch)) != NULL)
        dispatch(c, r);
}

static void loop_main(void *arg) {
    sl_redis_client_t *c = arg;
    /* hiredis 0.14 writes with write(2): a write to a connection the server reset raises
     * SIGPIPE in this thread, which would kill the process. Blocked here, it stays pending on
     * this thread only and write returns EPIPE, which hiredis reports as a lost connection. */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    start_connect(c);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&c->loop);
    SL_ASSERT(rc == 0);
}

/* ---- Public API ---- */

sl_redis_options_t sl_redis_options_default(void) {
    sl_redis_options_t o = {
        .connect_timeout_ms = 2000, .reconnect_min_ms = 50, .reconnect_max_ms = 2000, .reconnect_wait_ms = 1000};
    return o;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "host:port" or "[v6addr]:port" into c->host and c->port. */
static int parse_address(sl_redis_client_t *c, const char *address) {
    const char *colon = address != NULL ? strrchr(address, ':') : NULL;
    if (colon == NULL || colon == address || strlen(address) >= sizeof c->address)
        return SL_EINVAL;
    const char *h = address;
    size_t hlen = (size_t)(colon - address);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (hlen == 0 || colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return SL_EINVAL;
    memcpy(c->host, h, hlen);
    c->host[hlen] = '\0';
    c->port = (int)port;
    snprintf(c->address, sizeof c->address, "%s", address);
    return 0;
}

static int check_options(const sl_redis_options_t *o) {
    if (o->connect_timeout_ms <= 0 || o->reconnect_min_ms <= 0 || o->reconnect_max_ms < o->reconnect_min_ms ||
        o->reconnect_wait_ms < 0)
        return SL_EINVAL;
    return 0;
}

/* Loop and handles, on the caller's thread before the loop thread exists. */
static int loop_init(sl_redis_client_t *c) {
    int rc = uv_loop_init(&c->loop);
    if (rc < 0)
        return rc;
    rc = uv_async_init(&c->loop, &c->wake, on_wake);
    if (rc < 0) {
        uv_loop_close(&c->loop);
        return rc;
    }
    uv_timer_init(&c->loop, &c->conn_timer);
    uv_timer_init(&c->loop, &c->wait_timer);
    c->wake.data = c->conn_timer.data = c->wait_timer.data = c;
    return 0;
}

static void loop_destroy_unstarted(sl_redis_client_t *c) {
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->conn_timer, NULL);
    uv_close((uv_handle_t *)&c->wait_timer, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
}

static void client_free(sl_redis_client_t *c) {
    req_t *r;
    while ((r = c->free_reqs) != NULL) {
        c->free_reqs = r->next;
        sl_free(r);
    }
    uv_cond_destroy(&c->cond);
    uv_mutex_destroy(&c->mu);
    sl_free(c);
}

/* Asks the loop thread to cancel everything and exit, then joins it. */
static void client_stop(sl_redis_client_t *c) {
    uv_mutex_lock(&c->mu);
    c->closing = true;
    uv_mutex_unlock(&c->mu);
    uv_async_send(&c->wake);
    uv_thread_join(&c->thread);
}

static int client_create(const char *address, const sl_redis_options_t *o, sl_redis_client_t **out, char *err,
                         size_t errlen) {
    sl_redis_client_t *c = sl_calloc(1, sizeof *c);
    if (c == NULL)
        return SL_ENOMEM;
    int rc = parse_address(c, address);
    if (rc < 0) {
        set_err(err, errlen, "redis address '%s': expected host:port", address != NULL ? address : "(null)");
        sl_free(c);
        return rc;
    }
    c->opts = *o;
    c->first = true;
    c->backoff_ms = o->reconnect_min_ms;
    if ((rc = uv_mutex_init(&c->mu)) < 0) {
        sl_free(c);
        return rc;
    }
    if ((rc = uv_cond_init(&c->cond)) < 0) {
        uv_mutex_destroy(&c->mu);
        sl_free(c);
        return rc;
    }
    if ((rc = loop_init(c)) < 0) {
        client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int sl_redis_client_open(const char *address, const sl_redis_options_t *opts, sl_redis_client_t **out, char *err,
                         size_t errlen) {
    *out = NULL;
    sl_redis_options_t o = opts != NULL ? *opts : sl_redis_options_default();
    if (check_options(&o) < 0) {
        set_err(err, errlen, "redis %s: invalid client options", address != NULL ? address : "(null)");
        return SL_EINVAL;
    }
    sl_redis_client_t *c;
    int rc = client_create(address, &o, &c, err, errlen);
    if (rc < 0) {
        if (rc != SL_EINVAL)
            set_err(err, errlen, "redis %s: cannot create client: %s", address, sl_strerror(rc));
        return rc;
    }
    if ((rc = uv_thread_create(&c->thread, loop_main, c)) < 0) {
        set_err(err, errlen, "redis %s: cannot start client thread: %s", address, uv_strerror(rc));
        loop_destroy_unstarted(c);
        client_free(c);
        return rc;
    }
    uv_mutex_lock(&c->mu);
    while (!c->opened)
        uv_cond_wait(&c->cond, &c->mu);
    rc = c->open_status;
    uv_mutex_unlock(&c->mu);
    if (rc < 0) {
        set_err(err, errlen, "redis %s: cannot connect: %s", c->address, c->open_err);
        client_stop(c);
        client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int sl_redis_client_command(sl_redis_client_t *c, int argc, const char *const *argv, const size_t *argvlen,
                            sl_redis_cb cb, void *arg) {
    if (argc < 1 || argv == NULL || cb == NULL)
        return SL_EINVAL;
    req_t *r = req_get(c);
    if (r == NULL)
        return SL_ENOMEM;
    if (req_fill(r, argc, argv, argvlen) < 0) {
        r->big = NULL;
        req_put(c, r);
        return SL_ENOMEM;
    }
    r->cb = cb;
    r->arg = arg;
    uv_mutex_lock(&c->mu);
    bool closing = c->closing;
    bool was_empty = c->incoming.head == NULL;
    if (!closing)
        list_push(&c->incoming, r);
    uv_mutex_unlock(&c->mu);
    if (closing) {
        req_put(c, r);
        return SL_ECANCELED;
    }
    /* A non-empty queue already has a wakeup on its way: the loop drains the queue whole. */
    if (was_empty)
        uv_async_send(&c->wake);
    return 0;
}

const char *sl_redis_client_address(const sl_redis_client_t *c) { return c->address; }

void sl_redis_client_close(sl_redis_client_t *c) {
    if (c == NULL)
        return;
    uv_thread_t self = uv_thread_self();
    SL_ASSERT(!uv_thread_equal(&self, &c->thread));
    client_stop(c);
    client_free(c);
}
