/* Remote channels end to end: two network services in this process stand for two
 * TaskManagers, connected over real sockets on 127.0.0.1; producer and consumer threads use
 * the real record writer/reader and local channels. Proves exact in-order delivery with
 * events in place over one shared connection, backpressure isolation between channels of
 * that connection, and the receive-side memory bound; the same transfer with 128 KiB and
 * 1 MiB segments; frames queued together leave in one batched write, in order, with credit
 * accounted exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sluice/error.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "network/net.h"
#include "network/net_frame.h"
#include "network/record_writer.h"
#include "unit/rpc/tls_certs.h"

#define MAXCH 8
#define SECRET "s3cret-cluster"
#define SEGMENT 4096u
#define MAX_SEGMENT SL_NET_DEFAULT_MAX_BUFFER

/* The segment size of the pools the next producer/consumer creates (the large-segment test
 * changes it). */
static uint32_t g_segment = SEGMENT;

static uint64_t budget_bytes(void) {
    uint64_t b = 32ull * g_segment;
    return b < (8u << 20) ? 8u << 20 : b;
}

/* Set by the TLS variants: every service of the test then runs TLS. */
static sl_tls_ctx_t *g_tls;

static sl_net_t *start_tm(const char *id) {
    sl_net_config_t cfg = {.id = id, .secret = (const uint8_t *)SECRET, .secret_len = strlen(SECRET), .tls = g_tls};
    sl_net_t *net = NULL;
    char err[256];
    assert_int_equal(sl_net_create(&cfg, &net, err, sizeof err), 0);
    assert_true(sl_net_port(net) > 0);
    return net;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The producer's credit comes back when the loop completes the last write, which may be just
 * after the consumer saw END: wait for it (bounded). */
static int credit_when_settled(sl_channel_t *ch, int expected) {
    int64_t t0 = sl_monotonic_ms();
    while (atomic_load(&ch->credit) != expected && sl_monotonic_ms() - t0 < 5000)
        sleep_ms(1);
    return atomic_load(&ch->credit);
}

/* ---- producer: one writer over n exported channels, records hashed by field 0 ---- */

typedef struct {
    sl_network_memory_t nm;
    sl_mailbox_t mb;
    sl_channel_t ch[MAXCH];
    sl_channel_t *chp[MAXCH];
    sl_net_channel_t *h[MAXCH];
    sl_record_writer_t w;
    uint32_t n;
    uint32_t first; /* global index of ch[0] */
    int64_t records; /* per channel */
    int64_t wm_every;
    uint32_t max_pad;
    atomic_long written;
    int rc;
    pthread_t th;
} producer_t;

static int select_by_field0(void *arg, const sl_row_t *row, uint32_t n) {
    producer_t *p = arg;
    return (int)(sl_row_i64(row, 0) - p->first);
}

static void producer_init(producer_t *p, sl_net_t *net, uint32_t first, uint32_t n, uint32_t credit, int64_t records) {
    memset(p, 0, sizeof *p);
    assert_int_equal(sl_network_memory_init(&p->nm, budget_bytes(), g_segment), 0);
    assert_int_equal(sl_mailbox_init(&p->mb), 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(sl_channel_init(&p->ch[i], credit, &p->mb, sl_net_mailbox(net), 0, i), 0);
        p->chp[i] = &p->ch[i];
        assert_int_equal(sl_net_export(net, 1000 + first + i, &p->ch[i], &p->h[i]), 0);
    }
    assert_int_equal(sl_record_writer_init(&p->w, SL_PART_HASH, p->chp, n, credit, &p->nm, &p->mb), 0);
    p->w.select = select_by_field0;
    p->w.select_arg = p;
    p->n = n;
    p->first = first;
    p->records = records;
    p->wm_every = 1000;
    p->max_pad = 100;
}

static void producer_destroy(producer_t *p) {
    for (uint32_t i = 0; i < p->n; i++)
        sl_net_channel_close(p->h[i]);
    for (uint32_t i = 0; i < p->n; i++)
        sl_channel_destroy(&p->ch[i]);
    sl_record_writer_destroy(&p->w);
    assert_int_equal(p->nm.reserved_segments, 0);
    sl_mailbox_destroy(&p->mb);
    sl_network_memory_destroy(&p->nm);
}

/* Pads vary with the sequence number; every 997th record is larger than a segment, so some
 * records span buffers. */
static uint32_t pad_of(int64_t seq, uint32_t max_pad) {
    if (max_pad > 100 && seq % 997 == 5)
        return g_segment + 1000;
    return (uint32_t)(seq * 7 % (max_pad + 1));
}

static void *produce(void *arg) {
    producer_t *p = arg;
    static const char big[MAX_SEGMENT + 2000];
    sl_row_builder_t b;
    sl_row_builder_init(&b);
    int rc = 0;
    for (int64_t s = 0; s < p->records && rc == 0; s++) {
        for (uint32_t i = 0; i < p->n && rc == 0; i++) {
            sl_row_builder_start(&b, 3);
            sl_row_set_i64(&b, 0, p->first + i);
            sl_row_set_i64(&b, 1, s);
            sl_row_set_str(&b, 2, big, pad_of(s, p->max_pad));
            sl_row_t r;
            rc = sl_row_builder_finish(&b, &r);
            if (rc == 0)
                rc = sl_record_writer_write(&p->w, &r, s * 10);
        }
        atomic_fetch_add(&p->written, 1);
        if (rc == 0 && s % p->wm_every == 0)
            rc = sl_record_writer_event(&p->w, SL_CH_WATERMARK, s);
    }
    if (rc == 0)
        rc = sl_record_writer_event(&p->w, SL_CH_END, 0);
    p->rc = rc;
    sl_row_builder_destroy(&b);
    return NULL;
}

/* ---- consumer: one task reading n imported channels ---- */

typedef struct {
    sl_network_memory_t nm;
    sl_mailbox_t mb;
    sl_channel_t ch[MAXCH];
    sl_buffer_pool_t *pool[MAXCH];
    sl_net_channel_t *h[MAXCH];
    sl_record_reader_t rd[MAXCH];
    uint32_t n;
    uint32_t credit;
    int64_t next_seq[MAXCH];
    int ended[MAXCH];
    atomic_long received[MAXCH]; /* records */
    atomic_int hold[MAXCH];      /* keep this channel's buffers (a stuck consumer) */
    atomic_int nheld[MAXCH];
    sl_buffer_t *held[MAXCH][64];
    int slow_ms;
    int max_in_use;     /* largest number of pool buffers out of any pool */
    int min_credit;     /* smallest credit seen on any channel */
    atomic_int all_ended;
    char error[256];
    pthread_t th;
} consumer_t;

static void consumer_init(consumer_t *c, sl_net_t *net, sl_net_t *peer, uint32_t first, uint32_t n, uint32_t credit) {
    memset(c, 0, sizeof *c);
    assert_int_equal(sl_network_memory_init(&c->nm, budget_bytes(), g_segment), 0);
    assert_int_equal(sl_mailbox_init(&c->mb), 0);
    c->n = n;
    c->credit = credit;
    c->min_credit = (int)credit;
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(sl_buffer_pool_create(&c->nm, credit, &c->pool[i]), 0);
        assert_int_equal(sl_channel_init(&c->ch[i], credit, sl_net_mailbox(net), &c->mb, 0, i), 0);
        assert_int_equal(sl_net_import(net, "127.0.0.1", sl_net_port(peer), sl_net_id(peer), 1000 + first + i,
                                       &c->ch[i], c->pool[i], &c->h[i]),
                         0);
    }
}

