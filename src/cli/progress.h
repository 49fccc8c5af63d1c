/* The live progress display of `sluice run` and `sluice nexmark`, and the final summary. */
#ifndef SL_CLI_PROGRESS_H
#define SL_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "minicluster/minicluster.h"

typedef struct sl_progress_s {
    const char *job;
    bool live;
    bool quiet;
    uint32_t lines_drawn;
    int64_t last_ms;
    uint64_t *last_in; /* per vertex, for rates */
    uint64_t *last_out;
    uint32_t nvertices;
} sl_progress_t;

void sl_progress_init(sl_progress_t *p, const char *job, bool live, bool quiet);
/* Redraws (live) and, when final, prints the summary and frees what it holds. */
void sl_progress_update(sl_progress_t *p, const sl_job_progress_t *jp, int final);

#endif
