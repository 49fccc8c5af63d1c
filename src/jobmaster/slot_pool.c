/* SlotPool (see slot_pool.h). */
#include "jobmaster/slot_pool.h"

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/log.h"

static atomic_uint_fast64_t next_allocation;

struct sl_slot_pool_s {
    sl_rm_service_t *rm;
    char job_id[64];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sl_slot_t *slots;
    uint32_t n, offered;
    int status;
    char error[512];
};

static void fail(sl_slot_pool_t *p, int status, const char *msg) {
    pthread_mutex_lock(&p->mu);
    if (p->status == 0) {
        p->status = status;
        snprintf(p->error, sizeof p->error, "%s", msg);
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void on_request_failed(void *arg, const char *allocation_id, int status, const char *message) {
    fail(arg, status, message);
}

int sl_slot_pool_create(sl_rm_service_t *rm, const char *job_id, uint32_t n, sl_slot_pool_t **out) {
    if (rm == NULL || job_id == NULL || n == 0)
        return SL_EINVAL;
    sl_slot_pool_t *p = sl_calloc(1, sizeof *p);
    if (p == NULL || (p->slots = sl_calloc(n, sizeof *p->slots)) == NULL) {
        sl_free(p);
        return SL_ENOMEM;
    }
    p->rm = rm;
    p->n = n;
    snprintf(p->job_id, sizeof p->job_id, "%s", job_id);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (uint32_t i = 0; i < n; i++)
        snprintf(p->slots[i].allocation_id, sizeof p->slots[i].allocation_id, "alloc-%llu",
                 (unsigned long long)atomic_fetch_add(&next_allocation, 1) + 1);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = sl_rm_service_request_slot(rm, job_id, p->slots[i].allocation_id, on_request_failed, p);
    if (rc) {
        sl_slot_pool_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

static sl_slot_t *find(sl_slot_pool_t *p, const char *alloc) {
    for (uint32_t i = 0; i < p->n; i++)
        if (strcmp(p->slots[i].allocation_id, alloc) == 0)
            return &p->slots[i];
    return NULL;
}

void sl_slot_pool_offer(sl_slot_pool_t *p, sl_rpc_request_t *req, const Sluice__Rpc__OfferSlots *m) {
    char **accepted = sl_calloc(m->n_slots ? m->n_slots : 1, sizeof *accepted);
    size_t na = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; accepted && i < m->n_slots; i++) {
        sl_slot_t *s = find(p, m->slots[i]->allocation_id);
        if (s == NULL || s->offered || p->status)
            continue;
        s->offered = 1;
        s->slot_index = m->slots[i]->slot_index;
        snprintf(s->tm_id, sizeof s->tm_id, "%s", m->tm_id);
        p->offered++;
        accepted[na++] = m->slots[i]->allocation_id;
    }
    if (p->offered == p->n)
        pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    Sluice__Rpc__OfferSlotsAck ack = SLUICE__RPC__OFFER_SLOTS_ACK__INIT;
    ack.n_accepted_allocation_ids = na;
    ack.accepted_allocation_ids = accepted;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_OFFER_SLOTS_ACK;
    env.offer_slots_ack = &ack;
    sl_rpc_reply(req, &env);
    sl_free(accepted);
}

void sl_slot_pool_tm_lost(sl_slot_pool_t *p, const char *tm_id, const char *addr) {
    bool ours = false;
    pthread_mutex_lock(&p->mu);
    for (uint32_t i = 0; i < p->n; i++)
        ours |= p->slots[i].offered && strcmp(p->slots[i].tm_id, tm_id) == 0;
    pthread_mutex_unlock(&p->mu);
    if (ours) {
        char msg[256];
        snprintf(msg, sizeof msg, "TaskManager %s at %s, which held slots of job %s, was lost", tm_id, addr, p->job_id);
        fail(p, SL_EFAILED, msg);
    }
}

int sl_slot_pool_wait(sl_slot_pool_t *p, int64_t timeout_ms, char *err, size_t errlen) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (p->status == 0 && p->offered < p->n && rc == 0)
        rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    int status = p->status;
    if (status)
        snprintf(err, errlen, "%s", p->error);
    else if (p->offered < p->n) {
        snprintf(err, errlen, "job %s: %u of %u slots after %lld ms", p->job_id, p->offered, p->n,
                 (long long)timeout_ms);
        status = SL_ETIMEDOUT;
    }
    pthread_mutex_unlock(&p->mu);
    return status;
}

uint32_t sl_slot_pool_slots(sl_slot_pool_t *p, const sl_slot_t **slots) {
    *slots = p->slots;
    return p->n;
}

const char *sl_slot_pool_job(const sl_slot_pool_t *p) { return p->job_id; }

void sl_slot_pool_destroy(sl_slot_pool_t *p) {
    if (p == NULL)
        return;
    for (uint32_t i = 0; i < p->n; i++) {
        if (p->slots[i].offered)
            sl_rm_service_free_slot(p->rm, p->slots[i].tm_id, p->slots[i].allocation_id);
        else
            sl_rm_service_cancel_request(p->rm, p->slots[i].allocation_id);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    sl_free(p->slots);
    sl_free(p);
}
