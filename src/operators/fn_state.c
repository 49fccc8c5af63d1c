/* Keyed user state of <sluice/function.h>: value, list, map, reducing and aggregating state by
 * name, scoped by the current key, with the optional state TTL.
 *
 * DESIGN
 * Every kind sits on one of the backend's three (state/keyed_state.h): value and list on
 * SL_STATE_VALUE and SL_STATE_LIST, map on SL_STATE_MAP, and reducing and aggregating on
 * SL_STATE_VALUE holding the reduced value or the accumulator. Snapshots, restores and
 * rescaling therefore cover all of them with no code here, on both backends.
 *
 * A name resolves once per operator into op->fn_states: the first use reads the declaration
 * (operator params "state.reducing.<name>" / "state.aggregating.<name>", set by
 * sl_stream_reducing_state / sl_stream_aggregating_state), looks up the declared symbol in the
 * job library, and registers the state with the backend. Later calls find the entry by strcmp
 * over a handful of names, without params, dlsym or the backend. The kind of the first use
 * sticks: the same name used through functions of another kind fails with a message naming
 * the state and both kinds.
 *
 * With a state TTL every stored value (a list element, a map entry's value, a reducing value,
 * an accumulator) is prefixed by the processing time it expires at, in host byte order:
 *
 *   | expires_at: int64 ms | user bytes ... |
 *
 * A value whose expires_at <= now reads as absent. Reducing values and accumulators pass
 * through a 16-byte aligned stack buffer with room for that prefix and the largest allowed
 * value, so a reducing or aggregating add allocates nothing; value, list and map writes with
 * TTL wrap into a 256-byte stack buffer and allocate only for larger values.
 *
 * Registering a state with TTL tells the backend (sl_state_set_ttl, with the operator's
 * clock), which then drops expired entries that are never read again: every access first
 * gives the heap backend one incremental cleanup step over that state (Flink's
 * cleanupIncrementally(5, false)); RocksDB does it in its compactions. An access reads the
 * clock once, into op->fn_states.now, for the cleanup, the expiry it writes and the ones it
 * reads. */
#include "operators/operator.h"

#include <sluice/error.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/mailbox.h"

typedef enum { FN_VALUE, FN_LIST, FN_MAP, FN_REDUCING, FN_AGGREGATING } fn_kind_t;

static const char *const kind_name[] = {"value", "list", "map", "reducing", "aggregating"};
static const sl_state_kind_t backend_kind[] = {SL_STATE_VALUE, SL_STATE_LIST, SL_STATE_MAP, SL_STATE_VALUE,
                                               SL_STATE_VALUE};

#define VALUE_MAX (SL_STATE_REDUCE_MAX > SL_AGG_USER_MAX_ACC ? SL_STATE_REDUCE_MAX : SL_AGG_USER_MAX_ACC)

/* A reducing value or accumulator: the value at b + 16 (aligned), its TTL prefix at b + 8. */
typedef struct {
    _Alignas(16) uint8_t b[16 + VALUE_MAX];
} aligned_value_t;

static bool has_ttl(const sl_fn_ctx_t *ctx) { return ctx->op->state_ttl_ms > 0; }

/* ---- Resolving a name ---- */

static const char *declared(const sl_operator_t *op, const char *prefix, const char *name) {
    char key[256];
    int n = snprintf(key, sizeof key, "%s%s", prefix, name);
    return n > 0 && (size_t)n < sizeof key ? sl_params_get(op->params, key) : NULL;
}

/* The backend refused `name` as `kind`: it holds a state of that name of another kind. */
static int wrong_backend_kind(sl_operator_t *op, const char *name, fn_kind_t kind) {
    static const char *const names[] = {"value", "list", "map"};
    uint32_t n = sl_state_count(op->state);
    for (uint32_t id = 0; id < n; id++) {
        const char *other;
        sl_state_kind_t k;
        sl_state_info(op->state, id, &other, &k);
        if (strcmp(other, name) == 0 && (unsigned)k < 3)
            return sl_operator_fail(op, SL_EINVAL, "state '%s' is a %s state, used as %s state", name, names[k],
                                    kind_name[kind]);
    }
    return sl_operator_fail(op, SL_EINVAL, "state '%s' cannot be used as %s state", name, kind_name[kind]);
}

