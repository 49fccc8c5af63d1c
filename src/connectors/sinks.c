/* Built-in sinks: print (stdout), CSV file, discard (counts only) and a user sink function.
 * Rows are formatted field by field straight from the row bytes into a stdio buffer: no
 * allocation per record. The CSV sink writes a header row; with parallelism > 1 subtask k
 * writes path.k so subtasks never share a file.
 *
 * RESCALING THE EXACTLY-ONCE CSV SINK
 * A transactional CSV subtask saves the work directories (txn_file.h) whose committed parts
 * its output holds: extras "dirs" (continued in "dirs1", "dirs2", ... when long) = its own
 * writing directory, then the ones it took over, each as a token: "-" for the work directory
 * of `path` itself, "k" for that of path.k, "-r<id>" / "kr<id>" for those of writers started
 * by a restore from checkpoint id. On a restore, new subtask i (restore.h hands it the sets of
 * old subtasks j % P' == i) continues the writing directory of an inherited set whose output
 * file is its own (the same parallelism: its own), or else writes into a new ".r<id>"
 * directory; it adopts every other directory listed, so its final file holds the committed
 * rows of all the old subtasks it replaced, and an old output file that no subtask of the job
 * writes any more is removed (its rows are now in ours). The files of all subtasks together
 * therefore hold every row once, whatever the parallelisms. */
#include <sluice/error.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    bool txn;        /* snapshots possible: exactly-once through two-phase commit */
    sl_txn_file_t tf;
    const char *out_base; /* parameter 'path' */
    char token[32];     /* the writing directory's token (see above) */
    char **adopted;     /* tokens of the directories taken over */
    uint32_t nadopted;
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
    o->out_base = path;
    if (op->parallelism > 1)
        snprintf(o->token, sizeof o->token, "%u", op->subtask_index);
    else
        snprintf(o->token, sizeof o->token, "-");
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
    /* Whenever a snapshot may cover the output: checkpoints, savepoints (a checkpoint directory
     * is where they are staged), or a restore (the committed parts to continue). */
    const char *ckdir = op->config ? sl_config_str(op->config, "state.checkpoints.dir") : NULL;
    const char *from = op->config ? sl_config_str(op->config, "execution.savepoint.path") : NULL;
    o->txn = op->config && (sl_config_duration_ms(op->config, "execution.checkpointing.interval") > 0 ||
                            (ckdir && ckdir[0]) || (from && from[0]));
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
    if (!o->txn)
        return 0;
    /* The token list, cut at token boundaries into values of at most 127 bytes. */
    char v[128], key[16];
    size_t len = 0;
    uint32_t nkeys = 0;
    for (uint32_t i = 0; i <= o->nadopted; i++) {
        const char *tok = i == 0 ? o->token : o->adopted[i - 1];
        size_t tl = strlen(tok);
        if (len && len + 1 + tl >= sizeof v) {
            snprintf(key, sizeof key, nkeys ? "dirs%u" : "dirs", nkeys);
            if (sl_op_extras_set(x, key, v) != 0)
                return sl_operator_fail(op, SL_ERANGE, "checkpoint %llu: too many output files taken over to save",
                                        (unsigned long long)id);
            nkeys++;
            len = 0;
        }
        len += (size_t)snprintf(v + len, sizeof v - len, "%s%s", len ? "," : "", tok);
    }
    snprintf(key, sizeof key, nkeys ? "dirs%u" : "dirs", nkeys);
    if (sl_op_extras_set(x, key, v) != 0)
        return sl_operator_fail(op, SL_ERANGE, "checkpoint %llu: too many output files taken over to save",
                                (unsigned long long)id);
    return txn_result(op, sl_txn_file_precommit(&o->tf, id));
}

static int csv_complete(sl_operator_t *op, uint64_t id) {
    sink_op_t *o = (sink_op_t *)op;
    return o->txn ? txn_result(op, sl_txn_file_commit(&o->tf, id)) : 0;
}

/* A token's output file ("-" -> base, "k" -> base.k) and work directory. */
static int token_paths(const sink_op_t *o, const char *tok, char *final, size_t flen, char *dir, size_t dlen) {
    char *end;
    unsigned long long restored = 0;
    size_t n = strcspn(tok, "r");
    if (tok[n] == 'r') {
        restored = strtoull(tok + n + 1, &end, 10);
        if (end == tok + n + 1 || *end != '\0' || restored == 0)
            return SL_EPARSE;
    }
    if (n == 1 && tok[0] == '-') {
        snprintf(final, flen, "%s", o->out_base);
    } else {
        unsigned long k = strtoul(tok, &end, 10);
        if (n == 0 || end != tok + n)
            return SL_EPARSE;
        snprintf(final, flen, "%s.%lu", o->out_base, k);
    }
    return sl_txn_file_work_dir(final, restored, dir, dlen);
}

