/* The known configuration options. Adding an option is one line here. */
#include "core/config.h"

#include <stdint.h>

const sl_option_t sl_options[] = {
    {"parallelism.default", SL_OPT_INT, "1", "parallelism of operators that set none", 1, 32768, NULL},
    {"pipeline.max-parallelism", SL_OPT_INT, "128", "number of key groups", 1, 32768, NULL},
    {"taskmanager.numberOfTaskSlots", SL_OPT_INT, "2", "slots per TaskManager", 1, 4096, NULL},
    {"minicluster.number-of-taskmanagers", SL_OPT_INT, "1", "TaskManagers of the embedded mini-cluster", 1, 1024,
     NULL},
    {"execution.buffer-timeout", SL_OPT_DURATION, "100 ms", "flush partly filled buffers after this (0 = every record)",
     0, INT64_MAX, NULL},
    {"taskmanager.memory.segment-size", SL_OPT_MEMORY, "32kb", "size of a network buffer", 4096, 16 << 20, NULL},
    {"taskmanager.memory.network.size", SL_OPT_MEMORY, "64mb", "network buffer memory of each TaskManager (hard bound)",
     32768, INT64_MAX, NULL},
    {"taskmanager.network.memory.buffers-per-channel", SL_OPT_INT, "2", "credit of each channel", 1, 1024, NULL},
    {"taskmanager.network.memory.floating-buffers-per-gate", SL_OPT_INT, "8", "extra credit shared by a gate", 0,
     65536, NULL},
    {"pipeline.auto-watermark-interval", SL_OPT_DURATION, "200 ms", "how often watermarks are generated", 1,
     INT64_MAX, NULL},
    {"state.backend.type", SL_OPT_ENUM, "hashmap", "keyed state backend", 0, 0, "hashmap|rocksdb"},
    {"state.backend.rocksdb.memory.managed-size", SL_OPT_MEMORY, "128mb",
     "RocksDB memory of each TaskManager: one block cache that write buffers are charged to", 1 << 20, INT64_MAX,
     NULL},
    {"state.backend.rocksdb.localdir", SL_OPT_STRING, "",
     "directory of the RocksDB instances (default: $TMPDIR or /tmp, then sluice-rocksdb-<pid>)", 0, 0, NULL},
    {"state.checkpoints.dir", SL_OPT_STRING, "", "checkpoint storage directory", 0, 0, NULL},
    {"execution.checkpointing.interval", SL_OPT_DURATION, "0", "checkpoint interval (0 = off)", 0, INT64_MAX, NULL},
    {"state.checkpoints.num-retained", SL_OPT_INT, "1", "completed checkpoints kept", 1, 1000, NULL},
    {"csv.ignore-parse-errors", SL_OPT_BOOL, "false", "skip malformed CSV lines instead of failing", 0, 0, NULL},
    {"execution.runtime-mode", SL_OPT_ENUM, "streaming", "runtime mode", 0, 0, "streaming|batch"},
    {"rest.port", SL_OPT_INT, "8081", "REST port of the JobManager", 0, 65535, NULL},
    {"log.level", SL_OPT_ENUM, "warn", "log level", 0, 0, "debug|info|warn|error"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
