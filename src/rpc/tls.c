/* Optional TLS of both planes over OpenSSL memory BIOs (see tls.h for the design): contexts
 * loaded from PEM files with errors that name the file, the process default context, and
 * sessions that turn ciphertext from a libuv stream into plaintext for a frame decoder and
 * frames into ciphertext for uv_write. */
#include "rpc/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"

#define KEY_KEYSTORE "security.ssl.internal.keystore"
#define KEY_KEY "security.ssl.internal.key"
#define KEY_TRUSTSTORE "security.ssl.internal.truststore"

/* Ciphertext buffers kept per session for reuse (see sl_tls_buf_free), and the largest kept. */
#define SPARE_MAX 16
#define SPARE_CAP_MAX (256u * 1024u)

/* A ciphertext buffer: its capacity, then the bytes handed out. */
typedef struct {
    size_t cap;
    max_align_t _align[];
} cbuf_t;

struct sl_tls_ctx_s {
    atomic_int refs;
    SSL_CTX *ssl_ctx;
};

/* Loop thread of the connection only. rbio/wbio belong to `ssl` (SSL_set_bio). */
struct sl_tls_s {
    SSL *ssl;
    BIO *rbio; /* ciphertext from the peer, waiting for SSL_read */
    BIO *wbio; /* ciphertext OpenSSL wrote, waiting for uv_write */
    uv_stream_t *stream;
    uint64_t bytes_in;
    int first_byte; /* of the peer's stream, -1 before any */
    cbuf_t *spare[SPARE_MAX];
    int nspare;
    uint8_t rbuf[SL_TLS_READ_BUF];
};

/* The most specific OpenSSL reason of the thread's error queue, which it then clears. */
static void ossl_reason(char *buf, size_t len) {
    unsigned long code = ERR_peek_last_error();
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    if (r)
        snprintf(buf, len, "%s", r);
    else if (code)
        ERR_error_string_n(code, buf, len);
    else
        snprintf(buf, len, "unknown OpenSSL error");
    ERR_clear_error();
}

/* ---- contexts ---- */

static int readable(const char *key, const char *path, char *err, size_t errlen) {
    if (!path || !*path) {
        snprintf(err, errlen, "TLS is enabled but %s is not set", key);
        return SL_ECONFIG;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s %s: cannot read: %s", key, path, strerror(errno));
        return SL_ENOENT;
    }
    fclose(f);
    return 0;
}

static EVP_PKEY *read_key(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static int load(SSL_CTX *ctx, const sl_tls_config_t *cfg, char *err, size_t errlen) {
    char why[256];
    int rc = readable(KEY_KEYSTORE, cfg->keystore, err, errlen);
    if (rc == 0)
        rc = readable(KEY_KEY, cfg->key, err, errlen);
    if (rc == 0)
        rc = readable(KEY_TRUSTSTORE, cfg->truststore, err, errlen);
    if (rc < 0)
        return rc;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->keystore) != 1) {
        ossl_reason(why, sizeof why);
        snprintf(err, errlen, "%s %s: not a PEM certificate (%s)", KEY_KEYSTORE, cfg->keystore, why);
        return SL_ECONFIG;
    }
    EVP_PKEY *pkey = read_key(cfg->key);
    if (!pkey) {
        ossl_reason(why, sizeof why);
        snprintf(err, errlen, "%s %s: not an unencrypted PEM private key (%s)", KEY_KEY, cfg->key, why);
        return SL_ECONFIG;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(pkey);
    if (!ok) {
        ossl_reason(why, sizeof why);
        snprintf(err, errlen, "%s %s does not match the certificate in %s %s (%s)", KEY_KEY, cfg->key, KEY_KEYSTORE,
                 cfg->keystore, why);
        return SL_ECONFIG;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->truststore, NULL) != 1) {
        ossl_reason(why, sizeof why);
        snprintf(err, errlen, "%s %s: no PEM CA certificate (%s)", KEY_TRUSTSTORE, cfg->truststore, why);
        return SL_ECONFIG;
    }
    return 0;
}

int sl_tls_ctx_create(const sl_tls_config_t *cfg, sl_tls_ctx_t **out, char *err, size_t errlen) {
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *err = '\0';
    sl_tls_ctx_t *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;
    c->ssl_ctx = SSL_CTX_new(TLS_method());
    if (!c->ssl_ctx) {
        sl_free(c);
        snprintf(err, errlen, "cannot create a TLS context");
        return SL_ENOMEM;
    }
    SSL_CTX *ctx = c->ssl_ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Both sides present a certificate and verify the other's (mutual TLS). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    /* Connections are long-lived and never resumed: no tickets, no cache, no renegotiation. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    int rc = load(ctx, cfg, err, errlen);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        sl_free(c);
        return rc;
    }
    atomic_init(&c->refs, 1);
    *out = c;
    return 0;
}

