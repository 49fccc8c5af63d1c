/* The ResourceManager (src/resourcemanager/rm_service.c) with the slurm driver while Slurm is
 * slow: its endpoint, driver and a ticker thread are set up as the JobManager does, and a
 * minimal TaskManager registers over real RPC as the probe of the loop thread.
 *
 * Against a real single-node Slurm (scripts/slurm-cluster.sh, root only, skipped otherwise)
 * with slurmctld stopped by SIGSTOP: registrations are answered at once while sbatch hangs, a
 * second request does not start a second TaskManager, and the requests fail with sbatch's
 * timeout; a shutdown while sbatch is in flight leaves no Slurm job and no child process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "children.h"
#include "resourcemanager/proc.h"
#include "resourcemanager/rm_service.h"
#include "rpc/rpc.h"

#define SECRET "rm-service-test-secret"

static const char *const sleeper[] = {"sh", "-c", "exec sleep 300", NULL};
static char work_dir[64];
static char cluster_dir[64], conf[128], ctld_pid_file[128];

/* ---- helpers ---- */

static void nap(long ms) { usleep((useconds_t)ms * 1000); }

/* Lines of a shell command's output; the first one into `first` (newline removed). */
static int sh_lines(const char *cmd, char *first, size_t len) {
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[256];
    int n = 0;
    first[0] = '\0';
    while (fgets(line, sizeof line, f))
        if (n++ == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(first, len, "%s", line);
        }
    pclose(f);
    return n;
}

static void wait_children(const char *comm, int want, int ms) {
    for (int i = 0; i < ms / 20 && children_named(comm) != want; i++)
        nap(20);
    assert_int_equal(children_named(comm), want);
}

/* ---- the ResourceManager, set up as the JobManager does ---- */

typedef struct {
    sl_rpc_endpoint_t *ep;
    sl_rm_driver_t *driver;
    sl_rm_service_t *rm;
    int port;
    pthread_t ticker;
    atomic_bool stop_ticking;
    bool ticking;
    pthread_mutex_t mu; /* guards the failures */
    int nfailed;
    int status;
    char message[800];
} rig_t;

static void rig_handler(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg, void *arg) {
    rig_t *r = arg;
    if (r->rm && sl_rm_service_handle(r->rm, conn, req, msg))
        return;
    if (req)
        sl_rpc_reply_error(req, SL_EINVAL, "not for the ResourceManager");
}

static void rig_on_close(sl_rpc_conn_t *conn, int status, void *arg) {
    rig_t *r = arg;
    if (r->rm)
        sl_rm_service_conn_closed(r->rm, conn);
}

static void on_failed(void *arg, const char *allocation_id, int status, const char *message) {
    rig_t *r = arg;
    pthread_mutex_lock(&r->mu);
    r->nfailed++;
    r->status = status;
    snprintf(r->message, sizeof r->message, "%s", message);
    pthread_mutex_unlock(&r->mu);
}

