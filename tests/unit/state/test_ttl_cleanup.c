/* Background cleanup of expired TTL state (state/keyed_state.h "State TTL"): the heap backend's
 * incremental cleanup, RocksDB's compaction filter, full snapshots that leave expired entries
 * out, and states without TTL that never lose anything. Values are built here the way
 * operators/fn_state.c stores them: an 8-byte expiry, then the user bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/key_group.h"
#include "core/murmur.h"
#include "state/heap_backend.h"
#include "state/keyed_state.h"
#include "state/rocksdb_backend.h"
#include "state/snapshot.h"

#define MAXP 128
#define NKEYS 1000
#define DEAD 1000        /* expiry of the entries that die */
#define ALIVE 1000000000 /* expiry of those that live */
#define NOW 5000

/* The processing-time clock given to set_ttl; RocksDB reads it from its compaction threads. */
static atomic_llong clock_ms;
static int64_t test_clock(void) { return atomic_load(&clock_ms); }

static void set_key(sl_keyed_backend_t *b, const char *key) {
    uint32_t len = (uint32_t)strlen(key);
    sl_keyed_backend_set_key(b, key, len, sl_key_group_of(sl_murmur3_32(key, len, 0), MAXP));
}

/* [expires_at][text] into buf; returns the length. */
static uint32_t ttl_value(uint8_t *buf, int64_t at, const char *text) {
    memcpy(buf, &at, 8);
    memcpy(buf + 8, text, strlen(text));
    return 8 + (uint32_t)strlen(text);
}

/* ---- backends ---- */

static sl_keyed_backend_t *open_backend(bool rocksdb) {
    sl_keyed_backend_t *b = NULL;
    if (!rocksdb) {
        assert_int_equal(sl_heap_backend_create(MAXP, 0, MAXP - 1, &b), 0);
        return b;
    }
    char rocks_dir[64], path[128], err[256];
    snprintf(rocks_dir, sizeof rocks_dir, "/tmp/sl-ttl-test-XXXXXX");
    assert_non_null(mkdtemp(rocks_dir));
    snprintf(path, sizeof path, "%s/db", rocks_dir);
    int rc = sl_rocksdb_backend_create(path, NULL, NULL, MAXP, 0, MAXP - 1, &b, err, sizeof err);
    if (rc)
        fail_msg("rocksdb: %s", err);
    return b;
}

/* Destroys `b`; a RocksDB instance removes its directory <tmp dir>/db, the test the rest. */
static void close_backend(sl_keyed_backend_t *b) {
    char dir[128] = "";
    if (sl_rocksdb_backend_is(b)) {
        snprintf(dir, sizeof dir, "%s", sl_rocksdb_backend_path(b));
        *strrchr(dir, '/') = '\0';
    }
    sl_keyed_backend_destroy(b);
    if (dir[0])
        assert_int_equal(rmdir(dir), 0);
}

/* ---- counting what is stored ---- */

typedef struct {
    uint32_t entries;  /* (key, namespace[, user key]) entries */
    uint32_t elements; /* list elements over all entries */
    uint32_t live;     /* values or elements with an expiry after NOW */
    uint32_t dead;     /* the others */
} census_t;

static void tally(census_t *c, const uint8_t *v, uint32_t len) {
    int64_t at;
    assert_true(len >= 8);
    memcpy(&at, v, 8);
    if (at > NOW)
        c->live++;
    else
        c->dead++;
}

/* Every entry of state `id`; list values are split into their elements. */
typedef struct {
    census_t c;
    bool list;
} census_ctx_t;

static int census_cb(void *arg, uint32_t kg, const void *key, uint32_t klen, const void *ns, uint32_t nslen,
                     const void *uk, uint32_t uklen, const void *val, uint32_t vlen) {
    census_ctx_t *x = arg;
    x->c.entries++;
    if (!x->list) {
        tally(&x->c, val, vlen);
        return 0;
    }
    const uint8_t *p = val;
    for (uint32_t off = 0, n; off < vlen; off += 4 + n) {
        assert_true(vlen - off >= 4);
        memcpy(&n, p + off, 4);
        assert_true(n <= vlen - off - 4);
        x->c.elements++;
        tally(&x->c, p + off + 4, n);
    }
    return 0;
}

