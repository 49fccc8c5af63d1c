/* Example job library: a fast generator, a keyBy, and a deliberately slow sink (backpressure).
 *
 * Run: sluice run build/examples/slow_sink_job.so [--rows N] [--sink-rate R] [--slow-subtask K]
 *                                                 [--stats DIR]
 *
 * The source generates 100-byte rows (key, seq, 68-byte payload) as fast as it may, N of them
 * (0, the default, = unbounded). They are keyed by `key` to a user sink that consumes at most
 * R rows per second per subtask (default 2000) by sleeping whenever it is ahead of that
 * schedule; with --slow-subtask K only sink subtask K is throttled, the others take rows as
 * they come. Nothing buffers rows outside the engine, so the source can only run ahead of the
 * sink by what the engine's network buffers hold: its rate must fall to the sink's.
 *
 * With --stats DIR every subtask keeps a file DIR/<source|sink>-<subtask> up to date (at most
 * 50 writes a second, written whole and renamed into place) holding one line
 * "<rows> <pid>": the rows that subtask produced or consumed so far and the process it runs
 * in. tests/integration/cluster_backpressure.sh reads them to compare the source's progress
 * with the sink's and to see which TaskManager process runs which subtask. */
#include <sluice/error.h>
#include <sluice/job.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int slow_sink_row(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int slow_sink_consume(sl_fn_ctx_t *ctx, const sl_row_t *in, int64_t ts);
int sluice_job_main(sl_job_t *job, int argc, char **argv);

#define MAX_SUBTASKS 64
#define PAYLOAD "backpressure-test-payload-0123456789-abcdefghijklmnopqrstuvwxyz-0123"

/* Per subtask of one operator, in this process. Each subtask runs on one thread, so only that
 * thread touches its entry. */
typedef struct {
    uint64_t rows;
    int64_t start_ns, last_write_ns;
} progress_t;

static progress_t sources[MAX_SUBTASKS], sinks[MAX_SUBTASKS];

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Writes DIR/<what>-<subtask> when the operator has a "stats" parameter and the last write is
 * 20 ms old (or `force`). */
static void publish(sl_fn_ctx_t *ctx, const char *what, progress_t *p, int64_t now, int force) {
    const char *dir = sl_fn_param(ctx, "stats");
    if (dir == NULL || dir[0] == '\0' || (!force && now - p->last_write_ns < 20000000))
        return;
    p->last_write_ns = now;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s-%u", dir, what, sl_fn_subtask_index(ctx));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "%llu %ld\n", (unsigned long long)p->rows, (long)getpid());
    if (fclose(f) == 0)
        rename(tmp, path);
}

/* Row `seq`: 8-byte header + 3 fields of 8 bytes + the 68-byte payload = 100 bytes. */
int slow_sink_row(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    (void)ts;
    uint32_t k = sl_fn_subtask_index(ctx);
    if (k >= MAX_SUBTASKS)
        return sl_fn_fail(ctx, SL_EINVAL, "at most %d source subtasks", MAX_SUBTASKS);
    sl_row_set_i64(out, 0, (int64_t)(seq % 1024));
    sl_row_set_i64(out, 1, (int64_t)seq);
    sl_row_set_str(out, 2, PAYLOAD, (uint32_t)strlen(PAYLOAD));
    /* The generator calls this for the row it is about to emit; the emit blocks while the
     * output has no buffer, so this count runs ahead of what was emitted by one row at most. */
    progress_t *p = &sources[k];
    p->rows++;
    if ((p->rows & 63) == 1)
        publish(ctx, "source", p, now_ns(), p->rows == 1);
    return 1;
}

int slow_sink_consume(sl_fn_ctx_t *ctx, const sl_row_t *in, int64_t ts) {
    (void)in;
    (void)ts;
    uint32_t k = sl_fn_subtask_index(ctx);
    if (k >= MAX_SUBTASKS)
        return sl_fn_fail(ctx, SL_EINVAL, "at most %d sink subtasks", MAX_SUBTASKS);
    progress_t *p = &sinks[k];
    int64_t now = now_ns();
    if (p->rows == 0)
        p->start_ns = now;
    p->rows++;
    const char *slow = sl_fn_param(ctx, "slow-subtask");
    const char *r = sl_fn_param(ctx, "rate");
    long rate = r ? atol(r) : 0;
    if (rate > 0 && (slow == NULL || atol(slow) < 0 || (uint32_t)atol(slow) == k)) {
        /* Row n is due at start + n / rate: sleep until then when ahead. */
        int64_t due = p->start_ns + (int64_t)(p->rows * 1000000000ull / (uint64_t)rate);
        if (due > now) {
            struct timespec d = {(time_t)((due - now) / 1000000000), (long)((due - now) % 1000000000)};
            nanosleep(&d, NULL);
            now = due;
        }
    }
    publish(ctx, "sink", p, now, p->rows == 1);
    return 0;
}

int sluice_job_main(sl_job_t *job, int argc, char **argv) {
    const char *rows = "0", *rate = "2000", *slow = "-1", *stats = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            rows = argv[++i];
        else if (strcmp(argv[i], "--sink-rate") == 0 && i + 1 < argc)
            rate = argv[++i];
        else if (strcmp(argv[i], "--slow-subtask") == 0 && i + 1 < argc)
            slow = argv[++i];
        else if (strcmp(argv[i], "--stats") == 0 && i + 1 < argc)
            stats = argv[++i];
        else
            return SL_EINVAL;
    }
    sl_stream_t *s = sl_source_generator(job, "rows", "slow_sink_row", "key:int64,seq:int64,payload:string",
                                         strtoull(rows, NULL, 10));
    s = sl_stream_param(s, "stats", stats);
    sl_stream_t *sink = sl_sink_function(sl_stream_key_by(s, "key"), "slow-sink", "slow_sink_consume");
    sink = sl_stream_param(sink, "rate", rate);
    sink = sl_stream_param(sink, "slow-subtask", slow);
    sl_stream_param(sink, "stats", stats);
    return sl_job_error(job) ? SL_EJOB : 0;
}
