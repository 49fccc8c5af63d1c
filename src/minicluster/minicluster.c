/* Embedded mini-cluster (see minicluster.h): deployment of tasks and channels, the run loop
 * that waits for tasks and samples progress, failure propagation and teardown. */
#include "minicluster/minicluster.h"

#include <sluice/error.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "minicluster/coordinator.h"
#include "minicluster/restore.h"
#include "network/buffer_pool.h"
#include "state/rocksdb_backend.h"
#include "state/rocksdb_memory.h"
#include "taskexecutor/task.h"
#include "taskexecutor/task_checkpoint.h"

static volatile sig_atomic_t cancel_requested;

void sl_minicluster_request_cancel(void) { cancel_requested = 1; }

/* Channels of one job edge between vertices: src_par x dst_par, or src_par for forward. */
typedef struct {
    const sl_stream_edge_t *edge;
    uint32_t src_par;
    uint32_t dst_par;
    sl_channel_t *channels; /* [i * dst_par + j], or [i] for forward */
    bool forward;
} edge_channels_t;

typedef struct {
    const sl_job_graph_t *g;
    const sl_config_t *config;
    void *user_lib; /* dlopen handle of the job library, NULL for built-in jobs */
    sl_rocksdb_memory_t **rocksdb_memory; /* per TaskManager, when state.backend.type is rocksdb */
    uint32_t ntms;
    sl_network_memory_t *tms;
    uint32_t slots_per_tm;
    edge_channels_t *edges;
    uint32_t nedges;
    sl_task_t **tasks;    /* tasks[v][i] */
    uint32_t ntasks;
    sl_mailbox_t done;    /* woken when a task ends; runs checkpoint acknowledgements */
    sl_coordinator_t *coordinator;    /* NULL: checkpointing off */
    const sl_restore_plan_t *restore; /* NULL: a fresh start */
    atomic_uint finished;
    atomic_uint failed;
    atomic_uint canceled;
    const sl_minicluster_placement_t *pl; /* NULL: every subtask runs here */
} cluster_t;

static bool is_local(const cluster_t *c, uint32_t i) {
    return c->pl == NULL || (i < c->pl->nslots && c->pl->local[i]);
}

/* A task slot that was never deployed here (another TaskManager runs it) is all zero. */
static bool is_deployed(const sl_task_t *t) { return t->graph != NULL; }

static bool cancel_asked(const cluster_t *c) {
    return cancel_requested || (c->pl && c->pl->cancel && *c->pl->cancel);
}

static sl_channel_t *channel_at(edge_channels_t *ec, uint32_t i, uint32_t j) {
    return ec->forward ? &ec->channels[i] : &ec->channels[(size_t)i * ec->dst_par + j];
}

typedef struct {
    cluster_t *c;
    uint32_t vertex, subtask;
    uint64_t last_checkpoint;
} finished_mail_t;

static void run_finished(void *arg) {
    finished_mail_t *m = arg;
    sl_coordinator_task_finished(m->c->coordinator, m->vertex, m->subtask, m->last_checkpoint);
    sl_free(m);
}

static void on_task_done(void *arg, sl_task_t *t) {
    cluster_t *c = arg;
    sl_task_state_t state = sl_task_state(t);
    /* Reported at once, not when every local task ended: a JobMaster stopping a job waits for
     * its sinks while producers on the same TaskManager may still be blocked. */
    if (c->pl && c->pl->on_task_final)
        c->pl->on_task_final(c->pl->arg, t->vertex->id, t->index, (int)state, t->error, t->last_checkpoint);
    /* The coordinator learns which checkpoints a finished task took part in (it keeps
     * checkpointing the rest of the job); the mail follows the task's last acknowledgement,
     * posted before its thread ended, though the coordinator takes either order. */
    if (c->coordinator && state == SL_TASK_FINISHED) {
        finished_mail_t *m = sl_malloc(sizeof *m);
        if (m)
            *m = (finished_mail_t){c, t->vertex->id, t->index, t->last_checkpoint};
        if (m == NULL || sl_mailbox_put_mail(&c->done, run_finished, m) != 0) {
            sl_free(m); /* checkpoints wait for it, time out, and the next ones do too */
            SL_WARN("subtask %u of vertex %u finished but the coordinator could not be told", t->index,
                    t->vertex->id);
        }
    }
    if (state == SL_TASK_FAILED)
        atomic_fetch_add(&c->failed, 1);
    if (state == SL_TASK_CANCELED)
        atomic_fetch_add(&c->canceled, 1);
    atomic_fetch_add(&c->finished, 1);
    sl_mailbox_wake(&c->done);
}

