/* Checkpoints on the task side (see task_checkpoint.h).
 *
 * Alignment, as in Flink's exactly-once mode: when the barrier of checkpoint n arrives on a
 * channel, that channel is held (its later buffers stay queued, which backpressures its
 * producer) until every other live channel delivered the same barrier; then the task's state
 * reflects exactly the records before the barrier on every input. The snapshot is taken (heap
 * keyed state: a copy-on-write view written by a thread, task_async_snapshot.h; RocksDB
 * incremental: a local checkpoint uploaded by a thread, task_incremental.h; otherwise written
 * synchronously to checkpoint storage, the file's checksum computed while writing), the
 * barrier goes downstream, the acknowledgement goes to the coordinator (from the writer's
 * thread when there is one), and held channels are released in the order they became ready. */
#include "taskexecutor/task_checkpoint.h"

#include <sluice/error.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/storage.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "state/heap_backend.h"
#include "state/rocksdb_backend.h"
#include "state/snapshot.h"
#include "taskexecutor/task_async_snapshot.h"
#include "taskexecutor/task_incremental.h"

void sl_task_ack_free(sl_task_ack_t *ack) {
    if (ack == NULL)
        return;
    sl_free(ack->extras);
    sl_free(ack->handles);
    sl_free(ack);
}

typedef struct {
    sl_task_t *t;
    uint64_t id;   /* a trigger's barrier id (may carry SL_CKPT_SAVEPOINT_BIT) */
    bool complete; /* notify complete instead of trigger */
    bool stop;     /* after committing, end (stop-with-savepoint) */
} ckpt_mail_t;

static void ckpt_mail(void *arg) {
    ckpt_mail_t *m = arg;
    sl_task_t *t = m->t;
    int rc = 0;
    if (m->complete) {
        sl_task_incremental_complete(t, m->id);
        for (uint32_t i = 0; rc == 0 && i < t->nops; i++)
            if (t->ops[i]->vt->checkpoint_complete)
                rc = t->ops[i]->vt->checkpoint_complete(t->ops[i], m->id);
        /* Stop-with-savepoint: nothing after the savepoint's barrier may be committed, so the
         * task ends here as cancelled (its uncommitted output is aborted, as on a cancel). */
        if (rc == 0 && m->stop)
            sl_mailbox_cancel(&t->mailbox);
    } else {
        rc = sl_task_checkpoint(t, m->id);
    }
    if (rc && t->error_code == 0) {
        /* The mailbox loop notices the failure through the error code. */
        t->error_code = rc;
        if (t->error[0] == '\0')
            snprintf(t->error, sizeof t->error, "checkpoint %llu: %s", (unsigned long long)m->id, sl_strerror(rc));
    }
    sl_free(m);
}

static int post(sl_task_t *t, uint64_t id, bool complete, bool stop) {
    ckpt_mail_t *m = sl_malloc(sizeof *m);
    if (m == NULL)
        return SL_ENOMEM;
    *m = (ckpt_mail_t){t, id, complete, stop};
    int rc = sl_mailbox_put_mail(&t->mailbox, ckpt_mail, m);
    if (rc)
        sl_free(m);
    return rc;
}

void sl_task_drop_checkpoint_mails(sl_task_t *t) {
    sl_mail_t m;
    while (sl_mailbox_take_mail(&t->mailbox, &m))
        if (m.fn == ckpt_mail)
            sl_free(m.arg); /* a trigger or notice for a task that has ended */
}

int sl_task_trigger_checkpoint(sl_task_t *t, uint64_t barrier_id) { return post(t, barrier_id, false, false); }
int sl_task_notify_complete(sl_task_t *t, uint64_t id, bool stop) {
    return post(t, id, true, stop && t->nwriters == 0);
}

typedef struct {
    sl_ckpt_writer_t w;
    char err[256];
} sink_ctx_t;

static int to_writer(void *arg, const void *data, size_t len) {
    sink_ctx_t *s = arg;
    return sl_ckpt_writer_append(&s->w, data, len, s->err, sizeof s->err);
}

