/* Asynchronous I/O: calling an external service (Redis, a web service) from a stream without
 * waiting for each answer, so throughput does not depend on the service's latency.
 *
 * The user's async function starts a request for one input row and returns at once; it (or a
 * client thread) completes the request's result later, from any thread, with zero or more
 * output rows or an error. The engine keeps up to `capacity` requests in flight per subtask (a
 * full queue backpressures upstream), enforces a timeout per request, retries as configured,
 * and emits results in input order (ordered) or as they complete but never across a watermark
 * (unordered). Requests still in flight at a checkpoint are saved with it and issued again on
 * restore: calls are at-least-once, results downstream exactly-once for idempotent lookups. */
#ifndef SL_ASYNC_H
#define SL_ASYNC_H

#include <sluice/function.h>
#include <sluice/job.h>
#include <sluice/row.h>

#include <stdint.h>

/* The result of one request attempt. Owned by the engine; the user holds it from the async
 * call until it completes it, exactly once, from any thread (one thread at a time). */
typedef struct sl_async_result_s sl_async_result_t;

/* The request's input row (valid until completion; copy what outlives it). */
const sl_row_t *sl_async_result_input(const sl_async_result_t *r);
/* What the open function returned for this subtask (the client a completion callback needs),
 * so a request's callback can take the result alone as its argument. */
void *sl_async_result_user(const sl_async_result_t *r);
/* The attempt this result belongs to: 1 for the first call, 2 for the first retry, ... */
uint32_t sl_async_result_attempt(const sl_async_result_t *r);
/* Output rows: start a row of the operator's output schema, set its fields, then add it.
 * sl_async_result_add returns SL_ENOMEM / SL_ERANGE when the row could not be built. */
sl_row_builder_t *sl_async_result_row(sl_async_result_t *r);
int sl_async_result_add(sl_async_result_t *r);
/* The rows added so far (for retry predicates). */
uint32_t sl_async_result_nrows(const sl_async_result_t *r);
sl_row_t sl_async_result_get(const sl_async_result_t *r, uint32_t i);
/* Completes with the rows added so far (none is a valid answer: the input produces nothing).
 * After this call the result belongs to the engine again: do not touch it. */
void sl_async_complete(sl_async_result_t *r);
/* Completes with an error (`err` < 0) and a message: retried when the retry strategy allows,
 * else the task fails with the message. */
void sl_async_complete_error(sl_async_result_t *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- Function types ---- */
/* Starts a request for `in` (borrowed for the call only; sl_async_result_input() stays
 * valid). `user` is what the open function returned. Return 0 once the request is started
 * (the result then must be completed, possibly already inside this call) or < 0 to fail the
 * request at once (counts as an error attempt; the result must then not be completed). */
typedef int (*sl_async_fn)(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *result);
/* Per subtask, on the task thread: open a client before the first request; close it after the
 * last. close must make every outstanding result complete (or never be touched again) before
 * it returns, e.g. by stopping the client's thread. */
typedef int (*sl_async_open_fn)(sl_fn_ctx_t *ctx, void **user);
typedef void (*sl_async_close_fn)(sl_fn_ctx_t *ctx, void *user);
/* A request timed out: complete `result` (on this thread) with fallback rows, or with an
 * error to fail the job. Without a handler a timeout fails the job. */
typedef int (*sl_async_timeout_fn)(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *result);
/* Retry on a result: 1 = retry this request, 0 = accept its rows (read them with
 * sl_async_result_nrows / sl_async_result_get; the input with sl_async_result_input). */
typedef int (*sl_async_retry_if_fn)(sl_fn_ctx_t *ctx, const sl_async_result_t *result);

typedef enum { SL_ASYNC_ORDERED = 0, SL_ASYNC_UNORDERED } sl_async_mode_t;
typedef enum { SL_ASYNC_RETRY_NONE = 0, SL_ASYNC_RETRY_FIXED, SL_ASYNC_RETRY_EXPONENTIAL } sl_async_retry_t;

typedef struct sl_async_options_s {
    sl_async_mode_t mode;
    uint32_t capacity;          /* requests in flight per subtask; >= 1 */
    int64_t timeout_ms;         /* whole request including its retries; > 0 */
    const char *open_symbol;    /* sl_async_open_fn, may be NULL */
    const char *close_symbol;   /* sl_async_close_fn, may be NULL */
    const char *timeout_symbol; /* sl_async_timeout_fn, NULL = a timeout fails the job */
    /* Retries: on an error (retry_on_error) and/or when retry_if_symbol (sl_async_retry_if_fn)
     * says so; at most max_attempts calls in all (1 = no retry). */
    sl_async_retry_t retry;
    uint32_t max_attempts;
    int64_t retry_delay_ms;     /* fixed delay, or the first delay of the backoff */
    int64_t retry_max_delay_ms; /* exponential: upper bound of the delay */
    double retry_multiplier;    /* exponential: factor per attempt (>= 1) */
    int retry_on_error;
    const char *retry_if_symbol;
} sl_async_options_t;

/* Default options: ordered, capacity 100, timeout 10 s, no retry. */
sl_async_options_t sl_async_options_default(void);

/* Applies the async function named `fn_symbol` (sl_async_fn) to every row; output rows have
 * `out_schema` and the input row's timestamp. Errors in the options are recorded on the job
 * naming the operator and the option. */
sl_stream_t *sl_stream_async(sl_stream_t *s, const char *name, const char *fn_symbol, const char *out_schema,
                             const sl_async_options_t *opts);

/* ---- Built-in lookups (async functions of the engine) ---- */
typedef enum { SL_REDIS_GET = 0, SL_REDIS_HGET, SL_REDIS_HGETALL } sl_redis_command_t;
/* Redis at `address` (host:port). The key is key_prefix + field `key_field` of the row (as
 * text). Output: the input fields, then
 *   GET, HGET (of hash field `hash_field`): value:string? (NULL when the key is missing);
 *   HGETALL: field:string, value:string, one row per hash entry (none when missing). */
sl_stream_t *sl_stream_redis_lookup(sl_stream_t *s, const char *name, const char *address, sl_redis_command_t cmd,
                                    const char *key_field, const char *key_prefix, const char *hash_field,
                                    const sl_async_options_t *opts);
/* HTTP GET of url_prefix + field `key_field` (URL-escaped). Output: the input fields, then
 * status:int32 and body:string. Non-2xx statuses are results, transport errors are errors. */
sl_stream_t *sl_stream_http_lookup(sl_stream_t *s, const char *name, const char *url_prefix, const char *key_field,
                                   const sl_async_options_t *opts);

#endif
