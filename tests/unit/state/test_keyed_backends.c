/* The keyed-state contract (src/state/keyed_state.h), run against both backends, heap and
 * RocksDB: value, list and map state per (key, namespace), isolation, registration,
 * for_each_key, key-group ownership, 100k keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/key_group.h"
#include "core/murmur.h"
#include "state/keyed_state.h"
#include "state/rocksdb_backend.h"

#include <unistd.h>

#define MAXP 128

static uint32_t kg_of(const void *key, uint32_t len) { return sl_key_group_of(sl_murmur3_32(key, len, 0), MAXP); }

static void set_key(sl_keyed_backend_t *b, const char *key) {
    uint32_t len = (uint32_t)strlen(key);
    sl_keyed_backend_set_key(b, key, len, kg_of(key, len));
}

static int setup(void **state) {
    sl_keyed_backend_t *b = NULL;
    if (sl_heap_backend_create(MAXP, 0, MAXP - 1, &b) != 0)
        return -1;
    *state = b;
    return 0;
}

static int teardown(void **state) {
    sl_keyed_backend_destroy(*state);
    return 0;
}

static char rocks_dir[64];
static bool is_rocksdb;

static int setup_rocksdb(void **state) {
    sl_keyed_backend_t *b = NULL;
    char path[128], err[256];
    snprintf(rocks_dir, sizeof rocks_dir, "/tmp/sl-rocks-test-XXXXXX");
    if (mkdtemp(rocks_dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/db", rocks_dir);
    is_rocksdb = true;
    if (sl_rocksdb_backend_create(path, NULL, NULL, MAXP, 0, MAXP - 1, &b, err, sizeof err) != 0) {
        fprintf(stderr, "rocksdb: %s\n", err);
        return -1;
    }
    *state = b;
    return 0;
}

static int teardown_rocksdb(void **state) {
    sl_keyed_backend_destroy(*state); /* removes its directory */
    return rmdir(rocks_dir);
}

/* Asserts the value at (current key, ns) equals the C string `want`, or is absent when NULL. */
static void check_value(sl_keyed_backend_t *b, uint32_t id, const char *ns, const char *want) {
    const void *v = NULL;
    uint32_t len = 0;
    int rc = sl_state_value_get(b, id, ns, (uint32_t)strlen(ns), &v, &len);
    if (want == NULL) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
}

static void put_value(sl_keyed_backend_t *b, uint32_t id, const char *ns, const char *val) {
    assert_int_equal(sl_state_value_put(b, id, ns, (uint32_t)strlen(ns), val, (uint32_t)strlen(val)), 0);
}

static void test_create_args(void **state) {
    sl_keyed_backend_t *b = NULL;
    assert_int_equal(sl_heap_backend_create(0, 0, 0, &b), SL_EINVAL);
    assert_int_equal(sl_heap_backend_create(128, 5, 4, &b), SL_EINVAL);
    assert_int_equal(sl_heap_backend_create(128, 0, 128, &b), SL_EINVAL);
    assert_int_equal(sl_heap_backend_create(128, 10, 20, &b), 0);
    assert_int_equal(b->max_parallelism, 128);
    assert_int_equal(b->kg_first, 10);
    assert_int_equal(b->kg_last, 20);
    assert_true(b->vt->memory_bytes(b) > 0);
    sl_keyed_backend_destroy(b);
    sl_keyed_backend_destroy(NULL);
}

static void test_register(void **state) {
    sl_keyed_backend_t *b = *state;
    uint32_t a, a2, l, m, x;
    assert_int_equal(sl_state_register(b, "count", SL_STATE_VALUE, &a), 0);
    assert_int_equal(sl_state_register(b, "events", SL_STATE_LIST, &l), 0);
    assert_int_equal(sl_state_register(b, "index", SL_STATE_MAP, &m), 0);
    assert_int_not_equal(a, l);
    assert_int_not_equal(a, m);
    assert_int_not_equal(l, m);
    assert_int_equal(sl_state_register(b, "count", SL_STATE_VALUE, &a2), 0);
    assert_int_equal(a2, a);
    x = 9999;
    assert_int_equal(sl_state_register(b, "count", SL_STATE_LIST, &x), SL_EINVAL);
    assert_int_equal(sl_state_register(b, "events", SL_STATE_MAP, &x), SL_EINVAL);
    assert_int_equal(sl_state_register(b, "index", SL_STATE_VALUE, &x), SL_EINVAL);
    /* Using a state through the wrong kind or an unknown id is an error. */
    set_key(b, "k");
    const void *v;
    uint32_t vl;
    assert_int_equal(sl_state_value_get(b, l, "", 0, &v, &vl), SL_EINVAL);
    assert_int_equal(sl_state_list_add(b, a, "", 0, "x", 1), SL_EINVAL);
    assert_int_equal(sl_state_map_put(b, a, "", 0, "u", 1, "x", 1), SL_EINVAL);
    assert_int_equal(sl_state_value_put(b, 77, "", 0, "x", 1), SL_EINVAL);
    assert_int_equal(sl_state_remove(b, 77, "", 0), SL_EINVAL);
}

