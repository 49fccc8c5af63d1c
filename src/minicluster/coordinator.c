/* The checkpoint coordinator (see coordinator.h).
 *
 * DESIGN: concurrent checkpoints (Flink's maxConcurrentCheckpoints)
 * Up to execution.checkpointing.max-concurrent-checkpoints checkpoints are in flight at once,
 * each with its own acknowledgements, metadata, shared files, start time and timeout. One is
 * triggered every interval while fewer than that many are pending. A positive min-pause
 * means at most one at a time (Flink's rule: the pause is counted from the end of the last
 * one, so a second could never start while one runs); the next then starts
 * max(interval, min-pause) after the previous ended, as with one. Barriers travel in id order
 * on every channel, so subtasks snapshot, and acknowledge, checkpoints in id order; yet
 * checkpoint n can be complete (every subtask acknowledged it) while an earlier one still
 * waits, e.g. for a subtask's earlier acknowledgement lost in a decline. Completion of n
 * aborts every pending checkpoint with a smaller id as subsumed (n covers all they would);
 * a late acknowledgement of an aborted or subsumed checkpoint is dropped. Completion notices
 * therefore go out in increasing id order, and a subtask commits everything up to n.
 * Shared files: a subtask names each upload after its checkpoint and then refers to it by
 * that name in every later snapshot while the SST file lives, whether the uploading checkpoint
 * completed or not, since it does not hear of aborts (task_incremental.c). So a checkpoint
 * subsumed by n loses the shared files n does not reference, and so does a retained
 * checkpoint that n subsumes (SharedStateRegistry); but the files of a checkpoint aborted
 * otherwise (timeout, decline, failure) may be referenced by a later snapshot whose
 * acknowledgement has not come yet: they are kept as orphans until the next checkpoint
 * completes (every later snapshot referencing one then references it through that
 * checkpoint, as its SST file was live at both) or the attempt ends (collect_garbage).
 * A savepoint is always alone: once requested, no checkpoint is triggered, it starts when
 * the pending ones completed or were aborted, and no checkpoint starts until it ended. That
 * keeps a savepoint's barrier from overtaking, or being subsumed by, a checkpoint's.
 *
 * DESIGN: checkpoints with finished tasks (Flink's FLIP-147)
 * A task that finishes reports the last checkpoint k it snapshotted. It consumed END on every
 * input, so everything its producers sent is in its own snapshots or output, and everything it
 * produced precedes the END its consumers aligned on (an ended channel counts as aligned). So
 * checkpoint n is complete when every subtask either acknowledged n or finished after k < n:
 * such a subtask ended before barrier n could reach it and nothing it did is missing from the
 * snapshots of n. A subtask that finished with k >= n snapshotted n: its acknowledgement is
 * awaited, whichever of the two reports comes first (a heap snapshot is acknowledged by its
 * writer's thread). The _metadata lists finished subtasks (restore deploys them finished).
 * Triggers need a running source subtask to inject the barrier; when every source subtask has
 * finished, the rest of the job is draining and no checkpoint is triggered. A checkpoint that
 * every subtask finished before reaching (the sources ended before injecting it) is aborted,
 * not completed: it would hold no state and subsume the last one that does. */
#include "minicluster/coordinator.h"

#include <sluice/error.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/config.h"
#include "core/key_group.h"
#include "core/log.h"
#include "core/mailbox.h"

static int discard_shared(void *arg, const char *name) {
    sl_coordinator_t *co = arg;
    char path[4096];
    if (sl_ckpt_shared_path(&co->storage, name, path, sizeof path) != 0)
        return SL_ERANGE;
    return remove(path) == 0 ? 0 : SL_EIO;
}

static int discard_checkpoint(void *arg, int64_t id) {
    sl_coordinator_t *co = arg;
    char err[256];
    int rc = sl_ckpt_discard(&co->storage, (uint64_t)id, err, sizeof err);
    if (rc)
        SL_WARN("discarding checkpoint %lld: %s", (long long)id, err);
    return rc;
}

