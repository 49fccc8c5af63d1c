/* The driver thread (src/resourcemanager/driver_thread.c): operations run in order and come
 * back with the driver's results (local driver, real child processes); a cancelled thread
 * refuses new operations. A stuck Slurm command (slurmctld stopped) and a shutdown with sbatch
 * in flight are tested against a real Slurm in test_rm_service.c. */
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

#include "children.h"
#include "resourcemanager/driver_thread.h"
#include "resourcemanager/proc.h"

static const sl_rm_profile_t profile = {.cpu_cores = 1, .memory_mib = 256, .slots = 1};
static const char *const sleeper[] = {"sh", "-c", "exec sleep 300", NULL};
static char work_dir[64];

static int setup(void **state) {
    strcpy(work_dir, "/tmp/sl_test_dthread_XXXXXX");
    assert_non_null(mkdtemp(work_dir));
    return 0;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static sl_rm_driver_t *make(const char *kind, int command_timeout_ms) {
    sl_rm_options_t o = {.log_dir = work_dir, .command_timeout_ms = command_timeout_ms, .stop_grace_ms = 2000};
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
        cmocka_unit_test(submit_after_cancel_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
