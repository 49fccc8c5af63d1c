/* Planning a restore: reads a checkpoint's _metadata, verifies every file it references, and
 * gives each subtask of the job what it must restore: the keyed-state snapshots whose key
 * groups overlap its own (so a job may come back at another parallelism when only keyed state
 * is involved) and its operators' saved positions. A job directory means its latest completed
 * checkpoint, falling back to older retained ones when a file fails verification. */
#ifndef SL_MINICLUSTER_RESTORE_H
#define SL_MINICLUSTER_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "graph/job_graph.h"
#include "taskexecutor/task.h"

typedef struct sl_restore_plan_s {
    uint64_t checkpoint_id;
    char path[1024];               /* the checkpoint directory restored */
    sl_task_restore_t **tasks;     /* [vertex][subtask] */
    uint32_t nvertices;
} sl_restore_plan_t;

/* Errors: SL_ENOENT / SL_EPARSE / SL_EJOB with a message naming the path or vertex. */
int sl_restore_plan_load(sl_restore_plan_t *p, const sl_job_graph_t *g, const char *path, char *err, size_t errlen);
void sl_restore_plan_free(sl_restore_plan_t *p);

#endif
