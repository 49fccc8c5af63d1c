/* The "local" ResourceManager driver (src/resourcemanager/driver_local.c) with real child
 * processes: workers start with their environment and log file, a stopped worker is reaped
 * and reported STOPPED, one killed from outside is reported LOST with its signal, SIGTERM
 * turns into SIGKILL after the grace period, and destroy leaves no process behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "resourcemanager/driver.h"
#include "resourcemanager/proc.h"

static const sl_rm_profile_t profile = {.cpu_cores = 1, .memory_mib = 256, .slots = 2};

/* What the poll callback saw. */
typedef struct {
    int calls;
    char id[48];
    sl_rm_worker_state_t state;
    long pid;
    char reason[160];
} seen_t;

static void on_ended(void *arg, const sl_rm_worker_t *w, const char *reason) {
    seen_t *s = arg;
    s->calls++;
    snprintf(s->id, sizeof s->id, "%s", w->id);
    s->state = w->state;
    s->pid = w->handle;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
}

/* Polls until the callback ran once, for at most `ms` (a bound against hangs only). */
static void poll_until_reported(sl_rm_driver_t *d, seen_t *s, int ms) {
    char err[256];
    long long end = sl__rm_now_ms() + ms;
    while (s->calls == 0 && sl__rm_now_ms() < end) {
        assert_int_equal(sl_rm_driver_poll(d, on_ended, s, err, sizeof err), 0);
        if (s->calls == 0) usleep(20 * 1000);
    }
    assert_int_equal(s->calls, 1);
}

static int alive(long pid) {
    return kill((pid_t)pid, 0) == 0;
}

/* Does process group `pgid` still have a member that is not a zombie? Orphaned members are
 * reaped by init, which may take a while (about a second in some sandboxes); a zombie is
 * already dead, so it does not count. */
static int group_alive(long pgid) {
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char path[300], buf[512], st;
        int ppid, pgrp;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        if (rp && sscanf(rp + 2, "%c %d %d", &st, &ppid, &pgrp) == 3 && pgrp == pgid && st != 'Z')
            found = 1;
    }
    closedir(d);
    return found;
}

static long pid_of(sl_rm_driver_t *d, const char *id) {
    const sl_rm_worker_t *w = sl_rm_driver_find(d, id);
    assert_non_null(w);
    return w->handle;
}

static sl_rm_driver_t *make(char *dir, int grace_ms) {
    strcpy(dir, "/tmp/sl_test_rm_local_XXXXXX");
    assert_non_null(mkdtemp(dir));
    sl_rm_options_t o = {.log_dir = dir, .stop_grace_ms = grace_ms};
    sl_rm_driver_t *d;
    char err[256];
    assert_int_equal(sl_rm_driver_create("local", &o, &d, err, sizeof err), 0);
    assert_string_equal(sl_rm_driver_kind(d), "local");
    return d;
}

static void cleanup_dir(const char *dir) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Waits (bounded) until `path` contains `text`. */
static void wait_for_log(const char *path, const char *text) {
    char buf[1024];
    for (int i = 0; i < 250; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            if (strstr(buf, text)) return;
        }
        usleep(20 * 1000);
    }
    fail_msg("%s never contained '%s'", path, text);
}

