/* Restore planning (see restore.h). */
#include "minicluster/restore.h"

#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/metadata.h"
#include "checkpoint/storage.h"
#include "core/alloc.h"
#include "core/key_group.h"
#include "core/log.h"
#include "minicluster/coordinator.h"

static int read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s", path);
        return SL_ENOENT;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = n > 0 ? sl_malloc((size_t)n) : NULL;
    if (n < 0 || (n > 0 && (b == NULL || fread(b, 1, (size_t)n, f) != (size_t)n))) {
        fclose(f);
        sl_free(b);
        snprintf(err, errlen, "cannot read %s", path);
        return SL_EIO;
    }
    fclose(f);
    *out = b;
    *len = (size_t)n;
    return 0;
}

static bool is_op_state(const sl_ckpt_handle_t *h) {
    size_t n = h->path ? strlen(h->path) : 0;
    return n > 8 && strcmp(h->path + n - 8, ".opstate") == 0;
}

static int append_blob(uint8_t ***blobs, size_t **lens, uint32_t *n, uint8_t *data, size_t len) {
    uint8_t **nb = sl_realloc(*blobs, (*n + 1) * sizeof *nb);
    if (nb)
        *blobs = nb;
    size_t *nl = nb ? sl_realloc(*lens, (*n + 1) * sizeof *nl) : NULL;
    if (nl)
        *lens = nl;
    if (nb == NULL || nl == NULL) {
        sl_free(data);
        return SL_ENOMEM;
    }
    (*blobs)[*n] = data;
    (*lens)[(*n)++] = len;
    return 0;
}

/* Operator state (not keyed) goes whole to one new subtask: old j -> new j % parallelism. */
static int assign_op_state(sl_task_restore_t *r, const sl_ckpt_storage_t *s, const sl_ckpt_operator_state_t *os,
                           char *err, size_t errlen) {
    for (uint32_t h = 0; h < os->n_handles; h++) {
        if (!is_op_state(&os->handles[h]))
            continue;
        char path[4096];
        uint8_t *data;
        size_t len;
        int rc = sl_ckpt_handle_path(s, &os->handles[h], path, sizeof path);
        if (rc == 0)
            rc = read_file(path, &data, &len, err, errlen);
        if (rc == 0)
            rc = append_blob(&r->opstate, &r->opstate_len, &r->nopstate, data, len);
        if (rc)
            return rc;
    }
    return 0;
}

static int vertex_of(const sl_job_graph_t *g, const char *vid) {
    char buf[512];
    for (uint32_t v = 0; v < g->nvertices; v++) {
        sl_coordinator_vertex_id(g, v, buf, sizeof buf);
        if (strcmp(buf, vid) == 0)
            return (int)v;
    }
    return -1;
}

