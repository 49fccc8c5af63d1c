/* The JobManager process (see jobmanager.h): endpoint, driver, ResourceManager, pools. */
#include "jobmaster/jobmanager.h"

#include <sluice/error.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/log.h"
#include "jobmaster/dispatcher.h"

#define MAX_POOLS 64

struct sl_jobmanager_s {
    sl_rpc_endpoint_t *ep;
    sl_rm_driver_t *driver;
    sl_rm_service_t *rm;
    sl_dispatcher_t *dispatcher;
    int port;
    pthread_mutex_t mu; /* guards pools */
    sl_slot_pool_t *pools[MAX_POOLS];
    char addr[256], slots[16], secret_env[300], hb[2][64];
    const char *argv[16];
    const char *env[2];
};

static sl_slot_pool_t *pool_of(sl_jobmanager_t *jm, const char *job_id) {
    for (int i = 0; i < MAX_POOLS; i++)
        if (jm->pools[i] && strcmp(sl_slot_pool_job(jm->pools[i]), job_id) == 0)
            return jm->pools[i];
    return NULL;
}

static void handler(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg, void *arg) {
    sl_jobmanager_t *jm = arg;
    if (jm->rm && sl_rm_service_handle(jm->rm, conn, req, msg))
        return;
    if (jm->dispatcher && sl_dispatcher_handle(jm->dispatcher, conn, req, msg))
        return;
    if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY_OFFER_SLOTS && req) {
        pthread_mutex_lock(&jm->mu);
        sl_slot_pool_t *p = pool_of(jm, msg->offer_slots->job_id);
        if (p)
            sl_slot_pool_offer(p, req, msg->offer_slots);
        pthread_mutex_unlock(&jm->mu);
        if (p == NULL)
            sl_rpc_reply_error(req, SL_ENOENT, "no such job here: the offer is declined");
        return;
    }
    if (req)
        sl_rpc_reply_error(req, SL_EINVAL, "the JobManager does not handle this message yet");
}

static void on_close(sl_rpc_conn_t *conn, int status, void *arg) {
    sl_jobmanager_t *jm = arg;
    if (jm->rm)
        sl_rm_service_conn_closed(jm->rm, conn);
}

static void on_tm_lost(void *arg, const char *tm_id, const char *addr, const char *reason) {
    sl_jobmanager_t *jm = arg;
    pthread_mutex_lock(&jm->mu);
    for (int i = 0; i < MAX_POOLS; i++)
        if (jm->pools[i])
            sl_slot_pool_tm_lost(jm->pools[i], tm_id, addr);
    pthread_mutex_unlock(&jm->mu);
}

static int create_driver(sl_jobmanager_t *jm, const sl_config_t *c, char *err, size_t errlen) {
    const char *logdir = sl_config_str(c, "resourcemanager.log-dir");
    const char *part = sl_config_str(c, "resourcemanager.slurm.partition");
    sl_rm_options_t o = {.log_dir = logdir && logdir[0] ? logdir : NULL,
                         .partition = part && part[0] ? part : NULL};
    return sl_rm_driver_create(sl_config_str(c, "resourcemanager.driver"), &o, &jm->driver, err, errlen);
}

/* `sluice taskmanager --jobmanager HOST:PORT --id {id} --slots N -D heartbeat...`, with the
 * secret in the environment rather than on a command line anyone can read. */
static void taskmanager_command(sl_jobmanager_t *jm, const sl_jobmanager_config_t *cfg, const char *host) {
    const sl_config_t *c = cfg->config;
    snprintf(jm->addr, sizeof jm->addr, "%s:%d", host, jm->port);
    snprintf(jm->slots, sizeof jm->slots, "%lld", (long long)sl_config_int(c, "taskmanager.numberOfTaskSlots"));
    snprintf(jm->hb[0], sizeof jm->hb[0], "heartbeat.interval=%lldms",
             (long long)sl_config_duration_ms(c, "heartbeat.interval"));
    snprintf(jm->hb[1], sizeof jm->hb[1], "heartbeat.timeout=%lldms",
             (long long)sl_config_duration_ms(c, "heartbeat.timeout"));
    snprintf(jm->secret_env, sizeof jm->secret_env, "SLUICE_SECRET=%s", cfg->secret);
    const char *a[] = {cfg->sluice_bin, "taskmanager", "--jobmanager", jm->addr, "--id", "{id}", "--slots", jm->slots,
                       "-D", jm->hb[0], "-D", jm->hb[1], NULL};
    memcpy(jm->argv, a, sizeof a);
    jm->env[0] = jm->secret_env;
    jm->env[1] = NULL;
}

