/* Consumer side of remote channels: the network thread requests a channel from the producer
 * TaskManager, reads its BUFFER frames straight into buffers of the consumer's pool and
 * queues them, with its events, into an ordinary local channel; credit the consumer task
 * returns (sl_channel_release) is announced back with ADD_CREDIT.
 *
 * DESIGN. The imported channel's credit is the consumer's view: the buffers of the pool it
 * may still fill. The network thread remembers the value it last announced (`credit_seen`,
 * lowered by each buffer it queues), so whatever the channel's credit grew beyond it was
 * released by the task and is announced on the next wake-up. The producer sends only against
 * announced credit, so a pool buffer is always free for a BUFFER frame; a peer that sends
 * without credit finds the pool empty and loses its connection: receive memory never grows.
 * The channel is marked credit_watch, so the task's first release after each announcement
 * wakes the loop (later ones ride along); the ADD_CREDIT frames of one wake-up share a write. */
#include "network/net_internal.h"

#include <stdio.h>
#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"

static void request(sl_net_channel_t *im) {
    int credit = sl_channel_credit_ack(im->ch);
    uint8_t p[4];
    sl_net_put_u32(p, (uint32_t)credit);
    if (sl__net_conn_send(im->conn, SL_NET_FRAME_PARTITION_REQUEST, im->id, p, sizeof p) == 0) {
        im->credit_seen = credit;
        im->requested = 1;
    }
}

static void request_if_waiting(sl_net_channel_t *c, void *arg) {
    if (c->kind == SL_NET_IMPORT && c->conn == arg && !c->requested && !c->ended)
        request(c);
}

void sl__net_import_conn_open(sl_net_conn_t *c) {
    sl__net_each_channel(c->net, request_if_waiting, c);
}

static void announce(sl_net_channel_t *c, void *arg) {
    if (c->kind != SL_NET_IMPORT || !c->conn || c->conn->state != SL_NET_CONN_OPEN || !c->requested || c->ended)
        return;
    /* Nothing released since the last ack: nothing to announce. */
    if (!atomic_load(&c->ch->credit_news))
        return;
    int now = sl_channel_credit_ack(c->ch);
    if (now <= c->credit_seen)
        return;
    uint8_t p[4];
    sl_net_put_u32(p, (uint32_t)(now - c->credit_seen));
    if (sl__net_conn_send(c->conn, SL_NET_FRAME_ADD_CREDIT, c->id, p, sizeof p) == 0)
        c->credit_seen = now;
}

void sl__net_import_credit_all(sl_net_t *net) {
    sl__net_each_channel(net, announce, NULL);
}

void sl__net_import_fail(sl_net_channel_t *im, int code, const char *msg) {
    if (im->ended)
        return; /* complete: nothing more was expected */
    sl_net_conn_t *conn = im->conn;
    if (conn && conn->rx_ch == im) {
        if (conn->rx_buf)
            sl_buffer_recycle(conn->rx_buf);
        conn->rx_buf = NULL;
        conn->rx_ch = NULL;
        conn->rx_discard = 1;
    }
    im->ended = 1;
    if (sl__net_channel_set_error(im, code, "%s", msg))
        sl_channel_fail(im->ch, im->msg); /* the consumer sees END and fails with the cause */
}

/* The channel a frame is for, if it is still an open import of this connection. */
static sl_net_channel_t *target(sl_net_conn_t *c, uint64_t id) {
    sl_net_channel_t *im = sl__net_lookup(c->net, SL_NET_IMPORT, id);
    if (!im || im->conn != c || im->ended)
        return NULL;
    return im;
}

int sl__net_import_buffer_start(sl_net_conn_t *c, uint64_t id, uint32_t len) {
    sl_net_channel_t *im = target(c, id);
    if (!im) {
        /* Closed or cancelled meanwhile: the bytes in flight are read and dropped. */
        c->rx_discard = 1;
        return 0;
    }
    sl_buffer_t *buf = sl_buffer_pool_request(im->pool);
    char reason[160];
    if (!buf || len > buf->cap) {
        if (buf)
            sl_buffer_recycle(buf);
        snprintf(reason, sizeof reason, buf ? "channel %016llx: BUFFER of %u bytes above the segment size"
                                            : "channel %016llx: BUFFER sent without credit",
                 (unsigned long long)id, len);
        sl__net_conn_refuse(c, SL_EPROTO, reason);
        return SL_EPROTO;
    }
    buf->len = 0;
    c->rx_buf = buf;
    c->rx_ch = im;
    return 0;
}

