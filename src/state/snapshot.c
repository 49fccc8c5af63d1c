/* Portable keyed-state snapshots (see snapshot.h). Layout, little endian:
 *   "SLKS" u32 version | u32 nstates, per state: u8 kind, u16 name length, name |
 *   records: u8 tag 1 = entry: u32 state, u16 kg, u32 klen, key, u32 nslen, ns, u32 uklen, uk,
 *                              u32 vlen, value
 *            u8 tag 2 = timer: u8 domain, i64 ts, u16 kg, u32 klen, key, u32 nslen, ns
 *            u8 tag 0 = end.
 * Writes go through a small buffer to the sink; reads check every length against the input.
 * Entries of a state with TTL that have expired are left out, and so are the expired elements
 * of a list (Flink's cleanupFullSnapshot): a restore never brings back dead state. */
#include "state/snapshot.h"

#include <sluice/error.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "state/heap_backend.h"

#define MAGIC "SLKS"
#define VERSION 1
#define MAX_STATES 64

typedef struct {
    sl_snapshot_sink_fn sink;
    void *arg;
    uint8_t buf[64 * 1024];
    size_t n;
    int rc;
} out_t;

static void flush(out_t *o) {
    if (o->rc == 0 && o->n)
        o->rc = o->sink(o->arg, o->buf, o->n);
    o->n = 0;
}

static void put(out_t *o, const void *p, size_t len) {
    if (o->rc)
        return;
    if (len > sizeof o->buf - o->n) {
        flush(o);
        if (len > sizeof o->buf) {
            o->rc = o->rc ? o->rc : o->sink(o->arg, p, len);
            return;
        }
    }
    memcpy(o->buf + o->n, p, len);
    o->n += len;
}

static void put_u8(out_t *o, uint8_t v) { put(o, &v, 1); }
static void put_u16(out_t *o, uint16_t v) { put(o, &v, 2); }
static void put_u32(out_t *o, uint32_t v) { put(o, &v, 4); }
static void put_bytes(out_t *o, const void *p, uint32_t len) {
    put_u32(o, len);
    if (len)
        put(o, p, len);
}

typedef struct {
    out_t *o;
    uint32_t state;
    bool ttl;    /* values start with their expiry (state/keyed_state.h) */
    bool list;   /* values are [u32 len][bytes] elements, each with its own expiry */
    int64_t now; /* with ttl: what expires at or before this is left out */
} entry_ctx_t;

/* With TTL: whether the element or value at v[0..len) is dead at c->now. One too short to hold
 * an expiry is kept; the reader reports it. */
static bool dead(const entry_ctx_t *c, const uint8_t *v, uint32_t len) {
    int64_t at;
    if (!c->ttl || len < 8)
        return false;
    memcpy(&at, v, 8);
    return at <= c->now;
}

/* The bytes of the live elements of a list value, or `vlen` when it is not a well-formed list
 * (written as it is). */
static uint32_t live_list_bytes(const entry_ctx_t *c, const uint8_t *v, uint32_t vlen) {
    uint32_t off = 0, live = 0, n;
    while (off < vlen) {
        memcpy(&n, v + off, 4);
        if (vlen - off < 4 || n > vlen - off - 4)
            return vlen;
        if (!dead(c, v + off + 4, n))
            live += 4 + n;
        off += 4 + n;
    }
    return live;
}

