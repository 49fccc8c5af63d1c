/* The driver factory and the parts every kind shares: options with their defaults, argument
 * checks, the worker table, and poll's reporting of ended workers (which happens here, after
 * they left the table, so a callback may start a replacement without disturbing iteration). */
#include "resourcemanager/driver_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/fs.h"
#include "core/log.h"

static const sl__rm_ops_t *const kinds[] = {&sl__rm_local_ops, &sl__rm_standalone_ops, &sl__rm_slurm_ops};

const char *sl_rm_worker_state_name(sl_rm_worker_state_t s) {
    switch (s) {
    case SL_RM_WORKER_PENDING: return "PENDING";
    case SL_RM_WORKER_RUNNING: return "RUNNING";
    case SL_RM_WORKER_STOPPING: return "STOPPING";
    case SL_RM_WORKER_STOPPED: return "STOPPED";
    case SL_RM_WORKER_LOST: return "LOST";
    }
    return "?";
}

static int copy_opt(const char *s, const char *dflt, char **out) {
    *out = NULL;
    if (!s || !*s)
        s = dflt;
    if (!s)
        return 0;
    *out = sl_strdup(s);
    return *out ? 0 : SL_ENOMEM;
}

static void free_opts(sl_rm_driver_t *d) {
    sl_free(d->log_dir);
    sl_free(d->slurm_conf);
    sl_free(d->partition);
    sl_free(d->job_name);
}

static int apply_opts(sl_rm_driver_t *d, const sl_rm_options_t *o, char *err, size_t errlen) {
    static const sl_rm_options_t none;
    if (!o)
        o = &none;
    if (o->stop_grace_ms < 0 || o->command_timeout_ms < 0) {
        snprintf(err, errlen, "resourcemanager: stop_grace_ms and command_timeout_ms must be >= 0");
        return SL_EINVAL;
    }
    d->stop_grace_ms = o->stop_grace_ms ? o->stop_grace_ms : 5000;
    d->command_timeout_ms = o->command_timeout_ms ? o->command_timeout_ms : 20000;
    int rc = copy_opt(o->log_dir, ".", &d->log_dir);
    if (!rc) rc = copy_opt(o->slurm_conf, NULL, &d->slurm_conf);
    if (!rc) rc = copy_opt(o->partition, NULL, &d->partition);
    if (!rc) rc = copy_opt(o->job_name, "sluice-tm", &d->job_name);
    if (rc) {
        snprintf(err, errlen, "resourcemanager: out of memory");
        return rc;
    }
    return 0;
}

