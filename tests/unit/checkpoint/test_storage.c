/* Checkpoint directory storage (src/checkpoint/storage.h) and CRC32C (checksum.h): the check value,
 * atomic writes, verification errors, copy, listing of completed checkpoints, discard, and
 * resolving user-given restore paths. Each test works in its own mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/checksum.h"
#include "checkpoint/storage.h"
#include "core/alloc.h"

typedef struct {
    char root[64];
    sl_ckpt_storage_t s;
    char err[512];
} fx_t;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->root, "/tmp/sl_ckpt_storage_XXXXXX");
    if (mkdtemp(f->root) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    chmod(f->root, 0700);
    sl_ckpt_storage_destroy(&f->s);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void write_raw(const char *p, const char *text) {
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void init_storage(fx_t *f) { assert_int_equal(sl_ckpt_storage_init(&f->s, f->root, "job1", f->err, sizeof(f->err)), 0); }

/* Marks checkpoint n complete (or only creates its directory) without going through metadata.c. */
static void make_chk(fx_t *f, uint64_t n, int complete) {
    char p[PATH_MAX];
    assert_int_equal(sl_ckpt_dir(&f->s, n, p, sizeof(p)), 0);
    assert_int_equal(mkdir(p, 0755), 0);
    if (complete) {
        assert_int_equal(sl_ckpt_metadata_path(&f->s, n, p, sizeof(p)), 0);
        write_raw(p, "{}\n");
    }
}

/* ---- checksum ---- */

static uint32_t crc_bitwise(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

static void test_crc32c_check_value(void **state) {
    (void)state;
    assert_int_equal(sl_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(sl_crc32c(0, "", 0), 0);
    /* Chaining equals one pass, at every split point (exercises the 8-byte loop and the tail). */
    for (size_t split = 0; split <= 9; split++)
        assert_int_equal(sl_crc32c(sl_crc32c(0, "123456789", split), "123456789" + split, 9 - split), 0xE3069283u);
    /* 32 bytes of zeros: RFC 3720 (iSCSI) test vector. */
    unsigned char zeros[32] = {0};
    assert_int_equal(sl_crc32c(0, zeros, 32), 0x8A9136AAu);
}

static void test_crc32c_matches_bitwise(void **state) {
    (void)state;
    unsigned char buf[4099];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t off = 0; off < 8; off++)
        assert_int_equal(sl_crc32c(0, buf + off, sizeof(buf) - off), crc_bitwise(buf + off, sizeof(buf) - off));
}

/* ---- init and paths ---- */

static void test_init_creates_layout(void **state) {
    fx_t *f = *state;
    char p[PATH_MAX];
    char nested[PATH_MAX];
    snprintf(nested, sizeof(nested), "%s/a/b", f->root);
    assert_int_equal(sl_ckpt_storage_init(&f->s, nested, "job1", f->err, sizeof(f->err)), 0);
    snprintf(p, sizeof(p), "%s/a/b/job1/shared", f->root);
    assert_true(exists(p));
    snprintf(p, sizeof(p), "%s/a/b/job1/taskowned", f->root);
    assert_true(exists(p));
    sl_ckpt_storage_destroy(&f->s);
    /* Initializing again over an existing layout is fine. */
    assert_int_equal(sl_ckpt_storage_init(&f->s, nested, "job1", f->err, sizeof(f->err)), 0);
    assert_string_equal(f->s.job_id, "job1");
}

static void test_init_rejects_bad_job_id(void **state) {
    fx_t *f = *state;
    assert_int_equal(sl_ckpt_storage_init(&f->s, f->root, "a/b", f->err, sizeof(f->err)), SL_EINVAL);
    assert_non_null(strstr(f->err, "a/b"));
    assert_int_equal(sl_ckpt_storage_init(&f->s, f->root, "..", f->err, sizeof(f->err)), SL_EINVAL);
    assert_int_equal(sl_ckpt_storage_init(&f->s, f->root, "", f->err, sizeof(f->err)), SL_EINVAL);
}

/* Runs `fn` as a user who may not write `dir`: with chmod 0500 when we are not root, and as
 * root (CI runs as root, who ignores permission bits) in a child that drops to nobody, so the
 * refusal is tested either way. The child sends fn's result and f->err back through a pipe. */
static int as_unprivileged(fx_t *f, const char *dir, int (*fn)(fx_t *)) {
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0500), 0);
        int rc = fn(f);
        chmod(dir, 0700);
        return rc;
    }
    /* nobody may enter the test directory but not write in it (root owns it) */
    assert_int_equal(chmod(f->root, 0755), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        int rc = fn(f);
        if (write(fds[1], &rc, sizeof rc) != sizeof rc || write(fds[1], f->err, sizeof f->err) != sizeof f->err)
            _exit(4);
        _exit(0);
    }
    close(fds[1]);
    int rc = 0, status = 0;
    ssize_t n = read(fds[0], &rc, sizeof rc);
    ssize_t m = read(fds[0], f->err, sizeof f->err);
    close(fds[0]);
    chmod(f->root, 0700);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(n, sizeof rc);
    assert_int_equal(m, sizeof f->err);
    f->err[sizeof f->err - 1] = '\0';
    return rc;
}

