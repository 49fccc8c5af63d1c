/* Socket source: CSV lines from a TCP server, like Flink's socketTextStream. Non-parallel and
 * at-most-once: nothing can be replayed after a failure. Reads without blocking so the task
 * keeps running timers and flushes while the server is quiet; the stream ends when the server
 * closes the connection. */
#include <sluice/error.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connectors/csv_parse.h"
#include "core/alloc.h"
#include "operators/operator.h"

#define SOCKET_BUF (256 * 1024)

typedef struct {
    sl_operator_t base;
    int fd;
    bool connected; /* close() also runs on a struct open() never saw */
    char *buf;
    size_t len;
    uint64_t line_no;
    const char *where;
} socket_op_t;

static int socket_open(sl_operator_t *op) {
    socket_op_t *o = (socket_op_t *)op;
    o->fd = -1;
    const char *host = sl_params_get(op->params, "host"), *port = sl_params_get(op->params, "port");
    if (host == NULL || port == NULL)
        return sl_operator_fail(op, SL_EJOB, "missing parameter 'host' or 'port'");
    o->where = host;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0)
        return sl_operator_fail(op, SL_EINVAL, "cannot resolve '%s': %s", host, gai_strerror(g));
    int err = ECONNREFUSED;
    for (struct addrinfo *a = ai; a && o->fd < 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            o->fd = fd;
            o->connected = true;
        } else {
            err = errno;
            close(fd);
        }
    }
    freeaddrinfo(ai);
    if (o->fd < 0)
        return sl_operator_fail(op, SL_ECONNREFUSED, "cannot connect to %s:%s: %s", host, port, strerror(err));
    o->buf = sl_malloc(SOCKET_BUF);
    return o->buf ? 0 : SL_ENOMEM;
}

/* Parses the complete lines in the buffer and keeps the partial tail. */
static int emit_lines(socket_op_t *o) {
    sl_operator_t *op = &o->base;
    size_t start = 0;
    char err[512];
    for (;;) {
        char *nl = memchr(o->buf + start, '\n', o->len - start);
        if (nl == NULL)
            break;
        size_t n = (size_t)(nl - (o->buf + start));
        o->line_no++;
        int rc = sl_csv_parse_row(o->buf + start, n, op->out_schema, &op->out->builder, err, sizeof err);
        if (rc)
            return sl_operator_fail(op, rc, "%s line %llu: %s", o->where, (unsigned long long)o->line_no, err);
        if ((rc = sl_output_emit_built(op->out, SL_TS_NONE)) != 0)
            return rc;
        start += n + 1;
    }
    memmove(o->buf, o->buf + start, o->len - start);
    o->len -= start;
    return 0;
}

static int socket_poll(sl_operator_t *op, uint32_t budget, bool *end) {
    socket_op_t *o = (socket_op_t *)op;
    if (o->len == SOCKET_BUF)
        return sl_operator_fail(op, SL_EPARSE, "%s line %llu: longer than %d bytes", o->where,
                                (unsigned long long)o->line_no + 1, SOCKET_BUF);
    ssize_t n = recv(o->fd, o->buf + o->len, SOCKET_BUF - o->len, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        return sl_operator_fail(op, SL_EIO, "reading from %s: %s", o->where, strerror(errno));
    }
    if (n == 0) {
        if (o->len) { /* a last line without newline */
            o->buf[o->len++] = '\n';
            int rc = emit_lines(o);
            if (rc)
                return rc;
        }
        *end = true;
        return 0;
    }
    o->len += (size_t)n;
    return emit_lines(o);
}

static void socket_close(sl_operator_t *op) {
    socket_op_t *o = (socket_op_t *)op;
    if (o->connected)
        close(o->fd);
    sl_free(o->buf);
}

const sl_operator_vtable_t sl_op_source_socket = {
    .kind = "source_socket", .open = socket_open, .source_poll = socket_poll, .close = socket_close,
    .size = sizeof(socket_op_t), .ninputs = 0};
