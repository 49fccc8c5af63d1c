/* Incremental RocksDB snapshots with several checkpoints pending (task_incremental.c DESIGN):
 * two pending checkpoints that hold the same new SST files never share an upload, so aborting
 * the first (as the coordinator does, deleting every shared file it uploaded) leaves the
 * second complete and restorable; the completion notice of the second makes it the base, whose
 * files the next snapshot only references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/job.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "checkpoint/storage.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/mailbox.h"
#include "core/murmur.h"
#include "core/key_group.h"
#include "state/keyed_state.h"
#include "state/rocksdb_backend.h"
#include "minicluster/coordinator.h"
#include "taskexecutor/task.h"
#include "taskexecutor/task_checkpoint.h"
#include "taskexecutor/task_incremental.h"

#define MAXP 128

int inc_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int inc_gen(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    sl_row_set_i64(out, 0, (int64_t)seq);
    return 1;
}

/* A job of one vertex at parallelism 2 under a real coordinator (max-concurrent 3): subtask 0
 * is the RocksDB subtask under test, every other subtask's acknowledgement is made up. */
typedef struct {
    char dir[64];
    sl_job_t *job;
    sl_config_t *cfg;
    sl_coordinator_t co;
    int64_t now;
    uint32_t v0;
    sl_keyed_backend_t *b;
    uint32_t value;
    sl_task_t t;
    pthread_mutex_t mu;
    sl_task_ack_t *acks[8]; /* subtask 0's, by checkpoint id */
} fx_t;

static int gw_trigger(void *arg, uint64_t barrier_id) { return 0; }
static void gw_notify(void *arg, uint64_t id, bool stop) {}

static void on_ack(void *arg, sl_task_ack_t *ack) {
    fx_t *f = arg;
    pthread_mutex_lock(&f->mu);
    assert_true(ack->checkpoint_id < 8);
    f->acks[ack->checkpoint_id] = ack;
    pthread_mutex_unlock(&f->mu);
}

static void set_key(sl_keyed_backend_t *b, const char *key) {
    uint32_t len = (uint32_t)strlen(key);
    sl_keyed_backend_set_key(b, key, len, sl_key_group_of(sl_murmur3_32(key, len, 0), MAXP));
}

/* Keys "k<from>".."k<to - 1>" with value "v<i>"; the snapshot's flush makes them an SST file. */
static void put_keys(fx_t *f, int from, int to) {
    for (int i = from; i < to; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        set_key(f->b, k);
        assert_int_equal(sl_state_value_put(f->b, f->value, NULL, 0, v, (uint32_t)strlen(v)), 0);
    }
}

/* Subtask 0 snapshots checkpoint `id` (the barrier reached it) and waits for its upload. */
static sl_task_ack_t *snapshot(fx_t *f, uint64_t id) {
    sl_task_ack_t *ack = sl_calloc(1, sizeof *ack);
    ack->checkpoint_id = id;
    ack->vertex = f->v0;
    ack->subtask = 0;
    assert_int_equal(sl_task_incremental_snapshot(&f->t, id, ack), 1);
    sl_task_incremental_wait(&f->t);
    assert_non_null(f->acks[id]);
    assert_int_equal(f->acks[id]->status, 0);
    return f->acks[id];
}

/* A copy of subtask 0's ack of `id` reaches the coordinator. */
static void give(fx_t *f, uint64_t id) {
    const sl_task_ack_t *a = f->acks[id];
    sl_task_ack_t *c = sl_calloc(1, sizeof *c);
    *c = *a;
    c->extras = NULL;
    c->nops = 0;
    c->handles = sl_calloc(a->nhandles ? a->nhandles : 1, sizeof *c->handles);
    memcpy(c->handles, a->handles, a->nhandles * sizeof *c->handles);
    sl_coordinator_ack(&f->co, c);
}

/* Every other subtask acknowledges `id` (or declines it with `status`), without files. */
static void other_acks(fx_t *f, uint64_t id, int status) {
    const sl_job_graph_t *g = &f->job->graph;
    for (uint32_t v = 0; v < g->nvertices; v++)
        for (uint32_t i = 0; i < g->vertices[v].parallelism; i++) {
            if (v == f->v0 && i == 0)
                continue;
            sl_task_ack_t *a = sl_calloc(1, sizeof *a);
            a->checkpoint_id = id;
            a->vertex = v;
            a->subtask = i;
            a->status = status;
            if (status)
                snprintf(a->error, sizeof a->error, "made up");
            sl_coordinator_ack(&f->co, a);
        }
}