/* Whether a subtask of the job as it runs now writes output file `tok` names. */
static bool written_now(const sl_operator_t *op, const char *tok) {
    if (tok[0] == '-')
        return op->parallelism == 1;
    return op->parallelism > 1 && strtoul(tok, NULL, 10) < op->parallelism;
}

static bool same_file(const char *a, const char *b) {
    return strcspn(a, "r") == strcspn(b, "r") && strncmp(a, b, strcspn(a, "r")) == 0;
}

/* The tokens of one inherited set, comma-separated, into buf. */
static void set_tokens(const sl_op_extras_t *x, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t k = 0; k < SL_OP_EXTRAS_MAX; k++) {
        char key[16];
        snprintf(key, sizeof key, k ? "dirs%u" : "dirs", k);
        const char *v = sl_op_extras_get(x, key);
        if (v == NULL)
            break;
        off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", v);
    }
}

static int adopt_token(sink_op_t *o, const char *tok, uint64_t id) {
    char final[4096], dir[4096];
    char **a = sl_realloc(o->adopted, (o->nadopted + 1) * sizeof *a);
    if (a == NULL)
        return SL_ENOMEM;
    o->adopted = a;
    if ((o->adopted[o->nadopted] = sl_strdup(tok)) == NULL)
        return SL_ENOMEM;
    o->nadopted++;
    if (token_paths(o, tok, final, sizeof final, dir, sizeof dir) != 0)
        return sl_operator_fail(&o->base, SL_EPARSE, "checkpoint %llu: bad saved output token '%s'",
                                (unsigned long long)id, tok);
    int rc = sl_txn_file_adopt(&o->tf, dir, id);
    if (rc == 0 && !written_now(&o->base, tok) && unlink(final) != 0 && errno != ENOENT)
        return sl_operator_fail(&o->base, SL_EIO, "cannot remove '%s', whose rows %s now holds: %s", final, o->path,
                                strerror(errno));
    return rc;
}

static int csv_restore(sl_operator_t *op, uint64_t id, const sl_op_extras_t *sets, uint32_t n) {
    sink_op_t *o = (sink_op_t *)op;
    if (!o->txn)
        return 0;
    char own[32], dir[4096], final[4096];
    snprintf(own, sizeof own, "%s", o->token);
    /* The writer to continue: an inherited one (the first token of a set) writing our file. */
    char cont[32] = "", toks[SL_OP_EXTRAS_MAX * 128 + 1];
    for (uint32_t k = 0; k < n && cont[0] == '\0'; k++) {
        set_tokens(&sets[k], toks, sizeof toks);
        if (toks[0] == '\0') {
            if (n == 1) /* saved before sinks listed directories: its own, at the same parallelism */
                snprintf(cont, sizeof cont, "%s", own);
            continue;
        }
        toks[strcspn(toks, ",")] = '\0';
        if (same_file(toks, own))
            snprintf(cont, sizeof cont, "%.31s", toks);
    }
    if (cont[0])
        snprintf(o->token, sizeof o->token, "%s", cont);
    else
        snprintf(o->token, sizeof o->token, "%.10sr%llu", own, (unsigned long long)id);
    int rc = token_paths(o, o->token, final, sizeof final, dir, sizeof dir);
    if (rc)
        return sl_operator_fail(op, SL_EPARSE, "checkpoint %llu: bad saved output token '%s'", (unsigned long long)id,
                                o->token);
    if (strcmp(o->token, own) != 0 && (rc = sl_txn_file_use_dir(&o->tf, dir)) != 0)
        return txn_result(op, rc);
    if (cont[0] && (rc = sl_txn_file_recover(&o->tf, id)) != 0)
        return txn_result(op, rc);
    for (uint32_t k = 0; k < n; k++) {
        set_tokens(&sets[k], toks, sizeof toks);
        if (toks[0] == '\0' && n > 1)
            return sl_operator_fail(op, SL_EJOB, "checkpoint %llu predates rescalable CSV sinks: restore it at its "
                                    "parallelism", (unsigned long long)id);
        char *save = NULL;
        for (char *tok = strtok_r(toks, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (strcmp(tok, o->token) != 0 && (rc = adopt_token(o, tok, id)) != 0)
                return o->tf.err[0] ? txn_result(op, rc) : rc;
    }
    return txn_result(op, 0);
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
    for (uint32_t i = 0; i < o->nadopted; i++)
        sl_free(o->adopted[i]);
    sl_free(o->adopted);
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
                                             .ninputs = 1,
                                             .rescalable = true};
const sl_operator_vtable_t sl_op_sink_discard = {
    .kind = "sink_discard", .process = discard_process, .size = sizeof(sink_op_t), .ninputs = 1};
const sl_operator_vtable_t sl_op_sink_fn = {
    .kind = "sink_fn", .open = fn_open, .process = fn_process, .size = sizeof(sink_op_t), .ninputs = 1};
