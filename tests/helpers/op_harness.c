/* Operator test harness (see op_harness.h). Mirrors what the task runtime sets up for an
 * operator (taskexecutor/task.c): keyed state, timers, an output feeding a capturing sink. */
#include "op_harness.h"

#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/csv_parse.h"
#include "core/key_group.h"

typedef struct {
    sl_operator_t base;
    sl_harness_t *h;
} capture_op_t;

static int64_t harness_now;
static int64_t harness_clock(void) { return harness_now; }

static int capture_process(sl_operator_t *op, uint32_t input, sl_batch_t *b) {
    capture_op_t *c = (capture_op_t *)op;
    sl_harness_t *h = c->h;
    for (uint32_t i = 0; i < b->n && h->nrows < SL_HARNESS_MAX_OUT; i++) {
        char line[2048];
        size_t off = 0;
        for (uint32_t f = 0; f < sl_schema_nfields(h->out_schema); f++) {
            if (f)
                line[off++] = ',';
            int w = sl_row_format_field(&b->rows[i], h->out_schema, f, line + off, sizeof line - off - 32);
            if (w < 0)
                return w;
            off += (size_t)w;
        }
        snprintf(line + off, sizeof line - off, "@%lld", (long long)b->ts[i]);
        h->rows[h->nrows++] = strdup(line);
    }
    return 0;
}

static int capture_watermark(sl_operator_t *op, int64_t wm) {
    sl_harness_t *h = ((capture_op_t *)op)->h;
    if (h->capture_watermarks && h->nrows < SL_HARNESS_MAX_OUT) {
        char line[64];
        snprintf(line, sizeof line, "WM@%lld", (long long)wm);
        h->rows[h->nrows++] = strdup(line);
    }
    return 0;
}

static const sl_operator_vtable_t capture_vt = {.kind = "capture",
                                                .process = capture_process,
                                                .watermark = capture_watermark,
                                                .size = sizeof(capture_op_t),
                                                .ninputs = 1};

static int set_params(sl_params_t *p, const char *spec) {
    if (spec == NULL)
        return 0;
    char *copy = strdup(spec), *save = NULL;
    int rc = 0;
    for (char *kv = strtok_r(copy, ";", &save); kv && rc == 0; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL) {
            rc = SL_EINVAL;
            break;
        }
        *eq = '\0';
        rc = sl_params_set(p, kv, eq + 1);
    }
    free(copy);
    return rc;
}

static int set_key(sl_harness_t *h, uint32_t i, const char *keys) {
    if (keys == NULL)
        return 0;
    uint32_t f[SL_KEY_MAX_FIELDS], n = 0;
    char *copy = strdup(keys), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n < SL_KEY_MAX_FIELDS; t = strtok_r(NULL, ",", &save))
        f[n++] = (uint32_t)atoi(t);
    free(copy);
    h->op->state = h->state;
    return sl_key_selector_init_fields(&h->op->key[i], h->in[i], f, n, h->error, sizeof h->error);
}

int sl_harness_open(sl_harness_t *h, const char *kind, const char *in0, const char *keys0, const char *in1,
                    const char *keys1, const char *out, const char *params) {
    memset(h, 0, sizeof *h);
    sl_params_init(&h->params);
    sl_row_builder_init(&h->builder);
    sl_batch_init(&h->batch);
    harness_now = 0;
    int rc = sl_mailbox_init(&h->mailbox);
    if (rc == 0)
        rc = sl_config_create(&h->config);
    if (rc == 0)
        rc = set_params(&h->params, params);
    if (rc == 0)
        rc = sl_schema_parse(in0, &h->in[0], h->error, sizeof h->error);
    if (rc == 0 && in1)
        rc = sl_schema_parse(in1, &h->in[1], h->error, sizeof h->error);
    if (rc == 0 && out)
        rc = sl_schema_parse(out, &h->out_schema, h->error, sizeof h->error);
    if (rc == 0)
        rc = sl_heap_backend_create(128, 0, 127, &h->state);
    if (rc == 0)
        rc = sl_timer_service_create(&h->timers);
    const sl_operator_vtable_t *vt = sl_operator_lookup(kind);
    if (rc || vt == NULL)
        return rc ? rc : SL_EINVAL;
    h->op = calloc(1, vt->size);
    h->capture = calloc(1, capture_vt.size);
    sl_operator_t *op = h->op;
    op->vt = vt;
    op->name = kind;
    op->params = &h->params;
    op->config = h->config;
    op->in_schema[0] = h->in[0];
    op->in_schema[1] = h->in[1];
    op->out_schema = h->out_schema;
    op->parallelism = 1;
    op->max_parallelism = 128;
    op->timers = h->timers;
    op->current_watermark = SL_WATERMARK_MIN;
    op->now_ms = harness_clock;
    sl_params_int(op->params, "state.ttl_ms", 0, &op->state_ttl_ms);
    op->fn_ctx.op = op;
    op->mailbox = &h->mailbox;
    op->service_at = INT64_MAX;
    op->error = h->error;
    op->error_len = sizeof h->error;
    if ((rc = set_key(h, 0, keys0)) != 0 || (rc = set_key(h, 1, keys1)) != 0)
        return rc;
    h->capture->vt = &capture_vt;
    ((capture_op_t *)h->capture)->h = h;
    if (h->out_schema) {
        sl_output_init(&h->out, sl_schema_nfields(h->out_schema));
        sl_output_add_next(&h->out, h->capture, 0);
        op->out = &h->out;
    }
    return vt->open ? vt->open(op) : 0;
}

