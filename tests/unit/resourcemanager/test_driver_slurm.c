/* The "slurm" ResourceManager driver (src/resourcemanager/driver_slurm.c) against a real
 * single-node Slurm that this test starts with scripts/slurm-cluster.sh (private munged,
 * slurmctld, slurmd; ports derived from the pid so that two builds do not clash) and stops
 * at the end. Proves: a worker becomes a RUNNING job with the profile's CPUs and memory and
 * its command line and environment intact; stop cancels it; a job cancelled from outside or
 * killed with its node is reported LOST with Slurm's state and can be requested again;
 * destroy leaves no job; a Slurm that is not running, or one that never answers, is a quick
 * clear error with no child process left behind. Needs root (skipped otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "children.h"
#include "resourcemanager/driver.h"
#include "resourcemanager/proc.h"

static char cluster_dir[64];
static char conf[128];
static char log_dir[128];
static const sl_rm_profile_t profile = {.cpu_cores = 1, .memory_mib = 256, .slots = 1};
static const char *const sleeper[] = {"sh", "-c", "exec sleep 300", NULL};

/* ---- helpers: the test's own view of Slurm, through the real commands ---- */

/* First line of a shell command's output (trailing newline removed). */
static void sh_line(const char *cmd, char *out, size_t len) {
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (fgets(out, (int)len, p)) out[strcspn(out, "\n")] = '\0';
    pclose(p);
}

/* The job's state as squeue shows it with all states, "" when unknown. */
static void job_state(long job, char *out, size_t len) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "squeue -h -t all -j %ld -o %%T 2>/dev/null", job);
    sh_line(cmd, out, len);
}

/* Is the job in squeue's default listing (pending, running, completing, ...)? */
static int job_listed(long job) {
    char cmd[160], out[64];
    snprintf(cmd, sizeof cmd, "squeue -h -o %%i | grep -x %ld", job);
    sh_line(cmd, out, sizeof out);
    return out[0] != '\0';
}

static void wait_job_state(long job, const char *want, int seconds) {
    char st[64] = "";
    for (int i = 0; i < seconds * 5; i++) {
        job_state(job, st, sizeof st);
        if (strcmp(st, want) == 0) return;
        usleep(200 * 1000);
    }
    fail_msg("job %ld: state '%s' after %d s, expected %s", job, st, seconds, want);
}

static void wait_job_unlisted(long job, int seconds) {
    for (int i = 0; i < seconds * 5 && job_listed(job); i++) usleep(200 * 1000);
    assert_false(job_listed(job));
}

/* A TCP socket on 127.0.0.1 with a free port; listening (but never accepting) if asked. */
static int tcp_socket(int listening, int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    a.sin_port = htons((uint16_t)*port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || (listening && listen(fd, 16) != 0)) {
        close(fd);
        return -1;
    }
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A copy of the cluster's slurm.conf whose controller port is `port`. */
static void conf_with_port(const char *path, int port) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sed 's/^SlurmctldPort=.*/SlurmctldPort=%d/' '%s' > '%s'", port, conf, path);
    assert_int_equal(system(cmd), 0);
}

static sl_rm_driver_t *make(const char *slurm_conf, int timeout_ms) {
    sl_rm_options_t o = {.log_dir = log_dir, .slurm_conf = slurm_conf, .command_timeout_ms = timeout_ms,
                         .job_name = "sluice-test-tm"};
    sl_rm_driver_t *d;
    char err[512];
    assert_int_equal(sl_rm_driver_create("slurm", &o, &d, err, sizeof err), 0);
    return d;
}

static long start(sl_rm_driver_t *d, const char *const *argv, const char *const *env, char *id) {
    char err[1024];
    int rc = sl_rm_driver_start_worker(d, &profile, argv, env, id, 48, err, sizeof err);
    if (rc) fail_msg("start_worker: %s", err);
    const sl_rm_worker_t *w = sl_rm_driver_find(d, id);
    assert_non_null(w);
    assert_int_equal(w->state, SL_RM_WORKER_PENDING);
    return w->handle;
}

