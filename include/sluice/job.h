/* Building a job: sources, transformations, keyed state, windows, joins and sinks.
 *
 * Calls chain like a fluent API; an invalid call records the job's first error (read it with
 * sl_job_error()) and returns NULL, and every call given a NULL stream returns NULL, so a job
 * can be written without checking each step and validated once at the end. User functions are
 * named by symbol: the engine finds them in the job library with dlsym, on every TaskManager.
 * Schemas are written "name:type,..." (see sl_schema_parse). All objects belong to the job and
 * are freed by sl_job_destroy(). Not thread-safe: build a job on one thread. */
#ifndef SL_JOB_H
#define SL_JOB_H

#include <sluice/function.h>
#include <sluice/row.h>

#include <stdint.h>

typedef struct sl_job_s sl_job_t;
typedef struct sl_stream_s sl_stream_t;

int sl_job_create(const char *name, sl_job_t **out);
void sl_job_destroy(sl_job_t *job);
/* The first error recorded while building, or NULL. */
const char *sl_job_error(const sl_job_t *job);
/* Sets a job-level parallelism used where an operator sets none (0 = from configuration). */
void sl_job_set_parallelism(sl_job_t *job, uint32_t parallelism);

/* ---- Sources ---- */
/* Lines of a CSV file parsed into `schema` (header row skipped when `header` is non-zero).
 * A malformed line fails the job with file:line, or is skipped and counted with
 * csv.ignore-parse-errors: true. */
sl_stream_t *sl_source_csv(sl_job_t *job, const char *name, const char *path, const char *schema, int header);
/* Text lines from a file as rows "line:string". */
sl_stream_t *sl_source_lines(sl_job_t *job, const char *name, const char *path);
/* CSV lines read from a TCP server (host:port); at-most-once, not replayable. */
sl_stream_t *sl_source_socket(sl_job_t *job, const char *name, const char *host, uint16_t port,
                              const char *schema);
/* Rows 0..count-1 (count 0 = unbounded) from a user generator function (sl_generator_fn). */
sl_stream_t *sl_source_generator(sl_job_t *job, const char *name, const char *fn_symbol, const char *schema,
                                 uint64_t count);
/* Nexmark events of one table ("person", "auction" or "bid") out of a sequence of `events`
 * events (0 = unbounded) at `rate` events/s of event time (0 = generator default). */
sl_stream_t *sl_source_nexmark(sl_job_t *job, const char *name, const char *table, uint64_t events,
                               uint64_t rate);

/* ---- Stream settings ---- */
sl_stream_t *sl_stream_parallelism(sl_stream_t *s, uint32_t parallelism);
/* Sets a parameter visible to the operator's user function (sl_fn_param). */
sl_stream_t *sl_stream_param(sl_stream_t *s, const char *key, const char *value);
/* State TTL for the user state of this (keyed process) operator: a value, list element, map
 * entry, or reducing or aggregating value expires `ttl_ms` of processing time after it was
 * last written, and then reads as absent (Flink's StateTtlConfig with its defaults). Expired
 * values and map entries are removed when read. */
sl_stream_t *sl_stream_state_ttl(sl_stream_t *s, int64_t ttl_ms);
/* Starts a new chain at this operator. */
sl_stream_t *sl_stream_start_chain(sl_stream_t *s);
/* Redistributes round robin to the next operator. */
sl_stream_t *sl_stream_rebalance(sl_stream_t *s);
/* Event time from field `ts_field` (timestamp or int64 ms) with watermarks lagging the
 * largest timestamp seen by `max_out_of_orderness_ms`; a subtask without records for
 * `idle_timeout_ms` (0 = never) is marked idle and does not hold back the watermark. */
sl_stream_t *sl_stream_watermarks(sl_stream_t *s, const char *ts_field, int64_t max_out_of_orderness_ms,
                                  int64_t idle_timeout_ms);
const sl_schema_t *sl_stream_schema(const sl_stream_t *s);

/* ---- Transformations ---- */
sl_stream_t *sl_stream_map(sl_stream_t *s, const char *name, const char *fn_symbol, const char *out_schema);
sl_stream_t *sl_stream_filter(sl_stream_t *s, const char *name, const char *fn_symbol);
sl_stream_t *sl_stream_flat_map(sl_stream_t *s, const char *name, const char *fn_symbol, const char *out_schema);
/* Keeps only fields `fields` ("2,0,5"), in that order. */
sl_stream_t *sl_stream_project(sl_stream_t *s, const char *name, const char *fields);
sl_stream_t *sl_stream_union(sl_stream_t *a, sl_stream_t *b);