static census_t census(sl_keyed_backend_t *b, uint32_t id) {
    const char *name;
    sl_state_kind_t kind;
    sl_state_info(b, id, &name, &kind);
    census_ctx_t x = {{0}, kind == SL_STATE_LIST};
    assert_int_equal(b->vt->for_each_entry(b, id, census_cb, &x), 0);
    return x.c;
}

/* ---- the data set: values, lists and maps, some entries dead and some alive ---- */

typedef struct {
    uint32_t value, list, map;
} ids_t;

/* Key i: a value dead for even i, alive for odd i; a list of three elements, all dead when
 * i % 3 == 0, else dead, alive, dead; a map with "x" dead and "y" alive when i % 4 == 0,
 * else "x" dead only. Live in the end: NKEYS / 2 values; 2 * NKEYS / 3 lists holding one
 * element each; NKEYS / 4 maps holding "y". */
static ids_t write_mix(sl_keyed_backend_t *b, bool ttl) {
    ids_t s;
    assert_int_equal(sl_state_register(b, "v", SL_STATE_VALUE, &s.value), 0);
    assert_int_equal(sl_state_register(b, "l", SL_STATE_LIST, &s.list), 0);
    assert_int_equal(sl_state_register(b, "m", SL_STATE_MAP, &s.map), 0);
    if (ttl) {
        assert_int_equal(sl_state_set_ttl(b, s.value, test_clock), 0);
        assert_int_equal(sl_state_set_ttl(b, s.list, test_clock), 0);
        assert_int_equal(sl_state_set_ttl(b, s.map, test_clock), 0);
    }
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        uint8_t v[64];
        snprintf(key, sizeof key, "key-%d", i);
        set_key(b, key);
        assert_int_equal(sl_state_value_put(b, s.value, NULL, 0, v, ttl_value(v, i % 2 ? ALIVE : DEAD, key)), 0);
        assert_int_equal(sl_state_list_add(b, s.list, NULL, 0, v, ttl_value(v, DEAD, "first")), 0);
        assert_int_equal(sl_state_list_add(b, s.list, NULL, 0, v, ttl_value(v, i % 3 ? ALIVE : DEAD, key)), 0);
        assert_int_equal(sl_state_list_add(b, s.list, NULL, 0, v, ttl_value(v, DEAD, "third")), 0);
        assert_int_equal(sl_state_map_put(b, s.map, NULL, 0, "x", 1, v, ttl_value(v, DEAD, "gone")), 0);
        if (i % 4 == 0)
            assert_int_equal(sl_state_map_put(b, s.map, NULL, 0, "y", 1, v, ttl_value(v, ALIVE, key)), 0);
    }
    return s;
}

#define LIVE_VALUES (NKEYS / 2)
#define LIVE_LISTS (NKEYS - (NKEYS + 2) / 3) /* i % 3 != 0 */
#define LIVE_MAPS ((NKEYS + 3) / 4)          /* i % 4 == 0 */