typedef struct {
    int calls;
    sl_rm_worker_state_t state;
    char id[48], reason[160];
    /* When set, a LOST worker is requested again (the ResourceManager's policy). */
    sl_rm_driver_t *restart_on;
    char new_id[48];
} seen_t;

static void on_ended(void *arg, const sl_rm_worker_t *w, const char *reason) {
    seen_t *s = arg;
    s->calls++;
    s->state = w->state;
    snprintf(s->id, sizeof s->id, "%s", w->id);
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    if (s->restart_on && w->state == SL_RM_WORKER_LOST) {
        char err[1024];
        int rc = sl_rm_driver_start_worker(s->restart_on, &w->profile, sleeper, NULL, s->new_id, sizeof s->new_id,
                                           err, sizeof err);
        if (rc) fail_msg("re-request: %s", err);
    }
}

static void poll_until_reported(sl_rm_driver_t *d, seen_t *s, int seconds) {
    char err[1024];
    for (int i = 0; i < seconds * 5 && s->calls == 0; i++) {
        int rc = sl_rm_driver_poll(d, on_ended, s, err, sizeof err);
        if (rc) fail_msg("poll: %s", err);
        if (s->calls == 0) usleep(200 * 1000);
    }
    assert_int_equal(s->calls, 1);
}

/* ---- the cluster ---- */

static int cluster_setup(void **state) {
    if (getuid() != 0) {
        print_message("slurm driver test skipped: a private Slurm cluster needs root\n");
        return 0;
    }
    const char *src = getenv("SL_SOURCE_DIR");
    assert_non_null(src);
    strcpy(cluster_dir, "/tmp/sl_test_slurm_XXXXXX");
    assert_non_null(mkdtemp(cluster_dir));
    /* Ports from the pid, moved on until both are free. */
    int ctld = 0, slurmd = 0;
    for (int base = 20000 + (getpid() % 5000) * 2; base < 64000; base += 2) {
        int a = base, b = base + 1;
        int fa = tcp_socket(0, &a), fb = tcp_socket(0, &b);
        if (fa >= 0) close(fa);
        if (fb >= 0) close(fb);
        if (fa >= 0 && fb >= 0) { ctld = a; slurmd = b; break; }
    }
    assert_true(ctld > 0);
    char cmd[1024], line[256];
    snprintf(cmd, sizeof cmd, "SL_SLURMCTLD_PORT=%d SL_SLURMD_PORT=%d sh '%s/scripts/slurm-cluster.sh' start '%s'",
             ctld, slurmd, src, cluster_dir);
    long long t0 = sl__rm_now_ms();
    sh_line(cmd, line, sizeof line);
    print_message("slurm cluster on ports %d/%d up in %lld ms: %s\n", ctld, slurmd, sl__rm_now_ms() - t0, line);
    snprintf(conf, sizeof conf, "%s/slurm.conf", cluster_dir);
    snprintf(cmd, sizeof cmd, "export SLURM_CONF=%s", conf);
    assert_string_equal(line, cmd);
    snprintf(log_dir, sizeof log_dir, "%s/tm-logs", cluster_dir);
    /* The test's own squeue/scancel/scontrol talk to this cluster. */
    setenv("SLURM_CONF", conf, 1);
    return 0;
}

static int cluster_teardown(void **state) {
    if (!cluster_dir[0]) return 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh '%s/scripts/slurm-cluster.sh' stop '%s' && rm -rf '%s'", getenv("SL_SOURCE_DIR"),
             cluster_dir, cluster_dir);
    long long t0 = sl__rm_now_ms();
    int rc = system(cmd);
    print_message("slurm cluster stopped in %lld ms\n", sl__rm_now_ms() - t0);
    return rc == 0 ? 0 : -1;
}

#define NEED_CLUSTER() \
    do { if (!cluster_dir[0]) skip(); } while (0)

/* ---- tests ---- */

