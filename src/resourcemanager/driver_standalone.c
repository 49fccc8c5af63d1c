/* The "standalone" driver: TaskManagers are started by hand and register with the
 * ResourceManager themselves, so this driver owns no workers. Starting one is refused with
 * the command to use instead; stopping is a logged no-op; poll reports nothing. */
#include "resourcemanager/driver_internal.h"

#include <stdio.h>

#include <sluice/error.h>

static int standalone_start(sl_rm_driver_t *d, const sl_rm_profile_t *p, const char *const *argv,
                            const char *const *env, sl_rm_worker_t **out, char *err, size_t errlen) {
    snprintf(err, errlen,
             "standalone: cannot start TaskManagers; start TaskManagers by hand with "
             "`sluice taskmanager --jobmanager HOST:PORT`");
    return SL_EINVAL;
}

static int standalone_poll(sl_rm_driver_t *d, char *err, size_t errlen) {
    return 0;
}

static void standalone_destroy(sl_rm_driver_t *d) {
}

const sl__rm_ops_t sl__rm_standalone_ops = {
    .kind = "standalone",
    .owns_workers = 0,
    .start = standalone_start,
    .stop = NULL, /* owns_workers == 0: driver.c logs and returns */
    .poll = standalone_poll,
    .destroy = standalone_destroy,
};
