/* The operator interface: what the task runtime calls, and what operators may call back.
 *
 * DESIGN
 * An operator is created from plain data, (kind, params, schemas), by the factory registered
 * for its kind (operator_registry.c), so a JobGraph can be shipped to another process and
 * rebuilt there. A chain of operators runs on one subtask thread: each operator's output either
 * feeds the next operator of the chain by direct call (a batch at a time) or a record writer
 * towards the network. All callbacks run on the subtask thread; operators take no locks.
 *
 * Life cycle: create -> open -> { process | watermark | timer }* -> end_input -> finish -> close.
 * After any callback returns an error the task fails and only close is called. */
#ifndef SL_OPERATORS_OPERATOR_H
#define SL_OPERATORS_OPERATOR_H

#include <sluice/function.h>
#include <sluice/row.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_config_s;
struct sl_mailbox_s;
#include "core/bytes.h"
#include "core/params.h"
#include "operators/agg.h"
#include "operators/batch.h"
#include "operators/key_selector.h"
#include "operators/output.h"
#include "state/keyed_state.h"
#include "state/timer_service.h"

typedef struct sl_operator_s sl_operator_t;

/* Small named strings an operator saves in a checkpoint (outside keyed state). */
#define SL_OP_EXTRAS_MAX 16
typedef struct sl_op_extras_s {
    uint32_t n;
    char key[SL_OP_EXTRAS_MAX][32];
    char value[SL_OP_EXTRAS_MAX][128];
} sl_op_extras_t;

/* Sets key = value (SL_ERANGE when full or too long). */
int sl_op_extras_set(sl_op_extras_t *x, const char *key, const char *value);
/* The value of `key`, or NULL. */
const char *sl_op_extras_get(const sl_op_extras_t *x, const char *key);

#define SL_WATERMARK_MIN INT64_MIN
#define SL_WATERMARK_MAX INT64_MAX

typedef struct sl_operator_vtable_s {
    const char *kind;
    /* Parses params, resolves symbols, registers state. Errors carry a message via
     * sl_operator_fail(). */
    int (*open)(sl_operator_t *op);
    /* A batch of records from input 0 or 1 (two-input operators). */
    int (*process)(sl_operator_t *op, uint32_t input, sl_batch_t *in);
    /* The combined input watermark advanced to `wm`. NULL means the default: fire event-time
     * timers <= wm (calling `timer`), then forward the watermark downstream. */
    int (*watermark)(sl_operator_t *op, int64_t wm);
    /* A timer registered through the timer service fired; the current key is already set. */
    int (*timer)(sl_operator_t *op, sl_timer_domain_t domain, const sl_timer_t *t);
    /* Input `input` has ended (all its channels finished). May be NULL. */
    int (*end_input)(sl_operator_t *op, uint32_t input);
    /* All inputs ended and the final watermark was processed: emit what is left. May be NULL. */
    int (*finish)(sl_operator_t *op);
    /* Releases everything; called exactly once, also after a failure and also when open was
     * never called (the struct is then as calloc left it). May be NULL. */
    void (*close)(sl_operator_t *op);
    /* Sources only: emit up to `budget` records into op->out; set *end when the input is
     * exhausted (bounded sources). Must not block for long: return with nothing emitted when
     * no data is ready (a socket), so the task can run timers and flushes. */
    int (*source_poll)(sl_operator_t *op, uint32_t budget, bool *end);
    /* Called every pipeline.auto-watermark-interval with processing time `now` (ms); used by
     * the watermark generator and idleness detection. May be NULL. */
    int (*tick)(sl_operator_t *op, int64_t now);
    /* Checkpoints. snapshot: save what is not keyed state (a source's position, a sink's
     * pending files) as small key/value strings; the task has already flushed its output.
     * restore: called once, after open, when the job starts from a checkpoint that holds the
     * operator's vertex, with the sets saved by the old subtasks whose positions this subtask
     * takes over, in old subtask order (sets[k], k < n; a set may be empty). At the
     * checkpoint's parallelism that is exactly one set, the subtask's own. Rescaling hands old
     * subtask j's set to new subtask j % parallelism, so n may be 0 (the subtask starts with
     * nothing of its own: a source has no split to read) or more than 1 (merge them).
     * checkpoint_complete: the checkpoint is durable (commit side effects). All may be NULL. */
    int (*snapshot)(sl_operator_t *op, uint64_t checkpoint_id, sl_op_extras_t *x);
    int (*restore)(sl_operator_t *op, uint64_t checkpoint_id, const sl_op_extras_t *sets, uint32_t n);
    int (*checkpoint_complete)(sl_operator_t *op, uint64_t checkpoint_id);
    /* Operator state that is neither keyed nor a small position (async I/O's requests in
     * flight): snapshot_state appends bytes to `out`; restore_state is called once per blob
     * saved by the subtasks whose state this one takes over (rescaling hands old subtask j's
     * blob to new subtask j % parallelism), after restore. Both may be NULL. */
    int (*snapshot_state)(sl_operator_t *op, uint64_t checkpoint_id, sl_bytes_t *out);
    int (*restore_state)(sl_operator_t *op, const uint8_t *data, size_t len);
    /* Work arriving from other threads (async I/O completions) or due at a time: runs on the
     * subtask thread after sl_operator_request_service() or once the monotonic clock passes
     * op->service_at. The task flushes the operator's output afterwards. May be NULL. */
    int (*service)(sl_operator_t *op, int64_t now_mono);
    /* Bytes of the operator struct (sl_operator_t must be its first member). */
    size_t size;
    /* Number of inputs: 0 (source), 1 or 2. */
    uint32_t ninputs;
    /* True when the operator needs keyed state (its inputs arrive keyed). */
    bool keyed;
    /* True when restore accepts any number of sets (positions can be redistributed). An
     * operator with a restore and without this keeps its vertex at the checkpoint's
     * parallelism: a restore at another one is refused before the job starts. */
    bool rescalable;
} sl_operator_vtable_t;

