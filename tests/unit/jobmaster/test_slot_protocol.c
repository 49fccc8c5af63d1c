/* The slot protocol with real processes: a JobManager (endpoint, ResourceManager, driver) in
 * this test process and `sluice taskmanager` processes. With the local driver a job's slot
 * request starts TaskManagers, which register, get RequestSlot and offer their slots to the
 * job's SlotPool; a TaskManager killed with SIGKILL (its connection closes) or stopped with
 * SIGSTOP (only heartbeats tell) is dropped and fails the pool; idle TaskManagers are stopped. With the standalone driver a request nothing can serve
 * fails with a clear error, a TaskManager started by hand serves the next one, and a
 * TaskManager with a wrong secret is refused while the cluster keeps running. With the slurm
 * driver, against a real single-node Slurm the test starts, TaskManagers are Slurm jobs; a Slurm
 * that does not answer fails the request with sbatch's reason instead of a hang. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/mailbox.h"
#include "jobmaster/jobmanager.h"

#define SECRET "slot-protocol-test-secret"

static char sluice_bin[1024], logdir[64];

static void nap(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static sl_config_t *config(const char *driver, const char *request_timeout) {
    sl_config_t *c;
    char err[256];
    assert_int_equal(sl_config_create(&c), 0);
    const char *kv[][2] = {{"jobmanager.rpc.port", "0"},
                           {"resourcemanager.driver", driver},
                           {"heartbeat.interval", "200ms"},
                           {"heartbeat.timeout", "1500ms"},
                           {"slot.request.timeout", request_timeout},
                           {"taskmanager.numberOfTaskSlots", "2"},
                           {"resourcemanager.taskmanager-timeout", "1s"},
                           {"resourcemanager.log-dir", logdir}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        assert_int_equal(sl_config_set(c, kv[i][0], kv[i][1], err, sizeof err), 0);
    return c;
}

static sl_jobmanager_t *start_jm(sl_config_t *c) {
    char err[512] = "";
    sl_jobmanager_config_t jc = {.config = c, .secret = SECRET, .sluice_bin = sluice_bin};
    sl_jobmanager_t *jm;
    if (sl_jobmanager_start(&jc, &jm, err, sizeof err) != 0)
        fail_msg("jobmanager: %s", err);
    return jm;
}

/* Ticks the JobManager until the pool is complete or failed, or `ms` pass. */
static int drive(sl_jobmanager_t *jm, sl_slot_pool_t *p, long ms, char *err, size_t errlen) {
    int64_t end = sl_monotonic_ms() + ms;
    int rc;
    do {
        sl_jobmanager_tick(jm);
        rc = sl_slot_pool_wait(p, 50, err, errlen);
    } while (rc == SL_ETIMEDOUT && sl_monotonic_ms() < end);
    return rc;
}

/* Ticks until `cond` holds on the stats, at most `ms`. */
static sl_rm_stats_t wait_stats(sl_jobmanager_t *jm, bool (*cond)(const sl_rm_stats_t *), long ms) {
    int64_t end = sl_monotonic_ms() + ms;
    sl_rm_stats_t s;
    for (;;) {
        sl_jobmanager_tick(jm);
        s = sl_rm_service_stats(sl_jobmanager_rm(jm));
        if (cond(&s) || sl_monotonic_ms() > end)
            return s;
        nap(50);
    }
}

static bool none_registered(const sl_rm_stats_t *s) { return s->registered == 0 && s->starting == 0; }
static bool one_lost(const sl_rm_stats_t *s) { return s->lost >= 1; }
static bool two_lost(const sl_rm_stats_t *s) { return s->lost >= 2; }
/* A start counts once the ResourceManager's tick collected it from the driver thread, which
 * may be after the TaskManager it started registered and offered its slots. */
static bool one_started(const sl_rm_stats_t *s) { return s->started >= 1; }
static bool two_started(const sl_rm_stats_t *s) { return s->started >= 2; }
static bool three_started(const sl_rm_stats_t *s) { return s->started >= 3; }