static bool has_keyed_state(const sl_task_t *t) {
    return t->state != NULL ||
           (t->timers && (sl_timer_count(t->timers, SL_TIMER_EVENT) || sl_timer_count(t->timers, SL_TIMER_PROC)));
}

/* Keyed state and timers in the portable format (all entries, or only the state list and the
 * timers when the entries travel as RocksDB files). */
static int write_portable(sl_task_t *t, uint64_t id, bool entries, sl_task_ack_t *ack) {
    char path[4096], name[64];
    snprintf(name, sizeof name, "v%u-s%u.state", t->vertex->id, t->index);
    int rc = sl_ckpt_file_path(t->storage, id, name, path, sizeof path);
    if (rc) {
        snprintf(ack->error, sizeof ack->error, "checkpoint path too long");
        return rc;
    }
    sink_ctx_t s = {.err = ""};
    sl_ckpt_file_info_t info = {0};
    if ((rc = sl_ckpt_writer_open(&s.w, path, s.err, sizeof s.err)) == 0) {
        rc = entries ? sl_state_snapshot_write(t->state, t->timers, to_writer, &s)
                     : sl_state_snapshot_write_meta(t->state, t->timers, to_writer, &s);
        if (rc)
            sl_ckpt_writer_abort(&s.w);
        else
            rc = sl_ckpt_writer_close(&s.w, &info, s.err, sizeof s.err);
    }
    if (rc) {
        snprintf(ack->error, sizeof ack->error, "writing state: %.200s", s.err[0] ? s.err : sl_strerror(rc));
        return rc;
    }
    ack->bytes_uploaded += info.size;
    return sl_task_ack_add(ack, false, name, info.size, info.crc32c);
}

/* Operator state blobs of the chain's operators, one file per subtask:
 * "SLOS" u32 version, u32 count, then per blob u32 operator index, u64 length, bytes. */
#define OPSTATE_MAGIC 0x534f4c53u /* "SLOS" little-endian */
#define OPSTATE_VERSION 1u

static int collect_op_state(sl_task_t *t, uint64_t id, sl_bytes_t *b, uint32_t *count) {
    sl_bytes_t one;
    sl_bytes_init(&one);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < t->nops; i++) {
        sl_operator_t *op = t->ops[i];
        if (op->vt->snapshot_state == NULL)
            continue;
        sl_bytes_clear(&one);
        rc = op->vt->snapshot_state(op, id, &one);
        if (rc == 0 && (rc = one.err) == 0) {
            sl_bytes_put_u32(b, i);
            sl_bytes_put_u64(b, one.len);
            sl_bytes_put(b, one.data, one.len);
            (*count)++;
        }
    }
    sl_bytes_destroy(&one);
    return rc ? rc : b->err;
}

static int write_op_state(sl_task_t *t, uint64_t id, sl_task_ack_t *ack) {
    sl_bytes_t b;
    sl_bytes_init(&b);
    sl_bytes_put_u32(&b, OPSTATE_MAGIC);
    sl_bytes_put_u32(&b, OPSTATE_VERSION);
    sl_bytes_put_u32(&b, 0); /* count, patched below */
    uint32_t count = 0;
    int rc = collect_op_state(t, id, &b, &count);
    if (rc || count == 0) {
        if (rc)
            snprintf(ack->error, sizeof ack->error, "operator state: %.200s", t->error[0] ? t->error : sl_strerror(rc));
        sl_bytes_destroy(&b);
        return rc;
    }
    for (unsigned k = 0; k < 4; k++)
        b.data[8 + k] = (uint8_t)(count >> (8 * k));
    char path[4096], name[64];
    snprintf(name, sizeof name, "v%u-s%u.opstate", t->vertex->id, t->index);
    sink_ctx_t s = {.err = ""};
    sl_ckpt_file_info_t info = {0};
    if ((rc = sl_ckpt_file_path(t->storage, id, name, path, sizeof path)) == 0 &&
        (rc = sl_ckpt_writer_open(&s.w, path, s.err, sizeof s.err)) == 0) {
        if ((rc = to_writer(&s, b.data, b.len)) != 0)
            sl_ckpt_writer_abort(&s.w);
        else
            rc = sl_ckpt_writer_close(&s.w, &info, s.err, sizeof s.err);
    }
    sl_bytes_destroy(&b);
    if (rc) {
        snprintf(ack->error, sizeof ack->error, "writing operator state: %.200s", s.err[0] ? s.err : sl_strerror(rc));
        return rc;
    }
    ack->bytes_uploaded += info.size;
    return sl_task_ack_add(ack, false, name, info.size, info.crc32c);
}

