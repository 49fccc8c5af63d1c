/* The "slurm" driver: one Slurm batch job per TaskManager. Start writes a small batch script
 * (exports and an exec of the quoted command line) and submits it with sbatch, asking for the
 * profile's CPUs and memory; stop is scancel; poll asks squeue for the state of our jobs;
 * destroy cancels every job still owned.
 *
 * DESIGN: every Slurm command runs through sl__rm_proc_run() with a deadline, so a dead or
 * stuck slurmctld costs at most command_timeout_ms per call and never leaves a child behind;
 * errors carry the command and its stderr. Jobs are submitted with --no-requeue: when a node
 * dies its job ends as NODE_FAIL, poll reports the TaskManager lost, and the ResourceManager
 * requests a new one (Flink's policy), instead of Slurm silently requeueing the old one. */
#include "resourcemanager/driver_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"
#include "resourcemanager/proc.h"

/* The slurm.conf every command sees, for messages. */
static const char *conf_name(const sl_rm_driver_t *d) {
    if (d->slurm_conf)
        return d->slurm_conf;
    const char *env = getenv("SLURM_CONF");
    return env && *env ? env : "Slurm's default slurm.conf";
}

/* Copies `s` into `dst` on one line (newlines become "; "), without trailing blanks. */
static void one_line(char *dst, size_t len, const char *s) {
    size_t k = 0;
    for (; *s && k + 3 < len; s++) {
        if (*s == '\n') {
            if (s[1]) { dst[k++] = ';'; dst[k++] = ' '; }
        } else {
            dst[k++] = *s;
        }
    }
    while (k > 0 && isspace((unsigned char)dst[k - 1])) k--;
    dst[k] = '\0';
}

/* Runs one Slurm command. Returns 0 when it exited with status 0 (`res` then holds its
 * output, to be freed by the caller); otherwise an error naming the command, its stderr and
 * the slurm.conf in use, with `res` already freed. */
static int slurm_run(sl_rm_driver_t *d, const char *const *argv, sl__rm_proc_result_t *res,
                     char *err, size_t errlen) {
    char conf_env[PATH_MAX + 16];
    const char *env[2] = {NULL, NULL};
    if (d->slurm_conf) {
        snprintf(conf_env, sizeof conf_env, "SLURM_CONF=%s", d->slurm_conf);
        env[0] = conf_env;
    }
    int rc = sl__rm_proc_run(argv, env, d->command_timeout_ms, res, err, errlen);
    if (rc == SL_ENOENT) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (is slurm-client installed?)");
    }
    if (rc)
        return rc;
    if (res->timed_out) {
        snprintf(err, errlen, "%s timed out after %d ms without an answer from Slurm and was killed "
                 "(is slurmctld up? SLURM_CONF=%s)", argv[0], d->command_timeout_ms, conf_name(d));
        rc = SL_ETIMEDOUT;
    } else if (!WIFEXITED(res->status) || WEXITSTATUS(res->status) != 0) {
        char how[64], text[600];
        sl__rm_proc_describe_status(res->status, how, sizeof how);
        one_line(text, sizeof text, res->errtext);
        snprintf(err, errlen, "%s failed (%s): %s (SLURM_CONF=%s)", argv[0], how,
                 text[0] ? text : "no error output", conf_name(d));
        rc = strstr(res->errtext, "Unable to contact slurm controller") ? SL_ECONNREFUSED : SL_EIO;
    }
    if (rc)
        sl__rm_proc_result_free(res);
    return rc;
}

/* Writes `s` as one single-quoted shell word: every ' becomes '\''. */
static void put_quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

