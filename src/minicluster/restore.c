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

/* Where an operator of the checkpoint goes in the job: vertex and index in its chain. */
typedef struct {
    uint32_t v, idx;
} place_t;

#define MAX_CHAIN 64

/* The operator named `name` (node names are unique in practice; a name given twice is not
 * matched). */
static int find_node(const sl_job_graph_t *g, const char *name, size_t len, place_t *out) {
    int found = 0;
    for (uint32_t v = 0; v < g->nvertices; v++)
        for (uint32_t k = 0; k < g->vertices[v].nnodes; k++) {
            const char *n = g->nodes[g->vertices[v].nodes[k]].name;
            if (strlen(n) == len && strncmp(n, name, len) == 0) {
                *out = (place_t){v, k};
                found++;
            }
        }
    return found == 1 ? 0 : SL_ENOENT;
}

/* Places of the operators of checkpoint vertex `vid` ("v<n>:a -> b -> c") in the job: the
 * vertex of the same id when there is one, else each operator by name, so that state follows
 * its operator when a change of parallelism changed chaining (a parallelism-1 sink chains
 * to a parallelism-1 producer). SL_ENOENT when an operator is not in the job. */
static int place_chain(const sl_job_graph_t *g, const char *vid, place_t *out, uint32_t *n) {
    char buf[512];
    for (uint32_t v = 0; v < g->nvertices; v++) {
        sl_coordinator_vertex_id(g, v, buf, sizeof buf);
        if (strcmp(buf, vid) == 0 && g->vertices[v].nnodes <= MAX_CHAIN) {
            for (uint32_t k = 0; k < g->vertices[v].nnodes; k++)
                out[k] = (place_t){v, k};
            *n = g->vertices[v].nnodes;
            return 0;
        }
    }
    const char *name = strchr(vid, ':');
    if (name == NULL)
        return SL_ENOENT;
    name++;
    for (*n = 0;; name += 4) {
        const char *arrow = strstr(name, " -> ");
        size_t len = arrow ? (size_t)(arrow - name) : strlen(name);
        if (*n == MAX_CHAIN || find_node(g, name, len, &out[*n]) != 0)
            return SL_ENOENT;
        ++*n;
        if (arrow == NULL)
            return 0;
        name = arrow;
    }
}

static bool node_keyed(const sl_job_graph_t *g, place_t pl) {
    const sl_operator_vtable_t *vt = sl_operator_lookup(g->nodes[g->vertices[pl.v].nodes[pl.idx]].kind);
    return vt && vt->keyed;
}

/* At a parallelism other than the checkpoint's, an operator that restores a position must be
 * able to merge or lose sets (vtable.rescalable). */
static int check_rescalable(const sl_job_graph_t *g, place_t pl, uint32_t old_par, char *err, size_t errlen) {
    const sl_job_vertex_t *jv = &g->vertices[pl.v];
    if (old_par == jv->parallelism)
        return 0;
    const sl_stream_node_t *n = &g->nodes[jv->nodes[pl.idx]];
    const sl_operator_vtable_t *vt = sl_operator_lookup(n->kind);
    if (vt && vt->restore && !vt->rescalable) {
        snprintf(err, errlen, "vertex '%s' ran at parallelism %u in the checkpoint and %u now: its operator '%s' "
                 "(%s) keeps a position that cannot be redistributed; restore it at parallelism %u", jv->name,
                 old_par, jv->parallelism, n->name, n->kind, old_par);
        return SL_EJOB;
    }
    return 0;
}

/* Makes room in `ro` for the positions of old subtask `from` (sets kept in increasing
 * `from`) and returns the new, empty set. */
static int add_set(sl_task_restore_op_t *ro, uint32_t from, sl_op_extras_t **out) {
    uint32_t *f = sl_realloc(ro->from, (ro->nsets + 1) * sizeof *f);
    if (f == NULL)
        return SL_ENOMEM;
    ro->from = f;
    sl_op_extras_t *x = sl_realloc(ro->sets, (ro->nsets + 1) * sizeof *x);
    if (x == NULL)
        return SL_ENOMEM;
    ro->sets = x;
    uint32_t k = ro->nsets;
    while (k > 0 && ro->from[k - 1] > from)
        k--;
    memmove(&ro->from[k + 1], &ro->from[k], (ro->nsets - k) * sizeof *ro->from);
    memmove(&ro->sets[k + 1], &ro->sets[k], (ro->nsets - k) * sizeof *ro->sets);
    ro->from[k] = from;
    memset(&ro->sets[k], 0, sizeof *ro->sets);
    ro->nsets++;
    *out = &ro->sets[k];
    return 0;
}

/* Adds the state `os` of old subtask os->subtask (of old_par) of a checkpoint vertex whose
 * operators go to `pl` to what the job's subtasks restore: each operator's positions go whole
 * to new subtask os->subtask % parallelism of its vertex, as one set; keyed state to every
 * subtask of the keyed operators' vertex whose key groups overlap it; operator-state files
 * whole to subtask os->subtask % parallelism. Files are read only for the subtasks `local`
 * wants. */