static int create_rm(sl_jobmanager_t *jm, const sl_jobmanager_config_t *cfg) {
    const sl_config_t *c = cfg->config;
    sl_rm_service_config_t rc = {
        .ep = jm->ep,
        .driver = jm->driver,
        .tm_argv = jm->argv,
        .tm_env = jm->env,
        .tm_profile = {.cpu_cores = (double)sl_config_int(c, "taskmanager.cpu.cores"),
                       .memory_mib = sl_config_bytes(c, "taskmanager.memory.process.size") >> 20,
                       .slots = (int)sl_config_int(c, "taskmanager.numberOfTaskSlots")},
        .max_taskmanagers = (uint32_t)sl_config_int(c, "resourcemanager.max-taskmanagers"),
        .heartbeat_interval_ms = (uint32_t)sl_config_duration_ms(c, "heartbeat.interval"),
        .heartbeat_timeout_ms = (uint32_t)sl_config_duration_ms(c, "heartbeat.timeout"),
        .slot_request_timeout_ms = (uint32_t)sl_config_duration_ms(c, "slot.request.timeout"),
        .idle_timeout_ms = (uint32_t)sl_config_duration_ms(c, "resourcemanager.taskmanager-timeout"),
        .on_tm_lost = on_tm_lost,
        .arg = jm};
    return sl_rm_service_create(&rc, &jm->rm);
}

int sl_jobmanager_start(const sl_jobmanager_config_t *cfg, sl_jobmanager_t **out, char *err, size_t errlen) {
    sl_jobmanager_t *jm = sl_calloc(1, sizeof *jm);
    if (jm == NULL)
        return SL_ENOMEM;
    pthread_mutex_init(&jm->mu, NULL);
    const sl_config_t *c = cfg->config;
    const char *host = sl_config_str(c, "jobmanager.rpc.address");
    sl_rpc_endpoint_config_t ec = {.id = "jobmanager",
                                   .role = "jobmanager",
                                   .secret = (const uint8_t *)cfg->secret,
                                   .secret_len = strlen(cfg->secret),
                                   .handler = handler,
                                   .handler_arg = jm,
                                   .on_close = on_close,
                                   .on_close_arg = jm};
    int rc = sl_rpc_endpoint_create(&ec, &jm->ep);
    if (rc == 0)
        rc = sl_rpc_endpoint_start(jm->ep);
    if (rc == 0)
        rc = sl_rpc_listen(jm->ep, host, (int)sl_config_int(c, "jobmanager.rpc.port"), &jm->port, err, errlen);
    if (rc == 0)
        rc = create_driver(jm, c, err, errlen);
    if (rc == 0) {
        taskmanager_command(jm, cfg, host);
        if ((rc = create_rm(jm, cfg)) != 0)
            snprintf(err, errlen, "cannot start the ResourceManager: %s", sl_strerror(rc));
    }
    if (rc == 0)
        rc = sl_dispatcher_create(jm, &jm->dispatcher);
    if (rc) {
        if (err[0] == '\0')
            snprintf(err, errlen, "%s", sl_strerror(rc));
        sl_jobmanager_stop(jm);
        return rc;
    }
    *out = jm;
    return 0;
}

int sl_jobmanager_port(const sl_jobmanager_t *jm) { return jm->port; }
sl_rm_service_t *sl_jobmanager_rm(sl_jobmanager_t *jm) { return jm->rm; }
sl_dispatcher_t *sl_jobmanager_dispatcher(sl_jobmanager_t *jm) { return jm->dispatcher; }

int sl_jobmanager_add_pool(sl_jobmanager_t *jm, sl_slot_pool_t *pool) {
    int rc = SL_ERANGE;
    pthread_mutex_lock(&jm->mu);
    for (int i = 0; i < MAX_POOLS && rc; i++)
        if (jm->pools[i] == NULL) {
            jm->pools[i] = pool;
            rc = 0;
        }
    pthread_mutex_unlock(&jm->mu);
    return rc;
}

void sl_jobmanager_remove_pool(sl_jobmanager_t *jm, sl_slot_pool_t *pool) {
    pthread_mutex_lock(&jm->mu);
    for (int i = 0; i < MAX_POOLS; i++)
        if (jm->pools[i] == pool)
            jm->pools[i] = NULL;
    pthread_mutex_unlock(&jm->mu);
}

void sl_jobmanager_tick(sl_jobmanager_t *jm) { sl_rm_service_tick(jm->rm); }

void sl_jobmanager_stop(sl_jobmanager_t *jm) {
    if (jm == NULL)
        return;
    /* The endpoint first: no callback may reach the Dispatcher or the ResourceManager while
     * they go away, and JobMasters waiting on calls get them canceled. */
    if (jm->rm)
        sl_rm_service_shutdown(jm->rm);
    sl_rpc_endpoint_stop(jm->ep);
    sl_dispatcher_destroy(jm->dispatcher);
    sl_rm_service_destroy(jm->rm);
    sl_rm_driver_destroy(jm->driver);
    sl_rpc_endpoint_destroy(jm->ep);
    pthread_mutex_destroy(&jm->mu);
    sl_free(jm);
}
