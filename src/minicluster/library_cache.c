/* The TaskManager's cache of shipped job libraries (see library_cache.h). */
#include "minicluster/library_cache.h"

#include <sluice/error.h>

#include <dlfcn.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/log.h"
#include "core/mailbox.h"
#include "core/orphan_dirs.h"

struct sl_library_entry_s {
    uint8_t sha256[SL_LIBRARY_SHA256_LEN];
    char path[4200];
    unsigned refs;
    int64_t idle_since_ms; /* when refs dropped to 0 */
    struct sl_library_entry_s *next;
};

struct sl_library_cache_s {
    pthread_mutex_t mu; /* everything below */
    char parent[4096];
    char dir[4150];     /* "" until first use */
    int64_t linger_ms;
    unsigned writes;
    sl_library_entry_t *entries;
};

int sl_library_sha256(const void *data, size_t len, uint8_t out[SL_LIBRARY_SHA256_LEN]) {
    unsigned int n = 0;
    static const uint8_t empty = 0;
    /* OpenSSL fails only when it cannot allocate its context. */
    return EVP_Digest(len ? data : &empty, len, out, &n, EVP_sha256(), NULL) == 1 && n == SL_LIBRARY_SHA256_LEN
               ? 0
               : SL_ENOMEM;
}

int sl_library_cache_create(const char *parent, int64_t linger_ms, sl_library_cache_t **out) {
    sl_library_cache_t *c = sl_calloc(1, sizeof *c);
    if (c == NULL)
        return SL_ENOMEM;
    if (parent == NULL || parent[0] == '\0')
        parent = getenv("TMPDIR");
    snprintf(c->parent, sizeof c->parent, "%s", parent && parent[0] ? parent : "/tmp");
    c->linger_ms = linger_ms;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

static void hex(const uint8_t *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int write_all(int fd, const uint8_t *p, size_t len) {
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : SL_EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Under mu: the library's private file, written from the verified bytes. */
static int write_file(sl_library_cache_t *c, sl_library_entry_t *e, const char *name, const void *bytes, size_t len,
                      char *err, size_t errlen) {
    if (c->dir[0] == '\0') {
        /* TaskManagers killed with SIGKILL could not clean up: their copies go now. */
        sl_remove_orphan_dirs(c->parent, "sluice-tm-");
        char tmpl[sizeof c->dir];
        snprintf(tmpl, sizeof tmpl, "%s/sluice-tm-%ld-XXXXXX", c->parent, (long)getpid());
        if (mkdtemp(tmpl) == NULL) { /* mode 0700 */
            int rc = -errno;
            snprintf(err, errlen, "cannot create a directory for the job library %s in %s: %s", name, c->parent,
                     strerror(-rc));
            return rc;
        }
        memcpy(c->dir, tmpl, sizeof c->dir);
    }
    char h[2 * SL_LIBRARY_SHA256_LEN + 1];
    hex(e->sha256, SL_LIBRARY_SHA256_LEN, h);
    snprintf(e->path, sizeof e->path, "%s/lib-%.16s-XXXXXX.so", c->dir, h);
    int fd = mkstemps(e->path, 3); /* mode 0600 */
    int rc = fd < 0 ? -errno : write_all(fd, bytes, len);
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc) {
        snprintf(err, errlen, "cannot write the job library %s (%zu bytes) to %s: %s", name, len,
                 fd < 0 ? c->dir : e->path, rc == SL_EIO ? "short write" : strerror(-rc));
        if (fd >= 0)
            unlink(e->path);
        return rc;
    }
    c->writes++;
    SL_INFO("taskmanager: job library %s (%zu bytes) written to %s", name, len, e->path);
    return 0;
}

static void remove_entry(sl_library_cache_t *c, sl_library_entry_t **link) {
    sl_library_entry_t *e = *link;
    *link = e->next;
    if (unlink(e->path) != 0)
        SL_WARN("taskmanager: cannot remove the job library file %s: %s", e->path, strerror(errno));
    sl_free(e);
    (void)c;
}

int sl_library_cache_open(sl_library_cache_t *c, const char *name, const void *bytes, size_t len,
                          const uint8_t *sha256, size_t sha256_len, void **handle, sl_library_entry_t **entry,
                          char *err, size_t errlen) {
    if (len > SL_LIBRARY_MAX_BYTES) {
        snprintf(err, errlen, "the job library %s is %zu bytes, above the limit of %u", name, len,
                 SL_LIBRARY_MAX_BYTES);
        return SL_EINVAL;
    }
    if (sha256 == NULL || sha256_len != SL_LIBRARY_SHA256_LEN) {
        snprintf(err, errlen, "the job library %s came without its SHA-256", name);
        return SL_EINVAL;
    }
    pthread_mutex_lock(&c->mu);
    sl_library_entry_t *e = c->entries;
    while (e && memcmp(e->sha256, sha256, SL_LIBRARY_SHA256_LEN) != 0)
        e = e->next;
    int rc = 0;
    if (e == NULL) {
        /* Verified before it is written: a file in the cache holds what its key names. */
        uint8_t got[SL_LIBRARY_SHA256_LEN];
        if ((rc = sl_library_sha256(bytes, len, got)) != 0) {
            snprintf(err, errlen, "cannot check the job library %s: out of memory", name);
        } else if (memcmp(got, sha256, SL_LIBRARY_SHA256_LEN) != 0) {
            char want[2 * SL_LIBRARY_SHA256_LEN + 1], have[2 * SL_LIBRARY_SHA256_LEN + 1];
            hex(sha256, SL_LIBRARY_SHA256_LEN, want);
            hex(got, SL_LIBRARY_SHA256_LEN, have);
            snprintf(err, errlen, "the job library %s arrived damaged: SHA-256 %.16s... instead of %.16s...", name,
                     have, want);
            rc = SL_EPROTO;
        } else if ((e = sl_calloc(1, sizeof *e)) == NULL) {
            rc = SL_ENOMEM;
        } else {
            memcpy(e->sha256, sha256, SL_LIBRARY_SHA256_LEN);
            if ((rc = write_file(c, e, name, bytes, len, err, errlen)) != 0) {
                sl_free(e);
                e = NULL;
            } else {
                e->next = c->entries;
                c->entries = e;
            }
        }
    }
    if (rc == 0) {
        e->refs++; /* before dlopen, so that a failure below can drop it like any close */
        dlerror();
        *handle = dlopen(e->path, RTLD_NOW | RTLD_LOCAL);
        if (*handle == NULL) {
            const char *why = dlerror();
            snprintf(err, errlen, "cannot load the job library %s: %s", name, why ? why : "dlopen failed");
            rc = SL_ESYMBOL;
            if (--e->refs == 0) {
                /* A library that cannot be loaded is not worth keeping. */
                for (sl_library_entry_t **p = &c->entries; *p; p = &(*p)->next)
                    if (*p == e) {
                        remove_entry(c, p);
                        break;
                    }
            }
        } else {
            *entry = e;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void sl_library_cache_close(sl_library_cache_t *c, sl_library_entry_t *e, void *handle) {
    if (handle)
        dlclose(handle);
    pthread_mutex_lock(&c->mu);
    SL_ASSERT(e->refs > 0);
    if (--e->refs == 0) {
        e->idle_since_ms = sl_monotonic_ms();
        if (c->linger_ms <= 0)
            for (sl_library_entry_t **p = &c->entries; *p; p = &(*p)->next)
                if (*p == e) {
                    remove_entry(c, p);
                    break;
                }
    }
    pthread_mutex_unlock(&c->mu);
}

void sl_library_cache_sweep(sl_library_cache_t *c) {
    int64_t now = sl_monotonic_ms();
    pthread_mutex_lock(&c->mu);
    for (sl_library_entry_t **p = &c->entries; *p;)
        if ((*p)->refs == 0 && now - (*p)->idle_since_ms >= c->linger_ms)
            remove_entry(c, p);
        else
            p = &(*p)->next;
    pthread_mutex_unlock(&c->mu);
}

const char *sl_library_entry_path(const sl_library_entry_t *e) { return e->path; }

unsigned sl_library_cache_entries(sl_library_cache_t *c) {
    unsigned n = 0;
    pthread_mutex_lock(&c->mu);
    for (sl_library_entry_t *e = c->entries; e; e = e->next)
        n++;
    pthread_mutex_unlock(&c->mu);
    return n;
}

unsigned sl_library_cache_writes(sl_library_cache_t *c) {
    pthread_mutex_lock(&c->mu);
    unsigned n = c->writes;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void sl_library_cache_dir(sl_library_cache_t *c, char *buf, size_t buflen) {
    pthread_mutex_lock(&c->mu);
    snprintf(buf, buflen, "%s", c->dir);
    pthread_mutex_unlock(&c->mu);
}

void sl_library_cache_destroy(sl_library_cache_t *c) {
    if (c == NULL)
        return;
    while (c->entries) {
        SL_ASSERT(c->entries->refs == 0);
        remove_entry(c, &c->entries);
    }
    if (c->dir[0] && rmdir(c->dir) != 0)
        SL_WARN("taskmanager: cannot remove %s: %s", c->dir, strerror(errno));
    pthread_mutex_destroy(&c->mu);
    sl_free(c);
}
