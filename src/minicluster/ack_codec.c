/* Acknowledgement conversion (see ack_codec.h). */
#include "minicluster/ack_codec.h"

#include <sluice/error.h>

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

#define MAX_HANDLES 100000
#define MAX_OPS 1024

int sl_ack_to_msg(const sl_task_ack_t *ack, const char *job_id, uint32_t attempt, Sluice__Rpc__AcknowledgeCheckpoint *m,
                  sl_ack_msg_scratch_t *sc) {
    memset(sc, 0, sizeof *sc);
    sluice__rpc__acknowledge_checkpoint__init(m);
    m->job_id = (char *)job_id;
    m->attempt = attempt;
    m->checkpoint_id = ack->checkpoint_id;
    m->vertex = ack->vertex;
    m->subtask = ack->subtask;
    m->bytes_uploaded = ack->bytes_uploaded;
    if (ack->status != 0) {
        sluice__rpc__error__init(&sc->decline);
        sc->decline.code = ack->status;
        sc->decline.message = (char *)(ack->error[0] ? ack->error : sl_strerror(ack->status));
        m->decline = &sc->decline;
    }
    uint32_t nkv = 0;
    for (uint32_t i = 0; i < ack->nops; i++)
        nkv += ack->extras[i].n;
    Sluice__Rpc__StateHandle *h = sl_calloc(ack->nhandles + 1, sizeof *h);
    Sluice__Rpc__StateHandle **hp = sl_calloc(ack->nhandles + 1, sizeof *hp);
    Sluice__Rpc__OperatorExtras *x = sl_calloc(ack->nops + 1, sizeof *x);
    Sluice__Rpc__OperatorExtras **xp = sl_calloc(ack->nops + 1, sizeof *xp);
    Sluice__Rpc__KeyValue *kv = sl_calloc(nkv + 1, sizeof *kv);
    Sluice__Rpc__KeyValue **kvp = sl_calloc(nkv + 1, sizeof *kvp);
    *sc = (sl_ack_msg_scratch_t){h, hp, x, xp, kv, kvp, sc->decline};
    if (h == NULL || hp == NULL || x == NULL || xp == NULL || kv == NULL || kvp == NULL)
        return SL_ENOMEM;
    for (uint32_t i = 0; i < ack->nhandles; i++) {
        sluice__rpc__state_handle__init(&h[i]);
        h[i].shared = ack->handles[i].shared;
        h[i].name = (char *)ack->handles[i].name;
        h[i].size = ack->handles[i].size;
        h[i].crc32c = ack->handles[i].crc32c;
        hp[i] = &h[i];
    }
    m->n_handles = ack->nhandles;
    m->handles = hp;
    uint32_t k = 0;
    for (uint32_t i = 0; i < ack->nops; i++) {
        sluice__rpc__operator_extras__init(&x[i]);
        x[i].entries = &kvp[k];
        x[i].n_entries = ack->extras[i].n;
        for (uint32_t e = 0; e < ack->extras[i].n; e++, k++) {
            sluice__rpc__key_value__init(&kv[k]);
            kv[k].key = (char *)ack->extras[i].key[e];
            kv[k].value = (char *)ack->extras[i].value[e];
            kvp[k] = &kv[k];
        }
        xp[i] = &x[i];
    }
    m->n_extras = ack->nops;
    m->extras = xp;
    return 0;
}

void sl_ack_msg_scratch_free(sl_ack_msg_scratch_t *sc) {
    sl_free(sc->handles);
    sl_free(sc->handle_ptrs);
    sl_free(sc->extras);
    sl_free(sc->extra_ptrs);
    sl_free(sc->kvs);
    sl_free(sc->kv_ptrs);
    memset(sc, 0, sizeof *sc);
}

/* A file name the JobMaster will join to a directory: one component, no "." or "..". */
static bool safe_name(const char *s, size_t cap) {
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n < cap && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int copy_extras(const Sluice__Rpc__AcknowledgeCheckpoint *m, sl_task_ack_t *a, char *err, size_t errlen) {
    for (size_t i = 0; i < m->n_extras; i++) {
        const Sluice__Rpc__OperatorExtras *x = m->extras[i];
        if (x->n_entries > SL_OP_EXTRAS_MAX) {
            snprintf(err, errlen, "acknowledgement: operator %zu has %zu saved values (at most %d)", i, x->n_entries,
                     SL_OP_EXTRAS_MAX);
            return SL_EPARSE;
        }
        for (size_t e = 0; e < x->n_entries; e++) {
            const Sluice__Rpc__KeyValue *kv = x->entries[e];
            if (kv->key[0] == '\0' || sl_op_extras_get(&a->extras[i], kv->key) != NULL ||
                sl_op_extras_set(&a->extras[i], kv->key, kv->value) != 0) {
                snprintf(err, errlen, "acknowledgement: operator %zu: saved value '%.40s' empty, repeated or too long",
                         i, kv->key);
                return SL_EPARSE;
            }
        }
    }
    return 0;
}

int sl_ack_from_msg(const Sluice__Rpc__AcknowledgeCheckpoint *m, sl_task_ack_t **out, char *err, size_t errlen) {
    *out = NULL;
    if (m->n_handles > MAX_HANDLES || m->n_extras > MAX_OPS) {
        snprintf(err, errlen, "acknowledgement: %zu files and %zu operators is beyond the limits", m->n_handles,
                 m->n_extras);
        return SL_EPARSE;
    }
    sl_task_ack_t *a = sl_calloc(1, sizeof *a);
    if (a == NULL || (a->handles = sl_calloc(m->n_handles + 1, sizeof *a->handles)) == NULL ||
        (a->extras = sl_calloc(m->n_extras + 1, sizeof *a->extras)) == NULL) {
        sl_task_ack_free(a);
        return SL_ENOMEM;
    }
    a->checkpoint_id = m->checkpoint_id;
    a->vertex = m->vertex;
    a->subtask = m->subtask;
    a->bytes_uploaded = m->bytes_uploaded;
    a->nops = (uint32_t)m->n_extras;
    if (m->decline) {
        a->status = m->decline->code < 0 ? m->decline->code : SL_ECHK_DECLINED;
        snprintf(a->error, sizeof a->error, "%s", m->decline->message);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m->n_handles; i++) {
        const Sluice__Rpc__StateHandle *h = m->handles[i];
        if (!safe_name(h->name, sizeof a->handles[i].name)) {
            snprintf(err, errlen, "acknowledgement: file name '%.60s' is not a single path component", h->name);
            rc = SL_EPARSE;
            break;
        }
        sl_task_handle_t *d = &a->handles[a->nhandles++];
        d->shared = h->shared;
        snprintf(d->name, sizeof d->name, "%s", h->name);
        d->size = h->size;
        d->crc32c = h->crc32c;
    }
    if (rc == 0)
        rc = copy_extras(m, a, err, errlen);
    if (rc) {
        sl_task_ack_free(a);
        return rc;
    }
    *out = a;
    return 0;
}