/* Adds the operator state `os` to what vertex v's subtasks restore. */
static int assign(sl_restore_plan_t *p, const sl_job_graph_t *g, const sl_ckpt_storage_t *s, uint32_t v,
                  const sl_ckpt_operator_state_t *os, uint32_t old_par, char *err, size_t errlen) {
    uint32_t par = g->vertices[v].parallelism;
    if (os->n_extras && old_par != par) {
        snprintf(err, errlen, "vertex '%s' ran at parallelism %u in the checkpoint and %u now: its operators keep "
                 "positions (sources, sinks) that cannot be redistributed", g->vertices[v].name, old_par, par);
        return SL_EJOB;
    }
    for (uint32_t i = 0; i < par; i++) {
        sl_task_restore_t *r = &p->tasks[v][i];
        uint32_t first, last;
        sl_key_group_range(g->max_parallelism, par, i, &first, &last);
        if (os->n_extras && os->subtask == i) {
            uint32_t nops = g->vertices[v].nnodes;
            if (r->extras == NULL && (r->extras = sl_calloc(nops, sizeof *r->extras)) == NULL)
                return SL_ENOMEM;
            for (uint32_t k = 0; k < os->n_extras; k++) {
                char *dot;
                unsigned long op = strtoul(os->extras[k].key, &dot, 10);
                if (*dot != '.' || op >= nops || sl_op_extras_set(&r->extras[op], dot + 1, os->extras[k].value)) {
                    snprintf(err, errlen, "vertex '%s': bad saved position '%s'", g->vertices[v].name, os->extras[k].key);
                    return SL_EPARSE;
                }
            }
        }
        if (os->subtask % par == i) {
            int rc = assign_op_state(r, s, os, err, errlen);
            if (rc)
                return rc;
        }
        if (os->kg_last < first || os->kg_first > last)
            continue;
        sl_task_restore_db_t *db = NULL;
        for (uint32_t h = 0; h < os->n_handles; h++) {
            if (is_op_state(&os->handles[h]))
                continue;
            char path[4096];
            int rc = sl_ckpt_handle_path(s, &os->handles[h], path, sizeof path);
            if (rc)
                return rc;
            const char *dbname = os->handles[h].path ? strstr(os->handles[h].path, ".db.") : NULL;
            if (dbname) { /* a file of a RocksDB checkpoint: restored as a whole database */
                if (db == NULL) {
                    sl_task_restore_db_t *d = sl_realloc(r->dbs, (r->ndbs + 1) * sizeof *d);
                    if (d == NULL)
                        return SL_ENOMEM;
                    r->dbs = d;
                    db = &r->dbs[r->ndbs++];
                    memset(db, 0, sizeof *db);
                }
                char **p1 = sl_realloc(db->paths, (db->nfiles + 1) * sizeof *p1);
                if (p1)
                    db->paths = p1;
                char **p2 = sl_realloc(db->names, (db->nfiles + 1) * sizeof *p2);
                if (p2)
                    db->names = p2;
                if (p1 == NULL || p2 == NULL)
                    return SL_ENOMEM;
                db->paths[db->nfiles] = sl_strdup(path);
                db->names[db->nfiles] = sl_strdup(dbname + 4);
                if (db->paths[db->nfiles] == NULL || db->names[db->nfiles] == NULL)
                    return SL_ENOMEM;
                db->nfiles++;
                continue;
            }
            uint8_t *data;
            size_t len;
            if ((rc = read_file(path, &data, &len, err, errlen)) != 0 ||
                (rc = append_blob(&r->state, &r->state_len, &r->nstate, data, len)) != 0)
                return rc;
        }
    }
    return 0;
}

static int plan_from(sl_restore_plan_t *p, const sl_job_graph_t *g, const sl_ckpt_storage_t *s, uint64_t id,
                     char *err, size_t errlen) {
    char mpath[4096];
    sl_ckpt_metadata_t md;
    sl_ckpt_metadata_path(s, id, mpath, sizeof mpath);
    int rc = sl_ckpt_metadata_read(mpath, &md, err, errlen);
    if (rc)
        return rc;
    if ((rc = sl_ckpt_metadata_verify_files(s, &md, err, errlen)) != 0)
        goto out;
    if (md.max_parallelism != g->max_parallelism) {
        snprintf(err, errlen, "%s was taken with max parallelism %u, the job has %u (key groups differ)", mpath,
                 md.max_parallelism, g->max_parallelism);
        rc = SL_EJOB;
        goto out;
    }
    p->checkpoint_id = id;
    sl_ckpt_dir(s, id, p->path, sizeof p->path);
    for (uint32_t o = 0; o < md.n_operators && rc == 0; o++) {
        int v = vertex_of(g, md.operators[o].vertex_id);
        if (v < 0) {
            bool has_state = md.operators[o].n_handles || md.operators[o].n_extras;
            if (!has_state)
                continue;
            snprintf(err, errlen, "%s holds state of '%s', which this job does not have: a checkpoint of another job?",
                     mpath, md.operators[o].vertex_id);
            rc = SL_EJOB;
            break;
        }
        uint32_t old_par = 0;
        for (uint32_t k = 0; k < md.n_operators; k++)
            old_par += strcmp(md.operators[k].vertex_id, md.operators[o].vertex_id) == 0;
        rc = assign(p, g, s, (uint32_t)v, &md.operators[o], old_par, err, errlen);
    }
out:
    sl_ckpt_metadata_free(&md);
    return rc;
}


