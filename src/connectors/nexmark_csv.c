/* Nexmark events to CSV (see nexmark_csv.h). Quoting follows RFC 4180 like the CSV sink. */
#include "connectors/nexmark_csv.h"

#include <sluice/error.h>

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fs.h"

static const char *const files[3] = {"person.csv", "auction.csv", "bid.csv"};
static const char *const headers[3] = {
    "id,name,emailAddress,creditCard,city,state,dateTime,extra",
    "id,itemName,description,initialBid,reserve,dateTime,expires,seller,category,extra",
    "auction,bidder,price,channel,url,dateTime,extra",
};


int sl_nexmark_csv_open(sl_nexmark_csv_t *w, const char *dir, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    if (sl_make_dirs(dir) != 0) {
        snprintf(err, errlen, "cannot create directory '%s': %s", dir, strerror(errno));
        return SL_EIO;
    }
    for (int i = 0; i < 3; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if ((w->f[i] = fopen(path, "w")) == NULL) {
            snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
            sl_nexmark_csv_close(w);
            return SL_EIO;
        }
        fprintf(w->f[i], "%s\n", headers[i]);
    }
    return 0;
}

static void str(FILE *f, sl_nexmark_str_t s) {
    bool quote = memchr(s.p, ',', s.len) || memchr(s.p, '"', s.len) || memchr(s.p, '\n', s.len);
    if (!quote) {
        fwrite(s.p, 1, s.len, f);
        return;
    }
    fputc('"', f);
    for (uint32_t i = 0; i < s.len; i++) {
        if (s.p[i] == '"')
            fputc('"', f);
        fputc(s.p[i], f);
    }
    fputc('"', f);
}

static void num(FILE *f, int64_t v, char sep) { fprintf(f, "%" PRId64 "%c", v, sep); }

int sl_nexmark_csv_write(sl_nexmark_csv_t *w, const sl_nexmark_event_t *ev) {
    FILE *f = w->f[ev->kind];
    switch (ev->kind) {
    case SL_NEXMARK_PERSON:
        num(f, ev->person.id, ',');
        str(f, ev->person.name), fputc(',', f);
        str(f, ev->person.email), fputc(',', f);
        str(f, ev->person.credit_card), fputc(',', f);
        str(f, ev->person.city), fputc(',', f);
        str(f, ev->person.state), fputc(',', f);
        num(f, ev->person.date_time, ',');
        str(f, ev->person.extra);
        break;
    case SL_NEXMARK_AUCTION:
        num(f, ev->auction.id, ',');
        str(f, ev->auction.item_name), fputc(',', f);
        str(f, ev->auction.description), fputc(',', f);
        num(f, ev->auction.initial_bid, ',');
        num(f, ev->auction.reserve, ',');
        num(f, ev->auction.date_time, ',');
        num(f, ev->auction.expires, ',');
        num(f, ev->auction.seller, ',');
        num(f, ev->auction.category, ',');
        str(f, ev->auction.extra);
        break;
    case SL_NEXMARK_BID:
        num(f, ev->bid.auction, ',');
        num(f, ev->bid.bidder, ',');
        num(f, ev->bid.price, ',');
        str(f, ev->bid.channel), fputc(',', f);
        str(f, ev->bid.url), fputc(',', f);
        num(f, ev->bid.date_time, ',');
        str(f, ev->bid.extra);
        break;
    }
    fputc('\n', f);
    return ferror(f) ? SL_EIO : 0;
}

int sl_nexmark_csv_close(sl_nexmark_csv_t *w) {
    int rc = 0;
    for (int i = 0; i < 3; i++) {
        if (w->f[i] == NULL)
            continue;
        if (ferror(w->f[i]) && rc == 0)
            rc = SL_EIO;
        if (fclose(w->f[i]) != 0 && rc == 0)
            rc = SL_EIO;
        w->f[i] = NULL;
    }
    return rc;
}
