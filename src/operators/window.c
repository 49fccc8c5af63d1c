/* Window assignment (see window.h). Window starts are aligned to the epoch, as in Flink
 * (offset 0): a tumbling window of 10 s holds [10k s, 10(k+1) s). */
#include "operators/window.h"

#include <sluice/error.h>

#include <stdio.h>
#include <string.h>

static int64_t floor_to(int64_t ts, int64_t step) {
    int64_t r = ts % step;
    return ts - (r < 0 ? r + step : r);
}

int sl_window_spec_to_params(const sl_window_spec_t *w, sl_params_t *p, char *err, size_t errlen) {
    static const char *const kinds[] = {"tumbling", "sliding", "session"};
    if ((unsigned)w->kind > SL_WINDOW_SESSION || (unsigned)w->time > SL_TIME_PROCESSING) {
        snprintf(err, errlen, "unknown window kind or time");
        return SL_EJOB;
    }
    if (w->kind != SL_WINDOW_SESSION && w->size_ms <= 0) {
        snprintf(err, errlen, "%s window: size must be > 0 ms", kinds[w->kind]);
        return SL_EJOB;
    }
    if (w->kind == SL_WINDOW_SLIDING &&
        (w->slide_ms <= 0 || w->slide_ms > w->size_ms ||
         (w->size_ms + w->slide_ms - 1) / w->slide_ms > SL_WINDOW_MAX_PANES)) {
        /* A row belongs to ceil(size / slide) windows, all of which the operators hold at once. */
        snprintf(err, errlen, "sliding window: slide must be in (0, size] and ceil(size/slide) <= %d",
                 SL_WINDOW_MAX_PANES);
        return SL_EJOB;
    }
    if (w->kind == SL_WINDOW_SESSION && w->gap_ms <= 0) {
        snprintf(err, errlen, "session window: gap must be > 0 ms");
        return SL_EJOB;
    }
    if (w->allowed_lateness_ms < 0) {
        snprintf(err, errlen, "allowed lateness must be >= 0 ms");
        return SL_EJOB;
    }
    int rc = sl_params_set(p, "window", kinds[w->kind]);
    rc = rc ? rc : sl_params_set(p, "time", w->time == SL_TIME_EVENT ? "event" : "processing");
    rc = rc ? rc : sl_params_set_int(p, "size_ms", w->size_ms);
    rc = rc ? rc : sl_params_set_int(p, "slide_ms", w->kind == SL_WINDOW_SLIDING ? w->slide_ms : w->size_ms);
    rc = rc ? rc : sl_params_set_int(p, "gap_ms", w->gap_ms);
    return rc ? rc : sl_params_set_int(p, "lateness_ms", w->allowed_lateness_ms);
}

int sl_window_spec_from_params(const sl_params_t *p, sl_window_spec_t *w, char *err, size_t errlen) {
    const char *kind = sl_params_get(p, "window"), *time = sl_params_get(p, "time");
    memset(w, 0, sizeof *w);
    if (kind == NULL || time == NULL) {
        snprintf(err, errlen, "missing parameter 'window' or 'time'");
        return SL_EJOB;
    }
    w->kind = strcmp(kind, "tumbling") == 0  ? SL_WINDOW_TUMBLING
              : strcmp(kind, "sliding") == 0 ? SL_WINDOW_SLIDING
              : strcmp(kind, "session") == 0 ? SL_WINDOW_SESSION
                                             : (sl_window_kind_t)-1;
    w->time = strcmp(time, "processing") == 0 ? SL_TIME_PROCESSING
              : strcmp(time, "event") == 0    ? SL_TIME_EVENT
                                              : (sl_time_kind_t)-1;
    if (sl_params_int(p, "size_ms", 0, &w->size_ms) || sl_params_int(p, "slide_ms", 0, &w->slide_ms) ||
        sl_params_int(p, "gap_ms", 0, &w->gap_ms) || sl_params_int(p, "lateness_ms", 0, &w->allowed_lateness_ms)) {
        snprintf(err, errlen, "window parameters must be integers (ms)");
        return SL_EJOB;
    }
    sl_params_t scratch;
    sl_params_init(&scratch);
    int rc = sl_window_spec_to_params(w, &scratch, err, errlen);
    sl_params_destroy(&scratch);
    return rc;
}

uint32_t sl_window_assign(const sl_window_spec_t *w, int64_t ts, sl_window_t *out) {
    if (w->kind == SL_WINDOW_TUMBLING) {
        out[0].start = floor_to(ts, w->size_ms);
        out[0].end = out[0].start + w->size_ms;
        return 1;
    }
    /* Sliding: every start s = k * slide with s <= ts < s + size. */
    int64_t last = floor_to(ts, w->slide_ms);
    uint32_t n = 0;
    int64_t first = last;
    while (first - w->slide_ms > ts - w->size_ms)
        first -= w->slide_ms;
    for (int64_t s = first; s <= last; s += w->slide_ms) {
        out[n].start = s;
        out[n].end = s + w->size_ms;
        n++;
    }
    return n;
}
