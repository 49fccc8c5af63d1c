/* Windowed aggregation on a keyed stream: tumbling, sliding and session windows over event or
 * processing time, with allowed lateness.
 *
 * Tumbling and sliding windows whose size is a multiple of the slide are sliced (as Flink
 * SQL's window slicing does): a row updates one accumulator, that of its slice of `slide` ms,
 * and a window's result merges its size/slide slices when its timer fires at end - 1. So a
 * row costs one state update however many windows it belongs to. Other sliding windows keep
 * one accumulator per window (namespace = (start, end)).
 * With allowed lateness the state stays until end - 1 + lateness, and a late row in that span
 * updates its windows and re-emits them at once (Flink's late firing). Rows later than that
 * are dropped and counted. Session windows keep per key a small array of sessions that merge
 * when a row bridges them. */
#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "operators/operator.h"
#include "operators/window.h"

typedef struct {
    int64_t start, end, fired;
} session_hdr_t;

typedef struct {
    sl_operator_t base;
    sl_window_spec_t w;
    sl_agg_list_t aggs;
    uint32_t state;
    uint8_t *acc;
    uint8_t *sessions;     /* scratch for the session array */
    uint32_t sessions_cap;
    uint64_t dropped_late;
    bool sliced;           /* accumulators per slice of `slide` ms, see above */
    bool ring;             /* sliced, and all of a key's slices in one value (see ring_*) */
    uint32_t ring_slots;   /* slots of a new ring */
    uint8_t *ring_scratch; /* for growing a ring */
    uint32_t ring_scratch_cap;
    int64_t slide;         /* slice length (the window size for tumbling windows) */
    uint8_t *merged;       /* scratch accumulator for merging slices */
    sl_window_t panes[SL_WINDOW_MAX_PANES];
} window_op_t;

/* Timer namespaces of sliced windows: (window end, FIRE) or (slice start, CLEANUP). */
enum { TIMER_FIRE = 0, TIMER_CLEANUP = 1 };

static int win_open(sl_operator_t *op) {
    window_op_t *o = (window_op_t *)op;
    char err[256];
    int rc = sl_window_spec_from_params(op->params, &o->w, err, sizeof err);
    if (rc)
        return sl_operator_fail(op, rc, "%s", err);
    if ((rc = sl_operator_compile_aggs(op, &o->aggs)) != 0)
        return rc;
    if (o->w.kind == SL_WINDOW_SESSION && !sl_agg_mergeable(&o->aggs))
        return sl_operator_fail(op, SL_EJOB, "session windows need aggregates that merge (a user aggregate has none)");
    o->slide = o->w.kind == SL_WINDOW_SLIDING ? o->w.slide_ms : o->w.size_ms;
    o->sliced = o->w.kind == SL_WINDOW_TUMBLING ||
                (o->w.kind == SL_WINDOW_SLIDING && o->w.size_ms % o->w.slide_ms == 0 && sl_agg_mergeable(&o->aggs));
    /* Without lateness a key's live slices are those of its open windows, plus a few ahead of
     * the watermark: they fit one small value, read and updated in place with one lookup. */
    o->ring = o->sliced && o->w.allowed_lateness_ms == 0 && op->state->vt->value_mut &&
              o->w.size_ms / o->slide <= 64;
    o->ring_slots = o->ring ? (uint32_t)(o->w.size_ms / o->slide) + 2 : 0;
    if ((o->acc = sl_malloc(o->aggs.acc_size)) == NULL || (o->merged = sl_malloc(o->aggs.acc_size)) == NULL)
        return SL_ENOMEM;
    return sl_state_register(op->state, o->w.kind == SL_WINDOW_SESSION ? "sessions" : "acc", SL_STATE_VALUE,
                             &o->state);
}

static int emit(window_op_t *o, const sl_window_t *w, const void *acc) {
    sl_operator_t *op = &o->base;
    uint32_t nkeys = op->key[0].nfields;
    sl_row_builder_t *b = sl_output_row(op->out);
    if (sl_key_decode(&op->key[0], op->state->cur_key, op->state->cur_key_len, b, 0) != 0)
        return sl_operator_fail(op, SL_EPARSE, "cannot decode the key of a window");
    sl_row_set_ts(b, nkeys, w->start);
    sl_row_set_ts(b, nkeys + 1, w->end);
    sl_agg_results(&o->aggs, acc, b, nkeys + 2);
    return sl_output_emit_built(op->out, w->end - 1);
}