static int write_state(sl_task_t *t, uint64_t id, bool savepoint, sl_task_ack_t *ack) {
    if (sl_heap_backend_is(t->state))
        return sl_task_async_snapshot(t, id, ack); /* 1: its writer acknowledges */
    /* A savepoint stands alone: full and portable, whatever the backend. */
    bool incremental = !savepoint && t->state && sl_rocksdb_backend_is(t->state) &&
                       sl_config_bool(t->config, "state.backend.incremental");
    int rc = write_portable(t, id, !incremental, ack);
    return rc == 0 && incremental ? sl_task_incremental_snapshot(t, id, ack) : rc;
}

int sl_task_checkpoint(sl_task_t *t, uint64_t barrier_id) {
    if (t->storage == NULL || t->on_ack == NULL)
        return 0;
    bool savepoint = (barrier_id & SL_CKPT_SAVEPOINT_BIT) != 0;
    uint64_t id = barrier_id & ~SL_CKPT_SAVEPOINT_BIT;
    sl_task_ack_t *ack = sl_calloc(1, sizeof *ack);
    if (ack == NULL || (ack->extras = sl_calloc(t->nops, sizeof *ack->extras)) == NULL) {
        sl_free(ack);
        return SL_ENOMEM;
    }
    ack->checkpoint_id = id;
    t->last_checkpoint = id; /* declined or not, it took part in id */
    ack->vertex = t->vertex->id;
    ack->subtask = t->index;
    ack->nops = t->nops;
    int rc = 0;
    /* Pending output first: rows emitted before the barrier must precede it downstream. */
    for (uint32_t i = 0; rc == 0 && i < t->nops; i++)
        if (t->ops[i]->out)
            rc = sl_output_flush(t->ops[i]->out);
    for (uint32_t i = 0; rc == 0 && i < t->nops; i++)
        if (t->ops[i]->vt->snapshot && (rc = t->ops[i]->vt->snapshot(t->ops[i], id, &ack->extras[i])) != 0)
            snprintf(ack->error, sizeof ack->error, "operator '%.60s' could not snapshot: %.150s", t->ops[i]->name,
                     t->error[0] ? t->error : sl_strerror(rc));
    if (rc == 0)
        rc = write_op_state(t, id, ack);
    bool async = false;
    if (rc == 0 && has_keyed_state(t)) {
        rc = write_state(t, id, savepoint, ack);
        async = rc == 1;
        rc = async ? 0 : rc;
    }
    /* The barrier goes on even when declining, so downstream alignment never waits forever. */
    int frc = 0;
    for (uint32_t i = 0; frc == 0 && i < t->nwriters; i++)
        frc = sl_record_writer_event(&t->writers[i].writer, SL_CH_BARRIER, (int64_t)barrier_id);
    if (!async) {
        ack->status = rc;
        t->on_ack(t->on_ack_arg, ack);
    }
    return frc;
}

static uint32_t live_channels(const sl_task_t *t) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->nin; i++)
        n += !t->in_channels[i]->ended;
    return n;
}

/* Releases held channels: they go back to the ready queue in the order they became ready. */
static int release_channels(sl_task_t *t) {
    for (uint32_t i = 0; i < t->nin; i++)
        t->blocked[i] = false;
    int rc = 0;
    for (uint32_t i = 0; i < t->ndeferred && rc == 0; i++)
        rc = sl_mailbox_push_ready(&t->mailbox, t->deferred[i]);
    t->ndeferred = 0;
    t->aligning = 0;
    t->barriers = 0;
    return rc;
}

