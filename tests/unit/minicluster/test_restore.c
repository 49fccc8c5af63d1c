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
#include "minicluster/minicluster.h"
#include "minicluster/restore.h"
#include "core/config.h"

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

/* Checkpoint 1 of vertex `vertex` of `g` with subtask j finished iff fin[j], the others
 * holding split "old_par,j,10+j" of their source (when `splits`). */
static void write_checkpoint_fin(const char *dir, const sl_job_graph_t *g, uint32_t vertex, uint32_t old_par,
                                 const bool *fin, bool splits, bool also_others) {
    sl_ckpt_storage_t st;
    sl_ckpt_metadata_t md;
    char err[256], vid[256], path[4096];
    assert_int_equal(sl_ckpt_storage_init(&st, dir, "rt-job", err, sizeof err), 0);
    assert_int_equal(sl_ckpt_metadata_init(&md, 1, "rt-job", 0, SL_CKPT_KIND_CHECKPOINT, g->max_parallelism), 0);
    sl_ckpt_dir(&st, 1, path, sizeof path);
    mkdir(path, 0777);
    for (uint32_t v = 0; v < g->nvertices; v++) {
        if (v != vertex && !also_others)
            continue;
        sl_coordinator_vertex_id(g, v, vid, sizeof vid);
        uint32_t par = v == vertex ? old_par : g->vertices[v].parallelism;
        for (uint32_t j = 0; j < par; j++) {
            sl_ckpt_operator_state_t *op;
            assert_int_equal(sl_ckpt_metadata_add_operator(&md, vid, j, 0, g->max_parallelism - 1, &op), 0);
            if (v == vertex && fin[j]) {
                op->finished = true;
            } else if (splits && g->nodes[g->vertices[v].nodes[0]].ninputs == 0) {
                char val[64];
                snprintf(val, sizeof val, "%u,%u,%u", par, j, 10 + j);
                assert_int_equal(sl_ckpt_operator_set_extra(op, "0.s0", val), 0);
            }
        }
    }
    assert_int_equal(sl_ckpt_metadata_write(&st, &md, err, sizeof err), 0);
    sl_ckpt_metadata_free(&md);
    sl_ckpt_storage_destroy(&st);
}

/* Same parallelism: the subtasks that had finished are deployed finished, with no state; the
 * others restore as usual. */
