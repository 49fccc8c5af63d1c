/* The JobMaster of one job (see job_master.h). */
#include "jobmaster/job_master.h"

#include <sluice/error.h>

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "graph/job_graph_codec.h"
#include "minicluster/library_cache.h"
#include "minicluster/restore.h"

#define MAX_TMS_PER_JOB 1024

typedef sl_job_master_t job_t;

typedef struct tm_ref_s {
    char tm_id[64];
    char host[128];
    int port;
    sl_rpc_conn_t *conn;
} tm_ref_t;

static void set_error(job_t *j, const char *msg) {
    pthread_mutex_lock(&j->mu);
    if (j->error[0] == '\0')
        snprintf(j->error, sizeof j->error, "%s", msg);
    pthread_mutex_unlock(&j->mu);
}

/* ---- Mail from the loop thread ---- */

typedef struct {
    job_t *j;
    uint32_t attempt;
    sl_task_ack_t *ack;
} ack_mail_t;

static bool post(job_t *j, sl_mail_fn fn, void *arg);

typedef struct {
    job_t *j;
    sl_savepoint_done_fn done;
    void *done_arg;
    bool stop;
    char target[1024];
} savepoint_mail_t;

static void run_ack(void *arg) {
    ack_mail_t *m = arg;
    if (m->j->co_ready && m->attempt == atomic_load(&m->j->attempt))
        sl_coordinator_ack(&m->j->co, m->ack);
    else
        sl_task_ack_free(m->ack);
    sl_free(m);
}

typedef struct {
    job_t *j;
    uint32_t attempt, vertex, subtask;
    bool finished;
    uint64_t last_checkpoint;
} ended_mail_t;

static void run_task_ended(void *arg) {
    ended_mail_t *m = arg;
    job_t *j = m->j;
    if (m->attempt == atomic_load(&j->attempt) && m->vertex < j->g.nvertices &&
        m->subtask < j->g.vertices[m->vertex].parallelism) {
        uint32_t idx = j->task_base[m->vertex] + m->subtask;
        if (!j->task_ended[idx]) {
            j->task_ended[idx] = true;
            j->sinks_ended += j->sink_vertex[m->vertex];
        }
        if (m->finished && j->co_ready)
            sl_coordinator_task_finished(&j->co, m->vertex, m->subtask, m->last_checkpoint);
    }
    sl_free(m);
}

void sl_job_master_task_ended(job_t *j, uint32_t attempt, uint32_t vertex, uint32_t subtask, bool finished,
                              uint64_t last_checkpoint) {
    ended_mail_t *m = sl_malloc(sizeof *m);
    if (m)
        *m = (ended_mail_t){j, attempt, vertex, subtask, finished, last_checkpoint};
    if (m == NULL || !post(j, run_task_ended, m)) {
        /* Lost (out of memory, or the job ended): checkpoints then time out, and a stop
         * waiting for this sink is ended by the job's cancel. */
        sl_free(m);
    }
}

static void savepoint_done(void *arg, int status, const char *path_or_error) {
    savepoint_mail_t *m = arg;
    if (status == 0) {
        SL_INFO("job %s (%s): savepoint %s%s", m->j->id, m->j->name, path_or_error, m->stop ? "; stopping" : "");
        m->j->stopping |= m->stop;
    }
    m->done(m->done_arg, status, path_or_error);
    sl_free(m);
}

static void run_savepoint(void *arg) {
    savepoint_mail_t *m = arg;
    char err[512] = "";
    int rc = m->j->co_ready ? sl_coordinator_request_savepoint(&m->j->co, m->target, m->stop, savepoint_done, m, err,
                                                               sizeof err)
                            : SL_EINVAL;
    if (rc) {
        m->done(m->done_arg, rc, err[0] ? err : "the job cannot take a savepoint now");
        sl_free(m);
    }
}

/* Drops what the thread will never run (it ended): acks go, requests get an answer. */
static void drain_mail(job_t *j) {
    sl_mail_t m;
    while (sl_mailbox_take_mail(&j->mail, &m)) {
        if (m.fn == run_ack) {
            sl_task_ack_free(((ack_mail_t *)m.arg)->ack);
            sl_free(m.arg);
        } else if (m.fn == run_task_ended) {
            sl_free(m.arg);
        } else if (m.fn == run_savepoint) {
            savepoint_mail_t *s = m.arg;
            s->done(s->done_arg, SL_EINVAL, "the job is no longer running");
            sl_free(s);
        }
    }
}