static int resolve(sl_operator_t *op, const char *name, fn_kind_t kind, sl_fn_state_t *e) {
    if (op->state == NULL)
        return sl_operator_fail(op, SL_EINVAL, "state '%s': keyed state used on a non-keyed stream", name);
    const char *red = declared(op, "state.reducing.", name), *agg = declared(op, "state.aggregating.", name);
    if (red && kind != FN_REDUCING)
        return sl_operator_fail(op, SL_EINVAL, "state '%s' is declared as reducing state, used as %s state", name,
                                kind_name[kind]);
    if (agg && kind != FN_AGGREGATING)
        return sl_operator_fail(op, SL_EINVAL, "state '%s' is declared as aggregating state, used as %s state", name,
                                kind_name[kind]);
    memset(e, 0, sizeof *e);
    void *lib = op->user_lib ? op->user_lib : RTLD_DEFAULT;
    if (kind == FN_REDUCING) {
        if (red == NULL)
            return sl_operator_fail(op, SL_EINVAL,
                                    "reducing state '%s' is not declared: call sl_stream_reducing_state()", name);
        void *p = dlsym(lib, red);
        if (p == NULL)
            return sl_operator_fail(op, SL_ESYMBOL, "reduce function '%s' of state '%s' not found", red, name);
        memcpy(&e->reduce, &p, sizeof p); /* POSIX: a dlsym result may be a function pointer */
    } else if (kind == FN_AGGREGATING) {
        if (agg == NULL)
            return sl_operator_fail(op, SL_EINVAL,
                                    "aggregating state '%s' is not declared: call sl_stream_aggregating_state()",
                                    name);
        const sl_aggregate_t *a = dlsym(lib, agg);
        if (a == NULL)
            return sl_operator_fail(op, SL_ESYMBOL, "aggregate '%s' of state '%s' not found", agg, name);
        if (a->acc_size == 0 || a->acc_size > SL_AGG_USER_MAX_ACC || !a->init || !a->add || !a->result)
            return sl_operator_fail(op, SL_EINVAL,
                                    "aggregate '%s' of state '%s' needs init, add and result, and acc_size 1..%d",
                                    agg, name, SL_AGG_USER_MAX_ACC);
        e->agg = a;
    }
    int rc = sl_state_register(op->state, name, backend_kind[kind], &e->id);
    if (rc == SL_EINVAL)
        return wrong_backend_kind(op, name, kind);
    if (rc == 0 && op->state_ttl_ms > 0)
        rc = sl_state_set_ttl(op->state, e->id, op->now_ms ? op->now_ms : sl_wall_ms);
    if (rc)
        return sl_operator_fail(op, rc, "state '%s': %s", name, sl_strerror(rc));
    e->kind = kind;
    return 0;
}

/* With a TTL, the start of every access to state `s`: the time of the access, and a cleanup
 * step before anything is handed out, so that the step cannot invalidate it. */
static int ttl_access(sl_fn_ctx_t *ctx, const char *name, const sl_fn_state_t *s) {
    sl_operator_t *op = ctx->op;
    if (op->state_ttl_ms <= 0)
        return 0;
    op->fn_states.now = sl_fn_now(ctx);
    int rc = sl_state_ttl_cleanup(op->state, s->id, op->fn_states.now);
    return rc ? sl_operator_fail(op, rc, "state '%s': TTL cleanup: %s", name, sl_strerror(rc)) : 0;
}

/* The state `name` used as `kind`, from op->fn_states or resolved now (into `scratch` when it
 * cannot be kept), after its TTL step (ttl_access). */
static int fn_state(sl_fn_ctx_t *ctx, const char *name, fn_kind_t kind, sl_fn_state_t *scratch,
                    const sl_fn_state_t **out) {
    sl_operator_t *op = ctx->op;
    sl_fn_states_t *c = &op->fn_states;
    if (name == NULL)
        return sl_operator_fail(op, SL_EINVAL, "%s state used without a name", kind_name[kind]);
    if (c->backend != op->state) {
        c->backend = op->state;
        c->n = 0;
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0) {
            if (c->e[i].kind != (uint32_t)kind)
                return sl_operator_fail(op, SL_EINVAL, "state '%s' is a %s state, used as %s state", name,
                                        kind_name[c->e[i].kind], kind_name[kind]);
            *out = &c->e[i];
            return ttl_access(ctx, name, *out);
        }
    size_t len = strlen(name);
    sl_fn_state_t *e = c->n < SL_FN_STATES_MAX && len < SL_FN_STATE_NAME_MAX ? &c->e[c->n] : scratch;
    int rc = resolve(op, name, kind, e);
    if (rc)
        return rc;
    if (e != scratch) {
        memcpy(e->name, name, len + 1);
        c->n++;
    }
    *out = e;
    return ttl_access(ctx, name, e);
}

