/* The TaskManager's cache of shipped job libraries: one private file per hash, written once
 * and shared by the runs that use it, removed after the last one (or its linger) and at
 * destroy; damaged or unloadable libraries fail with a message naming them and leave the
 * cache usable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "minicluster/library_cache.h"

static char parent[] = "/tmp/sl-libcache-XXXXXX";

/* The bytes of a real job library of the build (it needs the sl_* API, which this test
 * program exports). */
static uint8_t *read_sensor_job(size_t *len) {
    const char *b = getenv("SL_BUILD_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/sensor_job.so", b ? b : "build");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static int count_files(const char *dir) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "test -d %s && exit $(ls -A %s | wc -l); exit 100", dir, dir);
    int st = system(cmd);
    return WEXITSTATUS(st);
}

static void test_write_once_share_remove(void **state) {
    (void)state;
    size_t len;
    uint8_t *so = read_sensor_job(&len), sha[SL_LIBRARY_SHA256_LEN];
    assert_int_equal(sl_library_sha256(so, len, sha), 0);
    sl_library_cache_t *c;
    assert_int_equal(sl_library_cache_create(parent, 0, &c), 0);
    char dir[4200], err[1024];
    sl_library_cache_dir(c, dir, sizeof dir);
    assert_string_equal(dir, ""); /* made on first use */
    void *h1, *h2;
    sl_library_entry_t *e1, *e2;
    assert_int_equal(sl_library_cache_open(c, "sensor_job.so", so, len, sha, sizeof sha, &h1, &e1, err, sizeof err), 0);
    assert_int_equal(sl_library_cache_open(c, "sensor_job.so", so, len, sha, sizeof sha, &h2, &e2, err, sizeof err), 0);
    assert_ptr_equal(e1, e2);
    assert_int_equal(sl_library_cache_writes(c), 1); /* the second run reused the file */
    assert_int_equal(sl_library_cache_entries(c), 1);
    assert_non_null(dlsym(h1, "sluice_job_main"));
    sl_library_cache_dir(c, dir, sizeof dir);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char path[4300];
    snprintf(path, sizeof path, "%s", sl_library_entry_path(e1));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal((size_t)st.st_size, len);
    assert_int_equal(count_files(dir), 1);
    sl_library_cache_close(c, e1, h1);
    assert_int_equal(stat(path, &st), 0); /* still used */
    sl_library_cache_close(c, e2, h2);
    assert_int_not_equal(stat(path, &st), 0); /* linger 0: gone with the last run */
    assert_int_equal(sl_library_cache_entries(c), 0);
    sl_library_cache_destroy(c);
    assert_int_not_equal(stat(dir, &st), 0);
    free(so);
}

static void test_linger_and_sweep(void **state) {
    (void)state;
    size_t len;
    uint8_t *so = read_sensor_job(&len), sha[SL_LIBRARY_SHA256_LEN];
    assert_int_equal(sl_library_sha256(so, len, sha), 0);
    sl_library_cache_t *c;
    assert_int_equal(sl_library_cache_create(parent, 300, &c), 0);
    char dir[4200], err[1024];
    void *h;
    sl_library_entry_t *e;
    for (int attempt = 0; attempt < 3; attempt++) { /* restarts of one job */
        assert_int_equal(sl_library_cache_open(c, "sensor_job.so", so, len, sha, sizeof sha, &h, &e, err, sizeof err),
                         0);
        sl_library_cache_close(c, e, h);
        sl_library_cache_sweep(c);
    }
    assert_int_equal(sl_library_cache_writes(c), 1);
    sl_library_cache_dir(c, dir, sizeof dir);
    assert_int_equal(count_files(dir), 1);
    struct timespec t = {0, 400 * 1000000};
    nanosleep(&t, NULL);
    sl_library_cache_sweep(c);
    assert_int_equal(count_files(dir), 0);
    assert_int_equal(sl_library_cache_entries(c), 0);
    /* Unused but lingering files also go at destroy. */
    assert_int_equal(sl_library_cache_open(c, "sensor_job.so", so, len, sha, sizeof sha, &h, &e, err, sizeof err), 0);
    sl_library_cache_close(c, e, h);
    assert_int_equal(count_files(dir), 1);
    sl_library_cache_destroy(c);
    assert_int_equal(count_files(dir), 100); /* no directory */
    free(so);
}

