/* Incremental snapshots (see task_incremental.h).
 *
 * DESIGN: several checkpoints pending (max-concurrent-checkpoints > 1)
 * Checkpoint n+1 may be snapshotted before n is known to be complete, and either may then be
 * aborted (n is subsumed when n+1 completes first; n+1 may time out) without the subtask
 * hearing of it. Uploads are named after the checkpoint that uploads them
 * ("<prefix>.c<id>.db.<sst>"), never reusing a name, so an upload is never overwritten while
 * a checkpoint references it. A snapshot references an SST file, instead of uploading it, under
 * the name the most recent of this subtask's earlier snapshots gave it: the base (the last
 * checkpoint notified complete) or one acknowledged but not yet notified (kept per id until
 * the notice of it or of a later one). So every snapshot of this subtask names a given SST
 * file alike, and since SST files never come back once compacted away, a checkpoint that
 * completes references every file a later snapshot may still reference. The coordinator
 * relies on that: it deletes an aborted checkpoint's uploads only after a later checkpoint
 * completed without referencing them, or once the attempt ended (coordinator.c), and the
 * shared files of a subsumed completed checkpoint only when the newer one does not reference
 * them. The upload thread works only on its own set and on a merged copy of the earlier sets
 * taken on the task thread, so notices handled meanwhile cannot race with it. */
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
    char name[192];   /* "<prefix>.db.<sst>": the local file, whatever checkpoint uploaded it */
    char shared[192]; /* its name under shared/ */
    uint64_t size;
    uint32_t crc;
} shared_file_t;

typedef struct {
    uint64_t id;
    shared_file_t *files;
    uint32_t n, cap;
} file_set_t;

/* Task thread only, except the upload fields, which the upload thread owns between
 * pthread_create and pthread_join. */