/* ---- Keys ---- */
/* Partitions by the named fields ("auction" or "0,2" by index). */
sl_stream_t *sl_stream_key_by(sl_stream_t *s, const char *fields);
/* Partitions by a user key function (sl_key_fn). */
sl_stream_t *sl_stream_key_by_fn(sl_stream_t *s, const char *fn_symbol);

/* Rolling aggregation on a keyed stream; emits the updated result for every input row.
 * `aggs` is "count(), sum(price), min(2), max(x), avg(y), agg(my_aggregate_symbol)"; output
 * rows are the key fields followed by one field per aggregate. */
sl_stream_t *sl_stream_aggregate(sl_stream_t *keyed, const char *name, const char *aggs);
/* Rolling reduce with a user function (sl_reduce_fn); output has the input schema. */
sl_stream_t *sl_stream_reduce(sl_stream_t *keyed, const char *name, const char *fn_symbol);
/* Keyed process function with state and timers (sl_process_fn, optional sl_on_timer_fn). */
sl_stream_t *sl_stream_process(sl_stream_t *keyed, const char *name, const char *fn_symbol,
                               const char *timer_symbol, const char *out_schema);
/* Declares the function of a reducing or aggregating state named `state` of this process (or
 * co-process) operator, like Flink's ReducingStateDescriptor / AggregatingStateDescriptor:
 * `fn_symbol` names an sl_state_reduce_fn, `agg_symbol` a `const sl_aggregate_t`. Its user
 * function then uses the state by name (sl_fn_reducing_*, sl_fn_aggregating_*). A name is
 * declared once, with one kind. */
sl_stream_t *sl_stream_reducing_state(sl_stream_t *s, const char *state, const char *fn_symbol);
sl_stream_t *sl_stream_aggregating_state(sl_stream_t *s, const char *state, const char *agg_symbol);
/* Two inputs, keyed alike or both unkeyed, one user process function (input 0 or 1). */
sl_stream_t *sl_stream_co_process(sl_stream_t *a, sl_stream_t *b, const char *name, const char *fn_symbol,
                                  const char *timer_symbol, const char *out_schema);

/* ---- Windows ---- */
typedef enum { SL_WINDOW_TUMBLING, SL_WINDOW_SLIDING, SL_WINDOW_SESSION } sl_window_kind_t;
typedef enum { SL_TIME_EVENT, SL_TIME_PROCESSING } sl_time_kind_t;
typedef struct sl_window_spec_s {
    sl_window_kind_t kind;
    sl_time_kind_t time;
    int64_t size_ms;             /* tumbling, sliding */
    int64_t slide_ms;            /* sliding */
    int64_t gap_ms;              /* session */
    int64_t allowed_lateness_ms; /* late rows within this re-fire their window */
} sl_window_spec_t;

/* Windowed aggregation on a keyed stream. Output: key fields, window_start, window_end
 * (timestamps), then one field per aggregate (see sl_stream_aggregate). */
sl_stream_t *sl_stream_window_aggregate(sl_stream_t *keyed, const char *name, const sl_window_spec_t *w,
                                        const char *aggs);
/* Inner join of two keyed streams within the same window; `fn_symbol` (sl_join_fn) builds
 * rows of `out_schema`, or NULL to emit all left fields then all right fields. */
sl_stream_t *sl_stream_window_join(sl_stream_t *left, sl_stream_t *right, const char *name,
                                   const sl_window_spec_t *w, const char *fn_symbol, const char *out_schema);
/* Inner join where right.ts is in [left.ts + lower_ms, left.ts + upper_ms]. */
sl_stream_t *sl_stream_interval_join(sl_stream_t *left, sl_stream_t *right, const char *name, int64_t lower_ms,
                                     int64_t upper_ms, const char *fn_symbol, const char *out_schema);

/* ---- Sinks (return the sink's stream handle, only for settings such as parallelism) ---- */
sl_stream_t *sl_sink_print(sl_stream_t *s, const char *name);
/* CSV with a header row; with parallelism > 1 each subtask writes path.<index>. */
sl_stream_t *sl_sink_csv(sl_stream_t *s, const char *name, const char *path);
sl_stream_t *sl_sink_discard(sl_stream_t *s, const char *name);
sl_stream_t *sl_sink_function(sl_stream_t *s, const char *name, const char *fn_symbol);

/* ---- A job library ----
 * A job library (job.so) exports this entry point; `sluice run job.so args...` loads it, calls
 * it to build the job, and runs the job. Return 0, or an error code to abort. */
typedef int (*sl_job_main_fn)(sl_job_t *job, int argc, char **argv);
#define SL_JOB_MAIN_SYMBOL "sluice_job_main"

#endif