/* The per-subtask arrays (coordinator.h), which vertices are sources, and the pending slots. */
static int alloc_tasks(sl_coordinator_t *co) {
    const sl_job_graph_t *g = co->graph;
    uint32_t n = 0;
    co->task_base = sl_calloc(g->nvertices ? g->nvertices : 1, sizeof *co->task_base);
    co->source_vertex = sl_calloc(g->nvertices ? g->nvertices : 1, sizeof *co->source_vertex);
    if (co->task_base == NULL || co->source_vertex == NULL)
        return SL_ENOMEM;
    for (uint32_t v = 0; v < g->nvertices; v++) {
        co->task_base[v] = n;
        n += g->vertices[v].parallelism;
        co->source_vertex[v] = true;
    }
    for (uint32_t e = 0; e < g->nedges; e++)
        if (!g->edges[e].chained)
            co->source_vertex[g->nodes[g->edges[e].dst].vertex] = false;
    co->ntasks_total = n;
    co->finished = sl_calloc(n ? n : 1, sizeof *co->finished);
    co->finished_after = sl_calloc(n ? n : 1, sizeof *co->finished_after);
    co->pending = sl_calloc(co->max_concurrent, sizeof *co->pending);
    if (co->finished == NULL || co->finished_after == NULL || co->pending == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < co->max_concurrent; i++)
        if ((co->pending[i].acked = sl_calloc(n ? n : 1, sizeof *co->pending[i].acked)) == NULL)
            return SL_ENOMEM;
    return 0;
}

static void free_tasks(sl_coordinator_t *co) {
    sl_free(co->task_base);
    sl_free(co->source_vertex);
    sl_free(co->finished);
    sl_free(co->finished_after);
    for (uint32_t i = 0; co->pending && i < co->max_concurrent; i++)
        sl_free(co->pending[i].acked);
    sl_free(co->pending);
    co->task_base = NULL;
    co->source_vertex = NULL;
    co->finished = NULL;
    co->finished_after = NULL;
    co->pending = NULL;
    co->ntasks_total = 0;
}

/* True while a source subtask of the running attempt has not finished: only a source can
 * inject a barrier. */
static bool source_running(const sl_coordinator_t *co) {
    for (uint32_t v = 0; v < co->graph->nvertices; v++) {
        if (!co->source_vertex[v])
            continue;
        for (uint32_t i = 0; i < co->graph->vertices[v].parallelism; i++)
            if (!co->finished[co->task_base[v] + i])
                return true;
    }
    return false;
}

void sl_coordinator_vertex_id(const sl_job_graph_t *g, uint32_t vertex, char *buf, size_t len) {
    snprintf(buf, len, "v%u:%s", vertex, g->vertices[vertex].name);
}

int sl_coordinator_init(sl_coordinator_t *co, const sl_config_t *config, const sl_job_graph_t *g, const char *job_id,
                        uint64_t first_id, bool optional_storage, char *err, size_t errlen) {
    memset(co, 0, sizeof *co);
    co->graph = g;
    co->interval_ms = sl_config_duration_ms(config, "execution.checkpointing.interval");
    co->timeout_ms = sl_config_duration_ms(config, "execution.checkpointing.timeout");
    co->min_pause_ms = sl_config_duration_ms(config, "execution.checkpointing.min-pause");
    int64_t max = sl_config_int(config, "execution.checkpointing.max-concurrent-checkpoints");
    co->max_concurrent = co->min_pause_ms > 0 || max < 1 ? 1 : (uint32_t)max;
    co->next_id = first_id ? first_id : 1;
    const char *dir = sl_config_str(config, "state.checkpoints.dir");
    if ((dir == NULL || dir[0] == '\0') && optional_storage && co->interval_ms <= 0)
        return 0;
    if (dir == NULL || dir[0] == '\0') {
        snprintf(err, errlen, "execution.checkpointing.interval is set but state.checkpoints.dir is not");
        return SL_ECONFIG;
    }
    int rc = sl_ckpt_storage_init(&co->storage, dir, job_id, err, errlen);
    if (rc)
        return rc;
    co->have_storage = true;
    if ((rc = sl_shared_registry_init(&co->registry, discard_shared, co)) != 0 ||
        (rc = sl_completed_store_init(&co->store, (size_t)sl_config_int(config, "state.checkpoints.num-retained"),
                                      &co->registry, discard_checkpoint, co)) != 0) {
        snprintf(err, errlen, "cannot set up the checkpoint store: %s", sl_strerror(rc));
        sl_ckpt_storage_destroy(&co->storage);
        return rc;
    }
    co->next_trigger_at = sl_monotonic_ms() + co->interval_ms;
    if ((rc = alloc_tasks(co)) != 0) {
        snprintf(err, errlen, "cannot set up the checkpoint coordinator: %s", sl_strerror(rc));
        sl_coordinator_destroy(co);
        return rc;
    }
    return 0;
}

