/* TaskManager side of the slot protocol (see tm_service.h): registration, slot table, slot
 * requests turned into offers to the JobMaster, the slot report in heartbeat answers. */
#include "taskexecutor/tm_service.h"

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "rpc/heartbeat.h"
#include "rpc/rpc.h"

struct sl_tm_service_s {
    sl_tm_service_config_t cfg;
    char id[64];
    sl_rpc_endpoint_t *ep;
    sl_heartbeat_t *hb;
    sl_rpc_conn_t *jm;        /* the JobManager process: ResourceManager and JobMasters */
    char jm_addr[128];
    atomic_bool connected;
    pthread_mutex_t mu;       /* guards slots */
    sl_tm_slot_info_t *slots;
};

/* ---- Slot report: the heartbeat answer's payload ---- */

static void slot_report(void *arg, uint8_t **data, size_t *len) {
    sl_tm_service_t *tm = arg;
    uint32_t n = tm->cfg.slots;
    Sluice__Rpc__SlotStatus *st = sl_calloc(n, sizeof *st);
    Sluice__Rpc__SlotStatus **ptrs = sl_calloc(n, sizeof *ptrs);
    if (st == NULL || ptrs == NULL) {
        sl_free(st);
        sl_free(ptrs);
        return;
    }
    pthread_mutex_lock(&tm->mu);
    for (uint32_t i = 0; i < n; i++) {
        sluice__rpc__slot_status__init(&st[i]);
        st[i].slot_index = i;
        st[i].allocation_id = tm->slots[i].allocation_id;
        st[i].job_id = tm->slots[i].job_id;
        st[i].state = tm->slots[i].state == SL_TM_SLOT_FREE        ? SLUICE__RPC__SLOT_STATE__SLOT_FREE
                      : tm->slots[i].state == SL_TM_SLOT_ALLOCATED ? SLUICE__RPC__SLOT_STATE__SLOT_ALLOCATED
                                                                   : SLUICE__RPC__SLOT_STATE__SLOT_ACTIVE;
        ptrs[i] = &st[i];
    }
    Sluice__Rpc__SlotReport r = SLUICE__RPC__SLOT_REPORT__INIT;
    r.tm_id = tm->id;
    r.n_slots = n;
    r.slots = ptrs;
    size_t size = sluice__rpc__slot_report__get_packed_size(&r);
    uint8_t *buf = sl_malloc(size ? size : 1);
    if (buf) {
        sluice__rpc__slot_report__pack(&r, buf);
        *data = buf;
        *len = size;
    }
    pthread_mutex_unlock(&tm->mu);
    sl_free(st);
    sl_free(ptrs);
}

/* ---- Slot requests ---- */

typedef struct {
    sl_tm_service_t *tm;
    uint32_t slot;
    char allocation_id[64];
} offer_t;

static void set_slot(sl_tm_service_t *tm, uint32_t i, sl_tm_slot_state_t s, const char *alloc, const char *job) {
    pthread_mutex_lock(&tm->mu);
    tm->slots[i].state = s;
    snprintf(tm->slots[i].allocation_id, sizeof tm->slots[i].allocation_id, "%s", alloc);
    snprintf(tm->slots[i].job_id, sizeof tm->slots[i].job_id, "%s", job);
    pthread_mutex_unlock(&tm->mu);
}

static void on_offer_answer(int status, sl_rpc_msg_t *resp, void *arg) {
    offer_t *o = arg;
    sl_tm_service_t *tm = o->tm;
    bool accepted = false;
    if (status == 0 && resp && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_OFFER_SLOTS_ACK)
        for (size_t i = 0; i < resp->offer_slots_ack->n_accepted_allocation_ids; i++)
            accepted |= strcmp(resp->offer_slots_ack->accepted_allocation_ids[i], o->allocation_id) == 0;
    pthread_mutex_lock(&tm->mu);
    sl_tm_slot_info_t *s = &tm->slots[o->slot];
    bool still_ours = strcmp(s->allocation_id, o->allocation_id) == 0;
    if (still_ours && accepted)
        s->state = SL_TM_SLOT_ACTIVE;
    else if (still_ours)
        memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&tm->mu);
    if (!accepted)
        SL_INFO("taskmanager %s: offer of slot %u (%s) not accepted: %s", tm->id, o->slot, o->allocation_id,
                status ? sl_strerror(status) : "declined");
    sl_rpc_msg_free(resp);
    sl_free(o);
}

