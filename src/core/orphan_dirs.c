/* Removing the scratch directories of dead processes (see orphan_dirs.h). */
#include "core/orphan_dirs.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* The pid in "<prefix><pid>-...", or 0 when the name is not of that shape. */
static long pid_of(const char *name, const char *prefix) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0)
        return 0;
    char *end;
    long pid = strtol(name + n, &end, 10);
    return end != name + n && *end == '-' && pid > 0 ? pid : 0;
}

static bool remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    struct dirent *e;
    char p[4608];
    bool ok = true;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (lstat(p, &st) != 0 || !S_ISREG(st.st_mode) || unlink(p) != 0)
            ok = false; /* not ours to judge: leave the directory */
    }
    closedir(d);
    return ok && rmdir(dir) == 0;
}

int sl_remove_orphan_dirs(const char *parent, const char *prefix) {
    DIR *d = opendir(parent);
    if (d == NULL)
        return 0;
    int removed = 0;
    struct dirent *e;
    char p[4352];
    while ((e = readdir(d)) != NULL) {
        long pid = pid_of(e->d_name, prefix);
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", parent, e->d_name);
        if (pid == 0 || lstat(p, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive (or not ours to signal): in use */
        if (remove_dir(p)) {
            removed++;
            SL_INFO("removed %s, left behind by process %ld", p, pid);
        } else {
            SL_WARN("cannot remove %s, left behind by process %ld: %s", p, pid, strerror(errno));
        }
    }
    closedir(d);
    return removed;
}