/* Posts unless the thread ended; false: the caller disposes of arg. */
static bool post(job_t *j, sl_mail_fn fn, void *arg) {
    pthread_mutex_lock(&j->mu);
    bool ok = !j->ended && sl_mailbox_put_mail(&j->mail, fn, arg) == 0;
    pthread_mutex_unlock(&j->mu);
    return ok;
}

void sl_job_master_ack(job_t *j, uint32_t attempt, sl_task_ack_t *ack) {
    ack_mail_t *m = sl_malloc(sizeof *m);
    if (m)
        *m = (ack_mail_t){j, attempt, ack};
    if (m == NULL || !post(j, run_ack, m)) {
        sl_task_ack_free(ack);
        sl_free(m);
    }
}

void sl_job_master_savepoint(job_t *j, const char *target_dir, bool stop, sl_savepoint_done_fn done, void *arg) {
    savepoint_mail_t *m = sl_calloc(1, sizeof *m);
    if (m == NULL) {
        done(arg, SL_ENOMEM, "out of memory");
        return;
    }
    *m = (savepoint_mail_t){.j = j, .done = done, .done_arg = arg, .stop = stop};
    if (target_dir == NULL || target_dir[0] != '/' || strlen(target_dir) >= sizeof m->target) {
        sl_free(m);
        done(arg, SL_EINVAL, "the savepoint directory must be an absolute path");
        return;
    }
    snprintf(m->target, sizeof m->target, "%s", target_dir);
    if (!post(j, run_savepoint, m)) {
        sl_free(m);
        done(arg, SL_EINVAL, "the job is no longer running");
    }
}

/* ---- The coordinator's gateway: every TaskManager of the running attempt ---- */

static int gw_trigger(void *arg, uint64_t barrier_id) {
    job_t *j = arg;
    Sluice__Rpc__TriggerCheckpoint t = SLUICE__RPC__TRIGGER_CHECKPOINT__INIT;
    t.job_id = j->id;
    t.attempt = atomic_load(&j->attempt);
    t.barrier_id = barrier_id;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT;
    env.trigger_checkpoint = &t;
    int rc = 0;
    for (uint32_t k = 0; k < j->ntms && rc == 0; k++)
        rc = sl_rpc_send(j->tms[k].conn, &env);
    return rc;
}

static void gw_notify(void *arg, uint64_t id, bool stop) {
    job_t *j = arg;
    Sluice__Rpc__NotifyCheckpointComplete n = SLUICE__RPC__NOTIFY_CHECKPOINT_COMPLETE__INIT;
    n.job_id = j->id;
    n.attempt = atomic_load(&j->attempt);
    n.checkpoint_id = id;
    n.stop = stop;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE;
    env.notify_checkpoint_complete = &n;
    for (uint32_t k = 0; k < j->ntms; k++)
        if (sl_rpc_send(j->tms[k].conn, &env) != 0)
            SL_WARN("job %s: TaskManager %s missed the completion of checkpoint %llu", j->id, j->tms[k].tm_id,
                    (unsigned long long)id);
}

/* ---- One attempt ---- */

