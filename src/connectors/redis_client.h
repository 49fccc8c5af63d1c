/* Asynchronous Redis client usable from any thread: one hiredis async connection driven by a
 * libuv loop on the client's own thread. Callers queue commands; the loop drains the whole
 * queue per wakeup into hiredis, which writes them as one pipelined batch.
 *
 * DESIGN
 * Threads: sl_redis_client_command() may be called from any thread (a mutex-guarded queue and
 * uv_async_send); every callback runs on the client's loop thread. Connection states:
 *
 *   state        requests arriving                  leaves to
 *   CONNECTING   wait (bounded by reconnect_wait)   CONNECTED, or BACKOFF on failure/timeout
 *   CONNECTED    sent at once (pipelined)           BACKOFF when the connection is lost
 *   BACKOFF      wait (bounded by reconnect_wait)   CONNECTING when the backoff timer fires
 *
 * Open waits for the first connection: an unreachable server is an error of open. Once open,
 * the client reconnects on its own with exponential backoff (reconnect_min_ms doubling up to
 * reconnect_max_ms, for as long as the client is open). Requests in flight on a lost
 * connection fail ("redis host:port: connection lost ..."); requests made while disconnected
 * wait up to reconnect_wait_ms for a connection, then fail ("redis host:port: not connected
 * ..."); reconnect_wait_ms = 0 makes them fail at once. */
#ifndef SL_CONNECTORS_REDIS_CLIENT_H
#define SL_CONNECTORS_REDIS_CLIENT_H

#include <hiredis/hiredis.h>

#include <stddef.h>
#include <stdint.h>

typedef struct sl_redis_client_s sl_redis_client_t;

typedef struct sl_redis_options_s {
    int64_t connect_timeout_ms; /* one connection attempt, including open's; default 2000 */
    int64_t reconnect_min_ms;   /* first delay after a lost connection; default 50 */
    int64_t reconnect_max_ms;   /* upper bound of the doubling backoff; default 2000 */
    int64_t reconnect_wait_ms;  /* how long a request waits for a connection; default 1000 */
} sl_redis_options_t;

/* Completion of one command, on the client's loop thread, exactly once per accepted command.
 *   status 0:           `reply` is the server's answer (never an error reply).
 *   status SL_EPROTO:   the server answered with an error reply (reply->type ==
 *                       REDIS_REPLY_ERROR, e.g. WRONGTYPE); errmsg is its text.
 *   status SL_EIO:      the connection was lost with the command in flight; reply NULL.
 *   status SL_ETIMEDOUT: made while disconnected, no connection within reconnect_wait_ms.
 *   status SL_ECONNREFUSED: made while disconnected with reconnect_wait_ms = 0 (fail fast).
 *   status SL_ECANCELED: the client was closed first.
 *   status SL_ENOMEM:   hiredis could not queue the command.
 * reply is NULL for every other status, and errmsg names the address.
 * `reply` and `errmsg` (NULL when status is 0) are borrowed for the call only. The callback
 * must not call sl_redis_client_close(); it may queue further commands. */
typedef void (*sl_redis_cb)(void *arg, int status, const redisReply *reply, const char *errmsg);

/* Defaults as documented in sl_redis_options_t. */
sl_redis_options_t sl_redis_options_default(void);

/* Connects to `address` ("host:port"; host a name or an IPv4 address, resolved on each
 * connection attempt) and starts the client's thread; returns once the first connection is
 * up. `opts` NULL means defaults. Errors, with a message naming the address in `err`:
 * SL_EINVAL (malformed address or options), SL_ECONNREFUSED (connection or resolution
 * failed), SL_ETIMEDOUT (no connection within connect_timeout_ms), SL_ENOMEM, or a libuv
 * error. On error nothing needs cleaning up. Any thread. */
int sl_redis_client_open(const char *address, const sl_redis_options_t *opts, sl_redis_client_t **out, char *err,
                         size_t errlen);

/* Queues one command of `argc` arguments (`argv[i]` of `argvlen[i]` bytes; argvlen NULL means
 * NUL-terminated strings). The arguments are copied: they may be freed on return. Returns 0
 * and `cb` runs exactly once later, or returns SL_EINVAL (argc < 1), SL_ENOMEM or
 * SL_ECANCELED (the client is closing) and `cb` never runs. Any thread, also from a callback;
 * never concurrently with or after sl_redis_client_close(). */
int sl_redis_client_command(sl_redis_client_t *c, int argc, const char *const *argv, const size_t *argvlen,
                            sl_redis_cb cb, void *arg);

/* The address the client was opened with (borrowed, valid until close). */
const char *sl_redis_client_address(const sl_redis_client_t *c);

/* Stops the client's thread after completing every unanswered command with SL_ECANCELED, and
 * frees the client. Every callback has returned when close returns. NULL is a no-op. Any
 * thread except the client's own (not from a callback). */
void sl_redis_client_close(sl_redis_client_t *c);

#endif
