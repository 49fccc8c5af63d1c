/* The network service of one TaskManager (net.h): its loop thread, the cross-thread
 * operations and wake-ups, the listening socket, the registry of remote channels.
 *
 * DESIGN. One libuv loop per service, on its own thread, owns every socket and every remote
 * channel's state. Other threads reach it two ways, both through one uv_async_t: blocking
 * operations (export, import, close, stop) are queued under `mu` and run on the loop
 * (sl__net_run); data-path wake-ups come from the service's mailbox, whose notify hook sends
 * the async when an exported channel goes from drained to non-empty, or a consumer returns the
 * first credit since the last announcement to an imported one (channel.h). The async callback then runs queued operations, announces
 * returned credit and drains exported channels as far as remote credit allows. Frames queued
 * in any callback are submitted per connection in one write by the prepare and check handles
 * (net_conn.c, "Writes are batched"). */
#include "network/net_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"

/* ---- wake-ups and operations ---- */

static void flush_prepare_cb(uv_prepare_t *h) {
    sl__net_flush_all(h->data);
}

static void flush_check_cb(uv_check_t *h) {
    sl__net_flush_all(h->data);
}

static void notify_cb(void *arg) {
    sl_net_t *net = arg;
    pthread_mutex_lock(&net->mu);
    if (net->async_open)
        uv_async_send(&net->async);
    pthread_mutex_unlock(&net->mu);
}

int sl__net_on_loop(sl_net_t *net) {
    return pthread_equal(pthread_self(), net->loop_tid);
}

static sl_net_op_t *pop_op(sl_net_t *net) {
    pthread_mutex_lock(&net->mu);
    sl_net_op_t *op = net->ops_head;
    if (op) {
        net->ops_head = op->next;
        if (!net->ops_head)
            net->ops_tail = NULL;
    }
    pthread_mutex_unlock(&net->mu);
    return op;
}

static void finish_op(sl_net_t *net, sl_net_op_t *op, int status) {
    pthread_mutex_lock(&net->mu);
    op->status = status;
    op->done = 1;
    pthread_cond_broadcast(&net->cv);
    pthread_mutex_unlock(&net->mu);
}

static void async_cb(uv_async_t *a) {
    sl_net_t *net = a->data;
    sl_net_op_t *op;
    while ((op = pop_op(net)) != NULL) {
        op->fn(op->arg);
        finish_op(net, op, 0);
    }
    /* The ready ring only says "something changed": every channel is checked below, so the
     * entries are dropped here to keep the ring from growing. */
    void *ready;
    while (sl_mailbox_wait_ready(&net->mailbox, 0, &ready) == 1)
        ;
    sl__net_import_credit_all(net);
    sl__net_export_pump_all(net);
}

int sl__net_run(sl_net_t *net, void (*fn)(void *arg), void *arg) {
    if (sl__net_on_loop(net)) {
        fn(arg);
        return 0;
    }
    sl_net_op_t op = {.fn = fn, .arg = arg};
    pthread_mutex_lock(&net->mu);
    if (!net->running) {
        pthread_mutex_unlock(&net->mu);
        return SL_ECANCELED;
    }
    if (net->ops_tail)
        net->ops_tail->next = &op;
    else
        net->ops_head = &op;
    net->ops_tail = &op;
    uv_async_send(&net->async);
    while (!op.done)
        pthread_cond_wait(&net->cv, &net->mu);
    pthread_mutex_unlock(&net->mu);
    return op.status;
}

/* ---- registry ---- */

static unsigned bucket(uint64_t id) {
    return (unsigned)((id * 0x9E3779B97F4A7C15ull) >> 56) % SL_NET_BUCKETS;
}

sl_net_channel_t *sl__net_lookup(sl_net_t *net, sl_net_channel_kind_t kind, uint64_t id) {
    for (sl_net_channel_t *c = net->buckets[bucket(id)]; c; c = c->next_hash)
        if (c->id == id && c->kind == kind)
            return c;
    return NULL;
}

void sl__net_register(sl_net_t *net, sl_net_channel_t *c) {
    unsigned b = bucket(c->id);
    c->next_hash = net->buckets[b];
    net->buckets[b] = c;
}

void sl__net_unregister(sl_net_t *net, sl_net_channel_t *c) {
    for (sl_net_channel_t **p = &net->buckets[bucket(c->id)]; *p; p = &(*p)->next_hash) {
        if (*p == c) {
            *p = c->next_hash;
            c->next_hash = NULL;
            return;
        }
    }
}

