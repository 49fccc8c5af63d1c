/* Internals shared by the src/network/net_*.c files: the service, connection and remote
 * channel structures and the functions each file exports to the others (sl__net_*).
 * Not for use outside src/network/net_*.c. */
#ifndef SL_NETWORK_NET_INTERNAL_H
#define SL_NETWORK_NET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "network/net.h"
#include "network/net_frame.h"
#include "rpc/auth.h"
#include "rpc/tls.h"

#define SL_NET_ADDR_MAX 64
#define SL_NET_BUCKETS 256
#define SL_NET_MSG_MAX 512
#define SL_NET_DISCARD_CHUNK (16u * 1024u)
/* Write batching (net_conn.c): the frames a connection queues during one loop iteration go
 * out in one uv_write of up to this many BUFFER frames, with control frames and headers
 * packed into the request's arena. Under TLS a batch also stays below SL_NET_BATCH_TLS_BYTES,
 * so its ciphertext fits the session's reusable buffers (rpc/tls.c keeps up to 256 KiB). */
#define SL_NET_BATCH_FRAMES 16u
#define SL_NET_BATCH_IOV (2u * SL_NET_BATCH_FRAMES + 1u)
#define SL_NET_BATCH_ARENA 2048u
#define SL_NET_BATCH_TLS_BYTES (192u * 1024u)
#define SL_NET_SPARE_BATCHES 4u
/* Reads (net_conn.c): bytes asked for beyond a BUFFER payload, into its segment's slack, so
 * the next frame header usually comes with the payload's last read; and the size of a read
 * outside payloads, where a few payload bytes that come along are cheaper to copy than the
 * read(2) they save. */
#define SL_NET_READ_AHEAD 64u
#define SL_NET_HEADER_READ 512u

typedef struct sl_net_conn_s sl_net_conn_t;
typedef struct sl_net_batch_s sl_net_batch_t; /* net_conn.c */

/* A synchronous operation run on the loop thread (sl__net_run). */
typedef struct sl_net_op_s {
    struct sl_net_op_s *next;
    void (*fn)(void *arg);
    void *arg;
    int done;
    int status;
} sl_net_op_t;

/* A PARTITION_REQUEST for a channel not exported yet (the consumer was deployed first). */
typedef struct sl_net_pending_s {
    struct sl_net_pending_s *next;
    sl_net_conn_t *conn;
    uint64_t id;
    uint32_t credit;
} sl_net_pending_t;

/* Fields marked "mu" are guarded by net->mu; counters are atomic; everything else belongs to
 * the loop thread once the loop runs. */
struct sl_net_s {
    char *id;
    uint8_t *secret;
    size_t secret_len;
    sl_tls_ctx_t *tls;   /* a reference, or NULL: plain TCP */
    sl_net_config_t cfg; /* id/secret/tls point at the copies above */
    uv_loop_t loop;
    uv_async_t async;
    /* Submit the connections' open write batches before the loop blocks (prepare: after
     * timers and write callbacks) and after each round of I/O callbacks (check). */
    uv_prepare_t flush_prepare;
    uv_check_t flush_check;
    uint32_t open_batches; /* connections with frames queued but not submitted */
    pthread_t thread;
    pthread_t loop_tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* mu: ops done, channel closes done */
    sl_net_op_t *ops_head; /* mu */
    sl_net_op_t *ops_tail; /* mu */
    int async_open;        /* mu: uv_async_send allowed */
    int running;           /* mu: the loop thread runs; 0 after stop */
    sl_mailbox_t mailbox;
    uv_tcp_t listener;
    int port;
    char listen_addr[SL_NET_ADDR_MAX];
    sl_net_conn_t *conns;
    sl_net_channel_t *buckets[SL_NET_BUCKETS];
    sl_net_pending_t *pending;
    atomic_uint open_conns;
    atomic_uint_fast64_t dialed, accepted, refused, buffers_out, buffers_in, bytes_out, bytes_in, writes;
};

