/* The Dispatcher: accepts jobs (SubmitJob), runs one JobMaster per job (job_master.h), and
 * answers JobStatus, ListJobs, CancelJob and TriggerSavepoint; TaskStateUpdates and
 * checkpoint acknowledgements from TaskManagers go to their job's JobMaster. */
#ifndef SL_JOBMASTER_DISPATCHER_H
#define SL_JOBMASTER_DISPATCHER_H

#include <stdbool.h>

#include "jobmaster/jobmanager.h"
#include "rpc/rpc.h"

typedef struct sl_dispatcher_s sl_dispatcher_t;

int sl_dispatcher_create(sl_jobmanager_t *jm, sl_dispatcher_t **out);
/* Loop thread: SubmitJob, JobStatus, ListJobs, CancelJob, TriggerSavepoint, TaskStateUpdate,
 * AcknowledgeCheckpoint. True if handled. */
bool sl_dispatcher_handle(sl_dispatcher_t *d, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg);
/* Cancels every job and waits for their JobMasters. */
void sl_dispatcher_destroy(sl_dispatcher_t *d);

#endif
