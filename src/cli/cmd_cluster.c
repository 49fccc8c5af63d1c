/* `sluice jobmanager` and `sluice taskmanager`: the processes of a cluster.
 *
 *   sluice jobmanager [--host H] [--port P] [-c FILE] [-D key=value]...
 *   sluice taskmanager --jobmanager HOST:PORT [--slots N] [--id ID] [-c FILE] [-D key=value]...
 *
 * Both authenticate with the cluster's shared secret (secret.c). The JobManager runs the
 * ResourceManager with the driver of resourcemanager.driver; a TaskManager registers, offers
 * its slots when asked, and exits when it loses the JobManager. */
#include <sluice/error.h>

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/log.h"
#include "jobmaster/jobmanager.h"
#include "minicluster/tm_job.h"
#include "network/net.h"
#include "rest/rest.h"
#include "rpc/tls.h"
#include "taskexecutor/tm_service.h"

static volatile sig_atomic_t stop_requested;
static void on_stop(int sig) { stop_requested = sig; }

static void install_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void set_or_die(sl_config_t *c, const char *key, const char *value) {
    char err[512];
    if (sl_config_set(c, key, value, err, sizeof err) != 0)
        sl_cli_die(2, "%s", err);
}

/* ---- TLS (security.ssl.internal.*) ---- */

/* The RPC endpoints of these processes are created inside the JobManager and TaskManager
 * services, so the context becomes the process default (rpc/tls.h) they pick up; the data
 * plane gets it explicitly. NULL when TLS is off; a bad file ends the process, named. */
static sl_tls_ctx_t *setup_tls(const sl_config_t *config, const char *who) {
    sl_tls_ctx_t *tls;
    char err[1024];
    if (sl_tls_ctx_from_config(config, &tls, err, sizeof err) != 0)
        sl_cli_die(1, "%s: %s", who, err);
    sl_tls_set_default(tls);
    return tls;
}

static void teardown_tls(sl_tls_ctx_t *tls) {
    sl_tls_set_default(NULL);
    sl_tls_ctx_destroy(tls);
}

/* TaskManagers that the JobManager starts (local and slurm drivers) get a command line fixed
 * by the JobManager; its TLS settings reach them through the environment instead. */
static const char *const tls_keys[] = {"security.ssl.internal.keystore", "security.ssl.internal.key",
                                       "security.ssl.internal.truststore"};
static const char *const tls_env[] = {"SLUICE_SSL_INTERNAL_KEYSTORE", "SLUICE_SSL_INTERNAL_KEY",
                                      "SLUICE_SSL_INTERNAL_TRUSTSTORE"};

static void export_tls(const sl_config_t *c) {
    if (!sl_config_bool(c, "security.ssl.internal.enabled"))
        return;
    setenv("SLUICE_SSL_INTERNAL_ENABLED", "true", 1);
    for (int i = 0; i < 3; i++) {
        char abs[PATH_MAX];
        const char *p = sl_config_str(c, tls_keys[i]);
        setenv(tls_env[i], realpath(p, abs) ? abs : p, 1);
    }
}

/* Explicit settings (-c, -D) win over the inherited ones. */
static void inherit_tls(sl_config_t *c) {
    const char *on = getenv("SLUICE_SSL_INTERNAL_ENABLED");
    if (!on || strcmp(on, "true") != 0 || sl_config_is_set(c, "security.ssl.internal.enabled"))
        return;
    set_or_die(c, "security.ssl.internal.enabled", "true");
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(tls_env[i]);
        if (v && !sl_config_is_set(c, tls_keys[i]))
            set_or_die(c, tls_keys[i], v);
    }
}

static void jm_usage(void) {
    fprintf(stderr, "usage: sluice jobmanager [--host HOST] [--port PORT] [-c FILE] [-D key=value]...\n"
                    "  resourcemanager.driver: standalone (TaskManagers started by hand), local, slurm\n"
                    "  REST API (job submission, status, cancel) on rest.bind-address:rest.port (127.0.0.1:8081)\n");
}