static int deploy_to(job_t *j, const tm_ref_t *tm, const sl_slot_t *slots, const tm_ref_t *at, char *err,
                     size_t errlen) {
    uint32_t *subtasks = sl_calloc(j->nslots, sizeof *subtasks);
    Sluice__Rpc__TaskManagerLocation *locs = sl_calloc(j->nslots, sizeof *locs);
    Sluice__Rpc__TaskManagerLocation **ptrs = sl_calloc(j->nslots, sizeof *ptrs);
    if (subtasks == NULL || locs == NULL || ptrs == NULL) {
        sl_free(subtasks);
        sl_free(locs);
        sl_free(ptrs);
        return SL_ENOMEM;
    }
    size_t n = 0;
    for (uint32_t s = 0; s < j->nslots; s++) {
        if (strcmp(slots[s].tm_id, tm->tm_id) == 0)
            subtasks[n++] = s;
        sluice__rpc__task_manager_location__init(&locs[s]);
        locs[s].tm_id = (char *)at[s].tm_id;
        locs[s].data_host = (char *)at[s].host;
        locs[s].data_port = (uint32_t)at[s].port;
        ptrs[s] = &locs[s];
    }
    Sluice__Rpc__DeployJob m = SLUICE__RPC__DEPLOY_JOB__INIT;
    m.job_id = j->id;
    m.job_graph = (ProtobufCBinaryData){j->graph_len, j->graph};
    m.config = (ProtobufCBinaryData){j->config_len, j->config};
    m.library_path = j->library;
    if (j->library_bytes) { /* shipped: the TaskManager does not need the path */
        const char *slash = j->g.library ? strrchr(j->g.library, '/') : NULL;
        m.library_bytes = (ProtobufCBinaryData){j->library_len, j->library_bytes};
        m.library_sha256 = (ProtobufCBinaryData){sizeof j->library_sha256, j->library_sha256};
        m.library_name = slash ? (char *)slash + 1 : j->g.library ? j->g.library : "(job library)";
    }
    m.n_subtasks = n;
    m.subtasks = subtasks;
    m.n_placement = j->nslots;
    m.placement = ptrs;
    m.attempt = atomic_load(&j->attempt);
    m.restore_path = j->restore_path;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT, *resp = NULL;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_DEPLOY_JOB;
    env.deploy_job = &m;
    int rc = sl_rpc_call_sync(tm->conn, &env, 30000, &resp);
    if (rc)
        snprintf(err, errlen, "deploying to TaskManager %s failed: %s", tm->tm_id,
                 resp && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_ERROR ? resp->error->message : sl_strerror(rc));
    sl_rpc_msg_free(resp);
    sl_free(subtasks);
    sl_free(locs);
    sl_free(ptrs);
    return rc;
}

static void cancel_on(job_t *j, const tm_ref_t *tms, uint32_t ntms) {
    Sluice__Rpc__CancelJob c = SLUICE__RPC__CANCEL_JOB__INIT;
    c.job_id = j->id;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_CANCEL_JOB;
    env.cancel_job = &c;
    for (uint32_t k = 0; k < ntms; k++)
        sl_rpc_send(tms[k].conn, &env);
}

static uint32_t reported(job_t *j) {
    return atomic_load(&j->finished) + atomic_load(&j->failed) + atomic_load(&j->canceled);
}

/* Slots for every subtask: waits for the pool, then resolves where each slot is. */
static int gather_slots(job_t *j, sl_slot_pool_t *p, tm_ref_t *at, tm_ref_t *tms, uint32_t *ntms, char *err,
                        size_t errlen) {
    int rc;
    do
        rc = sl_slot_pool_wait(p, 200, err, errlen);
    while (rc == SL_ETIMEDOUT && !j->cancel);
    if (j->cancel && rc)
        return SL_ECANCELED;
    if (rc)
        return rc;
    const sl_slot_t *slots;
    sl_slot_pool_slots(p, &slots);
    sl_rm_service_t *rm = sl_jobmanager_rm(j->jm);
    for (uint32_t s = 0; s < j->nslots && rc == 0; s++) {
        snprintf(at[s].tm_id, sizeof at[s].tm_id, "%s", slots[s].tm_id);
        sl_rpc_conn_t *conn = NULL;
        if ((rc = sl_rm_service_tm_info(rm, slots[s].tm_id, at[s].host, sizeof at[s].host, &at[s].port, &conn)) != 0) {
            snprintf(err, errlen, "TaskManager %s of slot %u is gone", slots[s].tm_id, s);
            break;
        }
        uint32_t k = 0;
        while (k < *ntms && strcmp(tms[k].tm_id, at[s].tm_id) != 0)
            k++;
        if (k == *ntms && k < MAX_TMS_PER_JOB) {
            tms[k] = at[s];
            tms[k].conn = conn;
            (*ntms)++;
        } else {
            sl_rpc_conn_unref(conn);
        }
    }
    return rc;
}