int sl_rm_driver_create(const char *kind, const sl_rm_options_t *opts, sl_rm_driver_t **out,
                        char *err, size_t errlen) {
    const sl__rm_ops_t *ops = NULL;
    for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->kind, kind) == 0)
            ops = kinds[i];
    if (!ops) {
        snprintf(err, errlen, "resourcemanager: unknown driver '%s' (expected local, standalone or slurm)",
                 kind ? kind : "(null)");
        return SL_EINVAL;
    }
    sl_rm_driver_t *d = sl_calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "resourcemanager: out of memory");
        return SL_ENOMEM;
    }
    d->ops = ops;
    int rc = apply_opts(d, opts, err, errlen);
    /* Logs are written by the workers, so a directory they cannot use is an error now
     * rather than a TaskManager that silently fails to start later. */
    if (!rc && ops->owns_workers && sl_make_dirs(d->log_dir) != 0) {
        rc = SL__ERR(errno);
        snprintf(err, errlen, "%s: cannot create log directory %s: %s", ops->kind, d->log_dir, strerror(errno));
    }
    if (rc) {
        free_opts(d);
        sl_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void sl_rm_driver_destroy(sl_rm_driver_t *d) {
    if (!d)
        return;
    d->ops->destroy(d);
    for (size_t i = 0; i < d->ndoubtful; i++)
        sl_free(d->doubtful[i]);
    sl_free(d->doubtful);
    sl_free(d->workers);
    free_opts(d);
    sl_free(d);
}

static int check_start_args(const sl_rm_driver_t *d, const sl_rm_profile_t *p, const char *const *argv,
                            const char *const *env, char *err, size_t errlen) {
    if (!p || !(p->cpu_cores > 0 && p->cpu_cores <= 1e6) || p->memory_mib < 0 || p->slots < 0) {
        snprintf(err, errlen, "%s: bad resource profile (cpu_cores must be in (0, 1e6], memory_mib and slots >= 0)",
                 d->ops->kind);
        return SL_EINVAL;
    }
    if (!argv || !argv[0] || !argv[0][0]) {
        snprintf(err, errlen, "%s: empty TaskManager command line", d->ops->kind);
        return SL_EINVAL;
    }
    for (; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        if (!eq || eq == *env) {
            snprintf(err, errlen, "%s: environment entry '%s' is not KEY=VALUE", d->ops->kind, *env);
            return SL_EINVAL;
        }
    }
    return 0;
}

int sl_rm_driver_start_worker(sl_rm_driver_t *d, const sl_rm_profile_t *profile, const char *const *argv,
                              const char *const *env, char *id, size_t idlen, char *err, size_t errlen) {
    /* A kind that starts nothing refuses before looking at the arguments, so the caller
     * learns the real reason. */
    int rc = d->ops->owns_workers ? check_start_args(d, profile, argv, env, err, errlen) : 0;
    if (rc)
        return rc;
    sl_rm_worker_t *w;
    if ((rc = d->ops->start(d, profile, argv, env, &w, err, errlen)) != 0)
        return rc;
    if (id && idlen)
        snprintf(id, idlen, "%s", w->id);
    return 0;
}

static sl_rm_worker_t *find(const sl_rm_driver_t *d, const char *id) {
    for (size_t i = 0; id && i < d->nworkers; i++)
        if (strcmp(d->workers[i].id, id) == 0)
            return &d->workers[i];
    return NULL;
}

const sl_rm_worker_t *sl_rm_driver_find(const sl_rm_driver_t *d, const char *id) {
    return find(d, id);
}

int sl_rm_driver_stop_worker(sl_rm_driver_t *d, const char *id, char *err, size_t errlen) {
    if (!d->ops->owns_workers) {
        SL_INFO("%s: not stopping '%s': TaskManagers started by hand are stopped by hand", d->ops->kind,
                id ? id : "(null)");
        return 0;
    }
    sl_rm_worker_t *w = find(d, id);
    if (!w) {
        snprintf(err, errlen, "%s: no worker '%s'", d->ops->kind, id ? id : "(null)");
        return SL_ENOENT;
    }
    if (w->state == SL_RM_WORKER_STOPPING || sl__rm_is_ended(w))
        return 0;
    return d->ops->stop(d, w, err, errlen);
}

/* Moves the ended workers out of the table (keeping the order of the others) into `gone`. */
static size_t take_ended(sl_rm_driver_t *d, sl_rm_worker_t *gone) {
    size_t k = 0, n = 0;
    for (size_t i = 0; i < d->nworkers; i++) {
        if (sl__rm_is_ended(&d->workers[i]))
            gone[n++] = d->workers[i];
        else
            d->workers[k++] = d->workers[i];
    }
    d->nworkers = k;
    return n;
}

int sl_rm_driver_poll(sl_rm_driver_t *d, sl_rm_worker_cb cb, void *arg, char *err, size_t errlen) {
    int rc = d->ops->poll(d, err, errlen);
    if (rc || d->nworkers == 0)
        return rc;
    sl_rm_worker_t *gone = sl_malloc(d->nworkers * sizeof *gone);
    if (!gone) {
        /* Nothing is lost: the ended workers stay marked and the next poll reports them. */
        snprintf(err, errlen, "%s: out of memory", d->ops->kind);
        return SL_ENOMEM;
    }
    size_t n = take_ended(d, gone);
    for (size_t i = 0; i < n && cb; i++)
        cb(arg, &gone[i], gone[i].reason);
    sl_free(gone);
    return 0;
}

size_t sl_rm_driver_list(const sl_rm_driver_t *d, const sl_rm_worker_t **workers) {
    *workers = d->workers;
    return d->nworkers;
}

const char *sl_rm_driver_kind(const sl_rm_driver_t *d) {
    return d->ops->kind;
}

int sl__rm_add_worker(sl_rm_driver_t *d, const char *id, long handle, const sl_rm_profile_t *p,
                      sl_rm_worker_t **out) {
    if (d->nworkers == d->capworkers) {
        size_t cap = d->capworkers ? d->capworkers * 2 : 8;
        sl_rm_worker_t *ws = sl_realloc(d->workers, cap * sizeof *ws);
        if (!ws)
            return SL_ENOMEM;
        d->workers = ws;
        d->capworkers = cap;
    }
    sl_rm_worker_t *w = &d->workers[d->nworkers++];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    w->handle = handle;
    w->state = SL_RM_WORKER_PENDING;
    w->profile = *p;
    *out = w;
    return 0;
}

void sl__rm_mark_ended(sl_rm_worker_t *w, const char *reason) {
    w->state = w->state == SL_RM_WORKER_STOPPING ? SL_RM_WORKER_STOPPED : SL_RM_WORKER_LOST;
    snprintf(w->reason, sizeof w->reason, "%s", reason);
}

int sl__rm_is_ended(const sl_rm_worker_t *w) {
    return w->state == SL_RM_WORKER_STOPPED || w->state == SL_RM_WORKER_LOST;
}
