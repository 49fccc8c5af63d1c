/* Checkpoint _metadata (src/checkpoint/metadata.h): round trip through the file format, the
 * checksum trailer (corruption, truncation), field validation with messages naming file and field,
 * verification of the referenced files, and allocation-failure injection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checksum.h"
#include "checkpoint/metadata.h"
#include "checkpoint/storage.h"
#include "core/alloc.h"

typedef struct {
    char root[64];
    sl_ckpt_storage_t s;
    sl_ckpt_metadata_t md;
    char mdpath[PATH_MAX];
    char err[1024];
} fx_t;

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->root, "/tmp/sl_ckpt_metadata_XXXXXX");
    if (mkdtemp(f->root) == NULL || sl_ckpt_storage_init(&f->s, f->root, "job-a", f->err, sizeof(f->err)) != 0) {
        free(f);
        return -1;
    }
    sl_ckpt_metadata_path(&f->s, 5, f->mdpath, sizeof(f->mdpath));
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    sl_ckpt_metadata_free(&f->md);
    sl_ckpt_storage_destroy(&f->s);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Checkpoint 5 of job-a: three subtasks of two vertices using every handle kind, with real files. */
static void build_checkpoint(fx_t *f) {
    char p[PATH_MAX], src[PATH_MAX];
    sl_ckpt_file_info_t a, b, sst;
    sl_ckpt_file_path(&f->s, 5, "window-0", p, sizeof(p));
    assert_int_equal(sl_ckpt_file_write(p, "window state of subtask 0", 25, &a, f->err, sizeof(f->err)), 0);
    sl_ckpt_file_path(&f->s, 5, "window-1", p, sizeof(p));
    assert_int_equal(sl_ckpt_file_write(p, "window state 1", 14, &b, f->err, sizeof(f->err)), 0);
    snprintf(src, sizeof(src), "%s/local-000012.sst", f->root);
    FILE *fp = fopen(src, "w");
    assert_non_null(fp);
    for (int i = 0; i < 5000; i++)
        fprintf(fp, "key%05d=value%d\n", i, i * 7);
    fclose(fp);
    sl_ckpt_shared_path(&f->s, "000012.sst", p, sizeof(p));
    assert_int_equal(sl_ckpt_file_copy(src, p, &sst, f->err, sizeof(f->err)), 0);

    sl_ckpt_metadata_t *md = &f->md;
    assert_int_equal(sl_ckpt_metadata_init(md, 5, "job-a", 1700000000123ull, SL_CKPT_KIND_CHECKPOINT, 128), 0);
    sl_ckpt_operator_state_t *op;
    assert_int_equal(sl_ckpt_metadata_add_operator(md, "source", 0, 0, 127, &op), 0);
    assert_int_equal(sl_ckpt_operator_set_extra(op, "offset", "12345"), 0);
    assert_int_equal(sl_ckpt_operator_set_extra(op, "partition", "3"), 0);
    assert_int_equal(sl_ckpt_operator_set_extra(op, "offset", "12346"), 0); /* replaces */
    assert_int_equal(sl_ckpt_operator_add_inline(op, "\x00\x01\xfe\xff", 4), 0);
    assert_int_equal(sl_ckpt_metadata_add_operator(md, "window", 0, 0, 63, &op), 0);
    assert_int_equal(sl_ckpt_operator_add_file(op, SL_CKPT_HANDLE_FILE, "chk-5/window-0", &a), 0);
    assert_int_equal(sl_ckpt_operator_add_file(op, SL_CKPT_HANDLE_SHARED, "000012.sst", &sst), 0);
    assert_int_equal(sl_ckpt_metadata_add_operator(md, "window", 1, 64, 127, &op), 0);
    assert_int_equal(sl_ckpt_operator_add_file(op, SL_CKPT_HANDLE_FILE, "chk-5/window-1", &b), 0);
    assert_int_equal(sl_ckpt_operator_add_file(op, SL_CKPT_HANDLE_SHARED, "000012.sst", &sst), 0);
    assert_int_equal(sl_ckpt_operator_add_inline(op, "", 0), 0);
    /* A subtask that had finished before the checkpoint: recorded, without state. */
    assert_int_equal(sl_ckpt_metadata_add_operator(md, "source", 1, 0, 127, &op), 0);
    op->finished = true;
}

