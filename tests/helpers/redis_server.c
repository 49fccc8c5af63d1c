/* Test helper: starts and stops a real redis-server child on a free loopback port in a fresh
 * temporary directory (see redis_server.h). Readiness is checked with a raw PING over a socket,
 * so the helper needs no Redis client library. */
#include "helpers/redis_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS 5000

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *sl_redis_server_binary(void) {
    static char path[512];
    const char *env = getenv("SL_REDIS_SERVER");
    if (env != NULL && env[0] != '\0')
        return access(env, X_OK) == 0 ? env : NULL;
    const char *p = getenv("PATH");
    if (p == NULL)
        p = "/usr/local/bin:/usr/bin:/bin";
    while (*p != '\0') {
        size_t n = strcspn(p, ":");
        snprintf(path, sizeof path, "%.*s/redis-server", (int)n, p);
        if (n > 0 && access(path, X_OK) == 0)
            return path;
        p += n + (p[n] == ':');
    }
    return NULL;
}

/* A port the kernel considered free a moment ago (the usual small race is retried by start). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* 1 when the server on `port` answers PING with +PONG. */
static int ping(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16] = {0};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, "PING\r\n", 6) == 6 &&
             read(fd, buf, sizeof buf - 1) >= 5 && strncmp(buf, "+PONG", 5) == 0;
    close(fd);
    return ok;
}

/* Child side: dies with the parent, quiet stdio, exec. Only async-signal-safe calls, since
 * the test process may have other threads. */
static void exec_child(const char *bin, char *const argv[], pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    execv(bin, argv);
    _exit(127);
}

static int spawn(sl_redis_server_t *s) {
    const char *bin = sl_redis_server_binary();
    if (bin == NULL) {
        fprintf(stderr, "redis_server: redis-server not found (set SL_REDIS_SERVER)\n");
        return -1;
    }
    char port[16], logfile[192];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(logfile, sizeof logfile, "%s/redis.log", s->dir);
    char *const argv[] = {(char *)bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--dir", s->dir, "--logfile", logfile, "--daemonize", "no", NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("redis_server: fork");
        return -1;
    }
    if (pid == 0)
        exec_child(bin, argv, parent);
    s->pid = pid;
    return 0;
}

/* Waits for PING; fails early when the child exits (e.g. the port was taken). */
static int wait_ready(sl_redis_server_t *s) {
    long long deadline = now_ms() + READY_TIMEOUT_MS;
    while (now_ms() < deadline) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return -1;
        }
        if (ping(s->port))
            return 0;
        sleep_ms(10);
    }
    fprintf(stderr, "redis_server: no PONG on port %d within %d ms (see %s/redis.log)\n", s->port,
            READY_TIMEOUT_MS, s->dir);
    sl_redis_server_kill(s);
    return -1;
}

int sl_redis_server_start(sl_redis_server_t *s) {
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/sl-redis-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(s->dir) == NULL) {
        perror("redis_server: mkdtemp");
        s->dir[0] = '\0';
        return -1;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = free_port();
        if (s->port <= 0 || spawn(s) < 0)
            break;
        if (wait_ready(s) == 0) {
            snprintf(s->address, sizeof s->address, "127.0.0.1:%d", s->port);
            return 0;
        }
    }
    fprintf(stderr, "redis_server: could not start redis-server\n");
    sl_redis_server_stop(s);
    return -1;
}

int sl_redis_server_restart(sl_redis_server_t *s) {
    sl_redis_server_kill(s);
    /* The port may linger for a moment after the kill; a failed start is retried. */
    for (int attempt = 0; attempt < 50; attempt++) {
        if (spawn(s) < 0)
            return -1;
        if (wait_ready(s) == 0)
            return 0;
        sleep_ms(100);
    }
    fprintf(stderr, "redis_server: could not restart on port %d\n", s->port);
    return -1;
}

void sl_redis_server_kill(sl_redis_server_t *s) {
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
}

static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

void sl_redis_server_stop(sl_redis_server_t *s) {
    sl_redis_server_kill(s);
    if (s->dir[0] != '\0')
        remove_dir(s->dir);
    s->dir[0] = '\0';
}
