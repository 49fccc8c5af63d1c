/* Test helper: a real redis-server child process on a free loopback port, in a fresh temporary
 * directory, without persistence (--save '' --appendonly no). Start waits until the server
 * answers PING; the child is killed with the test process (PR_SET_PDEATHSIG) even when a test
 * crashes, and stop always reaps it and removes the directory. The binary is $SL_REDIS_SERVER
 * or redis-server from PATH. Not thread-safe: call from the test's main thread. */
#ifndef SL_TESTS_REDIS_SERVER_H
#define SL_TESTS_REDIS_SERVER_H

#include <sys/types.h>

typedef struct sl_redis_server_s {
    pid_t pid;          /* 0 when not running */
    int port;
    char dir[128];      /* temporary directory: working dir and log file */
    char address[64];   /* "127.0.0.1:<port>" */
} sl_redis_server_t;

/* Path of the redis-server binary, or NULL when none is installed (tests then skip). */
const char *sl_redis_server_binary(void);

/* Creates the directory, picks a free port and starts the server; returns once it answers
 * PING. Returns 0, or -1 with a message on stderr. */
int sl_redis_server_start(sl_redis_server_t *s);

/* Starts the server again on the same port and directory (after a kill). Retries for a while
 * if the port is still taken. Returns 0 or -1. */
int sl_redis_server_restart(sl_redis_server_t *s);

/* SIGKILL and reap, like a crash. The directory stays for a restart. No-op when not running. */
void sl_redis_server_kill(sl_redis_server_t *s);

/* Kills the server if running and removes the directory. Safe to call more than once and on a
 * zero-initialised struct. */
void sl_redis_server_stop(sl_redis_server_t *s);

#endif
