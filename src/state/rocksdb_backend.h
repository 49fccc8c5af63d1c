/* The RocksDB keyed-state backend (see rocksdb_backend.c). */
#ifndef SL_STATE_ROCKSDB_BACKEND_H
#define SL_STATE_ROCKSDB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "state/keyed_state.h"
#include "state/rocksdb_memory.h"

/* Opens a fresh instance in directory `path` (created; deleted again by destroy) owning key
 * groups [kg_first, kg_last]. `mem` is the TaskManager's shared memory, or NULL for RocksDB's
 * defaults. Errors: SL_EINVAL, SL_ENOMEM, SL_ESTATE_IO with a message naming the path. */
int sl_rocksdb_backend_create(const char *path, const sl_rocksdb_memory_t *mem, uint32_t max_parallelism,
                              uint32_t kg_first, uint32_t kg_last, sl_keyed_backend_t **out, char *err,
                              size_t errlen);

#endif
