/* Internals shared by the files of src/rpc: the endpoint, connection and call structures, the
 * cross-thread operation queue, and the functions each file exports to the others (sl__rpc_*).
 * Not for use outside src/rpc. */
#ifndef SL_RPC_RPC_INTERNAL_H
#define SL_RPC_RPC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "rpc/frame.h"
#include "rpc/rpc.h"
#include "rpc/tls.h"

#define SL_RPC_NONCE_SIZE 32
#define SL_RPC_PROOF_SIZE 32
#define SL_RPC_ADDR_MAX 300
#define SL_RPC_READ_BUF (64 * 1024)

struct sl_heartbeat_s;

/* A unit of work marshalled onto the loop thread. `fn` runs once on the loop with status 0, or
 * with SL_ECANCELED when the endpoint stops before running it; either way it owns the op. */
typedef struct sl_rpc_op_s sl_rpc_op_t;
typedef void (*sl_rpc_op_fn)(sl_rpc_endpoint_t *ep, sl_rpc_op_t *op, int status);
struct sl_rpc_op_s {
    sl_rpc_op_t *next;
    sl_rpc_op_fn fn;
};

/* Fields under "mu" are guarded by ep->mu; all other mutable fields belong to the loop thread. */
struct sl_rpc_endpoint_s {
    char *id;
    char *role;
    uint8_t *secret;
    size_t secret_len;
    sl_tls_ctx_t *tls;            /* a reference, or NULL: plain TCP */
    sl_rpc_endpoint_config_t cfg; /* cfg.id/role/secret/tls point at the copies above */
    uv_loop_t loop;
    uv_async_t async;
    pthread_t thread;
    int started; /* set by start, read by stop/destroy on the owner thread */
    int joined;
    atomic_uint_fast64_t next_call_id;
    pthread_mutex_t mu;
    sl_rpc_op_t *ops_head, *ops_tail; /* mu */
    int accepting;                    /* mu: 0 once stop began; posts then fail */
    int stop_requested;               /* mu */
    /* loop thread */
    uv_tcp_t listener;
    int listening;
    char listen_addr[SL_RPC_ADDR_MAX];
    sl_rpc_conn_t *conns;             /* every open connection, doubly linked */
    struct sl_heartbeat_s *heartbeats;
};

typedef enum {
    SL_RPC_CONN_CONNECTING, /* client: resolving / TCP connect */
    SL_RPC_CONN_HANDSHAKE,  /* HELLO / AUTH / AUTH_OK in progress */
    SL_RPC_CONN_OPEN,       /* authenticated: MSG frames flow */
    SL_RPC_CONN_CLOSING,    /* flushing a final ERROR frame, or handles closing */
    SL_RPC_CONN_CLOSED      /* handles closed; memory lives until the last reference */
} sl_rpc_conn_state_t;

typedef struct sl_rpc_call_s sl_rpc_call_t;

/* A connection. `refs` is atomic; peer_addr is immutable after creation and peer_id/peer_role
 * after the handshake; every other field belongs to the loop thread. The open handles hold
 * one reference, dropped when both are closed. */
struct sl_rpc_conn_s {
    atomic_int refs;
    sl_rpc_endpoint_t *ep;
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect + handshake deadline, then the flush deadline of a refusal */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    int handles_open;
    int handles_closing;
    int is_client;
    sl_rpc_conn_state_t state;
    int client_got_hello;
    int got_bytes;    /* anything read yet (to tell a silent peer, or a TLS one, from others) */
    sl_tls_t *tls;    /* the TLS session when the endpoint has TLS, else NULL */
    int tls_ready;    /* the TLS handshake completed; the shared-secret handshake runs next */
    char peer_addr[SL_RPC_ADDR_MAX];
    char *peer_id;
    char *peer_role;
    uint8_t server_nonce[SL_RPC_NONCE_SIZE];
    uint8_t client_nonce[SL_RPC_NONCE_SIZE];
    sl_rpc_frame_decoder_t dec;
    sl_rpc_call_t *calls_head, *calls_tail; /* pending calls, oldest first */
    /* client connect */
    sl_rpc_connect_cb connect_cb;
    void *connect_arg;
    uint32_t timeout_ms;
    uv_getaddrinfo_t gai;
    char *host;
    int port;
    int was_open;
    sl_rpc_conn_t *next, *prev; /* ep->conns */
    uint8_t rbuf[SL_RPC_READ_BUF];
};

