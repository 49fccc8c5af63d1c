/* The ResourceManager (see rm_service.h): registry, matching of slot requests, TaskManagers
 * started on demand and stopped when idle, heartbeats. */
#include "resourcemanager/rm_service.h"

#include <sluice/error.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "resourcemanager/driver_thread.h"
#include "rpc/heartbeat.h"

#define MAX_TMS 4096
#define MAX_REQUESTS 65536

typedef enum { SLOT_FREE = 0, SLOT_RESERVED, SLOT_TAKEN } slot_state_t;

typedef struct {
    char id[64];
    char addr[128];
    sl_rpc_conn_t *conn;      /* our reference */
    uint32_t nslots;
    uint8_t *slots;           /* slot_state_t */
    char (*allocs)[64];       /* the allocation each taken slot serves */
    char worker[48];          /* the driver's id when we started it, else "" */
    bool stopping;            /* we stopped it (idle): its going away is no loss */
    char data_host[128];      /* its data plane */
    int data_port;
    int64_t idle_since;       /* monotonic ms; 0 = busy */
} tm_t;

typedef struct {
    char allocation_id[64];
    char job_id[64];
    int64_t deadline;
    bool sent;                /* a TaskManager has it (RequestSlot in flight) */
    sl_rm_request_failed_cb failed;
    void *arg;
} request_t;

/* A TaskManager the driver is starting or started, that has not registered yet. */
typedef struct {
    char tm_id[32];
    char worker[48];          /* the driver's id; "" while the start is in flight */
    bool registered;          /* it registered before its start completed: only the worker
                               * id is still to be handed to it */
} starting_t;

struct sl_rm_service_s {
    sl_rm_service_config_t cfg;
    pthread_mutex_t mu;
    sl_heartbeat_t *hb;
    sl_rm_driver_thread_t *dt; /* every driver call goes through it */
    bool polling;             /* a poll is queued or running: one at a time */
    tm_t *tms[MAX_TMS];
    uint32_t ntms;
    request_t *reqs;
    uint32_t nreqs, reqs_cap;
    uint32_t nstarting, started, lost, next_tm;
    starting_t starting[MAX_TMS];
    /* Dropped TaskManagers still watched by the heartbeat manager: unmonitored by the tick,
     * outside the lock (the manager may be iterating its targets when a loss is reported). */
    char unwatch[MAX_TMS][64];
    uint32_t nunwatch;
    char driver_error[512];   /* why the driver last failed to start a TaskManager */
    bool shutting_down;       /* connections closing now are ours, not losses */
};

/* ---- Registry ---- */

static tm_t *find_tm(sl_rm_service_t *rm, const char *id) {
    for (uint32_t i = 0; i < rm->ntms; i++)
        if (strcmp(rm->tms[i]->id, id) == 0)
            return rm->tms[i];
    return NULL;
}

static void free_tm(tm_t *t) {
    if (t->conn)
        sl_rpc_conn_unref(t->conn);
    sl_free(t->slots);
    sl_free(t->allocs);
    sl_free(t);
}

/* Under the lock: drops TaskManager i and reports it. */
static void drop_tm(sl_rm_service_t *rm, uint32_t i, const char *reason) {
    tm_t *t = rm->tms[i];
    rm->tms[i] = rm->tms[--rm->ntms];
    if (t->stopping || rm->shutting_down) {
        SL_INFO("resourcemanager: TaskManager %s at %s stopped", t->id, t->addr);
        reason = NULL;
    } else {
        rm->lost++;
        SL_WARN("resourcemanager: TaskManager %s at %s lost: %s", t->id, t->addr, reason);
    }
    if (rm->nunwatch < MAX_TMS)
        snprintf(rm->unwatch[rm->nunwatch++], sizeof rm->unwatch[0], "%s", t->id);
    if (rm->cfg.on_tm_lost && reason)
        rm->cfg.on_tm_lost(rm->cfg.arg, t->id, t->addr, reason);
    sl_rpc_conn_close(t->conn);
    t->conn = NULL;
    free_tm(t);
}

