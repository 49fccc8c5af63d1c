/* Portable keyed-state snapshots: write from one backend, restore into heap and RocksDB, all
 * key groups or a range (rescaling), timers included; truncated or corrupt input is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/key_group.h"
#include "core/murmur.h"
#include "state/rocksdb_backend.h"
#include "state/snapshot.h"

#define MAXP 128
#define NKEYS 500

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

static uint32_t kg_of(uint32_t k) { return sl_key_group_of(sl_murmur3_32(&k, 4, 0), MAXP); }

static void fill(sl_keyed_backend_t *b, sl_timer_service_t *t) {
    uint32_t v, l, m;
    assert_int_equal(sl_state_register(b, "v", SL_STATE_VALUE, &v), 0);
    assert_int_equal(sl_state_register(b, "l", SL_STATE_LIST, &l), 0);
    assert_int_equal(sl_state_register(b, "m", SL_STATE_MAP, &m), 0);
    for (uint32_t k = 0; k < NKEYS; k++) {
        sl_keyed_backend_set_key(b, &k, 4, kg_of(k));
        uint64_t x = k * 31u;
        assert_int_equal(sl_state_value_put(b, v, "ns", 2, &x, 8), 0);
        for (uint32_t i = 0; i < k % 4; i++)
            assert_int_equal(sl_state_list_add(b, l, NULL, 0, &i, 4), 0);
        assert_int_equal(sl_state_map_put(b, m, &k, 4, "a", 1, "AA", 2), 0);
        assert_int_equal(sl_state_map_put(b, m, &k, 4, "b", 1, "B", 1), 0);
        assert_int_equal(sl_timer_register(t, SL_TIMER_EVENT, 1000 + k, &k, 4, kg_of(k), "w", 1), 0);
    }
}

typedef struct {
    char **lines;
    uint32_t n;
} dump_t;

static int dump_entry(void *arg, uint32_t kg, const void *key, uint32_t klen, const void *ns, uint32_t nslen,
                      const void *uk, uint32_t uklen, const void *val, uint32_t vlen) {
    dump_t *d = arg;
    char line[512];
    int o = snprintf(line, sizeof line, "%u|", kg);
    const uint8_t *parts[4] = {key, ns, uk, val};
    uint32_t lens[4] = {klen, nslen, uklen, vlen};
    for (int p = 0; p < 4; p++) {
        for (uint32_t i = 0; i < lens[p]; i++)
            o += snprintf(line + o, sizeof line - (size_t)o, "%02x", parts[p][i]);
        o += snprintf(line + o, sizeof line - (size_t)o, "|");
    }
    d->lines = realloc(d->lines, (d->n + 1) * sizeof *d->lines);
    d->lines[d->n++] = strdup(line);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every entry of every state, as sorted text. */
static char *dump(sl_keyed_backend_t *b) {
    dump_t d = {NULL, 0};
    for (uint32_t s = 0; s < sl_state_count(b); s++) {
        const char *name;
        sl_state_kind_t kind;
        sl_state_info(b, s, &name, &kind);
        dump_entry(&d, 0, name, (uint32_t)strlen(name), NULL, 0, NULL, 0, NULL, 0);
        assert_int_equal(b->vt->for_each_entry(b, s, dump_entry, &d), 0);
    }
    qsort(d.lines, d.n, sizeof *d.lines, cmp);
    size_t len = 1;
    for (uint32_t i = 0; i < d.n; i++)
        len += strlen(d.lines[i]) + 1;
    char *s = calloc(1, len);
    for (uint32_t i = 0; i < d.n; i++) {
        strcat(s, d.lines[i]);
        strcat(s, "\n");
        free(d.lines[i]);
    }
    free(d.lines);
    return s;
}

static char dir[64];

static sl_keyed_backend_t *make(int rocks, uint32_t first, uint32_t last) {
    sl_keyed_backend_t *b;
    if (!rocks) {
        assert_int_equal(sl_heap_backend_create(MAXP, first, last, &b), 0);
        return b;
    }
    char path[128], err[256];
    static int n;
    snprintf(path, sizeof path, "%s/db%d", dir, n++);
    assert_int_equal(sl_rocksdb_backend_create(path, NULL, NULL, MAXP, first, last, &b, err, sizeof err), 0);
    return b;
}

