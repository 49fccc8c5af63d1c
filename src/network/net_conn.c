/* One data-plane connection on the loop thread: accept and dial, the read path (frame headers
 * and control payloads through the decoder, BUFFER payloads straight into a pool buffer),
 * frame dispatch, writes, and the close paths (immediate, or a refusal that flushes an ERROR
 * frame first).
 *
 * DESIGN. Reads never take more than the decoder wants for the current part (sl_net_decoder_
 * want), so a read never mixes a frame header with payload bytes: once a BUFFER header is
 * parsed, the next reads land in the network buffer that will be handed to the consumer, and
 * the records are never copied on the way. A payload's last read also asks for up to
 * SL_NET_READ_AHEAD bytes more, into the segment's slack (a segment is rarely filled to the
 * byte), so the next frame's header usually comes with it; those few bytes are copied out
 * before the buffer goes to its consumer. Outside payloads, reads ask for SL_NET_HEADER_READ
 * bytes, so runs of control frames (ADD_CREDIT, EVENT) cost one read(2), and payload bytes that
 * come along are copied into the pool buffer (at most a few hundred per frame).
 *
 * Writes are batched per connection: frames queued while the loop handles one round of
 * callbacks (a wake-up that drains exported channels, a read that brings credit) go out in
 * one uv_write, BUFFER frames still as the producer's buffer itself (an iovec each). The
 * service's prepare and check handles submit open batches, so nothing waits past the loop
 * iteration that queued it: batching saves syscalls, never adds latency. A backpressured
 * channel queues nothing (it has no credit), so it cannot hold a batch up. */
#include "network/net_internal.h"

#include <stdio.h>
#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"

/* How long a refused peer gets to read our ERROR frame before the socket is closed anyway. */
#define REFUSE_FLUSH_MS 2000

/* One uv_write: frames in queue order. Headers and control frames are packed into `arena`
 * (adjacent ones share an iovec); BUFFER payloads are iovecs pointing at the producer's
 * buffers, which go back to their channels when the write completes or is cancelled. */
typedef struct {
    sl_net_channel_t *ex;
    sl_buffer_t *buf;
} batch_buffer_t;

struct sl_net_batch_s {
    uv_write_t req;
    sl_net_conn_t *conn;
    sl_net_batch_t *next_spare;
    uint8_t *cipher; /* TLS: the encrypted batch actually written, released with the request */
    uint32_t niov;
    uint32_t nbuf;
    uint32_t arena_len;
    size_t bytes;
    uv_buf_t iov[SL_NET_BATCH_IOV];
    batch_buffer_t bufs[SL_NET_BATCH_FRAMES];
    uint8_t arena[SL_NET_BATCH_ARENA];
};

void sl__net_conn_describe(const sl_net_conn_t *c, char *buf, size_t len) {
    snprintf(buf, len, "TaskManager %s at %s", c->peer_id[0] ? c->peer_id : "(unknown)", c->peer_addr);
}

static void link_conn(sl_net_t *net, sl_net_conn_t *c) {
    c->next = net->conns;
    c->prev = NULL;
    if (net->conns)
        net->conns->prev = c;
    net->conns = c;
}