static request_t *find_req(sl_rm_service_t *rm, const char *alloc) {
    for (uint32_t i = 0; i < rm->nreqs; i++)
        if (strcmp(rm->reqs[i].allocation_id, alloc) == 0)
            return &rm->reqs[i];
    return NULL;
}

static void remove_req(sl_rm_service_t *rm, request_t *r) { *r = rm->reqs[--rm->nreqs]; }

/* ---- Matching requests to free slots ---- */

typedef struct {
    sl_rm_service_t *rm;
    char tm_id[64];
    uint32_t slot;
    char allocation_id[64];
} sent_t;

static void match(sl_rm_service_t *rm);

static void on_request_answer(int status, sl_rpc_msg_t *resp, void *arg) {
    sent_t *s = arg;
    sl_rm_service_t *rm = s->rm;
    pthread_mutex_lock(&rm->mu);
    tm_t *t = find_tm(rm, s->tm_id);
    request_t *r = find_req(rm, s->allocation_id);
    if (status == 0) {
        if (t) {
            t->slots[s->slot] = SLOT_TAKEN;
            snprintf(t->allocs[s->slot], sizeof t->allocs[0], "%s", s->allocation_id);
        }
        if (r)
            remove_req(rm, r); /* served: the TaskManager offers it to the JobMaster */
    } else {
        SL_INFO("resourcemanager: TaskManager %s refused slot request %s: %s", s->tm_id, s->allocation_id,
                resp && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_ERROR ? resp->error->message
                                                                              : sl_strerror(status));
        if (t)
            t->slots[s->slot] = SLOT_FREE;
        if (r)
            r->sent = false;
        match(rm);
    }
    pthread_mutex_unlock(&rm->mu);
    sl_rpc_msg_free(resp);
    sl_free(s);
}

static int send_request(sl_rm_service_t *rm, tm_t *t, uint32_t slot, request_t *r) {
    sent_t *s = sl_calloc(1, sizeof *s);
    if (s == NULL)
        return SL_ENOMEM;
    s->rm = rm;
    s->slot = slot;
    snprintf(s->tm_id, sizeof s->tm_id, "%s", t->id);
    snprintf(s->allocation_id, sizeof s->allocation_id, "%s", r->allocation_id);
    Sluice__Rpc__RequestSlot rs = SLUICE__RPC__REQUEST_SLOT__INIT;
    rs.allocation_id = r->allocation_id;
    rs.job_id = r->job_id;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_REQUEST_SLOT;
    env.request_slot = &rs;
    int rc = sl_rpc_call(t->conn, &env, 10000, on_request_answer, s);
    if (rc)
        sl_free(s);
    return rc;
}

/* Under the lock: gives every unsent request a free slot, if there is one. */
static void match(sl_rm_service_t *rm) {
    for (uint32_t i = 0; i < rm->nreqs; i++) {
        request_t *r = &rm->reqs[i];
        for (uint32_t k = 0; !r->sent && k < rm->ntms; k++) {
            tm_t *t = rm->tms[k];
            for (uint32_t s = 0; !r->sent && s < t->nslots; s++) {
                if (t->slots[s] != SLOT_FREE)
                    continue;
                t->slots[s] = SLOT_RESERVED;
                t->idle_since = 0;
                if (send_request(rm, t, s, r) == 0)
                    r->sent = true;
                else
                    t->slots[s] = SLOT_FREE;
            }
        }
    }
}

/* ---- Registration and heartbeats ---- */

static void on_lost(void *arg, const char *peer_id, const char *peer_addr) {
    sl_rm_service_t *rm = arg;
    char reason[128];
    snprintf(reason, sizeof reason, "no heartbeat answer for %u ms", rm->cfg.heartbeat_timeout_ms);
    pthread_mutex_lock(&rm->mu);
    for (uint32_t i = 0; i < rm->ntms; i++)
        if (strcmp(rm->tms[i]->id, peer_id) == 0) {
            drop_tm(rm, i, reason);
            break;
        }
    pthread_mutex_unlock(&rm->mu);
}

