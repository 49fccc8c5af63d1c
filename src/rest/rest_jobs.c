/* REST routes about the cluster and its jobs, shaped like Flink's:
 *   GET   /overview              TaskManagers, free slots, jobs by state
 *   GET   /jobs                  {"jobs": [{"id", "status"}]}
 *   GET   /jobs/overview         {"jobs": [job details]}
 *   GET   /jobs/:id              job details (jid, name, state, times, duration)
 *   GET   /jobs/:id/exceptions   why it failed
 *   PATCH /jobs/:id[?mode=cancel] cancels it (202)
 * and the savepoint routes of rest_savepoints.c under /jobs/:id. */
#include "rest/rest_internal.h"

#include <sluice/error.h>

#include <microhttpd.h>
#include <string.h>

#include "core/alloc.h"
#include "core/mailbox.h"
#include "rpc/message.h"

static const char *state_name(int s) {
    static const char *const names[] = {"CREATED",    "RUNNING",  "FAILING",  "FAILED",
                                        "CANCELLING", "CANCELED", "FINISHED", "RESTARTING"};
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : "UNKNOWN";
}

static bool is_terminal(int s) {
    return s == SLUICE__RPC__JOB_STATE__JOB_FAILED || s == SLUICE__RPC__JOB_STATE__JOB_CANCELED ||
           s == SLUICE__RPC__JOB_STATE__JOB_FINISHED;
}

static json_t *job_details(const sl_job_info_t *j, int64_t now) {
    bool ended = is_terminal(j->state) && j->end_ms > 0;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "jid", j->id, "name", j->name, "state",
                          state_name(j->state), "start-time", (json_int_t)j->start_ms, "end-time",
                          (json_int_t)(ended ? j->end_ms : -1), "duration",
                          (json_int_t)((ended ? j->end_ms : now) - j->start_ms), "now", (json_int_t)now);
    if (o && j->error[0])
        json_object_set_new(o, "failure-cause", json_string(j->error));
    return o;
}

static void list_jobs(sl_rest_t *r, bool details, sl_rest_reply_t *out) {
    sl_job_info_t *v;
    size_t n;
    if (sl_dispatcher_jobs(r->dispatcher, &v, &n) != 0) {
        sl_rest_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    int64_t now = sl_wall_ms();
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, details ? job_details(&v[i], now)
                                         : json_pack("{s:s, s:s}", "id", v[i].id, "status", state_name(v[i].state)));
    sl_free(v);
    out->status = MHD_HTTP_OK;
    out->body = json_pack("{s:o}", "jobs", a);
}

static void overview(sl_rest_t *r, sl_rest_reply_t *out) {
    sl_job_info_t *v;
    size_t n;
    if (sl_dispatcher_jobs(r->dispatcher, &v, &n) != 0) {
        sl_rest_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    json_int_t running = 0, finished = 0, canceled = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        int s = v[i].state;
        finished += s == SLUICE__RPC__JOB_STATE__JOB_FINISHED;
        canceled += s == SLUICE__RPC__JOB_STATE__JOB_CANCELED;
        failed += s == SLUICE__RPC__JOB_STATE__JOB_FAILED;
        running += !is_terminal(s);
    }
    sl_free(v);
    sl_rm_stats_t st = sl_rm_service_stats(sl_jobmanager_rm(r->jm));
    out->status = MHD_HTTP_OK;
    out->body = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "sluice-version", "0.1.0", "taskmanagers",
                          (json_int_t)st.registered, "slots-available", (json_int_t)st.free_slots,
                          "taskmanagers-lost", (json_int_t)st.lost, "jobs-running", running, "jobs-finished",
                          finished, "jobs-cancelled", canceled, "jobs-failed", failed);
}

static void cancel_job(sl_rest_t *r, const sl_rest_req_t *q, const char *id, sl_rest_reply_t *out) {
    const char *mode = MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, "mode");
    if (mode && strcmp(mode, "cancel") != 0) {
        sl_rest_error(out, MHD_HTTP_BAD_REQUEST, "mode '%s' is not supported: use mode=cancel (or "
                      "`sluice stop` for stop-with-savepoint)", mode);
        return;
    }
    if (!r->cancel_enabled) {
        sl_rest_error(out, MHD_HTTP_FORBIDDEN, "cancelling through REST is off (web.cancel.enable=false)");
        return;
    }
    sl_job_info_t j;
    if (sl_dispatcher_job(r->dispatcher, id, &j) != 0) {
        sl_rest_error(out, MHD_HTTP_NOT_FOUND, "no such job: %s", id);
        return;
    }
    if (is_terminal(j.state)) {
        sl_rest_error(out, MHD_HTTP_CONFLICT, "job %s is already %s", id, state_name(j.state));
        return;
    }
    sl_dispatcher_cancel(r->dispatcher, id);
    out->status = MHD_HTTP_ACCEPTED;
    out->body = json_object();
}

static void one_job(sl_rest_t *r, const sl_rest_req_t *q, const char *rest, sl_rest_reply_t *out) {
    char id[128];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0 || n >= sizeof id) {
        sl_rest_error(out, MHD_HTTP_NOT_FOUND, "not found: %s", q->path);
        return;
    }
    memcpy(id, rest, n);
    id[n] = '\0';
    const char *sub = slash ? slash : "";
    if (sl_rest_savepoints_route(r, q, id, sub, out))
        return;
    if (strcmp(sub, "") == 0 && strcmp(q->method, "PATCH") == 0) {
        cancel_job(r, q, id, out);
        return;
    }
    if ((strcmp(sub, "") != 0 && strcmp(sub, "/exceptions") != 0)) {
        sl_rest_error(out, MHD_HTTP_NOT_FOUND, "not found: %s", q->path);
        return;
    }
    if (strcmp(q->method, "GET") != 0) {
        sl_rest_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s %s: use GET%s", q->method, q->path,
                      sub[0] ? "" : " (or PATCH to cancel)");
        return;
    }
    sl_job_info_t j;
    if (sl_dispatcher_job(r->dispatcher, id, &j) != 0) {
        sl_rest_error(out, MHD_HTTP_NOT_FOUND, "no such job: %s", id);
        return;
    }
    out->status = MHD_HTTP_OK;
    if (sub[0] == '\0')
        out->body = job_details(&j, sl_wall_ms());
    else if (j.error[0])
        out->body = json_pack("{s:s, s:I}", "root-exception", j.error, "timestamp", (json_int_t)j.end_ms);
    else
        out->body = json_pack("{s:n}", "root-exception");
}

bool sl_rest_jobs_route(sl_rest_t *r, const sl_rest_req_t *q, sl_rest_reply_t *out) {
    bool get = strcmp(q->method, "GET") == 0;
    if (strcmp(q->path, "/overview") == 0 || strcmp(q->path, "/jobs") == 0 ||
        strcmp(q->path, "/jobs/overview") == 0) {
        if (!get)
            sl_rest_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s %s: use GET", q->method, q->path);
        else if (strcmp(q->path, "/overview") == 0)
            overview(r, out);
        else
            list_jobs(r, strcmp(q->path, "/jobs/overview") == 0, out);
        return true;
    }
    if (strncmp(q->path, "/jobs/", 6) == 0) {
        one_job(r, q, q->path + 6, out);
        return true;
    }
    return false;
}
