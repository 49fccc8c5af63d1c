/* Record serialization into network buffers (see record_writer.h). */
#include "network/record_writer.h"

#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"
#include "core/mailbox.h"

int sl_record_writer_init(sl_record_writer_t *w, sl_partitioner_t p, sl_channel_t **channels, uint32_t n,
                          uint32_t credit, sl_network_memory_t *nm, sl_mailbox_t *mailbox) {
    memset(w, 0, sizeof *w);
    if (n == 0 || credit == 0)
        return SL_EINVAL;
    w->current = sl_calloc(n, sizeof *w->current);
    w->channels = sl_malloc(n * sizeof *w->channels);
    if (w->current == NULL || w->channels == NULL) {
        sl_free(w->current);
        sl_free(w->channels);
        memset(w, 0, sizeof *w);
        return SL_ENOMEM;
    }
    memcpy(w->channels, channels, n * sizeof *channels);
    int rc = sl_buffer_pool_create(nm, n * (credit + 1), &w->pool);
    if (rc) {
        sl_free(w->current);
        sl_free(w->channels);
        memset(w, 0, sizeof *w);
        return rc;
    }
    w->partitioner = p;
    w->nchannels = n;
    w->mailbox = mailbox;
    return 0;
}

void sl_record_writer_destroy(sl_record_writer_t *w) {
    if (w->current) {
        for (uint32_t i = 0; i < w->nchannels; i++)
            if (w->current[i])
                sl_buffer_recycle(w->current[i]);
        sl_free(w->current);
    }
    sl_free(w->channels);
    /* Buffers still queued in channels belong to the pool: channels are destroyed first. */
    sl_buffer_pool_destroy(w->pool);
    memset(w, 0, sizeof *w);
}

static bool credit_available(void *arg) { return sl_channel_has_credit(arg); }

/* Sends the current buffer of channel i, waiting for credit (backpressure). */
static int send_current(sl_record_writer_t *w, uint32_t i) {
    sl_buffer_t *b = w->current[i];
    if (b == NULL || b->len == 0)
        return 0;
    sl_channel_t *c = w->channels[i];
    if (!sl_channel_has_credit(c)) {
        int64_t t0 = sl_monotonic_ms();
        /* Mails wait until the record is written: operator code is mid-call here. */
        int rc = sl_mailbox_wait_until(w->mailbox, credit_available, c, false);
        if (rc < 0)
            return rc;
        w->backpressured_ms += (uint64_t)(sl_monotonic_ms() - t0);
    }
    w->current[i] = NULL;
    w->bytes_out += b->len;
    return sl_channel_send(c, b);
}

static int acquire(sl_record_writer_t *w, uint32_t i) {
    sl_buffer_t *b = sl_buffer_pool_request(w->pool);
    /* Pool size = channels * (credit + 1): with credit available a buffer is always free. */
    if (b == NULL)
        return SL_ENOBUFS;
    w->current[i] = b;
    return 0;
}

static int write_to(sl_record_writer_t *w, uint32_t i, const sl_row_t *row, int64_t ts) {
    uint32_t total = SL_RECORD_HEADER + row->len;
    sl_buffer_t *b = w->current[i];
    if (b != NULL && b->cap - b->len < total && b->len > 0) {
        int rc = send_current(w, i);
        if (rc)
            return rc;
        b = NULL;
    }
    if (b == NULL) {
        int rc = acquire(w, i);
        if (rc)
            return rc;
        b = w->current[i];
    }
    uint8_t hdr[SL_RECORD_HEADER];
    memcpy(hdr, &row->len, 4);
    memcpy(hdr + 4, &ts, 8);
    if (total <= b->cap - b->len) {
        memcpy(b->data + b->len, hdr, SL_RECORD_HEADER);
        memcpy(b->data + b->len + SL_RECORD_HEADER, row->data, row->len);
        b->len += total;
    } else {
        /* Larger than a buffer: spread it over as many buffers as it takes. */
        const uint8_t *parts[2] = {hdr, row->data};
        uint32_t lens[2] = {SL_RECORD_HEADER, row->len};
        for (int p = 0; p < 2; p++) {
            uint32_t off = 0;
            while (off < lens[p]) {
                b = w->current[i];
                if (b == NULL || b->len == b->cap) {
                    int rc = send_current(w, i);
                    if (rc == 0)
                        rc = acquire(w, i);
                    if (rc)
                        return rc;
                    b = w->current[i];
                }
                uint32_t n = b->cap - b->len;
                if (n > lens[p] - off)
                    n = lens[p] - off;
                memcpy(b->data + b->len, parts[p] + off, n);
                b->len += n;
                off += n;
            }
        }
    }
    if (w->flush_every_record)
        return send_current(w, i);
    return 0;
}

