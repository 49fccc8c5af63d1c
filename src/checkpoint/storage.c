/* Directory-based checkpoint storage (see storage.h for the layout and the atomic-write protocol).
 * Plain POSIX file calls; every failure is turned into an SL_E* code plus a message that names
 * the path, because the operator reading it usually has nothing else to go on. */
#include "checkpoint/storage.h"

#include <sluice/error.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checksum.h"
#include "core/alloc.h"

#define IO_CHUNK (128 * 1024)

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int os_code(int e) {
    switch (e) {
    case ENOENT: return SL_ENOENT;
    case EEXIST: return SL_EEXIST;
    case ENOMEM: return SL_ENOMEM;
    default: return SL_EIO;
    }
}

/* Reports the current errno as "<what> <path>: <strerror>". */
static int os_fail(char *err, size_t errlen, const char *what, const char *path) {
    int e = errno;
    return fail(err, errlen, os_code(e), "%s %s: %s", what, path, strerror(e));
}

static int oom(char *err, size_t errlen, const char *path) {
    return fail(err, errlen, SL_ENOMEM, "out of memory handling %s", path);
}

static char *path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *p = sl_malloc(la + lb + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

/* A single path component that cannot escape its directory. */
static int safe_component(const char *name) {
    return name != NULL && name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

/* fsync of a directory makes the entries created or renamed in it durable (POSIX leaves that to
 * the application; ext4 and xfs do lose renames without it). */
static int fsync_dir(const char *dir, char *err, size_t errlen) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return os_fail(err, errlen, "cannot open directory", dir);
    int rc = 0;
    if (fsync(fd) != 0)
        rc = os_fail(err, errlen, "cannot fsync directory", dir);
    close(fd);
    return rc;
}

/* The parent directory of `path` ("." when it has none), sl_malloc'd. */
static char *parent_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return sl_strdup(".");
    if (slash == path)
        return sl_strdup("/");
    return sl_strndup(path, (size_t)(slash - path));
}

static int mkdir_one(char *p, char *err, size_t errlen) {
    if (mkdir(p, 0755) == 0) {
        /* A new directory is only durable once its parent's entry is. */
        char *parent = parent_of(p);
        if (parent == NULL)
            return oom(err, errlen, p);
        int rc = fsync_dir(parent, err, errlen);
        sl_free(parent);
        return rc;
    }
    if (errno == EEXIST) {
        struct stat st;
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        return fail(err, errlen, SL_EIO, "cannot create directory %s: a file of that name exists", p);
    }
    return os_fail(err, errlen, "cannot create directory", p);
}

/* mkdir -p: creates every missing component of `path`. */
static int mkdirs(const char *path, char *err, size_t errlen) {
    char *p = sl_strdup(path);
    if (p == NULL)
        return oom(err, errlen, path);
    int rc = 0;
    for (char *s = strchr(p + 1, '/'); rc == 0 && s != NULL; s = strchr(s + 1, '/')) {
        if (s[-1] == '/')
            continue; /* "a//b" */
        *s = '\0';
        rc = mkdir_one(p, err, errlen);
        *s = '/';
    }
    if (rc == 0)
        rc = mkdir_one(p, err, errlen);
    sl_free(p);
    return rc;
}

/* Fills the strings of `s` without touching the file system. */
static int storage_set(sl_ckpt_storage_t *s, const char *root, const char *job_id, char *err, size_t errlen) {
    memset(s, 0, sizeof(*s));
    s->root = sl_strdup(root);
    s->job_id = sl_strdup(job_id);
    s->job_dir = path_join(root, job_id);
    if (s->root == NULL || s->job_id == NULL || s->job_dir == NULL) {
        sl_ckpt_storage_destroy(s);
        return oom(err, errlen, root);
    }
    return 0;
}

