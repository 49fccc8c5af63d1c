/* The JobMaster of one job: a thread that asks its SlotPool for slots, places subtask i of
 * every vertex in slot i, sends each TaskManager one DeployJob, watches the TaskStateUpdates,
 * restarts per restart-strategy.fixed-delay, and runs the job's CheckpointCoordinator.
 *
 * DESIGN
 * Messages for the job (acknowledgements, savepoint requests) arrive on the RPC loop thread
 * and are posted as mails to the JobMaster's mailbox; the coordinator is touched only by the
 * JobMaster's thread. Triggers and completion notices go to every TaskManager of the current
 * attempt; reports and acknowledgements of other attempts are stale and dropped. A restart
 * deploys from the latest completed checkpoint (or the job's initial savepoint when none
 * completed yet). The dispatcher owns the job record and reads its status fields under mu. */
#ifndef SL_JOBMASTER_JOB_MASTER_H
#define SL_JOBMASTER_JOB_MASTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/mailbox.h"
#include "graph/job_graph.h"
#include "jobmaster/jobmanager.h"
#include "minicluster/coordinator.h"
#include "rpc/rpc.h"

struct sl_config_s;

typedef struct sl_job_master_s {
    sl_jobmanager_t *jm;
    char id[64];
    char name[128];
    uint8_t *graph, *config;  /* as submitted */
    size_t graph_len, config_len;
    char library[1024];        /* a path (compatibility), or "" */
    uint8_t *library_bytes;    /* the shipped library, NULL when none; freed when the thread ends */
    size_t library_len;
    uint8_t library_sha256[32];
    uint32_t nslots, ntasks;
    uint32_t nsink_tasks;      /* subtasks of vertices without outputs */
    uint32_t *task_base;       /* per vertex: flat index of its subtask 0 */
    bool *sink_vertex;         /* per vertex: it has no network output */
    _Atomic int state;         /* Sluice__Rpc__JobState */
    int64_t start_ms, end_ms;
    pthread_mutex_t mu;        /* error, ended, the reports' counters against attempt changes */
    char error[1024];
    atomic_uint finished, failed, canceled;
    _Atomic uint32_t attempt;  /* reports of other attempts are stale */
    volatile int cancel;
    bool ended;                /* the thread no longer takes mail */
    pthread_t thread;
    bool started;
    struct sl_job_master_s *next; /* the dispatcher's list */
    /* The JobMaster thread's own. */
    sl_mailbox_t mail;
    struct sl_config_s *cfg;
    sl_job_graph_t g;
    sl_coordinator_t co;
    bool co_ready;
    bool stopping;             /* a stop-with-savepoint's savepoint completed */
    bool stopped;              /* ... its sinks committed it and the rest is being cancelled */
    bool *task_ended;          /* per subtask (flat index): it FINISHED or was CANCELED in this attempt */
    uint32_t sinks_ended;      /* sink subtasks among them (some may have finished long before a stop) */
    int64_t restarts, restart_delay_ms;
    char restore_path[4096];   /* what the next attempt restores, "" for a fresh start */
    struct tm_ref_s *tms;      /* the running attempt's TaskManagers (gateway) */
    uint32_t ntms;
} sl_job_master_t;

/* Parses the submitted graph and configuration (errors name what is wrong), then starts the
 * thread. On error nothing is left running; sl_job_master_free releases the record. */
int sl_job_master_prepare(sl_job_master_t *j, char *err, size_t errlen);
/* Before prepare: keeps a copy of the shipped job library and its SHA-256 for the DeployJobs.
 * Errors: SL_EINVAL (above SL_LIBRARY_MAX_BYTES, err says so), SL_ENOMEM. */
int sl_job_master_set_library(sl_job_master_t *j, const uint8_t *bytes, size_t len, char *err, size_t errlen);
int sl_job_master_start(sl_job_master_t *j);
/* Any thread: an acknowledgement of `attempt` (ownership taken). */
void sl_job_master_ack(sl_job_master_t *j, uint32_t attempt, struct sl_task_ack_s *ack);
/* Any thread: subtask `subtask` of `vertex` of `attempt` ended FINISHED (`finished`, after
 * snapshotting checkpoint `last_checkpoint` at most, 0: none) or CANCELED. The coordinator
 * keeps checkpointing without a finished subtask; a stop-with-savepoint counts the sinks that
 * ended. */
void sl_job_master_task_ended(sl_job_master_t *j, uint32_t attempt, uint32_t vertex, uint32_t subtask, bool finished,
                              uint64_t last_checkpoint);
/* How a savepoint request ends: status 0 and the savepoint's path, or an error and why. */
typedef void (*sl_savepoint_done_fn)(void *arg, int status, const char *path_or_error);
/* Any thread: a savepoint (and with `stop` the job's end after it) into target_dir, an
 * absolute path; `done` is called exactly once, on the JobMaster's thread or this one. */
void sl_job_master_savepoint(sl_job_master_t *j, const char *target_dir, bool stop, sl_savepoint_done_fn done,
                             void *arg);
/* Joins the thread (after setting cancel) and frees the record. */
void sl_job_master_free(sl_job_master_t *j);

#endif
