/* Nexmark queries as jobs (see nexmark_queries.h). Semantics follow the Nexmark SQL used by
 * Flink's nexmark benchmark; the watermark is max(dateTime) - 4 s on every source. */
#include "nexmark/nexmark_queries.h"

#include <sluice/async.h>
#include <sluice/error.h>

#include <stdio.h>
#include <string.h>

#define WATERMARK_DELAY_MS 4000

static sl_stream_t *source(sl_job_t *job, const char *table, const sl_nexmark_opts_t *o) {
    char name[32];
    snprintf(name, sizeof name, "nexmark-%s", table);
    sl_stream_t *s = sl_source_nexmark(job, name, table, o->events, o->rate);
    return sl_stream_watermarks(s, "dateTime", WATERMARK_DELAY_MS, 0);
}

static sl_stream_t *sink(sl_stream_t *s, const sl_nexmark_opts_t *o) {
    /* One file for the final result: the sink runs with parallelism 1. */
    if (o->output)
        return sl_stream_parallelism(sl_sink_csv(s, "result", o->output), 1);
    return sl_sink_discard(s, "discard");
}

static sl_stream_t *q0(sl_job_t *job, const sl_nexmark_opts_t *o) {
    return sl_stream_project(source(job, "bid", o), "q0-project", "auction,bidder,price,dateTime,extra");
}

static sl_stream_t *q1(sl_job_t *job, const sl_nexmark_opts_t *o) {
    return sl_stream_map(source(job, "bid", o), "q1-currency", "sl_nexmark_q1_map",
                         "auction:int64,bidder:int64,price:double,dateTime:timestamp,extra:string");
}

static sl_stream_t *q2(sl_job_t *job, const sl_nexmark_opts_t *o) {
    sl_stream_t *s = sl_stream_filter(source(job, "bid", o), "q2-filter", "sl_nexmark_q2_filter");
    return sl_stream_project(s, "q2-project", "auction,price");
}

static sl_stream_t *q3(sl_job_t *job, const sl_nexmark_opts_t *o) {
    sl_stream_t *p = sl_stream_filter(source(job, "person", o), "q3-persons", "sl_nexmark_q3_person_filter");
    sl_stream_t *a = sl_stream_filter(source(job, "auction", o), "q3-auctions", "sl_nexmark_q3_auction_filter");
    return sl_stream_co_process(sl_stream_key_by(p, "id"), sl_stream_key_by(a, "seller"), "q3-join",
                                "sl_nexmark_q3_join", NULL, "name:string,city:string,state:string,id:int64");
}

static sl_stream_t *q4(sl_job_t *job, const sl_nexmark_opts_t *o) {
    sl_stream_t *a = source(job, "auction", o), *b = source(job, "bid", o);
    sl_stream_t *m = sl_stream_co_process(sl_stream_key_by(a, "id"), sl_stream_key_by(b, "auction"), "q4-max-price",
                                          "sl_nexmark_q4_max", NULL, "category:int64,old:int64?,final:int64");
    sl_stream_t *avg = sl_stream_process(sl_stream_key_by(m, "category"), "q4-avg", "sl_nexmark_q4_avg", NULL,
                                         "category:int64,avg:double");
    if (o->output == NULL)
        return avg;
    return sl_stream_process(sl_stream_key_by(avg, "category"), "q4-final", "sl_nexmark_latest",
                             "sl_nexmark_latest_timer", NULL);
}

static sl_stream_t *q5(sl_job_t *job, const sl_nexmark_opts_t *o) {
    sl_window_spec_t hop = {.kind = SL_WINDOW_SLIDING, .time = SL_TIME_EVENT, .size_ms = 10000, .slide_ms = 2000};
    /* Only auction and dateTime cross the network, as in Flink's plan for the Nexmark SQL
     * (projection pushed below the exchange). */
    sl_stream_t *bids = sl_stream_project(source(job, "bid", o), "q5-project", "auction,dateTime");
    sl_stream_t *counts = sl_stream_window_aggregate(sl_stream_key_by(bids, "auction"), "q5-count", &hop, "count()");
    return sl_stream_process(sl_stream_key_by(counts, "window_end"), "q5-hot", "sl_nexmark_q5_hot",
                             "sl_nexmark_q5_timer", "auction:int64,num:int64");
}

static sl_stream_t *q7(sl_job_t *job, const sl_nexmark_opts_t *o) {
    sl_stream_t *s = sl_stream_flat_map(source(job, "bid", o), "q7-assign", "sl_nexmark_q7_assign",
                                        "auction:int64,price:int64,bidder:int64,dateTime:timestamp,extra:string,"
                                        "win:int64,boundary:bool");
    return sl_stream_process(sl_stream_key_by(s, "win"), "q7-max", "sl_nexmark_q7_max", "sl_nexmark_q7_timer",
                             "auction:int64,price:int64,bidder:int64,dateTime:timestamp,extra:string");
}

static sl_stream_t *q8(sl_job_t *job, const sl_nexmark_opts_t *o) {
    sl_stream_t *p = source(job, "person", o), *a = source(job, "auction", o);
    return sl_stream_co_process(sl_stream_key_by(p, "id"), sl_stream_key_by(a, "seller"), "q8-join",
                                "sl_nexmark_q8_join", NULL, "id:int64,name:string,starttime:timestamp");
}

/* q13, the bounded side-input join, with the side input in Redis (key nexmark:side:<k>) read
 * by the async lookup: the enrichment pattern async I/O exists for. Retries and capacity come
 * from the options (nexmark.q13.* in the configuration, see docs/nexmark.md). */
static sl_stream_t *q13(sl_job_t *job, const sl_nexmark_opts_t *o) {
    sl_stream_t *keyed = sl_stream_map(source(job, "bid", o), "q13-key", "sl_nexmark_q13_key",
                                       "auction:int64,bidder:int64,price:int64,dateTime:timestamp,side_key:int64");
    sl_async_options_t a = o->async;
    sl_stream_t *joined = sl_stream_redis_lookup(keyed, "q13-side-input", o->redis_address, SL_REDIS_GET, "side_key",
                                                 "nexmark:side:", NULL, &a);
    return sl_stream_project(joined, "q13-project", "auction,bidder,price,dateTime,value");
}

static const struct {
    const char *name;
    sl_stream_t *(*build)(sl_job_t *, const sl_nexmark_opts_t *);
} queries[] = {{"q0", q0}, {"q1", q1}, {"q2", q2}, {"q3", q3}, {"q4", q4}, {"q5", q5}, {"q7", q7}, {"q8", q8}, {"q13", q13}};

const char *sl_nexmark_query_names(void) { return "q0 q1 q2 q3 q4 q5 q7 q8 q13"; }

int sl_nexmark_build(sl_job_t *job, const sl_nexmark_opts_t *o, char *err, size_t errlen) {
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        if (strcmp(queries[i].name, o->query) != 0)
            continue;
        if (strcmp(o->query, "q13") == 0 && o->redis_address == NULL) {
            snprintf(err, errlen, "q13 reads its side input from Redis: give --redis HOST:PORT");
            return SL_EINVAL;
        }
        if (o->parallelism)
            sl_job_set_parallelism(job, o->parallelism);
        sl_stream_t *s = sink(queries[i].build(job, o), o);
        if (s == NULL) {
            snprintf(err, errlen, "%s", sl_job_error(job) ? sl_job_error(job) : "cannot build the query");
            return SL_EJOB;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown Nexmark query '%s' (known: %s)", o->query, sl_nexmark_query_names());
    return SL_EINVAL;
}
