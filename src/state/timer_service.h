/* Timer service: event-time and processing-time timers scoped by (key, namespace).
 *
 * A timer is (timestamp, key, key group, namespace); registering the same timer twice keeps
 * one. Timers fire in timestamp order; equal timestamps fire in registration order, so a
 * run is deterministic. Kept per subtask, used only by its thread. */
#ifndef SL_STATE_TIMER_SERVICE_H
#define SL_STATE_TIMER_SERVICE_H

#include <stdint.h>

typedef enum { SL_TIMER_EVENT = 0, SL_TIMER_PROC = 1 } sl_timer_domain_t;

typedef struct sl_timer_s {
    int64_t ts;
    const uint8_t *key; /* borrowed until the next call on the service */
    uint32_t key_len;
    uint32_t key_group;
    const uint8_t *ns;
    uint32_t ns_len;
} sl_timer_t;

typedef struct sl_timer_service_s sl_timer_service_t;

int sl_timer_service_create(sl_timer_service_t **out);
void sl_timer_service_destroy(sl_timer_service_t *s);

/* Registers a timer; a duplicate of a pending one is ignored. Errors: SL_ENOMEM. */
int sl_timer_register(sl_timer_service_t *s, sl_timer_domain_t d, int64_t ts, const void *key,
                      uint32_t key_len, uint32_t key_group, const void *ns, uint32_t ns_len);
/* Deletes a pending timer; absent is not an error. */
int sl_timer_delete(sl_timer_service_t *s, sl_timer_domain_t d, int64_t ts, const void *key,
                    uint32_t key_len, uint32_t key_group, const void *ns, uint32_t ns_len);
/* Pops the earliest timer of domain `d` whose timestamp is <= `upto` into *t.
 * Returns 1 when one was popped, 0 when none is due. *t is valid until the next call. */
int sl_timer_pop(sl_timer_service_t *s, sl_timer_domain_t d, int64_t upto, sl_timer_t *t);
/* Timestamp of the earliest pending timer of domain `d`, or INT64_MAX. */
int64_t sl_timer_next(const sl_timer_service_t *s, sl_timer_domain_t d);
/* Visits the pending timers of domain `d` in firing order (for snapshots). */
typedef int (*sl_timer_visit_cb)(void *arg, const sl_timer_t *t);
int sl_timer_for_each(const sl_timer_service_t *s, sl_timer_domain_t d, sl_timer_visit_cb cb, void *arg);

/* Number of pending timers of domain `d`. */
uint64_t sl_timer_count(const sl_timer_service_t *s, sl_timer_domain_t d);

#endif
