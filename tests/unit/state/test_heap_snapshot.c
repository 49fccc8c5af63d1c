/* Copy-on-write snapshots of the heap backend (state/heap_backend.h, sl_state_snapshot_capture):
 * a capture taken, then the state heavily changed (puts, in-place updates, removes, new keys,
 * list appends, map changes, new states, timers) before or while another thread writes it: the
 * written bytes are exactly those a synchronous snapshot wrote at capture time, their restore
 * equals the state at capture time, nothing a snapshot kept is left once it is released, and
 * the live state ends equal to a backend that received the same operations and was never
 * snapshotted. Random operations from fixed seeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/key_group.h"
#include "core/murmur.h"
#include "state/heap_backend.h"
#include "state/snapshot.h"

#define MAXP 128
#define NKEYS 600

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

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static uint32_t kg_of(uint32_t k) { return sl_key_group_of(sl_murmur3_32(&k, 4, 0), MAXP); }

/* The same backend and timers twice: `a` is snapshotted, `b` never is. */
typedef struct {
    sl_keyed_backend_t *b[2];
    sl_timer_service_t *t[2];
    uint32_t nstates;
} pair_t;

static const char *const names[] = {"v", "l", "m", "v2", "l2", "m2"};
static const sl_state_kind_t kinds[] = {SL_STATE_VALUE, SL_STATE_LIST, SL_STATE_MAP,
                                        SL_STATE_VALUE, SL_STATE_LIST, SL_STATE_MAP};

static void pair_register(pair_t *p, uint32_t n) {
    for (; p->nstates < n; p->nstates++)
        for (int i = 0; i < 2; i++) {
            uint32_t id;
            assert_int_equal(sl_state_register(p->b[i], names[p->nstates], kinds[p->nstates], &id), 0);
            assert_int_equal(id, p->nstates);
        }
}

/* One random operation, applied to both backends. */
static void random_op(pair_t *p, uint64_t *seed) {
    uint32_t k = (uint32_t)(rnd(seed) % NKEYS), id = (uint32_t)(rnd(seed) % p->nstates);
    char ns[2] = {(char)('a' + rnd(seed) % 3), 0};
    uint32_t nslen = (uint32_t)(rnd(seed) % 2);
    uint8_t val[200];
    uint32_t vlen = (uint32_t)(rnd(seed) % 48);
    if (rnd(seed) % 8 == 0)
        vlen = 60 + (uint32_t)(rnd(seed) % 140);
    for (uint32_t i = 0; i < vlen; i++)
        val[i] = (uint8_t)rnd(seed);
    uint32_t op = (uint32_t)(rnd(seed) % 10), uk = (uint32_t)(rnd(seed) % 24);
    int64_t ts = (int64_t)(rnd(seed) % 50);
    for (int i = 0; i < 2; i++) {
        sl_keyed_backend_t *b = p->b[i];
        sl_keyed_backend_set_key(b, &k, 4, kg_of(k));
        switch (kinds[id]) {
        case SL_STATE_VALUE:
            if (op < 4) {
                assert_int_equal(sl_state_value_put(b, id, ns, nslen, val, vlen), 0);
            } else if (op < 6) {
                void *v;
                bool created;
                assert_int_equal(b->vt->value_update(b, id, ns, nslen, 8, &v, &created), 0);
                memcpy(v, val, vlen < 8 ? vlen : 8);
            } else if (op < 8) {
                void *v;
                uint32_t len;
                int rc = b->vt->value_mut(b, id, ns, nslen, &v, &len);
                assert_true(rc >= 0);
                if (rc == 1 && len)
                    ((uint8_t *)v)[val[0] % len] ^= 0x5a;
            } else {
                assert_int_equal(sl_state_remove(b, id, ns, nslen), 0);
            }
            break;
        case SL_STATE_LIST:
            if (op < 7) {
                assert_int_equal(sl_state_list_add(b, id, ns, nslen, val, vlen), 0);
            } else if (op < 8) {
                /* A restore-style put of a whole list value. */
                uint8_t lv[8] = {4, 0, 0, 0, 'x', 'y', 'z', 'w'};
                assert_int_equal(b->vt->raw_put(b, id, ns, nslen, NULL, 0, lv, 8), 0);
            } else {
                assert_int_equal(sl_state_remove(b, id, ns, nslen), 0);
            }
            break;
        case SL_STATE_MAP:
            if (op < 6)
                assert_int_equal(sl_state_map_put(b, id, ns, nslen, &uk, 4, val, vlen), 0);
            else if (op < 9)
                assert_int_equal(sl_state_map_remove(b, id, ns, nslen, &uk, 4), 0);
            else
                assert_int_equal(sl_state_remove(b, id, ns, nslen), 0);
            break;
        }
        if (op == 3)
            assert_int_equal(sl_timer_register(p->t[i], (sl_timer_domain_t)(k % 2), ts, &k, 4, kg_of(k), ns, nslen), 0);
        if (op == 4)
            assert_int_equal(sl_timer_delete(p->t[i], (sl_timer_domain_t)(k % 2), ts, &k, 4, kg_of(k), ns, nslen), 0);
    }
}

