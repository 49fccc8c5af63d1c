/* The checkpoint coordinator with finished tasks (FLIP-147, coordinator.c): checkpoint n
 * completes once every subtask acknowledged n or finished after a checkpoint k < n, whatever
 * the order of acknowledgements and finish reports; finished subtasks are recorded in the
 * _metadata; no trigger once every source subtask finished; savepoints after some finished. */
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

#include "api/job_internal.h"
#include "checkpoint/metadata.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/mailbox.h"
#include "minicluster/coordinator.h"

int co_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int co_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    sl_row_set_i64(out, 0, (int64_t)seq);
    return 1;
}

/* What the gateway saw. */
typedef struct {
    sl_coordinator_t *co;
    uint32_t triggers;
    uint64_t last_barrier;
    uint32_t notices;
    uint64_t last_notice;
    int sp_status;
    char sp_path[4096];
    int sp_calls;
} gw_log_t;

static int gw_trigger(void *arg, uint64_t barrier_id) {
    gw_log_t *l = arg;
    l->triggers++;
    l->last_barrier = barrier_id;
    /* Sources write into chk-<n> before they acknowledge: a savepoint moves that directory. */
    char dir[4096];
    sl_ckpt_dir(&l->co->storage, barrier_id & ~SL_CKPT_SAVEPOINT_BIT, dir, sizeof dir);
    mkdir(dir, 0777);
    return 0;
}

static void gw_notify(void *arg, uint64_t id, bool stop) {
    gw_log_t *l = arg;
    l->notices++;
    l->last_notice = id;
}

static void on_savepoint(void *arg, int status, const char *path_or_error) {
    gw_log_t *l = arg;
    l->sp_calls++;
    l->sp_status = status;
    snprintf(l->sp_path, sizeof l->sp_path, "%s", path_or_error);
}

/* Sources "a" (parallelism 2) and "b" (1), their union (2), a sink "out" (2): 7 subtasks. */
typedef struct {
    sl_job_t *job;
    sl_config_t *cfg;
    char dir[64];
    sl_coordinator_t co;
    gw_log_t log;
    uint32_t va, vb, vu, vout; /* vertex ids */
    int64_t now;
} fx_t;

static uint32_t vertex_named(const sl_job_graph_t *g, const char *name) {
    for (uint32_t v = 0; v < g->nvertices; v++)
        if (strcmp(g->vertices[v].name, name) == 0)
            return v;
    fail_msg("no vertex '%s'", name);
    return 0;
}

