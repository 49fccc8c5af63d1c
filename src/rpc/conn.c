/* One RPC connection on the loop thread: accept and connect, reads fed to the frame decoder,
 * frame dispatch by connection state, writes, and the close paths (immediate, or a refusal
 * that flushes an ERROR frame first). The handshake itself is in handshake.c.
 *
 * DESIGN. A connection is reference counted: its two libuv handles (socket and deadline
 * timer) hold one reference until both are closed, and each user, pending call or queued
 * operation holds its own. Memory therefore outlives every callback that can still name it,
 * and the last sl_rpc_conn_unref, on whatever thread, frees a connection whose handles are
 * already closed. */
#include "rpc/rpc_internal.h"

#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"

/* How long a refused peer gets to read our ERROR frame before the socket is closed anyway. */
#define REFUSE_FLUSH_MS 2000

void sl_rpc_conn_ref(sl_rpc_conn_t *conn) {
    atomic_fetch_add_explicit(&conn->refs, 1, memory_order_relaxed);
}

void sl_rpc_conn_unref(sl_rpc_conn_t *conn) {
    if (atomic_fetch_sub_explicit(&conn->refs, 1, memory_order_acq_rel) != 1)
        return;
    SL_ASSERT(conn->handles_open == 0);
    sl_tls_destroy(conn->tls);
    sl_rpc_frame_decoder_destroy(&conn->dec);
    sl_free(conn->host);
    sl_free(conn->peer_id);
    sl_free(conn->peer_role);
    sl_free(conn);
}

const char *sl_rpc_conn_peer_addr(const sl_rpc_conn_t *conn) {
    return conn->peer_addr;
}

const char *sl_rpc_conn_peer_id(const sl_rpc_conn_t *conn) {
    return conn->peer_id ? conn->peer_id : "";
}

const char *sl_rpc_conn_peer_role(const sl_rpc_conn_t *conn) {
    return conn->peer_role ? conn->peer_role : "";
}

static void link_conn(sl_rpc_endpoint_t *ep, sl_rpc_conn_t *c) {
    c->next = ep->conns;
    c->prev = NULL;
    if (ep->conns)
        ep->conns->prev = c;
    ep->conns = c;
}

