/* Completed checkpoint store (src/checkpoint/completed_store.h): subsuming with num-retained 1 and 2,
 * increasing ids, removal of a corrupt non-oldest checkpoint, cleanup failures, and rebuilding after a
 * restart, once with real files in a mkdtemp directory: deleting never removes a file a retained checkpoint needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/completed_store.h"
#include "checkpoint/shared_registry.h"

/* Records shared-file and checkpoint discards; optionally fails one checkpoint's discard. */
typedef struct {
    char files[64][16];
    size_t nfiles;
    int64_t chks[64];
    size_t nchks;
    int64_t fail_chk; /* 0: none */
} recorder_t;

static int record_file(void *arg, const char *name) {
    recorder_t *rec = arg;
    assert_true(rec->nfiles < 64);
    snprintf(rec->files[rec->nfiles++], sizeof rec->files[0], "%s", name);
    return 0;
}

static int record_chk(void *arg, int64_t id) {
    recorder_t *rec = arg;
    if (id == rec->fail_chk) return SL_EIO;
    assert_true(rec->nchks < 64);
    rec->chks[rec->nchks++] = id;
    return 0;
}

static int file_discarded(const recorder_t *rec, const char *name) {
    int k = 0;
    for (size_t i = 0; i < rec->nfiles; i++) k += strcmp(rec->files[i], name) == 0;
    return k;
}

typedef struct {
    recorder_t rec;
    sl_shared_registry_t reg;
    sl_completed_store_t store;
} fixture_t;

static fixture_t *fixture_new(size_t retained) {
    fixture_t *f = calloc(1, sizeof *f);
    assert_int_equal(sl_shared_registry_init(&f->reg, record_file, &f->rec), 0);
    assert_int_equal(sl_completed_store_init(&f->store, retained, &f->reg, record_chk, &f->rec), 0);
    return f;
}

static void fixture_free(fixture_t *f) {
    sl_completed_store_destroy(&f->store);
    sl_shared_registry_destroy(&f->reg);
    free(f);
}

static void test_init_bad_args(void **state) {
    (void)state;
    sl_shared_registry_t reg;
    sl_completed_store_t s;
    assert_int_equal(sl_shared_registry_init(&reg, NULL, NULL), 0);
    assert_int_equal(sl_completed_store_init(&s, 0, &reg, NULL, NULL), SL_EINVAL);
    assert_int_equal(sl_completed_store_init(&s, 1, NULL, NULL, NULL), SL_EINVAL);
    assert_int_equal(sl_completed_store_init(NULL, 1, &reg, NULL, NULL), SL_EINVAL);
    sl_completed_store_destroy(NULL);
    sl_shared_registry_destroy(&reg);
}

/* chk1 {a,b}, chk2 {a,c}, chk3 {c,d} with one retained. */
static void test_retain1_subsumes_oldest(void **state) {
    (void)state;
    fixture_t *f = fixture_new(1);
    const char *c1[] = {"a", "b"}, *c2[] = {"a", "c"}, *c3[] = {"c", "d"};
    int64_t id;
    assert_int_equal(sl_completed_store_latest(&f->store, &id), SL_ENOENT);
    assert_int_equal(sl_completed_store_add(&f->store, 1, c1, 2), 0);
    assert_int_equal(f->rec.nchks, 0);
    assert_int_equal(sl_completed_store_add(&f->store, 2, c2, 2), 0);
    assert_int_equal(f->rec.nchks, 1);
    assert_int_equal(f->rec.chks[0], 1);
    assert_int_equal(f->rec.nfiles, 1);
    assert_string_equal(f->rec.files[0], "b");
    assert_int_equal(sl_completed_store_add(&f->store, 3, c3, 2), 0);
    assert_int_equal(f->rec.chks[1], 2);
    assert_int_equal(f->rec.nfiles, 2);
    assert_string_equal(f->rec.files[1], "a");
    assert_int_equal(sl_completed_store_count(&f->store), 1);
    assert_int_equal(sl_completed_store_latest(&f->store, &id), 0);
    assert_int_equal(id, 3);
    assert_int_equal(sl_shared_registry_num_checkpoints(&f->reg), 1);
    assert_int_equal(sl_shared_registry_size(&f->reg), 2);
    assert_int_equal(sl_completed_store_discard_failures(&f->store), 0);
    fixture_free(f);
}