static int failures(rig_t *r, char *message, size_t len, int *status) {
    pthread_mutex_lock(&r->mu);
    int n = r->nfailed;
    if (message)
        snprintf(message, len, "%s", r->message);
    if (status)
        *status = r->status;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* The owner thread of the ResourceManager, as in `sluice run --target slurm`. */
static void *tick_main(void *arg) {
    rig_t *r = arg;
    while (!atomic_load(&r->stop_ticking)) {
        sl_rm_service_tick(r->rm);
        nap(20);
    }
    return NULL;
}

/* The rig of the running case. Static, and stopped by the group teardown if a failed
 * assertion left it running: its ticker and endpoint threads must not outlive it. */
static rig_t the_rig;
static bool rig_live;

static void rig_start(rig_t *r, const char *slurm_conf, int command_timeout_ms, int slots_per_tm) {
    memset(r, 0, sizeof *r);
    rig_live = true;
    pthread_mutex_init(&r->mu, NULL);
    char err[512] = "";
    sl_rpc_endpoint_config_t ec = {.id = "jobmanager", .role = "jobmanager", .secret = (const uint8_t *)SECRET,
                                   .secret_len = strlen(SECRET), .handler = rig_handler, .handler_arg = r,
                                   .on_close = rig_on_close, .on_close_arg = r};
    assert_int_equal(sl_rpc_endpoint_create(&ec, &r->ep), 0);
    assert_int_equal(sl_rpc_endpoint_start(r->ep), 0);
    if (sl_rpc_listen(r->ep, "127.0.0.1", 0, &r->port, err, sizeof err) != 0)
        fail_msg("listen: %s", err);
    sl_rm_options_t o = {.log_dir = work_dir, .slurm_conf = slurm_conf, .command_timeout_ms = command_timeout_ms,
                         .job_name = "sluice-rmtest"};
    if (sl_rm_driver_create("slurm", &o, &r->driver, err, sizeof err) != 0)
        fail_msg("driver: %s", err);
    sl_rm_service_config_t rc = {.ep = r->ep,
                                 .driver = r->driver,
                                 .tm_argv = sleeper,
                                 .tm_profile = {.cpu_cores = 1, .memory_mib = 64, .slots = slots_per_tm},
                                 .heartbeat_interval_ms = 200,
                                 .heartbeat_timeout_ms = 1500,
                                 .slot_request_timeout_ms = 120000};
    assert_int_equal(sl_rm_service_create(&rc, &r->rm), 0);
    assert_int_equal(pthread_create(&r->ticker, NULL, tick_main, r), 0);
    r->ticking = true;
}

static void rig_stop_ticking(rig_t *r) {
    if (!r->ticking)
        return;
    atomic_store(&r->stop_ticking, true);
    assert_int_equal(pthread_join(r->ticker, NULL), 0);
    r->ticking = false;
}

/* sl_jobmanager_stop's order: shutdown, endpoint, ResourceManager, driver. */
static void rig_stop(rig_t *r) {
    rig_stop_ticking(r);
    sl_rm_service_shutdown(r->rm);
    sl_rpc_endpoint_stop(r->ep);
    sl_rm_service_destroy(r->rm);
    sl_rm_driver_destroy(r->driver);
    sl_rpc_endpoint_destroy(r->ep);
    pthread_mutex_destroy(&r->mu);
    rig_live = false;
}

static void *rig_stop_main(void *arg) {
    rig_stop(arg);
    return NULL;
}

/* A TaskManager that registers and answers nothing else. */
static void quiet_tm(sl_rpc_conn_t *conn, sl_rpc_request_t *req, const sl_rpc_msg_t *msg, void *arg) {
    if (req)
        sl_rpc_request_discard(req);
}

/* Registers a fake TaskManager with the ResourceManager and goes away again; returns how
 * long the registration took to be answered. */
static long long probe_registration(rig_t *r, const char *tm_id) {
    sl_rpc_endpoint_config_t ec = {.id = tm_id, .role = "taskmanager", .secret = (const uint8_t *)SECRET,
                                   .secret_len = strlen(SECRET), .handler = quiet_tm};
    sl_rpc_endpoint_t *ep;
    sl_rpc_conn_t *conn;
    char err[512] = "";
    assert_int_equal(sl_rpc_endpoint_create(&ec, &ep), 0);
    assert_int_equal(sl_rpc_endpoint_start(ep), 0);
    if (sl_rpc_connect(ep, "127.0.0.1", r->port, 5000, &conn, err, sizeof err) != 0)
        fail_msg("connect: %s", err);
    Sluice__Rpc__RegisterTaskManager reg = SLUICE__RPC__REGISTER_TASK_MANAGER__INIT;
    reg.tm_id = (char *)tm_id;
    reg.data_host = "127.0.0.1";
    reg.data_port = 1;
    reg.num_slots = 1;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_REGISTER_TASK_MANAGER;
    env.register_task_manager = &reg;
    sl_rpc_msg_t *resp = NULL;
    long long t0 = sl__rm_now_ms();
    int rc = sl_rpc_call_sync(conn, &env, 30000, &resp);
    long long took = sl__rm_now_ms() - t0;
    assert_int_equal(rc, 0);
    assert_int_equal(resp->body_case, SLUICE__RPC__ENVELOPE__BODY_REGISTRATION_ACK);
    assert_string_equal(resp->registration_ack->registration_id, tm_id);
    sl_rpc_msg_free(resp);
    sl_rpc_conn_close(conn);
    sl_rpc_endpoint_destroy(ep);
    return took;
}

static void wait_failures(rig_t *r, int want, int ms) {
    for (int i = 0; i < ms / 50 && failures(r, NULL, 0, NULL) < want; i++)
        nap(50);
    assert_int_equal(failures(r, NULL, 0, NULL), want);
}

static void wait_starting(rig_t *r, uint32_t want, int ms) {
    for (int i = 0; i < ms / 20 && sl_rm_service_stats(r->rm).starting != want; i++)
        nap(20);
    assert_int_equal(sl_rm_service_stats(r->rm).starting, want);
}

static bool port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)port)};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int setup(void **state) {
    strcpy(work_dir, "/tmp/sl_test_rmsvc_XXXXXX");
    assert_non_null(mkdtemp(work_dir));
    if (getuid() != 0) {
        print_message("real Slurm cases skipped: a private Slurm cluster needs root\n");
        return 0;
    }
    /* Ports from the pid, away from test_driver_slurm's and test_slot_protocol's ranges, moved
     * on until both are free (other builds may run clusters of their own). */
    int ctld = 0;
    for (int base = 30000 + (getpid() % 4000) * 2; base < 64000 && ctld == 0; base += 2)
        if (port_free(base) && port_free(base + 1))
            ctld = base;
    assert_true(ctld > 0);
    strcpy(cluster_dir, "/tmp/sl_test_rmslurm_XXXXXX");
    assert_non_null(mkdtemp(cluster_dir));
    char cmd[1024], line[256];
    snprintf(cmd, sizeof cmd, "SL_SLURMCTLD_PORT=%d SL_SLURMD_PORT=%d sh '%s/scripts/slurm-cluster.sh' start '%s'",
             ctld, ctld + 1, getenv("SL_SOURCE_DIR"), cluster_dir);
    sh_lines(cmd, line, sizeof line);
    snprintf(conf, sizeof conf, "%s/slurm.conf", cluster_dir);
    snprintf(ctld_pid_file, sizeof ctld_pid_file, "%s/slurmctld.pid", cluster_dir);
    snprintf(cmd, sizeof cmd, "export SLURM_CONF=%s", conf);
    if (strcmp(line, cmd) != 0) {
        print_message("could not start a Slurm cluster in %s: %s\n", cluster_dir, line);
        return -1;
    }
    setenv("SLURM_CONF", conf, 1);
    return 0;
}

