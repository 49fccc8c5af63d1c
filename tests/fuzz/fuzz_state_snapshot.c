/* Fuzz target: the portable keyed-state snapshot decoder (a checkpoint file read at restore).
 * Any input must give 0 or SL_EPARSE with a message, never a crash or an overread; the state
 * restored from an accepted input must snapshot again without error. */
#include <sluice/error.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/keyed_state.h"
#include "state/snapshot.h"
#include "state/timer_service.h"

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "fuzz_state_snapshot: check failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static int discard(void *arg, const void *p, size_t n) {
    *(size_t *)arg += n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sl_keyed_backend_t *b;
    sl_timer_service_t *t;
    if (sl_heap_backend_create(128, 0, 63, &b) != 0)
        return 0;
    if (sl_timer_service_create(&t) != 0) {
        sl_keyed_backend_destroy(b);
        return 0;
    }
    uint8_t *copy = malloc(size ? size : 1); /* exactly `size` bytes: overreads are caught */
    memcpy(copy, data, size);
    char err[512] = "";
    int rc = sl_state_snapshot_restore(b, t, copy, size, 0, 63, err, sizeof err);
    if (rc != 0) {
        CHECK(rc == SL_EPARSE || rc == SL_EINVAL || rc == SL_ENOMEM || rc == SL_ERANGE);
        CHECK(err[0] != '\0' || rc != SL_EPARSE);
    } else {
        size_t n = 0;
        CHECK(sl_state_snapshot_write(b, t, discard, &n) == 0);
        CHECK(n >= 13);
    }
    free(copy);
    sl_timer_service_destroy(t);
    sl_keyed_backend_destroy(b);
    return 0;
}