static void tick(fx_t *f) {
    f->now += 1000;
    sl_coordinator_tick(&f->co, f->now);
}

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    char err[512], path[128];
    assert_int_equal(sl_job_create("inc", &f->job), 0);
    sl_stream_t *a = sl_stream_parallelism(sl_source_generator(f->job, "a", "inc_gen", "x:int64", 10), 2);
    assert_non_null(sl_stream_parallelism(sl_sink_discard(a, "out"), 2));
    assert_null(sl_job_error(f->job));
    assert_int_equal(sl_job_graph_finalize(&f->job->graph, 2, true, err, sizeof err), 0);
    f->v0 = 0;
    snprintf(f->dir, sizeof f->dir, "/tmp/sl-inc-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(sl_config_create(&f->cfg), 0);
    assert_int_equal(sl_config_set(f->cfg, "execution.checkpointing.interval", "10ms", err, sizeof err), 0);
    assert_int_equal(sl_config_set(f->cfg, "execution.checkpointing.timeout", "5s", err, sizeof err), 0);
    assert_int_equal(sl_config_set(f->cfg, "execution.checkpointing.max-concurrent-checkpoints", "3", err,
                                   sizeof err), 0);
    assert_int_equal(sl_config_set(f->cfg, "state.checkpoints.dir", f->dir, err, sizeof err), 0);
    assert_int_equal(sl_config_set(f->cfg, "state.checkpoints.num-retained", "1", err, sizeof err), 0);
    if (sl_coordinator_init(&f->co, f->cfg, &f->job->graph, "inc-job", 1, false, err, sizeof err) != 0)
        fail_msg("init: %s", err);
    sl_coordinator_set_gateway(&f->co, &(sl_coordinator_gateway_t){gw_trigger, gw_notify, f, 4});
    f->now = sl_monotonic_ms();
    snprintf(path, sizeof path, "%s/local/0-0-0", f->dir);
    if (sl_rocksdb_backend_create(path, NULL, NULL, MAXP, 0, MAXP - 1, &f->b, err, sizeof err) != 0)
        fail_msg("rocksdb: %s", err);
    assert_int_equal(sl_state_register(f->b, "v", SL_STATE_VALUE, &f->value), 0);
    pthread_mutex_init(&f->mu, NULL);
    f->t.state = f->b;
    f->t.storage = &f->co.storage;
    f->t.on_ack = on_ack;
    f->t.on_ack_arg = f;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    sl_task_incremental_free(&f->t);
    for (int i = 0; i < 8; i++)
        sl_task_ack_free(f->acks[i]);
    sl_keyed_backend_destroy(f->b);
    sl_coordinator_set_gateway(&f->co, NULL);
    sl_coordinator_destroy(&f->co);
    sl_config_destroy(f->cfg);
    sl_job_destroy(f->job);
    pthread_mutex_destroy(&f->mu);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const char *local_name(const char *shared) {
    const char *p = strstr(shared, ".db.");
    assert_non_null(p);
    return p + 4;
}

static bool shared_exists(fx_t *f, const char *name) {
    char path[4096];
    struct stat st;
    assert_int_equal(sl_ckpt_shared_path(&f->co.storage, name, path, sizeof path), 0);
    return stat(path, &st) == 0;
}

/* Every shared file `ack` names exists. */
static void all_exist(fx_t *f, const sl_task_ack_t *ack) {
    for (uint32_t i = 0; i < ack->nhandles; i++)
        if (ack->handles[i].shared && !shared_exists(f, ack->handles[i].name))
            fail_msg("shared file %s of checkpoint %llu is gone", ack->handles[i].name,
                     (unsigned long long)ack->checkpoint_id);
}

/* Once no task runs, shared/ holds only files a retained checkpoint references. */
static void shared_is_retained(fx_t *f) {
    sl_coordinator_collect_garbage(&f->co);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/shared", f->co.storage.job_dir);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && !sl_shared_registry_is_referenced(&f->co.registry, e->d_name))
            fail_msg("shared/%s is referenced by no retained checkpoint", e->d_name);
    closedir(d);
}

/* The shared name `ack` gives local SST `sst`, or NULL. */
static const char *shared_of(const sl_task_ack_t *ack, const char *sst) {
    for (uint32_t i = 0; i < ack->nhandles; i++)
        if (ack->handles[i].shared && strcmp(local_name(ack->handles[i].name), sst) == 0)
            return ack->handles[i].name;
    return NULL;
}

/* Rebuilds the database of `ack` from storage, as a restore does, and reads every key. */
static void check_restore(fx_t *f, const sl_task_ack_t *ack, int nkeys) {
    char dir[256], src[4096], dst[4096], err[512], path[128];
    snprintf(dir, sizeof dir, "%s/restore", f->dir);
    assert_int_equal(mkdir(dir, 0777), 0);
    for (uint32_t i = 0; i < ack->nhandles; i++) {
        const sl_task_handle_t *h = &ack->handles[i];
        if (h->shared)
            assert_int_equal(sl_ckpt_shared_path(&f->co.storage, h->name, src, sizeof src), 0);
        else
            assert_int_equal(sl_ckpt_file_path(&f->co.storage, ack->checkpoint_id, h->name, src, sizeof src), 0);
        snprintf(dst, sizeof dst, "%s/%s", dir, local_name(h->name));
        if (link(src, dst) != 0)
            fail_msg("%s is missing", src);
    }
    sl_keyed_backend_t *into;
    snprintf(path, sizeof path, "%s/local/9-0-0", f->dir);
    if (sl_rocksdb_backend_create(path, NULL, NULL, MAXP, 0, MAXP - 1, &into, err, sizeof err) != 0)
        fail_msg("rocksdb: %s", err);
    uint32_t value;
    assert_int_equal(sl_state_register(into, "v", SL_STATE_VALUE, &value), 0);
    if (sl_rocksdb_backend_import(into, dir, err, sizeof err) != 0)
        fail_msg("import: %s", err);
    for (int i = 0; i < nkeys; i++) {
        char k[32], v[32];
        const void *p;
        uint32_t len;
        snprintf(k, sizeof k, "k%d", i);
        snprintf(v, sizeof v, "v%d", i);
        set_key(into, k);
        assert_int_equal(sl_state_value_get(into, value, NULL, 0, &p, &len), 1);
        assert_int_equal(len, strlen(v));
        assert_memory_equal(p, v, len);
    }
    sl_keyed_backend_destroy(into);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static uint32_t count_shared(const sl_task_ack_t *ack) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < ack->nhandles; i++)
        n += ack->handles[i].shared;
    return n;
}

