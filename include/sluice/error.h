/* Sluice error codes.
 * Every fallible function returns int: 0 on success, a negative SL_E* code on failure.
 * OS errors are -errno; domain errors live in a reserved range below -4000. */
#ifndef SL_ERROR_H
#define SL_ERROR_H

#include <errno.h>

#define SL__ERR(x) (-(x))

/* XX(name, value, message). One table generates the enum, sl_strerror and sl_err_name. */
#define SL_ERRNO_MAP(XX)                                                        \
    XX(ENOMEM, SL__ERR(ENOMEM), "out of memory")                                \
    XX(EINVAL, SL__ERR(EINVAL), "invalid argument")                             \
    XX(ENOENT, SL__ERR(ENOENT), "no such file or directory")                    \
    XX(EIO, SL__ERR(EIO), "i/o error")                                          \
    XX(EAGAIN, SL__ERR(EAGAIN), "resource temporarily unavailable")             \
    XX(ECANCELED, SL__ERR(ECANCELED), "operation canceled")                     \
    XX(ETIMEDOUT, SL__ERR(ETIMEDOUT), "operation timed out")                    \
    XX(EADDRINUSE, SL__ERR(EADDRINUSE), "address already in use")               \
    XX(ECONNREFUSED, SL__ERR(ECONNREFUSED), "connection refused")               \
    XX(ERANGE, SL__ERR(ERANGE), "value out of range")                           \
    XX(EEXIST, SL__ERR(EEXIST), "already exists")                               \
    XX(ECONFIG, -4001, "invalid configuration")                                 \
    XX(EJOB, -4002, "invalid job graph")                                        \
    XX(ESCHEMA, -4003, "schema mismatch")                                       \
    XX(EPARSE, -4004, "malformed input")                                        \
    XX(ESYMBOL, -4005, "symbol not found in job library")                       \
    XX(EUSER, -4006, "user function failed")                                    \
    XX(ENOBUFS, -4007, "insufficient network buffers")                          \
    XX(ENOSLOT, -4008, "no slot available")                                     \
    XX(EPROTO, -4009, "protocol error")                                         \
    XX(EFAILED, -4010, "job failed")                                            \
    XX(ESTATE_IO, -4011, "state backend i/o error")                             \
    XX(ECHK_DECLINED, -4012, "checkpoint declined")                             \
    XX(EFENCED, -4013, "fenced: stale leader or attempt")                       \
    XX(EOF_, -4014, "end of input")                                            \
    XX(EAUTH, -4015, "authentication failed")

typedef enum {
#define SL__ERR_ENUM(name, value, msg) SL_##name = (value),
    SL_ERRNO_MAP(SL__ERR_ENUM)
#undef SL__ERR_ENUM
    SL_ERRNO_MAX = -5000
} sl_errno_t;

/* Human-readable message for an error code; never NULL. Thread-safe. */
const char *sl_strerror(int err);

/* Symbolic name ("SL_EINVAL") for an error code; never NULL. Thread-safe. */
const char *sl_err_name(int err);

#endif /* SL_ERROR_H */