/* A slot report (heartbeat answer): slots the TaskManager has free again become free here,
 * unless we reserved them meanwhile. */
static void on_payload(void *arg, const char *peer_id, const uint8_t *p, size_t len) {
    sl_rm_service_t *rm = arg;
    Sluice__Rpc__SlotReport *r = len ? sluice__rpc__slot_report__unpack(&sl__rpc_pb_allocator, len, p) : NULL;
    if (r == NULL)
        return;
    pthread_mutex_lock(&rm->mu);
    tm_t *t = find_tm(rm, peer_id);
    bool all_free = t != NULL;
    for (size_t i = 0; t && i < r->n_slots; i++) {
        uint32_t s = r->slots[i]->slot_index;
        if (s >= t->nslots)
            continue;
        bool free_there = r->slots[i]->state == SLUICE__RPC__SLOT_STATE__SLOT_FREE;
        if (free_there && t->slots[s] == SLOT_TAKEN)
            t->slots[s] = SLOT_FREE;
        else if (!free_there)
            t->slots[s] = SLOT_TAKEN;
        all_free &= t->slots[s] == SLOT_FREE;
    }
    if (t && all_free && t->idle_since == 0)
        t->idle_since = sl_monotonic_ms();
    else if (t && !all_free)
        t->idle_since = 0;
    match(rm);
    pthread_mutex_unlock(&rm->mu);
    sluice__rpc__slot_report__free_unpacked(r, &sl__rpc_pb_allocator);
}

static void reply_ack(sl_rm_service_t *rm, sl_rpc_request_t *req, const char *tm_id) {
    Sluice__Rpc__RegistrationAck ack = SLUICE__RPC__REGISTRATION_ACK__INIT;
    ack.rm_id = (char *)sl_rpc_endpoint_id(rm->cfg.ep);
    ack.registration_id = (char *)tm_id;
    ack.heartbeat_interval_ms = rm->cfg.heartbeat_interval_ms;
    ack.heartbeat_timeout_ms = rm->cfg.heartbeat_timeout_ms;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_REGISTRATION_ACK;
    env.registration_ack = &ack;
    sl_rpc_reply(req, &env);
}

/* ---- TaskManagers being started ---- */

static starting_t *find_starting(sl_rm_service_t *rm, const char *tm_id) {
    for (uint32_t i = 0; i < rm->nstarting; i++)
        if (strcmp(rm->starting[i].tm_id, tm_id) == 0)
            return &rm->starting[i];
    return NULL;
}

static void remove_starting(sl_rm_service_t *rm, starting_t *s) { *s = rm->starting[--rm->nstarting]; }

/* Under the lock: TaskManagers started or being started that have not registered. A start
 * in flight counts: a second request must not start another one for the same slots. */
static uint32_t starting_count(const sl_rm_service_t *rm) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < rm->nstarting; i++)
        n += !rm->starting[i].registered;
    return n;
}

/* Under the lock: a TaskManager we started has arrived. If its start has not completed yet
 * (a fast local child, a tick not yet run), the completion hands it its worker id. */
static void claim_starting(sl_rm_service_t *rm, tm_t *t) {
    starting_t *s = find_starting(rm, t->id);
    if (s == NULL)
        return;
    if (s->worker[0] == '\0') {
        s->registered = true;
        return;
    }
    snprintf(t->worker, sizeof t->worker, "%s", s->worker);
    remove_starting(rm, s);
}