void sl__net_each_channel(sl_net_t *net, void (*fn)(sl_net_channel_t *c, void *arg), void *arg) {
    for (unsigned b = 0; b < SL_NET_BUCKETS; b++)
        for (sl_net_channel_t *c = net->buckets[b]; c; c = c->next_hash)
            fn(c, arg);
}

int sl__net_channel_set_error(sl_net_channel_t *c, int code, const char *fmt, ...) {
    if (atomic_load_explicit(&c->error, memory_order_relaxed) != 0)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&c->error, code ? code : SL_EIO, memory_order_release);
    SL_DEBUG("net: channel %016llx: %s", (unsigned long long)c->id, c->msg);
    return 1;
}

int sl_net_channel_error(sl_net_channel_t *c, char *msg, size_t msglen) {
    int e = atomic_load_explicit(&c->error, memory_order_acquire);
    if (msg && msglen)
        snprintf(msg, msglen, "%s", e ? c->msg : "");
    return e;
}

void sl__net_channel_closed(sl_net_channel_t *c) {
    pthread_mutex_lock(&c->net->mu);
    c->closed = 1;
    pthread_cond_broadcast(&c->net->cv);
    pthread_mutex_unlock(&c->net->mu);
}

/* ---- channel close ---- */

/* Gives back what the network side holds of the channel; the rest of `ch` is its owner's. */
static void drop_channel_state(sl_net_channel_t *c) {
    if (c->kind == SL_NET_EXPORT && c->has_held) {
        if (c->held.kind == SL_CH_BUFFER)
            sl_channel_release(c->ch, c->held.buf);
        c->has_held = 0;
    }
    sl_net_conn_t *conn = c->conn;
    if (c->kind == SL_NET_IMPORT && conn && conn->rx_ch == c) {
        if (conn->rx_buf)
            sl_buffer_recycle(conn->rx_buf);
        conn->rx_buf = NULL;
        conn->rx_ch = NULL;
        conn->rx_discard = 1;
    }
}

static void close_on_loop(void *arg) {
    sl_net_channel_t *c = arg;
    sl_net_conn_t *conn = c->conn;
    if (c->kind == SL_NET_IMPORT && conn && conn->state == SL_NET_CONN_OPEN && c->requested && !c->ended &&
        !atomic_load(&c->error))
        sl__net_conn_send(conn, SL_NET_FRAME_CANCEL, c->id, NULL, 0);
    drop_channel_state(c);
    sl__net_unregister(c->net, c);
    c->closing = 1;
    if (c->inflight == 0)
        sl__net_channel_closed(c);
}

typedef struct {
    sl_net_channel_t *c;
    int done;
} flush_arg_t;

static void flush_check_on_loop(void *arg) {
    flush_arg_t *a = arg;
    sl_net_channel_t *c = a->c;
    a->done = c->kind != SL_NET_EXPORT || c->end_sent || c->discard ||
              atomic_load_explicit(&c->error, memory_order_relaxed) != 0;
}

