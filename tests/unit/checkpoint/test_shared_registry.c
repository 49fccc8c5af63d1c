/* Shared state registry (src/checkpoint/shared_registry.h): reference counts over change patterns with
 * num-retained 1 and 2, exactly-once discards, double release/register errors, discard failures,
 * orphan detection, a large randomized run against a simple model, and allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/shared_registry.h"
#include "core/alloc.h"

/* Records every discard; fails (without recording) for the name in `fail_name`. */
typedef struct {
    char names[4096][32];
    size_t n;
    const char *fail_name;
    int fail_err;
} recorder_t;

static int record_discard(void *arg, const char *name) {
    recorder_t *rec = arg;
    if (rec->fail_name != NULL && strcmp(rec->fail_name, name) == 0) return rec->fail_err;
    assert_true(rec->n < 4096);
    assert_true(strlen(name) < 32);
    strcpy(rec->names[rec->n++], name);
    return 0;
}

static size_t times_discarded(const recorder_t *rec, const char *name) {
    size_t k = 0;
    for (size_t i = 0; i < rec->n; i++) k += strcmp(rec->names[i], name) == 0;
    return k;
}

/* The change pattern: each checkpoint keeps some files of the previous one and adds new ones. Names are never
 * reused after they stop being referenced, as with RocksDB SST files. */
static const char *const pattern[][4] = {
    {"a", "b", NULL},      /* chk 1 */
    {"a", "c", NULL},      /* chk 2 */
    {"c", "d", NULL},      /* chk 3 */
    {"c", "d", "e", NULL}, /* chk 4 */
    {"e", "f", NULL},      /* chk 5 */
    {"g", NULL},           /* chk 6: full rewrite */
    {"g", "h", NULL},      /* chk 7 */
};
#define NCHK (sizeof pattern / sizeof pattern[0])
static const char *const all_names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
#define NNAMES (sizeof all_names / sizeof all_names[0])

static size_t pattern_len(size_t c) {
    size_t n = 0;
    while (pattern[c][n] != NULL) n++;
    return n;
}

static int chk_has(size_t c, const char *name) {
    for (size_t i = 0; pattern[c][i] != NULL; i++)
        if (strcmp(pattern[c][i], name) == 0) return 1;
    return 0;
}

/* Registers the pattern one checkpoint at a time, releasing the oldest beyond `retained`. After each step:
 * counts equal the number of retained checkpoints listing a name, and the discarded set is exactly the names
 * seen so far that no retained checkpoint references, each discarded once. */
static void run_pattern(size_t retained) {
    recorder_t *rec = calloc(1, sizeof *rec);
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, record_discard, rec), 0);
    int seen[NNAMES] = {0};
    for (size_t c = 0; c < NCHK; c++) {
        assert_int_equal(sl_shared_registry_register(&r, (int64_t)c + 1, pattern[c], pattern_len(c)), 0);
        for (size_t i = 0; i < NNAMES; i++) seen[i] |= chk_has(c, all_names[i]);
        size_t oldest = c + 1 > retained ? c + 1 - retained : 0; /* first retained index */
        if (c + 1 > retained) assert_int_equal(sl_shared_registry_release(&r, (int64_t)oldest), 0);

        size_t live = 0;
        for (size_t i = 0; i < NNAMES; i++) {
            uint32_t expect = 0;
            for (size_t k = oldest; k <= c; k++) expect += (uint32_t)chk_has(k, all_names[i]);
            assert_int_equal(sl_shared_registry_count(&r, all_names[i]), expect);
            assert_int_equal(sl_shared_registry_is_referenced(&r, all_names[i]), expect > 0);
            assert_int_equal(times_discarded(rec, all_names[i]), seen[i] && expect == 0 ? 1 : 0);
            live += expect > 0;
        }
        assert_int_equal(sl_shared_registry_size(&r), live);
        assert_int_equal(sl_shared_registry_num_checkpoints(&r), c + 1 - oldest);
        assert_int_equal(sl_shared_registry_validate(&r), 0);
    }
    /* Spot checks of the pattern by hand, so the generic model above cannot hide a shared mistake. */
    if (retained == 1) {
        assert_string_equal(rec->names[0], "b"); /* chk 2 subsumes 1: a survives in 2 */
        assert_string_equal(rec->names[1], "a"); /* chk 3 subsumes 2 */
    } else {
        assert_string_equal(rec->names[0], "b"); /* chk 3 subsumes 1: a still in 2 */
        assert_string_equal(rec->names[1], "a"); /* chk 4 subsumes 2 */
    }
    sl_shared_registry_destroy(&r);
    free(rec);
}