static void test_start_stop_and_lost(void **state) {
    char dir[64], id1[48], id2[48], err[256], log[128];
    sl_rm_driver_t *d = make(dir, 5000);
    const char *tm1[] = {"sh", "-c", "echo \"hello $SL_TM_MARK\"; exec sleep 60", NULL};
    const char *env1[] = {"SL_TM_MARK=tm one", NULL};
    const char *tm2[] = {"sleep", "60", NULL};
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, tm1, env1, id1, sizeof id1, err, sizeof err), 0);
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, tm2, NULL, id2, sizeof id2, err, sizeof err), 0);
    assert_string_not_equal(id1, id2);

    const sl_rm_worker_t *ws;
    assert_int_equal(sl_rm_driver_list(d, &ws), 2);
    assert_int_equal(ws[0].state, SL_RM_WORKER_RUNNING);
    assert_int_equal(ws[1].state, SL_RM_WORKER_RUNNING);
    assert_true(ws[0].profile.slots == 2);
    long pid1 = pid_of(d, id1), pid2 = pid_of(d, id2);
    assert_true(alive(pid1) && alive(pid2));
    snprintf(log, sizeof log, "%s/%s.log", dir, id1);
    wait_for_log(log, "hello tm one");

    /* Nothing ended yet: poll reports nothing. */
    seen_t s = {0};
    assert_int_equal(sl_rm_driver_poll(d, on_ended, &s, err, sizeof err), 0);
    assert_int_equal(s.calls, 0);

    /* Stop: SIGTERM, reaped, reported once as STOPPED, gone from the table. */
    assert_int_equal(sl_rm_driver_stop_worker(d, id1, err, sizeof err), 0);
    assert_int_equal(sl_rm_driver_find(d, id1)->state, SL_RM_WORKER_STOPPING);
    assert_int_equal(sl_rm_driver_stop_worker(d, id1, err, sizeof err), 0); /* again: no-op */
    poll_until_reported(d, &s, 5000);
    assert_string_equal(s.id, id1);
    assert_int_equal(s.state, SL_RM_WORKER_STOPPED);
    assert_string_equal(s.reason, "killed by signal 15 (Terminated)");
    assert_false(alive(pid1)); /* ESRCH: not even a zombie, so it was reaped */
    assert_int_equal(errno, ESRCH);
    assert_null(sl_rm_driver_find(d, id1));
    assert_int_equal(sl_rm_driver_stop_worker(d, id1, err, sizeof err), SL_ENOENT);

    /* Killed from outside: LOST, with the signal. */
    memset(&s, 0, sizeof s);
    assert_int_equal(kill((pid_t)pid2, SIGKILL), 0);
    poll_until_reported(d, &s, 5000);
    assert_string_equal(s.id, id2);
    assert_int_equal(s.state, SL_RM_WORKER_LOST);
    assert_string_equal(s.reason, "killed by signal 9 (Killed)");
    assert_false(alive(pid2));
    assert_int_equal(sl_rm_driver_list(d, &ws), 0);

    sl_rm_driver_destroy(d);
    cleanup_dir(dir);
}

static void test_exit_status_reported(void **state) {
    char dir[64], id[48], err[256];
    sl_rm_driver_t *d = make(dir, 5000);
    const char *tm[] = {"sh", "-c", "exit 7", NULL};
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, tm, NULL, id, sizeof id, err, sizeof err), 0);
    seen_t s = {0};
    poll_until_reported(d, &s, 5000);
    assert_int_equal(s.state, SL_RM_WORKER_LOST);
    assert_string_equal(s.reason, "exited with status 7");
    sl_rm_driver_destroy(d);
    cleanup_dir(dir);
}

static void test_sigterm_ignored_becomes_sigkill(void **state) {
    char dir[64], id[48], err[256];
    sl_rm_driver_t *d = make(dir, 300);
    /* The shell ignores SIGTERM and keeps a child in its group: both must go. */
    const char *tm[] = {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done", NULL};
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, tm, NULL, id, sizeof id, err, sizeof err), 0);
    long pid = pid_of(d, id);
    char log[128];
    snprintf(log, sizeof log, "%s/%s.log", dir, id);
    wait_for_log(log, "ready"); /* the trap is set */
    assert_int_equal(sl_rm_driver_stop_worker(d, id, err, sizeof err), 0);
    seen_t s = {0};
    poll_until_reported(d, &s, 10000);
    assert_int_equal(s.state, SL_RM_WORKER_STOPPED);
    assert_string_equal(s.reason, "killed by signal 9 (Killed)");
    for (int i = 0; i < 100 && group_alive(pid); i++) usleep(10 * 1000);
    assert_false(group_alive(pid));
    sl_rm_driver_destroy(d);
    cleanup_dir(dir);
}

static void test_destroy_leaves_no_process(void **state) {
    char dir[64], id[3][48], err[256];
    sl_rm_driver_t *d = make(dir, 300);
    const char *plain[] = {"sleep", "60", NULL};
    const char *stubborn[] = {"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done", NULL};
    const char *forks[] = {"sh", "-c", "sleep 60 & sleep 60 & wait", NULL};
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, plain, NULL, id[0], 48, err, sizeof err), 0);
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, stubborn, NULL, id[1], 48, err, sizeof err), 0);
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, forks, NULL, id[2], 48, err, sizeof err), 0);
    long pids[3];
    for (int i = 0; i < 3; i++) pids[i] = pid_of(d, id[i]);
    usleep(100 * 1000); /* let the shells start their children */
    long long t0 = sl__rm_now_ms();
    sl_rm_driver_destroy(d);
    assert_true(sl__rm_now_ms() - t0 < 10000);
    for (int i = 0; i < 3; i++) {
        assert_false(alive(pids[i])); /* reaped: no zombie */
        for (int k = 0; k < 100 && group_alive(pids[i]); k++) usleep(10 * 1000);
        assert_false(group_alive(pids[i])); /* and nothing of its group is left */
    }
    cleanup_dir(dir);
}

/* A lost worker is requested again from inside the callback. */
typedef struct {
    sl_rm_driver_t *d;
    int restarted;
    char new_id[48];
} restart_t;

