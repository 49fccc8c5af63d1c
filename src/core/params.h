/* Operator parameters: an ordered list of key -> text value.
 * Operators are described by (kind, params) rather than by C closures, so a JobGraph can be
 * shipped to another process and every operator rebuilt there from plain data. */
#ifndef SL_CORE_PARAMS_H
#define SL_CORE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_param_s {
    char *key;
    char *value;
} sl_param_t;

typedef struct sl_params_s {
    sl_param_t *items;
    uint32_t n;
    uint32_t cap;
} sl_params_t;

void sl_params_init(sl_params_t *p);
void sl_params_destroy(sl_params_t *p);
int sl_params_copy(sl_params_t *dst, const sl_params_t *src);
/* Sets (replacing) a value. Errors: SL_ENOMEM. */
int sl_params_set(sl_params_t *p, const char *key, const char *value);
int sl_params_set_int(sl_params_t *p, const char *key, int64_t v);
int sl_params_set_double(sl_params_t *p, const char *key, double v);
/* Returns the value or NULL. */
const char *sl_params_get(const sl_params_t *p, const char *key);
/* Typed reads. Missing key: *out = dflt and 0. Unparseable: SL_EINVAL. */
int sl_params_int(const sl_params_t *p, const char *key, int64_t dflt, int64_t *out);
int sl_params_double(const sl_params_t *p, const char *key, double dflt, double *out);
int sl_params_bool(const sl_params_t *p, const char *key, bool dflt, bool *out);
/* Parses a comma-separated list of non-negative integers ("0,2,5") into out[max].
 * Returns the count or SL_EINVAL. */
int sl_params_int_list(const sl_params_t *p, const char *key, uint32_t *out, uint32_t max);

#endif
