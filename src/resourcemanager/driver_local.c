/* The "local" driver: each TaskManager is a child process of the ResourceManager, leader of
 * its own process group, with stdout and stderr in <log_dir>/<id>.log. Stopping sends
 * SIGTERM to the group and SIGKILL after the grace period; every child is reaped, by poll
 * or at the latest by destroy, so neither zombies nor orphans outlive the driver. */
#include "resourcemanager/driver_internal.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sluice/error.h>

#include "core/log.h"
#include "resourcemanager/proc.h"

static int local_start(sl_rm_driver_t *d, const sl_rm_profile_t *p, const char *const *argv,
                       const char *const *env, sl_rm_worker_t **out, char *err, size_t errlen) {
    char id[48], log_path[PATH_MAX];
    snprintf(id, sizeof id, "local-%lu", ++d->next_seq);
    if (snprintf(log_path, sizeof log_path, "%s/%s.log", d->log_dir, id) >= (int)sizeof log_path) {
        snprintf(err, errlen, "local: log path too long under %s", d->log_dir);
        return SL_EINVAL;
    }
    pid_t pid;
    int rc = sl__rm_proc_spawn(argv, env, log_path, &pid, err, errlen);
    if (rc)
        return rc;
    if ((rc = sl__rm_add_worker(d, id, (long)pid, p, out)) != 0) {
        /* Nobody would own it: end it now instead of leaving an orphan. */
        kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        snprintf(err, errlen, "local: out of memory");
        return rc;
    }
    /* A spawned process counts as running; whether it stays up is what poll reports. */
    (*out)->state = SL_RM_WORKER_RUNNING;
    SL_INFO("local: started %s (pid %d) %s, log %s", id, (int)pid, argv[0], log_path);
    return 0;
}

static int local_stop(sl_rm_driver_t *d, sl_rm_worker_t *w, char *err, size_t errlen) {
    if (kill(-(pid_t)w->handle, SIGTERM) != 0 && errno != ESRCH) {
        snprintf(err, errlen, "local: cannot signal %s (pid %ld): %s", w->id, w->handle, strerror(errno));
        return SL__ERR(errno);
    }
    w->state = SL_RM_WORKER_STOPPING;
    w->_deadline_ms = sl__rm_now_ms() + d->stop_grace_ms;
    return 0;
}

/* Reaps `w` if it has exited. The leader's exit does not end the rest of its group (a
 * TaskManager's helpers), so the group gets SIGKILL too. Returns 1 when reaped. */
static int reap(sl_rm_worker_t *w, int flags) {
    int status;
    pid_t r;
    while ((r = waitpid((pid_t)w->handle, &status, flags)) < 0 && errno == EINTR) {}
    if (r == 0)
        return 0;
    char why[128];
    if (r < 0)
        snprintf(why, sizeof why, "reaped elsewhere (%s; is SIGCHLD ignored?)", strerror(errno));
    else
        sl__rm_proc_describe_status(status, why, sizeof why);
    kill(-(pid_t)w->handle, SIGKILL);
    sl__rm_mark_ended(w, why);
    return 1;
}

static int local_poll(sl_rm_driver_t *d, char *err, size_t errlen) {
    long long now = sl__rm_now_ms();
    for (size_t i = 0; i < d->nworkers; i++) {
        sl_rm_worker_t *w = &d->workers[i];
        /* Ended but not yet reported (a failed report is retried): already reaped. */
        if (sl__rm_is_ended(w) || reap(w, WNOHANG))
            continue;
        if (w->state == SL_RM_WORKER_STOPPING && now >= w->_deadline_ms) {
            SL_WARN("local: %s (pid %ld) ignored SIGTERM for %d ms, sending SIGKILL", w->id, w->handle,
                    d->stop_grace_ms);
            kill(-(pid_t)w->handle, SIGKILL);
        }
    }
    return 0;
}

/* Ends every worker: SIGTERM to all groups at once, a shared grace period, then SIGKILL and a
 * blocking reap for whatever is left. */
static void local_destroy(sl_rm_driver_t *d) {
    for (size_t i = 0; i < d->nworkers; i++)
        if (d->workers[i].state != SL_RM_WORKER_STOPPING)
            kill(-(pid_t)d->workers[i].handle, SIGTERM);
    long long deadline = sl__rm_now_ms() + d->stop_grace_ms;
    size_t alive = d->nworkers;
    while (alive > 0 && sl__rm_now_ms() < deadline) {
        alive = 0;
        for (size_t i = 0; i < d->nworkers; i++)
            if (!sl__rm_is_ended(&d->workers[i]) && !reap(&d->workers[i], WNOHANG))
                alive++;
        if (alive)
            usleep(10 * 1000);
    }
    for (size_t i = 0; i < d->nworkers; i++) {
        sl_rm_worker_t *w = &d->workers[i];
        if (sl__rm_is_ended(w))
            continue;
        SL_WARN("local: %s (pid %ld) still alive after %d ms, sending SIGKILL", w->id, w->handle,
                d->stop_grace_ms);
        kill(-(pid_t)w->handle, SIGKILL);
        reap(w, 0);
    }
}

const sl__rm_ops_t sl__rm_local_ops = {
    .kind = "local",
    .owns_workers = 1,
    .start = local_start,
    .stop = local_stop,
    .poll = local_poll,
    .destroy = local_destroy,
};
