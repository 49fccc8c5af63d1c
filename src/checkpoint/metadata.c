/* _metadata encoding, decoding and validation (format table in metadata.h). jansson stays inside
 * this file: callers see plain C structs. Decoding is defensive because the file comes from disk
 * and may be corrupt, truncated, or hand-edited: every field is type- and range-checked and every
 * error names the file and the field. */
#include "checkpoint/metadata.h"

#include <sluice/error.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checksum.h"
#include "core/alloc.h"

/* Guards read(): a _metadata larger than this is certainly not ours. */
#define MAX_METADATA_BYTES (256u * 1024 * 1024)
#define TRAILER_PREFIX "crc32c "
#define TRAILER_LEN (sizeof(TRAILER_PREFIX) - 1 + 8 + 1)

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

static const char *kind_names[] = {"checkpoint", "savepoint"};
static const char *handle_names[] = {"file", "shared", "inline"};

/* ---- building ---- */

int sl_ckpt_metadata_init(sl_ckpt_metadata_t *md, uint64_t checkpoint_id, const char *job_id, uint64_t timestamp_ms,
                          sl_ckpt_kind_t kind, uint32_t max_parallelism) {
    memset(md, 0, sizeof(*md));
    if (job_id == NULL)
        return SL_EINVAL;
    md->job_id = sl_strdup(job_id);
    if (md->job_id == NULL)
        return SL_ENOMEM;
    md->checkpoint_id = checkpoint_id;
    md->timestamp_ms = timestamp_ms;
    md->kind = kind;
    md->max_parallelism = max_parallelism;
    return 0;
}

static void operator_free(sl_ckpt_operator_state_t *op) {
    for (uint32_t j = 0; j < op->n_handles; j++) {
        sl_free(op->handles[j].path);
        sl_free(op->handles[j].data);
    }
    for (uint32_t j = 0; j < op->n_extras; j++) {
        sl_free(op->extras[j].key);
        sl_free(op->extras[j].value);
    }
    sl_free(op->handles);
    sl_free(op->extras);
    sl_free(op->vertex_id);
}

void sl_ckpt_metadata_free(sl_ckpt_metadata_t *md) {
    if (md == NULL)
        return;
    for (uint32_t i = 0; i < md->n_operators; i++)
        operator_free(&md->operators[i]);
    sl_free(md->operators);
    sl_free(md->job_id);
    memset(md, 0, sizeof(*md));
}

/* Grows an array by one element; counts are small, so no capacity bookkeeping. */
static void *grow(void *arr, uint32_t n, size_t elem) { return sl_realloc(arr, ((size_t)n + 1) * elem); }

int sl_ckpt_metadata_add_operator(sl_ckpt_metadata_t *md, const char *vertex_id, uint32_t subtask, uint32_t kg_first,
                                  uint32_t kg_last, sl_ckpt_operator_state_t **out) {
    if (vertex_id == NULL)
        return SL_EINVAL;
    char *v = sl_strdup(vertex_id);
    sl_ckpt_operator_state_t *ops = v ? grow(md->operators, md->n_operators, sizeof(*ops)) : NULL;
    if (ops == NULL) {
        sl_free(v);
        return SL_ENOMEM;
    }
    md->operators = ops;
    sl_ckpt_operator_state_t *op = &ops[md->n_operators++];
    memset(op, 0, sizeof(*op));
    op->vertex_id = v;
    op->subtask = subtask;
    op->kg_first = kg_first;
    op->kg_last = kg_last;
    if (out != NULL)
        *out = op;
    return 0;
}

static int push_handle(sl_ckpt_operator_state_t *op, const sl_ckpt_handle_t *h) {
    sl_ckpt_handle_t *hs = grow(op->handles, op->n_handles, sizeof(*hs));
    if (hs == NULL)
        return SL_ENOMEM;
    op->handles = hs;
    hs[op->n_handles++] = *h;
    return 0;
}

