/* Built-in async function "http lookup" (sl_stream_http_lookup): for each input row, GET of
 * url-prefix + the key field as URL-escaped text, through one sl_http_client_t per subtask.
 * The engine finds these by name (dlsym), so they are exported, not static.
 *
 * Parameters: http.url-prefix, http.key-field (index of the input field).
 * Output rows: the input's fields, then status:int32 and body:string. Any HTTP status is a
 * result (404 included); transport errors and a NULL key field complete with an error.
 * Answers come on the client's thread, where the result is completed. */
#include <sluice/async.h>
#include <sluice/error.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/http_client.h"
#include "connectors/lookup_key.h"
#include "core/alloc.h"
#include "operators/operator.h"

typedef struct http_lookup_s http_lookup_t;

struct http_lookup_s {
    /* Immutable after open; read by both the task thread and the client's thread. */
    sl_http_client_t *client;
    char *prefix;
    size_t prefix_len;
    uint32_t key_field;
    sl_type_t key_type;
    uint32_t nin;
    sl_type_t *in_types;
    /* Task thread only: the URL being built. */
    char *url;
    size_t url_cap;
};

/* Compile-time check of the signatures against <sluice/async.h>. */
int sl_builtin_http_open(sl_fn_ctx_t *ctx, void **user);
int sl_builtin_http_lookup(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *result);
void sl_builtin_http_close(sl_fn_ctx_t *ctx, void *user);
static const sl_async_open_fn check_open __attribute__((unused)) = sl_builtin_http_open;
static const sl_async_fn check_lookup __attribute__((unused)) = sl_builtin_http_lookup;
static const sl_async_close_fn check_close __attribute__((unused)) = sl_builtin_http_close;

/* ---- URL ---- */


/* RFC 3986 unreserved characters stay, every other byte becomes %XX. */
static size_t escape(const char *s, size_t n, char *out) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '.' || ch == '_' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    return o;
}

/* prefix + escaped key, NUL-terminated, in l->url. */
static int build_url(http_lookup_t *l, const sl_row_t *in) {
    char num[40];
    const char *text;
    size_t n = sl_lookup_field_text(in, l->key_field, l->key_type, num, &text);
    size_t need = l->prefix_len + 3 * n + 1;
    if (need > l->url_cap) {
        char *u = sl_realloc(l->url, need);
        if (u == NULL)
            return SL_ENOMEM;
        l->url = u;
        l->url_cap = need;
    }
    memcpy(l->url, l->prefix, l->prefix_len);
    size_t len = l->prefix_len + escape(text, n, l->url + l->prefix_len);
    l->url[len] = '\0';
    return 0;
}

/* ---- Answers (client thread) ---- */

static void on_answer(void *arg, int status, long http_status, const char *body, size_t len, const char *errmsg) {
    sl_async_result_t *r = arg;
    http_lookup_t *l = sl_async_result_user(r);
    if (status < 0) {
        /* errmsg names the URL: "http GET <url>: <cause>". */
        sl_async_complete_error(r, status, "%s", errmsg);
        return;
    }
    if (len > UINT32_MAX) {
        sl_async_complete_error(r, SL_ERANGE, "http lookup: a body of %zu bytes does not fit a row", len);
        return;
    }
    const sl_row_t *in = sl_async_result_input(r);
    sl_row_builder_t *b = sl_async_result_row(r);
    for (uint32_t i = 0; i < l->nin; i++)
        sl_row_copy_field(b, i, in, i, l->in_types[i]);
    sl_row_set_i32(b, l->nin, (int32_t)http_status);
    sl_row_set_str(b, l->nin + 1, body, (uint32_t)len);
    int rc = sl_async_result_add(r);
    if (rc < 0) {
        sl_async_complete_error(r, rc, "http lookup: cannot build the output row (HTTP %ld, %zu bytes): %s",
                                http_status, len, sl_strerror(rc));
        return;
    }
    sl_async_complete(r);
}

/* ---- Open, lookup, close (task thread) ---- */

static void lookup_free(http_lookup_t *l) {
    sl_free(l->prefix);
    sl_free(l->in_types);
    sl_free(l->url);
    sl_free(l);
}