static void test_value_basic(void **state) {
    sl_keyed_backend_t *b = *state;
    uint32_t id;
    assert_int_equal(sl_state_register(b, "v", SL_STATE_VALUE, &id), 0);
    set_key(b, "alice");
    check_value(b, id, "", NULL);
    put_value(b, id, "", "one");
    check_value(b, id, "", "one");
    put_value(b, id, "", "a longer value than before");
    check_value(b, id, "", "a longer value than before");
    put_value(b, id, "", "s");
    check_value(b, id, "", "s");
    /* An empty value is present, with length 0. */
    assert_int_equal(sl_state_value_put(b, id, "", 0, "", 0), 0);
    const void *v;
    uint32_t len = 99;
    assert_int_equal(sl_state_value_get(b, id, "", 0, &v, &len), 1);
    assert_int_equal(len, 0);
    assert_int_equal(sl_state_remove(b, id, "", 0), 0);
    check_value(b, id, "", NULL);
    /* Removing something absent is fine. */
    assert_int_equal(sl_state_remove(b, id, "", 0), 0);
    assert_int_equal(sl_state_remove(b, id, "nope", 4), 0);
}

static void test_value_isolation(void **state) {
    sl_keyed_backend_t *b = *state;
    uint32_t s1, s2;
    assert_int_equal(sl_state_register(b, "s1", SL_STATE_VALUE, &s1), 0);
    assert_int_equal(sl_state_register(b, "s2", SL_STATE_VALUE, &s2), 0);
    set_key(b, "alice");
    put_value(b, s1, "w1", "alice-w1");
    put_value(b, s1, "w2", "alice-w2");
    put_value(b, s2, "w1", "alice-s2-w1");
    set_key(b, "bob");
    check_value(b, s1, "w1", NULL);
    put_value(b, s1, "w1", "bob-w1");
    set_key(b, "alice");
    check_value(b, s1, "w1", "alice-w1");
    check_value(b, s1, "w2", "alice-w2");
    check_value(b, s2, "w1", "alice-s2-w1");
    check_value(b, s2, "w2", NULL);
    check_value(b, s1, "", NULL);
    set_key(b, "bob");
    check_value(b, s1, "w1", "bob-w1");
    check_value(b, s2, "w1", NULL);
    /* Key and namespace boundaries matter: ("ab", "c") is not ("a", "bc"). */
    sl_keyed_backend_set_key(b, "ab", 2, 5);
    put_value(b, s1, "c", "ab|c");
    sl_keyed_backend_set_key(b, "a", 1, 5);
    check_value(b, s1, "bc", NULL);
    put_value(b, s1, "bc", "a|bc");
    sl_keyed_backend_set_key(b, "ab", 2, 5);
    check_value(b, s1, "c", "ab|c");
    /* Removing one namespace leaves the others. */
    set_key(b, "alice");
    assert_int_equal(sl_state_remove(b, s1, "w1", 2), 0);
    check_value(b, s1, "w1", NULL);
    check_value(b, s1, "w2", "alice-w2");
    check_value(b, s2, "w1", "alice-s2-w1");
    set_key(b, "bob");
    check_value(b, s1, "w1", "bob-w1");
}

static void test_key_group_ownership(void **state) {
    sl_keyed_backend_t *b;
    assert_int_equal(sl_heap_backend_create(MAXP, 10, 20, &b), 0);
    uint32_t id;
    assert_int_equal(sl_state_register(b, "v", SL_STATE_VALUE, &id), 0);
    sl_keyed_backend_set_key(b, "k", 1, 10);
    put_value(b, id, "", "ten");
    sl_keyed_backend_set_key(b, "k", 1, 20);
    put_value(b, id, "", "twenty");
    sl_keyed_backend_set_key(b, "k", 1, 10);
    check_value(b, id, "", "ten");
    sl_keyed_backend_set_key(b, "k", 1, 9);
    assert_int_equal(sl_state_value_put(b, id, "", 0, "x", 1), SL_EINVAL);
    const void *v;
    uint32_t len;
    assert_int_equal(sl_state_value_get(b, id, "", 0, &v, &len), SL_EINVAL);
    sl_keyed_backend_set_key(b, "k", 1, 21);
    assert_int_equal(sl_state_value_put(b, id, "", 0, "x", 1), SL_EINVAL);
    sl_keyed_backend_destroy(b);
}