static void restart(void *arg, const sl_rm_worker_t *w, const char *reason) {
    restart_t *r = arg;
    const char *tm[] = {"sleep", "60", NULL};
    char err[256];
    assert_int_equal(w->state, SL_RM_WORKER_LOST);
    assert_int_equal(sl_rm_driver_start_worker(r->d, &w->profile, tm, NULL, r->new_id, sizeof r->new_id, err,
                                               sizeof err), 0);
    r->restarted++;
}

static void test_rerequest_from_callback(void **state) {
    char dir[64], id[48], err[256];
    sl_rm_driver_t *d = make(dir, 1000);
    const char *tm[] = {"sleep", "60", NULL};
    for (int i = 0; i < 9; i++) /* enough to make the table grow during the callback */
        assert_int_equal(sl_rm_driver_start_worker(d, &profile, tm, NULL, id, sizeof id, err, sizeof err), 0);
    assert_int_equal(kill((pid_t)pid_of(d, id), SIGKILL), 0);
    restart_t r = {.d = d};
    for (int i = 0; i < 250 && !r.restarted; i++) {
        assert_int_equal(sl_rm_driver_poll(d, restart, &r, err, sizeof err), 0);
        usleep(20 * 1000);
    }
    assert_int_equal(r.restarted, 1);
    const sl_rm_worker_t *ws;
    assert_int_equal(sl_rm_driver_list(d, &ws), 9);
    assert_non_null(sl_rm_driver_find(d, r.new_id));
    assert_null(sl_rm_driver_find(d, id));
    sl_rm_driver_destroy(d);
    cleanup_dir(dir);
}

static void test_bad_input(void **state) {
    char dir[64], id[48], err[256];
    sl_rm_driver_t *d = make(dir, 1000);
    const char *empty[] = {NULL};
    const char *missing[] = {"sl-no-such-taskmanager", NULL};
    const char *ok[] = {"true", NULL};
    const char *bad_env[] = {"NOEQUALS", NULL};
    sl_rm_profile_t zero = {0};
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, empty, NULL, id, sizeof id, err, sizeof err), SL_EINVAL);
    assert_int_equal(sl_rm_driver_start_worker(d, &zero, ok, NULL, id, sizeof id, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "bad resource profile"));
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, ok, bad_env, id, sizeof id, err, sizeof err),
                     SL_EINVAL);
    assert_int_equal(sl_rm_driver_start_worker(d, &profile, missing, NULL, id, sizeof id, err, sizeof err),
                     SL_ENOENT);
    assert_non_null(strstr(err, "sl-no-such-taskmanager: command not found"));
    const sl_rm_worker_t *ws;
    assert_int_equal(sl_rm_driver_list(d, &ws), 0);
    assert_int_equal(sl_rm_driver_stop_worker(d, "local-99", err, sizeof err), SL_ENOENT);
    sl_rm_driver_destroy(d);
    cleanup_dir(dir);

    sl_rm_options_t o = {.log_dir = "/proc/sl-cannot-create/logs"};
    assert_int_not_equal(sl_rm_driver_create("local", &o, &d, err, sizeof err), 0);
    assert_non_null(strstr(err, "cannot create log directory /proc/sl-cannot-create/logs"));
}

/* Allocation failures (SQLite-style fault injection) end in a clean error and no orphan: the
 * first allocation of a start is the child's environment, the second the worker table. */
static void test_allocation_failures(void **state) {
    char dir[64], id[48], err[256];
    sl_rm_driver_t *d = make(dir, 1000);
    const char *tm[] = {"sleep", "60", NULL};
    for (long n = 1; n <= 2; n++) {
        sl_alloc_fail_after(n, 0);
        assert_int_equal(sl_rm_driver_start_worker(d, &profile, tm, NULL, id, sizeof id, err, sizeof err),
                         SL_ENOMEM);
        sl_alloc_fail_after(0, 0);
        /* n = 2 fails after the spawn: the child must have been killed and reaped. */
        assert_string_equal(err, n == 1 ? "sleep: out of memory" : "local: out of memory");
        const sl_rm_worker_t *ws;
        assert_int_equal(sl_rm_driver_list(d, &ws), 0);
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child at all, not even a zombie */
        assert_int_equal(errno, ECHILD);
    }
    sl_rm_driver_destroy(d);
    cleanup_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_stop_and_lost),
        cmocka_unit_test(test_exit_status_reported),
        cmocka_unit_test(test_sigterm_ignored_becomes_sigkill),
        cmocka_unit_test(test_destroy_leaves_no_process),
        cmocka_unit_test(test_rerequest_from_callback),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