int sl_ckpt_operator_add_file(sl_ckpt_operator_state_t *op, sl_ckpt_handle_kind_t kind, const char *path,
                              const sl_ckpt_file_info_t *info) {
    if (path == NULL || info == NULL || (kind != SL_CKPT_HANDLE_FILE && kind != SL_CKPT_HANDLE_SHARED))
        return SL_EINVAL;
    sl_ckpt_handle_t h = {kind, sl_strdup(path), NULL, info->size, info->crc32c};
    if (h.path == NULL || push_handle(op, &h) != 0) {
        sl_free(h.path);
        return SL_ENOMEM;
    }
    return 0;
}

int sl_ckpt_operator_add_inline(sl_ckpt_operator_state_t *op, const void *data, size_t len) {
    sl_ckpt_handle_t h = {SL_CKPT_HANDLE_INLINE, NULL, sl_malloc(len ? len : 1), len, sl_crc32c(0, data, len)};
    if (h.data == NULL)
        return SL_ENOMEM;
    if (len > 0)
        memcpy(h.data, data, len);
    if (push_handle(op, &h) != 0) {
        sl_free(h.data);
        return SL_ENOMEM;
    }
    return 0;
}

int sl_ckpt_operator_set_extra(sl_ckpt_operator_state_t *op, const char *key, const char *value) {
    if (key == NULL || value == NULL)
        return SL_EINVAL;
    char *v = sl_strdup(value);
    if (v == NULL)
        return SL_ENOMEM;
    for (uint32_t j = 0; j < op->n_extras; j++) {
        if (strcmp(op->extras[j].key, key) == 0) {
            sl_free(op->extras[j].value);
            op->extras[j].value = v;
            return 0;
        }
    }
    char *k = sl_strdup(key);
    sl_ckpt_extra_t *xs = k ? grow(op->extras, op->n_extras, sizeof(*xs)) : NULL;
    if (xs == NULL) {
        sl_free(k);
        sl_free(v);
        return SL_ENOMEM;
    }
    op->extras = xs;
    xs[op->n_extras].key = k;
    xs[op->n_extras++].value = v;
    return 0;
}

const char *sl_ckpt_operator_get_extra(const sl_ckpt_operator_state_t *op, const char *key) {
    for (uint32_t j = 0; j < op->n_extras; j++)
        if (strcmp(op->extras[j].key, key) == 0)
            return op->extras[j].value;
    return NULL;
}

/* ---- semantic validation, shared by write (SL_EINVAL) and read (SL_EPARSE) ---- */

/* A relative path that stays inside the job dir: no leading '/', no empty, "." or ".." component. */
static int safe_relative(const char *p) {
    if (p == NULL || p[0] == '\0' || p[0] == '/')
        return 0;
    for (const char *c = p; c != NULL;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        c = end ? end + 1 : NULL;
    }
    return 1;
}

typedef struct {
    const char *file; /* named in every message */
    const char *verb; /* "invalid" for write, "bad" for read */
    int code;
    char *err;
    size_t errlen;
} ctx_t;

static int field_fail(ctx_t *c, const char *field, const char *what) {
    return fail(c->err, c->errlen, c->code, "%s checkpoint metadata %s: field %s: %s", c->verb, c->file, field, what);
}

static int check_handle(ctx_t *c, const sl_ckpt_handle_t *h, const char *where) {
    char f[96];
    snprintf(f, sizeof(f), "%s.path", where);
    if (h->kind == SL_CKPT_HANDLE_FILE && !safe_relative(h->path))
        return field_fail(c, f, "expected a relative path inside the job directory");
    if (h->kind == SL_CKPT_HANDLE_SHARED && (!safe_relative(h->path) || strchr(h->path, '/') != NULL))
        return field_fail(c, f, "expected a file name under shared/");
    snprintf(f, sizeof(f), "%s.size", where);
    if (h->size > INT64_MAX)
        return field_fail(c, f, "out of range");
    if (h->kind == SL_CKPT_HANDLE_INLINE) {
        snprintf(f, sizeof(f), "%s.crc32c", where);
        if ((h->data == NULL && h->size > 0) || sl_crc32c(0, h->data, h->size) != h->crc32c)
            return field_fail(c, f, "inline data does not match its checksum");
    } else if (h->kind != SL_CKPT_HANDLE_FILE && h->kind != SL_CKPT_HANDLE_SHARED) {
        snprintf(f, sizeof(f), "%s.kind", where);
        return field_fail(c, f, "unknown handle kind");
    }
    return 0;
}

