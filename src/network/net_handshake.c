/* The data-plane connection handshake: protocol version check and mutual authentication
 * with the cluster's shared secret, the same HMAC-SHA256 challenge-response as the control
 * plane (src/rpc/auth.h), in data-plane frames (net_frame.h). Loop thread only.
 *
 *   acceptor (server)                           dialer (client)
 *   HELLO {version, nonce_s, server id}  -->
 *                                        <--   AUTH {version, nonce_c, proof, client id}
 *                                              proof = HMAC(secret, nonce_s || nonce_c || role)
 *   checks version, then proof
 *   AUTH_OK {HMAC(secret, "sluice-server" || nonce_s || nonce_c || role)}  -->
 *                                              checks the server's proof and its id
 *
 * role = "data-plane/" + client id, so a proof binds the id the client claims and cannot be
 * replayed on the control plane (whose roles are plain words). A failure is answered with an
 * ERROR frame {code, reason} and logged with the peer's address; the service goes on. */
#include "network/net_internal.h"

#include <stdio.h>
#include <string.h>

#include <sluice/error.h>

#include "core/log.h"

#define ROLE_PREFIX "data-plane/"

static void role_of(const char *client_id, char *role, size_t len) {
    snprintf(role, len, "%s%s", ROLE_PREFIX, client_id);
}