static void test_start_running_stop(void **state) {
    NEED_CLUSTER();
    sl_rm_driver_t *d = make(conf, 0);
    char id[48], out[256], cmd[256], err[1024];
    /* Quotes, a $ and spaces must arrive verbatim through the generated batch script. */
    const char *tm[] = {"sh", "-c", "printf 'mark=%s arg=%s\\n' \"$SL_MARK\" \"$0\"; exec sleep 300", "it's $1", NULL};
    const char *env[] = {"SL_MARK=a \"b\" 'c' $HOME", NULL};
    long job = start(d, tm, env, id);
    snprintf(out, sizeof out, "slurm-%ld", job);
    assert_string_equal(id, out);
    wait_job_state(job, "RUNNING", 60);
    snprintf(cmd, sizeof cmd, "squeue -h -j %ld -o '%%C %%m %%j'", job);
    sh_line(cmd, out, sizeof out);
    assert_true(strncmp(out, "1 256M sluice-test-tm-", 22) == 0);

    seen_t s = {0};
    assert_int_equal(sl_rm_driver_poll(d, on_ended, &s, err, sizeof err), 0);
    assert_int_equal(s.calls, 0);
    assert_int_equal(sl_rm_driver_find(d, id)->state, SL_RM_WORKER_RUNNING);

    char log[256], want[] = "mark=a \"b\" 'c' $HOME arg=it's $1";
    snprintf(log, sizeof log, "cat '%s/tm-%ld.log' 2>/dev/null", log_dir, job);
    for (int i = 0; i < 100 && strcmp(out, want) != 0; i++) {
        sh_line(log, out, sizeof out);
        if (strcmp(out, want) != 0) usleep(100 * 1000);
    }
    assert_string_equal(out, want);

    assert_int_equal(sl_rm_driver_stop_worker(d, id, err, sizeof err), 0);
    assert_int_equal(sl_rm_driver_find(d, id)->state, SL_RM_WORKER_STOPPING);
    poll_until_reported(d, &s, 30);
    assert_int_equal(s.state, SL_RM_WORKER_STOPPED);
    assert_string_equal(s.id, id);
    wait_job_unlisted(job, 30);
    sl_rm_driver_destroy(d);
}

static void test_scancel_from_outside_is_lost(void **state) {
    NEED_CLUSTER();
    /* No explicit conf: SLURM_CONF from the environment. */
    sl_rm_driver_t *d = make(NULL, 0);
    char id[48], cmd[128];
    long job = start(d, sleeper, NULL, id);
    wait_job_state(job, "RUNNING", 60);
    snprintf(cmd, sizeof cmd, "scancel %ld", job);
    assert_int_equal(system(cmd), 0);
    seen_t s = {0};
    poll_until_reported(d, &s, 30);
    assert_int_equal(s.state, SL_RM_WORKER_LOST);
    assert_string_equal(s.reason, "CANCELLED");
    const sl_rm_worker_t *ws;
    assert_int_equal(sl_rm_driver_list(d, &ws), 0);
    sl_rm_driver_destroy(d);
}

static void test_node_failure_is_lost_and_rerequested(void **state) {
    NEED_CLUSTER();
    sl_rm_driver_t *d = make(conf, 0);
    char id[48], host[128], cmd[256];
    long job = start(d, sleeper, NULL, id);
    wait_job_state(job, "RUNNING", 60);
    sh_line("hostname -s", host, sizeof host);
    snprintf(cmd, sizeof cmd, "scontrol update nodename=%s state=down reason=sluice-test", host);
    assert_int_equal(system(cmd), 0);
    seen_t s = {.restart_on = d};
    poll_until_reported(d, &s, 30);
    assert_int_equal(s.state, SL_RM_WORKER_LOST);
    assert_string_equal(s.reason, "NODE_FAIL");
    /* The node comes back (ReturnToService=2 may already have done it). */
    snprintf(cmd, sizeof cmd, "scontrol update nodename=%s state=resume >/dev/null 2>&1", host);
    if (system(cmd) != 0) { /* already back */ }
    const sl_rm_worker_t *again = sl_rm_driver_find(d, s.new_id);
    assert_non_null(again);
    long job2 = again->handle;
    assert_true(job2 != job);
    wait_job_state(job2, "RUNNING", 60);
    sl_rm_driver_destroy(d);
    wait_job_unlisted(job2, 30);
}

