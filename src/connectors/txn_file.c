/* Two-phase-commit file (see txn_file.h). Work files live beside the output in a hidden
 * directory ".<name>.txn/" (".<name>.r<id>.txn/" for a writer started by a restore from
 * checkpoint id that continues no earlier writer): inprogress, pending-<id>, part-<id>, ids
 * zero-padded so that glob() returns them in commit order. Committed parts are kept after the final file is
 * assembled: a restore from a checkpoint taken before the end (the process died while
 * finishing) still finds every part its checkpoint covers. A fresh run removes them. */
#include "connectors/txn_file.h"

#include <sluice/error.h>

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

#define IOBUF (1 << 16)

static int fail(sl_txn_file_t *t, const char *what, const char *path) {
    snprintf(t->err, sizeof t->err, "%s '%.400s': %s", what, path, strerror(errno));
    return SL_EIO;
}

static void name(const char *dir, const char *kind, uint64_t id, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s-%020" PRIu64, dir, kind, id);
}

static int open_inprogress(sl_txn_file_t *t) {
    char path[4096];
    snprintf(path, sizeof path, "%s/inprogress", t->dir);
    if ((t->f = fopen(path, "w")) == NULL)
        return fail(t, "cannot create", path);
    setvbuf(t->f, t->iobuf, _IOFBF, IOBUF);
    return 0;
}

/* Ids of files "<dir>/<kind>-<id>", in order. The caller frees *ids. */
static int list(const char *dir, const char *kind, uint64_t **ids, size_t *n) {
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s/%s-*", dir, kind);
    glob_t g;
    *ids = NULL;
    *n = 0;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH)
        return 0;
    if (rc != 0)
        return SL_EIO;
    *ids = sl_calloc(g.gl_pathc ? g.gl_pathc : 1, sizeof **ids);
    if (*ids == NULL) {
        globfree(&g);
        return SL_ENOMEM;
    }
    size_t plen = strlen(pattern) - 1;
    for (size_t i = 0; i < g.gl_pathc; i++)
        (*ids)[(*n)++] = strtoull(g.gl_pathv[i] + plen, NULL, 10);
    globfree(&g);
    return 0;
}

static int remove_kind(sl_txn_file_t *t, const char *dir, const char *kind, uint64_t above) {
    uint64_t *ids;
    size_t n;
    int rc = list(dir, kind, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ids[i] <= above)
            continue;
        char path[4096];
        name(dir, kind, ids[i], path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT)
            rc = fail(t, "cannot remove", path);
    }
    sl_free(ids);
    return rc;
}

/* A fresh run owns its output: files of an earlier run go, unless recover() claimed them.
 * Not done at open: a restore must first publish the pending files its checkpoint covers. */
static int purge_stale(sl_txn_file_t *t) {
    if (t->purged)
        return 0;
    t->purged = true;
    int rc = remove_kind(t, t->dir, "pending", 0);
    return rc ? rc : remove_kind(t, t->dir, "part", 0);
}

/* <dir>/.<base>.txn for <dir>/<base>. */
static char *work_dir(const char *final) {
    size_t len = strlen(final) + 8;
    char *d = sl_malloc(len);
    if (d && sl_txn_file_work_dir(final, 0, d, len) != 0) {
        sl_free(d);
        d = NULL;
    }
    return d;
}

int sl_txn_file_open(sl_txn_file_t *t, const char *final, const char *header) {
    memset(t, 0, sizeof *t);
    t->final = sl_strdup(final);
    t->header = sl_strdup(header);
    t->iobuf = sl_malloc(IOBUF);
    if (t->final == NULL || t->header == NULL || t->iobuf == NULL || (t->dir = work_dir(final)) == NULL)
        return SL_ENOMEM;
    if (mkdir(t->dir, 0777) != 0 && errno != EEXIST)
        return fail(t, "cannot create", t->dir);
    return open_inprogress(t);
}

int sl_txn_file_precommit(sl_txn_file_t *t, uint64_t id) {
    int rc = purge_stale(t);
    if (rc)
        return rc;
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/inprogress", t->dir);
    name(t->dir, "pending", id, to, sizeof to);
    /* Durable before the checkpoint can complete: the commit must find it after a crash. */
    if (fflush(t->f) != 0 || fsync(fileno(t->f)) != 0)
        return fail(t, "cannot write", from);
    fclose(t->f);
    t->f = NULL;
    if (rename(from, to) != 0)
        return fail(t, "cannot rename", from);
    return open_inprogress(t);
}

/* pending-k for k <= id in `dir` become part-k. */
static int publish(sl_txn_file_t *t, const char *dir, uint64_t id) {
    uint64_t *ids;
    size_t n;
    int rc = list(dir, "pending", &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ids[i] > id)
            continue;
        char from[4096], to[4096];
        name(dir, "pending", ids[i], from, sizeof from);
        name(dir, "part", ids[i], to, sizeof to);
        if (rename(from, to) != 0)
            rc = fail(t, "cannot publish", from);
    }
    sl_free(ids);
    return rc;
}