static void consumer_destroy(consumer_t *c) {
    for (uint32_t i = 0; i < c->n; i++)
        sl_net_channel_close(c->h[i]);
    for (uint32_t i = 0; i < c->n; i++) {
        sl_channel_destroy(&c->ch[i]);
        sl_record_reader_destroy(&c->rd[i]);
        sl_buffer_pool_destroy(c->pool[i]);
    }
    assert_int_equal(c->nm.reserved_segments, 0);
    sl_mailbox_destroy(&c->mb);
    sl_network_memory_destroy(&c->nm);
}

static int cfail(consumer_t *c, const char *fmt, long a, long b) {
    if (!c->error[0])
        snprintf(c->error, sizeof c->error, fmt, a, b);
    return -1;
}

static int in_use(sl_buffer_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    int n = (int)(p->nbuffers - p->nfree);
    pthread_mutex_unlock(&p->mu);
    return n;
}

static int read_buffer(consumer_t *c, uint32_t i, sl_buffer_t *buf) {
    uint32_t pos = 0;
    sl_row_t r;
    int64_t ts;
    int got;
    while ((got = sl_record_reader_next(&c->rd[i], buf, &pos, &r, &ts)) == 1) {
        if (sl_row_i64(&r, 0) != (int64_t)i)
            return cfail(c, "record of channel %ld on channel %ld", (long)sl_row_i64(&r, 0), (long)i);
        int64_t s = sl_row_i64(&r, 1);
        if (s != c->next_seq[i] || ts != s * 10)
            return cfail(c, "out of order: got %ld, expected %ld", (long)s, (long)c->next_seq[i]);
        c->next_seq[i]++;
        atomic_fetch_add(&c->received[i], 1);
    }
    return got < 0 ? cfail(c, "malformed buffer %ld on channel %ld", got, i) : 0;
}

