/* A file written with two-phase commit, for exactly-once file sinks (like Flink's FileSink):
 * rows go to an in-progress file; a checkpoint's snapshot closes it as pending-<id>
 * (pre-commit); the checkpoint's completion publishes pending files as part-<id> (commit); a
 * restore from checkpoint n publishes what n covered and deletes what came after it. When the
 * bounded input ends, the final file is assembled (atomically) from the header and the parts
 * in order; the parts stay in the hidden work directory until a fresh run replaces them. */
#ifndef SL_CONNECTORS_TXN_FILE_H
#define SL_CONNECTORS_TXN_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sl_txn_file_s {
    char *final;      /* the output path */
    char *dir;        /* its work directory ".<name>.txn" beside it */
    char *header;     /* first line of the final file (without newline) */
    FILE *f;          /* the in-progress file */
    char *iobuf;
    bool purged;      /* stale parts of an earlier run handled */
    char **adopted;   /* work directories of other writers taken over (sl_txn_file_adopt) */
    uint32_t nadopted;
    char err[512];
} sl_txn_file_t;

/* Starts writing a new in-progress file. Files of an earlier run are removed at the first
 * pre-commit or at finish, unless sl_txn_file_recover() claimed them first. */
int sl_txn_file_open(sl_txn_file_t *t, const char *final, const char *header);
static inline FILE *sl_txn_file_stream(sl_txn_file_t *t) { return t->f; }
int sl_txn_file_precommit(sl_txn_file_t *t, uint64_t id);
int sl_txn_file_commit(sl_txn_file_t *t, uint64_t id);
/* After a restore from checkpoint `id`: this writer continues its work directory as of `id`
 * (pending files `id` covers published, later ones deleted). */
int sl_txn_file_recover(sl_txn_file_t *t, uint64_t id);

/* Rescaling (restore.h): a writer may take over other writers' output.
 * sl_txn_file_work_dir: the work directory of output `final`: ".<base>.txn" beside it, or for
 *   restored != 0 ".<base>.r<restored>.txn", where a writer started by a restore from
 *   checkpoint `restored` writes when it continues no earlier writer. SL_ERANGE if too long.
 * sl_txn_file_use_dir: writes into `dir` from now on (call before writing anything); stale
 *   files there are removed at the first pre-commit unless sl_txn_file_recover follows.
 * sl_txn_file_adopt: takes over the committed output of another writer's work directory as of
 *   checkpoint `id` (pending files `id` covers published, later ones deleted, a missing
 *   directory is empty); its parts go, in adoption order, before this writer's own parts in
 *   the final file. The directory is only read from then on. `dir` is copied. */
int sl_txn_file_work_dir(const char *final, uint64_t restored, char *buf, size_t len);
int sl_txn_file_use_dir(sl_txn_file_t *t, const char *dir);
int sl_txn_file_adopt(sl_txn_file_t *t, const char *dir, uint64_t id);
/* End of input: commit the rest and write the final file. */
int sl_txn_file_finish(sl_txn_file_t *t);
void sl_txn_file_close(sl_txn_file_t *t);

#endif
