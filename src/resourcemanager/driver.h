/* ResourceManager drivers: one interface that starts and stops TaskManager worker processes
 * on demand. Three kinds: "local" (child processes on this machine), "standalone"
 * (TaskManagers started by hand; starting is refused) and "slurm" (one Slurm job per
 * TaskManager through sbatch/squeue/scancel). docs/resource-manager.md has the details.
 *
 * Threads: a driver is not thread-safe; one thread makes every call (the ResourceManager's
 * driver thread, driver_thread.h, so that a slow Slurm never stalls its RPC loop).
 * The local driver never blocks for long; the slurm driver blocks the calling thread for up
 * to `command_timeout_ms` per Slurm command, so that never becomes an unbounded hang.
 *
 * Worker states:
 *
 *   state      | meaning                                              | next
 *   -----------+------------------------------------------------------+-------------------
 *   PENDING    | requested, not running yet (Slurm: queued)           | RUNNING, STOPPING, LOST
 *   RUNNING    | the process / the job runs                           | STOPPING, LOST
 *   STOPPING   | stop_worker() was called, the end not yet observed  | STOPPED
 *   STOPPED    | ended after stop_worker(); reported once by poll     | (removed)
 *   LOST       | ended without being asked; reported once by poll     | (removed)
 *
 * A worker in STOPPED or LOST is handed to the poll callback exactly once and is then gone
 * from the driver: re-requesting a lost TaskManager is the caller's decision (it may call
 * sl_rm_driver_start_worker() from inside the callback). */
#ifndef SL_RESOURCEMANAGER_DRIVER_H
#define SL_RESOURCEMANAGER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/* What one TaskManager needs. */
typedef struct sl_rm_profile_s {
    double cpu_cores;   /* > 0; Slurm gets ceil(cpu_cores) CPUs */
    int64_t memory_mib; /* > 0: Slurm --mem; 0: the cluster's default per-job memory */
    int slots;          /* task slots the TaskManager will offer (informational here) */
} sl_rm_profile_t;

typedef enum {
    SL_RM_WORKER_PENDING = 0,
    SL_RM_WORKER_RUNNING,
    SL_RM_WORKER_STOPPING,
    SL_RM_WORKER_STOPPED,
    SL_RM_WORKER_LOST,
} sl_rm_worker_state_t;

/* One worker. Owned by the driver; pointers to it are borrowed until the next call that
 * starts, stops or polls. Fields starting with `_` are the drivers' own. */
typedef struct sl_rm_worker_s {
    char id[48];                /* "local-3", "slurm-1234": what the caller names it by */
    long handle;                /* local: pid (= its process group id); slurm: job id */
    sl_rm_worker_state_t state;
    sl_rm_profile_t profile;
    char reason[160];           /* why it ended (STOPPED / LOST), else "" */
    long long _deadline_ms;     /* local: when SIGTERM turns into SIGKILL */
} sl_rm_worker_t;

/* Driver options. Strings are copied by sl_rm_driver_create(); NULL or 0 means the default. */
typedef struct sl_rm_options_s {
    const char *log_dir;        /* local, slurm: TaskManager logs (created if missing); default "." */
    const char *slurm_conf;     /* slurm: slurm.conf for every Slurm command; default SLURM_CONF
                                 * from the environment, else Slurm's own default */
    const char *partition;      /* slurm: sbatch -p; default: the cluster's default partition */
    const char *job_name;       /* slurm: job name prefix; default "sluice-tm" */
    int stop_grace_ms;          /* local: SIGTERM to SIGKILL; default 5000 */
    int command_timeout_ms;     /* slurm: each sbatch/squeue/scancel is killed after this; default 20000 */
} sl_rm_options_t;

typedef struct sl_rm_driver_s sl_rm_driver_t;

/* Called by sl_rm_driver_poll() once for each worker that ended: w->state is STOPPED or LOST,
 * `reason` says why ("killed by signal 9 (Killed)", "NODE_FAIL", ...). `w` is borrowed for
 * the duration of the call. */
typedef void (*sl_rm_worker_cb)(void *arg, const sl_rm_worker_t *w, const char *reason);

/* Creates a driver of `kind` ("local", "standalone", "slurm"). Errors: SL_EINVAL for an
 * unknown kind or bad options, SL_ENOMEM, -errno when log_dir cannot be created; `err`
 * says which. Nothing needs cleaning up after an error. */
int sl_rm_driver_create(const char *kind, const sl_rm_options_t *opts, sl_rm_driver_t **out,
                        char *err, size_t errlen);

/* Stops every worker the driver still owns (local: SIGTERM, SIGKILL after the grace period,
 * all reaped; slurm: scancel) and frees the driver. No poll callback runs. NULL is a no-op. */
void sl_rm_driver_destroy(sl_rm_driver_t *d);

/* Starts one TaskManager: `argv` is its command line (NULL-terminated, argv[0] looked up in
 * PATH), `env` extra "KEY=VALUE" entries (NULL-terminated, or NULL). Both are borrowed for
 * the call. On success the new worker's id is copied to `id` (>= sizeof(sl_rm_worker_t.id)
 * is enough). Errors: SL_EINVAL (standalone, bad profile or argv), SL_ENOENT (command not
 * found), SL_ECONNREFUSED (Slurm controller unreachable), SL_ETIMEDOUT (a Slurm command did
 * not answer in time), SL_EIO (a Slurm command failed); `err` names the cause and, for Slurm,
 * the command and its stderr. */
int sl_rm_driver_start_worker(sl_rm_driver_t *d, const sl_rm_profile_t *profile, const char *const *argv,
                              const char *const *env, char *id, size_t idlen, char *err, size_t errlen);

/* Asks worker `id` to stop (local: SIGTERM to its process group; slurm: scancel). Returns at
 * once; the end is reported by a later poll with state STOPPED. Stopping a STOPPING worker
 * is a no-op. Errors: SL_ENOENT for an unknown id, the Slurm errors of start_worker. */
int sl_rm_driver_stop_worker(sl_rm_driver_t *d, const char *id, char *err, size_t errlen);

/* Checks every worker; each one that ended is passed to `cb` (may be NULL) and removed.
 * Local: reaps exited children and turns SIGTERM into SIGKILL after the grace period.
 * Slurm: one squeue; a job in a terminal state or unknown to Slurm has ended. When Slurm
 * cannot be asked, nothing is declared lost and the error is returned (an unreachable
 * controller is not a dead TaskManager). */
int sl_rm_driver_poll(sl_rm_driver_t *d, sl_rm_worker_cb cb, void *arg, char *err, size_t errlen);

/* The workers the driver owns (not yet reported as ended); borrowed, see sl_rm_worker_t. */
size_t sl_rm_driver_list(const sl_rm_driver_t *d, const sl_rm_worker_t **workers);

/* The worker named `id`, or NULL; borrowed. */
const sl_rm_worker_t *sl_rm_driver_find(const sl_rm_driver_t *d, const char *id);

/* "local", "standalone" or "slurm". */
const char *sl_rm_driver_kind(const sl_rm_driver_t *d);

/* "PENDING", "RUNNING", ... */
const char *sl_rm_worker_state_name(sl_rm_worker_state_t s);

#endif