static pid_t spawn_tm(int port, const char *id, const char *secret) {
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SLUICE_SECRET", secret, 1);
        execl(sluice_bin, sluice_bin, "taskmanager", "--jobmanager", addr, "--id", id, "--slots", "1", "-D",
              "taskmanager.registration.timeout=3s", "-D", "heartbeat.interval=200ms", "-D", "heartbeat.timeout=1500ms",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void local_driver_starts_registers_offers_and_detects_loss(void **state) {
    sl_config_t *c = config("local", "30s");
    sl_jobmanager_t *jm = start_jm(c);
    sl_slot_pool_t *p;
    assert_int_equal(sl_slot_pool_create(sl_jobmanager_rm(jm), "job-1", 4, &p), 0);
    assert_int_equal(sl_jobmanager_add_pool(jm, p), 0);
    char err[512] = "";
    int rc = drive(jm, p, 30000, err, sizeof err);
    if (rc)
        fail_msg("slots: %s (%s)", err, sl_strerror(rc));
    /* 4 slots from TaskManagers of 2 slots: two were started, and both serve the job. */
    const sl_slot_t *slots;
    uint32_t n = sl_slot_pool_slots(p, &slots);
    assert_int_equal(n, 4);
    int on_first = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_true(slots[i].offered);
        on_first += strcmp(slots[i].tm_id, slots[0].tm_id) == 0;
    }
    assert_int_equal(on_first, 2);
    sl_rm_stats_t s = wait_stats(jm, two_started, 20000);
    assert_int_equal(s.started, 2);
    assert_int_equal(s.registered, 2);
    assert_int_equal(s.free_slots, 0);

    /* SIGKILL one TaskManager: heartbeats notice, the pool fails naming it. */
    char cmd[256], victim[64];
    snprintf(victim, sizeof victim, "%s", slots[0].tm_id);
    /* "[t]m-1" matches the TaskManager's command line but not the shell running pkill. */
    snprintf(cmd, sizeof cmd, "pkill -9 -f -- '--id [%c]%s --slots'", victim[0], victim + 1);
    assert_int_equal(system(cmd), 0);
    s = wait_stats(jm, one_lost, 20000);
    assert_int_equal(s.lost, 1);
    rc = sl_slot_pool_wait(p, 1000, err, sizeof err);
    assert_int_equal(rc, SL_EFAILED);
    assert_non_null(strstr(err, victim));
    assert_non_null(strstr(err, "was lost"));

    /* The other one stops answering with its connection open (SIGSTOP): only heartbeats can
     * tell, within heartbeat.timeout. */
    const char *other = strcmp(slots[0].tm_id, victim) != 0 ? slots[0].tm_id : slots[3].tm_id;
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(slots[i].tm_id, victim) != 0)
            other = slots[i].tm_id;
    snprintf(cmd, sizeof cmd, "pkill -STOP -f -- '--id [%c]%s --slots'", other[0], other + 1);
    assert_int_equal(system(cmd), 0);
    s = wait_stats(jm, two_lost, 20000);
    assert_int_equal(s.lost, 2);
    assert_int_equal(s.registered, 0);
    snprintf(cmd, sizeof cmd, "pkill -9 -f -- '--id [%c]%s --slots'", other[0], other + 1);
    assert_int_equal(system(cmd), 0);
    sl_jobmanager_remove_pool(jm, p);
    sl_slot_pool_destroy(p);

    /* A new job gets a new TaskManager; when it gives its slot back, the idle TaskManager is
     * stopped by the driver (resourcemanager.taskmanager-timeout). */
    assert_int_equal(sl_slot_pool_create(sl_jobmanager_rm(jm), "job-1b", 1, &p), 0);
    assert_int_equal(sl_jobmanager_add_pool(jm, p), 0);
    if ((rc = drive(jm, p, 30000, err, sizeof err)) != 0)
        fail_msg("slot after the losses: %s", err);
    assert_int_equal(wait_stats(jm, three_started, 20000).started, 3);
    sl_jobmanager_remove_pool(jm, p);
    sl_slot_pool_destroy(p);
    s = wait_stats(jm, none_registered, 20000);
    assert_int_equal(s.registered, 0);
    sl_jobmanager_stop(jm);
    sl_config_destroy(c);
}