static int maybe_aligned(sl_task_t *t) {
    if (t->aligning == 0 || t->barriers < live_channels(t))
        return 0;
    uint64_t id = t->aligning | (t->aligning_savepoint ? SL_CKPT_SAVEPOINT_BIT : 0);
    int rc = sl_task_checkpoint(t, id);
    int rrc = release_channels(t);
    return rc ? rc : rrc;
}

int sl_task_on_barrier(sl_task_t *t, sl_channel_t *ch, uint64_t barrier_id) {
    uint64_t id = barrier_id & ~SL_CKPT_SAVEPOINT_BIT;
    if (t->aligning && id < t->aligning)
        return 0; /* a late barrier of an aborted checkpoint */
    if (t->aligning && id > t->aligning) {
        /* The earlier checkpoint was abandoned upstream: start over with the newer one. */
        SL_WARN("task %u/%u: checkpoint %llu superseded by %llu during alignment", t->vertex->id, t->index,
                (unsigned long long)t->aligning, (unsigned long long)id);
        int rc = release_channels(t);
        if (rc)
            return rc;
    }
    if (t->aligning == 0) {
        t->aligning = id;
        t->aligning_savepoint = (barrier_id & SL_CKPT_SAVEPOINT_BIT) != 0;
        t->barriers = 0;
    }
    if (!t->blocked[ch->index]) {
        t->blocked[ch->index] = true;
        t->barriers++;
    }
    return maybe_aligned(t);
}

int sl_task_on_channel_end(sl_task_t *t) { return maybe_aligned(t); }

bool sl_task_hold_channel(sl_task_t *t, sl_channel_t *ch) {
    if (t->aligning == 0 || !t->blocked[ch->index])
        return false;
    t->deferred[t->ndeferred++] = ch;
    return true;
}

/* A RocksDB checkpoint from storage: its files put back together in a scratch directory
 * (hard links where possible), then its entries copied into this subtask's backend. */
static int restore_db(sl_task_t *t, const sl_task_restore_db_t *db, uint32_t k) {
    if (t->state == NULL) {
        snprintf(t->error, sizeof t->error, "the checkpoint holds keyed state for a task without keyed operators");
        return SL_EJOB;
    }
    char dir[4096], dst[4096], err[512] = "";
    const char *base = sl_rocksdb_backend_is(t->state) ? sl_rocksdb_backend_path(t->state) : "/tmp/sluice";
    snprintf(dir, sizeof dir, "%s.restore-%u-%u", base, (unsigned)getpid(), k);
    int rc = sl_ckpt_remove_tree(dir, err, sizeof err);
    if (rc == 0 && mkdir(dir, 0777) != 0)
        rc = SL_EIO;
    for (uint32_t f = 0; rc == 0 && f < db->nfiles; f++) {
        snprintf(dst, sizeof dst, "%.3800s/%.200s", dir, db->names[f]);
        if (link(db->paths[f], dst) != 0) {
            sl_ckpt_file_info_t info;
            rc = sl_ckpt_file_copy(db->paths[f], dst, &info, err, sizeof err);
        }
    }
    if (rc == 0)
        rc = sl_rocksdb_backend_import(t->state, dir, err, sizeof err);
    char rm[256];
    sl_ckpt_remove_tree(dir, rm, sizeof rm);
    if (rc)
        snprintf(t->error, sizeof t->error, "restoring RocksDB state of checkpoint %llu: %.400s",
                 (unsigned long long)t->restore->checkpoint_id, err[0] ? err : sl_strerror(rc));
    return rc;
}

