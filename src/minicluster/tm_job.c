/* Runs of distributed jobs on a TaskManager (see tm_job.h). */
#include "minicluster/tm_job.h"

#include <sluice/error.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "checkpoint/storage.h"
#include "graph/job_graph_codec.h"
#include "minicluster/ack_codec.h"
#include "minicluster/library_cache.h"
#include "minicluster/minicluster.h"
#include "network/buffer_pool.h"
#include "network/channel.h"
#include "taskexecutor/task.h"
#include "taskexecutor/task_checkpoint.h"

typedef struct {
    char tm_id[64];
    char host[128];
    int port;
} location_t;

typedef struct {
    sl_net_channel_t *nc;
    sl_buffer_pool_t *pool; /* imports: where received buffers come from */
} bridge_t;

typedef struct run_s {
    struct sl_tm_jobs_s *owner;
    char job_id[64];
    uint32_t attempt;
    sl_job_graph_t g;
    sl_config_t *config;
    void *lib;
    sl_library_entry_t *lib_entry; /* the shipped library's cache entry, NULL for a path */
    uint32_t nslots;
    uint8_t *local;
    location_t *where;
    sl_rpc_conn_t *jm;
    volatile int cancel;
    pthread_t thread;
    bool done;
    sl_network_memory_t nm; /* receive buffers of imported channels */
    bool nm_ready;
    bridge_t *bridges;
    uint32_t nbridges, cap;
    atomic_uint reported;   /* tasks report from their own threads */
    uint32_t expected;
    atomic_bool any_failed; /* a local task failed or was canceled */
    sl_ckpt_storage_t storage; /* state.checkpoints.dir/<job id>, when set */
    bool have_storage;
    char *restore_path;     /* from the DeployJob, or NULL */
    sl_task_t **tasks;      /* the running tasks, under owner->mu (triggers, notices) */
    uint32_t ntasks;
    /* Triggers that came before the tasks existed, oldest first: as many as the JobMaster may
     * have in flight (max-concurrent-checkpoints, at most 16); when full the oldest goes, to
     * be subsumed by a later one. */
    uint64_t early_barriers[16];
    uint32_t nearly;
    struct run_s *next;
} run_t;

struct sl_tm_jobs_s {
    sl_net_t *net;
    pthread_mutex_t mu;
    run_t *runs;
    sl_library_cache_t *libs; /* shipped job libraries (its own lock) */
};

/* ---- Channels across TaskManagers ---- */

/* The same id on both sides: FNV-1a over the job id, then the attempt (a restarted job's
 * channels never meet the old ones), the edge and the two subtasks. */
static uint64_t channel_id(const char *job, uint32_t attempt, uint32_t edge, uint32_t p, uint32_t c) {
    uint64_t h = 1469598103934665603ull;
    for (const char *s = job; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    uint32_t parts[4] = {attempt, edge, p, c};
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 4; b++)
            h = (h ^ ((parts[k] >> (8 * b)) & 0xff)) * 1099511628211ull;
    return h;
}

static int add_bridge(run_t *r, sl_net_channel_t *nc, sl_buffer_pool_t *pool) {
    if (r->nbridges == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 16;
        bridge_t *b = sl_realloc(r->bridges, cap * sizeof *b);
        if (b == NULL)
            return SL_ENOMEM;
        r->bridges = b;
        r->cap = cap;
    }
    r->bridges[r->nbridges++] = (bridge_t){nc, pool};
    return 0;
}

static int bridge(void *arg, uint32_t edge, uint32_t p, uint32_t c, sl_channel_t *ch, int local_producer, char *err,
                  size_t errlen) {
    run_t *r = arg;
    sl_net_t *net = r->owner->net;
    uint64_t id = channel_id(r->job_id, r->attempt, edge, p, c);
    sl_net_channel_t *nc = NULL;
    sl_buffer_pool_t *pool = NULL;
    int rc;
    if (local_producer) {
        ch->consumer = sl_net_mailbox(net);
        rc = sl_net_export(net, id, ch, &nc);
    } else {
        const location_t *at = &r->where[p];
        ch->producer = sl_net_mailbox(net);
        rc = sl_buffer_pool_create(&r->nm, (uint32_t)atomic_load(&ch->credit), &pool);
        if (rc == 0)
            rc = sl_net_import(net, at->host, at->port, at->tm_id, id, ch, pool, &nc);
    }
    if (rc == 0)
        rc = add_bridge(r, nc, pool);
    if (rc) {
        snprintf(err, errlen, "remote channel of edge %u, subtask %u -> %u: %s", edge, p, c,
                 rc == SL_ENOBUFS ? "taskmanager.memory.network.size cannot hold its receive buffers"
                                  : sl_strerror(rc));
        sl_net_channel_close(nc);
        if (pool)
            sl_buffer_pool_destroy(pool);
    }
    return rc;
}

