/* A JobMaster's SlotPool: the slots one job asked the ResourceManager for, accepted as the
 * TaskManagers offer them, and given back when the job ends.
 *
 * DESIGN
 * A pool wants N slots (slot sharing: one slot hosts one subtask of every vertex, so a job
 * needs as many slots as its largest parallelism). It files N requests with the
 * ResourceManager under fresh allocation ids; offers for those ids are accepted, any other is
 * declined (a stale offer after a restart, say). The owner waits until all N arrived or the
 * pool failed: a request timed out, or a TaskManager holding one of its slots was lost. */
#ifndef SL_JOBMASTER_SLOT_POOL_H
#define SL_JOBMASTER_SLOT_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "resourcemanager/rm_service.h"
#include "rpc/rpc.h"

typedef struct sl_slot_s {
    char allocation_id[64];
    char tm_id[64];
    uint32_t slot_index;
    int offered;              /* 1 once the TaskManager offered it */
} sl_slot_t;

typedef struct sl_slot_pool_s sl_slot_pool_t;

/* Requests `n` slots for `job_id`. Errors: SL_EINVAL, SL_ENOMEM, the ResourceManager's. */
int sl_slot_pool_create(sl_rm_service_t *rm, const char *job_id, uint32_t n, sl_slot_pool_t **out);
/* Loop thread: an OfferSlots for this pool's job; answers it with the accepted ids. */
void sl_slot_pool_offer(sl_slot_pool_t *p, sl_rpc_request_t *req, const Sluice__Rpc__OfferSlots *m);
/* A TaskManager was lost: the pool fails if it held one of its slots. */
void sl_slot_pool_tm_lost(sl_slot_pool_t *p, const char *tm_id, const char *addr);
/* Waits until every slot was offered (0) or the pool failed or `timeout_ms` passed (an error
 * with the reason in err). */
int sl_slot_pool_wait(sl_slot_pool_t *p, int64_t timeout_ms, char *err, size_t errlen);
/* The pool's slots (borrowed; valid until destroy). */
uint32_t sl_slot_pool_slots(sl_slot_pool_t *p, const sl_slot_t **slots);
const char *sl_slot_pool_job(const sl_slot_pool_t *p);
/* Gives every slot back (FreeSlot), cancels what is still requested, frees the pool. */
void sl_slot_pool_destroy(sl_slot_pool_t *p);

#endif
