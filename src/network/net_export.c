/* Producer side of remote channels: an exported local channel is drained by the network
 * thread into BUFFER and EVENT frames, as far as the remote consumer's credit allows.
 *
 * DESIGN. Credit is counted twice, once per hop. The local channel's own credit bounds the
 * producer's buffers in flight (its pool): a buffer's credit comes back only after its socket
 * write completed (sl_channel_release in the write callback). The remote credit, announced by
 * the consumer in PARTITION_REQUEST and ADD_CREDIT, bounds what may be sent: a BUFFER entry
 * without remote credit stays held here and the channel is not polled further, so it never
 * occupies the connection; events follow it in order and need no credit. A failed or
 * cancelled channel keeps being drained and its buffers released, so its producer never
 * blocks on a consumer that is gone; it learns about it from sl_net_channel_error.
 *
 * Wake-ups: entries are taken with sl_channel_take, so a producer wakes the loop only when its
 * channel goes from drained to non-empty; a channel left non-empty (held for credit, or not
 * requested yet) is pumped again by the ADD_CREDIT or PARTITION_REQUEST that unblocks it. The
 * frames a pump queues go out in the connection's write batch (net_conn.c). */
#include "network/net_internal.h"

#include <stdio.h>
#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"

/* ---- draining ---- */

static void drain_discard(sl_net_channel_t *ex) {
    sl_channel_entry_t e;
    while (sl_channel_take(ex->ch, &e) == 1)
        if (e.kind == SL_CH_BUFFER)
            sl_channel_release(ex->ch, e.buf);
}

static int next_entry(sl_net_channel_t *ex, sl_channel_entry_t *e) {
    if (ex->has_held) {
        *e = ex->held;
        ex->has_held = 0;
        return 1;
    }
    /* take, not poll: a channel left non-empty here is pumped again when credit or the
     * connection comes, so its producer's sends need not wake the loop meanwhile. */
    return sl_channel_take(ex->ch, e);
}

static int send_event(sl_net_channel_t *ex, const sl_channel_entry_t *e) {
    uint8_t p[9];
    p[0] = (uint8_t)e->kind;
    sl_net_put_u64(p + 1, (uint64_t)e->value);
    int rc = sl__net_conn_send(ex->conn, SL_NET_FRAME_EVENT, ex->id, p, sizeof p);
    if (rc == 0 && e->kind == SL_CH_END)
        ex->end_sent = 1;
    return rc;
}

static void pump(sl_net_channel_t *ex) {
    if (ex->closing)
        return;
    if (ex->discard) {
        drain_discard(ex);
        return;
    }
    if (!ex->conn || ex->conn->state != SL_NET_CONN_OPEN)
        return;
    sl_channel_entry_t e;
    while (!ex->end_sent && ex->conn && next_entry(ex, &e)) {
        if (e.kind != SL_CH_BUFFER) {
            if (send_event(ex, &e) < 0)
                return;
            continue;
        }
        if (ex->remote_credit <= 0) {
            ex->held = e;
            ex->has_held = 1;
            return;
        }
        sl_net_conn_t *conn = ex->conn;
        int rc = sl__net_conn_send_buffer(conn, ex, e.buf);
        if (rc < 0) {
            /* Not submitted: the buffer is still ours (the connection failed the channel). */
            sl_channel_release(ex->ch, e.buf);
            return;
        }
        ex->inflight++;
        ex->remote_credit--;
    }
}

static void pump_one(sl_net_channel_t *c, void *arg) {
    if (c->kind == SL_NET_EXPORT)
        pump(c);
}

void sl__net_export_pump_all(sl_net_t *net) {
    sl__net_each_channel(net, pump_one, NULL);
}

void sl__net_export_written(sl_net_channel_t *ex, sl_buffer_t *buf, int status) {
    /* Written or cancelled, the buffer's local credit goes back: the producer may go on. */
    sl_channel_release(ex->ch, buf);
    ex->inflight--;
    if (ex->closing && ex->inflight == 0)
        sl__net_channel_closed(ex);
}

void sl__net_export_fail(sl_net_channel_t *ex, int code, const char *msg) {
    /* A channel whose END went out is complete: a later connection loss is no failure. */
    if (!ex->end_sent)
        sl__net_channel_set_error(ex, code, "%s", msg);
    ex->discard = 1;
    if (ex->has_held && ex->held.kind == SL_CH_BUFFER)
        sl_channel_release(ex->ch, ex->held.buf);
    ex->has_held = 0;
    if (!ex->closing)
        drain_discard(ex);
}

