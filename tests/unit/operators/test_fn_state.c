/* Keyed user state of a process function beyond value and list (operators/fn_state.c): map,
 * reducing and aggregating state, on the heap and RocksDB backends, with and without state TTL,
 * the errors of bad use, and map and reducing state through a snapshot and a restore into the
 * other backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/function.h>
#include <sluice/job.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "helpers/op_harness.h"
#include "state/rocksdb_backend.h"
#include "state/snapshot.h"

/* Found by dlsym in this executable (ENABLE_EXPORTS). */
int fs_fn(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int fs_sum(sl_fn_ctx_t *ctx, void *acc, const void *in, uint32_t len);
int fs_minmax(sl_fn_ctx_t *ctx, void *acc, const void *in, uint32_t len);
extern const sl_aggregate_t fs_spread;

#define IN_SCHEMA "k:string,op:string,a:string,n:int64"
#define OUT_SCHEMA "k:string,out:string,x:int64"
#define DECLS "fn=fs_fn;state.reducing.sum=fs_sum;state.reducing.mm=fs_minmax;state.aggregating.spread=fs_spread"

/* ---- User functions ---- */

/* Sum of int64 values; a value of 666 fails with a message. */
int fs_sum(sl_fn_ctx_t *ctx, void *acc, const void *in, uint32_t len) {
    int64_t v;
    if (len != 8)
        return sl_fn_fail(ctx, SL_EINVAL, "fs_sum: %u bytes", len);
    memcpy(&v, in, 8);
    if (v == 666)
        return sl_fn_fail(ctx, SL_EUSER, "fs_sum refuses 666");
    *(int64_t *)acc += v; /* acc is aligned */
    return 0;
}

typedef struct {
    int64_t min, max;
} minmax_t;

int fs_minmax(sl_fn_ctx_t *ctx, void *acc, const void *in, uint32_t len) {
    minmax_t *a = acc, b;
    memcpy(&b, in, sizeof b);
    if (b.min < a->min)
        a->min = b.min;
    if (b.max > a->max)
        a->max = b.max;
    return 0;
}

/* Spread of field n, times 100, plus the count: checks init runs once per empty state. */
typedef struct {
    int64_t n, min, max;
} spread_t;

static void spread_init(void *acc) {
    spread_t *a = acc;
    a->n = 0;
    a->min = INT64_MAX;
    a->max = INT64_MIN;
}

static void spread_add(void *acc, const sl_row_t *in) {
    spread_t *a = acc;
    int64_t v = sl_row_i64(in, 3);
    a->n++;
    a->min = v < a->min ? v : a->min;
    a->max = v > a->max ? v : a->max;
}

static void spread_result(const void *acc, sl_row_builder_t *out, uint32_t field) {
    const spread_t *a = acc;
    sl_row_set_i64(out, field, (a->max - a->min) * 100 + a->n);
}

const sl_aggregate_t fs_spread = {sizeof(spread_t), spread_init, spread_add, NULL, spread_result, SL_TYPE_INT64};

typedef struct {
    char items[32][64];
    uint32_t n;
} entries_t;

static int collect(void *arg, const void *uk, uint32_t uklen, const void *val, uint32_t len) {
    entries_t *e = arg;
    if (e->n == 32)
        return SL_ERANGE;
    int64_t v;
    if (len == 8) {
        memcpy(&v, val, 8);
        snprintf(e->items[e->n++], 64, "%.*s=%lld", (int)uklen, (const char *)uk, (long long)v);
    } else { /* a raw entry, seen when a test turns the TTL off */
        snprintf(e->items[e->n++], 64, "%.*s#%u", (int)uklen, (const char *)uk, len);
    }
    return 0;
}

static int cmp_item(const void *a, const void *b) { return strcmp(a, b); }

static int count_list(void *arg, const void *val, uint32_t len) {
    (*(int *)arg)++;
    return 0;
}

static int emit(sl_collector_t *out, const char *k, uint32_t klen, const char *text, int64_t x) {
    sl_row_builder_t *b = sl_collector_row(out);
    sl_row_set_str(b, 0, k, klen);
    sl_row_set_cstr(b, 1, text);
    sl_row_set_i64(b, 2, x);
    return sl_collector_emit(out);
}

/* Rows (k, op, a, n): op says what to do with the state of key k; reads emit (k, text, x). */
int fs_fn(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    uint32_t klen, oplen, alen;
    const char *k = sl_row_str(in, 0, &klen), *opp = sl_row_str(in, 1, &oplen), *ap = sl_row_str(in, 2, &alen);
    char op[32], a[64], text[1024];
    snprintf(op, sizeof op, "%.*s", (int)oplen, opp);
    snprintf(a, sizeof a, "%.*s", (int)alen, ap);
    int64_t n = sl_row_i64(in, 3);
    const void *p;
    uint32_t len;
    int rc;
    if (strcmp(op, "mput") == 0)
        return sl_fn_map_put(ctx, "m", a, alen, &n, 8);
    if (strcmp(op, "mrm") == 0)
        return sl_fn_map_remove(ctx, "m", a, alen);
    if (strcmp(op, "mclear") == 0)
        return sl_fn_map_clear(ctx, "m");
    if (strcmp(op, "mget") == 0) {
        if ((rc = sl_fn_map_get(ctx, "m", a, alen, &p, &len)) < 0)
            return rc;
        int64_t v = 0;
        if (rc == 1 && len == 8)
            memcpy(&v, p, 8);
        snprintf(text, sizeof text, rc ? "%s=%lld/%u" : "%s absent", a, (long long)v, len);
        return emit(out, k, klen, text, 0);
    }
    if (strcmp(op, "mvisit") == 0) {
        entries_t e = {.n = 0};
        if ((rc = sl_fn_map_visit(ctx, "m", collect, &e)) != 0)
            return rc;
        qsort(e.items, e.n, sizeof e.items[0], cmp_item);
        size_t off = (size_t)snprintf(text, sizeof text, "{");
        for (uint32_t i = 0; i < e.n; i++)
            off += (size_t)snprintf(text + off, sizeof text - off, "%s%s", i ? ";" : "", e.items[i]);
        snprintf(text + off, sizeof text - off, "}");
        return emit(out, k, klen, text, 0);
    }
    if (strcmp(op, "radd") == 0)
        return sl_fn_reducing_add(ctx, "sum", &n, 8);
    if (strcmp(op, "radd4") == 0) {
        int32_t v = (int32_t)n;
        return sl_fn_reducing_add(ctx, "sum", &v, 4);
    }
    if (strcmp(op, "rclear") == 0)
        return sl_fn_reducing_clear(ctx, "sum");
    if (strcmp(op, "rget") == 0) {
        if ((rc = sl_fn_reducing_get(ctx, "sum", &p, &len)) < 0)
            return rc;
        int64_t v = 0;
        if (rc == 1) {
            if (len != 8)
                return sl_fn_fail(ctx, SL_EINVAL, "sum of %u bytes", len);
            memcpy(&v, p, 8);
        }
        return emit(out, k, klen, rc ? "sum" : "sum absent", v);
    }
    if (strcmp(op, "mmadd") == 0) {
        minmax_t m = {n, n};
        return sl_fn_reducing_add(ctx, "mm", &m, sizeof m);
    }
    if (strcmp(op, "mmget") == 0) {
        if ((rc = sl_fn_reducing_get(ctx, "mm", &p, &len)) <= 0)
            return rc ? rc : emit(out, k, klen, "mm absent", 0);
        minmax_t m;
        memcpy(&m, p, sizeof m);
        snprintf(text, sizeof text, "mm %lld..%lld", (long long)m.min, (long long)m.max);
        return emit(out, k, klen, text, 0);
    }
    if (strcmp(op, "aadd") == 0)
        return sl_fn_aggregating_add(ctx, "spread", in);
    if (strcmp(op, "aclear") == 0)
        return sl_fn_aggregating_clear(ctx, "spread");
    if (strcmp(op, "aget") == 0) {
        sl_row_builder_t *b = sl_collector_row(out);
        sl_row_set_str(b, 0, k, klen);
        sl_row_set_i64(b, 2, -1);
        if ((rc = sl_fn_aggregating_get(ctx, "spread", b, 2)) < 0)
            return rc;
        sl_row_set_cstr(b, 1, rc ? "spread" : "spread absent");
        return sl_collector_emit(out);
    }
    /* Uses of the state named by field a, for the error tests. */
    if (strcmp(op, "vput") == 0)
        return sl_fn_value_put(ctx, a, &n, 8);
    if (strcmp(op, "vget") == 0)
        return sl_fn_value_get(ctx, a, &p, &len);
    if (strcmp(op, "lvisit") == 0) {
        int c = 0;
        return sl_fn_list_visit(ctx, a, count_list, &c);
    }
    if (strcmp(op, "mgetn") == 0)
        return sl_fn_map_get(ctx, a, "u", 1, &p, &len);
    if (strcmp(op, "raddn") == 0)
        return sl_fn_reducing_add(ctx, a, &n, 8);
    if (strcmp(op, "aaddn") == 0)
        return sl_fn_aggregating_add(ctx, a, in);
    return sl_fn_fail(ctx, SL_EINVAL, "unknown op '%s'", op);
}

/* ---- Harness ---- */

typedef enum { HEAP, ROCKSDB } backend_t;
static const backend_t heap = HEAP, rocksdb = ROCKSDB;

typedef struct {
    sl_harness_t h;
    char dir[64]; /* RocksDB: the instance's parent directory */
} fixture_t;

/* Replaces the harness's heap backend with a RocksDB one (before any state is used). */
static void use_rocksdb(fixture_t *f) {
    char path[96], err[256];
    snprintf(f->dir, sizeof f->dir, "/tmp/sl-fn-state-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof path, "%s/db", f->dir);
    sl_keyed_backend_t *b;
    if (sl_rocksdb_backend_create(path, NULL, NULL, 128, 0, 127, &b, err, sizeof err) != 0)
        fail_msg("rocksdb: %s", err);
    sl_keyed_backend_destroy(f->h.state);
    f->h.state = b;
    f->h.op->state = b;
}

static void open_fixture(fixture_t *f, backend_t backend, const char *extra) {
    char params[512];
    memset(f, 0, sizeof *f);
    snprintf(params, sizeof params, "%s%s%s", DECLS, extra ? ";" : "", extra ? extra : "");
    int rc = sl_harness_open(&f->h, "process", IN_SCHEMA, "0", NULL, NULL, OUT_SCHEMA, params);
    if (rc)
        fail_msg("open: %s (%s)", sl_strerror(rc), f->h.error);
    if (backend == ROCKSDB)
        use_rocksdb(f);
}

static void close_fixture(fixture_t *f) {
    sl_harness_close(&f->h);
    if (f->dir[0])
        assert_int_equal(rmdir(f->dir), 0);
}

static void push(fixture_t *f, const char *csv) {
    int rc = sl_harness_push(&f->h, 0, csv, 0);
    if (rc)
        fail_msg("push '%s': %s (%s)", csv, sl_strerror(rc), f->h.error);
}

/* Runs the reads `csv` (rows separated by '|') and compares what they emitted, in order. */
static void expect(fixture_t *f, const char *csv, const char *want) {
    char *copy = strdup(csv), *save = NULL;
    for (char *row = strtok_r(copy, "|", &save); row; row = strtok_r(NULL, "|", &save))
        push(f, row);
    free(copy);
    char got[4096] = "";
    size_t off = 0;
    for (uint32_t i = 0; i < f->h.nrows; i++)
        off += (size_t)snprintf(got + off, sizeof got - off, "%s%s", i ? "|" : "", f->h.rows[i]);
    assert_string_equal(got, want);
    sl_harness_clear(&f->h);
}

/* The push fails with `err` and a message containing `msg`. */
static void expect_error(fixture_t *f, const char *csv, int err, const char *msg) {
    f->h.error[0] = '\0';
    int rc = sl_harness_push(&f->h, 0, csv, 0);
    assert_int_equal(rc, err);
    if (strstr(f->h.error, msg) == NULL)
        fail_msg("error '%s' does not contain '%s'", f->h.error, msg);
}

/* ---- Tests ---- */

static void test_map(void **state) {
    fixture_t f;
    open_fixture(&f, *(const backend_t *)*state, NULL);
    expect(&f, "a,mget,x,0|a,mvisit,-,0", "a,x absent,0@0|a,{},0@0");
    push(&f, "a,mput,x,1");
    push(&f, "a,mput,y,2");
    push(&f, "a,mput,z,3");
    push(&f, "a,mput,x,10"); /* replaces */
    push(&f, "b,mput,x,99"); /* another key's map */
    expect(&f, "a,mget,x,0|a,mget,y,0|a,mget,w,0|a,mvisit,-,0|b,mvisit,-,0",
           "a,x=10/8,0@0|a,y=2/8,0@0|a,w absent,0@0|a,{x=10;y=2;z=3},0@0|b,{x=99},0@0");
    push(&f, "a,mrm,y,0");
    push(&f, "a,mrm,nosuch,0"); /* absent: not an error */
    expect(&f, "a,mget,y,0|a,mvisit,-,0", "a,y absent,0@0|a,{x=10;z=3},0@0");
    push(&f, "a,mclear,-,0");
    expect(&f, "a,mvisit,-,0|a,mget,x,0|b,mget,x,0", "a,{},0@0|a,x absent,0@0|b,x=99/8,0@0");
    push(&f, "a,mput,x,5"); /* usable again after clear */
    expect(&f, "a,mvisit,-,0", "a,{x=5},0@0");
    close_fixture(&f);
}

static void test_map_ttl(void **state) {
    fixture_t f;
    open_fixture(&f, *(const backend_t *)*state, "state.ttl_ms=1000");
    assert_int_equal(sl_harness_proc_time(&f.h, 10000), 0);
    push(&f, "a,mput,x,1"); /* expires at 11000 */
    push(&f, "a,mput,y,2");
    push(&f, "a,mput,z,3");
    assert_int_equal(sl_harness_proc_time(&f.h, 10500), 0);
    push(&f, "a,mput,y,20"); /* refreshed: expires at 11500 */
    expect(&f, "a,mget,x,0|a,mvisit,-,0", "a,x=1/8,0@0|a,{x=1;y=20;z=3},0@0");
    assert_int_equal(sl_harness_proc_time(&f.h, 11000), 0);
    /* x and z expired: invisible to get and visit. */
    expect(&f, "a,mget,x,0|a,mvisit,-,0", "a,x absent,0@0|a,{y=20},0@0");
    /* They were removed when touched: without TTL the raw entries show only y, with its
     * 8-byte expiry in front. */
    f.h.op->state_ttl_ms = 0;
    expect(&f, "a,mvisit,-,0", "a,{y#16},0@0");
    f.h.op->state_ttl_ms = 1000;
    push(&f, "a,mput,x,7"); /* a new entry: expires at 12000 */
    assert_int_equal(sl_harness_proc_time(&f.h, 11500), 0);
    expect(&f, "a,mget,y,0|a,mvisit,-,0", "a,y absent,0@0|a,{x=7},0@0");
    assert_int_equal(sl_harness_proc_time(&f.h, 12000), 0);
    expect(&f, "a,mvisit,-,0", "a,{},0@0");
    close_fixture(&f);
}

static void test_reducing(void **state) {
    fixture_t f;
    open_fixture(&f, *(const backend_t *)*state, NULL);
    expect(&f, "a,rget,-,0|a,mmget,-,0", "a,sum absent,0@0|a,mm absent,0@0");
    push(&f, "a,radd,-,5"); /* first value stored as is */
    expect(&f, "a,rget,-,0", "a,sum,5@0");
    push(&f, "a,radd,-,7");
    push(&f, "a,radd,-,-2");
    push(&f, "b,radd,-,100");
    expect(&f, "a,rget,-,0|b,rget,-,0", "a,sum,10@0|b,sum,100@0");
    /* A struct value: the function casts the aligned accumulator. */
    push(&f, "a,mmadd,-,4");
    push(&f, "a,mmadd,-,-3");
    push(&f, "a,mmadd,-,9");
    push(&f, "a,mmadd,-,1");
    expect(&f, "a,mmget,-,0", "a,mm -3..9,0@0");
    push(&f, "a,rclear,-,0");
    expect(&f, "a,rget,-,0|b,rget,-,0|a,mmget,-,0", "a,sum absent,0@0|b,sum,100@0|a,mm -3..9,0@0");
    push(&f, "a,radd,-,3"); /* starts again from the new value */
    expect(&f, "a,rget,-,0", "a,sum,3@0");
    close_fixture(&f);
}

static void test_reducing_ttl(void **state) {
    fixture_t f;
    open_fixture(&f, *(const backend_t *)*state, "state.ttl_ms=1000");
    assert_int_equal(sl_harness_proc_time(&f.h, 10000), 0);
    push(&f, "a,radd,-,5");
    assert_int_equal(sl_harness_proc_time(&f.h, 10900), 0);
    push(&f, "a,radd,-,6"); /* merged, and refreshed to 11900 */
    assert_int_equal(sl_harness_proc_time(&f.h, 11500), 0);
    expect(&f, "a,rget,-,0", "a,sum,11@0");
    assert_int_equal(sl_harness_proc_time(&f.h, 11900), 0);
    expect(&f, "a,rget,-,0", "a,sum absent,0@0");
    push(&f, "a,radd,-,2"); /* not merged with the expired 11 */
    expect(&f, "a,rget,-,0", "a,sum,2@0");
    assert_int_equal(sl_harness_proc_time(&f.h, 13000), 0);
    push(&f, "a,radd,-,4"); /* the add itself finds the old value expired */
    expect(&f, "a,rget,-,0", "a,sum,4@0");
    close_fixture(&f);
}

static void test_aggregating(void **state) {
    fixture_t f;
    open_fixture(&f, *(const backend_t *)*state, NULL);
    expect(&f, "a,aget,-,0", "a,spread absent,-1@0");
    push(&f, "a,aadd,-,5");
    expect(&f, "a,aget,-,0", "a,spread,1@0"); /* spread 0, one row */
    push(&f, "a,aadd,-,2");
    push(&f, "a,aadd,-,9");
    push(&f, "b,aadd,-,1");
    expect(&f, "a,aget,-,0|b,aget,-,0", "a,spread,703@0|b,spread,1@0");
    push(&f, "a,aclear,-,0");
    expect(&f, "a,aget,-,0", "a,spread absent,-1@0");
    push(&f, "a,aadd,-,4"); /* a fresh accumulator (init again) */
    expect(&f, "a,aget,-,0|b,aget,-,0", "a,spread,1@0|b,spread,1@0");
    close_fixture(&f);
}

static void test_aggregating_ttl(void **state) {
    fixture_t f;
    open_fixture(&f, *(const backend_t *)*state, "state.ttl_ms=1000");
    assert_int_equal(sl_harness_proc_time(&f.h, 10000), 0);
    push(&f, "a,aadd,-,5");
    push(&f, "a,aadd,-,8");
    assert_int_equal(sl_harness_proc_time(&f.h, 10999), 0);
    expect(&f, "a,aget,-,0", "a,spread,302@0");
    assert_int_equal(sl_harness_proc_time(&f.h, 11000), 0);
    expect(&f, "a,aget,-,0", "a,spread absent,-1@0");
    push(&f, "a,aadd,-,1");
    expect(&f, "a,aget,-,0", "a,spread,1@0");
    close_fixture(&f);
}

static void test_wrong_use(void **state) {
    fixture_t f;
    open_fixture(&f, *(const backend_t *)*state, "state.reducing.ghost=no_such_symbol_anywhere");
    push(&f, "a,vput,v,1");
    expect_error(&f, "a,mgetn,v,0", SL_EINVAL, "state 'v' is a value state, used as map state");
    expect_error(&f, "a,lvisit,v,0", SL_EINVAL, "state 'v' is a value state, used as list state");
    push(&f, "a,mput,x,1");
    expect_error(&f, "a,vget,m,0", SL_EINVAL, "state 'm' is a map state, used as value state");
    /* Declared reducing or aggregating state used as another kind. */
    expect_error(&f, "a,vget,sum,0", SL_EINVAL, "state 'sum' is declared as reducing state, used as value state");
    expect_error(&f, "a,raddn,spread,0", SL_EINVAL,
                 "state 'spread' is declared as aggregating state, used as reducing state");
    expect_error(&f, "a,aaddn,sum,0", SL_EINVAL, "state 'sum' is declared as reducing state, used as aggregating");
    /* Undeclared, or declared with a missing function. */
    expect_error(&f, "a,raddn,nosuch,0", SL_EINVAL,
                 "reducing state 'nosuch' is not declared: call sl_stream_reducing_state()");
    expect_error(&f, "a,aaddn,nosuch,0", SL_EINVAL,
                 "aggregating state 'nosuch' is not declared: call sl_stream_aggregating_state()");
    expect_error(&f, "a,raddn,ghost,0", SL_ESYMBOL,
                 "reduce function 'no_such_symbol_anywhere' of state 'ghost' not found");
    /* A value of another size than the stored one. */
    push(&f, "a,radd,-,1");
    expect_error(&f, "a,radd4,-,1", SL_EINVAL, "reducing state 'sum': a value of 4 bytes added to a value of 8 bytes");
    expect(&f, "a,rget,-,0", "a,sum,1@0"); /* unchanged */
    /* The reduce function's own failure message is kept. */
    expect_error(&f, "a,radd,-,666", SL_EUSER, "fs_sum refuses 666");
    expect(&f, "a,rget,-,0", "a,sum,1@0");
    /* A name the backend already has with another kind (restored, or registered by the
     * runtime) is reported with the backend's kind. */
    uint32_t id;
    assert_int_equal(sl_state_register(f.h.state, "pre", SL_STATE_LIST, &id), 0);
    expect_error(&f, "a,mgetn,pre,0", SL_EINVAL, "state 'pre' is a list state, used as map state");
    close_fixture(&f);
}

/* More names than the operator keeps resolved, and names too long to keep: still correct. */
static void test_many_states(void **state) {
    fixture_t f;
    open_fixture(&f, *(const backend_t *)*state, NULL);
    char row[128];
    const char *long_name = "a_state_name_much_longer_than_the_forty_eight_bytes_kept_per_name";
    for (int i = 0; i < SL_FN_STATES_MAX + 4; i++) {
        snprintf(row, sizeof row, "a,vput,v%d,%d", i, i);
        push(&f, row);
    }
    snprintf(row, sizeof row, "a,vput,%s,1", long_name);
    push(&f, row);
    snprintf(row, sizeof row, "a,mgetn,%s,0", long_name);
    expect_error(&f, row, SL_EINVAL, "is a value state, used as map state");
    expect_error(&f, "a,lvisit,v19,0", SL_EINVAL, "state 'v19' is a value state, used as list state");
    close_fixture(&f);
}

/* ---- Snapshot and restore ---- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static int to_buf(void *arg, const void *data, size_t len) {
    buf_t *b = arg;
    if (b->n + len > b->cap) {
        b->cap = (b->n + len) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    return 0;
}

/* Map, reducing and aggregating state written on one backend, snapshotted, restored into the
 * other backend under a fresh operator, and used there. */
static void snapshot_roundtrip(backend_t from, backend_t into, const char *ttl) {
    fixture_t a, b;
    open_fixture(&a, from, ttl);
    assert_int_equal(sl_harness_proc_time(&a.h, 10000), 0);
    push(&a, "k1,mput,x,1");
    push(&a, "k1,mput,y,2");
    push(&a, "k2,mput,x,3");
    push(&a, "k1,radd,-,4");
    push(&a, "k1,radd,-,5");
    push(&a, "k2,aadd,-,3");
    push(&a, "k2,aadd,-,10");
    buf_t snap = {NULL, 0, 0};
    assert_int_equal(sl_state_snapshot_write(a.h.state, a.h.timers, to_buf, &snap), 0);
    close_fixture(&a);

    open_fixture(&b, into, ttl);
    char err[256];
    int rc = sl_state_snapshot_restore(b.h.state, b.h.timers, snap.p, snap.n, 0, 127, err, sizeof err);
    if (rc)
        fail_msg("restore: %s", err);
    free(snap.p);
    assert_int_equal(sl_harness_proc_time(&b.h, 10500), 0);
    expect(&b, "k1,mvisit,-,0|k2,mvisit,-,0|k1,mget,y,0|k1,rget,-,0|k2,aget,-,0",
           "k1,{x=1;y=2},0@0|k2,{x=3},0@0|k1,y=2/8,0@0|k1,sum,9@0|k2,spread,702@0");
    push(&b, "k1,mrm,x,0");
    push(&b, "k1,radd,-,1");
    expect(&b, "k1,mvisit,-,0|k1,rget,-,0", "k1,{y=2},0@0|k1,sum,10@0");
    if (ttl) { /* the expiry times travelled with the entries */
        assert_int_equal(sl_harness_proc_time(&b.h, 11000), 0);
        expect(&b, "k2,mvisit,-,0|k2,aget,-,0|k1,mvisit,-,0", "k2,{},0@0|k2,spread absent,-1@0|k1,{},0@0");
    }
    close_fixture(&b);
}

static void test_snapshot_heap_to_rocksdb(void **state) {
    snapshot_roundtrip(HEAP, ROCKSDB, NULL);
    snapshot_roundtrip(HEAP, ROCKSDB, "state.ttl_ms=1000");
}

static void test_snapshot_rocksdb_to_heap(void **state) {
    snapshot_roundtrip(ROCKSDB, HEAP, NULL);
    snapshot_roundtrip(ROCKSDB, HEAP, "state.ttl_ms=1000");
}

/* ---- Declaring reducing and aggregating state on the builder ---- */

/* A keyed process operator's stream, or the keyed stream before it when `process` is false. */
static sl_stream_t *job_stream(sl_job_t **job, bool process) {
    assert_int_equal(sl_job_create("fn-state", job), 0);
    sl_stream_t *s = sl_source_generator(*job, "gen", "fs_gen", IN_SCHEMA, 10);
    s = sl_stream_key_by(s, "k");
    return process ? sl_stream_process(s, "proc", "fs_fn", NULL, OUT_SCHEMA) : s;
}

static void expect_job_error(sl_job_t *job, const char *msg) {
    const char *e = sl_job_error(job);
    if (e == NULL || strstr(e, msg) == NULL)
        fail_msg("job error '%s' does not contain '%s'", e ? e : "(none)", msg);
    sl_job_destroy(job);
}

static void test_builder_declarations(void **state) {
    sl_job_t *job;
    sl_stream_t *p = job_stream(&job, true);
    assert_ptr_equal(sl_stream_reducing_state(p, "sum", "fs_sum"), p);
    assert_ptr_equal(sl_stream_aggregating_state(p, "spread", "fs_spread"), p);
    assert_null(sl_job_error(job));
    const sl_params_t *params = &sl__stream_node(p)->params;
    assert_string_equal(sl_params_get(params, "state.reducing.sum"), "fs_sum");
    assert_string_equal(sl_params_get(params, "state.aggregating.spread"), "fs_spread");
    sl_job_destroy(job);

    p = job_stream(&job, true);
    sl_stream_reducing_state(p, "sum", "fs_sum");
    assert_null(sl_stream_aggregating_state(p, "sum", "fs_spread"));
    expect_job_error(job, "aggregating state 'sum' of 'proc': the state is already declared");

    p = job_stream(&job, true);
    assert_null(sl_stream_reducing_state(p, "sum", "no_such_symbol_anywhere"));
    expect_job_error(job, "reducing state 'sum' of 'proc': symbol 'no_such_symbol_anywhere' not found");

    p = job_stream(&job, true);
    assert_null(sl_stream_reducing_state(p, "", "fs_sum"));
    expect_job_error(job, "no state name given");

    p = job_stream(&job, false);
    assert_null(sl_stream_reducing_state(p, "sum", "fs_sum"));
    expect_job_error(job, "reducing state 'sum': 'gen' is not a process function");
}

int main(void) {
#define BOTH(t) cmocka_unit_test_prestate(t, (void *)&heap), cmocka_unit_test_prestate(t, (void *)&rocksdb)
    const struct CMUnitTest tests[] = {
        BOTH(test_map),
        BOTH(test_map_ttl),
        BOTH(test_reducing),
        BOTH(test_reducing_ttl),
        BOTH(test_aggregating),
        BOTH(test_aggregating_ttl),
        BOTH(test_wrong_use),
        BOTH(test_many_states),
        cmocka_unit_test(test_snapshot_heap_to_rocksdb),
        cmocka_unit_test(test_snapshot_rocksdb_to_heap),
        cmocka_unit_test(test_builder_declarations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