static int write_entry(void *arg, uint32_t kg, const void *key, uint32_t klen, const void *ns, uint32_t nslen,
                       const void *uk, uint32_t uklen, const void *val, uint32_t vlen) {
    entry_ctx_t *c = arg;
    const uint8_t *v = val;
    uint32_t live = vlen;
    if (c->ttl && c->list)
        live = live_list_bytes(c, v, vlen);
    else if (dead(c, v, vlen))
        live = 0;
    if (live == 0 && vlen != 0)
        return 0;
    put_u8(c->o, 1);
    put_u32(c->o, c->state);
    put_u16(c->o, (uint16_t)kg);
    put_bytes(c->o, key, klen);
    put_bytes(c->o, ns, nslen);
    put_bytes(c->o, uk, uklen);
    if (live == vlen) {
        put_bytes(c->o, val, vlen);
        return c->o->rc;
    }
    /* Some elements of the list are dead: the live ones, streamed without a copy. */
    put_u32(c->o, live);
    for (uint32_t off = 0, n; off < vlen; off += 4 + n) {
        memcpy(&n, v + off, 4);
        if (!dead(c, v + off + 4, n))
            put(c->o, v + off, 4 + (size_t)n);
    }
    return c->o->rc;
}

typedef struct {
    out_t *o;
    uint8_t domain;
} timer_ctx_t;

static int write_timer(void *arg, const sl_timer_t *t) {
    timer_ctx_t *c = arg;
    put_u8(c->o, 2);
    put_u8(c->o, c->domain);
    put(c->o, &t->ts, 8);
    put_u16(c->o, (uint16_t)t->key_group);
    put_bytes(c->o, t->key, t->key_len);
    put_bytes(c->o, t->ns, t->ns_len);
    return c->o->rc;
}

/* Where the states come from: a live backend, or a heap backend's copy-on-write snapshot. */
typedef struct {
    sl_keyed_backend_t *b;
    sl_heap_snapshot_t *snap;
} source_t;

static uint32_t source_count(const source_t *s) {
    return s->snap ? sl_heap_snapshot_state_count(s->snap) : s->b ? sl_state_count(s->b) : 0;
}

static void source_info(const source_t *s, uint32_t id, const char **name, sl_state_kind_t *kind) {
    if (s->snap)
        sl_heap_snapshot_state_info(s->snap, id, name, kind);
    else
        sl_state_info(s->b, id, name, kind);
}

/* True and the time expiry is read against when state `id` has a TTL. */
static bool source_ttl(const source_t *s, uint32_t id, int64_t *now) {
    if (s->snap)
        return sl_heap_snapshot_ttl_now(s->snap, id, now);
    sl_state_clock_fn clock = sl_state_ttl_clock(s->b, id);
    if (clock)
        *now = clock();
    return clock != NULL;
}

static int source_entries(const source_t *s, uint32_t id, sl_state_entry_cb cb, void *arg) {
    return s->snap ? sl_heap_snapshot_for_each_entry(s->snap, id, cb, arg) : s->b->vt->for_each_entry(s->b, id, cb, arg);
}

static out_t *out_new(sl_snapshot_sink_fn sink, void *arg) {
    out_t *o = malloc(sizeof *o);
    if (o) {
        o->sink = sink;
        o->arg = arg;
        o->n = 0;
        o->rc = 0;
    }
    return o;
}

static int write_timers(out_t *o, const sl_timer_service_t *t) {
    int rc = 0;
    for (uint8_t d = 0; d < 2 && rc == 0 && t; d++) {
        timer_ctx_t c = {o, d};
        rc = sl_timer_for_each(t, (sl_timer_domain_t)d, write_timer, &c);
    }
    return rc;
}

/* Header, entries (when `entries`), then either the live timers of `t` or `timers`, the timer
 * records serialised earlier, then the end record. */
