/* Checkpoint storage in a local (or mounted) directory, laid out as Flink's FsCheckpointStorage:
 * per-checkpoint directories with a _metadata file written last, shared/ for files referenced by
 * several checkpoints (incremental RocksDB SSTs), and taskowned/ for files the tasks manage.
 *
 * DESIGN
 *   <root>/<job-id>/chk-<n>/_metadata     written last and atomically: its presence marks checkpoint n
 *                                         as COMPLETED (see metadata.h for its format)
 *   <root>/<job-id>/chk-<n>/<files>       task-owned state files of checkpoint n
 *   <root>/<job-id>/shared/<name>         files shared across checkpoints; their lifetime is the
 *                                         coordinator's business (Flink SharedStateRegistry), never discard()'s
 *   <root>/<job-id>/taskowned/            files owned by tasks (e.g. changelog), same rule
 * A chk-<n> directory without _metadata is an incomplete checkpoint (crash or decline mid-way):
 * listing ignores it and sl_ckpt_discard() removes it.
 * Every file goes through sl_ckpt_writer_t: bytes go to "<path>.tmp", which is fsynced, renamed
 * over <path>, and the directory fsynced, so a reader sees either nothing or the whole file.
 *
 * Errors: 0 or a negative SL_E* code; when `err` is non-NULL it receives a message naming the path
 * and the cause. OS failures map ENOENT -> SL_ENOENT, EEXIST -> SL_EEXIST, ENOMEM -> SL_ENOMEM, and
 * everything else (EACCES, ENOSPC, ...) -> SL_EIO with strerror() in the message.
 * Threads: blocking file I/O; call from a task thread or a dedicated I/O thread, never a loop thread.
 * Functions share no global state, so different threads may use different objects concurrently. */
#ifndef SL_CHECKPOINT_STORAGE_H
#define SL_CHECKPOINT_STORAGE_H

#include <stddef.h>
#include <stdint.h>

/* One job's checkpoint storage. All strings are owned (sl_malloc) and read-only after init. */
typedef struct sl_ckpt_storage_s {
    char *root;    /* the configured checkpoint directory */
    char *job_id;  /* one path component: non-empty, no '/', not "." or ".." */
    char *job_dir; /* "<root>/<job_id>" */
} sl_ckpt_storage_t;

/* Size and CRC32C (checksum.h) of a file's whole contents. */
typedef struct sl_ckpt_file_info_s {
    uint64_t size;
    uint32_t crc32c;
} sl_ckpt_file_info_t;

/* Streaming atomic writer. Fields are private; the struct lives in caller memory. */
typedef struct sl_ckpt_writer_s {
    int _fd;
    char *_path; /* final path (owned) */
    char *_tmp;  /* "<path>.tmp" (owned) */
    char *_dir;  /* parent directory of path (owned), so that close never allocates */
    uint64_t _size;
    uint32_t _crc;
} sl_ckpt_writer_t;

/**
 * Initializes `s` for `job_id` under `dir` and creates <dir>/<job_id>/shared and .../taskowned
 * (like mkdir -p; existing directories are fine). Errors: SL_EINVAL (bad job id), SL_EIO
 * ("cannot create directory <path>: Permission denied", ...), SL_ENOMEM. On failure nothing needs
 * cleaning up; on success sl_ckpt_storage_destroy() is mandatory. `dir` and `job_id` are copied.
 */
int sl_ckpt_storage_init(sl_ckpt_storage_t *s, const char *dir, const char *job_id, char *err, size_t errlen);

/* Frees the strings of `s` (not `s` itself). Safe on a zeroed struct. */
void sl_ckpt_storage_destroy(sl_ckpt_storage_t *s);

/* Path builders: write a NUL-terminated path into buf[len]. Return 0, or SL_ERANGE when it does not
 * fit, SL_EINVAL when `name` is not a single safe path component. Pure string functions, no I/O. */
int sl_ckpt_dir(const sl_ckpt_storage_t *s, uint64_t id, char *buf, size_t len);               /* <job>/chk-<id> */
int sl_ckpt_file_path(const sl_ckpt_storage_t *s, uint64_t id, const char *name, char *buf,
                      size_t len);                                                              /* <job>/chk-<id>/<name> */
int sl_ckpt_metadata_path(const sl_ckpt_storage_t *s, uint64_t id, char *buf, size_t len);     /* <job>/chk-<id>/_metadata */
int sl_ckpt_shared_path(const sl_ckpt_storage_t *s, const char *name, char *buf, size_t len);  /* <job>/shared/<name> */
int sl_ckpt_taskowned_path(const sl_ckpt_storage_t *s, const char *name, char *buf, size_t len); /* <job>/taskowned/<name> */

/**
 * Opens an atomic writer for `path` (copied). Missing parent directories are created. Writes go
 * to "<path>.tmp" (truncated if a crashed attempt left one); an existing `path` is replaced at
 * close. After success exactly one of sl_ckpt_writer_close() or sl_ckpt_writer_abort() must be
 * called. Errors: SL_EIO, SL_ENOMEM; on failure nothing needs cleaning up.
 */