static void unbridge(void *arg) {
    run_t *r = arg;
    /* After a clean end, what the local producers wrote (their END last) must leave before
     * the channels go; after a failure the consumers are being canceled anyway. */
    for (uint32_t i = 0; !atomic_load(&r->any_failed) && i < r->nbridges; i++) {
        int rc = sl_net_channel_flush(r->bridges[i].nc, 30000);
        if (rc)
            SL_WARN("job %s: a remote channel did not drain: %s", r->job_id, sl_strerror(rc));
    }
    for (uint32_t i = 0; i < r->nbridges; i++) {
        sl_net_channel_close(r->bridges[i].nc);
        r->bridges[i].nc = NULL;
    }
}

/* ---- Reporting ---- */

static void report(run_t *r, uint32_t vertex, uint32_t subtask, Sluice__Rpc__TaskState state, const char *error,
                   uint64_t last_checkpoint) {
    Sluice__Rpc__TaskStateUpdate u = SLUICE__RPC__TASK_STATE_UPDATE__INIT;
    Sluice__Rpc__Error e = SLUICE__RPC__ERROR__INIT;
    u.job_id = r->job_id;
    u.attempt = r->attempt;
    u.vertex = vertex;
    u.subtask = subtask;
    u.state = state;
    u.last_checkpoint = last_checkpoint;
    if (error && error[0]) {
        e.code = SL_EFAILED;
        e.message = (char *)error;
        u.error = &e;
    }
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_TASK_STATE_UPDATE;
    env.task_state_update = &u;
    if (sl_rpc_send(r->jm, &env) != 0)
        SL_WARN("taskmanager: cannot report task %u/%u of job %s", vertex, subtask, r->job_id);
    atomic_fetch_add(&r->reported, 1);
}

static void on_task_final(void *arg, uint32_t vertex, uint32_t subtask, int state, const char *error,
                          uint64_t last_checkpoint) {
    Sluice__Rpc__TaskState s = state == SL_TASK_FINISHED   ? SLUICE__RPC__TASK_STATE__TASK_FINISHED
                               : state == SL_TASK_CANCELED ? SLUICE__RPC__TASK_STATE__TASK_CANCELED
                                                           : SLUICE__RPC__TASK_STATE__TASK_FAILED;
    run_t *r = arg;
    if (s != SLUICE__RPC__TASK_STATE__TASK_FINISHED)
        atomic_store(&r->any_failed, true);
    /* Sent after the task's acknowledgements on the same connection (its snapshot writes are
     * waited for before it ends), though the JobMaster takes either order. */
    report(r, vertex, subtask, s, s == SLUICE__RPC__TASK_STATE__TASK_FAILED ? error : NULL, last_checkpoint);
}

/* ---- Checkpoints: the JobMaster coordinates, the run's tasks snapshot ---- */

/* Task or upload thread: the acknowledgement goes to the JobMaster. */
static void on_ack(void *arg, sl_task_ack_t *ack) {
    run_t *r = arg;
    Sluice__Rpc__AcknowledgeCheckpoint m;
    sl_ack_msg_scratch_t sc;
    int rc = sl_ack_to_msg(ack, r->job_id, r->attempt, &m, &sc);
    if (rc == 0) {
        sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
        env.body_case = SLUICE__RPC__ENVELOPE__BODY_ACKNOWLEDGE_CHECKPOINT;
        env.acknowledge_checkpoint = &m;
        rc = sl_rpc_send(r->jm, &env);
    }
    if (rc) /* the checkpoint times out on the JobMaster */
        SL_WARN("job %s: cannot acknowledge checkpoint %llu of task %u/%u: %s", r->job_id,
                (unsigned long long)ack->checkpoint_id, ack->vertex, ack->subtask, sl_strerror(rc));
    sl_ack_msg_scratch_free(&sc);
    sl_task_ack_free(ack);
}