void sl__net_import_buffer_done(sl_net_conn_t *c) {
    sl_buffer_t *buf = c->rx_buf;
    sl_net_channel_t *im = c->rx_ch;
    c->rx_buf = NULL;
    c->rx_ch = NULL;
    c->rx_discard = 0;
    if (!buf)
        return;
    atomic_fetch_add_explicit(&c->net->buffers_in, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->net->bytes_in, buf->len, memory_order_relaxed);
    im->credit_seen--;
    int rc = sl_channel_send(im->ch, buf);
    if (rc < 0) {
        sl_buffer_recycle(buf);
        sl__net_import_fail(im, rc, "cannot queue a received buffer: out of memory");
    }
}

void sl__net_import_event(sl_net_conn_t *c, uint64_t id, const uint8_t *p) {
    unsigned kind = p[0];
    if (kind != SL_CH_WATERMARK && kind != SL_CH_IDLE && kind != SL_CH_END && kind != SL_CH_BARRIER) {
        sl__net_conn_refuse(c, SL_EPROTO, "EVENT frame of an unknown kind");
        return;
    }
    sl_net_channel_t *im = target(c, id);
    if (!im)
        return;
    int rc = sl_channel_event(im->ch, (sl_channel_entry_kind_t)kind, (int64_t)sl_net_get_u64(p + 1));
    if (rc < 0)
        sl__net_import_fail(im, rc, "cannot queue a received event: out of memory");
    else if (kind == SL_CH_END)
        im->ended = 1;
}

void sl__net_import_error(sl_net_conn_t *c, uint64_t id, int code, const char *msg) {
    sl_net_channel_t *im = target(c, id);
    if (!im)
        return;
    char who[SL_NET_ADDR_MAX + SL_NET_MAX_ID + 32];
    sl__net_conn_describe(c, who, sizeof who);
    char full[SL_NET_MSG_MAX];
    snprintf(full, sizeof full, "%s failed the channel: %s", who, msg);
    sl__net_import_fail(im, code, full);
}

/* ---- API ---- */

/* An existing connection to the peer, either direction. Two exist only when both sides
 * dialed at once; then the one dialed by the smaller id is preferred, on both sides. */
static const char *dialer_of(const sl_net_t *net, const sl_net_conn_t *c) {
    return c->is_client ? net->id : c->peer_id;
}

static sl_net_conn_t *find_conn(sl_net_t *net, const char *peer_id) {
    sl_net_conn_t *best = NULL;
    for (sl_net_conn_t *c = net->conns; c; c = c->next) {
        if (c->state == SL_NET_CONN_CLOSING || strcmp(c->peer_id, peer_id) != 0)
            continue;
        if (!c->is_client && c->state != SL_NET_CONN_OPEN)
            continue; /* an accepted connection's id is known once proven */
        if (!best || strcmp(dialer_of(net, c), dialer_of(net, best)) < 0)
            best = c;
    }
    return best;
}

typedef struct {
    sl_net_channel_t *c;
    int rc;
} import_arg_t;

static void import_on_loop(void *arg) {
    import_arg_t *a = arg;
    sl_net_channel_t *im = a->c;
    sl_net_t *net = im->net;
    if (sl__net_lookup(net, SL_NET_IMPORT, im->id)) {
        a->rc = SL_EEXIST;
        return;
    }
    sl_net_conn_t *conn = find_conn(net, im->peer_id);
    if (!conn) {
        a->rc = sl__net_conn_dial(net, im->host, im->port, im->peer_id, &conn);
        if (a->rc < 0)
            return;
    }
    sl__net_register(net, im);
    im->conn = conn;
    if (conn->state == SL_NET_CONN_OPEN)
        request(im);
}

int sl_net_import(sl_net_t *net, const char *host, int port, const char *peer_id, uint64_t channel_id,
                  sl_channel_t *ch, sl_buffer_pool_t *pool, sl_net_channel_t **out) {
    if (!host || !peer_id || !*peer_id || strlen(peer_id) > SL_NET_MAX_ID || port <= 0 || port > 65535 || !ch ||
        !pool || ch->producer != &net->mailbox)
        return SL_EINVAL;
    int credit = atomic_load(&ch->credit);
    if (credit < 1 || (uint32_t)credit > pool->nbuffers)
        return SL_EINVAL;
    if (pool->nbuffers && pool->buffers[0].cap > net->cfg.max_buffer)
        return SL_EINVAL;
    sl_net_channel_t *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;
    /* Before the channel is shared with the loop (sl__net_run orders the store). */
    ch->credit_watch = true;
    c->kind = SL_NET_IMPORT;
    c->id = channel_id;
    c->net = net;
    c->ch = ch;
    c->pool = pool;
    c->port = port;
    c->host = sl_strdup(host);
    c->peer_id = sl_strdup(peer_id);
    import_arg_t a = {c, 0};
    int rc = !c->host || !c->peer_id ? SL_ENOMEM : sl__net_run(net, import_on_loop, &a);
    if (rc == 0)
        rc = a.rc;
    if (rc < 0) {
        sl_free(c->host);
        sl_free(c->peer_id);
        sl_free(c);
        return rc;
    }
    *out = c;
    return 0;
}
