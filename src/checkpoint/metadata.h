/* The _metadata file of a checkpoint (Flink's CheckpointMetadata): which state handles each operator
 * subtask wrote, with the size and checksum of every file, so restore can verify before it loads.
 * It is the last file written for a checkpoint; its presence is what makes the checkpoint complete.
 *
 * FILE FORMAT (version 2; version 1 files, written before finished subtasks were recorded, are
 * still read: they have no "finished" field, which then means false)
 *   The file is BODY followed by one trailer line:
 *     BODY     = one JSON object (UTF-8) ending with "\n"
 *     TRAILER  = "crc32c " <8 lowercase hex digits> "\n"     -- CRC32C (checksum.h) of BODY's bytes
 *   A reader takes the last line as the trailer, checks the checksum over everything before it, and
 *   only then parses the JSON. A truncated file lacks a well-formed trailer and is rejected.
 *
 *   JSON object (every field required, no others interpreted; integers are JSON integers):
 *   | field           | type                     | meaning                                           |
 *   |-----------------|--------------------------|---------------------------------------------------|
 *   | version         | int, 1 or 2              | format version (this build writes 2)              |
 *   | checkpoint_id   | int >= 0                 | n of chk-<n>                                      |
 *   | job_id          | string                   | job the checkpoint belongs to                     |
 *   | timestamp_ms    | int >= 0                 | trigger time, ms since the epoch                  |
 *   | kind            | "checkpoint"|"savepoint" |                                                   |
 *   | max_parallelism | int 1..32768             | number of key groups                              |
 *   | operators       | array of objects         | one entry per (vertex, subtask)                   |
 *   operators[i]:
 *   | vertex          | string                   | job vertex id                                     |
 *   | subtask         | int 0..2^32-1            | subtask index                                     |
 *   | key_groups      | [first, last] ints       | first <= last < max_parallelism                   |
 *   | handles         | array of objects         | state handles, in the order the operator wrote    |
 *   | extras          | object of string values  | opaque per-subtask values (source offsets, ...)   |
 *   | finished        | bool (version >= 2)      | the subtask had FINISHED before this checkpoint   |
 *   |                 |                          | reached it: no handles, no extras; a restore      |
 *   |                 |                          | deploys it finished (restore.h)                   |
 *   handles[j]:
 *   | kind            | "file"|"shared"|"inline" |                                                   |
 *   | path            | string (file, shared)    | file: relative to the job dir, no "..", not       |
 *   |                 |                          | absolute; shared: a name under shared/            |
 *   | data            | hex string (inline only) | the bytes themselves                              |
 *   | size            | int >= 0                 | bytes                                             |
 *   | crc32c          | int 0..2^32-1            | CRC32C of the bytes                               |
 *   Inline handles are for small state (Flink's memory threshold, ~20 KB); they double in size as hex.
 *
 * OWNERSHIP: every pointer inside sl_ckpt_metadata_t is owned by it and allocated with sl_malloc;
 * sl_ckpt_metadata_free() releases them all. Build one with sl_ckpt_metadata_init() and the
 * add helpers (which copy their arguments), or get one from sl_ckpt_metadata_read().
 * Threads: no shared state; blocking file I/O as in storage.h. */
#ifndef SL_CHECKPOINT_METADATA_H
#define SL_CHECKPOINT_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/storage.h"

#define SL_CKPT_METADATA_VERSION 2
#define SL_CKPT_MAX_PARALLELISM_LIMIT 32768 /* Flink's UPPER_BOUND_MAX_PARALLELISM */

typedef enum { SL_CKPT_KIND_CHECKPOINT = 0, SL_CKPT_KIND_SAVEPOINT = 1 } sl_ckpt_kind_t;

typedef enum { SL_CKPT_HANDLE_FILE = 0, SL_CKPT_HANDLE_SHARED = 1, SL_CKPT_HANDLE_INLINE = 2 } sl_ckpt_handle_kind_t;

typedef struct sl_ckpt_handle_s {
    sl_ckpt_handle_kind_t kind;
    char *path;          /* FILE: relative to the job dir ("chk-7/op-2-0"); SHARED: name under shared/; INLINE: NULL */
    unsigned char *data; /* INLINE: `size` bytes; otherwise NULL */
    uint64_t size;
    uint32_t crc32c;
} sl_ckpt_handle_t;

typedef struct sl_ckpt_extra_s {
    char *key;
    char *value;
} sl_ckpt_extra_t;

typedef struct sl_ckpt_operator_state_s {
    char *vertex_id;
    uint32_t subtask;
    uint32_t kg_first, kg_last; /* inclusive key-group range */
    sl_ckpt_handle_t *handles;
    uint32_t n_handles;
    sl_ckpt_extra_t *extras; /* keys unique */
    uint32_t n_extras;
    bool finished;           /* FINISHED before the checkpoint reached it: no handles, no extras */
} sl_ckpt_operator_state_t;