static void on_register(sl_rm_service_t *rm, sl_rpc_conn_t *conn, sl_rpc_request_t *req,
                        const Sluice__Rpc__RegisterTaskManager *m) {
    if (m->tm_id[0] == '\0' || m->num_slots == 0 || m->num_slots > 4096) {
        sl_rpc_reply_error(req, SL_EINVAL, "registration needs a TaskManager id and 1..4096 slots");
        return;
    }
    pthread_mutex_lock(&rm->mu);
    tm_t *t = NULL;
    int rc = find_tm(rm, m->tm_id) ? SL_EEXIST : rm->ntms == MAX_TMS ? SL_ERANGE : 0;
    if (rc == 0 && ((t = sl_calloc(1, sizeof *t)) == NULL || (t->slots = sl_calloc(m->num_slots, 1)) == NULL ||
                    (t->allocs = sl_calloc(m->num_slots, sizeof *t->allocs)) == NULL))
        rc = SL_ENOMEM;
    if (rc) {
        pthread_mutex_unlock(&rm->mu);
        if (t)
            free_tm(t);
        sl_rpc_reply_error(req, rc, rc == SL_EEXIST ? "a TaskManager with this id is registered already"
                                                    : sl_strerror(rc));
        return;
    }
    snprintf(t->id, sizeof t->id, "%s", m->tm_id);
    snprintf(t->addr, sizeof t->addr, "%s", sl_rpc_conn_peer_addr(conn));
    sl_rpc_conn_ref(conn);
    t->conn = conn;
    t->nslots = m->num_slots;
    t->idle_since = sl_monotonic_ms();
    snprintf(t->data_host, sizeof t->data_host, "%s", m->data_host);
    t->data_port = (int)m->data_port;
    claim_starting(rm, t);
    rm->tms[rm->ntms++] = t;
    for (uint32_t i = 0; i < rm->nunwatch; i++)
        if (strcmp(rm->unwatch[i], t->id) == 0) { /* back after a loss: watch the new connection */
            memcpy(rm->unwatch[i], rm->unwatch[--rm->nunwatch], sizeof rm->unwatch[i]);
            sl_heartbeat_unmonitor(rm->hb, t->id); /* on the loop thread, not in a heartbeat tick */
            break;
        }
    int mrc = sl_heartbeat_monitor(rm->hb, t->id, conn);
    if (mrc) /* still noticed when its connection closes, but not if it hangs */
        SL_WARN("resourcemanager: cannot watch TaskManager %s with heartbeats: %s", t->id, sl_strerror(mrc));
    SL_INFO("resourcemanager: TaskManager %s at %s registered with %u slots", t->id, t->addr, t->nslots);
    reply_ack(rm, req, t->id);
    match(rm);
    pthread_mutex_unlock(&rm->mu);
}

bool sl_rm_service_handle(sl_rm_service_t *rm, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg) {
    if (msg->body_case != SLUICE__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER)
        return false;
    if (req)
        on_register(rm, conn, req, msg->register_task_manager);
    return true;
}

void sl_rm_service_conn_closed(sl_rm_service_t *rm, sl_rpc_conn_t *conn) {
    pthread_mutex_lock(&rm->mu);
    for (uint32_t i = 0; i < rm->ntms; i++)
        if (rm->tms[i]->conn == conn) {
            drop_tm(rm, i, "connection closed");
            break;
        }
    pthread_mutex_unlock(&rm->mu);
}

/* ---- Requests from JobMasters ---- */

int sl_rm_service_request_slot(sl_rm_service_t *rm, const char *job_id, const char *allocation_id,
                               sl_rm_request_failed_cb failed, void *arg) {
    pthread_mutex_lock(&rm->mu);
    int rc = find_req(rm, allocation_id) ? SL_EEXIST : rm->nreqs == MAX_REQUESTS ? SL_ERANGE : 0;
    if (rc == 0 && rm->nreqs == rm->reqs_cap) {
        uint32_t cap = rm->reqs_cap ? rm->reqs_cap * 2 : 16;
        request_t *n = sl_realloc(rm->reqs, cap * sizeof *n);
        if (n == NULL)
            rc = SL_ENOMEM;
        else
            rm->reqs = n, rm->reqs_cap = cap;
    }
    if (rc == 0) {
        request_t *r = &rm->reqs[rm->nreqs++];
        memset(r, 0, sizeof *r);
        snprintf(r->allocation_id, sizeof r->allocation_id, "%s", allocation_id);
        snprintf(r->job_id, sizeof r->job_id, "%s", job_id);
        r->deadline = sl_monotonic_ms() + rm->cfg.slot_request_timeout_ms;
        r->failed = failed;
        r->arg = arg;
        match(rm);
    }
    pthread_mutex_unlock(&rm->mu);
    return rc;
}