static void round_trip(int from_rocks, int to_rocks) {
    snprintf(dir, sizeof dir, "/tmp/sl-snap-XXXXXX");
    assert_non_null(mkdtemp(dir));
    sl_keyed_backend_t *a = make(from_rocks, 0, MAXP - 1);
    sl_timer_service_t *ta, *tb;
    assert_int_equal(sl_timer_service_create(&ta), 0);
    assert_int_equal(sl_timer_service_create(&tb), 0);
    fill(a, ta);
    buf_t snap = {0};
    assert_int_equal(sl_state_snapshot_write(a, ta, to_buf, &snap), 0);
    sl_keyed_backend_t *b = make(to_rocks, 0, MAXP - 1);
    char err[256];
    assert_int_equal(sl_state_snapshot_restore(b, tb, snap.p, snap.n, 0, MAXP - 1, err, sizeof err), 0);
    char *da = dump(a), *db = dump(b);
    assert_string_equal(da, db);
    assert_int_equal(sl_timer_count(tb, SL_TIMER_EVENT), NKEYS);
    sl_timer_t t;
    assert_int_equal(sl_timer_pop(tb, SL_TIMER_EVENT, INT64_MAX, &t), 1);
    assert_int_equal(t.ts, 1000); /* firing order survives */
    free(da);
    free(db);

    /* Rescale: two halves restored separately hold exactly the whole. */
    sl_keyed_backend_t *lo = make(to_rocks, 0, 63), *hi = make(to_rocks, 64, MAXP - 1);
    sl_timer_service_t *tl, *th;
    assert_int_equal(sl_timer_service_create(&tl), 0);
    assert_int_equal(sl_timer_service_create(&th), 0);
    assert_int_equal(sl_state_snapshot_restore(lo, tl, snap.p, snap.n, 0, 63, err, sizeof err), 0);
    assert_int_equal(sl_state_snapshot_restore(hi, th, snap.p, snap.n, 64, MAXP - 1, err, sizeof err), 0);
    assert_int_equal(sl_timer_count(tl, SL_TIMER_EVENT) + sl_timer_count(th, SL_TIMER_EVENT), NKEYS);
    assert_true(sl_timer_count(tl, SL_TIMER_EVENT) > 0 && sl_timer_count(th, SL_TIMER_EVENT) > 0);
    char *dl = dump(lo), *dh = dump(hi);
    assert_null(strstr(dl, "\n64|")); /* no key group of the other half */
    free(dl);
    free(dh);
    sl_keyed_backend_destroy(lo);
    sl_keyed_backend_destroy(hi);
    sl_timer_service_destroy(tl);
    sl_timer_service_destroy(th);
    sl_keyed_backend_destroy(a);
    sl_keyed_backend_destroy(b);
    sl_timer_service_destroy(ta);
    sl_timer_service_destroy(tb);
    free(snap.p);
    rmdir(dir);
}

static void test_heap_to_heap(void **state) { round_trip(0, 0); }
static void test_heap_to_rocksdb(void **state) { round_trip(0, 1); }
static void test_rocksdb_to_heap(void **state) { round_trip(1, 0); }

static void test_corrupt_input(void **state) {
    sl_keyed_backend_t *a;
    sl_timer_service_t *ta;
    assert_int_equal(sl_heap_backend_create(MAXP, 0, MAXP - 1, &a), 0);
    assert_int_equal(sl_timer_service_create(&ta), 0);
    fill(a, ta);
    buf_t snap = {0};
    assert_int_equal(sl_state_snapshot_write(a, ta, to_buf, &snap), 0);
    char err[256];
    /* Every truncation fails cleanly. */
    for (size_t cut = 0; cut < snap.n; cut += 1 + cut / 16) {
        sl_keyed_backend_t *b;
        sl_timer_service_t *tb;
        assert_int_equal(sl_heap_backend_create(MAXP, 0, MAXP - 1, &b), 0);
        assert_int_equal(sl_timer_service_create(&tb), 0);
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, snap.p, cut);
        assert_int_equal(sl_state_snapshot_restore(b, tb, copy, cut, 0, MAXP - 1, err, sizeof err), SL_EPARSE);
        assert_non_null(strstr(err, "corrupt state snapshot"));
        free(copy);
        sl_keyed_backend_destroy(b);
        sl_timer_service_destroy(tb);
    }
    snap.p[0] = 'X';
    sl_keyed_backend_t *b;
    assert_int_equal(sl_heap_backend_create(MAXP, 0, MAXP - 1, &b), 0);
    assert_int_equal(sl_state_snapshot_restore(b, NULL, snap.p, snap.n, 0, MAXP - 1, err, sizeof err), SL_EPARSE);
    assert_non_null(strstr(err, "not a Sluice state snapshot"));
    sl_keyed_backend_destroy(b);
    sl_keyed_backend_destroy(a);
    sl_timer_service_destroy(ta);
    free(snap.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_to_heap),
        cmocka_unit_test(test_heap_to_rocksdb),
        cmocka_unit_test(test_rocksdb_to_heap),
        cmocka_unit_test(test_corrupt_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