/* User state a user function has used, resolved by name once (fn_state.c): the backend state
 * id, how the function uses it (value, list, map, reducing, aggregating) and the declared
 * reduce function or aggregate. Names of SL_FN_STATE_NAME_MAX bytes or more, and states past
 * the first SL_FN_STATES_MAX, are resolved again on each call. Subtask thread only. */
#define SL_FN_STATES_MAX 16
#define SL_FN_STATE_NAME_MAX 48
typedef struct sl_fn_state_s {
    char name[SL_FN_STATE_NAME_MAX];
    uint32_t id;
    uint32_t kind;
    sl_state_reduce_fn reduce;  /* reducing state */
    const sl_aggregate_t *agg;  /* aggregating state; in the job library */
} sl_fn_state_t;
typedef struct sl_fn_states_s {
    const sl_keyed_backend_t *backend; /* the ids are this backend's; another one empties the list */
    uint32_t n;
    int64_t now; /* with a state TTL: the processing time of the current access, read once */
    sl_fn_state_t e[SL_FN_STATES_MAX];
} sl_fn_states_t;

/* User-function context: public opaque type of <sluice/function.h>, defined here. */
struct sl_fn_ctx_s {
    sl_operator_t *op;
};

struct sl_collector_s {
    sl_output_t *out;
    uint32_t nfields;
    int64_t ts; /* timestamp given to rows emitted through this collector */
};

struct sl_operator_s {
    const sl_operator_vtable_t *vt;
    const char *name;                 /* borrowed from the job graph */
    const sl_params_t *params;        /* borrowed from the job graph */
    const struct sl_config_s *config; /* borrowed from the job */
    const sl_schema_t *in_schema[2];  /* borrowed; NULL for absent inputs */
    const sl_schema_t *out_schema;    /* borrowed; NULL for sinks */
    sl_key_selector_t key[2];         /* how each input is keyed (keyed operators) */
    sl_key_buf_t key_buf;             /* scratch for the current record's key */
    uint32_t subtask_index;
    uint32_t parallelism;
    uint32_t max_parallelism;
    void *user_lib;                   /* dlopen handle of the job library, NULL = this program */
    sl_keyed_backend_t *state;        /* owned by the task; NULL for non-keyed operators */
    sl_timer_service_t *timers;       /* owned by the task */
    int64_t current_watermark;
    int64_t (*now_ms)(void);          /* processing-time clock, replaceable in tests */
    int64_t state_ttl_ms;             /* user state expires this long after its last write; 0 = never */
    sl_output_t *out;                 /* owned by the task; NULL for sinks */
    sl_fn_ctx_t fn_ctx;
    sl_fn_states_t fn_states;         /* user state by name (fn_state.c) */
    char *error;                      /* message buffer owned by the task */
    size_t error_len;
    /* Counters read by the progress display; written only by the subtask thread. */
    uint64_t records_in;
    /* Service requests (see vtable.service): the task's mailbox, set by any thread. */
    struct sl_mailbox_s *mailbox;
    atomic_bool service_requested;
    int64_t service_at;               /* monotonic ms; INT64_MAX = nothing due */
};

/* Any thread: asks for op->vt->service on the subtask thread soon. */
void sl_operator_request_service(sl_operator_t *op);
/* Subtask thread, inside a callback that cannot go on (a full async queue): flushes the
 * operator's output, then sleeps until a service request or op->service_at, and runs the
 * service. SL_ECANCELED when the task is cancelled meanwhile. */
int sl_operator_wait_service(sl_operator_t *op);

/* Records a failure message (first one wins) and returns `err`. */
int sl_operator_fail(sl_operator_t *op, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A user function named by parameter `param` returned `rc` < 0: records "user function 'sym'
 * failed: cause" unless the function left its own message (sl_fn_fail). Returns rc. */
int sl_operator_user_failed(sl_operator_t *op, const char *param, int rc);

/* Resolves a user function symbol named by param `key` (in the job library, else in this
 * program). SL_ESYMBOL with a message naming symbol and operator when missing. */
int sl_operator_symbol(sl_operator_t *op, const char *key, bool required, void **out);

/* Extracts the key of `row` from input `input`, and makes it the current key of the state
 * backend. Returns the key group or a negative error. */
int sl_operator_set_key(sl_operator_t *op, uint32_t input, const sl_row_t *row);

/* Default watermark handling: fires due event-time timers, then forwards `wm`. */
int sl_operator_default_watermark(sl_operator_t *op, int64_t wm);

/* Fires processing-time timers due at `now`. */
int sl_operator_fire_proc_timers(sl_operator_t *op, int64_t now);

/* Finds a user aggregate (a `const sl_aggregate_t`) by symbol; `arg` is the operator. */
const sl_aggregate_t *sl_operator_aggregate_symbol(void *arg, const char *symbol);
/* Compiles parameter "aggs" against input 0 (see agg.h); fails the operator with the cause. */
int sl_operator_compile_aggs(sl_operator_t *op, sl_agg_list_t *aggs);
/* Copies the key fields of input 0 (fields of the key selector) into fields 0.. of `b`. */
void sl_operator_copy_key_fields(const sl_operator_t *op, const sl_row_t *in, sl_row_builder_t *b);

/* ---- Registry: kind -> vtable ---- */
const sl_operator_vtable_t *sl_operator_lookup(const char *kind);

#endif
