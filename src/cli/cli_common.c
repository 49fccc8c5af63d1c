/* Options shared by subcommands and the execution of a job with progress and summary. */
#include "cli/cli.h"
#include "core/log.h"

#include <sluice/error.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "cli/progress.h"
#include "minicluster/minicluster.h"

void sl_cli_die(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sluice: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(status);
}

uint64_t sl_cli_parse_u64(const char *opt, const char *value, uint64_t min, uint64_t max) {
    if (value == NULL)
        sl_cli_die(2, "option %s needs a value", opt);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || end == value || *end || value[0] == '-' || v < min || v > max)
        sl_cli_die(2, "invalid value '%s' for %s: expected an integer from %llu to %llu", value, opt,
                   (unsigned long long)min, (unsigned long long)max);
    return v;
}

static const char *need_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc)
        sl_cli_die(2, "option %s needs a value", argv[*i]);
    return argv[++*i];
}

int sl_cli_common_option(sl_cli_run_opts_t *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    char err[512];
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
        const char *path = need_value(argc, argv, i);
        if (sl_config_load_yaml(o->config, path, err, sizeof err) != 0)
            sl_cli_die(2, "%s", err);
        for (uint32_t k = 0; k < o->noverrides; k++)
            if (sl_config_set_arg(o->config, o->overrides[k], err, sizeof err) != 0)
                sl_cli_die(2, "%s", err);
        return 1;
    }
    if (strcmp(a, "-D") == 0 || strncmp(a, "-D", 2) == 0 || strcmp(a, "-p") == 0 ||
        strcmp(a, "--parallelism") == 0) {
        const char *kv;
        if (a[1] == 'D') {
            kv = a[2] ? a + 2 : need_value(argc, argv, i);
        } else {
            const char *v = need_value(argc, argv, i);
            sl_cli_parse_u64(a, v, 1, 32768);
            snprintf(o->parallelism_kv, sizeof o->parallelism_kv, "parallelism.default=%s", v);
            kv = o->parallelism_kv;
        }
        if (sl_config_set_arg(o->config, kv, err, sizeof err) != 0)
            sl_cli_die(2, "%s", err);
        if (o->noverrides == sizeof o->overrides / sizeof o->overrides[0])
            sl_cli_die(2, "too many -D options");
        o->overrides[o->noverrides++] = kv;
        return 1;
    }
    if (strcmp(a, "--from-checkpoint") == 0 || strcmp(a, "--from-savepoint") == 0) {
        /* Flink's key for "start from this checkpoint or savepoint". */
        const char *path = need_value(argc, argv, i);
        if (sl_config_set(o->config, "execution.savepoint.path", path, err, sizeof err) != 0)
            sl_cli_die(2, "%s", err);
        return 1;
    }
    if (strcmp(a, "--progress") == 0) {
        o->progress = true;
        return 1;
    }
    if (strcmp(a, "--no-progress") == 0) {
        o->progress = false;
        return 1;
    }
    if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
        o->quiet = true;
        o->progress = false;
        return 1;
    }
    return 0;
}

static void on_signal(int sig) {
    (void)sig;
    sl_minicluster_request_cancel();
}

static void progress_cb(void *arg, const sl_job_progress_t *p, int final) {
    sl_progress_t *pr = arg;
    sl_progress_update(pr, p, final);
}

int sl_cli_execute(sl_job_t *job, sl_cli_run_opts_t *o) {
    if (sl_job_error(job))
        sl_cli_die(2, "invalid job: %s", sl_job_error(job));
    char err[1024] = "";
    uint32_t par = job->parallelism ? job->parallelism : (uint32_t)sl_config_int(o->config, "parallelism.default");
    job->graph.max_parallelism = (uint32_t)sl_config_int(o->config, "pipeline.max-parallelism");
    int rc = sl_job_graph_finalize(&job->graph, par, true, err, sizeof err);
    if (rc)
        sl_cli_die(2, "invalid job: %s", err);
    /* SLUICE_LOG, when set, wins: it is how a single run is debugged without a config. */
    if (getenv("SLUICE_LOG") == NULL) {
        static const char *const levels[] = {"debug", "info", "warn", "error"};
        const char *lv = sl_config_str(o->config, "log.level");
        for (int k = 0; k < 4; k++)
            if (lv && strcmp(lv, levels[k]) == 0)
                sl_log_set_level((sl_log_level_t)k);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sl_progress_t pr;
    sl_progress_init(&pr, job->graph.name, o->progress, o->quiet);
    sl_job_result_t result;
    rc = sl_minicluster_run(o->config, &job->graph, o->user_lib, progress_cb, &pr, o->progress ? 500 : 1000, &result);
    if (rc) {
        fprintf(stderr, "sluice: job '%s' could not start: %s\n", job->graph.name, result.error);
        return 1;
    }
    if (result.checkpoints_completed || result.checkpoints_aborted)
        fprintf(stderr, "checkpoints: %llu completed, %llu aborted; latest %s/chk-%llu\n",
                (unsigned long long)result.checkpoints_completed, (unsigned long long)result.checkpoints_aborted,
                result.checkpoint_dir, (unsigned long long)result.latest_checkpoint);
    if (result.status == SL_ECANCELED) {
        fprintf(stderr, "sluice: job '%s' canceled after %.1f s\n", job->graph.name, result.elapsed_ms / 1000.0);
        return 130;
    }
    if (result.status) {
        fprintf(stderr, "sluice: job '%s' failed: %s\n", job->graph.name, result.error);
        return 1;
    }
    return 0;
}
