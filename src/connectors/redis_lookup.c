/* Built-in async function "redis lookup" (sl_stream_redis_lookup): for each input row, GET,
 * HGET or HGETALL of key-prefix + the key field as text, through one sl_redis_client_t per
 * subtask. The engine finds these by name (dlsym), so they are exported, not static.
 *
 * Parameters: redis.address (host:port), redis.command (GET|HGET|HGETALL), redis.key-field
 * (index of the input field), redis.key-prefix (optional), redis.hash-field (HGET).
 * Output rows: the input's fields, then value (GET, HGET; NULL for a missing key or field), or
 * field, value (HGETALL: one row per entry, none for a missing key). A NULL key field is
 * looked up as a missing key, without a request. Replies come on the client's thread, where
 * the result is completed (sl_async_result_* may be used from any thread). */
#include <sluice/async.h>
#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/redis_client.h"
#include "connectors/lookup_key.h"
#include "core/alloc.h"
#include "operators/operator.h"

typedef struct redis_lookup_s redis_lookup_t;

struct redis_lookup_s {
    /* Immutable after open; read by both the task thread and the client's thread. */
    sl_redis_client_t *client;
    sl_redis_command_t cmd;
    const char *cmd_name;
    uint32_t key_field;
    sl_type_t key_type;
    char *prefix;
    size_t prefix_len;
    char *hash_field;
    uint32_t nin;
    sl_type_t *in_types;
    /* Task thread only: key = prefix + field text, when a prefix forces a copy. */
    char *key;
    size_t key_cap;
};

/* Compile-time check of the signatures against <sluice/async.h>. */
int sl_builtin_redis_open(sl_fn_ctx_t *ctx, void **user);
int sl_builtin_redis_lookup(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *result);
void sl_builtin_redis_close(sl_fn_ctx_t *ctx, void *user);
static const sl_async_open_fn check_open __attribute__((unused)) = sl_builtin_redis_open;
static const sl_async_fn check_lookup __attribute__((unused)) = sl_builtin_redis_lookup;
static const sl_async_close_fn check_close __attribute__((unused)) = sl_builtin_redis_close;

/* ---- Key text ---- */


/* prefix + field text, in l->key when a prefix is set, else pointing into the row. */
static int build_key(redis_lookup_t *l, const sl_row_t *in, const char **key, size_t *len) {
    char num[40];
    const char *text;
    size_t n = sl_lookup_field_text(in, l->key_field, l->key_type, num, &text);
    if (l->prefix_len == 0 && text != num) {
        *key = text;
        *len = n;
        return 0;
    }
    if (l->prefix_len + n + 1 > l->key_cap) {
        char *k = sl_realloc(l->key, l->prefix_len + n + 1);
        if (k == NULL)
            return SL_ENOMEM;
        l->key = k;
        l->key_cap = l->prefix_len + n + 1;
    }
    memcpy(l->key, l->prefix, l->prefix_len);
    memcpy(l->key + l->prefix_len, text, n);
    *key = l->key;
    *len = l->prefix_len + n;
    return 0;
}

/* The key for messages, truncated, into `buf` (any thread). */
static const char *key_for_message(const redis_lookup_t *l, const sl_row_t *in, char *buf, size_t cap) {
    char num[40];
    const char *text = "(null)";
    size_t n = 6;
    if (!sl_row_is_null(in, l->key_field))
        n = sl_lookup_field_text(in, l->key_field, l->key_type, num, &text);
    snprintf(buf, cap, "%s%.*s%s", l->prefix, (int)(n > 200 ? 200 : n), text, n > 200 ? "..." : "");
    return buf;
}

/* ---- Output rows (client thread) ---- */

/* Starts an output row holding the input's fields. */
static sl_row_builder_t *row_start(const redis_lookup_t *l, sl_async_result_t *r) {
    const sl_row_t *in = sl_async_result_input(r);
    sl_row_builder_t *b = sl_async_result_row(r);
    for (uint32_t i = 0; i < l->nin; i++)
        sl_row_copy_field(b, i, in, i, l->in_types[i]);
    return b;
}

static int add_value_row(const redis_lookup_t *l, sl_async_result_t *r, const redisReply *value) {
    sl_row_builder_t *b = row_start(l, r);
    if (value == NULL || value->type == REDIS_REPLY_NIL)
        sl_row_set_null(b, l->nin);
    else
        sl_row_set_str(b, l->nin, value->str, (uint32_t)value->len);
    return sl_async_result_add(r);
}

