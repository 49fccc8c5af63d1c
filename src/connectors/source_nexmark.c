/* Nexmark source: one table (person, auction or bid) of the generated event sequence.
 * Subtask k of P runs split k of P of the generator, so the subtasks together emit each
 * event of the table exactly once, and each subtask's event time only grows.
 *
 * DESIGN
 * The position is a list of splits (FLIP-27 style), each (split count, split, next event
 * number to consider) of nexmark_gen.h's block splitting. A fresh subtask reads its one split;
 * after a restore at another parallelism a subtask reads every split it inherited (restore.h)
 * and always emits, of the next event of each split (generated ahead, one per split), the one
 * with the smallest event number. Event time grows with the event number, so the subtask's
 * event time only grows, as with one split, and no record becomes late. A subtask that
 * inherited no split ends at once. Saved as extras "s0", "s1", ... = "count,split,position"
 * (at most SL_OP_EXTRAS_MAX splits per subtask). */
#include <sluice/error.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/nexmark_gen.h"
#include "core/alloc.h"
#include "operators/operator.h"

typedef struct {
    sl_nexmark_gen_t gen;
    sl_nexmark_event_t ev; /* the split's next event when `ahead` (its strings in gen's scratch) */
    bool ahead;
    bool done;
} nexmark_split_t;

typedef struct {
    sl_operator_t base;
    sl_nexmark_config_t cfg;
    sl_nexmark_kind_t kind;
    nexmark_split_t *splits;
    uint32_t nsplits;
} nexmark_op_t;

static int split_init(nexmark_op_t *o, nexmark_split_t *s, uint32_t split, uint32_t nsplits) {
    memset(s, 0, sizeof *s);
    int rc = sl_nexmark_gen_init(&s->gen, &o->cfg, split, nsplits);
    if (rc == 0)
        sl_nexmark_gen_only(&s->gen, 1u << o->kind);
    return rc;
}

static int nexmark_open(sl_operator_t *op) {
    nexmark_op_t *o = (nexmark_op_t *)op;
    const char *table = sl_params_get(op->params, "table");
    if (table == NULL)
        return sl_operator_fail(op, SL_EJOB, "missing parameter 'table'");
    if (strcmp(table, "person") == 0)
        o->kind = SL_NEXMARK_PERSON;
    else if (strcmp(table, "auction") == 0)
        o->kind = SL_NEXMARK_AUCTION;
    else if (strcmp(table, "bid") == 0)
        o->kind = SL_NEXMARK_BID;
    else
        return sl_operator_fail(op, SL_EJOB, "unknown Nexmark table '%s' (person, auction, bid)", table);
    sl_nexmark_config_t *cfg = &o->cfg;
    sl_nexmark_config_default(cfg);
    int64_t events, rate, seed;
    if (sl_params_int(op->params, "events", 0, &events) || events < 0 ||
        sl_params_int(op->params, "rate", 0, &rate) || rate < 0 || sl_params_int(op->params, "seed", 0, &seed))
        return sl_operator_fail(op, SL_EJOB, "parameters 'events', 'rate' and 'seed' must be integers >= 0");
    cfg->max_events = (uint64_t)events;
    if (rate)
        cfg->first_event_rate = (uint64_t)rate;
    cfg->seed = (uint64_t)seed;
    if ((o->splits = sl_malloc(sizeof *o->splits)) == NULL)
        return SL_ENOMEM;
    o->nsplits = 1;
    int rc = split_init(o, &o->splits[0], op->subtask_index, op->parallelism);
    if (rc)
        return sl_operator_fail(op, rc, "invalid generator configuration");
    return 0;
}

static void set_str(sl_row_builder_t *b, uint32_t i, sl_nexmark_str_t s) { sl_row_set_str(b, i, s.p, s.len); }

static void build_row(sl_row_builder_t *b, const sl_nexmark_event_t *ev) {
    switch (ev->kind) {
    case SL_NEXMARK_PERSON:
        sl_row_set_i64(b, 0, ev->person.id);
        set_str(b, 1, ev->person.name);
        set_str(b, 2, ev->person.email);
        set_str(b, 3, ev->person.credit_card);
        set_str(b, 4, ev->person.city);
        set_str(b, 5, ev->person.state);
        sl_row_set_ts(b, 6, ev->person.date_time);
        set_str(b, 7, ev->person.extra);
        break;
    case SL_NEXMARK_AUCTION:
        sl_row_set_i64(b, 0, ev->auction.id);
        set_str(b, 1, ev->auction.item_name);
        set_str(b, 2, ev->auction.description);
        sl_row_set_i64(b, 3, ev->auction.initial_bid);
        sl_row_set_i64(b, 4, ev->auction.reserve);
        sl_row_set_ts(b, 5, ev->auction.date_time);
        sl_row_set_ts(b, 6, ev->auction.expires);
        sl_row_set_i64(b, 7, ev->auction.seller);
        sl_row_set_i64(b, 8, ev->auction.category);
        set_str(b, 9, ev->auction.extra);
        break;
    case SL_NEXMARK_BID:
        sl_row_set_i64(b, 0, ev->bid.auction);
        sl_row_set_i64(b, 1, ev->bid.bidder);
        sl_row_set_i64(b, 2, ev->bid.price);
        set_str(b, 3, ev->bid.channel);
        set_str(b, 4, ev->bid.url);
        sl_row_set_ts(b, 5, ev->bid.date_time);
        set_str(b, 6, ev->bid.extra);
        break;
    }
}

