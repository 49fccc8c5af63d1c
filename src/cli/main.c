/* The `sluice` command line: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: sluice <command> [options]\n"
            "commands:\n"
            "  run       run a built-in job (wordcount) or a job library (job.so) on the mini-cluster\n"
            "  nexmark   run a Nexmark query (q0 q1 q2 q3 q4 q5 q7 q8 q13) on generated events\n"
            "  jobmanager   run a JobManager (ResourceManager; driver standalone, local or slurm)\n"
            "  taskmanager  run a TaskManager that registers with a JobManager\n"
            "  list      list the jobs of a JobManager (--jobmanager HOST:PORT)\n"
            "  cancel    cancel a job on a JobManager (JOB --jobmanager HOST:PORT)\n"
            "  savepoint take a savepoint of a running job (JOB [DIR] --jobmanager HOST:PORT)\n"
            "  stop      stop a job with a savepoint (JOB [--savepoint DIR] --jobmanager HOST:PORT)\n"
            "  version   print the version\n"
            "Run 'sluice <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return sl_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "nexmark") == 0)
        return sl_cmd_nexmark(argc - 1, argv + 1);
    if (strcmp(cmd, "jobmanager") == 0)
        return sl_cmd_jobmanager(argc - 1, argv + 1);
    if (strcmp(cmd, "taskmanager") == 0)
        return sl_cmd_taskmanager(argc - 1, argv + 1);
    if (strcmp(cmd, "list") == 0)
        return sl_cmd_list(argc - 1, argv + 1);
    if (strcmp(cmd, "cancel") == 0)
        return sl_cmd_cancel(argc - 1, argv + 1);
    if (strcmp(cmd, "savepoint") == 0)
        return sl_cmd_savepoint(argc - 1, argv + 1);
    if (strcmp(cmd, "stop") == 0)
        return sl_cmd_stop(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("sluice 0.1.0\n");
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "sluice: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