/* ---- TTL ---- */

/* State TTL (Flink's StateTtlConfig with its defaults: processing time, refreshed on create
 * and write, expired values never returned). */
static int64_t expiry(sl_fn_ctx_t *ctx) { return ctx->op->fn_states.now + ctx->op->state_ttl_ms; }

static int ttl_wrap(sl_fn_ctx_t *ctx, const void *val, uint32_t len, uint8_t *small, size_t cap, uint8_t **out) {
    *out = 8 + (size_t)len <= cap ? small : sl_malloc(8 + (size_t)len);
    if (*out == NULL)
        return SL_ENOMEM;
    int64_t at = expiry(ctx);
    memcpy(*out, &at, 8);
    if (len)
        memcpy(*out + 8, val, len);
    return 0;
}

/* Strips the expiry of a stored value: 1 when alive, 0 when expired. */
static int ttl_unwrap(sl_fn_ctx_t *ctx, const char *name, const void **val, uint32_t *len) {
    int64_t at;
    if (*len < 8)
        return sl_operator_fail(ctx->op, SL_ESTATE_IO, "state '%s': value without its expiry (TTL)", name);
    memcpy(&at, *val, 8);
    if (at <= ctx->op->fn_states.now)
        return 0;
    *val = (const uint8_t *)*val + 8;
    *len -= 8;
    return 1;
}

/* The value at (current key) of value-backed state `id`, without its expiry; an expired one is
 * removed and reads as absent. */
static int value_read(sl_fn_ctx_t *ctx, const char *name, uint32_t id, const void **val, uint32_t *len) {
    int rc = sl_state_value_get(ctx->op->state, id, NULL, 0, val, len);
    if (rc != 1 || !has_ttl(ctx))
        return rc;
    if ((rc = ttl_unwrap(ctx, name, val, len)) != 0)
        return rc;
    rc = sl_state_remove(ctx->op->state, id, NULL, 0);
    return rc ? rc : 0;
}

static int value_write(sl_fn_ctx_t *ctx, uint32_t id, const void *val, uint32_t len) {
    if (!has_ttl(ctx))
        return sl_state_value_put(ctx->op->state, id, NULL, 0, val, len);
    uint8_t small[256], *buf;
    int rc = ttl_wrap(ctx, val, len, small, sizeof small, &buf);
    if (rc)
        return rc;
    rc = sl_state_value_put(ctx->op->state, id, NULL, 0, buf, len + 8);
    if (buf != small)
        sl_free(buf);
    return rc;
}

/* Stores the `len` bytes at v->b + 16, with their expiry in front when there is a TTL. */
static int aligned_write(sl_fn_ctx_t *ctx, uint32_t id, aligned_value_t *v, uint32_t len) {
    if (!has_ttl(ctx))
        return sl_state_value_put(ctx->op->state, id, NULL, 0, v->b + 16, len);
    int64_t at = expiry(ctx);
    memcpy(v->b + 8, &at, 8);
    return sl_state_value_put(ctx->op->state, id, NULL, 0, v->b + 8, len + 8);
}

/* ---- Value state ---- */

int sl_fn_value_get(sl_fn_ctx_t *ctx, const char *state, const void **val, uint32_t *len) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_VALUE, &scratch, &s);
    return rc ? rc : value_read(ctx, state, s->id, val, len);
}

int sl_fn_value_put(sl_fn_ctx_t *ctx, const char *state, const void *val, uint32_t len) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_VALUE, &scratch, &s);
    return rc ? rc : value_write(ctx, s->id, val, len);
}

static int clear(sl_fn_ctx_t *ctx, const char *state, fn_kind_t kind) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, kind, &scratch, &s);
    return rc ? rc : sl_state_remove(ctx->op->state, s->id, NULL, 0);
}

int sl_fn_value_clear(sl_fn_ctx_t *ctx, const char *state) { return clear(ctx, state, FN_VALUE); }

/* ---- List state ---- */

int sl_fn_list_add(sl_fn_ctx_t *ctx, const char *state, const void *val, uint32_t len) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_LIST, &scratch, &s);
    if (rc || !has_ttl(ctx))
        return rc ? rc : sl_state_list_add(ctx->op->state, s->id, NULL, 0, val, len);
    uint8_t small[256], *buf;
    if ((rc = ttl_wrap(ctx, val, len, small, sizeof small, &buf)) != 0)
        return rc;
    rc = sl_state_list_add(ctx->op->state, s->id, NULL, 0, buf, len + 8);
    if (buf != small)
        sl_free(buf);
    return rc;
}