void sl_restore_plan_free(sl_restore_plan_t *p) {
    for (uint32_t v = 0; p->tasks && v < p->nvertices; v++)
        for (uint32_t i = 0; p->tasks[v] && p->tasks[v][i].checkpoint_id != UINT64_MAX; i++) {
            sl_task_restore_t *r = &p->tasks[v][i];
            for (uint32_t k = 0; k < r->nstate; k++)
                sl_free(r->state[k]);
            sl_free(r->state);
            sl_free(r->state_len);
            for (uint32_t k = 0; k < r->nopstate; k++)
                sl_free(r->opstate[k]);
            sl_free(r->opstate);
            sl_free(r->opstate_len);
            sl_free(r->extras);
            for (uint32_t d = 0; d < r->ndbs; d++) {
                for (uint32_t f = 0; f < r->dbs[d].nfiles; f++) {
                    sl_free(r->dbs[d].paths[f]);
                    sl_free(r->dbs[d].names[f]);
                }
                sl_free(r->dbs[d].paths);
                sl_free(r->dbs[d].names);
            }
            sl_free(r->dbs);
        }
    for (uint32_t v = 0; p->tasks && v < p->nvertices; v++)
        sl_free(p->tasks[v]);
    sl_free(p->tasks);
    memset(p, 0, sizeof *p);
}

static int alloc_tasks(sl_restore_plan_t *p, const sl_job_graph_t *g) {
    p->nvertices = g->nvertices;
    if ((p->tasks = sl_calloc(g->nvertices, sizeof *p->tasks)) == NULL)
        return SL_ENOMEM;
    for (uint32_t v = 0; v < g->nvertices; v++) {
        /* One extra entry marks the end (checkpoint_id = UINT64_MAX) for sl_restore_plan_free. */
        if ((p->tasks[v] = sl_calloc(g->vertices[v].parallelism + 1, sizeof **p->tasks)) == NULL)
            return SL_ENOMEM;
        p->tasks[v][g->vertices[v].parallelism].checkpoint_id = UINT64_MAX;
    }
    return 0;
}

int sl_restore_plan_load(sl_restore_plan_t *p, const sl_job_graph_t *g, const char *path, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    sl_ckpt_storage_t s;
    uint64_t id;
    int rc = sl_ckpt_resolve(path, &s, &id, err, errlen);
    if (rc)
        return rc;
    uint64_t *ids = NULL;
    uint32_t n = 0;
    /* A job directory: newest first, older retained ones if a file is corrupt. */
    bool whole_job = strstr(path, "chk-") == NULL;
    if (whole_job && sl_ckpt_list_completed(&s, &ids, &n, err, errlen) != 0)
        n = 0;
    if (!whole_job || n == 0) {
        sl_free(ids);
        ids = sl_malloc(sizeof *ids);
        if (ids)
            ids[0] = id;
        n = ids ? 1 : 0;
    }
    rc = n ? SL_ENOENT : SL_ENOMEM;
    for (uint32_t k = n; k-- > 0;) {
        sl_restore_plan_free(p);
        if ((rc = alloc_tasks(p, g)) != 0)
            break;
        for (uint32_t v = 0; v < g->nvertices; v++)
            for (uint32_t i = 0; i < g->vertices[v].parallelism; i++)
                p->tasks[v][i].checkpoint_id = ids[k];
        if ((rc = plan_from(p, g, &s, ids[k], err, errlen)) == 0)
            break;
        if (k > 0 && (rc == SL_EPARSE || rc == SL_ENOENT))
            SL_WARN("checkpoint %llu cannot be restored (%s); trying the previous one", (unsigned long long)ids[k], err);
        else
            break;
    }
    sl_free(ids);
    sl_ckpt_storage_destroy(&s);
    if (rc)
        sl_restore_plan_free(p);
    return rc;
}
