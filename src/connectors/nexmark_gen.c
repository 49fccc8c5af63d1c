/* The Nexmark generator (see nexmark_gen.h). Field by field it follows the reference
 * generator's PersonGenerator, AuctionGenerator, BidGenerator, PriceGenerator and
 * StringsGenerator, with java.util.Random reimplemented so seed 0 draws the same numbers. */
#include "connectors/nexmark_gen.h"

#include <sluice/error.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FIRST_PERSON_ID 1000
#define FIRST_AUCTION_ID 1000
#define FIRST_CATEGORY_ID 10
#define NUM_CATEGORIES 5
#define PERSON_ID_LEAD 10
#define AUCTION_ID_LEAD 10
#define HOT_SELLER_RATIO 100
#define HOT_AUCTION_RATIO 100
#define HOT_BIDDER_RATIO 100
#define HOT_CHANNELS_RATIO 2
#define CHANNELS_NUMBER 10000
#define MIN_STRING_LENGTH 3

static const char *const us_states[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
static const char *const us_cities[] = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
                                        "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"};
static const char *const first_names[] = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky",
                                          "Kate", "Julie", "Sarah", "Deiter", "Walter"};
static const char *const last_names[] = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                         "Walton", "Smith", "Jones", "Noris"};
static const char *const hot_channels[] = {"Google", "Facebook", "Baidu", "Apple"};
#define COUNT(a) ((int32_t)(sizeof(a) / sizeof((a)[0])))

/* ---- java.util.Random ---- */
typedef struct {
    uint64_t seed;
} jrand_t;

#define JR_MULT 0x5DEECE66DULL
#define JR_MASK ((1ULL << 48) - 1)

static void jr_seed(jrand_t *r, uint64_t s) { r->seed = (s ^ JR_MULT) & JR_MASK; }

static int32_t jr_next(jrand_t *r, int bits) {
    r->seed = (r->seed * JR_MULT + 0xBULL) & JR_MASK;
    return (int32_t)(uint32_t)(r->seed >> (48 - bits));
}

static int32_t jr_int(jrand_t *r, int32_t bound) {
    int32_t x = jr_next(r, 31);
    int32_t m = bound - 1;
    if ((bound & m) == 0)
        return (int32_t)(((int64_t)bound * x) >> 31);
    /* Java rejects draws where u - r + m overflows an int. */
    for (int32_t u = x; (int64_t)u - (x = u % bound) + m > INT32_MAX; u = jr_next(r, 31))
        ;
    return x;
}

static int64_t jr_long(jrand_t *r) {
    return (int64_t)(((uint64_t)(int64_t)jr_next(r, 32) << 32) + (uint64_t)(int64_t)jr_next(r, 32));
}

static double jr_double(jrand_t *r) {
    return (double)(((int64_t)jr_next(r, 26) << 27) + jr_next(r, 27)) * 0x1.0p-53;
}

static int64_t next_long(jrand_t *r, int64_t n) {
    if (n < INT32_MAX)
        return jr_int(r, (int32_t)n);
    int64_t v = jr_long(r) % n;
    return v < 0 ? -v : v;
}

/* ---- strings into the scratch ---- */
static sl_nexmark_str_t put(sl_nexmark_gen_t *g, const char *s, uint32_t len) {
    if (len > SL_NEXMARK_SCRATCH - g->used)
        len = SL_NEXMARK_SCRATCH - g->used;
    char *d = g->scratch + g->used;
    memcpy(d, s, len);
    g->used += len;
    return (sl_nexmark_str_t){d, len};
}

static sl_nexmark_str_t fixed(const char *s) { return (sl_nexmark_str_t){s, (uint32_t)strlen(s)}; }

/* StringsGenerator.nextString: 3..max-1 letters, `special` with probability 1/13, trimmed. */
static sl_nexmark_str_t next_string(sl_nexmark_gen_t *g, jrand_t *r, int32_t max_len, char special) {
    char buf[256];
    int32_t len = MIN_STRING_LENGTH + jr_int(r, max_len - MIN_STRING_LENGTH);
    int32_t n = 0;
    while (len-- > 0)
        buf[n++] = jr_int(r, 13) == 0 ? special : (char)('a' + jr_int(r, 26));
    int32_t b = 0, e = n;
    while (b < e && buf[b] == ' ')
        b++;
    while (e > b && buf[e - 1] == ' ')
        e--;
    return put(g, buf + b, (uint32_t)(e - b));
}

