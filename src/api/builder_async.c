/* Builder calls for async I/O: the generic operator and the built-in Redis and HTTP lookups.
 * Options become string parameters of the node, so the job graph ships as plain data. */
#include "api/job_internal.h"

#include <sluice/async.h>
#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *check_options(const sl_async_options_t *o) {
    if (o->capacity == 0)
        return "capacity must be at least 1";
    if (o->timeout_ms <= 0)
        return "timeout_ms must be positive";
    if (o->mode != SL_ASYNC_ORDERED && o->mode != SL_ASYNC_UNORDERED)
        return "mode must be ordered or unordered";
    if (o->retry != SL_ASYNC_RETRY_NONE) {
        if (o->retry != SL_ASYNC_RETRY_FIXED && o->retry != SL_ASYNC_RETRY_EXPONENTIAL)
            return "unknown retry strategy";
        if (o->max_attempts < 1)
            return "max_attempts must be at least 1 with a retry strategy";
        if (o->retry_delay_ms < 0 || o->retry_max_delay_ms < 0)
            return "retry delays must not be negative";
        if (o->retry == SL_ASYNC_RETRY_EXPONENTIAL && o->retry_multiplier < 1.0)
            return "retry_multiplier must be at least 1";
        if (!o->retry_on_error && o->retry_if_symbol == NULL)
            return "a retry strategy needs retry_on_error or retry_if_symbol";
    }
    return NULL;
}

static sl_stream_t *param_i64(sl_stream_t *s, const char *key, int64_t v) {
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return sl_stream_param(s, key, b);
}

static sl_stream_t *param_opt(sl_stream_t *s, const char *key, const char *v) {
    return v && v[0] ? sl_stream_param(s, key, v) : s;
}

static sl_stream_t *set_options(sl_stream_t *r, const sl_async_options_t *o) {
    static const char *retry_names[] = {"none", "fixed", "exponential"};
    char mult[32];
    snprintf(mult, sizeof mult, "%.17g", o->retry_multiplier > 0 ? o->retry_multiplier : 2.0);
    r = sl_stream_param(r, "mode", o->mode == SL_ASYNC_UNORDERED ? "unordered" : "ordered");
    r = param_i64(r, "capacity", o->capacity);
    r = param_i64(r, "timeout_ms", o->timeout_ms);
    r = sl_stream_param(r, "retry", retry_names[o->retry]);
    r = param_i64(r, "retry.max_attempts", o->max_attempts ? o->max_attempts : 1);
    r = param_i64(r, "retry.delay_ms", o->retry_delay_ms);
    r = param_i64(r, "retry.max_delay_ms", o->retry_max_delay_ms ? o->retry_max_delay_ms : o->retry_delay_ms);
    r = sl_stream_param(r, "retry.multiplier", mult);
    r = param_i64(r, "retry.on_error", o->retry_on_error != 0);
    r = param_opt(r, "open", o->open_symbol);
    r = param_opt(r, "close", o->close_symbol);
    r = param_opt(r, "on_timeout", o->timeout_symbol);
    return param_opt(r, "retry_if", o->retry_if_symbol);
}

sl_stream_t *sl_stream_async(sl_stream_t *s, const char *name, const char *fn, const char *out_schema,
                             const sl_async_options_t *opts) {
    if (s == NULL)
        return NULL;
    name = name ? name : "async";
    if (fn == NULL || fn[0] == '\0')
        return sl__job_fail(s->job, "async '%s': no function symbol given", name);
    if (out_schema == NULL || out_schema[0] == '\0')
        return sl__job_fail(s->job, "async '%s': an output schema is required", name);
    sl_async_options_t def = sl_async_options_default();
    const sl_async_options_t *o = opts ? opts : &def;
    const char *bad = check_options(o);
    if (bad)
        return sl__job_fail(s->job, "async '%s': %s", name, bad);
    sl_stream_t *in[1] = {s};
    sl_stream_t *r = sl__job_add(s->job, "async", name, in, 1, out_schema);
    return set_options(sl_stream_param(r, "fn", fn), o);
}

