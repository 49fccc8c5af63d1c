/* A task: one subtask of a job vertex, running its chain of operators on its own thread.
 *
 * DESIGN
 * The thread runs a mailbox loop (core/mailbox.h): it sleeps until an input channel has data,
 * a mail arrives, or a deadline passes (buffer timeout flush, watermark tick, processing-time
 * timer), then handles exactly one thing at a time. Operators and their state are touched only
 * by this thread. A source task polls its source operator in bounded slices between those
 * checks. Input watermarks are combined as the minimum over channels that are neither idle
 * nor ended. Backpressure is the record writer waiting for credit.
 *
 * Life cycle: sl_task_init (build operators, writers, readers) -> sl_task_start (thread) ->
 * the thread finishes, fails or is cancelled, calls on_done -> sl_task_join ->
 * sl_task_destroy after every channel of the job has been destroyed (queued buffers return
 * to the writers' pools). */
#ifndef SL_TASKEXECUTOR_TASK_H
#define SL_TASKEXECUTOR_TASK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/mailbox.h"
#include "graph/job_graph.h"
#include "network/channel.h"
#include "network/record_writer.h"
#include "operators/operator.h"

struct sl_config_s;

typedef enum {
    SL_TASK_CREATED = 0,
    SL_TASK_RUNNING,
    SL_TASK_FINISHED,
    SL_TASK_FAILED,
    SL_TASK_CANCELED,
} sl_task_state_t;

typedef struct sl_task_s sl_task_t;
typedef void (*sl_task_done_cb)(void *arg, sl_task_t *task);

/* One network output of the chain: an edge leaving the vertex. */
typedef struct sl_task_writer_s {
    sl_record_writer_t writer;
    sl_key_selector_t key; /* for SL_PART_HASH: the consumer's key on this input */
    sl_key_buf_t key_buf;
    uint32_t max_parallelism;
    uint32_t chain_index;  /* which operator of the chain feeds it */
} sl_task_writer_t;

/* Where a task's inputs and outputs connect, prepared by the deployer. */
struct sl_task_ack_s;
struct sl_task_restore_s;

typedef struct sl_task_wiring_s {
    sl_channel_t **in_channels; /* all input channels, both inputs; borrowed */
    uint32_t nin;
    /* Per outgoing edge (same order as the graph's non-chained edges leaving this vertex). */
    uint32_t nout;
    const sl_stream_edge_t **out_edges;
    sl_channel_t ***out_channels; /* out_channels[e][j]: to consumer subtask j */
    uint32_t *out_nchannels;
    /* The TaskManager's RocksDB memory (state.backend.type: rocksdb), or NULL. */
    const struct sl_rocksdb_memory_s *rocksdb_memory;
    /* Checkpoint storage and where acknowledgements go (NULL: checkpointing off), and what to
     * restore at start (NULL: a fresh start). */
    const struct sl_ckpt_storage_s *storage;
    void (*on_ack)(void *arg, struct sl_task_ack_s *ack);
    void *on_ack_arg;
    const struct sl_task_restore_s *restore;
} sl_task_wiring_t;

/* A subtask's acknowledgement of a checkpoint, handed to the coordinator (which frees it with
 * sl_task_ack_free). */
/* A file of a subtask's snapshot: in chk-<id>/ (task-owned) or in shared/ (an SST file that
 * later checkpoints may reference again). */
typedef struct sl_task_handle_s {
    bool shared;
    char name[192];
    uint64_t size;
    uint32_t crc32c;
} sl_task_handle_t;

typedef struct sl_task_ack_s {
    uint64_t checkpoint_id;
    uint32_t vertex;
    uint32_t subtask;
    int status;               /* 0, or why the subtask declined */
    char error[256];
    uint32_t nhandles;
    sl_task_handle_t *handles;
    uint64_t bytes_uploaded;  /* new bytes written to storage for this checkpoint */
    uint32_t nops;
    sl_op_extras_t *extras;   /* per operator of the chain */
} sl_task_ack_t;

typedef void (*sl_task_ack_cb)(void *arg, sl_task_ack_t *ack);
void sl_task_ack_free(sl_task_ack_t *ack);

/* What a subtask restores when the job starts from a checkpoint (owned by the caller, alive
 * until the task is destroyed). */
typedef struct sl_task_restore_db_s {
    uint32_t nfiles;
    char **paths;             /* in checkpoint storage */
    char **names;             /* RocksDB's own file names */
} sl_task_restore_db_t;

