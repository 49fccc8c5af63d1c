/* `sluice run`: runs a built-in job or a user job library on the embedded mini-cluster.
 *
 *   sluice run [options] wordcount [--input FILE] [--lines N] [--output FILE]
 *   sluice run [options] path/to/job.so [job arguments...]
 *
 * A job library exports `int sluice_job_main(sl_job_t *job, int argc, char **argv)` that
 * builds the job with <sluice/job.h>; its functions are found in it by symbol. */
#include <sluice/error.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "api/job_library.h"
#include "cli/cli.h"
#include "core/alloc.h"

static void usage(void) {
    fprintf(stderr,
            "usage: sluice run [options] wordcount [--input FILE] [--lines N] [--output FILE]\n"
            "       sluice run [options] JOB.so [job arguments...]\n"
            "options: -c FILE  -D key=value  -p N  --progress  --no-progress  --quiet\n"
            "         --jobmanager HOST:PORT   run on a cluster instead of the embedded mini-cluster\n"
            "         --target local|slurm     run on a JobManager of its own, TaskManagers started for it\n");
}

static int build_wordcount(sl_job_t *job, int argc, char **argv) {
    const char *input = NULL, *output = NULL;
    uint64_t lines = 100000;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
            input = argv[++i];
        else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc)
            output = argv[++i];
        else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc)
            lines = sl_cli_parse_u64("--lines", argv[++i], 1, UINT64_MAX);
        else
            sl_cli_die(2, "wordcount: unknown argument '%s' (expected --input FILE, --lines N, --output FILE)",
                       argv[i]);
    }
    sl_stream_t *text = input ? sl_source_lines(job, "lines", input)
                              : sl_source_generator(job, "text", "sl_builtin_text_generator", "line:string", lines);
    sl_stream_t *words = sl_stream_flat_map(text, "split", "sl_builtin_split_words", "word:string");
    sl_stream_t *counts = sl_stream_aggregate(sl_stream_key_by(words, "word"), "count", "count()");
    sl_stream_t *final = sl_stream_process(sl_stream_key_by(counts, "word"), "final-count", "sl_nexmark_latest",
                                           "sl_nexmark_latest_timer", NULL);
    sl_stream_t *sink = output ? sl_sink_csv(final, "result", output) : sl_sink_print(final, "print");
    sl_stream_parallelism(sink, 1);
    return sl_job_error(job) ? SL_EJOB : 0;
}

int sl_cmd_run(int argc, char **argv) {
    sl_cli_run_opts_t o = {.progress = isatty(STDERR_FILENO)};
    if (sl_config_create(&o.config) != 0)
        sl_cli_die(1, "out of memory");
    int i = 1;
    const char *jobmanager = NULL, *target = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        }
        if (strcmp(argv[i], "--jobmanager") == 0 && i + 1 < argc) {
            jobmanager = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
            target = argv[++i];
            continue;
        }
        if (!sl_cli_common_option(&o, argc, argv, &i)) {
            usage();
            sl_cli_die(2, "run: unknown option '%s'", argv[i]);
        }
    }
    if (i >= argc) {
        usage();
        sl_cli_die(2, "run: which job? give 'wordcount' or the path of a job library");
    }
    const char *what = argv[i++];
    sl_job_t *job;
    if (sl_job_create(what, &job) != 0)
        sl_cli_die(1, "out of memory");
    int rc;
    if (strcmp(what, "wordcount") == 0) {
        rc = build_wordcount(job, argc - i, argv + i);
    } else {
        char err[1024];
        rc = sl_job_build_from_library(job, what, argc - i + 1, argv + i - 1, err, sizeof err);
        if (rc)
            sl_cli_die(2, "run: %s", err);
        o.user_lib = sl_job_library_handle(job);
    }
    if (rc || sl_job_error(job))
        sl_cli_die(2, "invalid job: %s", sl_job_error(job) ? sl_job_error(job) : sl_strerror(rc));
    int status = target       ? sl_cli_run_per_job(job, &o, target)
                 : jobmanager ? sl_cli_submit(job, &o, jobmanager)
                              : sl_cli_execute(job, &o);
    sl_job_destroy(job);
    sl_config_destroy(o.config);
    /* The library stays loaded until exit: operators may still reference its symbols. */
    return status;
}