static void assert_same(const sl_ckpt_metadata_t *x, const sl_ckpt_metadata_t *y) {
    assert_int_equal(x->checkpoint_id, y->checkpoint_id);
    assert_string_equal(x->job_id, y->job_id);
    assert_int_equal(x->timestamp_ms, y->timestamp_ms);
    assert_int_equal(x->kind, y->kind);
    assert_int_equal(x->max_parallelism, y->max_parallelism);
    assert_int_equal(x->n_operators, y->n_operators);
    for (uint32_t i = 0; i < x->n_operators; i++) {
        const sl_ckpt_operator_state_t *a = &x->operators[i], *b = &y->operators[i];
        assert_string_equal(a->vertex_id, b->vertex_id);
        assert_int_equal(a->subtask, b->subtask);
        assert_int_equal(a->kg_first, b->kg_first);
        assert_int_equal(a->kg_last, b->kg_last);
        assert_int_equal(a->finished, b->finished);
        assert_int_equal(a->n_handles, b->n_handles);
        for (uint32_t j = 0; j < a->n_handles; j++) {
            assert_int_equal(a->handles[j].kind, b->handles[j].kind);
            assert_int_equal(a->handles[j].size, b->handles[j].size);
            assert_int_equal(a->handles[j].crc32c, b->handles[j].crc32c);
            if (a->handles[j].kind == SL_CKPT_HANDLE_INLINE)
                assert_memory_equal(a->handles[j].data, b->handles[j].data, a->handles[j].size);
            else
                assert_string_equal(a->handles[j].path, b->handles[j].path);
        }
        assert_int_equal(a->n_extras, b->n_extras);
        for (uint32_t j = 0; j < a->n_extras; j++)
            assert_string_equal(sl_ckpt_operator_get_extra(b, a->extras[j].key), a->extras[j].value);
    }
}

static void test_round_trip(void **state) {
    fx_t *f = *state;
    build_checkpoint(f);
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), 0);

    /* Writing _metadata is what completes the checkpoint. */
    uint64_t latest;
    assert_int_equal(sl_ckpt_latest_completed(&f->s, &latest, f->err, sizeof(f->err)), 0);
    assert_int_equal(latest, 5);

    sl_ckpt_metadata_t back;
    assert_int_equal(sl_ckpt_metadata_read(f->mdpath, &back, f->err, sizeof(f->err)), 0);
    assert_same(&f->md, &back);
    assert_true(back.operators[3].finished);
    assert_false(back.operators[0].finished);
    assert_string_equal(sl_ckpt_operator_get_extra(&back.operators[0], "offset"), "12346");
    assert_null(sl_ckpt_operator_get_extra(&back.operators[0], "nope"));
    assert_int_equal(sl_ckpt_metadata_verify_files(&f->s, &back, f->err, sizeof(f->err)), 0);
    sl_ckpt_metadata_free(&back);
    sl_ckpt_metadata_free(&back); /* zeroed: a second free is a no-op */

    /* A completed checkpoint is never rewritten. */
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), SL_EEXIST);
    assert_non_null(strstr(f->err, f->mdpath));

    /* A savepoint with no operators round-trips too. */
    sl_ckpt_metadata_t sp, sp_back;
    assert_int_equal(sl_ckpt_metadata_init(&sp, 6, "job-a", 1, SL_CKPT_KIND_SAVEPOINT, 1), 0);
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &sp, f->err, sizeof(f->err)), 0);
    char p[PATH_MAX];
    sl_ckpt_metadata_path(&f->s, 6, p, sizeof(p));
    assert_int_equal(sl_ckpt_metadata_read(p, &sp_back, f->err, sizeof(f->err)), 0);
    assert_same(&sp, &sp_back);
    sl_ckpt_metadata_free(&sp);
    sl_ckpt_metadata_free(&sp_back);
}

static void test_file_format_trailer(void **state) {
    fx_t *f = *state;
    build_checkpoint(f);
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), 0);
    FILE *fp = fopen(f->mdpath, "rb");
    assert_non_null(fp);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    /* The documented layout: BODY, then "crc32c <8 hex>\n" with the CRC of BODY. */
    assert_true(n > 17);
    assert_memory_equal(buf + n - 16, "crc32c ", 7);
    char want[17];
    snprintf(want, sizeof(want), "crc32c %08" PRIx32 "\n", sl_crc32c(0, buf, n - 16));
    assert_string_equal(buf + n - 16, want);
    assert_int_equal(buf[0], '{');
}

