/* Heartbeats over RPC connections: a manager that sends a Heartbeat request to each monitored
 * peer every interval and reports a peer lost, once, when it has not answered for `timeout`
 * (Flink's HeartbeatManager). The answering side needs nothing but a running endpoint: the
 * endpoint answers heartbeat requests itself, with the payload its config's heartbeat_payload
 * callback supplies (a TaskManager's packed SlotReport), which reaches on_payload here.
 *
 * Threads: every function may be called from any thread; the callbacks run on the endpoint's
 * loop thread. A manager must be destroyed before its endpoint (after sl_rpc_endpoint_stop is
 * fine). */
#ifndef SL_RPC_HEARTBEAT_H
#define SL_RPC_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

typedef struct sl_heartbeat_s sl_heartbeat_t;

/* A peer missed heartbeats for `timeout` ms. Reported once; if the peer answers again later it
 * is healthy again and can be reported again. Strings are borrowed for the callback. */
typedef void (*sl_heartbeat_lost_cb)(void *arg, const char *peer_id, const char *peer_addr);
/* A heartbeat response arrived with this payload (len may be 0). Borrowed for the callback. */
typedef void (*sl_heartbeat_payload_cb)(void *arg, const char *peer_id, const uint8_t *payload, size_t len);

typedef struct sl_heartbeat_config_s {
    uint32_t interval_ms; /* 0 = 10 s (Flink's heartbeat.interval) */
    uint32_t timeout_ms;  /* 0 = 50 s (heartbeat.timeout); must be >= interval */
    sl_heartbeat_lost_cb on_lost;
    sl_heartbeat_payload_cb on_payload; /* optional */
    void *arg;
} sl_heartbeat_config_t;

/* Creates a manager on `ep` and starts its timer. Errors: SL_EINVAL (timeout < interval, no
 * on_lost), SL_ENOMEM, SL_ECANCELED (endpoint stopped). */
int sl_heartbeat_create(sl_rpc_endpoint_t *ep, const sl_heartbeat_config_t *cfg, sl_heartbeat_t **out);
/* Starts monitoring `peer_id` over `conn` (the manager takes its own reference). The timeout
 * counts from now. Errors: SL_EEXIST (already monitored), SL_ENOMEM, SL_ECANCELED. */
int sl_heartbeat_monitor(sl_heartbeat_t *hb, const char *peer_id, sl_rpc_conn_t *conn);
/* Stops monitoring `peer_id`. Errors: SL_ENOENT, SL_ECANCELED. */
int sl_heartbeat_unmonitor(sl_heartbeat_t *hb, const char *peer_id);
/* Stops the manager and frees it; no callback runs after it returns (when called off the loop
 * thread). NULL is a no-op. */
void sl_heartbeat_destroy(sl_heartbeat_t *hb);

#endif