static sl_timer_domain_t domain(const window_op_t *o) {
    return o->w.time == SL_TIME_EVENT ? SL_TIMER_EVENT : SL_TIMER_PROC;
}

static int register_pane_timers(window_op_t *o, const sl_window_t *w, const int64_t *ns) {
    sl_operator_t *op = &o->base;
    const sl_keyed_backend_t *s = op->state;
    int rc = sl_timer_register(op->timers, domain(o), w->end - 1, s->cur_key, s->cur_key_len, s->cur_kg, ns, 16);
    if (rc == 0 && o->w.allowed_lateness_ms > 0)
        rc = sl_timer_register(op->timers, domain(o), w->end - 1 + o->w.allowed_lateness_ms, s->cur_key,
                               s->cur_key_len, s->cur_kg, ns, 16);
    return rc;
}

static int add_to_pane(window_op_t *o, const sl_window_t *w, const sl_row_t *r) {
    sl_operator_t *op = &o->base;
    int64_t ns[2] = {w->start, w->end};
    int rc;
    const uint8_t *acc = o->acc;
    if (op->state->vt->value_update) {
        /* One lookup: the accumulator is updated where it lives. */
        void *v;
        bool created;
        if ((rc = op->state->vt->value_update(op->state, o->state, ns, sizeof ns, o->aggs.acc_size, &v, &created)))
            return rc;
        if (created) {
            sl_agg_init(&o->aggs, v);
            if ((rc = register_pane_timers(o, w, ns)) != 0)
                return rc;
        }
        sl_agg_add(&o->aggs, v, r);
        acc = v;
    } else {
        const void *v;
        uint32_t len;
        if ((rc = sl_state_value_get(op->state, o->state, ns, sizeof ns, &v, &len)) < 0)
            return rc;
        if (rc == 1 && len == o->aggs.acc_size) {
            memcpy(o->acc, v, len);
        } else {
            sl_agg_init(&o->aggs, o->acc);
            if ((rc = register_pane_timers(o, w, ns)) != 0)
                return rc;
        }
        sl_agg_add(&o->aggs, o->acc, r);
        if ((rc = sl_state_value_put(op->state, o->state, ns, sizeof ns, o->acc, o->aggs.acc_size)) != 0)
            return rc;
    }
    /* A late row inside the allowed lateness re-emits its (already fired) window. */
    if (o->w.time == SL_TIME_EVENT && w->end - 1 <= op->current_watermark)
        return emit(o, w, acc);
    return 0;
}

static int add_to_sessions(window_op_t *o, int64_t ts, const sl_row_t *r);

/* ---- sliced windows ---- */

static int64_t floor_to(int64_t ts, int64_t step) {
    int64_t r = ts % step;
    return ts - (r < 0 ? r + step : r);
}

static int slice_timer(window_op_t *o, int64_t ts, int64_t a, int64_t kind) {
    const sl_keyed_backend_t *s = o->base.state;
    int64_t ns[2] = {a, kind};
    return sl_timer_register(o->base.timers, domain(o), ts, s->cur_key, s->cur_key_len, s->cur_kg, ns, sizeof ns);
}

/* Merges the slices of window [end - size, end); returns 1 when any existed, 0 when none. */
static int merge_window(window_op_t *o, int64_t end) {
    sl_operator_t *op = &o->base;
    int found = 0;
    sl_agg_init(&o->aggs, o->merged);
    for (int64_t s = end - o->w.size_ms; s < end; s += o->slide) {
        int64_t ns[2] = {s, s + o->slide};
        const void *v;
        uint32_t len;
        int rc = sl_state_value_get(op->state, o->state, ns, sizeof ns, &v, &len);
        if (rc < 0)
            return rc;
        if (rc == 1 && len == o->aggs.acc_size) {
            if (o->slide == o->w.size_ms)
                memcpy(o->merged, v, len);
            else
                sl_agg_merge(&o->aggs, o->merged, v);
            found = 1;
        }
    }
    return found;
}

static int fire_window(window_op_t *o, int64_t end) {
    int rc = merge_window(o, end);
    if (rc <= 0)
        return rc;
    sl_window_t w = {end - o->w.size_ms, end};
    return emit(o, &w, o->merged);
}