static int write_snapshot(const source_t *src, const sl_timer_service_t *t, const void *timers, size_t timers_len,
                          bool entries, sl_snapshot_sink_fn sink, void *arg) {
    out_t *o = out_new(sink, arg);
    if (o == NULL)
        return SL_ENOMEM;
    put(o, MAGIC, 4);
    put_u32(o, VERSION);
    uint32_t nstates = source_count(src);
    put_u32(o, nstates);
    for (uint32_t i = 0; i < nstates; i++) {
        const char *name;
        sl_state_kind_t kind;
        source_info(src, i, &name, &kind);
        put_u8(o, (uint8_t)kind);
        put_u16(o, (uint16_t)strlen(name));
        put(o, name, strlen(name));
    }
    int rc = 0;
    for (uint32_t i = 0; entries && i < nstates && rc == 0; i++) {
        const char *name;
        sl_state_kind_t kind;
        source_info(src, i, &name, &kind);
        entry_ctx_t c = {o, i, false, kind == SL_STATE_LIST, 0};
        c.ttl = source_ttl(src, i, &c.now);
        rc = source_entries(src, i, write_entry, &c);
    }
    if (rc == 0 && timers_len)
        put(o, timers, timers_len);
    else if (rc == 0)
        rc = write_timers(o, t);
    put_u8(o, 0);
    flush(o);
    rc = rc ? rc : o->rc;
    free(o);
    return rc;
}

/* ---- asynchronous snapshots ---- */

struct sl_state_capture_s {
    source_t src;
    uint8_t *timers; /* timer records, as write_timer writes them */
    size_t timers_len, timers_cap;
};

static int to_capture(void *arg, const void *data, size_t len) {
    sl_state_capture_t *c = arg;
    if (len > c->timers_cap - c->timers_len) {
        size_t cap = c->timers_cap ? c->timers_cap : 64 * 1024;
        while (cap - c->timers_len < len)
            cap *= 2;
        uint8_t *p = sl_realloc(c->timers, cap);
        if (p == NULL)
            return SL_ENOMEM;
        c->timers = p;
        c->timers_cap = cap;
    }
    memcpy(c->timers + c->timers_len, data, len);
    c->timers_len += len;
    return 0;
}

