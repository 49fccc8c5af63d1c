/* Fuzz target: sl_record_reader_next (src/network/record_writer.h) over a channel's buffers cut from
 * the input; malformed lengths must give SL_EPROTO, never an overread, and rows must stay in bounds. */
#include <sluice/error.h>
#include <sluice/row.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "network/buffer_pool.h"
#include "network/record_writer.h"

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_record_reader: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static volatile uint64_t sink;

static sl_schema_t *schema(void) {
    static sl_schema_t *s;
    if (s == NULL && sl_schema_parse("id:int64,name:string?,price:double,ts:timestamp", &s, NULL, 0) != 0)
        abort();
    return s;
}

/* Input layout: byte 0 picks the buffer size (1..256; 0 -> one buffer of everything), the rest is
 * the byte stream of one channel, cut into consecutive buffers of that size.
 * Each buffer's data is its own heap block of exactly `len` bytes (a pool's segments are one
 * contiguous block, so ASan could not see an overread into the neighbouring segment). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 24))
        return 0;
    size_t seg = data[0] ? data[0] : size;
    const uint8_t *stream = data + 1;
    size_t left = size - 1;
    const sl_schema_t *s = schema();

    sl_record_reader_t reader;
    memset(&reader, 0, sizeof reader); /* how the task creates its per-channel readers */
    int failed = 0;
    while (!failed && left > 0) {
        uint32_t len = (uint32_t)(left < seg ? left : seg);
        sl_buffer_t buf = {0};
        buf.data = malloc(len);
        CHECK(buf.data != NULL);
        memcpy(buf.data, stream, len);
        buf.len = buf.cap = len;
        stream += len;
        left -= len;

        uint32_t pos = 0;
        for (;;) {
            sl_row_t row = {0};
            int64_t ts = 0;
            uint32_t before = pos;
            int rc = sl_record_reader_next(&reader, &buf, &pos, &row, &ts);
            CHECK(pos <= buf.len);
            if (rc == 0) {
                CHECK(pos == buf.len); /* 0 means the buffer is used up */
                break;
            }
            if (rc < 0) {
                CHECK(rc == SL_EPROTO || rc == SL_ENOMEM);
                failed = 1; /* the channel is closed on a protocol error */
                break;
            }
            CHECK(rc == 1);
            CHECK(pos > before || reader.span_need == 0);
            CHECK(row.data != NULL && row.len >= 8 && row.len <= (1u << 30));
            /* ASan: every byte of the returned row must be readable. */
            for (uint32_t k = 0; k < row.len; k++)
                sink += row.data[k];
            sink += (uint64_t)ts;
            /* What the consumer does next. */
            if (sl_row_validate(&row, s) == 0) {
                uint32_t sl;
                const char *p = sl_row_str(&row, 1, &sl);
                if (!sl_row_is_null(&row, 1))
                    for (uint32_t k = 0; k < sl; k++)
                        sink += (uint8_t)p[k];
                sink += (uint64_t)sl_row_i64(&row, 0) + (uint64_t)sl_row_ts(&row, 3);
            }
        }
        free(buf.data);
    }
    sl_record_reader_destroy(&reader);
    return 0;
}
