/* `--jobmanager HOST:PORT` on `sluice nexmark` and `sluice run`: the job goes to a cluster
 * instead of the embedded mini-cluster; `--target local|slurm` starts a JobManager for this
 * job alone (per-job mode), whose driver starts the TaskManagers and stops them at the end. The finalized graph travels encoded, the
 * configuration as "key=value" lines (what was set, not the defaults), the job library's
 * bytes (at most SL_LIBRARY_MAX_BYTES), which the TaskManagers write to private files and
 * load; then the JobManager is asked for the job's state until it ends. */
#include <sluice/error.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/bytes.h"
#include "core/config.h"
#include "graph/job_package.h"
#include "jobmaster/jobmanager.h"
#include "minicluster/library_cache.h"
#include "rest/rest.h"
#include "rpc/rpc.h"
#include "rpc/tls.h"

#include <pthread.h>

/* The job library's bytes, shipped with the job: the TaskManagers need not see its path.
 * Exits with a message naming the file when it cannot be read or is above the limit. */
static void read_library(const char *path, sl_bytes_t *out) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0)
        sl_cli_die(1, "cannot read the job library %s: %s", path, strerror(errno));
    if ((uint64_t)st.st_size > SL_LIBRARY_MAX_BYTES)
        sl_cli_die(2, "the job library %s is %.1f MiB (%lld bytes): at most %u MiB can be shipped with a job "
                   "(it travels in one RPC message, at most 64 MiB)",
                   path, (double)st.st_size / 1048576.0, (long long)st.st_size, SL_LIBRARY_MAX_BYTES >> 20);
    sl_bytes_init(out);
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && out->len <= SL_LIBRARY_MAX_BYTES)
        sl_bytes_put(out, buf, n);
    if (ferror(f) || out->err || out->len > SL_LIBRARY_MAX_BYTES)
        sl_cli_die(1, "cannot read the job library %s: %s", path,
                   ferror(f) ? strerror(errno) : out->err ? "out of memory" : "it grew above the limit while read");
    fclose(f);
}

static int submit(sl_rpc_conn_t *conn, sl_job_t *job, const sl_bytes_t *graph, const sl_bytes_t *config,
                  const sl_bytes_t *library, char *job_id, size_t idlen, char *err, size_t errlen) {
    Sluice__Rpc__SubmitJob s = SLUICE__RPC__SUBMIT_JOB__INIT;
    s.name = job->graph.name;
    s.job_graph = (ProtobufCBinaryData){graph->len, graph->data};
    s.config = (ProtobufCBinaryData){config->len, config->data};
    if (job->graph.library) {
        s.job_library_case = SLUICE__RPC__SUBMIT_JOB__JOB_LIBRARY_LIBRARY_BYTES;
        s.library_bytes = (ProtobufCBinaryData){library->len, library->data};
    }
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT, *resp = NULL;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_SUBMIT_JOB;
    env.submit_job = &s;
    int rc = sl_rpc_call_sync(conn, &env, 30000, &resp);
    if (rc == 0 && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_JOB_STATUS)
        snprintf(job_id, idlen, "%s", resp->job_status->job_id);
    else
        snprintf(err, errlen, "the JobManager refused the job: %s",
                 resp && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_ERROR ? resp->error->message
                                                                              : sl_strerror(rc ? rc : SL_EPROTO));
    sl_rpc_msg_free(resp);
    return rc ? rc : job_id[0] ? 0 : SL_EPROTO;
}

static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) { interrupted = sig; }

static void request_cancel(sl_rpc_conn_t *conn, const char *job_id) {
    Sluice__Rpc__CancelJob c = SLUICE__RPC__CANCEL_JOB__INIT;
    c.job_id = (char *)job_id;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT, *resp = NULL;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_CANCEL_JOB;
    env.cancel_job = &c;
    sl_rpc_call_sync(conn, &env, 10000, &resp);
    sl_rpc_msg_free(resp);
}

/* Polls the job's state until it ends; returns the exit status of the command. Ctrl-C (or
 * SIGTERM) cancels the job on the cluster and waits for it to end. */