uint32_t sl_coordinator_task_index(const sl_coordinator_t *co, uint32_t vertex, uint32_t subtask) {
    if (co->task_base == NULL || vertex >= co->graph->nvertices || subtask >= co->graph->vertices[vertex].parallelism)
        return UINT32_MAX;
    return co->task_base[vertex] + subtask;
}

static sl_coordinator_pending_t *find_pending(const sl_coordinator_t *co, uint64_t id) {
    for (uint32_t i = 0; i < co->npending; i++)
        if (co->pending[i].id == id)
            return &co->pending[i];
    return NULL;
}

const sl_coordinator_pending_t *sl_coordinator_pending(const sl_coordinator_t *co, uint64_t id) {
    return find_pending(co, id);
}

static bool savepoint_in_flight(const sl_coordinator_t *co) {
    return co->npending > 0 && co->pending[0].savepoint;
}

void sl_coordinator_set_gateway(sl_coordinator_t *co, const sl_coordinator_gateway_t *gw) {
    co->stopped = false; /* a new attempt: every task runs again */
    for (uint32_t i = 0; co->finished && i < co->ntasks_total; i++) {
        co->finished[i] = false;
        co->finished_after[i] = 0;
    }
    if (gw)
        co->gw = *gw;
    else
        memset(&co->gw, 0, sizeof co->gw);
}

/* <target>/savepoint-<job>-<id>: a one-checkpoint job directory (restore takes it like any). */
static void savepoint_name(const sl_coordinator_t *co, uint64_t id, char *buf, size_t len) {
    snprintf(buf, len, "savepoint-%.60s-%llu", co->storage.job_id, (unsigned long long)id);
}

int sl_coordinator_request_savepoint(sl_coordinator_t *co, const char *target_dir, bool stop, sl_savepoint_cb done,
                                     void *arg, char *err, size_t errlen) {
    if (!co->have_storage) {
        snprintf(err, errlen, "the job has no state.checkpoints.dir: savepoints are staged there before they move to "
                 "their target");
        return SL_ECONFIG;
    }
    if (target_dir == NULL || target_dir[0] == '\0' || strlen(target_dir) >= sizeof co->savepoint_target - 100) {
        snprintf(err, errlen, "no savepoint directory given (or its name is too long)");
        return SL_EINVAL;
    }
    if (co->savepoint_done) {
        snprintf(err, errlen, "a savepoint of this job is already in progress");
        return SL_EAGAIN;
    }
    if (co->stopped) {
        snprintf(err, errlen, "the job is being cancelled or stopped");
        return SL_EINVAL;
    }
    if (co->gw.ntasks && !source_running(co)) {
        snprintf(err, errlen, "every source subtask of the job finished: no savepoint barrier can be injected");
        return SL_EINVAL;
    }
    snprintf(co->savepoint_target, sizeof co->savepoint_target, "%s", target_dir);
    co->savepoint_stop = stop;
    co->savepoint_done = done;
    co->savepoint_arg = arg;
    return 0;
}

static void finish_savepoint(sl_coordinator_t *co, int status, const char *msg) {
    sl_savepoint_cb done = co->savepoint_done;
    co->savepoint_done = NULL;
    co->savepoint_target[0] = '\0';
    if (done)
        done(co->savepoint_arg, status, msg);
}

