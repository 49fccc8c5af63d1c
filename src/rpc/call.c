/* Request / response and one-way messages over an open connection: calls with their
 * correlation ids and timeouts, replies (possibly later, from any thread), incoming dispatch
 * to the endpoint's handler, and the blocking call wrapper.
 *
 * DESIGN. A call is packed on the caller's thread (its id comes from an atomic counter of the
 * endpoint, so the message is final before it leaves the caller) and posted to the loop,
 * which writes it and links it, oldest first, into its connection's pending list with its own
 * timer. Responses usually come back in order, so looking a response up from the head of the
 * list is O(1) in practice. A call ends exactly once: response, timeout, or connection close. */
#include "rpc/rpc_internal.h"

#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"

/* ---- pending list ---- */

static void link_call(sl_rpc_conn_t *c, sl_rpc_call_t *call) {
    call->next = NULL;
    call->prev = c->calls_tail;
    if (c->calls_tail)
        c->calls_tail->next = call;
    else
        c->calls_head = call;
    c->calls_tail = call;
}

static void unlink_call(sl_rpc_conn_t *c, sl_rpc_call_t *call) {
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls_head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    else
        c->calls_tail = call->prev;
    call->next = call->prev = NULL;
}

static void free_call(sl_rpc_call_t *call) {
    sl_rpc_conn_unref(call->conn);
    sl_free(call->frame);
    sl_free(call);
}

static void call_timer_closed(uv_handle_t *h) {
    free_call(h->data);
}

/* Runs the callback and releases the call. The call is already unlinked. */
static void finish(sl_rpc_call_t *call, int status, sl_rpc_msg_t *resp) {
    call->cb(status, resp, call->arg);
    if (call->timer_init)
        uv_close((uv_handle_t *)&call->timer, call_timer_closed);
    else
        free_call(call);
}

static void call_timeout_cb(uv_timer_t *t) {
    sl_rpc_call_t *call = t->data;
    unlink_call(call->conn, call);
    finish(call, SL_ETIMEDOUT, NULL);
}

void sl__rpc_call_fail_all(sl_rpc_conn_t *c, int status) {
    while (c->calls_head) {
        sl_rpc_call_t *call = c->calls_head;
        unlink_call(c, call);
        finish(call, status, NULL);
    }
}

void sl__rpc_call_response(sl_rpc_conn_t *c, sl_rpc_msg_t *msg) {
    sl_rpc_call_t *call = c->calls_head;
    while (call && call->id != msg->correlation_id)
        call = call->next;
    if (!call) {
        /* Normal after a timeout: the answer came too late. */
        SL_DEBUG("rpc: response %llu from %s matches no pending call", (unsigned long long)msg->correlation_id,
                 c->peer_addr);
        sl_rpc_msg_free(msg);
        return;
    }
    unlink_call(c, call);
    int status = 0;
    if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY_ERROR)
        status = msg->error->code < 0 ? msg->error->code : SL_EFAILED;
    finish(call, status, msg);
}

/* Loop thread: the call goes out. */
static void call_op_run(sl_rpc_endpoint_t *ep, sl_rpc_op_t *op, int status) {
    sl_rpc_call_t *call = (sl_rpc_call_t *)op;
    sl_rpc_conn_t *c = call->conn;
    if (status == 0 && c->state != SL_RPC_CONN_OPEN)
        status = SL_ECANCELED;
    if (status < 0) {
        finish(call, status, NULL);
        return;
    }
    uint8_t *frame = call->frame;
    call->frame = NULL;
    link_call(c, call);
    if (call->timeout_ms) {
        uv_timer_init(&ep->loop, &call->timer);
        call->timer.data = call;
        call->timer_init = 1;
        uv_timer_start(&call->timer, call_timeout_cb, call->timeout_ms, 0);
    }
    /* A failed write closes the connection, which fails this call with the rest. */
    sl__rpc_conn_write(c, frame, call->frame_len);
}

static int pack_envelope(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg, uint8_t **frame, size_t *len) {
    if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY__NOT_SET)
        return SL_EINVAL;
    return sl_rpc_frame_pack(SL_RPC_FRAME_MSG, &msg->base, conn->ep->cfg.max_frame_size, frame, len);
}

int sl_rpc_call(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg, uint32_t timeout_ms, sl_rpc_call_cb cb, void *arg) {
    if (!conn || !msg || !cb)
        return SL_EINVAL;
    msg->kind = SLUICE__RPC__KIND__KIND_REQUEST;
    msg->correlation_id = atomic_fetch_add(&conn->ep->next_call_id, 1);
    sl_rpc_call_t *call = sl_calloc(1, sizeof *call);
    if (!call)
        return SL_ENOMEM;
    int rc = pack_envelope(conn, msg, &call->frame, &call->frame_len);
    if (rc < 0) {
        sl_free(call);
        return rc;
    }
    call->op.fn = call_op_run;
    call->id = msg->correlation_id;
    call->timeout_ms = timeout_ms;
    call->cb = cb;
    call->arg = arg;
    call->conn = conn;
    sl_rpc_conn_ref(conn);
    rc = sl__rpc_post(conn->ep, &call->op);
    if (rc < 0)
        free_call(call);
    return rc;
}