/* `max`: max-concurrent-checkpoints, `timeout` and `pause` durations. */
static int setup_with(void **state, const char *max, const char *timeout, const char *pause) {
    fx_t *f = calloc(1, sizeof *f);
    char err[512];
    assert_int_equal(sl_job_create("co", &f->job), 0);
    sl_stream_t *a = sl_stream_parallelism(sl_source_generator(f->job, "a", "co_gen", "x:int64", 10), 2);
    sl_stream_t *b = sl_stream_parallelism(sl_source_generator(f->job, "b", "co_gen", "x:int64", 10), 1);
    assert_non_null(sl_stream_parallelism(sl_sink_discard(sl_stream_rebalance(sl_stream_union(a, b)), "out"), 2));
    assert_null(sl_job_error(f->job));
    assert_int_equal(sl_job_graph_finalize(&f->job->graph, 2, true, err, sizeof err), 0);
    const sl_job_graph_t *g = &f->job->graph;
    assert_int_equal(g->nvertices, 4); /* a, b, union, out */
    f->va = vertex_named(g, "a");
    f->vb = vertex_named(g, "b");
    f->vu = vertex_named(g, "union");
    f->vout = vertex_named(g, "out");
    snprintf(f->dir, sizeof f->dir, "/tmp/sl-coord-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(sl_config_create(&f->cfg), 0);
    assert_int_equal(sl_config_set(f->cfg, "execution.checkpointing.interval", "10ms", err, sizeof err), 0);
    assert_int_equal(sl_config_set(f->cfg, "execution.checkpointing.min-pause", pause, err, sizeof err), 0);
    assert_int_equal(sl_config_set(f->cfg, "execution.checkpointing.timeout", timeout, err, sizeof err), 0);
    assert_int_equal(sl_config_set(f->cfg, "execution.checkpointing.max-concurrent-checkpoints", max, err, sizeof err),
                     0);
    assert_int_equal(sl_config_set(f->cfg, "state.checkpoints.dir", f->dir, err, sizeof err), 0);
    assert_int_equal(sl_config_set(f->cfg, "state.checkpoints.num-retained", "10", err, sizeof err), 0);
    if (sl_coordinator_init(&f->co, f->cfg, g, "co-job", 1, false, err, sizeof err) != 0)
        fail_msg("init: %s", err);
    f->log.co = &f->co;
    sl_coordinator_set_gateway(&f->co, &(sl_coordinator_gateway_t){gw_trigger, gw_notify, &f->log, 7});
    f->now = sl_monotonic_ms();
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_with(state, "1", "10 min", "0"); }
static int setup3(void **state) { return setup_with(state, "3", "10 min", "0"); }
static int setup3_timeout(void **state) { return setup_with(state, "3", "2500ms", "0"); }
static int setup3_pause(void **state) { return setup_with(state, "3", "10 min", "500ms"); }

static int teardown(void **state) {
    fx_t *f = *state;
    sl_coordinator_set_gateway(&f->co, NULL);
    sl_coordinator_destroy(&f->co);
    sl_config_destroy(f->cfg);
    sl_job_destroy(f->job);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Ticks past the interval: a checkpoint is triggered when one can be. */
static void tick(fx_t *f) {
    f->now += 1000;
    sl_coordinator_tick(&f->co, f->now);
}

static void trigger(fx_t *f, uint64_t expect_id) {
    uint32_t before = f->log.triggers;
    tick(f);
    assert_int_equal(f->log.triggers, before + 1);
    assert_int_equal(f->log.last_barrier & ~SL_CKPT_SAVEPOINT_BIT, expect_id);
    assert_non_null(sl_coordinator_pending(&f->co, expect_id));
}

static void ack(fx_t *f, uint32_t vertex, uint32_t subtask, uint64_t id) {
    sl_task_ack_t *a = sl_calloc(1, sizeof *a);
    a->checkpoint_id = id;
    a->vertex = vertex;
    a->subtask = subtask;
    sl_coordinator_ack(&f->co, a);
}

/* Every subtask but the ones listed acknowledges `id`. */
static void ack_all_but(fx_t *f, uint64_t id, uint32_t v1, uint32_t s1, uint32_t v2, uint32_t s2) {
    const sl_job_graph_t *g = &f->job->graph;
    for (uint32_t v = 0; v < g->nvertices; v++)
        for (uint32_t i = 0; i < g->vertices[v].parallelism; i++)
            if (!(v == v1 && i == s1) && !(v == v2 && i == s2))
                ack(f, v, i, id);
}

#define NONE UINT32_MAX

/* chk-<id>/_metadata's finished entries, as "vertex/subtask " in file order, and its count. */
static uint32_t finished_in(fx_t *f, const char *jobdir, uint64_t id, char *buf, size_t len) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/chk-%llu/_metadata", jobdir, (unsigned long long)id);
    sl_ckpt_metadata_t md;
    if (sl_ckpt_metadata_read(path, &md, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(md.n_operators, 7); /* every subtask, finished or not */
    buf[0] = '\0';
    uint32_t n = 0;
    for (uint32_t i = 0; i < md.n_operators; i++)
        if (md.operators[i].finished) {
            assert_int_equal(md.operators[i].n_handles + md.operators[i].n_extras, 0);
            snprintf(buf + strlen(buf), len - strlen(buf), "%s/%u ", md.operators[i].vertex_id,
                     md.operators[i].subtask);
            n++;
        }
    sl_ckpt_metadata_free(&md);
    return n;
}

static void test_ack_then_finish(void **state) {
    fx_t *f = *state;
    char fin[256], want[256];
    trigger(f, 1);
    ack_all_but(f, 1, f->vb, 0, NONE, 0);
    assert_int_equal(f->co.latest, 0);
    ack(f, f->vb, 0, 1);
    assert_int_equal(f->co.latest, 1);
    assert_int_equal(finished_in(f, f->co.storage.job_dir, 1, fin, sizeof fin), 0);
    /* b ends after checkpoint 1: checkpoint 2 completes without it and records it finished. */
    sl_coordinator_task_finished(&f->co, f->vb, 0, 1);
    trigger(f, 2);
    ack_all_but(f, 2, f->vb, 0, NONE, 0);
    assert_int_equal(f->co.latest, 2);
    assert_int_equal(f->log.last_notice, 2);
    assert_int_equal(finished_in(f, f->co.storage.job_dir, 2, fin, sizeof fin), 1);
    snprintf(want, sizeof want, "v%u:b/0 ", f->vb);
    assert_string_equal(fin, want);
    /* And the next ones too. */
    trigger(f, 3);
    ack_all_but(f, 3, f->vb, 0, NONE, 0);
    assert_int_equal(f->co.latest, 3);
}

static void test_finish_then_ack(void **state) {
    fx_t *f = *state;
    char fin[256];
    trigger(f, 1);
    ack_all_but(f, 1, f->vb, 0, NONE, 0);
    /* b snapshotted 1 and finished; its acknowledgement (from a writer thread) comes later. */
    sl_coordinator_task_finished(&f->co, f->vb, 0, 1);
    assert_int_equal(f->co.latest, 0);
    assert_non_null(sl_coordinator_pending(&f->co, 1));
    ack(f, f->vb, 0, 1);
    assert_int_equal(f->co.latest, 1);
    assert_int_equal(finished_in(f, f->co.storage.job_dir, 1, fin, sizeof fin), 0); /* it took part */
    /* A sink finishing after snapshotting 2, before anyone else acknowledged 2. */
    trigger(f, 2);
    sl_coordinator_task_finished(&f->co, f->vout, 1, 2);
    ack_all_but(f, 2, f->vout, 1, f->vb, 0);
    assert_int_equal(f->co.latest, 1);
    ack(f, f->vout, 1, 2);
    assert_int_equal(f->co.latest, 2);
    assert_int_equal(finished_in(f, f->co.storage.job_dir, 2, fin, sizeof fin), 1); /* b only */
}

static void test_finish_before_trigger(void **state) {
    fx_t *f = *state;
    char fin[256], want[256];
    /* a/1 ends before any checkpoint (a source without splits). */
    sl_coordinator_task_finished(&f->co, f->va, 1, 0);
    trigger(f, 1);
    ack_all_but(f, 1, f->va, 1, NONE, 0);
    assert_int_equal(f->co.latest, 1);
    assert_int_equal(finished_in(f, f->co.storage.job_dir, 1, fin, sizeof fin), 1);
    snprintf(want, sizeof want, "v%u:a/1 ", f->va);
    assert_string_equal(fin, want);
}

static void test_finish_after_trigger(void **state) {
    fx_t *f = *state;
    char fin[256], want[256];
    trigger(f, 1);
    ack_all_but(f, 1, NONE, 0, NONE, 0);
    assert_int_equal(f->co.latest, 1);
    trigger(f, 2);
    /* b ends before barrier 2 reached it (last snapshot 1), before the others acknowledge. */
    sl_coordinator_task_finished(&f->co, f->vb, 0, 1);
    assert_int_equal(f->co.latest, 1);
    ack_all_but(f, 2, f->vb, 0, f->va, 0);
    assert_int_equal(f->co.latest, 1);
    ack(f, f->va, 0, 2);
    assert_int_equal(f->co.latest, 2);
    /* The finish report is the last thing missing: it completes checkpoint 3. */
    trigger(f, 3);
    ack_all_but(f, 3, f->vb, 0, f->va, 1);
    assert_int_equal(f->co.latest, 2);
    sl_coordinator_task_finished(&f->co, f->va, 1, 2);
    assert_int_equal(f->co.latest, 3);
    assert_int_equal(finished_in(f, f->co.storage.job_dir, 3, fin, sizeof fin), 2);
    /* File order: vertices in id order. */
    if (f->va < f->vb)
        snprintf(want, sizeof want, "v%u:a/1 v%u:b/0 ", f->va, f->vb);
    else
        snprintf(want, sizeof want, "v%u:b/0 v%u:a/1 ", f->vb, f->va);
    assert_string_equal(fin, want);
    assert_int_equal(f->co.aborted, 0);
}

static void test_no_trigger_without_sources(void **state) {
    fx_t *f = *state;
    sl_coordinator_task_finished(&f->co, f->va, 0, 0);
    sl_coordinator_task_finished(&f->co, f->vb, 0, 0);
    trigger(f, 1); /* a/1 still runs */
    ack_all_but(f, 1, f->va, 0, f->vb, 0);
    assert_int_equal(f->co.latest, 1);
    sl_coordinator_task_finished(&f->co, f->va, 1, 1);
    /* Every source finished: nothing can inject a barrier; the sinks only drain. */
    tick(f);
    tick(f);
    assert_int_equal(f->log.triggers, 1);
    assert_int_equal(f->co.npending, 0);
    char err[256];
    assert_int_equal(sl_coordinator_request_savepoint(&f->co, f->dir, false, on_savepoint, &f->log, err, sizeof err),
                     SL_EINVAL);
    assert_non_null(strstr(err, "every source subtask of the job finished"));
    /* Everything finished: still none. */
    for (uint32_t i = 0; i < 2; i++) {
        sl_coordinator_task_finished(&f->co, f->vu, i, 1);
        sl_coordinator_task_finished(&f->co, f->vout, i, 1);
    }
    tick(f);
    assert_int_equal(f->log.triggers, 1);
    /* A new attempt runs every task again. */
    sl_coordinator_set_gateway(&f->co, &(sl_coordinator_gateway_t){gw_trigger, gw_notify, &f->log, 7});
    trigger(f, 2);
}

/* The sources end before injecting checkpoint 2 and the job drains: every subtask finishes
 * after checkpoint 1. Checkpoint 2 holds nothing: it is aborted and 1 stays the latest. */
static void test_all_finished_aborts(void **state) {
    fx_t *f = *state;
    trigger(f, 1);
    ack_all_but(f, 1, NONE, 0, NONE, 0);
    trigger(f, 2);
    const sl_job_graph_t *g = &f->job->graph;
    for (uint32_t v = 0; v < g->nvertices; v++)
        for (uint32_t i = 0; i < g->vertices[v].parallelism; i++) {
            assert_int_equal(f->co.aborted, 0);
            sl_coordinator_task_finished(&f->co, v, i, 1);
        }
    assert_int_equal(f->co.aborted, 1);
    assert_int_equal(f->co.latest, 1);
    assert_non_null(strstr(f->co.last_abort_reason, "every subtask finished before it reached them"));
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/chk-2", f->co.storage.job_dir);
    assert_int_not_equal(stat(path, &st), 0); /* its directory is gone */
}

static void test_savepoint_after_finish(void **state) {
    fx_t *f = *state;
    char err[256], fin[256], want[256];
    sl_coordinator_task_finished(&f->co, f->vb, 0, 0);
    sl_coordinator_task_finished(&f->co, f->vout, 0, 0); /* a sink too */
    assert_int_equal(sl_coordinator_request_savepoint(&f->co, f->dir, true, on_savepoint, &f->log, err, sizeof err),
                     0);
    tick(f);
    assert_int_equal(f->log.triggers, 1);
    assert_true(f->log.last_barrier & SL_CKPT_SAVEPOINT_BIT);
    ack_all_but(f, 1, f->vb, 0, f->vout, 0);
    assert_int_equal(f->log.sp_calls, 1);
    if (f->log.sp_status != 0)
        fail_msg("savepoint: %s", f->log.sp_path);
    assert_int_equal(f->log.last_notice, 1);
    char expect[4096];
    snprintf(expect, sizeof expect, "%s/savepoint-co-job-1", f->dir);
    assert_string_equal(f->log.sp_path, expect);
    assert_int_equal(finished_in(f, expect, 1, fin, sizeof fin), 2);
    if (f->vb < f->vout)
        snprintf(want, sizeof want, "v%u:b/0 v%u:out/0 ", f->vb, f->vout);
    else
        snprintf(want, sizeof want, "v%u:out/0 v%u:b/0 ", f->vout, f->vb);
    assert_string_equal(fin, want);
}

/* ---- Concurrent checkpoints (max-concurrent-checkpoints 3, coordinator.c DESIGN) ---- */

static void no_trigger(fx_t *f) {
    uint32_t before = f->log.triggers;
    tick(f);
    assert_int_equal(f->log.triggers, before);
}

/* A shared file `name` in the job's shared/ directory, as an upload leaves it. */
static void put_shared(fx_t *f, const char *name) {
    char path[4096];
    assert_int_equal(sl_ckpt_shared_path(&f->co.storage, name, path, sizeof path), 0);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("sst", fp);
    fclose(fp);
}

static bool shared_exists(fx_t *f, const char *name) {
    char path[4096];
    struct stat st;
    assert_int_equal(sl_ckpt_shared_path(&f->co.storage, name, path, sizeof path), 0);
    return stat(path, &st) == 0;
}

static bool chk_exists(fx_t *f, uint64_t id) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/chk-%llu", f->co.storage.job_dir, (unsigned long long)id);
    return stat(path, &st) == 0;
}

/* Subtask a/`subtask` acknowledges `id` naming shared file `name`. */
static void ack_shared_by(fx_t *f, uint32_t subtask, uint64_t id, const char *name) {
    sl_task_ack_t *a = sl_calloc(1, sizeof *a);
    a->checkpoint_id = id;
    a->vertex = f->va;
    a->subtask = subtask;
    a->handles = sl_calloc(1, sizeof *a->handles);
    a->nhandles = 1;
    a->handles[0].shared = true;
    snprintf(a->handles[0].name, sizeof a->handles[0].name, "%s", name);
    a->handles[0].size = 3;
    sl_coordinator_ack(&f->co, a);
}

static void ack_shared(fx_t *f, uint64_t id, const char *name) { ack_shared_by(f, 0, id, name); }

static void test_concurrent_subsume(void **state) {
    fx_t *f = *state;
    trigger(f, 1);
    trigger(f, 2);
    trigger(f, 3);
    no_trigger(f); /* three pending: the most */
    assert_int_equal(f->co.npending, 3);
    /* a/0 uploads a file for each; a/1 uploads one for 1 that its snapshot of 3 references. */
    put_shared(f, "only1");
    put_shared(f, "only2");
    put_shared(f, "both13");
    ack_shared(f, 1, "only1");
    ack_shared_by(f, 1, 1, "both13");
    ack_shared_by(f, 1, 3, "both13");
    ack_shared(f, 2, "only2");
    /* Acknowledgements of the three in mixed order; b/0 holds up 1. */
    ack(f, f->vout, 1, 3);
    ack(f, f->vout, 1, 1);
    ack(f, f->vout, 1, 2);
    ack_all_but(f, 1, f->va, 0, f->vb, 0);
    assert_int_equal(f->co.latest, 0);
    ack_all_but(f, 2, f->va, 0, f->vout, 1);
    assert_int_equal(f->co.latest, 2); /* 2 first: every subtask acknowledged it */
    assert_int_equal(f->log.last_notice, 2);
    assert_int_equal(f->log.notices, 1);
    /* 1 was subsumed: aborted, its directory and its own upload gone; 3 keeps its file. */
    assert_int_equal(f->co.aborted, 1);
    assert_non_null(strstr(f->co.last_abort_reason, "subsumed by checkpoint 2"));
    assert_null(sl_coordinator_pending(&f->co, 1));
    assert_false(chk_exists(f, 1));
    assert_false(shared_exists(f, "only1"));
    assert_true(shared_exists(f, "only2"));
    assert_true(shared_exists(f, "both13"));
    /* b/0's late acknowledgement of 1 is dropped. */
    ack(f, f->vb, 0, 1);
    assert_int_equal(f->co.latest, 2);
    assert_int_equal(f->co.aborted, 1);
    assert_int_equal(f->co.npending, 1);
    /* A slot is free again: 4 starts while 3 is pending. */
    trigger(f, 4);
    ack_all_but(f, 3, NONE, 0, NONE, 0);
    assert_int_equal(f->co.latest, 3);
    assert_int_equal(f->co.completed, 2);
    assert_true(shared_exists(f, "both13"));
    assert_non_null(sl_coordinator_pending(&f->co, 4));
    /* A task failure aborts every pending one, with the reason. */
    trigger(f, 5);
    sl_coordinator_stop(&f->co, "a task failed");
    assert_int_equal(f->co.npending, 0);
    assert_int_equal(f->co.aborted, 3);
    assert_non_null(strstr(f->co.last_abort_reason, "a task failed"));
    no_trigger(f);
}

static void test_concurrent_timeouts(void **state) {
    fx_t *f = *state; /* timeout 2.5 s, a tick is 1 s */
    trigger(f, 1);
    trigger(f, 2);
    trigger(f, 3);
    put_shared(f, "up1");
    put_shared(f, "up1b");
    ack_shared(f, 1, "up1");
    ack_shared_by(f, 1, 1, "up1b");
    assert_int_equal(f->co.aborted, 0);
    trigger(f, 4); /* 1 timed out, alone: a slot for 4 */
    assert_int_equal(f->co.aborted, 1);
    assert_null(sl_coordinator_pending(&f->co, 1));
    assert_non_null(sl_coordinator_pending(&f->co, 2));
    assert_non_null(strstr(f->co.last_abort_reason, "checkpoint 1: timed out"));
    assert_false(chk_exists(f, 1));
    /* Its uploads stay until a later checkpoint completed: a/0's snapshot of 2 may still name
     * up1 (it did not hear of the abort), and does. */
    assert_true(shared_exists(f, "up1"));
    assert_true(shared_exists(f, "up1b"));
    ack_shared(f, 2, "up1");
    /* 2 completes in time; 3, later, stays pending. */
    ack_all_but(f, 2, NONE, 0, NONE, 0);
    assert_int_equal(f->co.latest, 2);
    assert_true(shared_exists(f, "up1"));   /* 2 references it */
    assert_false(shared_exists(f, "up1b")); /* nothing does */
    assert_non_null(sl_coordinator_pending(&f->co, 3));
    trigger(f, 5); /* 3 still in time */
    assert_int_equal(f->co.aborted, 1);
    trigger(f, 6); /* 3 timed out */
    assert_int_equal(f->co.aborted, 2);
    assert_null(sl_coordinator_pending(&f->co, 3));
    assert_non_null(sl_coordinator_pending(&f->co, 4));
    ack_all_but(f, 3, NONE, 0, NONE, 0); /* late: dropped */
    assert_int_equal(f->co.latest, 2);
}

static void test_concurrent_min_pause(void **state) {
    fx_t *f = *state; /* min-pause 500 ms: one at a time although 3 are allowed */
    assert_int_equal(f->co.max_concurrent, 1);
    trigger(f, 1);
    no_trigger(f);
    no_trigger(f);
    ack_all_but(f, 1, NONE, 0, NONE, 0);
    trigger(f, 2);
    no_trigger(f);
    assert_int_equal(f->co.npending, 1);
}

static void test_concurrent_finished(void **state) {
    fx_t *f = *state;
    char fin[256], want[256];
    trigger(f, 1);
    trigger(f, 2);
    trigger(f, 3);
    /* b/0 snapshotted 1 and finished: 1 awaits its acknowledgement, 2 and 3 complete without
     * it. u/1 finished after snapshotting 2: 2 awaits it, 3 does not. */
    sl_coordinator_task_finished(&f->co, f->vb, 0, 1);
    sl_coordinator_task_finished(&f->co, f->vu, 1, 2);
    ack_all_but(f, 1, f->vb, 0, NONE, 0);
    ack_all_but(f, 2, f->vb, 0, f->vu, 1);
    assert_int_equal(f->co.latest, 0);
    ack(f, f->vb, 0, 1); /* 1 complete */
    assert_int_equal(f->co.latest, 1);
    ack(f, f->vu, 1, 2); /* 2 complete */
    assert_int_equal(f->co.latest, 2);
    ack_all_but(f, 3, f->vb, 0, f->vu, 1);
    assert_int_equal(f->co.latest, 3);
    assert_int_equal(f->co.completed, 3);
    assert_int_equal(f->co.aborted, 0);
    assert_int_equal(finished_in(f, f->co.storage.job_dir, 2, fin, sizeof fin), 1);
    snprintf(want, sizeof want, "v%u:b/0 ", f->vb);
    assert_string_equal(fin, want);
    assert_int_equal(finished_in(f, f->co.storage.job_dir, 3, fin, sizeof fin), 2);
}

/* A savepoint waits for the pending checkpoints, and none starts while it is taken. */
static void test_concurrent_savepoint(void **state) {
    fx_t *f = *state;
    char err[256];
    trigger(f, 1);
    trigger(f, 2);
    assert_int_equal(sl_coordinator_request_savepoint(&f->co, f->dir, false, on_savepoint, &f->log, err, sizeof err),
                     0);
    no_trigger(f);
    ack_all_but(f, 2, NONE, 0, NONE, 0); /* 1 subsumed */
    assert_int_equal(f->co.npending, 0);
    trigger(f, 3);
    assert_true(f->log.last_barrier & SL_CKPT_SAVEPOINT_BIT);
    no_trigger(f);
    ack_all_but(f, 3, NONE, 0, NONE, 0);
    assert_int_equal(f->log.sp_calls, 1);
    if (f->log.sp_status != 0)
        fail_msg("savepoint: %s", f->log.sp_path);
    trigger(f, 4);
    trigger(f, 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ack_then_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_then_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_before_trigger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_after_trigger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_trigger_without_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_finished_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_after_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_subsume, setup3, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_timeouts, setup3_timeout, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_min_pause, setup3_pause, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_finished, setup3, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_savepoint, setup3, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
