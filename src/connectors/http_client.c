/* Non-blocking HTTP GET client: a libcurl multi handle on a private libuv loop thread, driven
 * by curl_multi_socket_action from uv_poll_t watchers and one uv_timer_t (the pattern of
 * curl's multi-uv example), fed by a cross-thread request queue (see http_client.h). */
#include "connectors/http_client.h"

#include <sluice/error.h>

#include <curl/curl.h>
#include <uv.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"

#define FREE_XFERS_MAX 1024
#define BODY_KEEP_BYTES (256 * 1024) /* a recycled transfer keeps a body buffer up to this */

/* One request and the curl easy handle that runs it; recycled with both. */
typedef struct xfer_s {
    struct xfer_s *next, *prev; /* queue/free list (next only) or the active list */
    sl_http_client_t *c;
    sl_http_cb cb;
    void *arg;
    CURL *easy; /* created on the loop thread at first use, kept while recycled */
    char *url;
    size_t url_cap;
    char *body;
    size_t len, cap;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

/* A socket curl asked us to watch. */
typedef struct sock_s {
    uv_poll_t poll;
    curl_socket_t fd;
    sl_http_client_t *c;
} sock_t;

struct sl_http_client_s {
    sl_http_options_t opts;
    uv_thread_t thread;
    /* Guarded by `mu`. */
    uv_mutex_t mu;
    xfer_t *in_head, *in_tail; /* requests not yet seen by the loop */
    xfer_t *free_xfers;
    uint32_t nfree;
    bool closing;
    /* Loop thread only. */
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer; /* curl's timeout */
    CURLM *multi;
    xfer_t *active; /* added to the multi handle, not finished */
    uint32_t nactive;
    xfer_t *pend_head, *pend_tail; /* accepted, waiting for a free slot (FIFO) */
    bool shutting_down;
    char errbuf[CURL_ERROR_SIZE + 256];
};

static uv_once_t curl_once = UV_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is not thread-safe in every libcurl build; run it once, never clean up. */
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- Transfers ---- */

static xfer_t *xfer_get(sl_http_client_t *c) {
    uv_mutex_lock(&c->mu);
    xfer_t *x = c->free_xfers;
    if (x != NULL) {
        c->free_xfers = x->next;
        c->nfree--;
    }
    uv_mutex_unlock(&c->mu);
    if (x == NULL && (x = sl_calloc(1, sizeof *x)) != NULL)
        x->c = c;
    return x;
}

static void xfer_free(xfer_t *x) {
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    sl_free(x->url);
    sl_free(x->body);
    sl_free(x);
}

static void xfer_put(sl_http_client_t *c, xfer_t *x) {
    if (x->cap > BODY_KEEP_BYTES) {
        sl_free(x->body);
        x->body = NULL;
        x->cap = 0;
    }
    uv_mutex_lock(&c->mu);
    if (c->nfree < FREE_XFERS_MAX) {
        x->next = c->free_xfers;
        c->free_xfers = x;
        c->nfree++;
        x = NULL;
    }
    uv_mutex_unlock(&c->mu);
    if (x != NULL)
        xfer_free(x);
}

static int xfer_set_url(xfer_t *x, const char *url) {
    size_t n = strlen(url) + 1;
    if (n > x->url_cap) {
        char *u = sl_realloc(x->url, n);
        if (u == NULL)
            return SL_ENOMEM;
        x->url = u;
        x->url_cap = n;
    }
    memcpy(x->url, url, n);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
    xfer_t *x = userp;
    size_t n = size * nmemb;
    size_t max = x->c->opts.max_body_bytes;
    if (x->len + n > max) {
        x->too_big = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap != 0 ? x->cap : 4096;
        while (cap < x->len + n + 1)
            cap *= 2;
        char *b = sl_realloc(x->body, cap);
        if (b == NULL)
            return 0;
        x->body = b;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    return n;
}

static void active_add(sl_http_client_t *c, xfer_t *x) {
    c->nactive++;
    x->prev = NULL;
    x->next = c->active;
    if (c->active != NULL)
        c->active->prev = x;
    c->active = x;
}

static void active_remove(sl_http_client_t *c, xfer_t *x) {
    c->nactive--;
    if (x->prev != NULL)
        x->prev->next = x->next;
    else
        c->active = x->next;
    if (x->next != NULL)
        x->next->prev = x->prev;
}

/* ---- Completion (loop thread) ---- */

static void fail(sl_http_client_t *c, xfer_t *x, int status, const char *why) {
    snprintf(c->errbuf, sizeof c->errbuf, "http GET %s: %s", x->url, why);
    x->cb(x->arg, status, 0, NULL, 0, c->errbuf);
    xfer_put(c, x);
}

static int map_curl_error(const xfer_t *x, CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return SL_ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return SL_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return SL_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return SL_EINVAL;
    case CURLE_WRITE_ERROR:
        return x->too_big ? SL_ERANGE : SL_ENOMEM;
    default:
        return SL_EIO;
    }
}

static void finish(sl_http_client_t *c, xfer_t *x, CURLcode rc) {
    curl_multi_remove_handle(c->multi, x->easy);
    active_remove(c, x);
    if (rc != CURLE_OK) {
        char why[CURL_ERROR_SIZE + 64];
        if (x->too_big)
            snprintf(why, sizeof why, "body larger than %zu bytes", c->opts.max_body_bytes);
        else
            snprintf(why, sizeof why, "%s", x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(rc));
        fail(c, x, map_curl_error(x, rc), why);
        return;
    }
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    static const char empty[1] = "";
    if (x->body != NULL)
        x->body[x->len] = '\0';
    x->cb(x->arg, 0, code, x->body != NULL ? x->body : empty, x->len, NULL);
    xfer_put(c, x);
}

static void pump(sl_http_client_t *c);

static void process_done(sl_http_client_t *c) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        /* m is invalid once the handle is removed: copy what finish needs first. */
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        finish(c, (xfer_t *)priv, rc);
    }
    pump(c);
}