/* Asserts exactly the live part of write_mix is left, with its bytes. */
static void check_only_live(sl_keyed_backend_t *b, ids_t s) {
    census_t v = census(b, s.value), l = census(b, s.list), m = census(b, s.map);
    assert_int_equal(v.entries, LIVE_VALUES);
    assert_int_equal(v.dead, 0);
    assert_int_equal(l.entries, LIVE_LISTS);
    assert_int_equal(l.elements, LIVE_LISTS);
    assert_int_equal(l.dead, 0);
    assert_int_equal(m.entries, LIVE_MAPS);
    assert_int_equal(m.dead, 0);
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        set_key(b, key);
        const void *p;
        uint32_t len;
        int rc = sl_state_value_get(b, s.value, NULL, 0, &p, &len);
        assert_int_equal(rc, i % 2);
        if (rc == 1) {
            assert_int_equal(len, 8 + strlen(key));
            assert_memory_equal((const uint8_t *)p + 8, key, strlen(key));
        }
        rc = sl_state_map_get(b, s.map, NULL, 0, "y", 1, &p, &len);
        assert_int_equal(rc, i % 4 == 0);
        if (rc == 1)
            assert_memory_equal((const uint8_t *)p + 8, key, strlen(key));
        assert_int_equal(sl_state_map_get(b, s.map, NULL, 0, "x", 1, &p, &len), 0);
    }
}

/* Asserts nothing of write_mix is gone. */
static void check_all(sl_keyed_backend_t *b, ids_t s) {
    census_t v = census(b, s.value), l = census(b, s.list), m = census(b, s.map);
    assert_int_equal(v.entries, NKEYS);
    assert_int_equal(l.entries, NKEYS);
    assert_int_equal(l.elements, 3 * NKEYS);
    assert_int_equal(m.entries, NKEYS + LIVE_MAPS);
}

/* Cleanup steps on every state, as accesses would give them, until `steps` per state. */
static void cleanup_steps(sl_keyed_backend_t *b, ids_t s, int steps) {
    for (int i = 0; i < steps; i++) {
        assert_int_equal(sl_state_ttl_cleanup(b, s.value, NOW), 0);
        assert_int_equal(sl_state_ttl_cleanup(b, s.list, NOW), 0);
        assert_int_equal(sl_state_ttl_cleanup(b, s.map, NOW), 0);
    }
}

/* Steps that surely cover a whole round of write_mix's tables: every entry (a map's nested
 * entries each count) at 5 a step, and every slot and key group at 64 a step, with room. */
#define ROUND (2 * (2 * NKEYS / SL_STATE_TTL_CLEANUP_ENTRIES + (4 * NKEYS + 32 * MAXP) / 64))

/* ---- heap: incremental cleanup ---- */

static void test_heap_incremental_cleanup(void **state) {
    atomic_store(&clock_ms, NOW);
    sl_keyed_backend_t *b = open_backend(false);
    ids_t s = write_mix(b, true);
    /* Each step removes at most SL_STATE_TTL_CLEANUP_ENTRIES entries of a state: O(1). */
    uint32_t before = census(b, s.value).entries;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(sl_state_ttl_cleanup(b, s.value, NOW), 0);
        uint32_t after = census(b, s.value).entries;
        assert_true(before - after <= SL_STATE_TTL_CLEANUP_ENTRIES);
        before = after;
    }
    cleanup_steps(b, s, ROUND);
    check_only_live(b, s);
    /* The cursor wraps: entries that die later go in a later round. */
    atomic_store(&clock_ms, ALIVE);
    for (int i = 0; i < 2 * ROUND; i++) {
        assert_int_equal(sl_state_ttl_cleanup(b, s.value, ALIVE), 0);
        assert_int_equal(sl_state_ttl_cleanup(b, s.list, ALIVE), 0);
        assert_int_equal(sl_state_ttl_cleanup(b, s.map, ALIVE), 0);
    }
    assert_int_equal(census(b, s.value).entries, 0);
    assert_int_equal(census(b, s.list).entries, 0);
    assert_int_equal(census(b, s.map).entries, 0);
    close_backend(b);
}

static void test_heap_without_ttl_nothing_dropped(void **state) {
    atomic_store(&clock_ms, NOW);
    sl_keyed_backend_t *b = open_backend(false);
    ids_t s = write_mix(b, false);
    assert_null(sl_state_ttl_clock(b, s.value));
    cleanup_steps(b, s, ROUND);
    check_all(b, s);
    close_backend(b);
}

