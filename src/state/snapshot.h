/* Keyed-state snapshots in a portable format: every state's entries and every timer of a
 * subtask, tagged with their key group, independent of the backend that wrote them. A heap
 * snapshot restores into RocksDB and back, and a restore may take only some key groups, which
 * is how a job restarts at another parallelism. The caller supplies the byte sink (checkpoint
 * storage adds the file checksum) and verifies the checksum before a restore. */
#ifndef SL_STATE_SNAPSHOT_H
#define SL_STATE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "state/keyed_state.h"
#include "state/timer_service.h"

typedef int (*sl_snapshot_sink_fn)(void *arg, const void *data, size_t len);

/* Writes the registered states of `b` (may be NULL: timers only) and the timers of `t`. */
int sl_state_snapshot_write(sl_keyed_backend_t *b, const sl_timer_service_t *t, sl_snapshot_sink_fn sink,
                            void *arg);

/* The same without entries: the state list (names and kinds) and the timers, for snapshots
 * whose entries travel as RocksDB files. */
int sl_state_snapshot_write_meta(sl_keyed_backend_t *b, const sl_timer_service_t *t, sl_snapshot_sink_fn sink,
                                 void *arg);

/* An asynchronous snapshot (heap backend): sl_state_snapshot_capture takes, on the backend's
 * thread, a copy-on-write view of the keyed state (state/heap_backend.h) and the timers
 * serialised into memory; sl_state_capture_write then writes exactly the bytes
 * sl_state_snapshot_write would have written at capture time, from another thread while the
 * backend's thread goes on. Release frees the capture and ends the copy-on-write view. */
typedef struct sl_state_capture_s sl_state_capture_t;

/* Backend's thread. `b` must be a heap backend (or NULL: timers only). Errors: SL_EAGAIN (a
 * capture of `b` is still unreleased), SL_ENOMEM. */
int sl_state_snapshot_capture(sl_keyed_backend_t *b, const sl_timer_service_t *t, sl_state_capture_t **out);
/* Any one thread. Errors: those of the sink. */
int sl_state_capture_write(sl_state_capture_t *c, sl_snapshot_sink_fn sink, void *arg);
/* Any one thread, after the write; NULL is a no-op. */
void sl_state_capture_release(sl_state_capture_t *c);

/* Restores the entries and timers of key groups [kg_first, kg_last] from a snapshot into `b`
 * and `t` (states are registered by name as needed). Errors: SL_EPARSE with a message naming
 * the offset and what is wrong; SL_ENOMEM; backend errors. */
int sl_state_snapshot_restore(sl_keyed_backend_t *b, sl_timer_service_t *t, const uint8_t *data, size_t len,
                              uint32_t kg_first, uint32_t kg_last, char *err, size_t errlen);

#endif
