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
    {"state.backend.incremental", SL_OPT_BOOL, "true",
     "RocksDB checkpoints upload only new SST files (false: a full portable snapshot each time)", 0, 0, NULL},
    {"state.backend.rocksdb.compaction.style", SL_OPT_ENUM, "level",
     "RocksDB compaction: level (fewest files per read, least space) or universal (fewer bytes rewritten, so "
     "smaller incremental checkpoints; more files per read, up to 3x the space)", 0, 0, "level|universal"},
    {"state.backend.rocksdb.use-bloom-filter", SL_OPT_BOOL, "true",
     "a bloom filter (10 bits per key) in every RocksDB file, so a read skips files without its key", 0, 0, NULL},
    {"state.backend.rocksdb.localdir", SL_OPT_STRING, "",
     "directory of the RocksDB instances (default: $TMPDIR or /tmp, then sluice-rocksdb-<pid>)", 0, 0, NULL},
    {"execution.savepoint.path", SL_OPT_STRING, "",
     "start from this checkpoint or savepoint (a chk-N directory, or a job's checkpoint directory = its latest)", 0, 0,
     NULL},
    {"state.checkpoints.dir", SL_OPT_STRING, "", "checkpoint storage directory", 0, 0, NULL},
    {"state.savepoints.dir", SL_OPT_STRING, "", "default target directory of `sluice savepoint` and `sluice stop`", 0,
     0, NULL},
    {"execution.checkpointing.interval", SL_OPT_DURATION, "0", "checkpoint interval (0 = off)", 0, INT64_MAX, NULL},
    {"execution.checkpointing.timeout", SL_OPT_DURATION, "10 min", "a checkpoint not complete by then is aborted", 1,
     INT64_MAX, NULL},
    {"execution.checkpointing.min-pause", SL_OPT_DURATION, "0", "least time between the end of a checkpoint and the "
     "start of the next", 0, INT64_MAX, NULL},
    {"execution.checkpointing.max-concurrent-checkpoints", SL_OPT_INT, "1", "checkpoints in flight at once (1 "
     "whenever min-pause > 0)", 1, 16, NULL},
    {"table.exec.async-lookup.buffer-capacity", SL_OPT_INT, "100", "built-in lookups (Nexmark q13): requests in "
     "flight per subtask", 1, 1 << 20, NULL},
    {"table.exec.async-lookup.timeout", SL_OPT_DURATION, "3 min", "built-in lookups: a request with its retries fails "
     "after this", 1, INT64_MAX, NULL},
    {"table.exec.async-lookup.output-mode", SL_OPT_ENUM, "ordered", "built-in lookups: emit in input order, or as "
     "answers come (never across a watermark)", 0, 0, "ordered|unordered"},
    {"table.exec.async-lookup.retry-strategy", SL_OPT_ENUM, "none", "built-in lookups: retry failed requests", 0, 0,
     "none|fixed-delay|exponential-delay"},
    {"table.exec.async-lookup.max-attempts", SL_OPT_INT, "3", "built-in lookups: calls per request at most, retries "
     "included", 1, 1 << 20, NULL},
    {"table.exec.async-lookup.retry-delay", SL_OPT_DURATION, "100 ms", "built-in lookups: the (first) retry delay", 0,
     INT64_MAX, NULL},
    {"table.exec.async-lookup.retry-max-delay", SL_OPT_DURATION, "5 s", "built-in lookups: exponential delays stop "
     "growing here", 0, INT64_MAX, NULL},
    {"jobmanager.rpc.address", SL_OPT_STRING, "127.0.0.1", "address the JobManager listens on and TaskManagers "
     "connect to", 0, 0, NULL},
    {"jobmanager.rpc.port", SL_OPT_INT, "6123", "JobManager RPC port (0 = any free port)", 0, 65535, NULL},
    {"rest.port", SL_OPT_INT, "8081", "port of the JobManager's REST API (0 = any free port; when "
     "jobmanager.rpc.port is 0 and this is not set, any free port too)", 0, 65535, NULL},
    {"rest.bind-address", SL_OPT_STRING, "127.0.0.1", "address the REST API listens on: it is not "
     "authenticated and runs uploaded job libraries, so only this machine by default", 0, 0, NULL},
    {"web.upload.dir", SL_OPT_STRING, "", "where uploaded job libraries are kept (default: a private "
     "directory under $TMPDIR, removed when the JobManager stops)", 0, 0, NULL},
    {"web.submit.enable", SL_OPT_BOOL, "true", "the REST API accepts job library uploads and runs", 0, 0, NULL},
    {"web.cancel.enable", SL_OPT_BOOL, "true", "the REST API can cancel jobs", 0, 0, NULL},
    {"security.auth.secret-file", SL_OPT_STRING, "", "file holding the cluster's shared secret (default: "
     "$SLUICE_SECRET, else ~/.sluice/secret, created on first use)", 0, 0, NULL},
    {"security.ssl.internal.enabled", SL_OPT_BOOL, "false", "TLS (mutual, certificates verified) on every RPC and "
     "data-plane connection", 0, 0, NULL},
    {"security.ssl.internal.keystore", SL_OPT_STRING, "", "PEM certificate (and chain) this process presents", 0, 0,
     NULL},
    {"security.ssl.internal.key", SL_OPT_STRING, "", "PEM private key of security.ssl.internal.keystore", 0, 0, NULL},
    {"security.ssl.internal.truststore", SL_OPT_STRING, "", "PEM CA certificate(s) a peer's certificate must chain "
     "to", 0, 0, NULL},
    {"security.ssl.rest.enabled", SL_OPT_BOOL, "false", "HTTPS on the JobManager's REST API", 0, 0, NULL},
    {"security.ssl.rest.keystore", SL_OPT_STRING, "", "PEM certificate the REST API presents", 0, 0, NULL},
    {"security.ssl.rest.key", SL_OPT_STRING, "", "unencrypted PEM private key of that certificate", 0, 0, NULL},
    {"security.ssl.rest.truststore", SL_OPT_STRING, "", "PEM CA certificate(s) REST clients' certificates must "
     "chain to (with authentication-enabled)", 0, 0, NULL},
    {"security.ssl.rest.authentication-enabled", SL_OPT_BOOL, "false", "the REST API requires a client "
     "certificate signed by the truststore's CA (mutual TLS)", 0, 0, NULL},
    {"heartbeat.interval", SL_OPT_DURATION, "10 s", "heartbeats between JobManager and TaskManagers", 1, INT64_MAX,
     NULL},
    {"heartbeat.timeout", SL_OPT_DURATION, "50 s", "a peer without heartbeat answer this long is lost", 1, INT64_MAX,
     NULL},
    {"slot.request.timeout", SL_OPT_DURATION, "5 min", "a slot request not served by then fails", 1, INT64_MAX, NULL},
    {"resourcemanager.driver", SL_OPT_ENUM, "standalone", "how TaskManagers come: started by hand, as local "
     "processes, or as Slurm jobs", 0, 0, "standalone|local|slurm"},
    {"resourcemanager.taskmanager-timeout", SL_OPT_DURATION, "30 s", "TaskManagers the driver started are stopped "
     "after being idle this long", 0, INT64_MAX, NULL},
    {"resourcemanager.max-taskmanagers", SL_OPT_INT, "0", "TaskManagers the driver may run at once (0 = no limit)", 0,
     1 << 20, NULL},
    {"resourcemanager.log-dir", SL_OPT_STRING, "", "logs of started TaskManagers (default: the working directory)", 0,
     0, NULL},
    {"resourcemanager.slurm.partition", SL_OPT_STRING, "", "Slurm partition for TaskManager jobs (default: the "
     "cluster's)", 0, 0, NULL},
    {"taskmanager.host", SL_OPT_STRING, "127.0.0.1", "address of a TaskManager's data plane (remote channels)", 0, 0,
     NULL},
    {"taskmanager.cpu.cores", SL_OPT_INT, "1", "CPU cores of one TaskManager (Slurm: --cpus-per-task)", 1, 4096,
     NULL},
    {"taskmanager.memory.process.size", SL_OPT_MEMORY, "1gb", "memory of one TaskManager process (Slurm: --mem)",
     64 << 20, INT64_MAX, NULL},
    {"taskmanager.registration.timeout", SL_OPT_DURATION, "30 s", "a TaskManager gives up registering after this",
     1, INT64_MAX, NULL},
    {"restart-strategy.fixed-delay.attempts", SL_OPT_INT, "3",
     "restarts from the latest checkpoint after a failure (with checkpointing on)", 0, 1000000, NULL},
    {"restart-strategy.fixed-delay.delay", SL_OPT_DURATION, "1 s", "pause before a restart", 0, INT64_MAX, NULL},
    {"state.checkpoints.num-retained", SL_OPT_INT, "1", "completed checkpoints kept", 1, 1000, NULL},
    {"csv.ignore-parse-errors", SL_OPT_BOOL, "false", "skip malformed CSV lines instead of failing", 0, 0, NULL},
    {"execution.runtime-mode", SL_OPT_ENUM, "streaming", "runtime mode", 0, 0, "streaming|batch"},
    {"log.level", SL_OPT_ENUM, "warn", "log level", 0, 0, "debug|info|warn|error"},
    {NULL, 0, NULL, NULL, 0, 0, NULL},
};