typedef struct {
    cluster_t *c;
    sl_task_ack_t *ack;
} ack_mail_t;

static void run_ack(void *arg) {
    ack_mail_t *m = arg;
    sl_coordinator_ack(m->c->coordinator, m->ack);
    sl_free(m);
}

/* Task thread: the acknowledgement goes to the coordinator's thread (the main loop). */
static void on_ack(void *arg, sl_task_ack_t *ack) {
    cluster_t *c = arg;
    ack_mail_t *m = sl_malloc(sizeof *m);
    if (m) {
        m->c = c;
        m->ack = ack;
    }
    if (m == NULL || sl_mailbox_put_mail(&c->done, run_ack, m) != 0) {
        sl_free(m);
        sl_task_ack_free(ack); /* the checkpoint will time out */
    }
}

/* The coordinator's gateway in this process: sources get a trigger mail, every task a notice. */
typedef struct {
    sl_task_t **tasks;
    uint32_t n;
} local_tasks_t;

/* Tasks that ended are skipped: they would never run the mail, which would stay queued until
 * the attempt ends (a long job would pile up one per checkpoint). */
static int trigger_local(void *arg, uint64_t barrier_id) {
    local_tasks_t *lt = arg;
    for (uint32_t i = 0; i < lt->n; i++)
        if (lt->tasks[i]->nin == 0 && sl_task_state(lt->tasks[i]) < SL_TASK_FINISHED &&
            sl_task_trigger_checkpoint(lt->tasks[i], barrier_id) != 0)
            return SL_ENOMEM;
    return 0;
}

static void notify_local(void *arg, uint64_t id, bool stop) {
    local_tasks_t *lt = arg;
    for (uint32_t i = 0; i < lt->n; i++)
        if (sl_task_state(lt->tasks[i]) < SL_TASK_FINISHED && sl_task_notify_complete(lt->tasks[i], id, stop) != 0)
            SL_WARN("checkpoint %llu: could not notify subtask %u", (unsigned long long)id, i);
}

/* Channels of edge e with one end here and the other elsewhere go to the placement's bridge
 * (after the tasks exist: it binds the remote end's mailbox and data may flow at once). */
static int bridge_edge(cluster_t *c, uint32_t e, char *err, size_t errlen) {
    edge_channels_t *ec = &c->edges[e];
    if (c->pl == NULL || ec->forward) /* forward: producer and consumer share a slot */
        return 0;
    for (uint32_t p = 0; p < ec->src_par; p++)
        for (uint32_t q = 0; q < ec->dst_par; q++) {
            bool lp = is_local(c, p), lq = is_local(c, q);
            if (lp == lq)
                continue;
            int rc = c->pl->bridge(c->pl->arg, e, p, q, channel_at(ec, p, q), lp, err, errlen);
            if (rc)
                return rc;
        }
    return 0;
}