int sl_ckpt_writer_open(sl_ckpt_writer_t *w, const char *path, char *err, size_t errlen);

/* Appends len bytes (borrowed for the call), updating size and checksum. On error (SL_EIO, e.g.
 * ENOSPC) the writer stays open and the caller must still call sl_ckpt_writer_abort(). */
int sl_ckpt_writer_append(sl_ckpt_writer_t *w, const void *data, size_t len, char *err, size_t errlen);

/**
 * Commits: fsync, rename "<path>.tmp" -> "<path>", fsync of the directory. Fills *info (may be
 * NULL) on success. Always releases the writer. On failure (SL_EIO) the .tmp file is removed and
 * `path` is left as it was before open, except when only the final directory fsync failed: then
 * `path` already holds the new bytes but their durability is unknown.
 */
int sl_ckpt_writer_close(sl_ckpt_writer_t *w, sl_ckpt_file_info_t *info, char *err, size_t errlen);

/* Releases the writer and removes "<path>.tmp"; `path` is untouched. Never fails. */
void sl_ckpt_writer_abort(sl_ckpt_writer_t *w);

/* Writes `len` bytes as the whole file `path` through a writer (atomic, fsynced); fills *info
 * (may be NULL). Errors as the writer's. */
int sl_ckpt_file_write(const char *path, const void *data, size_t len, sl_ckpt_file_info_t *info, char *err,
                       size_t errlen);

/**
 * Copies the local file `src` into storage at `dst` through a writer, computing size and checksum
 * of the bytes actually copied (*info may be NULL). Always a real copy, never a link: storage must
 * survive the deletion of local files (e.g. RocksDB compacting the SST away).
 * Errors: SL_ENOENT (src missing), SL_EIO, SL_ENOMEM.
 */
int sl_ckpt_file_copy(const char *src, const char *dst, sl_ckpt_file_info_t *info, char *err, size_t errlen);

/* Computes size and checksum of the existing file `path` by reading it. Errors: SL_ENOENT, SL_EIO. */
int sl_ckpt_file_checksum(const char *path, sl_ckpt_file_info_t *info, char *err, size_t errlen);

/**
 * Checks that `path` exists with exactly `expected_size` bytes and checksum `expected_crc`.
 * Errors: SL_ENOENT ("checkpoint file missing: <path>"), SL_EPARSE ("size mismatch in <path>:
 * expected N bytes, got M" / "checksum mismatch in <path>: expected 0x..., got 0x..."), SL_EIO.
 */
int sl_ckpt_file_verify(const char *path, uint64_t expected_size, uint32_t expected_crc, char *err, size_t errlen);

/**
 * Lists completed checkpoints: ids of chk-<n> directories (n decimal, no sign or leading zeros)
 * that contain a regular file _metadata, ascending. *ids is sl_malloc'd and owned by the caller
 * (sl_free), or NULL when *n == 0. Errors: SL_ENOENT (job dir missing), SL_EIO, SL_ENOMEM.
 */
int sl_ckpt_list_completed(const sl_ckpt_storage_t *s, uint64_t **ids, uint32_t *n, char *err, size_t errlen);

/* Highest completed checkpoint id into *id. Errors: SL_ENOENT ("no completed checkpoint in
 * <job dir>"), and those of sl_ckpt_list_completed(). */
int sl_ckpt_latest_completed(const sl_ckpt_storage_t *s, uint64_t *id, char *err, size_t errlen);

/**
 * Removes chk-<id> recursively, complete or not. _metadata goes first, so a crash part-way leaves an
 * incomplete checkpoint (ignored) rather than a completed one with missing files. Never touches
 * shared/ or taskowned/. A missing directory is success (idempotent). Errors: SL_EIO, SL_ENOMEM.
 */
int sl_ckpt_discard(const sl_ckpt_storage_t *s, uint64_t id, char *err, size_t errlen);

/* Removes `path` and, for a directory, everything below it (symlinks are removed, not followed).
 * A missing path is success. Errors: SL_EIO, SL_ENOMEM. */
int sl_ckpt_remove_tree(const char *path, char *err, size_t errlen);

/**
 * Resolves a user-given restore path: ".../<job-id>/chk-<n>" (that checkpoint, which must be
 * complete), ".../<job-id>/chk-<n>/_metadata" (same), or ".../<job-id>" (its latest completed
 * checkpoint). Trailing slashes are ignored. On success *out is initialized WITHOUT creating any
 * directory (root = the parent of the job dir, job_id = its last component) and the caller must
 * sl_ckpt_storage_destroy() it; *id is the checkpoint. Errors: SL_ENOENT ("no completed checkpoint
 * in <path>", "checkpoint <path> is incomplete: no _metadata", "<path>: No such file or directory"),
 * SL_EINVAL (empty path or no job directory component), SL_EIO, SL_ENOMEM.
 */
int sl_ckpt_resolve(const char *path, sl_ckpt_storage_t *out, uint64_t *id, char *err, size_t errlen);

#endif /* SL_CHECKPOINT_STORAGE_H */