/* Removes pending slot `p` (its metadata and shared list freed); later slots move down so the
 * set stays ordered by id, and the freed slot keeps its acked array for reuse. */
static void remove_pending(sl_coordinator_t *co, sl_coordinator_pending_t *p) {
    uint32_t i = (uint32_t)(p - co->pending);
    SL_ASSERT(i < co->npending);
    sl_ckpt_metadata_free(&p->md);
    for (uint32_t k = 0; k < p->nshared; k++)
        sl_free(p->shared[k]);
    sl_free(p->shared);
    bool *acked = p->acked;
    memmove(&co->pending[i], &co->pending[i + 1], (co->npending - i - 1) * sizeof *co->pending);
    co->npending--;
    co->pending[co->npending] = (sl_coordinator_pending_t){.acked = acked};
}

/* Whether a pending checkpoint other than `self` references shared file `name`. */
static bool pending_references(const sl_coordinator_t *co, const sl_coordinator_pending_t *self, const char *name) {
    for (uint32_t i = 0; i < co->npending; i++)
        for (uint32_t k = 0; &co->pending[i] != self && k < co->pending[i].nshared; k++)
            if (strcmp(co->pending[i].shared[k], name) == 0)
                return true;
    return false;
}

/* Shared files uploaded for an aborted checkpoint that nothing else references. */
static void delete_orphans(sl_coordinator_t *co, const sl_coordinator_pending_t *p) {
    for (uint32_t i = 0; i < p->nshared; i++)
        if (!sl_shared_registry_is_referenced(&co->registry, p->shared[i]) &&
            !pending_references(co, p, p->shared[i]))
            discard_shared(co, p->shared[i]);
}

/* With one checkpoint at a time the next is due an interval (or the min-pause) after this one
 * ended; with several they start at the interval whatever the ends (see DESIGN). */
static void schedule_after_end(sl_coordinator_t *co) {
    if (co->max_concurrent == 1)
        co->next_trigger_at =
            sl_monotonic_ms() + (co->min_pause_ms > co->interval_ms ? co->min_pause_ms : co->interval_ms);
}

/* Keeps the shared files of an aborted checkpoint for later (DESIGN); out of memory, they are
 * left to collect_garbage. */
static void defer_orphans(sl_coordinator_t *co, sl_coordinator_pending_t *p) {
    if (p->nshared == 0)
        return;
    char **o = sl_realloc(co->orphans, (co->norphans + p->nshared) * sizeof *o);
    if (o == NULL)
        return;
    co->orphans = o;
    for (uint32_t i = 0; i < p->nshared; i++)
        co->orphans[co->norphans++] = p->shared[i];
    p->nshared = 0; /* the names moved */
}

static void free_orphans(sl_coordinator_t *co) {
    for (uint32_t i = 0; i < co->norphans; i++)
        sl_free(co->orphans[i]);
    sl_free(co->orphans);
    co->orphans = NULL;
    co->norphans = 0;
}

/* After a completion: the kept shared files of aborted checkpoints that neither a retained
 * nor a pending checkpoint references go. */
static void delete_deferred_orphans(sl_coordinator_t *co) {
    for (uint32_t i = 0; i < co->norphans; i++)
        if (!sl_shared_registry_is_referenced(&co->registry, co->orphans[i]) &&
            !pending_references(co, NULL, co->orphans[i]))
            discard_shared(co, co->orphans[i]);
    free_orphans(co);
}

/* `subsumed`: a newer checkpoint completed, after which no snapshot can reference a shared
 * file of this one that the newer one does not (DESIGN). */
