/* Planning a restore: reads a checkpoint's _metadata, verifies every file it references, and
 * gives each subtask of the job what it must restore. A job directory means its latest
 * completed checkpoint, falling back to older retained ones when a file fails verification.
 *
 * REDISTRIBUTION (a vertex restored at another parallelism P' than the checkpoint's P)
 *
 *   what                          old subtask j of P goes to
 *   keyed state, timers           every new subtask whose key-group range overlaps j's
 *   positions (operator extras)   new subtask j % P', as one set of its own (restore.sets)
 *   operator-state files          new subtask j % P' (whole file)
 *
 * So at P' < P a new subtask merges several old subtasks' positions, and at P' > P the new
 * subtasks P..P'-1 get none. Sources keep their position as a list of splits (generator:
 * modulus, residue, next number; Nexmark: split count, split, next event number), so a
 * source subtask reads every split it inherited and none when it inherited nothing. An
 * operator whose positions cannot be merged (its vtable is not `rescalable`, e.g. the file
 * sources) keeps its vertex at the checkpoint's parallelism: the plan is refused with the
 * vertex and the operator named.
 *
 * FINISHED SUBTASKS (_metadata entries with "finished": they had ended before the checkpoint
 * reached them; coordinator.c). Such a subtask is deployed finished (sl_task_restore_t.finished):
 * it opens and runs nothing, not even its operators' finish logic (its output, final files
 * included, was produced before the checkpoint and its consumers' snapshots hold it); it only
 * ends its output partitions.
 *
 *   checkpoint vertex                 restored
 *   all subtasks finished             its job vertex, every subtask finished, at any parallelism
 *                                     (each operator of that job vertex must have finished)
 *   some finished, same parallelism   the same subtasks finished
 *   and chain
 *   some finished, a source, another  finished subtasks hand on no splits (all read); the
 *   parallelism                       others' are redistributed as above
 *   some finished, otherwise          refused: the vertex and checkpoint are named, and it can be
 *                                     restored at the same parallelism only */
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

/* Plans the restore of job `g` from `path`. `local` (NULL = every subtask) selects the
 * subtasks whose state is read into memory: subtask i of every vertex iff local[i] != 0, an
 * array of g->max_parallelism entries (borrowed for the call). The others get their
 * positions and the check of every file, but no state: an all-zero mask only validates the
 * checkpoint against the job. Errors: SL_ENOENT / SL_EPARSE / SL_EJOB with a message naming
 * the path or vertex (and operator, for positions that cannot be redistributed), SL_ENOMEM.
 * On failure *p needs no free. */
int sl_restore_plan_load(sl_restore_plan_t *p, const sl_job_graph_t *g, const char *path, const uint8_t *local,
                         char *err, size_t errlen);
void sl_restore_plan_free(sl_restore_plan_t *p);

#endif
