/* RocksDB memory shared by all instances of one TaskManager: one LRU block cache, and a write
 * buffer manager that charges memtables to that cache, so the TaskManager's RocksDB memory
 * stays within one configured size however many states and subtasks it runs (Flink's managed
 * memory for RocksDB). RocksDB's C API has no write buffer manager: rocksdb_memory.cc is a
 * small shim over its C++ API. */
#ifndef SL_STATE_ROCKSDB_MEMORY_H
#define SL_STATE_ROCKSDB_MEMORY_H

#include <rocksdb/c.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sl_rocksdb_memory_s sl_rocksdb_memory_t;

/* `total` bytes for the block cache, of which half may be write buffers. NULL on failure. */
sl_rocksdb_memory_t *sl_rocksdb_memory_create(size_t total);
void sl_rocksdb_memory_destroy(sl_rocksdb_memory_t *m);
/* Points `opts` at the write buffer manager and `table` at the shared block cache. Call before
 * rocksdb_options_set_block_based_table_factory(opts, table). */
void sl_rocksdb_memory_apply(const sl_rocksdb_memory_t *m, rocksdb_options_t *opts,
                             rocksdb_block_based_table_options_t *table);
/* Bytes in use in the shared cache (blocks and charged memtables). */
size_t sl_rocksdb_memory_usage(const sl_rocksdb_memory_t *m);
size_t sl_rocksdb_memory_capacity(const sl_rocksdb_memory_t *m);

#ifdef __cplusplus
}
#endif

#endif
