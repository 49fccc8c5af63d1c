/* Example job library: event-time windows over generated sensor readings.
 *
 * Run: sluice run build/examples/sensor_job.so [--readings N] [--output FILE]
 *
 * A user generator produces readings (sensor id, temperature, event time) that arrive up to
 * 2 s out of order; watermarks trail the largest event time by 2 s. Per sensor, a tumbling
 * 10 s event-time window computes count, average and maximum temperature, and with a user
 * aggregate (sensor_spread) the spread max - min; a user filter keeps the windows whose
 * maximum crossed 30 degrees. Everything here is deterministic: the same
 * readings give the same windows however the job is parallelized. */
#include <sluice/error.h>
#include <sluice/job.h>

#include <stdlib.h>
#include <string.h>

int sensor_reading(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int sensor_hot(sl_fn_ctx_t *ctx, const sl_row_t *in);
int sluice_job_main(sl_job_t *job, int argc, char **argv);

/* A user aggregate: plain bytes as accumulator (it lives in keyed state), and a merge so it
 * also works in session windows and sliced sliding windows. */
typedef struct {
    double min, max;
    int64_t n;
} spread_acc_t;

static void spread_init(void *acc) { memset(acc, 0, sizeof(spread_acc_t)); }

static void spread_add(void *acc, const sl_row_t *in) {
    spread_acc_t *a = acc;
    double t = sl_row_f64(in, 1);
    if (a->n == 0 || t < a->min)
        a->min = t;
    if (a->n == 0 || t > a->max)
        a->max = t;
    a->n++;
}

static void spread_merge(void *acc, const void *other) {
    const spread_acc_t *b = other;
    spread_acc_t *a = acc;
    if (b->n == 0)
        return;
    if (a->n == 0 || b->min < a->min)
        a->min = b->min;
    if (a->n == 0 || b->max > a->max)
        a->max = b->max;
    a->n += b->n;
}

static void spread_result(const void *acc, sl_row_builder_t *out, uint32_t field) {
    const spread_acc_t *a = acc;
    sl_row_set_f64(out, field, a->n ? a->max - a->min : 0.0);
}

const sl_aggregate_t sensor_spread = {sizeof(spread_acc_t), spread_init, spread_add, spread_merge, spread_result,
                                      SL_TYPE_DOUBLE};

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Reading `seq`: one every 10 ms of event time from 16 sensors, jittered by up to 2 s. */
int sensor_reading(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    uint64_t h = mix(seq + 1);
    int64_t t = 1700000000000LL + (int64_t)seq * 10 - (int64_t)(h % 2000);
    sl_row_set_i64(out, 0, (int64_t)(h >> 20) % 16);
    /* Quarter degrees are exact in binary, so sums (and averages) do not depend on the
     * order rows arrive in, whatever the parallelism. */
    sl_row_set_f64(out, 1, 15.0 + (double)((h >> 8) % 80) * 0.25);
    sl_row_set_ts(out, 2, t);
    *ts = t;
    return 1;
}

/* Field 4 is max(temperature) of the window rows (sensor, start, end, count, max, avg, spread). */
int sensor_hot(sl_fn_ctx_t *ctx, const sl_row_t *in) { return sl_row_f64(in, 4) > 30.0; }

int sluice_job_main(sl_job_t *job, int argc, char **argv) {
    uint64_t readings = 200000;
    const char *output = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--readings") == 0 && i + 1 < argc)
            readings = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc)
            output = argv[++i];
        else
            return SL_EINVAL;
    }
    sl_stream_t *s = sl_source_generator(job, "readings", "sensor_reading",
                                         "sensor:int64,temperature:double,time:timestamp", readings);
    s = sl_stream_watermarks(s, "time", 2000, 0);
    sl_window_spec_t w = {.kind = SL_WINDOW_TUMBLING, .time = SL_TIME_EVENT, .size_ms = 10000};
    s = sl_stream_window_aggregate(sl_stream_key_by(s, "sensor"), "per-sensor-10s", &w,
                                   "count(), max(temperature), avg(temperature), agg(sensor_spread)");
    s = sl_stream_filter(s, "hot", "sensor_hot");
    sl_stream_t *sink = output ? sl_sink_csv(s, "alerts", output) : sl_sink_print(s, "alerts");
    sl_stream_parallelism(sink, 1);
    return sl_job_error(job) ? SL_EJOB : 0;
}
