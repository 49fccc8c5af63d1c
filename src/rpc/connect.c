/* Outgoing connections: the connect operation marshalled onto the loop, name resolution
 * (uv_getaddrinfo, off the loop thread), the TCP connect, and the blocking wrapper. One
 * deadline covers resolution, connect and handshake, so a black-holed address fails with
 * SL_ETIMEDOUT instead of waiting for the kernel's minutes-long SYN retries. */
#include "rpc/rpc_internal.h"

#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000

typedef struct {
    sl_rpc_op_t op;
    char *host;
    int port;
    uint32_t timeout_ms;
    sl_rpc_connect_cb cb;
    void *arg;
} connect_op_t;

static void tcp_connect_cb(uv_connect_t *req, int status) {
    sl_rpc_conn_t *c = req->handle->data;
    if (c->state != SL_RPC_CONN_CONNECTING)
        return; /* timed out or the endpoint stopped: already reported */
    if (status < 0) {
        sl__rpc_conn_fail(c, status, sl_strerror(status));
        return;
    }
    c->state = SL_RPC_CONN_HANDSHAKE;
    uv_tcp_nodelay(&c->tcp, 1);
    if (sl__rpc_conn_start_reading(c) < 0) /* the server speaks first: HELLO */
        return;
    if (c->tls) {
        /* TLS first: our ClientHello; HELLO then comes inside the session. */
        char reason[512];
        int rc = sl_tls_start(c->tls, reason, sizeof reason);
        if (rc < 0)
            sl__rpc_conn_fail(c, rc, reason);
    }
}

static void start_tcp(sl_rpc_conn_t *c, const struct sockaddr *addr) {
    int rc = uv_tcp_connect(&c->connect_req, &c->tcp, addr, tcp_connect_cb);
    if (rc < 0)
        sl__rpc_conn_fail(c, rc, sl_strerror(rc));
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
    sl_rpc_conn_t *c = req->data;
    if (c->state == SL_RPC_CONN_CONNECTING) {
        if (status < 0 || !res) {
            char reason[1024];
            snprintf(reason, sizeof reason, "cannot resolve host '%s': %s", c->host,
                     status < 0 ? uv_strerror(status) : "no address");
            sl__rpc_conn_fail(c, SL_EINVAL, reason);
        } else {
            start_tcp(c, res->ai_addr);
        }
    }
    uv_freeaddrinfo(res);
    sl_rpc_conn_unref(c); /* the resolution's reference */
}

static void resolve(sl_rpc_conn_t *c) {
    union {
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } a;
    if (uv_ip4_addr(c->host, c->port, &a.v4) == 0 || uv_ip6_addr(c->host, c->port, &a.v6) == 0) {
        start_tcp(c, (const struct sockaddr *)&a);
        return;
    }
    char service[16];
    snprintf(service, sizeof service, "%d", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->gai.data = c;
    sl_rpc_conn_ref(c);
    int rc = uv_getaddrinfo(&c->ep->loop, &c->gai, gai_cb, c->host, service, &hints);
    if (rc < 0) {
        sl_rpc_conn_unref(c);
        sl__rpc_conn_fail(c, rc, uv_strerror(rc));
    }
}

static void connect_op_run(sl_rpc_endpoint_t *ep, sl_rpc_op_t *op, int status) {
    connect_op_t *o = (connect_op_t *)op;
    sl_rpc_conn_t *c = NULL;
    if (status == 0)
        status = sl__rpc_conn_new(ep, 1, &c);
    if (status < 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "connect to %s:%d failed: %s", o->host, o->port,
                 status == SL_ECANCELED ? "endpoint stopped" : sl_strerror(status));
        o->cb(status, NULL, msg, o->arg);
        sl_free(o->host);
        sl_free(o);
        return;
    }
    c->host = o->host; /* ownership moves to the connection */
    c->port = o->port;
    c->timeout_ms = o->timeout_ms;
    c->connect_cb = o->cb;
    c->connect_arg = o->arg;
    snprintf(c->peer_addr, sizeof c->peer_addr, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host, c->port);
    sl_free(o);
    sl__rpc_conn_arm_deadline(c, c->timeout_ms);
    resolve(c);
}

int sl_rpc_connect_async(sl_rpc_endpoint_t *ep, const char *host, int port, uint32_t timeout_ms,
                         sl_rpc_connect_cb cb, void *arg) {
    if (!host || !*host || port <= 0 || port > 65535 || !cb)
        return SL_EINVAL;
    connect_op_t *o = sl_calloc(1, sizeof *o);
    if (!o)
        return SL_ENOMEM;
    o->host = sl_strdup(host);
    if (!o->host) {
        sl_free(o);
        return SL_ENOMEM;
    }
    o->op.fn = connect_op_run;
    o->port = port;
    o->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    o->cb = cb;
    o->arg = arg;
    int rc = sl__rpc_post(ep, &o->op);
    if (rc < 0) {
        sl_free(o->host);
        sl_free(o);
    }
    return rc;
}

/* ---- blocking wrapper ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    sl_rpc_conn_t *conn;
    char *err;
    size_t errlen;
} connect_wait_t;

static void connect_sync_cb(int status, sl_rpc_conn_t *conn, const char *errmsg, void *arg) {
    connect_wait_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->conn = conn;
    if (errmsg)
        sl__rpc_snprintf(w->err, w->errlen, "%s", errmsg);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int sl_rpc_connect(sl_rpc_endpoint_t *ep, const char *host, int port, uint32_t timeout_ms,
                   sl_rpc_conn_t **out, char *err, size_t errlen) {
    SL_ASSERT(!sl_rpc_endpoint_on_loop(ep)); /* it would wait for itself */
    sl__rpc_snprintf(err, errlen, "%s", "");
    connect_wait_t w = {.err = err, .errlen = errlen};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = sl_rpc_connect_async(ep, host, port, timeout_ms, connect_sync_cb, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.status;
        *out = w.conn;
    } else {
        sl__rpc_snprintf(err, errlen, "connect to %s:%d failed: %s", host ? host : "", port, sl_strerror(rc));
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}