/* Checkpoints 1 and 2 pending; the SST of 1 is in both; 1 is aborted (declined by the other
 * subtask, so its files are known to the coordinator): 2 still has every file, completes and
 * restores; its completion makes it the base of 3. */
static void test_two_pending_abort_first(void **state) {
    fx_t *f = *state;
    tick(f);
    tick(f);
    assert_int_equal(f->co.npending, 2);
    put_keys(f, 0, 100);
    sl_task_ack_t *a1 = snapshot(f, 1);
    put_keys(f, 100, 200);
    sl_task_ack_t *a2 = snapshot(f, 2); /* before 1 is known complete: both pending */
    assert_true(count_shared(a1) >= 1);
    assert_true(count_shared(a2) >= 2);
    /* The SST of 1 keeps its name in 2 (uploaded once); 2's new one has 2's name. */
    uint32_t from1 = 0;
    for (uint32_t i = 0; i < a2->nhandles; i++) {
        if (!a2->handles[i].shared)
            continue;
        const char *in1 = shared_of(a1, local_name(a2->handles[i].name));
        if (in1) {
            assert_string_equal(in1, a2->handles[i].name);
            assert_non_null(strstr(in1, ".c1.db."));
            from1++;
        } else {
            assert_non_null(strstr(a2->handles[i].name, ".c2.db."));
        }
    }
    assert_true(from1 >= 1);
    give(f, 1);
    other_acks(f, 1, SL_EIO); /* 1 declined: aborted */
    assert_int_equal(f->co.aborted, 1);
    assert_null(sl_coordinator_pending(&f->co, 1));
    all_exist(f, a2);
    give(f, 2);
    other_acks(f, 2, 0);
    assert_int_equal(f->co.latest, 2);
    all_exist(f, a2);
    check_restore(f, a2, 200);
    /* 2's notice: 3 uploads only its new SST and references the rest under the same names. */
    sl_task_incremental_complete(&f->t, 2);
    tick(f);
    put_keys(f, 200, 300);
    sl_task_ack_t *a3 = snapshot(f, 3);
    uint32_t referenced = 0, uploaded = 0;
    for (uint32_t i = 0; i < a3->nhandles; i++) {
        if (!a3->handles[i].shared)
            continue;
        const char *name = a3->handles[i].name;
        const char *in2 = shared_of(a2, local_name(name));
        if (in2) {
            assert_string_equal(in2, name);
            referenced++;
        } else {
            assert_non_null(strstr(name, ".c3.db."));
            uploaded++;
        }
    }
    assert_int_equal(referenced, count_shared(a2));
    assert_true(uploaded >= 1);
    a3->bytes_uploaded = 0;
    give(f, 3);
    other_acks(f, 3, 0);
    assert_int_equal(f->co.latest, 3);
    all_exist(f, a3);
    check_restore(f, a3, 300);
    shared_is_retained(f);
}