int sl_cmd_jobmanager(int argc, char **argv) {
    sl_cli_run_opts_t o = {0};
    if (sl_config_create(&o.config) != 0)
        sl_cli_die(1, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            jm_usage();
            return 0;
        } else if ((strcmp(a, "--host") == 0 || strcmp(a, "--port") == 0) && v) {
            set_or_die(o.config, a[2] == 'h' ? "jobmanager.rpc.address" : "jobmanager.rpc.port", v);
            i++;
        } else if (!sl_cli_common_option(&o, argc, argv, &i)) {
            jm_usage();
            sl_cli_die(2, "jobmanager: unknown option '%s'", a);
        }
    }
    char secret[256], err[1024] = "", bin[4096];
    if (sl_cli_load_secret(o.config, secret, sizeof secret, err, sizeof err) != 0)
        sl_cli_die(1, "jobmanager: %s", err);
    ssize_t n = readlink("/proc/self/exe", bin, sizeof bin - 1);
    bin[n > 0 ? n : 0] = '\0';
    sl_tls_ctx_t *tls = setup_tls(o.config, "jobmanager");
    export_tls(o.config);
    install_signals();
    /* Asking for any free RPC port (tests, several JobManagers on a machine) means no fixed
     * REST port either. */
    if (!sl_config_is_set(o.config, "rest.port") && sl_config_int(o.config, "jobmanager.rpc.port") == 0)
        set_or_die(o.config, "rest.port", "0");
    sl_jobmanager_config_t jc = {.config = o.config, .secret = secret, .sluice_bin = bin};
    sl_jobmanager_t *jm;
    if (sl_jobmanager_start(&jc, &jm, err, sizeof err) != 0)
        sl_cli_die(1, "jobmanager: %s", err);
    sl_rest_t *rest;
    if (sl_rest_start(o.config, jm, &rest, err, sizeof err) != 0) {
        sl_jobmanager_stop(jm);
        sl_cli_die(1, "jobmanager: %s (set rest.port)", err);
    }
    printf("jobmanager listening on %s:%d (resourcemanager.driver: %s%s)\n",
           sl_config_str(o.config, "jobmanager.rpc.address"), sl_jobmanager_port(jm),
           sl_config_str(o.config, "resourcemanager.driver"), tls ? ", TLS" : "");
    printf("REST API on %s://%s:%d/v1\n", sl_rest_scheme(rest), sl_config_str(o.config, "rest.bind-address"),
           sl_rest_port(rest));
    fflush(stdout);
    while (!stop_requested) {
        sl_jobmanager_tick(jm);
        nap_ms(100);
    }
    sl_rest_stop(rest); /* no new submissions while the jobs are stopped */
    sl_jobmanager_stop(jm);
    teardown_tls(tls);
    sl_config_destroy(o.config);
    return 0;
}

static void tm_usage(void) {
    fprintf(stderr, "usage: sluice taskmanager --jobmanager HOST:PORT [--slots N] [--id ID] [-c FILE] "
                    "[-D key=value]...\n");
}

static void split_address(const char *addr, char *host, size_t hostlen, int *port) {
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || colon == addr || *end != '\0' || p <= 0 || p > 65535)
        sl_cli_die(2, "taskmanager: --jobmanager must be HOST:PORT, not '%s'", addr ? addr : "");
    snprintf(host, hostlen, "%.*s", (int)(colon - addr), addr);
    *port = (int)p;
}

/* DeployJob, checkpoint triggers and notices, and CancelJob from the JobMaster go to this
 * TaskManager's job runs. */