static void test_write_rejects_invalid(void **state) {
    fx_t *f = *state;
    build_checkpoint(f);
    f->md.operators[1].kg_last = 200; /* beyond max_parallelism 128 */
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), SL_EINVAL);
    assert_non_null(strstr(f->err, "operators[1].key_groups"));
    f->md.operators[1].kg_last = 63;
    sl_free(f->md.job_id);
    f->md.job_id = sl_strdup("job-b");
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), SL_EINVAL);
    assert_non_null(strstr(f->err, "job-b"));
    sl_free(f->md.job_id);
    f->md.job_id = sl_strdup("job-a");
    sl_free(f->md.operators[2].handles[0].path);
    f->md.operators[2].handles[0].path = sl_strdup("chk-5/../../../etc/passwd");
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), SL_EINVAL);
    assert_non_null(strstr(f->err, "operators[2].handles[0].path"));
    assert_false(access(f->mdpath, F_OK) == 0); /* nothing written */
}

static void test_corrupt_byte(void **state) {
    fx_t *f = *state;
    build_checkpoint(f);
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), 0);
    int fd = open(f->mdpath, O_RDWR);
    assert_true(fd >= 0);
    char c;
    assert_int_equal(pread(fd, &c, 1, 40), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, 40), 1);
    close(fd);
    sl_ckpt_metadata_t back;
    assert_int_equal(sl_ckpt_metadata_read(f->mdpath, &back, f->err, sizeof(f->err)), SL_EPARSE);
    assert_non_null(strstr(f->err, "checksum mismatch in"));
    assert_non_null(strstr(f->err, f->mdpath));
    assert_null(back.operators); /* zeroed on failure */
}

static void test_truncated(void **state) {
    fx_t *f = *state;
    build_checkpoint(f);
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), 0);
    struct stat st;
    assert_int_equal(stat(f->mdpath, &st), 0);
    off_t sizes[] = {st.st_size - 1, st.st_size - 10, st.st_size / 2, 1, 0};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        assert_int_equal(truncate(f->mdpath, sizes[i]), 0);
        sl_ckpt_metadata_t back;
        assert_int_equal(sl_ckpt_metadata_read(f->mdpath, &back, f->err, sizeof(f->err)), SL_EPARSE);
        assert_non_null(strstr(f->err, f->mdpath));
        assert_non_null(strstr(f->err, "trailer"));
    }
    unlink(f->mdpath);
    sl_ckpt_metadata_t back;
    assert_int_equal(sl_ckpt_metadata_read(f->mdpath, &back, f->err, sizeof(f->err)), SL_ENOENT);
    assert_non_null(strstr(f->err, f->mdpath));
}

/* Writes `json` with a correct trailer, so only field validation can reject it. */
static void write_signed(const char *path, const char *json) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fprintf(fp, "%s\ncrc32c %08" PRIx32 "\n", json, sl_crc32c(sl_crc32c(0, json, strlen(json)), "\n", 1));
    fclose(fp);
}

#define OP_OK "{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],\"handles\":[],\"extras\":{}}"
#define OP_FIN "{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],\"handles\":[],\"extras\":{},\"finished\":true}"
#define HEAD2(fields) "{\"version\":2,\"checkpoint_id\":5,\"job_id\":\"job-a\",\"timestamp_ms\":1,\"kind\":\"checkpoint\"," fields "}"
#define HEAD(fields) "{\"version\":1,\"checkpoint_id\":5,\"job_id\":\"job-a\",\"timestamp_ms\":1,\"kind\":\"checkpoint\"," fields "}"