static void abort_pending(sl_coordinator_t *co, sl_coordinator_pending_t *p, const char *reason, bool subsumed) {
    uint64_t id = p->id;
    bool savepoint = p->savepoint;
    co->aborted++;
    snprintf(co->last_abort_reason, sizeof co->last_abort_reason, "checkpoint %llu: %s", (unsigned long long)id,
             reason);
    SL_WARN("%s %llu aborted: %s", savepoint ? "savepoint" : "checkpoint", (unsigned long long)id, reason);
    if (subsumed)
        delete_orphans(co, p);
    else
        defer_orphans(co, p);
    remove_pending(co, p);
    discard_checkpoint(co, (int64_t)id); /* logged; an aborted checkpoint's leftovers are not fatal */
    if (savepoint)
        finish_savepoint(co, SL_ECANCELED, co->last_abort_reason);
    schedule_after_end(co);
}

static void trigger(sl_coordinator_t *co, int64_t now, bool savepoint) {
    SL_ASSERT(co->npending < co->max_concurrent);
    uint64_t id = co->next_id++;
    sl_coordinator_pending_t *p = &co->pending[co->npending];
    char name[128];
    savepoint_name(co, id, name, sizeof name);
    /* A savepoint's metadata names its own directory: it is written there, not in the job's. */
    if (sl_ckpt_metadata_init(&p->md, id, savepoint ? name : co->storage.job_id, (uint64_t)sl_wall_ms(),
                              savepoint ? SL_CKPT_KIND_SAVEPOINT : SL_CKPT_KIND_CHECKPOINT,
                              co->graph->max_parallelism) != 0) {
        SL_WARN("checkpoint %llu skipped: out of memory", (unsigned long long)id);
        if (savepoint)
            finish_savepoint(co, SL_ENOMEM, "out of memory");
        return;
    }
    p->id = id;
    p->started = now;
    p->savepoint = savepoint;
    p->acks = 0;
    memset(p->acked, 0, co->ntasks_total * sizeof *p->acked);
    co->npending++;
    co->next_trigger_at = now + co->interval_ms;
    if (co->gw.trigger(co->gw.arg, savepoint ? id | SL_CKPT_SAVEPOINT_BIT : id) != 0) {
        abort_pending(co, find_pending(co, id), "could not reach a source", false);
        return;
    }
    SL_INFO("%s %llu triggered", savepoint ? "savepoint" : "checkpoint", (unsigned long long)id);
}

void sl_coordinator_abort(sl_coordinator_t *co, const char *reason) {
    while (co->npending > 0)
        abort_pending(co, &co->pending[co->npending - 1], reason, false);
}

void sl_coordinator_tick(sl_coordinator_t *co, int64_t now) {
    if (!co->have_storage || co->gw.ntasks == 0)
        return;
    for (uint32_t i = co->npending; i-- > 0;)
        if (now - co->pending[i].started > co->timeout_ms)
            abort_pending(co, &co->pending[i], "timed out (execution.checkpointing.timeout)", false);
    bool can_trigger = !co->stopped && source_running(co);
    if (co->savepoint_done) {
        /* Requested or in flight: no checkpoint starts meanwhile (DESIGN). */
        if (savepoint_in_flight(co))
            return;
        if (!can_trigger)
            finish_savepoint(co, SL_ECANCELED, co->stopped ? "the job is being cancelled or stopped"
                                                           : "every source subtask of the job finished: no savepoint "
                                                             "barrier can be injected");
        else if (co->npending == 0)
            trigger(co, now, true);
        return;
    }
    if (co->interval_ms > 0 && can_trigger && co->npending < co->max_concurrent && now >= co->next_trigger_at)
        trigger(co, now, false);
}