static void controller_signal(int sig);

static int teardown(void **state) {
    char cmd[1024];
    int rc = 0;
    if (cluster_dir[0])
        controller_signal(SIGCONT);
    if (rig_live)
        rig_stop(&the_rig);
    if (cluster_dir[0]) {
        snprintf(cmd, sizeof cmd, "sh '%s/scripts/slurm-cluster.sh' stop '%s' >/dev/null && rm -rf '%s'",
                 getenv("SL_SOURCE_DIR"), cluster_dir, cluster_dir);
        rc = system(cmd);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work_dir);
    return rc == 0 && system(cmd) == 0 ? 0 : -1;
}

static void controller_signal(int sig) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "kill -%d \"$(cat '%s')\"", sig, ctld_pid_file);
    if (system(cmd) != 0)
        fail_msg("cannot signal slurmctld (%s)", ctld_pid_file);
}

/* Our Slurm jobs in squeue's default listing (pending, running, completing). */
static int our_jobs(void) {
    char line[256];
    return sh_lines("squeue -h -o '%i %j %T' | grep sluice-rmtest", line, sizeof line);
}

static void wait_no_jobs(int seconds) {
    for (int i = 0; i < seconds * 5 && our_jobs() > 0; i++)
        nap(200);
    assert_int_equal(our_jobs(), 0);
}

/* ---- tests ---- */

/* While sbatch hangs: registrations are answered at once, a second request shares the start
 * in flight, and both fail with sbatch's timeout once it passed. */
