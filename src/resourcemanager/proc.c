/* Child processes for the ResourceManager drivers (see proc.h): posix_spawn in a new process
 * group, an environment built from ours plus additions, and a poll() loop that captures a
 * short command's stdout and stderr until it exits or its deadline, then always reaps it. */
#include "resourcemanager/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sluice/error.h>

#include "core/alloc.h"

extern char **environ;

long long sl__rm_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sl__rm_proc_describe_status(int status, char *buf, size_t len) {
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "ended with wait status 0x%x", status);
}

/* Does "KEY=..." `entry` set one of the variables in `add`? */
static int overridden(const char *entry, const char *const *add) {
    const char *eq = strchr(entry, '=');
    size_t klen = eq ? (size_t)(eq - entry) : strlen(entry);
    for (; add && *add; add++)
        if (strncmp(*add, entry, klen) == 0 && (*add)[klen] == '=')
            return 1;
    return 0;
}

/* The child's environment: ours minus overridden keys, then `add`. Only the pointer array is
 * allocated; the strings stay borrowed from environ and `add`. */
static int build_env(const char *const *add, char ***out) {
    size_t n = 0, m = 0;
    for (char **e = environ; e && *e; e++) n++;
    for (const char *const *a = add; a && *a; a++) m++;
    char **env = sl_calloc(n + m + 1, sizeof *env);
    if (!env)
        return SL_ENOMEM;
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (!overridden(*e, add))
            env[k++] = *e;
    for (const char *const *a = add; a && *a; a++)
        env[k++] = (char *)*a;
    env[k] = NULL;
    *out = env;
    return 0;
}

/* Attributes shared by every child: its own process group (so a timeout or a stop reaches
 * the whole tree it started), default signal dispositions and an empty mask (a parent that
 * ignores SIGPIPE or blocks SIGTERM must not pass that on). */
static int init_attr(posix_spawnattr_t *attr) {
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    int rc = posix_spawnattr_init(attr);
    if (rc)
        return -rc;
    rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETSIGMASK);
    if (!rc) rc = posix_spawnattr_setpgroup(attr, 0);
    if (!rc) rc = posix_spawnattr_setsigdefault(attr, &all);
    if (!rc) rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc)
        posix_spawnattr_destroy(attr);
    return -rc;
}

/* Spawns with fds 0..2 arranged by `fa`, every other descriptor closed (a TaskManager must not
 * inherit the ResourceManager's sockets). */
static int spawn(const char *const *argv, const char *const *env_add, posix_spawn_file_actions_t *fa,
                 pid_t *pid, char *err, size_t errlen) {
    posix_spawnattr_t attr;
    char **env = NULL;
    int rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
    if (rc) {
        snprintf(err, errlen, "%s: cannot prepare spawn: %s", argv[0], strerror(rc));
        return -rc;
    }
    if ((rc = build_env(env_add, &env)) != 0) {
        snprintf(err, errlen, "%s: out of memory", argv[0]);
        return rc;
    }
    if ((rc = init_attr(&attr)) != 0) {
        sl_free(env);
        snprintf(err, errlen, "%s: cannot prepare spawn: %s", argv[0], strerror(-rc));
        return rc;
    }
    rc = posix_spawnp(pid, argv[0], fa, &attr, (char *const *)argv, env);
    posix_spawnattr_destroy(&attr);
    sl_free(env);
    if (rc == ENOENT) {
        snprintf(err, errlen, "%s: command not found (PATH=%s)", argv[0],
                 getenv("PATH") ? getenv("PATH") : "");
        return SL_ENOENT;
    }
    if (rc) {
        snprintf(err, errlen, "%s: cannot start: %s", argv[0], strerror(rc));
        return -rc;
    }
    return 0;
}

int sl__rm_proc_spawn(const char *const *argv, const char *const *env_add, const char *log_path,
                      pid_t *pid, char *err, size_t errlen) {
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return -rc;
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        snprintf(err, errlen, "%s: cannot prepare spawn: %s", argv[0], strerror(rc));
        return -rc;
    }
    rc = spawn(argv, env_add, &fa, pid, err, errlen);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* A growing NUL-terminated buffer for one output stream. */
typedef struct {
    char *buf;
    size_t len, cap;
    int fd; /* -1 once EOF was read */
} stream_t;

