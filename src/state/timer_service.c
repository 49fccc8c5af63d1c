/* Timer service (see timer_service.h): per domain, a binary min-heap ordered by
 * (timestamp, registration sequence) plus a hash set of pending timers for de-duplication and
 * deletion. Deleted timers stay in the heap marked dead and are skipped when they surface. */
#include "state/timer_service.h"

#include <sluice/error.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "state/byte_table.h"

typedef struct timer_s {
    int64_t ts;
    uint64_t seq;
    uint32_t kg;
    uint32_t klen;
    uint32_t nslen;
    bool dead;
    uint8_t data[]; /* key then namespace */
} timer_t_;

typedef struct {
    timer_t_ **heap;
    uint32_t n;
    uint32_t cap;
    uint64_t live;
    sl_byte_table_t set; /* [ts|kg|key] + ns -> timer pointer */
} domain_t;

struct sl_timer_service_s {
    domain_t d[2];
    uint64_t seq;
    timer_t_ *popped; /* the last popped timer, freed on the next call */
};

int sl_timer_service_create(sl_timer_service_t **out) {
    sl_timer_service_t *s = sl_calloc(1, sizeof *s);
    if (s == NULL)
        return SL_ENOMEM;
    *out = s;
    return 0;
}

void sl_timer_service_destroy(sl_timer_service_t *s) {
    if (s == NULL)
        return;
    for (int i = 0; i < 2; i++) {
        for (uint32_t k = 0; k < s->d[i].n; k++)
            sl_free(s->d[i].heap[k]);
        sl_free(s->d[i].heap);
        sl_bt_destroy(&s->d[i].set);
    }
    sl_free(s->popped);
    sl_free(s);
}

static bool before(const timer_t_ *a, const timer_t_ *b) { return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq); }

static void sift_up(domain_t *d, uint32_t i) {
    timer_t_ *t = d->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(t, d->heap[p]))
            break;
        d->heap[i] = d->heap[p];
        i = p;
    }
    d->heap[i] = t;
}

static void sift_down(domain_t *d, uint32_t i) {
    timer_t_ *t = d->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= d->n)
            break;
        if (c + 1 < d->n && before(d->heap[c + 1], d->heap[c]))
            c++;
        if (!before(d->heap[c], t))
            break;
        d->heap[i] = d->heap[c];
        i = c;
    }
    d->heap[i] = t;
}

/* The set key of a timer: ts, key group and key as part a; the namespace as part b. */
static uint32_t set_key(uint8_t *buf, uint32_t cap, int64_t ts, uint32_t kg, const void *key, uint32_t klen) {
    if (12 + klen > cap)
        return 0;
    memcpy(buf, &ts, 8);
    memcpy(buf + 8, &kg, 4);
    memcpy(buf + 12, key, klen);
    return 12 + klen;
}

static void release_popped(sl_timer_service_t *s) {
    sl_free(s->popped);
    s->popped = NULL;
}

