/* A TaskManager's part of distributed jobs: a DeployJob from the JobMaster becomes a run of the
 * job's local subtasks (sl_minicluster_run_placed) on its own thread, with the channels to
 * subtasks on other TaskManagers bridged over the data plane, and every local task's end
 * reported back as a TaskStateUpdate.
 *
 * Every TaskManager derives the same channel ids from (job, edge, producer, consumer), so the
 * exporting and the importing side meet without any further coordination. Checkpoints are the
 * JobMaster's: its triggers reach the run's source subtasks, the subtasks write to the job's
 * checkpoint storage (a directory every process shares) and their acknowledgements go back as
 * AcknowledgeCheckpoint messages; a DeployJob may name a checkpoint to restore. */
#ifndef SL_MINICLUSTER_TM_JOB_H
#define SL_MINICLUSTER_TM_JOB_H

#include "network/net.h"
#include "rpc/rpc.h"

typedef struct sl_tm_jobs_s sl_tm_jobs_t;

int sl_tm_jobs_create(sl_net_t *net, sl_tm_jobs_t **out);
/* Loop thread: answers `req` (Ack, or an Error when the job cannot start here) and starts the
 * run; `jm` is where TaskStateUpdates go (a reference is taken). */
void sl_tm_jobs_deploy(sl_tm_jobs_t *j, sl_rpc_conn_t *jm, sl_rpc_request_t *req, const Sluice__Rpc__DeployJob *m);
/* Loop thread: the JobMaster's checkpoint trigger and completion notice for a run here (an
 * attempt that is not running here is ignored). */
void sl_tm_jobs_trigger(sl_tm_jobs_t *j, const Sluice__Rpc__TriggerCheckpoint *m);
void sl_tm_jobs_notify_complete(sl_tm_jobs_t *j, const Sluice__Rpc__NotifyCheckpointComplete *m);
/* Any thread: cancels the job's run here, if any. */
void sl_tm_jobs_cancel(sl_tm_jobs_t *j, const char *job_id);
/* Number of runs still going (finished runs are reaped here). */
unsigned sl_tm_jobs_running(sl_tm_jobs_t *j);
/* Cancels every run and waits for them. */
void sl_tm_jobs_destroy(sl_tm_jobs_t *j);

#endif
