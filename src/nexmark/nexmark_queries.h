/* The Nexmark benchmark queries as built-in jobs (q0, q1, q2, q3, q4, q5, q7, q8, q13), built
 * with the public job API from the Nexmark generator source. */
#ifndef SL_NEXMARK_NEXMARK_QUERIES_H
#define SL_NEXMARK_NEXMARK_QUERIES_H

#include <sluice/async.h>
#include <sluice/job.h>

#include <stdint.h>

typedef struct sl_nexmark_opts_s {
    const char *query;   /* "q0".."q8" */
    uint64_t events;     /* total events of the sequence (0 = unbounded) */
    uint64_t rate;       /* events per second of event time (0 = generator default) */
    uint32_t parallelism; /* 0 = parallelism.default */
    const char *output;  /* CSV path of the final result, or NULL for a discarding sink */
    const char *redis_address;  /* q13: the Redis holding the side input */
    sl_async_options_t async;   /* q13: options of its lookup */
} sl_nexmark_opts_t;

/* Adds the query's operators to `job`. Errors: SL_EINVAL for an unknown query (message in
 * err naming the known ones), or the job's builder error. */
int sl_nexmark_build(sl_job_t *job, const sl_nexmark_opts_t *o, char *err, size_t errlen);

/* "q0 q1 q2 q3 q4 q5 q7 q8 q13" */
const char *sl_nexmark_query_names(void);

#endif