static int init_job1(fx_t *f) { return sl_ckpt_storage_init(&f->s, f->root, "job1", f->err, sizeof(f->err)); }

static void test_init_read_only_dir(void **state) {
    fx_t *f = *state;
    int rc = as_unprivileged(f, f->root, init_job1);
    assert_int_equal(rc, SL_EIO);
    assert_non_null(strstr(f->err, f->root));
    assert_non_null(strstr(f->err, "Permission denied"));
    assert_null(f->s.job_dir); /* nothing to clean up after a failed init */
}

static void test_paths(void **state) {
    fx_t *f = *state;
    init_storage(f);
    char p[PATH_MAX], want[PATH_MAX];
    assert_int_equal(sl_ckpt_dir(&f->s, 7, p, sizeof(p)), 0);
    snprintf(want, sizeof(want), "%s/job1/chk-7", f->root);
    assert_string_equal(p, want);
    assert_int_equal(sl_ckpt_metadata_path(&f->s, 7, p, sizeof(p)), 0);
    snprintf(want, sizeof(want), "%s/job1/chk-7/_metadata", f->root);
    assert_string_equal(p, want);
    assert_int_equal(sl_ckpt_shared_path(&f->s, "a.sst", p, sizeof(p)), 0);
    snprintf(want, sizeof(want), "%s/job1/shared/a.sst", f->root);
    assert_string_equal(p, want);
    assert_int_equal(sl_ckpt_taskowned_path(&f->s, "log", p, sizeof(p)), 0);
    snprintf(want, sizeof(want), "%s/job1/taskowned/log", f->root);
    assert_string_equal(p, want);
    assert_int_equal(sl_ckpt_shared_path(&f->s, "../x", p, sizeof(p)), SL_EINVAL);
    assert_int_equal(sl_ckpt_dir(&f->s, 7, p, 10), SL_ERANGE);
}

/* ---- write, verify, copy ---- */

static void test_write_and_verify(void **state) {
    fx_t *f = *state;
    init_storage(f);
    char p[PATH_MAX], tmp[PATH_MAX + 8];
    sl_ckpt_file_path(&f->s, 3, "op-0", p, sizeof(p));
    sl_ckpt_file_info_t info;
    assert_int_equal(sl_ckpt_file_write(p, "123456789", 9, &info, f->err, sizeof(f->err)), 0);
    assert_int_equal(info.size, 9);
    assert_int_equal(info.crc32c, 0xE3069283u);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    assert_false(exists(tmp));
    assert_int_equal(sl_ckpt_file_verify(p, 9, 0xE3069283u, f->err, sizeof(f->err)), 0);

    /* Wrong checksum: same size, one byte flipped. */
    write_raw(p, "123456780");
    assert_int_equal(sl_ckpt_file_verify(p, 9, 0xE3069283u, f->err, sizeof(f->err)), SL_EPARSE);
    assert_non_null(strstr(f->err, "checksum mismatch in"));
    assert_non_null(strstr(f->err, p));
    assert_non_null(strstr(f->err, "expected 0xe3069283"));

    /* Truncated. */
    write_raw(p, "1234");
    assert_int_equal(sl_ckpt_file_verify(p, 9, 0xE3069283u, f->err, sizeof(f->err)), SL_EPARSE);
    assert_non_null(strstr(f->err, "size mismatch in"));
    assert_non_null(strstr(f->err, "expected 9 bytes, got 4"));

    unlink(p);
    assert_int_equal(sl_ckpt_file_verify(p, 9, 0xE3069283u, f->err, sizeof(f->err)), SL_ENOENT);
    assert_non_null(strstr(f->err, "missing"));
    assert_non_null(strstr(f->err, p));
}