/* The input's fields followed by `extra` ("value:string?"), as a schema spec. */
static int extended_schema(const sl_stream_t *s, const char *extra, char *buf, size_t len) {
    int rc = sl_schema_format(s->schema, buf, len);
    size_t n = strlen(buf);
    if (rc == 0 && (size_t)snprintf(buf + n, len - n, ",%s", extra) >= len - n)
        rc = SL_ERANGE;
    return rc;
}

static int field_param(sl_stream_t *s, const char *field, char *out, size_t len) {
    int i = sl_schema_index(s->schema, field);
    if (i < 0) {
        char *end;
        long v = strtol(field, &end, 10);
        if (*field == '\0' || *end != '\0' || v < 0 || v >= (long)sl_schema_nfields(s->schema))
            return SL_EINVAL;
        i = (int)v;
    }
    snprintf(out, len, "%d", i);
    return 0;
}

static sl_stream_t *lookup(sl_stream_t *s, const char *kind, const char *name, const char *prefix,
                           const char *key_field, const char *extra, const sl_async_options_t *opts) {
    char schema[8192], field[16], sym[64];
    if (key_field == NULL || field_param(s, key_field, field, sizeof field) != 0)
        return sl__job_fail(s->job, "%s '%s': key field '%s' is not a field of the input", kind, name,
                            key_field ? key_field : "(null)");
    if (extended_schema(s, extra, schema, sizeof schema) != 0)
        return sl__job_fail(s->job, "%s '%s': the input schema is too wide", kind, name);
    sl_async_options_t o = opts ? *opts : sl_async_options_default();
    snprintf(sym, sizeof sym, "sl_builtin_%s_open", prefix);
    o.open_symbol = sym;
    char close_sym[64], fn[64];
    snprintf(close_sym, sizeof close_sym, "sl_builtin_%s_close", prefix);
    snprintf(fn, sizeof fn, "sl_builtin_%s_lookup", prefix);
    o.close_symbol = close_sym;
    sl_stream_t *r = sl_stream_async(s, name, fn, schema, &o);
    return sl_stream_param(r, strcmp(prefix, "redis") == 0 ? "redis.key-field" : "http.key-field", field);
}

sl_stream_t *sl_stream_redis_lookup(sl_stream_t *s, const char *name, const char *address, sl_redis_command_t cmd,
                                    const char *key_field, const char *key_prefix, const char *hash_field,
                                    const sl_async_options_t *opts) {
    if (s == NULL)
        return NULL;
    name = name ? name : "redis_lookup";
    static const char *cmds[] = {"GET", "HGET", "HGETALL"};
    if ((unsigned)cmd > SL_REDIS_HGETALL)
        return sl__job_fail(s->job, "redis_lookup '%s': unknown command %d", name, (int)cmd);
    if (address == NULL || strchr(address, ':') == NULL)
        return sl__job_fail(s->job, "redis_lookup '%s': address must be host:port", name);
    if (cmd == SL_REDIS_HGET && (hash_field == NULL || hash_field[0] == '\0'))
        return sl__job_fail(s->job, "redis_lookup '%s': HGET needs a hash field", name);
    const char *extra = cmd == SL_REDIS_HGETALL ? "field:string,value:string" : "value:string?";
    sl_stream_t *r = lookup(s, "redis_lookup", name, "redis", key_field, extra, opts);
    r = sl_stream_param(r, "redis.address", address);
    r = sl_stream_param(r, "redis.command", cmds[cmd]);
    r = param_opt(r, "redis.key-prefix", key_prefix);
    return param_opt(r, "redis.hash-field", hash_field);
}

sl_stream_t *sl_stream_http_lookup(sl_stream_t *s, const char *name, const char *url_prefix, const char *key_field,
                                   const sl_async_options_t *opts) {
    if (s == NULL)
        return NULL;
    name = name ? name : "http_lookup";
    if (url_prefix == NULL || strncmp(url_prefix, "http", 4) != 0)
        return sl__job_fail(s->job, "http_lookup '%s': the URL prefix must start with http:// or https://", name);
    sl_stream_t *r = lookup(s, "http_lookup", name, "http", key_field, "status:int32,body:string", opts);
    return sl_stream_param(r, "http.url-prefix", url_prefix);
}