static int configure(sl_fn_ctx_t *ctx, http_lookup_t *l) {
    const sl_schema_t *in = ctx->op->in_schema[0], *out = ctx->op->out_schema;
    const char *prefix = sl_fn_param(ctx, "http.url-prefix"), *field = sl_fn_param(ctx, "http.key-field");
    if (in == NULL || out == NULL)
        return sl_fn_fail(ctx, SL_EJOB, "http lookup: needs an input and an output schema");
    if (prefix == NULL || (strncmp(prefix, "http://", 7) != 0 && strncmp(prefix, "https://", 8) != 0))
        return sl_fn_fail(ctx, SL_ECONFIG, "http lookup: http.url-prefix '%s' is not an http(s) URL",
                          prefix ? prefix : "(missing)");
    l->nin = sl_schema_nfields(in);
    char *end;
    long v = field != NULL ? strtol(field, &end, 10) : -1;
    if (field == NULL || *field == '\0' || *end != '\0' || v < 0 || v >= (long)l->nin)
        return sl_fn_fail(ctx, SL_ECONFIG, "http lookup: http.key-field '%s' is not a field index below %u",
                          field ? field : "(missing)", l->nin);
    l->key_field = (uint32_t)v;
    if (sl_schema_nfields(out) != l->nin + 2)
        return sl_fn_fail(ctx, SL_ESCHEMA, "http lookup: the output needs the %u input fields, status and body",
                          l->nin);
    l->key_type = sl_schema_field(in, l->key_field)->type;
    l->prefix = sl_strdup(prefix);
    l->prefix_len = strlen(prefix);
    l->in_types = sl_calloc(l->nin, sizeof *l->in_types);
    if (l->prefix == NULL || l->in_types == NULL)
        return sl_fn_fail(ctx, SL_ENOMEM, "http lookup: out of memory");
    for (uint32_t i = 0; i < l->nin; i++)
        l->in_types[i] = sl_schema_field(in, i)->type;
    return 0;
}

int sl_builtin_http_open(sl_fn_ctx_t *ctx, void **user) {
    http_lookup_t *l = sl_calloc(1, sizeof *l);
    if (l == NULL)
        return sl_fn_fail(ctx, SL_ENOMEM, "http lookup: out of memory");
    int rc = configure(ctx, l);
    if (rc < 0) {
        lookup_free(l);
        return rc;
    }
    /* HTTP/1.1 answers one request at a time per connection: as many connections as requests
     * may be in flight, or the capacity is capped by the connection count. */
    sl_http_options_t ho = sl_http_options_default();
    const char *cap = sl_fn_param(ctx, "capacity");
    long c = cap ? strtol(cap, NULL, 10) : 0;
    if (c > (long)ho.max_connections)
        ho.max_connections = c > 1024 ? 1024 : (uint32_t)c;
    char err[256] = "";
    rc = sl_http_client_open(&ho, &l->client, err, sizeof err);
    if (rc < 0) {
        lookup_free(l);
        return sl_fn_fail(ctx, rc, "http lookup: %s", err);
    }
    *user = l;
    return 0;
}

int sl_builtin_http_lookup(sl_fn_ctx_t *ctx, void *user, const sl_row_t *in, sl_async_result_t *result) {
    http_lookup_t *l = user;
    if (sl_row_is_null(in, l->key_field)) {
        sl_async_complete_error(result, SL_EINVAL, "http lookup: key field %u is NULL", l->key_field);
        return 0;
    }
    if (build_url(l, in) < 0)
        return sl_fn_fail(ctx, SL_ENOMEM, "http lookup: out of memory for a URL");
    int rc = sl_http_client_get(l->client, l->url, on_answer, result);
    if (rc < 0)
        return sl_fn_fail(ctx, rc, "http GET %s: cannot queue: %s", l->url, sl_strerror(rc));
    return 0;
}

void sl_builtin_http_close(sl_fn_ctx_t *ctx, void *user) {
    http_lookup_t *l = user;
    if (l == NULL)
        return;
    /* Completes every outstanding result (SL_ECANCELED) before it returns. */
    sl_http_client_close(l->client);
    lookup_free(l);
}