/* What one operator of the chain restores: the positions of the old subtasks j of its vertex
 * in the checkpoint with j % parallelism == this subtask (restore.h), in increasing j. */
typedef struct sl_task_restore_op_s {
    uint32_t old_parallelism; /* of its vertex in the checkpoint; 0 = not in it: start fresh */
    uint32_t nsets;
    uint32_t *from;           /* set k came from old subtask from[k] */
    sl_op_extras_t *sets;
} sl_task_restore_op_t;

typedef struct sl_task_restore_s {
    uint64_t checkpoint_id;
    /* The subtask had finished when the checkpoint was taken (restore.h): it is deployed
     * finished, never opening or running its operators (their finish logic ran before and its
     * output is in the checkpoint downstream); it only ends its output partitions. */
    bool finished;
    uint32_t nstate;          /* keyed-state snapshots overlapping this subtask's key groups */
    uint8_t **state;
    size_t *state_len;
    uint32_t ndbs;            /* RocksDB checkpoints overlapping them (incremental snapshots) */
    sl_task_restore_db_t *dbs;
    uint32_t nops;            /* operators of the chain */
    struct sl_task_restore_op_s *ops; /* per operator of the chain */
    uint32_t nopstate;        /* operator-state files (vertex.opstate) this subtask takes over */
    uint8_t **opstate;
    size_t *opstate_len;
} sl_task_restore_t;

struct sl_task_s {
    const sl_job_graph_t *graph;
    const sl_job_vertex_t *vertex;
    uint32_t index; /* subtask index */
    const struct sl_config_s *config;
    void *user_lib;
    sl_mailbox_t mailbox;
    sl_operator_t **ops; /* the chain, head first */
    sl_output_t *outputs; /* one per operator (unused for sinks) */
    uint32_t nops;
    sl_task_writer_t *writers;
    uint32_t nwriters;
    sl_channel_t **in_channels;
    uint32_t nin;
    uint32_t nin_per_input[2];
    uint32_t ended_per_input[2];
    sl_record_reader_t *readers; /* per input channel */
    sl_batch_t in_batch;
    sl_keyed_backend_t *state;
    sl_timer_service_t *timers;
    int64_t combined_watermark;
    int64_t buffer_timeout_ms;
    int64_t watermark_interval_ms;
    _Atomic int state_code; /* sl_task_state_t */
    int error_code;
    char error[1024];
    const struct sl_rocksdb_memory_s *rocksdb_memory; /* borrowed from the TaskManager */
    /* Checkpoints (task_checkpoint.c). storage NULL = checkpointing off. */
    const struct sl_ckpt_storage_s *storage;
    sl_task_ack_cb on_ack;
    void *on_ack_arg;
    uint64_t last_checkpoint;   /* highest checkpoint (or savepoint) id it snapshotted, 0 = none;
                                 * reported with FINISHED: the coordinator then knows which
                                 * checkpoints it took part in */
    uint64_t aligning;          /* checkpoint whose barriers are being aligned, 0 = none */
    bool aligning_savepoint;    /* ... and it is a savepoint */
    uint32_t barriers;          /* of it received so far */
    bool *blocked;              /* per input channel: its barrier arrived, hold its data */
    sl_channel_t **deferred;    /* blocked channels that became ready meanwhile */
    uint32_t ndeferred;
    const sl_task_restore_t *restore;
    struct sl_incremental_s *incremental; /* SST files already in shared storage */
    pthread_t thread;
    bool started;
    sl_task_done_cb on_done;
    void *on_done_arg;
    /* Progress, published once per batch with relaxed stores. */
    atomic_uint_fast64_t records_in;
    atomic_uint_fast64_t records_out;
    atomic_uint_fast64_t backpressured_ms;
};

/* Builds the chain's operators (not yet opened), writers (reserving buffers from `nm`),
 * readers and state. Errors: SL_ENOBUFS, SL_ENOMEM, SL_EJOB (unknown kind), with `error` set. */
int sl_task_init(sl_task_t *t, const sl_job_graph_t *g, uint32_t vertex, uint32_t index,
                 const struct sl_config_s *config, void *user_lib, const sl_task_wiring_t *w,
                 sl_network_memory_t *nm, sl_task_done_cb on_done, void *arg);
int sl_task_start(sl_task_t *t);
void sl_task_cancel(sl_task_t *t);
void sl_task_join(sl_task_t *t);
void sl_task_destroy(sl_task_t *t);
static inline sl_task_state_t sl_task_state(sl_task_t *t) {
    return (sl_task_state_t)atomic_load(&t->state_code);
}

#endif
