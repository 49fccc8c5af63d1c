/* Field key selectors: sl_key_extract byte layout, sl_key_decode round trip (int64, int32,
 * string, double, nullable NULL / non-NULL), key equality, truncated or padded keys -> SL_EPARSE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>
#include <sluice/row.h>

#include <string.h>

#include "operators/key_selector.h"

#define SCHEMA "id:int64,name:string,score:double,opt:int64?,ostr:string?,flag:bool,n32:int32"
#define NF 7

typedef struct {
    int64_t id;
    const char *name;
    double score;
    int opt_null;
    int64_t opt;
    const char *ostr; /* NULL: NULL */
    bool flag;
    int32_t n32;
} in_t;

typedef struct {
    sl_schema_t *s;
    sl_key_selector_t ks;
    sl_row_builder_t b;
    sl_key_buf_t key;
} fx_t;

static void fx_open(fx_t *f, const uint32_t *fields, uint32_t n) {
    char err[256];
    assert_int_equal(sl_schema_parse(SCHEMA, &f->s, err, sizeof err), 0);
    assert_int_equal(sl_key_selector_init_fields(&f->ks, f->s, fields, n, err, sizeof err), 0);
    sl_row_builder_init(&f->b);
    memset(&f->key, 0, sizeof f->key);
}

static void fx_close(fx_t *f) {
    sl_key_buf_destroy(&f->key);
    sl_row_builder_destroy(&f->b);
    sl_schema_destroy(f->s);
}

static sl_row_t build(sl_row_builder_t *b, const in_t *r) {
    sl_row_builder_start(b, NF);
    sl_row_set_i64(b, 0, r->id);
    sl_row_set_cstr(b, 1, r->name);
    sl_row_set_f64(b, 2, r->score);
    if (r->opt_null)
        sl_row_set_null(b, 3);
    else
        sl_row_set_i64(b, 3, r->opt);
    if (r->ostr)
        sl_row_set_cstr(b, 4, r->ostr);
    else
        sl_row_set_null(b, 4);
    sl_row_set_bool(b, 5, r->flag);
    sl_row_set_i32(b, 6, r->n32);
    sl_row_t row;
    assert_int_equal(sl_row_builder_finish(b, &row), 0);
    return row;
}

/* Extracts the key of `r` into f->key. */
static void extract(fx_t *f, const in_t *r) {
    sl_row_t row = build(&f->b, r);
    assert_int_equal(sl_key_extract(&f->ks, &row, &f->key), 0);
}

static void assert_str(const sl_row_t *r, uint32_t i, const char *want) {
    uint32_t len;
    const char *p = sl_row_str(r, i, &len);
    assert_false(sl_row_is_null(r, i));
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
}

static void test_layout(void **state) {
    static const uint32_t fields[] = {0, 1, 2, 3, 4};
    fx_t f;
    fx_open(&f, fields, 5);
    in_t r = {.id = 0x0102030405060708LL, .name = "ab", .score = 1.5, .opt_null = 1, .ostr = "z"};
    extract(&f, &r);
    double d = 1.5;
    uint8_t want[29] = {8, 7, 6, 5, 4, 3, 2, 1, 2, 0, 0, 0, 'a', 'b'};
    memcpy(want + 14, &d, 8);
    want[22] = 0;                                     /* opt: NULL, nothing follows */
    memcpy(want + 23, "\x01\x01\x00\x00\x00z", 6); /* ostr: present, len 1, "z" */
    assert_int_equal(f.key.len, sizeof want);
    assert_memory_equal(f.key.data, want, sizeof want);

    /* a present nullable int whose first byte is 0xff */
    r.opt_null = 0;
    r.opt = 255;
    r.ostr = NULL;
    extract(&f, &r);
    assert_int_equal(f.key.len, 22 + 9 + 1);
    static const uint8_t opt255[] = {1, 0xff, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(f.key.data + 22, opt255, sizeof opt255);
    fx_close(&f);
}

static void check_round_trip(fx_t *f, const in_t *r) {
    extract(f, r);
    /* decode into fields 2.. of a wider row, between two marker fields */
    uint32_t n = f->ks.nfields;
    sl_row_builder_t out;
    sl_row_builder_init(&out);
    sl_row_builder_start(&out, n + 3);
    sl_row_set_i64(&out, 0, -11);
    sl_row_set_i64(&out, 1, -22);
    sl_row_set_i64(&out, n + 2, -33);
    assert_int_equal(sl_key_decode(&f->ks, f->key.data, f->key.len, &out, 2), 0);
    sl_row_t row;
    assert_int_equal(sl_row_builder_finish(&out, &row), 0);
    assert_int_equal(sl_row_i64(&row, 0), -11);
    assert_int_equal(sl_row_i64(&row, 1), -22);
    assert_int_equal(sl_row_i64(&row, n + 2), -33);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t o = 2 + k;
        switch (f->ks.fields[k]) {
        case 0:
            assert_false(sl_row_is_null(&row, o));
            assert_int_equal(sl_row_i64(&row, o), r->id);
            break;
        case 1:
            assert_str(&row, o, r->name);
            break;
        case 2:
            assert_false(sl_row_is_null(&row, o));
            assert_memory_equal(sl__row_slot(&row, o), &r->score, 8); /* exact bits */
            break;
        case 3:
            assert_int_equal(sl_row_is_null(&row, o), r->opt_null != 0);
            if (!r->opt_null)
                assert_int_equal(sl_row_i64(&row, o), r->opt);
            break;
        case 4:
            assert_int_equal(sl_row_is_null(&row, o), r->ostr == NULL);
            if (r->ostr)
                assert_str(&row, o, r->ostr);
            break;
        case 5:
            assert_int_equal(sl_row_bool(&row, o), r->flag);
            break;
        case 6:
            assert_int_equal(sl_row_i32(&row, o), r->n32);
            assert_int_equal(sl_row_i64(&row, o), (int64_t)r->n32);
            break;
        default:
            fail();
        }
    }
    sl_row_builder_destroy(&out);
}