static int add_to_slice(window_op_t *o, int64_t ts, const sl_row_t *r) {
    sl_operator_t *op = &o->base;
    int64_t s = floor_to(ts, o->slide);
    int64_t last_end = s + o->w.size_ms; /* the last window holding this slice */
    bool event = o->w.time == SL_TIME_EVENT;
    if (event && last_end - 1 + o->w.allowed_lateness_ms <= op->current_watermark) {
        o->dropped_late++;
        return 0;
    }
    int64_t ns[2] = {s, s + o->slide};
    void *v = NULL;
    bool created = false;
    int rc;
    if (op->state->vt->value_update) {
        if ((rc = op->state->vt->value_update(op->state, o->state, ns, sizeof ns, o->aggs.acc_size, &v, &created)))
            return rc;
        if (created)
            sl_agg_init(&o->aggs, v);
        sl_agg_add(&o->aggs, v, r);
    } else {
        const void *cur;
        uint32_t len;
        if ((rc = sl_state_value_get(op->state, o->state, ns, sizeof ns, &cur, &len)) < 0)
            return rc;
        created = rc == 0 || len != o->aggs.acc_size;
        if (created)
            sl_agg_init(&o->aggs, o->acc);
        else
            memcpy(o->acc, cur, len);
        sl_agg_add(&o->aggs, o->acc, r);
        if ((rc = sl_state_value_put(op->state, o->state, ns, sizeof ns, o->acc, o->aggs.acc_size)) != 0)
            return rc;
    }
    for (int64_t end = s + o->slide; end <= last_end; end += o->slide) {
        if (event && end - 1 <= op->current_watermark) {
            /* Already fired: a late row within the allowed lateness re-emits the window. */
            if ((rc = fire_window(o, end)) != 0)
                return rc;
        } else if (created && (rc = slice_timer(o, end - 1, end, TIMER_FIRE)) != 0) {
            return rc;
        }
    }
    if (created && o->w.allowed_lateness_ms > 0)
        return slice_timer(o, last_end - 1 + o->w.allowed_lateness_ms, s, TIMER_CLEANUP);
    return 0;
}

static int sliced_timer(window_op_t *o, const sl_timer_t *t) {
    int64_t ns[2];
    if (t->ns_len != sizeof ns)
        return 0;
    memcpy(ns, t->ns, sizeof ns);
    if (ns[1] == TIMER_CLEANUP) {
        int64_t slice[2] = {ns[0], ns[0] + o->slide};
        return sl_state_remove(o->base.state, o->state, slice, sizeof slice);
    }
    int rc = fire_window(o, ns[0]);
    if (rc == 0 && o->w.allowed_lateness_ms == 0) {
        /* The window's oldest slice belongs to no later window. */
        int64_t slice[2] = {ns[0] - o->w.size_ms, ns[0] - o->w.size_ms + o->slide};
        rc = sl_state_remove(o->base.state, o->state, slice, sizeof slice);
    }
    return rc;
}

/* ---- sliced windows, one ring per key ----
 * The value is [i64 next_fire | slot...], a slot [i64 start | i64 used | accumulator]. One timer
 * per key is pending, at next_fire - 1: the end of the earliest unfired window holding a live
 * slice. Firing it emits that window, frees the slices no later window needs and chains the
 * timer of the next window, so each fire costs one timer and one state lookup. */
#define RING_HDR 8
#define SLOT_HDR 16

static uint32_t slot_size(const window_op_t *o) { return SLOT_HDR + o->aggs.acc_size; }

static int ring_timer(window_op_t *o, int64_t end) {
    const sl_keyed_backend_t *s = o->base.state;
    return sl_timer_register(o->base.timers, domain(o), end - 1, s->cur_key, s->cur_key_len, s->cur_kg, NULL, 0);
}

/* A ring of `slots` free slots (or the old one copied into a bigger one) stored for the key;
 * returns it writable. */