int sl_ckpt_storage_init(sl_ckpt_storage_t *s, const char *dir, const char *job_id, char *err, size_t errlen) {
    if (dir == NULL || dir[0] == '\0')
        return fail(err, errlen, SL_EINVAL, "checkpoint directory is empty");
    if (!safe_component(job_id))
        return fail(err, errlen, SL_EINVAL, "invalid job id \"%s\" for checkpoint directory %s: must be one path component",
                    job_id ? job_id : "(null)", dir);
    int rc = storage_set(s, dir, job_id, err, errlen);
    if (rc != 0)
        return rc;
    const char *subdirs[] = {"shared", "taskowned"};
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        char *p = path_join(s->job_dir, subdirs[i]);
        rc = p == NULL ? oom(err, errlen, s->job_dir) : mkdirs(p, err, errlen);
        sl_free(p);
    }
    if (rc != 0)
        sl_ckpt_storage_destroy(s);
    return rc;
}

void sl_ckpt_storage_destroy(sl_ckpt_storage_t *s) {
    if (s == NULL)
        return;
    sl_free(s->root);
    sl_free(s->job_id);
    sl_free(s->job_dir);
    memset(s, 0, sizeof(*s));
}

static int fit(int n, size_t len) { return n < 0 || (size_t)n >= len ? SL_ERANGE : 0; }

int sl_ckpt_dir(const sl_ckpt_storage_t *s, uint64_t id, char *buf, size_t len) {
    return fit(snprintf(buf, len, "%s/chk-%" PRIu64, s->job_dir, id), len);
}

int sl_ckpt_file_path(const sl_ckpt_storage_t *s, uint64_t id, const char *name, char *buf, size_t len) {
    if (!safe_component(name))
        return SL_EINVAL;
    return fit(snprintf(buf, len, "%s/chk-%" PRIu64 "/%s", s->job_dir, id, name), len);
}

int sl_ckpt_metadata_path(const sl_ckpt_storage_t *s, uint64_t id, char *buf, size_t len) {
    return sl_ckpt_file_path(s, id, "_metadata", buf, len);
}

int sl_ckpt_shared_path(const sl_ckpt_storage_t *s, const char *name, char *buf, size_t len) {
    if (!safe_component(name))
        return SL_EINVAL;
    return fit(snprintf(buf, len, "%s/shared/%s", s->job_dir, name), len);
}

int sl_ckpt_taskowned_path(const sl_ckpt_storage_t *s, const char *name, char *buf, size_t len) {
    if (!safe_component(name))
        return SL_EINVAL;
    return fit(snprintf(buf, len, "%s/taskowned/%s", s->job_dir, name), len);
}

/* ---- atomic writer ---- */

static void writer_release(sl_ckpt_writer_t *w) {
    if (w->_fd >= 0)
        close(w->_fd);
    sl_free(w->_path);
    sl_free(w->_tmp);
    sl_free(w->_dir);
    memset(w, 0, sizeof(*w));
    w->_fd = -1;
}