/* ---- frames from the consumer ---- */

static void add_pending(sl_net_conn_t *c, uint64_t id, uint32_t credit) {
    sl_net_pending_t *p = sl_calloc(1, sizeof *p);
    if (!p) {
        sl__net_conn_refuse(c, SL_ENOMEM, "out of memory for a partition request");
        return;
    }
    p->conn = c;
    p->id = id;
    p->credit = credit;
    p->next = c->net->pending;
    c->net->pending = p;
}

static void refuse_channel(sl_net_conn_t *c, uint64_t id, int code, const char *msg) {
    uint8_t p[SL_NET_MAX_CONTROL];
    uint32_t len = (uint32_t)strlen(msg);
    if (len > SL_NET_MAX_CONTROL - 4)
        len = SL_NET_MAX_CONTROL - 4;
    sl_net_put_u32(p, (uint32_t)code);
    memcpy(p + 4, msg, len);
    sl__net_conn_send(c, SL_NET_FRAME_ERROR, id, p, 4 + len);
}

void sl__net_export_request(sl_net_conn_t *c, uint64_t id, uint32_t credit) {
    sl_net_channel_t *ex = sl__net_lookup(c->net, SL_NET_EXPORT, id);
    if (!ex) {
        /* The consumer was deployed first: the request waits for sl_net_export. */
        add_pending(c, id, credit);
        return;
    }
    if (ex->requested) {
        char msg[128];
        snprintf(msg, sizeof msg, "channel %016llx is already consumed", (unsigned long long)id);
        refuse_channel(c, id, SL_EEXIST, msg);
        return;
    }
    ex->requested = 1;
    ex->conn = c;
    ex->remote_credit = credit;
    pump(ex);
}

void sl__net_export_credit(sl_net_conn_t *c, uint64_t id, uint32_t credit) {
    sl_net_channel_t *ex = sl__net_lookup(c->net, SL_NET_EXPORT, id);
    if (!ex || ex->conn != c)
        return; /* closed meanwhile */
    ex->remote_credit += credit;
    pump(ex);
}

void sl__net_export_cancel(sl_net_conn_t *c, uint64_t id) {
    for (sl_net_pending_t **p = &c->net->pending; *p; p = &(*p)->next) {
        if ((*p)->conn == c && (*p)->id == id) {
            sl_net_pending_t *dead = *p;
            *p = dead->next;
            sl_free(dead);
            return;
        }
    }
    sl_net_channel_t *ex = sl__net_lookup(c->net, SL_NET_EXPORT, id);
    if (!ex || ex->conn != c)
        return;
    char who[SL_NET_ADDR_MAX + SL_NET_MAX_ID + 32];
    sl__net_conn_describe(c, who, sizeof who);
    char msg[SL_NET_MSG_MAX];
    snprintf(msg, sizeof msg, "channel cancelled by its consumer, %s", who);
    sl__net_export_fail(ex, SL_ECANCELED, msg);
    ex->conn = NULL;
}

/* ---- API ---- */

typedef struct {
    sl_net_channel_t *c;
    int rc;
} export_arg_t;

static void export_on_loop(void *arg) {
    export_arg_t *a = arg;
    sl_net_t *net = a->c->net;
    if (sl__net_lookup(net, SL_NET_EXPORT, a->c->id)) {
        a->rc = SL_EEXIST;
        return;
    }
    sl__net_register(net, a->c);
    for (sl_net_pending_t **p = &net->pending; *p; p = &(*p)->next) {
        if ((*p)->id == a->c->id) {
            sl_net_pending_t *req = *p;
            *p = req->next;
            sl__net_export_request(req->conn, req->id, req->credit);
            sl_free(req);
            return;
        }
    }
}

int sl_net_export(sl_net_t *net, uint64_t channel_id, sl_channel_t *ch, sl_net_channel_t **out) {
    if (!ch || ch->consumer != &net->mailbox)
        return SL_EINVAL;
    sl_net_channel_t *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;
    c->kind = SL_NET_EXPORT;
    c->id = channel_id;
    c->net = net;
    c->ch = ch;
    export_arg_t a = {c, 0};
    int rc = sl__net_run(net, export_on_loop, &a);
    if (rc == 0)
        rc = a.rc;
    if (rc < 0) {
        sl_free(c);
        return rc;
    }
    *out = c;
    return 0;
}
