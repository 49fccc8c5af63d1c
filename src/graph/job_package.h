/* What a JobManager is sent for a job: the graph finalized and encoded, and the configuration
 * as "key=value" lines of what was set (the JobManager's defaults fill the rest). Shared by
 * the client's submission and the REST API's jar runs so both produce the same job. */
#ifndef SL_GRAPH_JOB_PACKAGE_H
#define SL_GRAPH_JOB_PACKAGE_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/job.h>

#include "core/bytes.h"

struct sl_config_s;

/* Finalizes the job's graph (parallelism: the job's, else parallelism.default; max
 * parallelism: pipeline.max-parallelism; chained) and encodes it into *graph (sl_free) and
 * the set options into config_lines (initialized here; sl_bytes_destroy). Errors: SL_EJOB
 * (err names the node), SL_ENOMEM. */
int sl_job_package(sl_job_t *job, const struct sl_config_s *config, uint8_t **graph, size_t *graph_len,
                   sl_bytes_t *config_lines, char *err, size_t errlen);

#endif
