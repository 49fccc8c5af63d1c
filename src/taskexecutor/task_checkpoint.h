/* A subtask's side of checkpoints: barrier alignment, the synchronous snapshot of its chain,
 * the acknowledgement, restore at start, and the completion notice (two-phase commit).
 * Everything runs on the subtask's thread, between records, so operators need no locks. */
#ifndef SL_TASKEXECUTOR_TASK_CHECKPOINT_H
#define SL_TASKEXECUTOR_TASK_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "taskexecutor/task.h"

/* Barrier ids carry this bit for a savepoint: the snapshot is then full and portable (never
 * incremental, never shared files). Checkpoint ids stay far below it. */
#define SL_CKPT_SAVEPOINT_BIT (1ull << 62)

/* From any thread: asks a source subtask to take checkpoint `barrier_id` (it injects the
 * barrier), or tells a subtask that checkpoint `id` completed. With `stop`
 * (stop-with-savepoint) a subtask without network outputs (its chain ends in a sink) ends,
 * cancelled, right after committing; the others may be blocked waiting for credit and never
 * run the notice: the JobMaster cancels them once the sinks ended, which keeps a producer from
 * going before the sink it feeds committed. */
int sl_task_trigger_checkpoint(sl_task_t *t, uint64_t barrier_id);
int sl_task_notify_complete(sl_task_t *t, uint64_t id, bool stop);

/* Frees checkpoint mails the task will never run (it ended). */
void sl_task_drop_checkpoint_mails(sl_task_t *t);

/* Task thread. A barrier arrived on `ch`: block the channel until all inputs delivered it,
 * then snapshot, forward the barrier and acknowledge. */
int sl_task_on_barrier(sl_task_t *t, sl_channel_t *ch, uint64_t barrier_id);
/* A channel ended: an aligning checkpoint may now be complete. */
int sl_task_on_channel_end(sl_task_t *t);
/* True when `ch` is held back by an alignment (the caller must not read it yet). */
bool sl_task_hold_channel(sl_task_t *t, sl_channel_t *ch);
/* Snapshot now (sources: on trigger; others: aligned). */
int sl_task_checkpoint(sl_task_t *t, uint64_t barrier_id);

/* At start, from t->restore: keyed state and timers (before open), then operator extras (after
 * open). */
int sl_task_restore_state(sl_task_t *t);
int sl_task_restore_operators(sl_task_t *t);

#endif