typedef enum {
    SL_NET_CONN_CONNECTING, /* client: TCP connect */
    SL_NET_CONN_HANDSHAKE,  /* HELLO / AUTH / AUTH_OK */
    SL_NET_CONN_OPEN,       /* authenticated: channel frames flow */
    SL_NET_CONN_CLOSING,    /* flushing a refusal, or handles closing */
} sl_net_conn_state_t;

/* One connection; loop thread only. Freed when both handles are closed (libuv calls the
 * callbacks of cancelled writes before the close callback, so no write outlives it). */
struct sl_net_conn_s {
    sl_net_t *net;
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect + handshake deadline, then a refusal's flush deadline */
    uv_connect_t connect_req;
    int handles_open;
    int handles_closing;
    int is_client;
    int close_after_write; /* a refusal: close once the ERROR frame is flushed */
    sl_net_conn_state_t state;
    char peer_addr[SL_NET_ADDR_MAX];
    char peer_id[SL_NET_MAX_ID + 1]; /* client: the id expected; server: the id proven */
    uint8_t sn[SL_AUTH_NONCE_SIZE];
    uint8_t cn[SL_AUTH_NONCE_SIZE];
    int got_hello;
    int got_bytes;        /* anything read yet */
    sl_tls_t *tls;        /* the TLS session when the service has TLS, else NULL */
    int tls_ready;        /* its handshake completed: the shared-secret handshake runs inside */
    int plain_refusal;    /* TLS endpoint refusing a peer that never spoke TLS: write in plain text */
    sl_net_decoder_t dec;
    /* The BUFFER payload being read: straight into rx_buf, or dropped when rx_discard. */
    sl_buffer_t *rx_buf;
    sl_net_channel_t *rx_ch;
    int rx_discard;
    uint32_t pending_writes;
    sl_net_batch_t *batch;  /* frames queued, submitted at the end of the loop iteration */
    sl_net_batch_t *spare;  /* completed batches kept for reuse (at most SL_NET_SPARE_BATCHES) */
    uint32_t nspare;
    sl_net_conn_t *next, *prev;
    uint8_t rbuf[SL_NET_DISCARD_CHUNK];
};

typedef enum { SL_NET_EXPORT = 1, SL_NET_IMPORT = 2 } sl_net_channel_kind_t;

/* A remote channel endpoint. `error`/`msg` are published once by the loop thread (msg
 * first, then error with release order); `closed` is guarded by net->mu; all other fields
 * belong to the loop thread. */
struct sl_net_channel_s {
    sl_net_channel_kind_t kind;
    uint64_t id;
    sl_net_t *net;
    sl_channel_t *ch;
    sl_net_conn_t *conn; /* bound connection, or NULL */
    sl_net_channel_t *next_hash;
    atomic_int error;
    char msg[SL_NET_MSG_MAX];
    int closing; /* close requested: waits for `inflight` to drain */
    int closed;  /* mu */
    /* export */
    int64_t remote_credit;
    sl_channel_entry_t held; /* popped, waiting for credit */
    int has_held;
    uint32_t inflight; /* buffers being written */
    int end_sent;
    int discard; /* failed or cancelled: drain and release, send nothing */
    /* import */
    sl_buffer_pool_t *pool;
    int credit_seen; /* ch->credit as last announced */
    int requested;
    int ended;
    char *host;
    int port;
    char *peer_id;
};

/* net_service.c */
/* Runs fn(arg) on the loop thread and waits (inline on the loop thread). SL_ECANCELED when
 * the service is stopped (fn did not run). */
int sl__net_run(sl_net_t *net, void (*fn)(void *arg), void *arg);
int sl__net_on_loop(sl_net_t *net);
sl_net_channel_t *sl__net_lookup(sl_net_t *net, sl_net_channel_kind_t kind, uint64_t id);
void sl__net_register(sl_net_t *net, sl_net_channel_t *c);
void sl__net_unregister(sl_net_t *net, sl_net_channel_t *c);
/* Calls fn on every registered channel (fn may not unregister). */
void sl__net_each_channel(sl_net_t *net, void (*fn)(sl_net_channel_t *c, void *arg), void *arg);
/* Marks a channel closed under mu and wakes sl_net_channel_close. */
void sl__net_channel_closed(sl_net_channel_t *c);