/* ---- curl <-> libuv (loop thread) ---- */

static void socket_action(sl_http_client_t *c, curl_socket_t fd, int flags) {
    int running;
    CURLMcode rc = curl_multi_socket_action(c->multi, fd, flags, &running);
    if (rc != CURLM_OK)
        SL_WARN("http: curl_multi_socket_action: %s", curl_multi_strerror(rc));
    process_done(c);
}

static void on_poll(uv_poll_t *h, int status, int events) {
    sock_t *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(s->c, s->fd, flags);
}

static void on_timeout(uv_timer_t *t) { socket_action(t->data, CURL_SOCKET_TIMEOUT, 0); }

static void sock_closed(uv_handle_t *h) { sl_free(h->data); }

static sock_t *sock_new(sl_http_client_t *c, curl_socket_t fd) {
    sock_t *s = sl_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    int rc = uv_poll_init_socket(&c->loop, &s->poll, fd);
    if (rc < 0) {
        SL_WARN("http: uv_poll_init_socket(%d): %s", (int)fd, uv_strerror(rc));
        sl_free(s);
        return NULL;
    }
    s->fd = fd;
    s->c = c;
    s->poll.data = s;
    curl_multi_assign(c->multi, fd, s);
    return s;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    sl_http_client_t *c = userp;
    sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            /* curl closes the socket after this returns; the handle must stop watching now. */
            uv_close((uv_handle_t *)&s->poll, sock_closed);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL && (s = sock_new(c, fd)) == NULL)
        return -1;
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    int rc = uv_poll_start(&s->poll, events, on_poll);
    if (rc < 0) {
        SL_WARN("http: uv_poll_start(%d): %s", (int)fd, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
    sl_http_client_t *c = userp;
    /* Never call into curl from here: a 0 ms timer runs on the next loop iteration. */
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- Requests (loop thread) ---- */

/* Options that never change for a transfer, set once per easy handle. */
static int easy_init(sl_http_client_t *c, xfer_t *x) {
    x->easy = curl_easy_init();
    if (x->easy == NULL)
        return SL_ENOMEM;
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->opts.request_timeout_ms);
    return 0;
}

static void start(sl_http_client_t *c, xfer_t *x) {
    if (x->easy == NULL && easy_init(c, x) < 0) {
        fail(c, x, SL_ENOMEM, "cannot create a curl handle");
        return;
    }
    x->len = 0;
    x->too_big = false;
    x->errbuf[0] = '\0';
    if (curl_easy_setopt(x->easy, CURLOPT_URL, x->url) != CURLE_OK) {
        fail(c, x, SL_ENOMEM, "cannot set the URL");
        return;
    }
    CURLMcode rc = curl_multi_add_handle(c->multi, x->easy);
    if (rc != CURLM_OK) {
        fail(c, x, SL_EIO, curl_multi_strerror(rc));
        return;
    }
    active_add(c, x);
}

/* Hands waiting requests to curl while fewer than max_connections run. More would only wait
 * inside curl, whose per-handle cost grows with the number of handles it holds (in curl 7.88
 * curl_multi_remove_handle walks them all), so the queue stays ours. */
static void pump(sl_http_client_t *c) {
    while (c->nactive < c->opts.max_connections && c->pend_head != NULL && !c->shutting_down) {
        xfer_t *x = c->pend_head;
        c->pend_head = x->next;
        if (c->pend_head == NULL)
            c->pend_tail = NULL;
        start(c, x);
    }
}

static void cancel(sl_http_client_t *c, xfer_t *x) { fail(c, x, SL_ECANCELED, "client closed"); }

static void close_handle(uv_handle_t *h, void *arg) {
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_POLL ? sock_closed : NULL);
}

