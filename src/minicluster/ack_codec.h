/* Checkpoint acknowledgements across processes: a subtask's sl_task_ack_t becomes an
 * AcknowledgeCheckpoint message on its TaskManager and an sl_task_ack_t again on the JobMaster.
 * The JobMaster's side treats the message as hostile input: file names must be single path
 * components, strings fit their fields, counts stay within limits. */
#ifndef SL_MINICLUSTER_ACK_CODEC_H
#define SL_MINICLUSTER_ACK_CODEC_H

#include <stddef.h>

#include "rpc/message.h"
#include "taskexecutor/task.h"

/* Fills `m` from `ack` (borrowed: `m` points into it and into `scratch`, which
 * sl_ack_msg_scratch_free releases). Errors: SL_ENOMEM. */
typedef struct sl_ack_msg_scratch_s {
    void *handles, *handle_ptrs, *extras, *extra_ptrs, *kvs, *kv_ptrs;
    Sluice__Rpc__Error decline;
} sl_ack_msg_scratch_t;
int sl_ack_to_msg(const sl_task_ack_t *ack, const char *job_id, uint32_t attempt, Sluice__Rpc__AcknowledgeCheckpoint *m,
                  sl_ack_msg_scratch_t *scratch);
void sl_ack_msg_scratch_free(sl_ack_msg_scratch_t *scratch);

/* A new ack (free with sl_task_ack_free) from `m`. Errors: SL_EPARSE with `err` naming the
 * field, SL_ENOMEM. */
int sl_ack_from_msg(const Sluice__Rpc__AcknowledgeCheckpoint *m, sl_task_ack_t **out, char *err, size_t errlen);

#endif
