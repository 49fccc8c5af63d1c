/* Fuzz target: sl_csv_parse_row (src/connectors/csv_parse.h), one call per input line, against a
 * schema with every type, nullable and not. A parsed row must finish and pass sl_row_validate. */
#include <sluice/error.h>
#include <sluice/row.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/csv_parse.h"

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_csv_parse: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static const char *const SPEC = "b:bool,i:int32,l:int64,d:double,t:timestamp,s:string,y:bytes,"
                                "bn:bool?,in:int32?,ln:int64?,dn:double?,tn:timestamp?,sn:string?,yn:bytes?";

static sl_schema_t *schema(void) {
    static sl_schema_t *s;
    if (s == NULL) {
        char err[256];
        if (sl_schema_parse(SPEC, &s, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_csv_parse: schema: %s\n", err);
            abort();
        }
    }
    return s;
}

static volatile uint64_t sink;

/* Reads every field of a validated row the way an operator would. */
static void read_all(const sl_row_t *row, const sl_schema_t *s) {
    char text[512];
    for (uint32_t i = 0; i < sl_schema_nfields(s); i++) {
        const sl_field_t *f = sl_schema_field(s, i);
        if (sl_row_is_null(row, i)) {
            CHECK(f->nullable);
        } else if (f->type == SL_TYPE_STRING || f->type == SL_TYPE_BYTES) {
            uint32_t len;
            const char *p = sl_row_str(row, i, &len);
            for (uint32_t k = 0; k < len; k++)
                sink += (uint8_t)p[k];
        } else {
            sink += (uint64_t)sl_row_i64(row, i);
        }
        int w = sl_row_format_field(row, s, i, text, sizeof text);
        CHECK(w == SL_ERANGE || (w >= 0 && (size_t)w < sizeof text && text[w] == '\0'));
    }
}

static void parse_line(const uint8_t *line, size_t len, sl_row_builder_t *b) {
    /* Exactly `len` bytes on the heap, no terminator: the parser must respect `len`. */
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    if (len)
        memcpy(copy, line, len);
    char err[256];
    err[0] = '\0';
    const sl_schema_t *s = schema();
    int rc = sl_csv_parse_row(copy, len, s, b, err, sizeof err);
    if (rc == 0) {
        sl_row_t row;
        CHECK(sl_row_builder_finish(b, &row) == 0);
        int v = sl_row_validate(&row, s);
        if (v != 0)
            fprintf(stderr, "row parsed from '%.*s' does not validate: %d\n", (int)len, copy, v);
        CHECK(v == 0);
        read_all(&row, s);
    } else {
        CHECK(rc == SL_EPARSE || rc == SL_ENOMEM);
        CHECK(memchr(err, '\0', sizeof err) != NULL);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* One builder for all lines of the input, as the file and socket sources reuse theirs. */
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            parse_line(data + start, i - start, &b);
            start = i + 1;
        }
    }
    sl_row_builder_destroy(&b);
    return 0;
}