static void test_bad_fields(void **state) {
    fx_t *f = *state;
    struct {
        const char *json, *field;
    } cases[] = {
        {HEAD("\"max_parallelism\":4,\"operators\":[" OP_OK "]"), NULL}, /* the valid baseline */
        {"{\"version\":1,\"checkpoint_id\":\"5\",\"job_id\":\"job-a\",\"timestamp_ms\":1,\"kind\":\"checkpoint\","
         "\"max_parallelism\":4,\"operators\":[]}",
         "field checkpoint_id"},
        {"{\"version\":1,\"checkpoint_id\":5,\"timestamp_ms\":1,\"kind\":\"checkpoint\",\"max_parallelism\":4,"
         "\"operators\":[]}",
         "field job_id: missing"},
        {"{\"version\":3,\"checkpoint_id\":5,\"job_id\":\"j\",\"timestamp_ms\":1,\"kind\":\"checkpoint\","
         "\"max_parallelism\":4,\"operators\":[]}",
         "field version"},
        /* Version 2 records finished subtasks: required there, without state. */
        {HEAD2("\"max_parallelism\":4,\"operators\":[" OP_FIN "]"), NULL},
        {HEAD2("\"max_parallelism\":4,\"operators\":[" OP_OK "]"), "field operators[0].finished: missing"},
        {HEAD2("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
               "\"handles\":[],\"extras\":{},\"finished\":1}]"),
         "field operators[0].finished: expected a boolean"},
        {HEAD2("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
               "\"handles\":[],\"extras\":{\"0.s0\":\"1,0,5\"},\"finished\":true}]"),
         "field operators[0].finished: a finished subtask has no state"},
        {"{\"version\":1,\"checkpoint_id\":5,\"job_id\":\"j\",\"timestamp_ms\":-1,\"kind\":\"checkpoint\","
         "\"max_parallelism\":4,\"operators\":[]}",
         "field timestamp_ms"},
        {"{\"version\":1,\"checkpoint_id\":5,\"job_id\":\"j\",\"timestamp_ms\":1,\"kind\":\"bogus\","
         "\"max_parallelism\":4,\"operators\":[]}",
         "field kind"},
        {HEAD("\"max_parallelism\":1.5,\"operators\":[]"), "field max_parallelism"},
        {HEAD("\"max_parallelism\":0,\"operators\":[]"), "field max_parallelism"},
        {HEAD("\"max_parallelism\":4,\"operators\":{}"), "field operators: expected an array"},
        {HEAD("\"max_parallelism\":4,\"operators\":[" OP_OK ",7]"), "field operators[1]: expected an object"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":-1,\"key_groups\":[0,3],"
              "\"handles\":[],\"extras\":{}}]"),
         "field operators[0].subtask"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[3,0],"
              "\"handles\":[],\"extras\":{}}]"),
         "field operators[0].key_groups"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0],"
              "\"handles\":[],\"extras\":{}}]"),
         "field operators[0].key_groups"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[{\"kind\":\"file\",\"path\":\"chk-5/x\",\"size\":\"12\",\"crc32c\":0}],\"extras\":{}}]"),
         "field operators[0].handles[0].size"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[{\"kind\":\"file\",\"path\":\"chk-5/x\",\"size\":1,\"crc32c\":4294967296}],"
              "\"extras\":{}}]"),
         "field operators[0].handles[0].crc32c"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[{\"kind\":\"tape\",\"path\":\"x\",\"size\":1,\"crc32c\":0}],\"extras\":{}}]"),
         "field operators[0].handles[0].kind"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[{\"kind\":\"file\",\"path\":\"/etc/passwd\",\"size\":1,\"crc32c\":0}],\"extras\":{}}]"),
         "field operators[0].handles[0].path"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[{\"kind\":\"shared\",\"path\":\"../x\",\"size\":1,\"crc32c\":0}],\"extras\":{}}]"),
         "field operators[0].handles[0].path"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[{\"kind\":\"inline\",\"data\":\"0g\",\"size\":1,\"crc32c\":0}],\"extras\":{}}]"),
         "field operators[0].handles[0].data"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[{\"kind\":\"inline\",\"data\":\"00\",\"size\":1,\"crc32c\":12}],\"extras\":{}}]"),
         "field operators[0].handles[0].crc32c"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[],\"extras\":{\"offset\":12345}}]"),
         "field operators[0].extras.offset"},
        {HEAD("\"max_parallelism\":4,\"operators\":[{\"vertex\":\"v\",\"subtask\":0,\"key_groups\":[0,3],"
              "\"handles\":[]}]"),
         "field operators[0].extras: missing"},
        {"[1,2,3]", "expected a JSON object"},
        {"{\"version\":1,", "invalid JSON"},
        {"{\"version\":1,\"version\":1}", "invalid JSON"}, /* duplicate keys */
    };
    mkdir(f->s.job_dir, 0755);
    char dir[PATH_MAX];
    sl_ckpt_dir(&f->s, 5, dir, sizeof(dir));
    mkdir(dir, 0755);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_signed(f->mdpath, cases[i].json);
        sl_ckpt_metadata_t md;
        int rc = sl_ckpt_metadata_read(f->mdpath, &md, f->err, sizeof(f->err));
        if (cases[i].field == NULL) {
            assert_int_equal(rc, 0);
            sl_ckpt_metadata_free(&md);
            continue;
        }
        if (rc != SL_EPARSE || strstr(f->err, cases[i].field) == NULL || strstr(f->err, f->mdpath) == NULL)
            fail_msg("case %zu: rc %d, message \"%s\", wanted \"%s\"", i, rc, f->err, cases[i].field);
        assert_null(md.job_id);
    }
}

static void test_verify_files_corrupt_shared(void **state) {
    fx_t *f = *state;
    build_checkpoint(f);
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), 0);
    char p[PATH_MAX];
    sl_ckpt_shared_path(&f->s, "000012.sst", p, sizeof(p));
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 1000), 1);
    close(fd);
    assert_int_equal(sl_ckpt_metadata_verify_files(&f->s, &f->md, f->err, sizeof(f->err)), SL_EPARSE);
    assert_non_null(strstr(f->err, "checksum mismatch in"));
    assert_non_null(strstr(f->err, p));
    assert_non_null(strstr(f->err, "vertex window subtask 0"));
}