static sl_nexmark_str_t next_exact_string(sl_nexmark_gen_t *g, jrand_t *r, int32_t len) {
    if (len > (int32_t)(SL_NEXMARK_SCRATCH - g->used))
        len = (int32_t)(SL_NEXMARK_SCRATCH - g->used);
    char *d = g->scratch + g->used;
    for (int32_t i = 0; i < len; i++)
        d[i] = (char)('a' + jr_int(r, 26));
    g->used += (uint32_t)len;
    return (sl_nexmark_str_t){d, (uint32_t)len};
}

static sl_nexmark_str_t next_extra(sl_nexmark_gen_t *g, jrand_t *r, int32_t current, int32_t desired_avg) {
    if (current > desired_avg)
        return (sl_nexmark_str_t){g->scratch, 0};
    desired_avg -= current;
    int32_t delta = (int32_t)llround(desired_avg * 0.2);
    int32_t min_size = desired_avg - delta;
    int32_t size = min_size + (delta == 0 ? 0 : jr_int(r, 2 * delta));
    return next_exact_string(g, r, size);
}

static int64_t next_price(jrand_t *r) { return (int64_t)floor(pow(10.0, jr_double(r) * 6.0) * 100.0 + 0.5); }

/* ---- ids ---- */
static int64_t last_base0_person_id(const sl_nexmark_gen_t *g, int64_t event_id) {
    int64_t epoch = event_id / g->total_proportion, offset = event_id % g->total_proportion;
    if (offset >= g->cfg.person_proportion)
        offset = g->cfg.person_proportion - 1;
    return epoch * g->cfg.person_proportion + offset;
}

static int64_t last_base0_auction_id(const sl_nexmark_gen_t *g, int64_t event_id) {
    int64_t epoch = event_id / g->total_proportion, offset = event_id % g->total_proportion;
    if (offset < g->cfg.person_proportion) {
        epoch--;
        offset = g->cfg.auction_proportion - 1;
    } else if (offset >= g->cfg.person_proportion + g->cfg.auction_proportion) {
        offset = g->cfg.auction_proportion - 1;
    } else {
        offset -= g->cfg.person_proportion;
    }
    return epoch * g->cfg.auction_proportion + offset;
}

static int64_t next_base0_person_id(const sl_nexmark_gen_t *g, int64_t event_id, jrand_t *r) {
    int64_t num_people = last_base0_person_id(g, event_id) + 1;
    int64_t active = num_people < g->cfg.num_active_people ? num_people : g->cfg.num_active_people;
    return num_people - active + next_long(r, active + PERSON_ID_LEAD);
}

static int64_t next_base0_auction_id(const sl_nexmark_gen_t *g, int64_t event_id, jrand_t *r) {
    int64_t max = last_base0_auction_id(g, event_id);
    int64_t min = max - g->cfg.num_in_flight_auctions > 0 ? max - g->cfg.num_in_flight_auctions : 0;
    return min + next_long(r, max - min + 1 + AUCTION_ID_LEAD);
}

static int64_t timestamp_of(const sl_nexmark_gen_t *g, uint64_t n) {
    return g->cfg.base_time_ms + (int64_t)((double)n * g->inter_event_delay_us / 1000.0);
}