/* The backend's state and timers as snapshot bytes (synchronous, deterministic order). */
static buf_t sync_bytes(sl_keyed_backend_t *b, sl_timer_service_t *t) {
    buf_t out = {0};
    assert_int_equal(sl_state_snapshot_write(b, t, to_buf, &out), 0);
    return out;
}

static void assert_same_bytes(const buf_t *x, const buf_t *y) {
    assert_int_equal(x->n, y->n);
    assert_memory_equal(x->p, y->p, x->n);
}

typedef struct {
    sl_state_capture_t *c;
    buf_t out;
    int rc;
} writer_t;

static void *write_thread(void *arg) {
    writer_t *w = arg;
    w->rc = sl_state_capture_write(w->c, to_buf, &w->out);
    sl_state_capture_release(w->c);
    return NULL;
}

/* Every entry and timer, as sorted text. */
typedef struct {
    char **lines;
    uint32_t n;
} dump_t;

static void add_line(dump_t *d, const char *prefix, const void *const *parts, const uint32_t *lens, int nparts) {
    size_t cap = 64;
    for (int i = 0; i < nparts; i++)
        cap += 2 * (size_t)lens[i] + 1;
    char *line = malloc(cap);
    int o = snprintf(line, cap, "%s|", prefix);
    for (int i = 0; i < nparts; i++) {
        for (uint32_t j = 0; j < lens[i]; j++) {
            uint8_t c = ((const uint8_t *)parts[i])[j];
            line[o++] = "0123456789abcdef"[c >> 4];
            line[o++] = "0123456789abcdef"[c & 15];
        }
        line[o++] = '|';
    }
    line[o] = '\0';
    d->lines = realloc(d->lines, (d->n + 1) * sizeof *d->lines);
    d->lines[d->n++] = line;
}

typedef struct {
    dump_t *d;
    const char *state;
} dump_ctx_t;

static int dump_entry(void *arg, uint32_t kg, const void *key, uint32_t klen, const void *ns, uint32_t nslen,
                      const void *uk, uint32_t uklen, const void *val, uint32_t vlen) {
    dump_ctx_t *c = arg;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s|%u", c->state, kg);
    const void *parts[4] = {key, ns, uk, val};
    uint32_t lens[4] = {klen, nslen, uklen, vlen};
    add_line(c->d, prefix, parts, lens, 4);
    return 0;
}

typedef struct {
    dump_t *d;
    int domain;
} timer_dump_t;

static int dump_timer(void *arg, const sl_timer_t *t) {
    timer_dump_t *c = arg;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "timer%d|%lld|%u", c->domain, (long long)t->ts, t->key_group);
    const void *parts[2] = {t->key, t->ns};
    uint32_t lens[2] = {t->key_len, t->ns_len};
    add_line(c->d, prefix, parts, lens, 2);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *dump(sl_keyed_backend_t *b, sl_timer_service_t *t) {
    dump_t d = {NULL, 0};
    for (uint32_t s = 0; s < sl_state_count(b); s++) {
        sl_state_kind_t kind;
        dump_ctx_t c = {&d, NULL};
        sl_state_info(b, s, &c.state, &kind);
        assert_int_equal(b->vt->for_each_entry(b, s, dump_entry, &c), 0);
    }
    for (int dom = 0; dom < 2; dom++) {
        timer_dump_t c = {&d, dom};
        assert_int_equal(sl_timer_for_each(t, (sl_timer_domain_t)dom, dump_timer, &c), 0);
    }
    qsort(d.lines, d.n, sizeof *d.lines, cmp);
    size_t len = 1;
    for (uint32_t i = 0; i < d.n; i++)
        len += strlen(d.lines[i]) + 1;
    char *out = calloc(1, len), *o = out;
    for (uint32_t i = 0; i < d.n; i++) {
        size_t n = strlen(d.lines[i]);
        memcpy(o, d.lines[i], n);
        o[n] = '\n';
        o += n + 1;
        free(d.lines[i]);
    }
    free(d.lines);
    return out;
}

