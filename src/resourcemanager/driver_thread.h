/* A thread of its own for a ResourceManager's driver calls: operations (start a worker, stop
 * one, poll) are queued by the ResourceManager, run one at a time in queue order, and come
 * back as completed operations the ResourceManager collects on its tick.
 *
 * DESIGN
 * The slurm driver blocks for up to command_timeout_ms per Slurm command (sbatch, squeue,
 * scancel). Called under the ResourceManager's lock, that froze every RPC callback of the
 * JobManager (registrations, heartbeat answers, slot offers) for as long as slurmctld took.
 * Here the driver is used by this thread alone, from the first submitted operation until
 * sl_rm_driver_thread_destroy() returns; the thread sees nothing of the ResourceManager but
 * the operations, so the two queues below are all the threads share, under one mutex:
 *
 *   queue   submitted, not started yet          owner thread -> driver thread
 *   done    finished, status and results set    driver thread -> owner thread
 *
 * One thread keeps the driver's single-caller contract and the order of operations (a stop
 * never overtakes the start of its worker). Destroying drops what is still queued, waits for
 * the operation in progress (bounded by the driver's command timeout), joins the thread and
 * frees what was done but not collected. A start that completed before is then a worker the
 * driver owns, so sl_rm_driver_destroy() still stops it: nothing is left behind. */
#ifndef SL_RESOURCEMANAGER_DRIVER_THREAD_H
#define SL_RESOURCEMANAGER_DRIVER_THREAD_H

#include <stddef.h>

#include "resourcemanager/driver.h"

typedef enum {
    SL_RM_OP_START = 0,
    SL_RM_OP_STOP,
    SL_RM_OP_POLL,
} sl_rm_op_kind_t;

/* A worker that ended, as sl_rm_driver_poll() reported it. */
typedef struct sl_rm_ended_s {
    char id[48];
    sl_rm_worker_state_t state; /* STOPPED or LOST */
    char reason[160];
} sl_rm_ended_t;

/* One driver call and its result. Created by sl_rm_op_*(), owned by whoever holds it: the
 * caller, the driver thread once submitted, the caller again once taken back; freed with
 * sl_rm_op_free(). Fields starting with `_` are the driver thread's. */
typedef struct sl_rm_op_s {
    sl_rm_op_kind_t kind;
    /* Input. */
    char tag[64];                 /* the caller's name for the operation (the TaskManager id) */
    char worker[48];              /* stop: the worker; start: its id once started */
    sl_rm_profile_t profile;      /* start */
    char **argv;                  /* start: owned copy, NULL-terminated */
    const char *const *env;       /* start: borrowed; must outlive the driver thread */
    /* Result, set by the driver thread. */
    int status;                   /* 0 or the driver's error code */
    char err[512];                /* the driver's message when status < 0 */
    sl_rm_ended_t *ended;         /* poll: the workers that ended (owned) */
    size_t nended;
    size_t _cap;                  /* room in `ended` */
    struct sl_rm_op_s *_next;
} sl_rm_op_t;

/* Any thread. A start of one worker: argv is copied, env is borrowed (see above). Errors:
 * SL_ENOMEM. */
int sl_rm_op_start(const char *tag, const sl_rm_profile_t *profile, const char *const *argv,
                   const char *const *env, sl_rm_op_t **out);
/* Any thread. A stop of worker `worker`. Errors: SL_ENOMEM. */
int sl_rm_op_stop(const char *tag, const char *worker, sl_rm_op_t **out);
/* Any thread. One poll. Errors: SL_ENOMEM. */
int sl_rm_op_poll(sl_rm_op_t **out);
/* Any thread. NULL is a no-op. */
void sl_rm_op_free(sl_rm_op_t *op);

typedef struct sl_rm_driver_thread_s sl_rm_driver_thread_t;

/* Starts the thread for driver `d` (borrowed: it must outlive sl_rm_driver_thread_destroy(),
 * and nobody else may call it meanwhile). Errors: SL_ENOMEM, thread creation errors. */
int sl_rm_driver_thread_create(sl_rm_driver_t *d, sl_rm_driver_thread_t **out);

/* Owner thread. Queues `op` behind the others and takes ownership of it. Errors:
 * SL_ECANCELED after sl_rm_driver_thread_cancel() (the caller keeps `op`). Never blocks on
 * the driver. */
int sl_rm_driver_thread_submit(sl_rm_driver_thread_t *t, sl_rm_op_t *op);

/* Owner thread. The oldest completed operation, or NULL; the caller owns it. Never blocks on
 * the driver. */
sl_rm_op_t *sl_rm_driver_thread_take_done(sl_rm_driver_thread_t *t);

/* Any thread. Drops the queued operations (their callers learn nothing: the ResourceManager
 * is going away) and refuses new ones; the operation in progress finishes. Idempotent. */
void sl_rm_driver_thread_cancel(sl_rm_driver_thread_t *t);

/* Owner thread. Cancels, waits for the operation in progress, joins the thread and frees
 * every operation still held. The driver may be used (and destroyed) by the caller again
 * afterwards. NULL is a no-op. */
void sl_rm_driver_thread_destroy(sl_rm_driver_thread_t *t);

#endif
