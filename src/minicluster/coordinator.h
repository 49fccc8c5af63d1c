/* The CheckpointCoordinator of a job (Flink's): triggers checkpoints at the sources on an
 * interval, collects the subtasks' acknowledgements, completes a checkpoint by writing its
 * _metadata last, keeps the retained ones (CompletedCheckpointStore + SharedStateRegistry),
 * notifies the subtasks of completion, and aborts on timeout, decline or failure with the
 * reason recorded. It runs on the JobManager's thread (the mini-cluster's main loop). */
#ifndef SL_MINICLUSTER_COORDINATOR_H
#define SL_MINICLUSTER_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoint/completed_store.h"
#include "checkpoint/metadata.h"
#include "checkpoint/shared_registry.h"
#include "checkpoint/storage.h"
#include "taskexecutor/task.h"

struct sl_config_s;

typedef struct sl_coordinator_s {
    sl_ckpt_storage_t storage;
    sl_shared_registry_t registry;
    sl_completed_store_t store;
    const sl_job_graph_t *graph;
    sl_task_t **tasks;      /* every subtask; borrowed */
    uint32_t ntasks;
    int64_t interval_ms, timeout_ms, min_pause_ms;
    uint64_t next_id;
    int64_t next_trigger_at;
    /* The checkpoint in flight (0 = none). */
    uint64_t pending;
    int64_t pending_started;
    uint32_t acks;
    sl_ckpt_metadata_t md;
    char **shared;          /* shared files the pending checkpoint references */
    uint32_t nshared;
    uint64_t pending_bytes; /* uploaded for it */
    bool stopped;           /* a task finished: no more checkpoints (sources cannot inject) */
    /* Figures. */
    uint64_t completed, aborted, latest;
    int64_t last_duration_ms;
    uint64_t last_bytes_uploaded;
    char last_abort_reason[256];
} sl_coordinator_t;

/* Prepares checkpoint storage <state.checkpoints.dir>/<job_id>. `first_id` continues the
 * numbering after a restore. Errors name the directory and the cause. */
int sl_coordinator_init(sl_coordinator_t *co, const struct sl_config_s *config, const sl_job_graph_t *g,
                        const char *job_id, uint64_t first_id, char *err, size_t errlen);
void sl_coordinator_set_tasks(sl_coordinator_t *co, sl_task_t **tasks, uint32_t ntasks);
/* Triggers when due, aborts on timeout. `now` is monotonic ms. */
void sl_coordinator_tick(sl_coordinator_t *co, int64_t now);
/* Takes ownership of `ack`. */
void sl_coordinator_ack(sl_coordinator_t *co, sl_task_ack_t *ack);
/* Aborts the checkpoint in flight, if any (a task failed, or the job ends). */
void sl_coordinator_abort(sl_coordinator_t *co, const char *reason);
void sl_coordinator_stop(sl_coordinator_t *co);
/* Once no task runs: removes what aborted checkpoints left (directories without _metadata,
 * shared files no retained checkpoint references). */
void sl_coordinator_collect_garbage(sl_coordinator_t *co);
void sl_coordinator_destroy(sl_coordinator_t *co);

/* The vertex name used in checkpoints: "v<id>:<name>", so a restore can tell a changed job. */
void sl_coordinator_vertex_id(const sl_job_graph_t *g, uint32_t vertex, char *buf, size_t len);

#endif