static int ring_store(window_op_t *o, const uint8_t *old, uint32_t old_len, uint32_t slots, uint8_t **out) {
    uint32_t len = RING_HDR + slots * slot_size(o);
    if (len > o->ring_scratch_cap) {
        uint8_t *p = sl_realloc(o->ring_scratch, len);
        if (p == NULL)
            return SL_ENOMEM;
        o->ring_scratch = p;
        o->ring_scratch_cap = len;
    }
    memset(o->ring_scratch, 0, len);
    if (old)
        memcpy(o->ring_scratch, old, old_len);
    sl_keyed_backend_t *b = o->base.state;
    int rc = sl_state_value_put(b, o->state, NULL, 0, o->ring_scratch, len);
    void *v;
    uint32_t vlen;
    if (rc == 0 && (rc = b->vt->value_mut(b, o->state, NULL, 0, &v, &vlen)) == 1) {
        *out = v;
        return 0;
    }
    return rc < 0 ? rc : SL_EIO;
}

static int add_to_ring(window_op_t *o, int64_t ts, const sl_row_t *r) {
    sl_operator_t *op = &o->base;
    bool event = o->w.time == SL_TIME_EVENT;
    int64_t s = floor_to(ts, o->slide);
    if (event && s + o->w.size_ms - 1 <= op->current_watermark) {
        o->dropped_late++;
        return 0;
    }
    void *v;
    uint32_t len;
    uint8_t *ring;
    int rc = op->state->vt->value_mut(op->state, o->state, NULL, 0, &v, &len);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        len = RING_HDR + o->ring_slots * slot_size(o);
        if ((rc = ring_store(o, NULL, 0, o->ring_slots, &ring)) != 0)
            return rc;
    } else {
        ring = v;
    }
    uint32_t ss = slot_size(o), n = (len - RING_HDR) / ss;
    uint8_t *slot = NULL, *free_slot = NULL;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *p = ring + RING_HDR + i * ss;
        int64_t h[2];
        memcpy(h, p, sizeof h);
        if (h[1] && h[0] == s) {
            slot = p;
            break;
        }
        if (!h[1] && free_slot == NULL)
            free_slot = p;
    }
    if (slot == NULL) {
        if (free_slot == NULL) { /* rows far ahead of the watermark: grow the ring */
            if ((rc = ring_store(o, ring, len, n * 2, &ring)) != 0)
                return rc;
            free_slot = ring + RING_HDR + n * ss;
        }
        slot = free_slot;
        int64_t h[2] = {s, 1};
        memcpy(slot, h, sizeof h);
        sl_agg_init(&o->aggs, slot + SLOT_HDR);
        int64_t next;
        memcpy(&next, ring, 8);
        int64_t first_end = s + o->slide;
        if (event && first_end - 1 <= op->current_watermark) /* its first windows already fired */
            first_end = floor_to(op->current_watermark, o->slide) + o->slide;
        if (next == 0 || first_end < next) {
            memcpy(ring, &first_end, 8);
            if ((rc = ring_timer(o, first_end)) != 0)
                return rc;
        }
    }
    sl_agg_add(&o->aggs, slot + SLOT_HDR, r);
    return 0;
}

static int ring_fire(window_op_t *o, const sl_timer_t *t) {
    sl_operator_t *op = &o->base;
    void *v;
    uint32_t len;
    int rc = op->state->vt->value_mut(op->state, o->state, NULL, 0, &v, &len);
    if (rc <= 0)
        return rc;
    uint8_t *ring = v;
    int64_t e;
    memcpy(&e, ring, 8);
    if (e - 1 != t->ts)
        return 0; /* superseded by an earlier window's timer; the chain reaches this one */
    uint32_t ss = slot_size(o), n = (len - RING_HDR) / ss;
    bool found = false;
    int64_t next = INT64_MAX;
    sl_agg_init(&o->aggs, o->merged);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *p = ring + RING_HDR + i * ss;
        int64_t h[2];
        memcpy(h, p, sizeof h);
        if (!h[1])
            continue;
        if (h[0] >= e - o->w.size_ms && h[0] < e) {
            sl_agg_merge(&o->aggs, o->merged, p + SLOT_HDR);
            found = true;
        }
        if (h[0] + o->w.size_ms <= e) { /* in no later window */
            memset(p, 0, SLOT_HDR);
            continue;
        }
        int64_t end = h[0] + o->slide > e + o->slide ? h[0] + o->slide : e + o->slide;
        if (end < next)
            next = end;
    }
    if (found) {
        sl_window_t w = {e - o->w.size_ms, e};
        if ((rc = emit(o, &w, o->merged)) != 0)
            return rc;
    }
    if (next == INT64_MAX)
        return sl_state_remove(op->state, o->state, NULL, 0);
    /* emit() only appends to the output batch: the ring pointer is still valid. */
    memcpy(ring, &next, 8);
    return ring_timer(o, next);
}

