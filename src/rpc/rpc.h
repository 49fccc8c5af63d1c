/* The control-plane RPC between Sluice processes (JobManager, ResourceManager, TaskManagers,
 * the CLI): an endpoint owns a libuv loop on its own thread, listens and connects over TCP,
 * authenticates every connection with the cluster's shared secret, and carries request /
 * response and one-way Envelopes (sluice.proto). docs/rpc.md describes the protocol.
 *
 * THREADS. Every function here may be called from any thread unless it says otherwise; work
 * is marshalled onto the loop thread through a locked queue woken by uv_async_send. Every
 * callback (handler, call and connect callbacks, on_close, heartbeat callbacks) runs on the
 * endpoint's loop thread, never concurrently with another callback of the same endpoint, and
 * must not block. The *_sync functions block and must NOT be called on the loop thread.
 *
 * ERRORS (libuv's rule): when a function that takes a callback returns an error, the callback
 * is never called; once it returned 0 the callback runs exactly once.
 *
 * OWNERSHIP. Messages passed in are borrowed for the duration of the call (they are packed
 * before the function returns). Messages passed to a call callback belong to the callback
 * (free with sl_rpc_msg_free); messages passed to a handler are borrowed until it returns. */
#ifndef SL_RPC_RPC_H
#define SL_RPC_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "rpc/message.h"

#define SL_RPC_PROTOCOL_VERSION 1u
/* Authentication failure (wrong shared secret on either side): -EACCES. */

typedef struct sl_rpc_endpoint_s sl_rpc_endpoint_t;
struct sl_tls_ctx_s; /* rpc/tls.h */
typedef struct sl_rpc_conn_s sl_rpc_conn_t;
typedef struct sl_rpc_request_s sl_rpc_request_t;

/* An incoming request (req != NULL: answer it once with sl_rpc_reply / sl_rpc_reply_error,
 * now or later from any thread, or give it up with sl_rpc_request_discard) or one-way message
 * (req == NULL). `conn` is borrowed for the duration of the callback (sl_rpc_conn_ref to keep
 * it). Heartbeat requests never reach the handler: the endpoint answers them itself. */
typedef void (*sl_rpc_handler_cb)(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg,
                                  void *arg);
/* The result of sl_rpc_call. status 0: `resp` is the response. status < 0 and resp == NULL:
 * SL_ETIMEDOUT, SL_ECANCELED (connection or endpoint closed) or another transport error.
 * status < 0 and resp != NULL: the peer answered with an Error body (status = its code). The
 * callback owns resp. */
typedef void (*sl_rpc_call_cb)(int status, sl_rpc_msg_t *resp, void *arg);
/* The result of sl_rpc_connect_async: status 0 and an authenticated connection the callback
 * owns one reference of (release it with sl_rpc_conn_close or sl_rpc_conn_unref), or an error
 * and a message naming the address (e.g. "connect to 10.0.0.7:6123 failed: connection refused"). */
typedef void (*sl_rpc_connect_cb)(int status, sl_rpc_conn_t *conn, const char *errmsg, void *arg);
/* An authenticated connection closed (either side). status SL_ECANCELED for a clean close. */
typedef void (*sl_rpc_close_cb)(sl_rpc_conn_t *conn, int status, void *arg);
/* Supplies the payload of this endpoint's heartbeat responses (e.g. a packed SlotReport):
 * sets *data to an sl_malloc'd buffer (the endpoint frees it) and *len, or leaves *data NULL. */
typedef void (*sl_rpc_heartbeat_payload_cb)(void *arg, uint8_t **data, size_t *len);

typedef struct sl_rpc_endpoint_config_s {
    const char *id;             /* this process, e.g. "tm-3" (copied) */
    const char *role;           /* "jobmanager", "resourcemanager", "taskmanager", "cli" (copied) */
    const uint8_t *secret;      /* the cluster's shared secret (copied); must not be empty */
    size_t secret_len;
    uint32_t max_frame_size;    /* 0 = 64 MiB */
    uint32_t handshake_timeout_ms; /* server side: a peer must authenticate within it; 0 = 10 s */
    uint32_t protocol_version;  /* 0 = SL_RPC_PROTOCOL_VERSION; only tests set another */
    sl_rpc_handler_cb handler;  /* NULL: requests are answered with an Error (SL_EINVAL) */
    void *handler_arg;
    sl_rpc_close_cb on_close;   /* optional */
    void *on_close_arg;
    sl_rpc_heartbeat_payload_cb heartbeat_payload; /* optional */
    void *heartbeat_payload_arg;
    /* Optional TLS (rpc/tls.h): every connection runs a mutual TLS handshake first, then the
     * shared-secret handshake inside it. Borrowed: the endpoint keeps its own reference. NULL
     * means the process default (sl_tls_set_default), which is no TLS unless a process set it. */
    struct sl_tls_ctx_s *tls;
} sl_rpc_endpoint_config_t;

/* ---- Endpoint ---- */

/* Creates an endpoint (not yet running). Errors: SL_EINVAL (no secret, id or role), SL_ENOMEM,
 * libuv errors. */