static void check_stuck_start(rig_t *r, int command_timeout_ms) {
    assert_int_equal(sl_rm_service_request_slot(r->rm, "job-1", "alloc-1", on_failed, r), 0);
    wait_children("sbatch", 1, 5000);
    /* A blocked loop would answer only after the command's deadline. */
    long long took = probe_registration(r, "probe-1");
    print_message("registration answered in %lld ms while sbatch hangs\n", took);
    assert_true(took < command_timeout_ms / 2);
    assert_int_equal(children_named("sbatch"), 1); /* the probe ran while it hung */
    /* Two slots per TaskManager: the start in flight serves this request too. */
    assert_int_equal(sl_rm_service_request_slot(r->rm, "job-1", "alloc-2", on_failed, r), 0);
    nap(300);
    sl_rm_stats_t s = sl_rm_service_stats(r->rm);
    assert_int_equal(s.starting, 1);
    assert_int_equal(s.started, 0);
    assert_int_equal(children_named("sbatch"), 1);
    assert_int_equal(failures(r, NULL, 0, NULL), 0);
}

static void check_failed_with_timeout(rig_t *r, int command_timeout_ms) {
    char msg[800], want[128];
    int status;
    wait_failures(r, 2, command_timeout_ms * 3 + 30000);
    failures(r, msg, sizeof msg, &status);
    print_message("failed: %s\n", msg);
    assert_int_equal(status, SL_ENOSLOT);
    assert_non_null(strstr(msg, "cannot start a TaskManager (driver 'slurm'): "));
    snprintf(want, sizeof want, "sbatch timed out after %d ms without an answer from Slurm", command_timeout_ms);
    assert_non_null(strstr(msg, want));
    sl_rm_stats_t s = sl_rm_service_stats(r->rm);
    assert_int_equal(s.starting, 0);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.started, 0);
}

#define NEED_CLUSTER() \
    do { if (!cluster_dir[0]) skip(); } while (0)

static void stopped_slurmctld_keeps_the_loop_responsive(void **state) {
    NEED_CLUSTER();
    /* Below Slurm's own MessageTimeout (10 s), so that our deadline is what ends sbatch. */
    const int timeout_ms = 8000;
    rig_t *r = &the_rig;
    rig_start(r, conf, timeout_ms, 2);
    controller_signal(SIGSTOP);
    check_stuck_start(r, timeout_ms);
    /* sbatch is killed at the deadline; the controller comes back so that the cancel by name
     * of the job it may have submitted gets through. */
    wait_children("sbatch", 0, timeout_ms + 10000);
    controller_signal(SIGCONT);
    check_failed_with_timeout(r, timeout_ms);
    wait_no_jobs(30);
    rig_stop(r);
    assert_int_equal(children_named(NULL), 0);
    wait_no_jobs(30);
}

static void shutdown_while_sbatch_is_in_flight(void **state) {
    NEED_CLUSTER();
    char dir_listing[256], line[256];
    /* Scripts of earlier cases out of the way: only this case's are counted below. */
    snprintf(dir_listing, sizeof dir_listing, "rm -f '%s'/sluice-rmtest-*.sh", work_dir);
    assert_int_equal(system(dir_listing), 0);
    rig_t *r = &the_rig;
    rig_start(r, conf, 20000, 1);
    controller_signal(SIGSTOP);
    /* Two TaskManagers needed: one start in flight, one queued behind it. */
    assert_int_equal(sl_rm_service_request_slot(r->rm, "job-1", "alloc-1", on_failed, r), 0);
    assert_int_equal(sl_rm_service_request_slot(r->rm, "job-1", "alloc-2", on_failed, r), 0);
    wait_children("sbatch", 1, 5000);
    wait_starting(r, 2, 5000);
    /* The JobManager stops while sbatch waits for the controller, which comes back meanwhile:
     * the job sbatch submitted must still be cancelled, the queued start must never run. */
    rig_stop_ticking(r);
    pthread_t stopper;
    assert_int_equal(pthread_create(&stopper, NULL, rig_stop_main, r), 0);
    nap(1000);
    controller_signal(SIGCONT);
    assert_int_equal(pthread_join(stopper, NULL), 0);
    assert_int_equal(children_named(NULL), 0);
    wait_no_jobs(30);
    /* One batch script per sbatch run, kept for a job that was submitted. */
    snprintf(dir_listing, sizeof dir_listing, "ls '%s' | grep -c '^sluice-rmtest-.*\\.sh$'", work_dir);
    sh_lines(dir_listing, line, sizeof line);
    assert_string_equal(line, "1");
    assert_int_equal(r->nfailed, 0); /* every thread that could fail a request is gone */
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stopped_slurmctld_keeps_the_loop_responsive),
        cmocka_unit_test(shutdown_while_sbatch_is_in_flight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