static void test_round_trip(void **state) {
    static const uint32_t fields[] = {0, 1, 2, 3, 4, 5, 6};
    fx_t f;
    fx_open(&f, fields, 7);
    const in_t rows[] = {
        {.id = 1, .name = "alice", .score = 2.5, .opt = 255, .ostr = "x", .flag = true, .n32 = -5},
        {.id = -1, .name = "", .score = -0.0, .opt = -1, .ostr = "", .flag = false, .n32 = INT32_MIN},
        {.id = INT64_MIN, .name = "with,comma \"q\"", .score = 1e300, .opt_null = 1, .ostr = NULL, .n32 = INT32_MAX},
        {.id = INT64_MAX, .name = "\xff\xfe", .score = -3.75, .opt = (int64_t)0xff000000000000ffULL, .ostr = NULL},
        {.id = 0, .name = "z", .score = 0.1, .opt = 0, .ostr = "0123456789012345678901234567890123456789"
                                                          "0123456789012345678901234567890123456789"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_round_trip(&f, &rows[i]);
    fx_close(&f);

    /* selectors in a different order and with a single field */
    static const uint32_t rev[] = {4, 3, 1};
    fx_open(&f, rev, 3);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_round_trip(&f, &rows[i]);
    fx_close(&f);
    static const uint32_t one[] = {3};
    fx_open(&f, one, 1);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_round_trip(&f, &rows[i]);
    fx_close(&f);
}

static void copy_key(const sl_key_buf_t *k, uint8_t *buf, uint32_t *len) {
    assert_true(k->len <= 256);
    memcpy(buf, k->data, k->len);
    *len = k->len;
}

static void test_equality(void **state) {
    static const uint32_t fields[] = {0, 1, 2, 3, 4};
    fx_t f;
    fx_open(&f, fields, 5);
    const in_t base = {.id = 42, .name = "bob", .score = 9.5, .opt = 0, .ostr = "s", .flag = true, .n32 = 1};
    uint8_t k0[256];
    uint32_t l0;
    extract(&f, &base);
    copy_key(&f.key, k0, &l0);

    /* fields outside the key do not matter */
    in_t same = base;
    same.flag = false;
    same.n32 = 99;
    extract(&f, &same);
    assert_int_equal(f.key.len, l0);
    assert_memory_equal(f.key.data, k0, l0);
    assert_int_equal(sl_key_hash(f.key.data, f.key.len), sl_key_hash(k0, l0));

    /* any key field changing changes the bytes */
    in_t v[8];
    for (int i = 0; i < 8; i++)
        v[i] = base;
    v[0].id = 43;
    v[1].name = "bob ";
    v[2].score = 9.25;
    v[3].opt_null = 1; /* NULL differs from 0 */
    v[4].opt = 1;
    v[5].ostr = NULL; /* NULL differs from a string */
    v[6].ostr = "";
    v[7].name = "bo";
    for (int i = 0; i < 8; i++) {
        extract(&f, &v[i]);
        assert_false(f.key.len == l0 && memcmp(f.key.data, k0, l0) == 0);
    }

    /* strings are length-prefixed: ("ab","c") and ("a","bc") differ */
    static const uint32_t two[] = {1, 4};
    fx_t g;
    fx_open(&g, two, 2);
    in_t a = base, b = base;
    a.name = "ab", a.ostr = "c";
    b.name = "a", b.ostr = "bc";
    extract(&g, &a);
    uint8_t ka[256];
    uint32_t la;
    copy_key(&g.key, ka, &la);
    extract(&g, &b);
    assert_int_equal(g.key.len, la);
    assert_memory_not_equal(g.key.data, ka, la);
    fx_close(&g);

    /* a long key grows the buffer; a short one after it reports its own length */
    in_t big = base;
    char longname[300];
    memset(longname, 'q', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    big.name = longname;
    extract(&f, &big);
    assert_int_equal(f.key.len, l0 - 3 + 299);
    assert_true(f.key.cap >= f.key.len);
    extract(&f, &base);
    assert_int_equal(f.key.len, l0);
    assert_memory_equal(f.key.data, k0, l0);
    fx_close(&f);
}

static void test_decode_errors(void **state) {
    static const uint32_t fields[] = {0, 1, 3, 4};
    fx_t f;
    fx_open(&f, fields, 4);
    const in_t rows[] = {
        {.id = 7, .name = "hello", .opt = -1, .ostr = "w"},
        {.id = 7, .name = "", .opt_null = 1, .ostr = NULL},
    };
    sl_row_builder_t out;
    sl_row_builder_init(&out);
    for (size_t r = 0; r < 2; r++) {
        extract(&f, &rows[r]);
        uint8_t key[256];
        uint32_t len;
        copy_key(&f.key, key, &len);
        for (uint32_t cut = 0; cut < len; cut++) {
            sl_row_builder_start(&out, 4);
            assert_int_equal(sl_key_decode(&f.ks, key, cut, &out, 0), SL_EPARSE);
        }
        key[len] = 0;
        sl_row_builder_start(&out, 4);
        assert_int_equal(sl_key_decode(&f.ks, key, len + 1, &out, 0), SL_EPARSE);
        sl_row_builder_start(&out, 4);
        assert_int_equal(sl_key_decode(&f.ks, key, len, &out, 0), 0);
    }
    /* a string length running past the end */
    uint8_t bad[] = {7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x'};
    sl_row_builder_start(&out, 4);
    assert_int_equal(sl_key_decode(&f.ks, bad, sizeof bad, &out, 0), SL_EPARSE);
    sl_row_builder_destroy(&out);
    fx_close(&f);
}

static void test_init_errors(void **state) {
    sl_schema_t *s;
    char err[256];
    assert_int_equal(sl_schema_parse(SCHEMA, &s, err, sizeof err), 0);
    sl_key_selector_t ks;
    uint32_t fields[SL_KEY_MAX_FIELDS + 1] = {0};
    err[0] = '\0';
    assert_int_equal(sl_key_selector_init_fields(&ks, s, fields, 0, err, sizeof err), SL_EINVAL);
    assert_string_equal(err, "a key needs 1 to 8 fields, got 0");
    assert_int_equal(sl_key_selector_init_fields(&ks, s, fields, SL_KEY_MAX_FIELDS + 1, err, sizeof err),
                     SL_EINVAL);
    assert_string_equal(err, "a key needs 1 to 8 fields, got 9");
    assert_int_equal(sl_key_selector_init_fields(&ks, s, fields, SL_KEY_MAX_FIELDS, err, sizeof err), 0);
    assert_int_equal(ks.nfields, SL_KEY_MAX_FIELDS);
    fields[1] = NF;
    assert_int_equal(sl_key_selector_init_fields(&ks, s, fields, 2, err, sizeof err), SL_EINVAL);
    assert_string_equal(err, "key field index 7 out of range (the input has 7 fields)");
    fields[1] = 4;
    assert_int_equal(sl_key_selector_init_fields(&ks, s, fields, 2, err, sizeof err), 0);
    assert_int_equal(ks.types[1], SL_TYPE_STRING);
    assert_true(ks.nullable[1]);
    assert_false(ks.nullable[0]);
    assert_null(ks.fn);
    sl_schema_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_equality),      cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_init_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