int sl_harness_push(sl_harness_t *h, uint32_t input, const char *csv, int64_t ts) {
    int rc = sl_csv_parse_row(csv, strlen(csv), h->in[input], &h->builder, h->error, sizeof h->error);
    sl_row_t row;
    if (rc == 0)
        rc = sl_row_builder_finish(&h->builder, &row);
    if (rc)
        return rc;
    sl_batch_clear(&h->batch);
    h->batch.rows[0] = row;
    h->batch.ts[0] = ts;
    h->batch.n = 1;
    rc = sl_operator_run_batch(h->op, input, &h->batch);
    sl_batch_clear(&h->batch);
    return rc;
}

int sl_harness_watermark(sl_harness_t *h, int64_t wm) {
    h->op->current_watermark = wm;
    int rc = h->op->vt->watermark ? h->op->vt->watermark(h->op, wm) : sl_operator_default_watermark(h->op, wm);
    return rc == 0 && h->op->out ? sl_output_flush(h->op->out) : rc;
}

int sl_harness_proc_time(sl_harness_t *h, int64_t now) {
    harness_now = now;
    return sl_operator_fire_proc_timers(h->op, now);
}

int sl_harness_finish(sl_harness_t *h) {
    int rc = sl_harness_watermark(h, SL_WATERMARK_MAX);
    for (uint32_t i = 0; rc == 0 && i < h->op->vt->ninputs; i++)
        if (h->op->vt->end_input)
            rc = h->op->vt->end_input(h->op, i);
    if (rc == 0 && h->op->vt->finish)
        rc = h->op->vt->finish(h->op);
    return rc == 0 && h->op->out ? sl_output_flush(h->op->out) : rc;
}

int sl_harness_await(sl_harness_t *h, uint32_t nrows, int64_t timeout_ms) {
    sl_operator_t *op = h->op;
    int64_t end = sl_monotonic_ms() + timeout_ms;
    while (h->nrows < nrows) {
        int64_t now = sl_monotonic_ms();
        if (now >= end)
            return SL_ETIMEDOUT;
        if (!atomic_exchange(&op->service_requested, false) && now < op->service_at) {
            int rc = sl_mailbox_wait_signal(&h->mailbox, op->service_at < end ? op->service_at : end);
            if (rc)
                return rc;
            atomic_store(&op->service_requested, false);
        }
        int rc = op->vt->service(op, sl_monotonic_ms());
        if (rc == 0 && op->out)
            rc = sl_output_flush(op->out);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char *sl_harness_sorted(const sl_harness_t *h) {
    char **copy = malloc((h->nrows + 1) * sizeof *copy);
    size_t len = 1;
    for (uint32_t i = 0; i < h->nrows; i++) {
        copy[i] = h->rows[i];
        len += strlen(h->rows[i]) + 1;
    }
    qsort(copy, h->nrows, sizeof *copy, cmp_str);
    char *s = malloc(len);
    s[0] = '\0';
    for (uint32_t i = 0; i < h->nrows; i++) {
        if (i)
            strcat(s, "|");
        strcat(s, copy[i]);
    }
    free(copy);
    return s;
}

void sl_harness_clear(sl_harness_t *h) {
    for (uint32_t i = 0; i < h->nrows; i++)
        free(h->rows[i]);
    h->nrows = 0;
}

void sl_harness_close(sl_harness_t *h) {
    if (h->op) {
        if (h->op->vt->close)
            h->op->vt->close(h->op);
        sl_key_buf_destroy(&h->op->key_buf);
        free(h->op);
    }
    free(h->capture);
    if (h->out_schema)
        sl_output_destroy(&h->out);
    sl_harness_clear(h);
    sl_keyed_backend_destroy(h->state);
    sl_timer_service_destroy(h->timers);
    for (uint32_t i = 0; i < 2; i++)
        sl_schema_destroy(h->in[i]);
    sl_schema_destroy(h->out_schema);
    sl_row_builder_destroy(&h->builder);
    sl_batch_destroy(&h->batch);
    sl_params_destroy(&h->params);
    sl_config_destroy(h->config);
    sl_mailbox_destroy(&h->mailbox);
}