/* ---- frames without a pending call: one-way messages and replies ---- */

typedef struct {
    sl_rpc_op_t op;
    sl_rpc_conn_t *conn; /* a reference */
    uint8_t *frame;
    size_t len;
} write_op_t;

static void write_op_run(sl_rpc_endpoint_t *ep, sl_rpc_op_t *op, int status) {
    write_op_t *w = (write_op_t *)op;
    if (status == 0 && w->conn->state == SL_RPC_CONN_OPEN)
        sl__rpc_conn_write(w->conn, w->frame, w->len);
    else
        sl_free(w->frame); /* the connection closed meanwhile: best effort, dropped */
    sl_rpc_conn_unref(w->conn);
    sl_free(w);
}

static int post_frame(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg) {
    write_op_t *w = sl_calloc(1, sizeof *w);
    if (!w)
        return SL_ENOMEM;
    int rc = pack_envelope(conn, msg, &w->frame, &w->len);
    if (rc < 0) {
        sl_free(w);
        return rc;
    }
    w->op.fn = write_op_run;
    w->conn = conn;
    sl_rpc_conn_ref(conn);
    rc = sl__rpc_post(conn->ep, &w->op);
    if (rc < 0) {
        sl_rpc_conn_unref(conn);
        sl_free(w->frame);
        sl_free(w);
    }
    return rc;
}

int sl_rpc_send(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg) {
    if (!conn || !msg)
        return SL_EINVAL;
    msg->kind = SLUICE__RPC__KIND__KIND_ONEWAY;
    msg->correlation_id = 0;
    return post_frame(conn, msg);
}

void sl_rpc_request_discard(sl_rpc_request_t *req) {
    if (!req)
        return;
    sl_rpc_conn_unref(req->conn);
    sl_free(req);
}

sl_rpc_conn_t *sl_rpc_request_conn(const sl_rpc_request_t *req) {
    return req->conn;
}

int sl_rpc_reply(sl_rpc_request_t *req, sl_rpc_msg_t *resp) {
    if (!req)
        return SL_EINVAL;
    int rc = SL_EINVAL;
    if (resp) {
        resp->kind = SLUICE__RPC__KIND__KIND_RESPONSE;
        resp->correlation_id = req->id;
        rc = post_frame(req->conn, resp);
    }
    sl_rpc_request_discard(req);
    return rc;
}

int sl_rpc_reply_error(sl_rpc_request_t *req, int code, const char *message) {
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    Sluice__Rpc__Error err;
    sl_rpc_msg_set_error(&env, &err, code, message);
    return sl_rpc_reply(req, &env);
}

/* ---- incoming ---- */

void sl__rpc_dispatch_incoming(sl_rpc_conn_t *c, sl_rpc_msg_t *msg) {
    sl_rpc_endpoint_t *ep = c->ep;
    sl_rpc_request_t *req = NULL;
    if (msg->kind == SLUICE__RPC__KIND__KIND_REQUEST) {
        req = sl_malloc(sizeof *req);
        if (!req) {
            /* The caller times out; the connection itself is fine. */
            SL_WARN("rpc: out of memory for a request from %s", c->peer_addr);
            sl_rpc_msg_free(msg);
            return;
        }
        req->conn = c;
        req->id = msg->correlation_id;
        sl_rpc_conn_ref(c);
    }
    if (req && msg->body_case == SLUICE__RPC__ENVELOPE__BODY_HEARTBEAT)
        sl__heartbeat_answer(ep, req);
    else if (ep->cfg.handler)
        ep->cfg.handler(c, req, msg, ep->cfg.handler_arg);
    else if (req)
        sl_rpc_reply_error(req, SL_EINVAL, "no handler for requests on this endpoint");
    sl_rpc_msg_free(msg);
}

/* ---- blocking call ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    sl_rpc_msg_t *resp;
} call_wait_t;

static void call_sync_cb(int status, sl_rpc_msg_t *resp, void *arg) {
    call_wait_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->resp = resp;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu); /* `w` is on the waiter's stack: not touched after this */
}

int sl_rpc_call_sync(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg, uint32_t timeout_ms, sl_rpc_msg_t **resp) {
    SL_ASSERT(!sl_rpc_endpoint_on_loop(conn->ep)); /* it would wait for itself */
    *resp = NULL;
    call_wait_t w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = sl_rpc_call(conn, msg, timeout_ms, call_sync_cb, &w);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.status;
        *resp = w.resp;
    }
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}
