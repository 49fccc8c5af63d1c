/* Built-in sinks: print (stdout), CSV file, discard (counts only) and a user sink function.
 * Rows are formatted field by field straight from the row bytes into a stdio buffer: no
 * allocation per record. The CSV sink writes a header row; with parallelism > 1 subtask k
 * writes path.k so subtasks never share a file. */
#include <sluice/error.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "connectors/txn_file.h"
#include "core/alloc.h"
#include "core/config.h"
#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    FILE *f;
    bool owned;      /* fclose at close */
    char *path;
    char *iobuf;
    sl_sink_fn fn;
    char *prefix;    /* "k> " when subtasks share stdout */
    bool txn;        /* checkpointing on: exactly-once through two-phase commit */
    sl_txn_file_t tf;
} sink_op_t;

static int write_row(sink_op_t *o, const sl_row_t *r) {
    const sl_schema_t *s = o->base.in_schema[0];
    uint32_t n = sl_schema_nfields(s);
    char buf[8192];
    if (o->prefix)
        fputs(o->prefix, o->f);
    for (uint32_t i = 0; i < n; i++) {
        int w = sl_row_format_field(r, s, i, buf, sizeof buf);
        if (w < 0)
            return sl_operator_fail(&o->base, w, "field %u does not fit the %zu-byte format buffer", i, sizeof buf);
        if (i)
            fputc(',', o->f);
        fwrite(buf, 1, (size_t)w, o->f);
    }
    fputc('\n', o->f);
    return 0;
}

static int write_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    sink_op_t *o = (sink_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        int rc = write_row(o, &in->rows[i]);
        if (rc)
            return rc;
    }
    if (ferror(o->f))
        return sl_operator_fail(op, SL_EIO, "writing %s: %s", o->path ? o->path : "stdout", strerror(errno));
    return 0;
}

static int print_open(sl_operator_t *op) {
    sink_op_t *o = (sink_op_t *)op;
    o->f = stdout;
    if (op->parallelism > 1) {
        char p[32];
        snprintf(p, sizeof p, "%u> ", op->subtask_index + 1);
        if ((o->prefix = sl_strdup(p)) == NULL)
            return SL_ENOMEM;
    }
    return 0;
}

static int csv_open(sl_operator_t *op) {
    sink_op_t *o = (sink_op_t *)op;
    const char *path = sl_params_get(op->params, "path");
    if (path == NULL)
        return sl_operator_fail(op, SL_EJOB, "missing parameter 'path'");
    size_t len = strlen(path) + 16;
    if ((o->path = sl_malloc(len)) == NULL || (o->iobuf = sl_malloc(1 << 16)) == NULL)
        return SL_ENOMEM;
    if (op->parallelism > 1)
        snprintf(o->path, len, "%s.%u", path, op->subtask_index);
    else
        snprintf(o->path, len, "%s", path);
    char header[4096];
    size_t off = 0;
    const sl_schema_t *s = op->in_schema[0];
    for (uint32_t i = 0; i < sl_schema_nfields(s) && off < sizeof header; i++)
        off += (size_t)snprintf(header + off, sizeof header - off, "%s%s", i ? "," : "", sl_schema_field(s, i)->name);
    o->txn = op->config && sl_config_duration_ms(op->config, "execution.checkpointing.interval") > 0;
    if (o->txn) {
        int rc = sl_txn_file_open(&o->tf, o->path, header);
        if (rc)
            return sl_operator_fail(op, rc, "%s", o->tf.err[0] ? o->tf.err : sl_strerror(rc));
        o->f = sl_txn_file_stream(&o->tf);
        return 0;
    }
    if ((o->f = fopen(o->path, "w")) == NULL)
        return sl_operator_fail(op, SL_EIO, "cannot create '%s': %s", o->path, strerror(errno));
    o->owned = true;
    setvbuf(o->f, o->iobuf, _IOFBF, 1 << 16);
    fprintf(o->f, "%s\n", header);
    return 0;
}

