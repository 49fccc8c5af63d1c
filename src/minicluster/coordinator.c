/* The checkpoint coordinator (see coordinator.h). One checkpoint at a time
 * (execution.checkpointing.max-concurrent-checkpoints: 1): a new one starts only after the
 * previous completed or aborted and the minimum pause passed. A requested savepoint goes next,
 * without waiting for the interval or the pause.
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

/* The per-subtask arrays (coordinator.h) and which vertices are sources. */
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
    co->acked = sl_calloc(n ? n : 1, sizeof *co->acked);
    co->finished = sl_calloc(n ? n : 1, sizeof *co->finished);
    co->finished_after = sl_calloc(n ? n : 1, sizeof *co->finished_after);
    return co->acked && co->finished && co->finished_after ? 0 : SL_ENOMEM;
}

static void free_tasks(sl_coordinator_t *co) {
    sl_free(co->task_base);
    sl_free(co->source_vertex);
    sl_free(co->acked);
    sl_free(co->finished);
    sl_free(co->finished_after);
    co->task_base = NULL;
    co->source_vertex = NULL;
    co->acked = co->finished = NULL;
    co->finished_after = NULL;
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
    co->pending_savepoint = false;
    co->savepoint_target[0] = '\0';
    if (done)
        done(co->savepoint_arg, status, msg);
}


static void free_shared(sl_coordinator_t *co) {
    for (uint32_t i = 0; i < co->nshared; i++)
        sl_free(co->shared[i]);
    sl_free(co->shared);
    co->shared = NULL;
    co->nshared = 0;
    co->pending_bytes = 0;
}

/* Shared files uploaded for an aborted checkpoint that no retained one references. */
static void delete_orphans(sl_coordinator_t *co) {
    for (uint32_t i = 0; i < co->nshared; i++)
        if (!sl_shared_registry_is_referenced(&co->registry, co->shared[i]))
            discard_shared(co, co->shared[i]);
}

static void trigger(sl_coordinator_t *co, int64_t now, bool savepoint) {
    uint64_t id = co->next_id++;
    char name[128];
    savepoint_name(co, id, name, sizeof name);
    /* A savepoint's metadata names its own directory: it is written there, not in the job's. */
    if (sl_ckpt_metadata_init(&co->md, id, savepoint ? name : co->storage.job_id, (uint64_t)sl_wall_ms(),
                              savepoint ? SL_CKPT_KIND_SAVEPOINT : SL_CKPT_KIND_CHECKPOINT,
                              co->graph->max_parallelism) != 0) {
        SL_WARN("checkpoint %llu skipped: out of memory", (unsigned long long)id);
        if (savepoint)
            finish_savepoint(co, SL_ENOMEM, "out of memory");
        return;
    }
    co->pending = id;
    co->pending_started = now;
    co->pending_savepoint = savepoint;
    co->acks = 0;
    memset(co->acked, 0, co->ntasks_total * sizeof *co->acked);
    if (co->gw.trigger(co->gw.arg, savepoint ? id | SL_CKPT_SAVEPOINT_BIT : id) != 0) {
        sl_coordinator_abort(co, "could not reach a source");
        return;
    }
    SL_INFO("%s %llu triggered", savepoint ? "savepoint" : "checkpoint", (unsigned long long)id);
}

void sl_coordinator_abort(sl_coordinator_t *co, const char *reason) {
    if (co->pending == 0)
        return;
    uint64_t id = co->pending;
    co->pending = 0;
    co->aborted++;
    snprintf(co->last_abort_reason, sizeof co->last_abort_reason, "checkpoint %llu: %s", (unsigned long long)id,
             reason);
    SL_WARN("%s %llu aborted: %s", co->pending_savepoint ? "savepoint" : "checkpoint", (unsigned long long)id, reason);
    sl_ckpt_metadata_free(&co->md);
    delete_orphans(co);
    free_shared(co);
    char err[256];
    sl_ckpt_discard(&co->storage, id, err, sizeof err);
    if (co->pending_savepoint)
        finish_savepoint(co, SL_ECANCELED, co->last_abort_reason);
    co->next_trigger_at = sl_monotonic_ms() + (co->min_pause_ms > co->interval_ms ? co->min_pause_ms : co->interval_ms);
}

