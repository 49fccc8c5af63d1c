/* Built-in aggregates (sl_agg_compile/init/add/merge/results): names, output types, compile
 * errors, SQL NULL semantics, and merging two accumulators equal to adding all rows to one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/row.h>

#include <stdlib.h>
#include <string.h>

#include "operators/agg.h"

/* id, qty, price, x, y, name */
#define SCHEMA "id:int64,qty:int32?,price:double?,x:timestamp?,y:int64?,name:string"
#define SPEC "count(), sum(price), min(1), max(x), avg(y)"

typedef struct {
    int64_t id;
    int qty_null;
    int32_t qty;
    int price_null;
    double price;
    int x_null;
    int64_t x;
    int y_null;
    int64_t y;
} in_row_t;

static sl_schema_t *schema(void) {
    sl_schema_t *s;
    char err[256];
    assert_int_equal(sl_schema_parse(SCHEMA, &s, err, sizeof err), 0);
    return s;
}

/* Builds an input row into `b` and returns it (valid until the next start). */
static sl_row_t make_row(sl_row_builder_t *b, const in_row_t *r) {
    sl_row_builder_start(b, 6);
    sl_row_set_i64(b, 0, r->id);
    if (r->qty_null)
        sl_row_set_null(b, 1);
    else
        sl_row_set_i32(b, 1, r->qty);
    if (r->price_null)
        sl_row_set_null(b, 2);
    else
        sl_row_set_f64(b, 2, r->price);
    if (r->x_null)
        sl_row_set_null(b, 3);
    else
        sl_row_set_ts(b, 3, r->x);
    if (r->y_null)
        sl_row_set_null(b, 4);
    else
        sl_row_set_i64(b, 4, r->y);
    sl_row_set_cstr(b, 5, "n");
    sl_row_t row;
    assert_int_equal(sl_row_builder_finish(b, &row), 0);
    return row;
}

static void add_rows(const sl_agg_list_t *l, void *acc, const in_row_t *rows, size_t n) {
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    for (size_t i = 0; i < n; i++) {
        sl_row_t r = make_row(&b, &rows[i]);
        sl_agg_add(l, acc, &r);
    }
    sl_row_builder_destroy(&b);
}

/* Writes the results at fields 1.. of a row of 1 + l->n fields (field 0 is a marker). */
static sl_row_t results(const sl_agg_list_t *l, const void *acc, sl_row_builder_t *b) {
    sl_row_builder_start(b, 1 + l->n);
    sl_row_set_i64(b, 0, 777);
    sl_agg_results(l, acc, b, 1);
    sl_row_t row;
    assert_int_equal(sl_row_builder_finish(b, &row), 0);
    assert_int_equal(sl_row_i64(&row, 0), 777);
    return row;
}

