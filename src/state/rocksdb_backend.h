/* The RocksDB keyed-state backend (see rocksdb_backend.c). */
#ifndef SL_STATE_ROCKSDB_BACKEND_H
#define SL_STATE_ROCKSDB_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_config_s;

#include "state/keyed_state.h"
#include "state/rocksdb_memory.h"

/* How an instance compacts (state.backend.rocksdb.compaction.style). Compaction decides what
 * an incremental checkpoint uploads: every file a compaction writes is new. "level" keeps one
 * sorted run per level (fewest files per read, least space) but rewrites level 1 whenever
 * level 0 is merged into it; "universal" merges runs of similar size and the whole state only
 * when the newer runs reach a share of it (fewer bytes rewritten, more runs per read, up to
 * three times the space). docs/checkpoints.md has the figures. */
typedef enum { SL_ROCKSDB_COMPACTION_LEVEL = 0, SL_ROCKSDB_COMPACTION_UNIVERSAL } sl_rocksdb_compaction_t;

typedef struct {
    sl_rocksdb_compaction_t compaction;
    bool bloom_filter; /* a full filter of 10 bits per key in every SST file */
} sl_rocksdb_options_t;

/* The options of state.backend.rocksdb.* in `config`. */
void sl_rocksdb_options_from_config(const struct sl_config_s *config, sl_rocksdb_options_t *out);

/* Opens a fresh instance in directory `path` (created; deleted again by destroy) owning key
 * groups [kg_first, kg_last]. `mem` is the TaskManager's shared memory, or NULL for RocksDB's
 * defaults; `opts` NULL means the defaults of the configuration keys. Errors: SL_EINVAL,
 * SL_ENOMEM, SL_ESTATE_IO with a message naming the path. */
int sl_rocksdb_backend_create(const char *path, const sl_rocksdb_memory_t *mem, const sl_rocksdb_options_t *opts,
                              uint32_t max_parallelism, uint32_t kg_first, uint32_t kg_last,
                              sl_keyed_backend_t **out, char *err, size_t errlen);

/* Writes a RocksDB checkpoint of the instance into `dir` (which must not exist): the SST files
 * are hard links, immutable, so an incremental checkpoint uploads only those it has not
 * uploaded before. Memtables are flushed first. Errors: SL_ESTATE_IO naming the directory. */
int sl_rocksdb_backend_checkpoint(sl_keyed_backend_t *b, const char *dir, char *err, size_t errlen);

/* Copies every entry of the RocksDB checkpoint in `dir` whose key group `into` owns into
 * `into` (any backend): a restore, at the same or another parallelism. */
int sl_rocksdb_backend_import(sl_keyed_backend_t *into, const char *dir, char *err, size_t errlen);

/* <localdir>/sluice-rocksdb-<pid>: the directory of this process's instances
 * (state.backend.rocksdb.localdir, else $TMPDIR, else /tmp). SL_ERANGE when it does not fit. */
int sl_rocksdb_local_root(const struct sl_config_s *config, char *buf, size_t len);

/* The instance's directory. */
const char *sl_rocksdb_backend_path(const sl_keyed_backend_t *b);

/* Flushes state `id` and compacts all of it, which runs its TTL filter over every entry it
 * rewrites (a list merged from operands needs a second compaction, see rocksdb_backend.c). For
 * tests and maintenance; backend's thread. Errors: SL_EINVAL, SL_ESTATE_IO. */
int sl_rocksdb_backend_compact(sl_keyed_backend_t *b, uint32_t id);

/* True for RocksDB backends. */
bool sl_rocksdb_backend_is(const sl_keyed_backend_t *b);

#endif
