/* The Dispatcher: accepts jobs (SubmitJob), runs one JobMaster per job (job_master.h), and
 * answers JobStatus, ListJobs, CancelJob and TriggerSavepoint; TaskStateUpdates and
 * checkpoint acknowledgements from TaskManagers go to their job's JobMaster. */
#ifndef SL_JOBMASTER_DISPATCHER_H
#define SL_JOBMASTER_DISPATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jobmaster/job_master.h"
#include "jobmaster/jobmanager.h"
#include "rpc/rpc.h"

typedef struct sl_dispatcher_s sl_dispatcher_t;

/* A job as submitted: the encoded graph, the configuration lines, and the job library as
 * bytes (shipped to the TaskManagers) or, for compatibility, as a path they read. */
typedef struct sl_job_submission_s {
    const uint8_t *graph;
    size_t graph_len;
    const uint8_t *config;
    size_t config_len;
    const uint8_t *library; /* NULL when the job has no library */
    size_t library_len;
    const char *library_path;
} sl_job_submission_t;

/* A job's status as the Dispatcher knows it. */
typedef struct sl_job_info_s {
    char id[64];
    char name[128];
    int state;          /* Sluice__Rpc__JobState */
    int64_t start_ms, end_ms;
    char error[1024];   /* why it failed, "" otherwise */
} sl_job_info_t;

int sl_dispatcher_create(sl_jobmanager_t *jm, sl_dispatcher_t **out);
/* Any thread: checks the job (errors name what is wrong in err), starts its JobMaster and
 * writes its id. The inputs are copied. */
int sl_dispatcher_submit(sl_dispatcher_t *d, const sl_job_submission_t *s, char *job_id, size_t idlen, char *err,
                         size_t errlen);
/* Any thread: every job, newest first (*out freed with sl_free). */
int sl_dispatcher_jobs(sl_dispatcher_t *d, sl_job_info_t **out, size_t *n);
/* Any thread: one job; SL_ENOENT when there is no such job. */
int sl_dispatcher_job(sl_dispatcher_t *d, const char *id, sl_job_info_t *out);
/* Any thread: a savepoint of the job (stop: then the job ends, see job_master.h); `done` is
 * called exactly once unless the job does not exist (SL_ENOENT). */
int sl_dispatcher_savepoint(sl_dispatcher_t *d, const char *id, const char *target_dir, bool stop,
                            sl_savepoint_done_fn done, void *arg);
/* Any thread: asks the job to cancel; SL_ENOENT when there is no such job. */
int sl_dispatcher_cancel(sl_dispatcher_t *d, const char *id);
/* Loop thread: SubmitJob, JobStatus, ListJobs, CancelJob, TriggerSavepoint, TaskStateUpdate,
 * AcknowledgeCheckpoint. True if handled. */
bool sl_dispatcher_handle(sl_dispatcher_t *d, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg);
/* Cancels every job and waits for their JobMasters. */
void sl_dispatcher_destroy(sl_dispatcher_t *d);

#endif
