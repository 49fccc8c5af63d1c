/* The body of a jar run request (POST /jars/:id/run), decoded as hostile input: it crosses a
 * process boundary, so it has a fuzz target (tests/fuzz/fuzz_rest_run_request.c). */
#ifndef SL_REST_RUN_REQUEST_H
#define SL_REST_RUN_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_config_s;

#define SL_REST_MAX_ARGS 256

typedef struct sl_rest_run_request_s {
    char *argv[SL_REST_MAX_ARGS + 1]; /* argv[0] = the library, NULL-terminated */
    int argc;
    void *doc;                        /* the parsed document the arguments point into */
    char *split;                      /* programArgs, split in place */
} sl_rest_run_request_t;

/* Parses a JSON object (an empty body is {}):
 *   "programArgsList": ["arg", ...]   the job's arguments (preferred), or
 *   "programArgs": "arg arg ..."      split at blanks (Flink's older form);
 *   "parallelism": N >= 1             parallelism.default;
 *   "savepointPath": "/abs/dir"       execution.savepoint.path;
 *   "configuration": {"key": value}   any option (string, integer or boolean values).
 * Options go into `c`. Errors: SL_EINVAL with err naming the field (or the line and column of
 * bad JSON), SL_ENOMEM. `out` is always initialized: free it with sl_rest_run_request_free. */
int sl_rest_run_request_parse(const uint8_t *body, size_t len, const char *library, struct sl_config_s *c,
                              sl_rest_run_request_t *out, char *err, size_t errlen);
void sl_rest_run_request_free(sl_rest_run_request_t *r);

/* The body of POST /jobs/:id/savepoints ({"target-directory": "/dir", "cancel-job": bool}) or,
 * with stop_form, of POST /jobs/:id/stop ({"targetDirectory": "/dir", "drain": false}). The
 * directory is "" when not given, else absolute; *stop says whether the job ends after it
 * ("cancel-job": true asks for the same: a stop with savepoint). Errors: SL_EINVAL naming the
 * field. */
int sl_rest_savepoint_request_parse(const uint8_t *body, size_t len, bool stop_form, char *dir, size_t dirlen,
                                    bool *stop, char *err, size_t errlen);

#endif
