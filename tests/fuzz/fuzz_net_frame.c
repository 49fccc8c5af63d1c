/* Fuzz target: the incremental data-plane frame decoder (src/network/net_frame.h). The same
 * stream decoded in one piece and in pieces of a fuzzer-chosen size must give the same
 * frames, BUFFER payloads and error; every control frame must re-encode to exactly the bytes
 * it came from; reading BUFFER payloads "elsewhere" (want + skip, as the socket reader does)
 * must agree too; the decoder never wants more than the announced length. */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network/net_frame.h"

#define CHECK(c)                                                                          \
    do {                                                                                  \
        if (!(c)) {                                                                       \
            fprintf(stderr, "fuzz_net_frame: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* A digest of everything decoded, order-sensitive, plus the counts. */
typedef struct {
    int error;
    size_t used;
    uint64_t frames;
    uint64_t data_bytes;
    uint64_t hash;
} result_t;

static void mix(result_t *r, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        r->hash = (r->hash ^ p[i]) * 0x100000001b3ull;
}

static void on_result(result_t *r, int rc, const sl_net_frame_t *f, const uint8_t *frame_start, uint32_t max) {
    if (rc == SL_NET_DEC_FRAME) {
        uint8_t hdr[SL_NET_FRAME_HEADER];
        sl_net_frame_header(hdr, f->type, f->channel, f->len);
        CHECK(memcmp(hdr, frame_start, sizeof hdr) == 0);
        CHECK(f->len == 0 || memcmp(f->payload, frame_start + sizeof hdr, f->len) == 0);
        CHECK(f->type != SL_NET_FRAME_BUFFER && sl_net_frame_type_valid(f->type));
        CHECK(f->len <= SL_NET_MAX_CONTROL);
        r->frames++;
        mix(r, hdr, sizeof hdr);
        if (f->len)
            mix(r, f->payload, f->len);
    } else if (rc == SL_NET_DEC_BUFFER) {
        CHECK(f->len >= 1 && f->len <= max);
        r->frames++;
        uint8_t t = SL_NET_FRAME_BUFFER;
        mix(r, &t, 1);
    } else if (rc == SL_NET_DEC_DATA) {
        r->data_bytes += f->len;
        mix(r, f->payload, f->len);
    }
}

/* Decodes in pieces of `step` (0 = all at once). */
static void run(const uint8_t *s, size_t n, size_t step, uint32_t max, result_t *r) {
    sl_net_decoder_t d;
    sl_net_decoder_init(&d, max);
    max = d.max_buffer;
    memset(r, 0, sizeof *r);
    r->hash = 0xcbf29ce484222325ull;
    size_t off = 0, frame_start = 0;
    while (off < n && !r->error) {
        size_t piece = step == 0 || n - off < step ? n - off : step;
        size_t pos = 0;
        while (pos < piece && !r->error) {
            sl_net_frame_t f;
            size_t used = 0;
            const char *what = NULL;
            int rc = sl_net_frame_decode(&d, s + off + pos, piece - pos, &used, &f, &what);
            CHECK(used <= piece - pos);
            CHECK(rc < 0 || used > 0);
            pos += used;
            if (rc < 0) {
                CHECK(rc == SL_EPROTO || rc == SL_ERANGE);
                CHECK(what != NULL);
                r->error = rc;
                break;
            }
            on_result(r, rc, &f, s + frame_start, max);
            if (rc == SL_NET_DEC_FRAME || (rc == SL_NET_DEC_DATA && !sl_net_decoder_in_buffer(&d))) {
                frame_start = off + pos;
                r->used = frame_start;
            }
            if (rc == SL_NET_DEC_NEED)
                CHECK(pos == piece);
        }
        off += piece;
    }
}

/* The socket reader's way: ask for `want` bytes at most, BUFFER payloads skipped. */
static void run_want(const uint8_t *s, size_t n, uint32_t max, result_t *r) {
    sl_net_decoder_t d;
    sl_net_decoder_init(&d, max);
    max = d.max_buffer;
    memset(r, 0, sizeof *r);
    r->hash = 0xcbf29ce484222325ull;
    size_t off = 0, frame_start = 0;
    while (off < n) {
        uint32_t want = sl_net_decoder_want(&d);
        CHECK(want > 0);
        size_t take = want < n - off ? want : n - off;
        if (sl_net_decoder_in_buffer(&d)) {
            sl_net_frame_t f = {.type = SL_NET_FRAME_BUFFER, .len = (uint32_t)take, .payload = s + off};
            on_result(r, SL_NET_DEC_DATA, &f, NULL, max);
            off += take;
            if (sl_net_decoder_skip(&d, (uint32_t)take)) {
                frame_start = off;
                r->used = off;
            }
            continue;
        }
        sl_net_frame_t f;
        size_t used;
        const char *what;
        int rc = sl_net_frame_decode(&d, s + off, take, &used, &f, &what);
        if (rc < 0) {
            r->error = rc;
            return;
        }
        CHECK(used == take);
        off += used;
        on_result(r, rc, &f, s + frame_start, max);
        if (rc == SL_NET_DEC_FRAME) {
            frame_start = off;
            r->used = off;
        }
    }
}

/* Input: byte 0 picks the piece size (0 = one piece), byte 1 the BUFFER limit (0 = default,
 * else byte * 16, so the limit is reachable); the rest is the stream. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > (1u << 20))
        return 0;
    size_t step = data[0];
    uint32_t max = (uint32_t)data[1] * 16u;
    result_t whole, pieces, want;
    run(data + 2, size - 2, 0, max, &whole);
    run(data + 2, size - 2, step, max, &pieces);
    run_want(data + 2, size - 2, max, &want);
    CHECK(whole.error == pieces.error && whole.error == want.error);
    CHECK(whole.frames == pieces.frames && whole.frames == want.frames);
    CHECK(whole.data_bytes == pieces.data_bytes && whole.data_bytes == want.data_bytes);
    CHECK(whole.hash == pieces.hash && whole.hash == want.hash);
    CHECK(whole.used == pieces.used && whole.used == want.used);
    return 0;
}