/* Write the snapshot into memory. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static int to_buf(void *arg, const void *data, size_t len) {
    buf_t *b = arg;
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* Cleanup while an asynchronous snapshot is open: what the snapshot reads stays as it was
 * (ASan would catch a block freed under it), whole entries are retired, and what needs a copy
 * of shared bytes waits until the snapshot is closed. */
static void test_heap_cleanup_during_snapshot(void **state) {
    atomic_store(&clock_ms, NOW);
    sl_keyed_backend_t *b = open_backend(false);
    ids_t s = write_mix(b, true);
    /* Taken before the expiry matters: a snapshot at time 0 keeps everything. */
    atomic_store(&clock_ms, 0);
    sl_state_capture_t *cap;
    assert_int_equal(sl_state_snapshot_capture(b, NULL, &cap), 0);
    atomic_store(&clock_ms, NOW);
    cleanup_steps(b, s, ROUND);
    assert_true(sl_heap_backend_retired(b) > 0);
    /* Dead values and all-dead lists are gone; partly dead lists and maps are untouched. */
    assert_int_equal(census(b, s.value).entries, LIVE_VALUES);
    assert_int_equal(census(b, s.list).entries, LIVE_LISTS);
    assert_int_equal(census(b, s.list).elements, 3 * LIVE_LISTS);
    assert_int_equal(census(b, s.map).entries, NKEYS + LIVE_MAPS);

    buf_t snap = {0};
    assert_int_equal(sl_state_capture_write(cap, to_buf, &snap), 0);
    sl_state_capture_release(cap);
    sl_keyed_backend_t *r = open_backend(false);
    char err[256];
    assert_int_equal(sl_state_snapshot_restore(r, NULL, snap.p, snap.len, 0, MAXP - 1, err, sizeof err), 0);
    check_all(r, s); /* the same ids: registered in the same order */
    sl_keyed_backend_destroy(r);
    free(snap.p);

    cleanup_steps(b, s, ROUND);
    check_only_live(b, s);
    close_backend(b);
}

/* ---- snapshots leave expired entries out; restore keeps exactly the live ones ---- */

static void snapshot_and_restore(sl_keyed_backend_t *b, ids_t s, bool async) {
    buf_t snap = {0};
    if (async) {
        sl_state_capture_t *cap;
        assert_int_equal(sl_state_snapshot_capture(b, NULL, &cap), 0);
        assert_int_equal(sl_state_capture_write(cap, to_buf, &snap), 0);
        sl_state_capture_release(cap);
    } else {
        assert_int_equal(sl_state_snapshot_write(b, NULL, to_buf, &snap), 0);
    }
    for (int into_rocksdb = 0; into_rocksdb < 2; into_rocksdb++) {
        sl_keyed_backend_t *r = open_backend(into_rocksdb);
        char err[256];
        assert_int_equal(sl_state_snapshot_restore(r, NULL, snap.p, snap.len, 0, MAXP - 1, err, sizeof err), 0);
        check_only_live(r, s);
        close_backend(r);
    }
    free(snap.p);
}

static void test_snapshot_skips_expired(void **state) {
    atomic_store(&clock_ms, NOW);
    for (int rocksdb = 0; rocksdb < 2; rocksdb++) {
        sl_keyed_backend_t *b = open_backend(rocksdb);
        ids_t s = write_mix(b, true);
        snapshot_and_restore(b, s, false);
        if (!rocksdb)
            snapshot_and_restore(b, s, true);
        close_backend(b);
    }
}

static void test_snapshot_after_cleanup(void **state) {
    atomic_store(&clock_ms, NOW);
    sl_keyed_backend_t *b = open_backend(false);
    ids_t s = write_mix(b, true);
    cleanup_steps(b, s, ROUND);
    check_only_live(b, s);
    snapshot_and_restore(b, s, true);
    close_backend(b);
}