/* Completes everything with SL_ECANCELED, closes curl's connections and every handle. */
static void shutdown_loop(sl_http_client_t *c, xfer_t *batch) {
    c->shutting_down = true;
    while (batch != NULL) {
        xfer_t *next = batch->next;
        cancel(c, batch);
        batch = next;
    }
    while (c->pend_head != NULL) {
        xfer_t *x = c->pend_head;
        c->pend_head = x->next;
        cancel(c, x);
    }
    c->pend_tail = NULL;
    while (c->active != NULL) {
        xfer_t *x = c->active;
        curl_multi_remove_handle(c->multi, x->easy);
        active_remove(c, x);
        cancel(c, x);
    }
    /* Closes cached connections; curl reports their sockets removed through on_socket. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    /* The async handle, the timer and any socket curl did not report removed. */
    uv_walk(&c->loop, close_handle, NULL);
}

static void on_wake(uv_async_t *h) {
    sl_http_client_t *c = h->data;
    uv_mutex_lock(&c->mu);
    xfer_t *batch = c->in_head, *tail = c->in_tail;
    c->in_head = c->in_tail = NULL;
    bool closing = c->closing;
    uv_mutex_unlock(&c->mu);
    if (closing) {
        shutdown_loop(c, batch);
        return;
    }
    if (batch == NULL)
        return;
    if (c->pend_tail != NULL)
        c->pend_tail->next = batch;
    else
        c->pend_head = batch;
    c->pend_tail = tail;
    pump(c);
}

static void loop_main(void *arg) {
    sl_http_client_t *c = arg;
    /* With CURLOPT_NOSIGNAL curl leaves SIGPIPE alone, and TLS writes may raise it. Blocked in
     * this thread, it stays pending here and the write fails with EPIPE instead. */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&c->loop);
    SL_ASSERT(rc == 0);
}

/* ---- Public API ---- */