static void test_pattern_retain1(void **state) {
    (void)state;
    run_pattern(1);
}

static void test_pattern_retain2(void **state) {
    (void)state;
    run_pattern(2);
}

static void test_duplicate_names_counted_once(void **state) {
    (void)state;
    recorder_t *rec = calloc(1, sizeof *rec);
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, record_discard, rec), 0);
    const char *names[] = {"x", "y", "x", "x"};
    assert_int_equal(sl_shared_registry_register(&r, 1, names, 4), 0);
    assert_int_equal(sl_shared_registry_count(&r, "x"), 1);
    assert_int_equal(sl_shared_registry_size(&r), 2);
    assert_int_equal(sl_shared_registry_register(&r, 2, names, 4), 0);
    assert_int_equal(sl_shared_registry_count(&r, "x"), 2);
    assert_int_equal(sl_shared_registry_validate(&r), 0);
    assert_int_equal(sl_shared_registry_release(&r, 1), 0);
    assert_int_equal(rec->n, 0);
    assert_int_equal(sl_shared_registry_release(&r, 2), 0);
    assert_int_equal(times_discarded(rec, "x"), 1);
    assert_int_equal(times_discarded(rec, "y"), 1);
    assert_int_equal(sl_shared_registry_size(&r), 0);
    sl_shared_registry_destroy(&r);
    free(rec);
}

static void test_release_twice_is_error(void **state) {
    (void)state;
    recorder_t *rec = calloc(1, sizeof *rec);
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, record_discard, rec), 0);
    const char *names[] = {"a", "b"};
    assert_int_equal(sl_shared_registry_register(&r, 7, names, 2), 0);
    assert_int_equal(sl_shared_registry_release(&r, 7), 0);
    assert_int_equal(rec->n, 2);
    assert_int_equal(sl_shared_registry_release(&r, 7), SL_EINVAL);
    assert_int_equal(sl_shared_registry_release(&r, 8), SL_EINVAL); /* never registered */
    assert_int_equal(rec->n, 2);                                     /* nothing discarded twice */
    sl_shared_registry_destroy(&r);
    free(rec);
}

static void test_register_twice_is_error(void **state) {
    (void)state;
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, NULL, NULL), 0);
    const char *first[] = {"a", "b"};
    const char *second[] = {"b", "c"};
    assert_int_equal(sl_shared_registry_register(&r, 3, first, 2), 0);
    assert_int_equal(sl_shared_registry_register(&r, 3, second, 2), SL_EINVAL);
    assert_int_equal(sl_shared_registry_count(&r, "b"), 1);
    assert_int_equal(sl_shared_registry_count(&r, "c"), 0);
    assert_int_equal(sl_shared_registry_num_checkpoints(&r), 1);
    assert_int_equal(sl_shared_registry_validate(&r), 0);
    sl_shared_registry_destroy(&r);
}

static void test_bad_arguments(void **state) {
    (void)state;
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(NULL, NULL, NULL), SL_EINVAL);
    assert_int_equal(sl_shared_registry_init(&r, NULL, NULL), 0);
    const char *with_null[] = {"a", NULL};
    const char *with_empty[] = {"a", ""};
    assert_int_equal(sl_shared_registry_register(&r, 1, with_null, 2), SL_EINVAL);
    assert_int_equal(sl_shared_registry_register(&r, 1, with_empty, 2), SL_EINVAL);
    assert_int_equal(sl_shared_registry_register(&r, 1, NULL, 1), SL_EINVAL);
    assert_int_equal(sl_shared_registry_size(&r), 0);
    assert_int_equal(sl_shared_registry_num_checkpoints(&r), 0);
    /* A checkpoint without shared files (e.g. a full snapshot) is valid and releasable. */
    assert_int_equal(sl_shared_registry_register(&r, 1, NULL, 0), 0);
    assert_true(sl_shared_registry_has_checkpoint(&r, 1));
    assert_int_equal(sl_shared_registry_release(&r, 1), 0);
    assert_false(sl_shared_registry_has_checkpoint(&r, 1));
    assert_int_equal(sl_shared_registry_count(&r, NULL), 0);
    sl_shared_registry_destroy(&r);
    sl_shared_registry_destroy(NULL);
}