static void test_writer_streaming(void **state) {
    fx_t *f = *state;
    init_storage(f);
    char p[PATH_MAX], tmp[PATH_MAX + 8];
    sl_ckpt_shared_path(&f->s, "big.sst", p, sizeof(p));
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    sl_ckpt_writer_t w;
    assert_int_equal(sl_ckpt_writer_open(&w, p, f->err, sizeof(f->err)), 0);
    unsigned char chunk[1000];
    uint32_t crc = 0;
    for (int i = 0; i < 300; i++) {
        memset(chunk, i, sizeof(chunk));
        crc = sl_crc32c(crc, chunk, sizeof(chunk));
        assert_int_equal(sl_ckpt_writer_append(&w, chunk, sizeof(chunk), f->err, sizeof(f->err)), 0);
    }
    /* Until close, only the .tmp exists: a reader never sees a partial file under the final name. */
    assert_true(exists(tmp));
    assert_false(exists(p));
    sl_ckpt_file_info_t info;
    assert_int_equal(sl_ckpt_writer_close(&w, &info, f->err, sizeof(f->err)), 0);
    assert_int_equal(info.size, 300000);
    assert_int_equal(info.crc32c, crc);
    assert_false(exists(tmp));
    sl_ckpt_file_info_t again;
    assert_int_equal(sl_ckpt_file_checksum(p, &again, f->err, sizeof(f->err)), 0);
    assert_int_equal(again.crc32c, crc);
    assert_int_equal(again.size, 300000);

    /* Abort leaves the previous file alone and removes the .tmp. */
    assert_int_equal(sl_ckpt_writer_open(&w, p, f->err, sizeof(f->err)), 0);
    assert_int_equal(sl_ckpt_writer_append(&w, "x", 1, f->err, sizeof(f->err)), 0);
    sl_ckpt_writer_abort(&w);
    assert_false(exists(tmp));
    assert_int_equal(sl_ckpt_file_verify(p, 300000, crc, f->err, sizeof(f->err)), 0);
}

static int open_shared_x(fx_t *f) {
    char p[PATH_MAX];
    sl_ckpt_shared_path(&f->s, "x", p, sizeof(p));
    sl_ckpt_writer_t w;
    return sl_ckpt_writer_open(&w, p, f->err, sizeof(f->err));
}

static void test_writer_open_fails_in_read_only_dir(void **state) {
    fx_t *f = *state;
    init_storage(f);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/job1/shared", f->root);
    int rc = as_unprivileged(f, dir, open_shared_x);
    assert_int_equal(rc, SL_EIO);
    assert_non_null(strstr(f->err, "x.tmp"));
    assert_non_null(strstr(f->err, "Permission denied"));
}

static void test_copy(void **state) {
    fx_t *f = *state;
    init_storage(f);
    char src[PATH_MAX], dst[PATH_MAX];
    snprintf(src, sizeof(src), "%s/local.sst", f->root);
    write_raw(src, "123456789");
    sl_ckpt_shared_path(&f->s, "0001.sst", dst, sizeof(dst));
    sl_ckpt_file_info_t info;
    assert_int_equal(sl_ckpt_file_copy(src, dst, &info, f->err, sizeof(f->err)), 0);
    assert_int_equal(info.size, 9);
    assert_int_equal(info.crc32c, 0xE3069283u);
    /* Storage is independent of the local file: deleting it must not affect the copy. */
    unlink(src);
    assert_int_equal(sl_ckpt_file_verify(dst, 9, 0xE3069283u, f->err, sizeof(f->err)), 0);
    assert_int_equal(sl_ckpt_file_copy(src, dst, &info, f->err, sizeof(f->err)), SL_ENOENT);
    assert_non_null(strstr(f->err, src));
}

/* ---- listing, discard, resolve ---- */

static void test_list_completed(void **state) {
    fx_t *f = *state;
    init_storage(f);
    uint64_t *ids;
    uint32_t n;
    uint64_t latest;
    assert_int_equal(sl_ckpt_list_completed(&f->s, &ids, &n, f->err, sizeof(f->err)), 0);
    assert_int_equal(n, 0);
    assert_null(ids);
    assert_int_equal(sl_ckpt_latest_completed(&f->s, &latest, f->err, sizeof(f->err)), SL_ENOENT);
    assert_non_null(strstr(f->err, "no completed checkpoint in"));
    assert_non_null(strstr(f->err, f->s.job_dir));

    make_chk(f, 10, 1);
    make_chk(f, 1, 1);
    make_chk(f, 3, 1);
    make_chk(f, 12, 0); /* incomplete: no _metadata */
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/chk-01", f->s.job_dir); /* not a canonical id */
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/chk-x", f->s.job_dir);
    mkdir(p, 0755);
    assert_int_equal(sl_ckpt_list_completed(&f->s, &ids, &n, f->err, sizeof(f->err)), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 10);
    sl_free(ids);
    assert_int_equal(sl_ckpt_latest_completed(&f->s, &latest, f->err, sizeof(f->err)), 0);
    assert_int_equal(latest, 10);
}

