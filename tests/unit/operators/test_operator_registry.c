/* Operator registry (sl_operator_lookup): every implemented kind resolves to its vtable in a
 * binary linked like the unit tests (static libs, --start-group), and unknown kinds give NULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "operators/operator.h"

/* Kinds of operator_registry.c that have an implementation (const sl_operator_vtable_t sl_op_<kind>)
 * somewhere in src/, with their input counts. */
static const struct {
    const char *kind;
    uint32_t ninputs;
} kinds[] = {
    {"map", 1},           {"filter", 1},           {"flat_map", 1},      {"project", 1},
    {"watermarks", 1},    {"aggregate", 1},        {"reduce", 1},        {"process", 1},
    {"co_process", 2},    {"window_aggregate", 1}, {"window_join", 2},   {"interval_join", 2},
    {"source_csv", 0},    {"source_lines", 0},     {"source_socket", 0}, {"source_generator", 0},
    {"source_nexmark", 0}, {"sink_print", 1},      {"sink_csv", 1},      {"sink_discard", 1},
    {"sink_fn", 1},
};

static void test_known_kinds(void **state) {
    char missing[1024] = "";
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const sl_operator_vtable_t *vt = sl_operator_lookup(kinds[i].kind);
        if (vt == NULL) {
            strcat(missing, " ");
            strcat(missing, kinds[i].kind);
            continue;
        }
        assert_string_equal(vt->kind, kinds[i].kind);
        assert_int_equal(vt->ninputs, kinds[i].ninputs);
        assert_true(vt->size > 0);
        if (kinds[i].ninputs == 0)
            assert_non_null(vt->source_poll);
        else
            assert_non_null(vt->process);
    }
    if (missing[0])
        fail_msg("sl_operator_lookup returned NULL for:%s", missing);
}

static void test_keyed_kinds(void **state) {
    static const char *keyed[] = {"aggregate", "reduce", "process", "co_process", "window_aggregate",
                                  "window_join", "interval_join"};
    for (size_t i = 0; i < sizeof keyed / sizeof keyed[0]; i++) {
        const sl_operator_vtable_t *vt = sl_operator_lookup(keyed[i]);
        assert_non_null(vt);
        assert_true(vt->keyed);
    }
    static const char *unkeyed[] = {"map", "filter", "source_csv", "sink_print"};
    for (size_t i = 0; i < sizeof unkeyed / sizeof unkeyed[0]; i++) {
        const sl_operator_vtable_t *vt = sl_operator_lookup(unkeyed[i]);
        assert_non_null(vt);
        assert_false(vt->keyed);
    }
}

static void test_unknown_kinds(void **state) {
    assert_null(sl_operator_lookup(""));
    assert_null(sl_operator_lookup("no_such_operator"));
    assert_null(sl_operator_lookup("Map"));
    assert_null(sl_operator_lookup("map "));
    assert_null(sl_operator_lookup("window"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_kinds),
        cmocka_unit_test(test_keyed_kinds),
        cmocka_unit_test(test_unknown_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
