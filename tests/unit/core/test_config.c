/* Configuration (src/core/config.h): defaults, YAML files, -D overrides, typed reads, and the
 * errors for unknown keys, bad values and malformed YAML (naming the key and file:line). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

/* Writes `text` to a fresh temp file; the path is stored in `path` (>= 64 bytes). */
static void write_yaml(char *path, const char *text) {
    strcpy(path, "/tmp/sl_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void test_defaults(void **state) {
    sl_config_t *c;
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_int(c, "parallelism.default"), 1);
    assert_int_equal(sl_config_int(c, "pipeline.max-parallelism"), 128);
    assert_int_equal(sl_config_int(c, "taskmanager.numberOfTaskSlots"), 2);
    assert_int_equal(sl_config_duration_ms(c, "execution.buffer-timeout"), 100);
    assert_int_equal(sl_config_duration_ms(c, "pipeline.auto-watermark-interval"), 200);
    assert_int_equal(sl_config_duration_ms(c, "execution.checkpointing.interval"), 0);
    assert_int_equal(sl_config_bytes(c, "taskmanager.memory.segment-size"), 32 * 1024);
    assert_int_equal(sl_config_bytes(c, "taskmanager.memory.network.size"), 64LL * 1024 * 1024);
    assert_false(sl_config_bool(c, "csv.ignore-parse-errors"));
    assert_string_equal(sl_config_str(c, "state.backend.type"), "hashmap");
    assert_string_equal(sl_config_str(c, "execution.runtime-mode"), "streaming");
    assert_string_equal(sl_config_str(c, "state.checkpoints.dir"), "");
    assert_false(sl_config_is_set(c, "parallelism.default"));
    assert_false(sl_config_is_set(c, "no.such.key"));
    sl_config_destroy(c);
}

static void test_set_typed(void **state) {
    sl_config_t *c;
    char err[256];
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_set(c, "parallelism.default", "4", err, sizeof err), 0);
    assert_int_equal(sl_config_int(c, "parallelism.default"), 4);
    assert_true(sl_config_is_set(c, "parallelism.default"));
    assert_int_equal(sl_config_set(c, "execution.buffer-timeout", "2 s", err, sizeof err), 0);
    assert_int_equal(sl_config_duration_ms(c, "execution.buffer-timeout"), 2000);
    assert_int_equal(sl_config_set(c, "execution.buffer-timeout", "0", err, sizeof err), 0);
    assert_int_equal(sl_config_duration_ms(c, "execution.buffer-timeout"), 0);
    assert_int_equal(sl_config_set(c, "taskmanager.memory.segment-size", "64kb", err, sizeof err), 0);
    assert_int_equal(sl_config_bytes(c, "taskmanager.memory.segment-size"), 65536);
    assert_int_equal(sl_config_set(c, "taskmanager.memory.network.size", "1 GB", err, sizeof err), 0);
    assert_int_equal(sl_config_bytes(c, "taskmanager.memory.network.size"), 1LL << 30);
    assert_int_equal(sl_config_set(c, "csv.ignore-parse-errors", "true", err, sizeof err), 0);
    assert_true(sl_config_bool(c, "csv.ignore-parse-errors"));
    assert_int_equal(sl_config_set(c, "execution.runtime-mode", "batch", err, sizeof err), 0);
    assert_string_equal(sl_config_str(c, "execution.runtime-mode"), "batch");
    assert_int_equal(sl_config_set(c, "state.checkpoints.dir", "/tmp/chk", err, sizeof err), 0);
    assert_string_equal(sl_config_str(c, "state.checkpoints.dir"), "/tmp/chk");

    /* A copy is independent of the original. */
    sl_config_t *d;
    assert_int_equal(sl_config_copy(c, &d), 0);
    assert_int_equal(sl_config_set(c, "parallelism.default", "9", err, sizeof err), 0);
    assert_int_equal(sl_config_int(d, "parallelism.default"), 4);
    assert_string_equal(sl_config_str(d, "state.checkpoints.dir"), "/tmp/chk");
    assert_true(sl_config_is_set(d, "parallelism.default"));
    assert_false(sl_config_is_set(d, "rest.port"));
    sl_config_destroy(d);
    sl_config_destroy(c);
}