typedef struct {
    int n;
    char items[64][32];
    uint32_t lens[64];
    int stop_after;
    bool ukey_null;
} collect_t;

static int collect(void *arg, const void *uk, uint32_t uklen, const void *val, uint32_t vlen) {
    collect_t *c = arg;
    assert_true(c->n < 64);
    assert_true(vlen < 32);
    if (uk == NULL)
        c->ukey_null = true;
    if (uk) {
        /* maps: "ukey=value" */
        snprintf(c->items[c->n], 32, "%.*s=%.*s", (int)uklen, (const char *)uk, (int)vlen, (const char *)val);
    } else {
        memcpy(c->items[c->n], val, vlen);
        c->items[c->n][vlen] = '\0';
    }
    c->lens[c->n] = vlen;
    c->n++;
    return c->stop_after && c->n == c->stop_after ? 7 : 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static void test_list(void **state) {
    sl_keyed_backend_t *b = *state;
    uint32_t id;
    assert_int_equal(sl_state_register(b, "l", SL_STATE_LIST, &id), 0);
    set_key(b, "alice");
    collect_t c = {0};
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 0);
    const char *vals[] = {"first", "", "third-is-longer", "4", "fifth"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(sl_state_list_add(b, id, "", 0, vals[i], (uint32_t)strlen(vals[i])), 0);
    set_key(b, "bob");
    assert_int_equal(sl_state_list_add(b, id, "", 0, "bob1", 4), 0);
    assert_int_equal(sl_state_list_add(b, id, "ns", 2, "bob-ns", 6), 0);
    set_key(b, "alice");
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 5);
    assert_true(c.ukey_null);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(c.items[i], vals[i]);
        assert_int_equal(c.lens[i], strlen(vals[i]));
    }
    /* A non-zero callback result stops and is returned. */
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 7);
    assert_int_equal(c.n, 2);
    /* Clear, then the list starts over. */
    assert_int_equal(sl_state_remove(b, id, "", 0), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(sl_state_list_add(b, id, "", 0, "again", 5), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.items[0], "again");
    /* Bob's lists are untouched. */
    set_key(b, "bob");
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.items[0], "bob1");
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "ns", 2, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.items[0], "bob-ns");
}

static int count_list(void *arg, const void *uk, uint32_t uklen, const void *val, uint32_t vlen) {
    int *n = arg;
    int v;
    assert_int_equal(vlen, sizeof v);
    memcpy(&v, val, sizeof v);
    assert_int_equal(v, *n); /* in order */
    (*n)++;
    return 0;
}

static void test_long_list(void **state) {
    sl_keyed_backend_t *b = *state;
    uint32_t id;
    assert_int_equal(sl_state_register(b, "l", SL_STATE_LIST, &id), 0);
    set_key(b, "k");
    for (int i = 0; i < 5000; i++)
        assert_int_equal(sl_state_list_add(b, id, "n", 1, &i, sizeof i), 0);
    int n = 0;
    assert_int_equal(sl_state_iterate(b, id, "n", 1, count_list, &n), 0);
    assert_int_equal(n, 5000);
}