sl_http_options_t sl_http_options_default(void) {
    sl_http_options_t o = {.max_connections = 64, .connect_timeout_ms = 2000, .request_timeout_ms = 0,
                           .max_body_bytes = 16u << 20};
    return o;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int multi_init(sl_http_client_t *c) {
    c->multi = curl_multi_init();
    if (c->multi == NULL)
        return SL_ENOMEM;
    long n = (long)c->opts.max_connections;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, n);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, n);
    /* Keep as many idle connections as may be open, so keep-alive survives bursts. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, n);
    return 0;
}

/* Loop, handles and multi handle, on the caller's thread before the loop thread exists. */
static int loop_init(sl_http_client_t *c) {
    int rc = uv_loop_init(&c->loop);
    if (rc < 0)
        return rc;
    if ((rc = uv_async_init(&c->loop, &c->wake, on_wake)) < 0) {
        uv_loop_close(&c->loop);
        return rc;
    }
    uv_timer_init(&c->loop, &c->timer);
    c->wake.data = c->timer.data = c;
    if ((rc = multi_init(c)) < 0) {
        uv_close((uv_handle_t *)&c->wake, NULL);
        uv_close((uv_handle_t *)&c->timer, NULL);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
    }
    return rc;
}

static void client_free(sl_http_client_t *c) {
    xfer_t *x;
    while ((x = c->free_xfers) != NULL) {
        c->free_xfers = x->next;
        xfer_free(x);
    }
    uv_mutex_destroy(&c->mu);
    sl_free(c);
}

int sl_http_client_open(const sl_http_options_t *opts, sl_http_client_t **out, char *err, size_t errlen) {
    *out = NULL;
    sl_http_options_t o = opts != NULL ? *opts : sl_http_options_default();
    if (o.max_connections == 0 || o.connect_timeout_ms <= 0 || o.request_timeout_ms < 0 || o.max_body_bytes == 0) {
        set_err(err, errlen, "http client: invalid options");
        return SL_EINVAL;
    }
    uv_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        set_err(err, errlen, "http client: curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return SL_EIO;
    }
    sl_http_client_t *c = sl_calloc(1, sizeof *c);
    if (c == NULL)
        return SL_ENOMEM;
    c->opts = o;
    int rc = uv_mutex_init(&c->mu);
    if (rc < 0) {
        sl_free(c);
        return rc;
    }
    if ((rc = loop_init(c)) < 0) {
        set_err(err, errlen, "http client: cannot create its loop: %s", sl_strerror(rc));
        client_free(c);
        return rc;
    }
    if ((rc = uv_thread_create(&c->thread, loop_main, c)) < 0) {
        set_err(err, errlen, "http client: cannot start its thread: %s", uv_strerror(rc));
        uv_mutex_lock(&c->mu);
        c->closing = true;
        uv_mutex_unlock(&c->mu);
        /* Nothing is queued: shutting down on this thread only closes the handles. */
        shutdown_loop(c, NULL);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
        client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int sl_http_client_get(sl_http_client_t *c, const char *url, sl_http_cb cb, void *arg) {
    if (url == NULL || cb == NULL)
        return SL_EINVAL;
    xfer_t *x = xfer_get(c);
    if (x == NULL)
        return SL_ENOMEM;
    if (xfer_set_url(x, url) < 0) {
        xfer_put(c, x);
        return SL_ENOMEM;
    }
    x->cb = cb;
    x->arg = arg;
    x->next = NULL;
    uv_mutex_lock(&c->mu);
    bool closing = c->closing;
    bool was_empty = c->in_head == NULL;
    if (!closing) {
        if (c->in_tail != NULL)
            c->in_tail->next = x;
        else
            c->in_head = x;
        c->in_tail = x;
    }
    uv_mutex_unlock(&c->mu);
    if (closing) {
        xfer_put(c, x);
        return SL_ECANCELED;
    }
    /* A non-empty queue already has a wakeup on its way: the loop drains the queue whole. */
    if (was_empty)
        uv_async_send(&c->wake);
    return 0;
}

void sl_http_client_close(sl_http_client_t *c) {
    if (c == NULL)
        return;
    uv_thread_t self = uv_thread_self();
    SL_ASSERT(!uv_thread_equal(&self, &c->thread));
    uv_mutex_lock(&c->mu);
    c->closing = true;
    uv_mutex_unlock(&c->mu);
    uv_async_send(&c->wake);
    uv_thread_join(&c->thread);
    client_free(c);
}