static int add_ack(sl_coordinator_t *co, sl_coordinator_pending_t *p, const sl_task_ack_t *ack) {
    char vid[256];
    sl_coordinator_vertex_id(co->graph, ack->vertex, vid, sizeof vid);
    if (ack->vertex >= co->graph->nvertices || ack->subtask >= co->graph->vertices[ack->vertex].parallelism)
        return SL_EINVAL;
    uint32_t first, last;
    sl_key_group_range(co->graph->max_parallelism, co->graph->vertices[ack->vertex].parallelism, ack->subtask, &first,
                       &last);
    sl_ckpt_operator_state_t *op;
    int rc = sl_ckpt_metadata_add_operator(&p->md, vid, ack->subtask, first, last, &op);
    for (uint32_t h = 0; rc == 0 && h < ack->nhandles; h++) {
        const sl_task_handle_t *hd = &ack->handles[h];
        char rel[256];
        sl_ckpt_file_info_t info = {hd->size, hd->crc32c};
        if (hd->shared && p->savepoint) {
            rc = SL_EINVAL; /* a savepoint must stand alone */
        } else if (hd->shared) {
            rc = sl_ckpt_operator_add_file(op, SL_CKPT_HANDLE_SHARED, hd->name, &info);
            char **sh = rc ? NULL : sl_realloc(p->shared, (p->nshared + 1) * sizeof *sh);
            if (sh == NULL || (sh[p->nshared] = sl_strdup(hd->name)) == NULL)
                rc = SL_ENOMEM;
            if (sh) {
                p->shared = sh;
                p->nshared += rc == 0;
            }
        } else {
            snprintf(rel, sizeof rel, "chk-%llu/%s", (unsigned long long)ack->checkpoint_id, hd->name);
            rc = sl_ckpt_operator_add_file(op, SL_CKPT_HANDLE_FILE, rel, &info);
        }
    }
    p->bytes += ack->bytes_uploaded;
    for (uint32_t i = 0; rc == 0 && i < ack->nops; i++)
        for (uint32_t k = 0; rc == 0 && k < ack->extras[i].n; k++) {
            char key[64];
            snprintf(key, sizeof key, "%u.%s", i, ack->extras[i].key[k]);
            rc = sl_ckpt_operator_set_extra(op, key, ack->extras[i].value[k]);
        }
    return rc;
}

/* Moves the staged savepoint (a chk-<id> of the job, no _metadata yet) to
 * <target>/savepoint-<job>-<id>/chk-<id> and writes its _metadata there. */
static int publish_savepoint(sl_coordinator_t *co, sl_coordinator_pending_t *p, char *path, size_t pathlen, char *err,
                             size_t errlen) {
    char name[128], from[4096], to[4096];
    uint64_t id = p->id;
    savepoint_name(co, id, name, sizeof name);
    sl_ckpt_storage_t sp;
    int rc = sl_ckpt_storage_init(&sp, co->savepoint_target, name, err, errlen);
    if (rc)
        return rc;
    sl_ckpt_dir(&co->storage, id, from, sizeof from);
    sl_ckpt_dir(&sp, id, to, sizeof to);
    if (rename(from, to) != 0) {
        /* Another filesystem: file by file (a savepoint directory is flat). */
        DIR *d = opendir(from);
        struct dirent *e;
        rc = d ? 0 : SL_EIO;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            char src[4096], dst[4096];
            if (e->d_name[0] == '.')
                continue;
            if ((rc = sl_ckpt_file_path(&co->storage, id, e->d_name, src, sizeof src)) == 0 &&
                (rc = sl_ckpt_file_path(&sp, id, e->d_name, dst, sizeof dst)) == 0)
                rc = sl_ckpt_file_copy(src, dst, NULL, err, errlen);
        }
        if (d)
            closedir(d);
        if (rc && err[0] == '\0')
            snprintf(err, errlen, "cannot move %.400s to %.400s: %s", from, to, strerror(errno));
    }
    if (rc == 0)
        rc = sl_ckpt_metadata_write(&sp, &p->md, err, errlen);
    snprintf(path, pathlen, "%s", sp.job_dir);
    if (rc) {
        char e2[256];
        sl_ckpt_remove_tree(sp.job_dir, e2, sizeof e2);
    }
    sl_ckpt_storage_destroy(&sp);
    return rc;
}