/* A failed deletion is returned by release; the name is dropped anyway (it is an orphan now), the other names
 * of the checkpoint are still discarded, and the checkpoint counts as released. */
static void test_discard_failure_reported(void **state) {
    (void)state;
    recorder_t *rec = calloc(1, sizeof *rec);
    rec->fail_name = "b";
    rec->fail_err = SL_EIO;
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, record_discard, rec), 0);
    const char *names[] = {"a", "b", "c"};
    assert_int_equal(sl_shared_registry_register(&r, 1, names, 3), 0);
    assert_int_equal(sl_shared_registry_release(&r, 1), SL_EIO);
    assert_int_equal(times_discarded(rec, "a"), 1);
    assert_int_equal(times_discarded(rec, "c"), 1);
    assert_false(sl_shared_registry_is_referenced(&r, "b"));
    assert_int_equal(sl_shared_registry_size(&r), 0);
    assert_false(sl_shared_registry_has_checkpoint(&r, 1));
    assert_int_equal(sl_shared_registry_release(&r, 1), SL_EINVAL);
    assert_int_equal(sl_shared_registry_validate(&r), 0);
    sl_shared_registry_destroy(&r);
    free(rec);
}

/* An aborted checkpoint uploaded "new1" and reused "old"; only "new1" is an orphan to delete. */
static void test_orphans_of_aborted_checkpoint(void **state) {
    (void)state;
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, NULL, NULL), 0);
    const char *done[] = {"old"};
    assert_int_equal(sl_shared_registry_register(&r, 1, done, 1), 0);
    const char *uploaded_by_aborted[] = {"old", "new1"};
    assert_true(sl_shared_registry_is_referenced(&r, uploaded_by_aborted[0]));
    assert_false(sl_shared_registry_is_referenced(&r, uploaded_by_aborted[1]));
    sl_shared_registry_destroy(&r);
}

/* Checkpoints may be registered out of order (restore) and released in any order. */
static void test_out_of_order_ids(void **state) {
    (void)state;
    recorder_t *rec = calloc(1, sizeof *rec);
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, record_discard, rec), 0);
    const char *n5[] = {"p", "q"};
    const char *n3[] = {"q", "r"};
    const char *n9[] = {"r"};
    assert_int_equal(sl_shared_registry_register(&r, 5, n5, 2), 0);
    assert_int_equal(sl_shared_registry_register(&r, 3, n3, 2), 0);
    assert_int_equal(sl_shared_registry_register(&r, 9, n9, 1), 0);
    assert_int_equal(sl_shared_registry_validate(&r), 0);
    assert_int_equal(sl_shared_registry_release(&r, 5), 0);
    assert_int_equal(rec->n, 1);
    assert_string_equal(rec->names[0], "p");
    assert_int_equal(sl_shared_registry_release(&r, 3), 0);
    assert_string_equal(rec->names[1], "q");
    assert_int_equal(sl_shared_registry_count(&r, "r"), 1);
    assert_int_equal(sl_shared_registry_validate(&r), 0);
    sl_shared_registry_destroy(&r);
    free(rec);
}

/* Thousands of files per checkpoint, compared with a model: each checkpoint keeps a random 90% of the
 * previous one's files and uploads new ones; 3 retained. Files are numbered, so the model is an array. */
#define BIG_FILES 2000
#define BIG_CHKS 40
#define BIG_RETAINED 3
#define BIG_MAX_ID (BIG_FILES * BIG_CHKS)

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

typedef struct {
    uint32_t *discards; /* per file number */
} big_model_t;

static int big_discard(void *arg, const char *name) {
    big_model_t *m = arg;
    unsigned id;
    assert_int_equal(sscanf(name, "%u.sst", &id), 1);
    assert_true(id < BIG_MAX_ID);
    m->discards[id]++;
    return 0;
}

