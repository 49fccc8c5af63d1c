/* Writes Nexmark events as three CSV files (person.csv, auction.csv, bid.csv) with a header
 * row, columns in the Nexmark schema order and times in epoch milliseconds: the input of the
 * independent reference that checks the queries' results. */
#ifndef SL_CONNECTORS_NEXMARK_CSV_H
#define SL_CONNECTORS_NEXMARK_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "connectors/nexmark_gen.h"

typedef struct sl_nexmark_csv_s {
    FILE *f[3]; /* indexed by sl_nexmark_kind_t */
} sl_nexmark_csv_t;

/* Creates `dir` if needed and the three files. Errors: SL_EIO with a message naming the path. */
int sl_nexmark_csv_open(sl_nexmark_csv_t *w, const char *dir, char *err, size_t errlen);
int sl_nexmark_csv_write(sl_nexmark_csv_t *w, const sl_nexmark_event_t *ev);
/* Closes all files; returns the first write or close error. */
int sl_nexmark_csv_close(sl_nexmark_csv_t *w);

#endif