static int check_operator(ctx_t *c, const sl_ckpt_metadata_t *md, uint32_t i) {
    const sl_ckpt_operator_state_t *op = &md->operators[i];
    char f[80];
    snprintf(f, sizeof(f), "operators[%" PRIu32 "].vertex", i);
    if (op->vertex_id == NULL || op->vertex_id[0] == '\0')
        return field_fail(c, f, "expected a non-empty string");
    snprintf(f, sizeof(f), "operators[%" PRIu32 "].key_groups", i);
    if (op->kg_first > op->kg_last || op->kg_last >= md->max_parallelism)
        return field_fail(c, f, "expected first <= last < max_parallelism");
    for (uint32_t j = 0; j < op->n_handles; j++) {
        snprintf(f, sizeof(f), "operators[%" PRIu32 "].handles[%" PRIu32 "]", i, j);
        int rc = check_handle(c, &op->handles[j], f);
        if (rc != 0)
            return rc;
    }
    snprintf(f, sizeof(f), "operators[%" PRIu32 "].finished", i);
    if (op->finished && (op->n_handles || op->n_extras))
        return field_fail(c, f, "a finished subtask has no state (handles and extras must be empty)");
    for (uint32_t j = 0; j < op->n_extras; j++) {
        snprintf(f, sizeof(f), "operators[%" PRIu32 "].extras", i);
        if (op->extras[j].key == NULL || op->extras[j].value == NULL)
            return field_fail(c, f, "NULL key or value");
        for (uint32_t k = 0; k < j; k++)
            if (strcmp(op->extras[k].key, op->extras[j].key) == 0)
                return field_fail(c, f, "duplicate key");
    }
    return 0;
}