static void complete_savepoint(sl_coordinator_t *co, sl_coordinator_pending_t *p) {
    char err[1024] = "", path[4096];
    uint64_t id = p->id;
    int rc = publish_savepoint(co, p, path, sizeof path, err, sizeof err);
    if (rc) {
        abort_pending(co, p, err[0] ? err : sl_strerror(rc), false);
        return;
    }
    co->last_duration_ms = sl_monotonic_ms() - p->started;
    remove_pending(co, p);
    bool stop = co->savepoint_stop;
    char staged[4096];
    if (sl_ckpt_dir(&co->storage, id, staged, sizeof staged) == 0)
        sl_ckpt_remove_tree(staged, err, sizeof err); /* what a copy across filesystems left */
    SL_INFO("savepoint %llu complete in %lld ms: %s", (unsigned long long)id, (long long)co->last_duration_ms, path);
    /* Sinks commit what the savepoint covers; with stop every subtask then ends. */
    co->gw.notify_complete(co->gw.arg, id, stop);
    if (stop)
        co->stopped = true;
    finish_savepoint(co, 0, path);
}

static void complete(sl_coordinator_t *co, sl_coordinator_pending_t *p) {
    if (p->savepoint) {
        complete_savepoint(co, p);
        return;
    }
    char err[512];
    uint64_t id = p->id;
    int rc = sl_ckpt_metadata_write(&co->storage, &p->md, err, sizeof err);
    if (rc) {
        abort_pending(co, p, err, false);
        return;
    }
    /* The registry counts the shared files; subsuming an older checkpoint deletes those only
     * it used. */
    if ((rc = sl_completed_store_add(&co->store, (int64_t)id, (const char *const *)p->shared, p->nshared)) != 0)
        SL_WARN("checkpoint %llu: retaining it failed: %s", (unsigned long long)id, sl_strerror(rc));
    co->last_bytes_uploaded = p->bytes;
    co->last_duration_ms = sl_monotonic_ms() - p->started;
    remove_pending(co, p);
    co->completed++;
    co->latest = id;
    /* Earlier pending ones are subsumed: id covers everything they would (DESIGN). Their
     * uploads not referenced by id or a retained checkpoint go with them. */
    char reason[64];
    snprintf(reason, sizeof reason, "subsumed by checkpoint %llu", (unsigned long long)id);
    while (co->npending > 0 && co->pending[0].id < id)
        abort_pending(co, &co->pending[0], reason, true);
    delete_deferred_orphans(co);
    SL_INFO("checkpoint %llu complete in %lld ms", (unsigned long long)id, (long long)co->last_duration_ms);
    /* A subtask that misses the notice commits at the next one (commits cover every id <= n). */
    co->gw.notify_complete(co->gw.arg, id, false);
    schedule_after_end(co);
}

/* Checkpoint `p` is complete when every subtask acknowledged it or finished before reaching
 * it (see DESIGN). Those finished subtasks are added to the metadata as finished. Returns
 * whether `p` left the pending set (completed or aborted). */
static bool maybe_complete(sl_coordinator_t *co, sl_coordinator_pending_t *p) {
    for (uint32_t i = 0; i < co->ntasks_total; i++)
        if (!p->acked[i] && !(co->finished[i] && co->finished_after[i] < p->id))
            return false; /* still running, or finished after snapshotting it: its ack is awaited */
    if (p->acks == 0) {
        /* The sources ended before injecting it and the job drained: no state, only a finished
         * job. Completing it would subsume the last checkpoint that holds state for nothing. */
        abort_pending(co, p, "every subtask finished before it reached them", false);
        return true;
    }
    const sl_job_graph_t *g = co->graph;
    for (uint32_t v = 0; v < g->nvertices; v++)
        for (uint32_t i = 0; i < g->vertices[v].parallelism; i++) {
            if (p->acked[co->task_base[v] + i])
                continue;
            char vid[256];
            uint32_t first, last;
            sl_ckpt_operator_state_t *op;
            sl_coordinator_vertex_id(g, v, vid, sizeof vid);
            sl_key_group_range(g->max_parallelism, g->vertices[v].parallelism, i, &first, &last);
            if (sl_ckpt_metadata_add_operator(&p->md, vid, i, first, last, &op) != 0) {
                abort_pending(co, p, "out of memory building the metadata", false);
                return true;
            }
            op->finished = true;
        }
    complete(co, p);
    return true;
}

