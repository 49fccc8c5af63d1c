/* The REST server (see rest.h): libmicrohttpd with one thread per connection. A request's body
 * is gathered (JSON, at most SL_REST_MAX_JSON_BODY) or, for a jar upload, streamed to a
 * private file (multipart/form-data field "jarfile" as Flink's clients send it, or a raw
 * body), then the route handlers answer with a JSON document. */
#include "rest/rest_internal.h"

#include <sluice/error.h>

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/bytes.h"
#include "core/config.h"
#include "core/log.h"
#include "minicluster/library_cache.h"

size_t sl_rest_max_upload(void) { return SL_LIBRARY_MAX_BYTES; }

/* ---- Replies ---- */

void sl_rest_error(sl_rest_reply_t *out, unsigned status, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    out->status = status;
    out->body = json_pack("{s:[s]}", "errors", msg);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, sl_rest_reply_t *rep) {
    char *text = rep->body ? json_dumps(rep->body, JSON_COMPACT) : NULL;
    json_decref(rep->body);
    rep->body = NULL;
    if (text == NULL) { /* out of memory while encoding: a bare 500 still tells the client */
        rep->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        text = strdup("{\"errors\":[\"out of memory\"]}");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(text ? strlen(text) : 0, text ? text : (char *)"", MHD_RESPMEM_MUST_COPY);
    free(text); /* jansson's and strdup's allocator */
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ok = MHD_queue_response(c, rep->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* ---- Per-request state ---- */

typedef struct req_ctx_s {
    char path[1024];
    bool upload;                 /* POST /jars/upload */
    struct MHD_PostProcessor *pp; /* multipart uploads */
    int fd;
    char upload_path[4096];
    char upload_name[256];
    size_t upload_bytes;
    int upload_errno;
    bool too_large;
    bool answered;               /* refused before the body was read */
    sl_bytes_t body;
} req_ctx_t;

/* "/v1/jobs/" -> "/jobs": Flink serves its API with and without the version prefix. */
static void normalize_path(const char *url, char *out, size_t cap) {
    if (strncmp(url, "/v1/", 4) == 0 || strcmp(url, "/v1") == 0)
        url += 3;
    snprintf(out, cap, "%s", url[0] ? url : "/");
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/')
        out[--n] = '\0';
}

static void upload_bytes(req_ctx_t *x, const char *data, size_t size) {
    if (x->too_large || x->upload_errno)
        return;
    if (x->upload_bytes + size > sl_rest_max_upload()) {
        x->too_large = true;
        return;
    }
    while (size > 0) {
        ssize_t w = write(x->fd, data, size);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            x->upload_errno = errno;
            return;
        }
        data += w;
        size -= (size_t)w;
        x->upload_bytes += (size_t)w;
    }
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                               const char *content_type, const char *transfer_encoding, const char *data,
                               uint64_t off, size_t size) {
    (void)kind, (void)content_type, (void)transfer_encoding, (void)off;
    req_ctx_t *x = cls;
    if (strcmp(key, "jarfile") != 0)
        return MHD_YES; /* other form fields carry nothing we use */
    if (filename && x->upload_name[0] == '\0')
        snprintf(x->upload_name, sizeof x->upload_name, "%s", filename);
    upload_bytes(x, data, size);
    return MHD_YES;
}

static bool is_multipart(struct MHD_Connection *c) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    return ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
}

static req_ctx_t *begin(sl_rest_t *r, struct MHD_Connection *c, const char *url, const char *method) {
    req_ctx_t *x = sl_calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    x->fd = -1;
    sl_bytes_init(&x->body);
    normalize_path(url, x->path, sizeof x->path);
    x->upload = strcmp(method, "POST") == 0 && strcmp(x->path, "/jars/upload") == 0 && r->submit_enabled;
    if (x->upload) {
        if (sl_rest_jars_stage(r, x->upload_path, sizeof x->upload_path, &x->fd) != 0)
            x->upload_errno = errno ? errno : EIO;
        if (is_multipart(c))
            x->pp = MHD_create_post_processor(c, 64 * 1024, on_part, x);
        else {
            const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "filename");
            snprintf(x->upload_name, sizeof x->upload_name, "%s", name ? name : "");
        }
    }
    return x;
}