int sl_ckpt_writer_open(sl_ckpt_writer_t *w, const char *path, char *err, size_t errlen) {
    memset(w, 0, sizeof(*w));
    w->_fd = -1;
    w->_path = sl_strdup(path);
    w->_tmp = sl_malloc(strlen(path) + 5);
    w->_dir = parent_of(path);
    int rc = 0;
    if (w->_path == NULL || w->_tmp == NULL || w->_dir == NULL)
        rc = oom(err, errlen, path);
    else
        rc = mkdirs(w->_dir, err, errlen);
    if (rc == 0) {
        sprintf(w->_tmp, "%s.tmp", path);
        w->_fd = open(w->_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (w->_fd < 0)
            rc = os_fail(err, errlen, "cannot create", w->_tmp);
    }
    if (rc != 0)
        writer_release(w);
    return rc;
}

int sl_ckpt_writer_append(sl_ckpt_writer_t *w, const void *data, size_t len, char *err, size_t errlen) {
    const unsigned char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(w->_fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return os_fail(err, errlen, "cannot write", w->_tmp);
        p += n;
        left -= (size_t)n;
    }
    w->_crc = sl_crc32c(w->_crc, data, len);
    w->_size += len;
    return 0;
}

void sl_ckpt_writer_abort(sl_ckpt_writer_t *w) {
    if (w->_tmp != NULL)
        unlink(w->_tmp);
    writer_release(w);
}

int sl_ckpt_writer_close(sl_ckpt_writer_t *w, sl_ckpt_file_info_t *info, char *err, size_t errlen) {
    int rc = 0;
    if (fsync(w->_fd) != 0)
        rc = os_fail(err, errlen, "cannot fsync", w->_tmp);
    int fd = w->_fd;
    w->_fd = -1;
    if (close(fd) != 0 && rc == 0)
        rc = os_fail(err, errlen, "cannot close", w->_tmp);
    if (rc == 0 && rename(w->_tmp, w->_path) != 0)
        rc = os_fail(err, errlen, "cannot rename to", w->_path);
    if (rc != 0) {
        sl_ckpt_writer_abort(w);
        return rc;
    }
    rc = fsync_dir(w->_dir, err, errlen);
    if (rc == 0 && info != NULL) {
        info->size = w->_size;
        info->crc32c = w->_crc;
    }
    writer_release(w);
    return rc;
}

int sl_ckpt_file_write(const char *path, const void *data, size_t len, sl_ckpt_file_info_t *info, char *err,
                       size_t errlen) {
    sl_ckpt_writer_t w;
    int rc = sl_ckpt_writer_open(&w, path, err, errlen);
    if (rc != 0)
        return rc;
    rc = sl_ckpt_writer_append(&w, data, len, err, errlen);
    if (rc != 0) {
        sl_ckpt_writer_abort(&w);
        return rc;
    }
    return sl_ckpt_writer_close(&w, info, err, errlen);
}

/* ---- reading, copying, verifying ---- */

/* Reads all of `fd` (named `path` in messages), feeding each chunk to the writer when `w` is
 * non-NULL, and returns the size and checksum of what was read. */
static int read_all(int fd, const char *path, sl_ckpt_writer_t *w, sl_ckpt_file_info_t *info, char *err,
                    size_t errlen) {
    unsigned char *buf = sl_malloc(IO_CHUNK);
    if (buf == NULL)
        return oom(err, errlen, path);
    sl_ckpt_file_info_t acc = {0, 0};
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, IO_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = os_fail(err, errlen, "cannot read", path);
            break;
        }
        if (n == 0)
            break;
        acc.crc32c = sl_crc32c(acc.crc32c, buf, (size_t)n);
        acc.size += (uint64_t)n;
        if (w != NULL && (rc = sl_ckpt_writer_append(w, buf, (size_t)n, err, errlen)) != 0)
            break;
    }
    sl_free(buf);
    if (rc == 0)
        *info = acc;
    return rc;
}

int sl_ckpt_file_checksum(const char *path, sl_ckpt_file_info_t *info, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return os_fail(err, errlen, "cannot open", path);
    int rc = read_all(fd, path, NULL, info, err, errlen);
    close(fd);
    return rc;
}

int sl_ckpt_file_copy(const char *src, const char *dst, sl_ckpt_file_info_t *info, char *err, size_t errlen) {
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return os_fail(err, errlen, "cannot open copy source", src);
    sl_ckpt_writer_t w;
    int rc = sl_ckpt_writer_open(&w, dst, err, errlen);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    sl_ckpt_file_info_t got;
    rc = read_all(fd, src, &w, &got, err, errlen);
    close(fd);
    if (rc != 0) {
        sl_ckpt_writer_abort(&w);
        return rc;
    }
    return sl_ckpt_writer_close(&w, info, err, errlen);
}

int sl_ckpt_file_verify(const char *path, uint64_t expected_size, uint32_t expected_crc, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return fail(err, errlen, SL_ENOENT, "checkpoint file missing: %s", path);
        return os_fail(err, errlen, "cannot open", path);
    }
    /* The size check comes first: it is free and catches truncation without reading the file. */
    struct stat st;
    int rc = 0;
    sl_ckpt_file_info_t got = {0, 0};
    if (fstat(fd, &st) != 0)
        rc = os_fail(err, errlen, "cannot stat", path);
    else if ((uint64_t)st.st_size != expected_size)
        rc = fail(err, errlen, SL_EPARSE, "size mismatch in %s: expected %" PRIu64 " bytes, got %" PRIu64, path,
                  expected_size, (uint64_t)st.st_size);
    else
        rc = read_all(fd, path, NULL, &got, err, errlen);
    close(fd);
    if (rc != 0)
        return rc;
    if (got.size != expected_size)
        return fail(err, errlen, SL_EPARSE, "size mismatch in %s: expected %" PRIu64 " bytes, read %" PRIu64, path,
                    expected_size, got.size);
    if (got.crc32c != expected_crc)
        return fail(err, errlen, SL_EPARSE, "checksum mismatch in %s: expected 0x%08" PRIx32 ", got 0x%08" PRIx32,
                    path, expected_crc, got.crc32c);
    return 0;
}