static void copy_id(char *dst, const uint8_t *src, uint32_t len) {
    if (len > SL_NET_MAX_ID)
        len = SL_NET_MAX_ID;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ---- server ---- */

int sl__net_handshake_hello(sl_net_conn_t *c) {
    int rc = sl_auth_nonce(c->sn);
    if (rc < 0)
        return rc;
    uint8_t p[36 + SL_NET_MAX_ID];
    size_t idlen = strlen(c->net->id);
    sl_net_put_u32(p, c->net->cfg.protocol_version);
    memcpy(p + 4, c->sn, SL_AUTH_NONCE_SIZE);
    memcpy(p + 36, c->net->id, idlen);
    return sl__net_conn_send(c, SL_NET_FRAME_HELLO, 0, p, (uint32_t)(36 + idlen));
}

int sl__net_handshake_server_start(sl_net_conn_t *c) {
    if (!c->tls) {
        int rc = sl__net_handshake_hello(c);
        if (rc < 0)
            return rc;
    }
    sl__net_conn_arm_deadline(c, c->net->cfg.connect_timeout_ms);
    return sl__net_conn_start_reading(c);
}

static void server_auth(sl_net_conn_t *c, const sl_net_frame_t *f) {
    uint32_t version = sl_net_get_u32(f->payload);
    uint32_t ours = c->net->cfg.protocol_version;
    char reason[160];
    if (version != ours) {
        snprintf(reason, sizeof reason, "protocol version %u not supported (this TaskManager speaks %u)", version,
                 ours);
        sl__net_conn_refuse(c, SL_EPROTO, reason);
        return;
    }
    memcpy(c->cn, f->payload + 4, SL_AUTH_NONCE_SIZE);
    copy_id(c->peer_id, f->payload + 68, f->len - 68);
    char role[sizeof ROLE_PREFIX + SL_NET_MAX_ID];
    role_of(c->peer_id, role, sizeof role);
    uint8_t want[SL_AUTH_PROOF_SIZE];
    sl_auth_proof(c->net->secret, c->net->secret_len, 0, c->sn, c->cn, role, want);
    if (!sl_auth_proof_equal(f->payload + 36, SL_AUTH_PROOF_SIZE, want)) {
        sl__net_conn_refuse(c, SL_EAUTH, "authentication failed: wrong shared secret");
        return;
    }
    uint8_t proof[SL_AUTH_PROOF_SIZE];
    sl_auth_proof(c->net->secret, c->net->secret_len, 1, c->sn, c->cn, role, proof);
    if (sl__net_conn_send(c, SL_NET_FRAME_AUTH_OK, 0, proof, sizeof proof) == 0)
        sl__net_conn_opened(c);
}

/* ---- client ---- */

static void client_hello(sl_net_conn_t *c, const sl_net_frame_t *f) {
    char server_id[SL_NET_MAX_ID + 1];
    copy_id(server_id, f->payload + 36, f->len - 36);
    if (strcmp(server_id, c->peer_id) != 0) {
        char reason[2 * SL_NET_MAX_ID + 64];
        snprintf(reason, sizeof reason, "expected TaskManager %s, found TaskManager %s", c->peer_id, server_id);
        sl__net_conn_fail(c, SL_EPROTO, reason);
        return;
    }
    memcpy(c->sn, f->payload + 4, SL_AUTH_NONCE_SIZE);
    if (sl_auth_nonce(c->cn) < 0) {
        sl__net_conn_fail(c, SL_EIO, "no randomness for the handshake nonce");
        return;
    }
    c->got_hello = 1;
    /* Our version goes to the server even when it differs: the server decides, and its
     * refusal names both versions. */
    uint8_t p[68 + SL_NET_MAX_ID];
    size_t idlen = strlen(c->net->id);
    char role[sizeof ROLE_PREFIX + SL_NET_MAX_ID];
    role_of(c->net->id, role, sizeof role);
    sl_net_put_u32(p, c->net->cfg.protocol_version);
    memcpy(p + 4, c->cn, SL_AUTH_NONCE_SIZE);
    sl_auth_proof(c->net->secret, c->net->secret_len, 0, c->sn, c->cn, role, p + 36);
    memcpy(p + 68, c->net->id, idlen);
    sl__net_conn_send(c, SL_NET_FRAME_AUTH, 0, p, (uint32_t)(68 + idlen));
}

static void client_auth_ok(sl_net_conn_t *c, const sl_net_frame_t *f) {
    char role[sizeof ROLE_PREFIX + SL_NET_MAX_ID];
    role_of(c->net->id, role, sizeof role);
    uint8_t want[SL_AUTH_PROOF_SIZE];
    sl_auth_proof(c->net->secret, c->net->secret_len, 1, c->sn, c->cn, role, want);
    if (!sl_auth_proof_equal(f->payload, f->len, want)) {
        sl__net_conn_refuse(c, SL_EAUTH, "authentication failed: the peer did not prove the shared secret");
        return;
    }
    sl__net_conn_opened(c);
}

/* The peer refused us: its ERROR frame carries the reason our channels get. */
static void peer_refused(sl_net_conn_t *c, const sl_net_frame_t *f) {
    int code = (int)sl_net_get_u32(f->payload);
    char reason[SL_NET_MAX_CONTROL + 64];
    snprintf(reason, sizeof reason, "refused by the peer: %.*s", (int)(f->len - 4), (const char *)f->payload + 4);
    sl__net_conn_fail(c, code < 0 ? code : SL_EPROTO, reason);
}

static void unexpected(sl_net_conn_t *c, unsigned type, const char *expected) {
    char reason[128];
    snprintf(reason, sizeof reason, "handshake: expected %s, got a %s frame", expected, sl_net_frame_type_name(type));
    sl__net_conn_refuse(c, SL_EPROTO, reason);
}

void sl__net_handshake_frame(sl_net_conn_t *c, const sl_net_frame_t *f) {
    if (f->type == SL_NET_FRAME_ERROR)
        peer_refused(c, f);
    else if (!c->is_client && f->type == SL_NET_FRAME_AUTH)
        server_auth(c, f);
    else if (!c->is_client)
        unexpected(c, f->type, "AUTH");
    else if (!c->got_hello && f->type == SL_NET_FRAME_HELLO)
        client_hello(c, f);
    else if (!c->got_hello)
        unexpected(c, f->type, "HELLO");
    else if (f->type == SL_NET_FRAME_AUTH_OK)
        client_auth_ok(c, f);
    else
        unexpected(c, f->type, "AUTH_OK");
}
