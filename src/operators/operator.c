/* Services the runtime gives operators: failure messages, symbol lookup, the current key,
 * timers, and the public user-function context and collector of <sluice/function.h>. */
#include "operators/operator.h"

#include <sluice/error.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/key_group.h"
#include "core/mailbox.h"

int sl_operator_fail(sl_operator_t *op, int err, const char *fmt, ...) {
    if (op->error && op->error_len && op->error[0] == '\0') {
        int n = snprintf(op->error, op->error_len, "operator '%s': ", op->name ? op->name : "?");
        if (n > 0 && (size_t)n < op->error_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(op->error + n, op->error_len - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return err;
}

int sl_operator_user_failed(sl_operator_t *op, const char *param, int rc) {
    if (op->error && op->error[0] == '\0')
        sl_operator_fail(op, rc, "user function '%s' failed: %s", sl_params_get(op->params, param), sl_strerror(rc));
    return rc;
}

int sl_operator_symbol(sl_operator_t *op, const char *key, bool required, void **out) {
    const char *sym = sl_params_get(op->params, key);
    *out = NULL;
    if (sym == NULL || sym[0] == '\0') {
        if (!required)
            return 0;
        return sl_operator_fail(op, SL_EJOB, "missing parameter '%s'", key);
    }
    void *p = dlsym(op->user_lib ? op->user_lib : RTLD_DEFAULT, sym);
    if (p == NULL)
        return sl_operator_fail(op, SL_ESYMBOL, "symbol '%s' not found in %s", sym,
                                op->user_lib ? "the job library" : "the program");
    *out = p;
    return 0;
}

int sl_operator_set_key(sl_operator_t *op, uint32_t input, const sl_row_t *row) {
    int rc = sl_key_extract(&op->key[input], row, &op->key_buf);
    if (rc)
        return rc == SL_EUSER ? sl_operator_fail(op, rc, "key function failed") : rc;
    uint32_t kg = sl_key_group_of(sl_key_hash(op->key_buf.data, op->key_buf.len), op->max_parallelism);
    if (op->state)
        sl_keyed_backend_set_key(op->state, op->key_buf.data, op->key_buf.len, kg);
    return (int)kg;
}

static int fire_timers(sl_operator_t *op, sl_timer_domain_t d, int64_t upto) {
    sl_timer_t t;
    int rc = 0;
    if (op->timers == NULL || op->vt->timer == NULL)
        return 0;
    while (rc == 0 && sl_timer_pop(op->timers, d, upto, &t) == 1) {
        if (op->state)
            sl_keyed_backend_set_key(op->state, t.key, t.key_len, t.key_group);
        rc = op->vt->timer(op, d, &t);
        /* Flush per timer: a timer may emit rows that borrow from state it then clears. */
        if (rc == 0 && op->out && op->out->batch.n >= SL_BATCH_CAPACITY / 2)
            rc = sl_output_flush(op->out);
    }
    return rc;
}

int sl_operator_default_watermark(sl_operator_t *op, int64_t wm) {
    int rc = fire_timers(op, SL_TIMER_EVENT, wm);
    if (rc == 0 && op->out)
        rc = sl_output_watermark(op->out, wm);
    return rc;
}

int sl_operator_fire_proc_timers(sl_operator_t *op, int64_t now) {
    int rc = fire_timers(op, SL_TIMER_PROC, now);
    if (rc == 0 && op->out)
        rc = sl_output_flush(op->out);
    return rc;
}

/* ---- <sluice/function.h> ---- */

uint32_t sl_fn_subtask_index(const sl_fn_ctx_t *ctx) { return ctx->op->subtask_index; }
uint32_t sl_fn_parallelism(const sl_fn_ctx_t *ctx) { return ctx->op->parallelism; }
const char *sl_fn_param(const sl_fn_ctx_t *ctx, const char *key) { return sl_params_get(ctx->op->params, key); }
int64_t sl_fn_watermark(const sl_fn_ctx_t *ctx) { return ctx->op->current_watermark; }
int64_t sl_fn_now(const sl_fn_ctx_t *ctx) { return ctx->op->now_ms ? ctx->op->now_ms() : sl_wall_ms(); }

int sl_fn_fail(sl_fn_ctx_t *ctx, int err, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sl_operator_fail(ctx->op, err, "%s", msg);
}

/* Keyed user state (sl_fn_value_*, sl_fn_list_*, sl_fn_map_*, ...) is in fn_state.c. */

static int user_timer(sl_fn_ctx_t *ctx, sl_timer_domain_t d, int64_t ts) {
    sl_operator_t *op = ctx->op;
    if (op->state == NULL || op->timers == NULL)
        return sl_operator_fail(op, SL_EINVAL, "timers need a keyed stream");
    return sl_timer_register(op->timers, d, ts, op->state->cur_key, op->state->cur_key_len,
                             op->state->cur_kg, NULL, 0);
}

int sl_fn_timer_event(sl_fn_ctx_t *ctx, int64_t ts) { return user_timer(ctx, SL_TIMER_EVENT, ts); }
int sl_fn_timer_proc(sl_fn_ctx_t *ctx, int64_t ts) { return user_timer(ctx, SL_TIMER_PROC, ts); }

sl_row_builder_t *sl_collector_row(sl_collector_t *c) {
    sl_row_builder_start(&c->out->builder, c->nfields);
    return &c->out->builder;
}

int sl_collector_emit(sl_collector_t *c) { return sl_output_emit_built(c->out, c->ts); }

int sl_collector_emit_row(sl_collector_t *c, const sl_row_t *row) {
    return sl_output_emit_copy(c->out, row, c->ts);
}

const sl_aggregate_t *sl_operator_aggregate_symbol(void *arg, const char *symbol) {
    sl_operator_t *op = arg;
    return dlsym(op->user_lib ? op->user_lib : RTLD_DEFAULT, symbol);
}

int sl_operator_compile_aggs(sl_operator_t *op, sl_agg_list_t *aggs) {
    char err[512];
    int rc = sl_agg_compile(aggs, sl_params_get(op->params, "aggs"), op->in_schema[0], sl_operator_aggregate_symbol,
                            op, err, sizeof err);
    return rc ? sl_operator_fail(op, rc, "%s", err) : 0;
}

void sl_operator_copy_key_fields(const sl_operator_t *op, const sl_row_t *in, sl_row_builder_t *b) {
    const sl_key_selector_t *ks = &op->key[0];
    for (uint32_t k = 0; k < ks->nfields; k++)
        sl_row_copy_field(b, k, in, ks->fields[k], ks->types[k]);
}

int sl_op_extras_set(sl_op_extras_t *x, const char *key, const char *value) {
    if (strlen(key) >= sizeof x->key[0] || strlen(value) >= sizeof x->value[0])
        return SL_ERANGE;
    for (uint32_t i = 0; i < x->n; i++)
        if (strcmp(x->key[i], key) == 0) {
            snprintf(x->value[i], sizeof x->value[i], "%s", value);
            return 0;
        }
    if (x->n == SL_OP_EXTRAS_MAX)
        return SL_ERANGE;
    snprintf(x->key[x->n], sizeof x->key[0], "%s", key);
    snprintf(x->value[x->n], sizeof x->value[0], "%s", value);
    x->n++;
    return 0;
}

const char *sl_op_extras_get(const sl_op_extras_t *x, const char *key) {
    for (uint32_t i = 0; x && i < x->n; i++)
        if (strcmp(x->key[i], key) == 0)
            return x->value[i];
    return NULL;
}

void sl_operator_request_service(sl_operator_t *op) {
    atomic_store_explicit(&op->service_requested, true, memory_order_release);
    if (op->mailbox)
        sl_mailbox_signal(op->mailbox);
}

int sl_operator_wait_service(sl_operator_t *op) {
    /* Downstream must see what was emitted so far, or it could be waiting for it. */
    int rc = op->out ? sl_output_flush(op->out) : 0;
    if (rc)
        return rc;
    if (!atomic_load_explicit(&op->service_requested, memory_order_acquire)) {
        if (op->mailbox == NULL)
            return sl_operator_fail(op, SL_EINVAL, "operator '%s' waits for service without a mailbox", op->name);
        if ((rc = sl_mailbox_wait_signal(op->mailbox, op->service_at)) != 0)
            return rc;
    }
    atomic_store_explicit(&op->service_requested, false, memory_order_relaxed);
    return op->vt->service(op, sl_monotonic_ms());
}