static int valid_name(const char *s, size_t n) {
    if (n == 0 || isdigit((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

/* The batch script: exports, then exec of the command so that the TaskManager itself is the
 * job's process and receives Slurm's signals directly. Mode 0600: it may carry secrets. */
static int write_script(const char *path, const char *const *argv, const char *const *env,
                        char *err, size_t errlen) {
    for (const char *const *e = env; e && *e; e++)
        if (!valid_name(*e, (size_t)(strchr(*e, '=') - *e))) {
            snprintf(err, errlen, "slurm: environment entry '%s' does not name a shell variable", *e);
            return SL_EINVAL;
        }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0) close(fd);
        snprintf(err, errlen, "slurm: cannot write batch script %s: %s", path, strerror(e));
        return SL__ERR(e);
    }
    fputs("#!/bin/sh\n# A Sluice TaskManager, submitted by the ResourceManager's slurm driver.\n", f);
    for (const char *const *e = env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        fprintf(f, "export %.*s=", (int)(eq - *e), *e);
        put_quoted(f, eq + 1);
        fputc('\n', f);
    }
    fputs("exec", f);
    for (const char *const *a = argv; *a; a++) {
        fputc(' ', f);
        put_quoted(f, *a);
    }
    fputc('\n', f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        snprintf(err, errlen, "slurm: cannot write batch script %s", path);
        return SL_EIO;
    }
    return 0;
}

/* Cancels every job named `name` of ours. Returns 0 once Slurm answered (whether or not
 * such a job existed), else the error with `e` saying why. */
static int cancel_by_name(sl_rm_driver_t *d, const char *name, char *e, size_t elen) {
    char user[32];
    snprintf(user, sizeof user, "--user=%u", (unsigned)getuid());
    const char *argv[] = {"scancel", "--name", name, user, NULL};
    sl__rm_proc_result_t res;
    int rc = slurm_run(d, argv, &res, e, elen);
    if (rc == 0)
        sl__rm_proc_result_free(&res);
    return rc;
}

/* After an sbatch whose request may have reached the controller without its answer reaching
 * us, a job may exist that we never heard of: cancel it by its unique name. A controller
 * that is stuck now (SIGSTOP, overload) may still create the job later, so a name that
 * cannot be cancelled now is kept and retried by every poll and by destroy. */
static void cancel_doubtful(sl_rm_driver_t *d, const char *name) {
    char e[512];
    if (cancel_by_name(d, name, e, sizeof e) == 0)
        return;
    char **n = sl_realloc(d->doubtful, (d->ndoubtful + 1) * sizeof *n);
    char *copy = sl_strdup(name);
    if (n)
        d->doubtful = n;
    if (n == NULL || copy == NULL) {
        sl_free(copy);
        SL_ERROR("slurm: could not cancel a possibly submitted job named %s (%s) and cannot remember to "
                 "retry: out of memory", name, e);
        return;
    }
    d->doubtful[d->ndoubtful++] = copy;
    SL_WARN("slurm: could not cancel a possibly submitted job named %s yet, will retry: %s", name, e);
}

/* Retries the cancellation of doubtful job names; those Slurm answered for are forgotten. */
static void retry_doubtful(sl_rm_driver_t *d, int last_chance) {
    size_t k = 0;
    for (size_t i = 0; i < d->ndoubtful; i++) {
        char e[512];
        if (cancel_by_name(d, d->doubtful[i], e, sizeof e) == 0) {
            SL_INFO("slurm: cancelled any job named %s", d->doubtful[i]);
            sl_free(d->doubtful[i]);
        } else {
            if (last_chance)
                SL_ERROR("slurm: a job named %s may be left behind (cancel it by hand): %s", d->doubtful[i], e);
            d->doubtful[k++] = d->doubtful[i];
        }
    }
    d->ndoubtful = k;
}

/* Did sbatch fail in a way that leaves open whether the job was submitted? Our deadline, or
 * Slurm's own message timeout (a controller that accepted the connection but did not answer). */
static int maybe_submitted(int rc, const char *err) {
    return rc == SL_ETIMEDOUT || (rc == SL_EIO && (strstr(err, "Socket timed out") != NULL ||
                                                   strstr(err, "Zero Bytes were transmitted") != NULL));
}

static int submit(sl_rm_driver_t *d, const sl_rm_profile_t *p, const char *name, const char *script,
                  long *job_id, char *err, size_t errlen) {
    char cpus[32], mem[40], part[256], out[PATH_MAX];
    snprintf(cpus, sizeof cpus, "--cpus-per-task=%d", (int)ceil(p->cpu_cores));
    snprintf(mem, sizeof mem, "--mem=%lld", (long long)p->memory_mib);
    snprintf(part, sizeof part, "--partition=%s", d->partition ? d->partition : "");
    snprintf(out, sizeof out, "--output=%s/tm-%%j.log", d->log_dir);
    const char *argv[12] = {"sbatch", "--parsable", "--no-requeue", "--job-name", name, cpus, out};
    size_t n = 7;
    /* --mem=0 would mean "all of the node's memory" to Slurm, so no memory asks for the default. */
    if (p->memory_mib > 0) argv[n++] = mem;
    if (d->partition) argv[n++] = part;
    argv[n++] = script;
    sl__rm_proc_result_t res;
    int rc = slurm_run(d, argv, &res, err, errlen);
    if (maybe_submitted(rc, err))
        cancel_doubtful(d, name);
    if (rc)
        return rc;
    char *end;
    long id = strtol(res.out, &end, 10);
    if (id <= 0 || (*end && *end != ';' && *end != '\n')) {
        char text[200];
        one_line(text, sizeof text, res.out);
        snprintf(err, errlen, "sbatch printed no job id: '%s'", text);
        rc = SL_EPROTO;
    }
    sl__rm_proc_result_free(&res);
    *job_id = id;
    return rc;
}

static int slurm_start(sl_rm_driver_t *d, const sl_rm_profile_t *p, const char *const *argv,
                       const char *const *env, sl_rm_worker_t **out, char *err, size_t errlen) {
    char name[128], script[PATH_MAX], id[48];
    /* Unique per ResourceManager process and request, so that a lost sbatch answer can still
     * be found by name (cancel_by_name). */
    snprintf(name, sizeof name, "%s-%ld-%lu", d->job_name, (long)getpid(), ++d->next_seq);
    if (snprintf(script, sizeof script, "%s/%s.sh", d->log_dir, name) >= (int)sizeof script) {
        snprintf(err, errlen, "slurm: log path too long under %s", d->log_dir);
        return SL_EINVAL;
    }
    int rc = write_script(script, argv, env, err, errlen);
    long job;
    if (!rc && (rc = submit(d, p, name, script, &job, err, errlen)) != 0)
        unlink(script); /* kept only next to the log of a job that exists */
    if (rc)
        return rc;
    snprintf(id, sizeof id, "slurm-%ld", job);
    if ((rc = sl__rm_add_worker(d, id, job, p, out)) != 0) {
        const char *cancel[] = {"scancel", id + 6, NULL};
        sl__rm_proc_result_t res;
        char e[256];
        if (slurm_run(d, cancel, &res, e, sizeof e) == 0)
            sl__rm_proc_result_free(&res);
        snprintf(err, errlen, "slurm: out of memory");
        return rc;
    }
    SL_INFO("slurm: submitted %s as job %ld (%s, %d cpus, %lld MiB), log %s/tm-%ld.log", argv[0], job, name,
            (int)ceil(p->cpu_cores), (long long)p->memory_mib, d->log_dir, job);
    return 0;
}

static int slurm_stop(sl_rm_driver_t *d, sl_rm_worker_t *w, char *err, size_t errlen) {
    char job[24];
    snprintf(job, sizeof job, "%ld", w->handle);
    const char *argv[] = {"scancel", job, NULL};
    sl__rm_proc_result_t res;
    int rc = slurm_run(d, argv, &res, err, errlen);
    if (rc)
        return rc;
    sl__rm_proc_result_free(&res);
    w->state = SL_RM_WORKER_STOPPING;
    return 0;
}

/* Slurm job states after which the job's processes are gone (squeue %T names). */
static int is_terminal(const char *state) {
    static const char *const terminal[] = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE",
                                           "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                                           "TIMEOUT", "SPECIAL_EXIT", "REVOKED"};
    for (size_t i = 0; i < sizeof terminal / sizeof terminal[0]; i++)
        if (strcmp(state, terminal[i]) == 0)
            return 1;
    return 0;
}

static sl_rm_worker_t *find_job(sl_rm_driver_t *d, long job) {
    for (size_t i = 0; i < d->nworkers; i++)
        if (d->workers[i].handle == job)
            return &d->workers[i];
    return NULL;
}

/* Applies one squeue line "<job id> <state>" to its worker; marks the worker as seen. */
static void apply_line(sl_rm_driver_t *d, const char *line, char *seen) {
    char state[32];
    long job;
    if (sscanf(line, "%ld %31s", &job, state) != 2)
        return;
    sl_rm_worker_t *w = find_job(d, job);
    if (!w)
        return;
    seen[w - d->workers] = 1;
    if (sl__rm_is_ended(w)) /* already marked, report pending */
        return;
    if (is_terminal(state)) {
        sl__rm_mark_ended(w, state);
    } else if (w->state == SL_RM_WORKER_STOPPING) {
        /* Cancelled but not gone yet: stays STOPPING. */
    } else if (strcmp(state, "RUNNING") == 0) {
        if (w->state != SL_RM_WORKER_RUNNING)
            SL_INFO("slurm: %s is running", w->id);
        w->state = SL_RM_WORKER_RUNNING;
    } else if (strcmp(state, "PENDING") == 0 || strcmp(state, "CONFIGURING") == 0) {
        w->state = SL_RM_WORKER_PENDING;
    }
}

/* "-j" argument: the comma-separated ids of our jobs. */
static char *job_list(const sl_rm_driver_t *d) {
    char *s = sl_malloc(d->nworkers * 24 + 1);
    if (!s)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < d->nworkers; i++)
        k += (size_t)sprintf(s + k, "%s%ld", i ? "," : "", d->workers[i].handle);
    s[k] = '\0';
    return s;
}

static int slurm_query(sl_rm_driver_t *d, const char *ids, sl__rm_proc_result_t *res, char *err, size_t errlen) {
    const char *argv[] = {"squeue", "--noheader", "--states=all", "--jobs", ids, "--format=%i %T", NULL};
    int rc = slurm_run(d, argv, res, err, errlen);
    /* squeue fails when none of the ids is known any more: that is an answer, not an error. */
    if (rc == SL_EIO && strstr(err, "Invalid job id specified")) {
        memset(res, 0, sizeof *res);
        return 1;
    }
    return rc;
}

static int slurm_poll(sl_rm_driver_t *d, char *err, size_t errlen) {
    retry_doubtful(d, 0);
    if (d->nworkers == 0)
        return 0;
    char *ids = job_list(d);
    char *seen = sl_calloc(d->nworkers, 1);
    int rc = ids && seen ? 0 : SL_ENOMEM;
    sl__rm_proc_result_t res;
    if (!rc) rc = slurm_query(d, ids, &res, err, errlen);
    if (rc == 0) {
        char *save = NULL;
        for (char *line = strtok_r(res.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            apply_line(d, line, seen);
        sl__rm_proc_result_free(&res);
    }
    if (rc >= 0) {
        /* Purged from squeue (ended a while ago): gone, with no more detail to give. */
        for (size_t i = 0; i < d->nworkers; i++)
            if (!seen[i] && !sl__rm_is_ended(&d->workers[i]))
                sl__rm_mark_ended(&d->workers[i], "job no longer known to Slurm");
        rc = 0;
    } else if (rc == SL_ENOMEM) {
        snprintf(err, errlen, "slurm: out of memory");
    }
    sl_free(ids);
    sl_free(seen);
    return rc;
}

static void slurm_destroy(sl_rm_driver_t *d) {
    retry_doubtful(d, 1);
    size_t n = 0;
    for (size_t i = 0; i < d->nworkers; i++)
        if (!sl__rm_is_ended(&d->workers[i])) n++;
    if (n == 0)
        return;
    const char **argv = sl_calloc(n + 2, sizeof *argv);
    char(*jobs)[24] = sl_calloc(n, sizeof *jobs);
    if (!argv || !jobs) {
        SL_ERROR("slurm: out of memory, cannot cancel %zu jobs", n);
    } else {
        size_t k = 0;
        argv[k++] = "scancel";
        for (size_t i = 0; i < d->nworkers; i++)
            if (!sl__rm_is_ended(&d->workers[i])) {
                snprintf(jobs[k - 1], sizeof jobs[0], "%ld", d->workers[i].handle);
                argv[k] = jobs[k - 1];
                k++;
            }
        sl__rm_proc_result_t res;
        char e[768];
        if (slurm_run(d, argv, &res, e, sizeof e) == 0)
            sl__rm_proc_result_free(&res);
        else
            SL_ERROR("slurm: cancelling %zu TaskManager jobs failed, they may still run: %s", n, e);
    }
    sl_free(argv);
    sl_free(jobs);
}

const sl__rm_ops_t sl__rm_slurm_ops = {
    .kind = "slurm",
    .owns_workers = 1,
    .start = slurm_start,
    .stop = slurm_stop,
    .poll = slurm_poll,
    .destroy = slurm_destroy,
};
