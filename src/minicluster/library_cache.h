/* The job libraries a TaskManager received with DeployJob, as private files it can dlopen.
 *
 * DESIGN
 * A DeployJob carries the job library's bytes and their SHA-256 (computed by the JobManager).
 * The cache keeps one file per distinct library, keyed by that hash, in a directory of its own
 * created on first use: mkdtemp("$TMPDIR/sluice-tm-<pid>-XXXXXX"), mode 0700 (TMPDIR unset:
 * /tmp); each file is mkstemps("lib-<hash prefix>-XXXXXX.so"), mode 0600. The bytes are hashed
 * and compared with the announced hash before anything is written, so a file in the cache
 * always holds exactly the bytes its key names; a later deployment with the same hash reuses
 * the file without writing (or hashing) again.
 *
 * Each successful sl_library_cache_open takes a reference and a dlopen handle
 * (RTLD_NOW | RTLD_LOCAL); sl_library_cache_close dlcloses the handle and drops the reference.
 * An entry without references lingers for `linger_ms` (restarts of a job deploy the same
 * library again moments later), then sl_library_cache_sweep removes its file; with linger 0
 * the file goes at the last close. sl_library_cache_destroy removes every file and the
 * directory (TaskManager exit); directories of TaskManagers killed before that are removed by
 * the next cache that creates its own directory in the same parent (core/orphan_dirs.h). Entries, counts and the directory are guarded by one mutex:
 * every function may be called from any thread. Errors are returned with a message naming
 * the library; the cache stays usable. */
#ifndef SL_MINICLUSTER_LIBRARY_CACHE_H
#define SL_MINICLUSTER_LIBRARY_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* The largest job library shipped with a job. A DeployJob travels in one RPC frame, at most
 * 64 MiB by default (sl_rpc_endpoint_config_t.max_frame_size); 48 MiB of library leaves 16 MiB
 * for the encoded graph, the configuration and the placement. */
#define SL_LIBRARY_MAX_BYTES (48u * 1024 * 1024)
#define SL_LIBRARY_SHA256_LEN 32
/* How long a library no run uses stays on disk, for the next attempt of its job. */
#define SL_LIBRARY_CACHE_LINGER_MS 5000

typedef struct sl_library_cache_s sl_library_cache_t;
typedef struct sl_library_entry_s sl_library_entry_t;

/* SHA-256 of `len` bytes into out. Errors: SL_ENOMEM. */
int sl_library_sha256(const void *data, size_t len, uint8_t out[SL_LIBRARY_SHA256_LEN]);

/* A cache whose directory will be made under `parent` (NULL: $TMPDIR, else /tmp) on first use.
 * Errors: SL_ENOMEM. */
int sl_library_cache_create(const char *parent, int64_t linger_ms, sl_library_cache_t **out);

/* The library `name` (for messages) with these bytes and announced hash: its file written
 * unless cached, then dlopened. On success *handle is the dlopen handle and *entry the cache
 * entry, both borrowed until sl_library_cache_close. Errors (err says which library and why):
 * SL_EINVAL (too large, no hash), SL_EPROTO (hash mismatch), -errno (directory or file, e.g.
 * -ENOSPC), SL_ESYMBOL (dlopen failed, with dlerror's reason), SL_ENOMEM. */
int sl_library_cache_open(sl_library_cache_t *c, const char *name, const void *bytes, size_t len,
                          const uint8_t *sha256, size_t sha256_len, void **handle, sl_library_entry_t **entry,
                          char *err, size_t errlen);
/* dlcloses the handle, then drops the entry's reference. */
void sl_library_cache_close(sl_library_cache_t *c, sl_library_entry_t *entry, void *handle);
/* Removes the files of entries unused for longer than the linger. */
void sl_library_cache_sweep(sl_library_cache_t *c);
/* The entry's file (valid while referenced). */
const char *sl_library_entry_path(const sl_library_entry_t *e);

/* For tests and logs: entries in the cache, and files written since creation. */
unsigned sl_library_cache_entries(sl_library_cache_t *c);
unsigned sl_library_cache_writes(sl_library_cache_t *c);
/* The cache's directory, "" before first use (copied into buf). */
void sl_library_cache_dir(sl_library_cache_t *c, char *buf, size_t buflen);

/* Removes every file and the directory; entries still referenced are a programmer error
 * (asserted). NULL is a no-op. */
void sl_library_cache_destroy(sl_library_cache_t *c);

#endif
