/* REST routes for job libraries ("jars", as Flink's clients call them):
 *   POST   /jars/upload     multipart field "jarfile" (or a raw body with ?filename=NAME)
 *   GET    /jars            {"files": [{"id", "name", "uploaded", "size"}]}
 *   DELETE /jars/:id
 *   POST   /jars/:id/run    {"programArgsList": [...], "parallelism": N, "savepointPath": DIR,
 *                            "configuration": {"key": "value"}} -> {"jobid": ...}
 * A run builds the job in this process (sluice_job_main of the library) and submits it to the
 * Dispatcher with the library's bytes, exactly as `sluice run --jobmanager` would. */
#include "rest/rest_internal.h"

#include <sluice/error.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/job_library.h"
#include "core/alloc.h"
#include "core/bytes.h"
#include "core/config.h"
#include "core/log.h"
#include "core/orphan_dirs.h"
#include "graph/job_package.h"
#include "rest/run_request.h"

/* ---- Storage ---- */

static void random_hex(char *out, size_t nbytes) {
    uint8_t b[32];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) /* never on Linux >= 3.17 for <= 256 bytes */
        for (size_t i = 0; i < nbytes; i++)
            b[i] = (uint8_t)rand();
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int sl_rest_jars_init(sl_rest_t *r, const sl_config_t *config, char *err, size_t errlen) {
    const char *dir = sl_config_str(config, "web.upload.dir");
    if (dir && dir[0]) {
        snprintf(r->upload_dir, sizeof r->upload_dir, "%s", dir);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "web.upload.dir %s: %s", dir, strerror(errno));
            return SL_EIO;
        }
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    tmp = tmp && tmp[0] ? tmp : "/tmp";
    sl_remove_orphan_dirs(tmp, "sluice-web-"); /* of JobManagers killed with SIGKILL */
    char hex[17];
    random_hex(hex, 8);
    snprintf(r->upload_dir, sizeof r->upload_dir, "%s/sluice-web-%ld-%s", tmp, (long)getpid(), hex);
    if (mkdir(r->upload_dir, 0700) != 0) {
        snprintf(err, errlen, "cannot create the upload directory %s: %s", r->upload_dir, strerror(errno));
        return SL_EIO;
    }
    r->own_upload_dir = true;
    return 0;
}

void sl_rest_jars_cleanup(sl_rest_t *r) {
    if (!r->own_upload_dir)
        return;
    DIR *d = opendir(r->upload_dir);
    struct dirent *e;
    char p[4400];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", r->upload_dir, e->d_name);
        if (unlink(p) != 0)
            SL_WARN("REST: cannot remove %s: %s", p, strerror(errno));
    }
    if (d)
        closedir(d);
    if (rmdir(r->upload_dir) != 0)
        SL_WARN("REST: cannot remove the upload directory %s: %s", r->upload_dir, strerror(errno));
}

int sl_rest_jars_stage(sl_rest_t *r, char *path, size_t pathlen, int *fd) {
    char hex[17];
    random_hex(hex, 8);
    snprintf(path, pathlen, "%s/.upload-%s", r->upload_dir, hex);
    *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (*fd < 0) {
        path[0] = '\0';
        return SL_EIO;
    }
    return 0;
}

/* An id names a file of the upload directory: no path separators, no hidden (staged) files. */
static bool valid_id(const char *id) {
    return id[0] && id[0] != '.' && strchr(id, '/') == NULL && strlen(id) < 256;
}

/* ---- Upload ---- */