static void standalone_waits_for_taskmanagers_started_by_hand(void **state) {
    sl_config_t *c = config("standalone", "1s");
    sl_jobmanager_t *jm = start_jm(c);
    int port = sl_jobmanager_port(jm);
    char err[512] = "";

    /* Nothing can serve the request: a clear error once slot.request.timeout passed. */
    sl_slot_pool_t *p;
    assert_int_equal(sl_slot_pool_create(sl_jobmanager_rm(jm), "job-2", 1, &p), 0);
    assert_int_equal(sl_jobmanager_add_pool(jm, p), 0);
    assert_int_equal(drive(jm, p, 20000, err, sizeof err), SL_ENOSLOT);
    assert_non_null(strstr(err, "no slot for job job-2 within 1000 ms"));
    assert_non_null(strstr(err, "0 TaskManagers registered"));
    assert_non_null(strstr(err, "driver 'standalone'"));
    sl_jobmanager_remove_pool(jm, p);
    sl_slot_pool_destroy(p);

    /* A TaskManager with the wrong secret is refused and exits; the JobManager carries on. */
    pid_t bad = spawn_tm(port, "intruder", "not-the-secret");
    int st = 0;
    assert_int_equal(waitpid(bad, &st, 0), bad);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);

    /* A TaskManager started by hand serves the next request. */
    pid_t tm = spawn_tm(port, "hand-1", SECRET);
    assert_int_equal(sl_slot_pool_create(sl_jobmanager_rm(jm), "job-3", 1, &p), 0);
    assert_int_equal(sl_jobmanager_add_pool(jm, p), 0);
    sl_config_set(c, "slot.request.timeout", "30s", err, sizeof err); /* (read at start only) */
    int rc = SL_ENOSLOT;
    /* The 1 s request timeout may fire before the TaskManager process is up: ask again then. */
    for (int attempt = 0; attempt < 20 && rc == SL_ENOSLOT; attempt++) {
        rc = drive(jm, p, 5000, err, sizeof err);
        if (rc == SL_ENOSLOT) {
            sl_jobmanager_remove_pool(jm, p);
            sl_slot_pool_destroy(p);
            assert_int_equal(sl_slot_pool_create(sl_jobmanager_rm(jm), "job-3", 1, &p), 0);
            assert_int_equal(sl_jobmanager_add_pool(jm, p), 0);
        }
    }
    if (rc)
        fail_msg("slot from the hand-started TaskManager: %s", err);
    const sl_slot_t *slots;
    assert_int_equal(sl_slot_pool_slots(p, &slots), 1);
    assert_string_equal(slots[0].tm_id, "hand-1");
    assert_int_equal(sl_rm_service_stats(sl_jobmanager_rm(jm)).registered, 1);
    sl_jobmanager_remove_pool(jm, p);
    sl_slot_pool_destroy(p);

    /* The JobManager goes away: the TaskManager notices and exits non-zero. */
    sl_jobmanager_stop(jm);
    assert_int_equal(waitpid(tm, &st, 0), tm);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    sl_config_destroy(c);
}

/* Lines of `cmd`'s output (first line into `first`). */
static int sh_lines(const char *cmd, char *first, size_t len) {
    FILE *f = popen(cmd, "r");
    int n = 0;
    char line[512];
    first[0] = '\0';
    while (f && fgets(line, sizeof line, f))
        if (n++ == 0)
            snprintf(first, len, "%s", line);
    if (f)
        pclose(f);
    return n;
}

/* The ResourceManager with the slurm driver against a real single-node Slurm: TaskManagers
 * are Slurm jobs (visible in squeue), register and offer their slots; once idle they are
 * cancelled and no Slurm job is left. */
