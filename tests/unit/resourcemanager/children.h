/* For the ResourceManager tests: the child processes of the test process, read from /proc, so
 * a test can assert that nothing it started (a worker, an sbatch, a zombie) is left behind.
 * Include after cmocka.h. */
#ifndef SL_TEST_RESOURCEMANAGER_CHILDREN_H
#define SL_TEST_RESOURCEMANAGER_CHILDREN_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Children of this process whose command name is `comm`, or all of them when NULL. */
static inline int children_named(const char *comm) {
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512], name[64];
        int ppid;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so the last ')' */
        char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
        if (!lp || !rp || sscanf(rp + 2, "%*c %d", &ppid) != 1 || ppid != getpid())
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(rp - lp - 1), lp + 1);
        n += comm == NULL || strcmp(name, comm) == 0;
    }
    closedir(d);
    return n;
}

static inline int count_children(void) { return children_named(NULL); }

#endif