static void test_map(void **state) {
    sl_keyed_backend_t *b = *state;
    uint32_t id;
    assert_int_equal(sl_state_register(b, "m", SL_STATE_MAP, &id), 0);
    set_key(b, "alice");
    const void *v;
    uint32_t len;
    assert_int_equal(sl_state_map_get(b, id, "", 0, "x", 1, &v, &len), 0);
    assert_int_equal(sl_state_map_put(b, id, "", 0, "x", 1, "1", 1), 0);
    assert_int_equal(sl_state_map_put(b, id, "", 0, "y", 1, "22", 2), 0);
    assert_int_equal(sl_state_map_put(b, id, "", 0, "z", 1, "333", 3), 0);
    assert_int_equal(sl_state_map_put(b, id, "", 0, "y", 1, "two", 3), 0); /* overwrite */
    assert_int_equal(sl_state_map_put(b, id, "w2", 2, "x", 1, "other-ns", 8), 0);
    set_key(b, "bob");
    assert_int_equal(sl_state_map_get(b, id, "", 0, "x", 1, &v, &len), 0);
    assert_int_equal(sl_state_map_put(b, id, "", 0, "x", 1, "bob", 3), 0);
    set_key(b, "alice");
    assert_int_equal(sl_state_map_get(b, id, "", 0, "x", 1, &v, &len), 1);
    assert_int_equal(len, 1);
    assert_memory_equal(v, "1", 1);
    assert_int_equal(sl_state_map_get(b, id, "", 0, "y", 1, &v, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "two", 3);
    assert_int_equal(sl_state_map_get(b, id, "w2", 2, "x", 1, &v, &len), 1);
    assert_memory_equal(v, "other-ns", 8);
    assert_int_equal(sl_state_map_get(b, id, "", 0, "q", 1, &v, &len), 0);

    collect_t c = {0};
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 3);
    qsort(c.items, (size_t)c.n, sizeof c.items[0], cmp_str);
    assert_string_equal(c.items[0], "x=1");
    assert_string_equal(c.items[1], "y=two");
    assert_string_equal(c.items[2], "z=333");

    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 7);
    assert_int_equal(c.n, 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "absent-ns", 9, collect, &c), 0);
    assert_int_equal(c.n, 0);

    assert_int_equal(sl_state_map_remove(b, id, "", 0, "y", 1), 0);
    assert_int_equal(sl_state_map_get(b, id, "", 0, "y", 1, &v, &len), 0);
    assert_int_equal(sl_state_map_remove(b, id, "", 0, "absent", 6), 0);
    assert_int_equal(sl_state_map_remove(b, id, "no-ns", 5, "x", 1), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 2);
    /* Removing the whole map at (alice, "") leaves (alice, "w2") and bob. */
    assert_int_equal(sl_state_remove(b, id, "", 0), 0);
    assert_int_equal(sl_state_map_get(b, id, "", 0, "x", 1, &v, &len), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(sl_state_map_get(b, id, "w2", 2, "x", 1, &v, &len), 1);
    set_key(b, "bob");
    assert_int_equal(sl_state_map_get(b, id, "", 0, "x", 1, &v, &len), 1);
    assert_memory_equal(v, "bob", 3);
    /* Removing the last user key empties the map: (bob, "") no longer has an entry. */
    assert_int_equal(sl_state_map_remove(b, id, "", 0, "x", 1), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(sl_state_iterate(b, id, "", 0, collect, &c), 0);
    assert_int_equal(c.n, 0);
    /* Maps still held at destroy are freed by the backend (checked by LSan). */
}

typedef struct {
    int n;
    char seen[16][32];
} keys_t;

static int collect_keys(void *arg, const void *key, uint32_t key_len, uint32_t kg, const void *ns,
                        uint32_t ns_len) {
    keys_t *k = arg;
    assert_true(k->n < 16);
    assert_int_equal(kg, kg_of(key, key_len));
    snprintf(k->seen[k->n], 32, "%.*s/%.*s", (int)key_len, (const char *)key, (int)ns_len, (const char *)ns);
    k->n++;
    return 0;
}

static int stop_first(void *arg, const void *key, uint32_t key_len, uint32_t kg, const void *ns,
                      uint32_t ns_len) {
    (*(int *)arg)++;
    return 5;
}

static void test_for_each_key(void **state) {
    sl_keyed_backend_t *b = *state;
    uint32_t v, l, m;
    assert_int_equal(sl_state_register(b, "v", SL_STATE_VALUE, &v), 0);
    assert_int_equal(sl_state_register(b, "l", SL_STATE_LIST, &l), 0);
    assert_int_equal(sl_state_register(b, "m", SL_STATE_MAP, &m), 0);
    keys_t k = {0};
    assert_int_equal(sl_state_for_each_key(b, v, collect_keys, &k), 0);
    assert_int_equal(k.n, 0);
    const char *keys[] = {"alice", "bob", "carol", "dave"};
    for (int i = 0; i < 4; i++) {
        set_key(b, keys[i]);
        put_value(b, v, "", "x");
        if (i % 2 == 0)
            put_value(b, v, "w", "y");
    }
    set_key(b, "erin");
    assert_int_equal(sl_state_list_add(b, l, "", 0, "x", 1), 0);
    assert_int_equal(sl_state_map_put(b, m, "n", 1, "u", 1, "x", 1), 0);
    /* Remove one so it must not be visited. */
    set_key(b, "dave");
    assert_int_equal(sl_state_remove(b, v, "", 0), 0);

    assert_int_equal(sl_state_for_each_key(b, v, collect_keys, &k), 0);
    assert_int_equal(k.n, 5);
    qsort(k.seen, (size_t)k.n, sizeof k.seen[0], cmp_str);
    assert_string_equal(k.seen[0], "alice/");
    assert_string_equal(k.seen[1], "alice/w");
    assert_string_equal(k.seen[2], "bob/");
    assert_string_equal(k.seen[3], "carol/");
    assert_string_equal(k.seen[4], "carol/w");

    memset(&k, 0, sizeof k);
    assert_int_equal(sl_state_for_each_key(b, l, collect_keys, &k), 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.seen[0], "erin/");
    memset(&k, 0, sizeof k);
    assert_int_equal(sl_state_for_each_key(b, m, collect_keys, &k), 0);
    assert_int_equal(k.n, 1);
    assert_string_equal(k.seen[0], "erin/n");

    int calls = 0;
    assert_int_equal(sl_state_for_each_key(b, v, stop_first, &calls), 5);
    assert_int_equal(calls, 1);
    assert_int_equal(sl_state_for_each_key(b, 99, stop_first, &calls), SL_EINVAL);
}

static int count_keys(void *arg, const void *key, uint32_t key_len, uint32_t kg, const void *ns,
                      uint32_t ns_len) {
    uint8_t *seen = arg;
    uint32_t i;
    assert_int_equal(key_len, sizeof i);
    memcpy(&i, key, sizeof i);
    assert_true(i < 100000);
    assert_int_equal(seen[i], 0);
    seen[i] = 1;
    return 0;
}

static void test_many_keys(void **state) {
    sl_keyed_backend_t *b = *state;
    uint32_t id;
    enum { N = 100000 };
    assert_int_equal(sl_state_register(b, "v", SL_STATE_VALUE, &id), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint64_t val = (uint64_t)i * 7919u + 3;
        sl_keyed_backend_set_key(b, &i, sizeof i, kg_of(&i, sizeof i));
        assert_int_equal(sl_state_value_put(b, id, "ns", 2, &val, sizeof val), 0);
    }
    size_t mem = b->vt->memory_bytes(b);
    assert_true(mem > (size_t)N * 8);
    /* Remove every third key: exercises deletion inside probe clusters. */
    for (uint32_t i = 0; i < N; i += 3) {
        sl_keyed_backend_set_key(b, &i, sizeof i, kg_of(&i, sizeof i));
        assert_int_equal(sl_state_remove(b, id, "ns", 2), 0);
    }
    for (uint32_t i = 0; i < N; i++) {
        sl_keyed_backend_set_key(b, &i, sizeof i, kg_of(&i, sizeof i));
        const void *v;
        uint32_t len;
        int rc = sl_state_value_get(b, id, "ns", 2, &v, &len);
        if (i % 3 == 0) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, 1);
            assert_int_equal(len, 8);
            uint64_t got;
            memcpy(&got, v, 8);
            assert_int_equal(got, (uint64_t)i * 7919u + 3);
        }
        assert_int_equal(sl_state_value_get(b, id, "nt", 2, &v, &len), 0);
    }
    uint8_t *seen = calloc(N, 1);
    assert_non_null(seen);
    assert_int_equal(sl_state_for_each_key(b, id, count_keys, seen), 0);
    int total = 0;
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(seen[i], i % 3 != 0);
        total += seen[i];
    }
    assert_int_equal(total, N - (N + 2) / 3);
    free(seen);
    /* Removing frees heap memory; in RocksDB a delete first adds a tombstone. */
    if (!is_rocksdb)
        assert_true(b->vt->memory_bytes(b) < mem);
}

