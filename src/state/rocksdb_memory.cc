// The C++ shim behind rocksdb_memory.h: the only C++ in Sluice, because RocksDB's C API cannot
// set a write buffer manager. The two struct definitions below are those of RocksDB's own
// c.cc (a C API handle wraps the C++ object as its only member, `rep`).
#include "state/rocksdb_memory.h"

#include <rocksdb/cache.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include <memory>
#include <new>

struct rocksdb_options_t {
    rocksdb::Options rep;
};
struct rocksdb_block_based_table_options_t {
    rocksdb::BlockBasedTableOptions rep;
};

struct sl_rocksdb_memory_s {
    std::shared_ptr<rocksdb::Cache> cache;
    std::shared_ptr<rocksdb::WriteBufferManager> wbm;
};

extern "C" sl_rocksdb_memory_t *sl_rocksdb_memory_create(size_t total) {
    sl_rocksdb_memory_t *m = new (std::nothrow) sl_rocksdb_memory_t();
    if (m == nullptr)
        return nullptr;
    try {
        // strict_capacity_limit = false: a full cache evicts rather than failing reads.
        m->cache = rocksdb::NewLRUCache(total, -1, false, 0.1);
        m->wbm = std::make_shared<rocksdb::WriteBufferManager>(total / 2, m->cache, true);
    } catch (...) {
        delete m;
        return nullptr;
    }
    return m;
}

extern "C" void sl_rocksdb_memory_destroy(sl_rocksdb_memory_t *m) { delete m; }

extern "C" void sl_rocksdb_memory_apply(const sl_rocksdb_memory_t *m, rocksdb_options_t *opts,
                                        rocksdb_block_based_table_options_t *table) {
    opts->rep.write_buffer_manager = m->wbm;
    table->rep.block_cache = m->cache;
    table->rep.cache_index_and_filter_blocks = true;
}

extern "C" size_t sl_rocksdb_memory_usage(const sl_rocksdb_memory_t *m) { return m->cache->GetUsage(); }

extern "C" size_t sl_rocksdb_memory_capacity(const sl_rocksdb_memory_t *m) { return m->cache->GetCapacity(); }
