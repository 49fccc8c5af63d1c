/* `sluice nexmark`: runs a Nexmark query over generated events on the mini-cluster.
 *
 *   sluice nexmark --query qN --events N [--rate R] [--parallelism P] [--output results.csv]
 *                  [--dump-events DIR] [-c FILE] [-D key=value]...
 *
 * --dump-events writes the very events the run generates (person.csv, auction.csv, bid.csv)
 * so that a reference implementation can recompute the result independently. */
#include <sluice/error.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "connectors/nexmark_csv.h"
#include "connectors/nexmark_gen.h"
#include "nexmark/nexmark_queries.h"

static void usage(void) {
    fprintf(stderr,
            "usage: sluice nexmark --query QUERY --events N [--rate EVENTS_PER_S] [--parallelism P] [--redis HOST:PORT]\n"
            "                      [--output FILE.csv] [--dump-events DIR] [--jobmanager HOST:PORT | --target local|slurm]\n"
            "                      [-c FILE] [-D key=value]...\n"
            "queries: %s (and 'gen': the generator alone into a discarding sink)\n",
            sl_nexmark_query_names());
}

/* Writes the whole event sequence (all tables) exactly as the sources generate it. */
static int dump_events(const char *dir, uint64_t events, uint64_t rate) {
    sl_nexmark_config_t cfg;
    sl_nexmark_config_default(&cfg);
    cfg.max_events = events;
    if (rate)
        cfg.first_event_rate = rate;
    sl_nexmark_gen_t gen;
    char err[512];
    int rc = sl_nexmark_gen_init(&gen, &cfg, 0, 1);
    if (rc) {
        fprintf(stderr, "sluice: nexmark generator: %s\n", sl_strerror(rc));
        return rc;
    }
    sl_nexmark_csv_t w;
    if ((rc = sl_nexmark_csv_open(&w, dir, err, sizeof err)) != 0) {
        fprintf(stderr, "sluice: --dump-events: %s\n", err);
        return rc;
    }
    sl_nexmark_event_t ev;
    while (rc == 0 && sl_nexmark_gen_next(&gen, &ev) == 1)
        rc = sl_nexmark_csv_write(&w, &ev);
    int crc = sl_nexmark_csv_close(&w);
    if (rc || crc) {
        fprintf(stderr, "sluice: --dump-events: writing to '%s' failed: %s\n", dir, sl_strerror(rc ? rc : crc));
        return rc ? rc : crc;
    }
    return 0;
}

/* Options of the built-in lookups (q13) from table.exec.async-lookup.*. */
static sl_async_options_t lookup_options(const sl_config_t *c) {
    sl_async_options_t a = sl_async_options_default();
    a.capacity = (uint32_t)sl_config_int(c, "table.exec.async-lookup.buffer-capacity");
    a.timeout_ms = sl_config_duration_ms(c, "table.exec.async-lookup.timeout");
    a.mode = strcmp(sl_config_str(c, "table.exec.async-lookup.output-mode"), "unordered") == 0 ? SL_ASYNC_UNORDERED
                                                                                               : SL_ASYNC_ORDERED;
    const char *retry = sl_config_str(c, "table.exec.async-lookup.retry-strategy");
    if (strcmp(retry, "none") != 0) {
        a.retry = strcmp(retry, "fixed-delay") == 0 ? SL_ASYNC_RETRY_FIXED : SL_ASYNC_RETRY_EXPONENTIAL;
        a.retry_on_error = 1;
        a.max_attempts = (uint32_t)sl_config_int(c, "table.exec.async-lookup.max-attempts");
        a.retry_delay_ms = sl_config_duration_ms(c, "table.exec.async-lookup.retry-delay");
        a.retry_max_delay_ms = sl_config_duration_ms(c, "table.exec.async-lookup.retry-max-delay");
        a.retry_multiplier = 2.0;
    }
    return a;
}

int sl_cmd_nexmark(int argc, char **argv) {
    sl_cli_run_opts_t o = {.progress = isatty(STDERR_FILENO)};
    if (sl_config_create(&o.config) != 0)
        sl_cli_die(1, "out of memory");
    sl_nexmark_opts_t n = {.query = NULL, .events = 0};
    const char *dump = NULL, *jobmanager = NULL, *target = NULL;
    bool have_events = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else if (strcmp(a, "--query") == 0 || strcmp(a, "-q") == 0) {
            if (v == NULL)
                sl_cli_die(2, "option %s needs a value", a);
            n.query = v;
            i++;
        } else if (strcmp(a, "--events") == 0) {
            n.events = sl_cli_parse_u64(a, v, 0, UINT64_MAX / 2);
            have_events = true;
            i++;
        } else if (strcmp(a, "--rate") == 0) {
            n.rate = sl_cli_parse_u64(a, v, 1, 1000000000);
            i++;
        } else if (strcmp(a, "--output") == 0 || strcmp(a, "-o") == 0) {
            if (v == NULL)
                sl_cli_die(2, "option %s needs a value", a);
            n.output = v;
            i++;
        } else if (strcmp(a, "--dump-events") == 0) {
            if (v == NULL)
                sl_cli_die(2, "option %s needs a value", a);
            dump = v;
            i++;
        } else if (strcmp(a, "--target") == 0) {
            if (v == NULL)
                sl_cli_die(2, "option %s needs a value", a);
            target = v;
            i++;
        } else if (strcmp(a, "--jobmanager") == 0) {
            if (v == NULL)
                sl_cli_die(2, "option %s needs a value", a);
            jobmanager = v;
            i++;
        } else if (strcmp(a, "--redis") == 0) {
            if (v == NULL)
                sl_cli_die(2, "option %s needs a value", a);
            n.redis_address = v;
            i++;
        } else if (strcmp(a, "--parallelism") == 0 || strcmp(a, "-p") == 0) {
            n.parallelism = (uint32_t)sl_cli_parse_u64(a, v, 1, 32768);
            i++;
        } else if (!sl_cli_common_option(&o, argc, argv, &i)) {
            usage();
            sl_cli_die(2, "nexmark: unknown option '%s'", a);
        }
    }
    if (n.query == NULL) {
        usage();
        sl_cli_die(2, "nexmark: --query is required");
    }
    if (!have_events && n.output)
        sl_cli_die(2, "nexmark: --output needs a bounded run: give --events N");
    if (dump && !have_events)
        sl_cli_die(2, "nexmark: --dump-events needs a bounded run: give --events N");
    sl_job_t *job;
    if (sl_job_create(n.query, &job) != 0)
        sl_cli_die(1, "out of memory");
    char err[1024];
    int rc;
    if (strcmp(n.query, "gen") == 0) {
        /* The ceiling: generating bids into a sink that only counts them. */
        if (n.parallelism)
            sl_job_set_parallelism(job, n.parallelism);
        sl_sink_discard(sl_source_nexmark(job, "nexmark-bid", "bid", n.events, n.rate), "discard");
        rc = sl_job_error(job) ? SL_EJOB : 0;
        snprintf(err, sizeof err, "%s", sl_job_error(job) ? sl_job_error(job) : "");
    } else {
        n.async = lookup_options(o.config);
        rc = sl_nexmark_build(job, &n, err, sizeof err);
    }
    if (rc)
        sl_cli_die(2, "nexmark: %s", err);
    if (dump && dump_events(dump, n.events, n.rate) != 0)
        return 1;
    int status = target       ? sl_cli_run_per_job(job, &o, target)
                 : jobmanager ? sl_cli_submit(job, &o, jobmanager)
                              : sl_cli_execute(job, &o);
    sl_job_destroy(job);
    sl_config_destroy(o.config);
    return status;
}
