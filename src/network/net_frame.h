/* The data-plane wire format between TaskManagers, and an incremental decoder that turns a
 * byte stream cut anywhere into frames. Pure code (no sockets, no loop): unit tested and
 * fuzzed on its own (tests/fuzz/fuzz_net_frame.c).
 *
 * Frame layout (integers big-endian):
 *
 *   offset size field
 *   0      4    length    payload bytes after the 13-byte header
 *   4      1    type      SL_NET_FRAME_* below; anything else is a protocol error
 *   5      8    channel   64-bit channel id (0 for connection-level frames)
 *   13     len  payload   by type:
 *
 *   type                 dir   payload (len)
 *   1 HELLO              S->C  u32 version | nonce_s[32] | server id (36 + 1..255)
 *   2 AUTH               C->S  u32 version | nonce_c[32] | proof[32] | client id (68 + 1..255)
 *   3 AUTH_OK            S->C  proof[32] (32)
 *   4 ERROR              both  i32 code | message (4 .. 4 + 1024); channel 0 = the connection
 *   5 PARTITION_REQUEST  C->P  u32 initial credit (4)
 *   6 ADD_CREDIT         C->P  u32 credit (4)
 *   7 BUFFER             P->C  the buffer's bytes, records as record_writer.h (1 .. max_buffer)
 *   8 EVENT              P->C  u8 kind (sl_channel_entry_kind_t) | i64 value (9)
 *   9 CANCEL             C->P  empty: the consumer gave the channel up (0)
 *
 * (S = the side that accepted the connection, C = the side that dialed it; P/C = producer and
 * consumer of the channel, either side of the connection.) Every length is checked against
 * its type as soon as the header is complete, before anything is allocated: control payloads
 * live in the decoder's fixed buffer, BUFFER payloads go wherever the caller puts them. */
#ifndef SL_NETWORK_NET_FRAME_H
#define SL_NETWORK_NET_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SL_NET_FRAME_HEADER 13u
#define SL_NET_MAX_CONTROL (4u + 1024u) /* the largest control payload (ERROR) */
#define SL_NET_MAX_ID 255u
#define SL_NET_DEFAULT_MAX_BUFFER (1u << 20)

typedef enum {
    SL_NET_FRAME_HELLO = 1,
    SL_NET_FRAME_AUTH = 2,
    SL_NET_FRAME_AUTH_OK = 3,
    SL_NET_FRAME_ERROR = 4,
    SL_NET_FRAME_PARTITION_REQUEST = 5,
    SL_NET_FRAME_ADD_CREDIT = 6,
    SL_NET_FRAME_BUFFER = 7,
    SL_NET_FRAME_EVENT = 8,
    SL_NET_FRAME_CANCEL = 9,
    SL_NET_FRAME_TYPE_MAX = 9
} sl_net_frame_type_t;

/* What sl_net_frame_decode produced. */
typedef enum {
    SL_NET_DEC_NEED = 0,   /* all input consumed, nothing complete */
    SL_NET_DEC_FRAME = 1,  /* a complete control frame (any type but BUFFER) */
    SL_NET_DEC_BUFFER = 2, /* a BUFFER header: `len` payload bytes follow */
    SL_NET_DEC_DATA = 3,   /* a chunk of the current BUFFER's payload, inside the input */
} sl_net_dec_result_t;

typedef struct sl_net_frame_s {
    uint8_t type;
    uint64_t channel;
    uint32_t len;           /* payload length; for DATA, the chunk length */
    const uint8_t *payload; /* FRAME: the decoder's buffer; DATA: inside the input. Valid until the next call */
} sl_net_frame_t;

/* Decoder state for one byte stream; plain data, single-threaded. */
typedef struct sl_net_decoder_s {
    uint32_t max_buffer;
    uint8_t hdr[SL_NET_FRAME_HEADER];
    uint32_t hdr_have;
    uint8_t type;
    uint64_t channel;
    uint32_t len;
    uint32_t have;      /* payload bytes of the current frame seen so far */
    int error;          /* sticky */
    uint8_t ctl[SL_NET_MAX_CONTROL];
} sl_net_decoder_t;

/* max_buffer 0 means SL_NET_DEFAULT_MAX_BUFFER. */
void sl_net_decoder_init(sl_net_decoder_t *d, uint32_t max_buffer);

/* Consumes bytes of data[0, n) up to the next result; *consumed tells how many. Returns a
 * sl_net_dec_result_t, or an error after which the decoder stays failed: SL_EPROTO (unknown
 * type, a length the type does not allow) or SL_ERANGE (a BUFFER above max_buffer). `what`,
 * if not NULL, gets a static description of the error for logs. */
int sl_net_frame_decode(sl_net_decoder_t *d, const uint8_t *data, size_t n, size_t *consumed,
                        sl_net_frame_t *out, const char **what);

/* How many bytes finish the current part: the header, a control payload, or a BUFFER
 * payload. A reader that asks the socket for no more than this never holds bytes of two
 * parts in one read, so BUFFER payloads can be read straight into their network buffer. */
uint32_t sl_net_decoder_want(const sl_net_decoder_t *d);
/* True while the current part is a BUFFER payload. */
int sl_net_decoder_in_buffer(const sl_net_decoder_t *d);
/* Accounts `n` BUFFER payload bytes the caller read elsewhere (n <= want). Returns 1 when the
 * payload is complete. */
int sl_net_decoder_skip(sl_net_decoder_t *d, uint32_t n);

/* Writes a header. */
void sl_net_frame_header(uint8_t hdr[SL_NET_FRAME_HEADER], uint8_t type, uint64_t channel, uint32_t len);
/* True for a known type; its static name ("BUFFER"), "UNKNOWN" otherwise. */
int sl_net_frame_type_valid(unsigned type);
const char *sl_net_frame_type_name(unsigned type);

/* Big-endian helpers for payloads. */
void sl_net_put_u32(uint8_t *p, uint32_t v);
void sl_net_put_u64(uint8_t *p, uint64_t v);
uint32_t sl_net_get_u32(const uint8_t *p);
uint64_t sl_net_get_u64(const uint8_t *p);

#endif