static int add_entry_rows(const redis_lookup_t *l, sl_async_result_t *r, const redisReply *arr) {
    for (size_t i = 0; i + 1 < arr->elements; i += 2) {
        const redisReply *f = arr->element[i], *v = arr->element[i + 1];
        sl_row_builder_t *b = row_start(l, r);
        sl_row_set_str(b, l->nin, f->str, (uint32_t)f->len);
        sl_row_set_str(b, l->nin + 1, v->str, (uint32_t)v->len);
        int rc = sl_async_result_add(r);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const char *reply_kind(const redisReply *rep, char *buf, size_t cap) {
    switch (rep->type) {
    case REDIS_REPLY_STRING: return "a string";
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_INTEGER: snprintf(buf, cap, "the integer %lld", rep->integer); return buf;
    case REDIS_REPLY_STATUS: snprintf(buf, cap, "the status '%.64s'", rep->str); return buf;
    case REDIS_REPLY_ARRAY: snprintf(buf, cap, "an array of %zu elements", rep->elements); return buf;
    default: snprintf(buf, cap, "a reply of type %d", rep->type); return buf;
    }
}

/* 1 when the reply has the shape the command promises. */
static int reply_fits(const redis_lookup_t *l, const redisReply *rep) {
    if (l->cmd != SL_REDIS_HGETALL)
        return rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_NIL;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0)
        return 0;
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

static void on_reply(void *arg, int status, const redisReply *rep, const char *errmsg) {
    sl_async_result_t *r = arg;
    redis_lookup_t *l = sl_async_result_user(r);
    char key[256], kind[96];
    const char *addr = sl_redis_client_address(l->client);
    if (rep == NULL) {
        /* errmsg names the address: "redis host:port: connection lost (...)". */
        sl_async_complete_error(r, status, "%s [%s %s]", errmsg, l->cmd_name,
                                key_for_message(l, sl_async_result_input(r), key, sizeof key));
        return;
    }
    if (status == SL_EPROTO) {
        sl_async_complete_error(r, SL_EPROTO, "redis %s: %s %s: error reply: %s", addr, l->cmd_name,
                                key_for_message(l, sl_async_result_input(r), key, sizeof key), errmsg);
        return;
    }
    if (!reply_fits(l, rep)) {
        sl_async_complete_error(r, SL_EPROTO, "redis %s: %s %s: unexpected reply: %s", addr, l->cmd_name,
                                key_for_message(l, sl_async_result_input(r), key, sizeof key),
                                reply_kind(rep, kind, sizeof kind));
        return;
    }
    int rc = l->cmd == SL_REDIS_HGETALL ? add_entry_rows(l, r, rep) : add_value_row(l, r, rep);
    if (rc < 0) {
        sl_async_complete_error(r, rc, "redis %s: %s %s: cannot build the output row: %s", addr, l->cmd_name,
                                key_for_message(l, sl_async_result_input(r), key, sizeof key), sl_strerror(rc));
        return;
    }
    sl_async_complete(r);
}

/* ---- Open, lookup, close (task thread) ---- */

static int parse_command(const char *s, sl_redis_command_t *cmd) {
    static const char *names[] = {"GET", "HGET", "HGETALL"};
    for (int i = 0; i < 3 && s != NULL; i++)
        if (strcasecmp(s, names[i]) == 0) {
            *cmd = (sl_redis_command_t)i;
            return 0;
        }
    return SL_EINVAL;
}

static int parse_index(const char *s, uint32_t n, uint32_t *out) {
    char *end;
    long v = s != NULL ? strtol(s, &end, 10) : -1;
    if (s == NULL || *s == '\0' || *end != '\0' || v < 0 || v >= (long)n)
        return SL_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static void lookup_free(redis_lookup_t *l) {
    sl_free(l->prefix);
    sl_free(l->hash_field);
    sl_free(l->in_types);
    sl_free(l->key);
    sl_free(l);
}

/* Reads and checks the parameters and schemas into `l`; fails `ctx` with the cause. */
static int configure(sl_fn_ctx_t *ctx, redis_lookup_t *l) {
    const sl_schema_t *in = ctx->op->in_schema[0], *out = ctx->op->out_schema;
    const char *cmd = sl_fn_param(ctx, "redis.command"), *field = sl_fn_param(ctx, "redis.key-field");
    const char *prefix = sl_fn_param(ctx, "redis.key-prefix"), *hash = sl_fn_param(ctx, "redis.hash-field");
    if (in == NULL || out == NULL)
        return sl_fn_fail(ctx, SL_EJOB, "redis lookup: needs an input and an output schema");
    if (parse_command(cmd, &l->cmd) < 0)
        return sl_fn_fail(ctx, SL_ECONFIG, "redis lookup: redis.command '%s' is not GET, HGET or HGETALL",
                          cmd ? cmd : "(missing)");
    l->cmd_name = l->cmd == SL_REDIS_GET ? "GET" : l->cmd == SL_REDIS_HGET ? "HGET" : "HGETALL";
    l->nin = sl_schema_nfields(in);
    if (parse_index(field, l->nin, &l->key_field) < 0)
        return sl_fn_fail(ctx, SL_ECONFIG, "redis lookup: redis.key-field '%s' is not a field index below %u",
                          field ? field : "(missing)", l->nin);
    if (l->cmd == SL_REDIS_HGET && (hash == NULL || hash[0] == '\0'))
        return sl_fn_fail(ctx, SL_ECONFIG, "redis lookup: HGET needs redis.hash-field");
    uint32_t extra = l->cmd == SL_REDIS_HGETALL ? 2 : 1;
    if (sl_schema_nfields(out) != l->nin + extra)
        return sl_fn_fail(ctx, SL_ESCHEMA, "redis lookup: the output needs the %u input fields and %u more, has %u",
                          l->nin, extra, sl_schema_nfields(out));
    l->key_type = sl_schema_field(in, l->key_field)->type;
    l->prefix = sl_strdup(prefix != NULL ? prefix : "");
    l->prefix_len = prefix != NULL ? strlen(prefix) : 0;
    l->hash_field = hash != NULL ? sl_strdup(hash) : NULL;
    l->in_types = sl_calloc(l->nin, sizeof *l->in_types);
    if (l->prefix == NULL || (hash != NULL && l->hash_field == NULL) || l->in_types == NULL)
        return sl_fn_fail(ctx, SL_ENOMEM, "redis lookup: out of memory");
    for (uint32_t i = 0; i < l->nin; i++)
        l->in_types[i] = sl_schema_field(in, i)->type;
    return 0;
}

int sl_builtin_redis_open(sl_fn_ctx_t *ctx, void **user) {
    redis_lookup_t *l = sl_calloc(1, sizeof *l);
    if (l == NULL)
        return sl_fn_fail(ctx, SL_ENOMEM, "redis lookup: out of memory");
    int rc = configure(ctx, l);
    if (rc < 0) {
        lookup_free(l);
        return rc;
    }
    const char *address = sl_fn_param(ctx, "redis.address");
    char err[384] = "";
    rc = sl_redis_client_open(address, NULL, &l->client, err, sizeof err);
    if (rc < 0) {
        lookup_free(l);
        return sl_fn_fail(ctx, rc, "redis lookup: %s", err);
    }
    *user = l;
    return 0;
}

/* A NULL key is a missing key: answered at once, without a request. */
static int complete_missing(redis_lookup_t *l, sl_async_result_t *r) {
    if (l->cmd != SL_REDIS_HGETALL) {
        int rc = add_value_row(l, r, NULL);
        if (rc < 0) {
            sl_async_complete_error(r, rc, "redis lookup: cannot build the output row: %s", sl_strerror(rc));
            return 0;
        }
    }
    sl_async_complete(r);
    return 0;
}

int sl_builtin_redis_lookup(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *result) {
    redis_lookup_t *l = user;
    if (sl_row_is_null(in, l->key_field))
        return complete_missing(l, result);
    const char *key;
    size_t key_len;
    if (build_key(l, in, &key, &key_len) < 0)
        return sl_fn_fail(ctx, SL_ENOMEM, "redis lookup: out of memory for a key");
    const char *argv[3] = {l->cmd_name, key, l->hash_field};
    size_t argvlen[3] = {strlen(l->cmd_name), key_len, l->hash_field ? strlen(l->hash_field) : 0};
    int rc = sl_redis_client_command(l->client, l->cmd == SL_REDIS_HGET ? 3 : 2, argv, argvlen, on_reply, result);
    if (rc < 0)
        return sl_fn_fail(ctx, rc, "redis %s: cannot send %s: %s", sl_redis_client_address(l->client), l->cmd_name,
                          sl_strerror(rc));
    return 0;
}

void sl_builtin_redis_close(sl_fn_ctx_t *ctx, void *user) {
    redis_lookup_t *l = user;
    if (l == NULL)
        return;
    /* Completes every outstanding result (SL_ECANCELED) before it returns. */
    sl_redis_client_close(l->client);
    lookup_free(l);
}
