/* The RPC wire framing: a 5-byte header then a payload, and an incremental decoder that turns
 * a byte stream cut anywhere into whole frames. Pure code (no sockets, no loop), so it is unit
 * tested and fuzzed on its own (tests/fuzz/fuzz_rpc_frame.c).
 *
 * Frame layout (all integers big-endian):
 *
 *   offset  size  field
 *   0       4     length   payload bytes that follow the header (0 .. max_frame_size)
 *   4       1     kind     SL_RPC_FRAME_* below; anything else is a protocol error
 *   5       len   payload  a packed protobuf message (sluice.proto), by kind:
 *                          HELLO=Hello, AUTH=Auth, AUTH_OK=AuthOk, ERROR=Error, MSG=Envelope
 *
 * The length is checked against the limit before any payload memory is allocated, and the
 * payload buffer grows with the bytes actually received, so a peer that announces a huge
 * frame and sends nothing costs at most one small buffer. */
#ifndef SL_RPC_FRAME_H
#define SL_RPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SL_RPC_FRAME_HEADER_SIZE 5
#define SL_RPC_DEFAULT_MAX_FRAME (64u * 1024u * 1024u)

typedef enum {
    SL_RPC_FRAME_HELLO = 1,   /* server -> client, first frame */
    SL_RPC_FRAME_AUTH = 2,    /* client -> server, answer to HELLO */
    SL_RPC_FRAME_AUTH_OK = 3, /* server -> client, handshake done */
    SL_RPC_FRAME_ERROR = 4,   /* either way: refusal or fatal error, then the sender closes */
    SL_RPC_FRAME_MSG = 5,     /* an Envelope; only after the handshake */
    SL_RPC_FRAME_KIND_MAX = 5
} sl_rpc_frame_kind_t;

/* One decoded frame. `payload` is sl_malloc'd (NULL when len == 0); whoever receives the frame
 * owns it and frees it with sl_free. */
typedef struct sl_rpc_frame_s {
    uint8_t kind;
    uint32_t len;
    uint8_t *payload;
} sl_rpc_frame_t;

/* Decoder state for one byte stream. Plain data: init, feed, destroy; single-threaded. */
typedef struct sl_rpc_frame_decoder_s {
    uint32_t max_frame;
    uint8_t hdr[SL_RPC_FRAME_HEADER_SIZE];
    uint32_t hdr_have; /* header bytes collected; == HEADER_SIZE once the header is complete */
    uint8_t kind;
    uint32_t len;
    uint8_t *buf; /* payload collected so far */
    uint32_t buf_cap;
    uint32_t have;
    int error; /* sticky: after an error the stream is unusable */
} sl_rpc_frame_decoder_t;

/* max_frame 0 means SL_RPC_DEFAULT_MAX_FRAME. */
void sl_rpc_frame_decoder_init(sl_rpc_frame_decoder_t *d, uint32_t max_frame);
void sl_rpc_frame_decoder_destroy(sl_rpc_frame_decoder_t *d);

/* Consumes bytes of data[0, n) until one frame is complete or the input is used up;
 * *consumed tells how many. Returns 1 with *out filled (caller owns out->payload), 0 when
 * all input was consumed without completing a frame, or an error, after which the decoder
 * stays failed: SL_ERANGE (length above the limit), SL_EPROTO (unknown kind), SL_ENOMEM.
 * `what`, if not NULL, gets a static description of the error for logs. Call it again with
 * the remaining bytes to get further frames. */
int sl_rpc_frame_decode(sl_rpc_frame_decoder_t *d, const uint8_t *data, size_t n, size_t *consumed,
                        sl_rpc_frame_t *out, const char **what);

/* Writes the 5-byte header for a payload of `len` bytes. */
void sl_rpc_frame_header(uint8_t hdr[SL_RPC_FRAME_HEADER_SIZE], uint8_t kind, uint32_t len);

/* True for a known frame kind. */
int sl_rpc_frame_kind_valid(unsigned kind);

/* Static name of a kind ("HELLO"), "UNKNOWN" otherwise. */
const char *sl_rpc_frame_kind_name(unsigned kind);

#endif