void sl_coordinator_tick(sl_coordinator_t *co, int64_t now) {
    if (!co->have_storage || co->gw.ntasks == 0)
        return;
    if (co->pending && now - co->pending_started > co->timeout_ms) {
        sl_coordinator_abort(co, "timed out (execution.checkpointing.timeout)");
        return;
    }
    if (co->pending)
        return;
    bool can_trigger = !co->stopped && source_running(co);
    if (co->savepoint_done && !can_trigger)
        finish_savepoint(co, SL_ECANCELED, co->stopped ? "the job is being cancelled or stopped"
                                                       : "every source subtask of the job finished: no savepoint "
                                                         "barrier can be injected");
    else if (co->savepoint_done)
        trigger(co, now, true);
    else if (co->interval_ms > 0 && can_trigger && now >= co->next_trigger_at)
        trigger(co, now, false);
}

static int add_ack(sl_coordinator_t *co, const sl_task_ack_t *ack) {
    char vid[256];
    sl_coordinator_vertex_id(co->graph, ack->vertex, vid, sizeof vid);
    if (ack->vertex >= co->graph->nvertices || ack->subtask >= co->graph->vertices[ack->vertex].parallelism)
        return SL_EINVAL;
    uint32_t first, last;
    sl_key_group_range(co->graph->max_parallelism, co->graph->vertices[ack->vertex].parallelism, ack->subtask, &first,
                       &last);
    sl_ckpt_operator_state_t *op;
    int rc = sl_ckpt_metadata_add_operator(&co->md, vid, ack->subtask, first, last, &op);
    for (uint32_t h = 0; rc == 0 && h < ack->nhandles; h++) {
        const sl_task_handle_t *hd = &ack->handles[h];
        char rel[256];
        sl_ckpt_file_info_t info = {hd->size, hd->crc32c};
        if (hd->shared && co->pending_savepoint) {
            rc = SL_EINVAL; /* a savepoint must stand alone */
        } else if (hd->shared) {
            rc = sl_ckpt_operator_add_file(op, SL_CKPT_HANDLE_SHARED, hd->name, &info);
            char **sh = rc ? NULL : sl_realloc(co->shared, (co->nshared + 1) * sizeof *sh);
            if (sh == NULL || (sh[co->nshared] = sl_strdup(hd->name)) == NULL)
                rc = SL_ENOMEM;
            if (sh) {
                co->shared = sh;
                co->nshared += rc == 0;
            }
        } else {
            snprintf(rel, sizeof rel, "chk-%llu/%s", (unsigned long long)ack->checkpoint_id, hd->name);
            rc = sl_ckpt_operator_add_file(op, SL_CKPT_HANDLE_FILE, rel, &info);
        }
    }
    co->pending_bytes += ack->bytes_uploaded;
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
static int publish_savepoint(sl_coordinator_t *co, uint64_t id, char *path, size_t pathlen, char *err, size_t errlen) {
    char name[128], from[4096], to[4096];
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
        rc = sl_ckpt_metadata_write(&sp, &co->md, err, errlen);
    snprintf(path, pathlen, "%s", sp.job_dir);
    if (rc) {
        char e2[256];
        sl_ckpt_remove_tree(sp.job_dir, e2, sizeof e2);
    }
    sl_ckpt_storage_destroy(&sp);
    return rc;
}

static void complete_savepoint(sl_coordinator_t *co) {
    char err[1024] = "", path[4096];
    uint64_t id = co->pending;
    int rc = publish_savepoint(co, id, path, sizeof path, err, sizeof err);
    if (rc) {
        sl_coordinator_abort(co, err[0] ? err : sl_strerror(rc));
        return;
    }
    sl_ckpt_metadata_free(&co->md);
    co->pending = 0;
    bool stop = co->savepoint_stop;
    free_shared(co);
    char staged[4096];
    if (sl_ckpt_dir(&co->storage, id, staged, sizeof staged) == 0)
        sl_ckpt_remove_tree(staged, err, sizeof err); /* what a copy across filesystems left */
    co->last_duration_ms = sl_monotonic_ms() - co->pending_started;
    SL_INFO("savepoint %llu complete in %lld ms: %s", (unsigned long long)id, (long long)co->last_duration_ms, path);
    /* Sinks commit what the savepoint covers; with stop every subtask then ends. */
    co->gw.notify_complete(co->gw.arg, id, stop);
    if (stop)
        co->stopped = true;
    finish_savepoint(co, 0, path);
}

static void complete(sl_coordinator_t *co) {
    if (co->pending_savepoint) {
        complete_savepoint(co);
        return;
    }
    char err[512];
    uint64_t id = co->pending;
    int rc = sl_ckpt_metadata_write(&co->storage, &co->md, err, sizeof err);
    sl_ckpt_metadata_free(&co->md);
    co->pending = 0;
    if (rc) {
        co->pending = id; /* abort() needs it */
        sl_coordinator_abort(co, err);
        return;
    }
    /* The registry counts the shared files; subsuming an older checkpoint deletes those only
     * it used. */
    if ((rc = sl_completed_store_add(&co->store, (int64_t)id, (const char *const *)co->shared, co->nshared)) != 0)
        SL_WARN("checkpoint %llu: retaining it failed: %s", (unsigned long long)id, sl_strerror(rc));
    co->last_bytes_uploaded = co->pending_bytes;
    free_shared(co);
    co->completed++;
    co->latest = id;
    co->last_duration_ms = sl_monotonic_ms() - co->pending_started;
    SL_INFO("checkpoint %llu complete in %lld ms", (unsigned long long)id, (long long)co->last_duration_ms);
    /* A subtask that misses the notice commits at the next one (commits cover every id <= n). */
    co->gw.notify_complete(co->gw.arg, id, false);
    co->next_trigger_at = sl_monotonic_ms() + (co->min_pause_ms > co->interval_ms ? co->min_pause_ms : co->interval_ms);
}

/* Checkpoint `pending` is complete when every subtask acknowledged it or finished before
 * reaching it (see DESIGN). Those finished subtasks are added to the metadata as finished. */
static void maybe_complete(sl_coordinator_t *co) {
    if (co->pending == 0 || co->gw.ntasks == 0)
        return;
    for (uint32_t i = 0; i < co->ntasks_total; i++)
        if (!co->acked[i] && !(co->finished[i] && co->finished_after[i] < co->pending))
            return; /* still running, or finished after snapshotting it: its ack is awaited */
    if (co->acks == 0) {
        /* The sources ended before injecting it and the job drained: no state, only a finished
         * job. Completing it would subsume the last checkpoint that holds state for nothing. */
        sl_coordinator_abort(co, "every subtask finished before it reached them");
        return;
    }
    const sl_job_graph_t *g = co->graph;
    for (uint32_t v = 0; v < g->nvertices; v++)
        for (uint32_t i = 0; i < g->vertices[v].parallelism; i++) {
            if (co->acked[co->task_base[v] + i])
                continue;
            char vid[256];
            uint32_t first, last;
            sl_ckpt_operator_state_t *op;
            sl_coordinator_vertex_id(g, v, vid, sizeof vid);
            sl_key_group_range(g->max_parallelism, g->vertices[v].parallelism, i, &first, &last);
            if (sl_ckpt_metadata_add_operator(&co->md, vid, i, first, last, &op) != 0) {
                sl_coordinator_abort(co, "out of memory building the metadata");
                return;
            }
            op->finished = true;
        }
    complete(co);
}

void sl_coordinator_ack(sl_coordinator_t *co, sl_task_ack_t *ack) {
    if (co->pending == 0 || ack->checkpoint_id != co->pending) {
        sl_task_ack_free(ack); /* late: the checkpoint was aborted */
        return;
    }
    if (ack->status != 0) {
        char reason[400];
        snprintf(reason, sizeof reason, "declined by subtask %u of vertex %u: %s", ack->subtask, ack->vertex,
                 ack->error);
        sl_task_ack_free(ack);
        sl_coordinator_abort(co, reason);
        return;
    }
    uint32_t idx = sl_coordinator_task_index(co, ack->vertex, ack->subtask);
    if (idx != UINT32_MAX && co->acked[idx]) {
        sl_task_ack_free(ack); /* a duplicate: the first one counted */
        return;
    }
    int rc = idx == UINT32_MAX ? SL_EINVAL : add_ack(co, ack);
    sl_task_ack_free(ack);
    if (rc) {
        sl_coordinator_abort(co, rc == SL_ENOMEM ? "out of memory building the metadata"
                                                 : "an acknowledgement names no subtask of the job or, for a "
                                                   "savepoint, a shared file");
        return;
    }
    co->acked[idx] = true;
    co->acks++;
    maybe_complete(co);
}

void sl_coordinator_task_finished(sl_coordinator_t *co, uint32_t vertex, uint32_t subtask, uint64_t last_checkpoint) {
    uint32_t idx = sl_coordinator_task_index(co, vertex, subtask);
    if (idx == UINT32_MAX || co->gw.ntasks == 0)
        return;
    co->finished[idx] = true;
    co->finished_after[idx] = last_checkpoint;
    maybe_complete(co);
}

void sl_coordinator_stop(sl_coordinator_t *co, const char *reason) {
    co->stopped = true;
    sl_coordinator_abort(co, reason);
}

void sl_coordinator_destroy(sl_coordinator_t *co) {
    sl_coordinator_abort(co, "the job ended");
    finish_savepoint(co, SL_ECANCELED, "the job ended");
    free_shared(co);
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
        char err[256];
        sl_ckpt_discard(&co->storage, id, err, sizeof err);
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
