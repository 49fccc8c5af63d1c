/* Child processes of the ResourceManager drivers (src/resourcemanager/proc.c): output capture,
 * environment additions, a command that hangs is killed with its whole process group at the
 * deadline and reaped, and a missing command is a clear SL_ENOENT. Real processes only. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "children.h"
#include "resourcemanager/proc.h"

/* Is a process running whose command line contains `needle`? */
static int process_with_arg(const char *needle) {
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char path[300], buf[4096];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0') buf[i] = ' ';
        buf[len] = '\0';
        found = strstr(buf, needle) != NULL;
    }
    closedir(d);
    return found;
}

static void test_captures_output_and_status(void **state) {
    const char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    sl__rm_proc_result_t res;
    char err[256];
    assert_int_equal(sl__rm_proc_run(argv, NULL, 5000, &res, err, sizeof err), 0);
    assert_false(res.timed_out);
    assert_true(WIFEXITED(res.status));
    assert_int_equal(WEXITSTATUS(res.status), 3);
    assert_string_equal(res.out, "out\n");
    assert_string_equal(res.errtext, "err\n");
    sl__rm_proc_result_free(&res);
    assert_int_equal(count_children(), 0);
}

static void test_env_additions_override(void **state) {
    setenv("SL_RM_TEST_OLD", "old", 1);
    const char *argv[] = {"sh", "-c", "printf '%s|%s|%s' \"$SL_RM_TEST_NEW\" \"$SL_RM_TEST_OLD\" \"$HOME\"", NULL};
    const char *env[] = {"SL_RM_TEST_NEW=a b 'c'", "SL_RM_TEST_OLD=new", NULL};
    sl__rm_proc_result_t res;
    char err[256], expect[512];
    assert_int_equal(sl__rm_proc_run(argv, env, 5000, &res, err, sizeof err), 0);
    snprintf(expect, sizeof expect, "a b 'c'|new|%s", getenv("HOME") ? getenv("HOME") : "");
    assert_string_equal(res.out, expect);
    sl__rm_proc_result_free(&res);
}

static void test_timeout_kills_the_group(void **state) {
    /* A grandchild in the background and a foreground sleep: both must die at the deadline. */
    const char *argv[] = {"sh", "-c", "sleep 31.4159 & sleep 31.4158; echo never", NULL};
    sl__rm_proc_result_t res;
    char err[256];
    long long t0 = sl__rm_now_ms();
    assert_int_equal(sl__rm_proc_run(argv, NULL, 300, &res, err, sizeof err), 0);
    long long took = sl__rm_now_ms() - t0;
    assert_true(res.timed_out);
    assert_true(took < 10000); /* generous: only guards against a hang */
    assert_string_equal(res.out, "");
    sl__rm_proc_result_free(&res);
    assert_int_equal(count_children(), 0);
    /* SIGKILL delivery is immediate, but the kernel may take a moment to remove the task. */
    for (int i = 0; i < 100 && process_with_arg("31.415"); i++) usleep(20 * 1000);
    assert_false(process_with_arg("31.4159"));
    assert_false(process_with_arg("31.4158"));
}

static void test_missing_command(void **state) {
    const char *argv[] = {"sl-no-such-command-xyz", "--help", NULL};
    sl__rm_proc_result_t res;
    char err[256];
    assert_int_equal(sl__rm_proc_run(argv, NULL, 5000, &res, err, sizeof err), SL_ENOENT);
    assert_non_null(strstr(err, "sl-no-such-command-xyz: command not found"));
    assert_int_equal(count_children(), 0);
}

static void test_spawn_to_log(void **state) {
    char dir[] = "/tmp/sl_test_proc_XXXXXX", log[128], buf[128] = {0};
    assert_non_null(mkdtemp(dir));
    snprintf(log, sizeof log, "%s/x.log", dir);
    const char *argv[] = {"sh", "-c", "echo to-out; echo to-err >&2; kill -TERM $$", NULL};
    pid_t pid;
    char err[256];
    assert_int_equal(sl__rm_proc_spawn(argv, NULL, log, &pid, err, sizeof err), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    char why[128];
    sl__rm_proc_describe_status(status, why, sizeof why);
    assert_string_equal(why, "killed by signal 15 (Terminated)");
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    assert_true(fread(buf, 1, sizeof buf - 1, f) > 0);
    fclose(f);
    assert_string_equal(buf, "to-out\nto-err\n");
    unlink(log);
    rmdir(dir);
}

static void test_describe_status(void **state) {
    char buf[128];
    sl__rm_proc_describe_status(7 << 8, buf, sizeof buf);
    assert_string_equal(buf, "exited with status 7");
    sl__rm_proc_describe_status(SIGKILL, buf, sizeof buf);
    assert_string_equal(buf, "killed by signal 9 (Killed)");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_captures_output_and_status),
        cmocka_unit_test(test_env_additions_override),
        cmocka_unit_test(test_timeout_kills_the_group),
        cmocka_unit_test(test_missing_command),
        cmocka_unit_test(test_spawn_to_log),
        cmocka_unit_test(test_describe_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
