/* Shared pieces of the `sluice` subcommands: configuration options, running a built job on
 * the mini-cluster with the progress display, and error reporting. */
#ifndef SL_CLI_CLI_H
#define SL_CLI_CLI_H

#include <sluice/job.h>

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

typedef struct sl_cli_run_opts_s {
    sl_config_t *config;
    bool progress;      /* live display (default: when stderr is a terminal) */
    bool quiet;         /* no summary */
    void *user_lib;     /* dlopen handle of the job library, or NULL */
    /* -D and -p values seen so far (borrowed from argv): re-applied after each -c file, so
     * command-line overrides win over files wherever they appear. */
    const char *overrides[256];
    uint32_t noverrides;
    char parallelism_kv[48];
} sl_cli_run_opts_t;

/* Handles one common option at argv[*i] (-c/--config FILE, -D key=value, --parallelism N,
 * -p N, --from-checkpoint PATH, --progress, --no-progress, --quiet). Returns 1 when consumed (advancing *i past its
 * value), 0 when not a common option, or exits with status 2 and a message on a bad value. */
int sl_cli_common_option(sl_cli_run_opts_t *o, int argc, char **argv, int *i);

/* Parses an unsigned integer option value or exits 2 naming the option. */
uint64_t sl_cli_parse_u64(const char *opt, const char *value, uint64_t min, uint64_t max);

/* Finalizes and runs the job; prints the summary. Returns the process exit status. */
int sl_cli_execute(sl_job_t *job, sl_cli_run_opts_t *o);

void sl_cli_die(int status, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* The cluster's shared secret into `secret` (see secret.c). Errors name the file. */
int sl_cli_load_secret(const sl_config_t *config, char *secret, size_t cap, char *err, size_t errlen);

/* Submits the job to the JobManager at HOST:PORT and waits for it (submit.c). Returns the
 * command's exit status. */
struct sl_job_s;
int sl_cli_submit(struct sl_job_s *job, sl_cli_run_opts_t *o, const char *jm_addr);
int sl_cli_list(const sl_config_t *config, const char *jm_addr);
/* Per-job mode: a JobManager with driver `target` (local, slurm) in this process, the job
 * submitted to it; TaskManagers are stopped when it ends. */
int sl_cli_run_per_job(struct sl_job_s *job, sl_cli_run_opts_t *o, const char *target);
int sl_cli_cancel(const sl_config_t *config, const char *jm_addr, const char *job_id);
int sl_cli_savepoint(const sl_config_t *config, const char *jm_addr, const char *job_id, const char *dir, bool stop);
int sl_cmd_savepoint(int argc, char **argv);
int sl_cmd_stop(int argc, char **argv);
int sl_cmd_list(int argc, char **argv);
int sl_cmd_cancel(int argc, char **argv);

int sl_cmd_run(int argc, char **argv);
int sl_cmd_jobmanager(int argc, char **argv);
int sl_cmd_taskmanager(int argc, char **argv);
int sl_cmd_nexmark(int argc, char **argv);

#endif
