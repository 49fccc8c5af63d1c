/* Window assignment shared by window aggregation and window join: tumbling, sliding and
 * session windows over event or processing time, as operator parameters. Windows are
 * [start, end); a window fires when time reaches end - 1 (Flink's maxTimestamp). */
#ifndef SL_OPERATORS_WINDOW_H
#define SL_OPERATORS_WINDOW_H

#include <sluice/job.h>

#include <stddef.h>
#include <stdint.h>

#include "core/params.h"

typedef struct sl_window_s {
    int64_t start;
    int64_t end;
} sl_window_t;

#define SL_WINDOW_MAX_PANES 1024 /* size / slide of a sliding window, at most */

/* Reads parameters window/time/size_ms/slide_ms/gap_ms/lateness_ms. Errors: SL_EJOB. */
int sl_window_spec_from_params(const sl_params_t *p, sl_window_spec_t *w, char *err, size_t errlen);
/* Writes the parameters of `w` (used by the builder); validates it. */
int sl_window_spec_to_params(const sl_window_spec_t *w, sl_params_t *p, char *err, size_t errlen);
/* Windows containing `ts` (tumbling or sliding), oldest first; returns their count. */
uint32_t sl_window_assign(const sl_window_spec_t *w, int64_t ts, sl_window_t *out);

#endif
