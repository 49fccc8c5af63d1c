/* Fuzz target: the incremental RPC frame decoder (src/rpc/frame.h). The same stream decoded in
 * one piece and in pieces of a fuzzer-chosen size must give the same frames and the same
 * error; every frame must re-encode to exactly the bytes it came from; a refused length must
 * never be allocated. */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "rpc/frame.h"

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_rpc_frame: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

#define MAX_FRAMES 4096

typedef struct {
    int nframes;
    int error;
    size_t used; /* bytes consumed by complete frames */
    uint32_t offsets[MAX_FRAMES];
    uint32_t lens[MAX_FRAMES];
    uint8_t kinds[MAX_FRAMES];
} result_t;

static result_t whole, pieces;

/* Decodes `n` bytes in pieces of `step` (0 = all at once); checks each frame against the
 * input bytes it was decoded from. */
static void run(const uint8_t *s, size_t n, size_t step, uint32_t max, result_t *r) {
    sl_rpc_frame_decoder_t d;
    sl_rpc_frame_decoder_init(&d, max);
    memset(r, 0, sizeof *r);
    size_t off = 0, frame_start = 0;
    while (off < n && !r->error) {
        size_t piece = step == 0 || n - off < step ? n - off : step;
        size_t pos = 0;
        while (pos < piece && !r->error) {
            sl_rpc_frame_t f;
            size_t used = 0;
            const char *what = NULL;
            int rc = sl_rpc_frame_decode(&d, s + off + pos, piece - pos, &used, &f, &what);
            CHECK(used <= piece - pos);
            pos += used;
            if (rc < 0) {
                CHECK(rc == SL_EPROTO || rc == SL_ERANGE || rc == SL_ENOMEM);
                CHECK(what != NULL);
                CHECK(d.buf == NULL); /* refused before allocating */
                r->error = rc;
                break;
            }
            if (rc == 0) {
                CHECK(pos == piece);
                break;
            }
            size_t end = off + pos;
            CHECK(end - frame_start == SL_RPC_FRAME_HEADER_SIZE + (size_t)f.len);
            CHECK(f.len <= (max ? max : SL_RPC_DEFAULT_MAX_FRAME));
            CHECK(sl_rpc_frame_kind_valid(f.kind));
            uint8_t hdr[SL_RPC_FRAME_HEADER_SIZE];
            sl_rpc_frame_header(hdr, f.kind, f.len);
            CHECK(memcmp(hdr, s + frame_start, sizeof hdr) == 0);
            CHECK(f.len == 0 || memcmp(f.payload, s + frame_start + sizeof hdr, f.len) == 0);
            CHECK((f.len == 0) == (f.payload == NULL));
            if (r->nframes < MAX_FRAMES) {
                r->offsets[r->nframes] = (uint32_t)frame_start;
                r->lens[r->nframes] = f.len;
                r->kinds[r->nframes] = f.kind;
            }
            r->nframes++;
            sl_free(f.payload);
            frame_start = end;
            r->used = end;
        }
        off += piece;
    }
    sl_rpc_frame_decoder_destroy(&d);
}

/* Input: byte 0 picks the piece size (0 = one piece), byte 1 the frame limit (0 = default,
 * else byte * 16, so the limit is reachable); the rest is the stream. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > (1u << 20))
        return 0;
    size_t step = data[0];
    uint32_t max = (uint32_t)data[1] * 16u;
    run(data + 2, size - 2, 0, max, &whole);
    run(data + 2, size - 2, step, max, &pieces);
    CHECK(whole.error == pieces.error);
    CHECK(whole.nframes == pieces.nframes);
    CHECK(whole.used == pieces.used);
    int n = whole.nframes < MAX_FRAMES ? whole.nframes : MAX_FRAMES;
    for (int i = 0; i < n; i++)
        CHECK(whole.offsets[i] == pieces.offsets[i] && whole.lens[i] == pieces.lens[i] &&
              whole.kinds[i] == pieces.kinds[i]);
    return 0;
}