static bool has_elf_header(const char *path, off_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char magic[4] = {0};
    struct stat st;
    bool ok = fd >= 0 && fstat(fd, &st) == 0 && read(fd, magic, 4) == 4 && memcmp(magic, "\177ELF", 4) == 0;
    *size = fd >= 0 && fstat(fd, &st) == 0 ? st.st_size : 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The client's file name, reduced to what is safe in a path: letters, digits, '.', '-', '_'. */
static void safe_name(const char *given, char *out, size_t cap) {
    const char *base = strrchr(given, '/');
    base = base ? base + 1 : given;
    size_t k = 0;
    for (const char *p = base; *p && k + 1 < cap && k < 100; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '-' || c == '_';
        out[k++] = ok ? c : '_';
    }
    out[k] = '\0';
    if (k == 0 || out[0] == '.')
        snprintf(out, cap, "job.so");
}

static void upload(sl_rest_t *r, const sl_rest_req_t *q, sl_rest_reply_t *out) {
    off_t size = 0;
    if (!has_elf_header(q->upload_path, &size)) {
        if (size == 0)
            sl_rest_error(out, MHD_HTTP_BAD_REQUEST, "no job library in the request: send it as the multipart "
                          "field 'jarfile' or as the body with ?filename=NAME");
        else
            sl_rest_error(out, MHD_HTTP_BAD_REQUEST, "'%s' is not a shared library (no ELF header)",
                          q->upload_name[0] ? q->upload_name : "the upload");
        return;
    }
    char name[128], hex[17], id[160], path[4400];
    safe_name(q->upload_name, name, sizeof name);
    random_hex(hex, 8);
    snprintf(id, sizeof id, "%s_%s", hex, name);
    snprintf(path, sizeof path, "%s/%s", r->upload_dir, id);
    if (rename(q->upload_path, path) != 0) {
        sl_rest_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store the upload as %s: %s", path, strerror(errno));
        return;
    }
    SL_INFO("REST: job library %s uploaded (%lld bytes)", id, (long long)size);
    out->status = MHD_HTTP_OK;
    out->body = json_pack("{s:s, s:s, s:s}", "filename", path, "id", id, "status", "success");
}

static void list_jars(sl_rest_t *r, sl_rest_reply_t *out) {
    DIR *d = opendir(r->upload_dir);
    if (d == NULL) {
        sl_rest_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot list %s: %s", r->upload_dir, strerror(errno));
        return;
    }
    json_t *files = json_array();
    struct dirent *e;
    char p[4400];
    while (files && (e = readdir(d)) != NULL) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", r->upload_dir, e->d_name);
        if (!valid_id(e->d_name) || stat(p, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        const char *us = strchr(e->d_name, '_');
        json_array_append_new(files, json_pack("{s:s, s:s, s:I, s:I}", "id", e->d_name, "name",
                                               us ? us + 1 : e->d_name, "uploaded",
                                               (json_int_t)st.st_mtime * 1000, "size", (json_int_t)st.st_size));
    }
    closedir(d);
    out->status = MHD_HTTP_OK;
    out->body = json_pack("{s:o}", "files", files);
}

/* ---- Run ---- */

static int read_library(const char *path, sl_bytes_t *b, char *err, size_t errlen) {
    sl_bytes_init(b);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %.900s: %s", path, strerror(errno));
        return SL_EIO;
    }
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && b->len <= sl_rest_max_upload())
        sl_bytes_put(b, buf, n);
    int rc = ferror(f) ? SL_EIO : b->err ? SL_ENOMEM : b->len > sl_rest_max_upload() ? SL_EINVAL : 0;
    if (rc)
        snprintf(err, errlen, "cannot read %.900s: %s", path, rc == SL_EIO ? strerror(errno) : sl_strerror(rc));
    fclose(f);
    return rc;
}

/* Builds the job in this process and submits it; one at a time (user code, global symbols). */
static int build_and_submit(sl_rest_t *r, const char *path, const char *name, sl_rest_run_request_t *a, sl_config_t *c,
                            char *job_id, size_t idlen, char *err, size_t errlen) {
    sl_job_t *job = NULL;
    sl_bytes_t config_lines = {0}, lib = {0};
    uint8_t *graph = NULL;
    size_t graph_len = 0;
    void *handle = NULL;
    pthread_mutex_lock(&r->run_mu);
    int rc = sl_job_create(name, &job);
    if (rc == 0) {
        rc = sl_job_build_from_library(job, path, a->argc, a->argv, err, errlen);
        handle = sl_job_library_handle(job);
    }
    if (rc == 0)
        rc = sl_job_package(job, c, &graph, &graph_len, &config_lines, err, errlen);
    if (rc == 0)
        rc = read_library(path, &lib, err, errlen);
    if (rc == 0) {
        sl_job_submission_t s = {.graph = graph,
                                 .graph_len = graph_len,
                                 .config = config_lines.data,
                                 .config_len = config_lines.len,
                                 .library = lib.data,
                                 .library_len = lib.len};
        rc = sl_dispatcher_submit(r->dispatcher, &s, job_id, idlen, err, errlen);
    }
    sl_job_destroy(job);
    sl_job_close_library(handle);
    pthread_mutex_unlock(&r->run_mu);
    sl_free(graph);
    sl_bytes_destroy(&config_lines);
    sl_bytes_destroy(&lib);
    return rc;
}

