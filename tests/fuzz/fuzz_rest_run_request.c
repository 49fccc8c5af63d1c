/* Fuzz target: the JSON bodies of REST requests (src/rest/run_request.h): a jar run and a
 * savepoint or stop request. Whatever the bytes: an error with a message, or arguments that
 * are all strings with the library first and options the configuration accepted, or an empty
 * or absolute savepoint directory. */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "rest/run_request.h"

#define CHECK(c)                                                                             \
    do {                                                                                     \
        if (!(c)) {                                                                          \
            fprintf(stderr, "fuzz_rest_run_request: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_config_t *c;
    if (sl_config_create(&c) != 0)
        return 0;
    sl_rest_run_request_t r;
    char err[1024] = "";
    int rc = sl_rest_run_request_parse(data, size, "/lib/job.so", c, &r, err, sizeof err);
    if (rc) {
        CHECK((rc == SL_EINVAL && err[0]) || rc == SL_ENOMEM);
    } else {
        CHECK(r.argc >= 1 && r.argc <= SL_REST_MAX_ARGS);
        CHECK(strcmp(r.argv[0], "/lib/job.so") == 0);
        for (int i = 0; i < r.argc; i++)
            CHECK(r.argv[i] != NULL);
        CHECK(r.argv[r.argc] == NULL);
        CHECK(sl_config_int(c, "parallelism.default") >= 1);
    }
    sl_rest_run_request_free(&r);
    sl_config_destroy(c);
    for (int form = 0; form < 2; form++) {
        char dir[1024];
        bool stop;
        err[0] = '\0';
        rc = sl_rest_savepoint_request_parse(data, size, form, dir, sizeof dir, &stop, err, sizeof err);
        if (rc)
            CHECK(rc == SL_EINVAL && err[0]);
        else
            CHECK((dir[0] == '\0' || dir[0] == '/') && (!form || stop));
    }
    return 0;
}
