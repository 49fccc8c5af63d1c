/* Configuration: Flink-style keys ("parallelism.default") from a YAML file plus "-D key=value"
 * overrides, validated against a registry of known options (config_options.c). An unknown
 * key or a bad value is an error whose message names the key (and file:line for YAML).
 * A config is written by one thread while it is built, then read-only and shareable. */
#ifndef SL_CORE_CONFIG_H
#define SL_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SL_OPT_INT = 0,
    SL_OPT_BOOL,
    SL_OPT_STRING,
    SL_OPT_ENUM,
    SL_OPT_DURATION, /* stored in milliseconds */
    SL_OPT_MEMORY,   /* stored in bytes */
} sl_option_type_t;

typedef struct sl_option_s {
    const char *key;
    sl_option_type_t type;
    const char *dflt;
    const char *description;
    int64_t min;           /* int, duration, memory */
    int64_t max;
    const char *values;    /* enum: "a|b|c" */
} sl_option_t;

/* The registry: a NULL-key-terminated table. */
extern const sl_option_t sl_options[];

typedef struct sl_config_s sl_config_t;

int sl_config_create(sl_config_t **out);
void sl_config_destroy(sl_config_t *c);
int sl_config_copy(const sl_config_t *src, sl_config_t **out);
/* Errors: SL_ENOENT / SL_EIO naming the path, SL_ECONFIG on bad content (file:line: ...). */
int sl_config_load_yaml(sl_config_t *c, const char *path, char *err, size_t errlen);
/* Errors: SL_ECONFIG naming the key. */
int sl_config_set(sl_config_t *c, const char *key, const char *value, char *err, size_t errlen);
/* "key=value", as given to -D. */
int sl_config_set_arg(sl_config_t *c, const char *key_eq_value, char *err, size_t errlen);
/* Sets every "key=value" line of `data` (how a job's configuration travels to a cluster);
 * empty lines are skipped. Errors as sl_config_set_arg, naming the key. */
int sl_config_set_lines(sl_config_t *c, const uint8_t *data, size_t len, char *err, size_t errlen);

/* Typed reads of known keys (an unknown key or a type mismatch is a programming error). */
int64_t sl_config_int(const sl_config_t *c, const char *key);
bool sl_config_bool(const sl_config_t *c, const char *key);
const char *sl_config_str(const sl_config_t *c, const char *key);
int64_t sl_config_duration_ms(const sl_config_t *c, const char *key);
int64_t sl_config_bytes(const sl_config_t *c, const char *key);
bool sl_config_is_set(const sl_config_t *c, const char *key);
int sl_config_for_each(const sl_config_t *c,
                       int (*cb)(void *arg, const char *key, const char *value, bool is_default), void *arg);

/* Value parsers, exposed for tests and the CLI. Return 0 or SL_EINVAL. */
int sl_parse_duration_ms(const char *s, int64_t *out);
int sl_parse_memory(const char *s, int64_t *out);

#endif
