/* The CheckpointCoordinator of a job (Flink's): triggers checkpoints at the sources on an
 * interval, collects the subtasks' acknowledgements, completes a checkpoint by writing its
 * _metadata last, keeps the retained ones (CompletedCheckpointStore + SharedStateRegistry),
 * notifies the subtasks of completion, and aborts on timeout, decline or failure with the
 * reason recorded. Savepoints are taken the same way, full and self-contained, then moved to
 * their target directory. It runs on the JobMaster's thread (the mini-cluster's main loop, or
 * a cluster JobMaster); a gateway reaches the subtasks, in this process or over RPC. */
#ifndef SL_MINICLUSTER_COORDINATOR_H
#define SL_MINICLUSTER_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoint/completed_store.h"
#include "checkpoint/metadata.h"
#include "checkpoint/shared_registry.h"
#include "checkpoint/storage.h"
#include "taskexecutor/task.h"
#include "taskexecutor/task_checkpoint.h"

struct sl_config_s;

/* How the coordinator reaches a job's subtasks. */
typedef struct sl_coordinator_gateway_s {
    /* Every source subtask injects the barrier `barrier_id` (the id, with
     * SL_CKPT_SAVEPOINT_BIT for a savepoint). Non-zero: the checkpoint is aborted. */
    int (*trigger)(void *arg, uint64_t barrier_id);
    /* Every subtask learns that checkpoint `id` completed (two-phase commit); with `stop`
     * (stop-with-savepoint) the sinks end right after committing and the gateway's owner
     * cancels the rest once they did (sl_task_notify_complete). */
    void (*notify_complete)(void *arg, uint64_t id, bool stop);
    void *arg;
    uint32_t ntasks; /* subtasks of the attempt (all of the job), 0: none running */
} sl_coordinator_gateway_t;

/* The end of a savepoint request: status 0 and its directory, or an error and why. */
typedef void (*sl_savepoint_cb)(void *arg, int status, const char *path_or_error);

/* One checkpoint (or savepoint) in flight: its own acknowledgements, metadata being built and
 * shared files, so that several can be pending at once (max-concurrent-checkpoints). */
typedef struct sl_coordinator_pending_s {
    uint64_t id;
    int64_t started;   /* monotonic ms, for its timeout */
    bool savepoint;
    uint32_t acks;
    bool *acked;       /* per subtask (sl_coordinator_task_index): acknowledged this one */
    sl_ckpt_metadata_t md;
    char **shared;     /* shared files it references */
    uint32_t nshared;
    uint64_t bytes;    /* uploaded for it */
} sl_coordinator_pending_t;

typedef struct sl_coordinator_s {
    sl_ckpt_storage_t storage;
    sl_shared_registry_t registry;
    sl_completed_store_t store;
    const sl_job_graph_t *graph;
    sl_coordinator_gateway_t gw; /* ntasks 0: no attempt running */
    bool have_storage;      /* false: no state.checkpoints.dir, nothing can be taken */
    int64_t interval_ms, timeout_ms, min_pause_ms;
    uint32_t max_concurrent; /* in effect: 1 whenever min-pause > 0 (as in Flink) */
    uint64_t next_id;
    int64_t next_trigger_at;
    /* The checkpoints in flight: the first npending of max_concurrent slots, by increasing id. A
     * savepoint is always alone there. */
    sl_coordinator_pending_t *pending;
    uint32_t npending;
    /* Shared files of checkpoints aborted other than by subsumption: a later snapshot may
     * still reference them (task_incremental.c), so they go at the next completion that does
     * not, or once the attempt ended. */
    char **orphans;
    uint32_t norphans;
    /* Per subtask of the job, by sl_coordinator_task_index: whether it finished in the running
     * attempt and after which checkpoint (FLIP-147: a checkpoint n completes once every subtask
     * acknowledged n or finished after a checkpoint k < n, see coordinator.c). */
    uint32_t ntasks_total;
    uint32_t *task_base;    /* per vertex: index of its subtask 0 */
    bool *source_vertex;    /* per vertex: no network input (it injects barriers) */
    bool *finished;
    uint64_t *finished_after;
    bool stopped;           /* the attempt is being cancelled or stopped: no more checkpoints */
    /* A savepoint requested (target set; it is in flight once a pending slot is a savepoint). */
    char savepoint_target[1024];
    bool savepoint_stop;
    sl_savepoint_cb savepoint_done;
    void *savepoint_arg;
    /* Figures. */
    uint64_t completed, aborted, latest;
    int64_t last_duration_ms;
    uint64_t last_bytes_uploaded;
    char last_abort_reason[256];
} sl_coordinator_t;