int main(void) {
    const struct CMUnitTest heap[] = {
        cmocka_unit_test(test_create_args),
        cmocka_unit_test(test_key_group_ownership),
        cmocka_unit_test_setup_teardown(test_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_for_each_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_keys, setup, teardown),
    };
    const struct CMUnitTest rocksdb[] = {
        cmocka_unit_test_setup_teardown(test_register, setup_rocksdb, teardown_rocksdb),
        cmocka_unit_test_setup_teardown(test_value_basic, setup_rocksdb, teardown_rocksdb),
        cmocka_unit_test_setup_teardown(test_value_isolation, setup_rocksdb, teardown_rocksdb),
        cmocka_unit_test_setup_teardown(test_list, setup_rocksdb, teardown_rocksdb),
        cmocka_unit_test_setup_teardown(test_long_list, setup_rocksdb, teardown_rocksdb),
        cmocka_unit_test_setup_teardown(test_map, setup_rocksdb, teardown_rocksdb),
        cmocka_unit_test_setup_teardown(test_for_each_key, setup_rocksdb, teardown_rocksdb),
        cmocka_unit_test_setup_teardown(test_many_keys, setup_rocksdb, teardown_rocksdb),
    };
    int failed = cmocka_run_group_tests_name("heap", heap, NULL, NULL);
    return failed + cmocka_run_group_tests_name("rocksdb", rocksdb, NULL, NULL);
}