static int64_t event_time(const sl_nexmark_event_t *ev) {
    return ev->kind == SL_NEXMARK_PERSON    ? ev->person.date_time
           : ev->kind == SL_NEXMARK_AUCTION ? ev->auction.date_time
                                            : ev->bid.date_time;
}

/* The split whose next event has the smallest number, generating ahead where needed; NULL
 * when every split has ended. */
static nexmark_split_t *lowest(nexmark_op_t *o) {
    nexmark_split_t *best = NULL;
    for (uint32_t i = 0; i < o->nsplits; i++) {
        nexmark_split_t *s = &o->splits[i];
        if (!s->ahead && !s->done) {
            s->ahead = sl_nexmark_gen_next(&s->gen, &s->ev) != 0;
            s->done = !s->ahead;
        }
        if (s->ahead && (best == NULL || s->ev.number < best->ev.number))
            best = s;
    }
    return best;
}

static int nexmark_poll(sl_operator_t *op, uint32_t budget, bool *end) {
    nexmark_op_t *o = (nexmark_op_t *)op;
    for (uint32_t i = 0; i < budget; i++) {
        nexmark_split_t *s = lowest(o);
        if (s == NULL) {
            *end = true;
            return 0;
        }
        build_row(sl_output_row(op->out), &s->ev);
        s->ahead = false;
        int rc = sl_output_emit_built(op->out, event_time(&s->ev));
        if (rc)
            return rc;
    }
    return 0;
}

/* A split's position is the next event number to consider (that of the event generated ahead,
 * if any): replaying from it regenerates exactly the events after the checkpoint. */
static int nexmark_snapshot(sl_operator_t *op, uint64_t id, sl_op_extras_t *x) {
    nexmark_op_t *o = (nexmark_op_t *)op;
    uint32_t k = 0;
    for (uint32_t i = 0; i < o->nsplits; i++) {
        const nexmark_split_t *s = &o->splits[i];
        if (s->done)
            continue;
        char key[16], v[80];
        snprintf(key, sizeof key, "s%u", k++);
        snprintf(v, sizeof v, "%u,%u,%" PRIu64, s->gen.nsplits, s->gen.split,
                 s->ahead ? s->ev.number : sl_nexmark_gen_position(&s->gen));
        if (sl_op_extras_set(x, key, v) != 0)
            return sl_operator_fail(op, SL_ERANGE, "checkpoint %llu: more than %d splits to save",
                                    (unsigned long long)id, SL_OP_EXTRAS_MAX);
    }
    return 0;
}

/* "count,split,position" into a split positioned there. */
static int parse_split(nexmark_op_t *o, const char *v, nexmark_split_t *s) {
    char *end;
    unsigned long long n = strtoull(v, &end, 10), k = 0, pos = 0;
    if (*end == ',')
        k = strtoull(end + 1, &end, 10);
    if (*end == ',')
        pos = strtoull(end + 1, &end, 10);
    if (*end != '\0' || n == 0 || n > UINT32_MAX || k >= n || split_init(o, s, (uint32_t)k, (uint32_t)n) != 0 ||
        (pos / s->gen.total_proportion) % n != k)
        return SL_EPARSE;
    sl_nexmark_gen_seek(&s->gen, pos);
    return 0;
}

static int nexmark_restore(sl_operator_t *op, uint64_t id, const sl_op_extras_t *sets, uint32_t n) {
    nexmark_op_t *o = (nexmark_op_t *)op;
    uint32_t total = 0;
    for (uint32_t k = 0; k < n; k++)
        total += sets[k].n;
    nexmark_split_t *splits = sl_calloc(total ? total : 1, sizeof *splits);
    if (splits == NULL)
        return SL_ENOMEM;
    uint32_t m = 0;
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t e = 0; e < sets[k].n; e++) {
            const char *key = sets[k].key[e], *v = sets[k].value[e];
            char legacy[80];
            if (strcmp(key, "position") == 0 && n == 1) {
                /* Saved before splits existed: only at the parallelism it was saved with. */
                snprintf(legacy, sizeof legacy, "%u,%u,%.40s", op->parallelism, op->subtask_index, v);
                v = legacy;
            } else if (key[0] != 's' || key[1] < '0' || key[1] > '9') {
                continue;
            }
            if (parse_split(o, v, &splits[m]) != 0) {
                sl_free(splits);
                return sl_operator_fail(op, SL_EPARSE, "checkpoint %llu: bad saved generator split %s='%s'",
                                        (unsigned long long)id, key, sets[k].value[e]);
            }
            m++;
        }
    sl_free(o->splits);
    o->splits = splits;
    o->nsplits = m;
    return 0;
}

static void nexmark_close(sl_operator_t *op) { sl_free(((nexmark_op_t *)op)->splits); }

const sl_operator_vtable_t sl_op_source_nexmark = {.kind = "source_nexmark",
                                                   .open = nexmark_open,
                                                   .source_poll = nexmark_poll,
                                                   .snapshot = nexmark_snapshot,
                                                   .restore = nexmark_restore,
                                                   .close = nexmark_close,
                                                   .size = sizeof(nexmark_op_t),
                                                   .ninputs = 0,
                                                   .rescalable = true};
