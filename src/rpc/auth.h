/* Shared-secret authentication primitives of both planes: the HMAC-SHA256 proof of the
 * challenge-response handshake and the random nonces it runs on. Pure functions over OpenSSL,
 * no sockets and no loop, so the control plane (src/rpc/handshake.c) and the data plane
 * (src/network/net_handshake.c) compute the very same proofs.
 *
 *   client proof = HMAC-SHA256(secret, nonce_s || nonce_c || role)
 *   server proof = HMAC-SHA256(secret, "sluice-server" || nonce_s || nonce_c || role)
 *
 * The server's prefix keeps a client proof from ever being reflected as a server proof. */
#ifndef SL_RPC_AUTH_H
#define SL_RPC_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define SL_AUTH_NONCE_SIZE 32
#define SL_AUTH_PROOF_SIZE 32

/* Fills `out` with a fresh random nonce. Errors: SL_EIO (no randomness). Any thread. */
int sl_auth_nonce(uint8_t out[SL_AUTH_NONCE_SIZE]);

/* Computes the proof of one side (`server` != 0 for the server's). A role longer than 255
 * bytes is cut, identically on both sides. Any thread. */
void sl_auth_proof(const uint8_t *secret, size_t secret_len, int server, const uint8_t *sn, const uint8_t *cn,
                   const char *role, uint8_t out[SL_AUTH_PROOF_SIZE]);

/* Constant-time comparison of a received proof with the expected one: 1 when equal. */
int sl_auth_proof_equal(const uint8_t *got, size_t got_len, const uint8_t want[SL_AUTH_PROOF_SIZE]);

#endif
