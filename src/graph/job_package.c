/* The job as a JobManager receives it (see job_package.h). */
#include "graph/job_package.h"

#include <sluice/error.h>

#include <stdio.h>
#include <string.h>

#include "api/job_internal.h"
#include "core/alloc.h"
#include "core/config.h"
#include "graph/job_graph_codec.h"

static int add_line(void *arg, const char *key, const char *value, bool is_default) {
    sl_bytes_t *b = arg;
    if (!is_default) {
        sl_bytes_put(b, key, strlen(key));
        sl_bytes_put_u8(b, '=');
        sl_bytes_put(b, value, strlen(value));
        sl_bytes_put_u8(b, '\n');
    }
    return 0;
}

int sl_job_package(sl_job_t *job, const sl_config_t *config, uint8_t **graph, size_t *graph_len,
                   sl_bytes_t *config_lines, char *err, size_t errlen) {
    sl_bytes_init(config_lines);
    *graph = NULL;
    *graph_len = 0;
    if (sl_job_error(job)) {
        snprintf(err, errlen, "invalid job: %s", sl_job_error(job));
        return SL_EJOB;
    }
    uint32_t par = job->parallelism ? job->parallelism : (uint32_t)sl_config_int(config, "parallelism.default");
    job->graph.max_parallelism = (uint32_t)sl_config_int(config, "pipeline.max-parallelism");
    char why[1024];
    int rc = sl_job_graph_finalize(&job->graph, par, true, why, sizeof why);
    if (rc) {
        snprintf(err, errlen, "invalid job: %s", why);
        return rc;
    }
    if (sl_job_graph_encode(&job->graph, graph, graph_len) != 0 ||
        sl_config_for_each(config, add_line, config_lines) != 0 || config_lines->err) {
        sl_free(*graph);
        *graph = NULL;
        sl_bytes_destroy(config_lines);
        snprintf(err, errlen, "cannot encode the job: out of memory");
        return SL_ENOMEM;
    }
    return 0;
}