static bool on_job_message(void *arg, sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg) {
    sl_tm_jobs_t *jobs = arg;
    if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY_DEPLOY_JOB && req) {
        sl_tm_jobs_deploy(jobs, conn, req, msg->deploy_job);
        return true;
    }
    if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY_TRIGGER_CHECKPOINT) {
        sl_tm_jobs_trigger(jobs, msg->trigger_checkpoint);
        if (req)
            sl_rpc_request_discard(req);
        return true;
    }
    if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY_NOTIFY_CHECKPOINT_COMPLETE) {
        sl_tm_jobs_notify_complete(jobs, msg->notify_checkpoint_complete);
        if (req)
            sl_rpc_request_discard(req);
        return true;
    }
    if (msg->body_case == SLUICE__RPC__ENVELOPE__BODY_CANCEL_JOB) {
        sl_tm_jobs_cancel(jobs, msg->cancel_job->job_id);
        if (req)
            sl_rpc_request_discard(req);
        return true;
    }
    return false;
}

int sl_cmd_taskmanager(int argc, char **argv) {
    sl_cli_run_opts_t o = {0};
    if (sl_config_create(&o.config) != 0)
        sl_cli_die(1, "out of memory");
    const char *jm_addr = NULL, *id = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            tm_usage();
            return 0;
        } else if (strcmp(a, "--jobmanager") == 0 && v) {
            jm_addr = argv[++i];
        } else if (strcmp(a, "--id") == 0 && v) {
            id = argv[++i];
        } else if (strcmp(a, "--slots") == 0 && v) {
            set_or_die(o.config, "taskmanager.numberOfTaskSlots", argv[++i]);
        } else if (!sl_cli_common_option(&o, argc, argv, &i)) {
            tm_usage();
            sl_cli_die(2, "taskmanager: unknown option '%s'", a);
        }
    }
    char host[256], secret[256], err[1024] = "", own_id[64];
    int port;
    split_address(jm_addr, host, sizeof host, &port);
    if (sl_cli_load_secret(o.config, secret, sizeof secret, err, sizeof err) != 0)
        sl_cli_die(1, "taskmanager: %s", err);
    if (id == NULL) {
        snprintf(own_id, sizeof own_id, "tm-%ld", (long)getpid());
        id = own_id;
    }
    inherit_tls(o.config);
    sl_tls_ctx_t *tls = setup_tls(o.config, "taskmanager");
    install_signals();
    /* The data plane first: its port goes with the registration. */
    const char *data_host = sl_config_str(o.config, "taskmanager.host");
    sl_net_config_t nc = {.id = id, .secret = (const uint8_t *)secret, .secret_len = strlen(secret),
                          .host = data_host, .tls = tls};
    sl_net_t *net;
    sl_tm_jobs_t *jobs;
    if (sl_net_create(&nc, &net, err, sizeof err) != 0)
        sl_cli_die(1, "taskmanager %s: data plane: %s", id, err);
    if (sl_tm_jobs_create(net, &jobs) != 0)
        sl_cli_die(1, "out of memory");
    sl_tm_service_config_t tc = {
        .id = id,
        .secret = (const uint8_t *)secret,
        .secret_len = strlen(secret),
        .slots = (uint32_t)sl_config_int(o.config, "taskmanager.numberOfTaskSlots"),
        .cpu_cores = (double)sl_config_int(o.config, "taskmanager.cpu.cores"),
        .memory_bytes = (uint64_t)sl_config_bytes(o.config, "taskmanager.memory.process.size"),
        .heartbeat_interval_ms = (uint32_t)sl_config_duration_ms(o.config, "heartbeat.interval"),
        .heartbeat_timeout_ms = (uint32_t)sl_config_duration_ms(o.config, "heartbeat.timeout"),
        .data_host = data_host,
        .data_port = sl_net_port(net),
        .on_job_message = on_job_message,
        .job_arg = jobs};
    sl_tm_service_t *tm;
    int rc = sl_tm_service_create(&tc, &tm);
    if (rc)
        sl_cli_die(1, "taskmanager: %s", sl_strerror(rc));
    uint32_t timeout = (uint32_t)sl_config_duration_ms(o.config, "taskmanager.registration.timeout");
    if ((rc = sl_tm_service_register(tm, host, port, timeout, err, sizeof err)) != 0) {
        sl_tm_service_destroy(tm);
        sl_tm_jobs_destroy(jobs);
        sl_net_destroy(net);
        sl_cli_die(1, "taskmanager %s: %s", id, err);
    }
    fprintf(stderr, "taskmanager %s registered with the JobManager at %s:%d, %u slots\n", id, host, port, tc.slots);
    while (!stop_requested && sl_tm_service_connected(tm)) {
        sl_tm_jobs_running(jobs); /* reaps finished runs */
        nap_ms(100);
    }
    int status = stop_requested ? 0 : 1;
    if (status)
        fprintf(stderr, "taskmanager %s: lost the JobManager at %s:%d; exiting\n", id, host, port);
    sl_tm_jobs_destroy(jobs); /* cancels what still runs */
    sl_tm_service_destroy(tm);
    sl_net_destroy(net);
    teardown_tls(tls);
    sl_config_destroy(o.config);
    return status;
}