static void test_snapshot_without_ttl_keeps_all(void **state) {
    atomic_store(&clock_ms, NOW);
    sl_keyed_backend_t *b = open_backend(false);
    ids_t s = write_mix(b, false);
    buf_t snap = {0};
    assert_int_equal(sl_state_snapshot_write(b, NULL, to_buf, &snap), 0);
    sl_keyed_backend_t *r = open_backend(false);
    char err[256];
    assert_int_equal(sl_state_snapshot_restore(r, NULL, snap.p, snap.len, 0, MAXP - 1, err, sizeof err), 0);
    check_all(r, s);
    sl_keyed_backend_destroy(r);
    free(snap.p);
    close_backend(b);
}

/* ---- RocksDB: the compaction filter ---- */

static void compact_all(sl_keyed_backend_t *b, ids_t s) {
    /* Twice: the filter sees values, not merge operands, and a list merged from operands in
     * a compaction that does not reach the last level is only filtered by a later one. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sl_rocksdb_backend_compact(b, s.value), 0);
        assert_int_equal(sl_rocksdb_backend_compact(b, s.list), 0);
        assert_int_equal(sl_rocksdb_backend_compact(b, s.map), 0);
    }
}

static void test_rocksdb_compaction_filter(void **state) {
    atomic_store(&clock_ms, 0);
    sl_keyed_backend_t *b = open_backend(true);
    ids_t s = write_mix(b, true);
    compact_all(b, s); /* at time 0 nothing has expired */
    check_all(b, s);
    atomic_store(&clock_ms, NOW);
    compact_all(b, s);
    check_only_live(b, s);
    /* A list that gets more elements after its cleanup goes on as a list. */
    uint8_t v[32];
    set_key(b, "key-1");
    assert_int_equal(sl_state_list_add(b, s.list, NULL, 0, v, ttl_value(v, ALIVE, "more")), 0);
    census_t l = census(b, s.list);
    assert_int_equal(l.elements, LIVE_LISTS + 1);
    assert_int_equal(l.dead, 0);
    close_backend(b);
}

static void test_rocksdb_without_ttl_nothing_dropped(void **state) {
    atomic_store(&clock_ms, NOW);
    sl_keyed_backend_t *b = open_backend(true);
    ids_t s = write_mix(b, false);
    assert_null(sl_state_ttl_clock(b, s.value));
    compact_all(b, s);
    check_all(b, s);
    close_backend(b);
}

/* A TTL set after the state exists (as after a restore registered it) reaches the filter of
 * its column family. */
static void test_rocksdb_ttl_set_later(void **state) {
    atomic_store(&clock_ms, NOW);
    sl_keyed_backend_t *b = open_backend(true);
    ids_t s = write_mix(b, false);
    compact_all(b, s);
    check_all(b, s);
    assert_int_equal(sl_state_set_ttl(b, s.value, test_clock), 0);
    assert_int_equal(sl_state_set_ttl(b, s.list, test_clock), 0);
    assert_int_equal(sl_state_set_ttl(b, s.map, test_clock), 0);
    assert_ptr_equal(sl_state_ttl_clock(b, s.value), test_clock);
    assert_int_equal(sl_state_ttl_cleanup(b, s.value, NOW), 0); /* RocksDB: nothing to do */
    compact_all(b, s);
    check_only_live(b, s);
    assert_int_equal(sl_state_set_ttl(b, 99, test_clock), SL_EINVAL);
    close_backend(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_incremental_cleanup),
        cmocka_unit_test(test_heap_without_ttl_nothing_dropped),
        cmocka_unit_test(test_heap_cleanup_during_snapshot),
        cmocka_unit_test(test_snapshot_skips_expired),
        cmocka_unit_test(test_snapshot_after_cleanup),
        cmocka_unit_test(test_snapshot_without_ttl_keeps_all),
        cmocka_unit_test(test_rocksdb_compaction_filter),
        cmocka_unit_test(test_rocksdb_without_ttl_nothing_dropped),
        cmocka_unit_test(test_rocksdb_ttl_set_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