/* Runs the mail that arrived within `ms`. */
static void take_mail(job_t *j, int64_t ms) {
    void *unused;
    sl_mailbox_wait_ready(&j->mail, sl_monotonic_ms() + ms, &unused);
    sl_mail_t m;
    while (sl_mailbox_take_mail(&j->mail, &m))
        m.fn(m.arg);
}

/* Stop-with-savepoint, second phase: the sinks committed the savepoint and ended; the other
 * subtasks (perhaps blocked on credit from those sinks) are cancelled. What they report from
 * now on cannot fail the job: its result is the savepoint. */
static void finish_stop(job_t *j) {
    /* Sinks, not any subtasks: a source that finished long before the savepoint must not let
     * the rest be cancelled before every sink committed. */
    if (!j->stopping || j->sinks_ended < j->nsink_tasks)
        return;
    SL_INFO("job %s (%s): the sinks committed the final savepoint; cancelling the rest", j->id, j->name);
    cancel_on(j, j->tms, j->ntms);
    j->stopping = false;
    j->stopped = true;
}

/* Until every subtask reported, the first failure, a lost TaskManager or a cancel; meanwhile
 * the coordinator runs. */
static int watch(job_t *j, sl_slot_pool_t *p, char *err, size_t errlen) {
    while (reported(j) < j->ntasks) {
        bool failed = atomic_load(&j->failed) && !j->stopped;
        if (failed || j->cancel)
            return failed ? SL_EFAILED : SL_ECANCELED;
        int rc = sl_slot_pool_wait(p, 0, err, errlen);
        if (rc && rc != SL_ETIMEDOUT)
            return rc; /* a TaskManager holding the job's slots was lost */
        take_mail(j, 50);
        if (j->co_ready) {
            /* Finished subtasks do not stop checkpoints (coordinator.c): a cancelled one does. */
            if (atomic_load(&j->canceled) > 0)
                sl_coordinator_stop(&j->co, "a subtask was cancelled");
            sl_coordinator_tick(&j->co, sl_monotonic_ms());
        }
        finish_stop(j);
    }
    return atomic_load(&j->failed) && !j->stopped ? SL_EFAILED : 0;
}

static int run_once(job_t *j, char *err, size_t errlen) {
    sl_slot_pool_t *p = NULL;
    tm_ref_t *at = sl_calloc(j->nslots, sizeof *at), *tms = sl_calloc(j->nslots, sizeof *tms);
    uint32_t ntms = 0;
    int64_t t0 = sl_monotonic_ms(), t_slots = 0;
    j->stopping = j->stopped = false;
    memset(j->task_ended, 0, j->ntasks * sizeof *j->task_ended);
    j->sinks_ended = 0;
    int rc = at && tms ? sl_slot_pool_create(sl_jobmanager_rm(j->jm), j->id, j->nslots, &p) : SL_ENOMEM;
    if (rc == 0 && (rc = sl_jobmanager_add_pool(j->jm, p)) != 0)
        snprintf(err, errlen, "too many jobs at once");
    if (rc == 0)
        rc = gather_slots(j, p, at, tms, &ntms, err, errlen);
    const sl_slot_t *slots = NULL;
    if (p)
        sl_slot_pool_slots(p, &slots);
    t_slots = sl_monotonic_ms();
    j->tms = tms;
    j->ntms = ntms;
    for (uint32_t k = 0; rc == 0 && k < ntms; k++)
        rc = deploy_to(j, &tms[k], slots, at, err, errlen);
    if (rc == 0) {
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_RUNNING);
        /* Read by bench/cluster_bench.sh: the time from asking for slots to tasks deployed. */
        SL_INFO("job %s (%s) attempt %u: %u subtasks on %u TaskManagers: %u slots in %lld ms, deployed in %lld ms%s%s",
                j->id, j->name, atomic_load(&j->attempt), j->ntasks, ntms, j->nslots, (long long)(t_slots - t0),
                (long long)(sl_monotonic_ms() - t0), j->restore_path[0] ? ", restoring " : "", j->restore_path);
        if (j->co_ready)
            sl_coordinator_set_gateway(&j->co, &(sl_coordinator_gateway_t){gw_trigger, gw_notify, j, j->ntasks});
        rc = watch(j, p, err, errlen);
    }
    if (j->co_ready) {
        sl_coordinator_abort(&j->co, "the job attempt ended");
        sl_coordinator_set_gateway(&j->co, NULL);
    }
    if (rc && ntms) {
        cancel_on(j, tms, ntms);
        for (int i = 0; i < 60 && reported(j) < j->ntasks; i++) /* their last reports, briefly */
            take_mail(j, 50);
    }
    j->tms = NULL;
    j->ntms = 0;
    if (j->co_ready)
        sl_coordinator_collect_garbage(&j->co);
    if (p) {
        sl_jobmanager_remove_pool(j->jm, p);
        sl_slot_pool_destroy(p);
    }
    for (uint32_t k = 0; k < ntms; k++)
        sl_rpc_conn_unref(tms[k].conn);
    sl_free(at);
    sl_free(tms);
    return rc;
}

