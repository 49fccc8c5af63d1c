/* The user functions of the Nexmark queries. They are written exactly as a job author writes
 * functions (<sluice/function.h>) and found by symbol like any job's, which keeps the
 * built-in queries honest about the cost of the public API.
 *
 * Field indexes follow the Nexmark schemas (see nexmark_queries.c). */
#include <sluice/error.h>
#include <sluice/function.h>

#include <string.h>

#define BID_AUCTION 0
#define BID_BIDDER 1
#define BID_PRICE 2
#define BID_DATETIME 5
#define BID_EXTRA 6
#define PERSON_ID 0
#define PERSON_NAME 1
#define PERSON_CITY 4
#define PERSON_STATE 5
#define PERSON_DATETIME 6
#define AUCTION_ID 0
#define AUCTION_DATETIME 5
#define AUCTION_EXPIRES 6
#define AUCTION_SELLER 7
#define AUCTION_CATEGORY 8

#define WINDOW_MS 10000

/* Exported symbols need external linkage; declarations keep -Wmissing-prototypes quiet. */
int sl_nexmark_q1_map(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out);
int sl_nexmark_q2_filter(sl_fn_ctx_t *ctx, const sl_row_t *in);
int sl_nexmark_q3_person_filter(sl_fn_ctx_t *ctx, const sl_row_t *in);
int sl_nexmark_q3_auction_filter(sl_fn_ctx_t *ctx, const sl_row_t *in);
int sl_nexmark_q3_join(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int sl_nexmark_q4_max(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int sl_nexmark_q4_avg(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int sl_nexmark_latest(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int sl_nexmark_latest_timer(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out);
int sl_nexmark_q5_hot(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int sl_nexmark_q5_timer(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out);
int sl_nexmark_q7_assign(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_collector_t *out);
int sl_nexmark_q7_max(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int sl_nexmark_q7_timer(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out);
int sl_nexmark_q8_join(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out);
int sl_nexmark_q13_key(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out);

static int64_t window_start(int64_t ts) {
    int64_t r = ts % WINDOW_MS;
    return ts - (r < 0 ? r + WINDOW_MS : r);
}

static int get_i64(sl_fn_ctx_t *ctx, const char *state, int64_t *v) {
    const void *p;
    uint32_t len;
    int rc = sl_fn_value_get(ctx, state, &p, &len);
    if (rc == 1 && len == 8)
        memcpy(v, p, 8);
    return rc;
}

/* ---- q1: currency conversion ---- */
int sl_nexmark_q1_map(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out) {
    uint32_t len;
    const char *extra = sl_row_str(in, BID_EXTRA, &len);
    sl_row_set_i64(out, 0, sl_row_i64(in, BID_AUCTION));
    sl_row_set_i64(out, 1, sl_row_i64(in, BID_BIDDER));
    sl_row_set_f64(out, 2, 0.908 * (double)sl_row_i64(in, BID_PRICE));
    sl_row_set_ts(out, 3, sl_row_ts(in, BID_DATETIME));
    sl_row_set_str(out, 4, extra, len);
    return 0;
}

/* ---- q2: selection ---- */
int sl_nexmark_q2_filter(sl_fn_ctx_t *ctx, const sl_row_t *in) { return sl_row_i64(in, BID_AUCTION) % 123 == 0; }

/* ---- q3: local item suggestion (a regular inner join on person id = auction seller) ---- */
int sl_nexmark_q3_person_filter(sl_fn_ctx_t *ctx, const sl_row_t *in) {
    uint32_t len;
    const char *s = sl_row_str(in, PERSON_STATE, &len);
    return len == 2 && ((s[0] == 'O' && s[1] == 'R') || (s[0] == 'I' && s[1] == 'D') || (s[0] == 'C' && s[1] == 'A'));
}

int sl_nexmark_q3_auction_filter(sl_fn_ctx_t *ctx, const sl_row_t *in) {
    return sl_row_i64(in, AUCTION_CATEGORY) == 10;
}

static int q3_emit(sl_collector_t *out, const sl_row_t *person, int64_t auction_id) {
    sl_row_builder_t *b = sl_collector_row(out);
    uint32_t len;
    const char *s = sl_row_str(person, PERSON_NAME, &len);
    sl_row_set_str(b, 0, s, len);
    s = sl_row_str(person, PERSON_CITY, &len);
    sl_row_set_str(b, 1, s, len);
    s = sl_row_str(person, PERSON_STATE, &len);
    sl_row_set_str(b, 2, s, len);
    sl_row_set_i64(b, 3, auction_id);
    return sl_collector_emit(out);
}

typedef struct {
    const sl_row_t *person;
    sl_collector_t *out;
} q3_pending_t;

static int q3_flush_pending(void *arg, const void *val, uint32_t len) {
    q3_pending_t *p = arg;
    int64_t id;
    memcpy(&id, val, 8);
    return q3_emit(p->out, p->person, id);
}

int sl_nexmark_q3_join(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    if (input == 0) {
        /* Person ids are unique: keep the person, answer the auctions that came first. */
        int rc = sl_fn_value_put(ctx, "person", in->data, in->len);
        if (rc)
            return rc;
        q3_pending_t p = {in, out};
        rc = sl_fn_list_visit(ctx, "pending", q3_flush_pending, &p);
        return rc ? rc : sl_fn_list_clear(ctx, "pending");
    }
    const void *pv;
    uint32_t plen;
    int rc = sl_fn_value_get(ctx, "person", &pv, &plen);
    if (rc < 0)
        return rc;
    int64_t id = sl_row_i64(in, AUCTION_ID);
    if (rc == 1) {
        sl_row_t person = {pv, plen};
        return q3_emit(out, &person, id);
    }
    return sl_fn_list_add(ctx, "pending", &id, 8);
}

/* ---- q4: average closing price per category ----
 * Stage 1, keyed by auction id: the highest bid within [auction.dateTime, auction.expires],
 * emitted as an update (category, previous max or NULL, new max). Stage 2, keyed by category:
 * the running average over auctions, updated with each change. */
typedef struct {
    int64_t date_time;
    int64_t expires;
    int64_t category;
} q4_auction_t;

static int q4_emit(sl_collector_t *out, int64_t category, int have_old, int64_t old, int64_t now) {
    sl_row_builder_t *b = sl_collector_row(out);
    sl_row_set_i64(b, 0, category);
    if (have_old)
        sl_row_set_i64(b, 1, old);
    else
        sl_row_set_null(b, 1);
    sl_row_set_i64(b, 2, now);
    return sl_collector_emit(out);
}

static int q4_offer(sl_fn_ctx_t *ctx, const q4_auction_t *a, int64_t bid_time, int64_t price, sl_collector_t *out) {
    if (bid_time < a->date_time || bid_time > a->expires)
        return 0;
    int64_t max = 0;
    int have = get_i64(ctx, "max", &max);
    if (have < 0)
        return have;
    if (have == 1 && price <= max)
        return 0;
    int rc = sl_fn_value_put(ctx, "max", &price, 8);
    return rc ? rc : q4_emit(out, a->category, have == 1, max, price);
}

typedef struct {
    sl_fn_ctx_t *ctx;
    const q4_auction_t *a;
    sl_collector_t *out;
} q4_pending_t;

static int q4_replay(void *arg, const void *val, uint32_t len) {
    q4_pending_t *p = arg;
    int64_t bid[2];
    memcpy(bid, val, 16);
    return q4_offer(p->ctx, p->a, bid[0], bid[1], p->out);
}

int sl_nexmark_q4_max(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    if (input == 0) {
        q4_auction_t a = {sl_row_ts(in, AUCTION_DATETIME), sl_row_ts(in, AUCTION_EXPIRES),
                          sl_row_i64(in, AUCTION_CATEGORY)};
        int rc = sl_fn_value_put(ctx, "auction", &a, sizeof a);
        if (rc)
            return rc;
        q4_pending_t p = {ctx, &a, out};
        rc = sl_fn_list_visit(ctx, "pending", q4_replay, &p);
        return rc ? rc : sl_fn_list_clear(ctx, "pending");
    }
    const void *av;
    uint32_t alen;
    int rc = sl_fn_value_get(ctx, "auction", &av, &alen);
    if (rc < 0)
        return rc;
    int64_t bid[2] = {sl_row_ts(in, BID_DATETIME), sl_row_i64(in, BID_PRICE)};
    if (rc == 0) /* the auction has not arrived yet (another source split is behind) */
        return sl_fn_list_add(ctx, "pending", bid, sizeof bid);
    q4_auction_t a;
    memcpy(&a, av, sizeof a);
    return q4_offer(ctx, &a, bid[0], bid[1], out);
}

int sl_nexmark_q4_avg(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    int64_t acc[2] = {0, 0}; /* sum, count */
    const void *p;
    uint32_t len;
    int rc = sl_fn_value_get(ctx, "acc", &p, &len);
    if (rc < 0)
        return rc;
    if (rc == 1)
        memcpy(acc, p, sizeof acc);
    if (sl_row_is_null(in, 1)) {
        acc[0] += sl_row_i64(in, 2);
        acc[1]++;
    } else {
        acc[0] += sl_row_i64(in, 2) - sl_row_i64(in, 1);
    }
    if ((rc = sl_fn_value_put(ctx, "acc", acc, sizeof acc)) != 0)
        return rc;
    sl_row_builder_t *b = sl_collector_row(out);
    sl_row_set_i64(b, 0, sl_row_i64(in, 0));
    sl_row_set_f64(b, 1, (double)acc[0] / (double)acc[1]);
    return sl_collector_emit(out);
}

/* Materializes an updating result: keeps the latest row per key and emits it when the input
 * ends (the final watermark fires the timer). Used for the final CSV of updating queries. */
int sl_nexmark_latest(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    int rc = sl_fn_value_put(ctx, "latest", in->data, in->len);
    return rc ? rc : sl_fn_timer_event(ctx, INT64_MAX);
}

int sl_nexmark_latest_timer(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out) {
    const void *p;
    uint32_t len;
    int rc = sl_fn_value_get(ctx, "latest", &p, &len);
    if (rc <= 0)
        return rc;
    sl_row_t row = {p, len};
    rc = sl_collector_emit_row(out, &row);
    return rc ? rc : sl_fn_value_clear(ctx, "latest");
}

/* ---- q5: hot items ----
 * Input: per (auction, sliding window) counts keyed by window_end; the auctions whose count
 * equals the window's maximum are emitted when the watermark passes the window. One value per
 * window holds [max count, auctions with that count...], so a row costs one read and at most
 * one write, and only a window's first row registers its timer. */
#define Q5_MAX_HOT 4096

int sl_nexmark_q5_hot(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    int64_t auction = sl_row_i64(in, 0), num = sl_row_i64(in, 3);
    const void *p;
    uint32_t len;
    int rc = sl_fn_value_get(ctx, "hot", &p, &len);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        int64_t v[2] = {num, auction};
        rc = sl_fn_value_put(ctx, "hot", v, sizeof v);
        return rc ? rc : sl_fn_timer_event(ctx, sl_row_ts(in, 2) - 1);
    }
    int64_t max;
    memcpy(&max, p, 8);
    if (num < max)
        return 0;
    if (num > max) {
        int64_t v[2] = {num, auction};
        return sl_fn_value_put(ctx, "hot", v, sizeof v);
    }
    if (len >= 8 * (Q5_MAX_HOT + 1))
        return sl_fn_fail(ctx, SL_ERANGE, "more than %d auctions tie for a window's maximum", Q5_MAX_HOT);
    int64_t v[Q5_MAX_HOT + 1];
    memcpy(v, p, len);
    v[len / 8] = auction;
    return sl_fn_value_put(ctx, "hot", v, len + 8);
}

int sl_nexmark_q5_timer(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out) {
    const void *p;
    uint32_t len;
    int rc = sl_fn_value_get(ctx, "hot", &p, &len);
    if (rc <= 0)
        return rc;
    int64_t max;
    memcpy(&max, p, 8);
    for (uint32_t off = 8; off + 8 <= len; off += 8) {
        int64_t auction;
        memcpy(&auction, (const uint8_t *)p + off, 8);
        sl_row_builder_t *b = sl_collector_row(out);
        sl_row_set_i64(b, 0, auction);
        sl_row_set_i64(b, 1, max);
        if ((rc = sl_collector_emit(out)) != 0)
            return rc;
    }
    return sl_fn_value_clear(ctx, "hot");
}

/* ---- q7: highest bid ----
 * The SQL joins bids with dateTime in [window_end - 10 s, window_end] (both ends included)
 * to the window's maximum price. A bid at exactly a window start therefore also belongs to
 * the previous window's candidates: the assigner sends it there as a "boundary" row that
 * can match but does not count towards that window's maximum. */
int sl_nexmark_q7_assign(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_collector_t *out) {
    int64_t dt = sl_row_ts(in, BID_DATETIME);
    int64_t win = window_start(dt);
    for (int boundary = 0; boundary < 2; boundary++) {
        if (boundary && dt != win)
            break;
        sl_row_builder_t *b = sl_collector_row(out);
        uint32_t len;
        const char *extra = sl_row_str(in, BID_EXTRA, &len);
        sl_row_set_i64(b, 0, sl_row_i64(in, BID_AUCTION));
        sl_row_set_i64(b, 1, sl_row_i64(in, BID_PRICE));
        sl_row_set_i64(b, 2, sl_row_i64(in, BID_BIDDER));
        sl_row_set_ts(b, 3, dt);
        sl_row_set_str(b, 4, extra, len);
        sl_row_set_i64(b, 5, boundary ? win - WINDOW_MS : win);
        sl_row_set_bool(b, 6, boundary);
        int rc = sl_collector_emit(out);
        if (rc)
            return rc;
    }
    return 0;
}

int sl_nexmark_q7_max(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    int64_t win = sl_row_i64(in, 5);
    int rc = sl_fn_timer_event(ctx, win + WINDOW_MS - 1);
    if (rc)
        return rc;
    if (sl_row_bool(in, 6))
        return sl_fn_list_add(ctx, "edge", in->data, in->len);
    int64_t price = sl_row_i64(in, 1), max = 0;
    int have = get_i64(ctx, "max", &max);
    if (have < 0)
        return have;
    if (have == 1 && price < max)
        return 0;
    if (have == 0 || price > max) {
        if ((rc = sl_fn_list_clear(ctx, "best")) != 0 || (rc = sl_fn_value_put(ctx, "max", &price, 8)) != 0)
            return rc;
    }
    return sl_fn_list_add(ctx, "best", in->data, in->len);
}

typedef struct {
    sl_collector_t *out;
    int64_t max;
} q7_emit_t;

static int q7_emit(void *arg, const void *val, uint32_t len) {
    q7_emit_t *e = arg;
    sl_row_t r = {val, len};
    if (sl_row_i64(&r, 1) != e->max)
        return 0;
    sl_row_builder_t *b = sl_collector_row(e->out);
    uint32_t elen;
    const char *extra = sl_row_str(&r, 4, &elen);
    sl_row_set_i64(b, 0, sl_row_i64(&r, 0));
    sl_row_set_i64(b, 1, sl_row_i64(&r, 1));
    sl_row_set_i64(b, 2, sl_row_i64(&r, 2));
    sl_row_set_ts(b, 3, sl_row_ts(&r, 3));
    sl_row_set_str(b, 4, extra, elen);
    return sl_collector_emit(e->out);
}

int sl_nexmark_q7_timer(sl_fn_ctx_t *ctx, int64_t ts, sl_collector_t *out) {
    q7_emit_t e = {out, 0};
    int have = get_i64(ctx, "max", &e.max);
    int rc = have < 0 ? have : 0;
    if (have == 1) {
        rc = sl_fn_list_visit(ctx, "best", q7_emit, &e);
        if (rc == 0)
            rc = sl_fn_list_visit(ctx, "edge", q7_emit, &e);
    }
    if (rc == 0)
        rc = sl_fn_list_clear(ctx, "best");
    if (rc == 0)
        rc = sl_fn_list_clear(ctx, "edge");
    return rc ? rc : sl_fn_value_clear(ctx, "max");
}

/* ---- q8: monitor new users ----
 * Keyed by person id = auction seller: a person is reported once for the tumbling window it
 * was created in, when the same seller opened an auction in that window. */
static int q8_emit(sl_collector_t *out, const sl_row_t *person, int64_t win) {
    sl_row_builder_t *b = sl_collector_row(out);
    uint32_t len;
    const char *name = sl_row_str(person, PERSON_NAME, &len);
    sl_row_set_i64(b, 0, sl_row_i64(person, PERSON_ID));
    sl_row_set_str(b, 1, name, len);
    sl_row_set_ts(b, 2, win);
    return sl_collector_emit(out);
}

typedef struct {
    int64_t win;
    int found;
} q8_scan_t;

static int q8_find(void *arg, const void *val, uint32_t len) {
    q8_scan_t *s = arg;
    int64_t w;
    memcpy(&w, val, 8);
    if (w == s->win)
        s->found = 1;
    return s->found;
}

int sl_nexmark_q8_join(sl_fn_ctx_t *ctx, uint32_t input, const sl_row_t *in, int64_t ts, sl_collector_t *out) {
    int64_t done = 0;
    int rc;
    if (input == 0) {
        int64_t win = window_start(sl_row_ts(in, PERSON_DATETIME));
        if ((rc = sl_fn_value_put(ctx, "person", in->data, in->len)) != 0)
            return rc;
        q8_scan_t s = {win, 0};
        rc = sl_fn_list_visit(ctx, "windows", q8_find, &s);
        if (rc < 0)
            return rc;
        if ((rc = sl_fn_list_clear(ctx, "windows")) != 0)
            return rc;
        if (s.found) {
            done = 1;
            if ((rc = sl_fn_value_put(ctx, "done", &done, 8)) != 0)
                return rc;
            return q8_emit(out, in, win);
        }
        return 0;
    }
    int64_t win = window_start(sl_row_ts(in, AUCTION_DATETIME));
    const void *pv;
    uint32_t plen;
    rc = sl_fn_value_get(ctx, "person", &pv, &plen);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        /* Remember each window once: a seller opens many auctions. */
        q8_scan_t s = {win, 0};
        if ((rc = sl_fn_list_visit(ctx, "windows", q8_find, &s)) < 0)
            return rc;
        return s.found ? 0 : sl_fn_list_add(ctx, "windows", &win, 8);
    }
    sl_row_t person = {pv, plen};
    int64_t pwin = window_start(sl_row_ts(&person, PERSON_DATETIME));
    if (win != pwin || get_i64(ctx, "done", &done) == 1)
        return 0;
    done = 1;
    /* Emit before the put: the put may move the person's bytes. */
    rc = q8_emit(out, &person, pwin);
    return rc ? rc : sl_fn_value_put(ctx, "done", &done, 8);
}

/* q13: the side-input key of a bid, mod(auction, 10000), next to the fields the query keeps. */
int sl_nexmark_q13_key(sl_fn_ctx_t *ctx, const sl_row_t *in, sl_row_builder_t *out) {
    sl_row_set_i64(out, 0, sl_row_i64(in, BID_AUCTION));
    sl_row_set_i64(out, 1, sl_row_i64(in, BID_BIDDER));
    sl_row_set_i64(out, 2, sl_row_i64(in, BID_PRICE));
    sl_row_set_ts(out, 3, sl_row_ts(in, BID_DATETIME));
    sl_row_set_i64(out, 4, sl_row_i64(in, BID_AUCTION) % 10000);
    return 0;
}