void sl_rm_service_cancel_request(sl_rm_service_t *rm, const char *allocation_id) {
    pthread_mutex_lock(&rm->mu);
    request_t *r = find_req(rm, allocation_id);
    if (r) /* if a TaskManager has it, its offer will find no taker and the slot goes free */
        remove_req(rm, r);
    pthread_mutex_unlock(&rm->mu);
}

int sl_rm_service_free_slot(sl_rm_service_t *rm, const char *tm_id, const char *allocation_id) {
    pthread_mutex_lock(&rm->mu);
    tm_t *t = find_tm(rm, tm_id);
    int rc = t ? 0 : SL_ENOENT;
    if (t) {
        Sluice__Rpc__FreeSlot fs = SLUICE__RPC__FREE_SLOT__INIT;
        fs.allocation_id = (char *)allocation_id;
        sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
        env.body_case = SLUICE__RPC__ENVELOPE__BODY_FREE_SLOT;
        env.free_slot = &fs;
        rc = sl_rpc_send(t->conn, &env);
        /* Free here at once: waiting for the next slot report would start new TaskManagers
         * for requests this slot can serve now. */
        for (uint32_t i = 0; i < t->nslots; i++)
            if (t->slots[i] == SLOT_TAKEN && strcmp(t->allocs[i], allocation_id) == 0) {
                t->slots[i] = SLOT_FREE;
                t->allocs[i][0] = '\0';
            }
        match(rm);
    }
    pthread_mutex_unlock(&rm->mu);
    return rc;
}

/* ---- Tick: timeouts, the driver ---- */

static void expire_requests(sl_rm_service_t *rm, int64_t now) {
    for (uint32_t i = 0; i < rm->nreqs;) {
        request_t *r = &rm->reqs[i];
        if (r->sent || now < r->deadline) {
            i++;
            continue;
        }
        uint32_t free_slots = 0;
        for (uint32_t k = 0; k < rm->ntms; k++)
            for (uint32_t s = 0; s < rm->tms[k]->nslots; s++)
                free_slots += rm->tms[k]->slots[s] == SLOT_FREE;
        char msg[800];
        snprintf(msg, sizeof msg, "no slot for job %s within %u ms (slot.request.timeout): %u TaskManagers "
                 "registered with %u free slots, %u starting, driver '%s'%s%.200s", r->job_id,
                 rm->cfg.slot_request_timeout_ms, rm->ntms, free_slots, starting_count(rm),
                 sl_rm_driver_kind(rm->cfg.driver), rm->driver_error[0] ? "; last driver error: " : "",
                 rm->driver_error);
        request_t copy = *r;
        remove_req(rm, r);
        if (copy.failed)
            copy.failed(copy.arg, copy.allocation_id, SL_ENOSLOT, msg);
    }
}