struct sl_incremental_s {
    file_set_t base;     /* SST files of the last checkpoint notified complete */
    file_set_t *pending; /* those of snapshots acknowledged but not yet confirmed, by id */
    uint32_t npending, cappending;
    /* The asynchronous part of the snapshot in flight: uploading the files. */
    pthread_t uploader;
    bool uploading;
    sl_task_t *task;
    uint64_t id;
    char dir[4096];
    char prefix[160];
    sl_task_ack_t *ack;
    file_set_t against; /* the names earlier snapshots gave (base, then newer pending ones) */
    file_set_t cur;     /* its SST files, filled by the upload */
    int upload_rc;
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

static int set_add(file_set_t *s, const char *name, const char *shared, uint64_t size, uint32_t crc) {
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
    snprintf(f->shared, sizeof f->shared, "%s", shared);
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

/* Adds the files of `src` to `dst`, a file already there taking the name `src` gives it. */
static int set_merge(file_set_t *dst, const file_set_t *src) {
    for (uint32_t i = 0; i < src->n; i++) {
        const shared_file_t *f = &src->files[i];
        shared_file_t *known = (shared_file_t *)set_find(dst, f->name);
        if (known) {
            *known = *f;
            continue;
        }
        int rc = set_add(dst, f->name, f->shared, f->size, f->crc);
        if (rc)
            return rc;
    }
    return 0;
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
    char uploaded[192]; /* an upload's name is its checkpoint's own (DESIGN) */
    snprintf(uploaded, sizeof uploaded, "%.100s.c%llu.db.%.60s", prefix, (unsigned long long)id, file);
    snprintf(src, sizeof src, "%.3800s/%.200s", dir, file);
    sl_ckpt_file_info_t info;
    size_t n = strlen(file);
    bool sst = n > 4 && strcmp(file + n - 4, ".sst") == 0;
    int rc;
    if (sst) {
        /* Earlier snapshots map the local SST name to the shared name it was uploaded under. */
        const shared_file_t *known = set_find(&inc->against, name);
        const char *shared = known ? known->shared : uploaded;
        if (known) {
            info = (sl_ckpt_file_info_t){known->size, known->crc};
        } else {
            if ((rc = sl_ckpt_shared_path(t->storage, uploaded, dst, sizeof dst)) != 0 ||
                (rc = sl_ckpt_file_copy(src, dst, &info, ack->error, sizeof ack->error)) != 0)
                return rc;
            ack->bytes_uploaded += info.size;
        }
        rc = set_add(&inc->cur, name, shared, info.size, info.crc32c);
        return rc ? rc : sl_task_ack_add(ack, true, shared, info.size, info.crc32c);
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
    inc->upload_rc = rc;
    if (rc && ack->status == 0) {
        ack->status = rc;
        if (ack->error[0] == '\0')
            snprintf(ack->error, sizeof ack->error, "uploading the RocksDB checkpoint: %s", sl_strerror(rc));
    }
    t->on_ack(t->on_ack_arg, ack);
    return NULL;
}

/* Task thread, after the upload ended: a successful snapshot's set waits for its completion
 * notice (a failed one was declined and never completes). */
static void keep_pending(struct sl_incremental_s *inc) {
    if (inc->upload_rc != 0) {
        inc->cur.n = 0;
        return;
    }
    if (inc->npending == inc->cappending) {
        uint32_t cap = inc->cappending ? inc->cappending * 2 : 4;
        file_set_t *p = sl_realloc(inc->pending, cap * sizeof *p);
        if (p == NULL) {
            /* Without its set the notice of this one cannot update the base: the next snapshot
             * then uploads again what it would have referenced, which is only slower. */
            SL_WARN("checkpoint %llu: out of memory keeping its files", (unsigned long long)inc->cur.id);
            inc->cur.n = 0;
            return;
        }
        inc->pending = p;
        inc->cappending = cap;
    }
    inc->pending[inc->npending++] = inc->cur;
    memset(&inc->cur, 0, sizeof inc->cur);
}

void sl_task_incremental_wait(sl_task_t *t) {
    struct sl_incremental_s *inc = t->incremental;
    if (inc && inc->uploading) {
        pthread_join(inc->uploader, NULL);
        inc->uploading = false;
        keep_pending(inc);
    }
}

int sl_task_incremental_snapshot(sl_task_t *t, uint64_t id, sl_task_ack_t *ack) {
    if (t->incremental == NULL && (t->incremental = sl_calloc(1, sizeof *t->incremental)) == NULL)
        return SL_ENOMEM;
    sl_task_incremental_wait(t);
    struct sl_incremental_s *inc = t->incremental;
    /* Oldest first, so that the most recent name of a file wins (DESIGN). */
    inc->against.n = 0;
    int rc = set_merge(&inc->against, &inc->base);
    for (uint32_t i = 0; rc == 0 && i < inc->npending; i++)
        rc = set_merge(&inc->against, &inc->pending[i]);
    if (rc) {
        snprintf(ack->error, sizeof ack->error, "out of memory");
        return rc;
    }
    inc->cur.n = 0;
    inc->cur.id = id;
    inc->upload_rc = 0;
    const char *path = sl_rocksdb_backend_path(t->state);
    snprintf(inc->dir, sizeof inc->dir, "%s.chk-%llu", path, (unsigned long long)id);
    /* Unique across runs and subtasks: the process, and the instance's directory name (vertex,
     * subtask, instance number within the process). */
    const char *base = strrchr(path, '/');
    snprintf(inc->prefix, sizeof inc->prefix, "%ld_%s", (long)getpid(), base ? base + 1 : path);
    remove_dir(inc->dir);
    /* Synchronous phase: flush and hard-link the SST files (cheap, and consistent with the
     * barrier because the task thread does it between records). */
    rc = sl_rocksdb_backend_checkpoint(t->state, inc->dir, ack->error, sizeof ack->error);
    if (rc)
        return rc;
    inc->task = t;
    inc->id = id;
    inc->ack = ack;
    if (pthread_create(&inc->uploader, NULL, upload, inc) != 0) {
        upload(inc); /* no thread: do it here */
        keep_pending(inc);
        return 1;
    }
    inc->uploading = true;
    return 1; /* the upload thread acknowledges */
}

void sl_task_incremental_complete(sl_task_t *t, uint64_t id) {
    struct sl_incremental_s *inc = t->incremental;
    if (inc == NULL)
        return;
    /* The notice of `id` comes after this subtask acknowledged it, so an upload of an id at or
     * below it has ended (it sent its ack); joining it only collects its set. A later one runs
     * on. */
    if (inc->uploading && inc->id <= id)
        sl_task_incremental_wait(t);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < inc->npending; i++) {
        file_set_t *s = &inc->pending[i];
        if (s->id == id) {
            set_free(&inc->base);
            inc->base = *s;
        } else if (s->id < id) {
            set_free(s); /* subsumed: never completes */
        } else {
            inc->pending[keep++] = *s;
        }
    }
    inc->npending = keep;
}

void sl_task_incremental_free(sl_task_t *t) {
    struct sl_incremental_s *inc = t->incremental;
    if (inc == NULL)
        return;
    sl_task_incremental_wait(t);
    set_free(&inc->base);
    for (uint32_t i = 0; i < inc->npending; i++)
        set_free(&inc->pending[i]);
    sl_free(inc->pending);
    set_free(&inc->against);
    set_free(&inc->cur);
    sl_free(inc);
    t->incremental = NULL;
}
