/* The JobManager process: one RPC endpoint hosting the ResourceManager (with its driver), the
 * Dispatcher with its JobMasters, and their SlotPools, routing each message to the one it is
 * for. */
#ifndef SL_JOBMASTER_JOBMANAGER_H
#define SL_JOBMASTER_JOBMANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "jobmaster/slot_pool.h"
#include "resourcemanager/rm_service.h"

struct sl_config_s;
typedef struct sl_jobmanager_s sl_jobmanager_t;

typedef struct sl_jobmanager_config_s {
    const struct sl_config_s *config; /* jobmanager.*, resourcemanager.*, heartbeat.*, ... */
    const char *secret;               /* the cluster's shared secret */
    const char *sluice_bin;           /* the binary TaskManagers are started with (local, slurm) */
} sl_jobmanager_config_t;

/* Listens on jobmanager.rpc.address:jobmanager.rpc.port and creates the driver. Errors name
 * the address or the driver's problem in err. */
int sl_jobmanager_start(const sl_jobmanager_config_t *cfg, sl_jobmanager_t **out, char *err, size_t errlen);
int sl_jobmanager_port(const sl_jobmanager_t *jm);
sl_rm_service_t *sl_jobmanager_rm(sl_jobmanager_t *jm);
struct sl_dispatcher_s *sl_jobmanager_dispatcher(sl_jobmanager_t *jm);
/* A job's pool receives the offers for its job id (at most 64 pools at once). */
int sl_jobmanager_add_pool(sl_jobmanager_t *jm, sl_slot_pool_t *pool);
void sl_jobmanager_remove_pool(sl_jobmanager_t *jm, sl_slot_pool_t *pool);
/* Owner thread, about every 100 ms. */
void sl_jobmanager_tick(sl_jobmanager_t *jm);
/* Stops everything; TaskManagers the driver started are stopped too. */
void sl_jobmanager_stop(sl_jobmanager_t *jm);

#endif