/* Two-phase commit of the CSV file (txn_file.h): pre-commit at the snapshot, commit when the
 * checkpoint completes, and after a restore keep exactly what the checkpoint covered. */
static int txn_result(sl_operator_t *op, int rc) {
    sink_op_t *o = (sink_op_t *)op;
    o->f = sl_txn_file_stream(&o->tf);
    return rc ? sl_operator_fail(op, rc, "%s", o->tf.err[0] ? o->tf.err : sl_strerror(rc)) : 0;
}

static int csv_snapshot(sl_operator_t *op, uint64_t id, sl_op_extras_t *x) {
    sink_op_t *o = (sink_op_t *)op;
    return o->txn ? txn_result(op, sl_txn_file_precommit(&o->tf, id)) : 0;
}

static int csv_complete(sl_operator_t *op, uint64_t id) {
    sink_op_t *o = (sink_op_t *)op;
    return o->txn ? txn_result(op, sl_txn_file_commit(&o->tf, id)) : 0;
}

static int csv_restore(sl_operator_t *op, uint64_t id, const sl_op_extras_t *x) {
    sink_op_t *o = (sink_op_t *)op;
    return o->txn ? txn_result(op, sl_txn_file_recover(&o->tf, id)) : 0;
}

static int file_finish(sl_operator_t *op) {
    sink_op_t *o = (sink_op_t *)op;
    if (o->txn) {
        int rc = sl_txn_file_finish(&o->tf);
        o->f = NULL;
        return rc ? sl_operator_fail(op, rc, "%s", o->tf.err[0] ? o->tf.err : sl_strerror(rc)) : 0;
    }
    if (fflush(o->f) != 0 || ferror(o->f))
        return sl_operator_fail(op, SL_EIO, "writing %s: %s", o->path ? o->path : "stdout", strerror(errno));
    if (o->owned) {
        int rc = fclose(o->f);
        o->f = NULL;
        o->owned = false;
        if (rc != 0)
            return sl_operator_fail(op, SL_EIO, "closing %s: %s", o->path, strerror(errno));
    }
    return 0;
}

static void sink_close(sl_operator_t *op) {
    sink_op_t *o = (sink_op_t *)op;
    if (o->txn)
        sl_txn_file_close(&o->tf);
    if (o->owned && o->f)
        fclose(o->f);
    sl_free(o->path);
    sl_free(o->iobuf);
    sl_free(o->prefix);
}

static int discard_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    return 0;
}

static int fn_open(sl_operator_t *op) {
    return sl_operator_symbol(op, "fn", true, (void **)&((sink_op_t *)op)->fn);
}

static int fn_process(sl_operator_t *op, uint32_t input, sl_batch_t *in) {
    sink_op_t *o = (sink_op_t *)op;
    for (uint32_t i = 0; i < in->n; i++) {
        int rc = o->fn(&op->fn_ctx, &in->rows[i], in->ts[i]);
        if (rc)
            return sl_operator_user_failed(op, "fn", rc);
    }
    return 0;
}

const sl_operator_vtable_t sl_op_sink_print = {
    .kind = "sink_print", .open = print_open, .process = write_process, .finish = file_finish,
    .close = sink_close, .size = sizeof(sink_op_t), .ninputs = 1};
const sl_operator_vtable_t sl_op_sink_csv = {.kind = "sink_csv",
                                             .open = csv_open,
                                             .process = write_process,
                                             .finish = file_finish,
                                             .close = sink_close,
                                             .snapshot = csv_snapshot,
                                             .restore = csv_restore,
                                             .checkpoint_complete = csv_complete,
                                             .size = sizeof(sink_op_t),
                                             .ninputs = 1};
const sl_operator_vtable_t sl_op_sink_discard = {
    .kind = "sink_discard", .process = discard_process, .size = sizeof(sink_op_t), .ninputs = 1};
const sl_operator_vtable_t sl_op_sink_fn = {
    .kind = "sink_fn", .open = fn_open, .process = fn_process, .size = sizeof(sink_op_t), .ninputs = 1};
