/* User functions: the C a job author writes.
 *
 * User functions live in the job's shared library and are named by symbol in the job graph,
 * so every TaskManager finds them with dlsym after loading the library. Each function gets a
 * context (subtask index, parameters, keyed state and timers for keyed operators) and works on
 * rows in place (<sluice/row.h>). Return 0 (or the documented positive value) on success and a
 * negative SL_E* code to fail the task; sl_fn_fail() attaches a message. Functions run on the
 * subtask's thread only, never concurrently for one subtask. */
#ifndef SL_FUNCTION_H
#define SL_FUNCTION_H

#include <sluice/row.h>

#include <stdint.h>

typedef struct sl_fn_ctx_s sl_fn_ctx_t;     /* per subtask; borrowed for the call */
typedef struct sl_collector_s sl_collector_t; /* emits rows downstream */

/* ---- Context ---- */
uint32_t sl_fn_subtask_index(const sl_fn_ctx_t *ctx);
uint32_t sl_fn_parallelism(const sl_fn_ctx_t *ctx);
/* Parameter set on the operator with sl_stream_param(); NULL when absent. */
const char *sl_fn_param(const sl_fn_ctx_t *ctx, const char *key);
/* Current watermark (event time, ms) and processing time (epoch ms). */
int64_t sl_fn_watermark(const sl_fn_ctx_t *ctx);
int64_t sl_fn_now(const sl_fn_ctx_t *ctx);
/* Records a message for the failure the function is about to return. Returns `err`. */
int sl_fn_fail(sl_fn_ctx_t *ctx, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- Keyed state and timers (keyed operators only; scoped by the current key) ----
 * Value state by name: get returns 1 and a borrowed pointer (valid until the next call on that
 * state: get, put or clear), 0 when absent. */
int sl_fn_value_get(sl_fn_ctx_t *ctx, const char *state, const void **val, uint32_t *len);
int sl_fn_value_put(sl_fn_ctx_t *ctx, const char *state, const void *val, uint32_t len);
int sl_fn_value_clear(sl_fn_ctx_t *ctx, const char *state);
/* List state by name: append, visit in order (stop by returning non-zero), clear. */
int sl_fn_list_add(sl_fn_ctx_t *ctx, const char *state, const void *val, uint32_t len);
int sl_fn_list_visit(sl_fn_ctx_t *ctx, const char *state,
                     int (*cb)(void *arg, const void *val, uint32_t len), void *arg);
int sl_fn_list_clear(sl_fn_ctx_t *ctx, const char *state);
/* Map state by name: user key -> value, both plain bytes. get returns 1 and a borrowed pointer
 * (valid until the next call on that state), 0 when the user key is absent. put inserts or
 * replaces; remove of an absent user key is not an error. visit calls `cb` once per entry, in no
 * particular order (sorted by user-key bytes on RocksDB, hash order on the heap backend), and
 * stops at the first non-zero return, which it returns; `cb` must not modify the same state.
 * clear removes every entry of the current key. */
typedef int (*sl_map_visit_cb)(void *arg, const void *ukey, uint32_t ukey_len, const void *val, uint32_t len);
int sl_fn_map_get(sl_fn_ctx_t *ctx, const char *state, const void *ukey, uint32_t ukey_len, const void **val,
                  uint32_t *len);
int sl_fn_map_put(sl_fn_ctx_t *ctx, const char *state, const void *ukey, uint32_t ukey_len, const void *val,
                  uint32_t len);
int sl_fn_map_remove(sl_fn_ctx_t *ctx, const char *state, const void *ukey, uint32_t ukey_len);
int sl_fn_map_visit(sl_fn_ctx_t *ctx, const char *state, sl_map_visit_cb cb, void *arg);
int sl_fn_map_clear(sl_fn_ctx_t *ctx, const char *state);

/* Reducing state (Flink's ReducingState): one value per key, and every value added is folded
 * into it by the state's reduce function, declared once on the operator with
 * sl_stream_reducing_state(). Values of one state have a fixed size, at most
 * SL_STATE_REDUCE_MAX bytes, fixed by the first add after the state was empty: the function
 * then combines in place, with no output buffer to size. `acc` holds the current value,
 * 16-byte aligned (it may be cast to a struct); `in` is the pointer given to
 * sl_fn_reducing_add; both are `len` bytes. Return 0, or < 0 to fail (sl_fn_fail). */
#define SL_STATE_REDUCE_MAX 1024
typedef int (*sl_state_reduce_fn)(sl_fn_ctx_t *ctx, void *acc, const void *in, uint32_t len);
/* add: stores `val` when the state is empty, else reduces it into the stored value
 * (SL_EINVAL when `len` differs from the stored value's size). get: 1 and a borrowed pointer
 * (valid until the next call on that state; copy it before casting, it is not aligned), 0 when
 * empty. clear: empties it. */
int sl_fn_reducing_add(sl_fn_ctx_t *ctx, const char *state, const void *val, uint32_t len);
int sl_fn_reducing_get(sl_fn_ctx_t *ctx, const char *state, const void **val, uint32_t *len);
int sl_fn_reducing_clear(sl_fn_ctx_t *ctx, const char *state);

/* Aggregating state (Flink's AggregatingState): one accumulator per key of a user aggregate
 * (sl_aggregate_t, below, the same as agg(symbol) in sl_stream_aggregate), declared once on the
 * operator with sl_stream_aggregating_state(). add: creates the accumulator (init) when the
 * state is empty, then adds the row (add). get: writes the result into field `field` of `out`
 * (result) and returns 1, or returns 0 without writing when the state is empty. clear: empties
 * it. */
int sl_fn_aggregating_add(sl_fn_ctx_t *ctx, const char *state, const sl_row_t *in);
int sl_fn_aggregating_get(sl_fn_ctx_t *ctx, const char *state, sl_row_builder_t *out, uint32_t field);
int sl_fn_aggregating_clear(sl_fn_ctx_t *ctx, const char *state);

/* A state name used with functions of another kind than its first use (a value state read as a
 * map, a reducing state read with sl_fn_value_get, ...), reducing or aggregating state that was
 * not declared, and a declared function that cannot be found all fail the call with SL_EINVAL
 * (SL_ESYMBOL for a missing symbol) and a message naming the state. */

/* Registers an event-time (or processing-time) timer for the current key. */
int sl_fn_timer_event(sl_fn_ctx_t *ctx, int64_t ts);
int sl_fn_timer_proc(sl_fn_ctx_t *ctx, int64_t ts);

/* ---- Collector ---- */
/* Starts an output row with the operator's output schema; set its fields, then emit. */
sl_row_builder_t *sl_collector_row(sl_collector_t *out);
int sl_collector_emit(sl_collector_t *out);
/* Emits `row` unchanged (copied), e.g. from a filter-like flatMap. */
int sl_collector_emit_row(sl_collector_t *out, const sl_row_t *row);

/* ---- Function types ---- */
/* map: fills `out` (already started with the output schema) from `in`. */
typedef int (*sl_map_fn)(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out);
/* filter: 1 keeps the row, 0 drops it, <0 fails. */
typedef int (*sl_filter_fn)(sl_fn_ctx_t *ctx, const sl_row_t *in);
/* flatMap: emits zero or more rows through `out`. */
typedef int (*sl_flatmap_fn)(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_collector_t *out);
/* key: writes up to `cap` key bytes into buf and their count into *len; when cap is too
 * small returns SL_ERANGE with *len = the size needed. */
typedef int (*sl_key_fn)(void *ctx, const sl_row_t *in, uint8_t *buf, uint32_t cap, uint32_t *len);
/* reduce: combines the accumulated row and a new row of the same schema into `out`. */
typedef int (*sl_reduce_fn)(sl_fn_ctx_t *ctx, const sl_row_t *acc, const sl_row_t *in, sl_row_builder_t *out);
/* process (keyed or two-input co-process): input is 0 or 1. */
typedef int (*sl_process_fn)(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts,
                             sl_collector_t *out);
/* timer callback of a keyed process function. */
typedef int (*sl_on_timer_fn)(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out);
/* join: builds one output row from a matching pair. */
typedef int (*sl_join_fn)(sl_fn_ctx_t *ctx, const sl_row_t *left, const sl_row_t *right, sl_row_builder_t *out);
/* sink: consumes a row. */
typedef int (*sl_sink_fn)(sl_fn_ctx_t *ctx, const sl_row_t *in, int64_t ts);
/* generator source: produces the row with global sequence number `seq` (replayable: the same
 * seq always gives the same row). Returns 1 when produced, 0 when the sequence has ended. Sets
 * *ts to the event time or leaves it. */
typedef int (*sl_generator_fn)(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);

/* User aggregate: the symbol names a `const sl_aggregate_t`. The accumulator is `acc_size`
 * plain bytes, at most 1024 (stored in keyed state as they are, so no pointers inside); the
 * callbacks get it 16-byte aligned, so it may be cast to a struct. */
typedef struct sl_aggregate_s {
    uint32_t acc_size;
    void (*init)(void *acc);
    void (*add)(void *acc, const sl_row_t *in);
    void (*merge)(void *acc, const void *other); /* for session windows; may be NULL otherwise */
    /* Writes the result as one field of type `result_type` into field `field` of `out`. */
    void (*result)(const void *acc, sl_row_builder_t *out, uint32_t field);
    sl_type_t result_type;
} sl_aggregate_t;

#endif
