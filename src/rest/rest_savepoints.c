/* REST routes for savepoints, as Flink's asynchronous operations:
 *   POST /jobs/:id/savepoints  {"target-directory", "cancel-job"} -> 202 {"request-id"}
 *   POST /jobs/:id/stop        {"targetDirectory", "drain": false} -> 202 {"request-id"}
 *   GET  /jobs/:id/savepoints/:request-id -> {"status": {"id": "IN_PROGRESS" | "COMPLETED"},
 *                                            "operation": {"location"} | {"failure-cause"}}
 * A trigger record is shared by the table here and the JobMaster's completion callback (a
 * reference each), so neither outliving the other frees it under the other's feet. */
#include "rest/rest_internal.h"

#include <sluice/error.h>

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/alloc.h"
#include "rest/run_request.h"

#define MAX_TRIGGERS 128 /* finished ones beyond this are forgotten, oldest first */

/* Global, not the server's: a JobMaster may complete a request after the server stopped. */
static pthread_mutex_t sl_rest_triggers_mu = PTHREAD_MUTEX_INITIALIZER;

struct sl_rest_trigger_s {
    char id[33];
    char job[64];
    atomic_int refs;
    bool done;        /* under the table's mutex */
    int status;
    char result[1024];
    struct sl_rest_trigger_s *next;
};

static void unref(sl_rest_trigger_t *t) {
    if (atomic_fetch_sub(&t->refs, 1) == 1)
        sl_free(t);
}

static void on_done(void *arg, int status, const char *path_or_error) {
    sl_rest_trigger_t *t = arg;
    pthread_mutex_lock(&sl_rest_triggers_mu);
    t->done = true;
    t->status = status;
    snprintf(t->result, sizeof t->result, "%s", path_or_error ? path_or_error : "");
    pthread_mutex_unlock(&sl_rest_triggers_mu);
    unref(t);
}

/* Under the mutex: forgets finished requests beyond the newest MAX_TRIGGERS. */
static void trim(sl_rest_t *r) {
    size_t i = 0;
    for (sl_rest_trigger_t **pp = &r->triggers; *pp; i++) {
        sl_rest_trigger_t *t = *pp;
        if (i >= MAX_TRIGGERS && t->done) {
            *pp = t->next;
            unref(t);
        } else {
            pp = &t->next;
        }
    }
}

static void trigger(sl_rest_t *r, const sl_rest_req_t *q, const char *job, bool stop_form, sl_rest_reply_t *out) {
    char dir[1024], err[512] = "";
    bool stop;
    if (sl_rest_savepoint_request_parse(q->body, q->body_len, stop_form, dir, sizeof dir, &stop, err, sizeof err)) {
        sl_rest_error(out, MHD_HTTP_BAD_REQUEST, "%s", err);
        return;
    }
    if (dir[0] == '\0')
        snprintf(dir, sizeof dir, "%s", r->savepoints_dir);
    if (dir[0] == '\0') {
        sl_rest_error(out, MHD_HTTP_BAD_REQUEST, "no %s given and no state.savepoints.dir configured",
                      stop_form ? "targetDirectory" : "target-directory");
        return;
    }
    if (stop && !r->cancel_enabled) {
        sl_rest_error(out, MHD_HTTP_FORBIDDEN, "stopping jobs through REST is off (web.cancel.enable=false)");
        return;
    }
    sl_rest_trigger_t *t = sl_calloc(1, sizeof *t);
    if (t == NULL) {
        sl_rest_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    uint8_t b[16] = {0};
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        snprintf((char *)b, sizeof b, "%p", (void *)t);
    for (int i = 0; i < 16; i++)
        snprintf(t->id + 2 * i, 3, "%02x", b[i]);
    snprintf(t->job, sizeof t->job, "%s", job);
    atomic_init(&t->refs, 2); /* the table's and the callback's */
    pthread_mutex_lock(&sl_rest_triggers_mu);
    t->next = r->triggers;
    r->triggers = t;
    trim(r);
    pthread_mutex_unlock(&sl_rest_triggers_mu);
    if (sl_dispatcher_savepoint(r->dispatcher, job, dir, stop, on_done, t) != 0) {
        on_done(t, SL_ENOENT, "no such job");
        sl_rest_error(out, MHD_HTTP_NOT_FOUND, "no such job: %s", job);
        return;
    }
    out->status = MHD_HTTP_ACCEPTED;
    out->body = json_pack("{s:s}", "request-id", t->id);
}

static void status_of(sl_rest_t *r, const char *job, const char *id, sl_rest_reply_t *out) {
    pthread_mutex_lock(&sl_rest_triggers_mu);
    sl_rest_trigger_t *t = r->triggers;
    while (t && (strcmp(t->id, id) != 0 || strcmp(t->job, job) != 0))
        t = t->next;
    if (t == NULL)
        sl_rest_error(out, MHD_HTTP_NOT_FOUND, "no savepoint request %s for job %s", id, job);
    else if (!t->done)
        out->body = json_pack("{s:{s:s}}", "status", "id", "IN_PROGRESS");
    else if (t->status == 0)
        out->body = json_pack("{s:{s:s}, s:{s:s}}", "status", "id", "COMPLETED", "operation", "location", t->result);
    else
        out->body = json_pack("{s:{s:s}, s:{s:{s:s, s:s}}}", "status", "id", "COMPLETED", "operation",
                              "failure-cause", "class", sl_err_name(t->status), "stack-trace", t->result);
    pthread_mutex_unlock(&sl_rest_triggers_mu);
    if (out->status == 0)
        out->status = MHD_HTTP_OK;
}

bool sl_rest_savepoints_route(sl_rest_t *r, const sl_rest_req_t *q, const char *job, const char *sub,
                              sl_rest_reply_t *out) {
    bool post = strcmp(q->method, "POST") == 0;
    if (strcmp(sub, "/savepoints") == 0 || strcmp(sub, "/stop") == 0) {
        if (post)
            trigger(r, q, job, sub[1] == 's' && sub[2] == 't', out);
        else
            sl_rest_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s %s: use POST", q->method, q->path);
        return true;
    }
    if (strncmp(sub, "/savepoints/", 12) == 0 && strchr(sub + 12, '/') == NULL) {
        if (strcmp(q->method, "GET") == 0)
            status_of(r, job, sub + 12, out);
        else
            sl_rest_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s %s: use GET", q->method, q->path);
        return true;
    }
    return false;
}

void sl_rest_savepoints_cleanup(sl_rest_t *r) {
    pthread_mutex_lock(&sl_rest_triggers_mu);
    sl_rest_trigger_t *t = r->triggers;
    r->triggers = NULL;
    pthread_mutex_unlock(&sl_rest_triggers_mu);
    while (t) {
        sl_rest_trigger_t *n = t->next;
        unref(t); /* a callback still to come holds its own reference */
        t = n;
    }
}
