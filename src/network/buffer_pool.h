/* Network buffers: fixed-size memory segments from a per-TaskManager budget.
 *
 * The TaskManager's network memory (`taskmanager.memory.network.size`) is a hard bound: every
 * result partition reserves its buffers from it when the task is deployed, and deployment
 * fails with SL_ENOBUFS (naming the configuration key) when the budget cannot cover it. A
 * pool never grows after creation, so a running job's network memory is fixed.
 * Buffers go back to their pool with sl_buffer_recycle() from any thread. */
#ifndef SL_NETWORK_BUFFER_POOL_H
#define SL_NETWORK_BUFFER_POOL_H

#include <pthread.h>
#include <stdint.h>

typedef struct sl_buffer_pool_s sl_buffer_pool_t;

typedef struct sl_buffer_s {
    uint8_t *data;
    uint32_t cap;
    uint32_t len;
    sl_buffer_pool_t *pool;
    struct sl_buffer_s *next_free;
} sl_buffer_t;

/* The budget of one TaskManager. Thread-safe. */
typedef struct sl_network_memory_s {
    pthread_mutex_t mu;
    uint64_t total_segments;
    uint64_t reserved_segments;
    uint32_t segment_size;
} sl_network_memory_t;

int sl_network_memory_init(sl_network_memory_t *nm, uint64_t total_bytes, uint32_t segment_size);
void sl_network_memory_destroy(sl_network_memory_t *nm);

struct sl_buffer_pool_s {
    pthread_mutex_t mu;
    sl_buffer_t *free_list;
    uint32_t nfree;
    uint32_t nbuffers;
    sl_buffer_t *buffers;
    uint8_t *memory;
    sl_network_memory_t *budget;
};

/* Reserves `n` segments from `nm` and allocates them. Errors: SL_ENOBUFS, SL_ENOMEM. */
int sl_buffer_pool_create(sl_network_memory_t *nm, uint32_t n, sl_buffer_pool_t **out);
/* Frees the pool and returns its reservation. All buffers must be back. */
void sl_buffer_pool_destroy(sl_buffer_pool_t *p);
/* Takes a free buffer (len reset to 0) or NULL when none is free. Any thread. */
sl_buffer_t *sl_buffer_pool_request(sl_buffer_pool_t *p);
/* Returns a buffer to its pool. Any thread. */
void sl_buffer_recycle(sl_buffer_t *b);

#endif
