/* Optional TLS for both planes (control-plane RPC in src/rpc, data plane in src/network):
 * a shared, reference-counted context built from PEM files, and a per-connection TLS session
 * over two OpenSSL memory BIOs that sits between a libuv stream and the plane's frame decoder.
 *
 * DESIGN. OpenSSL never touches the socket. Ciphertext that libuv reads is fed into the read
 * BIO (sl_tls_feed); sl_tls_read drives the handshake and decrypts into whatever buffer the
 * caller names (the data plane passes the pool buffer a BUFFER payload belongs in, so the
 * records are decrypted in place); handshake records and alerts OpenSSL produces meanwhile are
 * flushed with uv_write by the session itself. Outgoing frames are encrypted with
 * sl_tls_encrypt into one new buffer the caller uv_writes in place of the plaintext, so write
 * completion, backpressure and ordering stay the caller's (all of a session's output is
 * drained after every OpenSSL call, so records reach the socket in order).
 *
 * Both sides present a certificate and verify the peer's against the truststore (mutual TLS,
 * like Flink's internal SSL); host names are not checked: a peer is trusted when its
 * certificate chains to the cluster's CA. TLS 1.2 is the minimum, no session tickets. The
 * shared-secret HMAC handshake of each plane still runs, inside the TLS session.
 *
 * THREADS. A context may be shared by any number of endpoints and threads. A session belongs
 * to the loop thread of its connection. */
#ifndef SL_RPC_TLS_H
#define SL_RPC_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "core/config.h"

typedef struct sl_tls_ctx_s sl_tls_ctx_t;
typedef struct sl_tls_s sl_tls_t;

/* Size of a session's ciphertext read buffer (sl_tls_read_buf). */
#define SL_TLS_READ_BUF (64u * 1024u)

typedef struct sl_tls_config_s {
    const char *keystore;   /* PEM certificate (optionally followed by its chain) of this process */
    const char *key;        /* PEM private key of that certificate (unencrypted) */
    const char *truststore; /* PEM CA certificate(s) the peer's certificate must chain to */
} sl_tls_config_t;

/* ---- contexts ---- */

/* Loads the certificate, key and truststore. Errors (with a message naming the file in err):
 * SL_ENOENT (missing or unreadable file), SL_ECONFIG (not PEM, key does not match the
 * certificate, no CA certificate in the truststore, a path not given), SL_ENOMEM. The caller
 * owns one reference. Any thread. */
int sl_tls_ctx_create(const sl_tls_config_t *cfg, sl_tls_ctx_t **out, char *err, size_t errlen);
/* security.ssl.internal.{enabled,keystore,key,truststore}: *out = NULL when TLS is disabled
 * (returns 0), else as sl_tls_ctx_create, the message naming the key and the file. */
int sl_tls_ctx_from_config(const sl_config_t *config, sl_tls_ctx_t **out, char *err, size_t errlen);
void sl_tls_ctx_ref(sl_tls_ctx_t *ctx);
/* Drops one reference; the last one frees the context. NULL is a no-op. */
void sl_tls_ctx_destroy(sl_tls_ctx_t *ctx);

/* The process default: endpoints created with no context of their own (RPC endpoints whose
 * config leaves `tls` NULL) use it. A process sets it once at start, before creating
 * endpoints (the `sluice` commands do, from the configuration); it takes a reference, and
 * NULL clears it. sl_tls_default returns a borrowed pointer or NULL. */
void sl_tls_set_default(sl_tls_ctx_t *ctx);
sl_tls_ctx_t *sl_tls_default(void);

/* ---- sessions ---- */

/* A session of `ctx` on `stream` (borrowed; it must outlive the session's writes, which a
 * libuv handle does: they complete before its close callback). Errors: SL_ENOMEM. */
int sl_tls_create(sl_tls_ctx_t *ctx, int is_server, uv_stream_t *stream, sl_tls_t **out);
/* Frees the session. NULL is a no-op. Flushes already queued complete independently. */
void sl_tls_destroy(sl_tls_t *t);
/* The client's first flight (ClientHello), written to the stream; a server does nothing. */
int sl_tls_start(sl_tls_t *t, char *err, size_t errlen);
/* The buffer to hand libuv's alloc callback for ciphertext. */
uv_buf_t sl_tls_read_buf(sl_tls_t *t);
/* Takes `n` ciphertext bytes read from the socket. Errors: SL_ENOMEM. */
int sl_tls_feed(sl_tls_t *t, const uint8_t *data, size_t n);
/* Decrypts up to `cap` bytes into `out` (progressing the handshake first and flushing what
 * it writes). Returns the number of bytes (> 0), 0 when more ciphertext is needed, or an
 * error with the reason in err: SL_EPROTO (handshake or record failure, e.g. "the peer's
 * certificate was rejected: unable to get local issuer certificate" or "the peer speaks
 * plain text, not TLS"), SL_EIO (the peer closed the TLS session), or a write error. */
ssize_t sl_tls_read(sl_tls_t *t, void *out, size_t cap, char *err, size_t errlen);
/* 1 once the handshake completed (peer certificate verified). */
int sl_tls_ready(const sl_tls_t *t);
/* Ciphertext bytes received so far (0: the peer never said anything). */
uint64_t sl_tls_bytes_in(const sl_tls_t *t);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once ready, for logs. */
void sl_tls_describe(const sl_tls_t *t, char *buf, size_t len);
/* Encrypts the plaintext pieces bufs[0..n) and returns all pending ciphertext in a buffer
 * (*out, *outlen) that the caller writes to the stream and gives back with sl_tls_buf_free
 * once the write completed. Only once ready. Errors: SL_ECANCELED (handshake not finished),
 * SL_EPROTO (OpenSSL failure, reason in err), SL_ENOMEM. */
int sl_tls_encrypt(sl_tls_t *t, const uv_buf_t *bufs, unsigned n, uint8_t **out, size_t *outlen, char *err,
                   size_t errlen);
/* Gives back a buffer of sl_tls_encrypt: kept for reuse by `t`, or freed (t NULL, too many
 * kept, or a large one). NULL buf is a no-op. */
void sl_tls_buf_free(sl_tls_t *t, uint8_t *buf);

/* 1 when `data` starts like a TLS record from a client (a handshake record header): a plain
 * endpoint uses it to tell a TLS peer from garbage in its refusal. */
int sl_tls_looks_like_client_hello(const uint8_t *data, size_t n);

#endif