/* Under the lock: queues the start of one TaskManager; it counts as starting from now on. */
static int start_one(sl_rm_service_t *rm) {
    char id[32];
    snprintf(id, sizeof id, "tm-%u", rm->next_tm + 1);
    const char *argv[64];
    char subst[64][256];
    uint32_t n = 0;
    for (; rm->cfg.tm_argv[n] && n < 63; n++) {
        const char *a = rm->cfg.tm_argv[n], *at = strstr(a, "{id}");
        if (at == NULL) {
            argv[n] = a;
            continue;
        }
        snprintf(subst[n], sizeof subst[n], "%.*s%s%s", (int)(at - a), a, id, at + 4);
        argv[n] = subst[n];
    }
    argv[n] = NULL;
    sl_rm_op_t *op;
    int rc = sl_rm_op_start(id, &rm->cfg.tm_profile, argv, rm->cfg.tm_env, &op);
    if (rc == 0 && (rc = sl_rm_driver_thread_submit(rm->dt, op)) != 0)
        sl_rm_op_free(op);
    if (rc) {
        snprintf(rm->driver_error, sizeof rm->driver_error, "cannot queue the start: %s", sl_strerror(rc));
        SL_WARN("resourcemanager: cannot start a TaskManager: %s", rm->driver_error);
        return rc;
    }
    rm->next_tm++;
    starting_t *s = &rm->starting[rm->nstarting++];
    memset(s, 0, sizeof *s);
    snprintf(s->tm_id, sizeof s->tm_id, "%s", id);
    return 0;
}

/* Under the lock: the driver cannot start TaskManagers and nothing else could serve the
 * requests, so they fail now rather than at their timeout, with the driver's reason. */
static void fail_unservable(sl_rm_service_t *rm) {
    if (starting_count(rm) || rm->ntms)
        return;
    char msg[700];
    snprintf(msg, sizeof msg, "cannot start a TaskManager (driver '%s'): %s", sl_rm_driver_kind(rm->cfg.driver),
             rm->driver_error);
    for (uint32_t i = 0; i < rm->nreqs;) {
        if (rm->reqs[i].sent) {
            i++;
            continue;
        }
        request_t copy = rm->reqs[i];
        remove_req(rm, &rm->reqs[i]);
        if (copy.failed)
            copy.failed(copy.arg, copy.allocation_id, SL_ENOSLOT, msg);
    }
}

static void start_needed(sl_rm_service_t *rm) {
    if (rm->cfg.tm_argv == NULL || strcmp(sl_rm_driver_kind(rm->cfg.driver), "standalone") == 0)
        return;
    uint32_t unmatched = 0, per_tm = rm->cfg.tm_profile.slots > 0 ? (uint32_t)rm->cfg.tm_profile.slots : 1;
    for (uint32_t i = 0; i < rm->nreqs; i++)
        unmatched += !rm->reqs[i].sent;
    uint32_t starting = starting_count(rm);
    while (unmatched > starting * per_tm && rm->nstarting < MAX_TMS &&
           (rm->cfg.max_taskmanagers == 0 || rm->ntms + starting < rm->cfg.max_taskmanagers)) {
        if (start_one(rm) != 0) {
            fail_unservable(rm);
            break;
        }
        starting++;
    }
}

/* Under the lock: a start the driver thread finished. */
static void start_done(sl_rm_service_t *rm, const sl_rm_op_t *op) {
    starting_t *s = find_starting(rm, op->tag);
    if (s == NULL) /* only its start removes an entry with no worker id */
        return;
    if (op->status) {
        SL_WARN("resourcemanager: cannot start a TaskManager: %s", op->err);
        snprintf(rm->driver_error, sizeof rm->driver_error, "%s", op->err);
        remove_starting(rm, s);
        fail_unservable(rm);
        return;
    }
    rm->started++;
    SL_INFO("resourcemanager: started TaskManager %s (%s)", op->tag, op->worker);
    if (!s->registered) { /* its registration claims the worker */
        snprintf(s->worker, sizeof s->worker, "%s", op->worker);
        return;
    }
    tm_t *t = find_tm(rm, op->tag);
    if (t)
        snprintf(t->worker, sizeof t->worker, "%s", op->worker);
    else /* registered and dropped already; the driver still owns it and poll reports its end */
        SL_INFO("resourcemanager: TaskManager %s (%s) is gone already", op->tag, op->worker);
    remove_starting(rm, s);
}

/* Under the lock: a poll the driver thread finished. A worker that ended before its
 * TaskManager registered no longer counts as starting, so its requests start another. */
