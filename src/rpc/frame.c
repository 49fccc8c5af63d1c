/* The incremental frame decoder and header encoder (format: frame.h). A state machine over
 * two phases, header then payload, that never reads past what it was given, so the caller can
 * feed whatever a socket read returned. */
#include "rpc/frame.h"

#include <sluice/error.h>
#include <string.h>

#include "core/alloc.h"

/* First payload allocation; the buffer doubles up to the announced length as bytes arrive. */
#define INITIAL_PAYLOAD_CAP (64u * 1024u)

void sl_rpc_frame_decoder_init(sl_rpc_frame_decoder_t *d, uint32_t max_frame) {
    memset(d, 0, sizeof *d);
    d->max_frame = max_frame ? max_frame : SL_RPC_DEFAULT_MAX_FRAME;
}

void sl_rpc_frame_decoder_destroy(sl_rpc_frame_decoder_t *d) {
    sl_free(d->buf);
    d->buf = NULL;
    d->buf_cap = 0;
}

void sl_rpc_frame_header(uint8_t hdr[SL_RPC_FRAME_HEADER_SIZE], uint8_t kind, uint32_t len) {
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    hdr[4] = kind;
}

int sl_rpc_frame_kind_valid(unsigned kind) {
    return kind >= SL_RPC_FRAME_HELLO && kind <= SL_RPC_FRAME_KIND_MAX;
}

const char *sl_rpc_frame_kind_name(unsigned kind) {
    static const char *names[] = {"UNKNOWN", "HELLO", "AUTH", "AUTH_OK", "ERROR", "MSG"};
    return sl_rpc_frame_kind_valid(kind) ? names[kind] : names[0];
}

static int fail(sl_rpc_frame_decoder_t *d, int err, const char **what, const char *msg) {
    d->error = err;
    if (what)
        *what = msg;
    return err;
}

/* Validates a complete header. The length check comes before any allocation. */
static int check_header(sl_rpc_frame_decoder_t *d, const char **what) {
    const uint8_t *h = d->hdr;
    d->len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    d->kind = h[4];
    if (!sl_rpc_frame_kind_valid(d->kind))
        return fail(d, SL_EPROTO, what, "unknown frame kind");
    if (d->len > d->max_frame)
        return fail(d, SL_ERANGE, what, "frame length above the maximum frame size");
    d->have = 0;
    return 0;
}

/* Makes room for `want` payload bytes in total, growing geometrically but never past len. */
static int reserve(sl_rpc_frame_decoder_t *d, uint32_t want, const char **what) {
    if (want <= d->buf_cap)
        return 0;
    uint32_t cap = d->buf_cap ? d->buf_cap : INITIAL_PAYLOAD_CAP;
    while (cap < want)
        cap = cap > d->len / 2 ? d->len : cap * 2;
    if (cap > d->len)
        cap = d->len;
    uint8_t *nb = sl_realloc(d->buf, cap);
    if (!nb)
        return fail(d, SL_ENOMEM, what, "out of memory for a frame payload");
    d->buf = nb;
    d->buf_cap = cap;
    return 0;
}

/* Hands the completed frame to the caller and resets for the next header. */
static int emit(sl_rpc_frame_decoder_t *d, sl_rpc_frame_t *out) {
    out->kind = d->kind;
    out->len = d->len;
    out->payload = d->len ? d->buf : NULL;
    if (d->len) {
        d->buf = NULL;
        d->buf_cap = 0;
    }
    d->hdr_have = 0;
    d->have = 0;
    return 1;
}

int sl_rpc_frame_decode(sl_rpc_frame_decoder_t *d, const uint8_t *data, size_t n, size_t *consumed,
                        sl_rpc_frame_t *out, const char **what) {
    size_t pos = 0;
    *consumed = 0;
    if (d->error)
        return fail(d, d->error, what, "decoder already failed");
    if (d->hdr_have < SL_RPC_FRAME_HEADER_SIZE) {
        size_t take = SL_RPC_FRAME_HEADER_SIZE - d->hdr_have;
        if (take > n)
            take = n;
        memcpy(d->hdr + d->hdr_have, data, take);
        d->hdr_have += (uint32_t)take;
        pos = take;
        *consumed = pos;
        if (d->hdr_have < SL_RPC_FRAME_HEADER_SIZE)
            return 0;
        int rc = check_header(d, what);
        if (rc < 0)
            return rc;
    }
    size_t take = d->len - d->have;
    if (take > n - pos)
        take = n - pos;
    if (take > 0) {
        int rc = reserve(d, d->have + (uint32_t)take, what);
        if (rc < 0)
            return rc;
        memcpy(d->buf + d->have, data + pos, take);
        d->have += (uint32_t)take;
        pos += take;
    }
    *consumed = pos;
    if (d->have < d->len)
        return 0;
    return emit(d, out);
}