static void release_held(consumer_t *c, uint32_t i) {
    int n = atomic_load(&c->nheld[i]);
    for (int k = 0; k < n; k++)
        sl_channel_release(&c->ch[i], c->held[i][k]);
    atomic_store(&c->nheld[i], 0);
}

static int on_entry(consumer_t *c, uint32_t i, sl_channel_entry_t *e) {
    int credit = atomic_load(&c->ch[i].credit);
    if (credit < c->min_credit)
        c->min_credit = credit;
    int used = in_use(c->pool[i]);
    if (used > c->max_in_use)
        c->max_in_use = used;
    if (e->kind == SL_CH_WATERMARK && e->value != c->next_seq[i] - 1)
        return cfail(c, "watermark %ld out of place (last record %ld)", (long)e->value, (long)c->next_seq[i] - 1);
    if (e->kind == SL_CH_END)
        c->ended[i] = 1;
    if (e->kind != SL_CH_BUFFER)
        return 0;
    if (read_buffer(c, i, e->buf) < 0)
        return -1;
    if (atomic_load(&c->hold[i])) {
        c->held[i][atomic_load(&c->nheld[i])] = e->buf;
        atomic_fetch_add(&c->nheld[i], 1);
        return 0;
    }
    if (c->slow_ms)
        sleep_ms(c->slow_ms);
    sl_channel_release(&c->ch[i], e->buf);
    return 0;
}

static int all_ended(consumer_t *c) {
    for (uint32_t i = 0; i < c->n; i++)
        if (!c->ended[i])
            return 0;
    return 1;
}

static void *consume(void *arg) {
    consumer_t *c = arg;
    int64_t deadline = sl_monotonic_ms() + 60000;
    while (!all_ended(c) && !c->error[0] && sl_monotonic_ms() < deadline) {
        for (uint32_t i = 0; i < c->n; i++)
            if (!atomic_load(&c->hold[i]) && atomic_load(&c->nheld[i]))
                release_held(c, i);
        void *ready;
        if (sl_mailbox_wait_ready(&c->mb, sl_monotonic_ms() + 20, &ready) != 1)
            continue;
        uint32_t i = (uint32_t)((sl_channel_t *)ready - c->ch);
        sl_channel_entry_t e;
        if (sl_channel_poll(&c->ch[i], &e) == 1 && on_entry(c, i, &e) < 0)
            break;
    }
    if (!all_ended(c))
        cfail(c, "consumer gave up (%ld, %ld)", 0, 0);
    for (uint32_t i = 0; i < c->n; i++)
        release_held(c, i);
    atomic_store(&c->all_ended, 1);
    return NULL;
}

static void check_delivered(consumer_t *c, int64_t records) {
    if (c->error[0])
        fail_msg("consumer: %s", c->error);
    for (uint32_t i = 0; i < c->n; i++) {
        assert_int_equal(c->next_seq[i], records);
        char msg[256];
        assert_int_equal(sl_net_channel_error(c->h[i], msg, sizeof msg), 0);
    }
}

/* N records over K channels arrive exactly, in order per channel, watermarks in place, and
 * all channels share one TCP connection. */