typedef struct {
    int (*cb)(void *arg, const void *val, uint32_t len);
    void *arg;
    int64_t now; /* with TTL: elements expiring at or before this are skipped */
    bool ttl;
} list_visit_t;

static int list_visit_adapter(void *arg, const void *uk, uint32_t uklen, const void *v, uint32_t vlen) {
    list_visit_t *lv = arg;
    if (!lv->ttl)
        return lv->cb(lv->arg, v, vlen);
    int64_t at;
    if (vlen < 8)
        return SL_ESTATE_IO;
    memcpy(&at, v, 8);
    return at <= lv->now ? 0 : lv->cb(lv->arg, (const uint8_t *)v + 8, vlen - 8);
}

int sl_fn_list_visit(sl_fn_ctx_t *ctx, const char *state, int (*cb)(void *arg, const void *val, uint32_t len),
                     void *arg) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_LIST, &scratch, &s);
    list_visit_t lv = {cb, arg, ctx->op->fn_states.now, has_ttl(ctx)};
    return rc ? rc : sl_state_iterate(ctx->op->state, s->id, NULL, 0, list_visit_adapter, &lv);
}

int sl_fn_list_clear(sl_fn_ctx_t *ctx, const char *state) { return clear(ctx, state, FN_LIST); }

/* ---- Map state ---- */

int sl_fn_map_get(sl_fn_ctx_t *ctx, const char *state, const void *ukey, uint32_t ukey_len, const void **val,
                  uint32_t *len) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_MAP, &scratch, &s);
    if (rc == 0)
        rc = sl_state_map_get(ctx->op->state, s->id, NULL, 0, ukey, ukey_len, val, len);
    if (rc != 1 || !has_ttl(ctx))
        return rc;
    if ((rc = ttl_unwrap(ctx, state, val, len)) != 0)
        return rc;
    rc = sl_state_map_remove(ctx->op->state, s->id, NULL, 0, ukey, ukey_len);
    return rc ? rc : 0;
}

int sl_fn_map_put(sl_fn_ctx_t *ctx, const char *state, const void *ukey, uint32_t ukey_len, const void *val,
                  uint32_t len) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_MAP, &scratch, &s);
    if (rc || !has_ttl(ctx))
        return rc ? rc : sl_state_map_put(ctx->op->state, s->id, NULL, 0, ukey, ukey_len, val, len);
    uint8_t small[256], *buf;
    if ((rc = ttl_wrap(ctx, val, len, small, sizeof small, &buf)) != 0)
        return rc;
    rc = sl_state_map_put(ctx->op->state, s->id, NULL, 0, ukey, ukey_len, buf, len + 8);
    if (buf != small)
        sl_free(buf);
    return rc;
}

int sl_fn_map_remove(sl_fn_ctx_t *ctx, const char *state, const void *ukey, uint32_t ukey_len) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_MAP, &scratch, &s);
    return rc ? rc : sl_state_map_remove(ctx->op->state, s->id, NULL, 0, ukey, ukey_len);
}

/* A visit with TTL skips expired entries and notes their user keys, as [u32 len][bytes]
 * records, so they can be removed once the iteration is over (the backend does not allow
 * changes during it). Keys that do not fit are left for a later visit or get. */
typedef struct {
    sl_map_visit_cb cb;
    void *arg;
    int64_t now;
    bool ttl;
    uint32_t gc_len;
    uint8_t gc[512];
} map_visit_t;

static int map_visit_adapter(void *arg, const void *uk, uint32_t uklen, const void *v, uint32_t vlen) {
    map_visit_t *mv = arg;
    if (!mv->ttl)
        return mv->cb(mv->arg, uk, uklen, v, vlen);
    int64_t at;
    if (vlen < 8)
        return SL_ESTATE_IO;
    memcpy(&at, v, 8);
    if (at > mv->now)
        return mv->cb(mv->arg, uk, uklen, (const uint8_t *)v + 8, vlen - 8);
    if (4 + (size_t)uklen <= sizeof mv->gc - mv->gc_len) {
        memcpy(mv->gc + mv->gc_len, &uklen, 4);
        if (uklen)
            memcpy(mv->gc + mv->gc_len + 4, uk, uklen);
        mv->gc_len += 4 + uklen;
    }
    return 0;
}

