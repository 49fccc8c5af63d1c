/* The data-plane network service of one TaskManager: remote channels over TCP between
 * TaskManager processes, one authenticated connection per TaskManager pair, credit-based
 * flow control per channel (docs/data-plane.md).
 *
 * A remote channel is two ordinary local channels (channel.h), one in each process, bridged
 * by the network thread:
 *   producer TM: task --sl_record_writer--> [exported sl_channel_t] --net thread--> socket
 *   consumer TM: socket --net thread--> [imported sl_channel_t] --sl_record_reader--> task
 * The exported channel's consumer mailbox and the imported channel's producer mailbox are
 * the service's mailbox (sl_net_mailbox), which wakes the network loop. Buffers cross the
 * socket without per-record work: a BUFFER frame is the buffer's bytes, written from the
 * producer's buffer and read into the consumer pool's buffer.
 *
 * Threads: every function may be called from any thread except the network thread; the
 * blocking ones (create, stop, destroy, export, import, channel_close) wait for the loop.
 * Errors follow <sluice/error.h>; messages name the peer TaskManager and its address. */
#ifndef SL_NETWORK_NET_H
#define SL_NETWORK_NET_H

#include <stddef.h>
#include <stdint.h>

#include "core/mailbox.h"
#include "network/buffer_pool.h"
#include "network/channel.h"

#define SL_NET_PROTOCOL_VERSION 1u

typedef struct sl_net_s sl_net_t;
typedef struct sl_net_channel_s sl_net_channel_t;
struct sl_tls_ctx_s; /* rpc/tls.h */

typedef struct sl_net_config_s {
    const char *id;              /* this TaskManager's id, 1..255 bytes (copied) */
    const uint8_t *secret;       /* the cluster's shared secret (copied) */
    size_t secret_len;
    const char *host;            /* listen address (numeric IPv4/IPv6); NULL = 127.0.0.1 */
    int port;                    /* 0 = an ephemeral port, see sl_net_port */
    uint32_t protocol_version;   /* 0 = SL_NET_PROTOCOL_VERSION (other values: tests) */
    uint32_t max_buffer;         /* largest BUFFER frame accepted; 0 = 1 MiB (imports' segments must fit) */
    uint32_t connect_timeout_ms; /* TCP connect + handshake deadline; 0 = 10000 */
    /* Optional TLS (rpc/tls.h): mutual TLS on every connection, the shared-secret handshake
     * inside it. Borrowed: the service keeps its own reference. NULL = the process default
     * (sl_tls_set_default), which is no TLS unless a process set it. */
    struct sl_tls_ctx_s *tls;
} sl_net_config_t;

/* Counters for tests and metrics (relaxed snapshots). */
typedef struct sl_net_stats_s {
    uint32_t open_connections; /* authenticated and open now */
    uint64_t dialed;           /* connections this side opened */
    uint64_t accepted;         /* connections accepted (before authentication) */
    uint64_t refused;          /* incoming connections refused or dropped for a protocol error */
    uint64_t buffers_out, buffers_in;
    uint64_t bytes_out, bytes_in; /* BUFFER payload bytes */
    uint64_t writes;              /* socket writes (uv_write) submitted: frames go out in batches */
} sl_net_stats_t;

/* Starts the network thread and listens. On failure `err` says why (e.g. "cannot listen on
 * 127.0.0.1:1: permission denied") and nothing needs cleaning up. Errors: SL_EINVAL,
 * SL_ENOMEM, -errno of bind/listen. */
int sl_net_create(const sl_net_config_t *cfg, sl_net_t **out, char *err, size_t errlen);
/* The bound port. */
int sl_net_port(const sl_net_t *net);
const char *sl_net_id(const sl_net_t *net);
/* The mailbox to give exported channels as consumer and imported channels as producer. */
sl_mailbox_t *sl_net_mailbox(sl_net_t *net);
void sl_net_stats(sl_net_t *net, sl_net_stats_t *out);

/* Closes every connection (channels bound to them fail), stops and joins the network thread.
 * Idempotent. After it, wake-ups of the mailbox are ignored; the channels stay valid. */
void sl_net_stop(sl_net_t *net);
/* Stops, then frees the service. Every sl_net_channel_t must be closed before. */
void sl_net_destroy(sl_net_t *net);

/* Producer side: offers `ch` (borrowed until sl_net_channel_close; initialized with
 * consumer mailbox = sl_net_mailbox(net)) as channel `channel_id` to the TaskManager whose
 * consumer will send a PARTITION_REQUEST for it. Until then, and whenever the remote credit
 * is 0, the channel is not drained, so its producer blocks on its own credit only. Written
 * buffers are returned with sl_channel_release once the socket write completed.
 * Errors: SL_EEXIST (id already exported), SL_ECANCELED (stopped), SL_ENOMEM. */
int sl_net_export(sl_net_t *net, uint64_t channel_id, sl_channel_t *ch, sl_net_channel_t **out);

/* Consumer side: connects (or reuses the connection) to TaskManager `peer_id` at host:port
 * and requests channel `channel_id` into `ch` (borrowed until close; initialized with
 * producer mailbox = sl_net_mailbox(net) and credit = the buffers `pool` holds for it).
 * The initial credit announced is ch's credit; incoming buffers come from `pool` (borrowed),
 * so the receive memory is bounded by it. Buffers the consumer task releases with
 * sl_channel_release are announced back as credit. The sum of the initial credits of the
 * channels sharing a pool must not exceed its size.
 * Errors: SL_EINVAL (also: the pool's segments are larger than max_buffer, so full buffers
 * would be refused by this service's own decoder), SL_EEXIST, SL_ECANCELED, SL_ENOMEM;
 * connection failures come later, per channel (sl_net_channel_error). */
int sl_net_import(sl_net_t *net, const char *host, int port, const char *peer_id, uint64_t channel_id,
                  sl_channel_t *ch, sl_buffer_pool_t *pool, sl_net_channel_t **out);

/* 0 while the channel is healthy, else its error code with a message naming the peer and its
 * address in `msg`. When an imported channel fails, SL_CH_END is queued to it, so its
 * consumer task stops waiting: a task that sees SL_CH_END on a remote channel calls this and
 * fails with the message if it is not 0. A failed exported channel is drained and its
 * buffers released, so its producer never blocks on it; the producer task checks this
 * between writes (or on its periodic work) and fails. Any thread. */
int sl_net_channel_error(sl_net_channel_t *c, char *msg, size_t msglen);

/* An exported channel whose producer ended: waits until its END went to the connection (what
 * the producer wrote is then on its way), the channel failed, or `timeout_ms` passed
 * (SL_ETIMEDOUT: the consumer never asked for it). Imported channels return at once. Call
 * before sl_net_channel_close when the producer finished normally. Not on the loop thread. */
int sl_net_channel_flush(sl_net_channel_t *c, int64_t timeout_ms);

/* Unregisters the channel (an import still receiving sends CANCEL to the producer) and frees
 * the handle; waits for socket writes of its buffers to complete, so the caller may then
 * destroy `ch` and its pool. NULL is a no-op. */
void sl_net_channel_close(sl_net_channel_t *c);

#endif
