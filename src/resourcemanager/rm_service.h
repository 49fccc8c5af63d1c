/* The ResourceManager: registered TaskManagers and their slots, slot requests of JobMasters,
 * and TaskManagers started or stopped on demand through a driver (local, standalone, slurm).
 *
 * DESIGN
 * It runs inside the JobManager process on that process's RPC endpoint. A slot request is
 * matched against the free slots the TaskManagers report (registration, then every heartbeat
 * answer carries a slot report); a matched TaskManager gets RequestSlot and offers the slot to
 * the JobMaster itself (the seed's sequence). When no free slot fits, the driver starts as many
 * TaskManagers as the unmatched requests need, minus those already starting. A request not
 * served within its timeout fails with a message saying what the cluster had. TaskManagers
 * that miss heartbeats are dropped and reported; TaskManagers the driver started are stopped
 * once idle. All state is under one lock: RPC callbacks (loop thread), the owner's tick
 * (another thread) and the any-thread calls below touch it, each only briefly.
 *
 * The driver is never called under that lock, nor on the loop thread: its calls (start,
 * stop, poll) are queued to a driver thread of their own (driver_thread.h), and the tick takes
 * in the finished ones. A Slurm command that takes its full command_timeout_ms therefore
 * delays nothing but the next driver call. A TaskManager counts as starting from the moment
 * its start is queued; a start that fails fails the requests nothing else can serve with the
 * driver's reason, as soon as the tick sees it; at most one poll is outstanding. */
#ifndef SL_RESOURCEMANAGER_RM_SERVICE_H
#define SL_RESOURCEMANAGER_RM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resourcemanager/driver.h"
#include "rpc/rpc.h"

typedef struct sl_rm_service_s sl_rm_service_t;

/* A slot request failed (status < 0, message) before a TaskManager took it. */
typedef void (*sl_rm_request_failed_cb)(void *arg, const char *allocation_id, int status, const char *message);
/* A registered TaskManager was lost (missed heartbeats or connection closed). */
typedef void (*sl_rm_tm_lost_cb)(void *arg, const char *tm_id, const char *addr, const char *reason);

typedef struct sl_rm_service_config_s {
    sl_rpc_endpoint_t *ep;            /* the JobManager's endpoint (borrowed) */
    sl_rm_driver_t *driver;           /* borrowed; "standalone" never starts anything */
    const char *const *tm_argv;       /* the TaskManager command; "{id}" in an argument is
                                       * replaced by the TaskManager id chosen here */
    const char *const *tm_env;        /* extra environment (e.g. the secret), may be NULL */
    sl_rm_profile_t tm_profile;       /* resources of one started TaskManager */
    uint32_t max_taskmanagers;        /* started by the driver at most, 0 = no limit */
    uint32_t heartbeat_interval_ms;
    uint32_t heartbeat_timeout_ms;
    uint32_t slot_request_timeout_ms;
    uint32_t idle_timeout_ms;         /* stop driver-started TaskManagers idle this long */
    sl_rm_tm_lost_cb on_tm_lost;
    void *arg;
} sl_rm_service_config_t;

/* Starts the driver thread and the heartbeat manager. The driver is borrowed and used only
 * by the driver thread until sl_rm_service_destroy() returns. Errors: SL_EINVAL, SL_ENOMEM,
 * thread creation and heartbeat errors. */
int sl_rm_service_create(const sl_rm_service_config_t *cfg, sl_rm_service_t **out);
/* The JobManager is stopping: TaskManagers going away from now on are not reported lost, and
 * driver calls still queued are dropped. */
void sl_rm_service_shutdown(sl_rm_service_t *rm);
/* Owner thread, after the endpoint stopped. Waits for the driver call in progress (at most one
 * Slurm command's timeout) and joins the driver thread; workers that were started stay with
 * the driver, whose destroy (after this) stops them. */
void sl_rm_service_destroy(sl_rm_service_t *rm);

/* Loop thread: handles RegisterTaskManager. Returns true when the message was the RM's. */
bool sl_rm_service_handle(sl_rm_service_t *rm, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg);
/* Loop thread: a connection closed (a TaskManager's, maybe). */
void sl_rm_service_conn_closed(sl_rm_service_t *rm, sl_rpc_conn_t *conn);

/* Any thread: asks for one slot for `job_id`; the slot is later offered to the JobMaster by
 * the TaskManager (OfferSlots), or `failed` is called. Errors: SL_EEXIST (allocation id in
 * use), SL_ENOMEM. */
int sl_rm_service_request_slot(sl_rm_service_t *rm, const char *job_id, const char *allocation_id,
                               sl_rm_request_failed_cb failed, void *arg);
/* Any thread: forgets a request; its failure callback is never called after this returns. */
void sl_rm_service_cancel_request(sl_rm_service_t *rm, const char *allocation_id);
/* Any thread: the JobMaster gives a slot back (FreeSlot to its TaskManager). */
int sl_rm_service_free_slot(sl_rm_service_t *rm, const char *tm_id, const char *allocation_id);

/* Any thread: a registered TaskManager's data-plane address and a reference to its connection
 * (release with sl_rpc_conn_unref). SL_ENOENT when it is not registered (any more). */
int sl_rm_service_tm_info(sl_rm_service_t *rm, const char *tm_id, char *host, size_t hostlen, int *port,
                          sl_rpc_conn_t **conn);

/* Owner thread, every ~100 ms: takes in finished driver calls, expires requests, queues
 * starts, stops of idle TaskManagers and a poll. Never waits for the driver. */
void sl_rm_service_tick(sl_rm_service_t *rm);

/* Counts for logs and tests. */
typedef struct sl_rm_stats_s {
    uint32_t registered;  /* TaskManagers */
    uint32_t free_slots;
    uint32_t pending;     /* requests not yet served */
    uint32_t starting;    /* TaskManagers started, not yet registered */
    uint32_t started;     /* TaskManagers the driver started in all */
    uint32_t lost;        /* TaskManagers lost in all */
} sl_rm_stats_t;
sl_rm_stats_t sl_rm_service_stats(sl_rm_service_t *rm);

#endif
