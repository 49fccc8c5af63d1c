/* Incremental snapshots (see task_incremental.h). */
#include "taskexecutor/task_incremental.h"

#include <sluice/error.h>

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/storage.h"
#include "core/alloc.h"
#include "core/log.h"
#include "state/rocksdb_backend.h"

typedef struct {
    char name[192]; /* shared name */
    uint64_t size;
    uint32_t crc;
} shared_file_t;

typedef struct {
    uint64_t id;
    shared_file_t *files;
    uint32_t n, cap;
} file_set_t;

struct sl_incremental_s {
    file_set_t base;    /* SST files of the last completed checkpoint */
    file_set_t pending; /* those of the checkpoint in flight */
    /* The asynchronous part of the checkpoint in flight: uploading the files. */
    pthread_t uploader;
    bool uploading;
    sl_task_t *task;
    uint64_t id;
    char dir[4096];
    char prefix[160];
    sl_task_ack_t *ack;
};

int sl_task_ack_add(sl_task_ack_t *ack, bool shared, const char *name, uint64_t size, uint32_t crc) {
    sl_task_handle_t *h = sl_realloc(ack->handles, (ack->nhandles + 1) * sizeof *h);
    if (h == NULL)
        return SL_ENOMEM;
    ack->handles = h;
    h = &h[ack->nhandles++];
    h->shared = shared;
    snprintf(h->name, sizeof h->name, "%s", name);
    h->size = size;
    h->crc32c = crc;
    return 0;
}

static int set_add(file_set_t *s, const char *name, uint64_t size, uint32_t crc) {
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        shared_file_t *f = sl_realloc(s->files, cap * sizeof *f);
        if (f == NULL)
            return SL_ENOMEM;
        s->files = f;
        s->cap = cap;
    }
    shared_file_t *f = &s->files[s->n++];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->size = size;
    f->crc = crc;
    return 0;
}

static const shared_file_t *set_find(const file_set_t *s, const char *name) {
    for (uint32_t i = 0; i < s->n; i++)
        if (strcmp(s->files[i].name, name) == 0)
            return &s->files[i];
    return NULL;
}

static void set_free(file_set_t *s) {
    sl_free(s->files);
    memset(s, 0, sizeof *s);
}

/* Removes a local checkpoint directory (an error leaves files behind, nothing worse). */
static void remove_dir(const char *dir) {
    char err[256];
    if (sl_ckpt_remove_tree(dir, err, sizeof err) != 0)
        SL_WARN("%s", err);
}

/* One file of the local RocksDB checkpoint: referenced, uploaded to shared/, or copied. */
static int add_file(sl_task_t *t, uint64_t id, const char *dir, const char *file, const char *prefix,
                    sl_task_ack_t *ack) {
    struct sl_incremental_s *inc = t->incremental;
    char name[192], src[4096], dst[4096];
    snprintf(name, sizeof name, "%.100s.db.%.80s", prefix, file);
    snprintf(src, sizeof src, "%.3800s/%.200s", dir, file);
    sl_ckpt_file_info_t info;
    size_t n = strlen(file);
    bool sst = n > 4 && strcmp(file + n - 4, ".sst") == 0;
    int rc;
    if (sst) {
        const shared_file_t *known = set_find(&inc->base, name);
        if (known) {
            info = (sl_ckpt_file_info_t){known->size, known->crc};
        } else {
            if ((rc = sl_ckpt_shared_path(t->storage, name, dst, sizeof dst)) != 0 ||
                (rc = sl_ckpt_file_copy(src, dst, &info, ack->error, sizeof ack->error)) != 0)
                return rc;
            ack->bytes_uploaded += info.size;
        }
        rc = set_add(&inc->pending, name, info.size, info.crc32c);
        return rc ? rc : sl_task_ack_add(ack, true, name, info.size, info.crc32c);
    }
    if ((rc = sl_ckpt_file_path(t->storage, id, name, dst, sizeof dst)) != 0 ||
        (rc = sl_ckpt_file_copy(src, dst, &info, ack->error, sizeof ack->error)) != 0)
        return rc;
    ack->bytes_uploaded += info.size;
    return sl_task_ack_add(ack, false, name, info.size, info.crc32c);
}

/* The asynchronous phase: upload (or reference) every file of the local RocksDB checkpoint,
 * remove it, then acknowledge. Runs beside the task thread, which goes on with records. */
static void *upload(void *arg) {
    struct sl_incremental_s *inc = arg;
    sl_task_t *t = inc->task;
    sl_task_ack_t *ack = inc->ack;
    DIR *d = opendir(inc->dir);
    int rc = d ? 0 : SL_EIO;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        rc = add_file(t, inc->id, inc->dir, e->d_name, inc->prefix, ack);
    }
    if (d)
        closedir(d);
    remove_dir(inc->dir);
    if (rc && ack->status == 0) {
        ack->status = rc;
        if (ack->error[0] == '\0')
            snprintf(ack->error, sizeof ack->error, "uploading the RocksDB checkpoint: %s", sl_strerror(rc));
    }
    t->on_ack(t->on_ack_arg, ack);
    return NULL;
}

void sl_task_incremental_wait(sl_task_t *t) {
    struct sl_incremental_s *inc = t->incremental;
    if (inc && inc->uploading) {
        pthread_join(inc->uploader, NULL);
        inc->uploading = false;
    }
}

int sl_task_incremental_snapshot(sl_task_t *t, uint64_t id, sl_task_ack_t *ack) {
    if (t->incremental == NULL && (t->incremental = sl_calloc(1, sizeof *t->incremental)) == NULL)
        return SL_ENOMEM;
    sl_task_incremental_wait(t);
    struct sl_incremental_s *inc = t->incremental;
    inc->pending.n = 0;
    inc->pending.id = id;
    const char *path = sl_rocksdb_backend_path(t->state);
    snprintf(inc->dir, sizeof inc->dir, "%s.chk-%llu", path, (unsigned long long)id);
    /* Unique across runs and subtasks: the process, and the instance's directory name (vertex,
     * subtask, instance number within the process). */
    const char *base = strrchr(path, '/');
    snprintf(inc->prefix, sizeof inc->prefix, "%ld_%s", (long)getpid(), base ? base + 1 : path);
    remove_dir(inc->dir);
    /* Synchronous phase: flush and hard-link the SST files (cheap, and consistent with the
     * barrier because the task thread does it between records). */
    int rc = sl_rocksdb_backend_checkpoint(t->state, inc->dir, ack->error, sizeof ack->error);
    if (rc)
        return rc;
    inc->task = t;
    inc->id = id;
    inc->ack = ack;
    if (pthread_create(&inc->uploader, NULL, upload, inc) != 0) {
        upload(inc); /* no thread: do it here */
        return 1;
    }
    inc->uploading = true;
    return 1; /* the upload thread acknowledges */
}

void sl_task_incremental_complete(sl_task_t *t, uint64_t id) {
    struct sl_incremental_s *inc = t->incremental;
    if (inc == NULL || inc->pending.id != id)
        return;
    set_free(&inc->base);
    inc->base = inc->pending;
    memset(&inc->pending, 0, sizeof inc->pending);
}

void sl_task_incremental_free(sl_task_t *t) {
    if (t->incremental == NULL)
        return;
    sl_task_incremental_wait(t);
    set_free(&t->incremental->base);
    set_free(&t->incremental->pending);
    sl_free(t->incremental);
    t->incremental = NULL;
}
