/* The TaskManager's side of the slot protocol: registration with the ResourceManager, the slot
 * table, slot requests answered by offering the slot to the JobMaster, and heartbeats in both
 * directions (the TaskManager's heartbeat answers carry its slot report).
 *
 * DESIGN
 * The TaskManager owns one RPC endpoint (a client) and one connection to the JobManager
 * process, which hosts the ResourceManager and the JobMasters: a slot request from the
 * ResourceManager is acknowledged at once and the slot is then offered to the JobMaster over
 * the same connection. Every callback runs on the endpoint's loop thread; the slot table is
 * guarded by a lock because the owner thread reads it too. Losing the JobManager marks the
 * service disconnected; the owner decides whether to register again or exit. */
#ifndef SL_TASKEXECUTOR_TM_SERVICE_H
#define SL_TASKEXECUTOR_TM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

#define SL_TM_MAX_SLOTS 4096

typedef struct sl_tm_service_s sl_tm_service_t;

typedef struct sl_tm_service_config_s {
    const char *id;                 /* this TaskManager, e.g. "tm-1" */
    const uint8_t *secret;          /* the cluster's shared secret */
    size_t secret_len;
    uint32_t slots;
    double cpu_cores;               /* reported with the registration */
    uint64_t memory_bytes;
    uint32_t heartbeat_interval_ms; /* to watch the JobManager */
    uint32_t heartbeat_timeout_ms;
    const char *data_host;          /* the data plane's address, sent with the registration */
    int data_port;
    /* Messages about jobs (DeployJob, CancelJob), on the loop thread; returns true when it
     * handled the message. May be NULL. */
    bool (*on_job_message)(void *arg, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg);
    void *job_arg;
} sl_tm_service_config_t;

typedef enum { SL_TM_SLOT_FREE = 0, SL_TM_SLOT_ALLOCATED, SL_TM_SLOT_ACTIVE } sl_tm_slot_state_t;

typedef struct sl_tm_slot_info_s {
    sl_tm_slot_state_t state;
    char allocation_id[64];
    char job_id[64];
} sl_tm_slot_info_t;

/* Creates the service and starts its endpoint. Errors: SL_EINVAL (no id, no secret, 0 or too
 * many slots), SL_ENOMEM. */
int sl_tm_service_create(const sl_tm_service_config_t *cfg, sl_tm_service_t **out);
/* Connects to the JobManager at host:port and registers, retrying refused connections until
 * `timeout_ms` passes. Errors name the address: SL_ECONNREFUSED / SL_ETIMEDOUT (nobody
 * there), SL_EAUTH (wrong secret), SL_EPROTO, or the ResourceManager's refusal. */
int sl_tm_service_register(sl_tm_service_t *tm, const char *host, int port, uint32_t timeout_ms, char *err,
                           size_t errlen);
/* True while registered and the JobManager answers heartbeats. */
bool sl_tm_service_connected(sl_tm_service_t *tm);
/* A copy of slot i's state. */
sl_tm_slot_info_t sl_tm_service_slot(sl_tm_service_t *tm, uint32_t i);
void sl_tm_service_destroy(sl_tm_service_t *tm);

#endif
