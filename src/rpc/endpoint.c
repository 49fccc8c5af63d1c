/* The RPC endpoint: one libuv loop on its own thread, the locked queue of operations that
 * other threads post to it (woken by uv_async_send, the one libuv call that is thread-safe),
 * the listener and the orderly stop that closes every handle before the thread exits.
 *
 * DESIGN. Every public entry point packs its arguments into an sl_rpc_op_t and posts it; the
 * async callback drains the queue in FIFO order on the loop thread, so operations from one
 * thread keep their order (a call posted after a send is written after it). Stopping sets
 * `accepting = 0` under the same lock that guards the queue, so after stop no operation can
 * slip in unseen: whatever was queued before still runs (or is cancelled) on the loop. */
#include "rpc/rpc_internal.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"

void sl__rpc_snprintf(char *buf, size_t len, const char *fmt, ...) {
    if (!buf || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static int copy_config(sl_rpc_endpoint_t *ep, const sl_rpc_endpoint_config_t *cfg) {
    ep->cfg = *cfg;
    ep->id = sl_strdup(cfg->id);
    ep->role = sl_strdup(cfg->role);
    ep->secret = sl_malloc(cfg->secret_len);
    if (!ep->id || !ep->role || !ep->secret)
        return SL_ENOMEM;
    memcpy(ep->secret, cfg->secret, cfg->secret_len);
    ep->cfg.id = ep->id;
    ep->cfg.role = ep->role;
    ep->cfg.secret = ep->secret;
    ep->tls = cfg->tls ? cfg->tls : sl_tls_default();
    if (ep->tls)
        sl_tls_ctx_ref(ep->tls);
    ep->cfg.tls = ep->tls;
    if (!ep->cfg.max_frame_size)
        ep->cfg.max_frame_size = SL_RPC_DEFAULT_MAX_FRAME;
    if (!ep->cfg.handshake_timeout_ms)
        ep->cfg.handshake_timeout_ms = 10000;
    if (!ep->cfg.protocol_version)
        ep->cfg.protocol_version = SL_RPC_PROTOCOL_VERSION;
    return 0;
}

static void free_config(sl_rpc_endpoint_t *ep) {
    sl_free(ep->id);
    sl_free(ep->role);
    if (ep->secret)
        memset(ep->secret, 0, ep->secret_len);
    sl_free(ep->secret);
    sl_tls_ctx_destroy(ep->tls);
}

static void async_cb(uv_async_t *h);

int sl_rpc_endpoint_create(const sl_rpc_endpoint_config_t *cfg, sl_rpc_endpoint_t **out) {
    if (!cfg || !cfg->id || !cfg->role || !cfg->secret || cfg->secret_len == 0)
        return SL_EINVAL;
    sl_rpc_endpoint_t *ep = sl_calloc(1, sizeof *ep);
    if (!ep)
        return SL_ENOMEM;
    ep->secret_len = cfg->secret_len;
    int rc = copy_config(ep, cfg);
    if (rc == 0)
        rc = uv_loop_init(&ep->loop);
    if (rc < 0) {
        free_config(ep);
        sl_free(ep);
        return rc;
    }
    rc = uv_async_init(&ep->loop, &ep->async, async_cb);
    SL_ASSERT(rc == 0); /* cannot fail on Linux once the loop exists */
    ep->async.data = ep;
    pthread_mutex_init(&ep->mu, NULL);
    ep->accepting = 1;
    atomic_init(&ep->next_call_id, 1);
    *out = ep;
    return 0;
}

static void *loop_main(void *arg) {
    sl_rpc_endpoint_t *ep = arg;
    uv_run(&ep->loop, UV_RUN_DEFAULT);
    return NULL;
}

int sl_rpc_endpoint_start(sl_rpc_endpoint_t *ep) {
    if (ep->started)
        return SL_EINVAL;
    int rc = pthread_create(&ep->thread, NULL, loop_main, ep);
    if (rc != 0)
        return SL__ERR(rc);
    ep->started = 1;
    return 0;
}

int sl_rpc_endpoint_on_loop(const sl_rpc_endpoint_t *ep) {
    return ep->started && !ep->joined && pthread_equal(pthread_self(), ep->thread);
}

const char *sl_rpc_endpoint_id(const sl_rpc_endpoint_t *ep) {
    return ep->id;
}

int sl__rpc_post(sl_rpc_endpoint_t *ep, sl_rpc_op_t *op) {
    op->next = NULL;
    pthread_mutex_lock(&ep->mu);
    if (!ep->accepting) {
        pthread_mutex_unlock(&ep->mu);
        return SL_ECANCELED;
    }
    if (ep->ops_tail)
        ep->ops_tail->next = op;
    else
        ep->ops_head = op;
    ep->ops_tail = op;
    pthread_mutex_unlock(&ep->mu);
    uv_async_send(&ep->async);
    return 0;
}

static void close_listener_cb(uv_handle_t *h) {
}

/* Loop thread, once: everything closes so that uv_run returns. */
static void teardown(sl_rpc_endpoint_t *ep) {
    sl__heartbeat_stop_all(ep);
    if (ep->listening) {
        uv_close((uv_handle_t *)&ep->listener, close_listener_cb);
        ep->listening = 0;
    }
    while (ep->conns) {
        sl_rpc_conn_t *c = ep->conns;
        sl__rpc_conn_fail(c, SL_ECANCELED, "endpoint stopping");
        /* conn_fail unlinks the connection from ep->conns, so the loop advances. */
        SL_ASSERT(ep->conns != c);
    }
    uv_close((uv_handle_t *)&ep->async, NULL);
}

static void async_cb(uv_async_t *h) {
    sl_rpc_endpoint_t *ep = h->data;
    for (;;) {
        pthread_mutex_lock(&ep->mu);
        sl_rpc_op_t *op = ep->ops_head;
        int stop = ep->stop_requested == 1;
        if (op) {
            ep->ops_head = op->next;
            if (!ep->ops_head)
                ep->ops_tail = NULL;
        } else if (stop) {
            ep->stop_requested = 2;
        }
        pthread_mutex_unlock(&ep->mu);
        if (!op) {
            if (stop)
                teardown(ep);
            return;
        }
        op->fn(ep, op, stop ? SL_ECANCELED : 0);
    }
}

void sl_rpc_endpoint_stop(sl_rpc_endpoint_t *ep) {
    SL_ASSERT(!sl_rpc_endpoint_on_loop(ep));
    pthread_mutex_lock(&ep->mu);
    ep->accepting = 0;
    if (ep->stop_requested == 0)
        ep->stop_requested = 1;
    pthread_mutex_unlock(&ep->mu);
    if (!ep->started) {
        /* Never ran: run the loop here so the handles close. */
        async_cb(&ep->async);
        uv_run(&ep->loop, UV_RUN_DEFAULT);
        ep->started = 1;
        ep->joined = 1;
        return;
    }
    if (ep->joined)
        return;
    uv_async_send(&ep->async);
    pthread_join(ep->thread, NULL);
    ep->joined = 1;
}

void sl_rpc_endpoint_destroy(sl_rpc_endpoint_t *ep) {
    if (!ep)
        return;
    sl_rpc_endpoint_stop(ep);
    int rc = uv_loop_close(&ep->loop);
    if (rc != 0)
        SL_ERROR("rpc endpoint %s: loop closed with handles still open (%s)", ep->id, uv_strerror(rc));
    pthread_mutex_destroy(&ep->mu);
    free_config(ep);
    sl_free(ep);
}

/* ---- run a function on the loop and wait ---- */

typedef struct {
    sl_rpc_op_t op;
    void (*fn)(void *);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
} sync_op_t;

static void sync_op_run(sl_rpc_endpoint_t *ep, sl_rpc_op_t *op, int status) {
    sync_op_t *s = (sync_op_t *)op;
    if (status == 0)
        s->fn(s->arg);
    pthread_mutex_lock(&s->mu);
    s->status = status;
    s->done = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu); /* `s` lives on the waiter's stack: not touched after this */
}

int sl__rpc_run_sync(sl_rpc_endpoint_t *ep, void (*fn)(void *arg), void *arg) {
    if (!ep->started || sl_rpc_endpoint_on_loop(ep)) {
        pthread_mutex_lock(&ep->mu);
        int ok = ep->accepting;
        pthread_mutex_unlock(&ep->mu);
        if (!ok)
            return SL_ECANCELED;
        fn(arg);
        return 0;
    }
    sync_op_t s = {.op.fn = sync_op_run, .fn = fn, .arg = arg};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    int rc = sl__rpc_post(ep, &s.op);
    if (rc == 0) {
        pthread_mutex_lock(&s.mu);
        while (!s.done)
            pthread_cond_wait(&s.cv, &s.mu);
        pthread_mutex_unlock(&s.mu);
        rc = s.status;
    }
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return rc;
}

/* ---- listen ---- */

typedef struct {
    sl_rpc_endpoint_t *ep;
    struct sockaddr_storage addr;
    const char *name;
    int rc;
    int bound_port;
} listen_args_t;

static int sockaddr_port(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static void listen_on_loop(void *arg) {
    listen_args_t *a = arg;
    sl_rpc_endpoint_t *ep = a->ep;
    if (ep->listening) {
        a->rc = SL_EINVAL;
        return;
    }
    uv_tcp_init(&ep->loop, &ep->listener);
    ep->listener.data = ep;
    int rc = uv_tcp_bind(&ep->listener, (const struct sockaddr *)&a->addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&ep->listener, 128, sl__rpc_accept_cb);
    if (rc == 0) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        rc = uv_tcp_getsockname(&ep->listener, (struct sockaddr *)&ss, &len);
        a->bound_port = rc == 0 ? sockaddr_port(&ss) : 0;
    }
    if (rc < 0) {
        uv_close((uv_handle_t *)&ep->listener, close_listener_cb);
        a->rc = rc;
        return;
    }
    ep->listening = 1;
    a->rc = 0;
}

/* Resolution happens on the caller's thread: getaddrinfo blocks, which a loop must never do. */
static int resolve_listen(const char *host, int port, struct sockaddr_storage *out, char *err, size_t errlen) {
    if (port < 0 || port > 65535) {
        sl__rpc_snprintf(err, errlen, "invalid listen address %s:%d: port out of range", host, port);
        return SL_EINVAL;
    }
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host && *host ? host : NULL, service, &hints, &res);
    if (g != 0 || !res) {
        sl__rpc_snprintf(err, errlen, "invalid listen address %s:%d: %s", host ? host : "", port,
                         gai_strerror(g));
        return SL_EINVAL;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int sl_rpc_listen(sl_rpc_endpoint_t *ep, const char *host, int port, int *bound_port, char *err,
                  size_t errlen) {
    sl__rpc_snprintf(err, errlen, "%s", "");
    listen_args_t a = {.ep = ep, .name = host};
    int rc = resolve_listen(host, port, &a.addr, err, errlen);
    if (rc < 0)
        return rc;
    rc = sl__rpc_run_sync(ep, listen_on_loop, &a);
    if (rc == 0)
        rc = a.rc;
    if (rc < 0) {
        if (!err || !*err)
            sl__rpc_snprintf(err, errlen, "cannot listen on %s:%d: %s", host ? host : "", port,
                             rc == SL_EINVAL ? "endpoint already listening" : sl_strerror(rc));
        return rc;
    }
    snprintf(ep->listen_addr, sizeof ep->listen_addr, "%s:%d", host ? host : "", a.bound_port);
    if (bound_port)
        *bound_port = a.bound_port;
    SL_INFO("rpc endpoint %s listening on %s", ep->id, ep->listen_addr);
    return 0;
}
