/* Scratch directories of dead processes (src/core/orphan_dirs.h): only "<prefix><pid>-*"
 * directories of this user whose process is gone are removed, with their files; a live
 * process's, other names, plain files and directories holding subdirectories stay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/orphan_dirs.h"

static char parent[64];

/* A pid that existed and is gone: a child that exited and was reaped. */
static long dead_pid(void) {
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(0);
    assert_int_equal(waitpid(p, NULL, 0), p);
    return (long)p;
}

static void make_dir(const char *name, const char *file) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", parent, name);
    assert_int_equal(mkdir(p, 0700), 0);
    if (file) {
        snprintf(p, sizeof p, "%s/%s/%s", parent, name, file);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs("x", f);
        fclose(f);
    }
}

static bool exists(const char *name) {
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", parent, name);
    return stat(p, &st) == 0;
}

static void test_only_dead_processes_dirs_go(void **state) {
    (void)state;
    strcpy(parent, "/tmp/sl_test_orphans_XXXXXX");
    assert_non_null(mkdtemp(parent));
    long dead = dead_pid();
    char gone[64], gone_empty[64], live[64], nested[64], file[64], p[256];
    snprintf(gone, sizeof gone, "sluice-tm-%ld-abc", dead);
    snprintf(gone_empty, sizeof gone_empty, "sluice-tm-%ld-def", dead);
    snprintf(live, sizeof live, "sluice-tm-%ld-ghi", (long)getpid());
    snprintf(nested, sizeof nested, "sluice-tm-%ld-jkl", dead);
    snprintf(file, sizeof file, "sluice-tm-%ld-file", dead);
    make_dir(gone, "lib-0123-abc.so");
    make_dir(gone_empty, NULL);
    make_dir(live, "lib-4567-def.so");
    make_dir(nested, NULL);
    snprintf(p, sizeof p, "%s/%s/sub", parent, nested);
    assert_int_equal(mkdir(p, 0700), 0);
    make_dir("sluice-tm-notapid", "x");
    make_dir("other-1-x", "y");
    snprintf(p, sizeof p, "%s/%s", parent, file);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);

    assert_int_equal(sl_remove_orphan_dirs(parent, "sluice-tm-"), 2);
    assert_false(exists(gone));
    assert_false(exists(gone_empty));
    assert_true(exists(live));
    assert_true(exists(nested)); /* a subdirectory is not a scratch file: left alone */
    assert_true(exists("sluice-tm-notapid"));
    assert_true(exists("other-1-x"));
    assert_true(exists(file));
    assert_int_equal(sl_remove_orphan_dirs(parent, "sluice-tm-"), 0);
    assert_int_equal(sl_remove_orphan_dirs("/nonexistent/dir", "sluice-tm-"), 0);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", parent);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_only_dead_processes_dirs_go)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