static void test_damaged_and_garbage(void **state) {
    (void)state;
    sl_library_cache_t *c;
    assert_int_equal(sl_library_cache_create(parent, 0, &c), 0);
    char err[1024] = "", dir[4200];
    void *h = NULL;
    sl_library_entry_t *e = NULL;
    static const char text[] = "this is not a shared object\n";
    uint8_t sha[SL_LIBRARY_SHA256_LEN], other[SL_LIBRARY_SHA256_LEN];
    assert_int_equal(sl_library_sha256(text, sizeof text - 1, sha), 0);
    memcpy(other, sha, sizeof other);
    other[0] ^= 1;
    /* Damaged on the way: refused before anything is written. */
    assert_int_equal(sl_library_cache_open(c, "x.so", text, sizeof text - 1, other, sizeof other, &h, &e, err, sizeof err),
                     SL_EPROTO);
    assert_non_null(strstr(err, "x.so"));
    assert_non_null(strstr(err, "SHA-256"));
    assert_int_equal(sl_library_cache_writes(c), 0);
    /* No hash at all. */
    assert_int_equal(sl_library_cache_open(c, "x.so", text, sizeof text - 1, sha, 3, &h, &e, err, sizeof err), SL_EINVAL);
    /* Intact but not a library: dlopen's reason, and no file is kept. */
    assert_int_equal(sl_library_cache_open(c, "x.so", text, sizeof text - 1, sha, sizeof sha, &h, &e, err, sizeof err),
                     SL_ESYMBOL);
    assert_non_null(strstr(err, "cannot load the job library x.so: "));
    assert_true(strstr(err, "invalid ELF header") || strstr(err, "file too short"));
    assert_int_equal(sl_library_cache_entries(c), 0);
    sl_library_cache_dir(c, dir, sizeof dir);
    assert_int_equal(count_files(dir), 0);
    /* The cache still works. */
    size_t len;
    uint8_t *so = read_sensor_job(&len);
    assert_int_equal(sl_library_sha256(so, len, sha), 0);
    assert_int_equal(sl_library_cache_open(c, "sensor_job.so", so, len, sha, sizeof sha, &h, &e, err, sizeof err), 0);
    sl_library_cache_close(c, e, h);
    sl_library_cache_destroy(c);
    free(so);
}

static void test_unwritable_directory(void **state) {
    (void)state;
    sl_library_cache_t *c;
    assert_int_equal(sl_library_cache_create("/nonexistent/sluice", 0, &c), 0);
    char err[1024] = "";
    void *h;
    sl_library_entry_t *e;
    uint8_t sha[SL_LIBRARY_SHA256_LEN];
    assert_int_equal(sl_library_sha256("abc", 3, sha), 0);
    int rc = sl_library_cache_open(c, "y.so", "abc", 3, sha, sizeof sha, &h, &e, err, sizeof err);
    assert_true(rc < 0);
    assert_non_null(strstr(err, "y.so"));
    assert_non_null(strstr(err, "/nonexistent/sluice"));
    sl_library_cache_destroy(c);
}

static void test_sha256_known_answer(void **state) {
    (void)state;
    uint8_t out[SL_LIBRARY_SHA256_LEN];
    assert_int_equal(sl_library_sha256("abc", 3, out), 0);
    static const uint8_t want[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                   0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                   0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    assert_memory_equal(out, want, sizeof want);
}

static int setup(void **state) {
    (void)state;
    return mkdtemp(parent) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return rmdir(parent); /* fails when a test left something behind */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known_answer),
        cmocka_unit_test(test_write_once_share_remove),
        cmocka_unit_test(test_linger_and_sweep),
        cmocka_unit_test(test_damaged_and_garbage),
        cmocka_unit_test(test_unwritable_directory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
