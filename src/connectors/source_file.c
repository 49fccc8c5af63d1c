/* File sources: text lines ("line:string") and CSV parsed into a schema.
 * Subtask k of P takes the lines whose number is k modulo P, so any parallelism reads each
 * line once. A malformed CSV line fails the job with file:line and the cause, or with
 * csv.ignore-parse-errors is skipped, counted and logged (the first few). */
#include <sluice/error.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/csv_parse.h"
#include "core/config.h"
#include "core/log.h"
#include "operators/operator.h"

typedef struct {
    sl_operator_t base;
    FILE *f;
    const char *path;
    char *line;
    size_t cap;
    uint64_t line_no;   /* 1-based number of the last line read */
    bool csv;
    bool header;
    bool ignore_errors;
    uint64_t skipped;
} file_op_t;

static int file_open(sl_operator_t *op) {
    file_op_t *o = (file_op_t *)op;
    o->path = sl_params_get(op->params, "path");
    if (o->path == NULL)
        return sl_operator_fail(op, SL_EJOB, "missing parameter 'path'");
    bool header = false;
    sl_params_bool(op->params, "header", false, &header);
    o->header = header;
    o->ignore_errors = op->config && sl_config_bool(op->config, "csv.ignore-parse-errors");
    if ((o->f = fopen(o->path, "r")) == NULL)
        return sl_operator_fail(op, errno == ENOENT ? SL_ENOENT : SL_EIO, "cannot open '%s': %s", o->path,
                                strerror(errno));
    return 0;
}

static int csv_open(sl_operator_t *op) {
    ((file_op_t *)op)->csv = true;
    return file_open(op);
}

static int emit_line(file_op_t *o, const char *line, size_t len) {
    sl_operator_t *op = &o->base;
    if (!o->csv) {
        sl_row_builder_t *b = sl_output_row(op->out);
        sl_row_set_str(b, 0, line, (uint32_t)len);
        return sl_output_emit_built(op->out, SL_TS_NONE);
    }
    char err[512];
    int rc = sl_csv_parse_row(line, len, op->out_schema, &op->out->builder, err, sizeof err);
    if (rc == 0)
        return sl_output_emit_built(op->out, SL_TS_NONE);
    if (!o->ignore_errors)
        return sl_operator_fail(op, rc, "%s:%llu: %s", o->path, (unsigned long long)o->line_no, err);
    if (o->skipped++ < 10)
        SL_WARN("%s:%llu: skipped: %s", o->path, (unsigned long long)o->line_no, err);
    return 0;
}

static int file_poll(sl_operator_t *op, uint32_t budget, bool *end) {
    file_op_t *o = (file_op_t *)op;
    for (uint32_t i = 0; i < budget; i++) {
        ssize_t n = getline(&o->line, &o->cap, o->f);
        if (n < 0) {
            if (ferror(o->f))
                return sl_operator_fail(op, SL_EIO, "reading '%s': %s", o->path, strerror(errno));
            *end = true;
            return 0;
        }
        o->line_no++;
        if (o->header && o->line_no == 1)
            continue;
        if ((o->line_no - 1) % op->parallelism != op->subtask_index)
            continue;
        size_t len = (size_t)n;
        while (len && (o->line[len - 1] == '\n' || o->line[len - 1] == '\r'))
            len--;
        int rc = emit_line(o, o->line, len);
        if (rc)
            return rc;
    }
    return 0;
}

static int file_finish(sl_operator_t *op) {
    file_op_t *o = (file_op_t *)op;
    if (o->skipped)
        SL_WARN("%s: %llu malformed line(s) skipped (csv.ignore-parse-errors)", o->path,
                (unsigned long long)o->skipped);
    return 0;
}

static void file_close(sl_operator_t *op) {
    file_op_t *o = (file_op_t *)op;
    if (o->f)
        fclose(o->f);
    free(o->line); /* allocated by getline */
}

/* Position: the next line's number and byte offset. */
static int file_snapshot(sl_operator_t *op, uint64_t id, sl_op_extras_t *x) {
    file_op_t *o = (file_op_t *)op;
    char v[32];
    long off = ftell(o->f);
    if (off < 0)
        return sl_operator_fail(op, SL_EIO, "cannot tell the position in '%s': %s", o->path, strerror(errno));
    snprintf(v, sizeof v, "%ld", off);
    int rc = sl_op_extras_set(x, "offset", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)o->line_no);
    return rc ? rc : sl_op_extras_set(x, "line", v);
}

/* Not rescalable: each subtask reads the whole file and keeps the lines of its residue, with
 * one byte offset, so the positions of several subtasks cannot be merged into one reader. A
 * restore at another parallelism is refused (restore.c) naming this operator. */
static int file_restore(sl_operator_t *op, uint64_t id, const sl_op_extras_t *sets, uint32_t n) {
    file_op_t *o = (file_op_t *)op;
    if (n != 1)
        return sl_operator_fail(op, SL_EJOB, "checkpoint %llu: '%s' cannot take over the positions of %u subtasks",
                                (unsigned long long)id, o->path, n);
    const char *off = sl_op_extras_get(&sets[0], "offset"), *line = sl_op_extras_get(&sets[0], "line");
    if (off == NULL || line == NULL)
        return sl_operator_fail(op, SL_EPARSE, "checkpoint %llu: no saved position for '%s'", (unsigned long long)id,
                                o->path);
    if (fseek(o->f, strtol(off, NULL, 10), SEEK_SET) != 0)
        return sl_operator_fail(op, SL_EIO, "cannot seek in '%s' to %s: %s", o->path, off, strerror(errno));
    o->line_no = strtoull(line, NULL, 10);
    return 0;
}

const sl_operator_vtable_t sl_op_source_lines = {
    .kind = "source_lines", .open = file_open, .source_poll = file_poll, .finish = file_finish,
    .close = file_close, .snapshot = file_snapshot, .restore = file_restore, .size = sizeof(file_op_t), .ninputs = 0};
const sl_operator_vtable_t sl_op_source_csv = {
    .kind = "source_csv", .open = csv_open, .source_poll = file_poll, .finish = file_finish,
    .close = file_close, .snapshot = file_snapshot, .restore = file_restore, .size = sizeof(file_op_t), .ninputs = 0};
