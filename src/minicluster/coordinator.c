/* The checkpoint coordinator (see coordinator.h). One checkpoint at a time
 * (execution.checkpointing.max-concurrent-checkpoints: 1): a new one starts only after the
 * previous completed or aborted and the minimum pause passed. */
#include "minicluster/coordinator.h"

#include <sluice/error.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/key_group.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "taskexecutor/task_checkpoint.h"

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

void sl_coordinator_vertex_id(const sl_job_graph_t *g, uint32_t vertex, char *buf, size_t len) {
    snprintf(buf, len, "v%u:%s", vertex, g->vertices[vertex].name);
}

int sl_coordinator_init(sl_coordinator_t *co, const sl_config_t *config, const sl_job_graph_t *g, const char *job_id,
                        uint64_t first_id, char *err, size_t errlen) {
    memset(co, 0, sizeof *co);
    co->graph = g;
    co->interval_ms = sl_config_duration_ms(config, "execution.checkpointing.interval");
    co->timeout_ms = sl_config_duration_ms(config, "execution.checkpointing.timeout");
    co->min_pause_ms = sl_config_duration_ms(config, "execution.checkpointing.min-pause");
    co->next_id = first_id ? first_id : 1;
    const char *dir = sl_config_str(config, "state.checkpoints.dir");
    if (dir == NULL || dir[0] == '\0') {
        snprintf(err, errlen, "execution.checkpointing.interval is set but state.checkpoints.dir is not");
        return SL_ECONFIG;
    }
    int rc = sl_ckpt_storage_init(&co->storage, dir, job_id, err, errlen);
    if (rc)
        return rc;
    if ((rc = sl_shared_registry_init(&co->registry, discard_shared, co)) != 0 ||
        (rc = sl_completed_store_init(&co->store, (size_t)sl_config_int(config, "state.checkpoints.num-retained"),
                                      &co->registry, discard_checkpoint, co)) != 0) {
        snprintf(err, errlen, "cannot set up the checkpoint store: %s", sl_strerror(rc));
        sl_ckpt_storage_destroy(&co->storage);
        return rc;
    }
    co->next_trigger_at = sl_monotonic_ms() + co->interval_ms;
    return 0;
}

void sl_coordinator_set_tasks(sl_coordinator_t *co, sl_task_t **tasks, uint32_t ntasks) {
    co->tasks = tasks;
    co->ntasks = ntasks;
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

static void trigger(sl_coordinator_t *co, int64_t now) {
    uint64_t id = co->next_id++;
    if (sl_ckpt_metadata_init(&co->md, id, co->storage.job_id, (uint64_t)sl_wall_ms(), SL_CKPT_KIND_CHECKPOINT,
                              co->graph->max_parallelism) != 0) {
        SL_WARN("checkpoint %llu skipped: out of memory", (unsigned long long)id);
        return;
    }
    co->pending = id;
    co->pending_started = now;
    co->acks = 0;
    for (uint32_t i = 0; i < co->ntasks; i++) {
        sl_task_t *t = co->tasks[i];
        if (t->nin == 0 && sl_task_trigger_checkpoint(t, id) != 0) {
            sl_coordinator_abort(co, "could not reach a source");
            return;
        }
    }
    SL_INFO("checkpoint %llu triggered", (unsigned long long)id);
}

void sl_coordinator_abort(sl_coordinator_t *co, const char *reason) {
    if (co->pending == 0)
        return;
    uint64_t id = co->pending;
    co->pending = 0;
    co->aborted++;
    snprintf(co->last_abort_reason, sizeof co->last_abort_reason, "checkpoint %llu: %s", (unsigned long long)id,
             reason);
    SL_WARN("checkpoint %llu aborted: %s", (unsigned long long)id, reason);
    sl_ckpt_metadata_free(&co->md);
    delete_orphans(co);
    free_shared(co);
    char err[256];
    sl_ckpt_discard(&co->storage, id, err, sizeof err);
    co->next_trigger_at = sl_monotonic_ms() + (co->min_pause_ms > co->interval_ms ? co->min_pause_ms : co->interval_ms);
}

void sl_coordinator_tick(sl_coordinator_t *co, int64_t now) {
    if (co->interval_ms <= 0)
        return;
    if (co->pending && now - co->pending_started > co->timeout_ms) {
        sl_coordinator_abort(co, "timed out (execution.checkpointing.timeout)");
        return;
    }
    if (!co->pending && !co->stopped && now >= co->next_trigger_at)
        trigger(co, now);
}

static int add_ack(sl_coordinator_t *co, const sl_task_ack_t *ack) {
    char vid[256];
    sl_coordinator_vertex_id(co->graph, ack->vertex, vid, sizeof vid);
    uint32_t first, last;
    sl_key_group_range(co->graph->max_parallelism, co->graph->vertices[ack->vertex].parallelism, ack->subtask, &first,
                       &last);
    sl_ckpt_operator_state_t *op;
    int rc = sl_ckpt_metadata_add_operator(&co->md, vid, ack->subtask, first, last, &op);
    for (uint32_t h = 0; rc == 0 && h < ack->nhandles; h++) {
        const sl_task_handle_t *hd = &ack->handles[h];
        char rel[256];
        sl_ckpt_file_info_t info = {hd->size, hd->crc32c};
        if (hd->shared) {
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

static void complete(sl_coordinator_t *co) {
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
    for (uint32_t i = 0; i < co->ntasks; i++)
        if (sl_task_notify_complete(co->tasks[i], id) != 0)
            SL_WARN("checkpoint %llu: could not notify subtask %u", (unsigned long long)id, i);
    co->next_trigger_at = sl_monotonic_ms() + (co->min_pause_ms > co->interval_ms ? co->min_pause_ms : co->interval_ms);
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
    int rc = add_ack(co, ack);
    sl_task_ack_free(ack);
    if (rc) {
        sl_coordinator_abort(co, "out of memory building the metadata");
        return;
    }
    if (++co->acks == co->ntasks)
        complete(co);
}

void sl_coordinator_stop(sl_coordinator_t *co) {
    co->stopped = true;
    sl_coordinator_abort(co, "a task finished (checkpoints stop when sources end)");
}

void sl_coordinator_destroy(sl_coordinator_t *co) {
    if (co->pending)
        sl_ckpt_metadata_free(&co->md);
    free_shared(co);
    sl_completed_store_destroy(&co->store);
    sl_shared_registry_destroy(&co->registry);
    sl_ckpt_storage_destroy(&co->storage);
}

/* After every task ended (no upload in flight): what aborted checkpoints left behind, a
 * directory without _metadata or a shared file no retained checkpoint references, goes. */
void sl_coordinator_collect_garbage(sl_coordinator_t *co) {
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