/* ---- The job ---- */

/* execution.savepoint.path, when set: validated against the job, resolved to one checkpoint. */
static int initial_restore(job_t *j, uint64_t *first_id, char *err, size_t errlen) {
    const char *from = sl_config_str(j->cfg, "execution.savepoint.path");
    *first_id = 1;
    if (from == NULL || from[0] == '\0')
        return 0;
    sl_restore_plan_t plan;
    uint8_t *none = sl_calloc(j->nslots + 1, 1); /* validation only: no state read into memory */
    int rc = none ? sl_restore_plan_load(&plan, &j->g, from, none, err, errlen) : SL_ENOMEM;
    sl_free(none);
    if (rc == 0) {
        snprintf(j->restore_path, sizeof j->restore_path, "%s", plan.path);
        *first_id = plan.checkpoint_id + 1;
        sl_restore_plan_free(&plan);
    }
    return rc;
}

static int start_coordinator(job_t *j, char *err, size_t errlen) {
    uint64_t first_id;
    int rc = initial_restore(j, &first_id, err, errlen);
    if (rc == 0 && (rc = sl_coordinator_init(&j->co, j->cfg, &j->g, j->id, first_id, true, err, errlen)) == 0)
        j->co_ready = true;
    return rc;
}

/* Attempts until one succeeds, the job is canceled, or the restart strategy gives up. */
static int run_attempts(job_t *j, char *err, size_t errlen) {
    for (int64_t attempt = 0;; attempt++) {
        /* Under the lock reports take too: none of the old attempt is counted for the new. */
        pthread_mutex_lock(&j->mu);
        atomic_store(&j->attempt, (uint32_t)attempt);
        atomic_store(&j->finished, 0);
        atomic_store(&j->failed, 0);
        atomic_store(&j->canceled, 0);
        pthread_mutex_unlock(&j->mu);
        err[0] = '\0';
        int rc = run_once(j, err, errlen);
        if (rc == 0 || j->cancel || attempt >= j->restarts)
            return rc;
        pthread_mutex_lock(&j->mu);
        const char *why = j->error[0] ? j->error : err[0] ? err : sl_strerror(rc);
        if (j->co_ready && j->co.latest)
            sl_ckpt_dir(&j->co.storage, j->co.latest, j->restore_path, sizeof j->restore_path);
        SL_WARN("job %s (%s) failed: %s; restart %lld of %lld%s%s", j->id, j->name, why, (long long)attempt + 1,
                (long long)j->restarts, j->restore_path[0] ? " from " : " from the beginning", j->restore_path);
        j->error[0] = '\0';
        pthread_mutex_unlock(&j->mu);
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_RESTARTING);
        for (int64_t t = 0; t < j->restart_delay_ms && !j->cancel; t += 50)
            take_mail(j, 50);
    }
}

