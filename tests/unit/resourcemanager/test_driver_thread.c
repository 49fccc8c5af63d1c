/* The driver thread (src/resourcemanager/driver_thread.c): operations run in order and come
 * back with the driver's results (local driver, real child processes); a stuck Slurm command
 * blocks only the driver thread, never submit or take_done; destroy drops queued operations,
 * waits for the one in progress and leaves the started worker to the driver, whose destroy
 * cancels it. Slurm is played by fake sbatch/scancel/squeue scripts first in PATH, so this
 * needs neither root nor a cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resourcemanager/driver_thread.h"
#include "resourcemanager/proc.h"

static const sl_rm_profile_t profile = {.cpu_cores = 1, .memory_mib = 256, .slots = 1};
static const char *const sleeper[] = {"sh", "-c", "exec sleep 300", NULL};
static char fake_dir[64], calls_log[128];

/* ---- fake Slurm ---- */

static void write_file(const char *name, const char *text, int mode) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fake_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, (mode_t)mode), 0);
}

/* sbatch.mode: "hang" (until killed), "slow" (1 s, then job 4242) or anything else (job 4242 at
 * once). Every call is appended to calls.log. */
static void fake_slurm(const char *sbatch_mode) {
    write_file("sbatch",
               "#!/bin/sh\necho \"sbatch $*\" >> \"$FAKE_SLURM/calls.log\"\n"
               "case \"$(cat \"$FAKE_SLURM/sbatch.mode\")\" in\n"
               "hang) exec sleep 60;;\nslow) sleep 1; echo 4242;;\n*) echo 4242;;\nesac\n",
               0755);
    write_file("scancel", "#!/bin/sh\necho \"scancel $*\" >> \"$FAKE_SLURM/calls.log\"\n", 0755);
    write_file("sbatch.mode", sbatch_mode, 0644);
    write_file("calls.log", "", 0644);
}

/* How many lines of calls.log start with `prefix`. */
static int calls(const char *prefix) {
    FILE *f = fopen(calls_log, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strncmp(line, prefix, strlen(prefix)) == 0;
    fclose(f);
    return n;
}

/* Processes whose parent is this test (a leftover sbatch or worker would be one). */
static int count_children(void) {
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512];
        int ppid;
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == getpid()) n++;
    }
    closedir(d);
    return n;
}

