/* Whether another process has written the SQLite database, seen without a transaction.
 *
 * Every commit to a WAL database rewrites the wal-index header at the start of its -shm file
 * (https://www.sqlite.org/walformat.html, "The WAL-Index Header": two copies of 48 bytes, in
 * the machine's byte order). The header is mapped read-only here and compared with the last
 * one this process accounts for (the published header). The one writer of this process tells
 * the watch when it holds SQLite's write lock and what its commit left; any other change of
 * the header is another process's write (`hipusers import` into a running server's file),
 * counted in the foreign epoch.
 *
 * A cache of answers above the store keeps an answer only while the foreign epoch is the one
 * it was read under, and serves it only while the header is the published one: a commit of
 * this process's writer that is not yet accounted for, or one of another process that nobody
 * has counted yet, makes sq_watch_check answer false (read the database instead). */
#ifndef HIP_SQLITE_WATCH_H
#define HIP_SQLITE_WATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SQ_WATCH_HDR 48

struct sq_watch {
    int fd; /* the -shm file: closed only after SQLite's connections (closing it drops this
             * process's POSIX locks on the file, SQLite's included) */
    const volatile unsigned char *map;
    pthread_mutex_t mu;       /* the writer's and a detecting reader's updates */
    atomic_uint_fast64_t seq; /* seqlock of published and foreign: odd while they change */
    unsigned char published[SQ_WATCH_HDR];
    atomic_uint_fast64_t foreign;      /* changes made by other processes, as counted */
    atomic_bool writing;               /* the writer holds SQLite's write lock (or just released it) */
    unsigned char begun[SQ_WATCH_HDR]; /* the header when the writer took the lock */
    int frames;                        /* the WAL's frames after the writer's commit (its hook), -1: none */
};

/* Maps the -shm file of the database at path (after a transaction has made it). false: the
 * watch is off and sq_watch_check always answers false. */
bool sq_watch_open(struct sq_watch *w, const char *db_path);
/* After every SQLite connection of the store is closed. */
void sq_watch_close(struct sq_watch *w);

/* The writer: it has just taken the write lock (BEGIN IMMEDIATE succeeded). */
void sq_watch_begin(struct sq_watch *w);
/* The writer's commit wrote frames and the WAL now has this many (its wal_hook). */
void sq_watch_committed(struct sq_watch *w, int frames);
/* The writer's transaction has ended (committed or rolled back). */
void sq_watch_end(struct sq_watch *w);

/* The header as it is now, when both copies agree: whoever commits changes it (iChange counts
 * every commit, the salts change when the WAL starts over). false: no watch, or a commit was
 * rewriting it. */
bool sq_watch_header(const struct sq_watch *w, unsigned char out[SQ_WATCH_HDR]);

/* true with *foreign when the database is as published (see above). */
bool sq_watch_check(struct sq_watch *w, uint64_t *foreign);

#endif
