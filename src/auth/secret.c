#include "auth/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool read_file(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return false;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    *len = (size_t)n;
    return n > 0;
}

/* Written whole to a temporary file, then linked into place: a crash or a full disk never
 * leaves a partial secret, and link() fails when another server won the race, in which
 * case its secret is the one read. */
static bool create_file(const char *path, char *buf, size_t cap, size_t *len)
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(buf, cap, raw, sizeof raw);
    *len = strlen(buf);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = write(fd, buf, *len) == (ssize_t)*len && fsync(fd) == 0;
    close(fd);
    if (ok && link(tmp, path) != 0)
        ok = errno == EEXIST && read_file(path, buf, cap, len);
    unlink(tmp);
    return ok;
}

bool secrets_load(struct keyring *k, const char *data_dir, bool create, char *err, size_t errlen)
{
    char path[4096], buf[KEY_MAX + 2];
    size_t len = 0;
    memset(k, 0, sizeof *k);
    const char *env = getenv("HIPUSERS_JWT_SECRET");
    if (env && *env) {
        if (!keyring_add(k, env, strlen(env))) {
            snprintf(err, errlen, "HIPUSERS_JWT_SECRET must be 1..%d bytes", KEY_MAX);
            return false;
        }
    } else {
        snprintf(path, sizeof path, "%s/jwt-secret", data_dir);
        bool ok = read_file(path, buf, sizeof buf, &len) || (create && create_file(path, buf, sizeof buf, &len));
        if (!ok || !keyring_add(k, buf, len)) {
            snprintf(err, errlen, "no signing secret: set HIPUSERS_JWT_SECRET or start `serve` once to create %s",
                     path);
            return false;
        }
    }
    const char *prev = getenv("HIPUSERS_JWT_SECRET_PREVIOUS");
    snprintf(path, sizeof path, "%s/jwt-secret.previous", data_dir);
    if (prev && *prev)
        keyring_add(k, prev, strlen(prev));
    else if (read_file(path, buf, sizeof buf, &len))
        keyring_add(k, buf, len);
    sodium_memzero(buf, sizeof buf);
    return true;
}