static void test_compile_names_and_types(void **state) {
    sl_schema_t *s = schema();
    sl_agg_list_t l;
    char err[256] = "";
    assert_int_equal(sl_agg_compile(&l, SPEC, s, NULL, NULL, err, sizeof err), 0);
    assert_int_equal(l.n, 5);
    static const char *names[] = {"count", "sum_price", "min_qty", "max_x", "avg_y"};
    static const sl_type_t out[] = {SL_TYPE_INT64, SL_TYPE_DOUBLE, SL_TYPE_INT32, SL_TYPE_TIMESTAMP, SL_TYPE_DOUBLE};
    static const sl_agg_kind_t kinds[] = {SL_AGG_COUNT_ALL, SL_AGG_SUM, SL_AGG_MIN, SL_AGG_MAX, SL_AGG_AVG};
    for (uint32_t i = 0; i < 5; i++) {
        assert_string_equal(l.aggs[i].name, names[i]);
        assert_int_equal(l.aggs[i].out_type, out[i]);
        assert_int_equal(l.aggs[i].kind, kinds[i]);
        assert_null(l.aggs[i].user);
    }
    assert_int_equal(l.aggs[1].field, 2);
    assert_int_equal(l.aggs[2].field, 1);
    assert_int_equal(l.aggs[3].field, 3);
    assert_int_equal(l.aggs[4].field, 4);
    /* accumulators back to back, no overlap */
    for (uint32_t i = 1; i < 5; i++)
        assert_int_equal(l.aggs[i].offset, l.aggs[i - 1].offset + l.aggs[i - 1].size);
    assert_int_equal(l.aggs[0].offset, 0);
    assert_int_equal(l.acc_size, l.aggs[4].offset + l.aggs[4].size);
    assert_true(sl_agg_mergeable(&l));

    /* sum of an int is an int64; count(field) is named after the field; spaces are ignored */
    assert_int_equal(sl_agg_compile(&l, " sum( y ) ,count(qty),sum(qty),avg(price),min(price)", s, NULL, NULL,
                                    err, sizeof err),
                     0);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.aggs[0].name, "sum_y");
    assert_int_equal(l.aggs[0].out_type, SL_TYPE_INT64);
    assert_string_equal(l.aggs[1].name, "count_qty");
    assert_int_equal(l.aggs[1].kind, SL_AGG_COUNT);
    assert_int_equal(l.aggs[1].out_type, SL_TYPE_INT64);
    assert_string_equal(l.aggs[2].name, "sum_qty");
    assert_int_equal(l.aggs[2].out_type, SL_TYPE_INT64);
    assert_string_equal(l.aggs[3].name, "avg_price");
    assert_int_equal(l.aggs[3].out_type, SL_TYPE_DOUBLE);
    assert_string_equal(l.aggs[4].name, "min_price");
    assert_int_equal(l.aggs[4].out_type, SL_TYPE_DOUBLE);
    sl_schema_destroy(s);
}