static void unlink_conn(sl_rpc_conn_t *c) {
    if (c->prev)
        c->prev->next = c->next;
    else if (c->ep->conns == c)
        c->ep->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void deadline_cb(uv_timer_t *t);

int sl__rpc_conn_new(sl_rpc_endpoint_t *ep, int is_client, sl_rpc_conn_t **out) {
    sl_rpc_conn_t *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;
    if (ep->tls && sl_tls_create(ep->tls, !is_client, (uv_stream_t *)&c->tcp, &c->tls) < 0) {
        sl_free(c);
        return SL_ENOMEM;
    }
    atomic_init(&c->refs, 1); /* the handles' reference */
    c->ep = ep;
    c->is_client = is_client;
    c->state = is_client ? SL_RPC_CONN_CONNECTING : SL_RPC_CONN_HANDSHAKE;
    uv_tcp_init(&ep->loop, &c->tcp);
    uv_timer_init(&ep->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    sl_rpc_frame_decoder_init(&c->dec, ep->cfg.max_frame_size);
    link_conn(ep, c);
    *out = c;
    return 0;
}

/* ---- closing ---- */

static void handle_closed(uv_handle_t *h) {
    sl_rpc_conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    c->state = SL_RPC_CONN_CLOSED;
    sl_rpc_conn_unref(c);
}

static void close_handles(sl_rpc_conn_t *c) {
    if (c->handles_closing)
        return;
    c->handles_closing = 1;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
    close_handles(req->handle->data);
}

static void flush_deadline_cb(uv_timer_t *t) {
    close_handles(t->data);
}

/* Everything a closing connection owes its users, then the handles. */
static void conn_close(sl_rpc_conn_t *c, int status, const char *reason, int graceful) {
    if (c->state >= SL_RPC_CONN_CLOSING)
        return;
    int was_open = c->state == SL_RPC_CONN_OPEN;
    c->state = SL_RPC_CONN_CLOSING;
    unlink_conn(c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    sl__rpc_call_fail_all(c, status);
    if (c->connect_cb) {
        sl_rpc_connect_cb cb = c->connect_cb;
        c->connect_cb = NULL;
        char msg[1400];
        snprintf(msg, sizeof msg, "connect to %s failed: %s", c->peer_addr, reason);
        cb(status, NULL, msg, c->connect_arg);
    }
    if (was_open && c->ep->cfg.on_close)
        c->ep->cfg.on_close(c, status, c->ep->cfg.on_close_arg);
    if (graceful && uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, shutdown_cb) == 0) {
        uv_timer_start(&c->timer, flush_deadline_cb, REFUSE_FLUSH_MS, 0);
        return;
    }
    close_handles(c);
}

void sl__rpc_conn_fail(sl_rpc_conn_t *conn, int status, const char *reason) {
    conn_close(conn, status, reason, 0);
}

void sl__rpc_conn_refuse(sl_rpc_conn_t *conn, int code, const char *reason) {
    if (conn->state >= SL_RPC_CONN_CLOSING)
        return;
    Sluice__Rpc__Error err = SLUICE__RPC__ERROR__INIT;
    err.code = code;
    err.message = (char *)reason;
    /* Best effort: a refusal that cannot be written still closes the connection. */
    int rc = sl__rpc_conn_write_pb(conn, SL_RPC_FRAME_ERROR, &err.base);
    conn_close(conn, code, reason, rc == 0);
}

/* ---- writing ---- */

typedef struct {
    uv_write_t req;
    uint8_t *buf;
    int cipher; /* buf came from sl_tls_encrypt */
} write_req_t;

static void free_buf(sl_rpc_conn_t *c, uint8_t *buf, int cipher) {
    if (cipher)
        sl_tls_buf_free(c->tls, buf);
    else
        sl_free(buf);
}

static void write_cb(uv_write_t *req, int status) {
    write_req_t *w = (write_req_t *)req;
    sl_rpc_conn_t *c = req->handle->data;
    free_buf(c, w->buf, w->cipher);
    sl_free(w);
    if (status < 0 && status != UV_ECANCELED) {
        char reason[1024];
        snprintf(reason, sizeof reason, "write to %s failed: %s", c->peer_addr, uv_strerror(status));
        SL_INFO("rpc: %s", reason);
        sl__rpc_conn_fail(c, status, reason);
    }
}

/* Queues bytes as they are (plaintext, or ciphertext from sl_tls_encrypt when `cipher`);
 * takes `buf`. */
static int write_raw(sl_rpc_conn_t *conn, uint8_t *buf, size_t len, int cipher) {
    write_req_t *w = sl_malloc(sizeof *w);
    if (!w) {
        free_buf(conn, buf, cipher);
        return SL_ENOMEM;
    }
    w->buf = buf;
    w->cipher = cipher;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, write_cb);
    if (rc < 0) {
        free_buf(conn, buf, cipher);
        sl_free(w);
        sl__rpc_conn_fail(conn, rc, uv_strerror(rc));
    }
    return rc;
}

int sl__rpc_conn_write(sl_rpc_conn_t *conn, uint8_t *buf, size_t len) {
    if (conn->state != SL_RPC_CONN_OPEN && conn->state != SL_RPC_CONN_HANDSHAKE) {
        sl_free(buf);
        return SL_ECANCELED;
    }
    if (!conn->tls)
        return write_raw(conn, buf, len, 0);
    /* TLS: the frame is encrypted now and the ciphertext written in its place. */
    uint8_t *cipher;
    size_t clen;
    char reason[512];
    uv_buf_t plain = uv_buf_init((char *)buf, (unsigned)len);
    int rc = sl_tls_encrypt(conn->tls, &plain, 1, &cipher, &clen, reason, sizeof reason);
    sl_free(buf);
    if (rc == SL_ECANCELED)
        return rc; /* before the TLS handshake completed: nothing can be sent yet */
    if (rc < 0) {
        SL_WARN("rpc: dropping connection %s: %s", conn->peer_addr, rc == SL_ENOMEM ? "out of memory" : reason);
        sl__rpc_conn_fail(conn, rc, rc == SL_ENOMEM ? "out of memory" : reason);
        return rc;
    }
    return write_raw(conn, cipher, clen, 1);
}

int sl__rpc_conn_write_pb(sl_rpc_conn_t *conn, uint8_t kind, const ProtobufCMessage *msg) {
    uint8_t *buf;
    size_t len;
    int rc = sl_rpc_frame_pack(kind, msg, conn->ep->cfg.max_frame_size, &buf, &len);
    if (rc < 0)
        return rc;
    return sl__rpc_conn_write(conn, buf, len);
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    sl_rpc_conn_t *c = h->data;
    if (c->tls) {
        *buf = sl_tls_read_buf(c->tls); /* ciphertext; rbuf then takes the plaintext */
        return;
    }
    buf->base = (char *)c->rbuf;
    buf->len = sizeof c->rbuf;
}

/* An ERROR frame after the handshake: the peer gives up on the connection. */
static void peer_error(sl_rpc_conn_t *c, sl_rpc_frame_t *f) {
    Sluice__Rpc__Error *e = sluice__rpc__error__unpack(&sl__rpc_pb_allocator, f->len, f->payload);
    char reason[1024];
    snprintf(reason, sizeof reason, "peer %s closed the connection: %s", c->peer_addr,
             e && e->message ? e->message : "(malformed error)");
    int code = e && e->code < 0 ? e->code : SL_EPROTO;
    if (e)
        sluice__rpc__error__free_unpacked(e, &sl__rpc_pb_allocator);
    SL_WARN("rpc: %s", reason);
    sl__rpc_conn_fail(c, code, reason);
}

static void open_frame(sl_rpc_conn_t *c, sl_rpc_frame_t *f) {
    if (f->kind == SL_RPC_FRAME_ERROR) {
        peer_error(c, f);
        return;
    }
    char reason[1024];
    if (f->kind != SL_RPC_FRAME_MSG) {
        snprintf(reason, sizeof reason, "unexpected %s frame after the handshake", sl_rpc_frame_kind_name(f->kind));
        SL_WARN("rpc: dropping connection %s: %s", c->peer_addr, reason);
        sl__rpc_conn_refuse(c, SL_EPROTO, reason);
        return;
    }
    sl_rpc_msg_t *msg;
    const char *what = NULL;
    int rc = sl_rpc_msg_unpack(f->payload, f->len, &msg, &what);
    if (rc < 0) {
        snprintf(reason, sizeof reason, "malformed message: %s", what);
        SL_WARN("rpc: dropping connection %s: %s", c->peer_addr, reason);
        sl__rpc_conn_refuse(c, rc, reason);
        return;
    }
    if (msg->kind == SLUICE__RPC__KIND__KIND_RESPONSE)
        sl__rpc_call_response(c, msg);
    else
        sl__rpc_dispatch_incoming(c, msg);
}

static void feed(sl_rpc_conn_t *c, const uint8_t *data, size_t n) {
    size_t pos = 0;
    while (pos < n && (c->state == SL_RPC_CONN_HANDSHAKE || c->state == SL_RPC_CONN_OPEN)) {
        sl_rpc_frame_t f;
        size_t used = 0;
        const char *what = NULL;
        int rc = sl_rpc_frame_decode(&c->dec, data + pos, n - pos, &used, &f, &what);
        pos += used;
        if (rc < 0) {
            char reason[1024];
            snprintf(reason, sizeof reason, "malformed frame: %s", what);
            SL_WARN("rpc: dropping connection %s: %s", c->peer_addr, reason);
            sl__rpc_conn_refuse(c, SL_EPROTO, reason);
            return;
        }
        if (rc == 0)
            return;
        if (c->state == SL_RPC_CONN_HANDSHAKE)
            sl__rpc_handshake_frame(c, &f); /* takes the payload */
        else {
            open_frame(c, &f);
            sl_free(f.payload);
        }
    }
}

/* ---- TLS ---- */

/* A plain-text refusal on a TLS endpoint, for a peer that never started TLS: a plain peer
 * reads it as an ordinary ERROR frame and reports the reason. */
static void refuse_in_plain_text(sl_rpc_conn_t *c, int code, const char *reason) {
    Sluice__Rpc__Error err = SLUICE__RPC__ERROR__INIT;
    err.code = code;
    err.message = (char *)reason;
    uint8_t *buf;
    size_t len;
    int rc = sl_rpc_frame_pack(SL_RPC_FRAME_ERROR, &err.base, c->ep->cfg.max_frame_size, &buf, &len);
    if (rc == 0)
        rc = write_raw(c, buf, len, 0);
    conn_close(c, code, reason, rc == 0);
}

static void tls_failed(sl_rpc_conn_t *c, int code, const char *reason) {
    if (c->is_client)
        SL_WARN("rpc endpoint %s: connection to %s: %s", c->ep->id, c->peer_addr, reason);
    else
        SL_WARN("rpc endpoint %s: refused connection from %s: %s", c->ep->id, c->peer_addr, reason);
    sl__rpc_conn_fail(c, code, reason);
}

static void tls_opened(sl_rpc_conn_t *c) {
    c->tls_ready = 1;
    char what[128];
    sl_tls_describe(c->tls, what, sizeof what);
    SL_DEBUG("rpc endpoint %s: TLS with %s established (%s)", c->ep->id, c->peer_addr, what);
    if (!c->is_client) {
        int rc = sl__rpc_handshake_hello(c);
        if (rc < 0)
            sl__rpc_conn_fail(c, rc, sl_strerror(rc));
    }
}

/* Ciphertext in: the TLS handshake first, then plaintext to the frame decoder, a TLS record
 * at a time (rbuf is free: the ciphertext came in the session's own buffer). */
static void tls_input(sl_rpc_conn_t *c, const uint8_t *data, size_t n) {
    char reason[512];
    if (sl_tls_feed(c->tls, data, n) < 0) {
        sl__rpc_conn_fail(c, SL_ENOMEM, "out of memory");
        return;
    }
    while (c->state == SL_RPC_CONN_HANDSHAKE || c->state == SL_RPC_CONN_OPEN) {
        ssize_t got = sl_tls_read(c->tls, c->rbuf, sizeof c->rbuf, reason, sizeof reason);
        if (got < 0) {
            tls_failed(c, (int)got, reason);
            return;
        }
        if (!c->tls_ready && sl_tls_ready(c->tls)) {
            tls_opened(c);
            continue;
        }
        if (got == 0)
            return;
        feed(c, c->rbuf, (size_t)got);
    }
}

/* The first bytes of a connection: a plain server that receives a TLS ClientHello says so
 * (the TLS client reports our plain-text answer as "not TLS"). */
static int first_bytes(sl_rpc_conn_t *c, const uint8_t *data, size_t n) {
    c->got_bytes = 1;
    if (c->tls || c->is_client || !sl_tls_looks_like_client_hello(data, n))
        return 0;
    const char *reason = "the peer started a TLS handshake, but TLS is not enabled on this endpoint "
                         "(security.ssl.internal.enabled)";
    SL_WARN("rpc endpoint %s: refused connection from %s: %s", c->ep->id, c->peer_addr, reason);
    sl__rpc_conn_refuse(c, SL_EPROTO, reason);
    return -1;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    sl_rpc_conn_t *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        char reason[1024];
        int status = nread == UV_EOF ? SL_ECANCELED : (int)nread;
        snprintf(reason, sizeof reason, "connection %s closed by the peer%s%s", c->peer_addr,
                 nread == UV_EOF ? "" : ": ", nread == UV_EOF ? "" : uv_strerror((int)nread));
        if (c->state == SL_RPC_CONN_OPEN)
            SL_INFO("rpc: %s", reason);
        sl__rpc_conn_fail(c, status, reason);
        return;
    }
    if (!c->got_bytes && first_bytes(c, (const uint8_t *)buf->base, (size_t)nread) < 0)
        return;
    if (c->tls)
        tls_input(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

int sl__rpc_conn_start_reading(sl_rpc_conn_t *conn) {
    int rc = uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb);
    if (rc < 0)
        sl__rpc_conn_fail(conn, rc, uv_strerror(rc));
    return rc;
}

/* ---- deadlines and open ---- */

static void deadline_cb(uv_timer_t *t) {
    sl_rpc_conn_t *c = t->data;
    char reason[1024];
    if (c->is_client) {
        const char *hint = "";
        if (c->state == SL_RPC_CONN_HANDSHAKE && !c->got_bytes)
            hint = c->tls ? " (the server never answered our TLS ClientHello: is TLS enabled on it?)"
                          : " (the server never said HELLO: does it require TLS?)";
        snprintf(reason, sizeof reason, "%s%s timed out after %u ms%s",
                 c->state == SL_RPC_CONN_CONNECTING ? "TCP connect" : "handshake",
                 c->tls && !c->tls_ready && c->state != SL_RPC_CONN_CONNECTING ? " (TLS)" : "", c->timeout_ms, hint);
        sl__rpc_conn_fail(c, SL_ETIMEDOUT, reason);
        return;
    }
    if (c->tls && !c->tls_ready) {
        if (sl_tls_bytes_in(c->tls) == 0) {
            snprintf(reason, sizeof reason, "no TLS handshake within %u ms: this endpoint requires TLS "
                     "(security.ssl.internal.enabled)", c->ep->cfg.handshake_timeout_ms);
            SL_WARN("rpc endpoint %s: refused connection from %s: %s", c->ep->id, c->peer_addr, reason);
            refuse_in_plain_text(c, SL_EPROTO, reason);
        } else {
            snprintf(reason, sizeof reason, "TLS handshake not finished within %u ms", c->ep->cfg.handshake_timeout_ms);
            tls_failed(c, SL_ETIMEDOUT, reason);
        }
        return;
    }
    snprintf(reason, sizeof reason, "no authentication within %u ms", c->ep->cfg.handshake_timeout_ms);
    SL_WARN("rpc: dropping connection %s: %s", c->peer_addr, reason);
    sl__rpc_conn_refuse(c, SL_ETIMEDOUT, reason);
}

void sl__rpc_conn_arm_deadline(sl_rpc_conn_t *conn, uint32_t ms) {
    uv_timer_start(&conn->timer, deadline_cb, ms, 0);
}

void sl__rpc_conn_opened(sl_rpc_conn_t *conn) {
    conn->state = SL_RPC_CONN_OPEN;
    uv_timer_stop(&conn->timer);
    if (conn->connect_cb) {
        sl_rpc_connect_cb cb = conn->connect_cb;
        conn->connect_cb = NULL;
        sl_rpc_conn_ref(conn); /* the caller's */
        cb(0, conn, NULL, conn->connect_arg);
    }
}

/* ---- accept ---- */

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t len) {
    char ip[64] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, len, "[%s]:%d", ip, port);
        return;
    }
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
    snprintf(out, len, "%s:%d", ip, port);
}