static void test_retain2(void **state) {
    (void)state;
    fixture_t *f = fixture_new(2);
    const char *c1[] = {"a", "b"}, *c2[] = {"a", "c"}, *c3[] = {"c", "d"}, *c4[] = {"d", "e"};
    assert_int_equal(sl_completed_store_add(&f->store, 1, c1, 2), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 2, c2, 2), 0);
    assert_int_equal(f->rec.nchks + f->rec.nfiles, 0);
    assert_int_equal(sl_completed_store_add(&f->store, 3, c3, 2), 0); /* subsumes 1: only b unused */
    assert_int_equal(f->rec.nchks, 1);
    assert_int_equal(f->rec.nfiles, 1);
    assert_string_equal(f->rec.files[0], "b");
    assert_int_equal(sl_completed_store_add(&f->store, 4, c4, 2), 0); /* subsumes 2: a unused, c in 3 */
    assert_int_equal(f->rec.nfiles, 2);
    assert_string_equal(f->rec.files[1], "a");
    assert_int_equal(file_discarded(&f->rec, "c"), 0);

    int64_t ids[4] = {0};
    assert_int_equal(sl_completed_store_ids(&f->store, ids, 4), 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 4);
    int64_t one[1] = {0};
    assert_int_equal(sl_completed_store_ids(&f->store, one, 1), 2); /* truncated, total returned */
    assert_int_equal(one[0], 3);
    assert_int_equal(sl_completed_store_ids(&f->store, NULL, 0), 2);
    assert_int_equal(sl_shared_registry_validate(&f->reg), 0);
    fixture_free(f);
}

static void test_ids_must_increase(void **state) {
    (void)state;
    fixture_t *f = fixture_new(2);
    const char *n[] = {"a"};
    assert_int_equal(sl_completed_store_add(&f->store, 5, n, 1), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 5, n, 1), SL_EINVAL);
    assert_int_equal(sl_completed_store_add(&f->store, 4, n, 1), SL_EINVAL);
    assert_int_equal(sl_shared_registry_count(&f->reg, "a"), 1);
    /* A removed id is not reusable either: it was already used by the counter. */
    assert_int_equal(sl_completed_store_remove(&f->store, 5), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 5, n, 1), SL_EINVAL);
    /* A rejected add does not consume the id. */
    const char *bad[] = {""};
    assert_int_equal(sl_completed_store_add(&f->store, 6, bad, 1), SL_EINVAL);
    assert_int_equal(sl_completed_store_count(&f->store), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 6, n, 1), 0);
    assert_int_equal(sl_completed_store_count(&f->store), 1);
    fixture_free(f);
}