int sl_rpc_endpoint_create(const sl_rpc_endpoint_config_t *cfg, sl_rpc_endpoint_t **out);
/* Starts the loop thread. Errors: SL_EINVAL (already started), thread creation errors. */
int sl_rpc_endpoint_start(sl_rpc_endpoint_t *ep);
/* Closes the listener and every connection (their pending calls fail with SL_ECANCELED),
 * stops heartbeat managers and joins the loop thread. Idempotent. Not on the loop thread. */
void sl_rpc_endpoint_stop(sl_rpc_endpoint_t *ep);
/* Stops if needed and frees the endpoint. Connections the caller still references stay
 * valid (closed) until their last sl_rpc_conn_unref. NULL is a no-op. Not on the loop thread. */
void sl_rpc_endpoint_destroy(sl_rpc_endpoint_t *ep);
/* True on the endpoint's loop thread. */
int sl_rpc_endpoint_on_loop(const sl_rpc_endpoint_t *ep);
const char *sl_rpc_endpoint_id(const sl_rpc_endpoint_t *ep);

/* Listens on host:port (numeric or a name; port 0 picks a free port, *bound_port gets the port
 * actually bound). Blocks until bound. Errors, with a message naming the address in `err`:
 * SL_EADDRINUSE, SL_EINVAL (bad address, already listening), other socket errors. */
int sl_rpc_listen(sl_rpc_endpoint_t *ep, const char *host, int port, int *bound_port, char *err,
                  size_t errlen);

/* Connects to host:port and runs the handshake; everything within timeout_ms (0 = 10 s), so an
 * unreachable peer gives SL_ETIMEDOUT, never a hang. Errors arrive through cb (see
 * sl_rpc_connect_cb): SL_ECONNREFUSED, SL_ETIMEDOUT, SL_EAUTH, SL_EPROTO (version or
 * protocol), resolution errors. Returns SL_ECANCELED / SL_ENOMEM / SL_EINVAL directly. */
int sl_rpc_connect_async(sl_rpc_endpoint_t *ep, const char *host, int port, uint32_t timeout_ms,
                         sl_rpc_connect_cb cb, void *arg);
/* Blocking sl_rpc_connect_async: *out gets a connection reference; `err` the message. Not on
 * the loop thread. */
int sl_rpc_connect(sl_rpc_endpoint_t *ep, const char *host, int port, uint32_t timeout_ms,
                   sl_rpc_conn_t **out, char *err, size_t errlen);

/* ---- Connections ---- */

void sl_rpc_conn_ref(sl_rpc_conn_t *conn);
/* Drops a reference without closing. The last one frees the connection once it is closed. */
void sl_rpc_conn_unref(sl_rpc_conn_t *conn);
/* Closes the connection (pending calls fail with SL_ECANCELED) and drops the caller's
 * reference. */
void sl_rpc_conn_close(sl_rpc_conn_t *conn);
/* "ip:port" of the peer; valid while the caller holds a reference. */
const char *sl_rpc_conn_peer_addr(const sl_rpc_conn_t *conn);
/* The peer's id and role from the handshake ("" before it completes). Same lifetime. */
const char *sl_rpc_conn_peer_id(const sl_rpc_conn_t *conn);
const char *sl_rpc_conn_peer_role(const sl_rpc_conn_t *conn);

/* ---- Messages ---- */

/* Sends `msg` as a request (sets msg->kind and msg->correlation_id) and calls cb once with the
 * response, SL_ETIMEDOUT after timeout_ms (0 = no timeout), or SL_ECANCELED when the
 * connection closes first. Direct errors: SL_ECANCELED (endpoint stopped), SL_ERANGE (above
 * the frame limit), SL_ENOMEM, SL_EINVAL (no body). */
int sl_rpc_call(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg, uint32_t timeout_ms, sl_rpc_call_cb cb, void *arg);
/* Blocking sl_rpc_call. On 0 *resp is the response (caller frees it); on an Error answer the
 * code is returned and *resp still holds the Error (or NULL for transport errors). Not on the
 * loop thread. */
int sl_rpc_call_sync(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg, uint32_t timeout_ms, sl_rpc_msg_t **resp);
/* Sends `msg` one-way (sets kind ONEWAY). Delivery is best effort: a closed connection drops it. */
int sl_rpc_send(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg);

/* Answers a request and releases `req` (also when it fails). A reply for a connection that
 * closed meanwhile is dropped. Errors: SL_ERANGE, SL_ENOMEM, SL_ECANCELED (endpoint stopped). */
int sl_rpc_reply(sl_rpc_request_t *req, sl_rpc_msg_t *resp);
/* Answers with an Error body {code, message} and releases `req`. */
int sl_rpc_reply_error(sl_rpc_request_t *req, int code, const char *message);
/* Releases `req` without answering (the caller will time out). */
void sl_rpc_request_discard(sl_rpc_request_t *req);
/* The connection a request came on (borrowed while req is). */
sl_rpc_conn_t *sl_rpc_request_conn(const sl_rpc_request_t *req);

#endif