/* ---- listing, discarding, resolving ---- */

/* Parses "chk-<n>" strictly: decimal digits, no sign, no leading zero, no overflow. */
static int parse_chk_name(const char *name, uint64_t *id) {
    if (strncmp(name, "chk-", 4) != 0)
        return 0;
    const char *d = name + 4;
    if (d[0] < '0' || d[0] > '9' || (d[0] == '0' && d[1] != '\0'))
        return 0;
    uint64_t v = 0;
    for (; *d != '\0'; d++) {
        if (*d < '0' || *d > '9' || v > (UINT64_MAX - (uint64_t)(*d - '0')) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*d - '0');
    }
    *id = v;
    return 1;
}

static int has_metadata(const char *chk_dir) {
    char *p = path_join(chk_dir, "_metadata");
    struct stat st;
    int ok = p != NULL && stat(p, &st) == 0 && S_ISREG(st.st_mode);
    sl_free(p);
    return ok;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_dir(const char *job_dir, uint64_t **ids, uint32_t *n, char *err, size_t errlen) {
    *ids = NULL;
    *n = 0;
    DIR *d = opendir(job_dir);
    if (d == NULL)
        return os_fail(err, errlen, "cannot list checkpoints in", job_dir);
    uint64_t *v = NULL;
    uint32_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        uint64_t id;
        if (!parse_chk_name(e->d_name, &id))
            continue;
        char *chk = path_join(job_dir, e->d_name);
        int complete = chk != NULL && has_metadata(chk);
        if (chk == NULL)
            rc = oom(err, errlen, job_dir);
        sl_free(chk);
        if (!complete)
            continue;
        if (cnt == cap) {
            uint64_t *nv = sl_realloc(v, (cap ? cap * 2 : 8) * sizeof(*v));
            if (nv == NULL) {
                rc = oom(err, errlen, job_dir);
                break;
            }
            v = nv;
            cap = cap ? cap * 2 : 8;
        }
        v[cnt++] = id;
    }
    closedir(d);
    if (rc != 0) {
        sl_free(v);
        return rc;
    }
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_u64);
    *ids = v;
    *n = cnt;
    return 0;
}

static int latest_in(const char *job_dir, uint64_t *id, char *err, size_t errlen) {
    uint64_t *ids;
    uint32_t n;
    int rc = list_dir(job_dir, &ids, &n, err, errlen);
    if (rc != 0)
        return rc;
    if (n == 0)
        rc = fail(err, errlen, SL_ENOENT, "no completed checkpoint in %s", job_dir);
    else
        *id = ids[n - 1];
    sl_free(ids);
    return rc;
}

int sl_ckpt_list_completed(const sl_ckpt_storage_t *s, uint64_t **ids, uint32_t *n, char *err, size_t errlen) {
    return list_dir(s->job_dir, ids, n, err, errlen);
}

int sl_ckpt_latest_completed(const sl_ckpt_storage_t *s, uint64_t *id, char *err, size_t errlen) {
    return latest_in(s->job_dir, id, err, errlen);
}

static int remove_children(const char *path, char *err, size_t errlen) {
    DIR *d = opendir(path);
    if (d == NULL)
        return os_fail(err, errlen, "cannot list", path);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *child = path_join(path, e->d_name);
        rc = child == NULL ? oom(err, errlen, path) : sl_ckpt_remove_tree(child, err, errlen);
        sl_free(child);
    }
    closedir(d);
    return rc;
}

int sl_ckpt_remove_tree(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : os_fail(err, errlen, "cannot stat", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return os_fail(err, errlen, "cannot remove", path);
        return 0;
    }
    int rc = remove_children(path, err, errlen);
    if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
        rc = os_fail(err, errlen, "cannot remove directory", path);
    return rc;
}