typedef struct sl_ckpt_metadata_s {
    uint64_t checkpoint_id;
    char *job_id;
    uint64_t timestamp_ms;
    sl_ckpt_kind_t kind;
    uint32_t max_parallelism;
    sl_ckpt_operator_state_t *operators;
    uint32_t n_operators;
} sl_ckpt_metadata_t;

/* Initializes an empty metadata (no operators); job_id is copied. Errors: SL_ENOMEM, SL_EINVAL
 * (NULL job_id). On failure *md is zeroed and needs no free. */
int sl_ckpt_metadata_init(sl_ckpt_metadata_t *md, uint64_t checkpoint_id, const char *job_id, uint64_t timestamp_ms,
                          sl_ckpt_kind_t kind, uint32_t max_parallelism);

/* Frees everything *md owns and zeroes it. Safe on a zeroed struct. */
void sl_ckpt_metadata_free(sl_ckpt_metadata_t *md);

/**
 * Appends an operator subtask entry (vertex_id copied) and returns it in *out (may be NULL). The
 * pointer stays valid until the next add_operator on the same md (the array may move).
 * Errors: SL_ENOMEM (md unchanged), SL_EINVAL (NULL vertex_id).
 */
int sl_ckpt_metadata_add_operator(sl_ckpt_metadata_t *md, const char *vertex_id, uint32_t subtask, uint32_t kg_first,
                                  uint32_t kg_last, sl_ckpt_operator_state_t **out);

/* Appends a FILE or SHARED handle; `path` copied. Errors: SL_ENOMEM, SL_EINVAL (INLINE kind or NULL path). */
int sl_ckpt_operator_add_file(sl_ckpt_operator_state_t *op, sl_ckpt_handle_kind_t kind, const char *path,
                              const sl_ckpt_file_info_t *info);

/* Appends an INLINE handle holding a copy of `len` bytes (size and crc32c computed). Errors: SL_ENOMEM. */
int sl_ckpt_operator_add_inline(sl_ckpt_operator_state_t *op, const void *data, size_t len);

/* Sets extras[key] = value (both copied; replaces an existing key). Errors: SL_ENOMEM, SL_EINVAL. */
int sl_ckpt_operator_set_extra(sl_ckpt_operator_state_t *op, const char *key, const char *value);

/* Borrowed value of extras[key], or NULL. */
const char *sl_ckpt_operator_get_extra(const sl_ckpt_operator_state_t *op, const char *key);

/**
 * Writes md (borrowed) as <job dir>/chk-<id>/_metadata through the atomic writer (storage.h). Call
 * it last, after every state file is durable: once it returns 0 the checkpoint is complete.
 * Validates md first (same rules as read). Errors: SL_EINVAL (md invalid, or md->job_id differs from
 * the storage's), SL_EEXIST (checkpoint already has a _metadata: a completed checkpoint is never
 * rewritten), SL_EIO, SL_ENOMEM.
 */
int sl_ckpt_metadata_write(const sl_ckpt_storage_t *s, const sl_ckpt_metadata_t *md, char *err, size_t errlen);

/**
 * Reads and validates the _metadata file at `path` into *md (owned by the caller on success:
 * sl_ckpt_metadata_free). Errors: SL_ENOENT, SL_EIO, SL_ENOMEM, and SL_EPARSE for a missing or bad
 * trailer, checksum mismatch, invalid JSON, unknown version, or any field that is missing, of the
 * wrong type or out of range; the message names the file and the field ("operators[1].handles[0].size").
 * On failure *md is zeroed and needs no free.
 */
int sl_ckpt_metadata_read(const char *path, sl_ckpt_metadata_t *md, char *err, size_t errlen);

/* Absolute path of a FILE or SHARED handle under storage `s` into buf[len]. Returns SL_ERANGE when
 * it does not fit, SL_EINVAL for an INLINE handle. */
int sl_ckpt_handle_path(const sl_ckpt_storage_t *s, const sl_ckpt_handle_t *h, char *buf, size_t len);

/**
 * Verifies every handle of md: FILE and SHARED files must exist with the recorded size and
 * checksum (sl_ckpt_file_verify), INLINE data must match its size and checksum. Stops at the first
 * problem. Errors: SL_ENOENT ("checkpoint file missing: <path>"), SL_EPARSE (mismatch, naming the
 * path), SL_EIO; messages are prefixed with the operator ("vertex v1 subtask 0: ...").
 */
int sl_ckpt_metadata_verify_files(const sl_ckpt_storage_t *s, const sl_ckpt_metadata_t *md, char *err, size_t errlen);

#endif /* SL_CHECKPOINT_METADATA_H */