void sl__rpc_accept_cb(uv_stream_t *server, int status) {
    sl_rpc_endpoint_t *ep = server->data;
    if (status < 0) {
        SL_WARN("rpc endpoint %s: accept failed: %s", ep->id, uv_strerror(status));
        return;
    }
    sl_rpc_conn_t *c;
    if (sl__rpc_conn_new(ep, 0, &c) < 0) {
        SL_WARN("rpc endpoint %s: out of memory accepting a connection", ep->id);
        return;
    }
    snprintf(c->peer_addr, sizeof c->peer_addr, "(unknown peer)");
    int rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc == 0) {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
            format_addr(&ss, c->peer_addr, sizeof c->peer_addr);
        uv_tcp_nodelay(&c->tcp, 1);
        rc = sl__rpc_handshake_server_start(c);
    }
    if (rc < 0) {
        SL_WARN("rpc endpoint %s: dropping connection %s: %s", ep->id, c->peer_addr, sl_strerror(rc));
        sl__rpc_conn_fail(c, rc, sl_strerror(rc));
    }
}

/* ---- close from any thread ---- */

typedef struct {
    sl_rpc_op_t op;
    sl_rpc_conn_t *conn; /* the caller's reference, now the op's */
} close_op_t;

static void close_op_run(sl_rpc_endpoint_t *ep, sl_rpc_op_t *op, int status) {
    close_op_t *o = (close_op_t *)op;
    sl__rpc_conn_fail(o->conn, SL_ECANCELED, "closed locally");
    sl_rpc_conn_unref(o->conn);
    sl_free(o);
}

void sl_rpc_conn_close(sl_rpc_conn_t *conn) {
    if (!conn)
        return;
    close_op_t *o = sl_malloc(sizeof *o);
    if (o) {
        o->op.fn = close_op_run;
        o->conn = conn;
        if (sl__rpc_post(conn->ep, &o->op) == 0)
            return;
        sl_free(o);
    }
    /* The endpoint stopped (its teardown closed every connection) or memory ran out: the
     * handles are closed or will be at stop, so dropping the reference is all that is left. */
    sl_rpc_conn_unref(conn);
}
