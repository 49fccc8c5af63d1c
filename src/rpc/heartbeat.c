/* The heartbeat manager (heartbeat.h) and the endpoint's built-in answer to heartbeat
 * requests. Everything here runs on the endpoint's loop thread; the public functions marshal
 * onto it with sl__rpc_run_sync.
 *
 * DESIGN. One repeating timer per manager. On each tick every target without an outstanding
 * heartbeat gets a new one, whose call timeout is the heartbeat timeout, so at most one
 * request per target is in flight. A target's `last_ok` moves on each answer; a tick that
 * finds now - last_ok >= timeout reports the target lost. A target whose call is still in
 * flight when it is removed is freed by that call's callback, which always comes (response,
 * timeout or connection close). */
#include "rpc/heartbeat.h"

#include <string.h>

#include <sluice/error.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "rpc/rpc_internal.h"

typedef struct target_s {
    struct target_s *next;
    struct sl_heartbeat_s *hb; /* NULL once the manager is gone */
    char *peer_id;
    sl_rpc_conn_t *conn; /* a reference */
    uint64_t last_ok;    /* uv_now of the last answer (or of monitor) */
    int inflight;
    int reported;
    int removed;
} target_t;

struct sl_heartbeat_s {
    sl_rpc_endpoint_t *ep;
    sl_heartbeat_config_t cfg;
    uv_timer_t timer;
    int timer_open;
    int destroying; /* the timer's close callback frees the manager */
    target_t *targets;
    struct sl_heartbeat_s *next, *prev; /* ep->heartbeats */
};

static void free_target(target_t *t) {
    sl_rpc_conn_unref(t->conn);
    sl_free(t->peer_id);
    sl_free(t);
}

/* ---- monitoring side ---- */

static void hb_response(int status, sl_rpc_msg_t *resp, void *arg) {
    target_t *t = arg;
    t->inflight = 0;
    if (t->removed || !t->hb) {
        free_target(t);
    } else if (status == 0 && resp->body_case == SLUICE__RPC__ENVELOPE__BODY_HEARTBEAT) {
        t->last_ok = uv_now(&t->hb->ep->loop);
        t->reported = 0;
        if (t->hb->cfg.on_payload)
            t->hb->cfg.on_payload(t->hb->cfg.arg, t->peer_id, resp->heartbeat->payload.data,
                                  resp->heartbeat->payload.len);
    }
    sl_rpc_msg_free(resp);
}

static void send_heartbeat(sl_heartbeat_t *hb, target_t *t) {
    Sluice__Rpc__Heartbeat body = SLUICE__RPC__HEARTBEAT__INIT;
    body.sender_id = hb->ep->id;
    body.timestamp_ms = sl_wall_ms();
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &body;
    /* A failure here (endpoint stopping, no memory) just counts as a missed heartbeat. */
    if (sl_rpc_call(t->conn, &env, hb->cfg.timeout_ms, hb_response, t) == 0)
        t->inflight = 1;
}

static void tick(uv_timer_t *timer) {
    sl_heartbeat_t *hb = timer->data;
    uint64_t now = uv_now(&hb->ep->loop);
    for (target_t *t = hb->targets; t; t = t->next) {
        if (!t->inflight)
            send_heartbeat(hb, t);
        if (!t->reported && now - t->last_ok >= hb->cfg.timeout_ms) {
            t->reported = 1;
            SL_WARN("rpc heartbeat: %s at %s missed heartbeats for %u ms", t->peer_id,
                    sl_rpc_conn_peer_addr(t->conn), hb->cfg.timeout_ms);
            hb->cfg.on_lost(hb->cfg.arg, t->peer_id, sl_rpc_conn_peer_addr(t->conn));
        }
    }
}

/* ---- create ---- */

static void create_on_loop(void *arg) {
    sl_heartbeat_t *hb = arg;
    sl_rpc_endpoint_t *ep = hb->ep;
    uv_timer_init(&ep->loop, &hb->timer);
    hb->timer.data = hb;
    hb->timer_open = 1;
    uv_timer_start(&hb->timer, tick, hb->cfg.interval_ms, hb->cfg.interval_ms);
    hb->next = ep->heartbeats;
    if (ep->heartbeats)
        ep->heartbeats->prev = hb;
    ep->heartbeats = hb;
}

int sl_heartbeat_create(sl_rpc_endpoint_t *ep, const sl_heartbeat_config_t *cfg, sl_heartbeat_t **out) {
    sl_heartbeat_config_t c = *cfg;
    if (!c.interval_ms)
        c.interval_ms = 10000;
    if (!c.timeout_ms)
        c.timeout_ms = 50000;
    if (c.timeout_ms < c.interval_ms || !c.on_lost)
        return SL_EINVAL;
    sl_heartbeat_t *hb = sl_calloc(1, sizeof *hb);
    if (!hb)
        return SL_ENOMEM;
    hb->ep = ep;
    hb->cfg = c;
    int rc = sl__rpc_run_sync(ep, create_on_loop, hb);
    if (rc < 0) {
        sl_free(hb);
        return rc;
    }
    *out = hb;
    return 0;
}