/* Offers slot i to the JobMaster, which lives in the JobManager process we are connected to. */
static void offer(sl_tm_service_t *tm, uint32_t i, const char *alloc, const char *job) {
    offer_t *o = sl_calloc(1, sizeof *o);
    if (o == NULL) {
        set_slot(tm, i, SL_TM_SLOT_FREE, "", "");
        return;
    }
    o->tm = tm;
    o->slot = i;
    snprintf(o->allocation_id, sizeof o->allocation_id, "%s", alloc);
    Sluice__Rpc__SlotOffer so = SLUICE__RPC__SLOT_OFFER__INIT, *sop = &so;
    so.allocation_id = o->allocation_id;
    so.slot_index = i;
    Sluice__Rpc__OfferSlots os = SLUICE__RPC__OFFER_SLOTS__INIT;
    os.tm_id = tm->id;
    os.job_id = (char *)job;
    os.n_slots = 1;
    os.slots = &sop;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_OFFER_SLOTS;
    env.offer_slots = &os;
    int rc = sl_rpc_call(tm->jm, &env, 10000, on_offer_answer, o);
    if (rc) {
        set_slot(tm, i, SL_TM_SLOT_FREE, "", "");
        sl_free(o);
    }
}

static void on_request_slot(sl_tm_service_t *tm, sl_rpc_request_t *req, const Sluice__Rpc__RequestSlot *rs) {
    int slot = -1;
    pthread_mutex_lock(&tm->mu);
    for (uint32_t i = 0; i < tm->cfg.slots && slot < 0; i++)
        if (tm->slots[i].state == SL_TM_SLOT_FREE)
            slot = (int)i;
    pthread_mutex_unlock(&tm->mu);
    if (slot < 0) {
        sl_rpc_reply_error(req, SL_ENOSLOT, "no free slot");
        return;
    }
    set_slot(tm, (uint32_t)slot, SL_TM_SLOT_ALLOCATED, rs->allocation_id, rs->job_id);
    Sluice__Rpc__Ack ack = SLUICE__RPC__ACK__INIT;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    sl_rpc_reply(req, &env);
    offer(tm, (uint32_t)slot, rs->allocation_id, rs->job_id);
}

static void on_free_slot(sl_tm_service_t *tm, const Sluice__Rpc__FreeSlot *fs) {
    pthread_mutex_lock(&tm->mu);
    for (uint32_t i = 0; i < tm->cfg.slots; i++)
        if (strcmp(tm->slots[i].allocation_id, fs->allocation_id) == 0)
            memset(&tm->slots[i], 0, sizeof tm->slots[i]);
    pthread_mutex_unlock(&tm->mu);
}

static void handler(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg, void *arg) {
    sl_tm_service_t *tm = arg;
    switch (msg->body_case) {
    case SLUICE__RPC__ENVELOPE__BODY_REQUEST_SLOT:
        if (req) {
            on_request_slot(tm, req, msg->request_slot);
            return;
        }
        break;
    case SLUICE__RPC__ENVELOPE__BODY_FREE_SLOT:
        on_free_slot(tm, msg->free_slot);
        if (req) {
            Sluice__Rpc__Ack ack = SLUICE__RPC__ACK__INIT;
            sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
            env.body_case = SLUICE__RPC__ENVELOPE__BODY_ACK;
            env.ack = &ack;
            sl_rpc_reply(req, &env);
        }
        return;
    default:
        if (tm->cfg.on_job_message && tm->cfg.on_job_message(tm->cfg.job_arg, conn, req, msg))
            return;
        break;
    }
    if (req)
        sl_rpc_reply_error(req, SL_EINVAL, "a TaskManager does not handle this message");
}

static void on_jm_lost(void *arg, const char *peer_id, const char *peer_addr) {
    sl_tm_service_t *tm = arg;
    atomic_store(&tm->connected, false);
    SL_WARN("taskmanager %s: JobManager %s at %s lost (no heartbeat answer within %u ms)", tm->id, peer_id, peer_addr,
            tm->cfg.heartbeat_timeout_ms);
}

static void on_close(sl_rpc_conn_t *conn, int status, void *arg) {
    sl_tm_service_t *tm = arg;
    if (conn == tm->jm && atomic_exchange(&tm->connected, false))
        SL_WARN("taskmanager %s: connection to the JobManager at %s closed", tm->id, tm->jm_addr);
}

/* ---- Life cycle ---- */