int sl_txn_file_commit(sl_txn_file_t *t, uint64_t id) { return publish(t, t->dir, id); }

/* `dir` as of checkpoint id: what id covered published, what came after it deleted. */
static int settle(sl_txn_file_t *t, const char *dir, uint64_t id) {
    int rc = publish(t, dir, id);
    if (rc == 0)
        rc = remove_kind(t, dir, "pending", id);
    return rc ? rc : remove_kind(t, dir, "part", id);
}

int sl_txn_file_recover(sl_txn_file_t *t, uint64_t id) {
    t->purged = true; /* parts up to `id` are this job's committed output */
    return settle(t, t->dir, id);
}

int sl_txn_file_work_dir(const char *final, uint64_t restored, char *buf, size_t len) {
    const char *slash = strrchr(final, '/');
    int dlen = slash ? (int)(slash - final) + 1 : 0;
    const char *base = slash ? slash + 1 : final;
    int n = restored ? snprintf(buf, len, "%.*s.%s.r%" PRIu64 ".txn", dlen, final, base, restored)
                     : snprintf(buf, len, "%.*s.%s.txn", dlen, final, base);
    return n < 0 || (size_t)n >= len ? SL_ERANGE : 0;
}

int sl_txn_file_use_dir(sl_txn_file_t *t, const char *dir) {
    char *d = sl_strdup(dir);
    if (d == NULL)
        return SL_ENOMEM;
    if (t->f)
        fclose(t->f); /* the empty in-progress file of the default directory */
    t->f = NULL;
    sl_free(t->dir);
    t->dir = d;
    t->purged = false;
    if (mkdir(t->dir, 0777) != 0 && errno != EEXIST)
        return fail(t, "cannot create", t->dir);
    return open_inprogress(t);
}

int sl_txn_file_adopt(sl_txn_file_t *t, const char *dir, uint64_t id) {
    char *d = sl_strdup(dir);
    char **a = d ? sl_realloc(t->adopted, (t->nadopted + 1) * sizeof *a) : NULL;
    if (a == NULL) {
        sl_free(d);
        return SL_ENOMEM;
    }
    t->adopted = a;
    t->adopted[t->nadopted++] = d;
    struct stat st;
    if (stat(dir, &st) != 0) /* a writer that never pre-committed anything */
        return errno == ENOENT ? 0 : fail(t, "cannot read", dir);
    return settle(t, dir, id);
}

static int append_file(sl_txn_file_t *t, FILE *out, const char *path) {
    FILE *in = fopen(path, "r");
    if (in == NULL)
        return fail(t, "cannot read", path);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) {
            fclose(in);
            return fail(t, "cannot write", t->final);
        }
    int bad = ferror(in);
    fclose(in);
    return bad ? fail(t, "cannot read", path) : 0;
}

/* Appends the parts of work directory `dir` to `out`, in commit order. */
static int append_parts(sl_txn_file_t *t, FILE *out, const char *dir) {
    uint64_t *ids;
    size_t n;
    int rc = list(dir, "part", &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096];
        name(dir, "part", ids[i], path, sizeof path);
        rc = append_file(t, out, path);
    }
    sl_free(ids);
    return rc;
}

int sl_txn_file_finish(sl_txn_file_t *t) {
    int rc = sl_txn_file_precommit(t, UINT64_MAX - 1);
    if (rc == 0)
        rc = publish(t, t->dir, UINT64_MAX - 1);
    if (rc)
        return rc;
    fclose(t->f); /* the in-progress file reopened by precommit stays empty */
    t->f = NULL;
    char tmp[4096], in[4096];
    snprintf(tmp, sizeof tmp, "%s/final.tmp", t->dir);
    snprintf(in, sizeof in, "%s/inprogress", t->dir);
    unlink(in);
    FILE *out = fopen(tmp, "w");
    if (out == NULL)
        return fail(t, "cannot create", tmp);
    fprintf(out, "%s\n", t->header);
    for (uint32_t i = 0; rc == 0 && i < t->nadopted; i++)
        rc = append_parts(t, out, t->adopted[i]);
    if (rc == 0)
        rc = append_parts(t, out, t->dir);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0)
        rc = rc ? rc : fail(t, "cannot write", tmp);
    fclose(out);
    if (rc == 0 && rename(tmp, t->final) != 0)
        rc = fail(t, "cannot rename", tmp);
    return rc;
}

void sl_txn_file_close(sl_txn_file_t *t) {
    if (t->f)
        fclose(t->f);
    sl_free(t->final);
    sl_free(t->dir);
    sl_free(t->header);
    sl_free(t->iobuf);
    for (uint32_t i = 0; i < t->nadopted; i++)
        sl_free(t->adopted[i]);
    sl_free(t->adopted);
    memset(t, 0, sizeof *t);
}
