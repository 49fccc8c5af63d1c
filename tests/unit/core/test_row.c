/* Rows and schemas: layout, builder, validation, formatting, schema parsing errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/row.h>

#include <string.h>

#include "core/alloc.h"

static void test_schema_parse(void **state) {
    sl_schema_t *s;
    char err[256];
    assert_int_equal(sl_schema_parse("id:int64,name:string?,score:double,ok:bool,at:timestamp", &s, err, sizeof err), 0);
    assert_int_equal(sl_schema_nfields(s), 5);
    assert_true(sl_schema_field(s, 1)->nullable);
    assert_false(sl_schema_field(s, 0)->nullable);
    assert_int_equal(sl_schema_field(s, 2)->type, SL_TYPE_DOUBLE);
    assert_int_equal(sl_schema_index(s, "ok"), 3);
    assert_int_equal(sl_schema_index(s, "missing"), -1);
    char buf[256];
    assert_int_equal(sl_schema_format(s, buf, sizeof buf), 0);
    assert_string_equal(buf, "id:int64,name:string?,score:double,ok:bool,at:timestamp");
    sl_schema_destroy(s);

    assert_int_equal(sl_schema_parse("id:int65", &s, err, sizeof err), SL_EPARSE);
    assert_non_null(strstr(err, "int65"));
    assert_int_equal(sl_schema_parse("id", &s, err, sizeof err), SL_EPARSE);
    assert_non_null(strstr(err, "name:type"));
    assert_int_equal(sl_schema_parse("a:int64,a:int64", &s, err, sizeof err), SL_EPARSE);
    assert_non_null(strstr(err, "duplicate"));
}

static void test_build_and_read(void **state) {
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    sl_row_builder_start(&b, 6);
    sl_row_set_i64(&b, 0, -42);
    sl_row_set_str(&b, 1, "hello", 5);
    sl_row_set_f64(&b, 2, 2.5);
    sl_row_set_bool(&b, 3, true);
    sl_row_set_null(&b, 4);
    sl_row_set_cstr(&b, 5, "");
    sl_row_t r;
    assert_int_equal(sl_row_builder_finish(&b, &r), 0);
    assert_int_equal(sl_row_nfields(&r), 6);
    assert_int_equal(sl_row_i64(&r, 0), -42);
    uint32_t len;
    const char *s = sl_row_str(&r, 1, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(s, "hello", 5);
    assert_true(sl_row_f64(&r, 2) == 2.5);
    assert_true(sl_row_bool(&r, 3));
    assert_true(sl_row_is_null(&r, 4));
    assert_false(sl_row_is_null(&r, 0));
    sl_row_str(&r, 5, &len);
    assert_int_equal(len, 0);

    /* Read in place at an unaligned address, as inside a network buffer. */
    uint8_t raw[512];
    memcpy(raw + 3, r.data, r.len);
    sl_row_t u = {raw + 3, r.len};
    assert_int_equal(sl_row_i64(&u, 0), -42);
    s = sl_row_str(&u, 1, &len);
    assert_memory_equal(s, "hello", 5);

    sl_schema_t *schema;
    assert_int_equal(sl_schema_parse("a:int64,b:string,c:double,d:bool,e:int64?,f:string", &schema, NULL, 0), 0);
    assert_int_equal(sl_row_validate(&u, schema), 0);
    char out[64];
    assert_int_equal(sl_row_format_field(&u, schema, 2, out, sizeof out), 5);
    assert_string_equal(out, "2.500");
    assert_int_equal(sl_row_format_field(&u, schema, 4, out, sizeof out), 0);
    assert_string_equal(out, "");
    sl_schema_destroy(schema);

    /* A NULL in a non-nullable field or a bad string offset is rejected. */
    assert_int_equal(sl_schema_parse("a:int64,b:string,c:double,d:bool,e:int64,f:string", &schema, NULL, 0), 0);
    assert_int_equal(sl_row_validate(&u, schema), SL_ESCHEMA);
    sl_schema_destroy(schema);
    sl_row_builder_destroy(&b);
}

static void test_many_fields_and_errors(void **state) {
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    sl_row_builder_start(&b, 100);
    for (uint32_t i = 0; i < 100; i++) {
        if (i % 7 == 0)
            sl_row_set_null(&b, i);
        else
            sl_row_set_i64(&b, i, i * 3);
    }
    sl_row_t r;
    assert_int_equal(sl_row_builder_finish(&b, &r), 0);
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(sl_row_is_null(&r, i), i % 7 == 0);
        if (i % 7)
            assert_int_equal(sl_row_i64(&r, i), i * 3);
    }
    /* A field index past the row is reported at finish, never written. */
    sl_row_builder_start(&b, 2);
    sl_row_set_i64(&b, 5, 1);
    assert_int_equal(sl_row_builder_finish(&b, &r), SL_ERANGE);
    sl_row_builder_destroy(&b);
}

static void test_copy_field_and_quoting(void **state) {
    sl_row_builder_t a, b;
    sl_row_builder_init(&a);
    sl_row_builder_init(&b);
    sl_row_builder_start(&a, 2);
    sl_row_set_cstr(&a, 0, "say \"hi\", ok");
    sl_row_set_i64(&a, 1, 7);
    sl_row_t ra;
    assert_int_equal(sl_row_builder_finish(&a, &ra), 0);
    sl_row_builder_start(&b, 2);
    sl_row_copy_field(&b, 0, &ra, 1, SL_TYPE_INT64);
    sl_row_copy_field(&b, 1, &ra, 0, SL_TYPE_STRING);
    sl_row_t rb;
    assert_int_equal(sl_row_builder_finish(&b, &rb), 0);
    assert_int_equal(sl_row_i64(&rb, 0), 7);
    sl_schema_t *s;
    assert_int_equal(sl_schema_parse("n:int64,s:string", &s, NULL, 0), 0);
    char out[64];
    assert_true(sl_row_format_field(&rb, s, 1, out, sizeof out) > 0);
    assert_string_equal(out, "\"say \"\"hi\"\", ok\"");
    sl_schema_destroy(s);
    sl_row_builder_destroy(&a);
    sl_row_builder_destroy(&b);
}

static void test_builder_out_of_memory(void **state) {
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    sl_alloc_fail_after(1, 0);
    sl_row_builder_start(&b, 3);
    sl_row_t r;
    assert_int_equal(sl_row_builder_finish(&b, &r), SL_ENOMEM);
    sl_alloc_fail_after(0, 0);
    sl_row_builder_start(&b, 3);
    assert_int_equal(sl_row_builder_finish(&b, &r), 0);
    sl_row_builder_destroy(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_parse),
        cmocka_unit_test(test_build_and_read),
        cmocka_unit_test(test_many_fields_and_errors),
        cmocka_unit_test(test_copy_field_and_quoting),
        cmocka_unit_test(test_builder_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