static int win_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    window_op_t *o = (window_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        int64_t ts = o->w.time == SL_TIME_EVENT ? in->ts[i] : op->now_ms();
        if (ts == SL_TS_NONE)
            return sl_operator_fail(op, SL_EINVAL,
                                    "a row has no event time: assign it with sl_stream_watermarks() upstream");
        int rc = sl_operator_set_key(op, 0, &in->rows[i]);
        if (rc < 0)
            return rc;
        if (o->w.kind == SL_WINDOW_SESSION || o->sliced) {
            rc = o->ring     ? add_to_ring(o, ts, &in->rows[i])
                 : o->sliced ? add_to_slice(o, ts, &in->rows[i])
                             : add_to_sessions(o, ts, &in->rows[i]);
            if (rc)
                return rc;
            continue;
        }
        uint32_t n = sl_window_assign(&o->w, ts, o->panes);
        for (uint32_t k = 0; k < n; k++) {
            if (o->w.time == SL_TIME_EVENT && o->panes[k].end - 1 + o->w.allowed_lateness_ms <= op->current_watermark) {
                o->dropped_late++;
                continue;
            }
            if ((rc = add_to_pane(o, &o->panes[k], &in->rows[i])) != 0)
                return rc;
        }
    }
    return 0;
}

static int pane_timer(window_op_t *o, const sl_timer_t *t) {
    sl_operator_t *op = &o->base;
    int64_t ns[2];
    if (t->ns_len != sizeof ns)
        return 0;
    memcpy(ns, t->ns, sizeof ns);
    sl_window_t w = {ns[0], ns[1]};
    bool fire = t->ts == w.end - 1;
    bool cleanup = t->ts == w.end - 1 + o->w.allowed_lateness_ms;
    if (fire) {
        const void *v;
        uint32_t len;
        int rc = sl_state_value_get(op->state, o->state, ns, sizeof ns, &v, &len);
        if (rc < 0)
            return rc;
        if (rc == 1 && (rc = emit(o, &w, v)) != 0)
            return rc;
    }
    return cleanup ? sl_state_remove(op->state, o->state, ns, sizeof ns) : 0;
}

/* ---- sessions: an array of [session_hdr_t | acc] entries per key ---- */

static uint32_t entry_size(const window_op_t *o) { return (uint32_t)sizeof(session_hdr_t) + o->aggs.acc_size; }

/* Copies the key's sessions into the scratch array, with room for one more. */
static int load_sessions(window_op_t *o, uint32_t *count) {
    const void *v = NULL;
    uint32_t len = 0;
    *count = 0;
    int rc = sl_state_value_get(o->base.state, o->state, NULL, 0, &v, &len);
    if (rc < 0)
        return rc;
    if (rc == 0)
        len = 0;
    if (len + entry_size(o) > o->sessions_cap) {
        uint32_t cap = (len + entry_size(o)) * 2;
        uint8_t *p = sl_realloc(o->sessions, cap);
        if (p == NULL)
            return SL_ENOMEM;
        o->sessions = p;
        o->sessions_cap = cap;
    }
    if (len)
        memcpy(o->sessions, v, len);
    *count = len / entry_size(o);
    return 0;
}

static int store_sessions(window_op_t *o, uint32_t count) {
    if (count == 0)
        return sl_state_remove(o->base.state, o->state, NULL, 0);
    return sl_state_value_put(o->base.state, o->state, NULL, 0, o->sessions, count * entry_size(o));
}