/* Checkpoint 2 completes while 1 waits for the other subtask: 1 is subsumed; the files it
 * uploaded that 2 references stay. A late notice of 1 changes nothing. */
static void test_subsumed_first(void **state) {
    fx_t *f = *state;
    tick(f);
    tick(f);
    put_keys(f, 0, 100);
    sl_task_ack_t *a1 = snapshot(f, 1);
    put_keys(f, 100, 200);
    sl_task_ack_t *a2 = snapshot(f, 2);
    (void)a1;
    give(f, 1);
    give(f, 2);
    other_acks(f, 2, 0);
    assert_int_equal(f->co.latest, 2);
    assert_int_equal(f->co.aborted, 1);
    assert_non_null(strstr(f->co.last_abort_reason, "subsumed"));
    all_exist(f, a2);
    check_restore(f, a2, 200);
    sl_task_incremental_complete(&f->t, 2);
    sl_task_incremental_complete(&f->t, 1); /* late */
    tick(f);
    put_keys(f, 200, 210);
    sl_task_ack_t *a3 = snapshot(f, 3);
    for (uint32_t i = 0; i < a3->nhandles; i++) {
        const char *name = a3->handles[i].name;
        if (a3->handles[i].shared && shared_of(a2, local_name(name)) == NULL)
            assert_non_null(strstr(name, ".c3.db."));
    }
    give(f, 3);
    other_acks(f, 3, 0);
    assert_int_equal(f->co.latest, 3);
    check_restore(f, a3, 210);
    shared_is_retained(f);
}

/* 1 and 2 time out; 3 goes on referencing their uploads (the subtask does not hear of
 * aborts): they must survive until a checkpoint referencing them completed. */
static void test_timed_out_first(void **state) {
    fx_t *f = *state;
    tick(f);
    put_keys(f, 0, 100);
    snapshot(f, 1);
    tick(f);
    put_keys(f, 100, 200);
    sl_task_ack_t *a2 = snapshot(f, 2);
    give(f, 1); /* the coordinator knows 1's uploads; the other subtask is slow */
    f->now += 10000; /* past the timeout of both */
    sl_coordinator_tick(&f->co, f->now);
    assert_int_equal(f->co.aborted, 2);
    give(f, 2); /* late: dropped */
    tick(f);
    put_keys(f, 200, 300);
    sl_task_ack_t *a3 = snapshot(f, 3);
    for (uint32_t i = 0; i < a2->nhandles; i++)
        if (a2->handles[i].shared)
            assert_string_equal(shared_of(a3, local_name(a2->handles[i].name)), a2->handles[i].name);
    give(f, 3);
    other_acks(f, 3, 0);
    assert_int_equal(f->co.latest, 3);
    all_exist(f, a3);
    check_restore(f, a3, 300);
    shared_is_retained(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_pending_abort_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subsumed_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timed_out_first, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