int sl_task_restore_state(sl_task_t *t) {
    const sl_task_restore_t *r = t->restore;
    if (r == NULL)
        return 0;
    uint32_t first = 0, last = t->graph->max_parallelism - 1;
    if (t->state) {
        first = t->state->kg_first;
        last = t->state->kg_last;
    }
    for (uint32_t i = 0; i < r->nstate; i++) {
        char err[512];
        int rc = sl_state_snapshot_restore(t->state, t->timers, r->state[i], r->state_len[i], first, last, err,
                                           sizeof err);
        if (rc) {
            snprintf(t->error, sizeof t->error, "restoring checkpoint %llu: %s", (unsigned long long)r->checkpoint_id,
                     err);
            return rc;
        }
    }
    for (uint32_t i = 0; i < r->ndbs; i++) {
        int rc = restore_db(t, &r->dbs[i], i);
        if (rc)
            return rc;
    }
    return 0;
}

/* One operator-state file: its blobs to the operators they belong to. */
static int restore_op_state_file(sl_task_t *t, const uint8_t *data, size_t len) {
    sl_bytes_reader_t r;
    sl_bytes_reader_init(&r, data, len);
    uint32_t magic = 0, version = 0, count = 0;
    sl_bytes_get_u32(&r, &magic);
    sl_bytes_get_u32(&r, &version);
    sl_bytes_get_u32(&r, &count);
    if (r.err || magic != OPSTATE_MAGIC || version != OPSTATE_VERSION) {
        snprintf(t->error, sizeof t->error, "operator state of checkpoint %llu: not an operator-state file (version %u)",
                 (unsigned long long)t->restore->checkpoint_id, version);
        return SL_EPARSE;
    }
    for (uint32_t k = 0; k < count; k++) {
        uint32_t idx = 0;
        uint64_t n = 0;
        const uint8_t *blob = NULL;
        sl_bytes_get_u32(&r, &idx);
        sl_bytes_get_u64(&r, &n);
        if (r.err == 0 && n <= r.left)
            sl_bytes_get_view(&r, (size_t)n, &blob);
        if (r.err || n > len || blob == NULL || idx >= t->nops || t->ops[idx]->vt->restore_state == NULL) {
            snprintf(t->error, sizeof t->error, "operator state of checkpoint %llu: blob %u is malformed or belongs to "
                     "no operator of this chain", (unsigned long long)t->restore->checkpoint_id, k);
            return SL_EPARSE;
        }
        int rc = t->ops[idx]->vt->restore_state(t->ops[idx], blob, (size_t)n);
        if (rc) {
            if (t->error[0] == '\0')
                snprintf(t->error, sizeof t->error, "operator '%s' could not restore its state: %s", t->ops[idx]->name,
                         sl_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int sl_task_restore_operators(sl_task_t *t) {
    const sl_task_restore_t *r = t->restore;
    if (r == NULL)
        return 0;
    /* Every operator of a vertex in the checkpoint hears of the restore, with the sets of
     * positions it inherited (possibly none, possibly several after rescaling, restore.h): a
     * sink must learn which of its files the checkpoint covers even when it saved nothing. */
    for (uint32_t i = 0; i < t->nops && i < r->nops; i++) {
        sl_operator_t *op = t->ops[i];
        const sl_task_restore_op_t *ro = &r->ops[i];
        if (op->vt->restore == NULL || ro->old_parallelism == 0)
            continue;
        if (ro->nsets != 1 && !op->vt->rescalable) { /* restore.c refuses such plans already */
            snprintf(t->error, sizeof t->error, "operator '%s' of vertex '%s' cannot take over the positions of %u "
                     "subtasks of checkpoint %llu: restore it at parallelism %u", op->name, t->vertex->name, ro->nsets,
                     (unsigned long long)r->checkpoint_id, ro->old_parallelism);
            return SL_EJOB;
        }
        int rc = op->vt->restore(op, r->checkpoint_id, ro->sets, ro->nsets);
        if (rc) {
            if (t->error[0] == '\0')
                snprintf(t->error, sizeof t->error, "operator '%s' could not restore checkpoint %llu: %s", op->name,
                         (unsigned long long)r->checkpoint_id, sl_strerror(rc));
            return rc;
        }
    }
    for (uint32_t i = 0; i < r->nopstate; i++) {
        int rc = restore_op_state_file(t, r->opstate[i], r->opstate_len[i]);
        if (rc)
            return rc;
    }
    return 0;
}