/* Restoring `snap` into a fresh heap backend gives the state `expect` (a dump). */
static void assert_restores(const buf_t *snap, const char *expect) {
    sl_keyed_backend_t *b;
    sl_timer_service_t *t;
    assert_int_equal(sl_heap_backend_create(MAXP, 0, MAXP - 1, &b), 0);
    assert_int_equal(sl_timer_service_create(&t), 0);
    char err[256];
    assert_int_equal(sl_state_snapshot_restore(b, t, snap->p, snap->n, 0, MAXP - 1, err, sizeof err), 0);
    char *got = dump(b, t);
    assert_string_equal(got, expect);
    free(got);
    sl_keyed_backend_destroy(b);
    sl_timer_service_destroy(t);
}

static void run(uint64_t seed, bool concurrent) {
    pair_t p = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sl_heap_backend_create(MAXP, 0, MAXP - 1, &p.b[i]), 0);
        assert_int_equal(sl_timer_service_create(&p.t[i]), 0);
    }
    pair_register(&p, 3);
    for (int i = 0; i < 4000; i++)
        random_op(&p, &seed);
    for (int round = 0; round < 4; round++) {
        buf_t expect = sync_bytes(p.b[0], p.t[0]);
        char *state_then = dump(p.b[0], p.t[0]);
        writer_t w = {0};
        assert_int_equal(sl_state_snapshot_capture(p.b[0], p.t[0], &w.c), 0);
        sl_state_capture_t *again;
        assert_int_equal(sl_state_snapshot_capture(p.b[0], p.t[0], &again), SL_EAGAIN);
        pthread_t th;
        if (concurrent)
            assert_int_equal(pthread_create(&th, NULL, write_thread, &w), 0);
        if (round == 1)
            pair_register(&p, 6); /* states registered after the capture are not in it */
        for (int i = 0; i < 6000; i++)
            random_op(&p, &seed);
        if (!concurrent) {
            assert_true(sl_heap_backend_retired(p.b[0]) > 0);
            write_thread(&w);
        } else {
            assert_int_equal(pthread_join(th, NULL), 0);
        }
        assert_int_equal(w.rc, 0);
        assert_int_equal(sl_heap_backend_retired(p.b[0]), 0);
        assert_same_bytes(&w.out, &expect);
        assert_restores(&w.out, state_then);
        free(state_then);
        /* After the release: changes no longer copy, and the live state is still right. */
        for (int i = 0; i < 500; i++)
            random_op(&p, &seed);
        assert_int_equal(sl_heap_backend_retired(p.b[0]), 0);
        buf_t x = sync_bytes(p.b[0], p.t[0]), y = sync_bytes(p.b[1], p.t[1]);
        /* Same operations, so same tables, slot for slot: byte-identical snapshots. */
        assert_same_bytes(&x, &y);
        free(x.p);
        free(y.p);
        free(expect.p);
        free(w.out.p);
    }
    for (int i = 0; i < 2; i++) {
        sl_keyed_backend_destroy(p.b[i]);
        sl_timer_service_destroy(p.t[i]);
    }
}

static void test_changes_after_capture(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 2; seed++)
        run(seed * 0x9e3779b97f4a7c15ull, false);
}

static void test_changes_while_writing(void **state) {
    (void)state;
    for (uint64_t seed = 11; seed <= 12; seed++)
        run(seed * 0x9e3779b97f4a7c15ull, true);
}

/* A backend destroyed with a capture never written or released (a task that failed): the
 * owner releases it first; releasing frees everything it kept. */
static void test_release_unwritten(void **state) {
    (void)state;
    sl_keyed_backend_t *b;
    assert_int_equal(sl_heap_backend_create(MAXP, 0, MAXP - 1, &b), 0);
    uint32_t id;
    assert_int_equal(sl_state_register(b, "m", SL_STATE_MAP, &id), 0);
    for (uint32_t k = 0; k < 100; k++) {
        sl_keyed_backend_set_key(b, &k, 4, kg_of(k));
        assert_int_equal(sl_state_map_put(b, id, NULL, 0, "u", 1, &k, 4), 0);
    }
    sl_state_capture_t *c;
    assert_int_equal(sl_state_snapshot_capture(b, NULL, &c), 0);
    for (uint32_t k = 0; k < 100; k++) {
        sl_keyed_backend_set_key(b, &k, 4, kg_of(k));
        assert_int_equal(k % 2 ? sl_state_remove(b, id, NULL, 0) : sl_state_map_put(b, id, NULL, 0, "w", 1, "x", 1),
                         0);
    }
    assert_int_equal(sl_heap_backend_retired(b), 200); /* per key its map and the block pointing to it */
    sl_state_capture_release(c);
    assert_int_equal(sl_heap_backend_retired(b), 0);
    sl_keyed_backend_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes_after_capture),
        cmocka_unit_test(test_changes_while_writing),
        cmocka_unit_test(test_release_unwritten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
