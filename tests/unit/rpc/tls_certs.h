/* Throwaway TLS material for tests, made at test time with the `openssl` command line
 * (scripts/install-deps.sh installs it) in a fresh temporary directory:
 *
 *   ca.pem / ca.key          the cluster CA (the truststore of every good peer)
 *   node.pem / node.key      a certificate signed by that CA (what every good peer presents)
 *   rogue-ca.pem             another CA nobody trusts
 *   rogue.pem / rogue.key    a certificate signed by the rogue CA
 *   garbage.pem              not PEM at all
 *
 * Included by the TLS tests of both planes (tests/unit/rpc/test_tls.c,
 * tests/unit/network/test_net_tls.c, test_net_channels.c). */
#ifndef SL_TESTS_UNIT_RPC_TLS_CERTS_H
#define SL_TESTS_UNIT_RPC_TLS_CERTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rpc/tls.h"

typedef struct {
    char dir[256];
    char path[8][512];
} tls_certs_t;

enum { TC_CA, TC_NODE, TC_NODE_KEY, TC_ROGUE_CA, TC_ROGUE, TC_ROGUE_KEY, TC_GARBAGE };

static const char *tc_path(tls_certs_t *t, int which) {
    return t->path[which];
}

/* Returns 0, or -1 when the openssl command is missing or failed. */
static int tls_certs_make(tls_certs_t *t) {
    snprintf(t->dir, sizeof t->dir, "/tmp/sl-tls-test-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    static const char *names[] = {"ca.pem", "node.pem", "node.key", "rogue-ca.pem", "rogue.pem", "rogue.key",
                                  "garbage.pem"};
    for (int i = 0; i <= TC_GARBAGE; i++) {
        char d[256];
        memcpy(d, t->dir, sizeof d);
        snprintf(t->path[i], sizeof t->path[i], "%.200s/%s", d, names[i]);
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && printf 'basicConstraints=CA:FALSE\\nkeyUsage=digitalSignature\\n"
             "extendedKeyUsage=serverAuth,clientAuth\\n' > leaf.ext && "
             "for ca in ca rogue-ca; do openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout $ca.key -out $ca.pem -days 2 -subj /CN=$ca -addext basicConstraints=critical,CA:TRUE "
             "-addext keyUsage=critical,keyCertSign,cRLSign || exit 1; done && "
             "for leaf in node:ca rogue:rogue-ca; do n=${leaf%%:*}; ca=${leaf#*:}; "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $n.key -out $n.csr "
             "-subj /CN=sluice-$n || exit 1; "
             "openssl x509 -req -in $n.csr -CA $ca.pem -CAkey $ca.key -CAcreateserial -out $n.pem -days 2 "
             "-extfile leaf.ext || exit 1; done && "
             "echo 'this is not a certificate' > garbage.pem",
             t->dir);
    char quiet[4200];
    snprintf(quiet, sizeof quiet, "(%s) >/dev/null 2>&1", cmd);
    return system(quiet) == 0 ? 0 : -1;
}

static void tls_certs_remove(tls_certs_t *t) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", t->dir);
}

/* A context presenting `cert`/`key` and trusting `ca` (TC_* indices); NULL on failure, with
 * the reason printed. */
static sl_tls_ctx_t *tls_ctx(tls_certs_t *t, int cert, int key, int ca) {
    char err[1024];
    sl_tls_config_t tc = {.keystore = tc_path(t, cert), .key = tc_path(t, key), .truststore = tc_path(t, ca)};
    sl_tls_ctx_t *ctx = NULL;
    if (sl_tls_ctx_create(&tc, &ctx, err, sizeof err) != 0)
        fprintf(stderr, "tls_ctx: %s\n", err);
    return ctx;
}

#endif
