/* Fuzz target: sl_row_validate on arbitrary bytes (an exact-size heap copy) as a row of two fixed
 * schemas (one- and two-word headers); a valid row must be readable, formattable and copyable in bounds. */
#include <sluice/error.h>
#include <sluice/row.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_row_validate: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static sl_schema_t *schemas[2];

static void init(void) {
    if (schemas[0])
        return;
    char err[256];
    /* Schema 0: every type, 8 fields -> 8-byte header, fixed part ends at 72. */
    if (sl_schema_parse("b:bool,i:int32?,l:int64,d:double?,t:timestamp,s:string?,y:bytes,z:string",
                        &schemas[0], err, sizeof err) != 0)
        abort();
    /* Schema 1: 60 fields cycling through the types -> 16-byte header (null bits in word 2). */
    static const char *types[] = {"bool", "int32", "int64", "double", "timestamp", "string", "bytes"};
    char spec[2048];
    size_t o = 0;
    for (int i = 0; i < 60; i++)
        o += (size_t)snprintf(spec + o, sizeof spec - o, "%sf%d:%s%s", i ? "," : "", i, types[i % 7],
                              (i % 3) ? "?" : "");
    if (sl_schema_parse(spec, &schemas[1], err, sizeof err) != 0)
        abort();
}

static volatile uint64_t sink;

static void check_valid_row(const sl_row_t *r, const sl_schema_t *s) {
    uint32_t n = sl_schema_nfields(s);
    CHECK(sl_row_nfields(r) == n);
    static const size_t caps[] = {1, 2, 5, 8, 24, 4096};
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    sl_row_builder_start(&b, n);
    for (uint32_t i = 0; i < n; i++) {
        const sl_field_t *f = sl_schema_field(s, i);
        bool null = sl_row_is_null(r, i);
        CHECK(!null || f->nullable);
        if (!null) {
            switch (f->type) {
            case SL_TYPE_BOOL:
                sink += sl_row_bool(r, i);
                break;
            case SL_TYPE_INT32:
                sink += (uint64_t)sl_row_i32(r, i);
                break;
            case SL_TYPE_DOUBLE: {
                double d = sl_row_f64(r, i);
                uint64_t bits;
                memcpy(&bits, &d, 8);
                sink += bits;
                break;
            }
            case SL_TYPE_STRING:
            case SL_TYPE_BYTES: {
                uint32_t len;
                const char *p = sl_row_str(r, i, &len);
                for (uint32_t k = 0; k < len; k++) /* ASan: every byte must be inside the row */
                    sink += (uint8_t)p[k];
                break;
            }
            default:
                sink += (uint64_t)sl_row_i64(r, i);
            }
        }
        /* Formatting into exact-size heap buffers of several sizes: truncation must not overflow. */
        for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
            char *buf = malloc(caps[c]);
            CHECK(buf != NULL);
            int w = sl_row_format_field(r, s, i, buf, caps[c]);
            CHECK(w == SL_ERANGE || (w >= 0 && (size_t)w < caps[c] && buf[w] == '\0'));
            free(buf);
        }
        sl_row_copy_field(&b, i, r, i, f->type);
    }
    /* A copy of a valid row is a valid row with the same content. */
    sl_row_t copy;
    CHECK(sl_row_builder_finish(&b, &copy) == 0);
    CHECK(sl_row_validate(&copy, s) == 0);
    for (uint32_t i = 0; i < n; i++) {
        const sl_field_t *f = sl_schema_field(s, i);
        CHECK(sl_row_is_null(&copy, i) == sl_row_is_null(r, i));
        if (sl_row_is_null(r, i))
            continue;
        if (f->type == SL_TYPE_STRING || f->type == SL_TYPE_BYTES) {
            uint32_t l1, l2;
            const char *p1 = sl_row_str(r, i, &l1), *p2 = sl_row_str(&copy, i, &l2);
            CHECK(l1 == l2 && (l1 == 0 || memcmp(p1, p2, l1) == 0));
        } else {
            CHECK(sl_row_i64(&copy, i) == sl_row_i64(r, i));
        }
    }
    sl_row_builder_destroy(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    if (size > UINT32_MAX)
        return 0;
    uint8_t *bytes = malloc(size ? size : 1);
    CHECK(bytes != NULL);
    if (size)
        memcpy(bytes, data, size);
    sl_row_t r = {.data = bytes, .len = (uint32_t)size};
    for (int k = 0; k < 2; k++) {
        int rc = sl_row_validate(&r, schemas[k]);
        CHECK(rc == 0 || rc == SL_ESCHEMA);
        if (rc == 0)
            check_valid_row(&r, schemas[k]);
    }
    free(bytes);
    return 0;
}
