/* Dispatcher and JobMasters (see dispatcher.h). */
#include "jobmaster/dispatcher.h"

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "graph/job_graph_codec.h"

#define MAX_TMS_PER_JOB 1024

typedef struct job_s {
    struct sl_dispatcher_s *d;
    char id[64];
    char name[128];
    uint8_t *graph, *config;
    size_t graph_len, config_len;
    char library[1024];
    uint32_t nslots, ntasks;
    _Atomic int state;         /* Sluice__Rpc__JobState */
    int64_t start_ms, end_ms;
    pthread_mutex_t mu;        /* error */
    char error[1024];
    atomic_uint finished, failed, canceled;
    _Atomic uint32_t attempt;  /* reports of other attempts are stale */
    int64_t restarts, restart_delay_ms;
    volatile int cancel;
    pthread_t thread;
    struct job_s *next;
} job_t;

struct sl_dispatcher_s {
    sl_jobmanager_t *jm;
    pthread_mutex_t mu;        /* jobs */
    job_t *jobs;
    unsigned next_id;
};

static void set_error(job_t *j, const char *msg) {
    pthread_mutex_lock(&j->mu);
    if (j->error[0] == '\0')
        snprintf(j->error, sizeof j->error, "%s", msg);
    pthread_mutex_unlock(&j->mu);
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- The JobMaster of one job ---- */

typedef struct {
    char tm_id[64];
    char host[128];
    int port;
    sl_rpc_conn_t *conn;
} tm_ref_t;

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
    m.n_subtasks = n;
    m.subtasks = subtasks;
    m.n_placement = j->nslots;
    m.placement = ptrs;
    m.attempt = atomic_load(&j->attempt);
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

static uint32_t reported(job_t *j) { return atomic_load(&j->finished) + atomic_load(&j->failed) + atomic_load(&j->canceled); }

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
    sl_rm_service_t *rm = sl_jobmanager_rm(j->d->jm);
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

/* Waits until every subtask reported, the first failure, a lost TaskManager or a cancel. */
static int watch(job_t *j, sl_slot_pool_t *p, char *err, size_t errlen) {
    while (reported(j) < j->ntasks) {
        if (atomic_load(&j->failed) || j->cancel)
            return atomic_load(&j->failed) ? SL_EFAILED : SL_ECANCELED;
        int rc = sl_slot_pool_wait(p, 0, err, errlen);
        if (rc && rc != SL_ETIMEDOUT)
            return rc; /* a TaskManager holding the job's slots was lost */
        nap_ms(50);
    }
    return atomic_load(&j->failed) ? SL_EFAILED : 0;
}

/* One attempt: slots, deployment, watching; on failure the TaskManagers are told to cancel. */
static int run_once(job_t *j, char *err, size_t errlen) {
    sl_slot_pool_t *p = NULL;
    tm_ref_t *at = sl_calloc(j->nslots, sizeof *at), *tms = sl_calloc(j->nslots, sizeof *tms);
    uint32_t ntms = 0;
    int64_t t0 = sl_monotonic_ms(), t_slots = 0;
    int rc = at && tms ? sl_slot_pool_create(sl_jobmanager_rm(j->d->jm), j->id, j->nslots, &p) : SL_ENOMEM;
    if (rc == 0 && (rc = sl_jobmanager_add_pool(j->d->jm, p)) != 0)
        snprintf(err, errlen, "too many jobs at once");
    if (rc == 0)
        rc = gather_slots(j, p, at, tms, &ntms, err, errlen);
    const sl_slot_t *slots = NULL;
    if (p)
        sl_slot_pool_slots(p, &slots);
    t_slots = sl_monotonic_ms();
    for (uint32_t k = 0; rc == 0 && k < ntms; k++)
        rc = deploy_to(j, &tms[k], slots, at, err, errlen);
    if (rc == 0) {
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_RUNNING);
        /* Read by bench/cluster_bench.sh: the time from asking for slots to tasks deployed. */
        SL_INFO("job %s (%s) attempt %u: %u subtasks on %u TaskManagers: %u slots in %lld ms, deployed in %lld ms",
                j->id, j->name, atomic_load(&j->attempt), j->ntasks, ntms, j->nslots, (long long)(t_slots - t0),
                (long long)(sl_monotonic_ms() - t0));
        rc = watch(j, p, err, errlen);
    }
    if (rc && ntms) {
        cancel_on(j, tms, ntms);
        for (int i = 0; i < 60 && reported(j) < j->ntasks; i++) /* their last reports, briefly */
            nap_ms(50);
    }
    if (p) {
        sl_jobmanager_remove_pool(j->d->jm, p);
        sl_slot_pool_destroy(p);
    }
    for (uint32_t k = 0; k < ntms; k++)
        sl_rpc_conn_unref(tms[k].conn);
    sl_free(at);
    sl_free(tms);
    return rc;
}

/* Attempts until one succeeds, the job is canceled, or the restart strategy gives up
 * (restart-strategy.fixed-delay.*; without checkpoints a restart starts from scratch). */