/* Tasks that ended are skipped (their mailbox would keep the mail until the run ends). */
static void trigger_sources(run_t *r, uint64_t barrier_id) {
    for (uint32_t i = 0; i < r->ntasks; i++)
        if (r->tasks[i]->nin == 0 && sl_task_state(r->tasks[i]) < SL_TASK_FINISHED &&
            sl_task_trigger_checkpoint(r->tasks[i], barrier_id) != 0)
            SL_WARN("job %s: cannot trigger checkpoint %llu", r->job_id,
                    (unsigned long long)(barrier_id & ~SL_CKPT_SAVEPOINT_BIT));
}

static void on_tasks(void *arg, sl_task_t **tasks, uint32_t n) {
    run_t *r = arg;
    pthread_mutex_lock(&r->owner->mu);
    r->tasks = tasks;
    r->ntasks = n;
    /* The JobMaster triggers once every TaskManager accepted the deployment, which may be
     * before this run built its tasks (RocksDB instances take a while to open). */
    for (uint32_t i = 0; tasks && i < r->nearly; i++)
        trigger_sources(r, r->early_barriers[i]);
    r->nearly = 0;
    pthread_mutex_unlock(&r->owner->mu);
}

static run_t *find_run(sl_tm_jobs_t *j, const char *job_id, uint32_t attempt) {
    for (run_t *r = j->runs; r; r = r->next)
        if (!r->done && r->attempt == attempt && strcmp(r->job_id, job_id) == 0)
            return r;
    return NULL;
}

void sl_tm_jobs_trigger(sl_tm_jobs_t *j, const Sluice__Rpc__TriggerCheckpoint *m) {
    pthread_mutex_lock(&j->mu);
    run_t *r = find_run(j, m->job_id, m->attempt);
    if (r && r->tasks)
        trigger_sources(r, m->barrier_id);
    else if (r) {
        uint32_t max = sizeof r->early_barriers / sizeof r->early_barriers[0];
        if (r->nearly == max) {
            memmove(&r->early_barriers[0], &r->early_barriers[1], (max - 1) * sizeof r->early_barriers[0]);
            r->nearly--;
        }
        r->early_barriers[r->nearly++] = m->barrier_id;
    }
    pthread_mutex_unlock(&j->mu);
}

void sl_tm_jobs_notify_complete(sl_tm_jobs_t *j, const Sluice__Rpc__NotifyCheckpointComplete *m) {
    pthread_mutex_lock(&j->mu);
    run_t *r = find_run(j, m->job_id, m->attempt);
    for (uint32_t i = 0; r && i < r->ntasks; i++)
        if (sl_task_state(r->tasks[i]) < SL_TASK_FINISHED &&
            sl_task_notify_complete(r->tasks[i], m->checkpoint_id, m->stop) != 0)
            SL_WARN("job %s: cannot notify checkpoint %llu", m->job_id, (unsigned long long)m->checkpoint_id);
    pthread_mutex_unlock(&j->mu);
}

/* ---- A run ---- */

static void *run_main(void *arg) {
    run_t *r = arg;
    sl_minicluster_placement_t pl = {.nslots = r->nslots,
                                     .local = r->local,
                                     .bridge = bridge,
                                     .unbridge = unbridge,
                                     .on_task_final = on_task_final,
                                     .arg = r,
                                     .cancel = &r->cancel,
                                     .storage = r->have_storage ? &r->storage : NULL,
                                     .on_ack = on_ack,
                                     .restore_path = r->restore_path,
                                     .on_tasks = on_tasks};
    sl_job_result_t res;
    int rc = sl_minicluster_run_placed(r->config, &r->g, r->lib, &pl, &res);
    if (rc || atomic_load(&r->reported) < r->expected) {
        /* Deployment failed here: every local subtask not reported failed with the cause. */
        char msg[1200];
        snprintf(msg, sizeof msg, "deploying on TaskManager %s: %s", sl_net_id(r->owner->net),
                 res.error[0] ? res.error : sl_strerror(rc ? rc : SL_EFAILED));
        for (uint32_t v = 0; v < r->g.nvertices; v++)
            for (uint32_t i = 0; i < r->g.vertices[v].parallelism && atomic_load(&r->reported) < r->expected; i++)
                if (i < r->nslots && r->local[i])
                    report(r, v, i, SLUICE__RPC__TASK_STATE__TASK_FAILED, msg, 0);
    }
    for (uint32_t i = 0; i < r->nbridges; i++)
        if (r->bridges[i].pool)
            sl_buffer_pool_destroy(r->bridges[i].pool);
    r->nbridges = 0;
    pthread_mutex_lock(&r->owner->mu);
    r->done = true;
    pthread_mutex_unlock(&r->owner->mu);
    return NULL;
}