int sl_tm_service_create(const sl_tm_service_config_t *cfg, sl_tm_service_t **out) {
    if (cfg->id == NULL || cfg->id[0] == '\0' || cfg->secret == NULL || cfg->secret_len == 0 || cfg->slots == 0 ||
        cfg->slots > SL_TM_MAX_SLOTS)
        return SL_EINVAL;
    sl_tm_service_t *tm = sl_calloc(1, sizeof *tm);
    if (tm == NULL || (tm->slots = sl_calloc(cfg->slots, sizeof *tm->slots)) == NULL) {
        sl_free(tm);
        return SL_ENOMEM;
    }
    tm->cfg = *cfg;
    snprintf(tm->id, sizeof tm->id, "%s", cfg->id);
    pthread_mutex_init(&tm->mu, NULL);
    sl_rpc_endpoint_config_t ec = {.id = tm->id,
                                   .role = "taskmanager",
                                   .secret = cfg->secret,
                                   .secret_len = cfg->secret_len,
                                   .handler = handler,
                                   .handler_arg = tm,
                                   .on_close = on_close,
                                   .on_close_arg = tm,
                                   .heartbeat_payload = slot_report,
                                   .heartbeat_payload_arg = tm};
    int rc = sl_rpc_endpoint_create(&ec, &tm->ep);
    if (rc == 0)
        rc = sl_rpc_endpoint_start(tm->ep);
    sl_heartbeat_config_t hc = {.interval_ms = cfg->heartbeat_interval_ms,
                                .timeout_ms = cfg->heartbeat_timeout_ms,
                                .on_lost = on_jm_lost,
                                .arg = tm};
    if (rc == 0)
        rc = sl_heartbeat_create(tm->ep, &hc, &tm->hb);
    if (rc) {
        sl_tm_service_destroy(tm);
        return rc;
    }
    *out = tm;
    return 0;
}

static int register_once(sl_tm_service_t *tm, char *err, size_t errlen) {
    Sluice__Rpc__RegisterTaskManager r = SLUICE__RPC__REGISTER_TASK_MANAGER__INIT;
    r.tm_id = tm->id;
    r.num_slots = tm->cfg.slots;
    r.cpu_cores = tm->cfg.cpu_cores;
    r.memory_bytes = tm->cfg.memory_bytes;
    r.data_host = (char *)(tm->cfg.data_host ? tm->cfg.data_host : "");
    r.data_port = (uint32_t)tm->cfg.data_port;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT, *resp = NULL;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER;
    env.register_task_manager = &r;
    int rc = sl_rpc_call_sync(tm->jm, &env, 10000, &resp);
    if (rc == 0 && resp->body_case != SLUICE__RPC__ENVELOPE__BODY_REGISTRATION_ACK)
        rc = SL_EPROTO;
    if (rc)
        snprintf(err, errlen, "registration with the ResourceManager at %s refused: %s", tm->jm_addr,
                 resp && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_ERROR ? resp->error->message : sl_strerror(rc));
    sl_rpc_msg_free(resp);
    return rc;
}

int sl_tm_service_register(sl_tm_service_t *tm, const char *host, int port, uint32_t timeout_ms, char *err,
                           size_t errlen) {
    snprintf(tm->jm_addr, sizeof tm->jm_addr, "%s:%d", host, port);
    int64_t deadline = sl_monotonic_ms() + timeout_ms;
    int rc;
    for (;;) {
        uint32_t left = (uint32_t)(deadline - sl_monotonic_ms() > 1000 ? deadline - sl_monotonic_ms() : 1000);
        rc = sl_rpc_connect(tm->ep, host, port, left, &tm->jm, err, errlen);
        /* A JobManager still starting refuses: try again until the deadline. */
        if (rc != SL_ECONNREFUSED || sl_monotonic_ms() + 200 > deadline)
            break;
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (rc)
        return rc;
    if ((rc = register_once(tm, err, errlen)) == 0 && (rc = sl_heartbeat_monitor(tm->hb, "jobmanager", tm->jm)) == 0)
        atomic_store(&tm->connected, true);
    if (rc) {
        sl_rpc_conn_close(tm->jm);
        tm->jm = NULL;
    }
    return rc;
}

bool sl_tm_service_connected(sl_tm_service_t *tm) { return atomic_load(&tm->connected); }

sl_tm_slot_info_t sl_tm_service_slot(sl_tm_service_t *tm, uint32_t i) {
    sl_tm_slot_info_t s = {0};
    pthread_mutex_lock(&tm->mu);
    if (i < tm->cfg.slots)
        s = tm->slots[i];
    pthread_mutex_unlock(&tm->mu);
    return s;
}

void sl_tm_service_destroy(sl_tm_service_t *tm) {
    if (tm == NULL)
        return;
    sl_heartbeat_destroy(tm->hb);
    if (tm->jm)
        sl_rpc_conn_close(tm->jm);
    sl_rpc_endpoint_destroy(tm->ep);
    pthread_mutex_destroy(&tm->mu);
    sl_free(tm->slots);
    sl_free(tm);
}