int sl_ckpt_discard(const sl_ckpt_storage_t *s, uint64_t id, char *err, size_t errlen) {
    char buf[PATH_MAX];
    if (sl_ckpt_metadata_path(s, id, buf, sizeof(buf)) != 0)
        return fail(err, errlen, SL_EINVAL, "checkpoint path too long under %s", s->job_dir);
    if (unlink(buf) != 0 && errno != ENOENT && errno != ENOTDIR)
        return os_fail(err, errlen, "cannot remove", buf);
    sl_ckpt_dir(s, id, buf, sizeof(buf));
    return sl_ckpt_remove_tree(buf, err, errlen);
}

/* Copies `path` without trailing slashes (a lone "/" stays), sl_malloc'd. */
static char *strip_slashes(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    return sl_strndup(path, n);
}

static const char *base_of(const char *p) {
    const char *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

/* Splits the canonical form of `job_dir` into root and job id and initializes `out` from them. */
static int storage_from_job_dir(const char *job_dir, sl_ckpt_storage_t *out, char *err, size_t errlen) {
    char *canon = realpath(job_dir, NULL); /* libc malloc: freed with free() */
    if (canon == NULL)
        return os_fail(err, errlen, "cannot resolve", job_dir);
    char *slash = strrchr(canon, '/');
    int rc;
    if (slash == NULL || !safe_component(slash + 1)) {
        rc = fail(err, errlen, SL_EINVAL, "%s has no job directory component", job_dir);
    } else {
        *slash = '\0';
        rc = storage_set(out, slash == canon ? "/" : canon, slash + 1, err, errlen);
        if (rc == 0 && slash == canon) {
            /* Root "/" would otherwise give "//<job>"; cosmetic but it shows up in every message. */
            sl_free(out->job_dir);
            out->job_dir = path_join("", slash + 1);
            if (out->job_dir == NULL) {
                sl_ckpt_storage_destroy(out);
                rc = oom(err, errlen, job_dir);
            }
        }
    }
    free(canon);
    return rc;
}

/* `p` names a chk-<id> directory: checks it is complete and resolves its parent. */
static int resolve_chk(const char *p, uint64_t id, sl_ckpt_storage_t *out, uint64_t *out_id, char *err,
                       size_t errlen) {
    struct stat st;
    if (stat(p, &st) != 0)
        return os_fail(err, errlen, "cannot restore from", p);
    if (!has_metadata(p))
        return fail(err, errlen, SL_ENOENT, "checkpoint %s is incomplete: no _metadata", p);
    char *job_dir = parent_of(p);
    if (job_dir == NULL)
        return oom(err, errlen, p);
    int rc = storage_from_job_dir(job_dir, out, err, errlen);
    sl_free(job_dir);
    if (rc == 0)
        *out_id = id;
    return rc;
}

static int resolve_job(const char *p, sl_ckpt_storage_t *out, uint64_t *out_id, char *err, size_t errlen) {
    struct stat st;
    if (stat(p, &st) != 0)
        return os_fail(err, errlen, "cannot restore from", p);
    if (!S_ISDIR(st.st_mode))
        return fail(err, errlen, SL_EINVAL, "cannot restore from %s: not a checkpoint or job directory", p);
    uint64_t id = 0;
    int rc = latest_in(p, &id, err, errlen);
    if (rc == 0)
        rc = storage_from_job_dir(p, out, err, errlen);
    if (rc == 0)
        *out_id = id;
    return rc;
}

int sl_ckpt_resolve(const char *path, sl_ckpt_storage_t *out, uint64_t *id, char *err, size_t errlen) {
    if (path == NULL || path[0] == '\0')
        return fail(err, errlen, SL_EINVAL, "empty checkpoint path");
    char *p = strip_slashes(path);
    if (p == NULL)
        return oom(err, errlen, path);
    if (strcmp(base_of(p), "_metadata") == 0) {
        char *dir = parent_of(p);
        sl_free(p);
        if (dir == NULL)
            return oom(err, errlen, path);
        p = dir;
    }
    uint64_t n;
    int rc = parse_chk_name(base_of(p), &n) ? resolve_chk(p, n, out, id, err, errlen)
                                            : resolve_job(p, out, id, err, errlen);
    sl_free(p);
    return rc;
}
