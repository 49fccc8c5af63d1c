/* The data-plane frame decoder (src/network/net_frame.h): every frame type decoded whole and
 * byte by byte, BUFFER payloads as chunks or skipped, and every malformed header refused
 * before its payload is accepted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <string.h>

#include "network/net_frame.h"

static size_t put_frame(uint8_t *out, uint8_t type, uint64_t ch, const void *payload, uint32_t len) {
    sl_net_frame_header(out, type, ch, len);
    if (len)
        memcpy(out + SL_NET_FRAME_HEADER, payload, len);
    return SL_NET_FRAME_HEADER + len;
}

/* A stream of one of each channel frame; decoded with pieces of `step` bytes. */
static void decode_stream(size_t step) {
    uint8_t s[4096];
    size_t n = 0;
    uint8_t credit[4] = {0, 0, 0, 5};
    uint8_t ev[9] = {1, 0, 0, 0, 0, 0, 0, 0x30, 0x39};
    uint8_t data[300];
    for (unsigned i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)i;
    n += put_frame(s + n, SL_NET_FRAME_PARTITION_REQUEST, 0x0102030405060708ull, credit, 4);
    n += put_frame(s + n, SL_NET_FRAME_BUFFER, 9, data, sizeof data);
    n += put_frame(s + n, SL_NET_FRAME_EVENT, 9, ev, 9);
    n += put_frame(s + n, SL_NET_FRAME_CANCEL, 9, NULL, 0);
    sl_net_decoder_t d;
    sl_net_decoder_init(&d, 1024);
    int frames = 0;
    uint32_t data_seen = 0;
    size_t off = 0;
    while (off < n) {
        size_t piece = step && n - off > step ? step : n - off;
        size_t pos = 0;
        while (pos < piece) {
            sl_net_frame_t f;
            size_t used;
            int rc = sl_net_frame_decode(&d, s + off + pos, piece - pos, &used, &f, NULL);
            assert_true(rc >= 0);
            pos += used;
            if (rc == SL_NET_DEC_FRAME) {
                if (frames == 0) {
                    assert_int_equal(f.type, SL_NET_FRAME_PARTITION_REQUEST);
                    assert_true(f.channel == 0x0102030405060708ull);
                    assert_int_equal(sl_net_get_u32(f.payload), 5);
                } else if (frames == 1) {
                    assert_int_equal(f.type, SL_NET_FRAME_EVENT);
                    assert_int_equal(data_seen, sizeof data);
                    assert_int_equal(sl_net_get_u64(f.payload + 1), 12345);
                } else {
                    assert_int_equal(f.type, SL_NET_FRAME_CANCEL);
                    assert_null(f.payload);
                }
                frames++;
            } else if (rc == SL_NET_DEC_BUFFER) {
                assert_int_equal(f.len, sizeof data);
                assert_true(sl_net_decoder_in_buffer(&d));
            } else if (rc == SL_NET_DEC_DATA) {
                assert_memory_equal(f.payload, data + data_seen, f.len);
                data_seen += f.len;
            } else {
                assert_int_equal(pos, piece);
            }
        }
        off += piece;
    }
    assert_int_equal(frames, 3);
    assert_int_equal(sl_net_decoder_want(&d), SL_NET_FRAME_HEADER);
}

static void test_decode_whole_and_pieces(void **state) {
    decode_stream(0);
    decode_stream(1);
    decode_stream(7);
    decode_stream(13);
}

/* The socket reader's way: read only what the decoder wants, skip BUFFER payloads. */
static void test_want_and_skip(void **state) {
    uint8_t s[64];
    size_t n = put_frame(s, SL_NET_FRAME_BUFFER, 3, "abcdefgh", 8);
    sl_net_decoder_t d;
    sl_net_decoder_init(&d, 0);
    assert_int_equal(sl_net_decoder_want(&d), SL_NET_FRAME_HEADER);
    sl_net_frame_t f;
    size_t used;
    assert_int_equal(sl_net_frame_decode(&d, s, SL_NET_FRAME_HEADER, &used, &f, NULL), SL_NET_DEC_BUFFER);
    assert_int_equal(used, SL_NET_FRAME_HEADER);
    assert_int_equal(sl_net_decoder_want(&d), 8);
    assert_int_equal(sl_net_decoder_skip(&d, 5), 0);
    assert_int_equal(sl_net_decoder_want(&d), 3);
    assert_int_equal(sl_net_decoder_skip(&d, 3), 1);
    assert_false(sl_net_decoder_in_buffer(&d));
    assert_int_equal(sl_net_decoder_want(&d), SL_NET_FRAME_HEADER);
    (void)n;
}

static int decode_header(uint8_t type, uint32_t len, uint32_t max, const char **what) {
    uint8_t h[SL_NET_FRAME_HEADER];
    sl_net_frame_header(h, type, 1, len);
    sl_net_decoder_t d;
    sl_net_decoder_init(&d, max);
    sl_net_frame_t f;
    size_t used;
    int rc = sl_net_frame_decode(&d, h, sizeof h, &used, &f, what);
    if (rc < 0) {
        /* Sticky: nothing more is accepted. */
        assert_int_equal(sl_net_frame_decode(&d, h, sizeof h, &used, &f, NULL), rc);
        assert_int_equal(used, 0);
    }
    return rc;
}

static void test_malformed_headers(void **state) {
    const char *what = NULL;
    assert_int_equal(decode_header(0, 4, 0, &what), SL_EPROTO);
    assert_string_equal(what, "unknown frame type");
    assert_int_equal(decode_header(10, 4, 0, &what), SL_EPROTO);
    assert_int_equal(decode_header(SL_NET_FRAME_BUFFER, 4097, 4096, &what), SL_ERANGE);
    assert_int_equal(decode_header(SL_NET_FRAME_BUFFER, 0xffffffffu, 0, &what), SL_ERANGE);
    assert_int_equal(decode_header(SL_NET_FRAME_BUFFER, 0, 0, &what), SL_EPROTO);
    assert_int_equal(decode_header(SL_NET_FRAME_ADD_CREDIT, 5, 0, &what), SL_EPROTO);
    assert_int_equal(decode_header(SL_NET_FRAME_EVENT, 8, 0, &what), SL_EPROTO);
    assert_int_equal(decode_header(SL_NET_FRAME_ERROR, SL_NET_MAX_CONTROL + 1, 0, &what), SL_EPROTO);
    assert_int_equal(decode_header(SL_NET_FRAME_HELLO, 36, 0, &what), SL_EPROTO);
    assert_int_equal(decode_header(SL_NET_FRAME_AUTH, 68 + 256, 0, &what), SL_EPROTO);
    assert_int_equal(decode_header(SL_NET_FRAME_CANCEL, 1, 0, &what), SL_EPROTO);
    assert_int_equal(decode_header(SL_NET_FRAME_BUFFER, 4096, 4096, NULL), SL_NET_DEC_BUFFER);
    assert_int_equal(decode_header(SL_NET_FRAME_ERROR, 4, 0, NULL), SL_NET_DEC_NEED);
    assert_string_equal(sl_net_frame_type_name(SL_NET_FRAME_ADD_CREDIT), "ADD_CREDIT");
    assert_string_equal(sl_net_frame_type_name(77), "UNKNOWN");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_whole_and_pieces),
        cmocka_unit_test(test_want_and_skip),
        cmocka_unit_test(test_malformed_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