/* ---- targets ---- */

typedef struct {
    sl_heartbeat_t *hb;
    target_t *t;
    const char *peer_id;
    int rc;
} target_args_t;

static target_t **find(sl_heartbeat_t *hb, const char *peer_id) {
    target_t **p = &hb->targets;
    while (*p && strcmp((*p)->peer_id, peer_id) != 0)
        p = &(*p)->next;
    return p;
}

static void monitor_on_loop(void *arg) {
    target_args_t *a = arg;
    if (*find(a->hb, a->t->peer_id)) {
        a->rc = SL_EEXIST;
        return;
    }
    a->t->hb = a->hb;
    a->t->last_ok = uv_now(&a->hb->ep->loop);
    a->t->next = a->hb->targets;
    a->hb->targets = a->t;
    a->rc = 0;
}

int sl_heartbeat_monitor(sl_heartbeat_t *hb, const char *peer_id, sl_rpc_conn_t *conn) {
    target_t *t = sl_calloc(1, sizeof *t);
    if (!t || !(t->peer_id = sl_strdup(peer_id))) {
        sl_free(t);
        return SL_ENOMEM;
    }
    t->conn = conn;
    sl_rpc_conn_ref(conn);
    target_args_t a = {hb, t, peer_id, 0};
    int rc = sl__rpc_run_sync(hb->ep, monitor_on_loop, &a);
    if (rc == 0)
        rc = a.rc;
    if (rc < 0)
        free_target(t);
    return rc;
}

/* Unlinks a target; frees it unless its heartbeat is in flight (hb_response will). */
static void drop_target(target_t **link) {
    target_t *t = *link;
    *link = t->next;
    t->removed = 1;
    t->hb = NULL;
    if (!t->inflight)
        free_target(t);
}

static void unmonitor_on_loop(void *arg) {
    target_args_t *a = arg;
    target_t **link = find(a->hb, a->peer_id);
    if (!*link) {
        a->rc = SL_ENOENT;
        return;
    }
    drop_target(link);
    a->rc = 0;
}

int sl_heartbeat_unmonitor(sl_heartbeat_t *hb, const char *peer_id) {
    target_args_t a = {hb, NULL, peer_id, 0};
    int rc = sl__rpc_run_sync(hb->ep, unmonitor_on_loop, &a);
    return rc < 0 ? rc : a.rc;
}

/* ---- stop and destroy ---- */

static void unlink_hb(sl_heartbeat_t *hb) {
    if (hb->prev)
        hb->prev->next = hb->next;
    else if (hb->ep->heartbeats == hb)
        hb->ep->heartbeats = hb->next;
    if (hb->next)
        hb->next->prev = hb->prev;
    hb->next = hb->prev = NULL;
}

static void timer_closed(uv_handle_t *h) {
    sl_heartbeat_t *hb = h->data;
    hb->timer_open = 0;
    if (hb->destroying)
        sl_free(hb);
}

static void destroy_on_loop(void *arg) {
    sl_heartbeat_t *hb = arg;
    unlink_hb(hb);
    while (hb->targets)
        drop_target(&hb->targets);
    hb->destroying = 1;
    if (hb->timer_open)
        uv_close((uv_handle_t *)&hb->timer, timer_closed);
    else
        sl_free(hb);
}

void sl__heartbeat_stop_all(sl_rpc_endpoint_t *ep) {
    while (ep->heartbeats) {
        sl_heartbeat_t *hb = ep->heartbeats;
        unlink_hb(hb);
        uv_close((uv_handle_t *)&hb->timer, timer_closed);
    }
}

void sl_heartbeat_destroy(sl_heartbeat_t *hb) {
    if (!hb)
        return;
    if (sl__rpc_run_sync(hb->ep, destroy_on_loop, hb) == 0)
        return;
    /* The endpoint stopped: its loop is gone, every call has ended and the timer is closed. */
    while (hb->targets)
        drop_target(&hb->targets);
    sl_free(hb);
}

/* ---- answering side ---- */

void sl__heartbeat_answer(sl_rpc_endpoint_t *ep, sl_rpc_request_t *req) {
    Sluice__Rpc__Heartbeat body = SLUICE__RPC__HEARTBEAT__INIT;
    body.sender_id = ep->id;
    body.timestamp_ms = sl_wall_ms();
    uint8_t *payload = NULL;
    size_t len = 0;
    if (ep->cfg.heartbeat_payload)
        ep->cfg.heartbeat_payload(ep->cfg.heartbeat_payload_arg, &payload, &len);
    body.payload.data = payload;
    body.payload.len = payload ? len : 0;
    sl_rpc_msg_t env = SLUICE__RPC__ENVELOPE__INIT;
    env.body_case = SLUICE__RPC__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &body;
    int rc = sl_rpc_reply(req, &env);
    if (rc < 0)
        SL_DEBUG("rpc endpoint %s: heartbeat answer not sent: %s", ep->id, sl_strerror(rc));
    sl_free(payload);
}
