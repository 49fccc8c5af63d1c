/* Operator test harness: runs one operator outside any task, like Flink's
 * OneInputStreamOperatorTestHarness. Rows go in as CSV text, watermarks and processing time
 * are set by the test, and what the operator emits is captured as text "f1,f2,...@ts", so a
 * test can assert exact outputs with exact timing of watermarks. */
#ifndef SL_TESTS_OP_HARNESS_H
#define SL_TESTS_OP_HARNESS_H

#include <sluice/row.h>

#include <stdint.h>

#include "core/config.h"
#include "core/mailbox.h"
#include "core/params.h"
#include "operators/operator.h"

#define SL_HARNESS_MAX_OUT 4096

typedef struct sl_harness_s {
    sl_operator_t *op;
    sl_params_t params;
    sl_config_t *config;
    sl_schema_t *in[2];
    sl_schema_t *out_schema;
    sl_keyed_backend_t *state;
    sl_timer_service_t *timers;
    sl_output_t out;
    sl_operator_t *capture;
    sl_row_builder_t builder;
    sl_batch_t batch;
    char error[512];
    char *rows[SL_HARNESS_MAX_OUT]; /* captured "fields@ts" strings */
    uint32_t nrows;
    bool capture_watermarks;        /* also capture "WM@x" when a watermark passes */
    sl_mailbox_t mailbox;           /* where service requests (async I/O) arrive */
} sl_harness_t;

/* Creates operator `kind`. `params` is "k=v;k=v" (values may not contain ';'), `keys0` and
 * `keys1` are key field indexes ("0" or "0,2") or NULL for an unkeyed input, `in1` NULL for
 * one-input operators, `out` NULL for sinks. Then opens the operator. Returns its result. */
int sl_harness_open(sl_harness_t *h, const char *kind, const char *in0, const char *keys0, const char *in1,
                    const char *keys1, const char *out, const char *params);
/* One row (CSV text of the input's schema) with event time `ts` into input `input`. */
int sl_harness_push(sl_harness_t *h, uint32_t input, const char *csv, int64_t ts);
int sl_harness_watermark(sl_harness_t *h, int64_t wm);
/* Sets processing time and fires due processing-time timers. */
int sl_harness_proc_time(sl_harness_t *h, int64_t now);
/* Operators with a service (async I/O): waits for service requests or due times and runs
 * them until `nrows` rows are captured or `timeout_ms` passes (then SL_ETIMEDOUT). */
int sl_harness_await(sl_harness_t *h, uint32_t nrows, int64_t timeout_ms);
/* End of input: the final watermark, end_input on every input, finish. */
int sl_harness_finish(sl_harness_t *h);
/* Captured rows sorted, joined with '|', for exact comparison. The caller frees it. */
char *sl_harness_sorted(const sl_harness_t *h);
/* Forgets captured rows. */
void sl_harness_clear(sl_harness_t *h);
void sl_harness_close(sl_harness_t *h);

#endif