static int stream_read(stream_t *s) {
    char chunk[4096];
    ssize_t n = read(s->fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    size_t keep = (size_t)n;
    if (s->len + keep > SL__RM_PROC_MAX_OUTPUT)
        keep = SL__RM_PROC_MAX_OUTPUT - s->len; /* drain the pipe, keep the head */
    if (s->len + keep + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + keep + 1) cap *= 2;
        char *b = sl_realloc(s->buf, cap);
        if (!b)
            return SL_ENOMEM;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, chunk, keep);
    s->len += keep;
    s->buf[s->len] = '\0';
    return 0;
}

/* Reads both pipes until EOF on both and the child's exit, or until the deadline.
 * Returns 1 when the deadline passed, 0 when the child was reaped, <0 on error. */
static int collect(pid_t pid, stream_t *st, long long deadline, int *status) {
    for (;;) {
        long long left = deadline - sl__rm_now_ms();
        if (left <= 0)
            return 1;
        if (st[0].fd < 0 && st[1].fd < 0) {
            /* Both pipes closed: wait for the exit itself, still bounded by the deadline
             * (a command may close its output and linger). */
            pid_t r = waitpid(pid, status, WNOHANG);
            if (r == pid)
                return 0;
            if (r < 0 && errno != EINTR)
                return SL__ERR(errno);
            poll(NULL, 0, left < 5 ? (int)left : 5);
            continue;
        }
        struct pollfd p[2];
        int n = 0;
        for (int i = 0; i < 2; i++)
            if (st[i].fd >= 0) p[n++] = (struct pollfd){.fd = st[i].fd, .events = POLLIN};
        int r = poll(p, (nfds_t)n, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return SL__ERR(errno);
        for (int i = 0; i < n && r > 0; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            stream_t *s = st[0].fd == p[i].fd ? &st[0] : &st[1];
            int rc = stream_read(s);
            if (rc)
                return rc;
        }
    }
}

static int open_pipes(int out[2], int errp[2]) {
    if (pipe2(out, O_CLOEXEC) != 0)
        return SL__ERR(errno);
    if (pipe2(errp, O_CLOEXEC) != 0) {
        int e = errno;
        close(out[0]);
        close(out[1]);
        return SL__ERR(e);
    }
    return 0;
}

static int start_captured(const char *const *argv, const char *const *env_add, int out[2], int errp[2],
                          pid_t *pid, char *err, size_t errlen) {
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return -rc;
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        snprintf(err, errlen, "%s: cannot prepare spawn: %s", argv[0], strerror(rc));
        return -rc;
    }
    rc = spawn(argv, env_add, &fa, pid, err, errlen);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

int sl__rm_proc_run(const char *const *argv, const char *const *env_add, int timeout_ms,
                    sl__rm_proc_result_t *res, char *err, size_t errlen) {
    int out[2], errp[2];
    pid_t pid;
    memset(res, 0, sizeof *res);
    int rc = open_pipes(out, errp);
    if (rc) {
        snprintf(err, errlen, "%s: cannot create pipes: %s", argv[0], strerror(-rc));
        return rc;
    }
    rc = start_captured(argv, env_add, out, errp, &pid, err, errlen);
    close(out[1]);
    close(errp[1]);
    if (rc) {
        close(out[0]);
        close(errp[0]);
        return rc;
    }
    stream_t st[2] = {{.fd = out[0]}, {.fd = errp[0]}};
    rc = collect(pid, st, sl__rm_now_ms() + timeout_ms, &res->status);
    if (rc != 0) {
        /* Deadline or error: the whole group goes, and the leader is reaped here so that
         * neither a zombie nor a half-finished sbatch outlives this call. */
        kill(-pid, SIGKILL);
        while (waitpid(pid, &res->status, 0) < 0 && errno == EINTR) {}
        res->timed_out = rc == 1;
    }
    for (int i = 0; i < 2; i++)
        if (st[i].fd >= 0) close(st[i].fd);
    res->out = st[0].buf ? st[0].buf : sl_strdup("");
    res->errtext = st[1].buf ? st[1].buf : sl_strdup("");
    if (rc < 0 || !res->out || !res->errtext) {
        sl__rm_proc_result_free(res);
        snprintf(err, errlen, "%s: %s", argv[0], sl_strerror(rc < 0 ? rc : SL_ENOMEM));
        return rc < 0 ? rc : SL_ENOMEM;
    }
    return 0;
}

void sl__rm_proc_result_free(sl__rm_proc_result_t *res) {
    sl_free(res->out);
    sl_free(res->errtext);
    res->out = res->errtext = NULL;
}