static void slurm_driver_runs_taskmanagers_as_slurm_jobs(void **state) {
    if (geteuid() != 0)
        skip(); /* slurmd needs root */
    char dir[] = "/tmp/sl-slots-slurm-XXXXXX", cmd[1024], line[512], conf[128], err[512] = "";
    assert_non_null(mkdtemp(dir));
    int ctld = 24000 + (getpid() % 2000) * 2;
    snprintf(cmd, sizeof cmd, "SL_SLURMCTLD_PORT=%d SL_SLURMD_PORT=%d sh '%s/scripts/slurm-cluster.sh' start '%s' "
             ">/dev/null", ctld, ctld + 1, getenv("SL_SOURCE_DIR"), dir);
    if (system(cmd) != 0)
        fail_msg("could not start a Slurm cluster in %s", dir);
    snprintf(conf, sizeof conf, "%s/slurm.conf", dir);
    setenv("SLURM_CONF", conf, 1);
    sl_config_t *c = config("slurm", "60s");
    assert_int_equal(sl_config_set(c, "taskmanager.memory.process.size", "256mb", err, sizeof err), 0);
    sl_jobmanager_t *jm = start_jm(c);
    sl_slot_pool_t *p;
    assert_int_equal(sl_slot_pool_create(sl_jobmanager_rm(jm), "job-slurm", 2, &p), 0);
    assert_int_equal(sl_jobmanager_add_pool(jm, p), 0);
    int rc = drive(jm, p, 60000, err, sizeof err);
    if (rc)
        fail_msg("slots from Slurm: %s", err);
    assert_int_equal(wait_stats(jm, one_started, 20000).started, 1);
    assert_int_equal(sh_lines("squeue -h -o '%T %C %m'", line, sizeof line), 1);
    assert_non_null(strstr(line, "RUNNING 1 256M"));
    /* The job ends: its slots go back, the idle TaskManager's Slurm job is cancelled. */
    sl_jobmanager_remove_pool(jm, p);
    sl_slot_pool_destroy(p);
    sl_rm_stats_t s = wait_stats(jm, none_registered, 30000);
    assert_int_equal(s.registered, 0);
    int left = 1;
    for (int i = 0; i < 300 && left; i++) {
        sl_jobmanager_tick(jm);
        left = sh_lines("squeue -h -o '%i %T'", line, sizeof line);
        nap(100);
    }
    assert_int_equal(left, 0);
    sl_jobmanager_stop(jm);

    /* A Slurm controller nobody answers for: the request fails soon with sbatch's reason. */
    char dead[160];
    snprintf(dead, sizeof dead, "%s/dead.conf", dir);
    snprintf(cmd, sizeof cmd, "sed 's/^SlurmctldPort=.*/SlurmctldPort=%d/' '%s' > '%s'", ctld + 7, conf, dead);
    assert_int_equal(system(cmd), 0);
    setenv("SLURM_CONF", dead, 1);
    jm = start_jm(c);
    assert_int_equal(sl_slot_pool_create(sl_jobmanager_rm(jm), "job-dead", 1, &p), 0);
    assert_int_equal(sl_jobmanager_add_pool(jm, p), 0);
    assert_int_equal(drive(jm, p, 120000, err, sizeof err), SL_ENOSLOT);
    assert_non_null(strstr(err, "cannot start a TaskManager (driver 'slurm')"));
    assert_non_null(strstr(err, "sbatch failed"));
    sl_jobmanager_remove_pool(jm, p);
    sl_slot_pool_destroy(p);
    sl_jobmanager_stop(jm);
    sl_config_destroy(c);
    setenv("SLURM_CONF", conf, 1);
    snprintf(cmd, sizeof cmd, "sh '%s/scripts/slurm-cluster.sh' stop '%s' >/dev/null && rm -rf '%s'",
             getenv("SL_SOURCE_DIR"), dir, dir);
    assert_int_equal(system(cmd), 0);
    unsetenv("SLURM_CONF");
}

static void taskmanager_without_jobmanager_fails_clearly(void **state) {
    pid_t pid = spawn_tm(1, "lonely", SECRET); /* nobody listens on port 1 */
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
}

int main(void) {
    const char *build = getenv("SL_BUILD_DIR");
    snprintf(sluice_bin, sizeof sluice_bin, "%s/sluice", build ? build : ".");
    snprintf(logdir, sizeof logdir, "/tmp/sl-slots-XXXXXX");
    if (mkdtemp(logdir) == NULL)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(local_driver_starts_registers_offers_and_detects_loss),
        cmocka_unit_test(standalone_waits_for_taskmanagers_started_by_hand),
        cmocka_unit_test(taskmanager_without_jobmanager_fails_clearly),
        cmocka_unit_test(slurm_driver_runs_taskmanagers_as_slurm_jobs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", logdir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