static int wait_for(sl_rpc_conn_t *conn, const char *job_id, const char *name) {
    bool cancel_sent = false;
    for (;;) {
        if (interrupted && !cancel_sent) {
            fprintf(stderr, "sluice: canceling job %s\n", job_id);
            request_cancel(conn, job_id);
            cancel_sent = true;
        }
        Sluice__Rpc__JobStatus q = SLUICE__RPC__JOB_STATUS__INIT;
        q.job_id = (char *)job_id;
        sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT, *resp = NULL;
        env.body_case = SLUICE__RPC__ENVELOPE__BODY_JOB_STATUS;
        env.job_status = &q;
        int rc = sl_rpc_call_sync(conn, &env, 10000, &resp);
        if (rc || resp->body_case != SLUICE__RPC__ENVELOPE__BODY_JOB_STATUS) {
            fprintf(stderr, "sluice: lost track of job %s: %s\n", job_id, sl_strerror(rc ? rc : SL_EPROTO));
            sl_rpc_msg_free(resp);
            return 1;
        }
        Sluice__Rpc__JobStatus *s = resp->job_status;
        int st = -1;
        if (s->state == SLUICE__RPC__JOB_STATE__JOB_FINISHED) {
            fprintf(stderr, "job '%s' (%s) finished in %.1f s on the cluster\n", name, job_id,
                    (double)(s->end_time_ms - s->start_time_ms) / 1000.0);
            st = 0;
        } else if (s->state == SLUICE__RPC__JOB_STATE__JOB_FAILED) {
            fprintf(stderr, "sluice: job '%s' (%s) failed: %s\n", name, job_id,
                    s->error && s->error->message ? s->error->message : "unknown cause");
            st = 1;
        } else if (s->state == SLUICE__RPC__JOB_STATE__JOB_CANCELED) {
            fprintf(stderr, "sluice: job '%s' (%s) canceled\n", name, job_id);
            st = 130;
        }
        sl_rpc_msg_free(resp);
        if (st >= 0)
            return st;
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static void split(const char *addr, char *host, size_t hostlen, int *port) {
    const char *colon = strrchr(addr, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (colon == NULL || colon == addr || *end != '\0' || p <= 0 || p > 65535)
        sl_cli_die(2, "--jobmanager must be HOST:PORT, not '%s'", addr);
    snprintf(host, hostlen, "%.*s", (int)(colon - addr), addr);
    *port = (int)p;
}

/* An authenticated connection to the JobManager; exits with a message naming it on failure. */
static void connect_jm(const sl_config_t *config, const char *jm_addr, sl_rpc_endpoint_t **ep, sl_rpc_conn_t **conn) {
    char host[256], secret[256], err[1024] = "", id[64];
    int port;
    split(jm_addr, host, sizeof host, &port);
    if (sl_cli_load_secret(config, secret, sizeof secret, err, sizeof err) != 0)
        sl_cli_die(1, "%s", err);
    signal(SIGPIPE, SIG_IGN);
    snprintf(id, sizeof id, "cli-%ld", (long)getpid());
    sl_tls_ctx_t *tls; /* security.ssl.internal.*: NULL when TLS is off */
    if (sl_tls_ctx_from_config(config, &tls, err, sizeof err) != 0)
        sl_cli_die(1, "%s", err);
    sl_rpc_endpoint_config_t ec = {.id = id, .role = "cli", .secret = (const uint8_t *)secret,
                                   .secret_len = strlen(secret), .tls = tls};
    int rc = sl_rpc_endpoint_create(&ec, ep);
    sl_tls_ctx_destroy(tls); /* the endpoint holds its own reference */
    if (rc != 0 || sl_rpc_endpoint_start(*ep) != 0)
        sl_cli_die(1, "cannot start an RPC endpoint");
    if (sl_rpc_connect(*ep, host, port, 10000, conn, err, sizeof err) != 0) {
        sl_rpc_endpoint_destroy(*ep);
        sl_cli_die(1, "%s", err);
    }
}

static const char *state_name(int s) {
    static const char *names[] = {"CREATED", "RUNNING", "FAILING", "FAILED", "CANCELLING", "CANCELED", "FINISHED",
                                  "RESTARTING"};
    return s >= 0 && s < 8 ? names[s] : "UNKNOWN";
}

static void print_status(const Sluice__Rpc__JobStatus *s) {
    printf("%-24s %-10s %s%s%s\n", s->job_id, state_name(s->state), s->name,
           s->error && s->error->message ? "  " : "", s->error && s->error->message ? s->error->message : "");
}

/* `sluice list --jobmanager HOST:PORT`: the JobManager's jobs. */
int sl_cli_list(const sl_config_t *config, const char *jm_addr) {
    sl_rpc_endpoint_t *ep;
    sl_rpc_conn_t *conn;
    connect_jm(config, jm_addr, &ep, &conn);
    Sluice__Rpc__ListJobs l = SLUICE__RPC__LIST_JOBS__INIT;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT, *resp = NULL;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_LIST_JOBS;
    env.list_jobs = &l;
    int rc = sl_rpc_call_sync(conn, &env, 10000, &resp);
    if (rc == 0 && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_JOB_LIST) {
        printf("%-24s %-10s %s\n", "JOB", "STATE", "NAME");
        for (size_t i = 0; i < resp->job_list->n_jobs; i++)
            print_status(resp->job_list->jobs[i]);
    } else {
        fprintf(stderr, "sluice: list: %s\n", sl_strerror(rc ? rc : SL_EPROTO));
    }
    sl_rpc_msg_free(resp);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(ep);
    return rc ? 1 : 0;
}

/* `sluice cancel JOB --jobmanager HOST:PORT`: asks the JobManager to cancel a job. */
int sl_cli_cancel(const sl_config_t *config, const char *jm_addr, const char *job_id) {
    sl_rpc_endpoint_t *ep;
    sl_rpc_conn_t *conn;
    connect_jm(config, jm_addr, &ep, &conn);
    Sluice__Rpc__CancelJob c = SLUICE__RPC__CANCEL_JOB__INIT;
    c.job_id = (char *)job_id;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT, *resp = NULL;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_CANCEL_JOB;
    env.cancel_job = &c;
    int rc = sl_rpc_call_sync(conn, &env, 10000, &resp);
    if (rc == 0 && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_JOB_STATUS)
        fprintf(stderr, "cancel requested for job %s (%s)\n", job_id, state_name(resp->job_status->state));
    else
        fprintf(stderr, "sluice: cancel %s: %s\n", job_id,
                resp && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_ERROR ? resp->error->message
                                                                              : sl_strerror(rc ? rc : SL_EPROTO));
    sl_rpc_msg_free(resp);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(ep);
    return rc ? 1 : 0;
}

/* `sluice savepoint JOB [DIR]` and `sluice stop JOB [--savepoint DIR]`: waits for the
 * savepoint (up to the checkpoint timeout and a margin) and prints its directory. */
int sl_cli_savepoint(const sl_config_t *config, const char *jm_addr, const char *job_id, const char *dir, bool stop) {
    const char *target = dir && dir[0] ? dir : sl_config_str(config, "state.savepoints.dir");
    if (target == NULL || target[0] == '\0')
        sl_cli_die(2, "%s: no savepoint directory: give one or set state.savepoints.dir", stop ? "stop" : "savepoint");
    char abs[4096];
    if (target[0] != '/') { /* the JobManager runs elsewhere: an absolute path */
        char cwd[3000];
        if (getcwd(cwd, sizeof cwd) == NULL)
            sl_cli_die(1, "cannot read the current directory");
        snprintf(abs, sizeof abs, "%s/%s", cwd, target);
        target = abs;
    }
    sl_rpc_endpoint_t *ep;
    sl_rpc_conn_t *conn;
    connect_jm(config, jm_addr, &ep, &conn);
    Sluice__Rpc__TriggerSavepoint t = SLUICE__RPC__TRIGGER_SAVEPOINT__INIT;
    t.job_id = (char *)job_id;
    t.target_dir = (char *)target;
    t.stop = stop;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT, *resp = NULL;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_TRIGGER_SAVEPOINT;
    env.trigger_savepoint = &t;
    int64_t timeout = sl_config_duration_ms(config, "execution.checkpointing.timeout") + 60000;
    int rc = sl_rpc_call_sync(conn, &env, (uint32_t)(timeout > UINT32_MAX ? UINT32_MAX : timeout), &resp);
    if (rc == 0 && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_SAVEPOINT_RESULT) {
        printf("%s\n", resp->savepoint_result->path);
        fprintf(stderr, "savepoint of job %s written to %s%s\n", job_id, resp->savepoint_result->path,
                stop ? "; the job stops" : "");
    } else {
        rc = rc ? rc : SL_EPROTO;
        fprintf(stderr, "sluice: %s %s: %s\n", stop ? "stop" : "savepoint", job_id,
                resp && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_ERROR ? resp->error->message : sl_strerror(rc));
    }
    sl_rpc_msg_free(resp);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(ep);
    return rc ? 1 : 0;
}

int sl_cli_submit(sl_job_t *job, sl_cli_run_opts_t *o, const char *jm_addr) {
    if (sl_job_error(job))
        sl_cli_die(2, "invalid job: %s", sl_job_error(job));
    char err[1024] = "", job_id[64] = "";
    /* The JobManager resolves the path, perhaps elsewhere: make it absolute here. */
    const char *from = sl_config_str(o->config, "execution.savepoint.path");
    char abs[4096];
    if (from && from[0] && from[0] != '/') {
        if (realpath(from, abs) == NULL)
            sl_cli_die(2, "--from-checkpoint %s: %s", from, strerror(errno));
        if (sl_config_set(o->config, "execution.savepoint.path", abs, err, sizeof err) != 0)
            sl_cli_die(2, "%s", err);
    }
    sl_bytes_t graph = {0}, config, library = {0};
    int rc = sl_job_package(job, o->config, &graph.data, &graph.len, &config, err, sizeof err);
    if (rc)
        sl_cli_die(rc == SL_ENOMEM ? 1 : 2, "%s", err);
    if (job->graph.library)
        read_library(job->graph.library, &library);
    sl_rpc_endpoint_t *ep;
    sl_rpc_conn_t *conn;
    connect_jm(o->config, jm_addr, &ep, &conn);
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int status = 1;
    if (submit(conn, job, &graph, &config, &library, job_id, sizeof job_id, err, sizeof err) == 0) {
        fprintf(stderr, "job '%s' submitted to %s as %s\n", job->graph.name, jm_addr, job_id);
        status = wait_for(conn, job_id, job->graph.name);
    } else {
        fprintf(stderr, "sluice: %s\n", err);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(ep);
    sl_free(graph.data);
    sl_bytes_destroy(&config);
    if (job->graph.library)
        sl_bytes_destroy(&library);
    return status;
}

/* ---- Per-job mode: a JobManager for this job alone ---- */

typedef struct {
    sl_jobmanager_t *jm;
    volatile int stop;
} ticker_t;

static void *tick_main(void *arg) {
    ticker_t *t = arg;
    while (!t->stop) {
        sl_jobmanager_tick(t->jm);
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int sl_cli_run_per_job(sl_job_t *job, sl_cli_run_opts_t *o, const char *target) {
    char err[1024] = "", secret[256], bin[4096], addr[64];
    if (strcmp(target, "local") != 0 && strcmp(target, "slurm") != 0)
        sl_cli_die(2, "--target must be local or slurm, not '%s'", target);
    if (sl_config_set(o->config, "resourcemanager.driver", target, err, sizeof err) != 0 ||
        (!sl_config_is_set(o->config, "jobmanager.rpc.port") &&
         sl_config_set(o->config, "jobmanager.rpc.port", "0", err, sizeof err) != 0))
        sl_cli_die(2, "%s", err);
    if (sl_cli_load_secret(o->config, secret, sizeof secret, err, sizeof err) != 0)
        sl_cli_die(1, "%s", err);
    ssize_t n = readlink("/proc/self/exe", bin, sizeof bin - 1);
    bin[n > 0 ? n : 0] = '\0';
    sl_jobmanager_config_t jc = {.config = o->config, .secret = secret, .sluice_bin = bin};
    ticker_t t = {0};
    if (sl_jobmanager_start(&jc, &t.jm, err, sizeof err) != 0)
        sl_cli_die(1, "per-job JobManager: %s", err);
    pthread_t th;
    if (pthread_create(&th, NULL, tick_main, &t) != 0)
        sl_cli_die(1, "cannot start the JobManager's thread");
    snprintf(addr, sizeof addr, "%s:%d", sl_config_str(o->config, "jobmanager.rpc.address"),
             sl_jobmanager_port(t.jm));
    /* The job's own REST API (status, savepoints) when asked for with rest.port. */
    sl_rest_t *rest = NULL;
    if (sl_config_is_set(o->config, "rest.port")) {
        if (sl_rest_start(o->config, t.jm, &rest, err, sizeof err) != 0)
            sl_cli_die(1, "per-job JobManager: %s", err);
        fprintf(stderr, "REST API on %s://%s:%d/v1\n", sl_rest_scheme(rest),
                sl_config_str(o->config, "rest.bind-address"), sl_rest_port(rest));
    }
    int status = sl_cli_submit(job, o, addr);
    sl_rest_stop(rest);
    t.stop = 1;
    pthread_join(th, NULL);
    sl_jobmanager_stop(t.jm); /* its driver stops the TaskManagers (scancel on Slurm) */
    return status;
}