int sl_state_snapshot_capture(sl_keyed_backend_t *b, const sl_timer_service_t *t, sl_state_capture_t **out) {
    if (b != NULL && !sl_heap_backend_is(b))
        return SL_EINVAL;
    sl_state_capture_t *c = sl_calloc(1, sizeof *c);
    out_t *o = out_new(to_capture, c);
    int rc = c && o ? 0 : SL_ENOMEM;
    /* Timers are serialised now, in memory: they are few next to keyed state (one per key and
     * window at most), and the timer service has no copy-on-write view. */
    if (rc == 0) {
        rc = write_timers(o, t);
        flush(o);
        rc = rc ? rc : o->rc;
    }
    free(o);
    if (rc == 0 && b)
        rc = sl_heap_snapshot_open(b, &c->src.snap);
    if (rc) {
        if (c)
            sl_free(c->timers);
        sl_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int sl_state_capture_write(sl_state_capture_t *c, sl_snapshot_sink_fn sink, void *arg) {
    return write_snapshot(&c->src, NULL, c->timers, c->timers_len, true, sink, arg);
}

void sl_state_capture_release(sl_state_capture_t *c) {
    if (c == NULL)
        return;
    sl_heap_snapshot_close(c->src.snap);
    sl_free(c->timers);
    sl_free(c);
}

/* ---- reading ---- */

typedef struct {
    const uint8_t *p;
    size_t len, off;
    char *err;
    size_t errlen;
} in_t;

static int bad(in_t *in, const char *what) {
    snprintf(in->err, in->errlen, "corrupt state snapshot at byte %zu: %s", in->off, what);
    return SL_EPARSE;
}

static int get(in_t *in, void *out, size_t n, const char *what) {
    if (n > in->len - in->off)
        return bad(in, what);
    memcpy(out, in->p + in->off, n);
    in->off += n;
    return 0;
}

static int get_bytes(in_t *in, const uint8_t **out, uint32_t *len, const char *what) {
    int rc = get(in, len, 4, what);
    if (rc)
        return rc;
    if (*len > in->len - in->off)
        return bad(in, what);
    *out = in->p + in->off;
    in->off += *len;
    return 0;
}

int sl_state_snapshot_restore(sl_keyed_backend_t *b, sl_timer_service_t *t, const uint8_t *data, size_t len,
                              uint32_t kg_first, uint32_t kg_last, char *err, size_t errlen) {
    in_t in = {data, len, 0, err, errlen};
    char magic[4];
    uint32_t version, nstates;
    int rc = get(&in, magic, 4, "header");
    if (rc == 0 && memcmp(magic, MAGIC, 4) != 0)
        return bad(&in, "not a Sluice state snapshot");
    if (rc == 0 && (rc = get(&in, &version, 4, "version")) == 0 && version != VERSION)
        return bad(&in, "unsupported version");
    if (rc == 0 && (rc = get(&in, &nstates, 4, "state count")) == 0 && nstates > MAX_STATES)
        return bad(&in, "too many states");
    uint32_t ids[MAX_STATES];
    for (uint32_t i = 0; rc == 0 && i < nstates; i++) {
        uint8_t kind;
        uint16_t nlen;
        char name[256];
        if ((rc = get(&in, &kind, 1, "state kind")) || (rc = get(&in, &nlen, 2, "state name")))
            break;
        if (kind > SL_STATE_MAP || nlen == 0 || nlen >= sizeof name)
            return bad(&in, "bad state kind or name");
        if ((rc = get(&in, name, nlen, "state name")) != 0)
            break;
        name[nlen] = '\0';
        if (b == NULL)
            return bad(&in, "keyed state in the snapshot of a non-keyed task");
        if ((rc = sl_state_register(b, name, (sl_state_kind_t)kind, &ids[i])) != 0) {
            snprintf(err, errlen, "state '%s' in the snapshot does not match the job's (kind differs)", name);
            return rc;
        }
    }
    for (;;) {
        uint8_t tag;
        if (rc || (rc = get(&in, &tag, 1, "record tag")) != 0)
            return rc;
        if (tag == 0)
            return in.off == in.len ? 0 : bad(&in, "bytes after the end record");
        uint32_t state = 0;
        uint8_t domain = 0;
        int64_t ts = 0;
        uint16_t kg;
        const uint8_t *key, *ns, *uk = NULL, *val = NULL;
        uint32_t klen, nslen, uklen = 0, vlen = 0;
        if (tag == 1)
            rc = get(&in, &state, 4, "entry state");
        else if (tag == 2)
            rc = get(&in, &domain, 1, "timer domain") || get(&in, &ts, 8, "timer time") ? SL_EPARSE : 0;
        else
            return bad(&in, "unknown record tag");
        if (rc || (rc = get(&in, &kg, 2, "key group")) || (rc = get_bytes(&in, &key, &klen, "key")) ||
            (rc = get_bytes(&in, &ns, &nslen, "namespace")))
            return rc;
        if (tag == 1 && ((rc = get_bytes(&in, &uk, &uklen, "user key")) || (rc = get_bytes(&in, &val, &vlen, "value"))))
            return rc;
        if ((tag == 1 && state >= nstates) || (tag == 2 && domain > 1))
            return bad(&in, "state or timer domain out of range");
        if (kg < kg_first || kg > kg_last)
            continue; /* another subtask's key group (rescaling) */
        if (tag == 1) {
            sl_keyed_backend_set_key(b, key, klen, kg);
            rc = b->vt->raw_put(b, ids[state], ns, nslen, uk, uklen, val, vlen);
        } else if (t) {
            rc = sl_timer_register(t, (sl_timer_domain_t)domain, ts, key, klen, kg, ns, nslen);
        }
    }
}

int sl_state_snapshot_write(sl_keyed_backend_t *b, const sl_timer_service_t *t, sl_snapshot_sink_fn sink, void *arg) {
    source_t src = {b, NULL};
    return write_snapshot(&src, t, NULL, 0, true, sink, arg);
}

int sl_state_snapshot_write_meta(sl_keyed_backend_t *b, const sl_timer_service_t *t, sl_snapshot_sink_fn sink,
                                 void *arg) {
    source_t src = {b, NULL};
    return write_snapshot(&src, t, NULL, 0, false, sink, arg);
}