static void test_discard(void **state) {
    fx_t *f = *state;
    init_storage(f);
    make_chk(f, 4, 0);
    make_chk(f, 5, 1);
    char p[PATH_MAX], shared[PATH_MAX];
    sl_ckpt_file_path(&f->s, 4, "op-0", p, sizeof(p));
    write_raw(p, "partial");
    sl_ckpt_file_path(&f->s, 5, "sub", p, sizeof(p));
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/chk-5/sub/deep", f->s.job_dir);
    write_raw(p, "x");
    sl_ckpt_shared_path(&f->s, "keep.sst", shared, sizeof(shared));
    write_raw(shared, "shared");

    assert_int_equal(sl_ckpt_discard(&f->s, 4, f->err, sizeof(f->err)), 0);
    sl_ckpt_dir(&f->s, 4, p, sizeof(p));
    assert_false(exists(p));
    assert_int_equal(sl_ckpt_discard(&f->s, 5, f->err, sizeof(f->err)), 0);
    sl_ckpt_dir(&f->s, 5, p, sizeof(p));
    assert_false(exists(p));
    assert_true(exists(shared)); /* shared files belong to the registry, not to discard */
    assert_int_equal(sl_ckpt_discard(&f->s, 99, f->err, sizeof(f->err)), 0); /* idempotent */
}

static void test_resolve(void **state) {
    fx_t *f = *state;
    init_storage(f);
    make_chk(f, 2, 1);
    make_chk(f, 7, 1);
    make_chk(f, 9, 0);
    char p[PATH_MAX];
    sl_ckpt_storage_t r;
    uint64_t id = 0;

    snprintf(p, sizeof(p), "%s/job1/chk-2/", f->root);
    assert_int_equal(sl_ckpt_resolve(p, &r, &id, f->err, sizeof(f->err)), 0);
    assert_int_equal(id, 2);
    assert_string_equal(r.job_id, "job1");
    assert_string_equal(r.job_dir, f->s.job_dir);
    sl_ckpt_storage_destroy(&r);

    snprintf(p, sizeof(p), "%s/job1/chk-2/_metadata", f->root);
    assert_int_equal(sl_ckpt_resolve(p, &r, &id, f->err, sizeof(f->err)), 0);
    assert_int_equal(id, 2);
    sl_ckpt_storage_destroy(&r);

    snprintf(p, sizeof(p), "%s/job1//", f->root);
    assert_int_equal(sl_ckpt_resolve(p, &r, &id, f->err, sizeof(f->err)), 0);
    assert_int_equal(id, 7); /* latest completed; chk-9 is incomplete */
    assert_string_equal(r.root, f->root);
    sl_ckpt_storage_destroy(&r);

    snprintf(p, sizeof(p), "%s/job1/chk-9", f->root);
    assert_int_equal(sl_ckpt_resolve(p, &r, &id, f->err, sizeof(f->err)), SL_ENOENT);
    assert_non_null(strstr(f->err, "incomplete"));
    assert_non_null(strstr(f->err, p));

    snprintf(p, sizeof(p), "%s/job1/chk-8", f->root);
    assert_int_equal(sl_ckpt_resolve(p, &r, &id, f->err, sizeof(f->err)), SL_ENOENT);
    assert_non_null(strstr(f->err, p));

    snprintf(p, sizeof(p), "%s/job1/shared", f->root);
    assert_int_equal(sl_ckpt_resolve(p, &r, &id, f->err, sizeof(f->err)), SL_ENOENT);
    assert_non_null(strstr(f->err, "no completed checkpoint in"));
    assert_non_null(strstr(f->err, p));

    assert_int_equal(sl_ckpt_resolve("", &r, &id, f->err, sizeof(f->err)), SL_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_crc32c_matches_bitwise),
        cmocka_unit_test_setup_teardown(test_init_creates_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_rejects_bad_job_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_read_only_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_open_fails_in_read_only_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_completed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