static void transfer(int64_t N) {
    enum { K = 4 };
    sl_net_t *a = start_tm("tm-a"), *b = start_tm("tm-b");
    static producer_t p;
    static consumer_t c;
    /* The consumer subscribes first: its requests wait for the exports. */
    consumer_init(&c, b, a, 0, K, 2);
    producer_init(&p, a, 0, K, 2, N);
    p.max_pad = 300;
    assert_int_equal(pthread_create(&c.th, NULL, consume, &c), 0);
    assert_int_equal(pthread_create(&p.th, NULL, produce, &p), 0);
    pthread_join(p.th, NULL);
    pthread_join(c.th, NULL);
    assert_int_equal(p.rc, 0);
    check_delivered(&c, N);
    sl_net_stats_t sa, sb;
    sl_net_stats(a, &sa);
    sl_net_stats(b, &sb);
    assert_int_equal(sa.open_connections, 1);
    assert_int_equal(sb.open_connections, 1);
    assert_int_equal(sb.dialed, 1);
    assert_int_equal(sa.accepted, 1);
    assert_int_equal(sa.dialed, 0);
    assert_int_equal(sa.buffers_out, sb.buffers_in);
    assert_true(sb.buffers_in > (uint64_t)K * (g_segment == SEGMENT ? 100 : 3));
    /* Every credit came back on both sides. */
    for (uint32_t i = 0; i < K; i++) {
        assert_int_equal(credit_when_settled(&p.ch[i], 2), 2);
        assert_int_equal(atomic_load(&c.ch[i].credit), 2);
    }
    producer_destroy(&p);
    consumer_destroy(&c);
    sl_net_destroy(a);
    sl_net_destroy(b);
}

static void test_transfer(void **state) {
    transfer(20000);
}

/* Segments of 128 KiB and of the largest BUFFER frame a service accepts (1 MiB by default):
 * the same exact delivery, records larger than a segment spanning several; the read-ahead
 * into a segment's slack and full segments without slack both occur. A pool with segments
 * above max_buffer is refused at import. */
static void test_transfer_large_segments(void **state) {
    uint32_t sizes[] = {128u * 1024u, MAX_SEGMENT};
    for (unsigned k = 0; k < 2; k++) {
        g_segment = sizes[k];
        transfer(3000);
    }
    g_segment = SEGMENT;

    sl_net_config_t cfg = {.id = "tm-small", .secret = (const uint8_t *)SECRET, .secret_len = strlen(SECRET),
                           .max_buffer = 64u * 1024u};
    sl_net_t *small = NULL;
    char err[256];
    assert_int_equal(sl_net_create(&cfg, &small, err, sizeof err), 0);
    sl_network_memory_t nm;
    assert_int_equal(sl_network_memory_init(&nm, 1u << 20, 128u * 1024u), 0);
    sl_buffer_pool_t *pool;
    assert_int_equal(sl_buffer_pool_create(&nm, 2, &pool), 0);
    sl_mailbox_t mb;
    assert_int_equal(sl_mailbox_init(&mb), 0);
    sl_channel_t ch;
    assert_int_equal(sl_channel_init(&ch, 2, sl_net_mailbox(small), &mb, 0, 0), 0);
    sl_net_channel_t *h = NULL;
    assert_int_equal(sl_net_import(small, "127.0.0.1", 1, "tm-x", 7, &ch, pool, &h), SL_EINVAL);
    sl_channel_destroy(&ch);
    sl_mailbox_destroy(&mb);
    sl_buffer_pool_destroy(pool);
    sl_network_memory_destroy(&nm);
    sl_net_destroy(small);
}

/* Buffers queued while the channel was not requested leave, once the request comes, in one
 * socket write (a batch), in order; the consumer holds them all, so exactly its credit was
 * sent; released, everything completes and every credit is back on both sides. */
static void test_batched_writes(void **state) {
    enum { N = 4000, CREDIT = 8 };
    sl_net_t *a = start_tm("tm-a"), *b = start_tm("tm-b");
    static producer_t p;
    static consumer_t c;
    producer_init(&p, a, 0, 1, CREDIT, N);
    p.wm_every = N; /* one watermark, after the first record */
    assert_int_equal(pthread_create(&p.th, NULL, produce, &p), 0);
    /* The producer fills its credit (8 buffers queued, unsent) and waits for more. */
    int64_t t0 = sl_monotonic_ms();
    while (atomic_load(&p.ch[0].credit) > 0 && sl_monotonic_ms() - t0 < 10000)
        sleep_ms(2);
    assert_int_equal(atomic_load(&p.ch[0].credit), 0);
    sl_net_stats_t sa;
    sl_net_stats(a, &sa);
    assert_int_equal(sa.writes, 0);
    consumer_init(&c, b, a, 0, 1, CREDIT);
    atomic_store(&c.hold[0], 1);
    assert_int_equal(pthread_create(&c.th, NULL, consume, &c), 0);
    while (atomic_load(&c.nheld[0]) < CREDIT && sl_monotonic_ms() - t0 < 10000)
        sleep_ms(2);
    assert_int_equal(atomic_load(&c.nheld[0]), CREDIT);
    sleep_ms(50);
    sl_net_stats(a, &sa);
    assert_int_equal(sa.buffers_out, CREDIT);
    /* HELLO, AUTH_OK, then the 8 BUFFER frames (and the watermark between them) at once. */
    assert_int_equal(sa.writes, 3);
    atomic_store(&c.hold[0], 0);
    pthread_join(p.th, NULL);
    pthread_join(c.th, NULL);
    assert_int_equal(p.rc, 0);
    check_delivered(&c, N);
    sl_net_stats(a, &sa);
    assert_true(sa.writes < sa.buffers_out + 3);
    assert_int_equal(credit_when_settled(&p.ch[0], CREDIT), CREDIT);
    assert_int_equal(atomic_load(&c.ch[0].credit), CREDIT);
    assert_true(c.max_in_use <= CREDIT);
    producer_destroy(&p);
    consumer_destroy(&c);
    sl_net_destroy(a);
    sl_net_destroy(b);
}