/* ---- events ---- */
static void gen_person(sl_nexmark_gen_t *g, int64_t id, jrand_t *r, int64_t ts, sl_nexmark_event_t *ev) {
    char buf[64];
    ev->kind = SL_NEXMARK_PERSON;
    ev->person.id = last_base0_person_id(g, id) + FIRST_PERSON_ID;
    const char *fn = first_names[jr_int(r, COUNT(first_names))];
    const char *ln = last_names[jr_int(r, COUNT(last_names))];
    int n = snprintf(buf, sizeof buf, "%s %s", fn, ln);
    ev->person.name = put(g, buf, (uint32_t)n);
    sl_nexmark_str_t user = next_string(g, r, 7, ' ');
    put(g, "@", 1);
    next_string(g, r, 5, ' ');
    put(g, ".com", 4);
    ev->person.email = (sl_nexmark_str_t){user.p, (uint32_t)(g->scratch + g->used - user.p)};
    n = 0;
    for (int i = 0; i < 4; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%04d", i ? " " : "", (int)jr_int(r, 10000));
    ev->person.credit_card = put(g, buf, (uint32_t)n);
    ev->person.city = fixed(us_cities[jr_int(r, COUNT(us_cities))]);
    ev->person.state = fixed(us_states[jr_int(r, COUNT(us_states))]);
    ev->person.date_time = ts;
    int32_t size = (int32_t)(8 + ev->person.name.len + ev->person.email.len + ev->person.credit_card.len +
                             ev->person.city.len + ev->person.state.len);
    ev->person.extra = next_extra(g, r, size, (int32_t)g->cfg.avg_person_bytes);
}

static void gen_auction(sl_nexmark_gen_t *g, uint64_t n, int64_t id, jrand_t *r, int64_t ts, sl_nexmark_event_t *ev) {
    ev->kind = SL_NEXMARK_AUCTION;
    ev->auction.id = last_base0_auction_id(g, id) + FIRST_AUCTION_ID;
    int64_t seller;
    if (jr_int(r, (int32_t)g->cfg.hot_sellers_ratio) > 0)
        seller = (last_base0_person_id(g, id) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO;
    else
        seller = next_base0_person_id(g, id, r);
    ev->auction.seller = seller + FIRST_PERSON_ID;
    ev->auction.category = FIRST_CATEGORY_ID + jr_int(r, NUM_CATEGORIES);
    ev->auction.initial_bid = next_price(r);
    /* nextAuctionLengthMs: up to twice the time until numInFlightAuctions more auctions. */
    uint64_t events_for_auctions =
        (uint64_t)g->cfg.num_in_flight_auctions * g->total_proportion / g->cfg.auction_proportion;
    int64_t horizon = timestamp_of(g, n + events_for_auctions) - ts;
    ev->auction.expires = ts + 1 + next_long(r, horizon * 2 > 1 ? horizon * 2 : 1);
    ev->auction.item_name = next_string(g, r, 20, ' ');
    ev->auction.description = next_string(g, r, 100, ' ');
    ev->auction.reserve = ev->auction.initial_bid + next_price(r);
    ev->auction.date_time = ts;
    int32_t size = (int32_t)(8 + ev->auction.item_name.len + ev->auction.description.len + 8 + 8 + 8 + 8 + 8);
    ev->auction.extra = next_extra(g, r, size, (int32_t)g->cfg.avg_auction_bytes);
}

/* The reference caches a random base URL per channel; here the URL is drawn from a Random
 * seeded by the channel number, so it is the same on every run and every split. */
static sl_nexmark_str_t channel_url(sl_nexmark_gen_t *g, int64_t channel, bool hot) {
    jrand_t r;
    jr_seed(&r, (uint64_t)channel + (hot ? 0x4e45584dULL : 0));
    sl_nexmark_str_t s = put(g, "https://www.nexmark.com/", 24);
    for (int i = 0; i < 3; i++) {
        next_string(g, &r, 5, '_');
        put(g, i < 2 ? "/" : "/item.htm?query=1", i < 2 ? 1 : 17);
    }
    if (!hot && jr_int(&r, 10) > 0) {
        char buf[48];
        uint32_t v = (uint32_t)channel, rev = 0;
        for (int i = 0; i < 32; i++, v >>= 1)
            rev = (rev << 1) | (v & 1);
        int32_t sv = (int32_t)rev;
        int n = snprintf(buf, sizeof buf, "&channel_id=%lld", (long long)(sv < 0 ? -(int64_t)sv : sv));
        put(g, buf, (uint32_t)n);
    }
    s.len = (uint32_t)(g->scratch + g->used - s.p);
    return s;
}

static void gen_bid(sl_nexmark_gen_t *g, int64_t id, jrand_t *r, int64_t ts, sl_nexmark_event_t *ev) {
    ev->kind = SL_NEXMARK_BID;
    int64_t auction, bidder;
    if (jr_int(r, (int32_t)g->cfg.hot_auction_ratio) > 0)
        auction = (last_base0_auction_id(g, id) / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO;
    else
        auction = next_base0_auction_id(g, id, r);
    if (jr_int(r, (int32_t)g->cfg.hot_bidders_ratio) > 0)
        bidder = (last_base0_person_id(g, id) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1;
    else
        bidder = next_base0_person_id(g, id, r);
    ev->bid.auction = auction + FIRST_AUCTION_ID;
    ev->bid.bidder = bidder + FIRST_PERSON_ID;
    ev->bid.price = next_price(r);
    if (jr_int(r, HOT_CHANNELS_RATIO) > 0) {
        int32_t i = jr_int(r, COUNT(hot_channels));
        ev->bid.channel = fixed(hot_channels[i]);
        ev->bid.url = channel_url(g, i, true);
    } else {
        int32_t c = jr_int(r, CHANNELS_NUMBER);
        char buf[32];
        int n = snprintf(buf, sizeof buf, "channel-%d", (int)c);
        ev->bid.channel = put(g, buf, (uint32_t)n);
        ev->bid.url = channel_url(g, c, false);
    }
    ev->bid.date_time = ts;
    ev->bid.extra = next_extra(g, r, 32, (int32_t)g->cfg.avg_bid_bytes);
}

static sl_nexmark_kind_t kind_of(const sl_nexmark_gen_t *g, uint32_t offset) {
    if (offset < g->cfg.person_proportion)
        return SL_NEXMARK_PERSON;
    if (offset < g->cfg.person_proportion + g->cfg.auction_proportion)
        return SL_NEXMARK_AUCTION;
    return SL_NEXMARK_BID;
}

void sl_nexmark_gen_event(sl_nexmark_gen_t *g, uint64_t n, sl_nexmark_event_t *ev) {
    int64_t id = (int64_t)n; /* firstEventId is 0 */
    jrand_t r;
    jr_seed(&r, g->cfg.seed ? (uint64_t)id ^ (g->cfg.seed * 0x9E3779B97F4A7C15ULL) : (uint64_t)id);
    int64_t ts = timestamp_of(g, n);
    g->used = 0;
    ev->number = n;
    switch (kind_of(g, (uint32_t)(n % g->total_proportion))) {
    case SL_NEXMARK_PERSON:
        gen_person(g, id, &r, ts, ev);
        break;
    case SL_NEXMARK_AUCTION:
        gen_auction(g, n, id, &r, ts, ev);
        break;
    default:
        gen_bid(g, id, &r, ts, ev);
        break;
    }
}

void sl_nexmark_config_default(sl_nexmark_config_t *c) {
    *c = (sl_nexmark_config_t){
        .first_event_rate = 10000,
        .base_time_ms = 1436918400000LL,
        .person_proportion = 1, .auction_proportion = 3, .bid_proportion = 46,
        .num_active_people = 1000, .num_in_flight_auctions = 100,
        .hot_auction_ratio = 2, .hot_sellers_ratio = 4, .hot_bidders_ratio = 4,
        .avg_person_bytes = 200, .avg_auction_bytes = 500, .avg_bid_bytes = 100,
    };
}

int sl_nexmark_gen_init(sl_nexmark_gen_t *g, const sl_nexmark_config_t *c, uint32_t split, uint32_t nsplits) {
    if (nsplits == 0 || split >= nsplits || c->first_event_rate == 0 || c->person_proportion == 0 ||
        c->auction_proportion == 0 || c->bid_proportion == 0 || c->hot_auction_ratio == 0 ||
        c->hot_sellers_ratio == 0 || c->hot_bidders_ratio == 0)
        return SL_EINVAL;
    memset(g, 0, sizeof *g);
    g->cfg = *c;
    g->split = split;
    g->nsplits = nsplits;
    g->total_proportion = c->person_proportion + c->auction_proportion + c->bid_proportion;
    g->kinds = 7;
    g->block = split;
    g->inter_event_delay_us = 1000000.0 / (double)c->first_event_rate;
    return 0;
}

void sl_nexmark_gen_only(sl_nexmark_gen_t *g, uint32_t mask) { g->kinds = mask; }

uint64_t sl_nexmark_gen_position(const sl_nexmark_gen_t *g) {
    if (g->offset == g->total_proportion) /* a finished block: the next one of this split */
        return (g->block + g->nsplits) * g->total_proportion;
    return g->block * g->total_proportion + g->offset;
}

int sl_nexmark_gen_next(sl_nexmark_gen_t *g, sl_nexmark_event_t *ev) {
    for (;;) {
        if (g->offset == g->total_proportion) {
            g->block += g->nsplits;
            g->offset = 0;
        }
        uint64_t n = g->block * g->total_proportion + g->offset;
        if (g->cfg.max_events && n >= g->cfg.max_events)
            return 0;
        sl_nexmark_kind_t k = kind_of(g, g->offset);
        if (!(g->kinds & (1u << k))) {
            /* Skip the run of events of this kind in one step. */
            g->offset = k == SL_NEXMARK_PERSON ? g->cfg.person_proportion
                        : k == SL_NEXMARK_AUCTION ? g->cfg.person_proportion + g->cfg.auction_proportion
                                                  : g->total_proportion;
            continue;
        }
        g->offset++;
        sl_nexmark_gen_event(g, n, ev);
        return 1;
    }
}

void sl_nexmark_gen_seek(sl_nexmark_gen_t *g, uint64_t position) {
    g->block = position / g->total_proportion;
    g->offset = (uint32_t)(position % g->total_proportion);
}