/* Prepares checkpoint storage <state.checkpoints.dir>/<job_id>. `first_id` continues the
 * numbering after a restore. Errors name the directory and the cause. With
 * `optional_storage`, no state.checkpoints.dir is fine as long as no checkpoint interval is
 * set (a cluster job then answers savepoint requests with an error saying so). */
int sl_coordinator_init(sl_coordinator_t *co, const struct sl_config_s *config, const sl_job_graph_t *g,
                        const char *job_id, uint64_t first_id, bool optional_storage, char *err, size_t errlen);
/* The running attempt's subtasks (copied), or NULL once it ended. */
void sl_coordinator_set_gateway(sl_coordinator_t *co, const sl_coordinator_gateway_t *gw);
/* Asks for a savepoint into `target_dir` (it gets a savepoint-<job>-<id> directory), taken as
 * soon as no checkpoint is in flight (none is triggered meanwhile); with `stop` the job's subtasks end once it completed.
 * `done` runs exactly once on the coordinator's thread, unless this returns an error
 * (SL_EAGAIN: one is already requested; SL_ECONFIG: no checkpoint storage; SL_EINVAL). */
int sl_coordinator_request_savepoint(sl_coordinator_t *co, const char *target_dir, bool stop, sl_savepoint_cb done,
                                     void *arg, char *err, size_t errlen);
/* Triggers when due, aborts on timeout. `now` is monotonic ms. */
void sl_coordinator_tick(sl_coordinator_t *co, int64_t now);
/* Takes ownership of `ack`. */
void sl_coordinator_ack(sl_coordinator_t *co, sl_task_ack_t *ack);
/* Subtask `subtask` of `vertex` FINISHED in the running attempt after snapshotting checkpoint
 * `last_checkpoint` at most (0: none). It takes part in no later checkpoint: one it did not
 * reach completes without it (its output is in its consumers' snapshots) and its _metadata
 * records it as finished; one it did snapshot still waits for its acknowledgement, which may
 * come before or after this report. Unknown subtasks are ignored. */
void sl_coordinator_task_finished(sl_coordinator_t *co, uint32_t vertex, uint32_t subtask, uint64_t last_checkpoint);
/* Aborts every checkpoint in flight, with `reason` (a task failed, or the job ends). */
void sl_coordinator_abort(sl_coordinator_t *co, const char *reason);
/* The attempt is failing or being cancelled: aborts the checkpoints in flight and takes no
 * more until the next sl_coordinator_set_gateway. (A task that FINISHED does not stop
 * checkpoints: sl_coordinator_task_finished.) */
void sl_coordinator_stop(sl_coordinator_t *co, const char *reason);
/* Once no task runs: removes what aborted checkpoints left (directories without _metadata,
 * shared files no retained checkpoint references). */
void sl_coordinator_collect_garbage(sl_coordinator_t *co);
void sl_coordinator_destroy(sl_coordinator_t *co);

/* Index of a subtask in the coordinator's per-subtask arrays, or UINT32_MAX when the job has
 * no such subtask. */
uint32_t sl_coordinator_task_index(const sl_coordinator_t *co, uint32_t vertex, uint32_t subtask);
/* The checkpoint in flight with id `id`, or NULL (borrowed until the next call on `co`). */
const sl_coordinator_pending_t *sl_coordinator_pending(const sl_coordinator_t *co, uint64_t id);

/* The vertex name used in checkpoints: "v<id>:<name>", so a restore can tell a changed job. */
void sl_coordinator_vertex_id(const sl_job_graph_t *g, uint32_t vertex, char *buf, size_t len);

#endif