static void test_compile_errors(void **state) {
    sl_schema_t *s = schema();
    sl_agg_list_t l;
    char err[256];

    err[0] = '\0';
    assert_int_equal(sl_agg_compile(&l, "count(), median(price)", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "unknown aggregate 'median'"));

    err[0] = '\0';
    assert_int_equal(sl_agg_compile(&l, "sum(cost)", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "sum(cost)"));
    assert_non_null(strstr(err, "no such field"));

    err[0] = '\0';
    assert_int_equal(sl_agg_compile(&l, "max(6)", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "max(6)"));
    assert_int_equal(sl_agg_compile(&l, "max(-1)", s, NULL, NULL, err, sizeof err), SL_EJOB);

    err[0] = '\0';
    assert_int_equal(sl_agg_compile(&l, "sum(name)", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_string_equal(err, "sum(name): field is string, not a number");
    err[0] = '\0';
    assert_int_equal(sl_agg_compile(&l, "min(name)", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_string_equal(err, "min(name): field is string, not a number");
    err[0] = '\0';
    assert_int_equal(sl_agg_compile(&l, "avg(5)", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_string_equal(err, "avg(5): field is string, not a number");
    /* count of a string field is fine */
    assert_int_equal(sl_agg_compile(&l, "count(name)", s, NULL, NULL, err, sizeof err), 0);
    assert_string_equal(l.aggs[0].name, "count_name");

    err[0] = '\0';
    assert_int_equal(sl_agg_compile(&l, "sum", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "expected name(argument)"));
    assert_int_equal(sl_agg_compile(&l, "sum(price) x", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_int_equal(sl_agg_compile(&l, "", s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_string_equal(err, "no aggregates given");
    assert_int_equal(sl_agg_compile(&l, "sum()", s, NULL, NULL, err, sizeof err), SL_EJOB);

    /* more than SL_AGG_LIMIT aggregates */
    char spec[SL_AGG_LIMIT * 10 + 16] = "";
    for (int i = 0; i <= SL_AGG_LIMIT; i++)
        strcat(spec, "count(),");
    assert_int_equal(sl_agg_compile(&l, spec, s, NULL, NULL, err, sizeof err), SL_EJOB);
    assert_non_null(strstr(err, "more than 32 aggregates"));
    sl_schema_destroy(s);
}

static const in_row_t ROWS[] = {
    {.id = 1, .qty = 5, .price = 1.5, .x = 100, .y = 10},
    {.id = 2, .qty = -3, .price_null = 1, .x = 300, .y_null = 1},
    {.id = 3, .qty_null = 1, .price = 2.25, .x_null = 1, .y = 20},
    {.id = 4, .qty = 7, .price = -0.75, .x = 200, .y = 3},
    {.id = 5, .qty_null = 1, .price_null = 1, .x_null = 1, .y_null = 1},
};

static void test_add_and_results(void **state) {
    sl_schema_t *s = schema();
    sl_agg_list_t l;
    char err[256];
    assert_int_equal(sl_agg_compile(&l, SPEC ", count(y), sum(qty), min(price), max(qty)", s, NULL, NULL, err,
                                    sizeof err),
                     0);
    assert_int_equal(l.n, 9);
    void *acc = malloc(l.acc_size);
    assert_non_null(acc);
    sl_agg_init(&l, acc);
    add_rows(&l, acc, ROWS, 5);

    sl_row_builder_t b;
    sl_row_builder_init(&b);
    sl_row_t r = results(&l, acc, &b);
    assert_int_equal(sl_row_nfields(&r), 10);
    for (uint32_t i = 1; i < 10; i++)
        assert_false(sl_row_is_null(&r, i));
    assert_int_equal(sl_row_i64(&r, 1), 5);             /* count() */
    assert_true(sl_row_f64(&r, 2) == 1.5 + 2.25 - 0.75); /* sum(price) = 3.0 */
    assert_int_equal(sl_row_i32(&r, 3), -3);            /* min(qty) */
    assert_int_equal(sl_row_ts(&r, 4), 300);            /* max(x) */
    assert_true(sl_row_f64(&r, 5) == 11.0);             /* avg(y) = 33 / 3 */
    assert_int_equal(sl_row_i64(&r, 6), 3);             /* count(y) */
    assert_int_equal(sl_row_i64(&r, 7), 9);             /* sum(qty) */
    assert_true(sl_row_f64(&r, 8) == -0.75);            /* min(price) */
    assert_int_equal(sl_row_i32(&r, 9), 7);             /* max(qty) */
    sl_row_builder_destroy(&b);
    free(acc);
    sl_schema_destroy(s);
}

static void test_only_nulls(void **state) {
    sl_schema_t *s = schema();
    sl_agg_list_t l;
    char err[256];
    assert_int_equal(sl_agg_compile(&l, SPEC ", count(y), sum(qty)", s, NULL, NULL, err, sizeof err), 0);
    void *acc = malloc(l.acc_size);
    assert_non_null(acc);
    sl_row_builder_t b;
    sl_row_builder_init(&b);

    /* no rows at all: counts are 0, the rest NULL */
    sl_agg_init(&l, acc);
    sl_row_t r = results(&l, acc, &b);
    assert_false(sl_row_is_null(&r, 1));
    assert_int_equal(sl_row_i64(&r, 1), 0);
    for (uint32_t i = 2; i <= 5; i++)
        assert_true(sl_row_is_null(&r, i));
    assert_false(sl_row_is_null(&r, 6));
    assert_int_equal(sl_row_i64(&r, 6), 0);
    assert_true(sl_row_is_null(&r, 7));

    /* two rows whose inputs are all NULL */
    in_row_t nulls = {.id = 9, .qty_null = 1, .price_null = 1, .x_null = 1, .y_null = 1};
    in_row_t two[] = {nulls, nulls};
    add_rows(&l, acc, two, 2);
    r = results(&l, acc, &b);
    assert_int_equal(sl_row_i64(&r, 1), 2); /* count() counts rows */
    for (uint32_t i = 2; i <= 5; i++)
        assert_true(sl_row_is_null(&r, i));
    assert_int_equal(sl_row_i64(&r, 6), 0); /* count(y) counts non-null */
    assert_true(sl_row_is_null(&r, 7));

    /* init resets an accumulator that had seen rows */
    add_rows(&l, acc, ROWS, 1);
    sl_agg_init(&l, acc);
    r = results(&l, acc, &b);
    assert_int_equal(sl_row_i64(&r, 1), 0);
    assert_true(sl_row_is_null(&r, 2));
    sl_row_builder_destroy(&b);
    free(acc);
    sl_schema_destroy(s);
}

static void test_min_max_first_value_negative(void **state) {
    /* the first value seeds min/max even when it is beyond the zeroed accumulator */
    sl_schema_t *s = schema();
    sl_agg_list_t l;
    char err[256];
    assert_int_equal(sl_agg_compile(&l, "min(y), max(y), min(price), max(price)", s, NULL, NULL, err, sizeof err),
                     0);
    void *acc = malloc(l.acc_size);
    assert_non_null(acc);
    sl_agg_init(&l, acc);
    in_row_t rows[] = {{.qty_null = 1, .price = 5.5, .x_null = 1, .y = 8},
                       {.qty_null = 1, .price = 9.0, .x_null = 1, .y = 12}};
    add_rows(&l, acc, rows, 2);
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    sl_row_t r = results(&l, acc, &b);
    assert_int_equal(sl_row_i64(&r, 1), 8);
    assert_int_equal(sl_row_i64(&r, 2), 12);
    assert_true(sl_row_f64(&r, 3) == 5.5);
    assert_true(sl_row_f64(&r, 4) == 9.0);

    sl_agg_init(&l, acc);
    rows[0].y = -8, rows[1].y = -12, rows[0].price = -5.5, rows[1].price = -9.0;
    add_rows(&l, acc, rows, 2);
    r = results(&l, acc, &b);
    assert_int_equal(sl_row_i64(&r, 1), -12);
    assert_int_equal(sl_row_i64(&r, 2), -8);
    assert_true(sl_row_f64(&r, 3) == -9.0);
    assert_true(sl_row_f64(&r, 4) == -5.5);
    sl_row_builder_destroy(&b);
    free(acc);
    sl_schema_destroy(s);
}

static void assert_rows_equal(const sl_row_t *a, const sl_row_t *b) {
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->data, b->data, a->len);
}

static void check_merge(const sl_agg_list_t *l, size_t split) {
    void *all = malloc(l->acc_size), *left = malloc(l->acc_size), *right = malloc(l->acc_size);
    assert_non_null(all);
    assert_non_null(left);
    assert_non_null(right);
    sl_agg_init(l, all);
    sl_agg_init(l, left);
    sl_agg_init(l, right);
    add_rows(l, all, ROWS, 5);
    add_rows(l, left, ROWS, split);
    add_rows(l, right, ROWS + split, 5 - split);
    sl_agg_merge(l, left, right);

    sl_row_builder_t b1, b2;
    sl_row_builder_init(&b1);
    sl_row_builder_init(&b2);
    sl_row_t r1 = results(l, all, &b1), r2 = results(l, left, &b2);
    assert_rows_equal(&r1, &r2);
    /* the merged-into accumulator is byte-identical too */
    assert_memory_equal(all, left, l->acc_size);
    sl_row_builder_destroy(&b1);
    sl_row_builder_destroy(&b2);
    free(all);
    free(left);
    free(right);
}

static void test_merge_equals_add_all(void **state) {
    sl_schema_t *s = schema();
    sl_agg_list_t l;
    char err[256];
    assert_int_equal(sl_agg_compile(&l,
                                    SPEC ", count(y), sum(qty), sum(y), min(price), max(price), min(x), max(qty),"
                                         " avg(price), avg(qty)",
                                    s, NULL, NULL, err, sizeof err),
                     0);
    assert_int_equal(l.n, 14);
    for (size_t split = 0; split <= 5; split++)
        check_merge(&l, split);

    /* merge into an empty accumulator and from an empty one */
    void *a = malloc(l.acc_size), *e = malloc(l.acc_size), *ref = malloc(l.acc_size);
    assert_non_null(a);
    assert_non_null(e);
    assert_non_null(ref);
    sl_agg_init(&l, a);
    sl_agg_init(&l, e);
    sl_agg_init(&l, ref);
    add_rows(&l, ref, ROWS + 1, 3);
    add_rows(&l, a, ROWS + 1, 3);
    sl_agg_merge(&l, a, e);
    assert_memory_equal(a, ref, l.acc_size);
    sl_agg_merge(&l, e, ref);
    assert_memory_equal(e, ref, l.acc_size);
    free(a);
    free(e);
    free(ref);
    sl_schema_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_names_and_types),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_add_and_results),
        cmocka_unit_test(test_only_nulls),
        cmocka_unit_test(test_min_max_first_value_negative),
        cmocka_unit_test(test_merge_equals_add_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