/* After a finish report any pending checkpoint may have become complete; completing one
 * removes it and the earlier ones, so the scan starts over. */
static void maybe_complete_all(sl_coordinator_t *co) {
    if (co->gw.ntasks == 0)
        return;
    for (uint32_t i = 0; i < co->npending;)
        i = maybe_complete(co, &co->pending[i]) ? 0 : i + 1;
}

void sl_coordinator_ack(sl_coordinator_t *co, sl_task_ack_t *ack) {
    sl_coordinator_pending_t *p = find_pending(co, ack->checkpoint_id);
    if (p == NULL) {
        sl_task_ack_free(ack); /* late: the checkpoint was aborted or subsumed */
        return;
    }
    if (ack->status != 0) {
        char reason[400];
        snprintf(reason, sizeof reason, "declined by subtask %u of vertex %u: %s", ack->subtask, ack->vertex,
                 ack->error);
        sl_task_ack_free(ack);
        abort_pending(co, p, reason, false);
        return;
    }
    uint32_t idx = sl_coordinator_task_index(co, ack->vertex, ack->subtask);
    if (idx != UINT32_MAX && p->acked[idx]) {
        sl_task_ack_free(ack); /* a duplicate: the first one counted */
        return;
    }
    int rc = idx == UINT32_MAX ? SL_EINVAL : add_ack(co, p, ack);
    sl_task_ack_free(ack);
    if (rc) {
        abort_pending(co, p, rc == SL_ENOMEM ? "out of memory building the metadata"
                                             : "an acknowledgement names no subtask of the job or, for a "
                                               "savepoint, a shared file",
                      false);
        return;
    }
    p->acked[idx] = true;
    p->acks++;
    if (co->gw.ntasks)
        maybe_complete(co, p);
}

void sl_coordinator_task_finished(sl_coordinator_t *co, uint32_t vertex, uint32_t subtask, uint64_t last_checkpoint) {
    uint32_t idx = sl_coordinator_task_index(co, vertex, subtask);
    if (idx == UINT32_MAX || co->gw.ntasks == 0)
        return;
    co->finished[idx] = true;
    co->finished_after[idx] = last_checkpoint;
    maybe_complete_all(co);
}

void sl_coordinator_stop(sl_coordinator_t *co, const char *reason) {
    co->stopped = true;
    sl_coordinator_abort(co, reason);
}

void sl_coordinator_destroy(sl_coordinator_t *co) {
    sl_coordinator_abort(co, "the job ended");
    finish_savepoint(co, SL_ECANCELED, "the job ended");
    free_orphans(co);
    free_tasks(co);
    if (!co->have_storage)
        return;
    sl_completed_store_destroy(&co->store);
    sl_shared_registry_destroy(&co->registry);
    sl_ckpt_storage_destroy(&co->storage);
}

/* After every task ended (no upload in flight): what aborted checkpoints left behind, a
 * directory without _metadata or a shared file no retained checkpoint references, goes. */
void sl_coordinator_collect_garbage(sl_coordinator_t *co) {
    free_orphans(co); /* the scan of shared/ below finds them */
    if (!co->have_storage)
        return;
    DIR *d = opendir(co->storage.job_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *end;
        if (strncmp(e->d_name, "chk-", 4) != 0)
            continue;
        unsigned long long id = strtoull(e->d_name + 4, &end, 10);
        char mpath[4096];
        struct stat st;
        if (*end != '\0' || sl_ckpt_metadata_path(&co->storage, id, mpath, sizeof mpath) != 0 || stat(mpath, &st) == 0)
            continue;
        discard_checkpoint(co, (int64_t)id); /* logged; a leftover directory is not fatal */
    }
    if (d)
        closedir(d);
    char shared[4096];
    snprintf(shared, sizeof shared, "%s/shared", co->storage.job_dir);
    if ((d = opendir(shared)) == NULL)
        return;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && !sl_shared_registry_is_referenced(&co->registry, e->d_name))
            discard_shared(co, e->d_name);
    closedir(d);
}
