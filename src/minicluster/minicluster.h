/* The embedded mini-cluster: a whole cluster inside one process.
 *
 * TaskManagers are `minicluster.number-of-taskmanagers` budgets of network memory and
 * `taskmanager.numberOfTaskSlots` slots each; every subtask is a thread. Slots are shared the
 * way Flink shares them: one subtask of each vertex per slot, so a job needs as many slots as
 * its largest parallelism. Subtask i of every vertex goes to slot i, and slot s belongs to
 * TaskManager s / slots-per-TM, whose network memory bounds that subtask's buffers.
 * All channels are in-process; the distributed runtime deploys the same tasks over TCP. */
#ifndef SL_MINICLUSTER_MINICLUSTER_H
#define SL_MINICLUSTER_MINICLUSTER_H

#include <stdint.h>

#include "graph/job_graph.h"

struct sl_config_s;

/* Progress of one job vertex, summed over its subtasks. */
typedef struct sl_vertex_progress_s {
    const char *name;
    uint32_t parallelism;
    uint64_t records_in;
    uint64_t records_out;
    uint64_t backpressured_ms;
    uint32_t running;  /* subtasks still running */
    uint32_t finished;
} sl_vertex_progress_t;

typedef struct sl_job_progress_s {
    uint32_t nvertices;
    sl_vertex_progress_t *vertices; /* borrowed for the callback */
    int64_t elapsed_ms;
} sl_job_progress_t;

/* Called on the caller's thread about every `progress_interval_ms`, and once at the end. */
typedef void (*sl_progress_cb)(void *arg, const sl_job_progress_t *p, int final);

typedef struct sl_job_result_s {
    int status;         /* 0 finished, SL_EFAILED, SL_ECANCELED */
    char error[1024];   /* the root cause when failed */
    int64_t elapsed_ms;
    /* Checkpoints (when execution.checkpointing.interval is set). */
    uint64_t checkpoints_completed;
    uint64_t checkpoints_aborted;
    uint64_t latest_checkpoint;
    char checkpoint_dir[1024]; /* <state.checkpoints.dir>/<job id> */
} sl_job_result_t;

/* Runs a finalized job graph to completion (bounded jobs), failure, or cancellation via
 * sl_minicluster_request_cancel(). `user_lib` is the dlopen handle of the job library or NULL.
 * Returns 0 when the job ran (see result->status) or a deployment error (SL_ENOSLOT,
 * SL_ENOBUFS, SL_EJOB) with result->error set. */
int sl_minicluster_run(const struct sl_config_s *config, const sl_job_graph_t *g, void *user_lib,
                       sl_progress_cb cb, void *cb_arg, int64_t progress_interval_ms, sl_job_result_t *result);

/* Part of a job in this process (a TaskManager of a cluster): subtask i of every vertex runs
 * here when local[i]; a channel with exactly one end here is handed to `bridge`, which
 * connects its other end over the data plane (exported for a local producer, imported for a
 * local consumer) and binds the remote side's mailbox; `unbridge` undoes every bridge before
 * the channels go. Restarts and the checkpoint coordinator are the JobMaster's business; the
 * run writes its subtasks' snapshots, hands their acknowledgements on, and restores. */
struct sl_channel_s;
struct sl_ckpt_storage_s;
struct sl_task_s;
struct sl_task_ack_s;
typedef struct sl_minicluster_placement_s {
    uint32_t nslots;
    const uint8_t *local;
    int (*bridge)(void *arg, uint32_t edge, uint32_t producer, uint32_t consumer, struct sl_channel_s *ch,
                  int local_producer, char *err, size_t errlen);
    void (*unbridge)(void *arg);
    /* Every local task's final state (sl_task_state_t) and error, as it ends (on its thread),
     * with the last checkpoint it snapshotted (0: none), which a FINISHED report carries to
     * the coordinator. */
    void (*on_task_final)(void *arg, uint32_t vertex, uint32_t subtask, int state, const char *error,
                          uint64_t last_checkpoint);
    void *arg;
    volatile int *cancel; /* set non-zero to cancel this run */
    /* Checkpoints (NULL storage: none): where subtasks write, where their acknowledgements go
     * (called on task or upload threads; takes ownership), and the completed checkpoint or
     * savepoint to start from (NULL: a fresh start). */
    const struct sl_ckpt_storage_s *storage;
    void (*on_ack)(void *arg, struct sl_task_ack_s *ack);
    const char *restore_path;
    /* The run's tasks once they exist (before any starts), and (NULL, 0) before they go:
     * triggers and completion notices reach them through it. */
    void (*on_tasks)(void *arg, struct sl_task_s **tasks, uint32_t n);
} sl_minicluster_placement_t;

/* Runs the local subtasks of `g` as placed, until they all ended. Returns 0 with
 * result->status set, or a deployment error. */
int sl_minicluster_run_placed(const struct sl_config_s *config, const sl_job_graph_t *g, void *user_lib,
                              const sl_minicluster_placement_t *pl, sl_job_result_t *result);

/* Async-signal-safe: asks the running job (if any) to cancel. */
void sl_minicluster_request_cancel(void);

#endif
