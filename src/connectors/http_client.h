/* Non-blocking HTTP GET client usable from any thread: a libcurl multi handle driven by
 * curl_multi_socket_action from a libuv loop (one uv_poll_t per socket curl watches, one
 * uv_timer_t for curl's timeout) on the client's own thread.
 *
 * DESIGN
 * Callers queue requests (mutex-guarded list + uv_async_send); the loop drains the whole queue
 * per wakeup and adds each request to the multi handle. Connections stay open between
 * requests (HTTP/1.1 keep-alive, curl's connection cache in the multi handle), at most
 * max_connections at once. At most max_connections requests are handed to curl at a time;
 * the others wait in the client's FIFO (curl's cost per request grows with the requests it
 * holds), so requests start in the order they were made.
 * Transfers (a curl easy handle and its body buffer) are recycled, so a request allocates
 * nothing once the pool has grown. Every callback runs on the loop thread. */
#ifndef SL_CONNECTORS_HTTP_CLIENT_H
#define SL_CONNECTORS_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_http_client_s sl_http_client_t;

typedef struct sl_http_options_s {
    uint32_t max_connections;   /* open connections and running requests; default 64 */
    int64_t connect_timeout_ms; /* per connection; default 2000 */
    int64_t request_timeout_ms; /* whole request, 0 = none (the caller's own timeout); default 0 */
    size_t max_body_bytes;      /* larger bodies fail the request; default 16 MiB */
} sl_http_options_t;

/* Completion of one GET, on the client's loop thread, exactly once per accepted request.
 *   status 0:   an HTTP answer; `http_status` is its code (404 and 500 are answers too),
 *               `body`/`len` its body (NUL-terminated for convenience), errmsg NULL.
 *   status < 0: no answer: SL_ECONNREFUSED (cannot connect), SL_ETIMEDOUT, SL_ERANGE (body
 *               over max_body_bytes), SL_EIO (other transport errors), SL_ECANCELED (the
 *               client was closed first), SL_ENOMEM; http_status 0, body NULL, and `errmsg`
 *               names the URL and the cause.
 * `body` and `errmsg` are borrowed for the call only. The callback must not call
 * sl_http_client_close(); it may queue further requests. */
typedef void (*sl_http_cb)(void *arg, int status, long http_status, const char *body, size_t len,
                           const char *errmsg);

sl_http_options_t sl_http_options_default(void);

/* Creates the client and starts its thread. `opts` NULL means defaults. Errors (message in
 * `err`): SL_EINVAL (bad options), SL_ENOMEM, SL_EIO (libcurl initialisation), libuv errors.
 * Any thread. */
int sl_http_client_open(const sl_http_options_t *opts, sl_http_client_t **out, char *err, size_t errlen);

/* Queues a GET of `url` (copied). Returns 0 and `cb` runs exactly once later, or SL_EINVAL,
 * SL_ENOMEM, SL_ECANCELED (closing) and `cb` never runs. Any thread, also from a callback;
 * never concurrently with or after sl_http_client_close(). */
int sl_http_client_get(sl_http_client_t *c, const char *url, sl_http_cb cb, void *arg);

/* Completes every unfinished request with SL_ECANCELED, stops the thread, closes the
 * connections and frees the client. Every callback has returned when close returns. NULL is a
 * no-op. Any thread except the client's own. */
void sl_http_client_close(sl_http_client_t *c);

#endif