static int create_edges(cluster_t *c, char *err, size_t errlen) {
    const sl_job_graph_t *g = c->g;
    c->edges = sl_calloc(g->nedges ? g->nedges : 1, sizeof *c->edges);
    if (c->edges == NULL)
        return SL_ENOMEM;
    int64_t credit = sl_config_int(c->config, "taskmanager.network.memory.buffers-per-channel");
    for (uint32_t e = 0; e < g->nedges; e++) {
        const sl_stream_edge_t *ed = &g->edges[e];
        if (ed->chained)
            continue;
        edge_channels_t *ec = &c->edges[c->nedges++];
        ec->edge = ed;
        ec->src_par = g->vertices[g->nodes[ed->src].vertex].parallelism;
        ec->dst_par = g->vertices[g->nodes[ed->dst].vertex].parallelism;
        ec->forward = ed->partitioner == SL_PART_FORWARD;
        if (ec->forward && ec->src_par != ec->dst_par) {
            snprintf(err, errlen, "forward edge between different parallelisms");
            return SL_EJOB;
        }
        size_t n = ec->forward ? ec->src_par : (size_t)ec->src_par * ec->dst_par;
        ec->channels = sl_calloc(n, sizeof *ec->channels);
        if (ec->channels == NULL)
            return SL_ENOMEM;
        /* Mailboxes are bound after the tasks exist; credit is set now. */
        for (size_t k = 0; k < n; k++)
            if (sl_channel_init(&ec->channels[k], (uint32_t)credit, NULL, NULL, ed->dst_input, 0))
                return SL_ENOMEM;
    }
    return 0;
}

/* Input channels of subtask j of vertex v, in edge order; sets each channel's index. */
static int gather_inputs(cluster_t *c, uint32_t v, uint32_t j, sl_channel_t ***out, uint32_t *n) {
    uint32_t count = 0;
    for (uint32_t e = 0; e < c->nedges; e++) {
        edge_channels_t *ec = &c->edges[e];
        if (c->g->nodes[ec->edge->dst].vertex == v)
            count += ec->forward ? 1 : ec->src_par;
    }
    *n = count;
    *out = NULL;
    if (count == 0)
        return 0;
    sl_channel_t **list = sl_calloc(count, sizeof *list);
    if (list == NULL)
        return SL_ENOMEM;
    uint32_t k = 0;
    for (uint32_t e = 0; e < c->nedges; e++) {
        edge_channels_t *ec = &c->edges[e];
        if (c->g->nodes[ec->edge->dst].vertex != v)
            continue;
        if (ec->forward) {
            list[k] = channel_at(ec, j, j);
            list[k]->index = k;
            k++;
        } else {
            for (uint32_t i = 0; i < ec->src_par; i++) {
                list[k] = channel_at(ec, i, j);
                list[k]->index = k;
                k++;
            }
        }
    }
    *out = list;
    return 0;
}

static int init_task(cluster_t *c, uint32_t v, uint32_t i, const sl_task_wiring_t *wp, char *err, size_t errlen) {
    const sl_job_vertex_t *vx = &c->g->vertices[v];
    sl_task_wiring_t w = *wp;
    uint32_t slot = i;
    sl_network_memory_t *nm = &c->tms[slot / c->slots_per_tm];
    sl_task_t *t = &c->tasks[v][i];
    int rc = sl_task_init(t, c->g, v, i, c->config, c->user_lib, &w, nm, on_task_done, c);
    if (rc && err[0] == '\0')
        snprintf(err, errlen, "deploying %.200s (%u/%u): %.700s", vx->name, i + 1, vx->parallelism,
                 t->error[0] ? t->error : sl_strerror(rc));
    /* Bind mailboxes: this task consumes its inputs and produces into its outputs. */
    for (uint32_t k = 0; k < w.nin; k++)
        w.in_channels[k]->consumer = &t->mailbox;
    for (uint32_t e = 0; e < w.nout; e++)
        for (uint32_t j = 0; j < w.out_nchannels[e]; j++)
            w.out_channels[e][j]->producer = &t->mailbox;
    return rc;
}

