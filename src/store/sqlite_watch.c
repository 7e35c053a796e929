#include "store/sqlite_watch.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fields of the wal-index header (walformat.html): 32-bit words in the machine's order,
 * but for the salts, copied from the WAL file's header as they are (big-endian). */
#define HDR_ICHANGE 8
#define HDR_MXFRAME 16
#define HDR_SALT1 32
#define HDR_SALT2 36

static uint32_t word(const unsigned char *h, size_t at)
{
    uint32_t v;
    memcpy(&v, h + at, sizeof v);
    return v;
}

static uint32_t big_endian(const unsigned char *h, size_t at)
{
    return (uint32_t)h[at] << 24 | (uint32_t)h[at + 1] << 16 | (uint32_t)h[at + 2] << 8 | h[at + 3];
}

/* The header, when its two copies agree. A commit rewrites the second, then the first; so,
 * as SQLite's readers do, the first is read whole before the second: a first copy caught
 * half rewritten then meets a second already rewritten whole, and they differ. (Reading the
 * two byte by byte side by side would let a rewrite in the middle give two equal halves of
 * two headers.) */
static bool read_header(const struct sq_watch *w, unsigned char out[SQ_WATCH_HDR])
{
    unsigned char second[SQ_WATCH_HDR];
    atomic_thread_fence(memory_order_acquire);
    for (size_t i = 0; i < SQ_WATCH_HDR; i++)
        out[i] = w->map[i];
    atomic_thread_fence(memory_order_acquire);
    for (size_t i = 0; i < SQ_WATCH_HDR; i++)
        second[i] = w->map[SQ_WATCH_HDR + i];
    atomic_thread_fence(memory_order_acquire);
    return memcmp(out, second, SQ_WATCH_HDR) == 0;
}

/* Under w->mu. */
static void publish(struct sq_watch *w, const unsigned char h[SQ_WATCH_HDR], bool foreign)
{
    atomic_fetch_add(&w->seq, 1);
    memcpy(w->published, h, SQ_WATCH_HDR);
    if (foreign)
        atomic_fetch_add(&w->foreign, 1);
    atomic_fetch_add(&w->seq, 1);
}

bool sq_watch_open(struct sq_watch *w, const char *db_path)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    char path[4200];
    if (snprintf(path, sizeof path, "%s-shm", db_path) >= (int)sizeof path)
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    w->fd = fd; /* kept open from here on: see the header */
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 4096)
        return false;
    void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return false;
    w->map = m;
    unsigned char h[SQ_WATCH_HDR];
    for (int i = 0; i < 1000 && !read_header(w, h); i++)
        sched_yield();
    publish(w, h, false);
    return true;
}

void sq_watch_close(struct sq_watch *w)
{
    if (w->map)
        munmap((void *)w->map, 4096);
    if (w->fd >= 0)
        close(w->fd);
    w->map = NULL;
    w->fd = -1;
    pthread_mutex_destroy(&w->mu);
}

void sq_watch_begin(struct sq_watch *w)
{
    if (!w->map)
        return;
    pthread_mutex_lock(&w->mu);
    /* Nobody else can commit while the write lock is held: the header is settled, and what
     * changed it since it was published was another process. */
    unsigned char h[SQ_WATCH_HDR];
    bool whole = read_header(w, h);
    if (!whole || memcmp(h, w->published, SQ_WATCH_HDR) != 0)
        publish(w, h, true);
    memcpy(w->begun, h, SQ_WATCH_HDR);
    w->frames = -1;
    atomic_store(&w->writing, true);
    pthread_mutex_unlock(&w->mu);
}

void sq_watch_committed(struct sq_watch *w, int frames) { w->frames = frames; }

void sq_watch_end(struct sq_watch *w)
{
    if (!w->map)
        return;
    pthread_mutex_lock(&w->mu);
    unsigned char h[SQ_WATCH_HDR];
    bool whole = false;
    for (int i = 0; i < 100 && !(whole = read_header(w, h)); i++)
        sched_yield();
    if (!whole || memcmp(h, w->published, SQ_WATCH_HDR) != 0) {
        /* Ours when it is what the commit left: one commit more than when the lock was
         * taken (iChange counts them, whoever commits), its frame count, and the WAL's salts
         * as they were (frames appended) or as a restart of the WAL makes them (salt-1 plus
         * one, big-endian). Anything else (the lock is released by now, so another process
         * may have committed since, or the transaction rolled back a restart) counts as
         * foreign: another process's commit after this one is one more commit, even if it
         * started the WAL over and wrote as many frames. */
        bool ours =
            whole && w->frames >= 0 && word(h, HDR_ICHANGE) == word(w->begun, HDR_ICHANGE) + 1 &&
            word(h, HDR_MXFRAME) == (uint32_t)w->frames &&
            ((word(h, HDR_SALT1) == word(w->begun, HDR_SALT1) && word(h, HDR_SALT2) == word(w->begun, HDR_SALT2) &&
              (uint32_t)w->frames > word(w->begun, HDR_MXFRAME)) ||
             big_endian(h, HDR_SALT1) == big_endian(w->begun, HDR_SALT1) + 1);
        publish(w, h, !ours);
    }
    atomic_store(&w->writing, false);
    pthread_mutex_unlock(&w->mu);
}

bool sq_watch_header(const struct sq_watch *w, unsigned char out[SQ_WATCH_HDR])
{
    return w->map && read_header(w, out);
}

bool sq_watch_check(struct sq_watch *w, uint64_t *foreign)
{
    if (!w->map)
        return false;
    unsigned char h[SQ_WATCH_HDR], pub[SQ_WATCH_HDR];
    if (!read_header(w, h))
        return false;
    uint64_t s1, s2, f;
    do {
        s1 = atomic_load(&w->seq);
        memcpy(pub, w->published, SQ_WATCH_HDR);
        f = atomic_load(&w->foreign);
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load(&w->seq);
    } while ((s1 & 1) || s1 != s2);
    if (memcmp(h, pub, SQ_WATCH_HDR) == 0) {
        *foreign = f;
        return true;
    }
    /* Not the published header: this process's writer is between its commit and its
     * account of it, or another process wrote. The latter is counted here, so the cache
     * does not wait for this process's next write to learn of it. */
    if (!atomic_load(&w->writing) && pthread_mutex_trylock(&w->mu) == 0) {
        if (!atomic_load(&w->writing) && read_header(w, h) && memcmp(h, w->published, SQ_WATCH_HDR) != 0)
            publish(w, h, true);
        pthread_mutex_unlock(&w->mu);
    }
    return false;
}