int sl_timer_register(sl_timer_service_t *s, sl_timer_domain_t dom, int64_t ts, const void *key, uint32_t key_len,
                      uint32_t key_group, const void *ns, uint32_t ns_len) {
    domain_t *d = &s->d[dom];
    uint8_t stack[512];
    uint8_t *kb = key_len + 12 <= sizeof stack ? stack : sl_malloc(key_len + 12);
    if (kb == NULL)
        return SL_ENOMEM;
    uint32_t kl = set_key(kb, key_len + 12, ts, key_group, key, key_len);
    uint64_t h = sl_bt_hash(kb, kl, ns, ns_len);
    int rc = 0;
    if (sl_bt_find(&d->set, h, kb, kl, ns, ns_len) != NULL)
        goto out;
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        timer_t_ **nh = sl_realloc(d->heap, cap * sizeof *nh);
        if (nh == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        d->heap = nh;
        d->cap = cap;
    }
    timer_t_ *t = sl_malloc(sizeof *t + key_len + ns_len);
    if (t == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    *t = (timer_t_){ts, s->seq++, key_group, key_len, ns_len, false};
    memcpy(t->data, key, key_len);
    if (ns_len)
        memcpy(t->data + key_len, ns, ns_len);
    sl_bt_entry_t *e;
    if ((rc = sl_bt_upsert(&d->set, h, kb, kl, ns, ns_len, &e)) != 0 ||
        (rc = sl_bt_set_value(&d->set, e, &t, sizeof t)) != 0) {
        if (rc && e && e->vlen == 0)
            sl_bt_remove(&d->set, e);
        sl_free(t);
        goto out;
    }
    d->heap[d->n++] = t;
    sift_up(d, d->n - 1);
    d->live++;
out:
    if (kb != stack)
        sl_free(kb);
    return rc;
}

int sl_timer_delete(sl_timer_service_t *s, sl_timer_domain_t dom, int64_t ts, const void *key, uint32_t key_len,
                    uint32_t key_group, const void *ns, uint32_t ns_len) {
    domain_t *d = &s->d[dom];
    uint8_t stack[512];
    uint8_t *kb = key_len + 12 <= sizeof stack ? stack : sl_malloc(key_len + 12);
    if (kb == NULL)
        return SL_ENOMEM;
    uint32_t kl = set_key(kb, key_len + 12, ts, key_group, key, key_len);
    sl_bt_entry_t *e = sl_bt_find(&d->set, sl_bt_hash(kb, kl, ns, ns_len), kb, kl, ns, ns_len);
    if (e) {
        timer_t_ *t;
        memcpy(&t, sl_bt_value(e), sizeof t);
        t->dead = true;
        sl_bt_remove(&d->set, e);
        d->live--;
    }
    if (kb != stack)
        sl_free(kb);
    return 0;
}

static timer_t_ *heap_pop(domain_t *d) {
    timer_t_ *t = d->heap[0];
    d->heap[0] = d->heap[--d->n];
    if (d->n)
        sift_down(d, 0);
    return t;
}

/* Drops dead timers from the top of the heap. */
static void skip_dead(domain_t *d) {
    while (d->n && d->heap[0]->dead)
        sl_free(heap_pop(d));
}

int sl_timer_pop(sl_timer_service_t *s, sl_timer_domain_t dom, int64_t upto, sl_timer_t *out) {
    domain_t *d = &s->d[dom];
    release_popped(s);
    skip_dead(d);
    if (d->n == 0 || d->heap[0]->ts > upto)
        return 0;
    timer_t_ *t = heap_pop(d);
    uint8_t stack[512];
    uint8_t *kb = t->klen + 12 <= sizeof stack ? stack : sl_malloc(t->klen + 12);
    if (kb != NULL) {
        uint32_t kl = set_key(kb, t->klen + 12, t->ts, t->kg, t->data, t->klen);
        sl_bt_entry_t *e = sl_bt_find(&d->set, sl_bt_hash(kb, kl, t->data + t->klen, t->nslen), kb, kl,
                                      t->data + t->klen, t->nslen);
        if (e)
            sl_bt_remove(&d->set, e);
        if (kb != stack)
            sl_free(kb);
    }
    d->live--;
    s->popped = t;
    *out = (sl_timer_t){t->ts, t->data, t->klen, t->kg, t->data + t->klen, t->nslen};
    return 1;
}

int64_t sl_timer_next(const sl_timer_service_t *s, sl_timer_domain_t dom) {
    const domain_t *d = &s->d[dom];
    for (uint32_t i = 0; i < d->n; i++)
        if (!d->heap[0]->dead)
            return d->heap[0]->ts;
        else
            break;
    if (d->n == 0)
        return INT64_MAX;
    /* The top is dead: a deeper live timer may be earliest; cleaned lazily on pop. */
    int64_t min = INT64_MAX;
    for (uint32_t i = 0; i < d->n; i++)
        if (!d->heap[i]->dead && d->heap[i]->ts < min)
            min = d->heap[i]->ts;
    return min;
}

uint64_t sl_timer_count(const sl_timer_service_t *s, sl_timer_domain_t dom) { return s->d[dom].live; }

static int cmp_timers(const void *a, const void *b) {
    const timer_t_ *x = *(timer_t_ *const *)a, *y = *(timer_t_ *const *)b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

int sl_timer_for_each(const sl_timer_service_t *s, sl_timer_domain_t dom, sl_timer_visit_cb cb, void *arg) {
    const domain_t *d = &s->d[dom];
    /* Heap order is not registration order: visit in (ts, seq) order so a restore that
     * registers them again keeps equal-time timers in their original order. */
    timer_t_ **sorted = d->n ? sl_malloc(d->n * sizeof *sorted) : NULL;
    if (d->n && sorted == NULL)
        return SL_ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->n; i++)
        if (!d->heap[i]->dead)
            sorted[n++] = d->heap[i];
    if (n > 1)
        qsort(sorted, n, sizeof *sorted, cmp_timers);
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const timer_t_ *t = sorted[i];
        sl_timer_t v = {t->ts, t->data, t->klen, t->kg, t->data + t->klen, t->nslen};
        rc = cb(arg, &v);
    }
    sl_free(sorted);
    return rc;
}
