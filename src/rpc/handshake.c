/* The connection handshake: protocol version check and mutual authentication with the
 * cluster's shared secret by HMAC-SHA256 challenge-response. Runs on the loop thread, driven
 * by frames from conn.c.
 *
 *   server                                  client
 *   HELLO {version, server_nonce, id}  -->
 *                                      <--  AUTH {version, client_nonce, role, id,
 *                                                 proof = HMAC(secret, sn || cn || role)}
 *   checks version, then proof (CRYPTO_memcmp)
 *   AUTH_OK {proof = HMAC(secret, "sluice-server" || sn || cn || role), id}  -->
 *                                           checks the server's proof
 *
 * Both nonces are 32 bytes from RAND_bytes, so neither side can replay an old exchange and the
 * server's proof differs from any client proof (its prefix), so it cannot be reflected. Any
 * failure is answered with an ERROR frame {code, reason} before closing, so the peer can tell
 * a wrong secret from a wrong version; the server logs it with the peer's address. */
#include "rpc/rpc_internal.h"

#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"
#include "rpc/auth.h"

/* The proof and nonce computations live in auth.c, shared with the data plane. */
int sl__rpc_nonce(uint8_t out[SL_RPC_NONCE_SIZE]) {
    return sl_auth_nonce(out);
}

void sl__rpc_proof(const uint8_t *secret, size_t secret_len, int server, const uint8_t *sn,
                   const uint8_t *cn, const char *role, uint8_t out[SL_RPC_PROOF_SIZE]) {
    sl_auth_proof(secret, secret_len, server, sn, cn, role, out);
}

static int proof_ok(const ProtobufCBinaryData *got, const uint8_t want[SL_RPC_PROOF_SIZE]) {
    return sl_auth_proof_equal(got->data, got->len, want);
}

/* ---- server ---- */

int sl__rpc_handshake_hello(sl_rpc_conn_t *c) {
    int rc = sl__rpc_nonce(c->server_nonce);
    if (rc < 0)
        return rc;
    Sluice__Rpc__Hello h = SLUICE__RPC__HELLO__INIT;
    h.protocol_version = c->ep->cfg.protocol_version;
    h.nonce.data = c->server_nonce;
    h.nonce.len = SL_RPC_NONCE_SIZE;
    h.server_id = c->ep->id;
    return sl__rpc_conn_write_pb(c, SL_RPC_FRAME_HELLO, &h.base);
}

int sl__rpc_handshake_server_start(sl_rpc_conn_t *c) {
    if (!c->tls) {
        int rc = sl__rpc_handshake_hello(c);
        if (rc < 0)
            return rc;
    }
    sl__rpc_conn_arm_deadline(c, c->ep->cfg.handshake_timeout_ms);
    return sl__rpc_conn_start_reading(c);
}

static void refuse(sl_rpc_conn_t *c, int code, const char *reason) {
    SL_WARN("rpc endpoint %s: refused connection from %s: %s", c->ep->id, c->peer_addr, reason);
    sl__rpc_conn_refuse(c, code, reason);
}

/* Returns 0, or refuses the connection and returns an error. */
static int check_auth(sl_rpc_conn_t *c, const Sluice__Rpc__Auth *a) {
    char reason[1024];
    uint32_t ours = c->ep->cfg.protocol_version;
    if (a->protocol_version != ours) {
        snprintf(reason, sizeof reason, "protocol version %u not supported (server speaks %u)",
                 a->protocol_version, ours);
        refuse(c, SL_EPROTO, reason);
        return SL_EPROTO;
    }
    if (a->nonce.len != SL_RPC_NONCE_SIZE || !a->role || !*a->role) {
        refuse(c, SL_EPROTO, "malformed AUTH: bad nonce or missing role");
        return SL_EPROTO;
    }
    uint8_t want[SL_RPC_PROOF_SIZE];
    sl__rpc_proof(c->ep->secret, c->ep->secret_len, 0, c->server_nonce, a->nonce.data, a->role, want);
    if (!proof_ok(&a->proof, want)) {
        refuse(c, SL_EAUTH, "authentication failed: wrong shared secret");
        return SL_EAUTH;
    }
    return 0;
}

static void server_auth(sl_rpc_conn_t *c, sl_rpc_frame_t *f) {
    Sluice__Rpc__Auth *a = sluice__rpc__auth__unpack(&sl__rpc_pb_allocator, f->len, f->payload);
    if (!a) {
        refuse(c, SL_EPROTO, "malformed AUTH frame");
        return;
    }
    if (check_auth(c, a) == 0) {
        memcpy(c->client_nonce, a->nonce.data, SL_RPC_NONCE_SIZE);
        c->peer_id = sl_strdup(a->client_id ? a->client_id : "");
        c->peer_role = sl_strdup(a->role);
        Sluice__Rpc__AuthOk ok = SLUICE__RPC__AUTH_OK__INIT;
        uint8_t proof[SL_RPC_PROOF_SIZE];
        sl__rpc_proof(c->ep->secret, c->ep->secret_len, 1, c->server_nonce, c->client_nonce, a->role, proof);
        ok.proof.data = proof;
        ok.proof.len = sizeof proof;
        ok.server_id = c->ep->id;
        if (!c->peer_id || !c->peer_role)
            refuse(c, SL_ENOMEM, "out of memory");
        else if (sl__rpc_conn_write_pb(c, SL_RPC_FRAME_AUTH_OK, &ok.base) == 0) {
            SL_DEBUG("rpc endpoint %s: %s %s authenticated from %s", c->ep->id, c->peer_role, c->peer_id,
                     c->peer_addr);
            sl__rpc_conn_opened(c);
        }
    }
    sluice__rpc__auth__free_unpacked(a, &sl__rpc_pb_allocator);
}

