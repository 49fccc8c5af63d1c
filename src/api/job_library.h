/* A job built by a job library: the library is loaded and its sluice_job_main builds the job.
 * `sluice run JOB.so` does it in the client; the REST API's jar runs do it in the JobManager,
 * as Flink's jar run handler runs a jar's main there. */
#ifndef SL_API_JOB_LIBRARY_H
#define SL_API_JOB_LIBRARY_H

#include <stddef.h>

#include <sluice/job.h>

/* Loads the library at `path` (dlopen: its constructors run), keeps the handle in the job (the
 * operators find their functions in it) and calls its entry point with argv, argv[0] being
 * the path. The job's graph names the library by its absolute path. Errors name the library
 * and the cause in err: SL_ENOENT (unreadable), SL_EINVAL (not loadable, no entry point),
 * SL_EJOB (the entry point failed or built an invalid job). The handle is not closed here:
 * sl_job_close_library does it once the job is no longer needed. */
int sl_job_build_from_library(sl_job_t *job, const char *path, int argc, char **argv, char *err, size_t errlen);
/* Closes the handle sl_job_build_from_library opened (call after sl_job_destroy). */
void sl_job_close_library(void *handle);
/* The handle of the job's library, NULL when the job has none. */
void *sl_job_library_handle(const sl_job_t *job);

#endif
