/* Aggregate functions: parsing "count(), sum(price), agg(sym)", accumulators, results.
 *
 * An aggregate list compiles, against an input schema, into fixed-size accumulators laid out
 * back to back in one plain byte block, so a whole row of accumulators is one keyed-state
 * value (no pointers: it can be snapshotted and moved as is). SQL semantics: NULL inputs are
 * ignored; sum/min/max/avg over no non-NULL input are NULL; count() counts rows. */
#ifndef SL_OPERATORS_AGG_H
#define SL_OPERATORS_AGG_H

#include <sluice/function.h>
#include <sluice/row.h>

#include <stddef.h>
#include <stdint.h>

#define SL_AGG_LIMIT 32
#define SL_AGG_USER_MAX_ACC 1024 /* bytes of a user aggregate's accumulator */

typedef enum { SL_AGG_COUNT_ALL, SL_AGG_COUNT, SL_AGG_SUM, SL_AGG_MIN, SL_AGG_MAX, SL_AGG_AVG, SL_AGG_USER } sl_agg_kind_t;

typedef struct sl_agg_s {
    sl_agg_kind_t kind;
    uint32_t field;        /* input field, unused for count() and user aggregates */
    sl_type_t in_type;
    sl_type_t out_type;
    uint32_t offset;       /* of its accumulator in the block */
    uint32_t size;
    const sl_aggregate_t *user;
    char name[64];         /* output field name: count, sum_price, ... */
} sl_agg_t;

typedef struct sl_agg_list_s {
    sl_agg_t aggs[SL_AGG_LIMIT];
    uint32_t n;
    uint32_t acc_size;     /* bytes of the whole accumulator block */
} sl_agg_list_t;

/* Resolves user aggregates by symbol: returns the sl_aggregate_t or NULL. */
typedef const sl_aggregate_t *(*sl_agg_resolver_t)(void *arg, const char *symbol);

/* Compiles `spec` against `in`. `resolve` may be NULL to check syntax and fields only (user
 * aggregates then get a DOUBLE placeholder type). Errors: SL_EJOB with a message. */
int sl_agg_compile(sl_agg_list_t *l, const char *spec, const sl_schema_t *in, sl_agg_resolver_t resolve,
                   void *arg, char *err, size_t errlen);

void sl_agg_init(const sl_agg_list_t *l, void *acc);
void sl_agg_add(const sl_agg_list_t *l, void *acc, const sl_row_t *row);
/* Merges `other` into `acc` (session windows). */
void sl_agg_merge(const sl_agg_list_t *l, void *acc, const void *other);
/* Writes aggregate i's result into field `first + i` of `out`. */
void sl_agg_results(const sl_agg_list_t *l, const void *acc, sl_row_builder_t *out, uint32_t first);
/* True when every aggregate can merge (user aggregates need a merge function). */
int sl_agg_mergeable(const sl_agg_list_t *l);

#endif
