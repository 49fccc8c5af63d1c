/* Generator source: rows from a user function of a sequence number (sl_generator_fn).
 * Subtask k of P produces the numbers k, k+P, k+2P, ... so the sequence is split without
 * overlap, and a number always gives the same row, which makes the source replayable.
 *
 * DESIGN
 * The position is a list of splits (FLIP-27 style), each (modulus m, residue r, next): the
 * numbers r, r+m, ... from `next` on. A fresh subtask k of P reads the one split (P, k, k).
 * After a restore at another parallelism a subtask reads every split it inherited (restore.h:
 * old subtask j's go to new subtask j % P'), always advancing the split with the smallest
 * next number, so it emits its numbers in increasing order exactly as one split would and
 * event time computed from the number stays as ordered as without rescaling. A subtask that
 * inherited no split ends at once. Saved as extras "s0", "s1", ... = "m,r,next" (at most
 * SL_OP_EXTRAS_MAX splits per subtask). */
#include <sluice/error.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "operators/operator.h"

typedef struct {
    uint64_t mod, res, next;
    bool done;
} gen_split_t;

typedef struct {
    sl_operator_t base;
    sl_generator_fn fn;
    uint64_t count; /* 0 = unbounded */
    gen_split_t *splits;
    uint32_t nsplits;
} gen_op_t;

static int gen_open(sl_operator_t *op) {
    gen_op_t *o = (gen_op_t *)op;
    int64_t count;
    if (sl_params_int(op->params, "count", 0, &count) || count < 0)
        return sl_operator_fail(op, SL_EJOB, "parameter 'count' must be an integer >= 0");
    o->count = (uint64_t)count;
    if ((o->splits = sl_calloc(1, sizeof *o->splits)) == NULL)
        return SL_ENOMEM;
    o->splits[0] = (gen_split_t){op->parallelism, op->subtask_index, op->subtask_index, false};
    o->nsplits = 1;
    return sl_operator_symbol(op, "fn", true, (void **)&o->fn);
}

/* The live split with the smallest next number, or NULL when all are done. */
static gen_split_t *lowest(gen_op_t *o) {
    gen_split_t *best = NULL;
    for (uint32_t i = 0; i < o->nsplits; i++) {
        gen_split_t *s = &o->splits[i];
        if (!s->done && o->count && s->next >= o->count)
            s->done = true;
        if (!s->done && (best == NULL || s->next < best->next))
            best = s;
    }
    return best;
}

static int gen_poll(sl_operator_t *op, uint32_t budget, bool *end) {
    gen_op_t *o = (gen_op_t *)op;
    for (uint32_t i = 0; i < budget; i++) {
        gen_split_t *s = lowest(o);
        if (s == NULL) {
            *end = true;
            return 0;
        }
        int64_t ts = SL_TS_NONE;
        int rc = o->fn(&op->fn_ctx, s->next, sl_output_row(op->out), &ts);
        if (rc == 0) { /* the function ended this split's sequence */
            s->done = true;
            continue;
        }
        if (rc < 0) {
            if (op->error && op->error[0] == '\0')
                sl_operator_fail(op, rc, "generator '%s' failed at %llu: %s", sl_params_get(op->params, "fn"),
                                 (unsigned long long)s->next, sl_strerror(rc));
            return rc;
        }
        s->next += s->mod;
        if ((rc = sl_output_emit_built(op->out, ts)) != 0)
            return rc;
    }
    return 0;
}

static int gen_snapshot(sl_operator_t *op, uint64_t id, sl_op_extras_t *x) {
    gen_op_t *o = (gen_op_t *)op;
    uint32_t k = 0;
    for (uint32_t i = 0; i < o->nsplits; i++) {
        const gen_split_t *s = &o->splits[i];
        if (s->done)
            continue; /* nothing left to replay */
        char key[16], v[80];
        snprintf(key, sizeof key, "s%u", k++);
        snprintf(v, sizeof v, "%" PRIu64 ",%" PRIu64 ",%" PRIu64, s->mod, s->res, s->next);
        if (sl_op_extras_set(x, key, v) != 0)
            return sl_operator_fail(op, SL_ERANGE, "checkpoint %llu: more than %d splits to save",
                                    (unsigned long long)id, SL_OP_EXTRAS_MAX);
    }
    return 0;
}

static int parse_split(const char *v, gen_split_t *s) {
    char *end;
    s->mod = strtoull(v, &end, 10);
    if (*end != ',')
        return SL_EPARSE;
    s->res = strtoull(end + 1, &end, 10);
    if (*end != ',')
        return SL_EPARSE;
    s->next = strtoull(end + 1, &end, 10);
    s->done = false;
    return *end == '\0' && s->mod > 0 && s->res < s->mod && s->next % s->mod == s->res ? 0 : SL_EPARSE;
}

static int gen_restore(sl_operator_t *op, uint64_t id, const sl_op_extras_t *sets, uint32_t n) {
    gen_op_t *o = (gen_op_t *)op;
    uint32_t total = 0;
    for (uint32_t k = 0; k < n; k++)
        total += sets[k].n;
    gen_split_t *splits = sl_calloc(total ? total : 1, sizeof *splits);
    if (splits == NULL)
        return SL_ENOMEM;
    uint32_t m = 0;
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t e = 0; e < sets[k].n; e++) {
            const char *key = sets[k].key[e], *v = sets[k].value[e];
            int rc = 0;
            if (key[0] == 's' && key[1] >= '0' && key[1] <= '9') {
                rc = parse_split(v, &splits[m]);
            } else if (strcmp(key, "next") == 0 && n == 1) {
                /* Saved before splits existed: only at the parallelism it was saved with. */
                char *end;
                splits[m] = (gen_split_t){op->parallelism, op->subtask_index, strtoull(v, &end, 10), false};
                rc = *end == '\0' && splits[m].next % op->parallelism == op->subtask_index ? 0 : SL_EPARSE;
            } else {
                continue;
            }
            if (rc) {
                sl_free(splits);
                return sl_operator_fail(op, SL_EPARSE, "checkpoint %llu: bad saved split %s='%s'",
                                        (unsigned long long)id, key, v);
            }
            m++;
        }
    sl_free(o->splits);
    o->splits = splits;
    o->nsplits = m;
    return 0;
}

static void gen_close(sl_operator_t *op) { sl_free(((gen_op_t *)op)->splits); }

const sl_operator_vtable_t sl_op_source_generator = {.kind = "source_generator",
                                                     .open = gen_open,
                                                     .source_poll = gen_poll,
                                                     .close = gen_close,
                                                     .snapshot = gen_snapshot,
                                                     .restore = gen_restore,
                                                     .size = sizeof(gen_op_t),
                                                     .ninputs = 0,
                                                     .rescalable = true};
