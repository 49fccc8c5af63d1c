/* The Dispatcher: accepts jobs (SubmitJob), runs one JobMaster thread per job, and answers
 * JobStatus, ListJobs and CancelJob.
 *
 * DESIGN
 * A JobMaster asks its SlotPool for as many slots as the job's largest parallelism, places
 * subtask i of every vertex in slot i, sends each TaskManager one DeployJob with its subtasks
 * and the whole placement (so both ends of every remote channel agree), and counts the
 * TaskStateUpdates: the job finishes when every subtask finished; the first failure, a lost
 * TaskManager or a cancel request cancels the job on every TaskManager. Failover (restart from
 * a checkpoint) and checkpoints of cluster jobs are not here yet: a failure fails the job. */
#ifndef SL_JOBMASTER_DISPATCHER_H
#define SL_JOBMASTER_DISPATCHER_H

#include <stdbool.h>

#include "jobmaster/jobmanager.h"
#include "rpc/rpc.h"

typedef struct sl_dispatcher_s sl_dispatcher_t;

int sl_dispatcher_create(sl_jobmanager_t *jm, sl_dispatcher_t **out);
/* Loop thread: SubmitJob, JobStatus, ListJobs, CancelJob, TaskStateUpdate. True if handled. */
bool sl_dispatcher_handle(sl_dispatcher_t *d, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg);
/* Cancels every job and waits for their JobMasters. */
void sl_dispatcher_destroy(sl_dispatcher_t *d);

#endif
