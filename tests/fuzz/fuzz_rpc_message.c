/* Fuzz target: Envelope unpack and validation (src/rpc/message.h), and the handshake messages.
 * Whatever the bytes, unpack returns 0 with a valid message or SL_EPROTO; an accepted message
 * re-packs and unpacks to the same packed bytes (pack o unpack is stable). */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "rpc/frame.h"
#include "rpc/message.h"

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_rpc_message: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static volatile size_t sink;

static void envelope(const uint8_t *data, size_t size) {
    sl_rpc_msg_t *m = NULL;
    const char *what = NULL;
    int rc = sl_rpc_msg_unpack(data, size, &m, &what);
    if (rc != 0) {
        CHECK(rc == SL_EPROTO && what != NULL && m == NULL);
        return;
    }
    CHECK(sl_rpc_msg_validate(m, NULL) == 0);
    sink += strlen(sl_rpc_body_name((int)m->body_case));
    uint8_t *f1, *f2;
    size_t l1, l2;
    CHECK(sl_rpc_frame_pack(SL_RPC_FRAME_MSG, &m->base, 0xffffffffu, &f1, &l1) == 0);
    sl_rpc_msg_t *m2 = NULL;
    CHECK(sl_rpc_msg_unpack(f1 + SL_RPC_FRAME_HEADER_SIZE, l1 - SL_RPC_FRAME_HEADER_SIZE, &m2, NULL) == 0);
    CHECK(m2->body_case == m->body_case && m2->kind == m->kind && m2->correlation_id == m->correlation_id);
    CHECK(sl_rpc_frame_pack(SL_RPC_FRAME_MSG, &m2->base, 0xffffffffu, &f2, &l2) == 0);
    CHECK(l1 == l2 && memcmp(f1, f2, l1) == 0);
    sl_free(f1);
    sl_free(f2);
    sl_rpc_msg_free(m2);
    sl_rpc_msg_free(m);
}

/* The handshake frames are unpacked before any authentication: they must be as robust. */
static void handshake(const uint8_t *data, size_t size) {
    Sluice__Rpc__Hello *h = sluice__rpc__hello__unpack(&sl__rpc_pb_allocator, size, data);
    if (h) {
        sink += h->nonce.len + strlen(h->server_id);
        sluice__rpc__hello__free_unpacked(h, &sl__rpc_pb_allocator);
    }
    Sluice__Rpc__Auth *a = sluice__rpc__auth__unpack(&sl__rpc_pb_allocator, size, data);
    if (a) {
        sink += a->proof.len + strlen(a->role) + strlen(a->client_id);
        sluice__rpc__auth__free_unpacked(a, &sl__rpc_pb_allocator);
    }
    Sluice__Rpc__Error *e = sluice__rpc__error__unpack(&sl__rpc_pb_allocator, size, data);
    if (e) {
        sink += strlen(e->message);
        sluice__rpc__error__free_unpacked(e, &sl__rpc_pb_allocator);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20))
        return 0;
    envelope(data, size);
    handshake(data, size);
    return 0;
}
