/* TLS for the benchmarks: SL_BENCH_TLS=DIR makes every connection run TLS with DIR/node.pem and
 * DIR/node.key, trusting DIR/ca.pem (docs/benchmarks.md shows the openssl commands that make
 * them); unset, the benchmarks run plain. */
#ifndef SL_BENCH_TLS_H
#define SL_BENCH_TLS_H

#include <stdio.h>
#include <stdlib.h>

#include "rpc/tls.h"

static inline sl_tls_ctx_t *bench_tls(void) {
    const char *dir = getenv("SL_BENCH_TLS");
    if (!dir || !*dir)
        return NULL;
    char cert[1024], key[1024], ca[1024], err[1024];
    snprintf(cert, sizeof cert, "%s/node.pem", dir);
    snprintf(key, sizeof key, "%s/node.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    sl_tls_config_t tc = {.keystore = cert, .key = key, .truststore = ca};
    sl_tls_ctx_t *tls;
    if (sl_tls_ctx_create(&tc, &tls, err, sizeof err) != 0) {
        fprintf(stderr, "SL_BENCH_TLS: %s\n", err);
        exit(1);
    }
    return tls;
}

#endif