static void unlink_conn(sl_net_conn_t *c) {
    if (c->prev)
        c->prev->next = c->next;
    else if (c->net->conns == c)
        c->net->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

int sl__net_conn_new(sl_net_t *net, int is_client, sl_net_conn_t **out) {
    sl_net_conn_t *c = sl_calloc(1, sizeof *c);
    if (!c)
        return SL_ENOMEM;
    if (net->tls && sl_tls_create(net->tls, !is_client, (uv_stream_t *)&c->tcp, &c->tls) < 0) {
        sl_free(c);
        return SL_ENOMEM;
    }
    c->net = net;
    c->is_client = is_client;
    c->state = is_client ? SL_NET_CONN_CONNECTING : SL_NET_CONN_HANDSHAKE;
    uv_tcp_init(&net->loop, &c->tcp);
    uv_timer_init(&net->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    sl_net_decoder_init(&c->dec, net->cfg.max_buffer);
    link_conn(net, c);
    *out = c;
    return 0;
}

/* ---- closing ---- */

static void batch_cancel(sl_net_conn_t *c);

static void handle_closed(uv_handle_t *h) {
    sl_net_conn_t *c = h->data;
    if (--c->handles_open == 0) {
        while (c->spare) {
            sl_net_batch_t *b = c->spare;
            c->spare = b->next_spare;
            sl_free(b);
        }
        sl_tls_destroy(c->tls);
        sl_free(c);
    }
}

static void close_handles(sl_net_conn_t *c) {
    if (c->handles_closing)
        return;
    /* Frames never submitted are dropped like writes the close cancels. */
    batch_cancel(c);
    c->handles_closing = 1;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

typedef struct {
    sl_net_conn_t *conn;
    int code;
    const char *reason;
    int unfinished; /* channels still streaming: their failure is worth a warning */
} fail_arg_t;

static void fail_bound(sl_net_channel_t *ch, void *arg) {
    fail_arg_t *a = arg;
    if (ch->conn != a->conn)
        return;
    if (!ch->ended && !ch->end_sent)
        a->unfinished++;
    char who[SL_NET_ADDR_MAX + SL_NET_MAX_ID + 32];
    sl__net_conn_describe(a->conn, who, sizeof who);
    char msg[SL_NET_MSG_MAX];
    snprintf(msg, sizeof msg, "connection to %s failed: %s", who, a->reason);
    if (ch->kind == SL_NET_EXPORT)
        sl__net_export_fail(ch, a->code, msg);
    else
        sl__net_import_fail(ch, a->code, msg);
    ch->conn = NULL;
}

static void drop_pending(sl_net_conn_t *c) {
    for (sl_net_pending_t **p = &c->net->pending; *p;) {
        if ((*p)->conn == c) {
            sl_net_pending_t *dead = *p;
            *p = dead->next;
            sl_free(dead);
        } else {
            p = &(*p)->next;
        }
    }
}

/* Everything a closing connection owes its channels; the handles close separately. Returns
 * the number of channels it interrupted. */
static int conn_shutdown(sl_net_conn_t *c, int code, const char *reason) {
    int was_open = c->state == SL_NET_CONN_OPEN;
    c->state = SL_NET_CONN_CLOSING;
    unlink_conn(c);
    if (was_open)
        atomic_fetch_sub(&c->net->open_conns, 1);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    if (c->rx_buf)
        sl_buffer_recycle(c->rx_buf);
    c->rx_buf = NULL;
    c->rx_ch = NULL;
    fail_arg_t a = {c, code, reason, 0};
    sl__net_each_channel(c->net, fail_bound, &a);
    drop_pending(c);
    return a.unfinished;
}

void sl__net_conn_fail(sl_net_conn_t *c, int code, const char *reason) {
    if (c->state == SL_NET_CONN_CLOSING) {
        close_handles(c);
        return;
    }
    char who[SL_NET_ADDR_MAX + SL_NET_MAX_ID + 32];
    sl__net_conn_describe(c, who, sizeof who);
    int was_open = c->state == SL_NET_CONN_OPEN;
    int interrupted = conn_shutdown(c, code, reason);
    /* An idle connection the peer closed (it stopped after its channels ended) is routine. */
    if (code != SL_ECANCELED && (interrupted || !was_open))
        SL_WARN("net %s: connection to %s closed: %s", c->net->id, who, reason);
    else
        SL_DEBUG("net %s: connection to %s closed: %s", c->net->id, who, reason);
    close_handles(c);
}

static void flush_deadline_cb(uv_timer_t *t) {
    close_handles(t->data);
}

void sl__net_conn_refuse(sl_net_conn_t *c, int code, const char *reason) {
    if (c->state == SL_NET_CONN_CLOSING)
        return;
    if (!c->is_client || c->state == SL_NET_CONN_OPEN)
        atomic_fetch_add(&c->net->refused, 1);
    SL_WARN("net %s: dropping connection %s %s: %s", c->net->id, c->is_client ? "to" : "from", c->peer_addr,
            reason);
    uint8_t p[SL_NET_MAX_CONTROL];
    uint32_t mlen = (uint32_t)strlen(reason);
    if (mlen > SL_NET_MAX_CONTROL - 4)
        mlen = SL_NET_MAX_CONTROL - 4;
    sl_net_put_u32(p, (uint32_t)code);
    memcpy(p + 4, reason, mlen);
    int rc = sl__net_conn_send(c, SL_NET_FRAME_ERROR, 0, p, 4 + mlen);
    if (rc == 0)
        rc = sl__net_conn_flush(c);
    if (c->state == SL_NET_CONN_CLOSING) {
        close_handles(c); /* the flush failed the connection */
        return;
    }
    conn_shutdown(c, code, reason);
    if (rc < 0 || c->pending_writes == 0) {
        close_handles(c);
        return;
    }
    c->close_after_write = 1;
    uv_timer_start(&c->timer, flush_deadline_cb, REFUSE_FLUSH_MS, 0);
}

static void tls_failed(sl_net_conn_t *c, int code, const char *reason);

static void deadline_cb(uv_timer_t *t) {
    sl_net_conn_t *c = t->data;
    char reason[256];
    uint32_t ms = c->net->cfg.connect_timeout_ms;
    if (c->tls && !c->tls_ready && c->state == SL_NET_CONN_HANDSHAKE) {
        if (!c->is_client && sl_tls_bytes_in(c->tls) == 0) {
            /* The peer never started TLS: most likely a plain one, which can read this. */
            snprintf(reason, sizeof reason, "no TLS handshake within %u ms: this TaskManager requires TLS "
                     "(security.ssl.internal.enabled)", ms);
            c->plain_refusal = 1;
            sl__net_conn_refuse(c, SL_EPROTO, reason);
            return;
        }
        snprintf(reason, sizeof reason, "TLS handshake not finished within %u ms%s", ms,
                 c->is_client && !c->got_bytes ? " (the peer never answered our ClientHello: is TLS enabled on it?)"
                                               : "");
        tls_failed(c, SL_ETIMEDOUT, reason);
        return;
    }
    snprintf(reason, sizeof reason, "no %s within %u ms%s", c->state == SL_NET_CONN_CONNECTING ? "connection" : "authentication",
             ms, c->is_client && c->state == SL_NET_CONN_HANDSHAKE && !c->got_bytes
                     ? " (the peer never said HELLO: does it require TLS?)" : "");
    if (c->is_client)
        sl__net_conn_fail(c, SL_ETIMEDOUT, reason);
    else
        sl__net_conn_refuse(c, SL_ETIMEDOUT, reason);
}

void sl__net_conn_arm_deadline(sl_net_conn_t *c, uint32_t ms) {
    uv_timer_start(&c->timer, deadline_cb, ms, 0);
}

void sl__net_conn_opened(sl_net_conn_t *c) {
    uv_timer_stop(&c->timer);
    c->state = SL_NET_CONN_OPEN;
    atomic_fetch_add(&c->net->open_conns, 1);
    SL_DEBUG("net %s: connection with TaskManager %s at %s open", c->net->id, c->peer_id, c->peer_addr);
    sl__net_import_conn_open(c);
}

/* ---- writes ---- */

/* A batch's frames are done (written, or cancelled with status < 0): BUFFERs go back to their
 * channels; the batch is kept for reuse. */
static void batch_done(sl_net_conn_t *c, sl_net_batch_t *b, int status) {
    for (uint32_t i = 0; i < b->nbuf; i++)
        sl__net_export_written(b->bufs[i].ex, b->bufs[i].buf, status);
    sl_tls_buf_free(c->tls, b->cipher);
    b->cipher = NULL;
    if (c->nspare < SL_NET_SPARE_BATCHES) {
        b->next_spare = c->spare;
        c->spare = b;
        c->nspare++;
    } else {
        sl_free(b);
    }
}

static sl_net_batch_t *take_batch(sl_net_conn_t *c) {
    sl_net_batch_t *b = c->batch;
    if (b) {
        c->batch = NULL;
        c->net->open_batches--;
    }
    return b;
}

static void batch_cancel(sl_net_conn_t *c) {
    sl_net_batch_t *b = take_batch(c);
    if (b)
        batch_done(c, b, SL_ECANCELED);
}

static void write_cb(uv_write_t *req, int status) {
    sl_net_batch_t *b = (sl_net_batch_t *)req;
    sl_net_conn_t *c = b->conn;
    c->pending_writes--;
    batch_done(c, b, status);
    if (status < 0 && c->state != SL_NET_CONN_CLOSING)
        sl__net_conn_fail(c, status, uv_strerror(status));
    else if (c->close_after_write && c->pending_writes == 0)
        close_handles(c);
}

/* TLS: the batch's pieces are encrypted into one buffer written in their place; the request
 * completes (and its BUFFERs go back to their producers) when the ciphertext is in the socket. */
static int encrypt(sl_net_conn_t *c, sl_net_batch_t *b, uv_buf_t *out) {
    size_t len;
    char reason[512];
    int rc = sl_tls_encrypt(c->tls, b->iov, b->niov, &b->cipher, &len, reason, sizeof reason);
    if (rc == SL_ECANCELED) {
        batch_done(c, b, rc); /* before the TLS handshake completed: nothing can be sent yet */
        return rc;
    }
    if (rc < 0) {
        batch_done(c, b, rc);
        sl__net_conn_fail(c, rc, rc == SL_ENOMEM ? "out of memory" : reason);
        return rc;
    }
    *out = uv_buf_init((char *)b->cipher, (unsigned)len);
    return 0;
}

int sl__net_conn_flush(sl_net_conn_t *c) {
    sl_net_batch_t *b = take_batch(c);
    if (!b)
        return 0;
    uv_buf_t cipher;
    const uv_buf_t *bufs = b->iov;
    unsigned n = b->niov;
    if (c->tls && !c->plain_refusal) {
        int rc = encrypt(c, b, &cipher);
        if (rc < 0)
            return rc;
        bufs = &cipher;
        n = 1;
    }
    int rc = uv_write(&b->req, (uv_stream_t *)&c->tcp, bufs, n, write_cb);
    if (rc < 0) {
        batch_done(c, b, rc);
        if (c->state != SL_NET_CONN_CLOSING)
            sl__net_conn_fail(c, rc, uv_strerror(rc));
        return rc;
    }
    c->pending_writes++;
    atomic_fetch_add_explicit(&c->net->writes, 1, memory_order_relaxed);
    return 0;
}

void sl__net_flush_all(sl_net_t *net) {
    if (net->open_batches == 0)
        return;
    for (sl_net_conn_t *c = net->conns, *next; c; c = next) {
        next = c->next; /* a failed write unlinks c */
        if (c->batch)
            sl__net_conn_flush(c);
    }
}

/* The batch a frame of `arena_bytes` header/control bytes and `payload` buffer bytes goes
 * into: the open one if it has room, else a new one (the full one is submitted first). */
static int batch_for(sl_net_conn_t *c, uint32_t arena_bytes, uint32_t payload, sl_net_batch_t **out) {
    sl_net_batch_t *b = c->batch;
    if (b) {
        size_t tls_limit = c->tls ? SL_NET_BATCH_TLS_BYTES : SIZE_MAX;
        int full = b->niov + 2 > SL_NET_BATCH_IOV || b->arena_len + arena_bytes > SL_NET_BATCH_ARENA ||
                   (payload && b->nbuf == SL_NET_BATCH_FRAMES) || b->bytes + arena_bytes + payload > tls_limit;
        if (!full) {
            *out = b;
            return 0;
        }
        int rc = sl__net_conn_flush(c);
        if (rc < 0)
            return rc;
        if (c->state == SL_NET_CONN_CLOSING || c->handles_closing)
            return SL_ECANCELED;
    }
    b = c->spare;
    if (b) {
        c->spare = b->next_spare;
        c->nspare--;
    } else if ((b = sl_malloc(sizeof *b)) == NULL) {
        return SL_ENOMEM;
    }
    b->conn = c;
    b->cipher = NULL;
    b->niov = b->nbuf = b->arena_len = 0;
    b->bytes = 0;
    c->batch = b;
    c->net->open_batches++;
    *out = b;
    return 0;
}

/* Appends arena bytes [arena_len, arena_len + n) as an iovec, merged with the previous one
 * when that ends right there. */
static void add_arena_iov(sl_net_batch_t *b, uint32_t n) {
    uint8_t *p = b->arena + b->arena_len;
    uv_buf_t *last = b->niov ? &b->iov[b->niov - 1] : NULL;
    if (last && (uint8_t *)last->base + last->len == p)
        last->len += n;
    else
        b->iov[b->niov++] = uv_buf_init((char *)p, n);
    b->arena_len += n;
    b->bytes += n;
}

int sl__net_conn_send(sl_net_conn_t *c, uint8_t type, uint64_t channel, const void *payload, uint32_t len) {
    if (c->state == SL_NET_CONN_CLOSING || c->handles_closing || len > SL_NET_MAX_CONTROL)
        return SL_ECANCELED;
    sl_net_batch_t *b;
    int rc = batch_for(c, SL_NET_FRAME_HEADER + len, 0, &b);
    if (rc < 0)
        return rc;
    uint8_t *p = b->arena + b->arena_len;
    sl_net_frame_header(p, type, channel, len);
    if (len)
        memcpy(p + SL_NET_FRAME_HEADER, payload, len);
    add_arena_iov(b, SL_NET_FRAME_HEADER + len);
    return 0;
}

int sl__net_conn_send_buffer(sl_net_conn_t *c, sl_net_channel_t *ex, sl_buffer_t *buf) {
    if (c->state != SL_NET_CONN_OPEN || c->handles_closing)
        return SL_ECANCELED;
    sl_net_batch_t *b;
    int rc = batch_for(c, SL_NET_FRAME_HEADER, buf->len, &b);
    if (rc < 0)
        return rc;
    sl_net_frame_header(b->arena + b->arena_len, SL_NET_FRAME_BUFFER, ex->id, buf->len);
    add_arena_iov(b, SL_NET_FRAME_HEADER);
    /* The producer's buffer itself: the records are not copied. */
    b->iov[b->niov++] = uv_buf_init((char *)buf->data, buf->len);
    b->bytes += buf->len;
    b->bufs[b->nbuf++] = (batch_buffer_t){ex, buf};
    atomic_fetch_add_explicit(&c->net->buffers_out, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->net->bytes_out, buf->len, memory_order_relaxed);
    return 0;
}

/* ---- reads ---- */

/* Where the next bytes of the stream go: BUFFER payloads straight into their pool buffer,
 * plus up to SL_NET_READ_AHEAD bytes of what follows into the segment's slack; a payload being
 * dropped into rbuf, never past its end; anything else into rbuf, SL_NET_HEADER_READ at a
 * time (the decoder takes whatever arrives). */
static uv_buf_t read_target(sl_net_conn_t *c) {
    uint32_t want = sl_net_decoder_want(&c->dec);
    if (sl_net_decoder_in_buffer(&c->dec)) {
        sl_buffer_t *b = c->rx_buf;
        if (b) {
            /* sl__net_import_buffer_start checked the payload fits: len + want <= cap. */
            uint32_t ahead = b->cap - b->len - want;
            if (ahead > SL_NET_READ_AHEAD)
                ahead = SL_NET_READ_AHEAD;
            return uv_buf_init((char *)b->data + b->len, want + ahead);
        }
        if (want > sizeof c->rbuf)
            want = sizeof c->rbuf;
        return uv_buf_init((char *)c->rbuf, want);
    }
    if (want < SL_NET_HEADER_READ)
        want = SL_NET_HEADER_READ;
    if (want > sizeof c->rbuf)
        want = sizeof c->rbuf;
    return uv_buf_init((char *)c->rbuf, want);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out) {
    sl_net_conn_t *c = h->data;
    /* TLS: ciphertext lands in the session's buffer; sl_tls_read then decrypts into
     * read_target, so records are decrypted in place as they are read in place without TLS. */
    *out = c->tls ? sl_tls_read_buf(c->tls) : read_target(c);
}

static void peer_error(sl_net_conn_t *c, const sl_net_frame_t *f) {
    int code = (int)sl_net_get_u32(f->payload);
    char msg[SL_NET_MAX_CONTROL];
    snprintf(msg, sizeof msg, "%.*s", (int)(f->len - 4), (const char *)f->payload + 4);
    if (code >= 0)
        code = SL_EPROTO;
    if (f->channel != 0) {
        sl__net_import_error(c, f->channel, code, msg);
        return;
    }
    char reason[SL_NET_MAX_CONTROL + 64];
    snprintf(reason, sizeof reason, "the peer closed the connection: %s", msg);
    sl__net_conn_fail(c, code, reason);
}

/* A control frame on an open connection. */
static void open_frame(sl_net_conn_t *c, const sl_net_frame_t *f) {
    switch (f->type) {
    case SL_NET_FRAME_PARTITION_REQUEST:
        sl__net_export_request(c, f->channel, sl_net_get_u32(f->payload));
        return;
    case SL_NET_FRAME_ADD_CREDIT:
        sl__net_export_credit(c, f->channel, sl_net_get_u32(f->payload));
        return;
    case SL_NET_FRAME_CANCEL:
        sl__net_export_cancel(c, f->channel);
        return;
    case SL_NET_FRAME_EVENT:
        sl__net_import_event(c, f->channel, f->payload);
        return;
    case SL_NET_FRAME_ERROR:
        peer_error(c, f);
        return;
    default: {
        char reason[96];
        snprintf(reason, sizeof reason, "unexpected %s frame after the handshake", sl_net_frame_type_name(f->type));
        sl__net_conn_refuse(c, SL_EPROTO, reason);
    }
    }
}

static void on_frame(sl_net_conn_t *c, const sl_net_frame_t *f) {
    if (c->state == SL_NET_CONN_OPEN)
        open_frame(c, f);
    else
        sl__net_handshake_frame(c, f);
}

/* Copies BUFFER bytes that came through the decoder (only when a read held more than the
 * header, which the alloc_cb sizing avoids) into the receiving buffer. */
static void buffer_data(sl_net_conn_t *c, const sl_net_frame_t *f) {
    if (c->rx_buf) {
        memcpy(c->rx_buf->data + c->rx_buf->len, f->payload, f->len);
        c->rx_buf->len += f->len;
    }
    if (!sl_net_decoder_in_buffer(&c->dec))
        sl__net_import_buffer_done(c);
}

static void feed(sl_net_conn_t *c, const uint8_t *data, size_t n) {
    while (n > 0 && c->state != SL_NET_CONN_CLOSING) {
        sl_net_frame_t f;
        size_t used = 0;
        const char *what = NULL;
        int rc = sl_net_frame_decode(&c->dec, data, n, &used, &f, &what);
        data += used;
        n -= used;
        if (rc < 0) {
            sl__net_conn_refuse(c, rc, what);
            return;
        }
        if (rc == SL_NET_DEC_FRAME)
            on_frame(c, &f);
        else if (rc == SL_NET_DEC_BUFFER && c->state != SL_NET_CONN_OPEN)
            sl__net_conn_refuse(c, SL_EPROTO, "BUFFER frame before authentication");
        else if (rc == SL_NET_DEC_BUFFER)
            sl__net_import_buffer_start(c, f.channel, f.len);
        else if (rc == SL_NET_DEC_DATA)
            buffer_data(c, &f);
    }
}

/* `nread` (> 0) stream bytes arrived at read_target(c). */
static void on_bytes(sl_net_conn_t *c, ssize_t nread, const uv_buf_t *b) {
    if (sl_net_decoder_in_buffer(&c->dec) && (c->rx_buf || c->rx_discard)) {
        /* Payload read in place (or into rbuf and dropped, for a channel gone meanwhile). */
        uint32_t want = sl_net_decoder_want(&c->dec);
        uint32_t n = (size_t)nread < want ? (uint32_t)nread : want;
        if (c->rx_buf)
            c->rx_buf->len += n;
        if (!sl_net_decoder_skip(&c->dec, n))
            return;
        /* What was read ahead belongs to the next frames: out of the buffer before the
         * consumer gets it. */
        uint8_t ahead[SL_NET_READ_AHEAD];
        size_t extra = (size_t)nread - n;
        if (extra > sizeof ahead) { /* read_target never asks for more */
            sl__net_conn_fail(c, SL_EPROTO, "read past the read-ahead");
            return;
        }
        memcpy(ahead, b->base + n, extra);
        sl__net_import_buffer_done(c);
        feed(c, ahead, extra);
        return;
    }
    feed(c, (const uint8_t *)b->base, (size_t)nread);
}

/* ---- TLS ---- */

static void tls_failed(sl_net_conn_t *c, int code, const char *reason) {
    if (c->is_client) {
        sl__net_conn_fail(c, code, reason); /* logs it with the peer's id and address */
        return;
    }
    atomic_fetch_add(&c->net->refused, 1);
    SL_WARN("net %s: dropping connection from %s: %s", c->net->id, c->peer_addr, reason);
    conn_shutdown(c, code, reason);
    close_handles(c);
}

static void tls_opened(sl_net_conn_t *c) {
    c->tls_ready = 1;
    char what[128];
    sl_tls_describe(c->tls, what, sizeof what);
    SL_DEBUG("net %s: TLS with %s established (%s)", c->net->id, c->peer_addr, what);
    if (!c->is_client) {
        int rc = sl__net_handshake_hello(c);
        if (rc < 0 && c->state != SL_NET_CONN_CLOSING)
            sl__net_conn_fail(c, rc, "cannot start the handshake");
    }
}

/* Ciphertext in: TLS handshake first, then plaintext decrypted straight into read_target. */
static void tls_input(sl_net_conn_t *c, const uint8_t *data, size_t n) {
    char reason[512];
    if (sl_tls_feed(c->tls, data, n) < 0) {
        sl__net_conn_fail(c, SL_ENOMEM, "out of memory");
        return;
    }
    while (c->state != SL_NET_CONN_CLOSING) {
        uv_buf_t b = read_target(c);
        ssize_t got = sl_tls_read(c->tls, b.base, b.len, reason, sizeof reason);
        if (got < 0) {
            tls_failed(c, (int)got, reason);
            return;
        }
        if (!c->tls_ready && sl_tls_ready(c->tls)) {
            tls_opened(c);
            continue;
        }
        if (got == 0)
            return;
        on_bytes(c, got, &b);
    }
}

/* A plain service that receives a TLS ClientHello says so (the TLS peer reports our
 * plain-text answer as "not TLS"). */
static int first_bytes(sl_net_conn_t *c, const uint8_t *data, size_t n) {
    c->got_bytes = 1;
    if (c->tls || c->is_client || !sl_tls_looks_like_client_hello(data, n))
        return 0;
    sl__net_conn_refuse(c, SL_EPROTO, "the peer started a TLS handshake, but TLS is not enabled on this "
                                      "TaskManager (security.ssl.internal.enabled)");
    return -1;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    sl_net_conn_t *c = s->data;
    if (nread < 0) {
        sl__net_conn_fail(c, nread == UV_EOF ? SL_EIO : (int)nread,
                          nread == UV_EOF ? "the peer closed the connection" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    if (!c->got_bytes && first_bytes(c, (const uint8_t *)b->base, (size_t)nread) < 0)
        return;
    if (c->tls)
        tls_input(c, (const uint8_t *)b->base, (size_t)nread);
    else
        on_bytes(c, nread, b);
}

int sl__net_conn_start_reading(sl_net_conn_t *c) {
    return uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* ---- accept and dial ---- */

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t len) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    snprintf(buf, len, "%s:%d", ip, port);
}

void sl__net_accept_cb(uv_stream_t *server, int status) {
    sl_net_t *net = server->data;
    sl_net_conn_t *c;
    if (status < 0 || sl__net_conn_new(net, 0, &c) < 0)
        return;
    atomic_fetch_add(&net->accepted, 1);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        sl__net_conn_fail(c, SL_ECANCELED, "accept failed");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        format_addr(&ss, c->peer_addr, sizeof c->peer_addr);
    int rc = sl__net_handshake_server_start(c);
    if (rc < 0)
        sl__net_conn_fail(c, rc, "cannot start the handshake");
}

static void connect_cb(uv_connect_t *req, int status) {
    sl_net_conn_t *c = req->data;
    if (c->state == SL_NET_CONN_CLOSING)
        return;
    if (status < 0) {
        sl__net_conn_fail(c, status, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = SL_NET_CONN_HANDSHAKE;
    int rc = sl__net_conn_start_reading(c);
    if (rc < 0) {
        sl__net_conn_fail(c, rc, uv_strerror(rc));
        return;
    }
    if (c->tls) {
        /* TLS first: our ClientHello; HELLO then comes inside the session. */
        char reason[512];
        rc = sl_tls_start(c->tls, reason, sizeof reason);
        if (rc < 0)
            sl__net_conn_fail(c, rc, reason);
    }
}

int sl__net_conn_dial(sl_net_t *net, const char *host, int port, const char *peer_id, sl_net_conn_t **out) {
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) < 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) < 0)
        return SL_EINVAL;
    sl_net_conn_t *c;
    int rc = sl__net_conn_new(net, 1, &c);
    if (rc < 0)
        return rc;
    snprintf(c->peer_addr, sizeof c->peer_addr, "%s:%d", host, port);
    snprintf(c->peer_id, sizeof c->peer_id, "%s", peer_id);
    c->connect_req.data = c;
    atomic_fetch_add(&net->dialed, 1);
    sl__net_conn_arm_deadline(c, net->cfg.connect_timeout_ms);
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&ss, connect_cb);
    if (rc < 0) {
        /* Reported like a late failure, so callers have one path. */
        conn_shutdown(c, rc, uv_strerror(rc));
        close_handles(c);
        return rc;
    }
    *out = c;
    return 0;
}
