/* Packing and unpacking of the protobuf messages of sluice.proto into frames, and the
 * validation every received Envelope passes before it reaches a handler. Pure code, fuzzed by
 * tests/fuzz/fuzz_rpc_message.c. All allocation of unpacked messages goes through sl_malloc. */
#ifndef SL_RPC_MESSAGE_H
#define SL_RPC_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "rpc/sluice.pb-c.h"

typedef Sluice__Rpc__Envelope sl_rpc_msg_t;

/* The allocator handed to protobuf-c (sl_malloc/sl_free). */
extern ProtobufCAllocator sl__rpc_pb_allocator;

/* Packs `msg` behind a frame header of `kind` into one sl_malloc'd buffer (*out, *out_len
 * including the header); the caller frees it. Errors: SL_ERANGE when the packed message is
 * larger than max_frame (0 = default), SL_ENOMEM. Any thread; `msg` is only read. */
int sl_rpc_frame_pack(uint8_t kind, const ProtobufCMessage *msg, uint32_t max_frame, uint8_t **out,
                      size_t *out_len);

/* Unpacks and validates an Envelope. On success the caller owns *out (sl_rpc_msg_free).
 * Errors: SL_EPROTO (not a protobuf Envelope, or invalid: see sl_rpc_msg_validate), SL_ENOMEM
 * is reported as SL_EPROTO too because protobuf-c does not tell the two apart. `what` gets a
 * static reason. */
int sl_rpc_msg_unpack(const uint8_t *data, size_t len, sl_rpc_msg_t **out, const char **what);

/* Checks what protobuf-c cannot: a known kind, a body set to a known case, a correlation id
 * on requests and responses. Returns 0 or SL_EPROTO with a static reason in *what. */
int sl_rpc_msg_validate(const sl_rpc_msg_t *msg, const char **what);

/* Frees an Envelope returned by this module (unpacked). NULL is a no-op. */
void sl_rpc_msg_free(sl_rpc_msg_t *msg);

/* Static name of a body case for logs ("heartbeat"), "none" / "unknown" otherwise. */
const char *sl_rpc_body_name(int body_case);

/* Builds an Error body into `env` (which must have been initialised) pointing at `err`, which
 * the caller keeps alive while env is used. */
void sl_rpc_msg_set_error(sl_rpc_msg_t *env, Sluice__Rpc__Error *err, int code, const char *message);

#endif
