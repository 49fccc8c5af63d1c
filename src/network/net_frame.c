/* The data-plane frame decoder and encoders (format: net_frame.h). A state machine over two
 * parts, header then payload, that never reads past what it was given, so the caller can feed
 * whatever a socket read returned, or read BUFFER payloads elsewhere and skip them here. */
#include "network/net_frame.h"

#include <sluice/error.h>
#include <string.h>

void sl_net_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void sl_net_put_u64(uint8_t *p, uint64_t v) {
    sl_net_put_u32(p, (uint32_t)(v >> 32));
    sl_net_put_u32(p + 4, (uint32_t)v);
}

uint32_t sl_net_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t sl_net_get_u64(const uint8_t *p) {
    return (uint64_t)sl_net_get_u32(p) << 32 | sl_net_get_u32(p + 4);
}

void sl_net_decoder_init(sl_net_decoder_t *d, uint32_t max_buffer) {
    memset(d, 0, sizeof *d);
    d->max_buffer = max_buffer ? max_buffer : SL_NET_DEFAULT_MAX_BUFFER;
}

void sl_net_frame_header(uint8_t hdr[SL_NET_FRAME_HEADER], uint8_t type, uint64_t channel, uint32_t len) {
    sl_net_put_u32(hdr, len);
    hdr[4] = type;
    sl_net_put_u64(hdr + 5, channel);
}

int sl_net_frame_type_valid(unsigned type) {
    return type >= SL_NET_FRAME_HELLO && type <= SL_NET_FRAME_TYPE_MAX;
}

const char *sl_net_frame_type_name(unsigned type) {
    static const char *names[] = {"UNKNOWN", "HELLO", "AUTH", "AUTH_OK", "ERROR", "PARTITION_REQUEST",
                                  "ADD_CREDIT", "BUFFER", "EVENT", "CANCEL"};
    return sl_net_frame_type_valid(type) ? names[type] : names[0];
}

static int fail(sl_net_decoder_t *d, int err, const char **what, const char *msg) {
    d->error = err;
    if (what)
        *what = msg;
    return err;
}

/* The payload lengths a type allows: [lo, hi]. */
static void allowed_len(const sl_net_decoder_t *d, uint8_t type, uint32_t *lo, uint32_t *hi) {
    switch (type) {
    case SL_NET_FRAME_HELLO: *lo = 37; *hi = 36 + SL_NET_MAX_ID; return;
    case SL_NET_FRAME_AUTH: *lo = 69; *hi = 68 + SL_NET_MAX_ID; return;
    case SL_NET_FRAME_AUTH_OK: *lo = *hi = 32; return;
    case SL_NET_FRAME_ERROR: *lo = 4; *hi = SL_NET_MAX_CONTROL; return;
    case SL_NET_FRAME_PARTITION_REQUEST:
    case SL_NET_FRAME_ADD_CREDIT: *lo = *hi = 4; return;
    case SL_NET_FRAME_BUFFER: *lo = 1; *hi = d->max_buffer; return;
    case SL_NET_FRAME_EVENT: *lo = *hi = 9; return;
    default: *lo = *hi = 0; return;
    }
}

/* Validates a complete header; the length is checked before any payload is accepted. */
static int check_header(sl_net_decoder_t *d, const char **what) {
    d->len = sl_net_get_u32(d->hdr);
    d->type = d->hdr[4];
    d->channel = sl_net_get_u64(d->hdr + 5);
    d->have = 0;
    if (!sl_net_frame_type_valid(d->type))
        return fail(d, SL_EPROTO, what, "unknown frame type");
    uint32_t lo, hi;
    allowed_len(d, d->type, &lo, &hi);
    if (d->type == SL_NET_FRAME_BUFFER && d->len > hi)
        return fail(d, SL_ERANGE, what, "BUFFER frame above the maximum buffer size");
    if (d->len < lo || d->len > hi)
        return fail(d, SL_EPROTO, what, "frame length not allowed for its type");
    return 0;
}

static void reset(sl_net_decoder_t *d) {
    d->hdr_have = 0;
    d->have = 0;
}

/* Hands out a complete control frame. */
static int emit_control(sl_net_decoder_t *d, sl_net_frame_t *out) {
    out->type = d->type;
    out->channel = d->channel;
    out->len = d->len;
    out->payload = d->len ? d->ctl : NULL;
    reset(d);
    return SL_NET_DEC_FRAME;
}

static int take_header(sl_net_decoder_t *d, const uint8_t *data, size_t n, size_t *pos, sl_net_frame_t *out,
                       const char **what) {
    size_t take = SL_NET_FRAME_HEADER - d->hdr_have;
    if (take > n)
        take = n;
    memcpy(d->hdr + d->hdr_have, data, take);
    d->hdr_have += (uint32_t)take;
    *pos = take;
    if (d->hdr_have < SL_NET_FRAME_HEADER)
        return SL_NET_DEC_NEED;
    int rc = check_header(d, what);
    if (rc < 0)
        return rc;
    if (d->type == SL_NET_FRAME_BUFFER) {
        out->type = d->type;
        out->channel = d->channel;
        out->len = d->len;
        out->payload = NULL;
        return SL_NET_DEC_BUFFER;
    }
    if (d->len == 0)
        return emit_control(d, out);
    return SL_NET_DEC_NEED;
}

int sl_net_frame_decode(sl_net_decoder_t *d, const uint8_t *data, size_t n, size_t *consumed,
                        sl_net_frame_t *out, const char **what) {
    *consumed = 0;
    if (d->error)
        return fail(d, d->error, what, "decoder already failed");
    if (n == 0)
        return SL_NET_DEC_NEED;
    if (d->hdr_have < SL_NET_FRAME_HEADER) {
        size_t pos = 0;
        int rc = take_header(d, data, n, &pos, out, what);
        *consumed = pos;
        /* A header result stands alone: the caller decides where the payload goes. */
        if (rc != SL_NET_DEC_NEED || pos == n || d->hdr_have < SL_NET_FRAME_HEADER)
            return rc;
        data += pos;
        n -= pos;
    }
    size_t take = d->len - d->have;
    if (take > n)
        take = n;
    if (d->type == SL_NET_FRAME_BUFFER) {
        out->type = d->type;
        out->channel = d->channel;
        out->len = (uint32_t)take;
        out->payload = data;
        *consumed += take;
        sl_net_decoder_skip(d, (uint32_t)take);
        return SL_NET_DEC_DATA;
    }
    memcpy(d->ctl + d->have, data, take);
    d->have += (uint32_t)take;
    *consumed += take;
    if (d->have < d->len)
        return SL_NET_DEC_NEED;
    return emit_control(d, out);
}

uint32_t sl_net_decoder_want(const sl_net_decoder_t *d) {
    if (d->hdr_have < SL_NET_FRAME_HEADER)
        return SL_NET_FRAME_HEADER - d->hdr_have;
    return d->len - d->have;
}

int sl_net_decoder_in_buffer(const sl_net_decoder_t *d) {
    return d->error == 0 && d->hdr_have == SL_NET_FRAME_HEADER && d->type == SL_NET_FRAME_BUFFER;
}

int sl_net_decoder_skip(sl_net_decoder_t *d, uint32_t n) {
    d->have += n;
    if (d->have < d->len)
        return 0;
    reset(d);
    return 1;
}