int sl_tls_ctx_from_config(const sl_config_t *config, sl_tls_ctx_t **out, char *err, size_t errlen) {
    *out = NULL;
    if (!sl_config_bool(config, "security.ssl.internal.enabled"))
        return 0;
    sl_tls_config_t tc = {.keystore = sl_config_str(config, KEY_KEYSTORE),
                          .key = sl_config_str(config, KEY_KEY),
                          .truststore = sl_config_str(config, KEY_TRUSTSTORE)};
    return sl_tls_ctx_create(&tc, out, err, errlen);
}

void sl_tls_ctx_ref(sl_tls_ctx_t *ctx) {
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void sl_tls_ctx_destroy(sl_tls_ctx_t *ctx) {
    if (!ctx || atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    sl_free(ctx);
}

static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;
static sl_tls_ctx_t *default_ctx;

void sl_tls_set_default(sl_tls_ctx_t *ctx) {
    if (ctx)
        sl_tls_ctx_ref(ctx);
    pthread_mutex_lock(&default_mu);
    sl_tls_ctx_t *old = default_ctx;
    default_ctx = ctx;
    pthread_mutex_unlock(&default_mu);
    sl_tls_ctx_destroy(old);
}

sl_tls_ctx_t *sl_tls_default(void) {
    pthread_mutex_lock(&default_mu);
    sl_tls_ctx_t *c = default_ctx;
    pthread_mutex_unlock(&default_mu);
    return c;
}

/* ---- sessions ---- */

int sl_tls_create(sl_tls_ctx_t *ctx, int is_server, uv_stream_t *stream, sl_tls_t **out) {
    sl_tls_t *t = sl_calloc(1, sizeof *t);
    if (!t)
        return SL_ENOMEM;
    t->ssl = SSL_new(ctx->ssl_ctx); /* holds its own reference of the SSL_CTX */
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        sl_free(t);
        ERR_clear_error();
        return SL_ENOMEM;
    }
    /* An empty read BIO means "retry later", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (is_server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    t->stream = stream;
    t->first_byte = -1;
    *out = t;
    return 0;
}

void sl_tls_destroy(sl_tls_t *t) {
    if (!t)
        return;
    SSL_free(t->ssl); /* frees both BIOs */
    while (t->nspare > 0)
        sl_free(t->spare[--t->nspare]);
    sl_free(t);
}

/* A buffer of at least `need` bytes, reused when possible: one malloc + free of ~33 KB per
 * data-plane buffer made glibc trim and regrow the thread's heap each time, page faults that
 * cost more than the encryption (3-4x the throughput on the 2-core VM). */
static uint8_t *buf_get(sl_tls_t *t, size_t need) {
    cbuf_t *b = NULL;
    while (t->nspare > 0) {
        b = t->spare[--t->nspare];
        if (b->cap >= need)
            break;
        sl_free(b);
        b = NULL;
    }
    if (!b) {
        size_t cap = (need + 4095) & ~(size_t)4095;
        b = sl_malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
    }
    return (uint8_t *)(b + 1);
}

void sl_tls_buf_free(sl_tls_t *t, uint8_t *buf) {
    if (!buf)
        return;
    cbuf_t *b = (cbuf_t *)buf - 1;
    if (t && t->nspare < SPARE_MAX && b->cap <= SPARE_CAP_MAX)
        t->spare[t->nspare++] = b;
    else
        sl_free(b);
}

typedef struct {
    uv_write_t req;
    uint8_t data[];
} flush_req_t;

static void flush_cb(uv_write_t *req, int status) {
    /* Touches nothing but its own memory: the session may be gone (a failed write shows up
     * as a read error or a failed frame write of the connection). */
    sl_free(req);
}

/* Writes whatever OpenSSL produced outside sl_tls_encrypt (handshake records, alerts). */
static int flush(sl_tls_t *t) {
    size_t n = BIO_ctrl_pending(t->wbio);
    if (n == 0)
        return 0;
    flush_req_t *f = sl_malloc(sizeof *f + n);
    if (!f)
        return SL_ENOMEM;
    int got = BIO_read(t->wbio, f->data, (int)n);
    uv_buf_t b = uv_buf_init((char *)f->data, got > 0 ? (unsigned)got : 0);
    int rc = uv_write(&f->req, t->stream, &b, 1, flush_cb);
    if (rc < 0)
        sl_free(f);
    return rc;
}

int sl_tls_start(sl_tls_t *t, char *err, size_t errlen) {
    if (SSL_is_server(t->ssl))
        return 0;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r != 1 && SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ) {
        char why[256];
        ossl_reason(why, sizeof why);
        snprintf(err, errlen, "TLS handshake failed: %s", why);
        return SL_EPROTO;
    }
    int rc = flush(t);
    if (rc < 0)
        snprintf(err, errlen, "TLS handshake: write failed: %s", uv_strerror(rc));
    return rc;
}