static void test_verify_files_missing(void **state) {
    fx_t *f = *state;
    build_checkpoint(f);
    assert_int_equal(sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err)), 0);
    char p[PATH_MAX];
    sl_ckpt_file_path(&f->s, 5, "window-1", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    assert_int_equal(sl_ckpt_metadata_verify_files(&f->s, &f->md, f->err, sizeof(f->err)), SL_ENOENT);
    assert_non_null(strstr(f->err, "missing"));
    assert_non_null(strstr(f->err, p));
    assert_non_null(strstr(f->err, "vertex window subtask 1"));
    /* Inline data is verified too. */
    f->md.operators[0].handles[0].data[0] ^= 1;
    assert_int_equal(sl_ckpt_metadata_verify_files(&f->s, &f->md, f->err, sizeof(f->err)), SL_EPARSE);
    assert_non_null(strstr(f->err, "vertex source subtask 0"));
}

/* Fails the n-th sl_malloc for n = 1, 2, ... until write and read succeed; every failure must be
 * a clean SL_ENOMEM (ASan reports any leak at exit). */
static void test_alloc_failures(void **state) {
    fx_t *f = *state;
    build_checkpoint(f);
    int rc = SL_ENOMEM;
    for (long n = 1; rc != 0 && n < 1000; n++) {
        sl_alloc_fail_after(n, 0);
        rc = sl_ckpt_metadata_write(&f->s, &f->md, f->err, sizeof(f->err));
        sl_alloc_fail_after(0, 0);
        if (rc != 0 && rc != SL_ENOMEM)
            fail_msg("n=%ld rc=%d %s", n, rc, f->err);
    }
    assert_int_equal(rc, 0);
    rc = SL_ENOMEM;
    long n;
    for (n = 1; rc != 0 && n < 1000; n++) {
        sl_ckpt_metadata_t back;
        sl_alloc_fail_after(n, 0);
        rc = sl_ckpt_metadata_read(f->mdpath, &back, f->err, sizeof(f->err));
        sl_alloc_fail_after(0, 0);
        if (rc != 0 && rc != SL_ENOMEM)
            fail_msg("n=%ld rc=%d %s", n, rc, f->err);
        if (rc == 0) {
            assert_same(&f->md, &back);
            sl_ckpt_metadata_free(&back);
        }
    }
    assert_int_equal(rc, 0);
    assert_true(n > 10); /* the read path really did allocate and fail several times */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_format_trailer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_rejects_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_files_corrupt_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_files_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