static void test_finished_same_parallelism(void **state) {
    char *dir = tmpdir(), ck[256], err[512];
    sl_job_t *job = make_job(3, false);
    bool fin[3] = {false, true, false};
    write_checkpoint_fin(dir, &job->graph, 0, 3, fin, true, false);
    snprintf(ck, sizeof ck, "%s/rt-job", dir);
    sl_restore_plan_t p;
    if (sl_restore_plan_load(&p, &job->graph, ck, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(p.tasks[0][i].finished, fin[i]);
        assert_int_equal(p.tasks[0][i].ops[0].nsets, fin[i] ? 0 : 1);
    }
    assert_string_equal(sl_op_extras_get(&p.tasks[0][2].ops[0].sets[0], "s0"), "3,2,12");
    sl_restore_plan_free(&p);
    sl_job_destroy(job);
    rm_rf(dir);
}

/* Another parallelism: a vertex whose subtasks all finished stays finished, every new subtask;
 * a partly finished source hands on only the running subtasks' splits. */
static void test_finished_rescaled(void **state) {
    char *dir = tmpdir(), ck[256], err[512];
    sl_job_t *old = make_job(3, false), *up = make_job(4, false), *down = make_job(2, false);
    bool all[3] = {true, true, true};
    write_checkpoint_fin(dir, &old->graph, 0, 3, all, true, false);
    snprintf(ck, sizeof ck, "%s/rt-job", dir);
    sl_restore_plan_t p;
    if (sl_restore_plan_load(&p, &up->graph, ck, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    for (uint32_t i = 0; i < 4; i++)
        assert_true(p.tasks[0][i].finished);
    sl_restore_plan_free(&p);
    rm_rf(dir);

    dir = tmpdir();
    bool some[3] = {false, true, false};
    write_checkpoint_fin(dir, &old->graph, 0, 3, some, true, false);
    snprintf(ck, sizeof ck, "%s/rt-job", dir);
    if (sl_restore_plan_load(&p, &down->graph, ck, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    /* Old 0 and 2 ran on: both go to new 0 (j % 2); old 1's splits were all read, new 1
     * inherits none (its source ends at once). */
    assert_false(p.tasks[0][0].finished);
    assert_false(p.tasks[0][1].finished);
    assert_int_equal(p.tasks[0][0].ops[0].nsets, 2);
    assert_string_equal(sl_op_extras_get(&p.tasks[0][0].ops[0].sets[0], "s0"), "3,0,10");
    assert_string_equal(sl_op_extras_get(&p.tasks[0][0].ops[0].sets[1], "s0"), "3,2,12");
    assert_int_equal(p.tasks[0][1].ops[0].nsets, 0);
    assert_int_equal(p.tasks[0][1].ops[0].old_parallelism, 3);
    sl_restore_plan_free(&p);
    sl_job_destroy(old);
    sl_job_destroy(up);
    sl_job_destroy(down);
    rm_rf(dir);
}

/* A source, then (rebalanced) a CSV sink of its own vertex at `par`. */
static sl_job_t *make_two_vertex_job(uint32_t par, const char *out) {
    sl_job_t *job;
    char err[256];
    assert_int_equal(sl_job_create("rt", &job), 0);
    sl_stream_t *s = sl_source_generator(job, "src", "rt_gen", "x:int64", 100);
    assert_non_null(sl_stream_parallelism(sl_sink_csv(sl_stream_rebalance(s), "out", out), par));
    assert_null(sl_job_error(job));
    assert_int_equal(sl_job_graph_finalize(&job->graph, par, true, err, sizeof err), 0);
    assert_int_equal(job->graph.nvertices, 2);
    return job;
}

/* A partly finished vertex that is not a source cannot change parallelism: the error names
 * the vertex and the checkpoint and says how it can be restored. */
static void test_finished_partial_refused(void **state) {
    char *dir = tmpdir(), ck[256], err[512] = "";
    sl_job_t *old = make_two_vertex_job(2, "/tmp/sl-restore-unused.csv"),
             *now = make_two_vertex_job(3, "/tmp/sl-restore-unused.csv");
    uint32_t out = strcmp(old->graph.vertices[0].name, "out") == 0 ? 0 : 1;
    bool fin[2] = {true, false};
    write_checkpoint_fin(dir, &old->graph, out, 2, fin, true, true);
    snprintf(ck, sizeof ck, "%s/rt-job", dir);
    sl_restore_plan_t p;
    assert_int_equal(sl_restore_plan_load(&p, &now->graph, ck, NULL, err, sizeof err), SL_EJOB);
    assert_string_equal(err, "vertex 'out' had 1 of its 2 subtasks finished in checkpoint 1: a partly finished "
                             "vertex (other than a source) can be restored at the same parallelism only (2, not 3)");
    /* At its own parallelism it restores, subtask 0 finished. */
    if (sl_restore_plan_load(&p, &old->graph, ck, NULL, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_true(p.tasks[out][0].finished);
    assert_false(p.tasks[out][1].finished);
    assert_false(p.tasks[1 - out][0].finished);
    sl_restore_plan_free(&p);
    sl_job_destroy(old);
    sl_job_destroy(now);
    rm_rf(dir);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot read %s", path);
    char *b = calloc(1, 1 << 20);
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void run_job(const sl_job_graph_t *g, const char *ckdir, const char *from) {
    sl_config_t *cfg;
    char err[512];
    assert_int_equal(sl_config_create(&cfg), 0);
    assert_int_equal(sl_config_set(cfg, "execution.checkpointing.interval", "10ms", err, sizeof err), 0);
    assert_int_equal(sl_config_set(cfg, "state.checkpoints.dir", ckdir, err, sizeof err), 0);
    if (from)
        assert_int_equal(sl_config_set(cfg, "execution.savepoint.path", from, err, sizeof err), 0);
    sl_job_result_t r;
    assert_int_equal(sl_minicluster_run(cfg, g, NULL, NULL, NULL, 0, &r), 0);
    if (r.status)
        fail_msg("run: %s", r.error);
    sl_config_destroy(cfg);
}

/* A job restored from a checkpoint in which every subtask had finished runs none of its
 * operators again: its sources produce nothing more and its exactly-once CSV sinks do not
 * assemble their output files again (with the empty state of a fresh start they would
 * replace them). */
static void test_finished_not_rerun(void **state) {
    char *dir = tmpdir(), out[256], ck[256], out0[300], out1[300];
    snprintf(out, sizeof out, "%s/out.csv", dir);
    snprintf(out0, sizeof out0, "%s.0", out);
    snprintf(out1, sizeof out1, "%s.1", out);
    snprintf(ck, sizeof ck, "%s/ck", dir);
    sl_job_t *job = make_two_vertex_job(2, out);
    run_job(&job->graph, ck, NULL);
    char *a0 = slurp(out0), *a1 = slurp(out1);
    assert_true(strlen(a0) + strlen(a1) > 200); /* 100 rows and headers */
    struct stat before, after;
    assert_int_equal(stat(out0, &before), 0);
    char fin_dir[300], from[400];
    snprintf(fin_dir, sizeof fin_dir, "%s/fin", dir);
    /* Checkpoint 1: both vertices, every subtask finished. */
    sl_ckpt_storage_t st;
    sl_ckpt_metadata_t md;
    char err[256], vid[256], path[4096];
    assert_int_equal(sl_ckpt_storage_init(&st, fin_dir, "rt-job", err, sizeof err), 0);
    assert_int_equal(
        sl_ckpt_metadata_init(&md, 1, "rt-job", 0, SL_CKPT_KIND_CHECKPOINT, job->graph.max_parallelism), 0);
    for (uint32_t v = 0; v < 2; v++)
        for (uint32_t j = 0; j < 2; j++) {
            sl_ckpt_operator_state_t *op;
            sl_coordinator_vertex_id(&job->graph, v, vid, sizeof vid);
            assert_int_equal(sl_ckpt_metadata_add_operator(&md, vid, j, 0, job->graph.max_parallelism - 1, &op), 0);
            op->finished = true;
        }
    sl_ckpt_dir(&st, 1, path, sizeof path);
    mkdir(path, 0777);
    assert_int_equal(sl_ckpt_metadata_write(&st, &md, err, sizeof err), 0);
    sl_ckpt_metadata_free(&md);
    snprintf(from, sizeof from, "%s/rt-job/chk-1", fin_dir);
    sl_ckpt_storage_destroy(&st);
    run_job(&job->graph, ck, from);
    char *b0 = slurp(out0), *b1 = slurp(out1);
    assert_string_equal(a0, b0);
    assert_string_equal(a1, b1);
    assert_int_equal(stat(out0, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino); /* not even replaced by an equal file */
    assert_int_equal(before.st_mtime, after.st_mtime);
    free(a0);
    free(a1);
    free(b0);
    free(b1);
    sl_job_destroy(job);
    rm_rf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splits_assignment),
        cmocka_unit_test(test_local_mask),
        cmocka_unit_test(test_refuses_file_source),
        cmocka_unit_test(test_finished_same_parallelism),
        cmocka_unit_test(test_finished_rescaled),
        cmocka_unit_test(test_finished_partial_refused),
        cmocka_unit_test(test_finished_not_rerun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