static int check_md(ctx_t *c, const sl_ckpt_metadata_t *md) {
    if (md->job_id == NULL)
        return field_fail(c, "job_id", "missing");
    if (md->checkpoint_id > INT64_MAX)
        return field_fail(c, "checkpoint_id", "out of range");
    if (md->timestamp_ms > INT64_MAX)
        return field_fail(c, "timestamp_ms", "out of range");
    if (md->kind != SL_CKPT_KIND_CHECKPOINT && md->kind != SL_CKPT_KIND_SAVEPOINT)
        return field_fail(c, "kind", "unknown kind");
    if (md->max_parallelism < 1 || md->max_parallelism > SL_CKPT_MAX_PARALLELISM_LIMIT)
        return field_fail(c, "max_parallelism", "expected 1..32768");
    for (uint32_t i = 0; i < md->n_operators; i++) {
        int rc = check_operator(c, md, i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- encoding ---- */

static char *hex_encode(const unsigned char *p, uint64_t n) {
    static const char digits[] = "0123456789abcdef";
    char *s = sl_malloc((size_t)n * 2 + 1);
    if (s == NULL)
        return NULL;
    for (uint64_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[n * 2] = '\0';
    return s;
}

static json_t *encode_handle(const sl_ckpt_handle_t *h) {
    json_t *o = json_pack("{s:s, s:I, s:I}", "kind", handle_names[h->kind], "size", (json_int_t)h->size, "crc32c",
                          (json_int_t)h->crc32c);
    if (o == NULL)
        return NULL;
    char *hex = h->kind == SL_CKPT_HANDLE_INLINE ? hex_encode(h->data, h->size) : NULL;
    const char *key = hex ? "data" : "path";
    int bad = (hex == NULL && h->kind == SL_CKPT_HANDLE_INLINE) || json_object_set_new(o, key, json_string(hex ? hex : h->path)) != 0;
    sl_free(hex);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *encode_operator(const sl_ckpt_operator_state_t *op) {
    json_t *handles = json_array(), *extras = json_object();
    for (uint32_t j = 0; handles && j < op->n_handles; j++)
        if (json_array_append_new(handles, encode_handle(&op->handles[j])) != 0)
            goto oom;
    for (uint32_t j = 0; extras && j < op->n_extras; j++)
        if (json_object_set_new(extras, op->extras[j].key, json_string(op->extras[j].value)) != 0)
            goto oom;
    if (handles == NULL || extras == NULL)
        goto oom;
    /* "o" steals the references, also when json_pack fails (jansson >= 2.11 semantics). */
    return json_pack("{s:s, s:I, s:[I,I], s:o, s:o, s:b}", "vertex", op->vertex_id, "subtask",
                     (json_int_t)op->subtask, "key_groups", (json_int_t)op->kg_first, (json_int_t)op->kg_last,
                     "handles", handles, "extras", extras, "finished", op->finished);
oom:
    json_decref(handles);
    json_decref(extras);
    return NULL;
}

static json_t *encode_md(const sl_ckpt_metadata_t *md) {
    json_t *ops = json_array();
    for (uint32_t i = 0; ops && i < md->n_operators; i++) {
        if (json_array_append_new(ops, encode_operator(&md->operators[i])) != 0) {
            json_decref(ops);
            return NULL;
        }
    }
    if (ops == NULL)
        return NULL;
    return json_pack("{s:i, s:I, s:s, s:I, s:s, s:I, s:o}", "version", SL_CKPT_METADATA_VERSION, "checkpoint_id",
                     (json_int_t)md->checkpoint_id, "job_id", md->job_id, "timestamp_ms", (json_int_t)md->timestamp_ms,
                     "kind", kind_names[md->kind], "max_parallelism", (json_int_t)md->max_parallelism, "operators", ops);
}

/* Writes BODY and TRAILER (see the header) through one atomic writer. */
static int write_file(const char *path, const char *json, char *err, size_t errlen) {
    sl_ckpt_writer_t w;
    int rc = sl_ckpt_writer_open(&w, path, err, errlen);
    if (rc != 0)
        return rc;
    size_t n = strlen(json);
    uint32_t crc = sl_crc32c(sl_crc32c(0, json, n), "\n", 1);
    char trailer[TRAILER_LEN + 1];
    snprintf(trailer, sizeof(trailer), TRAILER_PREFIX "%08" PRIx32 "\n", crc);
    if ((rc = sl_ckpt_writer_append(&w, json, n, err, errlen)) != 0 ||
        (rc = sl_ckpt_writer_append(&w, "\n", 1, err, errlen)) != 0 ||
        (rc = sl_ckpt_writer_append(&w, trailer, TRAILER_LEN, err, errlen)) != 0) {
        sl_ckpt_writer_abort(&w);
        return rc;
    }
    return sl_ckpt_writer_close(&w, NULL, err, errlen);
}

int sl_ckpt_metadata_write(const sl_ckpt_storage_t *s, const sl_ckpt_metadata_t *md, char *err, size_t errlen) {
    char path[PATH_MAX];
    if (sl_ckpt_metadata_path(s, md->checkpoint_id, path, sizeof(path)) != 0)
        return fail(err, errlen, SL_EINVAL, "checkpoint path too long under %s", s->job_dir);
    ctx_t c = {path, "invalid", SL_EINVAL, err, errlen};
    int rc = check_md(&c, md);
    if (rc != 0)
        return rc;
    if (strcmp(md->job_id, s->job_id) != 0)
        return fail(err, errlen, SL_EINVAL, "cannot write %s: metadata is for job %s, storage for job %s", path,
                    md->job_id, s->job_id);
    /* A completed checkpoint is immutable: restores may be reading it. Check-then-rename is racy only
     * against a second writer of the same checkpoint, which the coordinator never starts. */
    struct stat st;
    if (stat(path, &st) == 0)
        return fail(err, errlen, SL_EEXIST, "cannot write %s: checkpoint %" PRIu64 " is already complete", path,
                    md->checkpoint_id);
    json_t *root = encode_md(md);
    /* json_dumps allocates with jansson's allocator (libc malloc), hence free() below. */
    char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (text == NULL)
        return fail(err, errlen, SL_ENOMEM, "out of memory encoding %s", path);
    rc = write_file(path, text, err, errlen);
    free(text);
    return rc;
}

/* ---- decoding ---- */

static int read_whole(const char *path, char **out, size_t *len, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return fail(err, errlen, e == ENOENT ? SL_ENOENT : SL_EIO, "cannot open checkpoint metadata %s: %s", path,
                    strerror(e));
    }
    struct stat st;
    int rc = 0;
    char *buf = NULL;
    if (fstat(fd, &st) != 0)
        rc = fail(err, errlen, SL_EIO, "cannot stat %s: %s", path, strerror(errno));
    else if ((uint64_t)st.st_size > MAX_METADATA_BYTES)
        rc = fail(err, errlen, SL_EPARSE, "bad checkpoint metadata %s: %" PRIu64 " bytes is too large", path,
                  (uint64_t)st.st_size);
    else if ((buf = sl_malloc((size_t)st.st_size + 1)) == NULL)
        rc = fail(err, errlen, SL_ENOMEM, "out of memory reading %s", path);
    size_t got = 0;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = fail(err, errlen, SL_EIO, "cannot read %s: %s", path, n < 0 ? strerror(errno) : "file shrank");
        else
            got += (size_t)n;
    }
    close(fd);
    if (rc != 0) {
        sl_free(buf);
        return rc;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static int hex_val(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Splits BODY from TRAILER and checks the checksum; *body_len is BODY's length. */
static int check_trailer(const char *path, const char *buf, size_t len, size_t *body_len, char *err, size_t errlen) {
    if (len < TRAILER_LEN + 1 || buf[len - TRAILER_LEN - 1] != '\n' ||
        memcmp(buf + len - TRAILER_LEN, TRAILER_PREFIX, sizeof(TRAILER_PREFIX) - 1) != 0 || buf[len - 1] != '\n')
        return fail(err, errlen, SL_EPARSE, "bad checkpoint metadata %s: missing checksum trailer (truncated file?)",
                    path);
    uint32_t want = 0;
    for (const char *h = buf + len - 9; h < buf + len - 1; h++) {
        int v = hex_val(*h);
        if (v < 0)
            return fail(err, errlen, SL_EPARSE, "bad checkpoint metadata %s: malformed checksum trailer", path);
        want = (want << 4) | (uint32_t)v;
    }
    *body_len = len - TRAILER_LEN;
    uint32_t got = sl_crc32c(0, buf, *body_len);
    if (got != want)
        return fail(err, errlen, SL_EPARSE, "checksum mismatch in %s: expected 0x%08" PRIx32 ", got 0x%08" PRIx32, path,
                    want, got);
    return 0;
}

/* Reads obj[key] as an integer in 0..max. `where` prefixes the field name ("" at top level). */
static int get_uint(ctx_t *c, json_t *obj, const char *where, const char *key, uint64_t max, uint64_t *out) {
    char f[96];
    snprintf(f, sizeof(f), "%s%s%s", where, where[0] ? "." : "", key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return field_fail(c, f, "missing");
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        char what[64];
        snprintf(what, sizeof(what), "expected an integer in 0..%" PRIu64, max);
        return field_fail(c, f, what);
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Reads obj[key] as a string, borrowed from the JSON tree. */
static int get_str(ctx_t *c, json_t *obj, const char *where, const char *key, const char **out) {
    char f[96];
    snprintf(f, sizeof(f), "%s%s%s", where, where[0] ? "." : "", key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return field_fail(c, f, "missing");
    if (!json_is_string(v))
        return field_fail(c, f, "expected a string");
    *out = json_string_value(v);
    return 0;
}

static int get_typed(ctx_t *c, json_t *obj, const char *where, const char *key, json_type t, json_t **out) {
    char f[96];
    snprintf(f, sizeof(f), "%s%s%s", where, where[0] ? "." : "", key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return field_fail(c, f, "missing");
    if (json_typeof(v) != t)
        return field_fail(c, f, t == JSON_ARRAY ? "expected an array" : "expected an object");
    *out = v;
    return 0;
}

static int enum_index(const char *s, const char **names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int decode_inline(ctx_t *c, json_t *h, const char *where, sl_ckpt_operator_state_t *op, uint64_t size,
                         uint64_t crc) {
    const char *hex;
    int rc = get_str(c, h, where, "data", &hex);
    if (rc != 0)
        return rc;
    char f[96];
    snprintf(f, sizeof(f), "%s.data", where);
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 != size)
        return field_fail(c, f, "hex length does not match size");
    unsigned char *bytes = sl_malloc(n / 2 + 1);
    if (bytes == NULL)
        return fail(c->err, c->errlen, SL_ENOMEM, "out of memory reading %s", c->file);
    for (size_t i = 0; i < n / 2 && rc == 0; i++) {
        int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            rc = field_fail(c, f, "expected hex digits");
        else
            bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    if (rc == 0 && sl_ckpt_operator_add_inline(op, bytes, n / 2) != 0)
        rc = fail(c->err, c->errlen, SL_ENOMEM, "out of memory reading %s", c->file);
    sl_free(bytes);
    if (rc == 0 && op->handles[op->n_handles - 1].crc32c != (uint32_t)crc) {
        snprintf(f, sizeof(f), "%s.crc32c", where);
        rc = field_fail(c, f, "inline data does not match its checksum");
    }
    return rc;
}

static int decode_handle(ctx_t *c, json_t *h, const char *where, sl_ckpt_operator_state_t *op) {
    if (!json_is_object(h))
        return field_fail(c, where, "expected an object");
    const char *kind;
    uint64_t size, crc;
    int rc;
    if ((rc = get_str(c, h, where, "kind", &kind)) != 0 || (rc = get_uint(c, h, where, "size", INT64_MAX, &size)) != 0 ||
        (rc = get_uint(c, h, where, "crc32c", UINT32_MAX, &crc)) != 0)
        return rc;
    int k = enum_index(kind, handle_names, 3);
    if (k < 0) {
        char f[96];
        snprintf(f, sizeof(f), "%s.kind", where);
        return field_fail(c, f, "expected \"file\", \"shared\" or \"inline\"");
    }
    if (k == SL_CKPT_HANDLE_INLINE)
        return decode_inline(c, h, where, op, size, crc);
    const char *path;
    if ((rc = get_str(c, h, where, "path", &path)) != 0)
        return rc;
    sl_ckpt_file_info_t info = {size, (uint32_t)crc};
    if (sl_ckpt_operator_add_file(op, (sl_ckpt_handle_kind_t)k, path, &info) != 0)
        return fail(c->err, c->errlen, SL_ENOMEM, "out of memory reading %s", c->file);
    return 0;
}

static int decode_extras(ctx_t *c, json_t *extras, const char *where, sl_ckpt_operator_state_t *op) {
    const char *key;
    json_t *v;
    json_object_foreach(extras, key, v) {
        if (!json_is_string(v)) {
            char f[160];
            snprintf(f, sizeof(f), "%s.extras.%.64s", where, key);
            return field_fail(c, f, "expected a string");
        }
        if (sl_ckpt_operator_set_extra(op, key, json_string_value(v)) != 0)
            return fail(c->err, c->errlen, SL_ENOMEM, "out of memory reading %s", c->file);
    }
    return 0;
}

static int decode_key_groups(ctx_t *c, json_t *o, const char *where, uint32_t *first, uint32_t *last) {
    json_t *kg;
    int rc = get_typed(c, o, where, "key_groups", JSON_ARRAY, &kg);
    if (rc != 0)
        return rc;
    json_t *a = json_array_get(kg, 0), *b = json_array_get(kg, 1);
    if (json_array_size(kg) != 2 || !json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 ||
        json_integer_value(b) < 0 || json_integer_value(a) > UINT32_MAX || json_integer_value(b) > UINT32_MAX) {
        char f[96];
        snprintf(f, sizeof(f), "%s.key_groups", where);
        return field_fail(c, f, "expected [first, last] integers");
    }
    *first = (uint32_t)json_integer_value(a);
    *last = (uint32_t)json_integer_value(b);
    return 0;
}

static int decode_operator(ctx_t *c, json_t *o, uint32_t i, uint64_t version, sl_ckpt_metadata_t *md) {
    char where[48];
    snprintf(where, sizeof(where), "operators[%" PRIu32 "]", i);
    if (!json_is_object(o))
        return field_fail(c, where, "expected an object");
    const char *vertex;
    uint64_t subtask;
    uint32_t first = 0, last = 0;
    json_t *handles, *extras;
    int rc;
    if ((rc = get_str(c, o, where, "vertex", &vertex)) != 0 ||
        (rc = get_uint(c, o, where, "subtask", UINT32_MAX, &subtask)) != 0 ||
        (rc = decode_key_groups(c, o, where, &first, &last)) != 0 ||
        (rc = get_typed(c, o, where, "handles", JSON_ARRAY, &handles)) != 0 ||
        (rc = get_typed(c, o, where, "extras", JSON_OBJECT, &extras)) != 0)
        return rc;
    bool finished = false;
    if (version >= 2) { /* version 1 predates finished subtasks: none was */
        json_t *fin = json_object_get(o, "finished");
        char f[80];
        snprintf(f, sizeof(f), "%s.finished", where);
        if (fin == NULL)
            return field_fail(c, f, "missing");
        if (!json_is_boolean(fin))
            return field_fail(c, f, "expected a boolean");
        finished = json_is_true(fin);
    }
    sl_ckpt_operator_state_t *op;
    if (sl_ckpt_metadata_add_operator(md, vertex, (uint32_t)subtask, first, last, &op) != 0)
        return fail(c->err, c->errlen, SL_ENOMEM, "out of memory reading %s", c->file);
    op->finished = finished;
    for (size_t j = 0; j < json_array_size(handles); j++) {
        char hw[80];
        snprintf(hw, sizeof(hw), "%s.handles[%zu]", where, j);
        if ((rc = decode_handle(c, json_array_get(handles, j), hw, op)) != 0)
            return rc;
    }
    return decode_extras(c, extras, where, op);
}

static int decode_md(ctx_t *c, json_t *root, sl_ckpt_metadata_t *md) {
    if (!json_is_object(root))
        return fail(c->err, c->errlen, SL_EPARSE, "bad checkpoint metadata %s: expected a JSON object", c->file);
    uint64_t version, id, ts, maxp;
    const char *job, *kind;
    json_t *ops;
    int rc;
    if ((rc = get_uint(c, root, "", "version", UINT32_MAX, &version)) != 0)
        return rc;
    if (version != 1 && version != SL_CKPT_METADATA_VERSION)
        return field_fail(c, "version", "unsupported version (this build reads 1 and 2)");
    if ((rc = get_uint(c, root, "", "checkpoint_id", INT64_MAX, &id)) != 0 ||
        (rc = get_str(c, root, "", "job_id", &job)) != 0 ||
        (rc = get_uint(c, root, "", "timestamp_ms", INT64_MAX, &ts)) != 0 ||
        (rc = get_str(c, root, "", "kind", &kind)) != 0 ||
        (rc = get_uint(c, root, "", "max_parallelism", SL_CKPT_MAX_PARALLELISM_LIMIT, &maxp)) != 0 ||
        (rc = get_typed(c, root, "", "operators", JSON_ARRAY, &ops)) != 0)
        return rc;
    int k = enum_index(kind, kind_names, 2);
    if (k < 0)
        return field_fail(c, "kind", "expected \"checkpoint\" or \"savepoint\"");
    if (sl_ckpt_metadata_init(md, id, job, ts, (sl_ckpt_kind_t)k, (uint32_t)maxp) != 0)
        return fail(c->err, c->errlen, SL_ENOMEM, "out of memory reading %s", c->file);
    for (size_t i = 0; i < json_array_size(ops); i++)
        if ((rc = decode_operator(c, json_array_get(ops, i), (uint32_t)i, version, md)) != 0)
            return rc;
    return check_md(c, md);
}

int sl_ckpt_metadata_read(const char *path, sl_ckpt_metadata_t *md, char *err, size_t errlen) {
    memset(md, 0, sizeof(*md));
    char *buf = NULL;
    size_t len = 0, body_len = 0;
    int rc = read_whole(path, &buf, &len, err, errlen);
    if (rc != 0)
        return rc;
    rc = check_trailer(path, buf, len, &body_len, err, errlen);
    json_t *root = NULL;
    if (rc == 0) {
        json_error_t jerr;
        root = json_loadb(buf, body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL)
            rc = fail(err, errlen, SL_EPARSE, "bad checkpoint metadata %s: invalid JSON at line %d: %s", path,
                      jerr.line, jerr.text);
    }
    sl_free(buf);
    if (rc == 0) {
        ctx_t c = {path, "bad", SL_EPARSE, err, errlen};
        rc = decode_md(&c, root, md);
    }
    json_decref(root);
    if (rc != 0)
        sl_ckpt_metadata_free(md);
    return rc;
}

/* ---- verification ---- */

int sl_ckpt_handle_path(const sl_ckpt_storage_t *s, const sl_ckpt_handle_t *h, char *buf, size_t len) {
    if (h->kind == SL_CKPT_HANDLE_SHARED)
        return sl_ckpt_shared_path(s, h->path, buf, len);
    if (h->kind != SL_CKPT_HANDLE_FILE)
        return SL_EINVAL;
    int n = snprintf(buf, len, "%s/%s", s->job_dir, h->path);
    return n < 0 || (size_t)n >= len ? SL_ERANGE : 0;
}

static int verify_handle(const sl_ckpt_storage_t *s, const sl_ckpt_handle_t *h, char *err, size_t errlen) {
    if (h->kind == SL_CKPT_HANDLE_INLINE) {
        if (sl_crc32c(0, h->data, h->size) != h->crc32c)
            return fail(err, errlen, SL_EPARSE, "inline state does not match its checksum");
        return 0;
    }
    char path[PATH_MAX];
    if (sl_ckpt_handle_path(s, h, path, sizeof(path)) != 0)
        return fail(err, errlen, SL_EINVAL, "state file path too long: %s/%s", s->job_dir, h->path);
    return sl_ckpt_file_verify(path, h->size, h->crc32c, err, errlen);
}

int sl_ckpt_metadata_verify_files(const sl_ckpt_storage_t *s, const sl_ckpt_metadata_t *md, char *err, size_t errlen) {
    for (uint32_t i = 0; i < md->n_operators; i++) {
        const sl_ckpt_operator_state_t *op = &md->operators[i];
        for (uint32_t j = 0; j < op->n_handles; j++) {
            char why[PATH_MAX + 128];
            int rc = verify_handle(s, &op->handles[j], why, sizeof(why));
            if (rc != 0)
                return fail(err, errlen, rc, "vertex %s subtask %" PRIu32 ": %s", op->vertex_id, op->subtask, why);
        }
    }
    return 0;
}