static void free_run(run_t *r) {
    sl_job_graph_destroy(&r->g);
    sl_config_destroy(r->config);
    if (r->lib_entry) /* dlclose, then the file may go */
        sl_library_cache_close(r->owner->libs, r->lib_entry, r->lib);
    else if (r->lib)
        dlclose(r->lib);
    if (r->nm_ready)
        sl_network_memory_destroy(&r->nm);
    if (r->jm)
        sl_rpc_conn_unref(r->jm);
    sl_free(r->bridges);
    if (r->have_storage)
        sl_ckpt_storage_destroy(&r->storage);
    sl_free(r->restore_path);
    sl_free(r->local);
    sl_free(r->where);
    sl_free(r);
}

/* Lines "key=value" into a configuration; the job's checkpoint storage when it has one (the
 * directory must be shared by every process of the cluster). */
static int parse_config(run_t *r, const uint8_t *data, size_t len, char *err, size_t errlen) {
    int rc = sl_config_create(&r->config);
    if (rc == 0)
        rc = sl_config_set_lines(r->config, data, len, err, errlen);
    const char *dir = rc == 0 ? sl_config_str(r->config, "state.checkpoints.dir") : NULL;
    if (dir && dir[0]) {
        if ((rc = sl_ckpt_storage_init(&r->storage, dir, r->job_id, err, errlen)) == 0)
            r->have_storage = true;
    }
    return rc;
}

