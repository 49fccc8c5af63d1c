/* Incremental RocksDB snapshots of one subtask (the seed's incremental checkpoints): a RocksDB
 * checkpoint (hard links) is taken locally; SST files, immutable, are uploaded to shared/ only
 * when the last completed checkpoint did not already upload them, and referenced otherwise
 * (an upload is named after its checkpoint, so that checkpoints pending at once never share
 * one, task_incremental.c);
 * the few other files (MANIFEST, CURRENT, OPTIONS) are copied into the checkpoint's own
 * directory. Only the local RocksDB checkpoint is taken on the task thread; the upload runs on
 * a thread of its own while records keep flowing (the asynchronous phase). After a restore the first checkpoint uploads everything (Flink's NO_CLAIM mode):
 * a run never deletes or depends on files of the checkpoint it started from. */
#ifndef SL_TASKEXECUTOR_TASK_INCREMENTAL_H
#define SL_TASKEXECUTOR_TASK_INCREMENTAL_H

#include <stdint.h>

#include "taskexecutor/task.h"

/* Takes an incremental snapshot of t->state for checkpoint `id`: the RocksDB checkpoint now
 * (synchronous), the upload on a thread that then sends `ack` (taking ownership). Returns 1
 * when the ack is on its way, or an error (the caller still owns and sends the ack). */
int sl_task_incremental_snapshot(sl_task_t *t, uint64_t id, sl_task_ack_t *ack);
/* Waits for an upload in flight (before the task ends: its ack must reach a live coordinator). */
void sl_task_incremental_wait(sl_task_t *t);
/* Task thread. Checkpoint `id` completed: its files become the base of the next snapshot, and
 * what earlier snapshots kept is dropped (they are subsumed). */
void sl_task_incremental_complete(sl_task_t *t, uint64_t id);
void sl_task_incremental_free(sl_task_t *t);

/* Appends a handle to the ack. */
int sl_task_ack_add(sl_task_ack_t *ack, bool shared, const char *name, uint64_t size, uint32_t crc);

#endif
