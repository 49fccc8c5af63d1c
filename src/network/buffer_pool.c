/* Network buffer pools and the TaskManager network memory budget (see buffer_pool.h). */
#include "network/buffer_pool.h"

#include <sluice/error.h>

#include <string.h>

#include "core/alloc.h"

int sl_network_memory_init(sl_network_memory_t *nm, uint64_t total_bytes, uint32_t segment_size) {
    if (segment_size == 0 || total_bytes < segment_size)
        return SL_EINVAL;
    memset(nm, 0, sizeof *nm);
    if (pthread_mutex_init(&nm->mu, NULL) != 0)
        return SL_ENOMEM;
    nm->segment_size = segment_size;
    nm->total_segments = total_bytes / segment_size;
    return 0;
}

void sl_network_memory_destroy(sl_network_memory_t *nm) { pthread_mutex_destroy(&nm->mu); }

static int reserve(sl_network_memory_t *nm, uint32_t n) {
    int rc = 0;
    pthread_mutex_lock(&nm->mu);
    if (nm->reserved_segments + n > nm->total_segments)
        rc = SL_ENOBUFS;
    else
        nm->reserved_segments += n;
    pthread_mutex_unlock(&nm->mu);
    return rc;
}

static void unreserve(sl_network_memory_t *nm, uint32_t n) {
    pthread_mutex_lock(&nm->mu);
    nm->reserved_segments -= n;
    pthread_mutex_unlock(&nm->mu);
}

int sl_buffer_pool_create(sl_network_memory_t *nm, uint32_t n, sl_buffer_pool_t **out) {
    if (n == 0)
        return SL_EINVAL;
    int rc = reserve(nm, n);
    if (rc)
        return rc;
    sl_buffer_pool_t *p = sl_calloc(1, sizeof *p);
    if (p == NULL)
        goto oom;
    p->buffers = sl_calloc(n, sizeof *p->buffers);
    p->memory = sl_malloc((size_t)n * nm->segment_size);
    if (p->buffers == NULL || p->memory == NULL || pthread_mutex_init(&p->mu, NULL) != 0)
        goto oom;
    p->budget = nm;
    p->nbuffers = n;
    for (uint32_t i = 0; i < n; i++) {
        sl_buffer_t *b = &p->buffers[i];
        b->data = p->memory + (size_t)i * nm->segment_size;
        b->cap = nm->segment_size;
        b->pool = p;
        b->next_free = p->free_list;
        p->free_list = b;
    }
    p->nfree = n;
    *out = p;
    return 0;
oom:
    if (p) {
        sl_free(p->buffers);
        sl_free(p->memory);
        sl_free(p);
    }
    unreserve(nm, n);
    return SL_ENOMEM;
}

void sl_buffer_pool_destroy(sl_buffer_pool_t *p) {
    if (p == NULL)
        return;
    unreserve(p->budget, p->nbuffers);
    pthread_mutex_destroy(&p->mu);
    sl_free(p->buffers);
    sl_free(p->memory);
    sl_free(p);
}

sl_buffer_t *sl_buffer_pool_request(sl_buffer_pool_t *p) {
    pthread_mutex_lock(&p->mu);
    sl_buffer_t *b = p->free_list;
    if (b) {
        p->free_list = b->next_free;
        p->nfree--;
    }
    pthread_mutex_unlock(&p->mu);
    if (b)
        b->len = 0;
    return b;
}

void sl_buffer_recycle(sl_buffer_t *b) {
    sl_buffer_pool_t *p = b->pool;
    pthread_mutex_lock(&p->mu);
    b->next_free = p->free_list;
    p->free_list = b;
    p->nfree++;
    pthread_mutex_unlock(&p->mu);
}