int sl_record_writer_write(sl_record_writer_t *w, const sl_row_t *row, int64_t ts) {
    w->records_out++;
    switch (w->partitioner) {
    case SL_PART_FORWARD:
        return write_to(w, 0, row, ts);
    case SL_PART_REBALANCE: {
        uint32_t i = w->next_rr++;
        if (w->next_rr == w->nchannels)
            w->next_rr = 0;
        return write_to(w, i, row, ts);
    }
    case SL_PART_HASH: {
        int i = w->select(w->select_arg, row, w->nchannels);
        if (i < 0)
            return i;
        return write_to(w, (uint32_t)i, row, ts);
    }
    case SL_PART_BROADCAST:
        for (uint32_t i = 0; i < w->nchannels; i++) {
            int rc = write_to(w, i, row, ts);
            if (rc)
                return rc;
        }
        return 0;
    }
    return SL_EINVAL;
}

int sl_record_writer_flush(sl_record_writer_t *w) {
    for (uint32_t i = 0; i < w->nchannels; i++) {
        int rc = send_current(w, i);
        if (rc)
            return rc;
    }
    return 0;
}

int sl_record_writer_event(sl_record_writer_t *w, sl_channel_entry_kind_t kind, int64_t value) {
    int rc = sl_record_writer_flush(w);
    for (uint32_t i = 0; rc == 0 && i < w->nchannels; i++)
        rc = sl_channel_event(w->channels[i], kind, value);
    return rc;
}

void sl_record_reader_destroy(sl_record_reader_t *r) {
    sl_free(r->span);
    memset(r, 0, sizeof *r);
}

static int span_append(sl_record_reader_t *r, const uint8_t *p, uint32_t n) {
    if (r->span_len + n > r->span_cap) {
        uint32_t cap = r->span_cap ? r->span_cap : 1024;
        while (cap < r->span_len + n)
            cap *= 2;
        uint8_t *s = sl_realloc(r->span, cap);
        if (s == NULL)
            return SL_ENOMEM;
        r->span = s;
        r->span_cap = cap;
    }
    memcpy(r->span + r->span_len, p, n);
    r->span_len += n;
    return 0;
}

int sl_record_reader_next(sl_record_reader_t *r, const sl_buffer_t *buf, uint32_t *pos, sl_row_t *row,
                          int64_t *ts) {
    uint32_t p = *pos;
    if (r->span_need > 0 || (p < buf->len && buf->len - p < SL_RECORD_HEADER)) {
        /* Continue (or start) a record that spans buffers. */
        if (r->span_need == 0) {
            r->span_len = 0;
            r->span_need = SL_RECORD_HEADER; /* header first, then we know the size */
        }
        while (p < buf->len && r->span_len < r->span_need) {
            uint32_t n = r->span_need - r->span_len;
            if (n > buf->len - p)
                n = buf->len - p;
            int rc = span_append(r, buf->data + p, n);
            if (rc)
                return rc;
            p += n;
            if (r->span_len == SL_RECORD_HEADER && r->span_need == SL_RECORD_HEADER) {
                uint32_t len;
                memcpy(&len, r->span, 4);
                if (len < 8 || len > (1u << 30))
                    return SL_EPROTO;
                r->span_need = SL_RECORD_HEADER + len;
            }
        }
        *pos = p;
        if (r->span_len < r->span_need)
            return 0;
        memcpy(ts, r->span + 4, 8);
        row->data = r->span + SL_RECORD_HEADER;
        row->len = r->span_need - SL_RECORD_HEADER;
        r->span_need = 0;
        return 1;
    }
    if (p >= buf->len)
        return 0;
    uint32_t len;
    memcpy(&len, buf->data + p, 4);
    if (len < 8 || len > (1u << 30))
        return SL_EPROTO;
    if (buf->len - p - SL_RECORD_HEADER < len) {
        /* The record continues in the next buffer. */
        r->span_len = 0;
        r->span_need = SL_RECORD_HEADER + len;
        int rc = span_append(r, buf->data + p, buf->len - p);
        if (rc)
            return rc;
        *pos = buf->len;
        return 0;
    }
    memcpy(ts, buf->data + p + 4, 8);
    row->data = buf->data + p + SL_RECORD_HEADER;
    row->len = len;
    *pos = p + SL_RECORD_HEADER + len;
    return 1;
}