static void take_body(req_ctx_t *x, const char *data, size_t size) {
    if (!x->upload) {
        if (x->body.len + size > SL_REST_MAX_JSON_BODY)
            x->too_large = true;
        else
            sl_bytes_put(&x->body, data, size);
    } else if (x->pp) {
        if (MHD_post_process(x->pp, data, size) != MHD_YES && x->upload_errno == 0 && !x->too_large)
            x->upload_errno = EPROTO;
    } else {
        upload_bytes(x, data, size);
    }
}

static void too_large(const req_ctx_t *x, sl_rest_reply_t *rep) {
    if (x->upload)
        sl_rest_error(rep, MHD_HTTP_CONTENT_TOO_LARGE, "the job library is larger than %zu MiB, the most a job can "
                      "ship", sl_rest_max_upload() >> 20);
    else
        sl_rest_error(rep, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than %u bytes", SL_REST_MAX_JSON_BODY);
}

/* A declared length above the limit is refused before the body is read (and before "100
 * Continue"); a body without one is read to its end, discarded, then refused. */
static bool declared_too_large(struct MHD_Connection *c, const req_ctx_t *x) {
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    /* Multipart framing around the file is small: 64 KiB of slack for it. */
    return n > (x->upload ? sl_rest_max_upload() + 65536 : SL_REST_MAX_JSON_BODY);
}

static void route(sl_rest_t *r, req_ctx_t *x, struct MHD_Connection *c, const char *method, sl_rest_reply_t *rep) {
    if (x->too_large) {
        too_large(x, rep);
        return;
    }
    if (x->body.err) {
        sl_rest_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    if (x->upload && x->upload_errno) {
        sl_rest_error(rep, x->upload_errno == EPROTO ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                      "upload failed: %s", x->upload_errno == EPROTO ? "malformed multipart/form-data body"
                                                                     : strerror(x->upload_errno));
        return;
    }
    sl_rest_req_t q = {.conn = c,
                       .method = method,
                       .path = x->path,
                       .body = x->body.data,
                       .body_len = x->body.len,
                       .upload_path = x->upload ? x->upload_path : NULL,
                       .upload_name = x->upload_name};
    if (sl_rest_jobs_route(r, &q, rep) || sl_rest_jars_route(r, &q, rep))
        return;
    sl_rest_error(rep, MHD_HTTP_NOT_FOUND, "not found: %s %s", method, x->path);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **con_cls) {
    (void)version;
    sl_rest_t *r = cls;
    req_ctx_t *x = *con_cls;
    if (x == NULL) {
        *con_cls = x = begin(r, c, url, method);
        if (x == NULL)
            return MHD_NO;
        char why[512];
        sl_rest_reply_t rep;
        if (r->client_auth && !sl_rest_tls_client_ok(c, why, sizeof why)) {
            sl_rest_error(&rep, MHD_HTTP_UNAUTHORIZED, "%s", why);
        } else if (declared_too_large(c, x)) {
            x->too_large = true;
            too_large(x, &rep);
        } else {
            return MHD_YES;
        }
        x->answered = true; /* refused before the body is read */
        return send_reply(c, &rep);
    }
    if (*size) {
        if (!x->answered)
            take_body(x, data, *size);
        *size = 0;
        return MHD_YES;
    }
    if (x->answered)
        return MHD_YES;
    if (x->fd >= 0) {
        close(x->fd);
        x->fd = -1;
    }
    if (!x->upload && !x->too_large) {
        sl_rest_req_t q = {.conn = c, .method = method, .path = x->path};
        struct MHD_Response *page = NULL;
        unsigned status;
        if (sl_rest_web_route(&q, &page, &status)) {
            if (page == NULL)
                return MHD_NO;
            enum MHD_Result ok = MHD_queue_response(c, status, page);
            MHD_destroy_response(page);
            return ok;
        }
    }
    sl_rest_reply_t rep = {0};
    route(r, x, c, method, &rep);
    if (rep.body == NULL)
        sl_rest_error(&rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return send_reply(c, &rep);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)cls, (void)c, (void)why;
    req_ctx_t *x = *con_cls;
    if (x == NULL)
        return;
    if (x->pp)
        MHD_destroy_post_processor(x->pp);
    if (x->fd >= 0)
        close(x->fd);
    if (x->upload_path[0])
        unlink(x->upload_path); /* accepted uploads were renamed away; the rest go */
    sl_bytes_destroy(&x->body);
    sl_free(x);
    *con_cls = NULL;
}

/* ---- Lifecycle ---- */

/* While starting, libmicrohttpd's own words (e.g. "Failed to bind to port 8081: Address
 * already in use") become the error; afterwards they go to the log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    sl_rest_t *r = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (r->start_err && r->start_err[0] == '\0')
        snprintf(r->start_err, r->start_errlen, "%s", msg);
    else
        SL_WARN("REST: %s", msg);
}

static int bind_address(const char *host, int port, struct sockaddr_in *sa, char *err, size_t errlen) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0 || res == NULL) {
        snprintf(err, errlen, "rest.bind-address '%s': %s", host, gai_strerror(g));
        return SL_EINVAL;
    }
    memcpy(sa, res->ai_addr, sizeof *sa);
    sa->sin_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

int sl_rest_start(const sl_config_t *config, sl_jobmanager_t *jm, sl_rest_t **out, char *err, size_t errlen) {
    sl_rest_t *r = sl_calloc(1, sizeof *r);
    if (r == NULL)
        return SL_ENOMEM;
    pthread_mutex_init(&r->run_mu, NULL);
    r->jm = jm;
    r->dispatcher = sl_jobmanager_dispatcher(jm);
    r->submit_enabled = sl_config_bool(config, "web.submit.enable");
    r->cancel_enabled = sl_config_bool(config, "web.cancel.enable");
    snprintf(r->savepoints_dir, sizeof r->savepoints_dir, "%s", sl_config_str(config, "state.savepoints.dir"));
    const char *host = sl_config_str(config, "rest.bind-address");
    int port = (int)sl_config_int(config, "rest.port");
    struct sockaddr_in sa;
    int rc = bind_address(host, port, &sa, err, errlen);
    if (rc == 0)
        rc = sl_rest_tls_load(r, config, err, errlen);
    if (rc == 0)
        rc = sl_rest_jars_init(r, config, err, errlen);
    if (rc == 0) {
        err[0] = '\0';
        r->start_err = err;
        r->start_errlen = errlen;
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                         (r->tls ? MHD_USE_TLS : 0);
        struct MHD_OptionItem tls[] = {
            {r->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, r->tls_cert},
            {MHD_OPTION_HTTPS_MEM_KEY, 0, r->tls_key},
            {r->tls_trust ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, r->tls_trust},
            {MHD_OPTION_END, 0, NULL}};
        /* The logger first, or libmicrohttpd complains about it; the port is also passed on its
         * own so that its messages name it. */
        r->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, r, MHD_OPTION_EXTERNAL_LOGGER,
                                  on_mhd_log, r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, r, MHD_OPTION_CONNECTION_TIMEOUT,
                                  (unsigned)60, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_ARRAY, tls,
                                  MHD_OPTION_END);
        if (r->mhd == NULL) {
            char why[512];
            snprintf(why, sizeof why, "%s", err[0] ? err : "libmicrohttpd could not start");
            snprintf(err, errlen, "cannot serve REST on %s:%d: %s", host, port, why);
            rc = SL_EIO;
        }
    }
    if (rc) {
        r->start_err = NULL;
        sl_rest_stop(r);
        return rc;
    }
    /* From now on its messages are logged, not written into the caller's buffer. */
    r->start_err = NULL;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_BIND_PORT);
    r->port = di ? di->port : port;
    *out = r;
    return 0;
}

int sl_rest_port(const sl_rest_t *r) { return r->port; }
const char *sl_rest_scheme(const sl_rest_t *r) { return r->tls ? "https" : "http"; }

void sl_rest_stop(sl_rest_t *r) {
    if (r == NULL)
        return;
    if (r->mhd)
        MHD_stop_daemon(r->mhd);
    sl_rest_jars_cleanup(r);
    sl_rest_savepoints_cleanup(r);
    sl_rest_tls_free(r);
    pthread_mutex_destroy(&r->run_mu);
    sl_free(r);
}