static int prepare(run_t *r, const Sluice__Rpc__DeployJob *m, char *err, size_t errlen) {
    snprintf(r->job_id, sizeof r->job_id, "%s", m->job_id);
    r->attempt = m->attempt;
    int rc = sl_job_graph_decode(m->job_graph.data, m->job_graph.len, &r->g, err, errlen);
    if (rc == 0)
        rc = parse_config(r, m->config.data, m->config.len, err, errlen);
    if (rc == 0 && m->restore_path[0] && (r->restore_path = sl_strdup(m->restore_path)) == NULL)
        rc = SL_ENOMEM;
    if (rc == 0 && m->library_sha256.len) { /* shipped with the job */
        char why[1024];
        const char *name = m->library_name[0] ? m->library_name : "(unnamed)";
        rc = sl_library_cache_open(r->owner->libs, name, m->library_bytes.data, m->library_bytes.len,
                                   m->library_sha256.data, m->library_sha256.len, &r->lib, &r->lib_entry, why,
                                   sizeof why);
        if (rc)
            snprintf(err, errlen, "job %.64s: %.900s", m->job_id, why);
    } else if (rc == 0 && m->library_path[0] &&
               (r->lib = dlopen(m->library_path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        snprintf(err, errlen, "cannot load the job library %s: %s", m->library_path, dlerror());
        rc = SL_ESYMBOL;
    }
    r->nslots = (uint32_t)m->n_placement;
    if (rc == 0 && ((r->local = sl_calloc(r->nslots + 1, 1)) == NULL ||
                    (r->where = sl_calloc(r->nslots + 1, sizeof *r->where)) == NULL))
        rc = SL_ENOMEM;
    for (size_t k = 0; rc == 0 && k < m->n_subtasks; k++)
        if (m->subtasks[k] < r->nslots)
            r->local[m->subtasks[k]] = 1;
    for (uint32_t i = 0; rc == 0 && i < r->nslots; i++) {
        snprintf(r->where[i].tm_id, sizeof r->where[i].tm_id, "%s", m->placement[i]->tm_id);
        snprintf(r->where[i].host, sizeof r->where[i].host, "%s", m->placement[i]->data_host);
        r->where[i].port = (int)m->placement[i]->data_port;
    }
    for (uint32_t v = 0; rc == 0 && v < r->g.nvertices; v++)
        for (uint32_t i = 0; i < r->g.vertices[v].parallelism; i++)
            r->expected += i < r->nslots && r->local[i];
    if (rc == 0) {
        int64_t net = sl_config_bytes(r->config, "taskmanager.memory.network.size");
        int64_t seg = sl_config_bytes(r->config, "taskmanager.memory.segment-size");
        if ((rc = sl_network_memory_init(&r->nm, (uint64_t)net, (uint32_t)seg)) == 0)
            r->nm_ready = true;
    }
    return rc;
}

static void reap(sl_tm_jobs_t *j, bool all) {
    for (;;) {
        run_t *victim = NULL;
        pthread_mutex_lock(&j->mu);
        for (run_t **p = &j->runs; *p; p = &(*p)->next)
            if ((*p)->done || all) {
                victim = *p;
                *p = victim->next;
                break;
            }
        pthread_mutex_unlock(&j->mu);
        if (victim == NULL)
            return;
        victim->cancel = 1;
        pthread_join(victim->thread, NULL);
        free_run(victim);
    }
}

void sl_tm_jobs_deploy(sl_tm_jobs_t *j, sl_rpc_conn_t *jm, sl_rpc_request_t *req, const Sluice__Rpc__DeployJob *m) {
    reap(j, false);
    char err[1024] = "";
    run_t *r = sl_calloc(1, sizeof *r);
    if (r)
        r->owner = j;
    int rc = r ? prepare(r, m, err, sizeof err) : SL_ENOMEM;
    if (rc == 0) {
        sl_rpc_conn_ref(jm);
        r->jm = jm;
        pthread_mutex_lock(&j->mu);
        r->next = j->runs;
        j->runs = r;
        if (pthread_create(&r->thread, NULL, run_main, r) != 0) {
            j->runs = r->next;
            rc = SL_ENOMEM;
        }
        pthread_mutex_unlock(&j->mu);
    }
    if (rc) {
        if (r)
            free_run(r);
        if (err[0])
            SL_WARN("taskmanager %s: %s", sl_net_id(j->net), err);
        sl_rpc_reply_error(req, rc, err[0] ? err : sl_strerror(rc));
        return;
    }
    SL_INFO("taskmanager %s: running %u subtasks of job %s", sl_net_id(j->net), r->expected, r->job_id);
    Sluice__Rpc__Ack ack = SLUICE__RPC__ACK__INIT;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    sl_rpc_reply(req, &env);
}

void sl_tm_jobs_cancel(sl_tm_jobs_t *j, const char *job_id) {
    pthread_mutex_lock(&j->mu);
    for (run_t *r = j->runs; r; r = r->next)
        if (strcmp(r->job_id, job_id) == 0)
            r->cancel = 1;
    pthread_mutex_unlock(&j->mu);
}

unsigned sl_tm_jobs_running(sl_tm_jobs_t *j) {
    reap(j, false);
    sl_library_cache_sweep(j->libs);
    unsigned n = 0;
    pthread_mutex_lock(&j->mu);
    for (run_t *r = j->runs; r; r = r->next)
        n++;
    pthread_mutex_unlock(&j->mu);
    return n;
}

int sl_tm_jobs_create(sl_net_t *net, sl_tm_jobs_t **out) {
    sl_tm_jobs_t *j = sl_calloc(1, sizeof *j);
    if (j == NULL)
        return SL_ENOMEM;
    j->net = net;
    if (sl_library_cache_create(NULL, SL_LIBRARY_CACHE_LINGER_MS, &j->libs) != 0) {
        sl_free(j);
        return SL_ENOMEM;
    }
    pthread_mutex_init(&j->mu, NULL);
    *out = j;
    return 0;
}

void sl_tm_jobs_destroy(sl_tm_jobs_t *j) {
    if (j == NULL)
        return;
    reap(j, true);
    sl_library_cache_destroy(j->libs); /* every run is gone: the files and the directory go */
    pthread_mutex_destroy(&j->mu);
    sl_free(j);
}
