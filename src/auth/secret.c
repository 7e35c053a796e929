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
    if ((size_t)n == cap - 1) { /* longer than any secret may be: report it as too long */
        buf[n] = '\0';
        *len = (size_t)n;
        return true;
    }
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

/* Adds one operator-supplied secret, or says which one is unfit and why. */
static bool add_secret(struct keyring *k, const char *what, const char *secret, size_t len, char *err, size_t errlen)
{
    if (keyring_add(k, secret, len))
        return true;
    snprintf(err, errlen,
             "%s is %s%zu bytes long; a signing secret must be %d..%d bytes "
             "(a short one can be guessed from a single token): use e.g. `openssl rand -hex 32`",
             what, len > KEY_MAX ? "over " : "", len > KEY_MAX ? (size_t)KEY_MAX : len, KEY_MIN, KEY_MAX);
    return false;
}

bool secrets_load(struct keyring *k, const char *data_dir, const char *secret_file, bool create, char *err,
                  size_t errlen)
{
    char path[4096], buf[KEY_MAX + 64];
    size_t len = 0;
    bool ok = true;
    memset(k, 0, sizeof *k);
    const char *env = getenv("HIPUSERS_JWT_SECRET");
    if (env && *env) {
        ok = add_secret(k, "HIPUSERS_JWT_SECRET", env, strlen(env), err, errlen);
    } else if (secret_file) {
        if (read_file(secret_file, buf, sizeof buf, &len)) {
            ok = add_secret(k, secret_file, buf, len, err, errlen);
        } else {
            snprintf(err, errlen, "cannot read a signing secret from %s", secret_file);
            ok = false;
        }
    } else if (data_dir) {
        snprintf(path, sizeof path, "%s/jwt-secret", data_dir);
        if (read_file(path, buf, sizeof buf, &len) || (create && create_file(path, buf, sizeof buf, &len))) {
            ok = add_secret(k, path, buf, len, err, errlen);
        } else {
            snprintf(err, errlen, "no signing secret: set HIPUSERS_JWT_SECRET or start `serve` once to create %s",
                     path);
            ok = false;
        }
    } else {
        snprintf(err, errlen, "no signing secret: on PostgreSQL set HIPUSERS_JWT_SECRET or give --jwt-secret-file FILE"
                              " (every server process must sign with the same secret)");
        return false;
    }
    /* The previous secret sits beside the current one: its file + ".previous". */
    const char *prev = getenv("HIPUSERS_JWT_SECRET_PREVIOUS");
    if (secret_file)
        snprintf(path, sizeof path, "%s.previous", secret_file);
    else if (data_dir)
        snprintf(path, sizeof path, "%s/jwt-secret.previous", data_dir);
    else
        path[0] = '\0';
    if (ok && prev && *prev)
        ok = add_secret(k, "HIPUSERS_JWT_SECRET_PREVIOUS", prev, strlen(prev), err, errlen);
    else if (ok && path[0] && read_file(path, buf, sizeof buf, &len))
        ok = add_secret(k, path, buf, len, err, errlen);
    sodium_memzero(buf, sizeof buf);
    if (!ok)
        sodium_memzero(k, sizeof *k);
    return ok;
}
