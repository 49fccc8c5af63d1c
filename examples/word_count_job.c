/* Example job library: word count.
 *
 * Build: the project's build makes build/examples/word_count_job.so (or by hand:
 *   cc -shared -fPIC -Iinclude -o word_count_job.so examples/word_count_job.c)
 * Run:   sluice run build/examples/word_count_job.so --input README.md
 *
 * It reads text lines, splits them into words with a user flatMap, counts words per key with
 * a rolling count, and prints each word's final count when the input ends. */
#include <sluice/error.h>
#include <sluice/job.h>

#include <ctype.h>
#include <string.h>

/* Functions are exported by name; the engine finds them with dlsym. */
int wc_split(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_collector_t *out);
int wc_remember(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int wc_emit_final(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out);
int sluice_job_main(sl_job_t *job, int argc, char **argv);

/* Lower-cases letters and digits into words; everything else separates them. */
int wc_split(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_collector_t *out) {
    uint32_t len;
    const char *s = sl_row_str(in, 0, &len);
    char word[128];
    uint32_t n = 0;
    for (uint32_t i = 0; i <= len; i++) {
        if (i < len && isalnum((unsigned char)s[i])) {
            if (n < sizeof word)
                word[n++] = (char)tolower((unsigned char)s[i]);
            continue;
        }
        if (n > 0) {
            sl_row_builder_t *b = sl_collector_row(out);
            sl_row_set_str(b, 0, word, n);
            int rc = sl_collector_emit(out);
            if (rc)
                return rc;
            n = 0;
        }
    }
    return 0;
}

/* Keeps the latest count of each word in keyed state; a timer at the end of time fires when
 * the bounded input is exhausted, so each word is printed once with its final count. */
int wc_remember(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    int rc = sl_fn_value_put(ctx, "latest", in->data, in->len);
    return rc ? rc : sl_fn_timer_event(ctx, INT64_MAX);
}

int wc_emit_final(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out) {
    const void *p;
    uint32_t len;
    int rc = sl_fn_value_get(ctx, "latest", &p, &len);
    if (rc <= 0)
        return rc;
    sl_row_t row = {p, len};
    return sl_collector_emit_row(out, &row);
}

int sluice_job_main(sl_job_t *job, int argc, char **argv) {
    const char *input = NULL, *output = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
            input = argv[++i];
        else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc)
            output = argv[++i];
        else
            return SL_EINVAL;
    }
    if (input == NULL)
        return SL_EINVAL;
    sl_stream_t *lines = sl_source_lines(job, "lines", input);
    sl_stream_t *words = sl_stream_flat_map(lines, "split", "wc_split", "word:string");
    sl_stream_t *counts = sl_stream_aggregate(sl_stream_key_by(words, "word"), "count", "count()");
    sl_stream_t *final = sl_stream_process(sl_stream_key_by(counts, "word"), "final", "wc_remember",
                                           "wc_emit_final", NULL);
    sl_stream_t *sink = output ? sl_sink_csv(final, "result", output) : sl_sink_print(final, "print");
    sl_stream_parallelism(sink, 1);
    return sl_job_error(job) ? SL_EJOB : 0;
}
