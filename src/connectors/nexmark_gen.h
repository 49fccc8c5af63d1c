/* The Nexmark event generator, after the reference generator of Apache Beam / Flink nexmark.
 *
 * Event number n (0, 1, 2, ...) fully determines event n: its kind (of every 50 events, 1
 * person, 3 auctions, 46 bids), its ids and its contents, drawn from java.util.Random seeded
 * with the event id exactly as the reference does, and its time (base time + n / rate). So
 * any subset of the sequence can be generated independently: split k of P generates the
 * blocks of 50 events b with b % P == k, which keeps each split's event time increasing,
 * keeps splits abreast of each other in event time, and yields every event exactly once. */
#ifndef SL_CONNECTORS_NEXMARK_GEN_H
#define SL_CONNECTORS_NEXMARK_GEN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sl_nexmark_config_s {
    uint64_t max_events;        /* events in the whole sequence; 0 = unbounded */
    uint64_t first_event_rate;  /* events per second of event time (default 10000) */
    int64_t base_time_ms;       /* event time of event 0 (default 2015-07-15 00:00:00 UTC) */
    uint64_t seed;              /* 0 = the reference's randomness, bit for bit */
    uint32_t person_proportion, auction_proportion, bid_proportion; /* 1, 3, 46 */
    uint32_t num_active_people;      /* 1000 */
    uint32_t num_in_flight_auctions; /* 100 */
    uint32_t hot_auction_ratio, hot_sellers_ratio, hot_bidders_ratio; /* 2, 4, 4 */
    uint32_t avg_person_bytes, avg_auction_bytes, avg_bid_bytes;      /* 200, 500, 100 */
} sl_nexmark_config_t;

typedef enum { SL_NEXMARK_PERSON = 0, SL_NEXMARK_AUCTION = 1, SL_NEXMARK_BID = 2 } sl_nexmark_kind_t;

/* A string inside the generator's scratch: valid until the next call. */
typedef struct {
    const char *p;
    uint32_t len;
} sl_nexmark_str_t;

typedef struct sl_nexmark_event_s {
    sl_nexmark_kind_t kind;
    uint64_t number; /* position in the sequence */
    union {
        struct {
            int64_t id;
            sl_nexmark_str_t name, email, credit_card, city, state;
            int64_t date_time;
            sl_nexmark_str_t extra;
        } person;
        struct {
            int64_t id;
            sl_nexmark_str_t item_name, description;
            int64_t initial_bid, reserve, date_time, expires, seller, category;
            sl_nexmark_str_t extra;
        } auction;
        struct {
            int64_t auction, bidder, price;
            sl_nexmark_str_t channel, url;
            int64_t date_time;
            sl_nexmark_str_t extra;
        } bid;
    };
} sl_nexmark_event_t;

#define SL_NEXMARK_SCRATCH 4096

typedef struct sl_nexmark_gen_s {
    sl_nexmark_config_t cfg;
    uint32_t split, nsplits;
    uint32_t total_proportion;
    uint32_t kinds;      /* bit mask of kinds to produce (1 << sl_nexmark_kind_t) */
    uint64_t block;      /* current block of total_proportion events */
    uint32_t offset;     /* next offset inside the block */
    double inter_event_delay_us;
    char scratch[SL_NEXMARK_SCRATCH];
    uint32_t used;
} sl_nexmark_gen_t;

void sl_nexmark_config_default(sl_nexmark_config_t *c);

/* Prepares split `split` of `nsplits` producing every kind. Errors: SL_EINVAL. */
int sl_nexmark_gen_init(sl_nexmark_gen_t *g, const sl_nexmark_config_t *c, uint32_t split, uint32_t nsplits);
/* Restricts the generator to the kinds in `mask` (events of other kinds are skipped without
 * being generated). */
void sl_nexmark_gen_only(sl_nexmark_gen_t *g, uint32_t mask);
/* Next event of this split: 1 with *ev filled, 0 when the sequence has ended. */
int sl_nexmark_gen_next(sl_nexmark_gen_t *g, sl_nexmark_event_t *ev);
/* Generates event `n` of the sequence, whatever its split. */
void sl_nexmark_gen_event(sl_nexmark_gen_t *g, uint64_t n, sl_nexmark_event_t *ev);
/* Position for a replay: the next event number this split will consider. */
uint64_t sl_nexmark_gen_position(const sl_nexmark_gen_t *g);
/* Continues from a position of this split returned by sl_nexmark_gen_position. */
void sl_nexmark_gen_seek(sl_nexmark_gen_t *g, uint64_t position);

#endif