static void *job_main(void *arg) {
    job_t *j = arg;
    char err[1024] = "";
    int rc;
    for (int64_t attempt = 0;; attempt++) {
        /* Under the lock reports take too: none of the old attempt is counted for the new. */
        pthread_mutex_lock(&j->mu);
        atomic_store(&j->attempt, (uint32_t)attempt);
        atomic_store(&j->finished, 0);
        atomic_store(&j->failed, 0);
        atomic_store(&j->canceled, 0);
        pthread_mutex_unlock(&j->mu);
        err[0] = '\0';
        rc = run_once(j, err, sizeof err);
        if (rc == 0 || j->cancel || attempt >= j->restarts)
            break;
        pthread_mutex_lock(&j->mu);
        const char *why = j->error[0] ? j->error : err[0] ? err : sl_strerror(rc);
        SL_WARN("job %s (%s) failed: %s; restart %lld of %lld", j->id, j->name, why, (long long)attempt + 1,
                (long long)j->restarts);
        j->error[0] = '\0';
        pthread_mutex_unlock(&j->mu);
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_RESTARTING);
        for (int64_t t = 0; t < j->restart_delay_ms && !j->cancel; t += 50)
            nap_ms(50);
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

/* The job's restart strategy, from its configuration lines. */
static int read_restarts(job_t *j, char *err, size_t errlen) {
    sl_config_t *c = NULL;
    int rc = sl_config_create(&c);
    if (rc == 0)
        rc = sl_config_set_lines(c, j->config, j->config_len, err, errlen);
    if (rc == 0) {
        j->restarts = sl_config_int(c, "restart-strategy.fixed-delay.attempts");
        j->restart_delay_ms = sl_config_duration_ms(c, "restart-strategy.fixed-delay.delay");
    }
    sl_config_destroy(c);
    return rc;
}

static int count_tasks(job_t *j, char *err, size_t errlen) {
    sl_job_graph_t g;
    int rc = sl_job_graph_decode(j->graph, j->graph_len, &g, err, errlen);
    for (uint32_t v = 0; rc == 0 && v < g.nvertices; v++) {
        j->ntasks += g.vertices[v].parallelism;
        if (g.vertices[v].parallelism > j->nslots)
            j->nslots = g.vertices[v].parallelism;
    }
    if (rc == 0)
        snprintf(j->name, sizeof j->name, "%s", g.name ? g.name : "job");
    sl_job_graph_destroy(&g);
    return rc;
}

static void on_submit(sl_dispatcher_t *d, sl_rpc_request_t *req, const Sluice__Rpc__SubmitJob *m) {
    char err[1024] = "";
    job_t *j = sl_calloc(1, sizeof *j);
    int rc = j ? 0 : SL_ENOMEM;
    if (rc == 0) {
        j->d = d;
        pthread_mutex_init(&j->mu, NULL);
        j->graph = sl_malloc(m->job_graph.len ? m->job_graph.len : 1);
        j->config = sl_malloc(m->config.len ? m->config.len : 1);
        rc = j->graph && j->config ? 0 : SL_ENOMEM;
    }
    if (rc == 0) {
        /* protobuf-c leaves empty bytes fields NULL: memcpy must not see them. */
        if (m->job_graph.len)
            memcpy(j->graph, m->job_graph.data, m->job_graph.len);
        j->graph_len = m->job_graph.len;
        if (m->config.len)
            memcpy(j->config, m->config.data, m->config.len);
        j->config_len = m->config.len;
        if (m->job_library_case == SLUICE__RPC__SUBMIT_JOB__JOB_LIBRARY_LIBRARY_PATH)
            snprintf(j->library, sizeof j->library, "%s", m->library_path);
        rc = count_tasks(j, err, sizeof err);
        if (rc == 0)
            rc = read_restarts(j, err, sizeof err);
    }
    if (rc == 0) {
        pthread_mutex_lock(&d->mu);
        snprintf(j->id, sizeof j->id, "%llx-%u", (unsigned long long)sl_wall_ms(), ++d->next_id);
        j->start_ms = sl_wall_ms();
        atomic_store(&j->state, SLUICE__RPC__JOB_STATE__JOB_CREATED);
        if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
            rc = SL_ENOMEM;
        } else {
            j->next = d->jobs;
            d->jobs = j;
        }
        pthread_mutex_unlock(&d->mu);
    }
    if (rc) {
        if (j) {
            pthread_mutex_destroy(&j->mu);
            sl_free(j->graph);
            sl_free(j->config);
            sl_free(j);
        }
        sl_rpc_reply_error(req, rc, err[0] ? err : sl_strerror(rc));
        return;
    }
    SL_INFO("job %s (%s) submitted: %u subtasks in %u slots", j->id, j->name, j->ntasks, j->nslots);
    reply_status(j, req);
}

static void on_task_update(sl_dispatcher_t *d, const Sluice__Rpc__TaskStateUpdate *u) {
    pthread_mutex_lock(&d->mu);
    job_t *j = find_job(d, u->job_id);
    pthread_mutex_unlock(&d->mu);
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    if (u->attempt == atomic_load(&j->attempt)) {
        if (u->state == SLUICE__RPC__TASK_STATE__TASK_FINISHED) {
            atomic_fetch_add(&j->finished, 1);
        } else if (u->state == SLUICE__RPC__TASK_STATE__TASK_CANCELED) {
            atomic_fetch_add(&j->canceled, 1);
        } else if (u->state == SLUICE__RPC__TASK_STATE__TASK_FAILED) {
            if (u->error && u->error->message && j->error[0] == '\0')
                snprintf(j->error, sizeof j->error, "%s", u->error->message);
            atomic_fetch_add(&j->failed, 1);
        }
    }
    pthread_mutex_unlock(&j->mu);
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

bool sl_dispatcher_handle(sl_dispatcher_t *d, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg) {
    switch (msg->body_case) {
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
        pthread_join(j->thread, NULL);
        pthread_mutex_destroy(&j->mu);
        sl_free(j->graph);
        sl_free(j->config);
        sl_free(j);
    }
    pthread_mutex_destroy(&d->mu);
    sl_free(d);
}
