/* The Dispatcher (see dispatcher.h): the jobs of this JobManager and the messages about them. */
#include "jobmaster/dispatcher.h"

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "jobmaster/job_master.h"
#include "minicluster/ack_codec.h"

typedef sl_job_master_t job_t;

struct sl_dispatcher_s {
    sl_jobmanager_t *jm;
    pthread_mutex_t mu;        /* jobs */
    job_t *jobs;
    unsigned next_id;
};

/* ---- Messages ---- */

static job_t *find_job(sl_dispatcher_t *d, const char *id) {
    for (job_t *j = d->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

static void fill_status(job_t *j, Sluice__Rpc__JobStatus *s, Sluice__Rpc__Error *e) {
    sluice__rpc__job_status__init(s);
    s->job_id = j->id;
    s->name = j->name;
    s->state = atomic_load(&j->state);
    s->start_time_ms = j->start_ms;
    s->end_time_ms = j->end_ms;
    if (j->error[0]) {
        sluice__rpc__error__init(e);
        e->code = SL_EFAILED;
        e->message = j->error;
        s->error = e;
    }
}

static void reply_status(job_t *j, sl_rpc_request_t *req) {
    Sluice__Rpc__JobStatus s;
    Sluice__Rpc__Error e;
    pthread_mutex_lock(&j->mu);
    fill_status(j, &s, &e);
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_JOB_STATUS;
    env.job_status = &s;
    sl_rpc_reply(req, &env);
    pthread_mutex_unlock(&j->mu);
}

int sl_dispatcher_submit(sl_dispatcher_t *d, const sl_job_submission_t *s, char *job_id, size_t idlen, char *err,
                         size_t errlen) {
    err[0] = '\0';
    job_t *j = sl_calloc(1, sizeof *j);
    int rc = j ? 0 : SL_ENOMEM;
    if (rc == 0) {
        j->jm = d->jm;
        pthread_mutex_init(&j->mu, NULL);
        j->graph = sl_malloc(s->graph_len ? s->graph_len : 1);
        j->config = sl_malloc(s->config_len ? s->config_len : 1);
        rc = j->graph && j->config ? 0 : SL_ENOMEM;
    }
    if (rc == 0) {
        /* protobuf-c leaves empty bytes fields NULL: memcpy must not see them. */
        if (s->graph_len)
            memcpy(j->graph, s->graph, s->graph_len);
        j->graph_len = s->graph_len;
        if (s->config_len)
            memcpy(j->config, s->config, s->config_len);
        j->config_len = s->config_len;
        if (s->library_path)
            snprintf(j->library, sizeof j->library, "%s", s->library_path);
        if (s->library)
            rc = sl_job_master_set_library(j, s->library, s->library_len, err, errlen);
    }
    if (rc == 0)
        rc = sl_job_master_prepare(j, err, errlen);
    if (rc == 0) {
        pthread_mutex_lock(&d->mu);
        snprintf(j->id, sizeof j->id, "%llx-%u", (unsigned long long)sl_wall_ms(), ++d->next_id);
        j->start_ms = sl_wall_ms();
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_CREATED);
        if ((rc = sl_job_master_start(j)) == 0) {
            j->next = d->jobs;
            d->jobs = j;
        }
        pthread_mutex_unlock(&d->mu);
    }
    if (rc) {
        sl_job_master_free(j);
        if (err[0] == '\0')
            snprintf(err, errlen, "%s", sl_strerror(rc));
        return rc;
    }
    SL_INFO("job %s (%s) submitted: %u subtasks in %u slots", j->id, j->name, j->ntasks, j->nslots);
    snprintf(job_id, idlen, "%s", j->id);
    return 0;
}

static void on_submit(sl_dispatcher_t *d, sl_rpc_request_t *req, const Sluice__Rpc__SubmitJob *m) {
    sl_job_submission_t s = {.graph = m->job_graph.data,
                             .graph_len = m->job_graph.len,
                             .config = m->config.data,
                             .config_len = m->config.len};
    if (m->job_library_case == SLUICE__RPC__SUBMIT_JOB__JOB_LIBRARY_LIBRARY_PATH)
        s.library_path = m->library_path;
    if (m->job_library_case == SLUICE__RPC__SUBMIT_JOB__JOB_LIBRARY_LIBRARY_BYTES) {
        s.library = m->library_bytes.data;
        s.library_len = m->library_bytes.len;
    }
    char err[1024], id[64];
    int rc = sl_dispatcher_submit(d, &s, id, sizeof id, err, sizeof err);
    if (rc) {
        sl_rpc_reply_error(req, rc, err);
        return;
    }
    pthread_mutex_lock(&d->mu);
    job_t *j = find_job(d, id);
    pthread_mutex_unlock(&d->mu);
    reply_status(j, req);
}

static void on_task_update(sl_dispatcher_t *d, const Sluice__Rpc__TaskStateUpdate *u) {
    pthread_mutex_lock(&d->mu);
    job_t *j = find_job(d, u->job_id);
    pthread_mutex_unlock(&d->mu);
    if (j == NULL)
        return;
    bool ended = false;
    pthread_mutex_lock(&j->mu);
    if (u->attempt == atomic_load(&j->attempt)) {
        if (u->state == SLUICE__RPC__TASK_STATE__TASK_FINISHED) {
            atomic_fetch_add(&j->finished, 1);
            ended = true;
        } else if (u->state == SLUICE__RPC__TASK_STATE__TASK_CANCELED) {
            atomic_fetch_add(&j->canceled, 1);
            ended = true;
        } else if (u->state == SLUICE__RPC__TASK_STATE__TASK_FAILED) {
            if (u->error && u->error->message && j->error[0] == '\0')
                snprintf(j->error, sizeof j->error, "%s", u->error->message);
            atomic_fetch_add(&j->failed, 1);
        }
    }
    pthread_mutex_unlock(&j->mu);
    /* Outside mu (posting takes it): the JobMaster's thread drops it if the attempt changed. */
    if (ended)
        sl_job_master_task_ended(j, u->attempt, u->vertex, u->subtask,
                                 u->state == SLUICE__RPC__TASK_STATE__TASK_FINISHED, u->last_checkpoint);
}

static void on_list(sl_dispatcher_t *d, sl_rpc_request_t *req) {
    pthread_mutex_lock(&d->mu);
    size_t n = 0;
    for (job_t *j = d->jobs; j; j = j->next)
        n++;
    Sluice__Rpc__JobStatus *st = sl_calloc(n ? n : 1, sizeof *st);
    Sluice__Rpc__JobStatus **ptrs = sl_calloc(n ? n : 1, sizeof *ptrs);
    Sluice__Rpc__Error *errs = sl_calloc(n ? n : 1, sizeof *errs);
    Sluice__Rpc__JobList l = SLUICE__RPC__JOB_LIST__INIT;
    if (st && ptrs && errs) {
        size_t k = 0;
        for (job_t *j = d->jobs; j; j = j->next, k++) {
            fill_status(j, &st[k], &errs[k]);
            ptrs[k] = &st[k];
        }
        l.n_jobs = n;
        l.jobs = ptrs;
    }
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_JOB_LIST;
    env.job_list = &l;
    sl_rpc_reply(req, &env);
    pthread_mutex_unlock(&d->mu);
    sl_free(st);
    sl_free(ptrs);
    sl_free(errs);
}

static job_t *job_named(sl_dispatcher_t *d, const char *id) {
    pthread_mutex_lock(&d->mu);
    job_t *j = find_job(d, id);
    pthread_mutex_unlock(&d->mu);
    return j;
}

/* A TaskManager's acknowledgement: decoded as hostile input, then the JobMaster's business. */
static void on_ack(sl_dispatcher_t *d, sl_rpc_conn_t *conn, const Sluice__Rpc__AcknowledgeCheckpoint *m) {
    job_t *j = job_named(d, m->job_id);
    if (j == NULL)
        return;
    sl_task_ack_t *ack;
    char err[256];
    int rc = sl_ack_from_msg(m, &ack, err, sizeof err);
    if (rc) {
        SL_WARN("job %s: acknowledgement from %s refused: %s", j->id, sl_rpc_conn_peer_addr(conn),
                rc == SL_ENOMEM ? "out of memory" : err);
        return;
    }
    sl_job_master_ack(j, m->attempt, ack);
}

/* The RPC's answer to TriggerSavepoint: a SavepointResult with the path, or the error. */
static void reply_savepoint(void *arg, int status, const char *path_or_error) {
    sl_rpc_request_t *req = arg;
    if (status) {
        sl_rpc_reply_error(req, status, path_or_error);
        return;
    }
    Sluice__Rpc__SavepointResult r = SLUICE__RPC__SAVEPOINT_RESULT__INIT;
    r.path = (char *)path_or_error;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_SAVEPOINT_RESULT;
    env.savepoint_result = &r;
    sl_rpc_reply(req, &env);
}

static void on_savepoint(sl_dispatcher_t *d, sl_rpc_request_t *req, const Sluice__Rpc__TriggerSavepoint *m) {
    if (sl_dispatcher_savepoint(d, m->job_id, m->target_dir, m->stop, reply_savepoint, req) != 0)
        sl_rpc_reply_error(req, SL_ENOENT, "no such job");
}

/* ---- For other threads (the REST API) ---- */

static void fill_info(job_t *j, sl_job_info_t *o) {
    pthread_mutex_lock(&j->mu);
    snprintf(o->id, sizeof o->id, "%s", j->id);
    snprintf(o->name, sizeof o->name, "%s", j->name);
    o->state = atomic_load(&j->state);
    o->start_ms = j->start_ms;
    o->end_ms = j->end_ms;
    snprintf(o->error, sizeof o->error, "%s", j->error);
    pthread_mutex_unlock(&j->mu);
}

int sl_dispatcher_jobs(sl_dispatcher_t *d, sl_job_info_t **out, size_t *n) {
    pthread_mutex_lock(&d->mu);
    size_t k = 0;
    for (job_t *j = d->jobs; j; j = j->next)
        k++;
    sl_job_info_t *v = sl_calloc(k ? k : 1, sizeof *v);
    if (v) {
        k = 0;
        for (job_t *j = d->jobs; j; j = j->next)
            fill_info(j, &v[k++]);
    }
    pthread_mutex_unlock(&d->mu);
    if (v == NULL)
        return SL_ENOMEM;
    *out = v;
    *n = k;
    return 0;
}

int sl_dispatcher_job(sl_dispatcher_t *d, const char *id, sl_job_info_t *out) {
    pthread_mutex_lock(&d->mu);
    job_t *j = find_job(d, id);
    if (j)
        fill_info(j, out);
    pthread_mutex_unlock(&d->mu);
    return j ? 0 : SL_ENOENT;
}

int sl_dispatcher_savepoint(sl_dispatcher_t *d, const char *id, const char *target_dir, bool stop,
                            sl_savepoint_done_fn done, void *arg) {
    job_t *j = job_named(d, id);
    if (j == NULL)
        return SL_ENOENT;
    sl_job_master_savepoint(j, target_dir, stop, done, arg);
    return 0;
}

int sl_dispatcher_cancel(sl_dispatcher_t *d, const char *id) {
    pthread_mutex_lock(&d->mu);
    job_t *j = find_job(d, id);
    if (j)
        j->cancel = 1;
    pthread_mutex_unlock(&d->mu);
    return j ? 0 : SL_ENOENT;
}

bool sl_dispatcher_handle(sl_dispatcher_t *d, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg) {
    switch (msg->body_case) {
    case SLUICE__RPC__ENVELOPE__BODY_ACKNOWLEDGE_CHECKPOINT:
        on_ack(d, conn, msg->acknowledge_checkpoint);
        if (req)
            sl_rpc_request_discard(req);
        return true;
    case SLUICE__RPC__ENVELOPE__BODY_TRIGGER_SAVEPOINT:
        if (req)
            on_savepoint(d, req, msg->trigger_savepoint);
        return true;
    case SLUICE__RPC__ENVELOPE__BODY_SUBMIT_JOB:
        if (req)
            on_submit(d, req, msg->submit_job);
        return true;
    case SLUICE__RPC__ENVELOPE__BODY_TASK_STATE_UPDATE:
        on_task_update(d, msg->task_state_update);
        if (req)
            sl_rpc_request_discard(req);
        return true;
    case SLUICE__RPC__ENVELOPE__BODY_LIST_JOBS:
        if (req)
            on_list(d, req);
        return true;
    case SLUICE__RPC__ENVELOPE__BODY_JOB_STATUS:
    case SLUICE__RPC__ENVELOPE__BODY_CANCEL_JOB: {
        if (req == NULL)
            return true;
        const char *id = msg->body_case == SLUICE__RPC__ENVELOPE__BODY_JOB_STATUS ? msg->job_status->job_id
                                                                                  : msg->cancel_job->job_id;
        pthread_mutex_lock(&d->mu);
        job_t *j = find_job(d, id);
        if (j && msg->body_case == SLUICE__RPC__ENVELOPE__BODY_CANCEL_JOB)
            j->cancel = 1;
        pthread_mutex_unlock(&d->mu);
        if (j)
            reply_status(j, req);
        else
            sl_rpc_reply_error(req, SL_ENOENT, "no such job");
        return true;
    }
    default:
        return false;
    }
}

int sl_dispatcher_create(sl_jobmanager_t *jm, sl_dispatcher_t **out) {
    sl_dispatcher_t *d = sl_calloc(1, sizeof *d);
    if (d == NULL)
        return SL_ENOMEM;
    d->jm = jm;
    pthread_mutex_init(&d->mu, NULL);
    *out = d;
    return 0;
}

void sl_dispatcher_destroy(sl_dispatcher_t *d) {
    if (d == NULL)
        return;
    for (job_t *j = d->jobs; j; j = j->next)
        j->cancel = 1;
    for (job_t *j = d->jobs, *n; j; j = n) {
        n = j->next;
        sl_job_master_free(j);
    }
    pthread_mutex_destroy(&d->mu);
    sl_free(d);
}