/* `sluice list --jobmanager HOST:PORT` and `sluice cancel JOB --jobmanager HOST:PORT`. */
static int jobs_command(int argc, char **argv, bool cancel) {
    sl_cli_run_opts_t o = {0};
    if (sl_config_create(&o.config) != 0)
        sl_cli_die(1, "out of memory");
    const char *jm = NULL, *job = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobmanager") == 0 && i + 1 < argc)
            jm = argv[++i];
        else if (cancel && job == NULL && argv[i][0] != '-')
            job = argv[i];
        else if (!sl_cli_common_option(&o, argc, argv, &i))
            sl_cli_die(2, "%s: unknown option '%s'", cancel ? "cancel" : "list", argv[i]);
    }
    if (jm == NULL || (cancel && job == NULL))
        sl_cli_die(2, cancel ? "usage: sluice cancel JOB --jobmanager HOST:PORT"
                             : "usage: sluice list --jobmanager HOST:PORT");
    int status = cancel ? sl_cli_cancel(o.config, jm, job) : sl_cli_list(o.config, jm);
    sl_config_destroy(o.config);
    return status;
}

/* `sluice savepoint JOB [DIR] --jobmanager HOST:PORT` and
 * `sluice stop JOB [--savepoint DIR] --jobmanager HOST:PORT` (Flink's stop-with-savepoint). */
static int savepoint_command(int argc, char **argv, bool stop) {
    sl_cli_run_opts_t o = {0};
    if (sl_config_create(&o.config) != 0)
        sl_cli_die(1, "out of memory");
    const char *jm = NULL, *job = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jobmanager") == 0 && i + 1 < argc)
            jm = argv[++i];
        else if (stop && (strcmp(argv[i], "--savepoint") == 0 || strcmp(argv[i], "--savepointPath") == 0) &&
                 i + 1 < argc)
            dir = argv[++i];
        else if (job == NULL && argv[i][0] != '-')
            job = argv[i];
        else if (!stop && dir == NULL && argv[i][0] != '-')
            dir = argv[i];
        else if (!sl_cli_common_option(&o, argc, argv, &i))
            sl_cli_die(2, "%s: unknown option '%s'", stop ? "stop" : "savepoint", argv[i]);
    }
    if (jm == NULL || job == NULL)
        sl_cli_die(2, stop ? "usage: sluice stop JOB [--savepoint DIR] --jobmanager HOST:PORT"
                           : "usage: sluice savepoint JOB [DIR] --jobmanager HOST:PORT");
    int status = sl_cli_savepoint(o.config, jm, job, dir, stop);
    sl_config_destroy(o.config);
    return status;
}

int sl_cmd_savepoint(int argc, char **argv) { return savepoint_command(argc, argv, false); }
int sl_cmd_stop(int argc, char **argv) { return savepoint_command(argc, argv, true); }
int sl_cmd_list(int argc, char **argv) { return jobs_command(argc, argv, false); }
int sl_cmd_cancel(int argc, char **argv) { return jobs_command(argc, argv, true); }
