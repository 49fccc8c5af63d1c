/* Building a job from a job library (see job_library.h). */
#include "api/job_library.h"

#include <sluice/error.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/job_internal.h"
#include "core/alloc.h"

int sl_job_build_from_library(sl_job_t *job, const char *path, int argc, char **argv, char *err, size_t errlen) {
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "cannot read job library '%s': %s", path, strerror(errno));
        return SL_ENOENT;
    }
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        snprintf(err, errlen, "cannot load job library '%s': %s", path, dlerror());
        return SL_EINVAL;
    }
    sl_job_main_fn entry;
    void *sym = dlsym(lib, SL_JOB_MAIN_SYMBOL);
    if (sym == NULL) {
        snprintf(err, errlen, "job library '%s' has no entry point '%s' (define int %s(sl_job_t *, int, char **))",
                 path, SL_JOB_MAIN_SYMBOL, SL_JOB_MAIN_SYMBOL);
        dlclose(lib);
        return SL_EINVAL;
    }
    memcpy(&entry, &sym, sizeof entry); /* POSIX: a dlsym result may be a function pointer */
    job->user_lib = lib;
    /* The graph names the library: a cluster submission ships these bytes with the job. */
    char abs[PATH_MAX];
    if (job->graph.library == NULL && realpath(path, abs) != NULL)
        job->graph.library = sl_strdup(abs);
    int rc = entry(job, argc, argv);
    if (sl_job_error(job)) {
        snprintf(err, errlen, "invalid job: %s", sl_job_error(job));
        return SL_EJOB;
    }
    if (rc) {
        snprintf(err, errlen, "%s of '%s' returned %s", SL_JOB_MAIN_SYMBOL, path, sl_err_name(rc));
        return SL_EJOB;
    }
    return 0;
}

void sl_job_close_library(void *handle) {
    if (handle)
        dlclose(handle);
}

void *sl_job_library_handle(const sl_job_t *job) { return job->user_lib; }