static void *job_main(void *arg) {
    job_t *j = arg;
    char err[1024] = "";
    int rc = start_coordinator(j, err, sizeof err);
    if (rc == 0)
        rc = run_attempts(j, err, sizeof err);
    pthread_mutex_lock(&j->mu);
    j->ended = true;
    pthread_mutex_unlock(&j->mu);
    sl_free(j->library_bytes); /* only deployments need it: a finished job keeps no copy */
    j->library_bytes = NULL;
    drain_mail(j);
    if (j->co_ready) {
        sl_coordinator_destroy(&j->co); /* a savepoint still asked for is answered */
        j->co_ready = false;
    }
    if (rc && j->cancel) {
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_CANCELED);
    } else if (rc) {
        set_error(j, err[0] ? err : sl_strerror(rc));
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_FAILED);
    } else {
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_FINISHED);
    }
    j->end_ms = sl_wall_ms();
    SL_INFO("job %s (%s) %s%s%s", j->id, j->name, rc == 0 ? "finished" : rc == SL_ECANCELED ? "canceled" : "failed",
            j->error[0] ? ": " : "", j->error);
    return NULL;
}

int sl_job_master_prepare(job_t *j, char *err, size_t errlen) {
    int rc = sl_job_graph_decode(j->graph, j->graph_len, &j->g, err, errlen);
    if (rc == 0 && ((j->task_base = sl_calloc(j->g.nvertices + 1, sizeof *j->task_base)) == NULL ||
                    (j->sink_vertex = sl_calloc(j->g.nvertices + 1, sizeof *j->sink_vertex)) == NULL))
        rc = SL_ENOMEM;
    for (uint32_t v = 0; rc == 0 && v < j->g.nvertices; v++) {
        j->task_base[v] = j->ntasks;
        j->ntasks += j->g.vertices[v].parallelism;
        bool has_output = false;
        for (uint32_t e = 0; e < j->g.nedges; e++)
            has_output |= !j->g.edges[e].chained && j->g.nodes[j->g.edges[e].src].vertex == v;
        j->sink_vertex[v] = !has_output;
        if (!has_output)
            j->nsink_tasks += j->g.vertices[v].parallelism;
        if (j->g.vertices[v].parallelism > j->nslots)
            j->nslots = j->g.vertices[v].parallelism;
    }
    if (rc == 0 && (j->task_ended = sl_calloc(j->ntasks + 1, sizeof *j->task_ended)) == NULL)
        rc = SL_ENOMEM;
    if (rc == 0) {
        snprintf(j->name, sizeof j->name, "%s", j->g.name ? j->g.name : "job");
        rc = sl_config_create(&j->cfg);
    }
    if (rc == 0)
        rc = sl_config_set_lines(j->cfg, j->config, j->config_len, err, errlen);
    if (rc == 0) {
        j->restarts = sl_config_int(j->cfg, "restart-strategy.fixed-delay.attempts");
        j->restart_delay_ms = sl_config_duration_ms(j->cfg, "restart-strategy.fixed-delay.delay");
    }
    return rc;
}

int sl_job_master_set_library(job_t *j, const uint8_t *bytes, size_t len, char *err, size_t errlen) {
    if (len > SL_LIBRARY_MAX_BYTES) {
        snprintf(err, errlen, "the job library is %zu bytes, above the limit of %u", len, SL_LIBRARY_MAX_BYTES);
        return SL_EINVAL;
    }
    if ((j->library_bytes = sl_malloc(len ? len : 1)) == NULL)
        return SL_ENOMEM;
    if (len)
        memcpy(j->library_bytes, bytes, len);
    j->library_len = len;
    return sl_library_sha256(j->library_bytes, len, j->library_sha256);
}

int sl_job_master_start(job_t *j) {
    int rc = sl_mailbox_init(&j->mail);
    if (rc)
        return rc;
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        sl_mailbox_destroy(&j->mail);
        return SL_ENOMEM;
    }
    j->started = true;
    return 0;
}

void sl_job_master_free(job_t *j) {
    if (j == NULL)
        return;
    if (j->started) {
        j->cancel = 1;
        pthread_join(j->thread, NULL);
        sl_mailbox_destroy(&j->mail);
    }
    sl_job_graph_destroy(&j->g);
    sl_free(j->task_base);
    sl_free(j->sink_vertex);
    sl_free(j->task_ended);
    sl_config_destroy(j->cfg);
    pthread_mutex_destroy(&j->mu);
    sl_free(j->graph);
    sl_free(j->config);
    sl_free(j->library_bytes);
    sl_free(j);
}
