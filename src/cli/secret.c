/* The cluster's shared secret for the `sluice` commands: $SLUICE_SECRET, else the file named by
 * security.auth.secret-file, else ~/.sluice/secret, created with 32 random bytes (hex, mode
 * 0600) the first time, so processes of one user on one machine agree without setup. */
#include "cli/cli.h"

#include <sluice/error.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int create_secret(const char *path, char *err, size_t errlen) {
    unsigned char raw[32];
    int fd = open("/dev/urandom", O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof raw) {
        snprintf(err, errlen, "cannot read /dev/urandom to create %s", path);
        return SL_EIO;
    }
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (out < 0)
        return errno == EEXIST ? 0 : (snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno)), SL_EIO);
    int rc = write(out, hex, 64) == 64 ? 0 : SL_EIO;
    close(out);
    if (rc)
        snprintf(err, errlen, "cannot write %s", path);
    return rc;
}

int sl_cli_load_secret(const sl_config_t *config, char *secret, size_t cap, char *err, size_t errlen) {
    const char *env = getenv("SLUICE_SECRET");
    if (env && env[0]) {
        snprintf(secret, cap, "%s", env);
        return 0;
    }
    char path[1024];
    const char *file = sl_config_str(config, "security.auth.secret-file");
    if (file && file[0]) {
        snprintf(path, sizeof path, "%s", file);
    } else {
        const char *home = getenv("HOME");
        snprintf(path, sizeof path, "%s/.sluice", home && home[0] ? home : "/tmp");
        mkdir(path, 0700);
        strncat(path, "/secret", sizeof path - strlen(path) - 1);
        int rc = create_secret(path, err, errlen);
        if (rc)
            return rc;
    }
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(secret, 1, cap - 1, f) : 0;
    if (f)
        fclose(f);
    while (n && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
        n--;
    secret[n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "no shared secret: %s is missing or empty", path);
        return SL_ECONFIG;
    }
    return 0;
}
