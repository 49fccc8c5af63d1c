/* The "standalone" ResourceManager driver (src/resourcemanager/driver_standalone.c) and the
 * factory (driver.c): starting a TaskManager is refused with the command to run by hand,
 * stopping is a no-op, poll reports nothing; an unknown driver kind is a clear error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <string.h>

#include "resourcemanager/driver.h"

static int calls;

static void on_ended(void *arg, const sl_rm_worker_t *w, const char *reason) {
    calls++;
}

static void test_refuses_to_start(void **state) {
    sl_rm_driver_t *d;
    char err[256], id[48] = "";
    assert_int_equal(sl_rm_driver_create("standalone", NULL, &d, err, sizeof err), 0);
    assert_string_equal(sl_rm_driver_kind(d), "standalone");
    sl_rm_profile_t p = {.cpu_cores = 1, .memory_mib = 512, .slots = 1};
    const char *argv[] = {"sluice", "taskmanager", NULL};
    assert_int_equal(sl_rm_driver_start_worker(d, &p, argv, NULL, id, sizeof id, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "standalone: "));
    assert_non_null(strstr(err, "start TaskManagers by hand with `sluice taskmanager --jobmanager HOST:PORT`"));
    assert_string_equal(id, "");
    /* Refused first, whatever the arguments. */
    assert_int_equal(sl_rm_driver_start_worker(d, NULL, NULL, NULL, id, sizeof id, err, sizeof err), SL_EINVAL);
    assert_non_null(strstr(err, "sluice taskmanager --jobmanager HOST:PORT"));

    assert_int_equal(sl_rm_driver_stop_worker(d, "tm-started-by-hand", err, sizeof err), 0);
    assert_int_equal(sl_rm_driver_poll(d, on_ended, NULL, err, sizeof err), 0);
    assert_int_equal(calls, 0);
    const sl_rm_worker_t *ws;
    assert_int_equal(sl_rm_driver_list(d, &ws), 0);
    sl_rm_driver_destroy(d);
    sl_rm_driver_destroy(NULL);
}

static void test_unknown_kind(void **state) {
    sl_rm_driver_t *d = NULL;
    char err[256];
    assert_int_equal(sl_rm_driver_create("yarn", NULL, &d, err, sizeof err), SL_EINVAL);
    assert_null(d);
    assert_string_equal(err, "resourcemanager: unknown driver 'yarn' (expected local, standalone or slurm)");
    sl_rm_options_t bad = {.stop_grace_ms = -1};
    assert_int_equal(sl_rm_driver_create("local", &bad, &d, err, sizeof err), SL_EINVAL);
}

static void test_state_names(void **state) {
    assert_string_equal(sl_rm_worker_state_name(SL_RM_WORKER_PENDING), "PENDING");
    assert_string_equal(sl_rm_worker_state_name(SL_RM_WORKER_LOST), "LOST");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_to_start),
        cmocka_unit_test(test_unknown_kind),
        cmocka_unit_test(test_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
