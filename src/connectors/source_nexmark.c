/* Nexmark source: one table (person, auction or bid) of the generated event sequence.
 * Subtask k of P runs split k of P of the generator, so the subtasks together emit each
 * event of the table exactly once, and each subtask's event time only grows. */
#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/nexmark_gen.h"
#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    sl_nexmark_gen_t gen;
    sl_nexmark_kind_t kind;
} nexmark_op_t;

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
    sl_nexmark_config_t cfg;
    sl_nexmark_config_default(&cfg);
    int64_t events, rate, seed;
    if (sl_params_int(op->params, "events", 0, &events) || events < 0 ||
        sl_params_int(op->params, "rate", 0, &rate) || rate < 0 || sl_params_int(op->params, "seed", 0, &seed))
        return sl_operator_fail(op, SL_EJOB, "parameters 'events', 'rate' and 'seed' must be integers >= 0");
    cfg.max_events = (uint64_t)events;
    if (rate)
        cfg.first_event_rate = (uint64_t)rate;
    cfg.seed = (uint64_t)seed;
    int rc = sl_nexmark_gen_init(&o->gen, &cfg, op->subtask_index, op->parallelism);
    if (rc)
        return sl_operator_fail(op, rc, "invalid generator configuration");
    sl_nexmark_gen_only(&o->gen, 1u << o->kind);
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

static int nexmark_poll(sl_operator_t *op, uint32_t budget, bool *end) {
    nexmark_op_t *o = (nexmark_op_t *)op;
    sl_nexmark_event_t ev;
    for (uint32_t i = 0; i < budget; i++) {
        if (sl_nexmark_gen_next(&o->gen, &ev) == 0) {
            *end = true;
            return 0;
        }
        build_row(sl_output_row(op->out), &ev);
        int rc = sl_output_emit_built(op->out, event_time(&ev));
        if (rc)
            return rc;
    }
    return 0;
}

/* The position is the next event number to consider: replaying from it regenerates exactly the
 * events after the checkpoint. */
static int nexmark_snapshot(sl_operator_t *op, uint64_t id, sl_op_extras_t *x) {
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)sl_nexmark_gen_position(&((nexmark_op_t *)op)->gen));
    return sl_op_extras_set(x, "position", v);
}

static int nexmark_restore(sl_operator_t *op, uint64_t id, const sl_op_extras_t *x) {
    nexmark_op_t *o = (nexmark_op_t *)op;
    const char *v = sl_op_extras_get(x, "position");
    char *end;
    unsigned long long pos = v ? strtoull(v, &end, 10) : 0;
    if (v == NULL || *end != '\0' || (pos / o->gen.total_proportion) % o->gen.nsplits != o->gen.split)
        return sl_operator_fail(op, SL_EPARSE, "checkpoint %llu: bad saved generator position '%s'",
                                (unsigned long long)id, v ? v : "(none)");
    sl_nexmark_gen_seek(&o->gen, pos);
    return 0;
}

const sl_operator_vtable_t sl_op_source_nexmark = {.kind = "source_nexmark",
                                                   .open = nexmark_open,
                                                   .source_poll = nexmark_poll,
                                                   .snapshot = nexmark_snapshot,
                                                   .restore = nexmark_restore,
                                                   .size = sizeof(nexmark_op_t),
                                                   .ninputs = 0};