/* The same transfers with TLS on both services (certificates made with the openssl command):
 * exact delivery, one connection, and backpressure isolation still hold. */
static void test_transfer_tls(void **state) {
    static tls_certs_t certs;
    assert_int_equal(tls_certs_make(&certs), 0);
    g_tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    assert_non_null(g_tls);
    test_transfer(state);
    sl_tls_ctx_destroy(g_tls);
    g_tls = NULL;
    tls_certs_remove(&certs);
}

/* Channel 0's consumer stops releasing: its producer blocks on credit while channels 1 and 2,
 * on the same connection, deliver everything; then channel 0 resumes and completes. */
static void test_backpressure_isolation(void **state) {
    enum { N = 20000, CREDIT = 2 };
    sl_net_t *a = start_tm("tm-a"), *b = start_tm("tm-b");
    static producer_t p[3];
    static consumer_t c;
    for (uint32_t i = 0; i < 3; i++)
        producer_init(&p[i], a, i, 1, CREDIT, N);
    consumer_init(&c, b, a, 0, 3, CREDIT);
    /* The selector maps field 0 to the producer's only channel; the consumer checks field 0
     * against its channel index, which is the global index here. */
    atomic_store(&c.hold[0], 1);
    assert_int_equal(pthread_create(&c.th, NULL, consume, &c), 0);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&p[i].th, NULL, produce, &p[i]), 0);
    pthread_join(p[1].th, NULL);
    pthread_join(p[2].th, NULL);
    int64_t t0 = sl_monotonic_ms();
    while ((atomic_load(&c.received[1]) < N || atomic_load(&c.received[2]) < N) && sl_monotonic_ms() - t0 < 30000)
        sleep_ms(5);
    /* Channels 1 and 2 are complete while channel 0 holds exactly its credit. */
    assert_int_equal(atomic_load(&c.received[1]), N);
    assert_int_equal(atomic_load(&c.received[2]), N);
    while (atomic_load(&c.nheld[0]) < CREDIT && sl_monotonic_ms() - t0 < 30000)
        sleep_ms(5);
    assert_int_equal(atomic_load(&c.nheld[0]), CREDIT);
    long stuck = atomic_load(&p[0].written);
    assert_true(stuck < N);
    sleep_ms(100);
    assert_int_equal(atomic_load(&c.nheld[0]), CREDIT);
    assert_int_equal(atomic_load(&p[0].written), stuck);
    sl_net_stats_t sb;
    sl_net_stats(b, &sb);
    assert_int_equal(sb.open_connections, 1);
    /* The consumer resumes: channel 0 completes. */
    atomic_store(&c.hold[0], 0);
    pthread_join(p[0].th, NULL);
    pthread_join(c.th, NULL);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(p[i].rc, 0);
    check_delivered(&c, N);
    for (uint32_t i = 0; i < 3; i++)
        producer_destroy(&p[i]);
    consumer_destroy(&c);
    sl_net_destroy(a);
    sl_net_destroy(b);
}

/* A slow consumer behind a fast producer: the receive side never holds more buffers than its
 * pools have, the channel credit never goes below zero (nothing is sent without credit) and
 * the pools never grow (the budget's reservation is unchanged). */