int sl_net_channel_flush(sl_net_channel_t *c, int64_t timeout_ms) {
    if (!c)
        return 0;
    int64_t end = sl_monotonic_ms() + timeout_ms;
    for (;;) {
        flush_arg_t a = {c, 0};
        if (sl__net_run(c->net, flush_check_on_loop, &a) != 0)
            return SL_ECANCELED;
        if (a.done)
            return atomic_load(&c->error) ? atomic_load(&c->error) : 0;
        if (sl_monotonic_ms() >= end)
            return SL_ETIMEDOUT;
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
}

void sl_net_channel_close(sl_net_channel_t *c) {
    if (!c)
        return;
    sl_net_t *net = c->net;
    if (sl__net_run(net, close_on_loop, c) == 0) {
        pthread_mutex_lock(&net->mu);
        while (!c->closed)
            pthread_cond_wait(&net->cv, &net->mu);
        pthread_mutex_unlock(&net->mu);
    } else {
        /* The loop is gone: nothing else touches the channel any more. */
        drop_channel_state(c);
        sl__net_unregister(net, c);
    }
    sl_free(c->host);
    sl_free(c->peer_id);
    sl_free(c);
}

/* ---- lifecycle ---- */

static void *loop_main(void *arg) {
    sl_net_t *net = arg;
    net->loop_tid = pthread_self();
    uv_run(&net->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int listen_on(sl_net_t *net, char *err, size_t errlen) {
    const char *host = net->cfg.host ? net->cfg.host : "127.0.0.1";
    struct sockaddr_storage ss;
    int rc = uv_ip4_addr(host, net->cfg.port, (struct sockaddr_in *)&ss);
    if (rc < 0)
        rc = uv_ip6_addr(host, net->cfg.port, (struct sockaddr_in6 *)&ss);
    if (rc < 0) {
        snprintf(err, errlen, "invalid listen address %s:%d (numeric address expected)", host, net->cfg.port);
        return SL_EINVAL;
    }
    uv_tcp_init(&net->loop, &net->listener);
    net->listener.data = net;
    rc = uv_tcp_bind(&net->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&net->listener, 128, sl__net_accept_cb);
    int len = sizeof ss;
    if (rc == 0)
        rc = uv_tcp_getsockname(&net->listener, (struct sockaddr *)&ss, &len);
    if (rc < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, net->cfg.port, uv_strerror(rc));
        return rc;
    }
    net->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(net->listen_addr, sizeof net->listen_addr, "%s:%d", host, net->port);
    return 0;
}

static int copy_config(sl_net_t *net, const sl_net_config_t *cfg) {
    net->cfg = *cfg;
    net->id = sl_strdup(cfg->id);
    net->secret = sl_malloc(cfg->secret_len);
    if (!net->id || !net->secret)
        return SL_ENOMEM;
    memcpy(net->secret, cfg->secret, cfg->secret_len);
    net->secret_len = cfg->secret_len;
    net->cfg.id = net->id;
    net->cfg.secret = net->secret;
    net->tls = cfg->tls ? cfg->tls : sl_tls_default();
    if (net->tls)
        sl_tls_ctx_ref(net->tls);
    net->cfg.tls = net->tls;
    net->cfg.host = NULL; /* only used during create, see listen_on */
    if (!net->cfg.protocol_version)
        net->cfg.protocol_version = SL_NET_PROTOCOL_VERSION;
    if (!net->cfg.max_buffer)
        net->cfg.max_buffer = SL_NET_DEFAULT_MAX_BUFFER;
    if (!net->cfg.connect_timeout_ms)
        net->cfg.connect_timeout_ms = 10000;
    return 0;
}

static void free_net(sl_net_t *net) {
    sl_free(net->id);
    sl_free(net->secret);
    sl_tls_ctx_destroy(net->tls);
    sl_free(net);
}

/* Closes the handles of a service whose thread never started. */
static void abort_create(sl_net_t *net, int listener_open) {
    uv_close((uv_handle_t *)&net->async, NULL);
    uv_close((uv_handle_t *)&net->flush_prepare, NULL);
    uv_close((uv_handle_t *)&net->flush_check, NULL);
    if (listener_open)
        uv_close((uv_handle_t *)&net->listener, NULL);
    uv_run(&net->loop, UV_RUN_DEFAULT);
    uv_loop_close(&net->loop);
    sl_mailbox_destroy(&net->mailbox);
    pthread_cond_destroy(&net->cv);
    pthread_mutex_destroy(&net->mu);
    free_net(net);
}

int sl_net_create(const sl_net_config_t *cfg, sl_net_t **out, char *err, size_t errlen) {
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *err = '\0';
    size_t idlen = cfg->id ? strlen(cfg->id) : 0;
    if (idlen == 0 || idlen > SL_NET_MAX_ID || !cfg->secret || cfg->secret_len == 0) {
        snprintf(err, errlen, "network service needs an id of 1..%u bytes and a shared secret", SL_NET_MAX_ID);
        return SL_EINVAL;
    }
    sl_net_t *net = sl_calloc(1, sizeof *net);
    if (!net)
        return SL_ENOMEM;
    if (copy_config(net, cfg) < 0) {
        free_net(net);
        return SL_ENOMEM;
    }
    if (sl_mailbox_init(&net->mailbox) < 0) {
        free_net(net);
        return SL_ENOMEM;
    }
    pthread_mutex_init(&net->mu, NULL);
    pthread_cond_init(&net->cv, NULL);
    sl_mailbox_set_notify(&net->mailbox, notify_cb, net);
    int rc = uv_loop_init(&net->loop);
    if (rc < 0) {
        sl_mailbox_destroy(&net->mailbox);
        free_net(net);
        return rc;
    }
    uv_async_init(&net->loop, &net->async, async_cb);
    net->async.data = net;
    uv_prepare_init(&net->loop, &net->flush_prepare);
    uv_check_init(&net->loop, &net->flush_check);
    net->flush_prepare.data = net;
    net->flush_check.data = net;
    uv_prepare_start(&net->flush_prepare, flush_prepare_cb);
    uv_check_start(&net->flush_check, flush_check_cb);
    sl_net_config_t c = *cfg;
    net->cfg.host = c.host;
    rc = listen_on(net, err, errlen);
    net->cfg.host = NULL;
    if (rc < 0) {
        abort_create(net, 1);
        return rc;
    }
    net->running = 1;
    net->async_open = 1;
    if (pthread_create(&net->thread, NULL, loop_main, net) != 0) {
        snprintf(err, errlen, "cannot start the network thread");
        abort_create(net, 1);
        return SL_ENOMEM;
    }
    SL_INFO("net %s: data plane listening on %s%s", net->id, net->listen_addr, net->tls ? " (TLS)" : "");
    *out = net;
    return 0;
}

int sl_net_port(const sl_net_t *net) {
    return net->port;
}

const char *sl_net_id(const sl_net_t *net) {
    return net->id;
}

sl_mailbox_t *sl_net_mailbox(sl_net_t *net) {
    return &net->mailbox;
}

void sl_net_stats(sl_net_t *net, sl_net_stats_t *s) {
    s->open_connections = atomic_load(&net->open_conns);
    s->dialed = atomic_load(&net->dialed);
    s->accepted = atomic_load(&net->accepted);
    s->refused = atomic_load(&net->refused);
    s->buffers_out = atomic_load(&net->buffers_out);
    s->buffers_in = atomic_load(&net->buffers_in);
    s->bytes_out = atomic_load(&net->bytes_out);
    s->bytes_in = atomic_load(&net->bytes_in);
    s->writes = atomic_load(&net->writes);
}

static void fail_unbound(sl_net_channel_t *c, void *arg) {
    if (c->kind == SL_NET_EXPORT)
        sl__net_export_fail(c, SL_ECANCELED, "network service stopped");
    else
        sl__net_import_fail(c, SL_ECANCELED, "network service stopped");
}

static void stop_on_loop(void *arg) {
    sl_net_t *net = arg;
    while (net->conns)
        sl__net_conn_fail(net->conns, SL_ECANCELED, "network service stopped");
    sl__net_each_channel(net, fail_unbound, NULL);
    uv_close((uv_handle_t *)&net->listener, NULL);
    uv_close((uv_handle_t *)&net->flush_prepare, NULL);
    uv_close((uv_handle_t *)&net->flush_check, NULL);
    pthread_mutex_lock(&net->mu);
    net->running = 0;
    net->async_open = 0;
    pthread_mutex_unlock(&net->mu);
    uv_close((uv_handle_t *)&net->async, NULL);
    /* Operations queued meanwhile never run: their callers get SL_ECANCELED. */
    sl_net_op_t *op;
    while ((op = pop_op(net)) != NULL)
        finish_op(net, op, SL_ECANCELED);
}

void sl_net_stop(sl_net_t *net) {
    pthread_mutex_lock(&net->mu);
    int running = net->running;
    pthread_mutex_unlock(&net->mu);
    if (!running || sl__net_run(net, stop_on_loop, net) != 0)
        return;
    pthread_join(net->thread, NULL);
    uv_loop_close(&net->loop);
    SL_INFO("net %s: stopped", net->id);
}

void sl_net_destroy(sl_net_t *net) {
    if (!net)
        return;
    sl_net_stop(net);
    for (unsigned b = 0; b < SL_NET_BUCKETS; b++) {
        while (net->buckets[b]) {
            SL_WARN("net %s: channel %016llx was not closed before the service was destroyed", net->id,
                    (unsigned long long)net->buckets[b]->id);
            sl_net_channel_close(net->buckets[b]);
        }
    }
    while (net->pending) {
        sl_net_pending_t *p = net->pending;
        net->pending = p->next;
        sl_free(p);
    }
    sl_mailbox_destroy(&net->mailbox);
    pthread_cond_destroy(&net->cv);
    pthread_mutex_destroy(&net->mu);
    free_net(net);
}
