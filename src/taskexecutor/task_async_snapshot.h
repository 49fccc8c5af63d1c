/* Asynchronous heap-backend snapshots of one subtask (Flink's asynchronous phase of a heap
 * snapshot). On the task thread, between records, the keyed state is captured as a
 * copy-on-write view and the timers are serialised into memory (state/snapshot.h); a thread of
 * its own then writes the portable snapshot file (same format, checksum computed while
 * writing, fsynced), ends the copy-on-write view (freeing the copies it kept alive) and sends
 * the acknowledgement, while the task goes on with records. One write is in flight per
 * subtask: a new snapshot first waits for the previous one (with one checkpoint at a time
 * this rarely waits; with several pending, writes are serialised per subtask, in id order). */
#ifndef SL_TASKEXECUTOR_TASK_ASYNC_SNAPSHOT_H
#define SL_TASKEXECUTOR_TASK_ASYNC_SNAPSHOT_H

#include <stdint.h>

#include "taskexecutor/task.h"

/* Task thread; t->state is a heap backend. Captures the snapshot of checkpoint `id` and starts
 * its write, which then adds the file to `ack` and sends it (taking ownership). Returns 1 when
 * the ack is on its way, or an error with ack->error set (the caller still owns and sends the
 * ack). */
int sl_task_async_snapshot(sl_task_t *t, uint64_t id, sl_task_ack_t *ack);
/* Task thread: waits for the write in flight, if any (before the task ends: its ack must
 * reach a live coordinator, and the backend must outlive the snapshot). */
void sl_task_async_snapshot_wait(sl_task_t *t);

#endif