/* A corrupt checkpoint in the middle is removed: its own files go, shared files of others stay. */
static void test_remove_corrupt_not_oldest(void **state) {
    (void)state;
    fixture_t *f = fixture_new(3);
    const char *c1[] = {"a", "b"}, *c2[] = {"b", "c", "x"}, *c3[] = {"c", "d"};
    assert_int_equal(sl_completed_store_add(&f->store, 1, c1, 2), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 2, c2, 3), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 3, c3, 2), 0);
    assert_int_equal(sl_completed_store_remove(&f->store, 2), 0);
    assert_int_equal(f->rec.nchks, 1);
    assert_int_equal(f->rec.chks[0], 2);
    assert_int_equal(f->rec.nfiles, 1);
    assert_string_equal(f->rec.files[0], "x");
    int64_t ids[3];
    assert_int_equal(sl_completed_store_ids(&f->store, ids, 3), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(sl_completed_store_remove(&f->store, 2), SL_ENOENT);
    /* Removing the latest makes the previous one the restore candidate. */
    assert_int_equal(sl_completed_store_remove(&f->store, 3), 0);
    int64_t id;
    assert_int_equal(sl_completed_store_latest(&f->store, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(file_discarded(&f->rec, "d"), 1);
    assert_int_equal(file_discarded(&f->rec, "c"), 1);
    assert_int_equal(file_discarded(&f->rec, "b"), 0);
    assert_int_equal(sl_shared_registry_validate(&f->reg), 0);
    fixture_free(f);
}

/* A failing checkpoint discard does not undo the add, is counted, and the shared files are still released;
 * remove() returns the error but removes the checkpoint. */
static void test_discard_failure(void **state) {
    (void)state;
    fixture_t *f = fixture_new(1);
    f->rec.fail_chk = 1;
    const char *c1[] = {"a"}, *c2[] = {"b"}, *c3[] = {"c"};
    assert_int_equal(sl_completed_store_add(&f->store, 1, c1, 1), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 2, c2, 1), 0);
    assert_int_equal(sl_completed_store_discard_failures(&f->store), 1);
    assert_int_equal(file_discarded(&f->rec, "a"), 1);
    assert_false(sl_shared_registry_has_checkpoint(&f->reg, 1));
    assert_int_equal(sl_completed_store_count(&f->store), 1);

    f->rec.fail_chk = 2;
    assert_int_equal(sl_completed_store_remove(&f->store, 2), SL_EIO);
    assert_int_equal(sl_completed_store_count(&f->store), 0);
    assert_int_equal(file_discarded(&f->rec, "b"), 1);
    assert_int_equal(sl_completed_store_add(&f->store, 3, c3, 1), 0);
    fixture_free(f);
}

/* --- Rebuild after restart, on real files ------------------------------------------------------------- */

typedef struct {
    char root[64];
} disk_t;

static void path_of_file(const disk_t *d, const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s/shared/%s", d->root, name);
}

static void path_of_chk(const disk_t *d, int64_t id, char *out, size_t cap) {
    snprintf(out, cap, "%s/chk-%lld", d->root, (long long)id);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int disk_discard_file(void *arg, const char *name) {
    char p[256];
    path_of_file(arg, name, p, sizeof p);
    if (unlink(p) != 0 && errno != ENOENT) return -errno;
    return 0;
}

static int disk_discard_chk(void *arg, int64_t id) {
    char p[256];
    path_of_chk(arg, id, p, sizeof p);
    if (rmdir(p) != 0 && errno != ENOENT) return -errno;
    return 0;
}

/* Simulates a task uploading shared files and the coordinator writing chk-<id>. */
static void write_checkpoint(const disk_t *d, int64_t id, const char *const *names, size_t n) {
    char p[256];
    for (size_t i = 0; i < n; i++) {
        path_of_file(d, names[i], p, sizeof p);
        if (exists(p)) continue; /* incremental: uploaded once */
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fputs(names[i], fp);
        fclose(fp);
    }
    path_of_chk(d, id, p, sizeof p);
    assert_int_equal(mkdir(p, 0700), 0);
}

static void test_rebuild_after_restart_keeps_needed_files(void **state) {
    (void)state;
    disk_t d;
    strcpy(d.root, "/tmp/sl_completed_store_XXXXXX");
    assert_non_null(mkdtemp(d.root));
    char p[256];
    snprintf(p, sizeof p, "%s/shared", d.root);
    assert_int_equal(mkdir(p, 0700), 0);

    static const char *const c1[] = {"s1", "s2"}, *const c2[] = {"s1", "s3"}, *const c3[] = {"s3", "s4", "s5"},
                             *const c4[] = {"s3", "s5", "s6"}, *const c5[] = {"s5", "s6", "s7"};

    /* First life, 2 retained: checkpoints 1..4 complete; 1 and 2 are subsumed. */
    sl_shared_registry_t reg;
    sl_completed_store_t store;
    assert_int_equal(sl_shared_registry_init(&reg, disk_discard_file, &d), 0);
    assert_int_equal(sl_completed_store_init(&store, 2, &reg, disk_discard_chk, &d), 0);
    write_checkpoint(&d, 1, c1, 2);
    assert_int_equal(sl_completed_store_add(&store, 1, c1, 2), 0);
    write_checkpoint(&d, 2, c2, 2);
    assert_int_equal(sl_completed_store_add(&store, 2, c2, 2), 0);
    write_checkpoint(&d, 3, c3, 3);
    assert_int_equal(sl_completed_store_add(&store, 3, c3, 3), 0);
    write_checkpoint(&d, 4, c4, 3);
    assert_int_equal(sl_completed_store_add(&store, 4, c4, 3), 0);
    static const char *const all[] = {"s1", "s2", "s3", "s4", "s5", "s6", "s7"};
    uint32_t before[7];
    for (int i = 0; i < 7; i++) before[i] = sl_shared_registry_count(&reg, all[i]);
    /* Crash: the in-memory counts are lost, files stay. */
    sl_completed_store_destroy(&store);
    sl_shared_registry_destroy(&reg);

    path_of_chk(&d, 2, p, sizeof p);
    assert_false(exists(p));
    path_of_file(&d, "s1", p, sizeof p);
    assert_false(exists(p));

    /* Second life: rebuild from chk-3 and chk-4 found on disk, ascending. No deletion may happen. */
    assert_int_equal(sl_shared_registry_init(&reg, disk_discard_file, &d), 0);
    assert_int_equal(sl_completed_store_init(&store, 2, &reg, disk_discard_chk, &d), 0);
    assert_int_equal(sl_completed_store_add(&store, 3, c3, 3), 0);
    assert_int_equal(sl_completed_store_add(&store, 4, c4, 3), 0);
    for (int i = 0; i < 7; i++) assert_int_equal(sl_shared_registry_count(&reg, all[i]), before[i]);
    for (int i = 2; i < 6; i++) { /* s3..s6 are needed by 3 or 4 */
        path_of_file(&d, all[i], p, sizeof p);
        assert_true(exists(p));
    }

    /* Checkpoint 5 subsumes 3: only s4 (used by 3 alone) goes; s3 and s5 are still needed by 4. */
    write_checkpoint(&d, 5, c5, 3);
    assert_int_equal(sl_completed_store_add(&store, 5, c5, 3), 0);
    path_of_chk(&d, 3, p, sizeof p);
    assert_false(exists(p));
    const int present[7] = {0, 0, 1, 0, 1, 1, 1};
    for (int i = 0; i < 7; i++) {
        path_of_file(&d, all[i], p, sizeof p);
        assert_int_equal(exists(p), present[i]);
        /* Every file a retained checkpoint lists is on disk. */
        if (sl_shared_registry_is_referenced(&reg, all[i])) assert_true(exists(p));
    }
    assert_int_equal(sl_completed_store_discard_failures(&store), 0);
    assert_int_equal(sl_shared_registry_validate(&reg), 0);

    /* Clean up the temp directory through the store itself. */
    assert_int_equal(sl_completed_store_remove(&store, 4), 0);
    assert_int_equal(sl_completed_store_remove(&store, 5), 0);
    assert_int_equal(sl_shared_registry_size(&reg), 0);
    sl_completed_store_destroy(&store);
    sl_shared_registry_destroy(&reg);
    snprintf(p, sizeof p, "%s/shared", d.root);
    assert_int_equal(rmdir(p), 0); /* empty: every file was deleted exactly when unreferenced */
    assert_int_equal(rmdir(d.root), 0);
}

/* More checkpoints on disk than retained (crash before subsuming): the rebuild subsumes the extra ones
 * and deletes only what the retained ones do not list. */
static void test_rebuild_with_extra_checkpoints(void **state) {
    (void)state;
    fixture_t *f = fixture_new(2);
    const char *c2[] = {"a", "b"}, *c3[] = {"b", "c"}, *c4[] = {"c", "a2"};
    assert_int_equal(sl_completed_store_add(&f->store, 2, c2, 2), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 3, c3, 2), 0);
    assert_int_equal(sl_completed_store_add(&f->store, 4, c4, 2), 0);
    assert_int_equal(f->rec.nchks, 1);
    assert_int_equal(f->rec.chks[0], 2);
    assert_int_equal(f->rec.nfiles, 1);
    assert_string_equal(f->rec.files[0], "a");
    assert_int_equal(sl_shared_registry_count(&f->reg, "b"), 1);
    assert_int_equal(sl_shared_registry_count(&f->reg, "c"), 2);
    fixture_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_bad_args),
        cmocka_unit_test(test_retain1_subsumes_oldest),
        cmocka_unit_test(test_retain2),
        cmocka_unit_test(test_ids_must_increase),
        cmocka_unit_test(test_remove_corrupt_not_oldest),
        cmocka_unit_test(test_discard_failure),
        cmocka_unit_test(test_rebuild_after_restart_keeps_needed_files),
        cmocka_unit_test(test_rebuild_with_extra_checkpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