static void test_parsers(void **state) {
    int64_t v;
    assert_int_equal(sl_parse_duration_ms("100 ms", &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(sl_parse_duration_ms("1.5s", &v), 0);
    assert_int_equal(v, 1500);
    assert_int_equal(sl_parse_duration_ms("2 min", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_equal(sl_parse_duration_ms("1h", &v), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(sl_parse_duration_ms("250", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(sl_parse_duration_ms("abc", &v), SL_EINVAL);
    assert_int_equal(sl_parse_duration_ms("10 parsecs", &v), SL_EINVAL);
    assert_int_equal(sl_parse_duration_ms("-5ms", &v), SL_EINVAL);
    assert_int_equal(sl_parse_duration_ms("", &v), SL_EINVAL);

    assert_int_equal(sl_parse_memory("32kb", &v), 0);
    assert_int_equal(v, 32768);
    assert_int_equal(sl_parse_memory("2 MiB", &v), 0);
    assert_int_equal(v, 2 * 1048576);
    assert_int_equal(sl_parse_memory("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(sl_parse_memory("1g", &v), 0);
    assert_int_equal(v, 1LL << 30);
    assert_int_equal(sl_parse_memory("12 furlongs", &v), SL_EINVAL);
    assert_int_equal(sl_parse_memory("kb", &v), SL_EINVAL);
}

static void test_unknown_key(void **state) {
    sl_config_t *c;
    char err[256] = "";
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_set(c, "parallelism.defualt", "2", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "parallelism.defualt"));
    err[0] = '\0';
    assert_int_equal(sl_config_set_arg(c, "no.such.option=5", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "no.such.option"));
    /* The failed sets changed nothing. */
    assert_int_equal(sl_config_int(c, "parallelism.default"), 1);
    sl_config_destroy(c);
}

static void test_bad_values(void **state) {
    sl_config_t *c;
    char err[256] = "";
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_set(c, "parallelism.default", "abc", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "parallelism.default"));
    assert_non_null(strstr(err, "abc"));
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "parallelism.default", "0", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "parallelism.default"));
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "parallelism.default", "3x", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "parallelism.default"));
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "parallelism.default", "", err, sizeof err), SL_ECONFIG);
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "rest.port", "65536", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "rest.port"));
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "csv.ignore-parse-errors", "yes please", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "csv.ignore-parse-errors"));
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "state.backend.type", "hash", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "state.backend.type"));
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "log.level", "warning", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "log.level"));
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "execution.buffer-timeout", "soon", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "execution.buffer-timeout"));
    err[0] = '\0';
    assert_int_equal(sl_config_set(c, "taskmanager.memory.segment-size", "1kb", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "taskmanager.memory.segment-size"));
    /* The failed sets left the values as they were. */
    assert_int_equal(sl_config_int(c, "parallelism.default"), 1);
    assert_int_equal(sl_config_int(c, "rest.port"), 8081);
    assert_false(sl_config_is_set(c, "parallelism.default"));
    assert_string_equal(sl_config_str(c, "state.backend.type"), "hashmap");
    assert_int_equal(sl_config_bytes(c, "taskmanager.memory.segment-size"), 32768);

    /* -D syntax errors. */
    err[0] = '\0';
    assert_int_equal(sl_config_set_arg(c, "parallelism.default", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "parallelism.default"));
    assert_int_equal(sl_config_set_arg(c, "=5", err, sizeof err), SL_ECONFIG);
    sl_config_destroy(c);
}

static void test_yaml_and_override(void **state) {
    char path[64];
    write_yaml(path, "# a comment\n"
                     "parallelism.default: 3\n"
                     "execution:\n"
                     "  buffer-timeout: 5 ms\n"
                     "  runtime-mode: batch\n"
                     "taskmanager.memory.segment-size: 64kb\n"
                     "csv.ignore-parse-errors: true\n");
    sl_config_t *c;
    char err[256] = "";
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_load_yaml(c, path, err, sizeof err), 0);
    assert_int_equal(sl_config_int(c, "parallelism.default"), 3);
    assert_int_equal(sl_config_duration_ms(c, "execution.buffer-timeout"), 5);
    assert_string_equal(sl_config_str(c, "execution.runtime-mode"), "batch");
    assert_int_equal(sl_config_bytes(c, "taskmanager.memory.segment-size"), 65536);
    assert_true(sl_config_bool(c, "csv.ignore-parse-errors"));
    assert_true(sl_config_is_set(c, "execution.buffer-timeout"));
    assert_int_equal(sl_config_int(c, "pipeline.max-parallelism"), 128); /* untouched default */

    /* A -D override given after the file wins. */
    assert_int_equal(sl_config_set_arg(c, "parallelism.default=7", err, sizeof err), 0);
    assert_int_equal(sl_config_int(c, "parallelism.default"), 7);
    assert_int_equal(sl_config_set_arg(c, "execution.buffer-timeout=1 s", err, sizeof err), 0);
    assert_int_equal(sl_config_duration_ms(c, "execution.buffer-timeout"), 1000);
    sl_config_destroy(c);
    unlink(path);
}

struct seen {
    int count;
    int par_found;
    bool par_default;
    char par_value[32];
};

static int collect(void *arg, const char *key, const char *value, bool is_default) {
    struct seen *s = arg;
    s->count++;
    if (strcmp(key, "parallelism.default") == 0) {
        s->par_found++;
        s->par_default = is_default;
        snprintf(s->par_value, sizeof s->par_value, "%s", value);
    }
    return 0;
}

static int stop_at_second(void *arg, const char *key, const char *value, bool is_default) {
    int *n = arg;
    return ++*n == 2 ? 42 : 0;
}