static void test_destroy_cancels_everything(void **state) {
    NEED_CLUSTER();
    sl_rm_driver_t *d = make(conf, 0);
    char id[3][48];
    long jobs[3];
    for (int i = 0; i < 3; i++) jobs[i] = start(d, sleeper, NULL, id[i]);
    wait_job_state(jobs[0], "RUNNING", 60);
    sl_rm_driver_destroy(d);
    for (int i = 0; i < 3; i++) wait_job_unlisted(jobs[i], 30);
    char out[64];
    sh_line("squeue -h -o %i", out, sizeof out);
    assert_string_equal(out, ""); /* nothing of ours, nothing at all */
}

static void test_slurm_not_running(void **state) {
    NEED_CLUSTER();
    /* A port nobody listens on: bound for a moment to find it, then closed. */
    int port = 0, fd = tcp_socket(0, &port);
    assert_true(fd >= 0);
    close(fd);
    char dead[256], id[48] = "", err[1024];
    snprintf(dead, sizeof dead, "%s/dead.conf", cluster_dir);
    conf_with_port(dead, port);
    sl_rm_driver_t *d = make(dead, 0);
    long long t0 = sl__rm_now_ms();
    int rc = sl_rm_driver_start_worker(d, &profile, sleeper, NULL, id, sizeof id, err, sizeof err);
    long long took = sl__rm_now_ms() - t0;
    print_message("not running: %d (%s) after %lld ms: %s\n", rc, sl_err_name(rc), took, err);
    assert_int_equal(rc, SL_ECONNREFUSED);
    assert_non_null(strstr(err, "sbatch failed"));
    assert_non_null(strstr(err, "Unable to contact slurm controller"));
    assert_non_null(strstr(err, dead));
    assert_true(took < 60000); /* generous: guards against a hang only */
    assert_string_equal(id, "");
    const sl_rm_worker_t *ws;
    assert_int_equal(sl_rm_driver_list(d, &ws), 0);
    assert_int_equal(count_children(), 0);
    sl_rm_driver_destroy(d);
    char out[64];
    sh_line("squeue -h -o %i", out, sizeof out);
    assert_string_equal(out, ""); /* and the live cluster got nothing either */
}

static void test_controller_that_never_answers(void **state) {
    NEED_CLUSTER();
    /* Accepts connections (the kernel's backlog) but never reads: sbatch waits for an answer. */
    int port = 0, fd = tcp_socket(1, &port);
    assert_true(fd >= 0);
    char hung[256], id[48] = "", err[1024];
    snprintf(hung, sizeof hung, "%s/hung.conf", cluster_dir);
    conf_with_port(hung, port);
    sl_rm_driver_t *d = make(hung, 1500);
    long long t0 = sl__rm_now_ms();
    int rc = sl_rm_driver_start_worker(d, &profile, sleeper, NULL, id, sizeof id, err, sizeof err);
    long long took = sl__rm_now_ms() - t0;
    print_message("never answers: %d (%s) after %lld ms: %s\n", rc, sl_err_name(rc), took, err);
    close(fd);
    /* Either our deadline or Slurm's own message timeout, whichever comes first. */
    assert_true(rc == SL_ETIMEDOUT || rc == SL_ECONNREFUSED || rc == SL_EIO);
    if (rc == SL_ETIMEDOUT) assert_non_null(strstr(err, "sbatch timed out after 1500 ms"));
    assert_true(took < 60000);
    assert_int_equal(count_children(), 0);
    sl_rm_driver_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_running_stop),
        cmocka_unit_test(test_scancel_from_outside_is_lost),
        cmocka_unit_test(test_node_failure_is_lost_and_rerequested),
        cmocka_unit_test(test_destroy_cancels_everything),
        cmocka_unit_test(test_slurm_not_running),
        cmocka_unit_test(test_controller_that_never_answers),
    };
    return cmocka_run_group_tests(tests, cluster_setup, cluster_teardown);
}