static void test_many_files_against_model(void **state) {
    (void)state;
    big_model_t m = {.discards = calloc(BIG_MAX_ID, sizeof(uint32_t))};
    uint32_t *files = calloc((size_t)BIG_CHKS * BIG_FILES, sizeof *files); /* files of checkpoint c */
    char(*buf)[16] = calloc(BIG_FILES, sizeof *buf);
    const char **names = calloc(BIG_FILES, sizeof *names);
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, big_discard, &m), 0);
    uint32_t next = 0;
    for (size_t c = 0; c < BIG_CHKS; c++) {
        uint32_t *f = &files[c * BIG_FILES];
        for (size_t i = 0; i < BIG_FILES; i++) {
            f[i] = (c > 0 && rng() % 10 != 0) ? files[(c - 1) * BIG_FILES + i] : next++;
            snprintf(buf[i], sizeof buf[i], "%u.sst", f[i]);
            names[i] = buf[i];
        }
        assert_int_equal(sl_shared_registry_register(&r, (int64_t)c, names, BIG_FILES), 0);
        if (c >= BIG_RETAINED) assert_int_equal(sl_shared_registry_release(&r, (int64_t)(c - BIG_RETAINED)), 0);
    }
    /* Model: a file is referenced iff a retained checkpoint lists it; discarded once iff not. */
    size_t first = BIG_CHKS - BIG_RETAINED;
    uint8_t *live = calloc(next, 1);
    for (size_t c = first; c < BIG_CHKS; c++)
        for (size_t i = 0; i < BIG_FILES; i++) live[files[c * BIG_FILES + i]] = 1;
    size_t nlive = 0;
    for (uint32_t id = 0; id < next; id++) {
        char name[16];
        snprintf(name, sizeof name, "%u.sst", id);
        assert_int_equal(sl_shared_registry_is_referenced(&r, name), live[id]);
        assert_int_equal(m.discards[id], live[id] ? 0 : 1);
        nlive += live[id];
    }
    assert_int_equal(sl_shared_registry_size(&r), nlive);
    assert_int_equal(sl_shared_registry_validate(&r), 0);
    sl_shared_registry_destroy(&r);
    free(live);
    free(names);
    free(buf);
    free(files);
    free(m.discards);
}

/* Failing each allocation of register() in turn leaves the registry exactly as before. */
static void test_register_allocation_failures(void **state) {
    (void)state;
    sl_shared_registry_t r;
    assert_int_equal(sl_shared_registry_init(&r, NULL, NULL), 0);
    char buf[64][8];
    const char *names[64];
    for (int i = 0; i < 64; i++) {
        snprintf(buf[i], sizeof buf[i], "f%d", i);
        names[i] = buf[i];
    }
    assert_int_equal(sl_shared_registry_register(&r, 1, names, 32), 0); /* f0..f31 */
    int err = SL_ENOMEM;
    long n;
    for (n = 1; err == SL_ENOMEM && n < 1000; n++) {
        sl_alloc_fail_after(n, 0);
        err = sl_shared_registry_register(&r, 2, names + 16, 48); /* f16..f63 */
        sl_alloc_fail_after(0, 0);
        if (err == SL_ENOMEM) {
            assert_int_equal(sl_shared_registry_size(&r), 32);
            assert_false(sl_shared_registry_has_checkpoint(&r, 2));
            assert_int_equal(sl_shared_registry_count(&r, "f16"), 1);
            assert_int_equal(sl_shared_registry_validate(&r), 0);
        }
    }
    assert_int_equal(err, 0);
    assert_true(n > 2); /* at least one failure was injected and survived */
    assert_int_equal(sl_shared_registry_size(&r), 64);
    assert_int_equal(sl_shared_registry_count(&r, "f16"), 2);
    assert_int_equal(sl_shared_registry_validate(&r), 0);
    sl_shared_registry_destroy(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pattern_retain1),
        cmocka_unit_test(test_pattern_retain2),
        cmocka_unit_test(test_duplicate_names_counted_once),
        cmocka_unit_test(test_release_twice_is_error),
        cmocka_unit_test(test_register_twice_is_error),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_discard_failure_reported),
        cmocka_unit_test(test_orphans_of_aborted_checkpoint),
        cmocka_unit_test(test_out_of_order_ids),
        cmocka_unit_test(test_many_files_against_model),
        cmocka_unit_test(test_register_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