/* ---- client ---- */

static void client_hello(sl_rpc_conn_t *c, sl_rpc_frame_t *f) {
    Sluice__Rpc__Hello *h = sluice__rpc__hello__unpack(&sl__rpc_pb_allocator, f->len, f->payload);
    if (!h || h->nonce.len != SL_RPC_NONCE_SIZE) {
        if (h)
            sluice__rpc__hello__free_unpacked(h, &sl__rpc_pb_allocator);
        sl__rpc_conn_refuse(c, SL_EPROTO, "malformed HELLO from the server");
        return;
    }
    memcpy(c->server_nonce, h->nonce.data, SL_RPC_NONCE_SIZE);
    c->peer_id = sl_strdup(h->server_id ? h->server_id : "");
    sluice__rpc__hello__free_unpacked(h, &sl__rpc_pb_allocator);
    if (!c->peer_id || sl__rpc_nonce(c->client_nonce) < 0) {
        sl__rpc_conn_fail(c, SL_ENOMEM, "out of memory or no randomness");
        return;
    }
    c->client_got_hello = 1;
    /* The version goes to the server even when it differs: the server decides, and its
     * refusal tells both sides which versions were involved. */
    uint8_t proof[SL_RPC_PROOF_SIZE];
    sl__rpc_proof(c->ep->secret, c->ep->secret_len, 0, c->server_nonce, c->client_nonce, c->ep->role, proof);
    Sluice__Rpc__Auth a = SLUICE__RPC__AUTH__INIT;
    a.protocol_version = c->ep->cfg.protocol_version;
    a.nonce.data = c->client_nonce;
    a.nonce.len = SL_RPC_NONCE_SIZE;
    a.proof.data = proof;
    a.proof.len = sizeof proof;
    a.role = c->ep->role;
    a.client_id = c->ep->id;
    sl__rpc_conn_write_pb(c, SL_RPC_FRAME_AUTH, &a.base);
}

static void client_auth_ok(sl_rpc_conn_t *c, sl_rpc_frame_t *f) {
    Sluice__Rpc__AuthOk *ok = sluice__rpc__auth_ok__unpack(&sl__rpc_pb_allocator, f->len, f->payload);
    uint8_t want[SL_RPC_PROOF_SIZE];
    sl__rpc_proof(c->ep->secret, c->ep->secret_len, 1, c->server_nonce, c->client_nonce, c->ep->role, want);
    int good = ok && proof_ok(&ok->proof, want);
    if (ok)
        sluice__rpc__auth_ok__free_unpacked(ok, &sl__rpc_pb_allocator);
    if (!good) {
        const char *reason = "authentication failed: the server did not prove the shared secret "
                             "(wrong shared secret)";
        SL_WARN("rpc endpoint %s: refusing server %s: %s", c->ep->id, c->peer_addr, reason);
        sl__rpc_conn_refuse(c, SL_EAUTH, reason);
        return;
    }
    c->peer_role = sl_strdup("server");
    sl__rpc_conn_opened(c);
}

/* The peer refused us: its ERROR frame carries the reason the caller gets. */
static void peer_refused(sl_rpc_conn_t *c, sl_rpc_frame_t *f) {
    Sluice__Rpc__Error *e = sluice__rpc__error__unpack(&sl__rpc_pb_allocator, f->len, f->payload);
    char reason[1024];
    snprintf(reason, sizeof reason, "%s refused the connection: %s", c->is_client ? "the server" : "the client",
             e && e->message ? e->message : "(malformed error)");
    int code = e && e->code < 0 ? e->code : SL_EPROTO;
    if (e)
        sluice__rpc__error__free_unpacked(e, &sl__rpc_pb_allocator);
    if (!c->is_client)
        SL_WARN("rpc endpoint %s: connection from %s: %s", c->ep->id, c->peer_addr, reason);
    sl__rpc_conn_fail(c, code, reason);
}

static void unexpected(sl_rpc_conn_t *c, unsigned kind, const char *expected) {
    char reason[1024];
    snprintf(reason, sizeof reason, "handshake: expected %s, got a %s frame", expected, sl_rpc_frame_kind_name(kind));
    if (c->is_client)
        sl__rpc_conn_refuse(c, SL_EPROTO, reason);
    else
        refuse(c, SL_EPROTO, reason);
}

void sl__rpc_handshake_frame(sl_rpc_conn_t *c, sl_rpc_frame_t *f) {
    if (f->kind == SL_RPC_FRAME_ERROR)
        peer_refused(c, f);
    else if (!c->is_client && f->kind == SL_RPC_FRAME_AUTH)
        server_auth(c, f);
    else if (!c->is_client)
        unexpected(c, f->kind, "AUTH");
    else if (!c->client_got_hello && f->kind == SL_RPC_FRAME_HELLO)
        client_hello(c, f);
    else if (!c->client_got_hello)
        unexpected(c, f->kind, "HELLO");
    else if (f->kind == SL_RPC_FRAME_AUTH_OK)
        client_auth_ok(c, f);
    else
        unexpected(c, f->kind, "AUTH_OK");
    sl_free(f->payload);
    f->payload = NULL;
}
