/* Asynchronous heap snapshots (see task_async_snapshot.h). */
#include "taskexecutor/task_async_snapshot.h"

#include <sluice/error.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "checkpoint/storage.h"
#include "core/alloc.h"
#include "core/log.h"
#include "state/heap_backend.h"
#include "state/snapshot.h"
#include "taskexecutor/task_incremental.h"

/* The write in flight, kept in the backend's async slot. Fields are set by the task thread
 * before the writer starts and belong to the writer until it is joined. */
typedef struct {
    pthread_t thread;
    sl_task_t *task;
    sl_state_capture_t *capture;
    sl_task_ack_t *ack;
    uint64_t id;
    int64_t capture_us; /* the synchronous phase, for the debug log */
    char path[4096];
    char name[64];
} job_t;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct {
    sl_ckpt_writer_t w;
    char err[256];
} sink_ctx_t;

static int to_writer(void *arg, const void *data, size_t len) {
    sink_ctx_t *s = arg;
    return sl_ckpt_writer_append(&s->w, data, len, s->err, sizeof s->err);
}

/* The asynchronous phase: write the file, release the copy-on-write view, acknowledge. */
static void *write_job(void *arg) {
    job_t *j = arg;
    sl_task_ack_t *ack = j->ack;
    int64_t start = now_us();
    sink_ctx_t s = {.err = ""};
    sl_ckpt_file_info_t info = {0};
    int rc = sl_ckpt_writer_open(&s.w, j->path, s.err, sizeof s.err);
    if (rc == 0) {
        rc = sl_state_capture_write(j->capture, to_writer, &s);
        if (rc)
            sl_ckpt_writer_abort(&s.w);
        else
            rc = sl_ckpt_writer_close(&s.w, &info, s.err, sizeof s.err);
    }
    sl_state_capture_release(j->capture);
    j->capture = NULL;
    if (rc == 0) {
        ack->bytes_uploaded += info.size;
        rc = sl_task_ack_add(ack, false, j->name, info.size, info.crc32c);
        SL_DEBUG("%s: checkpoint %llu: heap snapshot captured in %lld us, %llu bytes written in %lld ms", j->name,
                 (unsigned long long)j->id, (long long)j->capture_us, (unsigned long long)info.size,
                 (long long)(now_us() - start) / 1000);
    }
    if (rc && ack->status == 0) {
        ack->status = rc;
        snprintf(ack->error, sizeof ack->error, "writing state: %.200s", s.err[0] ? s.err : sl_strerror(rc));
    }
    j->task->on_ack(j->task->on_ack_arg, ack);
    return NULL;
}

void sl_task_async_snapshot_wait(sl_task_t *t) {
    if (!sl_heap_backend_is(t->state))
        return;
    void **slot = sl_heap_backend_async_slot(t->state);
    job_t *j = *slot;
    if (j == NULL)
        return;
    pthread_join(j->thread, NULL);
    sl_free(j);
    *slot = NULL;
}

int sl_task_async_snapshot(sl_task_t *t, uint64_t id, sl_task_ack_t *ack) {
    sl_task_async_snapshot_wait(t); /* at most one write in flight */
    job_t *j = sl_calloc(1, sizeof *j);
    if (j == NULL)
        return SL_ENOMEM;
    snprintf(j->name, sizeof j->name, "v%u-s%u.state", t->vertex->id, t->index);
    int rc = sl_ckpt_file_path(t->storage, id, j->name, j->path, sizeof j->path);
    if (rc) {
        snprintf(ack->error, sizeof ack->error, "checkpoint path too long");
        sl_free(j);
        return rc;
    }
    /* The synchronous phase: a copy-on-write view of the state, the timers in memory. */
    int64_t start = now_us();
    if ((rc = sl_state_snapshot_capture(t->state, t->timers, &j->capture)) != 0) {
        snprintf(ack->error, sizeof ack->error, "capturing state: %s", sl_strerror(rc));
        sl_free(j);
        return rc;
    }
    j->capture_us = now_us() - start;
    j->task = t;
    j->id = id;
    j->ack = ack;
    if (pthread_create(&j->thread, NULL, write_job, j) != 0) {
        write_job(j); /* no thread: write here */
        sl_free(j);
        return 1;
    }
    *sl_heap_backend_async_slot(t->state) = j;
    return 1; /* the writer acknowledges */
}