int sl_fn_map_visit(sl_fn_ctx_t *ctx, const char *state, sl_map_visit_cb cb, void *arg) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_MAP, &scratch, &s);
    if (rc)
        return rc;
    map_visit_t mv;
    mv.cb = cb;
    mv.arg = arg;
    mv.ttl = has_ttl(ctx);
    mv.now = ctx->op->fn_states.now;
    mv.gc_len = 0;
    rc = sl_state_iterate(ctx->op->state, s->id, NULL, 0, map_visit_adapter, &mv);
    for (uint32_t off = 0; off < mv.gc_len;) {
        uint32_t uklen;
        memcpy(&uklen, mv.gc + off, 4);
        int rm = sl_state_map_remove(ctx->op->state, s->id, NULL, 0, mv.gc + off + 4, uklen);
        if (rm)
            return rm;
        off += 4 + uklen;
    }
    return rc;
}

int sl_fn_map_clear(sl_fn_ctx_t *ctx, const char *state) { return clear(ctx, state, FN_MAP); }

/* ---- Reducing state ---- */

int sl_fn_reducing_add(sl_fn_ctx_t *ctx, const char *state, const void *val, uint32_t len) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_REDUCING, &scratch, &s);
    if (rc)
        return rc;
    if (len > SL_STATE_REDUCE_MAX)
        return sl_operator_fail(ctx->op, SL_ERANGE, "reducing state '%s': a value of %u bytes (at most %d)", state,
                                len, SL_STATE_REDUCE_MAX);
    const void *cur;
    uint32_t cur_len;
    if ((rc = value_read(ctx, state, s->id, &cur, &cur_len)) < 0)
        return rc;
    aligned_value_t v;
    if (rc == 0) {
        if (len)
            memcpy(v.b + 16, val, len);
    } else {
        if (cur_len != len)
            return sl_operator_fail(ctx->op, SL_EINVAL,
                                    "reducing state '%s': a value of %u bytes added to a value of %u bytes", state,
                                    len, cur_len);
        if (len)
            memcpy(v.b + 16, cur, len);
        if ((rc = s->reduce(ctx, v.b + 16, val, len)) != 0) {
            rc = rc < 0 ? rc : SL_EUSER;
            return sl_operator_fail(ctx->op, rc, "reduce function of state '%s' failed: %s", state, sl_strerror(rc));
        }
    }
    return aligned_write(ctx, s->id, &v, len);
}

int sl_fn_reducing_get(sl_fn_ctx_t *ctx, const char *state, const void **val, uint32_t *len) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    int rc = fn_state(ctx, state, FN_REDUCING, &scratch, &s);
    return rc ? rc : value_read(ctx, state, s->id, val, len);
}

int sl_fn_reducing_clear(sl_fn_ctx_t *ctx, const char *state) { return clear(ctx, state, FN_REDUCING); }

/* ---- Aggregating state ---- */

/* The accumulator of `s` into v->b + 16: 1 when present, 0 when empty. */
static int acc_read(sl_fn_ctx_t *ctx, const char *state, const sl_fn_state_t *s, aligned_value_t *v) {
    const void *cur;
    uint32_t cur_len;
    int rc = value_read(ctx, state, s->id, &cur, &cur_len);
    if (rc != 1)
        return rc;
    if (cur_len != s->agg->acc_size)
        return sl_operator_fail(ctx->op, SL_EINVAL,
                                "aggregating state '%s': a stored accumulator of %u bytes, the aggregate's has %u",
                                state, cur_len, s->agg->acc_size);
    memcpy(v->b + 16, cur, cur_len);
    return 1;
}

int sl_fn_aggregating_add(sl_fn_ctx_t *ctx, const char *state, const sl_row_t *in) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    aligned_value_t v;
    int rc = fn_state(ctx, state, FN_AGGREGATING, &scratch, &s);
    if (rc == 0)
        rc = acc_read(ctx, state, s, &v);
    if (rc < 0)
        return rc;
    if (rc == 0)
        s->agg->init(v.b + 16);
    s->agg->add(v.b + 16, in);
    return aligned_write(ctx, s->id, &v, s->agg->acc_size);
}

int sl_fn_aggregating_get(sl_fn_ctx_t *ctx, const char *state, sl_row_builder_t *out, uint32_t field) {
    sl_fn_state_t scratch;
    const sl_fn_state_t *s;
    aligned_value_t v;
    int rc = fn_state(ctx, state, FN_AGGREGATING, &scratch, &s);
    if (rc == 0)
        rc = acc_read(ctx, state, s, &v);
    if (rc == 1)
        s->agg->result(v.b + 16, out, field);
    return rc;
}

int sl_fn_aggregating_clear(sl_fn_ctx_t *ctx, const char *state) { return clear(ctx, state, FN_AGGREGATING); }
