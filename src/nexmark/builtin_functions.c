/* User functions of the built-in word count job (`sluice run wordcount`). */
#include <sluice/function.h>

#include <stdio.h>
#include <string.h>

int sl_builtin_text_generator(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts);
int sl_builtin_split_words(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_collector_t *out);

static const char *const vocabulary[] = {
    "stream", "state", "window", "watermark", "checkpoint", "barrier", "slot", "task",
    "operator", "key", "group", "record", "buffer", "credit", "region", "failover",
    "savepoint", "rescale", "latency", "throughput", "sluice", "river", "flow", "gate"};

/* Line `seq` is 8 words picked by a fixed mixing of seq, so any split of the sequence
 * produces the same text. */
int sl_builtin_text_generator(sl_fn_ctx_t *ctx, uint64_t seq, sl_row_builder_t *out, int64_t *ts) {
    char line[256];
    size_t off = 0;
    uint64_t x = seq * 0x9E3779B97F4A7C15ull + 1;
    for (int w = 0; w < 8; w++) {
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 27;
        const char *word = vocabulary[x % (sizeof vocabulary / sizeof vocabulary[0])];
        off += (size_t)snprintf(line + off, sizeof line - off, "%s%s", w ? " " : "", word);
    }
    sl_row_set_str(out, 0, line, (uint32_t)off);
    return 1;
}

int sl_builtin_split_words(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_collector_t *out) {
    uint32_t len;
    const char *s = sl_row_str(in, 0, &len);
    uint32_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '.'))
            i++;
        uint32_t start = i;
        while (i < len && !(s[i] == ' ' || s[i] == '\t' || s[i] == ',' || s[i] == '.'))
            i++;
        if (i > start) {
            sl_row_builder_t *b = sl_collector_row(out);
            sl_row_set_str(b, 0, s + start, i - start);
            int rc = sl_collector_emit(out);
            if (rc)
                return rc;
        }
    }
    return 0;
}
