/* HMAC-SHA256 proofs and nonces shared by the control-plane and data-plane handshakes
 * (see auth.h). Pure code over OpenSSL. */
#include "rpc/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#include <sluice/error.h>

#define SERVER_PROOF_PREFIX "sluice-server"

int sl_auth_nonce(uint8_t out[SL_AUTH_NONCE_SIZE]) {
    return RAND_bytes(out, SL_AUTH_NONCE_SIZE) == 1 ? 0 : SL_EIO;
}

void sl_auth_proof(const uint8_t *secret, size_t secret_len, int server, const uint8_t *sn, const uint8_t *cn,
                   const char *role, uint8_t out[SL_AUTH_PROOF_SIZE]) {
    size_t rlen = strlen(role);
    size_t plen = server ? strlen(SERVER_PROOF_PREFIX) : 0;
    uint8_t msg[sizeof SERVER_PROOF_PREFIX + 2 * SL_AUTH_NONCE_SIZE + 256];
    /* Roles are short fixed words; a longer one is cut, identically on both sides. */
    if (rlen > 255)
        rlen = 255;
    memcpy(msg, SERVER_PROOF_PREFIX, plen);
    memcpy(msg + plen, sn, SL_AUTH_NONCE_SIZE);
    memcpy(msg + plen + SL_AUTH_NONCE_SIZE, cn, SL_AUTH_NONCE_SIZE);
    memcpy(msg + plen + 2 * SL_AUTH_NONCE_SIZE, role, rlen);
    unsigned int outlen = SL_AUTH_PROOF_SIZE;
    HMAC(EVP_sha256(), secret, (int)secret_len, msg, plen + 2 * SL_AUTH_NONCE_SIZE + rlen, out, &outlen);
}

int sl_auth_proof_equal(const uint8_t *got, size_t got_len, const uint8_t want[SL_AUTH_PROOF_SIZE]) {
    return got_len == SL_AUTH_PROOF_SIZE && CRYPTO_memcmp(got, want, SL_AUTH_PROOF_SIZE) == 0;
}
