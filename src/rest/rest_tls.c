/* HTTPS for the REST API (security.ssl.rest.*): libmicrohttpd's TLS (GnuTLS) with the
 * certificate and key in memory, and with authentication-enabled a client certificate that
 * must verify against the truststore before any route runs. */
#include "rest/rest_internal.h"

#include <sluice/error.h>

#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"

#define MAX_PEM (1u << 20)

/* The whole file named by option `key`, NUL-terminated (libmicrohttpd wants C strings). */
static int read_pem(const sl_config_t *c, const char *key, char **out, char *err, size_t errlen) {
    const char *path = sl_config_str(c, key);
    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "%s is required with security.ssl.rest.enabled", key);
        return SL_EINVAL;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s %s: %s", key, path, strerror(errno));
        return SL_EIO;
    }
    char *buf = sl_malloc(MAX_PEM + 1);
    size_t n = buf ? fread(buf, 1, MAX_PEM + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (buf == NULL)
        return SL_ENOMEM;
    if (bad || n == 0 || n > MAX_PEM || strstr(buf, "-----BEGIN") == NULL) {
        snprintf(err, errlen, "%s %s: %s", key, path,
                 bad ? "read error" : n > MAX_PEM ? "larger than 1 MiB" : "not a PEM file");
        sl_free(buf);
        return SL_EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

int sl_rest_tls_load(sl_rest_t *r, const sl_config_t *c, char *err, size_t errlen) {
    if (!sl_config_bool(c, "security.ssl.rest.enabled"))
        return 0;
    r->tls = true;
    r->client_auth = sl_config_bool(c, "security.ssl.rest.authentication-enabled");
    int rc = read_pem(c, "security.ssl.rest.keystore", &r->tls_cert, err, errlen);
    if (rc == 0)
        rc = read_pem(c, "security.ssl.rest.key", &r->tls_key, err, errlen);
    if (rc == 0 && r->client_auth)
        rc = read_pem(c, "security.ssl.rest.truststore", &r->tls_trust, err, errlen);
    return rc;
}

void sl_rest_tls_free(sl_rest_t *r) {
    sl_free(r->tls_cert);
    sl_free(r->tls_key);
    sl_free(r->tls_trust);
    r->tls_cert = r->tls_key = r->tls_trust = NULL;
}

bool sl_rest_tls_client_ok(struct MHD_Connection *c, char *why, size_t whylen) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t s = ci ? (gnutls_session_t)ci->tls_session : NULL;
    unsigned status = 0;
    if (s == NULL) {
        snprintf(why, whylen, "no TLS session");
        return false;
    }
    unsigned n = 0;
    if (gnutls_certificate_get_peers(s, &n) == NULL || n == 0) {
        snprintf(why, whylen, "a client certificate is required (security.ssl.rest.authentication-enabled)");
        return false;
    }
    int rc = gnutls_certificate_verify_peers2(s, &status);
    if (rc < 0 || status != 0) {
        gnutls_datum_t text = {0};
        if (rc >= 0 && gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
            snprintf(why, whylen, "client certificate refused: %s", (const char *)text.data);
            gnutls_free(text.data);
        } else {
            snprintf(why, whylen, "client certificate refused: %s", gnutls_strerror(rc));
        }
        return false;
    }
    return true;
}
