/* Nexmark throughput benchmark.
 *
 * Runs `sluice nexmark --query Q --events N --parallelism P` as a child process for each query
 * and parallelism, and measures wall time and CPU time (user + system, from wait4) of the whole
 * process. Prints events/s, CPU-seconds, events/s per core (events / CPU-seconds), and the same
 * figures for the generator alone feeding a discarding sink (query "gen"), measured in the same
 * run: the ceiling of this machine for a bid-only pipeline. Each figure is the median of
 * SL_BENCH_REPEAT runs (default 3) by CPU time: the machines are shared and noisy.
 *
 * usage: nexmark_bench SLUICE_BINARY [EVENTS] [queries...] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    double wall_s;
    double cpu_s;
    int status;
} run_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static run_t run(const char *bin, const char *query, uint64_t events, int par) {
    char ev[32], p[16];
    snprintf(ev, sizeof ev, "%" PRIu64, events);
    snprintf(p, sizeof p, "%d", par);
    run_t r = {0};
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        execl(bin, bin, "nexmark", "--query", query, "--events", ev, "--parallelism", p, "--quiet",
              "-D", "minicluster.number-of-taskmanagers=1", "-D", "taskmanager.numberOfTaskSlots=8", (char *)NULL);
        _exit(127);
    }
    struct rusage ru;
    int st;
    if (pid < 0 || wait4(pid, &st, 0, &ru) < 0) {
        r.status = -1;
        return r;
    }
    r.wall_s = now_s() - t0;
    r.cpu_s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

static int by_cpu(const void *a, const void *b) {
    double x = ((const run_t *)a)->cpu_s, y = ((const run_t *)b)->cpu_s;
    return (x > y) - (x < y);
}

static run_t run_median(const char *bin, const char *query, uint64_t events, int par, int reps) {
    run_t r[16];
    for (int i = 0; i < reps; i++) {
        r[i] = run(bin, query, events, par);
        if (r[i].status != 0)
            return r[i];
    }
    qsort(r, (size_t)reps, sizeof r[0], by_cpu);
    return r[reps / 2];
}

static void report(const char *query, int par, uint64_t events, run_t r, double ceiling_per_core) {
    if (r.status != 0) {
        printf("%-5s p=%d  FAILED (exit %d)\n", query, par, r.status);
        return;
    }
    double eps = events / r.wall_s, per_core = events / r.cpu_s;
    printf("%-5s p=%d  %10.0f events/s  %7.2f CPU-s  %10.0f events/s/core", query, par, eps, r.cpu_s, per_core);
    if (ceiling_per_core > 0)
        printf("  %5.2fx of generator ceiling", per_core / ceiling_per_core);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SLUICE_BINARY [EVENTS] [queries...]\n", argv[0]);
        return 2;
    }
    const char *bin = argv[1];
    uint64_t events = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000;
    const char *all[] = {"q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"};
    const char **queries = argc > 3 ? (const char **)argv + 3 : all;
    int nq = argc > 3 ? argc - 3 : (int)(sizeof all / sizeof all[0]);
    const char *rep = getenv("SL_BENCH_REPEAT");
    int reps = rep ? atoi(rep) : 3;
    if (reps < 1 || reps > 16)
        reps = 3;
    printf("Nexmark, %" PRIu64 " events per run, median of %d runs, %ld cores online\n", events, reps,
           sysconf(_SC_NPROCESSORS_ONLN));
    for (int par = 1; par <= 2; par++) {
        run_t g = run_median(bin, "gen", events, par, reps);
        report("gen", par, events, g, 0);
        double ceiling = g.status == 0 ? events / g.cpu_s : 0;
        for (int q = 0; q < nq; q++)
            report(queries[q], par, events, run_median(bin, queries[q], events, par, reps), ceiling);
    }
    return 0;
}