uv_buf_t sl_tls_read_buf(sl_tls_t *t) {
    return uv_buf_init((char *)t->rbuf, sizeof t->rbuf);
}

int sl_tls_feed(sl_tls_t *t, const uint8_t *data, size_t n) {
    if (n == 0)
        return 0;
    if (t->first_byte < 0)
        t->first_byte = data[0];
    t->bytes_in += n;
    return BIO_write(t->rbio, data, (int)n) == (int)n ? 0 : SL_ENOMEM;
}

/* A TLS record starts with its content type: 20..23 (change cipher spec, alert, handshake,
 * application data). Anything else is a peer that does not speak TLS. */
static int tls_record_type(int b) {
    return b >= 20 && b <= 23;
}

static ssize_t failure(sl_tls_t *t, int ret, char *err, size_t errlen) {
    int e = SSL_get_error(t->ssl, ret);
    char why[256];
    ossl_reason(why, sizeof why);
    long vr = SSL_get_verify_result(t->ssl);
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(err, errlen, "the peer closed the TLS session");
        return SL_EIO;
    }
    if (t->first_byte >= 0 && !tls_record_type(t->first_byte))
        snprintf(err, errlen, "TLS handshake failed: the peer speaks plain text, not TLS (is "
                              "security.ssl.internal.enabled set on it?)");
    else if (vr != X509_V_OK)
        snprintf(err, errlen, "TLS handshake failed: the peer's certificate was rejected: %s%s",
                 X509_verify_cert_error_string(vr),
                 vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || vr == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                         vr == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
                     ? " (it does not chain to a CA of security.ssl.internal.truststore)"
                     : "");
    else if (strstr(why, "alert"))
        snprintf(err, errlen, "TLS %s failed: the peer sent %s (it does not trust our certificate, or the TLS "
                 "settings differ)", SSL_is_init_finished(t->ssl) ? "session" : "handshake", why);
    else
        snprintf(err, errlen, "TLS %s failed: %s", SSL_is_init_finished(t->ssl) ? "session" : "handshake", why);
    return SL_EPROTO;
}

ssize_t sl_tls_read(sl_tls_t *t, void *out, size_t cap, char *err, size_t errlen) {
    ERR_clear_error();
    if (!SSL_is_init_finished(t->ssl)) {
        int r = SSL_do_handshake(t->ssl);
        int frc = flush(t); /* our next flight, or the alert that explains a failure */
        if (r != 1) {
            if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ && frc == 0)
                return 0;
            if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ) {
                snprintf(err, errlen, "TLS handshake: write failed: %s", uv_strerror(frc));
                return frc;
            }
            return failure(t, r, err, errlen);
        }
        if (frc < 0) {
            snprintf(err, errlen, "TLS handshake: write failed: %s", uv_strerror(frc));
            return frc;
        }
    }
    size_t got = 0;
    int r = SSL_read_ex(t->ssl, out, cap, &got);
    int frc = flush(t); /* post-handshake messages, alerts */
    if (r != 1 && SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ)
        return failure(t, r, err, errlen);
    if (frc < 0) {
        snprintf(err, errlen, "TLS: write failed: %s", uv_strerror(frc));
        return frc;
    }
    return r == 1 ? (ssize_t)got : 0;
}

int sl_tls_ready(const sl_tls_t *t) {
    return SSL_is_init_finished(t->ssl);
}

uint64_t sl_tls_bytes_in(const sl_tls_t *t) {
    return t->bytes_in;
}

void sl_tls_describe(const sl_tls_t *t, char *buf, size_t len) {
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    snprintf(buf, len, "%s %s", SSL_get_version(t->ssl), c ? SSL_CIPHER_get_name(c) : "(no cipher)");
}

int sl_tls_encrypt(sl_tls_t *t, const uv_buf_t *bufs, unsigned n, uint8_t **out, size_t *outlen, char *err,
                   size_t errlen) {
    if (!SSL_is_init_finished(t->ssl))
        return SL_ECANCELED;
    ERR_clear_error();
    for (unsigned i = 0; i < n; i++) {
        size_t written;
        if (bufs[i].len > 0 && SSL_write_ex(t->ssl, bufs[i].base, bufs[i].len, &written) != 1) {
            char why[256];
            ossl_reason(why, sizeof why);
            snprintf(err, errlen, "TLS encryption failed: %s", why);
            return SL_EPROTO;
        }
    }
    size_t pending = BIO_ctrl_pending(t->wbio);
    uint8_t *o = buf_get(t, pending ? pending : 1);
    if (!o)
        return SL_ENOMEM;
    int got = pending ? BIO_read(t->wbio, o, (int)pending) : 0;
    *out = o;
    *outlen = got > 0 ? (size_t)got : 0;
    return 0;
}

int sl_tls_looks_like_client_hello(const uint8_t *data, size_t n) {
    return n >= 3 && data[0] == 22 && data[1] == 3 && data[2] <= 4;
}