static void poll_done(sl_rm_service_t *rm, const sl_rm_op_t *op) {
    rm->polling = false;
    if (op->status)
        SL_WARN("resourcemanager: driver: %s", op->err);
    for (size_t k = 0; k < op->nended; k++)
        for (uint32_t i = 0; i < rm->nstarting; i++) {
            starting_t *s = &rm->starting[i];
            if (strcmp(s->worker, op->ended[k].id) != 0)
                continue;
            SL_WARN("resourcemanager: TaskManager %s ended before it registered: %s", s->tm_id,
                    op->ended[k].reason);
            remove_starting(rm, s);
            break;
        }
}

/* Under the lock: takes in what the driver thread finished since the last tick. */
static void collect_done(sl_rm_service_t *rm) {
    sl_rm_op_t *op;
    while ((op = sl_rm_driver_thread_take_done(rm->dt)) != NULL) {
        switch (op->kind) {
        case SL_RM_OP_START:
            start_done(rm, op);
            break;
        case SL_RM_OP_STOP:
            if (op->status)
                SL_WARN("resourcemanager: stopping %s: %s", op->tag, op->err);
            break;
        case SL_RM_OP_POLL:
            poll_done(rm, op);
            break;
        }
        sl_rm_op_free(op);
    }
}

static void stop_idle(sl_rm_service_t *rm, int64_t now) {
    for (uint32_t i = 0; i < rm->ntms; i++) {
        tm_t *t = rm->tms[i];
        if (t->worker[0] == '\0' || t->idle_since == 0 || now - t->idle_since < rm->cfg.idle_timeout_ms)
            continue;
        bool pending = false;
        for (uint32_t r = 0; r < rm->nreqs; r++)
            pending |= !rm->reqs[r].sent;
        if (pending)
            continue;
        sl_rm_op_t *op;
        int rc = sl_rm_op_stop(t->id, t->worker, &op);
        if (rc == 0 && (rc = sl_rm_driver_thread_submit(rm->dt, op)) != 0)
            sl_rm_op_free(op);
        if (rc) { /* still idle and ours: the next tick asks again */
            SL_WARN("resourcemanager: cannot stop TaskManager %s now: %s", t->id, sl_strerror(rc));
            continue;
        }
        SL_INFO("resourcemanager: stopping TaskManager %s (%s), idle for %lld ms", t->id, t->worker,
                (long long)(now - t->idle_since));
        t->worker[0] = '\0'; /* asked once; its connection closing removes it */
        t->stopping = true;
    }
}

/* Under the lock: asks for the driver's news, unless the last question is still open (a slow
 * squeue must not pile up polls behind it). */
static void poll_driver(sl_rm_service_t *rm) {
    if (rm->polling)
        return;
    sl_rm_op_t *op;
    int rc = sl_rm_op_poll(&op);
    if (rc == 0 && (rc = sl_rm_driver_thread_submit(rm->dt, op)) != 0)
        sl_rm_op_free(op);
    if (rc == 0)
        rm->polling = true;
    else if (rc != SL_ECANCELED)
        SL_WARN("resourcemanager: cannot poll the driver now: %s", sl_strerror(rc));
}

static void unwatch_dropped(sl_rm_service_t *rm) {
    char ids[16][64];
    uint32_t n;
    do {
        pthread_mutex_lock(&rm->mu);
        n = rm->nunwatch < 16 ? rm->nunwatch : 16;
        rm->nunwatch -= n;
        memcpy(ids, rm->unwatch[rm->nunwatch], n * sizeof ids[0]);
        pthread_mutex_unlock(&rm->mu);
        for (uint32_t i = 0; i < n; i++)
            sl_heartbeat_unmonitor(rm->hb, ids[i]);
    } while (n == 16);
}

