/* CSV line parsing into rows (sl_csv_parse_row): types, RFC 4180 quoting, NULL/empty fields,
 * field count errors, bad values, int32 overflow, trailing CR and error message contents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/row.h>

#include <stdlib.h>
#include <string.h>

#include "connectors/csv_parse.h"

typedef struct {
    sl_schema_t *s;
    sl_row_builder_t b;
    sl_row_t row;
    char err[256];
} fx_t;

static void fx_open(fx_t *f, const char *spec) {
    char err[256];
    assert_int_equal(sl_schema_parse(spec, &f->s, err, sizeof err), 0);
    sl_row_builder_init(&f->b);
    f->err[0] = '\0';
}

static void fx_close(fx_t *f) {
    sl_row_builder_destroy(&f->b);
    sl_schema_destroy(f->s);
}

/* Parses `line` (strlen) and, on success, finishes the row into f->row. */
static int fx_parse(fx_t *f, const char *line) {
    f->err[0] = '\0';
    int rc = sl_csv_parse_row(line, strlen(line), f->s, &f->b, f->err, sizeof f->err);
    if (rc == 0)
        assert_int_equal(sl_row_builder_finish(&f->b, &f->row), 0);
    return rc;
}

static void assert_str_field(const sl_row_t *r, uint32_t i, const char *want) {
    uint32_t len = 0;
    const char *p = sl_row_str(r, i, &len);
    assert_false(sl_row_is_null(r, i));
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

static void test_all_types(void **state) {
    fx_t f;
    fx_open(&f, "b:bool,i:int32,l:int64,d:double,t:timestamp,s:string,y:bytes");
    assert_int_equal(fx_parse(&f, "true,-42,9223372036854775807,2.5,1700000000123,hello,raw"), 0);
    assert_int_equal(sl_row_nfields(&f.row), 7);
    assert_true(sl_row_bool(&f.row, 0));
    assert_int_equal(sl_row_i32(&f.row, 1), -42);
    assert_int_equal(sl_row_i64(&f.row, 2), INT64_MAX);
    assert_true(sl_row_f64(&f.row, 3) == 2.5);
    assert_int_equal(sl_row_ts(&f.row, 4), 1700000000123LL);
    assert_str_field(&f.row, 5, "hello");
    assert_str_field(&f.row, 6, "raw");
    for (uint32_t i = 0; i < 7; i++)
        assert_false(sl_row_is_null(&f.row, i));

    assert_int_equal(fx_parse(&f, "false,2147483647,-9223372036854775808,-1e3,0,x,"), 0);
    assert_false(sl_row_bool(&f.row, 0));
    assert_int_equal(sl_row_i32(&f.row, 1), INT32_MAX);
    assert_int_equal(sl_row_i64(&f.row, 2), INT64_MIN);
    assert_true(sl_row_f64(&f.row, 3) == -1000.0);
    assert_int_equal(sl_row_ts(&f.row, 4), 0);
    assert_str_field(&f.row, 5, "x");
    assert_str_field(&f.row, 6, "");
    fx_close(&f);
}

static void test_quoted_fields(void **state) {
    fx_t f;
    fx_open(&f, "a:string,n:int64,c:string");
    assert_int_equal(fx_parse(&f, "\"x,y\",7,\"say \"\"hi\"\"\""), 0);
    assert_str_field(&f.row, 0, "x,y");
    assert_int_equal(sl_row_i64(&f.row, 1), 7);
    assert_str_field(&f.row, 2, "say \"hi\"");

    /* a quoted number is still parsed as a number; "" is the empty string */
    assert_int_equal(fx_parse(&f, "\"\",\"123\",\"a\"\"\""), 0);
    assert_str_field(&f.row, 0, "");
    assert_int_equal(sl_row_i64(&f.row, 1), 123);
    assert_str_field(&f.row, 2, "a\"");

    /* a quoted field of only a doubled quote, and commas at both ends */
    assert_int_equal(fx_parse(&f, "\"\"\"\",1,\",,\""), 0);
    assert_str_field(&f.row, 0, "\"");
    assert_str_field(&f.row, 2, ",,");

    /* text after the closing quote */
    assert_int_equal(fx_parse(&f, "\"ab\"c,1,z"), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 1"));
    assert_non_null(strstr(f.err, "(a)"));
    assert_non_null(strstr(f.err, "closing quote"));
    fx_close(&f);
}

static void test_empty_fields(void **state) {
    fx_t f;
    fx_open(&f, "n:int64?,d:double?,b:bool?,s:string,t:string?");
    assert_int_equal(fx_parse(&f, ",,,,"), 0);
    assert_true(sl_row_is_null(&f.row, 0));
    assert_true(sl_row_is_null(&f.row, 1));
    assert_true(sl_row_is_null(&f.row, 2));
    /* strings: empty is the empty string, not NULL, even when nullable */
    assert_str_field(&f.row, 3, "");
    assert_str_field(&f.row, 4, "");

    assert_int_equal(fx_parse(&f, "5,0.5,true,s,t"), 0);
    assert_int_equal(sl_row_i64(&f.row, 0), 5);
    assert_true(sl_row_f64(&f.row, 1) == 0.5);
    assert_true(sl_row_bool(&f.row, 2));
    for (uint32_t i = 0; i < 5; i++)
        assert_false(sl_row_is_null(&f.row, i));
    fx_close(&f);

    fx_open(&f, "id:int64,qty:int32");
    assert_int_equal(fx_parse(&f, "1,"), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 2"));
    assert_non_null(strstr(f.err, "(qty)"));
    assert_non_null(strstr(f.err, "not nullable"));
    assert_int_equal(fx_parse(&f, ",1"), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 1"));
    assert_non_null(strstr(f.err, "(id)"));
    /* a quoted empty field is not NULL: it is an invalid int */
    assert_int_equal(fx_parse(&f, "1,\"\""), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 2"));
    assert_non_null(strstr(f.err, "int32"));
    fx_close(&f);
}

static void test_field_count(void **state) {
    fx_t f;
    fx_open(&f, "a:int64,b:int64,c:int64");
    assert_int_equal(fx_parse(&f, "1,2,3"), 0);
    assert_int_equal(sl_row_i64(&f.row, 2), 3);

    assert_int_equal(fx_parse(&f, "1,2"), SL_EPARSE);
    assert_string_equal(f.err, "2 fields, expected 3");
    assert_int_equal(fx_parse(&f, "1"), SL_EPARSE);
    assert_string_equal(f.err, "1 fields, expected 3");
    assert_int_equal(fx_parse(&f, "1,2,3,4"), SL_EPARSE);
    assert_string_equal(f.err, "more than 3 fields");
    /* a trailing comma is a fourth (empty) field */
    assert_int_equal(fx_parse(&f, "1,2,3,"), SL_EPARSE);
    assert_string_equal(f.err, "more than 3 fields");
    fx_close(&f);

    /* one string field: the empty line is one empty string */
    fx_open(&f, "s:string");
    assert_int_equal(fx_parse(&f, ""), 0);
    assert_str_field(&f.row, 0, "");
    assert_int_equal(fx_parse(&f, ","), SL_EPARSE);
    assert_string_equal(f.err, "more than 1 fields");
    fx_close(&f);
}

static void test_bad_values(void **state) {
    fx_t f;
    fx_open(&f, "i:int64,d:double,b:bool");
    assert_int_equal(fx_parse(&f, "12x,1.0,true"), SL_EPARSE);
    assert_string_equal(f.err, "column 1 (i): '12x' is not an int64");
    assert_int_equal(fx_parse(&f, "1.5,1.0,true"), SL_EPARSE);
    assert_string_equal(f.err, "column 1 (i): '1.5' is not an int64");
    assert_int_equal(fx_parse(&f, "9223372036854775808,1.0,true"), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 1 (i)"));
    assert_int_equal(fx_parse(&f, "1,abc,true"), SL_EPARSE);
    assert_string_equal(f.err, "column 2 (d): 'abc' is not a number");
    assert_int_equal(fx_parse(&f, "1,1.0.0,true"), SL_EPARSE);
    assert_string_equal(f.err, "column 2 (d): '1.0.0' is not a number");
    assert_int_equal(fx_parse(&f, "1,nan,true"), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 2 (d)"));
    assert_int_equal(fx_parse(&f, "1,1e999,true"), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 2 (d)"));
    assert_int_equal(fx_parse(&f, "1,1.0,TRUE"), SL_EPARSE);
    assert_string_equal(f.err, "column 3 (b): 'TRUE' is not a bool (true or false)");
    assert_int_equal(fx_parse(&f, "1,1.0,1"), SL_EPARSE);
    assert_string_equal(f.err, "column 3 (b): '1' is not a bool (true or false)");
    assert_int_equal(fx_parse(&f, "1,1.0,truex"), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 3 (b)"));
    fx_close(&f);

    fx_open(&f, "ts:timestamp");
    assert_int_equal(fx_parse(&f, "yesterday"), SL_EPARSE);
    assert_string_equal(f.err, "column 1 (ts): 'yesterday' is not a timestamp (epoch ms)");
    fx_close(&f);
}

static void test_int32_range(void **state) {
    fx_t f;
    fx_open(&f, "k:int64,v:int32");
    assert_int_equal(fx_parse(&f, "0,-2147483648"), 0);
    assert_int_equal(sl_row_i32(&f.row, 1), INT32_MIN);
    assert_int_equal(sl_row_i64(&f.row, 1), INT32_MIN);
    assert_int_equal(fx_parse(&f, "0,2147483648"), SL_EPARSE);
    assert_string_equal(f.err, "column 2 (v): '2147483648' is not an int32");
    assert_int_equal(fx_parse(&f, "0,-2147483649"), SL_EPARSE);
    assert_string_equal(f.err, "column 2 (v): '-2147483649' is not an int32");
    assert_int_equal(fx_parse(&f, "0,4294967296"), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 2 (v)"));
    fx_close(&f);
}

static void test_trailing_cr(void **state) {
    fx_t f;
    fx_open(&f, "a:int64,s:string");
    assert_int_equal(fx_parse(&f, "5,abc\r"), 0);
    assert_int_equal(sl_row_i64(&f.row, 0), 5);
    assert_str_field(&f.row, 1, "abc");
    assert_int_equal(fx_parse(&f, "5,\"q,r\"\r"), 0);
    assert_str_field(&f.row, 1, "q,r");
    /* a CR that is not last stays part of the field */
    assert_int_equal(fx_parse(&f, "5,a\rb"), 0);
    assert_str_field(&f.row, 1, "a\rb");
    fx_close(&f);

    fx_open(&f, "a:int64");
    assert_int_equal(fx_parse(&f, "17\r"), 0);
    assert_int_equal(sl_row_i64(&f.row, 0), 17);
    fx_close(&f);
}

static void test_unterminated_quote(void **state) {
    fx_t f;
    fx_open(&f, "a:int64,name:string");
    assert_int_equal(fx_parse(&f, "1,\"abc"), SL_EPARSE);
    assert_string_equal(f.err, "column 2 (name): unterminated quote");
    assert_int_equal(fx_parse(&f, "1,\"abc\"\""), SL_EPARSE);
    assert_string_equal(f.err, "column 2 (name): unterminated quote");
    assert_int_equal(fx_parse(&f, "1,\""), SL_EPARSE);
    assert_string_equal(f.err, "column 2 (name): unterminated quote");
    /* the trailing CR is removed before the quote is looked for */
    assert_int_equal(fx_parse(&f, "1,\"abc\r"), SL_EPARSE);
    assert_string_equal(f.err, "column 2 (name): unterminated quote");
    fx_close(&f);
}

static void test_len_not_nul(void **state) {
    /* only `len` bytes are read: the rest of the buffer is not part of the line */
    fx_t f;
    fx_open(&f, "a:int64,b:int64");
    const char buf[] = "10,20,30,40";
    assert_int_equal(sl_csv_parse_row(buf, 5, f.s, &f.b, f.err, sizeof f.err), 0);
    assert_int_equal(sl_row_builder_finish(&f.b, &f.row), 0);
    assert_int_equal(sl_row_i64(&f.row, 0), 10);
    assert_int_equal(sl_row_i64(&f.row, 1), 20);
    assert_int_equal(sl_row_validate(&f.row, f.s), 0);
    fx_close(&f);
}

static void test_long_quoted_field(void **state) {
    fx_t f;
    fx_open(&f, "s:string");
    size_t n = 5000;
    char *line = malloc(n + 3);
    assert_non_null(line);
    line[0] = '"';
    memset(line + 1, 'x', n);
    line[n + 1] = '"';
    line[n + 2] = '\0';
    assert_int_equal(fx_parse(&f, line), SL_EPARSE);
    assert_non_null(strstr(f.err, "column 1 (s)"));
    assert_non_null(strstr(f.err, "longer than"));
    /* just under the scratch size is accepted */
    line[4001] = '"';
    line[4002] = '\0';
    assert_int_equal(fx_parse(&f, line), 0);
    uint32_t len;
    sl_row_str(&f.row, 0, &len);
    assert_int_equal(len, 4000);
    free(line);
    fx_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_types),       cmocka_unit_test(test_quoted_fields),
        cmocka_unit_test(test_empty_fields),    cmocka_unit_test(test_field_count),
        cmocka_unit_test(test_bad_values),      cmocka_unit_test(test_int32_range),
        cmocka_unit_test(test_trailing_cr),     cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_len_not_nul),     cmocka_unit_test(test_long_quoted_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