/* net_conn.c */
int sl__net_conn_new(sl_net_t *net, int is_client, sl_net_conn_t **out);
void sl__net_accept_cb(uv_stream_t *server, int status);
int sl__net_conn_dial(sl_net_t *net, const char *host, int port, const char *peer_id, sl_net_conn_t **out);
/* Queues a control frame (payload copied) into the connection's write batch. SL_ECANCELED
 * when the connection is closing. Frames of a connection go out in the order queued. */
int sl__net_conn_send(sl_net_conn_t *c, uint8_t type, uint64_t channel, const void *payload, uint32_t len);
/* Queues a BUFFER frame written straight from buf; sl__net_export_written(ex, buf) once the
 * write completed or was cancelled. On error the buffer is still the caller's. */
int sl__net_conn_send_buffer(sl_net_conn_t *c, sl_net_channel_t *ex, sl_buffer_t *buf);
/* Submits the write batch now (a refusal's ERROR frame must go before the close). */
int sl__net_conn_flush(sl_net_conn_t *c);
/* Submits every connection's batch; the prepare and check handles call it. */
void sl__net_flush_all(sl_net_t *net);
/* Closes now, failing the channels bound to it with `reason`. Idempotent. */
void sl__net_conn_fail(sl_net_conn_t *c, int code, const char *reason);
/* Sends an ERROR frame {code, reason} and closes once it is flushed; logs the refusal. */
void sl__net_conn_refuse(sl_net_conn_t *c, int code, const char *reason);
void sl__net_conn_arm_deadline(sl_net_conn_t *c, uint32_t ms);
int sl__net_conn_start_reading(sl_net_conn_t *c);
/* The handshake finished. */
void sl__net_conn_opened(sl_net_conn_t *c);
/* "TaskManager <id> at <addr>" for messages. */
void sl__net_conn_describe(const sl_net_conn_t *c, char *buf, size_t len);

/* net_handshake.c */
/* Server: sends HELLO (with TLS not yet: see sl__net_handshake_hello), arms the deadline and
 * starts reading. */
int sl__net_handshake_server_start(sl_net_conn_t *c);
int sl__net_handshake_hello(sl_net_conn_t *c);
void sl__net_handshake_frame(sl_net_conn_t *c, const sl_net_frame_t *f);

/* net_export.c */
void sl__net_export_request(sl_net_conn_t *c, uint64_t id, uint32_t credit);
void sl__net_export_credit(sl_net_conn_t *c, uint64_t id, uint32_t credit);
void sl__net_export_cancel(sl_net_conn_t *c, uint64_t id);
/* A BUFFER frame of `ex` was written (or cancelled). */
void sl__net_export_written(sl_net_channel_t *ex, sl_buffer_t *buf, int status);
/* Drains what credit allows from every exported channel. */
void sl__net_export_pump_all(sl_net_t *net);
void sl__net_export_fail(sl_net_channel_t *ex, int code, const char *msg);

/* net_import.c */
/* A BUFFER header for channel `id`: sets the connection's read target. */
int sl__net_import_buffer_start(sl_net_conn_t *c, uint64_t id, uint32_t len);
/* The BUFFER payload is complete in c->rx_buf. */
void sl__net_import_buffer_done(sl_net_conn_t *c);
void sl__net_import_event(sl_net_conn_t *c, uint64_t id, const uint8_t *payload);
void sl__net_import_error(sl_net_conn_t *c, uint64_t id, int code, const char *msg);
/* Sends PARTITION_REQUESTs of imports waiting for this (now open) connection. */
void sl__net_import_conn_open(sl_net_conn_t *c);
/* Announces credit returned by consumer tasks. */
void sl__net_import_credit_all(sl_net_t *net);
void sl__net_import_fail(sl_net_channel_t *im, int code, const char *msg);

/* Channel failure common to both sides (net_service.c): publishes error + message once. */
int sl__net_channel_set_error(sl_net_channel_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
