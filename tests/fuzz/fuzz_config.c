/* Fuzz target: configuration decoders (src/core/config.h): sl_config_load_yaml on the input written
 * to a temp file, and sl_config_set_arg on the input (and each of its lines) as "-D key=value". */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_config: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                              \
        }                                                                         \
    } while (0)

static char path[256];

static void cleanup(void) {
    if (path[0])
        unlink(path);
}

static const char *temp_path(void) {
    if (path[0] == '\0') {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/sl_fuzz_config_XXXXXX.yaml", dir && *dir ? dir : "/tmp");
        int fd = mkstemps(path, 5);
        if (fd < 0) {
            perror("fuzz_config: mkstemps");
            abort();
        }
        close(fd);
        atexit(cleanup);
    }
    return path;
}

static volatile size_t sink;

static int visit(void *arg, const char *key, const char *value, bool is_default) {
    sink += strlen(key) + strlen(value) + (size_t)is_default;
    return 0;
}

static void check_err(int rc, const char *err, size_t errlen) {
    if (rc != 0)
        CHECK(memchr(err, '\0', errlen) != NULL);
}

/* Reads every option back: typed values of a config must be usable after any load. */
static void read_back(const sl_config_t *c) {
    CHECK(sl_config_for_each(c, visit, NULL) == 0);
    sink += (size_t)sl_config_int(c, "parallelism.default");
    sink += (size_t)sl_config_bytes(c, "taskmanager.memory.segment-size");
    sink += (size_t)sl_config_duration_ms(c, "execution.buffer-timeout");
    sink += strlen(sl_config_str(c, "state.backend.type"));
    sink += (size_t)sl_config_bool(c, "csv.ignore-parse-errors");
    sl_config_t *copy = NULL;
    CHECK(sl_config_copy(c, &copy) == 0);
    sl_config_destroy(copy);
}

static void set_arg(const char *s, size_t n) {
    char *kv = malloc(n + 1);
    CHECK(kv != NULL);
    memcpy(kv, s, n);
    kv[n] = '\0';
    sl_config_t *c;
    CHECK(sl_config_create(&c) == 0);
    char err[512];
    int rc = sl_config_set_arg(c, kv, err, sizeof err);
    CHECK(rc == 0 || rc == SL_ECONFIG || rc == SL_ENOMEM);
    check_err(rc, err, sizeof err);
    read_back(c);
    sl_config_destroy(c);
    free(kv);
}

static void load_yaml(const uint8_t *data, size_t size) {
    const char *p = temp_path();
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);
    sl_config_t *c;
    CHECK(sl_config_create(&c) == 0);
    char err[1024];
    int rc = sl_config_load_yaml(c, p, err, sizeof err);
    CHECK(rc == 0 || rc == SL_ECONFIG || rc == SL_ENOMEM);
    check_err(rc, err, sizeof err);
    read_back(c);
    sl_config_destroy(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536)
        return 0;
    /* 1. YAML file. SL_FUZZ_SKIP_ALIAS=1 skips YAML containing '*' (aliases), to fuzz past the
     * known self-referential-alias stack overflow (corpus/fuzz_config/crash_self_alias). */
    static int skip_alias = -1;
    if (skip_alias < 0) {
        const char *e = getenv("SL_FUZZ_SKIP_ALIAS");
        skip_alias = e != NULL && e[0] == '1';
    }
    if (!skip_alias || memchr(data, '*', size) == NULL)
        load_yaml(data, size);

    /* 2. The whole input, then each line, as a -D argument. */
    set_arg((const char *)data, size);
    size_t start = 0;
    for (size_t i = 0; i < size; i++)
        if (data[i] == '\n') {
            set_arg((const char *)data + start, i - start);
            start = i + 1;
        }
    if (start > 0 && start < size)
        set_arg((const char *)data + start, size - start);
    return 0;
}