static int add_to_sessions(window_op_t *o, int64_t ts, const sl_row_t *r) {
    sl_operator_t *op = &o->base;
    session_hdr_t nw = {ts, ts + o->w.gap_ms, 0};
    if (o->w.time == SL_TIME_EVENT && nw.end - 1 + o->w.allowed_lateness_ms <= op->current_watermark) {
        o->dropped_late++;
        return 0;
    }
    uint32_t count;
    int rc = load_sessions(o, &count);
    if (rc)
        return rc;
    uint32_t es = entry_size(o);
    sl_agg_init(&o->aggs, o->acc);
    sl_agg_add(&o->aggs, o->acc, r);
    /* Merge every session the new one overlaps, removing them from the array. */
    for (uint32_t i = 0; i < count;) {
        uint8_t *e = o->sessions + i * es;
        session_hdr_t h;
        memcpy(&h, e, sizeof h);
        if (h.start < nw.end && nw.start < h.end) {
            nw.start = h.start < nw.start ? h.start : nw.start;
            nw.end = h.end > nw.end ? h.end : nw.end;
            sl_agg_merge(&o->aggs, o->acc, e + sizeof h);
            memmove(e, e + es, (count - i - 1) * es);
            count--;
            continue;
        }
        i++;
    }
    uint8_t *e = o->sessions + count * es;
    memcpy(e, &nw, sizeof nw);
    memcpy(e + sizeof nw, o->acc, o->aggs.acc_size);
    count++;
    const sl_keyed_backend_t *s = op->state;
    rc = sl_timer_register(op->timers, domain(o), nw.end - 1, s->cur_key, s->cur_key_len, s->cur_kg, NULL, 0);
    if (rc == 0 && o->w.allowed_lateness_ms > 0)
        rc = sl_timer_register(op->timers, domain(o), nw.end - 1 + o->w.allowed_lateness_ms, s->cur_key,
                               s->cur_key_len, s->cur_kg, NULL, 0);
    if (rc == 0)
        rc = store_sessions(o, count);
    if (rc == 0 && o->w.time == SL_TIME_EVENT && nw.end - 1 <= op->current_watermark) {
        sl_window_t w = {nw.start, nw.end};
        rc = emit(o, &w, o->acc);
    }
    return rc;
}

static int session_timer(window_op_t *o, const sl_timer_t *t) {
    uint32_t count;
    int rc = load_sessions(o, &count);
    if (rc || count == 0)
        return rc;
    uint32_t es = entry_size(o);
    bool changed = false;
    for (uint32_t i = 0; i < count;) {
        uint8_t *e = o->sessions + i * es;
        session_hdr_t h;
        memcpy(&h, e, sizeof h);
        if (h.end - 1 == t->ts && !h.fired) {
            sl_window_t w = {h.start, h.end};
            if ((rc = emit(o, &w, e + sizeof h)) != 0)
                return rc;
            h.fired = 1;
            memcpy(e, &h, sizeof h);
            changed = true;
        }
        if (h.fired && h.end - 1 + o->w.allowed_lateness_ms <= t->ts) {
            memmove(e, e + es, (count - i - 1) * es);
            count--;
            changed = true;
            continue;
        }
        i++;
    }
    return changed ? store_sessions(o, count) : 0;
}

static int win_timer(sl_operator_t *op, sl_timer_domain_t d, const sl_timer_t *t) {
    window_op_t *o = (window_op_t *)op;
    if (o->ring)
        return ring_fire(o, t);
    if (o->sliced)
        return sliced_timer(o, t);
    return o->w.kind == SL_WINDOW_SESSION ? session_timer(o, t) : pane_timer(o, t);
}

static int win_finish(sl_operator_t *op) {
    window_op_t *o = (window_op_t *)op;
    if (o->dropped_late)
        SL_INFO("operator '%s': %llu late row(s) dropped", op->name, (unsigned long long)o->dropped_late);
    /* Bounded processing-time input: what is still open fires at the end, as in Flink. */
    if (o->w.time == SL_TIME_PROCESSING)
        return sl_operator_fire_proc_timers(op, INT64_MAX);
    return 0;
}

static void win_close(sl_operator_t *op) {
    window_op_t *o = (window_op_t *)op;
    sl_free(o->acc);
    sl_free(o->merged);
    sl_free(o->ring_scratch);
    sl_free(o->sessions);
}

const sl_operator_vtable_t sl_op_window_aggregate = {.kind = "window_aggregate",
                                                     .open = win_open,
                                                     .process = win_process,
                                                     .timer = win_timer,
                                                     .finish = win_finish,
                                                     .close = win_close,
                                                     .size = sizeof(window_op_t),
                                                     .ninputs = 1,
                                                     .keyed = true};