static int assign(sl_restore_plan_t *p, const sl_job_graph_t *g, const sl_ckpt_storage_t *s,
                  const sl_ckpt_operator_state_t *os, const place_t *pl, uint32_t nops, uint32_t old_par,
                  const uint8_t *local, char *err, size_t errlen) {
    sl_op_extras_t *sets[MAX_CHAIN];
    bool moved = false; /* an operator is not where it was in its chain */
    int keyed = -1;     /* the vertex of the keyed operators */
    for (uint32_t k = 0; k < nops; k++) {
        const sl_job_vertex_t *jv = &g->vertices[pl[k].v];
        int rc = check_rescalable(g, pl[k], old_par, err, errlen);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < jv->parallelism; i++)
            p->tasks[pl[k].v][i].ops[pl[k].idx].old_parallelism = old_par;
        sl_task_restore_t *heir = &p->tasks[pl[k].v][os->subtask % jv->parallelism];
        if ((rc = add_set(&heir->ops[pl[k].idx], os->subtask, &sets[k])) != 0)
            return rc;
        moved |= pl[k].v != pl[0].v || pl[k].idx != k;
        if (node_keyed(g, pl[k])) {
            if (keyed >= 0 && (uint32_t)keyed != pl[k].v) {
                snprintf(err, errlen, "the keyed operators of checkpoint vertex '%s' are in different vertices of "
                         "the job now", os->vertex_id);
                return SL_EJOB;
            }
            keyed = (int)pl[k].v;
        }
    }
    for (uint32_t k = 0; k < os->n_extras; k++) {
        char *dot;
        unsigned long op = strtoul(os->extras[k].key, &dot, 10);
        if (*dot != '.' || op >= nops || sl_op_extras_set(sets[op], dot + 1, os->extras[k].value)) {
            snprintf(err, errlen, "vertex '%s': bad saved position '%s'", os->vertex_id, os->extras[k].key);
            return SL_EPARSE;
        }
    }
    uint32_t v = keyed >= 0 ? (uint32_t)keyed : pl[0].v, par = g->vertices[v].parallelism;
    for (uint32_t h = 0; h < os->n_handles; h++)
        if (is_op_state(&os->handles[h]) && moved) {
            snprintf(err, errlen, "checkpoint vertex '%s' holds operator state (requests in flight) that cannot "
                     "follow a change of chaining: restore it at parallelism %u", os->vertex_id, old_par);
            return SL_EJOB;
        }
    uint32_t mine = os->subtask % par;
    int rc;
    if ((local == NULL || local[mine]) && (rc = assign_op_state(&p->tasks[v][mine], s, os, err, errlen)) != 0)
        return rc;
    for (uint32_t i = 0; i < par; i++) {
        sl_task_restore_t *r = &p->tasks[v][i];
        uint32_t first, last;
        sl_key_group_range(g->max_parallelism, par, i, &first, &last);
        if (local && !local[i])
            continue;
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

/* Where the subtasks that had finished in the checkpoint go (restore.h, FINISHED SUBTASKS).
 * `fin_node[v][k]`: operator k of job vertex v comes from a checkpoint vertex whose subtasks all
 * finished; checked against whole job vertices once every entry is planned. */
typedef struct {
    bool **fin_node;
    bool *fin_vertex;
} finished_plan_t;

static bool is_source_op(const sl_job_graph_t *g, place_t pl) {
    const sl_operator_vtable_t *vt = sl_operator_lookup(g->nodes[g->vertices[pl.v].nodes[pl.idx]].kind);
    return vt && vt->source_poll;
}

/* Entry `os` (finished) of a checkpoint vertex with `nfin` of `old_par` subtasks finished,
 * whose operators go to `pl`. */
static int plan_finished(sl_restore_plan_t *p, const sl_job_graph_t *g, finished_plan_t *fp,
                         const sl_ckpt_operator_state_t *os, const place_t *pl, uint32_t nops, uint32_t old_par,
                         uint32_t nfin, char *err, size_t errlen) {
    if (nfin == old_par) { /* the whole vertex had finished: so it stays, at any parallelism */
        for (uint32_t k = 0; k < nops; k++) {
            fp->fin_node[pl[k].v][pl[k].idx] = true;
            fp->fin_vertex[pl[k].v] = true;
        }
        return 0;
    }
    const sl_job_vertex_t *jv = &g->vertices[pl[0].v];
    bool same = old_par == jv->parallelism && nops == jv->nnodes;
    for (uint32_t k = 0; same && k < nops; k++)
        same = pl[k].v == pl[0].v && pl[k].idx == k;
    if (same) { /* the same subtask is deployed finished */
        if (os->subtask >= jv->parallelism) {
            snprintf(err, errlen, "vertex '%s': finished subtask %u of a parallelism of %u", os->vertex_id,
                     os->subtask, old_par);
            return SL_EPARSE;
        }
        p->tasks[pl[0].v][os->subtask].finished = true;
        return 0;
    }
    /* Another parallelism. A source's position is its splits: a finished subtask's are all read,
     * so it simply hands none on and its heirs read the others' (none: they end at once). Any
     * other operator's state or position would be lost with the finished subtask. */
    bool source = is_source_op(g, pl[0]);
    for (uint32_t k = 1; source && k < nops; k++) {
        const sl_operator_vtable_t *vt = sl_operator_lookup(g->nodes[g->vertices[pl[k].v].nodes[pl[k].idx]].kind);
        source = is_source_op(g, pl[k]) || (vt && vt->restore == NULL && !vt->keyed);
    }
    if (source)
        return 0;
    snprintf(err, errlen, "vertex '%s' had %u of its %u subtasks finished in checkpoint %llu: a partly finished "
             "vertex (other than a source) can be restored at the same parallelism only (%u, not %u)", jv->name, nfin,
             old_par, (unsigned long long)p->checkpoint_id, old_par, jv->parallelism);
    return SL_EJOB;
}

/* Job vertices fed by wholly finished checkpoint vertices are deployed finished, every
 * subtask; each of their operators must then have finished (none new, none still running). */
static int apply_finished(sl_restore_plan_t *p, const sl_job_graph_t *g, finished_plan_t *fp, char *err,
                          size_t errlen) {
    for (uint32_t v = 0; v < g->nvertices; v++) {
        if (!fp->fin_vertex[v])
            continue;
        const sl_job_vertex_t *jv = &g->vertices[v];
        for (uint32_t k = 0; k < jv->nnodes; k++)
            if (!fp->fin_node[v][k]) {
                snprintf(err, errlen, "vertex '%s' chains operators that had finished in checkpoint %llu with "
                         "operator '%s', which had not (or is new): restore it with the checkpoint's parallelism "
                         "and chaining", jv->name, (unsigned long long)p->checkpoint_id,
                         g->nodes[jv->nodes[k]].name);
                return SL_EJOB;
            }
        for (uint32_t i = 0; i < jv->parallelism; i++)
            p->tasks[v][i].finished = true;
    }
    return 0;
}

static void free_finished_plan(finished_plan_t *fp, const sl_job_graph_t *g) {
    for (uint32_t v = 0; fp->fin_node && v < g->nvertices; v++)
        sl_free(fp->fin_node[v]);
    sl_free(fp->fin_node);
    sl_free(fp->fin_vertex);
}

static int plan_from(sl_restore_plan_t *p, const sl_job_graph_t *g, const sl_ckpt_storage_t *s, uint64_t id,
                     const uint8_t *local, char *err, size_t errlen) {
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
    finished_plan_t fp = {sl_calloc(g->nvertices + 1, sizeof *fp.fin_node), sl_calloc(g->nvertices + 1, 1)};
    rc = fp.fin_node && fp.fin_vertex ? 0 : SL_ENOMEM;
    for (uint32_t v = 0; rc == 0 && v < g->nvertices; v++)
        if ((fp.fin_node[v] = sl_calloc(g->vertices[v].nnodes + 1, sizeof **fp.fin_node)) == NULL)
            rc = SL_ENOMEM;
    for (uint32_t o = 0; o < md.n_operators && rc == 0; o++) {
        place_t pl[MAX_CHAIN];
        uint32_t nops = 0;
        if (place_chain(g, md.operators[o].vertex_id, pl, &nops) != 0) {
            bool has_state = md.operators[o].n_handles || md.operators[o].n_extras;
            if (!has_state)
                continue;
            snprintf(err, errlen, "%s holds state of '%s', which this job does not have: a checkpoint of another job?",
                     mpath, md.operators[o].vertex_id);
            rc = SL_EJOB;
            break;
        }
        uint32_t old_par = 0, nfin = 0;
        for (uint32_t k = 0; k < md.n_operators; k++)
            if (strcmp(md.operators[k].vertex_id, md.operators[o].vertex_id) == 0) {
                old_par++;
                nfin += md.operators[k].finished;
            }
        if (md.operators[o].finished)
            rc = plan_finished(p, g, &fp, &md.operators[o], pl, nops, old_par, nfin, err, errlen);
        else
            rc = assign(p, g, s, &md.operators[o], pl, nops, old_par, local, err, errlen);
    }
    if (rc == 0)
        rc = apply_finished(p, g, &fp, err, errlen);
    free_finished_plan(&fp, g);
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
            for (uint32_t op = 0; r->ops && op < r->nops; op++) {
                sl_free(r->ops[op].sets);
                sl_free(r->ops[op].from);
            }
            sl_free(r->ops);
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
        for (uint32_t i = 0; i < g->vertices[v].parallelism; i++) {
            sl_task_restore_t *r = &p->tasks[v][i];
            r->nops = g->vertices[v].nnodes;
            if ((r->ops = sl_calloc(r->nops ? r->nops : 1, sizeof *r->ops)) == NULL)
                return SL_ENOMEM;
        }
    }
    return 0;
}

int sl_restore_plan_load(sl_restore_plan_t *p, const sl_job_graph_t *g, const char *path, const uint8_t *local,
                         char *err, size_t errlen) {
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
        if ((rc = plan_from(p, g, &s, ids[k], local, err, errlen)) == 0)
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