static void run_jar(sl_rest_t *r, const sl_rest_req_t *q, const char *id, sl_rest_reply_t *out) {
    char path[4400], name[256], job_id[64], err[1024] = "";
    snprintf(path, sizeof path, "%s/%s", r->upload_dir, id);
    if (access(path, R_OK) != 0) {
        sl_rest_error(out, MHD_HTTP_NOT_FOUND, "no such jar: %s (upload it first: POST /v1/jars/upload)", id);
        return;
    }
    sl_config_t *c = NULL;
    if (sl_config_create(&c) != 0) {
        sl_rest_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    sl_rest_run_request_t a;
    int rc = sl_rest_run_request_parse(q->body, q->body_len, path, c, &a, err, sizeof err);
    if (rc) {
        sl_rest_error(out, rc == SL_ENOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_BAD_REQUEST, "%s", err);
    } else {
        const char *us = strchr(id, '_');
        snprintf(name, sizeof name, "%s", us ? us + 1 : id);
        char *dot = strrchr(name, '.');
        if (dot && strcmp(dot, ".so") == 0)
            *dot = '\0';
        rc = build_and_submit(r, path, name, &a, c, job_id, sizeof job_id, err, sizeof err);
        if (rc) {
            sl_rest_error(out, rc == SL_ENOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_BAD_REQUEST, "%s", err);
        } else {
            SL_INFO("REST: job %s submitted from %s", job_id, id);
            out->status = MHD_HTTP_OK;
            out->body = json_pack("{s:s}", "jobid", job_id);
        }
    }
    sl_rest_run_request_free(&a);
    sl_config_destroy(c);
}

bool sl_rest_jars_route(sl_rest_t *r, const sl_rest_req_t *q, sl_rest_reply_t *out) {
    if (strcmp(q->path, "/jars") != 0 && strncmp(q->path, "/jars/", 6) != 0)
        return false;
    bool get = strcmp(q->method, "GET") == 0, post = strcmp(q->method, "POST") == 0;
    if (!r->submit_enabled && !get) {
        sl_rest_error(out, MHD_HTTP_FORBIDDEN, "job submission through REST is off (web.submit.enable=false)");
        return true;
    }
    if (strcmp(q->path, "/jars") == 0) {
        if (get)
            list_jars(r, out);
        else
            sl_rest_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s /jars: use GET", q->method);
        return true;
    }
    if (strcmp(q->path, "/jars/upload") == 0) {
        if (post)
            upload(r, q, out);
        else
            sl_rest_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s /jars/upload: use POST", q->method);
        return true;
    }
    char id[256];
    const char *rest = q->path + 6, *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    snprintf(id, sizeof id, "%.*s", (int)(n < sizeof id ? n : sizeof id - 1), rest);
    if (!valid_id(id) || n >= sizeof id || (slash && strcmp(slash, "/run") != 0)) {
        sl_rest_error(out, MHD_HTTP_NOT_FOUND, "not found: %s", q->path);
        return true;
    }
    if (slash && post) {
        run_jar(r, q, id, out);
    } else if (!slash && strcmp(q->method, "DELETE") == 0) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", r->upload_dir, id);
        if (unlink(path) != 0) {
            sl_rest_error(out, errno == ENOENT ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "cannot delete jar %s: %s", id, errno == ENOENT ? "no such jar" : strerror(errno));
        } else {
            out->status = MHD_HTTP_OK;
            out->body = json_object();
        }
    } else {
        sl_rest_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "%s %s: use %s", q->method, q->path,
                      slash ? "POST" : "DELETE");
    }
    return true;
}
