/* What the driver kinds share: the vtable each kind fills in, the driver struct with its
 * copied options and worker table, and the table helpers (driver.c). Internal to the module. */
#ifndef SL_RESOURCEMANAGER_DRIVER_INTERNAL_H
#define SL_RESOURCEMANAGER_DRIVER_INTERNAL_H

#include "resourcemanager/driver.h"

typedef struct sl__rm_ops_s {
    const char *kind;
    /* 0 when TaskManagers are started by someone else (standalone): stop is then a logged
     * no-op for any id, and there is no log directory to create. */
    int owns_workers;
    /* Starts a worker and adds it with sl__rm_add_worker(). */
    int (*start)(sl_rm_driver_t *d, const sl_rm_profile_t *p, const char *const *argv,
                 const char *const *env, sl_rm_worker_t **out, char *err, size_t errlen);
    /* Asks a PENDING/RUNNING worker to stop and sets it STOPPING (only if owns_workers). */
    int (*stop)(sl_rm_driver_t *d, sl_rm_worker_t *w, char *err, size_t errlen);
    /* Observes the workers: an ended one gets state STOPPED or LOST and its reason
     * (sl__rm_mark_ended); driver.c then reports and removes it. */
    int (*poll)(sl_rm_driver_t *d, char *err, size_t errlen);
    /* Ends every worker still owned; the table is freed by driver.c. */
    void (*destroy)(sl_rm_driver_t *d);
} sl__rm_ops_t;

struct sl_rm_driver_s {
    const sl__rm_ops_t *ops;
    /* Options with defaults applied; strings owned (NULL stays NULL for slurm_conf/partition). */
    char *log_dir;
    char *slurm_conf;
    char *partition;
    char *job_name;
    int stop_grace_ms;
    int command_timeout_ms;
    /* Owned workers, in start order. */
    sl_rm_worker_t *workers;
    size_t nworkers, capworkers;
    unsigned long next_seq; /* local ids and Slurm job names */
    /* slurm: names of jobs an sbatch may have submitted without telling us (it timed out)
     * and that could not be cancelled yet; owned, retried by every poll and by destroy. */
    char **doubtful;
    size_t ndoubtful;
};

extern const sl__rm_ops_t sl__rm_local_ops;
extern const sl__rm_ops_t sl__rm_standalone_ops;
extern const sl__rm_ops_t sl__rm_slurm_ops;

/* Appends a worker (state PENDING) and returns it; borrowed until the table changes. */
int sl__rm_add_worker(sl_rm_driver_t *d, const char *id, long handle, const sl_rm_profile_t *p,
                      sl_rm_worker_t **out);

/* A worker has ended: STOPPED if it was asked to stop, else LOST. */
void sl__rm_mark_ended(sl_rm_worker_t *w, const char *reason);

/* Is the worker ended (STOPPED or LOST)? */
int sl__rm_is_ended(const sl_rm_worker_t *w);

#endif