static int setup(void **state) {
    strcpy(fake_dir, "/tmp/sl_test_dthread_XXXXXX");
    assert_non_null(mkdtemp(fake_dir));
    snprintf(calls_log, sizeof calls_log, "%s/calls.log", fake_dir);
    char path[4096];
    snprintf(path, sizeof path, "%s:%s", fake_dir, getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    setenv("FAKE_SLURM", fake_dir, 1);
    return 0;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fake_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static sl_rm_driver_t *make(const char *kind, int command_timeout_ms) {
    sl_rm_options_t o = {.log_dir = fake_dir, .command_timeout_ms = command_timeout_ms, .stop_grace_ms = 2000};
    sl_rm_driver_t *d;
    char err[512];
    if (sl_rm_driver_create(kind, &o, &d, err, sizeof err) != 0)
        fail_msg("driver: %s", err);
    return d;
}

static void submit(sl_rm_driver_thread_t *t, sl_rm_op_t *op) { assert_int_equal(sl_rm_driver_thread_submit(t, op), 0); }

/* The next finished operation, waiting at most `ms` (a bound against hangs only). */
static sl_rm_op_t *next_done(sl_rm_driver_thread_t *t, int ms) {
    long long end = sl__rm_now_ms() + ms;
    sl_rm_op_t *op;
    while ((op = sl_rm_driver_thread_take_done(t)) == NULL && sl__rm_now_ms() < end)
        usleep(10 * 1000);
    if (op == NULL)
        fail_msg("no operation finished within %d ms", ms);
    return op;
}

/* ---- tests ---- */

static void operations_run_in_order_with_the_drivers_results(void **state) {
    sl_rm_driver_t *d = make("local", 0);
    sl_rm_driver_thread_t *t;
    assert_int_equal(sl_rm_driver_thread_create(d, &t), 0);
    const char *missing[] = {"/nonexistent/sluice-taskmanager", NULL};
    sl_rm_op_t *op;
    assert_int_equal(sl_rm_op_start("tm-1", &profile, sleeper, NULL, &op), 0);
    submit(t, op);
    assert_int_equal(sl_rm_op_start("tm-2", &profile, missing, NULL, &op), 0);
    submit(t, op);
    /* Queued behind the start of its worker, so it finds it. */
    assert_int_equal(sl_rm_op_stop("tm-1", "local-1", &op), 0);
    submit(t, op);

    op = next_done(t, 10000);
    assert_int_equal(op->kind, SL_RM_OP_START);
    assert_string_equal(op->tag, "tm-1");
    assert_int_equal(op->status, 0);
    assert_string_equal(op->worker, "local-1");
    sl_rm_op_free(op);
    op = next_done(t, 10000);
    assert_string_equal(op->tag, "tm-2");
    assert_int_equal(op->status, SL_ENOENT);
    assert_non_null(strstr(op->err, "/nonexistent/sluice-taskmanager: command not found"));
    sl_rm_op_free(op);
    op = next_done(t, 10000);
    assert_int_equal(op->kind, SL_RM_OP_STOP);
    assert_int_equal(op->status, 0);
    sl_rm_op_free(op);

    /* Polls report the stopped worker once. */
    size_t reported = 0;
    for (int i = 0; i < 500 && reported == 0; i++) {
        assert_int_equal(sl_rm_op_poll(&op), 0);
        submit(t, op);
        op = next_done(t, 10000);
        assert_int_equal(op->kind, SL_RM_OP_POLL);
        assert_int_equal(op->status, 0);
        reported = op->nended;
        if (reported) {
            assert_int_equal(op->nended, 1);
            assert_string_equal(op->ended[0].id, "local-1");
            assert_int_equal(op->ended[0].state, SL_RM_WORKER_STOPPED);
            assert_non_null(strstr(op->ended[0].reason, "signal 15"));
        }
        sl_rm_op_free(op);
        if (!reported) usleep(10 * 1000);
    }
    assert_int_equal(reported, 1);
    sl_rm_driver_thread_destroy(t);
    sl_rm_driver_destroy(d);
    assert_int_equal(count_children(), 0);
}

static void a_stuck_sbatch_blocks_only_the_driver_thread(void **state) {
    fake_slurm("hang");
    sl_rm_driver_t *d = make("slurm", 2000);
    sl_rm_driver_thread_t *t;
    assert_int_equal(sl_rm_driver_thread_create(d, &t), 0);
    sl_rm_op_t *op;
    assert_int_equal(sl_rm_op_start("tm-1", &profile, sleeper, NULL, &op), 0);
    submit(t, op);
    /* While sbatch hangs, submitting and collecting return at once: a caller blocked on the
     * command would take its whole 2 s deadline. */
    long long slowest = 0, end = sl__rm_now_ms() + 10000;
    while ((op = NULL, sl__rm_now_ms() < end)) {
        long long t0 = sl__rm_now_ms();
        sl_rm_op_t *poll;
        assert_int_equal(sl_rm_op_poll(&poll), 0);
        submit(t, poll);
        op = sl_rm_driver_thread_take_done(t);
        long long took = sl__rm_now_ms() - t0;
        slowest = took > slowest ? took : slowest;
        if (op && op->kind == SL_RM_OP_START)
            break;
        sl_rm_op_free(op);
        usleep(20 * 1000);
    }
    assert_non_null(op);
    assert_true(slowest < 1000);
    assert_int_equal(op->status, SL_ETIMEDOUT);
    assert_non_null(strstr(op->err, "sbatch timed out after 2000 ms"));
    sl_rm_op_free(op);
    /* The job sbatch may have submitted is cancelled by its name. */
    assert_int_equal(calls("sbatch "), 1);
    assert_int_equal(calls("scancel --name sluice-tm-"), 1);
    sl_rm_driver_thread_destroy(t);
    sl_rm_driver_destroy(d);
    assert_int_equal(count_children(), 0);
}

static void destroy_drops_queued_starts_and_the_driver_stops_the_started_one(void **state) {
    fake_slurm("slow");
    sl_rm_driver_t *d = make("slurm", 20000);
    sl_rm_driver_thread_t *t;
    assert_int_equal(sl_rm_driver_thread_create(d, &t), 0);
    for (int i = 0; i < 3; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "tm-%d", i + 1);
        sl_rm_op_t *op;
        assert_int_equal(sl_rm_op_start(tag, &profile, sleeper, NULL, &op), 0);
        submit(t, op);
    }
    for (int i = 0; i < 200 && calls("sbatch ") == 0; i++)
        usleep(10 * 1000);
    assert_int_equal(calls("sbatch "), 1);
    /* The first start is in progress: destroy waits for it and drops the other two. */
    sl_rm_driver_thread_destroy(t);
    assert_int_equal(calls("sbatch "), 1);
    const sl_rm_worker_t *ws;
    assert_int_equal(sl_rm_driver_list(d, &ws), 1);
    assert_string_equal(ws[0].id, "slurm-4242");
    sl_rm_driver_destroy(d);
    assert_int_equal(calls("scancel 4242"), 1);
    assert_int_equal(count_children(), 0);
}

static void submit_after_cancel_is_refused(void **state) {
    sl_rm_driver_t *d = make("standalone", 0);
    sl_rm_driver_thread_t *t;
    assert_int_equal(sl_rm_driver_thread_create(d, &t), 0);
    sl_rm_driver_thread_cancel(t);
    sl_rm_op_t *op;
    assert_int_equal(sl_rm_op_poll(&op), 0);
    assert_int_equal(sl_rm_driver_thread_submit(t, op), SL_ECANCELED);
    sl_rm_op_free(op); /* still ours after a refusal */
    assert_null(sl_rm_driver_thread_take_done(t));
    sl_rm_driver_thread_destroy(t);
    sl_rm_driver_thread_destroy(NULL);
    sl_rm_driver_destroy(d);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(operations_run_in_order_with_the_drivers_results),
        cmocka_unit_test(a_stuck_sbatch_blocks_only_the_driver_thread),
        cmocka_unit_test(destroy_drops_queued_starts_and_the_driver_stops_the_started_one),
        cmocka_unit_test(submit_after_cancel_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
