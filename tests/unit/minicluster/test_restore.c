/* Restore planning at another parallelism (restore.h): positions of old subtask j go whole,
 * as one set, to new subtask j % P'; a mask of local subtasks reads only their state; an
 * operator whose positions cannot be merged makes the plan fail naming vertex and operator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/job.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "checkpoint/metadata.h"
#include "checkpoint/storage.h"
#include "minicluster/coordinator.h"
#include "minicluster/restore.h"

int rt_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int rt_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    sl_row_set_i64(out, 0, (int64_t)seq);
    return 1;
}

/* A source chained to a sink at parallelism `par` (lines: the file source instead). */
static sl_job_t *make_job(uint32_t par, bool lines) {
    sl_job_t *job;
    char err[256];
    assert_int_equal(sl_job_create("rt", &job), 0);
    sl_stream_t *s = lines ? sl_source_lines(job, "src", "/dev/null") : sl_source_generator(job, "src", "rt_gen", "x:int64", 100);
    sl_sink_discard(s, "out");
    assert_null(sl_job_error(job));
    assert_int_equal(sl_job_graph_finalize(&job->graph, par, true, err, sizeof err), 0);
    assert_int_equal(job->graph.nvertices, 1);
    return job;
}

/* Checkpoint 1 of a job like make_job(old_par) whose subtask j saved split "old_par,j,10+j". */
static void write_checkpoint(const char *dir, uint32_t old_par, const sl_job_graph_t *g) {
    sl_ckpt_storage_t st;
    sl_ckpt_metadata_t md;
    char err[256], vid[256];
    assert_int_equal(sl_ckpt_storage_init(&st, dir, "rt-job", err, sizeof err), 0);
    assert_int_equal(sl_ckpt_metadata_init(&md, 1, "rt-job", 0, SL_CKPT_KIND_CHECKPOINT, g->max_parallelism), 0);
    sl_coordinator_vertex_id(g, 0, vid, sizeof vid);
    char path[4096];
    sl_ckpt_dir(&st, 1, path, sizeof path);
    assert_int_equal(mkdir(path, 0777), 0);
    for (uint32_t j = 0; j < old_par; j++) {
        sl_ckpt_operator_state_t *op;
        char v[64];
        assert_int_equal(sl_ckpt_metadata_add_operator(&md, vid, j, 0, g->max_parallelism - 1, &op), 0);
        snprintf(v, sizeof v, "%u,%u,%u", old_par, j, 10 + j);
        assert_int_equal(sl_ckpt_operator_set_extra(op, "0.s0", v), 0);
    }
    assert_int_equal(sl_ckpt_metadata_write(&st, &md, err, sizeof err), 0);
    sl_ckpt_metadata_free(&md);
    sl_ckpt_storage_destroy(&st);
}

static char *tmpdir(void) {
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/sl-restore-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void rm_rf(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* old -> new parallelism: which old subtasks each new subtask inherits. */
static void check_assignment(uint32_t old_par, uint32_t new_par) {
    char *dir = tmpdir(), ck[256], err[512];
    sl_job_t *old = make_job(old_par, false), *now = make_job(new_par, false);
    /* The vertex ids must agree: same chain, any parallelism. */
    write_checkpoint(dir, old_par, &old->graph);
    snprintf(ck, sizeof ck, "%s/rt-job/chk-1", dir);
    sl_restore_plan_t p;
    int rc = sl_restore_plan_load(&p, &now->graph, ck, NULL, err, sizeof err);
    if (rc)
        fail_msg("plan %u -> %u: %s", old_par, new_par, err);
    uint32_t seen = 0;
    for (uint32_t i = 0; i < new_par; i++) {
        const sl_task_restore_t *r = &p.tasks[0][i];
        assert_int_equal(r->nops, 2);
        const sl_task_restore_op_t *src = &r->ops[0];
        assert_int_equal(src->old_parallelism, old_par);
        uint32_t expect = 0;
        for (uint32_t j = i; j < old_par; j += new_par)
            expect++;
        assert_int_equal(src->nsets, expect);
        for (uint32_t k = 0; k < src->nsets; k++) {
            uint32_t j = i + k * new_par; /* increasing old subtask */
            assert_int_equal(src->from[k], j);
            char v[64];
            snprintf(v, sizeof v, "%u,%u,%u", old_par, j, 10 + j);
            assert_string_equal(sl_op_extras_get(&src->sets[k], "s0"), v);
            seen++;
        }
        /* The sink saved nothing, but hears of the restore with its (empty) sets. */
        assert_int_equal(r->ops[1].old_parallelism, old_par);
        assert_int_equal(r->ops[1].nsets, expect);
    }
    assert_int_equal(seen, old_par); /* every split once */
    sl_restore_plan_free(&p);
    sl_job_destroy(old);
    sl_job_destroy(now);
    rm_rf(dir);
}

static void test_splits_assignment(void **state) {
    check_assignment(2, 2);
    check_assignment(2, 3);
    check_assignment(3, 1);
    check_assignment(5, 2);
    check_assignment(1, 4);
}

static void test_local_mask(void **state) {
    char *dir = tmpdir(), ck[256], err[512];
    sl_job_t *old = make_job(2, false), *now = make_job(3, false);
    write_checkpoint(dir, 2, &old->graph);
    snprintf(ck, sizeof ck, "%s/rt-job", dir);
    uint8_t *none = calloc(now->graph.max_parallelism, 1);
    sl_restore_plan_t p;
    /* All-zero: only validates; positions are still planned. */
    assert_int_equal(sl_restore_plan_load(&p, &now->graph, ck, none, err, sizeof err), 0);
    assert_int_equal(p.checkpoint_id, 1);
    assert_int_equal(p.tasks[0][1].ops[0].nsets, 1);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(p.tasks[0][i].nstate + p.tasks[0][i].ndbs + p.tasks[0][i].nopstate, 0);
    sl_restore_plan_free(&p);
    /* A broken checkpoint fails whatever the mask. */
    char md[512];
    snprintf(md, sizeof md, "%s/rt-job/chk-1/_metadata", dir);
    FILE *f = fopen(md, "r+");
    assert_non_null(f);
    fputs("{garbage", f);
    fclose(f);
    assert_int_not_equal(sl_restore_plan_load(&p, &now->graph, ck, none, err, sizeof err), 0);
    free(none);
    sl_job_destroy(old);
    sl_job_destroy(now);
    rm_rf(dir);
}

static void test_refuses_file_source(void **state) {
    char *dir = tmpdir(), ck[256], err[512] = "";
    sl_job_t *old = make_job(2, true), *same = make_job(2, true), *now = make_job(3, true);
    write_checkpoint(dir, 2, &old->graph);
    snprintf(ck, sizeof ck, "%s/rt-job", dir);
    sl_restore_plan_t p;
    assert_int_equal(sl_restore_plan_load(&p, &now->graph, ck, NULL, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "'src -> out'"));
    assert_non_null(strstr(err, "operator 'src'"));
    assert_non_null(strstr(err, "cannot be redistributed"));
    assert_int_equal(sl_restore_plan_load(&p, &same->graph, ck, NULL, err, sizeof err), 0);
    assert_int_equal(p.tasks[0][1].ops[0].nsets, 1);
    sl_restore_plan_free(&p);
    sl_job_destroy(old);
    sl_job_destroy(same);
    sl_job_destroy(now);
    rm_rf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splits_assignment),
        cmocka_unit_test(test_local_mask),
        cmocka_unit_test(test_refuses_file_source),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