static void test_for_each(void **state) {
    sl_config_t *c;
    char err[256];
    int n_options = 0;
    while (sl_options[n_options].key)
        n_options++;
    assert_true(n_options > 10);
    assert_int_equal(sl_config_create(&c), 0);
    struct seen s = {0};
    assert_int_equal(sl_config_for_each(c, collect, &s), 0);
    assert_int_equal(s.count, n_options);
    assert_int_equal(s.par_found, 1);
    assert_true(s.par_default);
    assert_string_equal(s.par_value, "1");
    assert_int_equal(sl_config_set(c, "parallelism.default", "12", err, sizeof err), 0);
    memset(&s, 0, sizeof s);
    assert_int_equal(sl_config_for_each(c, collect, &s), 0);
    assert_false(s.par_default);
    assert_string_equal(s.par_value, "12");
    int k = 0;
    assert_int_equal(sl_config_for_each(c, stop_at_second, &k), 42);
    assert_int_equal(k, 2);
    sl_config_destroy(c);
}

static void test_yaml_unknown_key(void **state) {
    char path[64];
    write_yaml(path, "parallelism.default: 2\n"
                     "\n"
                     "execution:\n"
                     "  bufer-timeout: 5 ms\n");
    sl_config_t *c;
    char err[512] = "";
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_load_yaml(c, path, err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "execution.bufer-timeout"));
    char where[128];
    snprintf(where, sizeof where, "%s:4", path);
    assert_non_null(strstr(err, where));
    sl_config_destroy(c);
    unlink(path);
}

static void test_yaml_bad_value(void **state) {
    char path[64];
    write_yaml(path, "rest.port: 8080\n"
                     "parallelism.default: abc\n");
    sl_config_t *c;
    char err[512] = "";
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_load_yaml(c, path, err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "parallelism.default"));
    char where[128];
    snprintf(where, sizeof where, "%s:2", path);
    assert_non_null(strstr(err, where));
    assert_int_equal(sl_config_int(c, "parallelism.default"), 1);
    sl_config_destroy(c);
    unlink(path);

    write_yaml(path, "parallelism:\n"
                     "  default: 0\n");
    assert_int_equal(sl_config_create(&c), 0);
    err[0] = '\0';
    assert_int_equal(sl_config_load_yaml(c, path, err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "parallelism.default"));
    snprintf(where, sizeof where, "%s:2", path);
    assert_non_null(strstr(err, where));
    sl_config_destroy(c);
    unlink(path);

    /* A list is not a value. */
    write_yaml(path, "rest.port:\n  - 1\n  - 2\n");
    assert_int_equal(sl_config_create(&c), 0);
    err[0] = '\0';
    assert_int_equal(sl_config_load_yaml(c, path, err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "rest.port"));
    sl_config_destroy(c);
    unlink(path);
}

static void test_yaml_malformed(void **state) {
    char path[64];
    write_yaml(path, "parallelism.default: 2\n"
                     "rest.port: 8080\n"
                     "execution: [unclosed\n"
                     "log.level: info\n");
    sl_config_t *c;
    char err[512] = "";
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_load_yaml(c, path, err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, path));
    /* The problem is reported at a line of the file (1-based), after the first two good lines. */
    const char *colon = strstr(err, path) + strlen(path);
    assert_int_equal(*colon, ':');
    long line = strtol(colon + 1, NULL, 10);
    assert_true(line >= 3 && line <= 5);
    sl_config_destroy(c);
    unlink(path);

    /* A top-level scalar is not a mapping. */
    write_yaml(path, "just a string\n");
    assert_int_equal(sl_config_create(&c), 0);
    err[0] = '\0';
    assert_int_equal(sl_config_load_yaml(c, path, err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, path));
    sl_config_destroy(c);
    unlink(path);

    /* An empty file is an empty configuration. */
    write_yaml(path, "");
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_load_yaml(c, path, err, sizeof err), 0);
    assert_int_equal(sl_config_int(c, "parallelism.default"), 1);
    sl_config_destroy(c);
    unlink(path);
}

static void test_yaml_missing_file(void **state) {
    sl_config_t *c;
    char err[512] = "";
    assert_int_equal(sl_config_create(&c), 0);
    assert_int_equal(sl_config_load_yaml(c, "/tmp/sl_no_such_dir_xyz/conf.yaml", err, sizeof err), SL_ENOENT);
    assert_non_null(strstr(err, "/tmp/sl_no_such_dir_xyz/conf.yaml"));
    sl_config_destroy(c);
}

/* A key listed twice would be looked up by its first entry only: the second's default and
 * range would be dead text (rest.port once was). Every key also documents itself. */
static void test_keys_unique_and_described(void **state) {
    for (int i = 0; sl_options[i].key; i++) {
        assert_non_null(sl_options[i].description);
        assert_true(strlen(sl_options[i].description) > 0);
        for (int j = i + 1; sl_options[j].key; j++)
            if (strcmp(sl_options[i].key, sl_options[j].key) == 0)
                fail_msg("configuration key '%s' is listed twice", sl_options[i].key);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_unique_and_described),
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_set_typed),
        cmocka_unit_test(test_parsers),          cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_values),       cmocka_unit_test(test_yaml_and_override),
        cmocka_unit_test(test_for_each),         cmocka_unit_test(test_yaml_unknown_key),
        cmocka_unit_test(test_yaml_bad_value),   cmocka_unit_test(test_yaml_malformed),
        cmocka_unit_test(test_yaml_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