static int deploy_task(cluster_t *c, uint32_t v, uint32_t i, char *err, size_t errlen) {
    const sl_job_vertex_t *vx = &c->g->vertices[v];
    sl_task_wiring_t w = {0};
    int rc = gather_inputs(c, v, i, &w.in_channels, &w.nin);
    if (rc)
        return rc;
    const sl_stream_edge_t *oe[64];
    sl_channel_t **oc[64];
    uint32_t on[64];
    for (uint32_t e = 0; e < c->nedges && rc == 0; e++) {
        edge_channels_t *ec = &c->edges[e];
        if (c->g->nodes[ec->edge->src].vertex != v)
            continue;
        if (w.nout == 64) {
            snprintf(err, errlen, "vertex '%s': more than 64 outputs", vx->name);
            rc = SL_EJOB;
            break;
        }
        uint32_t n = ec->forward ? 1 : ec->dst_par;
        /* The record writer copies the array: it only has to live through sl_task_init. */
        if ((oc[w.nout] = sl_malloc(n * sizeof(sl_channel_t *))) == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        for (uint32_t j = 0; j < n; j++)
            oc[w.nout][j] = ec->forward ? channel_at(ec, i, i) : channel_at(ec, i, j);
        oe[w.nout] = ec->edge;
        on[w.nout] = n;
        w.nout++;
    }
    if (rc == 0) {
        w.rocksdb_memory = c->rocksdb_memory ? c->rocksdb_memory[i / c->slots_per_tm] : NULL;
        if (c->coordinator) {
            w.storage = &c->coordinator->storage;
            w.on_ack = on_ack;
            w.on_ack_arg = c;
        } else if (c->pl && c->pl->storage) {
            w.storage = c->pl->storage;
            w.on_ack = c->pl->on_ack;
            w.on_ack_arg = c->pl->arg;
        }
        w.restore = c->restore ? &c->restore->tasks[v][i] : NULL;
        w.out_edges = oe;
        w.out_channels = oc;
        w.out_nchannels = on;
        rc = init_task(c, v, i, &w, err, errlen);
    }
    for (uint32_t e = 0; e < w.nout; e++)
        sl_free(oc[e]);
    sl_free(w.in_channels);
    return rc;
}


static void collect_progress(cluster_t *c, sl_vertex_progress_t *vp) {
    for (uint32_t v = 0; v < c->g->nvertices; v++) {
        const sl_job_vertex_t *vx = &c->g->vertices[v];
        sl_vertex_progress_t *p = &vp[v];
        memset(p, 0, sizeof *p);
        p->name = vx->name;
        p->parallelism = vx->parallelism;
        for (uint32_t i = 0; i < vx->parallelism; i++) {
            sl_task_t *t = &c->tasks[v][i];
            if (!is_deployed(t))
                continue;
            p->records_in += atomic_load_explicit(&t->records_in, memory_order_relaxed);
            p->records_out += atomic_load_explicit(&t->records_out, memory_order_relaxed);
            p->backpressured_ms += atomic_load_explicit(&t->backpressured_ms, memory_order_relaxed);
            sl_task_state_t s = sl_task_state(t);
            if (s == SL_TASK_RUNNING)
                p->running++;
            else if (s == SL_TASK_FINISHED)
                p->finished++;
        }
    }
}

static void cancel_all(cluster_t *c) {
    for (uint32_t v = 0; v < c->g->nvertices; v++)
        for (uint32_t i = 0; i < c->g->vertices[v].parallelism; i++)
            if (is_deployed(&c->tasks[v][i]))
                sl_task_cancel(&c->tasks[v][i]);
}

/* Finds the root cause: the first failed task's message. */
static void first_failure(cluster_t *c, sl_job_result_t *r) {
    for (uint32_t v = 0; v < c->g->nvertices; v++)
        for (uint32_t i = 0; i < c->g->vertices[v].parallelism; i++) {
            sl_task_t *t = &c->tasks[v][i];
            if (sl_task_state(t) == SL_TASK_FAILED && r->error[0] == '\0')
                snprintf(r->error, sizeof r->error, "%.200s (%u/%u): %.700s", c->g->vertices[v].name, i + 1,
                         c->g->vertices[v].parallelism, t->error);
        }
}

static void teardown(cluster_t *c, uint32_t deployed_vertices) {
    /* Bridges first (the network thread lets go of the channels), then channels: queued
     * buffers go back to the writers' pools before pools are freed. */
    if (c->pl && c->pl->unbridge)
        c->pl->unbridge(c->pl->arg);
    for (uint32_t e = 0; e < c->nedges; e++) {
        edge_channels_t *ec = &c->edges[e];
        size_t n = ec->forward ? ec->src_par : (size_t)ec->src_par * ec->dst_par;
        for (size_t k = 0; ec->channels && k < n; k++)
            sl_channel_destroy(&ec->channels[k]);
        sl_free(ec->channels);
    }
    sl_free(c->edges);
    for (uint32_t v = 0; c->tasks && v < deployed_vertices; v++) {
        for (uint32_t i = 0; c->tasks[v] && i < c->g->vertices[v].parallelism; i++)
            if (c->tasks[v][i].graph)
                sl_task_destroy(&c->tasks[v][i]);
        sl_free(c->tasks[v]);
    }
    sl_free(c->tasks);
    for (uint32_t k = 0; c->tms && k < c->ntms; k++)
        sl_network_memory_destroy(&c->tms[k]);
    sl_free(c->tms);
    for (uint32_t k = 0; c->rocksdb_memory && k < c->ntms; k++)
        sl_rocksdb_memory_destroy(c->rocksdb_memory[k]);
    sl_free(c->rocksdb_memory);
    sl_mailbox_destroy(&c->done);
    /* Ready for another attempt. */
    c->edges = NULL;
    c->nedges = 0;
    c->tasks = NULL;
    c->ntasks = 0;
    c->tms = NULL;
    c->rocksdb_memory = NULL;
}

static int check_slots(cluster_t *c, char *err, size_t errlen) {
    uint32_t need = 0;
    for (uint32_t v = 0; v < c->g->nvertices; v++)
        if (c->g->vertices[v].parallelism > need)
            need = c->g->vertices[v].parallelism;
    uint32_t have = c->ntms * c->slots_per_tm;
    if (c->pl && need > c->pl->nslots) {
        snprintf(err, errlen, "the job needs %u slots, its placement has %u", need, c->pl->nslots);
        return SL_ENOSLOT;
    }
    if (need > have) {
        snprintf(err, errlen,
                 "the job needs %u slots but the mini-cluster has %u (%u TaskManagers x %u slots): raise "
                 "taskmanager.numberOfTaskSlots or minicluster.number-of-taskmanagers, or lower the parallelism",
                 need, have, c->ntms, c->slots_per_tm);
        return SL_ENOSLOT;
    }
    return 0;
}

/* One RocksDB memory budget per TaskManager, shared by all its subtasks' instances. */
static int create_rocksdb_memory(cluster_t *c, char *err, size_t errlen) {
    const char *type = sl_config_str(c->config, "state.backend.type");
    if (type == NULL || strcmp(type, "rocksdb") != 0)
        return 0;
    int64_t size = sl_config_bytes(c->config, "state.backend.rocksdb.memory.managed-size");
    if ((c->rocksdb_memory = sl_calloc(c->ntms, sizeof *c->rocksdb_memory)) == NULL)
        return SL_ENOMEM;
    for (uint32_t k = 0; k < c->ntms; k++)
        if ((c->rocksdb_memory[k] = sl_rocksdb_memory_create((size_t)size)) == NULL) {
            snprintf(err, errlen, "cannot create the RocksDB memory of a TaskManager (%lld bytes)", (long long)size);
            return SL_ENOMEM;
        }
    return 0;
}

static int deploy(cluster_t *c, uint32_t *deployed, char *err, size_t errlen) {
    int rc = check_slots(c, err, errlen);
    if (rc)
        return rc;
    c->tms = sl_calloc(c->ntms, sizeof *c->tms);
    if (c->tms == NULL)
        return SL_ENOMEM;
    int64_t net = sl_config_bytes(c->config, "taskmanager.memory.network.size");
    int64_t seg = sl_config_bytes(c->config, "taskmanager.memory.segment-size");
    for (uint32_t k = 0; k < c->ntms; k++)
        if ((rc = sl_network_memory_init(&c->tms[k], (uint64_t)net, (uint32_t)seg)) != 0) {
            snprintf(err, errlen, "taskmanager.memory.network.size (%lld) must hold at least one segment (%lld)",
                     (long long)net, (long long)seg);
            return SL_ECONFIG;
        }
    if ((rc = create_rocksdb_memory(c, err, errlen)) != 0)
        return rc;
    if ((rc = create_edges(c, err, errlen)) != 0)
        return rc;
    c->tasks = sl_calloc(c->g->nvertices, sizeof *c->tasks);
    if (c->tasks == NULL)
        return SL_ENOMEM;
    for (uint32_t v = 0; v < c->g->nvertices; v++) {
        c->tasks[v] = sl_calloc(c->g->vertices[v].parallelism, sizeof *c->tasks[v]);
        *deployed = v + 1;
        if (c->tasks[v] == NULL)
            return SL_ENOMEM;
        for (uint32_t i = 0; i < c->g->vertices[v].parallelism; i++) {
            if (!is_local(c, i))
                continue;
            if ((rc = deploy_task(c, v, i, err, errlen)) != 0)
                return rc;
            c->ntasks++;
        }
    }
    /* Bridges last: a remote channel may deliver at once, into a task that must exist. */
    for (uint32_t e = 0; e < c->nedges && rc == 0; e++)
        rc = bridge_edge(c, e, err, errlen);
    return rc;
}

/* One attempt: deploy, run until every task ended, join. Returns a deployment error, or 0
 * with result->status set. */
static int run_attempt(cluster_t *c, sl_progress_cb cb, void *cb_arg, int64_t interval_ms, int64_t t0,
                       sl_job_result_t *result) {
    const sl_job_graph_t *g = c->g;
    atomic_init(&c->finished, 0);
    atomic_init(&c->failed, 0);
    atomic_init(&c->canceled, 0);
    int rc = sl_mailbox_init(&c->done);
    if (rc)
        return rc;
    uint32_t deployed = 0;
    rc = deploy(c, &deployed, result->error, sizeof result->error);
    if (rc) {
        if (result->error[0] == '\0')
            snprintf(result->error, sizeof result->error, "deployment failed: %s", sl_strerror(rc));
        teardown(c, deployed);
        return rc;
    }
    sl_task_t **all = sl_calloc(c->ntasks ? c->ntasks : 1, sizeof *all);
    uint32_t n = 0;
    for (uint32_t v = 0; all && v < g->nvertices; v++)
        for (uint32_t i = 0; i < g->vertices[v].parallelism; i++)
            if (is_deployed(&c->tasks[v][i]))
                all[n++] = &c->tasks[v][i];
    local_tasks_t lt = {all, n};
    if (c->pl && c->pl->on_tasks && all)
        c->pl->on_tasks(c->pl->arg, all, n);
    if (c->coordinator)
        sl_coordinator_set_gateway(c->coordinator, &(sl_coordinator_gateway_t){trigger_local, notify_local, &lt, n});
    uint32_t started = 0;
    for (uint32_t k = 0; k < n && rc == 0; k++) {
        rc = sl_task_start(all[k]);
        started += rc == 0;
    }
    if (rc || all == NULL)
        cancel_all(c);
    sl_vertex_progress_t *vp = sl_calloc(g->nvertices, sizeof *vp);
    bool canceled = false;
    int64_t next = sl_monotonic_ms() + interval_ms;
    while (atomic_load(&c->finished) < started) {
        void *unused;
        sl_mailbox_wait_ready(&c->done, sl_monotonic_ms() + (interval_ms > 0 && interval_ms < 100 ? interval_ms : 100),
                              &unused);
        sl_mail_t m;
        while (sl_mailbox_take_mail(&c->done, &m))
            m.fn(m.arg);
        if (c->coordinator) {
            /* Finished tasks do not stop checkpoints (coordinator.c); a failure or a cancel does. */
            if (atomic_load(&c->failed) > 0)
                sl_coordinator_stop(c->coordinator, "a task failed");
            else if (atomic_load(&c->canceled) > 0 || canceled)
                sl_coordinator_stop(c->coordinator, "the job is being cancelled");
            sl_coordinator_tick(c->coordinator, sl_monotonic_ms());
        }
        if (atomic_load(&c->failed) > 0 || (cancel_asked(c) && !canceled)) {
            canceled = canceled || cancel_asked(c);
            cancel_all(c);
        }
        if (cb && vp && interval_ms > 0 && sl_monotonic_ms() >= next) {
            collect_progress(c, vp);
            cb(cb_arg, &(sl_job_progress_t){g->nvertices, vp, sl_monotonic_ms() - t0}, 0);
            next = sl_monotonic_ms() + interval_ms;
        }
    }
    if (c->pl && c->pl->on_tasks && all)
        c->pl->on_tasks(c->pl->arg, NULL, 0);
    for (uint32_t k = 0; k < n; k++)
        sl_task_join(all[k]);
    /* Acknowledgements still queued belong to an aborted checkpoint. */
    sl_mail_t m;
    while (sl_mailbox_take_mail(&c->done, &m))
        m.fn(m.arg);
    if (c->coordinator) {
        sl_coordinator_set_gateway(c->coordinator, NULL);
        sl_coordinator_abort(c->coordinator, "the job attempt ended");
        sl_coordinator_collect_garbage(c->coordinator);
    }
    result->elapsed_ms = sl_monotonic_ms() - t0;
    if (cb && vp) {
        collect_progress(c, vp);
        cb(cb_arg, &(sl_job_progress_t){g->nvertices, vp, result->elapsed_ms}, 1);
    }
    sl_free(vp);
    result->status = 0;
    if (atomic_load(&c->failed) > 0 || rc || all == NULL) {
        result->status = SL_EFAILED;
        first_failure(c, result);
        if (result->error[0] == '\0')
            snprintf(result->error, sizeof result->error, "%s", sl_strerror(rc ? rc : SL_EFAILED));
    } else if (canceled) {
        result->status = SL_ECANCELED;
        snprintf(result->error, sizeof result->error, "canceled");
    }
    sl_free(all);
    teardown(c, deployed);
    return 0;
}

/* Each RocksDB instance removes its own directory; their common parent goes when empty. */
static void remove_rocksdb_parent(const sl_config_t *config) {
    char path[4096];
    if (sl_rocksdb_local_root(config, path, sizeof path) == 0)
        rmdir(path);
}

/* <job name>-<start time>: a new directory per run, like Flink's job ids. */
static void make_job_id(const sl_job_graph_t *g, char *buf, size_t len) {
    size_t o = 0;
    for (const char *p = g->name ? g->name : "job"; *p && o + 1 < len && o < 40; p++)
        buf[o++] = (isalnum((unsigned char)*p) || *p == '-' || *p == '_') ? *p : '_';
    snprintf(buf + o, len - o, "-%llx", (unsigned long long)sl_wall_ms());
}

int sl_minicluster_run(const sl_config_t *config, const sl_job_graph_t *g, void *user_lib, sl_progress_cb cb,
                       void *cb_arg, int64_t interval_ms, sl_job_result_t *result) {
    memset(result, 0, sizeof *result);
    cluster_t c = {.g = g, .config = config, .user_lib = user_lib};
    c.ntms = (uint32_t)sl_config_int(config, "minicluster.number-of-taskmanagers");
    c.slots_per_tm = (uint32_t)sl_config_int(config, "taskmanager.numberOfTaskSlots");
    sl_restore_plan_t plan;
    memset(&plan, 0, sizeof plan);
    const char *from = sl_config_str(config, "execution.savepoint.path");
    int rc = 0;
    if (from && from[0]) {
        if ((rc = sl_restore_plan_load(&plan, g, from, NULL, result->error, sizeof result->error)) != 0)
            return rc;
        c.restore = &plan;
        SL_INFO("restoring from %s", plan.path);
    }
    sl_coordinator_t co;
    if (sl_config_duration_ms(config, "execution.checkpointing.interval") > 0) {
        char job_id[96];
        make_job_id(g, job_id, sizeof job_id);
        if ((rc = sl_coordinator_init(&co, config, g, job_id, plan.checkpoint_id + 1, false, result->error,
                                      sizeof result->error)) != 0) {
            sl_restore_plan_free(&plan);
            return rc;
        }
        c.coordinator = &co;
    }
    int64_t attempts = c.coordinator ? sl_config_int(config, "restart-strategy.fixed-delay.attempts") : 0;
    int64_t delay = sl_config_duration_ms(config, "restart-strategy.fixed-delay.delay");
    cancel_requested = 0;
    int64_t t0 = sl_monotonic_ms();
    for (int64_t attempt = 0;; attempt++) {
        rc = run_attempt(&c, cb, cb_arg, interval_ms, t0, result);
        if (rc || result->status != SL_EFAILED || attempt >= attempts || cancel_requested || co.latest == 0)
            break;
        /* Restart everything from the latest completed checkpoint (region failover refines this). */
        SL_WARN("job failed (%s); restart %lld of %lld from checkpoint %llu", result->error, (long long)attempt + 1,
                (long long)attempts, (unsigned long long)co.latest);
        fprintf(stderr, "sluice: job failed: %s; restarting from checkpoint %llu\n", result->error,
                (unsigned long long)co.latest);
        char path[4096];
        sl_ckpt_dir(&co.storage, co.latest, path, sizeof path);
        sl_restore_plan_free(&plan);
        if ((rc = sl_restore_plan_load(&plan, g, path, NULL, result->error, sizeof result->error)) != 0)
            break;
        c.restore = &plan;
        memset(result->error, 0, sizeof result->error);
        struct timespec d = {delay / 1000, (delay % 1000) * 1000000};
        nanosleep(&d, NULL);
    }
    if (c.coordinator) {
        result->checkpoints_completed = co.completed;
        result->checkpoints_aborted = co.aborted;
        result->latest_checkpoint = co.latest;
        snprintf(result->checkpoint_dir, sizeof result->checkpoint_dir, "%s", co.storage.job_dir);
        sl_coordinator_destroy(&co);
    }
    sl_restore_plan_free(&plan);
    remove_rocksdb_parent(config);
    return rc;
}

int sl_minicluster_run_placed(const sl_config_t *config, const sl_job_graph_t *g, void *user_lib,
                              const sl_minicluster_placement_t *pl, sl_job_result_t *result) {
    memset(result, 0, sizeof *result);
    /* One TaskManager (this process) holding the placement's local slots. */
    cluster_t c = {.g = g, .config = config, .user_lib = user_lib, .pl = pl, .ntms = 1, .slots_per_tm = pl->nslots};
    sl_restore_plan_t plan;
    memset(&plan, 0, sizeof plan);
    int rc = 0;
    if (pl->restore_path && pl->restore_path[0]) {
        if ((rc = sl_restore_plan_load(&plan, g, pl->restore_path, pl->local, result->error,
                                        sizeof result->error)) != 0)
            return rc;
        c.restore = &plan;
    }
    rc = run_attempt(&c, NULL, NULL, 0, sl_monotonic_ms(), result);
    sl_restore_plan_free(&plan);
    remove_rocksdb_parent(config);
    return rc;
}