void sl_rm_service_tick(sl_rm_service_t *rm) {
    unwatch_dropped(rm);
    pthread_mutex_lock(&rm->mu);
    int64_t now = sl_monotonic_ms();
    collect_done(rm);
    expire_requests(rm, now);
    match(rm);
    start_needed(rm);
    if (rm->cfg.idle_timeout_ms)
        stop_idle(rm, now);
    poll_driver(rm);
    pthread_mutex_unlock(&rm->mu);
}

int sl_rm_service_tm_info(sl_rm_service_t *rm, const char *tm_id, char *host, size_t hostlen, int *port,
                          sl_rpc_conn_t **conn) {
    pthread_mutex_lock(&rm->mu);
    tm_t *t = find_tm(rm, tm_id);
    if (t) {
        snprintf(host, hostlen, "%s", t->data_host);
        *port = t->data_port;
        sl_rpc_conn_ref(t->conn);
        *conn = t->conn;
    }
    pthread_mutex_unlock(&rm->mu);
    return t ? 0 : SL_ENOENT;
}

sl_rm_stats_t sl_rm_service_stats(sl_rm_service_t *rm) {
    sl_rm_stats_t s = {0};
    pthread_mutex_lock(&rm->mu);
    s.registered = rm->ntms;
    for (uint32_t k = 0; k < rm->ntms; k++)
        for (uint32_t i = 0; i < rm->tms[k]->nslots; i++)
            s.free_slots += rm->tms[k]->slots[i] == SLOT_FREE;
    for (uint32_t i = 0; i < rm->nreqs; i++)
        s.pending += !rm->reqs[i].sent;
    s.starting = starting_count(rm);
    s.started = rm->started;
    s.lost = rm->lost;
    pthread_mutex_unlock(&rm->mu);
    return s;
}

/* ---- Life cycle ---- */

int sl_rm_service_create(const sl_rm_service_config_t *cfg, sl_rm_service_t **out) {
    if (cfg->ep == NULL || cfg->driver == NULL || cfg->slot_request_timeout_ms == 0)
        return SL_EINVAL;
    sl_rm_service_t *rm = sl_calloc(1, sizeof *rm);
    if (rm == NULL)
        return SL_ENOMEM;
    rm->cfg = *cfg;
    pthread_mutex_init(&rm->mu, NULL);
    sl_heartbeat_config_t hc = {.interval_ms = cfg->heartbeat_interval_ms,
                                .timeout_ms = cfg->heartbeat_timeout_ms,
                                .on_lost = on_lost,
                                .on_payload = on_payload,
                                .arg = rm};
    int rc = sl_rm_driver_thread_create(cfg->driver, &rm->dt);
    if (rc == 0 && (rc = sl_heartbeat_create(cfg->ep, &hc, &rm->hb)) != 0)
        sl_rm_driver_thread_destroy(rm->dt);
    if (rc) {
        pthread_mutex_destroy(&rm->mu);
        sl_free(rm);
        return rc;
    }
    *out = rm;
    return 0;
}

void sl_rm_service_shutdown(sl_rm_service_t *rm) {
    pthread_mutex_lock(&rm->mu);
    rm->shutting_down = true;
    pthread_mutex_unlock(&rm->mu);
    /* Starts still queued would only make TaskManagers for a JobManager that is going away. */
    sl_rm_driver_thread_cancel(rm->dt);
}

void sl_rm_service_destroy(sl_rm_service_t *rm) {
    if (rm == NULL)
        return;
    /* Joined before anything else: the caller may destroy the driver as soon as we return,
     * and its destroy stops every worker a completed start left behind. */
    sl_rm_driver_thread_destroy(rm->dt);
    sl_heartbeat_destroy(rm->hb);
    for (uint32_t i = 0; i < rm->ntms; i++) {
        sl_rpc_conn_close(rm->tms[i]->conn);
        rm->tms[i]->conn = NULL;
        free_tm(rm->tms[i]);
    }
    sl_free(rm->reqs);
    pthread_mutex_destroy(&rm->mu);
    sl_free(rm);
}