/* A pending call (call.c). */
struct sl_rpc_call_s {
    sl_rpc_op_t op;
    sl_rpc_conn_t *conn; /* a reference */
    uint64_t id;
    uint8_t *frame;
    size_t frame_len;
    uint32_t timeout_ms;
    sl_rpc_call_cb cb;
    void *arg;
    uv_timer_t timer;
    int timer_init;
    sl_rpc_call_t *next, *prev;
};

struct sl_rpc_request_s {
    sl_rpc_conn_t *conn; /* a reference */
    uint64_t id;
};

/* endpoint.c */
int sl__rpc_post(sl_rpc_endpoint_t *ep, sl_rpc_op_t *op);
/* Runs fn(arg) on the loop thread and waits; inline when called on the loop or before start.
 * Returns SL_ECANCELED when the endpoint stopped (fn did not run). */
int sl__rpc_run_sync(sl_rpc_endpoint_t *ep, void (*fn)(void *arg), void *arg);
void sl__rpc_snprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* conn.c */
int sl__rpc_conn_new(sl_rpc_endpoint_t *ep, int is_client, sl_rpc_conn_t **out);
int sl__rpc_conn_start_reading(sl_rpc_conn_t *conn);
/* Queues a frame (takes ownership of buf). Fails with SL_ECANCELED when not writable. */
int sl__rpc_conn_write(sl_rpc_conn_t *conn, uint8_t *buf, size_t len);
/* Packs and writes a handshake/ERROR frame. */
int sl__rpc_conn_write_pb(sl_rpc_conn_t *conn, uint8_t kind, const ProtobufCMessage *msg);
/* Closes now: fails pending calls with `status`, reports a client connect failure with
 * `reason`, closes the handles. Idempotent. */
void sl__rpc_conn_fail(sl_rpc_conn_t *conn, int status, const char *reason);
/* Sends an ERROR frame {code, reason}, then closes once it is flushed (a refusal). */
void sl__rpc_conn_refuse(sl_rpc_conn_t *conn, int code, const char *reason);
/* Starts (or restarts) the connection's connect / handshake deadline. */
void sl__rpc_conn_arm_deadline(sl_rpc_conn_t *conn, uint32_t ms);
void sl__rpc_accept_cb(uv_stream_t *server, int status);
/* The handshake finished: stops the deadline, reports the client connect. */
void sl__rpc_conn_opened(sl_rpc_conn_t *conn);

/* handshake.c */
/* Server: sends HELLO (plain TCP; with TLS once its handshake completed), arms the deadline
 * and starts reading; with TLS only the latter two (HELLO waits for sl__rpc_handshake_hello). */
int sl__rpc_handshake_server_start(sl_rpc_conn_t *conn);
int sl__rpc_handshake_hello(sl_rpc_conn_t *conn);
/* A frame during the handshake; takes ownership of frame->payload. */
void sl__rpc_handshake_frame(sl_rpc_conn_t *conn, sl_rpc_frame_t *frame);
void sl__rpc_proof(const uint8_t *secret, size_t secret_len, int server, const uint8_t *sn,
                   const uint8_t *cn, const char *role, uint8_t out[SL_RPC_PROOF_SIZE]);
int sl__rpc_nonce(uint8_t out[SL_RPC_NONCE_SIZE]);

/* call.c */
/* A response arrived (takes ownership of msg). */
void sl__rpc_call_response(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg);
/* Fails every pending call of a closing connection. */
void sl__rpc_call_fail_all(sl_rpc_conn_t *conn, int status);
/* A request or one-way message arrived (takes ownership of msg). */
void sl__rpc_dispatch_incoming(sl_rpc_conn_t *conn, sl_rpc_msg_t *msg);

/* heartbeat.c */
/* Answers a heartbeat request on this endpoint's behalf (takes ownership of req). */
void sl__heartbeat_answer(sl_rpc_endpoint_t *ep, sl_rpc_request_t *req);
/* Endpoint stop: closes every heartbeat manager's timer. */
void sl__heartbeat_stop_all(sl_rpc_endpoint_t *ep);

#endif