static void test_bounded_memory(void **state) {
    enum { K = 2, N = 3000, CREDIT = 3 };
    sl_net_t *a = start_tm("tm-a"), *b = start_tm("tm-b");
    static producer_t p;
    static consumer_t c;
    producer_init(&p, a, 0, K, CREDIT, N);
    consumer_init(&c, b, a, 0, K, CREDIT);
    uint64_t reserved = c.nm.reserved_segments;
    c.slow_ms = 1;
    assert_int_equal(pthread_create(&c.th, NULL, consume, &c), 0);
    assert_int_equal(pthread_create(&p.th, NULL, produce, &p), 0);
    pthread_join(p.th, NULL);
    pthread_join(c.th, NULL);
    check_delivered(&c, N);
    assert_true(c.max_in_use <= CREDIT);
    assert_true(c.max_in_use >= 1);
    assert_true(c.min_credit >= 0);
    assert_int_equal(c.nm.reserved_segments, reserved);
    assert_int_equal(reserved, (uint64_t)K * CREDIT);
    producer_destroy(&p);
    consumer_destroy(&c);
    sl_net_destroy(a);
    sl_net_destroy(b);
}

/* Both TaskManagers import from each other: the second direction reuses the connection. */
static void test_both_directions_one_connection(void **state) {
    enum { N = 2000 };
    sl_net_t *a = start_tm("tm-a"), *b = start_tm("tm-b");
    static producer_t pa, pb;
    static consumer_t ca, cb;
    producer_init(&pa, a, 0, 1, 2, N);
    consumer_init(&cb, b, a, 0, 1, 2); /* b dials a */
    assert_int_equal(pthread_create(&cb.th, NULL, consume, &cb), 0);
    assert_int_equal(pthread_create(&pa.th, NULL, produce, &pa), 0);
    pthread_join(pa.th, NULL);
    pthread_join(cb.th, NULL);
    check_delivered(&cb, N);
    /* Now a imports from b: it finds b's connection and sends its request on it. */
    producer_init(&pb, b, 4, 1, 2, N);
    consumer_init(&ca, a, b, 4, 1, 2);
    /* Channel ids differ (1004); the consumer checks field 0 against its local index 0. */
    pb.first = 4;
    assert_int_equal(pthread_create(&pb.th, NULL, produce, &pb), 0);
    /* Drain a's channel by hand: records carry field 0 = 4. */
    int64_t next = 0;
    int ended = 0;
    sl_record_reader_t rd = {0};
    while (!ended) {
        void *ready;
        if (sl_mailbox_wait_ready(&ca.mb, sl_monotonic_ms() + 5000, &ready) != 1)
            fail_msg("no input on the reverse direction");
        sl_channel_entry_t e;
        while (sl_channel_poll(&ca.ch[0], &e) == 1) {
            if (e.kind == SL_CH_END)
                ended = 1;
            if (e.kind != SL_CH_BUFFER)
                continue;
            uint32_t pos = 0;
            sl_row_t r;
            int64_t ts;
            while (sl_record_reader_next(&rd, e.buf, &pos, &r, &ts) == 1)
                assert_int_equal(sl_row_i64(&r, 1), next++);
            sl_channel_release(&ca.ch[0], e.buf);
        }
    }
    sl_record_reader_destroy(&rd);
    pthread_join(pb.th, NULL);
    assert_int_equal(pb.rc, 0);
    assert_int_equal(next, N);
    sl_net_stats_t sa, sb;
    sl_net_stats(a, &sa);
    sl_net_stats(b, &sb);
    assert_int_equal(sa.dialed + sb.dialed, 1);
    assert_int_equal(sa.open_connections, 1);
    producer_destroy(&pa);
    producer_destroy(&pb);
    consumer_destroy(&ca);
    consumer_destroy(&cb);
    sl_net_destroy(a);
    sl_net_destroy(b);
}

static void test_backpressure_isolation_tls(void **state) {
    static tls_certs_t certs;
    assert_int_equal(tls_certs_make(&certs), 0);
    g_tls = tls_ctx(&certs, TC_NODE, TC_NODE_KEY, TC_CA);
    assert_non_null(g_tls);
    test_backpressure_isolation(state);
    test_both_directions_one_connection(state);
    sl_tls_ctx_destroy(g_tls);
    g_tls = NULL;
    tls_certs_remove(&certs);
}

int main(void) {
    sl_log_set_level(SL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transfer),
        cmocka_unit_test(test_backpressure_isolation),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_both_directions_one_connection),
        cmocka_unit_test(test_transfer_large_segments),
        cmocka_unit_test(test_batched_writes),
        cmocka_unit_test(test_transfer_tls),
        cmocka_unit_test(test_backpressure_isolation_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
